package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

func (f *fakeActivities) ReserveCharger(ctx context.Context, in schemas.ReserveChargerInput) (schemas.ReserveChargerResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.chargerOccupied > 0 {
		f.chargerOccupied--
		return schemas.ReserveChargerResult{Queued: true, QueuePosition: 1, Occupied: []string{"charger-1 (robot acme/AMR-002 stands on it)"}}, nil
	}
	return schemas.ReserveChargerResult{StationID: "charger-1", Node: "C1"}, nil
}

func (f *fakeActivities) ReleaseCharger(ctx context.Context, in schemas.ReleaseChargerInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	at := ""
	if f.snapshot != nil {
		at = f.snapshot.LastNodeID
	}
	f.chargerReleases = append(f.chargerReleases, at)
	return nil
}

// newChargeEnv runs the Charge workflow of acme/AMR-001 against acts.
func newChargeEnv(acts *fakeActivities) *suite {
	s := &suite{acts: acts}
	s.SetLogger(nil)
	s.env = s.NewTestWorkflowEnvironment()
	s.env.SetStartWorkflowOptions(clientOptions("charge-acme.AMR-001"))
	s.env.RegisterWorkflowWithOptions(Charge, workflow.RegisterOptions{Name: schemas.ChargeWorkflowType})
	s.env.RegisterActivity(s.acts)
	return s
}

// A robot that refuses startCharging at the charger: the charge fails,
// stopCharging is sent all the same (the action may have taken), the robot
// is taken out of service (it would be sent charging again and again) and
// released, and the charger stays held while the robot stands on it.
func TestChargeRefusedAtTheCharger(t *testing.T) {
	const id = "charge-acme.AMR-001"
	s := newChargeEnv(&fakeActivities{})
	atCharger := schemas.RobotEvent{RobotID: "acme/AMR-001", LastNodeID: "C1", BatteryCharge: 20}
	s.acts.snapshot = &atCharger
	tag := id + "#" + "default-test-run-id"
	arrived := atCharger
	arrived.OrderID, arrived.LastNodeSequenceID = tag, 4
	s.signal(time.Second, arrived)
	refused := arrived
	refused.ActionStates = []vda5050.ActionState{{ActionID: tag + "-start-charging", ActionType: vda5050.ActionStartCharging,
		ActionStatus: vda5050.ActionFailed, ResultDescription: "no charging contact"}}
	s.signal(2*time.Second, refused)
	// A mission drives the (released) robot off the charger an hour later.
	s.at(time.Hour, func() {
		s.acts.mu.Lock()
		s.acts.snapshot = &schemas.RobotEvent{RobotID: "acme/AMR-001", LastNodeID: "A1", BatteryCharge: 20}
		s.acts.mu.Unlock()
	})
	s.env.ExecuteWorkflow(schemas.ChargeWorkflowType, schemas.ChargeInput{RobotID: "acme/AMR-001", Site: "warehouse-a", Resume: 80, Reason: "test"})
	require.True(t, s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	require.ErrorContains(t, err, "refused startCharging at charger-1: no charging contact")
	var types []string
	for _, a := range s.acts.instant {
		types = append(types, a.ActionType)
	}
	require.Equal(t, []string{vda5050.ActionStartCharging, vda5050.ActionStopCharging}, types)
	require.Equal(t, []string{"out_of_service"}, s.acts.serviceStatuses)
	require.Len(t, s.acts.releases, 1)
	require.Equal(t, []string{"A1"}, s.acts.chargerReleases, "the charger is held until the robot has left it")
	require.Equal(t, "acme/AMR-001", s.acts.reserves[0].RobotID, "the robot is reserved by name")
	require.Equal(t, tag, s.acts.orders[0].Order.OrderID, "the order names this run")
}

// A Charge queued for a robot that a maintenance then serviced where it
// stood (in_maintenance, unreserved): the robot is not driven to a
// charger with a technician beside it; the charge ends, the robot
// released untouched.
func TestChargeDoesNotDriveARobotInMaintenance(t *testing.T) {
	s := newChargeEnv(&fakeActivities{serviceStatus: "in_maintenance"})
	s.acts.snapshot = &schemas.RobotEvent{RobotID: "acme/AMR-001", LastNodeID: "A1", BatteryCharge: 20}
	s.env.ExecuteWorkflow(schemas.ChargeWorkflowType, schemas.ChargeInput{RobotID: "acme/AMR-001", Site: "warehouse-a", Resume: 80, Reason: "test"})
	require.True(t, s.env.IsWorkflowCompleted())
	require.ErrorContains(t, s.env.GetWorkflowError(), "is in_maintenance: not driven to a charger")
	require.Empty(t, s.acts.orders)
	require.Empty(t, s.acts.instant)
	require.Len(t, s.acts.releases, 1)
}

// Cancelled on the way to the charger: CANCELLED once the robot's state
// shows the drive stopped; a robot that never confirms ends the charge
// FAILED, saying why, not CANCELLED.
func TestChargeCancelledWhileDriving(t *testing.T) {
	for name, confirms := range map[string]bool{"confirmed": true, "not confirmed": false} {
		t.Run(name, func(t *testing.T) {
			const id = "charge-acme.AMR-001"
			s := newChargeEnv(&fakeActivities{})
			s.acts.snapshot = &schemas.RobotEvent{RobotID: "acme/AMR-001", LastNodeID: "A1", BatteryCharge: 20}
			tag := id + "#" + "default-test-run-id"
			driving := schemas.RobotEvent{RobotID: "acme/AMR-001", OrderID: tag, LastNodeID: "A1", NodesRemaining: 2, EdgesRemaining: 2, Driving: true, BatteryCharge: 19}
			s.signal(time.Second, driving)
			s.at(2*time.Second, func() {
				stored := driving
				if confirms {
					stored.NodesRemaining, stored.EdgesRemaining, stored.Driving = 0, 0, false
				}
				s.acts.mu.Lock()
				s.acts.snapshot = &stored
				s.acts.mu.Unlock()
				s.env.CancelWorkflow()
			})
			s.env.ExecuteWorkflow(schemas.ChargeWorkflowType, schemas.ChargeInput{RobotID: "acme/AMR-001", Site: "warehouse-a", Resume: 80, Reason: "test"})
			require.True(t, s.env.IsWorkflowCompleted())
			err := s.env.GetWorkflowError()
			require.Equal(t, []string{tag + "-cancel"}, s.acts.instantIDs())
			require.Len(t, s.acts.releases, 1)
			if confirms {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, "did not confirm cancelOrder")
			require.Equal(t, []string{"out_of_service"}, s.acts.serviceStatuses, "it may still be on its way: out of service until checked")
		})
	}
}

// A charger free in the registry but stood on by another robot: the
// charge waits, and its status says which and by whom; once granted, that
// is gone.
func TestChargeSaysWhatItWaitsFor(t *testing.T) {
	s := newChargeEnv(&fakeActivities{chargerOccupied: 3})
	s.acts.snapshot = &schemas.RobotEvent{RobotID: "acme/AMR-001", LastNodeID: "A1", BatteryCharge: 20}
	var waiting, driving schemas.ChargeStatus
	query := func(into *schemas.ChargeStatus) {
		v, err := s.env.QueryWorkflow(schemas.QueryStatus)
		require.NoError(t, err)
		require.NoError(t, v.Get(into))
	}
	s.at(Charging.RequeueAfter/2, func() { query(&waiting) })
	s.at(3*Charging.RequeueAfter+Charging.RequeueAfter/2, func() {
		query(&driving)
		s.env.CancelWorkflow()
	})
	s.env.ExecuteWorkflow(schemas.ChargeWorkflowType, schemas.ChargeInput{RobotID: "acme/AMR-001", Site: "warehouse-a", Resume: 80, Reason: "test"})
	require.True(t, s.env.IsWorkflowCompleted())
	require.Equal(t, schemas.ChargeWaitingCharger, waiting.State)
	require.Contains(t, waiting.WaitingFor, "charger-1 (robot acme/AMR-002 stands on it)")
	require.Equal(t, schemas.ChargeDriving, driving.State)
	require.Empty(t, driving.WaitingFor)
}

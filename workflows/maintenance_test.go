package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

const maintID = "maintenance-acme.AMR-001-20261206"

func newMaintEnv(t *testing.T) *suite {
	s := &suite{acts: &fakeActivities{}}
	s.SetLogger(nil)
	s.env = s.NewTestWorkflowEnvironment()
	s.env.SetStartWorkflowOptions(clientOptions(maintID))
	s.env.RegisterWorkflowWithOptions(Maintenance, workflow.RegisterOptions{Name: schemas.MaintenanceWorkflowType})
	s.env.RegisterActivity(s.acts)
	return s
}

func maintInput() schemas.MaintenanceInput {
	return schemas.MaintenanceInput{RobotID: "acme/AMR-001", Site: "warehouse-a", Station: "charger-1", Reason: "brake check", Diagnostics: true, RequestedBy: "ops"}
}

// atStation is the robot done with the maintenance order at C1 (the fake
// order's last node), with the listed instant actions' states.
func atStation(actions ...vda5050.ActionState) schemas.RobotEvent {
	return schemas.RobotEvent{RobotID: "acme/AMR-001", OrderID: maintID, LastNodeID: "C1", LastNodeSequenceID: 4, ActionStates: actions}
}

func (s *suite) maintStatus(t *testing.T) schemas.MaintenanceStatus {
	v, err := s.env.QueryWorkflow(schemas.QueryStatus)
	require.NoError(t, err)
	var st schemas.MaintenanceStatus
	require.NoError(t, v.Get(&st))
	return st
}

// Drain → reserve the robot by name → in maintenance → drive to the
// service station → diagnostics answered by the robot → sign-off pass →
// back in service and released; every step audited.
func TestMaintenanceToSignOff(t *testing.T) {
	s := newMaintEnv(t)
	s.signal(time.Second, atStation())
	diag := vda5050.ActionState{ActionID: maintID + "#diagnostics", ActionType: "diagnostics", ActionStatus: vda5050.ActionFinished, ResultDescription: "self-test ok: battery 80.0 %"}
	s.signal(2*time.Second, atStation(diag))
	var waiting schemas.MaintenanceStatus
	s.at(3*time.Second, func() { waiting = s.maintStatus(t) })
	var early error
	s.at(500*time.Millisecond, func() {
		s.env.UpdateWorkflow(schemas.UpdateComplete, "c0", &updateCallbacks{t: t, onReject: func(err error) { early = err }}, schemas.SignOff{Result: schemas.SignOffPass})
	})
	var done schemas.MaintenanceStatus
	s.at(time.Hour, func() {
		s.env.UpdateWorkflow(schemas.UpdateComplete, "c1", &updateCallbacks{t: t, onComplete: func(v any, err error) {
			require.NoError(t, err)
			done = v.(schemas.MaintenanceStatus)
		}}, schemas.SignOff{Result: schemas.SignOffPass, Notes: "pads replaced", By: "tech-7"})
	})
	s.env.ExecuteWorkflow(schemas.MaintenanceWorkflowType, maintInput())
	require.True(t, s.env.IsWorkflowCompleted())
	require.NoError(t, s.env.GetWorkflowError())
	require.ErrorContains(t, early, "a sign-off is taken only while AWAITING_SIGNOFF")
	require.Equal(t, schemas.MaintAwaitSignOff, waiting.State)
	require.Contains(t, waiting.Diagnostics, "FINISHED: self-test ok")
	require.False(t, waiting.Escalated)
	require.Equal(t, schemas.MaintReturned, done.State)
	require.Equal(t, "tech-7", done.SignedOffBy)
	require.Equal(t, []string{"draining", "in_maintenance", "in_service"}, s.acts.serviceStatuses)
	require.Equal(t, "acme/AMR-001", s.acts.reserves[0].RobotID, "the robot is reserved by name")
	require.Len(t, s.acts.orders, 1)
	require.Equal(t, maintID, s.acts.orders[0].Order.OrderID)
	require.Equal(t, "charger-1", s.acts.builds[0].Spec.Steps[0].Station)
	require.Equal(t, "", s.acts.builds[0].Spec.Steps[0].Action, "drive only")
	require.Len(t, s.acts.releases, 1)
	var kinds []string
	for _, a := range s.acts.audits {
		kinds = append(kinds, a.Kind)
	}
	require.Equal(t, []string{"maintenance.started", "maintenance.diagnostics", "maintenance.returned"}, kinds)
}

// The sign-off deadline escalates and the maintenance waits on; an
// escalate update adds to it; a failed sign-off takes the robot out of
// service.
func TestMaintenanceEscalatesAndFails(t *testing.T) {
	s := newMaintEnv(t)
	in := maintInput()
	in.Station, in.Diagnostics, in.SignOffTimeoutSeconds = "", false, 600
	var mid schemas.MaintenanceStatus
	s.at(11*time.Minute, func() { mid = s.maintStatus(t) })
	s.at(12*time.Minute, func() {
		s.env.UpdateWorkflow(schemas.UpdateEscalate, "e1", &updateCallbacks{t: t, onComplete: func(v any, err error) { require.NoError(t, err) }}, schemas.EscalateRequest{Reason: "parts on back order", By: "tech-7"})
	})
	s.at(13*time.Minute, func() {
		s.env.UpdateWorkflow(schemas.UpdateComplete, "c1", &updateCallbacks{t: t}, schemas.SignOff{Result: schemas.SignOffFail, Notes: "motor worn"})
	})
	s.env.ExecuteWorkflow(schemas.MaintenanceWorkflowType, in)
	require.True(t, s.env.IsWorkflowCompleted())
	var res schemas.MaintenanceStatus
	require.NoError(t, s.env.GetWorkflowResult(&res))
	require.True(t, mid.Escalated)
	require.Equal(t, schemas.MaintAwaitSignOff, mid.State)
	require.Equal(t, []string{"no sign-off within 10m0s", "escalated by tech-7: parts on back order"}, res.Escalations)
	require.Equal(t, schemas.MaintOutOfService, res.State)
	require.Equal(t, []string{"draining", "in_maintenance", "out_of_service"}, s.acts.serviceStatuses)
	require.Empty(t, s.acts.orders, "no station: serviced where it stands")
}

// A robot that refuses the order to the service station is left out of
// service for a technician, and released.
func TestMaintenanceRobotRefusesOrder(t *testing.T) {
	s := newMaintEnv(t)
	s.signal(time.Second, schemas.RobotEvent{RobotID: "acme/AMR-001", OrderID: "older", Errors: []vda5050.Error{{ErrorType: "orderError", ErrorLevel: vda5050.ErrorWarning,
		ErrorReferences: []vda5050.Reference{{ReferenceKey: "orderId", ReferenceValue: maintID}}, ErrorDescription: "no route"}}})
	s.env.ExecuteWorkflow(schemas.MaintenanceWorkflowType, maintInput())
	var res schemas.MaintenanceStatus
	require.NoError(t, s.env.GetWorkflowResult(&res))
	require.Equal(t, schemas.MaintOutOfService, res.State)
	require.Contains(t, res.LastError, "refused the order to charger-1")
	require.Equal(t, []string{"draining", "in_maintenance", "out_of_service"}, s.acts.serviceStatuses)
	require.Len(t, s.acts.releases, 1)
}

// A robot that stays FATAL while the maintenance waits for it is serviced
// where it stands, unreserved and undriven, once Maint.UnavailableFor has
// passed.
func TestMaintenanceOfAnUnreachableRobot(t *testing.T) {
	s := newMaintEnv(t)
	s.acts.queued = 1 << 20
	s.acts.snapshot = &schemas.RobotEvent{RobotID: "acme/AMR-001", Connection: "ONLINE",
		Errors: []vda5050.Error{{ErrorType: "motorFault", ErrorLevel: vda5050.ErrorFatal}}}
	var mid schemas.MaintenanceStatus
	s.at(Maint.UnavailableFor+2*Maint.RequeueAfter, func() { mid = s.maintStatus(t) })
	s.at(time.Hour, func() {
		s.env.UpdateWorkflow(schemas.UpdateComplete, "c1", &updateCallbacks{t: t}, schemas.SignOff{Result: schemas.SignOffPass, Notes: "motor replaced"})
	})
	s.env.ExecuteWorkflow(schemas.MaintenanceWorkflowType, maintInput())
	var res schemas.MaintenanceStatus
	require.NoError(t, s.env.GetWorkflowResult(&res))
	require.Equal(t, schemas.MaintAwaitSignOff, mid.State)
	require.Contains(t, mid.LastError, "unavailable (FATAL motorFault)")
	require.Equal(t, schemas.MaintReturned, res.State)
	require.Empty(t, s.acts.orders, "a broken robot is not driven")
	require.Empty(t, s.acts.instant, "nor asked for a self-test")
	require.Empty(t, s.acts.releases, "it was never reserved")
	require.Contains(t, s.acts.cancelled, maintID, "it left the reservation queue")
}

// Cancelled on the way to the station: the robot is told to stop
// (cancelOrder); once its state shows it stopped it is released and its
// service status put back. A robot that never confirms is somewhere on
// the way, perhaps still driving: not CANCELLED but out of service.
func TestMaintenanceCancelledWhileDriving(t *testing.T) {
	for name, confirms := range map[string]bool{"confirmed": true, "not confirmed": false} {
		t.Run(name, func(t *testing.T) {
			s := newMaintEnv(t)
			driving := schemas.RobotEvent{RobotID: "acme/AMR-001", OrderID: maintID, LastNodeID: "A1", NodesRemaining: 2, EdgesRemaining: 2, Driving: true}
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
			s.env.ExecuteWorkflow(schemas.MaintenanceWorkflowType, maintInput())
			var res schemas.MaintenanceStatus
			require.NoError(t, s.env.GetWorkflowResult(&res))
			require.Equal(t, []string{maintID + "#cancel"}, s.acts.instantIDs())
			require.Len(t, s.acts.releases, 1)
			if confirms {
				require.Equal(t, schemas.MaintCancelled, res.State)
				require.Equal(t, []string{"draining", "in_maintenance", "in_service"}, s.acts.serviceStatuses)
				return
			}
			require.Equal(t, schemas.MaintOutOfService, res.State)
			require.Contains(t, res.LastError, "did not confirm cancelOrder")
			require.Equal(t, []string{"draining", "in_maintenance", "out_of_service"}, s.acts.serviceStatuses)
		})
	}
}

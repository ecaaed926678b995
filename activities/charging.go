package activities

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/schemas"
)

// ChargingPolicy is the charge policy (config charging).
type ChargingPolicy struct {
	// Threshold, percent: a robot released below it is sent charging, and
	// missions do not get it (unless their spec sets interruptCharging).
	// 0 turns charging off.
	Threshold float64
	// Resume, percent: a charging robot is released at or above it.
	Resume float64
	// TaskQueue runs the Charge workflows (task queue maintenance).
	TaskQueue string
}

// chargeIfLow starts a Charge workflow for robotID when the charge policy
// is on, the robot's site has a charger and the robot, in service, stands
// below the threshold. Starting it twice joins the running one (one per
// robot). A failure is logged, and a start that joined a run about to end
// is lost: the Reaper's next sweep starts it (SweepLeases).
func (a *Activities) chargeIfLow(ctx context.Context, robotID, by string) {
	if a.Charging.Threshold <= 0 || a.Temporal == nil {
		return
	}
	v, err := a.Store.GetRobot(ctx, robotID)
	if err != nil || v.ServiceStatus != store.InService || v.State.BatteryCharge >= a.Charging.Threshold || !a.hasCharger(v.Site) {
		return
	}
	if err := a.startCharge(ctx, v, by); err != nil && activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Warn("start charging failed; the Reaper will try again", "robot", robotID, "error", err)
	}
}

// startCharge starts (or joins) robot v's Charge workflow.
func (a *Activities) startCharge(ctx context.Context, v store.RobotView, by string) error {
	in := schemas.ChargeInput{
		RobotID: v.ID, Site: v.Site, Resume: a.Charging.Resume, RequestedBy: by,
		Reason: fmt.Sprintf("battery %.1f %% below the charge threshold %.0f %%", v.State.BatteryCharge, a.Charging.Threshold),
	}
	_, err := a.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: schemas.ChargeWorkflowID(v.ID), TaskQueue: a.Charging.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, schemas.ChargeWorkflowType, in)
	return err
}

// chargeIdleLowRobots starts charging for every robot that stands idle,
// unreserved and in service below the threshold (one whose start after
// its mission was lost, or that ran low while idle). It returns how many
// it started or joined.
func (a *Activities) chargeIdleLowRobots(ctx context.Context) int {
	if a.Charging.Threshold <= 0 || a.Temporal == nil {
		return 0
	}
	n := 0
	for name := range a.Sites {
		if !a.hasCharger(name) {
			continue
		}
		views, err := a.Store.ListRobots(ctx, name)
		if err != nil {
			continue
		}
		for _, v := range views {
			st := v.State
			if v.ReservedBy != "" || v.ServiceStatus != store.InService || st.ConnectionState != "ONLINE" || st.FatalError != "" ||
				st.Timestamp.IsZero() || st.BatteryCharge >= a.Charging.Threshold || st.NodeStatesRemaining > 0 || st.Driving || st.ActionsUnderway() {
				continue
			}
			if err := a.startCharge(ctx, v, "reaper"); err == nil {
				n++
			}
		}
	}
	return n
}

// interruptCharging asks the Charge workflow holding the best robot for a
// queued urgent mission (highest battery among those that fit) to let it
// go (SignalInterruptCharging). Asking again on the next reserve attempt is
// harmless: the workflow is already letting go.
func (a *Activities) interruptCharging(ctx context.Context, in schemas.ReserveRobotInput) {
	robots, err := a.Store.ChargingRobots(ctx, in.Site, schemas.ChargeWorkflowPrefix, in.RequiredCapabilities, in.MinBattery)
	if err != nil || len(robots) == 0 {
		return
	}
	first, err := a.Store.ClaimInterrupt(ctx, in.MissionID, robots[0].WorkflowID, robots[0].RobotID)
	if err != nil || !first {
		return // one interrupt per mission (store.ClaimInterrupt)
	}
	a.signalAll(ctx, []string{robots[0].WorkflowID}, schemas.SignalInterruptCharging, schemas.InterruptChargingRequest{MissionID: in.MissionID})
}

// hasCharger reports whether the site map has a charging station: the
// charge policy applies only to such sites.
func (a *Activities) hasCharger(siteName string) bool {
	m, ok := a.Sites[siteName]
	if !ok {
		return false
	}
	for _, s := range m.Stations {
		if s.Type == site.StationCharge {
			return true
		}
	}
	return false
}

// ReserveCharger gives the Charge workflow in.Holder the free charging
// station (site map type charge) nearest to the robot, or a place in line
// (store.ReserveStation: first come, first served). Errors: unknown site
// or a site without chargers (InvalidMission, non-retryable); registry
// faults (retryable).
func (a *Activities) ReserveCharger(ctx context.Context, in schemas.ReserveChargerInput) (schemas.ReserveChargerResult, error) {
	m, err := a.siteMap(in.Site)
	if err != nil {
		return schemas.ReserveChargerResult{}, err
	}
	var stations []store.Station
	nodes := map[string]string{}
	for _, s := range m.Stations {
		if s.Type != site.StationCharge {
			continue
		}
		if n, ok := m.Node(s.Node); ok {
			stations = append(stations, store.Station{ID: s.ID, X: n.X, Y: n.Y, Node: s.Node})
			nodes[s.ID] = s.Node
		}
	}
	if len(stations) == 0 {
		return schemas.ReserveChargerResult{}, invalid("site %s has no charging station (stations of type %q)", in.Site, site.StationCharge)
	}
	st, err := a.Store.RobotState(ctx, in.RobotID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return schemas.ReserveChargerResult{}, storeError(err)
	}
	g, err := a.Store.ReserveStation(ctx, store.StationRequest{Site: in.Site, Holder: in.Holder, RobotID: in.RobotID, Stations: stations, X: st.X, Y: st.Y})
	if err != nil {
		return schemas.ReserveChargerResult{}, storeError(err)
	}
	res := schemas.ReserveChargerResult{StationID: g.StationID, Node: nodes[g.StationID], Queued: g.Queued, QueuePosition: g.QueuePosition}
	if g.Queued {
		res.Occupied = g.Occupied
	}
	return res, nil
}

// ReleaseCharger frees in.Holder's charging station and place in line
// (idempotent) and signals the next in line (SignalChargerAvailable).
func (a *Activities) ReleaseCharger(ctx context.Context, in schemas.ReleaseChargerInput) error {
	next, err := a.Store.ReleaseStation(ctx, in.Site, in.Holder)
	if err != nil {
		return storeError(err)
	}
	a.signalAll(ctx, next, schemas.SignalChargerAvailable, nil)
	return nil
}

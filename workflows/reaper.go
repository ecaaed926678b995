package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// Reaper frees what closed workflows still hold in the fleet registry:
// every robot reservation and queue row whose workflow has ended without
// giving it back (terminated from the CLI, timed out, or its own release
// failed for longer than Timings.ReleaseTimeout). It runs one sweep
// (activity SweepLeases) and ends; a Temporal Schedule (schemas.ReaperScheduleID,
// created by the workers) starts it every worker.reaperInterval, skipping a
// run while the previous one is still going. Each freed lease has an audit
// row (lease.freed) and counts in fleetflow_leases_freed_total. A robot of
// an edge site still on a closed workflow's order is stopped here, through
// its site's robot I/O queue, before its lease is freed (activity
// FreeLease; SweepLeasesResult.EdgeStops). A robot reserved by nobody
// that still works on a closed workflow's order is sent cancelOrder by the
// sweep (SweepLeasesResult.OrphansStopped).
func Reaper(ctx workflow.Context, in schemas.ReaperInput) (schemas.SweepLeasesResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second, MaximumAttempts: 5},
		Summary:             "free leases of closed workflows",
	})
	var res schemas.SweepLeasesResult
	if err := sweepLeases.run(ctx, schemas.SweepLeasesInput{MinAge: in.MinAge}, &res); err != nil {
		return res, err
	}
	// Robots of edge sites still on a closed workflow's order: cancelOrder
	// through each site's queue in the holder's name (the lease still
	// stands, so it cannot reach a next holder), all at once and each
	// within ReaperEdgeCancelTimeout (a site whose edge worker is away must
	// not hold up the others, nor the sweep's 10-minute run), then free
	// the leases.
	sent := make([]workflow.Future, len(res.EdgeStops))
	for i, stop := range res.EdgeStops {
		id := stop.WorkflowID + schemas.InstantActionSeparator + "reaper-cancel-" + workflow.GetInfo(ctx).WorkflowExecution.RunID
		sent[i] = sendInstantActions.start(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue: stop.RobotIOQueue, ScheduleToCloseTimeout: ReaperEdgeCancelTimeout, StartToCloseTimeout: 10 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second, NonRetryableErrorTypes: []string{schemas.ErrNotReserved, schemas.ErrUnknownRobot}},
			Summary:     "cancelOrder to " + stop.RobotID,
		}), schemas.SendInstantActionsInput{
			RobotID: stop.RobotID, Holder: stop.MissionID,
			Actions: []vda5050.Action{{ActionType: vda5050.ActionCancelOrder, ActionID: id, BlockingType: vda5050.BlockingHard}},
		})
	}
	for i, stop := range res.EdgeStops {
		err := sent[i].Get(ctx, nil)
		if err != nil {
			workflow.GetLogger(ctx).Warn("reaper: cancelOrder to a robot of a closed workflow failed; freed anyway", "robot", stop.RobotID, "error", err)
		}
		stop.OrderCancelled = err == nil
		if err := freeLease.run(ctx, stop, nil); err != nil {
			return res, err
		}
		res.Freed = append(res.Freed, stop)
	}
	res.EdgeStops = nil
	return res, nil
}

// ReaperEdgeCancelTimeout bounds the Reaper's cancelOrder to a robot of an
// edge site, retries included: past it the lease is freed all the same
// (the robot's order belongs to a closed workflow; its next state shows
// the site's bridge whatever it does).
var ReaperEdgeCancelTimeout = time.Minute

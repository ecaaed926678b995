package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// ReaperInput starts one sweep.
type ReaperInput struct {
	// MinAge: leases younger than this are not checked (default 1 min).
	MinAge time.Duration `json:"minAge,omitempty"`
}

// Reaper frees what closed workflows still hold in the fleet registry:
// every robot reservation and queue row whose workflow has ended without
// giving it back (terminated from the CLI, timed out, or its own release
// failed for longer than Timings.ReleaseTimeout). It runs one sweep
// (activity SweepLeases) and ends; a Temporal Schedule (ReaperScheduleID,
// created by the workers) starts it every worker.reaperInterval, skipping a
// run while the previous one is still going. Each freed lease has an audit
// row (lease.freed) and counts in fleetflow_leases_freed_total.
func Reaper(ctx workflow.Context, in ReaperInput) (schemas.SweepLeasesResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second, MaximumAttempts: 5},
		Summary:             "free leases of closed workflows",
	})
	var res schemas.SweepLeasesResult
	if err := workflow.ExecuteActivity(ctx, ActivitySweepLeases, schemas.SweepLeasesInput{MinAge: in.MinAge}).Get(ctx, &res); err != nil {
		return res, err
	}
	// Robots of edge sites still on a closed workflow's order: cancelOrder
	// through the site's queue in the holder's name (the lease still
	// stands, so it cannot reach a next holder), then free the lease.
	for _, stop := range res.EdgeStops {
		id := stop.WorkflowID + InstantActionSeparator + "reaper-cancel-" + workflow.GetInfo(ctx).WorkflowExecution.RunID
		err := robotIO(ctx, stop.RobotIOQueue, "cancelOrder to "+stop.RobotID, ActivitySendInstantActions, schemas.SendInstantActionsInput{
			RobotID: stop.RobotID, Holder: stop.MissionID,
			Actions: []vda5050.Action{{ActionType: vda5050.ActionCancelOrder, ActionID: id, BlockingType: vda5050.BlockingHard}},
		}, nil)
		if err != nil {
			workflow.GetLogger(ctx).Warn("reaper: cancelOrder to a robot of a closed workflow failed; freed anyway", "robot", stop.RobotID, "error", err)
		}
		stop.OrderCancelled = err == nil
		if err := workflow.ExecuteActivity(ctx, ActivityFreeLease, stop).Get(ctx, nil); err != nil {
			return res, err
		}
		res.Freed = append(res.Freed, stop)
	}
	res.EdgeStops = nil
	return res, nil
}

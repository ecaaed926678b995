package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

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
	err := workflow.ExecuteActivity(ctx, ActivitySweepLeases, schemas.SweepLeasesInput{MinAge: in.MinAge}).Get(ctx, &res)
	return res, err
}

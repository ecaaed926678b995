package workflows

import (
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/schemas"
)

// MaintenanceRound services the robots of a site one after the other (or
// in.Parallel at a time): it lists the robots in service when it starts
// and runs a Maintenance child workflow for each
// ("maintenance-<robot>-round-<start time>"), which drains, services and
// returns the robot as a Maintenance started by hand does, sign-off
// included. A round that is cancelled cancels the maintenances under way
// (each returns its robot to service). Query: status.
func MaintenanceRound(ctx workflow.Context, in schemas.MaintenanceRoundInput) (schemas.MaintenanceRoundStatus, error) {
	st := schemas.MaintenanceRoundStatus{Site: in.Site, Outcomes: map[string]string{}, StartedAt: workflow.Now(ctx)}
	if err := workflow.SetQueryHandler(ctx, schemas.QueryStatus, func() (schemas.MaintenanceRoundStatus, error) { return st, nil }); err != nil {
		return st, err
	}
	if in.Site == "" || in.Reason == "" {
		return st, temporal.NewNonRetryableApplicationError("a maintenance round needs site and reason", "InvalidMaintenance", nil)
	}
	parallel := max(in.Parallel, 1)
	if err := siteRobots.local(ctx, "robots of "+in.Site, schemas.SiteRobotsInput{Site: in.Site}, &st.Robots); err != nil {
		return st, err
	}
	label := "round-" + st.StartedAt.UTC().Format("20060102T150405")
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**maintenance round** · site `%s` · %d robots, %d at a time · %s", in.Site, len(st.Robots), parallel, in.Reason))
	running := 0
	for _, robot := range st.Robots {
		if err := workflow.Await(ctx, func() bool { return running < parallel }); err != nil || ctx.Err() != nil {
			break // cancelled: start no more
		}
		id := schemas.MaintenanceWorkflowID(robot, label)
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID: id, ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
			WaitForCancellation: true,
		})
		child := workflow.ExecuteChildWorkflow(cctx, schemas.MaintenanceWorkflowType, schemas.MaintenanceInput{
			RobotID: robot, Site: in.Site, Station: in.Station, Reason: in.Reason + " (round " + label + ")",
			RequestedBy: in.RequestedBy, Diagnostics: in.Diagnostics, SignOffTimeoutSeconds: in.SignOffTimeoutSeconds,
		})
		running++
		st.Running = append(st.Running, id)
		workflow.Go(ctx, func(gctx workflow.Context) {
			var res schemas.MaintenanceStatus
			outcome := ""
			if err := child.Get(gctx, &res); err != nil {
				outcome = "error: " + err.Error()
			} else {
				outcome = res.State
			}
			st.Outcomes[robot] = outcome
			running--
			for i, r := range st.Running {
				if r == id {
					st.Running = append(st.Running[:i], st.Running[i+1:]...)
					break
				}
			}
		})
	}
	// Wait for the maintenances under way, cancelled or not.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_ = workflow.Await(dctx, func() bool { return running == 0 })
	if ctx.Err() != nil {
		return st, temporal.NewCanceledError("maintenance round cancelled")
	}
	var bad []string
	for _, robot := range st.Robots {
		if o := st.Outcomes[robot]; o != schemas.MaintReturned {
			bad = append(bad, robot+": "+o)
		}
	}
	if len(bad) > 0 {
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("**maintenance round done** · site `%s` · not returned: %s", in.Site, strings.Join(bad, "; ")))
	} else {
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("**maintenance round done** · site `%s` · %d robots returned to service", in.Site, len(st.Robots)))
	}
	return st, nil
}

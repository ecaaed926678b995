package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/schemas"
)

// MaintenancePolicy is condition-based maintenance (config maintenance).
type MaintenancePolicy struct {
	Triggers    store.HealthThresholds
	Station     string // service station of triggered maintenances ("" = where the robot stands)
	Diagnostics bool
	TaskQueue   string // task queue maintenance
}

// startDueMaintenances starts one Maintenance workflow for each robot in
// service whose condition counters passed a trigger
// (store.HealthDue). Each epoch triggers at most one maintenance however
// often this runs: the start is recorded in the registry (MarkTriggered),
// and the workflow ID names the epoch ("maintenance-<robot>-condition-e<N>",
// never reused) should the record be lost. A maintenance signed off as
// passed starts the next epoch; a cancelled one does not trigger again
// until then. Each start is
// audited (maintenance.triggered). It returns how many it started; a
// failure is logged and tried again at the next sweep.
func (a *Activities) startDueMaintenances(ctx context.Context) int {
	p := a.Maintenance
	if a.Temporal == nil || p.TaskQueue == "" {
		return 0
	}
	due, reasons, err := a.Store.HealthDue(ctx, p.Triggers)
	if err != nil {
		a.warn(ctx, "condition-based maintenance: cannot read robot health", "error", err)
		return 0
	}
	n := 0
	for i, h := range due {
		id := schemas.MaintenanceWorkflowID(h.RobotID, fmt.Sprintf("condition-e%d", h.Epoch))
		reason := "condition-based: " + strings.Join(reasons[i], "; ")
		_, err := a.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: id, TaskQueue: p.TaskQueue, WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
			WorkflowExecutionErrorWhenAlreadyStarted: true, // a running one is "already triggered" too
		}, schemas.MaintenanceWorkflowType, schemas.MaintenanceInput{
			RobotID: h.RobotID, Site: h.Site, Station: p.Station, Reason: reason, RequestedBy: "condition-monitor", Diagnostics: p.Diagnostics,
		})
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		switch {
		case errors.As(err, &started):
			// This epoch's maintenance exists (running, or done within the
			// namespace's retention): record it.
			_ = a.Store.MarkTriggered(ctx, h.RobotID, h.Epoch)
			continue
		case err != nil:
			a.warn(ctx, "condition-based maintenance: start failed; tried again at the next sweep", "robot", h.RobotID, "error", err)
			continue
		}
		n++
		if err := a.Store.MarkTriggered(ctx, h.RobotID, h.Epoch); err != nil {
			a.warn(ctx, "condition-based maintenance: cannot record the trigger; the workflow ID keeps it once", "robot", h.RobotID, "error", err)
		}
		if err := a.Store.Audit(ctx, "condition-monitor", "maintenance.triggered", h.RobotID, map[string]any{
			"workflowId": id, "reasons": reasons[i], "epoch": h.Epoch, "errorsSeen": h.ErrorsSeen, "drivingSeconds": h.DrivingSeconds, "batteryHealth": h.BatteryHealth,
		}); err != nil {
			a.warn(ctx, "condition-based maintenance: audit failed", "robot", h.RobotID, "error", err)
		}
	}
	return n
}

// warn logs through the activity logger when ctx is an activity's.
func (a *Activities) warn(ctx context.Context, msg string, kv ...any) {
	if activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Warn(msg, kv...)
	}
}

// SiteRobots returns the IDs of the robots of in.Site in service, sorted
// (a maintenance round services them in this order). Errors: registry
// faults (retryable).
func (a *Activities) SiteRobots(ctx context.Context, in schemas.SiteRobotsInput) ([]string, error) {
	views, err := a.Store.ListRobots(ctx, in.Site)
	if err != nil {
		return nil, storeError(err)
	}
	out := []string{}
	for _, v := range views {
		if v.ServiceStatus == store.InService {
			out = append(out, v.ID)
		}
	}
	slices.Sort(out)
	return out, nil
}

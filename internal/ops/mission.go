package ops

import (
	"context"
	"errors"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/wms"
	"github.com/fleetflow/fleetflow/schemas"
)

// MissionStartOptions builds the StartWorkflowOptions for a mission started
// from the CLI: those of wms.StartOptions, and a second start of the same ID
// is an error (the CLI refuses duplicates; WMS integrations use
// wms.SubmitMission, which finds the existing mission instead).
func MissionStartOptions(cfg config.Config, spec schemas.MissionSpec, wmsClient string) client.StartWorkflowOptions {
	o := wms.StartOptions(cfg.TaskQueues.Missions, spec, wmsClient, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL)
	// Without this the SDK hands back the running workflow as if it had
	// started it: a second start must be an error.
	o.WorkflowExecutionErrorWhenAlreadyStarted = true
	// When this client also runs the missions worker (starter dev/demo,
	// bench), the first workflow task goes straight to it, skipping the
	// task-queue hop; elsewhere the server ignores it. Not with versioned
	// workers (worker.versioning): the eager task went to this process's
	// worker even when another version was current, pinning the mission to
	// a release being replaced (TestEndToEndWorkerVersionRollout).
	o.EnableEagerStart = cfg.Worker.Versioning.BuildID == ""
	return o
}

// StartMission starts a mission for WMS client wmsClient ("" = none),
// whose webhook then hears the mission's events. An unknown client is bad
// input and starts nothing.
func StartMission(ctx context.Context, c client.Client, cfg config.Config, spec schemas.MissionSpec, by, wmsClient string) (client.WorkflowRun, error) {
	if wmsClient != "" {
		if err := CheckWMSClient(cfg, wmsClient); err != nil {
			return nil, err
		}
	}
	run, err := c.ExecuteWorkflow(ctx, MissionStartOptions(cfg, spec, wmsClient), schemas.MissionWorkflowType, schemas.MissionInput{Spec: spec, RequestedBy: by, Client: wmsClient})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil, InputErrorf("mission %s already exists (workflow %s); a mission ID starts at most one workflow", spec.MissionID, schemas.MissionWorkflowID(spec.MissionID))
	}
	return run, err
}

// CheckWMSClient refuses a WMS client name that wms.clients lacks.
func CheckWMSClient(cfg config.Config, name string) error {
	if _, ok := cfg.WMS.Client(name); ok {
		return nil
	}
	known := make([]string, 0, len(cfg.WMS.Clients))
	for _, k := range cfg.WMS.Clients {
		known = append(known, k.Name)
	}
	if len(known) == 0 {
		src := cfg.Source
		if src == "" {
			src = "the configuration (no file was read)"
		}
		return InputErrorf("no WMS client %q: wms.clients in %s is empty", name, src)
	}
	return InputErrorf("no WMS client %q in wms.clients (configured: %s)", name, strings.Join(known, ", "))
}

// RootCause is what a workflow's failure says, for a person: an
// application error's message, "cancelled", or the error itself.
func RootCause(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Error()
	}
	var ce *temporal.CanceledError
	if errors.As(err, &ce) {
		return "cancelled"
	}
	return err.Error()
}

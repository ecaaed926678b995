package workflows

import (
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/schemas"
)

// Recorded Mission histories (temporal workflow show --output json) replay
// against today's code: a change that would break running missions fails
// here. Once missions run in production, a change that must alter running
// workflows goes behind workflow.GetVersion; before that (today), a change
// of the command sequence re-records them: the end-to-end tests write them
// with FLEETFLOW_RECORD_HISTORIES=DIR (starter/e2e_test.go,
// e2e_ingress_test.go, e2e_wms_test.go), or by hand from `starter dev` with
// `bin/temporal workflow show -w mission-<id> -o json > testdata/histories/mission-<case>.json`.
func TestReplayRecordedMissions(t *testing.T) {
	files, err := filepath.Glob("../testdata/histories/mission-*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded Mission histories in testdata/histories: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(Mission, workflow.RegisterOptions{Name: schemas.MissionWorkflowType})
			replayAsRecorded(t, r, f, "")
		})
	}
}

// Recorded Rollout and RobotUpdate histories, written by the end-to-end test
// with FLEETFLOW_RECORD_HISTORIES=DIR (see starter/e2e_rollout_test.go): a
// rollout's first run that continued as new, a rollout that aborted itself
// after the canary and rolled it back, and a canary robot's update that hit
// a FATAL error after boot and was rolled back.
func TestReplayRecordedOTA(t *testing.T) {
	for _, pattern := range []string{"rollout-*.json", "robotupdate-*.json"} {
		files, err := filepath.Glob("../testdata/histories/" + pattern)
		if err != nil || len(files) == 0 {
			t.Fatalf("no recorded %s histories in testdata/histories: %v", pattern, err)
		}
		for _, f := range files {
			t.Run(filepath.Base(f), func(t *testing.T) {
				r := worker.NewWorkflowReplayer()
				r.RegisterWorkflowWithOptions(Rollout, workflow.RegisterOptions{Name: schemas.RolloutWorkflowType})
				r.RegisterWorkflowWithOptions(RobotUpdate, workflow.RegisterOptions{Name: schemas.RobotUpdateWorkflowType})
				// RobotUpdate names its instant actions after its workflow ID,
				// so it replays under the ID it ran with.
				replayAsRecorded(t, r, f, recordedIDs[filepath.Base(f)])
			})
		}
	}
}

// recordedIDs are the workflow IDs the recorded OTA histories ran under.
var recordedIDs = map[string]string{
	"rollout-continued-as-new.json":      schemas.RolloutWorkflowID("e2e-good"),
	"rollout-aborted-rolled-back.json":   schemas.RolloutWorkflowID("e2e-bad"),
	"robotupdate-fatal-rolled-back.json": schemas.RobotUpdateWorkflowID("e2e-bad", "acme/R00001"),
}

// Recorded WMSEvents histories (starter/e2e_wms_test.go with
// FLEETFLOW_RECORD_HISTORIES=DIR): a mission's deliveries while the
// receiver was down at first.
func TestReplayRecordedWMSEvents(t *testing.T) {
	files, err := filepath.Glob("../testdata/histories/wmsevents-*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded WMSEvents histories in testdata/histories: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(WMSEvents, workflow.RegisterOptions{Name: schemas.WMSEventsWorkflowType})
			replayAsRecorded(t, r, f, "")
		})
	}
}

// Recorded Maintenance histories (starter/e2e_maintenance_test.go with
// FLEETFLOW_RECORD_HISTORIES=DIR): drain, drive, diagnostics, sign-off.
func TestReplayRecordedMaintenance(t *testing.T) {
	files, err := filepath.Glob("../testdata/histories/maintenance-*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded Maintenance histories in testdata/histories: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(Maintenance, workflow.RegisterOptions{Name: schemas.MaintenanceWorkflowType})
			// Maintenance names its order and instant actions after its
			// workflow ID, so it replays under the ID it ran with.
			replayAsRecorded(t, r, f, schemas.MaintenanceWorkflowID("acme/AMR-001", "e2e"))
		})
	}
}

func TestReplayRecordedCharge(t *testing.T) {
	files, err := filepath.Glob("../testdata/histories/charge-*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded Charge histories in testdata/histories: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(Charge, workflow.RegisterOptions{Name: schemas.ChargeWorkflowType})
			// Charge names its order and actions after its workflow ID and
			// run: it replays under the ID it ran with.
			replayAsRecorded(t, r, f, recordedWorkflowID(t, f))
		})
	}
}

func TestReplayRecordedMaintenanceRound(t *testing.T) {
	files, err := filepath.Glob("../testdata/histories/maintenanceround-*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded MaintenanceRound histories in testdata/histories: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(MaintenanceRound, workflow.RegisterOptions{Name: schemas.MaintenanceRoundWorkflowType})
			replayAsRecorded(t, r, f, "")
		})
	}
}

// replayAsRecorded replays history file f under workflow ID id ("" = the
// replayer's default) and the run ID it ran with (the first execution's,
// from its start event): a Mission names its WMSEvents child and its
// events after its run.
func replayAsRecorded(t *testing.T, r worker.WorkflowReplayer, f, id string) {
	t.Helper()
	raw, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	hist, err := client.HistoryFromJSON(raw, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("read %s: %v", f, err)
	}
	exec := workflow.Execution{ID: id}
	if ev := hist.GetEvents(); len(ev) > 0 {
		exec.RunID = ev[0].GetWorkflowExecutionStartedEventAttributes().GetFirstExecutionRunId()
	}
	if err := r.ReplayWorkflowHistoryWithOptions(nil, hist, worker.ReplayWorkflowHistoryOptions{OriginalExecution: exec}); err != nil {
		t.Fatalf("replay %s: %v", f, err)
	}
}

// recordedWorkflowID is the Charge workflow ID of the robot history file f
// was recorded for (from its input).
func recordedWorkflowID(t *testing.T, f string) string {
	t.Helper()
	raw, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	hist, err := client.HistoryFromJSON(raw, client.HistoryJSONOptions{})
	if err != nil || len(hist.GetEvents()) == 0 {
		t.Fatalf("read %s: %v", f, err)
	}
	var in schemas.ChargeInput
	payloads := hist.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetInput()
	if err := converter.GetDefaultDataConverter().FromPayloads(payloads, &in); err != nil || in.RobotID == "" {
		t.Fatalf("%s: no Charge input: %v", f, err)
	}
	return schemas.ChargeWorkflowID(in.RobotID)
}

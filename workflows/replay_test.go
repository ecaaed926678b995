package workflows

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Recorded Mission histories (temporal workflow show --output json) replay
// against today's code: a change that would break running missions fails
// here. Re-record with `make histories` when a change is meant to be
// incompatible, and guard it with workflow.GetVersion.
func TestReplayRecordedMissions(t *testing.T) {
	files, err := filepath.Glob("../testdata/histories/mission-*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded Mission histories in testdata/histories: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(Mission, workflow.RegisterOptions{Name: MissionWorkflowType})
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}

package workflows

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Recorded Mission histories (temporal workflow show --output json) replay
// against today's code: a change that would break running missions fails
// here. A change that must alter running workflows goes behind
// workflow.GetVersion; new histories are recorded from `starter dev` with
// `bin/temporal workflow show -w mission-<id> -o json > testdata/histories/mission-<case>.json`.
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

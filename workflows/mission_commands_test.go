package workflows

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetflow/fleetflow/schemas"
)

// A mission woken by many robot events keeps at most one timer pending,
// and none once it has decided to finish. (workflow.AwaitWithTimeout, as
// the drive loop used it, left one timer behind per event: each fired
// later into a workflow task that did nothing.)
func TestMissionKeepsOneTimer(t *testing.T) {
	s := newEnv(t)
	pending, most := map[string]bool{}, 0
	s.env.SetOnTimerScheduledListener(func(id string, _ time.Duration) {
		pending[id] = true
		most = max(most, len(pending))
	})
	s.env.SetOnTimerFiredListener(func(id string) { delete(pending, id) })
	s.env.SetOnTimerCanceledListener(func(id string) { delete(pending, id) })
	for i := range 10 {
		s.signal(time.Duration(i+1)*time.Second, driving("A1", 0, 2))
	}
	s.signal(11*time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec(), RequestedBy: "test"})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Equal(t, 1, most, "timers pending at once")
	require.Empty(t, pending, "timers left running after the mission decided to finish")
}

// The recorded Mission and RobotUpdate histories (re-recorded by the
// end-to-end tests with FLEETFLOW_RECORD_HISTORIES) carry at most one
// search-attribute upsert per workflow task, and no timer is still running
// when the workflow completes.
func TestRecordedMissionsCommandSequence(t *testing.T) {
	missions, err := filepath.Glob("../testdata/histories/mission-*.json")
	require.NoError(t, err)
	updates, err := filepath.Glob("../testdata/histories/robotupdate-*.json")
	require.NoError(t, err)
	require.NotEmpty(t, missions)
	require.NotEmpty(t, updates)
	files := append(missions, updates...)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			var h struct {
				Events []struct {
					EventID   json.Number `json:"eventId"`
					EventType string      `json:"eventType"`
					Fired     *struct {
						StartedEventID json.Number `json:"startedEventId"`
					} `json:"timerFiredEventAttributes"`
					Canceled *struct {
						StartedEventID json.Number `json:"startedEventId"`
					} `json:"timerCanceledEventAttributes"`
				} `json:"events"`
			}
			require.NoError(t, json.Unmarshal(raw, &h))
			upserts, running := 0, map[string]bool{}
			for _, e := range h.Events {
				switch e.EventType {
				case "EVENT_TYPE_WORKFLOW_TASK_COMPLETED":
					upserts = 0
				case "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES":
					upserts++
					require.LessOrEqual(t, upserts, 1, "event %s: a second search-attribute upsert in one workflow task", e.EventID)
				case "EVENT_TYPE_TIMER_STARTED":
					running[e.EventID.String()] = true
				case "EVENT_TYPE_TIMER_FIRED":
					delete(running, e.Fired.StartedEventID.String())
				case "EVENT_TYPE_TIMER_CANCELED":
					delete(running, e.Canceled.StartedEventID.String())
				case "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED", "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED", "EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED":
					require.Empty(t, running, "timers (started event IDs) still running when the workflow closed")
				}
			}
		})
	}
}

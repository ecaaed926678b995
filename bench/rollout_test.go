package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/schemas"
)

func TestBenchWavePlan(t *testing.T) {
	p, sizes, err := benchWavePlan(2000, 5)
	require.NoError(t, err)
	require.Equal(t, schemas.WavePlan{Canary: 20, Percentages: []int{25, 50, 75, 100}}, p)
	require.Equal(t, []int{20, 480, 500, 500, 500}, sizes)

	p, sizes, err = benchWavePlan(50, 5)
	require.NoError(t, err)
	require.Equal(t, 1, p.Canary)
	require.Len(t, sizes, 5)
	sum := 0
	for _, s := range sizes {
		sum += s
	}
	require.Equal(t, 50, sum)

	p, sizes, err = benchWavePlan(30, 4) // 33, 66, 100
	require.NoError(t, err)
	require.Equal(t, []int{33, 66, 100}, p.Percentages)
	require.Len(t, sizes, 4)

	p, sizes, err = benchWavePlan(7, 1)
	require.NoError(t, err)
	require.Equal(t, schemas.WavePlan{Canary: 7}, p)
	require.Equal(t, []int{7}, sizes)

	_, _, err = benchWavePlan(3, 5) // a wave would be empty
	require.Error(t, err)
	_, _, err = benchWavePlan(100, 0)
	require.Error(t, err)
	_, _, err = benchWavePlan(0, 5)
	require.Error(t, err)
}

func TestBenchRolloutSpecParses(t *testing.T) {
	p, _, err := benchWavePlan(2000, 5)
	require.NoError(t, err)
	f := &benchRolloutFlags{maxConcurrent: 100, soak: 2 * time.Second, healthCheck: time.Millisecond, robotTimeout: 2 * time.Minute}
	spec, err := benchRolloutSpec("bench-x", "bench-rollout-x", p, f)
	require.NoError(t, err)
	require.Equal(t, 100, spec.MaxConcurrent)
	require.Equal(t, schemas.Duration(2*time.Second), spec.SoakTime)
	require.Equal(t, schemas.Duration(time.Millisecond), spec.HealthCheck)
	require.Equal(t, "bench-rollout-x", spec.Targets.Site)

	f.healthCheck = 0 // the schema wants > 0
	_, err = benchRolloutSpec("bench-x", "s", p, f)
	require.Error(t, err)
}

func TestTimelineFromAudit(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	e := func(kind string, s float64, details any) store.AuditEntry {
		raw, _ := json.Marshal(details)
		return store.AuditEntry{Kind: kind, At: at(s), Details: raw}
	}
	tl := timelineFromAudit([]store.AuditEntry{
		e("rollout.started", 0, map[string]any{}),
		e("rollout.planned", 0.5, map[string]any{"waves": []int{1, 2}}),
		e("rollout.wave_started", 0.6, map[string]any{"wave": 0}),
		e("rollout.wave_done", 1.6, map[string]any{"wave": 0}),
		e("rollout.wave_started", 3.7, map[string]any{"wave": 1}),
		e("rollout.wave_done", 5.0, map[string]any{"wave": 1}),
		e("rollout.wave_done", 5.0, map[string]any{"wave": 7}), // out of range: ignored
		e("rollout.completed", 5.2, map[string]any{}),
	}, 2)
	require.Equal(t, at(0), tl.Started)
	require.Equal(t, at(0.5), tl.Planned)
	require.Equal(t, at(5.2), tl.Ended)
	require.Equal(t, time.Second, between(tl.Waves[0].Started, tl.Waves[0].Done))
	require.Equal(t, 2100*time.Millisecond, between(tl.Waves[0].Done, tl.Waves[0].Next))
	require.Equal(t, 200*time.Millisecond, between(tl.Waves[1].Done, tl.Waves[1].Next))
	require.Equal(t, time.Duration(-1), between(time.Time{}, at(1)))
}

func TestBenchRolloutFormatting(t *testing.T) {
	require.Equal(t, "0", thousands(0))
	require.Equal(t, "999", thousands(999))
	require.Equal(t, "3,912", thousands(3912))
	require.Equal(t, "10,000", thousands(10000))
	require.Equal(t, "1,234,567", thousands(1234567))
	require.Equal(t, "-1,000", thousands(-1000))

	require.Equal(t, []int{0, 4, 9}, sampleIndices(10, 3))
	require.Equal(t, []int{0, 1}, sampleIndices(2, 5))
	require.Equal(t, []int{0}, sampleIndices(10, 1))
	require.Nil(t, sampleIndices(0, 3))

	m, ok := largest([]historyCount{{WorkflowID: "a", Events: 3}, {WorkflowID: "b", Events: 9, Run: 2}, {WorkflowID: "c", Events: 9}})
	require.True(t, ok)
	require.Equal(t, "b, run 2", m.label())

	var b bytes.Buffer
	writeTargetTable(&b, []targetRow{{"overhead", "41.2 s", "< 60.0 s", true}, {"largest history", "12,000 events", "≤ 10,000", false}})
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	require.Len(t, lines, 4)
	require.Contains(t, lines[2], "| met")
	require.Contains(t, lines[3], "| MISSED")
}

// The fan-out baseline runs every child once, never more than its
// concurrency at a time.
func TestFanoutWorkflowRunsEachChildOnce(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	// Children that take a while, so that they overlap.
	slow := func(ctx workflow.Context) error { return workflow.Sleep(ctx, time.Minute) }
	env.RegisterWorkflowWithOptions(slow, workflow.RegisterOptions{Name: "BenchNoop"})
	env.RegisterWorkflowWithOptions(fanoutWorkflow, workflow.RegisterOptions{Name: "BenchFanout"})
	started := map[string]bool{}
	running, most := 0, 0
	env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, _ converter.EncodedValues) {
		started[info.WorkflowExecution.ID] = true
		running++
		most = max(most, running)
	})
	env.SetOnChildWorkflowCompletedListener(func(*workflow.Info, converter.EncodedValue, error) { running-- })
	env.ExecuteWorkflow("BenchFanout", 7, 3)
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("fan-out did not complete: %v", env.GetWorkflowError())
	}
	if len(started) != 7 || most != 3 {
		t.Errorf("%d distinct children (want 7), at most %d at once (want 3)", len(started), most)
	}
}

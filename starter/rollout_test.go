package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/schemas"
)

// The rollout commands without a Temporal server: a fake client stands in
// where a command gets as far as dialing; refusals must happen before that.

const goodRolloutSpec = `{
  "rolloutId": "r-test",
  "artifact": {"file": "fleetos-2.0.0.bin"},
  "targets": {"site": "warehouse-a", "versionRange": "<2.0.0"},
  "waves": {"canary": 1, "percentages": [50, 100]},
  "abort": {"failureType": "ALL", "thresholdPercentage": 50, "minExecuted": 1},
  "changeRequest": "CR-1"
}`

// Two schema violations: both must be reported.
const badRolloutSpec = `{
  "rolloutId": "-bad id",
  "artifact": {"file": "fleetos-2.0.0.bin"},
  "targets": {"site": "warehouse-a"},
  "waves": {"canary": 1},
  "maxConcurrent": 0,
  "abort": {"failureType": "ALL", "thresholdPercentage": 50, "minExecuted": 1}
}`

func writeSpec(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rollout.json")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type cliResult struct {
	stdout, stderr string
	err            error
	code           int
}

// runRollout runs `starter rollout args…` as main wires it. With c nil,
// dialing fails the test: the command must refuse before it dials.
func runRollout(t *testing.T, c client.Client, args ...string) cliResult {
	t.Helper()
	saved := rolloutDial
	t.Cleanup(func() { rolloutDial = saved })
	rolloutDial = func(*globalFlags) (client.Client, config.Config, error) {
		if c == nil {
			t.Errorf("rollout %v dialed Temporal; want it refused before dialing", args)
			return nil, config.Config{}, errors.New("test: no dialing")
		}
		return c, config.Default(), nil
	}
	g := &globalFlags{}
	root := &cobra.Command{Use: "starter", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringVar(&g.config, "config", filepath.Join(t.TempDir(), "absent.yaml"), "")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "table", "")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if g.output != "table" && g.output != "json" {
			return badInput("--output %q", g.output)
		}
		return nil
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(rolloutCmd(g))
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"rollout"}, args...))
	err := root.ExecuteContext(context.Background())
	return cliResult{out.String(), errOut.String(), err, exitCode(err)}
}

func TestRolloutRefusesBadUsageBeforeDialing(t *testing.T) {
	bad := writeSpec(t, badRolloutSpec)
	for _, tc := range []struct {
		name string
		args []string
		want string // in the error
	}{
		{"start without -f", []string{"start"}, "-f FILE is required"},
		{"start with a missing file", []string{"start", "-f", filepath.Join(t.TempDir(), "nope.json")}, "no such file"},
		{"start with an argument", []string{"start", "-f", bad, "extra"}, "unknown command"},
		{"abort without --reason", []string{"abort", "r1"}, "--reason is required"},
		{"abort with a blank --reason", []string{"abort", "r1", "--reason", "  "}, "--reason is required"},
		{"status without ID", []string{"status"}, "accepts 1 arg"},
		{"pause with two IDs", []string{"pause", "r1", "r2"}, "accepts 1 arg"},
		{"promote with an unknown flag", []string{"promote", "r1", "--force"}, "unknown flag"},
		{"list with an unknown state", []string{"list", "--state", "ABORTED"}, `--state "ABORTED"`},
		{"list with limit 0", []string{"list", "--limit", "0"}, "--limit 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runRollout(t, nil, tc.args...)
			if r.code != 2 {
				t.Fatalf("exit %d (err %v), want 2", r.code, r.err)
			}
			if !strings.Contains(r.err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", r.err, tc.want)
			}
		})
	}
}

func TestRolloutStartRefusesBadSpecWithEveryViolation(t *testing.T) {
	path := writeSpec(t, badRolloutSpec)
	r := runRollout(t, nil, "start", "-f", path, "--wait")
	if r.code != 2 {
		t.Fatalf("exit %d (err %v), want 2", r.code, r.err)
	}
	var se *schemas.SpecError
	if !errors.As(r.err, &se) {
		t.Fatalf("error %T %v, want a *schemas.SpecError", r.err, r.err)
	}
	for _, ptr := range []string{"/rolloutId", "/maxConcurrent"} {
		if !strings.Contains(r.err.Error(), path+": "+ptr+": ") {
			t.Errorf("error does not name %s in %s:\n%v", ptr, path, r.err)
		}
	}
	if r.stdout != "" {
		t.Errorf("printed %q for a refused spec", r.stdout)
	}
}

func TestRolloutIDNormalisation(t *testing.T) {
	for arg, want := range map[string][]string{
		"r-fleetos-2.0.0":         {"r-fleetos-2.0.0"},
		"rollout-r-fleetos-2.0.0": {"r-fleetos-2.0.0", "rollout-r-fleetos-2.0.0"},
		"rollout-rollout-1":       {"rollout-1", "rollout-rollout-1"},
		"rollout-":                {"rollout-"},
		"myrollout-1":             {"myrollout-1"},
	} {
		got := rolloutIDs(arg)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("rolloutIDs(%q) = %q, want %q", arg, got, want)
		}
		if rolloutID(arg) != want[0] {
			t.Errorf("rolloutID(%q) = %q, want %q", arg, rolloutID(arg), want[0])
		}
	}
}

func TestRolloutListQuery(t *testing.T) {
	for state, want := range map[string]string{
		"":          "WorkflowType = 'Rollout' AND ExecutionStatus != 'ContinuedAsNew'",
		"running":   "WorkflowType = 'Rollout' AND ExecutionStatus = 'Running'",
		"Completed": "WorkflowType = 'Rollout' AND ExecutionStatus = 'Completed'",
		"FAILED":    "WorkflowType = 'Rollout' AND ExecutionStatus = 'Failed'",
		"timed-out": "WorkflowType = 'Rollout' AND ExecutionStatus = 'TimedOut'",
		"cancelled": "WorkflowType = 'Rollout' AND ExecutionStatus = 'Canceled'",
	} {
		got, err := rolloutListQuery(state)
		if err != nil || got != want {
			t.Errorf("rolloutListQuery(%q) = %q, %v; want %q", state, got, err, want)
		}
	}
	if _, err := rolloutListQuery("Running' OR WorkflowType = 'Mission"); exitCode(err) != 2 {
		t.Errorf("a quoted --state got %v, want a usage error", err)
	}
}

// sampleStatus is a rollout in its second wave: canary done, one robot of
// wave 2 updating, one skipped by the selector, one skipped at reservation.
func sampleStatus() schemas.RolloutStatus {
	at := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	return schemas.RolloutStatus{
		RolloutID: "r-test", State: schemas.RolloutRunning, Artifact: "fleetos-2.0.0.bin", Version: "2.0.0",
		CurrentWave: 1,
		Waves: []schemas.WaveStatus{
			{Index: 0, Size: 1, State: "DONE", Started: 1, Succeeded: 1},
			{Index: 1, Size: 3, State: "RUNNING", Started: 2, Failed: 1},
			{Index: 2, Size: 4, State: "PENDING"},
		},
		Robots: []schemas.RobotOutcome{
			{RobotID: "acme/r-1", Wave: 0, State: schemas.RobotUpdateSucceeded, FromVersion: "1.4.2", Version: "2.0.0", Attempts: 1},
			{RobotID: "acme/r-2", Wave: 1, State: schemas.RobotUpdateFailed, FromVersion: "1.4.2", Version: "1.4.2", Attempts: 2, Reason: "DigestMismatch"},
			{RobotID: "acme/r-3", Wave: 1, State: schemas.RobotUpdateInstalling, FromVersion: "1.5.0", Attempts: 1},
			{RobotID: "acme/r-4", Wave: 1, State: schemas.RobotUpdateSkipped, FromVersion: "2.0.0", Version: "2.0.0", Reason: "already-2.0.0"},
		},
		Counts:      schemas.RolloutCounts{Targets: 8, InFlight: 1, Succeeded: 1, Failed: 1, Skipped: 1},
		FailureRate: 50,
		SoakUntil:   at.Add(5 * time.Minute),
		AbortReason: "",
		Skipped:     []schemas.SkippedRobot{{ID: "beta/x-9", Reason: "HardwareMismatch: beta/X1"}, {ID: "acme/r-7", Reason: "already runs 2.0.0"}},
		StartedAt:   at,
		UpdatedAt:   at.Add(time.Minute),
	}
}

// tableRows returns the lines after the header line that starts with
// header, up to the next blank line, split into fields.
func tableRows(t *testing.T, out, header string) [][]string {
	t.Helper()
	var rows [][]string
	in := false
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, header):
			in = true
		case in && strings.TrimSpace(l) == "":
			return rows
		case in:
			rows = append(rows, strings.Fields(l))
		}
	}
	if !in {
		t.Fatalf("no table %q in:\n%s", header, out)
	}
	return rows
}

func TestPrintRolloutStatus(t *testing.T) {
	st := sampleStatus()
	var b bytes.Buffer
	printRolloutStatus(&b, st, "http://ui/rollout-r-test")
	out := b.String()

	for _, want := range []string{
		"rollout       r-test\n",
		"artifact      fleetos-2.0.0.bin\n",
		"version       2.0.0\n",
		"state         RUNNING\n",
		"wave          2/3\n",
		"robots        8 targets: 1 succeeded, 1 failed, 0 timed out, 1 in flight, 1 skipped, 0 rolled back, 0 cancelled\n",
		"failure rate  50.0%\n",
		"soak until    " + st.SoakUntil.Local().Format(time.DateTime) + "\n",
		"skipped       beta/x-9: HardwareMismatch: beta/X1\n",
		"              acme/r-7: already runs 2.0.0\n",
		"web UI        http://ui/rollout-r-test\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "abort reason") {
		t.Errorf("an abort reason line without an abort:\n%s", out)
	}

	waves := tableRows(t, out, "WAVE  SIZE  STATE    STARTED  SUCCEEDED  FAILED  TIMED-OUT")
	wantWaves := [][]string{{"1", "1", "DONE", "1", "1", "0", "0"}, {"2", "3", "RUNNING", "2", "0", "1", "0"}, {"3", "4", "PENDING", "0", "0", "0", "0"}}
	if !equalRows(waves, wantWaves) {
		t.Errorf("wave rows %q, want %q", waves, wantWaves)
	}
	robots := tableRows(t, out, "ROBOT     WAVE  STATE       FROM   TO     ATTEMPTS  REASON")
	wantRobots := [][]string{
		{"acme/r-1", "1", "SUCCEEDED", "1.4.2", "2.0.0", "1", "-"},
		{"acme/r-2", "2", "FAILED", "1.4.2", "1.4.2", "2", "DigestMismatch"},
		{"acme/r-3", "2", "INSTALLING", "1.5.0", "-", "1", "-"},
		{"acme/r-4", "2", "SKIPPED", "2.0.0", "2.0.0", "0", "already-2.0.0"},
	}
	if !equalRows(robots, wantRobots) {
		t.Errorf("robot rows %q, want %q", robots, wantRobots)
	}

	st.State, st.AbortReason, st.Paused, st.Rollback = schemas.RolloutAborted, "2 of 3 robots FAILED (66.7%) >= 50%", true, true
	b.Reset()
	printRolloutStatus(&b, st, "l")
	for _, want := range []string{"state         ABORTED (paused)\n", "version       2.0.0 (rollback)\n", "abort reason  2 of 3 robots FAILED (66.7%) >= 50%\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("aborted status lacks %q:\n%s", want, b.String())
		}
	}
}

func equalRows(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], "\x00") != strings.Join(b[i], "\x00") {
			return false
		}
	}
	return true
}

func TestRolloutProgressLine(t *testing.T) {
	st := sampleStatus()
	labels := []string{"canary", "50%", "100%"}
	want := "RUNNING · wave 2/3 (50%): 2/3 done, 1 failed, 0 timed out, 1 skipped · overall 1 succeeded, 1 failed, 0 timed out of 8"
	if got := ops.RolloutProgress(st, labels); got != want {
		t.Errorf("progress\n got %q\nwant %q", got, want)
	}
	// Labels that do not fit the waves are left out rather than misnamed.
	if got := ops.RolloutProgress(st, labels[:2]); !strings.Contains(got, "wave 2/3: ") {
		t.Errorf("progress with 2 labels for 3 waves = %q", got)
	}
	st.CurrentWave, st.State = 0, schemas.RolloutSoaking
	got := ops.RolloutProgress(st, labels)
	if !strings.Contains(got, "SOAKING · wave 1/3 (canary): 1/1 done, 0 failed, 0 timed out · ") ||
		!strings.HasSuffix(got, " · soaking until "+st.SoakUntil.Local().Format(time.TimeOnly)) {
		t.Errorf("soaking progress = %q", got)
	}
	// Once every wave is done the workflow may point one past the last.
	st.CurrentWave = 3
	if got := ops.RolloutProgress(st, labels); !strings.Contains(got, " · wave 3/3 (100%): 0/4 done, ") {
		t.Errorf("progress past the last wave = %q", got)
	}
	if got := ops.RolloutProgress(schemas.RolloutStatus{State: schemas.RolloutVerifying}, nil); got != "VERIFYING · overall 0 succeeded, 0 failed, 0 timed out of 0" {
		t.Errorf("progress before the waves = %q", got)
	}
}

// fakeTemporal answers the calls the rollout commands make. Queries return
// statuses in turn (the last one repeats); once all were served, the run
// ends with result or resultErr.
type fakeTemporal struct {
	client.Client // nil: a call the fake does not expect panics

	mu        sync.Mutex
	existing  map[string]bool // workflow IDs that exist
	startErr  error
	started   []client.StartWorkflowOptions
	startArgs []any
	statuses  []schemas.RolloutStatus
	queried   []string
	drained   chan struct{}
	drainOnce sync.Once
	result    schemas.RolloutStatus
	resultErr error
	final     *schemas.RolloutStatus // the run's result when set (else result): abort --wait
	updates   []client.UpdateWorkflowOptions
	updateErr error
	listReqs  []*workflowservice.ListWorkflowExecutionsRequest
	listResp  *workflowservice.ListWorkflowExecutionsResponse
}

func newFake(existing ...string) *fakeTemporal {
	f := &fakeTemporal{existing: map[string]bool{}, drained: make(chan struct{})}
	for _, id := range existing {
		f.existing[id] = true
	}
	return f
}

func (f *fakeTemporal) Close() {}

func (f *fakeTemporal) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, o)
	f.startArgs = append(f.startArgs, append([]any{wf}, args...))
	if f.startErr != nil {
		return nil, f.startErr
	}
	f.existing[o.ID] = true
	return fakeRun{f, o.ID}, nil
}

func (f *fakeTemporal) GetWorkflow(_ context.Context, id, _ string) client.WorkflowRun {
	return fakeRun{f, id}
}

func (f *fakeTemporal) QueryWorkflow(_ context.Context, id, _, query string, _ ...any) (converter.EncodedValue, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queried = append(f.queried, id)
	if !f.existing[id] {
		return nil, serviceerror.NewNotFound("workflow not found for ID: " + id)
	}
	if query != schemas.QueryStatus {
		return nil, errors.New("unknown query " + query)
	}
	if len(f.statuses) == 0 {
		return nil, errors.New("no status yet")
	}
	st := f.statuses[0]
	if len(f.statuses) > 1 {
		f.statuses = f.statuses[1:]
	} else {
		f.drainOnce.Do(func() { close(f.drained) })
	}
	return jsonValue{st}, nil
}

func (f *fakeTemporal) UpdateWorkflow(_ context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, o)
	if !f.existing[o.WorkflowID] {
		return nil, serviceerror.NewNotFound("workflow not found for ID: " + o.WorkflowID)
	}
	return fakeHandle{f}, nil
}

func (f *fakeTemporal) ListWorkflow(_ context.Context, r *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listReqs = append(f.listReqs, r)
	return f.listResp, nil
}

type fakeRun struct {
	f  *fakeTemporal
	id string
}

func (r fakeRun) GetID() string                  { return r.id }
func (r fakeRun) GetRunID() string               { return "run-1" }
func (r fakeRun) GetFirstExecutionRunID() string { return "run-1" }
func (r fakeRun) GetWithOptions(ctx context.Context, v any, _ client.WorkflowRunGetOptions) error {
	return r.Get(ctx, v)
}
func (r fakeRun) Get(ctx context.Context, v any) error {
	select {
	case <-r.f.drained:
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.f.resultErr != nil {
		return r.f.resultErr
	}
	if r.f.final != nil {
		return jsonValue{*r.f.final}.Get(v)
	}
	return jsonValue{r.f.result}.Get(v)
}

type fakeHandle struct{ f *fakeTemporal }

func (h fakeHandle) WorkflowID() string { return "" }
func (h fakeHandle) RunID() string      { return "" }
func (h fakeHandle) UpdateID() string   { return "" }
func (h fakeHandle) Get(_ context.Context, v any) error {
	if h.f.updateErr != nil {
		return h.f.updateErr
	}
	return jsonValue{h.f.result}.Get(v)
}

// jsonValue decodes like the SDK's default data converter (JSON).
type jsonValue struct{ v any }

func (j jsonValue) HasValue() bool { return true }
func (j jsonValue) Get(ptr any) error {
	b, err := json.Marshal(j.v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, ptr)
}

func TestRolloutStartStartsOneWorkflow(t *testing.T) {
	f := newFake()
	r := runRollout(t, f, "start", "-f", writeSpec(t, goodRolloutSpec))
	if r.code != 0 {
		t.Fatalf("exit %d: %v", r.code, r.err)
	}
	if len(f.started) != 1 {
		t.Fatalf("%d starts, want 1", len(f.started))
	}
	o := f.started[0]
	if o.ID != "rollout-r-test" || o.TaskQueue != schemas.TaskQueueOTA ||
		o.WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE || !o.WorkflowExecutionErrorWhenAlreadyStarted {
		t.Errorf("start options %+v", o)
	}
	if id, ok := o.TypedSearchAttributes.GetKeyword(temporal.NewSearchAttributeKeyKeyword(schemas.SearchAttrRolloutID)); !ok || id != "r-test" {
		t.Errorf("RolloutId search attribute = %q, %v", id, ok)
	}
	if want := "Rollout r-test · fleetos-2.0.0.bin · site warehouse-a, version <2.0.0 · waves canary 1 → 50% → 100% · CR-1"; o.StaticSummary != want {
		t.Errorf("summary %q, want %q", o.StaticSummary, want)
	}
	args := f.startArgs[0].([]any)
	in, ok := args[1].(schemas.RolloutInput)
	if args[0] != schemas.RolloutWorkflowType || !ok || in.Spec.RolloutID != "r-test" || in.Spec.MaxConcurrent != 1 || in.RequestedBy == "" {
		t.Errorf("started %v with %+v", args[0], args[1])
	}
	want := "started rollout r-test (workflow rollout-r-test)\nhttp://127.0.0.1:8233/namespaces/default/workflows/rollout-r-test\n"
	if r.stdout != want {
		t.Errorf("printed %q, want %q", r.stdout, want)
	}
}

func TestRolloutStartDuplicateIsBadInput(t *testing.T) {
	f := newFake()
	f.startErr = serviceerror.NewWorkflowExecutionAlreadyStarted("already started", "", "run-0")
	r := runRollout(t, f, "start", "-f", writeSpec(t, goodRolloutSpec), "--wait")
	if r.code != 2 || !strings.Contains(r.err.Error(), "rollout r-test already exists (workflow rollout-r-test)") {
		t.Fatalf("exit %d, error %v; want 2 and a clear message", r.code, r.err)
	}
	if len(f.queried) != 0 {
		t.Errorf("waited on a rollout it did not start: queried %v", f.queried)
	}
}

func waitStatuses() []schemas.RolloutStatus {
	running := func(wave, done int) schemas.RolloutStatus {
		st := schemas.RolloutStatus{RolloutID: "r-test", State: schemas.RolloutRunning, CurrentWave: wave,
			Waves:  []schemas.WaveStatus{{Index: 0, Size: 1}, {Index: 1, Size: 1}, {Index: 2, Size: 2}},
			Counts: schemas.RolloutCounts{Targets: 4}}
		for i := 0; i < wave; i++ {
			st.Waves[i].Succeeded = st.Waves[i].Size
			st.Counts.Succeeded += st.Waves[i].Size
		}
		st.Waves[wave].Succeeded = done
		st.Counts.Succeeded += done
		return st
	}
	return []schemas.RolloutStatus{running(0, 0), running(0, 0), running(0, 1), running(1, 0), running(1, 0), running(2, 1)}
}

func TestRolloutStartWaitFollowsProgressAndMapsOutcome(t *testing.T) {
	saved := rolloutPollEvery
	rolloutPollEvery = time.Millisecond
	t.Cleanup(func() { rolloutPollEvery = saved })

	completed := schemas.RolloutStatus{RolloutID: "r-test", State: schemas.RolloutCompleted, CurrentWave: 2,
		Waves:  []schemas.WaveStatus{{Index: 0, Size: 1, Succeeded: 1, State: "DONE"}, {Index: 1, Size: 1, Succeeded: 1, State: "DONE"}, {Index: 2, Size: 2, Succeeded: 2, State: "DONE"}},
		Counts: schemas.RolloutCounts{Targets: 4, Succeeded: 4}}
	aborted := waitStatuses()[2]
	aborted.State, aborted.AbortReason = schemas.RolloutAborted, "abort criteria met in wave 1: 1 of 1 robot FAILED (100%) >= 50%"
	// As workflows.Rollout ends an aborted rollout: an error whose details
	// are the final status.
	abortedErr := temporal.NewNonRetryableApplicationError("rollout r-test aborted: "+aborted.AbortReason, "RolloutAborted", nil, aborted)

	for _, tc := range []struct {
		name      string
		result    schemas.RolloutStatus
		resultErr error
		code      int
		last      string // the final progress line has this
		tail      string // and the output has this
		failure   string // and ends with this line
	}{
		{"completed", completed, nil, 0, "COMPLETED · wave 3/3 (100%): 2/2 done, 0 failed, 0 timed out · overall 4 succeeded, 0 failed, 0 timed out of 4", "\nstate         COMPLETED\n", ""},
		{"aborted", schemas.RolloutStatus{}, abortedErr, 1, "ABORTED · wave 1/3 (canary): 1/1 done, 0 failed, 0 timed out · overall 1 succeeded, 0 failed, 0 timed out of 4 · abort: abort criteria met", "\nabort reason  " + aborted.AbortReason + "\n",
			"rollout r-test ABORTED: " + aborted.AbortReason},
		{"aborted without details", aborted, nil, 1, "ABORTED · wave 1/3 (canary): 1/1 done", "\nstate         ABORTED\n", ""},
		{"failed", schemas.RolloutStatus{}, temporal.NewApplicationError("signature does not verify", schemas.ErrArtifactRefused), 1, "FAILED · wave 3/3 (100%): 1/2 done",
			"\nstate         FAILED\n", "rollout r-test FAILED: signature does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.statuses, f.result, f.resultErr = waitStatuses(), tc.result, tc.resultErr
			r := runRollout(t, f, "start", "-f", writeSpec(t, goodRolloutSpec), "--wait")
			if r.code != tc.code {
				t.Fatalf("exit %d (err %v), want %d\n%s", r.code, r.err, tc.code, r.stdout)
			}
			var progress []string
			for _, l := range strings.Split(r.stdout, "\n") {
				if _, rest, ok := strings.Cut(l, "  "); ok && len(l) > 8 && l[2] == ':' && l[5] == ':' {
					progress = append(progress, rest)
				}
			}
			// Six polls, four distinct lines (repeats are not printed), then
			// the final status's.
			if wantN := 5; len(progress) != wantN {
				t.Fatalf("%d progress lines, want 5:\n%s", len(progress), r.stdout)
			}
			if !strings.HasPrefix(progress[0], "RUNNING · wave 1/3 (canary): 0/1 done, 0 failed, 0 timed out · overall 0 succeeded") ||
				!strings.HasPrefix(progress[1], "RUNNING · wave 1/3 (canary): 1/1 done") ||
				!strings.HasPrefix(progress[2], "RUNNING · wave 2/3 (50%): 0/1 done") {
				t.Errorf("progress lines:\n%s", strings.Join(progress, "\n"))
			}
			if !strings.HasPrefix(progress[len(progress)-1], tc.last) {
				t.Errorf("last progress line %q, want %q…", progress[len(progress)-1], tc.last)
			}
			if !strings.Contains(r.stdout, "WAVE  SIZE") || !strings.Contains(r.stdout, tc.tail) {
				t.Errorf("no final table with %q:\n%s", tc.tail, r.stdout)
			}
			if tc.failure != "" && !strings.HasSuffix(r.stdout, "\n"+tc.failure+"\n") {
				t.Errorf("the last line is not %q:\n%s", tc.failure, r.stdout)
			}
		})
	}
}

func TestRolloutStartWaitJSONKeepsStdoutOneDocument(t *testing.T) {
	saved := rolloutPollEvery
	rolloutPollEvery = time.Millisecond
	t.Cleanup(func() { rolloutPollEvery = saved })
	f := newFake()
	f.statuses = waitStatuses()
	f.result = schemas.RolloutStatus{RolloutID: "r-test", State: schemas.RolloutAborted, AbortReason: "by hand"}
	r := runRollout(t, f, "start", "-f", writeSpec(t, goodRolloutSpec), "--wait", "-o", "json")
	if r.code != 1 {
		t.Fatalf("exit %d (err %v), want 1", r.code, r.err)
	}
	var doc struct {
		WorkflowID string                `json:"workflowId"`
		Result     schemas.RolloutStatus `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, r.stdout)
	}
	if doc.WorkflowID != "rollout-r-test" || doc.Result.State != schemas.RolloutAborted || doc.Result.AbortReason != "by hand" {
		t.Errorf("JSON result %+v", doc)
	}
	if !strings.Contains(r.stderr, "RUNNING · wave 1/3 (canary)") {
		t.Errorf("progress not on stderr: %q", r.stderr)
	}
}

func TestRolloutStatusAcceptsWorkflowID(t *testing.T) {
	for _, tc := range []struct {
		arg, existing string
		queried       []string
	}{
		{"r-test", "rollout-r-test", []string{"rollout-r-test"}},
		{"rollout-r-test", "rollout-r-test", []string{"rollout-r-test"}},
		// A rollout whose own ID starts with "rollout-".
		{"rollout-7", "rollout-rollout-7", []string{"rollout-7", "rollout-rollout-7"}},
	} {
		f := newFake(tc.existing)
		f.statuses = []schemas.RolloutStatus{sampleStatus()}
		r := runRollout(t, f, "status", tc.arg, "-o", "json")
		if r.code != 0 {
			t.Fatalf("status %s: exit %d: %v", tc.arg, r.code, r.err)
		}
		if strings.Join(f.queried, ",") != strings.Join(tc.queried, ",") {
			t.Errorf("status %s queried %v, want %v", tc.arg, f.queried, tc.queried)
		}
		var st schemas.RolloutStatus
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.RolloutID != "r-test" || len(st.Robots) != 4 {
			t.Errorf("status %s -o json printed %q (%v)", tc.arg, r.stdout, err)
		}
	}
	r := runRollout(t, newFake(), "status", "rollout-nope")
	if r.code != 2 || !strings.Contains(r.err.Error(), "no rollout nope (workflow rollout-nope not found)") {
		t.Errorf("unknown rollout: exit %d, %v", r.code, r.err)
	}
}

func TestRolloutControlUpdates(t *testing.T) {
	f := newFake("rollout-r-test")
	// What the abort update answers: the rollout still runs its robots in
	// flight; it is not ABORTED yet, and the CLI must not say it is done.
	f.result = schemas.RolloutStatus{RolloutID: "r-test", State: schemas.RolloutRunning, AbortReason: "aborted by bob: canary loops",
		Counts: schemas.RolloutCounts{InFlight: 3}}
	r := runRollout(t, f, "abort", "rollout-r-test", "--reason", "canary loops")
	if r.code != 0 {
		t.Fatalf("abort: exit %d: %v", r.code, r.err)
	}
	u := f.updates[0]
	req, ok := u.Args[0].(schemas.AbortRequest)
	if u.WorkflowID != "rollout-r-test" || u.UpdateName != schemas.UpdateAbort || !ok || req.Reason != "canary loops" || req.By == "" ||
		u.WaitForStage != client.WorkflowUpdateStageCompleted {
		t.Errorf("abort sent %+v", u)
	}
	if want := "rollout r-test: abort accepted: no further robot starts; of the 3 robot(s) in flight, those installing finish their update first (those still waiting for their robot stop), then it ends ABORTED (state now RUNNING; follow with `starter rollout status r-test`, or abort with --wait)\nabort reason: aborted by bob: canary loops\n"; r.stdout != want {
		t.Errorf("abort printed %q, want %q", r.stdout, want)
	}

	// --wait follows the rollout until it has ended.
	f = newFake("rollout-r-test")
	f.result = schemas.RolloutStatus{RolloutID: "r-test", State: schemas.RolloutRunning, Counts: schemas.RolloutCounts{InFlight: 1}}
	f.statuses = []schemas.RolloutStatus{f.result}
	f.final = &schemas.RolloutStatus{RolloutID: "r-test", State: schemas.RolloutAborted, AbortReason: "aborted by bob: canary loops"}
	r = runRollout(t, f, "abort", "r-test", "--reason", "canary loops", "--wait")
	if r.code != 0 || !strings.Contains(r.stdout, "abort accepted") || !strings.Contains(r.stdout, "ABORTED") {
		t.Errorf("abort --wait: exit %d (%v), printed %q", r.code, r.err, r.stdout)
	}
	f = newFake("rollout-r-test")
	f.statuses = []schemas.RolloutStatus{f.result}
	f.final = &schemas.RolloutStatus{RolloutID: "r-test", State: schemas.RolloutCompleted}
	r = runRollout(t, f, "abort", "r-test", "--reason", "too late", "--wait")
	if r.code != 1 || !strings.Contains(r.err.Error(), "ended COMPLETED, not ABORTED") {
		t.Errorf("abort --wait of a rollout that completed anyway: exit %d, %v", r.code, r.err)
	}

	for name, want := range map[string]string{
		schemas.UpdatePause:   "rollout r-test: paused: no further robot starts until resumed; of the 2 robot(s) in flight, those installing finish their update first (state RUNNING)\n",
		schemas.UpdateResume:  "rollout r-test: resumed (state RUNNING)\n",
		schemas.UpdatePromote: "rollout r-test: promoted: the soak is over, the next wave starts (state RUNNING)\n",
	} {
		f := newFake("rollout-r-test")
		f.result = schemas.RolloutStatus{RolloutID: "r-test", State: schemas.RolloutRunning, Counts: schemas.RolloutCounts{InFlight: 2}}
		r := runRollout(t, f, name, "r-test")
		if r.code != 0 || len(f.updates) != 1 || f.updates[0].UpdateName != name || len(f.updates[0].Args) != 0 {
			t.Errorf("%s: exit %d (%v), sent %+v", name, r.code, r.err, f.updates)
		}
		if r.stdout != want {
			t.Errorf("%s printed %q, want %q", name, r.stdout, want)
		}
	}

	f = newFake("rollout-r-test")
	f.updateErr = temporal.NewApplicationError("rollout is COMPLETED: nothing to promote", "errorString")
	r = runRollout(t, f, "promote", "r-test")
	if r.code != 2 || r.err.Error() != "promote refused: rollout is COMPLETED: nothing to promote" {
		t.Errorf("rejected promote: exit %d, %v", r.code, r.err)
	}
	r = runRollout(t, newFake(), "pause", "r-gone")
	if r.code != 2 || !strings.Contains(r.err.Error(), "no running rollout r-gone") {
		t.Errorf("pause of an unknown rollout: exit %d, %v", r.code, r.err)
	}
}

func TestRolloutList(t *testing.T) {
	start := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	rolloutIDAttr, err := converter.GetDefaultDataConverter().ToPayload("r-2")
	if err != nil {
		t.Fatal(err)
	}
	f := newFake()
	f.listResp = &workflowservice.ListWorkflowExecutionsResponse{Executions: []*workflowpb.WorkflowExecutionInfo{
		{Execution: &commonpb.WorkflowExecution{WorkflowId: "rollout-r-2"}, Status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
			StartTime: timestamppb.New(start.Add(time.Hour)), SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{schemas.SearchAttrRolloutID: rolloutIDAttr}}},
		{Execution: &commonpb.WorkflowExecution{WorkflowId: "rollout-r-1"}, Status: enumspb.WORKFLOW_EXECUTION_STATUS_FAILED,
			StartTime: timestamppb.New(start), CloseTime: timestamppb.New(start.Add(10 * time.Minute))},
	}}
	r := runRollout(t, f, "list", "--state", "Running")
	if r.code != 0 {
		t.Fatalf("exit %d: %v", r.code, r.err)
	}
	if q := f.listReqs[0].Query; q != "WorkflowType = 'Rollout' AND ExecutionStatus = 'Running'" {
		t.Errorf("query %q", q)
	}
	rows := tableRows(t, r.stdout+"\n", "ID")
	want := [][]string{
		append([]string{"r-2", "Running"}, append(strings.Fields(start.Add(time.Hour).Local().Format(time.DateTime)), "-")...),
		append(append([]string{"r-1", "Failed"}, strings.Fields(start.Local().Format(time.DateTime))...), strings.Fields(start.Add(10*time.Minute).Local().Format(time.DateTime))...),
	}
	if !equalRows(rows, want) {
		t.Errorf("rows %q, want %q", rows, want)
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
	"github.com/fleetflow/fleetflow/workflows"
)

// Targets of issue 3's rollout benchmark (reported, never asserted).
const (
	benchRolloutOverheadTarget = 60 * time.Second
	benchRolloutHistoryTarget  = 10000
	benchRolloutArtifact       = "fleetos-2.0.0.bin"
)

type benchRolloutFlags struct {
	robots, waves, maxConcurrent, samples int
	noops                                 int
	soak, healthCheck, robotTimeout       time.Duration
	rebootDelay                           time.Duration
	timeout                               time.Duration
	explain                               bool
	cpuProfile                            string
}

func benchRolloutCmd(g *globalFlags) *cobra.Command {
	f := &benchRolloutFlags{}
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Benchmark one OTA rollout over a large virtual fleet (make bench)",
		Long: `bench rollout starts the local stack (headless, fresh ports, embedded broker)
with a generated grid site of --robots virtual robots that install at once
(install time 0, a 100 ms reboot unless --reboot-delay), then runs ONE rollout of ` + benchRolloutArtifact + `
over all of them in --waves waves (a canary of 1% of the robots, then
cumulative percentages spread evenly up to 100%), --soak after each wave
but the last, and reports:
  - the orchestration overhead: wall time minus the configured soak times;
  - per-wave durations, from the rollout's audit trail;
  - the largest workflow history: every run of the Rollout (following
    continue-as-new) and its RobotUpdate children;
each against issue 3's target (overhead < 60 s, no history over 10,000
events), and robots updated per second of orchestration (wall time minus
the soaks) against the no-op workflows/s of a baseline run first on the
same server at --max-concurrent (issue 12's target: ≥ 40 %; a ratio holds
from one machine to the next where the absolute overhead does not). Targets are reported, not enforced: the command fails only when
the rollout does not complete.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runBenchRollout(ctx, g, f, cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntVar(&f.robots, "robots", 2000, "virtual robots in the fleet, all of them targets")
	cmd.Flags().IntVar(&f.waves, "waves", 5, "waves in all: a canary of 1% of the robots, then percentages spread evenly up to 100%")
	cmd.Flags().DurationVar(&f.soak, "soak", 2*time.Second, "soak time after each wave but the last")
	cmd.Flags().IntVar(&f.maxConcurrent, "max-concurrent", 100, "robots updating at once (the spec's maxConcurrent)")
	cmd.Flags().DurationVar(&f.healthCheck, "health-check", time.Millisecond, "the spec's healthCheck (must be > 0)")
	cmd.Flags().DurationVar(&f.rebootDelay, "reboot-delay", 100*time.Millisecond, "how long a virtual robot stays offline rebooting after an install (0 = it reboots at once)")
	cmd.Flags().DurationVar(&f.robotTimeout, "robot-timeout", 2*time.Minute, "the spec's robotTimeout")
	cmd.Flags().IntVar(&f.noops, "noops", 500, "no-op workflows for the baseline, --max-concurrent at a time")
	cmd.Flags().IntVar(&f.samples, "history-samples", 20, "RobotUpdate children whose events are counted one by one (visibility's history length covers all of them)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 30*time.Minute, "give up when the rollout has not ended by then")
	cmd.Flags().BoolVar(&f.explain, "explain", false, "print the event histories of the median and the slowest RobotUpdate")
	cmd.Flags().StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (workers, bridge, broker, virtual fleet) during the rollout to this file")
	return cmd
}

// benchWavePlan is the bench's plan of waves in all: a canary of 1% of
// the robots (at least 1), then waves-1 cumulative percentages spread
// evenly up to 100 (5 waves: canary, 25, 50, 75, 100). One wave is a
// canary of every robot. The plan is checked against robots with
// workflows.PlanWaves, whose sizes it returns.
func benchWavePlan(robots, waves int) (schemas.WavePlan, []int, error) {
	if robots < 1 {
		return schemas.WavePlan{}, nil, fmt.Errorf("--robots %d: want at least 1", robots)
	}
	if waves < 1 || waves > 101 {
		return schemas.WavePlan{}, nil, fmt.Errorf("--waves %d: want 1 to 101", waves)
	}
	var p schemas.WavePlan
	if waves == 1 {
		p.Canary = robots
	} else {
		p.Canary = max(robots/100, 1)
		for k := 1; k < waves; k++ {
			p.Percentages = append(p.Percentages, k*100/(waves-1))
		}
	}
	sizes, err := workflows.PlanWaves(robots, p)
	if err != nil {
		return p, nil, fmt.Errorf("%d waves over %d robots: %w", waves, robots, err)
	}
	return p, sizes, nil
}

// benchRolloutSpec is the bench's rollout spec, run through
// schemas.ParseRollout so that it is one a release engineer could write.
func benchRolloutSpec(id, siteName string, plan schemas.WavePlan, f *benchRolloutFlags) (schemas.RolloutSpec, error) {
	spec := schemas.RolloutSpec{
		RolloutID: id,
		Artifact:  schemas.RolloutArtifact{File: benchRolloutArtifact},
		Targets:   schemas.TargetSelector{Site: siteName, VersionRange: "<2.0.0"},
		Waves:     plan, MaxConcurrent: f.maxConcurrent, SoakTime: schemas.Duration(f.soak),
		Abort:        schemas.AbortCriteria{FailureType: schemas.FailureAll, ThresholdPercentage: 50, MinExecuted: 1},
		RobotTimeout: schemas.Duration(f.robotTimeout), HealthCheck: schemas.Duration(f.healthCheck),
		ChangeRequest: "bench", RequestedBy: "bench",
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return spec, err
	}
	return schemas.ParseRollout(raw)
}

// waveTiming is one wave as the rollout's audit trail tells it.
type waveTiming struct {
	Wave    int
	Started time.Time // rollout.wave_started
	Done    time.Time // rollout.wave_done
	Next    time.Time // the next wave's start, or the rollout's end after the last wave
}

// rolloutTimeline reads a Rollout's audit trail: when it was planned,
// when each wave started and finished, when it completed (zero times for
// entries missing).
type rolloutTimeline struct {
	Started, Planned, Ended time.Time
	Waves                   []waveTiming
}

func timelineFromAudit(entries []store.AuditEntry, waves int) rolloutTimeline {
	tl := rolloutTimeline{Waves: make([]waveTiming, waves)}
	for i := range tl.Waves {
		tl.Waves[i].Wave = i
	}
	for _, e := range entries {
		var d struct {
			Wave *int `json:"wave"`
		}
		_ = json.Unmarshal(e.Details, &d)
		switch e.Kind {
		case "rollout.started":
			tl.Started = e.At
		case "rollout.planned":
			tl.Planned = e.At
		case "rollout.completed", "rollout.aborted", "rollout.failed":
			tl.Ended = e.At
		case "rollout.wave_started", "rollout.wave_done":
			if d.Wave == nil || *d.Wave < 0 || *d.Wave >= waves {
				continue
			}
			if e.Kind == "rollout.wave_started" {
				tl.Waves[*d.Wave].Started = e.At
			} else {
				tl.Waves[*d.Wave].Done = e.At
			}
		}
	}
	for i := range tl.Waves {
		if i+1 < waves {
			tl.Waves[i].Next = tl.Waves[i+1].Started
		} else {
			tl.Waves[i].Next = tl.Ended
		}
	}
	return tl
}

// between is b-a, or -1 when either is unknown.
func between(a, b time.Time) time.Duration {
	if a.IsZero() || b.IsZero() {
		return -1
	}
	return b.Sub(a)
}

func secs(d time.Duration) string {
	if d < 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// thousands writes n with a comma every three digits: 10,000.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// targetRow is one line of a target table.
type targetRow struct {
	Metric, Measured, Target string
	Met                      bool
}

func writeTargetTable(w io.Writer, rows []targetRow) {
	tw := tabwriter.NewWriter(w, 0, 2, 1, ' ', 0)
	fmt.Fprintln(tw, "metric\t| measured\t| target\t| ")
	fmt.Fprintln(tw, "------\t| --------\t| ------\t| ------")
	for _, r := range rows {
		met := "met"
		if !r.Met {
			met = "MISSED"
		}
		fmt.Fprintf(tw, "%s\t| %s\t| %s\t| %s\n", r.Metric, r.Measured, r.Target, met)
	}
	tw.Flush()
}

// historyCount is one workflow run's history length.
type historyCount struct {
	WorkflowID, RunID string
	Run               int // 1-based generation of a Rollout; 0 for a child
	Events            int64
	ClosedAs          string        // last event type (from visibility: the status)
	Took              time.Duration // start to close (from visibility)
}

func (h historyCount) label() string {
	if h.Run > 0 {
		return fmt.Sprintf("%s, run %d", h.WorkflowID, h.Run)
	}
	return h.WorkflowID
}

// countHistory counts the events of one run and returns the run it
// continued as, if any.
func countHistory(ctx context.Context, c client.Client, wfID, runID string) (historyCount, string, error) {
	h := historyCount{WorkflowID: wfID, RunID: runID}
	it := c.GetWorkflowHistory(ctx, wfID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	next := ""
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return h, "", fmt.Errorf("history of %s run %s: %w", wfID, runID, err)
		}
		h.Events++
		h.ClosedAs = e.GetEventType().String()
		if a := e.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
			next = a.GetNewExecutionRunId()
		}
	}
	return h, next, nil
}

// rolloutRuns counts the events of every run of a Rollout, following
// continue-as-new from its first run.
func rolloutRuns(ctx context.Context, c client.Client, wfID, firstRunID string) ([]historyCount, error) {
	var runs []historyCount
	for runID := firstRunID; runID != ""; {
		h, next, err := countHistory(ctx, c, wfID, runID)
		if err != nil {
			return runs, err
		}
		h.Run = len(runs) + 1
		runs = append(runs, h)
		if len(runs) > 10000 {
			return runs, errors.New("more than 10,000 runs: continue-as-new loop?")
		}
		runID = next
	}
	return runs, nil
}

// childHistoryLengths lists the closed RobotUpdates of a rollout with the
// history length visibility recorded for each.
func childHistoryLengths(ctx context.Context, c client.Client, rolloutID string) ([]historyCount, error) {
	q := fmt.Sprintf("%s = '%s' AND WorkflowType = '%s'", schemas.SearchAttrRolloutID, rolloutID, schemas.RobotUpdateWorkflowType)
	var out []historyCount
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, PageSize: 1000, NextPageToken: token})
		if err != nil {
			return out, fmt.Errorf("list %s: %w", q, err)
		}
		for _, e := range resp.GetExecutions() {
			out = append(out, historyCount{WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(),
				Events: e.GetHistoryLength(), ClosedAs: e.GetStatus().String(), Took: e.GetCloseTime().AsTime().Sub(e.GetStartTime().AsTime())})
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out, nil
		}
	}
}

// sampleIndices picks up to k indices of n, evenly spread, first and last included.
func sampleIndices(n, k int) []int {
	if n <= 0 || k <= 0 {
		return nil
	}
	if k >= n {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	if k == 1 {
		return []int{0}
	}
	out := make([]int, 0, k)
	for j := range k {
		i := j * (n - 1) / (k - 1)
		if len(out) == 0 || out[len(out)-1] != i {
			out = append(out, i)
		}
	}
	return out
}

func largest(hs []historyCount) (historyCount, bool) {
	if len(hs) == 0 {
		return historyCount{}, false
	}
	m := hs[0]
	for _, h := range hs[1:] {
		if h.Events > m.Events {
			m = h
		}
	}
	return m, true
}

// connWatch records, per robot, the connection messages the broker
// delivers (state, the message's timestamp, when it arrived), so that a
// robot that fails its health check can be explained.
type connWatch struct {
	mu   sync.Mutex
	seen map[string][]string
	t0   time.Time
}

func watchConnections(brokerURL string) (*connWatch, func(), error) {
	w := &connWatch{seen: map[string][]string{}, t0: time.Now()}
	obs := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("bench-rollout-observer").SetOrderMatters(true))
	if t := obs.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return nil, nil, fmt.Errorf("connection observer: %v", t.Error())
	}
	tok := obs.Subscribe(vda5050.Subscription(vda5050.TopicConnection), 1, func(_ mqtt.Client, m mqtt.Message) {
		k, _, err := vda5050.ParseTopic(m.Topic())
		if err != nil || len(m.Payload()) == 0 {
			return
		}
		var c vda5050.Connection
		if json.Unmarshal(m.Payload(), &c) != nil {
			return
		}
		w.mu.Lock()
		w.seen[k.String()] = append(w.seen[k.String()], fmt.Sprintf("%s(header %d, sent %s, got +%.3fs)",
			c.ConnectionState, c.HeaderID, c.Timestamp, time.Since(w.t0).Seconds()))
		w.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		obs.Disconnect(0)
		return nil, nil, fmt.Errorf("connection observer: subscribe: %v", tok.Error())
	}
	return w, func() { obs.Disconnect(100) }, nil
}

func (w *connWatch) of(robotID string) string {
	if w == nil {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.seen[robotID], " → ")
}

// probeReservations reserves and releases k robots of a site one after the
// other on the idle stack, as a RobotUpdate does (ReserveRequest.RobotID),
// and returns how long each call took: every update pays one of each, and
// both serialise on the site.
func probeReservations(ctx context.Context, st *store.Store, siteName, tag string, robots []string, k int) (reserve, release []time.Duration, err error) {
	for n, i := range sampleIndices(len(robots), k) {
		mission := fmt.Sprintf("bench-probe-%s-%d", tag, n)
		t := time.Now()
		r, err := st.Reserve(ctx, store.ReserveRequest{MissionID: mission, WorkflowID: mission, Site: siteName, RobotID: robots[i]})
		if err != nil {
			return reserve, release, err
		}
		reserve = append(reserve, time.Since(t))
		if r.RobotID == "" {
			_ = st.CancelQueued(ctx, mission)
			continue
		}
		t = time.Now()
		if _, err := st.Release(ctx, r.RobotID, mission); err != nil {
			return reserve, release, err
		}
		release = append(release, time.Since(t))
	}
	return reserve, release, nil
}

func runBenchRollout(ctx context.Context, g *globalFlags, f *benchRolloutFlags, out io.Writer) error {
	plan, sizes, err := benchWavePlan(f.robots, f.waves)
	if err != nil {
		return &ops.InputError{Err: err}
	}
	if f.soak < 0 || f.maxConcurrent < 1 {
		return ops.InputErrorf("--soak must be ≥ 0 and --max-concurrent ≥ 1")
	}
	cfg, err := benchConfig(g)
	if err != nil {
		return err
	}
	runID := strconv.FormatInt(time.Now().Unix(), 36)
	id := "bench-" + runID
	grid := site.Grid("bench-rollout-"+runID, 20, 20, 2, f.robots, []string{"acme", "robotix"})
	spec, err := benchRolloutSpec(id, grid.Site, plan, f)
	if err != nil {
		return err
	}
	soaks := time.Duration(len(sizes)-1) * f.soak // no soak after the last wave

	reboot := f.rebootDelay
	if reboot <= 0 {
		reboot = -1 // sim.Options.RebootDelay: negative reboots at once, 0 would mean the sim's default
	}
	fmt.Fprintf(out, "starting the local stack with %d virtual robots (install time 0, reboot delay %s)…\n", f.robots, max(f.rebootDelay, 0))
	t0 := time.Now()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: g.temporalBin, Headless: true, SiteMap: grid, RebootDelay: reboot}, io.Discard)
	if err != nil {
		return err
	}
	defer ls.Stop()
	c := ls.Worker.Client
	fmt.Fprintf(out, "stack up in %s; rollout %s: %s → %d targets in waves %v, maxConcurrent %d, soak %s, healthCheck %s\n",
		time.Since(t0).Round(100*time.Millisecond), id, benchRolloutArtifact, f.robots, sizes, f.maxConcurrent, f.soak, f.healthCheck)

	// The baseline: no-op workflows on the same server, at the rollout's
	// concurrency, before the rollout.
	bw, err := startBaselineWorker(c, ls.Cfg.Worker.WorkflowTaskPollers)
	if err != nil {
		return err
	}
	defer bw.Stop()
	base, err := noopBaseline(ctx, ls, c, runID, f.noops, f.maxConcurrent)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "baseline  no-op workflow, %d in flight: p50 %s, %.0f workflows/s\n", f.maxConcurrent, ms(percentile(base.durations, 0.5)), base.rate)
	fan, err := fanoutBaseline(ctx, ls, c, runID, f.noops, f.maxConcurrent)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "baseline  one parent running %d no-op children, %d at a time (a rollout's shape): %.0f children/s\n", f.noops, f.maxConcurrent, fan.rate)

	conns, stopWatch, err := watchConnections(ls.Cfg.MQTT.URL)
	if err != nil {
		fmt.Fprintf(out, "%v (failed robots will not be explained)\n", err)
	} else {
		defer stopWatch()
	}

	rctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pf.Close()
		defer pprof.StopCPUProfile() // also stopped right after the rollout; a second stop is a no-op
	}
	cpu0 := ls.CPU()
	start := time.Now()
	run, err := ops.StartRollout(rctx, c, ls.Cfg, spec, "bench")
	if err != nil {
		return err
	}
	firstRunID := run.GetRunID() // Get follows continue-as-new and moves GetRunID along
	st, runErr := ops.WaitRollout(rctx, c, run, ops.WaveLabels(plan, false), out, 5*time.Second)
	wall := time.Since(start)
	cpuUsed := ls.CPU().Sub(cpu0)
	if f.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	overhead := wall - soaks
	// Everything below reads what the rollout left behind: it must not
	// give up because the rollout used up the timeout.
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer acancel()

	wfID := schemas.RolloutWorkflowID(id)
	var tl rolloutTimeline
	if trail, err := ls.Worker.Store.AuditTrail(actx, wfID); err != nil {
		fmt.Fprintf(out, "audit trail: %v\n", err)
	} else {
		tl = timelineFromAudit(trail, len(sizes))
	}

	runs, runsErr := rolloutRuns(actx, c, wfID, firstRunID)
	children, childErr := childHistoryLengths(actx, c, id)
	var sampled []historyCount
	for _, i := range sampleIndices(len(st.Robots), f.samples) {
		h, _, err := countHistory(actx, c, schemas.RobotUpdateWorkflowID(id, st.Robots[i].RobotID), "")
		if err != nil {
			fmt.Fprintf(out, "%v\n", err)
			continue
		}
		sampled = append(sampled, h)
	}

	// Report.
	fmt.Fprintf(out, "\nfleetflow rollout benchmark — %d robots at speed 0, install time 0, reboot delay %s, %d waves %v, maxConcurrent %d, healthCheck %s, one run\n",
		f.robots, max(f.rebootDelay, 0), len(sizes), sizes, f.maxConcurrent, f.healthCheck)
	c0 := st.Counts
	fmt.Fprintf(out, "rollout   %s: %s · %d succeeded, %d failed, %d timed out, %d skipped, %d cancelled of %d targets · %d workflow runs\n",
		wfID, st.State, c0.Succeeded, c0.Failed, c0.TimedOut, c0.Skipped, c0.Cancelled, c0.Targets, len(runs))
	if runErr != nil {
		fmt.Fprintf(out, "          ended with: %s\n", ops.RootCause(runErr))
	}
	shown := 0
	for _, r := range st.Robots {
		if r.State == schemas.RobotUpdateSucceeded {
			continue
		}
		if shown++; shown <= 5 {
			fmt.Fprintf(out, "          %s %s (wave %d, %d attempts): %s\n", r.RobotID, r.State, r.Wave+1, r.Attempts, r.Reason)
			if seq := conns.of(r.RobotID); seq != "" {
				fmt.Fprintf(out, "            connection messages seen: %s\n", seq)
			}
		}
	}
	if shown > 5 {
		fmt.Fprintf(out, "          … and %d more robots not SUCCEEDED\n", shown-5)
	}
	fmt.Fprintf(out, "wall      %s from start to result; configured soak %s × %d = %s; overhead %s (%.1f ms per robot)\n",
		secs(wall), f.soak, len(sizes)-1, secs(soaks), secs(overhead), float64(overhead.Microseconds())/1000/float64(max(f.robots, 1)))
	if !tl.Started.IsZero() {
		fmt.Fprintf(out, "prepare   verify artifact, resolve targets, plan: %s\n", secs(between(tl.Started, tl.Planned)))
		tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "wave\trobots\tupdating\trobots/s\tthen (soak + handover)\tthen beyond soak\t")
		for i, w := range tl.Waves {
			ran := between(w.Started, w.Done)
			rate := "–"
			if ran > 0 {
				rate = fmt.Sprintf("%.1f", float64(sizes[i])/ran.Seconds())
			}
			soak := f.soak
			if i == len(tl.Waves)-1 {
				soak = 0
			}
			after := between(w.Done, w.Next)
			beyond := time.Duration(-1)
			if after >= 0 {
				beyond = after - soak
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t\n", i+1, sizes[i], secs(ran), rate, secs(after), secs(beyond))
		}
		tw.Flush()
	}
	if runsErr != nil {
		fmt.Fprintf(out, "rollout runs: %v\n", runsErr)
	}
	if len(runs) > 0 {
		var parts []string
		for _, r := range runs {
			parts = append(parts, fmt.Sprintf("run %d: %s", r.Run, thousands(r.Events)))
			if r.Run == len(runs) && r.ClosedAs != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED.String() {
				parts[len(parts)-1] += " (last event " + r.ClosedAs + ")"
			}
		}
		fmt.Fprintf(out, "history   Rollout runs (events): %s\n", strings.Join(parts, ", "))
	}
	if childErr != nil {
		fmt.Fprintf(out, "history   RobotUpdate children via visibility: %v\n", childErr)
	} else if len(children) > 0 {
		lens := make([]int64, len(children))
		took := make([]time.Duration, len(children))
		for i, h := range children {
			lens[i], took[i] = h.Events, h.Took
		}
		sort.Slice(lens, func(i, j int) bool { return lens[i] < lens[j] })
		m, _ := largest(children)
		fmt.Fprintf(out, "history   %d RobotUpdate children (visibility's history length): median %d, max %d (%s)\n",
			len(children), lens[len(lens)/2], m.Events, m.WorkflowID)
		fmt.Fprintf(out, "robot     RobotUpdate start → close: p50 %s, p99 %s, max %s\n",
			ms(percentile(took, 0.5)), ms(percentile(took, 0.99)), ms(percentile(took, 1)))
		// Where the CPU goes: the whole rollout (parent runs, children,
		// bridge, virtual robots) per robot, beside a no-op workflow's.
		fmt.Fprintf(out, "cpu       per robot updated: %s; per no-op workflow: %s; per no-op child of the fan-out: %s\n",
			cpuUsed.PerMission(len(children)), base.cpu.PerMission(f.noops), fan.cpu.PerMission(f.noops))
		if f.explain {
			byTook := append([]historyCount(nil), children...)
			sort.Slice(byTook, func(i, j int) bool { return byTook[i].Took < byTook[j].Took })
			for _, h := range []historyCount{byTook[len(byTook)/2], byTook[len(byTook)-1]} {
				fmt.Fprintf(out, "RobotUpdate that took %s: ", ms(h.Took))
				explainHistory(actx, c, h.WorkflowID, out)
			}
		}
	}
	if m, ok := largest(sampled); ok {
		fmt.Fprintf(out, "history   %d sampled RobotUpdate children counted event by event: max %d (%s)\n", len(sampled), m.Events, m.WorkflowID)
	}

	all := append(append(append([]historyCount(nil), runs...), sampled...), children...)
	rows := []targetRow{{
		Metric: "orchestration overhead", Measured: fmt.Sprintf("%s (wall %s − soaks %s)", secs(overhead), secs(wall), secs(soaks)),
		Target: "< " + secs(benchRolloutOverheadTarget), Met: runErr == nil && overhead < benchRolloutOverheadTarget,
	}}
	if m, ok := largest(all); ok {
		rows = append(rows, targetRow{
			Metric: "largest history", Measured: fmt.Sprintf("%s events (%s)", thousands(m.Events), m.label()),
			Target: "≤ " + thousands(benchRolloutHistoryTarget), Met: m.Events <= benchRolloutHistoryTarget,
		})
	}
	if overhead > 0 {
		perSec := float64(c0.Succeeded) / overhead.Seconds()
		rows = append(rows, targetRow{
			Metric:   "robots updated per second of orchestration",
			Measured: fmt.Sprintf("%.1f robots/s = %.0f%% of %.0f no-op workflows/s", perSec, 100*perSec/base.rate, base.rate),
			Target:   "≥ 40 %", Met: perSec >= 0.4*base.rate,
		})
		// The fair comparison: the same parent-and-children shape with
		// children that do nothing. Not one of issue 12's targets.
		fmt.Fprintf(out, "fair      %.1f robots/s = %.0f%% of the fan-out baseline's %.0f no-op children/s\n", perSec, 100*perSec/fan.rate, fan.rate)
	}
	rows = append(rows, targetRow{
		Metric: "robots updated", Measured: fmt.Sprintf("%d of %d", c0.Succeeded, f.robots),
		Target: "all", Met: c0.Succeeded == f.robots,
	})
	ids := make([]string, len(st.Robots))
	for i, r := range st.Robots {
		ids[i] = r.RobotID
	}
	if res, rel, err := probeReservations(actx, ls.Worker.Store, grid.Site, runID, ids, 20); err != nil {
		fmt.Fprintf(out, "store     reservation probe: %v\n", err)
	} else if len(res) > 0 {
		fmt.Fprintf(out, "store     one named robot of %d on the idle stack, %d times: Reserve p50 %s, Release p50 %s\n",
			len(grid.Robots), len(res), ms(percentile(res, 0.5)), ms(percentile(rel, 0.5)))
	}
	fmt.Fprintln(out)
	writeTargetTable(out, rows)
	fmt.Fprintf(out, "bridge    %s\n", bridgeCounters(ls))
	if runErr != nil {
		return fmt.Errorf("rollout %s: %w", id, runErr)
	}
	if st.State != schemas.RolloutCompleted {
		return fmt.Errorf("rollout %s ended %s", id, st.State)
	}
	return nil
}

// fanoutWorkflow is the rollout's fair baseline: a parent that runs n
// no-op child workflows (BenchNoop), at most concurrency at a time, as a
// Rollout runs its RobotUpdates. It fails with the first child that failed.
func fanoutWorkflow(ctx workflow.Context, n, concurrency int) error {
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	sel := workflow.NewSelector(ctx)
	var firstErr error
	started, running, done := 0, 0, 0
	for done < n {
		for started < n && running < concurrency {
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: fmt.Sprintf("%s-child-%d", id, started)})
			sel.AddFuture(workflow.ExecuteChildWorkflow(cctx, "BenchNoop"), func(f workflow.Future) {
				running--
				done++
				if err := f.Get(ctx, nil); err != nil && firstErr == nil {
					firstErr = err
				}
			})
			started++
			running++
		}
		sel.Select(ctx)
	}
	return firstErr
}

// fanoutRun is what the fan-out baseline measured.
type fanoutRun struct {
	rate float64 // children completed per second, parent start to close
	cpu  localstack.CPUTimes
}

// fanoutBaseline runs one BenchFanout parent with n no-op children,
// concurrency at a time (startBaselineWorker must run).
func fanoutBaseline(ctx context.Context, ls *localstack.Stack, c client.Client, runID string, n, concurrency int) (fanoutRun, error) {
	cpu0 := ls.CPU()
	t0 := time.Now()
	r, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "fanout-" + runID, TaskQueue: noopQueue}, "BenchFanout", n, concurrency)
	if err == nil {
		err = r.Get(ctx, nil)
	}
	if err != nil {
		return fanoutRun{}, fmt.Errorf("fan-out baseline: %w", err)
	}
	return fanoutRun{rate: float64(n) / time.Since(t0).Seconds(), cpu: ls.CPU().Sub(cpu0)}, nil
}

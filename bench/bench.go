package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/internal/stack"
	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// noopWorkflow is the baseline: one workflow task, no activity.
func noopWorkflow(ctx workflow.Context) error { return nil }

// startBaselineWorker polls the baselines' task queue (noopQueue) for the
// no-op, the mission-shaped and the fan-out workflow, with as many workflow task polls
// as the mission worker keeps.
func startBaselineWorker(c client.Client, pollers int) (worker.Worker, error) {
	w := worker.New(c, noopQueue, worker.Options{MaxConcurrentWorkflowTaskPollers: pollers})
	w.RegisterWorkflowWithOptions(noopWorkflow, workflow.RegisterOptions{Name: "BenchNoop"})
	w.RegisterWorkflowWithOptions(missionShapeWorkflow, workflow.RegisterOptions{Name: "BenchMissionShape"})
	w.RegisterWorkflowWithOptions(fanoutWorkflow, workflow.RegisterOptions{Name: "BenchFanout"})
	w.RegisterActivity(shapeStep)
	return w, w.Start()
}

// noopRun is what the no-op baseline measured.
type noopRun struct {
	durations []time.Duration // start → result of each no-op workflow
	rate      float64         // workflows/s
	cpu       localstack.CPUTimes
}

// noopBaseline runs n no-op workflows, concurrency at a time, after a
// warm-up (startBaselineWorker must run). A failed one fails the baseline:
// it must not pull the figures down and flatter every ratio.
func noopBaseline(ctx context.Context, ls *localstack.Stack, c client.Client, runID string, n, concurrency int) (noopRun, error) {
	noop := make([]time.Duration, n)
	warm := min(n/10, 100)
	for i := 0; i < warm; i++ { // warm up connections and caches
		r, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("noop-warm-%s-%d", runID, i), TaskQueue: noopQueue}, "BenchNoop")
		if err == nil {
			_ = r.Get(ctx, nil)
		}
	}
	cpu0 := ls.CPU()
	wall := runConcurrent(n, concurrency, func(i int) {
		t0 := time.Now()
		r, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("noop-%s-%d", runID, i), TaskQueue: noopQueue}, "BenchNoop")
		if err == nil {
			err = r.Get(ctx, nil)
		}
		if err != nil {
			noop[i] = -1
			return
		}
		noop[i] = time.Since(t0)
	})
	r := noopRun{cpu: ls.CPU().Sub(cpu0), durations: positive(noop), rate: float64(n) / wall.Seconds()}
	if len(r.durations) < n {
		return r, fmt.Errorf("baseline: %d of %d no-op workflows failed", n-len(r.durations), n)
	}
	return r, nil
}

// missionShapeWorkflow is the second baseline, a Mission's minimal shape:
// one local activity (the dispatch: plan, reserve and send the order), a
// wait for one signal (the robot's "order finished"), one local activity
// (the release), complete. Started eagerly, as the bench's missions are.
func missionShapeWorkflow(ctx workflow.Context) error {
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
	if err := workflow.ExecuteLocalActivity(lctx, shapeStep, "dispatch").Get(ctx, nil); err != nil {
		return err
	}
	workflow.GetSignalChannel(ctx, shapeSignal).Receive(ctx, nil)
	return workflow.ExecuteLocalActivity(lctx, shapeStep, "release").Get(ctx, nil)
}

const shapeSignal = "finished"

// shapeDispatched: workflow ID → closed when its first local activity ran
// (the mission-shaped baseline's "order at the robot").
var shapeDispatched sync.Map

func shapeStep(ctx context.Context, step string) error {
	if step == "dispatch" {
		if ch, ok := shapeDispatched.Load(activity.GetInfo(ctx).WorkflowExecution.ID); ok {
			select {
			case <-ch.(chan struct{}):
			default:
				close(ch.(chan struct{}))
			}
		}
	}
	return nil
}

// shapeRun is what the mission-shaped baseline measured.
type shapeRun struct {
	dispatch, finish []time.Duration // start → first local activity; signal → completed
	rate             float64         // workflows/s
	cpu              localstack.CPUTimes
	failed           int
}

// benchMissionShape runs n mission-shaped workflows, concurrency at a
// time: start eagerly, wait for the first local activity, signal, wait
// for the completion.
func benchMissionShape(ctx context.Context, ls *localstack.Stack, c client.Client, runID string, n, concurrency int) shapeRun {
	r := shapeRun{dispatch: make([]time.Duration, n), finish: make([]time.Duration, n)}
	var mu sync.Mutex
	cpu0 := ls.CPU()
	wall := runConcurrent(n, concurrency, func(i int) {
		id := fmt.Sprintf("shape-%s-%d", runID, i)
		ch := make(chan struct{})
		shapeDispatched.Store(id, ch)
		defer shapeDispatched.Delete(id)
		t0 := time.Now()
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: noopQueue, EnableEagerStart: true}, "BenchMissionShape")
		if err == nil {
			select {
			case <-ch:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		var t1, t2 time.Time
		if err == nil {
			t1 = time.Now()
			err = c.SignalWorkflow(ctx, id, "", shapeSignal, nil)
		}
		if err == nil {
			t2 = time.Now()
			err = run.Get(ctx, nil)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			r.failed++
			r.dispatch[i], r.finish[i] = -1, -1
			return
		}
		r.dispatch[i], r.finish[i] = t1.Sub(t0), time.Since(t2)
	})
	r.cpu = ls.CPU().Sub(cpu0)
	r.dispatch, r.finish = positive(r.dispatch), positive(r.finish)
	r.rate = float64(n-r.failed) / wall.Seconds()
	return r
}

// positive drops the failed samples (-1).
func positive(d []time.Duration) []time.Duration {
	out := d[:0:0]
	for _, v := range d {
		if v >= 0 {
			out = append(out, v)
		}
	}
	return out
}

const noopQueue = "bench-noop"

type benchFlags struct {
	robots, missions, concurrency, noops, memRobots int
	explain                                         bool
	cpuProfile                                      string
}

func benchCmd(g *globalFlags) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark missions on the local stack against a no-op workflow baseline (make bench)",
		Long: `bench starts the local stack (headless, fresh ports) with a generated grid
site and a virtual fleet at speed 0, measures a no-op workflow's round trip
and throughput as the baseline, then runs missions at the same concurrency
and reports dispatch latency (start → order received by the robot), finish
latency (robot reports the order finished → workflow completed), missions
per second and the virtual fleet's memory, each against its target.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBench(cmd.Context(), g, f, cmd.OutOrStdout()) },
	}
	cmd.Flags().IntVar(&f.robots, "robots", 200, "virtual robots in the fleet")
	cmd.Flags().IntVar(&f.missions, "missions", 2000, "missions to run")
	cmd.Flags().IntVar(&f.concurrency, "concurrency", 50, "missions (and no-op workflows) in flight")
	cmd.Flags().IntVar(&f.noops, "noops", 1000, "no-op workflows for the baseline")
	cmd.Flags().IntVar(&f.memRobots, "memory-robots", 1000, "robots in the separate process whose RSS is measured")
	cmd.Flags().BoolVar(&f.explain, "explain-slowest", false, "print the event history of the slowest mission")
	cmd.Flags().StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (workers, bridge, virtual fleet, embedded broker) during the missions to `FILE`")
	cmd.AddCommand(benchRolloutCmd(g), benchBurstCmd(g), benchIngressCmd(g), benchEdgeCmd(g), benchScaleCmd(g))
	return cmd
}

// pickDropMissions returns n missions at site map m, each a pick at a
// station drawn from rng then a drop at another drawn from rng (MinBattery
// 5); id names mission i. The same rng seed gives the same missions.
func pickDropMissions(m *site.Map, rng *rand.Rand, n int, id func(i int) string) []schemas.MissionSpec {
	picks, drops := m.PickAndDropStations()
	specs := make([]schemas.MissionSpec, n)
	for i := range specs {
		specs[i] = schemas.MissionSpec{MissionID: id(i), Site: m.Site, MinBattery: 5,
			Steps: []schemas.MissionStep{{Station: picks[rng.IntN(len(picks))], Action: "pick"}, {Station: drops[rng.IntN(len(drops))], Action: "drop"}}}
	}
	return specs
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p * float64(len(s)-1))
	return s[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// runConcurrent runs n jobs with at most c in flight; returns wall time.
func runConcurrent(n, c int, job func(i int)) time.Duration {
	start := time.Now()
	sem := make(chan struct{}, c)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			job(i)
		}(i)
	}
	wg.Wait()
	return time.Since(start)
}

// benchConfig is the configuration every benchmark runs with: the local
// stack on fresh ports, the embedded broker (measuring fleetflow, not a
// shared broker), virtual robots at speed 0 with instant actions.
func benchConfig(g *globalFlags) (config.Config, error) {
	cfg, err := loadConfig(g)
	if err != nil {
		return cfg, err
	}
	cfg.Temporal.DevServerPort, _ = stack.FreePort()
	cfg.Temporal.DevUIPort, _ = stack.FreePort()
	cfg.MQTT.URL = ""
	cfg.MQTT.EmbeddedPort, _ = stack.FreePort()
	cfg.Worker.HTTPAddr = "127.0.0.1:0"
	cfg.Artifacts.ServePort = 0
	cfg.Sim.Speed, cfg.Sim.ActionDuration = 0, 0
	return cfg, nil
}

func runBench(ctx context.Context, g *globalFlags, f *benchFlags, out io.Writer) error {
	cfg, err := benchConfig(g)
	if err != nil {
		return err
	}
	grid := site.Grid("bench", 20, 20, 2, f.robots, []string{"acme", "robotix"})
	fmt.Fprintf(out, "starting the local stack with %d virtual robots…\n", f.robots)
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: g.temporalBin, Headless: true, SiteMap: grid}, io.Discard)
	if err != nil {
		return err
	}
	defer ls.Stop()
	c := ls.Worker.Client

	// Baseline: a no-op workflow on the same server, same concurrency, and a
	// worker polling like the mission worker.
	w, err := startBaselineWorker(c, ls.Cfg.Worker.WorkflowTaskPollers)
	if err != nil {
		return err
	}
	defer w.Stop()
	runID := strconv.FormatInt(time.Now().Unix(), 36)
	base, err := noopBaseline(ctx, ls, c, runID, f.noops, f.concurrency)
	if err != nil {
		return err
	}
	noop, noopCPU := base.durations, base.cpu
	noopP50 := percentile(noop, 0.5)
	noopRate := base.rate
	// The second baseline: a mission's minimal shape, same server, same
	// concurrency (issue 12: the Mission at Temporal's floor).
	shape := benchMissionShape(ctx, ls, c, runID, f.noops, f.concurrency)
	if shape.failed > 0 {
		return fmt.Errorf("baseline: %d of %d mission-shaped workflows failed", shape.failed, f.noops)
	}

	specs := pickDropMissions(grid, rand.New(rand.NewPCG(1, 2)), f.missions, func(i int) string { return fmt.Sprintf("bench-%s-%05d", runID, i) })
	fmt.Fprintf(out, "baseline done; running %d missions, %d in flight…\n", f.missions, f.concurrency)
	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	cpu0 := ls.CPU()
	mr, err := benchMissions(ctx, c, ls.Cfg, ls.Cfg.MQTT.URL, specs, f.concurrency)
	if err != nil {
		return err
	}
	cpuUsed := ls.CPU().Sub(cpu0)
	dispatch, finish, execution, startAt, doneAt, finishAt, failed, missionWall := mr.dispatch, mr.finish, mr.execution, mr.startAt, mr.doneAt, mr.finishAt, mr.failed, mr.wall
	rate := float64(f.missions-failed) / missionWall.Seconds()
	if f.explain {
		slowest := 0
		for i := range specs {
			if doneAt[i].Sub(startAt[i]) > doneAt[slowest].Sub(startAt[slowest]) {
				slowest = i
			}
		}
		explainHistory(ctx, c, schemas.MissionWorkflowID(specs[slowest].MissionID), out)
	}

	breakdown := finishBreakdown(ctx, c, specs, finishAt, doneAt, 100)

	rss, err := fleetRSS(ctx, ls.Cfg, f.memRobots)
	if err != nil {
		fmt.Fprintf(out, "memory measurement failed: %v\n", err)
	}
	dispP50, finP50 := percentile(dispatch, 0.5), percentile(finish, 0.5)
	pass := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "MISSED"
	}
	fmt.Fprintf(out, "\nfleetflow benchmark — %d robots at speed 0, %d missions, %d in flight, one run\n", f.robots, f.missions, f.concurrency)
	fmt.Fprintf(out, "baseline  no-op workflow: p50 %s, p99 %s, %.0f workflows/s\n", ms(noopP50), ms(percentile(noop, 0.99)), noopRate)
	fmt.Fprintf(out, "dispatch  start → order at robot: p50 %s, p99 %s  = %.2f× no-op p50 (target ≤ 1.5×) %s\n", ms(dispP50), ms(percentile(dispatch, 0.99)),
		float64(dispP50)/float64(noopP50), pass(float64(dispP50) <= 1.5*float64(noopP50)))
	fmt.Fprintf(out, "finish    robot finished → workflow completed: p50 %s, p99 %s  = %.2f× no-op p50 (target ≤ 1.0×) %s\n", ms(finP50), ms(percentile(finish, 0.99)),
		float64(finP50)/float64(noopP50), pass(finP50 <= noopP50))
	fmt.Fprintf(out, "finish    breakdown (p50 of %s\n", breakdown)
	fmt.Fprintf(out, "robot     order received → finished (virtual robot, speed 0): p50 %s, p99 %s\n", ms(percentile(execution, 0.5)), ms(percentile(execution, 0.99)))
	fmt.Fprintf(out, "throughput %.0f missions/s = %.0f%% of no-op throughput (target ≥ 50%%) %s; %d failed\n", rate, 100*rate/noopRate, pass(rate >= noopRate/2), failed)
	if rss > 0 {
		fmt.Fprintf(out, "memory    %d virtual robots in one process: %.0f MB RSS (target < 300 MB) %s\n", f.memRobots, float64(rss)/(1<<20), pass(rss < 300<<20))
	}
	fmt.Fprintf(out, "samples   %d dispatch, %d finish\n", len(dispatch), len(finish))
	fmt.Fprintf(out, "cpu       per no-op workflow: %s\n", noopCPU.PerMission(f.noops))
	fmt.Fprintf(out, "cpu       per mission-shaped workflow: %s\n", shape.cpu.PerMission(f.noops))
	fmt.Fprintf(out, "cpu       per mission: %s\n", cpuUsed.PerMission(f.missions))
	// The Mission against its minimal shape (issue 12 targets).
	shapeFin := percentile(shape.finish, 0.5)
	serverMission := float64(cpuUsed["temporal"]) / float64(max(f.missions, 1))
	serverShape := float64(shape.cpu["temporal"]) / float64(max(f.noops, 1))
	fmt.Fprintf(out, "shape     mission-shaped baseline (eager start, local activity, one signal, local activity): start → first local activity p50 %s; signal → completed p50 %s, p99 %s; %.0f workflows/s\n",
		ms(percentile(shape.dispatch, 0.5)), ms(shapeFin), ms(percentile(shape.finish, 0.99)), shape.rate)
	fmt.Fprintf(out, "vs shape  throughput %.0f%% of the shape's (target ≥ 80%%) %s; finish p50 %.2f× the shape's signal → completed (target ≤ 1.2×) %s; Temporal server CPU per mission %.2f× the shape's (target ≤ 1.25×) %s\n",
		100*rate/shape.rate, pass(rate >= 0.8*shape.rate), float64(finP50)/float64(shapeFin), pass(float64(finP50) <= 1.2*float64(shapeFin)),
		serverMission/serverShape, pass(serverMission <= 1.25*serverShape))
	fmt.Fprintf(out, "bridge    %s\n", bridgeCounters(ls))
	fmt.Fprintf(out, "local activities (mean, whole run) %s\n", localActivityLatency(ls))
	if failed > 0 {
		return fmt.Errorf("%d missions failed", failed)
	}
	return nil
}

// missionRun is what benchMissions measured.
type missionRun struct {
	// dispatch: start → order at the robot; finish: robot finished →
	// workflow completed; execution: order received → robot finished.
	dispatch, finish, execution []time.Duration
	startAt, doneAt             []time.Time // per spec
	finishAt                    map[string]time.Time
	failed                      int
	wall                        time.Duration
}

// benchMissions runs specs, concurrency at a time, and watches the
// robots' side on the broker at brokerURL: when each order arrives, when
// each finishes.
func benchMissions(ctx context.Context, c client.Client, cfg config.Config, brokerURL string, specs []schemas.MissionSpec, concurrency int) (missionRun, error) {
	var mu sync.Mutex
	orderAt := map[string]time.Time{}
	finishAt := map[string]time.Time{}
	obs := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID(fmt.Sprintf("bench-observer-%d", time.Now().UnixNano())).SetOrderMatters(false))
	if t := obs.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return missionRun{}, fmt.Errorf("observer: %v", t.Error())
	}
	defer obs.Disconnect(100)
	subTok := obs.SubscribeMultiple(map[string]byte{vda5050.Subscription(vda5050.TopicOrder): 0, vda5050.Subscription(vda5050.TopicState): 0}, func(_ mqtt.Client, m mqtt.Message) {
		now := time.Now()
		if strings.HasSuffix(m.Topic(), "/order") {
			var o struct {
				OrderID string `json:"orderId"`
			}
			if json.Unmarshal(m.Payload(), &o) == nil {
				mu.Lock()
				if _, seen := orderAt[o.OrderID]; !seen {
					orderAt[o.OrderID] = now
				}
				mu.Unlock()
			}
			return
		}
		// Most states are mid-route; skip them without decoding (the
		// observer is measurement, and shares the CPU with what it measures).
		// The virtual robots write compact JSON, so a finished order reads
		// "nodeStates":[] verbatim; a missed one shows as fewer finish samples.
		if !bytes.Contains(m.Payload(), []byte(`"nodeStates":[]`)) {
			return
		}
		var st struct {
			OrderID      string `json:"orderId"`
			Driving      bool   `json:"driving"`
			ActionStates []struct {
				ActionStatus vda5050.ActionStatus `json:"actionStatus"`
			} `json:"actionStates"`
		}
		if json.Unmarshal(m.Payload(), &st) != nil || st.OrderID == "" || st.Driving || len(st.ActionStates) == 0 {
			return
		}
		for _, a := range st.ActionStates {
			if a.ActionStatus != vda5050.ActionFinished {
				return
			}
		}
		mu.Lock()
		if _, seen := finishAt[st.OrderID]; !seen {
			finishAt[st.OrderID] = now
		}
		mu.Unlock()
	})
	if !subTok.WaitTimeout(10*time.Second) || subTok.Error() != nil {
		return missionRun{}, fmt.Errorf("observer: subscribe to orders and states: %v", subTok.Error())
	}
	r := missionRun{startAt: make([]time.Time, len(specs)), doneAt: make([]time.Time, len(specs)), finishAt: finishAt}
	var fmu sync.Mutex
	r.wall = runConcurrent(len(specs), concurrency, func(i int) {
		r.startAt[i] = time.Now()
		run, err := ops.StartMission(ctx, c, cfg, specs[i], "bench", "")
		var res schemas.MissionResult
		if err == nil {
			err = run.Get(ctx, &res)
		}
		r.doneAt[i] = time.Now()
		if err != nil || res.State != schemas.MissionCompleted {
			fmu.Lock()
			r.failed++
			if r.failed <= 3 {
				fmt.Fprintf(os.Stderr, "mission %s: %v %s\n", specs[i].MissionID, err, res.State)
			}
			fmu.Unlock()
		}
	})
	mu.Lock()
	defer mu.Unlock()
	for i, s := range specs {
		wf := schemas.MissionWorkflowID(s.MissionID)
		if t, ok := orderAt[wf]; ok {
			r.dispatch = append(r.dispatch, t.Sub(r.startAt[i]))
		}
		if t, ok := finishAt[wf]; ok && r.doneAt[i].After(t) {
			r.finish = append(r.finish, r.doneAt[i].Sub(t))
			if o, ok := orderAt[wf]; ok {
				r.execution = append(r.execution, t.Sub(o))
			}
		}
	}
	return r, nil
}

// fleetRSS starts `starter sim --grid n` (the starter binary beside this
// one) as its own process against the
// stack's broker and reads its resident memory once every robot is online.
func fleetRSS(ctx context.Context, cfg config.Config, n int) (int64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	starter := filepath.Join(filepath.Dir(exe), "starter")
	if _, err := os.Stat(starter); err != nil {
		return 0, fmt.Errorf("the virtual fleet's memory is measured in a `starter sim` process, and starter is not beside this binary (make build puts both in bin/): %w", err)
	}
	cmd := exec.CommandContext(ctx, starter, "sim", "--grid", strconv.Itoa(n), "--speed", "0")
	cmd.Env = append(os.Environ(), "FLEETFLOW_MQTT_URL="+cfg.MQTT.URL)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || !strings.Contains(sc.Text(), "online") {
		return 0, fmt.Errorf("sim did not come online: %q", sc.Text())
	}
	time.Sleep(2 * time.Second) // let the first states go out
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", cmd.Process.Pid)
}

// bridgeCounters summarises the bridge's Prometheus counters.
func bridgeCounters(ls *localstack.Stack) string {
	mfs, err := ls.Worker.Registry.Gather()
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "fleetflow_bridge_") {
			continue
		}
		if h := mf.GetMetric()[0].GetHistogram(); h != nil && h.GetSampleCount() > 0 {
			parts = append(parts, fmt.Sprintf("%s_mean=%.1fms", strings.TrimPrefix(mf.GetName(), "fleetflow_bridge_"), 1000*h.GetSampleSum()/float64(h.GetSampleCount())))
			continue
		}
		for _, m := range mf.GetMetric() {
			label := ""
			for _, l := range m.GetLabel() {
				label += "{" + l.GetValue() + "}"
			}
			parts = append(parts, fmt.Sprintf("%s%s=%.0f", strings.TrimPrefix(mf.GetName(), "fleetflow_bridge_"), label, m.GetCounter().GetValue()))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// explainHistory prints a workflow's events with their time offsets.
func explainHistory(ctx context.Context, c client.Client, wfID string, out io.Writer) {
	it := c.GetWorkflowHistory(ctx, wfID, "", false, 0)
	var t0 time.Time
	fmt.Fprintf(out, "history of %s:\n", wfID)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			fmt.Fprintln(out, err)
			return
		}
		at := e.GetEventTime().AsTime()
		if t0.IsZero() {
			t0 = at
		}
		detail := ""
		if m := e.GetMarkerRecordedEventAttributes(); m != nil {
			detail = m.GetMarkerName()
			if p := m.GetDetails()["data"]; p != nil && len(p.Payloads) > 0 {
				detail = string(p.Payloads[0].Data)
				if len(detail) > 60 {
					detail = detail[:60]
				}
			}
		}
		fmt.Fprintf(out, "  %8.3fs %3d %s %s\n", at.Sub(t0).Seconds(), e.GetEventId(), strings.TrimPrefix(e.GetEventType().String(), "EVENT_TYPE_"), detail)
	}
}

// finishBreakdown splits the finish latency of up to n missions, read back
// from their histories, into: robot finished → signal recorded (bridge and
// signal call), signal → workflow task started (server and worker
// scheduling), that task's run (release, audit, WMS notice) and workflow
// completed → result at the client. It returns the p50 of each.
func finishBreakdown(ctx context.Context, c client.Client, specs []schemas.MissionSpec, finishAt map[string]time.Time, doneAt []time.Time, n int) string {
	var toSignal, toTask, task, toClient []time.Duration
	step := max(1, len(specs)/n)
	for i := 0; i < len(specs); i += step {
		wf := schemas.MissionWorkflowID(specs[i].MissionID)
		fin, ok := finishAt[wf]
		if !ok {
			continue
		}
		var signaled, started, completed, closed time.Time
		it := c.GetWorkflowHistory(ctx, wf, "", false, 0)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				break
			}
			at := e.GetEventTime().AsTime()
			switch e.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
				signaled, started, completed = at, time.Time{}, time.Time{} // the last signal is the one that finished it
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
				if !signaled.IsZero() && started.IsZero() {
					started = at
				}
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
				if !started.IsZero() && completed.IsZero() {
					completed = at
				}
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
				closed = at
			}
		}
		if signaled.IsZero() || started.IsZero() || completed.IsZero() || closed.IsZero() {
			continue
		}
		toSignal = append(toSignal, signaled.Sub(fin))
		toTask = append(toTask, started.Sub(signaled))
		task = append(task, completed.Sub(started))
		toClient = append(toClient, doneAt[i].Sub(closed))
	}
	return fmt.Sprintf("%d missions): robot finished → signal recorded %s, → workflow task started %s, task (release and its audit row) %s, completed → client %s",
		len(task), ms(percentile(toSignal, 0.5)), ms(percentile(toTask, 0.5)), ms(percentile(task, 0.5)), ms(percentile(toClient, 0.5)))
}

// localActivityLatency summarises the SDK's local activity execution
// latency histogram by activity type (mean over the whole run).
func localActivityLatency(ls *localstack.Stack) string {
	mfs, err := ls.Worker.Registry.Gather()
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, mf := range mfs {
		if !strings.Contains(mf.GetName(), "local_activity_execution_latency") {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h == nil || h.GetSampleCount() == 0 {
				continue
			}
			typ := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "activity_type" {
					typ = l.GetValue()
				}
			}
			unit := 1000.0 // seconds → ms
			if strings.HasSuffix(mf.GetName(), "_milliseconds") {
				unit = 1
			}
			parts = append(parts, fmt.Sprintf("%s=%.1fms(n=%d)", typ, unit*h.GetSampleSum()/float64(h.GetSampleCount()), h.GetSampleCount()))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

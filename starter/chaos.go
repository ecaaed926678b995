package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/internal/sim"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/internal/stack"
	"github.com/fleetflow/fleetflow/internal/testbroker"
	"github.com/fleetflow/fleetflow/schemas"
)

// The fault-injection suite: `starter chaos` runs the real stack as
// separate processes — the Temporal dev server with its database file, a
// throwaway PostgreSQL cluster, a Mosquitto broker, the workers and the
// bridge as two `workers` processes — and a virtual fleet, injects one
// fault per scenario while missions are in every phase (queued, driving,
// picking, cancelling), and checks, from the registry and Temporal
// visibility rather than from logs, that nothing is lost and nothing is
// stuck.

type chaosFlags struct {
	temporalBin, workersBin string
	siteFile                string
	missions                int
	scenarios               string
	grace                   time.Duration
	bridgeDown              time.Duration
	workerDown              time.Duration
	deadline                time.Duration
	stateDir                string
	verbose                 bool
}

func chaosCmd(g *globalFlags) *cobra.Command {
	f := &chaosFlags{}
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Fault-injection suite: kill and restart every component mid-mission and check nothing is lost or stuck",
		Long: `chaos starts the stack as separate processes (Temporal dev server with its
database file, a throwaway PostgreSQL, Mosquitto, the workers and the bridge
as two workers processes) and a virtual fleet, then for each scenario starts
missions in every phase (queued, driving, picking, one being cancelled),
injects the fault and checks the invariants from the fleet registry and
Temporal visibility:

  - every mission ends COMPLETED, FAILED with a reason, or CANCELLED
    (lost: any other end, an order a robot took twice, or a cancelOrder,
    startPause or stopPause of one workflow that acted on another's order);
  - no mission runs past its deadline, no robot is reserved and no queue
    row is held by a closed workflow (stuck).

It prints one row per scenario (missions, completed, failed cleanly,
cancelled, lost, stuck, time to recover from the end of the fault) and exits
1 when any lost or stuck is not 0. Needs: bin/temporal, bin/workers
(make build), mosquitto, PostgreSQL server binaries (initdb).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			names := allScenarioNames()
			if f.scenarios != "all" {
				names = strings.Split(f.scenarios, ",")
				for _, n := range names {
					if scenarioByName(n) == nil {
						return badInput("--scenarios: unknown scenario %q (known: %s)", n, strings.Join(allScenarioNames(), ", "))
					}
				}
			}
			if f.missions < 2 {
				return badInput("--missions %d: at least 2 (one is cancelled)", f.missions)
			}
			return runChaos(cmd.Context(), f, names, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&f.temporalBin, "temporal-bin", "bin/temporal", "the pinned Temporal CLI")
	cmd.Flags().StringVar(&f.workersBin, "workers-bin", "bin/workers", "the workers binary (make build)")
	cmd.Flags().StringVar(&f.siteFile, "site", "testdata/sites-chaos/yard.yaml", "site map: its robots are the virtual fleet")
	cmd.Flags().IntVar(&f.missions, "missions", 8, "missions per scenario (more than robots: some queue)")
	cmd.Flags().StringVar(&f.scenarios, "scenarios", "all", "comma-separated scenarios: "+strings.Join(allScenarioNames(), ","))
	cmd.Flags().DurationVar(&f.grace, "grace", 5*time.Second, "robots.connectionGrace of the workers")
	cmd.Flags().DurationVar(&f.bridgeDown, "bridge-down", 60*time.Second, "how long the bridge is down")
	cmd.Flags().DurationVar(&f.workerDown, "worker-down", 10*time.Second, "how long the killed worker stays down")
	cmd.Flags().DurationVar(&f.deadline, "deadline", 4*time.Minute, "each mission's deadline (timeoutSeconds)")
	cmd.Flags().StringVar(&f.stateDir, "state-dir", "", "keep logs here (default: a temporary directory, removed unless a scenario fails)")
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "log the stack's progress")
	return cmd
}

// chaosRig is the running stack of the suite.
type chaosRig struct {
	f       *chaosFlags
	cfg     config.Config
	st      *stack.Stack
	broker  *testbroker.Mosquitto
	workers *child // Temporal workers, no bridge
	bridge  *child // the bridge, no task queue
	fleet   *sim.Fleet
	site    *site.Map
	store   *store.Store
	client  client.Client
	log     *slog.Logger
	seq     int
}

// child is a workers process the suite kills and restarts.
type child struct {
	name string
	bin  string
	args []string
	env  []string
	log  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

func (c *child) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(c.bin, c.args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = c.env, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	c.cmd = cmd
	go func() { _ = cmd.Wait() }()
	return nil
}

// stop signals the process (SIGKILL: a crash) and waits until it is gone.
func (c *child) stop(sig syscall.Signal) {
	c.mu.Lock()
	cmd := c.cmd
	c.cmd = nil
	c.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

func runChaos(ctx context.Context, f *chaosFlags, names []string, out, errOut io.Writer) error {
	logOut := io.Discard
	if f.verbose {
		logOut = errOut
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	dir := f.stateDir
	keep := dir != ""
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "fleetflow-chaos-"); err != nil {
			return err
		}
		_ = os.Chmod(dir, 0o755)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rig, err := startChaosRig(ctx, f, dir, log)
	if rig != nil {
		defer rig.stop()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "fault-injection suite: %d robots of %s, %d missions per scenario, logs in %s\n\n", len(rig.site.Robots), rig.site.Site, f.missions, dir)
	var rows []chaosRow
	for _, n := range names {
		row := rig.run(ctx, scenarioByName(n))
		rows = append(rows, row)
		fmt.Fprintf(out, "%-44s %s\n", row.name, row.summary())
	}
	fmt.Fprintln(out)
	printChaosTable(out, rows)
	bad := 0
	for _, r := range rows {
		if r.lost > 0 || r.stuck > 0 || r.err != "" {
			bad++
		}
	}
	if bad > 0 {
		keep = true
		fmt.Fprintf(out, "\n%d scenario(s) lost or stuck missions (logs kept in %s)\n", bad, dir)
		return silentExit(1)
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	return nil
}

func startChaosRig(ctx context.Context, f *chaosFlags, dir string, log *slog.Logger) (*chaosRig, error) {
	for _, bin := range []string{f.temporalBin, f.workersBin} {
		if _, err := os.Stat(bin); err != nil {
			return nil, badInput("%s is missing: run make build bin/temporal", bin)
		}
	}
	workersBin, err := filepath.Abs(f.workersBin)
	if err != nil {
		return nil, err
	}
	m, err := site.Load(f.siteFile)
	if err != nil {
		return nil, usageError{err}
	}
	mapsDir, err := filepath.Abs(filepath.Dir(f.siteFile))
	if err != nil {
		return nil, err
	}
	r := &chaosRig{f: f, site: m, log: log}
	if r.broker, err = testbroker.New(dir); err != nil {
		return r, err
	}
	port, err := stack.FreePort()
	if err != nil {
		return r, err
	}
	r.st, err = stack.Start(ctx, stack.Options{
		TemporalBinary: f.temporalBin, TemporalPort: port, Headless: true, TemporalDBFile: filepath.Join(dir, "temporal.db"),
		SearchAttributes: schemas.SearchAttributeTypes, MQTTURL: r.broker.URL, StateDir: dir, Logger: log,
	})
	if err != nil {
		return r, err
	}
	if err := store.Migrate(ctx, r.st.DatabaseURL); err != nil {
		return r, err
	}
	if err := localstack.RegisterFleet(ctx, r.st.DatabaseURL, m); err != nil {
		return r, err
	}
	if r.store, err = store.Open(ctx, r.st.DatabaseURL); err != nil {
		return r, err
	}
	env := append(os.Environ(),
		"FLEETFLOW_TEMPORAL_HOSTPORT="+r.st.TemporalAddress, "DATABASE_URL="+r.st.DatabaseURL, "FLEETFLOW_MQTT_URL="+r.broker.URL,
		"FLEETFLOW_SITE_MAPS_DIR="+mapsDir, "FLEETFLOW_SITE_NAME="+m.Site,
		"FLEETFLOW_ROBOTS_CONNECTION_GRACE="+f.grace.String(), "FLEETFLOW_ROBOTS_ORDER_ACK_TIMEOUT=5s",
		"FLEETFLOW_WORKER_REAPER_INTERVAL=3s", "FLEETFLOW_WORKER_HTTP_ADDR=127.0.0.1:0")
	noConfig := filepath.Join(dir, "absent.yaml")
	r.workers = &child{name: "workers", bin: workersBin, args: []string{"--config", noConfig, "--bridge=false"}, env: env, log: filepath.Join(dir, "workers.log")}
	r.bridge = &child{name: "bridge", bin: workersBin, args: []string{"--config", noConfig, "--task-queues", "none", "--bridge=true"}, env: env, log: filepath.Join(dir, "bridge.log")}
	for _, c := range []*child{r.workers, r.bridge} {
		if err := c.start(); err != nil {
			return r, err
		}
	}
	r.cfg = config.Default()
	r.cfg.Temporal.HostPort = r.st.TemporalAddress
	r.cfg.Robots.ConnectionGrace = f.grace
	if r.client, err = client.Dial(client.Options{HostPort: r.st.TemporalAddress, Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))}); err != nil {
		return r, err
	}
	r.fleet = sim.NewFleet(sim.Options{BrokerURL: r.broker.URL, Speed: 1, ActionDuration: 2 * time.Second, Logger: log}, localstack.SimRobots(m, config.Sim{}))
	if err := r.fleet.Start(ctx); err != nil {
		return r, err
	}
	if err := localstack.WaitFleetOnline(ctx, r.store, m, 60*time.Second); err != nil {
		return r, fmt.Errorf("%w (see %s)", err, r.bridge.log)
	}
	return r, nil
}

func (r *chaosRig) stop() {
	if r.fleet != nil {
		r.fleet.Stop()
	}
	for _, c := range []*child{r.workers, r.bridge} {
		if c != nil {
			c.stop(syscall.SIGTERM)
		}
	}
	if r.client != nil {
		r.client.Close()
	}
	if r.store != nil {
		r.store.Close()
	}
	r.st.Stop()
	if r.broker != nil {
		r.broker.Stop()
	}
}

// scenario is one fault. inject runs while the scenario's missions are in
// flight; it returns when the fault is over (the component is back), and
// reports the missions it ended on purpose (terminated).
type scenario struct {
	name   string
	inject func(ctx context.Context, r *chaosRig, missions []string) (terminated []string, err error)
}

func allScenarioNames() []string {
	var out []string
	for _, s := range scenarios {
		out = append(out, s.name)
	}
	return out
}

func scenarioByName(n string) *scenario {
	for i := range scenarios {
		if scenarios[i].name == n {
			return &scenarios[i]
		}
	}
	return nil
}

var scenarios = []scenario{
	{"worker-sigkill", func(ctx context.Context, r *chaosRig, _ []string) ([]string, error) {
		r.workers.stop(syscall.SIGKILL)
		if err := sleepCtx(ctx, r.f.workerDown); err != nil {
			return nil, err
		}
		return nil, r.workers.start()
	}},
	{"bridge-down", func(ctx context.Context, r *chaosRig, _ []string) ([]string, error) {
		r.bridge.stop(syscall.SIGKILL)
		if err := sleepCtx(ctx, r.f.bridgeDown); err != nil {
			return nil, err
		}
		return nil, r.bridge.start()
	}},
	{"broker-restart", func(ctx context.Context, r *chaosRig, _ []string) ([]string, error) {
		r.broker.Kill()
		if err := sleepCtx(ctx, 3*time.Second); err != nil {
			return nil, err
		}
		return nil, r.broker.Resume()
	}},
	{"postgres-restart", func(ctx context.Context, r *chaosRig, _ []string) ([]string, error) {
		return nil, r.st.RestartPostgres(ctx, 3*time.Second, false)
	}},
	{"temporal-restart", func(ctx context.Context, r *chaosRig, _ []string) ([]string, error) {
		return nil, r.st.RestartTemporal(ctx, 3*time.Second, false)
	}},
	{"connection-blip", func(ctx context.Context, r *chaosRig, missions []string) ([]string, error) {
		return nil, r.dropDrivingRobot(ctx, missions, r.f.grace/3)
	}},
	{"connection-lost", func(ctx context.Context, r *chaosRig, missions []string) ([]string, error) {
		return nil, r.dropDrivingRobot(ctx, missions, 2*r.f.grace)
	}},
	{"robot-fatal", func(ctx context.Context, r *chaosRig, missions []string) ([]string, error) {
		robot, err := r.drivingRobot(ctx, missions)
		if err != nil {
			return nil, err
		}
		robot.RaiseFatal("driveFault", "chaos: drive unit fault mid-route")
		// The mission hands over to another robot; with the load on board
		// it waits for an operator, who puts the load back.
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
			for _, id := range missions {
				if st, err := queryStatus(ctx, r.client, id); err == nil && st.State == schemas.MissionAwaitingOperator {
					_, err := r.client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
						WorkflowID: schemas.MissionWorkflowID(id), UpdateName: schemas.UpdateResolve, WaitForStage: client.WorkflowUpdateStageAccepted,
						Args: []any{schemas.ResolveRequest{Decision: schemas.DecisionReassign, RestartFromStart: true, Reason: "chaos: load put back", By: "chaos"}},
					})
					if err != nil {
						return nil, err
					}
				}
			}
			if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
				return nil, err
			}
		}
		robot.ClearErrors() // repaired: back in service
		return nil, nil
	}},
	{"terminate", func(ctx context.Context, r *chaosRig, missions []string) ([]string, error) {
		for _, id := range missions {
			st, err := queryStatus(ctx, r.client, id)
			if err == nil && st.State == schemas.MissionDriving {
				return []string{id}, r.client.TerminateWorkflow(ctx, schemas.MissionWorkflowID(id), "", "chaos: terminated from the CLI")
			}
		}
		return nil, errors.New("no driving mission to terminate")
	}},
}

// drivingRobot returns the robot of one of missions that is driving.
func (r *chaosRig) drivingRobot(ctx context.Context, missions []string) (*sim.Robot, error) {
	for _, id := range missions {
		st, err := queryStatus(ctx, r.client, id)
		if err == nil && st.State == schemas.MissionDriving && st.RobotID != "" {
			_, serial, _ := strings.Cut(st.RobotID, "/")
			if robot := r.fleet.Robot(serial); robot != nil {
				return robot, nil
			}
		}
	}
	return nil, errors.New("no driving mission")
}

func (r *chaosRig) dropDrivingRobot(ctx context.Context, missions []string, away time.Duration) error {
	robot, err := r.drivingRobot(ctx, missions)
	if err != nil {
		return err
	}
	robot.DropConnection()
	if err := sleepCtx(ctx, away); err != nil {
		return err
	}
	return robot.Reconnect()
}

// chaosRow is one scenario's outcome.
type chaosRow struct {
	name                                                string
	missions, completed, failed, cancelled, lost, stuck int
	terminated                                          int
	recover                                             time.Duration
	err                                                 string
	notes                                               []string
}

func (r chaosRow) summary() string {
	if r.err != "" {
		return "ERROR " + r.err
	}
	s := fmt.Sprintf("missions %d: completed %d, failed cleanly %d, cancelled %d, lost %d, stuck %d, recovered in %s",
		r.missions, r.completed, r.failed, r.cancelled, r.lost, r.stuck, r.recover.Round(100*time.Millisecond))
	if r.terminated > 0 {
		s += fmt.Sprintf(" (%d terminated on purpose)", r.terminated)
	}
	return s
}

func printChaosTable(w io.Writer, rows []chaosRow) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tMISSIONS\tCOMPLETED\tFAILED CLEANLY\tCANCELLED\tLOST\tSTUCK\tRECOVERED IN\tNOTES")
	for _, r := range rows {
		notes := strings.Join(r.notes, "; ")
		if r.err != "" {
			notes = "ERROR: " + r.err
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", r.name, r.missions, r.completed, r.failed, r.cancelled, r.lost, r.stuck,
			r.recover.Round(100*time.Millisecond), notes)
	}
	tw.Flush()
}

// run starts the scenario's missions, waits until they are in every phase,
// injects the fault, waits for every mission to end, and checks the
// invariants.
func (r *chaosRig) run(ctx context.Context, sc *scenario) chaosRow {
	row := chaosRow{name: sc.name, missions: r.f.missions}
	r.seq++
	ids := make([]string, r.f.missions)
	for i := range ids {
		ids[i] = fmt.Sprintf("chaos-%02d-%s-%d", r.seq, sc.name, i)
		if _, err := ops.StartMission(ctx, r.client, r.cfg, r.missionSpec(ids[i]), "chaos", ""); err != nil {
			row.err = "start: " + err.Error()
			return row
		}
	}
	// Let them spread over the phases: some driving, some picking, some
	// queued (more missions than robots); one is being cancelled when the
	// fault hits.
	phases, err := r.waitPhases(ctx, ids)
	if err != nil {
		row.err = err.Error()
		return row
	}
	row.notes = append(row.notes, "at the fault: "+phases)
	cancelled := make(chan error, 1)
	go func() {
		_, err := r.client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: schemas.MissionWorkflowID(ids[0]), UpdateName: schemas.UpdateCancel,
			Args: []any{schemas.CancelRequest{Reason: "chaos: cancelled as the fault hits", By: "chaos"}}, WaitForStage: client.WorkflowUpdateStageAccepted,
		})
		cancelled <- err
	}()
	terminated, err := sc.inject(ctx, r, ids[1:])
	if err != nil {
		row.err = "inject: " + err.Error()
		return row
	}
	faultOver := time.Now()
	<-cancelled
	row.terminated = len(terminated)
	if row.terminated > 0 {
		row.notes = append(row.notes, fmt.Sprintf("%d terminated on purpose", row.terminated))
	}
	r.judge(ctx, &row, ids, terminated, faultOver)
	return row
}

func (r *chaosRig) missionSpec(id string) schemas.MissionSpec {
	picks, drops := r.site.PickAndDropStations()
	return schemas.MissionSpec{
		MissionID: id, Site: r.site.Site, Priority: rand.IntN(5), TimeoutSeconds: int(r.f.deadline.Seconds()),
		Load: &schemas.Load{LoadID: "PAL-" + id, LoadType: "EPAL"},
		Steps: []schemas.MissionStep{
			{Station: picks[rand.IntN(len(picks))], Action: "pick"},
			{Station: drops[rand.IntN(len(drops))], Action: "drop"},
		},
	}
}

// waitPhases waits (30 s at most) until some missions drive and, when
// there are more missions than robots, some are queued; it describes the
// phases it saw.
func (r *chaosRig) waitPhases(ctx context.Context, ids []string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		count := map[string]int{}
		for _, id := range ids {
			st, err := queryStatus(ctx, r.client, id)
			if err != nil {
				continue
			}
			phase := st.State
			if st.State == schemas.MissionDriving && st.NodesDone > 0 && st.NodesDone < st.NodesTotal {
				phase = "DRIVING"
			}
			count[phase]++
		}
		queuedOK := len(ids) <= len(r.site.Robots) || count[schemas.MissionQueued] > 0
		if (count[schemas.MissionDriving] >= 2 && queuedOK) || time.Now().After(deadline) {
			var parts []string
			for k, v := range count {
				parts = append(parts, fmt.Sprintf("%d %s", v, strings.ToLower(k)))
			}
			sort.Strings(parts)
			if count[schemas.MissionDriving] == 0 {
				return "", fmt.Errorf("no mission got going in 30 s (%s)", strings.Join(parts, ", "))
			}
			return strings.Join(parts, ", "), nil
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return "", err
		}
	}
}

// judge waits for the missions to end and checks the invariants.
func (r *chaosRig) judge(ctx context.Context, row *chaosRow, ids, terminated []string, faultOver time.Time) {
	deadline := time.Now().Add(r.f.deadline + time.Minute)
	lastEnd := faultOver
	closed := map[string]bool{}
	for len(closed) < len(ids) && time.Now().Before(deadline) {
		for _, id := range ids {
			if closed[id] {
				continue
			}
			d, err := r.client.DescribeWorkflowExecution(ctx, schemas.MissionWorkflowID(id), "")
			if err != nil || d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				continue
			}
			closed[id] = true
			if ct := d.GetWorkflowExecutionInfo().GetCloseTime().AsTime(); ct.After(lastEnd) {
				lastEnd = ct
			}
		}
		if len(closed) < len(ids) {
			_ = sleepCtx(ctx, 500*time.Millisecond)
		}
	}
	row.recover = lastEnd.Sub(faultOver)
	for _, id := range ids {
		if !closed[id] {
			row.stuck++
			row.notes = append(row.notes, id+" still running past its deadline")
			continue
		}
		if contains(terminated, id) {
			continue
		}
		run := r.client.GetWorkflow(ctx, schemas.MissionWorkflowID(id), "")
		var res schemas.MissionResult
		err := run.Get(ctx, &res)
		switch {
		case err == nil && res.State == schemas.MissionCompleted:
			row.completed++
		case err == nil && res.State == schemas.MissionCancelled:
			row.cancelled++
		case err != nil && ops.RootCause(err) != "" && !strings.Contains(err.Error(), "terminated") && !strings.Contains(err.Error(), "timeout"):
			row.failed++
			row.notes = append(row.notes, fmt.Sprintf("%s failed: %s", id, firstLine(ops.RootCause(err))))
		default:
			row.lost++
			row.notes = append(row.notes, fmt.Sprintf("%s ended badly: %v", id, err))
		}
	}
	// No lease of a closed workflow survives (the Reaper runs every 3 s).
	time.Sleep(2 * time.Second)
	var stuckLeases []string
	for i := 0; i < 20; i++ {
		stuckLeases = r.closedHolders(ctx)
		if len(stuckLeases) == 0 {
			break
		}
		_ = sleepCtx(ctx, time.Second)
	}
	if len(stuckLeases) > 0 {
		row.stuck += len(stuckLeases)
		row.notes = append(row.notes, "held by closed workflows: "+strings.Join(stuckLeases, ", "))
	}
	// No order taken twice.
	for _, robot := range r.fleet.Robots() {
		seen := map[string]bool{}
		for _, o := range robot.AcceptedOrders() {
			if seen[o] && strings.Contains(o, fmt.Sprintf("chaos-%02d-", r.seq)) {
				row.lost++
				row.notes = append(row.notes, fmt.Sprintf("robot %s took order %s twice", robot.Key(), o))
			}
			seen[o] = true
		}
	}
	// No instant action hit another workflow's order: cancelOrder,
	// startPause and stopPause name no order, so one that arrives late (a
	// local activity run again after its workflow released the robot)
	// would stop the next mission (lost: that mission's end is a lie).
	for _, robot := range r.fleet.Robots() {
		for _, c := range robot.ControlsOnOrders() {
			sender, _, _ := strings.Cut(c.ActionID, schemas.InstantActionSeparator)
			owner, _, _ := strings.Cut(c.OrderID, schemas.InstantActionSeparator)
			if sender != owner && strings.Contains(c.OrderID, fmt.Sprintf("chaos-%02d-", r.seq)) {
				row.lost++
				row.notes = append(row.notes, fmt.Sprintf("robot %s: %s %s hit order %s of another workflow", robot.Key(), c.ActionType, c.ActionID, c.OrderID))
			}
		}
	}
	for _, id := range terminated {
		if _, held, err := r.store.ReservationOf(ctx, id); err != nil || held {
			row.stuck++
			row.notes = append(row.notes, id+": the terminated mission's robot is still reserved")
		}
	}
	r.settle(ctx)
}

// closedHolders lists leases whose workflow is not running.
func (r *chaosRig) closedHolders(ctx context.Context) []string {
	leases, err := r.store.Leases(ctx, time.Now())
	if err != nil {
		return []string{"(cannot list leases: " + err.Error() + ")"}
	}
	var out []string
	for _, l := range leases {
		d, err := r.client.DescribeWorkflowExecution(ctx, l.WorkflowID, "")
		if err != nil || d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			out = append(out, l.Kind+" of "+l.WorkflowID)
		}
	}
	return out
}

// settle waits until every robot is ONLINE, idle and free again, so the
// next scenario starts from a clean fleet.
func (r *chaosRig) settle(ctx context.Context) {
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		views, err := r.store.ListRobots(ctx, r.site.Site)
		ready := err == nil
		for _, v := range views {
			if v.ReservedBy != "" || v.State.ConnectionState != store.ConnectionOnline || v.State.NodeStatesRemaining > 0 || v.State.Driving || v.State.FatalError != "" {
				ready = false
			}
		}
		if ready {
			return
		}
		_ = sleepCtx(ctx, 500*time.Millisecond)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

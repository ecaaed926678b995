package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/artifact"
	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/sim"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/internal/stack"
	"github.com/fleetflow/fleetflow/schemas"
	"github.com/fleetflow/fleetflow/workers/worker"
	"github.com/fleetflow/fleetflow/workflows"
)

// localStack is everything `starter dev` and `starter demo` run.
type localStack struct {
	cfg    config.Config
	stack  *stack.Stack
	worker *worker.Worker
	fleet  *sim.Fleet
	site   *site.Map
	arts   *stack.ArtifactServer
	log    *slog.Logger
	// edges are the edge sites in multi-site mode (config edge.sites), in
	// that order: each with its own broker, edge worker and virtual fleet;
	// worker is then the central one (no bridge, no broker). site and
	// fleet are the first edge site's.
	edges []*edgeSite
}

type devFlags struct {
	temporalBin   string
	missionsDir   string
	headless      bool
	stateDir      string
	timeout       time.Duration
	siteMap       *site.Map     // overrides site.name from site.mapsDir (bench)
	siteMaps      []*site.Map   // override site.mapsDir's maps (multi-site tests)
	stateInterval time.Duration // virtual robots' longest time between two states; 0 = the sim's default (30 s)
	// drivingStateInterval: the same while a robot drives or runs an
	// action; 0 = stateInterval (bench scale: 100 ms).
	drivingStateInterval time.Duration
	rebootDelay          time.Duration // virtual robots' reboot after an update; 0 = the sim's default
}

func devCmd(g *globalFlags, demo bool) *cobra.Command {
	f := &devFlags{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the local stack: Temporal dev server + Web UI, MQTT broker, PostgreSQL, workers, bridge and a virtual fleet",
		Long: `dev brings up everything on this machine, no Docker:
  - the Temporal dev server (pinned CLI in ./bin, Web UI on temporal.devUIPort),
  - the MQTT broker in mqtt.url, or an embedded one on mqtt.embeddedPort,
  - PostgreSQL from DATABASE_URL, or a throwaway cluster (initdb/pg_ctl),
  - migrations, the site's fleet registered, workers, the bridge and a virtual fleet.
It stays up until Ctrl-C and stops everything it started.`,
		Args: cobra.NoArgs,
	}
	if demo {
		cmd.Use = "demo"
		cmd.Short = "Run the local stack, launch the missions in testdata/missions, show progress and results, exit"
		cmd.Long = `demo does what dev does, then starts every mission spec in --missions,
shows their progress, prints each result and the Web UI link, stops
everything and exits 0 only when every mission completed.`
	}
	cmd.Flags().StringVar(&f.temporalBin, "temporal-bin", "bin/temporal", "the pinned Temporal CLI (make bin/temporal builds it)")
	cmd.Flags().BoolVar(&f.headless, "headless", false, "no Temporal Web UI")
	cmd.Flags().StringVar(&f.stateDir, "state-dir", "", "keep logs and data here (default: a temporary directory, removed on exit)")
	if demo {
		cmd.Flags().StringVar(&f.missionsDir, "missions", "testdata/missions", "directory of mission specs to launch")
		cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Minute, "give up when the missions have not ended by then")
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := loadConfig(g)
		if err != nil {
			return err
		}
		var specs []schemas.MissionSpec
		if demo {
			if specs, err = loadMissionDir(f.missionsDir); err != nil {
				return usageError{err}
			}
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		ls, err := startLocalStack(ctx, cfg, f, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer ls.Stop()
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "\nfleetflow local stack is up\n  Temporal   %s (namespace %s)\n  Web UI     %s\n  PostgreSQL %s\n  Artifacts  %s (%s)\n",
			ls.cfg.Temporal.HostPort, ls.cfg.Temporal.Namespace, ls.cfg.Temporal.UIURL, ls.cfg.Postgres.URL, ls.cfg.Artifacts.BaseURL, ls.cfg.Artifacts.Dir)
		if len(ls.edges) == 0 {
			fmt.Fprintf(out, "  MQTT       %s\n  Fleet      %d virtual robots at %s\n\n", ls.cfg.MQTT.URL, len(ls.fleet.Robots()), ls.site.Site)
		} else {
			for _, e := range ls.edges {
				fmt.Fprintf(out, "  Site %s: MQTT %s, edge worker on task queue %s, %d virtual robots\n",
					e.m.Site, e.cfg.MQTT.URL, ls.cfg.TaskQueues.RobotIOFor(e.m.Site), len(e.fleet.Robots()))
			}
			fmt.Fprintln(out)
		}
		if ls.worker.IngressAddr != "" {
			fmt.Fprintf(out, "  REST ingress http://%s/v1/missions (schemas/openapi.yaml; Authorization: Bearer <a wms.clients API key>)\n\n", ls.worker.IngressAddr)
		}
		if !demo {
			fmt.Fprintf(out, "In another shell:\n  export FLEETFLOW_TEMPORAL_HOSTPORT=%s DATABASE_URL='%s'\n  ./bin/starter mission start -f testdata/missions/m-0001.json --wait\n  ./bin/starter mission list\n  ./bin/starter fleet list\n  ./bin/starter rollout start -f testdata/rollouts/r-fleetos-2.0.0.json --wait\nCtrl-C stops everything.\n",
				ls.cfg.Temporal.HostPort, ls.cfg.Postgres.URL)
			<-ctx.Done()
			fmt.Fprintln(out, "stopping…")
			return nil
		}
		return runDemo(ctx, ls, specs, f.timeout, out, g)
	}
	return cmd
}

func loadMissionDir(dir string) ([]schemas.MissionSpec, error) {
	var files []string
	for _, pat := range []string{"*.json", "*.yaml", "*.yml"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("no mission specs (*.json, *.yaml) in %s", dir)
	}
	var specs []schemas.MissionSpec
	var problems []string
	for _, f := range files {
		s, err := schemas.LoadMission(f)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		specs = append(specs, s)
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return specs, nil
}

func startLocalStack(ctx context.Context, cfg config.Config, f *devFlags, logOut io.Writer) (_ *localStack, err error) {
	worker.TuneGC() // this process runs the workers and the bridge
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ls := &localStack{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			ls.Stop()
		}
	}()
	var maps map[string]*site.Map
	m := f.siteMap
	if len(f.siteMaps) > 0 {
		maps = map[string]*site.Map{}
		for _, sm := range f.siteMaps {
			maps[sm.Site] = sm
		}
		m = f.siteMaps[0]
	} else if m == nil {
		if maps, err = site.LoadDir(cfg.Site.MapsDir); err != nil {
			return nil, usageError{fmt.Errorf("site maps in %s: %w", cfg.Site.MapsDir, err)}
		}
		var ok bool
		if m, ok = maps[cfg.Site.Name]; !ok && len(cfg.Edge.Sites) == 0 {
			return nil, usageError{fmt.Errorf("site.name %q: no such map in %s", cfg.Site.Name, cfg.Site.MapsDir)}
		}
	} else {
		maps = map[string]*site.Map{m.Site: m}
	}
	ls.site = m
	ls.stack, err = stack.Start(ctx, stack.Options{
		TemporalBinary: f.temporalBin, TemporalPort: cfg.Temporal.DevServerPort, UIPort: cfg.Temporal.DevUIPort,
		TemporalNamespace: cfg.Temporal.Namespace, SearchAttributes: schemas.SearchAttributeTypes, Headless: f.headless,
		MQTTURL: cfg.MQTT.URL, MQTTPort: cfg.MQTT.EmbeddedPort, DatabaseURL: cfg.Postgres.URL, PGPort: cfg.Postgres.DevPort,
		StateDir: f.stateDir, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	ls.cfg.Temporal.HostPort = ls.stack.TemporalAddress
	if ls.stack.UIURL != "" {
		ls.cfg.Temporal.UIURL = ls.stack.UIURL
	}
	ls.cfg.MQTT.URL = ls.stack.MQTTURL
	ls.cfg.Postgres.URL = ls.stack.DatabaseURL

	if ls.cfg.Artifacts.BaseURL == "" {
		if ls.arts, err = stack.ServeArtifacts(cfg.Artifacts.Dir, cfg.Artifacts.ServePort, cfg.Artifacts.URLQuery); err != nil {
			return nil, err
		}
		ls.cfg.Artifacts.BaseURL = ls.arts.BaseURL
	}
	keys, err := artifact.LoadKeyring(cfg.Artifacts.TrustedKeys)
	if err != nil {
		return nil, usageError{fmt.Errorf("artifacts.trustedKeys: %w", err)}
	}

	if err := store.Migrate(ctx, ls.cfg.Postgres.URL); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if len(cfg.Edge.Sites) > 0 {
		return ls, ls.startMultiSite(ctx, maps, keys, f)
	}
	if err := registerFleet(ctx, ls.cfg.Postgres.URL, m); err != nil {
		return nil, err
	}
	ls.worker, err = worker.Start(ctx, worker.Options{Config: ls.cfg, Bridge: true, HTTPAddr: ls.cfg.Worker.HTTPAddr, IngressAddr: ls.cfg.WMS.IngressAddr, Logger: log, Sites: maps})
	if err != nil {
		return nil, err
	}
	ls.fleet = sim.NewFleet(sim.Options{
		BrokerURL: ls.cfg.MQTT.URL, Speed: cfg.Sim.Speed, ActionDuration: cfg.Sim.ActionDuration, Logger: log,
		TrustedKeys: keys, RebootDelay: f.rebootDelay, ChargePerSecond: cfg.Sim.ChargePerSecond,
		StateInterval: f.stateInterval, DrivingStateInterval: f.drivingStateInterval,
	}, simRobots(m, cfg.Sim))
	if err := ls.fleet.Start(ctx); err != nil {
		return nil, fmt.Errorf("virtual fleet: %w", err)
	}
	if n := len(ls.fleet.Robots()); n > 0 && n == len(m.Robots) {
		if err := waitFleetOnline(ctx, ls.worker.Store, m, 15*time.Second); err != nil {
			return nil, err
		}
	} else {
		log.Info(fmt.Sprintf("%d of %d robots of %s are virtual (sim.robots %q); the others connect to %s themselves", n, len(m.Robots), m.Site, cfg.Sim.Robots, ls.cfg.MQTT.URL))
	}
	return ls, nil
}

// registerFleet puts the site's robots into the fleet registry.
func registerFleet(ctx context.Context, dbURL string, m *site.Map) error {
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.RegisterRobots(ctx, siteRobots(m)); err != nil {
		return fmt.Errorf("register fleet of %s: %w", m.Site, err)
	}
	return nil
}

// siteRobots are the robots of the site map as the registry holds them,
// at their home node's pose.
func siteRobots(m *site.Map) []store.Robot {
	var robots []store.Robot
	for _, r := range m.Robots {
		n, _ := m.Node(r.HomeNode)
		robots = append(robots, store.Robot{
			ID: r.Manufacturer + "/" + r.SerialNumber, Manufacturer: r.Manufacturer, SerialNumber: r.SerialNumber, Model: r.Model,
			Site: m.Site, Capabilities: r.Capabilities, SoftwareVersion: r.SoftwareVersion, HomeNode: r.HomeNode, X: n.X, Y: n.Y, MapID: m.MapID,
		})
	}
	return robots
}

// simRobots configures a virtual robot for each robot of the map that
// sim.robots names, speaking the robot's profile from the map.
func simRobots(m *site.Map, s config.Sim) []sim.RobotConfig {
	var out []sim.RobotConfig
	battery := s.Battery
	if battery <= 0 {
		battery = 100
	}
	for _, r := range m.Robots {
		if !s.Simulates(r.Key().String()) {
			continue
		}
		n, _ := m.Node(r.HomeNode)
		out = append(out, sim.RobotConfig{
			Manufacturer: r.Manufacturer, SerialNumber: r.SerialNumber, Model: r.Model,
			StartNode: r.HomeNode, X: n.X, Y: n.Y, Theta: n.Theta, MapID: m.MapID, Battery: battery, SoftwareVersion: r.SoftwareVersion,
			Profile: m.ProfileFor(r),
		})
	}
	return out
}

// waitFleetOnline waits until the bridge has stored every robot as ONLINE,
// so the first missions find robots to reserve.
func waitFleetOnline(ctx context.Context, st *store.Store, m *site.Map, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		views, err := st.ListRobots(ctx, m.Site)
		if err != nil {
			return err
		}
		online := 0
		for _, v := range views {
			if v.State.ConnectionState == "ONLINE" {
				online++
			}
		}
		if online >= len(m.Robots) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d robots of %s came ONLINE within %s", online, len(m.Robots), m.Site, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops what was started, in reverse order.
func (ls *localStack) Stop() {
	for _, e := range ls.edges {
		if e.fleet != nil {
			e.fleet.Stop()
		}
		ls.stopEdgeWorker(e.m.Site)
	}
	if ls.fleet != nil {
		ls.fleet.Stop()
	}
	if ls.worker != nil {
		ls.worker.Stop()
	}
	if ls.arts != nil {
		ls.arts.Stop()
	}
	if ls.stack != nil {
		ls.stack.Stop()
	}
}

type demoRun struct {
	spec   schemas.MissionSpec
	run    client.WorkflowRun
	last   string
	result workflows.MissionResult
	err    error
	done   bool
}

func runDemo(ctx context.Context, ls *localStack, specs []schemas.MissionSpec, timeout time.Duration, out io.Writer, g *globalFlags) error {
	c := ls.worker.Client
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var runs []*demoRun
	for _, s := range specs {
		run, err := startMission(ctx, c, ls.cfg, s, "demo")
		if err != nil {
			return err
		}
		runs = append(runs, &demoRun{spec: s, run: run})
		fmt.Fprintf(out, "started %-10s %s\n", s.MissionID, webLink(ls.cfg, run.GetID()))
	}
	doneCh := make(chan *demoRun, len(runs))
	for _, r := range runs {
		go func(r *demoRun) {
			r.err = r.run.Get(ctx, &r.result)
			doneCh <- r
		}(r)
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	remaining := len(runs)
	for remaining > 0 {
		select {
		case r := <-doneCh:
			r.done = true
			remaining--
			progress(ctx, c, r, out)
		case <-tick.C:
			for _, r := range runs {
				if !r.done {
					progress(ctx, c, r, out)
				}
			}
		case <-ctx.Done():
			return fmt.Errorf("demo: %d missions did not end within %s", remaining, timeout)
		}
	}
	fmt.Fprintln(out, "\nResults")
	tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "MISSION\tSTATE\tROBOT\tNODES\tDURATION\tWEB UI")
	failed := 0
	for _, r := range runs {
		state := r.result.State
		if r.err != nil {
			state = "FAILED: " + rootCause(r.err)
		}
		if r.err != nil || r.result.State != workflows.MissionCompleted {
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", r.spec.MissionID, state, dash(r.result.RobotID), r.result.NodesDone, r.result.NodesTotal,
			r.result.FinishedAt.Sub(r.result.StartedAt).Round(100*time.Millisecond), webLink(ls.cfg, r.run.GetID()))
	}
	tw.Flush()
	if failed > 0 {
		return fmt.Errorf("%d of %d missions did not complete", failed, len(runs))
	}
	fmt.Fprintf(out, "\nall %d missions completed. Web UI: %s/namespaces/%s/workflows\n", len(runs), strings.TrimRight(ls.cfg.Temporal.UIURL, "/"), ls.cfg.Temporal.Namespace)
	return nil
}

// progress prints a line when a mission's state, robot or node changes.
func progress(ctx context.Context, c client.Client, r *demoRun, out io.Writer) {
	var line string
	if r.done {
		if r.err != nil {
			line = "FAILED  " + rootCause(r.err)
		} else {
			line = fmt.Sprintf("%s  robot %s  %d/%d nodes", r.result.State, r.result.RobotID, r.result.NodesDone, r.result.NodesTotal)
		}
	} else {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := queryStatus(qctx, c, r.spec.MissionID)
		cancel()
		if err != nil {
			return
		}
		line = fmt.Sprintf("%s  robot %s  %d/%d nodes  at %s", st.State, dash(st.RobotID), st.NodesDone, st.NodesTotal, dash(st.CurrentNode))
		if st.State == workflows.MissionQueued {
			line = fmt.Sprintf("%s  waiting for a robot (position %d)", st.State, st.QueuePosition)
		}
	}
	if line != r.last {
		r.last = line
		fmt.Fprintf(out, "%s  %-10s %s\n", time.Now().Format("15:04:05.0"), r.spec.MissionID, line)
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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

	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/schemas"
)

type devFlags struct {
	localstack.Options
	missionsDir string
	timeout     time.Duration
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
	cmd.Flags().StringVar(&f.TemporalBin, "temporal-bin", "bin/temporal", "the pinned Temporal CLI (make bin/temporal builds it)")
	cmd.Flags().BoolVar(&f.Headless, "headless", false, "no Temporal Web UI")
	cmd.Flags().StringVar(&f.StateDir, "state-dir", "", "keep logs and data here (default: a temporary directory, removed on exit)")
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
		ls, err := localstack.Start(ctx, cfg, f.Options, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer ls.Stop()
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "\nfleetflow local stack is up\n  Temporal   %s (namespace %s)\n  Web UI     %s\n  PostgreSQL %s\n  Artifacts  %s (%s)\n",
			ls.Cfg.Temporal.HostPort, ls.Cfg.Temporal.Namespace, ls.Cfg.Temporal.UIURL, ls.Cfg.Postgres.URL, ls.Cfg.Artifacts.BaseURL, ls.Cfg.Artifacts.Dir)
		if len(ls.Edges) == 0 {
			fmt.Fprintf(out, "  MQTT       %s\n  Fleet      %d virtual robots at %s\n\n", ls.Cfg.MQTT.URL, len(ls.Fleet.Robots()), ls.Site.Site)
		} else {
			for _, e := range ls.Edges {
				fmt.Fprintf(out, "  Site %s: MQTT %s, edge worker on task queue %s, %d virtual robots\n",
					e.Map.Site, e.Cfg.MQTT.URL, ls.Cfg.TaskQueues.RobotIOFor(e.Map.Site), len(e.Fleet.Robots()))
			}
			fmt.Fprintln(out)
		}
		if ls.Worker.IngressAddr != "" {
			fmt.Fprintf(out, "  REST ingress http://%s/v1/missions (schemas/openapi.yaml; Authorization: Bearer <a wms.clients API key>)\n\n", ls.Worker.IngressAddr)
		}
		if !demo {
			fmt.Fprintf(out, "In another shell:\n  export FLEETFLOW_TEMPORAL_HOSTPORT=%s DATABASE_URL='%s'\n  ./bin/starter mission start -f testdata/missions/m-0001.json --wait\n  ./bin/starter mission list\n  ./bin/starter fleet list\n  ./bin/starter rollout start -f testdata/rollouts/r-fleetos-2.0.0.json --wait\nCtrl-C stops everything.\n",
				ls.Cfg.Temporal.HostPort, ls.Cfg.Postgres.URL)
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

type demoRun struct {
	spec   schemas.MissionSpec
	run    client.WorkflowRun
	last   string
	result schemas.MissionResult
	err    error
	done   bool
}

func runDemo(ctx context.Context, ls *localstack.Stack, specs []schemas.MissionSpec, timeout time.Duration, out io.Writer, g *globalFlags) error {
	c := ls.Worker.Client
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var runs []*demoRun
	for _, s := range specs {
		run, err := ops.StartMission(ctx, c, ls.Cfg, s, "demo", "")
		if err != nil {
			return err
		}
		runs = append(runs, &demoRun{spec: s, run: run})
		fmt.Fprintf(out, "started %-10s %s\n", s.MissionID, webLink(ls.Cfg, run.GetID()))
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
			state = "FAILED: " + ops.RootCause(r.err)
		}
		if r.err != nil || r.result.State != schemas.MissionCompleted {
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", r.spec.MissionID, state, dash(r.result.RobotID), r.result.NodesDone, r.result.NodesTotal,
			r.result.FinishedAt.Sub(r.result.StartedAt).Round(100*time.Millisecond), webLink(ls.Cfg, r.run.GetID()))
	}
	tw.Flush()
	if failed > 0 {
		return fmt.Errorf("%d of %d missions did not complete", failed, len(runs))
	}
	fmt.Fprintf(out, "\nall %d missions completed. Web UI: %s/namespaces/%s/workflows\n", len(runs), strings.TrimRight(ls.Cfg.Temporal.UIURL, "/"), ls.Cfg.Temporal.Namespace)
	return nil
}

// progress prints a line when a mission's state, robot or node changes.
func progress(ctx context.Context, c client.Client, r *demoRun, out io.Writer) {
	var line string
	if r.done {
		if r.err != nil {
			line = "FAILED  " + ops.RootCause(r.err)
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
		if st.State == schemas.MissionQueued {
			line = fmt.Sprintf("%s  waiting for a robot (position %d)", st.State, st.QueuePosition)
		}
	}
	if line != r.last {
		r.last = line
		fmt.Fprintf(out, "%s  %-10s %s\n", time.Now().Format("15:04:05.0"), r.spec.MissionID, line)
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/schemas"
)

type benchEdgeFlags struct {
	robots, missions, concurrency int
}

func benchEdgeCmd(g *globalFlags) *cobra.Command {
	f := &benchEdgeFlags{}
	cmd := &cobra.Command{
		Use:   "edge",
		Short: "What multi-site mode's extra hop costs: the same missions in single-site mode and through an edge worker",
		Long: `edge runs the same missions twice on this machine, each time on a fresh
local stack with the same generated grid site and virtual fleet at speed 0
and the same concurrency:

  single  single-site mode: the workflow worker publishes orders itself
          (a local activity) to the one broker;
  edge    multi-site mode (edge.sites): the central worker has no broker;
          orders go through the site's robot I/O task queue robot-io-<site>
          to its edge worker, which publishes to the site's own broker, and
          its bridge signals the robots' states back.

It reports for each mode dispatch latency (start → order received by the
robot), finish latency (robot reports the order finished → workflow
completed) and missions per second, and the edge mode's figures as ratios
of the single-site mode's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchEdge(cmd.Context(), g, f, cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntVar(&f.robots, "robots", 50, "virtual robots")
	cmd.Flags().IntVar(&f.missions, "missions", 500, "missions per mode")
	cmd.Flags().IntVar(&f.concurrency, "concurrency", 25, "missions in flight")
	return cmd
}

// edgeModeRun is one mode's figures.
type edgeModeRun struct {
	name              string
	dispatch, finish  []time.Duration
	rate              float64 // missions/s
	failed, completed int
	hop               string // edge mode: orderHop
}

func runBenchEdge(ctx context.Context, g *globalFlags, f *benchEdgeFlags, out io.Writer) error {
	var runs []edgeModeRun
	for _, mode := range []string{"single", "edge"} {
		r, err := benchEdgeMode(ctx, g, f, mode, out)
		if err != nil {
			return fmt.Errorf("%s mode: %w", mode, err)
		}
		runs = append(runs, r)
	}
	single, edge := runs[0], runs[1]
	ratio := func(a, b time.Duration) string { return fmt.Sprintf("%.2f×", float64(a)/float64(b)) }
	fmt.Fprintf(out, "\nfleetflow multi-site benchmark — %d robots at speed 0, %d missions per mode, %d in flight, one run\n", f.robots, f.missions, f.concurrency)
	for _, r := range runs {
		fmt.Fprintf(out, "%-6s  dispatch p50 %s p99 %s; finish p50 %s p99 %s; %.0f missions/s; %d failed (samples %d dispatch, %d finish)\n", r.name,
			ms(percentile(r.dispatch, 0.5)), ms(percentile(r.dispatch, 0.99)), ms(percentile(r.finish, 0.5)), ms(percentile(r.finish, 0.99)),
			r.rate, r.failed, len(r.dispatch), len(r.finish))
	}
	fmt.Fprintf(out, "edge vs single: dispatch p50 %s (+%s), finish p50 %s (+%s), throughput %.0f%%\n",
		ratio(percentile(edge.dispatch, 0.5), percentile(single.dispatch, 0.5)), ms(percentile(edge.dispatch, 0.5)-percentile(single.dispatch, 0.5)),
		ratio(percentile(edge.finish, 0.5), percentile(single.finish, 0.5)), ms(percentile(edge.finish, 0.5)-percentile(single.finish, 0.5)),
		100*edge.rate/single.rate)
	fmt.Fprintf(out, "edge order  %s\n", edge.hop)
	if single.failed+edge.failed > 0 {
		return fmt.Errorf("%d missions failed", single.failed+edge.failed)
	}
	return nil
}

// benchEdgeMode starts a local stack in mode ("single" or "edge"), warms
// it up and runs the missions.
func benchEdgeMode(ctx context.Context, g *globalFlags, f *benchEdgeFlags, mode string, out io.Writer) (edgeModeRun, error) {
	cfg, err := benchConfig(g)
	if err != nil {
		return edgeModeRun{}, err
	}
	cfg.Worker.ReaperInterval = 0
	grid := site.Grid("bench-edge", 10, 10, 2, f.robots, []string{"acme", "robotix"})
	if mode == "edge" {
		cfg.Edge.Sites = []string{grid.Site}
	}
	fmt.Fprintf(out, "%s mode: starting the local stack with %d virtual robots…\n", mode, f.robots)
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: g.temporalBin, Headless: true, SiteMap: grid}, io.Discard)
	if err != nil {
		return edgeModeRun{}, err
	}
	defer ls.Stop()
	broker := ls.Cfg.MQTT.URL
	if mode == "edge" {
		broker = ls.Edges[0].Cfg.MQTT.URL // the site's own broker, where its robots are
	}
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	rng := rand.New(rand.NewPCG(1, 2))
	specs := func(prefix string, n int) []schemas.MissionSpec {
		return pickDropMissions(grid, rng, n, func(i int) string { return fmt.Sprintf("%s-%s-%s-%05d", prefix, mode, runID, i) })
	}
	c := ls.Worker.Client
	if _, err := benchMissions(ctx, c, ls.Cfg, broker, specs("warm", min(f.missions/10, 50)), f.concurrency); err != nil {
		return edgeModeRun{}, err
	}
	fmt.Fprintf(out, "%s mode: running %d missions, %d in flight…\n", mode, f.missions, f.concurrency)
	mr, err := benchMissions(ctx, c, ls.Cfg, broker, specs("edgebench", f.missions), f.concurrency)
	if err != nil {
		return edgeModeRun{}, err
	}
	r := edgeModeRun{name: mode, dispatch: mr.dispatch, finish: mr.finish, failed: mr.failed, completed: f.missions - mr.failed,
		rate: float64(f.missions-mr.failed) / mr.wall.Seconds()}
	if mode == "edge" {
		r.hop = orderHop(ctx, c, specs("edgebench", f.missions)[:min(f.missions, 100)])
	}
	return r, nil
}

// orderHop reads, from the histories of specs' missions, where an edge
// site's order spends its time before the edge worker publishes it: from
// the workflow's start to the SendOrder activity's scheduling (the
// workflow task that plans, reserves and builds the order, completed), and
// from scheduling to the edge worker's start of it (the task in the robot
// I/O queue). p50 of each.
func orderHop(ctx context.Context, c client.Client, specs []schemas.MissionSpec) string {
	var toSchedule, inQueue []time.Duration
	for _, s := range specs {
		var started, scheduled time.Time
		var schedID int64
		it := c.GetWorkflowHistory(ctx, schemas.MissionWorkflowID(s.MissionID), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				break
			}
			switch {
			case ev.GetWorkflowExecutionStartedEventAttributes() != nil:
				started = ev.GetEventTime().AsTime()
			case ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == schemas.ActivitySendOrder && schedID == 0:
				scheduled, schedID = ev.GetEventTime().AsTime(), ev.GetEventId()
			case ev.GetActivityTaskStartedEventAttributes() != nil && ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId() == schedID && schedID != 0:
				toSchedule = append(toSchedule, scheduled.Sub(started))
				inQueue = append(inQueue, ev.GetEventTime().AsTime().Sub(scheduled))
			}
		}
	}
	return fmt.Sprintf("start → SendOrder scheduled p50 %s, scheduled → started on the edge worker p50 %s (%d missions)",
		ms(percentile(toSchedule, 0.5)), ms(percentile(inQueue, 0.5)), len(inQueue))
}

package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/schemas"
)

type benchScaleFlags struct {
	robots                []int
	missions, concurrency int
	actionDuration        time.Duration
	stateRate             float64
}

func benchScaleCmd(g *globalFlags) *cobra.Command {
	f := &benchScaleFlags{}
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "Missions/s and finish p99 as the fleet grows (200, 1,000, 2,000 robots), busy robots publishing 10 states/s",
		Long: `scale runs the same missions on fleets of growing size, each on a fresh
local stack: one grid site holding the whole fleet, virtual robots that
move from node to node at once (speed 0) and take --action-duration for
each pick and drop, publishing --state-rate state messages per second
while they work (every 30 s idle), and the same number of missions in
flight.

A mission costs its robot the same time at every size (two actions; at
a finite speed a bigger fleet would have a robot nearer the pick station
and finish sooner), so what changes is what the fleet costs fleetflow:
the allocator's choice among more free robots (under the site's lock),
more robots in the registry, more idle states through the bridge. It reports for each size missions/s,
dispatch p50 (start → order at the robot), finish p50 and p99 (robot
finished → workflow completed) and the state messages the bridge took per
second, then each size's missions/s and finish p99 against the smallest
fleet's (target: within 20 %).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchScale(cmd.Context(), g, f, cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntSliceVar(&f.robots, "robots", []int{200, 1000, 2000}, "fleet sizes, smallest first (the reference)")
	cmd.Flags().IntVar(&f.missions, "missions", 300, "missions per fleet size")
	cmd.Flags().IntVar(&f.concurrency, "concurrency", 50, "missions in flight")
	cmd.Flags().DurationVar(&f.actionDuration, "action-duration", time.Second, "how long a pick or a drop takes")
	cmd.Flags().Float64Var(&f.stateRate, "state-rate", 10, "state messages per second of a working robot")
	return cmd
}

// scaleRun is one fleet size's figures.
type scaleRun struct {
	robots           int
	rate             float64 // missions/s
	dispatch, finish []time.Duration
	statesPerSecond  float64
	failed           int
}

func runBenchScale(ctx context.Context, g *globalFlags, f *benchScaleFlags, out io.Writer) error {
	if len(f.robots) == 0 || f.missions <= 0 || f.concurrency <= 0 || f.stateRate <= 0 || f.actionDuration <= 0 {
		return fmt.Errorf("--robots, --missions, --concurrency, --action-duration and --state-rate must be positive")
	}
	var runs []scaleRun
	for _, n := range f.robots {
		if n < f.concurrency {
			return fmt.Errorf("--robots %d: fewer robots than missions in flight (%d)", n, f.concurrency)
		}
		r, err := benchScaleSize(ctx, g, f, n, out)
		if err != nil {
			return fmt.Errorf("%d robots: %w", n, err)
		}
		runs = append(runs, r)
	}
	ref := runs[0]
	refP99 := percentile(ref.finish, 0.99)
	fmt.Fprintf(out, "\nfleetflow scale benchmark — %d missions per fleet size, %d in flight, robots at speed 0 with %s actions publishing %.0f states/s while they work, one run\n",
		f.missions, f.concurrency, f.actionDuration, f.stateRate)
	for _, r := range runs {
		p99 := percentile(r.finish, 0.99)
		verdict := func(ok bool) string {
			if ok {
				return "ok"
			}
			return "MISSED"
		}
		rateRatio, p99Ratio := r.rate/ref.rate, float64(p99)/float64(refP99)
		fmt.Fprintf(out, "%5d robots  %.1f missions/s (%.2f× %d robots' %s); dispatch p50 %s; finish p50 %s, p99 %s (%.2f× %s); bridge %.0f states/s; %d failed\n",
			r.robots, r.rate, rateRatio, ref.robots, verdict(rateRatio >= 0.8), ms(percentile(r.dispatch, 0.5)),
			ms(percentile(r.finish, 0.5)), ms(p99), p99Ratio, verdict(p99Ratio <= 1.2), r.statesPerSecond, r.failed)
	}
	failed := 0
	for _, r := range runs {
		failed += r.failed
	}
	if failed > 0 {
		return fmt.Errorf("%d missions failed", failed)
	}
	return nil
}

// benchScaleSize starts a local stack with n robots, warms it up and runs
// the missions.
func benchScaleSize(ctx context.Context, g *globalFlags, f *benchScaleFlags, n int, out io.Writer) (scaleRun, error) {
	cfg, err := benchConfig(g)
	if err != nil {
		return scaleRun{}, err
	}
	cfg.Worker.ReaperInterval = 0
	cfg.Charging.Threshold = 0 // no Charge workflows in the figures
	cfg.Sim.Speed, cfg.Sim.ActionDuration = 0, f.actionDuration
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	// A site of its own per run and size: a registry shared with earlier
	// runs keeps their robots, and this site must hold exactly n.
	grid := site.Grid(fmt.Sprintf("scale-%d-%s", n, runID), 20, 20, 2, n, []string{"acme", "robotix"})
	fmt.Fprintf(out, "%d robots: starting the local stack…\n", n)
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: g.temporalBin, Headless: true, SiteMap: grid,
		DrivingStateInterval: time.Duration(float64(time.Second) / f.stateRate)}, io.Discard)
	if err != nil {
		return scaleRun{}, err
	}
	defer ls.Stop()
	rng := rand.New(rand.NewPCG(1, 2)) // the same missions at every size
	specs := func(prefix string, count int) []schemas.MissionSpec {
		return pickDropMissions(grid, rng, count, func(i int) string { return fmt.Sprintf("%s-%d-%s-%05d", prefix, n, runID, i) })
	}
	c := ls.Worker.Client
	if _, err := benchMissions(ctx, c, ls.Cfg, ls.Cfg.MQTT.URL, specs("warm", min(f.missions/10, f.concurrency)), f.concurrency); err != nil {
		return scaleRun{}, err
	}
	fmt.Fprintf(out, "%d robots: running %d missions, %d in flight…\n", n, f.missions, f.concurrency)
	states0 := bridgeStates(ls)
	mr, err := benchMissions(ctx, c, ls.Cfg, ls.Cfg.MQTT.URL, specs("scale", f.missions), f.concurrency)
	if err != nil {
		return scaleRun{}, err
	}
	return scaleRun{robots: n, rate: float64(f.missions-mr.failed) / mr.wall.Seconds(), dispatch: mr.dispatch, finish: mr.finish,
		statesPerSecond: (bridgeStates(ls) - states0) / mr.wall.Seconds(), failed: mr.failed}, nil
}

// bridgeStates is the bridge's count of state messages taken so far
// (fleetflow_bridge_messages_total{topic="state"}).
func bridgeStates(ls *localstack.Stack) float64 {
	mfs, err := ls.Worker.Registry.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != "fleetflow_bridge_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == "state" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

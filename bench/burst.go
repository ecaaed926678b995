package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/schemas"
)

type benchBurstFlags struct {
	robots, missions, starters int
}

func benchBurstCmd(g *globalFlags) *cobra.Command {
	f := &benchBurstFlags{}
	cmd := &cobra.Command{
		Use:   "burst",
		Short: "Backpressure: a burst of missions for far fewer robots queues without errors, in bounded memory, served in priority order",
		Long: `burst starts the local stack with a generated grid site and a virtual
fleet at speed 0, starts every mission at once (random priorities 0–9, each
mission fits every robot), waits until all have ended, and reports: missions
that did not complete (target 0), the peak resident memory of this process
(workers, bridge, virtual fleet), the Temporal dev server and the
PostgreSQL postmaster against their size before the burst, and the median
queue wait of each priority level read back from the audit log (served in
priority order: no level waits less than a higher one).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchBurst(cmd.Context(), g, f, cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntVar(&f.robots, "robots", 50, "virtual robots")
	cmd.Flags().IntVar(&f.missions, "missions", 5000, "missions started at once")
	cmd.Flags().IntVar(&f.starters, "starters", 100, "concurrent start requests")
	return cmd
}

func runBenchBurst(ctx context.Context, g *globalFlags, f *benchBurstFlags, out io.Writer) error {
	cfg, err := benchConfig(g)
	if err != nil {
		return err
	}
	cfg.Worker.ReaperInterval = 0
	grid := site.Grid("burst", 10, 10, 2, f.robots, []string{"acme"})
	fmt.Fprintf(out, "starting the local stack with %d virtual robots…\n", f.robots)
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: g.temporalBin, Headless: true, SiteMap: grid}, io.Discard)
	if err != nil {
		return err
	}
	defer ls.Stop()
	c := ls.Worker.Client
	picks, drops := grid.PickAndDropStations()
	runID := strconv.FormatInt(time.Now().Unix(), 36)
	rng := rand.New(rand.NewPCG(3, 4))
	specs := make([]schemas.MissionSpec, f.missions)
	for i := range specs {
		specs[i] = schemas.MissionSpec{MissionID: fmt.Sprintf("burst-%s-%05d", runID, i), Site: grid.Site, Priority: rng.IntN(10), TimeoutSeconds: 3600,
			Steps: []schemas.MissionStep{{Station: picks[rng.IntN(len(picks))], Action: "pick"}, {Station: drops[rng.IntN(len(drops))], Action: "drop"}}}
	}

	// Resident memory of each process, sampled every second.
	procs := map[string]int{"fleetflow (workers, bridge, fleet)": os.Getpid()}
	for name, pid := range ls.Services.ProcessGroups() {
		procs[name] = pid
	}
	before := map[string]int64{}
	for name, pid := range procs {
		before[name] = rssOf(pid)
	}
	peak := map[string]int64{}
	var pmu sync.Mutex
	stopSampling := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				pmu.Lock()
				for name, pid := range procs {
					peak[name] = max(peak[name], rssOf(pid))
				}
				pmu.Unlock()
			}
		}
	}()

	fmt.Fprintf(out, "starting %d missions at once (%d start requests in flight) for %d robots…\n", f.missions, f.starters, f.robots)
	t0 := time.Now()
	var failed []string
	var fmu sync.Mutex
	fail := func(s string) {
		fmu.Lock()
		failed = append(failed, s)
		fmu.Unlock()
	}
	var wg sync.WaitGroup
	startWall := runConcurrent(f.missions, f.starters, func(i int) {
		run, err := ops.StartMission(ctx, c, ls.Cfg, specs[i], "burst", "")
		if err != nil {
			fail(fmt.Sprintf("%s: start: %v", specs[i].MissionID, err))
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res schemas.MissionResult
			err := run.Get(ctx, &res)
			// The long poll for the result can time out while the server is
			// swamped: that is the measurement's problem, not the mission's.
			for tries := 0; err != nil && (errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "deadline exceeded")) && tries < 100; tries++ {
				time.Sleep(time.Second)
				err = c.GetWorkflow(ctx, run.GetID(), "").Get(ctx, &res)
			}
			if err != nil || res.State != schemas.MissionCompleted {
				fail(fmt.Sprintf("%s: %v %s", specs[i].MissionID, err, res.State))
			}
		}()
	})
	wg.Wait()
	wall := time.Since(t0)
	close(stopSampling)

	inversions, waits, err := priorityInversions(ctx, ls, specs)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nbackpressure — %d missions started at once for %d robots at speed 0, one run\n", f.missions, f.robots)
	fmt.Fprintf(out, "started    in %s (%.0f starts/s); all ended after %s (%.0f missions/s)\n", startWall.Round(time.Millisecond),
		float64(f.missions)/startWall.Seconds(), wall.Round(time.Second), float64(f.missions)/wall.Seconds())
	fmt.Fprintf(out, "errors     %d missions did not complete (target 0)\n", len(failed))
	for i, s := range failed {
		if i == 5 {
			fmt.Fprintf(out, "           … and %d more\n", len(failed)-5)
			break
		}
		fmt.Fprintf(out, "           %s\n", s)
	}
	names := make([]string, 0, len(procs))
	for name := range procs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(out, "memory     %s: %.0f MB before, peak %.0f MB during the burst\n", name, float64(before[name])/(1<<20), float64(peak[name])/(1<<20))
	}
	order := "served in priority order: yes"
	if inversions > 0 {
		order = fmt.Sprintf("NOT in priority order: %d priority levels waited less than a higher one", inversions)
	}
	fmt.Fprintf(out, "priority   queue wait %s; %s\n", waits, order)
	if len(failed) > 0 || inversions > 0 {
		return fmt.Errorf("burst: %d missions failed, %d priority inversions (see above)", len(failed), inversions)
	}
	return nil
}

// rssOf is a process's resident set in bytes (/proc/PID/status VmRSS), 0
// when unknown.
func rssOf(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// priorityInversions reads each mission's queueing and grant from the audit
// log and compares the median queue wait of the priority levels: served in
// priority order means every level waited at least as long as the level
// above it (every mission of the burst fits every robot). It returns the
// number of levels that waited less than a higher one, and the medians.
func priorityInversions(ctx context.Context, ls *localstack.Stack, specs []schemas.MissionSpec) (int, string, error) {
	type life struct {
		prio            int
		queued, granted time.Time
	}
	lives := map[string]*life{}
	for _, s := range specs {
		lives[s.MissionID] = &life{prio: s.Priority}
	}
	rows, err := ls.Worker.Store.Pool().Query(ctx, `SELECT subject, kind, at FROM audit_log WHERE kind IN ('reservation.queued', 'reservation.granted') ORDER BY id`)
	if err != nil {
		return 0, "", err
	}
	defer rows.Close()
	for rows.Next() {
		var subject, kind string
		var at time.Time
		if err := rows.Scan(&subject, &kind, &at); err != nil {
			return 0, "", err
		}
		l := lives[subject]
		if l == nil {
			continue
		}
		switch {
		case kind == "reservation.queued" && l.queued.IsZero():
			l.queued = at
		case kind == "reservation.granted" && l.granted.IsZero():
			l.granted = at
		}
	}
	if err := rows.Err(); err != nil {
		return 0, "", err
	}
	byPrio := map[int][]time.Duration{}
	for _, l := range lives {
		if l.granted.IsZero() {
			continue
		}
		if l.queued.IsZero() {
			l.queued = l.granted // granted at once
		}
		byPrio[l.prio] = append(byPrio[l.prio], l.granted.Sub(l.queued))
	}
	var parts []string
	inversions := 0
	var higher time.Duration = -1
	for p := 9; p >= 0; p-- {
		d := byPrio[p]
		if len(d) == 0 {
			continue
		}
		m := percentile(d, 0.5)
		if higher >= 0 && m < higher {
			inversions++
		}
		higher = m
		parts = append(parts, fmt.Sprintf("p%d %s", p, m.Round(100*time.Millisecond)))
	}
	return inversions, "p50 by priority (high to low): " + strings.Join(parts, ", "), nil
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/internal/wms"
	"github.com/fleetflow/fleetflow/schemas"
)

type benchIngressFlags struct {
	robots, requests, concurrency int
}

func benchIngressCmd(g *globalFlags) *cobra.Command {
	f := &benchIngressFlags{}
	cmd := &cobra.Command{
		Use:   "ingress",
		Short: "REST ingress: POST /v1/missions latency and rate against starting the same workflow with the Temporal client",
		Long: `ingress starts the local stack (grid site, virtual fleet at speed 0) with
the REST ingress, then starts the same kind of mission three ways, one after
the other, each with --concurrency requests in flight, waiting for every
mission of a phase to end before the next:
  1. baseline: ExecuteWorkflow with the Temporal client (the start only);
  2. update-with-start (internal/wms.SubmitMission, what the ingress does:
     the start plus the accept update, answered by the first workflow task);
  3. POST /v1/missions through HTTP (API key, schema and site-map checks,
     internal/wms.StartMission: a start, and for a taken ID the existing
     mission's input compared; an audit row).
It reports p50/p99 latency and requests per second of each, and the
ingress's p50 against the baseline's (target ≤ 1.3×).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchIngress(cmd.Context(), g, f, cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntVar(&f.robots, "robots", 50, "virtual robots")
	cmd.Flags().IntVar(&f.requests, "requests", 1000, "missions started in each phase")
	cmd.Flags().IntVar(&f.concurrency, "concurrency", 50, "requests in flight")
	return cmd
}

func runBenchIngress(ctx context.Context, g *globalFlags, f *benchIngressFlags, out io.Writer) error {
	cfg, err := benchConfig(g)
	if err != nil {
		return err
	}
	const key = "bench-ingress-key-0123456789abcdef0123456789"
	cfg.WMS.IngressAddr = "127.0.0.1:0"
	cfg.WMS.Clients = []config.WMSClient{{Name: "bench-wms", APIKeyEnv: "BENCH", APIKey: key}}
	grid := site.Grid("ingress", 10, 10, 2, f.robots, []string{"acme"})
	fmt.Fprintf(out, "starting the local stack with %d virtual robots and the REST ingress…\n", f.robots)
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: g.temporalBin, Headless: true, SiteMap: grid}, io.Discard)
	if err != nil {
		return err
	}
	defer ls.Stop()
	c := ls.Worker.Client
	picks, drops := grid.PickAndDropStations()
	runID := strconv.FormatInt(time.Now().Unix(), 36)
	spec := func(phase string, i int) schemas.MissionSpec {
		return schemas.MissionSpec{MissionID: fmt.Sprintf("in-%s-%s-%05d", runID, phase, i), Site: grid.Site, MinBattery: schemas.DefaultMinBattery,
			Steps: []schemas.MissionStep{{Station: picks[i%len(picks)], Action: "pick"}, {Station: drops[(i*7)%len(drops)], Action: "drop"}}}
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: f.concurrency * 2, MaxIdleConnsPerHost: f.concurrency * 2}, Timeout: time.Minute}
	url := "http://" + ls.Worker.IngressAddr + "/v1/missions"
	post := func(s schemas.MissionSpec) error {
		body, _ := json.Marshal(s)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("POST: %d %s", resp.StatusCode, raw)
		}
		return nil
	}
	phases := []struct {
		name, label string
		start       func(schemas.MissionSpec) error
	}{
		{"direct", "baseline  ExecuteWorkflow (Temporal client)", func(s schemas.MissionSpec) error {
			_, err := c.ExecuteWorkflow(ctx, wms.StartOptions(cfg.TaskQueues.Missions, s, "bench-wms", enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL),
				schemas.MissionWorkflowType, schemas.MissionInput{Spec: s, Client: "bench-wms", RequestedBy: "bench"})
			return err
		}},
		{"uws", "          update-with-start (wms.SubmitMission)", func(s schemas.MissionSpec) error {
			_, err := wms.SubmitMission(ctx, c, nil, cfg.TaskQueues.Missions, s, "bench-wms", "bench")
			return err
		}},
		{"rest", "ingress   POST /v1/missions (HTTP)", post},
	}
	type result struct {
		p50, p99 time.Duration
		rate     float64
	}
	results := map[string]result{}
	for _, ph := range phases {
		for i := range min(50, f.requests/10) { // warm up connections and caches
			if err := ph.start(spec(ph.name+"w", i)); err != nil {
				return fmt.Errorf("%s warm-up: %w", ph.name, err)
			}
		}
		lat := make([]time.Duration, f.requests)
		errs := make([]error, f.requests)
		wall := runConcurrent(f.requests, f.concurrency, func(i int) {
			t0 := time.Now()
			errs[i] = ph.start(spec(ph.name, i))
			lat[i] = time.Since(t0)
		})
		for i, err := range errs {
			if err != nil {
				return fmt.Errorf("%s request %d: %w", ph.name, i, err)
			}
		}
		r := result{percentile(lat, 0.5), percentile(lat, 0.99), float64(f.requests) / wall.Seconds()}
		results[ph.name] = r
		fmt.Fprintf(out, "%s: p50 %s, p99 %s, %.0f requests/s\n", ph.label, ms(r.p50), ms(r.p99), r.rate)
		// Let the phase's missions end so the next phase starts on an idle stack.
		if err := waitMissionsEnded(ctx, c, 5*time.Minute); err != nil {
			return err
		}
	}
	ratio := float64(results["rest"].p50) / float64(results["direct"].p50)
	verdict := "met"
	if ratio > 1.3 {
		verdict = "MISSED"
	}
	fmt.Fprintf(out, "ratio     ingress p50 / ExecuteWorkflow p50 = %.2f× (target ≤ 1.3×) %s; ingress / update-with-start = %.2f×; requests/s %.0f%% of the baseline's\n",
		ratio, verdict, float64(results["rest"].p50)/float64(results["uws"].p50), 100*results["rest"].rate/results["direct"].rate)
	return nil
}

// waitMissionsEnded waits until visibility shows no running Mission.
func waitMissionsEnded(ctx context.Context, c client.Client, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	q := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", schemas.MissionWorkflowType)
	for {
		res, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: q})
		if err == nil && res.GetCount() == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("missions still running after %s (%d; %v)", limit, res.GetCount(), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

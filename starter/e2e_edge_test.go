package main

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/schemas"
)

// Multi-site mode end to end (config edge.sites): one control plane — the
// central worker polls missions and ota and has no MQTT broker at all — and
// two sites, each with its own broker, edge worker (robot I/O queue
// robot-io-<site>, bridge) and virtual fleet.
//
//  1. Missions on both sites complete; their SendOrder ran on the site's
//     own robot I/O queue (read from the missions' histories).
//  2. Site B's edge worker is stopped for 60 s, as a site whose uplink is
//     down: a mission of B that was driving, missions of B started during
//     the outage, and a rollout on B wait; site A's missions and rollout go
//     on. B's worker comes back, and every mission and both rollouts end
//     COMPLETED with every robot released: nothing lost.
func TestEndToEndEdgeSites(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	cfg := e2eConfig(t)
	cfg.Sim.Speed = 4
	cfg.Sim.ActionDuration = 200 * time.Millisecond
	siteA := site.Grid("edge-a", 5, 3, 2, 3, []string{"acme"})
	siteB := site.Grid("edge-b", 5, 3, 2, 3, []string{"robotix"}) // robot IDs are fleet-wide: another manufacturer
	cfg.Edge.Sites = []string{siteA.Site, siteB.Site}

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true,
		SiteMaps: []*site.Map{siteA, siteB}, StateInterval: 2 * time.Second, RebootDelay: 200 * time.Millisecond}, io.Discard)
	require.NoError(t, err)
	defer ls.Stop()
	require.Len(t, ls.Edges, 2)
	require.Nil(t, ls.Worker.MQTT, "the central worker has no broker")
	c := ls.Worker.Client

	n := 0
	mission := func(s *site.Map, from, to string) client.WorkflowRun {
		n++
		spec := schemas.MissionSpec{MissionID: fmt.Sprintf("%s-m%d", s.Site, n), Site: s.Site, Priority: 50, MinBattery: 10,
			Steps: []schemas.MissionStep{{Station: from, Action: "pick"}, {Station: to, Action: "drop"}}}
		run, err := ops.StartMission(ctx, c, ls.Cfg, spec, "e2e", "")
		require.NoError(t, err)
		return run
	}
	completed := func(run client.WorkflowRun) schemas.MissionResult {
		var res schemas.MissionResult
		require.NoError(t, run.Get(ctx, &res), run.GetID())
		require.Equal(t, schemas.MissionCompleted, res.State, "%s: %+v", run.GetID(), res)
		return res
	}

	// 1. Both sites work, each through its own queue.
	a1, b1 := mission(siteA, "in-0", "out-2"), mission(siteB, "in-1", "out-0")
	completed(a1)
	completed(b1)
	for run, s := range map[client.WorkflowRun]*site.Map{a1: siteA, b1: siteB} {
		queues := sendOrderQueues(t, ctx, c, run.GetID())
		require.Equal(t, []string{ls.Cfg.TaskQueues.RobotIOFor(s.Site)}, queues, "%s sent its order through its site's queue", run.GetID())
	}

	// 2. Site B loses its edge worker for 60 s while a mission drives.
	driving := mission(siteB, "in-0", "out-2")
	require.Eventually(t, func() bool {
		st, err := queryStatus(ctx, c, workflowMissionID(driving))
		return err == nil && st.State == schemas.MissionDriving
	}, time.Minute, 50*time.Millisecond)
	ls.StopEdgeWorker(siteB.Site)
	down := time.Now()
	during := []client.WorkflowRun{mission(siteB, "in-2", "out-1"), mission(siteB, "in-1", "out-1")}
	rollA, rollB := startEdgeRollout(t, ctx, c, ls.Cfg.TaskQueues.OTA, siteA), startEdgeRollout(t, ctx, c, ls.Cfg.TaskQueues.OTA, siteB)

	// Site A goes on meanwhile: missions and its rollout complete.
	completed(mission(siteA, "in-1", "out-0"))
	var rs schemas.RolloutStatus
	require.NoError(t, rollA.Get(ctx, &rs))
	require.Equal(t, schemas.RolloutCompleted, rs.State)
	require.Equal(t, len(siteA.Robots), rs.Counts.Succeeded, "%+v", rs.Counts)

	// Site B's work waits: no order of a mission started during the outage
	// went out, nothing ended.
	if wait := 60*time.Second - time.Since(down); wait > 0 {
		time.Sleep(wait)
	}
	for _, run := range append([]client.WorkflowRun{driving, rollB}, during...) {
		d, err := c.DescribeWorkflowExecution(ctx, run.GetID(), "")
		require.NoError(t, err)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, d.GetWorkflowExecutionInfo().GetStatus(), "%s ended while its site was cut off", run.GetID())
	}
	for _, run := range during {
		st, err := queryStatus(ctx, c, workflowMissionID(run))
		require.NoError(t, err)
		require.Zero(t, st.NodesDone, "%s: no robot of site B can have driven for it: %+v", run.GetID(), st)
	}

	// B's edge worker comes back: everything completes, nothing lost.
	require.NoError(t, ls.StartEdgeWorker(ctx, siteB.Site))
	completed(driving)
	for _, run := range during {
		completed(run)
	}
	require.NoError(t, rollB.Get(ctx, &rs))
	require.Equal(t, schemas.RolloutCompleted, rs.State)
	require.Equal(t, len(siteB.Robots), rs.Counts.Succeeded, "%+v", rs.Counts)
	for _, s := range []*site.Map{siteA, siteB} {
		views, err := ls.Worker.Store.ListRobots(ctx, s.Site)
		require.NoError(t, err)
		for _, v := range views {
			require.Empty(t, v.ReservedBy, "robot %s still reserved", v.ID)
			require.Equal(t, "2.0.0", v.SoftwareVersion, "robot %s", v.ID)
		}
		for _, r := range ls.Edge(s.Site).Fleet.Robots() {
			require.Equal(t, "2.0.0", r.SoftwareVersion(), "robot %s of %s", r.Key(), s.Site)
		}
	}
}

// workflowMissionID is the mission ID of a Mission workflow run.
func workflowMissionID(run client.WorkflowRun) string {
	return run.GetID()[len(schemas.MissionWorkflowID("")):]
}

// startEdgeRollout starts fleetos 2.0.0 on every robot of s, all at once.
func startEdgeRollout(t *testing.T, ctx context.Context, c client.Client, queue string, s *site.Map) client.WorkflowRun {
	spec, err := schemas.LoadRollout("../testdata/rollouts/r-fleetos-2.0.0.json")
	require.NoError(t, err)
	spec.RolloutID = "edge-" + s.Site
	spec.Targets = schemas.TargetSelector{Site: s.Site}
	spec.Waves = schemas.WavePlan{Canary: 1, Percentages: []int{100}}
	spec.MaxConcurrent = len(s.Robots)
	spec.SoakTime, spec.HealthCheck = schemas.Duration(time.Second), schemas.Duration(time.Second)
	spec.RobotTimeout = schemas.Duration(4 * time.Minute)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: schemas.RolloutWorkflowID(spec.RolloutID), TaskQueue: queue},
		schemas.RolloutWorkflowType, schemas.RolloutInput{Spec: spec, RequestedBy: "e2e"})
	require.NoError(t, err)
	return run
}

// sendOrderQueues lists the task queues the SendOrder activities of a
// workflow were scheduled on (empty when they ran as local activities).
func sendOrderQueues(t *testing.T, ctx context.Context, c client.Client, wfID string) []string {
	var out []string
	it := c.GetWorkflowHistory(ctx, wfID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == schemas.ActivitySendOrder {
			out = append(out, a.GetTaskQueue().GetName())
		}
	}
	return out
}

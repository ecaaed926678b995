package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/schemas"
	"github.com/fleetflow/fleetflow/workers/worker"
)

// A new worker release does not break running workflows (Temporal Worker
// Deployment Versioning, worker.versioning): the stack's workers are build
// v1 of deployment fleetflow and make themselves current (first install).
// A mission starts and drives on v1. Build v2 comes up beside it and the
// operator makes it current, as the README says. A new mission runs on v2
// from its first task; the one already driving stays pinned to v1 and
// completes there.
func TestEndToEndWorkerVersionRollout(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	cfg := e2eConfig(t)
	cfg.Sim.Speed = 2
	cfg.Sim.ActionDuration = 300 * time.Millisecond
	cfg.Worker.Versioning.BuildID = "v1"
	cfg.Worker.Versioning.SetCurrentIfNone = true // a first install
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true}, io.Discard)
	require.NoError(t, err)
	defer ls.Stop()
	c := ls.Worker.Client
	specs, err := loadMissionDir("../testdata/missions")
	require.NoError(t, err)

	old := specs[0]
	old.MissionID = "versioning-old"
	old.Steps = farthestSteps(t, ls)
	oldRun, err := ops.StartMission(ctx, c, ls.Cfg, old, "e2e", "")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, err := queryStatus(ctx, c, old.MissionID)
		return err == nil && st.State == schemas.MissionDriving
	}, time.Minute, 50*time.Millisecond)

	// Release v2: its workers come up beside v1's, then it is made current.
	v2 := ls.Cfg
	v2.Worker.Versioning.BuildID = "v2"
	w2, err := worker.Start(ctx, worker.Options{Config: v2, TaskQueues: []string{v2.TaskQueues.Missions}, Logger: ls.Log})
	require.NoError(t, err)
	defer w2.Stop()
	h := c.WorkerDeploymentClient().GetHandle(cfg.Worker.Versioning.DeploymentName)
	require.Eventually(t, func() bool {
		// v2 polls only missions here; v1 also ota and maintenance.
		_, err := h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: "v2", IgnoreMissingTaskQueues: true})
		return err == nil
	}, 30*time.Second, 500*time.Millisecond, "v2 never accepted as current")

	fresh := specs[0]
	fresh.MissionID = "versioning-new"
	newRun, err := ops.StartMission(ctx, c, ls.Cfg, fresh, "e2e", "")
	require.NoError(t, err)
	var res schemas.MissionResult
	require.NoError(t, newRun.Get(ctx, &res))
	require.Equal(t, schemas.MissionCompleted, res.State)
	require.NoError(t, oldRun.Get(ctx, &res))
	require.Equal(t, schemas.MissionCompleted, res.State, "the mission that started on v1 completes")

	for id, want := range map[string]string{oldRun.GetID(): "v1", newRun.GetID(): "v2"} {
		d, err := c.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, err)
		vi := d.GetWorkflowExecutionInfo().GetVersioningInfo()
		require.Equal(t, want, vi.GetDeploymentVersion().GetBuildId(), "%s ran on", id)
		require.Equal(t, enumspb.VERSIONING_BEHAVIOR_PINNED, vi.GetBehavior(), "%s is pinned", id)
	}
	// Every workflow task of the old mission, after v2 became current
	// too, was completed by v1.
	it := c.GetWorkflowHistory(ctx, oldRun.GetID(), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	tasks := 0
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if a := ev.GetWorkflowTaskCompletedEventAttributes(); a != nil {
			tasks++
			require.Equal(t, "v1", a.GetDeploymentVersion().GetBuildId(), "workflow task %d of the old mission", ev.GetEventId())
		}
	}
	require.Greater(t, tasks, 3)
}

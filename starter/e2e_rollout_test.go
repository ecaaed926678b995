package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// End to end on the real stack (dev server, broker, PostgreSQL, workers,
// bridge, 20 virtual robots that download, verify and install artifacts
// served over HTTP from testdata/artifacts):
//   - fleetos 2.0.0 reaches all 20 robots in three waves;
//   - fleetos 2.1.0-bad makes robots FATAL after boot: the rollout aborts
//     itself after the canary and rolls the canary robots back to 2.0.0;
//   - an unsigned artifact is refused before any robot is touched.
//
// The store is private, as a bucket is: it answers only URLs that carry
// its presigned token (artifacts.urlQuery). The ota worker and the robots
// get it, and no workflow history holds it.
func TestEndToEndRollouts(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	cfg := e2eConfig(t)
	sas := fmt.Sprintf("sig%016x", rand.Uint64())
	cfg.Artifacts.URLQuery = "sv=2024-05-04&sp=r&sig=" + sas
	grid := site.Grid("ota-e2e", 5, 4, 2, 20, []string{"acme", "robotix"})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true, SiteMap: grid, RebootDelay: 200 * time.Millisecond}, io.Discard)
	require.NoError(t, err)
	defer ls.Stop()
	c := ls.Worker.Client

	load := func(file string) schemas.RolloutSpec {
		spec, err := schemas.LoadRollout("../testdata/rollouts/" + file)
		require.NoError(t, err)
		spec.Targets = schemas.TargetSelector{Site: grid.Site}
		spec.SoakTime = schemas.Duration(time.Second)
		spec.HealthCheck = schemas.Duration(time.Second)
		spec.RobotTimeout = schemas.Duration(time.Minute)
		return spec
	}
	start := func(spec schemas.RolloutSpec) client.WorkflowRun {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: schemas.RolloutWorkflowID(spec.RolloutID), TaskQueue: ls.Cfg.TaskQueues.OTA,
			WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, WorkflowExecutionErrorWhenAlreadyStarted: true,
		}, schemas.RolloutWorkflowType, schemas.RolloutInput{Spec: spec, RequestedBy: "e2e"})
		require.NoError(t, err)
		return run
	}
	versions := func() map[string]string {
		views, err := ls.Worker.Store.ListRobots(ctx, grid.Site)
		require.NoError(t, err)
		out := map[string]string{}
		for _, v := range views {
			require.Empty(t, v.ReservedBy, "robot %s still reserved", v.ID)
			out[v.ID] = v.SoftwareVersion
		}
		return out
	}
	for id, v := range versions() {
		require.Equal(t, "1.4.2", v, id)
	}

	// 1. A good release in three waves: canary 2, then 50 %, then 100 %.
	good := load("r-fleetos-2.0.0.json")
	good.RolloutID = "e2e-good"
	good.Waves = schemas.WavePlan{Canary: 2, Percentages: []int{50, 100}}
	good.MaxConcurrent = 5
	var st schemas.RolloutStatus
	goodRun := start(good)
	require.NoError(t, goodRun.Get(ctx, &st))
	require.Equal(t, schemas.RolloutCompleted, st.State)
	require.Len(t, st.Waves, 3)
	require.Equal(t, []int{2, 8, 10}, []int{st.Waves[0].Size, st.Waves[1].Size, st.Waves[2].Size})
	require.Equal(t, 20, st.Counts.Succeeded, "%+v", st.Counts)
	for id, v := range versions() {
		require.Equal(t, "2.0.0", v, "registry version of %s", id)
	}
	for _, r := range ls.Fleet.Robots() {
		require.Equal(t, "2.0.0", r.SoftwareVersion(), "robot %s", r.Key())
	}

	// 2. A release that makes robots FATAL after boot aborts itself after
	// the canary; the canary robots go back to 2.0.0.
	bad := load("r-fleetos-2.1.0-bad.json")
	bad.RolloutID = "e2e-bad"
	bad.Waves = schemas.WavePlan{Canary: 2, Percentages: []int{100}}
	bad.RollbackOnAbort = true
	bad.Retries = 0
	badRun := start(bad)
	err = badRun.Get(ctx, &st)
	require.Error(t, err)
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "%v", err)
	require.Equal(t, "RolloutAborted", ae.Type())
	require.NoError(t, ae.Details(&st))
	require.Equal(t, schemas.RolloutAborted, st.State)
	require.Equal(t, 2, st.Waves[0].Failed, "%+v", st.Waves)
	require.Equal(t, 0, st.Waves[1].Started, "no robot of wave 2 started")
	require.Equal(t, 18, st.Counts.Cancelled)
	require.Equal(t, 2, st.Counts.RolledBack, "%+v", st.Robots[:2])
	for id, v := range versions() {
		require.Equal(t, "2.0.0", v, "robot %s after the aborted rollout", id)
	}
	for _, r := range ls.Fleet.Robots() {
		snap := r.Snapshot()
		for _, e := range snap.Errors {
			require.NotEqual(t, vda5050.ErrorFatal, e.ErrorLevel, "robot %s still FATAL after rollback: %+v", r.Key(), e)
		}
	}

	// 3. An unsigned artifact is refused before any robot is touched.
	unsigned := load("r-fleetos-2.2.0-unsigned.json")
	unsigned.RolloutID = "e2e-unsigned"
	err = start(unsigned).Get(ctx, &st)
	require.Error(t, err)
	require.True(t, errors.As(err, &ae), "%v", err)
	require.Equal(t, "Unsigned", ae.Type(), "%v", err)
	trail, err := ls.Worker.Store.AuditTrail(ctx, schemas.RobotUpdateWorkflowID("e2e-unsigned", "acme/R00001"))
	require.NoError(t, err)
	require.Empty(t, trail, "no robot was touched")
	for id, v := range versions() {
		require.Equal(t, "2.0.0", v, id)
	}

	// FLEETFLOW_RECORD_HISTORIES=DIR writes the histories the replay tests
	// in workflows/ read (the good rollout's first run, which continued as
	// new; the aborted one; a canary robot's update that was rolled back).
	requireNoSecretInHistories(t, ctx, c, sas)
	resp, err := http.Get(ls.Cfg.Artifacts.BaseURL + "fleetos-2.0.0.bin")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "the store refuses a URL without its token")

	if dir := os.Getenv("FLEETFLOW_RECORD_HISTORIES"); dir != "" {
		record := func(wfID, runID, file string) { recordHistory(t, ctx, ls, wfID, runID, filepath.Join(dir, file)) }
		record(goodRun.GetID(), goodRun.GetRunID(), "rollout-continued-as-new.json")
		record(badRun.GetID(), "", "rollout-aborted-rolled-back.json")
		record(schemas.RobotUpdateWorkflowID("e2e-bad", st.Robots[0].RobotID), "", "robotupdate-fatal-rolled-back.json")
	}
}

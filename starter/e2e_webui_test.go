package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/schemas"
)

// The Temporal Web UI's workflow list, as a user opens it during `make
// dev`, shows each mission's robot, site and state with fleetflow's
// columns: headless Chromium loads the real UI of the dev server, and the
// mission row must carry the values the mission ended with.
func TestEndToEndWebUIShowsRobotSiteAndState(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	cfg := e2eConfig(t)
	cfg.Sim.Speed = 8
	cfg.Sim.ActionDuration = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal"}, io.Discard)
	require.NoError(t, err)
	defer ls.Stop()
	require.NotEmpty(t, ls.Cfg.Temporal.UIURL)
	specs, err := loadMissionDir("../testdata/missions")
	require.NoError(t, err)
	run, err := ops.StartMission(ctx, ls.Worker.Client, ls.Cfg, specs[0], "e2e", "")
	require.NoError(t, err)
	var res schemas.MissionResult
	require.NoError(t, run.Get(ctx, &res))

	out := filepath.Join(t.TempDir(), "workflows.png")
	board, err := webUIScreenshot(ctx, "", ls.Cfg.Temporal.UIURL, ls.Cfg.Temporal.Namespace, out)
	require.NoError(t, err)
	col := func(name string) string {
		for i, h := range board.Headers {
			if h == name && i < len(board.MissionRow) {
				return board.MissionRow[i]
			}
		}
		return ""
	}
	require.Equal(t, run.GetID(), col("Workflow ID"), "%q", board.MissionRow)
	require.Equal(t, res.RobotID, col(schemas.SearchAttrRobotID))
	require.Equal(t, specs[0].Site, col(schemas.SearchAttrSite))
	require.Equal(t, schemas.MissionCompleted, col(schemas.SearchAttrMissionState))
	png, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Greater(t, len(png), 10_000, "a screenshot of the list")
	require.Equal(t, "\x89PNG", string(png[:4]))
}

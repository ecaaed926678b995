package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetflow/fleetflow/workflows"
)

// A mission terminated from the CLI mid-route (`temporal workflow
// terminate`): its cleanup never runs, so the Reaper, on its Temporal
// Schedule, frees the robot (audit row lease.freed), stops the order the
// robot was still driving, and the robot takes the next mission.
func TestEndToEndTerminatedMissionIsReaped(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	cfg := e2eConfig(t)
	cfg.Sim.Speed, cfg.Sim.ActionDuration = 1, 200*time.Millisecond
	cfg.Worker.ReaperInterval = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ls, err := startLocalStack(ctx, cfg, &devFlags{temporalBin: "../bin/temporal", headless: true}, logSink())
	require.NoError(t, err)
	defer ls.Stop()
	c := ls.worker.Client
	specs, err := loadMissionDir("../testdata/missions")
	require.NoError(t, err)

	long := specs[0]
	long.MissionID = "faults-terminated"
	long.Steps = farthestSteps(t, ls)
	run, err := startMission(ctx, c, ls.cfg, long, "e2e")
	require.NoError(t, err)
	var st workflows.MissionStatus
	require.Eventually(t, func() bool {
		st, err = queryStatus(ctx, c, long.MissionID)
		return err == nil && st.State == workflows.MissionDriving && st.OrderAcknowledged
	}, time.Minute, 50*time.Millisecond, "mission never got going: %+v %v", st, err)
	robotID := st.RobotID
	require.NoError(t, c.TerminateWorkflow(ctx, run.GetID(), "", "e2e: terminated mid-route"))
	terminatedAt := time.Now()

	require.Eventually(t, func() bool {
		_, held, err := ls.worker.Store.ReservationOf(ctx, long.MissionID)
		return err == nil && !held
	}, time.Minute, 200*time.Millisecond, "the Reaper never freed the terminated mission's robot")
	t.Logf("robot %s freed %s after the terminate", robotID, time.Since(terminatedAt).Round(100*time.Millisecond))
	trail, err := ls.worker.Store.AuditTrail(ctx, long.MissionID)
	require.NoError(t, err)
	var freed bool
	for _, e := range trail {
		if e.Kind == "lease.freed" && e.Actor == "reaper" {
			freed = true
			var d map[string]any
			require.NoError(t, json.Unmarshal(e.Details, &d))
			require.Equal(t, "TERMINATED", d["workflowStatus"])
			require.Equal(t, true, d["orderCancelled"], "the robot was still driving the order")
		}
	}
	require.True(t, freed, "no lease.freed audit row: %+v", trail)
	robot := ls.fleet.Robot(strings.SplitN(robotID, "/", 2)[1])
	require.Eventually(t, func() bool {
		s := robot.Snapshot()
		return len(s.NodeStates) == 0 && !s.Driving
	}, 30*time.Second, 100*time.Millisecond, "the robot drove on with the terminated mission's order")

	next := specs[0]
	next.MissionID = "faults-after-terminate"
	next.RequiredCapabilities = nil
	run, err = startMission(ctx, c, ls.cfg, next, "e2e")
	require.NoError(t, err)
	var res workflows.MissionResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, workflows.MissionCompleted, res.State)
}

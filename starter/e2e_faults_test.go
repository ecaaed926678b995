package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/schemas"
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
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true}, logSink())
	require.NoError(t, err)
	defer ls.Stop()
	c := ls.Worker.Client
	specs, err := loadMissionDir("../testdata/missions")
	require.NoError(t, err)

	long := specs[0]
	long.MissionID = "faults-terminated"
	long.Steps = farthestSteps(t, ls)
	run, err := ops.StartMission(ctx, c, ls.Cfg, long, "e2e", "")
	require.NoError(t, err)
	var st schemas.MissionStatus
	require.Eventually(t, func() bool {
		st, err = queryStatus(ctx, c, long.MissionID)
		return err == nil && st.State == schemas.MissionDriving && st.OrderAcknowledged
	}, time.Minute, 50*time.Millisecond, "mission never got going: %+v %v", st, err)
	robotID := st.RobotID
	require.NoError(t, c.TerminateWorkflow(ctx, run.GetID(), "", "e2e: terminated mid-route"))
	terminatedAt := time.Now()

	require.Eventually(t, func() bool {
		_, held, err := ls.Worker.Store.ReservationOf(ctx, long.MissionID)
		return err == nil && !held
	}, time.Minute, 200*time.Millisecond, "the Reaper never freed the terminated mission's robot")
	t.Logf("robot %s freed %s after the terminate", robotID, time.Since(terminatedAt).Round(100*time.Millisecond))
	var freed map[string]any
	require.Eventually(t, func() bool { // the audit row follows the release
		trail, err := ls.Worker.Store.AuditTrail(ctx, long.MissionID)
		require.NoError(t, err)
		for _, e := range trail {
			if e.Kind == "lease.freed" && e.Actor == "reaper" {
				require.NoError(t, json.Unmarshal(e.Details, &freed))
				return true
			}
		}
		return false
	}, 10*time.Second, 100*time.Millisecond, "no lease.freed audit row")
	require.Equal(t, "TERMINATED", freed["workflowStatus"])
	require.Equal(t, true, freed["orderCancelled"], "the robot was still driving the order")
	robot := ls.Fleet.Robot(strings.SplitN(robotID, "/", 2)[1])
	require.Eventually(t, func() bool {
		s := robot.Snapshot()
		return len(s.NodeStates) == 0 && !s.Driving
	}, 30*time.Second, 100*time.Millisecond, "the robot drove on with the terminated mission's order")

	next := specs[0]
	next.MissionID = "faults-after-terminate"
	next.RequiredCapabilities = nil
	run, err = ops.StartMission(ctx, c, ls.Cfg, next, "e2e", "")
	require.NoError(t, err)
	var res schemas.MissionResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, schemas.MissionCompleted, res.State)
}

// A robot's connection dropped (socket closed, the broker publishes its
// last will CONNECTIONBROKEN) for less than robots.connectionGrace: the
// mission waits for it and completes. For longer: the mission gives the
// robot up and hands over to another robot, which completes it; the robot
// given up drives its base on, returns to service once it reports idle and
// takes the next mission.
func TestEndToEndConnectionDrops(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	cfg := e2eConfig(t)
	cfg.Site.MapsDir, cfg.Site.Name = "../testdata/sites-chaos", "yard" // short lanes, no speed limits
	cfg.Sim.Speed, cfg.Sim.ActionDuration = 2, 200*time.Millisecond
	cfg.Robots.ConnectionGrace = 4 * time.Second
	// The last mission queues until the given-up robot reports idle; no
	// release wakes it, so it retries on its own: sooner here.
	saved := workflows.Timings
	workflows.Timings.RequeueAfter = 3 * time.Second
	t.Cleanup(func() { workflows.Timings = saved })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true}, logSink())
	require.NoError(t, err)
	defer ls.Stop()
	c := ls.Worker.Client
	yard := func(id string) schemas.MissionSpec {
		return schemas.MissionSpec{MissionID: id, Site: "yard", TimeoutSeconds: 180, Load: &schemas.Load{LoadID: "PAL-" + id, LoadType: "EPAL"},
			Steps: []schemas.MissionStep{{Station: "in-0", Action: "pick"}, {Station: "out-0", Action: "drop"}}}
	}

	drive := func(id string, away time.Duration) (string, schemas.MissionResult, error) {
		s := yard(id)
		run, err := ops.StartMission(ctx, c, ls.Cfg, s, "e2e", "")
		require.NoError(t, err)
		var st schemas.MissionStatus
		require.Eventually(t, func() bool {
			st, err = queryStatus(ctx, c, s.MissionID)
			return err == nil && st.State == schemas.MissionDriving && st.OrderAcknowledged
		}, time.Minute, 50*time.Millisecond, "mission never got going: %+v %v", st, err)
		robot := ls.Fleet.Robot(strings.SplitN(st.RobotID, "/", 2)[1])
		robot.DropConnection()
		require.Eventually(t, func() bool {
			st, err = queryStatus(ctx, c, s.MissionID)
			return err == nil && st.ConnectionLost != ""
		}, 10*time.Second, 50*time.Millisecond, "the mission never heard of the lost connection")
		require.Equal(t, schemas.MissionDriving, st.State, "waiting within the grace, not failed")
		time.Sleep(away)
		require.NoError(t, robot.Reconnect())
		var res schemas.MissionResult
		return st.RobotID, res, run.Get(ctx, &res)
	}

	t0 := time.Now()
	_, res, err := drive("faults-blip", time.Second)
	t.Logf("blip: %s", time.Since(t0).Round(100*time.Millisecond))
	t0 = time.Now()
	require.NoError(t, err, "back within the grace")
	require.Equal(t, schemas.MissionCompleted, res.State)

	gone, res, err := drive("faults-gone", cfg.Robots.ConnectionGrace+2*time.Second)
	t.Logf("gone: %s", time.Since(t0).Round(100*time.Millisecond))
	t0 = time.Now()
	require.NoError(t, err, "handed over and completed")
	require.Equal(t, schemas.MissionCompleted, res.State)
	require.NotEqual(t, gone, res.RobotID, "another robot finished it")
	st, err := queryStatus(ctx, c, "faults-gone")
	require.NoError(t, err)
	require.Len(t, st.Handovers, 1)
	require.Equal(t, gone, st.Handovers[0].FromRobot)
	require.Contains(t, st.Handovers[0].Reason, "CONNECTIONBROKEN")
	_, held, err := ls.Worker.Store.ReservationOf(ctx, "faults-gone")
	require.NoError(t, err)
	require.False(t, held, "released")

	next := yard("faults-after-gone")
	run, err := ops.StartMission(ctx, c, ls.Cfg, next, "e2e", "")
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, &res))
	t.Logf("next: %s", time.Since(t0).Round(100*time.Millisecond))
	require.Equal(t, schemas.MissionCompleted, res.State)
}

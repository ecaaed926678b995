package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/schemas"
	"github.com/fleetflow/fleetflow/workflows"
)

// Charging on the real stack with more low-battery robots than chargers:
// three virtual robots at 25 % (threshold 30 %, resume 60 %) and the two
// chargers of warehouse-a. Three urgent missions (interruptCharging) take
// the low robots; after each, its robot goes charging: two charge, the
// third waits in line holding its robot. A fourth urgent mission finds no
// free robot and takes one off its charger. An ordinary mission waits for
// a charged robot. Sampled all along from the virtual robots' own states:
// no two robots ever charge at the same node, and robots charge only at
// chargers.
func TestEndToEndCharging(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	cfg := e2eConfig(t)
	cfg.Sim.Speed = 8
	cfg.Sim.ActionDuration = 200 * time.Millisecond
	cfg.Sim.Robots = "acme/AMR-001,acme/AMR-002,acme/AMR-003"
	cfg.Sim.Battery = 25
	cfg.Sim.ChargePerSecond = 1.5
	cfg.Charging.Threshold, cfg.Charging.Resume = 30, 60
	saved := workflows.Charging
	workflows.Charging.Poll, workflows.Charging.RequeueAfter = 300*time.Millisecond, time.Second
	defer func() { workflows.Charging = saved }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true}, io.Discard)
	require.NoError(t, err)
	defer ls.Stop()
	c := ls.Worker.Client
	reg, err := store.Open(ctx, ls.Cfg.Postgres.URL)
	require.NoError(t, err)
	defer reg.Close()

	// Watch the virtual robots: who charges where.
	chargers := map[string]bool{"CH1": true, "CH2": true}
	var mu sync.Mutex
	var violations []string
	maxCharging := 0
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			at := map[string][]string{}
			n := 0
			for _, r := range ls.Fleet.Robots() {
				st := r.Snapshot()
				if !st.BatteryState.Charging {
					continue
				}
				n++
				at[st.LastNodeID] = append(at[st.LastNodeID], r.Key().String())
			}
			mu.Lock()
			maxCharging = max(maxCharging, n)
			for node, robots := range at {
				if len(robots) > 1 || !chargers[node] {
					violations = append(violations, fmt.Sprintf("%v charging at %s", robots, node))
				}
			}
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()

	mission := func(id string, urgent bool) schemas.MissionSpec {
		return schemas.MissionSpec{MissionID: id, Site: ls.Cfg.Site.Name, Priority: 50, MinBattery: 20, InterruptCharging: urgent, TimeoutSeconds: 600,
			Steps: []schemas.MissionStep{{Station: "inbound-1", Action: "pick"}, {Station: "rack-1", Action: "drop"}}}
	}
	var runs []client.WorkflowRun
	for i := 1; i <= 3; i++ {
		run, err := ops.StartMission(ctx, c, ls.Cfg, mission(fmt.Sprintf("urgent-%d", i), true), "test", "")
		require.NoError(t, err)
		runs = append(runs, run)
	}
	for _, run := range runs {
		var res schemas.MissionResult
		require.NoError(t, run.Get(ctx, &res))
		require.Equal(t, schemas.MissionCompleted, res.State)
	}
	robots := []string{"acme/AMR-001", "acme/AMR-002", "acme/AMR-003"}
	chargeStatus := func(robot string) schemas.ChargeStatus {
		var st schemas.ChargeStatus
		if v, err := c.QueryWorkflow(ctx, schemas.ChargeWorkflowID(robot), "", schemas.QueryStatus); err == nil {
			_ = v.Get(&st)
		}
		return st
	}
	// Released below 30 %, each robot went charging: two chargers, so
	// two charge and one waits in line, holding its robot.
	// The urgent mission below interrupts the held robot with the most
	// charge (store.ChargingRobots): wait until the two on chargers have
	// more than the one waiting in line, so it takes one off a charger.
	var states map[string]string
	battery := func(robot string) float64 {
		return ls.Fleet.Robot(strings.SplitN(robot, "/", 2)[1]).Snapshot().BatteryState.BatteryCharge
	}
	require.Eventually(t, func() bool {
		now := map[string]string{}
		defer func() { states = now }() // the last full picture, for the failure message
		count := map[string]int{}
		waiting, least := "", 101.0
		for _, r := range robots {
			cs := chargeStatus(r)
			s := cs.State
			now[r] = fmt.Sprintf("%s %.1f%% %s%s", s, battery(r), cs.WaitingFor, cs.LastError)
			count[s]++
			if s == schemas.ChargeWaitingCharger {
				waiting = r
			} else {
				least = min(least, battery(r))
			}
		}
		return count[schemas.ChargeCharging] == 2 && count[schemas.ChargeWaitingCharger] == 1 && least > battery(waiting)+2
	}, 150*time.Second, 200*time.Millisecond, "charge states %v", &states)
	holds, err := reg.StationHolds(ctx, ls.Cfg.Site.Name)
	require.NoError(t, err)
	require.Len(t, holds, 2, "%+v", holds)
	require.NotEqual(t, holds[0].RobotID, holds[1].RobotID)

	// Every robot is held: an urgent mission takes one off its charger.
	runU, err := ops.StartMission(ctx, c, ls.Cfg, mission("urgent-4", true), "test", "")
	require.NoError(t, err)
	var resU schemas.MissionResult
	require.NoError(t, runU.Get(ctx, &resU))
	require.Equal(t, schemas.MissionCompleted, resU.State)
	// The charge it interrupted ends once the robot has left the charger.
	// (A robot released below the threshold gets a new Charge run of the
	// same ID: look at every closed run.)
	interrupted := ""
	seen := map[string]string{}
	require.Eventually(t, func() bool {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowType = %q AND ExecutionStatus != 'Running'", schemas.ChargeWorkflowType)})
		if err != nil {
			return false
		}
		for _, e := range resp.GetExecutions() {
			var st schemas.ChargeStatus
			err := c.GetWorkflow(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()).Get(ctx, &st)
			seen[e.GetExecution().GetRunId()] = fmt.Sprintf("%s %s interruptedBy %q %v", e.GetExecution().GetWorkflowId(), st.State, st.InterruptedBy, err)
			if err == nil && st.State == schemas.ChargeInterrupted && st.InterruptedBy == "urgent-4" {
				interrupted = st.RobotID
				return true
			}
		}
		return false
	}, 30*time.Second, 200*time.Millisecond, "no charge was interrupted for the urgent mission (it ran on %s): %v", resU.RobotID, seen)
	require.Equal(t, interrupted, resU.RobotID, "the urgent mission ran on the robot taken off charging")

	// An ordinary mission needing 55 % waits for a charged robot.
	ordinary := mission("ordinary-1", false)
	ordinary.MinBattery = 55 // the robot taken off charging has less
	runO, err := ops.StartMission(ctx, c, ls.Cfg, ordinary, "test", "")
	require.NoError(t, err)
	var resO schemas.MissionResult
	require.NoError(t, runO.Get(ctx, &resO))
	require.Equal(t, schemas.MissionCompleted, resO.State)
	require.NotEqual(t, interrupted, resO.RobotID)
	charged := false
	for _, r := range robots {
		if r == resO.RobotID {
			st := chargeStatus(r)
			if st.State == "" { // closed: read its result
				_ = c.GetWorkflow(ctx, schemas.ChargeWorkflowID(r), "").Get(ctx, &st)
			}
			charged = st.State == schemas.ChargeDone || st.State == schemas.ChargeVacating
			require.GreaterOrEqual(t, st.Battery, 60.0, "%+v", st)
		}
	}
	require.True(t, charged, "the ordinary mission's robot %s was charged first", resO.RobotID)
	// The ordinary mission drove its robot off the charger: that charger
	// went to the robot waiting in line, if one still was.
	require.Eventually(t, func() bool {
		holds, err := reg.StationHolds(ctx, ls.Cfg.Site.Name)
		if err != nil {
			return false
		}
		for _, h := range holds {
			if h.RobotID == resO.RobotID {
				return false
			}
		}
		return true
	}, 30*time.Second, 200*time.Millisecond, "the charger is freed once its robot left")

	// FLEETFLOW_RECORD_HISTORIES=DIR writes the histories the replay tests
	// in workflows/ read.
	if dir := os.Getenv("FLEETFLOW_RECORD_HISTORIES"); dir != "" {
		var st schemas.ChargeStatus
		require.NoError(t, c.GetWorkflow(ctx, schemas.ChargeWorkflowID(resO.RobotID), "").Get(ctx, &st))
		recordHistory(t, ctx, ls, schemas.ChargeWorkflowID(resO.RobotID), "", filepath.Join(dir, "charge-charged.json"))
		recordHistory(t, ctx, ls, schemas.ChargeWorkflowID(interrupted), "", filepath.Join(dir, "charge-interrupted.json"))
	}

	stopWatch()
	<-watched
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, violations)
	require.Equal(t, 2, maxCharging, "two chargers, both in use at once")
	trail, err := reg.AuditTrail(ctx, schemas.ChargeWorkflowID(interrupted))
	require.NoError(t, err)
	kinds := map[string]bool{}
	for _, e := range trail {
		kinds[e.Kind] = true
	}
	require.True(t, kinds["charge.interrupted"], "%v", kinds)
}

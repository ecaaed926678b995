package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/schemas"
)

// A maintenance from drain to sign-off on the real stack with one virtual
// robot: started while the robot runs a mission, it waits for that mission
// (DRAINING); a mission started meanwhile does not get the robot; the robot
// drives to the service station, answers the self-test, and once signed
// off returns to service and takes the waiting mission.
func TestEndToEndMaintenance(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	cfg := e2eConfig(t)
	cfg.Sim.Speed = 8
	cfg.Sim.ActionDuration = 300 * time.Millisecond
	cfg.Sim.Robots = "acme/AMR-001"
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true}, io.Discard)
	require.NoError(t, err)
	defer ls.Stop()
	c := ls.Worker.Client
	specs, err := loadMissionDir("../testdata/missions")
	require.NoError(t, err)
	first, second := specs[0], specs[1]
	first.RequiredCapabilities, second.RequiredCapabilities = nil, nil
	runA, err := ops.StartMission(ctx, c, ls.Cfg, first, "test", "")
	require.NoError(t, err)
	// Queries may fail while a workflow task is under way: the callers poll.
	status := func(id string) schemas.MissionStatus {
		var st schemas.MissionStatus
		if v, err := c.QueryWorkflow(ctx, schemas.MissionWorkflowID(id), "", schemas.QueryStatus); err == nil {
			_ = v.Get(&st)
		}
		return st
	}
	var stA schemas.MissionStatus
	require.Eventually(t, func() bool { stA = status(first.MissionID); return stA.State == schemas.MissionDriving }, time.Minute, 100*time.Millisecond)
	t.Logf("A: %+v", stA)

	id := schemas.MaintenanceWorkflowID("acme/AMR-001", "e2e")
	maint, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: ls.Cfg.TaskQueues.Maintenance}, schemas.MaintenanceWorkflowType,
		schemas.MaintenanceInput{RobotID: "acme/AMR-001", Site: ls.Cfg.Site.Name, Station: "charger-1", Reason: "brake check", Diagnostics: true, RequestedBy: "test"})
	require.NoError(t, err)
	mstatus := func() schemas.MaintenanceStatus {
		var st schemas.MaintenanceStatus
		if v, err := c.QueryWorkflow(ctx, id, "", schemas.QueryStatus); err == nil {
			_ = v.Get(&st)
		}
		return st
	}
	require.Eventually(t, func() bool { return mstatus().State == schemas.MaintDraining }, 30*time.Second, 100*time.Millisecond)
	runB, err := ops.StartMission(ctx, c, ls.Cfg, second, "test", "")
	require.NoError(t, err)

	var resA schemas.MissionResult
	require.NoError(t, runA.Get(ctx, &resA))
	require.Equal(t, schemas.MissionCompleted, resA.State, "the running mission is never interrupted")
	var m schemas.MaintenanceStatus
	require.Eventually(t, func() bool { m = mstatus(); return m.State == schemas.MaintAwaitSignOff }, 2*time.Minute, 200*time.Millisecond, "%+v", &m)
	require.Contains(t, m.Diagnostics, "FINISHED: self-test ok")
	require.Equal(t, schemas.MissionQueued, status(second.MissionID).State, "a mission does not get a robot in maintenance")
	reg, err := store.Open(ctx, ls.Cfg.Postgres.URL)
	require.NoError(t, err)
	defer reg.Close()
	v, err := reg.GetRobot(ctx, "acme/AMR-001")
	require.NoError(t, err)
	require.Equal(t, store.InMaintenance, v.ServiceStatus)
	charger, _ := ls.Site.Station("charger-1")
	require.Equal(t, charger.Node, v.State.LastNodeID, "the robot stands at the service station")

	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: schemas.UpdateComplete,
		Args: []any{schemas.SignOff{Result: schemas.SignOffPass, Notes: "pads replaced", By: "tech-7"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
	require.NoError(t, err)
	require.NoError(t, h.Get(ctx, &m))
	require.Equal(t, schemas.MaintReturned, m.State)
	var end schemas.MaintenanceStatus
	require.NoError(t, maint.Get(ctx, &end))
	v, err = reg.GetRobot(ctx, "acme/AMR-001")
	require.NoError(t, err)
	require.Equal(t, store.InService, v.ServiceStatus)

	var resB schemas.MissionResult
	require.NoError(t, runB.Get(ctx, &resB))
	require.Equal(t, schemas.MissionCompleted, resB.State)
	require.Equal(t, "acme/AMR-001", resB.RobotID)
	trail, err := reg.AuditTrail(ctx, "acme/AMR-001")
	require.NoError(t, err)
	var statuses []string
	for _, a := range trail {
		if a.Kind == "robot.service_status" {
			statuses = append(statuses, string(a.Details))
		}
	}
	require.Len(t, statuses, 3, "draining, in_maintenance, in_service: %v", statuses)

	// A maintenance schedule, made with the CLI, fires (triggered now
	// rather than waiting a day): its Maintenance runs like a started one.
	t.Setenv("FLEETFLOW_TEMPORAL_HOSTPORT", ls.Cfg.Temporal.HostPort)
	g := &globalFlags{config: filepath.Join(t.TempDir(), "absent.yaml"), output: "table"}
	sched := maintenanceScheduleCmd(g)
	sched.SilenceErrors, sched.SilenceUsage = true, true
	var out bytes.Buffer
	sched.SetOut(&out)
	sched.SetArgs([]string{"create", "acme/AMR-001", "--every", "24h", "--reason", "daily check"})
	require.NoError(t, sched.ExecuteContext(ctx), out.String())
	sched.SetArgs([]string{"create", "acme/AMR-001", "--every", "24h", "--reason", "again"})
	require.ErrorContains(t, sched.ExecuteContext(ctx), "already has a maintenance schedule")
	sh := c.ScheduleClient().GetHandle(ctx, schemas.MaintenanceScheduleID("acme/AMR-001"))
	require.NoError(t, sh.Trigger(ctx, client.ScheduleTriggerOptions{}))
	var fired string
	require.Eventually(t, func() bool {
		d, err := sh.Describe(ctx)
		if err != nil || len(d.Info.RecentActions) == 0 {
			return false
		}
		fired = d.Info.RecentActions[0].StartWorkflowResult.WorkflowID
		return true
	}, 30*time.Second, 200*time.Millisecond)
	require.True(t, strings.HasPrefix(fired, schemas.MaintenanceWorkflowID("acme/AMR-001", "scheduled")), fired)
	var fm schemas.MaintenanceStatus
	require.Eventually(t, func() bool {
		v, err := c.QueryWorkflow(ctx, fired, "", schemas.QueryStatus)
		return err == nil && v.Get(&fm) == nil && fm.State == schemas.MaintAwaitSignOff
	}, time.Minute, 200*time.Millisecond, "%+v", &fm)
	require.Equal(t, "daily check", fm.Reason)
	h2, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: fired, UpdateName: schemas.UpdateComplete,
		Args: []any{schemas.SignOff{Result: schemas.SignOffPass}}, WaitForStage: client.WorkflowUpdateStageCompleted})
	require.NoError(t, err)
	require.NoError(t, h2.Get(ctx, &fm))
	require.Equal(t, schemas.MaintReturned, fm.State)
	sched.SetArgs([]string{"delete", "acme/AMR-001"})
	require.NoError(t, sched.ExecuteContext(ctx))

	// FLEETFLOW_RECORD_HISTORIES=DIR writes the history the replay tests in
	// workflows/ read.
	if dir := os.Getenv("FLEETFLOW_RECORD_HISTORIES"); dir != "" {
		recordHistory(t, ctx, ls, id, "", filepath.Join(dir, "maintenance-signed-off.json"))
	}
}

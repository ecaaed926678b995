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
	"github.com/fleetflow/fleetflow/schemas"
)

// Condition-based maintenance on the real stack: the virtual robot reports
// a worn battery (batteryState.batteryHealth 50 %, trigger below 60 %); the
// bridge keeps it, the Reaper's sweep starts one Maintenance for the
// robot's service epoch, and only one however many sweeps pass. Signed off
// as passed, the robot starts a new epoch and is not called again for the
// battery the technician accepted; a battery that wears further is.
func TestEndToEndConditionBasedMaintenance(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	cfg := e2eConfig(t)
	cfg.Sim.Robots = "acme/AMR-001"
	cfg.Worker.ReaperInterval = time.Second
	cfg.Maintenance.Triggers.BatteryHealthBelow, cfg.Maintenance.Triggers.Errors, cfg.Maintenance.Triggers.DrivingHours = 60, 0, 0
	cfg.Maintenance.Diagnostics = true
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true}, io.Discard)
	require.NoError(t, err)
	defer ls.Stop()
	c := ls.Worker.Client
	reg, err := store.Open(ctx, ls.Cfg.Postgres.URL)
	require.NoError(t, err)
	defer reg.Close()

	robot := ls.Fleet.Robot("AMR-001")
	robot.SetBatteryHealth(50)
	id := schemas.MaintenanceWorkflowID("acme/AMR-001", "condition-e0")
	var m schemas.MaintenanceStatus
	require.Eventually(t, func() bool {
		v, err := c.QueryWorkflow(ctx, id, "", schemas.QueryStatus)
		return err == nil && v.Get(&m) == nil && m.State == schemas.MaintAwaitSignOff
	}, time.Minute, 200*time.Millisecond, "%+v", &m)
	require.Contains(t, m.Reason, "battery health 50 % below 60 %")
	require.Contains(t, m.Diagnostics, "FINISHED: self-test ok")
	time.Sleep(3 * time.Second) // three more sweeps
	trail, err := reg.AuditTrail(ctx, "acme/AMR-001")
	require.NoError(t, err)
	triggered := 0
	for _, e := range trail {
		if e.Kind == "maintenance.triggered" {
			triggered++
		}
	}
	require.Equal(t, 1, triggered, "one maintenance per epoch")

	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: schemas.UpdateComplete,
		Args: []any{schemas.SignOff{Result: schemas.SignOffPass, Notes: "battery at 50 % accepted", By: "tech-7"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
	require.NoError(t, err)
	require.NoError(t, h.Get(ctx, &m))
	require.Equal(t, schemas.MaintReturned, m.State)
	health, err := reg.RobotHealth(ctx, "acme/AMR-001")
	require.NoError(t, err)
	require.Equal(t, 1, health.Epoch, "a passed sign-off starts a new epoch")
	time.Sleep(3 * time.Second)
	_, err = c.DescribeWorkflowExecution(ctx, schemas.MaintenanceWorkflowID("acme/AMR-001", "condition-e1"), "")
	require.Error(t, err, "the accepted battery does not call the technician again")

	robot.SetBatteryHealth(45)
	next := schemas.MaintenanceWorkflowID("acme/AMR-001", "condition-e1")
	require.Eventually(t, func() bool {
		v, err := c.QueryWorkflow(ctx, next, "", schemas.QueryStatus)
		return err == nil && v.Get(&m) == nil && m.State == schemas.MaintAwaitSignOff
	}, time.Minute, 200*time.Millisecond, "a battery that wore further: %+v", &m)
	require.NoError(t, c.CancelWorkflow(ctx, next, ""))
}

// A site's maintenance schedule, made with the CLI, starts a round: the
// robots of the site in service are serviced one at a time, each by its
// own Maintenance with its sign-off; robots out of service are left out.
func TestEndToEndMaintenanceRound(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	cfg := e2eConfig(t)
	cfg.Sim.Robots = "acme/AMR-001,acme/AMR-002"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true}, io.Discard)
	require.NoError(t, err)
	defer ls.Stop()
	c := ls.Worker.Client
	reg, err := store.Open(ctx, ls.Cfg.Postgres.URL)
	require.NoError(t, err)
	defer reg.Close()
	for _, r := range []string{"acme/AMR-003", "robotix/LFT-01", "robotix/LFT-02", "robotix/LFT-03"} {
		_, err := reg.SetServiceStatus(ctx, r, store.OutOfService, "test", "not simulated")
		require.NoError(t, err)
	}

	t.Setenv("FLEETFLOW_TEMPORAL_HOSTPORT", ls.Cfg.Temporal.HostPort)
	g := &globalFlags{config: filepath.Join(t.TempDir(), "absent.yaml"), output: "table"}
	sched := maintenanceScheduleCmd(g)
	sched.SilenceErrors, sched.SilenceUsage = true, true
	var out bytes.Buffer
	sched.SetOut(&out)
	sched.SetArgs([]string{"create", "--every", "168h", "--reason", "weekly round"})
	require.ErrorContains(t, sched.ExecuteContext(ctx), "give a ROBOT_ID, or --site SITE")
	sched.SetArgs([]string{"create", "--site", ls.Cfg.Site.Name, "--every", "168h", "--reason", "weekly round"})
	require.NoError(t, sched.ExecuteContext(ctx), out.String())
	sh := c.ScheduleClient().GetHandle(ctx, schemas.MaintenanceRoundScheduleID(ls.Cfg.Site.Name))
	require.NoError(t, sh.Trigger(ctx, client.ScheduleTriggerOptions{}))
	var round string
	require.Eventually(t, func() bool {
		d, err := sh.Describe(ctx)
		if err != nil || len(d.Info.RecentActions) == 0 {
			return false
		}
		round = d.Info.RecentActions[0].StartWorkflowResult.WorkflowID
		return true
	}, 30*time.Second, 200*time.Millisecond)
	rstatus := func() schemas.MaintenanceRoundStatus {
		var st schemas.MaintenanceRoundStatus
		if v, err := c.QueryWorkflow(ctx, round, "", schemas.QueryStatus); err == nil {
			_ = v.Get(&st)
		}
		return st
	}
	for i, robot := range []string{"acme/AMR-001", "acme/AMR-002"} {
		var st schemas.MaintenanceRoundStatus
		require.Eventually(t, func() bool { st = rstatus(); return len(st.Running) == 1 && len(st.Outcomes) == i }, 30*time.Second, 200*time.Millisecond, "%+v", &st)
		require.Equal(t, []string{"acme/AMR-001", "acme/AMR-002"}, st.Robots, "robots out of service are left out")
		id := st.Running[0]
		require.Contains(t, id, strings.ReplaceAll(robot, "/", "."), "one at a time, in order")
		var m schemas.MaintenanceStatus
		require.Eventually(t, func() bool {
			v, err := c.QueryWorkflow(ctx, id, "", schemas.QueryStatus)
			return err == nil && v.Get(&m) == nil && m.State == schemas.MaintAwaitSignOff
		}, time.Minute, 200*time.Millisecond, "%+v", &m)
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: schemas.UpdateComplete,
			Args: []any{schemas.SignOff{Result: schemas.SignOffPass, By: "tech-7"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
		require.NoError(t, err)
		require.NoError(t, h.Get(ctx, &m))
	}
	var res schemas.MaintenanceRoundStatus
	require.NoError(t, c.GetWorkflow(ctx, round, "").Get(ctx, &res))
	require.Equal(t, map[string]string{"acme/AMR-001": schemas.MaintReturned, "acme/AMR-002": schemas.MaintReturned}, res.Outcomes)
	if dir := os.Getenv("FLEETFLOW_RECORD_HISTORIES"); dir != "" {
		recordHistory(t, ctx, ls, round, "", filepath.Join(dir, "maintenanceround-two-robots.json"))
	}
	sched.SetArgs([]string{"delete", "--site", ls.Cfg.Site.Name})
	require.NoError(t, sched.ExecuteContext(ctx))
}

package main

import (
	"bytes"
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/internal/thirdparty"
	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

const vda5050LibDir = "../testdata/thirdparty/vda5050-lib"

// End to end with a VDA 5050 vehicle fleetflow did not write: the npm
// package vda-5050-lib's VirtualAgvAdapter (testdata/thirdparty), on the
// real stack (dev server, Mosquitto, PostgreSQL, workers, bridge) with no
// virtual robot of ours (sim.robots: none), on testdata/sites-thirdparty/lab.yaml.
//
// It checks what a site with such vehicles needs: missions complete with
// every state of the vehicle stored (it echoes nodePositions without
// theta, which the 2.0.0 state schema requires: tolerated, counted, never
// dropped); a cancel mid-route is confirmed by the vehicle itself and its
// robot takes new work; and a vehicle fleetflow speaks to in the wrong
// dialect refuses the cancel, which fleetflow reports as not applied
// instead of done.
func TestEndToEndThirdPartyVehicle(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	if err := thirdparty.VDA5050LibInstalled(vda5050LibDir); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	cfg := e2eConfig(t)
	cfg.Site.MapsDir, cfg.Site.Name, cfg.Sim.Robots = "../testdata/sites-thirdparty", "lab", "none"
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true}, io.Discard)
	require.NoError(t, err)
	defer ls.Stop()
	c := ls.Worker.Client
	require.Empty(t, ls.Fleet.Robots(), "no virtual robot of ours")

	var agvs []thirdparty.AGV
	for _, r := range ls.Site.Robots {
		n, _ := ls.Site.Node(r.HomeNode)
		agvs = append(agvs, thirdparty.AGV{Manufacturer: r.Manufacturer, SerialNumber: r.SerialNumber, MapID: ls.Site.MapID,
			X: n.X, Y: n.Y, LastNodeID: n.ID, BatteryCharge: 90, Speed: 0.5}) // × timeLapse 4: 2 m/s, 2 s per lane
	}
	proc, err := thirdparty.StartVDA5050Lib(ctx, thirdparty.Options{BrokerURL: ls.Cfg.MQTT.URL, AGVs: agvs, Dir: vda5050LibDir, TimeLapse: 4})
	require.NoError(t, err)
	defer proc.Stop()
	require.NoError(t, localstack.WaitFleetOnline(ctx, ls.Worker.Store, ls.Site, 20*time.Second))

	const lib = "coaty/LIB-1"
	mission := func(id, capability string, steps ...string) schemas.MissionSpec {
		s := schemas.MissionSpec{MissionID: id, Site: "lab", Priority: 5, MinBattery: 10, RequiredCapabilities: []string{capability},
			Load: &schemas.Load{LoadID: "PAL-" + id, LoadType: "EPAL"}, TimeoutSeconds: 180}
		for _, st := range steps {
			action, _, _ := strings.Cut(st, "-")
			s.Steps = append(s.Steps, schemas.MissionStep{Station: st, Action: action})
		}
		return s
	}
	run := func(s schemas.MissionSpec) (client.WorkflowRun, schemas.MissionResult, error) {
		r, err := ops.StartMission(ctx, c, ls.Cfg, s, "e2e", "")
		require.NoError(t, err)
		var res schemas.MissionResult
		return r, res, r.Get(ctx, &res)
	}
	stored := func(id string) store.RobotView {
		v, err := ls.Worker.Store.GetRobot(ctx, id)
		require.NoError(t, err)
		return v
	}

	// Two missions complete, and the registry holds the vehicle's last
	// state: battery, position at the last drop, nothing left to drive.
	for i, steps := range [][]string{{"pick-U1", "drop-L3"}, {"pick-U3", "drop-L0"}} {
		_, res, err := run(mission("lib-"+string(rune('a'+i)), "lib", steps...))
		require.NoError(t, err)
		require.Equal(t, schemas.MissionCompleted, res.State)
		require.Equal(t, lib, res.RobotID)
		require.Equal(t, res.NodesTotal, res.NodesDone)
		drop, _ := ls.Site.Station(steps[1])
		n, _ := ls.Site.Node(drop.Node)
		require.Eventually(t, func() bool {
			v := stored(lib)
			return v.State.LastNodeID == n.ID && v.State.NodeStatesRemaining == 0
		}, 10*time.Second, 50*time.Millisecond)
		v := stored(lib)
		require.Greater(t, v.State.BatteryCharge, 0.0, "battery read from the vehicle's states")
		require.InDelta(t, n.X, v.State.X, 0.1, "position read from the vehicle's states")
		require.InDelta(t, n.Y, v.State.Y, 0.1)
		require.Equal(t, "2.0.0", v.State.ProtocolVersion)
		require.Empty(t, v.ReservedBy)
	}
	devs, err := ls.Worker.Store.RobotDeviations(ctx, lib)
	require.NoError(t, err)
	kinds := map[string]int64{}
	for _, d := range devs {
		kinds[d.Kind] = d.Count
	}
	require.Greater(t, kinds[vda5050.DeviationThetaMissing], int64(0), "the vehicle's nodeStates lack theta: counted (%v)", kinds)
	require.Zero(t, kinds["rejected"], "no state of the vehicle was dropped (%v)", kinds)

	// A cancel mid-route, before the pick, is confirmed by the vehicle
	// (cancelOrder FINISHED); its robot is released and takes new work from
	// where it stopped, between two nodes.
	long := mission("lib-cancel", "lib", "pick-U3", "drop-L0") // L0 → L1 → L2 → L3 → U3
	lr, err := ops.StartMission(ctx, c, ls.Cfg, long, "e2e", "")
	require.NoError(t, err)
	var st schemas.MissionStatus
	require.Eventually(t, func() bool {
		st, err = queryStatus(ctx, c, long.MissionID)
		return err == nil && st.State == schemas.MissionDriving && st.NodesDone >= 2
	}, time.Minute, 20*time.Millisecond, "mission never got going: %+v %v", st, err)
	require.Less(t, st.NodesDone, 5, "still before the pick")
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: lr.GetID(), UpdateName: schemas.UpdateCancel, Args: []any{schemas.CancelRequest{Reason: "e2e", By: "test"}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	require.NoError(t, err)
	require.NoError(t, h.Get(ctx, &st), "the vehicle confirmed the cancel")
	require.Equal(t, schemas.MissionCancelled, st.State)
	var res schemas.MissionResult
	require.NoError(t, lr.Get(ctx, &res))
	require.Equal(t, schemas.MissionCancelled, res.State)
	require.Less(t, res.NodesDone, res.NodesTotal)
	_, held, err := ls.Worker.Store.ReservationOf(ctx, long.MissionID)
	require.NoError(t, err)
	require.False(t, held, "the cancelled mission's robot is released")
	require.Eventually(t, func() bool {
		v := stored(lib)
		return v.State.NodeStatesRemaining == 0 && !v.State.Driving
	}, 10*time.Second, 50*time.Millisecond, "the vehicle dropped the rest of the order")
	v := stored(lib)
	nearest, d := ls.Site.NearestNode(v.State.X, v.State.Y)
	t.Logf("after the cancel the vehicle stands %.2f m from %s", d, nearest.ID)
	_, res, err = run(mission("lib-after-cancel", "lib", "pick-U1", "drop-L3"))
	require.NoError(t, err, "the freed robot takes new work")
	require.Equal(t, schemas.MissionCompleted, res.State)
	require.Equal(t, lib, res.RobotID)

	// The same vehicle without its profile in the map: fleetflow writes
	// instantActions as the 2.0.0 schema has them, the vehicle answers
	// with a validationError and drives on. The cancel fails with the
	// vehicle's reason, and the mission completes saying so.
	wrong := mission("unprofiled", "unprofiled", "pick-U1", "drop-L3")
	wr, err := ops.StartMission(ctx, c, ls.Cfg, wrong, "e2e", "")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, err = queryStatus(ctx, c, wrong.MissionID)
		return err == nil && st.State == schemas.MissionDriving && st.OrderAcknowledged
	}, time.Minute, 20*time.Millisecond, "mission never got going: %+v %v", st, err)
	// As an operator would: `starter mission cancel` says why and exits 1.
	t.Setenv("FLEETFLOW_TEMPORAL_HOSTPORT", ls.Cfg.Temporal.HostPort)
	cli := runMissionCLI(t, "cancel", wrong.MissionID, "--reason", "e2e")
	require.Equal(t, 1, cli.code, "a refused cancel is a failure: %v", cli.err)
	require.ErrorContains(t, cli.err, "cancel not applied")
	require.ErrorContains(t, cli.err, "validationError")
	require.NotContains(t, cli.stdout, "cancel done")
	require.NoError(t, wr.Get(ctx, &res))
	require.Equal(t, schemas.MissionCompleted, res.State)
	require.Contains(t, res.CancelNotApplied, "validationError")
	require.Contains(t, res.Reason, "cancel not applied")
	cli = runMissionCLI(t, "status", wrong.MissionID)
	require.NoError(t, cli.err)
	require.Regexp(t, `cancel not applied\s+validationError`, cli.stdout)
	n, _ := ls.Site.Node("L3")
	v = stored("coaty-unprofiled/LIB-2")
	require.InDelta(t, n.X, v.State.X, 0.1, "it drove on to the drop")
	require.Empty(t, v.ReservedBy)
	require.False(t, math.IsNaN(v.State.BatteryCharge))
}

// runMissionCLI runs `starter mission args…` as main wires it, with the
// configuration from the environment (FLEETFLOW_*).
func runMissionCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	g := &globalFlags{config: filepath.Join(t.TempDir(), "absent.yaml"), output: "table"}
	root := &cobra.Command{Use: "starter", SilenceUsage: true, SilenceErrors: true}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(missionCmd(g))
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"mission"}, args...))
	err := root.ExecuteContext(context.Background())
	return cliResult{out.String(), errOut.String(), err, exitCode(err)}
}

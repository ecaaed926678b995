package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/schemas"
)

// End to end on the real stack: the pinned Temporal dev server, the real
// MQTT broker (Mosquitto on 127.0.0.1:1883, or MQTT_URL), real PostgreSQL (a
// fresh database on 127.0.0.1:5432, or on DATABASE_URL's server), the
// workers, the bridge and virtual robots — what `make demo` runs.

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// freshDatabase creates an empty database and drops it after the test.
func freshDatabase(t *testing.T) string {
	admin := envOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("PostgreSQL is required for the end-to-end test (%s): %v — run scripts/ensure-services.sh", admin, err)
	}
	name := fmt.Sprintf("ff_e2e_%d", rand.Uint32())
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	conn.Close(ctx)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	cfg, err := pgx.ParseConfig(admin)
	require.NoError(t, err)
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
}

// e2eConfig is the end-to-end tests' stack: a dev server on free ports,
// the real broker, a fresh database, testdata's maps, artifacts and keys.
func e2eConfig(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.Temporal.DevServerPort = freePort(t)
	cfg.Temporal.DevUIPort = freePort(t)
	cfg.MQTT.URL = envOr("MQTT_URL", "tcp://127.0.0.1:1883")
	cfg.Postgres.URL = freshDatabase(t)
	cfg.Site.MapsDir = "../testdata/sites"
	cfg.Worker.HTTPAddr = "127.0.0.1:0"
	cfg.Artifacts.Dir, cfg.Artifacts.TrustedKeys, cfg.Artifacts.ServePort = "../testdata/artifacts", "../testdata/keys/trusted", 0
	return cfg
}

func TestEndToEndMissions(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	cfg := e2eConfig(t)
	cfg.Sim.Speed = 4
	cfg.Sim.ActionDuration = 300 * time.Millisecond

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true}, io.Discard)
	require.NoError(t, err)
	defer ls.Stop()
	c := ls.Worker.Client

	specs, err := loadMissionDir("../testdata/missions")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(specs), 3)

	// Several missions race for the fleet; all complete.
	runs := map[string]client.WorkflowRun{}
	for _, s := range specs {
		run, err := ops.StartMission(ctx, c, ls.Cfg, s, "e2e", "")
		require.NoError(t, err)
		runs[s.MissionID] = run
	}
	// Starting the same mission again starts nothing.
	_, err = ops.StartMission(ctx, c, ls.Cfg, specs[0], "e2e", "")
	require.Error(t, err)
	require.Contains(t, err.Error(), "already exists")

	robotsUsed := map[string]bool{}
	for id, run := range runs {
		var res schemas.MissionResult
		require.NoError(t, run.Get(ctx, &res), "mission %s", id)
		require.Equal(t, schemas.MissionCompleted, res.State, "mission %s", id)
		require.Equal(t, res.NodesTotal, res.NodesDone, "mission %s", id)
		robotsUsed[res.RobotID] = true
	}
	require.NotEmpty(t, robotsUsed)

	// The robots report their last node at the missions' last stations and
	// every reservation is released.
	views, err := ls.Worker.Store.ListRobots(ctx, ls.Site.Site)
	require.NoError(t, err)
	for _, v := range views {
		require.Empty(t, v.ReservedBy, "robot %s still reserved", v.ID)
		require.Equal(t, "ONLINE", v.State.ConnectionState, "robot %s", v.ID)
	}

	// One mission is cancelled mid-route; its robot stops and is free again.
	long := specs[0]
	long.MissionID = "e2e-cancel"
	long.Steps = farthestSteps(t, ls)
	run, err := ops.StartMission(ctx, c, ls.Cfg, long, "e2e", "")
	require.NoError(t, err)
	var st schemas.MissionStatus
	require.Eventually(t, func() bool {
		st, err = queryStatus(ctx, c, long.MissionID)
		return err == nil && st.State == schemas.MissionDriving && st.NodesDone >= 2
	}, time.Minute, 50*time.Millisecond, "mission never got going: %+v %v", st, err)
	require.Less(t, st.NodesDone, st.NodesTotal)
	update := func(name string, args ...any) (schemas.MissionStatus, error) {
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: run.GetID(), UpdateName: name, Args: args, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		require.NoError(t, err)
		var st schemas.MissionStatus
		return st, h.Get(ctx, &st)
	}
	// Paused and resumed first: each confirmed by the robot's own state.
	st, err = update(schemas.UpdatePause)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionPaused, st.State)
	require.True(t, st.Paused)
	st, err = update(schemas.UpdateResume)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionDriving, st.State)
	require.False(t, st.Paused)
	st, err = update(schemas.UpdateCancel, schemas.CancelRequest{Reason: "e2e", By: "test"})
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCancelled, st.State)
	var res schemas.MissionResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, schemas.MissionCancelled, res.State)
	require.Less(t, res.NodesDone, res.NodesTotal, "cancelled before the end of the route")

	_, held, err := ls.Worker.Store.ReservationOf(ctx, long.MissionID)
	require.NoError(t, err)
	require.False(t, held, "the cancelled mission's robot is released")
	robot := ls.Fleet.Robot(strings.SplitN(res.RobotID, "/", 2)[1])
	require.NotNil(t, robot)
	snap := robot.Snapshot()
	require.Empty(t, snap.NodeStates, "the robot dropped the rest of the order")
	require.False(t, snap.Driving)

	// The freed robot takes new work.
	again := specs[0]
	again.MissionID = "e2e-after-cancel"
	run, err = ops.StartMission(ctx, c, ls.Cfg, again, "e2e", "")
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, schemas.MissionCompleted, res.State)

	// FLEETFLOW_RECORD_HISTORIES=DIR writes the Mission histories the replay
	// tests in workflows/ read.
	if dir := os.Getenv("FLEETFLOW_RECORD_HISTORIES"); dir != "" {
		recordHistory(t, ctx, ls, schemas.MissionWorkflowID(specs[0].MissionID), "", filepath.Join(dir, "mission-completed.json"))
		recordHistory(t, ctx, ls, schemas.MissionWorkflowID(long.MissionID), "", filepath.Join(dir, "mission-paused-resumed-cancelled.json"))
	}
}

// recordHistory writes a workflow's history as `temporal workflow show -o
// json` prints it (what the replay tests read).
func recordHistory(t *testing.T, ctx context.Context, ls *localstack.Stack, wfID, runID, file string) {
	t.Helper()
	args := []string{"workflow", "show", "--address", ls.Cfg.Temporal.HostPort, "-w", wfID, "-o", "json"}
	if runID != "" {
		args = append(args, "-r", runID)
	}
	out, err := exec.CommandContext(ctx, "../bin/temporal", args...).Output()
	require.NoError(t, err, "temporal workflow show %s", wfID)
	require.NoError(t, os.WriteFile(file, out, 0o644))
}

// farthestSteps builds a pick/drop pair whose stations are far apart, so
// the robot is still driving when the test cancels.
func farthestSteps(t *testing.T, ls *localstack.Stack) []schemas.MissionStep {
	var pick, drop string
	best := -1.0
	for _, p := range ls.Site.Stations {
		if p.Type != "pick" {
			continue
		}
		pn, _ := ls.Site.Node(p.Node)
		for _, d := range ls.Site.Stations {
			if d.Type != "drop" {
				continue
			}
			dn, _ := ls.Site.Node(d.Node)
			if dist := (pn.X-dn.X)*(pn.X-dn.X) + (pn.Y-dn.Y)*(pn.Y-dn.Y); dist > best {
				best, pick, drop = dist, p.ID, d.ID
			}
		}
	}
	require.NotEmpty(t, pick)
	return []schemas.MissionStep{{Station: pick, Action: "pick"}, {Station: drop, Action: "drop"}}
}

// requireNoSecretInHistories reads the history of every workflow of the
// namespace (every run) and fails when one of secrets appears in it, in
// any event or payload: API keys, webhook secrets and passwords live in
// the workers' environment only, never in what Temporal stores.
func requireNoSecretInHistories(t *testing.T, ctx context.Context, c client.Client, secrets ...string) {
	t.Helper()
	var next []byte
	n := 0
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 100, NextPageToken: next})
		require.NoError(t, err)
		for _, e := range resp.GetExecutions() {
			it := c.GetWorkflowHistory(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				require.NoError(t, err)
				// Payloads are bytes (base64 in JSON): look in the binary
				// encoding too, where their data stands as it is.
				text, err := protojson.Marshal(ev)
				require.NoError(t, err)
				bin, err := proto.Marshal(ev)
				require.NoError(t, err)
				for _, s := range secrets {
					require.NotContains(t, string(text), s, "a secret in the history of %s", e.GetExecution().GetWorkflowId())
					require.NotContains(t, string(bin), s, "a secret in the history of %s", e.GetExecution().GetWorkflowId())
				}
			}
			n++
		}
		if next = resp.GetNextPageToken(); len(next) == 0 {
			break
		}
	}
	require.Positive(t, n, "no workflow histories to check")
}

package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/openapicheck"
	"github.com/fleetflow/fleetflow/internal/wms"
	"github.com/fleetflow/fleetflow/schemas"
	"github.com/fleetflow/fleetflow/workers/ingress"
)

// The REST ingress on the real stack, every exchange held to
// schemas/openapi.yaml: concurrent duplicate POSTs make one mission, a
// second mission queues behind the only robot and is reprioritized and
// cancelled there, the first is cancelled on the robot (which confirms),
// another client can neither read nor list them, a rejected mission starts
// nothing, and every request is in the audit log under its client.
func TestEndToEndIngress(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	const keyA, keyB = "e2e-ingress-key-of-wms-a-0123456789abcdef", "e2e-ingress-key-of-wms-b-0123456789abcdef"
	cfg := e2eConfig(t)
	cfg.Sim.Speed = 0.5 // the first mission keeps the only robot busy meanwhile
	cfg.Sim.ActionDuration = 300 * time.Millisecond
	cfg.Sim.Robots = "acme/AMR-001" // one robot: the second mission queues
	cfg.WMS.IngressAddr = "127.0.0.1:0"
	cfg.WMS.Clients = []config.WMSClient{{Name: "wms-a", APIKeyEnv: "A", APIKey: keyA}, {Name: "wms-b", APIKeyEnv: "B", APIKey: keyB}}
	require.NoError(t, cfg.Validate())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true}, io.Discard)
	require.NoError(t, err)
	defer ls.Stop()
	require.NotEmpty(t, ls.Worker.IngressAddr)
	base := "http://" + ls.Worker.IngressAddr
	chk, err := openapicheck.Load("../schemas/openapi.yaml")
	require.NoError(t, err)
	hc := &http.Client{Transport: &openapicheck.Transport{Checker: chk, Fail: t.Errorf}}
	call := func(method, path, key, body string, out any) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if out != nil {
			require.NoError(t, json.Unmarshal(raw, out), "%s %s: %s", method, path, raw)
		}
		return resp.StatusCode
	}
	spec := func(id string, priority int) string {
		return `{"missionId":"` + id + `","site":"warehouse-a","priority":` + string(rune('0'+priority)) +
			`,"load":{"loadId":"PAL-` + id + `"},"steps":[{"station":"inbound-1","action":"pick"},{"station":"rack-1","action":"drop"}]}`
	}

	// 10 concurrent POSTs of one WMS order: one 201, nine 200, one mission.
	const dup = 10
	codes := make([]int, dup)
	bodies := make([]ingress.MissionResponse, dup)
	var wg sync.WaitGroup
	for i := range dup {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = call("POST", "/v1/missions", keyA, spec("in-1", 5), &bodies[i]) }()
	}
	wg.Wait()
	created := 0
	for i := range dup {
		require.Contains(t, []int{http.StatusCreated, http.StatusOK}, codes[i])
		require.Equal(t, "in-1", bodies[i].Mission.MissionID)
		require.Equal(t, codes[i] == http.StatusCreated, bodies[i].Created)
		if bodies[i].Created {
			created++
		}
	}
	require.Equal(t, 1, created)

	// The second mission waits for the only robot.
	var resp ingress.MissionResponse
	require.Equal(t, http.StatusCreated, call("POST", "/v1/missions", keyA, spec("in-2", 1), &resp))
	var st schemas.MissionStatus
	require.Eventually(t, func() bool {
		return call("GET", "/v1/missions/in-2", keyA, "", &st) == http.StatusOK && st.State == schemas.MissionQueued
	}, time.Minute, 200*time.Millisecond)
	require.Eventually(t, func() bool {
		return call("GET", "/v1/missions/in-1", keyA, "", &st) == http.StatusOK && st.State == schemas.MissionDriving
	}, time.Minute, 200*time.Millisecond)
	require.Equal(t, "acme/AMR-001", st.RobotID)

	var e struct {
		Error      string   `json:"error"`
		Type       string   `json:"type"`
		Violations []string `json:"violations"`
	}
	// Another spec under a used ID; another client; no such mission.
	require.Equal(t, http.StatusConflict, call("POST", "/v1/missions", keyA, strings.Replace(spec("in-1", 5), "rack-1", "rack-2", 1), &e))
	require.Equal(t, schemas.ErrMissionConflict, e.Type)
	require.Equal(t, http.StatusForbidden, call("GET", "/v1/missions/in-1", keyB, "", &e))
	require.Equal(t, "forbidden", e.Error)
	require.Equal(t, http.StatusForbidden, call("POST", "/v1/missions/in-1/cancel", keyB, "", &e))
	require.Equal(t, http.StatusNotFound, call("GET", "/v1/missions/in-none", keyA, "", &e))

	// A rejected mission starts nothing.
	require.Equal(t, http.StatusBadRequest, call("POST", "/v1/missions", keyA, strings.Replace(spec("in-bad", 1), "rack-1", "rack-99", 1), &e))
	require.Contains(t, strings.Join(e.Violations, "\n"), "rack-99")
	_, err = ls.Worker.Client.DescribeWorkflowExecution(ctx, schemas.MissionWorkflowID("in-bad"), "")
	var nf *serviceerror.NotFound
	require.ErrorAs(t, err, &nf)

	// Reprioritize while queued; refused once a robot drives it.
	require.Equal(t, http.StatusOK, call("POST", "/v1/missions/in-2/reprioritize", keyA, `{"priority":90,"reason":"truck at 14:00"}`, &st))
	require.Equal(t, 90, st.Priority)
	require.Equal(t, schemas.MissionQueued, st.State)
	require.Equal(t, 1, st.QueuePosition)
	require.Equal(t, http.StatusConflict, call("POST", "/v1/missions/in-1/reprioritize", keyA, `{"priority":90}`, &e))
	require.Contains(t, e.Error, "only orders missions waiting for a robot")

	// Lists: by state, and only the client's own.
	var list ingress.MissionList
	require.Eventually(t, func() bool {
		return call("GET", "/v1/missions?state=QUEUED", keyA, "", &list) == http.StatusOK &&
			len(list.Missions) == 1 && list.Missions[0].MissionID == "in-2" && list.Missions[0].Priority == 90
	}, 30*time.Second, 300*time.Millisecond)
	require.Equal(t, http.StatusOK, call("GET", "/v1/missions", keyB, "", &list))
	require.Empty(t, list.Missions)

	// Cancel the queued one (it leaves the queue) and the driving one (the
	// robot confirms cancelOrder).
	require.Equal(t, http.StatusOK, call("POST", "/v1/missions/in-2/cancel", keyA, `{"reason":"order withdrawn"}`, &st))
	require.Equal(t, schemas.MissionCancelled, st.State)
	require.Equal(t, http.StatusOK, call("POST", "/v1/missions/in-1/cancel", keyA, "", &st))
	require.Equal(t, schemas.MissionCancelled, st.State)
	require.Eventually(t, func() bool {
		return call("GET", "/v1/missions/in-1", keyA, "", &st) == http.StatusOK && st.State == schemas.MissionCancelled
	}, 30*time.Second, 200*time.Millisecond)
	// After the end: updates are refused, the same order again is answered
	// from the ended mission.
	var wfDone bool
	require.Eventually(t, func() bool {
		d, err := ls.Worker.Client.DescribeWorkflowExecution(ctx, schemas.MissionWorkflowID("in-1"), "")
		wfDone = err == nil && d.GetWorkflowExecutionInfo().GetCloseTime() != nil
		return wfDone
	}, 30*time.Second, 200*time.Millisecond)
	require.Equal(t, http.StatusConflict, call("POST", "/v1/missions/in-1/pause", keyA, "", &e))
	require.Contains(t, e.Error, "has ended")
	require.Equal(t, http.StatusOK, call("POST", "/v1/missions", keyA, spec("in-1", 5), &resp))
	require.False(t, resp.Created)
	require.Equal(t, schemas.MissionCancelled, resp.Mission.State)

	// Every request is audited under its client, on the mission's trail.
	st2, err := store.Open(ctx, cfg.Postgres.URL)
	require.NoError(t, err)
	defer st2.Close()
	trail, err := st2.AuditTrail(ctx, schemas.MissionWorkflowID("in-1"))
	require.NoError(t, err)
	actors := map[string]int{}
	for _, a := range trail {
		if a.Kind == ingress.AuditKind {
			actors[a.Actor]++
		}
	}
	require.GreaterOrEqual(t, actors["wms-a"], dup+5)
	require.Equal(t, 2, actors["wms-b"], "the refused read and cancel of another client")
	var cancelled bool
	for _, a := range trail {
		cancelled = cancelled || (a.Kind == "mission.cancelled" && a.Actor == "wms:wms-a")
	}
	require.True(t, cancelled, "the cancel is audited with the client as its actor: %v", trail)
	requireNoSecretInHistories(t, ctx, ls.Worker.Client, keyA, keyB)
}

// Steps that wait for the warehouse and steps appended mid-route, on the
// real stack with virtual robots: the robot waits at the conveyor for
// loadReady (a signal for another load is ignored) and picks once the WMS
// signals it over REST; a mission given two more steps while driving ends
// at the appended station; a loadReady sent with the start
// (signal-with-start) lets the robot drive through without waiting.
func TestEndToEndWMSSignalsAndAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	const key = "e2e-signals-key-of-wms-a-0123456789abcdef"
	cfg := e2eConfig(t)
	cfg.Sim.Speed = 8
	cfg.Sim.ActionDuration = 300 * time.Millisecond
	cfg.WMS.IngressAddr = "127.0.0.1:0"
	cfg.WMS.Clients = []config.WMSClient{{Name: "wms-a", APIKeyEnv: "A", APIKey: key}}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true}, io.Discard)
	require.NoError(t, err)
	defer ls.Stop()
	base := "http://" + ls.Worker.IngressAddr
	chk, err := openapicheck.Load("../schemas/openapi.yaml")
	require.NoError(t, err)
	hc := &http.Client{Transport: &openapicheck.Transport{Checker: chk, Fail: t.Errorf}}
	call := func(method, path, body string, out any) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if out != nil {
			require.NoError(t, json.Unmarshal(raw, out), "%s %s: %s", method, path, raw)
		}
		return resp.StatusCode
	}
	t0 := time.Now()
	waitState := func(id, state string, st *schemas.MissionStatus) {
		t.Helper()
		defer func() { t.Logf("%6.1fs mission %s %s", time.Since(t0).Seconds(), id, st.State) }()
		require.Eventually(t, func() bool {
			return call("GET", "/v1/missions/"+id, "", st) == http.StatusOK && st.State == state
		}, 2*time.Minute, 200*time.Millisecond, "mission %s never %s (last %+v)", id, state, st)
	}

	// loadReady at the conveyor, signalled over REST.
	var st schemas.MissionStatus
	require.Equal(t, http.StatusCreated, call("POST", "/v1/missions", `{"missionId":"w-1","site":"warehouse-a","load":{"loadId":"PAL-W1"},
		"steps":[{"station":"inbound-1","action":"pick","waitFor":{"signal":"loadReady","timeoutSeconds":120}},{"station":"rack-1","action":"drop"}]}`, nil))
	waitState("w-1", schemas.MissionAwaitingWMS, &st)
	require.Contains(t, st.WaitingFor, "loadReady for step 1 (inbound-1)")
	robot := st.RobotID
	var sr ingress.SignalResponse
	require.Equal(t, http.StatusAccepted, call("POST", "/v1/missions/w-1/signals/loadReady", `{"loadId":"PAL-OTHER"}`, &sr))
	require.Eventually(t, func() bool {
		return call("GET", "/v1/missions/w-1", "", &st) == http.StatusOK && len(st.IgnoredSignals) == 1
	}, 30*time.Second, 200*time.Millisecond)
	require.Equal(t, schemas.MissionAwaitingWMS, st.State, "a signal for another load does not release the robot")
	require.Equal(t, http.StatusBadRequest, call("POST", "/v1/missions/w-1/signals/loadReady", `{"loadID":"x"}`, nil))
	require.Equal(t, http.StatusNotFound, call("POST", "/v1/missions/w-1/signals/loadLost", `{}`, nil))
	require.Equal(t, http.StatusAccepted, call("POST", "/v1/missions/w-1/signals/loadReady", `{"loadId":"PAL-W1","by":"conveyor-7"}`, &sr))
	waitState("w-1", schemas.MissionCompleted, &st)
	require.Equal(t, 1, st.OrderUpdates)
	require.Equal(t, st.NodesTotal, st.NodesDone)
	require.Len(t, st.Signals, 1)
	require.Contains(t, st.Signals[0], "wms:wms-a")
	require.Equal(t, robot, st.RobotID)

	// Append while driving: the robot ends at the appended station.
	require.Equal(t, http.StatusCreated, call("POST", "/v1/missions", `{"missionId":"w-2","site":"warehouse-a",
		"steps":[{"station":"inbound-2","action":"pick"},{"station":"rack-2","action":"drop"}]}`, nil))
	waitState("w-2", schemas.MissionDriving, &st)
	before := st.NodesTotal
	require.Equal(t, http.StatusOK, call("POST", "/v1/missions/w-2/append", `{"steps":[{"station":"inbound-1","action":"pick"},{"station":"rack-1","action":"drop"}],"reason":"second pallet"}`, &st))
	require.Equal(t, 1, st.OrderUpdates)
	require.Greater(t, st.NodesTotal, before)
	var e struct{ Error, Type string }
	require.Equal(t, http.StatusBadRequest, call("POST", "/v1/missions/w-2/append", `{"steps":[{"station":"inbound-1","action":"fly"}]}`, &e))
	require.Equal(t, http.StatusConflict, call("POST", "/v1/missions/w-2/append", `{"steps":[{"station":"no-such-rack","action":"drop"}]}`, &e))
	require.Equal(t, schemas.ErrInvalidMission, e.Type)
	waitState("w-2", schemas.MissionCompleted, &st)
	rack1, _ := ls.Site.Station("rack-1")
	require.Equal(t, rack1.Node, st.CurrentNode, "the robot drove the appended steps")
	require.Equal(t, st.NodesTotal, st.NodesDone)

	// Signal-with-start: the load is ready before the mission starts.
	spec, err := schemas.ParseMission([]byte(`{"missionId":"w-3","site":"warehouse-a","load":{"loadId":"PAL-W3"},
		"steps":[{"station":"inbound-2","action":"pick","waitFor":{"signal":"loadReady","timeoutSeconds":60}},{"station":"rack-3","action":"drop"}]}`))
	require.NoError(t, err)
	_, err = ls.Worker.Client.SignalWithStartWorkflow(ctx, schemas.MissionWorkflowID("w-3"), schemas.SignalLoadReady,
		schemas.LoadSignal{LoadID: "PAL-W3", By: "wms-a"}, wms.StartOptions(cfg.TaskQueues.Missions, spec, "wms-a", 0),
		schemas.MissionWorkflowType, schemas.MissionInput{Spec: spec, Client: "wms-a"})
	require.NoError(t, err)
	seen := map[string]bool{}
	require.Eventually(t, func() bool {
		if call("GET", "/v1/missions/w-3", "", &st) != http.StatusOK {
			return false
		}
		seen[st.State] = true
		return st.State == schemas.MissionCompleted
	}, 2*time.Minute, 100*time.Millisecond)
	require.False(t, seen[schemas.MissionAwaitingWMS], "the robot never waited: %v", seen)
	require.Len(t, st.Signals, 1)

	// FLEETFLOW_RECORD_HISTORIES=DIR writes the Mission histories the replay
	// tests in workflows/ read: a wait for loadReady, and steps appended.
	if dir := os.Getenv("FLEETFLOW_RECORD_HISTORIES"); dir != "" {
		recordHistory(t, ctx, ls, schemas.MissionWorkflowID("w-1"), "", filepath.Join(dir, "mission-load-ready.json"))
		recordHistory(t, ctx, ls, schemas.MissionWorkflowID("w-2"), "", filepath.Join(dir, "mission-appended.json"))
	}
}

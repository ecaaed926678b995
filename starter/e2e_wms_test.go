package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/internal/wms"
	"github.com/fleetflow/fleetflow/schemas"
)

// A mission started for a WMS client reports every step to the client's
// webhook on the real stack: the receiver (`starter wms listen`'s handler,
// which verifies each Standard Webhooks signature) is down for its first
// 6 s, the events are retried and arrive complete and in order, every
// attempt is in wms_deliveries, and the deliveries workflow ends.
func TestEndToEndWMSWebhooks(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("e2e-webhook-secret-of-32-bytes!!"))
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	var mu sync.Mutex
	var got []receivedEvent
	var refused []string
	rc := &webhookReceiver{wh: wh, failTill: time.Now().Add(6 * time.Second), seen: map[string]bool{},
		out:    func(e receivedEvent) { mu.Lock(); got = append(got, e); mu.Unlock() },
		reject: func(status int, why string) { mu.Lock(); refused = append(refused, why); mu.Unlock() },
	}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	cfg := e2eConfig(t)
	cfg.Sim.Speed = 4
	cfg.Sim.ActionDuration = 300 * time.Millisecond
	cfg.WMS.Clients = []config.WMSClient{{Name: "test-wms", WebhookURL: srv.URL, SecretEnv: "E2E_SECRET", Secret: secret}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true}, io.Discard)
	require.NoError(t, err)
	defer ls.Stop()
	c := ls.Worker.Client

	specs, err := loadMissionDir("../testdata/missions")
	require.NoError(t, err)
	spec := specs[0]
	_, err = ops.StartMission(ctx, c, ls.Cfg, spec, "test-wms", "no-such-client")
	require.ErrorContains(t, err, `no WMS client "no-such-client"`)

	// 20 concurrent submissions of one WMS order (a WMS retrying): one
	// workflow, one of them created it, all got its status and run.
	const dup = 20
	subs := make([]wms.Submission, dup)
	errs := make([]error, dup)
	var wg sync.WaitGroup
	for i := range dup {
		wg.Add(1)
		go func() {
			defer wg.Done()
			subs[i], errs[i] = wms.SubmitMission(ctx, c, nil, ls.Cfg.TaskQueues.Missions, spec, "test-wms", "test-wms")
		}()
	}
	wg.Wait()
	created := 0
	for i := range dup {
		require.NoError(t, errs[i])
		require.Equal(t, subs[0].RunID, subs[i].RunID, "one workflow run")
		require.Equal(t, spec.MissionID, subs[i].Status.MissionID)
		if subs[i].Created {
			created++
		}
	}
	require.Equal(t, 1, created, "exactly one submission started the mission")
	runs, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = %q", schemas.MissionWorkflowID(spec.MissionID))})
	require.NoError(t, err)
	require.Len(t, runs.Executions, 1)
	other := spec
	other.Steps = append([]schemas.MissionStep(nil), spec.Steps...)
	other.Steps[0].Station = spec.Steps[len(spec.Steps)-1].Station
	_, err = wms.SubmitMission(ctx, c, nil, ls.Cfg.TaskQueues.Missions, other, "test-wms", "test-wms")
	require.ErrorIs(t, err, wms.ErrConflict)

	run := c.GetWorkflow(ctx, subs[0].WorkflowID, subs[0].RunID)
	var res schemas.MissionResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, schemas.MissionCompleted, res.State)
	// After the end: the same order again is answered from the ended
	// mission; another spec under its ID is still a conflict.
	again, err := wms.SubmitMission(ctx, c, nil, ls.Cfg.TaskQueues.Missions, spec, "test-wms", "test-wms")
	require.NoError(t, err)
	require.False(t, again.Created)
	require.Equal(t, schemas.MissionCompleted, again.Status.State)
	require.Equal(t, subs[0].RunID, again.RunID)
	_, err = wms.SubmitMission(ctx, c, nil, ls.Cfg.TaskQueues.Missions, other, "test-wms", "test-wms")
	require.ErrorIs(t, err, wms.ErrConflict)

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1].Type == "dev.fleetflow.mission.completed"
	}, 90*time.Second, 200*time.Millisecond, "the completed event never arrived")
	mu.Lock()
	events := append([]receivedEvent(nil), got...)
	mu.Unlock()

	var kinds []string
	for i, e := range events {
		require.Equal(t, i+1, e.Data.Sequence, "events arrive in order, none missing: %+v", events)
		require.Equal(t, spec.MissionID, e.Subject)
		require.False(t, e.Duplicate)
		kinds = append(kinds, e.Type[len("dev.fleetflow.mission."):])
	}
	want := []string{"assigned"}
	for _, st := range spec.Steps {
		want = append(want, map[string]string{"pick": "picked", "drop": "delivered"}[st.Action])
	}
	want = append(want, "completed")
	require.Equal(t, want, kinds)
	require.Equal(t, res.RobotID, events[len(events)-1].Data.RobotID)
	require.NotEmpty(t, refused, "the receiver was down at first")

	st, err := store.Open(ctx, ls.Cfg.Postgres.URL)
	require.NoError(t, err)
	defer st.Close()
	ds, err := st.Deliveries(ctx, spec.MissionID)
	require.NoError(t, err)
	delivered, retried := 0, 0
	for _, d := range ds {
		switch d.Outcome {
		case store.DeliveryDelivered:
			delivered++
		case store.DeliveryRetrying:
			retried++
			require.Equal(t, 503, d.HTTPStatus)
		}
	}
	require.Equal(t, len(want), delivered, "one delivered row per event: %+v", ds)
	require.Positive(t, retried, "the first event was retried while the receiver was down")

	// The deliveries workflow ended after the terminal event.
	id := schemas.MissionWorkflowID(spec.MissionID) + "-wms-events-" + run.GetRunID()
	var wr schemas.WMSEventsResult
	require.NoError(t, c.GetWorkflow(ctx, id, "").Get(ctx, &wr))
	require.Equal(t, len(want), wr.Delivered)
	require.Empty(t, wr.GaveUp)
	// The signing secret stays in the workers' environment.
	requireNoSecretInHistories(t, ctx, c, secret, secret[len("whsec_"):], "e2e-webhook-secret-of-32-bytes!!")

	// FLEETFLOW_RECORD_HISTORIES=DIR writes the histories the replay tests
	// in workflows/ read: the mission that sent events, and its deliveries.
	if dir := os.Getenv("FLEETFLOW_RECORD_HISTORIES"); dir != "" {
		recordHistory(t, ctx, ls, run.GetID(), run.GetRunID(), filepath.Join(dir, "mission-wms-events.json"))
		recordHistory(t, ctx, ls, id, "", filepath.Join(dir, "wmsevents-receiver-down.json"))
	}
}

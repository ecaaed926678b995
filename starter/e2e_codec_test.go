package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"github.com/fleetflow/fleetflow/internal/codec"
	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/internal/wms"
	"github.com/fleetflow/fleetflow/schemas"
)

// With a payload key, a mission runs as before on the real stack, but the
// Temporal service stores ciphertext: read without the key, the history's
// input holds no trace of the spec; the workers' codec server (what the
// Web UI asks) decrypts it.
func TestEndToEndEncryptedPayloads(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	cfg := e2eConfig(t)
	cfg.Sim.Speed = 8
	cfg.Sim.ActionDuration = 200 * time.Millisecond
	cfg.Sim.Robots = "acme/AMR-001"
	key, err := codec.NewKey()
	require.NoError(t, err)
	cfg.Temporal.PayloadKey = key
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ls, err := localstack.Start(ctx, cfg, localstack.Options{TemporalBin: "../bin/temporal", Headless: true}, io.Discard)
	require.NoError(t, err)
	defer ls.Stop()
	specs, err := loadMissionDir("../testdata/missions")
	require.NoError(t, err)
	spec := specs[0]
	spec.RequiredCapabilities = nil
	spec.MissionID = "enc-secret-mission-7"
	run, err := ops.StartMission(ctx, ls.Worker.Client, ls.Cfg, spec, "test", "")
	require.NoError(t, err)
	var res schemas.MissionResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, schemas.MissionCompleted, res.State)

	// The WMS sends the ended mission again (a retry): its input is read
	// from the encrypted history with the workers' data converter, so the
	// same spec is the same mission and another spec a conflict.
	k, err := codec.ParseKey(key)
	require.NoError(t, err)
	aes, err := codec.New(k)
	require.NoError(t, err)
	again, err := wms.StartMission(ctx, ls.Worker.Client, aes.DataConverter(), ls.Cfg.TaskQueues.Missions, spec, "", "test")
	require.NoError(t, err)
	require.False(t, again.Created)
	require.Equal(t, schemas.MissionCompleted, again.Status.State)
	other := spec
	other.MinBattery++ // priority is not part of a mission's identity (reprioritize)
	_, err = wms.StartMission(ctx, ls.Worker.Client, aes.DataConverter(), ls.Cfg.TaskQueues.Missions, other, "", "test")
	require.ErrorIs(t, err, wms.ErrConflict)

	// A client without the key sees only ciphertext.
	plain, err := client.Dial(client.Options{HostPort: ls.Cfg.Temporal.HostPort, Logger: quietLogger()})
	require.NoError(t, err)
	defer plain.Close()
	it := plain.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	first, err := it.Next()
	require.NoError(t, err)
	input := first.GetWorkflowExecutionStartedEventAttributes().GetInput()
	require.NotEmpty(t, input.GetPayloads())
	p := input.GetPayloads()[0]
	require.Equal(t, codec.EncodingEncrypted, string(p.GetMetadata()[codec.MetadataEncoding]))
	n, spotted := 0, false
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		raw, _ := proto.Marshal(ev)
		spotted = spotted || bytes.Contains(raw, []byte("inbound-1")) // a station of the spec
		n++
	}
	require.Positive(t, n)
	require.False(t, spotted, "the spec's stations are readable in the history")

	// The codec server decrypts for the Web UI (and answers its preflight).
	body, err := json.Marshal(map[string]any{"payloads": []any{map[string]any{
		"metadata": map[string]string{"encoding": "YmluYXJ5L2VuY3J5cHRlZA==", "encryption-key-id": b64(p.GetMetadata()[codec.MetadataKeyID])},
		"data":     b64(p.GetData()),
	}}})
	require.NoError(t, err)
	resp, err := http.Post("http://"+ls.Worker.HTTPAddr+"/codec/decode", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	var decoded struct {
		Payloads []struct {
			Data []byte `json:"data"`
		} `json:"payloads"`
	}
	require.NoError(t, json.Unmarshal(out, &decoded))
	require.Len(t, decoded.Payloads, 1)
	require.True(t, strings.Contains(string(decoded.Payloads[0].Data), "enc-secret-mission-7"), "decoded: %s", decoded.Payloads[0].Data)
	req, _ := http.NewRequest(http.MethodOptions, "http://"+ls.Worker.HTTPAddr+"/codec/decode", nil)
	req.Header.Set("Origin", strings.TrimRight(ls.Cfg.Temporal.UIURL, "/"))
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, strings.TrimRight(ls.Cfg.Temporal.UIURL, "/"), resp.Header.Get("Access-Control-Allow-Origin"))
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

package ingress

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/fleetflow/fleetflow/internal/openapicheck"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/schemas"
)

// auditLog records audit rows (the e2e test checks the real registry).
type auditLog struct {
	mu   sync.Mutex
	rows []auditRow
}

type auditRow struct {
	actor, kind, subject string
	details              map[string]any
}

func (a *auditLog) Audit(_ context.Context, actor, kind, subject string, details any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rows = append(a.rows, auditRow{actor, kind, subject, details.(map[string]any)})
	return nil
}

const (
	keyA = "key-of-client-a-0123456789abcdef0123456789"
	keyB = "key-of-client-b-0123456789abcdef0123456789"
)

type fixture struct {
	srv   *httptest.Server
	http  *http.Client
	audit *auditLog
}

// newFixture serves the ingress without Temporal: every case here is
// answered before a workflow is touched (the e2e test covers the rest on
// the real stack). Every exchange is checked against schemas/openapi.yaml.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	maps, err := site.LoadDir("../../testdata/sites")
	require.NoError(t, err)
	audit := &auditLog{}
	h, err := New(Options{TaskQueue: "missions", Clients: []Client{{Name: "wms-a", APIKey: keyA}, {Name: "wms-b", APIKey: keyB}},
		Sites: maps, Audit: audit, MaxBody: 4096})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	chk, err := openapicheck.Load("../../schemas/openapi.yaml")
	require.NoError(t, err)
	return &fixture{srv: srv, audit: audit, http: &http.Client{Transport: &openapicheck.Transport{Checker: chk, Fail: t.Errorf}}}
}

func (f *fixture) do(t *testing.T, method, path, key, body string, hdr ...string) (int, http.Header, errorBody) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := f.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e errorBody
	if resp.StatusCode >= 400 {
		require.NoError(t, json.Unmarshal(raw, &e), "%s", raw)
	}
	return resp.StatusCode, resp.Header, e
}

func TestNewRefusesNoClients(t *testing.T) {
	_, err := New(Options{Audit: &auditLog{}})
	require.ErrorContains(t, err, "no WMS client has an API key")
}

// No key, a malformed header, an unknown key, and a key that differs from
// a real one only in its last character: 401 with nothing more said, and
// no audit row (anyone could fill the registry with them).
func TestUnauthorized(t *testing.T) {
	f := newFixture(t)
	for _, key := range []string{"", "nope", keyA[:len(keyA)-1] + "X", "Basic " + keyA} {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/v1/missions/m-1", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		if strings.HasPrefix(key, "Basic ") {
			req.Header.Set("Authorization", key)
		}
		resp, err := f.http.Do(req)
		require.NoError(t, err)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, key)
		require.JSONEq(t, `{"error":"unauthorized"}`, string(raw))
		require.Equal(t, `Bearer realm="fleetflow"`, resp.Header.Get("WWW-Authenticate"))
	}
	require.Empty(t, f.audit.rows, "requests without a valid key are logged, never written to the registry")
}

// A body that breaks mission.schema.json gets 400 with every violation and
// its JSON path; one that fits the schema but not the site map gets the
// map's problems; nothing reaches Temporal (there is none here).
func TestBadMissionBodies(t *testing.T) {
	f := newFixture(t)
	code, _, e := f.do(t, "POST", "/v1/missions", keyA, `{"missionId":"m 1","site":"warehouse-a","steps":[{"station":"inbound-1","action":"fly"}],"extra":1}`)
	require.Equal(t, http.StatusBadRequest, code)
	joined := strings.Join(e.Violations, "\n")
	for _, want := range []string{"/missionId", "/steps/0/action", "extra"} {
		require.Contains(t, joined, want)
	}
	code, _, e = f.do(t, "POST", "/v1/missions", keyA, `not json`)
	require.Equal(t, http.StatusBadRequest, code)
	require.NotEmpty(t, e.Error)

	code, _, e = f.do(t, "POST", "/v1/missions", keyA, `{"missionId":"m-1","site":"warehouse-a","steps":[{"station":"no-such-station","action":"pick"}]}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, strings.Join(e.Violations, "\n"), "no-such-station")
	code, _, e = f.do(t, "POST", "/v1/missions", keyA, `{"missionId":"m-1","site":"mars","steps":[{"station":"inbound-1","action":"pick"}]}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, e.Violations[0], `no site map "mars"`)

	// Idempotency-Key must name the mission it is for.
	code, _, e = f.do(t, "POST", "/v1/missions", keyA, `{"missionId":"m-1","site":"warehouse-a","steps":[{"station":"inbound-1","action":"pick"}]}`, "Idempotency-Key", "m-2")
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, e.Error, `differs from missionId`)
	code, _, _ = f.do(t, "POST", "/v1/missions", keyA, `{}`, "Idempotency-Key", "bad key!")
	require.Equal(t, http.StatusBadRequest, code)

	big := `{"missionId":"m-1","site":"warehouse-a","requestedBy":"` + strings.Repeat("x", 5000) + `","steps":[]}`
	code, _, e = f.do(t, "POST", "/v1/missions", keyA, big)
	require.Equal(t, http.StatusRequestEntityTooLarge, code)
	require.Contains(t, e.Error, "over 4096 bytes")

	for _, r := range f.audit.rows {
		require.Equal(t, "wms-a", r.actor)
	}
}

func TestBadQueriesAndUpdates(t *testing.T) {
	f := newFixture(t)
	code, _, e := f.do(t, "GET", "/v1/missions?state=FLYING", keyA, "")
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, e.Error, "QUEUED")
	code, _, _ = f.do(t, "GET", "/v1/missions?limit=0", keyA, "")
	require.Equal(t, http.StatusBadRequest, code)
	code, _, _ = f.do(t, "GET", "/v1/missions?pageToken=@@@", keyA, "")
	require.Equal(t, http.StatusBadRequest, code)

	code, _, e = f.do(t, "POST", "/v1/missions/m-1/teleport", keyA, "")
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, e.Error, `no action "teleport"`)
	code, _, e = f.do(t, "POST", "/v1/missions/m-1/reprioritize", keyA, `{"priority":101}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, strings.Join(e.Violations, "\n"), "/priority")
	code, _, _ = f.do(t, "POST", "/v1/missions/m-1/reprioritize", keyA, "")
	require.Equal(t, http.StatusBadRequest, code)
	// A stray bracket after the value is not JSON (it passed once as priority 0).
	code, _, e = f.do(t, "POST", "/v1/missions/m-1/reprioritize", keyA, `{"priority":90}}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, strings.Join(e.Violations, "\n"), "not JSON")
	// 1e2 is an integer to the schema but not to Go's int: refused, not sent as priority 0.
	code, _, e = f.do(t, "POST", "/v1/missions/m-1/reprioritize", keyA, `{"priority":1e2}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, e.Error, "invalid reprioritize request")
	code, _, e = f.do(t, "POST", "/v1/missions/m-1/cancel", keyA, `{"reason":"x","by":"someone else","extra":true}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, strings.Join(e.Violations, "\n"), "extra")
	code, _, _ = f.do(t, "POST", "/v1/missions/m-1/pause", keyA, `{"x":1}`)
	require.Equal(t, http.StatusBadRequest, code)
	code, _, _ = f.do(t, "GET", "/v1/missions/bad%20id", keyA, "")
	require.Equal(t, http.StatusBadRequest, code)
}

// The actor of an update is the authenticated client, whatever the body
// says.
func TestUpdateArgActorIsTheClient(t *testing.T) {
	arg, bad := updateArg("cancel", []byte(`{"reason":"aisle blocked","by":"mallory"}`), "wms:wms-a")
	require.Nil(t, bad)
	require.Equal(t, schemas.CancelRequest{Reason: "aisle blocked", By: "wms:wms-a"}, arg)
	arg, bad = updateArg("reprioritize", []byte(`{"priority":7,"by":"mallory"}`), "wms:wms-a")
	require.Nil(t, bad)
	require.Equal(t, schemas.ReprioritizeRequest{Priority: 7, By: "wms:wms-a"}, arg)
}

// How a failed Temporal call is answered: an update still running at the
// client's deadline (the SDK's update timeout wraps the server's
// DeadlineExceeded, not context's) is 504, as openapi.yaml says, not 502.
func TestTemporalErrorStatus(t *testing.T) {
	s, err := New(Options{TaskQueue: "missions", Clients: []Client{{Name: "wms-a", APIKey: keyA}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	for _, c := range []struct {
		err  error
		want int
	}{
		{client.NewWorkflowUpdateServiceTimeoutOrCanceledError(serviceerror.NewDeadlineExceeded("context deadline exceeded")), http.StatusGatewayTimeout},
		{fmt.Errorf("update: %w", serviceerror.NewDeadlineExceeded("deadline")), http.StatusGatewayTimeout},
		{context.DeadlineExceeded, http.StatusGatewayTimeout},
		{serviceerror.NewNotFound("workflow not found"), http.StatusNotFound},
		{temporal.NewApplicationError("already ended", schemas.ErrRobotRefused), http.StatusConflict},
		{serviceerror.NewUnavailable("connection refused"), http.StatusBadGateway},
	} {
		rec := httptest.NewRecorder()
		s.temporalError(rec, "cancel mission m-1", c.err)
		require.Equal(t, c.want, rec.Code, "%v", c.err)
	}
}

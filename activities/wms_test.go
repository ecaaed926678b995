package activities

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/schemas"
)

var testSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("fleetflow-test-secret-32-bytes!!"))

type capturedRequest struct {
	header http.Header
	body   []byte
}

func sampleEvent() schemas.WMSEvent {
	step := 1
	return schemas.WMSEvent{
		ID: "mission-m-1/run-1/3", Kind: schemas.WMSEventDelivered, Time: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC),
		Data: schemas.WMSEventData{MissionID: "m-1", Site: "warehouse-a", Sequence: 3, State: "DRIVING", RobotID: "acme/1",
			Step: &step, Station: "dock-1", Action: "drop", LoadID: "pallet-7"},
	}
}

// verifyIndependently runs testdata/wms/verify_webhook.py, written from the
// Standard Webhooks and CloudEvents specifications with Python's standard
// library: it returns the event type or the script's reason.
func verifyIndependently(t *testing.T, secret string, h http.Header, body []byte) (string, error) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed for the independent webhook check (Debian: apt-get install python3)")
	}
	headers := map[string]string{}
	for k := range h {
		headers[k] = h.Get(k)
	}
	in, _ := json.Marshal(map[string]any{"secret": secret, "headers": headers, "body": string(body)})
	cmd := exec.Command(py, "../testdata/wms/verify_webhook.py")
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", errors.New(strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

func TestDeliverWebhookSignedCloudEvent(t *testing.T) {
	var mu sync.Mutex
	var got []capturedRequest
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, capturedRequest{r.Header.Clone(), b})
		st := status
		mu.Unlock()
		w.WriteHeader(st)
	}))
	defer srv.Close()
	st := freshStore(t)
	wc, err := NewWebhookClient(srv.URL, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	a := &Activities{Store: st, Webhooks: map[string]WebhookClient{"acme": wc}}
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	in := schemas.DeliverWebhookInput{Client: "acme", Event: sampleEvent()}
	if _, err := env.ExecuteActivity(a.DeliverWebhook, in); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d requests", len(got))
	}
	req := got[0]
	typ, err := verifyIndependently(t, testSecret, req.header, req.body)
	if err != nil || typ != "dev.fleetflow.mission.delivered" {
		t.Fatalf("independent check: %q %v", typ, err)
	}
	if err := mustWebhook(t).Verify(req.body, req.header); err != nil {
		t.Fatalf("Standard Webhooks library: %v", err)
	}
	// The body is a CloudEvent whose data follows wms-event.schema.json.
	var ce struct {
		SpecVersion, ID, Source, Type, Subject, Time, DataContentType string
		Data                                                          json.RawMessage
	}
	if err := json.Unmarshal(req.body, &ce); err != nil || ce.Subject != "m-1" || ce.Source != "/fleetflow/sites/warehouse-a" || ce.Time != "2026-12-03T10:00:00Z" {
		t.Fatalf("cloudevent %s: %v", req.body, err)
	}
	sch, err := schemas.CompiledWMSEventSchema()
	if err != nil {
		t.Fatal(err)
	}
	var data any
	json.Unmarshal(ce.Data, &data)
	if err := sch.Validate(data); err != nil {
		t.Fatalf("data breaks wms-event.schema.json: %v", err)
	}

	// Tampered body, another secret, a stale timestamp: all refused by the
	// independent receiver.
	tampered := bytes.Replace(req.body, []byte("pallet-7"), []byte("pallet-8"), 1)
	if _, err := verifyIndependently(t, testSecret, req.header, tampered); err == nil || !strings.Contains(err.Error(), "no matching") {
		t.Fatalf("tampered body accepted: %v", err)
	}
	other := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another-secret-of-32-bytes-long!"))
	if _, err := verifyIndependently(t, other, req.header, req.body); err == nil {
		t.Fatal("body verified with another secret")
	}
	stale := req.header.Clone()
	stale.Set("webhook-timestamp", "1700000000")
	if _, err := verifyIndependently(t, testSecret, stale, req.body); err == nil || !strings.Contains(err.Error(), "tolerance") {
		t.Fatalf("replay of an old request accepted: %v", err)
	}

	// 5xx and 429 are retried, other 4xx are final; every attempt is recorded.
	for _, tc := range []struct {
		status int
		final  bool
	}{{http.StatusServiceUnavailable, false}, {http.StatusTooManyRequests, false}, {http.StatusBadRequest, true}, {http.StatusUnauthorized, true}} {
		mu.Lock()
		status = tc.status
		mu.Unlock()
		_, err := env.ExecuteActivity(a.DeliverWebhook, in)
		var ae *temporal.ApplicationError
		final := errors.As(err, &ae) && ae.NonRetryable()
		if err == nil || final != tc.final {
			t.Errorf("status %d: final %v, want %v (%v)", tc.status, final, tc.final, err)
		}
	}
	ds, err := st.Deliveries(context.Background(), "m-1")
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, d := range ds {
		outcomes = append(outcomes, d.Outcome)
		if d.EventID != in.Event.ID || d.Client != "acme" || d.Kind != "delivered" {
			t.Errorf("delivery row %+v", d)
		}
	}
	want := []string{store.DeliveryDelivered, store.DeliveryRetrying, store.DeliveryRetrying, store.DeliveryRejected, store.DeliveryRejected}
	if strings.Join(outcomes, ",") != strings.Join(want, ",") || ds[1].HTTPStatus != 503 {
		t.Fatalf("recorded outcomes %v, want %v", outcomes, want)
	}

	// A receiver that is not there: retried, recorded with the error.
	srv.Close()
	if _, err := env.ExecuteActivity(a.DeliverWebhook, in); err == nil {
		t.Fatal("delivery to a closed server succeeded")
	}
	// A client this worker has no webhook for: final.
	_, err = env.ExecuteActivity(a.DeliverWebhook, schemas.DeliverWebhookInput{Client: "nobody", Event: sampleEvent()})
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != schemas.ErrWMSClientUnknown {
		t.Fatalf("unknown client: %v", err)
	}
}

func mustWebhook(t *testing.T) *standardwebhooks.Webhook {
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

// A webhook that redirects is not followed: the event would arrive as a
// bodyless GET (and the signature go elsewhere) while the 2xx read as
// delivered. The redirect is final, saying so; the target never hears.
func TestDeliverWebhookDoesNotFollowRedirects(t *testing.T) {
	var hits int
	var mu sync.Mutex
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer target.Close()
	srv := httptest.NewServer(http.RedirectHandler(target.URL+"/hooks", http.StatusFound))
	defer srv.Close()
	wc, err := NewWebhookClient(srv.URL, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	a := &Activities{Webhooks: map[string]WebhookClient{"acme": wc}}
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	_, err = env.ExecuteActivity(a.DeliverWebhook, schemas.DeliverWebhookInput{Client: "acme", Event: sampleEvent()})
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != schemas.ErrWMSRejected || !strings.Contains(err.Error(), "302") || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("want a final WMSRejected naming the redirect, got %v", err)
	}
	// A temporary redirect (307) is tried again later, still not followed.
	tmp := httptest.NewServer(http.RedirectHandler(target.URL+"/hooks", http.StatusTemporaryRedirect))
	defer tmp.Close()
	wc, err = NewWebhookClient(tmp.URL, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	a.Webhooks["acme"] = wc
	_, err = env.ExecuteActivity(a.DeliverWebhook, schemas.DeliverWebhookInput{Client: "acme", Event: sampleEvent()})
	if err == nil || (errors.As(err, &ae) && ae.NonRetryable()) || !strings.Contains(err.Error(), "307") {
		t.Fatalf("want a retryable error naming the 307, got %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Fatalf("the redirect target was called %d times", hits)
	}
}

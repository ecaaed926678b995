package activities

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/schemas"
)

// WebhookClient is where a WMS client's mission events go and the key they
// are signed with.
type WebhookClient struct {
	URL    string
	Signer *standardwebhooks.Webhook
}

// NewWebhookClient parses secret ("whsec_" + base64, Standard Webhooks).
func NewWebhookClient(url, secret string) (WebhookClient, error) {
	s, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return WebhookClient{}, err
	}
	return WebhookClient{URL: url, Signer: s}, nil
}

// CloudEvent turns a mission event into the CloudEvent fleetflow POSTs
// (specversion 1.0, type dev.fleetflow.mission.<kind>, source
// /fleetflow/sites/<site>, subject the mission ID, data WMSEventData as
// application/json) and returns its structured-mode JSON.
func CloudEvent(ev schemas.WMSEvent) ([]byte, error) {
	e := event.New()
	e.SetID(ev.ID)
	e.SetType(schemas.WMSEventTypePrefix + ev.Kind)
	e.SetSource("/fleetflow/sites/" + ev.Data.Site)
	e.SetSubject(ev.Data.MissionID)
	e.SetTime(ev.Time)
	if err := e.SetData(event.ApplicationJSON, ev.Data); err != nil {
		return nil, err
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e.MarshalJSON()
}

// WebhookOf says whether WMS client in.Client has a webhook (config
// wms.clients), and its delivery timeout: what a mission that ends before
// PlanMission asks before it sends its client the end. No errors.
func (a *Activities) WebhookOf(ctx context.Context, in schemas.WebhookOfInput) (schemas.WebhookOfResult, error) {
	_, ok := a.Webhooks[in.Client]
	if !ok {
		return schemas.WebhookOfResult{}, nil
	}
	return schemas.WebhookOfResult{Webhook: true, DeliveryTimeout: a.WebhookDeliveryTimeout}, nil
}

// DeliverWebhook POSTs one mission event to its client's webhook as a
// CloudEvent (Content-Type application/cloudevents+json) signed per
// Standard Webhooks: headers webhook-id (the event ID), webhook-timestamp
// (Unix seconds of this attempt) and webhook-signature ("v1," + base64
// HMAC-SHA256 over "<id>.<timestamp>.<body>" with the client's secret), so
// a receiver can check the body and refuse replays older than 5 minutes.
// Every attempt is recorded in wms_deliveries (a registry that is down does
// not stop the delivery). 2xx is success; a network error, 408, 429 and
// 5xx are retried by Temporal; any other 4xx is final (WMSRejected).
func (a *Activities) DeliverWebhook(ctx context.Context, in schemas.DeliverWebhookInput) error {
	wc, ok := a.Webhooks[in.Client]
	if !ok {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("WMS client %q has no webhook on this worker", in.Client), schemas.ErrWMSClientUnknown, nil)
	}
	body, err := CloudEvent(in.Event)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("mission event "+in.Event.ID+": "+err.Error(), schemas.ErrWMSRejected, err)
	}
	now := time.Now()
	sig, err := wc.Signer.Sign(in.Event.ID, now, body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, wc.URL, bytes.NewReader(body))
	if err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), schemas.ErrWMSRejected, nil)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set(standardwebhooks.HeaderWebhookID, in.Event.ID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, fmt.Sprint(now.Unix()))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	req.Header.Set("User-Agent", "fleetflow-webhooks/1")
	hc := a.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	d := store.Delivery{
		Client: in.Client, EventID: in.Event.ID, MissionID: in.Event.Data.MissionID, Kind: in.Event.Kind,
		Attempt: int(activity.GetInfo(ctx).Attempt),
	}
	// A webhook answers; it does not redirect. Following one would turn
	// the POST into a bodyless GET (301–303) whose 2xx reads as delivered,
	// and would send the signature to wherever it points.
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	start := time.Now()
	resp, err := noRedirect.Do(req)
	d.Duration = time.Since(start)
	var result error
	switch {
	case err != nil:
		d.Outcome, d.Error = store.DeliveryRetrying, err.Error()
		result = fmt.Errorf("deliver %s to %s: %w", in.Event.ID, in.Client, err)
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		d.HTTPStatus = resp.StatusCode
		switch c := resp.StatusCode; {
		case c >= 200 && c < 300:
			d.Outcome = store.DeliveryDelivered
		case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c == http.StatusTemporaryRedirect || c >= 500:
			// A 307 is temporary (a load balancer moving traffic): tried
			// again later, never followed (it would replay the signed body
			// to wherever it points).
			d.Outcome, d.Error = store.DeliveryRetrying, resp.Status
			result = fmt.Errorf("deliver %s to %s: %s", in.Event.ID, in.Client, resp.Status)
		default:
			why := resp.Status
			if c >= 300 && c < 400 {
				why += " (a redirect: set the webhook to the URL it points to)"
			}
			d.Outcome, d.Error = store.DeliveryRejected, why
			result = temporal.NewNonRetryableApplicationError(fmt.Sprintf("deliver %s to %s: %s", in.Event.ID, in.Client, why), schemas.ErrWMSRejected, nil)
		}
	}
	if a.Store != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := a.Store.RecordDelivery(rctx, d); err != nil {
			activity.GetLogger(ctx).Warn("record webhook delivery failed", "event", in.Event.ID, "error", err)
		}
		cancel()
	}
	return result
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/spf13/cobra"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/schemas"
)

func wmsCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wms",
		Short: "WMS integration: ingress API keys, webhook secrets, a verifying webhook receiver, delivery records",
		Long: `Each mission started for a WMS client (mission start --client, config
wms.clients) POSTs its events — queued, assigned, picked, delivered,
awaiting_operator, completed, failed, cancelled — to the client's webhookURL
as CloudEvents (application/cloudevents+json, type dev.fleetflow.mission.<kind>,
data per schemas/wms-event.schema.json), signed per Standard Webhooks
(headers webhook-id, webhook-timestamp, webhook-signature).

A WMS that speaks HTTP uses the REST ingress (wms.ingressAddr, or workers
--ingress; schemas/openapi.yaml) with its client's API key, read from the
environment variable that wms.clients[].apiKeyEnv names.`,
	}
	cmd.AddCommand(wmsNewKeyCmd(), wmsNewSecretCmd(), wmsListenCmd(g), wmsDeliveriesCmd(g))
	return cmd
}

func wmsNewKeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "new-key",
		Short: "Print a new REST ingress API key (base64url of 32 random bytes, 43 characters)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), base64.RawURLEncoding.EncodeToString(b))
			return nil
		},
	}
}

func wmsNewSecretCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "new-secret",
		Short: "Print a new webhook signing secret (whsec_ + base64 of 32 random bytes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "whsec_"+base64.StdEncoding.EncodeToString(b))
			return nil
		},
	}
}

// receivedEvent is one line of `wms listen -o json`.
type receivedEvent struct {
	ReceivedAt time.Time            `json:"receivedAt"`
	ID         string               `json:"id"`
	Type       string               `json:"type"`
	Subject    string               `json:"subject"`
	Time       time.Time            `json:"time"`
	Data       schemas.WMSEventData `json:"data"`
	Duplicate  bool                 `json:"duplicate,omitempty"`
}

// webhookReceiver verifies and records fleetflow webhook requests: what a
// WMS's receiving end must do.
type webhookReceiver struct {
	wh       *standardwebhooks.Webhook
	failTill time.Time // answer 503 until then (to try retries)
	out      func(receivedEvent)
	reject   func(status int, why string)
	mu       sync.Mutex
	seen     map[string]bool
}

// maxWebhookBody bounds a request body; fleetflow's events are < 2 KiB.
const maxWebhookBody = 256 << 10

func (rc *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, why string) {
		rc.reject(status, why)
		http.Error(w, why, status)
	}
	if r.Method != http.MethodPost {
		refuse(http.StatusMethodNotAllowed, "POST only")
		return
	}
	if time.Now().Before(rc.failTill) {
		refuse(http.StatusServiceUnavailable, "down on purpose (--fail-for)")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		refuse(http.StatusRequestEntityTooLarge, "body too large or unreadable")
		return
	}
	// Signature and freshness (5 minutes) first: nothing unverified is parsed.
	if err := rc.wh.Verify(body, r.Header); err != nil {
		refuse(http.StatusUnauthorized, "signature check failed: "+strings.TrimPrefix(err.Error(), "unable to verify payload, err: "))
		return
	}
	ev := event.New()
	if err := json.Unmarshal(body, &ev); err != nil {
		refuse(http.StatusBadRequest, "not a CloudEvent: "+err.Error())
		return
	}
	if ev.ID() != r.Header.Get(standardwebhooks.HeaderWebhookID) {
		refuse(http.StatusBadRequest, "webhook-id differs from the CloudEvent id")
		return
	}
	var data schemas.WMSEventData
	if err := ev.DataAs(&data); err != nil {
		refuse(http.StatusBadRequest, "event data: "+err.Error())
		return
	}
	rc.mu.Lock()
	dup := rc.seen[ev.ID()]
	rc.seen[ev.ID()] = true
	rc.mu.Unlock()
	rc.out(receivedEvent{ReceivedAt: time.Now().UTC(), ID: ev.ID(), Type: ev.Type(), Subject: ev.Subject(), Time: ev.Time().UTC(), Data: data, Duplicate: dup})
	w.WriteHeader(http.StatusNoContent)
}

func wmsListenCmd(g *globalFlags) *cobra.Command {
	var addr, secretEnv string
	var failFor time.Duration
	cmd := &cobra.Command{
		Use:   "listen",
		Short: "Run a webhook receiver that verifies fleetflow's signatures and prints each mission event",
		Long: `listen is the receiving end of a WMS webhook, for trying an integration:
it refuses requests whose Standard Webhooks signature does not match the
secret (401), that are older than 5 minutes (401, replays) or that are not
CloudEvents (400), answers 204 to the rest and prints one line per event
(-o json: one JSON object per line). A repeated event ID (a retried
delivery) is marked duplicate. With --fail-for it answers 503 at first, to
watch fleetflow retry.

Point a client at it in temporal.yaml:
  wms:
    clients:
      - {name: test-wms, webhookURL: "http://127.0.0.1:8099/", secretEnv: WMS_WEBHOOK_SECRET}
and export the same WMS_WEBHOOK_SECRET to the workers and to listen.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret := os.Getenv(secretEnv)
			if secret == "" {
				return badInput("environment variable %s is not set: export the client's secret (starter wms new-secret makes one)", secretEnv)
			}
			if err := config.CheckWebhookSecret(secret); err != nil {
				return badInput("%s: %v", secretEnv, err)
			}
			wh, err := standardwebhooks.NewWebhook(secret)
			if err != nil {
				return badInput("%s: %v", secretEnv, err)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return badInput("--addr %s: %v", addr, err)
			}
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			var outMu sync.Mutex
			rc := &webhookReceiver{wh: wh, failTill: time.Now().Add(failFor), seen: map[string]bool{},
				out: func(e receivedEvent) {
					outMu.Lock()
					defer outMu.Unlock()
					if g.output == "json" {
						_ = json.NewEncoder(stdout).Encode(e)
						return
					}
					line := fmt.Sprintf("%s  %-32s %-24s #%d %s", e.Time.Format(time.RFC3339), e.Type, e.Subject, e.Data.Sequence, e.Data.State)
					if e.Data.RobotID != "" {
						line += " robot " + e.Data.RobotID
					}
					if e.Data.Station != "" {
						line += " at " + e.Data.Station
					}
					if e.Data.Reason != "" {
						line += ": " + e.Data.Reason
					}
					if e.Duplicate {
						line += " (duplicate)"
					}
					fmt.Fprintln(stdout, line)
				},
				reject: func(status int, why string) {
					outMu.Lock()
					defer outMu.Unlock()
					fmt.Fprintf(stderr, "%s refused %d: %s\n", time.Now().UTC().Format(time.RFC3339), status, why)
				},
			}
			srv := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(stderr, "listening on http://%s/ for fleetflow mission events\n", ln.Addr())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8099", "listen address")
	cmd.Flags().StringVar(&secretEnv, "secret-env", "WMS_WEBHOOK_SECRET", "environment variable with the client's signing secret")
	cmd.Flags().DurationVar(&failFor, "fail-for", 0, "answer 503 Service Unavailable for this long first")
	return cmd
}

func wmsDeliveriesCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "deliveries MISSION",
		Short: "List every attempt to deliver a mission's events to its WMS webhook (needs DATABASE_URL)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, err := openRegistry(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer st.Close()
			ds, err := st.Deliveries(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if ds == nil {
				ds = []store.Delivery{}
			}
			return emit(cmd.OutOrStdout(), g, ds, func(w io.Writer) {
				if len(ds) == 0 {
					fmt.Fprintf(w, "no webhook deliveries for mission %s (no WMS client with a webhook started it, or none was attempted yet)\n", args[0])
					return
				}
				tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
				fmt.Fprintln(tw, "AT\tCLIENT\tEVENT\tKIND\tATTEMPT\tOUTCOME\tHTTP\tTOOK\tERROR")
				for _, d := range ds {
					status := "-"
					if d.HTTPStatus != 0 {
						status = fmt.Sprint(d.HTTPStatus)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", d.At.Format(time.RFC3339), d.Client, d.EventID, d.Kind,
						d.Attempt, d.Outcome, status, d.Duration, dash(d.Error))
				}
				tw.Flush()
			})
		},
	}
}

// Package worker assembles fleetflow's worker process: Temporal workers for
// the task queues it is told to poll, the telemetry bridge, and the HTTP
// endpoints /healthz, /readyz and /metrics (Prometheus, the Temporal SDK's
// metrics included). The workers binary and `starter dev` both run it.
package worker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/activities"
	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/artifact"
	"github.com/fleetflow/fleetflow/internal/codec"
	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/schemas"
	"github.com/fleetflow/fleetflow/workers/bridge"
	"github.com/fleetflow/fleetflow/workers/ingress"
	"github.com/fleetflow/fleetflow/workflows"
)

// Options says what this worker process does.
type Options struct {
	Config config.Config
	// TaskQueues to poll (names from config.TaskQueues); nil = every
	// workflow queue (missions, ota, maintenance), none when EdgeSite is set.
	TaskQueues []string
	// EdgeSite makes this the edge worker of that site (config edge.sites):
	// it also polls the site's robot I/O queue (taskQueues.robotIO + "-" +
	// site), publishing what the central workflows send to the site's
	// robots, and config mqtt is the site's broker.
	EdgeSite string
	// Bridge runs the telemetry bridge in this process.
	Bridge bool
	// HTTPAddr serves /healthz, /readyz, /metrics; "" = none.
	HTTPAddr string
	// IngressAddr serves the REST ingress for WMS clients
	// (workers/ingress, schemas/openapi.yaml); "" = none.
	IngressAddr string
	Logger      *slog.Logger
	// Sites overrides the maps loaded from site.mapsDir (benchmarks use a
	// generated grid).
	Sites map[string]*site.Map
}

// Worker is a running worker process.
type Worker struct {
	Client   client.Client
	Store    *store.Store
	MQTT     mqtt.Client
	Bridge   *bridge.Bridge
	Registry *prometheus.Registry
	HTTPAddr string // actual address when Options.HTTPAddr had port 0
	// IngressAddr is the REST ingress's actual address ("" = not running).
	IngressAddr string

	log     *slog.Logger
	cfg     config.Config
	workers []worker.Worker
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	http    *http.Server
	ingress *http.Server
	once    sync.Once
}

// NewTemporalClient dials Temporal as configured (TLS, API key), with the
// SDK's metrics going to reg (nil = none).
func NewTemporalClient(cfg config.Config, logger *slog.Logger, reg prometheus.Registerer) (client.Client, error) {
	opts, err := TemporalClientOptions(cfg, logger)
	if err != nil {
		return nil, err
	}
	if reg != nil {
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			return nil, fmt.Errorf("metrics exporter: %w", err)
		}
		meter := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)).Meter("temporal-sdk-go")
		opts.MetricsHandler = temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
			Meter:   meter,
			OnError: func(err error) { logger.Warn("temporal metrics", "error", err) },
		})
	}
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", cfg.Temporal.HostPort, cfg.Temporal.Namespace, err)
	}
	return c, nil
}

// TemporalClientOptions are the client options of cfg: host, namespace,
// TLS (temporal.tls) and API key (FLEETFLOW_TEMPORAL_API_KEY), without
// metrics. Errors: unreadable TLS files.
func TemporalClientOptions(cfg config.Config, logger *slog.Logger) (client.Options, error) {
	opts := client.Options{
		HostPort:  cfg.Temporal.HostPort,
		Namespace: cfg.Temporal.Namespace,
		Logger:    tlog.NewStructuredLogger(logger),
	}
	if t := cfg.Temporal.TLS; t.Enabled {
		tc, err := tlsConfig(t)
		if err != nil {
			return opts, fmt.Errorf("temporal.tls: %w", err)
		}
		opts.ConnectionOptions.TLS = tc
	}
	if cfg.Temporal.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.Temporal.APIKey)
	}
	if cfg.Tracing.On() {
		ti, err := tracingInterceptor()
		if err != nil {
			return opts, fmt.Errorf("tracing: %w", err)
		}
		opts.Interceptors = append(opts.Interceptors, ti)
	}
	if c, err := payloadCodec(cfg); err != nil {
		return opts, err
	} else if c != nil {
		opts.DataConverter = c.DataConverter()
		// Error messages and stack traces are payloads too: encrypted.
		opts.FailureConverter = temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
			DataConverter: opts.DataConverter, EncodeCommonAttributes: true,
		})
	}
	return opts, nil
}

// payloadCodec is the payload encryption of cfg (temporal payload key),
// nil when none is configured.
func payloadCodec(cfg config.Config) (*codec.AESGCM, error) {
	if cfg.Temporal.PayloadKey == "" {
		return nil, nil
	}
	key, err := codec.ParseKey(cfg.Temporal.PayloadKey)
	if err != nil {
		return nil, err
	}
	return codec.New(key)
}

func tlsConfig(t config.TLS) (*tls.Config, error) {
	tc := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificates", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// NewMQTTClient connects a paho client as configured. onConnect runs on
// every (re)connect — subscribe there, subscriptions do not survive a
// reconnect with a clean session.
func NewMQTTClient(cfg config.Config, clientID string, onConnect func(mqtt.Client)) (mqtt.Client, error) {
	o := mqtt.NewClientOptions().AddBroker(cfg.MQTT.URL).SetClientID(clientID).
		// OrderMatters(true): a robot's states must reach the bridge in the
		// order the broker delivered them. Safe because the only handler
		// (bridge.Enqueue) never blocks, which is what FIELD-NOTES warns about.
		SetCleanSession(true).SetOrderMatters(true).SetAutoReconnect(true).
		SetConnectRetry(false).SetMaxReconnectInterval(5 * time.Second).
		SetConnectTimeout(5 * time.Second).SetKeepAlive(30 * time.Second)
	if cfg.MQTT.Username != "" {
		o.SetUsername(cfg.MQTT.Username).SetPassword(cfg.MQTT.Password)
	}
	if t := cfg.MQTT.TLS; t.Enabled {
		tc, err := tlsConfig(t)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls: %w", err)
		}
		o.SetTLSConfig(tc)
	}
	if onConnect != nil {
		o.SetOnConnectHandler(onConnect)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect to MQTT broker %s: timed out", cfg.MQTT.URL)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("connect to MQTT broker %s: %w", cfg.MQTT.URL, err)
	}
	return c, nil
}

// EnsureReaperSchedule creates the Temporal Schedule that starts a Reaper
// sweep every interval on taskQueue (schemas.ReaperScheduleID), or
// updates its interval when it exists: safe to call from every worker at
// start. A sweep still running when the next is due is not doubled
// (overlap policy skip); a lease younger than one interval is not checked.
func EnsureReaperSchedule(ctx context.Context, c client.Client, taskQueue string, interval time.Duration) error {
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: interval}}}
	action := &client.ScheduleWorkflowAction{
		ID: "reaper", Workflow: schemas.ReaperWorkflowType, Args: []any{schemas.ReaperInput{MinAge: interval}}, TaskQueue: taskQueue,
		WorkflowExecutionTimeout: 10 * time.Minute,
	}
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: schemas.ReaperScheduleID, Spec: spec, Action: action, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Note: "fleetflow: free robot reservations and queue rows of closed workflows",
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return err
	}
	h := c.ScheduleClient().GetHandle(ctx, schemas.ReaperScheduleID)
	return h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		s.Spec = &spec
		s.Action = action
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
}

// UniqueClientID makes an MQTT client ID no other process uses: two clients
// with one ID kick each other off the broker.
func UniqueClientID(prefix, role string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%s-%s-%d-%d", prefix, role, host, os.Getpid(), time.Now().UnixNano()%100000)
}

type temporalSignaler struct{ c client.Client }

func (s temporalSignaler) Signal(ctx context.Context, wfID string, ev schemas.RobotEvent) error {
	err := s.c.SignalWorkflow(ctx, wfID, "", schemas.SignalRobotEvent, ev)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return bridge.ErrNoWorkflow
	}
	return err
}

// Start brings the worker up and returns once it polls; Stop ends it.
func Start(ctx context.Context, opts Options) (*Worker, error) {
	cfg := opts.Config
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Postgres.URL == "" {
		return nil, errors.New("no database: set DATABASE_URL (or use `starter dev`, which starts one)")
	}
	if opts.EdgeSite != "" && !cfg.Edge.Has(opts.EdgeSite) {
		return nil, fmt.Errorf("edge site %q is not in edge.sites %v: the workflows would not route its robot I/O to it", opts.EdgeSite, cfg.Edge.Sites)
	}
	queues := opts.TaskQueues
	if queues == nil && opts.EdgeSite == "" {
		queues = []string{cfg.TaskQueues.Missions, cfg.TaskQueues.OTA, cfg.TaskQueues.Maintenance}
	}
	if i := slices.Index(queues, cfg.TaskQueues.RobotIO); i >= 0 {
		// The plain robot I/O queue was once polled by default; no work is
		// sent to it (an edge site's queue is robot-io-<site>).
		log.Warn("task queue " + cfg.TaskQueues.RobotIO + " receives no work: skipped (an edge worker polls " + cfg.TaskQueues.RobotIO + "-<site>, see --edge-site)")
		queues = slices.Delete(slices.Clone(queues), i, i+1)
	}
	if opts.EdgeSite != "" {
		queues = append(slices.Clone(queues), cfg.TaskQueues.RobotIOFor(opts.EdgeSite))
	}

	w := &Worker{log: log, Registry: prometheus.NewRegistry(), cfg: cfg}
	w.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	fail := func(err error) (*Worker, error) { w.Stop(); return nil, err }

	maps := opts.Sites
	if maps == nil {
		var err error
		if maps, err = site.LoadDir(cfg.Site.MapsDir); err != nil {
			return nil, fmt.Errorf("site maps (site.mapsDir %s): %w", cfg.Site.MapsDir, err)
		}
	}
	if cfg.MQTT.URL == "" && needsBroker(opts, queues, maps, cfg.Edge) {
		why := "the workflows publish to robots of sites not in edge.sites"
		if opts.Bridge {
			why = "the bridge runs here (worker.bridge, --bridge=false turns it off)"
		}
		return nil, fmt.Errorf("no MQTT broker: set mqtt.url / FLEETFLOW_MQTT_URL (or use `starter dev`, which starts one): %s", why)
	}
	if err := store.Migrate(ctx, cfg.Postgres.URL); err != nil {
		return nil, fmt.Errorf("migrate fleet registry: %w", err)
	}
	var err error
	if w.Store, err = store.Open(ctx, cfg.Postgres.URL, store.WithMaxConns(cfg.Postgres.MaxConns)); err != nil {
		return nil, fmt.Errorf("open fleet registry: %w", err)
	}
	if w.Client, err = NewTemporalClient(cfg, log, w.Registry); err != nil {
		return fail(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	// One book for the bridge and the robot link: an auto profile learns
	// the version a vehicle writes from what the bridge reads.
	profiles := site.ProfileBook(maps)
	if opts.Bridge {
		w.Bridge = bridge.New(w.Store, temporalSignaler{w.Client}, bridge.Options{
			FlushInterval: cfg.Worker.BridgeFlushInterval, BatchSize: cfg.Worker.BridgeBatchSize,
			Logger: log, Registerer: w.Registry, Profiles: profiles,
		})
		w.wg.Add(1)
		go func() { defer w.wg.Done(); w.Bridge.Run(runCtx) }()
	}
	b := w.Bridge
	if cfg.MQTT.URL != "" {
		w.MQTT, err = NewMQTTClient(cfg, UniqueClientID(cfg.MQTT.ClientID, "worker"), func(c mqtt.Client) {
			if b == nil {
				return
			}
			if err := b.Subscribe(c, cfg.MQTT.SharedGroup); err != nil {
				log.Error("bridge: subscribe failed", "error", err)
			} else {
				log.Info("bridge: subscribed to robot state and connection", "broker", cfg.MQTT.URL)
			}
		})
		if err != nil {
			return fail(err)
		}
	}
	edgeQueues := map[string]string{}
	for _, s := range cfg.Edge.Sites {
		edgeQueues[s] = cfg.TaskQueues.RobotIOFor(s)
	}
	webhooks := map[string]activities.WebhookClient{}
	for i, c := range cfg.WMS.Clients {
		if c.WebhookURL == "" {
			continue
		}
		wc, err := activities.NewWebhookClient(c.WebhookURL, c.Secret)
		if err != nil {
			return fail(fmt.Errorf("wms.clients[%d].secretEnv (%s): %w", i, c.SecretEnv, err))
		}
		webhooks[c.Name] = wc
	}
	acts := &activities.Activities{
		Store: w.Store, Link: activities.NewRobotLink(w.MQTT, 5*time.Second, profiles), Sites: maps,
		Temporal: w.Client, HTTP: &http.Client{Timeout: cfg.WMS.Timeout},
		Webhooks: webhooks, WebhookDeliveryTimeout: cfg.WMS.DeliveryTimeout,
		OrderAckTimeout: cfg.Robots.OrderAckTimeout, OrderResends: cfg.Robots.OrderResends, ConnectionGrace: cfg.Robots.ConnectionGrace,
		LeasesFreed: activities.NewLeasesFreedCounter(), EdgeQueues: edgeQueues,
		Charging: activities.ChargingPolicy{Threshold: cfg.Charging.Threshold, Resume: cfg.Charging.Resume, TaskQueue: cfg.TaskQueues.Maintenance},
		Maintenance: activities.MaintenancePolicy{
			Triggers: store.HealthThresholds{BatteryHealthBelow: cfg.Maintenance.Triggers.BatteryHealthBelow, Errors: cfg.Maintenance.Triggers.Errors,
				DrivingHours: cfg.Maintenance.Triggers.DrivingHours},
			Station: cfg.Maintenance.Station, Diagnostics: cfg.Maintenance.Diagnostics, TaskQueue: cfg.TaskQueues.Maintenance,
		},
	}
	w.Registry.MustRegister(acts.LeasesFreed)
	versioning := cfg.Worker.Versioning
	if opts.EdgeSite != "" && versioning.BuildID != "" {
		// An edge worker serves only activities, on its site's own queue,
		// and is replaced in place: as a version of the deployment it would
		// join the central workers' versions (and could make itself
		// current). Unversioned, every version's workflows reach it.
		log.Info("edge worker: worker.versioning ignored (activities only)", "buildId", versioning.BuildID)
		versioning = config.Versioning{}
	}
	// Process-wide in the SDK: the last Start wins (one worker process, one config).
	worker.SetStickyWorkflowCacheSize(cfg.Worker.WorkflowCacheSize)
	if slices.Contains(queues, cfg.TaskQueues.OTA) {
		keys, err := artifact.LoadKeyring(cfg.Artifacts.TrustedKeys)
		if err != nil {
			return fail(fmt.Errorf("artifacts.trustedKeys: %w", err))
		}
		acts.Artifacts = activities.ArtifactStore{BaseURL: cfg.Artifacts.BaseURL, Allowed: cfg.Artifacts.AllowedBaseURLs, Dir: cfg.Artifacts.Dir, Keys: keys}
	}
	// Every worker that publishes a softwareUpdate adds the store's token
	// to its URLs (an edge worker too).
	acts.Artifacts.URLQuery = cfg.Artifacts.URLQuery
	for _, q := range queues {
		wo := worker.Options{MaxConcurrentWorkflowTaskPollers: cfg.Worker.WorkflowTaskPollers, WorkerStopTimeout: cfg.Worker.StopTimeout,
			DeploymentOptions: deploymentOptions(versioning)}
		if opts.EdgeSite != "" && q == cfg.TaskQueues.RobotIOFor(opts.EdgeSite) {
			// Every order of the site's missions is one activity task here:
			// as many polls open as the workflow workers keep (the SDK's
			// default of 2 left tasks waiting for a poll round trip).
			wo.MaxConcurrentActivityTaskPollers = cfg.Worker.WorkflowTaskPollers
		}
		wk := worker.New(w.Client, q, wo)
		switch q {
		case cfg.TaskQueues.Missions:
			wk.RegisterWorkflowWithOptions(workflows.Mission, workflow.RegisterOptions{Name: schemas.MissionWorkflowType})
			wk.RegisterWorkflowWithOptions(workflows.Reaper, workflow.RegisterOptions{Name: schemas.ReaperWorkflowType})
			wk.RegisterWorkflowWithOptions(workflows.WMSEvents, workflow.RegisterOptions{Name: schemas.WMSEventsWorkflowType,
				VersioningBehavior: autoUpgrade(versioning)})
			wk.RegisterActivity(acts) // run as local activities by Mission
		case cfg.TaskQueues.RobotIOFor(opts.EdgeSite):
			wk.RegisterActivity(acts) // SendOrder and SendInstantActions of the site's robots
		case cfg.TaskQueues.OTA:
			wk.RegisterWorkflowWithOptions(workflows.Rollout, workflow.RegisterOptions{Name: schemas.RolloutWorkflowType,
				VersioningBehavior: autoUpgrade(versioning)})
			wk.RegisterWorkflowWithOptions(workflows.RobotUpdate, workflow.RegisterOptions{Name: schemas.RobotUpdateWorkflowType})
			wk.RegisterActivity(acts)
		case cfg.TaskQueues.Maintenance:
			wk.RegisterWorkflowWithOptions(workflows.Maintenance, workflow.RegisterOptions{Name: schemas.MaintenanceWorkflowType})
			wk.RegisterWorkflowWithOptions(workflows.Charge, workflow.RegisterOptions{Name: schemas.ChargeWorkflowType})
			wk.RegisterWorkflowWithOptions(workflows.MaintenanceRound, workflow.RegisterOptions{Name: schemas.MaintenanceRoundWorkflowType})
			wk.RegisterActivity(acts) // run as local activities by Maintenance and Charge
		default:
			return fail(fmt.Errorf("task queue %q: nothing is registered for it (known: %s, %s, %s; an edge worker's %s-<site> comes with --edge-site)", q,
				cfg.TaskQueues.Missions, cfg.TaskQueues.OTA, cfg.TaskQueues.Maintenance, cfg.TaskQueues.RobotIO))
		}
		if err := wk.Start(); err != nil {
			return fail(fmt.Errorf("start worker on task queue %s: %w", q, err))
		}
		w.workers = append(w.workers, wk)
		log.Info("worker polling", "taskQueue", q)
	}
	if v := versioning; v.BuildID != "" && v.SetCurrentIfNone && len(w.workers) > 0 {
		if err := setCurrentIfNone(ctx, w.Client, v, log); err != nil {
			return fail(fmt.Errorf("worker.versioning: %w", err))
		}
	}
	if slices.Contains(queues, cfg.TaskQueues.Missions) && cfg.Worker.ReaperInterval > 0 {
		if err := EnsureReaperSchedule(ctx, w.Client, cfg.TaskQueues.Missions, cfg.Worker.ReaperInterval); err != nil {
			return fail(fmt.Errorf("reaper schedule: %w", err))
		}
	}
	if opts.HTTPAddr != "" {
		if err := w.serveHTTP(opts.HTTPAddr); err != nil {
			return fail(err)
		}
	}
	if opts.IngressAddr != "" {
		if err := w.serveIngress(opts.IngressAddr, cfg, maps); err != nil {
			return fail(err)
		}
	}
	return w, nil
}

// deploymentOptions registers the workers as version v.BuildID of the
// Worker Deployment v.DeploymentName; none when BuildID is empty. A
// workflow is pinned to the version it started on (it ends on the code it
// began with) unless registered otherwise (autoUpgrade).
func deploymentOptions(v config.Versioning) worker.DeploymentOptions {
	if v.BuildID == "" {
		return worker.DeploymentOptions{}
	}
	return worker.DeploymentOptions{
		UseVersioning:             true,
		Version:                   worker.WorkerDeploymentVersion{DeploymentName: v.DeploymentName, BuildID: v.BuildID},
		DefaultVersioningBehavior: workflow.VersioningBehaviorPinned,
	}
}

// autoUpgrade is the versioning behaviour of the workflows that may live
// for days and move to the current version at their next workflow task:
// Rollout (it continues as new at each wave) and WMSEvents (it waits up to
// 48 h for a mission's next event). Their code must replay the histories
// of the version before (the replay tests in workflows/ guard it).
func autoUpgrade(v config.Versioning) workflow.VersioningBehavior {
	if v.BuildID == "" {
		return workflow.VersioningBehaviorUnspecified
	}
	return workflow.VersioningBehaviorAutoUpgrade
}

// setCurrentIfNone makes v the Worker Deployment's current version when
// it has none (a first install); a later version is made current by the
// operator. The server creates the deployment when the first versioned
// worker polls, and accepts a version as current once it has seen its
// pollers: this waits up to 30 s for both.
func setCurrentIfNone(ctx context.Context, c client.Client, v config.Versioning, log *slog.Logger) error {
	h := c.WorkerDeploymentClient().GetHandle(v.DeploymentName)
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
		if err == nil && d.Info.RoutingConfig.CurrentVersion != nil {
			return nil // someone chose already
		}
		if err == nil {
			_, err = h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: v.BuildID, ConflictToken: d.ConflictToken})
			if err == nil {
				log.Info("worker deployment: this version is now current (it had none)", "deployment", v.DeploymentName, "buildId", v.BuildID)
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("make build %s the current version of deployment %s: %w", v.BuildID, v.DeploymentName, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// needsBroker: the bridge and an edge worker talk to robots; workflow
// workers do so too (local activities) for every site that is not an edge
// site. Central workers whose every site is an edge site need no broker.
func needsBroker(opts Options, queues []string, maps map[string]*site.Map, edge config.Edge) bool {
	if opts.Bridge || opts.EdgeSite != "" {
		return true
	}
	if len(queues) == 0 {
		return false
	}
	for name := range maps {
		if !edge.Has(name) {
			return true
		}
	}
	return false
}

// serveIngress runs the REST ingress on its own listener: it faces the
// WMS, while /metrics and the probes stay on the internal address.
func (w *Worker) serveIngress(addr string, cfg config.Config, maps map[string]*site.Map) error {
	var clients []ingress.Client
	for _, c := range cfg.WMS.Clients {
		if c.APIKey != "" {
			clients = append(clients, ingress.Client{Name: c.Name, APIKey: c.APIKey})
		}
	}
	// The client's data converter (payload encryption): an ended mission's
	// input is read from its history with it.
	var dc converter.DataConverter
	if pc, err := payloadCodec(cfg); err != nil {
		return err
	} else if pc != nil {
		dc = pc.DataConverter()
	}
	h, err := ingress.New(ingress.Options{Temporal: w.Client, DataConverter: dc, TaskQueue: cfg.TaskQueues.Missions, Clients: clients,
		Sites: maps, Audit: w.Store, MaxBody: cfg.WMS.IngressMaxBody, Logger: w.log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("wms.ingressAddr %s: %w", addr, err)
	}
	w.IngressAddr = ln.Addr().String()
	w.ingress = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	go w.ingress.Serve(ln)
	w.log.Info("REST ingress listening", "addr", w.IngressAddr, "clients", len(clients))
	return nil
}

func (w *Worker) serveHTTP(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("worker.httpAddr %s: %w", addr, err)
	}
	w.HTTPAddr = ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(rw http.ResponseWriter, _ *http.Request) { rw.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		var problems []string
		if _, err := w.Client.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			problems = append(problems, "temporal: "+err.Error())
		}
		if err := w.Store.Pool().Ping(ctx); err != nil {
			problems = append(problems, "postgres: "+err.Error())
		}
		if w.MQTT != nil && !w.MQTT.IsConnectionOpen() {
			problems = append(problems, "mqtt: not connected")
		}
		if len(problems) > 0 {
			rw.WriteHeader(http.StatusServiceUnavailable)
			rw.Write([]byte(strings.Join(problems, "\n") + "\n"))
			return
		}
		rw.Write([]byte("ready\n"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(w.Registry, promhttp.HandlerOpts{}))
	if c, err := payloadCodec(w.cfg); err == nil && c != nil {
		// The codec server the Web UI decrypts payloads with (its
		// "Codec Server endpoint": http://<worker>/codec). The browser calls
		// it: CORS for the Web UI's origin (temporal.uiURL).
		mux.Handle("/codec/", codecCORS(w.cfg.Temporal.UIURL, http.StripPrefix("/codec", converter.NewPayloadCodecHTTPHandler(c))))
	}
	w.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go w.http.Serve(ln)
	return nil
}

// Stop shuts down gracefully: stop polling (running activities finish),
// flush the bridge, disconnect from MQTT, close the registry. Idempotent.
func (w *Worker) Stop() {
	w.once.Do(func() {
		for _, wk := range slices.Backward(w.workers) {
			wk.Stop()
		}
		for _, srv := range []*http.Server{w.ingress, w.http} {
			if srv != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = srv.Shutdown(ctx)
				cancel()
			}
		}
		if w.MQTT != nil {
			w.MQTT.Disconnect(250)
		}
		if w.cancel != nil {
			w.cancel()
		}
		w.wg.Wait()
		if w.Client != nil {
			w.Client.Close()
		}
		if w.Store != nil {
			w.Store.Close()
		}
	})
}

// DefaultGCPercent is the garbage collector target TuneGC sets: the workers'
// live heap is small (tens of MB) while the bridge allocates for every robot
// message it validates, so at Go's default of 100 a fifth of the process's
// CPU went to garbage collection under load (README, Benchmarks).
const DefaultGCPercent = 400

// TuneGC sets the garbage collector target to DefaultGCPercent unless the
// GOGC environment variable is set (then Go's own handling applies). Call it
// once from a binary's main, not from libraries.
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultGCPercent)
	}
}

// codecCORS lets the Web UI at uiURL call the codec server from the
// browser: it answers preflights and names that origin only.
func codecCORS(uiURL string, next http.Handler) http.Handler {
	origin := strings.TrimRight(uiURL, "/")
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" && o == origin {
			rw.Header().Set("Access-Control-Allow-Origin", o)
			rw.Header().Set("Access-Control-Allow-Credentials", "true")
			rw.Header().Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization")
			rw.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		}
		if r.Method == http.MethodOptions {
			rw.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(rw, r)
	})
}

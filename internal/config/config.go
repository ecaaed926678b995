// Package config loads fleetflow's one configuration file, temporal.yaml,
// applies environment overrides and validates the result once at start.
// Secrets (database URL, MQTT password, TLS keys' passphrases) come only from
// the environment, never from the file. It holds no I/O beyond reading that
// file.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleetflow/fleetflow/internal/codec"
)

// TLS configures a client TLS connection; paths are PEM files.
type TLS struct {
	Enabled    bool   `yaml:"enabled" env:"ENABLED"`
	CAFile     string `yaml:"caFile" env:"CA_FILE"`
	CertFile   string `yaml:"certFile" env:"CERT_FILE"`
	KeyFile    string `yaml:"keyFile" env:"KEY_FILE"`
	ServerName string `yaml:"serverName" env:"SERVER_NAME"`
}

// Temporal is where workflows run.
type Temporal struct {
	HostPort  string `yaml:"hostPort" env:"HOSTPORT"`
	Namespace string `yaml:"namespace" env:"NAMESPACE"`
	// UIURL is printed next to results so people can open the Web UI.
	UIURL string `yaml:"uiURL" env:"UI_URL"`
	// APIKey comes from the environment only (FLEETFLOW_TEMPORAL_API_KEY).
	APIKey string `yaml:"-" env:"API_KEY"`
	// PayloadKey, when set, encrypts every payload this process sends to
	// Temporal (AES-256-GCM, internal/codec): standard base64 of 32 bytes,
	// from the environment only (FLEETFLOW_TEMPORAL_PAYLOAD_KEY). Every
	// process of the namespace needs the same key.
	PayloadKey string `yaml:"-" env:"PAYLOAD_KEY"`
	TLS        TLS    `yaml:"tls" env:"TLS"`
	// Dev server settings used by `starter dev` and `make demo`.
	DevServerPort int `yaml:"devServerPort" env:"DEV_SERVER_PORT"`
	DevUIPort     int `yaml:"devUIPort" env:"DEV_UI_PORT"`
}

// TaskQueues names the queues workers poll (schemas.TaskQueue* by default).
type TaskQueues struct {
	Missions string `yaml:"missions" env:"MISSIONS"`
	// RobotIO is the prefix of the edge sites' robot I/O queues: the edge
	// worker of site S polls "<robotIO>-S" (RobotIOFor). No worker polls
	// the prefix itself.
	RobotIO     string `yaml:"robotIO" env:"ROBOT_IO"`
	OTA         string `yaml:"ota" env:"OTA"`
	Maintenance string `yaml:"maintenance" env:"MAINTENANCE"`
}

// RobotIOFor is the robot I/O task queue of site: "<robotIO>-<site>",
// e.g. robot-io-warehouse-b. Its edge worker polls it (Edge.Sites).
func (q TaskQueues) RobotIOFor(site string) string { return q.RobotIO + "-" + site }

// Edge is multi-site mode: one control plane for many sites, each site
// with its own MQTT broker on the site network (robots never talk across
// the internet). For every site in Sites, the workflows (Mission,
// RobotUpdate, Maintenance, Charge) run centrally and publish to robots
// only through activities on the site's robot I/O task queue
// (TaskQueues.RobotIOFor), which the site's edge worker polls (`workers
// --edge-site S`: that queue plus the bridge against the site's broker).
// While a site's edge worker is away, its robot I/O waits in the queue,
// nothing is lost. Sites not listed are reached in single-site mode: the
// workflow workers publish themselves (local activities, one broker).
type Edge struct {
	// Sites reached through their edge worker (site map names).
	Sites []string `yaml:"sites" env:"SITES"`
}

// Has reports whether site is an edge site.
func (e Edge) Has(site string) bool { return slices.Contains(e.Sites, site) }

// MQTT is the broker robots and the bridge talk through.
type MQTT struct {
	// URL of the broker, tcp://host:port, ssl://host:port or ws://…; empty
	// means the local stack's embedded broker.
	URL          string `yaml:"url" env:"URL"`
	EmbeddedPort int    `yaml:"embeddedPort" env:"EMBEDDED_PORT"`
	ClientID     string `yaml:"clientId" env:"CLIENT_ID"`
	Username     string `yaml:"username" env:"USERNAME"`
	Password     string `yaml:"-" env:"PASSWORD"` // environment only
	TLS          TLS    `yaml:"tls" env:"TLS"`
	// SharedGroup, when set, makes the bridge subscribe with
	// $share/<group>/… so several bridges split the fleet's traffic.
	SharedGroup string `yaml:"sharedGroup" env:"SHARED_GROUP"`
}

// Postgres is the fleet registry.
type Postgres struct {
	// URL comes from DATABASE_URL only (it may hold a password); empty means
	// the local stack's throwaway cluster.
	URL      string `yaml:"-" env:"-"`
	MaxConns int    `yaml:"maxConns" env:"MAX_CONNS"`
	// DevPort is the throwaway cluster's port (0 = any free port).
	DevPort int `yaml:"devPort" env:"DEV_PORT"`
}

// Site says which site map the local stack registers and where maps live.
type Site struct {
	Name    string `yaml:"name" env:"NAME"`
	MapsDir string `yaml:"mapsDir" env:"MAPS_DIR"`
}

// Worker configures the workers binary.
type Worker struct {
	HTTPAddr string `yaml:"httpAddr" env:"HTTP_ADDR"` // /healthz, /readyz, /metrics
	Bridge   bool   `yaml:"bridge" env:"BRIDGE"`
	// BridgeFlushInterval bounds how long a state waits before its batched
	// upsert (signals are sent at once, not batched).
	BridgeFlushInterval time.Duration `yaml:"bridgeFlushInterval" env:"BRIDGE_FLUSH_INTERVAL"`
	BridgeBatchSize     int           `yaml:"bridgeBatchSize" env:"BRIDGE_BATCH_SIZE"`
	// WorkflowTaskPollers is how many workflow task polls each task queue's
	// worker keeps open (Temporal worker option
	// MaxConcurrentWorkflowTaskPollers, split between the sticky and the
	// normal queue). The SDK's default of 2 leaves one sticky poll, so every
	// mission's robot-event workflow task waits its turn behind one poll
	// round trip at a time (README, Benchmarks).
	WorkflowTaskPollers int `yaml:"workflowTaskPollers" env:"WORKFLOW_TASK_POLLERS"`
	// ReaperInterval is how often the Reaper frees the reservations and
	// queue rows of closed workflows (a Temporal Schedule the workers that
	// poll the missions queue create); 0 turns it off.
	ReaperInterval time.Duration `yaml:"reaperInterval" env:"REAPER_INTERVAL"`
	// WorkflowCacheSize bounds how many workflows a worker process keeps
	// in memory between their workflow tasks (the SDK's sticky cache,
	// default 10,000 there); an evicted one replays its history on its next
	// task. It bounds the workers' memory when thousands of missions queue
	// (bench burst).
	WorkflowCacheSize int `yaml:"workflowCacheSize" env:"WORKFLOW_CACHE_SIZE"`
	// StopTimeout is how long a stopping worker (SIGTERM) lets running
	// activities finish before it cancels them (Temporal worker option
	// WorkerStopTimeout); a cancelled activity is retried elsewhere. A
	// Kubernetes pod's terminationGracePeriodSeconds must be longer. 0 =
	// cancelled at once (the local stack and tests).
	StopTimeout time.Duration `yaml:"stopTimeout" env:"STOP_TIMEOUT"`
	// LogFormat is text (default) or json (slog's JSON handler: one
	// object a line).
	LogFormat string `yaml:"logFormat" env:"LOG_FORMAT"`
	// Versioning registers the workers as one version of a Temporal Worker
	// Deployment, so a new release does not break running workflows.
	Versioning Versioning `yaml:"versioning" env:"VERSIONING"`
}

// Versioning is Temporal Worker Deployment Versioning (server 1.29+):
// workers say which version of the deployment they are; a workflow runs
// on the version that is current when it starts, and a pinned one stays
// there until it ends (README, "Releasing a new worker version").
type Versioning struct {
	// DeploymentName names the Worker Deployment (default "fleetflow").
	DeploymentName string `yaml:"deploymentName" env:"DEPLOYMENT_NAME"`
	// BuildID is this release's version in it (e.g. the image tag or git
	// commit); "" = unversioned workers (the local stack, tests).
	BuildID string `yaml:"buildID" env:"BUILD_ID"`
	// SetCurrentIfNone makes this version the deployment's current one at
	// start when it has none yet: for a first install only (default off).
	// Turned on where unversioned workers ran before, it would move their
	// running workflows to this version at their next task. Otherwise the
	// operator makes a version current: `temporal worker deployment
	// set-current-version` (or set-ramping-version).
	SetCurrentIfNone bool `yaml:"setCurrentIfNone" env:"SET_CURRENT_IF_NONE"`
}

// Robots configures how fleetflow talks to vehicles.
type Robots struct {
	// OrderAckTimeout is how long a mission waits, after sending an order,
	// for the robot's state to show that orderId and orderUpdateId before
	// it sends the same order again (orders travel with QoS 0, VDA 5050
	// §6.1; a vehicle ignores a duplicate, §6.6.4).
	OrderAckTimeout time.Duration `yaml:"orderAckTimeout" env:"ORDER_ACK_TIMEOUT"`
	// OrderResends is how often an unacknowledged order is sent again
	// before the mission fails as RobotUnresponsive and releases the robot.
	OrderResends int `yaml:"orderResends" env:"ORDER_RESENDS"`
	// ConnectionGrace is how long a mission waits for a robot whose
	// connection was lost (CONNECTIONBROKEN, OFFLINE) to come back, or to
	// be heard from, before it gives the robot up: a vehicle keeps driving
	// its released base meanwhile (VDA 5050 §4.1).
	ConnectionGrace time.Duration `yaml:"connectionGrace" env:"CONNECTION_GRACE"`
}

// Sim configures the virtual fleet.
type Sim struct {
	Speed          float64       `yaml:"speed" env:"SPEED"` // metres/second, 0 = instant
	ActionDuration time.Duration `yaml:"actionDuration" env:"ACTION_DURATION"`
	// Robots says which robots of the site the local stack simulates:
	// "all" (or ""), "none" (real or third-party vehicles connect to the
	// broker instead), or a comma-separated list of robot IDs
	// (manufacturer/serialNumber).
	Robots string `yaml:"robots" env:"ROBOTS"`
	// Battery is the virtual robots' charge at start, percent (0 = 100).
	Battery float64 `yaml:"battery" env:"BATTERY"`
	// ChargePerSecond is how fast a virtual robot charges, percent per
	// second (0 = sim.DefaultChargePerSecond).
	ChargePerSecond float64 `yaml:"chargePerSecond" env:"CHARGE_PER_SECOND"`
}

// Maintenance configures condition-based maintenance: a robot in service
// whose counters (kept by the bridge from its own states since its last
// service) pass a trigger gets one Maintenance workflow per epoch,
// started by the Reaper's sweep (worker.reaperInterval).
type Maintenance struct {
	Triggers MaintenanceTriggers `yaml:"triggers" env:"TRIGGERS"`
	// Station is the service station triggered maintenances drive to
	// ("" = serviced where the robot stands).
	Station string `yaml:"station" env:"STATION"`
	// Diagnostics runs the self-test in triggered maintenances.
	Diagnostics bool `yaml:"diagnostics" env:"DIAGNOSTICS"`
}

// MaintenanceTriggers: 0 turns a trigger off.
type MaintenanceTriggers struct {
	BatteryHealthBelow float64 `yaml:"batteryHealthBelow" env:"BATTERY_HEALTH_BELOW"` // percent (batteryState.batteryHealth)
	Errors             int64   `yaml:"errors" env:"ERRORS"`                           // errors reported since the last service
	DrivingHours       float64 `yaml:"drivingHours" env:"DRIVING_HOURS"`              // hours driven since the last service
}

// Tracing sends OpenTelemetry traces (a mission from the CLI or ingress
// through its workflow and activities to the MQTT publish) to an OTLP
// collector.
type Tracing struct {
	// Endpoint is the collector's OTLP/gRPC address (host:port); "" = no
	// export.
	Endpoint string `yaml:"endpoint" env:"ENDPOINT"`
	// Insecure sends without TLS (a collector on the same host or pod).
	Insecure bool `yaml:"insecure" env:"INSECURE"`
	// Enabled traces through the process's global tracer provider even
	// without an endpoint (tests install one); an endpoint enables it.
	Enabled bool `yaml:"enabled" env:"ENABLED"`
}

// On reports whether Temporal clients get the tracing interceptor.
func (t Tracing) On() bool { return t.Enabled || t.Endpoint != "" }

// Charging is the charge policy: robots below Threshold after a mission go
// to a free charging station of their site (Charge workflow, task queue
// maintenance) and return to the pool at Resume.
type Charging struct {
	// Threshold, percent: a robot released below it is sent charging and
	// gets no mission unless the spec sets interruptCharging. 0 = off.
	Threshold float64 `yaml:"threshold" env:"THRESHOLD"`
	// Resume, percent: a charging robot is released at or above it.
	Resume float64 `yaml:"resume" env:"RESUME"`
}

// Simulates reports whether the local stack runs a virtual robot for
// robotID (see Sim.Robots).
func (s Sim) Simulates(robotID string) bool {
	switch strings.TrimSpace(s.Robots) {
	case "", "all":
		return true
	case "none":
		return false
	}
	for _, id := range strings.Split(s.Robots, ",") {
		if strings.TrimSpace(id) == robotID {
			return true
		}
	}
	return false
}

// WMS configures the warehouse management systems (WMS clients) that start
// missions and hear back about them.
type WMS struct {
	// Timeout bounds one webhook POST.
	Timeout time.Duration `yaml:"timeout" env:"TIMEOUT"`
	// DeliveryTimeout is how long one mission event is retried (with
	// exponential backoff from 1 s to 1 min) before it is given up.
	DeliveryTimeout time.Duration `yaml:"deliveryTimeout" env:"DELIVERY_TIMEOUT"`
	// Clients are the WMS integrations, by name.
	Clients []WMSClient `yaml:"clients" env:"-"`
	// IngressAddr is where the REST ingress listens (host:port; "" = off):
	// POST /v1/missions and the mission updates for WMS that speak HTTP
	// (schemas/openapi.yaml), authenticated with each client's API key.
	IngressAddr string `yaml:"ingressAddr" env:"INGRESS_ADDR"`
	// IngressMaxBody bounds a request body, in bytes (larger: 413).
	IngressMaxBody int64 `yaml:"ingressMaxBody" env:"INGRESS_MAX_BODY"`
}

// MinAPIKeyLength is the shortest API key the REST ingress accepts, in
// characters (`starter wms new-key` makes 43: 32 random bytes, base64url).
const MinAPIKeyLength = 32

// WMSClient is one WMS integration. Its secrets are never in the file:
// SecretEnv names the environment variable that holds the webhook signing
// secret.
type WMSClient struct {
	// Name identifies the client in missions (MissionInput.Client), the
	// audit log and webhook deliveries: 1–64 of A-Z a-z 0-9 _ . -.
	Name string `yaml:"name"`
	// WebhookURL receives the mission events of the missions this client
	// started (CloudEvents, signed per Standard Webhooks); "" = none.
	WebhookURL string `yaml:"webhookURL"`
	// SecretEnv names the environment variable holding the signing
	// secret, "whsec_" + base64 of 24–64 random bytes (Standard Webhooks;
	// `starter wms new-secret` makes one). Required with WebhookURL.
	SecretEnv string `yaml:"secretEnv"`
	// Secret is the value of SecretEnv, read by Load.
	Secret string `yaml:"-"`
	// APIKeyEnv names the environment variable holding this client's API
	// key for the REST ingress (sent as "Authorization: Bearer <key>", at
	// least MinAPIKeyLength characters); "" = the client does not use the
	// ingress.
	APIKeyEnv string `yaml:"apiKeyEnv"`
	// APIKey is the value of APIKeyEnv, read by Load.
	APIKey string `yaml:"-"`
}

// siteName: a site map's name as a task queue suffix allows it.
var siteName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

var wmsClientName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// CheckWebhookSecret checks a Standard Webhooks signing secret: "whsec_"
// followed by the standard base64 of 24 to 64 bytes.
func CheckWebhookSecret(secret string) error {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return errors.New(`the secret must start with "whsec_" (Standard Webhooks)`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return errors.New(`the secret after "whsec_" is not standard base64`)
	}
	if len(key) < 24 || len(key) > 64 {
		return fmt.Errorf("the secret is %d bytes; want 24 to 64", len(key))
	}
	return nil
}

// WMSClient returns the client called name.
func (w WMS) Client(name string) (WMSClient, bool) {
	for _, c := range w.Clients {
		if c.Name == name {
			return c, true
		}
	}
	return WMSClient{}, false
}

// Artifacts is the OTA artifact store and the keys artifacts are signed with.
type Artifacts struct {
	// BaseURL is where robots and the ota worker download artifacts
	// (<file>, <file>.manifest.json, <file>.manifest.json.sig): an HTTP(S)
	// URL such as a cloud storage bucket; empty means the local stack
	// serves Dir on ServePort.
	BaseURL string `yaml:"baseURL" env:"BASE_URL"`
	// AllowedBaseURLs are other stores a rollout's artifact.baseUrl may
	// name; anything not under BaseURL or one of them is refused, so a
	// rollout cannot make the ota worker fetch an arbitrary URL.
	AllowedBaseURLs []string `yaml:"allowedBaseURLs" env:"ALLOWED_BASE_URLS"`
	// Dir is the local artifact directory the local stack serves and where
	// rollbacks look for earlier versions.
	Dir string `yaml:"dir" env:"DIR"`
	// ServePort is the local stack's artifact HTTP port.
	ServePort int `yaml:"servePort" env:"SERVE_PORT"`
	// URLQuery is a query string every artifact URL carries when the ota
	// worker fetches it or a robot is sent it (a store-wide presigned
	// token: an Azure container SAS, a CDN token). A secret: from
	// FLEETFLOW_ARTIFACTS_URL_QUERY only, never in histories (the
	// activities add it at the edge; activities.ArtifactStore.URLQuery).
	URLQuery string `yaml:"-" env:"URL_QUERY"`
	// TrustedKeys is a PEM public key file or a directory of *.pub files:
	// the keys release manifests must be signed with (the ota worker and the
	// virtual robots both verify).
	TrustedKeys string `yaml:"trustedKeys" env:"TRUSTED_KEYS"`
}

// Config is fleetflow's whole configuration.
type Config struct {
	Temporal   Temporal   `yaml:"temporal" env:"TEMPORAL"`
	TaskQueues TaskQueues `yaml:"taskQueues" env:"TASK_QUEUES"`
	MQTT       MQTT       `yaml:"mqtt" env:"MQTT"`
	Postgres   Postgres   `yaml:"postgres" env:"POSTGRES"`
	Site       Site       `yaml:"site" env:"SITE"`
	Worker     Worker     `yaml:"worker" env:"WORKER"`
	Robots     Robots     `yaml:"robots" env:"ROBOTS"`
	Charging   Charging   `yaml:"charging" env:"CHARGING"`
	Edge       Edge       `yaml:"edge" env:"EDGE"`
	Tracing    Tracing    `yaml:"tracing" env:"TRACING"`
	// Maintenance is condition-based maintenance (the yaml key is
	// maintenance; the task queue is taskQueues.maintenance).
	Maintenance Maintenance `yaml:"maintenance" env:"MAINTENANCE"`
	Sim         Sim         `yaml:"sim" env:"SIM"`
	WMS         WMS         `yaml:"wms" env:"WMS"`
	Artifacts   Artifacts   `yaml:"artifacts" env:"ARTIFACTS"`

	// Source is the file the configuration came from ("" = defaults only).
	Source string `yaml:"-" env:"-"`
}

// EnvPrefix starts every override: FLEETFLOW_<SECTION>_<FIELD>, e.g.
// FLEETFLOW_TEMPORAL_HOSTPORT, FLEETFLOW_MQTT_URL, FLEETFLOW_SIM_SPEED.
const EnvPrefix = "FLEETFLOW"

// Default returns the configuration of the embedded local stack.
func Default() Config {
	return Config{
		Temporal:   Temporal{HostPort: "127.0.0.1:7233", Namespace: "default", UIURL: "http://127.0.0.1:8233", DevServerPort: 7233, DevUIPort: 8233},
		TaskQueues: TaskQueues{Missions: "missions", RobotIO: "robot-io", OTA: "ota", Maintenance: "maintenance"},
		MQTT:       MQTT{EmbeddedPort: 1884, ClientID: "fleetflow"},
		Postgres:   Postgres{MaxConns: 10},
		Site:       Site{Name: "warehouse-a", MapsDir: "testdata/sites"},
		Worker: Worker{HTTPAddr: "127.0.0.1:9090", Bridge: true, BridgeFlushInterval: 50 * time.Millisecond, BridgeBatchSize: 500, WorkflowTaskPollers: 8, ReaperInterval: time.Minute, WorkflowCacheSize: 1000,
			Versioning: Versioning{DeploymentName: "fleetflow"}},
		Robots:      Robots{OrderAckTimeout: 10 * time.Second, OrderResends: 3, ConnectionGrace: 30 * time.Second},
		Charging:    Charging{Threshold: 30, Resume: 80},
		Maintenance: Maintenance{Triggers: MaintenanceTriggers{BatteryHealthBelow: 60, Errors: 200, DrivingHours: 500}, Diagnostics: true},
		Sim:         Sim{Speed: 2, ActionDuration: time.Second},
		WMS:         WMS{Timeout: 5 * time.Second, DeliveryTimeout: time.Hour, IngressMaxBody: 64 << 10},
		Artifacts:   Artifacts{Dir: "testdata/artifacts", ServePort: 8089, TrustedKeys: "testdata/keys/trusted"},
	}
}

// Load reads path (if it exists; "" = defaults only), applies environment
// overrides from env (os.Environ form, nil = the process environment) and
// validates. Errors name the file and the field.
func Load(path string, env []string) (Config, error) {
	cfg := Default()
	if path != "" {
		raw, err := os.ReadFile(path)
		switch {
		case err == nil:
			dec := yaml.NewDecoder(strings.NewReader(string(raw)))
			dec.KnownFields(true)
			if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
				return cfg, fmt.Errorf("%s: %w", path, err)
			}
			cfg.Source = path
		case errors.Is(err, os.ErrNotExist):
		default:
			return cfg, fmt.Errorf("%s: %w", path, err)
		}
	}
	if env == nil {
		env = os.Environ()
	}
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	if err := applyEnv(reflect.ValueOf(&cfg).Elem(), EnvPrefix, vars); err != nil {
		return cfg, err
	}
	if v, ok := vars["DATABASE_URL"]; ok {
		cfg.Postgres.URL = v
	}
	for i, c := range cfg.WMS.Clients {
		if c.SecretEnv != "" {
			cfg.WMS.Clients[i].Secret = vars[c.SecretEnv]
		}
		if c.APIKeyEnv != "" {
			cfg.WMS.Clients[i].APIKey = vars[c.APIKeyEnv]
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func applyEnv(v reflect.Value, prefix string, vars map[string]string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("env")
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + "_" + tag
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			if err := applyEnv(fv, name, vars); err != nil {
				return err
			}
			continue
		}
		s, ok := vars[name]
		if !ok {
			continue
		}
		if err := setValue(fv, s); err != nil {
			return fmt.Errorf("environment %s=%q: %w", name, s, err)
		}
	}
	return nil
}

func setValue(fv reflect.Value, s string) error {
	switch fv.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(s)
	case reflect.Slice:
		if fv.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported type %s", fv.Type())
		}
		// A comma-separated list (e.g. FLEETFLOW_EDGE_SITES=a,b); "" = none.
		var items []string
		for _, it := range strings.Split(s, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		fv.Set(reflect.ValueOf(items))
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		fv.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		fv.SetFloat(f)
	default:
		return fmt.Errorf("unsupported type %s", fv.Kind())
	}
	return nil
}

// Validate checks every field once and reports all problems, each naming
// the field as written in temporal.yaml and the file.
func (c Config) Validate() error {
	var p []string
	add := func(field, format string, a ...any) { p = append(p, field+": "+fmt.Sprintf(format, a...)) }
	if _, _, err := net.SplitHostPort(c.Temporal.HostPort); err != nil {
		add("temporal.hostPort", "%q is not host:port", c.Temporal.HostPort)
	}
	if c.Temporal.Namespace == "" {
		add("temporal.namespace", "must not be empty")
	}
	checkTLS := func(field string, t TLS) {
		if (t.CertFile == "") != (t.KeyFile == "") {
			add(field, "certFile and keyFile go together")
		}
		for _, f := range []string{t.CAFile, t.CertFile, t.KeyFile} {
			if f != "" {
				if _, err := os.Stat(f); err != nil {
					add(field, "%v", err)
				}
			}
		}
	}
	checkTLS("temporal.tls", c.Temporal.TLS)
	checkTLS("mqtt.tls", c.MQTT.TLS)
	for field, port := range map[string]int{"temporal.devServerPort": c.Temporal.DevServerPort, "temporal.devUIPort": c.Temporal.DevUIPort, "mqtt.embeddedPort": c.MQTT.EmbeddedPort, "postgres.devPort": c.Postgres.DevPort} {
		if port < 0 || port > 65535 {
			add(field, "%d is not a port", port)
		}
	}
	for field, q := range map[string]string{"taskQueues.missions": c.TaskQueues.Missions, "taskQueues.robotIO": c.TaskQueues.RobotIO, "taskQueues.ota": c.TaskQueues.OTA, "taskQueues.maintenance": c.TaskQueues.Maintenance} {
		if q == "" {
			add(field, "must not be empty")
		}
	}
	if c.MQTT.URL != "" {
		u, err := url.Parse(c.MQTT.URL)
		if err != nil || u.Host == "" || !map[string]bool{"tcp": true, "mqtt": true, "ssl": true, "tls": true, "mqtts": true, "ws": true, "wss": true}[u.Scheme] {
			add("mqtt.url", "%q is not a broker URL like tcp://127.0.0.1:1883", c.MQTT.URL)
		}
	}
	if c.Postgres.URL != "" {
		if u, err := url.Parse(c.Postgres.URL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			add("DATABASE_URL", "is not a postgres:// URL")
		}
	}
	if c.Postgres.MaxConns < 1 {
		add("postgres.maxConns", "must be at least 1")
	}
	if c.Site.Name == "" {
		add("site.name", "must not be empty")
	}
	for i, s := range c.Edge.Sites {
		if !siteName.MatchString(s) {
			add(fmt.Sprintf("edge.sites[%d]", i), "%q is not a site name (1–64 of A-Z a-z 0-9 _ . -)", s)
		}
	}
	if c.Robots.OrderAckTimeout <= 0 {
		add("robots.orderAckTimeout", "must be positive")
	}
	if c.Robots.ConnectionGrace <= 0 {
		add("robots.connectionGrace", "must be positive")
	}
	if c.Charging.Threshold < 0 || c.Charging.Threshold > 100 {
		add("charging.threshold", "%v%% outside 0–100", c.Charging.Threshold)
	}
	if c.Charging.Threshold > 0 && (c.Charging.Resume <= c.Charging.Threshold || c.Charging.Resume > 100) {
		add("charging.resume", "%v%% must be above charging.threshold (%v%%) and at most 100", c.Charging.Resume, c.Charging.Threshold)
	}
	if t := c.Maintenance.Triggers; t.BatteryHealthBelow < 0 || t.BatteryHealthBelow > 100 {
		add("maintenance.triggers.batteryHealthBelow", "%v%% outside 0–100", t.BatteryHealthBelow)
	}
	if t := c.Maintenance.Triggers; t.Errors < 0 || t.DrivingHours < 0 {
		add("maintenance.triggers", "errors and drivingHours must not be negative")
	}
	if c.Temporal.PayloadKey != "" {
		if _, err := codec.ParseKey(c.Temporal.PayloadKey); err != nil {
			add("FLEETFLOW_TEMPORAL_PAYLOAD_KEY", "%v", err)
		}
	}
	if v := c.Worker.Versioning; v.BuildID != "" && v.DeploymentName == "" {
		add("worker.versioning.deploymentName", "must not be empty with a buildID")
	}
	if f := c.Worker.LogFormat; f != "" && f != "text" && f != "json" {
		add("worker.logFormat", "%q: want text or json", f)
	}
	if c.Sim.Battery < 0 || c.Sim.Battery > 100 {
		add("sim.battery", "%v%% outside 0–100", c.Sim.Battery)
	}
	if c.Robots.OrderResends < 0 {
		add("robots.orderResends", "%d must not be negative", c.Robots.OrderResends)
	}
	if r := strings.TrimSpace(c.Sim.Robots); r != "" && r != "all" && r != "none" {
		for _, id := range strings.Split(r, ",") {
			if m, s, ok := strings.Cut(strings.TrimSpace(id), "/"); !ok || m == "" || s == "" {
				add("sim.robots", "%q: want all, none or a comma-separated list of manufacturer/serialNumber", id)
			}
		}
	}
	if c.Sim.Speed < 0 {
		add("sim.speed", "%v m/s must not be negative", c.Sim.Speed)
	}
	if c.Worker.BridgeBatchSize < 1 {
		add("worker.bridgeBatchSize", "must be at least 1")
	}
	if c.Worker.WorkflowTaskPollers < 2 {
		add("worker.workflowTaskPollers", "%d must be at least 2 (one sticky and one normal poll)", c.Worker.WorkflowTaskPollers)
	}
	if c.Worker.ReaperInterval < 0 || (c.Worker.ReaperInterval > 0 && c.Worker.ReaperInterval < time.Second) {
		add("worker.reaperInterval", "%s: want 0 (off) or at least 1s", c.Worker.ReaperInterval)
	}
	if c.Worker.WorkflowCacheSize < 1 {
		add("worker.workflowCacheSize", "%d must be at least 1", c.Worker.WorkflowCacheSize)
	}
	if c.Worker.BridgeFlushInterval <= 0 {
		add("worker.bridgeFlushInterval", "must be positive")
	}
	if c.WMS.Timeout <= 0 {
		add("wms.timeout", "must be positive")
	}
	if c.WMS.DeliveryTimeout < time.Second {
		add("wms.deliveryTimeout", "%s: want at least 1s", c.WMS.DeliveryTimeout)
	}
	if c.WMS.IngressAddr != "" {
		if _, _, err := net.SplitHostPort(c.WMS.IngressAddr); err != nil {
			add("wms.ingressAddr", "%q: want host:port", c.WMS.IngressAddr)
		}
	}
	if c.WMS.IngressAddr != "" && !slices.ContainsFunc(c.WMS.Clients, func(cl WMSClient) bool { return cl.APIKeyEnv != "" }) {
		add("wms.ingressAddr", "the REST ingress needs at least one wms.clients entry with apiKeyEnv (it never runs open)")
	}
	if c.WMS.IngressMaxBody < 1024 {
		add("wms.ingressMaxBody", "%d: want at least 1024 bytes", c.WMS.IngressMaxBody)
	}
	seen := map[string]bool{}
	keys := map[string]string{}
	for i, cl := range c.WMS.Clients {
		field := fmt.Sprintf("wms.clients[%d]", i)
		if !wmsClientName.MatchString(cl.Name) {
			add(field+".name", "%q: want 1–64 of A-Z a-z 0-9 _ . -", cl.Name)
		} else if seen[cl.Name] {
			add(field+".name", "%q is used twice", cl.Name)
		}
		seen[cl.Name] = true
		if cl.APIKeyEnv != "" {
			switch {
			case cl.APIKey == "":
				add(field+".apiKeyEnv", "environment variable %s is not set or empty", cl.APIKeyEnv)
			case len(cl.APIKey) < MinAPIKeyLength:
				add(field+".apiKeyEnv", "%s: the key is %d characters; want at least %d (starter wms new-key)", cl.APIKeyEnv, len(cl.APIKey), MinAPIKeyLength)
			case keys[cl.APIKey] != "":
				add(field+".apiKeyEnv", "%s: the same key as client %q; a key names one client", cl.APIKeyEnv, keys[cl.APIKey])
			default:
				keys[cl.APIKey] = cl.Name
			}
		}
		if cl.WebhookURL == "" {
			continue
		}
		if u, err := url.Parse(cl.WebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(field+".webhookURL", "%q is not an http(s) URL", cl.WebhookURL)
		}
		switch {
		case cl.SecretEnv == "":
			add(field+".secretEnv", "required with webhookURL: webhooks are always signed")
		case cl.Secret == "":
			add(field+".secretEnv", "environment variable %s is not set or empty", cl.SecretEnv)
		default:
			if err := CheckWebhookSecret(cl.Secret); err != nil {
				add(field+".secretEnv", "%s: %v", cl.SecretEnv, err)
			}
		}
	}
	if c.Artifacts.BaseURL != "" {
		if u, err := url.Parse(c.Artifacts.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("artifacts.baseURL", "%q is not an http(s) URL", c.Artifacts.BaseURL)
		}
	}
	for i, u := range append([]string{c.Artifacts.BaseURL}, c.Artifacts.AllowedBaseURLs...) {
		if strings.ContainsAny(u, "?#") {
			field := "artifacts.baseURL"
			if i > 0 {
				field = fmt.Sprintf("artifacts.allowedBaseURLs[%d]", i-1)
			}
			add(field, "carries a query string or fragment: a store's presigned token is a secret and goes in FLEETFLOW_ARTIFACTS_URL_QUERY (it would land in workflow histories)")
		}
	}
	if q := c.Artifacts.URLQuery; strings.HasPrefix(q, "?") || strings.ContainsAny(q, "# ") {
		add("FLEETFLOW_ARTIFACTS_URL_QUERY", "must be a query string without the leading ? (e.g. sv=…&sig=…)")
	}
	if c.Artifacts.BaseURL == "" && (c.Artifacts.ServePort < 0 || c.Artifacts.ServePort > 65535) {
		add("artifacts.servePort", "%d is not a port", c.Artifacts.ServePort)
	}
	if c.Artifacts.TrustedKeys == "" {
		add("artifacts.trustedKeys", "must name a public key file or directory (rollouts verify every artifact)")
	}
	if len(p) == 0 {
		return nil
	}
	src := c.Source
	if src == "" {
		src = "configuration"
	}
	return fmt.Errorf("%s is invalid:\n  %s", src, strings.Join(p, "\n  "))
}

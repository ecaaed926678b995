package config

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadFileAndEnv(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "temporal.yaml")
	os.WriteFile(p, []byte("temporal:\n  hostPort: temporal.example:7233\n  namespace: prod\nsim:\n  speed: 1.5\n"), 0o644)
	cfg, err := Load(p, []string{"FLEETFLOW_SIM_SPEED=0", "FLEETFLOW_WORKER_BRIDGE_FLUSH_INTERVAL=10ms", "DATABASE_URL=postgres://u:secret@db/ff", "FLEETFLOW_MQTT_PASSWORD=pw"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Temporal.HostPort != "temporal.example:7233" || cfg.Temporal.Namespace != "prod" {
		t.Errorf("file values not applied: %+v", cfg.Temporal)
	}
	if cfg.Sim.Speed != 0 {
		t.Errorf("env override of sim.speed: got %v", cfg.Sim.Speed)
	}
	if cfg.Worker.BridgeFlushInterval != 10*time.Millisecond {
		t.Errorf("duration override: got %v", cfg.Worker.BridgeFlushInterval)
	}
	if cfg.Postgres.URL != "postgres://u:secret@db/ff" || cfg.MQTT.Password != "pw" {
		t.Errorf("secrets from env not applied")
	}
}

func TestSecretsNotFromFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "temporal.yaml")
	os.WriteFile(p, []byte("mqtt:\n  password: leaked\n"), 0o644)
	if _, err := Load(p, []string{}); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("a password in the file must be refused, got %v", err)
	}
}

func TestValidationNamesFields(t *testing.T) {
	p := filepath.Join(t.TempDir(), "temporal.yaml")
	os.WriteFile(p, []byte("temporal:\n  hostPort: nope\nmqtt:\n  url: http//x\nsim:\n  speed: -1\n"), 0o644)
	_, err := Load(p, []string{"FLEETFLOW_POSTGRES_MAX_CONNS=0"})
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{p, "temporal.hostPort", "mqtt.url", "sim.speed", "postgres.maxConns"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if _, err := Load("", []string{"FLEETFLOW_SIM_SPEED=fast"}); err == nil || !strings.Contains(err.Error(), "FLEETFLOW_SIM_SPEED") {
		t.Errorf("bad env value must name the variable, got %v", err)
	}
}

func TestRepoConfigIsValid(t *testing.T) {
	if _, err := Load("../../temporal.yaml", []string{}); err != nil {
		t.Fatal(err)
	}
}

func TestWMSClients(t *testing.T) {
	good := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	p := filepath.Join(t.TempDir(), "temporal.yaml")
	os.WriteFile(p, []byte(`wms:
  clients:
    - {name: acme, webhookURL: "https://wms.example/events", secretEnv: ACME_SECRET}
    - {name: quiet}
`), 0o644)
	cfg, err := Load(p, []string{"ACME_SECRET=" + good})
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := cfg.WMS.Client("acme"); !ok || c.Secret != good || c.WebhookURL != "https://wms.example/events" {
		t.Fatalf("acme: %+v %v", c, ok)
	}
	if _, ok := cfg.WMS.Client("nobody"); ok {
		t.Fatal("unknown client found")
	}
	for name, tc := range map[string]struct{ yaml, env, want string }{
		"no secretEnv": {`[{name: a, webhookURL: "https://x/e"}]`, "", "wms.clients[0].secretEnv: required with webhookURL"},
		"secret unset": {`[{name: a, webhookURL: "https://x/e", secretEnv: S}]`, "", "environment variable S is not set"},
		"no prefix":    {`[{name: a, webhookURL: "https://x/e", secretEnv: S}]`, "S=hunter2hunter2hunter2hunter2", `must start with "whsec_"`},
		"short secret": {`[{name: a, webhookURL: "https://x/e", secretEnv: S}]`, "S=whsec_" + base64.StdEncoding.EncodeToString([]byte("short")), "5 bytes; want 24 to 64"},
		"bad url":      {`[{name: a, webhookURL: "ftp://x/e", secretEnv: S}]`, "S=" + good, `wms.clients[0].webhookURL: "ftp://x/e" is not an http(s) URL`},
		"bad name":     {`[{name: "a b"}]`, "", `wms.clients[0].name: "a b"`},
		"duplicate":    {`[{name: a}, {name: a}]`, "", `wms.clients[1].name: "a" is used twice`},
	} {
		os.WriteFile(p, []byte("wms:\n  clients: "+tc.yaml+"\n"), 0o644)
		_, err := Load(p, []string{tc.env})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q, got %v", name, tc.want, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error leaks the secret: %v", name, err)
		}
	}
}

// REST ingress: API keys come from the environment, are long enough and
// name one client; an ingress address with no keyed client is refused.
func TestWMSIngress(t *testing.T) {
	key := strings.Repeat("k", MinAPIKeyLength)
	p := filepath.Join(t.TempDir(), "temporal.yaml")
	os.WriteFile(p, []byte("wms:\n  ingressAddr: 127.0.0.1:8080\n  clients: [{name: a, apiKeyEnv: A_KEY}]\n"), 0o644)
	cfg, err := Load(p, []string{"A_KEY=" + key})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := cfg.WMS.Client("a"); c.APIKey != key || cfg.WMS.IngressAddr != "127.0.0.1:8080" || cfg.WMS.IngressMaxBody != 64<<10 {
		t.Fatalf("got %+v", cfg.WMS)
	}
	for name, tc := range map[string]struct{ yaml, env, want string }{
		"key unset":   {"clients: [{name: a, apiKeyEnv: K}]", "", "wms.clients[0].apiKeyEnv: environment variable K is not set"},
		"short key":   {"clients: [{name: a, apiKeyEnv: K}]", "K=short", "the key is 5 characters; want at least 32"},
		"shared key":  {"clients: [{name: a, apiKeyEnv: K}, {name: b, apiKeyEnv: K}]", "K=" + key, `wms.clients[1].apiKeyEnv: K: the same key as client "a"`},
		"open":        {"ingressAddr: 127.0.0.1:8080\n  clients: [{name: a}]", "", "wms.ingressAddr: the REST ingress needs at least one wms.clients entry with apiKeyEnv"},
		"bad address": {"ingressAddr: localhost\n  clients: [{name: a, apiKeyEnv: K}]", "K=" + key, `wms.ingressAddr: "localhost": want host:port`},
		"small body":  {"ingressMaxBody: 10", "", "wms.ingressMaxBody: 10: want at least 1024 bytes"},
	} {
		os.WriteFile(p, []byte("wms:\n  "+tc.yaml+"\n"), 0o644)
		_, err := Load(p, []string{tc.env})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q, got %v", name, tc.want, err)
		}
	}
}

func TestEdgeSites(t *testing.T) {
	cfg, err := Load("", []string{"FLEETFLOW_EDGE_SITES=warehouse-a,warehouse-b"})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Edge.Has("warehouse-b") || cfg.Edge.Has("warehouse-c") {
		t.Fatalf("edge.sites from the environment: %v", cfg.Edge.Sites)
	}
	if q := cfg.TaskQueues.RobotIOFor("warehouse-b"); q != "robot-io-warehouse-b" {
		t.Fatalf("robot I/O queue of warehouse-b: %q", q)
	}
	p := filepath.Join(t.TempDir(), "temporal.yaml")
	os.WriteFile(p, []byte("edge:\n  sites: [ok-site, \"bad site/1\"]\n"), 0o644)
	if _, err := Load(p, []string{}); err == nil || !strings.Contains(err.Error(), "edge.sites[1]") {
		t.Fatalf("a site name a task queue cannot carry must be refused, naming the field: %v", err)
	}
}

func TestVersioningFromEnvironment(t *testing.T) {
	cfg, err := Load("", []string{"FLEETFLOW_WORKER_VERSIONING_BUILD_ID=0.2.0"})
	if err != nil {
		t.Fatal(err)
	}
	if v := cfg.Worker.Versioning; v.BuildID != "0.2.0" || v.DeploymentName != "fleetflow" || v.SetCurrentIfNone {
		t.Fatalf("versioning from the image's environment (Dockerfile): %+v", v)
	}
	if _, err := Load("", []string{"FLEETFLOW_WORKER_VERSIONING_BUILD_ID=x", "FLEETFLOW_WORKER_VERSIONING_DEPLOYMENT_NAME="}); err == nil ||
		!strings.Contains(err.Error(), "worker.versioning.deploymentName") {
		t.Fatalf("a build ID without a deployment name: %v", err)
	}
}

// A store's presigned token is a secret from the environment: a base URL
// that carries one would put it in every workflow history.
func TestArtifactTokenOnlyFromTheEnvironment(t *testing.T) {
	p := filepath.Join(t.TempDir(), "temporal.yaml")
	os.WriteFile(p, []byte("artifacts:\n  baseURL: https://acct.blob.core.windows.net/fleetflow?sv=1&sig=abc\n"), 0o644)
	if _, err := Load(p, []string{}); err == nil || !strings.Contains(err.Error(), "artifacts.baseURL") || !strings.Contains(err.Error(), "FLEETFLOW_ARTIFACTS_URL_QUERY") {
		t.Fatalf("a token in artifacts.baseURL must be refused, naming where it goes: %v", err)
	}
	cfg, err := Load("", []string{"FLEETFLOW_ARTIFACTS_URL_QUERY=sv=1&sig=abc"})
	if err != nil || cfg.Artifacts.URLQuery != "sv=1&sig=abc" {
		t.Fatalf("token from the environment: %q %v", cfg.Artifacts.URLQuery, err)
	}
	if _, err := Load("", []string{"FLEETFLOW_ARTIFACTS_URL_QUERY=?sig=abc"}); err == nil {
		t.Fatal("a token with a leading ? must be refused")
	}
}

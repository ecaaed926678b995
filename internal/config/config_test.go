package config

import (
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

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A real fleet from nothing, as a platform engineer would: migrate a new
// database, apply the site map, apply it again, drop a robot from the file.
func TestMigrateAndFleetApply(t *testing.T) {
	t.Setenv("DATABASE_URL", freshDatabase(t))
	cfgFile := filepath.Join(t.TempDir(), "absent.yaml")
	exec := func(args ...string) (string, error) {
		root := newRootCmd(&globalFlags{})
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"--config", cfgFile, "-o", "json"}, args...))
		err := root.ExecuteContext(context.Background())
		return out.String(), err
	}
	out, err := exec("migrate")
	require.NoError(t, err, out)
	var v struct{ Version int64 }
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	require.GreaterOrEqual(t, v.Version, int64(10))
	out, err = exec("migrate")
	require.NoError(t, err, "migrating twice is a no-op: %s", out)

	type result struct {
		Added, Updated, Unchanged, Retired, Kept []string
	}
	apply := func(file string, extra ...string) result {
		out, err := exec(append([]string{"fleet", "apply", "-f", file}, extra...)...)
		require.NoError(t, err, out)
		var r result
		require.NoError(t, json.Unmarshal([]byte(out), &r), out)
		return r
	}
	site := "../testdata/sites/warehouse-a.yaml"
	require.Len(t, apply(site).Added, 6)
	require.Len(t, apply(site).Unchanged, 6, "applying twice changes nothing")

	// The file without one robot: it is retired (a dry run first).
	raw, err := os.ReadFile(site)
	require.NoError(t, err)
	var kept []string
	for _, l := range strings.Split(string(raw), "\n") {
		if !strings.Contains(l, "serialNumber: LFT-03") {
			kept = append(kept, l)
		}
	}
	smaller := filepath.Join(t.TempDir(), "warehouse-a.yaml")
	require.NoError(t, os.WriteFile(smaller, []byte(strings.Join(kept, "\n")), 0o644))
	require.Equal(t, []string{"robotix/LFT-03"}, apply(smaller, "--dry-run").Retired)
	require.Equal(t, []string{"robotix/LFT-03"}, apply(smaller).Retired)
	require.Empty(t, apply(smaller).Retired)

	// A broken file starts nothing and says what is wrong.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("site: x\nnodes: []\n"), 0o644))
	out, err = exec("fleet", "apply", "-f", bad)
	require.Error(t, err, out)
}

// temporal setup against a real Temporal server with nothing registered:
// the namespace and the search attributes are made, and a second run
// changes nothing.
func TestTemporalSetup(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Temporal dev server")
	}
	port, ui := freePort(t), freePort(t)
	srv := osexec.Command("../bin/temporal", "server", "start-dev", "--headless", "--port", strconv.Itoa(port), "--ui-port", strconv.Itoa(ui), "--log-level", "error")
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Process.Kill(); _, _ = srv.Process.Wait() })
	t.Setenv("FLEETFLOW_TEMPORAL_HOSTPORT", fmt.Sprintf("127.0.0.1:%d", port))
	t.Setenv("FLEETFLOW_TEMPORAL_NAMESPACE", "fleetflow-setup")
	cfgFile := filepath.Join(t.TempDir(), "absent.yaml")
	exec := func() (map[string]any, error) {
		root := newRootCmd(&globalFlags{})
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs([]string{"--config", cfgFile, "-o", "json", "temporal", "setup"})
		err := root.ExecuteContext(context.Background())
		var res map[string]any
		if err == nil {
			err = json.Unmarshal(out.Bytes(), &res)
		}
		return res, err
	}
	var res map[string]any
	require.Eventually(t, func() bool { // the server takes a few seconds to start
		var err error
		res, err = exec()
		return err == nil
	}, time.Minute, time.Second)
	require.Equal(t, []any{"namespace fleetflow-setup registered", "search attributes added: MissionState, Priority, RobotId, RolloutId, Site, WmsClient"}, res["changes"])
	res, err := exec()
	require.NoError(t, err)
	require.Nil(t, res["changes"], "a second run changes nothing")
}

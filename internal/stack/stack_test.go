package stack

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
)

// temporalBinary is the pinned CLI at the module root; tests that start real
// processes skip without it, except on CI where it must exist.
func temporalBinary(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../bin/temporal")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "true" {
			t.Skipf("%s missing (build it with `make bin/temporal`)", p)
		}
		t.Fatalf("%s missing on CI: %v", p, err)
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := pickFreePort(map[int]bool{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func portOf(t *testing.T, raw string) int {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("no port in %q", raw)
	}
	return p
}

func TestStartStopEmbedded(t *testing.T) {
	bin := temporalBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	start := time.Now()
	st, err := Start(ctx, Options{
		TemporalBinary:    bin,
		TemporalPort:      freePort(t),
		TemporalNamespace: "fleetflow-test",
		SearchAttributes:  map[string]string{"RobotId": "Keyword", "Priority": "Int"},
		Headless:          true,
		MQTTPort:          0,
		PGPort:            0,
		Logger:            testLogger(t),
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer st.Stop()
	t.Logf("stack up in %s: temporal=%s mqtt=%s db=%s state=%s", time.Since(start), st.TemporalAddress, st.MQTTURL, st.DatabaseURL, st.StateDir)
	if st.UIURL != "" {
		t.Errorf("UIURL = %q, want empty when headless", st.UIURL)
	}

	// Temporal: namespace and search attributes.
	c, err := client.DialContext(ctx, client.Options{
		HostPort: st.TemporalAddress, Namespace: "fleetflow-test",
		Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		t.Fatalf("dial temporal: %v", err)
	}
	if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "fleetflow-test"}); err != nil {
		t.Errorf("namespace fleetflow-test: %v", err)
	}
	sa, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "fleetflow-test"})
	if err != nil {
		t.Fatalf("ListSearchAttributes: %v", err)
	}
	want := map[string]enums.IndexedValueType{
		"RobotId":  enums.INDEXED_VALUE_TYPE_KEYWORD,
		"Priority": enums.INDEXED_VALUE_TYPE_INT,
	}
	for name, typ := range want {
		if got, ok := sa.GetCustomAttributes()[name]; !ok || got != typ {
			t.Errorf("search attribute %s = %v (registered %v), want %v", name, got, ok, typ)
		}
	}
	c.Close()

	// MQTT: publish and receive through the embedded broker.
	got := make(chan string, 1)
	opts := paho.NewClientOptions().AddBroker(st.MQTTURL).SetClientID("stack-test").
		SetOrderMatters(false).SetConnectTimeout(3 * time.Second)
	mc := paho.NewClient(opts)
	if tok := mc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt connect to %s: %v", st.MQTTURL, tok.Error())
	}
	topic := "uagv/v2/test/robot1/state"
	if tok := mc.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt subscribe: %v", tok.Error())
	}
	if tok := mc.Publish(topic, 1, false, "hello"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt publish: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m != "hello" {
			t.Errorf("mqtt payload = %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Error("mqtt message not received")
	}
	mc.Disconnect(100)

	// PostgreSQL: ping the fleetflow database.
	conn, err := pgx.Connect(ctx, st.DatabaseURL)
	if err != nil {
		t.Fatalf("pgx connect %s: %v", st.DatabaseURL, err)
	}
	if err := conn.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil || db != "fleetflow" {
		t.Errorf("current_database() = %q, %v", db, err)
	}
	conn.Close(ctx)

	// Stop: ports free again, state dir gone; a second Stop is harmless.
	ports := map[string]int{
		"temporal": portOf(t, "tcp://"+st.TemporalAddress),
		"mqtt":     portOf(t, st.MQTTURL),
		"postgres": portOf(t, st.DatabaseURL),
	}
	stopStart := time.Now()
	st.Stop()
	st.Stop()
	t.Logf("stopped in %s", time.Since(stopStart))
	for what, p := range ports {
		if err := checkPortFree(p); err != nil {
			t.Errorf("%s port %d still in use after Stop: %v", what, p, err)
		}
	}
	if _, err := os.Stat(st.StateDir); !os.IsNotExist(err) {
		t.Errorf("state dir %s still there after Stop (%v)", st.StateDir, err)
	}
}

func TestStartFailsOnOccupiedPort(t *testing.T) {
	bin := temporalBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	for _, tc := range []struct {
		name string
		opts Options
		what string
	}{
		{"temporal", Options{TemporalPort: port, Headless: true}, "Temporal frontend"},
		{"ui", Options{TemporalPort: freePort(t), UIPort: port}, "Temporal Web UI"},
		{"mqtt", Options{TemporalPort: freePort(t), Headless: true, MQTTPort: port}, "embedded MQTT broker"},
		{"postgres", Options{TemporalPort: freePort(t), Headless: true, PGPort: port}, "throwaway PostgreSQL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.TemporalBinary = bin
			start := time.Now()
			st, err := Start(context.Background(), tc.opts)
			if err == nil {
				st.Stop()
				t.Fatal("Start succeeded on an occupied port")
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Start took %s to fail", d)
			}
			msg := err.Error()
			for _, want := range []string{"port " + strconv.Itoa(port), tc.what, "already in use"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
		})
	}
}

func TestStartFailsOnUnreachableExternals(t *testing.T) {
	bin := temporalBinary(t)
	dead := freePort(t) // nothing listens here
	for _, tc := range []struct {
		name string
		opts Options
		want []string
	}{
		{"mqtt refused", Options{MQTTURL: "tcp://127.0.0.1:" + strconv.Itoa(dead)}, []string{"MQTT broker", "not reachable", "mosquitto -d"}},
		{"mqtt bogus scheme", Options{MQTTURL: "bogus://nowhere"}, []string{"MQTT URL", "unsupported scheme", "embedded broker"}},
		{"database", Options{DatabaseURL: "postgres://postgres:secret@127.0.0.1:" + strconv.Itoa(dead) + "/x?sslmode=disable"}, []string{"PostgreSQL", "not reachable", "DATABASE_URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.TemporalBinary = bin
			tc.opts.TemporalPort = freePort(t)
			tc.opts.Headless = true
			start := time.Now()
			st, err := Start(context.Background(), tc.opts)
			if err == nil {
				st.Stop()
				t.Fatal("Start succeeded")
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("Start took %s to fail", d)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestStartMissingBinary(t *testing.T) {
	_, err := Start(context.Background(), Options{TemporalBinary: filepath.Join(t.TempDir(), "temporal")})
	if err == nil || !strings.Contains(err.Error(), "make bin/temporal") {
		t.Fatalf("error = %v, want one naming `make bin/temporal`", err)
	}
}

func TestTemporalDevServerArgs(t *testing.T) {
	got := TemporalDevServerArgs(Options{
		TemporalNamespace: "ff",
		SearchAttributes:  map[string]string{"RobotId": "Keyword", "Priority": "Int"},
		TemporalDBFile:    "/tmp/t.db",
	})
	want := []string{
		"server", "start-dev", "--ip", "127.0.0.1", "--port", "7233", "--ui-port", "8233",
		"--namespace", "ff", "--db-filename", "/tmp/t.db",
		"--search-attribute", "Priority=Int", "--search-attribute", "RobotId=Keyword",
		"--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
		"--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
		"--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
		"--log-level", "warn", "--color", "never",
	}
	if !slices.Equal(got, want) {
		t.Errorf("args =\n%q\nwant\n%q", got, want)
	}
	got = TemporalDevServerArgs(Options{TemporalPort: 7300, Headless: true, TemporalHTTPPort: 7301, TemporalMetricsPort: 7302})
	for _, want := range [][]string{{"--port", "7300"}, {"--headless"}, {"--http-port", "7301"}, {"--metrics-port", "7302"}} {
		if i := slices.Index(got, want[0]); i < 0 || (len(want) == 2 && got[i+1] != want[1]) {
			t.Errorf("args %q lack %q", got, want)
		}
	}
	if slices.Contains(got, "--ui-port") || slices.Contains(got, "--namespace") {
		t.Errorf("headless default-namespace args %q have --ui-port or --namespace", got)
	}
}

// A throwaway server whose picked port was taken meanwhile starts on
// another; a configured port is tried once; other errors end at once.
func TestStartOnFreePortRetriesATakenPort(t *testing.T) {
	taken := errors.New("throwaway PostgreSQL exited during start: could not bind IPv4 address 127.0.0.1: Address already in use")
	var tried []int
	next := 41000
	pick := func() (int, error) { next++; return next, nil }
	start := func(fail int) func(int) error {
		return func(port int) error {
			tried = append(tried, port)
			if len(tried) <= fail {
				return taken
			}
			return nil
		}
	}
	port, err := startOnFreePort(41000, pick, testLogger(t), start(2))
	if err != nil || port != 41002 || len(tried) != 3 {
		t.Fatalf("port %d, err %v, tried %v; want 41002 on the third try", port, err, tried)
	}
	tried = nil
	if _, err := startOnFreePort(41000, pick, testLogger(t), start(5)); err == nil || len(tried) != 3 {
		t.Fatalf("err %v, tried %v; want the error after three tries", err, tried)
	}
	tried = nil
	if _, err := startOnFreePort(5432, nil, testLogger(t), start(1)); err == nil || len(tried) != 1 {
		t.Fatalf("configured port: err %v, tried %v; want one try", err, tried)
	}
	tried = nil
	other := func(port int) error { tried = append(tried, port); return errors.New("initdb failed") }
	if _, err := startOnFreePort(41000, pick, testLogger(t), other); err == nil || len(tried) != 1 {
		t.Fatalf("other error: err %v, tried %v; want one try", err, tried)
	}
}

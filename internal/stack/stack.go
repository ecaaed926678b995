// Package stack runs fleetflow's embedded local stack without Docker: the
// pinned Temporal dev server (`temporal server start-dev`, built into ./bin
// by `make bin/temporal`), an MQTT broker and a PostgreSQL database.
//
// Each piece is either external or embedded:
//
//   - Temporal always runs as a child process of the pinned CLI, in its own
//     process group, with its output in a log file under the state
//     directory. It is started with dynamic config values that cut the
//     per-hop latency of the single-shard dev server from ~50 ms to ~7 ms.
//   - MQTT uses the broker at Options.MQTTURL when set (Mosquitto on the
//     development and CI machines), else an in-process mochi-mqtt broker that
//     allows everyone.
//   - PostgreSQL uses Options.DatabaseURL when set, else a throwaway cluster
//     created with the server binaries found on the machine (initdb and
//     postgres; Debian keeps them in /usr/lib/postgresql/<version>/bin). When
//     run as root the cluster runs as the unprivileged `postgres` (or
//     `nobody`) user, because PostgreSQL refuses to run as root.
//
// Start checks everything it can before starting anything (binaries, ports,
// external services), waits until every piece answers, and on any failure
// stops what it started and returns an error that says what is missing and
// how to fix it. Stop stops everything Start started and removes the
// temporary state directory.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// Defaults used when the corresponding Options field is zero.
const (
	DefaultTemporalBinary    = "./bin/temporal"
	DefaultTemporalPort      = 7233
	DefaultTemporalNamespace = "default"
	// DefaultMQTTPort is the conventional MQTT port. Options.MQTTPort does not
	// default to it (0 picks a free port there); callers that want it pass it.
	DefaultMQTTPort = 1883
)

// Environment variables named in error messages: the internal/config
// overrides that move the local stack's ports and services.
const (
	envTemporalPort = "FLEETFLOW_TEMPORAL_DEV_SERVER_PORT"
	envUIPort       = "FLEETFLOW_TEMPORAL_DEV_UI_PORT"
	envMQTTPort     = "FLEETFLOW_MQTT_EMBEDDED_PORT"
	envMQTTURL      = "FLEETFLOW_MQTT_URL"
	envPGPort       = "FLEETFLOW_POSTGRES_DEV_PORT"
	envDatabaseURL  = "DATABASE_URL"
)

// Timeouts of the readiness checks and of Stop.
const (
	temporalReadyTimeout = 60 * time.Second
	postgresReadyTimeout = 30 * time.Second
	externalCheckTimeout = 3 * time.Second
	stopGrace            = 10 * time.Second
)

// Options says what to start. The zero value starts everything embedded:
// Temporal on 127.0.0.1:7233 with the Web UI on :8233, an in-process MQTT
// broker on a free port and a throwaway PostgreSQL cluster on a free port.
type Options struct {
	// TemporalBinary is the path of the pinned `temporal` CLI
	// (default "./bin/temporal", relative to the working directory).
	TemporalBinary string
	// TemporalPort is the dev server's frontend gRPC port (default 7233).
	TemporalPort int
	// UIPort is the Web UI port (default TemporalPort+1000, i.e. 8233).
	// Ignored when Headless.
	UIPort int
	// TemporalHTTPPort and TemporalMetricsPort are the dev server's HTTP API
	// and Prometheus /metrics ports. The dev server would otherwise pick
	// random ones itself; 0 picks a free one here so that it is known and
	// checked before start.
	TemporalHTTPPort    int
	TemporalMetricsPort int
	// TemporalNamespace is created at start (default "default", which
	// always exists).
	TemporalNamespace string
	// TemporalDBFile persists the dev server's state in this SQLite file;
	// "" keeps it in memory.
	TemporalDBFile string
	// SearchAttributes maps custom search attribute names to their types
	// ("Keyword", "Int", "Text", "Double", "Bool", "Datetime",
	// "KeywordList"); they are registered at start.
	SearchAttributes map[string]string
	// Headless turns the Web UI off.
	Headless bool

	// MQTTURL is an external broker (e.g. tcp://127.0.0.1:1883); "" runs an
	// embedded in-process broker.
	MQTTURL string
	// MQTTPort is the embedded broker's port on 127.0.0.1; 0 picks a free
	// one (see DefaultMQTTPort).
	MQTTPort int

	// DatabaseURL is an external PostgreSQL; "" creates a throwaway cluster.
	DatabaseURL string
	// PGPort is the throwaway cluster's port on 127.0.0.1; 0 picks a free one.
	PGPort int

	// StateDir holds the log files and throwaway data. "" creates a temporary
	// directory that Stop removes; a given directory is kept (with its logs),
	// only the throwaway database inside it is removed.
	StateDir string
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
}

// Stack is a running local stack. Its exported fields are the addresses to
// hand to workers, the bridge and the starter CLI.
type Stack struct {
	// TemporalAddress is the dev server's frontend, host:port.
	TemporalAddress string
	// UIURL is the Temporal Web UI, "" when headless.
	UIURL string
	// MQTTURL is the broker, tcp://host:port (embedded or external).
	MQTTURL string
	// DatabaseURL is the PostgreSQL database (throwaway or external).
	DatabaseURL string
	// StateDir holds the logs (temporal.log, postgres.log, initdb.log).
	StateDir string

	log         *slog.Logger
	opts        Options // as resolved by Start: what a restart starts again
	temporal    *proc
	broker      *mqtt.Server
	siteBrokers []*mqtt.Server // StartSiteBroker's, guarded by mu
	postgres    *proc
	pgDataDir   string
	pgServer    func() (*proc, error) // starts the throwaway cluster's server again
	mu          sync.Mutex            // guards temporal and postgres during restarts
	removeDirs  []string              // removed on Stop, after the processes are gone
	stopOnce    sync.Once
	stopTimeout time.Duration
}

// Start starts what opts asks for and waits until each piece is ready:
// Temporal answers CheckHealth and DescribeNamespace, the MQTT broker accepts
// TCP connections and PostgreSQL answers a ping. Before starting anything it
// checks the Temporal binary, every port it will bind and the external
// services, and fails fast with an error that says how to fix the problem.
// On any failure it stops what it started. ctx bounds the start only; the
// stack keeps running after ctx ends, until Stop.
func Start(ctx context.Context, opts Options) (st *Stack, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = withDefaults(opts)
	st = &Stack{log: log, stopTimeout: stopGrace}
	defer func() {
		if err != nil {
			st.Stop()
			st = nil
		}
	}()

	// Preflight: nothing is started until every check passes.
	bin, err := findTemporalBinary(opts.TemporalBinary)
	if err != nil {
		return st, err
	}
	opts.TemporalBinary = bin
	if opts.TemporalDBFile != "" {
		if opts.TemporalDBFile, err = filepath.Abs(opts.TemporalDBFile); err != nil {
			return st, err
		}
	}
	if err := checkPorts(opts); err != nil {
		return st, err
	}
	if opts.MQTTURL != "" {
		if err := checkExternalMQTT(ctx, opts.MQTTURL); err != nil {
			return st, err
		}
	}
	var pgBin string
	if opts.DatabaseURL != "" {
		if err := pingDatabase(ctx, opts.DatabaseURL, externalCheckTimeout); err != nil {
			return st, fmt.Errorf("PostgreSQL at %s (%s) is not reachable: %s — start it, fix %s, or unset %s to use a throwaway cluster",
				redactURL(opts.DatabaseURL), envDatabaseURL, compactErr(err), envDatabaseURL, envDatabaseURL)
		}
	} else {
		if pgBin, err = findPostgresBinaries(); err != nil {
			return st, err
		}
	}
	// Ports picked here are reserved against each other and left in
	// TIME_WAIT so that the dev server's own random picks avoid them.
	picked := map[int]bool{}
	for _, p := range []*int{&opts.TemporalHTTPPort, &opts.TemporalMetricsPort} {
		if *p == 0 {
			if *p, err = pickFreePort(picked); err != nil {
				return st, err
			}
		}
	}
	pgPortPicked := opts.DatabaseURL == "" && opts.PGPort == 0
	if pgPortPicked {
		if opts.PGPort, err = pickFreePort(picked); err != nil {
			return st, err
		}
	}

	// State directory.
	if opts.StateDir == "" {
		dir, err := os.MkdirTemp("", "fleetflow-stack-")
		if err != nil {
			return st, fmt.Errorf("creating the state directory: %w", err)
		}
		st.removeDirs = append(st.removeDirs, dir)
		// Reachable for the unprivileged user a throwaway cluster runs as.
		if err := os.Chmod(dir, 0o755); err != nil {
			return st, fmt.Errorf("creating the state directory: %w", err)
		}
		opts.StateDir = dir
	} else if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
		return st, fmt.Errorf("creating the state directory: %w", err)
	}
	if opts.StateDir, err = filepath.Abs(opts.StateDir); err != nil {
		return st, err
	}
	st.StateDir = opts.StateDir

	// The embedded broker binds first (in-process, instant), so that the dev
	// server's random internal ports cannot take its port.
	if opts.MQTTURL == "" {
		if err := st.startBroker(opts.MQTTPort); err != nil {
			return st, err
		}
	} else {
		st.MQTTURL = opts.MQTTURL
		log.Info("using external MQTT broker", "url", redactURL(opts.MQTTURL))
	}

	// Temporal boots in the background while PostgreSQL is prepared.
	if err := st.startTemporal(opts); err != nil {
		return st, err
	}
	if opts.DatabaseURL == "" {
		var pick func() (int, error)
		if pgPortPicked {
			pick = func() (int, error) { return pickFreePort(picked) }
		}
		if opts.PGPort, err = startOnFreePort(opts.PGPort, pick, log, func(port int) error {
			return st.startPostgres(ctx, pgBin, port, opts.StateDir)
		}); err != nil {
			return st, err
		}
	} else {
		st.DatabaseURL = opts.DatabaseURL
		log.Info("using external PostgreSQL", "url", redactURL(opts.DatabaseURL))
	}
	if err := st.waitTemporal(ctx, opts.TemporalNamespace); err != nil {
		return st, err
	}
	st.opts = opts
	if st.UIURL != "" {
		log.Info(fmt.Sprintf("temporal dev server ready at %s (Web UI %s)", st.TemporalAddress, st.UIURL))
	} else {
		log.Info(fmt.Sprintf("temporal dev server ready at %s (headless)", st.TemporalAddress))
	}
	return st, nil
}

// Stop stops everything Start started: the Temporal dev server and the
// throwaway PostgreSQL get a graceful signal (SIGTERM and SIGINT, PostgreSQL's
// fast shutdown) and are killed after a grace period; the embedded broker is
// closed; the temporary state directory and throwaway data are removed.
// External services are left alone. Stop is idempotent and safe on a nil
// Stack.
func (s *Stack) Stop() {
	if s == nil {
		return
	}
	s.stopOnce.Do(func() {
		var wg sync.WaitGroup
		s.mu.Lock()
		procs := []*proc{s.temporal, s.postgres}
		s.mu.Unlock()
		for _, p := range procs {
			if p == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if killed := p.stop(s.stopTimeout); killed {
					s.log.Warn(p.name + " did not stop in time and was killed")
				} else {
					s.log.Info(p.name + " stopped")
				}
			}()
		}
		if s.broker != nil {
			_ = s.broker.Close()
			s.log.Info("embedded MQTT broker stopped")
		}
		s.mu.Lock()
		for _, b := range s.siteBrokers {
			_ = b.Close()
		}
		s.mu.Unlock()
		wg.Wait()
		if s.pgDataDir != "" {
			if err := os.RemoveAll(s.pgDataDir); err != nil {
				s.log.Warn("removing the throwaway database", "dir", s.pgDataDir, "error", err)
			}
		}
		for _, d := range s.removeDirs {
			if err := os.RemoveAll(d); err != nil {
				s.log.Warn("removing the state directory", "dir", d, "error", err)
			}
		}
	})
}

// RestartTemporal stops the dev server (SIGTERM; SIGKILL when kill), waits
// down, and starts it again on the same ports with the same database file,
// as an operator's restart would: workflows, schedules and task queues
// survive. It needs Options.TemporalDBFile (an in-memory server would lose
// everything) and returns once the server answers again.
func (s *Stack) RestartTemporal(ctx context.Context, down time.Duration, kill bool) error {
	if s.opts.TemporalDBFile == "" {
		return errors.New("restart temporal: the dev server keeps its state in memory (set TemporalDBFile)")
	}
	s.mu.Lock()
	p := s.temporal
	s.mu.Unlock()
	if err := s.takeDown(ctx, p, kill, down); err != nil {
		return err
	}
	s.mu.Lock()
	err := s.startTemporal(s.opts)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.waitTemporal(ctx, s.opts.TemporalNamespace)
}

// RestartPostgres stops the throwaway cluster (SIGINT, PostgreSQL's fast
// shutdown: clients are cut off; SIGKILL when kill, a crash), waits down,
// and starts it again on the same port and data: what a database restart
// looks like to fleetflow. An external DatabaseURL cannot be restarted.
func (s *Stack) RestartPostgres(ctx context.Context, down time.Duration, kill bool) error {
	if s.pgServer == nil {
		return errors.New("restart postgres: not a throwaway cluster of this stack (DATABASE_URL is external)")
	}
	s.mu.Lock()
	p := s.postgres
	s.mu.Unlock()
	if err := s.takeDown(ctx, p, kill, down); err != nil {
		return err
	}
	np, err := s.pgServer()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.postgres = np
	s.mu.Unlock()
	return waitPostgres(ctx, np, s.DatabaseURL)
}

// takeDown stops p for a restart (its stop signal, or SIGKILL when kill:
// a crash) and keeps it down for down.
func (s *Stack) takeDown(ctx context.Context, p *proc, kill bool, down time.Duration) error {
	if kill {
		killGroup(p.cmd.Process)
		<-p.done
	} else {
		p.stop(s.stopTimeout)
	}
	s.log.Info(p.name+" stopped for a restart", "down", down)
	return sleepCtx(ctx, down)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func withDefaults(o Options) Options {
	if o.TemporalBinary == "" {
		o.TemporalBinary = DefaultTemporalBinary
	}
	if o.TemporalPort == 0 {
		o.TemporalPort = DefaultTemporalPort
	}
	if o.UIPort == 0 {
		o.UIPort = min(o.TemporalPort+1000, 65535)
	}
	if o.TemporalNamespace == "" {
		o.TemporalNamespace = DefaultTemporalNamespace
	}
	return o
}

// findTemporalBinary resolves the pinned CLI to an absolute, executable path.
func findTemporalBinary(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("the pinned Temporal CLI is missing at %s: build it with `make bin/temporal` "+
				"(go install github.com/temporalio/cli/cmd/temporal@v1.5.1 with GOBIN=$PWD/bin, about 4 minutes) "+
				"or run from the repository root", path)
		}
		return "", fmt.Errorf("the pinned Temporal CLI at %s: %w", path, err)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("the Temporal CLI at %s is not an executable file: rebuild it with `make bin/temporal`", path)
	}
	return abs, nil
}

// redactURL hides a password in a URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// compactErr puts a multi-line error (pgx lists every attempt) on one line:
// its first and last lines.
func compactErr(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	if len(lines) == 1 {
		return lines[0]
	}
	return strings.TrimSpace(lines[0]) + " " + strings.TrimSpace(lines[len(lines)-1])
}

// ProcessGroups returns the process-group IDs of the child processes this
// stack started, by name ("temporal", "postgres"); external services and the
// in-process broker are not listed. Benchmarks use them to account CPU time.
func (s *Stack) ProcessGroups() map[string]int {
	groups := map[string]int{}
	if s.temporal != nil && s.temporal.cmd.Process != nil {
		groups["temporal"] = s.temporal.cmd.Process.Pid
	}
	if s.postgres != nil && s.postgres.cmd.Process != nil {
		groups["postgres"] = s.postgres.cmd.Process.Pid
	}
	return groups
}

// startOnFreePort runs start on port and, while it fails because the port
// was taken meanwhile ("Address already in use": a port picked free can
// be taken before the server binds it, e.g. by the dev server's random
// internal ports), on another port from pick, up to three tries in all.
// A nil pick (the user configured the port) tries once. It returns the
// port that started.
func startOnFreePort(port int, pick func() (int, error), log *slog.Logger, start func(port int) error) (int, error) {
	for attempt := 1; ; attempt++ {
		err := start(port)
		if err == nil {
			return port, nil
		}
		if pick == nil || attempt == 3 || !strings.Contains(err.Error(), "Address already in use") {
			return port, err
		}
		log.Warn("a server's port was taken before it could bind it; trying another", "port", port)
		if port, err = pick(); err != nil {
			return port, err
		}
	}
}

// Package localstack runs a whole fleetflow on one machine, without Docker:
// the embedded services of internal/stack, the workers with the bridge, and
// a virtual fleet. `starter dev` and `starter demo`, the end-to-end tests
// and the benchmarks (bench/) start it from here; the chaos suite runs the
// workers as processes of their own and borrows only RegisterFleet,
// SimRobots and WaitFleetOnline.
package localstack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/artifact"
	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/sim"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/internal/stack"
	"github.com/fleetflow/fleetflow/schemas"
	"github.com/fleetflow/fleetflow/workers/worker"
)

// Stack is a whole local fleetflow: the embedded services (Temporal dev
// server, MQTT broker, PostgreSQL), an artifact server, the workers with
// the bridge, and a virtual fleet of the site's robots. It is what
// `starter dev` and `starter demo`, the end-to-end tests and the
// benchmarks run.
type Stack struct {
	// Cfg is the configuration the stack runs with: the one given, with
	// the addresses of what Start brought up filled in.
	Cfg      config.Config
	Services *stack.Stack
	Worker   *worker.Worker
	Fleet    *sim.Fleet
	Site     *site.Map
	// Artifacts serves artifacts.dir when artifacts.baseURL is empty.
	Artifacts *stack.ArtifactServer
	Log       *slog.Logger
	// Edges are the edge sites in multi-site mode (config edge.sites), in
	// that order: each with its own broker, edge worker and virtual fleet;
	// Worker is then the central one (no bridge, no broker). Site is the
	// first edge site's, and Fleet is nil.
	Edges []*EdgeSite
}

// Options chooses what Start runs besides the configuration.
type Options struct {
	// TemporalBin is the Temporal CLI that runs the dev server ("" = the
	// default, bin/temporal).
	TemporalBin string
	// Headless runs the dev server without its Web UI.
	Headless bool
	// StateDir keeps the stack's state (Temporal's SQLite, PostgreSQL's
	// data) between runs; "" = a throwaway directory.
	StateDir string
	// SiteMap overrides site.name from site.mapsDir (benchmarks).
	SiteMap *site.Map
	// SiteMaps override site.mapsDir's maps (multi-site tests).
	SiteMaps []*site.Map
	// StateInterval is the virtual robots' longest time between two
	// states; 0 = the sim's default (30 s).
	StateInterval time.Duration
	// DrivingStateInterval is the same while a robot drives or runs an
	// action; 0 = StateInterval (bench scale: 100 ms).
	DrivingStateInterval time.Duration
	// RebootDelay is the virtual robots' reboot after an update; 0 = the
	// sim's default.
	RebootDelay time.Duration
}

// ConfigError is a configuration or site map Start cannot use: bad input
// (the CLI exits 2), not a failure of the stack.
type ConfigError struct{ Err error }

func (e ConfigError) Error() string { return e.Err.Error() }
func (e ConfigError) Unwrap() error { return e.Err }

// BadInput marks it for callers that test behaviour, not the type.
func (ConfigError) BadInput() bool { return true }

// Start brings up the local stack for cfg: services on the configured or
// free ports, the schema migrated, the site's robots registered, the
// workers (with the bridge and the REST ingress) started, and the virtual
// robots ONLINE. Logs go to logOut. A configuration or site map it cannot
// use is a ConfigError; on any error what was started is stopped.
func Start(ctx context.Context, cfg config.Config, f Options, logOut io.Writer) (_ *Stack, err error) {
	worker.TuneGC() // this process runs the workers and the bridge
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ls := &Stack{Cfg: cfg, Log: log}
	defer func() {
		if err != nil {
			ls.Stop()
		}
	}()
	var maps map[string]*site.Map
	m := f.SiteMap
	if len(f.SiteMaps) > 0 {
		maps = map[string]*site.Map{}
		for _, sm := range f.SiteMaps {
			maps[sm.Site] = sm
		}
		m = f.SiteMaps[0]
	} else if m == nil {
		if maps, err = site.LoadDir(cfg.Site.MapsDir); err != nil {
			return nil, ConfigError{fmt.Errorf("site maps in %s: %w", cfg.Site.MapsDir, err)}
		}
		var ok bool
		if m, ok = maps[cfg.Site.Name]; !ok && len(cfg.Edge.Sites) == 0 {
			return nil, ConfigError{fmt.Errorf("site.name %q: no such map in %s", cfg.Site.Name, cfg.Site.MapsDir)}
		}
	} else {
		maps = map[string]*site.Map{m.Site: m}
	}
	ls.Site = m
	ls.Services, err = stack.Start(ctx, stack.Options{
		TemporalBinary: f.TemporalBin, TemporalPort: cfg.Temporal.DevServerPort, UIPort: cfg.Temporal.DevUIPort,
		TemporalNamespace: cfg.Temporal.Namespace, SearchAttributes: schemas.SearchAttributeTypes, Headless: f.Headless,
		MQTTURL: cfg.MQTT.URL, MQTTPort: cfg.MQTT.EmbeddedPort, DatabaseURL: cfg.Postgres.URL, PGPort: cfg.Postgres.DevPort,
		StateDir: f.StateDir, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	ls.Cfg.Temporal.HostPort = ls.Services.TemporalAddress
	if ls.Services.UIURL != "" {
		ls.Cfg.Temporal.UIURL = ls.Services.UIURL
	}
	ls.Cfg.MQTT.URL = ls.Services.MQTTURL
	ls.Cfg.Postgres.URL = ls.Services.DatabaseURL

	if ls.Cfg.Artifacts.BaseURL == "" {
		if ls.Artifacts, err = stack.ServeArtifacts(cfg.Artifacts.Dir, cfg.Artifacts.ServePort, cfg.Artifacts.URLQuery); err != nil {
			return nil, err
		}
		ls.Cfg.Artifacts.BaseURL = ls.Artifacts.BaseURL
	}
	keys, err := artifact.LoadKeyring(cfg.Artifacts.TrustedKeys)
	if err != nil {
		return nil, ConfigError{fmt.Errorf("artifacts.trustedKeys: %w", err)}
	}

	if err := store.Migrate(ctx, ls.Cfg.Postgres.URL); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if len(cfg.Edge.Sites) > 0 {
		return ls, ls.startMultiSite(ctx, maps, keys, f)
	}
	if err := RegisterFleet(ctx, ls.Cfg.Postgres.URL, m); err != nil {
		return nil, err
	}
	ls.Worker, err = worker.Start(ctx, worker.Options{Config: ls.Cfg, Bridge: true, HTTPAddr: ls.Cfg.Worker.HTTPAddr, IngressAddr: ls.Cfg.WMS.IngressAddr, Logger: log, Sites: maps})
	if err != nil {
		return nil, err
	}
	ls.Fleet = sim.NewFleet(sim.Options{
		BrokerURL: ls.Cfg.MQTT.URL, Speed: cfg.Sim.Speed, ActionDuration: cfg.Sim.ActionDuration, Logger: log,
		TrustedKeys: keys, RebootDelay: f.RebootDelay, ChargePerSecond: cfg.Sim.ChargePerSecond,
		StateInterval: f.StateInterval, DrivingStateInterval: f.DrivingStateInterval,
	}, SimRobots(m, cfg.Sim))
	if err := ls.Fleet.Start(ctx); err != nil {
		return nil, fmt.Errorf("virtual fleet: %w", err)
	}
	if n := len(ls.Fleet.Robots()); n > 0 && n == len(m.Robots) {
		if err := WaitFleetOnline(ctx, ls.Worker.Store, m, 15*time.Second); err != nil {
			return nil, err
		}
	} else {
		log.Info(fmt.Sprintf("%d of %d robots of %s are virtual (sim.robots %q); the others connect to %s themselves", n, len(m.Robots), m.Site, cfg.Sim.Robots, ls.Cfg.MQTT.URL))
	}
	return ls, nil
}

// RegisterFleet puts the site's robots into the fleet registry.
func RegisterFleet(ctx context.Context, dbURL string, m *site.Map) error {
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.RegisterRobots(ctx, SiteRobots(m)); err != nil {
		return fmt.Errorf("register fleet of %s: %w", m.Site, err)
	}
	return nil
}

// SiteRobots are the robots of the site map as the registry holds them,
// at their home node's pose.
func SiteRobots(m *site.Map) []store.Robot {
	var robots []store.Robot
	for _, r := range m.Robots {
		n, _ := m.Node(r.HomeNode)
		robots = append(robots, store.Robot{
			ID: r.Manufacturer + "/" + r.SerialNumber, Manufacturer: r.Manufacturer, SerialNumber: r.SerialNumber, Model: r.Model,
			Site: m.Site, Capabilities: r.Capabilities, SoftwareVersion: r.SoftwareVersion, HomeNode: r.HomeNode, X: n.X, Y: n.Y, MapID: m.MapID,
		})
	}
	return robots
}

// SimRobots configures a virtual robot for each robot of the map that
// sim.robots names, speaking the robot's profile from the map.
func SimRobots(m *site.Map, s config.Sim) []sim.RobotConfig {
	var out []sim.RobotConfig
	battery := s.Battery
	if battery <= 0 {
		battery = 100
	}
	for _, r := range m.Robots {
		if !s.Simulates(r.Key().String()) {
			continue
		}
		n, _ := m.Node(r.HomeNode)
		out = append(out, sim.RobotConfig{
			Manufacturer: r.Manufacturer, SerialNumber: r.SerialNumber, Model: r.Model,
			StartNode: r.HomeNode, X: n.X, Y: n.Y, Theta: n.Theta, MapID: m.MapID, Battery: battery, SoftwareVersion: r.SoftwareVersion,
			Profile: m.ProfileFor(r),
		})
	}
	return out
}

// WaitFleetOnline waits until the bridge has stored every robot as ONLINE,
// so the first missions find robots to reserve.
func WaitFleetOnline(ctx context.Context, st *store.Store, m *site.Map, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		views, err := st.ListRobots(ctx, m.Site)
		if err != nil {
			return err
		}
		online := 0
		for _, v := range views {
			if v.State.ConnectionState == "ONLINE" {
				online++
			}
		}
		if online >= len(m.Robots) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d robots of %s came ONLINE within %s", online, len(m.Robots), m.Site, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops what was started, in reverse order.
func (ls *Stack) Stop() {
	for _, e := range ls.Edges {
		if e.Fleet != nil {
			e.Fleet.Stop()
		}
		ls.StopEdgeWorker(e.Map.Site)
	}
	if ls.Fleet != nil {
		ls.Fleet.Stop()
	}
	if ls.Worker != nil {
		ls.Worker.Stop()
	}
	if ls.Artifacts != nil {
		ls.Artifacts.Stop()
	}
	if ls.Services != nil {
		ls.Services.Stop()
	}
}

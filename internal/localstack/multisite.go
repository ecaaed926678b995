package localstack

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetflow/fleetflow/internal/artifact"
	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/sim"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/workers/worker"
)

// EdgeSite is one site of the local stack in multi-site mode: its own
// embedded broker, its edge worker (robot I/O queue robot-io-<site> and
// the bridge against that broker) and its virtual fleet on that broker.
type EdgeSite struct {
	Map    *site.Map
	Cfg    config.Config  // mqtt.url is the site's broker
	Worker *worker.Worker // nil while stopped (StopEdgeWorker)
	Fleet  *sim.Fleet
}

// startMultiSite runs the local stack in multi-site mode (config
// edge.sites), as one control plane and many warehouses would: the central
// worker polls missions, ota and maintenance and has no broker; each edge
// site gets its own broker, edge worker and virtual fleet. Robots of one
// site never see another site's broker.
func (ls *Stack) startMultiSite(ctx context.Context, maps map[string]*site.Map, keys *artifact.Keyring, f Options) error {
	edgeMaps := map[string]*site.Map{}
	for _, name := range ls.Cfg.Edge.Sites {
		m, ok := maps[name]
		if !ok {
			return ConfigError{fmt.Errorf("edge.sites: %q has no site map in %s", name, ls.Cfg.Site.MapsDir)}
		}
		edgeMaps[name] = m
		if err := RegisterFleet(ctx, ls.Cfg.Postgres.URL, m); err != nil {
			return err
		}
	}
	central := ls.Cfg
	central.MQTT.URL = "" // it reaches robots only through the edge workers
	var err error
	ls.Worker, err = worker.Start(ctx, worker.Options{Config: central, HTTPAddr: central.Worker.HTTPAddr, IngressAddr: central.WMS.IngressAddr, Logger: ls.Log, Sites: edgeMaps})
	if err != nil {
		return err
	}
	for _, name := range ls.Cfg.Edge.Sites {
		m := edgeMaps[name]
		e := &EdgeSite{Map: m, Cfg: ls.Cfg}
		if e.Cfg.MQTT.URL, err = ls.Services.StartSiteBroker(0); err != nil {
			return fmt.Errorf("site %s: %w", name, err)
		}
		e.Cfg.Worker.HTTPAddr = "" // the central worker serves /metrics and the probes
		ls.Edges = append(ls.Edges, e)
		if err := ls.StartEdgeWorker(ctx, name); err != nil {
			return err
		}
		e.Fleet = sim.NewFleet(sim.Options{
			BrokerURL: e.Cfg.MQTT.URL, Speed: ls.Cfg.Sim.Speed, ActionDuration: ls.Cfg.Sim.ActionDuration, Logger: ls.Log.With("site", name),
			TrustedKeys: keys, RebootDelay: f.RebootDelay, ChargePerSecond: ls.Cfg.Sim.ChargePerSecond, StateInterval: f.StateInterval,
		}, SimRobots(m, ls.Cfg.Sim))
		if err := e.Fleet.Start(ctx); err != nil {
			return fmt.Errorf("virtual fleet of %s: %w", name, err)
		}
		if len(e.Fleet.Robots()) == len(m.Robots) {
			if err := WaitFleetOnline(ctx, ls.Worker.Store, m, 15*time.Second); err != nil {
				return err
			}
		}
	}
	ls.Site, ls.Fleet = ls.Edges[0].Map, nil
	return nil
}

// Edge returns the edge site called name (nil if none).
func (ls *Stack) Edge(name string) *EdgeSite {
	for _, e := range ls.Edges {
		if e.Map.Site == name {
			return e
		}
	}
	return nil
}

// StartEdgeWorker starts site name's edge worker (again).
func (ls *Stack) StartEdgeWorker(ctx context.Context, name string) error {
	e := ls.Edge(name)
	if e == nil {
		return fmt.Errorf("no edge site %q", name)
	}
	w, err := worker.Start(ctx, worker.Options{Config: e.Cfg, EdgeSite: name, Bridge: true, TaskQueues: []string{},
		Logger: ls.Log.With("site", name), Sites: map[string]*site.Map{name: e.Map}})
	if err != nil {
		return fmt.Errorf("edge worker of %s: %w", name, err)
	}
	e.Worker = w
	return nil
}

// StopEdgeWorker stops site name's edge worker, as a site whose uplink
// went down would lose it: its robot I/O waits in its queue meanwhile.
func (ls *Stack) StopEdgeWorker(name string) {
	if e := ls.Edge(name); e != nil && e.Worker != nil {
		e.Worker.Stop()
		e.Worker = nil
	}
}

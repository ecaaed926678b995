package main

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

// edgeSite is one site of the local stack in multi-site mode: its own
// embedded broker, its edge worker (robot I/O queue robot-io-<site> and
// the bridge against that broker) and its virtual fleet on that broker.
type edgeSite struct {
	m      *site.Map
	cfg    config.Config // mqtt.url is the site's broker
	worker *worker.Worker
	fleet  *sim.Fleet
}

// startMultiSite runs the local stack in multi-site mode (config
// edge.sites), as one control plane and many warehouses would: the central
// worker polls missions, ota and maintenance and has no broker; each edge
// site gets its own broker, edge worker and virtual fleet. Robots of one
// site never see another site's broker.
func (ls *localStack) startMultiSite(ctx context.Context, maps map[string]*site.Map, keys *artifact.Keyring, f *devFlags) error {
	edgeMaps := map[string]*site.Map{}
	for _, name := range ls.cfg.Edge.Sites {
		m, ok := maps[name]
		if !ok {
			return usageError{fmt.Errorf("edge.sites: %q has no site map in %s", name, ls.cfg.Site.MapsDir)}
		}
		edgeMaps[name] = m
		if err := registerFleet(ctx, ls.cfg.Postgres.URL, m); err != nil {
			return err
		}
	}
	central := ls.cfg
	central.MQTT.URL = "" // it reaches robots only through the edge workers
	var err error
	ls.worker, err = worker.Start(ctx, worker.Options{Config: central, HTTPAddr: central.Worker.HTTPAddr, IngressAddr: central.WMS.IngressAddr, Logger: ls.log, Sites: edgeMaps})
	if err != nil {
		return err
	}
	for _, name := range ls.cfg.Edge.Sites {
		m := edgeMaps[name]
		e := &edgeSite{m: m, cfg: ls.cfg}
		if e.cfg.MQTT.URL, err = ls.stack.StartSiteBroker(0); err != nil {
			return fmt.Errorf("site %s: %w", name, err)
		}
		e.cfg.Worker.HTTPAddr = "" // the central worker serves /metrics and the probes
		ls.edges = append(ls.edges, e)
		if err := ls.startEdgeWorker(ctx, name); err != nil {
			return err
		}
		e.fleet = sim.NewFleet(sim.Options{
			BrokerURL: e.cfg.MQTT.URL, Speed: ls.cfg.Sim.Speed, ActionDuration: ls.cfg.Sim.ActionDuration, Logger: ls.log.With("site", name),
			TrustedKeys: keys, RebootDelay: f.rebootDelay, ChargePerSecond: ls.cfg.Sim.ChargePerSecond, StateInterval: f.stateInterval,
		}, simRobots(m, ls.cfg.Sim))
		if err := e.fleet.Start(ctx); err != nil {
			return fmt.Errorf("virtual fleet of %s: %w", name, err)
		}
		if len(e.fleet.Robots()) == len(m.Robots) {
			if err := waitFleetOnline(ctx, ls.worker.Store, m, 15*time.Second); err != nil {
				return err
			}
		}
	}
	ls.site, ls.fleet = ls.edges[0].m, nil
	return nil
}

// edge returns the edge site called name (nil if none).
func (ls *localStack) edge(name string) *edgeSite {
	for _, e := range ls.edges {
		if e.m.Site == name {
			return e
		}
	}
	return nil
}

// startEdgeWorker starts site name's edge worker (again).
func (ls *localStack) startEdgeWorker(ctx context.Context, name string) error {
	e := ls.edge(name)
	if e == nil {
		return fmt.Errorf("no edge site %q", name)
	}
	w, err := worker.Start(ctx, worker.Options{Config: e.cfg, EdgeSite: name, Bridge: true, TaskQueues: []string{},
		Logger: ls.log.With("site", name), Sites: map[string]*site.Map{name: e.m}})
	if err != nil {
		return fmt.Errorf("edge worker of %s: %w", name, err)
	}
	e.worker = w
	return nil
}

// stopEdgeWorker stops site name's edge worker, as a site whose uplink
// went down would lose it: its robot I/O waits in its queue meanwhile.
func (ls *localStack) stopEdgeWorker(name string) {
	if e := ls.edge(name); e != nil && e.worker != nil {
		e.worker.Stop()
		e.worker = nil
	}
}

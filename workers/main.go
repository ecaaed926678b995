// Command workers runs fleetflow's Temporal workers, the telemetry bridge
// and the health and metrics endpoints. It stops gracefully on SIGTERM or
// SIGINT: polling stops, running activities finish, the bridge flushes.
//
//	workers [--config temporal.yaml] [--task-queues missions,ota,maintenance] [--bridge=true] [--http 127.0.0.1:9090] [--ingress 0.0.0.0:8080]
//	workers --edge-site SITE [--config temporal.yaml]
//
// With --edge-site it is that site's edge worker (multi-site mode, config
// edge.sites): it polls the site's robot I/O queue robot-io-SITE and runs
// the bridge against the site's broker (mqtt.url), and nothing else unless
// --task-queues names more.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/workers/worker"
)

func main() {
	cfgPath := flag.String("config", "temporal.yaml", "configuration file")
	queues := flag.String("task-queues", "", "comma-separated task queues to poll (default: missions,ota,maintenance; with --edge-site none; none = only the bridge and/or the ingress)")
	edgeSite := flag.String("edge-site", "", "be this site's edge worker: poll its robot I/O queue (taskQueues.robotIO-SITE) and run the bridge against mqtt.url, the site's broker; the site must be in edge.sites")
	bridgeFlag := flag.String("bridge", "", "run the telemetry bridge (true/false; default from worker.bridge)")
	httpAddr := flag.String("http", "", "address for /healthz, /readyz, /metrics (default from worker.httpAddr)")
	ingressAddr := flag.String("ingress", "", "address of the REST ingress for WMS clients (default from wms.ingressAddr; off when both are empty)")
	flag.Parse()
	worker.TuneGC()
	cfg, err := config.Load(*cfgPath, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "workers:", err)
		os.Exit(2)
	}
	// worker.logFormat json: one JSON object a line, for a log pipeline;
	// records from workflows and activities carry the SDK's Namespace,
	// TaskQueue, WorkflowID and RunID, the bridge's the robot.
	hopts := &slog.HandlerOptions{Level: slog.LevelInfo}
	var handler slog.Handler = slog.NewTextHandler(os.Stderr, hopts)
	if cfg.Worker.LogFormat == "json" {
		handler = slog.NewJSONHandler(os.Stderr, hopts)
	}
	log := slog.New(handler)
	opts := worker.Options{Config: cfg, Bridge: cfg.Worker.Bridge, HTTPAddr: cfg.Worker.HTTPAddr, IngressAddr: cfg.WMS.IngressAddr, Logger: log, EdgeSite: *edgeSite}
	if *edgeSite != "" {
		opts.Bridge, opts.IngressAddr = true, "" // the site's bridge; the ingress runs centrally
	}
	switch *queues {
	case "":
	case "none":
		opts.TaskQueues = []string{}
	default:
		opts.TaskQueues = strings.Split(*queues, ",")
	}
	switch *bridgeFlag {
	case "":
	case "true":
		opts.Bridge = true
	case "false":
		opts.Bridge = false
	default:
		fmt.Fprintln(os.Stderr, "workers: --bridge must be true or false")
		os.Exit(2)
	}
	if *httpAddr != "" {
		opts.HTTPAddr = *httpAddr
	}
	if *ingressAddr != "" {
		opts.IngressAddr = *ingressAddr
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	stopTracing, err := worker.SetupTracing(ctx, cfg, "fleetflow-workers")
	if err != nil {
		fmt.Fprintln(os.Stderr, "workers:", err)
		os.Exit(2)
	}
	w, err := worker.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "workers:", err)
		os.Exit(1)
	}
	log.Info("workers running; SIGTERM to stop", "http", w.HTTPAddr)
	<-ctx.Done()
	log.Info("shutting down")
	w.Stop()
	flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := stopTracing(flush); err != nil {
		log.Warn("flush traces", "error", err)
	}
}

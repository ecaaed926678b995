package stack

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
)

// devServerDynamicConfig cuts the per-hop latency of the dev server from
// ~50 ms to ~7 ms: its single history shard otherwise polls the transfer
// queue only 20 times a second, and extra task-queue partitions leave some
// starts waiting ~2 s (see FIELD-NOTES.md). Local stack and benchmarks only.
var devServerDynamicConfig = []string{
	"history.transferProcessorMaxPollRPS=1000",
	"matching.numTaskqueueReadPartitions=1",
	"matching.numTaskqueueWritePartitions=1",
}

// TemporalDevServerArgs returns the arguments after the binary for
// `temporal server start-dev` as Start runs it, with opts' defaults applied.
// The dev server binds 127.0.0.1 only; search attributes come in name order.
// --http-port and --metrics-port appear only when set (Start always sets
// them, to free ports it picked when zero).
func TemporalDevServerArgs(opts Options) []string {
	o := withDefaults(opts)
	args := []string{
		"server", "start-dev",
		"--ip", "127.0.0.1",
		"--port", strconv.Itoa(o.TemporalPort),
	}
	if o.Headless {
		args = append(args, "--headless")
	} else {
		args = append(args, "--ui-port", strconv.Itoa(o.UIPort))
	}
	if o.TemporalHTTPPort != 0 {
		args = append(args, "--http-port", strconv.Itoa(o.TemporalHTTPPort))
	}
	if o.TemporalMetricsPort != 0 {
		args = append(args, "--metrics-port", strconv.Itoa(o.TemporalMetricsPort))
	}
	if o.TemporalNamespace != DefaultTemporalNamespace {
		args = append(args, "--namespace", o.TemporalNamespace)
	}
	if o.TemporalDBFile != "" {
		args = append(args, "--db-filename", o.TemporalDBFile)
	}
	names := make([]string, 0, len(o.SearchAttributes))
	for name := range o.SearchAttributes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		args = append(args, "--search-attribute", name+"="+o.SearchAttributes[name])
	}
	for _, kv := range devServerDynamicConfig {
		args = append(args, "--dynamic-config-value", kv)
	}
	return append(args, "--log-level", "warn", "--color", "never")
}

// startTemporal launches the dev server without waiting for it.
func (s *Stack) startTemporal(o Options) error {
	cmd := exec.Command(o.TemporalBinary, TemporalDevServerArgs(o)...)
	cmd.Dir = o.StateDir
	logPath := filepath.Join(o.StateDir, "temporal.log")
	p, err := startProc("temporal dev server", cmd, logPath, syscall.SIGTERM, syscall.SIGTERM, nil)
	if err != nil {
		return err
	}
	s.temporal = p
	s.TemporalAddress = hostPort(o.TemporalPort)
	if !o.Headless {
		s.UIURL = "http://" + hostPort(o.UIPort)
	}
	s.log.Info("starting temporal dev server", "address", s.TemporalAddress, "log", logPath)
	return nil
}

// waitTemporal polls the dev server until a client can CheckHealth and
// DescribeNamespace, the process exits, ctx ends or the timeout passes.
func (s *Stack) waitTemporal(ctx context.Context, namespace string) error {
	p := s.temporal
	ctx, cancel := context.WithTimeout(ctx, temporalReadyTimeout)
	defer cancel()
	quiet := tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	var lastErr error
	for {
		if p.exited() {
			return fmt.Errorf("temporal dev server exited during start (%v)%s", p.waitErr, logTail(p.logPath, 20))
		}
		lastErr = pingTemporal(ctx, s.TemporalAddress, namespace, quiet)
		if lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if ctxErr := context.Cause(ctx); ctxErr != context.DeadlineExceeded {
				return fmt.Errorf("waiting for the temporal dev server: %w", ctxErr)
			}
			return fmt.Errorf("temporal dev server at %s not ready after %s (last error: %v)%s",
				s.TemporalAddress, temporalReadyTimeout, lastErr, logTail(p.logPath, 20))
		case <-p.done:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func pingTemporal(ctx context.Context, addr, namespace string, logger tlog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: addr, Namespace: namespace, Logger: logger})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return err
	}
	_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	return err
}

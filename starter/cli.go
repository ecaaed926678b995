package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"

	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/workers/worker"
)

// The CLI's plumbing, shared by every command: exit codes (main.go says
// which), the global flags, the configuration and the Temporal client,
// and output (-o table|json).

// usageError marks bad usage or bad input: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }
func (usageError) BadInput() bool  { return true }

// badInput is a usageError with a formatted message.
func badInput(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// exitCode is the process's exit code for what a command returned: 0
// success; a silentExit's own code; 2 bad usage or bad input (ops.BadInput:
// usageError, ops.InputError, localstack.ConfigError, cobra's usage
// errors); 1 any other failure.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var se silentExit
	if errors.As(err, &se) {
		return int(se)
	}
	if ops.BadInput(err) {
		return 2
	}
	return 1
}

// silentExit ends with an exit code after output was already printed.
type silentExit int

func (e silentExit) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// globalFlags are the root command's persistent flags.
type globalFlags struct {
	config string // --config: the configuration file
	output string // -o: table or json
}

// loadConfig reads --config (with FLEETFLOW_* overrides); a bad file is a
// usageError.
func loadConfig(g *globalFlags) (config.Config, error) {
	cfg, err := config.Load(g.config, nil)
	if err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

// dialTemporal connects to the Temporal frontend of the configuration, with
// the workers' client options.
func dialTemporal(g *globalFlags) (client.Client, config.Config, error) {
	cfg, err := loadConfig(g)
	if err != nil {
		return nil, cfg, err
	}
	// The workers' client options: temporal.tls and FLEETFLOW_TEMPORAL_API_KEY
	// apply to the CLI too (Temporal Cloud needs one of them), and so does
	// tracing: a mission's trace starts at the CLI's start call.
	tracingOnce.Do(func() {
		stop, err := worker.SetupTracing(context.Background(), cfg, "fleetflow-starter")
		if err == nil {
			flushTracing = stop
		}
	})
	c, err := worker.NewTemporalClient(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return nil, cfg, fmt.Errorf("%w (is `starter dev` running?)", err)
	}
	return c, cfg, nil
}

var (
	tracingOnce sync.Once
	// flushTracing sends the CLI's spans before it exits (main).
	flushTracing = func(context.Context) error { return nil }
)

// emit writes v as JSON with -o json, else calls table.
func emit(w io.Writer, g *globalFlags, v any, table func(io.Writer)) error {
	if g.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	table(w)
	return nil
}

// dash shows an empty table cell as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// quietLogger keeps the SDK's info lines out of CLI output.
func quietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// searchAttrs decodes visibility search attributes into Go values.
func searchAttrs(sa *commonpb.SearchAttributes) (map[string]any, error) {
	out := map[string]any{}
	if sa == nil {
		return out, nil
	}
	dc := converter.GetDefaultDataConverter()
	for k, p := range sa.IndexedFields {
		var v any
		if err := dc.FromPayload(p, &v); err != nil {
			continue
		}
		if f, ok := v.(float64); ok {
			v = int64(f)
		}
		out[k] = v
	}
	return out, nil
}

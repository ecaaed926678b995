// Command bench measures fleetflow on the local stack (`make bench`): the
// missions against a no-op workflow and a mission-shaped baseline measured
// in the same run (bench), fleet size (scale), software rollouts (rollout),
// a burst of queued missions (burst), the REST ingress (ingress) and the
// edge workers' extra hop (edge). Each starts its own stack on fresh
// ports, without Docker. The README ("Benchmarks") has the figures.
//
// Exit codes: 0 success, 1 failure or a missed check, 2 bad usage or bad
// input.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/ops"
)

// globalFlags are the root command's persistent flags.
type globalFlags struct {
	config      string // --config: the configuration file
	temporalBin string // --temporal-bin: the Temporal CLI that runs each benchmark's dev server
}

func main() {
	g := &globalFlags{}
	root := benchCmd(g)
	root.SilenceUsage, root.SilenceErrors = true, true
	root.PersistentFlags().StringVar(&g.config, "config", "temporal.yaml", "configuration file (environment FLEETFLOW_* overrides it)")
	root.PersistentFlags().StringVar(&g.temporalBin, "temporal-bin", "bin/temporal", "the pinned Temporal CLI (make bin/temporal builds it)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &ops.InputError{Err: err} })
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		if ops.BadInput(err) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// loadConfig reads --config (with FLEETFLOW_* overrides); a bad file is
// bad input.
func loadConfig(g *globalFlags) (config.Config, error) {
	cfg, err := config.Load(g.config, nil)
	if err != nil {
		return cfg, &ops.InputError{Err: err}
	}
	return cfg, nil
}

// Command starter is fleetflow's operator CLI: launch, watch, pause, resume
// and cancel missions (`mission`), roll out signed software (`rollout`,
// `artifact`), service robots (`maintenance`), manage the fleet registry
// and its MQTT fence (`fleet`, `migrate`, `temporal setup`), integrate WMS
// clients (`wms`), run the virtual fleet (`sim`), bring up the local stack
// (`dev`, `demo`), check the Web UI (`webui`), and break it on purpose
// (`chaos`). The benchmarks are a command of their own (bench/).
//
// Exit codes: 0 success, 1 failure, 2 bad usage or bad input.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	g := &globalFlags{}
	root := newRootCmd(g)
	err := root.Execute()
	flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = flushTracing(flush)
	cancel()
	if err != nil {
		var se silentExit
		if !errors.As(err, &se) { // else the command already said why
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(exitCode(err))
	}
}

// newRootCmd is the starter command with every subcommand, its flags bound
// to g.
func newRootCmd(g *globalFlags) *cobra.Command {
	root := &cobra.Command{
		Use:   "starter",
		Short: "fleetflow CLI: missions and OTA rollouts on a fleet of VDA 5050 robots, run as durable Temporal workflows",
		Long: `starter launches and controls fleetflow missions and software rollouts, signs
and verifies artifacts, and runs the local stack.

Quick start (no Docker needed):
  starter demo                      # local stack + virtual fleet, runs testdata/missions, exits
  starter dev                       # same stack, stays up for the commands below and the Web UI
  starter mission start -f testdata/missions/m-0001.json --wait
  starter mission list
  starter fleet list
  starter rollout start -f testdata/rollouts/r-fleetos-2.0.0.json --wait
  starter artifact verify --keys testdata/keys/trusted --file testdata/artifacts/fleetos-2.0.0.bin`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.config, "config", "temporal.yaml", "configuration file (environment FLEETFLOW_* overrides it)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if g.output != "table" && g.output != "json" {
			return badInput("--output %q: want table or json", g.output)
		}
		return nil
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(missionCmd(g), fleetCmd(g), devCmd(g, false), devCmd(g, true), simCmd(g), artifactCmd(g), rolloutCmd(g), chaosCmd(g), wmsCmd(g), maintenanceCmd(g), migrateCmd(g), temporalCmd(g), webUICmd(g))
	return root
}

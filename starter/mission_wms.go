package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/fleetflow/fleetflow/schemas"
)

// missionAppendCmd: update append from the command line.
func missionAppendCmd(g *globalFlags) *cobra.Command {
	var stepFlags []string
	var reason string
	cmd := &cobra.Command{
		Use:   "append MISSION_ID --step STATION:pick|drop [--step …]",
		Short: "Add steps after a mission's last one; a driving robot gets them as an order update",
		Long: `append adds steps to a mission that waits for or drives a robot. The
grown mission is checked against its site map first (refused: nothing
changes). A robot already driving the mission's last part gets the new
steps at once as a VDA 5050 order update with the next orderUpdateId,
stitched onto its last base node, so it drives on without stopping.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			steps, err := parseSteps(stepFlags)
			if err != nil {
				return err
			}
			return runUpdate(cmd, g, args[0], schemas.UpdateAppend,
				schemas.AppendRequest{Steps: steps, Reason: reason, By: currentUser()},
				func(w io.Writer, st schemas.MissionStatus) {
					fmt.Fprintf(w, "mission %s: %d steps appended, state %s, %d nodes, %d order updates\n", st.MissionID, len(steps), st.State, st.NodesTotal, st.OrderUpdates)
				})
		},
	}
	cmd.Flags().StringArrayVar(&stepFlags, "step", nil, "a step STATION:ACTION (pick or drop); repeat in order")
	cmd.Flags().StringVar(&reason, "reason", "", "why (audited)")
	return cmd
}

// parseSteps reads STATION:ACTION flags.
func parseSteps(flags []string) ([]schemas.MissionStep, error) {
	if len(flags) == 0 {
		return nil, badInput("--step STATION:ACTION is required (at least one)")
	}
	var out []schemas.MissionStep
	for _, f := range flags {
		st, act, ok := strings.Cut(f, ":")
		if !ok || st == "" || (act != "pick" && act != "drop") {
			return nil, badInput("--step %q: want STATION:pick or STATION:drop", f)
		}
		out = append(out, schemas.MissionStep{Station: st, Action: act})
	}
	return out, nil
}

// missionSignalCmd sends a WMS signal (loadReady, loadTaken) to a mission.
func missionSignalCmd(g *globalFlags) *cobra.Command {
	var loadID string
	step := -1
	cmd := &cobra.Command{
		Use:   "signal MISSION_ID loadReady|loadTaken [--load-id ID] [--step N]",
		Short: "Tell a mission the load is ready at, or was taken from, a station where a step waits (steps[].waitFor)",
		Long: `signal sends the mission signal loadReady or loadTaken, as a WMS, a
conveyor or a person at the station would. A signal sent before the robot
arrives is kept, and the robot then drives on without stopping. A signal
for another load than the mission's is ignored (mission status lists it).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[1]
			if name != schemas.SignalLoadReady && name != schemas.SignalLoadTaken {
				return badInput("signal %q: want %s or %s", name, schemas.SignalLoadReady, schemas.SignalLoadTaken)
			}
			sig := schemas.LoadSignal{LoadID: loadID, By: currentUser()}
			if step >= 0 {
				s := step - 1
				if s < 0 {
					return badInput("--step %d: steps count from 1", step)
				}
				sig.Step = &s
			}
			c, _, err := dialTemporal(g)
			if err != nil {
				return err
			}
			defer c.Close()
			id := schemas.MissionIDOf(args[0])
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			err = c.SignalWorkflow(ctx, schemas.MissionWorkflowID(id), "", name, sig)
			var nf *serviceerror.NotFound
			if errors.As(err, &nf) {
				return badInput("no running mission %s", id)
			}
			if err != nil {
				return fmt.Errorf("%s to mission %s: %w", name, id, err)
			}
			return emit(cmd.OutOrStdout(), g, map[string]string{"missionId": id, "signal": name}, func(w io.Writer) {
				fmt.Fprintf(w, "mission %s: %s sent (starter mission status %s shows when it is used)\n", id, name, id)
			})
		},
	}
	cmd.Flags().StringVar(&loadID, "load-id", "", "the load (must be the mission's when it names one)")
	cmd.Flags().IntVar(&step, "step", -1, "the step it is for, counting from 1 (default: the next step waiting for this signal)")
	return cmd
}

// runUpdate sends update name with arg to a mission, waits for its answer
// and prints it.
func runUpdate(cmd *cobra.Command, g *globalFlags, rawID, name string, arg any, human func(io.Writer, schemas.MissionStatus)) error {
	c, _, err := dialTemporal(g)
	if err != nil {
		return err
	}
	defer c.Close()
	id := schemas.MissionIDOf(rawID)
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
	defer cancel()
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: schemas.MissionWorkflowID(id), UpdateName: name, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return updateError(id, name, err)
	}
	var st schemas.MissionStatus
	if err := h.Get(ctx, &st); err != nil {
		return updateError(id, name, err)
	}
	return emit(cmd.OutOrStdout(), g, st, func(w io.Writer) { human(w, st) })
}

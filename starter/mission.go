package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/schemas"
)

func missionCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "mission", Short: "Start, watch and control transport missions"}
	cmd.AddCommand(missionStartCmd(g), missionStatusCmd(g), missionControlCmd(g, schemas.UpdateCancel),
		missionControlCmd(g, schemas.UpdatePause), missionControlCmd(g, schemas.UpdateResume), missionControlCmd(g, schemas.UpdateReprioritize), missionAppendCmd(g), missionSignalCmd(g), missionResolveCmd(g), missionListCmd(g))
	return cmd
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}

func missionStartCmd(g *globalFlags) *cobra.Command {
	var file, wmsClient string
	var wait bool
	cmd := &cobra.Command{
		Use:   "start -f FILE",
		Short: "Start a mission from a spec file (JSON or YAML, schemas/mission.schema.json)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return badInput("-f FILE is required")
			}
			spec, err := schemas.LoadMission(file)
			if err != nil {
				return usageError{err}
			}
			if wmsClient != "" {
				cfg, err := loadConfig(g)
				if err != nil {
					return err
				}
				if err := ops.CheckWMSClient(cfg, wmsClient); err != nil {
					return err
				}
			}
			c, cfg, err := dialTemporal(g)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			by := currentUser()
			if wmsClient != "" {
				by = wmsClient
			}
			run, err := ops.StartMission(ctx, c, cfg, spec, by, wmsClient)
			if err != nil {
				return err
			}
			link := webLink(cfg, run.GetID())
			if !wait {
				return emit(cmd.OutOrStdout(), g, map[string]any{"missionId": spec.MissionID, "workflowId": run.GetID(), "runId": run.GetRunID(), "webUI": link},
					func(w io.Writer) {
						fmt.Fprintf(w, "started mission %s (workflow %s)\n%s\n", spec.MissionID, run.GetID(), link)
					})
			}
			var res schemas.MissionResult
			err = run.Get(ctx, &res)
			out := map[string]any{"missionId": spec.MissionID, "workflowId": run.GetID(), "webUI": link, "result": res}
			if err != nil {
				out["error"] = ops.RootCause(err)
			}
			if eerr := emit(cmd.OutOrStdout(), g, out, func(w io.Writer) {
				if err != nil {
					fmt.Fprintf(w, "mission %s FAILED: %s\n%s\n", spec.MissionID, ops.RootCause(err), link)
					return
				}
				fmt.Fprintf(w, "mission %s %s on %s (%d/%d nodes)", spec.MissionID, res.State, res.RobotID, res.NodesDone, res.NodesTotal)
				if res.CancelNotApplied != "" && res.State != schemas.MissionCancelled {
					fmt.Fprintf(w, ", cancel not applied: %s", res.CancelNotApplied)
				}
				fmt.Fprintf(w, "\n%s\n", link)
			}); eerr != nil {
				return eerr
			}
			if err != nil {
				return silentExit(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "mission spec file")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the mission to end and print its result")
	cmd.Flags().StringVar(&wmsClient, "client", "", "start it for this WMS client (wms.clients): its webhook hears the mission's events")
	return cmd
}

func webLink(cfg config.Config, wfID string) string {
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s", strings.TrimRight(cfg.Temporal.UIURL, "/"), cfg.Temporal.Namespace, wfID)
}

func queryStatus(ctx context.Context, c client.Client, id string) (schemas.MissionStatus, error) {
	var st schemas.MissionStatus
	v, err := c.QueryWorkflow(ctx, schemas.MissionWorkflowID(id), "", schemas.QueryStatus)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return st, badInput("no mission %s (workflow %s not found)", id, schemas.MissionWorkflowID(id))
		}
		return st, err
	}
	return st, v.Get(&st)
}

func missionStatusCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status MISSION_ID",
		Short: "Show a mission's state, robot and progress (query status)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cfg, err := dialTemporal(g)
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := queryStatus(cmd.Context(), c, schemas.MissionIDOf(args[0]))
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), g, st, func(w io.Writer) { printStatus(w, st, webLink(cfg, schemas.MissionWorkflowID(st.MissionID))) })
		},
	}
}

func printStatus(w io.Writer, st schemas.MissionStatus, link string) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "mission\t%s\n", st.MissionID)
	fmt.Fprintf(tw, "state\t%s\n", st.State)
	fmt.Fprintf(tw, "site\t%s\n", st.Site)
	fmt.Fprintf(tw, "priority\t%d\n", st.Priority)
	fmt.Fprintf(tw, "robot\t%s\n", dash(st.RobotID))
	if st.QueuePosition > 0 {
		fmt.Fprintf(tw, "queue position\t%d\n", st.QueuePosition)
	}
	fmt.Fprintf(tw, "progress\t%d/%d nodes\n", st.NodesDone, st.NodesTotal)
	fmt.Fprintf(tw, "current node\t%s\n", dash(st.CurrentNode))
	if st.LastError != "" {
		fmt.Fprintf(tw, "last error\t%s\n", st.LastError)
	}
	for _, h := range st.Handovers {
		to := h.ToRobot
		if to == "" {
			to = "(waiting for a robot)"
		}
		line := fmt.Sprintf("%s → %s from step %d at %s: %s", h.FromRobot, to, h.FromStep+1, h.At.UTC().Format(time.RFC3339), h.Reason)
		if h.Decision != "" {
			line += fmt.Sprintf(" [%s by %s]", h.Decision, dash(h.DecidedBy))
		}
		fmt.Fprintf(tw, "handover\t%s\n", line)
	}
	if !st.ResolveBy.IsZero() {
		fmt.Fprintf(tw, "operator decision\tby %s: starter mission resolve %s --decision reassign|abort\n", st.ResolveBy.UTC().Format(time.RFC3339), st.MissionID)
	}
	if st.CancelNotApplied != "" {
		fmt.Fprintf(tw, "cancel not applied\t%s\n", st.CancelNotApplied)
	}
	if st.WaitingFor != "" {
		fmt.Fprintf(tw, "waiting for WMS\t%s: starter mission signal %s %s\n", st.WaitingFor, st.MissionID, strings.Fields(st.WaitingFor)[0])
	}
	for _, l := range st.Signals {
		fmt.Fprintf(tw, "signal\t%s\n", l)
	}
	for _, l := range st.IgnoredSignals {
		fmt.Fprintf(tw, "signal ignored\t%s\n", l)
	}
	for _, l := range st.Skipped {
		fmt.Fprintf(tw, "wait skipped\t%s\n", l)
	}
	for _, l := range st.Appended {
		fmt.Fprintf(tw, "appended\t%s\n", l)
	}
	if st.OrderUpdates > 0 {
		fmt.Fprintf(tw, "order updates\t%d\n", st.OrderUpdates)
	}
	if st.Protocol != "" {
		fmt.Fprintf(tw, "protocol\t%s\n", st.Protocol)
	}
	if st.OrderSends > 0 {
		ack := "not yet shown in the robot's state"
		if st.OrderAcknowledged {
			ack = "acknowledged"
		}
		re := ""
		if st.Replanned {
			re = ", re-planned after noRouteError"
		}
		fmt.Fprintf(tw, "order\t%s, sent %d×, %s%s\n", st.OrderID, st.OrderSends, ack, re)
	}
	fmt.Fprintf(tw, "web UI\t%s\n", link)
	tw.Flush()
}

func missionControlCmd(g *globalFlags, update string) *cobra.Command {
	var reason string
	priority := -1
	short := map[string]string{
		schemas.UpdateReprioritize: "Change the priority of a mission waiting for a robot; prints its new place in line",
		schemas.UpdateCancel:       "Cancel a mission: the robot gets cancelOrder, confirms, and is released (exit 1 if the robot refuses or does not confirm)",
		schemas.UpdatePause:        "Pause a driving mission (startPause) and wait for the robot to confirm (exit 1 if it refuses)",
		schemas.UpdateResume:       "Resume a paused mission (stopPause) and wait for the robot to confirm (exit 1 if it refuses)",
	}[update]
	cmd := &cobra.Command{
		Use:   update + " MISSION_ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if update == schemas.UpdateReprioritize && (priority < 0 || priority > 100) {
				return badInput("--priority 0..100 is required (higher goes first)")
			}
			c, _, err := dialTemporal(g)
			if err != nil {
				return err
			}
			defer c.Close()
			id := schemas.MissionIDOf(args[0])
			var uargs []any
			switch update {
			case schemas.UpdateCancel:
				uargs = []any{schemas.CancelRequest{Reason: reason, By: currentUser()}}
			case schemas.UpdateReprioritize:
				uargs = []any{schemas.ReprioritizeRequest{Priority: priority, Reason: reason, By: currentUser()}}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
				WorkflowID: schemas.MissionWorkflowID(id), UpdateName: update, Args: uargs,
				WaitForStage: client.WorkflowUpdateStageCompleted,
			})
			if err != nil {
				return updateError(id, update, err)
			}
			var st schemas.MissionStatus
			if err := h.Get(ctx, &st); err != nil {
				var ae *temporal.ApplicationError
				if errors.As(err, &ae) && ae.Type() == schemas.ErrRobotRefused {
					// The robot said no, or never answered: a failure, not bad input.
					return fmt.Errorf("mission %s: %s not applied: %s", id, update, ae.Error())
				}
				return updateError(id, update, err)
			}
			return emit(cmd.OutOrStdout(), g, st, func(w io.Writer) {
				fmt.Fprintf(w, "mission %s: %s done, state %s", id, update, st.State)
				if update == schemas.UpdateReprioritize {
					fmt.Fprintf(w, ", priority %d", st.Priority)
					if st.QueuePosition > 0 {
						fmt.Fprintf(w, ", queue position %d", st.QueuePosition)
					}
				}
				fmt.Fprintln(w)
			})
		},
	}
	if update == schemas.UpdateCancel || update == schemas.UpdateReprioritize {
		cmd.Flags().StringVar(&reason, "reason", "", "why (audited)")
	}
	if update == schemas.UpdateReprioritize {
		cmd.Use = update + " MISSION_ID --priority N"
		cmd.Flags().IntVar(&priority, "priority", -1, "the new priority, 0..100 (higher goes first)")
	}
	return cmd
}

func missionResolveCmd(g *globalFlags) *cobra.Command {
	var decision, reason string
	var restart bool
	cmd := &cobra.Command{
		Use:   "resolve MISSION_ID --decision reassign|abort",
		Short: "Decide about a mission whose robot failed with the load on board (state AWAITING_OPERATOR)",
		Long: `resolve answers a mission waiting for an operator: its robot failed after
picking the load and before dropping it. reassign goes on with another robot
from the first unfinished step (the load was moved onto it), or with
--restart from the first step (the load was put back at the pick station);
abort ends the mission as failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if decision != schemas.DecisionReassign && decision != schemas.DecisionAbort {
				return badInput("--decision %q: want %s or %s", decision, schemas.DecisionReassign, schemas.DecisionAbort)
			}
			if restart && decision != schemas.DecisionReassign {
				return badInput("--restart goes with --decision reassign")
			}
			c, _, err := dialTemporal(g)
			if err != nil {
				return err
			}
			defer c.Close()
			id := schemas.MissionIDOf(args[0])
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
				WorkflowID: schemas.MissionWorkflowID(id), UpdateName: schemas.UpdateResolve,
				Args:         []any{schemas.ResolveRequest{Decision: decision, RestartFromStart: restart, Reason: reason, By: currentUser()}},
				WaitForStage: client.WorkflowUpdateStageCompleted,
			})
			if err != nil {
				return updateError(id, schemas.UpdateResolve, err)
			}
			var st schemas.MissionStatus
			if err := h.Get(ctx, &st); err != nil {
				return updateError(id, schemas.UpdateResolve, err)
			}
			return emit(cmd.OutOrStdout(), g, st, func(w io.Writer) {
				fmt.Fprintf(w, "mission %s: %s, state %s\n", id, decision, st.State)
			})
		},
	}
	cmd.Flags().StringVar(&decision, "decision", "", "reassign or abort")
	cmd.Flags().BoolVar(&restart, "restart", false, "with reassign: run every step again (the load is back at the pick station)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (audited)")
	return cmd
}

// updateError turns a rejected update (validator) into a bad-input error.
func updateError(id, update string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return badInput("no running mission %s", id)
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return badInput("%s refused: %s", update, ae.Error())
	}
	return fmt.Errorf("%s mission %s: %w", update, id, err)
}

func missionListCmd(g *globalFlags) *cobra.Command {
	var state, robot, site string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List missions (visibility query on MissionState, RobotId, Site)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := []string{fmt.Sprintf("WorkflowType = '%s'", schemas.MissionWorkflowType)}
			for field, v := range map[string]string{schemas.SearchAttrMissionState: strings.ToUpper(state), schemas.SearchAttrRobotID: robot, schemas.SearchAttrSite: site} {
				if v != "" {
					if strings.ContainsAny(v, "'\\") {
						return badInput("--%s %q: quotes are not allowed", strings.ToLower(field), v)
					}
					q = append(q, fmt.Sprintf("%s = '%s'", field, v))
				}
			}
			c, _, err := dialTemporal(g)
			if err != nil {
				return err
			}
			defer c.Close()
			type row struct {
				MissionID string    `json:"missionId"`
				State     string    `json:"state"`
				Robot     string    `json:"robotId"`
				Site      string    `json:"site"`
				Priority  int64     `json:"priority"`
				Status    string    `json:"workflowStatus"`
				Started   time.Time `json:"startedAt"`
			}
			var rows []row
			var token []byte
			for len(rows) < limit {
				resp, err := c.ListWorkflow(cmd.Context(), &workflowservice.ListWorkflowExecutionsRequest{Query: strings.Join(q, " AND "), PageSize: int32(min(limit, 1000)), NextPageToken: token})
				if err != nil {
					return fmt.Errorf("list missions: %w", err)
				}
				for _, e := range resp.Executions {
					r := row{MissionID: schemas.MissionIDOf(e.Execution.WorkflowId), Status: strings.TrimPrefix(e.Status.String(), "WORKFLOW_EXECUTION_STATUS_"), Started: e.StartTime.AsTime()}
					sa, _ := searchAttrs(e.SearchAttributes)
					r.State, _ = sa[schemas.SearchAttrMissionState].(string)
					r.Robot, _ = sa[schemas.SearchAttrRobotID].(string)
					r.Site, _ = sa[schemas.SearchAttrSite].(string)
					if p, ok := sa[schemas.SearchAttrPriority].(int64); ok {
						r.Priority = p
					}
					rows = append(rows, r)
				}
				token = resp.NextPageToken
				if len(token) == 0 {
					break
				}
			}
			return emit(cmd.OutOrStdout(), g, rows, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
				fmt.Fprintln(tw, "MISSION\tSTATE\tROBOT\tSITE\tPRIORITY\tWORKFLOW\tSTARTED")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.MissionID, dash(r.State), dash(r.Robot), dash(r.Site), r.Priority, r.Status, r.Started.Local().Format(time.DateTime))
				}
				tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only missions in this state (QUEUED, DRIVING, COMPLETED, …)")
	cmd.Flags().StringVar(&robot, "robot", "", "only missions of this robot (manufacturer/serialNumber)")
	cmd.Flags().StringVar(&site, "site", "", "only missions at this site")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many")
	return cmd
}

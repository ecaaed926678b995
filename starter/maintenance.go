package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/fleetflow/fleetflow/schemas"
)

func maintenanceCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "maintenance",
		Short: "Take a robot out of service, service it, sign it off (Maintenance workflows)",
		Long: `A Maintenance workflow (task queue maintenance, ID
maintenance-<manufacturer>.<serial>-<YYYYMMDD>) drains a robot (missions no
longer get it; the one it runs finishes), reserves it, drives it to a
service station, runs its self-test (instant action diagnostics), and waits
for a technician's sign-off: pass returns it to service, fail takes it out
of service. A sign-off that does not come in time escalates. MAINTENANCE is
the workflow ID, or a robot ID for today's maintenance of that robot.`,
	}
	cmd.AddCommand(maintenanceStartCmd(g), maintenanceStatusCmd(g), maintenanceCompleteCmd(g), maintenanceEscalateCmd(g), maintenanceListCmd(g), maintenanceScheduleCmd(g))
	return cmd
}

// maintenanceID reads MAINTENANCE: a workflow ID, or a robot ID (today's).
func maintenanceID(arg string) string {
	if strings.HasPrefix(arg, schemas.MaintenanceWorkflowPrefix) {
		return arg
	}
	return schemas.MaintenanceWorkflowID(arg, time.Now().UTC().Format("20060102"))
}

func maintenanceStartCmd(g *globalFlags) *cobra.Command {
	var in schemas.MaintenanceInput
	var signOff time.Duration
	var label string
	var wait bool
	cmd := &cobra.Command{
		Use:   "start ROBOT_ID --reason TEXT [--station STATION] [--diagnostics] [--sign-off-timeout 4h]",
		Short: "Start a maintenance of a robot",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if in.Reason == "" {
				return badInput("--reason is required (audited)")
			}
			if signOff < 0 || (signOff > 0 && signOff < time.Second) {
				return badInput("--sign-off-timeout %s: want at least 1s", signOff)
			}
			c, cfg, err := dialTemporal(g)
			if err != nil {
				return err
			}
			defer c.Close()
			in.RobotID, in.RequestedBy = args[0], currentUser()
			if in.Site == "" {
				in.Site = cfg.Site.Name
			}
			in.SignOffTimeoutSeconds = int(signOff / time.Second)
			if label == "" {
				label = time.Now().UTC().Format("20060102")
			}
			id := schemas.MaintenanceWorkflowID(in.RobotID, label)
			run, err := c.ExecuteWorkflow(cmd.Context(), client.StartWorkflowOptions{
				ID: id, TaskQueue: cfg.TaskQueues.Maintenance, WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
				WorkflowExecutionErrorWhenAlreadyStarted: true,
				StaticSummary:                            fmt.Sprintf("Maintenance of %s · %s", in.RobotID, in.Reason),
			}, schemas.MaintenanceWorkflowType, in)
			var started *serviceerror.WorkflowExecutionAlreadyStarted
			if errors.As(err, &started) {
				return badInput("maintenance %s already exists; give another --id", id)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "started %s %s\n", id, webLink(cfg, id))
			if !wait {
				return emit(cmd.OutOrStdout(), g, map[string]string{"workflowId": id, "runId": run.GetRunID()}, func(w io.Writer) {})
			}
			var st schemas.MaintenanceStatus
			if err := run.Get(cmd.Context(), &st); err != nil {
				return fmt.Errorf("maintenance %s: %w", id, err)
			}
			return emit(cmd.OutOrStdout(), g, st, func(w io.Writer) { printMaintenance(w, id, st) })
		},
	}
	cmd.Flags().StringVar(&in.Reason, "reason", "", "why the robot is serviced (audited)")
	cmd.Flags().StringVar(&in.Station, "station", "", "service station of the site map to drive to (default: serviced where it stands)")
	cmd.Flags().StringVar(&in.Site, "site", "", "the robot's site (default site.name)")
	cmd.Flags().BoolVar(&in.Diagnostics, "diagnostics", false, "run the robot's self-test at the station")
	cmd.Flags().DurationVar(&signOff, "sign-off-timeout", 0, "sign-off deadline after the robot is ready; past it the maintenance escalates (default 4h)")
	cmd.Flags().StringVar(&label, "id", "", "label of this maintenance in its workflow ID (default today's date, YYYYMMDD)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the maintenance to end and print it")
	return cmd
}

func maintenanceStatusCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status MAINTENANCE",
		Short: "Show a maintenance's state, diagnostics, escalations and sign-off (query status)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := dialTemporal(g)
			if err != nil {
				return err
			}
			defer c.Close()
			id := maintenanceID(args[0])
			v, err := c.QueryWorkflow(cmd.Context(), id, "", schemas.QueryStatus)
			var nf *serviceerror.NotFound
			if errors.As(err, &nf) {
				return badInput("no maintenance %s", id)
			}
			if err != nil {
				return err
			}
			var st schemas.MaintenanceStatus
			if err := v.Get(&st); err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), g, st, func(w io.Writer) { printMaintenance(w, id, st) })
		},
	}
}

func printMaintenance(w io.Writer, id string, st schemas.MaintenanceStatus) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "maintenance\t%s\n", id)
	fmt.Fprintf(tw, "robot\t%s\n", st.RobotID)
	fmt.Fprintf(tw, "state\t%s\n", st.State)
	fmt.Fprintf(tw, "reason\t%s\n", st.Reason)
	fmt.Fprintf(tw, "station\t%s\n", dash(st.Station))
	if st.Diagnostics != "" {
		fmt.Fprintf(tw, "diagnostics\t%s\n", st.Diagnostics)
	}
	if !st.SignOffDue.IsZero() && st.Result == "" {
		fmt.Fprintf(tw, "sign-off due\t%s: starter maintenance complete %s --result pass|fail\n", st.SignOffDue.UTC().Format(time.RFC3339), id)
	}
	for _, e := range st.Escalations {
		fmt.Fprintf(tw, "escalated\t%s\n", e)
	}
	if st.Result != "" {
		fmt.Fprintf(tw, "signed off\t%s by %s: %s\n", st.Result, dash(st.SignedOffBy), st.Notes)
	}
	if st.LastError != "" {
		fmt.Fprintf(tw, "last error\t%s\n", st.LastError)
	}
	tw.Flush()
}

// maintenanceUpdate sends update name to a maintenance and prints its answer.
func maintenanceUpdate(cmd *cobra.Command, g *globalFlags, arg, name string, req any) error {
	c, _, err := dialTemporal(g)
	if err != nil {
		return err
	}
	defer c.Close()
	id := maintenanceID(arg)
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
	defer cancel()
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: name, Args: []any{req}, WaitForStage: client.WorkflowUpdateStageCompleted})
	var st schemas.MaintenanceStatus
	if err == nil {
		err = h.Get(ctx, &st)
	}
	if err != nil {
		return updateError(id, name, err)
	}
	return emit(cmd.OutOrStdout(), g, st, func(w io.Writer) { printMaintenance(w, id, st) })
}

func maintenanceCompleteCmd(g *globalFlags) *cobra.Command {
	var s schemas.SignOff
	cmd := &cobra.Command{
		Use:   "complete MAINTENANCE --result pass|fail [--notes TEXT]",
		Short: "Sign a maintenance off: pass returns the robot to service, fail takes it out of service",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if s.Result != schemas.SignOffPass && s.Result != schemas.SignOffFail {
				return badInput("--result %q: want pass or fail", s.Result)
			}
			s.By = currentUser()
			return maintenanceUpdate(cmd, g, args[0], schemas.UpdateComplete, s)
		},
	}
	cmd.Flags().StringVar(&s.Result, "result", "", "pass or fail")
	cmd.Flags().StringVar(&s.Notes, "notes", "", "what was done (audited)")
	return cmd
}

func maintenanceEscalateCmd(g *globalFlags) *cobra.Command {
	var e schemas.EscalateRequest
	cmd := &cobra.Command{
		Use:   "escalate MAINTENANCE --reason TEXT",
		Short: "Escalate a maintenance (it goes on waiting for its sign-off)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if e.Reason == "" {
				return badInput("--reason is required")
			}
			e.By = currentUser()
			return maintenanceUpdate(cmd, g, args[0], schemas.UpdateEscalate, e)
		},
	}
	cmd.Flags().StringVar(&e.Reason, "reason", "", "why (audited)")
	return cmd
}

func maintenanceListCmd(g *globalFlags) *cobra.Command {
	var open bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List maintenances (visibility)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := dialTemporal(g)
			if err != nil {
				return err
			}
			defer c.Close()
			q := fmt.Sprintf("WorkflowType = '%s'", schemas.MaintenanceWorkflowType)
			if open {
				q += " AND ExecutionStatus = 'Running'"
			}
			resp, err := c.ListWorkflow(cmd.Context(), &workflowservice.ListWorkflowExecutionsRequest{Query: q, PageSize: 200})
			if err != nil {
				return fmt.Errorf("list maintenances: %w", err)
			}
			type row struct {
				ID      string    `json:"workflowId"`
				Status  string    `json:"workflowStatus"`
				Started time.Time `json:"startedAt"`
			}
			var rows []row
			for _, e := range resp.Executions {
				rows = append(rows, row{e.Execution.WorkflowId, strings.TrimPrefix(enumspb.WorkflowExecutionStatus_name[int32(e.Status)], "WORKFLOW_EXECUTION_STATUS_"), e.StartTime.AsTime()})
			}
			return emit(cmd.OutOrStdout(), g, rows, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
				fmt.Fprintln(tw, "MAINTENANCE\tWORKFLOW\tSTARTED")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", r.ID, r.Status, r.Started.Local().Format(time.DateTime))
				}
				tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&open, "open", false, "only those still running")
	return cmd
}

func maintenanceScheduleCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Periodic maintenance of a robot (Temporal Schedules)",
		Long: `A maintenance schedule (Temporal Schedule maintenance-schedule-<robot>)
starts a Maintenance workflow for its robot every --every or on --cron
(the Web UI's Schedules page shows it); a maintenance still running when
the next is due is not doubled (overlap policy skip).

A site's schedule (create --site SITE without a robot;
maintenance-schedule-site-<site>) starts a MaintenanceRound instead: every
robot of the site in service is serviced in turn, --parallel at a time
(default 1), each by its own Maintenance workflow with its sign-off.`,
	}
	var in schemas.MaintenanceInput
	var every time.Duration
	var cron string
	var parallel int
	create := &cobra.Command{
		Use:   "create (ROBOT_ID | --site SITE [--parallel N]) (--every DURATION | --cron 'M H D M W') --reason TEXT [--station STATION] [--diagnostics]",
		Short: "Create a robot's, or a whole site's, maintenance schedule",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && in.Site == "" {
				return badInput("give a ROBOT_ID, or --site SITE for a schedule of every robot of the site")
			}
			if len(args) == 1 && parallel != 0 {
				return badInput("--parallel is for a site's schedule (no ROBOT_ID)")
			}
			if parallel < 0 {
				return badInput("--parallel %d: want at least 1", parallel)
			}
			if (every > 0) == (cron != "") {
				return badInput("give one of --every (at least 1m) or --cron")
			}
			if every > 0 && every < time.Minute {
				return badInput("--every %s: want at least 1m", every)
			}
			if in.Reason == "" {
				return badInput("--reason is required (audited)")
			}
			c, cfg, err := dialTemporal(g)
			if err != nil {
				return err
			}
			defer c.Close()
			in.RequestedBy = "schedule:" + currentUser()
			spec := client.ScheduleSpec{}
			if every > 0 {
				spec.Intervals = []client.ScheduleIntervalSpec{{Every: every}}
			} else {
				spec.CronExpressions = []string{cron}
			}
			var id, what string
			var action *client.ScheduleWorkflowAction
			if len(args) == 1 {
				in.RobotID = args[0]
				if in.Site == "" {
					in.Site = cfg.Site.Name
				}
				id, what = schemas.MaintenanceScheduleID(in.RobotID), "robot "+in.RobotID
				action = &client.ScheduleWorkflowAction{
					ID:       schemas.MaintenanceWorkflowID(in.RobotID, "scheduled"),
					Workflow: schemas.MaintenanceWorkflowType, Args: []any{in}, TaskQueue: cfg.TaskQueues.Maintenance,
				}
			} else {
				id, what = schemas.MaintenanceRoundScheduleID(in.Site), "site "+in.Site
				action = &client.ScheduleWorkflowAction{
					ID: schemas.MaintenanceRoundWorkflowID(in.Site), Workflow: schemas.MaintenanceRoundWorkflowType, TaskQueue: cfg.TaskQueues.Maintenance,
					Args: []any{schemas.MaintenanceRoundInput{Site: in.Site, Station: in.Station, Reason: in.Reason, RequestedBy: in.RequestedBy,
						Diagnostics: in.Diagnostics, Parallel: parallel}},
				}
			}
			_, err = c.ScheduleClient().Create(cmd.Context(), client.ScheduleOptions{
				ID: id, Spec: spec, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, Action: action,
				Note: fmt.Sprintf("fleetflow: periodic maintenance of %s: %s", what, in.Reason),
			})
			if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
				return badInput("%s already has a maintenance schedule (%s); delete it first", what, id)
			}
			if err != nil {
				return fmt.Errorf("create schedule %s: %w", id, err)
			}
			return emit(cmd.OutOrStdout(), g, map[string]string{"scheduleId": id}, func(w io.Writer) {
				fmt.Fprintf(w, "schedule %s created\n", id)
			})
		},
	}
	create.Flags().DurationVar(&every, "every", 0, "start a maintenance this often (e.g. 720h)")
	create.Flags().StringVar(&cron, "cron", "", "or on this cron expression (UTC)")
	create.Flags().StringVar(&in.Reason, "reason", "", "why (audited)")
	create.Flags().StringVar(&in.Station, "station", "", "service station to drive to")
	create.Flags().StringVar(&in.Site, "site", "", "with ROBOT_ID: the robot's site (default site.name); alone: a schedule for every robot of this site")
	create.Flags().IntVar(&parallel, "parallel", 0, "a site's schedule: robots serviced at once (default 1)")
	create.Flags().BoolVar(&in.Diagnostics, "diagnostics", false, "run the self-test")
	list := &cobra.Command{
		Use:   "list",
		Short: "List maintenance schedules with their next run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := dialTemporal(g)
			if err != nil {
				return err
			}
			defer c.Close()
			it, err := c.ScheduleClient().List(cmd.Context(), client.ScheduleListOptions{PageSize: 200})
			if err != nil {
				return err
			}
			type row struct {
				ID   string    `json:"scheduleId"`
				Next time.Time `json:"nextRun,omitzero"`
				Note string    `json:"note"`
			}
			var rows []row
			for it.HasNext() {
				e, err := it.Next()
				if err != nil {
					return err
				}
				if !strings.HasPrefix(e.ID, "maintenance-schedule-") {
					continue
				}
				r := row{ID: e.ID, Note: e.Note}
				if len(e.NextActionTimes) > 0 {
					r.Next = e.NextActionTimes[0]
				}
				rows = append(rows, r)
			}
			return emit(cmd.OutOrStdout(), g, rows, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
				fmt.Fprintln(tw, "SCHEDULE\tNEXT RUN\tNOTE")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", r.ID, r.Next.Local().Format(time.DateTime), r.Note)
				}
				tw.Flush()
			})
		},
	}
	var delSite string
	del := &cobra.Command{
		Use:   "delete (ROBOT_ID | --site SITE)",
		Short: "Delete a robot's or a site's maintenance schedule (maintenances it started go on)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (delSite != "") {
				return badInput("give a ROBOT_ID or --site SITE")
			}
			c, _, err := dialTemporal(g)
			if err != nil {
				return err
			}
			defer c.Close()
			id := schemas.MaintenanceRoundScheduleID(delSite)
			if len(args) == 1 {
				id = schemas.MaintenanceScheduleID(args[0])
			}
			err = c.ScheduleClient().GetHandle(cmd.Context(), id).Delete(cmd.Context())
			var nf *serviceerror.NotFound
			if errors.As(err, &nf) {
				return badInput("no schedule %s", id)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schedule %s deleted\n", id)
			return nil
		},
	}
	del.Flags().StringVar(&delSite, "site", "", "delete the site's schedule")
	cmd.AddCommand(create, list, del)
	return cmd
}

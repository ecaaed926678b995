package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/fleetflow/fleetflow/internal/ops"
	"github.com/fleetflow/fleetflow/schemas"
)

// rolloutDial connects to Temporal for the rollout commands. It is a
// variable so that tests can prove a command refused its input before
// dialing, and stand in a fake client.
var rolloutDial = dialTemporal

// rolloutPollEvery is how often `rollout start --wait` queries the status
// (a variable for tests).
var rolloutPollEvery = time.Second

func rolloutCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Roll signed software out to the fleet in waves, watch it, pause, promote or abort it",
		Long: `A rollout installs one signed artifact on the robots a spec selects, in waves:
a canary, then cumulative percentages of the targets, with a soak time after
each wave. It stops by itself when the failures reach the spec's abort
criteria. Each rollout runs as the durable workflow rollout-<id> on the ota
task queue; each robot's update is its child rollout-<id>-robot-<robotId>.

Commands that take an ID accept it with or without the "rollout-" prefix.`,
		Example: `  starter rollout start -f testdata/rollouts/r-fleetos-2.0.0.json --wait
  starter rollout status r-fleetos-2.0.0
  starter rollout pause r-fleetos-2.0.0
  starter rollout promote r-fleetos-2.0.0     # end the current soak early
  starter rollout abort r-fleetos-2.0.0 --reason "battery drain on canary"
  starter rollout list --state running`,
	}
	cmd.AddCommand(rolloutStartCmd(g), rolloutStatusCmd(g),
		rolloutControlCmd(g, schemas.UpdatePause), rolloutControlCmd(g, schemas.UpdateResume),
		rolloutControlCmd(g, schemas.UpdatePromote), rolloutControlCmd(g, schemas.UpdateAbort),
		rolloutListCmd(g))
	return cmd
}

func rolloutStartCmd(g *globalFlags) *cobra.Command {
	var file string
	var wait bool
	cmd := &cobra.Command{
		Use:   "start -f FILE",
		Short: "Start a rollout from a spec file (JSON or YAML, schemas/rollout.schema.json)",
		Long: `Validate a rollout spec and start it as the workflow rollout-<rolloutId>.

A spec that breaks the schema is refused with every violation and its JSON
path, and nothing starts (exit 2). A rolloutId that was used before is
refused too (exit 2): each rollout ID starts one workflow, ever.

Without --wait, prints the workflow ID and its Web UI link and returns; the
rollout goes on in Temporal. With --wait, prints a line each time the
rollout's progress changes and, at the end, the wave and robot tables; it
exits 0 when the rollout COMPLETED and 1 when it was ABORTED or FAILED.
Ctrl-C stops watching, not the rollout.`,
		Example: `  starter rollout start -f testdata/rollouts/r-fleetos-2.0.0.json
  starter rollout start -f rollout.yaml --wait
  starter rollout start -f rollout.yaml --wait -o json > result.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return badInput("-f FILE is required: the rollout spec to start")
			}
			spec, err := schemas.LoadRollout(file)
			if err != nil {
				return usageError{err}
			}
			c, cfg, err := rolloutDial(g)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			run, err := ops.StartRollout(ctx, c, cfg, spec, currentUser())
			if err != nil {
				return err
			}
			link := webLink(cfg, run.GetID())
			out := cmd.OutOrStdout()
			if !wait {
				return emit(out, g, map[string]any{"rolloutId": spec.RolloutID, "workflowId": run.GetID(), "runId": run.GetRunID(), "webUI": link},
					func(w io.Writer) {
						fmt.Fprintf(w, "started rollout %s (workflow %s)\n%s\n", spec.RolloutID, run.GetID(), link)
					})
			}
			// Progress lines go to stdout for people and to stderr with
			// -o json, so that stdout stays one JSON document.
			progress := out
			if g.output == "json" {
				progress = cmd.ErrOrStderr()
			} else {
				fmt.Fprintf(out, "started rollout %s (workflow %s)\n%s\n", spec.RolloutID, run.GetID(), link)
			}
			st, err := ops.WaitRollout(ctx, c, run, ops.WaveLabels(spec.Waves, false), progress, rolloutPollEvery)
			res := map[string]any{"rolloutId": spec.RolloutID, "workflowId": run.GetID(), "webUI": link, "result": st}
			if err != nil {
				res["error"] = rolloutFailure(st, err)
			}
			if eerr := emit(out, g, res, func(w io.Writer) {
				fmt.Fprintln(w)
				printRolloutStatus(w, st, link)
				if err != nil {
					fmt.Fprintf(w, "\nrollout %s %s: %s\n", spec.RolloutID, st.State, rolloutFailure(st, err))
				}
			}); eerr != nil {
				return eerr
			}
			if code := rolloutExitCode(st, err); code != 0 {
				return silentExit(code)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "rollout spec file (JSON or YAML)")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the rollout to its end, printing progress; exit 0 if it COMPLETED, 1 if not")
	return cmd
}

// rolloutExitCode maps how a waited-for rollout ended to the exit code, as
// `mission start --wait` does: 0 when it COMPLETED, 1 when it ended in any
// other way (ABORTED, FAILED, an error from the workflow).
func rolloutExitCode(st schemas.RolloutStatus, err error) int {
	if err != nil || st.State != schemas.RolloutCompleted {
		return 1
	}
	return 0
}

// rolloutFailure says why a rollout ended with an error: the abort reason
// of an aborted one, else the workflow's failure message (without the SDK's
// "(type: …, retryable: …)").
func rolloutFailure(st schemas.RolloutStatus, err error) string {
	if st.State == schemas.RolloutAborted && st.AbortReason != "" {
		return st.AbortReason
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Message()
	}
	return ops.RootCause(err)
}

// rolloutIDs are the rollout IDs an argument may mean, most likely first:
// "rollout-r1" is rollout r1 (the workflow ID was pasted), but a rollout
// may itself be named "rollout-r1" (its workflow rollout-rollout-r1).
func rolloutIDs(arg string) []string {
	if id, ok := strings.CutPrefix(arg, schemas.RolloutWorkflowPrefix); ok && id != "" {
		return []string{id, arg}
	}
	return []string{arg}
}

// rolloutID is the rollout ID of a workflow ID or an argument: "rollout-"
// trimmed once.
func rolloutID(arg string) string { return rolloutIDs(arg)[0] }

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

// eachRolloutID calls f with each ID arg may mean until one is not a
// NotFound; a NotFound for all of them is reported for the first.
func eachRolloutID(arg string, f func(id string) error) error {
	var first error
	for _, id := range rolloutIDs(arg) {
		err := f(id)
		if !isNotFound(err) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// queryRollout asks the rollout arg (an ID, with or without "rollout-") for
// its status. No such rollout is a bad-input error.
func queryRollout(ctx context.Context, c client.Client, arg string) (schemas.RolloutStatus, error) {
	var st schemas.RolloutStatus
	err := eachRolloutID(arg, func(id string) error {
		var err error
		st, err = ops.QueryRollout(ctx, c, schemas.RolloutWorkflowID(id))
		return err
	})
	if isNotFound(err) {
		return st, badInput("no rollout %s (workflow %s not found)", rolloutID(arg), schemas.RolloutWorkflowID(rolloutID(arg)))
	}
	return st, err
}

func rolloutStatusCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status ROLLOUT_ID",
		Short: "Show a rollout's state, waves and every robot's update (query status)",
		Long: `Show where a rollout stands: artifact and version, state, failure rate,
soak deadline, abort reason, the robots the selector matched but skipped,
then one row per wave and one row per target robot. -o json prints the
workflow's RolloutStatus as is.

Ended rollouts are answered too, as long as an ota worker is running.`,
		Example: `  starter rollout status r-fleetos-2.0.0
  starter rollout status rollout-r-fleetos-2.0.0 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cfg, err := rolloutDial(g)
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := queryRollout(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), g, st, func(w io.Writer) {
				printRolloutStatus(w, st, webLink(cfg, schemas.RolloutWorkflowID(st.RolloutID)))
			})
		},
	}
}

// printRolloutStatus writes the header lines, the wave table and the robot
// table of a rollout.
func printRolloutStatus(w io.Writer, st schemas.RolloutStatus, link string) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "rollout\t%s\n", dash(st.RolloutID))
	fmt.Fprintf(tw, "artifact\t%s\n", dash(st.Artifact))
	version := dash(st.Version)
	if st.Rollback {
		version += " (rollback)"
	}
	fmt.Fprintf(tw, "version\t%s\n", version)
	state := dash(st.State)
	if st.Paused && st.State != schemas.RolloutPaused {
		state += " (paused)"
	}
	fmt.Fprintf(tw, "state\t%s\n", state)
	if n := len(st.Waves); n > 0 {
		fmt.Fprintf(tw, "wave\t%d/%d\n", min(max(st.CurrentWave, 0), n-1)+1, n)
	}
	c := st.Counts
	fmt.Fprintf(tw, "robots\t%d targets: %d succeeded, %d failed, %d timed out, %d in flight, %d skipped, %d rolled back, %d cancelled\n",
		c.Targets, c.Succeeded, c.Failed, c.TimedOut, c.InFlight, c.Skipped, c.RolledBack, c.Cancelled)
	if c.RollbackFailed > 0 {
		fmt.Fprintf(tw, "rollback failed\t%d robots (ROLLBACK_FAILED: see each robot's reason)\n", c.RollbackFailed)
	}
	fmt.Fprintf(tw, "failure rate\t%s%%\n", strconv.FormatFloat(st.FailureRate, 'f', 1, 64))
	if !st.SoakUntil.IsZero() {
		fmt.Fprintf(tw, "soak until\t%s\n", st.SoakUntil.Local().Format(time.DateTime))
	}
	if st.AbortReason != "" {
		fmt.Fprintf(tw, "abort reason\t%s\n", st.AbortReason)
	}
	if st.LastError != "" {
		fmt.Fprintf(tw, "last error\t%s\n", st.LastError)
	}
	for i, s := range st.Skipped {
		key := ""
		if i == 0 {
			key = "skipped"
		}
		fmt.Fprintf(tw, "%s\t%s: %s\n", key, s.ID, dash(s.Reason))
	}
	if !st.StartedAt.IsZero() {
		fmt.Fprintf(tw, "started\t%s\n", st.StartedAt.Local().Format(time.DateTime))
	}
	if !st.UpdatedAt.IsZero() {
		fmt.Fprintf(tw, "updated\t%s\n", st.UpdatedAt.Local().Format(time.DateTime))
	}
	fmt.Fprintf(tw, "web UI\t%s\n", link)
	tw.Flush()

	if len(st.Waves) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "WAVE\tSIZE\tSTATE\tSTARTED\tSUCCEEDED\tFAILED\tTIMED-OUT")
		for _, v := range st.Waves {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%d\t%d\t%d\n", v.Index+1, v.Size, dash(v.State), v.Started, v.Succeeded, v.Failed, v.TimedOut)
		}
		tw.Flush()
	}
	if len(st.Robots) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "ROBOT\tWAVE\tSTATE\tFROM\tTO\tATTEMPTS\tREASON")
		for _, r := range st.Robots {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%s\n", r.RobotID, r.Wave+1, dash(r.State), dash(r.FromVersion), dash(r.Version), r.Attempts, dash(r.Reason))
		}
		tw.Flush()
	}
}

func rolloutControlCmd(g *globalFlags, update string) *cobra.Command {
	var reason string
	var wait bool
	type help struct{ short, long, example string }
	h := map[string]help{
		schemas.UpdatePause: {
			"Pause a rollout: no further robot starts an update",
			`Pause a rollout. Robots already updating finish their update; no other robot
starts until the rollout is resumed. Refused (exit 2) when the rollout has
ended or is already paused.`,
			"  starter rollout pause r-fleetos-2.0.0",
		},
		schemas.UpdateResume: {
			"Resume a paused rollout",
			`Resume a paused rollout where it stopped. Refused (exit 2) when the rollout
is not paused.`,
			"  starter rollout resume r-fleetos-2.0.0",
		},
		schemas.UpdatePromote: {
			"End the current soak early and start the next wave",
			`Promote a rollout: end the soak time after the current wave now and go on
with the next wave. Refused (exit 2) when the rollout is not soaking.`,
			"  starter rollout promote r-fleetos-2.0.0",
		},
		schemas.UpdateAbort: {
			"Abort a rollout (--reason required): no further robot is updated",
			`Abort a rollout: no further robot starts an update. If the spec set
rollbackOnAbort, robots this rollout updated get their previous version back.
The reason is required and goes to the audit log with your user name.
Refused (exit 2) when the rollout has already ended or is aborting.`,
			`  starter rollout abort r-fleetos-2.0.0 --reason "canary reboots in a loop, INC-311"`,
		},
	}[update]
	cmd := &cobra.Command{
		Use:     update + " ROLLOUT_ID",
		Short:   h.short,
		Long:    h.long,
		Example: h.example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var uargs []any
			if update == schemas.UpdateAbort {
				if strings.TrimSpace(reason) == "" {
					return badInput("--reason is required: say why the rollout stops (it is audited)")
				}
				uargs = []any{schemas.AbortRequest{Reason: reason, By: currentUser()}}
			}
			c, _, err := rolloutDial(g)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			st, err := updateRollout(ctx, c, args[0], update, uargs)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !wait {
				return emit(out, g, st, func(w io.Writer) {
					fmt.Fprintln(w, controlOutcome(update, st))
					if st.AbortReason != "" {
						fmt.Fprintf(w, "abort reason: %s\n", st.AbortReason)
					}
				})
			}
			// Follow the abort to its end: robots in flight finish, the
			// rollback (rollbackOnAbort) runs, the rollout ends ABORTED.
			progress := out
			if g.output == "json" {
				progress = cmd.ErrOrStderr()
			} else {
				fmt.Fprintln(out, controlOutcome(update, st))
			}
			run := c.GetWorkflow(cmd.Context(), schemas.RolloutWorkflowID(rolloutID(args[0])), "")
			final, werr := ops.WaitRollout(cmd.Context(), c, run, nil, progress, rolloutPollEvery)
			if cmd.Context().Err() != nil {
				id := rolloutID(args[0])
				return fmt.Errorf("stopped following rollout %s; the abort goes on (starter rollout status %s)", id, id)
			}
			if eerr := emit(out, g, final, func(w io.Writer) {
				fmt.Fprintln(w)
				printRolloutStatus(w, final, "")
			}); eerr != nil {
				return eerr
			}
			if final.State != schemas.RolloutAborted {
				why := "its last robots finished before the abort took"
				if werr != nil {
					why = rolloutFailure(final, werr)
				}
				return fmt.Errorf("rollout %s ended %s, not ABORTED: %s", dash(final.RolloutID), final.State, why)
			}
			return nil
		},
	}
	if update == schemas.UpdateAbort {
		cmd.Flags().StringVar(&reason, "reason", "", "why the rollout stops (required, audited)")
		cmd.Flags().BoolVar(&wait, "wait", false, "follow the abort until the rollout has ended (robots in flight finished, rollback done), printing progress; exit 0 once it is ABORTED")
	}
	return cmd
}

// controlOutcome says what an accepted rollout update has done by the
// time it returns, and no more: an abort or a pause stops new robots at
// once, while the robots in flight finish their update (after an abort,
// the rollback follows); the rollout is ABORTED only when all that is
// over.
func controlOutcome(update string, st schemas.RolloutStatus) string {
	id := dash(st.RolloutID)
	inFlight := ""
	if n := st.Counts.InFlight; n > 0 {
		inFlight = fmt.Sprintf("; of the %d robot(s) in flight, those installing finish their update first", n)
		if update == schemas.UpdateAbort {
			inFlight += " (those still waiting for their robot stop)"
		}
	}
	switch update {
	case schemas.UpdateAbort:
		return fmt.Sprintf("rollout %s: abort accepted: no further robot starts%s, then it ends ABORTED (state now %s; follow with `starter rollout status %s`, or abort with --wait)",
			id, inFlight, st.State, id)
	case schemas.UpdatePause:
		return fmt.Sprintf("rollout %s: paused: no further robot starts until resumed%s (state %s)", id, inFlight, st.State)
	case schemas.UpdateResume:
		return fmt.Sprintf("rollout %s: resumed (state %s)", id, st.State)
	case schemas.UpdatePromote:
		return fmt.Sprintf("rollout %s: promoted: the soak is over, the next wave starts (state %s)", id, st.State)
	}
	return fmt.Sprintf("rollout %s: %s accepted (state %s)", id, update, st.State)
}

// updateRollout sends update to the rollout arg and waits until the
// workflow has handled it. A rejected update (its validator's message), or
// no running rollout, is a bad-input error.
func updateRollout(ctx context.Context, c client.Client, arg, update string, uargs []any) (schemas.RolloutStatus, error) {
	var st schemas.RolloutStatus
	err := eachRolloutID(arg, func(id string) error {
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: schemas.RolloutWorkflowID(id), UpdateName: update, Args: uargs,
			WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err != nil {
			return err
		}
		return h.Get(ctx, &st)
	})
	if err == nil {
		return st, nil
	}
	id := rolloutID(arg)
	if isNotFound(err) {
		return st, badInput("no running rollout %s (workflow %s not found or already ended)", id, schemas.RolloutWorkflowID(id))
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		// Message, not Error: a validator's plain error arrives typed
		// "errorString", which means nothing to the person who asked.
		return st, badInput("%s refused: %s", update, ae.Message())
	}
	return st, fmt.Errorf("%s rollout %s: %w", update, id, err)
}

// executionStatuses maps the --state values of `rollout list` (any case,
// "-" and "_" ignored) to visibility's ExecutionStatus names.
var executionStatuses = map[string]string{
	"running": "Running", "completed": "Completed", "failed": "Failed",
	"canceled": "Canceled", "cancelled": "Canceled", "terminated": "Terminated",
	"timedout": "TimedOut", "continuedasnew": "ContinuedAsNew",
}

// rolloutListQuery is the visibility query of `rollout list`. Each
// continue-as-new leaves a closed run behind; those are left out unless
// state asks for them, so each rollout is listed once.
func rolloutListQuery(state string) (string, error) {
	q := fmt.Sprintf("WorkflowType = '%s'", schemas.RolloutWorkflowType)
	if state == "" {
		return q + " AND ExecutionStatus != 'ContinuedAsNew'", nil
	}
	s, ok := executionStatuses[strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(state))]
	if !ok {
		names := []string{"Running", "Completed", "Failed", "Canceled", "Terminated", "TimedOut", "ContinuedAsNew"}
		return "", badInput("--state %q: want one of %s", state, strings.Join(names, ", "))
	}
	return q + fmt.Sprintf(" AND ExecutionStatus = '%s'", s), nil
}

type rolloutRow struct {
	RolloutID  string     `json:"rolloutId"`
	WorkflowID string     `json:"workflowId"`
	Status     string     `json:"workflowStatus"`
	Started    time.Time  `json:"startedAt"`
	Closed     *time.Time `json:"closedAt,omitempty"`
}

func rolloutListCmd(g *globalFlags) *cobra.Command {
	var state string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List rollouts and their workflow status (visibility query on WorkflowType and ExecutionStatus)",
		Long: `List rollouts with their workflow status and start and close times: running
ones first, then the most recently closed. --state filters on the workflow's status, not the rollout's state: an
ABORTED rollout may have Completed as a workflow; ` + "`rollout status`" + ` tells.`,
		Example: `  starter rollout list
  starter rollout list --state running
  starter rollout list --state failed --limit 20 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return badInput("--limit %d: want 1 or more", limit)
			}
			q, err := rolloutListQuery(state)
			if err != nil {
				return err
			}
			c, _, err := rolloutDial(g)
			if err != nil {
				return err
			}
			defer c.Close()
			rows, err := listRollouts(cmd.Context(), c, q, limit)
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), g, rows, func(w io.Writer) { printRolloutRows(w, rows) })
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only rollouts whose workflow is Running, Completed, Failed, Canceled, Terminated or TimedOut")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many")
	return cmd
}

func listRollouts(ctx context.Context, c client.Client, q string, limit int) ([]rolloutRow, error) {
	rows := []rolloutRow{}
	var token []byte
	for len(rows) < limit {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, PageSize: int32(min(limit, 1000)), NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list rollouts: %w", err)
		}
		for _, e := range resp.Executions {
			r := rolloutRow{
				RolloutID:  rolloutID(e.Execution.GetWorkflowId()),
				WorkflowID: e.Execution.GetWorkflowId(),
				Status:     strings.TrimPrefix(e.Status.String(), "WORKFLOW_EXECUTION_STATUS_"),
				Started:    e.StartTime.AsTime(),
			}
			if sa, _ := searchAttrs(e.SearchAttributes); sa != nil {
				if id, ok := sa[schemas.SearchAttrRolloutID].(string); ok && id != "" {
					r.RolloutID = id
				}
			}
			if e.CloseTime != nil {
				t := e.CloseTime.AsTime()
				r.Closed = &t
			}
			rows = append(rows, r)
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			break
		}
	}
	return rows[:min(len(rows), limit)], nil
}

func printRolloutRows(w io.Writer, rows []rolloutRow) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSTART\tCLOSE")
	for _, r := range rows {
		closed := "-"
		if r.Closed != nil {
			closed = r.Closed.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.RolloutID, r.Status, r.Started.Local().Format(time.DateTime), closed)
	}
	tw.Flush()
}

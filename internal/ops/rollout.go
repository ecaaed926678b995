package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/schemas"
)

// RolloutStartOptions builds the StartWorkflowOptions of a rollout:
// workflow ID rollout-<id> on the ota task queue, duplicates rejected, the
// RolloutId search attribute and a Web UI summary set.
func RolloutStartOptions(cfg config.Config, spec schemas.RolloutSpec) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       schemas.RolloutWorkflowID(spec.RolloutID),
		TaskQueue:                cfg.TaskQueues.OTA,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Without this the SDK hands back the running workflow as if it had
		// started it: a second start must be an error.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		StaticSummary:                            rolloutSummary(spec),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword(schemas.SearchAttrRolloutID).ValueSet(spec.RolloutID),
		),
	}
}

// rolloutSummary is the Web UI's one line about a rollout, e.g.
// "Rollout r-1 · fleetos-2.0.0.bin · site warehouse-a, version <2.0.0 ·
// waves canary 1 → 50% → 100% · CR-1042".
func rolloutSummary(spec schemas.RolloutSpec) string {
	t := spec.Targets
	var sel []string
	for _, f := range [][2]string{{"site", t.Site}, {"manufacturer", t.Manufacturer}, {"model", t.Model}, {"version", t.VersionRange}} {
		if f[1] != "" {
			sel = append(sel, f[0]+" "+f[1])
		}
	}
	if n := len(t.Robots); n > 0 {
		sel = append(sel, strconv.Itoa(n)+" named robots")
	}
	s := fmt.Sprintf("Rollout %s · %s · %s · waves %s", spec.RolloutID, spec.Artifact.File, strings.Join(sel, ", "), strings.Join(WaveLabels(spec.Waves, true), " → "))
	if spec.Rollback {
		s += " · ROLLBACK"
	}
	if spec.ChangeRequest != "" {
		s += " · " + spec.ChangeRequest
	}
	return s
}

// WaveLabels names the planned waves in order, as PlanWaves builds them:
// "canary" (with its size when withSize) for wave 0 when the plan has one,
// then each cumulative percentage ("50%").
func WaveLabels(p schemas.WavePlan, withSize bool) []string {
	var l []string
	if p.Canary > 0 {
		if withSize {
			l = append(l, "canary "+strconv.Itoa(p.Canary))
		} else {
			l = append(l, "canary")
		}
	}
	for _, pc := range p.Percentages {
		l = append(l, strconv.Itoa(pc)+"%")
	}
	return l
}

// StartRollout starts one rollout; a second start of the same ID returns a
// bad-input error saying it exists and starts nothing.
func StartRollout(ctx context.Context, c client.Client, cfg config.Config, spec schemas.RolloutSpec, by string) (client.WorkflowRun, error) {
	run, err := c.ExecuteWorkflow(ctx, RolloutStartOptions(cfg, spec), schemas.RolloutWorkflowType, schemas.RolloutInput{Spec: spec, RequestedBy: by})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil, InputErrorf("rollout %s already exists (workflow %s); a rollout ID starts at most one workflow, even after it ended: give the new rollout a new rolloutId",
			spec.RolloutID, schemas.RolloutWorkflowID(spec.RolloutID))
	}
	if err != nil {
		return nil, fmt.Errorf("start rollout %s: %w", spec.RolloutID, err)
	}
	return run, nil
}

// WaitRollout follows run to its end: it queries the status every `every`
// and writes a timestamped progress line to progress whenever the line
// changes. It returns the final status and, when the workflow failed, its
// error. Queries that fail (no worker yet, a continue-as-new in between)
// are skipped: the run's result decides the end.
func WaitRollout(ctx context.Context, c client.Client, run client.WorkflowRun, labels []string, progress io.Writer, every time.Duration) (schemas.RolloutStatus, error) {
	var res schemas.RolloutStatus
	done := make(chan error, 1)
	go func() { done <- run.Get(ctx, &res) }()
	tick := time.NewTicker(every)
	defer tick.Stop()
	var last schemas.RolloutStatus
	var lastLine string
	poll := func() {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := QueryRollout(qctx, c, run.GetID())
		if err != nil {
			return
		}
		last = st
		if line := RolloutProgress(st, labels); line != lastLine {
			lastLine = line
			fmt.Fprintf(progress, "%s  %s\n", time.Now().Format(time.TimeOnly), line)
		}
	}
	for {
		select {
		case err := <-done:
			st := res
			if err != nil {
				var ok bool
				if st, ok = StatusOfFailure(err); !ok {
					poll()
					st = last
					if !st.Terminal() {
						// The last answer may predate the failure.
						st.State = schemas.RolloutFailed
					}
				}
			}
			if line := RolloutProgress(st, labels); line != lastLine {
				fmt.Fprintf(progress, "%s  %s\n", time.Now().Format(time.TimeOnly), line)
			}
			return st, err
		case <-tick.C:
			poll()
		case <-ctx.Done():
			return last, ctx.Err()
		}
	}
}

// StatusOfFailure is the final status an aborted or failed rollout carries
// in its error's details (workflows.Rollout fails that way); false when the
// error has none.
func StatusOfFailure(err error) (schemas.RolloutStatus, bool) {
	var st schemas.RolloutStatus
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.HasDetails() && ae.Details(&st) == nil && st.State != "" {
		return st, true
	}
	return schemas.RolloutStatus{}, false
}

// RolloutProgress is one line about a rollout's progress, e.g.
// "RUNNING · wave 1/3 (canary): 1/1 done, 0 failed, 0 timed out · overall
// 1 succeeded, 0 failed, 0 timed out of 10". labels name the waves (see
// WaveLabels); they are left out when they do not fit the status.
func RolloutProgress(st schemas.RolloutStatus, labels []string) string {
	parts := []string{st.State}
	if st.Paused && st.State != schemas.RolloutPaused {
		parts[0] += " (paused)"
	}
	if n := len(st.Waves); n > 0 {
		// CurrentWave may be one past the last wave once all are done.
		i := min(max(st.CurrentWave, 0), n-1)
		w := st.Waves[i]
		name := ""
		if len(labels) == n {
			name = " (" + labels[i] + ")"
		}
		s := fmt.Sprintf("wave %d/%d%s: %d/%d done, %d failed, %d timed out", i+1, n, name, WaveDone(st, i), w.Size, w.Failed, w.TimedOut)
		if sk := waveSkipped(st, i); sk > 0 {
			s += fmt.Sprintf(", %d skipped", sk)
		}
		parts = append(parts, s)
	}
	c := st.Counts
	overall := fmt.Sprintf("overall %d succeeded, %d failed, %d timed out of %d", c.Succeeded, c.Failed, c.TimedOut, c.Targets)
	if c.RolledBack > 0 {
		overall += fmt.Sprintf(", %d rolled back", c.RolledBack)
	}
	if c.RollbackFailed > 0 {
		overall += fmt.Sprintf(", %d rollback failed", c.RollbackFailed)
	}
	parts = append(parts, overall)
	if st.State == schemas.RolloutSoaking && !st.SoakUntil.IsZero() {
		parts = append(parts, "soaking until "+st.SoakUntil.Local().Format(time.TimeOnly))
	}
	if st.AbortReason != "" {
		parts = append(parts, "abort: "+st.AbortReason)
	}
	return strings.Join(parts, " · ")
}

// WaveDone counts wave i's robots whose update has ended: succeeded,
// failed, timed out, or skipped because they already ran the version.
func WaveDone(st schemas.RolloutStatus, i int) int {
	w := st.Waves[i]
	return w.Succeeded + w.Failed + w.TimedOut + waveSkipped(st, i)
}

func waveSkipped(st schemas.RolloutStatus, i int) int {
	n := 0
	for _, r := range st.Robots {
		if r.Wave == i && r.State == schemas.RobotUpdateSkipped {
			n++
		}
	}
	return n
}

// QueryRollout asks the rollout workflow wfID for its status (query
// status).
func QueryRollout(ctx context.Context, c client.Client, wfID string) (schemas.RolloutStatus, error) {
	var st schemas.RolloutStatus
	v, err := c.QueryWorkflow(ctx, wfID, "", schemas.QueryStatus)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

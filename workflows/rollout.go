package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/schemas"
)

var saRolloutID = temporal.NewSearchAttributeKeyKeyword(schemas.SearchAttrRolloutID)

// updateInFlight is a RobotOutcome's state while its RobotUpdate runs.
const updateInFlight = "UPDATING"

type rollout struct {
	in     schemas.RolloutInput
	spec   schemas.RolloutSpec
	logger log.Logger
	carry  schemas.RolloutCarry

	inFlight     int
	children     map[int]workflow.CancelFunc // target index → cancel of its RobotUpdate
	running      []int                       // target indexes in flight, in start order
	rollbackDue  []int                       // targets in flight at abort time that then succeeded
	aborting     bool
	promote      bool
	doneChildren int // RobotUpdates finished in this run (drives continue-as-new)
	// root is the workflow's own context: its Err() says a cancellation
	// was requested (the run goes on on a disconnected one).
	root workflow.Context
}

// Rollout rolls a signed artifact out to part of the fleet in waves
// (issue 3; AWS IoT Jobs rollouts and abortConfig, Mender phases): verify the
// artifact once in the cloud → resolve the target robots (skipping those
// already on the version) → for each wave, one RobotUpdate child per robot,
// at most MaxConcurrent at once → after each robot and each wave, apply the
// abort criteria → soak → next wave. Robots already updated are rolled back
// when the rollout aborts and the spec says so; robots in flight at the
// abort finish and are rolled back; robots not started never start.
//
// Updates: pause, resume, abort (AbortRequest), promote (skip the rest of
// the soak). Query: status (RolloutStatus). It continues as new at wave
// boundaries and whenever its history reaches OTA.HistoryLimit events, so a
// fleet of 10,000 robots never makes one history large.
//
// It fails with ArtifactRefused (the artifact did not verify; no robot is
// touched), NoTargets or InvalidRollout (no robot touched), or RolloutAborted.
func Rollout(ctx workflow.Context, in schemas.RolloutInput) (schemas.RolloutStatus, error) {
	r := &rollout{in: in, spec: in.Spec, logger: workflow.GetLogger(ctx), children: map[int]workflow.CancelFunc{}, root: ctx}
	if in.Carry != nil {
		r.carry = *in.Carry
		r.carry.Status.Runs++
	} else {
		now := workflow.Now(ctx)
		r.carry.Status = schemas.RolloutStatus{
			RolloutID: in.Spec.RolloutID, State: schemas.RolloutVerifying, Artifact: in.Spec.Artifact.File,
			Rollback: in.Spec.Rollback, StartedAt: now, UpdatedAt: now,
		}
	}
	if err := r.registerHandlers(ctx); err != nil {
		return r.carry.Status, err
	}
	// A cancellation request (Web UI, CLI) aborts the rollout like the abort
	// update; the rollout goes on on a disconnected context so that robots
	// in flight finish and what must be rolled back is.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	workflow.Go(dctx, func(gctx workflow.Context) {
		ctx.Done().Receive(gctx, nil)
		if !r.st().Terminal() {
			r.abort(gctx, "aborted by a workflow cancellation request")
		}
	})
	st, err := r.run(dctx)
	_ = workflow.Await(dctx, func() bool { return workflow.AllHandlersFinished(dctx) })
	return st, err
}

func (r *rollout) st() *schemas.RolloutStatus { return &r.carry.Status }

func (r *rollout) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, schemas.QueryStatus, func() (schemas.RolloutStatus, error) { return r.carry.Status, nil }); err != nil {
		return err
	}
	running := func() error {
		if s := r.st(); s.Terminal() || r.aborting {
			return fmt.Errorf("rollout %s has ended or is aborting (%s)", s.RolloutID, s.State)
		}
		return nil
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, schemas.UpdatePause, func(ctx workflow.Context) (schemas.RolloutStatus, error) {
		r.st().Paused = true
		r.details(ctx)
		return r.carry.Status, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context) error {
		if err := running(); err != nil {
			return err
		}
		if r.st().Paused {
			return fmt.Errorf("rollout %s is already paused", r.st().RolloutID)
		}
		return nil
	}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, schemas.UpdateResume, func(ctx workflow.Context) (schemas.RolloutStatus, error) {
		r.st().Paused = false
		r.details(ctx)
		return r.carry.Status, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context) error {
		if err := running(); err != nil {
			return err
		}
		if !r.st().Paused {
			return fmt.Errorf("rollout %s is not paused (state %s)", r.st().RolloutID, r.st().State)
		}
		return nil
	}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, schemas.UpdateAbort, func(ctx workflow.Context, req schemas.AbortRequest) (schemas.RolloutStatus, error) {
		by := req.By
		if by == "" {
			by = "operator"
		}
		r.abort(ctx, fmt.Sprintf("aborted by %s: %s", by, req.Reason))
		return r.carry.Status, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req schemas.AbortRequest) error {
		if strings.TrimSpace(req.Reason) == "" {
			return fmt.Errorf("abort needs a reason")
		}
		return running()
	}}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, schemas.UpdatePromote, func(ctx workflow.Context) (schemas.RolloutStatus, error) {
		r.promote = true
		return r.carry.Status, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context) error {
		if err := running(); err != nil {
			return err
		}
		if r.st().State != schemas.RolloutSoaking {
			return fmt.Errorf("rollout %s is not soaking (state %s): nothing to promote", r.st().RolloutID, r.st().State)
		}
		return nil
	}})
}

// abort stops new robots from starting and asks RobotUpdates still waiting
// for their robot to stop; those already updating finish.
func (r *rollout) abort(ctx workflow.Context, reason string) {
	if r.aborting {
		return
	}
	r.aborting = true
	r.st().AbortReason = reason
	for _, i := range r.running {
		r.children[i]()
	}
	r.details(ctx)
}

func (r *rollout) setState(ctx workflow.Context, s string) {
	st := r.st()
	if st.State == s {
		return
	}
	st.State = s
	st.UpdatedAt = workflow.Now(ctx)
	r.details(ctx)
}

// details writes the Web UI's current details line.
func (r *rollout) details(ctx workflow.Context) {
	st := r.st()
	var b strings.Builder
	b.WriteString(fmt.Sprintf("**%s**", st.State))
	if st.Paused {
		b.WriteString(" (paused)")
	}
	if n := len(st.Waves); n > 0 {
		b.WriteString(fmt.Sprintf(" · wave %d/%d", min(st.CurrentWave+1, n), n))
	}
	c := st.Counts
	b.WriteString(fmt.Sprintf(" · %d/%d updated, %d failed, %d timed out, %d in flight", c.Succeeded, c.Targets, c.Failed, c.TimedOut, c.InFlight))
	if st.AbortReason != "" {
		b.WriteString(" · " + st.AbortReason)
	}
	workflow.SetCurrentDetails(ctx, b.String())
}

func (r *rollout) fail(ctx workflow.Context, errType, reason string) (schemas.RolloutStatus, error) {
	r.st().LastError = reason
	r.setState(ctx, schemas.RolloutFailed)
	r.audit(ctx, "rollout.failed", map[string]any{"errorType": errType, "reason": reason})
	return r.carry.Status, otaError(errType, reason, r.carry.Status)
}

func (r *rollout) audit(ctx workflow.Context, kind string, details map[string]any) {
	if details == nil {
		details = map[string]any{}
	}
	details["artifact"] = r.spec.Artifact.File
	if r.carry.Artifact.SHA256 != "" {
		details["sha256"] = r.carry.Artifact.SHA256
		details["version"] = r.carry.Artifact.Version
	}
	if r.spec.ChangeRequest != "" {
		details["changeRequest"] = r.spec.ChangeRequest
	}
	actor := r.in.RequestedBy
	if actor == "" {
		actor = r.spec.RequestedBy
	}
	if actor == "" {
		actor = "fleetflow"
	}
	writeAudit(ctx, r.logger, schemas.AuditInput{Actor: actor, Kind: kind, Subject: schemas.RolloutWorkflowID(r.spec.RolloutID), Details: details}, false)
}

// otaActivityCtx runs the OTA activities that fetch artifacts: they may
// download large files, so they are regular activities with a heartbeat-free
// 10-minute limit; verification refusals are not retried.
func otaActivityCtx(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 5,
			NonRetryableErrorTypes: []string{schemas.ErrArtifactRefused, schemas.ErrInvalidRollout},
		},
		Summary: summary,
	})
}

// prepare verifies the artifact, resolves and plans the targets, and finds
// what each robot would roll back to. Nothing touches a robot before it
// returns without error.
func (r *rollout) prepare(ctx workflow.Context) error {
	spec := r.spec
	st := r.st()
	r.audit(ctx, "rollout.started", map[string]any{"requestedBy": r.in.RequestedBy, "rollback": spec.Rollback})
	var art schemas.ArtifactRef
	if err := verifyArtifact.run(otaActivityCtx(ctx, "verify "+spec.Artifact.File), schemas.VerifyArtifactInput{
		File: spec.Artifact.File, BaseURL: spec.Artifact.BaseURL, Rollback: spec.Rollback,
	}, &art); err != nil {
		return otaError(otaErrType(err, schemas.ErrArtifactRefused), "artifact "+spec.Artifact.File+" refused: "+rootMessage(err))
	}
	r.carry.Artifact = art
	st.Version = art.Version
	r.audit(ctx, "rollout.artifact_verified", map[string]any{"keyId": art.KeyID, "releaseCounter": art.ReleaseCounter})

	r.setState(ctx, schemas.RolloutResolving)
	var res schemas.ResolveTargetsResult
	if err := resolveTargets.local(ctx, "resolve target robots", schemas.ResolveTargetsInput{
		Selector: spec.Targets, Artifact: art, Rollback: spec.Rollback,
	}, &res); err != nil {
		return otaError(otaErrType(err, schemas.ErrInvalidRollout), "resolve targets: "+rootMessage(err))
	}
	st.Skipped = res.Skipped
	sizes, err := PlanWaves(len(res.Targets), spec.Waves)
	if err != nil {
		if len(res.Targets) == 0 {
			return otaError(schemas.ErrNoTargets, err.Error())
		}
		return otaError(schemas.ErrInvalidRollout, err.Error())
	}
	// A canary-only plan updates fewer robots than matched.
	planned := 0
	for _, n := range sizes {
		planned += n
	}
	res.Targets = res.Targets[:planned]
	r.carry.Targets = res.Targets
	st.Counts.Targets = len(res.Targets)
	st.Waves = make([]schemas.WaveStatus, len(sizes))
	st.Robots = make([]schemas.RobotOutcome, len(res.Targets))
	i := 0
	for w, n := range sizes {
		st.Waves[w] = schemas.WaveStatus{Index: w, Size: n, State: schemas.WavePending}
		for k := 0; k < n; k++ {
			t := res.Targets[i]
			st.Robots[i] = schemas.RobotOutcome{RobotID: t.ID, Wave: w, State: schemas.RobotUpdatePending, FromVersion: t.Version}
			i++
		}
	}

	// What each robot goes back to when its update fails: the artifact of
	// the version it runs now, for its hardware.
	r.carry.Previous = map[string]*schemas.ArtifactRef{}
	for _, t := range res.Targets {
		key := previousKey(t)
		if _, done := r.carry.Previous[key]; done || t.Version == "" {
			continue
		}
		var loc schemas.LocateArtifactResult
		if err := locateArtifact.run(otaActivityCtx(ctx, "locate "+art.Name+" "+t.Version), schemas.LocateArtifactInput{
			Name: art.Name, Version: t.Version, Hardware: schemas.Hardware{Manufacturer: t.Manufacturer, Model: t.Model}, BaseURL: spec.Artifact.BaseURL,
			RollbackFrom: art.Version,
		}, &loc); err != nil {
			// Not "none there" (that is Found false): the store could not
			// be read. No robot is touched yet; a rollout is not run with
			// its rollback silently off.
			return otaError(schemas.ErrArtifactUnavailable, fmt.Sprintf("cannot look for %s %s in the artifact store (what robots on %s would roll back to): %s",
				art.Name, t.Version, t.Version, rootMessage(err)))
		}
		if loc.Found {
			a := loc.Artifact
			r.carry.Previous[key] = &a
		} else {
			r.carry.Previous[key] = nil
		}
	}
	r.audit(ctx, "rollout.planned", map[string]any{"targets": len(res.Targets), "waves": sizes, "skipped": len(res.Skipped)})
	return nil
}

// otaError is a non-retryable failure of a Rollout with its type.
func otaError(errType, msg string, details ...any) error {
	return temporal.NewNonRetryableApplicationError(msg, errType, nil, details...)
}

// otaErrType is the failure type of an OTA activity error: the activity's
// own type (e.g. "Unsigned", "BadSignature"), or fallback when the error
// carries only a Go type name (an untyped error that exhausted its retries).
func otaErrType(err error, fallback string) string {
	t := errType(err, fallback)
	if strings.ContainsAny(t, "*.") {
		return fallback
	}
	return t
}

func previousKey(t schemas.TargetRobot) string {
	return t.Version + "|" + t.Manufacturer + "/" + t.Model
}

func rootMessage(err error) string {
	var ae *temporal.ApplicationError
	for e := err; e != nil; {
		if a, ok := e.(*temporal.ApplicationError); ok {
			ae = a
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	if ae != nil {
		return ae.Message()
	}
	return err.Error()
}

func (r *rollout) run(ctx workflow.Context) (schemas.RolloutStatus, error) {
	spec := r.spec
	st := r.st()
	if r.in.Carry == nil {
		_ = workflow.UpsertTypedSearchAttributes(ctx, saRolloutID.ValueSet(spec.RolloutID))
		r.details(ctx)
		if spec.MaxConcurrent < 1 {
			// Not a spec from schemas.ParseRollout (the schema's minimum is
			// 1): with none at once, no robot would ever start.
			return r.fail(ctx, schemas.ErrInvalidRollout, fmt.Sprintf("maxConcurrent %d: want at least 1", spec.MaxConcurrent))
		}
		if err := r.prepare(ctx); err != nil {
			var ae *temporal.ApplicationError
			if errors.As(err, &ae) {
				return r.fail(ctx, ae.Type(), ae.Message())
			}
			return r.fail(ctx, schemas.ErrInvalidRollout, err.Error())
		}
	}

	starts := waveStarts(st.Waves)
	for st.CurrentWave < len(st.Waves) && !r.aborting {
		w := st.CurrentWave
		wave := &st.Waves[w]
		end := starts[w] + wave.Size
		if r.carry.Next < starts[w] {
			r.carry.Next = starts[w]
		}
		if wave.State == schemas.WavePending {
			wave.State = schemas.WaveRunning
			r.audit(ctx, "rollout.wave_started", map[string]any{"wave": w, "size": wave.Size})
		}
		r.setState(ctx, schemas.RolloutRunning)
		r.details(ctx)
		for (r.carry.Next < end && !r.aborting) || r.inFlight > 0 {
			if r.carry.Next < end && !r.aborting && r.doneChildren >= r.historyBudget(ctx) && r.inFlight == 0 {
				return r.continueAsNew(ctx)
			}
			canStart := func() bool {
				return r.carry.Next < end && !r.aborting && !st.Paused && r.inFlight < spec.MaxConcurrent &&
					r.doneChildren < r.historyBudget(ctx)
			}
			if canStart() {
				if open, wait := r.windowWait(ctx); !open {
					r.setState(ctx, schemas.RolloutWaiting)
					_, _ = workflow.AwaitWithTimeout(ctx, wait, func() bool { return r.aborting })
					r.setState(ctx, schemas.RolloutRunning)
					continue
				}
				r.startRobot(ctx, r.carry.Next)
				r.carry.Next++
				continue
			}
			if st.Paused && r.inFlight == 0 && !r.aborting {
				r.setState(ctx, schemas.RolloutPaused)
			}
			done := r.doneChildren
			_ = workflow.Await(ctx, func() bool { return r.doneChildren != done || canStart() || r.aborting && r.inFlight == 0 })
			if st.State == schemas.RolloutPaused && !st.Paused {
				r.setState(ctx, schemas.RolloutRunning)
			}
		}
		if r.aborting {
			break
		}
		wave.State = schemas.WaveDone
		r.audit(ctx, "rollout.wave_done", map[string]any{"wave": w, "succeeded": wave.Succeeded, "failed": wave.Failed, "timedOut": wave.TimedOut})
		if abort, reason := ShouldAbort(spec.Abort, r.counts()); abort {
			r.abort(ctx, "abort criteria met after wave "+fmt.Sprint(w+1)+": "+reason)
			break
		}
		if w+1 < len(st.Waves) && !r.carry.Soaked {
			r.soak(ctx, wave)
			if r.aborting {
				break
			}
		}
		r.carry.Soaked = false
		st.CurrentWave++
		if st.CurrentWave < len(st.Waves) && r.doneChildren > 0 {
			// Each wave starts on a fresh history.
			return r.continueAsNew(ctx)
		}
	}
	if r.aborting {
		return r.finishAbort(ctx)
	}
	r.setState(ctx, schemas.RolloutCompleted)
	r.audit(ctx, "rollout.completed", map[string]any{"counts": st.Counts})
	return *st, nil
}

// historyBudget is how many RobotUpdates this run may still finish before
// it must continue as new (about six events each).
func (r *rollout) historyBudget(ctx workflow.Context) int {
	if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
		return 0
	}
	return max(OTA.HistoryLimit/8, 1)
}

func (r *rollout) soak(ctx workflow.Context, wave *schemas.WaveStatus) {
	st := r.st()
	wave.State = schemas.WaveSoaking
	r.promote = false
	st.SoakUntil = workflow.Now(ctx).Add(time.Duration(r.spec.SoakTime))
	r.setState(ctx, schemas.RolloutSoaking)
	if r.spec.SoakTime > 0 {
		_, _ = workflow.AwaitWithTimeout(ctx, time.Duration(r.spec.SoakTime), func() bool { return r.promote || r.aborting })
	}
	if r.promote {
		r.audit(ctx, "rollout.promoted", map[string]any{"wave": wave.Index})
	}
	// A pause during the soak holds the next wave.
	if st.Paused && !r.aborting {
		r.setState(ctx, schemas.RolloutPaused)
		_ = workflow.Await(ctx, func() bool { return !st.Paused || r.aborting })
	}
	wave.State = schemas.WaveDone
	st.SoakUntil = time.Time{}
	r.carry.Soaked = true
}

// windowWait reports whether the maintenance window is open, and else how
// long to wait for it.
func (r *rollout) windowWait(ctx workflow.Context) (bool, time.Duration) {
	if r.spec.MaintenanceWindow == nil {
		return true, 0
	}
	now := workflow.Now(ctx)
	open, next, err := NextWindowOpen(r.spec.MaintenanceWindow, now)
	if err != nil || open {
		return true, 0
	}
	return false, max(next.Sub(now), time.Second)
}

func waveStarts(waves []schemas.WaveStatus) []int {
	starts := make([]int, len(waves))
	n := 0
	for i, w := range waves {
		starts[i] = n
		n += w.Size
	}
	return starts
}

func (r *rollout) counts() schemas.UpdateCounts {
	c := r.st().Counts
	return schemas.UpdateCounts{Succeeded: c.Succeeded, Failed: c.Failed, TimedOut: c.TimedOut}
}

func (r *rollout) childInput(i int, art schemas.ArtifactRef, previous *schemas.ArtifactRef, rollback bool) schemas.RobotUpdateInput {
	t := r.carry.Targets[i]
	return schemas.RobotUpdateInput{
		RolloutID: r.spec.RolloutID, Robot: t, Artifact: art, Previous: previous, Rollback: rollback,
		Timeout: time.Duration(r.spec.RobotTimeout), Retries: r.spec.Retries, HealthCheck: time.Duration(r.spec.HealthCheck),
		RequestedBy: r.actor(), ChangeRequest: r.spec.ChangeRequest,
	}
}

func (r *rollout) actor() string {
	if r.in.RequestedBy != "" {
		return r.in.RequestedBy
	}
	return r.spec.RequestedBy
}

func (r *rollout) childCtx(ctx workflow.Context, id, robotID, summary string) workflow.Context {
	return workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: id,
		// A terminated rollout asks its RobotUpdates to stop (they release
		// their robot); it never leaves a robot reserved for nothing.
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WaitForCancellation:   true,
		TypedSearchAttributes: temporal.NewSearchAttributes(saRolloutID.ValueSet(r.spec.RolloutID), saRobotID.ValueSet(robotID)),
		StaticSummary:         summary,
	})
}

// startRobot starts target i's RobotUpdate and folds its result in when it ends.
func (r *rollout) startRobot(ctx workflow.Context, i int) {
	st := r.st()
	t := r.carry.Targets[i]
	out := &st.Robots[i]
	wave := &st.Waves[out.Wave]
	out.State = updateInFlight
	wave.Started++
	r.inFlight++
	st.Counts.InFlight = r.inFlight
	cctx, cancel := workflow.WithCancel(ctx)
	r.children[i] = cancel
	r.running = append(r.running, i)
	cctx = r.childCtx(cctx, schemas.RobotUpdateWorkflowID(r.spec.RolloutID, t.ID), t.ID,
		fmt.Sprintf("update %s %s → %s (rollout %s, wave %d)", t.ID, t.Version, r.carry.Artifact.Version, r.spec.RolloutID, out.Wave+1))
	fut := workflow.ExecuteChildWorkflow(cctx, schemas.RobotUpdateWorkflowType, r.childInput(i, r.carry.Artifact, r.carry.Previous[previousKey(t)], r.spec.Rollback))
	abortingAtStart := r.aborting
	workflow.Go(ctx, func(gctx workflow.Context) {
		var res schemas.RobotUpdateResult
		err := fut.Get(gctx, &res)
		if err != nil {
			res = schemas.RobotUpdateResult{RobotID: t.ID, State: schemas.RobotUpdateFailed, Reason: "RobotUpdate workflow: " + rootMessage(err), FromVersion: t.Version}
		}
		delete(r.children, i)
		r.running = slices.DeleteFunc(r.running, func(k int) bool { return k == i })
		r.inFlight--
		r.doneChildren++
		st.Counts.InFlight = r.inFlight
		r.record(gctx, i, res)
		if r.aborting && !abortingAtStart && res.State == schemas.RobotUpdateSucceeded {
			r.rollbackDue = append(r.rollbackDue, i)
		}
		if !r.aborting {
			if abort, reason := ShouldAbort(r.spec.Abort, r.counts()); abort {
				r.abort(gctx, "abort criteria met in wave "+fmt.Sprint(out.Wave+1)+": "+reason)
			}
		}
		r.details(gctx)
	})
}

func (r *rollout) record(ctx workflow.Context, i int, res schemas.RobotUpdateResult) {
	st := r.st()
	out := &st.Robots[i]
	wave := &st.Waves[out.Wave]
	out.State, out.Version, out.Attempts, out.Reason = res.State, res.Version, res.Attempts, res.Reason
	if res.FromVersion != "" {
		out.FromVersion = res.FromVersion
	}
	switch res.State {
	case schemas.RobotUpdateSucceeded:
		st.Counts.Succeeded++
		wave.Succeeded++
	case schemas.RobotUpdateTimedOut:
		st.Counts.TimedOut++
		wave.TimedOut++
	case schemas.RobotUpdateSkipped:
		st.Counts.Skipped++
	case schemas.RobotUpdateCancelled:
		st.Counts.Cancelled++
	default:
		st.Counts.Failed++
		wave.Failed++
	}
	if res.RolledBack {
		st.Counts.RolledBack++
	}
	c := r.counts()
	if n := c.Executed(); n > 0 {
		failures, _ := c.Failures(r.spec.Abort.FailureType)
		st.FailureRate = float64(failures) * 100 / float64(n)
	}
	st.UpdatedAt = workflow.Now(ctx)
}

// finishAbort rolls back what must be rolled back and ends ABORTED.
func (r *rollout) finishAbort(ctx workflow.Context) (schemas.RolloutStatus, error) {
	st := r.st()
	_ = workflow.Await(ctx, func() bool { return r.inFlight == 0 })
	for i := range st.Robots {
		if st.Robots[i].State == schemas.RobotUpdatePending {
			st.Robots[i].State = schemas.RobotUpdateCancelled
			st.Counts.Cancelled++
		}
	}
	for w := range st.Waves {
		switch wv := &st.Waves[w]; {
		case wv.State == schemas.WavePending, wv.State == schemas.WaveRunning && wv.Started < wv.Size:
			wv.State = schemas.WaveCancelled
		case wv.State == schemas.WaveRunning: // the abort came after its last robot started
			wv.State = schemas.WaveDone
		}
	}
	due := slices.Clone(r.rollbackDue)
	if r.spec.RollbackOnAbort {
		for i := range st.Robots {
			if st.Robots[i].State == schemas.RobotUpdateSucceeded && !slices.Contains(due, i) {
				due = append(due, i)
			}
		}
	}
	slices.Sort(due)
	if len(due) > 0 {
		r.setState(ctx, schemas.RolloutRollingBack)
		r.audit(ctx, "rollout.rollback_started", map[string]any{"robots": len(due), "reason": st.AbortReason})
		r.rollBack(ctx, due)
	}
	r.setState(ctx, schemas.RolloutAborted)
	r.audit(ctx, "rollout.aborted", map[string]any{"reason": st.AbortReason, "counts": st.Counts})
	return *st, otaError("RolloutAborted", "rollout "+st.RolloutID+" aborted: "+st.AbortReason, *st)
}

// rollBack reinstalls the previous version on the robots of due, at most
// MaxConcurrent at once, each as a RobotUpdate child "<id>-rollback".
func (r *rollout) rollBack(ctx workflow.Context, due []int) {
	st := r.st()
	running := 0
	for _, i := range due {
		_ = workflow.Await(ctx, func() bool { return running < r.spec.MaxConcurrent })
		t := r.carry.Targets[i]
		t.Version = r.carry.Artifact.Version
		prev := r.carry.Previous[previousKey(r.carry.Targets[i])]
		out := &st.Robots[i]
		if prev == nil {
			out.Reason = "no artifact of version " + out.FromVersion + " in the store: not rolled back"
			continue
		}
		out.State = schemas.RobotUpdateRollingBack
		running++
		in := r.childInput(i, *prev, nil, true)
		in.Robot = t
		cctx := r.childCtx(ctx, schemas.RobotUpdateWorkflowID(r.spec.RolloutID, t.ID)+"-rollback", t.ID,
			fmt.Sprintf("roll %s back to %s (rollout %s aborted)", t.ID, prev.Version, r.spec.RolloutID))
		fut := workflow.ExecuteChildWorkflow(cctx, schemas.RobotUpdateWorkflowType, in)
		workflow.Go(ctx, func(gctx workflow.Context) {
			var res schemas.RobotUpdateResult
			err := fut.Get(gctx, &res)
			running--
			switch {
			case err == nil && (res.State == schemas.RobotUpdateSucceeded || res.State == schemas.RobotUpdateSkipped):
				out.State, out.Version = schemas.RobotUpdateRolledBack, res.Version
				st.Counts.RolledBack++
			default:
				// Not SUCCEEDED: the robot may run either version, or
				// none healthy. Said as it is, with what it last reported.
				out.State = schemas.RobotUpdateRollbackFailed
				if err != nil {
					out.Reason = "rollback failed: " + rootMessage(err)
				} else {
					out.Reason = "rollback " + strings.ToLower(res.State) + ": " + res.Reason
					if res.Version != "" {
						out.Version = res.Version
					}
				}
				st.Counts.RollbackFailed++
			}
			r.details(gctx)
		})
	}
	_ = workflow.Await(ctx, func() bool { return running == 0 })
}

func (r *rollout) continueAsNew(ctx workflow.Context) (schemas.RolloutStatus, error) {
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	if r.root.Err() != nil {
		// A cancellation request that came with the step ending this run
		// (a soak's timer, a wave's last robot) may not have reached the
		// watcher yet, and Temporal does not carry it into the next run:
		// it aborts here.
		r.abort(ctx, "aborted by a workflow cancellation request")
	}
	if r.aborting {
		return r.finishAbort(ctx)
	}
	carry := r.carry
	return schemas.RolloutStatus{}, workflow.NewContinueAsNewError(ctx, schemas.RolloutWorkflowType, schemas.RolloutInput{
		Spec: r.spec, RequestedBy: r.in.RequestedBy, Carry: &carry,
	})
}

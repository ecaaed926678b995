package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// OTATimings tunes how long the OTA workflows wait; zero values are not
// allowed. Tests shorten them.
type OTATimings struct {
	ReconcileAfter time.Duration // no robot event for this long → read the stored state (default 10 s)
	RequeueAfter   time.Duration // waiting for the robot: retry the reservation this often (default 30 s)
	RetryBackoff   time.Duration // pause before a retried attempt (default 5 s)
	// UnavailableFor: a RobotUpdate waiting for its robot gives up
	// (TIMED_OUT, kind RobotUnavailable) once the robot has been offline or
	// FATAL this long (default 5 min); MaxWait bounds the wait for a busy
	// robot (default 2 h, kind Busy). Without them one unreachable robot
	// held its wave open for ever.
	UnavailableFor time.Duration
	MaxWait        time.Duration
	// HistoryLimit: a Rollout run continues as new once its history has
	// this many events (DESIGN: long-lived workflows continue-as-new; the
	// issue's bound is 10,000 events).
	HistoryLimit int
}

// OTA holds the OTA workflows' timings.
var OTA = OTATimings{
	ReconcileAfter: 10 * time.Second,
	RequeueAfter:   30 * time.Second,
	RetryBackoff:   5 * time.Second,
	UnavailableFor: 5 * time.Minute,
	MaxWait:        2 * time.Hour,
	HistoryLimit:   4000,
}

type robotUpdate struct {
	in     schemas.RobotUpdateInput
	id     string // this workflow's ID: reservation holder and actionId prefix
	logger log.Logger
	status schemas.RobotUpdateStatus

	events   int
	last     schemas.RobotEvent
	haveLast bool
	wake     bool
	reserved bool
	io       string // the robot's robot I/O task queue while reserved ("" = local)
	// serviceStatus: the reservation says the robot is draining, in
	// maintenance or out of service; it is skipped.
	serviceStatus string
	// timer is the one timer of the update's waits (timer.go): a wait
	// woken by a robot event leaves none behind.
	timer waitTimer
}

// attemptOutcome is how one softwareUpdate instant action ended.
type attemptOutcome struct {
	ok        bool
	state     string // RobotUpdateFailed or RobotUpdateTimedOut when !ok
	kind      string
	reason    string
	retryable bool
	touched   bool // the robot got as far as installing: roll back on failure
}

// RobotUpdate updates one robot: reserve it exactly like a mission does (it
// waits while the robot is on a mission, and no mission takes it meanwhile)
// → skip it when it already runs the version → send the softwareUpdate
// instant action (URL, sha256, signature, version) → follow its actionState
// through downloading, verifying, installing and rebooting → health check:
// the robot reports the new version and no FATAL error for HealthCheck →
// release. A failed or timed-out attempt is retried (Retries) when the
// failure may pass (download error, timeout); a refusal by the robot's
// verifier is final. When the robot installed something but did not come
// up healthy, it is rolled back to in.Previous. Every step is audited.
//
// It never fails as a workflow: the outcome is its result, which the
// Rollout counts. Cancelling it (the Rollout aborted) before the update is
// sent leaves the robot untouched (CANCELLED); after, the update runs to its
// end as if not cancelled.
func RobotUpdate(ctx workflow.Context, in schemas.RobotUpdateInput) (schemas.RobotUpdateResult, error) {
	u := &robotUpdate{in: in, id: workflow.GetInfo(ctx).WorkflowExecution.ID, logger: workflow.GetLogger(ctx)}
	u.status = schemas.RobotUpdateStatus{
		RobotID: in.Robot.ID, State: schemas.RobotUpdatePending, FromVersion: in.Robot.Version, Version: in.Robot.Version,
		Target: in.Artifact.Version, UpdatedAt: workflow.Now(ctx),
	}
	if err := workflow.SetQueryHandler(ctx, schemas.QueryStatus, func() (schemas.RobotUpdateStatus, error) { return u.status, nil }); err != nil {
		return schemas.RobotUpdateResult{}, err
	}
	events := workflow.GetSignalChannel(ctx, schemas.SignalRobotEvent)
	avail := workflow.GetSignalChannel(ctx, schemas.SignalRobotAvailable)
	// Signals are drained on a disconnected context so they keep arriving
	// after a cancellation request.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	workflow.Go(dctx, func(gctx workflow.Context) {
		for {
			var ev schemas.RobotEvent
			if !events.Receive(gctx, &ev) {
				return
			}
			u.apply(gctx, ev)
		}
	})
	workflow.Go(dctx, func(gctx workflow.Context) {
		for avail.Receive(gctx, nil) {
			u.wake = true
		}
	})
	res := u.run(ctx, dctx)
	workflow.GetMetricsHandler(dctx).WithTags(map[string]string{"state": res.State}).Counter(MetricRobotUpdatesEnded).Inc(1)
	return res, nil
}

func (u *robotUpdate) setState(ctx workflow.Context, s string) {
	if u.status.State == s {
		return
	}
	u.status.State = s
	u.status.UpdatedAt = workflow.Now(ctx)
	detail := fmt.Sprintf("**%s** · robot `%s` · %s → %s", s, u.in.Robot.ID, u.status.FromVersion, u.in.Artifact.Version)
	if u.status.Attempts > 1 {
		detail += fmt.Sprintf(" · attempt %d", u.status.Attempts)
	}
	if u.status.LastError != "" {
		detail += " · " + u.status.LastError
	}
	workflow.SetCurrentDetails(ctx, detail)
}

func (u *robotUpdate) audit(ctx workflow.Context, kind string, details map[string]any) {
	if details == nil {
		details = map[string]any{}
	}
	details["rolloutId"] = u.in.RolloutID
	details["robotId"] = u.in.Robot.ID
	details["artifact"] = u.in.Artifact.File
	details["sha256"] = u.in.Artifact.SHA256
	details["version"] = u.in.Artifact.Version
	if u.in.ChangeRequest != "" {
		details["changeRequest"] = u.in.ChangeRequest
	}
	actor := u.in.RequestedBy
	if actor == "" {
		actor = "fleetflow"
	}
	writeAudit(ctx, u.logger, schemas.AuditInput{Actor: actor, Kind: kind, Subject: u.id, Details: details}, false)
}

func (u *robotUpdate) result(state, kind, reason string, rolledBack bool) schemas.RobotUpdateResult {
	return schemas.RobotUpdateResult{
		RobotID: u.in.Robot.ID, State: state, FromVersion: u.status.FromVersion, Version: u.status.Version,
		Attempts: u.status.Attempts, Reason: reason, ErrorKind: kind, RolledBack: rolledBack,
	}
}

func (u *robotUpdate) run(ctx, dctx workflow.Context) schemas.RobotUpdateResult {
	u.audit(dctx, "update.started", map[string]any{"fromVersion": u.in.Robot.Version, "rollback": u.in.Rollback})
	if r, done := u.reserve(ctx, dctx); done {
		return r
	}
	defer u.release(dctx)
	if u.serviceStatus != "" {
		// Draining, put into maintenance or out of service since the
		// rollout resolved its targets: never rebooted into new software
		// while a technician may work on it.
		reason := "robot " + u.in.Robot.ID + " is not in service (" + u.serviceStatus + "): not updated"
		u.setState(dctx, schemas.RobotUpdateSkipped)
		u.audit(dctx, "update.skipped", map[string]any{"reason": reason})
		return u.result(schemas.RobotUpdateSkipped, "", reason, false)
	}
	// From here on the update runs to its end even when cancelled.
	if snap, ok := u.snapshot(dctx); ok {
		if snap.SoftwareVersion != "" {
			u.status.FromVersion, u.status.Version = snap.SoftwareVersion, snap.SoftwareVersion
		}
	}
	if u.status.Version == u.in.Artifact.Version {
		u.setState(dctx, schemas.RobotUpdateSkipped)
		u.audit(dctx, "update.skipped", map[string]any{"reason": "already runs " + u.status.Version})
		return u.result(schemas.RobotUpdateSkipped, "", "already runs "+u.status.Version, false)
	}
	if ctx.Err() != nil {
		u.setState(dctx, schemas.RobotUpdateCancelled)
		u.audit(dctx, "update.cancelled", map[string]any{"reason": "rollout stopped before the update was sent"})
		return u.result(schemas.RobotUpdateCancelled, "", "rollout stopped before the update was sent", false)
	}

	var out attemptOutcome
	for attempt := 1; attempt <= 1+u.in.Retries; attempt++ {
		u.status.Attempts = attempt
		if attempt > 1 {
			_ = workflow.Sleep(dctx, OTA.RetryBackoff)
		}
		out = u.attempt(dctx, u.in.Artifact, u.in.Rollback, fmt.Sprintf("update-%d", attempt))
		if out.ok {
			out = u.healthCheck(dctx)
		}
		if out.ok {
			u.setState(dctx, schemas.RobotUpdateSucceeded)
			u.audit(dctx, "update.succeeded", map[string]any{"fromVersion": u.status.FromVersion, "attempts": attempt})
			return u.result(schemas.RobotUpdateSucceeded, "", "", false)
		}
		u.status.LastError = out.reason
		u.audit(dctx, "update.attempt_failed", map[string]any{"attempt": attempt, "state": out.state, "errorKind": out.kind, "reason": out.reason})
		if !out.retryable {
			break
		}
	}

	rolledBack := false
	if out.touched || u.status.Version != u.status.FromVersion {
		rolledBack = u.rollback(dctx)
	}
	u.setState(dctx, out.state)
	u.audit(dctx, "update."+strings.ToLower(out.state), map[string]any{"errorKind": out.kind, "reason": out.reason, "rolledBack": rolledBack})
	return u.result(out.state, out.kind, out.reason, rolledBack)
}

// reserve holds the robot like a mission: queued while it is busy. done is
// true when the workflow ends here (cancelled while waiting, or an error).
func (u *robotUpdate) reserve(ctx, dctx workflow.Context) (schemas.RobotUpdateResult, bool) {
	req := schemas.ReserveRobotInput{MissionID: u.id, WorkflowID: u.id, Site: u.in.Robot.Site, RobotID: u.in.Robot.ID}
	var waitStart, unavailableSince time.Time
	giveUp := func(kind, reason string) (schemas.RobotUpdateResult, bool) {
		u.leaveQueue(dctx)
		u.reserved = true // a grant may have raced: release is a no-op otherwise
		u.release(dctx)
		u.status.LastError = reason
		u.setState(dctx, schemas.RobotUpdateTimedOut)
		u.audit(dctx, "update.timed_out", map[string]any{"errorKind": kind, "reason": reason})
		return u.result(schemas.RobotUpdateTimedOut, kind, reason, false), true
	}
	for {
		u.wake = false
		var res schemas.ReserveRobotResult
		// The registry's calls wait out an outage of up to
		// Timings.ReleaseTimeout (a database failover) as a mission's do:
		// a blip is not a failed robot, and no lease is left behind.
		if err := reserveRobot.retry(dctx, "reserve "+u.in.Robot.ID, req, &res, storeOptions("reserve "+u.in.Robot.ID), workflow.Now(dctx).Add(Timings.ReleaseTimeout)); err != nil {
			reason := "reserve robot: " + err.Error()
			// A grant or a place in line may have been committed with
			// its answer lost: neither outlives the update.
			u.leaveQueue(dctx)
			u.reserved = true
			u.release(dctx)
			u.timer.stop() // a queued wait's timer: none stays running
			u.status.LastError = reason
			u.setState(dctx, schemas.RobotUpdateFailed)
			u.audit(dctx, "update.failed", map[string]any{"reason": reason})
			return u.result(schemas.RobotUpdateFailed, "Reservation", reason, false), true
		}
		if !res.Queued {
			u.reserved = true
			u.io = res.RobotIOQueue
			u.serviceStatus = res.ServiceStatus
			return schemas.RobotUpdateResult{}, false
		}
		u.setState(dctx, schemas.RobotUpdateWaiting)
		now := workflow.Now(dctx)
		if waitStart.IsZero() {
			waitStart = now
		}
		if ev, ok := u.snapshot(dctx); ok && (ev.Connection != string(vda5050.ConnectionOnline) || fatalOf(ev) != "") {
			if unavailableSince.IsZero() {
				unavailableSince = now
			}
			if now.Sub(unavailableSince) >= OTA.UnavailableFor {
				why := ev.Connection
				if f := fatalOf(ev); f != "" {
					why = "FATAL " + f
				}
				return giveUp("RobotUnavailable", fmt.Sprintf("robot %s has been unavailable (%s) for %s", u.in.Robot.ID, why, now.Sub(unavailableSince)))
			}
		} else {
			unavailableSince = time.Time{}
		}
		if now.Sub(waitStart) >= OTA.MaxWait {
			return giveUp(string(schemas.RefusalBusy), fmt.Sprintf("robot %s stayed busy for %s", u.in.Robot.ID, now.Sub(waitStart)))
		}
		_, _ = u.timer.await(ctx, OTA.RequeueAfter, func() bool { return u.wake })
		if ctx.Err() != nil {
			u.leaveQueue(dctx)
			// A grant may have raced the cancellation: release is a no-op otherwise.
			u.reserved = true
			u.release(dctx)
			u.setState(dctx, schemas.RobotUpdateCancelled)
			u.audit(dctx, "update.cancelled", map[string]any{"reason": "rollout stopped while waiting for the robot"})
			return u.result(schemas.RobotUpdateCancelled, "", "rollout stopped while waiting for the robot", false), true
		}
	}
}

func (u *robotUpdate) release(ctx workflow.Context) {
	u.timer.stop() // the update has ended: no timer stays running
	if !u.reserved {
		return
	}
	summary := "release " + u.in.Robot.ID
	if err := releaseRobot.retry(ctx, summary, schemas.ReleaseRobotInput{
		RobotID: u.in.Robot.ID, MissionID: u.id, Site: u.in.Robot.Site,
	}, nil, storeOptions(summary), workflow.Now(ctx).Add(Timings.ReleaseTimeout)); err != nil {
		u.logger.Error("release robot failed; the Reaper will free it", "robot", u.in.Robot.ID, "error", err)
		return
	}
	u.reserved = false
}

// leaveQueue takes the update out of the robot's reservation queue (a
// no-op when it is not in line), retried as release is.
func (u *robotUpdate) leaveQueue(ctx workflow.Context) {
	if err := cancelQueued.retry(ctx, "leave the reservation queue", schemas.CancelQueuedInput{MissionID: u.id}, nil,
		storeOptions("leave the reservation queue"), workflow.Now(ctx).Add(Timings.ReleaseTimeout)); err != nil {
		u.logger.Warn("leave queue failed; the Reaper will free it", "error", err)
	}
}

func (u *robotUpdate) snapshot(ctx workflow.Context) (schemas.RobotEvent, bool) {
	var ev schemas.RobotEvent
	if err := robotSnapshot.local(ctx, "read stored state of "+u.in.Robot.ID, schemas.RobotSnapshotInput{RobotID: u.in.Robot.ID}, &ev); err != nil {
		u.logger.Warn("robot snapshot failed", "error", err)
		return ev, false
	}
	ev.Reconciled = true
	u.apply(ctx, ev)
	return ev, true
}

// apply records the robot's latest event; the attempt and health-check
// loops read it.
func (u *robotUpdate) apply(ctx workflow.Context, ev schemas.RobotEvent) {
	if ev.RobotID != u.in.Robot.ID {
		return
	}
	// The store lags the bridge's signals by up to a flush interval: a
	// stored state older than the last signalled one is not news.
	if ev.Reconciled && u.haveLast && !u.last.Reconciled && olderState(ev.StateTimestamp, u.last.StateTimestamp) {
		return
	}
	u.events++
	u.last, u.haveLast = ev, true
	if ev.SoftwareVersion != "" {
		u.status.Version = ev.SoftwareVersion
	}
	u.status.UpdatedAt = workflow.Now(ctx)
}

// fatalOf returns "errorType: description" of the event's first FATAL
// error, "" when none.
func fatalOf(ev schemas.RobotEvent) string {
	for _, e := range ev.Errors {
		if e.ErrorLevel == vda5050.ErrorFatal {
			return e.ErrorType + ": " + e.ErrorDescription
		}
	}
	return ""
}

// olderState reports whether ISO 8601 timestamp a is before b; an
// unreadable one is never older.
func olderState(a, b string) bool {
	ta, errA := time.Parse(time.RFC3339Nano, a)
	tb, errB := time.Parse(time.RFC3339Nano, b)
	return errA == nil && errB == nil && ta.Before(tb)
}

// softwareUpdateAction builds the instant action for artifact a.
func softwareUpdateAction(actionID string, a schemas.ArtifactRef, rollback bool) vda5050.Action {
	return vda5050.Action{
		ActionType: schemas.ActionSoftwareUpdate, ActionID: actionID, BlockingType: vda5050.BlockingHard,
		ActionDescription: fmt.Sprintf("install %s %s", a.Name, a.Version),
		ActionParameters: []vda5050.ActionParameter{
			{Key: schemas.SoftwareUpdateParamArtifactURL, Value: a.ArtifactURL},
			{Key: schemas.SoftwareUpdateParamManifestURL, Value: a.ManifestURL},
			{Key: schemas.SoftwareUpdateParamSignature, Value: a.Signature},
			{Key: schemas.SoftwareUpdateParamSHA256, Value: a.SHA256},
			{Key: schemas.SoftwareUpdateParamVersion, Value: a.Version},
			{Key: schemas.SoftwareUpdateParamRollback, Value: rollback},
		},
	}
}

// phases maps the robot's resultDescription while RUNNING to our states.
var phases = map[string]string{
	string(schemas.PhaseDownloading): schemas.RobotUpdateDownloading,
	string(schemas.PhaseVerifying):   schemas.RobotUpdateVerifying,
	string(schemas.PhaseInstalling):  schemas.RobotUpdateInstalling,
	string(schemas.PhaseRebooting):   schemas.RobotUpdateRebooting,
}

// attempt sends one softwareUpdate and follows its actionState until
// FINISHED with the robot reporting the version, FAILED, or the timeout.
func (u *robotUpdate) attempt(ctx workflow.Context, a schemas.ArtifactRef, rollback bool, local string) attemptOutcome {
	actionID := u.id + schemas.InstantActionSeparator + local
	u.status.ActionID = actionID
	u.setState(ctx, schemas.RobotUpdateSent)
	send := schemas.SendInstantActionsInput{RobotID: u.in.Robot.ID, Holder: u.id, Actions: []vda5050.Action{softwareUpdateAction(actionID, a, rollback)}}
	var err error
	if u.io != "" { // an edge site: through its robot I/O queue
		err = sendInstantActions.io(ctx, u.io, schemas.ActionSoftwareUpdate+" to "+u.in.Robot.ID, send, nil)
	} else {
		err = sendInstantActions.local(ctx, schemas.ActionSoftwareUpdate+" to "+u.in.Robot.ID, send, nil)
	}
	if err != nil {
		return attemptOutcome{state: schemas.RobotUpdateFailed, kind: "SendFailed", reason: "send softwareUpdate: " + err.Error(), retryable: true}
	}
	deadline := workflow.Now(ctx).Add(u.in.Timeout)
	touched := false
	seen := -1
	for {
		if seen != u.events && u.haveLast {
			seen = u.events
			for _, as := range u.last.ActionStates {
				if as.ActionID != actionID {
					continue
				}
				switch as.ActionStatus {
				case vda5050.ActionFinished:
					if u.status.Version == a.Version {
						return attemptOutcome{ok: true, touched: true}
					}
					touched = true // finished but not yet reporting the version: wait
				case vda5050.ActionFailed:
					refusal := schemas.ParseRefusal(as.ResultDescription)
					kind, retry := string(refusal), refusal.Retryable()
					return attemptOutcome{state: schemas.RobotUpdateFailed, kind: kind, retryable: retry, touched: touched,
						reason: fmt.Sprintf("robot %s refused %s %s: %s", u.in.Robot.ID, a.Name, a.Version, as.ResultDescription)}
				default:
					if p, ok := phases[as.ResultDescription]; ok {
						if p == schemas.RobotUpdateInstalling || p == schemas.RobotUpdateRebooting {
							touched = true
						}
						u.setState(ctx, p)
					}
				}
			}
		}
		left := deadline.Sub(workflow.Now(ctx))
		if left <= 0 {
			return attemptOutcome{state: schemas.RobotUpdateTimedOut, kind: "Timeout", retryable: true, touched: true,
				reason: fmt.Sprintf("robot %s did not finish %s %s within %s (last state %s)", u.in.Robot.ID, a.Name, a.Version, u.in.Timeout, u.status.State)}
		}
		cur := u.events
		ok, _ := u.timer.await(ctx, min(left, OTA.ReconcileAfter), func() bool { return u.events != cur })
		if !ok && workflow.Now(ctx).Before(deadline) {
			u.snapshot(ctx)
		}
	}
}

// healthOnlineTries bounds the health check's wait for a rebooted robot's
// ONLINE to reach the store (one try a second).
const healthOnlineTries = 10

// healthCheck waits HealthCheck with the robot on the new version, failing
// at the first FATAL error, then confirms from the stored state.
func (u *robotUpdate) healthCheck(ctx workflow.Context) attemptOutcome {
	u.setState(ctx, schemas.RobotUpdateHealthCheck)
	fatal := func() string {
		for _, e := range u.last.Errors {
			if e.ErrorLevel == vda5050.ErrorFatal {
				return fmt.Sprintf("FATAL error %s: %s", e.ErrorType, e.ErrorDescription)
			}
		}
		return ""
	}
	end := workflow.Now(ctx).Add(u.in.HealthCheck)
	for {
		if f := fatal(); f != "" {
			return attemptOutcome{state: schemas.RobotUpdateFailed, kind: "RobotFatal", touched: true,
				reason: fmt.Sprintf("robot %s on %s: %s", u.in.Robot.ID, u.status.Version, f)}
		}
		left := end.Sub(workflow.Now(ctx))
		if left <= 0 {
			break
		}
		cur := u.events
		_, _ = u.timer.await(ctx, left, func() bool { return u.events != cur })
	}
	_, ok := u.snapshot(ctx)
	// Right after a reboot the ONLINE may not be stored yet (connection and
	// state travel on different topics and are flushed in batches): give
	// it a few seconds before calling the robot offline.
	for tries := 0; ok && u.last.Connection != string(vda5050.ConnectionOnline) && tries < healthOnlineTries; tries++ {
		cur := u.events
		_, _ = u.timer.await(ctx, time.Second, func() bool { return u.events != cur })
		if u.last.Connection != string(vda5050.ConnectionOnline) {
			_, ok = u.snapshot(ctx)
		}
	}
	snap := u.last // the stored state, or the signalled one when newer
	switch {
	case !ok:
		return attemptOutcome{state: schemas.RobotUpdateFailed, kind: "HealthCheck", touched: true, retryable: true, reason: "health check: cannot read the robot's state"}
	case fatal() != "":
		return attemptOutcome{state: schemas.RobotUpdateFailed, kind: "RobotFatal", touched: true,
			reason: fmt.Sprintf("robot %s on %s: %s", u.in.Robot.ID, u.status.Version, fatal())}
	case snap.Connection != string(vda5050.ConnectionOnline):
		return attemptOutcome{state: schemas.RobotUpdateFailed, kind: "HealthCheck", touched: true, retryable: true,
			reason: fmt.Sprintf("robot %s is %s after the update", u.in.Robot.ID, snap.Connection)}
	case snap.SoftwareVersion != u.in.Artifact.Version:
		return attemptOutcome{state: schemas.RobotUpdateFailed, kind: "HealthCheck", touched: true, retryable: true,
			reason: fmt.Sprintf("robot %s reports version %q after installing %s", u.in.Robot.ID, snap.SoftwareVersion, u.in.Artifact.Version)}
	}
	return attemptOutcome{ok: true, touched: true}
}

// rollback installs in.Previous (rollback allowed) and reports whether the
// robot came back healthy on it.
func (u *robotUpdate) rollback(ctx workflow.Context) bool {
	p := u.in.Previous
	if p == nil {
		u.audit(ctx, "update.rollback_impossible", map[string]any{"reason": "no artifact of version " + u.status.FromVersion + " in the store"})
		return false
	}
	u.setState(ctx, schemas.RobotUpdateRollingBack)
	u.audit(ctx, "update.rollback_started", map[string]any{"to": p.Version, "toSha256": p.SHA256})
	out := u.attempt(ctx, *p, true, "rollback")
	if out.ok {
		for _, e := range u.last.Errors {
			if e.ErrorLevel == vda5050.ErrorFatal {
				out = attemptOutcome{reason: "FATAL error after rollback: " + e.ErrorType}
			}
		}
	}
	if !out.ok {
		u.audit(ctx, "update.rollback_failed", map[string]any{"to": p.Version, "reason": out.reason})
		u.status.LastError += "; rollback failed: " + out.reason
		return false
	}
	u.audit(ctx, "update.rolled_back", map[string]any{"to": p.Version})
	return true
}

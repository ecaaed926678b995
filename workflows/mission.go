package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// Mission states, as shown by the status query and the MissionState search
// attribute.
const (
	MissionValidating = "VALIDATING"
	MissionQueued     = "QUEUED"     // waiting for a free robot
	MissionReserved   = "RESERVED"   // robot reserved, order being built and sent
	MissionDriving    = "DRIVING"    // order sent, robot working
	MissionPaused     = "PAUSED"     // robot confirmed startPause
	MissionCancelling = "CANCELLING" // cancelOrder sent, waiting for the robot
	MissionCompleted  = "COMPLETED"
	MissionCancelled  = "CANCELLED"
	MissionFailed     = "FAILED"
)

// Application error types a mission fails with.
const (
	ErrInvalidMission     = "InvalidMission"
	ErrRobotRejectedOrder = "RobotRejectedOrder"
	ErrRobotFatal         = "RobotFatalError"
	ErrRobotDisconnected  = "RobotDisconnected"
	ErrActionFailed       = "ActionFailed"
	ErrMissionTimeout     = "MissionTimeout"
)

// MissionInput starts a Mission workflow.
type MissionInput struct {
	Spec schemas.MissionSpec `json:"spec"`
	// RequestedBy is who launched it (CLI user, WMS integration); audited.
	RequestedBy string `json:"requestedBy,omitempty"`
}

// MissionResult is what a finished mission returns. State is COMPLETED or
// CANCELLED; a failed mission returns an error instead, whose message is Reason.
type MissionResult struct {
	MissionID  string    `json:"missionId"`
	State      string    `json:"state"`
	RobotID    string    `json:"robotId,omitempty"`
	NodesDone  int       `json:"nodesDone"`
	NodesTotal int       `json:"nodesTotal"`
	Reason     string    `json:"reason,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

// MissionStatus answers the status query and the updates.
type MissionStatus struct {
	MissionID     string    `json:"missionId"`
	Site          string    `json:"site"`
	Priority      int       `json:"priority"`
	State         string    `json:"state"`
	RobotID       string    `json:"robotId,omitempty"`
	QueuePosition int       `json:"queuePosition,omitempty"`
	OrderID       string    `json:"orderId,omitempty"`
	NodesDone     int       `json:"nodesDone"`
	NodesTotal    int       `json:"nodesTotal"`
	CurrentNode   string    `json:"currentNode,omitempty"`
	Paused        bool      `json:"paused"`
	LastError     string    `json:"lastError,omitempty"`
	StartedAt     time.Time `json:"startedAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

// Terminal reports whether the mission has ended.
func (s MissionStatus) Terminal() bool {
	return s.State == MissionCompleted || s.State == MissionCancelled || s.State == MissionFailed
}

// CancelRequest is the argument of the cancel update.
type CancelRequest struct {
	Reason string `json:"reason,omitempty"`
	By     string `json:"by,omitempty"`
}

// MissionTimings tunes how long a mission waits; zero values take defaults.
// They are workflow inputs only in tests (package variable, not persisted).
type MissionTimings struct {
	ReconcileAfter time.Duration // no robot event for this long → read stored state (default 15 s)
	RequeueAfter   time.Duration // queued: retry the reservation this often even without a signal (default 30 s)
	ConfirmTimeout time.Duration // wait this long for the robot to confirm cancel/pause/resume (default 60 s)
	DefaultTimeout time.Duration // mission deadline when the spec gives none (default 1 h)
}

// Timings are the durations Mission uses. Tests may shorten them; changing
// them for running workflows is safe because timers are recorded in history.
var Timings = MissionTimings{
	ReconcileAfter: 15 * time.Second,
	RequeueAfter:   30 * time.Second,
	ConfirmTimeout: 60 * time.Second,
	DefaultTimeout: time.Hour,
}

var (
	saRobotID      = temporal.NewSearchAttributeKeyKeyword(SearchAttrRobotID)
	saMissionState = temporal.NewSearchAttributeKeyKeyword(SearchAttrMissionState)
)

type mission struct {
	in     MissionInput
	logger log.Logger
	status MissionStatus

	orderID   string
	nodeIDs   []string
	actionIDs map[string]bool // the order's node actions
	lastNode  string
	orderSent bool

	events int // robot events applied so far

	cancelRequested bool
	cancelReq       CancelRequest
	cancelActionID  string
	cancelSent      bool
	cancelConfirmed bool

	pauseWanted    bool // what the operator asked for
	pauseSentFor   bool // what we last told the robot
	pauseSeq       int
	pauseActionIDs map[string]bool

	wake bool // robot-available signal received while queued

	outcome   string // MissionCompleted, MissionCancelled, MissionFailed once decided
	failType  string
	released  bool
	finished  bool
	startedAt time.Time
}

// Mission runs one transport mission: validate the spec against its site map
// → reserve a robot (queued while none is free, higher priority first) →
// build and send the VDA 5050 order → follow the robot's progress from
// robot-event signals, reconciling from the stored state when nothing arrives
// → release the robot and audit, however the mission ends.
//
// Updates: cancel (sends cancelOrder, waits for the robot to confirm,
// releases), pause and resume (startPause/stopPause, VDA 5050 §6.8). Query:
// status. A robot FATAL error, a lost connection, a rejected order or a
// failed action fails the mission with that reason.
func Mission(ctx workflow.Context, in MissionInput) (MissionResult, error) {
	m := &mission{
		in:             in,
		logger:         workflow.GetLogger(ctx),
		actionIDs:      map[string]bool{},
		pauseActionIDs: map[string]bool{},
		startedAt:      workflow.Now(ctx),
	}
	m.status = MissionStatus{
		MissionID: in.Spec.MissionID, Site: in.Spec.Site, Priority: in.Spec.Priority,
		State: MissionValidating, StartedAt: m.startedAt, UpdatedAt: m.startedAt,
	}
	// The orderId names the owning workflow (DESIGN: the bridge signals it
	// without a lookup); derived from the spec, not from GetInfo, so it is
	// the same in every replay.
	m.orderID = MissionWorkflowID(in.Spec.MissionID)
	if err := m.registerHandlers(ctx); err != nil {
		return MissionResult{}, err
	}
	res, err := m.run(ctx)
	// Let update handlers (cancel waits for the release) finish first.
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return res, err
}

func (m *mission) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (MissionStatus, error) {
		return m.status, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateCancel, m.cancel,
		workflow.UpdateHandlerOptions{Validator: m.validateCancel}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdatePause, m.pause,
		workflow.UpdateHandlerOptions{Validator: m.validatePause}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateResume, m.resume,
		workflow.UpdateHandlerOptions{Validator: m.validateResume}); err != nil {
		return err
	}
	events := workflow.GetSignalChannel(ctx, SignalRobotEvent)
	workflow.Go(ctx, func(gctx workflow.Context) {
		for {
			var ev schemas.RobotEvent
			if !events.Receive(gctx, &ev) {
				return
			}
			m.apply(gctx, ev)
		}
	})
	avail := workflow.GetSignalChannel(ctx, SignalRobotAvailable)
	workflow.Go(ctx, func(gctx workflow.Context) {
		for avail.Receive(gctx, nil) {
			m.wake = true
		}
	})
	return nil
}

// ---- updates ----

func (m *mission) validateCancel(ctx workflow.Context, req CancelRequest) error {
	if m.status.Terminal() || m.outcome != "" {
		return fmt.Errorf("mission %s has already ended (%s)", m.status.MissionID, m.status.State)
	}
	if m.cancelRequested {
		return fmt.Errorf("mission %s is already being cancelled", m.status.MissionID)
	}
	return nil
}

func (m *mission) cancel(ctx workflow.Context, req CancelRequest) (MissionStatus, error) {
	m.cancelRequested = true
	m.cancelReq = req
	// Returns once the robot confirmed and the robot is released (or the
	// mission ended another way meanwhile).
	if err := workflow.Await(ctx, func() bool { return m.finished }); err != nil {
		return m.status, err
	}
	return m.status, nil
}

func (m *mission) validatePause(ctx workflow.Context) error {
	if m.status.State != MissionDriving || m.cancelRequested || m.outcome != "" {
		return fmt.Errorf("mission %s cannot be paused in state %s (only while %s)", m.status.MissionID, m.status.State, MissionDriving)
	}
	return nil
}

func (m *mission) pause(ctx workflow.Context) (MissionStatus, error) {
	return m.setPause(ctx, true)
}

func (m *mission) validateResume(ctx workflow.Context) error {
	if m.status.State != MissionPaused || m.cancelRequested || m.outcome != "" {
		return fmt.Errorf("mission %s is not paused (state %s)", m.status.MissionID, m.status.State)
	}
	return nil
}

func (m *mission) resume(ctx workflow.Context) (MissionStatus, error) {
	return m.setPause(ctx, false)
}

// setPause asks the main loop to send startPause/stopPause and waits for the
// robot to report paused accordingly.
func (m *mission) setPause(ctx workflow.Context, on bool) (MissionStatus, error) {
	m.pauseWanted = on
	ok, err := workflow.AwaitWithTimeout(ctx, Timings.ConfirmTimeout+5*time.Second, func() bool {
		return m.outcome != "" || (m.pauseSentFor == on && m.status.Paused == on)
	})
	if err != nil {
		return m.status, err
	}
	if !ok {
		return m.status, fmt.Errorf("robot %s did not confirm %s within %s", m.status.RobotID, pauseAction(on), Timings.ConfirmTimeout)
	}
	if m.outcome != "" {
		return m.status, fmt.Errorf("mission ended (%s) before the robot confirmed %s", m.outcome, pauseAction(on))
	}
	return m.status, nil
}

func pauseAction(on bool) string {
	if on {
		return vda5050.ActionStartPause
	}
	return vda5050.ActionStopPause
}

// ---- main flow ----

func (m *mission) run(ctx workflow.Context) (MissionResult, error) {
	spec := m.in.Spec
	if err := checkSpec(spec); err != nil {
		return m.fail(ctx, ErrInvalidMission, err.Error())
	}
	m.setDetails(ctx)

	var plan schemas.PlanMissionResult
	if err := workflow.ExecuteLocalActivity(localCtx(ctx, "check mission against site map"), ActivityPlanMission,
		schemas.PlanMissionInput{Spec: spec}).Get(ctx, &plan); err != nil {
		return m.fail(ctx, errType(err, ErrInvalidMission), err.Error())
	}

	deadline := m.startedAt.Add(Timings.DefaultTimeout)
	if spec.TimeoutSeconds > 0 {
		deadline = m.startedAt.Add(time.Duration(spec.TimeoutSeconds) * time.Second)
	}

	// Reserve, queueing while no robot is free.
	req := schemas.ReserveRobotInput{
		MissionID: spec.MissionID, WorkflowID: m.orderID, Site: spec.Site, Priority: spec.Priority,
		RequiredCapabilities: spec.RequiredCapabilities, MinBattery: spec.MinBattery, X: plan.X, Y: plan.Y,
	}
	for {
		m.wake = false
		var res schemas.ReserveRobotResult
		if err := workflow.ExecuteLocalActivity(localCtx(ctx, "reserve a robot"), ActivityReserveRobot, req).Get(ctx, &res); err != nil {
			return m.fail(ctx, "", "reserve robot: "+err.Error())
		}
		if !res.Queued {
			m.status.RobotID = res.RobotID
			m.status.QueuePosition = 0
			m.setState(ctx, MissionReserved)
			_ = workflow.UpsertTypedSearchAttributes(ctx, saRobotID.ValueSet(res.RobotID))
			break
		}
		m.status.QueuePosition = res.QueuePosition
		m.setState(ctx, MissionQueued)
		wait := Timings.RequeueAfter
		if left := deadline.Sub(workflow.Now(ctx)); left < wait {
			wait = left
		}
		if _, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return m.wake || m.cancelRequested }); err != nil {
			return m.cleanupAfterCancel(ctx)
		}
		if m.cancelRequested || !workflow.Now(ctx).Before(deadline) {
			if err := workflow.ExecuteLocalActivity(localCtx(ctx, "leave the reservation queue"), ActivityCancelQueued,
				schemas.CancelQueuedInput{MissionID: spec.MissionID}).Get(ctx, nil); err != nil {
				m.logger.Warn("leave queue failed", "error", err)
			}
			if m.cancelRequested {
				return m.end(ctx, MissionCancelled, "", m.cancelReason())
			}
			return m.fail(ctx, ErrMissionTimeout, fmt.Sprintf("no robot became free within the mission's deadline (%s)", deadline.Sub(m.startedAt)))
		}
	}

	if m.cancelRequested {
		return m.end(ctx, MissionCancelled, "", m.cancelReason())
	}

	// Build and send the order.
	var built schemas.BuildOrderResult
	if err := workflow.ExecuteLocalActivity(localCtx(ctx, "build VDA 5050 order"), ActivityBuildOrder, schemas.BuildOrderInput{
		Spec: spec, RobotID: m.status.RobotID, OrderID: m.orderID,
	}).Get(ctx, &built); err != nil {
		return m.fail(ctx, errType(err, ""), "build order: "+err.Error())
	}
	m.nodeIDs = built.NodeIDs
	for _, id := range built.ActionIDs {
		m.actionIDs[id] = true
	}
	m.status.NodesTotal = len(built.NodeIDs)
	m.status.OrderID = m.orderID
	if len(built.NodeIDs) > 0 {
		m.lastNode = built.NodeIDs[len(built.NodeIDs)-1]
		m.status.CurrentNode = built.NodeIDs[0]
	}
	if m.cancelRequested {
		return m.end(ctx, MissionCancelled, "", m.cancelReason())
	}
	// Count the order as sent before publishing it: a fast robot can finish
	// it before the local activity returns, and its events (which carry our
	// orderId) must not be thrown away meanwhile.
	m.orderSent = true
	if err := workflow.ExecuteLocalActivity(localCtx(ctx, "send order to "+m.status.RobotID), ActivitySendOrder, schemas.SendOrderInput{
		RobotID: m.status.RobotID, Order: built.Order,
	}).Get(ctx, nil); err != nil {
		if workflow.IsContinueAsNewError(err) || errors.Is(ctx.Err(), workflow.ErrCanceled) {
			return m.cleanupAfterCancel(ctx)
		}
		return m.fail(ctx, "", "send order: "+err.Error())
	}
	if m.outcome == "" {
		m.setState(ctx, MissionDriving)
	}

	// Follow the robot.
	seen := m.events
	for m.outcome == "" {
		if m.cancelRequested && !m.cancelSent {
			m.setState(ctx, MissionCancelling)
			m.cancelActionID = m.orderID + InstantActionSeparator + "cancel"
			if err := m.sendInstant(ctx, vda5050.ActionCancelOrder, m.cancelActionID); err != nil {
				return m.fail(ctx, "", "send cancelOrder: "+err.Error())
			}
			m.cancelSent = true
			deadline = workflow.Now(ctx).Add(Timings.ConfirmTimeout)
		}
		if !m.cancelRequested && m.pauseWanted != m.pauseSentFor {
			m.pauseSeq++
			id := fmt.Sprintf("%s%s%s-%d", m.orderID, InstantActionSeparator, pauseAction(m.pauseWanted), m.pauseSeq)
			m.pauseActionIDs[id] = true
			if err := m.sendInstant(ctx, pauseAction(m.pauseWanted), id); err != nil {
				return m.fail(ctx, "", "send "+pauseAction(m.pauseWanted)+": "+err.Error())
			}
			m.pauseSentFor = m.pauseWanted
		}
		wait := Timings.ReconcileAfter
		left := deadline.Sub(workflow.Now(ctx))
		if left <= 0 {
			if m.cancelSent {
				// The robot never confirmed: end anyway so the operator is not
				// stuck, and say so.
				m.status.LastError = fmt.Sprintf("robot %s did not confirm cancelOrder within %s", m.status.RobotID, Timings.ConfirmTimeout)
				m.outcome = MissionCancelled
				break
			}
			m.cancelActionID = m.orderID + InstantActionSeparator + "timeout-cancel"
			_ = m.sendInstant(ctx, vda5050.ActionCancelOrder, m.cancelActionID)
			return m.fail(ctx, ErrMissionTimeout, fmt.Sprintf("mission did not finish within %s", deadline.Sub(m.startedAt)))
		}
		if left < wait {
			wait = left
		}
		ok, err := workflow.AwaitWithTimeout(ctx, wait, func() bool {
			return m.outcome != "" || m.events != seen ||
				(m.cancelRequested && !m.cancelSent) || (!m.cancelRequested && m.pauseWanted != m.pauseSentFor)
		})
		if err != nil {
			return m.cleanupAfterCancel(ctx)
		}
		if !ok && m.outcome == "" && workflow.Now(ctx).Before(deadline) {
			// Nothing heard for a while: the truth is the latest stored state.
			var ev schemas.RobotEvent
			if err := workflow.ExecuteLocalActivity(localCtx(ctx, "reconcile from stored robot state"), ActivityRobotSnapshot,
				schemas.RobotSnapshotInput{RobotID: m.status.RobotID}).Get(ctx, &ev); err != nil {
				m.logger.Warn("reconcile failed", "error", err)
			} else {
				ev.Reconciled = true
				m.apply(ctx, ev)
			}
		}
		seen = m.events
	}
	switch m.outcome {
	case MissionCompleted:
		return m.end(ctx, MissionCompleted, "", "")
	case MissionCancelled:
		return m.end(ctx, MissionCancelled, "", m.cancelReason())
	default:
		if m.orderSent && !m.cancelSent && m.failType != ErrRobotDisconnected && m.failType != ErrRobotRejectedOrder {
			// Stop the robot working on a failed mission before releasing it.
			_ = m.sendInstant(ctx, vda5050.ActionCancelOrder, m.orderID+InstantActionSeparator+"fail-cancel")
		}
		return m.fail(ctx, m.failType, m.status.LastError)
	}
}

func (m *mission) sendInstant(ctx workflow.Context, actionType, actionID string) error {
	return workflow.ExecuteLocalActivity(localCtx(ctx, actionType+" to "+m.status.RobotID), ActivitySendInstantActions, schemas.SendInstantActionsInput{
		RobotID: m.status.RobotID,
		Actions: []vda5050.Action{{ActionType: actionType, ActionID: actionID, BlockingType: vda5050.BlockingHard}},
	}).Get(ctx, nil)
}

// apply folds one robot event into the mission's state and decides the
// outcome when the robot finished, failed or was lost.
func (m *mission) apply(ctx workflow.Context, ev schemas.RobotEvent) {
	if m.status.RobotID == "" || ev.RobotID != m.status.RobotID || m.outcome != "" {
		return
	}
	m.events++
	m.status.UpdatedAt = workflow.Now(ctx)
	switch vda5050.ConnectionState(ev.Connection) {
	case vda5050.ConnectionBroken, vda5050.ConnectionOffline:
		m.decideFail(ErrRobotDisconnected, fmt.Sprintf("robot %s lost its connection (%s)", ev.RobotID, ev.Connection))
		return
	}
	for _, e := range ev.Errors {
		if e.ErrorLevel == vda5050.ErrorFatal {
			m.decideFail(ErrRobotFatal, fmt.Sprintf("robot %s FATAL error %s: %s", ev.RobotID, e.ErrorType, e.ErrorDescription))
			return
		}
		if m.orderSent && refersTo(e, "orderId", m.orderID) {
			m.decideFail(ErrRobotRejectedOrder, fmt.Sprintf("robot %s rejected order %s: %s: %s", ev.RobotID, m.orderID, e.ErrorType, e.ErrorDescription))
			return
		}
	}
	for _, as := range ev.ActionStates {
		switch {
		case as.ActionID == m.cancelActionID && m.cancelSent && as.ActionStatus.Terminal():
			// FAILED means "no order to cancel": the robot holds no order either way.
			m.cancelConfirmed = true
		case m.actionIDs[as.ActionID] && as.ActionStatus == vda5050.ActionFailed && !m.cancelSent:
			m.decideFail(ErrActionFailed, fmt.Sprintf("action %s (%s) failed on robot %s: %s", as.ActionID, as.ActionType, ev.RobotID, as.ResultDescription))
			return
		}
	}
	if !m.orderSent || ev.OrderID != m.orderID {
		if m.cancelConfirmed {
			m.outcome = MissionCancelled
		}
		return
	}
	m.status.CurrentNode = ev.LastNodeID
	if done := ev.LastNodeSequenceID/2 + 1; done > m.status.NodesDone && done <= m.status.NodesTotal {
		m.status.NodesDone = done
	}
	if m.status.Paused != ev.Paused {
		m.status.Paused = ev.Paused
		if ev.Paused && m.status.State == MissionDriving {
			m.setState(ctx, MissionPaused)
		} else if !ev.Paused && m.status.State == MissionPaused {
			m.setState(ctx, MissionDriving)
		}
	}
	if m.cancelConfirmed || (m.cancelSent && ev.NodesRemaining == 0 && !ev.Driving && ev.LastNodeID != m.lastNode) {
		m.outcome = MissionCancelled
		return
	}
	if ev.NodesRemaining == 0 && ev.EdgesRemaining == 0 && !ev.Driving && ev.LastNodeID == m.lastNode && m.actionsFinished(ev) {
		m.status.NodesDone = m.status.NodesTotal
		m.outcome = MissionCompleted
		return
	}
	m.setDetails(ctx)
}

func (m *mission) actionsFinished(ev schemas.RobotEvent) bool {
	finished := 0
	for _, as := range ev.ActionStates {
		if m.actionIDs[as.ActionID] && as.ActionStatus == vda5050.ActionFinished {
			finished++
		}
	}
	return finished == len(m.actionIDs)
}

func (m *mission) decideFail(errType, reason string) {
	m.failType = errType
	m.status.LastError = reason
	m.outcome = MissionFailed
}

func refersTo(e vda5050.Error, key, value string) bool {
	for _, r := range e.ErrorReferences {
		if r.ReferenceKey == key && r.ReferenceValue == value {
			return true
		}
	}
	return false
}

func (m *mission) cancelReason() string {
	r := m.cancelReq.Reason
	if r == "" {
		r = "cancelled"
	}
	if m.cancelReq.By != "" {
		r += " (by " + m.cancelReq.By + ")"
	}
	if m.status.LastError != "" {
		r += "; " + m.status.LastError
	}
	return r
}

// cleanupAfterCancel runs when Temporal cancels the workflow itself: stop the
// robot, release it and audit, on a disconnected context.
func (m *mission) cleanupAfterCancel(ctx workflow.Context) (MissionResult, error) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	if m.orderSent && !m.cancelSent {
		_ = m.sendInstant(dctx, vda5050.ActionCancelOrder, m.orderID+InstantActionSeparator+"wf-cancel")
	}
	if m.status.RobotID == "" {
		_ = workflow.ExecuteLocalActivity(localCtx(dctx, "leave the reservation queue"), ActivityCancelQueued,
			schemas.CancelQueuedInput{MissionID: m.in.Spec.MissionID}).Get(dctx, nil)
	}
	m.status.LastError = "workflow cancelled"
	_, _ = m.end(dctx, MissionCancelled, "", "workflow cancelled")
	return m.result(), temporal.NewCanceledError("workflow cancelled")
}

func (m *mission) fail(ctx workflow.Context, errType, reason string) (MissionResult, error) {
	m.status.LastError = reason
	res, _ := m.end(ctx, MissionFailed, errType, reason)
	if errType == "" {
		errType = "MissionFailed"
	}
	return res, temporal.NewNonRetryableApplicationError(reason, errType, nil, res)
}

// end releases the robot, audits, notifies the WMS and records the final state.
func (m *mission) end(ctx workflow.Context, state, errType, reason string) (MissionResult, error) {
	if m.status.RobotID != "" && !m.released {
		if err := workflow.ExecuteLocalActivity(localCtx(ctx, "release "+m.status.RobotID), ActivityReleaseRobot, schemas.ReleaseRobotInput{
			RobotID: m.status.RobotID, MissionID: m.in.Spec.MissionID, Site: m.in.Spec.Site,
		}).Get(ctx, nil); err != nil {
			m.logger.Error("release robot failed", "robot", m.status.RobotID, "error", err)
		} else {
			m.released = true
		}
	}
	m.setState(ctx, state)
	details := map[string]any{"state": state, "robotId": m.status.RobotID, "nodesDone": m.status.NodesDone, "nodesTotal": m.status.NodesTotal}
	if reason != "" {
		details["reason"] = reason
	}
	if errType != "" {
		details["errorType"] = errType
	}
	actor := m.in.RequestedBy
	if state == MissionCancelled && m.cancelReq.By != "" {
		actor = m.cancelReq.By
	}
	if actor == "" {
		actor = "fleetflow"
	}
	auditF := workflow.ExecuteLocalActivity(localCtx(ctx, "audit"), ActivityAudit, schemas.AuditInput{
		Actor: actor, Kind: "mission." + strings.ToLower(state), Subject: m.orderID, Details: details,
	})
	notifyF := workflow.ExecuteLocalActivity(localCtx(ctx, "notify WMS"), ActivityNotifyWMS, schemas.NotifyWMSInput{
		MissionID: m.in.Spec.MissionID, State: state, RobotID: m.status.RobotID, Reason: reason,
	})
	if err := auditF.Get(ctx, nil); err != nil {
		m.logger.Error("audit failed", "error", err)
	}
	if err := notifyF.Get(ctx, nil); err != nil {
		m.logger.Warn("notify WMS failed", "error", err)
	}
	m.finished = true
	res := m.result()
	res.Reason = reason
	return res, nil
}

func (m *mission) result() MissionResult {
	return MissionResult{
		MissionID: m.status.MissionID, State: m.status.State, RobotID: m.status.RobotID,
		NodesDone: m.status.NodesDone, NodesTotal: m.status.NodesTotal, Reason: m.status.LastError,
		StartedAt: m.startedAt, FinishedAt: m.status.UpdatedAt,
	}
}

func (m *mission) setState(ctx workflow.Context, state string) {
	if m.status.State == state {
		return
	}
	m.status.State = state
	m.status.UpdatedAt = workflow.Now(ctx)
	if err := workflow.UpsertTypedSearchAttributes(ctx, saMissionState.ValueSet(state)); err != nil {
		m.logger.Warn("upsert search attribute failed", "error", err)
	}
	m.setDetails(ctx)
}

// setDetails writes the Web UI's "current details" line.
func (m *mission) setDetails(ctx workflow.Context) {
	s := m.status
	var b strings.Builder
	b.WriteString(fmt.Sprintf("**%s**", s.State))
	if s.RobotID != "" {
		b.WriteString(fmt.Sprintf(" · robot `%s`", s.RobotID))
	}
	if s.State == MissionQueued {
		b.WriteString(fmt.Sprintf(" · waiting for a robot (queue position %d)", s.QueuePosition))
	}
	if s.NodesTotal > 0 {
		b.WriteString(fmt.Sprintf(" · node %d/%d", s.NodesDone, s.NodesTotal))
		if s.CurrentNode != "" {
			b.WriteString(fmt.Sprintf(" (at %s)", s.CurrentNode))
		}
	}
	if s.LastError != "" {
		b.WriteString(fmt.Sprintf(" · %s", s.LastError))
	}
	workflow.SetCurrentDetails(ctx, b.String())
}

// checkSpec re-checks what the workflow relies on; the CLI and ingress
// validate the full JSON Schema before starting anything.
func checkSpec(s schemas.MissionSpec) error {
	var problems []string
	if s.MissionID == "" {
		problems = append(problems, "missionId is empty")
	} else if err := vda5050.ValidIdentifier(s.MissionID); err != nil {
		problems = append(problems, "missionId "+err.Error())
	}
	if s.Site == "" {
		problems = append(problems, "site is empty")
	}
	if len(s.Steps) == 0 {
		problems = append(problems, "steps is empty")
	}
	for i, st := range s.Steps {
		if st.Action != vda5050.ActionPick && st.Action != vda5050.ActionDrop {
			problems = append(problems, fmt.Sprintf("steps[%d].action %q is not pick or drop", i, st.Action))
		}
		if st.Station == "" {
			problems = append(problems, fmt.Sprintf("steps[%d].station is empty", i))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid mission: %s", strings.Join(problems, "; "))
	}
	return nil
}

func errType(err error, fallback string) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.Type() != "" {
		return ae.Type()
	}
	return fallback
}

// localCtx: short, idempotent I/O runs as local activities — no round trip
// through the server, which is what keeps dispatch latency near a no-op
// workflow's (see README benchmarks).
func localCtx(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        200 * time.Millisecond,
			BackoffCoefficient:     2,
			MaximumInterval:        10 * time.Second,
			NonRetryableErrorTypes: []string{ErrInvalidMission, "UnknownRobot"},
		},
		Summary: summary,
	})
}

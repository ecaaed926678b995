package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// Error types a vehicle reports when it refuses an order (VDA 5050 §6.10.7).
const (
	robotErrNoRoute = "noRouteError"
)

// MissionTimings tunes how long a mission waits; zero values take defaults.
// They are workflow inputs only in tests (package variable, not persisted).
type MissionTimings struct {
	ReconcileAfter time.Duration // no robot event for this long → read stored state (default 15 s)
	RequeueAfter   time.Duration // queued: retry the reservation this often even without a signal (default 30 s; later in line, longer: requeueWait)
	RequeueMax     time.Duration // the longest a queued mission waits between retries (default 10 min)
	ConfirmTimeout time.Duration // wait this long for the robot to confirm cancel/pause/resume (default 60 s)
	DefaultTimeout time.Duration // mission deadline when the spec gives none (default 1 h)
	// OrderAckTimeout and OrderResends apply when the workers hand none
	// (PlanMissionResult): how long the robot's state may take to show a
	// sent order, and how often it is sent again (default 10 s, 3).
	OrderAckTimeout time.Duration
	OrderResends    int
	// ConnectionGrace applies when the workers hand none: how long a robot
	// whose connection was lost may take to come back (default 30 s).
	ConnectionGrace time.Duration
	// StallTimeout: a robot that makes no progress this long while it is
	// not paused is given up (failover; default 5 min).
	StallTimeout time.Duration
	// ResolveTimeout: how long an operator has to decide about a load left
	// on a failed robot before the mission aborts (default 15 min).
	ResolveTimeout time.Duration
	// MaxHandovers bounds the failovers of one mission (default 2).
	MaxHandovers int
	// RobotIOTimeout bounds the retries of a publish to a robot (the MQTT
	// client may be reconnecting: a broker restart is waited out, see
	// robotIO; default 2 min).
	RobotIOTimeout time.Duration
	// EdgeIOTimeout bounds how long a publish to a robot of an edge site
	// may wait in its site's robot I/O queue for the edge worker, retries
	// included (robotIO; default 10 min: an edge worker restarting or a
	// site's uplink down is waited out).
	EdgeIOTimeout time.Duration
	// ReleaseTimeout bounds how long a mission that ended keeps trying to
	// release its robot and leave the queue (default 10 min; after that the
	// Reaper frees what is left).
	ReleaseTimeout time.Duration
	// WebhookDeliveryTimeout is how long WMSEvents retries one event when
	// its input gives none; WebhookIdleTimeout how long it waits for the
	// next event before it ends without a terminal one.
	WebhookDeliveryTimeout time.Duration
	WebhookIdleTimeout     time.Duration
}

// Timings are the durations Mission uses. Tests may shorten them; changing
// them for running workflows is safe because timers are recorded in history.
var Timings = MissionTimings{
	ReconcileAfter:  15 * time.Second,
	RequeueAfter:    30 * time.Second,
	RequeueMax:      10 * time.Minute,
	ConfirmTimeout:  60 * time.Second,
	DefaultTimeout:  time.Hour,
	OrderAckTimeout: 10 * time.Second,
	OrderResends:    3,
	ConnectionGrace: 30 * time.Second,
	StallTimeout:    5 * time.Minute,
	ResolveTimeout:  15 * time.Minute,
	MaxHandovers:    2,
	RobotIOTimeout:  2 * time.Minute,
	EdgeIOTimeout:   10 * time.Minute,
	ReleaseTimeout:  10 * time.Minute,

	WebhookDeliveryTimeout: time.Hour,
	WebhookIdleTimeout:     48 * time.Hour,
}

var (
	saRobotID      = temporal.NewSearchAttributeKeyKeyword(schemas.SearchAttrRobotID)
	saMissionState = temporal.NewSearchAttributeKeyKeyword(schemas.SearchAttrMissionState)
)

type mission struct {
	in     schemas.MissionInput
	logger log.Logger
	status schemas.MissionStatus

	orderID       string // the workflow ID, which the first order's orderId is
	robotIO       string // the current robot's robot I/O task queue ("" = local; ReserveRobotResult.RobotIOQueue)
	vdaOrderID    string // the orderId sent to the current robot: orderID, then orderID#h<n> after the n-th handover
	orderUpdateID uint32
	order         vda5050.Order // as last built, resent unchanged while unacknowledged
	nodeIDs       []string
	actionIDs     map[string]bool // the order's node actions
	lastNode      string
	orderSent     bool

	// Order acknowledgement: the robot's state must show orderId and
	// orderUpdateId within ackTimeout of each send (robots.orderAckTimeout).
	orderAcked   bool
	ackDue       time.Time
	ackTimeout   time.Duration
	orderResends int
	replanWanted bool // refused with noRouteError: plan again once

	// A lost connection (CONNECTIONBROKEN, OFFLINE): since when, what,
	// and the robot's last state timestamp then; a newer state of the
	// robot, or ONLINE, means it is back.
	connLost   string
	connLostAt time.Time
	connLostTS string
	grace      time.Duration

	events     int      // robot events applied so far
	lastErrors []string // keys of the errors in the robot's latest event

	cancelRequested  bool
	cancelReq        schemas.CancelRequest
	cancelSeq        int // cancelOrder attempts (actionIds …#cancel-<n>)
	cancelAct        *controlAction
	cancelTicket     int            // cancel updates received
	cancelRefusals   map[int]string // ticket → the robot's reason
	cancelNotApplied string
	lateCancels      []string // actionIds of cancelOrders that went unanswered in time
	// stopping: Temporal cancelled the workflow and it waits for the
	// robot's confirmation from the stored state (cleanupAfterCancel);
	// robot events no longer change the mission.
	stopping bool

	pauseWanted   bool // what the operator asked for
	pauseSentFor  bool // what we last told the robot
	pauseSeq      int
	pauseAct      *controlAction
	pauseTicket   int
	pauseRefusals map[int]string

	// Failover: why the current robot is being given up ("" = it is
	// not), the mission's step each order action belongs to, the steps the
	// robot finished, the first step the current order drives, and when
	// the robot last made progress.
	failover     string
	failoverType string
	actionStep   map[string]int
	stepDone     []bool
	fromStep     int
	progressAt   time.Time
	progressKey  string
	resolution   *schemas.ResolveRequest

	wake        bool      // robot-available signal received while queued
	deadline    time.Time // the mission's deadline (spec timeoutSeconds, else Timings.DefaultTimeout)
	reserveSent bool      // a reservation was asked for: the mission may hold a queue row
	leftQueue   bool      // and it was removed

	outcome   string // MissionCompleted, MissionCancelled, MissionFailed once decided
	failType  string
	released  bool
	finished  bool
	startedAt time.Time
	// metricQueueWaitDone: the queue wait was recorded (metricReserved).
	metricQueueWaitDone bool

	notify *notifier // the mission's events for its WMS client; nil = none

	// The one timer of the mission's waits (timer.go), and the search
	// attributes set since the last upsert (flushSA writes them in one
	// command before the mission waits, so a workflow task carries at
	// most one UpsertWorkflowSearchAttributes).
	timer   waitTimer
	saRobot *string
	saState *string

	// startSpec is the spec the mission started with: update accept
	// compares a repeated request with it (append grows in.Spec).
	startSpec schemas.MissionSpec

	reserveRounds int // ReserveRobot answers so far (reprioritize waits for the next)
	accepts       int // accept updates answered

	// Parts (parts.go): the wait that ends the part the robot drives (nil =
	// none), the steps whose wait is over, the WMS signals not yet used,
	// and the end (exclusive) of the steps the orders sent so far cover.
	hold      *hold
	waitDone  []bool
	signals   []received
	partTo    int
	appending bool
}

// Mission runs one transport mission: validate the spec against its site map
// → reserve a robot (queued while none is free, higher priority first) →
// build and send the VDA 5050 order → follow the robot's progress from
// robot-event signals, reconciling from the stored state when nothing arrives
// → release the robot and audit, however the mission ends.
//
// Updates: cancel (sends cancelOrder, waits for the robot to confirm,
// releases), pause and resume (startPause/stopPause, VDA 5050 §6.8), each
// answered only by the robot: a refusal (its actionState FAILED, or an error
// naming the action or the message) or no answer within
// Timings.ConfirmTimeout fails the update with the robot's reason
// (schemas.ErrRobotRefused) and the mission goes on; a mission that then completes
// says "cancel not applied: <reason>". Query: status.
//
// An order the robot's state does not show within the order-ack timeout is
// sent again (same orderId and orderUpdateId, which a vehicle ignores when
// it already has them, §6.6.4) up to the configured number of times, then
// the mission fails as RobotUnresponsive. An order refused with
// noRouteError is planned once more from the robot's reported position. A
// robot FATAL error, a lost connection, a rejected order or a failed action
// fails the mission with that reason.
func Mission(ctx workflow.Context, in schemas.MissionInput) (schemas.MissionResult, error) {
	m := &mission{
		in:             in,
		startSpec:      in.Spec,
		logger:         workflow.GetLogger(ctx),
		actionIDs:      map[string]bool{},
		actionStep:     map[string]int{},
		cancelRefusals: map[int]string{},
		pauseRefusals:  map[int]string{},
		startedAt:      workflow.Now(ctx),
	}
	m.status = schemas.MissionStatus{
		MissionID: in.Spec.MissionID, Site: in.Spec.Site, Priority: in.Spec.Priority,
		State: schemas.MissionValidating, StartedAt: m.startedAt, UpdatedAt: m.startedAt,
	}
	// The orderId names the owning workflow (DESIGN: the bridge signals it
	// without a lookup); derived from the spec, not from GetInfo, so it is
	// the same in every replay.
	m.orderID = schemas.MissionWorkflowID(in.Spec.MissionID)
	m.vdaOrderID = m.orderID
	if err := m.registerHandlers(ctx); err != nil {
		return schemas.MissionResult{}, err
	}
	res, err := m.run(ctx)
	// Let update handlers (cancel waits for the release) finish first.
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return res, err
}

func (m *mission) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, schemas.QueryStatus, func() (schemas.MissionStatus, error) {
		return m.status, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, schemas.UpdateCancel, m.cancel,
		workflow.UpdateHandlerOptions{Validator: m.validateCancel}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, schemas.UpdatePause, m.pause,
		workflow.UpdateHandlerOptions{Validator: m.validatePause}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, schemas.UpdateResume, m.resume,
		workflow.UpdateHandlerOptions{Validator: m.validateResume}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, schemas.UpdateResolve, m.resolve,
		workflow.UpdateHandlerOptions{Validator: m.validateResolve}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, schemas.UpdateReprioritize, m.reprioritize,
		workflow.UpdateHandlerOptions{Validator: m.validateReprioritize}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, schemas.UpdateAccept, m.accept,
		workflow.UpdateHandlerOptions{Validator: m.validateAccept}); err != nil {
		return err
	}
	if err := m.registerWMS(ctx); err != nil {
		return err
	}
	events := workflow.GetSignalChannel(ctx, schemas.SignalRobotEvent)
	workflow.Go(ctx, func(gctx workflow.Context) {
		for {
			var ev schemas.RobotEvent
			if !events.Receive(gctx, &ev) {
				return
			}
			m.apply(gctx, ev)
		}
	})
	avail := workflow.GetSignalChannel(ctx, schemas.SignalRobotAvailable)
	workflow.Go(ctx, func(gctx workflow.Context) {
		for avail.Receive(gctx, nil) {
			m.wake = true
		}
	})
	return nil
}

// ---- updates ----

func (m *mission) validateCancel(ctx workflow.Context, req schemas.CancelRequest) error {
	if m.status.Terminal() || m.outcome != "" {
		return fmt.Errorf("mission %s has already ended (%s)", m.status.MissionID, m.status.State)
	}
	if m.cancelRequested {
		return fmt.Errorf("mission %s is already being cancelled", m.status.MissionID)
	}
	return nil
}

func (m *mission) cancel(ctx workflow.Context, req schemas.CancelRequest) (schemas.MissionStatus, error) {
	m.cancelRequested = true
	m.cancelReq = req
	m.cancelTicket++
	ticket := m.cancelTicket
	// Returns once the robot confirmed and is released, or refused (the
	// mission goes on), or the mission ended another way meanwhile.
	if err := workflow.Await(ctx, func() bool { return m.finished || m.cancelRefusals[ticket] != "" }); err != nil {
		return m.status, err
	}
	if reason := m.cancelRefusals[ticket]; reason != "" && !m.finished {
		return m.status, temporal.NewApplicationError(fmt.Sprintf("robot %s refused cancelOrder: %s; mission %s goes on (%s)",
			m.status.RobotID, reason, m.status.MissionID, m.status.State), schemas.ErrRobotRefused)
	}
	if m.status.State != schemas.MissionCancelled {
		why := m.cancelNotApplied
		if why == "" {
			why = "the mission ended before the robot applied it"
		}
		return m.status, temporal.NewApplicationError(fmt.Sprintf("mission %s ended %s, cancel not applied: %s",
			m.status.MissionID, m.status.State, why), schemas.ErrRobotRefused)
	}
	return m.status, nil
}

func (m *mission) validateResolve(ctx workflow.Context, req schemas.ResolveRequest) error {
	if m.status.State != schemas.MissionAwaitingOperator {
		return fmt.Errorf("mission %s is not waiting for an operator (state %s)", m.status.MissionID, m.status.State)
	}
	if req.Decision != schemas.DecisionReassign && req.Decision != schemas.DecisionAbort {
		return fmt.Errorf("decision %q: want %q or %q", req.Decision, schemas.DecisionReassign, schemas.DecisionAbort)
	}
	if m.resolution != nil {
		return fmt.Errorf("mission %s: a decision was already given", m.status.MissionID)
	}
	return nil
}

// resolve records the operator's decision about a load left on a failed
// robot and returns once the mission has acted on it.
func (m *mission) resolve(ctx workflow.Context, req schemas.ResolveRequest) (schemas.MissionStatus, error) {
	r := req
	m.resolution = &r
	if err := workflow.Await(ctx, func() bool { return m.status.State != schemas.MissionAwaitingOperator }); err != nil {
		return m.status, err
	}
	return m.status, nil
}

func (m *mission) validatePause(ctx workflow.Context) error {
	if m.status.State != schemas.MissionDriving || m.cancelRequested || m.outcome != "" {
		return fmt.Errorf("mission %s cannot be paused in state %s (only while %s)", m.status.MissionID, m.status.State, schemas.MissionDriving)
	}
	if m.pauseWanted {
		return fmt.Errorf("mission %s: a pause is already under way", m.status.MissionID)
	}
	return nil
}

func (m *mission) pause(ctx workflow.Context) (schemas.MissionStatus, error) {
	return m.setPause(ctx, true)
}

func (m *mission) validateResume(ctx workflow.Context) error {
	if m.status.State != schemas.MissionPaused || m.cancelRequested || m.outcome != "" {
		return fmt.Errorf("mission %s is not paused (state %s)", m.status.MissionID, m.status.State)
	}
	if !m.pauseWanted {
		return fmt.Errorf("mission %s: a resume is already under way", m.status.MissionID)
	}
	return nil
}

func (m *mission) resume(ctx workflow.Context) (schemas.MissionStatus, error) {
	return m.setPause(ctx, false)
}

// setPause asks the main loop to send startPause/stopPause and waits for the
// robot to report paused accordingly, or to refuse.
func (m *mission) setPause(ctx workflow.Context, on bool) (schemas.MissionStatus, error) {
	m.pauseWanted = on
	m.pauseTicket++
	ticket := m.pauseTicket
	if err := workflow.Await(ctx, func() bool {
		return m.outcome != "" || m.pauseRefusals[ticket] != "" || (m.pauseSentFor == on && m.status.Paused == on && m.pauseAct == nil)
	}); err != nil {
		return m.status, err
	}
	if reason := m.pauseRefusals[ticket]; reason != "" {
		return m.status, temporal.NewApplicationError(fmt.Sprintf("robot %s refused %s: %s (state %s)", m.status.RobotID, pauseAction(on), reason, m.status.State), schemas.ErrRobotRefused)
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

func (m *mission) run(ctx workflow.Context) (schemas.MissionResult, error) {
	spec := m.in.Spec
	if err := checkSpec(spec); err != nil {
		m.notifyEarlyEnd(ctx)
		return m.fail(ctx, schemas.ErrInvalidMission, err.Error())
	}
	m.setDetails(ctx)

	deadline := m.startedAt.Add(Timings.DefaultTimeout)
	if spec.TimeoutSeconds > 0 {
		deadline = m.startedAt.Add(time.Duration(spec.TimeoutSeconds) * time.Second)
	}
	m.deadline = deadline
	m.stepDone = make([]bool, len(spec.Steps))
	m.waitDone = make([]bool, len(spec.Steps))

	var plan schemas.PlanMissionResult
	if err := planMission.retry(ctx, "check mission against site map", schemas.PlanMissionInput{Spec: spec, Client: m.in.Client}, &plan, storeOptions("check mission against site map"), m.deadline); err != nil {
		m.notifyEarlyEnd(ctx)
		return m.fail(ctx, errType(err, schemas.ErrInvalidMission), err.Error())
	}
	m.metricStarted(ctx)
	if plan.Webhook && m.in.Client != "" {
		m.startNotifier(ctx, m.in.Client, plan.WebhookDeliveryTimeout)
	}
	m.grace = plan.ConnectionGrace
	if m.grace <= 0 {
		m.grace = Timings.ConnectionGrace
	}
	m.ackTimeout, m.orderResends = plan.OrderAckTimeout, plan.OrderResends
	if m.ackTimeout <= 0 {
		m.ackTimeout = Timings.OrderAckTimeout
	}
	if m.orderResends <= 0 && plan.OrderAckTimeout <= 0 {
		m.orderResends = Timings.OrderResends
	}
	req := schemas.ReserveRobotInput{
		MissionID: spec.MissionID, WorkflowID: m.orderID, Site: spec.Site, Priority: spec.Priority,
		RequiredCapabilities: spec.RequiredCapabilities, MinBattery: spec.MinBattery, X: plan.X, Y: plan.Y,
		InterruptCharging: spec.InterruptCharging,
	}
	// One pass per robot: the first, and one more for each failover.
	for {
		if res, err, done := m.reserve(ctx, req); done {
			return res, err
		}
		if res, err, done := m.drive(ctx); done {
			return res, err
		}
		if m.failover == "" {
			break
		}
		if res, err, done := m.handOver(ctx); done {
			return res, err
		}
	}
	switch m.outcome {
	case schemas.MissionCompleted:
		return m.end(ctx, schemas.MissionCompleted, "", m.completedReason())
	case schemas.MissionCancelled:
		return m.end(ctx, schemas.MissionCancelled, "", m.cancelReason())
	default:
		// A refused first order left the robot nothing to stop; a refused
		// order update leaves it driving the part it accepted before.
		if m.orderSent && m.cancelAct == nil && (m.failType != schemas.ErrRobotRejectedOrder || m.status.OrderUpdates > 0) {
			// Stop the robot working on a failed mission before releasing it
			// (a robot that is gone may hear it when it comes back: it would
			// drive on with its released base, VDA 5050 §4.1).
			m.cancelSeq++
			_, _ = m.sendInstant(ctx, vda5050.ActionCancelOrder, fmt.Sprintf("%s%sfail-cancel-%d", m.orderID, schemas.InstantActionSeparator, m.cancelSeq))
		}
		return m.fail(ctx, m.failType, m.status.LastError)
	}
}

// reserve gets the mission a robot, queueing while none is free. done is
// true when the mission ended here (cancelled, deadline, refused).
func (m *mission) reserve(ctx workflow.Context, req schemas.ReserveRobotInput) (schemas.MissionResult, error, bool) {
	for {
		m.wake = false
		var res schemas.ReserveRobotResult
		m.reserveSent = true
		// The priority may have changed while queued (update reprioritize):
		// the registry moves the request in line, keeping when it was queued.
		req.Priority = m.status.Priority
		if err := reserveRobot.retry(ctx, "reserve a robot", req, &res, storeOptions("reserve a robot"), m.deadline); err != nil {
			r, err := m.fail(ctx, errType(err, ""), "reserve robot: "+err.Error())
			return r, err, true
		}
		m.reserveRounds++
		if !res.Queued {
			m.status.RobotID = res.RobotID
			m.robotIO = res.RobotIOQueue
			m.status.QueuePosition = 0
			if n := len(m.status.Handovers); n > 0 {
				m.status.Handovers[n-1].ToRobot = res.RobotID
			}
			m.setState(ctx, schemas.MissionReserved)
			m.saRobot = &res.RobotID
			m.metricReserved(ctx)
			break
		}
		m.status.QueuePosition = res.QueuePosition
		m.setState(ctx, schemas.MissionQueued)
		wait := requeueWait(res.QueuePosition)
		if left := m.deadline.Sub(workflow.Now(ctx)); left < wait {
			wait = left
		}
		if _, err := m.wait(ctx, wait, func() bool { return m.wake || m.cancelRequested }); err != nil {
			r, err := m.cleanupAfterCancel(ctx)
			return r, err, true
		}
		if m.cancelRequested || !workflow.Now(ctx).Before(m.deadline) {
			m.leaveQueue(ctx)
			if m.cancelRequested {
				r, err := m.end(ctx, schemas.MissionCancelled, "", m.cancelReason())
				return r, err, true
			}
			r, err := m.fail(ctx, schemas.ErrMissionTimeout, fmt.Sprintf("no robot became free within the mission's deadline (%s)", m.deadline.Sub(m.startedAt)))
			return r, err, true
		}
	}
	if m.cancelRequested {
		r, err := m.end(ctx, schemas.MissionCancelled, "", m.cancelReason())
		return r, err, true
	}
	return schemas.MissionResult{}, nil, false
}

// drive builds and sends the order of the reserved robot and follows it
// until the outcome is decided or the robot is given up (m.failover). done
// is true when the mission ended here.
func (m *mission) drive(ctx workflow.Context) (schemas.MissionResult, error, bool) {
	if res, err := m.buildOrder(ctx); err != nil {
		return res, err, true
	}
	if m.cancelRequested {
		r, err := m.end(ctx, schemas.MissionCancelled, "", m.cancelReason())
		return r, err, true
	}
	// Count the order as sent before publishing it: a fast robot can finish
	// it before the local activity returns, and its events (which carry our
	// orderId) must not be thrown away meanwhile.
	m.orderSent = true
	m.progressAt = workflow.Now(ctx)
	if err := m.sendOrder(ctx); err != nil {
		if workflow.IsContinueAsNewError(err) || errors.Is(ctx.Err(), workflow.ErrCanceled) {
			r, err := m.cleanupAfterCancel(ctx)
			return r, err, true
		}
		r, err := m.fail(ctx, errType(err, ""), "send order: "+err.Error())
		return r, err, true
	}
	if m.outcome == "" && m.failover == "" {
		m.setState(ctx, schemas.MissionDriving)
	}

	seen := m.events
	for m.outcome == "" && m.failover == "" {
		now := workflow.Now(ctx)
		if m.cancelRequested && m.cancelAct == nil && m.hold != nil && m.hold.arrived {
			// The robot stands at a station with its order done: nothing
			// to stop (a cancelOrder would fail with noOrderToCancel).
			m.outcome = schemas.MissionCancelled
			break
		}
		// The next part goes out only once the robot's state shows the
		// last one: a refusal or a loss of that one must be told apart
		// (its resends, replan) before anything is stitched onto it.
		if m.orderAcked {
			m.settleHold(ctx)
			if m.outcome == "" && m.hold == nil && m.partTo < len(m.in.Spec.Steps) && !m.cancelRequested && m.cancelAct == nil {
				// Steps were appended while the robot drives its last part.
				m.extendOrder(ctx, m.partTo)
			}
		}
		if m.outcome != "" {
			break
		}
		if m.cancelRequested && m.cancelAct == nil {
			m.setState(ctx, schemas.MissionCancelling)
			m.cancelSeq++
			id := fmt.Sprintf("%s%scancel-%d", m.orderID, schemas.InstantActionSeparator, m.cancelSeq)
			act, err := m.sendControl(ctx, vda5050.ActionCancelOrder, id, m.cancelTicket)
			if err != nil {
				if errors.Is(ctx.Err(), workflow.ErrCanceled) {
					r, err := m.cleanupAfterCancel(ctx)
					return r, err, true
				}
				// Not sent is not applied: the update is told, the mission
				// goes on; should the publish have reached the robot after
				// all, its confirmation still ends the mission cancelled.
				act = unsent(vda5050.ActionCancelOrder, id, m.cancelTicket, workflow.Now(ctx), err)
				m.lateCancels = append(m.lateCancels, id)
			}
			m.cancelAct = act
		}
		if !m.cancelRequested && m.pauseAct == nil && m.pauseWanted != m.pauseSentFor {
			m.pauseSeq++
			id := fmt.Sprintf("%s%s%s-%d", m.orderID, schemas.InstantActionSeparator, pauseAction(m.pauseWanted), m.pauseSeq)
			act, err := m.sendControl(ctx, pauseAction(m.pauseWanted), id, m.pauseTicket)
			if err != nil {
				if errors.Is(ctx.Err(), workflow.ErrCanceled) {
					r, err := m.cleanupAfterCancel(ctx)
					return r, err, true
				}
				act = unsent(pauseAction(m.pauseWanted), id, m.pauseTicket, workflow.Now(ctx), err)
			}
			m.pauseAct = act
			m.pauseSentFor = m.pauseWanted
		}
		m.settleControls(ctx, workflow.Now(ctx))
		if m.connLost != "" && !workflow.Now(ctx).Before(m.connLostAt.Add(m.grace)) {
			m.giveUp(schemas.ErrRobotDisconnected, fmt.Sprintf("robot %s lost its connection (%s) and was not heard from within %s",
				m.status.RobotID, m.connLost, m.grace))
			break
		}
		atHold := m.hold != nil && m.hold.arrived
		if m.orderAcked && !m.status.Paused && m.cancelAct == nil && !atHold && !workflow.Now(ctx).Before(m.progressAt.Add(Timings.StallTimeout)) {
			m.giveUp(schemas.ErrRobotStalled, fmt.Sprintf("robot %s made no progress for %s", m.status.RobotID, Timings.StallTimeout))
			break
		}
		if m.replanWanted && m.outcome == "" {
			m.replanWanted = false
			if res, err := m.replan(ctx); err != nil {
				return res, err, true
			}
		}
		if !m.orderAcked && !now.Before(m.ackDue) && m.outcome == "" {
			// Nothing showed the order: look at the stored state first (a
			// signal may have been lost), then send it again.
			m.reconcile(ctx)
			if !m.orderAcked && m.outcome == "" {
				if m.status.OrderSends > m.orderResends {
					m.decideFail(schemas.ErrRobotUnresponsive, fmt.Sprintf("robot %s never showed order %s (orderUpdateId %d) in its state: sent %d times, %s apart",
						m.status.RobotID, m.vdaOrderID, m.orderUpdateID, m.status.OrderSends, m.ackTimeout))
					break
				}
				if err := m.sendOrder(ctx); err != nil {
					if errors.Is(ctx.Err(), workflow.ErrCanceled) {
						r, err := m.cleanupAfterCancel(ctx)
						return r, err, true
					}
					// Decided, not ended here: run() stops the robot
					// (the first send may have reached it) before release.
					m.decideFail(errType(err, ""), "resend order: "+err.Error())
					break
				}
			}
		}
		if m.outcome != "" || m.failover != "" {
			break
		}
		wait := Timings.ReconcileAfter
		left := m.deadline.Sub(workflow.Now(ctx))
		if left <= 0 {
			m.cancelSeq++
			_, _ = m.sendInstant(ctx, vda5050.ActionCancelOrder, fmt.Sprintf("%s%stimeout-cancel-%d", m.orderID, schemas.InstantActionSeparator, m.cancelSeq))
			r, err := m.fail(ctx, schemas.ErrMissionTimeout, fmt.Sprintf("mission did not finish within %s", m.deadline.Sub(m.startedAt)))
			return r, err, true
		}
		wait = min(wait, left)
		dues := []time.Time{m.cancelAct.due(), m.pauseDue()}
		if !m.orderAcked {
			dues = append(dues, m.ackDue)
		}
		if m.connLost != "" {
			dues = append(dues, m.connLostAt.Add(m.grace))
		}
		if m.orderAcked && !m.status.Paused && !atHold {
			dues = append(dues, m.progressAt.Add(Timings.StallTimeout))
		}
		if atHold {
			dues = append(dues, m.hold.arrivedAt.Add(m.hold.timeout))
		}
		signals, hold, steps := len(m.signals), m.hold, len(m.in.Spec.Steps)
		for _, due := range dues {
			if !due.IsZero() {
				wait = min(wait, max(due.Sub(workflow.Now(ctx)), time.Millisecond))
			}
		}
		cancelAct, pauseAct := m.cancelAct, m.pauseAct
		ok, err := m.wait(ctx, wait, func() bool {
			return m.outcome != "" || m.failover != "" || m.events != seen || m.replanWanted ||
				len(m.signals) != signals || m.hold != hold || len(m.in.Spec.Steps) != steps ||
				(m.cancelRequested && m.cancelAct == nil) || (!m.cancelRequested && m.pauseAct == nil && m.pauseWanted != m.pauseSentFor) ||
				(cancelAct != nil && cancelAct.outcome != controlPending) || (pauseAct != nil && pauseAct.outcome != controlPending)
		})
		if err != nil {
			r, err := m.cleanupAfterCancel(ctx)
			return r, err, true
		}
		if !ok && m.outcome == "" && m.failover == "" && m.orderAcked && workflow.Now(ctx).Before(m.deadline) {
			// Nothing heard for a while: the truth is the latest stored state.
			m.reconcile(ctx)
		}
		seen = m.events
	}
	return schemas.MissionResult{}, nil, false
}

// requeueWait is how long a queued mission waits before it asks again on
// its own: Timings.RequeueAfter at the head of the line, 200 ms more per
// place behind it, at most Timings.RequeueMax. A release wakes the missions
// it can serve at once (signal robot-available); the retry only covers a
// lost wake-up, and thousands of queued missions retrying every 30 s
// would swamp the Temporal server with workflow tasks (bench burst).
func requeueWait(position int) time.Duration {
	return min(Timings.RequeueAfter+time.Duration(max(position-1, 0))*200*time.Millisecond, Timings.RequeueMax)
}

// giveUp gives the robot up: failover to another robot while the mission
// has handovers left, else the mission fails with errType. With a cancel
// under way it neither hands over (nobody wants the mission driven on)
// nor calls the mission cancelled: the robot was lost before it confirmed
// cancelOrder, so the mission fails with errType and the cancel is
// reported as not applied (unless this very event confirmed it).
func (m *mission) giveUp(errType, reason string) {
	if m.cancelRequested {
		if m.cancelAct != nil && m.cancelAct.outcome == controlConfirmed {
			m.status.LastError = reason
			m.outcome = schemas.MissionCancelled
			return
		}
		m.cancelNotApplied = reason + ", before it confirmed cancelOrder"
		m.status.CancelNotApplied = m.cancelNotApplied
		m.decideFail(errType, reason+"; the cancel under way was not confirmed")
		return
	}
	if len(m.status.Handovers) >= Timings.MaxHandovers {
		m.decideFail(errType, fmt.Sprintf("%s (after %d handovers)", reason, len(m.status.Handovers)))
		return
	}
	m.failover, m.failoverType = reason, errType
}

// handOver takes the failed robot out of the mission and prepares the
// next pass: cancelOrder to it (where it can still hear), its reservation
// released (the registry does not hand it out again until it reports
// ONLINE, idle and without FATAL error), and the steps left. With the load
// on board (a pick done, its drop not) an operator decides first (update
// resolve), within Timings.ResolveTimeout. done is true when the mission
// ended here.
func (m *mission) handOver(ctx workflow.Context) (schemas.MissionResult, error, bool) {
	old, reason, errT := m.status.RobotID, m.failover, m.failoverType
	m.cancelSeq++
	_, _ = m.sendInstant(ctx, vda5050.ActionCancelOrder, fmt.Sprintf("%s%sfailover-cancel-%d", m.orderID, schemas.InstantActionSeparator, m.cancelSeq))
	if err := releaseRobot.retry(ctx, "release "+old, schemas.ReleaseRobotInput{
		RobotID: old, MissionID: m.in.Spec.MissionID, Site: m.in.Spec.Site,
	}, nil, storeOptions("release "+old), workflow.Now(ctx).Add(Timings.ReleaseTimeout)); err != nil {
		// No handover on a robot still held: the registry would hand the
		// same failed robot back (a mission's Reserve is idempotent).
		r, err := m.fail(ctx, errT, fmt.Sprintf("%s; no handover: the failed robot %s could not be released: %v", reason, old, err))
		return r, err, true
	}
	from := 0
	for from < len(m.stepDone) && m.stepDone[from] {
		from++
	}
	h := schemas.Handover{FromRobot: old, Reason: reason, FromStep: from, At: workflow.Now(ctx)}
	m.status.Handovers = append(m.status.Handovers, h)
	m.resetRobot(ctx)
	if from == len(m.stepDone) {
		// Every step was done before the robot failed.
		m.status.NodesDone = m.status.NodesTotal
		m.outcome = schemas.MissionCompleted
		return schemas.MissionResult{}, nil, false
	}
	if m.loadOnBoard(from) {
		m.status.ResolveBy = workflow.Now(ctx).Add(Timings.ResolveTimeout)
		m.status.LastError = fmt.Sprintf("%s with the load on board (step %d of %d done); waiting for an operator until %s: update resolve with reassign or abort",
			reason, from, len(m.stepDone), m.status.ResolveBy.UTC().Format(time.RFC3339))
		m.setState(ctx, schemas.MissionAwaitingOperator)
		ok, err := m.wait(ctx, Timings.ResolveTimeout, func() bool { return m.resolution != nil || m.cancelRequested })
		if err != nil {
			r, err := m.cleanupAfterCancel(ctx)
			return r, err, true
		}
		m.status.ResolveBy = time.Time{}
		switch {
		case m.cancelRequested:
			r, err := m.end(ctx, schemas.MissionCancelled, "", m.cancelReason())
			return r, err, true
		case !ok:
			r, err := m.fail(ctx, errT, fmt.Sprintf("%s with the load on board; no operator decision within %s", reason, Timings.ResolveTimeout))
			return r, err, true
		}
		d := m.resolution
		m.resolution = nil
		hp := &m.status.Handovers[len(m.status.Handovers)-1]
		hp.Decision, hp.DecidedBy = d.Decision, d.By
		if d.Decision == schemas.DecisionAbort {
			r, err := m.fail(ctx, errT, fmt.Sprintf("%s with the load on board; aborted by %s: %s", reason, dash(d.By), d.Reason))
			return r, err, true
		}
		if d.RestartFromStart {
			from = 0
			clear(m.stepDone)
			clear(m.waitDone) // every step again, its waits too
			hp.FromStep = 0
		}
	}
	if m.cancelRequested {
		r, err := m.end(ctx, schemas.MissionCancelled, "", m.cancelReason())
		return r, err, true
	}
	m.fromStep = from
	m.status.LastError = reason + "; handed over"
	m.setDetails(ctx)
	return schemas.MissionResult{}, nil, false
}

// loadOnBoard reports whether a pick before step from is done and a drop
// from it on is not: the failed robot carries the load.
func (m *mission) loadOnBoard(from int) bool {
	picked := false
	for i, st := range m.in.Spec.Steps {
		if i < from && st.Action == vda5050.ActionPick {
			picked = true
		}
		if i >= from && st.Action == vda5050.ActionDrop && picked {
			return true
		}
	}
	return false
}

// resetRobot forgets everything about the robot given up.
func (m *mission) resetRobot(ctx workflow.Context) {
	m.lateCancels = nil
	m.status.RobotID, m.released = "", false
	m.orderSent, m.orderAcked, m.status.OrderAcknowledged, m.status.OrderSends = false, false, false, 0
	// A new orderId: the next robot may be one that had this mission's order
	// before (it came back healthy), and a vehicle takes the same orderId as
	// an update of what it had. The part before '#' still names the
	// workflow, for the bridge.
	m.vdaOrderID = fmt.Sprintf("%s%sh%d", m.orderID, schemas.InstantActionSeparator, len(m.status.Handovers))
	m.orderUpdateID = 0
	m.cancelAct, m.pauseAct = nil, nil
	m.pauseWanted, m.pauseSentFor, m.status.Paused = false, false, false
	m.connLost, m.connLostAt, m.connLostTS, m.status.ConnectionLost = "", time.Time{}, "", ""
	m.lastErrors = m.lastErrors[:0]
	m.replanWanted = false
	m.failover, m.failoverType = "", ""
	m.status.CurrentNode = ""
	m.status.OrderUpdates, m.status.WaitingFor = 0, ""
	m.setState(ctx, schemas.MissionQueued)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// buildOrder builds the order from where the robot stands (its latest
// stored state).
func (m *mission) buildOrder(ctx workflow.Context) (schemas.MissionResult, error) {
	var built schemas.BuildOrderResult
	to, h := m.partEnd(m.fromStep)
	in := schemas.BuildOrderInput{
		Spec: m.in.Spec, RobotID: m.status.RobotID, OrderID: m.vdaOrderID, OrderUpdateID: m.orderUpdateID, FromStep: m.fromStep,
		HoldLast: h != nil && h.signal == schemas.SignalLoadReady,
	}
	if to < len(m.in.Spec.Steps) {
		in.ToStep = to
	}
	if err := buildOrder.retry(ctx, "build VDA 5050 order", in, &built, storeOptions("build VDA 5050 order"), m.deadline); err != nil {
		return m.fail(ctx, errType(err, ""), "build order: "+err.Error())
	}
	m.hold, m.partTo = h, to
	m.order = built.Order
	m.nodeIDs = built.NodeIDs
	clear(m.actionIDs)
	clear(m.actionStep)
	for i, id := range built.ActionIDs {
		m.actionIDs[id] = true
		m.actionStep[id] = m.fromStep + i // one action per step
	}
	m.status.NodesTotal = len(built.NodeIDs)
	m.status.OrderID = m.vdaOrderID
	m.status.Protocol = built.Protocol
	if len(built.NodeIDs) > 0 {
		m.lastNode = built.NodeIDs[len(built.NodeIDs)-1]
		m.status.CurrentNode = built.NodeIDs[0]
	}
	return schemas.MissionResult{}, nil
}

// sendOrder publishes the order (again) and starts the wait for the robot's
// state to show it.
func (m *mission) sendOrder(ctx workflow.Context) error {
	m.status.OrderSends++
	m.flushBeforeEdgeIO(ctx)
	err := sendOrder.io(ctx, m.robotIO, "send order to "+m.status.RobotID, schemas.SendOrderInput{
		RobotID: m.status.RobotID, Order: m.order,
	}, nil)
	m.ackDue = workflow.Now(ctx).Add(m.ackTimeout)
	return err
}

// replan builds the order again from the robot's reported position, after
// it refused the first one with noRouteError, and sends it with the next
// orderUpdateId (the refusal named the old one, so the two are told apart).
func (m *mission) replan(ctx workflow.Context) (schemas.MissionResult, error) {
	m.status.Replanned = true
	m.orderUpdateID++
	m.orderAcked, m.status.OrderAcknowledged = false, false
	m.status.OrderSends = 0
	if res, err := m.buildOrder(ctx); err != nil {
		return res, err
	}
	if err := m.sendOrder(ctx); err != nil {
		if errors.Is(ctx.Err(), workflow.ErrCanceled) {
			return m.cleanupAfterCancel(ctx)
		}
		m.decideFail(errType(err, ""), "send re-planned order: "+err.Error())
		return schemas.MissionResult{}, nil
	}
	m.setDetails(ctx)
	return schemas.MissionResult{}, nil
}

// reconcile reads the robot's latest stored state and applies it.
func (m *mission) reconcile(ctx workflow.Context) {
	var ev schemas.RobotEvent
	if err := robotSnapshot.local(ctx, "reconcile from stored robot state", schemas.RobotSnapshotInput{RobotID: m.status.RobotID}, &ev); err != nil {
		m.logger.Warn("reconcile failed", "error", err)
		return
	}
	ev.Reconciled = true
	m.apply(ctx, ev)
}

// settleControls acts on what the robot made of the pending cancel and
// pause: a confirmed cancel ends the mission (apply decides it), a refused
// or unanswered one is reported to the update that asked and the mission
// goes on; likewise pause and resume.
func (m *mission) settleControls(ctx workflow.Context, now time.Time) {
	if a := m.cancelAct; a != nil {
		if a.timedOut(now, m.status.RobotID) {
			// Unanswered is not refused: a confirmation that arrives late
			// (the bridge was down) still ends the mission as cancelled.
			m.lateCancels = append(m.lateCancels, a.id)
		}
		if a.outcome == controlRefused && m.outcome == "" {
			m.cancelRefusals[a.ticket] = a.reason
			m.cancelNotApplied = a.reason
			m.status.CancelNotApplied = a.reason
			m.cancelAct = nil
			m.cancelRequested = false
			state := schemas.MissionDriving
			if m.status.Paused {
				state = schemas.MissionPaused
			}
			m.setState(ctx, state)
		}
	}
	if a := m.pauseAct; a != nil {
		switch {
		case a.outcome == controlRefused:
		case m.status.Paused == m.pauseSentFor:
			m.pauseAct = nil // the robot's state shows it
			return
		case !now.Before(a.sentAt.Add(Timings.ConfirmTimeout)):
			a.outcome = controlRefused
			a.reason = fmt.Sprintf("robot %s did not report paused=%v within %s", m.status.RobotID, m.pauseSentFor, Timings.ConfirmTimeout)
		default:
			return
		}
		m.pauseRefusals[a.ticket] = a.reason
		m.pauseSentFor = !m.pauseSentFor
		m.pauseWanted = m.pauseSentFor
		m.pauseAct = nil
	}
}

// pauseDue is when the pending pause or resume times out (zero when none).
func (m *mission) pauseDue() time.Time {
	if m.pauseAct == nil {
		return time.Time{}
	}
	return m.pauseAct.sentAt.Add(Timings.ConfirmTimeout)
}

func (m *mission) sendInstant(ctx workflow.Context, actionType, actionID string) (schemas.SendResult, error) {
	var res schemas.SendResult
	m.flushBeforeEdgeIO(ctx)
	err := sendInstantActions.io(ctx, m.robotIO, actionType+" to "+m.status.RobotID, schemas.SendInstantActionsInput{
		RobotID: m.status.RobotID,
		Actions: []vda5050.Action{{ActionType: actionType, ActionID: actionID, BlockingType: vda5050.BlockingHard}},
		Holder:  m.in.Spec.MissionID,
	}, &res)
	return res, err
}

// holdsOrder reports whether the robot still works on this mission's order
// by ev: something left to drive, or one of its actions not ended.
func (m *mission) holdsOrder(ev schemas.RobotEvent) bool {
	if ev.OrderID != m.vdaOrderID {
		return false
	}
	if ev.NodesRemaining > 0 || ev.EdgesRemaining > 0 || ev.Driving {
		return true
	}
	for _, as := range ev.ActionStates {
		if m.actionIDs[as.ActionID] && !as.ActionStatus.Terminal() {
			return true
		}
	}
	return false
}

// apply folds one robot event into the mission's state and decides the
// outcome when the robot finished, failed or was lost.
func (m *mission) apply(ctx workflow.Context, ev schemas.RobotEvent) {
	if m.status.RobotID == "" || ev.RobotID != m.status.RobotID || m.outcome != "" || m.stopping {
		return
	}
	m.events++
	m.status.UpdatedAt = workflow.Now(ctx)
	defer func() {
		m.lastErrors = m.lastErrors[:0]
		for _, e := range ev.Errors {
			m.lastErrors = append(m.lastErrors, errorKey(e))
		}
	}()
	switch vda5050.ConnectionState(ev.Connection) {
	case vda5050.ConnectionBroken, vda5050.ConnectionOffline:
		switch {
		case m.connLost == "":
			// The robot keeps driving its released base (§4.1): wait for it
			// within the grace instead of giving it up at once.
			m.connLost, m.connLostAt, m.connLostTS = ev.Connection, workflow.Now(ctx), ev.StateTimestamp
			m.status.ConnectionLost = fmt.Sprintf("%s at %s, waiting up to %s", ev.Connection, m.connLostAt.UTC().Format(time.RFC3339), m.grace)
			m.setDetails(ctx)
		case newerState(ev.StateTimestamp, m.connLostTS):
			// Its own states keep coming: the lost connection was stale or
			// spoofed (anyone on the broker can publish one).
			m.connectionBack(ctx)
		}
	default:
		if m.connLost != "" {
			m.connectionBack(ctx)
		}
	}
	holds := m.holdsOrder(ev)
	m.cancelAct.judge(ev, holds)
	m.pauseAct.judge(ev, holds)
	if m.orderSent && ev.OrderID == m.vdaOrderID && ev.OrderUpdateID == m.orderUpdateID && !m.orderAcked {
		m.orderAcked, m.status.OrderAcknowledged = true, true
	}
	m.noteProgress(ctx, ev)
	for _, e := range ev.Errors {
		if e.ErrorLevel == vda5050.ErrorFatal {
			if m.failover == "" {
				m.giveUp(schemas.ErrRobotFatal, fmt.Sprintf("robot %s FATAL error %s: %s", ev.RobotID, e.ErrorType, e.ErrorDescription))
			}
			return
		}
		if m.orderSent && !m.orderAcked && m.refusesOrder(e) {
			if e.ErrorType == robotErrNoRoute && !m.status.Replanned && m.status.OrderUpdates == 0 {
				m.replanWanted = true
				continue
			}
			m.decideFail(schemas.ErrRobotRejectedOrder, fmt.Sprintf("robot %s rejected order %s: %s: %s", ev.RobotID, m.vdaOrderID, e.ErrorType, e.ErrorDescription))
			return
		}
	}
	cancelled := m.cancelAct != nil && m.cancelAct.outcome == controlConfirmed
	lateCancelUnderway := false
	for _, as := range ev.ActionStates {
		if !slices.Contains(m.lateCancels, as.ActionID) {
			continue
		}
		switch {
		case as.ActionStatus == vda5050.ActionFinished, as.ActionStatus == vda5050.ActionFailed && !holds:
			cancelled = true // confirmed after all, late (as controlAction.judge)
		case as.ActionStatus == vda5050.ActionFailed:
			// Refused after all, the robot still on the order: decided
			// once. (Its FAILED stays in later states; when the robot
			// later leaves the order for another reason, that stale
			// FAILED must not read as a confirmation.)
			m.lateCancels = slices.DeleteFunc(m.lateCancels, func(id string) bool { return id == as.ActionID })
		case !as.ActionStatus.Terminal():
			lateCancelUnderway = true
		}
	}
	for _, as := range ev.ActionStates {
		if m.actionIDs[as.ActionID] && as.ActionStatus == vda5050.ActionFailed && m.cancelAct == nil && !cancelled {
			if lateCancelUnderway {
				// The robot is applying a cancelOrder that went unanswered
				// in time: the order's actions fail with it, and that
				// cancelOrder's own actionState says whether it took. An
				// order action's FAILED alone proves nothing (it may have
				// failed for its own reason, the robot driving on).
				continue
			}
			m.decideFail(schemas.ErrActionFailed, fmt.Sprintf("action %s (%s) failed on robot %s: %s", as.ActionID, as.ActionType, ev.RobotID, as.ResultDescription))
			return
		}
	}
	if !m.orderSent || ev.OrderID != m.vdaOrderID {
		if cancelled {
			m.outcome = schemas.MissionCancelled
		}
		return
	}
	m.status.CurrentNode = ev.LastNodeID
	// Progress counts only when lastNodeId is the order's node at
	// lastNodeSequenceId: a vehicle may still report the previous order's
	// sequenceId right after taking a new order (seen on vda-5050-lib).
	if i := ev.LastNodeSequenceID / 2; ev.LastNodeSequenceID >= 0 && ev.LastNodeSequenceID%2 == 0 && i < len(m.nodeIDs) && m.nodeIDs[i] == ev.LastNodeID && i+1 > m.status.NodesDone {
		m.status.NodesDone = i + 1
	}
	if m.status.Paused != ev.Paused {
		m.status.Paused = ev.Paused
		if ev.Paused && m.status.State == schemas.MissionDriving {
			m.setState(ctx, schemas.MissionPaused)
		} else if !ev.Paused && m.status.State == schemas.MissionPaused {
			m.setState(ctx, schemas.MissionDriving)
		}
	}
	if ev.NodesRemaining == 0 && ev.EdgesRemaining == 0 && !ev.Driving && ev.LastNodeID == m.lastNode && ev.OrderUpdateID == m.orderUpdateID && m.actionsFinished(ev) {
		m.status.NodesDone = m.status.NodesTotal
		switch {
		case m.hold != nil:
			// The part ends with a wait for the WMS: the robot stands at
			// the station (settleHold goes on from here).
			m.arrivedAtHold(ctx)
		case m.partTo < len(m.in.Spec.Steps):
			// Appended steps are on their way as an order update.
		default:
			// Done, even if a cancel was under way: the robot finished first.
			m.outcome = schemas.MissionCompleted
			return
		}
	}
	if cancelled {
		m.outcome = schemas.MissionCancelled
		return
	}
	m.setDetails(ctx)
}

// noteProgress records the steps the robot finished and when it last made
// progress (a node passed, an action of the order changed): the stall
// detector's clock.
func (m *mission) noteProgress(ctx workflow.Context, ev schemas.RobotEvent) {
	if ev.OrderID != m.vdaOrderID {
		return
	}
	key := fmt.Sprintf("%s|%d|%d", ev.LastNodeID, ev.LastNodeSequenceID, ev.NodesRemaining)
	for _, as := range ev.ActionStates {
		if i, ok := m.actionStep[as.ActionID]; ok {
			key += "|" + string(as.ActionStatus)
			if as.ActionStatus == vda5050.ActionFinished && i < len(m.stepDone) && !m.stepDone[i] {
				m.stepDone[i] = true
				m.stepEvent(ctx, i)
			}
		}
	}
	if key != m.progressKey {
		m.progressKey, m.progressAt = key, workflow.Now(ctx)
	}
}

// connectionBack ends the wait for a lost robot.
func (m *mission) connectionBack(ctx workflow.Context) {
	m.connLost, m.connLostAt, m.connLostTS = "", time.Time{}, ""
	m.status.ConnectionLost = ""
	m.setDetails(ctx)
}

// newerState reports whether ISO 8601 timestamp a is after b (an
// unreadable one is not).
func newerState(a, b string) bool {
	ta, errA := time.Parse(time.RFC3339Nano, a)
	tb, errB := time.Parse(time.RFC3339Nano, b)
	return errA == nil && (errB != nil || ta.After(tb))
}

// refusesOrder reports whether robot error e refuses the order as last
// sent: it names the orderId, and the orderUpdateId when it names one.
func (m *mission) refusesOrder(e vda5050.Error) bool {
	if !refersTo(e, "orderId", m.vdaOrderID) {
		return false
	}
	return !hasRef(e, "orderUpdateId") || refersTo(e, "orderUpdateId", strconv.FormatUint(uint64(m.orderUpdateID), 10))
}

// completedReason says, for a mission that completed although a cancel was
// asked for, that the cancel was not applied and why.
func (m *mission) completedReason() string {
	if m.cancelNotApplied != "" {
		return "cancel not applied: " + m.cancelNotApplied
	}
	if m.cancelAct != nil {
		return "cancel not applied: the robot completed the order first"
	}
	return ""
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
	m.outcome = schemas.MissionFailed
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

// cleanupAfterCancel runs when Temporal cancels the workflow itself (Web
// UI, temporal workflow cancel): stop the robot, release it and audit, on
// a disconnected context. Like the cancel update, it calls the mission
// CANCELLED only when the robot confirmed: its cancelOrder FINISHED, or
// its stored state no longer holds the order, within
// Timings.ConfirmTimeout. Otherwise the mission ends FAILED with the
// cancel not applied (the workflow still closes as cancelled: that is
// Temporal's record of the request; the Reaper stops a robot that drives
// on).
func (m *mission) cleanupAfterCancel(ctx workflow.Context) (schemas.MissionResult, error) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	m.status.LastError = "workflow cancelled"
	if m.orderSent && m.status.RobotID != "" {
		m.stopping = true
		m.setState(dctx, schemas.MissionCancelling)
		if errT, why := m.stopAfterCancel(dctx); why != "" {
			m.cancelNotApplied, m.status.CancelNotApplied = why, why
			m.status.LastError = "workflow cancelled; " + why
			_, _ = m.end(dctx, schemas.MissionFailed, errT, m.status.LastError)
			return m.result(), temporal.NewCanceledError("workflow cancelled; " + why)
		}
	}
	_, _ = m.end(dctx, schemas.MissionCancelled, "", "workflow cancelled")
	return m.result(), temporal.NewCanceledError("workflow cancelled")
}

// stopAfterCancel sends cancelOrder and waits for the robot to confirm
// it (awaitStopped: this order shown with nothing left, or the
// cancelOrder's own answer). It returns "" when the robot confirmed, else
// the error type and why not.
func (m *mission) stopAfterCancel(ctx workflow.Context) (string, string) {
	m.cancelSeq++
	id := fmt.Sprintf("%s%swf-cancel-%d", m.orderID, schemas.InstantActionSeparator, m.cancelSeq)
	if _, err := m.sendInstant(ctx, vda5050.ActionCancelOrder, id); err != nil {
		return schemas.ErrRobotUnresponsive, fmt.Sprintf("could not send cancelOrder to robot %s: %v", m.status.RobotID, err)
	}
	return awaitStopped(ctx, m.status.RobotID, id, func(ev schemas.RobotEvent) (bool, bool) {
		return ev.OrderID == m.vdaOrderID && ev.OrderUpdateID == m.orderUpdateID, m.holdsOrder(ev)
	}, nil)
}

func (m *mission) fail(ctx workflow.Context, errType, reason string) (schemas.MissionResult, error) {
	if errors.Is(ctx.Err(), workflow.ErrCanceled) {
		// Temporal cancelled the workflow while an activity ran: that, not
		// the activity's error, is how the mission ends.
		return m.cleanupAfterCancel(ctx)
	}
	m.status.LastError = reason
	res, _ := m.end(ctx, schemas.MissionFailed, errType, reason)
	if errType == "" {
		errType = "MissionFailed"
	}
	return res, temporal.NewNonRetryableApplicationError(reason, errType, nil, res)
}

// end releases the robot (or leaves the queue), audits, notifies the WMS
// and records the final state. It runs on a disconnected context, so a
// workflow cancelled by Temporal still cleans up, and retries the release
// from the workflow for up to Timings.ReleaseTimeout: a robot stays
// reserved only if the registry is unreachable all that time (the Reaper
// frees it then).
func (m *mission) end(ctx workflow.Context, state, errType, reason string) (schemas.MissionResult, error) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	// The outcome is decided, whichever way the mission ended (m.fail on
	// a deadline or a failed send leaves m.outcome empty): the handlers
	// that wait for it (pause, resume, append) return instead of holding
	// the workflow open for ever, and no robot event that arrives while
	// the robot is released changes the final state.
	m.outcome = state
	// No timer may stay running (it would fire into a closed workflow).
	m.timer.stop()
	details := map[string]any{"state": state, "robotId": m.status.RobotID, "nodesDone": m.status.NodesDone, "nodesTotal": m.status.NodesTotal}
	if reason != "" {
		details["reason"] = reason
	}
	if errType != "" {
		details["errorType"] = errType
	}
	actor := m.in.RequestedBy
	if state == schemas.MissionCancelled && m.cancelReq.By != "" {
		actor = m.cancelReq.By
	}
	if actor == "" {
		actor = "fleetflow"
	}
	endAudit := &schemas.AuditInput{
		Actor: actor, Kind: "mission." + strings.ToLower(state), Subject: m.orderID, Details: details,
		Once: m.orderID + "/end/" + workflow.GetInfo(ctx).WorkflowExecution.RunID,
	}
	if m.status.RobotID != "" && !m.released {
		// The end's audit row goes in the release's transaction.
		if err := releaseRobot.retry(ctx, "release "+m.status.RobotID, schemas.ReleaseRobotInput{
			RobotID: m.status.RobotID, MissionID: m.in.Spec.MissionID, Site: m.in.Spec.Site, Audit: endAudit,
		}, nil, storeOptions("release "+m.status.RobotID), workflow.Now(ctx).Add(Timings.ReleaseTimeout)); err != nil {
			m.logger.Error("release robot failed; the Reaper will free it", "robot", m.status.RobotID, "error", err)
		} else {
			m.released, endAudit = true, nil
		}
	} else if m.status.RobotID == "" && m.reserveSent && !m.leftQueue {
		m.leaveQueue(ctx)
	}
	m.setState(ctx, state)
	m.metricEnded(ctx, state, errType)
	if endAudit != nil {
		if err := audit.retry(ctx, "audit", *endAudit, nil, storeOptions("audit"), workflow.Now(ctx).Add(Timings.ReleaseTimeout)); err != nil {
			m.logger.Error("audit failed", "error", err)
		}
	}
	m.flushSA(ctx)
	kind := map[string]string{schemas.MissionCompleted: schemas.WMSEventCompleted, schemas.MissionCancelled: schemas.WMSEventCancelled}[state]
	if kind == "" {
		kind = schemas.WMSEventFailed
	}
	m.emit(ctx, kind, schemas.WMSEventData{State: state, Reason: reason, ErrorType: errType})
	m.flushEvents(ctx)
	m.finished = true
	res := m.result()
	res.Reason = reason
	return res, nil
}

func (m *mission) result() schemas.MissionResult {
	return schemas.MissionResult{
		MissionID: m.status.MissionID, State: m.status.State, RobotID: m.status.RobotID,
		NodesDone: m.status.NodesDone, NodesTotal: m.status.NodesTotal, Reason: m.status.LastError,
		CancelNotApplied: m.cancelNotApplied,
		StartedAt:        m.startedAt, FinishedAt: m.status.UpdatedAt,
	}
}

func (m *mission) setState(ctx workflow.Context, state string) {
	if m.status.State == state {
		return
	}
	m.status.State = state
	m.status.UpdatedAt = workflow.Now(ctx)
	switch state {
	case schemas.MissionQueued:
		m.emit(ctx, schemas.WMSEventQueued, schemas.WMSEventData{QueuePosition: m.status.QueuePosition})
	case schemas.MissionReserved:
		m.emit(ctx, schemas.WMSEventAssigned, schemas.WMSEventData{})
	case schemas.MissionAwaitingOperator:
		m.emit(ctx, schemas.WMSEventAwaitingOperator, schemas.WMSEventData{Reason: m.status.LastError})
	}
	m.saState = &state
	m.setDetails(ctx)
}

// wait flushes the pending search attributes and waits for cond with the
// mission's one timer (waitTimer.await): ok is false when d passed first.
func (m *mission) wait(ctx workflow.Context, d time.Duration, cond func() bool) (bool, error) {
	m.flushSA(ctx)
	return m.timer.await(ctx, d, cond)
}

// flushBeforeEdgeIO flushes the pending search attributes before robot
// I/O through an edge site's queue: that activity ends the workflow task,
// and may wait in the queue for minutes while the site is cut off.
func (m *mission) flushBeforeEdgeIO(ctx workflow.Context) {
	if m.robotIO != "" {
		m.flushSA(ctx)
	}
}

// flushSA upserts the search attributes set since the last flush, in one
// command (RobotId, MissionState; the latest value of each).
func (m *mission) flushSA(ctx workflow.Context) {
	var ups []temporal.SearchAttributeUpdate
	if m.saRobot != nil {
		ups = append(ups, saRobotID.ValueSet(*m.saRobot))
	}
	if m.saState != nil {
		ups = append(ups, saMissionState.ValueSet(*m.saState))
	}
	m.saRobot, m.saState = nil, nil
	if len(ups) == 0 {
		return
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, ups...); err != nil {
		m.logger.Warn("upsert search attributes failed", "error", err)
	}
}

// setDetails writes the Web UI's "current details" line.
func (m *mission) setDetails(ctx workflow.Context) {
	s := m.status
	var b strings.Builder
	b.WriteString(fmt.Sprintf("**%s**", s.State))
	if s.RobotID != "" {
		b.WriteString(fmt.Sprintf(" · robot `%s`", s.RobotID))
	}
	if s.State == schemas.MissionQueued {
		b.WriteString(fmt.Sprintf(" · waiting for a robot (queue position %d)", s.QueuePosition))
	}
	if s.NodesTotal > 0 {
		b.WriteString(fmt.Sprintf(" · node %d/%d", s.NodesDone, s.NodesTotal))
		if s.CurrentNode != "" {
			b.WriteString(fmt.Sprintf(" (at %s)", s.CurrentNode))
		}
	}
	for _, h := range s.Handovers {
		to := h.ToRobot
		if to == "" {
			to = "next robot"
		}
		b.WriteString(fmt.Sprintf(" · handed over `%s` → `%s` from step %d (%s)", h.FromRobot, to, h.FromStep+1, h.Reason))
	}
	if s.ConnectionLost != "" {
		b.WriteString(" · connection " + s.ConnectionLost)
	}
	if s.WaitingFor != "" {
		b.WriteString(" · waiting for WMS " + s.WaitingFor)
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

// leaveQueue removes the mission's reservation request, if any.
func (m *mission) leaveQueue(ctx workflow.Context) {
	if err := cancelQueued.retry(ctx, "leave the reservation queue", schemas.CancelQueuedInput{MissionID: m.in.Spec.MissionID}, nil,
		storeOptions("leave the reservation queue"), workflow.Now(ctx).Add(Timings.ReleaseTimeout)); err != nil {
		m.logger.Error("leave queue failed; the Reaper will remove it", "error", err)
		return
	}
	m.leftQueue = true
}

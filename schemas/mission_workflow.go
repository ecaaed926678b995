package schemas

import (
	"slices"
	"time"
)

// The Mission workflow's contract (workflows.Mission): its input and
// result, its states, the status its query answers and the arguments of
// its updates and signals. The CLI, the REST ingress and internal/wms use
// these; workflows implements them.

// Mission states, as shown by the status query and the MissionState search
// attribute.
const (
	MissionValidating = "VALIDATING"
	MissionQueued     = "QUEUED"     // waiting for a free robot
	MissionReserved   = "RESERVED"   // robot reserved, order being built and sent
	MissionDriving    = "DRIVING"    // order sent, robot working
	MissionPaused     = "PAUSED"     // robot confirmed startPause
	MissionCancelling = "CANCELLING" // cancelOrder sent, waiting for the robot
	// MissionAwaitingOperator: the robot failed with the load on board; an
	// operator decides (update resolve: reassign or abort).
	MissionAwaitingOperator = "AWAITING_OPERATOR"
	MissionCompleted        = "COMPLETED"
	MissionCancelled        = "CANCELLED"
	MissionFailed           = "FAILED"
)

// MissionInput starts a Mission workflow.
type MissionInput struct {
	Spec MissionSpec `json:"spec"`
	// RequestedBy is who launched it (CLI user, WMS integration); audited.
	RequestedBy string `json:"requestedBy,omitempty"`
	// Client is the WMS client (config wms.clients) that started the
	// mission; when it has a webhook, the mission's events are POSTed to
	// it (WMSEvents). "" = nobody hears them.
	Client string `json:"client,omitempty"`
}

// MissionResult is what a finished mission returns. State is COMPLETED or
// CANCELLED; a failed mission returns an error instead, whose message is Reason.
type MissionResult struct {
	MissionID  string `json:"missionId"`
	State      string `json:"state"`
	RobotID    string `json:"robotId,omitempty"`
	NodesDone  int    `json:"nodesDone"`
	NodesTotal int    `json:"nodesTotal"`
	Reason     string `json:"reason,omitempty"`
	// CancelNotApplied is set when a cancel was asked for but the robot
	// refused it or never confirmed it, and the mission ended otherwise
	// (e.g. COMPLETED): the robot's reason.
	CancelNotApplied string    `json:"cancelNotApplied,omitempty"`
	StartedAt        time.Time `json:"startedAt"`
	FinishedAt       time.Time `json:"finishedAt"`
}

// MissionStatus answers the status query and the updates.
type MissionStatus struct {
	MissionID     string `json:"missionId"`
	Site          string `json:"site"`
	Priority      int    `json:"priority"`
	State         string `json:"state"`
	RobotID       string `json:"robotId,omitempty"`
	QueuePosition int    `json:"queuePosition,omitempty"`
	OrderID       string `json:"orderId,omitempty"`
	NodesDone     int    `json:"nodesDone"`
	NodesTotal    int    `json:"nodesTotal"`
	CurrentNode   string `json:"currentNode,omitempty"`
	Paused        bool   `json:"paused"`
	LastError     string `json:"lastError,omitempty"`
	// Protocol is how the robot is spoken to (edition, interface name,
	// instantActions dialect), from its profile.
	Protocol string `json:"protocol,omitempty"`
	// OrderSends counts how often the order went out (resent while the
	// robot's state did not show it); OrderAcknowledged once it did.
	OrderSends        int  `json:"orderSends,omitempty"`
	OrderAcknowledged bool `json:"orderAcknowledged,omitempty"`
	// Replanned is set when the robot refused the order with noRouteError
	// and it was planned again from the robot's reported position.
	Replanned bool `json:"replanned,omitempty"`
	// ConnectionLost is set while the robot's connection is lost
	// (CONNECTIONBROKEN or OFFLINE) and the mission waits for it to come
	// back: what was reported and since when.
	ConnectionLost string `json:"connectionLost,omitempty"`
	// CancelNotApplied: the robot's reason for refusing the last cancel
	// (the mission went on).
	CancelNotApplied string `json:"cancelNotApplied,omitempty"`
	// Handovers lists every time the mission gave a failed robot up and
	// went on with another one (failover).
	Handovers []Handover `json:"handovers,omitempty"`
	// ResolveBy is the deadline of the operator decision while the state
	// is AWAITING_OPERATOR.
	ResolveBy time.Time `json:"resolveBy,omitzero"`
	// WaitingFor says, while the state is AWAITING_WMS, which WMS signal
	// the robot waits for at which step, and until when.
	WaitingFor string `json:"waitingFor,omitempty"`
	// Signals lists the WMS signals used, IgnoredSignals those that named
	// another load, Skipped the waits that timed out and were skipped.
	Signals        []string `json:"signals,omitempty"`
	IgnoredSignals []string `json:"ignoredSignals,omitempty"`
	Skipped        []string `json:"skipped,omitempty"`
	// Appended lists the steps added by update append.
	Appended []string `json:"appended,omitempty"`
	// OrderUpdates counts the order updates sent to the current robot
	// (the next part of a mission that waits for the WMS, appended steps).
	OrderUpdates int       `json:"orderUpdates,omitempty"`
	StartedAt    time.Time `json:"startedAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// Handover is one failover: the robot given up, why, from which step the
// next robot goes on, and which robot that is (once reserved).
type Handover struct {
	FromRobot string    `json:"fromRobot"`
	ToRobot   string    `json:"toRobot,omitempty"`
	Reason    string    `json:"reason"`
	FromStep  int       `json:"fromStep"` // index into the spec's steps
	Decision  string    `json:"decision,omitempty"`
	DecidedBy string    `json:"decidedBy,omitempty"`
	At        time.Time `json:"at"`
}

// ResolveRequest is the argument of the resolve update: what to do with a
// mission whose robot failed with the load on board.
type ResolveRequest struct {
	// Decision is DecisionReassign (go on with another robot) or
	// DecisionAbort (end the mission as failed).
	Decision string `json:"decision"`
	// RestartFromStart, with reassign, runs every step again (the load was
	// put back at the pick station); else the next robot goes on from the
	// first unfinished step (the load was moved onto it).
	RestartFromStart bool   `json:"restartFromStart,omitempty"`
	Reason           string `json:"reason,omitempty"`
	By               string `json:"by,omitempty"`
}

// Resolve decisions.
const (
	DecisionReassign = "reassign"
	DecisionAbort    = "abort"
)

// Terminal reports whether the mission has ended.
func (s MissionStatus) Terminal() bool {
	return s.State == MissionCompleted || s.State == MissionCancelled || s.State == MissionFailed
}

// CancelRequest is the argument of the cancel update.
type CancelRequest struct {
	Reason string `json:"reason,omitempty"`
	By     string `json:"by,omitempty"`
}

// LoadSignal is the argument of the mission signals loadReady and
// loadTaken (schemas/signals/load.schema.json): the WMS says the load is
// ready at, or was taken from, the station where a step waits for it.
type LoadSignal struct {
	// LoadID names the load; when the mission names one (spec.load.loadId)
	// the two must match, else the signal is ignored (and reported in
	// status.ignoredSignals).
	LoadID string `json:"loadId,omitempty"`
	// Step, when set, is the 0-based index of the step the signal is for;
	// else it is for the next step that waits for this signal.
	Step *int `json:"step,omitempty"`
	// By names who sent it (audited in the mission's status).
	By string `json:"by,omitempty"`
}

// MissionAwaitingWMS: the robot stands at a station waiting for the WMS
// signal of a step (status.waitingFor says which).
const MissionAwaitingWMS = "AWAITING_WMS"

// AppendRequest is the argument of update append
// (schemas/updates/append.schema.json): steps added after the mission's
// last one.
type AppendRequest struct {
	Steps  []MissionStep `json:"steps"`
	Reason string        `json:"reason,omitempty"`
	By     string        `json:"by,omitempty"`
}

// ReprioritizeRequest is the argument of update reprioritize
// (schemas/updates/reprioritize.schema.json).
type ReprioritizeRequest struct {
	// Priority 0–100, higher first (as in the mission spec).
	Priority int    `json:"priority"`
	Reason   string `json:"reason,omitempty"`
	By       string `json:"by,omitempty"`
}

// AcceptRequest is the argument of update accept, sent with the start of
// the workflow (update-with-start, schemas/updates/accept.schema.json).
type AcceptRequest struct {
	Spec MissionSpec `json:"spec"`
	// Client is the WMS client asking (MissionInput.Client).
	Client string `json:"client,omitempty"`
}

// AcceptResult answers update accept.
type AcceptResult struct {
	Status MissionStatus `json:"status"`
	// Created: this request started the mission (its accept is the first,
	// in the mission's first workflow task); false for a repeated request.
	Created bool `json:"created"`
}

// SameSpec reports whether two specs ask for the same mission, ignoring
// the priority (reprioritize may have changed it). Every other field of
// MissionSpec is compared (a test fails when one is added).
func SameSpec(a, b MissionSpec) bool {
	sameLoad := (a.Load == nil) == (b.Load == nil) && (a.Load == nil || *a.Load == *b.Load)
	return a.MissionID == b.MissionID && a.Site == b.Site && slices.Equal(a.RequiredCapabilities, b.RequiredCapabilities) &&
		a.MinBattery == b.MinBattery && a.InterruptCharging == b.InterruptCharging && sameLoad && slices.Equal(a.Steps, b.Steps) &&
		a.TimeoutSeconds == b.TimeoutSeconds && a.RequestedBy == b.RequestedBy
}

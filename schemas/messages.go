package schemas

import (
	"time"

	"github.com/fleetflow/fleetflow/internal/vda5050"
)

// RobotEvent is what the bridge tells the workflow owning a robot's order
// (signal SignalRobotEvent), and what a workflow reads back when it
// reconciles from the latest stored state. It is a hint that wakes a workflow;
// the robot's latest state is the truth.
type RobotEvent struct {
	RobotID string `json:"robotId"` // "manufacturer/serialNumber"
	// Connection is ONLINE, OFFLINE or CONNECTIONBROKEN (VDA 5050 §6.14);
	// "" when the event came from a state message only.
	Connection string `json:"connection,omitempty"`
	// OrderID and OrderUpdateID as the robot last reported them.
	OrderID       string `json:"orderId"`
	OrderUpdateID uint32 `json:"orderUpdateId"`
	LastNodeID    string `json:"lastNodeId"`
	// LastNodeSequenceID counts nodes and edges (0, 2, 4 … for nodes).
	LastNodeSequenceID int  `json:"lastNodeSequenceId"`
	NodesRemaining     int  `json:"nodesRemaining"` // len(state.nodeStates)
	EdgesRemaining     int  `json:"edgesRemaining"` // len(state.edgeStates)
	Driving            bool `json:"driving"`
	Paused             bool `json:"paused"`
	// ActionStates of the order's node actions and of instant actions.
	ActionStates []vda5050.ActionState `json:"actionStates,omitempty"`
	// Errors the robot reports; FATAL ones end a mission.
	Errors        []vda5050.Error `json:"errors,omitempty"`
	BatteryCharge float64         `json:"batteryCharge"` // percent
	// SoftwareVersion is what the robot reports in state.information
	// (infoType "softwareVersion"); "" when it reports none.
	SoftwareVersion string `json:"softwareVersion,omitempty"`
	// StateTimestamp is the robot's ISO 8601 header timestamp of the state
	// this event was derived from.
	StateTimestamp string `json:"stateTimestamp,omitempty"`
	// Reconciled is true when the workflow read this from the store rather
	// than receiving it from the bridge.
	Reconciled bool `json:"reconciled,omitempty"`
}

// ReserveRobotInput asks the fleet registry for a robot (activity ReserveRobot).
type ReserveRobotInput struct {
	MissionID            string   `json:"missionId"`
	WorkflowID           string   `json:"workflowId"`
	Site                 string   `json:"site"`
	Priority             int      `json:"priority"`
	RequiredCapabilities []string `json:"requiredCapabilities,omitempty"`
	MinBattery           float64  `json:"minBattery"` // percent
	// X, Y: position of the mission's first station in metres; the nearest
	// eligible robot is chosen.
	X float64 `json:"x"`
	Y float64 `json:"y"`
	// RobotID, when set, asks for this robot only (an OTA update): the
	// request waits until it is free, capabilities and battery are not
	// checked, and no mission can take the robot while it waits first in line.
	RobotID string `json:"robotId,omitempty"`
	// InterruptCharging (MissionSpec.InterruptCharging): robots below the
	// charge threshold are eligible, and while queued the mission takes a
	// robot off its charger (SignalInterruptCharging).
	InterruptCharging bool `json:"interruptCharging,omitempty"`
}

// ReserveRobotResult is either a reservation or a place in the queue.
type ReserveRobotResult struct {
	RobotID       string `json:"robotId,omitempty"`
	Queued        bool   `json:"queued"`
	QueuePosition int    `json:"queuePosition,omitempty"` // 1 = next
	// RobotIOQueue, with a reservation, is the task queue of the robot's
	// site's edge worker, where the holder's SendOrder and
	// SendInstantActions run (config edge.sites); "" = single-site mode:
	// the holder publishes itself (local activities). Recorded in the
	// holder's history, so a replay routes as the run did.
	RobotIOQueue string `json:"robotIoQueue,omitempty"`
	// ServiceStatus, with a reservation of a named robot (RobotID set in
	// the input), is its service status when it is not in service
	// ("draining", "in_maintenance", "out_of_service"); "" when it is.
	ServiceStatus string `json:"serviceStatus,omitempty"`
}

// PlanMissionInput checks a mission against its site map (activity PlanMission).
type PlanMissionInput struct {
	Spec MissionSpec `json:"spec"`
	// Client is the WMS client that started the mission ("" = none).
	Client string `json:"client,omitempty"`
}

// PlanMissionResult gives where the mission starts, and the workers'
// robot-protocol settings the mission follows (recorded in its history, so
// a replay sees the values the mission ran with).
type PlanMissionResult struct {
	FirstStationNode string  `json:"firstStationNode"`
	X                float64 `json:"x"` // metres
	Y                float64 `json:"y"` // metres
	// OrderAckTimeout: how long to wait for the robot's state to show a
	// sent order before sending it again; OrderResends: how often (config
	// robots.orderAckTimeout, robots.orderResends). Zero = the workflow's
	// defaults.
	OrderAckTimeout time.Duration `json:"orderAckTimeout,omitempty"`
	OrderResends    int           `json:"orderResends,omitempty"`
	// ConnectionGrace: how long a lost robot may take to come back
	// (config robots.connectionGrace); zero = the workflow's default.
	ConnectionGrace time.Duration `json:"connectionGrace,omitempty"`
	// Webhook: the mission's WMS client has a webhook; the mission sends
	// it its events (WMSEvents), each retried for WebhookDeliveryTimeout
	// (config wms.deliveryTimeout).
	Webhook                bool          `json:"webhook,omitempty"`
	WebhookDeliveryTimeout time.Duration `json:"webhookDeliveryTimeout,omitempty"`
}

// BuildOrderInput asks for the VDA 5050 order that drives RobotID from where
// it stands through the mission's steps (activity BuildOrder).
type BuildOrderInput struct {
	Spec          MissionSpec `json:"spec"`
	RobotID       string      `json:"robotId"`
	OrderID       string      `json:"orderId"`
	OrderUpdateID uint32      `json:"orderUpdateId"`
	// FromStep drives only spec.Steps[FromStep:] (a mission handed over to
	// another robot); action ids keep the mission's step numbers.
	FromStep int `json:"fromStep,omitempty"`
	// StitchNode, when set, builds an order update that extends the
	// robot's current order: it starts at StitchNode, the order's last base
	// node, with its sequenceId StitchSequenceID (VDA 5050 §6.6.2), and
	// drives spec.Steps[FromStep:] (steps appended to the mission).
	StitchNode       string `json:"stitchNode,omitempty"`
	StitchSequenceID int    `json:"stitchSequenceId,omitempty"`
	// ToStep, when not 0, ends the order at spec.Steps[ToStep-1] (a part
	// of the mission up to a step that waits for a WMS signal); HoldLast
	// leaves that step's action out (it waits for loadReady before it).
	ToStep   int  `json:"toStep,omitempty"`
	HoldLast bool `json:"holdLast,omitempty"`
}

// BuildOrderResult carries the order and a summary for status.
type BuildOrderResult struct {
	Order     vda5050.Order `json:"order"`
	NodeIDs   []string      `json:"nodeIds"`
	ActionIDs []string      `json:"actionIds"` // node actions, in order
	Distance  float64       `json:"distance"`  // metres along the route
	// StartNode is where the robot stood by its stored state, and
	// StartOffset how far from it (metres; > 0.5 when it was stopped
	// between nodes).
	StartNode   string  `json:"startNode,omitempty"`
	StartOffset float64 `json:"startOffset,omitempty"`
	// Protocol is how the robot is spoken to (vda5050.Profile.String,
	// e.g. "2.0.0 uagv actions/both").
	Protocol string `json:"protocol,omitempty"`
}

// SendOrderInput publishes an order to a robot (activity SendOrder).
type SendOrderInput struct {
	RobotID string        `json:"robotId"`
	Order   vda5050.Order `json:"order"`
}

// SendResult says what went out to the robot (activities SendOrder and
// SendInstantActions): the MQTT topic and the message's headerId, which a
// vehicle's error names in its errorReferences (topic, headerId) when it
// refuses the message.
type SendResult struct {
	Topic    string `json:"topic"`
	HeaderID uint32 `json:"headerId"`
}

// SendInstantActionsInput publishes instant actions (activity SendInstantActions).
//
// Holder is the reservation holder the actions go out for (a mission ID,
// or the workflow ID of a RobotUpdate or Maintenance). When set, nothing is
// published unless the fleet registry shows Holder holding RobotID's
// reservation: cancelOrder, startPause and stopPause name no order (VDA
// 5050 §6.8), so one that arrived after the robot was released, say from a
// local activity run again when its workflow task is retried after a
// worker or server crash, would stop the next mission's order.
type SendInstantActionsInput struct {
	RobotID string           `json:"robotId"`
	Actions []vda5050.Action `json:"actions"`
	Holder  string           `json:"holder,omitempty"`
}

// RobotSnapshotInput reads the latest stored state (activity RobotSnapshot).
type RobotSnapshotInput struct {
	RobotID string `json:"robotId"`
}

// ReleaseRobotInput ends a reservation (activity ReleaseRobot); it is a
// no-op when MissionID does not hold RobotID. Queued missions of the site
// are signalled that a robot may be free.
type ReleaseRobotInput struct {
	RobotID   string `json:"robotId"`
	MissionID string `json:"missionId"`
	Site      string `json:"site"`
	// Audit, when set, is written in the release's transaction (a
	// mission's end row; set Once so that a retried release writes it
	// once).
	Audit *AuditInput `json:"audit,omitempty"`
}

// CancelQueuedInput removes a mission from the reservation queue.
type CancelQueuedInput struct {
	MissionID string `json:"missionId"`
}

// AuditInput writes one audit row (activity Audit).
type AuditInput struct {
	Actor   string         `json:"actor"`
	Kind    string         `json:"kind"`
	Subject string         `json:"subject"`
	Details map[string]any `json:"details,omitempty"`
	// Once, when set, writes the row only once for this key however often
	// the activity runs (e.g. "mission-m-1/end").
	Once string `json:"once,omitempty"`
}

// SweepLeasesInput asks the Reaper's activity to free what closed
// workflows still hold (activity SweepLeases).
type SweepLeasesInput struct {
	// MinAge skips leases younger than this (they belong to workflows that
	// just took them); zero means one minute.
	MinAge time.Duration `json:"minAge,omitempty"`
}

// FreedLease is one lease the Reaper freed.
type FreedLease struct {
	Kind       string `json:"kind"` // reservation or queue
	MissionID  string `json:"missionId"`
	WorkflowID string `json:"workflowId"`
	RobotID    string `json:"robotId,omitempty"`
	// WorkflowStatus is what Temporal says of the holder: COMPLETED,
	// FAILED, TERMINATED, …, or NOT_FOUND.
	WorkflowStatus string `json:"workflowStatus"`
	// OrderCancelled: the robot still worked on the closed workflow's
	// order, and was sent cancelOrder.
	OrderCancelled bool   `json:"orderCancelled,omitempty"`
	Site           string `json:"site,omitempty"`
	// HeldSince is when the lease was taken (audited).
	HeldSince time.Time `json:"heldSince,omitzero"`
	// RobotIOQueue, in SweepLeasesResult.EdgeStops, is the robot's edge
	// site's robot I/O queue the cancelOrder goes through.
	RobotIOQueue string `json:"robotIoQueue,omitempty"`
}

// SweepLeasesResult says what was checked and freed.
type SweepLeasesResult struct {
	Checked int          `json:"checked"`
	Freed   []FreedLease `json:"freed,omitempty"`
	// EdgeStops are reservations at edge sites whose robot still works on
	// the closed holder's order: not freed yet. The Reaper workflow sends
	// each robot cancelOrder through its site's queue, then frees the
	// lease (activity FreeLease); they join Freed in its result.
	EdgeStops []FreedLease `json:"edgeStops,omitempty"`
	// ChargesStarted: Charge workflows started (or joined) for idle robots
	// below the charge threshold.
	ChargesStarted int `json:"chargesStarted,omitempty"`
	// MaintenancesStarted: condition-based maintenances started.
	MaintenancesStarted int `json:"maintenancesStarted,omitempty"`
	// OrphansStopped are the robots, reserved by nobody, that were sent
	// cancelOrder because they still worked on the order of a closed
	// workflow ("robotId orderId").
	OrphansStopped []string `json:"orphansStopped,omitempty"`
}

// SetServiceStatusInput sets a robot's service status (in_service,
// draining, in_maintenance, out_of_service; activities/store).
type SetServiceStatusInput struct {
	RobotID string `json:"robotId"`
	Status  string `json:"status"`
	Actor   string `json:"actor"` // audited
	Reason  string `json:"reason,omitempty"`
	// Serviced: the robot was serviced (a maintenance passed); its
	// condition counters start a new epoch (store.MarkServiced).
	Serviced bool `json:"serviced,omitempty"`
}

// SetServiceStatusResult says what the status was before.
type SetServiceStatusResult struct {
	Before string `json:"before"`
}

// Package vda5050 holds the Go types, MQTT topics, header counters and JSON
// Schema validation of the VDA 5050 protocol that fleetflow speaks with
// robots, in the editions real fleets mix (1.1, 2.0, 2.1): vehicle profiles
// (edition, interface name, message dialect), strict encoding in each
// robot's own dialect, and tolerant but exact intake of what vehicles send
// (DecodeState). It is pure protocol: no MQTT client, no database, no
// workflow code.
//
// Field names and enumerations follow the official VDA 5050 JSON schemas,
// embedded byte for byte under schema/ (schema/README.md names their
// source); the section numbers in comments refer to the VDA 5050 2.0 text.
package vda5050

import "encoding/json"

// Version is the default profile's protocol version (Profile{}): what
// fleetflow writes in the headers of a robot whose profile names none.
const Version = "2.0.0"

// MajorVersion is the default profile's topic interface-version level
// ("v2"), VDA 5050 §6.1.
const MajorVersion = "v2"

// BlockingType says whether an action blocks driving or other actions (§6.6.2).
type BlockingType string

const (
	BlockingNone BlockingType = "NONE"
	BlockingSoft BlockingType = "SOFT"
	BlockingHard BlockingType = "HARD"
)

// Header is the common header of every VDA 5050 message (§6.2).
// HeaderID counts up per topic and sender; Timestamp is ISO 8601 UTC
// ("2006-01-02T15:04:05.000Z").
type Header struct {
	HeaderID     uint32 `json:"headerId"`
	Timestamp    string `json:"timestamp"`
	Version      string `json:"version"`
	Manufacturer string `json:"manufacturer"`
	SerialNumber string `json:"serialNumber"`
}

// ActionParameter is a key/value pair; Value is a string, number, bool or array.
type ActionParameter struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// Action is a node, edge or instant action (§6.6.2 and §6.9).
// ActionType is the action's name, e.g. "pick", "drop", "cancelOrder".
type Action struct {
	ActionType        string            `json:"actionType"`
	ActionID          string            `json:"actionId"`
	ActionDescription string            `json:"actionDescription,omitempty"`
	BlockingType      BlockingType      `json:"blockingType"`
	ActionParameters  []ActionParameter `json:"actionParameters,omitempty"`
}

// Param returns the value of the parameter key and whether it was present.
func (a Action) Param(key string) (any, bool) {
	for _, p := range a.ActionParameters {
		if p.Key == key {
			return p.Value, true
		}
	}
	return nil, false
}

// NodePosition is a node's position on the map in metres and radians (§6.6.3).
type NodePosition struct {
	X                     float64  `json:"x"`
	Y                     float64  `json:"y"`
	Theta                 *float64 `json:"theta,omitempty"`
	AllowedDeviationXY    *float64 `json:"allowedDeviationXy,omitempty"`
	AllowedDeviationTheta *float64 `json:"allowedDeviationTheta,omitempty"`
	MapID                 string   `json:"mapId"`
	MapDescription        string   `json:"mapDescription,omitempty"`
}

// Node is an order node. SequenceID is even for nodes (0, 2, 4, …) because
// nodes and edges share one sequence (§6.6.1).
type Node struct {
	NodeID          string        `json:"nodeId"`
	SequenceID      int           `json:"sequenceId"`
	NodeDescription string        `json:"nodeDescription,omitempty"`
	Released        bool          `json:"released"`
	NodePosition    *NodePosition `json:"nodePosition,omitempty"`
	Actions         []Action      `json:"actions"`
}

// Edge connects two consecutive nodes; SequenceID is odd (§6.6.1).
// MaxSpeed is in m/s, Length in metres.
type Edge struct {
	EdgeID          string   `json:"edgeId"`
	SequenceID      int      `json:"sequenceId"`
	EdgeDescription string   `json:"edgeDescription,omitempty"`
	Released        bool     `json:"released"`
	StartNodeID     string   `json:"startNodeId"`
	EndNodeID       string   `json:"endNodeId"`
	MaxSpeed        *float64 `json:"maxSpeed,omitempty"`
	Length          *float64 `json:"length,omitempty"`
	Actions         []Action `json:"actions"`
}

// Order is sent to uagv/v2/{manufacturer}/{serial}/order (§6.6).
type Order struct {
	Header
	OrderID       string `json:"orderId"`
	OrderUpdateID uint32 `json:"orderUpdateId"`
	ZoneSetID     string `json:"zoneSetId,omitempty"`
	Nodes         []Node `json:"nodes"`
	Edges         []Edge `json:"edges"`
}

// InstantActions is sent to …/instantActions (§6.7).
//
// The official 2.0.0 instantActions schema names an action's type
// "actionName", while the 2.0 text and the 2.1 schema say "actionType".
// fleetflow writes both (the schema allows extra properties), so a vehicle
// built to either reads it, and reads whichever it gets.
type InstantActions struct {
	Header
	Actions []Action `json:"actions"`
}

type instantAction struct {
	Action
	ActionName string `json:"actionName"`
}

type instantActionsWire struct {
	Header
	Actions []instantAction `json:"actions"`
}

// MarshalJSON writes each action with both actionType and actionName.
func (ia InstantActions) MarshalJSON() ([]byte, error) {
	w := instantActionsWire{Header: ia.Header, Actions: make([]instantAction, len(ia.Actions))}
	for i, a := range ia.Actions {
		w.Actions[i] = instantAction{Action: a, ActionName: a.ActionType}
	}
	return json.Marshal(w)
}

// UnmarshalJSON accepts actionType or actionName.
func (ia *InstantActions) UnmarshalJSON(raw []byte) error {
	var w instantActionsWire
	if err := json.Unmarshal(raw, &w); err != nil {
		return err
	}
	ia.Header = w.Header
	ia.Actions = make([]Action, len(w.Actions))
	for i, a := range w.Actions {
		ia.Actions[i] = a.Action
		if ia.Actions[i].ActionType == "" {
			ia.Actions[i].ActionType = a.ActionName
		}
	}
	return nil
}

// ActionStatus is the lifecycle of an action (§6.10.6). PAUSED is allowed by
// the text but missing from the 2.0/2.1 schema enum; fleetflow accepts it.
type ActionStatus string

const (
	ActionWaiting      ActionStatus = "WAITING"
	ActionInitializing ActionStatus = "INITIALIZING"
	ActionRunning      ActionStatus = "RUNNING"
	ActionPaused       ActionStatus = "PAUSED"
	ActionFinished     ActionStatus = "FINISHED"
	ActionFailed       ActionStatus = "FAILED"
)

// Terminal reports whether no further status change will follow.
func (s ActionStatus) Terminal() bool { return s == ActionFinished || s == ActionFailed }

// NodeState is a node the robot still has to traverse (§6.10.4).
type NodeState struct {
	NodeID          string             `json:"nodeId"`
	SequenceID      int                `json:"sequenceId"`
	NodeDescription string             `json:"nodeDescription,omitempty"`
	NodePosition    *StateNodePosition `json:"nodePosition,omitempty"`
	Released        bool               `json:"released"`
}

// StateNodePosition is NodePosition as the state message carries it. The
// 2.0.0 and 2.1.0 state schemas require theta; vehicles that echo their
// order's nodePosition leave it out where the order did (a known,
// tolerated deviation, see DecodeState), so it is a pointer here.
type StateNodePosition struct {
	X     float64  `json:"x"`
	Y     float64  `json:"y"`
	Theta *float64 `json:"theta,omitempty"`
	MapID string   `json:"mapId"`
}

// EdgeState is an edge the robot still has to traverse.
type EdgeState struct {
	EdgeID          string `json:"edgeId"`
	SequenceID      int    `json:"sequenceId"`
	EdgeDescription string `json:"edgeDescription,omitempty"`
	Released        bool   `json:"released"`
}

// AGVPosition is the robot's pose in metres and radians (§6.10.3).
type AGVPosition struct {
	X                   float64 `json:"x"`
	Y                   float64 `json:"y"`
	Theta               float64 `json:"theta"`
	MapID               string  `json:"mapId"`
	PositionInitialized bool    `json:"positionInitialized"`
}

// ActionState reports one action's status (§6.10.6).
type ActionState struct {
	ActionID          string       `json:"actionId"`
	ActionType        string       `json:"actionType,omitempty"`
	ActionDescription string       `json:"actionDescription,omitempty"`
	ActionStatus      ActionStatus `json:"actionStatus"`
	ResultDescription string       `json:"resultDescription,omitempty"`
}

// BatteryState: BatteryCharge in percent (0–100).
type BatteryState struct {
	BatteryCharge float64 `json:"batteryCharge"`
	Charging      bool    `json:"charging"`
	// BatteryHealth is the battery's state of health in percent
	// (optional, an integer in the schema); nil when not reported.
	BatteryHealth *float64 `json:"batteryHealth,omitempty"`
}

// ErrorLevel of a robot error (§6.10.7).
type ErrorLevel string

const (
	ErrorWarning ErrorLevel = "WARNING"
	ErrorFatal   ErrorLevel = "FATAL"
)

// Reference is a key/value reference of an error or info.
type Reference struct {
	ReferenceKey   string `json:"referenceKey"`
	ReferenceValue string `json:"referenceValue"`
}

// Error is a robot error, e.g. errorType "orderUpdateError", "validationError",
// "noRouteError" or "orderError" (§6.10.7).
type Error struct {
	ErrorType        string      `json:"errorType"`
	ErrorReferences  []Reference `json:"errorReferences,omitempty"`
	ErrorDescription string      `json:"errorDescription,omitempty"`
	ErrorLevel       ErrorLevel  `json:"errorLevel"`
}

// Info is a robot information entry (§6.10.8).
type Info struct {
	InfoType        string      `json:"infoType"`
	InfoReferences  []Reference `json:"infoReferences,omitempty"`
	InfoDescription string      `json:"infoDescription,omitempty"`
	InfoLevel       string      `json:"infoLevel"`
}

// SafetyState (§6.10.9): EStop is AUTOACK, MANUAL, REMOTE or NONE.
type SafetyState struct {
	EStop          string `json:"eStop"`
	FieldViolation bool   `json:"fieldViolation"`
}

// State is published by the robot on …/state on every change and at least
// every 30 s (§6.10).
type State struct {
	Header
	OrderID            string        `json:"orderId"`
	OrderUpdateID      uint32        `json:"orderUpdateId"`
	ZoneSetID          string        `json:"zoneSetId,omitempty"`
	LastNodeID         string        `json:"lastNodeId"`
	LastNodeSequenceID int           `json:"lastNodeSequenceId"`
	Driving            bool          `json:"driving"`
	Paused             *bool         `json:"paused,omitempty"`
	NewBaseRequest     *bool         `json:"newBaseRequest,omitempty"`
	NodeStates         []NodeState   `json:"nodeStates"`
	EdgeStates         []EdgeState   `json:"edgeStates"`
	AGVPosition        *AGVPosition  `json:"agvPosition,omitempty"`
	ActionStates       []ActionState `json:"actionStates"`
	BatteryState       BatteryState  `json:"batteryState"`
	OperatingMode      string        `json:"operatingMode"`
	Errors             []Error       `json:"errors"`
	Information        []Info        `json:"information,omitempty"`
	SafetyState        SafetyState   `json:"safetyState"`
}

// FatalError returns the first FATAL error, or nil.
func (s *State) FatalError() *Error {
	for i := range s.Errors {
		if s.Errors[i].ErrorLevel == ErrorFatal {
			return &s.Errors[i]
		}
	}
	return nil
}

// ActionState returns the state of actionID, or nil.
func (s *State) ActionStateOf(actionID string) *ActionState {
	for i := range s.ActionStates {
		if s.ActionStates[i].ActionID == actionID {
			return &s.ActionStates[i]
		}
	}
	return nil
}

// ConnectionState is the robot's connection (§6.14).
type ConnectionState string

const (
	ConnectionOnline  ConnectionState = "ONLINE"
	ConnectionOffline ConnectionState = "OFFLINE"
	ConnectionBroken  ConnectionState = "CONNECTIONBROKEN"
)

// Connection is published retained with QoS 1 on …/connection; the robot sets
// CONNECTIONBROKEN as its last will (§6.14).
type Connection struct {
	Header
	ConnectionState ConnectionState `json:"connectionState"`
}

// Predefined action types used by fleetflow (§6.8).
const (
	ActionPick             = "pick"
	ActionDrop             = "drop"
	ActionCancelOrder      = "cancelOrder"
	ActionStartPause       = "startPause"
	ActionStopPause        = "stopPause"
	ActionStateRequest     = "stateRequest"
	ActionFactsheetRequest = "factsheetRequest"
	ActionStartCharging    = "startCharging"
	ActionStopCharging     = "stopCharging"
	ActionInitPosition     = "initPosition"
)

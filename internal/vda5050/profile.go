package vda5050

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Dialect values of a Profile.
const (
	// KeyActions and KeyInstantActions name the array of an instantActions
	// message: "actions" in the 2.0.0 and 2.1.0 schemas, "instantActions" in
	// 1.1.0 — and in some 2.0 implementations.
	KeyActions        = "actions"
	KeyInstantActions = "instantActions"

	// ActionTypeKey values: which property carries an instant action's type.
	// The 2.0.0 instantActions schema requires "actionName", the 2.0 text and
	// the 2.1.0 schema say "actionType"; "both" writes both.
	ActionKeyType = "actionType"
	ActionKeyName = "actionName"
	ActionKeyBoth = "both"
)

// Order fields a vehicle may insist on although the schemas make them
// optional (Profile.Require). fleetflow fills them by the rules documented
// in site.Map.BuildOrder.
const (
	RequireNodeTheta          = "nodePosition.theta"
	RequireAllowedDeviationXY = "nodePosition.allowedDeviationXy"
	RequireAllowedDevTheta    = "nodePosition.allowedDeviationTheta"
)

var knownRequire = []string{RequireNodeTheta, RequireAllowedDeviationXY, RequireAllowedDevTheta}

// Profile is how one vehicle (or one manufacturer/model) speaks VDA 5050:
// its edition, its topics' first level, and the dialect of the messages it
// reads. fleetflow writes exactly that dialect and nothing the vehicle's own
// edition's official schema refuses (Validate checks it), and reads the
// vehicle's messages tolerantly (DecodeState).
//
// The zero value is the default profile: VDA 5050 2.0.0 on "uagv", the
// instantActions array under "actions" with both actionType and actionName.
type Profile struct {
	// Version is the edition: "1.1.0", "2.0.0", "2.1.0" (or "1.1", "2.0",
	// "2.1"). "" = 2.0.0. "auto" = the version the vehicle writes in its own
	// headers (factsheet, state), 2.0.0 until it has written one.
	Version string `yaml:"version" json:"version,omitempty"`
	// InterfaceName is the first topic level (§6.1), default "uagv".
	InterfaceName string `yaml:"interfaceName" json:"interfaceName,omitempty"`
	// InstantActionsKey is "actions" or "instantActions" (default: the
	// edition's schema: instantActions for 1.1, actions for 2.x).
	InstantActionsKey string `yaml:"instantActionsKey" json:"instantActionsKey,omitempty"`
	// ActionTypeKey is "actionType", "actionName" or "both" (default: both
	// for 1.1 and 2.0, whose schemas and texts disagree; actionType for 2.1).
	ActionTypeKey string `yaml:"actionTypeKey" json:"actionTypeKey,omitempty"`
	// Require lists optional order fields the vehicle needs
	// (nodePosition.theta, nodePosition.allowedDeviationXy,
	// nodePosition.allowedDeviationTheta).
	Require []string `yaml:"require" json:"require,omitempty"`
}

// VersionAuto asks for the version the vehicle writes in its own headers.
const VersionAuto = "auto"

// Edition returns the profile's edition (2.0.0 for "" and "auto"; see
// Resolve for auto). An unknown version returns 2.0.0; Validate reports it.
func (p Profile) Edition() Edition {
	if p.Version == "" || p.Version == VersionAuto {
		return Edition20
	}
	e, err := ParseEdition(p.Version)
	if err != nil {
		return Edition20
	}
	return e
}

// Auto reports whether the edition is taken from the vehicle's headers.
func (p Profile) Auto() bool { return p.Version == VersionAuto }

// Resolve fills every default, so the profile states exactly what is sent.
// For an auto profile, seen is the version the vehicle last wrote ("" =
// none yet).
func (p Profile) Resolve(seen string) Profile {
	e := p.Edition()
	if p.Auto() && seen != "" {
		if se, err := ParseEdition(seen); err == nil {
			e = se
		}
	}
	p.Version = string(e)
	if p.InterfaceName == "" {
		p.InterfaceName = InterfaceName
	}
	if p.InstantActionsKey == "" {
		p.InstantActionsKey = KeyActions
		if e == Edition11 {
			p.InstantActionsKey = KeyInstantActions
		}
	}
	if p.ActionTypeKey == "" {
		p.ActionTypeKey = ActionKeyBoth
		if e == Edition21 {
			p.ActionTypeKey = ActionKeyType
		}
	}
	return p
}

// String is a short form for logs and the CLI: "2.0.0 uagv actions/both".
func (p Profile) String() string {
	r := p.Resolve("")
	s := fmt.Sprintf("%s %s %s/%s", r.Version, r.InterfaceName, r.InstantActionsKey, r.ActionTypeKey)
	if p.Auto() {
		s = "auto(" + s + ")"
	}
	if len(p.Require) > 0 {
		s += " require " + strings.Join(p.Require, ",")
	}
	return s
}

// Validate checks the profile's values and then that what fleetflow would
// send under it — an order and an instantActions message — passes the
// official schema of the profile's own edition (a dialect that breaks its
// own edition's schema is a configuration error, not something to send).
func (p Profile) Validate() error {
	var problems []string
	if p.Version != "" && p.Version != VersionAuto {
		if _, err := ParseEdition(p.Version); err != nil {
			problems = append(problems, "version: "+err.Error())
		}
	}
	if p.InterfaceName != "" && !serialPattern.MatchString(p.InterfaceName) {
		problems = append(problems, fmt.Sprintf("interfaceName %q: only A-Z a-z 0-9 _ . : - are allowed in a topic level (§6.1)", p.InterfaceName))
	}
	switch p.InstantActionsKey {
	case "", KeyActions, KeyInstantActions:
	default:
		problems = append(problems, fmt.Sprintf("instantActionsKey %q: want %q or %q", p.InstantActionsKey, KeyActions, KeyInstantActions))
	}
	switch p.ActionTypeKey {
	case "", ActionKeyType, ActionKeyName, ActionKeyBoth:
	default:
		problems = append(problems, fmt.Sprintf("actionTypeKey %q: want %q, %q or %q", p.ActionTypeKey, ActionKeyType, ActionKeyName, ActionKeyBoth))
	}
	for _, r := range p.Require {
		if !slices.Contains(knownRequire, r) {
			problems = append(problems, fmt.Sprintf("require %q: fleetflow can fill %s", r, strings.Join(knownRequire, ", ")))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	// What would be sent must pass the edition's schema.
	editions := []Edition{p.Edition()}
	if p.Auto() {
		editions = Editions
	}
	for _, e := range editions {
		q := p
		q.Version = string(e)
		k := RobotKey{"probe", "probe"}
		h := Header{Timestamp: "2026-01-01T00:00:00.000Z", Manufacturer: k.Manufacturer, SerialNumber: k.SerialNumber}
		if _, err := q.EncodeInstantActions(InstantActions{Header: h, Actions: []Action{{
			ActionType: ActionCancelOrder, ActionID: "probe", BlockingType: BlockingHard,
		}}}); err != nil {
			return fmt.Errorf("instantActions in this dialect break the VDA 5050 %s schema: %w", e, err)
		}
		x, th := 1.0, 0.5
		if _, err := q.EncodeOrder(Order{Header: h, OrderID: "probe", Nodes: []Node{
			{NodeID: "a", SequenceID: 0, Released: true, NodePosition: &NodePosition{X: 0, Y: 0, MapID: "m"}, Actions: []Action{}},
			{NodeID: "b", SequenceID: 2, Released: true, NodePosition: &NodePosition{X: x, Y: 0, Theta: &th, MapID: "m"}, Actions: []Action{{
				ActionType: ActionPick, ActionID: "p", BlockingType: BlockingHard, ActionParameters: []ActionParameter{{Key: "loadId", Value: "L"}},
			}}},
		}, Edges: []Edge{{EdgeID: "a-b", SequenceID: 1, Released: true, StartNodeID: "a", EndNodeID: "b", Length: &x, Actions: []Action{}}}}); err != nil {
			return fmt.Errorf("orders break the VDA 5050 %s schema: %w", e, err)
		}
	}
	return nil
}

// Requires reports whether the vehicle needs the optional order field f.
func (p Profile) Requires(f string) bool { return slices.Contains(p.Require, f) }

// Topic builds {interfaceName}/{major}/{manufacturer}/{serialNumber}/{topic}
// for the profile's edition (§6.1).
func (p Profile) Topic(k RobotKey, t Topic) string {
	r := p.Resolve("")
	return r.InterfaceName + "/" + r.Edition().Major() + "/" + k.Manufacturer + "/" + k.SerialNumber + "/" + string(t)
}

// Subscription is the wildcard filter for topic t of every robot that
// speaks this profile's interface name and major version.
func (p Profile) Subscription(t Topic) string {
	r := p.Resolve("")
	return r.InterfaceName + "/" + r.Edition().Major() + "/+/+/" + string(t)
}

// EncodeOrder writes the order in the profile's edition — header version
// set to it; in 1.1 an edge's length is called "distance" — and validates
// it against that edition's official order schema.
func (p Profile) EncodeOrder(o Order) ([]byte, error) {
	r := p.Resolve("")
	o.Version = r.Version
	if r.Edition() != Edition11 {
		return encodeIn(r.Edition(), TopicOrder, o)
	}
	raw, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if edges, ok := m["edges"].([]any); ok {
		for _, e := range edges {
			if em, ok := e.(map[string]any); ok {
				if l, ok := em["length"]; ok {
					delete(em, "length")
					em["distance"] = l
				}
			}
		}
	}
	return encodeIn(r.Edition(), TopicOrder, m)
}

// EncodeInstantActions writes ia in the profile's dialect — the array under
// its InstantActionsKey, each action's type under its ActionTypeKey — and
// validates it against the edition's official instantActions schema.
func (p Profile) EncodeInstantActions(ia InstantActions) ([]byte, error) {
	r := p.Resolve("")
	ia.Version = r.Version
	actions := make([]map[string]any, len(ia.Actions))
	for i, a := range ia.Actions {
		m := map[string]any{"actionId": a.ActionID, "blockingType": a.BlockingType}
		switch r.ActionTypeKey {
		case ActionKeyType:
			m["actionType"] = a.ActionType
		case ActionKeyName:
			m["actionName"] = a.ActionType
		default:
			m["actionType"], m["actionName"] = a.ActionType, a.ActionType
		}
		if a.ActionDescription != "" {
			m["actionDescription"] = a.ActionDescription
		}
		if len(a.ActionParameters) > 0 {
			m["actionParameters"] = a.ActionParameters
		}
		actions[i] = m
	}
	msg := map[string]any{
		"headerId": ia.HeaderID, "timestamp": ia.Timestamp, "version": ia.Version,
		"manufacturer": ia.Manufacturer, "serialNumber": ia.SerialNumber,
		r.InstantActionsKey: actions,
	}
	return encodeIn(r.Edition(), TopicInstantActions, msg)
}

// Encode marshals a message the vehicle side writes (state, connection,
// factsheet, visualization) and validates it against the profile's
// edition's schema; the caller sets the header's version (Resolve). A 1.1
// state spells actionStatus and eStop in lower case, as 1.1.0's schema does.
func (p Profile) Encode(t Topic, msg any) ([]byte, error) {
	e := p.Resolve("").Edition()
	if e != Edition11 || t != TopicState {
		return encodeIn(e, t, msg)
	}
	raw, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if as, ok := m["actionStates"].([]any); ok {
		for _, a := range as {
			if am, ok := a.(map[string]any); ok {
				if s, ok := am["actionStatus"].(string); ok {
					am["actionStatus"] = strings.ToLower(s)
				}
			}
		}
	}
	if ss, ok := m["safetyState"].(map[string]any); ok {
		if s, ok := ss["eStop"].(string); ok {
			ss["eStop"] = map[string]string{"AUTOACK": "autoAck", "MANUAL": "manual", "REMOTE": "remote", "NONE": "none"}[s]
		}
	}
	return encodeIn(e, t, m)
}

func encodeIn(e Edition, t Topic, msg any) ([]byte, error) {
	raw, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	if err := ValidateEdition(e, t, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// DecodeOrder reads an order as a vehicle of this profile does: valid
// against its edition's schema (1.1's "distance" read as length).
func (p Profile) DecodeOrder(raw []byte) (Order, error) {
	r := p.Resolve("")
	var o Order
	if err := ValidateEdition(r.Edition(), TopicOrder, raw); err != nil {
		return o, err
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return o, &MessageError{Topic: TopicOrder, Reason: err.Error()}
	}
	if r.Edition() == Edition11 {
		var d struct {
			Edges []struct {
				Distance *float64 `json:"distance"`
			} `json:"edges"`
		}
		_ = json.Unmarshal(raw, &d)
		for i := range o.Edges {
			if i < len(d.Edges) && o.Edges[i].Length == nil {
				o.Edges[i].Length = d.Edges[i].Distance
			}
		}
	}
	return o, nil
}

// DecodeInstantActions reads an instantActions message as a vehicle of this
// profile does, strictly: valid against its edition's schema, the array
// under the profile's key and every action's type under the profile's
// ActionTypeKey ("both" reads either). A message in another dialect is an
// error (*MessageError), as a real vehicle of that dialect refuses it.
func (p Profile) DecodeInstantActions(raw []byte) (InstantActions, error) {
	r := p.Resolve("")
	var ia InstantActions
	if err := ValidateEdition(r.Edition(), TopicInstantActions, raw); err != nil {
		return ia, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return ia, &MessageError{Topic: TopicInstantActions, Reason: err.Error()}
	}
	if err := json.Unmarshal(raw, &ia.Header); err != nil {
		return ia, &MessageError{Topic: TopicInstantActions, Reason: err.Error()}
	}
	arr, ok := m[r.InstantActionsKey]
	if !ok {
		return ia, &MessageError{Topic: TopicInstantActions, Reason: fmt.Sprintf("no %q array (this vehicle reads instant actions under %q)", r.InstantActionsKey, r.InstantActionsKey)}
	}
	var acts []instantAction
	if err := json.Unmarshal(arr, &acts); err != nil {
		return ia, &MessageError{Topic: TopicInstantActions, Reason: err.Error()}
	}
	for i, a := range acts {
		act := a.Action
		switch r.ActionTypeKey {
		case ActionKeyName:
			act.ActionType = a.ActionName
		case ActionKeyBoth:
			if act.ActionType == "" {
				act.ActionType = a.ActionName
			}
		}
		if act.ActionType == "" {
			return ia, &MessageError{Topic: TopicInstantActions, Reason: fmt.Sprintf("%s[%d]: no %s", r.InstantActionsKey, i, r.ActionTypeKey)}
		}
		ia.Actions = append(ia.Actions, act)
	}
	return ia, nil
}

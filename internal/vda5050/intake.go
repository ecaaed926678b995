package vda5050

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	gojson "github.com/goccy/go-json"

	"github.com/fleetflow/fleetflow/internal/schemacheck"
)

// Deviation kinds: how a vehicle's state departs from its edition's
// official schema while still being usable. Each is counted per robot.
const (
	// DeviationThetaMissing: nodeStates[].nodePosition without theta.
	// Vehicles echo the order's nodePosition, where theta is optional,
	// into the state, whose 2.0.0/2.1.0 schema requires it. Harmless:
	// fleetflow never reads it.
	DeviationThetaMissing = "theta_missing"
	// DeviationEnumCase: an enumeration value in other letter case than
	// the edition's schema spells it (1.1.0's schema writes actionStatus
	// and eStop in lower case, its implementations often in upper case, as
	// 2.x does). Harmless: read case-insensitively.
	DeviationEnumCase = "enum_case"
	// DeviationExtraField: a top-level property the schema does not list
	// (the schemas allow them). Harmless, counted.
	DeviationExtraField = "extra_field"
	// DeviationVersionMismatch: the header's version is another edition
	// than the robot's profile says; the message is read by its own
	// edition's schema when fleetflow speaks it.
	DeviationVersionMismatch = "version_mismatch"
	// DeviationInvalidItem: one element of errors, actionStates,
	// information, loads, nodeStates or edgeStates breaks the schema. An
	// error, actionState, information or load element is dropped; a node
	// or edge state is kept as a bare placeholder so the counts of what is
	// left to do stay true.
	DeviationInvalidItem = "invalid_item"
	// DeviationInvalidPart: a top-level part (batteryState, agvPosition,
	// orderId, …) breaks the schema and is left out; Intake.Unusable names
	// it, and the receiver keeps its last known value.
	DeviationInvalidPart = "invalid_part"
)

// Deviation is one departure from the schema, with where it is.
type Deviation struct {
	Kind   string `json:"kind"`
	Path   string `json:"path"`             // JSON pointer into the message
	Detail string `json:"detail,omitempty"` // what the schema says, or what was done
}

// Intake is a state message read tolerantly (DecodeState).
type Intake struct {
	State      State
	Edition    Edition     // the schema the message was read against
	Deviations []Deviation // empty for a message that passed its schema
	// Unusable names the top-level parts left out because they broke the
	// schema (e.g. "batteryState", "orderId"); their fields in State are
	// zero values and must not be taken as news.
	Unusable []string
}

// IsUnusable reports whether part could not be used.
func (in *Intake) IsUnusable(part string) bool {
	for _, p := range in.Unusable {
		if p == part {
			return true
		}
	}
	return false
}

// headerParts identify and order a message: without them it cannot be used.
var headerParts = map[string]bool{"headerId": true, "timestamp": true, "version": true, "manufacturer": true, "serialNumber": true}

// itemParts are arrays whose elements are judged one by one.
var itemParts = map[string]bool{"errors": true, "actionStates": true, "information": true, "loads": true, "nodeStates": true, "edgeStates": true}

// DecodeState reads a vehicle's state message expecting edition e (the
// robot's profile), tolerant but exact: a message that passes its schema is
// read as is; one that breaks it only in known harmless ways is read and
// each deviation reported; a broken element or part is left out, reported,
// and named in Unusable, and the rest — battery, position, errors, action
// states — is kept. Extra top-level fields and a header version of another
// edition are reported too.
//
// It returns a *MessageError, and nothing, only when the message cannot be
// used at all: not a JSON object, or a header (headerId, timestamp,
// version, manufacturer, serialNumber) that breaks the schema.
func DecodeState(e Edition, raw []byte) (*Intake, error) {
	inst, err := schemacheck.Parse(raw)
	if err != nil {
		return nil, &MessageError{Topic: TopicState, Reason: "not JSON: " + err.Error()}
	}
	obj, ok := inst.(map[string]any)
	if !ok {
		return nil, &MessageError{Topic: TopicState, Reason: "not a JSON object"}
	}
	in := &Intake{Edition: e}
	if v, ok := obj["version"].(string); ok && v != string(e) {
		if me, err := ParseEdition(v); err == nil {
			if me != e {
				in.Deviations = append(in.Deviations, Deviation{Kind: DeviationVersionMismatch, Path: "/version",
					Detail: fmt.Sprintf("header says %s, the robot's profile %s; read as %s", v, e, me)})
				in.Edition = me
			}
		} else {
			in.Deviations = append(in.Deviations, Deviation{Kind: DeviationVersionMismatch, Path: "/version",
				Detail: fmt.Sprintf("header says %q, not a version fleetflow speaks; read as %s", v, e)})
		}
	}
	ce, s, err := schemaFor(in.Edition, TopicState)
	if err != nil {
		return nil, err
	}
	for k := range obj {
		if !ce.topProps[TopicState][k] {
			in.Deviations = append(in.Deviations, Deviation{Kind: DeviationExtraField, Path: "/" + k})
		}
	}
	verr := validateInstance(s, TopicState, inst)
	if verr == nil {
		if err := gojson.Unmarshal(raw, &in.State); err != nil {
			return nil, &MessageError{Topic: TopicState, Reason: err.Error()}
		}
		if in.Edition == Edition11 {
			in.State.normalize()
		}
		return in, nil
	}
	var me *MessageError
	if !errors.As(verr, &me) {
		return nil, verr
	}
	if err := in.repair(obj, me); err != nil {
		return nil, err
	}
	fixed, err := json.Marshal(obj)
	if err != nil {
		return nil, &MessageError{Topic: TopicState, Reason: err.Error()}
	}
	if err := gojson.Unmarshal(fixed, &in.State); err != nil {
		return nil, &MessageError{Topic: TopicState, Reason: "after leaving out what broke the schema: " + err.Error(), Violations: me.Violations}
	}
	in.State.normalize()
	return in, nil
}

// repair classifies every violation, records it, and changes obj so that
// what is left can be read: broken elements dropped (or, for node and edge
// states, emptied), broken parts removed.
func (in *Intake) repair(obj map[string]any, me *MessageError) error {
	type item struct {
		part string
		idx  int
	}
	dropItems := map[item]string{}
	dropParts := map[string]string{}
	for _, v := range me.Leaves() {
		if isThetaMissing(v) {
			in.Deviations = append(in.Deviations, Deviation{Kind: DeviationThetaMissing, Path: v.Pointer()})
			continue
		}
		if isEnumCase(v) {
			in.Deviations = append(in.Deviations, Deviation{Kind: DeviationEnumCase, Path: v.Pointer(), Detail: fmt.Sprint(v.EnumGot)})
			continue
		}
		parts := v.Path
		if len(parts) == 0 {
			// A required top-level property is missing or the root is off.
			if len(v.Missing) == 0 {
				return &MessageError{Topic: TopicState, Reason: "schema violation", Violations: me.Violations}
			}
			for _, p := range v.Missing {
				if headerParts[p] {
					return &MessageError{Topic: TopicState, Reason: "header unusable: " + p + " missing", Violations: me.Violations}
				}
				dropParts[p] = v.String()
			}
			continue
		}
		part := parts[0]
		if headerParts[part] {
			return &MessageError{Topic: TopicState, Reason: "header unusable: " + v.Pointer(), Violations: me.Violations}
		}
		if itemParts[part] && len(parts) >= 2 {
			if i, err := strconv.Atoi(parts[1]); err == nil {
				dropItems[item{part, i}] = v.String()
				continue
			}
		}
		dropParts[part] = v.String()
	}
	for it, msg := range dropItems {
		if _, whole := dropParts[it.part]; whole {
			continue
		}
		arr, ok := obj[it.part].([]any)
		if !ok || it.idx >= len(arr) {
			continue
		}
		detail := "element left out: " + msg
		if it.part == "nodeStates" || it.part == "edgeStates" {
			detail = "element kept as a placeholder: " + msg
		}
		in.Deviations = append(in.Deviations, Deviation{Kind: DeviationInvalidItem, Path: "/" + it.part + "/" + strconv.Itoa(it.idx), Detail: detail})
	}
	// Drop elements from the back so indexes stay valid.
	for part := range itemParts {
		arr, ok := obj[part].([]any)
		if !ok {
			continue
		}
		if _, whole := dropParts[part]; whole {
			continue
		}
		out := arr[:0:0]
		for i, el := range arr {
			if _, bad := dropItems[item{part, i}]; bad {
				if part == "nodeStates" || part == "edgeStates" {
					out = append(out, map[string]any{})
				}
				continue
			}
			out = append(out, el)
		}
		obj[part] = out
	}
	for part, msg := range dropParts {
		delete(obj, part)
		in.Unusable = append(in.Unusable, part)
		in.Deviations = append(in.Deviations, Deviation{Kind: DeviationInvalidPart, Path: "/" + part, Detail: "left out: " + msg})
	}
	return nil
}

// isThetaMissing: a node state's nodePosition lacks theta and nothing else.
func isThetaMissing(v schemacheck.Violation) bool {
	return len(v.Path) == 3 && v.Path[0] == "nodeStates" && v.Path[2] == "nodePosition" &&
		len(v.Missing) == 1 && v.Missing[0] == "theta"
}

// isEnumCase: an enum value that matches an allowed one but for letter case.
func isEnumCase(v schemacheck.Violation) bool {
	got, ok := v.EnumGot.(string)
	if !ok {
		return false
	}
	for _, w := range v.EnumWant {
		if ws, ok := w.(string); ok && strings.EqualFold(ws, got) {
			return true
		}
	}
	return false
}

// normalize spells enumerations as fleetflow's types do (upper case, as
// 2.x): 1.1.0's schema writes actionStatus and eStop in lower case.
func (st *State) normalize() {
	for i := range st.ActionStates {
		st.ActionStates[i].ActionStatus = ActionStatus(strings.ToUpper(string(st.ActionStates[i].ActionStatus)))
	}
	st.SafetyState.EStop = strings.ToUpper(st.SafetyState.EStop)
}

// DeviationSummary renders deviations as "kind path" lines, for logs.
func DeviationSummary(ds []Deviation) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.Kind + " " + d.Path
		if d.Detail != "" {
			s[i] += " (" + d.Detail + ")"
		}
	}
	return strings.Join(s, "; ")
}

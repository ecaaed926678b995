package vda5050

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	gojson "github.com/goccy/go-json"
	"github.com/santhosh-tekuri/jsonschema/v6"

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
	// DeviationNullField: a property sent as JSON null (serializers that
	// write every optional field write null for the absent ones). Read as
	// absent: an optional one is simply not there, a required one is then
	// missing, as any other missing property.
	DeviationNullField = "null_field"
	// DeviationInvalidField: one property inside a part breaks the schema
	// (e.g. a fractional batteryHealth where 2.0.0 wants an integer, a
	// localizationScore over 1). Only that property is left out; the rest
	// of the part is read. Where the property is required, its element or
	// part is left out instead (DeviationInvalidItem, DeviationInvalidPart).
	DeviationInvalidField = "invalid_field"
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
	nulls := 0
	if hasNull(obj) { // a walk without allocations; most states have none
		nulls = len(in.Deviations)
		dropNulls(obj, "", &in.Deviations)
		nulls = len(in.Deviations) - nulls
	}
	verr := validateInstance(s, TopicState, inst)
	if verr == nil && nulls == 0 {
		if err := gojson.Unmarshal(raw, &in.State); err == nil {
			if in.Edition == Edition11 {
				in.State.normalize()
			}
			return in, nil
		} else if !integralNumbers(obj) {
			return nil, &MessageError{Topic: TopicState, Reason: err.Error()}
		}
		// An integer written as 12.0 or 1e2 passes the schema (JSON Schema
		// counts integral numbers as integers) but not Go's integer
		// types: read it as the integer it is.
	}
	var me *MessageError
	if verr != nil {
		if !errors.As(verr, &me) {
			return nil, verr
		}
		if err := in.repair(obj, me, s); err != nil {
			return nil, err
		}
	}
	integralNumbers(obj)
	fixed, err := json.Marshal(obj)
	if err != nil {
		return nil, &MessageError{Topic: TopicState, Reason: err.Error()}
	}
	if err := gojson.Unmarshal(fixed, &in.State); err != nil {
		reason, violations := err.Error(), []string(nil)
		if me != nil {
			reason, violations = "after leaving out what broke the schema: "+reason, me.Violations
		}
		return nil, &MessageError{Topic: TopicState, Reason: reason, Violations: violations}
	}
	in.State.normalize()
	return in, nil
}

// Unmarshal reads a message that passed its schema into v. An integer
// written as 12.0 or 1e2 (an integer to JSON Schema, not to Go's integer
// types) is read as the integer it is; any other error is goccy's.
func Unmarshal(raw []byte, v any) error {
	err := gojson.Unmarshal(raw, v)
	if err == nil {
		return nil
	}
	inst, perr := schemacheck.Parse(raw)
	if perr != nil || !integralNumbers(inst) {
		return err
	}
	fixed, merr := json.Marshal(inst)
	if merr != nil {
		return err
	}
	return gojson.Unmarshal(fixed, v)
}

// hasNull reports whether an object property in v or below is JSON null.
func hasNull(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for _, el := range x {
			if el == nil || hasNull(el) {
				return true
			}
		}
	case []any:
		for _, el := range x {
			if hasNull(el) {
				return true
			}
		}
	}
	return false
}

// dropNulls deletes every object property whose value is JSON null, in v
// and below, recording one DeviationNullField each (at JSON pointer
// prefix). Null array elements stay: the schema judges them.
func dropNulls(v any, prefix string, devs *[]Deviation) {
	switch x := v.(type) {
	case map[string]any:
		for k, el := range x {
			switch el.(type) {
			case nil:
				delete(x, k)
				*devs = append(*devs, Deviation{Kind: DeviationNullField, Path: prefix + "/" + escapeToken(k), Detail: "read as absent"})
			case map[string]any, []any:
				// The path is built only where there is something below
				// (most values are scalars): no garbage per property.
				dropNulls(el, prefix+"/"+escapeToken(k), devs)
			}
		}
	case []any:
		for i, el := range x {
			switch el.(type) {
			case map[string]any, []any:
				dropNulls(el, prefix+"/"+strconv.Itoa(i), devs)
			}
		}
	}
}

// integralNumbers rewrites, in v and below, every number written with a
// fraction or an exponent whose value is a whole number of magnitude
// below 2^53 ("12.0", "1e2") as that integer ("12", "100"), and reports
// whether it rewrote any. Numbers are json.Number (schemacheck.Parse).
func integralNumbers(v any) bool {
	changed := false
	switch x := v.(type) {
	case map[string]any:
		for k, el := range x {
			if n, ok := el.(json.Number); ok {
				if i, ok := wholeNumber(n); ok {
					x[k], changed = i, true
				}
				continue
			}
			changed = integralNumbers(el) || changed
		}
	case []any:
		for i, el := range x {
			if n, ok := el.(json.Number); ok {
				if w, ok := wholeNumber(n); ok {
					x[i], changed = w, true
				}
				continue
			}
			changed = integralNumbers(el) || changed
		}
	}
	return changed
}

// wholeNumber returns n as an integer literal when it is written with a
// fraction or exponent but is a whole number below 2^53 in magnitude.
func wholeNumber(n json.Number) (json.Number, bool) {
	if !strings.ContainsAny(string(n), ".eE") {
		return n, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<53 {
		return n, false
	}
	return json.Number(strconv.FormatInt(int64(f), 10)), true
}

// escapeToken escapes a JSON pointer token (RFC 6901).
func escapeToken(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return tokenEscaper.Replace(s)
}

var tokenEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// parentOf returns the object holding the last token of path, and that
// token, or ok=false when path does not lead to an object property.
func parentOf(root map[string]any, path []string) (map[string]any, string, bool) {
	if len(path) == 0 {
		return nil, "", false
	}
	var cur any = root
	for _, tok := range path[:len(path)-1] {
		switch x := cur.(type) {
		case map[string]any:
			cur = x[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, "", false
			}
			cur = x[i]
		default:
			return nil, "", false
		}
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return nil, "", false
	}
	last := path[len(path)-1]
	_, has := m[last]
	return m, last, has
}

// repair classifies every violation, records it, and changes obj so that
// what is left can be read: broken elements dropped (or, for node and edge
// states, emptied), broken parts removed.
func (in *Intake) repair(obj map[string]any, me *MessageError, s *jsonschema.Schema) error {
	type item struct {
		part string
		idx  int
	}
	// First pass: what can be mended in place is; a property that breaks
	// the schema inside a part is left out alone. What is left is judged
	// again, by element and by part.
	leaves := me.Leaves()
	var rest, mended []schemacheck.Violation
	origin := map[string]schemacheck.Violation{} // parent pointer NUL property → why it was left out
	for _, v := range leaves {
		switch {
		case isThetaMissing(v):
			in.Deviations = append(in.Deviations, Deviation{Kind: DeviationThetaMissing, Path: v.Pointer()})
		case isEnumCase(v):
			// Spelled as the schema does, so every reader compares equal
			// (a lower-case "fatal" is FATAL).
			if m, k, ok := parentOf(obj, v.Path); ok {
				m[k] = enumSpelling(v)
			}
			in.Deviations = append(in.Deviations, Deviation{Kind: DeviationEnumCase, Path: v.Pointer(), Detail: fmt.Sprint(v.EnumGot)})
		case len(v.Path) >= 2 && len(v.Missing) == 0 && !headerParts[v.Path[0]]:
			m, k, ok := parentOf(obj, v.Path)
			if !ok { // an array element, or a path that leads nowhere
				rest = append(rest, v)
				continue
			}
			delete(m, k)
			mended = append(mended, v)
			origin[schemacheck.Violation{Path: v.Path[:len(v.Path)-1]}.Pointer()+"\x00"+k] = v
		default:
			rest = append(rest, v)
		}
	}
	if len(mended) > 0 {
		// Leaving a property out may leave a required one missing: judge
		// the whole message again, without the mended and tolerated ones.
		rest = rest[:0]
		if leaves, err := schemacheck.Check(s, obj); err == nil {
			for _, v := range leaves {
				if !isThetaMissing(v) && !isEnumCase(v) {
					rest = append(rest, v)
				}
			}
		}
	}
	dropItems := map[item]string{}
	dropParts := map[string]string{}
	for _, v := range rest {
		if len(v.Missing) > 0 {
			// Missing because the first pass left it out: say why.
			if why, ok := origin[v.Pointer()+"\x00"+v.Missing[0]]; ok && len(v.Path) > 0 {
				v = why // same part and element, deeper
			}
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
	// A property left out alone is reported where its element or part
	// stays; where that went too, the element's or part's deviation says.
	for _, v := range mended {
		part := v.Path[0]
		if _, whole := dropParts[part]; whole {
			continue
		}
		if i, err := strconv.Atoi(v.Path[1]); err == nil && itemParts[part] {
			if _, gone := dropItems[item{part, i}]; gone {
				continue
			}
		}
		in.Deviations = append(in.Deviations, Deviation{Kind: DeviationInvalidField, Path: v.Pointer(), Detail: "left out: " + v.String()})
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

// enumSpelling is the allowed spelling of an enum-case violation's value.
func enumSpelling(v schemacheck.Violation) any {
	got, _ := v.EnumGot.(string)
	for _, w := range v.EnumWant {
		if ws, ok := w.(string); ok && strings.EqualFold(ws, got) {
			return ws
		}
	}
	return v.EnumGot
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

package vda5050

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// stateJSON returns a valid 2.0.0 state as a generic object, to be bent by
// each case.
func stateJSON(t *testing.T) map[string]any {
	t.Helper()
	st := sampleState()
	st.BatteryState.BatteryCharge = 87.5
	st.AGVPosition = &AGVPosition{X: 2.5, Y: 0, Theta: 0.1, MapID: "m", PositionInitialized: true}
	st.NodeStates = []NodeState{{NodeID: "A2", SequenceID: 2, Released: true, NodePosition: &StateNodePosition{X: 3, Y: 0, Theta: new(0.0), MapID: "m"}}}
	st.EdgeStates = []EdgeState{{EdgeID: "A1-A2", SequenceID: 1, Released: true}}
	st.ActionStates = []ActionState{{ActionID: "mission-m-1-a0-pick", ActionType: "pick", ActionStatus: ActionWaiting}, {ActionID: "mission-m-1#cancel-1", ActionStatus: ActionFinished}}
	st.Errors = []Error{{ErrorType: "validationError", ErrorLevel: ErrorWarning, ErrorReferences: []Reference{{"topic", "instantActions"}, {"headerId", "0"}}}}
	raw, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if err := Validate(TopicState, raw); err != nil {
		t.Fatalf("the base state must be valid: %v", err)
	}
	return m
}

func kinds(in *Intake) []string {
	var out []string
	for _, d := range in.Deviations {
		out = append(out, d.Kind+" "+d.Path)
	}
	sort.Strings(out)
	return out
}

func TestDecodeStateTolerant(t *testing.T) {
	cases := map[string]struct {
		bend     func(m map[string]any)
		want     []string // deviations, "kind path", sorted
		unusable []string
		check    func(t *testing.T, in *Intake)
	}{
		"valid": {bend: func(map[string]any) {}},
		"theta missing in nodeStates (vehicles echo the order's nodePosition)": {
			bend: func(m map[string]any) {
				delete(m["nodeStates"].([]any)[0].(map[string]any)["nodePosition"].(map[string]any), "theta")
			},
			want: []string{"theta_missing /nodeStates/0/nodePosition"},
			check: func(t *testing.T, in *Intake) {
				if len(in.State.NodeStates) != 1 || in.State.BatteryState.BatteryCharge != 87.5 || in.State.AGVPosition == nil {
					t.Errorf("state not kept whole: %+v", in.State)
				}
			},
		},
		"extra fields": {
			bend: func(m map[string]any) { m["vendorTelemetry"] = map[string]any{"motorTemp": 41}; m["x-debug"] = true },
			want: []string{"extra_field /vendorTelemetry", "extra_field /x-debug"},
		},
		"battery off: battery part unusable, the rest kept": {
			bend:     func(m map[string]any) { m["batteryState"] = map[string]any{"batteryCharge": "87%", "charging": false} },
			want:     []string{"invalid_part /batteryState"},
			unusable: []string{"batteryState"},
			check: func(t *testing.T, in *Intake) {
				if in.State.AGVPosition == nil || in.State.AGVPosition.X != 2.5 || len(in.State.ActionStates) != 2 || len(in.State.Errors) != 1 {
					t.Errorf("position, actions or errors lost: %+v", in.State)
				}
				// The detail names the field inside the part, not just the part.
				if d := in.Deviations[0].Detail; !strings.Contains(d, "/batteryState/batteryCharge") {
					t.Errorf("detail %q does not name /batteryState/batteryCharge", d)
				}
			},
		},
		"one action state off: only that one left out": {
			bend: func(m map[string]any) {
				m["actionStates"].([]any)[0].(map[string]any)["actionStatus"] = "DONE"
			},
			want: []string{"invalid_item /actionStates/0"},
			check: func(t *testing.T, in *Intake) {
				if len(in.State.ActionStates) != 1 || in.State.ActionStates[0].ActionID != "mission-m-1#cancel-1" {
					t.Errorf("want the cancel's state kept: %+v", in.State.ActionStates)
				}
				if in.State.BatteryState.BatteryCharge != 87.5 {
					t.Error("battery lost")
				}
			},
		},
		"one node state off: kept as a placeholder, the count stays true": {
			bend: func(m map[string]any) {
				m["nodeStates"].([]any)[0].(map[string]any)["sequenceId"] = "two"
			},
			want: []string{"invalid_item /nodeStates/0"},
			check: func(t *testing.T, in *Intake) {
				if len(in.State.NodeStates) != 1 {
					t.Errorf("nodes remaining %d, want 1", len(in.State.NodeStates))
				}
			},
		},
		"paused sent as null (serializers that write every optional field)": {
			bend: func(m map[string]any) { m["paused"] = nil },
			want: []string{"null_field /paused"},
			check: func(t *testing.T, in *Intake) {
				if in.State.Paused != nil || len(in.State.NodeStates) != 1 || in.State.OrderID == "" {
					t.Errorf("want paused absent and the progress kept: %+v", in.State)
				}
			},
		},
		"a required property sent as null is missing": {
			bend:     func(m map[string]any) { m["batteryState"].(map[string]any)["batteryCharge"] = nil },
			want:     []string{"invalid_part /batteryState", "null_field /batteryState/batteryCharge"},
			unusable: []string{"batteryState"},
		},
		"fatal in lower case is FATAL": {
			bend: func(m map[string]any) { m["errors"].([]any)[0].(map[string]any)["errorLevel"] = "fatal" },
			want: []string{"enum_case /errors/0/errorLevel"},
			check: func(t *testing.T, in *Intake) {
				if len(in.State.Errors) != 1 || in.State.FatalError() == nil {
					t.Errorf("want the error kept and read as FATAL: %+v", in.State.Errors)
				}
			},
		},
		"a fractional batteryHealth (2.0.0 wants an integer): only that field left out": {
			bend: func(m map[string]any) { m["batteryState"].(map[string]any)["batteryHealth"] = 97.5 },
			want: []string{"invalid_field /batteryState/batteryHealth"},
			check: func(t *testing.T, in *Intake) {
				if in.State.BatteryState.BatteryCharge != 87.5 || in.State.BatteryState.BatteryHealth != nil {
					t.Errorf("want the charge kept, the health left out: %+v", in.State.BatteryState)
				}
			},
		},
		"a localizationScore over 1: the position kept": {
			bend: func(m map[string]any) { m["agvPosition"].(map[string]any)["localizationScore"] = 95 },
			want: []string{"invalid_field /agvPosition/localizationScore"},
			check: func(t *testing.T, in *Intake) {
				if in.State.AGVPosition == nil || in.State.AGVPosition.X != 2.5 {
					t.Errorf("position lost: %+v", in.State.AGVPosition)
				}
			},
		},
		"required part missing": {
			bend:     func(m map[string]any) { delete(m, "safetyState") },
			want:     []string{"invalid_part /safetyState"},
			unusable: []string{"safetyState"},
		},
		"orderId of the wrong type": {
			bend:     func(m map[string]any) { m["orderId"] = 42 },
			want:     []string{"invalid_part /orderId"},
			unusable: []string{"orderId"},
		},
		"a 2.1.0 header on a 2.0.0 robot": {
			bend: func(m map[string]any) { m["version"] = "2.1.0" },
			want: []string{"version_mismatch /version"},
			check: func(t *testing.T, in *Intake) {
				if in.Edition != Edition21 {
					t.Errorf("read as %s, want 2.1.0", in.Edition)
				}
			},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			m := stateJSON(t)
			c.bend(m)
			raw, _ := json.Marshal(m)
			in, err := DecodeState(Edition20, raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := kinds(in); strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("deviations %q, want %q", got, c.want)
			}
			if strings.Join(in.Unusable, ",") != strings.Join(c.unusable, ",") {
				t.Errorf("unusable %q, want %q", in.Unusable, c.unusable)
			}
			if in.State.SerialNumber != "AMR-001" || in.State.HeaderID != 7 {
				t.Errorf("header lost: %+v", in.State.Header)
			}
			if c.check != nil {
				c.check(t, in)
			}
		})
	}
}

// Integers written as 12.0 or 1e2 are integers to JSON Schema, not to
// Go: they are read as the integers they are, not refused.
func TestDecodeStateIntegralFloats(t *testing.T) {
	raw, _ := json.Marshal(stateJSON(t))
	for _, r := range [][2]string{{`"headerId":7`, `"headerId":7.0`}, {`"orderUpdateId":0`, `"orderUpdateId":0e0`}, {`"sequenceId":2`, `"sequenceId":2.00`}} {
		if !strings.Contains(string(raw), r[0]) {
			t.Fatalf("base state has no %s: %s", r[0], raw)
		}
		raw = []byte(strings.Replace(string(raw), r[0], r[1], 1))
	}
	in, err := DecodeState(Edition20, raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Deviations) != 0 || in.State.HeaderID != 7 || in.State.NodeStates[0].SequenceID != 2 {
		t.Errorf("deviations %v, headerId %d, sequenceId %d", in.Deviations, in.State.HeaderID, in.State.NodeStates[0].SequenceID)
	}
	var c Connection
	if err := Unmarshal([]byte(`{"headerId":3.0,"timestamp":"2026-01-01T00:00:00Z","version":"2.0.0","manufacturer":"acme","serialNumber":"AMR-001","connectionState":"ONLINE"}`), &c); err != nil || c.HeaderID != 3 {
		t.Errorf("connection: %v, headerId %d", err, c.HeaderID)
	}
	if err := Unmarshal([]byte(`{"headerId":3.5}`), &c); err == nil {
		t.Error("a fraction is not an integer")
	}
}

// Only what cannot be used at all is refused, with the reason.
func TestDecodeStateRefusesTheUnusable(t *testing.T) {
	for name, c := range map[string]struct {
		raw  func(t *testing.T) []byte
		want string
	}{
		"not JSON":        {func(*testing.T) []byte { return []byte(`{"headerId":`) }, "not JSON"},
		"not an object":   {func(*testing.T) []byte { return []byte(`[1,2]`) }, "not a JSON object"},
		"no headerId":     {func(t *testing.T) []byte { m := stateJSON(t); delete(m, "headerId"); b, _ := json.Marshal(m); return b }, "header unusable: headerId missing"},
		"timestamp wrong": {func(t *testing.T) []byte { m := stateJSON(t); m["timestamp"] = 5; b, _ := json.Marshal(m); return b }, "header unusable: /timestamp"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeState(Edition20, c.raw(t))
			var me *MessageError
			if !errors.As(err, &me) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want a *MessageError containing %q, got %v", c.want, err)
			}
		})
	}
}

// The same tolerance in every edition.
func TestDecodeStateEachEdition(t *testing.T) {
	for _, e := range Editions {
		m := stateJSON(t)
		m["version"] = string(e)
		if e == Edition11 {
			// As 1.1.0's schema spells them.
			m["actionStates"].([]any)[0].(map[string]any)["actionStatus"] = "waiting"
			m["actionStates"].([]any)[1].(map[string]any)["actionStatus"] = "finished"
			m["safetyState"].(map[string]any)["eStop"] = "none"
		}
		delete(m["nodeStates"].([]any)[0].(map[string]any)["nodePosition"].(map[string]any), "theta")
		raw, _ := json.Marshal(m)
		in, err := DecodeState(e, raw)
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		for _, d := range in.Deviations {
			if d.Kind != DeviationThetaMissing {
				t.Errorf("%s: unexpected deviation %+v", e, d)
			}
		}
		if in.State.BatteryState.BatteryCharge != 87.5 {
			t.Errorf("%s: battery lost", e)
		}
		if in.State.ActionStates[1].ActionStatus != ActionFinished || in.State.SafetyState.EStop != "NONE" {
			t.Errorf("%s: enumerations not read as fleetflow spells them: %+v %+v", e, in.State.ActionStates, in.State.SafetyState)
		}
	}
	// 1.1 vehicles that write 2.x's upper case: counted, read.
	m := stateJSON(t)
	m["version"] = "1.1.0"
	raw, _ := json.Marshal(m)
	in, err := DecodeState(Edition11, raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(in); strings.Join(got, ",") != "enum_case /actionStates/0/actionStatus,enum_case /actionStates/1/actionStatus,enum_case /safetyState/eStop" {
		t.Errorf("deviations %q", got)
	}
	if len(in.State.ActionStates) != 2 || in.State.SafetyState.EStop != "NONE" {
		t.Errorf("state not kept: %+v", in.State)
	}
}

// States captured from an independent VDA 5050 2.0 implementation (npm
// vda-5050-lib, testdata/vda5050/samples): each is used whole, with exactly
// the deviations it has.
func TestDecodeCapturedThirdPartyStates(t *testing.T) {
	for file, want := range map[string]string{
		"state-driving-theta-missing.json":           "theta_missing",
		"state-instantactions-validation-error.json": "",
		"state-cancel-finished.json":                 "",
		"state-noroute.json":                         "",
	} {
		t.Run(file, func(t *testing.T) {
			raw, err := os.ReadFile("../../testdata/vda5050/samples/vda5050-lib-2.0/" + file)
			if err != nil {
				t.Fatal(err)
			}
			if err := ValidateEdition(Edition20, TopicState, raw); (err != nil) != (want != "") {
				t.Fatalf("strict 2.0.0 validation: %v (want a failure: %v)", err, want != "")
			}
			in, err := DecodeState(Edition20, raw)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, d := range in.Deviations {
				got[d.Kind] = true
			}
			for k := range got {
				if k != want {
					t.Errorf("unexpected deviation %s: %s", k, DeviationSummary(in.Deviations))
				}
			}
			if want != "" && !got[want] {
				t.Errorf("want a %s deviation, got %s", want, DeviationSummary(in.Deviations))
			}
			if len(in.Unusable) > 0 || in.State.AGVPosition == nil || in.State.BatteryState.BatteryCharge == 0 || in.State.SerialNumber == "" {
				t.Errorf("state not used whole: unusable %v, %+v", in.Unusable, in.State)
			}
		})
	}
}

// FuzzDecodeState: whatever a vehicle sends, the tolerant intake returns a
// state or a *MessageError — never a panic — and a state it returns holds
// the header it was sent with.
func FuzzDecodeState(f *testing.F) {
	seeds, _ := filepath.Glob("../../testdata/fuzz/bridge/*.json")
	for _, p := range seeds {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"headerId":1,"timestamp":"x","version":"1.1.0","manufacturer":"a","serialNumber":"b","actionStates":[{"actionStatus":"finished"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, e := range Editions {
			in, err := DecodeState(e, raw)
			if err != nil {
				var me *MessageError
				if !errors.As(err, &me) {
					t.Fatalf("%s: error of type %T: %v", e, err, err)
				}
				continue
			}
			var h struct {
				SerialNumber string `json:"serialNumber"`
			}
			if json.Unmarshal(raw, &h) == nil && h.SerialNumber != in.State.SerialNumber {
				t.Fatalf("%s: serial %q read as %q", e, h.SerialNumber, in.State.SerialNumber)
			}
		}
	})
}

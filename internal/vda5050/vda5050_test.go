package vda5050

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The embedded schemas must be the official ones in ../shared, byte for byte.
func TestEmbeddedSchemasMatchShared(t *testing.T) {
	shared := "../../../shared/vda5050/2.0.0"
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("%s not present: %v", shared, err)
	}
	for _, name := range SchemaFiles {
		want, err := os.ReadFile(filepath.Join(shared, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := schemaFS.ReadFile("schema/2.0.0/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("schema/2.0.0/%s differs from %s", name, shared)
		}
	}
}

func f(v float64) *float64 { return &v }

func sampleOrder() Order {
	k := RobotKey{"acme", "AMR-001"}
	var hc HeaderCounter
	return Order{
		Header:  hc.Next("order", k, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		OrderID: "mission-m-1",
		Nodes: []Node{
			{NodeID: "A1", SequenceID: 0, Released: true, NodePosition: &NodePosition{X: 0, Y: 0, MapID: "m"}, Actions: []Action{}},
			{NodeID: "A2", SequenceID: 2, Released: true, NodePosition: &NodePosition{X: 3, Y: 0, MapID: "m"}, Actions: []Action{{
				ActionType: ActionPick, ActionID: "mission-m-1-a0-pick", BlockingType: BlockingHard,
				ActionParameters: []ActionParameter{{Key: "stationType", Value: "conveyor"}, {Key: "loadId", Value: "PAL-1"}},
			}}},
		},
		Edges: []Edge{{EdgeID: "A1-A2", SequenceID: 1, Released: true, StartNodeID: "A1", EndNodeID: "A2", Length: f(3), Actions: []Action{}}},
	}
}

func TestEncodeValidOrder(t *testing.T) {
	raw, err := Encode(TopicOrder, sampleOrder())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"timestamp":"2026-01-01T00:00:00.000Z"`)) {
		t.Errorf("timestamp not ISO 8601 UTC with ms: %s", raw)
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	o := sampleOrder()
	o.Nodes[1].Actions[0].BlockingType = "SOMETIMES"
	o.Edges[0].StartNodeID = ""
	_, err := Encode(TopicOrder, o)
	var me *MessageError
	if !errors.As(err, &me) {
		t.Fatalf("want *MessageError, got %v", err)
	}
	if !strings.Contains(err.Error(), "/nodes/1/actions/0/blockingType") {
		t.Errorf("error does not name the path of the bad field: %v", err)
	}
}

func sampleState() State {
	return State{
		Header:        Header{HeaderID: 7, Timestamp: "2026-01-01T00:00:00.000Z", Version: Version, Manufacturer: "acme", SerialNumber: "AMR-001"},
		OrderID:       "mission-m-1",
		LastNodeID:    "A1",
		NodeStates:    []NodeState{},
		EdgeStates:    []EdgeState{},
		ActionStates:  []ActionState{{ActionID: "x#startPause-1", ActionType: ActionStartPause, ActionStatus: ActionPaused}},
		BatteryState:  BatteryState{BatteryCharge: 80},
		Errors:        []Error{},
		SafetyState:   SafetyState{EStop: "NONE"},
		OperatingMode: "AUTOMATIC",
	}
}

func TestDecodeStateAcceptsPaused(t *testing.T) {
	raw, err := json.Marshal(sampleState())
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := Decode(TopicState, raw, &st); err != nil {
		t.Fatalf("PAUSED must be accepted on input (VDA 5050 §6.10.6): %v", err)
	}
	if st.ActionStates[0].ActionStatus != ActionPaused || st.HeaderID != 7 {
		t.Errorf("decoded %+v", st)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	cases := map[string]string{
		"not json":        `{"headerId":`,
		"missing fields":  `{"headerId":1}`,
		"wrong type":      strings.Replace(mustJSON(t, sampleState()), `"driving":false`, `"driving":"no"`, 1),
		"bad enum":        strings.Replace(mustJSON(t, sampleState()), `"operatingMode":"AUTOMATIC"`, `"operatingMode":"TURBO"`, 1),
		"bad error level": strings.Replace(mustJSON(t, sampleState()), `"errors":[]`, `"errors":[{"errorType":"x","errorLevel":"PANIC"}]`, 1),
	}
	for name, raw := range cases {
		var st State
		err := Decode(TopicState, []byte(raw), &st)
		var me *MessageError
		if !errors.As(err, &me) {
			t.Errorf("%s: want *MessageError, got %v", name, err)
			continue
		}
		if me.Reason == "" {
			t.Errorf("%s: no reason", name)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestInstantActionsAndConnectionValidate(t *testing.T) {
	k := RobotKey{"acme", "AMR-001"}
	var hc HeaderCounter
	ia := InstantActions{Header: hc.Next("ia", k, time.Now()), Actions: []Action{{ActionType: ActionCancelOrder, ActionID: "mission-m-1#cancel", BlockingType: BlockingHard}}}
	if _, err := Encode(TopicInstantActions, ia); err != nil {
		t.Fatal(err)
	}
	c := Connection{Header: hc.Next("c", k, time.Now()), ConnectionState: ConnectionBroken}
	if _, err := Encode(TopicConnection, c); err != nil {
		t.Fatal(err)
	}
	c.ConnectionState = "SLEEPY"
	if _, err := Encode(TopicConnection, c); err == nil {
		t.Fatal("unknown connectionState must be refused")
	}
}

func TestHeaderIDCountsPerTopic(t *testing.T) {
	var hc HeaderCounter
	k := RobotKey{"acme", "1"}
	now := time.Now()
	if a, b, c := hc.Next("order", k, now).HeaderID, hc.Next("order", k, now).HeaderID, hc.Next("instantActions", k, now).HeaderID; a != 0 || b != 1 || c != 0 {
		t.Errorf("headerIds %d %d %d, want 0 1 0", a, b, c)
	}
}

func TestTopics(t *testing.T) {
	k := RobotKey{"acme", "AMR-001"}
	topic := TopicFor(k, TopicState)
	if topic != "uagv/v2/acme/AMR-001/state" {
		t.Fatal(topic)
	}
	gk, gt, err := ParseTopic(topic)
	if err != nil || gk != k || gt != TopicState {
		t.Fatalf("ParseTopic: %v %v %v", gk, gt, err)
	}
	for _, bad := range []string{"uagv/v1/a/b/state", "uagv/v2/a/state", "uagv/v2/a/b/c/state", "uagv/v2/a/b/telemetry"} {
		if _, _, err := ParseTopic(bad); err == nil {
			t.Errorf("ParseTopic(%q) accepted", bad)
		}
	}
	if err := ValidIdentifier("AMR 001"); err == nil {
		t.Error("space must be refused in a serial number (§6.1)")
	}
	if err := ValidIdentifier("AMR-001_a.b:c"); err != nil {
		t.Error(err)
	}
	if Subscription(TopicState) != "uagv/v2/+/+/state" {
		t.Error(Subscription(TopicState))
	}
}

func TestInstantActionsCarryBothNames(t *testing.T) {
	ia := InstantActions{Header: Header{Timestamp: "2026-01-01T00:00:00.000Z", Version: Version, Manufacturer: "a", SerialNumber: "b"},
		Actions: []Action{{ActionType: ActionStartPause, ActionID: "x", BlockingType: BlockingHard}}}
	raw, err := Encode(TopicInstantActions, ia)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"actionType":"startPause"`)) || !bytes.Contains(raw, []byte(`"actionName":"startPause"`)) {
		t.Fatalf("want both actionType and actionName: %s", raw)
	}
	var back InstantActions
	onlyName := bytes.Replace(raw, []byte(`"actionType":"startPause",`), nil, 1)
	if err := Decode(TopicInstantActions, onlyName, &back); err != nil || back.Actions[0].ActionType != ActionStartPause {
		t.Fatalf("decode with actionName only: %v %+v", err, back)
	}
}

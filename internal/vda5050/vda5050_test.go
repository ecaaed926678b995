package vda5050

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// officialBlobs are the git blob IDs of the official files (schema/README.md
// names each file's tag or commit in VDA5050/VDA5050).
var officialBlobs = map[string]string{
	"1.1.0/connection.schema":     "a3f41e16497c395de68833715d2c19645aef64a8",
	"1.1.0/instantActions.schema": "6f8c9b6afea0a50728d4dcd9b0b3c1cd87517e0d",
	"1.1.0/order.schema":          "aa44af06e2f83a2e701597075ba13a512bf6a78d",
	"1.1.0/state.schema":          "c7988734397eea6a904a09cf8c568afe44c0269f",
	"1.1.0/visualization.schema":  "11780e62f9c35a4ecfa16ee943793617b2656b2a",
	"2.0.0/connection.schema":     "2c4ab6d6c01d138d4c0f83ed028798f3c16481bb",
	"2.0.0/factsheet.json":        "3400d0aaa3f395a6a09566dcd7fdc06fa052dae1",
	"2.0.0/instantActions.schema": "699aba29451e2467bae79275ce99f24ad6a16b4d",
	"2.0.0/order.schema":          "2c364b8d6a866f7cf407652c5faf83281f302be5",
	"2.0.0/state.schema":          "5b84a897529be0213f5eec1bf640b83cd8e35771",
	"2.0.0/visualization.schema":  "ee461497ed9253f295c9e318a666dd8e2251c028",
	"2.1.0/connection.schema":     "d5126fab1e7c91ab158819b60d2a3633205e361d",
	"2.1.0/factsheet.schema":      "9f181245496aae238f0eba46e7bfc4e87904e510",
	"2.1.0/instantActions.schema": "6727743a141f563797e7aed8053b0dda764f8e4c",
	"2.1.0/order.schema":          "cb429c581edbac9fed5d6161181f1fe896fd27b3",
	"2.1.0/state.schema":          "412d2558da33d3a2a6e059c6a42a38999f56a01e",
	"2.1.0/visualization.schema":  "dceb82fe4bb224ec4ec23ca3a37f1df144dd8ffa",
}

// The embedded schemas are the official ones, byte for byte: each file's
// git blob ID (sha1 of "blob <len>\x00" + content) is the official one.
func TestEmbeddedSchemasAreTheOfficialOnes(t *testing.T) {
	seen := 0
	for _, e := range Editions {
		for topic, name := range editionSchemaFiles[e] {
			raw, err := SchemaFile(e, topic)
			if err != nil {
				t.Fatal(err)
			}
			h := sha1.New()
			fmt.Fprintf(h, "blob %d\x00", len(raw))
			h.Write(raw)
			key := string(e) + "/" + name
			if got, want := hex.EncodeToString(h.Sum(nil)), officialBlobs[key]; got != want {
				t.Errorf("schema/%s: blob %s, the official file is %s", key, got, want)
			}
			seen++
		}
	}
	if seen != len(officialBlobs) {
		t.Errorf("%d schema files embedded, %d official ones listed", seen, len(officialBlobs))
	}
}

// The 1.1.0 connection schema needs two repairs to parse; nothing else is
// touched in any file.
func TestSchemaRepairs(t *testing.T) {
	for _, e := range Editions {
		for topic := range editionSchemaFiles[e] {
			raw, _ := SchemaFile(e, topic)
			fixed := repairSchema(e, topic, raw)
			if e == Edition11 && topic == TopicConnection {
				if bytes.Equal(fixed, raw) {
					t.Error("1.1.0 connection schema: no repair applied")
				}
				if !json.Valid(fixed) || bytes.Contains(fixed, []byte(`"type": "date-time"`)) {
					t.Errorf("1.1.0 connection schema still broken: %s", fixed[:120])
				}
				n := bytes.Count(raw, []byte(`"type": "date-time"`))
				if n == 0 || len(fixed)-len(raw) != n*len(`"string", "format": `)-1 {
					t.Errorf("repair changed %d bytes, want only the doubled comma and the %d date-time types", len(fixed)-len(raw), n)
				}
				continue
			}
			if !bytes.Equal(fixed, raw) {
				t.Errorf("%s %s: changed by repairSchema", e, topic)
			}
		}
	}
	if _, err := loadEditions(); err != nil {
		t.Fatal(err)
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
	if gk, gt, err := ParseTopic("fts/v1/a/b/state"); err != nil || gk != (RobotKey{"a", "b"}) || gt != TopicState {
		t.Errorf("a 1.1 topic under another interface name: %v %v %v", gk, gt, err)
	}
	for _, bad := range []string{"uagv/v3/a/b/state", "uagv/v2/a/state", "/v2/a/b/state", "uagv/v2/a/b/c/state", "uagv/v2/a/b/telemetry"} {
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

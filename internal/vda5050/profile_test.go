package vda5050

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// dialects are the profiles a real fleet mixes: each edition's default, and
// the 2.0 implementations that read instantActions under the 1.1 key.
var dialects = map[string]Profile{
	"1.1 default":                    {Version: "1.1"},
	"2.0 default":                    {},
	"2.0 instantActions/actionType":  {Version: "2.0.0", InstantActionsKey: KeyInstantActions, ActionTypeKey: ActionKeyType},
	"2.1 default":                    {Version: "2.1.0"},
	"2.1 interface fts, theta":       {Version: "2.1", InterfaceName: "fts", Require: []string{RequireNodeTheta}},
	"auto":                           {Version: VersionAuto},
	"2.0 actions/actionName (2.0.0)": {Version: "2.0.0", ActionTypeKey: ActionKeyName},
}

// Every dialect's messages pass the official schema of its own edition,
// and a vehicle of that dialect reads back what fleetflow wrote.
func TestEachDialectValidatesAgainstItsEdition(t *testing.T) {
	for name, p := range dialects {
		t.Run(name, func(t *testing.T) {
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			r := p.Resolve("")
			ia := InstantActions{Header: Header{HeaderID: 3, Timestamp: "2026-01-01T00:00:00.000Z", Manufacturer: "a", SerialNumber: "b"},
				Actions: []Action{{ActionType: ActionCancelOrder, ActionID: "mission-m#cancel-1", BlockingType: BlockingHard}}}
			raw, err := p.EncodeInstantActions(ia)
			if err != nil {
				t.Fatal(err)
			}
			if err := ValidateEdition(r.Edition(), TopicInstantActions, raw); err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			if m["version"] != r.Version {
				t.Errorf("header version %v, want %s", m["version"], r.Version)
			}
			arr, ok := m[r.InstantActionsKey].([]any)
			if !ok || len(arr) != 1 {
				t.Fatalf("no %s array: %s", r.InstantActionsKey, raw)
			}
			other := KeyActions
			if r.InstantActionsKey == KeyActions {
				other = KeyInstantActions
			}
			if _, both := m[other]; both {
				t.Errorf("both %s and %s written: %s", r.InstantActionsKey, other, raw)
			}
			act := arr[0].(map[string]any)
			_, hasType := act["actionType"]
			_, hasName := act["actionName"]
			switch r.ActionTypeKey {
			case ActionKeyType:
				if !hasType || hasName {
					t.Errorf("want actionType only: %v", act)
				}
			case ActionKeyName:
				if hasType || !hasName {
					t.Errorf("want actionName only: %v", act)
				}
			default:
				if !hasType || !hasName {
					t.Errorf("want both: %v", act)
				}
			}
			back, err := p.DecodeInstantActions(raw)
			if err != nil || len(back.Actions) != 1 || back.Actions[0].ActionType != ActionCancelOrder || back.HeaderID != 3 {
				t.Fatalf("read back: %v %+v", err, back)
			}

			o := sampleOrder()
			raw, err = p.EncodeOrder(o)
			if err != nil {
				t.Fatal(err)
			}
			if err := ValidateEdition(r.Edition(), TopicOrder, raw); err != nil {
				t.Fatal(err)
			}
			if r.Edition() == Edition11 && (!strings.Contains(string(raw), `"distance":3`) || strings.Contains(string(raw), `"length"`)) {
				t.Errorf("1.1 edges carry distance, not length: %s", raw)
			}
			bo, err := p.DecodeOrder(raw)
			if err != nil || bo.Edges[0].Length == nil || *bo.Edges[0].Length != 3 {
				t.Fatalf("read back order: %v %+v", err, bo.Edges)
			}
			if got, want := p.Topic(RobotKey{"acme", "1"}, TopicOrder), r.InterfaceName+"/"+r.Edition().Major()+"/acme/1/order"; got != want {
				t.Errorf("topic %s, want %s", got, want)
			}
		})
	}
}

// A vehicle of one dialect refuses another dialect's instantActions, as a
// real one does (this is how a wrongly configured profile shows up).
func TestDialectsRefuseEachOther(t *testing.T) {
	h := Header{Timestamp: "2026-01-01T00:00:00.000Z", Manufacturer: "a", SerialNumber: "b"}
	ia := InstantActions{Header: h, Actions: []Action{{ActionType: ActionStartPause, ActionID: "x", BlockingType: BlockingHard}}}
	ours, err := Profile{}.EncodeInstantActions(ia)
	if err != nil {
		t.Fatal(err)
	}
	lib := Profile{Version: "2.0.0", InstantActionsKey: KeyInstantActions, ActionTypeKey: ActionKeyType}
	_, err = lib.DecodeInstantActions(ours)
	var me *MessageError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), `no "instantActions" array`) {
		t.Fatalf("want a refusal naming the missing key, got %v", err)
	}
	v21 := Profile{Version: "2.1.0"}
	nameOnly, err := Profile{Version: "2.0.0", ActionTypeKey: ActionKeyName}.EncodeInstantActions(ia)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v21.DecodeInstantActions(nameOnly); err == nil {
		t.Fatal("a 2.1 vehicle must refuse actions without actionType")
	}
}

// A dialect that breaks its own edition's schema is a configuration error.
func TestProfileValidation(t *testing.T) {
	for name, c := range map[string]struct {
		p    Profile
		want string
	}{
		"2.0 actions with actionType only": {Profile{Version: "2.0.0", ActionTypeKey: ActionKeyType}, "break the VDA 5050 2.0.0 schema"},
		"2.1 with actionName only":         {Profile{Version: "2.1.0", ActionTypeKey: ActionKeyName}, "break the VDA 5050 2.1.0 schema"},
		"unknown version":                  {Profile{Version: "3.0.0"}, "not spoken by fleetflow"},
		"bad interface":                    {Profile{InterfaceName: "u agv"}, "interfaceName"},
		"bad key":                          {Profile{InstantActionsKey: "acts"}, "instantActionsKey"},
		"bad action key":                   {Profile{ActionTypeKey: "type"}, "actionTypeKey"},
		"unknown required field":           {Profile{Require: []string{"edges.orientation"}}, `require "edges.orientation"`},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.p.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error containing %q, got %v", c.want, err)
			}
		})
	}
}

func TestParseEdition(t *testing.T) {
	for in, want := range map[string]Edition{"1.1": Edition11, "1.1.0": Edition11, "2": Edition20, "2.0": Edition20, "2.0.3": Edition20, "v2.1": Edition21, "2.1.0": Edition21} {
		if got, err := ParseEdition(in); err != nil || got != want {
			t.Errorf("ParseEdition(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "3.0.0", "1.0", "x"} {
		if _, err := ParseEdition(bad); err == nil {
			t.Errorf("ParseEdition(%q) accepted", bad)
		}
	}
	if got := (Profile{Version: VersionAuto}).Resolve("2.1.0").Version; got != "2.1.0" {
		t.Errorf("auto profile after a 2.1.0 header: %s", got)
	}
	if got := (Profile{Version: VersionAuto}).Resolve("").Version; got != "2.0.0" {
		t.Errorf("auto profile before any header: %s", got)
	}
}

// An auto profile speaks the version the vehicle last wrote; configured
// profiles ignore what vehicles write.
func TestProfileBookAuto(t *testing.T) {
	auto, fixed, other := RobotKey{"a", "1"}, RobotKey{"a", "2"}, RobotKey{"b", "3"}
	book := NewProfileBook(Profile{}, map[RobotKey]Profile{auto: {Version: VersionAuto}, fixed: {Version: "2.1"}})
	if got := book.For(auto).Version; got != "2.0.0" {
		t.Fatalf("auto before any header: %s", got)
	}
	book.Saw(auto, "1.1.0")
	book.Saw(fixed, "1.1.0")
	book.Saw(other, "2.1.0")
	if got := book.For(auto); got.Version != "1.1.0" || got.InstantActionsKey != KeyInstantActions || got.Topic(auto, TopicOrder) != "uagv/v1/a/1/order" {
		t.Errorf("auto after a 1.1.0 header: %+v", got)
	}
	book.Saw(auto, "9.9")
	if got := book.For(auto).Version; got != "1.1.0" {
		t.Errorf("an unknown version must not change it: %s", got)
	}
	if got := book.For(fixed).Version; got != "2.1.0" {
		t.Errorf("configured profile changed by a header: %s", got)
	}
	if got := book.For(other).Version; got != "2.0.0" {
		t.Errorf("unknown robot: %s", got)
	}
	if subs := book.Subscriptions(TopicState); strings.Join(subs, " ") != "uagv/v1/+/+/state uagv/v2/+/+/state" {
		t.Errorf("subscriptions %v", subs)
	}
	var none *ProfileBook
	if none.For(other).Version != "2.0.0" || len(none.Subscriptions(TopicState)) != 1 {
		t.Error("a nil book speaks the default profile")
	}
}

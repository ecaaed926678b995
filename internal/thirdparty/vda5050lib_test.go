package thirdparty_test

// TestVDA5050Lib runs one vehicle of vda-5050-lib 1.4.0 (AgvController +
// VirtualAgvAdapter) against the real MQTT broker and records, by
// observation, the VDA 5050 2.0 dialect it speaks:
//
//   - connection: ONLINE, retained, on uagv/v2/<m>/<s>/connection; its
//     headerId is 1, not 0, because the library builds its MQTT last will
//     (CONNECTIONBROKEN, retained) first and that takes headerId 0. OFFLINE
//     (headerId 2) on a clean stop.
//   - factsheet: published (retained) on factsheetRequest, header only
//     (headerId, timestamp, version "2.0.0", manufacturer, serialNumber).
//   - state: nodeStates copy the order's nodePosition as sent, so an order
//     without theta gives nodeStates whose nodePosition has no theta (the
//     2.0.0 state schema requires theta there).
//   - instantActions: the library reads the array under "instantActions"
//     (the 2.0.0 JSON schema file says "actions" with "actionName"): a
//     message with only "actions" is answered by a validationError that
//     references topic=instantActions and headerId=<the headerId we sent>,
//     and stays in exactly 5 published states. Under "instantActions" an
//     action needs actionType; an additional actionName is accepted
//     (ignored); actionName alone is a validationError.
//   - cancelOrder: actionState RUNNING then FINISHED, with nodeStates and
//     edgeStates emptied in the FINISHED state; the vehicle stops where it is
//     (between nodes) and keeps orderId and lastNodeId.
//   - an order whose first node is farther than 0.5 m
//     (agvNormalDeviationXyTolerance) from the vehicle: noRouteError with
//     references topic=order, headerId, orderId, orderUpdateId, nodeId,
//     nodePosition.allowedDeviationXy="0.5"; that error stays in every state
//     until an order is accepted.
//
// FLEETFLOW_CAPTURE_SAMPLES=1 writes the payloads it sees into
// testdata/vda5050/samples/vda5050-lib-2.0/; a normal run writes nothing.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetflow/fleetflow/internal/thirdparty"
)

const (
	libDir       = "../../testdata/thirdparty/vda5050-lib"
	samplesDir   = "../../testdata/vda5050/samples/vda5050-lib-2.0"
	manufacturer = "fleetflow-thirdparty"
	mapID        = "ffmap"
	waitTimeout  = 5 * time.Second
)

func TestVDA5050Lib(t *testing.T) {
	if err := thirdparty.VDA5050LibInstalled(libDir); err != nil {
		if !errors.Is(err, thirdparty.ErrNotInstalled) {
			t.Fatal(err)
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set, so this fails instead of skipping)", err)
		}
		t.Skipf("skipping: %v (with CI set this fails)", err)
	}
	broker := os.Getenv("MQTT_URL")
	if broker == "" {
		broker = "tcp://127.0.0.1:1883"
	}
	serial := "vdalib-" + randomHex(t, 4)
	s := newSession(t, broker, serial)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := s.rec.mark()
	p, err := thirdparty.StartVDA5050Lib(ctx, thirdparty.Options{
		BrokerURL: broker,
		AGVs: []thirdparty.AGV{{
			Manufacturer: manufacturer, SerialNumber: serial,
			MapID: mapID, X: 0, Y: 0, Theta: 0, LastNodeID: "S0",
			BatteryCharge: 90, Speed: 5,
		}},
		Dir:    libDir,
		Stderr: logWriter{t},
	})
	if err != nil {
		if errors.Is(err, thirdparty.ErrNotInstalled) && os.Getenv("CI") == "" {
			t.Skipf("skipping: %v (with CI set this fails)", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Error(err)
		}
	})

	t.Run("a/connection-online-and-state", func(t *testing.T) {
		m := s.rec.waitFor(t, start, "connection", "connection ONLINE", func(raw []byte) bool {
			return field(raw, "connectionState") == "ONLINE"
		})
		var hdr struct{ HeaderID int64 }
		mustUnmarshal(t, m.payload, &hdr)
		if hdr.HeaderID != 1 {
			t.Errorf("ONLINE headerId = %d; observed so far: 1 (the last will took 0)", hdr.HeaderID)
		}
		retained := s.retained(t, "connection")
		if field(retained, "connectionState") != "ONLINE" {
			t.Errorf("retained connection = %s, want ONLINE", retained)
		}
		s.sample(t, "connection-online.json", retained)

		st := s.waitState(t, start, "a first state", func(st state) bool { return true })
		if st.Version != "2.0.0" || st.Manufacturer != manufacturer || st.SerialNumber != serial {
			t.Errorf("state header = %q %q %q", st.Version, st.Manufacturer, st.SerialNumber)
		}
		if st.LastNodeID != "S0" || st.OperatingMode != "AUTOMATIC" || st.AgvPosition == nil ||
			st.AgvPosition.MapID != mapID || st.AgvPosition.X != 0 || st.AgvPosition.Y != 0 {
			t.Errorf("initial state = %s", st.raw)
		}
		if st.BatteryState.BatteryCharge != 90 {
			t.Errorf("batteryCharge = %v, want 90", st.BatteryState.BatteryCharge)
		}
	})

	t.Run("a/factsheet", func(t *testing.T) {
		from := s.rec.mark()
		hid := s.instantActions(t, "instantActions", action("fs-1", "factsheetRequest", false))
		m := s.rec.waitFor(t, from, "factsheet", "factsheet", func([]byte) bool { return true })
		var fs map[string]any
		mustUnmarshal(t, m.payload, &fs)
		if fs["version"] != "2.0.0" {
			t.Errorf("factsheet version = %v", fs["version"])
		}
		for _, k := range []string{"typeSpecification", "physicalParameters", "protocolLimits", "protocolFeatures", "agvGeometry", "loadSpecification"} {
			if _, ok := fs[k]; ok {
				t.Errorf("factsheet has %s; observed so far: header only", k)
			}
		}
		if retained := s.retained(t, "factsheet"); len(retained) == 0 {
			t.Error("factsheet not retained")
		}
		s.sample(t, "factsheet.json", m.payload)
		s.waitState(t, from, "fs-1 FINISHED", func(st state) bool {
			a := st.action("fs-1")
			return a != nil && a.ActionStatus == "FINISHED" && a.ResultDescription == "Reported new factsheet"
		})
		t.Logf("factsheetRequest headerId %d answered by factsheet %s", hid, m.payload)
	})

	t.Run("b/order-nodeStates-without-theta", func(t *testing.T) {
		from := s.rec.mark()
		orderID := "o1-" + serial
		s.order(t, orderID, []point{{0, 0}, {2, 0}, {2, 2}})
		st := s.waitState(t, from, "driving "+orderID, func(st state) bool {
			return st.OrderID == orderID && st.Driving && len(st.NodeStates) > 0
		})
		for _, n := range st.NodeStates {
			if n.NodePosition == nil {
				t.Fatalf("nodeState %s has no nodePosition: %s", n.NodeID, st.raw)
			}
			if _, ok := n.NodePosition["theta"]; ok {
				t.Errorf("nodeState %s nodePosition has theta; observed so far: copied from the order, so none", n.NodeID)
			}
			for _, k := range []string{"x", "y", "mapId"} {
				if _, ok := n.NodePosition[k]; !ok {
					t.Errorf("nodeState %s nodePosition lacks %s", n.NodeID, k)
				}
			}
		}
		s.sample(t, "state-driving-theta-missing.json", st.raw)
		done := s.waitState(t, from, orderID+" completed", func(st state) bool {
			return st.OrderID == orderID && len(st.NodeStates) == 0 && len(st.EdgeStates) == 0 && !st.Driving
		})
		if done.LastNodeID != "N3" || done.LastNodeSequenceID != 4 || done.AgvPosition == nil ||
			done.AgvPosition.X != 2 || done.AgvPosition.Y != 2 {
			t.Errorf("completed state = %s", done.raw)
		}
	})

	t.Run("c/instantActions-under-actions-key-rejected", func(t *testing.T) {
		from := s.rec.mark()
		hid := s.instantActions(t, "actions", action("ia-actions-1", "stateRequest", true))
		st := s.waitState(t, from, "validationError for instantActions headerId", func(st state) bool {
			return st.validationError(hid) != nil
		})
		e := st.validationError(hid)
		if e.ErrorLevel != "WARNING" || !strings.Contains(e.ErrorDescription, "#/instantActions") {
			t.Errorf("error = %+v", *e)
		}
		if st.action("ia-actions-1") != nil {
			t.Errorf("action under \"actions\" was executed: %s", st.raw)
		}
		s.sample(t, "state-instantactions-validation-error.json", st.raw)

		// How long it stays: publish states (stateRequest) until it is gone.
		with := s.rec.count(from, "state", func(raw []byte) bool { return decodeState(raw).validationError(hid) != nil })
		for i := 0; i < 10; i++ {
			id := fmt.Sprintf("sr-%d", i)
			m := s.rec.mark()
			s.instantActions(t, "instantActions", action(id, "stateRequest", false))
			st := s.waitState(t, m, id+" FINISHED", func(st state) bool {
				a := st.action(id)
				return a != nil && a.ActionStatus == "FINISHED"
			})
			if st.validationError(hid) == nil {
				break
			}
			with++
		}
		if with != 5 {
			t.Errorf("validationError was in %d published states; observed so far: 5 (finalInstantActionStateChangePublishCount)", with)
		}
		t.Logf("instantActions validationError stayed in %d published states", with)
	})

	t.Run("d/instantActions-key", func(t *testing.T) {
		pos := s.position(t)
		from := s.rec.mark()
		orderID := "o2-" + serial
		s.order(t, orderID, []point{pos, {pos.x + 10, pos.y}, {pos.x + 10, pos.y + 10}})
		s.waitState(t, from, "driving "+orderID, func(st state) bool {
			return st.OrderID == orderID && st.Driving && len(st.NodeStates) > 0
		})
		// While it drives an edge it publishes no state, only visualization
		// (every second): cancel once that shows it between N1 and N2.
		s.rec.waitFor(t, from, "visualization", "agvPosition past N1", func(raw []byte) bool {
			st := decodeState(raw)
			return st.AgvPosition != nil && st.AgvPosition.X > pos.x+0.5
		})
		m := s.rec.mark()
		s.instantActions(t, "instantActions", action("cancel-1", "cancelOrder", false))
		st := s.waitState(t, m, "cancel-1 FINISHED", func(st state) bool {
			a := st.action("cancel-1")
			return a != nil && a.ActionStatus == "FINISHED"
		})
		if len(st.NodeStates) != 0 || len(st.EdgeStates) != 0 || st.Driving {
			t.Errorf("state with cancel FINISHED still has the order: %s", st.raw)
		}
		if st.OrderID != orderID || st.LastNodeID != "N1" {
			t.Errorf("after cancel orderId=%q lastNodeId=%q; observed so far: kept (%s, N1)", st.OrderID, st.LastNodeID, orderID)
		}
		if st.AgvPosition == nil || st.AgvPosition.X <= pos.x || st.AgvPosition.X >= pos.x+10 {
			t.Errorf("after cancel agvPosition = %+v; observed so far: stopped between N1 and N2", st.AgvPosition)
		}
		if s.rec.count(m, "state", func(raw []byte) bool {
			a := decodeState(raw).action("cancel-1")
			return a != nil && a.ActionStatus == "RUNNING"
		}) == 0 {
			t.Error("cancel-1 never reported RUNNING")
		}
		s.sample(t, "state-cancel-finished.json", st.raw)

		// actionType and actionName both, under "instantActions": accepted.
		m = s.rec.mark()
		hid := s.instantActions(t, "instantActions", action("both-1", "stateRequest", true))
		st = s.waitState(t, m, "both-1 ended or rejected", func(st state) bool {
			return st.action("both-1") != nil || st.validationError(hid) != nil
		})
		if a := st.action("both-1"); a == nil || a.ActionStatus != "FINISHED" || st.validationError(hid) != nil {
			t.Errorf("actionType+actionName under instantActions: %s; observed so far: accepted, FINISHED", st.raw)
		}

		// actionName alone, under "instantActions": a validationError.
		m = s.rec.mark()
		hid = s.instantActions(t, "instantActions", map[string]any{"actionId": "name-1", "actionName": "stateRequest", "blockingType": "NONE"})
		st = s.waitState(t, m, "name-1 ended or rejected", func(st state) bool {
			return st.action("name-1") != nil || st.validationError(hid) != nil
		})
		if st.validationError(hid) == nil || st.action("name-1") != nil {
			t.Errorf("actionName without actionType under instantActions: %s; observed so far: validationError", st.raw)
		}
		s.flushInstantActionErrors(t)
	})

	t.Run("e/first-node-5m-away-noRouteError", func(t *testing.T) {
		pos := s.position(t)
		from := s.rec.mark()
		orderID := "o3-" + serial
		hid := s.order(t, orderID, []point{{pos.x + 5, pos.y}, {pos.x + 6, pos.y}})
		st := s.waitState(t, from, "noRouteError for "+orderID, func(st state) bool {
			return st.errorOf("noRouteError", "orderId", orderID) != nil
		})
		e := st.errorOf("noRouteError", "orderId", orderID)
		want := map[string]string{
			"topic": "order", "headerId": fmt.Sprint(hid), "orderId": orderID, "orderUpdateId": "0",
			"nodeId": "N1", "nodePosition.allowedDeviationXy": "0.5",
		}
		for k, v := range want {
			if got, ok := e.ref(k); !ok || got != v {
				t.Errorf("noRouteError reference %s = %q (present %v), want %q; error %+v", k, got, ok, v, *e)
			}
		}
		if st.OrderID == orderID || len(st.NodeStates) != 0 {
			t.Errorf("refused order was taken on: %s", st.raw)
		}
		s.sample(t, "state-noroute.json", st.raw)

		// Order errors stay until an order is accepted.
		m := s.rec.mark()
		s.instantActions(t, "instantActions", action("sr-after-noroute", "stateRequest", false))
		st = s.waitState(t, m, "sr-after-noroute FINISHED", func(st state) bool {
			a := st.action("sr-after-noroute")
			return a != nil && a.ActionStatus == "FINISHED"
		})
		if st.errorOf("noRouteError", "orderId", orderID) == nil {
			t.Errorf("noRouteError gone after one more state; observed so far: kept until an order is accepted")
		}
		m = s.rec.mark()
		next := "o4-" + serial
		s.order(t, next, []point{pos, {pos.x + 1, pos.y}})
		st = s.waitState(t, m, next+" accepted", func(st state) bool { return st.OrderID == next })
		if st.errorOf("noRouteError", "orderId", orderID) != nil {
			t.Errorf("noRouteError still there after %s was accepted: %s", next, st.raw)
		}
		s.waitState(t, m, next+" completed", func(st state) bool {
			return st.OrderID == next && len(st.NodeStates) == 0 && !st.Driving
		})
	})

	t.Run("stop-publishes-offline", func(t *testing.T) {
		from := s.rec.mark()
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		s.rec.waitFor(t, from, "connection", "connection OFFLINE", func(raw []byte) bool {
			return field(raw, "connectionState") == "OFFLINE"
		})
		if got := field(s.retained(t, "connection"), "connectionState"); got != "OFFLINE" {
			t.Errorf("retained connection after stop = %q, want OFFLINE", got)
		}
	})
}

// session is the test's side of the conversation with one vehicle.
type session struct {
	broker, serial string
	client         mqtt.Client
	rec            *recorder
	headerIDs      map[string]int64
}

func newSession(t *testing.T, broker, serial string) *session {
	t.Helper()
	s := &session{broker: broker, serial: serial, rec: newRecorder(), headerIDs: map[string]int64{}}
	s.client = connect(t, broker, "ff-thirdparty-test-"+serial)
	tok := s.client.Subscribe(s.topic("#"), 0, func(_ mqtt.Client, m mqtt.Message) {
		s.rec.add(m.Topic()[strings.LastIndex(m.Topic(), "/")+1:], m.Payload(), m.Retained())
	})
	if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", s.topic("#"), tok.Error())
	}
	t.Cleanup(func() {
		// Leave no retained messages of this throwaway serial behind.
		for _, sub := range []string{"connection", "factsheet"} {
			s.client.Publish(s.topic(sub), 1, true, []byte{}).WaitTimeout(waitTimeout)
		}
		s.client.Disconnect(250)
	})
	return s
}

func connect(t *testing.T, broker, clientID string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetAutoReconnect(false).SetConnectTimeout(waitTimeout))
	if tok := c.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("MQTT broker %s: %v", broker, tok.Error())
	}
	return c
}

func (s *session) topic(sub string) string {
	return "uagv/v2/" + manufacturer + "/" + s.serial + "/" + sub
}

// retained returns the retained message on topic sub, read by a fresh
// subscription (a live message never carries the retain flag).
func (s *session) retained(t *testing.T, sub string) []byte {
	t.Helper()
	c := connect(t, s.broker, "ff-thirdparty-retained-"+randomHex(t, 4))
	defer c.Disconnect(100)
	got := make(chan []byte, 1)
	tok := c.Subscribe(s.topic(sub), 0, func(_ mqtt.Client, m mqtt.Message) {
		if m.Retained() {
			select {
			case got <- m.Payload():
			default:
			}
		}
	})
	if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", s.topic(sub), tok.Error())
	}
	select {
	case raw := <-got:
		return raw
	case <-time.After(2 * time.Second):
		t.Errorf("no retained message on %s", s.topic(sub))
		return nil
	}
}

func (s *session) publish(t *testing.T, sub string, msg map[string]any) int64 {
	t.Helper()
	hid := s.headerIDs[sub]
	s.headerIDs[sub]++
	msg["headerId"] = hid
	msg["timestamp"] = time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	msg["version"] = "2.0.0"
	msg["manufacturer"] = manufacturer
	msg["serialNumber"] = s.serial
	raw, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if tok := s.client.Publish(s.topic(sub), 1, false, raw); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", sub, tok.Error())
	}
	return hid
}

// instantActions sends actions with the array under key ("instantActions" or
// "actions") and returns the headerId it used.
func (s *session) instantActions(t *testing.T, key string, actions ...map[string]any) int64 {
	t.Helper()
	return s.publish(t, "instantActions", map[string]any{key: actions})
}

func action(id, actionType string, withName bool) map[string]any {
	a := map[string]any{"actionId": id, "actionType": actionType, "blockingType": "NONE"}
	if withName {
		a["actionName"] = actionType
	}
	return a
}

type point struct{ x, y float64 }

// order sends a VDA 5050 2.0 order through pts (nodes N1, N2, ..., no theta,
// no actions, edges with length) and returns its headerId.
func (s *session) order(t *testing.T, orderID string, pts []point) int64 {
	t.Helper()
	var nodes, edges []map[string]any
	for i, p := range pts {
		nodes = append(nodes, map[string]any{
			"nodeId": fmt.Sprintf("N%d", i+1), "sequenceId": 2 * i, "released": true, "actions": []any{},
			"nodePosition": map[string]any{"x": p.x, "y": p.y, "mapId": mapID},
		})
		if i > 0 {
			edges = append(edges, map[string]any{
				"edgeId": fmt.Sprintf("E%d", i), "sequenceId": 2*i - 1, "released": true, "actions": []any{},
				"startNodeId": fmt.Sprintf("N%d", i), "endNodeId": fmt.Sprintf("N%d", i+1),
				"length": math.Hypot(p.x-pts[i-1].x, p.y-pts[i-1].y),
			})
		}
	}
	return s.publish(t, "order", map[string]any{
		"orderId": orderID, "orderUpdateId": 0, "nodes": nodes, "edges": edges,
	})
}

func (s *session) waitState(t *testing.T, from int, what string, pred func(state) bool) state {
	t.Helper()
	m := s.rec.waitFor(t, from, "state", what, func(raw []byte) bool { return pred(decodeState(raw)) })
	return decodeState(m.payload)
}

// flushInstantActionErrors sends stateRequests until a state has no
// instantActions validationError left (each stays in 5 published states).
func (s *session) flushInstantActionErrors(t *testing.T) {
	t.Helper()
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("flush-%d", i)
		m := s.rec.mark()
		s.instantActions(t, "instantActions", action(id, "stateRequest", false))
		st := s.waitState(t, m, id+" FINISHED", func(st state) bool {
			a := st.action(id)
			return a != nil && a.ActionStatus == "FINISHED"
		})
		if st.errorOf("validationError", "topic", "instantActions") == nil {
			return
		}
	}
	t.Fatal("instantActions validationErrors still in the state after 10 stateRequests")
}

// position is where the vehicle is now, from its latest state.
func (s *session) position(t *testing.T) point {
	t.Helper()
	raw := s.rec.last("state")
	st := decodeState(raw)
	if st.AgvPosition == nil {
		t.Fatalf("latest state has no agvPosition: %s", raw)
	}
	return point{st.AgvPosition.X, st.AgvPosition.Y}
}

// sample writes raw, indented, into samplesDir when FLEETFLOW_CAPTURE_SAMPLES=1.
func (s *session) sample(t *testing.T, name string, raw []byte) {
	t.Helper()
	if os.Getenv("FLEETFLOW_CAPTURE_SAMPLES") != "1" || len(raw) == 0 {
		return
	}
	var v any
	mustUnmarshal(t, raw, &v)
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(samplesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(samplesDir, name)
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

// state is the part of a VDA 5050 2.0 state the test reads; nodePosition
// stays a map so that a missing theta is visible.
type state struct {
	raw                                 []byte
	HeaderID                            int64
	Version, Manufacturer, SerialNumber string
	OrderID                             string
	OrderUpdateID                       int64
	LastNodeID                          string
	LastNodeSequenceID                  int64
	Driving                             bool
	OperatingMode                       string
	NodeStates                          []struct {
		NodeID       string
		SequenceID   int64
		NodePosition map[string]any
	}
	EdgeStates   []json.RawMessage
	ActionStates []struct{ ActionID, ActionType, ActionStatus, ResultDescription string }
	Errors       []vdaError
	AgvPosition  *struct {
		X, Y, Theta float64
		MapID       string
	}
	BatteryState struct{ BatteryCharge float64 }
}

type vdaError struct {
	ErrorType, ErrorLevel, ErrorDescription string
	ErrorReferences                         []struct{ ReferenceKey, ReferenceValue string }
}

func (e *vdaError) ref(key string) (string, bool) {
	for _, r := range e.ErrorReferences {
		if r.ReferenceKey == key {
			return r.ReferenceValue, true
		}
	}
	return "", false
}

func decodeState(raw []byte) state {
	var st state
	json.Unmarshal(raw, &st) // a payload that is not a state matches nothing
	st.raw = raw
	return st
}

func (st state) action(id string) *struct{ ActionID, ActionType, ActionStatus, ResultDescription string } {
	for i := range st.ActionStates {
		if st.ActionStates[i].ActionID == id {
			return &st.ActionStates[i]
		}
	}
	return nil
}

func (st state) errorOf(errorType, refKey, refValue string) *vdaError {
	for i := range st.Errors {
		if v, ok := st.Errors[i].ref(refKey); ok && v == refValue && st.Errors[i].ErrorType == errorType {
			return &st.Errors[i]
		}
	}
	return nil
}

// validationError is the instantActions validationError for headerId hid.
func (st state) validationError(hid int64) *vdaError {
	e := st.errorOf("validationError", "headerId", fmt.Sprint(hid))
	if e == nil {
		return nil
	}
	if topic, _ := e.ref("topic"); topic != "instantActions" {
		return nil
	}
	return e
}

func field(raw []byte, key string) string {
	var m map[string]any
	json.Unmarshal(raw, &m)
	s, _ := m[key].(string)
	return s
}

// recorder keeps every message of the vehicle, in arrival order.
type recorder struct {
	mu     sync.Mutex
	msgs   []message
	notify chan struct{}
}

type message struct {
	sub      string // last topic level: state, connection, factsheet, ...
	payload  []byte
	retained bool
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{})} }

func (r *recorder) add(sub string, payload []byte, retained bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, message{sub, append([]byte(nil), payload...), retained})
	close(r.notify)
	r.notify = make(chan struct{})
}

// mark is the index of the next message to arrive.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *recorder) count(from int, sub string, pred func([]byte) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs[from:] {
		if m.sub == sub && pred(m.payload) {
			n++
		}
	}
	return n
}

func (r *recorder) last(sub string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.msgs) - 1; i >= 0; i-- {
		if r.msgs[i].sub == sub {
			return r.msgs[i].payload
		}
	}
	return nil
}

// waitFor returns the first message on sub from index from on that pred
// accepts, failing the test after waitTimeout.
func (r *recorder) waitFor(t *testing.T, from int, sub, what string, pred func([]byte) bool) message {
	t.Helper()
	deadline := time.After(waitTimeout)
	for i := from; ; {
		r.mu.Lock()
		for ; i < len(r.msgs); i++ {
			if m := r.msgs[i]; m.sub == sub && pred(m.payload) {
				r.mu.Unlock()
				return m
			}
		}
		notify := r.notify
		r.mu.Unlock()
		select {
		case <-notify:
		case <-deadline:
			t.Fatalf("no %s message within %s (%s); latest %s: %s", sub, waitTimeout, what, sub, r.last(sub))
		}
	}
}

// logWriter sends the runner's stderr to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Logf("agv.js: %s", line)
	}
	return len(b), nil
}

func mustUnmarshal(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

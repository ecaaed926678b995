package sim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fleetflow/fleetflow/internal/vda5050"
)

// brokerURL is the broker every test talks to: $MQTT_URL, else the local
// Mosquitto on 127.0.0.1:1883, else an embedded mochi broker
// (MQTT_URL=embedded forces the embedded one).
var brokerURL string

func TestMain(m *testing.M) {
	url, stop, err := testBroker()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sim tests: no broker:", err)
		os.Exit(1)
	}
	brokerURL = url
	code := m.Run()
	stop()
	os.Exit(code)
}

func testBroker() (string, func(), error) {
	u := os.Getenv("MQTT_URL")
	if u != "" && u != "embedded" {
		return u, func() {}, nil
	}
	if u == "" {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:1883", 500*time.Millisecond); err == nil {
			c.Close()
			return "tcp://127.0.0.1:1883", func() {}, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	l.Close()
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return "", nil, err
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "sim-test", Address: addr})); err != nil {
		return "", nil, err
	}
	go func() { _ = srv.Serve() }()
	return "tcp://" + addr, func() { _ = srv.Close() }, nil
}

const (
	testManufacturer = "fleetflow-simtest"
	testMap          = "map-1"
	waitLong         = 10 * time.Second
)

func suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newClient connects a plain paho client for the test's side of the wire.
func newClient(t *testing.T) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("simtest-" + suffix()).SetAutoReconnect(false))
	tok := c.Connect()
	if !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		t.Fatalf("test client connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// msg is one message the observer saw.
type msg struct {
	topic    vda5050.Topic
	raw      []byte
	retained bool
	state    vda5050.State // set for state messages
	conn     vda5050.ConnectionState
}

// observer records every message a robot publishes and checks each state
// against the official schema.
type observer struct {
	mu      sync.Mutex
	msgs    []msg
	invalid []string
	// deviations counts, by kind, how the robot's states broke their
	// schema in tolerated ways (robots with EchoNodePositions).
	deviations map[string]int
	changed    chan struct{}
}

// observe records robot k's messages; prof (resolved) says its topics and
// the edition every state and connection is checked against. tolerate
// lists deviation kinds the robot is expected to show (vda5050.DecodeState).
func observe(t *testing.T, k vda5050.RobotKey, prof vda5050.Profile, tolerate ...string) *observer {
	t.Helper()
	o := &observer{changed: make(chan struct{}, 1), deviations: map[string]int{}}
	c := newClient(t)
	filter := prof.Topic(k, "#")
	ed := prof.Edition()
	tok := c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		_, topic, err := vda5050.ParseTopic(m.Topic())
		if err != nil || topic == vda5050.TopicOrder || topic == vda5050.TopicInstantActions {
			return
		}
		rec := msg{topic: topic, raw: append([]byte(nil), m.Payload()...), retained: m.Retained()}
		o.mu.Lock()
		defer o.mu.Unlock()
		switch topic {
		case vda5050.TopicState:
			if err := vda5050.ValidateEdition(ed, vda5050.TopicState, rec.raw); err != nil {
				in, derr := vda5050.DecodeState(ed, rec.raw)
				if derr != nil {
					o.invalid = append(o.invalid, err.Error())
				}
				for _, d := range in.Deviations {
					o.deviations[d.Kind]++
					if !slices.Contains(tolerate, d.Kind) {
						o.invalid = append(o.invalid, err.Error())
					}
				}
			}
			if in, err := vda5050.DecodeState(ed, rec.raw); err == nil {
				rec.state = in.State
			}
		case vda5050.TopicConnection:
			if len(rec.raw) == 0 {
				return // a cleared retained message
			}
			var cm vda5050.Connection
			if err := vda5050.ValidateEdition(ed, vda5050.TopicConnection, rec.raw); err != nil {
				o.invalid = append(o.invalid, err.Error())
			}
			_ = json.Unmarshal(rec.raw, &cm)
			rec.conn = cm.ConnectionState
		}
		o.msgs = append(o.msgs, rec)
		select {
		case o.changed <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		t.Fatalf("observer subscribe: %v", tok.Error())
	}
	t.Cleanup(func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, e := range o.invalid {
			t.Errorf("robot sent a message the schema refuses: %s", e)
		}
	})
	return o
}

// mark returns a position in the record; waits look only after it.
func (o *observer) mark() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.msgs)
}

// wait returns the first message at or after from that satisfies ok.
func (o *observer) wait(t *testing.T, from int, what string, ok func(msg) bool) msg {
	t.Helper()
	deadline := time.After(waitLong)
	for {
		o.mu.Lock()
		for i := from; i < len(o.msgs); i++ {
			if ok(o.msgs[i]) {
				m := o.msgs[i]
				o.mu.Unlock()
				return m
			}
		}
		from = len(o.msgs)
		o.mu.Unlock()
		select {
		case <-o.changed:
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s", waitLong, what)
		}
	}
}

func (o *observer) waitState(t *testing.T, from int, what string, ok func(vda5050.State) bool) vda5050.State {
	t.Helper()
	return o.wait(t, from, what, func(m msg) bool { return m.topic == vda5050.TopicState && ok(m.state) }).state
}

func (o *observer) waitConn(t *testing.T, from int, want vda5050.ConnectionState) msg {
	t.Helper()
	return o.wait(t, from, "connection "+string(want), func(m msg) bool {
		return m.topic == vda5050.TopicConnection && m.conn == want
	})
}

// states returns the states seen from index from on.
func (o *observer) states(from int) []vda5050.State {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []vda5050.State
	for _, m := range o.msgs[from:] {
		if m.topic == vda5050.TopicState {
			out = append(out, m.state)
		}
	}
	return out
}

// rig is one started robot with an observer and a sender.
type rig struct {
	fleet   *Fleet
	robot   *Robot
	key     vda5050.RobotKey
	profile vda5050.Profile // resolved
	obs     *observer
	client  mqtt.Client
	headers vda5050.HeaderCounter
}

func start(t *testing.T, opts Options) *rig {
	t.Helper()
	return startWith(t, opts, nil)
}

// startWith starts one robot whose config the test may change first.
func startWith(t *testing.T, opts Options, configure func(*RobotConfig)) *rig {
	t.Helper()
	cfg := RobotConfig{
		Manufacturer: testManufacturer, SerialNumber: "R-" + suffix(), Model: "sim-test",
		StartNode: "A", X: 0, Y: 0, MapID: testMap, SoftwareVersion: "1.2.3",
	}
	if configure != nil {
		configure(&cfg)
	}
	k := vda5050.RobotKey{Manufacturer: cfg.Manufacturer, SerialNumber: cfg.SerialNumber}
	opts.BrokerURL = brokerURL
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	prof := cfg.Profile.Resolve("")
	var tolerate []string
	if cfg.EchoNodePositions {
		tolerate = append(tolerate, vda5050.DeviationThetaMissing)
	}
	rg := &rig{key: k, profile: prof, obs: observe(t, k, prof, tolerate...), client: newClient(t)}
	rg.fleet = NewFleet(opts, []RobotConfig{cfg})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := rg.fleet.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	rg.robot = rg.fleet.Robot(cfg.SerialNumber)
	t.Cleanup(func() {
		rg.fleet.Stop()
		// Mosquitto keeps retained messages: clear this robot's.
		rg.client.Publish(prof.Topic(k, vda5050.TopicConnection), 1, true, []byte{}).WaitTimeout(time.Second)
	})
	return rg
}

// send writes msg as fleetflow does for this robot's profile.
func (rg *rig) send(t *testing.T, topic vda5050.Topic, msg any) {
	t.Helper()
	var raw []byte
	var err error
	switch m := msg.(type) {
	case vda5050.Order:
		raw, err = rg.profile.EncodeOrder(m)
	case vda5050.InstantActions:
		raw, err = rg.profile.EncodeInstantActions(m)
	default:
		raw, err = vda5050.Encode(topic, msg)
	}
	if err != nil {
		t.Fatalf("test built an invalid %s: %v", topic, err)
	}
	rg.sendRaw(t, topic, raw)
}

func (rg *rig) sendRaw(t *testing.T, topic vda5050.Topic, raw []byte) {
	t.Helper()
	tok := rg.client.Publish(rg.profile.Topic(rg.key, topic), 0, false, raw)
	if !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func (rg *rig) header(topic vda5050.Topic) vda5050.Header {
	return rg.headers.Next(string(topic), rg.key, time.Now())
}

func (rg *rig) sendOrder(t *testing.T, o vda5050.Order) {
	t.Helper()
	o.Header = rg.header(vda5050.TopicOrder)
	rg.send(t, vda5050.TopicOrder, o)
}

func (rg *rig) instant(t *testing.T, actions ...vda5050.Action) {
	t.Helper()
	rg.send(t, vda5050.TopicInstantActions, vda5050.InstantActions{Header: rg.header(vda5050.TopicInstantActions), Actions: actions})
}

func act(typ, id string, params ...vda5050.ActionParameter) vda5050.Action {
	return vda5050.Action{ActionType: typ, ActionID: id, BlockingType: vda5050.BlockingHard, ActionParameters: params}
}

// pt is a node of a test order: nodeId, position in metres, node actions.
type pt struct {
	id      string
	x, y    float64
	actions []vda5050.Action
}

// order builds nodes pts joined by edges, sequenceIds from firstSeq; the
// first `released` nodes (all when 0) form the base.
func order(id string, upd uint32, firstSeq, released int, pts ...pt) vda5050.Order {
	if released == 0 {
		released = len(pts)
	}
	o := vda5050.Order{OrderID: id, OrderUpdateID: upd, Nodes: []vda5050.Node{}, Edges: []vda5050.Edge{}}
	for i, p := range pts {
		acts := p.actions
		if acts == nil {
			acts = []vda5050.Action{}
		}
		o.Nodes = append(o.Nodes, vda5050.Node{NodeID: p.id, SequenceID: firstSeq + 2*i, Released: i < released,
			NodePosition: &vda5050.NodePosition{X: p.x, Y: p.y, MapID: testMap}, Actions: acts})
		if i > 0 {
			o.Edges = append(o.Edges, vda5050.Edge{EdgeID: pts[i-1].id + "-" + p.id, SequenceID: firstSeq + 2*i - 1, Released: i < released,
				StartNodeID: pts[i-1].id, EndNodeID: p.id, Actions: []vda5050.Action{}})
		}
	}
	return o
}

func status(s vda5050.State, actionID string) vda5050.ActionStatus {
	if a := s.ActionStateOf(actionID); a != nil {
		return a.ActionStatus
	}
	return ""
}

func errorOf(s vda5050.State, errorType string) *vda5050.Error {
	for i := range s.Errors {
		if s.Errors[i].ErrorType == errorType {
			return &s.Errors[i]
		}
	}
	return nil
}

func refValue(e *vda5050.Error, key string) string {
	for _, r := range e.ErrorReferences {
		if r.ReferenceKey == key {
			return r.ReferenceValue
		}
	}
	return ""
}

func finished(s vda5050.State, orderID, lastNode string) bool {
	return s.OrderID == orderID && s.LastNodeID == lastNode && len(s.NodeStates) == 0 && len(s.EdgeStates) == 0 && !s.Driving
}

func TestConnectionOnlineRetainedThenOfflineOnStop(t *testing.T) {
	rg := start(t, Options{})
	topic := vda5050.TopicFor(rg.key, vda5050.TopicConnection)

	// A subscriber that comes after the connect still gets ONLINE: retained.
	late := observe(t, rg.key, rg.profile)
	m := late.waitConn(t, 0, vda5050.ConnectionOnline)
	if !m.retained {
		t.Errorf("ONLINE on %s was not retained", topic)
	}
	// The first state after connecting reports the initial pose.
	s := rg.obs.waitState(t, 0, "initial state", func(vda5050.State) bool { return true })
	if s.LastNodeID != "A" || s.OrderID != "" || s.OperatingMode != "AUTOMATIC" || s.AGVPosition == nil || !s.AGVPosition.PositionInitialized {
		t.Errorf("initial state: %+v", s)
	}
	if len(s.Information) != 1 || s.Information[0].InfoType != "softwareVersion" || s.Information[0].InfoDescription != "1.2.3" {
		t.Errorf("information: %+v", s.Information)
	}

	rg.fleet.Stop()
	after := observe(t, rg.key, rg.profile)
	if m := after.waitConn(t, 0, vda5050.ConnectionOffline); !m.retained {
		t.Errorf("OFFLINE after Stop was not retained")
	}
}

func TestOrderDrivenToEndWithPickAndDrop(t *testing.T) {
	rg := start(t, Options{Speed: 10, ActionDuration: 100 * time.Millisecond})
	from := rg.obs.mark()
	began := time.Now()
	rg.sendOrder(t, order("o-drive", 0, 0, 0,
		pt{id: "A", x: 0, y: 0},
		pt{id: "B", x: 2, y: 0, actions: []vda5050.Action{act(vda5050.ActionPick, "a-pick")}},
		pt{id: "C", x: 2, y: 2, actions: []vda5050.Action{act(vda5050.ActionDrop, "a-drop")}},
	))

	accepted := rg.obs.waitState(t, from, "order accepted", func(s vda5050.State) bool { return s.OrderID == "o-drive" })
	if status(accepted, "a-drop") != vda5050.ActionWaiting {
		t.Errorf("drop should start WAITING when the order is accepted, got %q", status(accepted, "a-drop"))
	}
	end := rg.obs.waitState(t, from, "order finished", func(s vda5050.State) bool {
		return finished(s, "o-drive", "C") && status(s, "a-drop") == vda5050.ActionFinished
	})
	if elapsed := time.Since(began); elapsed < 500*time.Millisecond {
		t.Errorf("4 m at 10 m/s plus two 100 ms actions took only %s", elapsed)
	}
	if status(end, "a-pick") != vda5050.ActionFinished {
		t.Errorf("pick: %q", status(end, "a-pick"))
	}
	if end.LastNodeSequenceID != 4 {
		t.Errorf("lastNodeSequenceId = %d, want 4", end.LastNodeSequenceID)
	}
	if p := end.AGVPosition; math.Abs(p.X-2) > 1e-6 || math.Abs(p.Y-2) > 1e-6 {
		t.Errorf("final position (%.3f, %.3f), want (2, 2)", p.X, p.Y)
	}
	if got, want := end.BatteryState.BatteryCharge, 100-4*DefaultBatteryDrainPerMetre; math.Abs(got-want) > 1e-6 {
		t.Errorf("battery %.4f%%, want %.4f%% after 4 m", got, want)
	}

	// Along the way: B reached with C still ahead, and the HARD pick held
	// the robot at B while it ran.
	var sawB, sawPickRunning bool
	for _, s := range rg.obs.states(from) {
		if s.LastNodeID == "B" && len(s.NodeStates) == 1 && s.NodeStates[0].NodeID == "C" {
			sawB = true
		}
		if status(s, "a-pick") == vda5050.ActionRunning {
			sawPickRunning = true
			if s.Driving {
				t.Errorf("driving while the HARD pick runs: %+v", s)
			}
		}
	}
	if !sawB || !sawPickRunning {
		t.Errorf("states along the route: reached B %v, pick RUNNING %v", sawB, sawPickRunning)
	}
}

func TestDuplicateOrderUpdateIgnored(t *testing.T) {
	rg := start(t, Options{})
	o := order("o-dup", 0, 0, 0, pt{id: "A"}, pt{id: "B", x: 1, actions: []vda5050.Action{act(vda5050.ActionPick, "dup-pick")}})
	from := rg.obs.mark()
	rg.sendOrder(t, o)
	rg.obs.waitState(t, from, "order finished", func(s vda5050.State) bool { return finished(s, "o-dup", "B") })

	from = rg.obs.mark()
	rg.sendOrder(t, o) // same orderId and orderUpdateId: VDA 5050 §6.6.4 says ignore
	rg.instant(t, act(vda5050.ActionStateRequest, "dup-sr"))
	s := rg.obs.waitState(t, from, "stateRequest answered", func(s vda5050.State) bool {
		return status(s, "dup-sr") == vda5050.ActionFinished
	})
	if len(s.Errors) != 0 || !finished(s, "o-dup", "B") || status(s, "dup-pick") != vda5050.ActionFinished {
		t.Errorf("after the duplicate: %+v", s)
	}
	for _, st := range rg.obs.states(from) {
		if status(st, "dup-pick") != vda5050.ActionFinished {
			t.Errorf("the duplicate re-ran the pick: %+v", st.ActionStates)
		}
	}
}

func TestLowerOrderUpdateRejected(t *testing.T) {
	rg := start(t, Options{})
	from := rg.obs.mark()
	rg.sendOrder(t, order("o-low", 2, 0, 0, pt{id: "A"}, pt{id: "B", x: 1}))
	rg.obs.waitState(t, from, "order finished", func(s vda5050.State) bool { return finished(s, "o-low", "B") })

	rg.sendOrder(t, order("o-low", 1, 2, 0, pt{id: "B", x: 1}, pt{id: "C", x: 2}))
	s := rg.obs.waitState(t, from, "orderUpdateError", func(s vda5050.State) bool { return errorOf(s, ErrOrderUpdate) != nil })
	e := errorOf(s, ErrOrderUpdate)
	if e.ErrorLevel != vda5050.ErrorWarning || refValue(e, "orderId") != "o-low" || refValue(e, "orderUpdateId") != "1" || e.ErrorDescription == "" {
		t.Errorf("error: %+v", e)
	}
	if s.OrderUpdateID != 2 || s.LastNodeID != "B" {
		t.Errorf("the lower update changed the order: %+v", s)
	}
}

func TestOrderUpdateExtendsHorizon(t *testing.T) {
	rg := start(t, Options{})
	from := rg.obs.mark()
	// Base A→B, horizon C: the robot stops at B and waits.
	rg.sendOrder(t, order("o-upd", 0, 0, 2, pt{id: "A"}, pt{id: "B", x: 1}, pt{id: "C", x: 2}))
	s := rg.obs.waitState(t, from, "base done", func(s vda5050.State) bool { return s.OrderID == "o-upd" && s.LastNodeID == "B" && !s.Driving })
	if len(s.NodeStates) != 1 || s.NodeStates[0].NodeID != "C" || s.NodeStates[0].Released || len(s.EdgeStates) != 1 {
		t.Fatalf("horizon at B: nodes %+v edges %+v", s.NodeStates, s.EdgeStates)
	}

	// An update that does not start at the last base node is refused.
	rg.sendOrder(t, order("o-upd", 1, 0, 0, pt{id: "A"}, pt{id: "B", x: 1}))
	rg.obs.waitState(t, from, "orderUpdateError", func(s vda5050.State) bool { return errorOf(s, ErrOrderUpdate) != nil })

	rg.sendOrder(t, order("o-upd", 2, 2, 0, pt{id: "B", x: 1}, pt{id: "C", x: 2, actions: []vda5050.Action{act(vda5050.ActionDrop, "upd-drop")}}))
	s = rg.obs.waitState(t, from, "update driven", func(s vda5050.State) bool { return finished(s, "o-upd", "C") })
	if s.OrderUpdateID != 2 || s.LastNodeSequenceID != 4 || status(s, "upd-drop") != vda5050.ActionFinished {
		t.Errorf("after the update: %+v", s)
	}
	if len(s.Errors) != 0 {
		t.Errorf("an accepted update should resolve the earlier orderUpdateError: %+v", s.Errors)
	}
}

func TestFarFirstNodeIsNoRouteError(t *testing.T) {
	rg := start(t, Options{})
	from := rg.obs.mark()
	rg.sendOrder(t, order("o-far", 0, 0, 0, pt{id: "X", x: 10, y: 10}, pt{id: "Y", x: 11, y: 10}))
	s := rg.obs.waitState(t, from, "noRouteError", func(s vda5050.State) bool { return errorOf(s, ErrNoRoute) != nil })
	if e := errorOf(s, ErrNoRoute); refValue(e, "orderId") != "o-far" || e.ErrorLevel != vda5050.ErrorWarning {
		t.Errorf("error: %+v", e)
	}
	if s.OrderID != "" || s.LastNodeID != "A" || len(s.NodeStates) != 0 {
		t.Errorf("the refused order was taken: %+v", s)
	}
}

func TestMalformedOrdersAreValidationErrors(t *testing.T) {
	rg := start(t, Options{})
	from := rg.obs.mark()
	rg.sendRaw(t, vda5050.TopicOrder, []byte(`{"orderId":"o-bad","nodes":"not a list"}`))
	s := rg.obs.waitState(t, from, "validationError for malformed JSON", func(s vda5050.State) bool { return errorOf(s, ErrValidation) != nil })
	if e := errorOf(s, ErrValidation); refValue(e, "orderId") != "o-bad" || !strings.Contains(e.ErrorDescription, "order") {
		t.Errorf("error: %+v", e)
	}

	// Schema-valid but the edge does not join its neighbours.
	o := order("o-bad-edge", 0, 0, 0, pt{id: "A"}, pt{id: "B", x: 1})
	o.Edges[0].EndNodeID = "Z"
	from = rg.obs.mark()
	rg.sendOrder(t, o)
	s = rg.obs.waitState(t, from, "validationError for a bad edge", func(s vda5050.State) bool {
		for _, e := range s.Errors {
			if e.ErrorType == ErrValidation && refValue(&e, "orderId") == "o-bad-edge" {
				return true
			}
		}
		return false
	})
	if s.OrderID != "" {
		t.Errorf("a malformed order was taken: %+v", s)
	}
}

func TestNewOrderWhileRunningIsOrderError(t *testing.T) {
	rg := start(t, Options{Speed: 1})
	from := rg.obs.mark()
	rg.sendOrder(t, order("o-run", 0, 0, 0, pt{id: "A"}, pt{id: "B", x: 5}))
	rg.obs.waitState(t, from, "driving", func(s vda5050.State) bool { return s.OrderID == "o-run" && s.Driving })
	rg.sendOrder(t, order("o-other", 0, 0, 0, pt{id: "A"}, pt{id: "B", x: 5}))
	s := rg.obs.waitState(t, from, "orderError", func(s vda5050.State) bool { return errorOf(s, ErrOrder) != nil })
	if e := errorOf(s, ErrOrder); refValue(e, "orderId") != "o-other" {
		t.Errorf("error: %+v", e)
	}
	if s.OrderID != "o-run" || !s.Driving {
		t.Errorf("the running order was disturbed: %+v", s)
	}
}

func TestCancelOrderMidRoute(t *testing.T) {
	rg := start(t, Options{Speed: 2})
	from := rg.obs.mark()
	rg.sendOrder(t, order("o-cancel", 0, 0, 0,
		pt{id: "A"}, pt{id: "B", x: 1}, pt{id: "C", x: 10, actions: []vda5050.Action{act(vda5050.ActionDrop, "c-drop")}}))
	rg.obs.waitState(t, from, "driving to B", func(s vda5050.State) bool { return s.OrderID == "o-cancel" && s.Driving })
	rg.instant(t, act(vda5050.ActionCancelOrder, "c-cancel"))
	s := rg.obs.waitState(t, from, "cancel finished", func(s vda5050.State) bool {
		return status(s, "c-cancel") == vda5050.ActionFinished
	})
	// It stops at the next node, B, not at C.
	if !finished(s, "o-cancel", "B") {
		t.Errorf("after cancel: lastNode %s driving %v nodes %+v edges %+v", s.LastNodeID, s.Driving, s.NodeStates, s.EdgeStates)
	}
	if a := s.ActionStateOf("c-drop"); a == nil || a.ActionStatus != vda5050.ActionFailed || a.ResultDescription == "" {
		t.Errorf("remaining drop: %+v", a)
	}
	if p := s.AGVPosition; math.Abs(p.X-1) > 1e-6 {
		t.Errorf("stopped at x=%.3f, want B at x=1", p.X)
	}
	// Nothing moves afterwards.
	time.Sleep(200 * time.Millisecond)
	if snap := rg.robot.Snapshot(); snap.AGVPosition.X != s.AGVPosition.X || snap.Driving {
		t.Errorf("moved after cancel: %+v", snap.AGVPosition)
	}

	// The order is gone, so a second cancel has nothing to cancel (§6.8).
	from = rg.obs.mark()
	rg.instant(t, act(vda5050.ActionCancelOrder, "c-cancel-2"))
	s = rg.obs.waitState(t, from, "second cancel", func(s vda5050.State) bool { return status(s, "c-cancel-2").Terminal() })
	if status(s, "c-cancel-2") != vda5050.ActionFailed {
		t.Errorf("second cancel: %q", status(s, "c-cancel-2"))
	}
	if e := errorOf(s, ErrNoOrderToCancel); e == nil || refValue(e, "actionId") != "c-cancel-2" {
		t.Errorf("want a noOrderToCancel error naming the action: %+v", s.Errors)
	}
}

func TestPauseAndResume(t *testing.T) {
	rg := start(t, Options{Speed: 2})
	from := rg.obs.mark()
	rg.sendOrder(t, order("o-pause", 0, 0, 0, pt{id: "A"}, pt{id: "B", x: 2}))
	rg.obs.waitState(t, from, "driving", func(s vda5050.State) bool { return s.OrderID == "o-pause" && s.Driving })
	rg.instant(t, act(vda5050.ActionStartPause, "p-start"))
	s := rg.obs.waitState(t, from, "paused", func(s vda5050.State) bool { return status(s, "p-start") == vda5050.ActionFinished })
	if s.Paused == nil || !*s.Paused || s.Driving || s.LastNodeID != "A" {
		t.Fatalf("paused state: paused %v driving %v lastNode %s", s.Paused, s.Driving, s.LastNodeID)
	}
	x := rg.robot.Snapshot().AGVPosition.X
	time.Sleep(1200 * time.Millisecond) // longer than the rest of the edge
	snap := rg.robot.Snapshot()
	if snap.AGVPosition.X != x || snap.LastNodeID != "A" {
		t.Fatalf("progress while paused: x %.3f → %.3f, lastNode %s", x, snap.AGVPosition.X, snap.LastNodeID)
	}
	if x <= 0 || x >= 2 {
		t.Errorf("paused at x=%.3f, want somewhere on the edge", x)
	}

	rg.instant(t, act(vda5050.ActionStopPause, "p-stop"))
	s = rg.obs.waitState(t, from, "resumed", func(s vda5050.State) bool { return status(s, "p-stop") == vda5050.ActionFinished })
	if s.Paused == nil || *s.Paused {
		t.Errorf("still paused after stopPause")
	}
	rg.obs.waitState(t, from, "order finished", func(s vda5050.State) bool { return finished(s, "o-pause", "B") })
}

func TestDropConnectionSendsLastWill(t *testing.T) {
	rg := start(t, Options{})
	rg.obs.waitConn(t, 0, vda5050.ConnectionOnline)
	from := rg.obs.mark()
	rg.robot.DropConnection()
	rg.obs.waitConn(t, from, vda5050.ConnectionBroken)

	// Retained: a newcomer learns the robot is gone.
	late := observe(t, rg.key, rg.profile)
	if m := late.waitConn(t, 0, vda5050.ConnectionBroken); !m.retained {
		t.Errorf("CONNECTIONBROKEN was not retained")
	}
	// It stays down until told otherwise.
	time.Sleep(1500 * time.Millisecond)
	for _, m := range rg.obs.msgsSince(from) {
		if m.topic == vda5050.TopicConnection && m.conn == vda5050.ConnectionOnline {
			t.Fatalf("the robot came back by itself")
		}
	}

	from = rg.obs.mark()
	if err := rg.robot.Reconnect(); err != nil {
		t.Fatalf("Reconnect: %v", err)
	}
	rg.obs.waitConn(t, from, vda5050.ConnectionOnline)
	rg.obs.waitState(t, from, "state after reconnect", func(vda5050.State) bool { return true })

	// The same by instant action; the action is reported FINISHED first.
	from = rg.obs.mark()
	rg.instant(t, act(ActionSimDropConnection, "drop-1"))
	rg.obs.waitState(t, from, "simDropConnection finished", func(s vda5050.State) bool {
		return status(s, "drop-1") == vda5050.ActionFinished
	})
	rg.obs.waitConn(t, from, vda5050.ConnectionBroken)
	if err := rg.robot.Reconnect(); err != nil {
		t.Fatalf("Reconnect: %v", err)
	}
	rg.obs.waitConn(t, from, vda5050.ConnectionOnline)
}

func (o *observer) msgsSince(from int) []msg {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]msg(nil), o.msgs[from:]...)
}

func TestFaultInjectionByInstantActions(t *testing.T) {
	rg := start(t, Options{Speed: 2})
	from := rg.obs.mark()
	rg.sendOrder(t, order("o-fault", 0, 0, 0, pt{id: "A"}, pt{id: "B", x: 3}))
	rg.obs.waitState(t, from, "driving", func(s vda5050.State) bool { return s.OrderID == "o-fault" && s.Driving })

	rg.instant(t, act(ActionSimFatal, "f-fatal",
		vda5050.ActionParameter{Key: "errorType", Value: "motorFault"},
		vda5050.ActionParameter{Key: "description", Value: "left wheel motor"}))
	s := rg.obs.waitState(t, from, "FATAL", func(s vda5050.State) bool { return s.FatalError() != nil })
	if e := s.FatalError(); e.ErrorType != "motorFault" || e.ErrorDescription != "left wheel motor" || s.Driving {
		t.Errorf("fatal state: %+v driving %v", e, s.Driving)
	}
	x := rg.robot.Snapshot().AGVPosition.X
	time.Sleep(300 * time.Millisecond)
	if rg.robot.Snapshot().AGVPosition.X != x {
		t.Errorf("moved with a FATAL error")
	}
	rg.instant(t, act(ActionSimClearErrors, "f-clear"))
	s = rg.obs.waitState(t, from, "errors cleared", func(s vda5050.State) bool { return status(s, "f-clear") == vda5050.ActionFinished })
	if len(s.Errors) != 0 {
		t.Errorf("errors after simClearErrors: %+v", s.Errors)
	}

	// Stalled: no progress, yet it still claims to drive.
	rg.instant(t, act(ActionSimStall, "f-stall", vda5050.ActionParameter{Key: "on", Value: true}))
	rg.obs.waitState(t, from, "stall acknowledged", func(s vda5050.State) bool { return status(s, "f-stall") == vda5050.ActionFinished })
	x = rg.robot.Snapshot().AGVPosition.X
	time.Sleep(300 * time.Millisecond)
	if snap := rg.robot.Snapshot(); snap.AGVPosition.X != x || !snap.Driving {
		t.Errorf("stalled: x %.3f → %.3f, driving %v", x, snap.AGVPosition.X, snap.Driving)
	}
	rg.instant(t, act(ActionSimStall, "f-unstall", vda5050.ActionParameter{Key: "on", Value: false}))
	rg.obs.waitState(t, from, "order finished after the stall", func(s vda5050.State) bool { return finished(s, "o-fault", "B") })
}

func TestFaultInjectionMethods(t *testing.T) {
	rg := start(t, Options{})
	from := rg.obs.mark()
	rg.robot.RaiseFatal("estopFault", "test")
	s := rg.obs.waitState(t, from, "FATAL", func(s vda5050.State) bool { return s.FatalError() != nil })
	if e := s.FatalError(); e.ErrorType != "estopFault" {
		t.Errorf("fatal: %+v", e)
	}
	if snap := rg.robot.Snapshot(); snap.FatalError() == nil {
		t.Errorf("Snapshot misses the FATAL error")
	}
	rg.robot.ClearErrors()
	rg.obs.waitState(t, from, "cleared", func(s vda5050.State) bool { return s.FatalError() == nil && len(s.Errors) == 0 })
}

func TestInstantActionsAnswers(t *testing.T) {
	rg := start(t, Options{})
	from := rg.obs.mark()
	rg.instant(t, act("dance", "i-dance"), act(vda5050.ActionFactsheetRequest, "i-fs"))
	s := rg.obs.waitState(t, from, "answers", func(s vda5050.State) bool {
		return status(s, "i-dance").Terminal() && status(s, "i-fs").Terminal()
	})
	if a := s.ActionStateOf("i-dance"); a.ActionStatus != vda5050.ActionFailed || a.ResultDescription == "" {
		t.Errorf("unknown action: %+v", a)
	}
	if status(s, "i-fs") != vda5050.ActionFinished {
		t.Errorf("factsheetRequest: %q", status(s, "i-fs"))
	}
	fs := rg.obs.wait(t, from, "factsheet", func(m msg) bool { return m.topic == vda5050.TopicFactsheet })
	if err := vda5050.Validate(vda5050.TopicFactsheet, fs.raw); err != nil {
		t.Errorf("factsheet: %v", err)
	}
	if err := validateFactsheetStrictly(fs.raw); err != nil {
		t.Errorf("factsheet against the schema's nested definitions: %v", err)
	}

	// A malformed instantActions message is refused with a reason.
	from = rg.obs.mark()
	rg.sendRaw(t, vda5050.TopicInstantActions, []byte(`{"actions":[{"actionId":1}]}`))
	s = rg.obs.waitState(t, from, "validationError", func(s vda5050.State) bool { return errorOf(s, ErrValidation) != nil })
	if e := errorOf(s, ErrValidation); !strings.Contains(e.ErrorDescription, "instantActions") {
		t.Errorf("error: %+v", e)
	}
}

// validateFactsheetStrictly checks raw against the official 2.0.0 factsheet
// schema with its top-level definitions moved under "properties": the
// published file lists them beside "required", where JSON Schema ignores
// them, so vda5050.Validate only checks that the top-level keys exist.
func validateFactsheetStrictly(raw []byte) error {
	src, err := os.ReadFile("../vda5050/schema/2.0.0/factsheet.json")
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(src))
	if err != nil {
		return err
	}
	m := doc.(map[string]any)
	props := map[string]any{}
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok && sub["type"] != nil {
			props[k] = v
		}
	}
	m["properties"] = props
	c := jsonschema.NewCompiler()
	if err := c.AddResource("factsheet.json", m); err != nil {
		return err
	}
	sch, err := c.Compile("factsheet.json")
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

func TestPeriodicState(t *testing.T) {
	rg := start(t, Options{StateInterval: 200 * time.Millisecond})
	from := rg.obs.mark()
	time.Sleep(700 * time.Millisecond)
	if n := len(rg.obs.states(from)); n < 2 || n > 5 {
		t.Errorf("%d states in 700 ms with a 200 ms interval and nothing happening", n)
	}
}

// While driving, DrivingStateInterval sets the state rate (bench scale:
// 10 per second); idle, StateInterval does.
func TestDrivingStateInterval(t *testing.T) {
	rg := start(t, Options{Speed: 2, DrivingStateInterval: 100 * time.Millisecond})
	from := rg.obs.mark()
	rg.sendOrder(t, order("o-rate", 0, 0, 0, pt{id: "A", x: 0, y: 0}, pt{id: "B", x: 2, y: 0}))
	rg.obs.waitState(t, from, "order finished", func(s vda5050.State) bool { return finished(s, "o-rate", "B") })
	driving := 0
	for _, s := range rg.obs.states(from) {
		if s.Driving {
			driving++
		}
	}
	// 2 m at 2 m/s: about 10 states at 100 ms (a node passed adds one);
	// without the driving interval there is one. Wide bounds: a loaded
	// machine delays the robot's timer.
	if driving < 4 || driving > 20 {
		t.Errorf("%d driving states in 1 s at a 100 ms driving interval, want about 10", driving)
	}
	idle := rg.obs.mark()
	time.Sleep(500 * time.Millisecond)
	if n := len(rg.obs.states(idle)); n > 1 {
		t.Errorf("%d states in 500 ms idle: the driving interval must not apply", n)
	}
}

func TestStartFailsWithoutBroker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	f := NewFleet(Options{BrokerURL: "tcp://" + addr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		[]RobotConfig{{Manufacturer: testManufacturer, SerialNumber: "nobroker-" + suffix(), StartNode: "A", MapID: testMap}})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := f.Start(ctx); err == nil {
		t.Fatal("Start succeeded without a broker")
	}
	f.Stop()

	bad := NewFleet(Options{BrokerURL: brokerURL}, []RobotConfig{{Manufacturer: "acme", SerialNumber: "has/slash"}})
	if err := bad.Start(ctx); err == nil {
		t.Fatal("Start accepted a serial number with '/' (VDA 5050 §6.1)")
	}
}

func TestCheckOrder(t *testing.T) {
	good := func() vda5050.Order {
		return order("o", 0, 0, 2, pt{id: "A"}, pt{id: "B", x: 1, actions: []vda5050.Action{act("pick", "p")}}, pt{id: "C", x: 2})
	}
	cases := []struct {
		name   string
		mutate func(o *vda5050.Order)
		want   string // errorType, "" = accepted
	}{
		{"valid with horizon", func(*vda5050.Order) {}, ""},
		{"no nodes", func(o *vda5050.Order) { o.Nodes, o.Edges = nil, nil }, ErrValidation},
		{"edges != nodes-1", func(o *vda5050.Order) { o.Edges = o.Edges[:1] }, ErrValidation},
		{"new order not from 0", func(o *vda5050.Order) {
			for i := range o.Nodes {
				o.Nodes[i].SequenceID += 2
			}
			for i := range o.Edges {
				o.Edges[i].SequenceID += 2
			}
		}, ErrValidation},
		{"sequence gap", func(o *vda5050.Order) { o.Nodes[2].SequenceID = 6 }, ErrValidation},
		{"edge sequence", func(o *vda5050.Order) { o.Edges[0].SequenceID = 2 }, ErrValidation},
		{"edge start", func(o *vda5050.Order) { o.Edges[1].StartNodeID = "A" }, ErrValidation},
		{"first node unreleased", func(o *vda5050.Order) { o.Nodes[0].Released = false }, ErrValidation},
		{"released after horizon", func(o *vda5050.Order) { o.Nodes[2].Released = true }, ErrValidation},
		{"base ends with an edge", func(o *vda5050.Order) { o.Edges[1].Released = true }, ErrValidation},
		{"duplicate actionId", func(o *vda5050.Order) { o.Nodes[2].Actions = []vda5050.Action{act("drop", "p")} }, ErrValidation},
		{"no position", func(o *vda5050.Order) { o.Nodes[1].NodePosition = nil }, ErrNoRoute},
		{"other map", func(o *vda5050.Order) { o.Nodes[2].NodePosition.MapID = "elsewhere" }, ErrNoRoute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := good()
			c.mutate(&o)
			p := checkOrder(&o, testMap, true)
			switch {
			case c.want == "" && p != nil:
				t.Errorf("refused: %+v", p)
			case c.want != "" && (p == nil || p.errorType != c.want):
				t.Errorf("got %+v, want %s", p, c.want)
			case p != nil && p.description == "":
				t.Errorf("no description")
			}
		})
	}
}

// simDialects are the vehicle profiles the virtual fleet can speak.
var simDialects = map[string]vda5050.Profile{
	"1.1 on fts":                     {Version: "1.1", InterfaceName: "fts"},
	"2.0 default":                    {},
	"2.0 instantActions, actionType": {Version: "2.0.0", InstantActionsKey: vda5050.KeyInstantActions, ActionTypeKey: vda5050.ActionKeyType},
	"2.1":                            {Version: "2.1.0"},
}

// In every dialect the robot drives an order fleetflow wrote for it, and
// everything it publishes passes its own edition's schema (the observer
// checks each state and connection).
func TestDialectsDriveAndAnswer(t *testing.T) {
	for name, p := range simDialects {
		t.Run(name, func(t *testing.T) {
			rg := startWith(t, Options{Speed: 0}, func(c *RobotConfig) { c.Profile = p })
			m := rg.obs.mark()
			rg.sendOrder(t, order("o-"+suffix(), 0, 0, 0, pt{"A", 0, 0, nil}, pt{"B", 1, 0, []vda5050.Action{act("pick", "p1")}}))
			st := rg.obs.waitState(t, m, "order done", func(s vda5050.State) bool {
				return s.LastNodeID == "B" && len(s.NodeStates) == 0 && len(s.ActionStates) == 1 && s.ActionStates[0].ActionStatus == vda5050.ActionFinished
			})
			if st.Version != rg.profile.Version {
				t.Errorf("state header version %q, want %s", st.Version, rg.profile.Version)
			}
			m = rg.obs.mark()
			rg.instant(t, act(vda5050.ActionStateRequest, "sr-1"))
			rg.obs.waitState(t, m, "stateRequest FINISHED", func(s vda5050.State) bool {
				a := s.ActionStateOf("sr-1")
				return a != nil && a.ActionStatus == vda5050.ActionFinished
			})
		})
	}
}

// A robot reads instant actions only in its own dialect: another one is
// refused with a validationError that names the topic and the message's
// headerId, as a real vehicle of that dialect answers (and the robot does
// not act on it).
func TestOtherDialectIsRefused(t *testing.T) {
	lib := vda5050.Profile{Version: "2.0.0", InstantActionsKey: vda5050.KeyInstantActions, ActionTypeKey: vda5050.ActionKeyType}
	rg := startWith(t, Options{Speed: 0}, func(c *RobotConfig) { c.Profile = lib })
	h := rg.header(vda5050.TopicInstantActions)
	h.HeaderID = 41
	raw, err := vda5050.Profile{}.EncodeInstantActions(vda5050.InstantActions{Header: h, Actions: []vda5050.Action{act(vda5050.ActionStartPause, "x#startPause-1")}})
	if err != nil {
		t.Fatal(err)
	}
	m := rg.obs.mark()
	rg.sendRaw(t, vda5050.TopicInstantActions, raw)
	st := rg.obs.waitState(t, m, "validationError", func(s vda5050.State) bool { return len(s.Errors) > 0 })
	e := st.Errors[0]
	refs := map[string]string{}
	for _, r := range e.ErrorReferences {
		refs[r.ReferenceKey] = r.ReferenceValue
	}
	if e.ErrorType != ErrValidation || refs["topic"] != "instantActions" || refs["headerId"] != "41" || !strings.Contains(e.ErrorDescription, `"instantActions"`) {
		t.Fatalf("want validationError naming topic and headerId 41: %+v", e)
	}
	if st.ActionStateOf("x#startPause-1") != nil || (st.Paused != nil && *st.Paused) {
		t.Fatal("a refused message must not be acted on")
	}
}

// EchoNodePositions reports node states as the order gave them: without
// theta where the order had none (the observer tolerates exactly that).
func TestEchoNodePositionsOmitsTheta(t *testing.T) {
	rg := startWith(t, Options{Speed: 0.5}, func(c *RobotConfig) { c.EchoNodePositions = true })
	m := rg.obs.mark()
	rg.sendOrder(t, order("o-"+suffix(), 0, 0, 0, pt{"A", 0, 0, nil}, pt{"B", 2, 0, nil}))
	st := rg.obs.waitState(t, m, "driving with B ahead", func(s vda5050.State) bool { return len(s.NodeStates) > 0 })
	if p := st.NodeStates[len(st.NodeStates)-1].NodePosition; p == nil || p.Theta != nil {
		t.Fatalf("want nodePosition without theta: %+v", p)
	}
	rg.obs.waitState(t, m, "order done", func(s vda5050.State) bool { return len(s.NodeStates) == 0 })
	rg.obs.mu.Lock()
	defer rg.obs.mu.Unlock()
	if rg.obs.deviations[vda5050.DeviationThetaMissing] == 0 {
		t.Error("no theta_missing deviation seen")
	}
}

// A first node farther than the usual tolerance is accepted when the order
// gives it an allowedDeviationXy that covers the robot (a robot stopped
// between nodes); farther still it is refused with noRouteError.
func TestFirstNodeHonoursAllowedDeviation(t *testing.T) {
	rg := startWith(t, Options{Speed: 0}, func(c *RobotConfig) { c.X = 1.2 })
	far := order("o-"+suffix(), 0, 0, 0, pt{"A", 0, 0, nil}, pt{"B", 3, 0, nil})
	m := rg.obs.mark()
	rg.sendOrder(t, far)
	rg.obs.waitState(t, m, "noRouteError", func(s vda5050.State) bool {
		return len(s.Errors) > 0 && s.Errors[0].ErrorType == ErrNoRoute
	})
	ok := order("o-"+suffix(), 0, 0, 0, pt{"A", 0, 0, nil}, pt{"B", 3, 0, nil})
	ok.Nodes[0].NodePosition.AllowedDeviationXY = new(1.5)
	m = rg.obs.mark()
	rg.sendOrder(t, ok)
	rg.obs.waitState(t, m, "order done", func(s vda5050.State) bool {
		return s.OrderID == ok.OrderID && s.LastNodeID == "B" && len(s.NodeStates) == 0
	})
}

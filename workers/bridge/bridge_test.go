package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// Unit tests of routing and batching with an in-memory sink and signaler;
// the bridge against a real broker and PostgreSQL runs in the end-to-end test.

type memSink struct {
	mu     sync.Mutex
	states [][]store.RobotState
	conns  []store.ConnectionUpdate
	devs   []store.DeviationCount
	health []store.HealthDelta
}

func (m *memSink) AddDeviations(_ context.Context, d []store.DeviationCount) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.devs = append(m.devs, d...)
	return nil
}

// deviations sums the stored counts by "robot kind".
func (m *memSink) deviations() map[string]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int64{}
	for _, d := range m.devs {
		out[d.RobotID+" "+d.Kind] += d.Count
	}
	return out
}

func (m *memSink) UpsertStates(_ context.Context, s []store.RobotState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.states = append(m.states, s)
	return nil
}
func (m *memSink) AddHealth(_ context.Context, h []store.HealthDelta) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.health = append(m.health, h...)
	return nil
}

func (m *memSink) UpsertConnections(_ context.Context, c []store.ConnectionUpdate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.conns = append(m.conns, c...)
	return nil
}

type memSignals struct {
	mu  sync.Mutex
	got []signalJob
}

func (m *memSignals) Signal(_ context.Context, wf string, ev schemas.RobotEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, signalJob{wf, ev})
	return nil
}

func (m *memSignals) all() []signalJob {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]signalJob(nil), m.got...)
}

func state(seq int, node string, x float64, actions ...vda5050.ActionState) vda5050.State {
	if actions == nil {
		actions = []vda5050.ActionState{}
	}
	return vda5050.State{
		Header:  vda5050.Header{HeaderID: uint32(seq), Timestamp: vda5050.Timestamp(time.Date(2026, 1, 1, 0, 0, seq, 0, time.UTC)), Version: vda5050.Version, Manufacturer: "acme", SerialNumber: "AMR-001"},
		OrderID: "mission-m-1", LastNodeID: node, LastNodeSequenceID: 0, Driving: true,
		NodeStates: []vda5050.NodeState{{NodeID: "B", SequenceID: 2, Released: true}}, EdgeStates: []vda5050.EdgeState{},
		AGVPosition:  &vda5050.AGVPosition{X: x, MapID: "m", PositionInitialized: true},
		ActionStates: actions, BatteryState: vda5050.BatteryState{BatteryCharge: 90}, OperatingMode: "AUTOMATIC",
		Errors: []vda5050.Error{}, SafetyState: vda5050.SafetyState{EStop: "NONE"},
	}
}

func raw(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const stateTopic = "uagv/v2/acme/AMR-001/state"

func newBridge(reg prometheus.Registerer) (*Bridge, *memSink, *memSignals) {
	sink, sig := &memSink{}, &memSignals{}
	b := New(sink, sig, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: reg, FlushInterval: time.Hour})
	return b, sink, sig
}

func TestSignalsOnlyMeaningfulChanges(t *testing.T) {
	b, sink, _ := newBridge(nil)
	ctx := context.Background()
	sd := b.senders[b.shard("acme/AMR-001")]
	signalled := func() *signalJob {
		j, _, ok := sd.take(later())
		if !ok {
			return nil
		}
		return &j
	}
	steps := []struct {
		st   vda5050.State
		want bool
		why  string
	}{
		{state(1, "A", 0), true, "first state of the robot"},
		{state(2, "A", 0.5), false, "position only"},
		{state(3, "A", 1.0), false, "position only"},
		{state(4, "B", 2.0), true, "node reached"},
		{state(5, "B", 2.0, vda5050.ActionState{ActionID: "mission-m-1#cancel", ActionStatus: vda5050.ActionRunning}), true, "action status change"},
	}
	for _, s := range steps {
		b.Handle(ctx, stateTopic, raw(t, s.st))
		j := signalled()
		if (j != nil) != s.want {
			t.Fatalf("header %d (%s): signalled=%v, want %v", s.st.HeaderID, s.why, j != nil, s.want)
		}
		if j != nil && (j.workflowID != "mission-m-1" || j.ev.LastNodeID != s.st.LastNodeID) {
			t.Fatalf("header %d: %+v", s.st.HeaderID, j)
		}
	}
	b.Flush(ctx)
	if len(sink.states) != 1 || len(sink.states[0]) != 1 || sink.states[0][0].HeaderID != 5 || sink.states[0][0].LastNodeID != "B" {
		t.Fatalf("one batch with the robot's latest state expected, got %+v", sink.states)
	}
}

func TestLateStatesAreDropped(t *testing.T) {
	reg := prometheus.NewRegistry()
	b, _, _ := newBridge(reg)
	ctx := context.Background()
	done := state(5, "B", 2, vda5050.ActionState{ActionID: "mission-m-1-a1-drop", ActionStatus: vda5050.ActionFinished})
	late := state(4, "B", 2, vda5050.ActionState{ActionID: "mission-m-1-a1-drop", ActionStatus: vda5050.ActionRunning})
	late.Timestamp = done.Timestamp // same millisecond: only the headerId tells them apart
	b.Handle(ctx, stateTopic, raw(t, done))
	b.Handle(ctx, stateTopic, raw(t, late))
	if b.pending["acme/AMR-001"].state.HeaderID != 5 {
		t.Fatalf("a late state replaced the newer one: %+v", b.pending["acme/AMR-001"].state)
	}
	if v := testutil.ToFloat64(b.m.rejected.WithLabelValues("stale")); v != 1 {
		t.Fatalf("stale counter %v", v)
	}
	// After a reboot the robot counts from 0 again, with a newer timestamp.
	reboot := state(9, "B", 2)
	reboot.HeaderID = 0
	b.Handle(ctx, stateTopic, raw(t, reboot))
	if b.pending["acme/AMR-001"].state.HeaderID != 0 {
		t.Fatal("the first state after a restart must be accepted")
	}
}

func TestMalformedMessagesAreCountedNotFatal(t *testing.T) {
	reg := prometheus.NewRegistry()
	b, _, sig := newBridge(reg)
	ctx := context.Background()
	b.Handle(ctx, stateTopic, []byte(`{"headerId":`))
	b.Handle(ctx, stateTopic, []byte(`{"headerId":1}`))
	wrong := state(1, "A", 0)
	wrong.SerialNumber = "OTHER"
	b.Handle(ctx, stateTopic, raw(t, wrong))
	b.Handle(ctx, "uagv/v2/acme/AMR-001/telemetry", []byte(`{}`))
	b.Handle(ctx, "uagv/v2/acme/AMR-001/connection", []byte(`{"connectionState":"MAYBE"}`))
	if v := testutil.ToFloat64(b.m.rejected.WithLabelValues("state")); v != 3 {
		t.Errorf("rejected state messages: %v, want 3", v)
	}
	if v := testutil.ToFloat64(b.m.rejected.WithLabelValues("connection")); v != 1 {
		t.Errorf("rejected connection messages: %v, want 1", v)
	}
	if v := testutil.ToFloat64(b.m.rejected.WithLabelValues("unknown")); v != 1 {
		t.Errorf("rejected unknown topics: %v, want 1", v)
	}
	if len(sig.all()) != 0 || b.pendingCount() != 0 {
		t.Error("a malformed message must not be routed or stored")
	}
	// Counted against the robot too, for `fleet show`.
	b.Flush(ctx)
	if got := b.sinkDeviations(); got["acme/AMR-001 rejected"] != 4 {
		t.Errorf("rejections counted per robot: %v, want 4 (3 states, 1 connection on acme/AMR-001's topics)", got)
	}
}

func (b *Bridge) sinkDeviations() map[string]int64 { return b.sink.(*memSink).deviations() }

func TestSignalsCoalescePerWorkflow(t *testing.T) {
	sd := newSender()
	now := time.Now()
	a, b2 := state(1, "A", 0), state(2, "B", 0)
	sd.put("mission-1", schemas.RobotEvent{LastNodeID: a.LastNodeID}, now)
	sd.put("mission-2", schemas.RobotEvent{LastNodeID: "X"}, now)
	if !sd.put("mission-1", schemas.RobotEvent{LastNodeID: b2.LastNodeID}, now) {
		t.Fatal("second event for a waiting workflow must coalesce")
	}
	j1, _, _ := sd.take(now)
	j2, _, _ := sd.take(now)
	if _, _, more := sd.take(now); more || j1.workflowID != "mission-1" || j1.ev.LastNodeID != "B" || j2.workflowID != "mission-2" {
		t.Fatalf("want mission-1 (latest B) then mission-2, got %+v %+v", j1, j2)
	}
}

// TestProgressLingersUrgentGoesAtOnce: progress waits out the linger and
// merges with newer states; an urgent change takes it along at once.
func TestProgressLingersUrgentGoesAtOnce(t *testing.T) {
	b, _, _ := newBridge(nil)
	b.opts.ProgressLinger = time.Hour
	ctx := context.Background()
	sd := b.senders[b.shard("acme/AMR-001")]
	b.Handle(ctx, stateTopic, raw(t, state(1, "A", 0))) // first state: urgent
	if _, _, ok := sd.take(time.Now()); !ok {
		t.Fatal("the first state of a robot must be signalled at once")
	}
	b.Handle(ctx, stateTopic, raw(t, state(2, "B", 1))) // node reached: progress
	if _, next, ok := sd.take(time.Now()); ok || next.Before(time.Now().Add(59*time.Minute)) {
		t.Fatalf("node reached must linger (due %v)", next)
	}
	b.Handle(ctx, stateTopic, raw(t, state(3, "C", 2)))
	done := state(4, "D", 3, vda5050.ActionState{ActionID: "a1", ActionType: "drop", ActionStatus: vda5050.ActionFinished})
	done.NodeStates, done.Driving = []vda5050.NodeState{}, false
	b.Handle(ctx, stateTopic, raw(t, done)) // order finished: urgent
	j, _, ok := sd.take(time.Now())
	if !ok || j.ev.LastNodeID != "D" || j.ev.NodesRemaining != 0 {
		t.Fatalf("the finished order must go at once, carrying the latest state: %+v %v", j, ok)
	}
	if _, _, more := sd.take(later()); more {
		t.Fatal("the lingering progress must have gone with the urgent signal")
	}
	failed := done
	failed.HeaderID, failed.Timestamp = 5, vda5050.Timestamp(time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC))
	failed.NodeStates, failed.Driving = []vda5050.NodeState{{NodeID: "E", SequenceID: 2, Released: true}}, true
	failed.ActionStates = []vda5050.ActionState{{ActionID: "a1", ActionType: "drop", ActionStatus: vda5050.ActionFailed}}
	b.Handle(ctx, stateTopic, raw(t, failed)) // an action failed: urgent although driving
	if _, _, ok := sd.take(time.Now()); !ok {
		t.Fatal("a failed action must be signalled at once")
	}
}

func later() time.Time { return time.Now().Add(24 * time.Hour) }

func TestConnectionLossSignalsOwner(t *testing.T) {
	b, _, _ := newBridge(nil)
	ctx := context.Background()
	b.Handle(ctx, stateTopic, raw(t, state(1, "A", 0)))
	sd := b.senders[b.shard("acme/AMR-001")]
	if _, _, ok := sd.take(time.Now()); !ok { // the state's signal
		t.Fatal("no signal for the first state")
	}
	conn := vda5050.Connection{Header: vda5050.Header{Timestamp: vda5050.Timestamp(time.Now()), Version: vda5050.Version, Manufacturer: "acme", SerialNumber: "AMR-001"}, ConnectionState: vda5050.ConnectionBroken}
	b.Handle(ctx, "uagv/v2/acme/AMR-001/connection", raw(t, conn))
	j, _, ok := sd.take(time.Now())
	if !ok {
		t.Fatal("no signal for a lost connection")
	}
	if j.workflowID != "mission-m-1" || j.ev.Connection != "CONNECTIONBROKEN" || j.ev.LastNodeID != "A" {
		t.Fatalf("the connection event must carry the last state too: %+v", j)
	}
	if b.pendingCount() != 2 {
		t.Fatalf("pending %d, want the state and the connection", b.pendingCount())
	}
}

// BenchmarkDecodeAndRoute measures the bridge's hot path: parse the topic,
// validate a state against the official schema, decode, compare with the
// robot's last state, queue the upsert and (on change) the signal. Robots
// alternate between a position-only update and a node change. Run with
// -cpu 1 for the one-core figure.
func BenchmarkDecodeAndRoute(b *testing.B) {
	br, _, _ := newBridge(nil)
	const robots = 200
	msgs := make([][2][]byte, robots)
	topics := make([]string, robots)
	for i := 0; i < robots; i++ {
		s1, s2 := state(1, "A", 0), state(2, "A", 0.5)
		s1.SerialNumber, s2.SerialNumber = fmt.Sprintf("R%03d", i), fmt.Sprintf("R%03d", i)
		s2.LastNodeID = "B"
		msgs[i] = [2][]byte{raw(b, s1), raw(b, s2)}
		topics[i] = fmt.Sprintf("uagv/v2/acme/R%03d/state", i)
	}
	ctx := context.Background()
	// Drain signals so the sender queues stay small.
	stop := make(chan struct{})
	for _, sd := range br.senders {
		go func(sd *sender) {
			for {
				select {
				case <-sd.wake:
					for _, _, ok := sd.take(later()); ok; _, _, ok = sd.take(later()) {
					}
				case <-stop:
					return
				}
			}
		}(sd)
	}
	defer close(stop)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := i % robots
		br.Handle(ctx, topics[r], msgs[r][(i/robots)%2])
		if i%500 == 499 {
			br.mu.Lock()
			br.pending = map[string]pendingState{}
			br.mu.Unlock()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// After a quick reboot the broker may deliver the new connection's ONLINE
// before the old connection's OFFLINE: the older OFFLINE must not win.
func TestLateOfflineAfterRebootIsDropped(t *testing.T) {
	b, sink, _ := newBridge(prometheus.NewRegistry())
	ctx := context.Background()
	t0 := time.Now()
	conn := func(s vda5050.ConnectionState, at time.Time) []byte {
		return raw(t, vda5050.Connection{Header: vda5050.Header{Timestamp: vda5050.Timestamp(at), Version: vda5050.Version,
			Manufacturer: "acme", SerialNumber: "AMR-001"}, ConnectionState: s})
	}
	b.Handle(ctx, "uagv/v2/acme/AMR-001/connection", conn(vda5050.ConnectionOnline, t0.Add(time.Millisecond)))
	b.Handle(ctx, "uagv/v2/acme/AMR-001/connection", conn(vda5050.ConnectionOffline, t0))
	b.Flush(ctx)
	if len(sink.conns) != 1 || sink.conns[0].State != "ONLINE" {
		t.Fatalf("stored connection updates %+v, want only the ONLINE", sink.conns)
	}
	if v := testutil.ToFloat64(b.m.rejected.WithLabelValues("stale")); v != 1 {
		t.Errorf("stale rejections %v, want 1", v)
	}
	// A later OFFLINE still counts, and a last will is never judged by its (connect) time.
	b.Handle(ctx, "uagv/v2/acme/AMR-001/connection", conn(vda5050.ConnectionOffline, t0.Add(2*time.Millisecond)))
	b.Handle(ctx, "uagv/v2/acme/AMR-001/connection", conn(vda5050.ConnectionBroken, t0.Add(-time.Hour)))
	b.Flush(ctx)
	if n := len(sink.conns); n != 3 || sink.conns[1].State != "OFFLINE" || sink.conns[2].State != "CONNECTIONBROKEN" {
		t.Fatalf("stored connection updates %+v", sink.conns)
	}
}

// TestRunKeepsEachRobotsOrderAcrossDecoders feeds several robots' states
// through Enqueue and Run (parallel decoders): each robot's last node must be
// the last one signalled for it, and every message is counted once.
func TestRunKeepsEachRobotsOrderAcrossDecoders(t *testing.T) {
	reg := prometheus.NewRegistry()
	sink, sig := &memSink{}, &memSignals{}
	b := New(sink, sig, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: reg, FlushInterval: 5 * time.Millisecond, Decoders: 3})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()

	const robots, steps = 8, 40
	for i := 1; i <= steps; i++ {
		for r := 0; r < robots; r++ {
			st := state(i, fmt.Sprintf("N%d", i), float64(i))
			st.SerialNumber = fmt.Sprintf("AMR-%03d", r)
			st.OrderID = fmt.Sprintf("mission-m-%d", r)
			b.Enqueue(fmt.Sprintf("uagv/v2/acme/AMR-%03d/state", r), raw(t, st))
		}
	}
	last := func() map[string]string {
		got := map[string]string{}
		for _, j := range sig.all() {
			got[j.workflowID] = j.ev.LastNodeID
		}
		return got
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := last()
		ok := len(got) == robots
		for _, node := range got {
			if node != fmt.Sprintf("N%d", steps) {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last signalled node per workflow = %v, want N%d for each of %d workflows", got, steps, robots)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if n := testutil.ToFloat64(b.m.received.WithLabelValues(string(vda5050.TopicState))); n != robots*steps {
		t.Errorf("received %v state messages, want %d", n, robots*steps)
	}
	// Sharding by robot keeps each robot's messages in order: none may
	// arrive after a newer one and be dropped as stale.
	if n := testutil.ToFloat64(b.m.rejected.WithLabelValues("stale")); n != 0 {
		t.Errorf("%v states dropped as stale: a robot's messages were reordered", n)
	}
	// A robot's signals never go backwards: node numbers only grow.
	seen := map[string]int{}
	for _, j := range sig.all() {
		var n int
		fmt.Sscanf(j.ev.LastNodeID, "N%d", &n)
		if n < seen[j.workflowID] {
			t.Fatalf("workflow %s was signalled node %d after node %d", j.workflowID, n, seen[j.workflowID])
		}
		seen[j.workflowID] = n
	}
}

func TestRobotShardKeepsARobotTogether(t *testing.T) {
	for _, n := range []int{1, 2, 7} {
		s := robotShard("uagv/v2/acme/AMR-001/state", n)
		if c := robotShard("uagv/v2/acme/AMR-001/connection", n); c != s {
			t.Errorf("n=%d: state shard %d, connection shard %d", n, s, c)
		}
		if s < 0 || s >= n {
			t.Errorf("n=%d: shard %d out of range", n, s)
		}
	}
	used := map[int]bool{}
	for r := 0; r < 64; r++ {
		used[robotShard(fmt.Sprintf("uagv/v2/acme/AMR-%03d/state", r), 4)] = true
	}
	if len(used) != 4 {
		t.Errorf("64 robots used %d of 4 shards", len(used))
	}
}

// bend marshals st, lets f change the JSON object, and returns the payload.
func bend(t *testing.T, st vda5050.State, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw(t, st), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	return raw(t, m)
}

// A vehicle that echoes its order's nodePosition without theta (as an
// independent implementation does) keeps its full state: stored, signalled,
// every deviation counted per robot and kind in /metrics and the registry.
func TestStateWithoutThetaIsUsedAndCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	b, sink, _ := newBridge(reg)
	ctx := context.Background()
	sd := b.senders[b.shard("acme/AMR-001")]
	for i := 1; i <= 3; i++ {
		st := state(i, "A", float64(i))
		st.BatteryState.BatteryCharge = 90 - float64(i)
		st.NodeStates = []vda5050.NodeState{{NodeID: "B", SequenceID: 2, Released: true, NodePosition: &vda5050.StateNodePosition{X: 4, MapID: "m"}}}
		if i == 3 {
			st.LastNodeID = "B"
		}
		b.Handle(ctx, stateTopic, bend(t, st, func(m map[string]any) {
			delete(m["nodeStates"].([]any)[0].(map[string]any)["nodePosition"].(map[string]any), "theta")
			m["vendorInfo"] = "x"
		}))
	}
	if j, _, ok := sd.take(later()); !ok || j.ev.LastNodeID != "B" || j.ev.BatteryCharge != 87 {
		t.Fatalf("progress not signalled from the deviating states: %+v %v", j, ok)
	}
	if v := testutil.ToFloat64(b.m.rejected.WithLabelValues("state")); v != 0 {
		t.Fatalf("%v states rejected, want 0", v)
	}
	for kind, want := range map[string]float64{"theta_missing": 3, "extra_field": 3} {
		if v := testutil.ToFloat64(b.m.deviations.WithLabelValues("acme/AMR-001", kind)); v != want {
			t.Errorf("%s counted %v, want %v", kind, v, want)
		}
	}
	b.Flush(ctx)
	if st := sink.states[0][0]; st.BatteryCharge != 87 || st.X != 3 || st.LastNodeID != "B" || st.ProtocolVersion != "2.0.0" {
		t.Errorf("stored state %+v", st)
	}
	if got := sink.deviations(); got["acme/AMR-001 theta_missing"] != 3 || got["acme/AMR-001 extra_field"] != 3 {
		t.Errorf("stored deviation counts %v", got)
	}
}

// A part that breaks the schema is left out and its last known value kept:
// battery and position are never lost because one part is off, and broken
// progress never looks like progress.
func TestUnusablePartsKeepTheirLastValue(t *testing.T) {
	b, sink, _ := newBridge(nil)
	ctx := context.Background()
	sd := b.senders[b.shard("acme/AMR-001")]
	first := state(1, "A", 1)
	first.BatteryState.BatteryCharge = 77
	b.Handle(ctx, stateTopic, raw(t, first))
	sd.take(later())
	next := state(2, "A", 2)
	next.BatteryState.BatteryCharge = 76
	b.Handle(ctx, stateTopic, bend(t, next, func(m map[string]any) {
		m["batteryState"] = map[string]any{"batteryCharge": "76%"}
		m["nodeStates"] = "none"
	}))
	b.Flush(ctx)
	got := sink.states[0][0]
	if got.HeaderID != 2 || got.BatteryCharge != 77 || got.X != 2 || got.NodeStatesRemaining != 1 {
		t.Fatalf("want the new position, the last battery and the last progress: %+v", got)
	}
	if _, _, ok := sd.take(later()); ok {
		t.Error("a state whose progress was unusable must not signal progress")
	}
	if d := sink.deviations(); d["acme/AMR-001 invalid_part"] != 2 {
		t.Errorf("deviations %v", d)
	}
}

// Robots that speak other editions and interface names are read by their
// own profile: a 1.1 robot on fts/v1 with 1.1.0's lower-case enums.
func TestProfilesChooseEditionAndTopics(t *testing.T) {
	k11 := vda5050.RobotKey{Manufacturer: "old", SerialNumber: "T1"}
	book := vda5050.NewProfileBook(vda5050.Profile{}, map[vda5050.RobotKey]vda5050.Profile{k11: {Version: "1.1", InterfaceName: "fts"}})
	sink, sig := &memSink{}, &memSignals{}
	b := New(sink, sig, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FlushInterval: time.Hour, Profiles: book})
	if got := book.Subscriptions(vda5050.TopicState); fmt.Sprint(got) != "[fts/v1/+/+/state uagv/v2/+/+/state]" {
		t.Fatalf("subscriptions %v", got)
	}
	st := state(1, "A", 0, vda5050.ActionState{ActionID: "mission-m-1-a0-pick", ActionStatus: vda5050.ActionRunning})
	st.Manufacturer, st.SerialNumber, st.Version = "old", "T1", "1.1.0"
	prof := book.For(k11)
	payload, err := prof.Encode(vda5050.TopicState, st)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(payload) || !strings.Contains(string(payload), `"actionStatus":"running"`) {
		t.Fatalf("a 1.1 state spells actionStatus in lower case: %s", payload)
	}
	b.Handle(context.Background(), prof.Topic(k11, vda5050.TopicState), payload)
	b.Flush(context.Background())
	if len(sink.states) != 1 || sink.states[0][0].ProtocolVersion != "1.1.0" {
		t.Fatalf("1.1 state not stored: %+v", sink.states)
	}
	j, _, ok := b.senders[b.shard("old/T1")].take(later())
	if !ok || len(j.ev.ActionStates) != 1 || j.ev.ActionStates[0].ActionStatus != vda5050.ActionRunning {
		t.Fatalf("action state not read: %+v", j)
	}
	if d := sink.deviations(); len(d) != 0 {
		t.Errorf("a state that follows its own edition's schema has no deviations: %v", d)
	}
}

// What the registry could not hold, or a robot has no business sending, is
// refused per message and counted against the robot: a NUL in a string
// (one such value used to fail every batched upsert), invalid UTF-8, an
// oversized message, a timestamp far in the future (it would make every
// later state look stale). The robot's next good state is used.
func TestHostileMessagesAreRefusedAndCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	b, sink, _ := newBridge(reg)
	ctx := context.Background()
	ghost := "uagv/v2/acme/NOBODY/state"
	nul := state(1, "A", 0)
	nul.Manufacturer, nul.SerialNumber = "acme", "NOBODY"
	nul.Errors = []vda5050.Error{{ErrorType: "bad\x00type", ErrorLevel: vda5050.ErrorWarning}}
	b.Handle(ctx, ghost, raw(t, nul))
	escaped := state(2, "A", 0)
	escaped.Errors = []vda5050.Error{{ErrorType: `a\u0000b`, ErrorLevel: vda5050.ErrorWarning}} // a literal backslash: no NUL
	b.Handle(ctx, stateTopic, raw(t, escaped))
	b.Handle(ctx, stateTopic, []byte("{\"headerId\":3,\"x\":\"\xff\xfe\"}"))
	big := state(4, "A", 0)
	big.Information = []vda5050.Info{{InfoType: "dump", InfoDescription: strings.Repeat("x", 300<<10), InfoLevel: "DEBUG"}}
	b.Handle(ctx, stateTopic, raw(t, big))
	future := state(5, "A", 0)
	future.Timestamp = vda5050.Timestamp(time.Now().Add(time.Hour))
	b.Handle(ctx, stateTopic, raw(t, future))
	good := state(6, "B", 1)
	good.Timestamp = vda5050.Timestamp(time.Now())
	b.Handle(ctx, stateTopic, raw(t, good))
	b.Flush(ctx)
	if v := testutil.ToFloat64(b.m.rejected.WithLabelValues("state")); v != 4 {
		t.Errorf("rejected %v, want 4 (NUL, UTF-8, size, future)", v)
	}
	var stored []int64
	for _, batch := range sink.states {
		for _, s := range batch {
			stored = append(stored, s.HeaderID)
		}
	}
	if fmt.Sprint(stored) != "[6]" {
		t.Errorf("stored headerIds %v, want [6]: the escaped backslash is kept as text and the good state replaces it in the batch", stored)
	}
	if d := sink.deviations(); d["acme/AMR-001 rejected"] != 3 || d["acme/NOBODY rejected"] != 1 {
		t.Errorf("counted per robot: %v", d)
	}
}

// refusingSink refuses, with a data error, every batch that holds one
// robot's state, and fails everything with a connection error while down.
type refusingSink struct {
	memSink
	bad  string
	down bool
}

func (s *refusingSink) UpsertStates(ctx context.Context, states []store.RobotState) error {
	if s.down {
		return &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}
	for _, st := range states {
		if st.RobotID == s.bad {
			return &pgconn.PgError{Code: "22021", Message: "invalid byte sequence for encoding \"UTF8\""}
		}
	}
	return s.memSink.UpsertStates(ctx, states)
}

// One row the registry refuses never blocks the others: the batch is
// written row by row, the bad state is dropped after RowRetries flushes and
// counted. A registry that is down keeps every state for later.
func TestBadRowIsIsolated(t *testing.T) {
	sink := &refusingSink{bad: "acme/BAD"}
	reg := prometheus.NewRegistry()
	b := New(sink, &memSignals{}, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: reg, FlushInterval: time.Hour, RowRetries: 2})
	ctx := context.Background()
	put := func(serial string, seq int) {
		st := state(seq, "A", 0)
		st.SerialNumber = serial
		b.Handle(ctx, "uagv/v2/acme/"+serial+"/state", raw(t, st))
	}
	put("BAD", 1)
	put("GOOD", 1)
	b.Flush(ctx)
	if len(sink.states) != 1 || sink.states[0][0].RobotID != "acme/GOOD" {
		t.Fatalf("the good robot's state must be stored despite the bad one: %+v", sink.states)
	}
	b.Flush(ctx) // the bad state alone, refused a second time: dropped
	if v := testutil.ToFloat64(b.m.rowsLost); v != 1 || b.pendingCount() != 0 {
		t.Fatalf("dropped %v, pending %d", v, b.pendingCount())
	}
	sink.down = true
	put("GOOD", 2)
	b.Flush(ctx)
	b.Flush(ctx)
	b.Flush(ctx)
	if b.pendingCount() != 1 {
		t.Fatal("a registry that is down must not cost a state")
	}
	sink.down = false
	b.Flush(ctx)
	if last := sink.states[len(sink.states)-1]; last[0].HeaderID != 2 {
		t.Fatalf("kept state not stored once the registry is back: %+v", last)
	}
}

// After a handover a mission's orderId is "<workflowID>#h<n>": its states
// and connection changes still go to the workflow.
func TestHandedOverOrderRoutesToItsWorkflow(t *testing.T) {
	b, _, _ := newBridge(nil)
	ctx := context.Background()
	st := state(1, "A", 0)
	st.OrderID = "mission-m-1#h1"
	b.Handle(ctx, stateTopic, raw(t, st))
	j, _, ok := b.senders[b.shard("acme/AMR-001")].take(later())
	if !ok || j.workflowID != "mission-m-1" || j.ev.OrderID != "mission-m-1#h1" {
		t.Fatalf("state routed to %+v", j)
	}
	b.Handle(ctx, "uagv/v2/acme/AMR-001/connection", raw(t, vda5050.Connection{Header: vda5050.Header{HeaderID: 1, Timestamp: vda5050.Timestamp(time.Now()), Version: "2.0.0", Manufacturer: "acme", SerialNumber: "AMR-001"}, ConnectionState: vda5050.ConnectionBroken}))
	j, _, ok = b.senders[b.shard("acme/AMR-001")].take(later())
	if !ok || j.workflowID != "mission-m-1" || j.ev.Connection != "CONNECTIONBROKEN" {
		t.Fatalf("connection change routed to %+v", j)
	}
}

// What condition-based maintenance is decided on is counted from the
// robot's own states: time reported driving (capped per gap, so a silent
// robot is not driving all the while), errors that appeared (an error
// repeated in the next state is one), the battery's state of health; only
// between consecutive headerIds (a gap, as when another bridge shares the
// robot's messages, counts nothing).
func TestHealthIsCountedFromStates(t *testing.T) {
	b, sink, _ := newBridge(nil)
	ctx := context.Background()
	s1 := state(1, "A", 0) // driving, t = 1 s; its errors (none) are not counted: first sight
	s2 := state(2, "A", 1) // driving, t = 3 s: 2 s driven
	s2.Timestamp = vda5050.Timestamp(time.Date(2026, 1, 1, 0, 0, 3, 0, time.UTC))
	s2.Errors = []vda5050.Error{{ErrorType: "lidarDirty", ErrorLevel: vda5050.ErrorWarning, ErrorDescription: "front"}}
	s3 := state(3, "B", 2) // t = 5 s: 2 s more; the same error again
	s3.Timestamp = vda5050.Timestamp(time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC))
	s3.Errors = s2.Errors
	s3.Driving = false
	h := 71.0
	s3.BatteryState.BatteryHealth = &h
	s4 := state(4, "B", 2) // stood still: nothing driven
	s4.Driving = false
	s5 := state(10, "C", 3) // driving from t = 10 s ...
	s6 := state(11, "C", 4) // ... silent for 700 s, next headerId: counted as 60 s
	s6.Timestamp = vda5050.Timestamp(time.Date(2026, 1, 1, 0, 11, 50, 0, time.UTC))
	s6.Errors = []vda5050.Error{{ErrorType: "bumper", ErrorLevel: vda5050.ErrorWarning, ErrorDescription: "hit"}}
	s7 := state(20, "C", 5) // headers 12–19 went elsewhere: this gap is not counted
	s7.Timestamp = vda5050.Timestamp(time.Date(2026, 1, 1, 0, 12, 50, 0, time.UTC))
	s7.Errors = []vda5050.Error{{ErrorType: "estop", ErrorLevel: vda5050.ErrorWarning, ErrorDescription: "pressed"}}
	for _, s := range []vda5050.State{s1, s2, s3, s4, s5, s6, s7} {
		b.Handle(ctx, stateTopic, raw(t, s))
	}
	b.Flush(ctx)
	var drive float64
	var errs int64
	var health *float64
	for _, d := range sink.health {
		if d.RobotID != "acme/AMR-001" {
			t.Fatalf("delta for %s", d.RobotID)
		}
		drive += d.DrivingSeconds
		errs += d.NewErrors
		if d.BatteryHealth != nil {
			health = d.BatteryHealth
		}
	}
	if drive != 2+2+60 || errs != 2 || health == nil || *health != 71 {
		t.Fatalf("driving %v s (want 64), new errors %d (want 2), battery health %v (want 71)", drive, errs, health)
	}
}

// A robot that echoes a softwareUpdate's URL with the store's presigned
// token: the token goes neither to the workflow (signal) nor to the
// registry.
func TestURLQueriesRedactedFromRobotText(t *testing.T) {
	b, sink, _ := newBridge(prometheus.NewRegistry())
	ctx := context.Background()
	st := state(1, "N1", 1, vda5050.ActionState{ActionID: "mission-m-1#u1", ActionType: "softwareUpdate", ActionStatus: vda5050.ActionFailed,
		ResultDescription: "download https://acct.blob.core.windows.net/fleetos/fleetos-2.0.0.bin?sv=2024&sig=SECRET failed: 403"})
	st.Errors = []vda5050.Error{{ErrorType: "downloadFailed", ErrorLevel: vda5050.ErrorWarning, ErrorDescription: "GET http://store/x.bin#frag?sig=SECRET refused"}}
	b.Handle(ctx, "uagv/v2/acme/AMR-001/state", raw(t, st))
	j, _, ok := b.senders[b.shard("acme/AMR-001")].take(later())
	if !ok {
		t.Fatal("no signal")
	}
	if strings.Contains(fmt.Sprint(j.ev), "SECRET") {
		t.Fatalf("the signal carries the token: %+v", j.ev)
	}
	if got := j.ev.ActionStates[0].ResultDescription; !strings.Contains(got, "https://acct.blob.core.windows.net/fleetos/fleetos-2.0.0.bin?…") {
		t.Fatalf("the URL itself is kept, its query dropped: %q", got)
	}
	b.Flush(ctx)
	if len(sink.states) == 0 {
		t.Fatal("nothing stored")
	}
	for _, batch := range sink.states {
		for _, s := range batch {
			if strings.Contains(string(s.ActionStates)+string(s.Errors), "SECRET") {
				t.Fatalf("the registry gets the token: %s %s", s.ActionStates, s.Errors)
			}
		}
	}
}

// The guard against a late OFFLINE outlives the states in between: ONLINE,
// a state, then the old session's OFFLINE (sent before the ONLINE) is
// still late.
func TestLateOfflineAfterAStateIsDropped(t *testing.T) {
	b, sink, _ := newBridge(prometheus.NewRegistry())
	ctx := context.Background()
	t0 := time.Now()
	conn := func(s vda5050.ConnectionState, at time.Time) []byte {
		return raw(t, vda5050.Connection{Header: vda5050.Header{Timestamp: vda5050.Timestamp(at), Version: vda5050.Version,
			Manufacturer: "acme", SerialNumber: "AMR-001"}, ConnectionState: s})
	}
	b.Handle(ctx, "uagv/v2/acme/AMR-001/connection", conn(vda5050.ConnectionOnline, t0.Add(time.Millisecond)))
	b.Handle(ctx, "uagv/v2/acme/AMR-001/state", raw(t, state(1, "A", 1)))
	b.Handle(ctx, "uagv/v2/acme/AMR-001/connection", conn(vda5050.ConnectionOffline, t0))
	b.Flush(ctx)
	if len(sink.conns) != 1 || sink.conns[0].State != "ONLINE" {
		t.Fatalf("stored connection updates %+v, want only the ONLINE", sink.conns)
	}
	if v := testutil.ToFloat64(b.m.rejected.WithLabelValues("stale")); v != 1 {
		t.Errorf("stale rejections %v, want 1", v)
	}
}

// A factsheet that cannot be read is counted, as any other message; a
// cleared retained one is not.
func TestUnreadableFactsheetIsCounted(t *testing.T) {
	b, _, _ := newBridge(prometheus.NewRegistry())
	b.Handle(context.Background(), "uagv/v2/acme/AMR-001/factsheet", []byte(`[1,2]`))
	if v := testutil.ToFloat64(b.m.rejected.WithLabelValues("factsheet")); v != 1 {
		t.Errorf("factsheet rejections %v, want 1", v)
	}
	// A cleared retained factsheet (an empty payload) is no message at all.
	b.Handle(context.Background(), "uagv/v2/acme/AMR-001/factsheet", nil)
	if v := testutil.ToFloat64(b.m.rejected.WithLabelValues("factsheet")); v != 1 {
		t.Errorf("a cleared retained factsheet was counted as rejected (%v)", v)
	}
}

// A broken paused is its own part: the route's progress in the same
// state is news (it used to be replaced by the last progress, freezing a
// vehicle that sends paused off schema in every state).
func TestBrokenPausedKeepsTheProgress(t *testing.T) {
	b, sink, _ := newBridge(nil)
	ctx := context.Background()
	sd := b.senders[b.shard("acme/AMR-001")]
	b.Handle(ctx, stateTopic, bend(t, state(1, "A", 1), func(m map[string]any) { m["paused"] = "no" }))
	sd.take(later())
	next := state(2, "B", 2)
	next.NodeStates = []vda5050.NodeState{}
	b.Handle(ctx, stateTopic, bend(t, next, func(m map[string]any) { m["paused"] = "no" }))
	b.Flush(ctx)
	if got := sink.states[0][0]; got.LastNodeID != "B" || got.NodeStatesRemaining != 0 || got.Paused {
		t.Fatalf("want the new progress stored: %+v", got)
	}
	if j, _, ok := sd.take(later()); !ok || j.ev.LastNodeID != "B" {
		t.Fatalf("progress not signalled: %+v %v", j, ok)
	}
}

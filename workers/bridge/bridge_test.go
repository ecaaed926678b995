package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

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
}

func (m *memSink) UpsertStates(_ context.Context, s []store.RobotState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.states = append(m.states, s)
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
	b, sink, sig := newBridge(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	b.Enqueue(stateTopic, raw(t, state(1, "A", 0)))   // first: signal
	b.Enqueue(stateTopic, raw(t, state(2, "A", 0.5))) // position only: no signal
	b.Enqueue(stateTopic, raw(t, state(3, "A", 1.0))) // position only: no signal
	b.Enqueue(stateTopic, raw(t, state(4, "B", 2.0))) // node reached: signal
	b.Enqueue(stateTopic, raw(t, state(5, "B", 2.0, vda5050.ActionState{ActionID: "mission-m-1#cancel", ActionStatus: vda5050.ActionRunning})))
	deadline := time.Now().Add(5 * time.Second)
	for len(sig.all()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	got := sig.all()
	if len(got) != 3 {
		t.Fatalf("want 3 signals (first, node reached, action change), got %d: %+v", len(got), got)
	}
	for _, j := range got {
		if j.workflowID != "mission-m-1" {
			t.Errorf("signalled %s", j.workflowID)
		}
	}
	if got[1].ev.LastNodeID != "B" || got[1].ev.NodesRemaining != 1 {
		t.Errorf("event %+v", got[1].ev)
	}
	// Run flushed on exit: the latest state per robot, once.
	var last store.RobotState
	n := 0
	for _, batch := range sink.states {
		for _, s := range batch {
			last = s
			n++
		}
	}
	if n == 0 || last.LastNodeID != "B" || last.HeaderID != 5 {
		t.Fatalf("stored %d states, last %+v", n, last)
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
}

func TestConnectionLossSignalsOwner(t *testing.T) {
	b, _, _ := newBridge(nil)
	ctx := context.Background()
	b.Handle(ctx, stateTopic, raw(t, state(1, "A", 0)))
	<-b.senders[b.shard("acme/AMR-001")] // drain the state's signal
	conn := vda5050.Connection{Header: vda5050.Header{Timestamp: vda5050.Timestamp(time.Now()), Version: vda5050.Version, Manufacturer: "acme", SerialNumber: "AMR-001"}, ConnectionState: vda5050.ConnectionBroken}
	b.Handle(ctx, "uagv/v2/acme/AMR-001/connection", raw(t, conn))
	select {
	case j := <-b.senders[b.shard("acme/AMR-001")]:
		if j.workflowID != "mission-m-1" || j.ev.Connection != "CONNECTIONBROKEN" {
			t.Fatalf("%+v", j)
		}
	default:
		t.Fatal("no signal for a lost connection")
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
	// Drain signals so the sender queues never fill.
	stop := make(chan struct{})
	for _, ch := range br.senders {
		go func(ch chan signalJob) {
			for {
				select {
				case <-ch:
				case <-stop:
					return
				}
			}
		}(ch)
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

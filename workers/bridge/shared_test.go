package bridge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fleetflow/fleetflow/internal/testbroker"
	"github.com/fleetflow/fleetflow/internal/vda5050"
)

// Two bridges on one real Mosquitto with a shared subscription
// (mqtt.sharedGroup: $share/<group>/…): the broker hands each state
// message to exactly one of them, so together they handle every message
// once and neither handles all. (What this costs — a robot's states split
// between them, so change detection and the condition counts, which need
// consecutive states, see only part of each robot — is why deploy/ runs
// one bridge per broker; README, "On Kubernetes".)
func TestSharedSubscriptionHandlesEachStateOnce(t *testing.T) {
	broker := testbroker.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type running struct {
		b    *Bridge
		sink *memSink
	}
	var bridges []running
	for i := range 2 {
		sink, sig := &memSink{}, &memSignals{}
		b := New(sink, sig, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(), FlushInterval: 5 * time.Millisecond})
		go b.Run(ctx)
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID(fmt.Sprintf("bridge-%d", i)).SetOrderMatters(true))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("bridge %d: connect: %v", i, tok.Error())
		}
		defer c.Disconnect(100)
		if err := b.Subscribe(c, "bridges"); err != nil {
			t.Fatalf("bridge %d: subscribe: %v", i, err)
		}
		bridges = append(bridges, running{b, sink})
	}
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("robots"))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)
	const robots, steps = 5, 40
	for i := 1; i <= steps; i++ {
		for r := range robots {
			st := state(i, fmt.Sprintf("N%d", i), float64(i))
			st.SerialNumber = fmt.Sprintf("AMR-%03d", r)
			// QoS 1: the test counts deliveries, so none may be lost on the way.
			if tok := pub.Publish(fmt.Sprintf("uagv/v2/acme/AMR-%03d/state", r), 1, false, raw(t, st)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatal(tok.Error())
			}
		}
	}
	received := func() (each []float64, total float64) {
		for _, r := range bridges {
			n := testutil.ToFloat64(r.b.m.received.WithLabelValues(string(vda5050.TopicState)))
			each = append(each, n)
			total += n
		}
		return each, total
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, total := received(); total >= robots*steps || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive by now
	each, total := received()
	if total != robots*steps {
		t.Fatalf("the two bridges handled %v state messages (%v each), want each of the %d exactly once", total, each, robots*steps)
	}
	for i, n := range each {
		if n == 0 || n == robots*steps {
			t.Fatalf("bridge %d handled %v of %d: the shared subscription did not split the messages (%v)", i, n, robots*steps, each)
		}
	}
}

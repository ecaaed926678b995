package bridge

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetflow/fleetflow/internal/vda5050"
)

// FuzzHandle feeds arbitrary payloads to the bridge's decode-and-route path
// on a robot's state and connection topics (seeds: testdata/fuzz/bridge).
// Whatever arrives, the bridge must not panic, and what it stores must be
// something the registry can hold: the topic's robot, JSON arrays for
// errors and action states, no NUL.
func FuzzHandle(f *testing.F) {
	seeds, _ := filepath.Glob("../../testdata/fuzz/bridge/*.json")
	for _, p := range seeds {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(false, raw)
	}
	f.Add(true, []byte(`{"headerId":1,"timestamp":"2026-01-01T00:00:00.000Z","version":"2.0.0","manufacturer":"fuzz","serialNumber":"R1","connectionState":"ONLINE"}`))
	f.Add(false, []byte(`{"headerId":1,"errors":[{"errorType":"a\u0000b"}]}`))
	sink := &memSink{}
	b := New(sink, &memSignals{}, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FlushInterval: time.Hour, Decoders: 1, Senders: 1, QueueSize: 16})
	f.Fuzz(func(t *testing.T, connection bool, payload []byte) {
		sink.mu.Lock()
		sink.states, sink.conns, sink.devs = nil, nil, nil
		sink.mu.Unlock()
		topic := "uagv/v2/fuzz/R1/state"
		var h vda5050.Header
		if json.Unmarshal(payload, &h) == nil && vda5050.ValidIdentifier(h.Manufacturer) == nil && vda5050.ValidIdentifier(h.SerialNumber) == nil {
			topic = "uagv/v2/" + h.Manufacturer + "/" + h.SerialNumber + "/state"
		}
		if connection {
			topic = strings.TrimSuffix(topic, "state") + "connection"
		}
		ctx := context.Background()
		done := make(chan struct{})
		go func() {
			defer close(done)
			b.Handle(ctx, topic, payload)
			b.Handle(ctx, topic, payload) // the same again: a duplicate
			b.Flush(ctx)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("the bridge hangs on %q", payload)
		}
		k, _, _ := vda5050.ParseTopic(topic)
		for _, batch := range sink.states {
			for _, s := range batch {
				if s.RobotID != k.String() {
					t.Fatalf("stored for %s from topic %s", s.RobotID, topic)
				}
				for _, arr := range [][]byte{s.Errors, s.ActionStates} {
					var v []any
					if err := json.Unmarshal(arr, &v); err != nil {
						t.Fatalf("not a JSON array: %s", arr)
					}
					if strings.Contains(string(arr), `\u0000`) {
						t.Fatalf("a NUL reached the registry: %s", arr)
					}
				}
				for _, str := range []string{s.OrderID, s.LastNodeID, s.FatalError, s.MapID, s.SoftwareVersion} {
					if strings.ContainsRune(str, 0) {
						t.Fatalf("a NUL reached the registry: %q", str)
					}
				}
			}
		}
	})
}

package sim

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetflow/fleetflow/internal/vda5050"
)

// FuzzRobotInbound feeds arbitrary orders and instantActions to a virtual
// robot, as a broker would deliver them (seeds: testdata/fuzz/order). The
// robot must not panic, and the state it would publish must still pass its
// edition's schema (theta aside, for an echoing robot).
func FuzzRobotInbound(f *testing.F) {
	seeds, _ := filepath.Glob("../../testdata/fuzz/order/*.json")
	for _, p := range seeds {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(false, raw)
		f.Add(true, raw)
	}
	opts := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), StateInterval: DefaultStateInterval, BatteryDrainPerMetre: DefaultBatteryDrainPerMetre}
	f.Fuzz(func(t *testing.T, instant bool, payload []byte) {
		r := newRobot(&opts, RobotConfig{Manufacturer: "fuzz", SerialNumber: "R1", StartNode: "A", MapID: "m", SoftwareVersion: "1.0.0"})
		topic := vda5050.TopicOrder
		if instant {
			topic = vda5050.TopicInstantActions
		}
		now := time.Now()
		r.withState(func(now time.Time) { r.handleInbound(inbound{topic: topic, payload: payload}, now) })
		r.withState(func(time.Time) {}) // let it make progress
		r.mu.Lock()
		st := r.state(now.Add(time.Second))
		r.mu.Unlock()
		st.Header = vda5050.Header{HeaderID: 1, Timestamp: vda5050.Timestamp(now), Version: r.profile.Version, Manufacturer: "fuzz", SerialNumber: "R1"}
		raw, err := r.profile.Encode(vda5050.TopicState, st)
		if err != nil {
			t.Fatalf("the robot's state breaks its schema after %s %q: %v", topic, payload, err)
		}
		_ = raw
	})
}

package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Deviation counts add up per robot and kind across batches; the latest
// occurrence wins; unregistered robots and NUL bytes (robot-made text) do
// not break the batch.
func TestAddDeviations(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	if err := s.RegisterRobots(ctx, []Robot{robot("r1", "a", 0, 0)}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	batch := []DeviationCount{
		{RobotID: "acme/r1", Kind: "theta_missing", Count: 3, LastPath: "/nodeStates/0/nodePosition", LastAt: t0},
		{RobotID: "acme/r1", Kind: "theta_missing", Count: 2, LastPath: "/nodeStates/1/nodePosition", LastAt: t0.Add(time.Second)},
		{RobotID: "acme/r1", Kind: "rejected", Count: 1, LastDetail: "state: not JSON \x00here", LastAt: t0},
		{RobotID: "acme/ghost", Kind: "rejected", Count: 1, LastAt: t0},
	}
	if err := s.AddDeviations(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := s.AddDeviations(ctx, []DeviationCount{{RobotID: "acme/r1", Kind: "theta_missing", Count: 1, LastPath: "/nodeStates/2/nodePosition", LastAt: t0.Add(2 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.RobotDeviations(ctx, "acme/r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%+v", got)
	}
	rej, theta := got[0], got[1]
	if rej.Kind != "rejected" || rej.Count != 1 || rej.LastDetail != "state: not JSON here" {
		t.Errorf("rejected: %+v", rej)
	}
	if theta.Count != 6 || theta.LastPath != "/nodeStates/2/nodePosition" || !theta.LastAt.Equal(t0.Add(2*time.Second)) {
		t.Errorf("theta_missing: %+v", theta)
	}
	if err := s.AddDeviations(ctx, []DeviationCount{{RobotID: "acme/r1", Kind: "x"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a zero count: %v", err)
	}
}

// An audit row keyed once is written once, however often the activity
// that writes it runs.
func TestAuditOnce(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := s.AuditOnce(ctx, "mission-m/end/run-1", "fleetflow", "mission.completed", "mission-m", map[string]any{"try": i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AuditOnce(ctx, "mission-m/end/run-2", "fleetflow", "mission.completed", "mission-m", nil); err != nil {
		t.Fatal(err)
	}
	trail, err := s.AuditTrail(ctx, "mission-m")
	if err != nil {
		t.Fatal(err)
	}
	if len(trail) != 2 {
		t.Fatalf("want one row per key, got %d", len(trail))
	}
	if err := s.AuditOnce(ctx, "", "a", "k", "s", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty key: %v", err)
	}
}

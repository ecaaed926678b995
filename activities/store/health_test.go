package store

import (
	"context"
	"testing"
)

// Condition counters add up per robot, pass thresholds, and start again
// when the robot is serviced; a worn battery that a technician accepted
// triggers again only when it wears further.
func TestHealthCountersAndTriggers(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	a, b := robot("h1", "site-h", 0, 0), robot("h2", "site-h", 1, 0)
	if err := s.RegisterRobots(ctx, []Robot{a, b}); err != nil {
		t.Fatal(err)
	}
	f := func(v float64) *float64 { return &v }
	if err := s.AddHealth(ctx, []HealthDelta{
		{RobotID: "acme/h1", DrivingSeconds: 3000, NewErrors: 2, BatteryHealth: f(90)},
		{RobotID: "acme/h2", DrivingSeconds: 10, BatteryHealth: f(55)},
		{RobotID: "acme/unknown", NewErrors: 9},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddHealth(ctx, []HealthDelta{{RobotID: "acme/h1", DrivingSeconds: 700, NewErrors: 1}}); err != nil {
		t.Fatal(err)
	}
	h, err := s.RobotHealth(ctx, "acme/h1")
	if err != nil {
		t.Fatal(err)
	}
	if h.DrivingSeconds != 3700 || h.ErrorsSeen != 3 || h.BatteryHealth == nil || *h.BatteryHealth != 90 || h.Epoch != 0 {
		t.Fatalf("h1 counters: %+v", h)
	}
	th := HealthThresholds{BatteryHealthBelow: 60, Errors: 3, DrivingHours: 1}
	due, reasons, err := s.HealthDue(ctx, th)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 2 || due[0].RobotID != "acme/h1" || len(reasons[0]) != 2 || due[1].RobotID != "acme/h2" || len(reasons[1]) != 1 {
		t.Fatalf("due %+v, reasons %q", due, reasons)
	}
	// A robot out of service is not due.
	if _, err := s.SetServiceStatus(ctx, "acme/h1", OutOfService, "t", ""); err != nil {
		t.Fatal(err)
	}
	if due, _, _ := s.HealthDue(ctx, th); len(due) != 1 || due[0].RobotID != "acme/h2" {
		t.Fatalf("out of service still due: %+v", due)
	}
	// Serviced: a new epoch, counters from zero, the accepted battery
	// health remembered.
	for _, id := range []string{"acme/h1", "acme/h2"} {
		if _, err := s.SetServiceStatus(ctx, id, InService, "t", ""); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkServiced(ctx, id, "maintenance-x", "signed off"); err != nil {
			t.Fatal(err)
		}
	}
	if h, _ := s.RobotHealth(ctx, "acme/h1"); h.Epoch != 1 || h.DrivingSeconds != 0 || h.ErrorsSeen != 0 {
		t.Fatalf("after service: %+v", h)
	}
	if due, _, _ := s.HealthDue(ctx, th); len(due) != 0 {
		t.Fatalf("due right after service: %+v", due)
	}
	if err := s.AddHealth(ctx, []HealthDelta{{RobotID: "acme/h2", BatteryHealth: f(50)}}); err != nil {
		t.Fatal(err)
	}
	if due, reasons, _ := s.HealthDue(ctx, th); len(due) != 1 || due[0].RobotID != "acme/h2" || due[0].Epoch != 1 {
		t.Fatalf("a battery that wore further is due again: %+v %q", due, reasons)
	}
	// Its maintenance started: not due again in this epoch.
	if err := s.MarkTriggered(ctx, "acme/h2", 1); err != nil {
		t.Fatal(err)
	}
	if due, _, _ := s.HealthDue(ctx, th); len(due) != 0 {
		t.Fatalf("due again in a triggered epoch: %+v", due)
	}
	// A wobble of a point below the accepted value is no new wear.
	if err := s.MarkServiced(ctx, "acme/h2", "maintenance-y", "signed off"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddHealth(ctx, []HealthDelta{{RobotID: "acme/h2", BatteryHealth: f(49)}}); err != nil {
		t.Fatal(err)
	}
	if due, _, _ := s.HealthDue(ctx, th); len(due) != 0 {
		t.Fatalf("a wobble within HealthMargin triggered: %+v", due)
	}
	if err := s.MarkServiced(ctx, "acme/none", "t", ""); err == nil {
		t.Fatal("unknown robot serviced")
	}
}

// fleet show's last holders come from the reservation.granted audit rows,
// newest first, a repeated grant counted once.
func TestLastHolders(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	r := robot("lh", "site-l", 0, 0)
	if err := s.RegisterRobots(ctx, []Robot{r}); err != nil {
		t.Fatal(err)
	}
	onlineAt(t, s, 90, r)
	for _, m := range []string{"m-1", "m-2"} {
		req := ReserveRequest{MissionID: m, WorkflowID: "mission-" + m, Site: "site-l"}
		for range 2 { // the second call is a retry: the same grant
			if res, err := s.Reserve(ctx, req); err != nil || res.RobotID != "acme/lh" {
				t.Fatalf("reserve %s: %+v %v", m, res, err)
			}
		}
		if _, err := s.Release(ctx, "acme/lh", m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.LastHolders(ctx, "acme/lh", 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Holder != "m-2" || got[1].Holder != "m-1" {
		t.Fatalf("last holders %+v", got)
	}
}

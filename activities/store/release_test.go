package store

import (
	"context"
	"testing"
)

// A release that commits while a Reserve decides to queue, and reads the
// line before that Reserve commits, wakes nobody: the Reserve must see the
// robot free when it looks again after its commit, and take it.
func TestReserveQueuedAfterAReleaseItMissedTakesTheRobot(t *testing.T) {
	s := oneRobotHeld(t)
	ctx := context.Background()
	req := func(mission string) ReserveRequest {
		return ReserveRequest{MissionID: mission, WorkflowID: "wf-" + mission, Site: "a"}
	}
	w, err := s.Reserve(ctx, req("waiter"))
	if err != nil || w.Queued || w.RobotID != "acme/r1" {
		t.Fatalf("waiter = %+v, %v; want acme/r1 (the robot freed while it queued)", w, err)
	}
	if n := tableCount(t, s, "reservation_queue"); n != 0 {
		t.Fatalf("%d requests left in line, want 0", n)
	}

	// Nobody free: the look finds nothing and the request stays queued.
	w2, err := s.Reserve(ctx, req("waiter2"))
	if err != nil || !w2.Queued || w2.QueuePosition != 1 {
		t.Fatalf("waiter2 = %+v, %v; want queued at 1", w2, err)
	}
}

// A mission's end row is written in its release's transaction, once
// however often the release runs.
func TestReleaseWritesTheEndRowOnce(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	r1 := robot("r1", "a", 0, 0)
	if err := s.RegisterRobots(ctx, []Robot{r1}); err != nil {
		t.Fatal(err)
	}
	onlineAt(t, s, 100, r1)
	if _, err := s.Reserve(ctx, ReserveRequest{MissionID: "m1", WorkflowID: "mission-m1", Site: "a"}); err != nil {
		t.Fatal(err)
	}
	end := AuditRow{Key: "mission-m1/end/run-1", Actor: "ops", Kind: "mission.completed", Subject: "mission-m1",
		Details: map[string]any{"state": "COMPLETED"}}
	for range 2 {
		if _, err := s.Release(ctx, "acme/r1", "m1", end); err != nil {
			t.Fatal(err)
		}
	}
	trail, err := s.AuditTrail(ctx, "mission-m1")
	if err != nil {
		t.Fatal(err)
	}
	ends := 0
	for _, e := range trail {
		if e.Kind == "mission.completed" {
			ends++
		}
	}
	if ends != 1 {
		t.Fatalf("%d mission.completed rows, want 1: %+v", ends, trail)
	}
	if _, ok, _ := s.ReservationOf(ctx, "m1"); ok {
		t.Fatal("robot still reserved")
	}
	// An unknown robot: the row is still written.
	if _, err := s.Release(ctx, "acme/nope", "m2", AuditRow{Key: "k2", Actor: "ops", Kind: "mission.failed", Subject: "mission-m2"}); err != nil {
		t.Fatal(err)
	}
	if trail, _ := s.AuditTrail(ctx, "mission-m2"); len(trail) != 1 {
		t.Fatalf("unknown robot: %d rows, want the end row", len(trail))
	}
}

// The look again after queueing counts only robots the request could
// use: a freed robot without the required capability leaves the request
// queued after one decision (one reservation.queued row, not two).
func TestReserveQueuedLooksAgainOnlyForRobotsItCanUse(t *testing.T) {
	s := oneRobotHeld(t) // r1 has no "lift"
	ctx := context.Background()
	w, err := s.Reserve(ctx, ReserveRequest{MissionID: "lifter", WorkflowID: "wf-lifter", Site: "a", RequiredCapabilities: []string{"lift"}})
	if err != nil || !w.Queued {
		t.Fatalf("lifter = %+v, %v; want queued (the free robot cannot lift)", w, err)
	}
	trail, err := s.AuditTrail(ctx, "lifter")
	if err != nil {
		t.Fatal(err)
	}
	queued := 0
	for _, e := range trail {
		if e.Kind == "reservation.queued" {
			queued++
		}
	}
	if queued != 1 {
		t.Fatalf("%d reservation.queued rows, want 1 (one decision): %+v", queued, trail)
	}
}

// oneRobotHeld registers robot r1 (caps) at site a, ONLINE, reserved by
// mission "holder", and arranges that the holder's reservation goes away
// between the next queued decision and its look again: as if the
// holder's release had committed and read the line before that request
// was in it (so it woke nobody).
func oneRobotHeld(t *testing.T, caps ...string) *Store {
	t.Helper()
	s, _ := newTestStore(t)
	ctx := context.Background()
	r1 := robot("r1", "a", 0, 0, caps...)
	if err := s.RegisterRobots(ctx, []Robot{r1}); err != nil {
		t.Fatal(err)
	}
	onlineAt(t, s, 100, r1)
	if h, err := s.Reserve(ctx, ReserveRequest{MissionID: "holder", WorkflowID: "wf-holder", Site: "a"}); err != nil || h.RobotID != "acme/r1" {
		t.Fatalf("holder = %+v, %v", h, err)
	}
	testHookQueued = func(ReserveRequest) {
		testHookQueued = nil
		if _, err := s.pool.Exec(ctx, `DELETE FROM reservations WHERE mission_id = 'holder'`); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { testHookQueued = nil })
	return s
}

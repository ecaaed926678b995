package store

import (
	"context"
	"fmt"
	"testing"
)

// Robot-specific reservations (ReserveRequest.RobotID, used by OTA updates)
// against a real PostgreSQL.

// otaReq asks for one particular robot, with requirements it does not meet:
// they must be ignored.
func otaReq(mission, robotID, site string) ReserveRequest {
	return ReserveRequest{MissionID: mission, WorkflowID: "wf-" + mission, Site: site, RobotID: robotID,
		RequiredCapabilities: []string{"lift"}, MinBattery: 50}
}

// missionReq asks for any robot of site near (x, y).
func missionReq(mission, site string, x, y float64, caps ...string) ReserveRequest {
	return ReserveRequest{MissionID: mission, WorkflowID: "wf-" + mission, Site: site, X: x, Y: y,
		RequiredCapabilities: caps, FirstNode: "n0"}
}

func mustReserve(t *testing.T, s *Store, req ReserveRequest) Reservation {
	t.Helper()
	r, err := s.Reserve(context.Background(), req)
	if err != nil {
		t.Fatalf("Reserve %s: %v", req.MissionID, err)
	}
	return r
}

func wantGranted(t *testing.T, r Reservation, mission, robotID string) {
	t.Helper()
	if r.MissionID != mission || r.RobotID != robotID || r.Queued || r.QueuePosition != 0 {
		t.Fatalf("%s: reservation %+v, want %s granted", mission, r, robotID)
	}
}

func wantQueued(t *testing.T, r Reservation, mission string, position int) {
	t.Helper()
	if r.MissionID != mission || r.RobotID != "" || !r.Queued || r.QueuePosition != position {
		t.Fatalf("%s: reservation %+v, want queued at %d", mission, r, position)
	}
}

func wantWake(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != len(want) {
		t.Fatalf("%s: wake %q, want %q", what, got, want)
	}
}

func mustRelease(t *testing.T, s *Store, robotID, mission string) []string {
	t.Helper()
	wake, err := s.Release(context.Background(), robotID, mission)
	if err != nil {
		t.Fatalf("Release %s by %s: %v", robotID, mission, err)
	}
	return wake
}

func wantHolder(t *testing.T, s *Store, mission, robotID string) {
	t.Helper()
	got, ok, err := s.ReservationOf(context.Background(), mission)
	if err != nil {
		t.Fatal(err)
	}
	if robotID == "" && ok || robotID != "" && (!ok || got != robotID) {
		t.Fatalf("ReservationOf(%s) = %q, %v; want %q", mission, got, ok, robotID)
	}
}

// (a) A robot-specific request for an idle robot gets exactly that robot,
// although another robot is nearer and the request's capabilities and
// battery minimum would rule it out; and it never gets another robot.
func TestReserveRobotSpecificIdle(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	near := robot("near", "a", 0, 0, "lift")
	target := robot("target", "a", 50, 0) // no lift, low battery, far away
	offline := robot("offline", "a", 1, 0, "lift")
	fatal := robot("fatal", "a", 2, 0, "lift")
	if err := s.RegisterRobots(ctx, []Robot{near, target, offline, fatal}); err != nil {
		t.Fatal(err)
	}
	onlineAt(t, s, 90, near, fatal)
	onlineAt(t, s, 10, target)
	if err := s.UpsertStates(ctx, []RobotState{{RobotID: "acme/fatal", BatteryCharge: 90, X: 2, HeaderID: 2,
		FatalError: "motorFault: overheated"}}); err != nil {
		t.Fatal(err)
	}

	// Without RobotID, the request gets the nearest lifter (acme/target
	// has no lift, too little battery and is far away)…
	req := otaReq("update-target", "acme/target", "a")
	control := req
	control.MissionID, control.RobotID = "control", ""
	wantGranted(t, mustReserve(t, s, control), "control", "acme/near")
	wantWake(t, "release of control", mustRelease(t, s, "acme/near", "control"))
	// … with RobotID exactly that robot.
	r := mustReserve(t, s, req)
	wantGranted(t, r, "update-target", "acme/target")
	wantHolder(t, s, "update-target", "acme/target")

	// (d) Idempotent: the same reservation again, nothing new queued or reserved.
	for range 2 {
		again := mustReserve(t, s, req)
		if !same(again, r) {
			t.Fatalf("Reserve again = %+v, want %+v", again, r)
		}
	}
	if n := tableCount(t, s, "reservations"); n != 1 {
		t.Fatalf("%d reservations, want 1", n)
	}
	if n := tableCount(t, s, "reservation_queue"); n != 0 {
		t.Fatalf("%d queued, want 0", n)
	}

	// Only that robot is eligible: an offline or faulty robot is waited
	// for, even though a free robot that fits stands right there.
	wantQueued(t, mustReserve(t, s, otaReq("update-offline", "acme/offline", "a")), "update-offline", 1)
	wantQueued(t, mustReserve(t, s, otaReq("update-fatal", "acme/fatal", "a")), "update-fatal", 2)
	// A robot of another site, or no robot at all, is never granted.
	if err := s.RegisterRobots(ctx, []Robot{robot("elsewhere", "b", 0, 0, "lift")}); err != nil {
		t.Fatal(err)
	}
	onlineAt(t, s, 90, robot("elsewhere", "b", 0, 0, "lift"))
	wantQueued(t, mustReserve(t, s, otaReq("update-elsewhere", "acme/elsewhere", "a")), "update-elsewhere", 3)
	wantQueued(t, mustReserve(t, s, otaReq("update-ghost", "acme/ghost", "a")), "update-ghost", 4)

	// The robot-specific waiters hold nothing back from missions: the
	// nearest lifter is still free for one.
	m := mustReserve(t, s, missionReq("m1", "a", 0, 0, "lift"))
	wantGranted(t, m, "m1", "acme/near")
	// Ahead of m1 in line, none of the waiters could be served.
	wantWake(t, "m1", m.Wake)

	// When the faulty robot recovers, its waiter is woken and gets it.
	if err := s.UpsertStates(ctx, []RobotState{{RobotID: "acme/fatal", BatteryCharge: 90, X: 2, HeaderID: 3}}); err != nil {
		t.Fatal(err)
	}
	wantWake(t, "release of m1", mustRelease(t, s, "acme/near", "m1"), "wf-update-fatal")
	wantGranted(t, mustReserve(t, s, otaReq("update-fatal", "acme/fatal", "a")), "update-fatal", "acme/fatal")
}

// (b) A robot-specific request for a robot a mission holds waits in line; a
// mission that asks later does not get the robot when it is released:
// Release names the robot-specific waiter, and its next Reserve gets it.
func TestReserveRobotSpecificWaitsAhead(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	solo := robot("solo", "a", 0, 0, "lift")
	if err := s.RegisterRobots(ctx, []Robot{solo, robot("other", "b", 0, 0, "lift")}); err != nil {
		t.Fatal(err)
	}
	onlineAt(t, s, 100, solo, robot("other", "b", 0, 0, "lift"))

	wantGranted(t, mustReserve(t, s, missionReq("m1", "a", 0, 0)), "m1", "acme/solo")

	upd := otaReq("update-solo", "acme/solo", "a")
	wantQueued(t, mustReserve(t, s, upd), "update-solo", 1)
	// (d) Idempotent while queued: same place in line, one queue row.
	wantQueued(t, mustReserve(t, s, upd), "update-solo", 1)
	if n := tableCount(t, s, "reservation_queue"); n != 1 {
		t.Fatalf("%d queued, want 1", n)
	}

	// A mission of the same priority, right at the robot, queues behind it.
	m2 := missionReq("m2", "a", 0, 0, "lift")
	wantQueued(t, mustReserve(t, s, m2), "m2", 2)

	// The release wakes the robot-specific waiter only.
	wantWake(t, "release of m1", mustRelease(t, s, "acme/solo", "m1"), "wf-update-solo")
	// A retried release names it again.
	wantWake(t, "release of m1 again", mustRelease(t, s, "acme/solo", "m1"), "wf-update-solo")

	// The mission retries first and still does not get the robot; it learns
	// whom the robot waits for.
	r := mustReserve(t, s, m2)
	wantQueued(t, r, "m2", 2)
	wantWake(t, "m2 retry", r.Wake, "wf-update-solo")
	wantHolder(t, s, "m2", "")

	// The robot-specific request gets it.
	got := mustReserve(t, s, upd)
	wantGranted(t, got, "update-solo", "acme/solo")
	wantHolder(t, s, "update-solo", "acme/solo")
	// (d) Idempotent once granted.
	if again := mustReserve(t, s, upd); !same(again, got) {
		t.Fatalf("Reserve again = %+v, want %+v", again, got)
	}
	wantQueued(t, mustReserve(t, s, m2), "m2", 1)
	if n := tableCount(t, s, "reservation_queue"); n != 1 {
		t.Fatalf("%d queued after the grant, want 1 (m2)", n)
	}

	// After the update the mission gets the robot.
	wantWake(t, "release of the update", mustRelease(t, s, "acme/solo", "update-solo"), "wf-m2")
	wantGranted(t, mustReserve(t, s, m2), "m2", "acme/solo")

	// Audit trail of the update: queued (twice), granted, released.
	trail, err := s.AuditTrail(ctx, "update-solo")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range trail {
		kinds = append(kinds, e.Kind)
	}
	if fmt.Sprint(kinds) != "[reservation.queued reservation.queued reservation.granted reservation.granted reservation.released]" {
		t.Fatalf("audit of update-solo = %v", kinds)
	}
}

// (c) A robot-specific waiter does not block missions from other free
// robots, neither when they reserve nor when a robot is released.
func TestReserveRobotSpecificDoesNotBlockOtherRobots(t *testing.T) {
	s, _ := newTestStore(t)
	busy := robot("busy", "a", 0, 0, "lift")
	spare := robot("spare", "a", 10, 0, "lift")
	if err := s.RegisterRobots(context.Background(), []Robot{busy, spare}); err != nil {
		t.Fatal(err)
	}
	onlineAt(t, s, 100, busy, spare)

	wantGranted(t, mustReserve(t, s, missionReq("m1", "a", 0, 0)), "m1", "acme/busy")
	upd := otaReq("update-busy", "acme/busy", "a")
	wantQueued(t, mustReserve(t, s, upd), "update-busy", 1)

	// A later mission of the same priority gets the other free robot
	// although the robot-specific request is ahead of it in line.
	r := mustReserve(t, s, missionReq("m2", "a", 0, 0, "lift"))
	wantGranted(t, r, "m2", "acme/spare")
	wantWake(t, "m2", r.Wake)
	// Now every robot is taken: the next mission queues behind the update.
	m3 := missionReq("m3", "a", 0, 0)
	wantQueued(t, mustReserve(t, s, m3), "m3", 2)

	// Freeing the spare wakes m3, not the update that cannot use it.
	wantWake(t, "release of spare", mustRelease(t, s, "acme/spare", "m2"), "wf-m3")
	// The update still waits (first in line), and m3 gets the spare.
	wantQueued(t, mustReserve(t, s, upd), "update-busy", 1)
	wantGranted(t, mustReserve(t, s, m3), "m3", "acme/spare")

	// Freeing its robot wakes the update, which gets it.
	wantWake(t, "release of busy", mustRelease(t, s, "acme/busy", "m1"), "wf-update-busy")
	wantGranted(t, mustReserve(t, s, upd), "update-busy", "acme/busy")
	if n := tableCount(t, s, "reservation_queue"); n != 0 {
		t.Fatalf("%d queued at the end, want 0", n)
	}
}

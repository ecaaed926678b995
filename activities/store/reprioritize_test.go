package store

import (
	"context"
	"testing"
)

// A queued request asked again with another priority moves in line (what
// update reprioritize does): ahead of lower priorities, behind the requests
// of its new priority that were queued before it, and the freed robot goes
// to it first.
func TestReserveAgainWithNewPriorityMovesInLine(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	only := robot("only", "a", 0, 0)
	if err := s.RegisterRobots(ctx, []Robot{only}); err != nil {
		t.Fatal(err)
	}
	onlineAt(t, s, 90, only)
	wantGranted(t, mustReserve(t, s, missionReq("busy", "a", 0, 0)), "busy", "acme/only")
	var reqs []ReserveRequest
	for i, p := range []int{5, 5, 3} {
		r := missionReq([]string{"m1", "m2", "m3"}[i], "a", 0, 0)
		r.Priority = p
		reqs = append(reqs, r)
		wantQueued(t, mustReserve(t, s, r), r.MissionID, i+1)
	}
	// m3 goes from 3 to 5: behind m1 and m2 (queued before it at 5).
	reqs[2].Priority = 5
	wantQueued(t, mustReserve(t, s, reqs[2]), "m3", 3)
	// Then to 9: first.
	reqs[2].Priority = 9
	wantQueued(t, mustReserve(t, s, reqs[2]), "m3", 1)
	wantQueued(t, mustReserve(t, s, reqs[0]), "m1", 2)
	// Down to 0: last.
	reqs[0].Priority = 0
	wantQueued(t, mustReserve(t, s, reqs[0]), "m1", 3)
	wantWake(t, "release", mustRelease(t, s, "acme/only", "busy"), "wf-m3")
	wantGranted(t, mustReserve(t, s, reqs[2]), "m3", "acme/only")
}

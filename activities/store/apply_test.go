package store

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// fleet apply makes the registry's robots of a site what the file says:
// idempotent, robots added, updated and retired, a robot a mission holds
// never retired under it, a robot of another site never taken silently.
func TestApplySite(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	a, b, c := robot("a1", "site-x", 0, 0, "pick"), robot("a2", "site-x", 1, 0), robot("a3", "site-x", 2, 0)
	res, err := s.ApplySite(ctx, "site-x", "test", []Robot{a, b, c}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Added, []string{"acme/a1", "acme/a2", "acme/a3"}) || len(res.Updated)+len(res.Retired)+len(res.Unchanged) != 0 {
		t.Fatalf("first apply: %+v", res)
	}
	if res, err = s.ApplySite(ctx, "site-x", "test", []Robot{a, b, c}, false); err != nil || len(res.Unchanged) != 3 || len(res.Added)+len(res.Updated) != 0 {
		t.Fatalf("second apply changes nothing: %+v %v", res, err)
	}
	// a1 reserved by a mission; the file drops a1 and a3, changes a2, adds a4.
	onlineAt(t, s, 90, a)
	if r, err := s.Reserve(ctx, ReserveRequest{MissionID: "m-1", WorkflowID: "mission-m-1", Site: "site-x", RobotID: "acme/a1"}); err != nil || r.RobotID != "acme/a1" {
		t.Fatalf("reserve: %+v %v", r, err)
	}
	b2 := b
	b2.Capabilities = []string{"lift"}
	d := robot("a4", "site-x", 3, 0)
	dry, err := s.ApplySite(ctx, "site-x", "test", []Robot{b2, d}, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := tableCount(t, s, "robots"); n != 3 {
		t.Fatalf("a dry run wrote: %d robots", n)
	}
	res, err = s.ApplySite(ctx, "site-x", "test", []Robot{b2, d}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := ApplyResult{Site: "site-x", Added: []string{"acme/a4"}, Updated: []string{"acme/a2"}, Retired: []string{"acme/a3"}, Kept: []string{"acme/a1 (held or awaited by m-1)"}}
	if !slices.Equal(res.Added, want.Added) || !slices.Equal(res.Updated, want.Updated) || !slices.Equal(res.Retired, want.Retired) || !slices.Equal(res.Kept, want.Kept) {
		t.Fatalf("apply: %+v, want %+v", res, want)
	}
	if !slices.Equal(dry.Retired, res.Retired) || !slices.Equal(dry.Added, res.Added) {
		t.Fatalf("the dry run said %+v, the apply did %+v", dry, res)
	}
	if _, err := s.GetRobot(ctx, "acme/a3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a3 still registered: %v", err)
	}
	if v, err := s.GetRobot(ctx, "acme/a1"); err != nil || v.ReservedBy != "m-1" {
		t.Fatalf("a1 held by a mission is kept: %+v %v", v, err)
	}
	// Released, a1 goes with the next apply.
	if _, err := s.Release(ctx, "acme/a1", "m-1"); err != nil {
		t.Fatal(err)
	}
	if res, err = s.ApplySite(ctx, "site-x", "test", []Robot{b2, d}, false); err != nil || !slices.Equal(res.Retired, []string{"acme/a1"}) {
		t.Fatalf("apply after release: %+v %v", res, err)
	}
	// A robot of another site is refused, and nothing is written.
	if _, err := s.ApplySite(ctx, "site-y", "test", []Robot{robot("a2", "site-y", 0, 0)}, false); !errors.Is(err, ErrInvalid) {
		t.Fatalf("robot of another site: %v", err)
	}
	if _, err := s.ApplySite(ctx, "site-x", "test", []Robot{robot("a9", "site-y", 0, 0)}, false); !errors.Is(err, ErrInvalid) {
		t.Fatalf("robot whose site is not the file's: %v", err)
	}
	trail, err := s.AuditTrail(ctx, "site-x")
	if err != nil || len(trail) != 4 || trail[0].Kind != "fleet.applied" { // the dry run and the refusals wrote none
		t.Fatalf("audit: %d rows %v", len(trail), err)
	}
}

package workflows

import (
	"reflect"
	"testing"
	"time"

	"github.com/fleetflow/fleetflow/schemas"
)

func TestPlanWaves(t *testing.T) {
	plan := func(canary int, pct ...int) schemas.WavePlan {
		return schemas.WavePlan{Canary: canary, Percentages: pct}
	}
	cases := []struct {
		name    string
		n       int
		plan    schemas.WavePlan
		want    []int
		wantErr string
	}{
		{"uneven percentages", 7, plan(1, 33, 66, 100), []int{1, 2, 2, 2}, ""}, // totals 1, ceil(2.31)=3, ceil(4.62)=5, 7
		{"20 robots", 20, plan(2, 50, 100), []int{2, 8, 10}, ""},
		{"2000 robots, five waves", 2000, plan(10, 5, 25, 50, 100), []int{10, 90, 400, 500, 1000}, ""},
		{"no canary, rounding up", 5, plan(0, 10, 100), []int{1, 4}, ""},
		{"one robot, canary alone", 1, plan(1), []int{1}, ""},
		{"one robot, 100%", 1, plan(0, 100), []int{1}, ""},
		{"canary-only rollout", 10, plan(3), []int{3}, ""},
		{"canary larger than fleet", 3, plan(5), []int{3}, ""},
		{"one robot, canary then 50%", 1, plan(1, 50, 100), nil,
			"wave 1 (50%) would be empty: 50% of 1 robot is 1, and the waves before it already update 1; use fewer waves or a smaller canary"},
		{"canary larger than fleet, then 100%", 3, plan(5, 100), nil,
			"wave 1 (100%) would be empty: 100% of 3 robots is 3, and the waves before it already update 3; use fewer waves or a smaller canary"},
		{"empty middle wave", 4, plan(0, 10, 20, 100), nil,
			"wave 1 (20%) would be empty: 20% of 4 robots is 1, and the waves before it already update 1; use fewer waves or a smaller canary"},
		{"percentage within the canary", 20, plan(2, 5, 100), nil,
			"wave 1 (5%) would be empty: 5% of 20 robots is 1, and the waves before it already update 2; use fewer waves or a smaller canary"},
		{"repeated percentage", 10, plan(0, 50, 50, 100), nil,
			"wave 1 (50%) would be empty: 50% of 10 robots is 5, and the waves before it already update 5; use fewer waves or a smaller canary"},
		{"no robots", 0, plan(1, 100), nil, "no robots match the target selector"},
		{"nothing planned", 5, plan(0), nil, "no canary and no percentages: no robot would be updated"},
		{"negative canary", 5, plan(-1, 100), nil, "canary -1: must be 0 or more"},
		{"last below 100", 5, plan(1, 50, 90), nil, "the last wave must reach 100%, got 90%"},
		{"percentage 0", 5, plan(1, 0, 100), nil, "wave 1: percentage 0 is not within 1–100"},
	}
	for _, c := range cases {
		got, err := PlanWaves(c.n, c.plan)
		var gotErr string
		if err != nil {
			gotErr = err.Error()
		}
		if !reflect.DeepEqual(got, c.want) || gotErr != c.wantErr {
			t.Errorf("%s: PlanWaves(%d, %+v) = %v, %q; want %v, %q", c.name, c.n, c.plan, got, gotErr, c.want, c.wantErr)
		}
	}
}

// Whatever the fleet size, a plan that PlanWaves accepts updates every
// target exactly once, in non-empty waves, and its canary is the first.
func TestPlanWavesCoversEveryRobotOnce(t *testing.T) {
	plans := []schemas.WavePlan{
		{Canary: 1, Percentages: []int{10, 50, 100}},
		{Canary: 3, Percentages: []int{1, 2, 3, 100}},
		{Percentages: []int{33, 66, 100}},
	}
	for _, p := range plans {
		if _, err := PlanWaves(500, p); err != nil {
			t.Errorf("%+v for 500 robots: %v", p, err)
		}
		for n := 1; n <= 500; n++ {
			waves, err := PlanWaves(n, p)
			if err != nil {
				continue
			}
			sum := 0
			for _, w := range waves {
				if w <= 0 {
					t.Fatalf("n=%d %+v: empty wave in %v", n, p, waves)
				}
				sum += w
			}
			if sum != n || len(waves) != len(p.Percentages)+min(p.Canary, 1) || p.Canary > 0 && waves[0] != min(p.Canary, n) {
				t.Fatalf("n=%d %+v: %v", n, p, waves)
			}
		}
	}
}

func TestShouldAbort(t *testing.T) {
	crit := func(typ string, pct float64, min int) schemas.AbortCriteria {
		return schemas.AbortCriteria{FailureType: typ, ThresholdPercentage: pct, MinExecuted: min}
	}
	cases := []struct {
		name   string
		crit   schemas.AbortCriteria
		counts schemas.UpdateCounts
		want   bool
		reason string
	}{
		{"failed", crit("FAILED", 50, 1), schemas.UpdateCounts{Succeeded: 1, Failed: 3}, true, "3 of 4 robots FAILED (75%) >= 50%"},
		{"failed ignores timeouts", crit("FAILED", 50, 1), schemas.UpdateCounts{Succeeded: 1, Failed: 1, TimedOut: 2}, false, "1 of 4 robots FAILED (25%) < 50%"},
		{"timed out", crit("TIMED_OUT", 50, 1), schemas.UpdateCounts{Succeeded: 1, Failed: 1, TimedOut: 2}, true, "2 of 4 robots TIMED_OUT (50%) >= 50%"},
		{"timed out ignores failures", crit("TIMED_OUT", 50, 1), schemas.UpdateCounts{Succeeded: 1, Failed: 3}, false, "0 of 4 robots TIMED_OUT (0%) < 50%"},
		{"all", crit("ALL", 50, 1), schemas.UpdateCounts{Succeeded: 2, Failed: 1, TimedOut: 1}, true, "2 of 4 robots FAILED or TIMED_OUT (50%) >= 50%"},
		{"all below", crit("ALL", 50, 1), schemas.UpdateCounts{Succeeded: 3, Failed: 1, TimedOut: 1}, false, "2 of 5 robots FAILED or TIMED_OUT (40%) < 50%"},
		{"unknown type counts both", crit("", 50, 1), schemas.UpdateCounts{Succeeded: 1, Failed: 1, TimedOut: 1}, true, "2 of 3 robots FAILED or TIMED_OUT (66.7%) >= 50%"},
		{"exactly at threshold", crit("FAILED", 25, 1), schemas.UpdateCounts{Succeeded: 3, Failed: 1}, true, "1 of 4 robots FAILED (25%) >= 25%"},
		{"just below threshold", crit("FAILED", 25.5, 1), schemas.UpdateCounts{Succeeded: 3, Failed: 1}, false, "1 of 4 robots FAILED (25%) < 25.5%"},
		{"a third at a third", crit("ALL", 100.0/3, 3), schemas.UpdateCounts{Succeeded: 2, TimedOut: 1}, true, "1 of 3 robots FAILED or TIMED_OUT (33.3%) >= 33.333333333333336%"},
		{"below minExecuted", crit("FAILED", 10, 3), schemas.UpdateCounts{Failed: 2}, false, "2 of 2 robots FAILED; the abort criteria apply once 3 have finished"},
		{"at minExecuted", crit("FAILED", 10, 3), schemas.UpdateCounts{Succeeded: 1, Failed: 2}, true, "2 of 3 robots FAILED (66.7%) >= 10%"},
		{"nothing executed", crit("ALL", 10, 1), schemas.UpdateCounts{}, false, "0 of 0 robots FAILED or TIMED_OUT; the abort criteria apply once 1 have finished"},
		{"no failures", crit("ALL", 0.1, 1), schemas.UpdateCounts{Succeeded: 5}, false, "0 of 5 robots FAILED or TIMED_OUT (0%) < 0.1%"},
		{"one robot", crit("FAILED", 100, 1), schemas.UpdateCounts{Failed: 1}, true, "1 of 1 robot FAILED (100%) >= 100%"},
	}
	for _, c := range cases {
		got, reason := ShouldAbort(c.crit, c.counts)
		if got != c.want || reason != c.reason {
			t.Errorf("%s: ShouldAbort = %v, %q; want %v, %q", c.name, got, reason, c.want, c.reason)
		}
	}
	if n := (schemas.UpdateCounts{Succeeded: 4, Failed: 2, TimedOut: 1}).Executed(); n != 7 {
		t.Errorf("Executed = %d, want 7", n)
	}
}

func TestNextWindowOpen(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	day := &schemas.Window{Start: "09:00", End: "17:00", TimeZone: "UTC"}
	night := &schemas.Window{Start: "22:00", End: "06:00", TimeZone: "Europe/Berlin"}
	early := &schemas.Window{Start: "02:30", End: "04:00", TimeZone: "Europe/Berlin"}
	earlyNY := &schemas.Window{Start: "02:30", End: "04:00", TimeZone: "America/New_York"}
	cases := []struct {
		name string
		w    *schemas.Window
		t    time.Time
		open bool
		next time.Time // zero: next == t
	}{
		{"no window", nil, utc("2026-05-01T03:00:00Z"), true, time.Time{}},
		{"inside", day, utc("2026-05-01T10:00:00Z"), true, time.Time{}},
		{"at start", day, utc("2026-05-01T09:00:00Z"), true, time.Time{}},
		{"last second", day, utc("2026-05-01T16:59:59Z"), true, time.Time{}},
		{"before", day, utc("2026-05-01T08:59:59Z"), false, utc("2026-05-01T09:00:00Z")},
		{"at end", day, utc("2026-05-01T17:00:00Z"), false, utc("2026-05-02T09:00:00Z")},
		{"end of month", day, utc("2026-05-31T20:00:00Z"), false, utc("2026-06-01T09:00:00Z")},
		// Europe/Berlin is UTC+2 in summer: 22:00–06:00 local = 20:00–04:00Z.
		{"wrapping, evening", night, utc("2026-07-01T21:30:00Z"), true, time.Time{}},
		{"wrapping, morning", night, utc("2026-07-02T03:59:00Z"), true, time.Time{}},
		{"wrapping, at end", night, utc("2026-07-02T04:00:00Z"), false, utc("2026-07-02T20:00:00Z")},
		{"wrapping, midday", night, utc("2026-07-02T10:00:00Z"), false, utc("2026-07-02T20:00:00Z")},
		{"wrapping, given in another zone", night, time.Date(2026, 7, 2, 16, 0, 0, 0, newYork), true, time.Time{}},
		{"wrapping, a minute early elsewhere", night, time.Date(2026, 7, 2, 15, 59, 0, 0, newYork), false, utc("2026-07-02T20:00:00Z")},
		// Winter: UTC+1, so the same window opens at 21:00Z.
		{"wrapping, winter", night, utc("2026-01-15T12:00:00Z"), false, utc("2026-01-15T21:00:00Z")},
		// 2026-03-29 Europe/Berlin skips 02:00–03:00 (01:00Z): a 02:30 start opens at the change.
		{"start skipped by DST", early, time.Date(2026, 3, 29, 1, 0, 0, 0, berlin), false, utc("2026-03-29T01:00:00Z")},
		{"after the skipped start", early, utc("2026-03-29T01:20:00Z"), true, time.Time{}},
		{"day after DST", early, utc("2026-03-29T02:00:00Z"), false, utc("2026-03-30T00:30:00Z")},
		// 2026-03-08 America/New_York skips 02:00–03:00 (07:00Z); time.Date lands before the gap there.
		{"start skipped by DST, west", earlyNY, utc("2026-03-08T05:00:00Z"), false, utc("2026-03-08T07:00:00Z")},
		// 2026-10-25 Europe/Berlin: the night is an hour longer, 22:00 CEST (20:00Z) to 06:00 CET (05:00Z).
		{"fall back night", night, utc("2026-10-25T04:30:00Z"), true, time.Time{}},
		{"after fall back night", night, utc("2026-10-25T05:00:00Z"), false, utc("2026-10-25T21:00:00Z")},
	}
	for _, c := range cases {
		open, next, err := NextWindowOpen(c.w, c.t)
		want := c.next
		if want.IsZero() {
			want = c.t
		}
		if err != nil || open != c.open || !next.Equal(want) {
			t.Errorf("%s: NextWindowOpen(%v) = %v, %v, %v; want %v, %v", c.name, c.t, open, next.UTC(), err, c.open, want.UTC())
		}
	}

	for _, w := range []schemas.Window{
		{Start: "22:00", End: "06:00", TimeZone: "Mars/Olympus_Mons"},
		{Start: "22:00", End: "06:00", TimeZone: "Local"},
		{Start: "25:00", End: "06:00", TimeZone: "UTC"},
		{Start: "22:00", End: "6pm", TimeZone: "UTC"},
		{Start: "22:00", End: "22:00", TimeZone: "UTC"},
	} {
		if open, _, err := NextWindowOpen(&w, utc("2026-05-01T10:00:00Z")); err == nil || open {
			t.Errorf("%+v: want an error, got open=%v", w, open)
		}
	}
}

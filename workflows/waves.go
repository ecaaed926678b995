package workflows

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/fleetflow/fleetflow/schemas"
)

// The rollout's planning rules: pure, deterministic functions of their
// arguments, so a rollout workflow can call them and replay the same
// decisions.

// PlanWaves splits n target robots into wave sizes (robots per wave, in
// order; the sizes add up to n, or to min(canary, n) for a canary-only plan).
// Wave 0 is the canary, min(w.Canary, n) robots, when w.Canary > 0; then
// each cumulative percentage p brings the total to ceil(n·p/100), like
// Mender's deployment phases where the last phase takes the rest.
//
// Errors, all before anything is installed: n == 0 ("no robots match the
// target selector"); a plan ParseRollout would refuse (negative canary, no
// canary and no percentages, a percentage outside 1–100, a last percentage
// other than 100); and a wave that would be empty for this n — say 1 robot
// with canary 1 then [50, 100] — named by its index in the plan and its
// percentage, with the target count.
func PlanWaves(n int, w schemas.WavePlan) ([]int, error) {
	switch k := len(w.Percentages); {
	case n <= 0:
		return nil, errors.New("no robots match the target selector")
	case w.Canary < 0:
		return nil, fmt.Errorf("canary %d: must be 0 or more", w.Canary)
	case w.Canary == 0 && k == 0:
		return nil, errors.New("no canary and no percentages: no robot would be updated")
	case k > 0 && w.Percentages[k-1] != 100:
		return nil, fmt.Errorf("the last wave must reach 100%%, got %d%%", w.Percentages[k-1])
	}
	var waves []int
	done := 0
	if w.Canary > 0 {
		done = min(w.Canary, n)
		waves = append(waves, done)
	}
	for _, p := range w.Percentages {
		if p < 1 || p > 100 {
			return nil, fmt.Errorf("wave %d: percentage %d is not within 1–100", len(waves), p)
		}
		total := (n*p + 99) / 100 // ceil(n·p/100)
		if total <= done {
			return nil, fmt.Errorf("wave %d (%d%%) would be empty: %d%% of %s is %d, and the waves before it already update %d; use fewer waves or a smaller canary",
				len(waves), p, p, robotCount(n), total, done)
		}
		waves = append(waves, total-done)
		done = total
	}
	return waves, nil
}

// ShouldAbort applies the abort criteria to the counts so far, as AWS IoT
// Jobs' abortConfig does: abort when Executed() ≥ a.MinExecuted and the
// failures are at least a.ThresholdPercentage percent of Executed(), where
// failures are c.Failed (FAILED), c.TimedOut (TIMED_OUT) or both (ALL, and
// any unknown type, the stricter reading). Zero failures never abort. The
// reason says why either way, e.g. "3 of 4 robots FAILED (75%) >= 50%".
func ShouldAbort(a schemas.AbortCriteria, c schemas.UpdateCounts) (bool, string) {
	failures, what := c.Failures(a.FailureType)
	executed := c.Executed()
	if executed == 0 || executed < a.MinExecuted {
		return false, fmt.Sprintf("%d of %s %s; the abort criteria apply once %d have finished",
			failures, robotCount(executed), what, max(a.MinExecuted, 1))
	}
	// Compared as failures·100 ≥ threshold·executed, so that a share exactly
	// at the threshold (1 of 3 at 33.3…%) is not lost to division rounding.
	abort := failures > 0 && float64(failures)*100 >= a.ThresholdPercentage*float64(executed)
	op := "<"
	if abort {
		op = ">="
	}
	share := math.Round(float64(failures)*1000/float64(executed)) / 10
	return abort, fmt.Sprintf("%d of %s %s (%s%%) %s %s%%", failures, robotCount(executed), what,
		strconv.FormatFloat(share, 'f', -1, 64), op, strconv.FormatFloat(a.ThresholdPercentage, 'f', -1, 64))
}

func robotCount(n int) string {
	if n == 1 {
		return "1 robot"
	}
	return strconv.Itoa(n) + " robots"
}

// NextWindowOpen reports whether t is inside the maintenance window w and,
// when it is not, the next instant the window opens (when it is, next is t).
// A nil w is always open. The window is wall-clock time in w.TimeZone, from
// Start (inclusive) to End (exclusive), wrapping midnight when End is before
// Start; so on a daylight-saving change day it is an hour shorter or longer.
// A Start skipped by the change (02:30 on a spring-forward night) opens the
// window at the change; a Start that occurs twice (fall-back) opens it at the
// first occurrence. Errors: an unknown zone, a time not "HH:MM", or Start ==
// End (never for a spec from schemas.ParseRollout).
func NextWindowOpen(w *schemas.Window, t time.Time) (open bool, next time.Time, err error) {
	if w == nil {
		return true, t, nil
	}
	loc, err := time.LoadLocation(w.TimeZone)
	if err != nil || w.TimeZone == "Local" {
		return false, time.Time{}, fmt.Errorf("maintenance window: %q is not an IANA time zone", w.TimeZone)
	}
	start, err := minuteOfDay(w.Start)
	if err != nil {
		return false, time.Time{}, err
	}
	end, err := minuteOfDay(w.End)
	if err != nil {
		return false, time.Time{}, err
	}
	if start == end {
		return false, time.Time{}, fmt.Errorf("maintenance window %s–%s is empty", w.Start, w.End)
	}
	lt := t.In(loc)
	m := lt.Hour()*60 + lt.Minute()
	if start < end && start <= m && m < end || start > end && (m >= start || m < end) {
		return true, t, nil
	}
	y, mo, d := lt.Date()
	next = windowOpening(y, mo, d, start, loc)
	if !next.After(t) {
		next = windowOpening(y, mo, d+1, start, loc)
	}
	return false, next, nil
}

// windowOpening is when the wall clock of loc first reads minute-of-day start on
// day y-mo-d: time.Date, unless a daylight-saving change skips that time,
// where time.Date lands on either side of the gap and the change itself is
// the answer.
func windowOpening(y int, mo time.Month, d, start int, loc *time.Location) time.Time {
	o := time.Date(y, mo, d, start/60, start%60, 0, 0, loc)
	want := time.Date(y, mo, d, start/60, start%60, 0, 0, time.UTC)
	got := time.Date(o.Year(), o.Month(), o.Day(), o.Hour(), o.Minute(), 0, 0, time.UTC)
	switch zoneStart, zoneEnd := o.ZoneBounds(); {
	case got.Before(want):
		return zoneEnd
	case got.After(want):
		return zoneStart
	}
	return o
}

func minuteOfDay(hhmm string) (int, error) {
	c, err := time.Parse("15:04", hhmm)
	if err != nil {
		return 0, fmt.Errorf("maintenance window: time %q is not HH:MM", hhmm)
	}
	return c.Hour()*60 + c.Minute(), nil
}

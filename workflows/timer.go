// One timer per waiting workflow: how the Mission waits for a condition
// with a timeout without leaving a timer behind each time it wakes.

package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// waitTimer is the single timer of a loop that waits for a condition with
// a timeout, again and again (the Mission's drive loop wakes on every
// robot event).
//
// workflow.AwaitWithTimeout starts a timer on each call and, in this SDK
// (v1.50, SDKFlagCancelAwaitTimerOnCondition off by default), leaves it
// running when the condition wins: a mission that woke on 10 robot events
// had 10 timers pending, and each one that fired later cost the Temporal
// server a workflow task that did nothing (TimerFired → WorkflowTask…, 4
// events). waitTimer keeps at most one timer armed: a wait whose deadline
// is not earlier than the armed timer's keeps it; a timer that fires before
// the wait's deadline is re-armed for what is left; and stop cancels it, so
// that none is left running once the workflow has decided to finish.
type waitTimer struct {
	f      workflow.Future
	at     time.Time
	cancel workflow.CancelFunc
}

// await blocks until cond() is true (ok) or d has passed (!ok). It returns
// a CanceledError when ctx is cancelled (the workflow, or the scope the
// caller waits in) and cond() is not true. The timer it
// arms may stay armed for the next await (call stop when the loop ends).
func (t *waitTimer) await(ctx workflow.Context, d time.Duration, cond func() bool) (ok bool, err error) {
	if cond() {
		return true, nil
	}
	due := workflow.Now(ctx).Add(d)
	for {
		// A cancelled workflow cancels the timer too, which makes it
		// ready: without this check the loop would re-arm a timer on the
		// cancelled context forever without yielding.
		if ctx.Err() != nil {
			return false, temporal.NewCanceledError("wait cancelled")
		}
		if t.f != nil && t.at.After(due) {
			t.stop() // fires too late for this wait
		}
		if t.f == nil {
			left := due.Sub(workflow.Now(ctx))
			if left <= 0 {
				return false, nil
			}
			tctx, cancel := workflow.WithCancel(ctx)
			t.f, t.at, t.cancel = workflow.NewTimerWithOptions(tctx, left, workflow.TimerOptions{Summary: "wait"}), due, cancel
		}
		f := t.f
		if err := workflow.Await(ctx, func() bool { return cond() || f.IsReady() }); err != nil {
			return false, err
		}
		if f.IsReady() {
			t.f, t.cancel = nil, nil // fired (or was cancelled)
		}
		if cond() {
			return true, nil
		}
		if ctx.Err() != nil {
			return false, temporal.NewCanceledError("wait cancelled")
		}
		if !workflow.Now(ctx).Before(due) {
			return false, nil
		}
		// An earlier wait's timer fired first: wait on for what is left.
	}
}

// stop cancels the armed timer, if any (one TimerCanceled event).
func (t *waitTimer) stop() {
	if t.cancel != nil {
		t.cancel()
	}
	t.f, t.cancel = nil, nil
}

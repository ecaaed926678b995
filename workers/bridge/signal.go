// Signalling: one sender goroutine per shard of robots delivers each
// workflow's signals in order, coalescing progress that may wait.

package bridge

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	"github.com/fleetflow/fleetflow/schemas"
)

// sender delivers one shard's signals. Each RobotEvent is a full snapshot,
// so while a workflow's signal waits its turn a newer event replaces it
// (latest wins): under load a mission gets one signal per burst of robot
// states instead of one per state, and one workflow task fewer each time.
// A queued signal is sent once due: at once when urgent, else after the
// progress linger (see Options.ProgressLinger).
type sender struct {
	mu      sync.Mutex
	pending map[string]*queuedSignal // workflow ID → latest event
	order   []string                 // workflow IDs in arrival order
	wake    chan struct{}
}

type queuedSignal struct {
	ev  schemas.RobotEvent
	due time.Time
}

func newSender() *sender {
	return &sender{pending: map[string]*queuedSignal{}, wake: make(chan struct{}, 1)}
}

// put queues ev for workflowID, due at due, replacing an unsent older one
// (which keeps the earlier of the two due times).
func (sd *sender) put(workflowID string, ev schemas.RobotEvent, due time.Time) (coalesced bool) {
	sd.mu.Lock()
	q, coalesced := sd.pending[workflowID]
	if !coalesced {
		q = &queuedSignal{due: due}
		sd.pending[workflowID] = q
		sd.order = append(sd.order, workflowID)
	} else if due.Before(q.due) {
		q.due = due
	}
	q.ev = ev
	sd.mu.Unlock()
	select {
	case sd.wake <- struct{}{}:
	default:
	}
	return coalesced
}

// take removes the longest-queued workflow's latest event among those due
// at now. When none is due it returns ok=false and the earliest due time
// (zero when nothing is queued).
func (sd *sender) take(now time.Time) (j signalJob, next time.Time, ok bool) {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	for i, wf := range sd.order {
		q := sd.pending[wf]
		if !q.due.After(now) {
			sd.order = append(sd.order[:i], sd.order[i+1:]...)
			delete(sd.pending, wf)
			return signalJob{wf, q.ev}, time.Time{}, true
		}
		if next.IsZero() || q.due.Before(next) {
			next = q.due
		}
	}
	return signalJob{}, next, false
}

func (b *Bridge) sendLoop(ctx context.Context, sd *sender) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		j, next, ok := sd.take(time.Now())
		if !ok {
			var due <-chan time.Time
			if !next.IsZero() {
				timer.Reset(time.Until(next))
				due = timer.C
			}
			select {
			case <-ctx.Done():
				return
			case <-sd.wake:
			case <-due:
			}
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		start := time.Now()
		err := b.signaler.Signal(sctx, j.workflowID, j.ev)
		b.m.signalSecs.Observe(time.Since(start).Seconds())
		cancel()
		switch {
		case err == nil:
			b.m.signals.WithLabelValues("ok").Inc()
		case errors.Is(err, ErrNoWorkflow):
			b.m.signals.WithLabelValues("no_workflow").Inc()
		default:
			b.m.signals.WithLabelValues("error").Inc()
			b.log.Warn("bridge: signal failed", "workflowId", j.workflowID, "error", err)
		}
	}
}

// ErrNoWorkflow is returned by a Signaler when the workflow no longer runs.
var ErrNoWorkflow = errors.New("workflow not running")

func (b *Bridge) route(j routeJob) {
	due := time.Now()
	if !j.urgent {
		due = due.Add(b.opts.ProgressLinger)
	}
	if b.senders[b.shard(j.robotID)].put(j.workflowID, j.ev, due) {
		b.m.signals.WithLabelValues("coalesced").Inc()
	}
}

// shard picks the sender of robotID: one robot's signals go out in order.
func (b *Bridge) shard(robotID string) int {
	h := fnv.New32a()
	h.Write([]byte(robotID))
	return int(h.Sum32() % uint32(len(b.senders)))
}

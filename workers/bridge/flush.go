// Storing: the latest state of each robot goes to the registry in
// batches, and only then are its signals sent.

package bridge

import (
	"context"
	"time"

	"github.com/fleetflow/fleetflow/activities/store"
)

// Flush writes pending states, connection changes and deviation counts in
// one batch each, each within Options.WriteTimeout. Each is stored on its
// own: a failed state write does not hold back connection changes. When the
// registry refuses a batch of states for what is in it (not because it is
// unreachable: store.Transient), each state is written on its own, so one
// bad row never blocks the fleet; a state refused on its own flush after
// flush is dropped after Options.RowRetries, logged and counted. What
// failed for a transient reason is kept for the next flush, unless
// something newer replaced it.
func (b *Bridge) Flush(ctx context.Context) {
	b.mu.Lock()
	if len(b.pending) == 0 && len(b.conns) == 0 && len(b.devs) == 0 && len(b.health) == 0 {
		b.mu.Unlock()
		return
	}
	held := make([]pendingState, 0, len(b.pending))
	for _, p := range b.pending {
		p.state.Errors, p.state.ActionStates = mustJSON(p.errors), mustJSON(p.actions)
		held = append(held, p)
	}
	conns := b.conns
	devs := make([]store.DeviationCount, 0, len(b.devs))
	for _, d := range b.devs {
		devs = append(devs, *d)
	}
	b.pending = map[string]pendingState{}
	b.conns = nil
	b.devs = map[[2]string]*store.DeviationCount{}
	health := make([]store.HealthDelta, 0, len(b.health))
	for _, h := range b.health {
		health = append(health, *h)
	}
	b.health = map[string]*store.HealthDelta{}
	b.mu.Unlock()

	start := time.Now()
	write := func(f func(context.Context) error) error {
		wctx, cancel := context.WithTimeout(ctx, b.opts.WriteTimeout)
		defer cancel()
		return f(wctx)
	}
	var stateErr, connErr, devErr, healthErr error
	var retry []pendingState
	if len(held) > 0 {
		stateErr = write(func(c context.Context) error { return b.sink.UpsertStates(c, statesOf(held)) })
		if stateErr != nil && !store.Transient(stateErr) {
			// Something in the batch is refused: find it row by row.
			for _, p := range held {
				err := write(func(c context.Context) error { return b.sink.UpsertStates(c, []store.RobotState{p.state}) })
				switch {
				case err == nil:
				case store.Transient(err):
					retry = append(retry, p)
				case p.refused+1 >= b.opts.RowRetries:
					b.m.rowsLost.Inc()
					b.log.Error("bridge: registry refuses a robot's state; dropped", "robot", p.state.RobotID, "headerId", p.state.HeaderID, "error", err)
				default:
					p.refused++
					retry = append(retry, p)
				}
			}
		} else if stateErr != nil {
			retry = held
		}
	}
	if len(conns) > 0 {
		connErr = write(func(c context.Context) error { return b.sink.UpsertConnections(c, conns) })
	}
	if len(devs) > 0 {
		devErr = write(func(c context.Context) error { return b.sink.AddDeviations(c, devs) })
	}
	if len(health) > 0 {
		healthErr = write(func(c context.Context) error { return b.sink.AddHealth(c, health) })
	}
	b.m.flushes.Inc()
	b.m.flushSecs.Observe(time.Since(start).Seconds())
	if stateErr == nil && connErr == nil && devErr == nil && healthErr == nil {
		return
	}
	b.m.flushError.Inc()
	b.log.Warn("bridge: batched upsert failed; will retry with the next batch", "states", len(held), "connections", len(conns),
		"stateError", errString(stateErr), "connectionError", errString(connErr), "deviationError", errString(devErr), "healthError", errString(healthErr))
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range retry {
		if _, newer := b.pending[p.state.RobotID]; !newer {
			b.pending[p.state.RobotID] = p
		}
	}
	if connErr != nil {
		b.conns = append(conns, b.conns...)
	}
	if healthErr != nil {
		for _, h := range health {
			if c := b.health[h.RobotID]; c != nil {
				c.DrivingSeconds += h.DrivingSeconds
				c.NewErrors += h.NewErrors
				if c.BatteryHealth == nil {
					c.BatteryHealth = h.BatteryHealth
				}
			} else {
				h := h
				b.health[h.RobotID] = &h
			}
		}
	}
	if devErr != nil {
		for _, d := range devs {
			key := [2]string{d.RobotID, d.Kind}
			if c := b.devs[key]; c != nil {
				c.Count += d.Count
			} else {
				d := d
				b.devs[key] = &d
			}
		}
	}
}

func statesOf(ps []pendingState) []store.RobotState {
	out := make([]store.RobotState, len(ps))
	for i, p := range ps {
		out[i] = p.state
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

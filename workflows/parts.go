package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/schemas"
)

// A mission whose steps wait for the warehouse (steps[].waitFor) or grow
// while it runs (update append) drives its robot in parts: each part is one
// VDA 5050 order or order update, and the next part is stitched onto the
// last base node of the one before with the next orderUpdateId (VDA 5050
// 2.0 §6.6.2), so a robot that already has the next part never stops.

// MaxMissionSteps is the most steps a mission has, appended ones included
// (mission.schema.json, steps.maxItems).
const MaxMissionSteps = 32

// hold is the wait that ends the current part: the robot drives to step's
// station and waits there for signal.
type hold struct {
	step      int
	signal    string
	timeout   time.Duration
	onTimeout string
	arrived   bool // the robot finished the part and stands there
	arrivedAt time.Time
}

// received is one WMS signal as it arrived.
type received struct {
	name string
	sig  schemas.LoadSignal
}

// partEnd says where the part starting at step from ends: at the first
// step after it whose wait is not done (loadReady: the robot goes there
// and holds that step's action; loadTaken: it does the action and holds),
// or at the mission's last step (no hold).
func (m *mission) partEnd(from int) (to int, h *hold) {
	steps := m.in.Spec.Steps
	for s := from; s < len(steps); s++ {
		w := steps[s].WaitFor
		if w.Signal == "" || m.waitDone[s] {
			continue
		}
		return s + 1, &hold{step: s, signal: w.Signal, timeout: time.Duration(w.TimeoutSeconds) * time.Second, onTimeout: w.OnTimeout}
	}
	return len(steps), nil
}

// registerWMS registers the WMS's signals and the append update.
func (m *mission) registerWMS(ctx workflow.Context) error {
	if err := workflow.SetUpdateHandlerWithOptions(ctx, schemas.UpdateAppend, m.appendSteps,
		workflow.UpdateHandlerOptions{Validator: m.validateAppend}); err != nil {
		return err
	}
	ready, taken := workflow.GetSignalChannel(ctx, schemas.SignalLoadReady), workflow.GetSignalChannel(ctx, schemas.SignalLoadTaken)
	workflow.Go(ctx, func(gctx workflow.Context) {
		sel := workflow.NewSelector(gctx)
		for _, ch := range []workflow.ReceiveChannel{ready, taken} {
			sel.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) {
				var s schemas.LoadSignal
				c.Receive(gctx, &s)
				m.signals = append(m.signals, received{name: c.Name(), sig: s})
			})
		}
		for {
			sel.Select(gctx)
		}
	})
	return nil
}

// takeSignal consumes the first signal received for h, if any. Signals
// for another load are dropped and reported.
func (m *mission) takeSignal(h *hold) (schemas.LoadSignal, bool) {
	want := ""
	if l := m.in.Spec.Load; l != nil {
		want = l.LoadID
	}
	for i := 0; i < len(m.signals); i++ {
		r := m.signals[i]
		if r.name != h.signal || (r.sig.Step != nil && *r.sig.Step != h.step) {
			continue
		}
		m.signals = slices.Delete(m.signals, i, i+1)
		if want != "" && r.sig.LoadID != "" && r.sig.LoadID != want {
			m.status.IgnoredSignals = append(m.status.IgnoredSignals, fmt.Sprintf("%s for load %s ignored: the mission carries %s", r.name, r.sig.LoadID, want))
			i--
			continue
		}
		return r.sig, true
	}
	return schemas.LoadSignal{}, false
}

// settleHold moves the mission past the wait that ends its current part
// when the signal is there (at once, even before the robot arrives) or the
// robot has waited out the step's timeout. A failure is decided
// (m.outcome), for the main loop to act on.
func (m *mission) settleHold(ctx workflow.Context) {
	h := m.hold
	if h == nil || m.cancelRequested || m.cancelAct != nil {
		return
	}
	next := h.step + 1
	if sig, ok := m.takeSignal(h); ok {
		m.waitDone[h.step] = true
		m.status.WaitingFor = ""
		m.status.Signals = append(m.status.Signals, fmt.Sprintf("%s for step %d (%s) by %s at %s", h.signal, h.step+1,
			m.in.Spec.Steps[h.step].Station, dash(sig.By), workflow.Now(ctx).UTC().Format(time.RFC3339)))
		if h.signal == schemas.SignalLoadReady {
			next = h.step // its action comes now
		}
	} else if h.arrived && !workflow.Now(ctx).Before(h.arrivedAt.Add(h.timeout)) {
		what := fmt.Sprintf("no %s for step %d (%s) within %s", h.signal, h.step+1, m.in.Spec.Steps[h.step].Station, h.timeout)
		if h.onTimeout != schemas.OnTimeoutSkip {
			m.decideFail(schemas.ErrWMSTimeout, what)
			return
		}
		m.waitDone[h.step] = true
		if h.signal == schemas.SignalLoadReady {
			m.stepDone[h.step] = true // left out: a next robot does not do it either
		}
		m.status.WaitingFor = ""
		m.status.Skipped = append(m.status.Skipped, what+"; skipped")
	} else {
		return
	}
	m.hold = nil
	if next >= len(m.in.Spec.Steps) {
		if h.arrived {
			m.outcome = schemas.MissionCompleted // nothing left to drive
		}
		// else: done once the robot finishes the part it drives (apply)
		return
	}
	// Until the update is built and sent, the part the robot drives is not
	// the mission's last: its end must not count as the mission's.
	m.partTo = min(m.partTo, next)
	m.extendOrder(ctx, next)
}

// extendOrder sends the part starting at step from as an order update
// stitched onto the current order's last node. A failure is decided
// (m.outcome) for the main loop, which stops the robot and releases it.
func (m *mission) extendOrder(ctx workflow.Context, from int) {
	to, h := m.partEnd(from)
	in := schemas.BuildOrderInput{
		Spec: m.in.Spec, RobotID: m.status.RobotID, OrderID: m.vdaOrderID, OrderUpdateID: m.orderUpdateID + 1, FromStep: from,
		StitchNode: m.lastNode, StitchSequenceID: 2 * (len(m.nodeIDs) - 1), HoldLast: h != nil && h.signal == schemas.SignalLoadReady,
	}
	if to < len(m.in.Spec.Steps) {
		in.ToStep = to
	}
	var built schemas.BuildOrderResult
	if err := buildOrder.retry(ctx, "build VDA 5050 order update", in, &built, storeOptions("build VDA 5050 order update"), m.deadline); err != nil {
		m.decideFail(errType(err, ""), "build order update: "+err.Error())
		return
	}
	m.orderUpdateID++
	m.order = built.Order
	if len(built.NodeIDs) > 1 {
		m.nodeIDs = append(m.nodeIDs, built.NodeIDs[1:]...)
	}
	for i, id := range built.ActionIDs {
		m.actionIDs[id] = true
		m.actionStep[id] = from + i
	}
	m.hold, m.partTo = h, to
	m.status.NodesTotal = len(m.nodeIDs)
	m.lastNode = m.nodeIDs[len(m.nodeIDs)-1]
	m.orderAcked, m.status.OrderAcknowledged = false, false
	m.status.OrderSends = 0
	m.status.OrderUpdates++
	m.progressAt = workflow.Now(ctx)
	if err := m.sendOrder(ctx); err != nil {
		m.decideFail(errType(err, ""), "send order update: "+err.Error())
		return
	}
	if m.status.State == schemas.MissionAwaitingWMS {
		m.setState(ctx, schemas.MissionDriving)
	}
	m.setDetails(ctx)
}

// arrivedAtHold is called when the robot finished the part it drives and
// the part ends with a wait: the robot stands at the station.
func (m *mission) arrivedAtHold(ctx workflow.Context) {
	h := m.hold
	if h.arrived {
		return
	}
	h.arrived, h.arrivedAt = true, workflow.Now(ctx)
	m.status.WaitingFor = fmt.Sprintf("%s for step %d (%s) until %s", h.signal, h.step+1, m.in.Spec.Steps[h.step].Station,
		h.arrivedAt.Add(h.timeout).UTC().Format(time.RFC3339))
	m.setState(ctx, schemas.MissionAwaitingWMS)
}

func (m *mission) validateAppend(ctx workflow.Context, req schemas.AppendRequest) error {
	if m.outcome != "" || m.cancelRequested || m.status.Terminal() || m.status.State == schemas.MissionCancelling || m.status.State == schemas.MissionAwaitingOperator {
		return fmt.Errorf("mission %s is %s: steps are appended only to a mission that is waiting for or driving a robot", m.status.MissionID, m.status.State)
	}
	if len(req.Steps) == 0 {
		return fmt.Errorf("append: no steps")
	}
	if n := len(m.in.Spec.Steps) + len(req.Steps); n > MaxMissionSteps {
		return fmt.Errorf("append: %d steps in all; a mission has at most %d", n, MaxMissionSteps)
	}
	for i, s := range req.Steps {
		if s.Action != "pick" && s.Action != "drop" {
			return fmt.Errorf("append: steps[%d].action %q: want pick or drop", i, s.Action)
		}
	}
	if m.appending {
		return fmt.Errorf("mission %s: an append is already under way", m.status.MissionID)
	}
	return nil
}

// appendSteps checks the grown mission against its site map, then adds the
// steps: a robot already driving the last part gets them at once as an
// order update (its route goes on without a stop); otherwise they come with
// the part that reaches them.
func (m *mission) appendSteps(ctx workflow.Context, req schemas.AppendRequest) (schemas.MissionStatus, error) {
	m.appending = true
	defer func() { m.appending = false }()
	grown := m.in.Spec
	grown.Steps = append(slices.Clip(m.in.Spec.Steps), req.Steps...)
	var plan schemas.PlanMissionResult
	if err := planMission.retry(ctx, "check appended steps against site map", schemas.PlanMissionInput{Spec: grown, Client: m.in.Client}, &plan, storeOptions("check appended steps against site map"), m.deadline); err != nil {
		return m.status, temporal.NewApplicationError("append refused: "+err.Error(), schemas.ErrInvalidMission)
	}
	if m.outcome != "" {
		return m.status, fmt.Errorf("mission %s ended (%s) before the steps could be added", m.status.MissionID, m.outcome)
	}
	first := len(m.in.Spec.Steps)
	m.in.Spec.Steps = grown.Steps
	m.stepDone = append(m.stepDone, make([]bool, len(req.Steps))...)
	m.waitDone = append(m.waitDone, make([]bool, len(req.Steps))...)
	by := dash(req.By)
	m.status.Appended = append(m.status.Appended, fmt.Sprintf("%d steps from step %d by %s", len(req.Steps), first+1, by))
	if err := audit.retry(ctx, "audit", schemas.AuditInput{
		Actor: by, Kind: "mission.appended", Subject: m.orderID,
		Details: map[string]any{"steps": req.Steps, "fromStep": first, "reason": req.Reason},
	}, nil, storeOptions("audit"), workflow.Now(ctx).Add(Timings.ReleaseTimeout)); err != nil {
		m.logger.Warn("audit failed", "error", err)
	}
	// A robot driving the last part gets the new steps at once: the main
	// loop sends the order update (one order goes out at a time). Else
	// they come with the first order or the part that reaches them.
	if err := workflow.Await(ctx, func() bool {
		return !m.orderSent || m.hold != nil || m.partTo >= len(m.in.Spec.Steps) || m.outcome != "" || m.failover != ""
	}); err != nil {
		return m.status, err
	}
	return m.status, nil
}

package workflows

import (
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/schemas"
)

// WMSEvents delivers one mission's events to its WMS client's webhook, one
// at a time and in the order they happened, each with the activity
// DeliverWebhook retried with exponential backoff (1 s doubling to 1 min)
// for the delivery timeout. It is started by the Mission as a child with
// ParentClosePolicy ABANDON, so a receiver that is down never holds up or
// fails a mission, and deliveries go on after the mission has ended. It
// ends after the terminal event (completed, failed, cancelled) has been
// handled, or after Timings.WebhookIdleTimeout without any event.
func WMSEvents(ctx workflow.Context, in schemas.WMSEventsInput) (schemas.WMSEventsResult, error) {
	var res schemas.WMSEventsResult
	logger := workflow.GetLogger(ctx)
	timeout := in.DeliveryTimeout
	if timeout <= 0 {
		timeout = Timings.WebhookDeliveryTimeout
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: timeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: []string{schemas.ErrWMSRejected, schemas.ErrWMSClientUnknown},
		},
	})
	ch := workflow.GetSignalChannel(ctx, schemas.SignalWMSEvents)
	queue := append([]schemas.WMSEvent(nil), in.Events...)
	ended := false
	for {
		for {
			var more []schemas.WMSEvent
			if !ch.ReceiveAsync(&more) {
				break
			}
			queue = append(queue, more...)
		}
		if len(queue) == 0 {
			if ended {
				return res, nil
			}
			timedOut := false
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) {
				var more []schemas.WMSEvent
				c.Receive(ctx, &more)
				queue = append(queue, more...)
			})
			sel.AddFuture(workflow.NewTimer(ctx, Timings.WebhookIdleTimeout), func(workflow.Future) { timedOut = true })
			sel.Select(ctx)
			if timedOut && len(queue) == 0 {
				res.Unfinished = true
				return res, nil
			}
			continue
		}
		ev := queue[0]
		queue = queue[1:]
		if ev.Terminal() {
			ended = true
		}
		err := deliverWebhook.run(actx, schemas.DeliverWebhookInput{Client: in.Client, Event: ev}, nil)
		if err == nil {
			res.Delivered++
			continue
		}
		res.GaveUp = append(res.GaveUp, ev.ID)
		logger.Warn("mission event given up", "event", ev.ID, "kind", ev.Kind, "error", err)
		_ = audit.retry(ctx, "audit", gaveUpAudit(in.Client, schemas.MissionWorkflowID(in.MissionID), ev, err.Error()),
			nil, storeOptions("audit"), workflow.Now(ctx).Add(Timings.ReleaseTimeout))
	}
}

// wmsEventsID is the WMSEvents workflow ID of a mission run.
func wmsEventsID(ctx workflow.Context, missionWorkflowID string) string {
	return fmt.Sprintf("%s-wms-events-%s", missionWorkflowID, workflow.GetInfo(ctx).WorkflowExecution.RunID)
}

// notifier is a Mission's side of its WMSEvents child: emit queues an event
// and never blocks; a coroutine starts the child with the first events and
// signals it the rest.
type notifier struct {
	client   string
	timeout  time.Duration
	seq      int
	outbox   []schemas.WMSEvent
	sending  bool
	child    workflow.ChildWorkflowFuture
	started  bool
	disabled bool // the child could not be started: events are dropped
}

// notifyEarlyEnd: the mission ends before PlanMission said whether its
// client has a webhook (a spec the workers refuse, a site map that
// disagrees with the ingress's, a cancellation while planning). The WMS
// was told the mission exists, so its end is sent all the same when the
// client has a webhook (activity WebhookOf; when even that cannot be
// asked, it is sent, and a client without one is given up, audited).
func (m *mission) notifyEarlyEnd(ctx workflow.Context) {
	if m.in.Client == "" || m.notify != nil {
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var wh schemas.WebhookOfResult
	if err := webhookOf.local(dctx, "webhook of "+m.in.Client, schemas.WebhookOfInput{Client: m.in.Client}, &wh); err != nil {
		wh.Webhook = true
	}
	if wh.Webhook {
		m.startNotifier(ctx, m.in.Client, wh.DeliveryTimeout)
	}
}

// startNotifier begins sending the mission's events to client's webhook.
func (m *mission) startNotifier(ctx workflow.Context, client string, timeout time.Duration) {
	n := &notifier{client: client, timeout: timeout}
	m.notify = n
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			_ = workflow.Await(ctx, func() bool { return len(n.outbox) > 0 })
			batch := n.outbox
			n.outbox, n.sending = nil, true
			m.sendEvents(ctx, n, batch)
			n.sending = false
		}
	})
}

func (m *mission) sendEvents(ctx workflow.Context, n *notifier, batch []schemas.WMSEvent) {
	if n.disabled {
		m.auditDropped(ctx, n, batch, "the mission's webhook deliveries could not be started")
		return
	}
	if !n.started {
		n.started = true
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:        wmsEventsID(ctx, m.orderID),
			ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
			StaticSummary:     "webhook deliveries of " + m.orderID + " to " + n.client,
		})
		n.child = workflow.ExecuteChildWorkflow(cctx, schemas.WMSEventsWorkflowType, schemas.WMSEventsInput{
			Client: n.client, MissionID: m.in.Spec.MissionID, Events: batch, DeliveryTimeout: n.timeout,
		})
		if err := n.child.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
			n.disabled = true
			m.logger.Error("start of the mission's webhook deliveries failed; its events are dropped", "client", n.client, "error", err)
			m.auditDropped(ctx, n, batch, "start of the webhook deliveries failed: "+err.Error())
		}
		return
	}
	if err := n.child.SignalChildWorkflow(ctx, schemas.SignalWMSEvents, batch).Get(ctx, nil); err != nil {
		m.logger.Error("mission events not handed to their deliveries", "client", n.client, "events", len(batch), "error", err)
		m.auditDropped(ctx, n, batch, "not handed to the webhook deliveries: "+err.Error())
	}
}

// auditDropped records events that will never reach the WMS, as a given-up
// delivery is (wms.delivery.gave_up): never lost without a trace.
func (m *mission) auditDropped(ctx workflow.Context, n *notifier, batch []schemas.WMSEvent, why string) {
	for _, ev := range batch {
		// One try each: the mission's end must not wait on a registry that is down.
		writeAudit(ctx, m.logger, gaveUpAudit(n.client, m.orderID, ev, why), false)
	}
}

// gaveUpAudit is the audit row (wms.delivery.gave_up, once per event) of
// a mission event that will never reach client's webhook, and why.
func gaveUpAudit(client, missionWorkflowID string, ev schemas.WMSEvent, why string) schemas.AuditInput {
	return schemas.AuditInput{
		Actor: client, Kind: "wms.delivery.gave_up", Subject: missionWorkflowID,
		Details: map[string]any{"eventId": ev.ID, "kind": ev.Kind, "error": why},
		Once:    "wms-gave-up/" + ev.ID,
	}
}

// emit records a mission event for the WMS (nothing when the mission's
// client has no webhook). It never blocks.
func (m *mission) emit(ctx workflow.Context, kind string, data schemas.WMSEventData) {
	n := m.notify
	if n == nil {
		return
	}
	n.seq++
	data.MissionID, data.Site, data.Sequence = m.in.Spec.MissionID, m.in.Spec.Site, n.seq
	if data.State == "" {
		data.State = m.status.State
	}
	if data.RobotID == "" {
		data.RobotID = m.status.RobotID
	}
	data.RequestedBy = m.in.RequestedBy
	n.outbox = append(n.outbox, schemas.WMSEvent{
		ID:   fmt.Sprintf("%s/%s/%d", m.orderID, workflow.GetInfo(ctx).WorkflowExecution.RunID, n.seq),
		Kind: kind, Time: workflow.Now(ctx).UTC(), Data: data,
	})
}

// flushEvents waits until every emitted event was handed to WMSEvents (at
// the end of the mission, so none is lost with the workflow).
func (m *mission) flushEvents(ctx workflow.Context) {
	if m.notify == nil {
		return
	}
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	_ = workflow.Await(ctx, func() bool { return len(m.notify.outbox) == 0 && !m.notify.sending })
}

// stepEvent emits picked or delivered for a finished step.
func (m *mission) stepEvent(ctx workflow.Context, step int) {
	if m.notify == nil || step < 0 || step >= len(m.in.Spec.Steps) {
		return
	}
	st := m.in.Spec.Steps[step]
	kind := schemas.WMSEventPicked
	if strings.EqualFold(st.Action, "drop") {
		kind = schemas.WMSEventDelivered
	}
	d := schemas.WMSEventData{Step: &step, Station: st.Station, Action: st.Action}
	if m.in.Spec.Load != nil {
		d.LoadID = m.in.Spec.Load.LoadID
	}
	m.emit(ctx, kind, d)
}

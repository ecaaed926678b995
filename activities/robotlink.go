package activities

import (
	"context"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetflow/fleetflow/internal/vda5050"
)

// RobotLink publishes VDA 5050 messages to robots through one MQTT client.
// Every message is validated against the official schema before it leaves
// (vda5050.Encode) and gets a per-topic headerId (VDA 5050 §6.2).
type RobotLink struct {
	client  mqtt.Client
	headers vda5050.HeaderCounter
	timeout time.Duration
	now     func() time.Time
}

// NewRobotLink wraps a connected paho client. timeout bounds each publish.
func NewRobotLink(c mqtt.Client, timeout time.Duration) *RobotLink {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &RobotLink{client: c, timeout: timeout, now: time.Now}
}

// SendOrder publishes order to uagv/v2/{m}/{s}/order with QoS 0 (VDA 5050
// §6.1 table), filling the header. Errors: schema violation (*vda5050.MessageError),
// publish timeout or broker error.
func (l *RobotLink) SendOrder(ctx context.Context, k vda5050.RobotKey, order vda5050.Order) error {
	topic := vda5050.TopicFor(k, vda5050.TopicOrder)
	order.Header = l.headers.Next(topic, k, l.now())
	return l.publish(ctx, vda5050.TopicOrder, topic, order)
}

// SendInstantActions publishes actions to …/instantActions with QoS 0.
func (l *RobotLink) SendInstantActions(ctx context.Context, k vda5050.RobotKey, actions []vda5050.Action) error {
	topic := vda5050.TopicFor(k, vda5050.TopicInstantActions)
	msg := vda5050.InstantActions{Header: l.headers.Next(topic, k, l.now()), Actions: actions}
	return l.publish(ctx, vda5050.TopicInstantActions, topic, msg)
}

func (l *RobotLink) publish(ctx context.Context, t vda5050.Topic, topic string, msg any) error {
	raw, err := vda5050.Encode(t, msg)
	if err != nil {
		return err
	}
	tok := l.client.Publish(topic, 0, false, raw)
	wait := l.timeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
		wait = time.Until(d)
	}
	if !tok.WaitTimeout(wait) {
		return fmt.Errorf("publish %s: no answer from the broker within %s", topic, wait)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

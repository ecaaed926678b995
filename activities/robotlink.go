package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetflow/fleetflow/internal/vda5050"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// ErrNotConnected is wrapped by a publish while the MQTT client has no open
// connection (it is reconnecting, or never connected): nothing was sent.
// paho reports a QoS 0 publish in that state as done without sending
// anything, so RobotLink checks the connection itself; the error is
// retryable, and the activity's retry policy sends the message again once
// the client is back.
var ErrNotConnected = errors.New("MQTT client not connected")

// ErrNoBroker: this worker has no MQTT client (no mqtt.url: every site it
// serves is an edge site), so it cannot publish; a robot of an edge site
// is reached through its edge worker's queue. Not retryable.
var ErrNoBroker = errors.New("this worker has no MQTT broker (mqtt.url is empty): a robot not at an edge site (edge.sites) cannot be reached from it")

// RobotLink publishes VDA 5050 messages to robots through one MQTT client,
// each in the robot's own profile (edition, topics, dialect; see
// vda5050.Profile). Every message is validated against the official schema
// of that edition before it leaves and gets a per-topic headerId (VDA 5050
// §6.2).
type RobotLink struct {
	client   mqtt.Client
	profiles *vda5050.ProfileBook
	headers  vda5050.HeaderCounter
	timeout  time.Duration
	now      func() time.Time
}

// NewRobotLink wraps a paho client. timeout bounds each publish; profiles
// may be nil (every robot speaks the default profile); c may be nil (a
// worker without a broker: every publish fails with ErrNoBroker).
func NewRobotLink(c mqtt.Client, timeout time.Duration, profiles *vda5050.ProfileBook) *RobotLink {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &RobotLink{client: c, profiles: profiles, timeout: timeout, now: time.Now}
}

// Sent says what went out: the headerId and topic, so that a vehicle's
// error naming them (errorReferences headerId, topic) can be matched.
type Sent struct {
	Topic    string
	HeaderID uint32
}

// Profile returns how robot k is spoken to.
func (l *RobotLink) Profile(k vda5050.RobotKey) vda5050.Profile { return l.profiles.For(k) }

// SendOrder publishes order to {interface}/{major}/{m}/{s}/order with QoS 0
// (VDA 5050 §6.1 table), filling the header, in the robot's profile.
// Errors: schema violation (*vda5050.MessageError), ErrNotConnected, publish
// timeout or broker error.
func (l *RobotLink) SendOrder(ctx context.Context, k vda5050.RobotKey, order vda5050.Order) (Sent, error) {
	p := l.profiles.For(k)
	topic := p.Topic(k, vda5050.TopicOrder)
	order.Header = l.headers.Next(topic, k, l.now())
	raw, err := p.EncodeOrder(order)
	if err != nil {
		return Sent{}, err
	}
	return Sent{topic, order.HeaderID}, l.publish(ctx, topic, raw)
}

// SendInstantActions publishes actions to …/instantActions with QoS 0, in
// the robot's dialect (array key, actionType/actionName).
func (l *RobotLink) SendInstantActions(ctx context.Context, k vda5050.RobotKey, actions []vda5050.Action) (Sent, error) {
	p := l.profiles.For(k)
	topic := p.Topic(k, vda5050.TopicInstantActions)
	msg := vda5050.InstantActions{Header: l.headers.Next(topic, k, l.now()), Actions: actions}
	raw, err := p.EncodeInstantActions(msg)
	if err != nil {
		return Sent{}, err
	}
	return Sent{topic, msg.HeaderID}, l.publish(ctx, topic, raw)
}

// tracerName names the MQTT publish spans; the global provider's tracer is
// a no-op unless tracing is set up (worker.SetupTracing).
const tracerName = "github.com/fleetflow/fleetflow/activities"

func (l *RobotLink) publish(ctx context.Context, topic string, raw []byte) (err error) {
	// One span per message to a robot, child of the activity's span: a
	// mission's trace ends at the broker.
	_, span := otel.Tracer(tracerName).Start(ctx, "mqtt publish "+topic, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "mqtt"), attribute.String("messaging.destination.name", topic),
			attribute.Int("messaging.message.body.size", len(raw))))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	if l.client == nil {
		return fmt.Errorf("publish %s: %w", topic, ErrNoBroker)
	}
	if !l.client.IsConnectionOpen() {
		return fmt.Errorf("publish %s: %w (reconnecting to the broker); not sent", topic, ErrNotConnected)
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
	// The connection may have dropped while the message was queued: then it
	// may not have left. Sending it again is harmless (same orderId and
	// orderUpdateId are ignored, §6.6.4; instant actions are matched by
	// actionId).
	if !l.client.IsConnectionOpen() {
		return fmt.Errorf("publish %s: %w (the connection dropped while sending); may not have been sent", topic, ErrNotConnected)
	}
	return nil
}

package sim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetflow/fleetflow/internal/vda5050"
)

// MQTT timings of a robot's link.
const (
	connectTimeout       = 10 * time.Second
	writeTimeout         = 5 * time.Second
	ackTimeout           = 10 * time.Second // subscribe and QoS 1 publish acknowledgements
	maxReconnectInterval = 5 * time.Second
	disconnectQuiesce    = 250 // milliseconds
	inboxWait            = time.Second
)

var errLinkDropped = errors.New("connection dropped by fault injection; call Reconnect")

// link is one paho client and the network connection it opened. A link is
// never reused after it is dropped or disconnected (paho clients must not be
// reused after Disconnect): Reconnect builds a new one.
type link struct {
	client mqtt.Client
	dead   atomic.Bool // dropped or stopped: the dialer refuses to reconnect

	mu   sync.Mutex
	conn net.Conn // the current raw connection, closed by DropConnection

	onlineOnce sync.Once
	online     chan struct{} // closed when ONLINE was first published, or onlineErr set
	onlineErr  error
}

// connect builds a new link and waits until it is connected, subscribed and
// ONLINE is published. A robot whose link is alive returns nil at once.
func (r *Robot) connect(ctx context.Context) error {
	r.linkMu.Lock()
	if r.link != nil && !r.link.dead.Load() {
		r.linkMu.Unlock()
		return nil
	}
	l := &link{online: make(chan struct{})}
	l.client = mqtt.NewClient(r.clientOptions(l))
	r.link = l
	r.linkMu.Unlock()

	tok := l.client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		r.abandon(l)
		return fmt.Errorf("connect to %s: %w", r.opts.BrokerURL, ctx.Err())
	}
	if err := tok.Error(); err != nil {
		r.abandon(l)
		return fmt.Errorf("connect to %s: %w", r.opts.BrokerURL, err)
	}
	select {
	case <-l.online:
	case <-ctx.Done():
		r.abandon(l)
		return fmt.Errorf("announce ONLINE: %w", ctx.Err())
	}
	if l.onlineErr != nil {
		r.abandon(l)
		return l.onlineErr
	}
	return nil
}

// abandon gives up a link that never came up properly.
func (r *Robot) abandon(l *link) {
	l.dead.Store(true)
	l.client.Disconnect(0)
}

func (r *Robot) clientOptions(l *link) *mqtt.ClientOptions {
	will, err := r.connectionMessage(vda5050.ConnectionBroken)
	if err != nil {
		// Only a broken invariant of this package gets here.
		panic(err)
	}
	o := mqtt.NewClientOptions().
		AddBroker(r.opts.BrokerURL).
		SetClientID("sim-"+r.key.Manufacturer+"-"+r.key.SerialNumber).
		SetUsername(r.opts.Username).
		SetPassword(r.opts.Password).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(maxReconnectInterval).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(writeTimeout).
		// The order of inbound messages matters (an order before its update),
		// so handlers stay ordered and only hand the payload to the robot's
		// goroutine (see enqueue), never blocking for long.
		SetOrderMatters(true).
		SetBinaryWill(r.profile.Topic(r.key, vda5050.TopicConnection), will, 1, true).
		SetCustomOpenConnectionFn(func(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
			return r.dial(l, u, o)
		}).
		SetOnConnectHandler(func(c mqtt.Client) { r.onConnect(l, c) }).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			if !l.dead.Load() {
				r.log.Warn("sim robot lost its MQTT connection", "robot", r.key.String(), "err", err)
			}
		})
	return o
}

// dial opens the network connection for paho and remembers it, so that
// DropConnection can close it under paho's feet.
func (r *Robot) dial(l *link, u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	if l.dead.Load() {
		return nil, errLinkDropped
	}
	d := &net.Dialer{Timeout: o.ConnectTimeout}
	var (
		c   net.Conn
		err error
	)
	switch u.Scheme {
	case "tcp", "mqtt":
		c, err = d.Dial("tcp", u.Host)
	case "ssl", "tls", "mqtts", "tcps":
		c, err = tls.DialWithDialer(d, "tcp", u.Host, o.TLSConfig)
	default:
		return nil, fmt.Errorf("broker URL scheme %q: the simulator speaks tcp, mqtt, ssl, tls, mqtts", u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.conn = c
	l.mu.Unlock()
	return c, nil
}

// onConnect runs in its own goroutine after every (re)connect: subscriptions
// are lost with a clean session, so they are made here (VDA 5050 §6.1: order
// and instantActions with QoS 0), then ONLINE is published retained with
// QoS 1 (§6.14) and a fresh state is requested.
func (r *Robot) onConnect(l *link, c mqtt.Client) {
	err := r.subscribe(c)
	if err == nil {
		err = r.publishConnection(c, vda5050.ConnectionOnline)
	}
	if err != nil {
		r.log.Error("sim robot could not come online", "robot", r.key.String(), "err", err)
	}
	l.onlineOnce.Do(func() {
		l.onlineErr = err
		close(l.online)
	})
	if err == nil {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

func (r *Robot) subscribe(c mqtt.Client) error {
	tok := c.SubscribeMultiple(map[string]byte{
		r.orderTopic:   0,
		r.instantTopic: 0,
	}, r.onMessage)
	if !tok.WaitTimeout(ackTimeout) {
		return fmt.Errorf("subscribe: no SUBACK within %s", ackTimeout)
	}
	return tok.Error()
}

func (r *Robot) connectionMessage(s vda5050.ConnectionState) ([]byte, error) {
	topic := r.profile.Topic(r.key, vda5050.TopicConnection)
	return r.profile.Encode(vda5050.TopicConnection, vda5050.Connection{
		Header:          r.header(topic, time.Now()),
		ConnectionState: s,
	})
}

// publishConnection publishes s retained with QoS 1 and waits for the PUBACK.
func (r *Robot) publishConnection(c mqtt.Client, s vda5050.ConnectionState) error {
	raw, err := r.connectionMessage(s)
	if err != nil {
		return err
	}
	tok := c.Publish(r.profile.Topic(r.key, vda5050.TopicConnection), 1, true, raw)
	if !tok.WaitTimeout(ackTimeout) {
		return fmt.Errorf("publish %s: no PUBACK within %s", s, ackTimeout)
	}
	return tok.Error()
}

// onMessage hands an inbound order or instantActions to the robot's
// goroutine. It waits at most inboxWait when the inbox is full and then drops
// the message, so paho's router is never held up for long.
func (r *Robot) onMessage(_ mqtt.Client, m mqtt.Message) {
	in := inbound{payload: m.Payload()}
	switch m.Topic() {
	case r.orderTopic:
		in.topic = vda5050.TopicOrder
	case r.instantTopic:
		in.topic = vda5050.TopicInstantActions
	default:
		return
	}
	select {
	case r.inbox <- in:
		return
	default:
	}
	t := time.NewTimer(inboxWait)
	defer t.Stop()
	select {
	case r.inbox <- in:
	case <-t.C:
		r.log.Warn("sim robot inbox full: message dropped", "robot", r.key.String(), "topic", string(in.topic))
	}
}

// publish sends a QoS 0, non-retained message if the link is up. The token
// is returned for callers that need the message on the wire (nil when the
// robot is offline).
func (r *Robot) publish(topic string, raw []byte) mqtt.Token {
	r.linkMu.Lock()
	l := r.link
	r.linkMu.Unlock()
	if l == nil || l.dead.Load() || !l.client.IsConnectionOpen() {
		return nil
	}
	return l.client.Publish(topic, 0, false, raw)
}

// DropConnection closes the robot's network connection abruptly, without an
// MQTT DISCONNECT, so the broker publishes the robot's last will
// (CONNECTIONBROKEN, retained, VDA 5050 §6.14). The robot keeps executing
// its order but publishes nothing and does not reconnect until Reconnect.
func (r *Robot) DropConnection() {
	r.linkMu.Lock()
	l := r.link
	r.linkMu.Unlock()
	if l == nil || l.dead.Swap(true) {
		return
	}
	l.mu.Lock()
	c := l.conn
	l.conn = nil
	l.mu.Unlock()
	if c != nil {
		_ = c.Close() // the broker sees the socket close without DISCONNECT
	}
	r.log.Info("sim robot connection dropped", "robot", r.key.String())
	// Stop paho's reconnect loop; anything it still tries to write goes to
	// the closed socket, so no DISCONNECT can reach the broker.
	go l.client.Disconnect(0)
}

// Reconnect brings a dropped robot back: a new MQTT client connects,
// subscribes and publishes ONLINE (VDA 5050 §6.14), then the robot publishes
// its state. It returns nil at once if the robot is connected.
func (r *Robot) Reconnect() error {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout+2*ackTimeout)
	defer cancel()
	return r.connect(ctx)
}

// disconnect publishes OFFLINE retained and disconnects gracefully.
func (r *Robot) disconnect() {
	r.linkMu.Lock()
	l := r.link
	r.linkMu.Unlock()
	if l == nil || l.dead.Swap(true) {
		return
	}
	if l.client.IsConnectionOpen() {
		if err := r.publishConnection(l.client, vda5050.ConnectionOffline); err != nil {
			r.log.Warn("sim robot could not publish OFFLINE", "robot", r.key.String(), "err", err)
		}
	}
	l.client.Disconnect(disconnectQuiesce)
}

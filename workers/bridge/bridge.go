// Package bridge is the telemetry bridge that runs in the workers binary: it
// subscribes to every robot's VDA 5050 state and connection topics, stores
// the latest state in PostgreSQL in batches, and signals the workflow that
// owns a robot's order — only on meaningful changes (node reached, action
// status change, order finished, error raised or cleared, connection
// change), never on a mere position update.
//
// It never blocks the MQTT client's callbacks: messages go to bounded
// queues, one per decoder goroutine (robots are sharded over decoders, so
// one robot's messages stay in order while schema validation, the costly
// part, uses every core); signals to one workflow are sent in order by one
// sender goroutine (robots are sharded over senders).
package bridge

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// Signaler delivers a RobotEvent to a workflow (a Temporal client's
// SignalWorkflow in production).
type Signaler interface {
	Signal(ctx context.Context, workflowID string, ev schemas.RobotEvent) error
}

// Sink stores robot states, connection changes and deviation counts
// (store.Store in production).
type Sink interface {
	UpsertStates(ctx context.Context, states []store.RobotState) error
	UpsertConnections(ctx context.Context, conns []store.ConnectionUpdate) error
	AddDeviations(ctx context.Context, counts []store.DeviationCount) error
	// AddHealth adds what was counted for condition-based maintenance.
	AddHealth(ctx context.Context, deltas []store.HealthDelta) error
}

// Options configures a Bridge.
type Options struct {
	FlushInterval time.Duration // upper bound on how long a state waits to be stored (default 50 ms)
	BatchSize     int           // flush when this many robots have unsaved state (default 500)
	QueueSize     int           // inbound messages queued over all decoders (default 65536); full = drop and count
	Decoders      int           // goroutines that parse and validate messages (default GOMAXPROCS)
	Senders       int           // signal sender goroutines (default 16)
	// ProgressLinger is how long a progress-only signal (node reached,
	// driving, an action started or finished mid-order, a new order taken)
	// may wait for newer states of the same robot to coalesce with it
	// (default 25 ms; negative = none). Urgent changes go at once and take
	// the waiting progress with them: the order ended, an action failed,
	// errors, pause or the connection changed. A fast robot's whole order
	// then costs its workflow one signal and one workflow task instead of
	// one per burst of progress (README, Benchmarks).
	ProgressLinger time.Duration
	// MaxMessageBytes refuses larger messages (default 256 KiB; a VDA 5050
	// state of a long order is a few kilobytes).
	MaxMessageBytes int
	// MaxClockSkew refuses states whose header timestamp lies further in
	// the future (default 5 min): one such state would make every later
	// one look stale.
	MaxClockSkew time.Duration
	// WriteTimeout bounds each batched write to the registry (default 5 s).
	WriteTimeout time.Duration
	// RowRetries is how many flushes a state that fails even on its own
	// (per-row fallback) is kept for before it is dropped (default 3).
	RowRetries int
	// OwnerPrefixes: only orderIds/actionIds with one of these prefixes name a
	// fleetflow workflow (default schemas.OwnerPrefixes).
	OwnerPrefixes []string
	// Profiles says how each robot speaks VDA 5050 (edition, topics,
	// dialect); nil = every robot speaks the default profile (2.0.0, uagv).
	Profiles   *vda5050.ProfileBook
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil = no metrics registered
}

type message struct {
	topic   string
	payload []byte
}

// decoded is a message that parsed and passed its schema: a state or a
// connection of robot k.
type decoded struct {
	k    vda5050.RobotKey
	st   *vda5050.State
	conn *vda5050.Connection
	// Of a state read tolerantly: how it deviates from its schema, and the
	// parts that could not be used (their last known values are kept).
	deviations []vda5050.Deviation
	unusable   []string
	// rejected: the message could not be used at all (counted per robot).
	rejected string
}

// summary is what the bridge remembers per robot to decide whether a new
// state is a meaningful change.
type summary struct {
	connection   string
	orderID      string
	orderUpdate  uint32
	lastNode     string
	lastSeq      int
	nodes, edges int
	driving      bool
	paused       bool
	// actions holds each action's status and, for progress reporting,
	// its resultDescription ("RUNNING\x00downloading").
	actions    map[string]string
	errorsKey  string
	version    string             // state.information softwareVersion
	connSent   time.Time          // header timestamp of the robot's last own ONLINE/OFFLINE
	connHeader uint32             // and its headerId (timestamps have millisecond resolution)
	last       schemas.RobotEvent // the latest full event, reused for connection changes
	headerID   uint32             // of the latest accepted state
	timestamp  time.Time          // of the latest accepted state
	// The latest accepted state as stored, with its errors and action
	// states: what an unusable part of a newer state falls back to.
	state   store.RobotState
	errs    []vda5050.Error
	acts    []vda5050.ActionState
	hasPrev bool // a state was accepted before
}

// pendingState is a robot's latest state waiting for the batched upsert.
type pendingState struct {
	state   store.RobotState
	errors  []vda5050.Error
	actions []vda5050.ActionState
	refused int // flushes in which the registry refused this state on its own
}

type signalJob struct {
	workflowID string
	ev         schemas.RobotEvent
}

// Bridge routes robot telemetry. Create with New, feed with Handle (or
// Subscribe to a broker), Run its loops.
type Bridge struct {
	opts     Options
	sink     Sink
	signaler Signaler
	log      *slog.Logger

	in      []chan message // one per decoder
	decoded chan *decoded  // decoders → Run
	senders []*sender

	mu      sync.Mutex
	robots  map[string]*summary
	pending map[string]pendingState
	conns   []store.ConnectionUpdate
	devs    map[[2]string]*store.DeviationCount // (robot, kind) → counts not yet stored
	devSeen map[[2]string]bool                  // (robot, kind) already logged once
	health  map[string]*store.HealthDelta       // robot → counted, not yet stored

	m metrics
}

type metrics struct {
	received   *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	deviations *prometheus.CounterVec
	dropped    prometheus.Counter
	signals    *prometheus.CounterVec
	flushes    prometheus.Counter
	flushError prometheus.Counter
	rowsLost   prometheus.Counter
	flushSecs  prometheus.Histogram
	signalSecs prometheus.Histogram
	battery    *prometheus.GaugeVec // by robot
	online     *prometheus.GaugeVec // by robot
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		received:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fleetflow_bridge_messages_total", Help: "VDA 5050 messages received by topic."}, []string{"topic"}),
		rejected:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fleetflow_bridge_rejected_messages_total", Help: "Malformed VDA 5050 messages rejected, by topic."}, []string{"topic"}),
		deviations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fleetflow_bridge_state_deviations_total", Help: "Deviations of robots' messages from their VDA 5050 edition's schema that were tolerated (or, kind rejected, messages that could not be used), by robot and kind."}, []string{"robot", "kind"}),
		dropped:    prometheus.NewCounter(prometheus.CounterOpts{Name: "fleetflow_bridge_dropped_messages_total", Help: "Messages dropped because the bridge queue was full."}),
		signals:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fleetflow_bridge_signals_total", Help: "Robot-event signals sent to workflows, by result."}, []string{"result"}),
		flushes:    prometheus.NewCounter(prometheus.CounterOpts{Name: "fleetflow_bridge_flushes_total", Help: "Batched robot-state upserts."}),
		flushError: prometheus.NewCounter(prometheus.CounterOpts{Name: "fleetflow_bridge_flush_errors_total", Help: "Failed batched upserts."}),
		rowsLost:   prometheus.NewCounter(prometheus.CounterOpts{Name: "fleetflow_bridge_dropped_states_total", Help: "Robot states the registry refused on their own, flush after flush, and that were dropped (the rest of their batch was stored)."}),
		flushSecs:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fleetflow_bridge_flush_seconds", Help: "Duration of a batched upsert.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		signalSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fleetflow_bridge_signal_seconds", Help: "Duration of one SignalWorkflow call.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		battery:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fleetflow_robot_battery_percent", Help: "Each robot's battery charge as its latest accepted state reports it (VDA 5050 batteryState.batteryCharge)."}, []string{"robot"}),
		online:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fleetflow_robot_online", Help: "1 while a robot's connection topic says ONLINE, 0 after OFFLINE or CONNECTIONBROKEN."}, []string{"robot"}),
	}
	// Series at zero from the start: a dashboard or alert sees 0, not
	// nothing, before the first rejection.
	for _, t := range []vda5050.Topic{vda5050.TopicState, vda5050.TopicConnection, vda5050.TopicFactsheet, vda5050.TopicVisualization} {
		m.received.WithLabelValues(string(t))
		m.rejected.WithLabelValues(string(t))
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.received, m.rejected, m.deviations, m.dropped, m.signals, m.flushes, m.flushError, m.rowsLost, m.flushSecs, m.signalSecs, m.battery, m.online} {
			_ = reg.Register(c)
		}
	}
	return m
}

// New creates a bridge.
func New(sink Sink, signaler Signaler, opts Options) *Bridge {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 50 * time.Millisecond
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1 << 16
	}
	if opts.ProgressLinger == 0 {
		opts.ProgressLinger = 25 * time.Millisecond
	} else if opts.ProgressLinger < 0 {
		opts.ProgressLinger = 0
	}
	if opts.Decoders <= 0 {
		opts.Decoders = runtime.GOMAXPROCS(0)
	}
	if opts.Senders <= 0 {
		opts.Senders = 16
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 256 << 10
	}
	if opts.MaxClockSkew <= 0 {
		opts.MaxClockSkew = 5 * time.Minute
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 5 * time.Second
	}
	if opts.RowRetries <= 0 {
		opts.RowRetries = 3
	}
	if opts.OwnerPrefixes == nil {
		opts.OwnerPrefixes = schemas.OwnerPrefixes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	b := &Bridge{
		opts: opts, sink: sink, signaler: signaler, log: opts.Logger,
		decoded: make(chan *decoded, max(opts.QueueSize/16, 1)),
		robots:  map[string]*summary{},
		pending: map[string]pendingState{},
		devs:    map[[2]string]*store.DeviationCount{},
		devSeen: map[[2]string]bool{},
		health:  map[string]*store.HealthDelta{},
		m:       newMetrics(opts.Registerer),
	}
	for i := 0; i < opts.Decoders; i++ {
		b.in = append(b.in, make(chan message, max(opts.QueueSize/opts.Decoders, 1)))
	}
	for i := 0; i < opts.Senders; i++ {
		b.senders = append(b.senders, newSender())
	}
	return b
}

// Subscribe subscribes c to state, connection and factsheet of all robots
// (QoS 0, 1 and 0), under every interface name and major version the
// profiles use. Call it from the client's OnConnect handler so
// subscriptions come back after a reconnect. sharedGroup != "" uses
// $share/<group>/… so several bridges split the fleet.
func (b *Bridge) Subscribe(c mqtt.Client, sharedGroup string) error {
	filters := map[string]byte{}
	for t, qos := range map[vda5050.Topic]byte{vda5050.TopicState: 0, vda5050.TopicConnection: 1, vda5050.TopicFactsheet: 0} {
		for _, f := range b.opts.Profiles.Subscriptions(t) {
			filters[f] = qos
		}
	}
	if sharedGroup != "" {
		shared := map[string]byte{}
		for f, q := range filters {
			shared["$share/"+sharedGroup+"/"+f] = q
		}
		filters = shared
	}
	tok := c.SubscribeMultiple(filters, func(_ mqtt.Client, msg mqtt.Message) {
		b.Enqueue(msg.Topic(), msg.Payload())
	})
	if !tok.WaitTimeout(10 * time.Second) {
		return errors.New("bridge: subscribe timed out")
	}
	return tok.Error()
}

// Enqueue hands a message to the bridge without blocking; when the queue is
// full the message is dropped and counted (the robot republishes its state
// at least every 30 s, and workflows reconcile).
func (b *Bridge) Enqueue(topic string, payload []byte) {
	select {
	case b.in[robotShard(topic, len(b.in))] <- message{topic, payload}:
	default:
		b.m.dropped.Inc()
	}
}

// robotShard maps a topic to one of n shards by its robot part
// (uagv/v2/<manufacturer>/<serialNumber>), so one robot's state and
// connection messages land in the same shard. FNV-1a, without allocating.
func robotShard(topic string, n int) int {
	if n <= 1 {
		return 0
	}
	if i := strings.LastIndexByte(topic, '/'); i > 0 {
		topic = topic[:i]
	}
	h := uint32(2166136261)
	for i := 0; i < len(topic); i++ {
		h ^= uint32(topic[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// decodeLoop parses and validates the messages of one shard and hands them
// to Run in arrival order.
func (b *Bridge) decodeLoop(ctx context.Context, in <-chan message) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-in:
			d := b.decode(m.topic, m.payload)
			if d == nil {
				continue
			}
			select {
			case b.decoded <- d:
			case <-ctx.Done():
				return
			}
		}
	}
}

// Run processes messages, flushes batches and sends signals until ctx ends;
// then it flushes what is pending.
func (b *Bridge) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, sd := range b.senders {
		wg.Add(1)
		go func(sd *sender) {
			defer wg.Done()
			b.sendLoop(ctx, sd)
		}(sd)
	}
	for _, in := range b.in {
		wg.Add(1)
		go func(in chan message) {
			defer wg.Done()
			b.decodeLoop(ctx, in)
		}(in)
	}
	tick := time.NewTicker(b.opts.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			b.Flush(fctx)
			cancel()
			wg.Wait()
			return
		case d := <-b.decoded:
			// Take what has queued up too, store it in one batch, and only
			// then signal: a workflow that hears "finished" must find that
			// state in the registry (the next mission plans from it).
			jobs := b.apply(d)
		drain:
			for n := 1; n < b.opts.BatchSize; n++ {
				select {
				case d := <-b.decoded:
					jobs = append(jobs, b.apply(d)...)
				default:
					break drain
				}
			}
			if len(jobs) > 0 || b.pendingCount() >= b.opts.BatchSize {
				b.Flush(ctx)
			}
			for _, j := range jobs {
				b.route(j)
			}
		case <-tick.C:
			b.Flush(ctx)
		}
	}
}

func (b *Bridge) pendingCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending) + len(b.conns)
}

// Handle decodes one message and routes its signals at once (Run stores
// first, then routes). It is the hot path measured by BenchmarkDecodeAndRoute.
// A malformed message is logged and counted, never a crash.
func (b *Bridge) Handle(ctx context.Context, topic string, payload []byte) {
	d := b.decode(topic, payload)
	if d == nil {
		return
	}
	for _, j := range b.apply(d) {
		b.route(j)
	}
}

// routeJob is a signal to send once the state behind it is stored.
type routeJob struct {
	robotID, workflowID string
	ev                  schemas.RobotEvent
	urgent              bool // send at once, no progress linger
}

// apply folds a decoded message into the robot's summary and returns the
// signals it calls for. Run calls it from one goroutine, in each robot's
// arrival order.
func (b *Bridge) apply(d *decoded) []routeJob {
	if d.rejected != "" || len(d.deviations) > 0 {
		b.mu.Lock()
		b.countDeviations(d, time.Now())
		b.mu.Unlock()
	}
	switch {
	case d.st != nil:
		return b.onState(d.k, d.st, d.unusable)
	case d.conn != nil:
		return b.onConnection(d.k, d.conn)
	}
	return nil
}

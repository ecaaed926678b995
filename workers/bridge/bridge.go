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
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	gojson "github.com/goccy/go-json"
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
	// fleetflow workflow (default "mission-", "rollout-", "maintenance-", "charge-").
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
		opts.OwnerPrefixes = []string{"mission-", "rollout-", "maintenance-", "charge-"}
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

// decode parses topic and payload and reads the payload by the robot's
// profile: a state tolerantly (vda5050.DecodeState: deviations counted,
// unusable parts named), a connection strictly against its edition's
// schema; a factsheet only tells the version an auto profile speaks. It
// returns nil for a message that carries nothing (a cleared retained
// connection, a factsheet) and a decoded with rejected set for one that
// cannot be used at all. Safe for concurrent use.
func (b *Bridge) decode(topic string, payload []byte) *decoded {
	k, t, err := vda5050.ParseTopic(topic)
	if err != nil {
		b.m.rejected.WithLabelValues("unknown").Inc()
		b.log.Warn("bridge: message on unexpected topic", "topic", topic, "error", err)
		return nil
	}
	b.m.received.WithLabelValues(string(t)).Inc()
	if err := wellFormed(payload, b.opts.MaxMessageBytes); err != nil {
		return b.reject(k, t, topic, err)
	}
	prof := b.opts.Profiles.For(k)
	switch t {
	case vda5050.TopicState:
		in, err := vda5050.DecodeState(prof.Edition(), payload)
		if err != nil {
			return b.reject(k, t, topic, err)
		}
		st := &in.State
		if st.Manufacturer != k.Manufacturer || st.SerialNumber != k.SerialNumber {
			return b.reject(k, t, topic, errors.New("header manufacturer/serialNumber do not match the topic"))
		}
		ts, err := time.Parse(time.RFC3339Nano, st.Timestamp)
		if err != nil {
			return b.reject(k, t, topic, fmt.Errorf("header timestamp %q is not RFC 3339", st.Timestamp))
		}
		if ts.After(time.Now().Add(b.opts.MaxClockSkew)) {
			return b.reject(k, t, topic, fmt.Errorf("header timestamp %s is more than %s in the future", st.Timestamp, b.opts.MaxClockSkew))
		}
		b.opts.Profiles.Saw(k, st.Version)
		return &decoded{k: k, st: st, deviations: in.Deviations, unusable: in.Unusable}
	case vda5050.TopicConnection:
		if len(payload) == 0 {
			return nil // a cleared retained message
		}
		var c vda5050.Connection
		if err := vda5050.ValidateEdition(prof.Edition(), t, payload); err != nil {
			return b.reject(k, t, topic, err)
		}
		if err := gojson.Unmarshal(payload, &c); err != nil {
			return b.reject(k, t, topic, err)
		}
		return &decoded{k: k, conn: &c}
	case vda5050.TopicFactsheet:
		var h vda5050.Header
		if err := gojson.Unmarshal(payload, &h); err == nil {
			b.opts.Profiles.Saw(k, h.Version)
		}
	}
	return nil
}

// wellFormed refuses what the registry could not hold or a robot has no
// business sending: a message over max bytes, invalid UTF-8, or a NUL
// character in a string (PostgreSQL text and jsonb refuse \u0000, and one
// such value fails the whole batched statement it is in).
func wellFormed(payload []byte, max int) error {
	if len(payload) > max {
		return fmt.Errorf("message of %d bytes exceeds the %d-byte limit", len(payload), max)
	}
	if !utf8.Valid(payload) {
		return errors.New("message is not valid UTF-8")
	}
	if hasNULEscape(payload) {
		return errors.New(`message holds a NUL character (\u0000) in a string`)
	}
	return nil
}

// hasNULEscape finds a JSON \u0000 escape (a raw NUL byte is not valid
// JSON anyway): a backslash run of odd length followed by u0000.
func hasNULEscape(b []byte) bool {
	for i := 0; i+5 < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		j := i
		for j < len(b) && b[j] == '\\' {
			j++
		}
		if (j-i)%2 == 1 && j+5 <= len(b) && b[j] == 'u' && string(b[j+1:j+5]) == "0000" {
			return true
		}
		i = j - 1
	}
	return false
}

// reject counts and logs a message that cannot be used at all; Run counts
// it against the robot too (deviation kind "rejected").
func (b *Bridge) reject(k vda5050.RobotKey, t vda5050.Topic, topic string, err error) *decoded {
	b.m.rejected.WithLabelValues(string(t)).Inc()
	b.log.Warn("bridge: rejected malformed message", "topic", topic, "reason", err.Error())
	return &decoded{k: k, rejected: string(t) + ": " + err.Error()}
}

// DeviationRejected counts, per robot, the messages that could not be used
// at all (beside the vda5050.Deviation kinds of the ones that could).
const DeviationRejected = "rejected"

// countDeviations adds d's deviations (or its rejection) to the robot's
// counts, to be stored with the next flush, and logs the first of each kind
// per robot (the rest are counted: /metrics, `fleet show`). Caller holds mu.
func (b *Bridge) countDeviations(d *decoded, at time.Time) {
	id := d.k.String()
	add := func(kind, path, detail string) {
		key := [2]string{id, kind}
		c := b.devs[key]
		if c == nil {
			c = &store.DeviationCount{RobotID: id, Kind: kind}
			b.devs[key] = c
		}
		c.Count++
		c.LastPath, c.LastDetail, c.LastAt = path, detail, at
		b.m.deviations.WithLabelValues(id, kind).Inc()
		if !b.devSeen[key] {
			b.devSeen[key] = true
			b.log.Warn("bridge: robot's messages deviate from its VDA 5050 schema (counted; further ones are not logged)",
				"robot", id, "kind", kind, "path", path, "detail", detail)
		}
	}
	if d.rejected != "" {
		add(DeviationRejected, "", d.rejected)
	}
	for _, dv := range d.deviations {
		add(dv.Kind, dv.Path, dv.Detail)
	}
}

func (b *Bridge) onState(k vda5050.RobotKey, st *vda5050.State, unusable []string) []routeJob {
	id := k.String()
	ts, _ := time.Parse(time.RFC3339Nano, st.Timestamp)
	if len(unusable) > 0 {
		b.mu.Lock()
		if prev := b.robots[id]; prev != nil && prev.hasPrev {
			carryOver(st, unusable, prev)
		}
		b.mu.Unlock()
	}
	redactURLQueries(st)
	rs := store.RobotState{
		RobotID: id, OrderID: st.OrderID, OrderUpdateID: int64(st.OrderUpdateID),
		LastNodeID: st.LastNodeID, LastNodeSequenceID: st.LastNodeSequenceID, Driving: st.Driving,
		Paused: st.Paused != nil && *st.Paused, BatteryCharge: st.BatteryState.BatteryCharge,
		NodeStatesRemaining: len(st.NodeStates), HeaderID: int64(st.HeaderID), Timestamp: ts,
		ProtocolVersion: st.Version,
	}
	if p := st.AGVPosition; p != nil {
		rs.X, rs.Y, rs.Theta, rs.MapID = p.X, p.Y, p.Theta, p.MapID
	}
	if f := st.FatalError(); f != nil {
		rs.FatalError = f.ErrorType + ": " + f.ErrorDescription
	}
	rs.SoftwareVersion = softwareVersion(st)
	b.mu.Lock()
	prev := b.robots[id]
	if prev != nil && stale(prev, st.HeaderID, ts) {
		b.mu.Unlock()
		b.m.rejected.WithLabelValues("stale").Inc()
		return nil
	}
	// Errors and actionStates are turned into JSON at flush time: most
	// states are superseded by a newer one before they are stored.
	b.pending[id] = pendingState{state: rs, errors: st.Errors, actions: st.ActionStates}
	b.countHealth(id, prev, st, ts)
	b.m.battery.WithLabelValues(id).Set(st.BatteryState.BatteryCharge)
	next := &summary{
		orderID: st.OrderID, orderUpdate: st.OrderUpdateID, lastNode: st.LastNodeID, lastSeq: st.LastNodeSequenceID,
		nodes: len(st.NodeStates), edges: len(st.EdgeStates), driving: st.Driving, paused: rs.Paused,
		actions: make(map[string]string, len(st.ActionStates)), errorsKey: errorsKey(st.Errors),
		version:  softwareVersion(st),
		headerID: st.HeaderID, timestamp: ts,
		state: rs, errs: st.Errors, acts: st.ActionStates, hasPrev: true,
	}
	if prev != nil {
		next.connection = prev.connection
	}
	for _, a := range st.ActionStates {
		next.actions[a.ActionID] = string(a.ActionStatus) + "\x00" + a.ResultDescription
	}
	ev := schemas.RobotEvent{
		RobotID: id, OrderID: st.OrderID, OrderUpdateID: st.OrderUpdateID, LastNodeID: st.LastNodeID,
		LastNodeSequenceID: st.LastNodeSequenceID, NodesRemaining: len(st.NodeStates), EdgesRemaining: len(st.EdgeStates),
		Driving: st.Driving, Paused: rs.Paused, ActionStates: st.ActionStates, Errors: st.Errors,
		BatteryCharge: st.BatteryState.BatteryCharge, StateTimestamp: st.Timestamp, SoftwareVersion: rs.SoftwareVersion,
	}
	if next.connection != string(vda5050.ConnectionOnline) {
		ev.Connection = next.connection // still lost: a state before the connection message
	}
	if ev.Connection == "" {
		ev.Connection = string(vda5050.ConnectionOnline) // it just sent a state
	}
	next.last = ev
	b.robots[id] = next
	b.mu.Unlock()

	if prev != nil && !meaningful(prev, next) {
		return nil
	}
	now := prev == nil || urgent(prev, next)
	var jobs []routeJob
	for _, owner := range b.owners(st) {
		jobs = append(jobs, routeJob{id, owner, ev, now})
	}
	return jobs
}

// maxDrivingGap bounds the driving time one pair of states adds: a robot
// that went silent while driving (offline, the bridge down) is not counted
// as driving all that time.
const maxDrivingGap = time.Minute

// countHealth adds what st tells about the robot's condition to the counts
// for condition-based maintenance (store.HealthDelta): the time since
// the previous state when that one said driving, the errors that were not
// in the previous state, the battery's state of health. Time and errors
// count only between states with consecutive headerIds (VDA 5050 §6.2:
// one per message): across a gap, a restarted bridge, or a bridge that
// shares the robot's messages with another (MQTT shared subscription),
// nothing is known of what happened in between, so nothing is counted
// rather than counted twice. Call it holding b.mu.
func (b *Bridge) countHealth(id string, prev *summary, st *vda5050.State, ts time.Time) {
	var drive float64
	var fresh int64
	if prev != nil && prev.hasPrev && st.HeaderID == prev.headerID+1 {
		if prev.driving && ts.After(prev.timestamp) {
			drive = min(ts.Sub(prev.timestamp), maxDrivingGap).Seconds()
		}
		old := make(map[string]bool, len(prev.errs))
		for _, e := range prev.errs {
			old[e.ErrorType+"\x00"+e.ErrorDescription] = true
		}
		for _, e := range st.Errors {
			if !old[e.ErrorType+"\x00"+e.ErrorDescription] {
				fresh++
			}
		}
	}
	hh := st.BatteryState.BatteryHealth
	if drive == 0 && fresh == 0 && hh == nil {
		return
	}
	d := b.health[id]
	if d == nil {
		d = &store.HealthDelta{RobotID: id}
		b.health[id] = d
	}
	d.DrivingSeconds += drive
	d.NewErrors += fresh
	if hh != nil {
		v := *hh
		d.BatteryHealth = &v
	}
}

// InfoSoftwareVersion is the state.information infoType that carries the
// robot's installed software version in infoDescription (fleetflow's
// convention; VDA 5050 2.0 has no dedicated field, 2.1 adds the factsheet's
// vehicleConfig.versions).
const InfoSoftwareVersion = "softwareVersion"

// softwareVersion returns the version the state reports, "" when none.
func softwareVersion(st *vda5050.State) string {
	for _, in := range st.Information {
		if in.InfoType == InfoSoftwareVersion {
			return in.InfoDescription
		}
	}
	return ""
}

// Parts of a state whose last known values stand in when a newer state's
// are unusable (vda5050.Intake.Unusable).
var progressParts = map[string]bool{
	"orderId": true, "orderUpdateId": true, "lastNodeId": true, "lastNodeSequenceId": true,
	"nodeStates": true, "edgeStates": true, "driving": true, "paused": true,
}

// carryOver puts prev's values into st for every unusable part: battery,
// position, errors, action states, information, and the order progress as
// one (a mix of old and new progress would be a state the robot was never
// in). Caller holds mu.
func carryOver(st *vda5050.State, unusable []string, prev *summary) {
	ps := prev.state
	for _, part := range unusable {
		switch {
		case part == "batteryState":
			st.BatteryState = vda5050.BatteryState{BatteryCharge: ps.BatteryCharge}
		case part == "agvPosition":
			st.AGVPosition = &vda5050.AGVPosition{X: ps.X, Y: ps.Y, Theta: ps.Theta, MapID: ps.MapID, PositionInitialized: true}
		case part == "errors":
			st.Errors = prev.errs
		case part == "actionStates":
			st.ActionStates = prev.acts
		case part == "information":
			if prev.version != "" {
				st.Information = []vda5050.Info{{InfoType: InfoSoftwareVersion, InfoDescription: prev.version, InfoLevel: "INFO"}}
			}
		case progressParts[part]:
			p := prev.last
			st.OrderID, st.OrderUpdateID, st.LastNodeID, st.LastNodeSequenceID = p.OrderID, p.OrderUpdateID, p.LastNodeID, p.LastNodeSequenceID
			st.NodeStates = make([]vda5050.NodeState, p.NodesRemaining)
			st.EdgeStates = make([]vda5050.EdgeState, p.EdgesRemaining)
			st.Driving = p.Driving
			paused := p.Paused
			st.Paused = &paused
		}
	}
}

// stale reports whether a state is older than the robot's last accepted
// one: headerId counts up per topic (VDA 5050 §6.2), so a lower or equal
// one is a late duplicate — unless its timestamp is newer, which means the
// robot restarted and began counting again (as openTCS learned: drop what is
// older than the last accepted message, accept the first after a reconnect).
func stale(prev *summary, headerID uint32, ts time.Time) bool {
	if prev.timestamp.IsZero() || headerID > prev.headerID {
		return false
	}
	return !ts.After(prev.timestamp)
}

// owners returns the workflows named by the state's orderId and by the
// actionIds of instant actions ("<workflowID>#…"), each once; an orderId
// too may carry a "#…" suffix (a mission's order after a handover).
func (b *Bridge) owners(st *vda5050.State) []string {
	var out []string
	add := func(id string) {
		if !b.isOwner(id) {
			return
		}
		for _, o := range out {
			if o == id {
				return
			}
		}
		out = append(out, id)
	}
	owner := func(id string) string { wf, _, _ := strings.Cut(id, "#"); return wf }
	add(owner(st.OrderID)) // after a handover the orderId is "<workflowID>#h<n>"
	for _, a := range st.ActionStates {
		if wf, _, ok := strings.Cut(a.ActionID, "#"); ok {
			add(wf)
		}
	}
	for _, e := range st.Errors {
		for _, r := range e.ErrorReferences {
			if r.ReferenceKey == "orderId" {
				add(owner(r.ReferenceValue))
			}
		}
	}
	return out
}

func (b *Bridge) isOwner(id string) bool {
	for _, p := range b.opts.OwnerPrefixes {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

func (b *Bridge) onConnection(k vda5050.RobotKey, c *vda5050.Connection) []routeJob {
	id := k.String()
	// The time of receipt, not the message's: a last will carries the time
	// the robot connected, older than the ONLINE it sent right after.
	ts := time.Now()
	sent, _ := time.Parse(time.RFC3339Nano, c.Timestamp)
	b.mu.Lock()
	prev := b.robots[id]
	// A robot's own ONLINE/OFFLINE older than the last one it sent is a
	// late delivery: after a quick reboot the broker may hand over the new
	// connection's ONLINE before the old connection's OFFLINE. (A last will
	// carries its connect time, so CONNECTIONBROKEN is not judged by it.)
	if c.ConnectionState != vda5050.ConnectionBroken && prev != nil && !sent.IsZero() &&
		(sent.Before(prev.connSent) || (sent.Equal(prev.connSent) && c.HeaderID < prev.connHeader)) {
		b.mu.Unlock()
		b.m.rejected.WithLabelValues("stale").Inc()
		return nil
	}
	b.conns = append(b.conns, store.ConnectionUpdate{RobotID: id, State: string(c.ConnectionState), At: ts})
	if c.ConnectionState == vda5050.ConnectionOnline {
		b.m.online.WithLabelValues(id).Set(1)
	} else {
		b.m.online.WithLabelValues(id).Set(0)
	}
	changed := prev == nil || prev.connection != string(c.ConnectionState)
	var orderID string
	if prev == nil {
		prev = &summary{actions: map[string]string{}}
		b.robots[id] = prev
	}
	prev.connection = string(c.ConnectionState)
	if c.ConnectionState != vda5050.ConnectionBroken && !sent.Before(prev.connSent) {
		prev.connSent, prev.connHeader = sent, c.HeaderID
	}
	orderID = prev.orderID
	// A connection change carries the robot's last known state too, so a
	// coalesced signal never loses it.
	ev := prev.last
	ev.RobotID, ev.Connection, ev.OrderID = id, string(c.ConnectionState), orderID
	prev.last = ev
	b.mu.Unlock()
	if !changed || !b.isOwner(orderID) {
		return nil
	}
	wf, _, _ := strings.Cut(orderID, "#") // "<workflowID>#h<n>" after a handover
	return []routeJob{{id, wf, ev, true}}
}

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

// urgent reports whether a meaningful state change must be signalled at
// once: errors or pause changed, an action failed, or the robot is done
// with its work (nothing left to drive, every action ended: an order
// finished or cancelled, an instant action answered on an idle robot).
// Anything else is progress and may linger (Options.ProgressLinger).
// Connection changes do not come through here: they are always urgent.
func urgent(prev, next *summary) bool {
	if prev.errorsKey != next.errorsKey || prev.paused != next.paused {
		return true
	}
	done := next.nodes == 0 && next.edges == 0 && !next.driving
	for id, st := range next.actions {
		status, _, _ := strings.Cut(st, "\x00")
		if status == string(vda5050.ActionFailed) {
			if old, _, _ := strings.Cut(prev.actions[id], "\x00"); old != status {
				return true
			}
		}
		if !vda5050.ActionStatus(status).Terminal() {
			done = false
		}
	}
	return done
}

// meaningful reports whether next differs from prev in anything a workflow
// acts on. Position and battery alone are not meaningful.
func meaningful(prev, next *summary) bool {
	if prev.orderID != next.orderID || prev.orderUpdate != next.orderUpdate || prev.lastNode != next.lastNode ||
		prev.lastSeq != next.lastSeq || prev.nodes != next.nodes || prev.edges != next.edges ||
		prev.driving != next.driving || prev.paused != next.paused || prev.errorsKey != next.errorsKey ||
		prev.version != next.version || len(prev.actions) != len(next.actions) {
		return true
	}
	for id, s := range next.actions {
		if prev.actions[id] != s {
			return true
		}
	}
	return false
}

func errorsKey(errs []vda5050.Error) string {
	if len(errs) == 0 {
		return ""
	}
	var sb strings.Builder
	for _, e := range errs {
		sb.WriteString(e.ErrorType)
		sb.WriteByte('|')
		sb.WriteString(string(e.ErrorLevel))
		sb.WriteByte('|')
		sb.WriteString(e.ErrorDescription)
		sb.WriteByte(';')
	}
	return sb.String()
}

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

// urlQuery matches an http(s) URL's query string (and fragment).
var urlQuery = regexp.MustCompile(`(https?://[^\s?#"']+)[?#][^\s"']*`)

// redactURLQueries drops the query strings of URLs a robot echoes in its
// actionStates' resultDescription and errors' errorDescription (a
// softwareUpdate's artifactUrl, say, with the artifact store's presigned
// token): they go from here into workflow histories and the registry.
// States without a URL cost two substring checks.
func redactURLQueries(st *vda5050.State) {
	clean := func(s string) string {
		if !strings.Contains(s, "://") || !strings.ContainsAny(s, "?#") {
			return s
		}
		return urlQuery.ReplaceAllString(s, "$1?…")
	}
	for i := range st.ActionStates {
		st.ActionStates[i].ResultDescription = clean(st.ActionStates[i].ResultDescription)
	}
	for i := range st.Errors {
		st.Errors[i].ErrorDescription = clean(st.Errors[i].ErrorDescription)
	}
}

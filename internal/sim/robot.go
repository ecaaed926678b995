package sim

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetflow/fleetflow/internal/vda5050"
)

// inboxSize is how many inbound messages may wait for the robot's goroutine.
const inboxSize = 16

// Robot is one virtual vehicle. A single goroutine (started by Fleet.Start)
// owns its state and handles inbound messages, timers and the fault
// injection calls in order; Snapshot reads the same state under a mutex.
type Robot struct {
	cfg          RobotConfig
	opts         *Options
	key          vda5050.RobotKey
	profile      vda5050.Profile // resolved: every default filled in
	log          *slog.Logger
	headers      vda5050.HeaderCounter
	orderTopic   string
	instantTopic string
	stateTopic   string

	inbox chan inbound
	cmds  chan command
	kick  chan struct{} // "publish state now", e.g. after a (re)connect

	lifeMu sync.Mutex
	quit   chan struct{} // closed to stop the loop
	done   chan struct{} // closed when the loop has stopped
	// life is cancelled by stop; the loop's background work (softwareUpdate
	// downloads and reboots) runs under it and is counted in bg.
	life       context.Context
	lifeCancel context.CancelFunc
	bg         sync.WaitGroup

	linkMu sync.Mutex
	link   *link

	mu sync.Mutex // guards everything below
	vehicle
}

type inbound struct {
	topic   vda5050.Topic
	payload []byte
}

type command struct {
	fn   func(now time.Time)
	done chan struct{}
}

func newRobot(opts *Options, cfg RobotConfig) *Robot {
	if cfg.Battery == 0 {
		cfg.Battery = DefaultBattery
	}
	if cfg.SoftwareVersion == "" {
		cfg.SoftwareVersion = DefaultSoftwareVersion
	}
	k := vda5050.RobotKey{Manufacturer: cfg.Manufacturer, SerialNumber: cfg.SerialNumber}
	prof := cfg.Profile.Resolve("")
	stopped := make(chan struct{})
	close(stopped)
	r := &Robot{
		cfg:          cfg,
		opts:         opts,
		key:          k,
		profile:      prof,
		log:          opts.Logger,
		orderTopic:   prof.Topic(k, vda5050.TopicOrder),
		instantTopic: prof.Topic(k, vda5050.TopicInstantActions),
		stateTopic:   prof.Topic(k, vda5050.TopicState),
		inbox:        make(chan inbound, inboxSize),
		cmds:         make(chan command),
		kick:         make(chan struct{}, 1),
		done:         stopped,
	}
	r.vehicle = newVehicle(opts, cfg)
	r.flushHook = r.flush
	return r
}

// header returns the next header for topic, in the robot's edition.
func (r *Robot) header(topic string, now time.Time) vda5050.Header {
	h := r.headers.Next(topic, r.key, now)
	h.Version = r.profile.Version
	return h
}

// Profile returns how the robot speaks VDA 5050 (every default filled in).
func (r *Robot) Profile() vda5050.Profile { return r.profile }

// Key returns the robot's manufacturer and serial number.
func (r *Robot) Key() vda5050.RobotKey { return r.key }

// startLoop starts the robot's goroutine unless it runs already.
func (r *Robot) startLoop() {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	select {
	case <-r.done:
	default:
		return // running
	}
	r.quit = make(chan struct{})
	r.done = make(chan struct{})
	r.life, r.lifeCancel = context.WithCancel(context.Background())
	go r.run(r.quit, r.done)
}

// stop ends the loop and the background work it started, then publishes
// OFFLINE and disconnects. The loop stops first, so no new background work
// begins while stop waits for the old.
func (r *Robot) stop() {
	r.lifeMu.Lock()
	if r.quit != nil {
		close(r.quit)
		r.quit = nil
	}
	done, cancel := r.done, r.lifeCancel
	r.lifeMu.Unlock()
	<-done
	if cancel != nil {
		cancel()
	}
	r.bg.Wait()
	r.disconnect()
}

// lifeContext is cancelled when the robot stops.
func (r *Robot) lifeContext() context.Context {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	if r.life == nil {
		return context.Background()
	}
	return r.life
}

func (r *Robot) loopDone() <-chan struct{} {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	return r.done
}

func (r *Robot) run(quit, done chan struct{}) {
	defer close(done)
	next := r.withState(func(time.Time) { r.dirty = true })
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-quit:
			return
		case in := <-r.inbox:
			next = r.withState(func(now time.Time) { r.handleInbound(in, now) })
		case c := <-r.cmds:
			next = r.withState(c.fn)
			close(c.done)
		case <-r.kick:
			next = r.withState(func(time.Time) { r.dirty = true })
		case <-timer.C:
			next = r.withState(func(now time.Time) {
				if now.Sub(r.lastPublish) >= r.stateInterval()-time.Millisecond {
					r.dirty = true // periodic state, VDA 5050 §6.10
				}
			})
		}
		timer.Reset(time.Until(next))
	}
}

// withState runs fn under the state lock, lets the vehicle make whatever
// progress is due, encodes the resulting messages and sends them after
// unlocking. It returns when the vehicle next needs to wake up.
func (r *Robot) withState(fn func(now time.Time)) time.Time {
	now := time.Now()
	r.mu.Lock()
	fn(now)
	r.advance(now)
	if r.dirty {
		r.flush(now)
	}
	out := r.outbox
	r.outbox = nil
	drop := r.dropRequested
	r.dropRequested = false
	next := r.nextWake()
	r.mu.Unlock()

	var last mqtt.Token
	for _, m := range out {
		if tok := r.publish(m.topic, m.raw); tok != nil {
			last = tok
		}
	}
	if drop {
		// simDropConnection: let the state that reports the action FINISHED
		// reach the broker before the socket goes.
		if last != nil {
			last.WaitTimeout(writeTimeout)
		}
		r.DropConnection()
	}
	return next
}

// do runs fn on the robot's goroutine and waits for it; when the robot is
// not running (before Start, after Stop) fn runs on the caller's goroutine.
func (r *Robot) do(fn func(now time.Time)) {
	c := command{fn: fn, done: make(chan struct{})}
	select {
	case r.cmds <- c:
		<-c.done
	case <-r.loopDone():
		r.withState(fn)
	}
}

// RaiseFatal adds a FATAL error (errorType, errorDescription) to the state,
// stops driving and action progress until ClearErrors, and publishes the
// state (VDA 5050 §6.10.7: FATAL means the vehicle is not in running
// condition).
func (r *Robot) RaiseFatal(errorType, description string) {
	r.do(func(now time.Time) { r.raiseFatal(errorType, description, now) })
}

// ClearErrors removes every error from the state, lets a robot stopped by a
// FATAL error go on, and publishes the state.
func (r *Robot) ClearErrors() {
	r.do(func(now time.Time) { r.clearErrors(now) })
}

// Stall stops (on=true) or restores the robot's progress without telling
// anyone: no node is reached and no action finishes, yet the state is still
// published periodically and still says driving — a vehicle stuck in place.
func (r *Robot) Stall(on bool) {
	r.do(func(now time.Time) { r.setStalled(on, now) })
}

// AcceptedOrders returns the orderIds the robot took as new orders, in
// the order it took them (an order taken twice appears twice).
func (r *Robot) AcceptedOrders() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.accepted...)
}

// SetBatteryHealth makes the robot report its battery's state of health,
// percent (batteryState.batteryHealth; 0 = not reported).
func (r *Robot) SetBatteryHealth(h float64) {
	r.do(func(time.Time) { r.batteryHealth, r.dirty = h, true })
}

// ControlOnOrder is an instant action (cancelOrder, startPause, stopPause)
// that acted on the order the robot was working on. These actions name no
// order (VDA 5050 §6.8): which order they hit is decided by when they
// arrive, so a fault test compares who sent them (the actionId) with whose
// order they hit.
type ControlOnOrder struct {
	ActionID, ActionType, OrderID string
}

// ControlsOnOrders returns the instant actions that acted on an order, in
// the order they arrived.
func (r *Robot) ControlsOnOrders() []ControlOnOrder {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ControlOnOrder(nil), r.controls...)
}

// LoseOrders makes every order that reaches the robot vanish (on=true), as
// if lost on the way (orders travel with QoS 0, VDA 5050 §6.1), until
// LoseOrders(false). Instant actions still arrive.
func (r *Robot) LoseOrders(on bool) {
	r.do(func(time.Time) { r.deaf = on })
}

// Snapshot returns a deep copy of the robot's current state, with the
// position interpolated to now. Its header carries no headerId.
func (r *Robot) Snapshot() vda5050.State {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state(now)
	s.Header = vda5050.Header{
		Timestamp:    vda5050.Timestamp(now),
		Version:      r.profile.Version,
		Manufacturer: r.key.Manufacturer,
		SerialNumber: r.key.SerialNumber,
	}
	return s
}

// flush encodes the current state into the outbox (VDA 5050 §6.10: state on
// every change). Unlike fleetflow's own messages, a robot's state is not
// checked against the schema here: a vehicle does not validate what it
// sends, the bridge validates every state it receives, and the sim tests
// validate every state the sim publishes. Validating twice made the virtual
// fleet the largest CPU consumer of the benchmark (README, Benchmarks).
func (r *Robot) flush(now time.Time) {
	s := r.state(now)
	s.Header = r.header(r.stateTopic, now)
	var raw []byte
	var err error
	if r.profile.Edition() == vda5050.Edition11 {
		raw, err = r.profile.Encode(vda5050.TopicState, s) // 1.1 spells enumerations in lower case
	} else {
		raw, err = json.Marshal(s)
	}
	if err != nil {
		r.log.Error("sim robot could not encode its state", "robot", r.key.String(), "err", err)
	} else {
		r.outbox = append(r.outbox, outMsg{topic: r.stateTopic, raw: raw})
	}
	r.dirty = false
	r.arrivedUnflushed = false
	r.lastPublish = now
}

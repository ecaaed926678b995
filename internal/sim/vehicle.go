package sim

import (
	"fmt"
	"math"
	"time"

	"github.com/fleetflow/fleetflow/internal/vda5050"
)

// Bounds that keep a long-running robot's state small.
const (
	maxWarnings       = 16 // oldest WARNING errors are dropped beyond this
	maxInstantRecords = 32 // oldest finished instant-action states are dropped beyond this
)

// vehicle is the robot's mutable state, guarded by Robot.mu and changed only
// on the robot's goroutine (or by Robot.do while the goroutine is stopped).
type vehicle struct {
	opts  *Options
	mapID string
	// echoNodePositions: node states carry the order's nodePosition as
	// given (RobotConfig.EchoNodePositions).
	echoNodePositions bool
	// deaf: orders are dropped unseen (Robot.LoseOrders).
	deaf bool
	// accepted lists the orderIds the robot took as new orders, in order.
	accepted []string
	// controls lists the cancelOrder, startPause and stopPause instant
	// actions that acted on an order the robot was working on.
	controls []ControlOnOrder

	// Installed software: version and Uptane release counter, the version
	// it replaced ("" before the first update), how often the robot booted
	// new software, and the softwareUpdate in progress (nil = none).
	softwareVersion string
	releaseCounter  int64
	previousVersion string
	boots           uint64
	update          *updateJob

	// Pose at the last node reached or where the robot last stopped: metres, radians.
	x, y, theta float64
	battery     float64 // percent, drain of the current edge not yet deducted
	// charging since chargeSince (startCharging); battery holds the
	// charge at chargeSince.
	charging    bool
	chargeSince time.Time
	// batteryHealth, percent, reported when above 0 (Robot.SetBatteryHealth).
	batteryHealth float64
	lastNodeID    string
	lastNodeSeq   int

	order   *orderRun
	actions []*actionRec // every action state reported, in arrival order
	queue   []*actionRec // node actions of reached nodes, not yet started
	current *actionRec   // the node action running now
	// actionUntil is when current finishes; actionLeft is what remains of it
	// while the robot is halted.
	actionUntil time.Time
	actionLeft  time.Duration
	cancel      *actionRec // a cancelOrder waiting for the robot to stop

	// Motion along order.edges[0] toward order.nodes[0].
	moving          bool
	fromX, fromY    float64
	toX, toY        float64
	segLen, segDone float64 // metres
	segSpeed        float64 // metres/second; 0 = instant
	segStart        time.Time

	paused, stalled bool
	errors          []vda5050.Error

	// Publishing.
	dirty            bool // state changed since the last flush
	arrivedUnflushed bool // a node was reached since the last flush
	dropRequested    bool // simDropConnection: drop after publishing
	lastPublish      time.Time
	outbox           []outMsg
	// flushHook publishes the state as it is now (Robot.flush).
	flushHook func(now time.Time)
}

type outMsg struct {
	topic string
	raw   []byte
}

// orderRun is the order being executed. nodes are the nodes not yet
// reached and edges[i] leads into nodes[i] (VDA 5050 §6.10.4: nodeStates and
// edgeStates list what is still to traverse).
type orderRun struct {
	id        string
	updateID  uint32
	nodes     []vda5050.Node
	edges     []vda5050.Edge
	cancelled bool
}

type actionRec struct {
	state    vda5050.ActionState
	blocking vda5050.BlockingType
	instant  bool
}

func newVehicle(opts *Options, cfg RobotConfig) vehicle {
	return vehicle{
		opts:            opts,
		mapID:           cfg.MapID,
		softwareVersion: cfg.SoftwareVersion,
		releaseCounter:  cfg.ReleaseCounter,
		x:               cfg.X,
		y:               cfg.Y,
		theta:           cfg.Theta,
		battery:         cfg.Battery,
		lastNodeID:      cfg.StartNode,

		echoNodePositions: cfg.EchoNodePositions,
	}
}

func (v *vehicle) hasFatal() bool {
	for _, e := range v.errors {
		if e.ErrorLevel == vda5050.ErrorFatal {
			return true
		}
	}
	return false
}

// active reports whether the robot makes progress: not paused (VDA 5050
// §6.8 startPause), not stalled, no FATAL error.
func (v *vehicle) active() bool { return !v.paused && !v.stalled && !v.hasFatal() }

// changeActivity applies change and freezes or restarts motion and the
// running action if that switched the robot between active and halted.
func (v *vehicle) changeActivity(now time.Time, change func()) {
	was := v.active()
	change()
	switch is := v.active(); {
	case was && !is:
		if v.moving {
			d := v.progress(now, true)
			v.battery -= v.opts.BatteryDrainPerMetre * (d - v.segDone)
			v.segDone = d
		}
		if v.current != nil {
			v.actionLeft = max(0, v.actionUntil.Sub(now))
		}
	case !was && is:
		v.segStart = now
		if v.current != nil {
			v.actionUntil = now.Add(v.actionLeft)
		}
	}
}

// progress is the distance in metres covered on the current edge at now.
// asActive computes it as if the robot had been active since segStart.
func (v *vehicle) progress(now time.Time, asActive bool) float64 {
	if !v.moving {
		return 0
	}
	if !asActive && !v.active() {
		return v.segDone
	}
	if v.segSpeed <= 0 {
		return v.segLen
	}
	return min(v.segLen, v.segDone+v.segSpeed*now.Sub(v.segStart).Seconds())
}

// pose returns the position at now, interpolated along the current edge.
func (v *vehicle) pose(now time.Time) (x, y float64) {
	if !v.moving || v.segLen == 0 {
		return v.x, v.y
	}
	f := v.progress(now, false) / v.segLen
	return v.fromX + (v.toX-v.fromX)*f, v.fromY + (v.toY-v.fromY)*f
}

// advance makes every step that is due at now: finishing and starting
// actions, reaching nodes, leaving for the next one, completing a cancel.
func (v *vehicle) advance(now time.Time) {
	for i := 0; i < 100000 && v.step(now); i++ {
	}
}

// step makes one change and reports whether it did.
func (v *vehicle) step(now time.Time) bool {
	// cancelOrder completes once the robot stands still: at a node, or
	// wherever it was halted by a pause or a FATAL error (VDA 5050 §6.8).
	if v.cancel != nil && (!v.moving || v.paused || v.hasFatal()) {
		v.finishCancel(now)
		return true
	}
	if !v.active() {
		return false
	}
	if v.current != nil {
		if now.Before(v.actionUntil) {
			return v.moveStep(now)
		}
		v.current.state.ActionStatus = vda5050.ActionFinished
		v.current = nil
		v.dirty = true
		return true
	}
	if len(v.queue) > 0 {
		a := v.queue[0]
		v.queue = v.queue[1:]
		a.state.ActionStatus = vda5050.ActionRunning
		v.current = a
		v.actionUntil = now.Add(v.opts.ActionDuration)
		v.dirty = true
		return true
	}
	return v.moveStep(now)
}

func (v *vehicle) moveStep(now time.Time) bool {
	if v.moving {
		if v.progress(now, false) >= v.segLen-1e-6 { // within a micrometre: timer rounding
			v.arrive(now, true)
			return true
		}
		return false
	}
	if v.cancel == nil && v.canDepart() {
		v.depart(now)
		return true
	}
	return false
}

// canDepart: the next node and the edge to it are released (only the base
// is driven, VDA 5050 §6.6.1) and no SOFT or HARD action holds the robot
// at its node (§6.6.2: both forbid driving).
func (v *vehicle) canDepart() bool {
	o := v.order
	if o == nil || len(o.nodes) == 0 || len(o.edges) == 0 || !o.nodes[0].Released || !o.edges[0].Released {
		return false
	}
	if v.current != nil && v.current.blocking != vda5050.BlockingNone {
		return false
	}
	for _, a := range v.queue {
		if a.blocking != vda5050.BlockingNone {
			return false
		}
	}
	return true
}

// charge is the battery charge at now, percent.
func (v *vehicle) charge(now time.Time) float64 {
	c := v.battery
	if v.charging {
		c += v.opts.ChargePerSecond * now.Sub(v.chargeSince).Seconds()
	}
	if v.moving {
		c -= v.opts.BatteryDrainPerMetre * (v.progress(now, false) - v.segDone)
	}
	return min(100, max(0, c))
}

// setCharging starts or stops charging at now (startCharging,
// stopCharging, or driving off the charger).
func (v *vehicle) setCharging(on bool, now time.Time) {
	if v.charging {
		v.battery = min(100, v.battery+v.opts.ChargePerSecond*now.Sub(v.chargeSince).Seconds())
	}
	v.charging, v.chargeSince = on, now
}

func (v *vehicle) depart(now time.Time) {
	n, e := v.order.nodes[0], v.order.edges[0]
	if v.charging {
		v.setCharging(false, now) // driving off the charger
	}
	v.moving = true
	v.fromX, v.fromY = v.x, v.y
	v.toX, v.toY = n.NodePosition.X, n.NodePosition.Y
	v.segLen = math.Hypot(v.toX-v.fromX, v.toY-v.fromY)
	v.segDone = 0
	v.segStart = now
	v.segSpeed = v.opts.Speed
	if v.segSpeed > 0 && e.MaxSpeed != nil && *e.MaxSpeed > 0 && *e.MaxSpeed < v.segSpeed {
		v.segSpeed = *e.MaxSpeed // edge speed limit in m/s, VDA 5050 §6.6.4
	}
	if v.segLen > 0 {
		v.theta = math.Atan2(v.toY-v.fromY, v.toX-v.fromX)
	}
	v.setStatus(e.Actions, vda5050.ActionWaiting, vda5050.ActionRunning)
	v.dirty = true
}

// arrive reaches order.nodes[0]: lastNodeId moves, the node (and the edge
// into it) leave nodeStates/edgeStates, and the node's actions are queued
// (VDA 5050 §6.10.4). Each reached node is published in its own state.
func (v *vehicle) arrive(now time.Time, viaEdge bool) {
	if v.arrivedUnflushed {
		v.flushHook(now)
	}
	o := v.order
	n := o.nodes[0]
	if viaEdge {
		v.battery -= v.opts.BatteryDrainPerMetre * (v.segLen - v.segDone)
		v.setStatus(o.edges[0].Actions, vda5050.ActionRunning, vda5050.ActionFinished)
		o.edges = o.edges[1:]
		v.moving = false
	}
	v.x, v.y = n.NodePosition.X, n.NodePosition.Y
	if n.NodePosition.Theta != nil {
		v.theta = *n.NodePosition.Theta
	}
	v.lastNodeID, v.lastNodeSeq = n.NodeID, n.SequenceID
	o.nodes = o.nodes[1:]
	v.enqueue(n.Actions)
	v.dirty = true
	v.arrivedUnflushed = true
}

// enqueue queues the still-waiting actions of a reached node, in order.
func (v *vehicle) enqueue(actions []vda5050.Action) {
	for _, a := range actions {
		if rec := v.findAction(a.ActionID); rec != nil && rec.state.ActionStatus == vda5050.ActionWaiting {
			v.queue = append(v.queue, rec)
		}
	}
}

// setStatus moves the listed actions that are in status from to status to.
func (v *vehicle) setStatus(actions []vda5050.Action, from, to vda5050.ActionStatus) {
	for _, a := range actions {
		if rec := v.findAction(a.ActionID); rec != nil && rec.state.ActionStatus == from {
			rec.state.ActionStatus = to
		}
	}
}

// finishCancel stops where the robot stands, fails every unfinished action
// of the order, empties nodeStates and edgeStates and reports the
// cancelOrder FINISHED (VDA 5050 §6.8).
func (v *vehicle) finishCancel(now time.Time) {
	if v.moving {
		d := v.progress(now, false)
		v.battery -= v.opts.BatteryDrainPerMetre * (d - v.segDone)
		v.x, v.y = v.pose(now)
		v.moving = false
	}
	for _, a := range v.actions {
		if !a.instant && !a.state.ActionStatus.Terminal() {
			a.state.ActionStatus = vda5050.ActionFailed
			a.state.ResultDescription = "order cancelled"
		}
	}
	v.queue, v.current = nil, nil
	if v.order != nil {
		v.order.nodes, v.order.edges = nil, nil
		v.order.cancelled = true
	}
	v.cancel.state.ActionStatus = vda5050.ActionFinished
	v.cancel = nil
	v.dirty = true
}

func (v *vehicle) findAction(id string) *actionRec {
	for _, a := range v.actions {
		if a.state.ActionID == id {
			return a
		}
	}
	return nil
}

func (v *vehicle) addAction(a vda5050.Action, instant bool) *actionRec {
	rec := &actionRec{
		state: vda5050.ActionState{
			ActionID:          a.ActionID,
			ActionType:        a.ActionType,
			ActionDescription: a.ActionDescription,
			ActionStatus:      vda5050.ActionWaiting,
		},
		blocking: a.BlockingType,
		instant:  instant,
	}
	v.actions = append(v.actions, rec)
	if instant {
		v.pruneInstant()
	}
	return rec
}

// pruneInstant drops the oldest finished instant-action states beyond
// maxInstantRecords, so a robot that only ever gets instant actions keeps a
// bounded state (VDA 5050 keeps action states until the next order).
func (v *vehicle) pruneInstant() {
	n := 0
	for _, a := range v.actions {
		if a.instant && a.state.ActionStatus.Terminal() {
			n++
		}
	}
	if n <= maxInstantRecords {
		return
	}
	drop := n - maxInstantRecords
	kept := v.actions[:0]
	for _, a := range v.actions {
		if drop > 0 && a.instant && a.state.ActionStatus.Terminal() {
			drop--
			continue
		}
		kept = append(kept, a)
	}
	clear(v.actions[len(kept):])
	v.actions = kept
}

// addError records e; beyond maxWarnings the oldest WARNING goes.
func (v *vehicle) addError(e vda5050.Error) {
	v.errors = append(v.errors, e)
	warnings := 0
	for _, x := range v.errors {
		if x.ErrorLevel == vda5050.ErrorWarning {
			warnings++
		}
	}
	if warnings > maxWarnings {
		for i, x := range v.errors {
			if x.ErrorLevel == vda5050.ErrorWarning {
				v.errors = append(v.errors[:i], v.errors[i+1:]...)
				break
			}
		}
	}
	v.dirty = true
}

func (v *vehicle) raiseFatal(errorType, description string, now time.Time) {
	if errorType == "" {
		errorType = "simFatal"
	}
	v.changeActivity(now, func() {
		v.addError(vda5050.Error{ErrorType: errorType, ErrorDescription: description, ErrorLevel: vda5050.ErrorFatal})
	})
}

func (v *vehicle) clearErrors(now time.Time) {
	v.changeActivity(now, func() { v.errors = nil })
	v.dirty = true
}

func (v *vehicle) setStalled(on bool, now time.Time) {
	v.changeActivity(now, func() { v.stalled = on })
	// No publish: a stuck vehicle does not know it is stuck.
}

// stateInterval is the longest time to the next state message now:
// Options.DrivingStateInterval while driving or running a node action,
// else Options.StateInterval.
func (v *vehicle) stateInterval() time.Duration {
	if d := v.opts.DrivingStateInterval; d > 0 && d < v.opts.StateInterval && (v.moving || v.current != nil) {
		return d
	}
	return v.opts.StateInterval
}

// nextWake is when the vehicle next has something to do: an action or an
// edge ends, or the periodic state is due (VDA 5050 §6.10).
func (v *vehicle) nextWake() time.Time {
	next := v.lastPublish.Add(v.stateInterval())
	if !v.active() {
		return next
	}
	if v.current != nil && v.actionUntil.Before(next) {
		next = v.actionUntil
	}
	if v.moving && v.segSpeed > 0 {
		left := time.Duration((v.segLen - v.segDone) / v.segSpeed * float64(time.Second))
		if t := v.segStart.Add(left); t.Before(next) {
			next = t
		}
	}
	return next
}

// state builds the state message body (header left empty) as of now. Every
// slice is freshly allocated, so the result is a deep copy. Fields the
// schema requires are always present (VDA 5050 §6.10).
func (v *vehicle) state(now time.Time) vda5050.State {
	s := vda5050.State{
		LastNodeID:         v.lastNodeID,
		LastNodeSequenceID: v.lastNodeSeq,
		Driving:            v.moving && !v.paused && !v.hasFatal(),
		Paused:             new(v.paused),
		NodeStates:         []vda5050.NodeState{},
		EdgeStates:         []vda5050.EdgeState{},
		ActionStates:       make([]vda5050.ActionState, len(v.actions)),
		OperatingMode:      "AUTOMATIC",
		Errors:             make([]vda5050.Error, len(v.errors)),
		Information: []vda5050.Info{{
			InfoType:        InfoSoftwareVersion,
			InfoDescription: v.softwareVersion,
			InfoLevel:       "INFO",
		}},
		SafetyState: vda5050.SafetyState{EStop: "NONE", FieldViolation: false},
	}
	if v.previousVersion != "" {
		s.Information = append(s.Information, vda5050.Info{
			InfoType:        InfoPreviousSoftwareVersion,
			InfoDescription: v.previousVersion,
			InfoLevel:       "INFO",
		})
	}
	if o := v.order; o != nil {
		s.OrderID, s.OrderUpdateID = o.id, o.updateID
		s.NodeStates = make([]vda5050.NodeState, len(o.nodes))
		for i, n := range o.nodes {
			s.NodeStates[i] = vda5050.NodeState{NodeID: n.NodeID, SequenceID: n.SequenceID, NodeDescription: n.NodeDescription, Released: n.Released}
			if p := n.NodePosition; p != nil {
				sp := &vda5050.StateNodePosition{X: p.X, Y: p.Y, MapID: p.MapID, Theta: p.Theta}
				if sp.Theta == nil && !v.echoNodePositions {
					sp.Theta = new(0.0) // the state schema requires it
				}
				s.NodeStates[i].NodePosition = sp
			}
		}
		s.EdgeStates = make([]vda5050.EdgeState, len(o.edges))
		for i, e := range o.edges {
			s.EdgeStates[i] = vda5050.EdgeState{EdgeID: e.EdgeID, SequenceID: e.SequenceID, EdgeDescription: e.EdgeDescription, Released: e.Released}
		}
	}
	x, y := v.pose(now)
	s.AGVPosition = &vda5050.AGVPosition{X: x, Y: y, Theta: v.theta, MapID: v.mapID, PositionInitialized: true}
	for i, a := range v.actions {
		s.ActionStates[i] = a.state
	}
	for i, e := range v.errors {
		s.Errors[i] = e
		s.Errors[i].ErrorReferences = append([]vda5050.Reference(nil), e.ErrorReferences...)
	}
	s.BatteryState = vda5050.BatteryState{BatteryCharge: v.charge(now), Charging: v.charging}
	if v.batteryHealth > 0 {
		h := math.Round(v.batteryHealth)
		s.BatteryState.BatteryHealth = &h
	}
	return s
}

// diagnose is the virtual vehicle's self-test result (ActionDiagnostics):
// battery, errors, software version and where it stands.
func (v *vehicle) diagnose() string {
	verdict := "ok"
	for _, e := range v.errors {
		if e.ErrorLevel == vda5050.ErrorFatal {
			verdict = "FATAL " + e.ErrorType
		}
	}
	return fmt.Sprintf("self-test %s: battery %.1f %%, %d errors, software %s, at node %s", verdict, v.battery, len(v.errors), v.softwareVersion, v.lastNodeID)
}

// Change detection: what the bridge remembers of each robot, whether a
// new state is a meaningful change, who owns it, and the condition counts.

package bridge

import (
	"strings"
	"time"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

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
		// The connection and its guard against a late OFFLINE (onConnection)
		// outlive the state.
		next.connection, next.connSent, next.connHeader = prev.connection, prev.connSent, prev.connHeader
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
	"nodeStates": true, "edgeStates": true, "driving": true,
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
		case part == "paused":
			// Its own part: a broken paused says nothing of the route.
			paused := prev.last.Paused
			st.Paused = &paused
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
	add(schemas.OwnerWorkflowID(st.OrderID)) // after a handover the orderId is "<workflowID>#h<n>"
	for _, a := range st.ActionStates {
		if strings.Contains(a.ActionID, schemas.InstantActionSeparator) {
			add(schemas.OwnerWorkflowID(a.ActionID))
		}
	}
	for _, e := range st.Errors {
		for _, r := range e.ErrorReferences {
			if r.ReferenceKey == "orderId" {
				add(schemas.OwnerWorkflowID(r.ReferenceValue))
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
	wf := schemas.OwnerWorkflowID(orderID) // "<workflowID>#h<n>" after a handover
	return []routeJob{{id, wf, ev, true}}
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

package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/fleetflow/fleetflow/internal/vda5050"
)

// Error types a vehicle reports for refused orders (VDA 5050 §6.10.7 and
// the order rules of §6.6.4).
const (
	ErrValidation      = "validationError"
	ErrNoRoute         = "noRouteError"
	ErrOrder           = "orderError"
	ErrOrderUpdate     = "orderUpdateError"
	ErrNoOrderToCancel = "noOrderToCancel"
)

// orderErrorTypes are the warnings an accepted order resolves.
var orderErrorTypes = map[string]bool{
	ErrValidation: true, ErrNoRoute: true, ErrOrder: true, ErrOrderUpdate: true, ErrNoOrderToCancel: true,
}

// problem is why an order is refused.
type problem struct {
	errorType   string
	description string
}

func (r *Robot) handleInbound(in inbound, now time.Time) {
	switch in.topic {
	case vda5050.TopicOrder:
		if r.deaf {
			return // fault injection: the order is lost on the way (QoS 0)
		}
		r.handleOrder(in.payload, now)
	case vda5050.TopicInstantActions:
		r.handleInstantActions(in.payload, now)
	}
}

// handleOrder validates an order like a vehicle does and accepts it as a new
// order or as an update of the current one; a refused order leaves a
// WARNING in state.errors naming the orderId (VDA 5050 §6.6.4).
func (r *Robot) handleOrder(raw []byte, now time.Time) {
	o, err := r.profile.DecodeOrder(raw)
	if err != nil {
		id, upd := peekOrderIDs(raw)
		r.reject(problem{ErrValidation, "order refused: " + err.Error()}, id, upd)
		return
	}
	upd := strconv.FormatUint(uint64(o.OrderUpdateID), 10)
	cur := r.order
	isUpdate := cur != nil && o.OrderID == cur.id
	if isUpdate {
		switch {
		case o.OrderUpdateID == cur.updateID:
			return // the same order again: ignore it (§6.6.4)
		case o.OrderUpdateID < cur.updateID:
			r.reject(problem{ErrOrderUpdate, fmt.Sprintf("orderUpdateId %d is lower than the current %d of order %s", o.OrderUpdateID, cur.updateID, o.OrderID)}, o.OrderID, upd)
			return
		}
	}
	if p := checkOrder(&o, r.mapID, !isUpdate); p != nil {
		r.reject(*p, o.OrderID, upd)
		return
	}
	var p *problem
	if isUpdate {
		p = r.updateOrder(&o)
	} else {
		p = r.newOrder(&o, now)
	}
	if p != nil {
		r.reject(*p, o.OrderID, upd)
		return
	}
	r.resolveOrderErrors()
	r.dirty = true
}

// checkOrder checks what any vehicle can check without its own state:
// nodes and edges alternate with sequenceIds counting both (0, 1, 2, … for a
// new order), edges = nodes − 1, each edge joins its neighbours, the base
// (released) comes before the horizon and ends with a node, actionIds are
// unique (§6.6.1, §6.6.4) — validationError; and that every node has a
// nodePosition on the robot's map — noRouteError.
func checkOrder(o *vda5050.Order, mapID string, newOrder bool) *problem {
	invalid := func(format string, args ...any) *problem {
		return &problem{ErrValidation, fmt.Sprintf(format, args...)}
	}
	if len(o.Nodes) == 0 {
		return invalid("order %s has no nodes", o.OrderID)
	}
	if len(o.Edges) != len(o.Nodes)-1 {
		return invalid("order %s has %d nodes and %d edges; edges must be nodes − 1", o.OrderID, len(o.Nodes), len(o.Edges))
	}
	first := o.Nodes[0].SequenceID
	if newOrder && first != 0 {
		return invalid("order %s: the first node %s has sequenceId %d, a new order starts at 0", o.OrderID, o.Nodes[0].NodeID, first)
	}
	for i, n := range o.Nodes {
		if want := first + 2*i; n.SequenceID != want {
			return invalid("order %s: node %d (%s) has sequenceId %d, want %d (nodes and edges alternate)", o.OrderID, i, n.NodeID, n.SequenceID, want)
		}
	}
	for i, e := range o.Edges {
		if want := first + 2*i + 1; e.SequenceID != want {
			return invalid("order %s: edge %d (%s) has sequenceId %d, want %d (nodes and edges alternate)", o.OrderID, i, e.EdgeID, e.SequenceID, want)
		}
		if e.StartNodeID != o.Nodes[i].NodeID || e.EndNodeID != o.Nodes[i+1].NodeID {
			return invalid("order %s: edge %s runs %s→%s but sits between nodes %s and %s", o.OrderID, e.EdgeID, e.StartNodeID, e.EndNodeID, o.Nodes[i].NodeID, o.Nodes[i+1].NodeID)
		}
	}
	if !o.Nodes[0].Released {
		return invalid("order %s: the first node %s is not released; the base must not be empty", o.OrderID, o.Nodes[0].NodeID)
	}
	horizon := false
	for i, n := range o.Nodes {
		if i > 0 {
			e := o.Edges[i-1]
			if e.Released && (horizon || !n.Released) {
				return invalid("order %s: edge %s is released but a node next to it is not; the base ends with a node", o.OrderID, e.EdgeID)
			}
			horizon = horizon || !e.Released
		}
		if n.Released && horizon {
			return invalid("order %s: node %s is released after the horizon began", o.OrderID, n.NodeID)
		}
		horizon = horizon || !n.Released
	}
	seen := make(map[string]bool)
	for _, as := range allActions(o) {
		for _, a := range as {
			if seen[a.ActionID] {
				return invalid("order %s: actionId %s is used twice", o.OrderID, a.ActionID)
			}
			seen[a.ActionID] = true
		}
	}
	for _, n := range o.Nodes {
		if n.NodePosition == nil {
			return &problem{ErrNoRoute, fmt.Sprintf("order %s: node %s has no nodePosition; this vehicle drives to positions only", o.OrderID, n.NodeID)}
		}
		if n.NodePosition.MapID != mapID {
			return &problem{ErrNoRoute, fmt.Sprintf("order %s: node %s is on map %q, the vehicle is on map %q", o.OrderID, n.NodeID, n.NodePosition.MapID, mapID)}
		}
	}
	return nil
}

func allActions(o *vda5050.Order) [][]vda5050.Action {
	out := make([][]vda5050.Action, 0, len(o.Nodes)+len(o.Edges))
	for _, n := range o.Nodes {
		out = append(out, n.Actions)
	}
	for _, e := range o.Edges {
		out = append(out, e.Actions)
	}
	return out
}

// runningOrder reports whether the base of the current order is still
// being executed: a released node ahead, a node action queued or running.
func (v *vehicle) runningOrder() bool {
	o := v.order
	if o == nil || o.cancelled {
		return false
	}
	if v.moving || v.current != nil || len(v.queue) > 0 {
		return true
	}
	return len(o.nodes) > 0 && o.nodes[0].Released
}

// newOrder accepts an order with a new orderId: refused while the current
// one runs or a softwareUpdate is in progress (orderError), or when its first node is not where the robot is
// (noRouteError). Every action starts WAITING; the first node is reached at
// once (§6.6.4).
func (r *Robot) newOrder(o *vda5050.Order, now time.Time) *problem {
	if r.runningOrder() {
		return &problem{ErrOrder, fmt.Sprintf("order %s refused: order %s is still running; cancel it first or send an update of it", o.OrderID, r.order.id)}
	}
	if r.cancel != nil {
		return &problem{ErrOrder, fmt.Sprintf("order %s refused: a cancelOrder is still in progress", o.OrderID)}
	}
	if u := r.update; u != nil {
		// softwareUpdate is HARD: no driving beside it (§6.6.2).
		return &problem{ErrOrder, fmt.Sprintf("order %s refused: softwareUpdate %s is in progress (%s)", o.OrderID, u.rec.state.ActionID, u.phase)}
	}
	n0 := o.Nodes[0]
	x, y := r.pose(now)
	tol := FirstNodeTolerance
	if dev := n0.NodePosition.AllowedDeviationXY; dev != nil && *dev > tol {
		tol = *dev // the node says how far counts as on it (§6.6.5 allowedDeviationXy)
	}
	if d := math.Hypot(n0.NodePosition.X-x, n0.NodePosition.Y-y); d > tol {
		return &problem{ErrNoRoute, fmt.Sprintf("order %s: first node %s at (%.2f, %.2f) is %.2f m from the vehicle at (%.2f, %.2f); it must be within %.2f m", o.OrderID, n0.NodeID, n0.NodePosition.X, n0.NodePosition.Y, d, x, y, tol)}
	}
	// The action states of the previous order go with it (§6.10.6); instant
	// actions still running stay.
	kept := r.actions[:0]
	for _, a := range r.actions {
		if a.instant && !a.state.ActionStatus.Terminal() {
			kept = append(kept, a)
		}
	}
	clear(r.actions[len(kept):])
	r.actions = kept
	r.order = &orderRun{id: o.OrderID, updateID: o.OrderUpdateID, nodes: o.Nodes, edges: o.Edges}
	r.accepted = append(r.accepted, o.OrderID)
	for _, as := range allActions(o) {
		for _, a := range as {
			r.addAction(a, false)
		}
	}
	r.arrive(now, false)
	return nil
}

// updateOrder accepts a higher orderUpdateId of the current order. The
// update must start at the last base node (the stitching node, §6.6.4); its
// horizon replaces the old one and its new actions start WAITING. New actions
// on a stitching node already reached are run at once. It is refused while
// a softwareUpdate is in progress (HARD, §6.6.2).
func (r *Robot) updateOrder(o *vda5050.Order) *problem {
	cur := r.order
	if cur.cancelled || r.cancel != nil {
		return &problem{ErrOrderUpdate, fmt.Sprintf("order %s is cancelled; it cannot be updated, send a new orderId", cur.id)}
	}
	if u := r.update; u != nil {
		return &problem{ErrOrderUpdate, fmt.Sprintf("update %d of order %s refused: softwareUpdate %s is in progress (%s)", o.OrderUpdateID, o.OrderID, u.rec.state.ActionID, u.phase)}
	}
	baseID, baseSeq, idx := r.lastNodeID, r.lastNodeSeq, -1
	for i, n := range cur.nodes {
		if n.Released {
			baseID, baseSeq, idx = n.NodeID, n.SequenceID, i
		}
	}
	s := o.Nodes[0]
	if s.NodeID != baseID || s.SequenceID != baseSeq {
		return &problem{ErrOrderUpdate, fmt.Sprintf("update %d of order %s starts at node %s (sequenceId %d); it must start at the last base node %s (sequenceId %d)", o.OrderUpdateID, o.OrderID, s.NodeID, s.SequenceID, baseID, baseSeq)}
	}
	var fresh []*actionRec
	for _, as := range allActions(o) {
		for _, a := range as {
			if r.findAction(a.ActionID) == nil {
				fresh = append(fresh, r.addAction(a, false))
			}
		}
	}
	if idx >= 0 {
		// Not reached yet: the stitching node keeps its actions and gains the update's.
		stitch := cur.nodes[idx]
		stitch.Actions = append(append([]vda5050.Action(nil), stitch.Actions...), newActions(s.Actions, stitch.Actions)...)
		nodes := append(append(cur.nodes[:idx:idx], stitch), o.Nodes[1:]...)
		edges := append(cur.edges[:idx+1:idx+1], o.Edges...)
		cur.nodes, cur.edges = nodes, edges
	} else {
		cur.nodes, cur.edges = o.Nodes[1:], o.Edges
		for _, rec := range fresh {
			if containsAction(s.Actions, rec.state.ActionID) {
				r.queue = append(r.queue, rec)
			}
		}
	}
	cur.updateID = o.OrderUpdateID
	r.pruneOrphans()
	return nil
}

func newActions(update, existing []vda5050.Action) []vda5050.Action {
	var out []vda5050.Action
	for _, a := range update {
		if !containsAction(existing, a.ActionID) {
			out = append(out, a)
		}
	}
	return out
}

func containsAction(as []vda5050.Action, id string) bool {
	for _, a := range as {
		if a.ActionID == id {
			return true
		}
	}
	return false
}

// pruneOrphans drops waiting order actions that an update took away with
// the old horizon.
func (v *vehicle) pruneOrphans() {
	used := make(map[string]bool)
	for _, n := range v.order.nodes {
		for _, a := range n.Actions {
			used[a.ActionID] = true
		}
	}
	for _, e := range v.order.edges {
		for _, a := range e.Actions {
			used[a.ActionID] = true
		}
	}
	for _, a := range v.queue {
		used[a.state.ActionID] = true
	}
	kept := v.actions[:0]
	for _, a := range v.actions {
		if a.instant || a.state.ActionStatus != vda5050.ActionWaiting || used[a.state.ActionID] {
			kept = append(kept, a)
		}
	}
	clear(v.actions[len(kept):])
	v.actions = kept
}

// reject reports a refused order as a WARNING naming orderId and
// orderUpdateId (VDA 5050 §6.10.7).
func (r *Robot) reject(p problem, orderID, orderUpdateID string) {
	var refs []vda5050.Reference
	if orderID != "" {
		refs = append(refs, vda5050.Reference{ReferenceKey: "orderId", ReferenceValue: orderID})
	}
	if orderUpdateID != "" {
		refs = append(refs, vda5050.Reference{ReferenceKey: "orderUpdateId", ReferenceValue: orderUpdateID})
	}
	r.log.Info("sim robot refused an order", "robot", r.key.String(), "errorType", p.errorType, "reason", p.description)
	r.addError(vda5050.Error{ErrorType: p.errorType, ErrorReferences: refs, ErrorDescription: p.description, ErrorLevel: vda5050.ErrorWarning})
}

// resolveOrderErrors drops the warnings of earlier refused orders once an
// order is accepted (errors are kept until resolution, §6.10.7).
func (v *vehicle) resolveOrderErrors() {
	kept := v.errors[:0]
	for _, e := range v.errors {
		if e.ErrorLevel == vda5050.ErrorFatal || !orderErrorTypes[e.ErrorType] {
			kept = append(kept, e)
		}
	}
	v.errors = kept
}

// peekOrderIDs reads orderId and orderUpdateId from a message that failed
// validation, so the error can still name them.
func peekOrderIDs(raw []byte) (orderID, orderUpdateID string) {
	var p struct {
		OrderID       any `json:"orderId"`
		OrderUpdateID any `json:"orderUpdateId"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return "", ""
	}
	if p.OrderID != nil {
		orderID = fmt.Sprint(p.OrderID)
	}
	if p.OrderUpdateID != nil {
		orderUpdateID = fmt.Sprint(p.OrderUpdateID)
	}
	return orderID, orderUpdateID
}

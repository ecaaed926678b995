package site

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/fleetflow/fleetflow/internal/vda5050"
)

// Step is one station visit of a mission: Action ("pick" or "drop", the
// VDA 5050 2.0 §6.8.1 predefined actions) is done at Station's node.
type Step struct {
	Station string
	Action  string // pick, drop, or DriveOnly
}

// DriveOnly is a Step's Action for a visit with no action: the robot
// drives to the station and stops there (a maintenance workflow taking a
// robot to its service station). Mission specs cannot ask for it
// (mission.schema.json allows pick and drop only).
const DriveOnly = ""

// OrderRequest asks BuildOrder for the order that drives a robot standing
// on StartNode through Steps. OrderID becomes the VDA 5050 orderId (fleetflow
// uses the owning workflow's ID); LoadID and LoadType, when set, become the
// loadId and loadType parameters of every pick and drop.
type OrderRequest struct {
	OrderID       string
	OrderUpdateID uint32
	StartNode     string
	Steps         []Step
	LoadID        string
	LoadType      string
	// Require lists optional fields the vehicle insists on (its profile's
	// vda5050.Profile.Require), filled as BuildOrder documents.
	Require []string
	// StartTheta is the robot's heading in radians, used for a required
	// theta on the first node when the route has no edge to take it from.
	StartTheta float64
	// FirstStep is the index of Steps[0] in the mission (a mission handed
	// over to another robot continues with its remaining steps): action
	// ids keep the mission's step numbers.
	FirstStep int
	// StartDeviationXY, when positive, is the first node's
	// allowedDeviationXy in metres: the robot stands off the node (it was
	// stopped between nodes, e.g. by a cancelOrder) and the vehicle must
	// count the node as where it stands (VDA 5050 §6.6.1: the first node
	// must be trivially reachable; a vehicle refuses one farther than its
	// deviation range with noRouteError).
	StartDeviationXY float64
	// FirstSequenceID is the sequenceId of the first node (0 for a new
	// order; even). An order update that extends the route starts at the
	// last base node of the order before it, with that node's sequenceId
	// (the stitching node, VDA 5050 §6.6.2), and the ids go on from there.
	FirstSequenceID int
	// HoldLast leaves out the last step's action: the robot drives to that
	// station and waits there (for a WMS signal); the action comes with
	// the next order update.
	HoldLast bool
}

// Defaults for required optional fields (OrderRequest.Require): the
// tolerance fleetflow itself uses to say a robot stands on a node, and 20°.
const (
	DefaultAllowedDeviationXY    = 0.5  // metres
	DefaultAllowedDeviationTheta = 0.35 // radians
)

// ActionID is the actionId BuildOrder gives step stepIndex (0-based) of
// order orderID: "<orderID>-a<stepIndex>-<action>". Action ids are unique
// within the order and name the order, hence the workflow that owns it.
func ActionID(orderID string, stepIndex int, action string) string {
	return fmt.Sprintf("%s-a%d-%s", orderID, stepIndex, action)
}

// BuildOrder turns a mission into a VDA 5050 2.0 order for a robot standing
// on req.StartNode. Section numbers refer to the VDA 5050 2.0 text.
//
//   - The first node is StartNode: "the first node of an order must be
//     trivially reachable for the AGV", i.e. where it stands (§6.6.1).
//   - Then the shortest route (see Route) to each step's station node in
//     turn. A route of zero length adds no node, so a robot already on the
//     first station picks on the first node, and consecutive steps at one
//     node put both actions on that node.
//   - Nodes have sequenceId 0, 2, 4 …, edges 1, 3, 5 … (one sequence over
//     both, §6.6.2); edges = nodes − 1 (§6.6.1); everything is released
//     (base only, no horizon).
//   - Every node carries nodePosition {x, y, mapId} in metres, plus theta in
//     radians where the map prescribes one (§6.7: theta is optional, without
//     it "vehicle can plan the path by itself"; §6.6.5: [-π, π]).
//   - For a vehicle that requires them (req.Require): theta on every node
//     that the map gives none, the heading of the lane the robot arrives on
//     (on the first node, of the lane it leaves on; on a lone node,
//     StartTheta); allowedDeviationXy DefaultAllowedDeviationXY and
//     allowedDeviationTheta DefaultAllowedDeviationTheta.
//   - Every edge carries edgeId "<from>-<to>", startNodeId, endNodeId, length
//     in metres and maxSpeed in m/s when the lane has one (§6.7).
//   - At each step's station node: a HARD-blocking node action (§6.7) of
//     actionType pick or drop, actionId ActionID(OrderID, i, action), and the
//     predefined pick/drop parameters (§6.8.1) stationType (when the station
//     has one), stationName (the station id), loadType and loadId (when set).
//
// The header (headerId, timestamp, version, manufacturer, serialNumber) is
// left zero: the sender fills it. Errors: a *ValidationError listing every
// problem of the request (missing orderId, unknown start node or station,
// an action other than pick or drop, a pick at a station that is not of
// type pick or a drop at one that is not of type drop), or an error
// wrapping ErrNoRoute.
func (m *Map) BuildOrder(req OrderRequest) (vda5050.Order, error) {
	ix := m.index()
	p := problems{source: "order " + req.OrderID}
	if req.OrderID == "" {
		p.source = "order"
		p.addf("orderId: missing")
	}
	if req.StartNode == "" {
		p.addf("startNode: missing")
	} else if _, ok := ix.node[req.StartNode]; !ok {
		p.addf("startNode: unknown node %q", req.StartNode)
	}
	if len(req.Steps) == 0 {
		p.addf("steps: none")
	}
	if req.FirstSequenceID < 0 || req.FirstSequenceID%2 != 0 {
		p.addf("firstSequenceId: %d; a node's sequenceId is even and not negative", req.FirstSequenceID)
	}
	for i, s := range req.Steps {
		m.checkStep(&p, i, s)
	}
	if err := p.err(); err != nil {
		return vda5050.Order{}, err
	}

	type visit struct {
		node    string
		actions []vda5050.Action
	}
	path := []visit{{node: req.StartNode}}
	for i, s := range req.Steps {
		st := m.Stations[ix.station[s.Station]]
		last := path[len(path)-1].node
		r, err := m.Route(last, st.Node)
		if err != nil {
			return vda5050.Order{}, fmt.Errorf("order %s: steps[%d] (%s at %s): %w", req.OrderID, i, s.Action, s.Station, err)
		}
		for _, id := range r[1:] {
			path = append(path, visit{node: id})
		}
		if (req.HoldLast && i == len(req.Steps)-1) || s.Action == DriveOnly {
			continue
		}
		v := &path[len(path)-1]
		v.actions = append(v.actions, stepAction(req, i, s, st))
	}

	o := vda5050.Order{
		OrderID:       req.OrderID,
		OrderUpdateID: req.OrderUpdateID,
		Nodes:         make([]vda5050.Node, len(path)),
		Edges:         make([]vda5050.Edge, len(path)-1),
	}
	for i, v := range path {
		n := m.Nodes[ix.node[v.node]]
		pos := &vda5050.NodePosition{X: n.X, Y: n.Y, MapID: m.MapID}
		if n.HasTheta() {
			theta := n.Theta
			pos.Theta = &theta
		} else if slices.Contains(req.Require, vda5050.RequireNodeTheta) {
			theta := req.StartTheta
			switch {
			case i > 0:
				theta = m.heading(ix.node[path[i-1].node], ix.node[v.node])
			case len(path) > 1:
				theta = m.heading(ix.node[v.node], ix.node[path[1].node])
			}
			pos.Theta = &theta
		}
		if slices.Contains(req.Require, vda5050.RequireAllowedDeviationXY) {
			d := DefaultAllowedDeviationXY
			pos.AllowedDeviationXY = &d
		}
		if i == 0 && req.StartDeviationXY > 0 {
			d := req.StartDeviationXY
			pos.AllowedDeviationXY = &d
		}
		if slices.Contains(req.Require, vda5050.RequireAllowedDevTheta) {
			d := DefaultAllowedDeviationTheta
			pos.AllowedDeviationTheta = &d
		}
		actions := v.actions
		if actions == nil {
			actions = []vda5050.Action{} // required, "empty array if no actions required" (§6.7)
		}
		o.Nodes[i] = vda5050.Node{NodeID: v.node, SequenceID: req.FirstSequenceID + 2*i, Released: true, NodePosition: pos, Actions: actions}
		if i == 0 {
			continue
		}
		from, to := ix.node[path[i-1].node], ix.node[v.node]
		length := m.dist(from, to)
		e := vda5050.Edge{
			EdgeID:      path[i-1].node + "-" + v.node,
			SequenceID:  req.FirstSequenceID + 2*i - 1,
			Released:    true,
			StartNodeID: path[i-1].node,
			EndNodeID:   v.node,
			Length:      &length,
			Actions:     []vda5050.Action{},
		}
		if lane := m.Edges[ix.lane[[2]int{from, to}]]; lane.MaxSpeed > 0 {
			speed := lane.MaxSpeed
			e.MaxSpeed = &speed
		}
		o.Edges[i-1] = e
	}
	return o, nil
}

// heading is the direction from node a to node b in radians, in [-π, π].
func (m *Map) heading(a, b int) float64 {
	return math.Atan2(m.Nodes[b].Y-m.Nodes[a].Y, m.Nodes[b].X-m.Nodes[a].X)
}

func stepAction(req OrderRequest, i int, s Step, st Station) vda5050.Action {
	var params []vda5050.ActionParameter
	add := func(k, v string) {
		if v != "" {
			params = append(params, vda5050.ActionParameter{Key: k, Value: v})
		}
	}
	add("stationType", st.StationType)
	add("stationName", st.ID)
	add("loadType", req.LoadType)
	add("loadId", req.LoadID)
	return vda5050.Action{
		ActionType:       s.Action,
		ActionID:         ActionID(req.OrderID, req.FirstStep+i, s.Action),
		BlockingType:     vda5050.BlockingHard,
		ActionParameters: params,
	}
}

// checkStep adds the problems of step i: unknown station, an action other
// than pick, drop or DriveOnly, or an action the station's type does not
// allow.
func (m *Map) checkStep(p *problems, i int, s Step) {
	if s.Action != vda5050.ActionPick && s.Action != vda5050.ActionDrop && s.Action != DriveOnly {
		p.addf("steps[%d]: action %q is not pick or drop", i, s.Action)
	}
	st, ok := m.Station(s.Station)
	switch {
	case s.Station == "":
		p.addf("steps[%d]: station missing", i)
	case !ok:
		p.addf("steps[%d]: unknown station %q", i, s.Station)
	case (s.Action == vda5050.ActionPick || s.Action == vda5050.ActionDrop) && st.Type != s.Action:
		p.addf("steps[%d]: %s is not possible at %s station %q", i, s.Action, st.Type, st.ID)
	}
}

// CheckMission checks a mission's steps against the map before any robot is
// chosen, and returns a *ValidationError listing every problem: no steps,
// unknown stations, an action other than pick or drop or one the station's
// type does not allow (pick only at pick stations, drop only at drop
// stations), consecutive stations with no route between them (one-way lanes
// respected), and no robot on the map with every capability in requiredCaps
// plus the step actions themselves (a robot that cannot pick cannot run a
// pick step).
func (m *Map) CheckMission(steps []Step, requiredCaps []string) error {
	ix := m.index()
	p := problems{}
	if len(steps) == 0 {
		p.addf("steps: none")
	}
	okSteps := make([]bool, len(steps))
	for i, s := range steps {
		before := len(p.list)
		m.checkStep(&p, i, s)
		okSteps[i] = len(p.list) == before
	}
	for i := 1; i < len(steps); i++ {
		if !okSteps[i-1] || !okSteps[i] {
			continue
		}
		a, b := m.Stations[ix.station[steps[i-1].Station]], m.Stations[ix.station[steps[i].Station]]
		if _, err := m.Route(a.Node, b.Node); errors.Is(err, ErrNoRoute) {
			p.addf("steps[%d]: no route from station %q (node %s) to station %q (node %s)", i, a.ID, a.Node, b.ID, b.Node)
		}
	}
	need := slices.Clone(requiredCaps)
	for _, s := range steps {
		if s.Action == vda5050.ActionPick || s.Action == vda5050.ActionDrop {
			need = append(need, s.Action)
		}
	}
	sort.Strings(need)
	need = slices.Compact(need)
	if !slices.ContainsFunc(m.Robots, func(r Robot) bool { return r.Has(need...) }) {
		p.addf("no robot at %s has the capabilities %v", m.Site, need)
	}
	return p.err()
}

// Package activities holds everything fleetflow's workflows do to the
// outside world: robot I/O over MQTT (VDA 5050), the fleet registry in
// PostgreSQL (subpackage store), site maps, and cloud APIs such as the WMS
// webhook. Activities are idempotent: Temporal may run them twice.
//
// Each method's name is the activity name the workflows use
// (workflows.Activity*); a test in package workers checks they match.
package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// storeError makes a registry refusal final and leaves every other error
// retryable (store.Transient faults, and anything unknown).
func storeError(err error) error {
	if err == nil {
		return nil
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return err
	}
	if store.Refused(err) {
		return temporal.NewNonRetryableApplicationError(err.Error(), schemas.ErrStoreRefused, err)
	}
	return err
}

// Activities holds the dependencies of every activity.
type Activities struct {
	Store    *store.Store
	Link     *RobotLink
	Sites    map[string]*site.Map
	Temporal client.Client // signals queued missions when a robot is released
	HTTP     *http.Client
	// Webhooks are the WMS clients with a webhook, by name (config
	// wms.clients); PlanMission tells a mission whether its client has one.
	Webhooks map[string]WebhookClient
	// WebhookDeliveryTimeout is how long one mission event is retried
	// (wms.deliveryTimeout), handed to missions by PlanMission.
	WebhookDeliveryTimeout time.Duration
	// Artifacts is the OTA artifact store (ota task queue).
	Artifacts ArtifactStore
	// OrderAckTimeout and OrderResends are handed to missions by
	// PlanMission (config robots.orderAckTimeout, robots.orderResends).
	OrderAckTimeout time.Duration
	OrderResends    int
	// ConnectionGrace is handed to missions too (robots.connectionGrace).
	ConnectionGrace time.Duration
	// LeasesFreed counts what the Reaper frees (NewLeasesFreedCounter);
	// nil = not counted.
	LeasesFreed *prometheus.CounterVec
	// Charging is the charge policy (config charging); zero Threshold = off.
	Charging ChargingPolicy
	// Maintenance is condition-based maintenance (config maintenance);
	// zero thresholds = off.
	Maintenance MaintenancePolicy
	// EdgeQueues maps each edge site to its robot I/O task queue (config
	// edge.sites, taskQueues.robotIO); ReserveRobot hands the holder its
	// robot's queue. Sites not in it are single-site mode.
	EdgeQueues map[string]string

	// orphanSent: when the Reaper last sent cancelOrder to a robot on an
	// orphaned order, by robot and orderId (stopUnreservedOrphans).
	orphanMu   sync.Mutex
	orphanSent map[string]time.Time
}

func invalid(format string, a ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, a...), schemas.ErrInvalidMission, nil)
}

func (a *Activities) siteMap(name string) (*site.Map, error) {
	m, ok := a.Sites[name]
	if !ok {
		known := make([]string, 0, len(a.Sites))
		for k := range a.Sites {
			known = append(known, k)
		}
		return nil, invalid("unknown site %q (known: %v)", name, known)
	}
	return m, nil
}

func steps(spec schemas.MissionSpec) []site.Step {
	out := make([]site.Step, len(spec.Steps))
	for i, s := range spec.Steps {
		out[i] = site.Step{Station: s.Station, Action: s.Action}
	}
	return out
}

// PlanMission checks a mission against its site map (stations exist, allow
// the action, some robot has the capabilities) and returns where it starts,
// and whether the mission's WMS client has a webhook to hear its events.
// Errors: InvalidMission (non-retryable) naming every problem.
func (a *Activities) PlanMission(ctx context.Context, in schemas.PlanMissionInput) (schemas.PlanMissionResult, error) {
	m, err := a.siteMap(in.Spec.Site)
	if err != nil {
		return schemas.PlanMissionResult{}, err
	}
	if err := m.CheckMission(steps(in.Spec), in.Spec.RequiredCapabilities); err != nil {
		return schemas.PlanMissionResult{}, invalid("mission %s: %v", in.Spec.MissionID, err)
	}
	st, _ := m.Station(in.Spec.Steps[0].Station)
	n, _ := m.Node(st.Node)
	res := schemas.PlanMissionResult{FirstStationNode: n.ID, X: n.X, Y: n.Y, OrderAckTimeout: a.OrderAckTimeout, OrderResends: a.OrderResends, ConnectionGrace: a.ConnectionGrace}
	if in.Client != "" {
		if _, ok := a.Webhooks[in.Client]; ok {
			res.Webhook, res.WebhookDeliveryTimeout = true, a.WebhookDeliveryTimeout
		}
	}
	return res, nil
}

// ReserveRobot atomically reserves the nearest eligible idle robot, or puts
// the mission in the site's queue (priority first, then FIFO).
func (a *Activities) ReserveRobot(ctx context.Context, in schemas.ReserveRobotInput) (schemas.ReserveRobotResult, error) {
	minBattery := in.MinBattery
	if in.RobotID == "" && !in.InterruptCharging && a.Charging.Threshold > minBattery && a.hasCharger(in.Site) {
		// A robot below the charge threshold goes charging, not on missions.
		minBattery = a.Charging.Threshold
	}
	r, err := a.Store.Reserve(ctx, store.ReserveRequest{
		MissionID: in.MissionID, WorkflowID: in.WorkflowID, Site: in.Site, Priority: in.Priority,
		RequiredCapabilities: in.RequiredCapabilities, MinBattery: minBattery, X: in.X, Y: in.Y, RobotID: in.RobotID,
	})
	if err != nil {
		return schemas.ReserveRobotResult{}, storeError(err)
	}
	a.wake(ctx, r.Wake)
	if r.Queued && in.InterruptCharging && in.RobotID == "" {
		a.interruptCharging(ctx, in)
	}
	res := schemas.ReserveRobotResult{RobotID: r.RobotID, Queued: r.Queued, QueuePosition: r.QueuePosition, ServiceStatus: r.ServiceStatus}
	if !r.Queued {
		res.RobotIOQueue = a.EdgeQueues[in.Site]
	}
	return res, nil
}

// CancelQueued removes a mission from the reservation queue (idempotent).
func (a *Activities) CancelQueued(ctx context.Context, in schemas.CancelQueuedInput) error {
	return storeError(a.Store.CancelQueued(ctx, in.MissionID))
}

// startNode is where the robot stands by its latest accepted state: its
// lastNodeId when it is within site.DefaultAllowedDeviationXY (0.5 m) of
// that node, else the nearest map node to its position; offset is the
// distance to it in metres.
func startNode(m *site.Map, st store.RobotState) (node string, offset float64) {
	if n, ok := m.Node(st.LastNodeID); ok {
		if d := math.Hypot(n.X-st.X, n.Y-st.Y); d <= site.DefaultAllowedDeviationXY {
			return n.ID, d
		}
	}
	n, d := m.NearestNode(st.X, st.Y)
	return n.ID, d
}

// BuildOrder builds the VDA 5050 order that takes the robot from where it
// stands through the mission's stations (see site.Map.BuildOrder).
func (a *Activities) BuildOrder(ctx context.Context, in schemas.BuildOrderInput) (schemas.BuildOrderResult, error) {
	m, err := a.siteMap(in.Spec.Site)
	if err != nil {
		return schemas.BuildOrderResult{}, err
	}
	st, err := a.Store.RobotState(ctx, in.RobotID)
	if errors.Is(err, store.ErrNotFound) {
		return schemas.BuildOrderResult{}, temporal.NewNonRetryableApplicationError("robot "+in.RobotID+" has no state in the registry", schemas.ErrUnknownRobot, err)
	}
	if err != nil {
		return schemas.BuildOrderResult{}, storeError(err)
	}
	k, err := robotKey(in.RobotID)
	if err != nil {
		return schemas.BuildOrderResult{}, err
	}
	prof := a.Link.Profile(k)
	start, offset := startNode(m, st)
	if in.StitchNode != "" {
		// An update of the current order: it starts where that order's base ends.
		start, offset = in.StitchNode, 0
	}
	all := steps(in.Spec)
	if in.FromStep < 0 || in.FromStep >= len(all) {
		return schemas.BuildOrderResult{}, invalid("build order for %s: fromStep %d outside its %d steps", in.Spec.MissionID, in.FromStep, len(all))
	}
	to := len(all)
	if in.ToStep != 0 {
		if in.ToStep <= in.FromStep || in.ToStep > len(all) {
			return schemas.BuildOrderResult{}, invalid("build order for %s: toStep %d outside (%d, %d]", in.Spec.MissionID, in.ToStep, in.FromStep, len(all))
		}
		to = in.ToStep
	}
	req := site.OrderRequest{OrderID: in.OrderID, OrderUpdateID: in.OrderUpdateID, StartNode: start, Steps: all[in.FromStep:to], FirstStep: in.FromStep,
		Require: prof.Require, StartTheta: st.Theta, FirstSequenceID: in.StitchSequenceID, HoldLast: in.HoldLast}
	if offset > site.DefaultAllowedDeviationXY {
		// Stopped between nodes: the first node must count as reached from
		// where the robot stands, or the vehicle refuses the order.
		req.StartDeviationXY = math.Ceil((offset+0.25)*100) / 100
	}
	if in.Spec.Load != nil {
		req.LoadID, req.LoadType = in.Spec.Load.LoadID, in.Spec.Load.LoadType
	}
	order, err := m.BuildOrder(req)
	if err != nil {
		return schemas.BuildOrderResult{}, invalid("build order for %s: %v", in.Spec.MissionID, err)
	}
	res := schemas.BuildOrderResult{Order: order, StartNode: start, StartOffset: math.Round(offset*1000) / 1000, Protocol: prof.String()}
	for _, n := range order.Nodes {
		res.NodeIDs = append(res.NodeIDs, n.NodeID)
		for _, act := range n.Actions {
			res.ActionIDs = append(res.ActionIDs, act.ActionID)
		}
	}
	for _, e := range order.Edges {
		if e.Length != nil {
			res.Distance += *e.Length
		}
	}
	return res, nil
}

func robotKey(id string) (vda5050.RobotKey, error) {
	k, err := vda5050.ParseRobotID(id)
	if err != nil {
		return k, temporal.NewNonRetryableApplicationError(err.Error(), schemas.ErrUnknownRobot, nil)
	}
	return k, nil
}

// SendOrder publishes the order to the robot (QoS 0) in its profile and
// returns the topic and headerId it went out with. Sending the same orderId
// and orderUpdateId twice is harmless: the robot ignores the second (VDA
// 5050 §6.6.4). Errors: a publish while the MQTT client is not connected
// wraps ErrNotConnected (retryable: nothing was sent); a message the
// schema refuses is a non-retryable InvalidMission.
func (a *Activities) SendOrder(ctx context.Context, in schemas.SendOrderInput) (schemas.SendResult, error) {
	k, err := robotKey(in.RobotID)
	if err != nil {
		return schemas.SendResult{}, err
	}
	sent, err := a.Link.SendOrder(ctx, k, in.Order)
	return schemas.SendResult{Topic: sent.Topic, HeaderID: sent.HeaderID}, sendError(err)
}

// SendInstantActions publishes instant actions to the robot (QoS 0) in its
// dialect and returns the topic and headerId (see SendOrder for errors).
// With in.Holder set, it first reads the robot's reservation: held by
// anyone else, or by nobody, it publishes nothing, writes an audit row
// (kind instant_actions.withheld, subject the holder) and fails with the
// non-retryable NotReserved. A registry that cannot be read is a
// retryable error (nothing was sent).
func (a *Activities) SendInstantActions(ctx context.Context, in schemas.SendInstantActionsInput) (schemas.SendResult, error) {
	k, err := robotKey(in.RobotID)
	if err != nil {
		return schemas.SendResult{}, err
	}
	if in.Holder != "" {
		if err := a.holds(ctx, in); err != nil {
			return schemas.SendResult{}, err
		}
	}
	sent, err := a.Link.SendInstantActions(ctx, k, a.withArtifactQuery(in.Actions))
	return schemas.SendResult{Topic: sent.Topic, HeaderID: sent.HeaderID}, sendError(err)
}

// withArtifactQuery adds the artifact store's URL query (a presigned
// token, ArtifactStore.URLQuery) to the URLs of softwareUpdate actions as
// they go out to the robot; the actions in the workflow's history keep
// the plain URLs. Other actions are returned as they are.
func (a *Activities) withArtifactQuery(actions []vda5050.Action) []vda5050.Action {
	if a.Artifacts.URLQuery == "" {
		return actions
	}
	out := make([]vda5050.Action, len(actions))
	for i, act := range actions {
		out[i] = act
		if act.ActionType != schemas.ActionSoftwareUpdate {
			continue
		}
		out[i].ActionParameters = slices.Clone(act.ActionParameters)
		for j, p := range out[i].ActionParameters {
			if s, ok := p.Value.(string); ok && (p.Key == schemas.SoftwareUpdateParamArtifactURL || p.Key == schemas.SoftwareUpdateParamManifestURL) {
				out[i].ActionParameters[j].Value = a.Artifacts.WithQuery(s)
			}
		}
	}
	return out
}

// holds checks that in.Holder holds the robot's reservation (see
// SendInstantActions).
func (a *Activities) holds(ctx context.Context, in schemas.SendInstantActionsInput) error {
	holder, reserved, err := a.Store.ReservationHolder(ctx, in.RobotID)
	if err != nil {
		return storeError(err)
	}
	if reserved && holder == in.Holder {
		return nil
	}
	types := make([]string, 0, len(in.Actions))
	ids := make([]string, 0, len(in.Actions))
	for _, act := range in.Actions {
		types, ids = append(types, act.ActionType), append(ids, act.ActionID)
	}
	if activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Warn("instant actions withheld: the sender no longer holds the robot",
			"robot", in.RobotID, "holder", in.Holder, "reservedBy", holder, "actions", ids)
	}
	if err := a.Store.Audit(ctx, in.Holder, "instant_actions.withheld", in.Holder, map[string]any{
		"robotId": in.RobotID, "reservedBy": holder, "actionTypes": types, "actionIds": ids,
	}); err != nil {
		return storeError(err)
	}
	by := "nobody"
	if reserved {
		by = holder
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s withheld from robot %s: reserved by %s, not by %s",
		strings.Join(types, ", "), in.RobotID, by, in.Holder), schemas.ErrNotReserved, nil)
}

// sendError makes a message the official schema refuses final: sending it
// again cannot succeed.
func sendError(err error) error {
	var me *vda5050.MessageError
	if errors.As(err, &me) {
		return temporal.NewNonRetryableApplicationError(err.Error(), schemas.ErrInvalidMission, err)
	}
	if errors.Is(err, ErrNoBroker) {
		return temporal.NewNonRetryableApplicationError(err.Error(), "NoBroker", err)
	}
	return err
}

// RobotSnapshot reads the robot's latest stored state (written by the
// bridge) as a RobotEvent, for reconciliation.
func (a *Activities) RobotSnapshot(ctx context.Context, in schemas.RobotSnapshotInput) (schemas.RobotEvent, error) {
	st, err := a.Store.RobotState(ctx, in.RobotID)
	if err != nil {
		return schemas.RobotEvent{}, storeError(err)
	}
	return EventFromStored(st), nil
}

// EventFromStored converts a stored robot state into a RobotEvent.
func EventFromStored(st store.RobotState) schemas.RobotEvent {
	ev := schemas.RobotEvent{
		RobotID: st.RobotID, Connection: st.ConnectionState, OrderID: st.OrderID, OrderUpdateID: uint32(st.OrderUpdateID),
		LastNodeID: st.LastNodeID, LastNodeSequenceID: st.LastNodeSequenceID, NodesRemaining: st.NodeStatesRemaining,
		EdgesRemaining: max(st.NodeStatesRemaining-1, 0), Driving: st.Driving, Paused: st.Paused, BatteryCharge: st.BatteryCharge,
		SoftwareVersion: st.SoftwareVersion,
	}
	if !st.Timestamp.IsZero() {
		ev.StateTimestamp = vda5050.Timestamp(st.Timestamp)
	}
	if len(st.ActionStates) > 0 {
		_ = json.Unmarshal(st.ActionStates, &ev.ActionStates)
	}
	if len(st.Errors) > 0 {
		_ = json.Unmarshal(st.Errors, &ev.Errors)
	}
	return ev
}

// ReleaseRobot ends the mission's reservation (no-op when it holds none)
// and signals the site's queued missions that a robot may be free. A
// robot left below the charge threshold is sent charging (a Charge
// workflow is started for it, unless the releaser is one).
func (a *Activities) ReleaseRobot(ctx context.Context, in schemas.ReleaseRobotInput) error {
	var also []store.AuditRow
	if au := in.Audit; au != nil {
		also = append(also, store.AuditRow{Key: au.Once, Actor: au.Actor, Kind: au.Kind, Subject: au.Subject, Details: au.Details})
	}
	next, err := a.Store.Release(ctx, in.RobotID, in.MissionID, also...)
	if err != nil {
		return storeError(err)
	}
	a.wake(ctx, next)
	// No registry read for a site without a charger (most releases of a
	// site without one would pay it for nothing).
	if !strings.HasPrefix(in.MissionID, schemas.ChargeWorkflowPrefix) && (in.Site == "" || a.hasCharger(in.Site)) {
		a.chargeIfLow(ctx, in.RobotID, in.MissionID)
	}
	return nil
}

// SetServiceStatus sets a robot's service status and audits it
// (store.SetServiceStatus). Errors: UnknownRobot or an unknown status
// (non-retryable), transient registry faults (retryable).
func (a *Activities) SetServiceStatus(ctx context.Context, in schemas.SetServiceStatusInput) (schemas.SetServiceStatusResult, error) {
	before, err := a.Store.SetServiceStatus(ctx, in.RobotID, in.Status, in.Actor, in.Reason)
	if errors.Is(err, store.ErrNotFound) {
		return schemas.SetServiceStatusResult{}, temporal.NewNonRetryableApplicationError(err.Error(), schemas.ErrUnknownRobot, err)
	}
	if err != nil && !slices.Contains(store.ServiceStatuses, in.Status) {
		return schemas.SetServiceStatusResult{}, invalid("%v", err)
	}
	if err != nil {
		return schemas.SetServiceStatusResult{}, storeError(err)
	}
	if in.Serviced {
		if err := a.Store.MarkServiced(ctx, in.RobotID, in.Actor, in.Reason); err != nil {
			return schemas.SetServiceStatusResult{}, storeError(err)
		}
	}
	return schemas.SetServiceStatusResult{Before: before}, nil
}

// wake signals queued missions that a robot waits for them. A lost wake-up
// only delays a mission: queued missions retry on their own.
func (a *Activities) wake(ctx context.Context, workflowIDs []string) {
	a.signalAll(ctx, workflowIDs, schemas.SignalRobotAvailable, nil)
}

// signalAll signals each workflow; a workflow that is gone is skipped, other
// failures are logged (the waiting workflows ask again on their own).
func (a *Activities) signalAll(ctx context.Context, workflowIDs []string, signal string, arg any) {
	for _, wfID := range workflowIDs {
		err := a.Temporal.SignalWorkflow(ctx, wfID, "", signal, arg)
		var nf *serviceerror.NotFound
		if err != nil && !errors.As(err, &nf) && activity.IsActivity(ctx) {
			activity.GetLogger(ctx).Warn("signal failed", "signal", signal, "workflowId", wfID, "error", err)
		}
	}
}

// Audit writes one row to the audit log.
func (a *Activities) Audit(ctx context.Context, in schemas.AuditInput) error {
	if in.Once != "" {
		return storeError(a.Store.AuditOnce(ctx, in.Once, in.Actor, in.Kind, in.Subject, in.Details))
	}
	return storeError(a.Store.Audit(ctx, in.Actor, in.Kind, in.Subject, in.Details))
}

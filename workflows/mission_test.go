package workflows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// fakeActivities stands in for activities.Activities in unit tests: it
// records what the workflow asked of the outside world.
type fakeActivities struct {
	mu        sync.Mutex
	queued    int // ReserveRobot answers "queued" this many times first
	reserves  []schemas.ReserveRobotInput
	orders    []schemas.SendOrderInput
	instant   []vda5050.Action
	releases  []schemas.ReleaseRobotInput
	cancelled []string
	audits    []schemas.AuditInput
	webhooks  []schemas.DeliverWebhookInput
	// webhookDown fails DeliverWebhook this many times first (retryable);
	// webhookRejects answers every delivery with a final 4xx.
	webhookDown    int
	webhookRejects bool
	snapshot       *schemas.RobotEvent
	builds         []schemas.BuildOrderInput
	headerID       uint32 // of the last instantActions sent

	// The registry is down for this many calls of each (a plain,
	// retryable error), or refuses them (non-retryable StoreRefused).
	reserveDown, releaseDown int
	// instantDown fails SendInstantActions this many times first, for
	// good (a publish that could not go out: non-retryable).
	instantDown    int
	reserveRefused bool
	// handout is the robots ReserveRobot grants, one per grant (the last
	// one again when used up); nil = acme/AMR-001 always.
	handout []string
	granted int
	// parts makes BuildOrder honour FromStep, ToStep, HoldLast and the
	// stitching node (partsOrder) instead of answering one fixed order.
	parts bool
	// serviceStatus is the service status each grant reports ("" = in service).
	serviceStatus string
	// chargerOccupied: ReserveCharger answers "queued, charger-1 stood
	// on by another robot" this many times first.
	chargerOccupied int
	// serviceStatuses are the service statuses set, in order.
	serviceStatuses []string
	// chargerReleases: where the robot stood (its snapshot's lastNodeId)
	// each time ReleaseCharger was called.
	chargerReleases []string
	// edgeQueue, when set, is the robot I/O queue ReserveRobot hands out
	// with each grant (an edge site); routes records where each SendOrder
	// and SendInstantActions ran: "local" or the activity's task queue.
	edgeQueue string
	routes    []string
}

// route records where a robot I/O activity ran (caller holds f.mu).
func (f *fakeActivities) route(ctx context.Context) {
	if info := activity.GetInfo(ctx); info.IsLocalActivity {
		f.routes = append(f.routes, "local")
	} else {
		f.routes = append(f.routes, info.TaskQueue)
	}
}

func (f *fakeActivities) PlanMission(ctx context.Context, in schemas.PlanMissionInput) (schemas.PlanMissionResult, error) {
	if slices.ContainsFunc(in.Spec.Steps, func(s schemas.MissionStep) bool { return s.Station == "nowhere" }) {
		return schemas.PlanMissionResult{}, temporal.NewNonRetryableApplicationError("unknown station nowhere", schemas.ErrInvalidMission, nil)
	}
	return schemas.PlanMissionResult{FirstStationNode: "B1", X: 4, Y: 2, Webhook: in.Client == "acme-wms"}, nil
}

func (f *fakeActivities) WebhookOf(ctx context.Context, in schemas.WebhookOfInput) (schemas.WebhookOfResult, error) {
	return schemas.WebhookOfResult{Webhook: in.Client == "acme-wms"}, nil
}

func (f *fakeActivities) DeliverWebhook(ctx context.Context, in schemas.DeliverWebhookInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.webhookRejects {
		return temporal.NewNonRetryableApplicationError("deliver: 400 Bad Request", "WMSRejected", nil)
	}
	if f.webhookDown > 0 {
		f.webhookDown--
		return errors.New("deliver: connection refused")
	}
	f.webhooks = append(f.webhooks, in)
	return nil
}

// webhookKinds are the kinds of the events delivered so far, in order.
func (f *fakeActivities) webhookKinds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var k []string
	for _, w := range f.webhooks {
		k = append(k, w.Event.Kind)
	}
	return k
}

func (f *fakeActivities) ReserveRobot(ctx context.Context, in schemas.ReserveRobotInput) (schemas.ReserveRobotResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reserves = append(f.reserves, in)
	if f.reserveRefused {
		return schemas.ReserveRobotResult{}, temporal.NewNonRetryableApplicationError("reserve: constraint violated", "StoreRefused", nil)
	}
	if f.reserveDown > 0 {
		f.reserveDown--
		return schemas.ReserveRobotResult{}, errors.New("failed to connect to `host=127.0.0.1`: connection refused")
	}
	if f.queued > 0 {
		f.queued--
		return schemas.ReserveRobotResult{Queued: true, QueuePosition: 2}, nil
	}
	robot := "acme/AMR-001"
	if len(f.handout) > 0 {
		robot = f.handout[min(f.granted, len(f.handout)-1)]
	}
	f.granted++
	return schemas.ReserveRobotResult{RobotID: robot, RobotIOQueue: f.edgeQueue, ServiceStatus: f.serviceStatus}, nil
}

func (f *fakeActivities) CancelQueued(ctx context.Context, in schemas.CancelQueuedInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, in.MissionID)
	return nil
}

func (f *fakeActivities) BuildOrder(ctx context.Context, in schemas.BuildOrderInput) (schemas.BuildOrderResult, error) {
	f.mu.Lock()
	f.builds = append(f.builds, in)
	parts := f.parts
	f.mu.Unlock()
	if parts {
		return partsOrder(in), nil
	}
	ids := []string{in.OrderID + "-a0-pick", in.OrderID + "-a1-drop"}
	return schemas.BuildOrderResult{
		Order:     vda5050.Order{OrderID: in.OrderID, OrderUpdateID: in.OrderUpdateID},
		NodeIDs:   []string{"A1", "B1", "C1"},
		ActionIDs: ids[in.FromStep:],
	}, nil
}

func (f *fakeActivities) SendOrder(ctx context.Context, in schemas.SendOrderInput) (schemas.SendResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.orders = append(f.orders, in)
	f.route(ctx)
	return schemas.SendResult{Topic: "uagv/v2/acme/AMR-001/order", HeaderID: uint32(len(f.orders) - 1)}, nil
}

func (f *fakeActivities) SendInstantActions(ctx context.Context, in schemas.SendInstantActionsInput) (schemas.SendResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.instantDown > 0 {
		f.instantDown--
		return schemas.SendResult{}, temporal.NewNonRetryableApplicationError("publish instantActions: broker unreachable", "RobotIOFailed", nil)
	}
	f.instant = append(f.instant, in.Actions...)
	f.route(ctx)
	f.headerID = uint32(len(f.instant) + 100)
	return schemas.SendResult{Topic: "uagv/v2/acme/AMR-001/instantActions", HeaderID: f.headerID}, nil
}

// instantIDs are the actionIds sent so far.
func (f *fakeActivities) instantIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, a := range f.instant {
		ids = append(ids, a.ActionID)
	}
	return ids
}

func (f *fakeActivities) RobotSnapshot(ctx context.Context, in schemas.RobotSnapshotInput) (schemas.RobotEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.snapshot == nil {
		return schemas.RobotEvent{}, errors.New("no state")
	}
	return *f.snapshot, nil
}

func (f *fakeActivities) ReleaseRobot(ctx context.Context, in schemas.ReleaseRobotInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.releaseDown > 0 {
		f.releaseDown--
		return errors.New("failed to connect to `host=127.0.0.1`: connection refused")
	}
	// The mission's end row is written in the release's transaction, as
	// the real activity does: recorded with the audits.
	if in.Audit != nil {
		f.audits = append(f.audits, *in.Audit)
		in.Audit = nil
	}
	f.releases = append(f.releases, in)
	return nil
}

func (f *fakeActivities) Audit(ctx context.Context, in schemas.AuditInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audits = append(f.audits, in)
	return nil
}

func (f *fakeActivities) SetServiceStatus(ctx context.Context, in schemas.SetServiceStatusInput) (schemas.SetServiceStatusResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.serviceStatuses = append(f.serviceStatuses, in.Status)
	return schemas.SetServiceStatusResult{}, nil
}

const wfID = "mission-m-1"

func spec() schemas.MissionSpec {
	return schemas.MissionSpec{
		MissionID: "m-1", Site: "warehouse-a", Priority: 5, MinBattery: 20,
		Steps: []schemas.MissionStep{{Station: "inbound-1", Action: "pick"}, {Station: "rack-1", Action: "drop"}},
	}
}

type suite struct {
	testsuite.WorkflowTestSuite
	env  *testsuite.TestWorkflowEnvironment
	acts *fakeActivities
}

func newEnv(t *testing.T) *suite {
	s := &suite{acts: &fakeActivities{}}
	s.SetLogger(nil)
	s.env = s.NewTestWorkflowEnvironment()
	s.env.SetStartWorkflowOptions(clientOptions(wfID))
	s.env.RegisterWorkflow(Mission)
	s.env.RegisterWorkflowWithOptions(WMSEvents, workflow.RegisterOptions{Name: schemas.WMSEventsWorkflowType})
	s.env.RegisterActivity(s.acts)
	return s
}

// robot events as the bridge would send them.
func driving(node string, seq, remaining int) schemas.RobotEvent {
	return schemas.RobotEvent{RobotID: "acme/AMR-001", OrderID: wfID, LastNodeID: node, LastNodeSequenceID: seq,
		NodesRemaining: remaining, EdgesRemaining: remaining, Driving: true,
		ActionStates: []vda5050.ActionState{{ActionID: wfID + "-a0-pick", ActionStatus: vda5050.ActionWaiting}, {ActionID: wfID + "-a1-drop", ActionStatus: vda5050.ActionWaiting}}}
}

func finished() schemas.RobotEvent {
	return schemas.RobotEvent{RobotID: "acme/AMR-001", OrderID: wfID, LastNodeID: "C1", LastNodeSequenceID: 4,
		ActionStates: []vda5050.ActionState{{ActionID: wfID + "-a0-pick", ActionStatus: vda5050.ActionFinished}, {ActionID: wfID + "-a1-drop", ActionStatus: vda5050.ActionFinished}}}
}

func (s *suite) at(d time.Duration, fn func()) { s.env.RegisterDelayedCallback(fn, d) }

func (s *suite) signal(d time.Duration, ev schemas.RobotEvent) {
	s.at(d, func() { s.env.SignalWorkflow(schemas.SignalRobotEvent, ev) })
}

func (s *suite) status(t *testing.T) schemas.MissionStatus {
	v, err := s.env.QueryWorkflow(schemas.QueryStatus)
	require.NoError(t, err)
	var st schemas.MissionStatus
	require.NoError(t, v.Get(&st))
	return st
}

func (s *suite) result(t *testing.T) (schemas.MissionResult, error) {
	require.True(t, s.env.IsWorkflowCompleted())
	var r schemas.MissionResult
	err := s.env.GetWorkflowError()
	if err == nil {
		require.NoError(t, s.env.GetWorkflowResult(&r))
	}
	return r, err
}

func appErrType(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Type()
	}
	return ""
}

func TestMissionHappyPath(t *testing.T) {
	s := newEnv(t)
	var mid schemas.MissionStatus
	s.signal(time.Second, driving("A1", 0, 2))
	s.signal(2*time.Second, driving("B1", 2, 1))
	s.at(2500*time.Millisecond, func() { mid = s.status(t) })
	s.signal(3*time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec(), RequestedBy: "test"})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Equal(t, "acme/AMR-001", r.RobotID)
	require.Equal(t, 3, r.NodesDone)
	require.Equal(t, schemas.MissionDriving, mid.State)
	require.Equal(t, 2, mid.NodesDone)
	require.Equal(t, "B1", mid.CurrentNode)
	require.Len(t, s.acts.orders, 1)
	require.Equal(t, wfID, s.acts.orders[0].Order.OrderID, "the orderId names the owning workflow")
	require.Equal(t, []schemas.ReleaseRobotInput{{RobotID: "acme/AMR-001", MissionID: "m-1", Site: "warehouse-a"}}, s.acts.releases)
	require.Equal(t, "mission.completed", s.acts.audits[0].Kind)
	require.Empty(t, s.acts.webhooks, "a mission without a WMS client sends no events")
	require.Equal(t, 4.0, s.acts.reserves[0].X, "reservation asks for the robot nearest the first station")
}

func TestMissionNotDoneUntilActionsFinished(t *testing.T) {
	s := newEnv(t)
	ev := finished()
	ev.ActionStates[1].ActionStatus = vda5050.ActionRunning // at the last node, drop still running
	s.signal(time.Second, ev)
	var mid schemas.MissionStatus
	s.at(1500*time.Millisecond, func() { mid = s.status(t) })
	s.signal(2*time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionDriving, mid.State)
	require.Equal(t, schemas.MissionCompleted, r.State)
}

func TestMissionQueuedUntilRobotFree(t *testing.T) {
	s := newEnv(t)
	s.acts.queued = 1
	var queued schemas.MissionStatus
	s.at(time.Second, func() { queued = s.status(t) })
	s.at(2*time.Second, func() { s.env.SignalWorkflow(schemas.SignalRobotAvailable, nil) })
	s.signal(3*time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Equal(t, schemas.MissionQueued, queued.State)
	require.Equal(t, 2, queued.QueuePosition)
	require.Len(t, s.acts.reserves, 2, "a robot-available signal retries the reservation")
	require.Equal(t, 5, s.acts.reserves[0].Priority)
}

func TestMissionQueuedRetriesWithoutSignal(t *testing.T) {
	s := newEnv(t)
	s.acts.queued = 2
	s.signal(Timings.RequeueAfter*2+time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Len(t, s.acts.reserves, 3, "a queued mission retries even if a wake-up signal was lost")
}

func TestMissionCancelWhileQueued(t *testing.T) {
	s := newEnv(t)
	s.acts.queued = 100
	var upd schemas.MissionStatus
	var updErr error
	s.at(time.Second, func() {
		s.env.UpdateWorkflow(schemas.UpdateCancel, "u1", &updateCallbacks{t: t, onComplete: func(v any, err error) { updErr = err; upd = v.(schemas.MissionStatus) }}, schemas.CancelRequest{Reason: "wms withdrew", By: "wms"})
	})
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.NoError(t, updErr)
	require.Equal(t, schemas.MissionCancelled, r.State)
	require.Equal(t, schemas.MissionCancelled, upd.State)
	require.Equal(t, []string{"m-1"}, s.acts.cancelled, "leaves the reservation queue")
	require.Empty(t, s.acts.orders, "no order was sent")
	require.Empty(t, s.acts.releases)
}

func TestMissionCancelWhileDriving(t *testing.T) {
	s := newEnv(t)
	var upd schemas.MissionStatus
	var updErr error
	s.signal(time.Second, driving("B1", 2, 1))
	s.at(2*time.Second, func() {
		s.env.UpdateWorkflow(schemas.UpdateCancel, "u1", &updateCallbacks{t: t, onComplete: func(v any, err error) { updErr = err; upd = v.(schemas.MissionStatus) }}, schemas.CancelRequest{Reason: "blocked aisle", By: "operator"})
	})
	var cancelling schemas.MissionStatus
	s.at(3*time.Second, func() { cancelling = s.status(t) })
	// The robot stops at B1 and confirms cancelOrder.
	s.signal(4*time.Second, schemas.RobotEvent{RobotID: "acme/AMR-001", OrderID: wfID, LastNodeID: "B1", LastNodeSequenceID: 2,
		ActionStates: []vda5050.ActionState{{ActionID: wfID + "#cancel-1", ActionType: vda5050.ActionCancelOrder, ActionStatus: vda5050.ActionFinished}}})
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.NoError(t, updErr)
	require.Equal(t, schemas.MissionCancelling, cancelling.State)
	require.Equal(t, schemas.MissionCancelled, r.State)
	require.Equal(t, schemas.MissionCancelled, upd.State)
	require.Len(t, s.acts.instant, 1)
	require.Equal(t, vda5050.ActionCancelOrder, s.acts.instant[0].ActionType)
	require.Len(t, s.acts.releases, 1, "the robot is released after the robot confirmed")
	require.Equal(t, "mission.cancelled", s.acts.audits[0].Kind)
	require.Equal(t, "operator", s.acts.audits[0].Actor)
}

func TestMissionPauseResume(t *testing.T) {
	s := newEnv(t)
	var paused, resumed schemas.MissionStatus
	s.signal(time.Second, driving("A1", 0, 2))
	s.at(2*time.Second, func() {
		s.env.UpdateWorkflow(schemas.UpdatePause, "p1", &updateCallbacks{t: t, onComplete: func(v any, err error) { require.NoError(t, err); paused = v.(schemas.MissionStatus) }})
	})
	ev := driving("A1", 0, 2)
	ev.Driving, ev.Paused = false, true
	s.signal(3*time.Second, ev)
	var rejectedPause error
	s.at(4*time.Second, func() {
		s.env.UpdateWorkflow(schemas.UpdatePause, "p2", &updateCallbacks{t: t, onReject: func(err error) { rejectedPause = err }})
	})
	s.at(5*time.Second, func() {
		s.env.UpdateWorkflow(schemas.UpdateResume, "r1", &updateCallbacks{t: t, onComplete: func(v any, err error) { require.NoError(t, err); resumed = v.(schemas.MissionStatus) }})
	})
	s.signal(6*time.Second, driving("A1", 0, 2))
	s.signal(7*time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Equal(t, schemas.MissionPaused, paused.State)
	require.True(t, paused.Paused)
	require.Error(t, rejectedPause, "pausing a paused mission is refused by the validator")
	require.Equal(t, schemas.MissionDriving, resumed.State)
	require.Len(t, s.acts.instant, 2)
	require.Equal(t, vda5050.ActionStartPause, s.acts.instant[0].ActionType)
	require.Equal(t, vda5050.ActionStopPause, s.acts.instant[1].ActionType)
}

// on is ev as robot's.
func on(robot string, ev schemas.RobotEvent) schemas.RobotEvent {
	ev.RobotID = robot
	return ev
}

// handed is ev about the order of the n-th handover (orderId and action
// ids "<workflowID>#h<n>…").
func handed(ev schemas.RobotEvent, n int) schemas.RobotEvent {
	id := fmt.Sprintf("%s#h%d", wfID, n)
	ev.OrderID = id
	ev.ActionStates = slices.Clone(ev.ActionStates)
	for i := range ev.ActionStates {
		ev.ActionStates[i].ActionID = strings.Replace(ev.ActionStates[i].ActionID, wfID, id, 1)
	}
	return ev
}

func fatal(robot string) schemas.RobotEvent {
	ev := driving("B1", 2, 1)
	ev.RobotID, ev.Driving = robot, false
	ev.Errors = []vda5050.Error{{ErrorType: "laserScannerFault", ErrorLevel: vda5050.ErrorFatal, ErrorDescription: "front scanner dirty"}}
	return ev
}

// A robot FATAL mid-route, before the pick: the mission stops it
// (cancelOrder), gives it back to the registry (which will not hand it out
// while FATAL) and goes on with another robot from the start; the status
// shows the hand-over.
func TestMissionFailsOverOnFatal(t *testing.T) {
	s := newEnv(t)
	s.acts.handout = []string{"acme/AMR-001", "acme/AMR-002"}
	s.signal(time.Second, fatal("acme/AMR-001"))
	s.signal(3*time.Second, on("acme/AMR-002", handed(driving("A1", 0, 2), 1)))
	var mid schemas.MissionStatus
	s.at(3500*time.Millisecond, func() { mid = s.status(t) })
	s.signal(4*time.Second, on("acme/AMR-002", handed(finished(), 1)))
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Equal(t, "acme/AMR-002", r.RobotID)
	require.Len(t, mid.Handovers, 1)
	h := mid.Handovers[0]
	require.Equal(t, "acme/AMR-001", h.FromRobot)
	require.Equal(t, "acme/AMR-002", h.ToRobot)
	require.Equal(t, 0, h.FromStep)
	require.Contains(t, h.Reason, "front scanner dirty")
	require.Equal(t, vda5050.ActionCancelOrder, s.acts.instant[0].ActionType, "the failed robot is told to stop")
	require.Equal(t, []string{"acme/AMR-001", "acme/AMR-002"}, []string{s.acts.releases[0].RobotID, s.acts.releases[1].RobotID})
	require.Len(t, s.acts.orders, 2)
	require.Equal(t, wfID+"#h1", s.acts.orders[1].Order.OrderID, "a new orderId: the next robot may have had the first one")
}

// A robot of an edge site (ReserveRobotResult.RobotIOQueue) is reached
// only through its site's robot I/O queue: the order, the failed robot's
// cancelOrder and the next robot's order all run there as activities,
// none as a local activity of the workflow worker.
func TestMissionAtEdgeSiteSendsThroughItsQueue(t *testing.T) {
	s := newEnv(t)
	s.acts.edgeQueue = "robot-io-warehouse-a"
	s.acts.handout = []string{"acme/AMR-001", "acme/AMR-002"}
	s.signal(time.Second, fatal("acme/AMR-001"))
	s.signal(3*time.Second, on("acme/AMR-002", handed(finished(), 1)))
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Len(t, s.acts.orders, 2)
	require.Equal(t, []string{"robot-io-warehouse-a", "robot-io-warehouse-a", "robot-io-warehouse-a"}, s.acts.routes)

	single := newEnv(t)
	single.signal(time.Second, finished())
	single.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	_, err = single.result(t)
	require.NoError(t, err)
	require.Equal(t, []string{"local"}, single.acts.routes, "single-site mode publishes from the workflow worker")
}

// Handovers are bounded: a mission whose robots keep failing fails.
func TestMissionFatalAfterLastHandoverFails(t *testing.T) {
	s := newEnv(t)
	s.acts.handout = []string{"acme/AMR-001", "acme/AMR-002", "acme/AMR-003"}
	s.signal(time.Second, fatal("acme/AMR-001"))
	s.signal(3*time.Second, fatal("acme/AMR-002"))
	s.signal(5*time.Second, fatal("acme/AMR-003"))
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	_, err := s.result(t)
	require.Equal(t, schemas.ErrRobotFatal, appErrType(err))
	require.Contains(t, err.Error(), "after 2 handovers")
	require.Len(t, s.acts.releases, 3, "every robot is released")
}

// A robot that fails with the load on board (its pick done, the drop not):
// the mission does not silently restart; it waits for an operator.
// reassign goes on with another robot from the drop (or from the start);
// abort, or no decision in time, fails.
func TestMissionLoadOnBoardWaitsForOperator(t *testing.T) {
	picked := fatal("acme/AMR-001")
	picked.ActionStates[0].ActionStatus = vda5050.ActionFinished
	for name, c := range map[string]struct {
		req      *schemas.ResolveRequest
		want     string
		fromStep int
	}{
		"reassign": {&schemas.ResolveRequest{Decision: schemas.DecisionReassign, By: "op", Reason: "load moved onto the next robot"}, schemas.MissionCompleted, 1},
		"restart":  {&schemas.ResolveRequest{Decision: schemas.DecisionReassign, RestartFromStart: true, By: "op"}, schemas.MissionCompleted, 0},
		"abort":    {&schemas.ResolveRequest{Decision: schemas.DecisionAbort, By: "op", Reason: "load damaged"}, schemas.MissionFailed, 0},
		"nobody":   {nil, schemas.MissionFailed, 0},
	} {
		t.Run(name, func(t *testing.T) {
			s := newEnv(t)
			s.acts.handout = []string{"acme/AMR-001", "acme/AMR-002"}
			s.signal(time.Second, picked)
			var waiting schemas.MissionStatus
			s.at(2*time.Second, func() { waiting = s.status(t) })
			var up updateOutcome
			if c.req != nil {
				s.update(t, 3*time.Second, schemas.UpdateResolve, &up, *c.req)
			}
			s.signal(time.Minute, on("acme/AMR-002", handed(finished(), 1)))
			s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
			r, err := s.result(t)
			require.Equal(t, schemas.MissionAwaitingOperator, waiting.State)
			require.False(t, waiting.ResolveBy.IsZero())
			require.Contains(t, waiting.LastError, "load on board")
			if c.want == schemas.MissionFailed {
				require.Error(t, err)
				require.Equal(t, schemas.ErrRobotFatal, appErrType(err))
				return
			}
			require.NoError(t, err)
			require.True(t, up.done)
			require.NoError(t, up.err)
			require.Equal(t, c.want, r.State)
			require.Equal(t, c.fromStep, s.acts.builds[1].FromStep, "the next robot's order starts at the right step")
		})
	}
}

func TestMissionResolveRefusedUnlessWaiting(t *testing.T) {
	s := newEnv(t)
	var rejected error
	s.at(time.Second, func() {
		s.env.UpdateWorkflow(schemas.UpdateResolve, "r1", &updateCallbacks{t: t, onReject: func(err error) { rejected = err }}, schemas.ResolveRequest{Decision: schemas.DecisionReassign})
	})
	s.signal(2*time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	_, err := s.result(t)
	require.NoError(t, err)
	require.ErrorContains(t, rejected, "not waiting for an operator")
}

// A robot that makes no progress (stuck in place, still reporting) is
// given up after Timings.StallTimeout.
func TestMissionFailsOverOnStall(t *testing.T) {
	s := newEnv(t)
	s.acts.handout = []string{"acme/AMR-001", "acme/AMR-002"}
	s.signal(time.Second, driving("A1", 0, 2))
	s.signal(Timings.StallTimeout/2, driving("A1", 0, 2)) // the same again: no progress
	done := on("acme/AMR-002", handed(finished(), 1))
	s.at(Timings.StallTimeout, func() { s.acts.mu.Lock(); s.acts.snapshot = &done; s.acts.mu.Unlock() })
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, "acme/AMR-002", r.RobotID)
}

// A robot whose connection stays lost past the grace is given up: a
// cancelOrder for when it comes back, and another robot goes on.
func TestMissionLostConnection(t *testing.T) {
	s := newEnv(t)
	s.acts.handout = []string{"acme/AMR-001", "acme/AMR-002"}
	s.signal(time.Second, driving("A1", 0, 2))
	s.signal(2*time.Second, schemas.RobotEvent{RobotID: "acme/AMR-001", Connection: "CONNECTIONBROKEN", OrderID: wfID})
	var mid schemas.MissionStatus
	s.at(2*time.Second+Timings.ConnectionGrace/2, func() { mid = s.status(t) })
	done := on("acme/AMR-002", handed(finished(), 1))
	s.at(2*time.Second+Timings.ConnectionGrace, func() { s.acts.mu.Lock(); s.acts.snapshot = &done; s.acts.mu.Unlock() })
	start := s.env.Now()
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, "acme/AMR-002", r.RobotID)
	require.Empty(t, mid.Handovers, "not given up within the grace")
	require.GreaterOrEqual(t, s.env.Now().Sub(start), 2*time.Second+Timings.ConnectionGrace)
	require.Equal(t, vda5050.ActionCancelOrder, s.acts.instant[0].ActionType, "cancelOrder, for when it comes back")
	require.Len(t, s.acts.releases, 2)
}

func TestMissionRobotRejectsOrder(t *testing.T) {
	s := newEnv(t)
	s.signal(time.Second, schemas.RobotEvent{RobotID: "acme/AMR-001", OrderID: "", Errors: []vda5050.Error{{
		ErrorType: "orderError", ErrorLevel: vda5050.ErrorWarning, ErrorDescription: "order is not executable while charging",
		ErrorReferences: []vda5050.Reference{{ReferenceKey: "orderId", ReferenceValue: wfID}}}}})
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	_, err := s.result(t)
	require.Equal(t, schemas.ErrRobotRejectedOrder, appErrType(err))
	require.Contains(t, err.Error(), "orderError")
	require.Len(t, s.acts.releases, 1)
	require.Len(t, s.acts.builds, 1, "only noRouteError is planned again")
}

func noRoute(updateID string) schemas.RobotEvent {
	return schemas.RobotEvent{RobotID: "acme/AMR-001", OrderID: "mission-earlier", Errors: []vda5050.Error{{
		ErrorType: "noRouteError", ErrorLevel: vda5050.ErrorWarning, ErrorDescription: "first node of new order not within deviation range",
		ErrorReferences: []vda5050.Reference{{ReferenceKey: "topic", ReferenceValue: "order"}, {ReferenceKey: "orderId", ReferenceValue: wfID},
			{ReferenceKey: "orderUpdateId", ReferenceValue: updateID}}}}}
}

// A vehicle refuses an order whose first node is not where it stands: the
// order is planned once more from the robot's reported position (with the
// next orderUpdateId, so the old refusal, still in the robot's errors, is
// not taken for a refusal of the new one).
func TestMissionReplansOnceAfterNoRoute(t *testing.T) {
	s := newEnv(t)
	s.signal(time.Second, noRoute("0"))
	ev := noRoute("0") // the old refusal lingers in the robot's state
	s.signal(2*time.Second, ev)
	done := finished()
	done.OrderUpdateID = 1
	s.signal(3*time.Second, done)
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Len(t, s.acts.builds, 2, "planned again from the robot's reported position")
	require.Equal(t, uint32(1), s.acts.builds[1].OrderUpdateID)
	require.Len(t, s.acts.orders, 2)
	require.Equal(t, uint32(1), s.acts.orders[1].Order.OrderUpdateID)
}

func TestMissionFailsWhenReplannedOrderIsRefusedToo(t *testing.T) {
	s := newEnv(t)
	s.signal(time.Second, noRoute("0"))
	s.signal(2*time.Second, noRoute("1"))
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	_, err := s.result(t)
	require.Equal(t, schemas.ErrRobotRejectedOrder, appErrType(err))
	require.Contains(t, err.Error(), "noRouteError")
	require.Len(t, s.acts.builds, 2)
	require.Len(t, s.acts.releases, 1)
}

func TestMissionReconcilesFromStoredState(t *testing.T) {
	s := newEnv(t)
	ev := finished()
	s.acts.snapshot = &ev // no signal ever arrives: the bridge lost it
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
}

func TestMissionBadSpecStartsNothing(t *testing.T) {
	for name, sp := range map[string]schemas.MissionSpec{
		"no steps":     {MissionID: "m-1", Site: "warehouse-a"},
		"bad action":   {MissionID: "m-1", Site: "warehouse-a", Steps: []schemas.MissionStep{{Station: "s", Action: "juggle"}}},
		"unknown stop": {MissionID: "m-1", Site: "warehouse-a", Steps: []schemas.MissionStep{{Station: "nowhere", Action: "pick"}}},
		"bad id":       {MissionID: "m 1", Site: "warehouse-a", Steps: []schemas.MissionStep{{Station: "s", Action: "pick"}}},
	} {
		t.Run(name, func(t *testing.T) {
			s := newEnv(t)
			s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: sp})
			_, err := s.result(t)
			require.Equal(t, schemas.ErrInvalidMission, appErrType(err))
			require.Empty(t, s.acts.reserves, "a rejected mission reserves nothing")
			require.Empty(t, s.acts.orders)
		})
	}
}

func TestMissionTimeout(t *testing.T) {
	s := newEnv(t)
	sp := spec()
	sp.TimeoutSeconds = 60
	s.signal(time.Second, driving("A1", 0, 2)) // the robot took the order, and never finishes
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: sp})
	_, err := s.result(t)
	require.Equal(t, schemas.ErrMissionTimeout, appErrType(err))
	require.Len(t, s.acts.releases, 1)
	require.Equal(t, vda5050.ActionCancelOrder, s.acts.instant[0].ActionType, "a timed-out mission stops the robot")
}

// updateCallbacks adapts the test environment's update callbacks.
type updateCallbacks struct {
	t          *testing.T
	onReject   func(error)
	onComplete func(any, error)
}

func (u *updateCallbacks) Accept() {}
func (u *updateCallbacks) Reject(err error) {
	if u.onReject != nil {
		u.onReject(err)
		return
	}
	u.t.Errorf("update rejected: %v", err)
}
func (u *updateCallbacks) Complete(success any, err error) {
	if u.onComplete != nil {
		u.onComplete(success, err)
	}
}

// A robot at speed 0 can finish before SendOrder returns; its events must
// not be lost while the send is in flight.
func TestMissionEventsDuringSendAreKept(t *testing.T) {
	s := newEnv(t)
	s.env.OnActivity(schemas.ActivitySendOrder, mock.Anything, mock.Anything).Return(func(ctx context.Context, in schemas.SendOrderInput) (schemas.SendResult, error) {
		s.env.SignalWorkflow(schemas.SignalRobotEvent, finished())
		return schemas.SendResult{}, nil
	})
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Less(t, s.env.Now().Sub(r.StartedAt), Timings.ReconcileAfter, "completed from the signal, not by reconciliation")
}

// cancelUpdate sends the cancel update at d and records its outcome.
type updateOutcome struct {
	done bool
	st   schemas.MissionStatus
	err  error
}

func (s *suite) update(t *testing.T, d time.Duration, name string, out *updateOutcome, args ...any) {
	s.at(d, func() {
		s.env.UpdateWorkflow(name, name+d.String(), &updateCallbacks{t: t, onComplete: func(v any, err error) {
			out.done, out.err = true, err
			if st, ok := v.(schemas.MissionStatus); ok {
				out.st = st
			}
		}}, args...)
	})
}

// The vehicle cannot read our instantActions (another dialect) and says so
// with a validationError naming topic and headerId: the cancel update fails
// with that reason, the mission goes on, and when the robot completes the
// order the mission says the cancel was not applied.
func TestMissionCancelRefusedByRobot(t *testing.T) {
	s := newEnv(t)
	var up updateOutcome
	s.signal(time.Second, driving("A1", 0, 2))
	s.update(t, 2*time.Second, schemas.UpdateCancel, &up, schemas.CancelRequest{Reason: "aisle blocked", By: "op"})
	s.at(3*time.Second, func() {
		ev := driving("B1", 2, 1)
		ev.Errors = []vda5050.Error{{ErrorType: "validationError", ErrorLevel: vda5050.ErrorWarning,
			ErrorDescription: "invalid instant actions: must have required property 'instantActions'",
			ErrorReferences:  []vda5050.Reference{{ReferenceKey: "topic", ReferenceValue: "instantActions"}, {ReferenceKey: "headerId", ReferenceValue: fmt.Sprint(s.acts.headerID)}}}}
		s.env.SignalWorkflow(schemas.SignalRobotEvent, ev)
	})
	var mid schemas.MissionStatus
	s.at(4*time.Second, func() { mid = s.status(t) })
	s.signal(5*time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.True(t, up.done)
	require.Error(t, up.err, "a refused cancel is never reported as done")
	require.Equal(t, schemas.ErrRobotRefused, appErrType(up.err))
	require.Contains(t, up.err.Error(), "validationError")
	require.Equal(t, schemas.MissionDriving, mid.State, "the mission goes on")
	require.Contains(t, mid.CancelNotApplied, "validationError")
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Contains(t, r.Reason, "cancel not applied: validationError")
	require.Contains(t, r.CancelNotApplied, "validationError")
}

// A cancel the robot never answers is not done: the update fails after the
// confirmation time and the mission goes on; a second cancel gets a new
// actionId, and a late FAILED of the first one does not count for it.
func TestMissionCancelNotConfirmedThenRetried(t *testing.T) {
	s := newEnv(t)
	var first, second updateOutcome
	s.signal(time.Second, driving("A1", 0, 2))
	s.update(t, 2*time.Second, schemas.UpdateCancel, &first, schemas.CancelRequest{Reason: "one"})
	s.update(t, 2*time.Second+Timings.ConfirmTimeout+5*time.Second, schemas.UpdateCancel, &second, schemas.CancelRequest{Reason: "two"})
	stale := driving("A1", 0, 2)
	stale.ActionStates = append(stale.ActionStates, vda5050.ActionState{ActionID: wfID + "#cancel-1", ActionStatus: vda5050.ActionFailed, ResultDescription: "late"})
	s.signal(2*time.Second+Timings.ConfirmTimeout+10*time.Second, stale)
	var between schemas.MissionStatus
	s.at(2*time.Second+Timings.ConfirmTimeout+15*time.Second, func() { between = s.status(t) })
	confirm := driving("A1", 0, 0)
	confirm.Driving = false
	confirm.ActionStates = append(confirm.ActionStates, vda5050.ActionState{ActionID: wfID + "#cancel-2", ActionStatus: vda5050.ActionFinished})
	s.signal(2*time.Second+Timings.ConfirmTimeout+20*time.Second, confirm)
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.True(t, first.done)
	require.ErrorContains(t, first.err, "did not confirm cancelOrder")
	require.Equal(t, schemas.MissionCancelling, between.State, "a FAILED of the first attempt does not answer the second")
	require.True(t, second.done)
	require.NoError(t, second.err)
	require.Equal(t, schemas.MissionCancelled, r.State)
	require.Equal(t, []string{wfID + "#cancel-1", wfID + "#cancel-2"}, s.acts.instantIDs())
	require.Len(t, s.acts.releases, 1)
}

// A cancel that reaches a robot that already finished: the mission is
// COMPLETED and the cancel update says it was not applied.
func TestMissionCompletedBeforeCancelTook(t *testing.T) {
	s := newEnv(t)
	var up updateOutcome
	s.signal(time.Second, driving("B1", 2, 1))
	s.update(t, 2*time.Second, schemas.UpdateCancel, &up, schemas.CancelRequest{})
	done := finished()
	done.ActionStates = append(done.ActionStates, vda5050.ActionState{ActionID: wfID + "#cancel-1", ActionStatus: vda5050.ActionFailed, ResultDescription: "no order to cancel"})
	s.signal(3*time.Second, done)
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Contains(t, r.Reason, "cancel not applied")
	require.True(t, up.done)
	require.ErrorContains(t, up.err, "ended COMPLETED, cancel not applied")
}

func TestMissionPauseRefusedByRobot(t *testing.T) {
	s := newEnv(t)
	var up updateOutcome
	s.signal(time.Second, driving("A1", 0, 2))
	s.update(t, 2*time.Second, schemas.UpdatePause, &up)
	s.at(3*time.Second, func() {
		ev := driving("A1", 0, 2)
		ev.Errors = []vda5050.Error{{ErrorType: "instantActionError", ErrorLevel: vda5050.ErrorWarning, ErrorDescription: "instant action is not executable: not supported",
			ErrorReferences: []vda5050.Reference{{ReferenceKey: "topic", ReferenceValue: "instantActions"}, {ReferenceKey: "actionId", ReferenceValue: wfID + "#startPause-1"}}}}
		s.env.SignalWorkflow(schemas.SignalRobotEvent, ev)
	})
	var mid schemas.MissionStatus
	s.at(4*time.Second, func() { mid = s.status(t) })
	s.signal(5*time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.True(t, up.done)
	require.Equal(t, schemas.ErrRobotRefused, appErrType(up.err))
	require.Contains(t, up.err.Error(), "not supported")
	require.Equal(t, schemas.MissionDriving, mid.State)
	require.False(t, mid.Paused)
	require.Equal(t, schemas.MissionCompleted, r.State)
}

// An order the robot's state never shows is sent again, same orderId and
// orderUpdateId, until it shows.
func TestMissionResendsUnacknowledgedOrder(t *testing.T) {
	s := newEnv(t)
	idle := schemas.RobotEvent{RobotID: "acme/AMR-001", OrderID: "mission-earlier", Connection: "ONLINE"}
	s.acts.snapshot = &idle // the stored state does not show the order either
	s.signal(Timings.OrderAckTimeout+2*time.Second, driving("A1", 0, 2))
	s.signal(Timings.OrderAckTimeout+3*time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Len(t, s.acts.orders, 2)
	require.Equal(t, s.acts.orders[0].Order, s.acts.orders[1].Order, "the same order again: the vehicle ignores a duplicate")
}

// A robot that never shows the order fails the mission cleanly once the
// resends are used up: cancelOrder to be safe, and the robot released.
func TestMissionRobotUnresponsive(t *testing.T) {
	s := newEnv(t)
	idle := schemas.RobotEvent{RobotID: "acme/AMR-001", OrderID: "mission-earlier", Connection: "ONLINE"}
	s.acts.snapshot = &idle
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	_, err := s.result(t)
	require.Equal(t, schemas.ErrRobotUnresponsive, appErrType(err))
	require.Len(t, s.acts.orders, 1+Timings.OrderResends)
	require.Contains(t, err.Error(), "never showed order")
	require.Len(t, s.acts.releases, 1)
	require.Equal(t, vda5050.ActionCancelOrder, s.acts.instant[0].ActionType)
	require.Less(t, s.env.Now().Sub(r0(t, s)), Timings.DefaultTimeout)
}

func r0(t *testing.T, s *suite) time.Time {
	var st schemas.MissionStatus
	v, err := s.env.QueryWorkflow(schemas.QueryStatus)
	require.NoError(t, err)
	require.NoError(t, v.Get(&st))
	return st.StartedAt
}

// A vehicle that still reports the previous order's lastNodeSequenceId
// right after taking a new one: no progress is made up from it.
func TestMissionIgnoresStaleSequenceID(t *testing.T) {
	s := newEnv(t)
	stale := driving("A1", 10, 2) // A1 is node 0 of this order, not node 5
	var mid schemas.MissionStatus
	s.signal(time.Second, stale)
	s.at(1500*time.Millisecond, func() { mid = s.status(t) })
	s.signal(2*time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, 0, mid.NodesDone, "lastNodeSequenceId 10 does not name A1 in this order")
	require.Equal(t, schemas.MissionCompleted, r.State)
}

// A registry that is down is waited out: the reservation is retried from
// the workflow (durable timers, status answered meanwhile) and the mission
// completes once it is back.
func TestMissionWaitsOutRegistryOutage(t *testing.T) {
	s := newEnv(t)
	s.acts.reserveDown = 40 // minutes of retries at the local activity's pace
	fin := finished()
	s.acts.snapshot = &fin // once the order is out, the stored state shows it done
	var mid schemas.MissionStatus
	s.at(time.Minute, func() { mid = s.status(t) })
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Equal(t, schemas.MissionValidating, mid.State, "status answers during the outage")
	require.Greater(t, len(s.acts.reserves), 1)
}

// A refusal is final at once: the mission fails and starts nothing.
func TestMissionRegistryRefusalIsFinal(t *testing.T) {
	s := newEnv(t)
	s.acts.reserveRefused = true
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	_, err := s.result(t)
	require.Equal(t, "StoreRefused", appErrType(err))
	require.Len(t, s.acts.reserves, 1)
	require.Empty(t, s.acts.orders)
	require.Equal(t, []string{"m-1"}, s.acts.cancelled, "a queue row it may have left is removed")
}

// A release that fails for a while is retried until it goes through.
func TestMissionRetriesRelease(t *testing.T) {
	s := newEnv(t)
	s.acts.releaseDown = 10
	s.signal(time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Len(t, s.acts.releases, 1, "released in the end")
	require.Equal(t, []string{"mission.completed"}, auditKinds(s.acts.audits, "mission."), "the end's row goes with the release, once")
}

// A release that fails until Timings.ReleaseTimeout is left to the
// Reaper, and the end's audit row, which would have gone in its
// transaction, is written on its own.
func TestMissionAuditsItsEndWhenTheReleaseNeverGoesThrough(t *testing.T) {
	s := newEnv(t)
	s.acts.releaseDown = 1 << 20
	s.signal(time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Empty(t, s.acts.releases)
	require.Equal(t, []string{"mission.completed"}, auditKinds(s.acts.audits, "mission."))
}

// auditKinds lists the kinds of audits with prefix, in order.
func auditKinds(audits []schemas.AuditInput, prefix string) []string {
	var kinds []string
	for _, a := range audits {
		if strings.HasPrefix(a.Kind, prefix) {
			kinds = append(kinds, a.Kind)
		}
	}
	return kinds
}

// Cancelled by Temporal while a local activity runs: the mission still
// stops the robot and releases it (cleanup on a disconnected context) and
// ends cancelled, not failed.
func TestMissionTemporalCancelDuringActivity(t *testing.T) {
	s := newEnv(t)
	s.env.OnActivity(schemas.ActivityBuildOrder, mock.Anything, mock.Anything).Return(func(ctx context.Context, in schemas.BuildOrderInput) (schemas.BuildOrderResult, error) {
		s.env.CancelWorkflow()
		return schemas.BuildOrderResult{}, errors.New("interrupted")
	})
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	require.True(t, s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	var ce *temporal.CanceledError
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Len(t, s.acts.releases, 1, "the robot is released however the workflow ends")
}

func at(ev schemas.RobotEvent, ts string) schemas.RobotEvent {
	ev.StateTimestamp = ts
	return ev
}

// A robot that loses its connection keeps driving its base (§4.1): the
// mission waits for it within the grace, and goes on when it is back
// (ONLINE again) or simply heard from (its own states keep coming: the
// CONNECTIONBROKEN was stale or spoofed).
func TestMissionConnectionGrace(t *testing.T) {
	for name, back := range map[string]schemas.RobotEvent{
		"ONLINE again": {RobotID: "acme/AMR-001", Connection: "ONLINE", OrderID: wfID, StateTimestamp: "2026-01-01T00:00:01.000Z"},
		"states keep coming": at(schemas.RobotEvent{RobotID: "acme/AMR-001", Connection: "CONNECTIONBROKEN", OrderID: wfID, LastNodeID: "B1",
			LastNodeSequenceID: 2, NodesRemaining: 1, EdgesRemaining: 1, Driving: true}, "2026-01-01T00:00:05.000Z"),
	} {
		t.Run(name, func(t *testing.T) {
			s := newEnv(t)
			s.signal(time.Second, at(driving("A1", 0, 2), "2026-01-01T00:00:01.000Z"))
			s.signal(2*time.Second, schemas.RobotEvent{RobotID: "acme/AMR-001", Connection: "CONNECTIONBROKEN", OrderID: wfID, StateTimestamp: "2026-01-01T00:00:01.000Z"})
			var lost, after schemas.MissionStatus
			s.at(3*time.Second, func() { lost = s.status(t) })
			s.signal(Timings.ConnectionGrace/2, back)
			s.at(Timings.ConnectionGrace/2+time.Second, func() { after = s.status(t) })
			s.signal(Timings.ConnectionGrace*2, at(finished(), "2026-01-01T00:01:00.000Z"))
			s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
			r, err := s.result(t)
			require.NoError(t, err)
			require.Equal(t, schemas.MissionCompleted, r.State)
			require.Contains(t, lost.ConnectionLost, "CONNECTIONBROKEN")
			require.Equal(t, schemas.MissionDriving, lost.State)
			require.Empty(t, after.ConnectionLost)
		})
	}
}

// A cancel confirmed only after the confirmation time (the bridge was
// down): the update has already said "not confirmed", but the mission
// still ends cancelled when the robot's FINISHED arrives.
func TestMissionLateCancelConfirmation(t *testing.T) {
	s := newEnv(t)
	var up updateOutcome
	s.signal(time.Second, driving("A1", 0, 2))
	s.update(t, 2*time.Second, schemas.UpdateCancel, &up, schemas.CancelRequest{Reason: "late"})
	late := driving("A1", 0, 0)
	late.Driving = false
	late.ActionStates[0].ActionStatus = vda5050.ActionFailed // the pick, cancelled with its order
	late.ActionStates[0].ResultDescription = "order cancelled"
	late.ActionStates = append(late.ActionStates, vda5050.ActionState{ActionID: wfID + "#cancel-1", ActionStatus: vda5050.ActionFinished})
	s.signal(2*time.Second+Timings.ConfirmTimeout+10*time.Second, late)
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.ErrorContains(t, up.err, "did not confirm")
	require.Equal(t, schemas.MissionCancelled, r.State)
}

// A cancelOrder that could not be published is not applied: the update
// says so and the mission goes on (it used to fail the mission and
// release a robot that was still driving its order).
func TestMissionCancelNotSentIsRefusedAndTheMissionGoesOn(t *testing.T) {
	s := newEnv(t)
	s.acts.instantDown = 1
	var up updateOutcome
	s.signal(time.Second, driving("A1", 0, 2))
	s.update(t, 2*time.Second, schemas.UpdateCancel, &up, schemas.CancelRequest{Reason: "test"})
	var mid schemas.MissionStatus
	s.at(3*time.Second, func() { mid = s.status(t) })
	s.signal(5*time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.True(t, up.done)
	require.Equal(t, schemas.ErrRobotRefused, appErrType(up.err))
	require.ErrorContains(t, up.err, "could not send cancelOrder")
	require.Equal(t, schemas.MissionDriving, mid.State)
	require.Contains(t, mid.CancelNotApplied, "broker unreachable")
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Len(t, s.acts.releases, 1)
}

// The robot is lost (connection broken past the grace) while a cancel
// waits for its confirmation: that cancel did not take. The mission
// neither hands over nor says CANCELLED: it fails, and the update says
// the cancel was not applied.
func TestMissionRobotLostBeforeConfirmingCancelIsNotCancelled(t *testing.T) {
	require.Less(t, Timings.ConnectionGrace, Timings.ConfirmTimeout, "the scenario: the grace ends before the confirmation time")
	s := newEnv(t)
	s.acts.handout = []string{"acme/AMR-001", "acme/AMR-002"}
	var up updateOutcome
	s.signal(time.Second, driving("A1", 0, 2))
	s.update(t, 2*time.Second, schemas.UpdateCancel, &up, schemas.CancelRequest{Reason: "test"})
	s.signal(3*time.Second, schemas.RobotEvent{RobotID: "acme/AMR-001", Connection: "CONNECTIONBROKEN", OrderID: wfID})
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.Error(t, err)
	require.Equal(t, schemas.ErrRobotDisconnected, appErrType(err))
	require.NotEqual(t, schemas.MissionCancelled, r.State)
	require.True(t, up.done)
	require.Equal(t, schemas.ErrRobotRefused, appErrType(up.err))
	require.ErrorContains(t, up.err, "cancel not applied")
	require.ErrorContains(t, up.err, "before it confirmed cancelOrder")
	require.Len(t, s.acts.reserves, 1, "no handover of a mission being cancelled")
	require.Len(t, s.acts.releases, 1)
	require.Equal(t, "mission.failed", s.acts.audits[len(s.acts.audits)-1].Kind)
}

// An order action that fails after a cancelOrder went unanswered proves
// nothing by itself: the mission fails (and stops the robot), it is not
// reported cancelled.
func TestMissionFailedActionAfterUnansweredCancelIsAFailure(t *testing.T) {
	s := newEnv(t)
	var up updateOutcome
	s.signal(time.Second, driving("A1", 0, 2))
	s.update(t, 2*time.Second, schemas.UpdateCancel, &up, schemas.CancelRequest{Reason: "test"})
	failed := driving("A1", 0, 2)
	failed.ActionStates[0].ActionStatus = vda5050.ActionFailed
	failed.ActionStates[0].ResultDescription = "no load at station"
	s.signal(2*time.Second+Timings.ConfirmTimeout+10*time.Second, failed)
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	_, err := s.result(t)
	require.Equal(t, schemas.ErrActionFailed, appErrType(err))
	require.ErrorContains(t, up.err, "did not confirm")
	ids := s.acts.instantIDs()
	require.Len(t, ids, 2)
	require.Contains(t, ids[1], "fail-cancel", "the failed mission stops the robot before it releases it")
	require.Equal(t, "mission.failed", s.acts.audits[len(s.acts.audits)-1].Kind)
}

// A late cancelOrder still running while the order's actions fail with
// it: its own end decides, here FINISHED, so the mission is cancelled.
func TestMissionLateCancelUnderwayDecidesByItsOwnEnd(t *testing.T) {
	s := newEnv(t)
	var up updateOutcome
	s.signal(time.Second, driving("A1", 0, 2))
	s.update(t, 2*time.Second, schemas.UpdateCancel, &up, schemas.CancelRequest{Reason: "late"})
	stopping := driving("A1", 0, 2)
	stopping.ActionStates[0].ActionStatus = vda5050.ActionFailed
	stopping.ActionStates = append(stopping.ActionStates, vda5050.ActionState{ActionID: wfID + "#cancel-1", ActionStatus: vda5050.ActionRunning})
	late := 2*time.Second + Timings.ConfirmTimeout + 10*time.Second
	s.signal(late, stopping)
	var mid schemas.MissionStatus
	s.at(late+time.Second, func() { mid = s.status(t) })
	stopped := driving("A1", 0, 0)
	stopped.Driving = false
	stopped.ActionStates[0].ActionStatus = vda5050.ActionFailed
	stopped.ActionStates = append(stopped.ActionStates, vda5050.ActionState{ActionID: wfID + "#cancel-1", ActionStatus: vda5050.ActionFinished})
	s.signal(late+2*time.Second, stopped)
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionDriving, mid.State, "undecided while the cancelOrder runs")
	require.Equal(t, schemas.MissionCancelled, r.State)
}

// A pause the robot never answers, and the mission's deadline comes
// first: the pause update returns and the workflow closes (the handler
// used to wait for an outcome m.fail never set, holding it open for ever).
func TestMissionPendingPauseDoesNotHoldTheEnd(t *testing.T) {
	s := newEnv(t)
	sp := spec()
	sp.TimeoutSeconds = 30
	var up updateOutcome
	s.signal(time.Second, driving("A1", 0, 2))
	s.update(t, 20*time.Second, schemas.UpdatePause, &up)
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: sp})
	_, err := s.result(t)
	require.Equal(t, schemas.ErrMissionTimeout, appErrType(err))
	require.True(t, up.done)
	require.ErrorContains(t, up.err, "before the robot confirmed startPause")
	require.Len(t, s.acts.releases, 1)
}

// A negative lastNodeSequenceId (the schema sets no minimum; anyone on
// the broker can publish one) is not an index.
func TestMissionNegativeSequenceIDIsIgnored(t *testing.T) {
	s := newEnv(t)
	s.signal(time.Second, driving("A1", -2, 2))
	s.signal(2*time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
}

// The failed robot cannot be released (the registry is down past the
// release time): no handover, for Reserve would hand the same robot
// back. The mission fails.
func TestMissionNoHandoverWhileTheFailedRobotIsHeld(t *testing.T) {
	s := newEnv(t)
	s.acts.handout = []string{"acme/AMR-001", "acme/AMR-002"}
	s.signal(time.Second, driving("A1", 0, 2))
	s.at(2*time.Second, func() {
		s.acts.mu.Lock()
		s.acts.releaseDown = 1 << 20
		s.acts.mu.Unlock()
		ev := driving("A1", 0, 2)
		ev.Errors = []vda5050.Error{{ErrorType: "laserScanner", ErrorLevel: vda5050.ErrorFatal}}
		s.env.SignalWorkflow(schemas.SignalRobotEvent, ev)
	})
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	_, err := s.result(t)
	require.Equal(t, schemas.ErrRobotFatal, appErrType(err))
	require.ErrorContains(t, err, "no handover")
	require.Len(t, s.acts.reserves, 1)
}

// A Temporal cancellation (Web UI) while the robot drives: CANCELLED only
// once the robot confirms its cancelOrder; without a confirmation the
// mission ends FAILED with the cancel not applied (the workflow still
// closes as cancelled).
func TestMissionTemporalCancelWaitsForTheRobot(t *testing.T) {
	for name, answer := range map[string]string{"confirmed": "confirmed", "not confirmed": "did not confirm cancelOrder", "refused": "refused cancelOrder: busy"} {
		confirm := answer == "confirmed"
		t.Run(name, func(t *testing.T) {
			s := newEnv(t)
			s.signal(time.Second, driving("A1", 0, 2))
			stored := driving("A1", 0, 2)
			if confirm {
				stored.Driving, stored.NodesRemaining, stored.EdgesRemaining = false, 0, 0
				stored.ActionStates = append(stored.ActionStates, vda5050.ActionState{ActionID: wfID + "#wf-cancel-1", ActionStatus: vda5050.ActionFinished})
			}
			if name == "refused" { // FAILED while it still drives the order
				stored.ActionStates = append(stored.ActionStates, vda5050.ActionState{ActionID: wfID + "#wf-cancel-1", ActionStatus: vda5050.ActionFailed, ResultDescription: "busy"})
			}
			s.acts.snapshot = &stored
			s.at(2*time.Second, func() { s.env.CancelWorkflow() })
			s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
			_, err := s.result(t)
			var ce *temporal.CanceledError
			require.True(t, errors.As(err, &ce), "%v", err)
			st := s.status(t)
			require.Equal(t, []string{wfID + "#wf-cancel-1"}, s.acts.instantIDs())
			require.Len(t, s.acts.releases, 1, "the robot is released however the workflow ends")
			if confirm {
				require.Equal(t, schemas.MissionCancelled, st.State)
				require.Empty(t, st.CancelNotApplied)
				return
			}
			require.Equal(t, schemas.MissionFailed, st.State)
			require.Contains(t, st.CancelNotApplied, answer)
			require.Equal(t, "mission.failed", s.acts.audits[len(s.acts.audits)-1].Kind)
		})
	}
}

// A late cancelOrder the robot turned down (FAILED while it still held the
// order) is decided once: when the robot later leaves the order for its
// own reason (an order action fails), that stale FAILED is no
// confirmation, and the mission fails rather than calls itself cancelled.
func TestMissionLateCancelRefusalIsDecidedOnce(t *testing.T) {
	s := newEnv(t)
	var up updateOutcome
	s.signal(time.Second, driving("A1", 0, 2))
	s.update(t, 2*time.Second, schemas.UpdateCancel, &up, schemas.CancelRequest{Reason: "late"})
	late := 2*time.Second + Timings.ConfirmTimeout + 10*time.Second
	refused := driving("B1", 2, 1)
	refused.ActionStates = append(refused.ActionStates, vda5050.ActionState{ActionID: wfID + "#cancel-1", ActionStatus: vda5050.ActionFailed, ResultDescription: "not now"})
	s.signal(late, refused)
	own := driving("C1", 4, 0)
	own.Driving = false
	own.ActionStates[0].ActionStatus = vda5050.ActionFinished
	own.ActionStates[1].ActionStatus = vda5050.ActionFailed
	own.ActionStates[1].ResultDescription = "rack full"
	own.ActionStates = append(own.ActionStates, refused.ActionStates[2])
	s.signal(late+5*time.Second, own)
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	_, err := s.result(t)
	require.Equal(t, schemas.ErrActionFailed, appErrType(err), "%v", err)
	require.ErrorContains(t, err, "rack full")
}

// The stored state still shows another order (this one may still be on
// its way to the robot): no proof that the robot stopped, so a Temporal
// cancellation is not called CANCELLED.
func TestMissionTemporalCancelIsNotConfirmedByAnotherOrder(t *testing.T) {
	s := newEnv(t)
	old := schemas.RobotEvent{RobotID: "acme/AMR-001", OrderID: "mission-before", LastNodeID: "A1"}
	s.acts.snapshot = &old
	s.at(500*time.Millisecond, func() { s.env.CancelWorkflow() })
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	_, err := s.result(t)
	var ce *temporal.CanceledError
	require.True(t, errors.As(err, &ce), "%v", err)
	st := s.status(t)
	require.Equal(t, schemas.MissionFailed, st.State)
	require.Contains(t, st.CancelNotApplied, "did not confirm cancelOrder")
}

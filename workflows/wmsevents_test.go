package workflows

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// pickDone is the robot at B1 with the pick finished and the drop to come.
func pickDone() schemas.RobotEvent {
	ev := driving("B1", 2, 1)
	ev.ActionStates[0].ActionStatus = vda5050.ActionFinished
	return ev
}

// A WMS client with a webhook hears every state change of its mission in
// the order it happened: queued, assigned, picked, delivered, completed.
func TestMissionEventsReachTheWMS(t *testing.T) {
	s := newEnv(t)
	s.acts.queued = 1
	s.at(time.Second, func() { s.env.SignalWorkflow(schemas.SignalRobotAvailable, nil) })
	s.signal(2*time.Second, driving("A1", 0, 2))
	s.signal(3*time.Second, pickDone())
	s.signal(4*time.Second, finished())
	sp := spec()
	sp.Load = &schemas.Load{LoadID: "pallet-7"}
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: sp, RequestedBy: "acme-wms", Client: "acme-wms"})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Equal(t, []string{"queued", "assigned", "picked", "delivered", "completed"}, s.acts.webhookKinds())
	ids := map[string]bool{}
	for i, w := range s.acts.webhooks {
		d := w.Event.Data
		require.Equal(t, "acme-wms", w.Client)
		require.Equal(t, i+1, d.Sequence)
		require.Equal(t, "m-1", d.MissionID)
		require.True(t, strings.HasPrefix(w.Event.ID, wfID+"/"), w.Event.ID)
		require.False(t, ids[w.Event.ID], "event IDs are unique")
		ids[w.Event.ID] = true
	}
	q, picked, delivered, done := s.acts.webhooks[0].Event.Data, s.acts.webhooks[2].Event.Data, s.acts.webhooks[3].Event.Data, s.acts.webhooks[4].Event.Data
	require.Equal(t, 2, q.QueuePosition)
	require.Equal(t, schemas.MissionQueued, q.State)
	require.Equal(t, "acme/AMR-001", s.acts.webhooks[1].Event.Data.RobotID)
	require.Equal(t, 0, *picked.Step)
	require.Equal(t, "inbound-1", picked.Station)
	require.Equal(t, "pallet-7", picked.LoadID)
	require.Equal(t, 1, *delivered.Step)
	require.Equal(t, "drop", delivered.Action)
	require.Equal(t, schemas.MissionCompleted, done.State)
	require.True(t, s.acts.webhooks[4].Event.Terminal())
}

// A receiver that is down does not hold the mission up: it ends when the
// robot is done, and the events are delivered, in order, once the
// receiver is back.
func TestMissionEventsWaitForTheReceiver(t *testing.T) {
	s := newEnv(t)
	s.acts.webhookDown = 8 // ~2 minutes of backoff
	s.signal(time.Second, pickDone())
	s.signal(2*time.Second, finished())
	var endedAt time.Time
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec(), Client: "acme-wms"})
	r, err := s.result(t)
	require.NoError(t, err)
	endedAt = r.FinishedAt
	require.Less(t, endedAt.Sub(r.StartedAt), 10*time.Second, "the mission did not wait for the receiver")
	require.Equal(t, []string{"assigned", "picked", "delivered", "completed"}, s.acts.webhookKinds())
}

// A receiver that refuses every event (4xx) costs the mission nothing; each
// event is given up and audited.
func TestMissionEventsRejectedAreGivenUp(t *testing.T) {
	s := newEnv(t)
	s.acts.webhookRejects = true
	s.signal(time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec(), Client: "acme-wms"})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	var gaveUp int
	for _, a := range s.acts.audits {
		if a.Kind == "wms.delivery.gave_up" {
			gaveUp++
			require.Equal(t, "acme-wms", a.Actor)
		}
	}
	require.Equal(t, 4, gaveUp, "assigned, picked, delivered and completed each given up once")
}

// A cancelled mission ends with a cancelled event carrying the reason.
func TestMissionEventsCancelled(t *testing.T) {
	s := newEnv(t)
	s.acts.queued = 100
	s.at(time.Second, func() {
		s.env.UpdateWorkflow(schemas.UpdateCancel, "u1", &updateCallbacks{t: t}, schemas.CancelRequest{Reason: "wms withdrew", By: "acme-wms"})
	})
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec(), Client: "acme-wms"})
	_, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, []string{"queued", "cancelled"}, s.acts.webhookKinds())
	require.Contains(t, s.acts.webhooks[1].Event.Data.Reason, "wms withdrew")
}

// WMSEvents on its own: events signalled after the first batch are
// delivered in order, and it ends after the terminal one.
func TestWMSEventsOrderAndEnd(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	acts := &fakeActivities{webhookDown: 3}
	env.RegisterWorkflowWithOptions(WMSEvents, workflow.RegisterOptions{Name: schemas.WMSEventsWorkflowType})
	env.RegisterActivity(acts)
	ev := func(seq int, kind string) schemas.WMSEvent {
		return schemas.WMSEvent{ID: wfID + "/r/" + string(rune('0'+seq)), Kind: kind, Data: schemas.WMSEventData{MissionID: "m-1", Sequence: seq}}
	}
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(schemas.SignalWMSEvents, []schemas.WMSEvent{ev(2, "assigned"), ev(3, "picked")})
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(schemas.SignalWMSEvents, []schemas.WMSEvent{ev(4, "failed")})
	}, time.Hour)
	env.ExecuteWorkflow(WMSEvents, schemas.WMSEventsInput{Client: "acme-wms", MissionID: "m-1", Events: []schemas.WMSEvent{ev(1, "queued")}})
	require.True(t, env.IsWorkflowCompleted())
	var res schemas.WMSEventsResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, 4, res.Delivered)
	require.Empty(t, res.GaveUp)
	require.False(t, res.Unfinished)
	require.Equal(t, []string{"queued", "assigned", "picked", "failed"}, acts.webhookKinds())
}

// Without a terminal event (the mission was terminated), WMSEvents ends
// after the idle timeout and says so.
func TestWMSEventsIdleEnds(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	acts := &fakeActivities{}
	env.RegisterWorkflowWithOptions(WMSEvents, workflow.RegisterOptions{Name: schemas.WMSEventsWorkflowType})
	env.RegisterActivity(acts)
	env.ExecuteWorkflow(WMSEvents, schemas.WMSEventsInput{Client: "acme-wms", MissionID: "m-1", Events: []schemas.WMSEvent{{ID: "e1", Kind: "assigned"}}})
	var res schemas.WMSEventsResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.True(t, res.Unfinished)
	require.Equal(t, 1, res.Delivered)
}

// wms-event.schema.json's state enum lists exactly the mission states.
func TestWMSEventSchemaStates(t *testing.T) {
	var doc struct {
		Properties struct {
			State struct {
				Enum []string `json:"enum"`
			} `json:"state"`
		} `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(schemas.WMSEventSchema, &doc))
	states := []string{schemas.MissionValidating, schemas.MissionQueued, schemas.MissionReserved, schemas.MissionDriving, schemas.MissionPaused, schemas.MissionCancelling,
		schemas.MissionAwaitingOperator, schemas.MissionCompleted, schemas.MissionCancelled, schemas.MissionFailed}
	require.ElementsMatch(t, states, doc.Properties.State.Enum)
}

// A mission the workers refuse before PlanMission said whether its client
// has a webhook (here: an unknown station) still tells that client it
// failed: the WMS had a 201 for it.
func TestMissionRefusedByTheWorkersStillTellsTheWMS(t *testing.T) {
	s := newEnv(t)
	sp := spec()
	sp.Steps[0].Station = "nowhere"
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: sp, Client: "acme-wms"})
	_, err := s.result(t)
	require.Equal(t, schemas.ErrInvalidMission, appErrType(err))
	require.Equal(t, []string{"failed"}, s.acts.webhookKinds())

	// A client without a webhook: nothing is sent, nothing started.
	s = newEnv(t)
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: sp, Client: "polling-wms"})
	_, err = s.result(t)
	require.Equal(t, schemas.ErrInvalidMission, appErrType(err))
	require.Empty(t, s.acts.webhookKinds())
	for _, a := range s.acts.audits {
		require.NotEqual(t, "wms.delivery.gave_up", a.Kind)
	}
}

// The mission's webhook deliveries end early (here: a WMSEvents that
// returns at once), so later events cannot be handed on: they are not
// lost without a trace, each is audited as given up.
func TestMissionEventsThatCannotBeHandedOnAreAudited(t *testing.T) {
	s := &suite{acts: &fakeActivities{}}
	s.SetLogger(nil)
	s.env = s.NewTestWorkflowEnvironment()
	s.env.SetStartWorkflowOptions(clientOptions(wfID))
	s.env.RegisterWorkflow(Mission)
	s.env.RegisterWorkflowWithOptions(WMSEvents, workflow.RegisterOptions{Name: schemas.WMSEventsWorkflowType})
	s.env.OnWorkflow(schemas.WMSEventsWorkflowType, mock.Anything, mock.Anything).Return(schemas.WMSEventsResult{}, nil)
	s.env.RegisterActivity(s.acts)
	s.signal(time.Second, pickDone())
	s.signal(2*time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec(), Client: "acme-wms"})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	var dropped []string
	for _, a := range s.acts.audits {
		if a.Kind == "wms.delivery.gave_up" {
			dropped = append(dropped, fmt.Sprint(a.Details["kind"]))
		}
	}
	require.Equal(t, []string{"picked", "delivered", "completed"}, dropped)
}

package workflows

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// partsOrder is the fake BuildOrder of parts tests: step i's station is
// node S<i>; a new order starts at START, an update at its stitching node;
// one action per step, but none for a held last step.
func partsOrder(in schemas.BuildOrderInput) schemas.BuildOrderResult {
	to := len(in.Spec.Steps)
	if in.ToStep != 0 {
		to = in.ToStep
	}
	nodes := []string{"START"}
	if in.StitchNode != "" {
		nodes = []string{in.StitchNode}
	}
	var actions []string
	for i := in.FromStep; i < to; i++ {
		if n := fmt.Sprintf("S%d", i); nodes[len(nodes)-1] != n {
			nodes = append(nodes, n)
		}
		if !(in.HoldLast && i == to-1) {
			actions = append(actions, fmt.Sprintf("%s-a%d-%s", in.OrderID, i, in.Spec.Steps[i].Action))
		}
	}
	return schemas.BuildOrderResult{Order: vda5050.Order{OrderID: in.OrderID, OrderUpdateID: in.OrderUpdateID}, NodeIDs: nodes, ActionIDs: actions}
}

// standing is the robot standing at node (its sequenceId seq) with every action
// listed finished, having taken orderUpdateId upd.
func standing(node string, seq int, upd uint32, finished ...string) schemas.RobotEvent {
	ev := schemas.RobotEvent{RobotID: "acme/AMR-001", OrderID: wfID, OrderUpdateID: upd, LastNodeID: node, LastNodeSequenceID: seq}
	for _, a := range finished {
		ev.ActionStates = append(ev.ActionStates, vda5050.ActionState{ActionID: wfID + "-" + a, ActionStatus: vda5050.ActionFinished})
	}
	return ev
}

func waitSpec(signal, onTimeout string) schemas.MissionSpec {
	sp := spec()
	sp.Load = &schemas.Load{LoadID: "PAL-1"}
	sp.Steps[0].WaitFor = schemas.WaitFor{Signal: signal, TimeoutSeconds: 60, OnTimeout: onTimeout}
	return sp
}

// loadReady at the pick: the robot drives to the station without the pick,
// waits there (AWAITING_WMS), and the signal sends the rest as an order
// update stitched at the station, the pick first.
func TestMissionWaitsForLoadReady(t *testing.T) {
	s := newEnv(t)
	s.acts.parts = true
	s.signal(time.Second, standing("S0", 2, 0))
	var waiting schemas.MissionStatus
	s.at(5*time.Second, func() { waiting = s.status(t) })
	s.at(10*time.Second, func() {
		s.env.SignalWorkflow(schemas.SignalLoadReady, schemas.LoadSignal{LoadID: "PAL-1", By: "conveyor-7"})
	})
	s.signal(12*time.Second, standing("S1", 4, 1, "a0-pick", "a1-drop"))
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: waitSpec(schemas.SignalLoadReady, "")})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Equal(t, schemas.MissionAwaitingWMS, waiting.State)
	require.Contains(t, waiting.WaitingFor, "loadReady for step 1 (inbound-1)")
	require.Len(t, s.acts.builds, 2)
	require.Equal(t, 1, s.acts.builds[0].ToStep)
	require.True(t, s.acts.builds[0].HoldLast)
	b := s.acts.builds[1]
	require.Equal(t, 0, b.FromStep, "the update starts with the held pick")
	require.Equal(t, "S0", b.StitchNode)
	require.Equal(t, 2, b.StitchSequenceID)
	require.Equal(t, uint32(1), b.OrderUpdateID)
	require.Len(t, s.acts.orders, 2)
	require.Equal(t, 3, r.NodesTotal)
	require.Empty(t, s.acts.instant, "no cancelOrder or other instant action")
}

// A signal sent before the robot arrives is kept: the update goes out at
// once and the robot never waits. A signal for another load is ignored.
func TestMissionEarlyLoadReadyDoesNotStop(t *testing.T) {
	s := newEnv(t)
	s.acts.parts = true
	s.at(500*time.Millisecond, func() { s.env.SignalWorkflow(schemas.SignalLoadReady, schemas.LoadSignal{LoadID: "PAL-9"}) })
	s.at(time.Second, func() { s.env.SignalWorkflow(schemas.SignalLoadReady, schemas.LoadSignal{LoadID: "PAL-1"}) })
	var before schemas.MissionStatus
	s.at(1500*time.Millisecond, func() { before = s.status(t) })
	ack := standing("START", 0, 0)
	ack.NodesRemaining, ack.EdgesRemaining, ack.Driving = 1, 1, true
	s.signal(1600*time.Millisecond, ack) // the robot's state shows the first order
	var mid schemas.MissionStatus
	s.at(2*time.Second, func() { mid = s.status(t) })
	s.signal(3*time.Second, standing("S0", 2, 0)) // the old part done: not the end
	var after schemas.MissionStatus
	s.at(3500*time.Millisecond, func() { after = s.status(t) })
	s.signal(4*time.Second, standing("S1", 4, 1, "a0-pick", "a1-drop"))
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: waitSpec(schemas.SignalLoadReady, "")})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Zero(t, before.OrderUpdates, "nothing is stitched onto an order the robot has not shown yet")
	require.Equal(t, schemas.MissionDriving, mid.State)
	require.Equal(t, schemas.MissionDriving, after.State, "a state of the order before its update is not the end")
	require.Equal(t, 1, mid.OrderUpdates)
	require.Len(t, mid.IgnoredSignals, 1)
	require.Contains(t, mid.IgnoredSignals[0], "PAL-9")
	require.Len(t, mid.Signals, 1)
}

func TestMissionLoadSignalTimeout(t *testing.T) {
	t.Run("fail", func(t *testing.T) {
		s := newEnv(t)
		s.acts.parts = true
		s.signal(time.Second, standing("S0", 2, 0))
		s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: waitSpec(schemas.SignalLoadReady, schemas.OnTimeoutFail)})
		_, err := s.result(t)
		require.Error(t, err)
		require.Equal(t, schemas.ErrWMSTimeout, appErrType(err))
		require.ErrorContains(t, err, "no loadReady for step 1 (inbound-1) within 1m0s")
		require.Len(t, s.acts.releases, 1)
	})
	t.Run("skip", func(t *testing.T) {
		s := newEnv(t)
		s.acts.parts = true
		s.signal(time.Second, standing("S0", 2, 0))
		s.signal(2*time.Minute, standing("S1", 4, 1, "a1-drop"))
		s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: waitSpec(schemas.SignalLoadReady, schemas.OnTimeoutSkip)})
		r, err := s.result(t)
		require.NoError(t, err)
		require.Equal(t, schemas.MissionCompleted, r.State)
		require.Equal(t, 1, s.acts.builds[1].FromStep, "the pick is left out")
		st := s.status(t)
		require.Len(t, st.Skipped, 1)
	})
}

// loadTaken on the last step: the robot drops, then waits until the WMS
// says the load was taken; a cancel meanwhile ends the mission without a
// cancelOrder (the robot has nothing left to stop).
func TestMissionLoadTakenAndCancelWhileWaiting(t *testing.T) {
	s := newEnv(t)
	s.acts.parts = true
	sp := spec()
	sp.Steps[1].WaitFor = schemas.WaitFor{Signal: schemas.SignalLoadTaken, TimeoutSeconds: 600}
	s.signal(time.Second, standing("S1", 4, 0, "a0-pick", "a1-drop"))
	var waiting schemas.MissionStatus
	s.at(2*time.Second, func() { waiting = s.status(t) })
	s.at(3*time.Second, func() {
		s.env.UpdateWorkflow(schemas.UpdateCancel, "c1", &updateCallbacks{t: t, onComplete: func(v any, err error) { require.NoError(t, err) }}, schemas.CancelRequest{Reason: "shift over"})
	})
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: sp})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionAwaitingWMS, waiting.State)
	require.Zero(t, s.acts.builds[0].ToStep, "the part ends with the last step")
	require.False(t, s.acts.builds[0].HoldLast, "loadTaken is waited for after the drop")
	require.Equal(t, schemas.MissionCancelled, r.State)
	require.Empty(t, s.acts.instant)
	require.Len(t, s.acts.releases, 1)

	s = newEnv(t)
	s.acts.parts = true
	s.signal(time.Second, standing("S1", 4, 0, "a0-pick", "a1-drop"))
	s.at(3*time.Second, func() { s.env.SignalWorkflow(schemas.SignalLoadTaken, schemas.LoadSignal{}) })
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: sp})
	r, err = s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Len(t, s.acts.orders, 1, "nothing left to drive after the last step")
}

// Update append while the robot drives: the new steps go out at once as an
// order update stitched onto the last node; the robot finishing the old
// part is not the end; bad steps are refused.
func TestMissionAppendWhileDriving(t *testing.T) {
	s := newEnv(t)
	s.acts.parts = true
	var got schemas.MissionStatus
	var refused error
	ack := standing("START", 0, 0)
	ack.NodesRemaining, ack.EdgesRemaining, ack.Driving = 1, 1, true
	s.signal(500*time.Millisecond, ack)
	s.at(time.Second, func() {
		s.env.UpdateWorkflow(schemas.UpdateAppend, "a1", &updateCallbacks{t: t, onComplete: func(v any, err error) {
			require.NoError(t, err)
			got = v.(schemas.MissionStatus)
		}}, schemas.AppendRequest{Steps: []schemas.MissionStep{{Station: "inbound-2", Action: "pick"}, {Station: "rack-2", Action: "drop"}}, By: "wms-a"})
	})
	s.at(1500*time.Millisecond, func() {
		s.env.UpdateWorkflow(schemas.UpdateAppend, "a2", &updateCallbacks{t: t, onReject: func(err error) { refused = err }}, schemas.AppendRequest{Steps: []schemas.MissionStep{{Station: "x", Action: "fly"}}})
	})
	s.signal(3*time.Second, standing("S1", 4, 0, "a0-pick", "a1-drop"))
	s.signal(4*time.Second, standing("S3", 8, 1, "a0-pick", "a1-drop", "a2-pick", "a3-drop"))
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.Equal(t, 5, r.NodesTotal)
	require.Equal(t, 5, r.NodesDone)
	require.Equal(t, 1, got.OrderUpdates)
	b := s.acts.builds[1]
	require.Equal(t, 2, b.FromStep)
	require.Equal(t, "S1", b.StitchNode)
	require.Equal(t, 4, b.StitchSequenceID)
	require.Len(t, s.acts.orders, 2)
	require.ErrorContains(t, refused, `action "fly"`)
}

// Append refused by the site map leaves the mission as it was.
func TestMissionAppendRefusedByMap(t *testing.T) {
	s := newEnv(t)
	s.acts.parts = true
	var failed error
	s.at(time.Second, func() {
		s.env.UpdateWorkflow(schemas.UpdateAppend, "a1", &updateCallbacks{t: t, onComplete: func(v any, err error) { failed = err }},
			schemas.AppendRequest{Steps: []schemas.MissionStep{{Station: "nowhere", Action: "drop"}}})
	})
	s.signal(2*time.Second, standing("S1", 4, 0, "a0-pick", "a1-drop"))
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.ErrorContains(t, failed, "append refused")
	require.Equal(t, schemas.ErrInvalidMission, appErrType(failed))
	require.Len(t, s.acts.orders, 1)
	require.Equal(t, 3, r.NodesTotal)
}

// A robot that refuses an order update still drives the part it accepted
// before: the mission fails, stops the robot (cancelOrder) and releases it.
func TestMissionRefusedOrderUpdateStopsTheRobot(t *testing.T) {
	s := newEnv(t)
	s.acts.parts = true
	ack := standing("START", 0, 0)
	ack.NodesRemaining, ack.EdgesRemaining, ack.Driving = 1, 1, true
	s.signal(500*time.Millisecond, ack)
	s.at(time.Second, func() { s.env.SignalWorkflow(schemas.SignalLoadReady, schemas.LoadSignal{LoadID: "PAL-1"}) })
	refused := ack
	refused.Errors = []vda5050.Error{{ErrorType: "orderUpdateError", ErrorLevel: vda5050.ErrorWarning, ErrorDescription: "update refused",
		ErrorReferences: []vda5050.Reference{{ReferenceKey: "orderId", ReferenceValue: wfID}, {ReferenceKey: "orderUpdateId", ReferenceValue: "1"}}}}
	s.signal(2*time.Second, refused)
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: waitSpec(schemas.SignalLoadReady, "")})
	_, err := s.result(t)
	require.Error(t, err)
	require.Equal(t, schemas.ErrRobotRejectedOrder, appErrType(err))
	require.Len(t, s.acts.orders, 2, "the order, then its update")
	ids := s.acts.instantIDs()
	require.Len(t, ids, 1)
	require.Contains(t, ids[0], "fail-cancel", "the robot is told to stop the part it drives")
	require.Len(t, s.acts.releases, 1)
}

package workflows

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/fleetflow/fleetflow/schemas"
)

// A queued mission's priority changes with update reprioritize: the next
// reservation asks with the new priority (the registry moves it in line)
// and the update answers the new queue position; once the mission has a
// robot, reprioritize is refused.
func TestMissionReprioritizeWhileQueued(t *testing.T) {
	s := newEnv(t)
	s.acts.queued = 2
	var got schemas.MissionStatus
	var gotErr error
	s.at(time.Second, func() {
		s.env.UpdateWorkflow(schemas.UpdateReprioritize, "r1", &updateCallbacks{t: t, onComplete: func(v any, err error) {
			gotErr = err
			if v != nil {
				got = v.(schemas.MissionStatus)
			}
		}}, schemas.ReprioritizeRequest{Priority: 90, Reason: "truck leaves at 14:00", By: "wms-a"})
	})
	var refused error
	s.at(Timings.RequeueAfter*3, func() {
		s.env.UpdateWorkflow(schemas.UpdateReprioritize, "r2", &updateCallbacks{t: t, onReject: func(err error) { refused = err }}, schemas.ReprioritizeRequest{Priority: 1})
	})
	var bad error
	s.at(2*time.Second, func() {
		s.env.UpdateWorkflow(schemas.UpdateReprioritize, "r3", &updateCallbacks{t: t, onReject: func(err error) { bad = err }}, schemas.ReprioritizeRequest{Priority: 101})
	})
	s.signal(Timings.RequeueAfter*3+time.Second, finished())
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec()})
	r, err := s.result(t)
	require.NoError(t, err)
	require.Equal(t, schemas.MissionCompleted, r.State)
	require.NoError(t, gotErr)
	require.Equal(t, 90, got.Priority)
	require.Equal(t, schemas.MissionQueued, got.State)
	require.Equal(t, 2, got.QueuePosition)
	require.Equal(t, 5, s.acts.reserves[0].Priority)
	require.Equal(t, 90, s.acts.reserves[1].Priority, "the reservation is asked again at once, with the new priority")
	require.Len(t, s.acts.reserves, 3)
	require.ErrorContains(t, refused, "only orders missions waiting for a robot")
	require.ErrorContains(t, bad, "priority 101: want 0 to 100")
	var audited bool
	for _, a := range s.acts.audits {
		if a.Kind == "mission.reprioritized" {
			audited = true
			require.Equal(t, "wms-a", a.Actor)
			require.Equal(t, 90, a.Details["to"])
		}
	}
	require.True(t, audited)
}

// Update accept answers the mission's own spec with its status and
// refuses another spec under the same mission ID.
func TestMissionAccept(t *testing.T) {
	s := newEnv(t)
	s.acts.queued = 100
	var first, again schemas.AcceptResult
	var conflict error
	s.at(0, func() {
		s.env.UpdateWorkflow(schemas.UpdateAccept, "a1", &updateCallbacks{t: t, onComplete: func(v any, err error) { require.NoError(t, err); first = v.(schemas.AcceptResult) }}, schemas.AcceptRequest{Spec: spec(), Client: "acme-wms"})
	})
	s.at(time.Second, func() {
		s.env.UpdateWorkflow(schemas.UpdateAccept, "a2", &updateCallbacks{t: t, onComplete: func(v any, err error) { require.NoError(t, err); again = v.(schemas.AcceptResult) }}, schemas.AcceptRequest{Spec: spec(), Client: "acme-wms"})
	})
	other := spec()
	other.Steps[1].Station = "rack-2"
	s.at(2*time.Second, func() {
		s.env.UpdateWorkflow(schemas.UpdateAccept, "a3", &updateCallbacks{t: t, onReject: func(err error) { conflict = err }}, schemas.AcceptRequest{Spec: other, Client: "acme-wms"})
	})
	s.at(3*time.Second, func() {
		s.env.UpdateWorkflow(schemas.UpdateCancel, "c", &updateCallbacks{t: t}, schemas.CancelRequest{Reason: "done testing"})
	})
	s.env.ExecuteWorkflow(Mission, schemas.MissionInput{Spec: spec(), Client: "acme-wms"})
	_, err := s.result(t)
	require.NoError(t, err)
	require.True(t, first.Created, "the accept that came with the start")
	require.False(t, again.Created)
	require.Equal(t, "m-1", again.Status.MissionID)
	var ae *temporal.ApplicationError
	require.True(t, errors.As(conflict, &ae), "%v", conflict)
	require.Equal(t, schemas.ErrMissionConflict, ae.Type())
}

// SameSpec compares every field but the priority: changing any one of them
// makes another mission. A field added to MissionSpec fails here until
// SameSpec and this test know it.
func TestSameSpecComparesEveryField(t *testing.T) {
	base := spec()
	base.RequiredCapabilities = []string{"lift"}
	base.Load = &schemas.Load{LoadID: "p-1", LoadType: "EPAL"}
	base.TimeoutSeconds, base.RequestedBy = 600, "wms-a"
	changes := map[string]func(*schemas.MissionSpec){
		"MissionID":            func(s *schemas.MissionSpec) { s.MissionID = "m-2" },
		"Site":                 func(s *schemas.MissionSpec) { s.Site = "b" },
		"RequiredCapabilities": func(s *schemas.MissionSpec) { s.RequiredCapabilities = nil },
		"MinBattery":           func(s *schemas.MissionSpec) { s.MinBattery = 50 },
		"InterruptCharging":    func(s *schemas.MissionSpec) { s.InterruptCharging = true },
		"Load":                 func(s *schemas.MissionSpec) { s.Load = &schemas.Load{LoadID: "p-2"} },
		"Steps":                func(s *schemas.MissionSpec) { s.Steps = s.Steps[:1] },
		"TimeoutSeconds":       func(s *schemas.MissionSpec) { s.TimeoutSeconds = 1 },
		"RequestedBy":          func(s *schemas.MissionSpec) { s.RequestedBy = "x" },
	}
	require.Equal(t, reflect.TypeOf(base).NumField(), len(changes)+1, "MissionSpec has a field SameSpec does not compare")
	for name, change := range changes {
		other := base
		other.Steps = slices.Clone(base.Steps)
		load := *base.Load
		other.Load = &load
		require.True(t, schemas.SameSpec(base, other), name)
		change(&other)
		require.False(t, schemas.SameSpec(base, other), name)
	}
	other := base
	other.Priority = 99
	require.True(t, schemas.SameSpec(base, other), "priority is not compared")
}

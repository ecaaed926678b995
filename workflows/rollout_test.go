package workflows

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

const rid = "r1"

var rolloutWFID = schemas.RolloutWorkflowID(rid)

func robotID(i int) string { return fmt.Sprintf("acme/AMR-%03d", i+1) }

func targetsN(n int) []schemas.TargetRobot {
	ts := make([]schemas.TargetRobot, n)
	for i := range ts {
		ts[i] = schemas.TargetRobot{ID: robotID(i), Site: "warehouse-a", Manufacturer: "acme", Model: "amr-1", Version: "1.0.0"}
	}
	return ts
}

func rolloutSpec(canary int, percentages ...int) schemas.RolloutSpec {
	return schemas.RolloutSpec{
		RolloutID:     rid,
		Artifact:      schemas.RolloutArtifact{File: "fleetos-2.0.0.bin"},
		Targets:       schemas.TargetSelector{Site: "warehouse-a"},
		Waves:         schemas.WavePlan{Canary: canary, Percentages: percentages},
		MaxConcurrent: 2,
		SoakTime:      schemas.Duration(time.Hour),
		Abort:         schemas.AbortCriteria{FailureType: schemas.FailureAll, ThresholdPercentage: 50, MinExecuted: 1},
		RobotTimeout:  schemas.Duration(10 * time.Minute),
		HealthCheck:   schemas.Duration(30 * time.Second),
		RequestedBy:   "alice",
		ChangeRequest: "CR-42",
	}
}

// rolloutActs has n simulated robots on 1.0.0 that install whatever they
// are sent.
func rolloutActs(n int) *otaActs {
	acts := newOTAActs()
	acts.targets = targetsN(n)
	for _, t := range acts.targets {
		acts.robot(t.ID, t.Version, installs)
	}
	return acts
}

// rolloutRun is one run of a Rollout chain.
type rolloutRun struct {
	s          *otaSuite
	in         schemas.RolloutInput
	start, end time.Time
	sent       int // softwareUpdates sent by the end of the run, all runs so far
}

type rolloutChain struct {
	runs []rolloutRun
	st   schemas.RolloutStatus // the last run's result (or its error's details)
	err  error                 // the last run's error
}

// runRollout runs a Rollout the way the server would: each continue-as-new
// starts the next run with the carried input, in a fresh test environment
// whose clock goes on from where the previous run ended. setup runs before
// each run (register callbacks and child mocks there).
func runRollout(t *testing.T, acts *otaActs, in schemas.RolloutInput, setup func(run int, s *otaSuite)) rolloutChain {
	t.Helper()
	var c rolloutChain
	start := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	for run := 0; ; run++ {
		require.Less(t, run, 30, "too many continue-as-new runs")
		s := newOTASuite(t, acts, rolloutWFID)
		s.env.SetStartTime(start)
		if setup != nil {
			setup(run, s)
		}
		s.env.ExecuteWorkflow(Rollout, in)
		require.True(t, s.env.IsWorkflowCompleted())
		c.runs = append(c.runs, rolloutRun{s: s, in: in, start: start, end: s.env.Now(), sent: len(acts.sentTo(""))})
		err := s.env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			require.True(t, workflow.IsContinueAsNewError(err))
			require.Equal(t, schemas.RolloutWorkflowType, can.WorkflowType.Name)
			var next schemas.RolloutInput
			require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
			require.NotNil(t, next.Carry, "a continued run carries its state")
			in, start = next, s.env.Now()
			continue
		}
		c.err = err
		if err == nil {
			require.NoError(t, s.env.GetWorkflowResult(&c.st))
		} else {
			var ae *temporal.ApplicationError
			require.ErrorAs(t, err, &ae)
			require.NoError(t, ae.Details(&c.st), "a failed rollout carries its status")
		}
		return c
	}
}

func (c rolloutChain) duration() time.Duration { return c.runs[len(c.runs)-1].end.Sub(c.runs[0].start) }

func (s *otaSuite) rolloutStatus(t *testing.T) schemas.RolloutStatus {
	v, err := s.env.QueryWorkflow(schemas.QueryStatus)
	require.NoError(t, err)
	var st schemas.RolloutStatus
	require.NoError(t, v.Get(&st))
	return st
}

// update sends a Rollout update at d; rejected (validator) errors land in
// *rejected, results in *result.
func (s *otaSuite) update(t *testing.T, d time.Duration, name string, result *schemas.RolloutStatus, rejected *error, args ...any) {
	s.at(d, func() {
		s.env.UpdateWorkflow(name, fmt.Sprintf("%s-%s", name, d), &updateCallbacks{t: t,
			onReject: func(err error) {
				if rejected == nil {
					t.Errorf("update %s at %s rejected: %v", name, d, err)
					return
				}
				*rejected = err
			},
			onComplete: func(v any, err error) {
				require.NoError(t, err)
				if result != nil {
					*result = v.(schemas.RolloutStatus)
				}
			},
		}, args...)
	})
}

// childCalls records the RobotUpdate children a mocked Rollout started.
type childCalls struct {
	mu    sync.Mutex
	calls []childCall
}

type childCall struct {
	ID string
	In schemas.RobotUpdateInput
	At time.Time
}

// mock replaces RobotUpdate in s by outcome, recording each start.
func (c *childCalls) mock(s *otaSuite, outcome func(ctx workflow.Context, in schemas.RobotUpdateInput) (schemas.RobotUpdateResult, error)) {
	s.env.OnWorkflow(schemas.RobotUpdateWorkflowType, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in schemas.RobotUpdateInput) (schemas.RobotUpdateResult, error) {
			c.mu.Lock()
			c.calls = append(c.calls, childCall{ID: workflow.GetInfo(ctx).WorkflowExecution.ID, In: in, At: workflow.Now(ctx)})
			c.mu.Unlock()
			return outcome(ctx, in)
		})
}

// ids lists the children's workflow IDs, sorted: children started together
// run in no fixed order in the test environment.
func (c *childCalls) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, len(c.calls))
	for i, cl := range c.calls {
		ids[i] = cl.ID
	}
	slices.Sort(ids)
	return ids
}

func (c *childCalls) byID(id string) (childCall, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.calls {
		if cl.ID == id {
			return cl, true
		}
	}
	return childCall{}, false
}

// takes is a mocked RobotUpdate that needs d; robots in outcomes end in
// that state, the others succeed. Cancelled before the end, it has not
// touched the robot (CANCELLED), like a real one still waiting for it —
// though the test environment only tells a mocked child it started once its
// function returned, so the parent never gets to cancel it: tests of
// cancellation use the real RobotUpdate.
func takes(d time.Duration, outcomes map[string]string) func(workflow.Context, schemas.RobotUpdateInput) (schemas.RobotUpdateResult, error) {
	return func(ctx workflow.Context, in schemas.RobotUpdateInput) (schemas.RobotUpdateResult, error) {
		res := schemas.RobotUpdateResult{RobotID: in.Robot.ID, FromVersion: in.Robot.Version, Version: in.Robot.Version, Attempts: 1}
		if err := workflow.Sleep(ctx, d); err != nil {
			res.State, res.Attempts = schemas.RobotUpdateCancelled, 0
			return res, nil
		}
		res.State = outcomes[in.Robot.ID]
		switch res.State {
		case "":
			res.State, res.Version = schemas.RobotUpdateSucceeded, in.Artifact.Version
		case schemas.RobotUpdateFailed:
			res.ErrorKind, res.Reason = "DigestMismatch", "robot refused: DigestMismatch: bad download"
		case schemas.RobotUpdateTimedOut:
			res.ErrorKind, res.Reason = "Timeout", "no result in time"
		}
		return res, nil
	}
}

func childID(i int) string { return schemas.RobotUpdateWorkflowID(rid, robotID(i)) }

func robotStates(st schemas.RolloutStatus) []string {
	out := make([]string, len(st.Robots))
	for i, r := range st.Robots {
		out[i] = r.State
	}
	return out
}

func waveStates(st schemas.RolloutStatus) []string {
	out := make([]string, len(st.Waves))
	for i, w := range st.Waves {
		out[i] = w.State
	}
	return out
}

func waveSizes(st schemas.RolloutStatus) []int {
	out := make([]int, len(st.Waves))
	for i, w := range st.Waves {
		out[i] = w.Size
	}
	return out
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// 5 robots, canary 1 then 60 % and 100 %, with the real RobotUpdate against
// simulated robots: waves [1, 2, 2], each wave a run of its own, soaks kept.
func TestRolloutHappyPathWavesAndSoak(t *testing.T) {
	acts := rolloutActs(5)
	var promoteEarly error
	var soaking schemas.RolloutStatus
	c := runRollout(t, acts, schemas.RolloutInput{Spec: rolloutSpec(1, 60, 100)}, func(run int, s *otaSuite) {
		if run == 0 {
			s.update(t, 5*time.Second, schemas.UpdatePromote, nil, &promoteEarly)
			s.at(30*time.Minute, func() { soaking = s.rolloutStatus(t) })
		}
	})
	require.NoError(t, c.err)
	st := c.st

	require.Equal(t, schemas.RolloutCompleted, st.State)
	require.Equal(t, []int{1, 2, 2}, waveSizes(st))
	require.Equal(t, repeat(schemas.WaveDone, 3), waveStates(st))
	for _, w := range st.Waves {
		require.Equal(t, w.Size, w.Started)
		require.Equal(t, w.Size, w.Succeeded)
		require.Zero(t, w.Failed+w.TimedOut)
	}
	require.Equal(t, schemas.RolloutCounts{Targets: 5, Succeeded: 5}, st.Counts)
	require.Equal(t, repeat(schemas.RobotUpdateSucceeded, 5), robotStates(st))
	for i, r := range st.Robots {
		require.Equal(t, robotID(i), r.RobotID)
		require.Equal(t, "1.0.0", r.FromVersion)
		require.Equal(t, "2.0.0", r.Version)
		require.Equal(t, 1, r.Attempts)
	}
	require.Equal(t, "2.0.0", st.Version)
	require.Zero(t, st.FailureRate)
	require.Len(t, c.runs, 3, "each wave after the first starts on a fresh history")
	require.Equal(t, 2, st.Runs)

	// Soaks: after wave 1 and wave 2, not after the last.
	require.GreaterOrEqual(t, c.duration(), 2*time.Hour)
	require.Less(t, c.duration(), 3*time.Hour)
	require.GreaterOrEqual(t, c.runs[0].end.Sub(c.runs[0].start), time.Hour, "wave 2 waits for the soak")
	require.Equal(t, 1, c.runs[0].sent, "only the canary is updated before the first soak ends")
	require.Equal(t, 3, c.runs[1].sent)
	require.Equal(t, schemas.RolloutSoaking, soaking.State)
	require.Equal(t, schemas.WaveSoaking, soaking.Waves[0].State)
	require.Equal(t, []string{schemas.RobotUpdateSucceeded, schemas.RobotUpdatePending, schemas.RobotUpdatePending, schemas.RobotUpdatePending, schemas.RobotUpdatePending}, robotStates(soaking))
	require.WithinDuration(t, c.runs[0].end, soaking.SoakUntil, time.Second, "the soak ends at SoakUntil")

	require.ErrorContains(t, promoteEarly, "not soaking", "promote is only accepted while soaking")

	// Every robot got exactly one softwareUpdate; prepare ran once.
	for i := range 5 {
		sent := acts.sentTo(robotID(i))
		require.Len(t, sent, 1)
		require.Equal(t, childID(i)+"#update-1", sent[0].ActionID)
		require.Equal(t, wantParams(artifactV("2.0.0"), false), params(sent[0]))
	}
	require.Len(t, acts.verifies, 1)
	require.Len(t, acts.resolves, 1)
	require.Len(t, acts.locates, 1, "one lookup per version and hardware")
	kinds := acts.auditKinds(rolloutWFID)
	require.Equal(t, []string{"rollout.started", "rollout.artifact_verified", "rollout.planned"}, kinds[:3])
	require.Equal(t, 3, count(kinds, "rollout.wave_started"))
	require.Equal(t, 3, count(kinds, "rollout.wave_done"))
	require.Equal(t, "rollout.completed", kinds[len(kinds)-1])
	require.NotContains(t, kinds, "rollout.promoted")
}

func TestRolloutPromoteEndsSoak(t *testing.T) {
	acts := rolloutActs(5)
	var calls childCalls
	var promoted schemas.RolloutStatus
	c := runRollout(t, acts, schemas.RolloutInput{Spec: rolloutSpec(1, 60, 100)}, func(run int, s *otaSuite) {
		calls.mock(s, takes(time.Minute, nil))
		if run == 0 {
			s.update(t, 30*time.Minute, schemas.UpdatePromote, &promoted, nil)
		}
	})
	require.NoError(t, c.err)
	require.Equal(t, schemas.RolloutCompleted, c.st.State)
	require.Equal(t, schemas.RolloutSoaking, promoted.State)
	require.Len(t, c.runs, 3)
	first := c.runs[0].end.Sub(c.runs[0].start)
	require.GreaterOrEqual(t, first, 30*time.Minute)
	require.Less(t, first, 31*time.Minute, "the promoted soak ends at the promote")
	require.GreaterOrEqual(t, c.runs[1].end.Sub(c.runs[1].start), time.Hour, "the next soak is not promoted")
	require.Contains(t, acts.auditKinds(rolloutWFID), "rollout.promoted")

	// The children carry the rollout's parameters.
	require.Len(t, calls.ids(), 5)
	cl, ok := calls.byID(childID(0))
	require.True(t, ok)
	prev := artifactV("1.0.0")
	require.Equal(t, schemas.RobotUpdateInput{
		RolloutID: rid, Robot: targetsN(5)[0], Artifact: artifactV("2.0.0"), Previous: &prev,
		Timeout: 10 * time.Minute, HealthCheck: 30 * time.Second, RequestedBy: "alice", ChangeRequest: "CR-42",
	}, cl.In)
	for i := 1; i < 5; i++ {
		cl, ok := calls.byID(childID(i))
		require.True(t, ok)
		require.False(t, cl.At.Before(c.runs[0].end), "robot %d starts after the canary's soak", i)
	}
}

func TestRolloutArtifactRefused(t *testing.T) {
	acts := rolloutActs(5)
	acts.verifyErr = temporal.NewNonRetryableApplicationError("Unsigned: artifact fleetos-2.0.0.bin has no signature", "Unsigned", nil)
	var calls childCalls
	c := runRollout(t, acts, schemas.RolloutInput{Spec: rolloutSpec(1, 60, 100)}, func(run int, s *otaSuite) {
		calls.mock(s, takes(time.Minute, nil))
	})
	require.Error(t, c.err)
	require.Equal(t, "Unsigned", appErrType(c.err))
	require.Contains(t, c.err.Error(), "fleetos-2.0.0.bin refused")
	require.Equal(t, schemas.RolloutFailed, c.st.State)
	require.Contains(t, c.st.LastError, "has no signature")
	require.Len(t, acts.verifies, 1, "a refusal is not retried")
	require.Empty(t, acts.resolves, "targets are not even resolved")
	require.Empty(t, calls.ids(), "no RobotUpdate starts")
	require.Empty(t, acts.reserves)
	kinds := acts.auditKinds(rolloutWFID)
	require.Equal(t, "rollout.failed", kinds[len(kinds)-1])
}

func TestRolloutCanaryFailureAborts(t *testing.T) {
	acts := rolloutActs(5)
	sp := rolloutSpec(1, 60, 100)
	sp.RollbackOnAbort = true
	var calls childCalls
	c := runRollout(t, acts, schemas.RolloutInput{Spec: sp}, func(run int, s *otaSuite) {
		calls.mock(s, takes(time.Minute, map[string]string{robotID(0): schemas.RobotUpdateFailed}))
	})
	require.Error(t, c.err)
	require.Equal(t, "RolloutAborted", appErrType(c.err))
	st := c.st
	require.Equal(t, schemas.RolloutAborted, st.State)
	require.Contains(t, st.AbortReason, "1 of 1 robot FAILED or TIMED_OUT (100%) >= 50%")
	require.Equal(t, []string{schemas.RobotUpdateFailed, schemas.RobotUpdateCancelled, schemas.RobotUpdateCancelled, schemas.RobotUpdateCancelled, schemas.RobotUpdateCancelled}, robotStates(st))
	require.Equal(t, schemas.RolloutCounts{Targets: 5, Failed: 1, Cancelled: 4}, st.Counts)
	require.Equal(t, []string{schemas.WaveDone, schemas.WaveCancelled, schemas.WaveCancelled}, waveStates(st), "the canary wave ran to its end; the others never started")
	require.Equal(t, 1, st.Waves[0].Failed)
	require.Equal(t, 100.0, st.FailureRate)
	require.Equal(t, []string{childID(0)}, calls.ids(), "later waves never start; nothing succeeded, so nothing is rolled back")
	require.Less(t, c.duration(), time.Hour, "no soak after an aborted wave")
	kinds := acts.auditKinds(rolloutWFID)
	require.Equal(t, "rollout.aborted", kinds[len(kinds)-1])
	require.NotContains(t, kinds, "rollout.rollback_started")
}

// 6 robots, canary 2 then 50 % and 100 %: waves [2, 1, 3]. The canaries
// succeed, the robot of wave 2 fails: 1 of 3 ≥ 30 % aborts the rollout.
func abortAfterWave2Spec(rollback bool) schemas.RolloutSpec {
	sp := rolloutSpec(2, 50, 100)
	sp.Abort = schemas.AbortCriteria{FailureType: schemas.FailureAll, ThresholdPercentage: 30, MinExecuted: 3}
	sp.RollbackOnAbort = rollback
	return sp
}

func TestRolloutAbortRollsBackUpdatedRobots(t *testing.T) {
	acts := rolloutActs(6)
	acts.robot(robotID(2), "1.0.0", refuses("DigestMismatch: sha256 of the download differs from the manifest"))
	c := runRollout(t, acts, schemas.RolloutInput{Spec: abortAfterWave2Spec(true)}, nil)
	require.Error(t, c.err)
	require.Equal(t, "RolloutAborted", appErrType(c.err))
	st := c.st
	require.Equal(t, schemas.RolloutAborted, st.State)
	require.Equal(t, []int{2, 1, 3}, waveSizes(st))
	require.Contains(t, st.AbortReason, "abort criteria met in wave 2")
	require.Equal(t, []string{schemas.RobotUpdateRolledBack, schemas.RobotUpdateRolledBack, schemas.RobotUpdateFailed, schemas.RobotUpdateCancelled, schemas.RobotUpdateCancelled, schemas.RobotUpdateCancelled}, robotStates(st))
	require.Equal(t, schemas.RolloutCounts{Targets: 6, Succeeded: 2, Failed: 1, RolledBack: 2, Cancelled: 3}, st.Counts)
	require.Equal(t, []string{schemas.WaveDone, schemas.WaveDone, schemas.WaveCancelled}, waveStates(st))
	for i := range 2 {
		require.Equal(t, "1.0.0", st.Robots[i].Version, "robot %d runs the previous version again", i)
		sent := acts.sentTo(robotID(i))
		require.Len(t, sent, 2)
		require.Equal(t, childID(i)+"-rollback#update-1", sent[1].ActionID, "the rollback is a RobotUpdate of its own")
		require.Equal(t, wantParams(artifactV("1.0.0"), true), params(sent[1]))
	}
	require.Len(t, acts.sentTo(robotID(2)), 1, "the refused robot is not rolled back: it installed nothing")
	for i := 3; i < 6; i++ {
		require.Empty(t, acts.sentTo(robotID(i)), "robot %d of the cancelled wave is never touched", i)
	}
	kinds := acts.auditKinds(rolloutWFID)
	require.Contains(t, kinds, "rollout.rollback_started")
	require.Equal(t, "rollout.aborted", kinds[len(kinds)-1])
}

// A rollback that fails is said as it is (ROLLBACK_FAILED, with why), not
// left as SUCCEEDED with a reason.
func TestRolloutFailedRollbackIsNotSucceeded(t *testing.T) {
	acts := rolloutActs(6)
	rollbackRefused := func(r *simRobot, a vda5050.Action) {
		if paramOf(a, schemas.SoftwareUpdateParamRollback) == true {
			refuses("DigestMismatch: sha256 of the download differs from the manifest")(r, a)
			return
		}
		installs(r, a)
	}
	acts.robot(robotID(0), "1.0.0", rollbackRefused)
	acts.robot(robotID(2), "1.0.0", refuses("DigestMismatch: sha256 of the download differs from the manifest"))
	c := runRollout(t, acts, schemas.RolloutInput{Spec: abortAfterWave2Spec(true)}, nil)
	require.Equal(t, "RolloutAborted", appErrType(c.err))
	st := c.st
	require.Equal(t, []string{schemas.RobotUpdateRollbackFailed, schemas.RobotUpdateRolledBack, schemas.RobotUpdateFailed, schemas.RobotUpdateCancelled, schemas.RobotUpdateCancelled, schemas.RobotUpdateCancelled}, robotStates(st))
	require.Contains(t, st.Robots[0].Reason, "DigestMismatch")
	require.Equal(t, "2.0.0", st.Robots[0].Version, "it still runs what it last reported")
	require.Equal(t, schemas.RolloutCounts{Targets: 6, Succeeded: 2, Failed: 1, RolledBack: 1, RollbackFailed: 1, Cancelled: 3}, st.Counts)
}

func TestRolloutAbortWithoutRollbackOnAbort(t *testing.T) {
	acts := rolloutActs(6)
	var calls childCalls
	c := runRollout(t, acts, schemas.RolloutInput{Spec: abortAfterWave2Spec(false)}, func(run int, s *otaSuite) {
		calls.mock(s, takes(time.Minute, map[string]string{robotID(2): schemas.RobotUpdateFailed}))
	})
	require.Equal(t, "RolloutAborted", appErrType(c.err))
	st := c.st
	require.Equal(t, []string{schemas.RobotUpdateSucceeded, schemas.RobotUpdateSucceeded, schemas.RobotUpdateFailed, schemas.RobotUpdateCancelled, schemas.RobotUpdateCancelled, schemas.RobotUpdateCancelled}, robotStates(st))
	require.Equal(t, schemas.RolloutCounts{Targets: 6, Succeeded: 2, Failed: 1, Cancelled: 3}, st.Counts)
	require.Equal(t, []string{childID(0), childID(1), childID(2)}, calls.ids(), "no -rollback children")
	require.NotContains(t, acts.auditKinds(rolloutWFID), "rollout.rollback_started")
}

// Robots in flight when the rollout aborts finish and, having succeeded
// after the abort, are rolled back even without RollbackOnAbort.
func TestRolloutAbortRollsBackRobotsInFlight(t *testing.T) {
	acts := rolloutActs(4)
	sp := rolloutSpec(0, 100)
	var calls childCalls
	c := runRollout(t, acts, schemas.RolloutInput{Spec: sp}, func(run int, s *otaSuite) {
		calls.mock(s, func(ctx workflow.Context, in schemas.RobotUpdateInput) (schemas.RobotUpdateResult, error) {
			if in.Rollback {
				return schemas.RobotUpdateResult{RobotID: in.Robot.ID, State: schemas.RobotUpdateSucceeded, FromVersion: in.Robot.Version, Version: in.Artifact.Version, Attempts: 1}, nil
			}
			// Robot 1 is already installing: the abort's cancellation does
			// not stop it.
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			d := map[string]time.Duration{robotID(0): time.Minute, robotID(1): 3 * time.Minute}[in.Robot.ID]
			return takes(d, map[string]string{robotID(0): schemas.RobotUpdateFailed})(dctx, in)
		})
	})
	require.Equal(t, "RolloutAborted", appErrType(c.err))
	st := c.st
	require.Equal(t, []string{schemas.RobotUpdateFailed, schemas.RobotUpdateRolledBack, schemas.RobotUpdateCancelled, schemas.RobotUpdateCancelled}, robotStates(st))
	require.Equal(t, schemas.RolloutCounts{Targets: 4, Succeeded: 1, Failed: 1, RolledBack: 1, Cancelled: 2}, st.Counts)
	require.Equal(t, []string{schemas.WaveCancelled}, waveStates(st), "the abort cut the wave short")
	require.Equal(t, []string{childID(0), childID(1), childID(1) + "-rollback"}, calls.ids())
	rb, _ := calls.byID(childID(1) + "-rollback")
	require.True(t, rb.In.Rollback)
	require.Equal(t, "1.0.0", rb.In.Artifact.Version)
	require.Equal(t, "2.0.0", rb.In.Robot.Version, "the rollback starts from the new version")
	require.Nil(t, rb.In.Previous)
}

func TestRolloutPauseResume(t *testing.T) {
	acts := rolloutActs(4)
	var calls childCalls
	var paused, resumed, whilePaused schemas.RolloutStatus
	var pausedTwice, emptyAbort, resumeRunning error
	c := runRollout(t, acts, schemas.RolloutInput{Spec: rolloutSpec(0, 100)}, func(run int, s *otaSuite) {
		calls.mock(s, takes(time.Minute, nil))
		s.update(t, 10*time.Second, schemas.UpdateResume, nil, &resumeRunning)
		s.update(t, 30*time.Second, schemas.UpdatePause, &paused, nil)
		s.update(t, 40*time.Second, schemas.UpdatePause, nil, &pausedTwice)
		s.update(t, 45*time.Second, schemas.UpdateAbort, nil, &emptyAbort, schemas.AbortRequest{Reason: "  ", By: "bob"})
		s.at(5*time.Minute, func() { whilePaused = s.rolloutStatus(t) })
		s.update(t, 10*time.Minute, schemas.UpdateResume, &resumed, nil)
	})
	require.NoError(t, c.err)
	require.Equal(t, schemas.RolloutCompleted, c.st.State)
	require.Equal(t, schemas.RolloutCounts{Targets: 4, Succeeded: 4}, c.st.Counts)
	require.False(t, c.st.Paused)

	require.ErrorContains(t, resumeRunning, "not paused")
	require.True(t, paused.Paused)
	require.Equal(t, 2, paused.Counts.InFlight, "in-flight robots go on")
	require.ErrorContains(t, pausedTwice, "already paused")
	require.ErrorContains(t, emptyAbort, "abort needs a reason")

	require.Equal(t, schemas.RolloutPaused, whilePaused.State)
	require.Equal(t, []string{schemas.RobotUpdateSucceeded, schemas.RobotUpdateSucceeded, schemas.RobotUpdatePending, schemas.RobotUpdatePending}, robotStates(whilePaused))
	require.Zero(t, whilePaused.Counts.InFlight)
	require.False(t, resumed.Paused)

	start := c.runs[0].start
	ids := calls.ids()
	require.Equal(t, []string{childID(0), childID(1), childID(2), childID(3)}, ids)
	for i := range 2 {
		cl, _ := calls.byID(childID(i))
		require.Less(t, cl.At.Sub(start), 30*time.Second)
	}
	for i := 2; i < 4; i++ {
		cl, _ := calls.byID(childID(i))
		require.GreaterOrEqual(t, cl.At.Sub(start), 10*time.Minute, "robot %d starts only after the resume", i)
	}
	require.GreaterOrEqual(t, c.duration(), 11*time.Minute)
}

func TestRolloutAbortDuringSoak(t *testing.T) {
	acts := rolloutActs(3)
	var calls childCalls
	var aborted schemas.RolloutStatus
	c := runRollout(t, acts, schemas.RolloutInput{Spec: rolloutSpec(1, 100)}, func(run int, s *otaSuite) {
		calls.mock(s, takes(time.Minute, nil))
		s.update(t, 30*time.Minute, schemas.UpdateAbort, &aborted, nil, schemas.AbortRequest{Reason: "crash reports from the canary", By: "bob"})
	})
	require.Equal(t, "RolloutAborted", appErrType(c.err))
	require.Contains(t, c.err.Error(), "aborted by bob: crash reports from the canary")
	st := c.st
	require.Equal(t, schemas.RolloutAborted, st.State)
	require.Equal(t, "aborted by bob: crash reports from the canary", st.AbortReason)
	require.Equal(t, "aborted by bob: crash reports from the canary", aborted.AbortReason)
	require.Equal(t, []string{schemas.RobotUpdateSucceeded, schemas.RobotUpdateCancelled, schemas.RobotUpdateCancelled}, robotStates(st))
	require.Equal(t, []string{schemas.WaveDone, schemas.WaveCancelled}, waveStates(st))
	require.Equal(t, []string{childID(0)}, calls.ids(), "the next wave never starts")
	require.Len(t, c.runs, 1)
	require.Less(t, c.duration(), time.Hour, "the abort ends the soak")
}

func TestRolloutRefusedUpFront(t *testing.T) {
	for name, tc := range map[string]struct {
		targets int
		spec    schemas.RolloutSpec
		errType string
		msg     string
	}{
		"empty wave": {1, rolloutSpec(1, 50, 100), schemas.ErrInvalidRollout, "would be empty"},
		"no targets": {0, rolloutSpec(1, 60, 100), schemas.ErrNoTargets, "no robots match"},
	} {
		t.Run(name, func(t *testing.T) {
			acts := rolloutActs(tc.targets)
			var calls childCalls
			c := runRollout(t, acts, schemas.RolloutInput{Spec: tc.spec}, func(run int, s *otaSuite) {
				calls.mock(s, takes(time.Minute, nil))
			})
			require.Equal(t, tc.errType, appErrType(c.err))
			require.Contains(t, c.err.Error(), tc.msg)
			require.Equal(t, schemas.RolloutFailed, c.st.State)
			require.Empty(t, calls.ids(), "no RobotUpdate starts")
			require.Empty(t, acts.reserves)
			require.Empty(t, acts.sentTo(""))
		})
	}
}

func TestRolloutContinuesAsNew(t *testing.T) {
	defer func(o OTATimings) { OTA = o }(OTA)
	OTA.HistoryLimit = 16 // a run may finish 16/8 = 2 RobotUpdates
	acts := rolloutActs(10)
	sp := rolloutSpec(0, 100)
	sp.MaxConcurrent = 1
	var calls childCalls
	c := runRollout(t, acts, schemas.RolloutInput{Spec: sp, RequestedBy: "alice"}, func(run int, s *otaSuite) {
		calls.mock(s, takes(time.Minute, nil))
	})
	require.NoError(t, c.err)
	require.Len(t, c.runs, 5, "two robots per run")
	require.Equal(t, 4, c.st.Runs)
	require.Equal(t, schemas.RolloutCompleted, c.st.State)
	require.Equal(t, schemas.RolloutCounts{Targets: 10, Succeeded: 10}, c.st.Counts)
	require.Equal(t, schemas.WaveStatus{Index: 0, Size: 10, State: schemas.WaveDone, Started: 10, Succeeded: 10}, c.st.Waves[0])
	require.Equal(t, 10*time.Minute, c.duration())

	// What the first run hands to the second.
	in := c.runs[1].in
	require.Equal(t, "alice", in.RequestedBy)
	require.Equal(t, sp, in.Spec)
	cr := in.Carry
	require.Equal(t, 2, cr.Next, "the next run starts at the third robot")
	require.Equal(t, targetsN(10), cr.Targets)
	require.Equal(t, artifactV("2.0.0"), cr.Artifact)
	prev := artifactV("1.0.0")
	require.Equal(t, map[string]*schemas.ArtifactRef{"1.0.0|acme/amr-1": &prev}, cr.Previous)
	require.False(t, cr.Soaked)
	require.Equal(t, schemas.RolloutRunning, cr.Status.State)
	require.Equal(t, 0, cr.Status.Runs)
	require.Equal(t, "2.0.0", cr.Status.Version)
	require.Equal(t, schemas.RolloutCounts{Targets: 10, Succeeded: 2}, cr.Status.Counts)
	require.Equal(t, append([]string{schemas.RobotUpdateSucceeded, schemas.RobotUpdateSucceeded}, repeat(schemas.RobotUpdatePending, 8)...), robotStates(cr.Status))
	require.Equal(t, schemas.WaveStatus{Index: 0, Size: 10, State: schemas.WaveRunning, Started: 2, Succeeded: 2}, cr.Status.Waves[0])

	// Each robot updated once, two per run, in order; prepare ran once.
	for run, r := range c.runs {
		if run > 0 {
			require.Equal(t, 2*run, r.in.Carry.Next)
			require.Equal(t, run-1, r.in.Carry.Status.Runs)
		}
		for _, i := range []int{2 * run, 2*run + 1} {
			cl, ok := calls.byID(childID(i))
			require.True(t, ok)
			require.False(t, cl.At.Before(r.start), "robot %d starts in run %d", i, run)
			require.True(t, cl.At.Before(r.end), "robot %d starts in run %d", i, run)
		}
	}
	want := make([]string, 10)
	for i := range want {
		want[i] = childID(i)
	}
	require.Equal(t, want, calls.ids())
	require.Len(t, acts.verifies, 1)
	require.Len(t, acts.resolves, 1)
	kinds := acts.auditKinds(rolloutWFID)
	require.Equal(t, "rollout.started", kinds[0])
	require.Equal(t, 1, count(kinds, "rollout.started"))
	require.Equal(t, 1, count(kinds, "rollout.wave_started"))
	require.Equal(t, "rollout.completed", kinds[len(kinds)-1])
}

// With MaxConcurrent robots at once a run may start a few more than its
// budget while earlier ones finish, but it never continues as new with a
// robot in flight, and every robot is started exactly once.
func TestRolloutContinuesAsNewConcurrent(t *testing.T) {
	defer func(o OTATimings) { OTA = o }(OTA)
	OTA.HistoryLimit = 16
	acts := rolloutActs(10)
	sp := rolloutSpec(0, 100)
	sp.MaxConcurrent = 3
	var calls childCalls
	c := runRollout(t, acts, schemas.RolloutInput{Spec: sp}, func(run int, s *otaSuite) {
		calls.mock(s, takes(time.Minute, nil))
	})
	require.NoError(t, c.err)
	require.Equal(t, schemas.RolloutCounts{Targets: 10, Succeeded: 10}, c.st.Counts)
	require.Greater(t, len(c.runs), 1)
	for run, r := range c.runs[1:] {
		cr := r.in.Carry
		require.Zero(t, cr.Status.Counts.InFlight)
		require.Equal(t, cr.Next, cr.Status.Counts.Succeeded, "run %d: every robot before Next has finished, none after has started", run+1)
		for i, o := range cr.Status.Robots {
			require.Equal(t, i < cr.Next, o.State == schemas.RobotUpdateSucceeded, "robot %d", i)
		}
		prevNext := 0
		if pc := c.runs[run].in.Carry; pc != nil {
			prevNext = pc.Next
		}
		require.LessOrEqual(t, cr.Next-prevNext, 2+sp.MaxConcurrent-1, "a run starts at most budget+MaxConcurrent-1 robots")
	}
	ids := calls.ids()
	require.Len(t, ids, 10)
	seen := map[string]bool{}
	for _, id := range ids {
		require.False(t, seen[id], "%s started twice", id)
		seen[id] = true
	}
}

// A Temporal cancellation request (Web UI, CLI) aborts the rollout like the
// abort update: robots waiting for their robot stop, robots installing
// finish and are rolled back, the rest never start. (Real RobotUpdates: the
// test environment delivers no cancellation to a mocked child.)
func TestRolloutCancellationAborts(t *testing.T) {
	acts := rolloutActs(5)
	acts.queued[robotID(1)] = 1000 // on a long mission
	c := runRollout(t, acts, schemas.RolloutInput{Spec: rolloutSpec(0, 100)}, func(run int, s *otaSuite) {
		s.env.SetTestTimeout(5 * time.Second)
		// Robot 0 is in its health check (installed at ~10 s, 30 s check).
		s.at(30*time.Second, func() { s.env.CancelWorkflow() })
	})
	require.Equal(t, "RolloutAborted", appErrType(c.err))
	st := c.st
	require.Equal(t, schemas.RolloutAborted, st.State)
	require.Contains(t, st.AbortReason, "cancellation")
	require.Equal(t, []string{schemas.RobotUpdateRolledBack, schemas.RobotUpdateCancelled, schemas.RobotUpdateCancelled, schemas.RobotUpdateCancelled, schemas.RobotUpdateCancelled}, robotStates(st))
	require.Equal(t, schemas.RolloutCounts{Targets: 5, Succeeded: 1, RolledBack: 1, Cancelled: 4}, st.Counts)
	require.Equal(t, []string{schemas.WaveCancelled}, waveStates(st))
	require.Equal(t, "1.0.0", st.Robots[0].Version)
	require.Equal(t, []string{childID(1)}, acts.cancelled, "the waiting RobotUpdate leaves the reservation queue")
	sent := acts.sentTo(robotID(0))
	require.Len(t, sent, 2)
	require.Equal(t, childID(0)+"-rollback#update-1", sent[1].ActionID)
	require.Empty(t, acts.sentTo(robotID(1)))
	for i := 2; i < 5; i++ {
		require.Empty(t, acts.sentTo(robotID(i)))
	}
	require.Less(t, c.duration(), 5*time.Minute)
}

// An explicit rollback (spec.Rollback) targets robots on a newer version:
// ResolveTargets, VerifyArtifact and every RobotUpdate are told so.
func TestRolloutExplicitRollback(t *testing.T) {
	acts := rolloutActs(2)
	acts.artifact = artifactV("1.0.0")
	for i := range acts.targets {
		acts.targets[i].Version = "2.0.0"
	}
	sp := rolloutSpec(0, 100)
	sp.Artifact.File = "fleetos-1.0.0.bin"
	sp.Rollback = true
	var calls childCalls
	c := runRollout(t, acts, schemas.RolloutInput{Spec: sp}, func(run int, s *otaSuite) {
		calls.mock(s, takes(time.Minute, nil))
	})
	require.NoError(t, c.err)
	require.True(t, c.st.Rollback)
	require.Equal(t, schemas.RolloutCounts{Targets: 2, Succeeded: 2}, c.st.Counts)
	require.True(t, acts.verifies[0].Rollback)
	require.True(t, acts.resolves[0].Rollback, "ResolveTargets must not skip robots on a newer version")
	for i := range 2 {
		cl, ok := calls.byID(childID(i))
		require.True(t, ok)
		require.True(t, cl.In.Rollback)
		require.Equal(t, "1.0.0", cl.In.Artifact.Version)
		require.Equal(t, "2.0.0", cl.In.Previous.Version, "a failed rollback goes back to what the robot ran")
	}
}

// Robots start only inside the maintenance window (here 22:00–06:00 Berlin
// time; the rollout is started at 10:00 there).
func TestRolloutWaitsForMaintenanceWindow(t *testing.T) {
	acts := rolloutActs(2)
	sp := rolloutSpec(0, 100)
	sp.MaintenanceWindow = &schemas.Window{Start: "22:00", End: "06:00", TimeZone: "Europe/Berlin"}
	var calls childCalls
	var waiting schemas.RolloutStatus
	var started int
	c := runRollout(t, acts, schemas.RolloutInput{Spec: sp}, func(run int, s *otaSuite) {
		calls.mock(s, takes(time.Minute, nil))
		s.at(time.Hour, func() {
			waiting = s.rolloutStatus(t)
			started = len(calls.ids())
		})
	})
	require.NoError(t, c.err)
	require.Equal(t, schemas.RolloutWaiting, waiting.State)
	require.Zero(t, started, "no robot starts outside the window")
	opens := time.Date(2025, 3, 3, 21, 0, 0, 0, time.UTC) // 22:00 CET
	for i := range 2 {
		cl, ok := calls.byID(childID(i))
		require.True(t, ok)
		require.True(t, cl.At.Equal(opens), "robot %d starts when the window opens, not at %s", i, cl.At)
	}
	require.Equal(t, schemas.RolloutCounts{Targets: 2, Succeeded: 2}, c.st.Counts)
}

// A spec that did not go through schemas.ParseRollout with no robot at
// once fails at the start instead of running for ever.
func TestRolloutWithoutConcurrencyFails(t *testing.T) {
	acts := rolloutActs(2)
	sp := rolloutSpec(1, 100)
	sp.MaxConcurrent = 0
	c := runRollout(t, acts, schemas.RolloutInput{Spec: sp}, nil)
	require.Equal(t, schemas.ErrInvalidRollout, appErrType(c.err))
	require.Contains(t, c.err.Error(), "maxConcurrent 0")
	require.Empty(t, acts.sentTo(""))
}

// The artifact store cannot be read when the rollout looks for what its
// robots would roll back to: it stops before touching any robot, rather
// than run with its rollback silently off.
func TestRolloutStopsWhenThePreviousArtifactCannotBeLookedFor(t *testing.T) {
	acts := rolloutActs(2)
	acts.locateErr = errors.New("open /srv/artifacts: input/output error")
	c := runRollout(t, acts, schemas.RolloutInput{Spec: rolloutSpec(1, 100)}, nil)
	require.Equal(t, schemas.ErrArtifactUnavailable, appErrType(c.err))
	require.Contains(t, c.err.Error(), "input/output error")
	require.Equal(t, schemas.RolloutFailed, c.st.State)
	require.Empty(t, acts.sentTo(""))
}

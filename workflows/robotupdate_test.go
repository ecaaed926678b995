package workflows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// simRobot is a robot as the OTA fakes see it: the state the bridge stored
// (RobotSnapshot reads it) and how it reacts to a softwareUpdate.
type simRobot struct {
	version string
	conn    string
	states  []vda5050.ActionState
	errs    []vda5050.Error
	// react is called (under otaActs.mu) when a softwareUpdate reaches the
	// robot; nil = the robot stores nothing by itself (the test drives it).
	react func(r *simRobot, a vda5050.Action)
}

// Robot reactions to a softwareUpdate.

// installs: the robot installs the artifact at once and reports FINISHED on
// the new version.
func installs(r *simRobot, a vda5050.Action) {
	r.states = []vda5050.ActionState{{ActionID: a.ActionID, ActionType: a.ActionType, ActionStatus: vda5050.ActionFinished}}
	r.version, r.errs = paramOf(a, schemas.SoftwareUpdateParamVersion).(string), nil
}

// refuses: the robot's verifier refuses the artifact with desc.
func refuses(desc string) func(*simRobot, vda5050.Action) {
	return func(r *simRobot, a vda5050.Action) {
		r.states = []vda5050.ActionState{{ActionID: a.ActionID, ActionType: a.ActionType, ActionStatus: vda5050.ActionFailed, ResultDescription: desc}}
	}
}

// hangsThenRollsBack: the robot never gets past "installing" with the new
// version, but a rollback works.
func hangsThenRollsBack(r *simRobot, a vda5050.Action) {
	if paramOf(a, schemas.SoftwareUpdateParamRollback) == true {
		installs(r, a)
		return
	}
	r.states = []vda5050.ActionState{{ActionID: a.ActionID, ActionType: a.ActionType, ActionStatus: vda5050.ActionRunning, ResultDescription: "installing"}}
}

// fatalAfterBoot: the new version boots and then reports a FATAL error; the
// previous version (a rollback) runs fine.
func fatalAfterBoot(r *simRobot, a vda5050.Action) {
	installs(r, a)
	if paramOf(a, schemas.SoftwareUpdateParamRollback) != true {
		r.errs = []vda5050.Error{{ErrorType: "navigationStackCrash", ErrorLevel: vda5050.ErrorFatal, ErrorDescription: "planner segfault"}}
	}
}

func paramOf(a vda5050.Action, key string) any {
	for _, p := range a.ActionParameters {
		if p.Key == key {
			return p.Value
		}
	}
	return nil
}

func (r *simRobot) event(id string) schemas.RobotEvent {
	return schemas.RobotEvent{RobotID: id, Connection: r.conn, SoftwareVersion: r.version,
		ActionStates: slices.Clone(r.states), Errors: slices.Clone(r.errs)}
}

type sentAction struct {
	RobotID string
	Action  vda5050.Action
}

// otaActs fakes every activity the OTA workflows call, registered by name
// (its exported methods are the activity names).
type otaActs struct {
	mu sync.Mutex

	verifyErr error
	artifact  schemas.ArtifactRef
	targets   []schemas.TargetRobot
	skipped   []schemas.SkippedRobot
	noPrev    bool // LocateArtifact finds nothing
	locateErr error

	queued map[string]int // robot → how many reservations answer "queued" first
	// serviceStatus: robots whose grant says they are not in service.
	serviceStatus map[string]string
	// reserveDown and releaseDown fail ReserveRobot and ReleaseRobot this many calls
	// (each) with an error that can pass: a database failover.
	reserveDown, releaseDown int
	robots                   map[string]*simRobot

	verifies  []schemas.VerifyArtifactInput
	resolves  []schemas.ResolveTargetsInput
	locates   []schemas.LocateArtifactInput
	reserves  []schemas.ReserveRobotInput
	releases  []schemas.ReleaseRobotInput
	cancelled []string
	sent      []sentAction
	snapshots int
	audits    []schemas.AuditInput
}

func newOTAActs() *otaActs {
	return &otaActs{artifact: artifactV("2.0.0"), queued: map[string]int{}, robots: map[string]*simRobot{}}
}

// robot adds a simulated robot on version v reacting with react.
func (f *otaActs) robot(id, v string, react func(*simRobot, vda5050.Action)) *otaActs {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.robots[id] = &simRobot{version: v, conn: string(vda5050.ConnectionOnline), react: react}
	return f
}

func (f *otaActs) VerifyArtifact(ctx context.Context, in schemas.VerifyArtifactInput) (schemas.ArtifactRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verifies = append(f.verifies, in)
	if f.verifyErr != nil {
		return schemas.ArtifactRef{}, f.verifyErr
	}
	return f.artifact, nil
}

func (f *otaActs) ResolveTargets(ctx context.Context, in schemas.ResolveTargetsInput) (schemas.ResolveTargetsResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resolves = append(f.resolves, in)
	return schemas.ResolveTargetsResult{Targets: slices.Clone(f.targets), Skipped: f.skipped}, nil
}

func (f *otaActs) LocateArtifact(ctx context.Context, in schemas.LocateArtifactInput) (schemas.LocateArtifactResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.locates = append(f.locates, in)
	if f.locateErr != nil {
		return schemas.LocateArtifactResult{}, f.locateErr
	}
	if f.noPrev {
		return schemas.LocateArtifactResult{}, nil
	}
	return schemas.LocateArtifactResult{Found: true, Artifact: artifactV(in.Version)}, nil
}

func (f *otaActs) ReserveRobot(ctx context.Context, in schemas.ReserveRobotInput) (schemas.ReserveRobotResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reserves = append(f.reserves, in)
	if f.reserveDown > 0 {
		f.reserveDown--
		return schemas.ReserveRobotResult{}, errors.New("failed to connect to `host=127.0.0.1`: connection refused")
	}
	if f.queued[in.RobotID] > 0 {
		f.queued[in.RobotID]--
		return schemas.ReserveRobotResult{Queued: true, QueuePosition: 1}, nil
	}
	return schemas.ReserveRobotResult{RobotID: in.RobotID, ServiceStatus: f.serviceStatus[in.RobotID]}, nil
}

func (f *otaActs) CancelQueued(ctx context.Context, in schemas.CancelQueuedInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, in.MissionID)
	return nil
}

func (f *otaActs) SendInstantActions(ctx context.Context, in schemas.SendInstantActionsInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range in.Actions {
		f.sent = append(f.sent, sentAction{RobotID: in.RobotID, Action: a})
		if r := f.robots[in.RobotID]; r != nil && r.react != nil && a.ActionType == schemas.ActionSoftwareUpdate {
			r.react(r, a)
		}
	}
	return nil
}

func (f *otaActs) RobotSnapshot(ctx context.Context, in schemas.RobotSnapshotInput) (schemas.RobotEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snapshots++
	r := f.robots[in.RobotID]
	if r == nil {
		return schemas.RobotEvent{}, errors.New("no stored state for " + in.RobotID)
	}
	return r.event(in.RobotID), nil
}

func (f *otaActs) ReleaseRobot(ctx context.Context, in schemas.ReleaseRobotInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.releaseDown > 0 {
		f.releaseDown--
		return errors.New("failed to connect to `host=127.0.0.1`: connection refused")
	}
	f.releases = append(f.releases, in)
	return nil
}

func (f *otaActs) Audit(ctx context.Context, in schemas.AuditInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audits = append(f.audits, in)
	return nil
}

// sentTo lists the instant actions sent to robot (all robots when "").
func (f *otaActs) sentTo(robot string) []vda5050.Action {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []vda5050.Action
	for _, s := range f.sent {
		if robot == "" || s.RobotID == robot {
			out = append(out, s.Action)
		}
	}
	return out
}

// auditKinds lists the audit kinds written about subject, in order.
func (f *otaActs) auditKinds(subject string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, a := range f.audits {
		if a.Subject == subject {
			out = append(out, a.Kind)
		}
	}
	return out
}

func artifactV(v string) schemas.ArtifactRef {
	return schemas.ArtifactRef{
		File: "fleetos-" + v + ".bin", Name: "fleetos", Version: v, ReleaseCounter: 7,
		SHA256: fmt.Sprintf("%064x", len(v)*1000003), Length: 1 << 20,
		Hardware: []schemas.Hardware{{Manufacturer: "acme", Model: "amr-1"}}, KeyID: "release-2025",
		ArtifactURL: "https://artifacts.example/fleetos-" + v + ".bin",
		ManifestURL: "https://artifacts.example/fleetos-" + v + ".manifest.json",
		Signature:   "MEUCIQ-sig-of-" + v,
	}
}

type otaSuite struct {
	testsuite.WorkflowTestSuite
	env  *testsuite.TestWorkflowEnvironment
	acts *otaActs
}

func newOTASuite(t *testing.T, acts *otaActs, workflowID string) *otaSuite {
	s := &otaSuite{acts: acts}
	s.SetLogger(nil)
	s.env = s.NewTestWorkflowEnvironment()
	s.env.SetStartWorkflowOptions(clientOptions(workflowID))
	s.env.SetStartTime(time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC))
	s.env.RegisterWorkflow(RobotUpdate)
	s.env.RegisterWorkflow(Rollout)
	s.env.RegisterActivity(acts)
	return s
}

func (s *otaSuite) at(d time.Duration, fn func()) { s.env.RegisterDelayedCallback(fn, d) }

const (
	ruRobot = "acme/AMR-001"
	ruSite  = "warehouse-a"
)

var ruID = schemas.RobotUpdateWorkflowID("r1", ruRobot)

func ruInput() schemas.RobotUpdateInput {
	prev := artifactV("1.0.0")
	return schemas.RobotUpdateInput{
		RolloutID: "r1",
		Robot:     schemas.TargetRobot{ID: ruRobot, Site: ruSite, Manufacturer: "acme", Model: "amr-1", Version: "1.0.0"},
		Artifact:  artifactV("2.0.0"), Previous: &prev,
		Timeout: 10 * time.Minute, HealthCheck: 30 * time.Second,
		RequestedBy: "alice", ChangeRequest: "CR-42",
	}
}

func newRUSuite(t *testing.T, acts *otaActs) *otaSuite { return newOTASuite(t, acts, ruID) }

// robotSays stores what the robot reports at d (as the bridge would) and
// signals it to the RobotUpdate.
func (s *otaSuite) robotSays(d time.Duration, change func(r *simRobot)) {
	s.at(d, func() {
		s.acts.mu.Lock()
		r := s.acts.robots[ruRobot]
		change(r)
		ev := r.event(ruRobot)
		s.acts.mu.Unlock()
		s.env.SignalWorkflow(schemas.SignalRobotEvent, ev)
	})
}

func running(actionID, phase string) func(r *simRobot) {
	return func(r *simRobot) {
		r.states = []vda5050.ActionState{{ActionID: actionID, ActionType: schemas.ActionSoftwareUpdate, ActionStatus: vda5050.ActionRunning, ResultDescription: phase}}
	}
}

func (s *otaSuite) ruStatus(t *testing.T) schemas.RobotUpdateStatus {
	v, err := s.env.QueryWorkflow(schemas.QueryStatus)
	require.NoError(t, err)
	var st schemas.RobotUpdateStatus
	require.NoError(t, v.Get(&st))
	return st
}

func (s *otaSuite) ruResult(t *testing.T) schemas.RobotUpdateResult {
	require.True(t, s.env.IsWorkflowCompleted())
	require.NoError(t, s.env.GetWorkflowError(), "RobotUpdate never fails as a workflow")
	var r schemas.RobotUpdateResult
	require.NoError(t, s.env.GetWorkflowResult(&r))
	return r
}

func params(a vda5050.Action) map[string]any {
	m := map[string]any{}
	for _, p := range a.ActionParameters {
		m[p.Key] = p.Value
	}
	return m
}

func wantParams(a schemas.ArtifactRef, rollback bool) map[string]any {
	return map[string]any{
		schemas.SoftwareUpdateParamArtifactURL: a.ArtifactURL, schemas.SoftwareUpdateParamManifestURL: a.ManifestURL,
		schemas.SoftwareUpdateParamSignature: a.Signature, schemas.SoftwareUpdateParamSHA256: a.SHA256,
		schemas.SoftwareUpdateParamVersion: a.Version, schemas.SoftwareUpdateParamRollback: rollback,
	}
}

func TestRobotUpdateHappyPath(t *testing.T) {
	acts := newOTAActs().robot(ruRobot, "1.0.0", nil)
	s := newRUSuite(t, acts)
	start := s.env.Now()
	upd := ruID + "#update-1"
	var phases []string
	s.robotSays(1*time.Second, running(upd, "downloading"))
	s.at(1500*time.Millisecond, func() { phases = append(phases, s.ruStatus(t).State) })
	s.robotSays(2*time.Second, running(upd, "installing"))
	s.at(2500*time.Millisecond, func() { phases = append(phases, s.ruStatus(t).State) })
	s.robotSays(3*time.Second, running(upd, "rebooting"))
	s.at(3500*time.Millisecond, func() { phases = append(phases, s.ruStatus(t).State) })
	s.robotSays(4*time.Second, func(r *simRobot) {
		r.states = []vda5050.ActionState{{ActionID: upd, ActionType: schemas.ActionSoftwareUpdate, ActionStatus: vda5050.ActionFinished}}
		r.version = "2.0.0"
	})
	var during schemas.RobotUpdateStatus
	s.at(20*time.Second, func() { during = s.ruStatus(t) })
	s.env.ExecuteWorkflow(RobotUpdate, ruInput())
	r := s.ruResult(t)

	require.Equal(t, schemas.RobotUpdateResult{RobotID: ruRobot, State: schemas.RobotUpdateSucceeded, FromVersion: "1.0.0", Version: "2.0.0", Attempts: 1}, r)
	require.Equal(t, []string{schemas.RobotUpdateDownloading, schemas.RobotUpdateInstalling, schemas.RobotUpdateRebooting}, phases)
	require.Equal(t, schemas.RobotUpdateHealthCheck, during.State)
	require.Equal(t, upd, during.ActionID)
	require.GreaterOrEqual(t, s.env.Now().Sub(start), 4*time.Second+30*time.Second, "the health check lasts HealthCheck after FINISHED")

	sent := acts.sentTo("")
	require.Len(t, sent, 1)
	a := sent[0]
	require.Equal(t, schemas.ActionSoftwareUpdate, a.ActionType)
	require.Equal(t, upd, a.ActionID, "actionId is <workflowID>#update-<attempt>")
	require.Equal(t, vda5050.BlockingHard, a.BlockingType)
	require.Equal(t, wantParams(artifactV("2.0.0"), false), params(a))

	require.Len(t, acts.reserves, 1)
	require.Equal(t, schemas.ReserveRobotInput{MissionID: ruID, WorkflowID: ruID, Site: ruSite, RobotID: ruRobot}, acts.reserves[0])
	require.Equal(t, []schemas.ReleaseRobotInput{{RobotID: ruRobot, MissionID: ruID, Site: ruSite}}, acts.releases)
	kinds := acts.auditKinds(ruID)
	require.Equal(t, "update.started", kinds[0])
	require.Equal(t, "update.succeeded", kinds[len(kinds)-1])
	require.NotContains(t, kinds, "update.rollback_started")
	for _, au := range acts.audits {
		require.Equal(t, "alice", au.Actor)
		require.Equal(t, "CR-42", au.Details["changeRequest"])
		require.Equal(t, "r1", au.Details["rolloutId"])
	}
}

// The registry is unreachable for a while (a database failover) when the
// update reserves and when it releases: the update waits it out, as a
// mission does, instead of failing the robot after 10 s and leaving it
// reserved.
func TestRobotUpdateWaitsOutARegistryOutage(t *testing.T) {
	acts := newOTAActs().robot(ruRobot, "1.0.0", installs)
	acts.reserveDown, acts.releaseDown = 12, 12 // well over 10 s of retries each
	s := newRUSuite(t, acts)
	start := s.env.Now()
	s.env.ExecuteWorkflow(RobotUpdate, ruInput())
	r := s.ruResult(t)
	require.Equal(t, schemas.RobotUpdateSucceeded, r.State, "%+v", r)
	require.Greater(t, s.env.Now().Sub(start), time.Minute, "the outage was waited out")
	require.NotEmpty(t, acts.releases, "released once the registry is back")
}

// A robot put into maintenance after the rollout resolved its targets is
// never rebooted into new software: the update is skipped, the robot
// released, nothing sent.
func TestRobotUpdateSkipsARobotNotInService(t *testing.T) {
	acts := newOTAActs().robot(ruRobot, "1.0.0", installs)
	acts.serviceStatus = map[string]string{ruRobot: "in_maintenance"}
	s := newRUSuite(t, acts)
	s.env.ExecuteWorkflow(RobotUpdate, ruInput())
	r := s.ruResult(t)
	require.Equal(t, schemas.RobotUpdateSkipped, r.State)
	require.Contains(t, r.Reason, "not in service (in_maintenance)")
	require.Empty(t, acts.sentTo(""))
	require.Len(t, acts.releases, 1)
}

func TestRobotUpdateWaitsForBusyRobot(t *testing.T) {
	acts := newOTAActs().robot(ruRobot, "1.0.0", installs)
	acts.queued[ruRobot] = 1 // on a mission: the first reservation is queued
	s := newRUSuite(t, acts)
	var waiting schemas.RobotUpdateStatus
	var sentWhileWaiting int
	s.at(time.Second, func() {
		waiting = s.ruStatus(t)
		sentWhileWaiting = len(acts.sentTo(""))
	})
	s.at(2*time.Second, func() { s.env.SignalWorkflow(schemas.SignalRobotAvailable, nil) })
	s.env.ExecuteWorkflow(RobotUpdate, ruInput())
	r := s.ruResult(t)

	require.Equal(t, schemas.RobotUpdateWaiting, waiting.State)
	require.Zero(t, sentWhileWaiting, "nothing is sent while the robot is on a mission")
	require.Equal(t, schemas.RobotUpdateSucceeded, r.State)
	require.Equal(t, "2.0.0", r.Version)
	require.Len(t, acts.reserves, 2, "robot-available retries the reservation")
	for _, in := range acts.reserves {
		require.Equal(t, ruRobot, in.RobotID, "the reservation asks for the target robot only")
		require.Equal(t, ruID, in.MissionID)
	}
	require.Len(t, acts.sentTo(ruRobot), 1)
	require.Len(t, acts.releases, 1)
	require.Empty(t, acts.cancelled)
}

func TestRobotUpdateVerifierRefusalIsFinal(t *testing.T) {
	acts := newOTAActs().robot(ruRobot, "1.0.0", nil)
	s := newRUSuite(t, acts)
	in := ruInput()
	in.Retries = 2
	upd := ruID + "#update-1"
	s.robotSays(time.Second, running(upd, "downloading"))
	s.robotSays(2*time.Second, func(r *simRobot) {
		r.states = []vda5050.ActionState{{ActionID: upd, ActionType: schemas.ActionSoftwareUpdate, ActionStatus: vda5050.ActionFailed,
			ResultDescription: "DigestMismatch: sha256 of the download differs from the manifest"}}
	})
	s.env.ExecuteWorkflow(RobotUpdate, in)
	r := s.ruResult(t)

	require.Equal(t, schemas.RobotUpdateFailed, r.State)
	require.Equal(t, "DigestMismatch", r.ErrorKind)
	require.Equal(t, 1, r.Attempts, "a verification refusal is not retried")
	require.False(t, r.RolledBack)
	require.Equal(t, "1.0.0", r.Version)
	require.Contains(t, r.Reason, "DigestMismatch: sha256 of the download differs")
	sent := acts.sentTo("")
	require.Len(t, sent, 1, "no retry and no rollback is sent")
	require.Equal(t, false, paramOf(sent[0], schemas.SoftwareUpdateParamRollback))
	kinds := acts.auditKinds(ruID)
	require.Contains(t, kinds, "update.attempt_failed")
	require.Equal(t, "update.failed", kinds[len(kinds)-1])
	require.NotContains(t, kinds, "update.rollback_started")
	require.Len(t, acts.releases, 1)
}

func TestRobotUpdateFatalAfterBootRollsBack(t *testing.T) {
	acts := newOTAActs().robot(ruRobot, "1.0.0", nil)
	s := newRUSuite(t, acts)
	upd := ruID + "#update-1"
	s.robotSays(1*time.Second, running(upd, "installing"))
	s.robotSays(2*time.Second, func(r *simRobot) {
		r.states = []vda5050.ActionState{{ActionID: upd, ActionType: schemas.ActionSoftwareUpdate, ActionStatus: vda5050.ActionFinished}}
		r.version = "2.0.0"
		// From here on the robot handles the rollback by itself.
		r.react = fatalAfterBoot
	})
	var health schemas.RobotUpdateStatus
	s.at(5*time.Second, func() { health = s.ruStatus(t) })
	s.robotSays(10*time.Second, func(r *simRobot) {
		r.errs = []vda5050.Error{{ErrorType: "navigationStackCrash", ErrorLevel: vda5050.ErrorFatal, ErrorDescription: "planner segfault"}}
	})
	s.env.ExecuteWorkflow(RobotUpdate, ruInput())
	r := s.ruResult(t)

	require.Equal(t, schemas.RobotUpdateHealthCheck, health.State)
	require.Equal(t, schemas.RobotUpdateFailed, r.State)
	require.Equal(t, "RobotFatal", r.ErrorKind)
	require.True(t, r.RolledBack)
	require.Equal(t, "1.0.0", r.Version, "the robot reports the previous version after the rollback")
	require.Equal(t, 1, r.Attempts, "a FATAL error on the new version is not retried")
	require.Contains(t, r.Reason, "navigationStackCrash")

	sent := acts.sentTo("")
	require.Len(t, sent, 2)
	require.Equal(t, upd, sent[0].ActionID)
	require.Equal(t, ruID+"#rollback", sent[1].ActionID)
	require.Equal(t, schemas.ActionSoftwareUpdate, sent[1].ActionType)
	require.Equal(t, wantParams(artifactV("1.0.0"), true), params(sent[1]), "the rollback installs Previous with rollback=true")
	kinds := acts.auditKinds(ruID)
	require.Subset(t, kinds, []string{"update.started", "update.attempt_failed", "update.rollback_started", "update.rolled_back"})
	require.Equal(t, "update.failed", kinds[len(kinds)-1])
	require.Len(t, acts.releases, 1, "released once, after the rollback")
}

func TestRobotUpdateTimeoutRetriesThenRollsBack(t *testing.T) {
	acts := newOTAActs().robot(ruRobot, "1.0.0", hangsThenRollsBack)
	s := newRUSuite(t, acts)
	in := ruInput()
	in.Retries = 1
	in.Timeout = 2 * time.Minute
	start := s.env.Now()
	var second schemas.RobotUpdateStatus
	s.at(3*time.Minute, func() { second = s.ruStatus(t) })
	s.env.ExecuteWorkflow(RobotUpdate, in)
	r := s.ruResult(t)

	require.Equal(t, schemas.RobotUpdateInstalling, second.State, "the second attempt follows the robot's phases too")
	require.Equal(t, 2, second.Attempts)
	require.Equal(t, ruID+"#update-2", second.ActionID)

	require.Equal(t, schemas.RobotUpdateTimedOut, r.State)
	require.Equal(t, "Timeout", r.ErrorKind)
	require.Equal(t, 2, r.Attempts, "Retries=1: two attempts")
	require.True(t, r.RolledBack, "a timed-out robot may have installed something: it is rolled back")
	require.Equal(t, "1.0.0", r.Version)
	require.Contains(t, r.Reason, "within 2m0s")

	sent := acts.sentTo("")
	ids := make([]string, len(sent))
	for i, a := range sent {
		ids[i] = a.ActionID
	}
	require.Equal(t, []string{ruID + "#update-1", ruID + "#update-2", ruID + "#rollback"}, ids)
	require.Equal(t, true, paramOf(sent[2], schemas.SoftwareUpdateParamRollback))
	require.GreaterOrEqual(t, s.env.Now().Sub(start), 2*in.Timeout+OTA.RetryBackoff)
	kinds := acts.auditKinds(ruID)
	require.Equal(t, 2, count(kinds, "update.attempt_failed"))
	require.Equal(t, "update.timed_out", kinds[len(kinds)-1])
}

func count(xs []string, x string) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

func TestRobotUpdateAlreadyOnVersionIsSkipped(t *testing.T) {
	// The registry still says 1.0.0; the robot's stored state says 2.0.0.
	acts := newOTAActs().robot(ruRobot, "2.0.0", installs)
	s := newRUSuite(t, acts)
	s.env.ExecuteWorkflow(RobotUpdate, ruInput())
	r := s.ruResult(t)

	require.Equal(t, schemas.RobotUpdateSkipped, r.State)
	require.Equal(t, "2.0.0", r.FromVersion)
	require.Equal(t, "2.0.0", r.Version)
	require.Zero(t, r.Attempts)
	require.Empty(t, acts.sentTo(""), "no instant action for a robot already on the version")
	require.Len(t, acts.releases, 1)
	require.Contains(t, acts.auditKinds(ruID), "update.skipped")
}

func TestRobotUpdateCancelledWhileWaiting(t *testing.T) {
	acts := newOTAActs().robot(ruRobot, "1.0.0", installs)
	acts.queued[ruRobot] = 1000
	s := newRUSuite(t, acts)
	s.at(time.Minute, func() { s.env.CancelWorkflow() })
	s.env.ExecuteWorkflow(RobotUpdate, ruInput())
	r := s.ruResult(t)

	require.Equal(t, schemas.RobotUpdateCancelled, r.State)
	require.Equal(t, "1.0.0", r.Version)
	require.Equal(t, []string{ruID}, acts.cancelled, "leaves the reservation queue")
	require.Empty(t, acts.sentTo(""), "nothing is sent")
	// A grant may have raced the cancellation: the release (a no-op when
	// the hold is not ours) names this workflow's hold only.
	require.Equal(t, []schemas.ReleaseRobotInput{{RobotID: ruRobot, MissionID: ruID, Site: ruSite}}, acts.releases)
	kinds := acts.auditKinds(ruID)
	require.Equal(t, "update.cancelled", kinds[len(kinds)-1])
}

// Once the update is sent, a cancellation (the rollout aborted) lets it
// finish: the robot is never left half-updated.
func TestRobotUpdateCancelledAfterSendFinishes(t *testing.T) {
	acts := newOTAActs().robot(ruRobot, "1.0.0", installs)
	s := newRUSuite(t, acts)
	s.at(5*time.Second, func() { s.env.CancelWorkflow() })
	s.env.ExecuteWorkflow(RobotUpdate, ruInput())
	r := s.ruResult(t)

	require.Equal(t, schemas.RobotUpdateSucceeded, r.State)
	require.Equal(t, "2.0.0", r.Version)
	require.Len(t, acts.sentTo(""), 1)
	require.Empty(t, acts.cancelled)
	require.Len(t, acts.releases, 1)
}

// A robot that is offline (or FATAL) while the update waits for it does not
// hold the wave open: after OTA.UnavailableFor the update times out, leaves
// the queue and sends nothing.
func TestRobotUpdateGivesUpOnUnavailableRobot(t *testing.T) {
	acts := newOTAActs().robot(ruRobot, "1.0.0", installs)
	acts.robots[ruRobot].conn = string(vda5050.ConnectionBroken)
	acts.queued[ruRobot] = 1000 // ONLINE is required for a grant
	s := newRUSuite(t, acts)
	start := s.env.Now()
	s.env.ExecuteWorkflow(RobotUpdate, ruInput())
	r := s.ruResult(t)
	require.Less(t, s.env.Now().Sub(start), OTA.UnavailableFor+2*OTA.RequeueAfter, "gave up once the robot had been away UnavailableFor")
	require.Equal(t, schemas.RobotUpdateTimedOut, r.State)
	require.Equal(t, "RobotUnavailable", r.ErrorKind)
	require.Contains(t, r.Reason, "CONNECTIONBROKEN")
	require.Equal(t, []string{ruID}, acts.cancelled, "leaves the reservation queue")
	require.Empty(t, acts.sentTo(""))
}

// A robot that comes back within the grace is waited for.
func TestRobotUpdateWaitsForRobotThatComesBack(t *testing.T) {
	acts := newOTAActs().robot(ruRobot, "1.0.0", installs)
	acts.robots[ruRobot].conn = string(vda5050.ConnectionOffline)
	acts.queued[ruRobot] = 4 // granted on the fifth try, after 2 min
	s := newRUSuite(t, acts)
	s.at(OTA.UnavailableFor/2, func() {
		acts.mu.Lock()
		acts.robots[ruRobot].conn = string(vda5050.ConnectionOnline)
		acts.mu.Unlock()
	})
	s.env.ExecuteWorkflow(RobotUpdate, ruInput())
	r := s.ruResult(t)
	require.Equal(t, schemas.RobotUpdateSucceeded, r.State, r.Reason)
}

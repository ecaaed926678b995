package schemas

import "time"

// The Rollout and RobotUpdate workflows' contract (workflows.Rollout,
// workflows.RobotUpdate): inputs, results, states, the status their
// queries answer and the arguments of their updates.

// Rollout states (status query, MissionState-like details in the Web UI).
const (
	RolloutVerifying   = "VERIFYING"
	RolloutResolving   = "RESOLVING"
	RolloutRunning     = "RUNNING"
	RolloutSoaking     = "SOAKING"
	RolloutWaiting     = "WAITING_FOR_WINDOW"
	RolloutPaused      = "PAUSED"
	RolloutRollingBack = "ROLLING_BACK"
	RolloutCompleted   = "COMPLETED"
	RolloutAborted     = "ABORTED"
	RolloutFailed      = "FAILED"
)

// RobotUpdate states (RobotOutcome.State, the rollout status per robot);
// not to be confused with Temporal updates (UpdateCancel, UpdateAbort, …).
const (
	RobotUpdatePending     = "PENDING"
	RobotUpdateWaiting     = "WAITING_FOR_ROBOT" // reservation queued: the robot is on a mission
	RobotUpdateSent        = "SENT"
	RobotUpdateDownloading = "DOWNLOADING"
	RobotUpdateVerifying   = "VERIFYING"
	RobotUpdateInstalling  = "INSTALLING"
	RobotUpdateRebooting   = "REBOOTING"
	RobotUpdateHealthCheck = "HEALTH_CHECK"
	RobotUpdateRollingBack = "ROLLING_BACK"
	RobotUpdateSucceeded   = "SUCCEEDED"
	RobotUpdateFailed      = "FAILED"
	RobotUpdateTimedOut    = "TIMED_OUT"
	RobotUpdateRolledBack  = "ROLLED_BACK" // updated, then rolled back because the rollout aborted
	// RobotUpdateRollbackFailed: updated, then its rollback failed: Reason
	// says how, Version is what the robot last reported (the new version,
	// the previous one without a healthy confirmation, or unknown).
	RobotUpdateRollbackFailed = "ROLLBACK_FAILED"
	RobotUpdateSkipped        = "SKIPPED"   // already on the version when reserved
	RobotUpdateCancelled      = "CANCELLED" // never started: the rollout aborted first
)

// RolloutInput starts (or, with Carry, continues) a Rollout workflow.
type RolloutInput struct {
	Spec        RolloutSpec `json:"spec"`
	RequestedBy string      `json:"requestedBy,omitempty"`
	// Carry is the state handed to the next run by continue-as-new; nil on
	// the first run.
	Carry *RolloutCarry `json:"carry,omitempty"`
}

// RolloutCarry is what a Rollout run hands to the next one.
type RolloutCarry struct {
	Status   RolloutStatus           `json:"status"`
	Artifact ArtifactRef             `json:"artifact"`
	Targets  []TargetRobot           `json:"targets"`
	Previous map[string]*ArtifactRef `json:"previous,omitempty"` // version → artifact to roll back to
	Next     int                     `json:"next"`               // index in Targets of the next robot to start
	Soaked   bool                    `json:"soaked"`             // the current wave's soak is done
}

// RolloutStatus answers the status query, the updates, and is the result.
type RolloutStatus struct {
	RolloutID   string         `json:"rolloutId"`
	State       string         `json:"state"`
	Artifact    string         `json:"artifact"`
	Version     string         `json:"version,omitempty"`
	Rollback    bool           `json:"rollback,omitempty"`
	CurrentWave int            `json:"currentWave"` // 0-based
	Waves       []WaveStatus   `json:"waves"`
	Robots      []RobotOutcome `json:"robots"`
	Counts      RolloutCounts  `json:"counts"`
	// FailureRate is failures (per the abort criteria's failure type) over
	// executed robots, percent.
	FailureRate float64        `json:"failureRate"`
	Paused      bool           `json:"paused"`
	SoakUntil   time.Time      `json:"soakUntil,omitempty"`
	AbortReason string         `json:"abortReason,omitempty"`
	LastError   string         `json:"lastError,omitempty"`
	Skipped     []SkippedRobot `json:"skipped,omitempty"`
	Runs        int            `json:"runs"` // continue-as-new generations so far
	StartedAt   time.Time      `json:"startedAt"`
	UpdatedAt   time.Time      `json:"updatedAt"`
}

// Terminal reports whether the rollout has ended.
func (s RolloutStatus) Terminal() bool {
	return s.State == RolloutCompleted || s.State == RolloutAborted || s.State == RolloutFailed
}

// RolloutCounts sums the robots' outcomes.
type RolloutCounts struct {
	Targets    int `json:"targets"`
	InFlight   int `json:"inFlight"`
	Succeeded  int `json:"succeeded"`
	Failed     int `json:"failed"`
	TimedOut   int `json:"timedOut"`
	Skipped    int `json:"skipped"`
	RolledBack int `json:"rolledBack"`
	// RollbackFailed counts robots whose rollback did not end on a
	// healthy previous version (ROLLBACK_FAILED). Succeeded counts every
	// update that succeeded, the rolled back ones too.
	RollbackFailed int `json:"rollbackFailed,omitempty"`
	Cancelled      int `json:"cancelled"`
}

// WaveStatus is one wave's progress.
type WaveStatus struct {
	Index     int    `json:"index"`
	Size      int    `json:"size"`
	State     string `json:"state"` // PENDING, RUNNING, SOAKING, DONE, CANCELLED
	Started   int    `json:"started"`
	Succeeded int    `json:"succeeded"`
	Failed    int    `json:"failed"`
	TimedOut  int    `json:"timedOut"`
}

// RobotOutcome is one target robot's update as the rollout sees it.
type RobotOutcome struct {
	RobotID     string `json:"robotId"`
	Wave        int    `json:"wave"`
	State       string `json:"state"`
	FromVersion string `json:"fromVersion,omitempty"`
	Version     string `json:"version,omitempty"` // what it runs after the update (as last seen)
	Attempts    int    `json:"attempts,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// AbortRequest is the argument of the abort update.
type AbortRequest struct {
	Reason string `json:"reason"`
	By     string `json:"by,omitempty"`
}

// RobotUpdateInput starts a RobotUpdate child workflow.
type RobotUpdateInput struct {
	RolloutID string      `json:"rolloutId"`
	Robot     TargetRobot `json:"robot"`
	Artifact  ArtifactRef `json:"artifact"`
	// Previous is what to roll back to when the update fails after the
	// robot installed something; nil when the store has no such artifact.
	Previous *ArtifactRef `json:"previous,omitempty"`
	// Rollback marks an explicit rollback: a lower version is allowed
	// where the release's signed manifest says so (rollbackFrom).
	Rollback      bool          `json:"rollback,omitempty"`
	Timeout       time.Duration `json:"timeout"`     // one attempt: send → installed and reporting the version (the health check follows)
	Retries       int           `json:"retries"`     // extra attempts after a retryable failure
	HealthCheck   time.Duration `json:"healthCheck"` // how long the new version must run without FATAL
	RequestedBy   string        `json:"requestedBy,omitempty"`
	ChangeRequest string        `json:"changeRequest,omitempty"`
}

// RobotUpdateResult is how a RobotUpdate ended (it never fails as a
// workflow: the outcome is data the Rollout counts).
type RobotUpdateResult struct {
	RobotID     string `json:"robotId"`
	State       string `json:"state"` // SUCCEEDED, FAILED, TIMED_OUT, SKIPPED, CANCELLED
	FromVersion string `json:"fromVersion"`
	Version     string `json:"version"` // what the robot runs at the end, as last reported
	Attempts    int    `json:"attempts"`
	Reason      string `json:"reason,omitempty"`
	// ErrorKind is the robot's or verifier's refusal kind when known
	// (UpdateRefusal: "Busy", "DigestMismatch", "BadParameter", …),
	// or "Timeout", "RobotFatal", "HealthCheck", "SendFailed".
	ErrorKind  string `json:"errorKind,omitempty"`
	RolledBack bool   `json:"rolledBack,omitempty"`
}

// RobotUpdateStatus answers RobotUpdate's status query.
type RobotUpdateStatus struct {
	RobotID     string    `json:"robotId"`
	State       string    `json:"state"`
	FromVersion string    `json:"fromVersion"`
	Version     string    `json:"version"` // as last reported by the robot
	Target      string    `json:"target"`
	Attempts    int       `json:"attempts"`
	ActionID    string    `json:"actionId,omitempty"`
	LastError   string    `json:"lastError,omitempty"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// Wave states.
const (
	WavePending   = "PENDING"
	WaveRunning   = "RUNNING"
	WaveSoaking   = "SOAKING"
	WaveDone      = "DONE"
	WaveCancelled = "CANCELLED"
)

// UpdateCounts are the outcomes of the robots' updates so far in a
// rollout, counting each robot once with the outcome of its last attempt.
type UpdateCounts struct {
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	TimedOut  int `json:"timedOut"`
}

// Executed is the number of robots whose update has finished, whatever the
// outcome (AWS IoT Jobs' "executed things").
func (c UpdateCounts) Executed() int { return c.Succeeded + c.Failed + c.TimedOut }

// Failures counts the failures of failureType: c.Failed (FAILED),
// c.TimedOut (TIMED_OUT) or both (ALL, and any unknown type, the stricter
// reading); what names them for messages.
func (c UpdateCounts) Failures(failureType string) (n int, what string) {
	switch failureType {
	case FailureFailed:
		return c.Failed, FailureFailed
	case FailureTimedOut:
		return c.TimedOut, FailureTimedOut
	}
	return c.Failed + c.TimedOut, FailureFailed + " or " + FailureTimedOut
}

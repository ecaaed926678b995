package schemas

// Application error types (temporal.ApplicationError's type): what a
// workflow or an activity failed with, for callers to tell one failure from
// another and for retry policies to name what is final. Each is declared
// once here; the artifact verifier's kinds (internal/artifact.Kind*) are
// error types too.

// A Mission fails with these.
const (
	// ErrInvalidMission: the spec breaks mission.schema.json or the site
	// map (also PlanMission's and BuildOrder's, non-retryable).
	ErrInvalidMission     = "InvalidMission"
	ErrRobotRejectedOrder = "RobotRejectedOrder"
	ErrRobotFatal         = "RobotFatalError"
	ErrRobotDisconnected  = "RobotDisconnected"
	ErrActionFailed       = "ActionFailed"
	ErrMissionTimeout     = "MissionTimeout"
	// ErrRobotUnresponsive: the robot's state never showed the order,
	// however often it was sent (robots.orderAckTimeout × orderResends).
	ErrRobotUnresponsive = "RobotUnresponsive"
	// ErrRobotStalled: the robot made no progress for Timings.StallTimeout
	// while not paused (and no other robot could take over).
	ErrRobotStalled = "RobotStalled"
	// ErrRobotRefused: an update (cancel, pause, resume) whose instant
	// action the robot refused or never confirmed; the message carries the
	// robot's reason.
	ErrRobotRefused = "RobotRefused"
	// ErrMissionConflict: a mission ID came again with another spec.
	ErrMissionConflict = "MissionConflict"
	// ErrWMSTimeout: a step's waitFor signal did not come within its
	// timeout and the step said to fail.
	ErrWMSTimeout = "WMSSignalTimeout"
)

// The OTA workflows fail with these.
const (
	// ErrInvalidRollout: the rollout asks for something impossible (an
	// unknown robot, no artifact store); also ResolveTargets'.
	ErrInvalidRollout  = "InvalidRollout"
	ErrArtifactRefused = "ArtifactRefused"
	ErrNoTargets       = "NoTargets"
	// ErrArtifactUnavailable: the artifact store could not be read to find
	// what the targets would roll back to; the rollout stops before it
	// touches a robot rather than run without a rollback.
	ErrArtifactUnavailable = "ArtifactUnavailable"
)

// Activities fail with these (non-retryable).
const (
	ErrUnknownRobot = "UnknownRobot"
	// ErrStoreRefused: the fleet registry refused the call itself (bad
	// data, a constraint): repeating it cannot help. A registry that is
	// restarting or unreachable is an ordinary, retryable error instead.
	ErrStoreRefused = "StoreRefused"
	// ErrNotReserved: instant actions for a holder that no longer holds
	// the robot's reservation were withheld (SendInstantActionsInput.Holder).
	ErrNotReserved = "NotReserved"

	// ErrUnsigned: the artifact has no signature file; unsigned software is
	// never installed.
	ErrUnsigned = "Unsigned"
	// ErrArtifactNotFound: the store has no such artifact or manifest.
	ErrArtifactNotFound = "ArtifactNotFound"
	// ErrArtifactForbidden: the store refused the download (401, 403): a
	// private store without, or with an expired, presigned token
	// (FLEETFLOW_ARTIFACTS_URL_QUERY). Retrying would not help.
	ErrArtifactForbidden = "ArtifactForbidden"

	// ErrWMSRejected: the receiver answered 4xx other than 408 and 429; the
	// same request cannot succeed (DeliverWebhook).
	ErrWMSRejected = "WMSRejected"
	// ErrWMSClientUnknown: the event names a client the workers do not
	// have a webhook for (configuration changed under a running mission).
	ErrWMSClientUnknown = "WMSClientUnknown"
)

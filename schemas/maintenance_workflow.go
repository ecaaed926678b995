package schemas

import "time"

// The Maintenance and MaintenanceRound workflows' contract: inputs,
// states, the status their queries answer and the arguments of their
// updates (MaintenanceInput is in maintenance.go).

// Maintenance states (MaintenanceStatus.State).
const (
	MaintDraining     = "DRAINING"   // no new missions; waiting for the robot to be free
	MaintDriving      = "DRIVING"    // on its way to the service station
	MaintDiagnosing   = "DIAGNOSING" // the diagnostics instant action runs
	MaintAwaitSignOff = "AWAITING_SIGNOFF"
	MaintReturned     = "RETURNED" // back in service
	MaintOutOfService = "OUT_OF_SERVICE"
	MaintCancelled    = "CANCELLED"
)

// Sign-off results.
const (
	SignOffPass = "pass" // the robot returns to service
	SignOffFail = "fail" // the robot goes out of service
)

// SignOff is the argument of update complete.
type SignOff struct {
	Result string `json:"result"` // SignOffPass or SignOffFail
	Notes  string `json:"notes,omitempty"`
	By     string `json:"by,omitempty"`
}

// EscalateRequest is the argument of update escalate.
type EscalateRequest struct {
	Reason string `json:"reason"`
	By     string `json:"by,omitempty"`
}

// MaintenanceStatus answers query status; it is the workflow's result too.
type MaintenanceStatus struct {
	RobotID     string    `json:"robotId"`
	State       string    `json:"state"`
	Station     string    `json:"station,omitempty"`
	Reason      string    `json:"reason"`
	Diagnostics string    `json:"diagnostics,omitempty"`
	SignOffDue  time.Time `json:"signOffDue,omitzero"`
	// Escalated: the sign-off deadline passed or someone escalated
	// (Escalations says who and why); the maintenance still waits.
	Escalated   bool      `json:"escalated,omitempty"`
	Escalations []string  `json:"escalations,omitempty"`
	Result      string    `json:"result,omitempty"`
	Notes       string    `json:"notes,omitempty"`
	SignedOffBy string    `json:"signedOffBy,omitempty"`
	LastError   string    `json:"lastError,omitempty"`
	StartedAt   time.Time `json:"startedAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// MaintenanceRoundInput services every robot of a site in service.
type MaintenanceRoundInput struct {
	Site        string `json:"site"`
	Station     string `json:"station,omitempty"` // as MaintenanceInput.Station
	Reason      string `json:"reason"`
	RequestedBy string `json:"requestedBy,omitempty"`
	Diagnostics bool   `json:"diagnostics,omitempty"`
	// SignOffTimeoutSeconds: as MaintenanceInput's, for each robot.
	SignOffTimeoutSeconds int `json:"signOffTimeoutSeconds,omitempty"`
	// Parallel is how many robots are out of service at once (default 1:
	// the site keeps all its robots but one).
	Parallel int `json:"parallel,omitempty"`
}

// MaintenanceRoundStatus answers query status; it is the result too.
type MaintenanceRoundStatus struct {
	Site    string   `json:"site"`
	Robots  []string `json:"robots"`  // in the order they are serviced
	Running []string `json:"running"` // Maintenance workflow IDs under way
	// Outcomes maps each robot done to its maintenance's final state
	// (RETURNED, OUT_OF_SERVICE, CANCELLED) or the error it ended with.
	Outcomes  map[string]string `json:"outcomes"`
	StartedAt time.Time         `json:"startedAt"`
}

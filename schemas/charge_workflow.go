package schemas

import "time"

// The Charge workflow's states and the status its query answers
// (ChargeInput and its signals' arguments are in charge.go).

// Charge states (ChargeStatus.State).
const (
	ChargeWaitingRobot   = "WAITING_FOR_ROBOT"   // the robot finishes what it does first
	ChargeWaitingCharger = "WAITING_FOR_CHARGER" // every charger of the site is taken
	ChargeDriving        = "DRIVING"             // on its way to the charger
	ChargeCharging       = "CHARGING"
	ChargeVacating       = "VACATING"    // charged and released; the charger is held until the robot leaves it
	ChargeDone           = "CHARGED"     // charged, and off the charger
	ChargeInterrupted    = "INTERRUPTED" // taken off for an urgent mission
	ChargeFailed         = "FAILED"
	ChargeCancelled      = "CANCELLED"
)

// ChargeStatus answers query status; it is the workflow's result too.
type ChargeStatus struct {
	RobotID string `json:"robotId"`
	State   string `json:"state"`
	Station string `json:"station,omitempty"`
	// QueuePosition is the place in line for a charger (1 = next).
	QueuePosition int `json:"queuePosition,omitempty"`
	// WaitingFor, while WAITING_FOR_CHARGER, says what keeps a charger
	// from it beyond the line: chargers stood on by another robot.
	WaitingFor   string  `json:"waitingFor,omitempty"`
	BatteryStart float64 `json:"batteryStart"` // percent, when reserved
	Battery      float64 `json:"battery"`      // percent, last read
	Resume       float64 `json:"resume"`
	Reason       string  `json:"reason"`
	// InterruptedBy is the urgent mission that took the robot.
	InterruptedBy string    `json:"interruptedBy,omitempty"`
	LastError     string    `json:"lastError,omitempty"`
	StartedAt     time.Time `json:"startedAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

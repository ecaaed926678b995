package schemas

// Charging: a robot below the charge threshold after a mission is sent to
// a free charging station of its site by a Charge workflow (task queue
// maintenance), charges there with the VDA 5050 instant action
// startCharging (a predefined action, VDA 5050 2.0 §6.8), and returns to the missions'
// pool above the resume threshold. Charging stations are reserved like
// robots, so two robots never share one.

// ChargeInput starts a Charge workflow.
type ChargeInput struct {
	RobotID string `json:"robotId"` // manufacturer/serialNumber
	Site    string `json:"site"`
	// Resume: the robot is charged, and released, at this battery charge
	// or above (percent, 0–100).
	Resume float64 `json:"resume"`
	Reason string  `json:"reason"`
	// RequestedBy: who started it (a mission ID, the Reaper, an operator).
	RequestedBy string `json:"requestedBy,omitempty"`
}

// InterruptChargingRequest is the argument of SignalInterruptCharging.
type InterruptChargingRequest struct {
	MissionID string `json:"missionId"`
}

// ReserveChargerInput asks for a charging station of Site for Holder (the
// Charge workflow's ID), nearest to where RobotID stands (activity
// ReserveCharger).
type ReserveChargerInput struct {
	Site    string `json:"site"`
	Holder  string `json:"holder"`
	RobotID string `json:"robotId"`
}

// ReserveChargerResult: the station and its node, or Queued with the
// place in line (1 = next).
type ReserveChargerResult struct {
	StationID     string `json:"stationId,omitempty"`
	Node          string `json:"node,omitempty"`
	Queued        bool   `json:"queued,omitempty"`
	QueuePosition int    `json:"queuePosition,omitempty"`
	// Occupied, while queued, names chargers free in the registry but
	// stood on by another robot ("charger-1 (robot acme/AMR-2 stands on it)").
	Occupied []string `json:"occupied,omitempty"`
}

// ReleaseChargerInput ends Holder's station reservation and place in line
// (activity ReleaseCharger); the next in line is signalled.
type ReleaseChargerInput struct {
	Site   string `json:"site"`
	Holder string `json:"holder"`
}

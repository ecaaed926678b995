package schemas

// MaintenanceInput starts a maintenance of one robot.
type MaintenanceInput struct {
	RobotID string `json:"robotId"` // manufacturer/serialNumber
	Site    string `json:"site"`
	// Station is the service station (site map) the robot drives to; ""
	// services it where it stands.
	Station     string `json:"station,omitempty"`
	Reason      string `json:"reason"`
	RequestedBy string `json:"requestedBy,omitempty"`
	// Diagnostics runs the vehicle's self-test (instant action
	// "diagnostics") at the station; its resultDescription is reported.
	Diagnostics bool `json:"diagnostics,omitempty"`
	// SignOffTimeoutSeconds: the technician's sign-off is due this long
	// after the robot is ready; past it the maintenance escalates (and
	// keeps waiting). 0 = MaintenanceTimings.SignOffTimeout.
	SignOffTimeoutSeconds int `json:"signOffTimeoutSeconds,omitempty"`
}

// SiteRobotsInput lists the robots of Site in service (activity
// SiteRobots), for a maintenance round.
type SiteRobotsInput struct {
	Site string `json:"site"`
}

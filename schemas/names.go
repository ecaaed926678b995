package schemas

// Every name that crosses a process boundary, once: task queues, workflow
// types, Temporal signals, updates and queries, activities and search
// attributes. The workflows register and handle them; the workers, the
// bridge, the REST ingress, internal/wms and the starter CLI send and read
// them. docs/architecture.md lists which workflow has which.

// Task queues, one per kind of work, each scalable on its own backlog.
const (
	TaskQueueMissions    = "missions"
	TaskQueueRobotIO     = "robot-io"
	TaskQueueOTA         = "ota"
	TaskQueueMaintenance = "maintenance"
)

// Workflow types (the names the workers register the workflows under).
const (
	MissionWorkflowType = "Mission"
	ReaperWorkflowType  = "Reaper"
	// WMSEventsWorkflowType delivers one mission's events to its WMS
	// client's webhook, in order (a child of the Mission that outlives it).
	WMSEventsWorkflowType = "WMSEvents"
	// RolloutWorkflowType updates a fleet in waves (IDs: RolloutWorkflowID).
	RolloutWorkflowType = "Rollout"
	// RobotUpdateWorkflowType updates one robot, a child of its Rollout
	// (IDs: RobotUpdateWorkflowID).
	RobotUpdateWorkflowType = "RobotUpdate"
	// MaintenanceWorkflowType services one robot (IDs: MaintenanceWorkflowID).
	MaintenanceWorkflowType = "Maintenance"
	// MaintenanceRoundWorkflowType services every robot of a site in
	// service, one Maintenance after another.
	MaintenanceRoundWorkflowType = "MaintenanceRound"
	// ChargeWorkflowType sends a robot to a free charging station of its
	// site and back to the missions' pool (see charge.go).
	ChargeWorkflowType = "Charge"
)

// ReaperScheduleID is the Temporal Schedule that starts a Reaper sweep
// every worker.reaperInterval (the workers create it).
const ReaperScheduleID = "fleetflow-reaper"

// Signals. A signal's argument type is named beside it.
const (
	// SignalRobotEvent carries a RobotEvent from the bridge to the
	// workflow that owns the robot's order or instant action.
	SignalRobotEvent = "robot-event"
	// SignalRobotAvailable wakes the workflows waiting for a robot of a
	// site (Mission, RobotUpdate, Maintenance, Charge): one may be free
	// now. Sent by the activities that release robots.
	SignalRobotAvailable = "robot-available"
	// SignalLoadReady and SignalLoadTaken (LoadSignal) are the WMS's
	// mission signals a step can wait for: before its action, and after.
	SignalLoadReady = "loadReady"
	SignalLoadTaken = "loadTaken"
	// SignalWMSEvents carries further []WMSEvent from a Mission to its
	// WMSEvents child.
	SignalWMSEvents = "wms-events"
	// SignalChargerAvailable: a charging station of the site was released;
	// a Charge workflow waiting for one asks again.
	SignalChargerAvailable = "charger-available"
	// SignalInterruptCharging (InterruptChargingRequest): an urgent mission
	// whose spec allows it wants the robot; the Charge workflow stops
	// charging (or driving to the charger) and releases the robot.
	SignalInterruptCharging = "interrupt-charging"
)

// Temporal updates (each with a validator; their arguments' JSON Schemas
// are in updates/). Not to be confused with a RobotUpdate workflow or the
// softwareUpdate instant action (see docs/architecture.md, Glossary).
const (
	// Mission: cancel (CancelRequest), pause and resume.
	UpdateCancel = "cancel"
	UpdatePause  = "pause"
	UpdateResume = "resume"
	// UpdateResolve is the operator's decision about a mission whose robot
	// failed with the load on board (ResolveRequest).
	UpdateResolve = "resolve"
	// UpdateReprioritize changes a waiting mission's priority, hence its
	// place in line (ReprioritizeRequest).
	UpdateReprioritize = "reprioritize"
	// UpdateAccept is the update of update-with-start (AcceptRequest): it
	// answers the mission's status when the request is the mission's own,
	// and is refused when the same mission ID comes with another spec.
	UpdateAccept = "accept"
	// UpdateAppend adds steps after a mission's last one (AppendRequest);
	// a robot already driving gets them as a VDA 5050 order update.
	UpdateAppend = "append"

	// UpdateAbort stops a Rollout (AbortRequest).
	UpdateAbort = "abort"
	// UpdatePromote ends a Rollout's current soak time early.
	UpdatePromote = "promote"

	// UpdateComplete is a Maintenance's sign-off (SignOff): the
	// technician's result.
	UpdateComplete = "complete"
	// UpdateEscalate raises a Maintenance to someone else (EscalateRequest).
	UpdateEscalate = "escalate"
)

// QueryStatus answers a workflow's status (MissionStatus, RolloutStatus,
// MaintenanceStatus, …).
const QueryStatus = "status"

// Activity names. Each has one typed handle in workflows/acts.go and one
// method of activities.Activities (a test in workers/worker checks both).
const (
	ActivityPlanMission        = "PlanMission"
	ActivityReserveRobot       = "ReserveRobot"
	ActivityCancelQueued       = "CancelQueued"
	ActivityBuildOrder         = "BuildOrder"
	ActivitySendOrder          = "SendOrder"
	ActivitySendInstantActions = "SendInstantActions"
	ActivityRobotSnapshot      = "RobotSnapshot"
	ActivityReleaseRobot       = "ReleaseRobot"
	ActivityAudit              = "Audit"
	ActivitySweepLeases        = "SweepLeases"
	ActivityFreeLease          = "FreeLease"
	ActivityDeliverWebhook     = "DeliverWebhook"
	ActivityWebhookOf          = "WebhookOf"

	// Maintenance (task queue maintenance).
	ActivitySetServiceStatus = "SetServiceStatus"
	// Charge (task queue maintenance).
	ActivityReserveCharger = "ReserveCharger"
	ActivityReleaseCharger = "ReleaseCharger"
	// MaintenanceRound (task queue maintenance).
	ActivitySiteRobots = "SiteRobots"

	// OTA (task queue ota).
	ActivityVerifyArtifact = "VerifyArtifact"
	ActivityResolveTargets = "ResolveTargets"
	ActivityLocateArtifact = "LocateArtifact"
)

// Search attributes set by fleetflow's workflows (registered on the server
// by the local stack; see deploy/ for production).
const (
	SearchAttrRobotID      = "RobotId"
	SearchAttrSite         = "Site"
	SearchAttrMissionState = "MissionState"
	SearchAttrRolloutID    = "RolloutId"
	SearchAttrPriority     = "Priority"
	// SearchAttrWMSClient names the WMS client that started a mission (set
	// at start, MissionInput.Client); the REST ingress lists and serves a
	// client only its own missions by it.
	SearchAttrWMSClient = "WmsClient"
)

// SearchAttributeTypes maps each custom search attribute to its type, for
// registration (dev server --search-attribute NAME=TYPE).
var SearchAttributeTypes = map[string]string{
	SearchAttrRobotID:      "Keyword",
	SearchAttrSite:         "Keyword",
	SearchAttrMissionState: "Keyword",
	SearchAttrRolloutID:    "Keyword",
	SearchAttrPriority:     "Int",
	SearchAttrWMSClient:    "Keyword",
}

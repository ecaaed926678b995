// Package workflows holds fleetflow's deterministic workflow code — missions
// today, rollouts and maintenance later — and every name that crosses a
// process boundary: workflow IDs, task queues, signal, update, query and
// activity names. It never imports an I/O package: no MQTT, no database, no
// HTTP, no clock or randomness outside the workflow API.
package workflows

import "github.com/fleetflow/fleetflow/schemas"

// Task queues, one per kind of work, each scalable on its own backlog.
const (
	TaskQueueMissions    = "missions"
	TaskQueueRobotIO     = "robot-io"
	TaskQueueOTA         = "ota"
	TaskQueueMaintenance = "maintenance"
)

// Workflow type names.
const (
	MissionWorkflowType = "Mission"
	ReaperWorkflowType  = "Reaper"
	// WMSEventsWorkflowType delivers one mission's events to its WMS
	// client's webhook, in order (a child of the Mission that outlives it).
	WMSEventsWorkflowType = "WMSEvents"
)

// ReaperScheduleID is the Temporal Schedule that starts a Reaper sweep
// every worker.reaperInterval (the workers create it).
const ReaperScheduleID = "fleetflow-reaper"

// Signal, update and query names.
const (
	// SignalRobotEvent carries a schemas.RobotEvent from the bridge.
	SignalRobotEvent = "robot-event"
	// SignalRobotAvailable wakes a queued mission: a robot at its site may be free.
	SignalRobotAvailable = schemas.SignalRobotAvailable

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

	QueryStatus = "status"

	// SignalWMSEvents carries further []schemas.WMSEvent from a Mission to
	// its WMSEvents child.
	SignalWMSEvents = "wms-events"
)

// Activity names. The activities.Activities struct has one method per name
// (checked by a test in workers).
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

// ActivityNames lists every activity a worker must register: the names
// of ActivityContracts (acts.go).
var ActivityNames = func() []string {
	names := make([]string, len(ActivityContracts))
	for i, c := range ActivityContracts {
		names[i] = c.Name
	}
	return names
}()

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

// Workflow IDs: every ID fleetflow gives a workflow, built in one place
// with its inverse where a caller needs one, and how an orderId or
// actionId names the workflow that owns it (the bridge routes a robot's
// state to that workflow without a lookup; docs/architecture.md, Robot
// protocol).

package schemas

import "strings"

// Workflow ID prefixes. Mission, Rollout (and its RobotUpdate children),
// Maintenance (and rounds) and Charge workflows send orders and instant
// actions whose IDs start with their workflow ID (OwnerWorkflowID).
const (
	MissionWorkflowPrefix     = "mission-"
	RolloutWorkflowPrefix     = "rollout-"
	MaintenanceWorkflowPrefix = "maintenance-"
	ChargeWorkflowPrefix      = "charge-"
)

// OwnerPrefixes are the prefixes of the workflow IDs that own orders and
// instant actions: the bridge's default (bridge.Options.OwnerPrefixes).
var OwnerPrefixes = []string{MissionWorkflowPrefix, RolloutWorkflowPrefix, MaintenanceWorkflowPrefix, ChargeWorkflowPrefix}

// IsOwnerWorkflowID reports whether id starts with one of OwnerPrefixes: a
// fleetflow workflow that sends orders and instant actions.
func IsOwnerWorkflowID(id string) bool {
	for _, p := range OwnerPrefixes {
		if strings.HasPrefix(id, p) && len(id) > len(p) {
			return true
		}
	}
	return false
}

// InstantActionSeparator splits an actionId, or an orderId after a
// handover, into the owning workflow ID and a local part:
// "<workflowID>#<local>".
const InstantActionSeparator = "#"

// OwnerWorkflowID returns the workflow ID that an orderId or actionId
// names: the part before InstantActionSeparator (all of id when it has
// none). It names a fleetflow workflow only when it starts with one of
// OwnerPrefixes (the bridge checks).
func OwnerWorkflowID(id string) string {
	wf, _, _ := strings.Cut(id, InstantActionSeparator)
	return wf
}

// MissionWorkflowID is the workflow ID of mission id: "mission-<id>". It is
// also the VDA 5050 orderId sent to the robot, so the bridge can signal the
// owner of an order without a lookup.
func MissionWorkflowID(missionID string) string { return MissionWorkflowPrefix + missionID }

// MissionIDOf is MissionWorkflowID's inverse: the mission ID of workflow ID
// id; an ID without the prefix is taken as a mission ID already (the CLI
// accepts both).
func MissionIDOf(id string) string { return strings.TrimPrefix(id, MissionWorkflowPrefix) }

// RolloutWorkflowID is "rollout-<id>".
func RolloutWorkflowID(rolloutID string) string { return RolloutWorkflowPrefix + rolloutID }

// RobotUpdateWorkflowID is "rollout-<id>-robot-<robotId>"; a rollback of the
// same robot after an abort appends "-rollback".
func RobotUpdateWorkflowID(rolloutID, robotID string) string {
	return RolloutWorkflowPrefix + rolloutID + "-robot-" + robotID
}

// MaintenanceWorkflowID is "maintenance-<robot>-<label>", the robot ID's
// "/" written "." (it also prefixes the orderId and actionIds the workflow
// sends, which the bridge routes back to it); label is YYYYMMDD, or any
// label that tells one maintenance of the robot from another
// ("condition-e<epoch>" for one its condition counters triggered).
func MaintenanceWorkflowID(robotID, label string) string {
	return MaintenanceWorkflowPrefix + dotted(robotID) + "-" + label
}

// MaintenanceScheduleID is the Temporal Schedule that starts periodic
// maintenances of robotID ("maintenance-schedule-<manufacturer>.<serial>").
// The workflows it starts are named
// "maintenance-<manufacturer>.<serial>-scheduled-<timestamp>" (the
// schedule appends the timestamp).
func MaintenanceScheduleID(robotID string) string {
	return MaintenanceWorkflowPrefix + "schedule-" + dotted(robotID)
}

// MaintenanceRoundScheduleID is the Temporal Schedule that starts periodic
// maintenance rounds of a whole site ("maintenance-schedule-site-<site>");
// the workflows it starts are "maintenance-round-<site>-<timestamp>".
func MaintenanceRoundScheduleID(site string) string {
	return MaintenanceWorkflowPrefix + "schedule-site-" + site
}

// MaintenanceRoundWorkflowID is the ID a round schedule gives its
// workflows (the schedule appends the timestamp).
func MaintenanceRoundWorkflowID(site string) string {
	return MaintenanceWorkflowPrefix + "round-" + site
}

// ChargeWorkflowID is "charge-<manufacturer>.<serialNumber>": one Charge
// workflow per robot runs at a time (a second start joins the running one).
func ChargeWorkflowID(robotID string) string { return ChargeWorkflowPrefix + dotted(robotID) }

// dotted writes a robot ID "manufacturer/serial" as "manufacturer.serial"
// (a "/" in a workflow ID makes the Web UI's links ambiguous).
func dotted(robotID string) string { return strings.ReplaceAll(robotID, "/", ".") }

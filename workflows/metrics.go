package workflows

import (
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"
)

// Metrics of the workflows, emitted through the Temporal SDK's workflow
// metrics handler (never while a workflow replays) and served on the
// workers' /metrics by its Prometheus exporter: counters keep their name,
// durations become histograms "<name>_seconds". Tags: site, state and
// reason as below. deploy/observability's dashboard and alert
// rules use them; deploy/deploy_test.go checks they exist.
const (
	// MetricMissionsStarted counts missions that passed validation (tag site).
	MetricMissionsStarted = "fleetflow_missions_started"
	// MetricMissionsEnded counts missions by how they ended (tags site;
	// state COMPLETED, FAILED, CANCELLED; reason: the error type of a
	// failure, "" otherwise).
	MetricMissionsEnded = "fleetflow_missions_ended"
	// MetricMissionDuration is a mission's time from start to end (tags
	// site, state).
	MetricMissionDuration = "fleetflow_mission_duration"
	// MetricMissionQueueWait is the time from start until a robot was
	// reserved (tag site).
	MetricMissionQueueWait = "fleetflow_mission_queue_wait"
	// MetricRobotUpdatesEnded counts a rollout's robot updates by outcome
	// (tag state: the RobotUpdate's final state).
	MetricRobotUpdatesEnded = "fleetflow_robot_updates_ended"
)

func missionMetrics(ctx workflow.Context, site string) client.MetricsHandler {
	return workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"site": site})
}

// metricStarted, metricReserved and metricEnded record a mission's
// metrics; commands are not affected, so histories replay as before.
func (m *mission) metricStarted(ctx workflow.Context) {
	missionMetrics(ctx, m.in.Spec.Site).Counter(MetricMissionsStarted).Inc(1)
}

func (m *mission) metricReserved(ctx workflow.Context) {
	if m.metricQueueWaitDone {
		return // a handover's second robot: the wait was recorded
	}
	m.metricQueueWaitDone = true
	missionMetrics(ctx, m.in.Spec.Site).Timer(MetricMissionQueueWait).Record(workflow.Now(ctx).Sub(m.startedAt))
}

func (m *mission) metricEnded(ctx workflow.Context, state, errType string) {
	h := missionMetrics(ctx, m.in.Spec.Site).WithTags(map[string]string{"state": state})
	h.WithTags(map[string]string{"reason": errType}).Counter(MetricMissionsEnded).Inc(1)
	h.Timer(MetricMissionDuration).Record(max(workflow.Now(ctx).Sub(m.startedAt), time.Duration(0)))
}

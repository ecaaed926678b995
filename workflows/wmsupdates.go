package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/schemas"
)

var saPriority = temporal.NewSearchAttributeKeyInt64(schemas.SearchAttrPriority)

func (m *mission) validateReprioritize(ctx workflow.Context, req schemas.ReprioritizeRequest) error {
	if req.Priority < 0 || req.Priority > 100 {
		return fmt.Errorf("priority %d: want 0 to 100", req.Priority)
	}
	if m.outcome != "" || m.cancelRequested || (m.status.State != schemas.MissionQueued && m.status.State != schemas.MissionValidating) {
		return fmt.Errorf("mission %s is %s: its priority only orders missions waiting for a robot (%s)", m.status.MissionID, m.status.State, schemas.MissionQueued)
	}
	return nil
}

// reprioritize sets the mission's priority and returns once the registry
// has placed the request again (its new queue position), or the mission got
// a robot or ended meanwhile.
func (m *mission) reprioritize(ctx workflow.Context, req schemas.ReprioritizeRequest) (schemas.MissionStatus, error) {
	old := m.status.Priority
	m.status.Priority, m.in.Spec.Priority = req.Priority, req.Priority
	if err := workflow.UpsertTypedSearchAttributes(ctx, saPriority.ValueSet(int64(req.Priority))); err != nil {
		m.logger.Warn("upsert search attribute failed", "error", err)
	}
	by := req.By
	if by == "" {
		by = "unknown"
	}
	if err := audit.retry(ctx, "audit", schemas.AuditInput{
		Actor: by, Kind: "mission.reprioritized", Subject: m.orderID,
		Details: map[string]any{"from": old, "to": req.Priority, "reason": req.Reason},
	}, nil, storeOptions("audit"), workflow.Now(ctx).Add(Timings.ReleaseTimeout)); err != nil {
		m.logger.Warn("audit failed", "error", err)
	}
	round := m.reserveRounds
	m.wake = true
	if err := workflow.Await(ctx, func() bool {
		return m.reserveRounds > round || (m.status.State != schemas.MissionQueued && m.status.State != schemas.MissionValidating)
	}); err != nil {
		return m.status, err
	}
	m.setDetails(ctx)
	return m.status, nil
}

func (m *mission) validateAccept(ctx workflow.Context, req schemas.AcceptRequest) error {
	if !schemas.SameSpec(req.Spec, m.startSpec) || req.Client != m.in.Client {
		return temporal.NewApplicationError(fmt.Sprintf("mission %s already exists with another spec or client; a mission ID names one mission (send its own spec to get its status, or use a new ID)",
			m.in.Spec.MissionID), schemas.ErrMissionConflict)
	}
	return nil
}

// accept answers the status of the mission the request started or found.
func (m *mission) accept(ctx workflow.Context, req schemas.AcceptRequest) (schemas.AcceptResult, error) {
	m.accepts++
	return schemas.AcceptResult{Status: m.status, Created: m.accepts == 1 && workflow.Now(ctx).Equal(m.startedAt)}, nil
}

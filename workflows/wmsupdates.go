package workflows

import (
	"fmt"
	"slices"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/schemas"
)

// ReprioritizeRequest is the argument of update reprioritize
// (schemas/updates/reprioritize.schema.json).
type ReprioritizeRequest struct {
	// Priority 0–100, higher first (as in the mission spec).
	Priority int    `json:"priority"`
	Reason   string `json:"reason,omitempty"`
	By       string `json:"by,omitempty"`
}

// AcceptRequest is the argument of update accept, sent with the start of
// the workflow (update-with-start, schemas/updates/accept.schema.json).
type AcceptRequest struct {
	Spec schemas.MissionSpec `json:"spec"`
	// Client is the WMS client asking (MissionInput.Client).
	Client string `json:"client,omitempty"`
}

var saPriority = temporal.NewSearchAttributeKeyInt64(schemas.SearchAttrPriority)

func (m *mission) validateReprioritize(ctx workflow.Context, req ReprioritizeRequest) error {
	if req.Priority < 0 || req.Priority > 100 {
		return fmt.Errorf("priority %d: want 0 to 100", req.Priority)
	}
	if m.outcome != "" || m.cancelRequested || (m.status.State != MissionQueued && m.status.State != MissionValidating) {
		return fmt.Errorf("mission %s is %s: its priority only orders missions waiting for a robot (%s)", m.status.MissionID, m.status.State, MissionQueued)
	}
	return nil
}

// reprioritize sets the mission's priority and returns once the registry
// has placed the request again (its new queue position), or the mission got
// a robot or ended meanwhile.
func (m *mission) reprioritize(ctx workflow.Context, req ReprioritizeRequest) (MissionStatus, error) {
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
		return m.reserveRounds > round || (m.status.State != MissionQueued && m.status.State != MissionValidating)
	}); err != nil {
		return m.status, err
	}
	m.setDetails(ctx)
	return m.status, nil
}

func (m *mission) validateAccept(ctx workflow.Context, req AcceptRequest) error {
	if !SameSpec(req.Spec, m.startSpec) || req.Client != m.in.Client {
		return temporal.NewApplicationError(fmt.Sprintf("mission %s already exists with another spec or client; a mission ID names one mission (send its own spec to get its status, or use a new ID)",
			m.in.Spec.MissionID), schemas.ErrMissionConflict)
	}
	return nil
}

// AcceptResult answers update accept.
type AcceptResult struct {
	Status MissionStatus `json:"status"`
	// Created: this request started the mission (its accept is the first,
	// in the mission's first workflow task); false for a repeated request.
	Created bool `json:"created"`
}

// accept answers the status of the mission the request started or found.
func (m *mission) accept(ctx workflow.Context, req AcceptRequest) (AcceptResult, error) {
	m.accepts++
	return AcceptResult{Status: m.status, Created: m.accepts == 1 && workflow.Now(ctx).Equal(m.startedAt)}, nil
}

// SameSpec reports whether two specs ask for the same mission, ignoring
// the priority (reprioritize may have changed it). Every other field of
// schemas.MissionSpec is compared (a test fails when one is added).
func SameSpec(a, b schemas.MissionSpec) bool {
	sameLoad := (a.Load == nil) == (b.Load == nil) && (a.Load == nil || *a.Load == *b.Load)
	return a.MissionID == b.MissionID && a.Site == b.Site && slices.Equal(a.RequiredCapabilities, b.RequiredCapabilities) &&
		a.MinBattery == b.MinBattery && a.InterruptCharging == b.InterruptCharging && sameLoad && slices.Equal(a.Steps, b.Steps) &&
		a.TimeoutSeconds == b.TimeoutSeconds && a.RequestedBy == b.RequestedBy
}

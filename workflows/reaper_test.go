package workflows

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// reaperActs answers SweepLeases with one lease freed and one edge stop,
// and records the robot I/O and FreeLease calls in order.
type reaperActs struct {
	fakeActivities
	calls []string
	held  []string // the Holder of each SendInstantActions
}

func (r *reaperActs) SweepLeases(ctx context.Context, in schemas.SweepLeasesInput) (schemas.SweepLeasesResult, error) {
	return schemas.SweepLeasesResult{Checked: 2,
		Freed: []schemas.FreedLease{{Kind: "reservation", MissionID: "m-9", WorkflowID: "mission-m-9", RobotID: "acme/AMR-009", WorkflowStatus: "TERMINATED"}},
		EdgeStops: []schemas.FreedLease{{Kind: "reservation", MissionID: "m-1", WorkflowID: "mission-m-1", RobotID: "robotix/R1", WorkflowStatus: "TERMINATED",
			Site: "edge-b", RobotIOQueue: "robot-io-edge-b"}},
	}, nil
}

func (r *reaperActs) SendInstantActions(ctx context.Context, in schemas.SendInstantActionsInput) (schemas.SendResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.route(ctx)
	r.held = append(r.held, in.Holder)
	for _, a := range in.Actions {
		r.calls = append(r.calls, a.ActionType+" "+in.RobotID)
	}
	return schemas.SendResult{}, nil
}

func (r *reaperActs) FreeLease(ctx context.Context, in schemas.FreedLease) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "free "+in.RobotID)
	if !in.OrderCancelled {
		r.calls = append(r.calls, "(not cancelled)")
	}
	return nil
}

// A robot of an edge site still on a closed workflow's order: the Reaper
// sends cancelOrder through the site's queue in the closed holder's name
// while the lease still stands, and frees the lease only after it.
func TestReaperStopsEdgeRobotBeforeFreeingIt(t *testing.T) {
	s := &suite{}
	s.SetLogger(nil)
	env := s.NewTestWorkflowEnvironment()
	acts := &reaperActs{}
	env.RegisterWorkflowWithOptions(Reaper, workflow.RegisterOptions{Name: schemas.ReaperWorkflowType})
	env.RegisterActivity(acts)
	env.ExecuteWorkflow(schemas.ReaperWorkflowType, schemas.ReaperInput{})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res schemas.SweepLeasesResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, []string{vda5050.ActionCancelOrder + " robotix/R1", "free robotix/R1"}, acts.calls)
	require.Equal(t, []string{"robot-io-edge-b"}, acts.routes)
	require.Equal(t, []string{"m-1"}, acts.held, "in the closed holder's name: withheld if the robot has another holder")
	require.Len(t, res.Freed, 2)
	require.True(t, res.Freed[1].OrderCancelled)
	require.Empty(t, res.EdgeStops)
}

package schemas

import (
	"strings"
	"testing"
)

func TestWorkflowIDsAndTheirOwners(t *testing.T) {
	if got := MissionIDOf(MissionWorkflowID("m-1")); got != "m-1" {
		t.Errorf("MissionIDOf(MissionWorkflowID(m-1)) = %q", got)
	}
	if got := MissionIDOf("m-1"); got != "m-1" {
		t.Errorf("a bare mission ID: %q", got)
	}
	ids := map[string]string{
		"mission":     MissionWorkflowID("m-1"),
		"rollout":     RolloutWorkflowID("r1"),
		"robotupdate": RobotUpdateWorkflowID("r1", "acme/R1"),
		"maintenance": MaintenanceWorkflowID("acme/R1", "20261206"),
		"round":       MaintenanceRoundWorkflowID("warehouse-a"),
		"charge":      ChargeWorkflowID("acme/R1"),
	}
	for kind, wf := range ids {
		owned := false
		for _, p := range OwnerPrefixes {
			owned = owned || strings.HasPrefix(wf, p)
		}
		if !owned {
			t.Errorf("%s workflow ID %q starts with none of the owner prefixes %v: the bridge would not route its robot's states", kind, wf, OwnerPrefixes)
		}
		for _, id := range []string{wf, wf + InstantActionSeparator + "cancel-1", wf + InstantActionSeparator + "h1"} {
			if got := OwnerWorkflowID(id); got != wf {
				t.Errorf("OwnerWorkflowID(%q) = %q, want %q", id, got, wf)
			}
		}
	}
	if got := ChargeWorkflowID("acme/R1"); got != "charge-acme.R1" {
		t.Errorf("ChargeWorkflowID = %q: a robot ID's / is written .", got)
	}
}

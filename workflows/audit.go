package workflows

import (
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/schemas"
)

// writeAudit writes one row of the registry's audit_log (activity Audit).
// An audit row is a record, not a step: when it cannot be written the
// workflow logs that and goes on. untilReleaseTimeout retries it as the
// registry's other writes are (Charge, Maintenance: until
// Timings.ReleaseTimeout has passed); otherwise it is one local activity
// with the SDK's default retries (Rollout, RobotUpdate). The Mission
// writes its end row in the release's transaction instead (mission.end).
func writeAudit(ctx workflow.Context, logger log.Logger, in schemas.AuditInput, untilReleaseTimeout bool) {
	var err error
	if untilReleaseTimeout {
		err = audit.retry(ctx, "audit "+in.Kind, in, nil, storeOptions("audit"), workflow.Now(ctx).Add(Timings.ReleaseTimeout))
	} else {
		err = audit.local(ctx, "audit "+in.Kind, in, nil)
	}
	if err != nil {
		logger.Error("audit failed", "kind", in.Kind, "error", err)
	}
}

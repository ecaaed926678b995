// The activities workflows call, one typed handle each: its registered name
// with its input and result types. From a call in a workflow,
// go-to-definition lands here; the implementation is the method of the
// same name on activities.Activities, and workers/worker's
// TestActivityContracts checks that it takes In and returns Out.

package workflows

import (
	"reflect"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/schemas"
)

// none is the result of an activity that returns only an error.
type none struct{}

// act names one activity with its input and result types. Each
// method runs it one way (see calls.go): out may be nil when the caller
// does not need the result.
type act[In, Out any] struct{ name string }

// resultPtr is out as Future.Get wants it: nil for none (no result to
// decode).
func resultPtr[Out any](out *Out) any {
	if out == nil {
		return nil
	}
	return out
}

// retry runs it as a local activity, again after a durable timer while it
// fails with an error that can pass, until giveUp (retryLocal).
func (a act[In, Out]) retry(ctx workflow.Context, summary string, in In, out *Out, opts workflow.LocalActivityOptions, giveUp time.Time) error {
	return retryLocal(ctx, summary, a.name, in, resultPtr(out), opts, giveUp)
}

// local runs it once as a local activity with localCtx's options.
func (a act[In, Out]) local(ctx workflow.Context, summary string, in In, out *Out) error {
	return workflow.ExecuteLocalActivity(localCtx(ctx, summary), a.name, in).Get(ctx, resultPtr(out))
}

// io publishes to a robot through queue ("" = locally; robotIO).
func (a act[In, Out]) io(ctx workflow.Context, queue, summary string, in In, out *Out) error {
	return robotIO(ctx, queue, summary, a.name, in, resultPtr(out))
}

// run runs it as an activity task with ctx's activity options (a task
// queue of its own, a long timeout).
func (a act[In, Out]) run(ctx workflow.Context, in In, out *Out) error {
	return workflow.ExecuteActivity(ctx, a.name, in).Get(ctx, resultPtr(out))
}

// start starts it as an activity task with ctx's activity options; the
// caller collects its result from the future (several at once).
func (a act[In, Out]) start(ctx workflow.Context, in In) workflow.Future {
	return workflow.ExecuteActivity(ctx, a.name, in)
}

// The activities, by task queue of their worker (schemas/names.go).
var (
	// Missions and the registry.
	planMission        = act[schemas.PlanMissionInput, schemas.PlanMissionResult]{schemas.ActivityPlanMission}
	reserveRobot       = act[schemas.ReserveRobotInput, schemas.ReserveRobotResult]{schemas.ActivityReserveRobot}
	cancelQueued       = act[schemas.CancelQueuedInput, none]{schemas.ActivityCancelQueued}
	buildOrder         = act[schemas.BuildOrderInput, schemas.BuildOrderResult]{schemas.ActivityBuildOrder}
	sendOrder          = act[schemas.SendOrderInput, schemas.SendResult]{schemas.ActivitySendOrder}
	sendInstantActions = act[schemas.SendInstantActionsInput, schemas.SendResult]{schemas.ActivitySendInstantActions}
	robotSnapshot      = act[schemas.RobotSnapshotInput, schemas.RobotEvent]{schemas.ActivityRobotSnapshot}
	releaseRobot       = act[schemas.ReleaseRobotInput, none]{schemas.ActivityReleaseRobot}
	audit              = act[schemas.AuditInput, none]{schemas.ActivityAudit}
	sweepLeases        = act[schemas.SweepLeasesInput, schemas.SweepLeasesResult]{schemas.ActivitySweepLeases}
	freeLease          = act[schemas.FreedLease, none]{schemas.ActivityFreeLease}
	deliverWebhook     = act[schemas.DeliverWebhookInput, none]{schemas.ActivityDeliverWebhook}
	webhookOf          = act[schemas.WebhookOfInput, schemas.WebhookOfResult]{schemas.ActivityWebhookOf}
	// Maintenance and charging.
	setServiceStatus = act[schemas.SetServiceStatusInput, schemas.SetServiceStatusResult]{schemas.ActivitySetServiceStatus}
	reserveCharger   = act[schemas.ReserveChargerInput, schemas.ReserveChargerResult]{schemas.ActivityReserveCharger}
	releaseCharger   = act[schemas.ReleaseChargerInput, none]{schemas.ActivityReleaseCharger}
	siteRobots       = act[schemas.SiteRobotsInput, []string]{schemas.ActivitySiteRobots}
	// OTA.
	verifyArtifact = act[schemas.VerifyArtifactInput, schemas.ArtifactRef]{schemas.ActivityVerifyArtifact}
	resolveTargets = act[schemas.ResolveTargetsInput, schemas.ResolveTargetsResult]{schemas.ActivityResolveTargets}
	locateArtifact = act[schemas.LocateArtifactInput, schemas.LocateArtifactResult]{schemas.ActivityLocateArtifact}
)

// ActivityContract is one activity's name with its input and result types
// (Out nil: it returns only an error).
type ActivityContract struct {
	Name    string
	In, Out reflect.Type
}

func contract[In, Out any](a act[In, Out]) ActivityContract {
	c := ActivityContract{Name: a.name, In: reflect.TypeFor[In]()}
	if out := reflect.TypeFor[Out](); out != reflect.TypeFor[none]() {
		c.Out = out
	}
	return c
}

// ActivityContracts lists every activity the workflows call: a worker
// registers each (ActivityNames), and its test checks the method's types.
var ActivityContracts = []ActivityContract{
	contract(planMission), contract(reserveRobot), contract(cancelQueued), contract(buildOrder),
	contract(sendOrder), contract(sendInstantActions), contract(robotSnapshot), contract(releaseRobot),
	contract(audit), contract(sweepLeases), contract(freeLease), contract(deliverWebhook), contract(webhookOf),
	contract(setServiceStatus), contract(reserveCharger), contract(releaseCharger), contract(siteRobots),
	contract(verifyArtifact), contract(resolveTargets), contract(locateArtifact),
}

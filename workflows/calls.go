// How workflows call activities: the options, retries and error helpers
// every workflow shares (robot I/O, registry calls, local activities).

package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/schemas"
)

func errType(err error, fallback string) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.Type() != "" {
		return ae.Type()
	}
	return fallback
}

// robotIO publishes to a robot: activity (SendOrder or SendInstantActions).
//
// queue "" is single-site mode: it runs as a local activity with a short
// retry budget, and while it keeps failing with an error that can pass
// (the MQTT client is reconnecting: activities.ErrNotConnected; a broker
// timeout), the workflow tries again (retryLocal) until
// Timings.RobotIOTimeout has passed.
//
// Otherwise queue is the robot I/O task queue of the robot's edge site
// (ReserveRobotResult.RobotIOQueue, config edge.sites): the activity runs
// on that site's edge worker, which publishes to the site's broker. While
// the edge worker is away (its uplink is down, it restarts) the task waits
// in the queue, up to Timings.EdgeIOTimeout, and the workflow task is free
// meanwhile.
//
// Either way, refusals (a message the schema refuses, an unknown robot, a
// robot the holder no longer holds) are final at once.
func robotIO(ctx workflow.Context, queue, summary, activity string, in, out any) error {
	retry := &temporal.RetryPolicy{
		InitialInterval:        200 * time.Millisecond,
		BackoffCoefficient:     2,
		MaximumInterval:        2 * time.Second,
		NonRetryableErrorTypes: []string{schemas.ErrInvalidMission, schemas.ErrUnknownRobot, schemas.ErrNotReserved},
	}
	if queue != "" {
		return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue:              queue,
			ScheduleToCloseTimeout: Timings.EdgeIOTimeout,
			StartToCloseTimeout:    10 * time.Second,
			RetryPolicy:            retry,
			Summary:                summary,
		}), activity, in).Get(ctx, out)
	}
	opts := workflow.LocalActivityOptions{
		StartToCloseTimeout:    6 * time.Second,
		ScheduleToCloseTimeout: 10 * time.Second,
		RetryPolicy:            retry,
		Summary:                summary,
	}
	return retryLocal(ctx, summary, activity, in, out, opts, workflow.Now(ctx).Add(Timings.RobotIOTimeout))
}

// storeOptions: one local activity with a short retry budget; retryLocal
// does the long waiting.
func storeOptions(summary string) workflow.LocalActivityOptions {
	return workflow.LocalActivityOptions{
		StartToCloseTimeout:    10 * time.Second,
		ScheduleToCloseTimeout: 15 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        200 * time.Millisecond,
			BackoffCoefficient:     2,
			MaximumInterval:        3 * time.Second,
			NonRetryableErrorTypes: []string{schemas.ErrInvalidMission, schemas.ErrUnknownRobot, schemas.ErrStoreRefused},
		},
		Summary: summary,
	}
}

// retryLocal runs a local activity and, while it fails with an error that
// can pass, runs it again after a durable timer (1 s, doubling to 30 s)
// until giveUp. Between attempts the workflow task is free, so status
// queries, cancel and pause are answered during an outage; one local
// activity that retried for minutes would hold them up. A non-retryable
// error, or the workflow's cancellation, ends it at once.
func retryLocal(ctx workflow.Context, summary, activity string, in, out any, opts workflow.LocalActivityOptions, giveUp time.Time) error {
	backoff := time.Second
	for {
		err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, opts), activity, in).Get(ctx, out)
		var ae *temporal.ApplicationError
		if err == nil || (errors.As(err, &ae) && ae.NonRetryable()) || ctx.Err() != nil {
			return err
		}
		if !workflow.Now(ctx).Add(backoff).Before(giveUp) {
			return fmt.Errorf("%s: still failing, gave up: %w", summary, err)
		}
		if err := workflow.Sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// localCtx: short, idempotent I/O runs as local activities — no round trip
// through the server, which is what keeps dispatch latency near a no-op
// workflow's (see README benchmarks).
func localCtx(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        200 * time.Millisecond,
			BackoffCoefficient:     2,
			MaximumInterval:        10 * time.Second,
			NonRetryableErrorTypes: []string{schemas.ErrInvalidMission, schemas.ErrUnknownRobot},
		},
		Summary: summary,
	})
}

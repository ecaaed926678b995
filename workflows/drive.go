package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// robotWatch is what a workflow that drives one robot outside a mission
// (Maintenance, Charge) has heard of it: the latest robot event (signal
// robot-event, or the stored state read when nothing came) and how many.
type robotWatch struct {
	robotID string
	// io is the robot's robot I/O task queue while it is reserved
	// (ReserveRobotResult.RobotIOQueue; "" = local activities).
	io     string
	last   schemas.RobotEvent
	events int
}

func (w *robotWatch) apply(ev schemas.RobotEvent) {
	if ev.RobotID != w.robotID {
		return
	}
	w.last = ev
	w.events++
}

// driveTo sends the robot to station with a drive-only order (orderId
// orderID, which names the workflow so the bridge routes the robot's
// state back to it) and waits until the robot's state shows that order
// done at the station's node. Errors: the order cannot be built or sent,
// the robot refuses it or never shows it (sent 4 times, Maint.OrderAck
// apart), reports FATAL, or does not arrive within timeout; ctx cancelled;
// abort (nil = never) turned true.
func (w *robotWatch) driveTo(ctx, dctx workflow.Context, site, station, orderID string, timeout time.Duration, abort func() bool) error {
	if abort == nil {
		abort = func() bool { return false }
	}
	spec := schemas.MissionSpec{MissionID: orderID, Site: site, Steps: []schemas.MissionStep{{Station: station}}}
	var built schemas.BuildOrderResult
	if err := buildOrder.retry(dctx, "build order to "+station, schemas.BuildOrderInput{
		Spec: spec, RobotID: w.robotID, OrderID: orderID,
	}, &built, storeOptions("build order"), workflow.Now(dctx).Add(Timings.ReleaseTimeout)); err != nil {
		return fmt.Errorf("drive to %s: %w", station, err)
	}
	if len(built.NodeIDs) == 0 {
		return fmt.Errorf("drive to %s: the order has no node", station)
	}
	last := built.NodeIDs[len(built.NodeIDs)-1]
	deadline := workflow.Now(dctx).Add(timeout)
	for sends := 0; ; {
		if err := sendOrder.io(dctx, w.io, "send order to "+w.robotID, schemas.SendOrderInput{RobotID: w.robotID, Order: built.Order}, nil); err != nil {
			return fmt.Errorf("send order to %s: %w", w.robotID, err)
		}
		sends++
		ackDue := workflow.Now(dctx).Add(Maint.OrderAck)
		for {
			ev := w.last
			if ev.OrderID == orderID {
				if ev.NodesRemaining == 0 && ev.EdgesRemaining == 0 && !ev.Driving && ev.LastNodeID == last {
					return nil
				}
				ackDue = time.Time{}
			}
			for _, e := range ev.Errors {
				if e.ErrorLevel == vda5050.ErrorFatal {
					return fmt.Errorf("robot %s FATAL on the way to %s: %s", w.robotID, station, e.ErrorType)
				}
				if refersTo(e, "orderId", orderID) {
					return fmt.Errorf("robot %s refused the order to %s: %s: %s", w.robotID, station, e.ErrorType, e.ErrorDescription)
				}
			}
			now := workflow.Now(dctx)
			if !now.Before(deadline) {
				return fmt.Errorf("robot %s did not reach %s within %s", w.robotID, station, timeout)
			}
			if !ackDue.IsZero() && !now.Before(ackDue) {
				if sends > 3 {
					return fmt.Errorf("robot %s never showed the order to %s in its state (sent %d times)", w.robotID, station, sends)
				}
				break // send it again
			}
			wait := Maint.ReconcileAfter
			if !ackDue.IsZero() {
				wait = min(wait, ackDue.Sub(now))
			}
			seen := w.events
			ok, err := workflow.AwaitWithTimeout(ctx, max(wait, time.Millisecond), func() bool { return w.events != seen || abort() })
			if err != nil {
				return err
			}
			if abort() {
				return fmt.Errorf("drive to %s aborted", station)
			}
			if !ok {
				var snap schemas.RobotEvent
				if err := robotSnapshot.local(dctx, "read stored state", schemas.RobotSnapshotInput{RobotID: w.robotID}, &snap); err == nil {
					w.apply(snap)
				}
			}
		}
	}
}

// stopOrder sends cancelOrder (actionId actionID, in holder's name) for
// the drive-only order orderID and waits for the robot to confirm it
// (awaitStopped). It returns "" when confirmed, else why not.
func (w *robotWatch) stopOrder(ctx workflow.Context, holder, orderID, actionID string) string {
	if err := sendInstantActions.io(ctx, w.io, "stop "+w.robotID, schemas.SendInstantActionsInput{
		RobotID: w.robotID, Holder: holder, Actions: []vda5050.Action{{ActionType: vda5050.ActionCancelOrder, ActionID: actionID, BlockingType: vda5050.BlockingHard}},
	}, nil); err != nil {
		return fmt.Sprintf("could not send cancelOrder to robot %s: %v", w.robotID, err)
	}
	_, why := awaitStopped(ctx, w.robotID, actionID, func(ev schemas.RobotEvent) (bool, bool) {
		return ev.OrderID == orderID, ev.OrderID == orderID && (ev.NodesRemaining > 0 || ev.EdgesRemaining > 0 || ev.Driving)
	}, w.apply)
	return why
}

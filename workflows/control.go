package workflows

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// Outcomes of an instant action sent to a robot.
const (
	controlPending   = ""
	controlConfirmed = "confirmed"
	controlRefused   = "refused"
)

// controlAction is one instant action sent to the robot (cancelOrder,
// startPause, stopPause) and what the robot made of it. Only the robot's
// own answer counts (VDA 5050 §6.8, §6.10.6–7):
//
//   - confirmed: the actionState of its actionId is FINISHED; for
//     cancelOrder also FAILED, or a noOrderToCancel error naming it, while
//     the robot holds nothing of this mission's order (there is nothing
//     left to cancel);
//   - refused: its actionState is FAILED, or an error that was not in the
//     robot's state before the action was sent names its actionId, or
//     names topic instantActions with its headerId (or with no headerId) —
//     what a vehicle reports when it cannot even read the message.
//
// Every attempt gets its own actionId, so a stale FAILED of an earlier one
// never answers a later one.
type controlAction struct {
	actionType string
	id         string
	headerID   uint32
	sentAt     time.Time
	before     map[string]bool // keys of the errors the robot reported before it was sent
	ticket     int             // the update request it answers
	outcome    string
	reason     string
}

// errorKey identifies one robot error across states: type, level,
// description and references.
func errorKey(e vda5050.Error) string {
	refs := make([]string, len(e.ErrorReferences))
	for i, r := range e.ErrorReferences {
		refs[i] = r.ReferenceKey + "=" + r.ReferenceValue
	}
	sort.Strings(refs)
	return e.ErrorType + "|" + string(e.ErrorLevel) + "|" + e.ErrorDescription + "|" + strings.Join(refs, ",")
}

func hasRef(e vda5050.Error, key string) bool {
	for _, r := range e.ErrorReferences {
		if r.ReferenceKey == key {
			return true
		}
	}
	return false
}

// describeError is "errorType: description" for the robot's reason.
func describeError(e vda5050.Error) string {
	if e.ErrorDescription == "" {
		return e.ErrorType
	}
	return e.ErrorType + ": " + e.ErrorDescription
}

// judge decides a pending action from the robot's event. holdsOrder says
// whether the robot still works on this mission's order.
func (a *controlAction) judge(ev schemas.RobotEvent, holdsOrder bool) {
	if a == nil || a.outcome != controlPending {
		return
	}
	for _, as := range ev.ActionStates {
		if as.ActionID != a.id {
			continue
		}
		switch as.ActionStatus {
		case vda5050.ActionFinished:
			a.outcome = controlConfirmed
		case vda5050.ActionFailed:
			if a.actionType == vda5050.ActionCancelOrder && !holdsOrder {
				a.outcome = controlConfirmed
				return
			}
			a.outcome, a.reason = controlRefused, "actionState FAILED"
			if as.ResultDescription != "" {
				a.reason += ": " + as.ResultDescription
			}
		}
		return
	}
	header := strconv.FormatUint(uint64(a.headerID), 10)
	for _, e := range ev.Errors {
		if a.before[errorKey(e)] {
			continue
		}
		byID := refersTo(e, "actionId", a.id)
		byMessage := refersTo(e, "topic", string(vda5050.TopicInstantActions)) && !hasRef(e, "actionId") &&
			(!hasRef(e, "headerId") || refersTo(e, "headerId", header))
		if !byID && !byMessage {
			continue
		}
		if a.actionType == vda5050.ActionCancelOrder && e.ErrorType == "noOrderToCancel" && !holdsOrder {
			a.outcome = controlConfirmed
			return
		}
		a.outcome, a.reason = controlRefused, describeError(e)
		return
	}
}

// timedOut refuses a still pending action once its confirmation time has
// passed; it reports whether it did.
func (a *controlAction) timedOut(now time.Time, robotID string) bool {
	if a == nil || a.outcome != controlPending || now.Before(a.sentAt.Add(Timings.ConfirmTimeout)) {
		return false
	}
	a.outcome = controlRefused
	a.reason = fmt.Sprintf("robot %s did not confirm %s within %s", robotID, a.actionType, Timings.ConfirmTimeout)
	return true
}

// due is when a pending action times out (zero when it is decided).
func (a *controlAction) due() time.Time {
	if a == nil || a.outcome != controlPending {
		return time.Time{}
	}
	return a.sentAt.Add(Timings.ConfirmTimeout)
}

// unsent is a control action whose publish failed: refused at once, so
// the update that asked is told and the mission goes on.
func unsent(actionType, actionID string, ticket int, now time.Time, err error) *controlAction {
	return &controlAction{actionType: actionType, id: actionID, sentAt: now, ticket: ticket,
		outcome: controlRefused, reason: fmt.Sprintf("could not send %s: %v", actionType, err)}
}

// sendControl publishes one instant action and starts tracking it.
func (m *mission) sendControl(ctx workflow.Context, actionType, actionID string, ticket int) (*controlAction, error) {
	before := make(map[string]bool, len(m.lastErrors))
	for _, k := range m.lastErrors {
		before[k] = true
	}
	res, err := m.sendInstant(ctx, actionType, actionID)
	if err != nil {
		return nil, err
	}
	return &controlAction{actionType: actionType, id: actionID, headerID: res.HeaderID, sentAt: workflow.Now(ctx), before: before, ticket: ticket}, nil
}

// awaitStopped waits up to Timings.ConfirmTimeout for robotID's answer to
// the cancelOrder actionID already sent, reading its stored state every
// 2 s: a workflow cancelled by Temporal (or ending) does not read signals.
// Confirmed ("", ""): that cancelOrder FINISHED, or FAILED while the
// robot holds nothing of the order (as controlAction.judge), or the state
// shows this very order with nothing left to do. order says of a state
// whether it shows this order and whether the robot still works on it; a
// state of another order proves nothing (ours may be on its way). seen,
// when not nil, gets every state read. Otherwise it returns the error type
// and why: refused (ErrRobotRefused) or no answer in time
// (ErrRobotUnresponsive).
func awaitStopped(ctx workflow.Context, robotID, actionID string, order func(schemas.RobotEvent) (ours, holds bool), seen func(schemas.RobotEvent)) (string, string) {
	deadline := workflow.Now(ctx).Add(Timings.ConfirmTimeout)
	for {
		var ev schemas.RobotEvent
		if err := robotSnapshot.local(ctx, "read stored state of "+robotID, schemas.RobotSnapshotInput{RobotID: robotID}, &ev); err == nil {
			if seen != nil {
				seen(ev)
			}
			ours, holds := order(ev)
			if ours && !holds {
				return "", ""
			}
			for _, as := range ev.ActionStates {
				if as.ActionID != actionID {
					continue
				}
				switch {
				case as.ActionStatus == vda5050.ActionFinished, as.ActionStatus == vda5050.ActionFailed && !holds:
					return "", ""
				case as.ActionStatus == vda5050.ActionFailed:
					return schemas.ErrRobotRefused, fmt.Sprintf("robot %s refused cancelOrder: %s", robotID, as.ResultDescription)
				}
			}
		}
		left := deadline.Sub(workflow.Now(ctx))
		if left <= 0 {
			return schemas.ErrRobotUnresponsive, fmt.Sprintf("robot %s did not confirm cancelOrder within %s", robotID, Timings.ConfirmTimeout)
		}
		_ = workflow.Sleep(ctx, min(2*time.Second, left))
	}
}

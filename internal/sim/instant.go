package sim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// Manufacturer-specific instant actions that inject faults (VDA 5050 §6.8
// allows vendor actions beside the predefined ones).
const (
	// ActionSimDropConnection drops the MQTT connection like Robot.DropConnection.
	ActionSimDropConnection = "simDropConnection"
	// ActionSimFatal raises a FATAL error like Robot.RaiseFatal; parameters
	// "errorType" and "description" (strings, optional).
	ActionSimFatal = "simFatal"
	// ActionSimStall stalls the robot like Robot.Stall; parameter "on"
	// (boolean, default true).
	ActionSimStall = "simStall"
	// ActionSimClearErrors clears every error like Robot.ClearErrors.
	ActionSimClearErrors = "simClearErrors"
	// ActionDiagnostics runs the vehicle's self-test (manufacturer-specific,
	// VDA 5050 §6.8): it finishes at once with a resultDescription
	// summarising battery, errors, software and odometry. A maintenance
	// workflow sends it at the service station.
	ActionDiagnostics = "diagnostics"
)

// handleInstantActions runs each action of an instantActions message; each
// gets an actionState that ends FINISHED or FAILED with a resultDescription
// (VDA 5050 §6.7, §6.8). A message the schema refuses leaves a
// validationError WARNING.
func (r *Robot) handleInstantActions(raw []byte, now time.Time) {
	ia, err := r.profile.DecodeInstantActions(raw)
	if err != nil {
		r.log.Info("sim robot refused instant actions", "robot", r.key.String(), "err", err)
		refs := []vda5050.Reference{{ReferenceKey: "topic", ReferenceValue: string(vda5050.TopicInstantActions)}}
		var h struct {
			HeaderID *uint32 `json:"headerId"`
		}
		if json.Unmarshal(raw, &h) == nil && h.HeaderID != nil {
			refs = append(refs, vda5050.Reference{ReferenceKey: "headerId", ReferenceValue: strconv.FormatUint(uint64(*h.HeaderID), 10)})
		}
		r.addError(vda5050.Error{
			ErrorType:        ErrValidation,
			ErrorReferences:  refs,
			ErrorDescription: "instantActions refused: " + err.Error(),
			ErrorLevel:       vda5050.ErrorWarning,
		})
		r.dirty = true
		return
	}
	for _, a := range ia.Actions {
		r.instantAction(a, now)
	}
	r.dirty = true
}

func (r *Robot) instantAction(a vda5050.Action, now time.Time) {
	if a.ActionType == schemas.ActionSoftwareUpdate && r.update != nil && r.update.rec.state.ActionID == a.ActionID {
		// The running update sent again (a retransmission): one actionId,
		// one actionState.
		return
	}
	rec := r.addAction(a, true)
	finish := func() { rec.state.ActionStatus = vda5050.ActionFinished }
	fail := func(reason string) {
		rec.state.ActionStatus = vda5050.ActionFailed
		rec.state.ResultDescription = reason
	}
	switch a.ActionType {
	case vda5050.ActionCancelOrder:
		switch {
		case r.cancel != nil:
			fail("a cancelOrder is already in progress: " + r.cancel.state.ActionID)
		case r.order == nil || r.order.cancelled || (len(r.order.nodes) == 0 && r.current == nil && len(r.queue) == 0 && !r.moving):
			// §6.8: cancelOrder without an order fails with noOrderToCancel.
			fail("no order to cancel")
			r.addError(vda5050.Error{
				ErrorType:        ErrNoOrderToCancel,
				ErrorReferences:  []vda5050.Reference{{ReferenceKey: "actionId", ReferenceValue: a.ActionID}},
				ErrorDescription: "cancelOrder " + a.ActionID + ": the vehicle has no order to cancel",
				ErrorLevel:       vda5050.ErrorWarning,
			})
		default:
			// Finished by step once the vehicle stands still.
			rec.state.ActionStatus = vda5050.ActionRunning
			r.cancel = rec
			r.controls = append(r.controls, ControlOnOrder{ActionID: a.ActionID, ActionType: a.ActionType, OrderID: r.order.id})
		}
	case vda5050.ActionStartPause, vda5050.ActionStopPause:
		if r.order != nil && !r.order.cancelled && (len(r.order.nodes) > 0 || r.current != nil || len(r.queue) > 0 || r.moving) {
			r.controls = append(r.controls, ControlOnOrder{ActionID: a.ActionID, ActionType: a.ActionType, OrderID: r.order.id})
		}
		pause := a.ActionType == vda5050.ActionStartPause
		r.changeActivity(now, func() { r.paused = pause })
		finish()
	case vda5050.ActionStartCharging:
		// VDA 5050 §6.8: charging on a charging spot, the vehicle standing.
		if r.moving {
			fail("cannot start charging while driving")
			return
		}
		r.setCharging(true, now)
		finish()
	case vda5050.ActionStopCharging:
		r.setCharging(false, now)
		finish()
	case vda5050.ActionStateRequest:
		finish() // the state goes out with this message's answer
	case vda5050.ActionFactsheetRequest:
		if err := r.queueFactsheet(now); err != nil {
			fail("factsheet: " + err.Error())
			return
		}
		finish()
	case ActionSimDropConnection:
		r.dropRequested = true
		finish()
	case ActionSimFatal:
		errType, _ := stringParam(a, "errorType")
		desc, ok := stringParam(a, "description")
		if !ok {
			desc = "FATAL error injected by " + a.ActionID
		}
		r.raiseFatal(errType, desc, now)
		finish()
	case ActionSimStall:
		on, err := boolParam(a, "on", true)
		if err != nil {
			fail(err.Error())
			return
		}
		r.setStalled(on, now)
		finish()
	case ActionSimClearErrors:
		r.clearErrors(now)
		finish()
	case ActionDiagnostics:
		rec.state.ResultDescription = r.diagnose()
		finish()
	case schemas.ActionSoftwareUpdate:
		r.startUpdate(rec, a)
	default:
		fail(fmt.Sprintf("instant action %q is not supported by this vehicle", a.ActionType))
	}
}

func stringParam(a vda5050.Action, key string) (string, bool) {
	v, ok := a.Param(key)
	if !ok {
		return "", false
	}
	if s, ok := v.(string); ok {
		return s, true
	}
	return fmt.Sprint(v), true
}

func boolParam(a vda5050.Action, key string, def bool) (bool, error) {
	v, ok := a.Param(key)
	if !ok {
		return def, nil
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		b, err := strconv.ParseBool(x)
		if err != nil {
			return false, fmt.Errorf("parameter %q: %q is not a boolean", key, x)
		}
		return b, nil
	}
	return false, fmt.Errorf("parameter %q: %v is not a boolean", key, v)
}

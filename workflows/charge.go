package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// ChargeTimings tunes Charge; tests shorten them.
type ChargeTimings struct {
	Poll          time.Duration // read the battery this often while charging
	RequeueAfter  time.Duration // waiting for the robot or a charger: ask again this often
	WaitRobot     time.Duration // the robot must be free within this, else the charge is given up
	DriveTimeout  time.Duration // the drive to the charger must end within this
	ActionTimeout time.Duration // startCharging must be FINISHED within this
	ChargeTimeout time.Duration // the resume threshold must be reached within this
	// VacateTimeout: the charger is held at most this long after the
	// robot was released at it (it stands there until a mission takes it).
	VacateTimeout time.Duration
}

// Charging holds Charge's timings.
var Charging = ChargeTimings{
	Poll: 10 * time.Second, RequeueAfter: 30 * time.Second, WaitRobot: time.Hour, DriveTimeout: 30 * time.Minute,
	ActionTimeout: time.Minute, ChargeTimeout: 4 * time.Hour, VacateTimeout: 24 * time.Hour,
}

type charge struct {
	in     schemas.ChargeInput
	id     string
	logger log.Logger
	status schemas.ChargeStatus
	robotWatch
	wake, chargerWake bool
	interrupt         *schemas.InterruptChargingRequest
	reserved          bool
	station, node     string
	charging          bool
	// arrived: the robot reached the charger's node; the charger is then
	// held until the robot has left that node, however the charge ends.
	arrived bool
	// root is the workflow's own context: a cancellation ends VACATING.
	root workflow.Context
	// tag prefixes the orderId and actionIds of this run
	// ("charge-<robot>#<run>"): the workflow ID is the same for every
	// charge of the robot, and a vehicle ignores an order whose orderId
	// and orderUpdateId it already has (VDA 5050 §6.6.4).
	tag string
}

// Charge takes one robot to a charging station and back into the pool:
// reserve the robot by name (it finishes its mission first) → reserve the
// nearest free charger of its site (first come, first served; the Reaper
// frees the charger of a workflow that closed) → drive there (a drive-only
// VDA 5050 order whose orderId is this workflow's ID) → instant action
// startCharging → read the battery every Charging.Poll until it reaches
// in.Resume → stopCharging → release the robot (it stands at the charger,
// the first candidate for the next mission) → hold the charger until the
// robot has left its node (VACATING; also after an interrupted or failed
// charge), so the next robot is not sent onto an occupied charger (a
// cancelled charge frees it at once). Signal interrupt-charging (an urgent mission whose
// spec allows it, sent by the allocator) stops charging or the drive and
// releases the robot to that mission at once. A robot that refuses to
// charge, or does not reach in.Resume within Charging.ChargeTimeout, is
// taken out of service for a technician (it would be sent charging again
// and again). Every step is audited. Query: status.
func Charge(ctx workflow.Context, in schemas.ChargeInput) (schemas.ChargeStatus, error) {
	now := workflow.Now(ctx)
	info := workflow.GetInfo(ctx)
	c := &charge{in: in, id: info.WorkflowExecution.ID, logger: workflow.GetLogger(ctx), robotWatch: robotWatch{robotID: in.RobotID}}
	// The whole run ID: a prefix of a UUIDv7 is only its timestamp.
	c.tag = c.id + schemas.InstantActionSeparator + info.WorkflowExecution.RunID
	c.root = ctx
	c.status = schemas.ChargeStatus{RobotID: in.RobotID, State: schemas.ChargeWaitingRobot, Resume: in.Resume, Reason: in.Reason, StartedAt: now, UpdatedAt: now}
	if err := workflow.SetQueryHandler(ctx, schemas.QueryStatus, func() (schemas.ChargeStatus, error) { return c.status, nil }); err != nil {
		return c.status, err
	}
	if in.RobotID == "" || in.Site == "" || in.Resume <= 0 || in.Resume > 100 {
		return c.status, temporal.NewNonRetryableApplicationError(fmt.Sprintf("charge needs robotId, site and resume in (0, 100]: %+v", in), "InvalidCharge", nil)
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	events := workflow.GetSignalChannel(ctx, schemas.SignalRobotEvent)
	avail := workflow.GetSignalChannel(ctx, schemas.SignalRobotAvailable)
	chargers := workflow.GetSignalChannel(ctx, schemas.SignalChargerAvailable)
	interrupts := workflow.GetSignalChannel(ctx, schemas.SignalInterruptCharging)
	workflow.Go(dctx, func(gctx workflow.Context) {
		for {
			var ev schemas.RobotEvent
			if !events.Receive(gctx, &ev) {
				return
			}
			c.apply(ev)
		}
	})
	workflow.Go(dctx, func(gctx workflow.Context) {
		for avail.Receive(gctx, nil) {
			c.wake = true
		}
	})
	workflow.Go(dctx, func(gctx workflow.Context) {
		for chargers.Receive(gctx, nil) {
			c.chargerWake = true
		}
	})
	workflow.Go(dctx, func(gctx workflow.Context) {
		for {
			var r schemas.InterruptChargingRequest
			if !interrupts.Receive(gctx, &r) {
				return
			}
			if c.interrupt == nil {
				c.interrupt = &r
			}
		}
	})
	return c.run(ctx, dctx)
}

func (c *charge) setState(ctx workflow.Context, s string) {
	c.status.State = s
	c.status.UpdatedAt = workflow.Now(ctx)
	d := fmt.Sprintf("**%s** · robot `%s` · battery %.0f %% → %.0f %%", s, c.in.RobotID, c.status.Battery, c.in.Resume)
	if c.status.Station != "" {
		d += " · " + c.status.Station
	}
	if s == schemas.ChargeWaitingCharger && c.status.QueuePosition > 0 {
		d += fmt.Sprintf(" · #%d in line", c.status.QueuePosition)
	}
	if s == schemas.ChargeWaitingCharger && c.status.WaitingFor != "" {
		d += " · " + c.status.WaitingFor
	}
	if c.status.LastError != "" {
		d += " · " + c.status.LastError
	}
	workflow.SetCurrentDetails(ctx, d)
}

func (c *charge) audit(ctx workflow.Context, kind string, details map[string]any) {
	if details == nil {
		details = map[string]any{}
	}
	details["robotId"] = c.in.RobotID
	details["battery"] = c.status.Battery
	writeAudit(ctx, c.logger, schemas.AuditInput{Actor: c.id, Kind: kind, Subject: c.id, Details: details}, true)
}

// interrupted: an urgent mission asked for the robot, or the workflow was
// cancelled.
func (c *charge) interrupted(ctx workflow.Context) bool {
	return c.interrupt != nil || ctx.Err() != nil
}

func (c *charge) run(ctx, dctx workflow.Context) (schemas.ChargeStatus, error) {
	c.setState(dctx, schemas.ChargeWaitingRobot)
	c.audit(dctx, "charge.started", map[string]any{"reason": c.in.Reason, "requestedBy": c.in.RequestedBy})
	if !c.reserve(ctx, dctx) {
		return c.end(dctx)
	}
	c.read(dctx)
	c.status.BatteryStart = c.status.Battery
	if c.status.Battery >= c.in.Resume {
		c.status.LastError = ""
		return c.finish(dctx, schemas.ChargeDone, "already charged")
	}
	if !c.reserveCharger(ctx, dctx) {
		return c.end(dctx)
	}
	c.setState(dctx, schemas.ChargeDriving)
	if err := c.driveTo(ctx, dctx, c.in.Site, c.station, c.tag, Charging.DriveTimeout, func() bool { return c.interrupt != nil }); err != nil {
		if c.interrupted(ctx) {
			// Stopped on the way: said as done only once the robot
			// confirms (else the charge ends FAILED, saying why; the
			// Reaper stops a robot that drives on).
			if why := c.stopOrder(dctx, c.id, c.tag, c.tag+"-cancel"); why != "" {
				if c.interrupt == nil {
					// Cancelled, and the robot may still be on its way:
					// out of service until checked, as a maintenance does.
					return c.fail(dctx, "cancelled on the way to "+c.station+", but "+why+": out of service until checked", true)
				}
				// Taken by an urgent mission: its order decides.
				c.status.LastError = "stopped on the way to " + c.station + ", but " + why
			}
			return c.end(dctx)
		}
		c.stop(dctx, vda5050.ActionCancelOrder, "cancel")
		return c.fail(dctx, "drive to the charger: "+err.Error(), false)
	}
	c.arrived = true
	if c.interrupted(ctx) {
		return c.end(dctx)
	}
	if err := c.startCharging(ctx, dctx); err != nil {
		if c.interrupted(ctx) {
			return c.end(dctx)
		}
		return c.fail(dctx, err.Error(), true)
	}
	c.setState(dctx, schemas.ChargeCharging)
	c.audit(dctx, "charge.charging", map[string]any{"stationId": c.station})
	deadline := workflow.Now(dctx).Add(Charging.ChargeTimeout)
	for c.status.Battery < c.in.Resume {
		if !workflow.Now(dctx).Before(deadline) {
			return c.fail(dctx, fmt.Sprintf("battery %.1f %% did not reach %.0f %% within %s", c.status.Battery, c.in.Resume, Charging.ChargeTimeout), true)
		}
		_, _ = workflow.AwaitWithTimeout(ctx, Charging.Poll, func() bool { return c.interrupt != nil })
		if c.interrupted(ctx) {
			return c.end(dctx)
		}
		c.read(dctx)
	}
	return c.finish(dctx, schemas.ChargeDone, "")
}

// reserve holds the robot, asking for it by name (the allocator gives it
// to no mission while it is below the threshold). false: interrupted,
// cancelled or the robot stayed busy for Charging.WaitRobot.
func (c *charge) reserve(ctx, dctx workflow.Context) bool {
	req := schemas.ReserveRobotInput{MissionID: c.id, WorkflowID: c.id, Site: c.in.Site, RobotID: c.in.RobotID}
	giveUp := workflow.Now(dctx).Add(Charging.WaitRobot)
	for {
		c.wake = false
		var res schemas.ReserveRobotResult
		if err := reserveRobot.retry(dctx, "reserve "+c.in.RobotID, req, &res, storeOptions("reserve"), workflow.Now(dctx).Add(Timings.ReleaseTimeout)); err != nil {
			c.status.LastError = "reserve: " + err.Error()
		} else if !res.Queued {
			c.reserved = true
			c.io = res.RobotIOQueue
			if st := res.ServiceStatus; st == "in_maintenance" || st == "out_of_service" {
				// A technician may work on it (a maintenance serviced it
				// where it stood): it is not driven anywhere. A draining
				// robot still charges before its maintenance.
				c.status.LastError = fmt.Sprintf("robot %s is %s: not driven to a charger", c.in.RobotID, st)
				return false
			}
			return true
		}
		timedOut := !workflow.Now(dctx).Before(giveUp)
		if timedOut {
			c.status.LastError = fmt.Sprintf("robot %s not free within %s", c.in.RobotID, Charging.WaitRobot)
		}
		if timedOut || c.interrupted(ctx) {
			c.leaveQueue(dctx)
			c.reserved = true // a grant may have raced: release is a no-op otherwise
			return false
		}
		_, _ = workflow.AwaitWithTimeout(ctx, Charging.RequeueAfter, func() bool { return c.wake || c.interrupt != nil })
	}
}

func (c *charge) leaveQueue(ctx workflow.Context) {
	if err := cancelQueued.retry(ctx, "leave the reservation queue", schemas.CancelQueuedInput{MissionID: c.id},
		nil, storeOptions("leave queue"), workflow.Now(ctx).Add(Timings.ReleaseTimeout)); err != nil {
		c.logger.Warn("leave queue failed", "error", err)
	}
}

// reserveCharger gets a charger, waiting in line. false: interrupted or
// cancelled, or the site has none (LastError says).
func (c *charge) reserveCharger(ctx, dctx workflow.Context) bool {
	for {
		c.chargerWake = false
		var res schemas.ReserveChargerResult
		err := reserveCharger.retry(dctx, "reserve a charger", schemas.ReserveChargerInput{Site: c.in.Site, Holder: c.id, RobotID: c.in.RobotID},
			&res, storeOptions("reserve a charger"), workflow.Now(dctx).Add(Timings.ReleaseTimeout))
		var ae *temporal.ApplicationError
		switch {
		case err != nil && errors.As(err, &ae) && ae.NonRetryable():
			c.status.LastError = "reserve a charger: " + err.Error()
			return false
		case err != nil:
			c.status.LastError = "reserve a charger: " + err.Error()
		case !res.Queued:
			c.station, c.node, c.status.Station, c.status.QueuePosition, c.status.WaitingFor = res.StationID, res.Node, res.StationID, 0, ""
			c.status.LastError = ""
			c.audit(dctx, "charge.charger_reserved", map[string]any{"stationId": res.StationID})
			return true
		default:
			why := ""
			if len(res.Occupied) > 0 {
				why = "free in the registry but stood on: " + strings.Join(res.Occupied, ", ")
			}
			if c.status.State != schemas.ChargeWaitingCharger || c.status.QueuePosition != res.QueuePosition || c.status.WaitingFor != why {
				c.status.QueuePosition, c.status.WaitingFor = res.QueuePosition, why
				c.setState(dctx, schemas.ChargeWaitingCharger)
			}
		}
		_, _ = workflow.AwaitWithTimeout(ctx, Charging.RequeueAfter, func() bool { return c.chargerWake || c.interrupt != nil })
		if c.interrupted(ctx) {
			return false
		}
	}
}

// startCharging sends the instant action and waits for it to finish.
func (c *charge) startCharging(ctx, dctx workflow.Context) error {
	id := c.tag + "-start-charging"
	c.charging = true // from here on, every end sends stopCharging
	if err := sendInstantActions.io(dctx, c.io, "startCharging on "+c.in.RobotID, schemas.SendInstantActionsInput{
		RobotID: c.in.RobotID, Holder: c.id, Actions: []vda5050.Action{{ActionType: vda5050.ActionStartCharging, ActionID: id, BlockingType: vda5050.BlockingHard}},
	}, nil); err != nil {
		return fmt.Errorf("send startCharging: %w", err)
	}
	due := workflow.Now(dctx).Add(Charging.ActionTimeout)
	for {
		for _, as := range c.last.ActionStates {
			if as.ActionID != id {
				continue
			}
			switch as.ActionStatus {
			case vda5050.ActionFinished:
				return nil
			case vda5050.ActionFailed:
				return fmt.Errorf("robot %s refused startCharging at %s: %s", c.in.RobotID, c.station, as.ResultDescription)
			}
		}
		now := workflow.Now(dctx)
		if !now.Before(due) {
			return fmt.Errorf("startCharging not finished on robot %s within %s", c.in.RobotID, Charging.ActionTimeout)
		}
		seen := c.events
		ok, err := workflow.AwaitWithTimeout(ctx, min(Charging.Poll, due.Sub(now)), func() bool { return c.events != seen || c.interrupt != nil })
		if err != nil || c.interrupt != nil {
			return fmt.Errorf("interrupted")
		}
		if !ok {
			c.read(dctx)
		}
	}
}

// read takes the robot's stored state (battery, actions) as an event.
func (c *charge) read(ctx workflow.Context) {
	var snap schemas.RobotEvent
	if err := robotSnapshot.local(ctx, "read stored state", schemas.RobotSnapshotInput{RobotID: c.in.RobotID}, &snap); err == nil {
		c.apply(snap)
		c.status.Battery = snap.BatteryCharge
	}
}

// stop sends one instant action (stopCharging, cancelOrder) while the
// workflow holds the robot; a failure is logged.
func (c *charge) stop(ctx workflow.Context, actionType, local string) {
	if !c.reserved {
		return
	}
	if err := sendInstantActions.io(ctx, c.io, actionType+" on "+c.in.RobotID, schemas.SendInstantActionsInput{
		RobotID: c.in.RobotID, Holder: c.id, Actions: []vda5050.Action{{ActionType: actionType, ActionID: c.tag + "-" + local, BlockingType: vda5050.BlockingHard}},
	}, nil); err != nil {
		c.logger.Warn(actionType+" failed", "error", err)
	}
}

func (c *charge) releaseRobot(ctx workflow.Context) {
	if !c.reserved {
		return
	}
	if err := releaseRobot.retry(ctx, "release "+c.in.RobotID, schemas.ReleaseRobotInput{
		RobotID: c.in.RobotID, MissionID: c.id, Site: c.in.Site,
	}, nil, storeOptions("release"), workflow.Now(ctx).Add(Timings.ReleaseTimeout)); err != nil {
		c.logger.Error("release failed; the Reaper will free it", "error", err)
		return
	}
	c.reserved = false
}

func (c *charge) releaseCharger(ctx workflow.Context) {
	if err := releaseCharger.retry(ctx, "release the charger", schemas.ReleaseChargerInput{Site: c.in.Site, Holder: c.id},
		nil, storeOptions("release the charger"), workflow.Now(ctx).Add(Timings.ReleaseTimeout)); err != nil {
		c.logger.Error("release of the charger failed; the Reaper will free it", "error", err)
	}
}

// end closes an interrupted or cancelled charge: stop charging, release
// the robot first (the urgent mission waits for it), then the charger.
func (c *charge) end(ctx workflow.Context) (schemas.ChargeStatus, error) {
	state, reason := schemas.ChargeCancelled, "cancelled"
	if c.interrupt != nil {
		state, reason = schemas.ChargeInterrupted, "taken by mission "+c.interrupt.MissionID
		c.status.InterruptedBy = c.interrupt.MissionID
	} else if c.status.LastError != "" {
		state, reason = schemas.ChargeFailed, c.status.LastError
	}
	if c.charging {
		c.stop(ctx, vda5050.ActionStopCharging, "stop-charging")
		c.charging = false
	}
	c.read(ctx)
	c.releaseRobot(ctx)
	if state != schemas.ChargeCancelled {
		c.vacate(ctx) // the urgent mission drives it off at once
	}
	c.releaseCharger(ctx)
	c.setState(ctx, state)
	c.audit(ctx, "charge."+strings.ToLower(state), map[string]any{"reason": reason, "stationId": c.station})
	if state == schemas.ChargeFailed {
		return c.status, temporal.NewNonRetryableApplicationError(reason, "ChargeFailed", nil, c.status)
	}
	return c.status, nil
}

// fail stops charging, takes the robot out of service when outOfService
// (it cannot charge: it would be sent again and again), releases it and
// the charger.
func (c *charge) fail(ctx workflow.Context, reason string, outOfService bool) (schemas.ChargeStatus, error) {
	c.status.LastError = reason
	if c.charging {
		c.stop(ctx, vda5050.ActionStopCharging, "stop-charging")
		c.charging = false
	}
	if outOfService {
		if err := setServiceStatus.retry(ctx, "service status out_of_service", schemas.SetServiceStatusInput{
			RobotID: c.in.RobotID, Status: "out_of_service", Actor: c.id, Reason: "charging failed: " + reason,
		}, nil, storeOptions("service status"), workflow.Now(ctx).Add(Timings.ReleaseTimeout)); err != nil {
			c.logger.Error("set out_of_service failed", "error", err)
		}
	}
	c.releaseRobot(ctx)
	c.vacate(ctx)
	c.releaseCharger(ctx)
	c.setState(ctx, schemas.ChargeFailed)
	c.audit(ctx, "charge.failed", map[string]any{"reason": reason, "stationId": c.station, "outOfService": outOfService})
	return c.status, temporal.NewNonRetryableApplicationError(reason, "ChargeFailed", nil, c.status)
}

// finish: charged. Stop charging, release the robot, and hold the charger
// until the robot has left its node (or VacateTimeout).
func (c *charge) finish(ctx workflow.Context, state, note string) (schemas.ChargeStatus, error) {
	if c.charging {
		c.stop(ctx, vda5050.ActionStopCharging, "stop-charging")
		c.charging = false
	}
	c.releaseRobot(ctx)
	c.audit(ctx, "charge.charged", map[string]any{"stationId": c.station, "batteryStart": c.status.BatteryStart, "note": note})
	c.vacate(ctx)
	if c.station != "" {
		c.releaseCharger(ctx)
	}
	c.setState(ctx, state)
	return c.status, nil
}

// vacate holds the charger, once the robot has reached it, until the
// robot's stored state shows it at another node (a mission drove it off),
// at most Charging.VacateTimeout; cancelling the workflow ends the wait.
// The state is read every Charging.Poll at first, the interval doubling to
// a minute, so a robot that stands for a day costs its history a few
// thousand events, well under Temporal's limit. The robot is released by
// then: the first mission that takes it frees the charger.
func (c *charge) vacate(ctx workflow.Context) {
	if !c.arrived {
		return
	}
	c.setState(ctx, schemas.ChargeVacating)
	due := workflow.Now(ctx).Add(Charging.VacateTimeout)
	wait := Charging.Poll
	c.read(ctx)
	for c.last.LastNodeID == c.node && workflow.Now(ctx).Before(due) {
		if err := workflow.Sleep(c.root, wait); err != nil {
			return
		}
		wait = min(2*wait, time.Minute)
		c.read(ctx)
	}
}

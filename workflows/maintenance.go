package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// MaintenanceTimings tunes Maintenance; tests shorten them.
type MaintenanceTimings struct {
	RequeueAfter   time.Duration // waiting for the robot: ask again this often
	ReconcileAfter time.Duration // nothing heard while driving: read the stored state
	OrderAck       time.Duration // the order must show in the robot's state within this
	DriveTimeout   time.Duration // the drive to the station must end within this
	DiagTimeout    time.Duration // the self-test must answer within this
	SignOffTimeout time.Duration // default sign-off deadline
	// UnavailableFor: a robot offline or FATAL this long while the
	// maintenance waits for it is serviced where it stands, unreserved
	// (its service status keeps missions off it).
	UnavailableFor time.Duration
}

// Maint holds Maintenance's timings.
var Maint = MaintenanceTimings{
	RequeueAfter: 30 * time.Second, ReconcileAfter: 15 * time.Second, OrderAck: 10 * time.Second,
	DriveTimeout: 30 * time.Minute, DiagTimeout: time.Minute, SignOffTimeout: 4 * time.Hour, UnavailableFor: 5 * time.Minute,
}

type maintenance struct {
	in     schemas.MaintenanceInput
	id     string
	logger log.Logger
	status schemas.MaintenanceStatus

	robotWatch
	wake     bool
	reserved bool
	signOff  *schemas.SignOff
	// before is the robot's service status before the drain: a cancelled
	// maintenance puts it back.
	before string
	// unreachable says why the robot is serviced where it stands without
	// a reservation ("" = it was reserved).
	unreachable string
}

// Maintenance takes one robot out of service, services it and returns it:
// drain (service status draining: missions no longer get it; the one it
// runs finishes) → reserve it like a mission does → in_maintenance → drive
// to the service station (a VDA 5050 order whose orderId is this
// workflow's ID) → diagnostics (instant action, optional) → wait for the
// technician's sign-off (update complete) with a deadline that escalates
// (update escalate escalates at once) → in_service (pass) or
// out_of_service (fail) → release. A failure on the way (the robot cannot
// reach the station, the registry refuses) leaves it out_of_service, for a
// technician; a cancellation returns it to service. Every step is audited.
// Query: status.
func Maintenance(ctx workflow.Context, in schemas.MaintenanceInput) (schemas.MaintenanceStatus, error) {
	now := workflow.Now(ctx)
	m := &maintenance{in: in, id: workflow.GetInfo(ctx).WorkflowExecution.ID, logger: workflow.GetLogger(ctx), robotWatch: robotWatch{robotID: in.RobotID}}
	m.status = schemas.MaintenanceStatus{RobotID: in.RobotID, State: schemas.MaintDraining, Station: in.Station, Reason: in.Reason, StartedAt: now, UpdatedAt: now}
	if err := workflow.SetQueryHandler(ctx, schemas.QueryStatus, func() (schemas.MaintenanceStatus, error) { return m.status, nil }); err != nil {
		return m.status, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, schemas.UpdateComplete, m.complete, workflow.UpdateHandlerOptions{Validator: m.validateComplete}); err != nil {
		return m.status, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, schemas.UpdateEscalate, m.doEscalate, workflow.UpdateHandlerOptions{Validator: m.validateEscalate}); err != nil {
		return m.status, err
	}
	if in.RobotID == "" || in.Site == "" {
		return m.status, temporal.NewNonRetryableApplicationError("maintenance needs robotId and site", "InvalidMaintenance", nil)
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	events, avail := workflow.GetSignalChannel(ctx, schemas.SignalRobotEvent), workflow.GetSignalChannel(ctx, schemas.SignalRobotAvailable)
	workflow.Go(dctx, func(gctx workflow.Context) {
		for {
			var ev schemas.RobotEvent
			if !events.Receive(gctx, &ev) {
				return
			}
			m.apply(ev)
		}
	})
	workflow.Go(dctx, func(gctx workflow.Context) {
		for avail.Receive(gctx, nil) {
			m.wake = true
		}
	})
	res, err := m.run(ctx, dctx)
	_ = workflow.Await(dctx, func() bool { return workflow.AllHandlersFinished(dctx) })
	return res, err
}

func (m *maintenance) setState(ctx workflow.Context, s string) {
	m.status.State = s
	m.status.UpdatedAt = workflow.Now(ctx)
	d := fmt.Sprintf("**%s** · robot `%s` · %s", s, m.in.RobotID, m.in.Reason)
	if m.status.Diagnostics != "" {
		d += " · " + m.status.Diagnostics
	}
	if m.status.Escalated {
		d += " · **escalated**: " + m.status.Escalations[len(m.status.Escalations)-1]
	}
	if m.status.LastError != "" {
		d += " · " + m.status.LastError
	}
	workflow.SetCurrentDetails(ctx, d)
}

func (m *maintenance) audit(ctx workflow.Context, kind string, details map[string]any) {
	actor := m.in.RequestedBy
	if actor == "" {
		actor = m.id
	}
	if details == nil {
		details = map[string]any{}
	}
	details["robotId"] = m.in.RobotID
	writeAudit(ctx, m.logger, schemas.AuditInput{Actor: actor, Kind: kind, Subject: m.id, Details: details}, true)
}

func (m *maintenance) serviceStatus(ctx workflow.Context, status, reason string) (string, error) {
	var res schemas.SetServiceStatusResult
	err := setServiceStatus.retry(ctx, "service status "+status, schemas.SetServiceStatusInput{
		RobotID: m.in.RobotID, Status: status, Actor: m.id, Reason: reason,
		// Signed off as passed: the robot's condition counters start again.
		Serviced: status == "in_service" && m.signOff != nil && m.signOff.Result == schemas.SignOffPass,
	}, &res, storeOptions("service status"), workflow.Now(ctx).Add(Timings.ReleaseTimeout))
	return res.Before, err
}

// restored is the service status a cancelled maintenance leaves: the one
// before the drain (a robot that was out of service stays so).
func (m *maintenance) restored() string {
	if m.before == "" || m.before == "draining" || m.before == "in_maintenance" {
		return "in_service"
	}
	return m.before
}

// stopRobot sends cancelOrder for the drive (the robot may be on its way).
func (m *maintenance) stopRobot(ctx workflow.Context) {
	if err := sendInstantActions.io(ctx, m.io, "stop "+m.in.RobotID, schemas.SendInstantActionsInput{
		RobotID: m.in.RobotID, Holder: m.id, Actions: []vda5050.Action{{ActionType: vda5050.ActionCancelOrder, ActionID: m.id + schemas.InstantActionSeparator + "cancel", BlockingType: vda5050.BlockingHard}},
	}, nil); err != nil {
		m.logger.Warn("cancelOrder failed", "error", err)
	}
}

// end sets the robot's final service status, releases it and audits.
func (m *maintenance) end(ctx workflow.Context, state, service, reason string) (schemas.MaintenanceStatus, error) {
	if _, err := m.serviceStatus(ctx, service, reason); err != nil {
		m.status.LastError = "set service status: " + err.Error()
	}
	if m.reserved {
		if err := releaseRobot.retry(ctx, "release "+m.in.RobotID, schemas.ReleaseRobotInput{
			RobotID: m.in.RobotID, MissionID: m.id, Site: m.in.Site,
		}, nil, storeOptions("release"), workflow.Now(ctx).Add(Timings.ReleaseTimeout)); err != nil {
			m.logger.Error("release failed; the Reaper will free it", "error", err)
		} else {
			m.reserved = false
		}
	}
	m.setState(ctx, state)
	m.audit(ctx, "maintenance."+strings.ToLower(state), map[string]any{"service": service, "reason": reason, "result": m.status.Result, "notes": m.status.Notes})
	return m.status, nil
}

func (m *maintenance) run(ctx, dctx workflow.Context) (schemas.MaintenanceStatus, error) {
	m.setState(dctx, schemas.MaintDraining)
	m.audit(dctx, "maintenance.started", map[string]any{"reason": m.in.Reason, "station": m.in.Station})
	before, err := m.serviceStatus(dctx, "draining", m.in.Reason)
	if err != nil {
		m.status.LastError = err.Error()
		m.setState(dctx, schemas.MaintOutOfService)
		return m.status, temporal.NewNonRetryableApplicationError("drain "+m.in.RobotID+": "+err.Error(), errType(err, "MaintenanceFailed"), nil)
	}
	m.before = before
	if !m.reserve(ctx, dctx) || ctx.Err() != nil {
		m.leaveQueue(dctx)
		m.reserved = true // a grant may have raced the cancellation: release is a no-op otherwise
		return m.end(dctx, schemas.MaintCancelled, m.restored(), "maintenance cancelled while waiting for the robot")
	}
	if _, err := m.serviceStatus(dctx, "in_maintenance", m.in.Reason); err != nil {
		m.status.LastError = err.Error()
	}
	if m.unreachable != "" {
		m.status.LastError = m.unreachable
		m.audit(dctx, "maintenance.unreachable", map[string]any{"reason": m.unreachable})
	}
	if m.in.Station != "" && m.unreachable == "" {
		m.setState(dctx, schemas.MaintDriving)
		if err := m.drive(ctx, dctx); err != nil {
			if ctx.Err() != nil {
				// Cancelled on the way: CANCELLED only once the robot
				// confirms it stopped. Otherwise it is somewhere on the
				// way, perhaps still driving: out of service until checked.
				if why := m.stopOrder(dctx, m.id, m.id, m.id+schemas.InstantActionSeparator+"cancel"); why != "" {
					m.status.LastError = why
					return m.end(dctx, schemas.MaintOutOfService, "out_of_service", "cancelled on the way to the station, but "+why+": out of service until checked")
				}
				return m.end(dctx, schemas.MaintCancelled, m.restored(), "maintenance cancelled on the way to the station")
			}
			m.stopRobot(dctx)
			m.status.LastError = err.Error()
			return m.end(dctx, schemas.MaintOutOfService, "out_of_service", err.Error())
		}
	}
	if m.in.Diagnostics && m.unreachable == "" {
		m.setState(dctx, schemas.MaintDiagnosing)
		m.status.Diagnostics = m.diagnose(dctx)
		m.audit(dctx, "maintenance.diagnostics", map[string]any{"result": m.status.Diagnostics})
	}
	limit := Maint.SignOffTimeout
	if m.in.SignOffTimeoutSeconds > 0 {
		limit = time.Duration(m.in.SignOffTimeoutSeconds) * time.Second
	}
	m.status.SignOffDue = workflow.Now(dctx).Add(limit)
	m.setState(dctx, schemas.MaintAwaitSignOff)
	ok, err := workflow.AwaitWithTimeout(ctx, limit, func() bool { return m.signOff != nil })
	if err == nil && !ok {
		m.escalated(dctx, fmt.Sprintf("no sign-off within %s", limit))
		err = workflow.Await(ctx, func() bool { return m.signOff != nil })
	}
	if err != nil {
		return m.end(dctx, schemas.MaintCancelled, m.restored(), "maintenance cancelled before sign-off")
	}
	s := m.signOff
	m.status.Result, m.status.Notes, m.status.SignedOffBy = s.Result, s.Notes, s.By
	if s.Result == schemas.SignOffPass {
		return m.end(dctx, schemas.MaintReturned, "in_service", "signed off: "+s.Notes)
	}
	return m.end(dctx, schemas.MaintOutOfService, "out_of_service", "signed off as failed: "+s.Notes)
}

func (m *maintenance) escalated(ctx workflow.Context, why string) {
	m.status.Escalated = true
	m.status.Escalations = append(m.status.Escalations, why)
	m.setState(ctx, m.status.State)
	m.audit(ctx, "maintenance.escalated", map[string]any{"reason": why})
}

// reserve holds the robot like a mission, asking for it by name: it waits
// while the robot finishes the mission it runs. A robot offline or FATAL
// for Maint.UnavailableFor is serviced where it stands, unreserved
// (m.unreachable says why). false when cancelled.
func (m *maintenance) reserve(ctx, dctx workflow.Context) bool {
	req := schemas.ReserveRobotInput{MissionID: m.id, WorkflowID: m.id, Site: m.in.Site, RobotID: m.in.RobotID}
	var unavailableSince time.Time
	for {
		m.wake = false
		var res schemas.ReserveRobotResult
		if err := reserveRobot.retry(dctx, "reserve "+m.in.RobotID, req, &res, storeOptions("reserve"), workflow.Now(dctx).Add(Timings.ReleaseTimeout)); err != nil {
			m.status.LastError = "reserve: " + err.Error()
		} else if !res.Queued {
			m.reserved = true
			m.io = res.RobotIOQueue
			return true
		}
		var snap schemas.RobotEvent
		if err := robotSnapshot.local(dctx, "read stored state", schemas.RobotSnapshotInput{RobotID: m.in.RobotID}, &snap); err == nil {
			now := workflow.Now(dctx)
			if why := unavailable(snap); why != "" {
				if unavailableSince.IsZero() {
					unavailableSince = now
				}
				if now.Sub(unavailableSince) >= Maint.UnavailableFor {
					m.leaveQueue(dctx)
					m.unreachable = fmt.Sprintf("robot %s has been unavailable (%s) for %s: serviced where it stands, unreserved", m.in.RobotID, why, now.Sub(unavailableSince))
					return true
				}
			} else {
				unavailableSince = time.Time{}
			}
		}
		_, _ = workflow.AwaitWithTimeout(ctx, Maint.RequeueAfter, func() bool { return m.wake })
		if ctx.Err() != nil {
			return false
		}
	}
}

// unavailable says why a robot cannot be reserved or driven ("" = it can):
// its connection is not ONLINE, or it reports a FATAL error.
func unavailable(ev schemas.RobotEvent) string {
	if ev.Connection != "" && ev.Connection != string(vda5050.ConnectionOnline) {
		return ev.Connection
	}
	for _, e := range ev.Errors {
		if e.ErrorLevel == vda5050.ErrorFatal {
			return "FATAL " + e.ErrorType
		}
	}
	return ""
}

func (m *maintenance) leaveQueue(ctx workflow.Context) {
	if err := cancelQueued.retry(ctx, "leave the reservation queue", schemas.CancelQueuedInput{MissionID: m.id},
		nil, storeOptions("leave queue"), workflow.Now(ctx).Add(Timings.ReleaseTimeout)); err != nil {
		m.logger.Warn("leave queue failed", "error", err)
	}
}

// drive sends the robot to the service station and waits until its state
// shows the order done there.
func (m *maintenance) drive(ctx, dctx workflow.Context) error {
	return m.driveTo(ctx, dctx, m.in.Site, m.in.Station, m.id, Maint.DriveTimeout, nil)
}

// diagnose runs the self-test and returns its result (or why there is none).
func (m *maintenance) diagnose(ctx workflow.Context) string {
	id := m.id + schemas.InstantActionSeparator + "diagnostics"
	if err := sendInstantActions.io(ctx, m.io, "diagnostics on "+m.in.RobotID, schemas.SendInstantActionsInput{
		RobotID: m.in.RobotID, Holder: m.id, Actions: []vda5050.Action{{ActionType: "diagnostics", ActionID: id, BlockingType: vda5050.BlockingNone}},
	}, nil); err != nil {
		return "not run: " + err.Error()
	}
	var out string
	_, _ = workflow.AwaitWithTimeout(ctx, Maint.DiagTimeout, func() bool {
		for _, as := range m.last.ActionStates {
			if as.ActionID == id && as.ActionStatus.Terminal() {
				out = string(as.ActionStatus) + ": " + as.ResultDescription
				return true
			}
		}
		return false
	})
	if out == "" {
		return fmt.Sprintf("no answer within %s", Maint.DiagTimeout)
	}
	return out
}

func (m *maintenance) validateComplete(ctx workflow.Context, s schemas.SignOff) error {
	if s.Result != schemas.SignOffPass && s.Result != schemas.SignOffFail {
		return fmt.Errorf("result %q: want %s or %s", s.Result, schemas.SignOffPass, schemas.SignOffFail)
	}
	if m.status.State != schemas.MaintAwaitSignOff {
		return fmt.Errorf("maintenance of %s is %s: a sign-off is taken only while %s", m.in.RobotID, m.status.State, schemas.MaintAwaitSignOff)
	}
	if m.signOff != nil {
		return fmt.Errorf("maintenance of %s is already signed off", m.in.RobotID)
	}
	return nil
}

// complete records the sign-off and returns once the robot's service
// status is set and it is released.
func (m *maintenance) complete(ctx workflow.Context, s schemas.SignOff) (schemas.MaintenanceStatus, error) {
	m.signOff = &s
	err := workflow.Await(ctx, func() bool {
		return m.status.State == schemas.MaintReturned || m.status.State == schemas.MaintOutOfService
	})
	return m.status, err
}

func (m *maintenance) validateEscalate(ctx workflow.Context, e schemas.EscalateRequest) error {
	if e.Reason == "" {
		return fmt.Errorf("escalate: a reason is required")
	}
	switch m.status.State {
	case schemas.MaintReturned, schemas.MaintOutOfService, schemas.MaintCancelled:
		return fmt.Errorf("maintenance of %s has ended (%s)", m.in.RobotID, m.status.State)
	}
	return nil
}

// doEscalate records an escalation at once, in any state before the end.
func (m *maintenance) doEscalate(ctx workflow.Context, e schemas.EscalateRequest) (schemas.MaintenanceStatus, error) {
	m.escalated(ctx, fmt.Sprintf("escalated by %s: %s", dash(e.By), e.Reason))
	return m.status, nil
}

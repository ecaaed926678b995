package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// reserveLockClass is the first key of the transaction-level advisory lock
// pg_advisory_xact_lock(reserveLockClass, hashtext(site)) that serializes the
// reservation decisions of one site ("ffrs" in ASCII). Sites do not block each
// other (up to hash collisions, which only cost waiting).
const reserveLockClass int32 = 0x66667273

// ReserveRequest asks for a robot for a mission.
type ReserveRequest struct {
	MissionID  string // required; at most one reservation per mission
	WorkflowID string // required; returned by Release so the caller can wake it
	Site       string // required; only robots of this site are considered
	// Priority: higher goes first; FIFO within a priority.
	Priority int
	// RequiredCapabilities must all be among the robot's capabilities.
	RequiredCapabilities []string
	// MinBattery is the lowest acceptable battery charge, percent (0–100).
	MinBattery float64
	// FirstNode is the ID of the mission's first node (informational, kept in
	// the queue).
	FirstNode string
	// X, Y is the position of the mission's first node, metres: the nearest
	// eligible robot (Euclidean distance) is chosen.
	X, Y float64
	// RobotID, when set, asks for this robot only (an OTA update): only it
	// is eligible, RequiredCapabilities and MinBattery are ignored, and the
	// request waits in line like any other until the robot is free.
	RobotID string
}

// Reservation is the outcome of Reserve.
type Reservation struct {
	RobotID   string // the reserved robot; "" when Queued
	MissionID string
	// Queued is true when no robot could be given now: the request waits in
	// the queue of its site and the caller should call Reserve again when
	// woken (see Release) or after a while.
	Queued bool
	// QueuePosition is 1 for the first request in line, 0 when not queued.
	QueuePosition int
	// ServiceStatus, with a grant, is the robot's service status when it
	// is not in_service (Draining, InMaintenance, OutOfService); "" when
	// it is. Only a request naming the robot can get such a robot.
	ServiceStatus string
	// Wake lists the workflow IDs of other queued requests of the site that
	// a free robot now waits for (for example one that came online since
	// they were queued), in line order: signal them so they call Reserve
	// again. A missed wake-up only delays a mission that retries on its own.
	Wake []string
}

// candidate is a free robot of a site as Reserve sees it.
type candidate struct {
	id      string
	caps    map[string]bool
	battery float64
	x, y    float64
	// inService: service status in_service. A robot draining, in
	// maintenance or out of service goes only to a request naming it.
	inService bool
	status    string // its service status
}

// waiter is a queued request.
type waiter struct {
	missionID, workflowID string
	priority              int
	enqueuedAt            time.Time
	caps                  []string
	minBattery            float64
	x, y                  float64
	robotID               string // "" = any robot that fits
	robot                 int    // index of the candidate it would get, -1 for none
}

func (c *candidate) fits(caps []string, minBattery float64) bool {
	if !c.inService || c.battery < minBattery {
		return false
	}
	for _, cp := range caps {
		if !c.caps[cp] {
			return false
		}
	}
	return true
}

// nearest returns the index of the free candidate nearest to (x, y) that fits
// the requirements, or -1. Ties go to the lower robot ID (candidates are
// sorted by ID). A non-empty robotID admits only that robot, whatever its
// capabilities, battery and service status; otherwise only robots in
// service fit.
func nearest(cands []candidate, taken []bool, caps []string, minBattery, x, y float64, robotID string) int {
	best, bestD := -1, math.Inf(1)
	for i := range cands {
		if taken[i] {
			continue
		}
		if robotID != "" {
			if cands[i].id == robotID {
				return i
			}
			continue
		}
		if !cands[i].fits(caps, minBattery) {
			continue
		}
		if d := math.Hypot(cands[i].x-x, cands[i].y-y); d < bestD {
			best, bestD = i, d
		}
	}
	return best
}

// freeRobotOfSite is the SQL condition on robots r joined with robot_state
// s that makes a robot of site $1 free to hand out: ONLINE, no FATAL
// error, nothing left to drive and every action ended (an action still
// under way, the last node's drop of an old order or an instant action,
// means the robot is not done: VDA 5050 §6.10.6 counts an order finished
// only with every action FINISHED or FAILED), and not reserved.
// freeRobots and lostWakeUp share it, so that the look again after
// queueing can never miss a robot Reserve would hand out.
const freeRobotOfSite = `r.site = $1
  AND s.connection_state = 'ONLINE'
  AND s.fatal_error = ''
  AND s.node_states_remaining = 0 AND NOT s.driving
  AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(s.action_states) a
                  WHERE a->>'actionStatus' NOT IN ('FINISHED', 'FAILED'))
  AND NOT EXISTS (SELECT 1 FROM reservations v WHERE v.robot_id = r.robot_id)`

// freeRobots returns the robots of site that could be reserved now (ONLINE,
// no fatal error, nothing left to drive, every action ended, not
// reserved; whether it is in service is in candidate.inService),
// sorted by ID, and locks their rows; only
// robotID when it is not "" (a robot-specific request with nobody in line
// needs no other row). Call it holding the site's advisory lock.
func freeRobots(ctx context.Context, tx pgx.Tx, site, robotID string) ([]candidate, error) {
	rows, err := tx.Query(ctx, `
SELECT r.robot_id, r.capabilities, s.battery_charge, s.x, s.y, r.service_status
FROM robots r
JOIN robot_state s ON s.robot_id = r.robot_id
WHERE `+freeRobotOfSite+`
  AND ($2 = '' OR r.robot_id = $2)
ORDER BY r.robot_id
FOR NO KEY UPDATE OF r SKIP LOCKED`, site, robotID)
	if err != nil {
		return nil, fmt.Errorf("free robots of %s: %w", site, err)
	}
	cands, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (candidate, error) {
		var c candidate
		var cs []string
		if err := row.Scan(&c.id, &cs, &c.battery, &c.x, &c.y, &c.status); err != nil {
			return c, err
		}
		c.inService = c.status == InService
		c.caps = make(map[string]bool, len(cs))
		for _, cp := range cs {
			c.caps[cp] = true
		}
		return c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("free robots of %s: %w", site, err)
	}
	return cands, nil
}

// siteQueue returns the queued requests of site in line order (priority
// descending, then enqueued_at, then mission ID), except missionID's.
func siteQueue(ctx context.Context, tx pgx.Tx, site, exceptMission string) ([]waiter, error) {
	rows, err := tx.Query(ctx, `
SELECT mission_id, workflow_id, priority, enqueued_at, required_capabilities, min_battery, x, y, robot_id
FROM reservation_queue
WHERE site = $1 AND mission_id <> $2
ORDER BY priority DESC, enqueued_at, mission_id COLLATE "C"`, site, exceptMission)
	if err != nil {
		return nil, fmt.Errorf("queue of %s: %w", site, err)
	}
	q, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (waiter, error) {
		w := waiter{robot: -1}
		err := row.Scan(&w.missionID, &w.workflowID, &w.priority, &w.enqueuedAt, &w.caps, &w.minBattery, &w.x, &w.y, &w.robotID)
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("queue of %s: %w", site, err)
	}
	return q, nil
}

// serve hands the free robots to the waiters in order, each getting the
// nearest one it can use (greedy), and marks them taken.
func serve(cands []candidate, taken []bool, waiters []waiter) {
	for i := range waiters {
		w := &waiters[i]
		if w.robot = nearest(cands, taken, w.caps, w.minBattery, w.x, w.y, w.robotID); w.robot >= 0 {
			taken[w.robot] = true
		}
	}
}

// servedWorkflows returns the workflow IDs of the waiters that a robot waits
// for, in line order.
func servedWorkflows(waiters ...[]waiter) []string {
	var ids []string
	for _, ws := range waiters {
		for _, w := range ws {
			if w.robot >= 0 {
				ids = append(ids, w.workflowID)
			}
		}
	}
	return ids
}

func (r *ReserveRequest) validate() error {
	switch {
	case r.MissionID == "":
		return errors.New("empty mission ID")
	case r.WorkflowID == "":
		return errors.New("empty workflow ID")
	case r.Site == "":
		return errors.New("empty site")
	case math.IsNaN(r.MinBattery) || r.MinBattery < 0 || r.MinBattery > 100:
		return fmt.Errorf("min battery %v%% outside 0–100", r.MinBattery)
	case math.IsNaN(r.X) || math.IsNaN(r.Y) || math.IsInf(r.X, 0) || math.IsInf(r.Y, 0):
		return errors.New("position is not finite")
	}
	return nil
}

// Reserve gives the mission a robot, or queues the request when none can be
// given now. The decision is one transaction (a queued one may be taken
// once more, see lostWakeUp below); calling it again is safe:
// a mission that holds a robot gets the same reservation back, and a queued
// mission gets its current queue position (its place in line is kept; its
// priority and requirements are updated from req).
//
// A robot is eligible when it belongs to req.Site, has every required
// capability, has BatteryCharge ≥ MinBattery, is ONLINE, reports no FATAL
// error, is not working on an order (its latest state has no node left
// and it is not driving: a robot given up while it was away still drives
// its base, VDA 5050 §4.1, and returns to service once it reports idle)
// and is not reserved. Waiting requests go first: the queued requests
// of the site with a higher priority, or the same priority and an earlier
// place in line, are given free robots first (each, in order, the nearest
// one it could use), and this request gets the nearest eligible robot to
// (X, Y) among those left. So a robot that a more urgent waiting mission
// could use is never taken from it, while robots no waiting mission can use
// are still handed out.
//
// Reservation decisions of one site are serialized by a transaction-level
// advisory lock; the free robots are locked with SELECT … FOR NO KEY UPDATE
// SKIP LOCKED (a robot being re-registered at that moment counts as busy),
// and the primary key of reservations makes double booking impossible.
//
// On a grant the request leaves the queue. Reservation.Wake names the other
// queued requests a free robot now waits for. An audit row (subject: mission ID,
// kind reservation.granted or reservation.queued) is written in the same
// transaction. It returns an error wrapping ErrInvalid for a bad request, and
// wraps database errors otherwise (nothing is written then).
func (s *Store) Reserve(ctx context.Context, req ReserveRequest) (Reservation, error) {
	if err := req.validate(); err != nil {
		return Reservation{}, fmt.Errorf("reserve %s: %w: %v", req.MissionID, ErrInvalid, err)
	}
	res, err := s.reserve(ctx, req)
	if err != nil || !res.Queued {
		return res, err
	}
	if testHookQueued != nil {
		testHookQueued(req)
	}
	// Queued. A Release reads the line without the site's lock once its
	// own transaction has committed; a release that committed while this
	// transaction decided may not have seen this request in line. Look for
	// a free robot again now that the request is committed: if there is
	// one, decide once more (a release committing after this look sees
	// the request in line and wakes it).
	lost, err := s.lostWakeUp(ctx, req)
	if err != nil || !lost {
		return res, err
	}
	return s.reserve(ctx, req)
}

// testHookQueued, set by tests only, runs between a queued decision's
// commit and the look for a lost wake-up.
var testHookQueued func(ReserveRequest)

// lostWakeUp reports whether site req.Site has a robot that Reserve
// could hand out to req now (free as freeRobots says; the robot req
// names, or one in service with req's capabilities and battery): a
// queued request may have missed its release. It may say yes for a robot
// a request ahead in line gets (Reserve then decides once more, and
// queues again).
func (s *Store) lostWakeUp(ctx context.Context, req ReserveRequest) (bool, error) {
	caps := req.RequiredCapabilities
	if caps == nil {
		caps = []string{}
	}
	var free bool
	err := s.pool.QueryRow(ctx, `
SELECT EXISTS (
  SELECT 1 FROM robots r JOIN robot_state s ON s.robot_id = r.robot_id
  WHERE `+freeRobotOfSite+`
    AND (r.robot_id = $2 OR ($2 = '' AND r.service_status = 'in_service'
         AND s.battery_charge >= $3 AND r.capabilities @> $4::text[])))`, req.Site, req.RobotID, req.MinBattery, caps).Scan(&free)
	if err != nil {
		return false, fmt.Errorf("reserve %s: look again for a free robot: %w", req.MissionID, err)
	}
	return free, nil
}

func (s *Store) reserve(ctx context.Context, req ReserveRequest) (Reservation, error) {
	caps := req.RequiredCapabilities
	if caps == nil {
		caps = []string{}
	}
	var res Reservation
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res = Reservation{MissionID: req.MissionID}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, reserveLockClass, req.Site); err != nil {
			return fmt.Errorf("lock site %s: %w", req.Site, err)
		}

		// Idempotency: the mission already holds a robot.
		var status string
		err := tx.QueryRow(ctx, `
SELECT v.robot_id, r.service_status FROM reservations v JOIN robots r ON r.robot_id = v.robot_id
WHERE v.mission_id = $1`, req.MissionID).Scan(&res.RobotID, &status)
		if err == nil && status != InService {
			res.ServiceStatus = status
		}
		switch {
		case err == nil:
			if _, err := tx.Exec(ctx, `DELETE FROM reservation_queue WHERE mission_id = $1`, req.MissionID); err != nil {
				return err
			}
			return audit(ctx, tx, req.WorkflowID, "reservation.granted", req.MissionID,
				map[string]any{"robotId": res.RobotID, "again": true})
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}

		// The request's place in line, when it is already queued.
		var enqueuedAt *time.Time
		err = tx.QueryRow(ctx, `SELECT enqueued_at FROM reservation_queue WHERE mission_id = $1`, req.MissionID).Scan(&enqueuedAt)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}

		queue, err := siteQueue(ctx, tx, req.Site, req.MissionID)
		if err != nil {
			return err
		}
		// With nobody else in line, a robot-specific request (an OTA
		// update) looks at its robot only: the cost no longer grows with
		// the site's fleet.
		only := ""
		if len(queue) == 0 {
			only = req.RobotID
		}
		cands, err := freeRobots(ctx, tx, req.Site, only)
		if err != nil {
			return err
		}
		// Split the line into the requests ahead of this one and behind it.
		// A request not yet queued goes behind every queued request of its
		// priority.
		ahead := 0
		for ahead < len(queue) {
			w := queue[ahead]
			first := w.priority > req.Priority ||
				(w.priority == req.Priority && (enqueuedAt == nil || w.enqueuedAt.Before(*enqueuedAt) ||
					(w.enqueuedAt.Equal(*enqueuedAt) && w.missionID < req.MissionID)))
			if !first {
				break
			}
			ahead++
		}

		// Hand free robots to the requests ahead, then to this one, then to
		// the rest of the line.
		taken := make([]bool, len(cands))
		serve(cands, taken, queue[:ahead])
		mine := nearest(cands, taken, caps, req.MinBattery, req.X, req.Y, req.RobotID)
		if mine >= 0 {
			taken[mine] = true
		}
		serve(cands, taken, queue[ahead:])
		res.Wake = servedWorkflows(queue)

		if mine >= 0 {
			res.RobotID = cands[mine].id
			if !cands[mine].inService {
				res.ServiceStatus = cands[mine].status
			}
			if _, err := tx.Exec(ctx, `
INSERT INTO reservations (robot_id, mission_id, workflow_id, priority) VALUES ($1, $2, $3, $4)`,
				res.RobotID, req.MissionID, req.WorkflowID, req.Priority); err != nil {
				return fmt.Errorf("insert reservation of %s: %w", res.RobotID, err)
			}
			if _, err := tx.Exec(ctx, `DELETE FROM reservation_queue WHERE mission_id = $1`, req.MissionID); err != nil {
				return err
			}
			return audit(ctx, tx, req.WorkflowID, "reservation.granted", req.MissionID,
				map[string]any{"robotId": res.RobotID, "site": req.Site, "priority": req.Priority,
					"distance": math.Hypot(cands[mine].x-req.X, cands[mine].y-req.Y)})
		}

		// No robot now: wait in line (keeping the place already held).
		if _, err := tx.Exec(ctx, `
INSERT INTO reservation_queue (mission_id, workflow_id, site, priority, required_capabilities, min_battery, first_node, x, y, robot_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (mission_id) DO UPDATE SET
    workflow_id = EXCLUDED.workflow_id,
    site = EXCLUDED.site,
    priority = EXCLUDED.priority,
    required_capabilities = EXCLUDED.required_capabilities,
    min_battery = EXCLUDED.min_battery,
    first_node = EXCLUDED.first_node,
    x = EXCLUDED.x,
    y = EXCLUDED.y,
    robot_id = EXCLUDED.robot_id`,
			req.MissionID, req.WorkflowID, req.Site, req.Priority, caps, req.MinBattery, req.FirstNode, req.X, req.Y, req.RobotID); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
		res.Queued, res.QueuePosition = true, ahead+1
		return audit(ctx, tx, req.WorkflowID, "reservation.queued", req.MissionID,
			map[string]any{"site": req.Site, "priority": req.Priority, "position": res.QueuePosition,
				"requiredCapabilities": caps, "minBattery": req.MinBattery})
	})
	if err != nil {
		return Reservation{}, fmt.Errorf("reserve %s: %w", req.MissionID, err)
	}
	return res, nil
}

// Release ends missionID's reservation of robotID. It is idempotent: when the
// robot is not reserved by missionID (already released, or reserved by
// another mission) nothing changes. It returns the workflow IDs of the
// requests queued for the robot's site that a free robot now waits for,
// highest priority first and FIFO within a priority, so the caller can wake
// them (they call Reserve again and get that robot). Which robot each gets is
// decided as Reserve decides it: the line is served in order, each request
// taking the nearest free robot it can use. Because the list is computed
// from the current state, a retried Release names the same workflows again.
// It is empty when the robot is unknown or no queued request can use a free
// robot. An audit row (subject: mission ID, kind reservation.released or
// reservation.release_ignored) is written when the robot exists, and the
// rows of also in the same transaction (a mission's end: one registry
// round trip instead of two). Database errors are wrapped; nothing is
// written when the release itself fails. An error while choosing whom to
// wake comes after the release was committed: a retry finds nothing to
// release (release_ignored; also's keyed rows are not written twice) and
// names whom to wake.
func (s *Store) Release(ctx context.Context, robotID, missionID string, also ...AuditRow) ([]string, error) {
	// The release itself takes no site lock: deleting a reservation cannot
	// double-book anything (Reserve only hands out robots without one), and
	// holding the lock across this transaction's commit made every release
	// wait behind the site's reserves (bench: ReleaseRobot 150 ms at 50
	// missions in flight).
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("release %s by %s: %w", robotID, missionID, err)
	}
	defer conn.Release()
	var site string
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		site = ""
		err := tx.QueryRow(ctx, `SELECT site FROM robots WHERE robot_id = $1`, robotID).Scan(&site)
		if errors.Is(err, pgx.ErrNoRows) {
			return auditRows(ctx, tx, also)
		}
		if err != nil {
			return err
		}
		var workflowID, holder string
		err = tx.QueryRow(ctx, `DELETE FROM reservations WHERE robot_id = $1 AND mission_id = $2 RETURNING workflow_id`,
			robotID, missionID).Scan(&workflowID)
		released := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		kind := "reservation.released"
		if !released {
			kind = "reservation.release_ignored"
			err = tx.QueryRow(ctx, `SELECT mission_id FROM reservations WHERE robot_id = $1`, robotID).Scan(&holder)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		if err := audit(ctx, tx, workflowID, kind, missionID,
			map[string]any{"robotId": robotID, "site": site, "heldBy": holder}); err != nil {
			return err
		}
		return auditRows(ctx, tx, also)
	})
	if err != nil {
		return nil, fmt.Errorf("release %s by %s: %w", robotID, missionID, err)
	}
	if site == "" {
		return nil, nil
	}
	// Whom to wake is looked at after the release is committed. A Reserve
	// that queues its request looks for a free robot again after its own
	// commit (Reserve, lostWakeUp): either that look sees this release, or
	// this read, which comes after the release's commit, sees the request
	// in line. So no queued request misses the robot, and a site with
	// nobody in line (the usual case) costs no wait for the site's lock.
	var queued bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM reservation_queue WHERE site = $1)`, site).Scan(&queued); err != nil {
		return nil, fmt.Errorf("release %s by %s: whom to wake: %w", robotID, missionID, err)
	}
	if !queued {
		return nil, nil
	}
	// Someone waits: choose whom to wake as Reserve would serve them,
	// under the site's lock.
	var wake []string
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		wake = nil
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, reserveLockClass, site); err != nil {
			return fmt.Errorf("lock site %s: %w", site, err)
		}
		queue, err := siteQueue(ctx, tx, site, "")
		if err != nil || len(queue) == 0 {
			return err // nobody to wake
		}
		cands, err := freeRobots(ctx, tx, site, "")
		if err != nil {
			return err
		}
		serve(cands, make([]bool, len(cands)), queue)
		wake = servedWorkflows(queue)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("release %s by %s: whom to wake: %w", robotID, missionID, err)
	}
	return wake, nil
}

// AuditRow is an audit row written in the transaction of another change
// (Release's also): Key, when set, writes it at most once (AuditOnce).
type AuditRow struct {
	Key, Actor, Kind, Subject string
	Details                   any
}

func auditRows(ctx context.Context, tx pgx.Tx, rows []AuditRow) error {
	for _, r := range rows {
		if err := auditKeyed(ctx, tx, r.Key, r.Actor, r.Kind, r.Subject, r.Details); err != nil {
			return fmt.Errorf("audit %s %s: %w", r.Kind, r.Subject, err)
		}
	}
	return nil
}

// CancelQueued removes missionID's request from the queue (call it when a
// waiting mission is cancelled or gives up, or it keeps robots from less
// urgent missions). It is idempotent: a mission that is not queued is fine.
// It does not release a reservation the mission holds (see Release). An audit
// row (kind reservation.queue_cancelled) is written when a request was
// removed. Database errors are wrapped.
func (s *Store) CancelQueued(ctx context.Context, missionID string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var workflowID, site string
		err := tx.QueryRow(ctx, `DELETE FROM reservation_queue WHERE mission_id = $1 RETURNING workflow_id, site`,
			missionID).Scan(&workflowID, &site)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, workflowID, "reservation.queue_cancelled", missionID, map[string]any{"site": site})
	})
	if err != nil {
		return fmt.Errorf("cancel queued %s: %w", missionID, err)
	}
	return nil
}

// ReservationOf returns the robot reserved by missionID; ok is false when the
// mission holds no reservation (it may be queued). Database errors are
// wrapped.
func (s *Store) ReservationOf(ctx context.Context, missionID string) (robotID string, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT robot_id FROM reservations WHERE mission_id = $1`, missionID).Scan(&robotID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reservation of %s: %w", missionID, err)
	}
	return robotID, true, nil
}

// ReservationHolder returns the mission ID holding robotID's reservation
// (a RobotUpdate or Maintenance holds it under its workflow ID); ok is false
// when the robot is not reserved. Database errors are wrapped.
func (s *Store) ReservationHolder(ctx context.Context, robotID string) (missionID string, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT mission_id FROM reservations WHERE robot_id = $1`, robotID).Scan(&missionID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reservation holder of %s: %w", robotID, err)
	}
	return missionID, true, nil
}

// Lease is a hold of the fleet registry by a workflow: a robot's
// reservation, a place in a site's reservation queue, a charging station or
// a place in line for one.
type Lease struct {
	Kind       string // LeaseReservation or LeaseQueue
	MissionID  string // the holder's mission ID (a RobotUpdate uses its workflow ID)
	WorkflowID string
	RobotID    string // reservations only
	Site       string
	Since      time.Time
}

// Lease kinds.
const (
	LeaseReservation  = "reservation"
	LeaseQueue        = "queue"
	LeaseStation      = "station"       // a charging station (ReserveStation)
	LeaseStationQueue = "station-queue" // a place in line for one
)

// Leases returns every reservation and queue row held since before
// olderThan (younger ones belong to workflows that just took them), oldest
// first. Database errors are wrapped.
func (s *Store) Leases(ctx context.Context, olderThan time.Time) ([]Lease, error) {
	rows, err := s.pool.Query(ctx, `
SELECT 'reservation', v.mission_id, v.workflow_id, v.robot_id, r.site, v.reserved_at
FROM reservations v JOIN robots r ON r.robot_id = v.robot_id
WHERE v.reserved_at < $1
UNION ALL
SELECT 'queue', q.mission_id, q.workflow_id, '', q.site, q.enqueued_at
FROM reservation_queue q
WHERE q.enqueued_at < $1
UNION ALL
SELECT 'station', t.holder, t.holder, t.robot_id, t.site, t.reserved_at
FROM station_reservations t
WHERE t.reserved_at < $1
UNION ALL
SELECT 'station-queue', w.holder, w.holder, w.robot_id, w.site, w.enqueued_at
FROM station_queue w
WHERE w.enqueued_at < $1
ORDER BY 6`, olderThan)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	leases, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Lease, error) {
		var l Lease
		err := r.Scan(&l.Kind, &l.MissionID, &l.WorkflowID, &l.RobotID, &l.Site, &l.Since)
		l.Since = l.Since.UTC()
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	return leases, nil
}

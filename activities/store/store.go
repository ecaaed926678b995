// Package store is the fleet registry in PostgreSQL, through pgx: robots,
// their latest state, reservations, the reservation queue and the audit log.
// Nothing else lives here: no MQTT, no Temporal.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/fleetflow/fleetflow/schemas"
)

// ErrNotFound is returned when a robot or row does not exist.
var ErrNotFound = errors.New("not found")

// migrateLockID serialises concurrent Migrate calls (pg_advisory_lock).
const migrateLockID = 5050_2001

// Migrate applies the embedded goose migrations (schemas/migrations). It is
// idempotent and safe when several processes call it at once.
func Migrate(ctx context.Context, databaseURL string) error {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrateLockID); err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", migrateLockID)
	fsys, err := fs.Sub(schemas.Migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}

// Store is the fleet registry.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects a pool to databaseURL and checks it answers.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Pool exposes the pool (health checks, tests).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Robot is a registered vehicle. X, Y (metres) and MapID are its home pose,
// used until it reports a state.
type Robot struct {
	ID, Manufacturer, SerialNumber, Model, Site string
	Capabilities                                []string
	SoftwareVersion, HomeNode                   string
	X, Y                                        float64
	MapID                                       string
}

// RegisterRobots upserts robots and gives each new one a state row at its
// home node (OFFLINE until it connects).
func (s *Store) RegisterRobots(ctx context.Context, robots []Robot) error {
	b := &pgx.Batch{}
	for _, r := range robots {
		caps := r.Capabilities
		if caps == nil {
			caps = []string{}
		}
		b.Queue(`INSERT INTO robots (robot_id, manufacturer, serial_number, model, site, capabilities, software_version, home_node)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
			ON CONFLICT (robot_id) DO UPDATE SET model=EXCLUDED.model, site=EXCLUDED.site, capabilities=EXCLUDED.capabilities,
			  software_version=EXCLUDED.software_version, home_node=EXCLUDED.home_node, updated_at=now()`,
			r.ID, r.Manufacturer, r.SerialNumber, r.Model, r.Site, caps, r.SoftwareVersion, r.HomeNode)
		b.Queue(`INSERT INTO robot_state (robot_id, last_node_id, x, y, map_id) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (robot_id) DO NOTHING`,
			r.ID, r.HomeNode, r.X, r.Y, r.MapID)
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("register robots: %w", err)
	}
	return nil
}

// RobotState is a robot's latest reported state. BatteryCharge in percent,
// X/Y in metres, Theta in radians; Errors and ActionStates are the VDA 5050
// arrays as JSON.
type RobotState struct {
	RobotID, ConnectionState, OrderID string
	OrderUpdateID                     int64
	LastNodeID                        string
	LastNodeSequenceID                int
	Driving, Paused                   bool
	BatteryCharge, X, Y, Theta        float64
	MapID, FatalError                 string
	Errors, ActionStates              json.RawMessage
	NodeStatesRemaining               int
	HeaderID                          int64
	Timestamp, UpdatedAt              time.Time
}

// UpsertStates stores a batch of states in one round trip. A state older
// than the stored one (by its header timestamp) is ignored, so messages that
// arrive out of order never move a robot back in time. The connection state
// is not touched (see UpsertConnections). Unknown robots are skipped.
func (s *Store) UpsertStates(ctx context.Context, states []RobotState) error {
	if len(states) == 0 {
		return nil
	}
	n := len(states)
	ids, orders, nodes, maps, fatals := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	upd, hdr := make([]int64, n), make([]int64, n)
	seq, remaining := make([]int32, n), make([]int32, n)
	driving, paused := make([]bool, n), make([]bool, n)
	batt, xs, ys, th := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	errs, acts := make([]string, n), make([]string, n)
	ts := make([]time.Time, n)
	for i, st := range states {
		ids[i], orders[i], nodes[i], maps[i], fatals[i] = st.RobotID, st.OrderID, st.LastNodeID, st.MapID, st.FatalError
		upd[i], hdr[i], seq[i], remaining[i] = st.OrderUpdateID, st.HeaderID, int32(st.LastNodeSequenceID), int32(st.NodeStatesRemaining)
		driving[i], paused[i] = st.Driving, st.Paused
		batt[i], xs[i], ys[i], th[i] = st.BatteryCharge, st.X, st.Y, st.Theta
		errs[i], acts[i] = jsonOr(st.Errors), jsonOr(st.ActionStates)
		ts[i] = st.Timestamp
		if ts[i].IsZero() {
			ts[i] = time.Now()
		}
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO robot_state AS s (robot_id, order_id, order_update_id, last_node_id, last_node_sequence_id, driving, paused,
		  battery_charge, x, y, theta, map_id, fatal_error, errors, action_states, node_states_remaining, state_header_id, state_timestamp, updated_at)
		SELECT u.* , now() FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::int[], $6::bool[], $7::bool[],
		  $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::text[], $13::text[], $14::jsonb[], $15::jsonb[], $16::int[], $17::bigint[], $18::timestamptz[])
		  AS u(robot_id, order_id, order_update_id, last_node_id, last_node_sequence_id, driving, paused, battery_charge, x, y, theta,
		       map_id, fatal_error, errors, action_states, node_states_remaining, state_header_id, state_timestamp)
		WHERE EXISTS (SELECT 1 FROM robots r WHERE r.robot_id = u.robot_id)
		ON CONFLICT (robot_id) DO UPDATE SET order_id=EXCLUDED.order_id, order_update_id=EXCLUDED.order_update_id,
		  last_node_id=EXCLUDED.last_node_id, last_node_sequence_id=EXCLUDED.last_node_sequence_id, driving=EXCLUDED.driving,
		  paused=EXCLUDED.paused, battery_charge=EXCLUDED.battery_charge, x=EXCLUDED.x, y=EXCLUDED.y, theta=EXCLUDED.theta,
		  map_id=EXCLUDED.map_id, fatal_error=EXCLUDED.fatal_error, errors=EXCLUDED.errors, action_states=EXCLUDED.action_states,
		  node_states_remaining=EXCLUDED.node_states_remaining, state_header_id=EXCLUDED.state_header_id,
		  state_timestamp=EXCLUDED.state_timestamp, updated_at=now()
		WHERE s.state_timestamp IS NULL OR s.state_timestamp <= EXCLUDED.state_timestamp`,
		ids, orders, upd, nodes, seq, driving, paused, batt, xs, ys, th, maps, fatals, errs, acts, remaining, hdr, ts)
	if err != nil {
		return fmt.Errorf("upsert %d robot states: %w", n, err)
	}
	return nil
}

func jsonOr(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return "[]"
	}
	return string(raw)
}

// ConnectionUpdate is a robot's connection state (ONLINE, OFFLINE,
// CONNECTIONBROKEN) at a time.
type ConnectionUpdate struct {
	RobotID, State string
	At             time.Time
}

// UpsertConnections stores connection changes in one round trip; an older
// change than the stored one is ignored.
func (s *Store) UpsertConnections(ctx context.Context, conns []ConnectionUpdate) error {
	if len(conns) == 0 {
		return nil
	}
	// Keep the newest per robot: one row may be updated once per statement.
	latest := map[string]ConnectionUpdate{}
	for _, c := range conns {
		if p, ok := latest[c.RobotID]; !ok || !c.At.Before(p.At) {
			latest[c.RobotID] = c
		}
	}
	var ids, states []string
	var ats []time.Time
	for _, c := range latest {
		ids, states, ats = append(ids, c.RobotID), append(states, c.State), append(ats, c.At)
	}
	_, err := s.pool.Exec(ctx, `
		UPDATE robot_state s SET connection_state=u.state, connection_at=u.at, updated_at=now()
		FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(robot_id, state, at)
		WHERE s.robot_id=u.robot_id AND (s.connection_at IS NULL OR s.connection_at <= u.at)`, ids, states, ats)
	if err != nil {
		return fmt.Errorf("upsert %d connection states: %w", len(ids), err)
	}
	return nil
}

const stateColumns = `s.robot_id, s.connection_state, s.order_id, s.order_update_id, s.last_node_id, s.last_node_sequence_id, s.driving, s.paused,
	s.battery_charge, s.x, s.y, s.theta, s.map_id, s.fatal_error, s.errors, s.action_states, s.node_states_remaining, s.state_header_id,
	coalesce(s.state_timestamp, 'epoch'::timestamptz), s.updated_at`

func scanState(row pgx.Row, st *RobotState, extra ...any) error {
	dest := []any{&st.RobotID, &st.ConnectionState, &st.OrderID, &st.OrderUpdateID, &st.LastNodeID, &st.LastNodeSequenceID, &st.Driving, &st.Paused,
		&st.BatteryCharge, &st.X, &st.Y, &st.Theta, &st.MapID, &st.FatalError, &st.Errors, &st.ActionStates, &st.NodeStatesRemaining, &st.HeaderID,
		&st.Timestamp, &st.UpdatedAt}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return err
	}
	if st.Timestamp.Unix() == 0 {
		st.Timestamp = time.Time{}
	}
	return nil
}

// RobotState returns the latest state of robotID, or ErrNotFound.
func (s *Store) RobotState(ctx context.Context, robotID string) (RobotState, error) {
	var st RobotState
	err := scanState(s.pool.QueryRow(ctx, `SELECT `+stateColumns+` FROM robot_state s WHERE s.robot_id=$1`, robotID), &st)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("robot %s: %w", robotID, ErrNotFound)
	}
	return st, err
}

// RobotView is a robot with its state and current reservation.
type RobotView struct {
	Robot
	State      RobotState
	ReservedBy string // mission ID, "" when free
}

// ListRobots lists the robots of site ("" = every site), by ID.
func (s *Store) ListRobots(ctx context.Context, site string) ([]RobotView, error) {
	rows, err := s.pool.Query(ctx, `SELECT r.robot_id, r.manufacturer, r.serial_number, r.model, r.site, r.capabilities, r.software_version, r.home_node,
		`+stateColumns+`, coalesce(v.mission_id, '')
		FROM robots r JOIN robot_state s USING (robot_id) LEFT JOIN reservations v USING (robot_id)
		WHERE $1 = '' OR r.site = $1 ORDER BY r.robot_id`, site)
	if err != nil {
		return nil, fmt.Errorf("list robots: %w", err)
	}
	defer rows.Close()
	var out []RobotView
	for rows.Next() {
		var v RobotView
		var st RobotState
		dest := []any{&v.ID, &v.Manufacturer, &v.SerialNumber, &v.Model, &v.Site, &v.Capabilities, &v.SoftwareVersion, &v.HomeNode}
		if err := scanState(multiRow{rows, dest}, &st, &v.ReservedBy); err != nil {
			return nil, err
		}
		v.State = st
		v.X, v.Y, v.MapID = st.X, st.Y, st.MapID
		out = append(out, v)
	}
	return out, rows.Err()
}

// multiRow prepends destinations to a Scan.
type multiRow struct {
	rows pgx.Rows
	pre  []any
}

func (m multiRow) Scan(dest ...any) error { return m.rows.Scan(append(m.pre, dest...)...) }

// ReserveRequest asks for a robot. X, Y: where the mission starts (metres).
// MinBattery in percent.
type ReserveRequest struct {
	MissionID, WorkflowID, Site string
	Priority                    int
	RequiredCapabilities        []string
	MinBattery                  float64
	X, Y                        float64
}

// Reservation is a granted robot, or a place in the queue (Queued,
// QueuePosition 1 = next). Wake lists workflows of other queued missions
// that a free robot now waits for (signal them).
type Reservation struct {
	RobotID, MissionID string
	Queued             bool
	QueuePosition      int
	Wake               []string
}

type freeRobot struct {
	id      string
	caps    []string
	battery float64
	x, y    float64
}

type queued struct {
	req         ReserveRequest
	enqueuedAt  time.Time
	assignedBot string
}

// Reserve gives the mission the nearest eligible robot of its site, or
// queues it. Eligible: same site, every required capability, battery ≥
// MinBattery, ONLINE, no FATAL error, not reserved. Higher-priority waiting
// missions (then earlier ones) get free robots first: the site's queue is
// served greedily in that order, and a request only gets a robot no one
// ahead of it can use.
//
// Reservations of one site are serialised with a transaction-scoped
// advisory lock, so two missions can never get the same robot and no robot
// is skipped because another transaction held it. Idempotent: a mission
// that already holds a robot gets the same one back.
func (s *Store) Reserve(ctx context.Context, req ReserveRequest) (Reservation, error) {
	var res Reservation
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('reserve:' || $1))`, req.Site); err != nil {
			return err
		}
		var held string
		err := tx.QueryRow(ctx, `SELECT robot_id FROM reservations WHERE mission_id=$1`, req.MissionID).Scan(&held)
		if err == nil {
			res = Reservation{RobotID: held, MissionID: req.MissionID}
			_, err = tx.Exec(ctx, `DELETE FROM reservation_queue WHERE mission_id=$1`, req.MissionID)
			return err
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		caps := req.RequiredCapabilities
		if caps == nil {
			caps = []string{}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO reservation_queue (mission_id, workflow_id, site, priority, required_capabilities, min_battery, x, y)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (mission_id) DO UPDATE SET priority=EXCLUDED.priority,
			required_capabilities=EXCLUDED.required_capabilities, min_battery=EXCLUDED.min_battery, x=EXCLUDED.x, y=EXCLUDED.y`,
			req.MissionID, req.WorkflowID, req.Site, req.Priority, caps, req.MinBattery, req.X, req.Y); err != nil {
			return err
		}
		queue, err := assign(ctx, tx, req.Site)
		if err != nil {
			return err
		}
		for i, q := range queue {
			if q.req.MissionID != req.MissionID {
				continue
			}
			if q.assignedBot == "" {
				res = Reservation{MissionID: req.MissionID, Queued: true, QueuePosition: position(queue, i)}
				return nil
			}
			if _, err := tx.Exec(ctx, `INSERT INTO reservations (robot_id, mission_id, workflow_id, priority) VALUES ($1,$2,$3,$4)`,
				q.assignedBot, req.MissionID, req.WorkflowID, req.Priority); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM reservation_queue WHERE mission_id=$1`, req.MissionID); err != nil {
				return err
			}
			if err := audit(ctx, tx, req.WorkflowID, "robot.reserved", q.assignedBot, map[string]any{"missionId": req.MissionID, "priority": req.Priority}); err != nil {
				return err
			}
			res = Reservation{RobotID: q.assignedBot, MissionID: req.MissionID}
		}
		for _, q := range queue {
			if q.assignedBot != "" && q.req.MissionID != req.MissionID {
				res.Wake = append(res.Wake, q.req.WorkflowID)
			}
		}
		return nil
	})
	if err != nil {
		return Reservation{}, fmt.Errorf("reserve robot for %s: %w", req.MissionID, err)
	}
	return res, nil
}

// position counts the unserved requests ahead of queue[i], plus one.
func position(queue []queued, i int) int {
	p := 1
	for j := 0; j < i; j++ {
		if queue[j].assignedBot == "" {
			p++
		}
	}
	return p
}

// assign serves the site's queue greedily (priority desc, then first come)
// from the free eligible robots and returns the queue with the robot each
// request would get ("" = none). Call inside the site's advisory lock.
func assign(ctx context.Context, tx pgx.Tx, site string) ([]queued, error) {
	rows, err := tx.Query(ctx, `SELECT r.robot_id, r.capabilities, s.battery_charge, s.x, s.y
		FROM robots r JOIN robot_state s USING (robot_id)
		WHERE r.site=$1 AND s.connection_state='ONLINE' AND s.fatal_error=''
		  AND NOT EXISTS (SELECT 1 FROM reservations v WHERE v.robot_id=r.robot_id)
		ORDER BY r.robot_id`, site)
	if err != nil {
		return nil, err
	}
	var free []freeRobot
	for rows.Next() {
		var f freeRobot
		if err := rows.Scan(&f.id, &f.caps, &f.battery, &f.x, &f.y); err != nil {
			rows.Close()
			return nil, err
		}
		free = append(free, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT mission_id, workflow_id, priority, required_capabilities, min_battery, x, y, enqueued_at
		FROM reservation_queue WHERE site=$1 ORDER BY priority DESC, enqueued_at, mission_id`, site)
	if err != nil {
		return nil, err
	}
	var queue []queued
	for rows.Next() {
		var q queued
		q.req.Site = site
		if err := rows.Scan(&q.req.MissionID, &q.req.WorkflowID, &q.req.Priority, &q.req.RequiredCapabilities, &q.req.MinBattery, &q.req.X, &q.req.Y, &q.enqueuedAt); err != nil {
			rows.Close()
			return nil, err
		}
		queue = append(queue, q)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range queue {
		if len(free) == 0 {
			break
		}
		q := &queue[i]
		best, bestD := -1, math.Inf(1)
		for j, f := range free {
			if f.battery < q.req.MinBattery || !hasAll(f.caps, q.req.RequiredCapabilities) {
				continue
			}
			if d := math.Hypot(f.x-q.req.X, f.y-q.req.Y); d < bestD {
				best, bestD = j, d
			}
		}
		if best >= 0 {
			q.assignedBot = free[best].id
			free = append(free[:best], free[best+1:]...)
		}
	}
	return queue, nil
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Release ends missionID's reservation of robotID; a no-op when that
// mission does not hold it (releasing twice is fine). It returns the
// workflow IDs of queued missions of the robot's site that can now get a
// robot, highest priority first, so the caller can wake them.
func (s *Store) Release(ctx context.Context, robotID, missionID string) ([]string, error) {
	var wake []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var site string
		if err := tx.QueryRow(ctx, `SELECT site FROM robots WHERE robot_id=$1`, robotID).Scan(&site); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('reserve:' || $1))`, site); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM reservations WHERE robot_id=$1 AND mission_id=$2`, robotID, missionID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		if err := audit(ctx, tx, "fleetflow", "robot.released", robotID, map[string]any{"missionId": missionID}); err != nil {
			return err
		}
		queue, err := assign(ctx, tx, site)
		if err != nil {
			return err
		}
		for _, q := range queue {
			if q.assignedBot != "" {
				wake = append(wake, q.req.WorkflowID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("release %s from %s: %w", robotID, missionID, err)
	}
	return wake, nil
}

// CancelQueued removes missionID from the reservation queue (idempotent).
func (s *Store) CancelQueued(ctx context.Context, missionID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM reservation_queue WHERE mission_id=$1`, missionID)
	return err
}

// ReservationOf returns the robot missionID holds, if any.
func (s *Store) ReservationOf(ctx context.Context, missionID string) (string, bool, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT robot_id FROM reservations WHERE mission_id=$1`, missionID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return id, err == nil, err
}

func audit(ctx context.Context, tx pgx.Tx, actor, kind, subject string, details any) error {
	raw, err := json.Marshal(details)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_log (actor, kind, subject, details) VALUES ($1,$2,$3,$4)`, actor, kind, subject, raw)
	return err
}

// Audit writes one row to the audit log; details is stored as JSON.
func (s *Store) Audit(ctx context.Context, actor, kind, subject string, details any) error {
	raw, err := json.Marshal(details)
	if err != nil {
		return fmt.Errorf("audit %s: %w", kind, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO audit_log (actor, kind, subject, details) VALUES ($1,$2,$3,$4)`, actor, kind, subject, raw)
	if err != nil {
		return fmt.Errorf("audit %s: %w", kind, err)
	}
	return nil
}

// AuditEntry is one audit row.
type AuditEntry struct {
	ID                   int64
	At                   time.Time
	Actor, Kind, Subject string
	Details              json.RawMessage
}

// AuditTrail returns the audit rows of subject, oldest first.
func (s *Store) AuditTrail(ctx context.Context, subject string) ([]AuditEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, at, actor, kind, subject, details FROM audit_log WHERE subject=$1 ORDER BY id`, subject)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Kind, &e.Subject, &e.Details)
		return e, err
	})
}

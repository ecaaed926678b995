package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetflow/fleetflow/schemas"
)

// Robot is a registered robot.
type Robot struct {
	// ID is "manufacturer/serialNumber"; RegisterRobots fills it in when empty.
	ID           string
	Manufacturer string
	// SerialNumber may hold only A-Z a-z 0-9 _ . : - (VDA 5050 topic level).
	SerialNumber string
	Model        string
	Site         string   // required; robots are reserved per site
	Capabilities []string // e.g. "lift", "tow"; a mission requires a subset
	// SoftwareVersion is the registered version ("" on re-registration keeps
	// the stored one); ListRobots shows the reported version when the robot
	// has reported one (RobotState.SoftwareVersion).
	SoftwareVersion string
	HomeNode        string // node ID of the robot's home (parking) position
	// X, Y (metres) and MapID are the home pose, used as the robot's
	// position until it reports a state.
	X, Y  float64
	MapID string
}

// RobotState is a robot's latest reported state (VDA 5050 state and
// connection topics).
type RobotState struct {
	RobotID string
	// ConnectionState is ONLINE, OFFLINE or CONNECTIONBROKEN.
	ConnectionState string
	// ConnectionAt is when the last applied connection update was received
	// (zero when none); written by UpsertConnections only.
	ConnectionAt       time.Time
	OrderID            string
	OrderUpdateID      int64
	LastNodeID         string
	LastNodeSequenceID int
	Driving, Paused    bool
	BatteryCharge      float64 // percent, 0–100
	X, Y               float64 // metres, map frame
	Theta              float64 // radians, map frame
	MapID              string
	// FatalError is "errorType: description" of a FATAL error the robot
	// reports, "" when none. A robot with a fatal error is never reserved.
	FatalError string
	// Errors and ActionStates are the state message's JSON arrays as
	// received; nil or null is stored as [].
	Errors, ActionStates json.RawMessage
	NodeStatesRemaining  int   // len(state.nodeStates)
	HeaderID             int64 // state message headerId
	// Timestamp is the state message's header timestamp; UpsertStates
	// orders a robot's states by it (zero is taken as now). Zero when no
	// state was received yet.
	Timestamp time.Time
	// UpdatedAt is when the row last changed (set by the store).
	UpdatedAt time.Time
	// SoftwareVersion is the version the robot last reported in
	// state.information (infoType "softwareVersion"); a state without one
	// keeps the stored value. "" until the robot reported one.
	SoftwareVersion string
	// ProtocolVersion is the VDA 5050 version the robot wrote in the header
	// of its last state ("" until one arrived).
	ProtocolVersion string
}

// ConnectionUpdate is one VDA 5050 connection message.
type ConnectionUpdate struct {
	RobotID string
	State   string // ONLINE, OFFLINE or CONNECTIONBROKEN
	// At orders the updates of one robot: the message's header timestamp,
	// or the time it was received (zero means now). An update older than
	// the last applied one is ignored, with one exception: CONNECTIONBROKEN
	// always replaces ONLINE, because a last will carries the timestamp of
	// the connect that registered it, which is earlier than the ONLINE
	// message the robot published right after connecting.
	At time.Time
}

// RobotView is a robot with its latest state and current reservation.
type RobotView struct {
	Robot
	State      RobotState
	ReservedBy string // mission ID holding the robot, "" when free
	// ServiceStatus is one of the ServiceStatuses (migration 00008).
	ServiceStatus string
}

// A robot's service status (robots.service_status): only robots
// InService are handed to missions.
const (
	InService     = "in_service"
	Draining      = "draining"
	InMaintenance = "in_maintenance"
	OutOfService  = "out_of_service"
)

// ServiceStatuses lists every service status.
var ServiceStatuses = []string{InService, Draining, InMaintenance, OutOfService}

// SetServiceStatus sets robotID's service status and writes an audit row
// (kind robot.service_status, actor, details from, to, reason) in the same
// transaction; it returns the status before. Called again by the
// workflow that made the last change (actor a workflow ID, e.g. a
// maintenance's), to the same status, it changes and audits nothing and
// returns the status before that change (idempotent for a retried
// activity); an operator's repeat is audited as any change. Errors: ErrNotFound for an unknown robot, an error
// naming the known ones for an unknown status.
func (s *Store) SetServiceStatus(ctx context.Context, robotID, status, actor, reason string) (string, error) {
	if !slices.Contains(ServiceStatuses, status) {
		return "", fmt.Errorf("service status %q: want one of %s", status, strings.Join(ServiceStatuses, ", "))
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return "", fmt.Errorf("set service status of %s: %w", robotID, err)
	}
	defer tx.Rollback(ctx)
	var before string
	err = tx.QueryRow(ctx, `SELECT service_status FROM robots WHERE robot_id = $1 FOR UPDATE`, robotID).Scan(&before)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("robot %s: %w", robotID, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("set service status of %s: %w", robotID, err)
	}
	if before == status {
		// Already so. When this very actor made it so last (its activity
		// run again after a crash: the first run committed, its answer was
		// lost), the status before is what that first change found, not
		// its own: a maintenance restoring "before" must not bring an
		// out-of-service robot back into service.
		var lastActor, from, to string
		err := tx.QueryRow(ctx, `
SELECT actor, coalesce(details->>'from', ''), coalesce(details->>'to', '') FROM audit_log
WHERE subject = $1 AND kind = 'robot.service_status' ORDER BY id DESC LIMIT 1`, robotID).Scan(&lastActor, &from, &to)
		if err == nil && lastActor == actor && schemas.IsOwnerWorkflowID(actor) && to == status && from != "" {
			return from, tx.Commit(ctx)
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return "", fmt.Errorf("set service status of %s: %w", robotID, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE robots SET service_status = $2 WHERE robot_id = $1`, robotID, status); err != nil {
		return "", fmt.Errorf("set service status of %s: %w", robotID, err)
	}
	details, _ := json.Marshal(map[string]any{"from": before, "to": status, "reason": reason})
	if _, err := tx.Exec(ctx, `INSERT INTO audit_log (actor, kind, subject, details) VALUES ($1, 'robot.service_status', $2, $3::jsonb)`, actor, robotID, string(details)); err != nil {
		return "", fmt.Errorf("audit service status of %s: %w", robotID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", fmt.Errorf("set service status of %s: %w", robotID, err)
	}
	return before, nil
}

func validSerial(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9',
			c == '_', c == '.', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// RegisterRobots inserts or updates robots (keyed by ID; the last entry wins
// when an ID repeats) in one transaction,
// and gives each robot without a state row one: OFFLINE, at its home node and
// home pose. Re-registering updates the robot's fields and leaves its state
// alone. It returns an error wrapping ErrInvalid when a robot lacks a
// manufacturer, a valid serial number or a site, or when ID does not match
// "manufacturer/serialNumber"; nothing is written then.
func (s *Store) RegisterRobots(ctx context.Context, robots []Robot) error {
	if len(robots) == 0 {
		return nil
	}
	robots, err := prepareRobots(robots)
	if err != nil {
		return fmt.Errorf("register robots: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return registerRobots(ctx, tx, robots) })
	if err != nil {
		return fmt.Errorf("register robots (%d): %w", len(robots), err)
	}
	return nil
}

// prepareRobots checks robots (see RegisterRobots), fills in their IDs and
// sorts a copy by ID (rows are locked in ID order, so that concurrent
// registrations cannot deadlock).
func prepareRobots(robots []Robot) ([]Robot, error) {
	robots = slices.Clone(robots)
	for i := range robots {
		r := &robots[i]
		if r.Manufacturer == "" || strings.ContainsAny(r.Manufacturer, "/+#") {
			return nil, fmt.Errorf("robot %d %q: %w: manufacturer must be non-empty without / + #", i, r.ID, ErrInvalid)
		}
		if !validSerial(r.SerialNumber) {
			return nil, fmt.Errorf("robot %d %q: %w: serial number %q must be non-empty A-Z a-z 0-9 _ . : -", i, r.ID, ErrInvalid, r.SerialNumber)
		}
		id := r.Manufacturer + "/" + r.SerialNumber
		if r.ID == "" {
			r.ID = id
		} else if r.ID != id {
			return nil, fmt.Errorf("robot %q: %w: ID must be %q", r.ID, ErrInvalid, id)
		}
		if r.Site == "" {
			return nil, fmt.Errorf("robot %q: %w: empty site", r.ID, ErrInvalid)
		}
	}
	slices.SortStableFunc(robots, func(a, b Robot) int { return strings.Compare(a.ID, b.ID) })
	return robots, nil
}

// registerRobots upserts prepared robots in tx (see RegisterRobots).
func registerRobots(ctx context.Context, tx pgx.Tx, robots []Robot) error {
	if len(robots) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, r := range robots {
		caps := r.Capabilities
		if caps == nil {
			caps = []string{}
		}
		b.Queue(`
INSERT INTO robots (robot_id, manufacturer, serial_number, model, site, capabilities, software_version,
    home_node, home_x, home_y, home_map_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (robot_id) DO UPDATE SET
    model = EXCLUDED.model,
    site = EXCLUDED.site,
    capabilities = EXCLUDED.capabilities,
    software_version = COALESCE(NULLIF(EXCLUDED.software_version, ''), robots.software_version),
    home_node = EXCLUDED.home_node,
    home_x = EXCLUDED.home_x,
    home_y = EXCLUDED.home_y,
    home_map_id = EXCLUDED.home_map_id,
    updated_at = now()`,
			r.ID, r.Manufacturer, r.SerialNumber, r.Model, r.Site, caps, r.SoftwareVersion,
			r.HomeNode, r.X, r.Y, r.MapID)
		b.Queue(`
INSERT INTO robot_state (robot_id, connection_state, last_node_id, x, y, map_id)
VALUES ($1, 'OFFLINE', $2, $3, $4, $5)
ON CONFLICT (robot_id) DO NOTHING`,
			r.ID, r.HomeNode, r.X, r.Y, r.MapID)
	}
	return tx.SendBatch(ctx, b).Close()
}

// upsertStatesSQL writes a batch of states in one statement. Per robot only
// the newest state of the batch is kept (DISTINCT ON), states of robots that
// are not registered are skipped (JOIN robots), and a state older than the
// stored one is ignored (the WHERE of DO UPDATE): by header timestamp, then
// headerId. The connection columns are never touched.
const upsertStatesSQL = `
INSERT INTO robot_state AS s (
    robot_id, order_id, order_update_id, last_node_id, last_node_sequence_id,
    driving, paused, battery_charge, x, y, theta, map_id, fatal_error,
    errors, action_states, node_states_remaining, state_header_id, state_timestamp, software_version, protocol_version, updated_at)
SELECT DISTINCT ON (u.robot_id COLLATE "C")
    u.robot_id, u.order_id, u.order_update_id, u.last_node_id, u.last_node_sequence_id,
    u.driving, u.paused, u.battery_charge, u.x, u.y, u.theta, u.map_id, u.fatal_error,
    u.errors::jsonb, u.action_states::jsonb, u.node_states_remaining, u.header_id, u.ts, u.software_version, u.protocol_version, now()
FROM unnest(
    $1::text[], $2::text[], $3::bigint[], $4::text[], $5::int[],
    $6::bool[], $7::bool[], $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::text[], $13::text[],
    $14::text[], $15::text[], $16::int[], $17::bigint[], $18::timestamptz[], $19::text[], $20::text[])
    AS u(robot_id, order_id, order_update_id, last_node_id, last_node_sequence_id,
         driving, paused, battery_charge, x, y, theta, map_id, fatal_error,
         errors, action_states, node_states_remaining, header_id, ts, software_version, protocol_version)
JOIN robots r ON r.robot_id = u.robot_id
ORDER BY u.robot_id COLLATE "C", u.ts DESC, u.header_id DESC
ON CONFLICT (robot_id) DO UPDATE SET
    order_id = EXCLUDED.order_id,
    order_update_id = EXCLUDED.order_update_id,
    last_node_id = EXCLUDED.last_node_id,
    last_node_sequence_id = EXCLUDED.last_node_sequence_id,
    driving = EXCLUDED.driving,
    paused = EXCLUDED.paused,
    battery_charge = EXCLUDED.battery_charge,
    x = EXCLUDED.x,
    y = EXCLUDED.y,
    theta = EXCLUDED.theta,
    map_id = EXCLUDED.map_id,
    fatal_error = EXCLUDED.fatal_error,
    errors = EXCLUDED.errors,
    action_states = EXCLUDED.action_states,
    node_states_remaining = EXCLUDED.node_states_remaining,
    state_header_id = EXCLUDED.state_header_id,
    state_timestamp = EXCLUDED.state_timestamp,
    software_version = CASE WHEN EXCLUDED.software_version <> '' THEN EXCLUDED.software_version ELSE s.software_version END,
    protocol_version = CASE WHEN EXCLUDED.protocol_version <> '' THEN EXCLUDED.protocol_version ELSE s.protocol_version END,
    updated_at = now()
WHERE s.state_timestamp IS NULL
   OR EXCLUDED.state_timestamp > s.state_timestamp
   OR (EXCLUDED.state_timestamp = s.state_timestamp AND EXCLUDED.state_header_id >= s.state_header_id)`

func jsonArray(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "[]", true
	}
	return string(raw), json.Valid(raw)
}

// UpsertStates stores a batch of robot states in one round trip (a single
// INSERT … ON CONFLICT over unnest'ed arrays). For each robot it keeps the
// newest state by Timestamp (then HeaderID): a state older than the stored one
// (an out-of-order message) is ignored, as are all but the newest state of a
// robot within the batch. States of unregistered robots are skipped. It never
// changes ConnectionState (see UpsertConnections). A zero Timestamp (a robot
// whose timestamp could not be parsed) counts as now, so one bad message
// never blocks a batch. It returns an error wrapping ErrInvalid, writing
// nothing, when a state has no RobotID or Errors/ActionStates that are not
// valid JSON (both are the caller's bugs, not the robot's).
func (s *Store) UpsertStates(ctx context.Context, states []RobotState) error {
	if len(states) == 0 {
		return nil
	}
	args, err := upsertStatesArgs(states)
	if err != nil {
		return fmt.Errorf("upsert states: %w", err)
	}
	if _, err := s.pool.Exec(ctx, upsertStatesSQL, args...); err != nil {
		return fmt.Errorf("upsert states (%d): %w", len(states), err)
	}
	return nil
}

// upsertStatesArgs turns states into the column arrays of upsertStatesSQL.
func upsertStatesArgs(states []RobotState) ([]any, error) {
	n := len(states)
	var (
		ids, orderIDs, lastNodes, maps, fatals, errs, actions = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		orderUpdates, headers                                 = make([]int64, n), make([]int64, n)
		seqs, remaining                                       = make([]int32, n), make([]int32, n)
		driving, paused                                       = make([]bool, n), make([]bool, n)
		battery, xs, ys, thetas                               = make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
		ts                                                    = make([]time.Time, n)
		versions, protocols                                   = make([]string, n), make([]string, n)
	)
	for i, st := range states {
		if st.RobotID == "" {
			return nil, fmt.Errorf("state %d: %w: empty robot ID", i, ErrInvalid)
		}
		var ok bool
		if errs[i], ok = jsonArray(st.Errors); !ok {
			return nil, fmt.Errorf("robot %s: %w: errors are not valid JSON", st.RobotID, ErrInvalid)
		}
		if actions[i], ok = jsonArray(st.ActionStates); !ok {
			return nil, fmt.Errorf("robot %s: %w: action states are not valid JSON", st.RobotID, ErrInvalid)
		}
		ids[i], orderIDs[i], lastNodes[i], maps[i], fatals[i] = st.RobotID, st.OrderID, st.LastNodeID, st.MapID, st.FatalError
		orderUpdates[i], headers[i] = st.OrderUpdateID, st.HeaderID
		seqs[i], remaining[i] = int32(st.LastNodeSequenceID), int32(st.NodeStatesRemaining)
		driving[i], paused[i] = st.Driving, st.Paused
		battery[i], xs[i], ys[i], thetas[i] = st.BatteryCharge, st.X, st.Y, st.Theta
		ts[i], versions[i], protocols[i] = st.Timestamp, st.SoftwareVersion, st.ProtocolVersion
		if ts[i].IsZero() {
			ts[i] = time.Now()
		}
	}
	return []any{ids, orderIDs, orderUpdates, lastNodes, seqs,
		driving, paused, battery, xs, ys, thetas, maps, fatals,
		errs, actions, remaining, headers, ts, versions, protocols}, nil
}

// UpsertConnections stores a batch of connection updates in one round trip.
// It changes only the connection state (and ConnectionAt, which never moves
// back) of each robot; an update older (by At) than the last applied one is
// ignored, except CONNECTIONBROKEN over ONLINE (see ConnectionUpdate.At), and
// within the batch the newest update of a robot wins. Updates of
// unregistered robots are skipped. It returns an error wrapping ErrInvalid,
// writing nothing, when an update has no RobotID or an unknown State.
func (s *Store) UpsertConnections(ctx context.Context, updates []ConnectionUpdate) error {
	n := len(updates)
	if n == 0 {
		return nil
	}
	ids, states, ats := make([]string, n), make([]string, n), make([]time.Time, n)
	for i, u := range updates {
		switch {
		case u.RobotID == "":
			return fmt.Errorf("upsert connections: update %d: %w: empty robot ID", i, ErrInvalid)
		case u.State != ConnectionOnline && u.State != ConnectionOffline && u.State != ConnectionConnectionBroken:
			return fmt.Errorf("upsert connections: robot %s: %w: connection state %q", u.RobotID, ErrInvalid, u.State)
		}
		ids[i], states[i], ats[i] = u.RobotID, u.State, u.At
		if u.At.IsZero() {
			ats[i] = time.Now()
		}
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO robot_state AS s (robot_id, connection_state, connection_at, updated_at)
SELECT DISTINCT ON (u.robot_id) u.robot_id, u.state, u.at, now()
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(robot_id, state, at)
JOIN robots r ON r.robot_id = u.robot_id
ORDER BY u.robot_id, u.at DESC
ON CONFLICT (robot_id) DO UPDATE SET
    connection_state = EXCLUDED.connection_state,
    connection_at = GREATEST(s.connection_at, EXCLUDED.connection_at),
    updated_at = now()
WHERE s.connection_at IS NULL
   OR EXCLUDED.connection_at >= s.connection_at
   OR (EXCLUDED.connection_state = 'CONNECTIONBROKEN' AND s.connection_state = 'ONLINE')`,
		ids, states, ats)
	if err != nil {
		return fmt.Errorf("upsert connections (%d): %w", n, err)
	}
	return nil
}

const stateColumns = `s.robot_id, s.connection_state, s.connection_at, s.order_id, s.order_update_id,
    s.last_node_id, s.last_node_sequence_id, s.driving, s.paused, s.battery_charge, s.x, s.y, s.theta,
    s.map_id, s.fatal_error, s.errors, s.action_states, s.node_states_remaining, s.state_header_id,
    s.state_timestamp, s.updated_at, s.software_version, s.protocol_version`

// stateScanTargets returns the Scan destinations of stateColumns and a
// function to call after Scan.
func stateScanTargets(st *RobotState) ([]any, func()) {
	var connAt, ts *time.Time
	var seq, remaining int32
	dst := []any{&st.RobotID, &st.ConnectionState, &connAt, &st.OrderID, &st.OrderUpdateID,
		&st.LastNodeID, &seq, &st.Driving, &st.Paused, &st.BatteryCharge, &st.X, &st.Y, &st.Theta,
		&st.MapID, &st.FatalError, &st.Errors, &st.ActionStates, &remaining, &st.HeaderID,
		&ts, &st.UpdatedAt, &st.SoftwareVersion, &st.ProtocolVersion}
	return dst, func() {
		if connAt != nil {
			st.ConnectionAt = connAt.UTC()
		}
		if ts != nil {
			st.Timestamp = ts.UTC()
		}
		st.UpdatedAt = st.UpdatedAt.UTC()
		st.LastNodeSequenceID, st.NodeStatesRemaining = int(seq), int(remaining)
	}
}

// RobotState returns the latest stored state of robotID, or an error wrapping
// ErrNotFound when the robot has no state row (it is not registered).
func (s *Store) RobotState(ctx context.Context, robotID string) (RobotState, error) {
	var st RobotState
	dst, done := stateScanTargets(&st)
	err := s.pool.QueryRow(ctx, `SELECT `+stateColumns+` FROM robot_state s WHERE s.robot_id = $1`, robotID).Scan(dst...)
	if errors.Is(err, pgx.ErrNoRows) {
		return RobotState{}, fmt.Errorf("robot state %s: %w", robotID, ErrNotFound)
	}
	if err != nil {
		return RobotState{}, fmt.Errorf("robot state %s: %w", robotID, err)
	}
	done()
	return st, nil
}

// ListRobots returns the robots of site ("" for every site) ordered by ID,
// each with its latest state and the mission reserving it (Robot's X, Y and
// MapID are the home pose; the current position is in State). It returns an
// empty slice when there are none.
func (s *Store) ListRobots(ctx context.Context, site string) ([]RobotView, error) {
	views, err := s.robotViews(ctx, `$1 = '' OR r.site = $1`, site)
	if err != nil {
		return nil, fmt.Errorf("list robots of site %q: %w", site, err)
	}
	return views, nil
}

// GetRobot returns one robot as ListRobots shows it, or an error wrapping
// ErrNotFound.
func (s *Store) GetRobot(ctx context.Context, robotID string) (RobotView, error) {
	views, err := s.robotViews(ctx, `r.robot_id = $1`, robotID)
	if err != nil {
		return RobotView{}, fmt.Errorf("robot %s: %w", robotID, err)
	}
	if len(views) == 0 {
		return RobotView{}, fmt.Errorf("robot %s: %w", robotID, ErrNotFound)
	}
	return views[0], nil
}

func (s *Store) robotViews(ctx context.Context, where string, arg string) ([]RobotView, error) {
	rows, err := s.pool.Query(ctx, `
SELECT r.robot_id, r.manufacturer, r.serial_number, r.model, r.site, r.capabilities,
    COALESCE(NULLIF(s.software_version, ''), r.software_version), r.home_node, r.home_x, r.home_y, r.home_map_id, COALESCE(v.mission_id, ''), r.service_status, `+stateColumns+`
FROM robots r
JOIN robot_state s ON s.robot_id = r.robot_id
LEFT JOIN reservations v ON v.robot_id = r.robot_id
WHERE `+where+`
ORDER BY r.robot_id`, arg)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (RobotView, error) {
		var v RobotView
		stDst, done := stateScanTargets(&v.State)
		dst := append([]any{&v.ID, &v.Manufacturer, &v.SerialNumber, &v.Model, &v.Site, &v.Capabilities,
			&v.SoftwareVersion, &v.HomeNode, &v.X, &v.Y, &v.MapID, &v.ReservedBy, &v.ServiceStatus}, stDst...)
		if err := row.Scan(dst...); err != nil {
			return v, err
		}
		done()
		return v, nil
	})
}

// UnreservedAtWork returns the robots reserved by nobody whose stored
// state is ONLINE and shows an order under way (something left to drive,
// driving, or an action neither FINISHED nor FAILED), ordered by ID: the
// robots a closed workflow may have released without stopping them. The
// Reaper judges each by its order's workflow. Database errors are wrapped.
func (s *Store) UnreservedAtWork(ctx context.Context) ([]RobotView, error) {
	views, err := s.robotViews(ctx, `$1 = '' AND v.mission_id IS NULL AND s.connection_state = 'ONLINE' AND s.order_id <> ''
  AND (s.node_states_remaining > 0 OR s.driving
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(s.action_states) a
                  WHERE a->>'actionStatus' NOT IN ('FINISHED', 'FAILED')))`, "")
	if err != nil {
		return nil, fmt.Errorf("unreserved robots at work: %w", err)
	}
	return views, nil
}

// StopUnreserved runs send (a cancelOrder's publish) holding site's
// reservation lock, and only while robotID is still reserved by nobody and
// its stored state still shows orderID under way (UnreservedAtWork's rule):
// no Reserve of the site can hand the robot out between the check and the
// publish, so the cancelOrder cannot reach the order of a next holder. It
// reports whether send ran; send's error is returned as it is, database
// errors wrapped.
func (s *Store) StopUnreserved(ctx context.Context, site, robotID, orderID string, send func() error) (bool, error) {
	sent := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, reserveLockClass, site); err != nil {
			return fmt.Errorf("lock site %s: %w", site, err)
		}
		var still bool
		if err := tx.QueryRow(ctx, `
SELECT EXISTS (SELECT 1 FROM robot_state s
  WHERE s.robot_id = $1 AND s.order_id = $2 AND s.connection_state = 'ONLINE'
    AND NOT EXISTS (SELECT 1 FROM reservations v WHERE v.robot_id = s.robot_id)
    AND (s.node_states_remaining > 0 OR s.driving
         OR EXISTS (SELECT 1 FROM jsonb_array_elements(s.action_states) a
                    WHERE a->>'actionStatus' NOT IN ('FINISHED', 'FAILED'))))`, robotID, orderID).Scan(&still); err != nil {
			return fmt.Errorf("check robot %s: %w", robotID, err)
		}
		if !still {
			return nil
		}
		sent = true
		return send()
	})
	return sent, err
}

// ActionsUnderway reports whether the stored state lists an action that is
// neither FINISHED nor FAILED (VDA 5050 §6.10.6: the robot is not done with
// its order, or runs an instant action). The registry's free-robot query
// applies the same rule.
func (st RobotState) ActionsUnderway() bool {
	var as []struct {
		ActionStatus string `json:"actionStatus"`
	}
	if json.Unmarshal(st.ActionStates, &as) != nil {
		return false
	}
	for _, a := range as {
		if a.ActionStatus != "FINISHED" && a.ActionStatus != "FAILED" {
			return true
		}
	}
	return false
}

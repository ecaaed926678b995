package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// stationLockClass is the first key of the transaction-level advisory lock
// pg_advisory_xact_lock(stationLockClass, hashtext(site)) that serializes
// the station reservations of one site ("ffst" in ASCII).
const stationLockClass int32 = 0x66667374

// Station is a station of the site map a request may get: its ID and the
// position of its node, metres.
type Station struct {
	ID   string
	X, Y float64
	// Node is the station's node in the site map: a station where another
	// robot of the site last reported standing (the lastNodeId of its
	// latest state; a registered robot that never sent one is nowhere yet)
	// is occupied, reserved or not (a cancelled charge, a parked robot),
	// and is not handed out. "" = not checked.
	Node string
}

// StationRequest asks for one station of Site (a charger) for Holder.
type StationRequest struct {
	Site    string
	Holder  string // the workflow ID; at most one station per holder
	RobotID string // the robot that will use it (informational, audited)
	// Stations are the site's stations of the wanted type, from the site map.
	Stations []Station
	// X, Y is where the robot stands: the nearest free station is chosen.
	X, Y float64
}

// StationGrant is the outcome of ReserveStation.
type StationGrant struct {
	StationID string // "" when Queued
	// Queued: every station is taken, or requests that came first wait;
	// ask again when woken (ReleaseStation) or after a while.
	Queued        bool
	QueuePosition int // 1 for the first in line, 0 when not queued
	// Occupied names the stations not reserved but stood on by another
	// robot ("charger-1 (robot acme/AMR-2 stands on it)"): why a queued
	// request waits although the registry shows a station free.
	Occupied []string
}

// ReserveStation gives req.Holder the nearest free station of req.Stations
// (not reserved, and no other robot of the site reports its Node as its
// lastNodeId), or queues the request. A robot that already stands on a
// free station gets it whoever waits (nobody else could use it). First come, first served: a request gets a station
// only when fewer requests of the site wait before it than stations are
// free. Calling it again is safe: a holder gets the station it holds back,
// and a queued holder keeps its place in line. One transaction, serialized
// per site by an advisory lock; the primary key (site, station_id) makes a
// double booking impossible. Audit rows (subject: the holder) are written
// for a grant (station.granted) and for joining the line (station.queued).
// Errors: a request without site, holder or stations wraps ErrInvalid;
// database errors are wrapped (nothing is written then).
func (s *Store) ReserveStation(ctx context.Context, req StationRequest) (StationGrant, error) {
	if req.Site == "" || req.Holder == "" || len(req.Stations) == 0 {
		return StationGrant{}, fmt.Errorf("reserve station for %q at %q: %w: site, holder and stations are required", req.Holder, req.Site, ErrInvalid)
	}
	var g StationGrant
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		g = StationGrant{}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, stationLockClass, req.Site); err != nil {
			return fmt.Errorf("lock site %s: %w", req.Site, err)
		}
		err := tx.QueryRow(ctx, `SELECT station_id FROM station_reservations WHERE holder = $1`, req.Holder).Scan(&g.StationID)
		if err == nil {
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT station_id FROM station_reservations WHERE site = $1`, req.Site)
		if err != nil {
			return err
		}
		takenIDs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		taken := map[string]bool{}
		for _, id := range takenIDs {
			taken[id] = true
		}
		// Stations a robot stands on: free in the registry, not on the
		// floor. Only the stations' nodes are looked at.
		var nodes []string
		for _, st := range req.Stations {
			if st.Node != "" {
				nodes = append(nodes, st.Node)
			}
		}
		rows, err = tx.Query(ctx, `
SELECT s.robot_id, s.last_node_id FROM robot_state s JOIN robots r ON r.robot_id = s.robot_id
WHERE r.site = $1 AND s.last_node_id = ANY($2) AND s.state_timestamp IS NOT NULL`, req.Site, nodes)
		if err != nil {
			return err
		}
		type standing struct{ Robot, Node string }
		on, err := pgx.CollectRows(rows, pgx.RowToStructByPos[standing])
		if err != nil {
			return err
		}
		occupied := map[string]string{} // node → the other robot on it
		ownNode := ""
		for _, o := range on {
			if o.Robot == req.RobotID {
				ownNode = o.Node
			} else {
				occupied[o.Node] = o.Robot
			}
		}
		var ahead int
		err = tx.QueryRow(ctx, `
SELECT count(*) FROM station_queue q
WHERE q.site = $1 AND q.holder <> $2
  AND (q.enqueued_at, q.holder) < (SELECT coalesce((SELECT enqueued_at FROM station_queue WHERE holder = $2), now()), $2)`,
			req.Site, req.Holder).Scan(&ahead)
		if err != nil {
			return err
		}
		best, bestD, free, own := "", math.Inf(1), 0, ""
		for _, st := range req.Stations {
			if taken[st.ID] {
				continue
			}
			if by := occupied[st.Node]; st.Node != "" && by != "" {
				g.Occupied = append(g.Occupied, st.ID+" (robot "+by+" stands on it)")
				continue
			}
			if st.Node != "" && st.Node == ownNode {
				own = st.ID
			}
			free++
			if d := math.Hypot(st.X-req.X, st.Y-req.Y); d < bestD {
				best, bestD = st.ID, d
			}
		}
		if own != "" {
			// The robot already stands on a free station: nobody in line
			// could use it while it is there, so it goes first.
			best, ahead = own, 0
		}
		if best != "" && ahead < free {
			if _, err := tx.Exec(ctx, `INSERT INTO station_reservations (site, station_id, holder, robot_id) VALUES ($1, $2, $3, $4)`,
				req.Site, best, req.Holder, req.RobotID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM station_queue WHERE holder = $1`, req.Holder); err != nil {
				return err
			}
			g.StationID = best
			return audit(ctx, tx, req.Holder, "station.granted", req.Holder, map[string]any{"site": req.Site, "stationId": best, "robotId": req.RobotID})
		}
		tag, err := tx.Exec(ctx, `INSERT INTO station_queue (holder, site, robot_id) VALUES ($1, $2, $3) ON CONFLICT (holder) DO NOTHING`,
			req.Holder, req.Site, req.RobotID)
		if err != nil {
			return err
		}
		g.Queued, g.QueuePosition = true, ahead+1
		if tag.RowsAffected() == 1 {
			return audit(ctx, tx, req.Holder, "station.queued", req.Holder, map[string]any{"site": req.Site, "robotId": req.RobotID, "position": g.QueuePosition})
		}
		return nil
	})
	if err != nil {
		return StationGrant{}, fmt.Errorf("reserve station for %s: %w", req.Holder, err)
	}
	return g, nil
}

// ReleaseStation ends holder's station reservation and its place in line
// (each a no-op when absent) and returns the holders of site now first in
// line, as many as stations were freed, so the caller can wake them. An
// audit row (station.released) is written when a station was freed.
// Database errors are wrapped.
func (s *Store) ReleaseStation(ctx context.Context, site, holder string) ([]string, error) {
	var wake []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		wake = nil
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, stationLockClass, site); err != nil {
			return fmt.Errorf("lock site %s: %w", site, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM station_queue WHERE holder = $1`, holder); err != nil {
			return err
		}
		var station, robot string
		err := tx.QueryRow(ctx, `DELETE FROM station_reservations WHERE holder = $1 RETURNING station_id, robot_id`, holder).Scan(&station, &robot)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := audit(ctx, tx, holder, "station.released", holder, map[string]any{"site": site, "stationId": station, "robotId": robot}); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT holder FROM station_queue WHERE site = $1 ORDER BY enqueued_at, holder LIMIT 1`, site)
		if err != nil {
			return err
		}
		wake, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("release station of %s: %w", holder, err)
	}
	return wake, nil
}

// StationHold is a station reservation as listed by StationHolds.
type StationHold struct {
	Site, StationID, Holder, RobotID string
	Since                            time.Time
}

// StationHolds lists the station reservations of site ("" = every site),
// by site and station.
func (s *Store) StationHolds(ctx context.Context, site string) ([]StationHold, error) {
	rows, err := s.pool.Query(ctx, `
SELECT site, station_id, holder, robot_id, reserved_at FROM station_reservations
WHERE $1 = '' OR site = $1 ORDER BY site, station_id`, site)
	if err != nil {
		return nil, fmt.Errorf("station holds: %w", err)
	}
	holds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StationHold, error) {
		var h StationHold
		err := r.Scan(&h.Site, &h.StationID, &h.Holder, &h.RobotID, &h.Since)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("station holds: %w", err)
	}
	return holds, nil
}

// ChargingRobot is a robot a Charge workflow holds, as seen by an urgent
// mission that may take it off the charger.
type ChargingRobot struct {
	RobotID, WorkflowID string
	Battery             float64
}

// ChargingRobots lists the robots of site that Charge workflows hold
// (reservation workflow IDs starting with chargePrefix), that are ONLINE
// without a FATAL error, have every capability in caps and at least
// minBattery percent, highest battery first. Database errors are wrapped.
func (s *Store) ChargingRobots(ctx context.Context, site, chargePrefix string, caps []string, minBattery float64) ([]ChargingRobot, error) {
	if caps == nil {
		caps = []string{}
	}
	rows, err := s.pool.Query(ctx, `
SELECT r.robot_id, v.workflow_id, s.battery_charge
FROM reservations v
JOIN robots r ON r.robot_id = v.robot_id
JOIN robot_state s ON s.robot_id = r.robot_id
WHERE r.site = $1 AND starts_with(v.workflow_id, $2)
  AND s.connection_state = 'ONLINE' AND s.fatal_error = ''
  AND r.service_status = 'in_service'
  AND r.capabilities @> $3::text[]
  AND s.battery_charge >= $4
ORDER BY s.battery_charge DESC, r.robot_id`, site, chargePrefix, caps, minBattery)
	if err != nil {
		return nil, fmt.Errorf("charging robots of %s: %w", site, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChargingRobot, error) {
		var c ChargingRobot
		err := r.Scan(&c.RobotID, &c.WorkflowID, &c.Battery)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("charging robots of %s: %w", site, err)
	}
	return out, nil
}

// ClaimInterrupt records (audit row charge.interrupt_requested, subject
// missionID) that missionID takes the robot of the Charge workflow
// workflowID off its charger, and reports whether this is the mission's
// first such claim: each urgent mission interrupts at most one charge, so
// a mission that misses the robot it freed (another took it first) does
// not empty the chargers one by one. Database errors are wrapped.
func (s *Store) ClaimInterrupt(ctx context.Context, missionID, workflowID, robotID string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
INSERT INTO audit_log (actor, kind, subject, details, once_key)
VALUES ($1, 'charge.interrupt_requested', $1, jsonb_build_object('chargeWorkflowId', $2::text, 'robotId', $3::text), 'interrupt-charging:' || $1)
ON CONFLICT (once_key) WHERE once_key IS NOT NULL DO NOTHING`, missionID, workflowID, robotID)
	if err != nil {
		return false, fmt.Errorf("claim interrupt for %s: %w", missionID, err)
	}
	return tag.RowsAffected() == 1, nil
}

package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// applyLockKey is the transaction-level advisory lock one ApplySite holds
// ("ffapply!" in ASCII).
const applyLockKey int64 = 0x6666617070_6c7921

// ApplyResult is what ApplySite changed (or, dry, would change), robot IDs
// sorted.
type ApplyResult struct {
	Site      string   `json:"site"`
	Added     []string `json:"added"`
	Updated   []string `json:"updated"`
	Unchanged []string `json:"unchanged"`
	Retired   []string `json:"retired"`
	// Kept: robots no longer in the file that were not retired because a
	// workflow holds them (a running mission is never pulled from under
	// it); apply again once they are free.
	Kept []string `json:"kept"`
}

// ApplySite makes the registry's robots of site exactly robots: robots not
// registered are added, changed ones updated (as RegisterRobots; their
// state is left alone), and robots of the site missing from robots are
// retired (deleted with their state, condition counters and deviations;
// the audit log keeps their history), except a robot a workflow holds or
// waits for by name (a maintenance, an OTA update), which is kept and
// listed in Kept. Applies are serialized across sites. It runs in one transaction holding the
// site's reservation lock, so no robot is granted to a mission while it
// is retired. With dry, nothing is written. An audit row (kind
// fleet.applied, subject the site, actor) lists the changes. Errors: a
// robot of another site, or one RegisterRobots would refuse, wraps
// ErrInvalid and nothing is written; database errors are wrapped.
func (s *Store) ApplySite(ctx context.Context, site, actor string, robots []Robot, dry bool) (ApplyResult, error) {
	res := ApplyResult{Site: site}
	if site == "" {
		return res, fmt.Errorf("apply site: %w: empty site", ErrInvalid)
	}
	robots, err := prepareRobots(robots)
	if err != nil {
		return res, fmt.Errorf("apply site %s: %w", site, err)
	}
	want := map[string]Robot{}
	for _, r := range robots {
		if r.Site != site {
			return res, fmt.Errorf("apply site %s: robot %s: %w: its site is %q", site, r.ID, ErrInvalid, r.Site)
		}
		if _, dup := want[r.ID]; dup {
			return res, fmt.Errorf("apply site %s: robot %s: %w: listed twice", site, r.ID, ErrInvalid)
		}
		want[r.ID] = r
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res = ApplyResult{Site: site}
		// One apply at a time, whatever the site (two sites' files naming
		// the same new robot must not both take it), then the site's
		// reservation lock (no robot is granted while it is retired).
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, applyLockKey); err != nil {
			return fmt.Errorf("lock fleet apply: %w", err)
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, reserveLockClass, site); err != nil {
			return fmt.Errorf("lock site %s: %w", site, err)
		}
		rows, err := tx.Query(ctx, `
SELECT r.robot_id, r.model, r.capabilities, r.software_version, r.home_node, r.home_x, r.home_y, r.home_map_id,
       coalesce(v.mission_id, (SELECT q.mission_id FROM reservation_queue q WHERE q.robot_id = r.robot_id ORDER BY q.enqueued_at LIMIT 1), '')
FROM robots r LEFT JOIN reservations v ON v.robot_id = r.robot_id
WHERE r.site = $1 ORDER BY r.robot_id`, site)
		if err != nil {
			return err
		}
		type have struct {
			r        Robot
			reserved string
		}
		existing := map[string]have{}
		for rows.Next() {
			var h have
			if err := rows.Scan(&h.r.ID, &h.r.Model, &h.r.Capabilities, &h.r.SoftwareVersion, &h.r.HomeNode, &h.r.X, &h.r.Y, &h.r.MapID, &h.reserved); err != nil {
				rows.Close()
				return err
			}
			existing[h.r.ID] = h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// A robot registered at another site is moved only by naming it
		// in that site's file: refuse, rather than steal it silently.
		var elsewhere []string
		for id := range want {
			if _, ok := existing[id]; ok {
				continue
			}
			var other string
			err := tx.QueryRow(ctx, `SELECT site FROM robots WHERE robot_id = $1`, id).Scan(&other)
			if err == nil {
				elsewhere = append(elsewhere, id+" (site "+other+")")
			} else if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		if len(elsewhere) > 0 {
			slices.Sort(elsewhere)
			return fmt.Errorf("%w: registered at another site: %s; retire them there first", ErrInvalid, strings.Join(elsewhere, ", "))
		}
		var upsert []Robot
		for _, r := range robots {
			id := r.ID
			h, ok := existing[id]
			switch {
			case !ok:
				res.Added = append(res.Added, id)
				upsert = append(upsert, r)
			case sameRobot(h.r, r):
				res.Unchanged = append(res.Unchanged, id)
			default:
				res.Updated = append(res.Updated, id)
				upsert = append(upsert, r)
			}
		}
		for id, h := range existing {
			if _, ok := want[id]; ok {
				continue
			}
			if h.reserved != "" {
				res.Kept = append(res.Kept, id+" (held or awaited by "+h.reserved+")")
				continue
			}
			res.Retired = append(res.Retired, id)
		}
		for _, l := range [][]string{res.Added, res.Updated, res.Unchanged, res.Retired, res.Kept} {
			slices.Sort(l)
		}
		if dry {
			return nil
		}
		if err := registerRobots(ctx, tx, upsert); err != nil {
			return err
		}
		if len(res.Retired) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM robots WHERE robot_id = ANY($1)`, res.Retired); err != nil {
				return err
			}
		}
		return audit(ctx, tx, actor, "fleet.applied", site, res)
	})
	if err != nil {
		return ApplyResult{Site: site}, fmt.Errorf("apply site %s: %w", site, err)
	}
	return res, nil
}

// sameRobot reports whether registering want would change nothing of have.
func sameRobot(have, want Robot) bool {
	caps := want.Capabilities
	if caps == nil {
		caps = []string{}
	}
	hc := have.Capabilities
	if hc == nil {
		hc = []string{}
	}
	return have.Model == want.Model && slices.Equal(hc, caps) && have.HomeNode == want.HomeNode &&
		have.X == want.X && have.Y == want.Y && have.MapID == want.MapID &&
		(want.SoftwareVersion == "" || want.SoftwareVersion == have.SoftwareVersion)
}

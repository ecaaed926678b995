package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DeviationCount is how often one robot's messages deviated from its VDA
// 5050 edition's schema in one way (vda5050.Deviation kinds, plus
// "rejected" for messages that could not be used at all), with the latest
// occurrence.
type DeviationCount struct {
	RobotID    string
	Kind       string
	Count      int64
	LastPath   string // JSON pointer into the message
	LastDetail string
	LastAt     time.Time
}

// AddDeviations adds a batch of counts in one round trip: Count is added to
// the stored count of (RobotID, Kind), the latest path, detail and time
// replace the stored ones. Counts of unregistered robots are skipped. NUL
// bytes, which PostgreSQL text cannot hold, are dropped from paths and
// details (they come from robots).
func (s *Store) AddDeviations(ctx context.Context, counts []DeviationCount) error {
	if len(counts) == 0 {
		return nil
	}
	n := len(counts)
	ids, kinds, paths, details := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	nums, ats := make([]int64, n), make([]time.Time, n)
	for i, c := range counts {
		if c.RobotID == "" || c.Kind == "" || c.Count <= 0 {
			return fmt.Errorf("add deviations: count %d: %w: robot, kind and a positive count are required", i, ErrInvalid)
		}
		ids[i], kinds[i], nums[i] = c.RobotID, c.Kind, c.Count
		paths[i], details[i] = stripNUL(c.LastPath), stripNUL(c.LastDetail)
		ats[i] = c.LastAt
		if ats[i].IsZero() {
			ats[i] = time.Now()
		}
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO robot_deviations AS d (robot_id, kind, count, last_path, last_detail, last_at)
SELECT u.robot_id, u.kind, sum(u.count), (array_agg(u.path ORDER BY u.at DESC))[1], (array_agg(u.detail ORDER BY u.at DESC))[1], max(u.at)
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::timestamptz[]) AS u(robot_id, kind, count, path, detail, at)
JOIN robots r ON r.robot_id = u.robot_id
GROUP BY u.robot_id, u.kind
ON CONFLICT (robot_id, kind) DO UPDATE SET
    count = d.count + EXCLUDED.count,
    last_path = EXCLUDED.last_path,
    last_detail = EXCLUDED.last_detail,
    last_at = GREATEST(d.last_at, EXCLUDED.last_at)`,
		ids, kinds, nums, paths, details, ats)
	if err != nil {
		return fmt.Errorf("add deviations (%d): %w", n, err)
	}
	return nil
}

// RobotDeviations returns robotID's deviation counts, by kind.
func (s *Store) RobotDeviations(ctx context.Context, robotID string) ([]DeviationCount, error) {
	rows, err := s.pool.Query(ctx, `
SELECT robot_id, kind, count, last_path, last_detail, last_at FROM robot_deviations WHERE robot_id = $1 ORDER BY kind`, robotID)
	if err != nil {
		return nil, fmt.Errorf("deviations of %s: %w", robotID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeviationCount, error) {
		var d DeviationCount
		err := r.Scan(&d.RobotID, &d.Kind, &d.Count, &d.LastPath, &d.LastDetail, &d.LastAt)
		d.LastAt = d.LastAt.UTC()
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("deviations of %s: %w", robotID, err)
	}
	return out, nil
}

// stripNUL removes NUL bytes, which PostgreSQL text columns refuse.
func stripNUL(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			b := make([]byte, 0, len(s))
			for j := 0; j < len(s); j++ {
				if s[j] != 0 {
					b = append(b, s[j])
				}
			}
			return string(b)
		}
	}
	return s
}

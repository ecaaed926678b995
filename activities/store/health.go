package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// HealthDelta is what the bridge counted of one robot since its last flush
// (migration 00010).
type HealthDelta struct {
	RobotID string
	// BatteryHealth is the latest reported state of health, percent; nil
	// when none was reported (the stored value is kept).
	BatteryHealth  *float64
	NewErrors      int64   // errors that appeared
	DrivingSeconds float64 // time reported driving
}

// AddHealth adds the deltas to each robot's counters (one statement). A
// robot unknown to the registry is skipped. Database errors are wrapped.
func (s *Store) AddHealth(ctx context.Context, deltas []HealthDelta) error {
	if len(deltas) == 0 {
		return nil
	}
	ids := make([]string, len(deltas))
	health := make([]*float64, len(deltas))
	errs := make([]int64, len(deltas))
	secs := make([]float64, len(deltas))
	for i, d := range deltas {
		ids[i], health[i], errs[i], secs[i] = d.RobotID, d.BatteryHealth, d.NewErrors, d.DrivingSeconds
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO robot_health AS h (robot_id, battery_health, errors_seen, driving_seconds)
SELECT d.robot_id, d.battery_health, d.errors_seen, d.driving_seconds
FROM unnest($1::text[], $2::float8[], $3::int8[], $4::float8[]) AS d(robot_id, battery_health, errors_seen, driving_seconds)
JOIN robots r ON r.robot_id = d.robot_id
ORDER BY d.robot_id COLLATE "C" -- one lock order for every writer of these rows
ON CONFLICT (robot_id) DO UPDATE SET
    battery_health  = coalesce(EXCLUDED.battery_health, h.battery_health),
    errors_seen     = h.errors_seen + EXCLUDED.errors_seen,
    driving_seconds = h.driving_seconds + EXCLUDED.driving_seconds,
    updated_at      = now()`, ids, health, errs, secs)
	if err != nil {
		return fmt.Errorf("add robot health: %w", err)
	}
	return nil
}

// Health is a robot's condition counters.
type Health struct {
	RobotID        string
	Site           string
	BatteryHealth  *float64 // percent; nil = never reported
	ErrorsSeen     int64
	DrivingSeconds float64
	Epoch          int
	Since          time.Time
	// healthAtService is BatteryHealth when last serviced: the battery
	// health trigger fires again only when it falls below that.
	healthAtService *float64
}

// RobotHealth returns robotID's counters (zero counters, epoch 0, when the
// bridge has counted nothing yet). ErrNotFound for an unknown robot.
func (s *Store) RobotHealth(ctx context.Context, robotID string) (Health, error) {
	h := Health{RobotID: robotID}
	err := s.pool.QueryRow(ctx, `
SELECT r.site, h.battery_health, coalesce(h.errors_seen, 0), coalesce(h.driving_seconds, 0), coalesce(h.epoch, 0), coalesce(h.since, r.registered_at)
FROM robots r LEFT JOIN robot_health h ON h.robot_id = r.robot_id
WHERE r.robot_id = $1`, robotID).Scan(&h.Site, &h.BatteryHealth, &h.ErrorsSeen, &h.DrivingSeconds, &h.Epoch, &h.Since)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, fmt.Errorf("robot health of %s: %w", robotID, ErrNotFound)
	}
	if err != nil {
		return h, fmt.Errorf("robot health of %s: %w", robotID, err)
	}
	return h, nil
}

// HealthThresholds are the condition-based maintenance triggers (config
// maintenance.triggers); a zero field is not checked.
type HealthThresholds struct {
	BatteryHealthBelow float64 // percent
	Errors             int64   // errors seen in the epoch
	DrivingHours       float64 // hours driven in the epoch
}

// HealthMargin is how many percentage points the battery health must lose
// below the value a technician accepted before it triggers again (a
// reading that wobbles by a point must not call them back).
const HealthMargin = 5

// MarkTriggered records that epoch's maintenance of robotID was started:
// HealthDue does not list the robot again until its next epoch. Database
// errors are wrapped.
func (s *Store) MarkTriggered(ctx context.Context, robotID string, epoch int) error {
	if _, err := s.pool.Exec(ctx, `UPDATE robot_health SET triggered_epoch = greatest(triggered_epoch, $2) WHERE robot_id = $1`, robotID, epoch); err != nil {
		return fmt.Errorf("mark %s triggered: %w", robotID, err)
	}
	return nil
}

// HealthDue lists the robots in service whose counters passed a
// threshold in an epoch not yet triggered (MarkTriggered), each with the
// reasons, by robot ID. Battery health counts again only HealthMargin
// points below the value it had when the robot was last serviced (a
// technician who returned a robot with a worn battery is not called again
// until it wears further). Database errors are
// wrapped.
func (s *Store) HealthDue(ctx context.Context, t HealthThresholds) ([]Health, [][]string, error) {
	if t.BatteryHealthBelow <= 0 && t.Errors <= 0 && t.DrivingHours <= 0 {
		return nil, nil, nil
	}
	rows, err := s.pool.Query(ctx, `
SELECT h.robot_id, r.site, h.battery_health, h.health_at_service, h.errors_seen, h.driving_seconds, h.epoch, h.since
FROM robot_health h JOIN robots r ON r.robot_id = h.robot_id
WHERE r.service_status = 'in_service'
  AND h.triggered_epoch < h.epoch
  AND (($1 > 0 AND h.battery_health < $1 AND (h.health_at_service IS NULL OR h.battery_health <= h.health_at_service - $4)) OR ($2 > 0 AND h.errors_seen >= $2) OR ($3 > 0 AND h.driving_seconds >= $3 * 3600))
ORDER BY h.robot_id`, t.BatteryHealthBelow, t.Errors, t.DrivingHours, HealthMargin)
	if err != nil {
		return nil, nil, fmt.Errorf("robots due for maintenance: %w", err)
	}
	due, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Health, error) {
		var h Health
		err := r.Scan(&h.RobotID, &h.Site, &h.BatteryHealth, &h.healthAtService, &h.ErrorsSeen, &h.DrivingSeconds, &h.Epoch, &h.Since)
		return h, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("robots due for maintenance: %w", err)
	}
	reasons := make([][]string, len(due))
	for i, h := range due {
		if t.BatteryHealthBelow > 0 && h.BatteryHealth != nil && *h.BatteryHealth < t.BatteryHealthBelow && (h.healthAtService == nil || *h.BatteryHealth <= *h.healthAtService-HealthMargin) {
			reasons[i] = append(reasons[i], fmt.Sprintf("battery health %.0f %% below %.0f %%", *h.BatteryHealth, t.BatteryHealthBelow))
		}
		if t.Errors > 0 && h.ErrorsSeen >= t.Errors {
			reasons[i] = append(reasons[i], fmt.Sprintf("%d errors since %s (threshold %d)", h.ErrorsSeen, h.Since.UTC().Format(time.DateOnly), t.Errors))
		}
		if t.DrivingHours > 0 && h.DrivingSeconds >= t.DrivingHours*3600 {
			reasons[i] = append(reasons[i], fmt.Sprintf("%.1f h driven since %s (threshold %.0f h)", h.DrivingSeconds/3600, h.Since.UTC().Format(time.DateOnly), t.DrivingHours))
		}
	}
	return due, reasons, nil
}

// resetHealth starts a new epoch for robotID in tx: counters to zero. The
// battery health stays (a reading, not a count) and is remembered as what
// the technician accepted: its trigger fires again only below it.
func resetHealth(ctx context.Context, tx pgx.Tx, robotID string) error {
	_, err := tx.Exec(ctx, `
INSERT INTO robot_health (robot_id, epoch) VALUES ($1, 1)
ON CONFLICT (robot_id) DO UPDATE SET errors_seen = 0, driving_seconds = 0, epoch = robot_health.epoch + 1, since = now(), updated_at = now(),
    health_at_service = robot_health.battery_health`, robotID)
	return err
}

// MarkServiced records that robotID was serviced (a maintenance signed it
// off as passed): its condition counters start a new epoch, and an audit
// row (kind robot.serviced, the epoch's counters) is written in the same
// transaction. ErrNotFound for an unknown robot; database errors wrapped.
func (s *Store) MarkServiced(ctx context.Context, robotID, actor, reason string) error {
	h, err := s.RobotHealth(ctx, robotID)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := resetHealth(ctx, tx, robotID); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "robot.serviced", robotID, map[string]any{
			"reason": reason, "epoch": h.Epoch, "errorsSeen": h.ErrorsSeen, "drivingSeconds": h.DrivingSeconds, "batteryHealth": h.BatteryHealth,
		})
	})
	if err != nil {
		return fmt.Errorf("mark %s serviced: %w", robotID, err)
	}
	return nil
}

// Holding is one reservation a robot was granted: to whom and when.
type Holding struct {
	Holder string    `json:"holder"` // mission ID, or a Maintenance/Charge/RobotUpdate workflow ID
	At     time.Time `json:"at"`
}

// LastHolders returns the last n reservations robotID was granted, newest
// first (from the audit log; a repeated grant to one holder counts once).
// Database errors are wrapped.
func (s *Store) LastHolders(ctx context.Context, robotID string, n int) ([]Holding, error) {
	rows, err := s.pool.Query(ctx, `
SELECT subject, at FROM audit_log
WHERE kind = 'reservation.granted' AND details->>'robotId' = $1 AND NOT coalesce((details->>'again')::bool, false)
ORDER BY id DESC LIMIT $2`, robotID, n)
	if err != nil {
		return nil, fmt.Errorf("last holders of %s: %w", robotID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Holding, error) {
		var h Holding
		err := r.Scan(&h.Holder, &h.At)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("last holders of %s: %w", robotID, err)
	}
	return out, nil
}

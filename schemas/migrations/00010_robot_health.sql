-- What condition-based maintenance is decided on: per robot, counted by
-- the bridge from the robot's own state messages since its last service.
-- A maintenance that returns the robot to service starts a new epoch (the
-- counters start again from zero); a maintenance triggered by the counters
-- is recorded with its epoch (triggered_epoch), so each epoch triggers at
-- most one, however long ago.

-- +goose Up
CREATE TABLE robot_health (
    robot_id        text PRIMARY KEY REFERENCES robots (robot_id) ON DELETE CASCADE,
    battery_health  double precision,                   -- percent, the latest batteryState.batteryHealth; NULL = never reported
    health_at_service double precision,                 -- battery_health when last serviced: the trigger fires again only below it
    errors_seen     bigint NOT NULL DEFAULT 0,          -- errors (WARNING or FATAL) that appeared in its states
    driving_seconds double precision NOT NULL DEFAULT 0, -- time it reported driving
    epoch           int NOT NULL DEFAULT 0,             -- services so far
    triggered_epoch int NOT NULL DEFAULT -1,            -- the last epoch a maintenance was triggered for: one per epoch
    since           timestamptz NOT NULL DEFAULT now(), -- start of the epoch
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- fleet show lists a robot's last holders (missions, maintenances,
-- charges) from the reservation.granted audit rows.
CREATE INDEX audit_log_granted_robot_idx ON audit_log ((details->>'robotId'), id) WHERE kind = 'reservation.granted';

-- +goose Down
DROP INDEX audit_log_granted_robot_idx;
DROP TABLE robot_health;

-- A robot's service status: whether missions may take it. VDA 5050 has no
-- such notion; it is the fleet's. A Maintenance workflow drains a robot
-- (missions no longer get it, the one it runs finishes), holds it in
-- maintenance, and returns it to service or takes it out of service; an
-- operator can set it (starter fleet set-status). The allocator hands out
-- only robots in service, except to a request for that very robot
-- (maintenance, OTA).

-- +goose Up
ALTER TABLE robots ADD COLUMN service_status text NOT NULL DEFAULT 'in_service'
    CHECK (service_status IN ('in_service', 'draining', 'in_maintenance', 'out_of_service'));

-- +goose Down
ALTER TABLE robots DROP COLUMN service_status;

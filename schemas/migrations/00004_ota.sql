-- OTA: the software version each robot reports, and reservations of one
-- particular robot (a RobotUpdate waits for its robot, not for any robot).

-- +goose Up
ALTER TABLE robot_state ADD COLUMN software_version text NOT NULL DEFAULT ''; -- as reported in state.information, '' until reported
ALTER TABLE reservation_queue ADD COLUMN robot_id text NOT NULL DEFAULT '';   -- '' = any eligible robot of the site

-- +goose Down
ALTER TABLE reservation_queue DROP COLUMN robot_id;
ALTER TABLE robot_state DROP COLUMN software_version;

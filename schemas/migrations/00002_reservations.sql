-- Reservations of robots by missions, and the missions waiting for a robot.

-- +goose Up
CREATE TABLE reservations (
    robot_id    text PRIMARY KEY REFERENCES robots (robot_id) ON DELETE CASCADE, -- at most one reservation per robot
    mission_id  text NOT NULL UNIQUE,                                            -- at most one robot per mission
    workflow_id text NOT NULL,
    priority    int NOT NULL DEFAULT 0,
    reserved_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reservation_queue (
    mission_id            text PRIMARY KEY,
    workflow_id           text NOT NULL,
    site                  text NOT NULL,
    priority              int NOT NULL DEFAULT 0,           -- higher first
    required_capabilities text[] NOT NULL DEFAULT '{}',
    min_battery           double precision NOT NULL DEFAULT 0, -- percent
    first_node            text NOT NULL DEFAULT '',
    x                     double precision NOT NULL DEFAULT 0, -- metres, position of the first node
    y                     double precision NOT NULL DEFAULT 0,
    enqueued_at           timestamptz NOT NULL DEFAULT clock_timestamp() -- FIFO within a priority
);
CREATE INDEX reservation_queue_site_order_idx
    ON reservation_queue (site, priority DESC, enqueued_at, mission_id);

-- +goose Down
DROP TABLE reservation_queue;
DROP TABLE reservations;

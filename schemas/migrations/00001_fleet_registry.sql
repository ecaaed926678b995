-- +goose Up
CREATE TABLE robots (
    robot_id         text PRIMARY KEY,            -- manufacturer/serialNumber
    manufacturer     text NOT NULL,
    serial_number    text NOT NULL,
    model            text NOT NULL DEFAULT '',
    site             text NOT NULL,
    capabilities     text[] NOT NULL DEFAULT '{}',
    software_version text NOT NULL DEFAULT '',
    home_node        text NOT NULL DEFAULT '',
    registered_at    timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (manufacturer, serial_number)
);
CREATE INDEX robots_site ON robots (site);

-- Latest state of each robot, written by the bridge in batches.
CREATE TABLE robot_state (
    robot_id              text PRIMARY KEY REFERENCES robots (robot_id) ON DELETE CASCADE,
    connection_state      text NOT NULL DEFAULT 'OFFLINE',
    connection_at         timestamptz,
    order_id              text NOT NULL DEFAULT '',
    order_update_id       bigint NOT NULL DEFAULT 0,
    last_node_id          text NOT NULL DEFAULT '',
    last_node_sequence_id int NOT NULL DEFAULT 0,
    driving               boolean NOT NULL DEFAULT false,
    paused                boolean NOT NULL DEFAULT false,
    battery_charge        double precision NOT NULL DEFAULT 0,     -- percent
    x                     double precision NOT NULL DEFAULT 0,     -- metres
    y                     double precision NOT NULL DEFAULT 0,
    theta                 double precision NOT NULL DEFAULT 0,     -- radians
    map_id                text NOT NULL DEFAULT '',
    fatal_error           text NOT NULL DEFAULT '',
    errors                jsonb NOT NULL DEFAULT '[]',
    action_states         jsonb NOT NULL DEFAULT '[]',
    node_states_remaining int NOT NULL DEFAULT 0,
    state_header_id       bigint NOT NULL DEFAULT 0,
    state_timestamp       timestamptz,
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- At most one active reservation per robot (primary key) and per mission.
CREATE TABLE reservations (
    robot_id    text PRIMARY KEY REFERENCES robots (robot_id) ON DELETE CASCADE,
    mission_id  text NOT NULL UNIQUE,
    workflow_id text NOT NULL,
    priority    int NOT NULL DEFAULT 0,
    reserved_at timestamptz NOT NULL DEFAULT now()
);

-- Missions waiting for a robot; higher priority first, then first come.
CREATE TABLE reservation_queue (
    mission_id            text PRIMARY KEY,
    workflow_id           text NOT NULL,
    site                  text NOT NULL,
    priority              int NOT NULL DEFAULT 0,
    required_capabilities text[] NOT NULL DEFAULT '{}',
    min_battery           double precision NOT NULL DEFAULT 0,
    x                     double precision NOT NULL DEFAULT 0,
    y                     double precision NOT NULL DEFAULT 0,
    enqueued_at           timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX reservation_queue_order ON reservation_queue (site, priority DESC, enqueued_at);

CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    kind    text NOT NULL,
    subject text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_subject ON audit_log (subject, id);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE reservation_queue;
DROP TABLE reservations;
DROP TABLE robot_state;
DROP TABLE robots;

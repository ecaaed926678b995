-- Fleet registry: one row per robot, and the robot's latest reported state.
-- Units: battery_charge in percent (0-100, VDA 5050 batteryCharge);
-- x, y in metres and theta in radians in the map frame of map_id.

-- +goose Up
CREATE TABLE robots (
    robot_id         text PRIMARY KEY,               -- "manufacturer/serialNumber"
    manufacturer     text NOT NULL,
    serial_number    text NOT NULL,
    model            text NOT NULL DEFAULT '',
    site             text NOT NULL,
    capabilities     text[] NOT NULL DEFAULT '{}',
    software_version text NOT NULL DEFAULT '',
    home_node        text NOT NULL DEFAULT '',
    home_x           double precision NOT NULL DEFAULT 0, -- metres, home pose
    home_y           double precision NOT NULL DEFAULT 0,
    home_map_id      text NOT NULL DEFAULT '',
    registered_at    timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT robots_id_matches CHECK (robot_id = manufacturer || '/' || serial_number),
    CONSTRAINT robots_manufacturer_serial_key UNIQUE (manufacturer, serial_number)
);
CREATE INDEX robots_site_idx ON robots (site);

CREATE TABLE robot_state (
    robot_id              text PRIMARY KEY REFERENCES robots (robot_id) ON DELETE CASCADE,
    connection_state      text NOT NULL DEFAULT 'OFFLINE'
        CONSTRAINT robot_state_connection_state_check
        CHECK (connection_state IN ('ONLINE', 'OFFLINE', 'CONNECTIONBROKEN')),
    connection_at         timestamptz,                -- when the last applied connection message was received
    order_id              text NOT NULL DEFAULT '',
    order_update_id       bigint NOT NULL DEFAULT 0,
    last_node_id          text NOT NULL DEFAULT '',
    last_node_sequence_id int NOT NULL DEFAULT 0,
    driving               bool NOT NULL DEFAULT false,
    paused                bool NOT NULL DEFAULT false,
    battery_charge        double precision NOT NULL DEFAULT 0,
    x                     double precision NOT NULL DEFAULT 0,
    y                     double precision NOT NULL DEFAULT 0,
    theta                 double precision NOT NULL DEFAULT 0,
    map_id                text NOT NULL DEFAULT '',
    fatal_error           text NOT NULL DEFAULT '',   -- "errorType: description" of a FATAL error, '' when none
    errors                jsonb NOT NULL DEFAULT '[]',
    action_states         jsonb NOT NULL DEFAULT '[]',
    node_states_remaining int NOT NULL DEFAULT 0,
    state_header_id       bigint NOT NULL DEFAULT 0,
    state_timestamp       timestamptz,                -- header timestamp of the last applied state message
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE robot_state;
DROP TABLE robots;

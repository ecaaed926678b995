-- Charging stations are reserved like robots, so two robots never share
-- one: a Charge workflow holds one station of its site (the stations
-- themselves are in the site map) and waits in line, first come first
-- served, while every charger is taken. The Reaper frees the holds of
-- workflows that have closed, as it does robot reservations.

-- +goose Up
CREATE TABLE station_reservations (
    site        text NOT NULL,
    station_id  text NOT NULL,
    holder      text NOT NULL UNIQUE,  -- the workflow ID holding it: one station per holder
    robot_id    text NOT NULL,
    reserved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, station_id)
);

CREATE TABLE station_queue (
    holder      text PRIMARY KEY,
    site        text NOT NULL,
    robot_id    text NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX station_queue_line ON station_queue (site, enqueued_at, holder);

-- +goose Down
DROP TABLE station_queue;
DROP TABLE station_reservations;

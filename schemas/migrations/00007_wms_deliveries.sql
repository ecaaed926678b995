-- Every attempt to deliver a mission event to a WMS webhook and how it
-- ended: what `starter wms deliveries` lists, and the proof that an event
-- that was given up was tried.

-- +goose Up
CREATE TABLE wms_deliveries (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    client      text NOT NULL,
    event_id    text NOT NULL,
    mission_id  text NOT NULL,
    kind        text NOT NULL,
    attempt     integer NOT NULL,
    -- delivered (2xx), retrying (network error, 408, 429, 5xx) or rejected (other 4xx: final)
    outcome     text NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'rejected')),
    http_status integer,
    error       text,
    duration_ms integer NOT NULL
);
CREATE INDEX wms_deliveries_mission_idx ON wms_deliveries (mission_id, id);

-- +goose Down
DROP TABLE wms_deliveries;

-- Vehicle protocol: the VDA 5050 version each robot writes in its headers,
-- and how its messages deviate from its edition's official schema (counted
-- per robot and kind by the bridge; "rejected" counts messages it could not
-- use at all).

-- +goose Up
ALTER TABLE robot_state ADD COLUMN protocol_version text NOT NULL DEFAULT ''; -- header version of the last state, '' until one arrived

CREATE TABLE robot_deviations (
    robot_id    text NOT NULL REFERENCES robots (robot_id) ON DELETE CASCADE,
    kind        text NOT NULL,              -- theta_missing, extra_field, enum_case, version_mismatch, invalid_item, invalid_part, rejected
    count       bigint NOT NULL DEFAULT 0,
    last_path   text NOT NULL DEFAULT '',   -- JSON pointer of the latest one
    last_detail text NOT NULL DEFAULT '',
    last_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (robot_id, kind)
);

-- +goose Down
DROP TABLE robot_deviations;
ALTER TABLE robot_state DROP COLUMN protocol_version;

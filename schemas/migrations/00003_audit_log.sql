-- Append-only audit trail: who did what to which subject (mission, robot, rollout).

-- +goose Up
CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL DEFAULT '',
    kind    text NOT NULL,
    subject text NOT NULL DEFAULT '',
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_subject_idx ON audit_log (subject, id);

-- +goose Down
DROP TABLE audit_log;

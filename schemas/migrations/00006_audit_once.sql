-- Audit rows an activity writes once however often it runs (Temporal runs
-- an activity at least once: a local activity re-runs when its workflow
-- task fails under load): a key, unique when set.

-- +goose Up
ALTER TABLE audit_log ADD COLUMN once_key text;
CREATE UNIQUE INDEX audit_log_once_key_idx ON audit_log (once_key) WHERE once_key IS NOT NULL;

-- +goose Down
DROP INDEX audit_log_once_key_idx;
ALTER TABLE audit_log DROP COLUMN once_key;

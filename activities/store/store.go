// Package store is the fleet registry in PostgreSQL, accessed through pgx and
// nothing else: robots, their latest reported state, robot reservations by
// missions, the queue of missions waiting for a robot, and the audit log.
//
// Units used throughout: battery charge in percent (0–100, as VDA 5050
// batteryCharge); positions x, y in metres and theta in radians, in the frame
// of the robot's map (VDA 5050 agvPosition). Times are returned in UTC.
//
// Errors are wrapped with the operation and subject, for example
// "reserve mission-42: …". Validation failures wrap ErrInvalid (not worth
// retrying); lookups of something that does not exist return ErrNotFound.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned (wrapped) when the asked-for row does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrInvalid is returned (wrapped) when an argument fails validation; retrying
// the same call cannot succeed.
var ErrInvalid = errors.New("store: invalid argument")

// Connection states of a robot (VDA 5050 connection topic).
const (
	ConnectionOnline           = "ONLINE"
	ConnectionOffline          = "OFFLINE"
	ConnectionConnectionBroken = "CONNECTIONBROKEN"
)

// Store is the fleet registry. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// Option changes how Open builds the pool.
type Option func(*pgxpool.Config)

// WithMaxConns caps the pool at n connections (config postgres.maxConns);
// n ≤ 0 keeps pgxpool's default (or the URL's pool_max_conns).
func WithMaxConns(n int) Option {
	return func(c *pgxpool.Config) {
		if n > 0 {
			c.MaxConns = int32(n)
		}
	}
}

// Open connects a pool to databaseURL (a postgres:// URL or key=value DSN,
// pgxpool options such as pool_max_conns accepted) and checks it with a ping.
// It does not migrate: call Migrate first.
func Open(ctx context.Context, databaseURL string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("open store: parse database URL: %w", err)
	}
	for _, o := range opts {
		o(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store: ping %s: %w", cfg.ConnConfig.Host, err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() { s.pool.Close() }

// MaxConns is the pool's connection cap.
func (s *Store) MaxConns() int { return int(s.pool.Config().MaxConns) }

// Pool returns the underlying connection pool, for health checks and for
// queries this package does not offer.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID      int64
	At      time.Time
	Actor   string // who acted: a workflow ID, a user, a component
	Kind    string // what happened, e.g. "reservation.granted"
	Subject string // what it happened to, e.g. a mission or robot ID
	Details json.RawMessage
}

// Audit appends a row to the audit log. details is marshalled with
// encoding/json (a json.RawMessage is stored as is; nil, or anything that
// marshals to null, stores {}). It returns an error wrapping ErrInvalid when
// kind is empty or details cannot be marshalled, and wraps database errors.
func (s *Store) Audit(ctx context.Context, actor, kind, subject string, details any) error {
	if err := audit(ctx, s.pool, actor, kind, subject, details); err != nil {
		return fmt.Errorf("audit %s %s: %w", kind, subject, err)
	}
	return nil
}

// AuditOnce writes the audit row only once per key: a second call with the
// same key (an activity that ran again) writes nothing. key must not be
// empty.
func (s *Store) AuditOnce(ctx context.Context, key, actor, kind, subject string, details any) error {
	if key == "" {
		return fmt.Errorf("audit %s %s: %w: empty key", kind, subject, ErrInvalid)
	}
	if err := auditKeyed(ctx, s.pool, key, actor, kind, subject, details); err != nil {
		return fmt.Errorf("audit %s %s: %w", kind, subject, err)
	}
	return nil
}

// AuditTrail returns the audit rows of subject, oldest first (empty, not an
// error, when there are none).
func (s *Store) AuditTrail(ctx context.Context, subject string) ([]AuditEntry, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT id, at, actor, kind, subject, details FROM audit_log WHERE subject = $1 ORDER BY id`, subject)
	if err != nil {
		return nil, fmt.Errorf("audit trail %s: %w", subject, err)
	}
	entries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := row.Scan(&e.ID, &e.At, &e.Actor, &e.Kind, &e.Subject, &e.Details)
		e.At = e.At.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit trail %s: %w", subject, err)
	}
	return entries, nil
}

// execer is what audit needs: a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func audit(ctx context.Context, db execer, actor, kind, subject string, details any) error {
	return auditKeyed(ctx, db, "", actor, kind, subject, details)
}

func auditKeyed(ctx context.Context, db execer, key, actor, kind, subject string, details any) error {
	var raw []byte
	switch d := details.(type) {
	case nil:
		raw = []byte("{}")
	case json.RawMessage:
		if !json.Valid(d) {
			return fmt.Errorf("%w: details are not valid JSON", ErrInvalid)
		}
		raw = d
	default:
		b, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("%w: marshal details: %v", ErrInvalid, err)
		}
		raw = b
	}
	if string(raw) == "null" { // a nil map or pointer
		raw = []byte("{}")
	}
	if kind == "" {
		return fmt.Errorf("%w: empty kind", ErrInvalid)
	}
	if key == "" {
		_, err := db.Exec(ctx,
			`INSERT INTO audit_log (actor, kind, subject, details) VALUES ($1, $2, $3, $4::jsonb)`,
			actor, kind, subject, string(raw))
		return err
	}
	_, err := db.Exec(ctx,
		`INSERT INTO audit_log (actor, kind, subject, details, once_key) VALUES ($1, $2, $3, $4::jsonb, $5)
ON CONFLICT (once_key) WHERE once_key IS NOT NULL DO NOTHING`,
		actor, kind, subject, string(raw), key)
	return err
}

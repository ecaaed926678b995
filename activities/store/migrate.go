package store

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/fleetflow/fleetflow/schemas"
)

// migrateLockKey is the key of the session-level advisory lock
// (pg_advisory_lock(bigint)) held while migrating, so that processes starting
// together migrate one after the other. It is "fleetflo" in ASCII.
const migrateLockKey int64 = 0x666c656574666c6f

// Migrate applies every pending migration of schemas.Migrations (goose "up")
// to the database at databaseURL. It is idempotent: with nothing pending it
// changes nothing. Concurrent callers, in this process or others, are
// serialized by a PostgreSQL advisory lock, so the second one waits and then
// finds nothing to do. Cancelling ctx stops the wait for the lock. It returns
// an error when the database is unreachable or a migration fails; a failed
// migration is rolled back (goose runs each file in a transaction).
//
// It uses goose's Provider rather than goose's package-level functions
// (goose.SetDialect, goose.SetBaseFS), whose global state would make
// concurrent calls in one process race.
func Migrate(ctx context.Context, databaseURL string) (err error) {
	migrations, err := fs.Sub(schemas.Migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("migrate: parse database URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	db.SetMaxOpenConns(3) // the lock's connection and goose's

	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}

	// The advisory lock belongs to a session, so hold one connection for it.
	lockConn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: connect: %w", err)
	}
	defer lockConn.Close()
	if _, err := lockConn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return fmt.Errorf("migrate: take advisory lock: %w", err)
	}
	defer func() {
		// Unlock even when ctx is cancelled; closing the session would also
		// release it, but the connection may otherwise return to a pool.
		_, uerr := lockConn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLockKey)
		if uerr != nil && err == nil {
			err = fmt.Errorf("migrate: release advisory lock: %w", uerr)
		}
	}()

	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// SchemaVersion returns the registry's applied migration version (goose),
// 0 for a database never migrated. Errors: unreachable database.
func SchemaVersion(ctx context.Context, databaseURL string) (int64, error) {
	migrations, err := fs.Sub(schemas.Migrations, "migrations")
	if err != nil {
		return 0, err
	}
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return 0, fmt.Errorf("schema version: parse database URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations)
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	v, err := provider.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}

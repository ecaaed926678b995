package schemas

import "embed"

// Migrations holds the goose SQL migrations of the fleet database
// (migrations/NNNNN_name.sql, each with "-- +goose Up" and "-- +goose Down"
// sections). Apply them with activities/store.Migrate; use
// fs.Sub(Migrations, "migrations") to get a file system rooted at the
// migration files.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Package schemas holds the JSON Schemas of fleetflow's specs (missions),
// the SQL migrations of the fleet registry, and the Go types that load and
// validate them, plus the messages fleetflow's processes exchange (activity
// inputs and results, robot events). No I/O beyond reading a spec file.
package schemas

import "embed"

// Migrations are the fleet registry's goose migrations (migrations/*.sql).
//
//go:embed migrations/*.sql
var Migrations embed.FS

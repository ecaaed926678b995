package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/mqttacl"
	"github.com/fleetflow/fleetflow/internal/site"
)

// fleetApplyCmd registers a real fleet from its site map file.
func fleetApplyCmd(g *globalFlags) *cobra.Command {
	var file string
	var dry bool
	cmd := &cobra.Command{
		Use:   "apply -f SITE.yaml [--dry-run]",
		Short: "Make the registry's robots of a site what its site map file lists (add, update, retire)",
		Long: `apply reads a site map (the format of testdata/sites/warehouse-a.yaml),
checks it as the workers do, and makes the fleet registry's robots of that
site exactly the file's robots, in one transaction:

  - robots not registered are added (OFFLINE at their home node until they
    report a state);
  - robots whose model, capabilities, home node or version changed are
    updated; their state is left alone;
  - robots of the site missing from the file are retired (removed with their
    state; the audit log keeps their history), except a robot a workflow
    holds: a running mission is never pulled from under it; it is kept and
    listed, apply again once it is free.

Applying the same file twice changes nothing. Every apply is audited
(fleet.applied, subject the site). The map itself (nodes, edges, stations,
profiles) is read by the workers from site.mapsDir: put the same file there.
Needs DATABASE_URL; run starter migrate first on a new database.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return badInput("-f SITE.yaml is required")
			}
			m, err := site.Load(file)
			if err != nil {
				return badInput("%v", err)
			}
			st, _, err := openRegistry(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer st.Close()
			res, err := st.ApplySite(cmd.Context(), m.Site, currentUser(), localstack.SiteRobots(m), dry)
			if errors.Is(err, store.ErrInvalid) {
				return badInput("%v", err)
			}
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), g, res, func(w io.Writer) {
				verb := "applied"
				if dry {
					verb = "would apply (dry run, nothing written)"
				}
				fmt.Fprintf(w, "site %s: %s\n", m.Site, verb)
				for _, l := range []struct {
					name string
					ids  []string
				}{{"added", res.Added}, {"updated", res.Updated}, {"unchanged", res.Unchanged}, {"retired", res.Retired}, {"kept (held)", res.Kept}} {
					if len(l.ids) > 0 {
						fmt.Fprintf(w, "  %-12s %d: %s\n", l.name, len(l.ids), strings.Join(l.ids, ", "))
					}
				}
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the site map file")
	cmd.Flags().BoolVar(&dry, "dry-run", false, "show what would change, write nothing")
	return cmd
}

// migrateCmd applies the registry's migrations (also a one-shot Job in a
// cluster).
func migrateCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the fleet registry's database migrations (idempotent; DATABASE_URL)",
		Long: `migrate applies every pending migration of the fleet registry (goose,
embedded in the binary) to DATABASE_URL and prints the version. Running it
again, or from several processes at once, is safe: they are serialized by
an advisory lock and find nothing left to do. The workers and starter dev
migrate on start too; run this first when the workers' database role may
not change the schema.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g)
			if err != nil {
				return err
			}
			if cfg.Postgres.URL == "" {
				return badInput("DATABASE_URL is not set")
			}
			if err := store.Migrate(cmd.Context(), cfg.Postgres.URL); err != nil {
				return err
			}
			v, err := store.SchemaVersion(cmd.Context(), cfg.Postgres.URL)
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), g, map[string]int64{"version": v}, func(w io.Writer) {
				fmt.Fprintf(w, "fleet registry migrated: schema version %d\n", v)
			})
		},
	}
}

// fleetMQTTACLCmd writes the broker's ACL for the site maps.
func fleetMQTTACLCmd(g *globalFlags) *cobra.Command {
	var files []string
	var service string
	cmd := &cobra.Command{
		Use:   "mqtt-acl -f SITE.yaml [-f …] [--service-user NAME] > acl",
		Short: "Write the Mosquitto ACL that fences each robot into its own VDA 5050 topics",
		Long: `mqtt-acl writes a Mosquitto acl_file for the robots of the site maps (the
broker of deploy/base/mosquitto/mosquitto.conf reads it):

  - robot <manufacturer>/<serialNumber> (its username, or its client
    certificate's CN with use_identity_as_username) may publish only its
    own state, connection, visualization and factsheet, and read only its
    own order and instantActions, in the topics of its profile;
  - the service user (--service-user, default mqtt.username or fleetflow)
    may read every robot's telemetry and write every robot's order and
    instantActions;
  - nothing else is allowed.

Write it again after each fleet apply and reload the broker (SIGHUP).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return badInput("-f SITE.yaml is required (once per site map)")
			}
			cfg, err := loadConfig(g)
			if err != nil {
				return err
			}
			if service == "" {
				service = cfg.MQTT.Username
			}
			if service == "" {
				service = "fleetflow"
			}
			var maps []*site.Map
			for _, f := range files {
				m, err := site.Load(f)
				if err != nil {
					return badInput("%v", err)
				}
				maps = append(maps, m)
			}
			acl, err := mqttacl.Generate(maps, service)
			if err != nil {
				return badInput("%v", err)
			}
			_, err = cmd.OutOrStdout().Write(acl)
			return err
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "a site map file (repeat for several sites on one broker)")
	cmd.Flags().StringVar(&service, "service-user", "", "fleetflow's MQTT user (default mqtt.username, else fleetflow)")
	return cmd
}

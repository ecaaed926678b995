package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/sim"
	"github.com/fleetflow/fleetflow/internal/site"
)

func fleetCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "fleet", Short: "The fleet registry: robots, their state and reservations"}
	var siteName string
	list := &cobra.Command{
		Use:   "list",
		Short: "List robots with connection, battery, position, software version and reservation (needs DATABASE_URL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g)
			if err != nil {
				return err
			}
			if cfg.Postgres.URL == "" {
				return badInput("DATABASE_URL is not set (`starter dev` prints the one to export)")
			}
			st, err := store.Open(cmd.Context(), cfg.Postgres.URL)
			if err != nil {
				return err
			}
			defer st.Close()
			views, err := st.ListRobots(cmd.Context(), siteName)
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), g, views, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
				fmt.Fprintln(tw, "ROBOT\tMODEL\tSITE\tCONNECTION\tBATTERY\tNODE\tORDER\tVERSION\tRESERVED BY\tERROR")
				for _, v := range views {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f%%\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Model, v.Site, dash(v.State.ConnectionState),
						v.State.BatteryCharge, dash(v.State.LastNodeID), dash(v.State.OrderID), dash(v.SoftwareVersion), dash(v.ReservedBy), dash(v.State.FatalError))
				}
				tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&siteName, "site", "", "only this site")
	cmd.AddCommand(list)
	return cmd
}

func simCmd(g *globalFlags) *cobra.Command {
	var mapFile string
	var speed float64
	var grid int
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run a virtual fleet of VDA 5050 robots from a site map against an MQTT broker",
		Long: `sim connects one MQTT client per robot of the site map (last will
CONNECTIONBROKEN, retained ONLINE), drives orders node by node at --speed
metres/second, runs pick/drop, answers instant actions, until Ctrl-C.
The broker is mqtt.url (FLEETFLOW_MQTT_URL).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g)
			if err != nil {
				return err
			}
			if cfg.MQTT.URL == "" {
				return badInput("mqtt.url is empty: set FLEETFLOW_MQTT_URL to the broker, e.g. tcp://127.0.0.1:1884 while `starter dev` runs")
			}
			if mapFile == "" {
				mapFile = cfg.Site.MapsDir + "/" + cfg.Site.Name + ".yaml"
			}
			var m *site.Map
			if grid > 0 {
				m = site.Grid("sim-grid", 32, 32, 2, grid, []string{"gridsim"})
			} else if m, err = site.Load(mapFile); err != nil {
				return usageError{err}
			}
			if !cmd.Flags().Changed("speed") {
				speed = cfg.Sim.Speed
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fleet := sim.NewFleet(sim.Options{BrokerURL: cfg.MQTT.URL, Username: cfg.MQTT.Username, Password: cfg.MQTT.Password, Speed: speed, ActionDuration: cfg.Sim.ActionDuration}, simRobots(m))
			if err := fleet.Start(ctx); err != nil {
				return err
			}
			defer fleet.Stop()
			fmt.Fprintf(cmd.OutOrStdout(), "%d virtual robots of %s online at %s; Ctrl-C stops them\n", len(fleet.Robots()), m.Site, cfg.MQTT.URL)
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&mapFile, "map", "", "site map (default site.mapsDir/site.name.yaml)")
	cmd.Flags().Float64Var(&speed, "speed", 0, "metres/second, 0 = instant (default sim.speed)")
	cmd.Flags().IntVar(&grid, "grid", 0, "instead of a site map, this many robots on a generated 32×32 grid (benchmarks)")
	return cmd
}

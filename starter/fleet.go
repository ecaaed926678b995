package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/localstack"
	"github.com/fleetflow/fleetflow/internal/sim"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/internal/vda5050"
)

func fleetCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "fleet", Short: "The fleet registry: robots, their state and reservations"}
	var siteName string
	list := &cobra.Command{
		Use:   "list",
		Short: "List robots with connection, battery, position, software version and reservation (needs DATABASE_URL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, _, err := openRegistry(cmd.Context(), g)
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
				fmt.Fprintln(tw, "ROBOT\tMODEL\tSITE\tSERVICE\tCONNECTION\tBATTERY\tNODE\tORDER\tVERSION\tRESERVED BY\tERROR")
				for _, v := range views {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.0f%%\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Model, v.Site, v.ServiceStatus, dash(v.State.ConnectionState),
						v.State.BatteryCharge, dash(v.State.LastNodeID), dash(v.State.OrderID), dash(v.SoftwareVersion), dash(v.ReservedBy), dash(v.State.FatalError))
				}
				tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&siteName, "site", "", "only this site")
	cmd.AddCommand(list, fleetShowCmd(g), fleetSetStatusCmd(g), fleetApplyCmd(g), fleetMQTTACLCmd(g))
	return cmd
}

func fleetSetStatusCmd(g *globalFlags) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "set-status ROBOT_ID " + strings.Join(store.ServiceStatuses, "|"),
		Short: "Set a robot's service status: only robots in_service are given missions (needs DATABASE_URL)",
		Long: `set-status changes whether missions may take a robot. A mission the robot
runs now goes on to its end; from then on the allocator hands out only
robots in_service (a maintenance or OTA workflow asking for the robot
itself still gets it). The change is audited (kind robot.service_status).
Queued missions see a robot returned to service on their next retry.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(store.ServiceStatuses, args[1]) {
				return badInput("status %q: want one of %s", args[1], strings.Join(store.ServiceStatuses, ", "))
			}
			st, _, err := openRegistry(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer st.Close()
			before, err := st.SetServiceStatus(cmd.Context(), args[0], args[1], currentUser(), reason)
			if errors.Is(err, store.ErrNotFound) {
				return badInput("no robot %s in the registry", args[0])
			}
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), g, map[string]string{"robotId": args[0], "from": before, "to": args[1]}, func(w io.Writer) {
				fmt.Fprintf(w, "robot %s: %s → %s\n", args[0], before, args[1])
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (audited)")
	return cmd
}

// robotDetail is what `fleet show` prints: the registry's view of one
// robot, how it is spoken to, and how its messages deviate from its
// edition's schema.
type robotDetail struct {
	store.RobotView
	// Profile is the configured VDA 5050 profile (site maps), resolved.
	Profile    string                 `json:"profile"`
	Deviations []store.DeviationCount `json:"deviations"`
	Health     store.Health           `json:"health"`
	// LastHolders: the robot's last reservations (missions, maintenances,
	// charges), newest first.
	LastHolders []store.Holding `json:"lastHolders"`
}

func fleetShowCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show ROBOT",
		Short: "Show one robot: state, battery, position, version, protocol, reservation and how its messages deviate from its VDA 5050 schema",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := vda5050.ParseRobotID(args[0])
			if err != nil {
				return badInput("%v", err)
			}
			st, cfg, err := openRegistry(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer st.Close()
			v, err := st.GetRobot(cmd.Context(), k.String())
			if errors.Is(err, store.ErrNotFound) {
				return badInput("no robot %s in the fleet registry", k)
			}
			if err != nil {
				return err
			}
			d := robotDetail{RobotView: v}
			if d.Deviations, err = st.RobotDeviations(cmd.Context(), k.String()); err != nil {
				return err
			}
			if d.Health, err = st.RobotHealth(cmd.Context(), k.String()); err != nil {
				return err
			}
			if d.LastHolders, err = st.LastHolders(cmd.Context(), k.String(), 5); err != nil {
				return err
			}
			if maps, err := site.LoadDir(cfg.Site.MapsDir); err == nil {
				d.Profile = site.ProfileBook(maps).For(k).String()
			}
			return emit(cmd.OutOrStdout(), g, d, func(w io.Writer) { printRobot(w, d) })
		},
	}
}

func printRobot(w io.Writer, d robotDetail) {
	s := d.State
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "robot\t%s (%s, site %s)\n", d.ID, dash(d.Model), d.Site)
	fmt.Fprintf(tw, "connection\t%s\n", dash(s.ConnectionState))
	fmt.Fprintf(tw, "battery\t%.1f %%\n", s.BatteryCharge)
	fmt.Fprintf(tw, "position\t(%.2f, %.2f) m, θ %.2f rad, map %s, last node %s\n", s.X, s.Y, s.Theta, dash(s.MapID), dash(s.LastNodeID))
	fmt.Fprintf(tw, "order\t%s (update %d), %d nodes to go, driving %v, paused %v\n", dash(s.OrderID), s.OrderUpdateID, s.NodeStatesRemaining, s.Driving, s.Paused)
	fmt.Fprintf(tw, "software\t%s\n", dash(d.SoftwareVersion))
	fmt.Fprintf(tw, "protocol\tprofile %s; writes %s\n", dash(d.Profile), dash(s.ProtocolVersion))
	fmt.Fprintf(tw, "reserved by\t%s\n", dash(d.ReservedBy))
	fmt.Fprintf(tw, "service\t%s\n", d.ServiceStatus)
	if s.FatalError != "" {
		fmt.Fprintf(tw, "FATAL\t%s\n", s.FatalError)
	}
	if !s.Timestamp.IsZero() {
		fmt.Fprintf(tw, "last state\t%s (headerId %d)\n", s.Timestamp.Format(time.RFC3339Nano), s.HeaderID)
	}
	h := d.Health
	bh := "not reported"
	if h.BatteryHealth != nil {
		bh = fmt.Sprintf("%.0f %%", *h.BatteryHealth)
	}
	fmt.Fprintf(tw, "condition\tbattery health %s; since %s (service epoch %d): %d errors, %.1f h driving\n",
		bh, h.Since.Local().Format(time.DateTime), h.Epoch, h.ErrorsSeen, h.DrivingSeconds/3600)
	for i, l := range d.LastHolders {
		label := ""
		if i == 0 {
			label = "last holders"
		}
		fmt.Fprintf(tw, "%s\t%s %s\n", label, l.At.Local().Format(time.DateTime), l.Holder)
	}
	tw.Flush()
	if len(d.Deviations) == 0 {
		fmt.Fprintln(w, "\nno deviations from its VDA 5050 schema")
		return
	}
	fmt.Fprintln(w, "\ndeviations from its VDA 5050 schema (tolerated and counted; rejected = messages that could not be used):")
	tw = tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tCOUNT\tLAST PATH\tLAST DETAIL\tLAST AT")
	for _, dv := range d.Deviations {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", dv.Kind, dv.Count, dash(dv.LastPath), dash(dv.LastDetail), dv.LastAt.Format(time.RFC3339))
	}
	tw.Flush()
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
			fleet := sim.NewFleet(sim.Options{BrokerURL: cfg.MQTT.URL, Username: cfg.MQTT.Username, Password: cfg.MQTT.Password, Speed: speed, ActionDuration: cfg.Sim.ActionDuration, ChargePerSecond: cfg.Sim.ChargePerSecond}, localstack.SimRobots(m, cfg.Sim))
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

// openRegistry opens the fleet registry the configuration names
// (DATABASE_URL); a missing URL is bad input that says how to get one.
func openRegistry(ctx context.Context, g *globalFlags) (*store.Store, config.Config, error) {
	cfg, err := loadConfig(g)
	if err != nil {
		return nil, cfg, err
	}
	if cfg.Postgres.URL == "" {
		return nil, cfg, badInput("DATABASE_URL is not set (`starter dev` prints the one to export)")
	}
	st, err := store.Open(ctx, cfg.Postgres.URL)
	return st, cfg, err
}

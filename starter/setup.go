package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/fleetflow/fleetflow/internal/codec"
	"github.com/fleetflow/fleetflow/schemas"
	"github.com/fleetflow/fleetflow/workers/worker"
)

// temporalCmd groups what fleetflow needs of a Temporal cluster.
func temporalCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "temporal", Short: "Prepare the Temporal cluster fleetflow runs on"}
	var retention time.Duration
	setup := &cobra.Command{
		Use:   "setup [--retention 720h]",
		Short: "Register the namespace (when missing) and fleetflow's custom search attributes (idempotent)",
		Long: `setup prepares temporal.namespace on temporal.hostPort for fleetflow, as a
one-shot job before the first workers start:

  - registers the namespace when it does not exist (with --retention for
    closed workflows' histories); an existing namespace is left as it is;
  - adds the custom search attributes missions and rollouts write
    (` + strings.Join(sortedKeys(schemas.SearchAttributeTypes), ", ") + `)
    that the namespace lacks; an attribute that exists with another type is
    an error naming it.

Running it again changes nothing. starter dev does the same for its dev
server. On Temporal Cloud the namespace and attributes are made in its
console or tcld; setup then only checks them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			opts, err := worker.TemporalClientOptions(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			nc, err := client.NewNamespaceClient(opts)
			if err != nil {
				return fmt.Errorf("%w (temporal.hostPort %s)", err, cfg.Temporal.HostPort)
			}
			defer nc.Close()
			var done []string
			_, err = nc.Describe(ctx, cfg.Temporal.Namespace)
			var nf *serviceerror.NamespaceNotFound
			switch {
			case errors.As(err, &nf):
				if err := nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{
					Namespace: cfg.Temporal.Namespace, WorkflowExecutionRetentionPeriod: durationpb.New(retention),
					Description: "fleetflow",
				}); err != nil {
					return fmt.Errorf("register namespace %s: %w", cfg.Temporal.Namespace, err)
				}
				done = append(done, "namespace "+cfg.Temporal.Namespace+" registered")
			case err != nil:
				return fmt.Errorf("describe namespace %s: %w", cfg.Temporal.Namespace, err)
			}
			c, err := client.Dial(opts)
			if err != nil {
				return err
			}
			defer c.Close()
			// A namespace just registered reaches every service of the
			// cluster within seconds (its namespace cache).
			var have *operatorservice.ListSearchAttributesResponse
			for i := 0; ; i++ {
				have, err = c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: cfg.Temporal.Namespace})
				var nf *serviceerror.NotFound
				var nnf *serviceerror.NamespaceNotFound
				if err == nil || !(errors.As(err, &nf) || errors.As(err, &nnf)) || len(done) == 0 || i >= 30 {
					break
				}
				time.Sleep(time.Second)
			}
			if err != nil {
				return fmt.Errorf("list search attributes of %s: %w", cfg.Temporal.Namespace, err)
			}
			add := map[string]enumspb.IndexedValueType{}
			for _, name := range sortedKeys(schemas.SearchAttributeTypes) {
				want, ok := enumspb.IndexedValueType_value["INDEXED_VALUE_TYPE_"+strings.ToUpper(schemas.SearchAttributeTypes[name])]
				if !ok {
					return fmt.Errorf("search attribute %s: unknown type %s", name, schemas.SearchAttributeTypes[name])
				}
				if got, ok := have.GetCustomAttributes()[name]; ok {
					if got != enumspb.IndexedValueType(want) {
						return badInput("search attribute %s exists in %s as %s, fleetflow needs %s", name, cfg.Temporal.Namespace, got, enumspb.IndexedValueType(want))
					}
					continue
				}
				add[name] = enumspb.IndexedValueType(want)
			}
			if len(add) > 0 {
				if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
					Namespace: cfg.Temporal.Namespace, SearchAttributes: add,
				}); err != nil {
					return fmt.Errorf("add search attributes to %s: %w", cfg.Temporal.Namespace, err)
				}
				done = append(done, "search attributes added: "+strings.Join(sortedKeys(add), ", "))
			}
			return emit(cmd.OutOrStdout(), g, map[string]any{"namespace": cfg.Temporal.Namespace, "changes": done}, func(w io.Writer) {
				if len(done) == 0 {
					fmt.Fprintf(w, "namespace %s is ready for fleetflow; nothing to change\n", cfg.Temporal.Namespace)
					return
				}
				for _, d := range done {
					fmt.Fprintln(w, d)
				}
			})
		},
	}
	setup.Flags().DurationVar(&retention, "retention", 30*24*time.Hour, "how long a new namespace keeps closed workflows' histories")
	newKey := &cobra.Command{
		Use:   "new-payload-key",
		Short: "Print a new payload encryption key (for FLEETFLOW_TEMPORAL_PAYLOAD_KEY)",
		Long: `new-payload-key prints 32 random bytes in base64: set it as
FLEETFLOW_TEMPORAL_PAYLOAD_KEY for every process of the namespace (workers,
starter, ingress) and every payload they send Temporal is encrypted with
AES-256-GCM (inputs, results, signals, updates, error messages). Keep it in
a secret store: whoever loses it cannot read the histories written with it.
The Web UI shows the payloads through the workers' codec server:
Settings → Codec Server → http://<worker>:9090/codec.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := codec.NewKey()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), k)
			return nil
		},
	}
	cmd.AddCommand(setup, newKey)
	return cmd
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

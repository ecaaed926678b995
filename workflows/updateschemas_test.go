package workflows

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/fleetflow/fleetflow/internal/schemacheck"
	"github.com/fleetflow/fleetflow/schemas"
)

// Each update's argument type matches schemas/updates/<name>.schema.json:
// the same property names, and a filled-in request passes the schema.
func TestUpdateSchemasMatchRequests(t *testing.T) {
	sp := schemas.MissionSpec{MissionID: "m-1", Site: "warehouse-a", MinBattery: 20, Steps: []schemas.MissionStep{{Station: "inbound-1", Action: "pick"}}}
	for name, req := range map[string]any{
		schemas.UpdateCancel:       schemas.CancelRequest{Reason: "r", By: "b"},
		schemas.UpdateReprioritize: schemas.ReprioritizeRequest{Priority: 7, Reason: "r", By: "b"},
		schemas.UpdateResolve:      schemas.ResolveRequest{Decision: schemas.DecisionReassign, RestartFromStart: true, Reason: "r", By: "b"},
		schemas.UpdateAccept:       schemas.AcceptRequest{Spec: sp, Client: "acme-wms"},
		schemas.UpdateAppend:       schemas.AppendRequest{Steps: []schemas.MissionStep{{Station: "rack-2", Action: "drop", WaitFor: schemas.WaitFor{Signal: schemas.SignalLoadTaken, TimeoutSeconds: 30, OnTimeout: "skip"}}}, Reason: "r", By: "b"},
	} {
		sch, err := schemas.CompileUpdateSchema(name)
		require.NoError(t, err, name)
		raw, _ := json.Marshal(req)
		var doc any
		require.NoError(t, json.Unmarshal(raw, &doc))
		require.NoError(t, sch.Validate(doc), "%s: %s", name, raw)

		file, _ := schemas.UpdateSchemas.ReadFile("updates/" + name + ".schema.json")
		var s struct {
			Properties map[string]any `json:"properties"`
		}
		require.NoError(t, json.Unmarshal(file, &s))
		var inSchema, inGo []string
		for k := range s.Properties {
			inSchema = append(inSchema, k)
		}
		typ := reflect.TypeOf(req)
		for i := 0; i < typ.NumField(); i++ {
			inGo = append(inGo, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
		}
		slices.Sort(inSchema)
		slices.Sort(inGo)
		require.Equal(t, inGo, inSchema, "%s: schema and Go type name the same fields", name)
	}
	step := 1
	for _, name := range []string{schemas.SignalLoadReady, schemas.SignalLoadTaken} {
		sch, err := schemas.CompileSignalSchema(name)
		require.NoError(t, err)
		raw, _ := json.Marshal(schemas.LoadSignal{LoadID: "PAL-1", Step: &step, By: "conveyor-7"})
		require.Empty(t, violations(sch, raw), "%s", raw)
		require.NotEmpty(t, violations(sch, []byte(`{"loadID":"x"}`)))
	}
	_, err := schemas.CompileSignalSchema("loadLost")
	require.Error(t, err)
	app, _ := schemas.CompileUpdateSchema(schemas.UpdateAppend)
	require.NotEmpty(t, violations(app, []byte(`{"steps":[{"station":"a","action":"fly"}]}`)), "steps are held to mission.schema.json")
	bad, _ := schemas.CompileUpdateSchema(schemas.UpdateReprioritize)
	require.Error(t, bad.Validate(map[string]any{"priority": 101.0}))
	_, err = schemas.CompileUpdateSchema("nope")
	require.Error(t, err)
}

func violations(s *jsonschema.Schema, raw []byte) []string {
	_, v := schemacheck.Validate(s, raw)
	return v
}

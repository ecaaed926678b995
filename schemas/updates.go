package schemas

import (
	"bytes"
	"embed"
	"fmt"
	"path"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// UpdateSchemas holds updates/<name>.schema.json: the JSON Schema of the
// argument of each Mission update that takes one (cancel, reprioritize,
// resolve, accept; pause and resume take none), the contract for WMS
// integrations with a Temporal client of their own.
//
//go:embed updates/*.schema.json
var UpdateSchemas embed.FS

// SignalSchemas holds signals/<name>.schema.json: the JSON Schema of the
// argument of each mission signal from the WMS (loadReady and loadTaken
// share load.schema.json).
//
//go:embed signals/*.schema.json
var SignalSchemas embed.FS

// CompileSignalSchema compiles the schema of signal name's argument
// (loadReady, loadTaken). An unknown name is an error.
func CompileSignalSchema(name string) (*jsonschema.Schema, error) {
	if name != SignalLoadReady && name != SignalLoadTaken {
		return nil, fmt.Errorf("no schema for signal %q (known: %s, %s)", name, SignalLoadReady, SignalLoadTaken)
	}
	raw, err := SignalSchemas.ReadFile("signals/load.schema.json")
	if err != nil {
		return nil, err
	}
	return compileSchema("signals/load.schema.json", "https://fleetflow.dev/schemas/signals/load.schema.json", raw)
}

// UpdateSchemaID is the $id of update name's schema.
func UpdateSchemaID(name string) string {
	return "https://fleetflow.dev/schemas/updates/" + name + ".schema.json"
}

// CompileUpdateSchema compiles the schema of update name's argument (with
// mission.schema.json, which accept refers to). An unknown name is an error.
func CompileUpdateSchema(name string) (*jsonschema.Schema, error) {
	raw, err := UpdateSchemas.ReadFile(path.Join("updates", name+".schema.json"))
	if err != nil {
		return nil, fmt.Errorf("no schema for update %q: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for id, doc := range map[string][]byte{UpdateSchemaID(name): raw, MissionSchemaID: MissionSchema} {
		d, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		if err := c.AddResource(id, d); err != nil {
			return nil, err
		}
	}
	return c.Compile(UpdateSchemaID(name))
}

// Validate checks the JSON document raw against s and lists every
// violation as "<JSON pointer>: <message>", sorted; none means valid (a
// document that is not JSON is one violation at "/").
func Validate(s *jsonschema.Schema, raw []byte) []string {
	_, v := validate(s, raw)
	return v
}

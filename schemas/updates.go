package schemas

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fleetflow/fleetflow/internal/schemacheck"
)

// UpdateSchemas holds updates/<name>.schema.json: the JSON Schema of the
// argument of each Mission update that takes one (cancel, reprioritize,
// resolve, accept, append; pause and resume take none), the contract for WMS
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

// CompileSignalSchema returns the compiled schema of signal name's
// argument (loadReady, loadTaken), compiled once per process: the REST
// ingress checks every signal body with it. An unknown name is an error.
func CompileSignalSchema(name string) (*jsonschema.Schema, error) {
	if name != SignalLoadReady && name != SignalLoadTaken {
		return nil, fmt.Errorf("no schema for signal %q (known: %s, %s)", name, SignalLoadReady, SignalLoadTaken)
	}
	return compiledLoadSignalSchema()
}

var compiledLoadSignalSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	raw, err := SignalSchemas.ReadFile("signals/load.schema.json")
	if err != nil {
		return nil, err
	}
	return schemacheck.Compile("signals/load.schema.json", "https://fleetflow.dev/schemas/signals/load.schema.json", raw)
})

// UpdateSchemaID is the $id of update name's schema.
func UpdateSchemaID(name string) string {
	return "https://fleetflow.dev/schemas/updates/" + name + ".schema.json"
}

// CompileUpdateSchema returns the compiled schema of update name's
// argument (with mission.schema.json, which accept and append refer to).
// Each schema in updates/ is compiled once per process: the REST ingress
// checks every update body with it. An unknown name is an error.
func CompileUpdateSchema(name string) (*jsonschema.Schema, error) {
	once, ok := updateSchemas[name]
	if !ok {
		return nil, fmt.Errorf("no schema for update %q", name)
	}
	return once()
}

// updateSchemas has one lazily compiled schema per file in updates/.
var updateSchemas = func() map[string]func() (*jsonschema.Schema, error) {
	files, _ := fs.Glob(UpdateSchemas, "updates/*.schema.json")
	m := make(map[string]func() (*jsonschema.Schema, error), len(files))
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".schema.json")
		m[name] = sync.OnceValues(func() (*jsonschema.Schema, error) { return compileUpdateSchema(name) })
	}
	return m
}()

func compileUpdateSchema(name string) (*jsonschema.Schema, error) {
	raw, err := UpdateSchemas.ReadFile(path.Join("updates", name+".schema.json"))
	if err != nil {
		return nil, fmt.Errorf("no schema for update %q: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, r := range []struct {
		id  string
		doc []byte
	}{{UpdateSchemaID(name), raw}, {MissionSchemaID, MissionSchema}} {
		d, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.doc))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.id, err)
		}
		if err := c.AddResource(r.id, d); err != nil {
			return nil, err
		}
	}
	return c.Compile(UpdateSchemaID(name))
}

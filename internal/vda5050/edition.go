package vda5050

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Edition is a published version of VDA 5050 whose official JSON schemas
// fleetflow validates against: "1.1.0", "2.0.0" or "2.1.0". It is also the
// header "version" fleetflow writes to a vehicle of that edition, and its
// major number is the topic's interface-version level (§6.1: "v1", "v2").
type Edition string

const (
	Edition11 Edition = "1.1.0"
	Edition20 Edition = "2.0.0"
	Edition21 Edition = "2.1.0"
)

// Editions lists the editions fleetflow speaks, oldest first.
var Editions = []Edition{Edition11, Edition20, Edition21}

// ParseEdition reads a version as configured or as a vehicle writes it in a
// header: "1.1", "1.1.0", "2", "2.0", "2.0.3" (a patch release follows its
// minor's schemas). Errors name the versions fleetflow speaks.
func ParseEdition(v string) (Edition, error) {
	parts := strings.Split(strings.TrimPrefix(strings.TrimSpace(v), "v"), ".")
	if len(parts) > 3 || parts[0] == "" {
		return "", fmt.Errorf("VDA 5050 version %q: want major.minor[.patch], one of %s", v, editionList())
	}
	minor := "0"
	if len(parts) > 1 {
		minor = parts[1]
	}
	for _, e := range Editions {
		ep := strings.Split(string(e), ".")
		if ep[0] == parts[0] && ep[1] == minor {
			return e, nil
		}
	}
	return "", fmt.Errorf("VDA 5050 version %q is not spoken by fleetflow (it speaks %s)", v, editionList())
}

func editionList() string {
	s := make([]string, len(Editions))
	for i, e := range Editions {
		s[i] = string(e)
	}
	return strings.Join(s, ", ")
}

// Major is the topic's interface-version level: "v1" for 1.1, "v2" for 2.x
// (VDA 5050 §6.1).
func (e Edition) Major() string {
	major, _, _ := strings.Cut(string(e), ".")
	return "v" + major
}

// HasTopic reports whether the edition defines topic t (1.1 has no
// factsheet).
func (e Edition) HasTopic(t Topic) bool {
	_, ok := editionSchemaFiles[e][t]
	return ok
}

// The official schemas of each edition, byte for byte as published in the
// VDA5050/VDA5050 repository (schema/README.md gives each file's source
// commit and git blob ID; TestEmbeddedSchemasAreTheOfficialOnes checks them).
//
//go:embed schema/1.1.0/* schema/2.0.0/* schema/2.1.0/*
var schemaFS embed.FS

// editionSchemaFiles maps each edition's topics to their official file names.
var editionSchemaFiles = map[Edition]map[Topic]string{
	Edition11: {
		TopicOrder:          "order.schema",
		TopicInstantActions: "instantActions.schema",
		TopicState:          "state.schema",
		TopicConnection:     "connection.schema",
		TopicVisualization:  "visualization.schema",
	},
	Edition20: {
		TopicOrder:          "order.schema",
		TopicInstantActions: "instantActions.schema",
		TopicState:          "state.schema",
		TopicConnection:     "connection.schema",
		TopicVisualization:  "visualization.schema",
		TopicFactsheet:      "factsheet.json",
	},
	Edition21: {
		TopicOrder:          "order.schema",
		TopicInstantActions: "instantActions.schema",
		TopicState:          "state.schema",
		TopicConnection:     "connection.schema",
		TopicVisualization:  "visualization.schema",
		TopicFactsheet:      "factsheet.schema",
	},
}

// SchemaFiles maps each topic to its official 2.0.0 schema file name.
var SchemaFiles = editionSchemaFiles[Edition20]

// SchemaFile returns the embedded official schema of edition e for topic t.
func SchemaFile(e Edition, t Topic) ([]byte, error) {
	name, ok := editionSchemaFiles[e][t]
	if !ok {
		return nil, fmt.Errorf("VDA 5050 %s has no %s topic", e, t)
	}
	return schemaFS.ReadFile("schema/" + string(e) + "/" + name)
}

// compiledEdition holds one edition's compiled schemas and the property
// names each message may carry at its top level (extra ones are counted as
// deviations on intake, never refused: the schemas allow them).
type compiledEdition struct {
	schemas  map[Topic]*jsonschema.Schema
	topProps map[Topic]map[string]bool
}

var (
	editionsOnce sync.Once
	compiled     map[Edition]*compiledEdition
	compileErr   error
)

func loadEditions() (map[Edition]*compiledEdition, error) {
	editionsOnce.Do(func() {
		out := make(map[Edition]*compiledEdition)
		for _, e := range Editions {
			ce, err := compileEdition(e)
			if err != nil {
				compileErr = err
				return
			}
			out[e] = ce
		}
		compiled = out
	})
	return compiled, compileErr
}

func compileEdition(e Edition) (*compiledEdition, error) {
	c := jsonschema.NewCompiler()
	ce := &compiledEdition{schemas: map[Topic]*jsonschema.Schema{}, topProps: map[Topic]map[string]bool{}}
	for t, name := range editionSchemaFiles[e] {
		raw, err := SchemaFile(e, t)
		if err != nil {
			return nil, err
		}
		raw = repairSchema(e, t, raw)
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("VDA 5050 %s schema %s: %w", e, name, err)
		}
		if t == TopicState {
			allowPaused(doc)
		}
		top := map[string]bool{}
		if m, ok := doc.(map[string]any); ok {
			if props, ok := m["properties"].(map[string]any); ok {
				for k := range props {
					top[k] = true
				}
			}
		}
		ce.topProps[t] = top
		url := "https://fleetflow.dev/vda5050/" + string(e) + "/" + name
		if err := c.AddResource(url, doc); err != nil {
			return nil, err
		}
		s, err := c.Compile(url)
		if err != nil {
			return nil, fmt.Errorf("VDA 5050 %s schema %s: %w", e, name, err)
		}
		ce.schemas[t] = s
	}
	return ce, nil
}

// repairSchema mends the two defects of the official 1.1.0 connection schema
// that keep it from parsing at all (a doubled comma after "$schema", and
// "date-time" written as a type instead of a format). Nothing else is
// changed, in any edition; TestSchemaRepairs pins what is changed.
func repairSchema(e Edition, t Topic, raw []byte) []byte {
	if e != Edition11 || t != TopicConnection {
		return raw
	}
	raw = bytes.Replace(raw, []byte(`schema",,`), []byte(`schema",`), 1)
	raw = bytes.ReplaceAll(raw, []byte(`"type": "date-time"`), []byte(`"type": "string", "format": "date-time"`))
	return raw
}

// allowPaused adds PAUSED to actionStatus's enum: the VDA 5050 2.0 text
// (§6.10.6) allows it, the official 2.0/2.1 schemas forgot it.
func allowPaused(doc any) {
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if p, ok := x["properties"].(map[string]any); ok {
				if as, ok := p["actionStatus"].(map[string]any); ok {
					if enum, ok := as["enum"].([]any); ok && len(enum) > 0 {
						// In the schema's own letter case (1.1.0 writes lower case).
						paused := string(ActionPaused)
						if first, _ := enum[0].(string); first == strings.ToLower(first) {
							paused = strings.ToLower(paused)
						}
						if !containsAny(enum, paused) {
							as["enum"] = append(enum, paused)
						}
					}
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
}

func containsAny(list []any, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func schemaFor(e Edition, t Topic) (*compiledEdition, *jsonschema.Schema, error) {
	all, err := loadEditions()
	if err != nil {
		return nil, nil, fmt.Errorf("vda5050 schemas: %w", err)
	}
	ce, ok := all[e]
	if !ok {
		return nil, nil, fmt.Errorf("VDA 5050 version %q is not spoken by fleetflow (it speaks %s)", e, editionList())
	}
	s, ok := ce.schemas[t]
	if !ok {
		return nil, nil, fmt.Errorf("VDA 5050 %s has no %s topic", e, t)
	}
	return ce, s, nil
}

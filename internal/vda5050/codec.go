package vda5050

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	gojson "github.com/goccy/go-json"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The official VDA 5050 2.0.0 schemas, copied byte for byte from
// ../shared/vda5050/2.0.0 (schema_test.go checks the copy).
//
//go:embed schema/2.0.0/*
var schemaFS embed.FS

// SchemaFiles maps each topic to its official schema file name.
var SchemaFiles = map[Topic]string{
	TopicOrder:          "order.schema",
	TopicInstantActions: "instantActions.schema",
	TopicState:          "state.schema",
	TopicConnection:     "connection.schema",
	TopicVisualization:  "visualization.schema",
	TopicFactsheet:      "factsheet.json",
}

var (
	schemasOnce sync.Once
	schemas     map[Topic]*jsonschema.Schema
	schemasErr  error
)

func loadSchemas() (map[Topic]*jsonschema.Schema, error) {
	schemasOnce.Do(func() {
		c := jsonschema.NewCompiler()
		out := make(map[Topic]*jsonschema.Schema)
		for t, name := range SchemaFiles {
			raw, err := schemaFS.ReadFile("schema/2.0.0/" + name)
			if err != nil {
				schemasErr = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
			if err != nil {
				schemasErr = fmt.Errorf("schema %s: %w", name, err)
				return
			}
			if t == TopicState {
				allowPaused(doc)
			}
			url := "https://fleetflow.dev/vda5050/2.0.0/" + name
			if err := c.AddResource(url, doc); err != nil {
				schemasErr = err
				return
			}
			s, err := c.Compile(url)
			if err != nil {
				schemasErr = fmt.Errorf("schema %s: %w", name, err)
				return
			}
			out[t] = s
		}
		schemas = out
	})
	return schemas, schemasErr
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
					if enum, ok := as["enum"].([]any); ok {
						as["enum"] = append(enum, string(ActionPaused))
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

// Validate checks raw JSON against the official schema of topic t and
// returns an error that lists every violation with its JSON path.
func Validate(t Topic, raw []byte) error {
	all, err := loadSchemas()
	if err != nil {
		return fmt.Errorf("vda5050 schemas: %w", err)
	}
	s, ok := all[t]
	if !ok {
		return fmt.Errorf("no schema for topic %q", t)
	}
	inst, err := parseInstance(raw)
	if err != nil {
		return &MessageError{Topic: t, Reason: "not JSON: " + err.Error()}
	}
	if err := s.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return &MessageError{Topic: t, Reason: "schema violation", Violations: violations(ve)}
		}
		return &MessageError{Topic: t, Reason: err.Error()}
	}
	return nil
}

func violations(ve *jsonschema.ValidationError) []string {
	var out []string
	var walk func(u jsonschema.OutputUnit)
	walk = func(u jsonschema.OutputUnit) {
		if u.Error != nil {
			loc := u.InstanceLocation
			if loc == "" {
				loc = "/"
			}
			out = append(out, loc+": "+u.Error.String())
		}
		for _, e := range u.Errors {
			walk(e)
		}
	}
	walk(*ve.BasicOutput())
	return out
}

// MessageError is a VDA 5050 message that failed to parse or validate.
type MessageError struct {
	Topic      Topic
	Reason     string
	Violations []string // "JSON pointer: message", one per violation
}

func (e *MessageError) Error() string {
	if len(e.Violations) == 0 {
		return fmt.Sprintf("vda5050 %s: %s", e.Topic, e.Reason)
	}
	return fmt.Sprintf("vda5050 %s: %s: %s", e.Topic, e.Reason, strings.Join(e.Violations, "; "))
}

// Encode marshals msg and validates it against the official schema of t:
// fleetflow never sends a message the schema refuses.
func Encode(t Topic, msg any) ([]byte, error) {
	raw, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	if err := Validate(t, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Decode validates raw against the official schema of t and unmarshals it
// into out. A malformed message returns a *MessageError naming every
// violation; it never panics.
func Decode(t Topic, raw []byte, out any) error {
	if err := Validate(t, raw); err != nil {
		return err
	}
	if err := gojson.Unmarshal(raw, out); err != nil {
		return &MessageError{Topic: t, Reason: err.Error()}
	}
	return nil
}

// parseInstance parses raw into the generic form the validator walks
// (numbers as json.Number — goccy's Number is an alias of encoding/json's —
// as jsonschema.UnmarshalJSON does), with
// goccy/go-json: the bridge decodes every robot state on this path, and the
// standard library's decoder was half of its cost (see BenchmarkDecodeAndRoute).
func parseInstance(raw []byte) (any, error) {
	dec := gojson.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

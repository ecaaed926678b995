package vda5050

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	gojson "github.com/goccy/go-json"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// Validate checks raw JSON against the official 2.0.0 schema of topic t and
// returns a *MessageError that lists every violation with its JSON path.
func Validate(t Topic, raw []byte) error { return ValidateEdition(Edition20, t, raw) }

// ValidateEdition checks raw JSON against edition e's official schema of
// topic t (with PAUSED allowed in actionStatus, see allowPaused) and returns
// a *MessageError that lists every violation with its JSON path.
func ValidateEdition(e Edition, t Topic, raw []byte) error {
	_, s, err := schemaFor(e, t)
	if err != nil {
		return err
	}
	inst, err := parseInstance(raw)
	if err != nil {
		return &MessageError{Topic: t, Reason: "not JSON: " + err.Error()}
	}
	return validateInstance(s, t, inst)
}

func validateInstance(s *jsonschema.Schema, t Topic, inst any) error {
	if err := s.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return &MessageError{Topic: t, Reason: "schema violation", Violations: violations(ve), leaves: leafViolations(ve)}
		}
		return &MessageError{Topic: t, Reason: err.Error()}
	}
	return nil
}

// Violation is one schema violation at a place in the instance.
type Violation struct {
	// Path is the instance location as JSON pointer tokens, e.g.
	// ["nodeStates", "0", "nodePosition"].
	Path []string
	// Missing lists the required properties absent there ("required"
	// violations only).
	Missing []string
	// EnumGot and EnumWant are set for "enum" violations: the value found
	// and the values allowed.
	EnumGot  any
	EnumWant []any
	Message  string
}

// Pointer is Path as a JSON pointer ("/nodeStates/0/nodePosition"; "/" for
// the root).
func (v Violation) Pointer() string {
	if len(v.Path) == 0 {
		return "/"
	}
	return "/" + strings.Join(v.Path, "/")
}

// leafViolations flattens the validator's error tree to its leaves: the
// violations that name what is wrong, not the groups that contain them.
func leafViolations(ve *jsonschema.ValidationError) []Violation {
	var out []Violation
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			v := Violation{Path: e.InstanceLocation, Message: e.Error()}
			switch k := e.ErrorKind.(type) {
			case *kind.Required:
				v.Missing = k.Missing
			case *kind.Enum:
				v.EnumGot, v.EnumWant = k.Got, k.Want
			}
			out = append(out, v)
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return out
}

// MessageError is a VDA 5050 message that failed to parse or validate.
type MessageError struct {
	Topic      Topic
	Reason     string
	Violations []string // "JSON pointer: message", one per violation

	leaves []Violation
}

// Leaves returns the violations one by one, with their paths.
func (e *MessageError) Leaves() []Violation { return e.leaves }

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

// violations renders the validator's basic output as "JSON pointer:
// message" lines, one per violation.
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

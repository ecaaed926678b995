package vda5050

import (
	"encoding/json"
	"fmt"
	"strings"

	gojson "github.com/goccy/go-json"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fleetflow/fleetflow/internal/schemacheck"
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
	inst, err := schemacheck.Parse(raw)
	if err != nil {
		return &MessageError{Topic: t, Reason: "not JSON: " + err.Error()}
	}
	return validateInstance(s, t, inst)
}

func validateInstance(s *jsonschema.Schema, t Topic, inst any) error {
	leaves, err := schemacheck.Check(s, inst)
	if err != nil {
		return &MessageError{Topic: t, Reason: err.Error()}
	}
	if len(leaves) > 0 {
		return &MessageError{Topic: t, Reason: "schema violation", Violations: schemacheck.Lines(leaves), leaves: leaves}
	}
	return nil
}

// MessageError is a VDA 5050 message that failed to parse or validate.
type MessageError struct {
	Topic      Topic
	Reason     string
	Violations []string // "JSON pointer: message", one per violation

	leaves []schemacheck.Violation
}

// Leaves returns the violations one by one, with their paths.
func (e *MessageError) Leaves() []schemacheck.Violation { return e.leaves }

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

// Package schemacheck is fleetflow's one way to apply a JSON Schema
// (draft 2020-12, with github.com/santhosh-tekuri/jsonschema/v6): mission,
// rollout and manifest specs, update and signal arguments and VDA 5050
// robot messages all parse their instance and report violations through
// it, so every "what is wrong" reads the same way:
// "<JSON pointer>: <message>", e.g. "/steps/0/action: value must be one
// of 'pick', 'drop'".
package schemacheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	gojson "github.com/goccy/go-json"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

var printer = message.NewPrinter(language.English)

// Compile compiles one self-contained JSON Schema document raw whose $id
// is id. Formats (e.g. date-time) are asserted, not just annotated. name
// (e.g. "mission.schema.json") prefixes its errors.
func Compile(name, id string, raw []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(id, doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c.Compile(id)
}

// Parse parses the JSON document raw into the generic form the validator
// walks: objects as map[string]any, arrays as []any, numbers as
// json.Number (so that 5.0 and 5 stay apart and big integers keep their
// digits). Trailing data after the value is an error. It uses
// goccy/go-json: the bridge parses every robot state on this path, and the
// standard library's decoder was half of its cost (see the bridge's
// BenchmarkDecodeAndRoute).
func Parse(raw []byte) (any, error) {
	dec := gojson.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	// More() is false before a stray '}' or ']', so decode once more: only
	// the end of the input may follow the value.
	var extra any
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// Violation is one schema violation at one place in the instance: a leaf
// of the validator's error tree, which names what is wrong, not a group
// ("allOf failed") that contains it.
type Violation struct {
	// Path is the instance location as JSON pointer tokens, e.g.
	// ["nodeStates", "0", "nodePosition"]; empty for the root.
	Path []string
	// Missing lists the required properties absent there ("required"
	// violations only).
	Missing []string
	// EnumGot and EnumWant are set for "enum" violations: the value found
	// and the values allowed.
	EnumGot  any
	EnumWant []any
	// Message says what is wrong, in English, without the location, e.g.
	// "missing property 'theta'".
	Message string
}

// Pointer is Path as a JSON pointer ("/nodeStates/0/nodePosition"; "/" for
// the root), each token escaped as RFC 6901 says ("~" as "~0", "/" as "~1").
func (v Violation) Pointer() string {
	if len(v.Path) == 0 {
		return "/"
	}
	var b strings.Builder
	for _, tok := range v.Path {
		b.WriteByte('/')
		b.WriteString(pointerEscaper.Replace(tok))
	}
	return b.String()
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// String is "<pointer>: <message>".
func (v Violation) String() string { return v.Pointer() + ": " + v.Message }

// Check validates inst (as Parse returns it) against s and returns every
// violation, leaves only, in the validator's order; none means valid. An
// error is returned only when validation itself could not run (not a
// *jsonschema.ValidationError).
func Check(s *jsonschema.Schema, inst any) ([]Violation, error) {
	err := s.Validate(inst)
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil, err
	}
	var out []Violation
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			v := Violation{Path: e.InstanceLocation, Message: e.ErrorKind.LocalizedString(printer)}
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
	walk(ve) // a root without causes is its own leaf
	return out, nil
}

// Validate parses raw (see Parse) and checks it against s. It returns the
// parsed document (nil when raw is not JSON) and the violations as Lines;
// none means valid. Raw that is not JSON, or a validation that could not
// run, is one violation at "/".
func Validate(s *jsonschema.Schema, raw []byte) (any, []string) {
	inst, err := Parse(raw)
	if err != nil {
		return nil, []string{"/: not JSON: " + err.Error()}
	}
	vs, err := Check(s, inst)
	if err != nil {
		return inst, []string{"/: " + err.Error()}
	}
	return inst, Lines(vs)
}

// Lines renders violations as "<pointer>: <message>" lines, sorted by
// pointer and without duplicates (nil for none).
func Lines(vs []Violation) []string {
	if len(vs) == 0 {
		return nil
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	slices.Sort(out)
	return slices.Compact(out)
}

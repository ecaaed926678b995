package schemacheck

import (
	"encoding/json"
	"reflect"
	"testing"
)

const testSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["id", "steps"],
  "properties": {
    "id": {"type": "string", "format": "uuid"},
    "steps": {"type": "array", "items": {"type": "object", "required": ["action"], "properties": {"action": {"enum": ["pick", "drop"]}}}}
  },
  "additionalProperties": false
}`

func TestCheckReportsLeavesWithTheirKinds(t *testing.T) {
	s, err := Compile("test.schema.json", "https://fleetflow.dev/test.schema.json", []byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := Parse([]byte(`{"id": "not-a-uuid", "steps": [{"action": "fly"}, {}]}`))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := Check(s, inst)
	if err != nil {
		t.Fatal(err)
	}
	byPointer := map[string]Violation{}
	for _, v := range vs {
		byPointer[v.Pointer()] = v
	}
	if len(vs) != 3 || len(byPointer) != 3 {
		t.Fatalf("want 3 leaves (format, enum, required), got %q", Lines(vs))
	}
	if v := byPointer["/steps/0/action"]; v.EnumGot != "fly" || !reflect.DeepEqual(v.EnumWant, []any{"pick", "drop"}) {
		t.Errorf("enum leaf: %+v", v)
	}
	if v := byPointer["/steps/1"]; !reflect.DeepEqual(v.Missing, []string{"action"}) {
		t.Errorf("required leaf: %+v", v)
	}
	if v := byPointer["/id"]; v.Message == "" || v.String() != "/id: "+v.Message {
		t.Errorf("format leaf: %+v", v)
	}
}

func TestValidateLines(t *testing.T) {
	s, err := Compile("test.schema.json", "https://fleetflow.dev/test.schema.json", []byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	_, got := Validate(s, []byte(`{"steps": [], "extra": 1}`))
	want := []string{"/: additional properties 'extra' not allowed", "/: missing property 'id'"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q (sorted by pointer)", got, want)
	}
	if _, got := Validate(s, []byte(`{"id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "steps": []}`)); got != nil {
		t.Errorf("valid document: %q", got)
	}
	inst, got := Validate(s, []byte(`{"id": `))
	if inst != nil || len(got) != 1 || got[0][:len("/: not JSON: ")] != "/: not JSON: " {
		t.Errorf("not JSON: %v %q", inst, got)
	}
}

func TestParseRefusesTrailingData(t *testing.T) {
	for _, raw := range []string{`{} {}`, `{"priority": 90}}`, `[1]]`, `{} x`} {
		if _, err := Parse([]byte(raw)); err == nil {
			t.Errorf("%s parsed as one JSON value", raw)
		}
	}
	if _, err := Parse([]byte(" {\"a\": 1} \n")); err != nil {
		t.Errorf("whitespace around the value: %v", err)
	}
	v, err := Parse([]byte(`{"n": 12345678901234567890}`))
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := v.(map[string]any)["n"].(json.Number); !ok || n != "12345678901234567890" {
		t.Errorf("number parsed as %#v, want the json.Number 12345678901234567890", v)
	}
}

func TestPointerEscapesTokens(t *testing.T) {
	v := Violation{Path: []string{"parameters", "a/b~c", "0"}}
	if got, want := v.Pointer(), "/parameters/a~1b~0c/0"; got != want {
		t.Errorf("Pointer() = %q, want %q (RFC 6901)", got, want)
	}
	if got := (Violation{}).Pointer(); got != "/" {
		t.Errorf("root: %q", got)
	}
}

package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fleetflow/fleetflow/internal/site"
)

func siteSteps(spec MissionSpec) []site.Step {
	out := make([]site.Step, len(spec.Steps))
	for i, s := range spec.Steps {
		out[i] = site.Step{Station: s.Station, Action: s.Action}
	}
	return out
}

func TestTestdataMissionsAreValid(t *testing.T) {
	m, err := site.Load("../testdata/sites/warehouse-a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../testdata/missions/*.json")
	if err != nil || len(files) < 4 || len(files) > 6 {
		t.Fatalf("%d missions in testdata (want 4–6): %v", len(files), err)
	}
	ids := map[string]bool{}
	priorities := map[int]bool{}
	lift := false
	for _, f := range files {
		spec, err := LoadMission(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if want := strings.TrimSuffix(filepath.Base(f), ".json"); spec.MissionID != want || ids[spec.MissionID] {
			t.Errorf("%s: missionId %q (want %q, unique)", f, spec.MissionID, want)
		}
		ids[spec.MissionID] = true
		priorities[spec.Priority] = true
		lift = lift || strings.Contains(strings.Join(spec.RequiredCapabilities, ","), "lift")
		if spec.Site != m.Site {
			t.Errorf("%s: site %q", f, spec.Site)
		}
		if err := m.CheckMission(siteSteps(spec), spec.RequiredCapabilities); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		// Every mission must build an order from every robot's home.
		for _, r := range m.Robots {
			req := site.OrderRequest{OrderID: "mission-" + spec.MissionID, StartNode: r.HomeNode, Steps: siteSteps(spec)}
			if spec.Load != nil {
				req.LoadID, req.LoadType = spec.Load.LoadID, spec.Load.LoadType
			}
			if _, err := m.BuildOrder(req); err != nil {
				t.Errorf("%s from %s: %v", f, r.HomeNode, err)
			}
		}
	}
	if len(priorities) < 3 || !lift {
		t.Errorf("testdata missions should vary priorities (%v) and include a lift mission (%v)", priorities, lift)
	}
}

func TestInvalidMissionsNameEveryViolation(t *testing.T) {
	want := map[string][]string{
		"bad-action.json":    {"/steps/1/action: value must be one of 'pick', 'drop'"},
		"missing-steps.json": {"/: missing property 'steps'"},
		"bad-id.json": {
			"/: additional properties 'colour' not allowed",
			"/missionId: 'bad id/3' does not match pattern '^[A-Za-z0-9_.:-]{1,64}$'",
			"/priority: maximum: got 500, want 100",
		},
	}
	files, _ := filepath.Glob("../testdata/missions/invalid/*.json")
	if len(files) != len(want) {
		t.Errorf("%d invalid specs in testdata, %d checked here", len(files), len(want))
	}
	for file, violations := range want {
		path := filepath.Join("../testdata/missions/invalid", file)
		_, err := LoadMission(path)
		var se *SpecError
		if !errors.As(err, &se) {
			t.Errorf("%s: want *SpecError, got %v", file, err)
			continue
		}
		if !reflect.DeepEqual(se.Violations, violations) {
			t.Errorf("%s: violations\n%s\nwant\n%s", file, strings.Join(se.Violations, "\n"), strings.Join(violations, "\n"))
		}
		lines := strings.Split(se.Error(), "\n")
		if len(lines) != len(violations) {
			t.Errorf("%s: want one line per violation:\n%v", file, se)
		}
		for _, l := range lines {
			if !strings.HasPrefix(l, path+": /") {
				t.Errorf("%s: line does not name the file: %q", file, l)
			}
		}
	}
	if _, err := LoadMission("../testdata/missions/nope.json"); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope.json") {
		t.Errorf("missing file: %v", err)
	}
}

func TestParseMissionYAMLAndDefaults(t *testing.T) {
	yamlSpec := `
missionId: y-1
site: warehouse-a
load: {loadId: PAL-9, loadType: EPAL}
steps:
  - {station: inbound-1, action: pick}
  - station: rack-2
    action: drop
`
	spec, err := ParseMission([]byte(yamlSpec))
	if err != nil {
		t.Fatal(err)
	}
	want := MissionSpec{MissionID: "y-1", Site: "warehouse-a", Priority: 0, MinBattery: DefaultMinBattery,
		Load:  &Load{LoadID: "PAL-9", LoadType: "EPAL"},
		Steps: []MissionStep{{Station: "inbound-1", Action: "pick"}, {Station: "rack-2", Action: "drop"}}}
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("YAML:\n%+v\nwant\n%+v", spec, want)
	}

	// The same spec as JSON parses to the same value.
	asJSON, _ := json.Marshal(want)
	if again, err := ParseMission(asJSON); err != nil || !reflect.DeepEqual(again, want) {
		t.Errorf("JSON round trip: %+v %v", again, err)
	}

	// Explicit values win over defaults; 0 is a value, not absence.
	spec, err = ParseMission([]byte(`{"missionId":"j-1","site":"s","priority":7.0,"minBattery":0,"timeoutSeconds":60,"steps":[{"station":"a","action":"drop"}]}`))
	if err != nil || spec.MinBattery != 0 || spec.Priority != 7 || spec.TimeoutSeconds != 60 || spec.Load != nil {
		t.Errorf("explicit values: %+v %v", spec, err)
	}

	// YAML errors are schema violations like JSON ones.
	_, err = ParseMission([]byte("missionId: 42\nsite: warehouse-a\nsteps:\n  - {station: inbound-1, action: lift}\n"))
	var se *SpecError
	if !errors.As(err, &se) || !reflect.DeepEqual(se.Violations, []string{
		"/missionId: got number, want string",
		"/steps/0/action: value must be one of 'pick', 'drop'",
	}) {
		t.Errorf("YAML violations: %v", err)
	}
	for _, garbage := range []string{"{not json", "", "- a\n- b\n"} {
		if _, err := ParseMission([]byte(garbage)); !errors.As(err, &se) || !strings.HasPrefix(se.Error(), "mission spec: /") {
			t.Errorf("%q: %v", garbage, err)
		}
	}
}

// The schema's defaults and the Go constant must agree, and the schema
// must be a valid draft 2020-12 schema with a description on every field.
func TestMissionSchema(t *testing.T) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(MissionSchema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AddResource(MissionSchemaID, doc)
	if _, err := c.Compile(MissionSchemaID); err != nil {
		t.Fatal(err)
	}
	var s struct {
		Schema     string `json:"$schema"`
		Additional bool   `json:"additionalProperties"`
		Properties map[string]struct {
			Description string `json:"description"`
			Default     any    `json:"default"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(MissionSchema, &s); err != nil {
		t.Fatal(err)
	}
	if s.Schema != "https://json-schema.org/draft/2020-12/schema" || s.Additional {
		t.Errorf("$schema %q, additionalProperties %v", s.Schema, s.Additional)
	}
	if d, _ := s.Properties["minBattery"].Default.(float64); d != DefaultMinBattery {
		t.Errorf("schema minBattery default %v, Go %v", s.Properties["minBattery"].Default, DefaultMinBattery)
	}
	// Every property of the schema is a field of MissionSpec and documented.
	fields := map[string]bool{}
	typ := reflect.TypeFor[MissionSpec]()
	for i := range typ.NumField() {
		fields[strings.Split(typ.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	for name, p := range s.Properties {
		if p.Description == "" || !fields[name] {
			t.Errorf("property %s: description %q, Go field %v", name, p.Description, fields[name])
		}
	}
	if len(fields) != len(s.Properties) {
		t.Errorf("MissionSpec has %d fields, the schema %d properties", len(fields), len(s.Properties))
	}
}

package schemas

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTestdataRolloutsAreValid(t *testing.T) {
	files, err := filepath.Glob("../testdata/rollouts/*.json")
	if err != nil || len(files) != 4 {
		t.Fatalf("%d rollouts in testdata (want 4): %v", len(files), err)
	}
	specs := map[string]RolloutSpec{}
	for _, f := range files {
		spec, err := LoadRollout(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if want := strings.TrimSuffix(filepath.Base(f), ".json"); spec.RolloutID != want {
			t.Errorf("%s: rolloutId %q, want %q", f, spec.RolloutID, want)
		}
		specs[spec.RolloutID] = spec
	}
	want := RolloutSpec{
		RolloutID:     "r-fleetos-2.0.0",
		Artifact:      RolloutArtifact{File: "fleetos-2.0.0.bin"},
		Targets:       TargetSelector{Site: "warehouse-a", VersionRange: "<2.0.0"},
		Waves:         WavePlan{Canary: 1, Percentages: []int{50, 100}},
		MaxConcurrent: 2,
		SoakTime:      Duration(5 * time.Second),
		Abort:         AbortCriteria{FailureType: FailureAll, ThresholdPercentage: 50, MinExecuted: 1},
		RobotTimeout:  Duration(2 * time.Minute),
		Retries:       1,
		HealthCheck:   Duration(5 * time.Second),
		ChangeRequest: "CR-1042",
		RequestedBy:   "release-bot",
	}
	if got := specs["r-fleetos-2.0.0"]; !reflect.DeepEqual(got, want) {
		t.Errorf("r-fleetos-2.0.0:\n%+v\nwant\n%+v", got, want)
	}
	if s := specs["r-fleetos-2.1.0-bad"]; s.Artifact.File != "fleetos-2.1.0-bad.bin" || !s.RollbackOnAbort || s.Rollback ||
		!reflect.DeepEqual(s.Waves, WavePlan{Canary: 2, Percentages: []int{100}}) {
		t.Errorf("r-fleetos-2.1.0-bad: %+v", s)
	}
	if s := specs["r-fleetos-2.2.0-unsigned"]; s.Artifact.File != "fleetos-2.2.0-unsigned.bin" ||
		s.RobotTimeout != Duration(DefaultRobotTimeout) || s.HealthCheck != Duration(DefaultHealthCheck) ||
		!reflect.DeepEqual(s.MaintenanceWindow, &Window{Start: "22:00", End: "06:00", TimeZone: "Europe/Berlin"}) {
		t.Errorf("r-fleetos-2.2.0-unsigned: %+v (window %+v)", s, s.MaintenanceWindow)
	}
	if s := specs["r-rollback-1.4.2"]; !s.Rollback || s.Targets.VersionRange != ">1.4.2" || s.Waves.Canary != 0 {
		t.Errorf("r-rollback-1.4.2: %+v", s)
	}
}

func TestInvalidRolloutsNameEveryViolation(t *testing.T) {
	want := map[string][]string{
		"bad-percentages.json": {
			"/waves/percentages/1: 30% is not more than the 50% before it (percentages are cumulative)",
			"/waves/percentages/2: the last wave must reach 100%, got 90%",
		},
		"empty-selector.json": {
			"/targets: missing property 'robots'",
			"/targets: missing property 'site'",
		},
		"bad-version-range.json": {
			`/targets/versionRange: "before 2.0" is not a semantic version constraint: improper constraint: "before 2.0"`,
		},
		"bad-window.json": {
			"/maintenanceWindow/end: equal to start 22:00: the window would be empty",
			`/maintenanceWindow/timeZone: "Mars/Olympus_Mons" is not an IANA time zone`,
			"/robotTimeout: must be more than 0s, got 0s",
		},
		"bad-fields.json": {
			"/abort/failureType: value must be one of 'FAILED', 'TIMED_OUT', 'ALL'",
			"/abort/minExecuted: minimum: got 0, want 1",
			"/abort/thresholdPercentage: exclusiveMinimum: got 0, want 0",
			"/artifact/file: '../etc/fleetos.bin' does not match pattern '^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,254}$'",
			"/maxConcurrent: minimum: got 0, want 1",
			"/retries: maximum: got 9, want 5",
			"/rolloutId: '-r bad' does not match pattern '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'",
			`/soakTime: unknown unit " minutes" in duration "5 minutes": want a Go duration like "30s" or "1h30m"`,
			"/targets/robots/0: 'AMR-001' does not match pattern '^[A-Za-z0-9_.:-]+/[A-Za-z0-9_.:-]+$'",
			"/waves/canary: minimum: got -1, want 0",
			"/waves/percentages/0: minimum: got 0, want 1",
		},
	}
	files, _ := filepath.Glob("../testdata/rollouts/invalid/*.json")
	if len(files) != len(want) {
		t.Errorf("%d invalid specs in testdata, %d checked here", len(files), len(want))
	}
	for file, violations := range want {
		path := filepath.Join("../testdata/rollouts/invalid", file)
		_, err := LoadRollout(path)
		var se *SpecError
		if !errors.As(err, &se) {
			t.Errorf("%s: want *SpecError, got %v", file, err)
			continue
		}
		if !reflect.DeepEqual(se.Violations, violations) {
			t.Errorf("%s: violations\n%s\nwant\n%s", file, strings.Join(se.Violations, "\n"), strings.Join(violations, "\n"))
		}
		for _, l := range strings.Split(se.Error(), "\n") {
			if !strings.HasPrefix(l, path+": /") {
				t.Errorf("%s: line does not name the file: %q", file, l)
			}
		}
	}
	if _, err := LoadRollout("../testdata/rollouts/nope.json"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestParseRolloutYAMLAndDefaults(t *testing.T) {
	spec, err := ParseRollout([]byte(`
rolloutId: y-1
artifact: {file: fleetos-2.0.0.bin, baseUrl: "https://artifacts.example.com/fleetos/"}
targets:
  robots: [acme/AMR-001, robotix/LFT-01]
waves: {canary: 1}
abort: {failureType: TIMED_OUT, thresholdPercentage: 12.5, minExecuted: 2.0}
maintenanceWindow: {start: "22:00", end: "06:00", timeZone: UTC}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := RolloutSpec{
		RolloutID:         "y-1",
		Artifact:          RolloutArtifact{File: "fleetos-2.0.0.bin", BaseURL: "https://artifacts.example.com/fleetos/"},
		Targets:           TargetSelector{Robots: []string{"acme/AMR-001", "robotix/LFT-01"}},
		Waves:             WavePlan{Canary: 1},
		MaxConcurrent:     1,
		SoakTime:          0,
		Abort:             AbortCriteria{FailureType: FailureTimedOut, ThresholdPercentage: 12.5, MinExecuted: 2},
		RobotTimeout:      Duration(10 * time.Minute),
		HealthCheck:       Duration(30 * time.Second),
		MaintenanceWindow: &Window{Start: "22:00", End: "06:00", TimeZone: "UTC"},
	}
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("YAML:\n%+v\nwant\n%+v", spec, want)
	}
	asJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(asJSON), `"robotTimeout":"10m0s"`) || !strings.Contains(string(asJSON), `"soakTime":"0s"`) {
		t.Errorf("durations are not written as strings: %s", asJSON)
	}
	if again, err := ParseRollout(asJSON); err != nil || !reflect.DeepEqual(again, want) {
		t.Errorf("JSON round trip: %+v %v", again, err)
	}
}

// Each rule the schema cannot express, broken alone in an otherwise valid
// spec, gives exactly its violation.
func TestRolloutSemanticChecks(t *testing.T) {
	valid := map[string]any{
		"rolloutId": "r-1",
		"artifact":  map[string]any{"file": "fleetos-2.0.0.bin"},
		"targets":   map[string]any{"site": "warehouse-a"},
		"waves":     map[string]any{"canary": 1, "percentages": []int{50, 100}},
		"abort":     map[string]any{"failureType": "ALL", "thresholdPercentage": 50, "minExecuted": 1},
	}
	cases := []struct {
		name, field string
		value       any
		want        []string
	}{
		{"valid", "", nil, nil},
		{"no canary, no percentages", "waves", map[string]any{"canary": 0}, []string{
			"/waves: no canary and no percentages: no robot would be updated"}},
		{"percentages repeat", "waves", map[string]any{"percentages": []int{50, 50, 100}}, []string{
			"/waves/percentages/1: 50% is not more than the 50% before it (percentages are cumulative)"}},
		{"last below 100", "waves", map[string]any{"percentages": []int{10, 60}}, []string{
			"/waves/percentages/1: the last wave must reach 100%, got 60%"}},
		{"canary alone", "waves", map[string]any{"canary": 3}, nil},
		{"percentages alone", "waves", map[string]any{"percentages": []int{100}}, nil},
		{"duration overflow", "healthCheck", "9999999999h", []string{
			`/healthCheck: invalid duration "9999999999h": want a Go duration like "30s" or "1h30m"`}},
		{"negative soak", "soakTime", "-5s", []string{"/soakTime: must be 0s or more, got -5s"}},
		{"zero soak", "soakTime", "0", nil},
		{"zero health check", "healthCheck", "0s", []string{"/healthCheck: must be more than 0s, got 0s"}},
		{"relative base URL", "artifact", map[string]any{"file": "a.bin", "baseUrl": "https:///fleetos"}, []string{
			`/artifact/baseUrl: "https:///fleetos" is not an absolute http(s) URL with a host`}},
		{"presigned base URL", "artifact", map[string]any{"file": "a.bin", "baseUrl": "https://acct.blob.core.windows.net/fleetos?sv=1&sig=SECRET"}, []string{
			"/artifact/baseUrl: carries a query string or fragment; a store's presigned token is a secret (FLEETFLOW_ARTIFACTS_URL_QUERY on the workers), never part of a rollout spec, which is kept in the workflow history"}},
		{"local zone", "maintenanceWindow", map[string]any{"start": "01:00", "end": "02:00", "timeZone": "Local"}, []string{
			`/maintenanceWindow/timeZone: "Local" is not an IANA time zone`}},
		{"wrapping window", "maintenanceWindow", map[string]any{"start": "23:30", "end": "00:30", "timeZone": "America/New_York"}, nil},
		{"version range", "targets", map[string]any{"site": "s", "versionRange": ">=1.2, <1.5 || 2.x"}, nil},
		{"bad version range", "targets", map[string]any{"site": "s", "versionRange": "1.2.3.4"}, []string{
			`/targets/versionRange: "1.2.3.4" is not a semantic version constraint: improper constraint: "1.2.3.4"`}},
	}
	for _, c := range cases {
		doc := map[string]any{}
		for k, v := range valid {
			doc[k] = v
		}
		if c.field != "" {
			doc[c.field] = c.value
		}
		raw, _ := json.Marshal(doc)
		_, err := ParseRollout(raw)
		var got []string
		if se := (*SpecError)(nil); errors.As(err, &se) {
			got = se.Violations
		} else if err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: violations\n%s\nwant\n%s", c.name, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
}

func TestRolloutTargetSelectorMatches(t *testing.T) {
	amr := RobotFacts{ID: "acme/AMR-001", Site: "warehouse-a", Manufacturer: "acme", Model: "Tug-200", SoftwareVersion: "1.4.2"}
	with := func(version string) RobotFacts { r := amr; r.SoftwareVersion = version; return r }
	cases := []struct {
		name  string
		sel   TargetSelector
		robot RobotFacts
		want  bool
	}{
		{"site", TargetSelector{Site: "warehouse-a"}, amr, true},
		{"other site", TargetSelector{Site: "warehouse-b"}, amr, false},
		{"manufacturer and model", TargetSelector{Site: "warehouse-a", Manufacturer: "acme", Model: "Tug-200"}, amr, true},
		{"other model", TargetSelector{Site: "warehouse-a", Model: "Lift-5"}, amr, false},
		{"other manufacturer", TargetSelector{Site: "warehouse-a", Manufacturer: "robotix"}, amr, false},
		{"listed", TargetSelector{Robots: []string{"robotix/LFT-01", "acme/AMR-001"}}, amr, true},
		{"not listed", TargetSelector{Robots: []string{"acme/AMR-002"}}, amr, false},
		{"listed but other site", TargetSelector{Site: "warehouse-b", Robots: []string{"acme/AMR-001"}}, amr, false},
		{"below range", TargetSelector{Site: "warehouse-a", VersionRange: "<2.0.0"}, amr, true},
		{"at range bound", TargetSelector{Site: "warehouse-a", VersionRange: "<2.0.0"}, with("2.0.0"), false},
		{"above range", TargetSelector{Site: "warehouse-a", VersionRange: ">1.4.2"}, amr, false},
		{"v prefix, short", TargetSelector{Site: "warehouse-a", VersionRange: "<2.0.0"}, with("v1.9"), true},
		{"not semver", TargetSelector{Site: "warehouse-a", VersionRange: "<2.0.0"}, with("build-77"), false},
		{"no version", TargetSelector{Site: "warehouse-a", VersionRange: "<2.0.0"}, with(""), false},
		{"not semver, no range", TargetSelector{Site: "warehouse-a"}, with("build-77"), true},
		{"prerelease", TargetSelector{Site: "warehouse-a", VersionRange: "<2.0.0"}, with("1.9.0-rc.1"), false},
		{"prerelease range", TargetSelector{Site: "warehouse-a", VersionRange: ">=1.9.0-0, <2.0.0"}, with("1.9.0-rc.1"), true},
	}
	for _, c := range cases {
		if got, err := c.sel.Matches(c.robot); got != c.want || err != nil {
			t.Errorf("%s: Matches = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	if ok, err := (TargetSelector{Site: "warehouse-b", VersionRange: "newest"}).Matches(amr); ok || err == nil ||
		!strings.Contains(err.Error(), `versionRange "newest"`) {
		t.Errorf("bad range: %v, %v", ok, err)
	}
}

func TestRolloutDurationJSON(t *testing.T) {
	var d Duration
	if err := json.Unmarshal([]byte(`"1h30m"`), &d); err != nil || time.Duration(d) != 90*time.Minute || d.String() != "1h30m0s" {
		t.Errorf("1h30m: %v %v", d, err)
	}
	for _, bad := range []string{`90`, `"90"`, `"-"`, `""`} {
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if err := json.Unmarshal([]byte(`null`), &d); err != nil || time.Duration(d) != 90*time.Minute {
		t.Errorf("null: %v %v", d, err)
	}
	if b, err := json.Marshal(Duration(1500 * time.Millisecond)); err != nil || string(b) != `"1.5s"` {
		t.Errorf("marshal: %s %v", b, err)
	}
}

// The schema compiles as draft 2020-12, closes every object, documents
// every property, names only Go fields, and agrees with the Go defaults.
func TestRolloutSchema(t *testing.T) {
	if _, err := compiledRolloutSchema(); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(RolloutSchema, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" || doc["$id"] != RolloutSchemaID {
		t.Errorf("$schema %v, $id %v", doc["$schema"], doc["$id"])
	}
	var walk func(path string, s map[string]any, typ reflect.Type)
	walk = func(path string, s map[string]any, typ reflect.Type) {
		props, _ := s["properties"].(map[string]any)
		if s["additionalProperties"] != false {
			t.Errorf("%s: additionalProperties is not false", path)
		}
		fields := map[string]reflect.Type{}
		for i := range typ.NumField() {
			f := typ.Field(i)
			fields[strings.Split(f.Tag.Get("json"), ",")[0]] = f.Type
		}
		if len(props) != len(fields) {
			t.Errorf("%s: %d properties, %d Go fields", path, len(props), len(fields))
		}
		for name, p := range props {
			p := p.(map[string]any)
			ft, ok := fields[name]
			if d, _ := p["description"].(string); d == "" || !ok {
				t.Errorf("%s/%s: description %q, Go field %v", path, name, d, ok)
				continue
			}
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(path+"/"+name, p, ft)
			}
		}
	}
	walk("", doc, reflect.TypeFor[RolloutSpec]())
	props := doc["properties"].(map[string]any)
	for name, want := range map[string]time.Duration{"robotTimeout": DefaultRobotTimeout, "healthCheck": DefaultHealthCheck, "soakTime": 0} {
		d, err := time.ParseDuration(props[name].(map[string]any)["default"].(string))
		if err != nil || d != want {
			t.Errorf("%s: schema default %v (%v), Go %v", name, d, err, want)
		}
	}
}

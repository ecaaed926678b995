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

const goodManifest = `{
  "name": "fleetos",
  "version": "2.0.0",
  "file": "fleetos-2.0.0.bin",
  "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
  "length": 42,
  "hardware": [{"manufacturer": "acme", "model": "Tug-200"}, {"manufacturer": "robotix", "model": "Lift-5"}],
  "releaseCounter": 20,
  "expires": "2036-01-01T00:00:00Z",
  "keyId": "0123456789abcdef"
}`

func TestManifestParsesGood(t *testing.T) {
	m, err := ParseManifest([]byte(goodManifest))
	if err != nil {
		t.Fatal(err)
	}
	want := Manifest{
		Name: "fleetos", Version: "2.0.0", File: "fleetos-2.0.0.bin",
		SHA256:         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Length:         42,
		Hardware:       []Hardware{{"acme", "Tug-200"}, {"robotix", "Lift-5"}},
		ReleaseCounter: 20,
		Expires:        time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyID:          "0123456789abcdef",
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got  %+v\nwant %+v", m, want)
	}
	if !m.Supports(Hardware{"robotix", "Lift-5"}) || m.Supports(Hardware{"robotix", "Tug-200"}) || m.Supports(Hardware{"Acme", "Tug-200"}) {
		t.Error("Supports must match manufacturer and model exactly")
	}
}

// editManifest returns goodManifest with field set to v (deleted when v is nil).
func editManifest(t *testing.T, field string, v any) []byte {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal([]byte(goodManifest), &obj); err != nil {
		t.Fatal(err)
	}
	if v == nil {
		delete(obj, field)
	} else {
		obj[field] = v
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestManifestRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		raw   []byte
		wants []string // substrings of Violations, in order
	}{
		{"not JSON", []byte("name: fleetos"), []string{"/: "}},
		{"v prefix", editManifest(t, "version", "v2.0.0"), []string{"/version: v2.0.0 is not a semantic version"}},
		{"short version", editManifest(t, "version", "2.0"), []string{"/version: "}},
		{"slash in file", editManifest(t, "file", "../fleetos.bin"), []string{"/file: "}},
		{"upper-case sha", editManifest(t, "sha256", strings.ToUpper("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")), []string{"/sha256: "}},
		{"zero length", editManifest(t, "length", 0), []string{"/length: "}},
		{"no hardware", editManifest(t, "hardware", []any{}), []string{"/hardware: "}},
		{"hardware without model", editManifest(t, "hardware", []any{map[string]any{"manufacturer": "acme"}}), []string{"/hardware/0: "}},
		{"zero counter", editManifest(t, "releaseCounter", 0), []string{"/releaseCounter: "}},
		{"bad expiry", editManifest(t, "expires", "2036-01-01"), []string{"/expires: "}},
		{"no keyId", editManifest(t, "keyId", nil), []string{"/: missing property 'keyId'"}},
		{"unknown field", editManifest(t, "signature", "x"), []string{"/: additional properties 'signature' not allowed"}},
		{"rollbackFrom not a constraint", editManifest(t, "rollbackFrom", ">=2.0.1 <<2.2"), []string{`/rollbackFrom: ">=2.0.1 <<2.2" is not a semantic version constraint`}},
		{"rollbackFrom empty", editManifest(t, "rollbackFrom", ""), []string{"/rollbackFrom: "}},
		{"rollbackFrom not a string", editManifest(t, "rollbackFrom", 2), []string{"/rollbackFrom: "}},
		{"rollbackFrom too long", editManifest(t, "rollbackFrom", ">=1.0.0"+strings.Repeat(" ", 256)), []string{"/rollbackFrom: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest(tc.raw)
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *SpecError", err)
			}
			if se.Source != "manifest" || len(se.Violations) != len(tc.wants) {
				t.Fatalf("violations %q, want %d like %q", se.Violations, len(tc.wants), tc.wants)
			}
			for i, w := range tc.wants {
				if !strings.HasPrefix(se.Violations[i], w) && !strings.Contains(se.Violations[i], w) {
					t.Errorf("violation %q, want %q", se.Violations[i], w)
				}
			}
		})
	}
}

// rollbackFrom is optional, and a valid constraint when set.
func TestManifestRollbackFrom(t *testing.T) {
	m, err := ParseManifest(editManifest(t, "rollbackFrom", ">=2.0.1 <2.2.0"))
	if err != nil || m.RollbackFrom != ">=2.0.1 <2.2.0" {
		t.Fatalf("%+v %v", m, err)
	}
	for _, r := range []string{"2.1.0", "~2.1", "^1.4 || >=2.0.0 <2.2.0"} {
		if _, err := ParseManifest(editManifest(t, "rollbackFrom", r)); err != nil {
			t.Errorf("%q: %v", r, err)
		}
	}
	if m, err := ParseManifest([]byte(goodManifest)); err != nil || m.RollbackFrom != "" {
		t.Errorf("without rollbackFrom: %+v %v", m, err)
	}
}

// Every violation is reported at once, the semver one included.
func TestManifestListsEveryViolation(t *testing.T) {
	raw := []byte(`{"name":"fleetos","version":"v2","file":"a/b","sha256":"x","length":0,"hardware":[],"releaseCounter":0,"rollbackFrom":"newer","expires":"soon","keyId":"k"}`)
	_, err := ParseManifest(raw)
	var se *SpecError
	if !errors.As(err, &se) {
		t.Fatalf("got %v", err)
	}
	var paths []string
	for _, v := range se.Violations {
		paths = append(paths, v[:strings.Index(v, ": ")])
	}
	want := []string{"/expires", "/file", "/hardware", "/keyId", "/length", "/releaseCounter", "/rollbackFrom", "/sha256", "/version"}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("violations at %v, want %v:\n%s", paths, want, se)
	}
}

// Integers written as 20.0 are integers for JSON Schema and decode as such.
func TestManifestIntegralFloats(t *testing.T) {
	m, err := ParseManifest(editManifest(t, "releaseCounter", json.Number("21.0")))
	if err != nil || m.ReleaseCounter != 21 {
		t.Fatalf("%+v %v", m, err)
	}
}

func TestTestdataManifestsAreValid(t *testing.T) {
	files, err := filepath.Glob("../testdata/artifacts/*.manifest.json")
	if err != nil || len(files) < 6 {
		t.Fatalf("%d manifests in testdata/artifacts (want 6): %v", len(files), err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseManifest(raw)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if want := strings.TrimSuffix(filepath.Base(f), ".manifest.json"); m.File != want {
			t.Errorf("%s names file %q", f, m.File)
		}
	}
}

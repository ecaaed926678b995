package schemas

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func addSeeds(f *testing.F, dir string) {
	seeds, _ := filepath.Glob(filepath.Join("../testdata/fuzz", dir, "*.json"))
	for _, p := range seeds {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
}

// FuzzParseMission: any input is accepted or refused with a *SpecError,
// never a panic; what is accepted survives a round trip unchanged.
func FuzzParseMission(f *testing.F) {
	addSeeds(f, "mission")
	f.Fuzz(func(t *testing.T, raw []byte) {
		spec, err := ParseMission(raw)
		if err != nil {
			return
		}
		again, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseMission(again)
		if err != nil {
			t.Fatalf("an accepted spec, written back, is refused: %v\n%s", err, again)
		}
		if !reflect.DeepEqual(spec, back) {
			t.Fatalf("round trip changed the spec:\n%+v\n%+v", spec, back)
		}
	})
}

// FuzzParseRollout: the same for rollout specs.
func FuzzParseRollout(f *testing.F) {
	addSeeds(f, "rollout")
	f.Fuzz(func(t *testing.T, raw []byte) {
		spec, err := ParseRollout(raw)
		if err != nil {
			return
		}
		again, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseRollout(again); err != nil {
			t.Fatalf("an accepted rollout, written back, is refused: %v\n%s", err, again)
		}
	})
}

package schemas

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/fleetflow/fleetflow/internal/schemacheck"
)

// MissionSchema is mission.schema.json, the JSON Schema (draft 2020-12) of
// a mission spec. It is the contract with WMS integrations and operators:
// ParseMission accepts exactly what it accepts.
//
//go:embed mission.schema.json
var MissionSchema []byte

// MissionSchemaID is the $id of MissionSchema.
const MissionSchemaID = "https://fleetflow.dev/schemas/mission.schema.json"

// MissionSpec is a transport mission as a WMS or an operator writes it
// (mission.schema.json). One robot of Site visits Steps in order.
type MissionSpec struct {
	// MissionID is unique; it names the workflow (mission-<id>) and the
	// VDA 5050 orderId, so only A-Z a-z 0-9 _ . : - (1–64 characters).
	MissionID string `json:"missionId"`
	// Site is the site map's name.
	Site string `json:"site"`
	// Priority 0–100 orders missions waiting for a robot: higher first.
	Priority int `json:"priority"`
	// RequiredCapabilities the robot must have (e.g. "lift").
	RequiredCapabilities []string `json:"requiredCapabilities,omitempty"`
	// MinBattery is the least battery charge of an eligible robot, in
	// percent (0–100); DefaultMinBattery when the spec gives none.
	MinBattery float64 `json:"minBattery"`
	// InterruptCharging lets an urgent mission take a robot that is
	// charging, or below the charge threshold, when no other robot is
	// free: the Charge workflow stops charging and releases it. Robots
	// still need MinBattery.
	InterruptCharging bool `json:"interruptCharging,omitempty"`
	// Load is the load carried; nil when the spec names none.
	Load *Load `json:"load,omitempty"`
	// Steps are 1–32 station visits.
	Steps []MissionStep `json:"steps"`
	// TimeoutSeconds is the overall deadline in seconds (1–86400); 0 means
	// the workflow's default.
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// RequestedBy names who asked for the mission, for the audit log.
	RequestedBy string `json:"requestedBy,omitempty"`
}

// Load is what a mission carries. Its fields are sent as the VDA 5050 2.0
// pick/drop action parameters loadId and loadType (§6.8.1); empty ones are
// left out.
type Load struct {
	LoadID   string `json:"loadId,omitempty"`
	LoadType string `json:"loadType,omitempty"`
}

// MissionStep is one station visit: Action ("pick" or "drop", VDA 5050
// predefined actions) is done at the node of Station.
type MissionStep struct {
	Station string `json:"station"`
	Action  string `json:"action"`
	// WaitFor, when set, makes the robot wait at Station for a WMS
	// signal: loadReady before Action, loadTaken after it.
	WaitFor WaitFor `json:"waitFor,omitzero"`
}

// WaitFor is a step's wait for a WMS mission signal (mission.schema.json,
// steps[].waitFor).
type WaitFor struct {
	// Signal is SignalLoadReady or SignalLoadTaken; "" = no wait.
	Signal string `json:"signal,omitempty"`
	// TimeoutSeconds is how long the robot waits at the station, from its
	// arrival, in seconds (1–86400).
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// OnTimeout is OnTimeoutFail ("" means it too) or OnTimeoutSkip.
	OnTimeout string `json:"onTimeout,omitempty"`
}

// What a step's signal timeout does (MissionStep.OnTimeout).
const (
	OnTimeoutFail = "fail"
	OnTimeoutSkip = "skip"
)

// DefaultMinBattery is minBattery, in percent, when a spec gives none (the
// schema's default).
const DefaultMinBattery = 20

// SpecError is a mission spec that is not JSON or YAML or breaks
// mission.schema.json. Violations lists every problem as
// "<JSON pointer>: <message>", e.g. "/steps/0/action: value must be one of
// 'pick', 'drop'", sorted by pointer.
type SpecError struct {
	Source     string // file name, or "mission spec" for ParseMission
	Violations []string
}

// Error prints one violation per line, each prefixed with Source.
func (e *SpecError) Error() string {
	lines := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		lines[i] = e.Source + ": " + v
	}
	return strings.Join(lines, "\n")
}

var compiledMissionSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	return schemacheck.Compile("mission.schema.json", MissionSchemaID, MissionSchema)
})

// ParseMission reads a mission spec in JSON or YAML (YAML is converted to
// JSON first), validates it against MissionSchema and fills in the schema's
// defaults (priority 0, minBattery DefaultMinBattery). A spec that is not
// JSON or YAML or breaks the schema returns a *SpecError naming every
// violation.
func ParseMission(raw []byte) (MissionSpec, error) {
	return parseMission("mission spec", raw)
}

// LoadMission reads and parses a mission spec file (JSON or YAML, see
// ParseMission). Errors name the file: a *SpecError has Source = path.
func LoadMission(path string) (MissionSpec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return MissionSpec{}, err
	}
	return parseMission(path, raw)
}

func parseMission(source string, raw []byte) (MissionSpec, error) {
	fail := func(v ...string) (MissionSpec, error) {
		return MissionSpec{}, &SpecError{Source: source, Violations: v}
	}
	s, err := compiledMissionSchema()
	if err != nil {
		return MissionSpec{}, err
	}
	if !json.Valid(raw) {
		var y any
		if err := yaml.Unmarshal(raw, &y); err != nil {
			return fail("/: neither JSON nor YAML: " + strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if raw, err = json.Marshal(jsonCompatible(y)); err != nil {
			return fail("/: YAML without a JSON equivalent: " + err.Error())
		}
	}
	inst, v := schemacheck.Validate(s, raw)
	if len(v) > 0 {
		return fail(v...)
	}
	obj := inst.(map[string]any) // the schema requires an object
	for name, prop := range s.Properties {
		if _, set := obj[name]; !set && prop.Default != nil {
			obj[name] = *prop.Default
		}
	}
	normalizeIntegers(obj)
	norm, err := json.Marshal(obj)
	if err != nil {
		return MissionSpec{}, err
	}
	var spec MissionSpec
	if err := json.Unmarshal(norm, &spec); err != nil {
		return fail("/: " + err.Error())
	}
	if len(spec.RequiredCapabilities) == 0 {
		spec.RequiredCapabilities = nil // [] and none mean the same: no capability required
	}
	return spec, nil
}

// jsonCompatible turns what yaml.v3 decodes into values encoding/json can
// marshal: mapping keys that are not strings (e.g. 1: or true:) become
// their text.
func jsonCompatible(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonCompatible(e)
		}
		return x
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonCompatible(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = jsonCompatible(e)
		}
		return x
	default:
		return v
	}
}

// normalizeIntegers rewrites integral numbers written with a fraction or
// exponent (5.0, 1e3), which JSON Schema counts as integers, so that they
// decode into Go int fields.
func normalizeIntegers(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if n, ok := e.(json.Number); ok {
				x[k] = integral(n)
			} else {
				normalizeIntegers(e)
			}
		}
	case []any:
		for i, e := range x {
			if n, ok := e.(json.Number); ok {
				x[i] = integral(n)
			} else {
				normalizeIntegers(e)
			}
		}
	}
}

func integral(n json.Number) json.Number {
	if !strings.ContainsAny(string(n), ".eE") {
		return n
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return n
	}
	return json.Number(strconv.FormatInt(int64(f), 10))
}

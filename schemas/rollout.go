package schemas

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // maintenance-window zones must load in minimal containers without /usr/share/zoneinfo

	"github.com/Masterminds/semver/v3"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/fleetflow/fleetflow/internal/schemacheck"
)

// RolloutSchema is rollout.schema.json, the JSON Schema (draft 2020-12) of
// an OTA rollout spec. ParseRollout accepts what it accepts, minus the
// cross-field rules the schema cannot express (listed in its description).
//
//go:embed rollout.schema.json
var RolloutSchema []byte

// RolloutSchemaID is the $id of RolloutSchema.
const RolloutSchemaID = "https://fleetflow.dev/schemas/rollout.schema.json"

// Defaults of a rollout spec (the schema's defaults).
const (
	DefaultRobotTimeout = 10 * time.Minute
	DefaultHealthCheck  = 30 * time.Second
)

// Abort failure types (AbortCriteria.FailureType), as in AWS IoT Jobs'
// abortConfig.criteriaList.failureType.
const (
	FailureFailed   = "FAILED"    // the robot reported a failed update
	FailureTimedOut = "TIMED_OUT" // no result within RobotTimeout
	FailureAll      = "ALL"       // either
)

// RolloutSpec is an OTA rollout as a release engineer writes it
// (rollout.schema.json): Artifact is installed on the robots Targets
// selects, in Waves, at most MaxConcurrent at a time, until done or Abort
// says stop.
type RolloutSpec struct {
	// RolloutID names the workflow rollout-<id>: a letter or digit, then up
	// to 63 of A-Z a-z 0-9 . _ -.
	RolloutID string          `json:"rolloutId"`
	Artifact  RolloutArtifact `json:"artifact"`
	Targets   TargetSelector  `json:"targets"`
	Waves     WavePlan        `json:"waves"`
	// MaxConcurrent (≥ 1, default 1) robots update at once within a wave.
	MaxConcurrent int `json:"maxConcurrent"`
	// SoakTime is the wait after each wave before the next (≥ 0).
	SoakTime Duration      `json:"soakTime"`
	Abort    AbortCriteria `json:"abort"`
	// RobotTimeout is the deadline of one attempt on one robot, health
	// check included (> 0, default DefaultRobotTimeout).
	RobotTimeout Duration `json:"robotTimeout"`
	// Retries (0–5) are extra attempts per robot; the last one's outcome
	// counts.
	Retries int `json:"retries"`
	// HealthCheck is how long a robot must run the new version without a
	// VDA 5050 FATAL error to count as updated (> 0, default
	// DefaultHealthCheck).
	HealthCheck Duration `json:"healthCheck"`
	// MaintenanceWindow limits when robots start updating; nil = any time.
	MaintenanceWindow *Window `json:"maintenanceWindow,omitempty"`
	// RollbackOnAbort reinstalls the previous version on the robots this
	// rollout updated when it aborts.
	RollbackOnAbort bool `json:"rollbackOnAbort"`
	// Rollback marks an explicit rollback: a version lower than the
	// installed one may be installed where the release's signed manifest
	// allows it (rollbackFrom names the installed version). Without both a
	// downgrade is refused (Uptane's rollback protection).
	Rollback bool `json:"rollback"`
	// ChangeRequest and RequestedBy are written to the audit log.
	ChangeRequest string `json:"changeRequest,omitempty"`
	RequestedBy   string `json:"requestedBy,omitempty"`
}

// RolloutArtifact is the signed artifact to install.
type RolloutArtifact struct {
	// File is the artifact's file name in the artifact store, without any
	// directory (e.g. "fleetos-2.0.0.bin").
	File string `json:"file"`
	// BaseURL is the http(s) URL of the artifact store; empty means the
	// configured one.
	BaseURL string `json:"baseUrl,omitempty"`
}

// TargetSelector picks the robots of a rollout: those matching every
// non-empty field. A parsed spec has Site or Robots (or both).
type TargetSelector struct {
	Site         string `json:"site,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Model        string `json:"model,omitempty"`
	// VersionRange is a Masterminds semver constraint on the installed
	// version, e.g. "<2.0.0" or ">=1.2, <1.5".
	VersionRange string `json:"versionRange,omitempty"`
	// Robots are robot IDs, "manufacturer/serialNumber".
	Robots []string `json:"robots,omitempty"`
}

// RobotFacts is what TargetSelector.Matches looks at: a robot of the fleet
// registry. ID is "manufacturer/serialNumber".
type RobotFacts struct {
	ID              string
	Site            string
	Manufacturer    string
	Model           string
	SoftwareVersion string
}

// Matches reports whether robot r is a target: it matches every non-empty
// field of t (exact, case-sensitive string comparison; VersionRange with
// Masterminds semver, parsing r.SoftwareVersion with semver.NewVersion,
// which accepts "v1.4" and "1.4" as 1.4.0). A robot whose version is not a
// semantic version never matches a VersionRange, and a prerelease version
// only matches a constraint that names a prerelease. The error is an
// unparsable VersionRange (never for a spec from ParseRollout).
func (t TargetSelector) Matches(r RobotFacts) (bool, error) {
	var c *semver.Constraints
	if t.VersionRange != "" {
		var err error
		if c, err = semver.NewConstraint(t.VersionRange); err != nil {
			return false, fmt.Errorf("versionRange %q: %w", t.VersionRange, err)
		}
	}
	if t.Site != "" && r.Site != t.Site ||
		t.Manufacturer != "" && r.Manufacturer != t.Manufacturer ||
		t.Model != "" && r.Model != t.Model ||
		len(t.Robots) > 0 && !slices.Contains(t.Robots, r.ID) {
		return false, nil
	}
	if c == nil {
		return true, nil
	}
	v, err := semver.NewVersion(r.SoftwareVersion)
	if err != nil {
		return false, nil
	}
	return c.Check(v), nil
}

// WavePlan splits the targets into waves (see workflows.PlanWaves): wave 0
// is a canary of Canary robots when Canary > 0, then each of Percentages
// brings the updated share of the targets to that cumulative percentage,
// like Mender's deployment phases. Percentages are strictly increasing,
// 1–100, and end at 100; empty means a canary-only rollout.
type WavePlan struct {
	Canary      int   `json:"canary"`
	Percentages []int `json:"percentages,omitempty"`
}

// AbortCriteria stop a rollout, after AWS IoT Jobs' abortConfig: abort when
// at least MinExecuted robots finished an update and the failures of
// FailureType make up at least ThresholdPercentage percent of them.
type AbortCriteria struct {
	// FailureType is FailureFailed, FailureTimedOut or FailureAll.
	FailureType string `json:"failureType"`
	// ThresholdPercentage is in percent, 0 < x ≤ 100.
	ThresholdPercentage float64 `json:"thresholdPercentage"`
	// MinExecuted (≥ 1) is AWS IoT Jobs' minNumberOfExecutedThings.
	MinExecuted int `json:"minExecuted"`
}

// Window is a daily maintenance window in the wall-clock time of TimeZone:
// from Start (inclusive) to End (exclusive), both "HH:MM" 24-hour. End
// before Start wraps midnight ("22:00"–"06:00").
type Window struct {
	Start    string `json:"start"`
	End      string `json:"end"`
	TimeZone string `json:"timeZone"` // IANA name, e.g. "Europe/Berlin"
}

// Duration is a time.Duration written in JSON as a Go duration string
// ("30s", "1h30m").
type Duration time.Duration

// String formats d like time.Duration ("10m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string (time.ParseDuration syntax); null
// leaves d as it is, like encoding/json does for other types.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string like \"30s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

var compiledRolloutSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	return schemacheck.Compile("rollout.schema.json", RolloutSchemaID, RolloutSchema)
})

// ParseRollout reads a rollout spec in JSON or YAML, validates it against
// RolloutSchema, fills in the schema's defaults (maxConcurrent 1, soakTime
// 0s, robotTimeout DefaultRobotTimeout, healthCheck DefaultHealthCheck,
// retries 0) and checks what the schema cannot: percentages strictly
// increasing and ending at 100, a canary or percentages, versionRange a
// valid constraint, durations valid with robotTimeout and healthCheck above
// 0, timeZone loadable, window start ≠ end, baseUrl an absolute http(s) URL.
// Any violation returns a *SpecError naming every one with its JSON
// pointer; schema violations are reported before the other checks run.
func ParseRollout(raw []byte) (RolloutSpec, error) {
	return parseRollout("rollout spec", raw)
}

// LoadRollout reads and parses a rollout spec file (JSON or YAML, see
// ParseRollout). Errors name the file: a *SpecError has Source = path.
func LoadRollout(path string) (RolloutSpec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return RolloutSpec{}, err
	}
	return parseRollout(path, raw)
}

func parseRollout(source string, raw []byte) (RolloutSpec, error) {
	fail := func(v ...string) (RolloutSpec, error) {
		slices.Sort(v)
		return RolloutSpec{}, &SpecError{Source: source, Violations: v}
	}
	s, err := compiledRolloutSchema()
	if err != nil {
		return RolloutSpec{}, err
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
	obj, _ := inst.(map[string]any)
	bad := checkDurations(obj)
	if len(v) > 0 {
		return fail(append(v, bad...)...)
	}
	for name, prop := range s.Properties {
		if _, set := obj[name]; !set && prop.Default != nil {
			obj[name] = *prop.Default
		}
	}
	normalizeIntegers(obj)
	norm, err := json.Marshal(obj)
	if err != nil {
		return RolloutSpec{}, err
	}
	var spec RolloutSpec
	if err := json.Unmarshal(norm, &spec); err != nil {
		return fail("/: " + err.Error())
	}
	if bad = append(bad, spec.check()...); len(bad) > 0 {
		return fail(bad...)
	}
	return spec, nil
}

// checkDurations returns the violations of the duration fields of obj
// that are non-empty strings (others are the schema's business), and
// replaces a string that is no duration with "0s" so that obj still
// decodes. Their violations are reported along with the schema's.
func checkDurations(obj map[string]any) []string {
	var bad []string
	for _, name := range []string{"soakTime", "robotTimeout", "healthCheck"} {
		s, ok := obj[name].(string)
		if !ok || s == "" {
			continue
		}
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			bad = append(bad, "/"+name+": "+strings.TrimPrefix(err.Error(), "time: ")+`: want a Go duration like "30s" or "1h30m"`)
			obj[name] = "0s"
		case d < 0 && name == "soakTime":
			bad = append(bad, fmt.Sprintf("/%s: must be 0s or more, got %s", name, d))
		case d <= 0 && name != "soakTime":
			bad = append(bad, fmt.Sprintf("/%s: must be more than 0s, got %s", name, d))
		}
	}
	return bad
}

// check returns the violations of the rules the schema cannot express.
func (spec *RolloutSpec) check() []string {
	var bad []string
	w := spec.Waves
	if w.Canary == 0 && len(w.Percentages) == 0 {
		bad = append(bad, "/waves: no canary and no percentages: no robot would be updated")
	}
	for i, p := range w.Percentages {
		if i > 0 && p <= w.Percentages[i-1] {
			bad = append(bad, fmt.Sprintf("/waves/percentages/%d: %d%% is not more than the %d%% before it (percentages are cumulative)", i, p, w.Percentages[i-1]))
		}
	}
	if n := len(w.Percentages); n > 0 && w.Percentages[n-1] != 100 {
		bad = append(bad, fmt.Sprintf("/waves/percentages/%d: the last wave must reach 100%%, got %d%%", n-1, w.Percentages[n-1]))
	}
	if r := spec.Targets.VersionRange; r != "" {
		if _, err := semver.NewConstraint(r); err != nil {
			bad = append(bad, fmt.Sprintf("/targets/versionRange: %q is not a semantic version constraint: %v", r, err))
		}
	}
	if b := spec.Artifact.BaseURL; b != "" {
		if u, err := url.Parse(b); err != nil || u.Host == "" {
			bad = append(bad, "/artifact/baseUrl: "+strconv.Quote(b)+" is not an absolute http(s) URL with a host")
		} else if u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(b, "?#") {
			// Not quoted back: it may be a presigned token.
			bad = append(bad, "/artifact/baseUrl: carries a query string or fragment; a store's presigned token is a secret (FLEETFLOW_ARTIFACTS_URL_QUERY on the workers), never part of a rollout spec, which is kept in the workflow history")
		}
	}
	if mw := spec.MaintenanceWindow; mw != nil {
		// "Local" would mean each worker's own zone.
		if _, err := time.LoadLocation(mw.TimeZone); err != nil || mw.TimeZone == "Local" {
			bad = append(bad, fmt.Sprintf("/maintenanceWindow/timeZone: %q is not an IANA time zone", mw.TimeZone))
		}
		if mw.Start == mw.End {
			bad = append(bad, "/maintenanceWindow/end: equal to start "+mw.Start+": the window would be empty")
		}
	}
	return bad
}

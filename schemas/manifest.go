package schemas

import (
	_ "embed"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fleetflow/fleetflow/internal/schemacheck"
)

// ManifestSchema is manifest.schema.json, the JSON Schema (draft 2020-12) of
// an OTA artifact manifest. ParseManifest accepts exactly what it accepts
// and whose version is strict semver.
//
//go:embed manifest.schema.json
var ManifestSchema []byte

// ManifestSchemaID is the $id of ManifestSchema.
const ManifestSchemaID = "https://fleetflow.dev/schemas/manifest.schema.json"

// Hardware identifies what an artifact may be installed on: the robot's
// VDA 5050 manufacturer and its model (Uptane hardware identifier).
type Hardware struct {
	Manufacturer string `json:"manufacturer"`
	Model        string `json:"model"`
}

// String is "manufacturer/model".
func (h Hardware) String() string { return h.Manufacturer + "/" + h.Model }

// Manifest describes one OTA artifact file (manifest.schema.json). It is
// signed as the exact bytes it was read from; see internal/artifact.
type Manifest struct {
	// Name is the software's name, e.g. "fleetos".
	Name string `json:"name"`
	// Version is Semantic Versioning 2.0.0 without a leading "v", e.g. "2.0.0".
	Version string `json:"version"`
	// File is the artifact file's name next to the manifest, without slashes.
	File string `json:"file"`
	// SHA256 is the file's SHA-256, 64 lowercase hex digits.
	SHA256 string `json:"sha256"`
	// Length is the file's length in bytes, at least 1.
	Length int64 `json:"length"`
	// Hardware lists at least one manufacturer/model the file is built for.
	Hardware []Hardware `json:"hardware"`
	// ReleaseCounter is at least 1 and never decreases from one installed
	// release to the next, except in an explicit rollback (Uptane).
	ReleaseCounter int64 `json:"releaseCounter"`
	// RollbackFrom is optional: a semver constraint (Masterminds/semver,
	// e.g. ">=2.0.1 <2.2.0") naming the installed versions this release may
	// replace in an explicit rollback, when its version or release counter
	// is lower than the installed one. Being signed, it is what authorises a
	// downgrade (Uptane rollback protection); the unsigned rollback flag of
	// a rollout or softwareUpdate alone is not enough. Empty: the release
	// never replaces newer software.
	RollbackFrom string `json:"rollbackFrom,omitempty"`
	// Expires is when the manifest stops being valid (TUF: freeze attack).
	Expires time.Time `json:"expires"`
	// KeyID names the signing key: artifact.KeyID of its public key.
	KeyID string `json:"keyId"`
}

// Supports reports whether h is one of m.Hardware; manufacturer and model
// must match exactly (case-sensitive, as robots report them).
func (m Manifest) Supports(h Hardware) bool { return slices.Contains(m.Hardware, h) }

var compiledManifestSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	return schemacheck.Compile("manifest.schema.json", ManifestSchemaID, ManifestSchema)
})

// ParseManifest reads a manifest in JSON (no YAML: its bytes are what is
// signed) and validates it against ManifestSchema. The version must be
// strict semver (Masterminds/semver StrictNewVersion: MAJOR.MINOR.PATCH,
// no "v") and rollbackFrom, if set, a semver constraint
// (semver.NewConstraint). A manifest that is not JSON, breaks the schema or
// has a bad version or rollbackFrom returns a *SpecError (Source
// "manifest") naming every violation.
func ParseManifest(raw []byte) (Manifest, error) {
	fail := func(v ...string) (Manifest, error) {
		return Manifest{}, &SpecError{Source: "manifest", Violations: v}
	}
	s, err := compiledManifestSchema()
	if err != nil {
		return Manifest{}, err
	}
	inst, v := schemacheck.Validate(s, raw)
	obj, _ := inst.(map[string]any)
	if ver, ok := obj["version"].(string); ok {
		if _, err := semver.StrictNewVersion(ver); err != nil {
			v = append(v, "/version: "+ver+" is not a semantic version (MAJOR.MINOR.PATCH, no leading v): "+err.Error())
			slices.Sort(v)
		}
	}
	if r, ok := obj["rollbackFrom"].(string); ok && r != "" {
		if _, err := semver.NewConstraint(r); err != nil {
			v = append(v, "/rollbackFrom: "+strconv.Quote(r)+" is not a semantic version constraint: "+err.Error())
			slices.Sort(v)
		}
	}
	if len(v) > 0 {
		return fail(v...)
	}
	normalizeIntegers(obj)
	norm, err := json.Marshal(obj)
	if err != nil {
		return Manifest{}, err
	}
	var m Manifest
	if err := json.Unmarshal(norm, &m); err != nil {
		return fail("/: " + err.Error())
	}
	return m, nil
}

package schemas

// ArtifactRef is a verified artifact as the OTA workflows carry it: what the
// manifest says, where robots download it, and the detached signature they
// verify themselves (Uptane: the robot re-verifies, it never trusts the
// cloud's word alone).
type ArtifactRef struct {
	File           string     `json:"file"`           // file name in the artifact store
	Name           string     `json:"name"`           // manifest name, e.g. "fleetos"
	Version        string     `json:"version"`        // semver
	ReleaseCounter int64      `json:"releaseCounter"` // Uptane release counter
	SHA256         string     `json:"sha256"`         // hex digest of the file
	Length         int64      `json:"length"`         // bytes
	Hardware       []Hardware `json:"hardware"`       // supported manufacturer/model pairs
	KeyID          string     `json:"keyId"`
	ArtifactURL    string     `json:"artifactUrl"` // HTTP(S) URL robots download the file from
	ManifestURL    string     `json:"manifestUrl"` // HTTP(S) URL of the manifest JSON
	Signature      string     `json:"signature"`   // base64 signature over the manifest bytes (cosign sign-blob)
}

// VerifyArtifactInput asks the ota worker to fetch and verify an artifact
// from the artifact store (activity VerifyArtifact).
type VerifyArtifactInput struct {
	File    string `json:"file"`
	BaseURL string `json:"baseUrl,omitempty"` // "" = the configured artifact store
	// Rollback asks for an explicit rollback: a manifest older than what
	// robots run, allowed only when its signed rollbackFrom names the
	// installed version (checked per robot later; VerifyArtifact refuses
	// a manifest without rollbackFrom up front).
	Rollback bool `json:"rollback,omitempty"`
}

// LocateArtifactInput finds the artifact of a given name and version in the
// artifact store, for rolling a robot back to the version it ran before
// (activity LocateArtifact). Found is false when none is stored.
type LocateArtifactInput struct {
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	Hardware Hardware `json:"hardware"`
	BaseURL  string   `json:"baseUrl,omitempty"`
	// RollbackFrom is the version the robot will run when it is rolled
	// back to Version (the rollout's target): only a release whose signed
	// manifest authorises that rollback (rollbackFrom names it) is found,
	// as the robot would refuse any other. "" = no such check.
	RollbackFrom string `json:"rollbackFrom,omitempty"`
}

// LocateArtifactResult is the located artifact, verified like any other.
type LocateArtifactResult struct {
	Found    bool        `json:"found"`
	Artifact ArtifactRef `json:"artifact"`
}

// ResolveTargetsInput selects the robots of a rollout (activity ResolveTargets).
type ResolveTargetsInput struct {
	Selector TargetSelector `json:"selector"`
	Artifact ArtifactRef    `json:"artifact"`
	// Rollback: robots on a newer version are targets too (an explicit
	// rollback); otherwise they are skipped (Uptane rollback protection).
	Rollback bool `json:"rollback,omitempty"`
}

// TargetRobot is one robot a rollout will update.
type TargetRobot struct {
	ID           string `json:"id"` // "manufacturer/serialNumber"
	Site         string `json:"site"`
	Manufacturer string `json:"manufacturer"`
	Model        string `json:"model"`
	Version      string `json:"version"` // software version it runs now
}

// SkippedRobot is a robot the selector matched but the rollout leaves alone.
type SkippedRobot struct {
	ID     string `json:"id"`
	Reason string `json:"reason"` // e.g. "already runs 2.0.0", "HardwareMismatch: …"
}

// ResolveTargetsResult lists the targets sorted by robot ID.
type ResolveTargetsResult struct {
	Targets []TargetRobot  `json:"targets"`
	Skipped []SkippedRobot `json:"skipped,omitempty"`
}

// The softwareUpdate instant action: the manufacturer-specific action that
// carries an update to a robot, its progress coming back in actionStates,
// and its parameters (workflows build it; the robot I/O activity adds the
// artifact store's URL query to the two URLs as it publishes).
const (
	ActionSoftwareUpdate = "softwareUpdate"

	SoftwareUpdateParamArtifactURL = "artifactUrl"
	SoftwareUpdateParamManifestURL = "manifestUrl"
	SoftwareUpdateParamSignature   = "signature"
	SoftwareUpdateParamSHA256      = "sha256"
	SoftwareUpdateParamVersion     = "version"
	SoftwareUpdateParamRollback    = "rollback"
)

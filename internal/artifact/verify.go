package artifact

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/fleetflow/fleetflow/schemas"
)

// File name suffixes of the artifact layout (see Paths).
const (
	ManifestSuffix  = ".manifest.json"
	SignatureSuffix = ".manifest.json.sig"
)

// Paths is the layout of an artifact in dir: the file itself, its manifest
// <file>.manifest.json and the manifest's detached signature
// <file>.manifest.json.sig (cosign sign-blob --output-signature).
func Paths(dir, file string) (artifact, manifest, sig string) {
	artifact = filepath.Join(dir, file)
	return artifact, artifact + ManifestSuffix, artifact + SignatureSuffix
}

// Installed is the software a robot runs.
type Installed struct {
	// Version is semver, e.g. "1.4.2"; a leading "v" and a missing minor or
	// patch number are tolerated, since robots report it.
	Version string
	// ReleaseCounter is the installed release's Uptane release counter; 0
	// when it predates release counters.
	ReleaseCounter int64
}

// Policy is what VerifyManifest checks beyond the signature.
type Policy struct {
	// Now is the current time, required: this package reads no clock
	// (workflows pass workflow.Now).
	Now time.Time
	// Hardware is the robot's; nil skips the hardware check.
	Hardware *schemas.Hardware
	// Installed is what the robot runs; nil skips the rollback check
	// (nothing installed, or not checked here).
	Installed *Installed
	// AllowRollback marks an explicit rollback (a rollout or softwareUpdate
	// with rollback: true). It is not enough on its own: a lower version or
	// release counter than Installed passes only if the signed manifest's
	// rollbackFrom also includes the installed version (see VerifyManifest,
	// rule 6), since the flag is not signed by the release key.
	AllowRollback bool
}

// VerifyManifest checks a manifest and its detached signature (base64 of the
// raw signature; surrounding whitespace is ignored) and returns the
// manifest. The checks run in this order and the first failure is returned:
//
//  1. the manifest parses and follows manifest.schema.json: *MalformedError
//     (What "manifest", wrapping a *schemas.SpecError);
//  2. its keyId is in keys (TUF: trusted keys only): *UnknownKeyError;
//  3. the signature is present and base64 (*MalformedError, What
//     "signature") and verifies over manifestRaw's exact bytes with that key
//     (cosign sign-blob): *BadSignatureError;
//  4. p.Now is before the manifest's expiry (TUF: freeze attack):
//     *ExpiredError;
//  5. p.Hardware, if set, is listed (Uptane hardware identifier):
//     *HardwareMismatchError;
//  6. with p.Installed set, neither the version (semver precedence) nor
//     the release counter is lower than installed (Uptane: rollback
//     attack), unless the downgrade is an explicit rollback authorised by
//     signed data: p.AllowRollback is set AND the manifest's rollbackFrom
//     is set AND its constraint includes the installed version (Masterminds
//     semantics: a prerelease matches only a range naming a prerelease).
//     Otherwise *RollbackError, saying which of the three is missing; or
//     *MalformedError (What "installed version") when p.Installed.Version
//     is not semver. The same version passes; callers decide to skip it.
//
// A zero p.Now is a programming error, returned as a plain error.
func VerifyManifest(keys *Keyring, manifestRaw, sigBase64 []byte, p Policy) (schemas.Manifest, error) {
	if p.Now.IsZero() {
		return schemas.Manifest{}, errors.New("artifact: Policy.Now is not set")
	}
	m, err := schemas.ParseManifest(manifestRaw)
	if err != nil {
		var se *schemas.SpecError
		if errors.As(err, &se) {
			return schemas.Manifest{}, &MalformedError{What: "manifest", Err: err}
		}
		return schemas.Manifest{}, err
	}
	v, ok := keys.verifier(m.KeyID)
	if !ok {
		return schemas.Manifest{}, &UnknownKeyError{Artifact: m.File, KeyID: m.KeyID, Trusted: keys.IDs()}
	}
	sig, err := decodeSig(sigBase64)
	if err != nil {
		return schemas.Manifest{}, &MalformedError{What: "signature", Artifact: m.File, Err: err}
	}
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(manifestRaw)); err != nil {
		return schemas.Manifest{}, &BadSignatureError{Artifact: m.File, KeyID: m.KeyID, Err: err}
	}
	if !p.Now.Before(m.Expires) {
		return schemas.Manifest{}, &ExpiredError{Artifact: m.File, Expires: m.Expires, Now: p.Now}
	}
	if p.Hardware != nil && !m.Supports(*p.Hardware) {
		return schemas.Manifest{}, &HardwareMismatchError{Artifact: m.File, Hardware: *p.Hardware, Supported: m.Hardware}
	}
	if p.Installed != nil {
		if err := checkRollback(m, *p.Installed, p.AllowRollback); err != nil {
			return schemas.Manifest{}, err
		}
	}
	return m, nil
}

// checkRollback is rule 6 of VerifyManifest; explicit is
// Policy.AllowRollback.
func checkRollback(m schemas.Manifest, in Installed, explicit bool) error {
	installed, err := semver.NewVersion(in.Version)
	if err != nil {
		return &MalformedError{What: "installed version", Artifact: m.File, Err: fmt.Errorf("%q: %w", in.Version, err)}
	}
	version, err := semver.StrictNewVersion(m.Version)
	if err != nil { // ParseManifest checked it
		return &MalformedError{What: "manifest", Artifact: m.File, Err: err}
	}
	e := &RollbackError{
		Artifact: m.File, Version: m.Version, ReleaseCounter: m.ReleaseCounter,
		InstalledVersion: in.Version, InstalledCounter: in.ReleaseCounter,
		VersionLower: version.LessThan(installed),
		CounterLower: m.ReleaseCounter < in.ReleaseCounter,
		Explicit:     explicit,
		RollbackFrom: m.RollbackFrom,
	}
	if !e.VersionLower && !e.CounterLower {
		return nil
	}
	if !explicit || m.RollbackFrom == "" {
		return e
	}
	from, err := semver.NewConstraint(m.RollbackFrom)
	if err != nil { // ParseManifest checked it
		return &MalformedError{What: "manifest", Artifact: m.File, Err: fmt.Errorf("rollbackFrom %q: %w", m.RollbackFrom, err)}
	}
	if !from.Check(installed) {
		return e
	}
	return nil
}

// VerifyContent streams r through SHA-256 and checks it against m: exactly
// m.Length bytes (it reads at most one byte more; TUF: endless-data attack),
// else *LengthMismatchError, then the digest, else *DigestMismatchError. A
// read error is returned wrapped, as is: it may be transient.
func VerifyContent(m schemas.Manifest, r io.Reader) error {
	limit := m.Length
	if limit < math.MaxInt64 {
		limit++
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, limit))
	if err != nil {
		return fmt.Errorf("artifact %s: reading content: %w", m.File, err)
	}
	if n != m.Length {
		return &LengthMismatchError{Artifact: m.File, Want: m.Length, Got: n}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.SHA256 {
		return &DigestMismatchError{Artifact: m.File, Want: m.SHA256, Got: got}
	}
	return nil
}

// VerifyArtifact is VerifyManifest then VerifyContent: the returned manifest
// is zero unless both pass.
func VerifyArtifact(keys *Keyring, manifestRaw, sigBase64 []byte, content io.Reader, p Policy) (schemas.Manifest, error) {
	m, err := VerifyManifest(keys, manifestRaw, sigBase64, p)
	if err != nil {
		return schemas.Manifest{}, err
	}
	if err := VerifyContent(m, content); err != nil {
		return schemas.Manifest{}, err
	}
	return m, nil
}

func encodeSig(sig []byte) []byte {
	return []byte(base64.StdEncoding.EncodeToString(sig))
}

func decodeSig(sigBase64 []byte) ([]byte, error) {
	s := bytes.TrimSpace(sigBase64)
	if len(s) == 0 {
		return nil, errors.New("missing (the artifact is unsigned)")
	}
	sig, err := base64.StdEncoding.DecodeString(string(s))
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	return sig, nil
}

package artifact

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fleetflow/fleetflow/schemas"
)

// Kinds of rejection, as Kind and ErrorKind return them. They are stable:
// workflows use them as Temporal non-retryable application error types.
const (
	KindMalformed        = "Malformed"
	KindUnknownKey       = "UnknownKey"
	KindBadSignature     = "BadSignature"
	KindExpired          = "Expired"
	KindHardwareMismatch = "HardwareMismatch"
	KindRollback         = "Rollback"
	KindLengthMismatch   = "LengthMismatch"
	KindDigestMismatch   = "DigestMismatch"
)

// ErrorKind is the Kind of the first rejection error in err's chain (one of
// the Kind* constants), or "" when err is nil or not a rejection (e.g. a
// read error, which may be worth retrying).
func ErrorKind(err error) string {
	var k interface{ Kind() string }
	if errors.As(err, &k) {
		return k.Kind()
	}
	return ""
}

// prefix is "artifact <file>: ", or "" when the manifest is unreadable.
func prefix(artifact string) string {
	if artifact == "" {
		return ""
	}
	return "artifact " + artifact + ": "
}

// MalformedError is a manifest that does not parse or breaks
// manifest.schema.json (What "manifest", Err a *schemas.SpecError), a
// signature that is missing or not base64 (What "signature"), or a
// Policy.Installed version that is not semver (What "installed version").
type MalformedError struct {
	What     string // "manifest", "signature" or "installed version"
	Artifact string // the manifest's file; "" when the manifest is malformed
	Err      error
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("%smalformed %s: %v", prefix(e.Artifact), e.What, e.Err)
}
func (e *MalformedError) Unwrap() error { return e.Err }

// Kind is KindMalformed.
func (e *MalformedError) Kind() string { return KindMalformed }

// UnknownKeyError is a manifest whose keyId is not in the keyring (TUF:
// only trusted keys count).
type UnknownKeyError struct {
	Artifact string
	KeyID    string   // the manifest's keyId
	Trusted  []string // the keyring's IDs
}

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("%sunknown key: keyId %s is not in the trusted keyring (%s)", prefix(e.Artifact), e.KeyID, strings.Join(e.Trusted, ", "))
}

// Kind is KindUnknownKey.
func (e *UnknownKeyError) Kind() string { return KindUnknownKey }

// BadSignatureError is a signature that does not verify over the manifest's
// bytes with the key its keyId names: the manifest was edited after signing
// or signed by another key.
type BadSignatureError struct {
	Artifact string
	KeyID    string
	Err      error // the verifier's reason
}

func (e *BadSignatureError) Error() string {
	return fmt.Sprintf("%sbad signature: the manifest is not signed by key %s: %v", prefix(e.Artifact), e.KeyID, e.Err)
}
func (e *BadSignatureError) Unwrap() error { return e.Err }

// Kind is KindBadSignature.
func (e *BadSignatureError) Kind() string { return KindBadSignature }

// ExpiredError is a manifest whose expiry is not after Now (TUF: freeze
// attack).
type ExpiredError struct {
	Artifact string
	Expires  time.Time
	Now      time.Time
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("%sexpired: the manifest expired at %s (now %s)", prefix(e.Artifact), e.Expires.UTC().Format(time.RFC3339), e.Now.UTC().Format(time.RFC3339))
}

// Kind is KindExpired.
func (e *ExpiredError) Kind() string { return KindExpired }

// HardwareMismatchError is a manifest that does not list the robot's
// hardware (Uptane: hardware identifier).
type HardwareMismatchError struct {
	Artifact  string
	Hardware  schemas.Hardware   // the robot's
	Supported []schemas.Hardware // the manifest's
}

func (e *HardwareMismatchError) Error() string {
	sup := make([]string, len(e.Supported))
	for i, h := range e.Supported {
		sup[i] = h.String()
	}
	return fmt.Sprintf("%shardware mismatch: built for %s, not for %s", prefix(e.Artifact), strings.Join(sup, ", "), e.Hardware)
}

// Kind is KindHardwareMismatch.
func (e *HardwareMismatchError) Kind() string { return KindHardwareMismatch }

// RollbackError is a manifest whose version or release counter is lower than
// what is installed, and whose installation is not an explicit rollback
// authorised by the signed manifest (Uptane: rollback attack): either it is
// not an explicit rollback (Explicit false), or the manifest has no
// rollbackFrom (RollbackFrom ""), or its rollbackFrom does not include
// InstalledVersion.
type RollbackError struct {
	Artifact         string
	Version          string
	ReleaseCounter   int64
	InstalledVersion string
	InstalledCounter int64
	VersionLower     bool   // Version < InstalledVersion (semver precedence)
	CounterLower     bool   // ReleaseCounter < InstalledCounter
	Explicit         bool   // Policy.AllowRollback: an explicit rollback was asked for
	RollbackFrom     string // the manifest's signed rollbackFrom; "" = none
}

func (e *RollbackError) Error() string {
	var why []string
	if e.VersionLower {
		why = append(why, fmt.Sprintf("version %s is lower than the installed %s", e.Version, e.InstalledVersion))
	}
	if e.CounterLower {
		why = append(why, fmt.Sprintf("release counter %d is lower than the installed %d", e.ReleaseCounter, e.InstalledCounter))
	}
	var refused string
	switch {
	case !e.Explicit:
		refused = "not an explicit rollback, and only an explicit rollback authorised by the signed manifest may install it"
	case e.RollbackFrom == "":
		refused = "explicit rollback refused: the signed manifest authorises no rollback (no rollbackFrom)"
	default:
		refused = fmt.Sprintf("explicit rollback refused: its signed rollbackFrom %q does not include installed version %s", e.RollbackFrom, e.InstalledVersion)
	}
	return fmt.Sprintf("%srollback: %s; %s", prefix(e.Artifact), strings.Join(why, " and "), refused)
}

// Kind is KindRollback.
func (e *RollbackError) Kind() string { return KindRollback }

// LengthMismatchError is content whose length is not the manifest's. Reading
// stops one byte past Want (TUF: endless-data attack), so Got = Want+1 means
// "longer than Want".
type LengthMismatchError struct {
	Artifact string
	Want     int64 // bytes, from the manifest
	Got      int64 // bytes read
}

func (e *LengthMismatchError) Error() string {
	got := fmt.Sprintf("content is %d bytes", e.Got)
	if e.Got > e.Want {
		got = "content is longer"
	}
	return fmt.Sprintf("%slength mismatch: manifest says %d bytes, %s", prefix(e.Artifact), e.Want, got)
}

// Kind is KindLengthMismatch.
func (e *LengthMismatchError) Kind() string { return KindLengthMismatch }

// DigestMismatchError is content whose SHA-256 is not the manifest's: the
// file was altered or is another file.
type DigestMismatchError struct {
	Artifact string
	Want     string // hex, from the manifest
	Got      string // hex, of the content
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("%ssha256 mismatch: manifest says %s, content is %s", prefix(e.Artifact), e.Want, e.Got)
}

// Kind is KindDigestMismatch.
func (e *DigestMismatchError) Kind() string { return KindDigestMismatch }

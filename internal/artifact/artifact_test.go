package artifact_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/fleetflow/fleetflow/internal/artifact"
	"github.com/fleetflow/fleetflow/schemas"
)

var (
	now     = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tug     = schemas.Hardware{Manufacturer: "acme", Model: "Tug-200"}
	lift    = schemas.Hardware{Manufacturer: "robotix", Model: "Lift-5"}
	content = []byte("fleetos 2.0.0\nchanges: test image\n")
)

type key struct {
	priv, pub []byte
	id        string
}

func newKey(t *testing.T, kind string) key {
	t.Helper()
	priv, pub, err := artifact.GenerateKeyPair(kind)
	if err != nil {
		t.Fatal(err)
	}
	id, err := artifact.PrivateKeyID(priv)
	if err != nil {
		t.Fatal(err)
	}
	return key{priv, pub, id}
}

func keyring(t *testing.T, keys ...key) *artifact.Keyring {
	t.Helper()
	var pems [][]byte
	for _, k := range keys {
		pems = append(pems, k.pub)
	}
	ring, err := artifact.ParseKeyring(pems...)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// manifestFor describes data as fleetos version/counter for tug and lift,
// expiring in 2036, naming keyID.
func manifestFor(t *testing.T, data []byte, version string, counter int64, keyID string) []byte {
	t.Helper()
	return manifestRollbackFrom(t, data, version, counter, keyID, "")
}

// manifestRollbackFrom is manifestFor with rollbackFrom (omitted when "").
func manifestRollbackFrom(t *testing.T, data []byte, version string, counter int64, keyID, rollbackFrom string) []byte {
	t.Helper()
	sum := sha256.Sum256(data)
	raw, err := json.MarshalIndent(schemas.Manifest{
		Name: "fleetos", Version: version, File: "fleetos-" + version + ".bin",
		SHA256: hex.EncodeToString(sum[:]), Length: int64(len(data)),
		Hardware:       []schemas.Hardware{tug, lift},
		ReleaseCounter: counter,
		RollbackFrom:   rollbackFrom,
		Expires:        time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyID:          keyID,
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func sign(t *testing.T, k key, raw []byte) []byte {
	t.Helper()
	sig, err := artifact.Sign(k.priv, raw)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// Both key kinds sign and verify, and the signatures are what cosign
// sign-blob writes and stdlib verifiers accept: base64 of an ASN.1 DER
// ECDSA signature over SHA-256, or of a pure Ed25519 signature.
func TestSignVerifyBothKinds(t *testing.T) {
	for _, kind := range []string{artifact.KeyECDSAP256, artifact.KeyEd25519} {
		t.Run(kind, func(t *testing.T) {
			k := newKey(t, kind)
			raw := manifestFor(t, content, "2.0.0", 20, k.id)
			sigB64 := sign(t, k, raw)
			m, err := artifact.VerifyArtifact(keyring(t, k), raw, sigB64, bytes.NewReader(content),
				artifact.Policy{Now: now, Hardware: &lift, Installed: &artifact.Installed{Version: "1.4.2"}})
			if err != nil {
				t.Fatal(err)
			}
			if m.Version != "2.0.0" || m.ReleaseCounter != 20 || m.KeyID != k.id || m.Length != int64(len(content)) {
				t.Errorf("verified manifest %+v", m)
			}

			sig, err := base64.StdEncoding.DecodeString(string(sigB64))
			if err != nil || bytes.ContainsAny(sigB64, "\n ") {
				t.Fatalf("signature %q is not plain base64: %v", sigB64, err)
			}
			pub, err := cryptoutils.UnmarshalPEMToPublicKey(k.pub)
			if err != nil {
				t.Fatal(err)
			}
			digest := sha256.Sum256(raw)
			switch p := pub.(type) {
			case *ecdsa.PublicKey:
				if p.Curve != elliptic.P256() || !ecdsa.VerifyASN1(p, digest[:], sig) {
					t.Error("not an ASN.1 ECDSA P-256 signature over SHA-256 of the manifest")
				}
			case ed25519.PublicKey:
				if !ed25519.Verify(p, raw, sig) {
					t.Error("not an Ed25519 signature over the manifest")
				}
			default:
				t.Fatalf("public key %T", pub)
			}
		})
	}
}

func TestKeyIDIsPKIXDigestPrefix(t *testing.T) {
	k := newKey(t, artifact.KeyEd25519)
	block, _ := pem.Decode(k.pub)
	sum := sha256.Sum256(block.Bytes)
	if want := hex.EncodeToString(sum[:])[:16]; k.id != want {
		t.Errorf("PrivateKeyID %s, want %s", k.id, want)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := artifact.KeyID(pub); err != nil || id != k.id {
		t.Errorf("KeyID %s %v, want %s", id, err, k.id)
	}
	if ids := keyring(t, k, k).IDs(); !reflect.DeepEqual(ids, []string{k.id}) {
		t.Errorf("the same key twice: IDs %v", ids)
	}
}

// Every rejection has its own type, kind and fields, and the checks run in
// the documented order.
func TestRejections(t *testing.T) {
	release := newKey(t, artifact.KeyECDSAP256)
	edKey := newKey(t, artifact.KeyEd25519)
	rogue := newKey(t, artifact.KeyECDSAP256)
	ring := keyring(t, release, edKey)
	good := manifestFor(t, content, "2.0.0", 20, release.id)
	goodSig := sign(t, release, good)
	// authorised may replace 2.0.0 up to 2.1.x in an explicit rollback.
	authorised := manifestRollbackFrom(t, content, "2.0.0", 20, release.id, ">=2.0.0 <2.2.0")
	authorisedSig := sign(t, release, authorised)
	notAConstraint := manifestRollbackFrom(t, content, "2.0.0", 20, release.id, "newer than 2.0.0")
	flipped := bytes.Clone(content)
	flipped[3] ^= 0x20

	type tc struct {
		name    string
		raw     []byte
		sig     []byte
		data    []byte
		p       artifact.Policy
		kind    string
		msg     string                  // substring of Error()
		inspect func(*testing.T, error) // checks the concrete type's fields
	}
	cases := []tc{
		{name: "tampered content", data: flipped, kind: artifact.KindDigestMismatch,
			msg: "artifact fleetos-2.0.0.bin: sha256 mismatch: manifest says ",
			inspect: func(t *testing.T, err error) {
				var e *artifact.DigestMismatchError
				sum := sha256.Sum256(flipped)
				if !errors.As(err, &e) || e.Got != hex.EncodeToString(sum[:]) || e.Want == e.Got {
					t.Errorf("%#v", err)
				}
			}},
		{name: "truncated content", data: content[:len(content)-1], kind: artifact.KindLengthMismatch,
			msg: fmt.Sprintf("length mismatch: manifest says %d bytes, content is %d bytes", len(content), len(content)-1),
			inspect: func(t *testing.T, err error) {
				var e *artifact.LengthMismatchError
				if !errors.As(err, &e) || e.Want != int64(len(content)) || e.Got != int64(len(content)-1) {
					t.Errorf("%#v", err)
				}
			}},
		{name: "longer content", data: append(bytes.Clone(content), "sim-fault: fatal-after-boot\n"...), kind: artifact.KindLengthMismatch,
			msg: "content is longer"},
		{name: "manifest edited after signing", raw: bytes.Replace(good, []byte(`"releaseCounter": 20`), []byte(`"releaseCounter": 99`), 1),
			kind: artifact.KindBadSignature, msg: "bad signature: the manifest is not signed by key " + release.id},
		{name: "wrong key naming a trusted keyId", sig: sign(t, rogue, good), kind: artifact.KindBadSignature,
			inspect: func(t *testing.T, err error) {
				var e *artifact.BadSignatureError
				if !errors.As(err, &e) || e.KeyID != release.id || e.Err == nil {
					t.Errorf("%#v", err)
				}
			}},
		{name: "ed25519 signature naming the ecdsa key", sig: sign(t, edKey, good), kind: artifact.KindBadSignature},
		{name: "keyId not in the keyring", raw: manifestFor(t, content, "2.0.0", 20, rogue.id), sig: nil, kind: artifact.KindUnknownKey,
			msg: "unknown key: keyId " + rogue.id + " is not in the trusted keyring",
			inspect: func(t *testing.T, err error) {
				var e *artifact.UnknownKeyError
				if !errors.As(err, &e) || e.KeyID != rogue.id || !reflect.DeepEqual(e.Trusted, ring.IDs()) {
					t.Errorf("%#v", err)
				}
			}},
		{name: "expired", p: artifact.Policy{Now: time.Date(2036, 1, 1, 0, 0, 1, 0, time.UTC)}, kind: artifact.KindExpired,
			msg: "expired: the manifest expired at 2036-01-01T00:00:00Z"},
		{name: "expires now", p: artifact.Policy{Now: time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)}, kind: artifact.KindExpired},
		{name: "wrong hardware", p: artifact.Policy{Now: now, Hardware: &schemas.Hardware{Manufacturer: "acme", Model: "Lift-5"}},
			kind: artifact.KindHardwareMismatch, msg: "built for acme/Tug-200, robotix/Lift-5, not for acme/Lift-5"},
		{name: "lower version", p: artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "2.1.0"}}, kind: artifact.KindRollback,
			msg: "rollback: version 2.0.0 is lower than the installed 2.1.0; not an explicit rollback",
			inspect: func(t *testing.T, err error) {
				var e *artifact.RollbackError
				if !errors.As(err, &e) || !e.VersionLower || e.CounterLower || e.Explicit {
					t.Errorf("%#v", err)
				}
			}},
		// The signed rollbackFrom alone is not enough either: the rollout
		// or softwareUpdate must ask for a rollback.
		{name: "lower version, rollbackFrom but not explicit", raw: authorised, sig: authorisedSig,
			p: artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "2.1.0", ReleaseCounter: 21}}, kind: artifact.KindRollback,
			msg: "; not an explicit rollback"},
		{name: "lower prerelease", p: artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "v2.0.1-rc.1"}}, kind: artifact.KindRollback},
		{name: "lower release counter", p: artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "1.4.2", ReleaseCounter: 21}}, kind: artifact.KindRollback,
			msg: "rollback: release counter 20 is lower than the installed 21;",
			inspect: func(t *testing.T, err error) {
				var e *artifact.RollbackError
				if !errors.As(err, &e) || e.VersionLower || !e.CounterLower || e.InstalledCounter != 21 {
					t.Errorf("%#v", err)
				}
			}},
		// An explicit rollback passes only when the signed rollbackFrom
		// includes the installed version.
		{name: "rollback authorised", raw: authorised, sig: authorisedSig,
			p: artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "2.1.0", ReleaseCounter: 21}, AllowRollback: true}},
		{name: "rollback authorised, v-prefixed installed version", raw: authorised, sig: authorisedSig,
			p: artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "v2.1", ReleaseCounter: 21}, AllowRollback: true}},
		{name: "rollback authorised, lower release counter only", raw: authorised, sig: authorisedSig,
			p: artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "2.0.0", ReleaseCounter: 21}, AllowRollback: true}},
		{name: "rollback without rollbackFrom", p: artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "2.1.0", ReleaseCounter: 21}, AllowRollback: true},
			kind: artifact.KindRollback,
			msg:  "rollback: version 2.0.0 is lower than the installed 2.1.0 and release counter 20 is lower than the installed 21; explicit rollback refused: the signed manifest authorises no rollback (no rollbackFrom)",
			inspect: func(t *testing.T, err error) {
				var e *artifact.RollbackError
				if !errors.As(err, &e) || !e.Explicit || e.RollbackFrom != "" || !e.VersionLower || !e.CounterLower {
					t.Errorf("%#v", err)
				}
			}},
		{name: "lower release counter, explicit, without rollbackFrom", p: artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "1.4.2", ReleaseCounter: 21}, AllowRollback: true},
			kind: artifact.KindRollback, msg: "release counter 20 is lower than the installed 21; explicit rollback refused: the signed manifest authorises no rollback"},
		{name: "rollback outside rollbackFrom", raw: authorised, sig: authorisedSig,
			p:    artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "2.2.0", ReleaseCounter: 22}, AllowRollback: true},
			kind: artifact.KindRollback, msg: `explicit rollback refused: its signed rollbackFrom ">=2.0.0 <2.2.0" does not include installed version 2.2.0`,
			inspect: func(t *testing.T, err error) {
				var e *artifact.RollbackError
				if !errors.As(err, &e) || !e.Explicit || e.RollbackFrom != ">=2.0.0 <2.2.0" || e.InstalledVersion != "2.2.0" {
					t.Errorf("%#v", err)
				}
			}},
		{name: "lower release counter outside rollbackFrom", raw: authorised, sig: authorisedSig,
			p:    artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "1.4.2", ReleaseCounter: 21}, AllowRollback: true},
			kind: artifact.KindRollback, msg: `release counter 20 is lower than the installed 21; explicit rollback refused: its signed rollbackFrom ">=2.0.0 <2.2.0" does not include installed version 1.4.2`,
			inspect: func(t *testing.T, err error) {
				var e *artifact.RollbackError
				if !errors.As(err, &e) || e.VersionLower || !e.CounterLower {
					t.Errorf("%#v", err)
				}
			}},
		// Masterminds semantics: a prerelease is in no range without one.
		{name: "rollback from a prerelease outside rollbackFrom", raw: authorised, sig: authorisedSig,
			p:    artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "2.1.0-rc.1", ReleaseCounter: 21}, AllowRollback: true},
			kind: artifact.KindRollback, msg: "does not include installed version 2.1.0-rc.1"},
		{name: "upgrade with rollbackFrom", raw: authorised, sig: authorisedSig,
			p: artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "1.4.2", ReleaseCounter: 14}, AllowRollback: true}},
		{name: "same version", p: artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "2.0.0", ReleaseCounter: 20}}},
		{name: "installed version not semver", p: artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "latest"}}, kind: artifact.KindMalformed,
			msg: "malformed installed version"},
		{name: "installed version not semver, explicit rollback", raw: authorised, sig: authorisedSig,
			p: artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "latest"}, AllowRollback: true}, kind: artifact.KindMalformed,
			msg: "malformed installed version"},
		{name: "manifest not JSON", raw: []byte("fleetos 2.0.0"), kind: artifact.KindMalformed, msg: "malformed manifest: manifest: /: ",
			inspect: func(t *testing.T, err error) {
				var se *schemas.SpecError
				if !errors.As(err, &se) {
					t.Errorf("%#v does not wrap a *schemas.SpecError", err)
				}
			}},
		{name: "manifest breaks the schema", raw: bytes.Replace(good, []byte(`"version": "2.0.0"`), []byte(`"version": "v2.0.0"`), 1),
			kind: artifact.KindMalformed, msg: "/version: v2.0.0 is not a semantic version"},
		{name: "manifest breaks the schema: rollbackFrom", raw: notAConstraint, sig: sign(t, release, notAConstraint),
			p: artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "2.1.0"}, AllowRollback: true}, kind: artifact.KindMalformed,
			msg: `malformed manifest: manifest: /rollbackFrom: "newer than 2.0.0" is not a semantic version constraint`},
		{name: "signature not base64", sig: []byte("not base64!"), kind: artifact.KindMalformed, msg: "artifact fleetos-2.0.0.bin: malformed signature: not base64"},
		{name: "unsigned", sig: []byte{}, kind: artifact.KindMalformed, msg: "malformed signature: missing (the artifact is unsigned)"},
		// Order: a wrong key is reported before expiry, expiry before hardware.
		{name: "unknown key and expired", raw: manifestFor(t, content, "2.0.0", 20, rogue.id),
			p: artifact.Policy{Now: time.Date(2037, 1, 1, 0, 0, 0, 0, time.UTC)}, kind: artifact.KindUnknownKey},
		{name: "expired and wrong hardware", p: artifact.Policy{Now: time.Date(2037, 1, 1, 0, 0, 0, 0, time.UTC), Hardware: &schemas.Hardware{Manufacturer: "x", Model: "y"}},
			kind: artifact.KindExpired},
		{name: "rollback and tampered", data: flipped, p: artifact.Policy{Now: now, Installed: &artifact.Installed{Version: "3.0.0"}}, kind: artifact.KindRollback},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.raw == nil {
				c.raw = good
			}
			if c.sig == nil {
				c.sig = goodSig
			}
			if c.data == nil {
				c.data = content
			}
			if c.p.Now.IsZero() {
				c.p.Now = now
			}
			m, err := artifact.VerifyArtifact(ring, c.raw, c.sig, bytes.NewReader(c.data), c.p)
			if got := artifact.ErrorKind(err); got != c.kind {
				t.Fatalf("kind %q (%v), want %q", got, err, c.kind)
			}
			if c.kind == "" {
				if m.Version != "2.0.0" {
					t.Errorf("verified manifest %+v", m)
				}
				return
			}
			if !reflect.DeepEqual(m, schemas.Manifest{}) {
				t.Errorf("a rejected artifact returned its manifest %+v", m)
			}
			if !strings.HasPrefix(err.Error(), "artifact fleetos-2.0.0.bin: ") && c.name != "manifest not JSON" && !strings.HasPrefix(c.name, "manifest breaks") {
				t.Errorf("%q does not name the artifact", err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("%q does not say %q", err, c.msg)
			}
			if c.inspect != nil {
				c.inspect(t, err)
			}
		})
	}
}

func TestErrorKind(t *testing.T) {
	wrapped := fmt.Errorf("activity VerifyArtifact: %w", &artifact.ExpiredError{Artifact: "a"})
	if k := artifact.ErrorKind(wrapped); k != "Expired" {
		t.Errorf("wrapped: %q", k)
	}
	for _, err := range []error{nil, errors.New("connection reset"), &schemas.SpecError{}} {
		if k := artifact.ErrorKind(err); k != "" {
			t.Errorf("%v: kind %q", err, k)
		}
	}
	kinds := map[string]error{
		"BadSignature": &artifact.BadSignatureError{}, "UnknownKey": &artifact.UnknownKeyError{},
		"DigestMismatch": &artifact.DigestMismatchError{}, "LengthMismatch": &artifact.LengthMismatchError{},
		"Expired": &artifact.ExpiredError{}, "HardwareMismatch": &artifact.HardwareMismatchError{},
		"Rollback": &artifact.RollbackError{}, "Malformed": &artifact.MalformedError{},
	}
	for want, err := range kinds {
		if got := artifact.ErrorKind(err); got != want {
			t.Errorf("%T: kind %q, want %q", err, got, want)
		}
	}
	// Without Policy.Now nothing can be checked for expiry: a bug, not a rejection.
	k := newKey(t, artifact.KeyEd25519)
	raw := manifestFor(t, content, "2.0.0", 20, k.id)
	if _, err := artifact.VerifyManifest(keyring(t, k), raw, sign(t, k, raw), artifact.Policy{}); err == nil || artifact.ErrorKind(err) != "" {
		t.Errorf("zero Now: %v", err)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadKeyring(t *testing.T) {
	a, b := newKey(t, artifact.KeyECDSAP256), newKey(t, artifact.KeyEd25519)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.pub"), a.pub)
	writeFile(t, filepath.Join(dir, "a.key"), a.priv) // not *.pub: ignored
	other := filepath.Join(t.TempDir(), "b.pem")
	writeFile(t, other, b.pub)

	ring, err := artifact.LoadKeyring(dir, other)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{a.id, b.id}
	if a.id > b.id {
		want = []string{b.id, a.id}
	}
	if !reflect.DeepEqual(ring.IDs(), want) {
		t.Errorf("IDs %v, want %v", ring.IDs(), want)
	}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, _ := cryptoutils.MarshalPublicKeyToPEM(rsaKey.Public())
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384Pub, _ := cryptoutils.MarshalPublicKeyToPEM(p384.Public())
	bad := map[string][]byte{"private.pub": a.priv, "rsa.pub": rsaPub, "p384.pub": p384Pub, "junk.pub": []byte("hello")}
	for name, data := range bad {
		p := filepath.Join(t.TempDir(), name)
		writeFile(t, p, data)
		if _, err := artifact.LoadKeyring(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
	for _, p := range []string{t.TempDir(), filepath.Join(dir, "missing.pub")} {
		if _, err := artifact.LoadKeyring(p); err == nil {
			t.Errorf("%s: no error", p)
		}
	}
	if _, err := artifact.ParseKeyring(); err == nil {
		t.Error("an empty keyring must be an error")
	}
	if _, _, err := artifact.GenerateKeyPair("rsa-2048"); err == nil {
		t.Error("rsa-2048: no error")
	}
	if _, err := artifact.Sign(rsaPub, []byte("{}")); err == nil {
		t.Error("Sign with a public key: no error")
	}
}

func TestPaths(t *testing.T) {
	a, m, s := artifact.Paths("store", "fleetos-2.0.0.bin")
	if a != filepath.Join("store", "fleetos-2.0.0.bin") || m != a+".manifest.json" || s != a+".manifest.json.sig" {
		t.Errorf("%s %s %s", a, m, s)
	}
}

// The committed artifacts (testdata/artifacts/make.sh) against the local
// stack's keyring, as a robot of each fleet model running 1.4.2 sees them.
func TestTestdataArtifacts(t *testing.T) {
	const dir = "../../testdata/artifacts"
	ring, err := artifact.LoadKeyring("../../testdata/keys/trusted")
	if err != nil {
		t.Fatal(err)
	}
	keyID := func(name string) string {
		raw, err := os.ReadFile("../../testdata/keys/" + name + ".key")
		if err != nil {
			t.Fatal(err)
		}
		id, err := artifact.PrivateKeyID(raw)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	ecdsaID, edID, rogueID := keyID("release-ecdsa"), keyID("release-ed25519"), keyID("rogue-ecdsa")
	if ids := ring.IDs(); !(len(ids) == 2 && slices.Contains(ids, ecdsaID) && slices.Contains(ids, edID)) {
		t.Errorf("trusted keyring %v, want release-ecdsa %s and release-ed25519 %s", ring.IDs(), ecdsaID, edID)
	}
	fleet := []schemas.Hardware{tug, lift,
		{Manufacturer: "acme", Model: "acme-grid"}, {Manufacturer: "robotix", Model: "robotix-grid"},
		{Manufacturer: "nordbot", Model: "nordbot-grid"}, {Manufacturer: "gridsim", Model: "gridsim-grid"}}
	for _, tc := range []struct {
		file, version string
		counter       int64
		keyID, kind   string
		fault         string
		rollbackFrom  string
	}{
		{"fleetos-2.0.0.bin", "2.0.0", 20, ecdsaID, "", "", ">=2.0.1 <2.2.0"},
		{"fleetos-2.1.0-bad.bin", "2.1.0", 21, ecdsaID, "", "sim-fault: fatal-after-boot", ""},
		{"fleetos-2.0.1-hang.bin", "2.0.1", 21, ecdsaID, "", "sim-fault: hang-install", ""},
		{"fleetos-1.4.2.bin", "1.4.2", 14, edID, "", "", ">=2.0.0 <2.2.0"},
		{"fleetos-2.2.0-unsigned.bin", "2.2.0", 22, ecdsaID, artifact.KindMalformed, "", ""},
		{"fleetos-2.3.0-rogue.bin", "2.3.0", 23, rogueID, artifact.KindUnknownKey, "", ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			file, manifestPath, sigPath := artifact.Paths(dir, tc.file)
			raw, err := os.ReadFile(manifestPath)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := os.ReadFile(sigPath)
			if tc.kind == artifact.KindMalformed {
				if !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("%s must not exist: %v", sigPath, err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			if first != "fleetos "+tc.version {
				t.Errorf("first line %q", first)
			}
			var faults []string
			for sc := bufio.NewScanner(bytes.NewReader(data)); sc.Scan(); {
				if strings.HasPrefix(sc.Text(), "sim-fault:") {
					faults = append(faults, sc.Text())
				}
			}
			if want := []string{tc.fault}; (tc.fault == "" && len(faults) > 0) || (tc.fault != "" && !reflect.DeepEqual(faults, want)) {
				t.Errorf("fault lines %q, want %q", faults, tc.fault)
			}
			for _, hw := range fleet {
				p := artifact.Policy{Now: now, Hardware: &hw, Installed: &artifact.Installed{Version: "1.4.2"}}
				m, err := artifact.VerifyArtifact(ring, raw, sig, bytes.NewReader(data), p)
				if got := artifact.ErrorKind(err); got != tc.kind || (got == "" && err != nil) {
					t.Fatalf("%s: %v, want kind %q", hw, err, tc.kind)
				}
				if err == nil && (m.Version != tc.version || m.ReleaseCounter != tc.counter || m.KeyID != tc.keyID || m.File != tc.file) {
					t.Errorf("manifest %+v", m)
				}
			}
			// The manifest itself is well formed and names the expected key,
			// so a rejection is about trust and signatures only.
			m, err := schemas.ParseManifest(raw)
			if err != nil || m.KeyID != tc.keyID || m.Version != tc.version || m.ReleaseCounter != tc.counter || m.RollbackFrom != tc.rollbackFrom {
				t.Errorf("manifest %+v %v", m, err)
			}
			if tc.kind == artifact.KindUnknownKey {
				rogue, err := artifact.LoadKeyring("../../testdata/keys/rogue-ecdsa.pub")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := artifact.VerifyArtifact(rogue, raw, sig, bytes.NewReader(data), artifact.Policy{Now: now}); err != nil {
					t.Errorf("with the rogue key trusted: %v", err)
				}
			}
		})
	}
	// Rolling back takes an explicit rollback that the release's signed
	// rollbackFrom authorises: 1.4.2 over 2.0.0 … 2.1.x (r-rollback-1.4.2),
	// 2.0.0 over 2.0.1 … 2.1.x (the e2e rollout's canaries on 2.1.0-bad).
	for _, tc := range []struct {
		file             string
		installed        string
		installedCounter int64
		allowRollback    bool
		kind             string
	}{
		{"fleetos-1.4.2.bin", "2.0.0", 20, false, artifact.KindRollback},
		{"fleetos-1.4.2.bin", "2.0.0", 20, true, ""},
		{"fleetos-1.4.2.bin", "2.1.0", 21, true, ""},
		{"fleetos-1.4.2.bin", "2.2.0", 22, true, artifact.KindRollback},
		{"fleetos-1.4.2.bin", "1.9.0", 19, true, artifact.KindRollback},
		{"fleetos-2.0.0.bin", "2.1.0", 21, false, artifact.KindRollback},
		{"fleetos-2.0.0.bin", "2.1.0", 21, true, ""},
		{"fleetos-2.0.0.bin", "2.0.1", 21, true, ""},
		{"fleetos-2.0.0.bin", "2.3.0", 23, true, artifact.KindRollback},
		{"fleetos-2.0.1-hang.bin", "2.1.0", 21, true, artifact.KindRollback}, // no rollbackFrom
	} {
		file, manifestPath, sigPath := artifact.Paths(dir, tc.file)
		raw, _ := os.ReadFile(manifestPath)
		sig, _ := os.ReadFile(sigPath)
		data, _ := os.ReadFile(file)
		p := artifact.Policy{Now: now, Hardware: &tug, Installed: &artifact.Installed{Version: tc.installed, ReleaseCounter: tc.installedCounter}, AllowRollback: tc.allowRollback}
		if _, err := artifact.VerifyArtifact(ring, raw, sig, bytes.NewReader(data), p); artifact.ErrorKind(err) != tc.kind || (tc.kind == "" && err != nil) {
			t.Errorf("%s over %s (counter %d), AllowRollback %v: %v, want kind %q", tc.file, tc.installed, tc.installedCounter, tc.allowRollback, err, tc.kind)
		}
	}
}

// Package artifact signs and verifies OTA artifacts: a file, its manifest
// (schemas.Manifest, JSON) and a detached signature over the manifest's
// exact bytes, base64 of the raw signature as `cosign sign-blob
// --output-signature` writes it. Keys are ECDSA P-256 or Ed25519, PEM
// (PKIX public keys, unencrypted PKCS #8 private keys); signatures are made
// and checked with sigstore's pkg/signature.
//
// Verification follows Uptane/TUF for a single targets role: the signing key
// must be trusted, the signature valid, the manifest unexpired, the hardware
// listed, the version and release counter not lower than what is installed,
// and the content exactly the manifest's length and SHA-256. Every rejection
// is a distinct error type with a stable Kind (ErrorKind), which workflows
// turn into non-retryable Temporal application errors.
//
// This package reads no clocks, files other than keys, or network: callers
// pass the time (workflows: workflow.Now) and the bytes.
package artifact

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Key kinds accepted by GenerateKeyPair.
const (
	KeyECDSAP256 = "ecdsa-p256"
	KeyEd25519   = "ed25519"
)

// KeyID names a public key: the first 16 hex digits (64 bits) of the SHA-256
// of its PKIX DER encoding, e.g. "3f1c0a9b77e2d451". Manifests carry it as
// keyId so the verifier picks the key without trying every one. It fails
// for keys x509 cannot marshal.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := cryptoutils.MarshalPublicKeyToDER(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])[:16], nil
}

// checkKeyType accepts the key kinds of this package: ECDSA on P-256 and
// Ed25519.
func checkKeyType(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("ECDSA key on %s: only P-256 is accepted", k.Curve.Params().Name)
		}
		return nil
	case ed25519.PublicKey:
		return nil
	default:
		return fmt.Errorf("%T: only ECDSA P-256 and Ed25519 keys are accepted", pub)
	}
}

// Keyring is the set of trusted public keys, by KeyID. It is read-only after
// it is built and safe for concurrent use.
type Keyring struct {
	verifiers map[string]signature.Verifier
}

// ParseKeyring builds a keyring of PEM public keys, one per argument
// (`cosign generate-key-pair` .pub files or those of GenerateKeyPair). It
// fails on no keys, on a PEM that is not a public key, and on keys other
// than ECDSA P-256 and Ed25519; errors name the key by position (1-based).
// The same key given twice counts once.
func ParseKeyring(pems ...[]byte) (*Keyring, error) {
	k := &Keyring{verifiers: map[string]signature.Verifier{}}
	for i, p := range pems {
		if err := k.add(p); err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
	}
	if len(k.verifiers) == 0 {
		return nil, errors.New("keyring: no keys")
	}
	return k, nil
}

// LoadKeyring builds a keyring from files: each path is a PEM public key
// file (any name, e.g. .pub or .pem) or a directory whose *.pub files are
// all read (not recursively). Errors name the file; an empty keyring (e.g.
// a directory without *.pub) is an error.
func LoadKeyring(paths ...string) (*Keyring, error) {
	k := &Keyring{verifiers: map[string]signature.Verifier{}}
	for _, p := range paths {
		files := []string{p}
		if fi, err := os.Stat(p); err != nil {
			return nil, err
		} else if fi.IsDir() {
			if files, err = filepath.Glob(filepath.Join(p, "*.pub")); err != nil {
				return nil, err
			}
			if len(files) == 0 {
				return nil, fmt.Errorf("keyring %s: no *.pub files", p)
			}
		}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			if err := k.add(raw); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
		}
	}
	if len(k.verifiers) == 0 {
		return nil, errors.New("keyring: no keys")
	}
	return k, nil
}

func (k *Keyring) add(pemBytes []byte) error {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return err
	}
	if err := checkKeyType(pub); err != nil {
		return err
	}
	id, err := KeyID(pub)
	if err != nil {
		return err
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return err
	}
	k.verifiers[id] = v
	return nil
}

// verifier returns the trusted key id; a nil keyring trusts nothing.
func (k *Keyring) verifier(id string) (signature.Verifier, bool) {
	if k == nil {
		return nil, false
	}
	v, ok := k.verifiers[id]
	return v, ok
}

// IDs lists the KeyIDs of the trusted keys, sorted.
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	ids := make([]string, 0, len(k.verifiers))
	for id := range k.verifiers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// GenerateKeyPair makes a new signing key of kind KeyECDSAP256 or
// KeyEd25519 and returns it as PEM: the private key unencrypted PKCS #8
// ("PRIVATE KEY"), the public key PKIX ("PUBLIC KEY"). Keep the private key
// secret (mode 0600); only the public key goes into keyrings.
func GenerateKeyPair(kind string) (privPEM, pubPEM []byte, err error) {
	switch kind {
	case KeyECDSAP256:
		return cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), nil)
	case KeyEd25519:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		if privPEM, err = cryptoutils.MarshalPrivateKeyToPEM(priv); err != nil {
			return nil, nil, err
		}
		if pubPEM, err = cryptoutils.MarshalPublicKeyToPEM(pub); err != nil {
			return nil, nil, err
		}
		return privPEM, pubPEM, nil
	default:
		return nil, nil, fmt.Errorf("key kind %q: want %s or %s", kind, KeyECDSAP256, KeyEd25519)
	}
}

// parseSigner reads an unencrypted PEM private key of an accepted kind.
func parseSigner(privPEM []byte) (crypto.Signer, error) {
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(privPEM, nil)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key: %T cannot sign", priv)
	}
	if err := checkKeyType(s.Public()); err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	return s, nil
}

// PrivateKeyID is the KeyID of the public half of a PEM private key: the
// keyId to write into a manifest before Sign.
func PrivateKeyID(privPEM []byte) (string, error) {
	s, err := parseSigner(privPEM)
	if err != nil {
		return "", err
	}
	return KeyID(s.Public())
}

// Sign signs manifestRaw, exactly these bytes, with an unencrypted PEM
// private key (ECDSA P-256: SHA-256 then ASN.1 DER signature; Ed25519: the
// message itself) and returns the signature in base64 (standard encoding,
// no newline), as `cosign sign-blob --output-signature` writes it. Sign does
// not read the manifest: it is the caller's job that its keyId is this
// key's (PrivateKeyID).
func Sign(privPEM, manifestRaw []byte) (sigBase64 []byte, err error) {
	priv, err := parseSigner(privPEM)
	if err != nil {
		return nil, err
	}
	signer, err := signature.LoadSigner(priv, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	sig, err := signer.SignMessage(bytes.NewReader(manifestRaw))
	if err != nil {
		return nil, err
	}
	return encodeSig(sig), nil
}

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/spf13/cobra"

	"github.com/fleetflow/fleetflow/internal/artifact"
	"github.com/fleetflow/fleetflow/schemas"
)

func artifactCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "artifact",
		Short: "Signed OTA artifacts: make signing keys, sign and verify manifests",
		Long: `An OTA artifact is a file F, its manifest F.manifest.json (schemas/manifest.schema.json)
and F.manifest.json.sig, base64 of a signature over the manifest's exact bytes
(what cosign sign-blob --output-signature writes). Keys are ECDSA P-256 or Ed25519, PEM.`,
	}
	cmd.AddCommand(artifactKeygenCmd(g), artifactSignCmd(g), artifactVerifyCmd(g))
	return cmd
}

func artifactKeygenCmd(g *globalFlags) *cobra.Command {
	var kind, out string
	cmd := &cobra.Command{
		Use:   "keygen --out PREFIX",
		Short: "Make a signing key pair: PREFIX.key (private, mode 0600) and PREFIX.pub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return badInput("--out PREFIX is required")
			}
			if kind != artifact.KeyECDSAP256 && kind != artifact.KeyEd25519 {
				return badInput("--kind %q: want %s or %s", kind, artifact.KeyECDSAP256, artifact.KeyEd25519)
			}
			keyPath, pubPath := out+".key", out+".pub"
			for _, p := range []string{keyPath, pubPath} {
				if _, err := os.Lstat(p); err == nil {
					return badInput("%s exists: not overwriting a key", p)
				}
			}
			priv, pub, err := artifact.GenerateKeyPair(kind)
			if err != nil {
				return err
			}
			id, err := artifact.PrivateKeyID(priv)
			if err != nil {
				return err
			}
			if err := writeNew(keyPath, priv, 0o600); err != nil {
				return err
			}
			if err := writeNew(pubPath, pub, 0o644); err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), g, map[string]string{"kind": kind, "keyId": id, "privateKey": keyPath, "publicKey": pubPath}, func(w io.Writer) {
				fmt.Fprintf(w, "%s key %s\nwrote %s (private: keep it secret)\nwrote %s (public: add it to the trusted keyring)\n", kind, id, keyPath, pubPath)
			})
		},
	}
	cmd.Flags().StringVar(&kind, "kind", artifact.KeyECDSAP256, "key kind: "+artifact.KeyECDSAP256+" or "+artifact.KeyEd25519)
	cmd.Flags().StringVar(&out, "out", "", "path prefix of the key files")
	return cmd
}

// writeNew creates path with data, failing if it exists.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// parseHardware reads "manufacturer/model".
func parseHardware(s string) (schemas.Hardware, error) {
	mf, model, ok := strings.Cut(s, "/")
	if !ok || mf == "" || model == "" {
		return schemas.Hardware{}, badInput("--hardware %q: want manufacturer/model, e.g. acme/Tug-200", s)
	}
	return schemas.Hardware{Manufacturer: mf, Model: model}, nil
}

// digestFile is the SHA-256 (hex) and length in bytes of a file.
func digestFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func artifactSignCmd(g *globalFlags) *cobra.Command {
	var keyPath, file, name, version, expires, outDir, rollbackFrom string
	var hardware []string
	var counter int64
	cmd := &cobra.Command{
		Use:   "sign --key KEY --file F --name N --version V --hardware M/MODEL --release-counter N --expires RFC3339 [--rollback-from RANGE]",
		Short: "Write F.manifest.json and its signature F.manifest.json.sig next to F (or in --out-dir)",
		Long: `sign writes F's manifest and signs it. --rollback-from RANGE (a semver constraint,
e.g. ">=2.0.1 <2.2.0") authorises explicit rollbacks to this release from the installed
versions it names: without it, the release is never installed over newer software,
whatever a rollout or softwareUpdate says (Uptane rollback protection).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, f := range []struct{ flag, v string }{{"key", keyPath}, {"file", file}, {"name", name}, {"version", version}, {"expires", expires}} {
				if f.v == "" {
					return badInput("--%s is required", f.flag)
				}
			}
			if len(hardware) == 0 {
				return badInput("--hardware manufacturer/model is required (repeat it for each model)")
			}
			if cmd.Flags().Changed("rollback-from") {
				if strings.TrimSpace(rollbackFrom) == "" {
					return badInput("--rollback-from is empty: want a semver constraint, e.g. \">=2.0.1 <2.2.0\"")
				}
				if _, err := semver.NewConstraint(rollbackFrom); err != nil {
					return badInput("--rollback-from %q is not a semver constraint (e.g. \">=2.0.1 <2.2.0\"): %v", rollbackFrom, err)
				}
			}
			m := schemas.Manifest{Name: name, Version: version, File: filepath.Base(file), ReleaseCounter: counter, RollbackFrom: rollbackFrom}
			for _, s := range hardware {
				h, err := parseHardware(s)
				if err != nil {
					return err
				}
				m.Hardware = append(m.Hardware, h)
			}
			exp, err := time.Parse(time.RFC3339, expires)
			if err != nil {
				return badInput("--expires %q: want RFC 3339, e.g. 2036-01-01T00:00:00Z", expires)
			}
			if !exp.After(time.Now()) {
				return badInput("--expires %s is in the past", expires)
			}
			m.Expires = exp.UTC()
			priv, err := os.ReadFile(keyPath)
			if err != nil {
				return usageError{err}
			}
			if m.KeyID, err = artifact.PrivateKeyID(priv); err != nil {
				return badInput("%s: %w", keyPath, err)
			}
			if m.SHA256, m.Length, err = digestFile(file); err != nil {
				return usageError{err}
			}
			// Indented, with a final newline, and rollbackFrom's "<" and ">"
			// as they are (not \u003c): humans read manifests.
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(m); err != nil {
				return err
			}
			raw := buf.Bytes()
			if _, err := schemas.ParseManifest(raw); err != nil { // e.g. a "v" version, a zero counter
				return usageError{err}
			}
			sig, err := artifact.Sign(priv, raw)
			if err != nil {
				return err
			}
			if outDir == "" {
				outDir = filepath.Dir(file)
			}
			_, manifestPath, sigPath := artifact.Paths(outDir, m.File)
			if err := os.WriteFile(manifestPath, raw, 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(sigPath, sig, 0o644); err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), g, map[string]any{"manifest": manifestPath, "signature": sigPath, "keyId": m.KeyID, "sha256": m.SHA256, "length": m.Length},
				func(w io.Writer) {
					fmt.Fprintf(w, "signed %s %s (%s, %d bytes) with key %s\nwrote %s\nwrote %s\n", m.Name, m.Version, m.File, m.Length, m.KeyID, manifestPath, sigPath)
				})
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyPath, "key", "", "PEM private key (artifact keygen, unencrypted)")
	f.StringVar(&file, "file", "", "artifact file to sign")
	f.StringVar(&name, "name", "", "software name, e.g. fleetos")
	f.StringVar(&version, "version", "", "semver without v, e.g. 2.0.0")
	f.StringArrayVar(&hardware, "hardware", nil, "manufacturer/model the artifact is built for (repeatable)")
	f.Int64Var(&counter, "release-counter", 0, "Uptane release counter, >= 1, never lower than the previous release's")
	f.StringVar(&expires, "expires", "", "manifest expiry, RFC 3339, e.g. 2036-01-01T00:00:00Z")
	f.StringVar(&rollbackFrom, "rollback-from", "", `semver constraint of the installed versions an explicit rollback may replace with this release, e.g. ">=2.0.1 <2.2.0" (default: none may)`)
	f.StringVar(&outDir, "out-dir", "", "write the manifest and signature here instead of next to the file")
	return cmd
}

func artifactVerifyCmd(g *globalFlags) *cobra.Command {
	var keys []string
	var file, hardware, installedVersion string
	var installedCounter int64
	var rollback bool
	cmd := &cobra.Command{
		Use:   "verify --keys PATH --file F",
		Short: "Verify F against F.manifest.json and its signature; exit 2 with <Kind>: message if rejected",
		Long: `verify checks, in order: the manifest parses, its key is trusted (--keys), the signature
is valid, the manifest has not expired, --hardware is listed, the version and release
counter are not lower than --installed-version/--installed-counter (unless --rollback
and the manifest's signed rollbackFrom includes --installed-version), and F has the
manifest's length and SHA-256. A rejection exits 2 with its kind:
Malformed, UnknownKey, BadSignature, Expired, HardwareMismatch, Rollback,
LengthMismatch or DigestMismatch.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(keys) == 0 || file == "" {
				return badInput("--keys PATH and --file F are required")
			}
			p := artifact.Policy{Now: time.Now(), AllowRollback: rollback}
			if hardware != "" {
				h, err := parseHardware(hardware)
				if err != nil {
					return err
				}
				p.Hardware = &h
			}
			if installedVersion != "" {
				p.Installed = &artifact.Installed{Version: installedVersion, ReleaseCounter: installedCounter}
			} else if cmd.Flags().Changed("installed-counter") {
				return badInput("--installed-counter needs --installed-version")
			} else if rollback {
				return badInput("--rollback needs --installed-version: a rollback is checked against what the robot runs")
			}
			ring, err := artifact.LoadKeyring(keys...)
			if err != nil {
				return usageError{err}
			}
			_, manifestPath, sigPath := artifact.Paths(filepath.Dir(file), filepath.Base(file))
			raw, err := os.ReadFile(manifestPath)
			if err != nil {
				return usageError{err}
			}
			sig, err := os.ReadFile(sigPath)
			if err != nil && !errors.Is(err, fs.ErrNotExist) { // none: unsigned, rejected as Malformed
				return err
			}
			content, err := os.Open(file)
			if err != nil {
				return usageError{err}
			}
			defer content.Close()
			m, err := artifact.VerifyArtifact(ring, raw, sig, content, p)
			if kind := artifact.ErrorKind(err); kind != "" {
				return usageError{fmt.Errorf("%s: %w", kind, err)}
			} else if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), g, m, func(w io.Writer) { printManifest(w, m) })
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&keys, "keys", nil, "trusted public key file, or directory of *.pub (repeatable)")
	f.StringVar(&file, "file", "", "artifact file; its manifest and signature lie next to it")
	f.StringVar(&hardware, "hardware", "", "manufacturer/model of the robot to install on")
	f.StringVar(&installedVersion, "installed-version", "", "version the robot runs (rollback check)")
	f.Int64Var(&installedCounter, "installed-counter", 0, "release counter of the installed version")
	f.BoolVar(&rollback, "rollback", false, "an explicit rollback: allow a lower version and release counter if the manifest's signed rollbackFrom includes --installed-version")
	return cmd
}

func printManifest(w io.Writer, m schemas.Manifest) {
	hw := make([]string, len(m.Hardware))
	for i, h := range m.Hardware {
		hw[i] = h.String()
	}
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "verified\t%s\n", m.File)
	fmt.Fprintf(tw, "name\t%s\n", m.Name)
	fmt.Fprintf(tw, "version\t%s\n", m.Version)
	fmt.Fprintf(tw, "release counter\t%d\n", m.ReleaseCounter)
	fmt.Fprintf(tw, "length\t%d bytes\n", m.Length)
	fmt.Fprintf(tw, "sha256\t%s\n", m.SHA256)
	fmt.Fprintf(tw, "hardware\t%s\n", strings.Join(hw, ", "))
	if m.RollbackFrom != "" {
		fmt.Fprintf(tw, "rollback from\t%s\n", m.RollbackFrom)
	}
	fmt.Fprintf(tw, "expires\t%s\n", m.Expires.UTC().Format(time.RFC3339))
	fmt.Fprintf(tw, "key\t%s\n", m.KeyID)
	tw.Flush()
}

package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleetflow/fleetflow/schemas"
)

// runArtifact runs `starter [-o output] artifact args…` in-process and
// returns its stdout, its error and the exit code main would give it.
func runArtifact(t *testing.T, output string, args ...string) (string, error, int) {
	t.Helper()
	cmd := artifactCmd(&globalFlags{output: output})
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	code := exitCode(err)
	return out.String(), err, code
}

func TestArtifactCLISignVerify(t *testing.T) {
	dir := t.TempDir()
	for _, kind := range []string{"ecdsa-p256", "ed25519"} {
		prefix := filepath.Join(dir, kind)
		if _, err, _ := runArtifact(t, "table", "keygen", "--kind", kind, "--out", prefix); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(prefix + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s.key: %v %v", prefix, fi.Mode(), err)
		}
		if _, err, code := runArtifact(t, "table", "keygen", "--kind", kind, "--out", prefix); code != 2 || !strings.Contains(err.Error(), "not overwriting") {
			t.Errorf("keygen over an existing key: exit %d %v", code, err)
		}
	}
	pubDir := filepath.Join(dir, "trusted")
	if err := os.Mkdir(pubDir, 0o755); err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join(dir, "ed25519.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pubDir, "ed25519.pub"), pub, 0o644); err != nil {
		t.Fatal(err)
	}

	firmware := filepath.Join(dir, "fleetos-2.0.0.bin")
	data := []byte("fleetos 2.0.0\nchanges: test\n")
	if err := os.WriteFile(firmware, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sign := func(key string, extra ...string) (string, error, int) {
		args := append([]string{"sign", "--key", filepath.Join(dir, key), "--file", firmware, "--name", "fleetos", "--version", "2.0.0",
			"--hardware", "acme/Tug-200", "--hardware", "robotix/Lift-5", "--release-counter", "20", "--expires", "2036-01-01T00:00:00Z"}, extra...)
		return runArtifact(t, "table", args...)
	}
	if out, err, _ := sign("ed25519.key"); err != nil || !strings.Contains(out, "signed fleetos 2.0.0 (fleetos-2.0.0.bin, 28 bytes)") {
		t.Fatalf("sign: %q %v", out, err)
	}
	raw, err := os.ReadFile(firmware + ".manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := schemas.ParseManifest(raw)
	if err != nil || m.Length != int64(len(data)) || len(m.Hardware) != 2 || m.ReleaseCounter != 20 {
		t.Fatalf("manifest %+v %v", m, err)
	}
	if _, err := os.Stat(firmware + ".manifest.json.sig"); err != nil {
		t.Fatal(err)
	}

	verify := func(output string, extra ...string) (string, error, int) {
		return runArtifact(t, output, append([]string{"verify", "--keys", pubDir, "--file", firmware}, extra...)...)
	}
	out, err, _ := verify("table", "--hardware", "robotix/Lift-5", "--installed-version", "1.4.2", "--installed-counter", "14")
	if err != nil || !strings.Contains(out, "verified") || !strings.Contains(out, "2.0.0") || !strings.Contains(out, m.KeyID) {
		t.Fatalf("verify: %q %v", out, err)
	}
	out, err, _ = verify("json")
	var got schemas.Manifest
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.SHA256 != m.SHA256 || got.Version != "2.0.0" {
		t.Fatalf("verify -o json: %q %v", out, err)
	}

	for _, tc := range []struct {
		name   string
		mutate func([]byte) []byte
		args   []string
		prefix string
	}{
		{"tampered", func(b []byte) []byte { b[0] = 'F'; return b }, nil, "DigestMismatch: artifact fleetos-2.0.0.bin: sha256 mismatch: manifest says " + m.SHA256},
		{"truncated", func(b []byte) []byte { return b[:10] }, nil, "LengthMismatch: "},
		{"wrong hardware", nil, []string{"--hardware", "acme/Lift-5"}, "HardwareMismatch: "},
		{"older than installed", nil, []string{"--installed-version", "2.1.0"}, "Rollback: "},
		{"second --keys", nil, []string{"--keys", filepath.Join(dir, "ecdsa-p256.pub")}, ""}, // a directory and a file
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mutate != nil {
				if err := os.WriteFile(firmware, tc.mutate(bytes.Clone(data)), 0o644); err != nil {
					t.Fatal(err)
				}
				defer os.WriteFile(firmware, data, 0o644)
			}
			out, err, code := verify("table", tc.args...)
			if tc.prefix == "" {
				if err != nil {
					t.Errorf("%v", err)
				}
				return
			}
			if code != 2 || err == nil || !strings.HasPrefix(err.Error(), tc.prefix) || out != "" {
				t.Errorf("exit %d, %v, output %q; want exit 2 and %q…", code, err, out, tc.prefix)
			}
		})
	}

	// An explicit rollback needs the signed --rollback-from to include the
	// installed version.
	rollbackOver := func(installed string) (string, error, int) {
		return verify("table", "--installed-version", installed, "--installed-counter", "21", "--rollback")
	}
	if _, err, code := rollbackOver("2.1.0"); code != 2 || !strings.Contains(err.Error(), "the signed manifest authorises no rollback (no rollbackFrom)") {
		t.Errorf("--rollback without rollbackFrom: exit %d %v", code, err)
	}
	if out, err, _ := sign("ed25519.key", "--rollback-from", ">=2.0.1 <2.2.0"); err != nil || !strings.Contains(out, "signed fleetos 2.0.0") {
		t.Fatalf("sign --rollback-from: %q %v", out, err)
	}
	raw, err = os.ReadFile(firmware + ".manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"rollbackFrom": ">=2.0.1 <2.2.0",`)) {
		t.Errorf("manifest does not carry rollbackFrom readably:\n%s", raw)
	}
	if out, err, _ := rollbackOver("2.1.0"); err != nil || !strings.Contains(out, "rollback from    >=2.0.1 <2.2.0\n") {
		t.Errorf("--rollback within rollbackFrom: %q %v", out, err)
	}
	if _, err, code := rollbackOver("2.2.0"); code != 2 || !strings.HasPrefix(err.Error(), "Rollback: ") ||
		!strings.Contains(err.Error(), `its signed rollbackFrom ">=2.0.1 <2.2.0" does not include installed version 2.2.0`) {
		t.Errorf("--rollback outside rollbackFrom: exit %d %v", code, err)
	}
	if _, err, code := verify("table", "--installed-version", "2.1.0"); code != 2 || !strings.Contains(err.Error(), "not an explicit rollback") {
		t.Errorf("rollbackFrom without --rollback: exit %d %v", code, err)
	}

	// Signed by a key outside the keyring.
	if _, err, _ := sign("ecdsa-p256.key"); err != nil {
		t.Fatal(err)
	}
	if _, err, code := verify("table"); code != 2 || !strings.HasPrefix(err.Error(), "UnknownKey: ") {
		t.Errorf("untrusted signer: exit %d %v", code, err)
	}
	// --out-dir writes elsewhere and leaves the file's directory alone.
	outDir := t.TempDir()
	if _, err, _ := sign("ed25519.key", "--out-dir", outDir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(outDir, "fleetos-2.0.0.bin.manifest.json.sig")); err != nil {
		t.Error(err)
	}
}

func TestArtifactCLIBadInput(t *testing.T) {
	dir := t.TempDir()
	firmware := filepath.Join(dir, "fw.bin")
	if err := os.WriteFile(firmware, []byte("fleetos 2.0.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err, _ := runArtifact(t, "table", "keygen", "--out", filepath.Join(dir, "k")); err != nil {
		t.Fatal(err)
	}
	base := []string{"sign", "--key", filepath.Join(dir, "k.key"), "--file", firmware, "--name", "fleetos", "--release-counter", "1", "--hardware", "acme/Tug-200"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"v version", append(slices.Clone(base), "--version", "v2.0.0", "--expires", "2036-01-01T00:00:00Z"), "/version: v2.0.0 is not a semantic version"},
		{"past expiry", append(slices.Clone(base), "--version", "2.0.0", "--expires", "2020-01-01T00:00:00Z"), "in the past"},
		{"bad expiry", append(slices.Clone(base), "--version", "2.0.0", "--expires", "2036-01-01"), "want RFC 3339"},
		{"bad hardware", append(slices.Clone(base), "--version", "2.0.0", "--expires", "2036-01-01T00:00:00Z", "--hardware", "acme"), "want manufacturer/model"},
		{"bad rollback range", append(slices.Clone(base), "--version", "2.0.0", "--expires", "2036-01-01T00:00:00Z", "--rollback-from", "newer"), `--rollback-from "newer" is not a semver constraint`},
		{"empty rollback range", append(slices.Clone(base), "--version", "2.0.0", "--expires", "2036-01-01T00:00:00Z", "--rollback-from", " "), "--rollback-from is empty"},
		{"public key to sign", []string{"sign", "--key", filepath.Join(dir, "k.pub"), "--file", firmware, "--name", "fleetos", "--version", "2.0.0",
			"--release-counter", "1", "--hardware", "acme/Tug-200", "--expires", "2036-01-01T00:00:00Z"}, "private key"},
		{"no keys", []string{"verify", "--file", firmware}, "--keys PATH and --file F are required"},
		{"counter without version", []string{"verify", "--keys", filepath.Join(dir, "k.pub"), "--file", firmware, "--installed-counter", "3"}, "needs --installed-version"},
		{"no manifest", []string{"verify", "--keys", filepath.Join(dir, "k.pub"), "--file", firmware}, "fw.bin.manifest.json"},
		{"bad kind", []string{"keygen", "--kind", "rsa", "--out", filepath.Join(dir, "r")}, `--kind "rsa"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err, code := runArtifact(t, "table", tc.args...)
			if code != 2 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("exit %d, %v; want exit 2 and %q", code, err, tc.want)
			}
		})
	}
	if _, err := os.Stat(firmware + ".manifest.json"); err == nil {
		t.Error("a refused sign wrote a manifest")
	}
}

// The committed artifacts through the CLI, as the local stack's keyring sees
// them.
func TestArtifactCLITestdata(t *testing.T) {
	const keys, dir = "../testdata/keys/trusted", "../testdata/artifacts/"
	for _, tc := range []struct {
		file   string
		args   []string
		prefix string
	}{
		{"fleetos-2.0.0.bin", []string{"--hardware", "acme/Tug-200", "--installed-version", "1.4.2"}, ""},
		{"fleetos-2.1.0-bad.bin", []string{"--hardware", "robotix/Lift-5"}, ""},
		{"fleetos-1.4.2.bin", []string{"--installed-version", "2.0.0", "--installed-counter", "20"}, "Rollback: "},
		{"fleetos-1.4.2.bin", []string{"--installed-version", "2.0.0", "--installed-counter", "20", "--rollback"}, ""},
		{"fleetos-1.4.2.bin", []string{"--installed-version", "2.2.0", "--installed-counter", "22", "--rollback"}, "Rollback: "},
		{"fleetos-2.0.0.bin", []string{"--installed-version", "2.1.0", "--installed-counter", "21", "--rollback"}, ""},
		{"fleetos-2.1.0-bad.bin", []string{"--installed-version", "3.0.0", "--rollback"}, "Rollback: "},
		{"fleetos-2.2.0-unsigned.bin", nil, "Malformed: artifact fleetos-2.2.0-unsigned.bin: malformed signature: missing"},
		{"fleetos-2.3.0-rogue.bin", nil, "UnknownKey: "},
	} {
		out, err, code := runArtifact(t, "table", append([]string{"verify", "--keys", keys, "--file", dir + tc.file}, tc.args...)...)
		if tc.prefix == "" {
			if err != nil || !strings.Contains(out, tc.file) {
				t.Errorf("%s %v: %v\n%s", tc.file, tc.args, err, out)
			}
			continue
		}
		if code != 2 || err == nil || !strings.HasPrefix(err.Error(), tc.prefix) {
			t.Errorf("%s %v: exit %d %v; want exit 2 and %q…", tc.file, tc.args, code, err, tc.prefix)
		}
	}
}

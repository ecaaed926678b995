package activities

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/artifact"
	"github.com/fleetflow/fleetflow/schemas"
)

// OTA activities against an httptest artifact store serving a private copy
// of testdata/artifacts (so a test may tamper with it), the trusted keyring
// of testdata/keys/trusted and, for ResolveTargets, a fresh PostgreSQL.

const (
	srcArtifacts = "../testdata/artifacts"
	trustedKeys  = "../testdata/keys/trusted"
	// keyIds of testdata/keys (the manifests' keyId).
	releaseECDSAKeyID   = "af4d4ec37ab6fc2e"
	releaseEd25519KeyID = "efc7034ea494eac8"
)

// artifactServer serves a copy of testdata/artifacts; status makes it
// answer a path with an error status instead.
type artifactServer struct {
	dir string
	url string

	mu     sync.Mutex
	status map[string]int // URL path → status to answer
}

func (s *artifactServer) failWith(urlPath string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status[urlPath] = code
}

func (s *artifactServer) recover(urlPath string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.status, urlPath)
}

// newArtifactServer copies testdata/artifacts to a temporary directory and
// serves it under prefix ("" or e.g. "/store").
func newArtifactServer(t *testing.T, prefix string) *artifactServer {
	t.Helper()
	s := &artifactServer{dir: filepath.Join(t.TempDir(), "artifacts"), status: map[string]int{}}
	if err := os.CopyFS(s.dir, os.DirFS(srcArtifacts)); err != nil {
		t.Fatal(err)
	}
	var files http.Handler = http.FileServer(http.Dir(s.dir))
	if prefix != "" {
		files = http.StripPrefix(prefix, files)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		code, fail := s.status[r.URL.Path]
		s.mu.Unlock()
		if fail {
			http.Error(w, http.StatusText(code), code)
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL + prefix
	return s
}

// rewrite edits the served copy of file; the edit must change it.
func (s *artifactServer) rewrite(t *testing.T, file string, edit func([]byte) []byte) {
	t.Helper()
	p := filepath.Join(s.dir, file)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	out := edit(bytes.Clone(raw))
	if bytes.Equal(out, raw) {
		t.Fatalf("edit of %s changed nothing", file)
	}
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func trustedKeyring(t *testing.T) *artifact.Keyring {
	t.Helper()
	keys, err := artifact.LoadKeyring(trustedKeys)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(srcArtifacts, name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func testManifest(t *testing.T, file string) schemas.Manifest {
	t.Helper()
	m, err := schemas.ParseManifest(readTestdata(t, file+artifact.ManifestSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// wantRefusal checks that err is a non-retryable ApplicationError of type kind.
func wantRefusal(t *testing.T, err error, kind string) {
	t.Helper()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) {
		t.Fatalf("want a non-retryable %s ApplicationError, got %T: %v", kind, err, err)
	}
	if ae.Type() != kind || !ae.NonRetryable() {
		t.Fatalf("got ApplicationError type %q (non-retryable %v): %v; want non-retryable %q", ae.Type(), ae.NonRetryable(), err, kind)
	}
}

// wantRetryable checks that err is an error Temporal retries: not a
// non-retryable ApplicationError.
func wantRetryable(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("want a retryable error, got nil")
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.NonRetryable() {
		t.Fatalf("want a retryable error, got non-retryable %q: %v", ae.Type(), err)
	}
}

var fleetosHardware = []schemas.Hardware{
	{Manufacturer: "acme", Model: "Tug-200"},
	{Manufacturer: "robotix", Model: "Lift-5"},
	{Manufacturer: "acme", Model: "acme-grid"},
	{Manufacturer: "robotix", Model: "robotix-grid"},
	{Manufacturer: "nordbot", Model: "nordbot-grid"},
	{Manufacturer: "gridsim", Model: "gridsim-grid"},
}

func TestVerifyArtifactAcceptsSignedArtifact(t *testing.T) {
	keys := trustedKeyring(t)
	if ids := keys.IDs(); !reflect.DeepEqual(ids, []string{releaseECDSAKeyID, releaseEd25519KeyID}) {
		t.Fatalf("trusted keyring = %v", ids)
	}
	const file = "fleetos-2.0.0.bin"
	content := readTestdata(t, file)
	sum := sha256.Sum256(content)
	sig := strings.TrimSpace(string(readTestdata(t, file+artifact.SignatureSuffix)))
	if sig == "" {
		t.Fatal("test signature is empty")
	}

	for _, prefix := range []string{"", "/store"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			srv := newArtifactServer(t, prefix)
			a := &Activities{Artifacts: ArtifactStore{BaseURL: srv.url, Keys: keys}}
			ref, err := a.VerifyArtifact(context.Background(), schemas.VerifyArtifactInput{File: file})
			if err != nil {
				t.Fatalf("VerifyArtifact(%s): %v", file, err)
			}
			want := schemas.ArtifactRef{
				File: file, Name: "fleetos", Version: "2.0.0", ReleaseCounter: 20,
				SHA256: "9b6a0c24d620a1ae51342aabcfe93d27b79dbc76d63708dfb89edff011a3d2b2", Length: 180,
				Hardware: fleetosHardware, KeyID: releaseECDSAKeyID,
				ArtifactURL: srv.url + "/fleetos-2.0.0.bin",
				ManifestURL: srv.url + "/fleetos-2.0.0.bin.manifest.json",
				Signature:   sig,
			}
			if !reflect.DeepEqual(ref, want) {
				t.Fatalf("VerifyArtifact ref =\n%+v\nwant\n%+v", ref, want)
			}
			if got := hex.EncodeToString(sum[:]); ref.SHA256 != got || ref.Length != int64(len(content)) {
				t.Fatalf("ref sha256/length %s/%d, the file's are %s/%d", ref.SHA256, ref.Length, got, len(content))
			}
			// The URLs it hands to robots serve exactly the verified bytes.
			for u, body := range map[string][]byte{ref.ArtifactURL: content, ref.ManifestURL: readTestdata(t, file+artifact.ManifestSuffix)} {
				resp, err := http.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				var b bytes.Buffer
				b.ReadFrom(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !bytes.Equal(b.Bytes(), body) {
					t.Fatalf("GET %s = %s, %d bytes; want the artifact store's file", u, resp.Status, b.Len())
				}
			}
		})
	}

	// In.BaseURL overrides the configured store when it is an allowed one.
	srv := newArtifactServer(t, "")
	a := &Activities{Artifacts: ArtifactStore{BaseURL: "http://127.0.0.1:1/nowhere", Allowed: []string{srv.url + "/"}, Keys: keys}}
	ref, err := a.VerifyArtifact(context.Background(), schemas.VerifyArtifactInput{File: file, BaseURL: srv.url})
	if err != nil || ref.ArtifactURL != srv.url+"/"+file {
		t.Fatalf("VerifyArtifact with BaseURL override = %+v, %v", ref, err)
	}
	// Any other URL is refused before anything is fetched: a rollout
	// cannot point the ota worker at an internal endpoint.
	fetched := false
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { fetched = true }))
	defer other.Close()
	for _, u := range []string{other.URL, "http://169.254.169.254/latest/meta-data/", srv.url + "@evil.example/", "http://127.0.0.1:1/nowhere-else", "file:///etc/passwd"} {
		_, err := a.VerifyArtifact(context.Background(), schemas.VerifyArtifactInput{File: file, BaseURL: u})
		var ae *temporal.ApplicationError
		if !errors.As(err, &ae) || ae.Type() != schemas.ErrInvalidRollout || !ae.NonRetryable() || !strings.Contains(err.Error(), "not under the configured artifact store") {
			t.Fatalf("baseUrl %s: %v", u, err)
		}
	}
	if fetched {
		t.Fatal("a refused baseUrl was fetched")
	}
	// Under the configured store itself, a sub-path is fine.
	if !underBase("http://127.0.0.1:1/nowhere/v2/", "http://127.0.0.1:1/nowhere") || underBase("http://127.0.0.1:1/nowhereelse", "http://127.0.0.1:1/nowhere") {
		t.Fatal("underBase must compare whole path segments")
	}
}

func TestVerifyArtifactRefusals(t *testing.T) {
	keys := trustedKeyring(t)
	cases := []struct {
		name   string
		file   string
		tamper func(t *testing.T, s *artifactServer)
		kind   string
	}{
		{name: "no signature", file: "fleetos-2.2.0-unsigned.bin", kind: schemas.ErrUnsigned},
		{name: "untrusted key", file: "fleetos-2.3.0-rogue.bin", kind: artifact.KindUnknownKey},
		{name: "no such artifact", file: "fleetos-9.9.9.bin", kind: schemas.ErrArtifactNotFound},
		{name: "content altered, same length", file: "fleetos-2.0.0.bin", kind: artifact.KindDigestMismatch,
			tamper: func(t *testing.T, s *artifactServer) {
				s.rewrite(t, "fleetos-2.0.0.bin", func(b []byte) []byte {
					b[len(b)/2] ^= 0x20
					return b
				})
			}},
		{name: "truncated", file: "fleetos-2.0.0.bin", kind: artifact.KindLengthMismatch,
			tamper: func(t *testing.T, s *artifactServer) {
				s.rewrite(t, "fleetos-2.0.0.bin", func(b []byte) []byte { return b[:len(b)-10] })
			}},
		{name: "content appended", file: "fleetos-2.0.0.bin", kind: artifact.KindLengthMismatch,
			tamper: func(t *testing.T, s *artifactServer) {
				s.rewrite(t, "fleetos-2.0.0.bin", func(b []byte) []byte { return append(b, "sim-fault: backdoor\n"...) })
			}},
		{name: "manifest edited after signing", file: "fleetos-2.0.0.bin", kind: artifact.KindBadSignature,
			tamper: func(t *testing.T, s *artifactServer) {
				s.rewrite(t, "fleetos-2.0.0.bin.manifest.json", func(b []byte) []byte {
					if bytes.Count(b, []byte(`"releaseCounter": 20,`)) != 1 {
						t.Fatal("manifest layout changed: no releaseCounter 20")
					}
					return bytes.Replace(b, []byte(`"releaseCounter": 20,`), []byte(`"releaseCounter": 99,`), 1)
				})
			}},
		{name: "signature of another manifest", file: "fleetos-2.0.0.bin", kind: artifact.KindBadSignature,
			tamper: func(t *testing.T, s *artifactServer) {
				// The signature of another manifest (same key) does not verify this one.
				other := readTestdata(t, "fleetos-2.0.1-hang.bin.manifest.json.sig")
				s.rewrite(t, "fleetos-2.0.0.bin.manifest.json.sig", func([]byte) []byte { return other })
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newArtifactServer(t, "")
			if c.tamper != nil {
				c.tamper(t, srv)
			}
			a := &Activities{Artifacts: ArtifactStore{BaseURL: srv.url, Keys: keys}}
			ref, err := a.VerifyArtifact(context.Background(), schemas.VerifyArtifactInput{File: c.file})
			wantRefusal(t, err, c.kind)
			if !reflect.DeepEqual(ref, schemas.ArtifactRef{}) {
				t.Fatalf("refused artifact still returned a ref: %+v", ref)
			}
		})
	}
}

// A rollback rollout (rollback: true) of a release whose signed manifest
// authorises no rollback (no rollbackFrom) is refused up front, before the
// artifact is even downloaded: every robot would refuse it.
func TestVerifyArtifactRollbackNeedsRollbackFrom(t *testing.T) {
	keys := trustedKeyring(t)
	const file = "fleetos-2.1.0-bad.bin"
	if m := testManifest(t, file); m.RollbackFrom != "" {
		t.Fatalf("testdata %s has rollbackFrom %q; the test needs one without", file, m.RollbackFrom)
	}
	srv := newArtifactServer(t, "")
	// Downloading the file would fail (retryably): the refusal comes first.
	srv.failWith("/"+file, http.StatusInternalServerError)
	a := &Activities{Artifacts: ArtifactStore{BaseURL: srv.url, Keys: keys}}
	ref, err := a.VerifyArtifact(context.Background(), schemas.VerifyArtifactInput{File: file, Rollback: true})
	wantRefusal(t, err, artifact.KindRollback)
	if !strings.Contains(err.Error(), "the release's signed manifest authorises no rollback (rollbackFrom)") || !strings.Contains(err.Error(), file) {
		t.Errorf("refusal does not say why: %v", err)
	}
	if !reflect.DeepEqual(ref, schemas.ArtifactRef{}) {
		t.Errorf("refused artifact still returned a ref: %+v", ref)
	}
	// The same release in a normal rollout is fine (its content aside).
	srv.recover("/" + file)
	if _, err := a.VerifyArtifact(context.Background(), schemas.VerifyArtifactInput{File: file}); err != nil {
		t.Errorf("without rollback: %v", err)
	}
	// Releases signed with a rollbackFrom pass; which robots they may
	// replace is each robot's check.
	for _, f := range []string{"fleetos-1.4.2.bin", "fleetos-2.0.0.bin"} {
		if testManifest(t, f).RollbackFrom == "" {
			t.Fatalf("testdata %s has no rollbackFrom", f)
		}
		if _, err := a.VerifyArtifact(context.Background(), schemas.VerifyArtifactInput{File: f, Rollback: true}); err != nil {
			t.Errorf("%s with rollback: %v", f, err)
		}
	}
}

func TestVerifyArtifactServerErrorsAreRetried(t *testing.T) {
	keys := trustedKeyring(t)
	const file = "fleetos-2.0.0.bin"
	for _, p := range []string{"/" + file + artifact.ManifestSuffix, "/" + file + artifact.SignatureSuffix, "/" + file} {
		t.Run(p, func(t *testing.T) {
			srv := newArtifactServer(t, "")
			srv.failWith(p, http.StatusInternalServerError)
			a := &Activities{Artifacts: ArtifactStore{BaseURL: srv.url, Keys: keys}}
			_, err := a.VerifyArtifact(context.Background(), schemas.VerifyArtifactInput{File: file})
			wantRetryable(t, err)
			if !strings.Contains(err.Error(), "500") {
				t.Fatalf("error does not name the status: %v", err)
			}
			// Once the store recovers, the same call succeeds.
			srv.recover(p)
			if _, err := a.VerifyArtifact(context.Background(), schemas.VerifyArtifactInput{File: file}); err != nil {
				t.Fatalf("after recovery: %v", err)
			}
		})
	}
	// An unreachable store is retried too.
	a := &Activities{Artifacts: ArtifactStore{BaseURL: "http://127.0.0.1:1", Keys: keys}}
	_, err := a.VerifyArtifact(context.Background(), schemas.VerifyArtifactInput{File: file})
	wantRetryable(t, err)
}

func TestVerifyArtifactMisconfigured(t *testing.T) {
	keys := trustedKeyring(t)
	srv := newArtifactServer(t, "")
	for name, c := range map[string]struct {
		a  *Activities
		in schemas.VerifyArtifactInput
	}{
		"no keyring":      {&Activities{Artifacts: ArtifactStore{BaseURL: srv.url}}, schemas.VerifyArtifactInput{File: "fleetos-2.0.0.bin"}},
		"no store":        {&Activities{Artifacts: ArtifactStore{Keys: keys}}, schemas.VerifyArtifactInput{File: "fleetos-2.0.0.bin"}},
		"not http":        {&Activities{Artifacts: ArtifactStore{BaseURL: "file:///tmp", Keys: keys}}, schemas.VerifyArtifactInput{File: "fleetos-2.0.0.bin"}},
		"path in file":    {&Activities{Artifacts: ArtifactStore{BaseURL: srv.url, Keys: keys}}, schemas.VerifyArtifactInput{File: "../artifacts/fleetos-2.0.0.bin"}},
		"empty file name": {&Activities{Artifacts: ArtifactStore{BaseURL: srv.url, Keys: keys}}, schemas.VerifyArtifactInput{}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.a.VerifyArtifact(context.Background(), c.in)
			wantRefusal(t, err, schemas.ErrInvalidRollout)
		})
	}
}

// otaFleet registers robots of site "warehouse-a" (and one elsewhere) with
// their software versions; acme/T5 then reports another version in its
// state, which wins over the registered one.
func otaFleet(t *testing.T, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	reg := func(manufacturer, serial, model, site, version string) store.Robot {
		return store.Robot{Manufacturer: manufacturer, SerialNumber: serial, Model: model, Site: site,
			SoftwareVersion: version, HomeNode: "n1"}
	}
	robots := []store.Robot{
		reg("acme", "T1", "Tug-200", "warehouse-a", "1.4.2"),   // target
		reg("acme", "T2", "Tug-200", "warehouse-a", "2.0.0"),   // already on 2.0.0
		reg("acme", "T3", "Tug-300", "warehouse-a", "1.4.2"),   // hardware not supported
		reg("robotix", "L1", "Lift-5", "warehouse-a", "2.1.0"), // newer: rollback only
		reg("robotix", "L2", "Lift-5", "warehouse-a", "1.0.0"), // target, unless a version range excludes it
		reg("acme", "T5", "Tug-200", "warehouse-a", "1.4.2"),   // reports 2.0.0 (below)
		reg("acme", "X1", "Tug-200", "warehouse-b", "1.4.2"),   // other site
	}
	if err := st.RegisterRobots(ctx, robots); err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertStates(ctx, []store.RobotState{{RobotID: "acme/T5", SoftwareVersion: "2.0.0"}}); err != nil {
		t.Fatal(err)
	}
}

func TestResolveTargets(t *testing.T) {
	st := freshStore(t)
	otaFleet(t, st)
	ctx := context.Background()
	m := testManifest(t, "fleetos-2.0.0.bin")
	art := schemas.ArtifactRef{File: m.File, Name: m.Name, Version: m.Version, ReleaseCounter: m.ReleaseCounter,
		SHA256: m.SHA256, Length: m.Length, Hardware: m.Hardware, KeyID: m.KeyID}
	a := &Activities{Store: st}

	target := func(id, model, version string) schemas.TargetRobot {
		manufacturer, _, _ := strings.Cut(id, "/")
		return schemas.TargetRobot{ID: id, Site: "warehouse-a", Manufacturer: manufacturer, Model: model, Version: version}
	}
	already := schemas.SkippedRobot{ID: "acme/T2", Reason: "already runs 2.0.0"}
	alreadyReported := schemas.SkippedRobot{ID: "acme/T5", Reason: "already runs 2.0.0"}
	hardware := schemas.SkippedRobot{ID: "acme/T3", Reason: "HardwareMismatch: fleetos 2.0.0 is not built for acme/Tug-300"}
	newer := schemas.SkippedRobot{ID: "robotix/L1", Reason: "Rollback: runs 2.1.0, newer than 2.0.0 (not an explicit rollback)"}

	cases := []struct {
		name      string
		in        schemas.ResolveTargetsInput
		targets   []schemas.TargetRobot
		skipped   []schemas.SkippedRobot
		errorKind string
	}{
		{
			name:    "whole site",
			in:      schemas.ResolveTargetsInput{Selector: schemas.TargetSelector{Site: "warehouse-a"}, Artifact: art},
			targets: []schemas.TargetRobot{target("acme/T1", "Tug-200", "1.4.2"), target("robotix/L2", "Lift-5", "1.0.0")},
			skipped: []schemas.SkippedRobot{already, hardware, alreadyReported, newer},
		},
		{
			name: "version range",
			in: schemas.ResolveTargetsInput{Selector: schemas.TargetSelector{Site: "warehouse-a", VersionRange: ">=1.4.0, <2.0.0"},
				Artifact: art},
			targets: []schemas.TargetRobot{target("acme/T1", "Tug-200", "1.4.2")},
			skipped: []schemas.SkippedRobot{hardware},
		},
		{
			name: "version range and model",
			in: schemas.ResolveTargetsInput{Selector: schemas.TargetSelector{Site: "warehouse-a", Model: "Lift-5", VersionRange: "<3"},
				Artifact: art},
			targets: []schemas.TargetRobot{target("robotix/L2", "Lift-5", "1.0.0")},
			skipped: []schemas.SkippedRobot{newer},
		},
		{
			name: "explicit rollback",
			in: schemas.ResolveTargetsInput{Selector: schemas.TargetSelector{Site: "warehouse-a", Manufacturer: "robotix"},
				Artifact: art, Rollback: true},
			targets: []schemas.TargetRobot{target("robotix/L1", "Lift-5", "2.1.0"), target("robotix/L2", "Lift-5", "1.0.0")},
		},
		{
			name: "named robots",
			in: schemas.ResolveTargetsInput{Selector: schemas.TargetSelector{Site: "warehouse-a", Robots: []string{"acme/T3", "acme/T1", "acme/T2"}},
				Artifact: art},
			targets: []schemas.TargetRobot{target("acme/T1", "Tug-200", "1.4.2")},
			skipped: []schemas.SkippedRobot{already, hardware},
		},
		{
			name: "unknown robot",
			in: schemas.ResolveTargetsInput{Selector: schemas.TargetSelector{Site: "warehouse-a", Robots: []string{"acme/T1", "acme/ghost"}},
				Artifact: art},
			errorKind: schemas.ErrInvalidRollout,
		},
		{
			name: "robot of another site",
			in: schemas.ResolveTargetsInput{Selector: schemas.TargetSelector{Site: "warehouse-a", Robots: []string{"acme/X1"}},
				Artifact: art},
			errorKind: schemas.ErrInvalidRollout,
		},
		{
			name:      "bad version range",
			in:        schemas.ResolveTargetsInput{Selector: schemas.TargetSelector{Site: "warehouse-a", VersionRange: "not-a-range"}, Artifact: art},
			errorKind: schemas.ErrInvalidRollout,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := a.ResolveTargets(ctx, c.in)
			if c.errorKind != "" {
				wantRefusal(t, err, c.errorKind)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Targets, c.targets) {
				t.Errorf("targets =\n%+v\nwant\n%+v", res.Targets, c.targets)
			}
			if !reflect.DeepEqual(res.Skipped, c.skipped) {
				t.Errorf("skipped =\n%+v\nwant\n%+v", res.Skipped, c.skipped)
			}
			if !slices.IsSortedFunc(res.Targets, func(x, y schemas.TargetRobot) int { return strings.Compare(x.ID, y.ID) }) {
				t.Errorf("targets not sorted by ID: %+v", res.Targets)
			}
		})
	}
	// The unknown robot is named in the error.
	_, err := a.ResolveTargets(ctx, cases[5].in)
	if err == nil || !strings.Contains(err.Error(), "acme/ghost") || strings.Contains(err.Error(), "acme/T1,") {
		t.Fatalf("unknown robot error = %v; want it to name acme/ghost only", err)
	}
	// A robot out of service (a technician may work on it) is never a
	// target: it is skipped, saying why.
	if _, err := st.SetServiceStatus(ctx, "acme/T1", store.InMaintenance, "test", "brake check"); err != nil {
		t.Fatal(err)
	}
	res, err := a.ResolveTargets(ctx, cases[0].in)
	if err != nil {
		t.Fatal(err)
	}
	want := schemas.SkippedRobot{ID: "acme/T1", Reason: "not in service (in_maintenance): not updated while draining, in maintenance or out of service"}
	if !reflect.DeepEqual(res.Targets, []schemas.TargetRobot{target("robotix/L2", "Lift-5", "1.0.0")}) || !slices.Contains(res.Skipped, want) {
		t.Fatalf("with acme/T1 in maintenance: targets %+v, skipped %+v", res.Targets, res.Skipped)
	}
}

func TestLocateArtifact(t *testing.T) {
	keys := trustedKeyring(t)
	srv := newArtifactServer(t, "")
	a := &Activities{Artifacts: ArtifactStore{BaseURL: srv.url, Dir: srv.dir, Keys: keys}}
	ctx := context.Background()
	tug := schemas.Hardware{Manufacturer: "acme", Model: "Tug-200"}

	m := testManifest(t, "fleetos-1.4.2.bin")
	if !slices.Contains(m.Hardware, tug) {
		t.Fatalf("testdata manifest of 1.4.2 does not list %s: %v", tug, m.Hardware)
	}
	res, err := a.LocateArtifact(ctx, schemas.LocateArtifactInput{Name: "fleetos", Version: "1.4.2", Hardware: tug})
	if err != nil {
		t.Fatal(err)
	}
	want := schemas.LocateArtifactResult{Found: true, Artifact: schemas.ArtifactRef{
		File: "fleetos-1.4.2.bin", Name: "fleetos", Version: "1.4.2", ReleaseCounter: 14,
		SHA256: "22e0bec1af55526833c81d6649ad421720e5acf2e78c9f535e2df5732c18df53", Length: 183,
		Hardware: m.Hardware, KeyID: releaseEd25519KeyID,
		ArtifactURL: srv.url + "/fleetos-1.4.2.bin", ManifestURL: srv.url + "/fleetos-1.4.2.bin.manifest.json",
		Signature: strings.TrimSpace(string(readTestdata(t, "fleetos-1.4.2.bin.manifest.json.sig"))),
	}}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("LocateArtifact 1.4.2 =\n%+v\nwant\n%+v", res, want)
	}
	if !reflect.DeepEqual(res.Artifact.Hardware, fleetosHardware) {
		t.Fatalf("hardware = %v, want the manifest's %v", res.Artifact.Hardware, fleetosHardware)
	}
	sum := sha256.Sum256(readTestdata(t, "fleetos-1.4.2.bin"))
	if res.Artifact.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("located sha256 %s is not the file's", res.Artifact.SHA256)
	}
	// The located artifact passes VerifyArtifact as it is.
	ref, err := a.VerifyArtifact(ctx, schemas.VerifyArtifactInput{File: res.Artifact.File})
	if err != nil || !reflect.DeepEqual(ref, res.Artifact) {
		t.Fatalf("VerifyArtifact of the located artifact = %+v, %v", ref, err)
	}

	for name, in := range map[string]schemas.LocateArtifactInput{
		"version not stored":       {Name: "fleetos", Version: "1.3.0", Hardware: tug},
		"other name":               {Name: "otheros", Version: "1.4.2", Hardware: tug},
		"hardware not supported":   {Name: "fleetos", Version: "1.4.2", Hardware: schemas.Hardware{Manufacturer: "acme", Model: "Tug-300"}},
		"unsigned (no .sig)":       {Name: "fleetos", Version: "2.2.0", Hardware: tug},
		"signed by untrusted key":  {Name: "fleetos", Version: "2.3.0", Hardware: tug},
		"version prefix not exact": {Name: "fleetos", Version: "1.4", Hardware: tug},
		// 2.0.0's signed rollbackFrom is ">=2.0.1 <2.2.0": a robot on 2.3.0
		// would refuse it, so it is no way back from there.
		"rollback not authorised": {Name: "fleetos", Version: "2.0.0", Hardware: tug, RollbackFrom: "2.3.0"},
	} {
		t.Run(name, func(t *testing.T) {
			res, err := a.LocateArtifact(ctx, in)
			if err != nil || res.Found || !reflect.DeepEqual(res, schemas.LocateArtifactResult{}) {
				t.Fatalf("LocateArtifact(%+v) = %+v, %v; want not found", in, res, err)
			}
		})
	}
	// A stored version that is found: 2.0.0 is signed by the other trusted key.
	if res, err := a.LocateArtifact(ctx, schemas.LocateArtifactInput{Name: "fleetos", Version: "2.0.0", Hardware: tug}); err != nil ||
		!res.Found || res.Artifact.File != "fleetos-2.0.0.bin" || res.Artifact.KeyID != releaseECDSAKeyID {
		t.Fatalf("LocateArtifact 2.0.0 = %+v, %v", res, err)
	}
	// A way back the release authorises: from 2.1.0 to 2.0.0.
	if res, err := a.LocateArtifact(ctx, schemas.LocateArtifactInput{Name: "fleetos", Version: "2.0.0", Hardware: tug, RollbackFrom: "2.1.0"}); err != nil || !res.Found {
		t.Fatalf("LocateArtifact 2.0.0 to roll back from 2.1.0 = %+v, %v", res, err)
	}
	// Without a local directory nothing is found.
	noDir := &Activities{Artifacts: ArtifactStore{BaseURL: srv.url, Keys: keys}}
	if res, err := noDir.LocateArtifact(ctx, schemas.LocateArtifactInput{Name: "fleetos", Version: "1.4.2", Hardware: tug}); err != nil || res.Found {
		t.Fatalf("LocateArtifact without a directory = %+v, %v", res, err)
	}
}

// A private store that refuses the download (its token missing or
// expired) fails the verification at once, saying where the token goes,
// and the token never shows in the error.
func TestVerifyArtifactForbiddenIsFinal(t *testing.T) {
	srv := newArtifactServer(t, "")
	srv.failWith("/fleetos-2.0.0.bin.manifest.json", http.StatusForbidden)
	a := &Activities{Artifacts: ArtifactStore{BaseURL: srv.url, Keys: trustedKeyring(t), URLQuery: "sv=1&sig=SECRET"}}
	_, err := a.VerifyArtifact(context.Background(), schemas.VerifyArtifactInput{File: "fleetos-2.0.0.bin"})
	wantRefusal(t, err, schemas.ErrArtifactForbidden)
	if !strings.Contains(err.Error(), "FLEETFLOW_ARTIFACTS_URL_QUERY") || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("the refusal must point at the token and not show it: %v", err)
	}
}

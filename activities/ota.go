package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"go.temporal.io/sdk/temporal"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/artifact"
	"github.com/fleetflow/fleetflow/schemas"
)

// ArtifactStore is where artifacts live and whom they must be signed by.
type ArtifactStore struct {
	// BaseURL is the HTTP(S) base robots and VerifyArtifact download from:
	// <BaseURL>/<file>, <file>.manifest.json, <file>.manifest.json.sig.
	BaseURL string
	// Dir is the same store as a local directory ("" = none); LocateArtifact
	// searches it for earlier versions to roll back to.
	Dir string
	// Allowed are other stores a rollout may name (its artifact.baseUrl
	// must lie under BaseURL or one of them; config
	// artifacts.allowedBaseURLs).
	Allowed []string
	// Keys are the trusted release keys.
	Keys *artifact.Keyring
	// HTTP downloads artifacts and manifests; nil means a client with a
	// 5-minute timeout (artifacts are large; the WMS webhook's client, with
	// its seconds-long timeout, must not be used for them).
	HTTP *http.Client
	// URLQuery is a query string every artifact URL carries when it is
	// fetched or sent to a robot: a store-wide presigned token (an Azure
	// container SAS, a CDN token), e.g. "sv=2024-05-04&sig=…". A secret
	// (config artifacts.urlQuery, from FLEETFLOW_ARTIFACTS_URL_QUERY only):
	// the workflows carry plain URLs, and only the download here and the
	// publish to the robot (SendInstantActions) add it, so it never lands
	// in a history, nor in an error that does.
	URLQuery string
}

// WithQuery is u with the store's URL query added (u unchanged without
// one). u's own query, if any, comes first.
func (s ArtifactStore) WithQuery(u string) string {
	if s.URLQuery == "" {
		return u
	}
	if strings.Contains(u, "?") {
		return u + "&" + s.URLQuery
	}
	return u + "?" + s.URLQuery
}

func refused(kind, format string, a ...any) error {
	return temporal.NewNonRetryableApplicationError(kind+": "+fmt.Sprintf(format, a...), kind, nil)
}

func (a *Activities) httpClient() *http.Client {
	if a.Artifacts.HTTP != nil {
		return a.Artifacts.HTTP
	}
	return &http.Client{Timeout: 5 * time.Minute}
}

// fetch GETs u with the store's URL query (ArtifactStore.URLQuery). A 404
// is final (schemas.ErrArtifactNotFound), other failures retry. Errors name u
// without the query: they end up in histories.
func (a *Activities) fetch(ctx context.Context, u string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.Artifacts.WithQuery(u), nil)
	if err != nil {
		return nil, refused(schemas.ErrInvalidRollout, "bad artifact URL %q", u)
	}
	resp, err := a.httpClient().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL would carry the query
		}
		return nil, fmt.Errorf("download %s: %v", u, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		return nil, refused(schemas.ErrArtifactNotFound, "%s: %s", u, resp.Status)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		resp.Body.Close()
		hint := "a private store needs its presigned token in FLEETFLOW_ARTIFACTS_URL_QUERY"
		if a.Artifacts.URLQuery != "" {
			hint = "the token in FLEETFLOW_ARTIFACTS_URL_QUERY was refused: expired or for another store?"
		}
		return nil, refused(schemas.ErrArtifactForbidden, "%s: %s; %s", u, resp.Status, hint)
	case resp.StatusCode >= 400:
		resp.Body.Close()
		return nil, fmt.Errorf("download %s: %s", u, resp.Status)
	}
	return resp.Body, nil
}

func (a *Activities) fetchAll(ctx context.Context, u string, limit int64) ([]byte, error) {
	body, err := a.fetch(ctx, u)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, limit))
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", u, err)
	}
	return b, nil
}

// artifactURLs is the store layout (artifact.Paths) under base.
func artifactURLs(base, file string) (fileURL, manifestURL, sigURL string, err error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", "", refused(schemas.ErrInvalidRollout, "artifact store %q is not an http(s) URL", base)
	}
	if file == "" || strings.ContainsAny(file, "/\\") || file == "." || file == ".." {
		return "", "", "", refused(schemas.ErrInvalidRollout, "artifact file name %q must be a plain file name", file)
	}
	u.Path = path.Join("/", u.Path, file)
	fileURL = u.String()
	return fileURL, fileURL + artifact.ManifestSuffix, fileURL + artifact.SignatureSuffix, nil
}

// An override (a rollout's artifact.baseUrl) must lie under the configured
// store or one of ArtifactStore.Allowed: the ota worker fetches from it,
// and a rollout must not make it fetch an arbitrary internal URL (a cloud
// metadata endpoint, an admin port). Refused: InvalidRollout naming both.
func (a *Activities) base(override string) (string, error) {
	if strings.ContainsAny(override, "?#") {
		// A presigned token in the spec would be recorded in the
		// rollout's history: it belongs in artifacts.urlQuery.
		return "", refused(schemas.ErrInvalidRollout, "artifact baseUrl carries a query string or fragment; a store's token goes in FLEETFLOW_ARTIFACTS_URL_QUERY, never in a rollout spec (it would be kept in the workflow history)")
	}
	if override != "" {
		for _, allowed := range append([]string{a.Artifacts.BaseURL}, a.Artifacts.Allowed...) {
			if underBase(override, allowed) {
				return override, nil
			}
		}
		return "", refused(schemas.ErrInvalidRollout, "artifact baseUrl %s is not under the configured artifact store (artifacts.baseURL %q, artifacts.allowedBaseURLs %q)",
			override, a.Artifacts.BaseURL, a.Artifacts.Allowed)
	}
	if a.Artifacts.BaseURL == "" {
		return "", refused(schemas.ErrInvalidRollout, "no artifact store configured (artifacts.baseURL)")
	}
	return a.Artifacts.BaseURL, nil
}

// VerifyArtifact downloads an artifact's manifest, signature and file from
// the store and verifies them once in the cloud, before any robot is
// touched: signed by a trusted key, not expired, and the file's sha256 and
// length as the manifest says (Uptane/TUF). An explicit rollback
// (in.Rollback) is refused here already, as Rollback, when the signed
// manifest authorises no rollback (no rollbackFrom): every robot would
// refuse it. Hardware and the rollback itself (installed version against
// rollbackFrom) are checked per robot later (ResolveTargets, and the robot
// itself). Refusals are non-retryable ApplicationErrors whose type is the
// verifier's kind (BadSignature, UnknownKey, DigestMismatch,
// LengthMismatch, Expired, Malformed, Rollback), Unsigned when the
// signature file is missing, or ArtifactNotFound; download errors are
// retried.
func (a *Activities) VerifyArtifact(ctx context.Context, in schemas.VerifyArtifactInput) (schemas.ArtifactRef, error) {
	if a.Artifacts.Keys == nil {
		return schemas.ArtifactRef{}, refused(schemas.ErrInvalidRollout, "no trusted keys configured (artifacts.trustedKeys)")
	}
	base, err := a.base(in.BaseURL)
	if err != nil {
		return schemas.ArtifactRef{}, err
	}
	fileURL, manifestURL, sigURL, err := artifactURLs(base, in.File)
	if err != nil {
		return schemas.ArtifactRef{}, err
	}
	manifestRaw, err := a.fetchAll(ctx, manifestURL, 1<<20)
	if err != nil {
		return schemas.ArtifactRef{}, err
	}
	sig, err := a.fetchAll(ctx, sigURL, 64<<10)
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.Type() == schemas.ErrArtifactNotFound {
		return schemas.ArtifactRef{}, refused(schemas.ErrUnsigned, "artifact %s has no signature (%s): unsigned software is never installed", in.File, sigURL)
	}
	if err != nil {
		return schemas.ArtifactRef{}, err
	}
	m, err := artifact.VerifyManifest(a.Artifacts.Keys, manifestRaw, sig, artifact.Policy{Now: time.Now()})
	if err != nil {
		return schemas.ArtifactRef{}, verifyError(err)
	}
	if m.File != in.File {
		return schemas.ArtifactRef{}, refused(artifact.KindMalformed, "manifest %s describes file %q, not %q", manifestURL, m.File, in.File)
	}
	if in.Rollback && m.RollbackFrom == "" {
		return schemas.ArtifactRef{}, refused(artifact.KindRollback,
			"artifact %s: the release's signed manifest authorises no rollback (rollbackFrom): a rollback rollout cannot install %s %s on any robot; sign it with --rollback-from RANGE naming the versions it may replace",
			in.File, m.Name, m.Version)
	}
	body, err := a.fetch(ctx, fileURL)
	if err != nil {
		return schemas.ArtifactRef{}, err
	}
	defer body.Close()
	if err := artifact.VerifyContent(m, body); err != nil {
		return schemas.ArtifactRef{}, verifyError(err)
	}
	return refOf(m, fileURL, manifestURL, sig), nil
}

// verifyError turns a verifier refusal into a non-retryable error typed by
// its kind; anything else (a read error) is retried.
func verifyError(err error) error {
	if kind := artifact.ErrorKind(err); kind != "" {
		return temporal.NewNonRetryableApplicationError(kind+": "+err.Error(), kind, nil)
	}
	return err
}

func refOf(m schemas.Manifest, fileURL, manifestURL string, sig []byte) schemas.ArtifactRef {
	return schemas.ArtifactRef{
		File: m.File, Name: m.Name, Version: m.Version, ReleaseCounter: m.ReleaseCounter, SHA256: m.SHA256,
		Length: m.Length, Hardware: m.Hardware, KeyID: m.KeyID, ArtifactURL: fileURL, ManifestURL: manifestURL,
		Signature: strings.TrimSpace(string(sig)),
	}
}

// ResolveTargets lists the robots a rollout updates, sorted by ID: those the
// selector matches, minus robots already on the artifact's version, robots
// whose hardware the artifact does not support, and (unless in.Rollback)
// robots on a newer version — each skipped robot with its reason. Robots
// named in the selector but not registered are an InvalidRollout error.
func (a *Activities) ResolveTargets(ctx context.Context, in schemas.ResolveTargetsInput) (schemas.ResolveTargetsResult, error) {
	robots, err := a.Store.ListRobots(ctx, in.Selector.Site)
	if err != nil {
		return schemas.ResolveTargetsResult{}, err
	}
	var res schemas.ResolveTargetsResult
	target, _ := semver.NewVersion(in.Artifact.Version)
	seen := map[string]bool{}
	for _, r := range robots {
		seen[r.ID] = true
		if len(in.Selector.Robots) > 0 && !slices.Contains(in.Selector.Robots, r.ID) {
			continue
		}
		ok, err := in.Selector.Matches(schemas.RobotFacts{ID: r.ID, Site: r.Site, Manufacturer: r.Manufacturer, Model: r.Model, SoftwareVersion: r.SoftwareVersion})
		if err != nil {
			return res, refused(schemas.ErrInvalidRollout, "target selector: %v", err)
		}
		if !ok {
			continue
		}
		hw := schemas.Hardware{Manufacturer: r.Manufacturer, Model: r.Model}
		skip := ""
		switch {
		case r.SoftwareVersion == in.Artifact.Version:
			skip = "already runs " + r.SoftwareVersion
		case r.ServiceStatus != "" && r.ServiceStatus != store.InService:
			// Never rebooted into new software while a technician may
			// work on it (a RobotUpdate's named reservation does not look
			// at the service status).
			skip = "not in service (" + r.ServiceStatus + "): not updated while draining, in maintenance or out of service"
		case !slices.Contains(in.Artifact.Hardware, hw):
			skip = fmt.Sprintf("%s: %s %s is not built for %s", artifact.KindHardwareMismatch, in.Artifact.Name, in.Artifact.Version, hw)
		case !in.Rollback && target != nil:
			if cur, err := semver.NewVersion(r.SoftwareVersion); err == nil && cur.GreaterThan(target) {
				skip = fmt.Sprintf("%s: runs %s, newer than %s (not an explicit rollback)", artifact.KindRollback, r.SoftwareVersion, in.Artifact.Version)
			}
		}
		if skip != "" {
			res.Skipped = append(res.Skipped, schemas.SkippedRobot{ID: r.ID, Reason: skip})
			continue
		}
		res.Targets = append(res.Targets, schemas.TargetRobot{ID: r.ID, Site: r.Site, Manufacturer: r.Manufacturer, Model: r.Model, Version: r.SoftwareVersion})
	}
	var unknown []string
	for _, id := range in.Selector.Robots {
		if !seen[id] {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		return res, refused(schemas.ErrInvalidRollout, "robots not registered at site %q: %s", in.Selector.Site, strings.Join(unknown, ", "))
	}
	return res, nil
}

// LocateArtifact searches the local artifact directory for a signed
// artifact of the given name and version built for the hardware, to roll a
// robot back to what it ran before. Found is false when there is none (or
// no directory is configured); a candidate that does not verify is ignored,
// and so, with in.RollbackFrom, is one whose signed manifest does not
// authorise a rollback from that version (the robot would refuse it).
func (a *Activities) LocateArtifact(ctx context.Context, in schemas.LocateArtifactInput) (schemas.LocateArtifactResult, error) {
	if a.Artifacts.Dir == "" || a.Artifacts.Keys == nil {
		return schemas.LocateArtifactResult{}, nil
	}
	base, err := a.base(in.BaseURL)
	if err != nil {
		return schemas.LocateArtifactResult{}, nil
	}
	manifests, err := filepath.Glob(filepath.Join(a.Artifacts.Dir, "*"+artifact.ManifestSuffix))
	if err != nil {
		return schemas.LocateArtifactResult{}, err
	}
	slices.Sort(manifests)
	for _, mp := range manifests {
		raw, err := os.ReadFile(mp)
		if err != nil {
			continue
		}
		sig, err := os.ReadFile(strings.TrimSuffix(mp, artifact.ManifestSuffix) + artifact.SignatureSuffix)
		if err != nil {
			continue
		}
		p := artifact.Policy{Now: time.Now(), Hardware: &in.Hardware}
		if in.RollbackFrom != "" {
			// As the robot will check it, from the version it will run.
			p.Installed, p.AllowRollback = &artifact.Installed{Version: in.RollbackFrom}, true
		}
		m, err := artifact.VerifyManifest(a.Artifacts.Keys, raw, sig, p)
		if err != nil || m.Name != in.Name || m.Version != in.Version {
			continue
		}
		fileURL, manifestURL, _, err := artifactURLs(base, m.File)
		if err != nil {
			return schemas.LocateArtifactResult{}, err
		}
		return schemas.LocateArtifactResult{Found: true, Artifact: refOf(m, fileURL, manifestURL, sig)}, nil
	}
	return schemas.LocateArtifactResult{}, nil
}

// underBase reports whether u lies under base: same scheme and host (port
// included), and u's path starts with base's path as whole segments. Query
// strings and fragments of base are ignored; one of u (a presigned bucket
// URL) is kept by the caller.
func underBase(u, base string) bool {
	if base == "" {
		return false
	}
	pu, err := url.Parse(u)
	if err != nil || pu.User != nil {
		return false
	}
	pb, err := url.Parse(base)
	if err != nil || (pb.Scheme != "http" && pb.Scheme != "https") {
		return false
	}
	if !strings.EqualFold(pu.Scheme, pb.Scheme) || !strings.EqualFold(pu.Host, pb.Host) {
		return false
	}
	up, bp := path.Clean("/"+pu.Path), path.Clean("/"+pb.Path)
	return bp == "/" || up == bp || strings.HasPrefix(up, bp+"/")
}

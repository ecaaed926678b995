package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/fleetflow/fleetflow/internal/artifact"
	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// infoTypes of state.information (VDA 5050 §6.10.8) naming the installed
// software and, after an update, the version it replaced.
const (
	InfoSoftwareVersion         = "softwareVersion"
	InfoPreviousSoftwareVersion = "previousSoftwareVersion"
)

// ErrSoftwareFault is the errorType of the FATAL error a robot raises when
// software injected with "sim-fault: fatal-after-boot" has booted.
const ErrSoftwareFault = "softwareFault"

// Phases of a softwareUpdate, reported as the resultDescription of its
// RUNNING actionState (VDA 5050 §6.10.6), in this order (the contract:
// schemas.UpdatePhase).
const (
	UpdateDownloading = string(schemas.PhaseDownloading)
	UpdateVerifying   = string(schemas.PhaseVerifying)
	UpdateInstalling  = string(schemas.PhaseInstalling)
	UpdateRebooting   = string(schemas.PhaseRebooting)
)

// Fault markers: a line of the artifact's content that reads exactly so
// (surrounding blanks ignored) makes the virtual robot misbehave once the
// artifact has been verified, so any test stack can inject faults through
// the artifact store alone.
const (
	// FaultFatalAfterBoot: the update installs and the robot boots the new
	// version, then raises a FATAL softwareFault error about
	// FatalAfterBootDelay later. Installing another version clears it.
	FaultFatalAfterBoot = "sim-fault: fatal-after-boot"
	// FaultHangInstall: the update stays RUNNING "installing" until a later
	// softwareUpdate supersedes it.
	FaultHangInstall = "sim-fault: hang-install"
)

// Defaults and limits of softwareUpdate.
const (
	// DefaultRebootDelay is how long a robot stays offline while rebooting
	// when Options.RebootDelay is 0.
	DefaultRebootDelay = time.Second
	// DefaultHTTPTimeout bounds each download of the default HTTP client.
	DefaultHTTPTimeout = 30 * time.Second
	// FatalAfterBootDelay is how long after reconnecting a robot running
	// software marked FaultFatalAfterBoot raises its FATAL error.
	FatalAfterBootDelay = 100 * time.Millisecond
	// updateFetchTimeout bounds downloading and verifying together.
	updateFetchTimeout = 5 * time.Minute
	// maxManifestBytes and maxArtifactBytes bound the downloads: a manifest
	// is a few hundred bytes, an artifact is a firmware image.
	maxManifestBytes = 1 << 20
	maxArtifactBytes = 1 << 30
	// maxReconnectBackoff bounds the wait between reconnect attempts after a
	// reboot while the broker is unreachable.
	maxReconnectBackoff = 5 * time.Second
)

// updateParams are a softwareUpdate's actionParameters: every one a string
// except Rollback.
type updateParams struct {
	ArtifactURL string // "artifactUrl": http(s) URL of the artifact file
	ManifestURL string // "manifestUrl": http(s) URL of its manifest JSON
	Signature   []byte // "signature": base64 signature over the manifest's exact bytes (cosign sign-blob)
	SHA256      string // "sha256": expected SHA-256 of the artifact, 64 hex digits
	Version     string // "version": the target version, as in the manifest
	Rollback    bool   // "rollback" (optional, default false): an explicit rollback; a lower version or release counter installs only if the manifest's signed rollbackFrom also includes the installed version (artifact.Policy.AllowRollback)
}

// parseUpdateParams reads and checks the parameters of a softwareUpdate;
// the error names the offending parameter.
func parseUpdateParams(a vda5050.Action) (updateParams, error) {
	var p updateParams
	var errs []error
	str := func(key string) string {
		v, ok := a.Param(key)
		if !ok {
			errs = append(errs, fmt.Errorf("parameter %q is missing", key))
			return ""
		}
		s, ok := v.(string)
		if !ok {
			errs = append(errs, fmt.Errorf("parameter %q: %v is not a string", key, v))
			return ""
		}
		if strings.TrimSpace(s) == "" {
			errs = append(errs, fmt.Errorf("parameter %q is empty", key))
		}
		return s
	}
	httpURL := func(key string) string {
		s := str(key)
		if s == "" {
			return ""
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("parameter %q: %q is not an http(s) URL", key, redact(s)))
		}
		return s
	}
	p.ArtifactURL = httpURL("artifactUrl")
	p.ManifestURL = httpURL("manifestUrl")
	p.Signature = []byte(strings.TrimSpace(str("signature")))
	p.SHA256 = str("sha256")
	if p.SHA256 != "" {
		if b, err := hex.DecodeString(p.SHA256); err != nil || len(b) != 32 {
			errs = append(errs, fmt.Errorf("parameter %q: %q is not 64 hex digits", "sha256", p.SHA256))
		}
	}
	p.Version = str("version")
	rb, err := boolParam(a, "rollback", false)
	if err != nil {
		errs = append(errs, err)
	}
	p.Rollback = rb
	return p, errors.Join(errs...)
}

// updateJob is the softwareUpdate in progress. Its goroutine (runUpdate)
// downloads and verifies off the robot's loop and reports each step back
// with Robot.do; a step applies only while the job is still the robot's
// current update, so a superseded or stopped job changes nothing.
type updateJob struct {
	rec    *actionRec
	params updateParams
	policy artifact.Policy // installed software and hardware as of acceptance
	ctx    context.Context // cancelled when superseded or the robot stops
	cancel context.CancelFunc
	phase  string // one of the Update* phases
}

// updateFaults are the fault markers found in a verified artifact.
type updateFaults struct {
	fatalAfterBoot, hangInstall bool
}

// startUpdate accepts or refuses a softwareUpdate (on the robot's loop).
// It is refused — FAILED with the reason as resultDescription — when a
// parameter is missing or malformed, no trusted keys are configured, an
// order is running or being cancelled (a HARD action must not run beside
// driving, VDA 5050 §6.6.2), the vehicle is paused, or an earlier update is
// already rebooting. An earlier update that has not reached "rebooting" is
// superseded: FAILED "superseded by <actionId>".
func (r *Robot) startUpdate(rec *actionRec, a vda5050.Action) {
	fail := func(reason string) {
		rec.state.ActionStatus = vda5050.ActionFailed
		rec.state.ResultDescription = reason
		r.log.Info("sim robot refused a softwareUpdate", "robot", r.key.String(), "actionId", a.ActionID, "reason", reason)
	}
	p, err := parseUpdateParams(a)
	switch {
	case err != nil:
		fail(flatten(err.Error())) // each problem reads "parameter …" (schemas.RefusalParameter)
		return
	case r.opts.TrustedKeys == nil:
		fail(schemas.RefusalDescription(schemas.RefusalNoTrustedKeys, "configured: the vehicle cannot verify software"))
		return
	case r.cancel != nil && r.order != nil:
		fail(schemas.RefusalDescription(schemas.RefusalBusy, fmt.Sprintf("order %s is being cancelled", r.order.id)))
		return
	case r.runningOrder():
		fail(schemas.RefusalDescription(schemas.RefusalBusy, fmt.Sprintf("order %s is running", r.order.id)))
		return
	case r.paused:
		fail(schemas.RefusalDescription(schemas.RefusalPaused, "the vehicle is paused; send stopPause first"))
		return
	case r.update != nil && r.update.phase == UpdateRebooting:
		fail(schemas.RefusalDescription(schemas.RefusalBusy, fmt.Sprintf("rebooting into %s (%s)", r.update.params.Version, r.update.rec.state.ActionID)))
		return
	}
	if old := r.update; old != nil {
		old.cancel()
		old.rec.state.ActionStatus = vda5050.ActionFailed
		old.rec.state.ResultDescription = schemas.RefusalDescription(schemas.RefusalSuperseded, a.ActionID)
	}
	ctx, cancel := context.WithCancel(r.lifeContext())
	job := &updateJob{
		rec:    rec,
		params: p,
		policy: artifact.Policy{
			Hardware:      &schemas.Hardware{Manufacturer: r.cfg.Manufacturer, Model: r.cfg.Model},
			Installed:     &artifact.Installed{Version: r.softwareVersion, ReleaseCounter: r.releaseCounter},
			AllowRollback: p.Rollback,
		},
		ctx:    ctx,
		cancel: cancel,
		phase:  UpdateDownloading,
	}
	r.update = job
	rec.state.ActionStatus = vda5050.ActionRunning
	rec.state.ResultDescription = UpdateDownloading
	r.dirty = true
	r.bg.Add(1)
	go r.runUpdate(job)
}

// runUpdate carries a softwareUpdate from download to reboot. Each phase
// change is its own state message; any failure ends the action FAILED with
// the reason.
func (r *Robot) runUpdate(job *updateJob) {
	defer r.bg.Done()
	defer job.cancel()

	m, faults, err := r.fetchAndVerify(job)
	if err != nil {
		r.updateStep(job, func(time.Time) {
			job.rec.state.ActionStatus = vda5050.ActionFailed
			job.rec.state.ResultDescription = flatten(err.Error())
			r.update = nil
		})
		return
	}
	if !r.updatePhase(job, UpdateInstalling) {
		return
	}
	if faults.hangInstall {
		<-job.ctx.Done() // superseded, or the robot stops
		return
	}
	if !sleepCtx(job.ctx, r.opts.InstallDuration) || !r.updatePhase(job, UpdateRebooting) {
		return
	}
	r.reboot(job, m, faults)
}

// fetchAndVerify downloads the manifest and the artifact ("downloading"),
// then verifies them ("verifying") with the robot's trusted keys and the
// policy captured at acceptance, and reads the fault markers. Errors read
// "download …: …" or "<Kind>: <message>" (artifact.ErrorKind).
func (r *Robot) fetchAndVerify(job *updateJob) (schemas.Manifest, updateFaults, error) {
	ctx, cancel := context.WithTimeout(job.ctx, updateFetchTimeout)
	defer cancel()
	p := job.params
	manifestRaw, err := fetchBytes(ctx, r.opts.HTTPClient, p.ManifestURL, maxManifestBytes)
	if err != nil {
		return schemas.Manifest{}, updateFaults{}, errors.New(schemas.RefusalDescription(schemas.RefusalDownload, "manifest: "+err.Error()))
	}
	file, err := fetchFile(ctx, r.opts.HTTPClient, p.ArtifactURL, maxArtifactBytes)
	if err != nil {
		return schemas.Manifest{}, updateFaults{}, errors.New(schemas.RefusalDescription(schemas.RefusalDownload, "artifact: "+err.Error()))
	}
	defer func() {
		file.Close()
		os.Remove(file.Name())
	}()
	if !r.updatePhase(job, UpdateVerifying) {
		return schemas.Manifest{}, updateFaults{}, context.Canceled
	}

	policy := job.policy
	policy.Now = time.Now()
	m, err := artifact.VerifyManifest(r.opts.TrustedKeys, manifestRaw, p.Signature, policy)
	if err != nil {
		return m, updateFaults{}, kindError(err)
	}
	if !strings.EqualFold(m.SHA256, p.SHA256) {
		return m, updateFaults{}, errors.New(schemas.RefusalDescription(schemas.RefusalDigestMismatch, fmt.Sprintf("the manifest's sha256 %s differs from the sha256 parameter %s", m.SHA256, p.SHA256)))
	}
	if m.Version != p.Version {
		return m, updateFaults{}, errors.New(schemas.RefusalDescription(schemas.RefusalVersionMismatch, fmt.Sprintf("the manifest's version %s differs from the version parameter %s", m.Version, p.Version)))
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return m, updateFaults{}, fmt.Errorf("read artifact: %w", err)
	}
	if err := artifact.VerifyContent(m, file); err != nil {
		return m, updateFaults{}, kindError(err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return m, updateFaults{}, fmt.Errorf("read artifact: %w", err)
	}
	faults, err := scanFaults(file)
	if err != nil {
		return m, updateFaults{}, fmt.Errorf("read artifact: %w", err)
	}
	return m, faults, nil
}

// reboot takes the robot down and up again with the new software: OFFLINE
// published retained and a graceful disconnect (VDA 5050 §6.14: the last
// will is not sent then), RebootDelay offline, then the new version boots —
// errors cleared, any order and its action states dropped, the pose kept,
// the softwareUpdate FINISHED — and the robot reconnects and publishes
// ONLINE and its state. Software marked FaultFatalAfterBoot then raises a
// FATAL softwareFault.
func (r *Robot) reboot(job *updateJob, m schemas.Manifest, faults updateFaults) {
	r.disconnect()
	delay := r.opts.RebootDelay
	if delay < 0 {
		delay = 0
	}
	if !sleepCtx(job.ctx, delay) {
		return
	}
	var boot uint64
	if !r.updateStep(job, func(now time.Time) {
		r.bootSoftware(job, m, now)
		boot = r.boots
	}) {
		return
	}
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, maxReconnectBackoff) {
		err := r.connect(job.ctx)
		if err == nil {
			break
		}
		if job.ctx.Err() != nil {
			return
		}
		r.log.Warn("sim robot could not reconnect after its reboot", "robot", r.key.String(), "err", err)
		if !sleepCtx(job.ctx, backoff) {
			return
		}
	}
	r.log.Info("sim robot rebooted", "robot", r.key.String(), "version", m.Version)
	if !faults.fatalAfterBoot || !sleepCtx(job.ctx, FatalAfterBootDelay) {
		return
	}
	r.do(func(now time.Time) {
		if job.ctx.Err() != nil || r.boots != boot {
			return // stopped, or another version booted since
		}
		r.raiseFatal(ErrSoftwareFault, fmt.Sprintf("software %s crashed after boot", m.Version), now)
	})
}

// bootSoftware is the robot coming up with m installed. What a real vehicle
// loses in a reboot goes: errors, the order with its action states, motion,
// pause and stall. The pose and lastNodeId stay (the vehicle knows where it
// stands), and so do instant actions' states, so the fleet sees how the
// softwareUpdate ended.
func (v *vehicle) bootSoftware(job *updateJob, m schemas.Manifest, now time.Time) {
	if v.moving {
		v.x, v.y = v.pose(now)
		v.moving = false
	}
	v.previousVersion = v.softwareVersion
	v.softwareVersion = m.Version
	v.releaseCounter = m.ReleaseCounter
	v.boots++
	v.update = nil
	job.rec.state.ActionStatus = vda5050.ActionFinished
	job.rec.state.ResultDescription = "installed " + m.Version

	if v.cancel != nil {
		v.cancel.state.ActionStatus = vda5050.ActionFinished // the order is gone
	}
	v.errors = nil
	v.order, v.cancel, v.current, v.queue = nil, nil, nil, nil
	v.paused, v.stalled = false, false
	kept := v.actions[:0]
	for _, a := range v.actions {
		if a.instant {
			kept = append(kept, a)
		}
	}
	clear(v.actions[len(kept):])
	v.actions = kept
	v.dirty = true
}

// updatePhase moves job to phase and publishes it.
func (r *Robot) updatePhase(job *updateJob, phase string) bool {
	return r.updateStep(job, func(time.Time) {
		job.phase = phase
		job.rec.state.ResultDescription = phase
	})
}

// updateStep runs fn on the robot's loop and publishes the state, if job is
// still the robot's current update and neither superseded nor stopped.
func (r *Robot) updateStep(job *updateJob, fn func(now time.Time)) bool {
	ok := false
	r.do(func(now time.Time) {
		if r.update != job || job.ctx.Err() != nil {
			return
		}
		fn(now)
		r.dirty = true
		ok = true
	})
	return ok
}

// SoftwareVersion returns the version the robot runs now, as reported in
// state.information (infoType "softwareVersion") and the factsheet.
func (r *Robot) SoftwareVersion() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.softwareVersion
}

// kindError prefixes a verification error with its kind, "<Kind>: <message>".
func kindError(err error) error {
	kind := artifact.ErrorKind(err)
	if kind == "" || strings.HasPrefix(err.Error(), kind+":") {
		return err
	}
	return fmt.Errorf("%s: %w", kind, err)
}

// flatten makes a multi-line error message one line for resultDescription.
func flatten(s string) string { return strings.ReplaceAll(s, "\n", "; ") }

// fetch GETs rawURL and returns the response for a 200, or an error naming
// the HTTP status or the network failure.
func fetch(ctx context.Context, c *http.Client, rawURL string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: not a URL", redact(rawURL))
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("GET %s: %v", redact(rawURL), ue.Err)
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: HTTP %s", redact(rawURL), resp.Status)
	}
	return resp, nil
}

// redact is rawURL without its query string: a presigned token must not
// reach the robot's resultDescription (and from there the workflow's
// history).
func redact(rawURL string) string {
	if i := strings.IndexAny(rawURL, "?#"); i >= 0 {
		return rawURL[:i] + "?…"
	}
	return rawURL
}

// fetchBytes downloads rawURL into memory, at most limit bytes.
func fetchBytes(ctx context.Context, c *http.Client, rawURL string, limit int64) ([]byte, error) {
	resp, err := fetch(ctx, c, rawURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", redact(rawURL), err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", redact(rawURL), limit)
	}
	return b, nil
}

// fetchFile downloads rawURL into a temporary file, at most limit bytes,
// like a vehicle that stores the image before it verifies it; the caller
// closes and removes the file.
func fetchFile(ctx context.Context, c *http.Client, rawURL string, limit int64) (*os.File, error) {
	resp, err := fetch(ctx, c, rawURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	f, err := os.CreateTemp("", "fleetflow-sim-artifact-*")
	if err != nil {
		return nil, err
	}
	n, err := io.Copy(f, io.LimitReader(resp.Body, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("larger than %d bytes", limit)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("GET %s: %w", redact(rawURL), err)
	}
	return f, nil
}

// scanFaults looks for the fault marker lines in an artifact's content.
// Lines longer than the reader's buffer (binary data) cannot be markers and
// are skipped.
func scanFaults(rd io.Reader) (updateFaults, error) {
	var f updateFaults
	br := bufio.NewReaderSize(rd, 4096)
	long := false // inside a line too long for the buffer
	for {
		line, isPrefix, err := br.ReadLine()
		if err == io.EOF {
			return f, nil
		}
		if err != nil {
			return f, err
		}
		if !long && !isPrefix {
			switch string(bytes.TrimSpace(line)) {
			case FaultFatalAfterBoot:
				f.fatalAfterBoot = true
			case FaultHangInstall:
				f.hangInstall = true
			}
		}
		long = isPrefix
	}
}

// sleepCtx waits d (0 = not at all) and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetflow/fleetflow/internal/artifact"
	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// otaKit is a signing key the robots trust and an artifact store served
// over HTTP, as the RobotUpdate workflow hands them to robots.
type otaKit struct {
	priv, pub []byte // PEM
	keys      *artifact.Keyring
	srv       *httptest.Server
	mu        sync.Mutex
	files     map[string][]byte // URL path → content
	n         atomic.Int64
}

func newOTAKit(t *testing.T) *otaKit {
	t.Helper()
	priv, pub, err := artifact.GenerateKeyPair(artifact.KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := artifact.ParseKeyring(pub)
	if err != nil {
		t.Fatal(err)
	}
	k := &otaKit{priv: priv, pub: pub, keys: keys, files: map[string][]byte{}}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		b, ok := k.files[r.URL.Path]
		k.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

// spec describes one release to publish; zero fields take the defaults of
// a valid release for the test robot.
type spec struct {
	version  string
	counter  int64 // release counter; 0 = 1
	faults   []string
	hardware []schemas.Hardware
	expires  time.Time
	// rollbackFrom is the manifest's signed rollbackFrom: the installed
	// versions an explicit rollback may replace with it; "" = none.
	rollbackFrom string
	signer       []byte // private key PEM; nil = the trusted key
	// tamper changes one byte of the served artifact after the digest was
	// taken; editManifest changes the manifest after it was signed.
	tamper, editManifest bool
}

// release is what a softwareUpdate carries.
type release struct {
	artifactURL, manifestURL, signature, sha256, version string
}

func (k *otaKit) publish(t *testing.T, s spec) release {
	t.Helper()
	content := []byte("fleetos " + s.version + "\nbuilt for the fleetflow simulator\n")
	for _, f := range s.faults {
		content = append(content, f+"\n"...)
	}
	sum := sha256.Sum256(content)
	signer := s.signer
	if signer == nil {
		signer = k.priv
	}
	keyID, err := artifact.PrivateKeyID(signer)
	if err != nil {
		t.Fatal(err)
	}
	if s.counter == 0 {
		s.counter = 1
	}
	if s.hardware == nil {
		s.hardware = []schemas.Hardware{{Manufacturer: testManufacturer, Model: "sim-test"}}
	}
	if s.expires.IsZero() {
		s.expires = time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	}
	file := fmt.Sprintf("fleetos-%s-%d.bin", s.version, k.n.Add(1))
	m := schemas.Manifest{
		Name: "fleetos", Version: s.version, File: file, SHA256: hex.EncodeToString(sum[:]),
		Length: int64(len(content)), Hardware: s.hardware, ReleaseCounter: s.counter,
		RollbackFrom: s.rollbackFrom, Expires: s.expires, KeyID: keyID,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := artifact.Sign(signer, raw)
	if err != nil {
		t.Fatal(err)
	}
	if s.editManifest {
		raw = bytes.Replace(raw, []byte(`"fleetos"`), []byte(`"fleetOS"`), 1)
	}
	if s.tamper {
		content = bytes.Clone(content)
		content[0] ^= 0x20
	}
	k.mu.Lock()
	k.files["/"+file] = content
	k.files["/"+file+artifact.ManifestSuffix] = raw
	k.mu.Unlock()
	return release{
		artifactURL: k.srv.URL + "/" + file,
		manifestURL: k.srv.URL + "/" + file + artifact.ManifestSuffix,
		signature:   string(sig),
		sha256:      m.SHA256,
		version:     s.version,
	}
}

// update builds the softwareUpdate action for rel; rollback adds the
// optional parameter.
func update(id string, rel release, rollback ...bool) vda5050.Action {
	a := act(schemas.ActionSoftwareUpdate, id,
		vda5050.ActionParameter{Key: "artifactUrl", Value: rel.artifactURL},
		vda5050.ActionParameter{Key: "manifestUrl", Value: rel.manifestURL},
		vda5050.ActionParameter{Key: "signature", Value: rel.signature},
		vda5050.ActionParameter{Key: "sha256", Value: rel.sha256},
		vda5050.ActionParameter{Key: "version", Value: rel.version},
	)
	for _, rb := range rollback {
		a.ActionParameters = append(a.ActionParameters, vda5050.ActionParameter{Key: "rollback", Value: rb})
	}
	return a
}

// waitAction waits for a state in which actionID has a terminal status.
func (rg *rig) waitAction(t *testing.T, from int, actionID string) vda5050.ActionState {
	t.Helper()
	s := rg.obs.waitState(t, from, actionID+" ended", func(s vda5050.State) bool { return status(s, actionID).Terminal() })
	return *s.ActionStateOf(actionID)
}

// connIndex is the index of the first connection message want at or after from, or -1.
func (o *observer) connIndex(from int, want vda5050.ConnectionState) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := from; i < len(o.msgs); i++ {
		if m := o.msgs[i]; m.topic == vda5050.TopicConnection && m.conn == want {
			return i
		}
	}
	return -1
}

func info(s vda5050.State, infoType string) string {
	for _, i := range s.Information {
		if i.InfoType == infoType {
			return i.InfoDescription
		}
	}
	return ""
}

func TestSoftwareUpdateInstallsAndReboots(t *testing.T) {
	kit := newOTAKit(t)
	rg := startWith(t, Options{TrustedKeys: kit.keys, InstallDuration: 50 * time.Millisecond, RebootDelay: 200 * time.Millisecond},
		func(c *RobotConfig) { c.ReleaseCounter = 1 })
	rg.obs.waitConn(t, 0, vda5050.ConnectionOnline)

	// An order done before the update: the reboot drops it, the pose stays.
	from := rg.obs.mark()
	rg.sendOrder(t, order("o-before", 0, 0, 0, pt{id: "A"}, pt{id: "B", x: 1, actions: []vda5050.Action{act(vda5050.ActionPick, "before-pick")}}))
	rg.obs.waitState(t, from, "order finished", func(s vda5050.State) bool { return finished(s, "o-before", "B") })

	rel := kit.publish(t, spec{version: "2.0.0", counter: 2})
	from = rg.obs.mark()
	rg.instant(t, update("rollout-r1-robot-x#update-1", rel))
	end := rg.obs.waitState(t, from, "update finished", func(s vda5050.State) bool {
		return status(s, "rollout-r1-robot-x#update-1").Terminal()
	})
	a := end.ActionStateOf("rollout-r1-robot-x#update-1")
	if a.ActionStatus != vda5050.ActionFinished || a.ResultDescription != "installed 2.0.0" || a.ActionType != schemas.ActionSoftwareUpdate {
		t.Fatalf("update ended %+v", a)
	}
	if v := info(end, InfoSoftwareVersion); v != "2.0.0" {
		t.Errorf("state.information softwareVersion %q, want 2.0.0", v)
	}
	if v := info(end, InfoPreviousSoftwareVersion); v != "1.2.3" {
		t.Errorf("state.information previousSoftwareVersion %q, want 1.2.3", v)
	}
	if end.OrderID != "" || len(end.NodeStates) != 0 || end.ActionStateOf("before-pick") != nil {
		t.Errorf("the order survived the reboot: orderId %q, actionStates %+v", end.OrderID, end.ActionStates)
	}
	if p := end.AGVPosition; p == nil || p.X != 1 || p.Y != 0 || end.LastNodeID != "B" {
		t.Errorf("pose after reboot: %+v lastNode %s, want B at (1, 0)", p, end.LastNodeID)
	}
	if got := rg.robot.SoftwareVersion(); got != "2.0.0" {
		t.Errorf("SoftwareVersion() = %q", got)
	}

	// The phases, each in a state of its own, in order.
	var phases []string
	for _, s := range rg.obs.states(from) {
		if a := s.ActionStateOf("rollout-r1-robot-x#update-1"); a != nil && a.ActionStatus == vda5050.ActionRunning {
			if len(phases) == 0 || phases[len(phases)-1] != a.ResultDescription {
				phases = append(phases, a.ResultDescription)
			}
		}
	}
	if want := []string{UpdateDownloading, UpdateVerifying, UpdateInstalling, UpdateRebooting}; !slices.Equal(phases, want) {
		t.Errorf("RUNNING phases %v, want %v", phases, want)
	}

	// Rebooting: OFFLINE (graceful, retained), then ONLINE, then the state
	// with the outcome.
	off := rg.obs.connIndex(from, vda5050.ConnectionOffline)
	on := rg.obs.connIndex(max(off, from), vda5050.ConnectionOnline)
	if off < 0 || on < 0 {
		t.Fatalf("connection messages during the update: OFFLINE at %d, ONLINE at %d", off, on)
	}
	if rg.obs.connIndex(from, vda5050.ConnectionBroken) >= 0 {
		t.Errorf("the reboot sent CONNECTIONBROKEN; a graceful reboot says OFFLINE")
	}
	rebooting := rg.obs.wait(t, from, "rebooting state", func(m msg) bool {
		a := m.state.ActionStateOf("rollout-r1-robot-x#update-1")
		return m.topic == vda5050.TopicState && a != nil && a.ResultDescription == UpdateRebooting
	})
	finishedAt := rg.obs.wait(t, from, "finished state", func(m msg) bool {
		return m.topic == vda5050.TopicState && status(m.state, "rollout-r1-robot-x#update-1") == vda5050.ActionFinished
	})
	rebootingAt, finishedIdx := rg.obs.indexOf(rebooting), rg.obs.indexOf(finishedAt)
	if !(rebootingAt < off && off < on && on < finishedIdx) {
		t.Errorf("order of events: rebooting state %d, OFFLINE %d, ONLINE %d, FINISHED state %d", rebootingAt, off, on, finishedIdx)
	}

	// The factsheet names the installed version (2.1's vehicleConfig.versions).
	from = rg.obs.mark()
	rg.instant(t, act(vda5050.ActionFactsheetRequest, "fs-after"))
	fs := rg.obs.wait(t, from, "factsheet", func(m msg) bool { return m.topic == vda5050.TopicFactsheet })
	if err := vda5050.Validate(vda5050.TopicFactsheet, fs.raw); err != nil {
		t.Errorf("factsheet: %v", err)
	}
	if err := validateFactsheetStrictly(fs.raw); err != nil {
		t.Errorf("factsheet against the schema's nested definitions: %v", err)
	}
	var got Factsheet
	if err := json.Unmarshal(fs.raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.VehicleConfig == nil || !slices.Contains(got.VehicleConfig.Versions, VersionEntry{Key: InfoSoftwareVersion, Value: "2.0.0"}) {
		t.Errorf("factsheet vehicleConfig %+v, want softwareVersion 2.0.0", got.VehicleConfig)
	}
	if !slices.ContainsFunc(got.ProtocolFeatures.AGVActions, func(a AGVAction) bool { return a.ActionType == schemas.ActionSoftwareUpdate }) {
		t.Errorf("factsheet does not list %s", schemas.ActionSoftwareUpdate)
	}

	// The robot drives again after its reboot.
	from = rg.obs.mark()
	rg.sendOrder(t, order("o-after", 0, 0, 0, pt{id: "B", x: 1}, pt{id: "C", x: 2}))
	rg.obs.waitState(t, from, "order after the update", func(s vda5050.State) bool { return finished(s, "o-after", "C") })
}

// indexOf finds a recorded message by identity of its payload.
func (o *observer) indexOf(m msg) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, x := range o.msgs {
		if x.topic == m.topic && bytes.Equal(x.raw, m.raw) {
			return i
		}
	}
	return -1
}

func TestSoftwareUpdateRefusals(t *testing.T) {
	kit := newOTAKit(t)
	rg := startWith(t, Options{TrustedKeys: kit.keys, RebootDelay: -1}, func(c *RobotConfig) { c.ReleaseCounter = 3 })
	rg.obs.waitConn(t, 0, vda5050.ConnectionOnline)
	start := rg.obs.mark()

	otherPriv, _, err := artifact.GenerateKeyPair(artifact.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	good := kit.publish(t, spec{version: "2.0.0", counter: 4})
	cases := []struct {
		name   string
		action func() vda5050.Action
		want   string // prefix of resultDescription
		has    string // also contained in it
	}{
		{"tampered content", func() vda5050.Action {
			return update("u-tampered", kit.publish(t, spec{version: "2.0.0", counter: 4, tamper: true}))
		}, "DigestMismatch: ", "sha256 mismatch"},
		{"manifest edited after signing", func() vda5050.Action {
			return update("u-edited", kit.publish(t, spec{version: "2.0.0", counter: 4, editManifest: true}))
		}, "BadSignature: ", ""},
		{"unknown key", func() vda5050.Action {
			return update("u-unknown-key", kit.publish(t, spec{version: "2.0.0", counter: 4, signer: otherPriv}))
		}, "UnknownKey: ", ""},
		{"wrong hardware", func() vda5050.Action {
			return update("u-hardware", kit.publish(t, spec{version: "2.0.0", counter: 4, hardware: []schemas.Hardware{{Manufacturer: testManufacturer, Model: "other-model"}}}))
		}, "HardwareMismatch: ", "sim-test"},
		{"lower version without rollback", func() vda5050.Action {
			return update("u-lower", kit.publish(t, spec{version: "1.0.0", counter: 3}))
		}, "Rollback: ", "1.0.0"},
		{"lower release counter without rollback", func() vda5050.Action {
			return update("u-lower-counter", kit.publish(t, spec{version: "2.0.0", counter: 2}), false)
		}, "Rollback: ", "release counter"},
		// The unsigned rollback flag alone authorises no downgrade: the
		// release's signed rollbackFrom must include the installed 1.2.3.
		{"lower version, rollback without rollbackFrom", func() vda5050.Action {
			return update("u-lower-explicit", kit.publish(t, spec{version: "1.0.0", counter: 3}), true)
		}, "Rollback: ", "the signed manifest authorises no rollback (no rollbackFrom)"},
		{"lower release counter, rollback outside rollbackFrom", func() vda5050.Action {
			return update("u-lower-counter-range", kit.publish(t, spec{version: "2.0.0", counter: 2, rollbackFrom: ">=2.0.0"}), true)
		}, "Rollback: ", `its signed rollbackFrom ">=2.0.0" does not include installed version 1.2.3`},
		{"lower version, rollbackFrom without rollback", func() vda5050.Action {
			return update("u-lower-range-no-flag", kit.publish(t, spec{version: "1.0.0", counter: 3, rollbackFrom: ">=1.2.0 <2.0.0"}))
		}, "Rollback: ", "not an explicit rollback"},
		{"expired manifest", func() vda5050.Action {
			return update("u-expired", kit.publish(t, spec{version: "2.0.0", counter: 4, expires: time.Now().Add(-time.Hour).UTC().Truncate(time.Second)}))
		}, "Expired: ", ""},
		{"artifact 404", func() vda5050.Action {
			rel := good
			rel.artifactURL = kit.srv.URL + "/missing.bin"
			return update("u-404", rel)
		}, "download artifact: ", "404"},
		{"manifest 404", func() vda5050.Action {
			rel := good
			rel.manifestURL = kit.srv.URL + "/missing.bin.manifest.json"
			return update("u-404-manifest", rel)
		}, "download manifest: ", "404"},
		{"network error", func() vda5050.Action {
			rel := good
			rel.artifactURL = "http://127.0.0.1:1/fleetos.bin"
			return update("u-network", rel)
		}, "download artifact: ", "127.0.0.1:1"},
		{"sha256 parameter differs from the manifest", func() vda5050.Action {
			rel := good
			rel.sha256 = strings.Repeat("ab", 32)
			return update("u-sha-param", rel)
		}, "DigestMismatch: ", "sha256 parameter"},
		{"version parameter differs from the manifest", func() vda5050.Action {
			rel := good
			rel.version = "2.0.1"
			return update("u-version-param", rel)
		}, "VersionMismatch: ", "2.0.1"},
		{"signature not base64", func() vda5050.Action {
			rel := good
			rel.signature = "not base64!"
			return update("u-sig-b64", rel)
		}, "Malformed: ", "signature"},
		{"missing parameter", func() vda5050.Action {
			a := update("u-missing", good)
			a.ActionParameters = a.ActionParameters[1:] // no artifactUrl
			return a
		}, `parameter "artifactUrl" is missing`, ""},
		{"not an http URL", func() vda5050.Action {
			rel := good
			rel.manifestURL = "file:///etc/passwd"
			return update("u-file-url", rel)
		}, `parameter "manifestUrl"`, "http"},
		{"sha256 not hex", func() vda5050.Action {
			rel := good
			rel.sha256 = "xyz"
			return update("u-sha-hex", rel)
		}, `parameter "sha256"`, "hex"},
		{"rollback not a boolean", func() vda5050.Action {
			a := update("u-rollback-type", good)
			a.ActionParameters = append(a.ActionParameters, vda5050.ActionParameter{Key: "rollback", Value: "maybe"})
			return a
		}, `parameter "rollback"`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := c.action()
			from := rg.obs.mark()
			rg.instant(t, a)
			got := rg.waitAction(t, from, a.ActionID)
			if got.ActionStatus != vda5050.ActionFailed || !strings.HasPrefix(got.ResultDescription, c.want) || !strings.Contains(got.ResultDescription, c.has) {
				t.Errorf("got %s %q, want FAILED %q…%q", got.ActionStatus, got.ResultDescription, c.want, c.has)
			}
		})
	}
	if v := rg.robot.SoftwareVersion(); v != "1.2.3" {
		t.Errorf("a refused update changed the version to %s", v)
	}
	if i := rg.obs.connIndex(start, vda5050.ConnectionOffline); i >= 0 {
		t.Errorf("a refused update rebooted the robot")
	}

	// The same release with good parameters installs: the refusals were the
	// release's faults, not the robot's.
	from := rg.obs.mark()
	rg.instant(t, update("u-good", good))
	if got := rg.waitAction(t, from, "u-good"); got.ActionStatus != vda5050.ActionFinished || got.ResultDescription != "installed 2.0.0" {
		t.Errorf("good update: %+v", got)
	}
}

func TestSoftwareUpdateWithoutTrustedKeysRefused(t *testing.T) {
	kit := newOTAKit(t)
	rg := start(t, Options{})
	from := rg.obs.mark()
	rg.instant(t, update("u-nokeys", kit.publish(t, spec{version: "2.0.0"})))
	if got := rg.waitAction(t, from, "u-nokeys"); got.ActionStatus != vda5050.ActionFailed || !strings.HasPrefix(got.ResultDescription, "no trusted keys configured") {
		t.Errorf("got %+v", got)
	}
}

func TestSoftwareUpdateRollback(t *testing.T) {
	kit := newOTAKit(t)
	rg := startWith(t, Options{TrustedKeys: kit.keys, RebootDelay: -1}, func(c *RobotConfig) {
		c.SoftwareVersion, c.ReleaseCounter = "2.0.0", 5
	})
	// Only old's signed manifest authorises replacing 2.0.0 with it.
	old := kit.publish(t, spec{version: "1.2.3", counter: 3, rollbackFrom: ">=2.0.0 <2.1.0"})
	unauthorised := kit.publish(t, spec{version: "1.2.3", counter: 3})
	otherRange := kit.publish(t, spec{version: "1.2.3", counter: 3, rollbackFrom: ">=2.1.0"})

	for _, c := range []struct {
		id   string
		rel  release
		flag bool
		want string
	}{
		{"u-back-refused", old, false, "not an explicit rollback"},
		{"u-back-unauthorised", unauthorised, true, "the signed manifest authorises no rollback (no rollbackFrom)"},
		{"u-back-other-range", otherRange, true, `its signed rollbackFrom ">=2.1.0" does not include installed version 2.0.0`},
	} {
		from := rg.obs.mark()
		rg.instant(t, update(c.id, c.rel, c.flag))
		if got := rg.waitAction(t, from, c.id); got.ActionStatus != vda5050.ActionFailed || !strings.HasPrefix(got.ResultDescription, "Rollback: ") ||
			!strings.Contains(got.ResultDescription, c.want) {
			t.Errorf("%s (rollback=%v): %+v, want FAILED \"Rollback: …%s\"", c.id, c.flag, got, c.want)
		}
	}
	if v := rg.robot.SoftwareVersion(); v != "2.0.0" {
		t.Fatalf("a refused rollback installed %s", v)
	}

	from := rg.obs.mark()
	rg.instant(t, update("u-back", old, true))
	got := rg.waitAction(t, from, "u-back")
	if got.ActionStatus != vda5050.ActionFinished || got.ResultDescription != "installed 1.2.3" {
		t.Fatalf("rollback=true: %+v", got)
	}
	if v := rg.robot.SoftwareVersion(); v != "1.2.3" {
		t.Errorf("SoftwareVersion() = %q after the rollback", v)
	}
	// The rolled-back robot's release counter is now 3: counter 4 installs
	// without the rollback flag.
	from = rg.obs.mark()
	rg.instant(t, update("u-forward", kit.publish(t, spec{version: "1.3.0", counter: 4})))
	if got := rg.waitAction(t, from, "u-forward"); got.ActionStatus != vda5050.ActionFinished {
		t.Errorf("update after the rollback: %+v", got)
	}
}

func TestSoftwareUpdateRefusedWhileBusyOrPaused(t *testing.T) {
	kit := newOTAKit(t)
	rg := start(t, Options{TrustedKeys: kit.keys, Speed: 1})
	rel := kit.publish(t, spec{version: "2.0.0"})

	from := rg.obs.mark()
	rg.sendOrder(t, order("o-busy", 0, 0, 0, pt{id: "A"}, pt{id: "B", x: 2}))
	rg.obs.waitState(t, from, "driving", func(s vda5050.State) bool { return s.OrderID == "o-busy" && s.Driving })
	rg.instant(t, update("u-busy", rel))
	if got := rg.waitAction(t, from, "u-busy"); got.ActionStatus != vda5050.ActionFailed || got.ResultDescription != "busy: order o-busy is running" {
		t.Errorf("while driving: %+v", got)
	}
	s := rg.obs.waitState(t, from, "order finished", func(s vda5050.State) bool { return finished(s, "o-busy", "B") })
	if status(s, "u-busy") != vda5050.ActionFailed {
		t.Errorf("the refused update went on: %+v", s.ActionStateOf("u-busy"))
	}

	rg.instant(t, act(vda5050.ActionStartPause, "busy-pause"))
	rg.instant(t, update("u-paused", rel))
	if got := rg.waitAction(t, from, "u-paused"); got.ActionStatus != vda5050.ActionFailed || !strings.HasPrefix(got.ResultDescription, "paused") {
		t.Errorf("while paused: %+v", got)
	}
	if v := rg.robot.SoftwareVersion(); v != "1.2.3" {
		t.Errorf("version %s after refused updates", v)
	}

	rg.instant(t, act(vda5050.ActionStopPause, "busy-resume"), update("u-idle", rel))
	if got := rg.waitAction(t, from, "u-idle"); got.ActionStatus != vda5050.ActionFinished {
		t.Errorf("idle: %+v", got)
	}
}

func TestSoftwareUpdateFatalAfterBoot(t *testing.T) {
	kit := newOTAKit(t)
	rg := startWith(t, Options{TrustedKeys: kit.keys, RebootDelay: 50 * time.Millisecond}, func(c *RobotConfig) { c.ReleaseCounter = 1 })
	bad := kit.publish(t, spec{version: "2.0.0", counter: 2, faults: []string{FaultFatalAfterBoot}})

	from := rg.obs.mark()
	rg.instant(t, update("u-bad", bad))
	if got := rg.waitAction(t, from, "u-bad"); got.ActionStatus != vda5050.ActionFinished || got.ResultDescription != "installed 2.0.0" {
		t.Fatalf("faulty update: %+v", got)
	}
	s := rg.obs.waitState(t, from, "FATAL after boot", func(s vda5050.State) bool { return s.FatalError() != nil })
	if e := s.FatalError(); e.ErrorType != ErrSoftwareFault || !strings.Contains(e.ErrorDescription, "2.0.0") {
		t.Errorf("fatal: %+v", e)
	}
	if info(s, InfoSoftwareVersion) != "2.0.0" {
		t.Errorf("the FATAL error came from %q, want 2.0.0 running", info(s, InfoSoftwareVersion))
	}
	// The FATAL robot takes the rollback.
	from = rg.obs.mark()
	rg.instant(t, update("u-rollback", kit.publish(t, spec{version: "1.2.3", counter: 1, rollbackFrom: "2.0.0"}), true))
	got := rg.waitAction(t, from, "u-rollback")
	if got.ActionStatus != vda5050.ActionFinished || got.ResultDescription != "installed 1.2.3" {
		t.Fatalf("rollback: %+v", got)
	}
	// Well past FatalAfterBootDelay, the rolled-back robot is healthy.
	time.Sleep(4 * FatalAfterBootDelay)
	from = rg.obs.mark()
	rg.instant(t, act(vda5050.ActionStateRequest, "sr-after-rollback"))
	s = rg.obs.waitState(t, from, "state after the rollback", func(s vda5050.State) bool {
		return status(s, "sr-after-rollback") == vda5050.ActionFinished
	})
	if len(s.Errors) != 0 || info(s, InfoSoftwareVersion) != "1.2.3" {
		t.Errorf("after the rollback: errors %+v, version %s", s.Errors, info(s, InfoSoftwareVersion))
	}
}

func TestSoftwareUpdateHangSuperseded(t *testing.T) {
	kit := newOTAKit(t)
	rg := startWith(t, Options{TrustedKeys: kit.keys, RebootDelay: -1}, func(c *RobotConfig) { c.ReleaseCounter = 1 })
	hung := kit.publish(t, spec{version: "2.0.0", counter: 2, faults: []string{FaultHangInstall}})

	from := rg.obs.mark()
	rg.instant(t, update("u-hang", hung))
	rg.obs.waitState(t, from, "installing", func(s vda5050.State) bool {
		a := s.ActionStateOf("u-hang")
		return a != nil && a.ActionStatus == vda5050.ActionRunning && a.ResultDescription == UpdateInstalling
	})
	// The same actionId again is a retransmission, not a second update.
	rg.instant(t, update("u-hang", hung))
	// softwareUpdate is HARD: an order must wait.
	rg.sendOrder(t, order("o-during", 0, 0, 0, pt{id: "A"}, pt{id: "B", x: 1}))
	s := rg.obs.waitState(t, from, "order refused during the update", func(s vda5050.State) bool { return errorOf(s, ErrOrder) != nil })
	if e := errorOf(s, ErrOrder); refValue(e, "orderId") != "o-during" || !strings.Contains(e.ErrorDescription, "u-hang") {
		t.Errorf("order during the update: %+v", e)
	}
	rg.instant(t, act(vda5050.ActionStateRequest, "sr-hung"))
	s = rg.obs.waitState(t, from, "state while hung", func(s vda5050.State) bool { return status(s, "sr-hung") == vda5050.ActionFinished })
	if a := s.ActionStateOf("u-hang"); a.ActionStatus != vda5050.ActionRunning || a.ResultDescription != UpdateInstalling {
		t.Errorf("hung update: %+v", a)
	}
	n := 0
	for _, a := range s.ActionStates {
		if a.ActionID == "u-hang" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d actionStates for u-hang, want 1", n)
	}

	good := kit.publish(t, spec{version: "2.0.1", counter: 3})
	rg.instant(t, update("u-next", good))
	end := rg.obs.waitState(t, from, "second update finished", func(s vda5050.State) bool { return status(s, "u-next").Terminal() })
	if a := end.ActionStateOf("u-next"); a.ActionStatus != vda5050.ActionFinished || a.ResultDescription != "installed 2.0.1" {
		t.Errorf("second update: %+v", a)
	}
	if a := end.ActionStateOf("u-hang"); a.ActionStatus != vda5050.ActionFailed || a.ResultDescription != "superseded by u-next" {
		t.Errorf("hung update after the second: %+v", a)
	}
	if v := rg.robot.SoftwareVersion(); v != "2.0.1" {
		t.Errorf("SoftwareVersion() = %q", v)
	}
}

func TestScanFaults(t *testing.T) {
	long := strings.Repeat("x", 10000) + FaultHangInstall
	cases := []struct {
		content string
		want    updateFaults
	}{
		{"plain\n", updateFaults{}},
		{"a\n  " + FaultFatalAfterBoot + "  \r\nb", updateFaults{fatalAfterBoot: true}},
		{FaultHangInstall, updateFaults{hangInstall: true}},
		{"x" + FaultHangInstall + "\n", updateFaults{}},
		{long + "\n", updateFaults{}}, // a marker at the end of a long line is no marker
		{long + "\n" + FaultHangInstall + "\n", updateFaults{hangInstall: true}},
	}
	for i, c := range cases {
		got, err := scanFaults(strings.NewReader(c.content))
		if err != nil || got != c.want {
			t.Errorf("case %d: %+v, %v; want %+v", i, got, err, c.want)
		}
	}
}

// Stop must not wait for a hung install or a long reboot, and a robot
// stopped while rebooting stays down.
func TestStopDuringSoftwareUpdate(t *testing.T) {
	kit := newOTAKit(t)
	stopWithin := func(t *testing.T, rg *rig) {
		t.Helper()
		done := make(chan struct{})
		go func() { rg.fleet.Stop(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitLong):
			t.Fatalf("Stop did not return within %s", waitLong)
		}
	}

	t.Run("hung install", func(t *testing.T) {
		rg := startWith(t, Options{TrustedKeys: kit.keys}, func(c *RobotConfig) { c.ReleaseCounter = 1 })
		from := rg.obs.mark()
		rg.instant(t, update("u-stop-hang", kit.publish(t, spec{version: "2.0.0", counter: 2, faults: []string{FaultHangInstall}})))
		rg.obs.waitState(t, from, "installing", func(s vda5050.State) bool {
			a := s.ActionStateOf("u-stop-hang")
			return a != nil && a.ResultDescription == UpdateInstalling
		})
		stopWithin(t, rg)
		rg.obs.waitConn(t, from, vda5050.ConnectionOffline)
	})

	t.Run("long reboot", func(t *testing.T) {
		rg := startWith(t, Options{TrustedKeys: kit.keys, RebootDelay: time.Hour}, func(c *RobotConfig) { c.ReleaseCounter = 1 })
		from := rg.obs.mark()
		rg.instant(t, update("u-stop-reboot", kit.publish(t, spec{version: "2.0.0", counter: 2})))
		off := rg.obs.waitConn(t, from, vda5050.ConnectionOffline)
		stopWithin(t, rg)
		if i := rg.obs.connIndex(rg.obs.indexOf(off), vda5050.ConnectionOnline); i >= 0 {
			t.Errorf("the stopped robot came back online")
		}
		if v := rg.robot.SoftwareVersion(); v != "1.2.3" {
			t.Errorf("a reboot cut short by Stop booted %s", v)
		}
	})
}

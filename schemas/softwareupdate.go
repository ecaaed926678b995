// The softwareUpdate protocol beyond its parameters (ota.go): the phases a
// robot reports while it runs the action, and the kinds of refusal its
// FAILED actionState carries. The virtual robot writes them (internal/sim),
// RobotUpdate reads them; a vehicle of another make may write anything
// else, which reads as RefusalRobot (retryable).

package schemas

import "strings"

// UpdatePhase is the resultDescription of a RUNNING softwareUpdate
// actionState (VDA 5050 §6.10.6 leaves its content to the vehicle), in
// this order.
type UpdatePhase string

// The phases.
const (
	PhaseDownloading UpdatePhase = "downloading"
	PhaseVerifying   UpdatePhase = "verifying"
	PhaseInstalling  UpdatePhase = "installing"
	PhaseRebooting   UpdatePhase = "rebooting"
)

// UpdateRefusal is the kind of a FAILED softwareUpdate: why the robot did
// not (or could not) install it.
type UpdateRefusal string

// The kinds a robot writes at the start of the FAILED actionState's
// resultDescription (RefusalDescription) and RobotUpdate reads back
// (ParseRefusal). The verifier's kinds are internal/artifact's (Kind*).
const (
	// Transient: the same update may succeed later.
	RefusalBusy       UpdateRefusal = "Busy"           // "busy: order o-1 is running"
	RefusalPaused     UpdateRefusal = "Paused"         // "paused: …; send stopPause first"
	RefusalDownload   UpdateRefusal = "DownloadFailed" // "download manifest: …", "download artifact: …"
	RefusalSuperseded UpdateRefusal = "Superseded"     // "superseded by <actionId>"
	RefusalRobot      UpdateRefusal = "RobotRefused"   // anything else (another make's wording)

	// Final: sending the same update again cannot help.
	RefusalParameter       UpdateRefusal = "BadParameter"    // "parameter \"sha256\": …"
	RefusalNoTrustedKeys   UpdateRefusal = "NoTrustedKeys"   // "no trusted keys configured: …"
	RefusalVersionMismatch UpdateRefusal = "VersionMismatch" // "VersionMismatch: …"
	RefusalBadSignature    UpdateRefusal = "BadSignature"
	RefusalUnknownKey      UpdateRefusal = "UnknownKey"
	RefusalDigestMismatch  UpdateRefusal = "DigestMismatch"
	RefusalLengthMismatch  UpdateRefusal = "LengthMismatch"
	RefusalExpired         UpdateRefusal = "Expired"
	RefusalHardware        UpdateRefusal = "HardwareMismatch"
	RefusalRollback        UpdateRefusal = "Rollback"
	RefusalMalformed       UpdateRefusal = "Malformed"
)

// refusalWords are the lower-case words that begin the resultDescription
// of the refusals whose wording is not "<Kind>: …": a description is read
// by match (as the code before this contract read it, so "busy:x" and
// "no trusted keys: …" still count), and written as write + detail.
var refusalWords = []struct {
	match, write string
	kind         UpdateRefusal
}{
	{"busy:", "busy: ", RefusalBusy},
	{"paused:", "paused: ", RefusalPaused},
	{"download ", "download ", RefusalDownload},
	{"superseded by ", "superseded by ", RefusalSuperseded},
	{"parameter ", "parameter ", RefusalParameter},
	{"no trusted keys", "no trusted keys ", RefusalNoTrustedKeys},
}

// Retryable reports whether sending the same update again may succeed.
func (k UpdateRefusal) Retryable() bool {
	switch k {
	case RefusalParameter, RefusalNoTrustedKeys, RefusalVersionMismatch, RefusalBadSignature, RefusalUnknownKey,
		RefusalDigestMismatch, RefusalLengthMismatch, RefusalExpired, RefusalHardware, RefusalRollback, RefusalMalformed:
		return false
	}
	return true
}

// RefusalDescription is the resultDescription a robot writes for a
// refusal of kind k: the kind's word and detail ("busy: order o-1 is
// running"), or "<Kind>: detail" for the verifier's kinds. detail is
// one line.
func RefusalDescription(k UpdateRefusal, detail string) string {
	for _, w := range refusalWords {
		if w.kind == k {
			return w.write + detail
		}
	}
	return string(k) + ": " + detail
}

// ParseRefusal reads the kind of a FAILED softwareUpdate from its
// resultDescription: one of the words above, or "<Kind>: …" with Kind one
// word; anything else is RefusalRobot.
func ParseRefusal(desc string) UpdateRefusal {
	for _, w := range refusalWords {
		if strings.HasPrefix(desc, w.match) {
			return w.kind
		}
	}
	k, _, ok := strings.Cut(desc, ":")
	if !ok || k == "" || strings.ContainsAny(k, " \t") {
		return RefusalRobot
	}
	return UpdateRefusal(k)
}

package schemas

import "testing"

// What the virtual robot writes reads back as the same kind, and each
// kind's retry verdict is the one RobotUpdate relies on.
func TestRefusalDescriptionsReadBack(t *testing.T) {
	for _, c := range []struct {
		kind      UpdateRefusal
		detail    string
		want      string
		retryable bool
	}{
		{RefusalBusy, "order o-1 is running", "busy: order o-1 is running", true},
		{RefusalPaused, "send stopPause first", "paused: send stopPause first", true},
		{RefusalDownload, "manifest: 404", "download manifest: 404", true},
		{RefusalSuperseded, "u-2", "superseded by u-2", true},
		{RefusalNoTrustedKeys, "configured", "no trusted keys configured", false},
		{RefusalVersionMismatch, "2.0.0 ≠ 2.0.1", "VersionMismatch: 2.0.0 ≠ 2.0.1", false},
		{RefusalBadSignature, "no valid signature", "BadSignature: no valid signature", false},
	} {
		d := RefusalDescription(c.kind, c.detail)
		if d != c.want {
			t.Errorf("RefusalDescription(%s) = %q, want %q", c.kind, d, c.want)
		}
		if got := ParseRefusal(d); got != c.kind || got.Retryable() != c.retryable {
			t.Errorf("ParseRefusal(%q) = %s (retryable %v), want %s (%v)", d, got, got.Retryable(), c.kind, c.retryable)
		}
	}
	for desc, want := range map[string]UpdateRefusal{
		`parameter "sha256" is empty`:   RefusalParameter,
		"battery too low to update":     RefusalRobot, // another make's wording
		"Expired: the manifest expired": RefusalExpired,
		"":                              RefusalRobot,
		"busy:rebooting":                RefusalBusy,
		"no trusted keys: none loaded":  RefusalNoTrustedKeys,
	} {
		if got := ParseRefusal(desc); got != want {
			t.Errorf("ParseRefusal(%q) = %s, want %s", desc, got, want)
		}
	}
	if RefusalParameter.Retryable() || !RefusalRobot.Retryable() {
		t.Error("a bad parameter is final; an unknown refusal may pass")
	}
}

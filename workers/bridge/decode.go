// Decoding: a message is parsed, checked (size, UTF-8, NUL, its robot's
// VDA 5050 schema) and counted when it deviates, before anything of it is
// used.

package bridge

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/vda5050"
)

// decode parses topic and payload and reads the payload by the robot's
// profile: a state tolerantly (vda5050.DecodeState: deviations counted,
// unusable parts named), a connection strictly against its edition's
// schema; a factsheet only tells the version an auto profile speaks. It
// returns nil for a message that carries nothing (a cleared retained
// connection, a factsheet) and a decoded with rejected set for one that
// cannot be used at all. Safe for concurrent use.
func (b *Bridge) decode(topic string, payload []byte) *decoded {
	k, t, err := vda5050.ParseTopic(topic)
	if err != nil {
		b.m.rejected.WithLabelValues("unknown").Inc()
		b.log.Warn("bridge: message on unexpected topic", "topic", topic, "error", err)
		return nil
	}
	b.m.received.WithLabelValues(string(t)).Inc()
	if err := wellFormed(payload, b.opts.MaxMessageBytes); err != nil {
		return b.reject(k, t, topic, err)
	}
	prof := b.opts.Profiles.For(k)
	switch t {
	case vda5050.TopicState:
		in, err := vda5050.DecodeState(prof.Edition(), payload)
		if err != nil {
			return b.reject(k, t, topic, err)
		}
		st := &in.State
		if st.Manufacturer != k.Manufacturer || st.SerialNumber != k.SerialNumber {
			return b.reject(k, t, topic, errors.New("header manufacturer/serialNumber do not match the topic"))
		}
		ts, err := time.Parse(time.RFC3339Nano, st.Timestamp)
		if err != nil {
			return b.reject(k, t, topic, fmt.Errorf("header timestamp %q is not RFC 3339", st.Timestamp))
		}
		if ts.After(time.Now().Add(b.opts.MaxClockSkew)) {
			return b.reject(k, t, topic, fmt.Errorf("header timestamp %s is more than %s in the future", st.Timestamp, b.opts.MaxClockSkew))
		}
		b.opts.Profiles.Saw(k, st.Version)
		return &decoded{k: k, st: st, deviations: in.Deviations, unusable: in.Unusable}
	case vda5050.TopicConnection:
		if len(payload) == 0 {
			return nil // a cleared retained message
		}
		var c vda5050.Connection
		if err := vda5050.ValidateEdition(prof.Edition(), t, payload); err != nil {
			return b.reject(k, t, topic, err)
		}
		if err := vda5050.Unmarshal(payload, &c); err != nil {
			return b.reject(k, t, topic, err)
		}
		return &decoded{k: k, conn: &c}
	case vda5050.TopicFactsheet:
		if len(payload) == 0 {
			return nil // a cleared retained message
		}
		// Only its version is read (an auto profile learns the edition).
		var h struct {
			Version string `json:"version"`
		}
		if err := gojson.Unmarshal(payload, &h); err != nil {
			return b.reject(k, t, topic, err)
		}
		b.opts.Profiles.Saw(k, h.Version)
	}
	return nil
}

// wellFormed refuses what the registry could not hold or a robot has no
// business sending: a message over max bytes, invalid UTF-8, or a NUL
// character in a string (PostgreSQL text and jsonb refuse \u0000, and one
// such value fails the whole batched statement it is in).
func wellFormed(payload []byte, max int) error {
	if len(payload) > max {
		return fmt.Errorf("message of %d bytes exceeds the %d-byte limit", len(payload), max)
	}
	if !utf8.Valid(payload) {
		return errors.New("message is not valid UTF-8")
	}
	if hasNULEscape(payload) {
		return errors.New(`message holds a NUL character (\u0000) in a string`)
	}
	return nil
}

// hasNULEscape finds a JSON \u0000 escape (a raw NUL byte is not valid
// JSON anyway): a backslash run of odd length followed by u0000.
func hasNULEscape(b []byte) bool {
	for i := 0; i+5 < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		j := i
		for j < len(b) && b[j] == '\\' {
			j++
		}
		if (j-i)%2 == 1 && j+5 <= len(b) && b[j] == 'u' && string(b[j+1:j+5]) == "0000" {
			return true
		}
		i = j - 1
	}
	return false
}

// reject counts and logs a message that cannot be used at all; Run counts
// it against the robot too (deviation kind "rejected").
func (b *Bridge) reject(k vda5050.RobotKey, t vda5050.Topic, topic string, err error) *decoded {
	b.m.rejected.WithLabelValues(string(t)).Inc()
	b.log.Warn("bridge: rejected malformed message", "topic", topic, "reason", err.Error())
	return &decoded{k: k, rejected: string(t) + ": " + err.Error()}
}

// DeviationRejected counts, per robot, the messages that could not be used
// at all (beside the vda5050.Deviation kinds of the ones that could).
const DeviationRejected = "rejected"

// countDeviations adds d's deviations (or its rejection) to the robot's
// counts, to be stored with the next flush, and logs the first of each kind
// per robot (the rest are counted: /metrics, `fleet show`). Caller holds mu.
func (b *Bridge) countDeviations(d *decoded, at time.Time) {
	id := d.k.String()
	add := func(kind, path, detail string) {
		key := [2]string{id, kind}
		c := b.devs[key]
		if c == nil {
			c = &store.DeviationCount{RobotID: id, Kind: kind}
			b.devs[key] = c
		}
		c.Count++
		c.LastPath, c.LastDetail, c.LastAt = path, detail, at
		b.m.deviations.WithLabelValues(id, kind).Inc()
		if !b.devSeen[key] {
			b.devSeen[key] = true
			b.log.Warn("bridge: robot's messages deviate from its VDA 5050 schema (counted; further ones are not logged)",
				"robot", id, "kind", kind, "path", path, "detail", detail)
		}
	}
	if d.rejected != "" {
		add(DeviationRejected, "", d.rejected)
	}
	for _, dv := range d.deviations {
		add(dv.Kind, dv.Path, dv.Detail)
	}
}

// urlQuery matches an http(s) URL's query string (and fragment).
var urlQuery = regexp.MustCompile(`(https?://[^\s?#"']+)[?#][^\s"']*`)

// redactURLQueries drops the query strings of URLs a robot echoes in its
// actionStates' resultDescription and errors' errorDescription (a
// softwareUpdate's artifactUrl, say, with the artifact store's presigned
// token): they go from here into workflow histories and the registry.
// States without a URL cost two substring checks.
func redactURLQueries(st *vda5050.State) {
	clean := func(s string) string {
		if !strings.Contains(s, "://") || !strings.ContainsAny(s, "?#") {
			return s
		}
		return urlQuery.ReplaceAllString(s, "$1?…")
	}
	for i := range st.ActionStates {
		st.ActionStates[i].ResultDescription = clean(st.ActionStates[i].ResultDescription)
	}
	for i := range st.Errors {
		st.Errors[i].ErrorDescription = clean(st.Errors[i].ErrorDescription)
	}
}

package vda5050

import (
	"slices"
	"sync"
)

// ProfileBook says how each robot speaks VDA 5050: the profiles configured
// per robot (from the site maps), a default for robots it does not know,
// and, for "auto" profiles, the version each vehicle last wrote in its own
// headers. It is safe for concurrent use. A nil *ProfileBook answers the
// default profile for every robot.
type ProfileBook struct {
	def     Profile
	byRobot map[RobotKey]Profile

	mu   sync.RWMutex
	seen map[RobotKey]string
}

// NewProfileBook returns a book of the configured profiles; robots not in
// byRobot speak def.
func NewProfileBook(def Profile, byRobot map[RobotKey]Profile) *ProfileBook {
	return &ProfileBook{def: def, byRobot: byRobot, seen: map[RobotKey]string{}}
}

// Configured returns k's profile as configured (not resolved).
func (b *ProfileBook) Configured(k RobotKey) Profile {
	if b == nil {
		return Profile{}
	}
	if p, ok := b.byRobot[k]; ok {
		return p
	}
	return b.def
}

// For returns k's profile with every default filled in (Profile.Resolve),
// an auto profile at the version the vehicle last wrote.
func (b *ProfileBook) For(k RobotKey) Profile {
	p := b.Configured(k)
	if b == nil || !p.Auto() {
		return p.Resolve("")
	}
	b.mu.RLock()
	seen := b.seen[k]
	b.mu.RUnlock()
	return p.Resolve(seen)
}

// Saw records the version a vehicle wrote in a header; it changes what For
// answers for auto profiles only.
func (b *ProfileBook) Saw(k RobotKey, version string) {
	if b == nil || version == "" || !b.Configured(k).Auto() {
		return
	}
	if _, err := ParseEdition(version); err != nil {
		return
	}
	b.mu.RLock()
	same := b.seen[k] == version
	b.mu.RUnlock()
	if same {
		return
	}
	b.mu.Lock()
	b.seen[k] = version
	b.mu.Unlock()
}

// Subscriptions returns the wildcard filters for topic t that cover every
// profile in the book (one per interface name and major version), sorted.
// Auto profiles cover both majors.
func (b *ProfileBook) Subscriptions(t Topic) []string {
	var out []string
	add := func(p Profile) {
		if p.Auto() {
			for _, e := range Editions {
				q := p
				q.Version = string(e)
				out = append(out, q.Subscription(t))
			}
			return
		}
		out = append(out, p.Subscription(t))
	}
	add(Profile{})
	if b != nil {
		add(b.def)
		for _, p := range b.byRobot {
			add(p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Package site holds fleetflow's site maps: the nodes, lanes, stations and
// robots of one site (one floor, one VDA 5050 mapId), loaded from
// testdata/sites/<site>.yaml or built with Grid. It routes on the lane graph,
// turns a mission's steps into a VDA 5050 2.0 order with node positions and
// pick/drop actions, and checks a mission against the map.
//
// It is pure computation: no MQTT, no database, no Temporal; it may be used
// from activities and from the CLI, and its results are deterministic.
// Distances are in metres, speeds in m/s, angles in radians.
package site

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/fleetflow/fleetflow/internal/vda5050"
)

// Station types: what happens at a station.
const (
	StationPick   = "pick"   // loads are picked up here (VDA 5050 action "pick")
	StationDrop   = "drop"   // loads are dropped here (VDA 5050 action "drop")
	StationCharge = "charge" // robots charge here
)

// ErrNoRoute is wrapped by Route, BuildOrder and CheckMission when no
// sequence of lanes joins two nodes (one-way lanes respected).
var ErrNoRoute = errors.New("no route")

// Map is one site: a directed lane graph on one floor plus its stations and
// robots. Coordinates are metres in the site's frame, which is the frame of
// the VDA 5050 map MapID (VDA 5050 2.0 §6.6.5: right-handed, x and y in
// metres, angles counterclockwise in radians within [-π, π]).
//
// A Map returned by Load, LoadDir or Grid is valid and safe for concurrent
// use by its query methods. A Map built by hand should be checked with
// Validate before use, and must not be modified after its first query
// (Node, Station, Route, NearestNode, BuildOrder, CheckMission): the lookup
// indexes are built once, on first use.
type Map struct {
	Site     string // site name, the key of LoadDir and of missions' "site"
	MapID    string // VDA 5050 nodePosition.mapId of every node
	Nodes    []Node
	Edges    []Edge
	Stations []Station
	Robots   []Robot
	// Profiles say how the site's vehicles speak VDA 5050, per manufacturer
	// (and model); a robot's own Protocol overrides them (ProfileFor).
	Profiles []VehicleProfile

	// source is the file the map was loaded from, for error messages.
	source string

	once sync.Once
	idx  *index
}

// Node is a point of the lane graph. X and Y are metres; Theta is the
// orientation a robot must take on the node, in radians within [-π, π].
//
// Theta is optional (VDA 5050 2.0 §6.7 nodePosition.theta: without it the
// "vehicle can plan the path by itself"). A theta written in the YAML, even
// 0, is sent in orders; a Theta of 0 that was never written (absent key, or
// a Node built in code with Theta 0) is treated as absent and left out.
type Node struct {
	ID    string
	X     float64 // metres
	Y     float64 // metres
	Theta float64 // radians

	thetaSet bool
}

// HasTheta reports whether the node prescribes an orientation.
func (n Node) HasTheta() bool { return n.thetaSet || n.Theta != 0 }

// Edge is a lane between two nodes. It may be driven both ways unless
// OneWay, in which case only From → To. Its length is the Euclidean
// distance between the nodes (metres); MaxSpeed is in m/s, 0 = no limit
// (VDA 5050 2.0 §6.7 edge.maxSpeed is then left out).
type Edge struct {
	From     string  `yaml:"from"`
	To       string  `yaml:"to"`
	OneWay   bool    `yaml:"oneWay"`
	MaxSpeed float64 `yaml:"maxSpeed"`
}

// Station is a place on a node where loads are picked or dropped, or where
// robots charge. Type is StationPick, StationDrop or StationCharge;
// StationType is the VDA 5050 2.0 §6.8.1 pick/drop parameter "stationType"
// (e.g. "floor", "rack", "conveyor"), sent as given.
type Station struct {
	ID          string `yaml:"id"`
	Node        string `yaml:"node"`
	Type        string `yaml:"type"`
	StationType string `yaml:"stationType"`
}

// Robot is a vehicle that works on the site. Manufacturer and SerialNumber
// form its MQTT topic (VDA 5050 2.0 §6.3 "MQTT topic levels") and its fleetflow robot ID
// "manufacturer/serialNumber". Capabilities name what it can do (e.g.
// "pick", "drop", "lift"); HomeNode is where it parks.
type Robot struct {
	Manufacturer    string   `yaml:"manufacturer"`
	SerialNumber    string   `yaml:"serialNumber"`
	Model           string   `yaml:"model"`
	Capabilities    []string `yaml:"capabilities"`
	HomeNode        string   `yaml:"homeNode"`
	SoftwareVersion string   `yaml:"softwareVersion"`
	// Protocol, when set, is this vehicle's own VDA 5050 profile; it wins
	// over the map's profiles for its manufacturer and model.
	Protocol *vda5050.Profile `yaml:"protocol"`
}

// VehicleProfile is the VDA 5050 profile of every robot of one
// manufacturer, or of one model of it when Model is set (the more specific
// one wins).
type VehicleProfile struct {
	Manufacturer    string `yaml:"manufacturer"`
	Model           string `yaml:"model"`
	vda5050.Profile `yaml:",inline"`
}

// ProfileFor returns how robot r speaks VDA 5050: its own Protocol, else
// the profile of its manufacturer and model, else of its manufacturer,
// else the default (vda5050.Profile{}: 2.0.0 on uagv).
func (m *Map) ProfileFor(r Robot) vda5050.Profile {
	if r.Protocol != nil {
		return *r.Protocol
	}
	var byMaker *vda5050.Profile
	for i := range m.Profiles {
		p := &m.Profiles[i]
		if p.Manufacturer != r.Manufacturer {
			continue
		}
		if p.Model != "" && p.Model == r.Model {
			return p.Profile
		}
		if p.Model == "" && byMaker == nil {
			byMaker = &p.Profile
		}
	}
	if byMaker != nil {
		return *byMaker
	}
	return vda5050.Profile{}
}

// Robot returns the robot with VDA 5050 identity k.
func (m *Map) Robot(k vda5050.RobotKey) (Robot, bool) {
	for _, r := range m.Robots {
		if r.Key() == k {
			return r, true
		}
	}
	return Robot{}, false
}

// Key returns the robot's VDA 5050 identity.
func (r Robot) Key() vda5050.RobotKey {
	return vda5050.RobotKey{Manufacturer: r.Manufacturer, SerialNumber: r.SerialNumber}
}

// Has reports whether the robot has every capability in caps.
func (r Robot) Has(caps ...string) bool {
	for _, c := range caps {
		if !slices.Contains(r.Capabilities, c) {
			return false
		}
	}
	return true
}

// ValidationError lists every problem found in a map, an order request or
// a mission. Each problem names the element, e.g.
// `edges[3]: unknown node "A9"`.
type ValidationError struct {
	Source   string   // file or subject the problems are about; may be ""
	Problems []string // one per problem, in document order
}

// Error prints one problem per line, each prefixed with Source.
func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if e.Source != "" {
			b.WriteString(e.Source)
			b.WriteString(": ")
		}
		b.WriteString(p)
	}
	return b.String()
}

type problems struct {
	source string
	list   []string
}

func (p *problems) addf(format string, args ...any) {
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &ValidationError{Source: p.source, Problems: p.list}
}

// Load reads and validates a site map from a YAML file. Unknown keys are
// errors (they are usually typos). Every problem is reported, not just the
// first, as a *ValidationError whose Source is path, e.g.
// `testdata/sites/warehouse-a.yaml: edges[3]: unknown node "A9"`.
func Load(path string) (*Map, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, raw)
}

func parse(source string, raw []byte) (*Map, error) {
	var f file
	p := problems{source: source}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	err := dec.Decode(&f)
	m := f.toMap(source)
	if errors.Is(err, io.EOF) {
		err = nil // empty file: Validate names what is missing
	}
	if err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			// Syntax error: nothing sensible was decoded.
			return nil, &ValidationError{Source: source, Problems: []string{strings.TrimPrefix(err.Error(), "yaml: ")}}
		}
		// A type error still decodes the rest: report it and validate
		// what was read, so the user sees every problem at once.
		for _, e := range te.Errors {
			p.addf("%s", e)
		}
	}
	p.list = append(p.list, m.problems()...)
	if err := p.err(); err != nil {
		return nil, err
	}
	m.index()
	return m, nil
}

// file is the YAML layout; it differs from Map only in telling an absent
// theta from an explicit 0.
type file struct {
	Site  string `yaml:"site"`
	MapID string `yaml:"mapId"`
	Nodes []struct {
		ID    string   `yaml:"id"`
		X     float64  `yaml:"x"`
		Y     float64  `yaml:"y"`
		Theta *float64 `yaml:"theta"`
	} `yaml:"nodes"`
	Edges    []Edge           `yaml:"edges"`
	Stations []Station        `yaml:"stations"`
	Robots   []Robot          `yaml:"robots"`
	Profiles []VehicleProfile `yaml:"profiles"`
}

func (f *file) toMap(source string) *Map {
	m := &Map{Site: f.Site, MapID: f.MapID, Edges: f.Edges, Stations: f.Stations, Robots: f.Robots, Profiles: f.Profiles, source: source}
	m.Nodes = make([]Node, len(f.Nodes))
	for i, n := range f.Nodes {
		m.Nodes[i] = Node{ID: n.ID, X: n.X, Y: n.Y}
		if n.Theta != nil {
			m.Nodes[i].Theta, m.Nodes[i].thetaSet = *n.Theta, true
		}
	}
	return m
}

// LoadDir loads every *.yaml file in dir, keyed by Site. Problems in all
// files are reported together (errors.Join of each file's error); two files
// with the same site, or a directory without maps, are errors.
func LoadDir(dir string) (map[string]*Map, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: no site maps (*.yaml)", dir)
	}
	sort.Strings(paths)
	out := make(map[string]*Map, len(paths))
	from := make(map[string]string)
	var errs []error
	for _, path := range paths {
		m, err := Load(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := from[m.Site]; dup {
			errs = append(errs, fmt.Errorf("%s: site %q is already defined in %s", path, m.Site, prev))
			continue
		}
		from[m.Site] = path
		out[m.Site] = m
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// Validate checks the map and returns a *ValidationError listing every
// problem: site and mapId present; node ids present and unique, theta in
// [-π, π] (VDA 5050 2.0 §6.6.5 and the order schema); edges join two distinct
// known nodes, no duplicate lanes, maxSpeed ≥ 0; station ids unique, on a
// known node, of type pick, drop or charge; robots with manufacturer and
// serialNumber valid as VDA 5050 topic levels (§6.3: A-Z a-z 0-9 _ . : -,
// see vda5050.ValidIdentifier), not listed twice, on a known home node.
func (m *Map) Validate() error {
	p := problems{source: m.source, list: m.problems()}
	return p.err()
}

func (m *Map) problems() []string {
	var p problems
	if m.Site == "" {
		p.addf("site: missing")
	}
	if m.MapID == "" {
		p.addf("mapId: missing")
	}
	if len(m.Nodes) == 0 {
		p.addf("nodes: none")
	}
	nodes := make(map[string]int, len(m.Nodes))
	for i, n := range m.Nodes {
		switch {
		case n.ID == "":
			p.addf("nodes[%d]: id missing", i)
		default:
			if j, dup := nodes[n.ID]; dup {
				p.addf("nodes[%d]: duplicate node id %q (also nodes[%d])", i, n.ID, j)
			} else {
				nodes[n.ID] = i
			}
		}
		if math.IsNaN(n.X) || math.IsInf(n.X, 0) || math.IsNaN(n.Y) || math.IsInf(n.Y, 0) {
			p.addf("nodes[%d]: position (%v, %v) is not finite", i, n.X, n.Y)
		}
		if n.Theta < -math.Pi || n.Theta > math.Pi || math.IsNaN(n.Theta) {
			p.addf("nodes[%d]: theta %v outside [-π, π] radians", i, n.Theta)
		}
	}
	lanes := make(map[[2]string]int, 2*len(m.Edges))
	for i, e := range m.Edges {
		ok := true
		for _, end := range []struct{ name, id string }{{"from", e.From}, {"to", e.To}} {
			if end.id == "" {
				p.addf("edges[%d]: %s missing", i, end.name)
				ok = false
			} else if _, known := nodes[end.id]; !known {
				p.addf("edges[%d]: unknown node %q", i, end.id)
				ok = false
			}
		}
		if ok && e.From == e.To {
			p.addf("edges[%d]: lane from %q to itself", i, e.From)
			ok = false
		}
		if e.MaxSpeed < 0 || math.IsNaN(e.MaxSpeed) {
			p.addf("edges[%d]: maxSpeed %v m/s is negative", i, e.MaxSpeed)
		}
		if !ok {
			continue
		}
		dirs := [][2]string{{e.From, e.To}}
		if !e.OneWay {
			dirs = append(dirs, [2]string{e.To, e.From})
		}
		for _, d := range dirs {
			if j, dup := lanes[d]; dup {
				p.addf("edges[%d]: lane %s → %s is already defined by edges[%d]", i, d[0], d[1], j)
				break
			}
			lanes[d] = i
		}
	}
	stations := make(map[string]int, len(m.Stations))
	for i, s := range m.Stations {
		if s.ID == "" {
			p.addf("stations[%d]: id missing", i)
		} else if j, dup := stations[s.ID]; dup {
			p.addf("stations[%d]: duplicate station id %q (also stations[%d])", i, s.ID, j)
		} else {
			stations[s.ID] = i
		}
		if s.Node == "" {
			p.addf("stations[%d]: node missing", i)
		} else if _, known := nodes[s.Node]; !known {
			p.addf("stations[%d]: unknown node %q", i, s.Node)
		}
		switch s.Type {
		case StationPick, StationDrop, StationCharge:
		default:
			p.addf("stations[%d]: type %q is not pick, drop or charge", i, s.Type)
		}
	}
	robots := make(map[vda5050.RobotKey]int, len(m.Robots))
	for i, r := range m.Robots {
		if err := vda5050.ValidIdentifier(r.Manufacturer); err != nil {
			p.addf("robots[%d]: manufacturer %v", i, err)
		}
		if err := vda5050.ValidIdentifier(r.SerialNumber); err != nil {
			p.addf("robots[%d]: serialNumber %v", i, err)
		}
		if j, dup := robots[r.Key()]; dup {
			p.addf("robots[%d]: duplicate robot %s (also robots[%d])", i, r.Key(), j)
		} else {
			robots[r.Key()] = i
		}
		if r.HomeNode == "" {
			p.addf("robots[%d]: homeNode missing", i)
		} else if _, known := nodes[r.HomeNode]; !known {
			p.addf("robots[%d]: unknown homeNode %q", i, r.HomeNode)
		}
		if r.Protocol != nil {
			if err := r.Protocol.Validate(); err != nil {
				p.addf("robots[%d].protocol: %v", i, err)
			}
		}
	}
	profiles := map[[2]string]int{}
	for i, vp := range m.Profiles {
		if err := vda5050.ValidIdentifier(vp.Manufacturer); err != nil {
			p.addf("profiles[%d]: manufacturer %v", i, err)
		}
		key := [2]string{vp.Manufacturer, vp.Model}
		if j, dup := profiles[key]; dup {
			p.addf("profiles[%d]: %s %s is already profiled by profiles[%d]", i, vp.Manufacturer, vp.Model, j)
		} else {
			profiles[key] = i
		}
		if err := vp.Profile.Validate(); err != nil {
			p.addf("profiles[%d] (%s %s): %v", i, vp.Manufacturer, vp.Model, err)
		}
	}
	return p.list
}

// index holds the lookups and the lane graph in integer form.
type index struct {
	node    map[string]int // node id → position in Map.Nodes
	station map[string]int // station id → position in Map.Stations
	adj     [][]arc        // outgoing lanes per node, sorted by target id
	lane    map[[2]int]int // directed lane → position in Map.Edges
	rank    []int          // node position → rank of its id in sorted order (tie-breaks)
}

type arc struct {
	to     int
	length float64 // metres
}

// index builds the lookups once. It tolerates an invalid map (first
// definition wins, dangling references are skipped): validity is Validate's
// job.
func (m *Map) index() *index {
	m.once.Do(func() {
		ix := &index{
			node:    make(map[string]int, len(m.Nodes)),
			station: make(map[string]int, len(m.Stations)),
			adj:     make([][]arc, len(m.Nodes)),
			lane:    make(map[[2]int]int, 2*len(m.Edges)),
		}
		for i, n := range m.Nodes {
			if _, dup := ix.node[n.ID]; !dup {
				ix.node[n.ID] = i
			}
		}
		for i, s := range m.Stations {
			if _, dup := ix.station[s.ID]; !dup {
				ix.station[s.ID] = i
			}
		}
		add := func(from, to, edge int) {
			if _, dup := ix.lane[[2]int{from, to}]; dup || from == to {
				return
			}
			ix.lane[[2]int{from, to}] = edge
			ix.adj[from] = append(ix.adj[from], arc{to: to, length: m.dist(from, to)})
		}
		for i, e := range m.Edges {
			f, okf := ix.node[e.From]
			t, okt := ix.node[e.To]
			if !okf || !okt {
				continue
			}
			add(f, t, i)
			if !e.OneWay {
				add(t, f, i)
			}
		}
		byID := make([]int, len(m.Nodes))
		for i := range byID {
			byID[i] = i
		}
		sort.SliceStable(byID, func(i, j int) bool { return m.Nodes[byID[i]].ID < m.Nodes[byID[j]].ID })
		ix.rank = make([]int, len(m.Nodes))
		for r, i := range byID {
			ix.rank[i] = r
		}
		for _, a := range ix.adj {
			sort.Slice(a, func(i, j int) bool { return ix.rank[a[i].to] < ix.rank[a[j].to] })
		}
		m.idx = ix
	})
	return m.idx
}

func (m *Map) dist(a, b int) float64 {
	return math.Hypot(m.Nodes[b].X-m.Nodes[a].X, m.Nodes[b].Y-m.Nodes[a].Y)
}

// Node returns the node with the given id.
func (m *Map) Node(id string) (Node, bool) {
	i, ok := m.index().node[id]
	if !ok {
		return Node{}, false
	}
	return m.Nodes[i], true
}

// Station returns the station with the given id.
func (m *Map) Station(id string) (Station, bool) {
	i, ok := m.index().station[id]
	if !ok {
		return Station{}, false
	}
	return m.Stations[i], true
}

// NearestNode returns the node closest to (x, y) and its distance in
// metres; on equal distance the smaller node id wins. On a map without
// nodes it returns the zero Node and +Inf.
func (m *Map) NearestNode(x, y float64) (Node, float64) {
	best, bestD := -1, math.Inf(1)
	for i, n := range m.Nodes {
		d := math.Hypot(n.X-x, n.Y-y)
		if d < bestD || (d == bestD && best >= 0 && n.ID < m.Nodes[best].ID) {
			best, bestD = i, d
		}
	}
	if best < 0 {
		return Node{}, bestD
	}
	return m.Nodes[best], bestD
}

// ProfileBook gathers the VDA 5050 profile of every robot of the maps (see
// ProfileFor); robots on no map speak the default profile.
func ProfileBook(maps map[string]*Map) *vda5050.ProfileBook {
	byRobot := map[vda5050.RobotKey]vda5050.Profile{}
	for _, m := range maps {
		for _, r := range m.Robots {
			byRobot[r.Key()] = m.ProfileFor(r)
		}
	}
	return vda5050.NewProfileBook(vda5050.Profile{}, byRobot)
}

// PickAndDropStations returns the IDs of the map's pick and drop
// stations, in map order (the benchmarks draw their missions from them).
func (m *Map) PickAndDropStations() (picks, drops []string) {
	for _, s := range m.Stations {
		switch s.Type {
		case StationPick:
			picks = append(picks, s.ID)
		case StationDrop:
			drops = append(drops, s.ID)
		}
	}
	return picks, drops
}

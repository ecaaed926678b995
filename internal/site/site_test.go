package site

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetflow/fleetflow/internal/vda5050"
)

const warehouseA = "../../testdata/sites/warehouse-a.yaml"

func load(t *testing.T) *Map {
	t.Helper()
	m, err := Load(warehouseA)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// encode fills the header as the sender would and checks the order against
// the official VDA 5050 2.0 order schema.
func encode(t *testing.T, o vda5050.Order) {
	t.Helper()
	o.Header = vda5050.Header{HeaderID: 0, Timestamp: "2026-01-01T00:00:00.000Z", Version: "2.0.0", Manufacturer: "acme", SerialNumber: "AMR-001"}
	if _, err := vda5050.Encode(vda5050.TopicOrder, o); err != nil {
		t.Fatalf("order breaks the official schema: %v", err)
	}
}

func ids(o vda5050.Order) string {
	var s []string
	for _, n := range o.Nodes {
		s = append(s, n.NodeID)
	}
	return strings.Join(s, ",")
}

func TestLoadWarehouseA(t *testing.T) {
	m := load(t)
	if m.Site != "warehouse-a" || m.MapID != "warehouse-a-floor1" {
		t.Fatalf("site %q map %q", m.Site, m.MapID)
	}
	if n := len(m.Nodes); n < 20 || n > 30 {
		t.Errorf("%d nodes, want 20–30", n)
	}
	count := map[string]int{}
	for _, s := range m.Stations {
		count[s.Type]++
	}
	if count[StationPick] < 3 || count[StationDrop] < 5 || count[StationCharge] != 2 {
		t.Errorf("stations by type: %v", count)
	}
	makers := map[string]int{}
	for _, r := range m.Robots {
		makers[r.Manufacturer]++
		if r.SoftwareVersion != "1.4.2" {
			t.Errorf("%s: software %s", r.Key(), r.SoftwareVersion)
		}
	}
	if len(m.Robots) != 6 || len(makers) != 2 {
		t.Errorf("%d robots of %d manufacturers", len(m.Robots), len(makers))
	}
	if st, ok := m.Station("inbound-1"); !ok || st.Type != StationPick || st.StationType != "conveyor" {
		t.Errorf("inbound-1: %+v %v", st, ok)
	}
	if n, ok := m.Node("E1"); !ok || !n.HasTheta() || n.Theta != 0 {
		t.Errorf("E1 has an explicit theta 0: %+v", n)
	}
	if n, _ := m.Node("S1"); n.HasTheta() {
		t.Errorf("S1 has no theta in the YAML: %+v", n)
	}
	if _, ok := m.Node("nowhere"); ok {
		t.Error("unknown node found")
	}
	// Every station must be reachable from every robot's home (one-way
	// lanes included), or the demo strands robots.
	for _, r := range m.Robots {
		for _, s := range m.Stations {
			if _, err := m.Route(r.HomeNode, s.Node); err != nil {
				t.Errorf("%s at %s: %v", r.Key(), r.HomeNode, err)
			}
		}
	}

	maps, err := LoadDir("../../testdata/sites")
	if err != nil || maps["warehouse-a"] == nil {
		t.Fatalf("LoadDir: %v %v", maps, err)
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	p := filepath.Join(t.TempDir(), "broken.yaml")
	err := os.WriteFile(p, []byte(`site: broken
nodes:
  - {id: A, x: 0, y: 0}
  - {id: A, x: 1, y: 0}
  - {id: B, x: 2, y: 0, theta: 4}
edges:
  - {from: A, to: B}
  - {from: B, to: A}
  - {from: A, to: Z}
  - {from: B, to: B}
  - {from: A, to: B, colour: red}
stations:
  - {id: s1, node: Q, type: pick}
  - {id: s1, node: A, type: teleport}
robots:
  - {manufacturer: acme, serialNumber: "bad serial", homeNode: A}
  - {manufacturer: acme, serialNumber: R1, homeNode: Nowhere}
  - {manufacturer: acme, serialNumber: R1, homeNode: A}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Load(p)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	want := []string{
		"field colour not found",
		"mapId: missing",
		`nodes[1]: duplicate node id "A" (also nodes[0])`,
		"nodes[2]: theta 4 outside [-π, π] radians",
		"edges[1]: lane B → A is already defined by edges[0]",
		`edges[2]: unknown node "Z"`,
		`edges[3]: lane from "B" to itself`,
		"edges[4]: lane A → B is already defined by edges[0]",
		`stations[0]: unknown node "Q"`,
		`stations[1]: duplicate station id "s1" (also stations[0])`,
		`stations[1]: type "teleport" is not pick, drop or charge`,
		`robots[0]: serialNumber "bad serial": only A-Z a-z 0-9 _ . : - are allowed`,
		`robots[1]: unknown homeNode "Nowhere"`,
		"robots[2]: duplicate robot acme/R1 (also robots[1])",
	}
	if len(ve.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(ve.Problems), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q", w)
		}
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, p+": ") {
			t.Errorf("line does not name the file: %q", line)
		}
	}

	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "syntax.yaml")
	os.WriteFile(bad, []byte("site: [unclosed\n"), 0o644)
	if _, err := Load(bad); err == nil || !strings.HasPrefix(err.Error(), bad+": ") {
		t.Errorf("syntax error: %v", err)
	}
}

func TestLoadDirReportsEveryFile(t *testing.T) {
	dir := t.TempDir()
	good := "site: s\nmapId: m\nnodes: [{id: A, x: 0, y: 0}]\n"
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(good), 0o644)
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(good), 0o644)
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("site: c\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a map"), 0o644)
	_, err := LoadDir(dir)
	if err == nil {
		t.Fatal("want error")
	}
	for _, w := range []string{`b.yaml: site "s" is already defined in`, "c.yaml: mapId: missing", "c.yaml: nodes: none"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func TestRoute(t *testing.T) {
	m := load(t)
	for _, c := range []struct {
		from, to, want string
		length         float64
	}{
		{"S0", "S3", "S0,S1,S2,S3", 12},
		{"S0", "S0", "S0", 0},
		// Aisle 1 is one-way northbound: going up it is direct …
		{"S1", "N1", "S1,A1.1,A1.2,N1", 12},
		// … going down it is not allowed; aisle 2 runs southbound.
		{"N1", "S2", "N1,N2,A2.2,A2.1,S2", 16},
		// Down aisle 2 or down the west dock are both 20 m: the tie goes to
		// the smaller predecessor id (S0 < S2).
		{"N1", "S1", "N1,N0,W2,W1,S0,S1", 20},
		// Rack 3 (A3.2) from the charger: around through the south aisle and up aisle 3.
		{"CH1", "A3.2", "CH1,N1,N2,A2.2,A2.1,S2,S3,A3.1,A3.2", 31},
	} {
		r, length, err := m.RouteLength(c.from, c.to)
		if err != nil || strings.Join(r, ",") != c.want || math.Abs(length-c.length) > 1e-9 {
			t.Errorf("%s → %s: %v %.2f m %v, want %s %.2f m", c.from, c.to, r, length, err, c.want, c.length)
		}
	}
	if _, err := m.Route("S0", "Z9"); err == nil || !strings.Contains(err.Error(), `unknown node "Z9"`) {
		t.Errorf("unknown node: %v", err)
	}

	// Equal-length alternatives: the result must not depend on map order.
	g := Grid("g", 3, 3, 2, 0, nil)
	want, _ := g.Route("G0_0", "G2_2")
	for range 5 {
		h := Grid("g", 3, 3, 2, 0, nil)
		h.Edges = append(h.Edges[len(h.Edges)/2:], h.Edges[:len(h.Edges)/2]...)
		if got, _ := h.Route("G0_0", "G2_2"); !reflect.DeepEqual(got, want) {
			t.Fatalf("tie-break depends on edge order: %v vs %v", got, want)
		}
	}

	// Unreachable: an island, and a one-way dead end.
	u := &Map{Site: "u", MapID: "u", Nodes: []Node{{ID: "A"}, {ID: "B", X: 1}, {ID: "C", X: 9, Y: 9}},
		Edges: []Edge{{From: "A", To: "B", OneWay: true}}}
	if err := u.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{"A", "C"}, {"B", "A"}} {
		if _, err := u.Route(c[0], c[1]); !errors.Is(err, ErrNoRoute) {
			t.Errorf("%s → %s: want ErrNoRoute, got %v", c[0], c[1], err)
		}
	}
}

func TestNearestNode(t *testing.T) {
	m := load(t)
	n, d := m.NearestNode(11, 0.5)
	if n.ID != "S3" || math.Abs(d-math.Hypot(1, 0.5)) > 1e-9 {
		t.Errorf("nearest to (11, 0.5): %s at %.3f m", n.ID, d)
	}
	// Halfway between S0 and S1: the smaller id wins.
	if n, _ := m.NearestNode(2, 0); n.ID != "S0" {
		t.Errorf("tie: %s", n.ID)
	}
	if n, d := (&Map{}).NearestNode(0, 0); n.ID != "" || !math.IsInf(d, 1) {
		t.Errorf("empty map: %+v %v", n, d)
	}
}

func TestBuildOrder(t *testing.T) {
	m := load(t)
	o, err := m.BuildOrder(OrderRequest{OrderID: "mission-m-1", OrderUpdateID: 0, StartNode: "S0",
		Steps:  []Step{{"inbound-1", "pick"}, {"rack-1", "drop"}},
		LoadID: "PAL-1", LoadType: "EPAL"})
	if err != nil {
		t.Fatal(err)
	}
	encode(t, o)
	if got := ids(o); got != "S0,W1,S0,S1,A1.1,A1.2" {
		t.Errorf("nodes %s", got)
	}
	if o.OrderID != "mission-m-1" || o.HeaderID != 0 || o.Timestamp != "" || o.Manufacturer != "" {
		t.Errorf("header must stay zero: %+v", o.Header)
	}
	if len(o.Edges) != len(o.Nodes)-1 {
		t.Fatalf("%d edges for %d nodes", len(o.Edges), len(o.Nodes))
	}
	for i, n := range o.Nodes {
		if n.SequenceID != 2*i || !n.Released || n.Actions == nil {
			t.Errorf("node %d: %+v", i, n)
		}
		mn, _ := m.Node(n.NodeID)
		p := n.NodePosition
		if p == nil || p.X != mn.X || p.Y != mn.Y || p.MapID != "warehouse-a-floor1" || (p.Theta != nil) != mn.HasTheta() {
			t.Errorf("node %d position: %+v", i, p)
		}
		if i == 0 {
			continue
		}
		e := o.Edges[i-1]
		prev := o.Nodes[i-1].NodeID
		if e.SequenceID != 2*i-1 || !e.Released || e.StartNodeID != prev || e.EndNodeID != n.NodeID ||
			e.EdgeID != prev+"-"+n.NodeID || e.Length == nil || *e.Length != 4 || e.MaxSpeed == nil || e.Actions == nil {
			t.Errorf("edge %d: %+v", i-1, e)
		}
	}
	if *o.Edges[0].MaxSpeed != 1.0 || *o.Edges[len(o.Edges)-1].MaxSpeed != 0.8 {
		t.Errorf("maxSpeed from the lanes: %v, %v", *o.Edges[0].MaxSpeed, *o.Edges[len(o.Edges)-1].MaxSpeed)
	}
	if th := o.Nodes[1].NodePosition.Theta; th == nil || *th != 3.14159 {
		t.Errorf("W1 theta: %v", th)
	}

	params := func(a vda5050.Action) map[string]any {
		out := map[string]any{}
		for _, p := range a.ActionParameters {
			out[p.Key] = p.Value
		}
		return out
	}
	pick := o.Nodes[1].Actions
	wantPick := vda5050.Action{ActionType: "pick", ActionID: "mission-m-1-a0-pick", BlockingType: vda5050.BlockingHard}
	if len(pick) != 1 || pick[0].ActionType != wantPick.ActionType || pick[0].ActionID != wantPick.ActionID || pick[0].BlockingType != wantPick.BlockingType ||
		!reflect.DeepEqual(params(pick[0]), map[string]any{"stationType": "conveyor", "stationName": "inbound-1", "loadType": "EPAL", "loadId": "PAL-1"}) {
		t.Errorf("pick on W1: %+v", pick)
	}
	drop := o.Nodes[len(o.Nodes)-1].Actions
	if len(drop) != 1 || drop[0].ActionType != "drop" || drop[0].ActionID != "mission-m-1-a1-drop" || drop[0].BlockingType != vda5050.BlockingHard ||
		!reflect.DeepEqual(params(drop[0]), map[string]any{"stationType": "rack", "stationName": "rack-1", "loadType": "EPAL", "loadId": "PAL-1"}) {
		t.Errorf("drop on A1.2: %+v", drop)
	}
	for i, n := range o.Nodes {
		if i != 1 && i != len(o.Nodes)-1 && len(n.Actions) != 0 {
			t.Errorf("node %d %s has actions %+v", i, n.NodeID, n.Actions)
		}
	}
}

func TestBuildOrderRobotAlreadyAtStation(t *testing.T) {
	m := load(t)
	o, err := m.BuildOrder(OrderRequest{OrderID: "o-2", OrderUpdateID: 3, StartNode: "E1",
		Steps: []Step{{"outbound-1-pick", "pick"}, {"outbound-1", "drop"}, {"rack-4", "drop"}}})
	if err != nil {
		t.Fatal(err)
	}
	encode(t, o)
	if got := ids(o); got != "E1,E2,N5,N4,A4.2,A4.1" {
		t.Errorf("nodes %s", got)
	}
	first := o.Nodes[0]
	if len(first.Actions) != 2 || first.Actions[0].ActionID != "o-2-a0-pick" || first.Actions[1].ActionID != "o-2-a1-drop" {
		t.Errorf("pick and drop belong on the first node: %+v", first.Actions)
	}
	if _, ok := first.Actions[0].Param("loadId"); ok {
		t.Errorf("no load given, yet loadId sent: %+v", first.Actions[0])
	}
	if o.OrderUpdateID != 3 || first.NodePosition.Theta == nil || *first.NodePosition.Theta != 0 {
		t.Errorf("update id %d, E1 theta %v", o.OrderUpdateID, first.NodePosition.Theta)
	}

	// A single-node order (robot on the only station) is valid too.
	o, err = m.BuildOrder(OrderRequest{OrderID: "o-3", StartNode: "W2", Steps: []Step{{"inbound-2", "pick"}}})
	if err != nil {
		t.Fatal(err)
	}
	encode(t, o)
	if len(o.Nodes) != 1 || len(o.Edges) != 0 || len(o.Nodes[0].Actions) != 1 {
		t.Errorf("single node order: %+v", o)
	}
}

func TestBuildOrderRejects(t *testing.T) {
	m := load(t)
	_, err := m.BuildOrder(OrderRequest{OrderID: "o", StartNode: "Z9",
		Steps: []Step{{"rack-1", "pick"}, {"nowhere", "drop"}, {"inbound-1", "lift"}, {"inbound-1", "drop"}, {"charger-1", "pick"}}})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	want := []string{
		`startNode: unknown node "Z9"`,
		`steps[0]: pick is not possible at drop station "rack-1"`,
		`steps[1]: unknown station "nowhere"`,
		`steps[2]: action "lift" is not pick or drop`,
		`steps[3]: drop is not possible at pick station "inbound-1"`,
		`steps[4]: pick is not possible at charge station "charger-1"`,
	}
	if !reflect.DeepEqual(ve.Problems, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(ve.Problems, "\n"), strings.Join(want, "\n"))
	}
	if _, err := m.BuildOrder(OrderRequest{StartNode: "S0"}); err == nil || !strings.Contains(err.Error(), "orderId: missing") || !strings.Contains(err.Error(), "steps: none") {
		t.Errorf("empty request: %v", err)
	}

	u := &Map{Site: "u", MapID: "u", Nodes: []Node{{ID: "A"}, {ID: "B", X: 1}},
		Stations: []Station{{ID: "p", Node: "B", Type: StationPick}}}
	if _, err := u.BuildOrder(OrderRequest{OrderID: "o", StartNode: "A", Steps: []Step{{"p", "pick"}}}); !errors.Is(err, ErrNoRoute) {
		t.Errorf("unreachable station: %v", err)
	}
}

func TestCheckMission(t *testing.T) {
	m := load(t)
	err := m.CheckMission([]Step{{"nowhere", "pick"}, {"rack-1", "pick"}, {"inbound-1", "juggle"}}, []string{"fly"})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	want := []string{
		`steps[0]: unknown station "nowhere"`,
		`steps[1]: pick is not possible at drop station "rack-1"`,
		`steps[2]: action "juggle" is not pick or drop`,
		"no robot at warehouse-a has the capabilities [fly pick]",
	}
	if !reflect.DeepEqual(ve.Problems, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(ve.Problems, "\n"), strings.Join(want, "\n"))
	}
	if err := m.CheckMission(nil, nil); err == nil || !strings.Contains(err.Error(), "steps: none") {
		t.Errorf("no steps: %v", err)
	}
	if err := m.CheckMission([]Step{{"inbound-1", "pick"}, {"rack-4", "drop"}}, []string{"lift"}); err != nil {
		t.Errorf("lift mission: %v", err)
	}

	// Only robotix robots lift; without them the lift mission has no robot.
	acme := &Map{Site: "acme-only", MapID: m.MapID, Nodes: m.Nodes, Edges: m.Edges, Stations: m.Stations}
	for _, r := range m.Robots {
		if !r.Has("lift") {
			acme.Robots = append(acme.Robots, r)
		}
	}
	if err := acme.CheckMission([]Step{{"inbound-1", "pick"}}, []string{"lift"}); err == nil || !strings.Contains(err.Error(), "[lift pick]") {
		t.Errorf("lift without lifters: %v", err)
	}

	u := &Map{Site: "u", MapID: "u", Nodes: []Node{{ID: "A"}, {ID: "B", X: 1}},
		Edges:    []Edge{{From: "A", To: "B", OneWay: true}},
		Stations: []Station{{ID: "p", Node: "B", Type: StationPick}, {ID: "d", Node: "A", Type: StationDrop}},
		Robots:   []Robot{{Manufacturer: "m", SerialNumber: "s", Capabilities: []string{"pick", "drop"}, HomeNode: "A"}}}
	if err := u.CheckMission([]Step{{"p", "pick"}, {"d", "drop"}}, nil); err == nil ||
		!strings.Contains(err.Error(), `steps[1]: no route from station "p" (node B) to station "d" (node A)`) {
		t.Errorf("one-way dead end: %v", err)
	}
}

func TestGrid(t *testing.T) {
	g := Grid("bench", 20, 20, 2.5, 1000, []string{"acme", "robotix"})
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != 400 || len(g.Robots) != 1000 || len(g.Stations) != 41 || len(g.Edges) != 2*20*19 {
		t.Fatalf("grid: %d nodes %d edges %d robots %d stations", len(g.Nodes), len(g.Edges), len(g.Robots), len(g.Stations))
	}
	if n, _ := g.Node("G19_19"); n.X != 47.5 || n.Y != 47.5 {
		t.Errorf("corner: %+v", n)
	}
	homes := map[string]int{}
	makers := map[string]int{}
	for _, r := range g.Robots {
		homes[r.HomeNode]++
		makers[r.Manufacturer]++
	}
	if len(homes) != 400 || makers["acme"] != 500 || makers["robotix"] != 500 {
		t.Errorf("robots on %d nodes, by maker %v", len(homes), makers)
	}
	if !reflect.DeepEqual(g, Grid("bench", 20, 20, 2.5, 1000, []string{"acme", "robotix"})) {
		t.Error("Grid is not deterministic")
	}
	o, err := g.BuildOrder(OrderRequest{OrderID: "o", StartNode: g.Robots[5].HomeNode,
		Steps: []Step{{"in-03", "pick"}, {"out-17", "drop"}}, LoadID: "L1", LoadType: "EPAL"})
	if err != nil {
		t.Fatal(err)
	}
	encode(t, o)
	if err := g.CheckMission([]Step{{"in-00", "pick"}, {"out-19", "drop"}}, []string{"lift"}); err != nil {
		t.Error(err)
	}

	small := Grid("s", 0, 1, -1, 3, nil)
	if err := small.Validate(); err != nil || len(small.Nodes) != 4 || small.Robots[2].Manufacturer != "acme" {
		t.Errorf("degenerate grid: %v %+v", err, small)
	}
}

func BenchmarkRoute(b *testing.B) {
	g := Grid("bench", 20, 20, 2, 1000, []string{"acme", "robotix"})
	b.ResetTimer()
	for b.Loop() {
		if _, err := g.Route("G00_00", "G19_19"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildOrder(b *testing.B) {
	g := Grid("bench", 20, 20, 2, 1000, []string{"acme", "robotix"})
	req := OrderRequest{OrderID: "o", StartNode: "G10_10", Steps: []Step{{"in-03", "pick"}, {"out-17", "drop"}}, LoadID: "L1", LoadType: "EPAL"}
	b.ResetTimer()
	for b.Loop() {
		if _, err := g.BuildOrder(req); err != nil {
			b.Fatal(err)
		}
	}
}

const profiledMap = `site: profiled
mapId: m
nodes:
  - {id: A, x: 0, y: 0}
  - {id: B, x: 0, y: 3}
  - {id: C, x: 4, y: 3, theta: 1}
edges:
  - {from: A, to: B}
  - {from: B, to: C}
stations:
  - {id: pickC, node: C, type: pick, stationType: floor}
profiles:
  - {manufacturer: acme, version: "1.1"}
  - {manufacturer: acme, model: Tug-2, version: "2.1.0", interfaceName: fts}
  - {manufacturer: lib, version: "2.0.0", instantActionsKey: instantActions, actionTypeKey: actionType, require: [nodePosition.theta, nodePosition.allowedDeviationXy]}
robots:
  - {manufacturer: acme, serialNumber: R1, model: Tug-1, homeNode: A}
  - {manufacturer: acme, serialNumber: R2, model: Tug-2, homeNode: A}
  - {manufacturer: acme, serialNumber: R3, model: Tug-2, homeNode: A, protocol: {version: "2.0.0"}}
  - {manufacturer: other, serialNumber: R4, homeNode: A}
  - {manufacturer: lib, serialNumber: R5, homeNode: A}
`

func loadString(t *testing.T, doc string) (*Map, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

// A robot's own protocol wins, then its manufacturer and model's profile,
// then its manufacturer's, then the default.
func TestProfileFor(t *testing.T) {
	m, err := loadString(t, profiledMap)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"R1": "1.1.0 uagv instantActions/both",
		"R2": "2.1.0 fts actions/actionType",
		"R3": "2.0.0 uagv actions/both",
		"R4": "2.0.0 uagv actions/both",
		"R5": "2.0.0 uagv instantActions/actionType require nodePosition.theta,nodePosition.allowedDeviationXy",
	}
	for _, r := range m.Robots {
		if got := m.ProfileFor(r).String(); got != want[r.SerialNumber] {
			t.Errorf("%s: %s, want %s", r.SerialNumber, got, want[r.SerialNumber])
		}
	}
}

// Profiles are validated with the map: values, and the dialect against its
// own edition's schema.
func TestProfileValidationInMap(t *testing.T) {
	doc := strings.Replace(profiledMap, `- {manufacturer: acme, version: "1.1"}`, `- {manufacturer: acme, version: "3.0"}
  - {manufacturer: acme, version: "2.0.0", actionTypeKey: actionType}`, 1)
	doc = strings.Replace(doc, `protocol: {version: "2.0.0"}`, `protocol: {version: "2.0.0", instantActionsKey: acts}`, 1)
	_, err := loadString(t, doc)
	if err == nil {
		t.Fatal("bad profiles accepted")
	}
	for _, want := range []string{
		`profiles[0] (acme ): version: VDA 5050 version "3.0" is not spoken by fleetflow`,
		`profiles[1]: acme  is already profiled by profiles[0]`,
		`profiles[1] (acme ): instantActions in this dialect break the VDA 5050 2.0.0 schema`,
		`robots[2].protocol: instantActionsKey "acts"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// A vehicle that insists on theta and allowedDeviationXy gets them: theta
// along the lane it arrives on, the map's own theta where it has one.
func TestBuildOrderFillsRequiredFields(t *testing.T) {
	m, err := loadString(t, profiledMap)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := m.Robot(vda5050.RobotKey{Manufacturer: "lib", SerialNumber: "R5"})
	o, err := m.BuildOrder(OrderRequest{OrderID: "o", StartNode: "A", Steps: []Step{{Station: "pickC", Action: "pick"}}, Require: m.ProfileFor(r).Require})
	if err != nil {
		t.Fatal(err)
	}
	wantTheta := []float64{math.Pi / 2, math.Pi / 2, 1}
	for i, n := range o.Nodes {
		if n.NodePosition.Theta == nil || math.Abs(*n.NodePosition.Theta-wantTheta[i]) > 1e-9 {
			t.Errorf("node %s theta %v, want %v", n.NodeID, n.NodePosition.Theta, wantTheta[i])
		}
		if n.NodePosition.AllowedDeviationXY == nil || *n.NodePosition.AllowedDeviationXY != DefaultAllowedDeviationXY {
			t.Errorf("node %s allowedDeviationXy %v", n.NodeID, n.NodePosition.AllowedDeviationXY)
		}
	}
	encode(t, o)
	plain, _ := m.BuildOrder(OrderRequest{OrderID: "o", StartNode: "A", Steps: []Step{{Station: "pickC", Action: "pick"}}})
	if plain.Nodes[0].NodePosition.Theta != nil || plain.Nodes[0].NodePosition.AllowedDeviationXY != nil {
		t.Error("a vehicle that requires nothing gets no theta where the map has none")
	}
}

// A mission in parts: the first part goes to a station and holds its
// action; the update stitched on at that station (its sequenceId) starts
// with the held action and numbers on from there (VDA 5050 §6.6.2).
func TestBuildOrderParts(t *testing.T) {
	m := load(t)
	first, err := m.BuildOrder(OrderRequest{OrderID: "o", StartNode: "E1", Steps: []Step{{"outbound-1-pick", "pick"}, {"rack-4", "drop"}}, HoldLast: true})
	if err != nil {
		t.Fatal(err)
	}
	encode(t, first)
	last := first.Nodes[len(first.Nodes)-1]
	if last.NodeID != "A4.1" || len(last.Actions) != 0 || len(first.Nodes[0].Actions) != 1 {
		t.Fatalf("the held drop must be left out: %s %+v", ids(first), last.Actions)
	}
	upd, err := m.BuildOrder(OrderRequest{OrderID: "o", OrderUpdateID: 1, StartNode: last.NodeID, FirstSequenceID: last.SequenceID,
		Steps: []Step{{"rack-4", "drop"}, {"outbound-1", "drop"}}, FirstStep: 1})
	if err != nil {
		t.Fatal(err)
	}
	encode(t, upd)
	s := upd.Nodes[0]
	if s.NodeID != "A4.1" || s.SequenceID != last.SequenceID || len(s.Actions) != 1 || s.Actions[0].ActionID != "o-a1-drop" {
		t.Fatalf("stitching node: %+v", s)
	}
	for i, n := range upd.Nodes {
		if n.SequenceID != last.SequenceID+2*i {
			t.Errorf("node %d sequenceId %d", i, n.SequenceID)
		}
	}
	if upd.Edges[0].SequenceID != last.SequenceID+1 {
		t.Errorf("first edge sequenceId %d", upd.Edges[0].SequenceID)
	}
	if _, err := m.BuildOrder(OrderRequest{OrderID: "o", StartNode: "E1", Steps: []Step{{"rack-4", "drop"}}, FirstSequenceID: 3}); err == nil || !strings.Contains(err.Error(), "firstSequenceId: 3") {
		t.Errorf("odd first sequenceId: %v", err)
	}
}

package site

import (
	"fmt"
	"strconv"
)

// Grid builds a deterministic, valid grid site for tests and benchmarks:
//
//   - cols × rows nodes spacing metres apart, id "G<col>_<row>" with
//     zero-padded numbers (e.g. "G03_17"), at x = col·spacing,
//     y = row·spacing; mapId "<site>-grid";
//   - bidirectional lanes between horizontal and vertical neighbours,
//     maxSpeed 1.5 m/s;
//   - a pick station "in-<row>" (stationType conveyor) on every node of the
//     left column, a drop station "out-<row>" (stationType rack) on every
//     node of the right column, and a charger "charge-0" on the top row's
//     middle node;
//   - robots serials "R00001", "R00002" … (manufacturer manufacturers[i mod
//     len], model "<manufacturer>-grid", software 1.4.2), capabilities
//     [pick drop], plus "lift" for robots of every second manufacturer;
//     home nodes spread evenly over the nodes (several per node when there
//     are more robots than nodes).
//
// cols and rows below 2 are raised to 2, spacing ≤ 0 becomes 1 m, robots < 0
// becomes 0, and no manufacturers means ["acme"].
func Grid(site string, cols, rows int, spacing float64, robots int, manufacturers []string) *Map {
	cols, rows = max(cols, 2), max(rows, 2)
	if !(spacing > 0) {
		spacing = 1
	}
	robots = max(robots, 0)
	if len(manufacturers) == 0 {
		manufacturers = []string{"acme"}
	}
	w := len(strconv.Itoa(max(cols, rows) - 1))
	id := func(c, r int) string { return fmt.Sprintf("G%0*d_%0*d", w, c, w, r) }
	rw := len(strconv.Itoa(rows - 1))

	m := &Map{Site: site, MapID: site + "-grid", source: "grid " + site}
	for r := range rows {
		for c := range cols {
			m.Nodes = append(m.Nodes, Node{ID: id(c, r), X: float64(c) * spacing, Y: float64(r) * spacing})
			if c+1 < cols {
				m.Edges = append(m.Edges, Edge{From: id(c, r), To: id(c+1, r), MaxSpeed: 1.5})
			}
			if r+1 < rows {
				m.Edges = append(m.Edges, Edge{From: id(c, r), To: id(c, r+1), MaxSpeed: 1.5})
			}
		}
	}
	for r := range rows {
		m.Stations = append(m.Stations,
			Station{ID: fmt.Sprintf("in-%0*d", rw, r), Node: id(0, r), Type: StationPick, StationType: "conveyor"},
			Station{ID: fmt.Sprintf("out-%0*d", rw, r), Node: id(cols-1, r), Type: StationDrop, StationType: "rack"})
	}
	m.Stations = append(m.Stations, Station{ID: "charge-0", Node: id(cols/2, rows-1), Type: StationCharge})

	n := len(m.Nodes)
	for i := range robots {
		home := i % n
		if robots <= n {
			home = i * n / robots
		}
		mi := i % len(manufacturers)
		caps := []string{StationPick, StationDrop}
		if mi%2 == 1 {
			caps = append(caps, "lift")
		}
		m.Robots = append(m.Robots, Robot{
			Manufacturer:    manufacturers[mi],
			SerialNumber:    fmt.Sprintf("R%05d", i+1),
			Model:           manufacturers[mi] + "-grid",
			Capabilities:    caps,
			HomeNode:        m.Nodes[home].ID,
			SoftwareVersion: "1.4.2",
		})
	}
	m.index()
	return m
}

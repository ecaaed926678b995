package site

import (
	"fmt"
	"math"
	"slices"
)

// tieEps is how close two path lengths (metres) must be to count as equal,
// so that float rounding never decides between two equally long routes.
const tieEps = 1e-9

// Route returns the shortest path from node from to node to as node ids,
// both ends included ([from] when from == to). Length is the sum of the
// Euclidean lengths of the lanes in metres; one-way lanes are only driven
// From → To. Dijkstra's algorithm; among equally long paths the one whose
// nodes are reached from the smaller predecessor id wins, so the result
// never depends on map order. Errors: unknown node, or ErrNoRoute wrapped
// when to cannot be reached.
func (m *Map) Route(from, to string) ([]string, error) {
	path, _, err := m.route(from, to)
	return path, err
}

// RouteLength is like Route and also returns the path's length in metres.
func (m *Map) RouteLength(from, to string) ([]string, float64, error) {
	return m.route(from, to)
}

func (m *Map) route(from, to string) ([]string, float64, error) {
	ix := m.index()
	src, ok := ix.node[from]
	if !ok {
		return nil, 0, fmt.Errorf("route %s → %s: unknown node %q", from, to, from)
	}
	dst, ok := ix.node[to]
	if !ok {
		return nil, 0, fmt.Errorf("route %s → %s: unknown node %q", from, to, to)
	}
	if src == dst {
		return []string{from}, 0, nil
	}
	n := len(m.Nodes)
	dist := make([]float64, n)
	prev := make([]int, n)
	done := make([]bool, n)
	for i := range dist {
		dist[i], prev[i] = math.Inf(1), -1
	}
	dist[src] = 0
	q := pq{rank: ix.rank}
	q.push(qitem{node: src})
	for len(q.items) > 0 {
		it := q.pop()
		u := it.node
		if done[u] || it.dist > dist[u] {
			continue
		}
		done[u] = true
		if u == dst {
			break
		}
		for _, a := range ix.adj[u] {
			v := a.to
			if done[v] {
				continue
			}
			nd := dist[u] + a.length
			better := nd < dist[v]-tieEps
			tie := !better && math.Abs(nd-dist[v]) <= tieEps && ix.rank[u] < ix.rank[prev[v]]
			if better || tie {
				if better {
					dist[v] = nd
				}
				prev[v] = u
				if better {
					q.push(qitem{node: v, dist: nd})
				}
			}
		}
	}
	if !done[dst] {
		return nil, 0, fmt.Errorf("route %s → %s: %w (one-way lanes respected)", from, to, ErrNoRoute)
	}
	var path []string
	for v := dst; v != -1; v = prev[v] {
		path = append(path, m.Nodes[v].ID)
	}
	slices.Reverse(path)
	return path, dist[dst], nil
}

type qitem struct {
	node int
	dist float64
}

// pq is a binary min-heap ordered by distance, then node id rank, so equal
// distances pop in a fixed order.
type pq struct {
	rank  []int
	items []qitem
}

func (q *pq) less(i, j int) bool {
	a, b := q.items[i], q.items[j]
	if a.dist != b.dist {
		return a.dist < b.dist
	}
	return q.rank[a.node] < q.rank[b.node]
}

func (q *pq) push(it qitem) {
	q.items = append(q.items, it)
	for i := len(q.items) - 1; i > 0; {
		parent := (i - 1) / 2
		if !q.less(i, parent) {
			break
		}
		q.items[i], q.items[parent] = q.items[parent], q.items[i]
		i = parent
	}
}

func (q *pq) pop() qitem {
	top := q.items[0]
	last := len(q.items) - 1
	q.items[0] = q.items[last]
	q.items = q.items[:last]
	for i := 0; ; {
		l, r, small := 2*i+1, 2*i+2, i
		if l < last && q.less(l, small) {
			small = l
		}
		if r < last && q.less(r, small) {
			small = r
		}
		if small == i {
			break
		}
		q.items[i], q.items[small] = q.items[small], q.items[i]
		i = small
	}
	return top
}

package store

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A charger another robot stands on (its lastNodeId is the charger's
// node: a cancelled charge left it there, unreserved) is not handed out;
// the request gets the other one, or waits in line when none is left.
func TestReserveStationSkipsAnOccupiedCharger(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	parked, needy := robot("parked", "a", 0, 0), robot("needy", "a", 5, 0)
	if err := s.RegisterRobots(ctx, []Robot{parked, needy}); err != nil {
		t.Fatal(err)
	}
	onlineAt(t, s, 50, parked, needy)
	// Registered, never heard from, its home the charger CH2: nowhere yet.
	if err := s.RegisterRobots(ctx, []Robot{{Manufacturer: "acme", SerialNumber: "silent", Model: "AMR-1", Site: "a", HomeNode: "CH2-node", MapID: "map-a"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertStates(ctx, []RobotState{{RobotID: "acme/parked", LastNodeID: "CH1-node", BatteryCharge: 50, HeaderID: 2, Timestamp: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	chargers := []Station{{ID: "CH1", X: 4, Y: 0, Node: "CH1-node"}, {ID: "CH2", X: 40, Y: 0, Node: "CH2-node"}}
	g, err := s.ReserveStation(ctx, StationRequest{Site: "a", Holder: "charge-needy", RobotID: "acme/needy", Stations: chargers, X: 5})
	if err != nil || g.Queued || g.StationID != "CH2" {
		t.Fatalf("want the free CH2, not the nearer occupied CH1: %+v %v", g, err)
	}
	// The robot on it asks for it: its own position does not count.
	g, err = s.ReserveStation(ctx, StationRequest{Site: "a", Holder: "charge-parked", RobotID: "acme/parked", Stations: chargers[:1]})
	if err != nil || g.Queued || g.StationID != "CH1" {
		t.Fatalf("the robot standing on the charger gets it: %+v %v", g, err)
	}
	// Its charge ends (cancelled) and frees the reservation, the robot
	// still on it: another robot waits in line instead of being sent there.
	if _, err := s.ReleaseStation(ctx, "a", "charge-parked"); err != nil {
		t.Fatal(err)
	}
	g, err = s.ReserveStation(ctx, StationRequest{Site: "a", Holder: "charge-other", RobotID: "acme/other", Stations: chargers[:1], X: 5})
	if err != nil || !g.Queued || len(g.Occupied) != 1 || !strings.Contains(g.Occupied[0], "acme/parked") {
		t.Fatalf("the only charger is occupied: want to wait in line, told by whom, got %+v %v", g, err)
	}
	// The parked robot, still low, asks again behind the one waiting: it
	// stands on the charger, which nobody else could use: it gets it.
	g, err = s.ReserveStation(ctx, StationRequest{Site: "a", Holder: "charge-parked-2", RobotID: "acme/parked", Stations: chargers[:1]})
	if err != nil || g.Queued || g.StationID != "CH1" {
		t.Fatalf("the robot on the charger must not wait behind robots that cannot use it: %+v %v", g, err)
	}
}

package store

import (
	"context"
	"testing"
	"time"
)

// A robot whose latest state still has an order to drive (given up while
// it was away, it drives its base on) is not handed out; once it reports
// idle it is.
func TestReserveSkipsRobotStillOnAnOrder(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	r := robot("busy", "a", 0, 0)
	if err := s.RegisterRobots(ctx, []Robot{r}); err != nil {
		t.Fatal(err)
	}
	onlineAt(t, s, 90, r)
	now := time.Now()
	if err := s.UpsertStates(ctx, []RobotState{{RobotID: "acme/busy", OrderID: "mission-old", NodeStatesRemaining: 3, Driving: true, BatteryCharge: 90, HeaderID: 2, Timestamp: now.Add(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Reserve(ctx, ReserveRequest{MissionID: "m1", WorkflowID: "mission-m1", Site: "a"})
	if err != nil || !res.Queued {
		t.Fatalf("a robot still driving an order must not be reserved: %+v %v", res, err)
	}
	if err := s.UpsertStates(ctx, []RobotState{{RobotID: "acme/busy", OrderID: "mission-old", BatteryCharge: 89, HeaderID: 3, Timestamp: now.Add(2 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	res, err = s.Reserve(ctx, ReserveRequest{MissionID: "m1", WorkflowID: "mission-m1", Site: "a"})
	if err != nil || res.Queued || res.RobotID != "acme/busy" {
		t.Fatalf("idle again, the robot is handed out: %+v %v", res, err)
	}
}

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// freshDB creates an empty database on the test server (DATABASE_URL, else
// 127.0.0.1:5432 with trust auth) and drops it after the test.
func freshDB(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("DATABASE_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("PostgreSQL is required (%s): %v — run scripts/ensure-services.sh", admin, err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("ff_test_%d", rand.Uint32())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	cfg, _ := pgx.ParseConfig(admin)
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
}

func openStore(t testing.TB) *Store {
	t.Helper()
	url := freshDB(t)
	ctx := context.Background()
	if err := Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// fleet registers robots r0..r{n-1} at site s1 along the x axis (x = 10·i m),
// ONLINE with 100 % battery.
func fleet(t testing.TB, s *Store, n int, caps ...string) {
	t.Helper()
	ctx := context.Background()
	var robots []Robot
	var conns []ConnectionUpdate
	var states []RobotState
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("acme/r%d", i)
		robots = append(robots, Robot{ID: id, Manufacturer: "acme", SerialNumber: fmt.Sprintf("r%d", i), Site: "s1", Capabilities: caps, HomeNode: "n", X: float64(10 * i)})
		conns = append(conns, ConnectionUpdate{RobotID: id, State: "ONLINE", At: time.Now()})
		states = append(states, RobotState{RobotID: id, BatteryCharge: 100, X: float64(10 * i), Timestamp: time.Now(), LastNodeID: "n"})
	}
	if err := s.RegisterRobots(ctx, robots); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertStates(ctx, states); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertConnections(ctx, conns); err != nil {
		t.Fatal(err)
	}
}

func req(id string, prio int, x float64) ReserveRequest {
	return ReserveRequest{MissionID: id, WorkflowID: "mission-" + id, Site: "s1", Priority: prio, X: x}
}

func TestMigrateIdempotentAndConcurrent(t *testing.T) {
	url := freshDB(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- Migrate(ctx, url) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
}

func TestStatesAndOrdering(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	fleet(t, s, 2)
	t0 := time.Now()
	errs, _ := json.Marshal([]map[string]string{{"errorType": "x", "errorLevel": "WARNING"}})
	if err := s.UpsertStates(ctx, []RobotState{
		{RobotID: "acme/r0", OrderID: "mission-a", LastNodeID: "B", LastNodeSequenceID: 2, BatteryCharge: 80, Timestamp: t0, Errors: errs},
		{RobotID: "acme/unknown", Timestamp: t0}, // not registered: skipped
	}); err != nil {
		t.Fatal(err)
	}
	// An older state arriving late changes nothing.
	if err := s.UpsertStates(ctx, []RobotState{{RobotID: "acme/r0", LastNodeID: "A", Timestamp: t0.Add(-time.Second)}}); err != nil {
		t.Fatal(err)
	}
	st, err := s.RobotState(ctx, "acme/r0")
	if err != nil {
		t.Fatal(err)
	}
	if st.LastNodeID != "B" || st.OrderID != "mission-a" || st.BatteryCharge != 80 || st.ConnectionState != "ONLINE" {
		t.Fatalf("state %+v", st)
	}
	if _, err := s.RobotState(ctx, "acme/nope"); err == nil {
		t.Fatal("want ErrNotFound")
	}
	if err := s.UpsertConnections(ctx, []ConnectionUpdate{{RobotID: "acme/r0", State: "CONNECTIONBROKEN", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	views, err := s.ListRobots(ctx, "s1")
	if err != nil || len(views) != 2 {
		t.Fatalf("list: %v %d", err, len(views))
	}
	if views[0].State.ConnectionState != "CONNECTIONBROKEN" || views[0].State.LastNodeID != "B" {
		t.Fatalf("connection update must not touch the rest: %+v", views[0].State)
	}
}

func TestReserveEligibilityAndNearest(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	fleet(t, s, 4, "pick", "drop")
	// r0: low battery; r1: FATAL; r2: offline; r3: fine but far.
	s.UpsertStates(ctx, []RobotState{
		{RobotID: "acme/r0", BatteryCharge: 10, Timestamp: time.Now()},
		{RobotID: "acme/r1", BatteryCharge: 90, X: 10, FatalError: "laser: dirty", Timestamp: time.Now()},
	})
	s.UpsertConnections(ctx, []ConnectionUpdate{{RobotID: "acme/r2", State: "OFFLINE", At: time.Now()}})
	r := req("m1", 0, 0)
	r.MinBattery = 20
	got, err := s.Reserve(ctx, r)
	if err != nil || got.RobotID != "acme/r3" {
		t.Fatalf("want the only eligible robot r3, got %+v %v", got, err)
	}
	again, err := s.Reserve(ctx, r)
	if err != nil || again.RobotID != "acme/r3" {
		t.Fatalf("reserve is idempotent: %+v %v", again, err)
	}
	caps := req("m2", 0, 0)
	caps.RequiredCapabilities = []string{"lift"}
	q, err := s.Reserve(ctx, caps)
	if err != nil || !q.Queued || q.QueuePosition != 1 {
		t.Fatalf("no robot with lift: want queued, got %+v %v", q, err)
	}
}

func TestReserveNearest(t *testing.T) {
	s := openStore(t)
	fleet(t, s, 5)
	got, err := s.Reserve(context.Background(), req("m1", 0, 31))
	if err != nil || got.RobotID != "acme/r3" {
		t.Fatalf("nearest to x=31 is r3 (x=30), got %+v %v", got, err)
	}
}

func TestReserveRaceNoDoubleBooking(t *testing.T) {
	s := openStore(t)
	fleet(t, s, 5)
	ctx := context.Background()
	var wg sync.WaitGroup
	results := make([]Reservation, 50)
	errs := make([]error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i], errs[i] = s.Reserve(ctx, req(fmt.Sprintf("m%02d", i), 0, float64(i)))
		}(i)
	}
	wg.Wait()
	granted := map[string]string{}
	queued := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if r.Queued {
			queued++
			continue
		}
		if other, dup := granted[r.RobotID]; dup {
			t.Fatalf("robot %s booked twice: %s and %s", r.RobotID, other, r.MissionID)
		}
		granted[r.RobotID] = r.MissionID
	}
	if len(granted) != 5 || queued != 45 {
		t.Fatalf("granted %d queued %d, want 5 and 45", len(granted), queued)
	}
}

func TestReleaseServesHigherPriorityFirst(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	fleet(t, s, 1)
	if r, _ := s.Reserve(ctx, req("busy", 0, 0)); r.RobotID != "acme/r0" {
		t.Fatal("setup")
	}
	low, _ := s.Reserve(ctx, req("low", 1, 0)) // waits first
	high, _ := s.Reserve(ctx, req("high", 9, 0))
	low, _ = s.Reserve(ctx, req("low", 1, 0)) // asks again: now behind high
	if !low.Queued || !high.Queued || high.QueuePosition != 1 || low.QueuePosition != 2 {
		t.Fatalf("queue positions: low %+v high %+v", low, high)
	}
	// Released by the wrong mission: nothing happens.
	if wake, err := s.Release(ctx, "acme/r0", "low"); err != nil || len(wake) != 0 {
		t.Fatalf("release by non-holder: %v %v", wake, err)
	}
	wake, err := s.Release(ctx, "acme/r0", "busy")
	if err != nil || len(wake) != 1 || wake[0] != "mission-high" {
		t.Fatalf("release must wake the high-priority mission only: %v %v", wake, err)
	}
	// The low-priority mission asks first but must not take the robot.
	if r, _ := s.Reserve(ctx, req("low", 1, 0)); !r.Queued {
		t.Fatalf("low took the robot ahead of high: %+v", r)
	}
	if r, _ := s.Reserve(ctx, req("high", 9, 0)); r.RobotID != "acme/r0" {
		t.Fatalf("high did not get the robot: %+v", r)
	}
	if _, err := s.Release(ctx, "acme/r0", "high"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Release(ctx, "acme/r0", "high"); err != nil {
		t.Fatal("releasing twice is fine:", err)
	}
	trail, err := s.AuditTrail(ctx, "acme/r0")
	if err != nil || len(trail) != 4 || trail[0].Kind != "robot.reserved" || trail[1].Kind != "robot.released" {
		t.Fatalf("audit trail %v %+v", err, trail)
	}
	if err := s.CancelQueued(ctx, "low"); err != nil {
		t.Fatal(err)
	}
	if _, held, _ := s.ReservationOf(ctx, "low"); held {
		t.Fatal("low holds nothing")
	}
}

func BenchmarkUpsertStates(b *testing.B) {
	s := openStore(b)
	fleet(b, s, 200)
	states := make([]RobotState, 200)
	for i := range states {
		states[i] = RobotState{RobotID: fmt.Sprintf("acme/r%d", i), LastNodeID: "n", BatteryCharge: 50}
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now := time.Now()
		for j := range states {
			states[j].Timestamp = now
		}
		if err := s.UpsertStates(ctx, states); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(states))/b.Elapsed().Seconds(), "states/s")
}

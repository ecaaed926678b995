package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/fleetflow/fleetflow/schemas"
)

const defaultTestURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// newTestDB creates a fresh database for the calling test or benchmark and
// returns its URL; the database is dropped when the test ends. It skips when
// PostgreSQL is unreachable, unless CI=true, where it fails.
func newTestDB(tb testing.TB) string {
	tb.Helper()
	adminURL := os.Getenv("DATABASE_URL")
	if adminURL == "" {
		adminURL = defaultTestURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL unreachable at %s (CI=true): %v", adminURL, err)
		}
		tb.Skipf("PostgreSQL unreachable at %s: %v (set DATABASE_URL to run these tests; with CI=true this fails)", adminURL, err)
	}
	defer admin.Close(ctx)

	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	name := "ff_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			tb.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop database %s: %v", name, err)
		}
	})

	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("DATABASE_URL must be a postgres:// URL, got %q", adminURL)
	}
	u.Path = "/" + name
	return u.String()
}

// newTestStore migrates a fresh database and opens a Store on it.
func newTestStore(tb testing.TB) (*Store, string) {
	tb.Helper()
	dbURL := newTestDB(tb)
	ctx := context.Background()
	if err := Migrate(ctx, dbURL); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	s, err := Open(ctx, dbURL)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(s.Close) // runs before the database is dropped
	return s, dbURL
}

func robot(serial, site string, x, y float64, caps ...string) Robot {
	return Robot{
		Manufacturer: "acme", SerialNumber: serial, Model: "AMR-1", Site: site,
		Capabilities: caps, SoftwareVersion: "1.0.0", HomeNode: "home-" + serial,
		X: x, Y: y, MapID: "map-" + site,
	}
}

// onlineAt makes robots ONLINE at the given positions with the given battery.
func onlineAt(t *testing.T, s *Store, battery float64, robots ...Robot) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	var conns []ConnectionUpdate
	var states []RobotState
	for _, r := range robots {
		id := r.Manufacturer + "/" + r.SerialNumber
		conns = append(conns, ConnectionUpdate{RobotID: id, State: ConnectionOnline, At: now})
		states = append(states, RobotState{RobotID: id, BatteryCharge: battery, X: r.X, Y: r.Y,
			MapID: r.MapID, LastNodeID: r.HomeNode, HeaderID: 1, Timestamp: now})
	}
	if err := s.UpsertConnections(ctx, conns); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertStates(ctx, states); err != nil {
		t.Fatal(err)
	}
}

// same compares reservations without Wake.
func same(a, b Reservation) bool {
	return a.RobotID == b.RobotID && a.MissionID == b.MissionID && a.Queued == b.Queued && a.QueuePosition == b.QueuePosition
}

func tableCount(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMigrateIdempotentAndConcurrent(t *testing.T) {
	dbURL := newTestDB(t)
	ctx := context.Background()

	// Ten concurrent first migrations: the advisory lock serializes them.
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- Migrate(ctx, dbURL)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	// And twice more in a row.
	for i := range 2 {
		if err := Migrate(ctx, dbURL); err != nil {
			t.Fatalf("Migrate again (%d): %v", i, err)
		}
	}

	s, err := Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	provider := newProvider(t, dbURL)
	checkMigrated(t, s, provider)

	// Every Down section works: migrate all the way down, then up again.
	if _, err := provider.DownTo(ctx, 0); err != nil {
		t.Fatalf("down to 0: %v", err)
	}
	var tables int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'goose_db_version'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("%d tables left after migrating down", tables)
	}
	if err := Migrate(ctx, dbURL); err != nil {
		t.Fatalf("Migrate after down: %v", err)
	}
	checkMigrated(t, s, provider)
}

// newProvider returns a goose provider of schemas.Migrations on dbURL.
func newProvider(t *testing.T, dbURL string) *goose.Provider {
	t.Helper()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	fsys, err := fs.Sub(schemas.Migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, fsys)
	if err != nil {
		t.Fatal(err)
	}
	return provider
}

// checkMigrated checks that every migration is applied and the tables exist.
func checkMigrated(t *testing.T, s *Store, provider *goose.Provider) {
	t.Helper()
	ctx := context.Background()
	sources := provider.ListSources()
	if len(sources) < 3 {
		t.Fatalf("%d migrations embedded, want at least 3", len(sources))
	}
	version, err := provider.GetDBVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := sources[len(sources)-1].Version; version != want {
		t.Errorf("schema version %d, want %d", version, want)
	}
	if pending, err := provider.HasPending(ctx); err != nil || pending {
		t.Errorf("pending migrations: %v, %v", pending, err)
	}
	for _, table := range []string{"robots", "robot_state", "reservations", "reservation_queue", "audit_log"} {
		if n := tableCount(t, s, table); n != 0 {
			t.Errorf("%s has %d rows, want 0", table, n)
		}
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Open(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"); err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
}

func TestRegisterAndList(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()

	robots := []Robot{
		robot("r1", "hall-a", 1, 2, "lift"),
		robot("r2", "hall-a", 3, 4),
		robot("r3", "hall-b", 5, 6, "tow", "lift"),
	}
	if err := s.RegisterRobots(ctx, robots); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListRobots(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("ListRobots(all) = %d robots, want 3", len(all))
	}
	r3 := all[2]
	if r3.ID != "acme/r3" || r3.Site != "hall-b" || r3.Model != "AMR-1" || r3.HomeNode != "home-r3" ||
		r3.X != 5 || r3.Y != 6 || r3.MapID != "map-hall-b" || fmt.Sprint(r3.Capabilities) != "[tow lift]" {
		t.Errorf("robot r3 = %+v", r3.Robot)
	}
	st := r3.State
	if st.ConnectionState != ConnectionOffline || st.LastNodeID != "home-r3" || st.X != 5 || st.Y != 6 ||
		st.MapID != "map-hall-b" || !st.Timestamp.IsZero() || r3.ReservedBy != "" {
		t.Errorf("initial state of r3 = %+v", st)
	}
	if string(st.Errors) != "[]" || string(st.ActionStates) != "[]" {
		t.Errorf("initial errors %s action states %s, want []", st.Errors, st.ActionStates)
	}

	hallA, err := s.ListRobots(ctx, "hall-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(hallA) != 2 || hallA[0].ID != "acme/r1" || hallA[1].ID != "acme/r2" {
		t.Errorf("ListRobots(hall-a) = %v", hallA)
	}
	none, err := s.ListRobots(ctx, "nowhere")
	if err != nil || len(none) != 0 {
		t.Errorf("ListRobots(nowhere) = %v, %v", none, err)
	}

	// Re-registering updates the robot and leaves its state alone; an empty
	// software version keeps the stored one.
	onlineAt(t, s, 80, robots[0])
	moved := robot("r1", "hall-b", 9, 9, "lift", "tow")
	moved.SoftwareVersion = ""
	if err := s.RegisterRobots(ctx, []Robot{moved}); err != nil {
		t.Fatal(err)
	}
	hallB, err := s.ListRobots(ctx, "hall-b")
	if err != nil {
		t.Fatal(err)
	}
	if len(hallB) != 2 || hallB[0].ID != "acme/r1" || hallB[0].SoftwareVersion != "1.0.0" ||
		hallB[0].State.ConnectionState != ConnectionOnline || hallB[0].State.BatteryCharge != 80 ||
		hallB[0].State.X != 1 {
		t.Errorf("after re-registration: %+v", hallB[0])
	}

	// Validation.
	bad := []Robot{
		{Manufacturer: "acme", SerialNumber: "has space", Site: "a"},
		{Manufacturer: "", SerialNumber: "x", Site: "a"},
		{Manufacturer: "acme", SerialNumber: "x", Site: ""},
		{ID: "other/x", Manufacturer: "acme", SerialNumber: "x", Site: "a"},
	}
	for _, r := range bad {
		if err := s.RegisterRobots(ctx, []Robot{r}); !errors.Is(err, ErrInvalid) {
			t.Errorf("RegisterRobots(%+v) = %v, want ErrInvalid", r, err)
		}
	}

	if _, err := s.RobotState(ctx, "acme/nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RobotState(unknown) = %v, want ErrNotFound", err)
	}
}

func TestUpsertStates(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	if err := s.RegisterRobots(ctx, []Robot{robot("r1", "a", 0, 0), robot("r2", "a", 0, 0)}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC)
	errs := json.RawMessage(`[{"errorType":"laserBlocked","errorLevel":"WARNING"}]`)
	acts := json.RawMessage(`[{"actionId":"a1","actionType":"pick","actionStatus":"RUNNING"}]`)
	batch := []RobotState{
		{RobotID: "acme/r1", OrderID: "mission-1", OrderUpdateID: 2, LastNodeID: "n3", LastNodeSequenceID: 4,
			Driving: true, BatteryCharge: 71.5, X: 10.25, Y: -3.5, Theta: 1.57, MapID: "m", Errors: errs,
			ActionStates: acts, NodeStatesRemaining: 3, HeaderID: 41, Timestamp: t0},
		// Two states of r2 in one batch: the newer one wins whatever the order.
		{RobotID: "acme/r2", BatteryCharge: 50, HeaderID: 8, Timestamp: t0.Add(2 * time.Second)},
		{RobotID: "acme/r2", BatteryCharge: 40, HeaderID: 7, Timestamp: t0.Add(time.Second)},
		// Unregistered robots are skipped.
		{RobotID: "acme/ghost", BatteryCharge: 10, Timestamp: t0},
	}
	if err := s.UpsertStates(ctx, batch); err != nil {
		t.Fatal(err)
	}
	got, err := s.RobotState(ctx, "acme/r1")
	if err != nil {
		t.Fatal(err)
	}
	if got.OrderID != "mission-1" || got.OrderUpdateID != 2 || got.LastNodeID != "n3" || got.LastNodeSequenceID != 4 ||
		!got.Driving || got.Paused || got.BatteryCharge != 71.5 || got.X != 10.25 || got.Y != -3.5 || got.Theta != 1.57 ||
		got.MapID != "m" || got.NodeStatesRemaining != 3 || got.HeaderID != 41 || !got.Timestamp.Equal(t0) ||
		got.ConnectionState != ConnectionOffline {
		t.Errorf("state of r1 = %+v", got)
	}
	var gotErrs, wantErrs any
	_ = json.Unmarshal(got.Errors, &gotErrs)
	_ = json.Unmarshal(errs, &wantErrs)
	if fmt.Sprint(gotErrs) != fmt.Sprint(wantErrs) {
		t.Errorf("errors = %s, want %s", got.Errors, errs)
	}
	if r2, _ := s.RobotState(ctx, "acme/r2"); r2.BatteryCharge != 50 || r2.HeaderID != 8 {
		t.Errorf("r2 battery %v header %d, want the newer state (50, 8)", r2.BatteryCharge, r2.HeaderID)
	}
	if _, err := s.RobotState(ctx, "acme/ghost"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ghost robot got a state: %v", err)
	}

	// An out-of-order (older) state is ignored; a newer one applies.
	old := RobotState{RobotID: "acme/r1", BatteryCharge: 99, HeaderID: 40, Timestamp: t0.Add(-time.Second)}
	if err := s.UpsertStates(ctx, []RobotState{old}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.RobotState(ctx, "acme/r1"); got.BatteryCharge != 71.5 || got.HeaderID != 41 {
		t.Errorf("older state applied: battery %v header %d", got.BatteryCharge, got.HeaderID)
	}
	newer := RobotState{RobotID: "acme/r1", BatteryCharge: 70, HeaderID: 1, Timestamp: t0.Add(time.Second),
		FatalError: "motorFault: left wheel"}
	if err := s.UpsertStates(ctx, []RobotState{newer}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.RobotState(ctx, "acme/r1"); got.BatteryCharge != 70 || got.FatalError != "motorFault: left wheel" ||
		string(got.Errors) != "[]" {
		t.Errorf("newer state not applied: %+v", got)
	}

	// Connection updates change only the connection state; older ones are ignored.
	c0 := time.Now()
	if err := s.UpsertConnections(ctx, []ConnectionUpdate{
		{RobotID: "acme/r1", State: ConnectionOnline, At: c0},
		{RobotID: "acme/ghost", State: ConnectionOnline, At: c0},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertConnections(ctx, []ConnectionUpdate{{RobotID: "acme/r1", State: ConnectionOffline, At: c0.Add(-time.Second)}}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.RobotState(ctx, "acme/r1")
	if got.ConnectionState != ConnectionOnline || got.BatteryCharge != 70 || got.OrderID != "" {
		t.Errorf("after connection updates: %+v", got)
	}
	if err := s.UpsertConnections(ctx, []ConnectionUpdate{{RobotID: "acme/r1", State: ConnectionConnectionBroken, At: c0.Add(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.RobotState(ctx, "acme/r1"); got.ConnectionState != ConnectionConnectionBroken || got.BatteryCharge != 70 {
		t.Errorf("after CONNECTIONBROKEN: %+v", got)
	}
	// A last will carries the timestamp of its connect, earlier than the
	// ONLINE that followed: it must still mark the robot broken.
	connect := c0.Add(time.Minute)
	if err := s.UpsertConnections(ctx, []ConnectionUpdate{{RobotID: "acme/r1", State: ConnectionOnline, At: connect.Add(5 * time.Millisecond)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertConnections(ctx, []ConnectionUpdate{{RobotID: "acme/r1", State: ConnectionConnectionBroken, At: connect}}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.RobotState(ctx, "acme/r1")
	if got.ConnectionState != ConnectionConnectionBroken || !got.ConnectionAt.Equal(connect.Add(5*time.Millisecond).Truncate(time.Microsecond)) {
		t.Errorf("last will with its connect timestamp: state %s at %v", got.ConnectionState, got.ConnectionAt)
	}
	// A stale ONLINE does not undo it; the next session's ONLINE does.
	if err := s.UpsertConnections(ctx, []ConnectionUpdate{{RobotID: "acme/r1", State: ConnectionOnline, At: connect}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.RobotState(ctx, "acme/r1"); got.ConnectionState != ConnectionConnectionBroken {
		t.Errorf("stale ONLINE applied: %s", got.ConnectionState)
	}
	if err := s.UpsertConnections(ctx, []ConnectionUpdate{{RobotID: "acme/r1", State: ConnectionOnline, At: connect.Add(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.RobotState(ctx, "acme/r1"); got.ConnectionState != ConnectionOnline {
		t.Errorf("new session ONLINE not applied: %s", got.ConnectionState)
	}

	// Validation rejects the whole batch.
	for _, b := range [][]RobotState{
		{{RobotID: "acme/r1", Timestamp: t0.Add(time.Hour)}, {RobotID: "", Timestamp: t0}},
		{{RobotID: "acme/r1", Timestamp: t0.Add(time.Hour), Errors: json.RawMessage(`[`)}},
	} {
		if err := s.UpsertStates(ctx, b); !errors.Is(err, ErrInvalid) {
			t.Errorf("UpsertStates(%+v) = %v, want ErrInvalid", b, err)
		}
	}
	if err := s.UpsertConnections(ctx, []ConnectionUpdate{{RobotID: "acme/r1", State: "SLEEPING", At: c0}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("UpsertConnections(SLEEPING) = %v, want ErrInvalid", err)
	}
	if got, _ := s.RobotState(ctx, "acme/r1"); got.BatteryCharge != 70 {
		t.Errorf("invalid batch was partly written: %+v", got)
	}

	// A zero timestamp counts as now; null arrays are stored as [].
	before := time.Now().Add(-time.Second)
	if err := s.UpsertStates(ctx, []RobotState{{RobotID: "acme/r2", BatteryCharge: 33, Errors: json.RawMessage(`null`)}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.RobotState(ctx, "acme/r2"); got.BatteryCharge != 33 || got.Timestamp.Before(before) || string(got.Errors) != "[]" {
		t.Errorf("zero timestamp state: %+v", got)
	}
}

func TestReserveEligibilityAndNearest(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()

	// All near (0,0) but one reason each not to be chosen, and two eligible
	// robots further away.
	noCap := robot("nocap", "a", 0.1, 0, "tow")
	lowBat := robot("lowbat", "a", 0.2, 0, "lift")
	otherSite := robot("othersite", "b", 0, 0.1, "lift")
	offline := robot("offline", "a", 0, 0.2, "lift")
	fatal := robot("fatal", "a", 0.3, 0, "lift")
	far := robot("far", "a", 30, 40, "lift", "tow")
	mid := robot("mid", "a", 3, 4, "lift")
	if err := s.RegisterRobots(ctx, []Robot{noCap, lowBat, otherSite, offline, fatal, far, mid}); err != nil {
		t.Fatal(err)
	}
	onlineAt(t, s, 90, noCap, otherSite, fatal, far, mid)
	onlineAt(t, s, 10, lowBat)
	if err := s.UpsertStates(ctx, []RobotState{{RobotID: "acme/offline", BatteryCharge: 90, Timestamp: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertStates(ctx, []RobotState{{RobotID: "acme/fatal", BatteryCharge: 90, X: 0.3,
		FatalError: "motorFault: overheated", Timestamp: time.Now().Add(time.Millisecond)}}); err != nil {
		t.Fatal(err)
	}

	req := func(mission string) ReserveRequest {
		return ReserveRequest{MissionID: mission, WorkflowID: "mission-" + mission, Site: "a",
			RequiredCapabilities: []string{"lift"}, MinBattery: 30, FirstNode: "n0"}
	}
	r1, err := s.Reserve(ctx, req("m1"))
	if err != nil {
		t.Fatal(err)
	}
	if r1.RobotID != "acme/mid" || r1.Queued || r1.MissionID != "m1" {
		t.Fatalf("first reservation = %+v, want acme/mid (nearest eligible)", r1)
	}
	// Idempotent.
	again, err := s.Reserve(ctx, req("m1"))
	if err != nil || !same(again, r1) {
		t.Fatalf("Reserve again = %+v, %v, want %+v", again, err, r1)
	}
	r2, err := s.Reserve(ctx, req("m2"))
	if err != nil || r2.RobotID != "acme/far" {
		t.Fatalf("second reservation = %+v, %v, want acme/far", r2, err)
	}
	r3, err := s.Reserve(ctx, req("m3"))
	if err != nil || !r3.Queued || r3.QueuePosition != 1 || r3.RobotID != "" {
		t.Fatalf("third reservation = %+v, %v, want queued at 1", r3, err)
	}
	r3again, err := s.Reserve(ctx, req("m3"))
	if err != nil || !same(r3again, r3) {
		t.Fatalf("third reservation again = %+v, %v, want %+v", r3again, err, r3)
	}
	if robotID, ok, err := s.ReservationOf(ctx, "m1"); err != nil || !ok || robotID != "acme/mid" {
		t.Errorf("ReservationOf(m1) = %q %v %v", robotID, ok, err)
	}
	if _, ok, err := s.ReservationOf(ctx, "m3"); err != nil || ok {
		t.Errorf("ReservationOf(m3) = %v %v, want not reserved", ok, err)
	}
	views, err := s.ListRobots(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	reservedBy := map[string]string{}
	for _, v := range views {
		reservedBy[v.ID] = v.ReservedBy
	}
	if reservedBy["acme/mid"] != "m1" || reservedBy["acme/far"] != "m2" || reservedBy["acme/nocap"] != "" {
		t.Errorf("ReservedBy = %v", reservedBy)
	}

	// Once the fatal error clears, the queued mission can have that robot.
	if err := s.UpsertStates(ctx, []RobotState{{RobotID: "acme/fatal", BatteryCharge: 90, X: 0.3,
		Timestamp: time.Now().Add(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	r3, err = s.Reserve(ctx, req("m3"))
	if err != nil || r3.RobotID != "acme/fatal" || r3.Queued {
		t.Fatalf("after fatal error cleared = %+v, %v", r3, err)
	}
	if n := tableCount(t, s, "reservation_queue"); n != 0 {
		t.Errorf("queue has %d rows after the grant, want 0", n)
	}

	// Validation.
	for _, bad := range []ReserveRequest{
		{WorkflowID: "w", Site: "a"},
		{MissionID: "x", Site: "a"},
		{MissionID: "x", WorkflowID: "w"},
		{MissionID: "x", WorkflowID: "w", Site: "a", MinBattery: 101},
	} {
		if _, err := s.Reserve(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Reserve(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestReserveRace(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	var robots []Robot
	for i := range 5 {
		robots = append(robots, robot(fmt.Sprintf("r%d", i), "a", float64(i), 0, "lift"))
	}
	if err := s.RegisterRobots(ctx, robots); err != nil {
		t.Fatal(err)
	}
	onlineAt(t, s, 100, robots...)

	const n = 50
	results := make([]Reservation, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = s.Reserve(ctx, ReserveRequest{
				MissionID: fmt.Sprintf("m%02d", i), WorkflowID: fmt.Sprintf("mission-m%02d", i), Site: "a",
				RequiredCapabilities: []string{"lift"}, X: 2, Y: 0})
		}()
	}
	close(start)
	wg.Wait()

	granted := map[string]string{}
	var positions []int
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("Reserve m%02d: %v", i, errs[i])
		}
		if r.Queued {
			positions = append(positions, r.QueuePosition)
			continue
		}
		if other, dup := granted[r.RobotID]; dup {
			t.Errorf("robot %s double booked by %s and %s", r.RobotID, other, r.MissionID)
		}
		granted[r.RobotID] = r.MissionID
	}
	if len(granted) != 5 || len(positions) != 45 {
		t.Fatalf("granted %d, queued %d; want 5 and 45", len(granted), len(positions))
	}
	sort.Ints(positions)
	for i, p := range positions {
		if p != i+1 {
			t.Fatalf("queue positions %v, want 1..45", positions)
		}
	}
	if r, q := tableCount(t, s, "reservations"), tableCount(t, s, "reservation_queue"); r != 5 || q != 45 {
		t.Errorf("tables: %d reservations, %d queued; want 5, 45", r, q)
	}
	var audits int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE kind LIKE 'reservation.%'`).Scan(&audits); err != nil {
		t.Fatal(err)
	}
	if audits != n {
		t.Errorf("%d audit rows, want %d", audits, n)
	}
}

func TestReleasePriority(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	r1 := robot("r1", "a", 0, 0, "lift")
	if err := s.RegisterRobots(ctx, []Robot{r1, robot("r2", "b", 0, 0, "lift")}); err != nil {
		t.Fatal(err)
	}
	onlineAt(t, s, 100, r1)

	req := func(mission string, priority int) ReserveRequest {
		return ReserveRequest{MissionID: mission, WorkflowID: "wf-" + mission, Site: "a", Priority: priority}
	}
	holder, err := s.Reserve(ctx, req("holder", 0))
	if err != nil || holder.RobotID != "acme/r1" {
		t.Fatalf("holder = %+v, %v", holder, err)
	}
	// Low priority first, then high priority, then low priority again.
	low1, err := s.Reserve(ctx, req("low1", 1))
	if err != nil || !low1.Queued || low1.QueuePosition != 1 {
		t.Fatalf("low1 = %+v, %v", low1, err)
	}
	high, err := s.Reserve(ctx, req("high", 5))
	if err != nil || !high.Queued || high.QueuePosition != 1 {
		t.Fatalf("high = %+v, %v (should go ahead of low1)", high, err)
	}
	low2, err := s.Reserve(ctx, req("low2", 1))
	if err != nil || !low2.Queued || low2.QueuePosition != 3 {
		t.Fatalf("low2 = %+v, %v", low2, err)
	}
	if low1, _ = s.Reserve(ctx, req("low1", 1)); low1.QueuePosition != 2 {
		t.Fatalf("low1 again = %+v, want position 2", low1)
	}

	// Release by the wrong mission is a no-op.
	wake, err := s.Release(ctx, "acme/r1", "low1")
	if err != nil || len(wake) != 0 {
		t.Fatalf("Release by wrong mission = %v, %v; want nothing to wake", wake, err)
	}
	if id, ok, _ := s.ReservationOf(ctx, "holder"); !ok || id != "acme/r1" {
		t.Fatalf("wrong-mission release freed the robot")
	}
	// Unknown robot: no-op.
	if wake, err := s.Release(ctx, "acme/nope", "holder"); err != nil || len(wake) != 0 {
		t.Fatalf("Release of unknown robot = %v, %v", wake, err)
	}

	wake, err = s.Release(ctx, "acme/r1", "holder")
	if err != nil {
		t.Fatal(err)
	}
	// Only the most urgent waiting mission is woken: the robot waits for it.
	if fmt.Sprint(wake) != "[wf-high]" {
		t.Fatalf("wake = %v, want [wf-high]", wake)
	}
	// Releasing twice is fine and still names whom to wake.
	if wake2, err := s.Release(ctx, "acme/r1", "holder"); err != nil || fmt.Sprint(wake2) != fmt.Sprint(wake) {
		t.Fatalf("second Release = %v, %v", wake2, err)
	}
	// A new request of equal priority does not jump the queue.
	if late, err := s.Reserve(ctx, req("late", 1)); err != nil || !late.Queued || late.QueuePosition != 4 {
		t.Fatalf("late = %+v, %v; want queued at 4", late, err)
	}

	// The woken workflows retry, the lower priority ones first: only high gets it.
	for _, m := range []string{"low2", "low1"} {
		if r, err := s.Reserve(ctx, req(m, 1)); err != nil || !r.Queued {
			t.Fatalf("%s after release = %+v, %v; want still queued", m, r, err)
		}
	}
	if r, err := s.Reserve(ctx, req("high", 5)); err != nil || r.RobotID != "acme/r1" {
		t.Fatalf("high after release = %+v, %v; want acme/r1", r, err)
	}
	if r, _ := s.Reserve(ctx, req("low1", 1)); !r.Queued || r.QueuePosition != 1 {
		t.Fatalf("low1 after high got the robot = %+v, want first in line", r)
	}

	// Next round, concurrently: low1 (earlier) beats low2 and late, whoever calls first.
	if _, err := s.Release(ctx, "acme/r1", "high"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	res := map[string]Reservation{}
	var mu sync.Mutex
	for _, m := range []string{"late", "low2", "low1"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Reserve(ctx, req(m, 1))
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			res[m] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	if res["low1"].RobotID != "acme/r1" || !res["low2"].Queued || !res["late"].Queued {
		t.Fatalf("concurrent retry: %+v", res)
	}

	// A higher priority newcomer takes a freed robot ahead of lower waiting ones.
	if _, err := s.Release(ctx, "acme/r1", "low1"); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Reserve(ctx, req("urgent", 9)); err != nil || r.RobotID != "acme/r1" {
		t.Fatalf("urgent = %+v, %v", r, err)
	}

	// CancelQueued removes a waiting request; twice is fine.
	for range 2 {
		if err := s.CancelQueued(ctx, "low2"); err != nil {
			t.Fatal(err)
		}
	}
	if r, _ := s.Reserve(ctx, req("late", 1)); r.QueuePosition != 1 {
		t.Fatalf("late after low2 cancelled = %+v, want position 1", r)
	}

	// Audit trail of a mission: queued … granted … released.
	trail, err := s.AuditTrail(ctx, "high")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range trail {
		kinds = append(kinds, e.Kind)
		if e.Actor != "wf-high" || e.At.IsZero() || len(e.Details) == 0 {
			t.Errorf("audit entry %+v", e)
		}
	}
	if fmt.Sprint(kinds) != "[reservation.queued reservation.granted reservation.released]" {
		t.Errorf("audit kinds of high = %v", kinds)
	}
	trail, _ = s.AuditTrail(ctx, "low1")
	var ignored bool
	for _, e := range trail {
		if e.Kind == "reservation.release_ignored" {
			var d map[string]any
			_ = json.Unmarshal(e.Details, &d)
			ignored = d["heldBy"] == "holder"
		}
	}
	if !ignored {
		t.Errorf("no reservation.release_ignored row naming the holder in %+v", trail)
	}
	if trail, _ := s.AuditTrail(ctx, "low2"); trail[len(trail)-1].Kind != "reservation.queue_cancelled" {
		t.Errorf("last audit of low2 = %+v", trail[len(trail)-1])
	}
}

func TestReserveDoesNotHoldBackRobotsWaitersCannotUse(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	plain := robot("plain", "a", 0, 0)
	lifter := robot("lifter", "a", 100, 0, "lift")
	if err := s.RegisterRobots(ctx, []Robot{plain, lifter}); err != nil {
		t.Fatal(err)
	}
	onlineAt(t, s, 100, plain)
	// An urgent lift mission waits (the lifter is offline).
	if r, err := s.Reserve(ctx, ReserveRequest{MissionID: "urgent", WorkflowID: "w1", Site: "a", Priority: 9,
		RequiredCapabilities: []string{"lift"}}); err != nil || !r.Queued {
		t.Fatalf("urgent = %+v, %v", r, err)
	}
	// A less urgent mission with no requirement still gets the plain robot.
	if r, err := s.Reserve(ctx, ReserveRequest{MissionID: "routine", WorkflowID: "w2", Site: "a"}); err != nil || r.RobotID != "acme/plain" {
		t.Fatalf("routine = %+v, %v; want acme/plain", r, err)
	}
	// But when the lifter comes online, a routine mission near it does not
	// take it from the urgent one: it gets queued behind it, and learns that
	// the urgent one should be woken.
	onlineAt(t, s, 100, lifter)
	if r, err := s.Reserve(ctx, ReserveRequest{MissionID: "routine2", WorkflowID: "w3", Site: "a", X: 100}); err != nil ||
		!r.Queued || r.QueuePosition != 2 || fmt.Sprint(r.Wake) != "[w1]" {
		t.Fatalf("routine2 = %+v, %v; want queued at 2, waking w1", r, err)
	}
	if r, err := s.Reserve(ctx, ReserveRequest{MissionID: "urgent", WorkflowID: "w1", Site: "a", Priority: 9,
		RequiredCapabilities: []string{"lift"}}); err != nil || r.RobotID != "acme/lifter" {
		t.Fatalf("urgent retry = %+v, %v; want acme/lifter", r, err)
	}
}

func TestAudit(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	if err := s.Audit(ctx, "operator:ada", "robot.paused", "acme/r1", map[string]any{"reason": "inspection"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Audit(ctx, "bridge", "robot.fatal", "acme/r1", json.RawMessage(`{"errorType":"motorFault"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Audit(ctx, "bridge", "robot.seen", "acme/r1", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Audit(ctx, "x", "bad", "acme/r1", func() {}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Audit(unmarshallable) = %v, want ErrInvalid", err)
	}
	trail, err := s.AuditTrail(ctx, "acme/r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(trail) != 3 || trail[0].Kind != "robot.paused" || trail[0].Actor != "operator:ada" ||
		trail[1].Kind != "robot.fatal" || string(trail[2].Details) != "{}" || trail[0].ID >= trail[1].ID {
		t.Fatalf("trail = %+v", trail)
	}
	var d map[string]string
	if err := json.Unmarshal(trail[0].Details, &d); err != nil || d["reason"] != "inspection" {
		t.Errorf("details = %s", trail[0].Details)
	}
	if trail, err := s.AuditTrail(ctx, "nobody"); err != nil || len(trail) != 0 {
		t.Errorf("AuditTrail(nobody) = %v, %v", trail, err)
	}
}

// BenchmarkUpsertStates measures one batch of 200 robot states (one round trip).
func BenchmarkUpsertStates(b *testing.B) {
	s, _ := newTestStore(b)
	ctx := context.Background()
	const n = 200
	robots := make([]Robot, n)
	for i := range robots {
		robots[i] = robot(fmt.Sprintf("r%03d", i), "a", float64(i), 0, "lift")
		robots[i].ID = "acme/" + robots[i].SerialNumber
	}
	if err := s.RegisterRobots(ctx, robots); err != nil {
		b.Fatal(err)
	}
	states := make([]RobotState, n)
	actions := json.RawMessage(`[{"actionId":"a1","actionType":"pick","actionStatus":"RUNNING","resultDescription":""}]`)
	t0 := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j := range states {
			states[j] = RobotState{RobotID: robots[j].ID, OrderID: "mission-x", OrderUpdateID: int64(i),
				LastNodeID: "n1", LastNodeSequenceID: 2, Driving: true, BatteryCharge: 80, X: float64(j), Y: float64(i % 100),
				Theta: 0.5, MapID: "m", Errors: json.RawMessage(`[]`), ActionStates: actions, NodeStatesRemaining: 3,
				HeaderID: int64(i), Timestamp: t0.Add(time.Duration(i) * time.Millisecond)}
		}
		if err := s.UpsertStates(ctx, states); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/state")
}

package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/fleetflow/fleetflow/activities/store"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/internal/testbroker"
	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// Activities against the real things: PostgreSQL (a fresh database), the
// MQTT broker (Mosquitto on 127.0.0.1:1883 or MQTT_URL) and an httptest WMS.

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func freshStore(t *testing.T) *store.Store {
	admin := envOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("PostgreSQL is required (%s): %v", admin, err)
	}
	name := fmt.Sprintf("ff_act_%d", rand.Uint32())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	cfg, _ := pgx.ParseConfig(admin)
	url := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
	if err := store.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func mqttClient(t *testing.T, id string) mqtt.Client {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(envOr("MQTT_URL", "tcp://127.0.0.1:1883")).
		SetClientID(fmt.Sprintf("%s-%d", id, rand.Uint32())).SetOrderMatters(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT broker is required: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func warehouse(t *testing.T) *site.Map {
	m, err := site.Load("../testdata/sites/warehouse-a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func spec() schemas.MissionSpec {
	return schemas.MissionSpec{MissionID: "m-1", Site: "warehouse-a", Load: &schemas.Load{LoadID: "PAL-9", LoadType: "EPAL"},
		Steps: []schemas.MissionStep{{Station: "inbound-1", Action: "pick"}, {Station: "rack-1", Action: "drop"}}}
}

func TestPlanMissionRejectsUnknownStation(t *testing.T) {
	a := &Activities{Sites: map[string]*site.Map{"warehouse-a": warehouse(t)}}
	res, err := a.PlanMission(context.Background(), schemas.PlanMissionInput{Spec: spec()})
	in1, _ := a.Sites["warehouse-a"].Station("inbound-1")
	if err != nil || res.FirstStationNode != in1.Node {
		t.Fatalf("%+v %v", res, err)
	}
	bad := spec()
	bad.Steps[1].Station = "nowhere"
	_, err = a.PlanMission(context.Background(), schemas.PlanMissionInput{Spec: bad})
	var ae *temporal.ApplicationError
	if !asApp(err, &ae) || ae.Type() != schemas.ErrInvalidMission || !ae.NonRetryable() {
		t.Fatalf("want non-retryable InvalidMission, got %v", err)
	}
	bad.Site = "mars"
	if _, err := a.PlanMission(context.Background(), schemas.PlanMissionInput{Spec: bad}); err == nil {
		t.Fatal("unknown site accepted")
	}
}

func asApp(err error, target **temporal.ApplicationError) bool {
	ae, ok := err.(*temporal.ApplicationError)
	if ok {
		*target = ae
	}
	return ok
}

// BuildOrder starts where the stored state says the robot stands, and
// SendOrder puts a schema-valid order on the robot's order topic.
func TestBuildAndSendOrder(t *testing.T) {
	st := freshStore(t)
	m := warehouse(t)
	ctx := context.Background()
	serial := fmt.Sprintf("T%d", rand.Uint32())
	robotID := "acme/" + serial
	if err := st.RegisterRobots(ctx, []store.Robot{{ID: robotID, Manufacturer: "acme", SerialNumber: serial, Site: "warehouse-a", HomeNode: m.Nodes[0].ID}}); err != nil {
		t.Fatal(err)
	}
	// The robot reported standing at some node of the map.
	at := m.Nodes[len(m.Nodes)/2]
	if err := st.UpsertStates(ctx, []store.RobotState{{RobotID: robotID, LastNodeID: at.ID, X: at.X, Y: at.Y, BatteryCharge: 80, Timestamp: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	sub := mqttClient(t, "test-sub")
	got := make(chan []byte, 1)
	key := vda5050.RobotKey{Manufacturer: "acme", SerialNumber: serial}
	if tok := sub.Subscribe(vda5050.TopicFor(key, vda5050.TopicOrder), 0, func(_ mqtt.Client, msg mqtt.Message) { got <- msg.Payload() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	a := &Activities{Store: st, Sites: map[string]*site.Map{"warehouse-a": m}, Link: NewRobotLink(mqttClient(t, "test-pub"), time.Second, nil)}
	built, err := a.BuildOrder(ctx, schemas.BuildOrderInput{Spec: spec(), RobotID: robotID, OrderID: "mission-m-1"})
	if err != nil {
		t.Fatal(err)
	}
	if built.NodeIDs[0] != at.ID || len(built.ActionIDs) != 2 || built.Distance <= 0 {
		t.Fatalf("order must start at the robot's node %s: %+v", at.ID, built.NodeIDs)
	}
	if built.Order.Nodes[0].NodePosition.AllowedDeviationXY != nil || built.Protocol != "2.0.0 uagv actions/both" {
		t.Fatalf("a robot on its node gets a plain first node: %+v %s", built.Order.Nodes[0].NodePosition, built.Protocol)
	}
	sent, err := a.SendOrder(ctx, schemas.SendOrderInput{RobotID: robotID, Order: built.Order})
	if err != nil {
		t.Fatal(err)
	}
	if sent.Topic != "uagv/v2/acme/"+serial+"/order" {
		t.Fatalf("sent on %s", sent.Topic)
	}
	select {
	case raw := <-got:
		var o vda5050.Order
		if err := vda5050.Decode(vda5050.TopicOrder, raw, &o); err != nil {
			t.Fatalf("sent order is not schema-valid: %v", err)
		}
		if o.OrderID != "mission-m-1" || o.SerialNumber != serial || o.Timestamp == "" {
			t.Fatalf("header not filled: %+v", o.Header)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("order never reached the robot's topic")
	}
	// A robot ID that cannot be a topic is a non-retryable error.
	if _, err := a.SendOrder(ctx, schemas.SendOrderInput{RobotID: "no-slash", Order: built.Order}); err == nil {
		t.Fatal("bad robot id accepted")
	}

	// Stopped between nodes (a cancelled order): the plan starts at the
	// nearest node, which the vehicle must count as where it stands.
	if err := st.UpsertStates(ctx, []store.RobotState{{RobotID: robotID, LastNodeID: at.ID, X: at.X + 1.7, Y: at.Y, BatteryCharge: 80, Timestamp: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	off, err := a.BuildOrder(ctx, schemas.BuildOrderInput{Spec: spec(), RobotID: robotID, OrderID: "mission-m-2"})
	if err != nil {
		t.Fatal(err)
	}
	dev := off.Order.Nodes[0].NodePosition.AllowedDeviationXY
	if off.StartOffset < 1.5 || dev == nil || *dev < off.StartOffset {
		t.Fatalf("off-node start: offset %.2f m, first node allowedDeviationXy %v", off.StartOffset, dev)
	}
}

// Each robot is spoken to in its own profile: topics, version, dialect.
func TestSendInTheRobotsDialect(t *testing.T) {
	lib := vda5050.RobotKey{Manufacturer: "coaty", SerialNumber: fmt.Sprintf("L%d", rand.Uint32())}
	old := vda5050.RobotKey{Manufacturer: "oldco", SerialNumber: fmt.Sprintf("O%d", rand.Uint32())}
	book := vda5050.NewProfileBook(vda5050.Profile{}, map[vda5050.RobotKey]vda5050.Profile{
		lib: {Version: "2.0.0", InstantActionsKey: vda5050.KeyInstantActions, ActionTypeKey: vda5050.ActionKeyType},
		old: {Version: "1.1", InterfaceName: "fts"},
	})
	sub := mqttClient(t, "test-sub")
	got := make(chan mqtt.Message, 4)
	for _, topic := range []string{"uagv/v2/coaty/" + lib.SerialNumber + "/instantActions", "fts/v1/oldco/" + old.SerialNumber + "/order"} {
		if tok := sub.Subscribe(topic, 0, func(_ mqtt.Client, msg mqtt.Message) { got <- msg }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	a := &Activities{Link: NewRobotLink(mqttClient(t, "test-pub"), time.Second, book)}
	sent, err := a.SendInstantActions(context.Background(), schemas.SendInstantActionsInput{RobotID: lib.String(),
		Actions: []vda5050.Action{{ActionType: vda5050.ActionCancelOrder, ActionID: "mission-m#cancel-1", BlockingType: vda5050.BlockingHard}}})
	if err != nil {
		t.Fatal(err)
	}
	msg := <-got
	var m map[string]any
	_ = json.Unmarshal(msg.Payload(), &m)
	acts, ok := m["instantActions"].([]any)
	if !ok || m["actions"] != nil || acts[0].(map[string]any)["actionType"] != "cancelOrder" || acts[0].(map[string]any)["actionName"] != nil {
		t.Fatalf("not in the vehicle's dialect: %s", msg.Payload())
	}
	if m["headerId"].(float64) != float64(sent.HeaderID) || sent.Topic != msg.Topic() {
		t.Fatalf("sent %+v, got headerId %v on %s", sent, m["headerId"], msg.Topic())
	}
	x := 2.0
	order := vda5050.Order{OrderID: "mission-m-9", Nodes: []vda5050.Node{
		{NodeID: "a", SequenceID: 0, Released: true, NodePosition: &vda5050.NodePosition{MapID: "m"}, Actions: []vda5050.Action{}},
		{NodeID: "b", SequenceID: 2, Released: true, NodePosition: &vda5050.NodePosition{X: x, MapID: "m"}, Actions: []vda5050.Action{}}},
		Edges: []vda5050.Edge{{EdgeID: "a-b", SequenceID: 1, Released: true, StartNodeID: "a", EndNodeID: "b", Length: &x, Actions: []vda5050.Action{}}}}
	if _, err := a.SendOrder(context.Background(), schemas.SendOrderInput{RobotID: old.String(), Order: order}); err != nil {
		t.Fatal(err)
	}
	msg = <-got
	if err := vda5050.ValidateEdition(vda5050.Edition11, vda5050.TopicOrder, msg.Payload()); err != nil || !strings.Contains(string(msg.Payload()), `"version":"1.1.0"`) || !strings.Contains(string(msg.Payload()), `"distance":2`) {
		t.Fatalf("not a 1.1 order: %v %s", err, msg.Payload())
	}
}

// A publish while the MQTT client is reconnecting is an error the activity
// retries — never a silent success (paho completes a QoS 0 token without
// sending anything then). Against a real Mosquitto that is stopped and
// started again.
func TestPublishDuringBrokerRestart(t *testing.T) {
	broker := testbroker.Start(t)
	opts := func(id string) *mqtt.ClientOptions {
		return mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID(fmt.Sprintf("%s-%d", id, rand.Uint32())).
			SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(200 * time.Millisecond).SetOrderMatters(false)
	}
	got := make(chan []byte, 16)
	subOpts := opts("sub").SetOnConnectHandler(func(c mqtt.Client) {
		c.Subscribe("uagv/v2/acme/R1/instantActions", 0, func(_ mqtt.Client, m mqtt.Message) { got <- m.Payload() })
	})
	sub, pub := mqtt.NewClient(subOpts), mqtt.NewClient(opts("pub"))
	for _, c := range []mqtt.Client{sub, pub} {
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		defer c.Disconnect(100)
	}
	a := &Activities{Link: NewRobotLink(pub, time.Second, nil)}
	send := func(id string) error {
		_, err := a.SendInstantActions(context.Background(), schemas.SendInstantActionsInput{RobotID: "acme/R1",
			Actions: []vda5050.Action{{ActionType: vda5050.ActionStateRequest, ActionID: id, BlockingType: vda5050.BlockingNone}}})
		return err
	}
	time.Sleep(200 * time.Millisecond) // the subscription is made in the connect handler
	if err := send("before"); err != nil {
		t.Fatal(err)
	}
	<-got
	broker.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for pub.IsConnectionOpen() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	err := send("during")
	if !errors.Is(err, ErrNotConnected) {
		t.Fatalf("publish while the broker is down: %v, want ErrNotConnected", err)
	}
	var ae *temporal.ApplicationError
	if asApp(err, &ae) && ae.NonRetryable() {
		t.Fatal("a publish while reconnecting must be retryable")
	}
	if err := broker.Resume(); err != nil {
		t.Fatal(err)
	}
	// What the activity's retry policy does: try again until it goes out.
	deadline = time.Now().Add(10 * time.Second)
	for err = send("after"); err != nil && time.Now().Before(deadline); err = send("after") {
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("never sent after the broker came back: %v", err)
	}
	select {
	case p := <-got:
		if !strings.Contains(string(p), `"after"`) {
			t.Fatalf("got %s", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the retried publish never reached the subscriber")
	}
}

func TestRobotSnapshotFromStore(t *testing.T) {
	st := freshStore(t)
	ctx := context.Background()
	st.RegisterRobots(ctx, []store.Robot{{ID: "acme/S1", Manufacturer: "acme", SerialNumber: "S1", Site: "s", HomeNode: "A"}})
	acts, _ := json.Marshal([]vda5050.ActionState{{ActionID: "mission-m-1-a0-pick", ActionStatus: vda5050.ActionFinished}})
	errs, _ := json.Marshal([]vda5050.Error{{ErrorType: "x", ErrorLevel: vda5050.ErrorFatal}})
	st.UpsertStates(ctx, []store.RobotState{{RobotID: "acme/S1", OrderID: "mission-m-1", LastNodeID: "C", LastNodeSequenceID: 4, ActionStates: acts, Errors: errs, Timestamp: time.Now()}})
	st.UpsertConnections(ctx, []store.ConnectionUpdate{{RobotID: "acme/S1", State: "ONLINE", At: time.Now()}})
	a := &Activities{Store: st}
	ev, err := a.RobotSnapshot(ctx, schemas.RobotSnapshotInput{RobotID: "acme/S1"})
	if err != nil {
		t.Fatal(err)
	}
	if ev.OrderID != "mission-m-1" || ev.LastNodeSequenceID != 4 || ev.Connection != "ONLINE" || len(ev.ActionStates) != 1 || ev.Errors[0].ErrorLevel != vda5050.ErrorFatal {
		t.Fatalf("%+v", ev)
	}
}

// Instant actions sent for a reservation holder go out only while it holds
// the robot: a cancelOrder run again after its mission released the robot
// (a local activity re-executed when the workflow task is retried after a
// crash) must not stop the next mission's order. Against real PostgreSQL
// and Mosquitto: the withheld cancelOrder never reaches the robot's topic.
func TestInstantActionsWithheldFromARobotHeldByAnother(t *testing.T) {
	st := freshStore(t)
	m := warehouse(t)
	ctx := context.Background()
	serial := fmt.Sprintf("W%d", rand.Uint32())
	robotID := "acme/" + serial
	if err := st.RegisterRobots(ctx, []store.Robot{{ID: robotID, Manufacturer: "acme", SerialNumber: serial, Site: "warehouse-a", HomeNode: m.Nodes[0].ID}}); err != nil {
		t.Fatal(err)
	}
	at := m.Nodes[0]
	if err := st.UpsertStates(ctx, []store.RobotState{{RobotID: robotID, LastNodeID: at.ID, X: at.X, Y: at.Y, BatteryCharge: 80, Timestamp: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertConnections(ctx, []store.ConnectionUpdate{{RobotID: robotID, State: "ONLINE", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	sub := mqttClient(t, "test-sub")
	got := make(chan string, 8)
	key := vda5050.RobotKey{Manufacturer: "acme", SerialNumber: serial}
	if tok := sub.Subscribe(vda5050.TopicFor(key, vda5050.TopicInstantActions), 0, func(_ mqtt.Client, msg mqtt.Message) {
		var ia vda5050.InstantActions
		_ = json.Unmarshal(msg.Payload(), &ia)
		for _, a := range ia.Actions {
			got <- a.ActionID
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	a := &Activities{Store: st, Sites: map[string]*site.Map{"warehouse-a": m}, Link: NewRobotLink(mqttClient(t, "test-pub"), time.Second, nil)}
	cancel := func(holder, id string) error {
		_, err := a.SendInstantActions(ctx, schemas.SendInstantActionsInput{RobotID: robotID, Holder: holder,
			Actions: []vda5050.Action{{ActionType: vda5050.ActionCancelOrder, ActionID: id, BlockingType: vda5050.BlockingHard}}})
		return err
	}
	notReserved := func(err error) bool {
		var ae *temporal.ApplicationError
		return errors.As(err, &ae) && ae.Type() == schemas.ErrNotReserved && ae.NonRetryable()
	}
	// Nobody holds the robot: withheld.
	if err := cancel("m-a", "mission-m-a#fail-cancel-1"); !notReserved(err) || !strings.Contains(err.Error(), "reserved by nobody") {
		t.Fatalf("cancelOrder for a robot nobody holds: %v", err)
	}
	for _, holder := range []string{"m-a", "m-b"} {
		if _, err := st.Reserve(ctx, store.ReserveRequest{MissionID: holder, WorkflowID: "mission-" + holder, Site: "warehouse-a", RobotID: robotID}); err != nil {
			t.Fatal(err)
		}
		if holder == "m-a" {
			// The holder's own cancelOrder goes out.
			if err := cancel("m-a", "mission-m-a#cancel-1"); err != nil {
				t.Fatalf("the holder's cancelOrder: %v", err)
			}
			if _, err := st.Release(ctx, robotID, "m-a"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// m-a released the robot and m-b took it: m-a's cancelOrder, run again,
	// is withheld and audited.
	if err := cancel("m-a", "mission-m-a#fail-cancel-2"); !notReserved(err) || !strings.Contains(err.Error(), "reserved by m-b, not by m-a") {
		t.Fatalf("stale cancelOrder: %v", err)
	}
	// Untagged actions (no holder) are not checked.
	if err := cancel("", "probe#1"); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for len(seen) < 2 {
		select {
		case id := <-got:
			seen = append(seen, id)
		case <-time.After(5 * time.Second):
			t.Fatalf("only %v reached the robot", seen)
		}
	}
	// The probe went out last: a withheld cancel would have reached the
	// broker before it (one connection); the subscriber's callbacks run
	// unordered, so give a straggler a moment.
	select {
	case id := <-got:
		seen = append(seen, id)
	case <-time.After(500 * time.Millisecond):
	}
	slices.Sort(seen)
	if !slices.Equal(seen, []string{"mission-m-a#cancel-1", "probe#1"}) {
		t.Fatalf("reached the robot: %v; want only the holder's cancel and the probe", seen)
	}
	trail, err := st.AuditTrail(ctx, "m-a")
	if err != nil {
		t.Fatal(err)
	}
	withheld := 0
	for _, e := range trail {
		if e.Kind == "instant_actions.withheld" {
			withheld++
		}
	}
	if withheld != 2 {
		t.Fatalf("%d instant_actions.withheld audit rows for m-a, want 2: %+v", withheld, trail)
	}
}

// closedWorkflows answers every DescribeWorkflowExecution with NotFound: the
// holders of all leases are gone. Other client calls panic.
type closedWorkflows struct{ client.Client }

func (closedWorkflows) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return nil, serviceerror.NewNotFound("workflow not found")
}

// At an edge site the sweep does not free a reservation whose robot still
// drives the closed holder's order: it hands it to the Reaper workflow
// (EdgeStops), which cancels the order through the site's queue and then
// frees it with FreeLease (once: a second call is a no-op).
func TestSweepLeavesEdgeRobotsToTheReaperWorkflow(t *testing.T) {
	st := freshStore(t)
	m := warehouse(t)
	ctx := context.Background()
	serial := fmt.Sprintf("E%d", rand.Uint32())
	robotID := "acme/" + serial
	at := m.Nodes[0]
	if err := st.RegisterRobots(ctx, []store.Robot{{ID: robotID, Manufacturer: "acme", SerialNumber: serial, Site: "warehouse-a", HomeNode: at.ID}}); err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertStates(ctx, []store.RobotState{{RobotID: robotID, LastNodeID: at.ID, X: at.X, Y: at.Y, BatteryCharge: 80, Timestamp: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertConnections(ctx, []store.ConnectionUpdate{{RobotID: robotID, State: "ONLINE", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if r, err := st.Reserve(ctx, store.ReserveRequest{MissionID: "m-gone", WorkflowID: "mission-m-gone", Site: "warehouse-a", RobotID: robotID}); err != nil || r.Queued {
		t.Fatalf("reserve: %+v %v", r, err)
	}
	// The holder sent its order, then closed without releasing.
	if err := st.UpsertStates(ctx, []store.RobotState{{RobotID: robotID, OrderID: "mission-m-gone", LastNodeID: at.ID, X: at.X, Y: at.Y,
		NodeStatesRemaining: 3, Driving: true, BatteryCharge: 80, Timestamp: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	// The closed holder also held a charger the robot may still drive to.
	if g, err := st.ReserveStation(ctx, store.StationRequest{Site: "warehouse-a", Holder: "mission-m-gone", RobotID: robotID,
		Stations: []store.Station{{ID: "CH-test"}}}); err != nil || g.StationID != "CH-test" {
		t.Fatalf("reserve station: %+v %v", g, err)
	}
	a := &Activities{Store: st, Sites: map[string]*site.Map{"warehouse-a": m}, Temporal: closedWorkflows{},
		EdgeQueues: map[string]string{"warehouse-a": "robot-io-warehouse-a"}}
	time.Sleep(10 * time.Millisecond)
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.SweepLeases, schemas.SweepLeasesInput{MinAge: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var res schemas.SweepLeasesResult
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	if len(res.Freed) != 0 || len(res.EdgeStops) != 1 || res.EdgeStops[0].RobotIOQueue != "robot-io-warehouse-a" || res.EdgeStops[0].MissionID != "m-gone" {
		t.Fatalf("sweep: %+v", res)
	}
	if holder, held, err := st.ReservationHolder(ctx, robotID); err != nil || !held || holder != "m-gone" {
		t.Fatalf("the lease must stand until its order is cancelled: %q %v %v", holder, held, err)
	}
	if holds, err := st.StationHolds(ctx, "warehouse-a"); err != nil || len(holds) != 1 {
		t.Fatalf("the closed holder's charger must wait for the next sweep, after its robot is stopped: %+v %v", holds, err)
	}
	stop := res.EdgeStops[0]
	stop.OrderCancelled = true
	for range 2 {
		if _, err := env.ExecuteActivity(a.FreeLease, stop); err != nil {
			t.Fatal(err)
		}
	}
	if _, held, err := st.ReservationHolder(ctx, robotID); err != nil || held {
		t.Fatalf("not freed: %v %v", held, err)
	}
	// The next sweep frees the charger.
	if _, err := env.ExecuteActivity(a.SweepLeases, schemas.SweepLeasesInput{MinAge: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if holds, err := st.StationHolds(ctx, "warehouse-a"); err != nil || len(holds) != 0 {
		t.Fatalf("the charger is freed by the next sweep: %+v %v", holds, err)
	}
	trail, err := st.AuditTrail(ctx, "m-gone")
	if err != nil {
		t.Fatal(err)
	}
	freed := 0
	for _, e := range trail {
		if e.Kind == "lease.freed" {
			freed++
			if !strings.Contains(string(e.Details), `"orderCancelled": true`) && !strings.Contains(string(e.Details), `"orderCancelled":true`) {
				t.Fatalf("audit row: %s", e.Details)
			}
		}
	}
	if freed != 1 {
		t.Fatalf("%d lease.freed rows, want 1: %+v", freed, trail)
	}
}

// someRunning answers DescribeWorkflowExecution: RUNNING for the IDs in
// it, NotFound (closed and gone) for the others.
type someRunning struct {
	client.Client
	running map[string]bool
}

func (s someRunning) DescribeWorkflowExecution(_ context.Context, id, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	if !s.running[id] {
		return nil, serviceerror.NewNotFound("workflow not found")
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Status: enums.WORKFLOW_EXECUTION_STATUS_RUNNING}}, nil
}

// A robot reserved by nobody that still drives the order of a closed
// workflow (the workflow ended and released it without the robot
// confirming a stop) is sent cancelOrder by the sweep, once a minute at
// most; one on a running workflow's order is left alone. Against real
// PostgreSQL and Mosquitto.
func TestSweepStopsUnreservedRobotsOnOrphanedOrders(t *testing.T) {
	st := freshStore(t)
	m := warehouse(t)
	ctx := context.Background()
	at := m.Nodes[0]
	robots := map[string]string{} // serial → its order's workflow
	for _, wf := range []string{"mission-m-gone", "mission-m-live"} {
		serial := fmt.Sprintf("O%d", rand.Uint32())
		robots[serial] = wf
		id := "acme/" + serial
		if err := st.RegisterRobots(ctx, []store.Robot{{ID: id, Manufacturer: "acme", SerialNumber: serial, Site: "warehouse-a", HomeNode: at.ID}}); err != nil {
			t.Fatal(err)
		}
		if err := st.UpsertStates(ctx, []store.RobotState{{RobotID: id, OrderID: wf, LastNodeID: at.ID, X: at.X, Y: at.Y,
			NodeStatesRemaining: 3, Driving: true, BatteryCharge: 80, Timestamp: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		if err := st.UpsertConnections(ctx, []store.ConnectionUpdate{{RobotID: id, State: "ONLINE", At: time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	sub := mqttClient(t, "test-orphans")
	got := make(chan string, 8)
	for serial := range robots {
		key := vda5050.RobotKey{Manufacturer: "acme", SerialNumber: serial}
		if tok := sub.Subscribe(vda5050.TopicFor(key, vda5050.TopicInstantActions), 1, func(_ mqtt.Client, msg mqtt.Message) {
			var ia vda5050.InstantActions
			_ = json.Unmarshal(msg.Payload(), &ia)
			for _, a := range ia.Actions {
				got <- ia.SerialNumber + " " + a.ActionType + " " + a.ActionID
			}
		}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	a := &Activities{Store: st, Sites: map[string]*site.Map{"warehouse-a": m}, Temporal: someRunning{running: map[string]bool{"mission-m-live": true}},
		Link: NewRobotLink(mqttClient(t, "test-orphans-pub"), time.Second, nil)}
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(a)
	sweep := func() schemas.SweepLeasesResult {
		v, err := env.ExecuteActivity(a.SweepLeases, schemas.SweepLeasesInput{MinAge: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		var res schemas.SweepLeasesResult
		if err := v.Get(&res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := sweep()
	if len(res.OrphansStopped) != 1 || !strings.HasSuffix(res.OrphansStopped[0], " mission-m-gone") {
		t.Fatalf("orphans stopped: %v", res.OrphansStopped)
	}
	select {
	case s := <-got:
		serial, rest, _ := strings.Cut(s, " ")
		if robots[serial] != "mission-m-gone" || !strings.HasPrefix(rest, vda5050.ActionCancelOrder+" mission-m-gone#reaper-cancel-") {
			t.Fatalf("sent %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no cancelOrder reached the orphaned robot")
	}
	if res := sweep(); len(res.OrphansStopped) != 0 {
		t.Fatalf("sent again within a minute: %v", res.OrphansStopped)
	}
	select {
	case s := <-got:
		t.Fatalf("unexpected instant action %q", s)
	case <-time.After(300 * time.Millisecond):
	}
	trail, err := st.AuditTrail(ctx, "mission-m-gone")
	if err != nil || len(trail) != 1 || trail[0].Kind != "order.orphan_stopped" {
		t.Fatalf("audit: %+v %v", trail, err)
	}
}

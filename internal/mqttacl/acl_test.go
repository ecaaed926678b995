package mqttacl

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/internal/testbroker"
	"github.com/fleetflow/fleetflow/internal/vda5050"
)

// The generated ACL against a real Mosquitto started with it and a
// password file: a robot publishes its own state and reads its own order;
// another robot's state it cannot publish (the service never hears it),
// and subscribed to another robot's order, to every order or to "#", it
// receives nothing but its own; its own order topic it cannot write; a
// client without credentials, or with a wrong password, is refused.
func TestACLFencesEachRobot(t *testing.T) {
	passwd, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Fatalf("mosquitto_passwd is required (apt-get install mosquitto): %v", err)
	}
	m, err := site.Load("../../testdata/sites/warehouse-a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	acl, err := Generate([]*site.Map{m}, "fleetflow")
	if err != nil {
		t.Fatal(err)
	}
	// Mosquitto started as root drops to its own user: it must be able to
	// reach and read the files (t.TempDir's parent is private).
	dir, err := os.MkdirTemp("", "fleetflow-acl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	aclFile, pwFile := filepath.Join(dir, "acl"), filepath.Join(dir, "passwd")
	if err := os.WriteFile(aclFile, acl, 0o644); err != nil {
		t.Fatal(err)
	}
	users := map[string]string{"fleetflow": "svc-secret", "acme/AMR-001": "r1-secret", "acme/AMR-002": "r2-secret"}
	first := true
	for u, p := range users {
		args := []string{"-b", pwFile, u, p}
		if first {
			args = append([]string{"-c"}, args...)
			first = false
		}
		if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	for _, f := range []string{dir, aclFile, pwFile} {
		mode := os.FileMode(0o644)
		if f == dir {
			mode = 0o755
		}
		if err := os.Chmod(f, mode); err != nil {
			t.Fatal(err)
		}
	}
	broker, err := testbroker.NewWith(dir, fmt.Sprintf("allow_anonymous false\npassword_file %s\nacl_file %s\n", pwFile, aclFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Stop)

	connect := func(user, pass string) (mqtt.Client, error) {
		o := mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID(fmt.Sprintf("t-%s-%d", strings.ReplaceAll(user, "/", "."), time.Now().UnixNano())).
			SetAutoReconnect(false).SetConnectRetry(false)
		if user != "" {
			o.SetUsername(user).SetPassword(pass)
		}
		c := mqtt.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(5 * time.Second) {
			return nil, fmt.Errorf("connect timed out")
		}
		if tok.Error() != nil {
			return nil, tok.Error()
		}
		t.Cleanup(func() { c.Disconnect(50) })
		return c, nil
	}
	if _, err := connect("", ""); err == nil {
		t.Fatal("anonymous client accepted")
	}
	if _, err := connect("acme/AMR-001", "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	svc, err := connect("fleetflow", "svc-secret")
	if err != nil {
		t.Fatal(err)
	}
	r1, err := connect("acme/AMR-001", "r1-secret")
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := vda5050.RobotKey{Manufacturer: "acme", SerialNumber: "AMR-001"}, vda5050.RobotKey{Manufacturer: "acme", SerialNumber: "AMR-002"}
	p1, p2 := m.ProfileFor(m.Robots[0]), m.ProfileFor(m.Robots[1])
	var mu sync.Mutex
	heard := map[string][]string{}
	listen := func(c mqtt.Client, filter string) byte {
		tok := c.Subscribe(filter, 1, func(_ mqtt.Client, msg mqtt.Message) {
			mu.Lock()
			heard[msg.Topic()] = append(heard[msg.Topic()], string(msg.Payload()))
			mu.Unlock()
		})
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", filter, tok.Error())
		}
		return tok.(*mqtt.SubscribeToken).Result()[filter]
	}
	// The service reads every robot's state (as the bridge does, shared).
	if code := listen(svc, "$share/bridge/"+p1.Subscription(vda5050.TopicState)); code > 2 {
		t.Fatalf("service refused the state subscription: %#x", code)
	}
	// A robot reads its own order, not another's.
	if code := listen(r1, p1.Topic(k1, vda5050.TopicOrder)); code > 2 {
		t.Fatalf("robot refused its own order topic: %#x", code)
	}
	// Mosquitto 2.0 may grant the subscription (MQTT 3.1.1) but delivers
	// only what the ACL lets the client read: below, nothing of AMR-002's.
	stolen := map[string]bool{}
	for _, filter := range []string{p2.Topic(k2, vda5050.TopicOrder), p1.Subscription(vda5050.TopicOrder), "#"} {
		tok := r1.Subscribe(filter, 1, func(_ mqtt.Client, msg mqtt.Message) {
			mu.Lock()
			if !strings.Contains(msg.Topic(), "/AMR-001/") {
				stolen[msg.Topic()] = true
			}
			mu.Unlock()
		})
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", filter, tok.Error())
		}
	}
	pub := func(c mqtt.Client, topic, payload string) {
		tok := c.Publish(topic, 1, false, payload)
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	pub(r1, p2.Topic(k2, vda5050.TopicState), "forged")            // another robot's state: dropped
	pub(r1, p1.Topic(k1, vda5050.TopicOrder), "self-made order")   // its own order: robots do not write orders
	pub(r1, p1.Topic(k1, vda5050.TopicState), "own")               // its own state: delivered
	pub(svc, p1.Topic(k1, vda5050.TopicOrder), "order from fleet") // the service sends the order
	pub(svc, p2.Topic(k2, vda5050.TopicOrder), "AMR-002's order")  // not for AMR-001's eyes
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		done := len(heard[p1.Topic(k1, vda5050.TopicState)]) > 0 && len(heard[p1.Topic(k1, vda5050.TopicOrder)]) > 0
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // anything forged would have arrived with them
	mu.Lock()
	defer mu.Unlock()
	if got := heard[p1.Topic(k1, vda5050.TopicState)]; len(got) != 1 || got[0] != "own" {
		t.Fatalf("the service heard on AMR-001's state: %q", got)
	}
	if got := heard[p2.Topic(k2, vda5050.TopicState)]; len(got) != 0 {
		t.Fatalf("a robot published another robot's state: %q", got)
	}
	if len(stolen) > 0 {
		t.Fatalf("robot AMR-001 received other robots' messages: %v", stolen)
	}
	if got := heard[p1.Topic(k1, vda5050.TopicOrder)]; len(got) != 1 || got[0] != "order from fleet" {
		t.Fatalf("AMR-001 heard on its order topic: %q (a robot must not write orders)", got)
	}
}

// Every robot of the map gets exactly its own topics, in its profile.
func TestGenerateNamesEachRobotsTopics(t *testing.T) {
	m, err := site.Load("../../testdata/sites/warehouse-a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	acl, err := Generate([]*site.Map{m}, "fleetflow")
	if err != nil {
		t.Fatal(err)
	}
	s := string(acl)
	for _, r := range m.Robots {
		k := r.Key()
		if !strings.Contains(s, "\nuser "+Username(k)+"\n") {
			t.Fatalf("no user line for %s", k)
		}
		for _, tp := range RobotWrites {
			if !strings.Contains(s, "topic write "+m.ProfileFor(r).Topic(k, tp)+"\n") {
				t.Fatalf("%s may not write its %s", k, tp)
			}
		}
	}
	if _, err := Generate([]*site.Map{m}, ""); err == nil {
		t.Fatal("empty service user accepted")
	}
	if _, err := Generate([]*site.Map{m, m}, "fleetflow"); err == nil {
		t.Fatal("a robot in two maps accepted")
	}
}

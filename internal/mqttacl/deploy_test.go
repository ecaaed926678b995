package mqttacl

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetflow/fleetflow/internal/config"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/internal/testbroker"
	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/workers/worker"
)

// pki is a throwaway CA that issues the broker's and the clients'
// certificates, written as PEM files into dir.
type pki struct {
	dir  string
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
	next int64
}

func newPKI(t *testing.T, dir string) *pki {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fleetflow test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{dir: dir, ca: ca, key: key, next: 2}
	p.write(t, "ca.crt", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// issue writes <name>.crt and <name>.key for cn (a server when server).
func (p *pki) issue(t *testing.T, name, cn string, server bool) (certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.next), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	p.next++
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+".crt", "CERTIFICATE", der), p.write(t, name+".key", "EC PRIVATE KEY", kder)
}

// The shipped deploy/base/mosquitto/mosquitto.conf, run by a real Mosquitto
// (its paths and port rewritten to a temporary directory): only clients
// with a certificate of the site's CA get in, each known by its
// certificate's CN; fleetflow's workers connect with theirs through their
// own configuration (mqtt.tls) and hear a robot's state; a robot cannot
// forge another robot's state nor read another robot's order.
func TestDeployedBrokerConfig(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/base/mosquitto/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	m, err := site.Load("../../testdata/sites/warehouse-a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	acl, err := Generate([]*site.Map{m}, "fleetflow")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "fleetflow-deploy-") // readable by the mosquitto user
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := newPKI(t, dir)
	p.issue(t, "server", "localhost", true)
	svcCert, svcKey := p.issue(t, "fleetflow", "fleetflow", false)
	r1Cert, r1Key := p.issue(t, "amr-001", "acme/AMR-001", false)
	if err := os.WriteFile(filepath.Join(dir, "acl"), acl, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o777); err != nil {
		t.Fatal(err)
	}
	// The listener line is testbroker's (a free port on 127.0.0.1); every
	// option of the shipped file follows it.
	var lines []string
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "listener ") {
			continue
		}
		l = strings.ReplaceAll(l, "/mosquitto/config/", dir+"/")
		l = strings.ReplaceAll(l, "/mosquitto/acl/", dir+"/")
		l = strings.ReplaceAll(l, "/mosquitto/certs/", dir+"/")
		l = strings.ReplaceAll(l, "/mosquitto/data/", dir+"/data/")
		lines = append(lines, l)
	}
	broker, err := testbroker.NewWith(dir, strings.Join(lines, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Stop)
	url := strings.Replace(broker.URL, "tcp://", "ssl://", 1)

	// fleetflow's workers, through their own configuration.
	cfg := config.Default()
	cfg.MQTT.URL = url
	cfg.MQTT.TLS = config.TLS{Enabled: true, CAFile: filepath.Join(dir, "ca.crt"), CertFile: svcCert, KeyFile: svcKey, ServerName: "localhost"}
	var mu sync.Mutex
	heard := map[string]string{}
	sub := func(c mqtt.Client) {
		c.Subscribe("$share/bridge/uagv/v2/+/+/state", 1, func(_ mqtt.Client, msg mqtt.Message) {
			mu.Lock()
			heard[msg.Topic()] = string(msg.Payload())
			mu.Unlock()
		}).WaitTimeout(5 * time.Second)
	}
	svc, err := worker.NewMQTTClient(cfg, "fleetflow-test", sub)
	if err != nil {
		t.Fatalf("the workers' client with its certificate: %v", err)
	}
	defer svc.Disconnect(50)

	caPool := x509.NewCertPool()
	caPool.AddCert(p.ca)
	robot := func(certFile, keyFile string) (mqtt.Client, error) {
		tc := &tls.Config{RootCAs: caPool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
		if certFile != "" {
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("robot-" + filepath.Base(certFile)).SetTLSConfig(tc).SetAutoReconnect(false))
		tok := c.Connect()
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			return nil, tok.Error()
		}
		return c, nil
	}
	if c, err := robot("", ""); err == nil {
		c.Disconnect(50)
		t.Fatal("a client without a certificate got in")
	}
	r1, err := robot(r1Cert, r1Key)
	if err != nil {
		t.Fatalf("robot AMR-001 with its certificate: %v", err)
	}
	defer r1.Disconnect(50)
	stolen := false
	r1.Subscribe("uagv/v2/acme/AMR-002/order", 1, func(mqtt.Client, mqtt.Message) { mu.Lock(); stolen = true; mu.Unlock() }).WaitTimeout(5 * time.Second)
	k1, k2 := vda5050.RobotKey{Manufacturer: "acme", SerialNumber: "AMR-001"}, vda5050.RobotKey{Manufacturer: "acme", SerialNumber: "AMR-002"}
	r1.Publish(vda5050.TopicFor(k2, vda5050.TopicState), 1, false, "forged").WaitTimeout(5 * time.Second)
	r1.Publish(vda5050.TopicFor(k1, vda5050.TopicState), 1, false, "own").WaitTimeout(5 * time.Second)
	svc.Publish(vda5050.TopicFor(k2, vda5050.TopicOrder), 1, false, "for AMR-002").WaitTimeout(5 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		got := heard[vda5050.TopicFor(k1, vda5050.TopicState)]
		mu.Unlock()
		if got != "" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if heard[vda5050.TopicFor(k1, vda5050.TopicState)] != "own" {
		t.Fatalf("the workers did not hear AMR-001's state: %v", heard)
	}
	if v, ok := heard[vda5050.TopicFor(k2, vda5050.TopicState)]; ok {
		t.Fatalf("AMR-001 forged AMR-002's state: %q", v)
	}
	if stolen {
		t.Fatal("AMR-001 read AMR-002's order")
	}
}

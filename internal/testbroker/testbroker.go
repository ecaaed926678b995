// Package testbroker runs a real Mosquitto broker as a child process on a
// port of its own, so that tests and the fault-injection suite (`starter
// chaos`) can stop and restart the broker under fleetflow's clients (the
// shared broker on 127.0.0.1:1883 must not be touched). It is test support:
// no product path imports it.
package testbroker

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ErrNoMosquitto is wrapped when no mosquitto binary is found.
var ErrNoMosquitto = errors.New("mosquitto not installed (apt-get install mosquitto)")

// Mosquitto is a broker on 127.0.0.1:Port, anonymous, TCP_NODELAY, no
// persistence.
type Mosquitto struct {
	Port int
	URL  string // tcp://127.0.0.1:Port

	bin, conf string
	mu        sync.Mutex
	cmd       *exec.Cmd
	log       *bytes.Buffer
}

// Binary returns the mosquitto executable's path.
func Binary() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNoMosquitto
}

// Start runs a broker on a free port until the test ends. It fails the
// test when mosquitto is missing, naming what to install.
func Start(t testing.TB) *Mosquitto {
	t.Helper()
	m, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop() })
	return m
}

// New runs a broker on a free port, its configuration in dir; the caller
// stops it (Stop).
func New(dir string) (*Mosquitto, error) { return NewWith(dir, "allow_anonymous true\n") }

// NewWith runs a broker on a free port with the configuration lines extra
// (authentication, an ACL) after its listener; the caller stops it.
func NewWith(dir, extra string) (*Mosquitto, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(dir, "mosquitto.conf")
	cfg := fmt.Sprintf("listener %d 127.0.0.1\nset_tcp_nodelay true\npersistence false\nlog_dest stderr\n%s", port, extra)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	m := &Mosquitto{Port: port, URL: fmt.Sprintf("tcp://127.0.0.1:%d", port), bin: bin, conf: conf}
	if err := m.Resume(); err != nil {
		return nil, err
	}
	return m, nil
}

// Resume starts the broker (again) on its port and waits until it accepts
// connections (10 s at most).
func (m *Mosquitto) Resume() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return nil
	}
	m.log = &bytes.Buffer{}
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = m.log, m.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mosquitto: %w", err)
	}
	m.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.Port), 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("mosquitto on port %d did not come up: %s", m.Port, m.log.String())
}

// Stop stops the broker (SIGTERM, then SIGKILL after 5 s) and waits for it.
func (m *Mosquitto) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = m.cmd.Process.Kill()
		<-done
	}
	m.cmd = nil
}

// Kill stops the broker with SIGKILL, as a crash would.
func (m *Mosquitto) Kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
	m.cmd = nil
}

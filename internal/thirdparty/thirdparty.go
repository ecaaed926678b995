// Package thirdparty runs independent, third-party VDA 5050 vehicle
// implementations as child processes, so that end-to-end tests can check
// fleetflow against vehicles it did not write itself.
//
// It is test support: nothing in the product imports it. The one
// implementation so far is the npm package vda-5050-lib 1.4.0 (coatyio, MIT):
// its AgvController with a VirtualAgvAdapter, a VDA 5050 2.0 vehicle
// simulation, run by testdata/thirdparty/vda5050-lib/agv.js on Node.js. The
// library is used exactly as published; the dialect it speaks is recorded in
// vda5050lib_test.go and in testdata/vda5050/samples/vda5050-lib-2.0/.
//
// `make thirdparty` installs it (npm ci into
// testdata/thirdparty/vda5050-lib/node_modules). Without node or without that
// installation StartVDA5050Lib returns an error wrapping ErrNotInstalled.
package thirdparty

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotInstalled is wrapped by the error StartVDA5050Lib returns when node
// is not on PATH or the npm dependencies are not installed, so that a test
// can tell "not installed here" from "the vehicle misbehaved".
var ErrNotInstalled = errors.New("third-party VDA 5050 vehicle not installed")

// installHint is appended to every ErrNotInstalled error.
const installHint = "run `make thirdparty` (needs node and npm: apt-get install nodejs npm)"

// StopTimeout is how long Stop waits after SIGTERM before it sends SIGKILL.
const StopTimeout = 10 * time.Second

// AGV is one simulated vehicle: its identity and where it starts.
type AGV struct {
	Manufacturer, SerialNumber string
	// MapID, X, Y, Theta and LastNodeID are the vehicle's initial position
	// (the adapter's initialPosition).
	MapID      string
	X, Y       float64
	Theta      float64
	LastNodeID string
	// BatteryCharge is the initial charge in percent; 0 means the library's
	// default (100).
	BatteryCharge float64
	// Speed is the driving speed in m/s; 0 means the library's default (2).
	Speed float64
}

// Options configures StartVDA5050Lib.
type Options struct {
	// BrokerURL is the MQTT broker, written as in fleetflow
	// (tcp://host:port; ssl:// and tls:// work too) or as mqtt://host:port.
	BrokerURL string
	// InterfaceName is the first topic level; default "uagv".
	InterfaceName string
	// VDAVersion is the protocol version the vehicles speak; default "2.0.0".
	VDAVersion string
	// AGVs are the vehicles to run, at least one, each identity once.
	AGVs []AGV
	// TimeLapse speeds up the vehicles' clock (the adapter's timeLapse):
	// 4 drives, picks and drops four times as fast. 0 means 1.
	TimeLapse float64
	// Dir is the path of testdata/thirdparty/vda5050-lib (agv.js and its
	// node_modules). Required.
	Dir string
	// Stderr, if set, receives the process's stderr as it comes.
	Stderr io.Writer
}

// Process is a running agv.js with all its vehicles online.
type Process struct {
	cmd    *exec.Cmd
	tmpDir string
	stderr *tail
	stdin  io.Closer

	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed

	stopOnce sync.Once
	stopErr  error
}

// config is what agv.js reads.
type config struct {
	BrokerURL     string      `json:"brokerUrl"`
	InterfaceName string      `json:"interfaceName"`
	VDAVersion    string      `json:"vdaVersion"`
	TimeLapse     float64     `json:"timeLapse"`
	ExitOnStdin   bool        `json:"exitOnStdinClose"`
	AGVs          []configAGV `json:"agvs"`
}

type configAGV struct {
	Manufacturer  string   `json:"manufacturer"`
	SerialNumber  string   `json:"serialNumber"`
	MapID         string   `json:"mapId,omitempty"`
	X             float64  `json:"x"`
	Y             float64  `json:"y"`
	Theta         float64  `json:"theta"`
	LastNodeID    string   `json:"lastNodeId,omitempty"`
	BatteryCharge *float64 `json:"batteryCharge,omitempty"`
	Speed         *float64 `json:"speed,omitempty"`
}

// VDA5050LibInstalled reports whether StartVDA5050Lib can run with dir as
// Options.Dir: nil, or an error wrapping ErrNotInstalled that says what is
// missing (node on PATH, or dir/node_modules/vda-5050-lib).
func VDA5050LibInstalled(dir string) error {
	_, err := vda5050LibInstalled(dir)
	return err
}

func vda5050LibInstalled(dir string) (node string, err error) {
	node, err = exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("%w: node is not on PATH: %s", ErrNotInstalled, installHint)
	}
	lib := filepath.Join(dir, "node_modules", "vda-5050-lib", "package.json")
	if _, err := os.Stat(lib); err != nil {
		return "", fmt.Errorf("%w: %s is missing: %s", ErrNotInstalled, lib, installHint)
	}
	return node, nil
}

// StartVDA5050Lib starts `node agv.js` with the given vehicles and returns
// once every one of them has printed READY (connected, connection ONLINE
// published, order and instantActions subscribed, first state published).
// ctx bounds the start only; the process runs until Stop. If the process
// exits or ctx ends first, the error includes the tail of its stderr.
func StartVDA5050Lib(ctx context.Context, o Options) (*Process, error) {
	if o.Dir == "" {
		return nil, errors.New("thirdparty: Options.Dir is required (path to testdata/thirdparty/vda5050-lib)")
	}
	if o.BrokerURL == "" {
		return nil, errors.New("thirdparty: Options.BrokerURL is required")
	}
	if len(o.AGVs) == 0 {
		return nil, errors.New("thirdparty: Options.AGVs is empty")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("thirdparty: %w", err)
	}
	node, err := vda5050LibInstalled(dir)
	if err != nil {
		return nil, err
	}
	script := filepath.Join(dir, "agv.js")
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("thirdparty: %w", err)
	}

	cfg := config{
		BrokerURL:     jsBrokerURL(o.BrokerURL),
		InterfaceName: o.InterfaceName,
		VDAVersion:    o.VDAVersion,
		TimeLapse:     max(o.TimeLapse, 1),
		ExitOnStdin:   true,
	}
	if cfg.InterfaceName == "" {
		cfg.InterfaceName = "uagv"
	}
	if cfg.VDAVersion == "" {
		cfg.VDAVersion = "2.0.0"
	}
	pending := map[string]bool{}
	for _, a := range o.AGVs {
		if a.Manufacturer == "" || a.SerialNumber == "" {
			return nil, errors.New("thirdparty: every AGV needs Manufacturer and SerialNumber")
		}
		id := a.Manufacturer + "/" + a.SerialNumber
		if pending[id] {
			return nil, fmt.Errorf("thirdparty: AGV %s listed twice", id)
		}
		pending[id] = true
		c := configAGV{
			Manufacturer: a.Manufacturer, SerialNumber: a.SerialNumber,
			MapID: a.MapID, X: a.X, Y: a.Y, Theta: a.Theta, LastNodeID: a.LastNodeID,
		}
		if a.BatteryCharge != 0 {
			c.BatteryCharge = &a.BatteryCharge
		}
		if a.Speed != 0 {
			c.Speed = &a.Speed
		}
		cfg.AGVs = append(cfg.AGVs, c)
	}

	tmpDir, err := os.MkdirTemp("", "fleetflow-vda5050-lib-")
	if err != nil {
		return nil, fmt.Errorf("thirdparty: %w", err)
	}
	raw, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		os.RemoveAll(tmpDir)
		return nil, fmt.Errorf("thirdparty: %w", err)
	}
	cfgPath := filepath.Join(tmpDir, "agv-config.json")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		os.RemoveAll(tmpDir)
		return nil, fmt.Errorf("thirdparty: %w", err)
	}

	p := &Process{tmpDir: tmpDir, stderr: &tail{max: 8 << 10}, done: make(chan struct{})}
	cmd := exec.Command(node, script, cfgPath)
	cmd.Dir = dir
	if o.Stderr != nil {
		cmd.Stderr = io.MultiWriter(p.stderr, o.Stderr)
	} else {
		cmd.Stderr = p.stderr
	}
	// agv.js stops its vehicles when stdin closes (exitOnStdinClose), so they
	// do not outlive a test binary that dies without calling Stop.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		os.RemoveAll(tmpDir)
		return nil, fmt.Errorf("thirdparty: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(tmpDir)
		return nil, fmt.Errorf("thirdparty: %w", err)
	}
	p.cmd, p.stdin = cmd, stdin
	if err := cmd.Start(); err != nil {
		os.RemoveAll(tmpDir)
		return nil, fmt.Errorf("thirdparty: starting %s %s: %w", node, script, err)
	}

	ready := make(chan string, len(o.AGVs))
	stdoutDone := make(chan struct{})
	go func() {
		defer close(stdoutDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if id, ok := strings.CutPrefix(line, "READY "); ok {
				select {
				case ready <- id:
				default:
				}
				continue
			}
			// agv.js prints nothing else; keep anything unexpected visible.
			fmt.Fprintf(cmd.Stderr, "agv.js stdout: %s\n", line)
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		<-stdoutDone // all reads from the pipe are done before Wait
		p.waitErr = cmd.Wait()
		close(p.done)
	}()

	for len(pending) > 0 {
		select {
		case id := <-ready:
			delete(pending, id)
		case <-p.done:
			p.cleanup()
			return nil, fmt.Errorf("thirdparty: vda-5050-lib runner exited before all AGVs were ready (%v); stderr:\n%s", p.waitErr, p.stderr.String())
		case <-ctx.Done():
			p.kill()
			return nil, fmt.Errorf("thirdparty: waiting for READY from %s: %w; stderr:\n%s", strings.Join(keys(pending), ", "), ctx.Err(), p.stderr.String())
		}
	}
	return p, nil
}

// Stop sends SIGTERM, which makes every vehicle publish connection OFFLINE
// and disconnect, waits up to StopTimeout for the process to exit and then
// kills it. It returns an error if the process had to be killed or did not
// exit 0 (including when it had already exited on its own). Stop may be
// called more than once; later calls return the first result.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		defer p.cleanup()
		select {
		case <-p.done:
			if p.waitErr != nil {
				p.stopErr = fmt.Errorf("thirdparty: vda-5050-lib runner had exited before Stop: %v; stderr:\n%s", p.waitErr, p.stderr.String())
			}
			return
		default:
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			select {
			case <-p.done: // exited meanwhile
			default:
				p.kill()
				p.stopErr = fmt.Errorf("thirdparty: SIGTERM: %w", err)
				return
			}
		}
		timer := time.NewTimer(StopTimeout)
		defer timer.Stop()
		select {
		case <-p.done:
			if p.waitErr != nil {
				p.stopErr = fmt.Errorf("thirdparty: vda-5050-lib runner did not stop cleanly: %v; stderr:\n%s", p.waitErr, p.stderr.String())
			}
		case <-timer.C:
			p.kill()
			p.stopErr = fmt.Errorf("thirdparty: vda-5050-lib runner still running %s after SIGTERM; killed; stderr:\n%s", StopTimeout, p.stderr.String())
		}
	})
	return p.stopErr
}

// Done is closed when the process has exited, for whatever reason.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stderr returns the last few KiB the process wrote to stderr.
func (p *Process) Stderr() string { return p.stderr.String() }

func (p *Process) kill() {
	p.cmd.Process.Kill()
	<-p.done
	p.cleanup()
}

func (p *Process) cleanup() {
	if p.stdin != nil {
		p.stdin.Close()
	}
	os.RemoveAll(p.tmpDir)
}

// jsBrokerURL turns fleetflow's broker URL (tcp://, ssl://, tls://) into the
// scheme MQTT.js expects (mqtt://, mqtts://).
func jsBrokerURL(u string) string {
	for from, to := range map[string]string{"tcp://": "mqtt://", "ssl://": "mqtts://", "tls://": "mqtts://"} {
		if rest, ok := strings.CutPrefix(u, from); ok {
			return to + rest
		}
	}
	return u
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

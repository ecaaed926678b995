// Package sim is a virtual fleet of VDA 5050 2.0 robots for the local stack,
// the demo, end-to-end tests and benchmarks. Each robot is its own MQTT
// client (paho), drives orders node by node along their nodePositions, runs
// node actions, answers instant actions, installs signed software over the
// air (softwareUpdate, verified with internal/artifact), and can be told to
// misbehave (drop its connection, raise a FATAL error, stall, ship faulty
// software) so the unhappy paths of the workflows can be exercised against
// a real broker.
//
// What lives here: the robot model and its MQTT link. What must not: workflow
// code, fleet registry or database access, or protocol types (those are in
// internal/vda5050, whose Encode validates every message a robot sends
// against the official schema).
//
// Section numbers (§) refer to the VDA 5050 2.0 text.
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/fleetflow/fleetflow/internal/artifact"
	"github.com/fleetflow/fleetflow/internal/vda5050"
)

// Defaults applied by NewFleet to zero fields.
const (
	// DefaultStateInterval is the longest time between two state messages
	// (VDA 5050 §6.10: state at least every 30 s).
	DefaultStateInterval = 30 * time.Second
	// DefaultBatteryDrainPerMetre is in percent of charge per metre driven.
	DefaultBatteryDrainPerMetre = 0.01
	// DefaultChargePerSecond is how fast a virtual robot charges, percent
	// per second (a real one takes an hour or more; the virtual fleet is
	// for trying things out).
	DefaultChargePerSecond = 0.5
	// DefaultBattery is the initial charge in percent.
	DefaultBattery = 100.0
	// DefaultSoftwareVersion is reported when RobotConfig.SoftwareVersion is empty.
	DefaultSoftwareVersion = "0.0.0-sim"
	// FirstNodeTolerance is how far (metres) the first node of a new order may
	// lie from the robot: the first node must be trivially reachable
	// (VDA 5050 §6.6.4), farther away the order is refused with noRouteError.
	FirstNodeTolerance = 0.5
)

// connectParallelism bounds how many robots connect or disconnect at once,
// so a fleet of thousands does not hit the broker with a connect storm.
const connectParallelism = 64

// RobotConfig describes one virtual robot.
type RobotConfig struct {
	// Manufacturer and SerialNumber name the robot in its topics; only
	// A-Z a-z 0-9 _ . : - are allowed (VDA 5050 §6.1).
	Manufacturer, SerialNumber, Model string
	// StartNode is reported as lastNodeId until the first node is reached.
	StartNode string
	// X, Y in metres and Theta in radians: the initial pose on map MapID.
	X, Y, Theta float64
	MapID       string
	// Battery is the initial charge in percent; 0 means DefaultBattery.
	Battery float64
	// SoftwareVersion is reported in state.information (infoType
	// "softwareVersion") and the factsheet; empty means DefaultSoftwareVersion.
	SoftwareVersion string
	// ReleaseCounter is the Uptane release counter of the installed
	// software (0 = none known): a softwareUpdate to a lower counter (or
	// version) is refused unless it is an explicit rollback that the
	// release's signed manifest authorises (rollbackFrom names the
	// installed version; artifact.VerifyManifest).
	ReleaseCounter int64
	// Profile is how the robot speaks VDA 5050: its edition (topics,
	// header version, schemas), interface name, and the instantActions
	// dialect it reads — strictly: a message in another dialect is refused
	// with a validationError, as a real vehicle of that dialect does. The
	// zero value is 2.0.0 on uagv.
	Profile vda5050.Profile
	// EchoNodePositions makes the robot report each node state's
	// nodePosition exactly as the order gave it — without theta where the
	// order had none — as independent implementations do (the 2.0.0 state
	// schema requires theta there).
	EchoNodePositions bool
}

// Options apply to every robot of a fleet.
type Options struct {
	BrokerURL          string // e.g. tcp://127.0.0.1:1883 (tcp, mqtt, ssl, tls, mqtts)
	Username, Password string // optional
	// Speed is in metres per second along edges (capped by an edge's
	// maxSpeed); 0 teleports from node to node.
	Speed float64
	// ActionDuration is how long a node action (pick, drop, …) runs; 0 = instant.
	ActionDuration time.Duration
	// StateInterval is the longest time between two state messages;
	// 0 means DefaultStateInterval (VDA 5050 §6.10: at least every 30 s).
	StateInterval time.Duration
	// DrivingStateInterval, when positive and shorter, is the longest time
	// between two state messages while the vehicle drives or runs a node
	// action (vehicles commonly publish their state at 1–10 Hz then;
	// bench scale uses 100 ms, 10 states per second).
	DrivingStateInterval time.Duration
	// BatteryDrainPerMetre is in percent per metre; 0 means
	// DefaultBatteryDrainPerMetre, a negative value means no drain.
	BatteryDrainPerMetre float64
	// ChargePerSecond is how fast a robot charges after startCharging,
	// percent per second; 0 means DefaultChargePerSecond, negative none.
	ChargePerSecond float64
	// Logger receives connection events and rejected messages; nil = slog.Default().
	Logger *slog.Logger

	// TrustedKeys verify the manifests of softwareUpdate actions; nil
	// means the robots refuse every update (no trusted keys configured).
	TrustedKeys *artifact.Keyring
	// RebootDelay is how long a robot stays offline while it reboots after
	// a softwareUpdate; 0 means DefaultRebootDelay, a negative value
	// reboots at once.
	RebootDelay time.Duration
	// InstallDuration is how long the "installing" phase of a
	// softwareUpdate lasts; 0 = instant.
	InstallDuration time.Duration
	// HTTPClient downloads softwareUpdate artifacts and manifests; nil
	// means a client with a DefaultHTTPTimeout (30 s) timeout.
	HTTPClient *http.Client
}

// Fleet is a set of virtual robots sharing one broker and one Options.
type Fleet struct {
	opts   Options
	robots []*Robot
	bySN   map[string]*Robot
}

// NewFleet builds the robots; nothing connects before Start. Zero option
// and config fields take the defaults above.
func NewFleet(opts Options, robots []RobotConfig) *Fleet {
	if opts.StateInterval <= 0 {
		opts.StateInterval = DefaultStateInterval
	}
	if opts.BatteryDrainPerMetre == 0 {
		opts.BatteryDrainPerMetre = DefaultBatteryDrainPerMetre
	}
	if opts.BatteryDrainPerMetre < 0 {
		opts.BatteryDrainPerMetre = 0
	}
	if opts.ChargePerSecond == 0 {
		opts.ChargePerSecond = DefaultChargePerSecond
	}
	if opts.ChargePerSecond < 0 {
		opts.ChargePerSecond = 0
	}
	if opts.Speed < 0 {
		opts.Speed = 0
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RebootDelay == 0 {
		opts.RebootDelay = DefaultRebootDelay
	}
	if opts.InstallDuration < 0 {
		opts.InstallDuration = 0
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	f := &Fleet{opts: opts, bySN: make(map[string]*Robot, len(robots))}
	for _, cfg := range robots {
		r := newRobot(&f.opts, cfg)
		f.robots = append(f.robots, r)
		f.bySN[cfg.SerialNumber] = r
	}
	return f
}

// Start starts every robot and connects it to the broker. It returns once
// every robot is connected, subscribed to its order and instantActions
// topics and has published its retained ONLINE connection message
// (VDA 5050 §6.14), or with the first error (invalid identifiers,
// unreachable broker, ctx done). Robots already connected stay so; call
// Stop to take them down.
func (f *Fleet) Start(ctx context.Context) error {
	seen := make(map[vda5050.RobotKey]bool, len(f.robots))
	for _, r := range f.robots {
		if err := r.validate(); err != nil {
			return err
		}
		if seen[r.key] {
			// Two clients with one client ID kick each other off the broker.
			return fmt.Errorf("robot %s is configured twice", r.key)
		}
		seen[r.key] = true
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, connectParallelism)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, r := range f.robots {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.startLoop()
			if err := r.connect(ctx); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("robot %s: %w", r.key, err)
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start fleet: %w", err)
	}
	return nil
}

// Stop takes every robot down gracefully: it stops the robot's loop,
// publishes a retained OFFLINE connection message (the last will is not sent
// on a graceful disconnect, VDA 5050 §6.14) and disconnects. Robots whose
// connection was dropped stay disconnected.
func (f *Fleet) Stop() {
	sem := make(chan struct{}, connectParallelism)
	var wg sync.WaitGroup
	for _, r := range f.robots {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.stop()
		}()
	}
	wg.Wait()
}

// Robot returns the robot with that serial number, or nil.
func (f *Fleet) Robot(serial string) *Robot { return f.bySN[serial] }

// Robots returns every robot in the order given to NewFleet.
func (f *Fleet) Robots() []*Robot { return append([]*Robot(nil), f.robots...) }

func (r *Robot) validate() error {
	return errors.Join(
		vda5050.ValidIdentifier(r.cfg.Manufacturer),
		vda5050.ValidIdentifier(r.cfg.SerialNumber),
	)
}

package stack

import (
	"fmt"
	"net"
	"strings"
)

// portUse is one port the stack will bind, what binds it and how to move it.
type portUse struct {
	port int
	what string
	fix  string
}

// checkPorts reports the first port the stack would bind that is already in
// use. It reports rather than fights: nothing is killed or moved.
func checkPorts(o Options) error {
	uses := []portUse{{o.TemporalPort, "Temporal frontend", "set " + envTemporalPort}}
	if !o.Headless {
		uses = append(uses, portUse{o.UIPort, "Temporal Web UI", "set " + envUIPort + " or run headless"})
	}
	if o.TemporalHTTPPort != 0 {
		uses = append(uses, portUse{o.TemporalHTTPPort, "Temporal HTTP API", "choose another TemporalHTTPPort"})
	}
	if o.TemporalMetricsPort != 0 {
		uses = append(uses, portUse{o.TemporalMetricsPort, "Temporal metrics", "choose another TemporalMetricsPort"})
	}
	if o.MQTTURL == "" && o.MQTTPort != 0 {
		uses = append(uses, portUse{o.MQTTPort, "embedded MQTT broker",
			"set " + envMQTTPort + " (or, if it is Mosquitto, use it: " + envMQTTURL + "=tcp://" + hostPort(o.MQTTPort) + ")"})
	}
	if o.DatabaseURL == "" && o.PGPort != 0 {
		uses = append(uses, portUse{o.PGPort, "throwaway PostgreSQL", "set " + envPGPort + "=0 for any free port"})
	}
	seen := map[int]string{}
	for _, u := range uses {
		if u.port < 0 || u.port > 65535 {
			return fmt.Errorf("port %d (%s) is not a valid TCP port", u.port, u.what)
		}
		if prev, ok := seen[u.port]; ok {
			return fmt.Errorf("port %d is configured twice, for the %s and the %s — give each its own port", u.port, prev, u.what)
		}
		seen[u.port] = u.what
		if err := checkPortFree(u.port); err != nil {
			return fmt.Errorf("port %d (%s) is already in use — stop the other process or %s (%v)", u.port, u.what, u.fix, shortErr(err))
		}
	}
	return nil
}

// checkPortFree binds 127.0.0.1:port and releases it at once. A listener on
// 0.0.0.0 or [::] with the same port makes it fail too.
func checkPortFree(port int) error {
	l, err := net.Listen("tcp", hostPort(port))
	if err != nil {
		return err
	}
	return l.Close()
}

// pickFreePort asks the kernel for a free port on 127.0.0.1 that is not in
// taken, and records it there. Like the dev server's own picker it leaves a
// TIME_WAIT connection on the port, which keeps the kernel from handing the
// same port to another bind(:0) for a while (including the dev server's
// random picks for its internal services), while an explicit bind with
// SO_REUSEADDR still succeeds.
func pickFreePort(taken map[int]bool) (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("picking a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
			if sc, err := l.Accept(); err == nil {
				_ = sc.Close() // server side closes first: TIME_WAIT is on this port
			}
			_ = c.Close()
		}
		_ = l.Close()
		if !taken[port] {
			taken[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("picking a free port: the kernel kept returning taken ports")
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

// FreePort returns a free TCP port of 127.0.0.1, picked as the stack
// picks its own (see pickFreePort); another process may still take it
// before the caller binds it.
func FreePort() (int, error) { return pickFreePort(map[int]bool{}) }

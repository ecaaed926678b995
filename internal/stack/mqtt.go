package stack

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// startBroker runs the embedded mochi-mqtt broker on 127.0.0.1:port (0 = a
// free port), allowing every client. It binds the port itself, so the port
// it reports is the one it serves.
func (s *Stack) startBroker(port int) error {
	srv, url, err := s.newBroker(port)
	if err != nil {
		return err
	}
	s.broker = srv
	s.MQTTURL = url
	s.log.Info("embedded MQTT broker ready at " + s.MQTTURL)
	return nil
}

// StartSiteBroker runs one more embedded broker on 127.0.0.1:port (0 = a
// free port) and returns its URL, tcp://host:port: the local stack in
// multi-site mode gives each edge site its own broker, as each warehouse
// has one on its site network. Stop closes it.
func (s *Stack) StartSiteBroker(port int) (string, error) {
	srv, url, err := s.newBroker(port)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.siteBrokers = append(s.siteBrokers, srv)
	s.mu.Unlock()
	return url, nil
}

func (s *Stack) newBroker(port int) (*mqtt.Server, string, error) {
	ln, err := net.Listen("tcp", hostPort(port))
	if err != nil {
		return nil, "", fmt.Errorf("port %d (embedded MQTT broker) is already in use — stop the other process or set %s (%v)", port, envMQTTPort, shortErr(err))
	}
	// mochi logs every connection at Info; keep only its warnings.
	brokerLog := slog.New(minLevel{s.log.Handler(), slog.LevelWarn}).With("component", "mqtt")
	srv := mqtt.New(&mqtt.Options{InlineClient: false, Logger: brokerLog})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		_ = ln.Close()
		return nil, "", fmt.Errorf("embedded MQTT broker: %w", err)
	}
	if err := srv.AddListener(listeners.NewNet("tcp", ln)); err != nil {
		_ = ln.Close()
		return nil, "", fmt.Errorf("embedded MQTT broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, "", fmt.Errorf("embedded MQTT broker: %w", err)
	}
	return srv, "tcp://" + ln.Addr().String(), nil
}

// checkExternalMQTT dials the broker's TCP port (3 s).
func checkExternalMQTT(ctx context.Context, raw string) error {
	hint := fmt.Sprintf("start Mosquitto (`mosquitto -d -c /etc/mosquitto/mosquitto.conf`) or unset %s to use the embedded broker", envMQTTURL)
	addr, err := brokerAddr(raw)
	if err != nil {
		return fmt.Errorf("MQTT URL %q (%s): %v — %s", redactURL(raw), envMQTTURL, err, hint)
	}
	ctx, cancel := context.WithTimeout(ctx, externalCheckTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("MQTT broker at %s (%s) is not reachable: %v — %s", redactURL(raw), envMQTTURL, shortErr(err), hint)
	}
	return conn.Close()
}

// brokerAddr turns an MQTT URL (tcp, mqtt, ssl, tls, mqtts, ws, wss) into
// host:port, filling in the scheme's default port.
func brokerAddr(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	ports := map[string]string{"tcp": "1883", "mqtt": "1883", "ssl": "8883", "tls": "8883", "mqtts": "8883", "ws": "80", "wss": "443"}
	def, ok := ports[strings.ToLower(u.Scheme)]
	if !ok {
		return "", fmt.Errorf("unsupported scheme %q (want tcp://host:port, ssl://, ws:// …)", u.Scheme)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("no host")
	}
	port := u.Port()
	if port == "" {
		port = def
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// minLevel drops records below level.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(a), h.level}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.level}
}

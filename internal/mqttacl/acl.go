// Package mqttacl writes the Mosquitto ACL that fences each robot into its
// own VDA 5050 topics: a robot may publish only its own state, connection,
// visualization and factsheet, and read only its own order and
// instantActions (VDA 5050 §6.1 topic layout, in each robot's profile);
// fleetflow's service user may read every robot's telemetry and send every
// robot orders and instant actions. Nothing else is allowed: Mosquitto
// denies what no ACL line grants once an acl_file is set.
//
// Robots authenticate with the username "<manufacturer>/<serialNumber>"
// (a password file, or a client certificate with use_identity_as_username).
// Per-robot lines are written rather than %u patterns, because Mosquitto
// does not substitute a username that contains "/".
package mqttacl

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/internal/vda5050"
)

// Robot-side topics (§6.1): what a vehicle publishes and what it reads.
var (
	RobotWrites = []vda5050.Topic{vda5050.TopicState, vda5050.TopicConnection, vda5050.TopicVisualization, vda5050.TopicFactsheet}
	RobotReads  = []vda5050.Topic{vda5050.TopicOrder, vda5050.TopicInstantActions}
)

// Username is the MQTT username of robot k: "<manufacturer>/<serialNumber>".
func Username(k vda5050.RobotKey) string { return k.Manufacturer + "/" + k.SerialNumber }

// majors are the topic version levels a robot of profile p may use: its
// edition's, or for a profile that takes the version from the vehicle
// ("auto") every one fleetflow speaks.
func majors(p vda5050.Profile) []string {
	if p.Auto() {
		return []string{"v1", "v2"}
	}
	return []string{p.Resolve("").Edition().Major()}
}

// Generate returns the ACL for the robots of maps and the service user
// (config mqtt.username). Errors: an empty service user, or a service
// user that is also a robot's username.
func Generate(maps []*site.Map, serviceUser string) ([]byte, error) {
	if serviceUser == "" {
		return nil, fmt.Errorf("mqtt acl: the service user (mqtt.username) is empty")
	}
	var b bytes.Buffer
	fmt.Fprintln(&b, "# Mosquitto ACL for fleetflow, written by `starter fleet mqtt-acl`; do not edit by hand.")
	fmt.Fprintln(&b, "# Each robot may publish only its own telemetry and read only its own order and instantActions.")
	fmt.Fprintln(&b)
	type ifaceMajor struct{ iface, major string }
	service := map[ifaceMajor]bool{}
	type robotLines struct {
		user  string
		lines []string
	}
	var robots []robotLines
	for _, m := range maps {
		for _, r := range m.Robots {
			k := r.Key()
			if Username(k) == serviceUser {
				return nil, fmt.Errorf("mqtt acl: robot %s has the service user's name", k)
			}
			p := m.ProfileFor(r).Resolve("")
			rl := robotLines{user: Username(k)}
			for _, major := range majors(m.ProfileFor(r)) {
				service[ifaceMajor{p.InterfaceName, major}] = true
				prefix := p.InterfaceName + "/" + major + "/" + k.Manufacturer + "/" + k.SerialNumber + "/"
				for _, t := range RobotWrites {
					rl.lines = append(rl.lines, "topic write "+prefix+string(t))
				}
				for _, t := range RobotReads {
					rl.lines = append(rl.lines, "topic read "+prefix+string(t))
				}
			}
			robots = append(robots, rl)
		}
	}
	keys := make([]ifaceMajor, 0, len(service))
	for k := range service {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b ifaceMajor) int { return strings.Compare(a.iface+"/"+a.major, b.iface+"/"+b.major) })
	fmt.Fprintf(&b, "# fleetflow's workers (bridge and robot I/O)\nuser %s\n", serviceUser)
	for _, k := range keys {
		for _, t := range RobotWrites {
			fmt.Fprintf(&b, "topic read %s/%s/+/+/%s\n", k.iface, k.major, t)
		}
		for _, t := range RobotReads {
			fmt.Fprintf(&b, "topic write %s/%s/+/+/%s\n", k.iface, k.major, t)
		}
	}
	slices.SortFunc(robots, func(a, b robotLines) int { return strings.Compare(a.user, b.user) })
	for i, r := range robots {
		if i > 0 && robots[i-1].user == r.user {
			return nil, fmt.Errorf("mqtt acl: robot %s is in two site maps", r.user)
		}
		fmt.Fprintf(&b, "\nuser %s\n%s\n", r.user, strings.Join(r.lines, "\n"))
	}
	return b.Bytes(), nil
}

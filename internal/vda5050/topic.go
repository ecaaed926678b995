package vda5050

import (
	"fmt"
	"regexp"
	"strings"
)

// Topic names the last level of a VDA 5050 MQTT topic (§6.1).
type Topic string

const (
	TopicOrder          Topic = "order"
	TopicInstantActions Topic = "instantActions"
	TopicState          Topic = "state"
	TopicVisualization  Topic = "visualization"
	TopicConnection     Topic = "connection"
	TopicFactsheet      Topic = "factsheet"
)

// InterfaceName is the default profile's first topic level (Profile.InterfaceName).
const InterfaceName = "uagv"

// serialPattern: manufacturer and serial number may only contain
// A-Z a-z 0-9 _ . : - (VDA 5050 §6.1).
var serialPattern = regexp.MustCompile(`^[A-Za-z0-9_.:\-]+$`)

// ValidIdentifier reports whether s may be used as manufacturer or serial
// number in a topic (VDA 5050 §6.1: only A-Z a-z 0-9 _ . : -).
func ValidIdentifier(s string) error {
	if !serialPattern.MatchString(s) {
		return fmt.Errorf("%q: only A-Z a-z 0-9 _ . : - are allowed (VDA 5050 §6.1)", s)
	}
	return nil
}

// RobotKey identifies a robot by manufacturer and serial number.
type RobotKey struct {
	Manufacturer string
	SerialNumber string
}

// String returns "manufacturer/serialNumber", fleetflow's robot ID.
func (k RobotKey) String() string { return k.Manufacturer + "/" + k.SerialNumber }

// ParseRobotID splits "manufacturer/serialNumber".
func ParseRobotID(id string) (RobotKey, error) {
	m, s, ok := strings.Cut(id, "/")
	if !ok || m == "" || s == "" {
		return RobotKey{}, fmt.Errorf("robot ID %q: want manufacturer/serialNumber", id)
	}
	return RobotKey{m, s}, nil
}

// TopicFor builds uagv/v2/{manufacturer}/{serialNumber}/{topic}, the
// default profile's topic (Profile.Topic builds any profile's).
func TopicFor(k RobotKey, t Topic) string {
	return InterfaceName + "/" + MajorVersion + "/" + k.Manufacturer + "/" + k.SerialNumber + "/" + string(t)
}

// Subscription returns the wildcard filter for topic t of every robot:
// uagv/v2/+/+/{topic}.
func Subscription(t Topic) string {
	return InterfaceName + "/" + MajorVersion + "/+/+/" + string(t)
}

// ParseTopic splits a VDA 5050 topic
// {interfaceName}/{major}/{manufacturer}/{serialNumber}/{topic} (§6.1) into
// the robot and the topic kind. Any interface name is accepted (profiles
// choose it); the major level must be v1 or v2.
func ParseTopic(topic string) (RobotKey, Topic, error) {
	k, t, _, err := ParseTopicLevels(topic)
	return k, t, err
}

// ParseTopicLevels is ParseTopic that also returns the interface name.
func ParseTopicLevels(topic string) (k RobotKey, t Topic, interfaceName string, err error) {
	parts := strings.Split(topic, "/")
	if len(parts) != 5 || parts[0] == "" || (parts[1] != "v1" && parts[1] != "v2") || parts[2] == "" || parts[3] == "" {
		return RobotKey{}, "", "", fmt.Errorf("topic %q: want {interfaceName}/v1|v2/{manufacturer}/{serialNumber}/{topic}", topic)
	}
	switch t := Topic(parts[4]); t {
	case TopicOrder, TopicInstantActions, TopicState, TopicVisualization, TopicConnection, TopicFactsheet:
		return RobotKey{parts[2], parts[3]}, t, parts[0], nil
	default:
		return RobotKey{}, "", "", fmt.Errorf("topic %q: unknown topic level %q", topic, parts[4])
	}
}

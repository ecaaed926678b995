package vda5050

import (
	"sync"
	"time"
)

// TimestampLayout is ISO 8601 UTC with milliseconds, as VDA 5050 §6.2 asks.
const TimestampLayout = "2006-01-02T15:04:05.000Z"

// Timestamp formats t in UTC with TimestampLayout.
func Timestamp(t time.Time) string { return t.UTC().Format(TimestampLayout) }

// HeaderCounter hands out headerIds that count up per topic, per sender
// (VDA 5050 §6.2). It is safe for concurrent use. The zero value is ready.
type HeaderCounter struct {
	mu   sync.Mutex
	next map[string]uint32
}

// Next returns a filled header for a message to topic (a full MQTT topic
// or a Topic level; counters are kept per string).
func (c *HeaderCounter) Next(topic string, k RobotKey, now time.Time) Header {
	c.mu.Lock()
	if c.next == nil {
		c.next = make(map[string]uint32)
	}
	id := c.next[topic]
	c.next[topic] = id + 1
	c.mu.Unlock()
	return Header{HeaderID: id, Timestamp: Timestamp(now), Version: Version, Manufacturer: k.Manufacturer, SerialNumber: k.SerialNumber}
}

package schemas

import "time"

// The WMSEvents workflow's input and result: a Mission's child that
// delivers the mission's events to its WMS client's webhook.

// WMSEventsInput starts the WMSEvents workflow of one mission run.
type WMSEventsInput struct {
	// Client is the WMS client (config wms.clients) whose webhook hears
	// the events.
	Client    string `json:"client"`
	MissionID string `json:"missionId"`
	// Events are the first events; more come by signal SignalWMSEvents.
	Events []WMSEvent `json:"events"`
	// DeliveryTimeout is how long one event is retried before it is given
	// up (config wms.deliveryTimeout); zero = workflows.Timings.WebhookDeliveryTimeout.
	DeliveryTimeout time.Duration `json:"deliveryTimeout,omitempty"`
}

// WMSEventsResult counts what became of the events.
type WMSEventsResult struct {
	Delivered int `json:"delivered"`
	// GaveUp lists the IDs of events that were rejected (4xx) or still
	// failing after the delivery timeout; each is in the audit log as
	// wms.delivery.gave_up.
	GaveUp []string `json:"gaveUp,omitempty"`
	// Unfinished is set when no terminal event came within
	// workflows.Timings.WebhookIdleTimeout of the last one (the mission was
	// terminated, or reset).
	Unfinished bool `json:"unfinished,omitempty"`
}

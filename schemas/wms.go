package schemas

import (
	_ "embed"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fleetflow/fleetflow/internal/schemacheck"
)

// Mission events, POSTed to the webhook of the WMS client that started the
// mission, as CloudEvents 1.0 in structured JSON mode whose type is
// WMSEventTypePrefix + the kind (e.g. "dev.fleetflow.mission.completed") and
// whose data is a WMSEventData (wms-event.schema.json).
const (
	WMSEventQueued    = "queued"    // waiting for a free robot
	WMSEventAssigned  = "assigned"  // a robot is reserved (again after a failover)
	WMSEventPicked    = "picked"    // a pick step's action finished
	WMSEventDelivered = "delivered" // a drop step's action finished
	// WMSEventAwaitingOperator: the robot failed with the load on board;
	// an operator decides (update resolve).
	WMSEventAwaitingOperator = "awaiting_operator"
	WMSEventCompleted        = "completed"
	WMSEventFailed           = "failed"
	WMSEventCancelled        = "cancelled"

	// WMSEventTypePrefix prefixes the CloudEvents type attribute.
	WMSEventTypePrefix = "dev.fleetflow.mission."
)

// WMSEventKinds lists every kind, in the order a mission can go through them.
var WMSEventKinds = []string{
	WMSEventQueued, WMSEventAssigned, WMSEventPicked, WMSEventDelivered,
	WMSEventAwaitingOperator, WMSEventCompleted, WMSEventFailed, WMSEventCancelled,
}

// WMSEventSchema is wms-event.schema.json: the data of each mission event.
//
//go:embed wms-event.schema.json
var WMSEventSchema []byte

// WMSEventSchemaID is the $id of WMSEventSchema.
const WMSEventSchemaID = "https://fleetflow.dev/schemas/wms-event.schema.json"

var compiledWMSEventSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	return schemacheck.Compile("wms-event.schema.json", WMSEventSchemaID, WMSEventSchema)
})

// CompiledWMSEventSchema returns WMSEventSchema compiled (for tests and
// receivers written in Go).
func CompiledWMSEventSchema() (*jsonschema.Schema, error) { return compiledWMSEventSchema() }

// WMSEvent is one mission event as the workflow records it; the activity
// DeliverWebhook turns it into a CloudEvent.
type WMSEvent struct {
	// ID is unique per event and stable across delivery attempts
	// ("<workflowID>/<runID>/<sequence>"): the CloudEvents id and the
	// webhook-id header, for receivers that deduplicate.
	ID string `json:"id"`
	// Kind is one of WMSEventKinds.
	Kind string `json:"kind"`
	// Time is when it happened (workflow time), not when it was delivered.
	Time time.Time    `json:"time"`
	Data WMSEventData `json:"data"`
}

// Terminal reports whether the event ends the mission (no event follows).
func (e WMSEvent) Terminal() bool {
	return e.Kind == WMSEventCompleted || e.Kind == WMSEventFailed || e.Kind == WMSEventCancelled
}

// WMSEventData is the data of a mission event (wms-event.schema.json).
type WMSEventData struct {
	MissionID string `json:"missionId"`
	Site      string `json:"site"`
	// Sequence counts the mission's events from 1, in the order they
	// happened (deliveries can overtake each other only when one is given up).
	Sequence int `json:"sequence"`
	// State is the mission state after the event (Mission*: MissionQueued, …).
	State   string `json:"state"`
	RobotID string `json:"robotId,omitempty"`
	// QueuePosition (1 = next) while queued.
	QueuePosition int `json:"queuePosition,omitempty"`
	// Step is the index into the spec's steps of a picked or delivered
	// event, Station its station and Action pick or drop.
	Step    *int   `json:"step,omitempty"`
	Station string `json:"station,omitempty"`
	Action  string `json:"action,omitempty"`
	LoadID  string `json:"loadId,omitempty"`
	// Reason of a failed or cancelled mission, or of awaiting_operator;
	// ErrorType of a failed one (e.g. RobotFatalError).
	Reason    string `json:"reason,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	// RequestedBy is who started the mission (the WMS client's name).
	RequestedBy string `json:"requestedBy,omitempty"`
}

// WebhookOfInput asks activity WebhookOf whether WMS client Client has a
// webhook (config wms.clients).
type WebhookOfInput struct {
	Client string `json:"client"`
}

// WebhookOfResult: Webhook is true when it has one; DeliveryTimeout is how
// long each event is retried (wms.deliveryTimeout), 0 = the default.
type WebhookOfResult struct {
	Webhook         bool          `json:"webhook"`
	DeliveryTimeout time.Duration `json:"deliveryTimeout,omitempty"`
}

// DeliverWebhookInput asks activity DeliverWebhook to POST one event to
// the webhook of WMS client Client.
type DeliverWebhookInput struct {
	Client string   `json:"client"`
	Event  WMSEvent `json:"event"`
}

package sim

import (
	"fmt"
	"time"

	"github.com/fleetflow/fleetflow/internal/vda5050"
	"github.com/fleetflow/fleetflow/schemas"
)

// Factsheet is the minimal VDA 5050 2.0 factsheet a virtual robot publishes
// on …/factsheet when asked with factsheetRequest (§6.15). It carries every
// field the official 2.0.0 schema requires, down to the nested objects.
type Factsheet struct {
	vda5050.Header
	TypeSpecification  TypeSpecification  `json:"typeSpecification"`
	PhysicalParameters PhysicalParameters `json:"physicalParameters"`
	ProtocolLimits     ProtocolLimits     `json:"protocolLimits"`
	ProtocolFeatures   ProtocolFeatures   `json:"protocolFeatures"`
	AGVGeometry        struct{}           `json:"agvGeometry"`       // nothing to declare
	LoadSpecification  struct{}           `json:"loadSpecification"` // nothing to declare
	// VehicleConfig carries the installed software versions. The 2.0.0
	// schema does not define it but allows properties it does not name (it
	// sets no additionalProperties); the shape is 2.1's vehicleConfig, so a
	// 2.1 reader finds the versions where it looks for them.
	VehicleConfig *VehicleConfig `json:"vehicleConfig,omitempty"`
}

// VehicleConfig is VDA 5050 2.1's factsheet vehicleConfig, versions only.
type VehicleConfig struct {
	// Versions are key/value pairs, e.g. {"softwareVersion", "2.0.0"}.
	Versions []VersionEntry `json:"versions"`
}

// VersionEntry is one item of vehicleConfig.versions (2.1 factsheet).
type VersionEntry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// TypeSpecification: MaxLoadMass in kg.
type TypeSpecification struct {
	SeriesName        string   `json:"seriesName"`
	SeriesDescription string   `json:"seriesDescription,omitempty"`
	AGVKinematic      string   `json:"agvKinematic"` // DIFF, OMNI, THREEWHEEL
	AGVClass          string   `json:"agvClass"`     // FORKLIFT, CONVEYOR, TUGGER, CARRIER
	MaxLoadMass       float64  `json:"maxLoadMass"`
	LocalizationTypes []string `json:"localizationTypes"`
	NavigationTypes   []string `json:"navigationTypes"`
}

// PhysicalParameters: speeds in m/s, accelerations in m/s², sizes in metres.
type PhysicalParameters struct {
	SpeedMin        float64 `json:"speedMin"`
	SpeedMax        float64 `json:"speedMax"`
	AccelerationMax float64 `json:"accelerationMax"`
	DecelerationMax float64 `json:"decelerationMax"`
	HeightMax       float64 `json:"heightMax"`
	Width           float64 `json:"width"`
	Length          float64 `json:"length"`
}

// ProtocolLimits: the simulator sets no string or array limits.
type ProtocolLimits struct {
	MaxStringLens struct{} `json:"maxStringLens"`
	MaxArrayLens  struct{} `json:"maxArrayLens"`
	Timing        Timing   `json:"timing"`
}

// Timing in seconds.
type Timing struct {
	MinOrderInterval     float64 `json:"minOrderInterval"`
	MinStateInterval     float64 `json:"minStateInterval"`
	DefaultStateInterval float64 `json:"defaultStateInterval,omitempty"`
}

// ProtocolFeatures lists the optional fields and the actions the vehicle supports.
type ProtocolFeatures struct {
	OptionalParameters []OptionalParameter `json:"optionalParameters"`
	AGVActions         []AGVAction         `json:"agvActions"`
}

// OptionalParameter: Support is SUPPORTED or REQUIRED.
type OptionalParameter struct {
	Parameter string `json:"parameter"`
	Support   string `json:"support"`
}

// AGVAction is an action the vehicle can run; ActionScopes are INSTANT,
// NODE and/or EDGE.
type AGVAction struct {
	ActionType        string                 `json:"actionType"`
	ActionDescription string                 `json:"actionDescription,omitempty"`
	ActionScopes      []string               `json:"actionScopes"`
	ActionParameters  []FactsheetActionParam `json:"actionParameters,omitempty"`
}

// FactsheetActionParam: ValueDataType is BOOL, NUMBER, INTEGER, FLOAT,
// STRING, OBJECT or ARRAY.
type FactsheetActionParam struct {
	Key           string `json:"key"`
	ValueDataType string `json:"valueDataType"`
	IsOptional    bool   `json:"isOptional,omitempty"`
}

// Factsheet returns the robot's factsheet with an empty header.
func (r *Robot) Factsheet() Factsheet {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.factsheet()
}

// factsheet builds the factsheet; r.mu must be held.
func (r *Robot) factsheet() Factsheet {
	speedMax := r.opts.Speed
	if speedMax == 0 {
		speedMax = 2 // teleporting: any order speed is fine
	}
	series := r.cfg.Model
	if series == "" {
		series = "fleetflow-sim"
	}
	instant := []string{"INSTANT"}
	return Factsheet{
		Header: vda5050.Header{Version: r.profile.Version, Manufacturer: r.key.Manufacturer, SerialNumber: r.key.SerialNumber},
		TypeSpecification: TypeSpecification{
			SeriesName:        series,
			SeriesDescription: "fleetflow virtual VDA 5050 robot",
			AGVKinematic:      "DIFF",
			AGVClass:          "CARRIER",
			MaxLoadMass:       500,
			LocalizationTypes: []string{"NATURAL"},
			NavigationTypes:   []string{"AUTONOMOUS"},
		},
		PhysicalParameters: PhysicalParameters{
			SpeedMin: 0, SpeedMax: speedMax, AccelerationMax: 1, DecelerationMax: 1,
			HeightMax: 0.5, Width: 0.8, Length: 1.2,
		},
		ProtocolLimits: ProtocolLimits{Timing: Timing{
			MinOrderInterval:     0,
			MinStateInterval:     0,
			DefaultStateInterval: r.opts.StateInterval.Seconds(),
		}},
		ProtocolFeatures: ProtocolFeatures{
			OptionalParameters: []OptionalParameter{
				{Parameter: "order.nodes.nodePosition", Support: "REQUIRED"},
				{Parameter: "order.edges.maxSpeed", Support: "SUPPORTED"},
			},
			AGVActions: []AGVAction{
				{ActionType: vda5050.ActionPick, ActionScopes: []string{"NODE"}},
				{ActionType: vda5050.ActionDrop, ActionScopes: []string{"NODE"}},
				{ActionType: vda5050.ActionCancelOrder, ActionScopes: instant},
				{ActionType: vda5050.ActionStartPause, ActionScopes: instant},
				{ActionType: vda5050.ActionStopPause, ActionScopes: instant},
				{ActionType: vda5050.ActionStateRequest, ActionScopes: instant},
				{ActionType: vda5050.ActionStartCharging, ActionScopes: instant},
				{ActionType: vda5050.ActionStopCharging, ActionScopes: instant},
				{ActionType: vda5050.ActionFactsheetRequest, ActionScopes: instant},
				{ActionType: ActionDiagnostics, ActionDescription: "self-test; the result is the actionState's resultDescription", ActionScopes: instant},
				{ActionType: ActionSimDropConnection, ActionDescription: "close the MQTT connection without DISCONNECT", ActionScopes: instant},
				{ActionType: ActionSimFatal, ActionDescription: "raise a FATAL error", ActionScopes: instant, ActionParameters: []FactsheetActionParam{
					{Key: "errorType", ValueDataType: "STRING", IsOptional: true},
					{Key: "description", ValueDataType: "STRING", IsOptional: true},
				}},
				{ActionType: ActionSimStall, ActionDescription: "stop or restore progress silently", ActionScopes: instant, ActionParameters: []FactsheetActionParam{
					{Key: "on", ValueDataType: "BOOL", IsOptional: true},
				}},
				{ActionType: ActionSimClearErrors, ActionDescription: "clear every error", ActionScopes: instant},
				{ActionType: schemas.ActionSoftwareUpdate, ActionDescription: "download, verify and install signed software, then reboot", ActionScopes: instant, ActionParameters: []FactsheetActionParam{
					{Key: "artifactUrl", ValueDataType: "STRING"},
					{Key: "manifestUrl", ValueDataType: "STRING"},
					{Key: "signature", ValueDataType: "STRING"},
					{Key: "sha256", ValueDataType: "STRING"},
					{Key: "version", ValueDataType: "STRING"},
					{Key: "rollback", ValueDataType: "BOOL", IsOptional: true},
				}},
			},
		},
		VehicleConfig: &VehicleConfig{Versions: r.versions()},
	}
}

// versions lists the installed software for the factsheet's
// vehicleConfig.versions: the keys match state.information's infoTypes.
func (r *Robot) versions() []VersionEntry {
	vs := []VersionEntry{{Key: InfoSoftwareVersion, Value: r.softwareVersion}}
	if r.previousVersion != "" {
		vs = append(vs, VersionEntry{Key: InfoPreviousSoftwareVersion, Value: r.previousVersion})
	}
	return vs
}

// queueFactsheet validates the factsheet and puts it in the outbox. VDA
// 5050 1.1 has no factsheet: a 1.1 robot refuses factsheetRequest.
func (r *Robot) queueFactsheet(now time.Time) error {
	if !r.profile.Edition().HasTopic(vda5050.TopicFactsheet) {
		return fmt.Errorf("VDA 5050 %s has no factsheet", r.profile.Version)
	}
	topic := r.profile.Topic(r.key, vda5050.TopicFactsheet)
	fs := r.factsheet()
	fs.Header = r.header(topic, now)
	raw, err := r.profile.Encode(vda5050.TopicFactsheet, fs)
	if err != nil {
		return err
	}
	r.outbox = append(r.outbox, outMsg{topic: topic, raw: raw})
	return nil
}

package schemas

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// Every field of WMSEventData is in wms-event.schema.json (which refuses
// unknown properties): an event fleetflow sends always passes the schema a
// WMS team validates with.
func TestWMSEventDataMatchesSchema(t *testing.T) {
	sch, err := CompiledWMSEventSchema()
	if err != nil {
		t.Fatal(err)
	}
	step := 0
	full := WMSEventData{MissionID: "m-1", Site: "warehouse-a", Sequence: 2, State: "FAILED", RobotID: "acme/1", QueuePosition: 1,
		Step: &step, Station: "dock-1", Action: "pick", LoadID: "p-1", Reason: "robot FATAL", ErrorType: "RobotFatalError", RequestedBy: "wms-a"}
	v := reflect.ValueOf(full)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Fatalf("fill field %s in this test", v.Type().Field(i).Name)
		}
	}
	raw, _ := json.Marshal(full)
	var doc any
	json.Unmarshal(raw, &doc)
	if err := sch.Validate(doc); err != nil {
		t.Fatalf("a full event breaks the schema: %v", err)
	}
	for name, bad := range map[string]string{
		"unknown property": `{"missionId":"m-1","site":"s","sequence":1,"state":"QUEUED","extra":1}`,
		"sequence 0":       `{"missionId":"m-1","site":"s","sequence":0,"state":"QUEUED"}`,
		"unknown state":    `{"missionId":"m-1","site":"s","sequence":1,"state":"FLYING"}`,
		"no missionId":     `{"site":"s","sequence":1,"state":"QUEUED"}`,
	} {
		var d any
		json.Unmarshal([]byte(bad), &d)
		if err := sch.Validate(d); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if !strings.HasPrefix(WMSEventTypePrefix, "dev.fleetflow.") {
		t.Fatal(WMSEventTypePrefix)
	}
}

package wms

import (
	"context"
	"errors"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetflow/fleetflow/schemas"
)

// takenID is a Temporal whose mission workflow already exists: a start is
// refused, its history holds the input it started with, its status
// query answers queryErr (or status).
type takenID struct {
	client.Client // nil: a call the fake does not expect panics
	input         schemas.MissionInput
	status        schemas.MissionStatus
	queryErr      error
}

func (f *takenID) ExecuteWorkflow(context.Context, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("started", "", "run-1")
}

type oneEvent struct{ ev *historypb.HistoryEvent }

func (o *oneEvent) HasNext() bool { return o.ev != nil }
func (o *oneEvent) Next() (*historypb.HistoryEvent, error) {
	ev := o.ev
	o.ev = nil
	return ev, nil
}

func (f *takenID) GetWorkflowHistory(context.Context, string, string, bool, enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	in, _ := converter.GetDefaultDataConverter().ToPayloads(f.input)
	return &oneEvent{&historypb.HistoryEvent{Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
		WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{Input: in}}}}
}

func (f *takenID) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	state, _ := converter.GetDefaultDataConverter().ToPayload(schemas.MissionQueued)
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: "mission-m-1", RunId: "run-1"},
		StartTime: timestamppb.New(time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)),
		SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{
			schemas.SearchAttrMissionState: state}},
	}}, nil
}

func (f *takenID) QueryWorkflow(context.Context, string, string, string, ...any) (converter.EncodedValue, error) {
	if f.queryErr != nil {
		return nil, f.queryErr
	}
	return statusValue{f.status}, nil
}

// statusValue decodes as the SDK's default data converter does.
type statusValue struct{ st schemas.MissionStatus }

func (v statusValue) HasValue() bool { return true }
func (v statusValue) Get(ptr any) error {
	p, err := converter.GetDefaultDataConverter().ToPayload(v.st)
	if err != nil {
		return err
	}
	return converter.GetDefaultDataConverter().FromPayload(p, ptr)
}

// A retried submission of a mission that exists: the same spec is that
// mission (not created), another a conflict; a mission that cannot answer
// its status yet is told from its search attributes, but any other
// failure of the query is one.
func TestStartMissionFindsTheExistingMission(t *testing.T) {
	spec := schemas.MissionSpec{MissionID: "m-1", Site: "warehouse-a", Priority: 5,
		Steps: []schemas.MissionStep{{Station: "inbound-1", Action: "pick"}}}
	ctx := context.Background()
	f := &takenID{input: schemas.MissionInput{Spec: spec, Client: "wms-a"}, status: schemas.MissionStatus{MissionID: "m-1", State: schemas.MissionDriving}}

	sub, err := StartMission(ctx, f, nil, "missions", spec, "wms-a", "wms:wms-a")
	if err != nil || sub.Created || sub.Status.State != schemas.MissionDriving || sub.RunID != "run-1" {
		t.Fatalf("same spec: %+v %v", sub, err)
	}
	other := spec
	other.MinBattery = 50
	if _, err := StartMission(ctx, f, nil, "missions", other, "wms-a", "wms:wms-a"); !errors.Is(err, ErrConflict) {
		t.Fatalf("another spec: want ErrConflict, got %v", err)
	}
	if _, err := StartMission(ctx, f, nil, "missions", spec, "wms-b", "wms:wms-b"); !errors.Is(err, ErrConflict) {
		t.Fatalf("another client: want ErrConflict, got %v", err)
	}

	f.queryErr = serviceerror.NewWorkflowNotReady("workflow task not completed")
	sub, err = StartMission(ctx, f, nil, "missions", spec, "wms-a", "wms:wms-a")
	if err != nil || sub.Created || sub.Status.State != schemas.MissionQueued || sub.Status.StartedAt.IsZero() {
		t.Fatalf("not ready: want the state from the search attributes, got %+v %v", sub, err)
	}
	f.queryErr = serviceerror.NewUnavailable("connection refused")
	if _, err := StartMission(ctx, f, nil, "missions", spec, "wms-a", "wms:wms-a"); err == nil {
		t.Fatal("a query that failed must not be answered as a status")
	}
}

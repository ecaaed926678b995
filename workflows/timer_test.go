package workflows

import (
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// waitProbe waits an hour for a condition that never comes true.
func waitProbe(ctx workflow.Context) error {
	var t waitTimer
	_, err := t.await(ctx, time.Hour, func() bool { return false })
	return err
}

// A workflow cancelled while it waits ends the wait with a CanceledError.
// In the real SDK the cancellation makes the timer ready before the waiting
// coroutine runs; a waitTimer that took that for an early timer re-armed
// on the cancelled context forever ("didn't yield", TMPRL1101). The test
// environment cancels timers later, so this replays a history instead:
// started, timer, cancel requested, and the workflow task that sees it
// cancels the timer and the workflow.
func TestWaitTimerEndsOnCancel(t *testing.T) {
	now := time.Now()
	var id int64
	ev := func(typ enumspb.EventType, set func(e *historypb.HistoryEvent)) *historypb.HistoryEvent {
		id++
		e := &historypb.HistoryEvent{EventId: id, EventType: typ, EventTime: timestamppb.New(now)}
		set(e)
		return e
	}
	tq := &taskqueuepb.TaskQueue{Name: "tq"}
	scheduled := func(e *historypb.HistoryEvent) {
		e.Attributes = &historypb.HistoryEvent_WorkflowTaskScheduledEventAttributes{WorkflowTaskScheduledEventAttributes: &historypb.WorkflowTaskScheduledEventAttributes{TaskQueue: tq}}
	}
	started := func(sched int64) func(e *historypb.HistoryEvent) {
		return func(e *historypb.HistoryEvent) {
			e.Attributes = &historypb.HistoryEvent_WorkflowTaskStartedEventAttributes{WorkflowTaskStartedEventAttributes: &historypb.WorkflowTaskStartedEventAttributes{ScheduledEventId: sched}}
		}
	}
	h := &historypb.History{Events: []*historypb.HistoryEvent{
		ev(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, func(e *historypb.HistoryEvent) {
			e.Attributes = &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
				WorkflowType: &commonpb.WorkflowType{Name: "waitProbe"}, TaskQueue: tq,
				WorkflowTaskTimeout: durationpb.New(10 * time.Second), OriginalExecutionRunId: "run-1", FirstExecutionRunId: "run-1"}}
		}),
		ev(enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, scheduled),
		ev(enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, started(2)),
		ev(enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, func(e *historypb.HistoryEvent) {
			e.Attributes = &historypb.HistoryEvent_WorkflowTaskCompletedEventAttributes{WorkflowTaskCompletedEventAttributes: &historypb.WorkflowTaskCompletedEventAttributes{ScheduledEventId: 2, StartedEventId: 3}}
		}),
		ev(enumspb.EVENT_TYPE_TIMER_STARTED, func(e *historypb.HistoryEvent) {
			e.Attributes = &historypb.HistoryEvent_TimerStartedEventAttributes{TimerStartedEventAttributes: &historypb.TimerStartedEventAttributes{
				TimerId: "5", StartToFireTimeout: durationpb.New(time.Hour), WorkflowTaskCompletedEventId: 4}}
		}),
		ev(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED, func(e *historypb.HistoryEvent) {
			e.Attributes = &historypb.HistoryEvent_WorkflowExecutionCancelRequestedEventAttributes{WorkflowExecutionCancelRequestedEventAttributes: &historypb.WorkflowExecutionCancelRequestedEventAttributes{}}
		}),
		ev(enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, scheduled),
		ev(enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, started(7)),
		ev(enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, func(e *historypb.HistoryEvent) {
			e.Attributes = &historypb.HistoryEvent_WorkflowTaskCompletedEventAttributes{WorkflowTaskCompletedEventAttributes: &historypb.WorkflowTaskCompletedEventAttributes{ScheduledEventId: 7, StartedEventId: 8}}
		}),
		// What the task decides: the timer cancelled, the workflow cancelled.
		ev(enumspb.EVENT_TYPE_TIMER_CANCELED, func(e *historypb.HistoryEvent) {
			e.Attributes = &historypb.HistoryEvent_TimerCanceledEventAttributes{TimerCanceledEventAttributes: &historypb.TimerCanceledEventAttributes{
				TimerId: "5", StartedEventId: 5, WorkflowTaskCompletedEventId: 9}}
		}),
		ev(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, func(e *historypb.HistoryEvent) {
			e.Attributes = &historypb.HistoryEvent_WorkflowExecutionCanceledEventAttributes{WorkflowExecutionCanceledEventAttributes: &historypb.WorkflowExecutionCanceledEventAttributes{WorkflowTaskCompletedEventId: 9}}
		}),
	}}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(waitProbe)
	done := make(chan error, 1)
	go func() { done <- r.ReplayWorkflowHistory(nil, h) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("replaying a cancel during a wait: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the wait did not end on cancel")
	}
}

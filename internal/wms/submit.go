// Package wms is fleetflow's side of the warehouse management system
// contract: idempotent mission submission (update-with-start keyed by the
// mission ID, which is the WMS order ID) used by the CLI and the REST
// ingress. Its names and payloads are documented in the README and in
// schemas/updates/*.schema.json, so a WMS with a Temporal client of its own
// can do the same without this package.
package wms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/fleetflow/fleetflow/schemas"
)

// ErrConflict is a mission ID that already names a mission with another
// spec (or WMS client).
var ErrConflict = errors.New("mission conflict")

// Submission is what SubmitMission did.
type Submission struct {
	WorkflowID string
	RunID      string
	Status     schemas.MissionStatus
	// Created: this call started the mission; false when it existed (a
	// retried request), whether running or ended.
	Created bool
}

// StartOptions are the StartWorkflowOptions of a mission: workflow ID
// mission-<id>, task queue taskQueue, the search attributes (WmsClient when
// wmsClient is not "") and Web UI summary. conflict says what a start does
// when the workflow is running.
func StartOptions(taskQueue string, spec schemas.MissionSpec, wmsClient string, conflict enumspb.WorkflowIdConflictPolicy) client.StartWorkflowOptions {
	steps := make([]string, len(spec.Steps))
	for i, s := range spec.Steps {
		steps[i] = s.Action + "@" + s.Station
	}
	summary := fmt.Sprintf("Mission %s · %s · %s · priority %d", spec.MissionID, spec.Site, strings.Join(steps, " → "), spec.Priority)
	if spec.Load != nil && spec.Load.LoadID != "" {
		summary += " · load " + spec.Load.LoadID
	}
	sa := []temporal.SearchAttributeUpdate{
		temporal.NewSearchAttributeKeyKeyword(schemas.SearchAttrSite).ValueSet(spec.Site),
		temporal.NewSearchAttributeKeyInt64(schemas.SearchAttrPriority).ValueSet(int64(spec.Priority)),
		temporal.NewSearchAttributeKeyKeyword(schemas.SearchAttrMissionState).ValueSet(schemas.MissionValidating),
	}
	if wmsClient != "" {
		sa = append(sa, temporal.NewSearchAttributeKeyKeyword(schemas.SearchAttrWMSClient).ValueSet(wmsClient))
	}
	return client.StartWorkflowOptions{
		ID:                       schemas.MissionWorkflowID(spec.MissionID),
		TaskQueue:                taskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: conflict,
		StaticSummary:            summary,
		TypedSearchAttributes:    temporal.NewSearchAttributes(sa...),
	}
}

// SubmitMission starts spec as a mission for WMS client wmsClient, or finds
// the mission its ID already started: one update-with-start (update
// accept, conflict policy USE_EXISTING), so concurrent or retried requests
// for one mission ID make one workflow, and each gets its status. A mission
// ID already used with another spec or client is ErrConflict; so is one
// whose workflow has ended with another spec. spec must be valid
// (schemas.ParseMission); requestedBy is audited.
//
// dc is the data converter of c (with the payload codec when payloads are
// encrypted, FLEETFLOW_TEMPORAL_PAYLOAD_KEY): an ended mission's input is
// read from its history with it. nil = the SDK's default.
func SubmitMission(ctx context.Context, c client.Client, dc converter.DataConverter, taskQueue string, spec schemas.MissionSpec, wmsClient, requestedBy string) (Submission, error) {
	opts := StartOptions(taskQueue, spec, wmsClient, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING)
	op := c.NewWithStartWorkflowOperation(opts, schemas.MissionWorkflowType,
		schemas.MissionInput{Spec: spec, RequestedBy: requestedBy, Client: wmsClient})
	h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: op,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   schemas.UpdateAccept,
			Args:         []any{schemas.AcceptRequest{Spec: spec, Client: wmsClient}},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	sub := Submission{WorkflowID: opts.ID}
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		// The workflow has ended: the request is a retry when its spec is the one it ran.
		return existing(ctx, c, dc, spec, wmsClient, sub)
	}
	if err != nil {
		return sub, conflictOr(err)
	}
	var res schemas.AcceptResult
	if err := h.Get(ctx, &res); err != nil {
		return sub, conflictOr(err)
	}
	sub.RunID, sub.Status, sub.Created = h.RunID(), res.Status, res.Created
	return sub, nil
}

// StartMission does what SubmitMission does, answering as soon as the
// Temporal server has the workflow: a plain start (reuse policy
// REJECT_DUPLICATE, a running or ended workflow of the ID refuses it), and
// when the ID is taken, the existing mission's input is compared with spec
// (ErrConflict when it differs) and its status read. A new mission's status
// is the one it starts with (VALIDATING). Concurrent calls for one ID make
// one workflow: the server lets exactly one start through.
//
// It is what the REST ingress uses: SubmitMission's accept update is
// answered only when the mission's first workflow task completes, and that
// task runs the mission's dispatch (site check, reservation, order), which
// made it ~5× slower than a start at 50 requests in flight (README,
// Benchmarks). dc as SubmitMission's. Errors: ErrConflict, or Temporal's.
func StartMission(ctx context.Context, c client.Client, dc converter.DataConverter, taskQueue string, spec schemas.MissionSpec, wmsClient, requestedBy string) (Submission, error) {
	opts := StartOptions(taskQueue, spec, wmsClient, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL)
	opts.WorkflowExecutionErrorWhenAlreadyStarted = true
	run, err := c.ExecuteWorkflow(ctx, opts, schemas.MissionWorkflowType,
		schemas.MissionInput{Spec: spec, RequestedBy: requestedBy, Client: wmsClient})
	sub := Submission{WorkflowID: opts.ID}
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return existing(ctx, c, dc, spec, wmsClient, sub)
	}
	if err != nil {
		return sub, err
	}
	now := time.Now()
	sub.RunID, sub.Created = run.GetRunID(), true
	sub.Status = schemas.MissionStatus{MissionID: spec.MissionID, Site: spec.Site, Priority: spec.Priority,
		State: schemas.MissionValidating, StartedAt: now, UpdatedAt: now}
	return sub, nil
}

func conflictOr(err error) error {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.Type() == schemas.ErrMissionConflict {
		return fmt.Errorf("%w: %s", ErrConflict, ae.Message())
	}
	return err
}

// existing answers a submission of a mission whose workflow exists (running
// or closed), from its first event (the input it started with, read with
// dc) and its status query. A mission whose status cannot be queried yet
// (its first workflow task has not run: just started, or no worker
// polls) is answered from its search attributes: it exists, the retry is
// not an error.
func existing(ctx context.Context, c client.Client, dc converter.DataConverter, spec schemas.MissionSpec, wmsClient string, sub Submission) (Submission, error) {
	if dc == nil {
		dc = converter.GetDefaultDataConverter()
	}
	iter := c.GetWorkflowHistory(ctx, sub.WorkflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !iter.HasNext() {
		return sub, fmt.Errorf("mission %s: its workflow has ended but has no history", spec.MissionID)
	}
	first, err := iter.Next()
	if err != nil {
		return sub, err
	}
	attrs := first.GetWorkflowExecutionStartedEventAttributes()
	var in schemas.MissionInput
	if err := dc.FromPayloads(attrs.GetInput(), &in); err != nil {
		return sub, fmt.Errorf("mission %s: read its input: %w", spec.MissionID, err)
	}
	if !schemas.SameSpec(in.Spec, spec) || in.Client != wmsClient {
		return sub, fmt.Errorf("%w: mission %s was started with another spec or client; a mission ID names one mission (send its own spec to get its status, or use a new ID)", ErrConflict, spec.MissionID)
	}
	desc, err := c.DescribeWorkflowExecution(ctx, sub.WorkflowID, "")
	if err != nil {
		return sub, err
	}
	info := desc.GetWorkflowExecutionInfo()
	sub.RunID = info.GetExecution().GetRunId()
	v, err := c.QueryWorkflow(ctx, sub.WorkflowID, sub.RunID, schemas.QueryStatus)
	if err == nil {
		return sub, v.Get(&sub.Status)
	}
	// Not ready to answer (its first workflow task has not run; no worker
	// polls yet): its search attributes say as much as there is to say.
	// Any other failure is one.
	var notReady *serviceerror.WorkflowNotReady
	var precondition *serviceerror.FailedPrecondition
	var deadline *serviceerror.DeadlineExceeded
	if ctx.Err() != nil || !(errors.As(err, &notReady) || errors.As(err, &precondition) || errors.As(err, &deadline)) {
		return sub, fmt.Errorf("mission %s exists; its status: %w", spec.MissionID, err)
	}
	sub.Status = schemas.MissionStatus{MissionID: spec.MissionID, Site: spec.Site, Priority: spec.Priority, State: schemas.MissionValidating}
	if st := info.GetStartTime(); st != nil {
		sub.Status.StartedAt, sub.Status.UpdatedAt = st.AsTime(), st.AsTime()
	}
	f := info.GetSearchAttributes().GetIndexedFields()
	if p := f[schemas.SearchAttrMissionState]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &sub.Status.State)
	}
	if p := f[schemas.SearchAttrRobotID]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &sub.Status.RobotID)
	}
	return sub, nil
}

// Package ingress is fleetflow's REST ingress for warehouse management
// systems that speak HTTP rather than Temporal: it starts missions
// idempotently (internal/wms.StartMission), reads and lists them, and
// sends them the mission updates cancel, pause, resume and reprioritize.
// The contract is schemas/openapi.yaml; a test checks this server against
// it. Every request is authenticated with a WMS client's API key, and every
// authenticated one audited under that client's name. It holds no workflow logic.
package ingress

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/fleetflow/fleetflow/internal/schemacheck"
	"github.com/fleetflow/fleetflow/internal/site"
	"github.com/fleetflow/fleetflow/internal/wms"
	"github.com/fleetflow/fleetflow/schemas"
)

// Auditor writes one audit row (activities/store.Store does).
type Auditor interface {
	Audit(ctx context.Context, actor, kind, subject string, details any) error
}

// Client is a WMS client allowed to use the ingress.
type Client struct {
	Name   string
	APIKey string
}

// Options configure a Server.
type Options struct {
	Temporal client.Client
	// DataConverter is Temporal's (with the payload codec when payloads
	// are encrypted); nil = the SDK's default.
	DataConverter converter.DataConverter
	TaskQueue     string // the missions task queue
	// Clients with their API keys; a request authenticates as the one
	// whose key it sends ("Authorization: Bearer <key>").
	Clients []Client
	// Sites, when not nil, are the site maps a mission is checked against
	// before anything starts (stations, actions, routes, capabilities).
	Sites map[string]*site.Map
	Audit Auditor
	// MaxBody bounds a request body in bytes (larger: 413).
	MaxBody int64
	// UpdateTimeout bounds how long an update waits for its answer (a
	// cancel waits for the robot's confirmation, up to 60 s); 0 = 90 s.
	UpdateTimeout time.Duration
	Logger        *slog.Logger
}

// Server is the REST ingress, an http.Handler.
type Server struct {
	o    Options
	keys []keyEntry
	mux  *http.ServeMux
	log  *slog.Logger
}

type keyEntry struct {
	name   string
	digest [sha256.Size]byte
}

// AuditKind is the audit-row kind of every ingress request.
const AuditKind = "wms.request"

// New builds the server. An empty client list is an error: the ingress
// never runs open.
func New(o Options) (*Server, error) {
	if len(o.Clients) == 0 {
		return nil, errors.New("ingress: no WMS client has an API key (wms.clients[].apiKeyEnv)")
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	if o.UpdateTimeout <= 0 {
		o.UpdateTimeout = 90 * time.Second
	}
	s := &Server{o: o, mux: http.NewServeMux(), log: o.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	for _, c := range o.Clients {
		s.keys = append(s.keys, keyEntry{name: c.Name, digest: sha256.Sum256([]byte(c.APIKey))})
	}
	s.mux.HandleFunc("POST /v1/missions", s.create)
	s.mux.HandleFunc("GET /v1/missions", s.list)
	s.mux.HandleFunc("GET /v1/missions/{id}", s.get)
	s.mux.HandleFunc("POST /v1/missions/{id}/{action}", s.update)
	s.mux.HandleFunc("POST /v1/missions/{id}/signals/{signal}", s.signal)
	return s, nil
}

type ctxKey struct{}

// request is what the handlers learn about a request, for the audit row.
type request struct {
	client  string
	mission string
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// ServeHTTP authenticates, routes and audits one request (an
// unauthenticated one is logged, not audited).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w}
	req := &request{}
	name, ok := s.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fleetflow"`)
		writeError(rec, http.StatusUnauthorized, errorBody{Error: "unauthorized"})
	} else {
		req.client = name
		r.Body = http.MaxBytesReader(rec, r.Body, s.o.MaxBody)
		s.mux.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), ctxKey{}, req)))
	}
	actor := req.client
	if actor == "" {
		// Not written to the registry: anyone could fill the database
		// with requests that carry no key.
		s.log.Warn("ingress: unauthenticated request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := s.o.Audit.Audit(ctx, actor, AuditKind, req.mission, map[string]any{
		"method": r.Method, "path": r.URL.Path, "status": rec.status, "remote": r.RemoteAddr,
	}); err != nil {
		s.log.Error("ingress: audit failed", "error", err, "actor", actor, "path", r.URL.Path)
	}
}

// authenticate finds the client whose API key the request carries,
// comparing SHA-256 digests in constant time against every key (no early
// exit, so timing tells nothing about which key or how much matched).
func (s *Server) authenticate(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || key == "" {
		return "", false
	}
	d := sha256.Sum256([]byte(key))
	name := ""
	for _, k := range s.keys {
		if subtle.ConstantTimeCompare(d[:], k.digest[:]) == 1 {
			name = k.name
		}
	}
	return name, name != ""
}

func from(r *http.Request) *request { return r.Context().Value(ctxKey{}).(*request) }

// errorBody is every error response (schemas/openapi.yaml, Error).
type errorBody struct {
	Error string `json:"error"`
	// Type is the failure type when a workflow refused (MissionConflict,
	// RobotRefused, …).
	Type string `json:"type,omitempty"`
	// Violations lists every problem with a request body, each naming
	// where ("/steps/0/action: …", "steps[1]: unknown station …").
	Violations []string `json:"violations,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, e errorBody) { writeJSON(w, status, e) }

// readBody reads the request body; false when it was too large (413
// written) or unreadable (400 written).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	raw, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("request body over %d bytes", tooBig.Limit)})
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, errorBody{Error: "read request body: " + err.Error()})
		return nil, false
	}
	return raw, true
}

var missionID = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// MissionResponse answers POST /v1/missions.
type MissionResponse struct {
	// Created: this request started the mission (201); false when the
	// mission ID had already started it with the same spec (200).
	Created bool                  `json:"created"`
	Mission schemas.MissionStatus `json:"mission"`
}

// create starts a mission, or answers the one its ID already started. The
// mission ID (the WMS order ID) is the idempotency key; an Idempotency-Key
// header stands for a missing missionId and must equal a present one.
func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	req := from(r)
	raw, ok := readBody(w, r)
	if !ok {
		return
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if !missionID.MatchString(key) {
			writeError(w, http.StatusBadRequest, errorBody{Error: "Idempotency-Key: it becomes the mission ID, so 1–64 of A-Z a-z 0-9 _ . : -"})
			return
		}
		var doc map[string]any
		if json.Unmarshal(raw, &doc) == nil && doc != nil {
			switch id, has := doc["missionId"]; {
			case !has:
				doc["missionId"] = key
				raw, _ = json.Marshal(doc)
			case id != key:
				writeError(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("Idempotency-Key %q differs from missionId %v: the mission ID is the idempotency key; send one or the same", key, id)})
				return
			}
		}
	}
	spec, err := schemas.ParseMission(raw)
	var se *schemas.SpecError
	if errors.As(err, &se) {
		writeError(w, http.StatusBadRequest, errorBody{Error: "invalid mission spec (schemas/mission.schema.json)", Violations: se.Violations})
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	req.mission = schemas.MissionWorkflowID(spec.MissionID)
	if s.o.Sites != nil {
		if problems := checkSite(s.o.Sites, spec); len(problems) > 0 {
			writeError(w, http.StatusBadRequest, errorBody{Error: "mission does not fit site " + spec.Site, Violations: problems})
			return
		}
	}
	if spec.RequestedBy == "" {
		spec.RequestedBy = req.client
	}
	sub, err := wms.StartMission(r.Context(), s.o.Temporal, s.o.DataConverter, s.o.TaskQueue, spec, req.client, "wms:"+req.client)
	if errors.Is(err, wms.ErrConflict) {
		writeError(w, http.StatusConflict, errorBody{Error: err.Error(), Type: schemas.ErrMissionConflict})
		return
	}
	if err != nil {
		s.temporalError(w, "start mission "+spec.MissionID, err)
		return
	}
	w.Header().Set("Location", "/v1/missions/"+spec.MissionID)
	status := http.StatusOK
	if sub.Created {
		status = http.StatusCreated
	}
	writeJSON(w, status, MissionResponse{Created: sub.Created, Mission: sub.Status})
}

// checkSite lists what keeps spec from running on its site map.
func checkSite(sites map[string]*site.Map, spec schemas.MissionSpec) []string {
	m, ok := sites[spec.Site]
	if !ok {
		names := make([]string, 0, len(sites))
		for n := range sites {
			names = append(names, n)
		}
		slices.Sort(names)
		return []string{fmt.Sprintf("/site: no site map %q (known: %s)", spec.Site, strings.Join(names, ", "))}
	}
	steps := make([]site.Step, len(spec.Steps))
	for i, st := range spec.Steps {
		steps[i] = site.Step{Station: st.Station, Action: st.Action}
	}
	err := m.CheckMission(steps, spec.RequiredCapabilities)
	var ve *site.ValidationError
	if errors.As(err, &ve) {
		return ve.Problems
	}
	if err != nil {
		return []string{err.Error()}
	}
	return nil
}

// owned describes mission id's workflow and checks that the requesting
// client started it; false when it wrote 400, 403 or 404.
func (s *Server) owned(w http.ResponseWriter, r *http.Request) (string, enumspb.WorkflowExecutionStatus, bool) {
	req := from(r)
	id := r.PathValue("id")
	if !missionID.MatchString(id) {
		writeError(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("mission ID %q: want 1–64 of A-Z a-z 0-9 _ . : -", id)})
		return "", 0, false
	}
	req.mission = schemas.MissionWorkflowID(id)
	desc, err := s.o.Temporal.DescribeWorkflowExecution(r.Context(), schemas.MissionWorkflowID(id), "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		writeError(w, http.StatusNotFound, errorBody{Error: "no mission " + id})
		return "", 0, false
	}
	if err != nil {
		s.temporalError(w, "describe mission "+id, err)
		return "", 0, false
	}
	info := desc.GetWorkflowExecutionInfo()
	var owner string
	if p := info.GetSearchAttributes().GetIndexedFields()[schemas.SearchAttrWMSClient]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &owner)
	}
	if info.GetType().GetName() != schemas.MissionWorkflowType || owner != req.client {
		// Missions of other clients and of operators are not this client's
		// to read or control; nothing about them is said.
		writeError(w, http.StatusForbidden, errorBody{Error: "forbidden"})
		return "", 0, false
	}
	return id, info.GetStatus(), true
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	id, _, ok := s.owned(w, r)
	if !ok {
		return
	}
	v, err := s.o.Temporal.QueryWorkflow(r.Context(), schemas.MissionWorkflowID(id), "", schemas.QueryStatus)
	if err != nil {
		s.temporalError(w, "status of mission "+id, err)
		return
	}
	var st schemas.MissionStatus
	if err := v.Get(&st); err != nil {
		s.temporalError(w, "status of mission "+id, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// MissionSummary is one row of GET /v1/missions, from visibility.
type MissionSummary struct {
	MissionID string `json:"missionId"`
	State     string `json:"state"`
	RobotID   string `json:"robotId,omitempty"`
	Site      string `json:"site"`
	Priority  int64  `json:"priority"`
	// WorkflowStatus is Temporal's: RUNNING, COMPLETED, FAILED, …
	WorkflowStatus string     `json:"workflowStatus"`
	StartTime      time.Time  `json:"startTime"`
	CloseTime      *time.Time `json:"closeTime,omitempty"`
}

// MissionList answers GET /v1/missions.
type MissionList struct {
	Missions []MissionSummary `json:"missions"`
	// NextPageToken, when not empty, is sent as pageToken for the next page.
	NextPageToken string `json:"nextPageToken,omitempty"`
}

// MissionStates are the values of MissionStatus.State (and of the state
// filter of GET /v1/missions).
var MissionStates = []string{
	schemas.MissionValidating, schemas.MissionQueued, schemas.MissionReserved, schemas.MissionDriving,
	schemas.MissionPaused, schemas.MissionAwaitingWMS, schemas.MissionCancelling, schemas.MissionAwaitingOperator,
	schemas.MissionCompleted, schemas.MissionCancelled, schemas.MissionFailed,
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	req := from(r)
	q := r.URL.Query()
	query := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s'", schemas.MissionWorkflowType, schemas.SearchAttrWMSClient, req.client)
	if st := q.Get("state"); st != "" {
		if !slices.Contains(MissionStates, st) {
			writeError(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("state %q: want one of %s", st, strings.Join(MissionStates, ", "))})
			return
		}
		query += fmt.Sprintf(" AND %s = '%s'", schemas.SearchAttrMissionState, st)
	}
	limit := 100
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("limit %q: want 1 to 1000", l)})
			return
		}
		limit = n
	}
	var token []byte
	if t := q.Get("pageToken"); t != "" {
		var err error
		if token, err = base64.RawURLEncoding.DecodeString(t); err != nil {
			writeError(w, http.StatusBadRequest, errorBody{Error: "pageToken: not a token this server gave"})
			return
		}
	}
	res, err := s.o.Temporal.ListWorkflow(r.Context(), &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: int32(limit), NextPageToken: token})
	var ia *serviceerror.InvalidArgument
	if errors.As(err, &ia) && token != nil {
		writeError(w, http.StatusBadRequest, errorBody{Error: "pageToken: not a token this server gave"})
		return
	}
	if err != nil {
		s.temporalError(w, "list missions", err)
		return
	}
	out := MissionList{Missions: []MissionSummary{}, NextPageToken: base64.RawURLEncoding.EncodeToString(res.GetNextPageToken())}
	dc := converter.GetDefaultDataConverter()
	for _, e := range res.GetExecutions() {
		f := e.GetSearchAttributes().GetIndexedFields()
		row := MissionSummary{
			MissionID:      strings.TrimPrefix(e.GetExecution().GetWorkflowId(), schemas.MissionWorkflowID("")),
			WorkflowStatus: statusName(e.GetStatus()),
			StartTime:      e.GetStartTime().AsTime(),
		}
		if e.GetCloseTime() != nil {
			t := e.GetCloseTime().AsTime()
			row.CloseTime = &t
		}
		for name, dst := range map[string]any{schemas.SearchAttrMissionState: &row.State, schemas.SearchAttrRobotID: &row.RobotID,
			schemas.SearchAttrSite: &row.Site, schemas.SearchAttrPriority: &row.Priority} {
			if p := f[name]; p != nil {
				_ = dc.FromPayload(p, dst)
			}
		}
		out.Missions = append(out.Missions, row)
	}
	writeJSON(w, http.StatusOK, out)
}

// statusName is Temporal's name of a workflow status without its prefix:
// RUNNING, COMPLETED, … (String() gives "Running").
func statusName(s enumspb.WorkflowExecutionStatus) string {
	return strings.TrimPrefix(enumspb.WorkflowExecutionStatus_name[int32(s)], "WORKFLOW_EXECUTION_STATUS_")
}

// updates are the mission updates the ingress sends, by path action.
var updates = []string{schemas.UpdateCancel, schemas.UpdatePause, schemas.UpdateResume, schemas.UpdateReprioritize, schemas.UpdateAppend}

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	req := from(r)
	action := r.PathValue("action")
	if !slices.Contains(updates, action) {
		writeError(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("no action %q (known: %s)", action, strings.Join(updates, ", "))})
		return
	}
	raw, ok := readBody(w, r)
	if !ok {
		return
	}
	arg, bad := updateArg(action, raw, "wms:"+req.client)
	if bad != nil {
		writeError(w, http.StatusBadRequest, *bad)
		return
	}
	id, status, ok := s.owned(w, r)
	if !ok {
		return
	}
	if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		writeError(w, http.StatusConflict, errorBody{Error: fmt.Sprintf("mission %s has ended (%s)", id, statusName(status))})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.UpdateTimeout)
	defer cancel()
	opts := client.UpdateWorkflowOptions{WorkflowID: schemas.MissionWorkflowID(id), UpdateName: action, WaitForStage: client.WorkflowUpdateStageCompleted}
	if arg != nil {
		opts.Args = []any{arg}
	}
	h, err := s.o.Temporal.UpdateWorkflow(ctx, opts)
	var st schemas.MissionStatus
	if err == nil {
		err = h.Get(ctx, &st)
	}
	if err != nil {
		s.temporalError(w, action+" mission "+id, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// updateArg decodes and checks an update's body against
// schemas/updates/<action>.schema.json; the actor ("by") is always the
// authenticated client. pause and resume take no body.
func updateArg(action string, raw []byte, by string) (any, *errorBody) {
	empty := len(strings.TrimSpace(string(raw))) == 0
	switch action {
	case schemas.UpdatePause, schemas.UpdateResume:
		if !empty && strings.TrimSpace(string(raw)) != "{}" {
			return nil, &errorBody{Error: action + " takes no body"}
		}
		return nil, nil
	case schemas.UpdateCancel:
		if empty {
			return schemas.CancelRequest{By: by}, nil
		}
	case schemas.UpdateReprioritize:
		if empty {
			return nil, &errorBody{Error: "reprioritize needs a body", Violations: []string{"/priority: required"}}
		}
	case schemas.UpdateAppend:
		if empty {
			return nil, &errorBody{Error: "append needs a body", Violations: []string{"/steps: required"}}
		}
	}
	sch, err := schemas.CompileUpdateSchema(action)
	if err != nil {
		return nil, &errorBody{Error: err.Error()}
	}
	if _, v := schemacheck.Validate(sch, raw); len(v) > 0 {
		return nil, &errorBody{Error: fmt.Sprintf("invalid %s request (schemas/updates/%s.schema.json)", action, action), Violations: v}
	}
	// The schema passed, so decoding can fail only where Go's types are
	// narrower than the schema; that is still the client's request.
	undecodable := func(err error) *errorBody {
		return &errorBody{Error: fmt.Sprintf("invalid %s request: %v", action, err)}
	}
	switch action {
	case schemas.UpdateCancel:
		var c schemas.CancelRequest
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, undecodable(err)
		}
		c.By = by
		return c, nil
	case schemas.UpdateAppend:
		var a schemas.AppendRequest
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, undecodable(err)
		}
		a.By = by
		return a, nil
	default:
		var p schemas.ReprioritizeRequest
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, undecodable(err)
		}
		p.By = by
		return p, nil
	}
}

// SignalResponse answers POST /v1/missions/{id}/signals/{signal}.
type SignalResponse struct {
	MissionID string `json:"missionId"`
	Signal    string `json:"signal"`
}

// signal sends a WMS signal (loadReady, loadTaken) to a running mission:
// 202, as a signal is taken, not answered (the mission's status shows
// when it was used, or why it was ignored).
func (s *Server) signal(w http.ResponseWriter, r *http.Request) {
	req := from(r)
	name := r.PathValue("signal")
	sch, err := schemas.CompileSignalSchema(name)
	if err != nil {
		writeError(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("no signal %q (known: %s, %s)", name, schemas.SignalLoadReady, schemas.SignalLoadTaken)})
		return
	}
	raw, ok := readBody(w, r)
	if !ok {
		return
	}
	var sig schemas.LoadSignal
	if len(strings.TrimSpace(string(raw))) > 0 {
		if _, v := schemacheck.Validate(sch, raw); len(v) > 0 {
			writeError(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("invalid %s signal (schemas/signals/load.schema.json)", name), Violations: v})
			return
		}
		if err := json.Unmarshal(raw, &sig); err != nil {
			writeError(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("invalid %s signal: %v", name, err)})
			return
		}
	}
	sig.By = "wms:" + req.client
	id, status, ok := s.owned(w, r)
	if !ok {
		return
	}
	if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		writeError(w, http.StatusConflict, errorBody{Error: fmt.Sprintf("mission %s has ended (%s)", id, statusName(status))})
		return
	}
	if err := s.o.Temporal.SignalWorkflow(r.Context(), schemas.MissionWorkflowID(id), "", name, sig); err != nil {
		s.temporalError(w, name+" to mission "+id, err)
		return
	}
	writeJSON(w, http.StatusAccepted, SignalResponse{MissionID: id, Signal: name})
}

// temporalError answers a failed Temporal call: a workflow's refusal is
// 409 with its type and message, an unknown mission 404, a deadline 504,
// the rest 502 (logged; the body says only what failed).
func (s *Server) temporalError(w http.ResponseWriter, what string, err error) {
	var ae *temporal.ApplicationError
	var nf *serviceerror.NotFound
	var de *serviceerror.DeadlineExceeded
	var ut *client.WorkflowUpdateServiceTimeoutOrCanceledError
	switch {
	case errors.As(err, &ae):
		writeError(w, http.StatusConflict, errorBody{Error: ae.Message(), Type: ae.Type()})
	case errors.As(err, &nf):
		writeError(w, http.StatusNotFound, errorBody{Error: what + ": not found"})
	case errors.As(err, &ut):
		// An update still running at the deadline (a cancel waiting for
		// the robot and its release) is not done, nor failed: 504.
		writeError(w, http.StatusGatewayTimeout, errorBody{Error: what + ": no answer in time; it may still be in progress"})
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &de):
		writeError(w, http.StatusGatewayTimeout, errorBody{Error: what + ": no answer in time"})
	default:
		s.log.Error("ingress: temporal call failed", "what", what, "error", err)
		writeError(w, http.StatusBadGateway, errorBody{Error: what + ": Temporal unavailable"})
	}
}

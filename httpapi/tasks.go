package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
)

// taskRoutes registers the task and run routes. Every one acts for the
// principal's tenant; another tenant's task or run is 404, like one that
// does not exist. Webhook secrets are never shown (see tasks.Spec.Redacted).
//
//	POST   /v1/tasks                  create a draft from a spec (201)
//	GET    /v1/tasks                  list: ?status= ?kind= ?owner= ?event= ?limit= ?cursor=
//	GET    /v1/tasks/{id}             the task, with next_fire when active
//	PATCH  /v1/tasks/{id}             change the fields given (a new version)
//	PUT    /v1/tasks/{id}             replace the whole spec (a new version)
//	DELETE /v1/tasks/{id}             delete the task and its runs (204)
//	POST   /v1/tasks/{id}/confirm     draft → active
//	POST   /v1/tasks/{id}/pause       active → paused
//	POST   /v1/tasks/{id}/resume      paused → active
//	POST   /v1/tasks/{id}/archive     → archived
//	POST   /v1/tasks/{id}/run         run now: a queued manual run (201)
//	GET    /v1/tasks/{id}/runs        the task's runs, newest first: ?limit= ?cursor=
//	GET    /v1/runs/{id}              a run with its checkpoints
//	POST   /v1/runs/{id}/cancel       cancel a run that has not finished
//
// PATCH and PUT take the version the client read in a "version" field or
// an If-Match header (the ETag of GET); without either they apply to the
// current version. Bad input is 400 naming the field; an illegal state
// change or a stale version is 409 naming "status" or "version". Neither
// changes anything.
func (s *Server) taskRoutes() {
	s.mux.HandleFunc("POST /v1/tasks", s.createTask)
	s.mux.HandleFunc("GET /v1/tasks", s.listTasks)
	s.mux.HandleFunc("GET /v1/tasks/{id}", s.getTask)
	s.mux.HandleFunc("PATCH /v1/tasks/{id}", s.patchTask)
	s.mux.HandleFunc("PUT /v1/tasks/{id}", s.putTask)
	s.mux.HandleFunc("DELETE /v1/tasks/{id}", s.deleteTask)
	s.mux.HandleFunc("POST /v1/tasks/{id}/confirm", s.taskAction((*tasks.Manager).Confirm))
	s.mux.HandleFunc("POST /v1/tasks/{id}/pause", s.taskAction((*tasks.Manager).Pause))
	s.mux.HandleFunc("POST /v1/tasks/{id}/resume", s.taskAction((*tasks.Manager).Resume))
	s.mux.HandleFunc("POST /v1/tasks/{id}/archive", s.taskAction((*tasks.Manager).Archive))
	s.mux.HandleFunc("POST /v1/tasks/{id}/run", s.runNow)
	s.mux.HandleFunc("GET /v1/tasks/{id}/runs", s.listRuns)
	s.mux.HandleFunc("GET /v1/runs/{id}", s.getRun)
	s.mux.HandleFunc("POST /v1/runs/{id}/cancel", s.cancelRun)
}

// taskManager returns the task manager, or answers 503 and returns nil
// when the server has none.
func (s *Server) taskManager(w http.ResponseWriter, r *http.Request) *tasks.Manager {
	if s.opts.Tasks == nil {
		s.error(w, r, vigil.Errorf(vigil.Unavailable, "task management is not available on this server"))
	}
	return s.opts.Tasks
}

// writeTask answers a task, redacted, with its version as the ETag.
func writeTask(w http.ResponseWriter, status int, t tasks.Task) {
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(t.Version, 10)))
	writeJSON(w, status, t.Redacted())
}

// serverFields are task fields a client may read but not write.
var serverFields = map[string]bool{
	"id": true, "tenant": true, "owner": true, "status": true, "thread_id": true,
	"created_at": true, "updated_at": true, "next_fire": true,
}

// decodeSpec decodes a task spec from JSON strictly: an unknown field, a
// field the server sets, or a value of the wrong type is a vigil.Invalid
// error naming the field. With allowVersion, a "version" field is taken
// out and returned (0 when absent).
func decodeSpec(body []byte, allowVersion bool) (tasks.Spec, int64, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return tasks.Spec{}, 0, vigil.Errorf(vigil.Invalid, "request body must be a JSON object of task fields")
	}
	var version int64
	if raw, ok := fields["version"]; ok && allowVersion {
		if err := json.Unmarshal(raw, &version); err != nil || version < 1 {
			return tasks.Spec{}, 0, vigil.FieldError("version", "must be the positive version number you read")
		}
		delete(fields, "version")
	}
	for name := range fields {
		if serverFields[name] || name == "version" {
			return tasks.Spec{}, 0, vigil.FieldError(name, "is set by the server; do not send it")
		}
	}
	// Decode again, strictly, into the spec.
	dec := json.NewDecoder(bytes.NewReader(body))
	if allowVersion {
		b, _ := json.Marshal(fields)
		dec = json.NewDecoder(bytes.NewReader(b))
	}
	dec.DisallowUnknownFields()
	var spec tasks.Spec
	if err := dec.Decode(&spec); err != nil {
		return tasks.Spec{}, 0, jsonFieldError(err)
	}
	return spec, version, nil
}

// jsonFieldError turns an encoding/json error into a vigil.Invalid error
// naming the field where encoding/json says which.
func jsonFieldError(err error) error {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) && ute.Field != "" {
		return vigil.FieldError(ute.Field, "cannot be %s: want %s", ute.Value, jsonTypeName(ute))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return vigil.FieldError(name, "is not a task field")
	}
	return vigil.Errorf(vigil.Invalid, "request body: %v", err)
}

func jsonTypeName(ute *json.UnmarshalTypeError) string {
	if ute.Type == nil {
		return "another type"
	}
	switch {
	case ute.Type.Name() == "Duration":
		return `a duration such as "15m"`
	case ute.Type.String() == "time.Time":
		return "an RFC 3339 time"
	}
	switch ute.Type.Kind().String() {
	case "string":
		return "a string"
	case "int", "int64", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return ute.Type.String()
}

// readBody reads the request body under the size cap.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, vigil.Errorf(vigil.Invalid, "request body over %d bytes", mbe.Limit)
		}
		return nil, vigil.Errorf(vigil.Invalid, "request body: %v", err)
	}
	return body, nil
}

// ifMatch returns the version an If-Match header names, 0 without one.
func ifMatch(r *http.Request) (int64, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return 0, nil
	}
	h = strings.TrimPrefix(h, "W/")
	if u, err := strconv.Unquote(h); err == nil {
		h = u
	}
	v, err := strconv.ParseInt(h, 10, 64)
	if err != nil || v < 1 {
		return 0, vigil.FieldError("If-Match", "must be the task's version (its ETag), got %q", r.Header.Get("If-Match"))
	}
	return v, nil
}

func (s *Server) createTask(w http.ResponseWriter, r *http.Request) {
	m := s.taskManager(w, r)
	if m == nil {
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	spec, _, err := decodeSpec(body, false)
	if err != nil {
		s.error(w, r, err)
		return
	}
	t, err := m.Create(r.Context(), spec)
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/tasks/"+t.ID)
	writeTask(w, http.StatusCreated, t)
}

// queryInt reads an optional positive integer query parameter.
func queryInt(r *http.Request, name string) (int, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return 0, vigil.FieldError(name, "must be a positive integer, got %q", raw)
	}
	return n, nil
}

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) {
	m := s.taskManager(w, r)
	if m == nil {
		return
	}
	q := r.URL.Query()
	for name := range q {
		switch name {
		case "status", "kind", "owner", "event", "limit", "cursor":
		default:
			s.error(w, r, vigil.FieldError(name, "is not a filter: use status, kind, owner, event, limit or cursor"))
			return
		}
	}
	limit, err := queryInt(r, "limit")
	if err != nil {
		s.error(w, r, err)
		return
	}
	page, err := m.List(r.Context(), tasks.TaskFilter{
		Status: tasks.Status(q.Get("status")), Kind: tasks.Kind(q.Get("kind")),
		Owner: q.Get("owner"), Event: q.Get("event"), Limit: limit, After: q.Get("cursor"),
	})
	if err != nil {
		s.error(w, r, err)
		return
	}
	for i, t := range page.Tasks {
		page.Tasks[i] = t.Redacted()
	}
	if page.Tasks == nil {
		page.Tasks = []tasks.Task{}
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request) {
	m := s.taskManager(w, r)
	if m == nil {
		return
	}
	t, err := m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeTask(w, http.StatusOK, t)
}

// patchTask changes the spec fields the body names, each replaced whole
// (a "slots" object replaces all slots); fields not named keep their
// values, and a field set to null is cleared.
func (s *Server) patchTask(w http.ResponseWriter, r *http.Request) {
	s.updateTask(w, r, true)
}

// putTask replaces the whole spec.
func (s *Server) putTask(w http.ResponseWriter, r *http.Request) {
	s.updateTask(w, r, false)
}

func (s *Server) updateTask(w http.ResponseWriter, r *http.Request, merge bool) {
	m := s.taskManager(w, r)
	if m == nil {
		return
	}
	id := r.PathValue("id")
	body, err := s.readBody(w, r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	version, err := ifMatch(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if merge {
		cur, err := m.Get(r.Context(), id)
		if err != nil {
			s.error(w, r, err)
			return
		}
		if body, err = mergeSpec(cur.Spec.Redacted(), body); err != nil {
			s.error(w, r, err)
			return
		}
	}
	spec, v, err := decodeSpec(body, true)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if v != 0 {
		if version != 0 && v != version {
			s.error(w, r, vigil.FieldError("version", "the body says %d, If-Match says %d", v, version))
			return
		}
		version = v
	}
	t, err := m.Update(r.Context(), id, version, spec)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeTask(w, http.StatusOK, t)
}

// mergeSpec lays the top-level fields of patch over cur's and returns the
// result as JSON. A webhook shown without its secret keeps it: Update
// carries secrets over by URL.
func mergeSpec(cur tasks.Spec, patch []byte) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(patch, &fields); err != nil || fields == nil {
		return nil, vigil.Errorf(vigil.Invalid, "request body must be a JSON object of the task fields to change")
	}
	b, err := json.Marshal(cur)
	if err != nil {
		return nil, err
	}
	var merged map[string]json.RawMessage
	if err := json.Unmarshal(b, &merged); err != nil {
		return nil, err
	}
	for k, v := range fields {
		if string(v) == "null" {
			delete(merged, k)
			continue
		}
		merged[k] = v
	}
	return json.Marshal(merged)
}

func (s *Server) deleteTask(w http.ResponseWriter, r *http.Request) {
	m := s.taskManager(w, r)
	if m == nil {
		return
	}
	if err := m.Delete(r.Context(), r.PathValue("id")); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// taskAction serves a state change that takes no input: the body is empty
// or {}.
func (s *Server) taskAction(do func(*tasks.Manager, context.Context, string) (tasks.Task, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m := s.taskManager(w, r)
		if m == nil {
			return
		}
		if err := s.decodeBody(w, r, &struct{}{}, true); err != nil {
			s.error(w, r, err)
			return
		}
		t, err := do(m, r.Context(), r.PathValue("id"))
		if err != nil {
			s.error(w, r, err)
			return
		}
		writeTask(w, http.StatusOK, t)
	}
}

func (s *Server) runNow(w http.ResponseWriter, r *http.Request) {
	m := s.taskManager(w, r)
	if m == nil {
		return
	}
	if err := s.decodeBody(w, r, &struct{}{}, true); err != nil {
		s.error(w, r, err)
		return
	}
	run, err := m.RunNow(r.Context(), r.PathValue("id"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/runs/"+run.ID)
	writeJSON(w, http.StatusCreated, run.Redacted())
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	m := s.taskManager(w, r)
	if m == nil {
		return
	}
	limit, err := queryInt(r, "limit")
	if err != nil {
		s.error(w, r, err)
		return
	}
	page, err := m.ListRuns(r.Context(), tasks.RunFilter{TaskID: r.PathValue("id"), Limit: limit, After: r.URL.Query().Get("cursor")})
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeRunPage(w, page)
}

// writeRunPage answers a page of runs: secrets redacted, and an empty page
// as [] rather than null.
func writeRunPage(w http.ResponseWriter, page tasks.RunPage) {
	for i, run := range page.Runs {
		page.Runs[i] = run.Redacted()
	}
	if page.Runs == nil {
		page.Runs = []tasks.Run{}
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	m := s.taskManager(w, r)
	if m == nil {
		return
	}
	run, err := m.GetRun(r.Context(), r.PathValue("id"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run.Redacted())
}

func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request) {
	m := s.taskManager(w, r)
	if m == nil {
		return
	}
	if err := s.decodeBody(w, r, &struct{}{}, true); err != nil {
		s.error(w, r, err)
		return
	}
	run, err := m.CancelRun(r.Context(), r.PathValue("id"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run.Redacted())
}

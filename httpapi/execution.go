package httpapi

import (
	"bytes"
	"net/http"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
)

// executionRoutes registers the routes of task execution. Like the task
// routes they act for the principal's tenant and never show webhook
// secrets.
//
//	POST /v1/events/{source}          ingest an event: wake the tenant's active
//	                                  monitors subscribed to source (202 with
//	                                  the runs created, maybe none)
//	POST /v1/runs/{id}/retry          replay a failed run as a new run; the body
//	                                  is empty or {"slots": {…}} laid over the
//	                                  failed run's slots (201)
//	GET  /v1/tasks/{id}/dead-letters  the task's failed runs, newest first:
//	                                  ?limit= ?cursor=
func (s *Server) executionRoutes() {
	s.mux.HandleFunc("POST /v1/events/{source}", s.ingestEvent)
	s.mux.HandleFunc("POST /v1/runs/{id}/retry", s.retryRun)
	s.mux.HandleFunc("GET /v1/tasks/{id}/dead-letters", s.deadLetters)
}

// ingestResponse is the answer to an ingested event.
type ingestResponse struct {
	Source string      `json:"source"`
	Runs   []tasks.Run `json:"runs"`
}

func (s *Server) ingestEvent(w http.ResponseWriter, r *http.Request) {
	m := s.taskManager(w, r)
	if m == nil {
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		s.error(w, r, vigil.FieldError("body", "is required: the event as JSON"))
		return
	}
	source := r.PathValue("source")
	runs, err := m.Ingest(r.Context(), source, body)
	if err != nil {
		s.error(w, r, err)
		return
	}
	for i, run := range runs {
		runs[i] = run.Redacted()
	}
	writeJSON(w, http.StatusAccepted, ingestResponse{Source: source, Runs: runs})
}

// retryRequest is the optional body of a retry.
type retryRequest struct {
	Slots map[string]any `json:"slots"`
}

func (s *Server) retryRun(w http.ResponseWriter, r *http.Request) {
	m := s.taskManager(w, r)
	if m == nil {
		return
	}
	var req retryRequest
	if err := s.decodeBody(w, r, &req, true); err != nil {
		s.error(w, r, err)
		return
	}
	run, err := m.Retry(r.Context(), r.PathValue("id"), req.Slots)
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/runs/"+run.ID)
	writeJSON(w, http.StatusCreated, run.Redacted())
}

func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request) {
	m := s.taskManager(w, r)
	if m == nil {
		return
	}
	for name := range r.URL.Query() {
		if name != "limit" && name != "cursor" {
			s.error(w, r, vigil.FieldError(name, "is not a parameter: use limit or cursor"))
			return
		}
	}
	limit, err := queryInt(r, "limit")
	if err != nil {
		s.error(w, r, err)
		return
	}
	page, err := m.DeadLetters(r.Context(), tasks.RunFilter{TaskID: r.PathValue("id"), Limit: limit, After: r.URL.Query().Get("cursor")})
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeRunPage(w, page)
}

package httpapi

import (
	"context"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// threadOf returns the tenant of the request's principal and the {id} path
// value. A malformed id cannot exist, so it is answered as not found. On an
// error it has answered the request and returns ok false.
func (s *Server) threadOf(w http.ResponseWriter, r *http.Request) (tenant, id string, ok bool) {
	tenant, err := vigil.TenantFrom(r.Context())
	if err != nil {
		s.error(w, r, err)
		return "", "", false
	}
	id = r.PathValue("id")
	if !vigil.ValidID(id) {
		s.error(w, r, vigil.Errorf(vigil.NotFound, "thread %q not found", id))
		return "", "", false
	}
	return tenant, id, true
}

// cursor returns where a reader resumes: the Last-Event-ID header (what
// EventSource and r3labs/sse send on reconnect) or else the after query
// parameter. A malformed cursor is invalid and names where it came from.
func cursor(r *http.Request) (streams.ID, error) {
	field, raw := "after", r.URL.Query().Get("after")
	if h := r.Header.Get("Last-Event-ID"); h != "" {
		field, raw = "Last-Event-ID", strings.TrimSpace(h)
	}
	id, err := streams.ParseID(raw)
	if err != nil {
		return streams.ID{}, vigil.FieldError(field, "%v", err)
	}
	return id, nil
}

type createThreadRequest struct {
	Title string `json:"title"`
}

func (s *Server) createThread(w http.ResponseWriter, r *http.Request) {
	tenant, err := vigil.TenantFrom(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	var req createThreadRequest
	if err := s.decodeBody(w, r, &req, true); err != nil {
		s.error(w, r, err)
		return
	}
	if utf8.RuneCountInString(req.Title) > 200 {
		s.error(w, r, vigil.FieldError("title", "at most 200 characters"))
		return
	}
	th := streams.Thread{ID: vigil.NewID("th_"), Tenant: tenant, Title: req.Title, CreatedAt: s.opts.Now().UTC()}
	if err := s.opts.Log.CreateThread(r.Context(), th); err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/threads/"+th.ID)
	writeJSON(w, http.StatusCreated, th)
}

func (s *Server) getThread(w http.ResponseWriter, r *http.Request) {
	tenant, id, ok := s.threadOf(w, r)
	if !ok {
		return
	}
	th, err := s.opts.Log.Thread(r.Context(), tenant, id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, th)
}

// appendEvent appends one client-posted event (feedback, or anything in
// tests). The payload is validated against its type's schema; the log
// assigns the id, the server stamps the time and the request's trace id.
func (s *Server) appendEvent(w http.ResponseWriter, r *http.Request) {
	tenant, id, ok := s.threadOf(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBody))
	if err != nil {
		s.error(w, r, vigil.Errorf(vigil.Invalid, "request body: %v", err))
		return
	}
	e, err := streams.DecodeEvent(body)
	if err != nil {
		s.error(w, r, err)
		return
	}
	e.ThreadID = id
	e.TraceID = vigil.TraceID(r.Context())
	e.TS = s.opts.Now().UTC()
	ids, err := s.opts.Log.Append(r.Context(), tenant, id, []streams.Event{e})
	if err != nil {
		s.error(w, r, err)
		return
	}
	e.ID = ids[0]
	writeJSON(w, http.StatusCreated, e)
}

// streamEvents is GET /v1/threads/{id}/events: the thread as a live SSE
// stream, resuming strictly after the client's cursor.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	s.serveSSE(w, r, true)
}

func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request, follow bool) {
	tenant, id, ok := s.threadOf(w, r)
	if !ok {
		return
	}
	after, err := cursor(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.streams, cancel)()
	r = r.WithContext(ctx)
	opts := streams.SSEOptions{Heartbeat: s.opts.Heartbeat, Follow: follow, Now: s.opts.Now}
	if err := s.opts.Hub.ServeSSE(w, r, tenant, id, after, opts); err != nil {
		s.error(w, r, err)
	}
}

// replayBody is the JSON form of a replayed thread.
type replayBody struct {
	Thread  streams.Thread  `json:"thread"`
	Events  []streams.Event `json:"events"`
	Trimmed *streams.ID     `json:"trimmed,omitempty"` // newest event removed by retention, if any
	Last    streams.ID      `json:"last"`
}

// replay is GET /v1/threads/{id}/replay: every retained event of the thread
// (after ?after= when given), as JSON, or as SSE that ends after the last
// event when the client accepts text/event-stream.
func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		s.serveSSE(w, r, false)
		return
	}
	tenant, id, ok := s.threadOf(w, r)
	if !ok {
		return
	}
	after, err := cursor(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	th, err := s.opts.Log.Thread(r.Context(), tenant, id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	page, err := streams.ReadAll(r.Context(), s.opts.Log, tenant, id, after, 1000)
	if err != nil {
		s.error(w, r, err)
		return
	}
	body := replayBody{Thread: th, Events: page.Events, Last: page.Last}
	if body.Events == nil {
		body.Events = []streams.Event{}
	}
	if !page.Trimmed.IsZero() {
		body.Trimmed = &page.Trimmed
	}
	writeJSON(w, http.StatusOK, body)
}

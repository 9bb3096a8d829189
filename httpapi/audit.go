package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/audit"
	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/streams"
)

// The audit log (package audit) is written here, at the guard, so that a
// route cannot change state without being recorded:
//
//   - a request the guard refuses for a missing permission (403) is
//     recorded as audit.ActionDenied with the permission it lacked;
//   - a request to a route of routeActions is recorded under the route's
//     action once its handler has answered: when it succeeded (2xx), and
//     as a denial when the handler itself answered 403. Other failures
//     changed nothing and are not recorded.
//
// The entry is stored before the response is complete, so a client that
// has its answer finds the entry in GET /v1/audit.

// routeActions names the audit action of every route that changes state:
// every route whose method is not GET (TestRouteActions). Routes that take
// any principal and check each operation themselves (/mcp) record their
// operations themselves and have no entry.
var routeActions = map[string]string{
	"POST /v1/threads":                   "thread.create",
	"POST /v1/threads/{id}/events":       "thread.append",
	"POST /v1/threads/{id}/messages":     "thread.message", // the assistant may create and change tasks
	"POST /v1/threads/{id}/stream-token": "stream_token.create",
	"PUT /v1/memory/profile":             "profile.replace",
	"DELETE /v1/memory/profile":          "profile.delete",
	"POST /v1/tasks":                     "task.create",
	"PATCH /v1/tasks/{id}":               "task.update",
	"PUT /v1/tasks/{id}":                 "task.update",
	"DELETE /v1/tasks/{id}":              "task.delete",
	"POST /v1/tasks/{id}/confirm":        "task.confirm",
	"POST /v1/tasks/{id}/pause":          "task.pause",
	"POST /v1/tasks/{id}/resume":         "task.resume",
	"POST /v1/tasks/{id}/archive":        "task.archive",
	"POST /v1/tasks/{id}/run":            "task.run",
	"POST /v1/runs/{id}/cancel":          "run.cancel",
	"POST /v1/runs/{id}/retry":           "run.retry",
	"POST /v1/events/{source}":           "event.ingest",
	"POST /v1/keys":                      "key.create",
	"DELETE /v1/keys/{id}":               "key.revoke",
	"POST /v1/tools":                     "tool.register",
	"DELETE /v1/tools/{ref}":             "tool.unregister",
}

// recordTimeout bounds how long recording one entry may take.
const recordTimeout = 5 * time.Second

// auditLog returns the recorder of the server's audit log, which lives in
// the server's streams.Log.
func (s *Server) auditLog() *audit.Recorder {
	return &audit.Recorder{Log: s.opts.Log, Now: s.opts.Now}
}

// recordAudit appends e to the audit log of p's tenant. The request has been
// answered or is being answered whatever happens here, so a failure is
// logged, not returned; the request's cancellation does not stop it.
func (s *Server) recordAudit(r *http.Request, p vigil.Principal, e audit.Entry) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), recordTimeout)
	defer cancel()
	e.Actor, e.Roles = p.User, p.Roles
	if err := s.auditLog().Record(ctx, p.Tenant, e); err != nil {
		s.opts.Logger.ErrorContext(r.Context(), "audit entry not recorded", "action", e.Action, "route", e.Route, "err", err)
	}
}

// recordDenial records that p was refused pattern's route for lacking
// perm. The guard calls it for every refusal with vigil.Forbidden.
func (s *Server) recordDenial(r *http.Request, p vigil.Principal, pattern string, perm auth.Permission) {
	s.recordAudit(r, p, audit.Entry{
		Action: audit.ActionDenied, Outcome: audit.Denied, Status: http.StatusForbidden,
		Permission: string(perm), Route: pattern, Target: pathTarget(r, pattern),
	})
}

// serveAllowed serves a request the guard let through: it refuses thread
// routes on the reserved threads (streams.Reserved), and records the outcome of routes
// that change state.
func (s *Server) serveAllowed(w http.ResponseWriter, r *http.Request, pattern string, h http.Handler) {
	if id := r.PathValue("id"); threadRoute(pattern) && streams.Reserved(id) {
		// The audit log is read with GET /v1/audit and written by the
		// server alone; an MCP session's stream is its session's. As
		// threads they do not exist.
		s.error(w, r, vigil.Errorf(vigil.NotFound, "thread %q not found", id))
		return
	}
	action, ok := routeActions[pattern]
	p, hasPrincipal := vigil.PrincipalFrom(r.Context())
	if !ok || !hasPrincipal {
		h.ServeHTTP(w, r)
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	h.ServeHTTP(rec, r)
	status := rec.status
	if status == 0 {
		status = http.StatusOK // the handler wrote nothing
	}
	e := audit.Entry{Action: action, Outcome: audit.Succeeded, Status: status, Route: pattern, Target: pathTarget(r, pattern)}
	switch {
	case status == http.StatusForbidden:
		e.Action, e.Outcome = audit.ActionDenied, audit.Denied
	case status < 200 || status > 299:
		return
	case e.Target == "":
		e.Target = createdID(rec.Header())
	}
	s.recordAudit(r, p, e)
}

// threadRoute reports whether pattern's {id} names a thread.
func threadRoute(pattern string) bool {
	_, p, _ := strings.Cut(pattern, " ")
	return strings.HasPrefix(p, "/v1/threads/{id}") || strings.HasPrefix(p, "/v1/memory/session/{id}")
}

// pathTarget returns the value of the first wildcard of pattern in r's
// path: what the request acts on, such as the task of
// /v1/tasks/{id}/pause or the source of /v1/events/{source}.
func pathTarget(r *http.Request, pattern string) string {
	_, rest, ok := strings.Cut(pattern, "{")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "}")
	return r.PathValue(strings.TrimSuffix(name, "..."))
}

// createdID returns the id of what a request created: the last segment of
// its answer's Location (/v1/keys/{id}, /v1/tools/{ref}, …), or "".
func createdID(h http.Header) string {
	loc := h.Get("Location")
	if loc == "" {
		return ""
	}
	id, err := url.PathUnescape(path.Base(loc))
	if err != nil {
		return path.Base(loc)
	}
	return id
}

// readAudit is GET /v1/audit: the entries of the tenant's audit log after
// ?since= (an entry id, such as a page's next, or an RFC 3339 time), oldest
// first, at most ?limit= (default 100, at most 1000).
func (s *Server) readAudit(w http.ResponseWriter, r *http.Request) {
	tenant, err := vigil.TenantFrom(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	q := r.URL.Query()
	for name := range q {
		if name != "since" && name != "limit" {
			s.error(w, r, vigil.FieldError(name, "is not a parameter: use since or limit"))
			return
		}
	}
	since, err := audit.ParseSince(q.Get("since"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	limit, err := queryInt(r, "limit")
	if err != nil {
		s.error(w, r, err)
		return
	}
	page, err := s.auditLog().Read(r.Context(), tenant, since, limit)
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, page)
}

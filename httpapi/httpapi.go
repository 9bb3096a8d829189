// Package httpapi is Vigil's HTTP edge: the REST and SSE routes, the
// middleware every request passes (recovery, trace id, authentication,
// access log, request quotas), the permission each route requires (routePermissions, checked
// in one place, see auth.go), and the one place where errors become HTTP
// statuses and the JSON error shape {"error":{"code","message"}}.
//
// A request flows one way: transport → middleware (trace, authentication) →
// guard (the route's permission) → handler → domain (streams.Log,
// streams.Hub) → store. Handlers take the tenant from the principal in the
// request context, never from the request itself.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/agent"
	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// Options configure a Server. Log and Hub are required; the zero value of
// every other field means its default.
type Options struct {
	Log    streams.Log
	Hub    *streams.Hub
	Logger *slog.Logger // default slog.Default()

	// Heartbeat is the SSE heartbeat interval. Default 15s.
	Heartbeat time.Duration
	// Now is the clock that stamps posted events. Default time.Now.
	Now func() time.Time
	// MaxBody caps request bodies in bytes. Default 1 MiB.
	MaxBody int64
	// Memory serves /v1/memory (profile and session memory); nil answers 503.
	Memory *memory.Service
	// Tasks serves /v1/tasks and /v1/runs; nil answers 503.
	Tasks *tasks.Manager
	// Auth authenticates requests. Nil means authentication is off: every
	// request acts as an admin of the default tenant (config refuses to
	// bind a non-loopback address then).
	Auth *auth.Authenticator
	// Keys serves /v1/keys; nil answers 503.
	Keys *auth.Keys
	// Assistant answers POST /v1/threads/{id}/messages; nil answers 503.
	Assistant *agent.Assistant
	// Tools serves /v1/tools (plugin tool registration, shared with MCP's
	// register_tool); nil answers 503.
	Tools *toolsregistry.Sync
	// Metrics serves GET /metrics (metrics.Tasks.Handler: the Prometheus
	// text format); nil leaves the route out, so /metrics answers 404.
	Metrics http.Handler
	// AuthorizationServer is the OAuth authorization server that issues
	// the JWTs Auth accepts: the issuer, auth.jwt.issuer. When it is set
	// and Auth is not nil, /mcp is published as an OAuth protected
	// resource (RFC 9728, wellknown.go): its metadata is served at
	// /.well-known/oauth-protected-resource and every 401 of /mcp points
	// to it. Empty publishes nothing.
	AuthorizationServer string
	// BaseURL is the public URL clients reach the server at
	// (server.base_url), used in the protected resource metadata. Empty
	// means the origin each request was sent to.
	BaseURL string
	// RequestsPerMinute returns the request quota of each credential of a
	// tenant (quota.go): the size of its token bucket, refilled at that
	// rate on the Now clock; over it a request answers 429 with
	// Retry-After. Nil, or a result of zero or less, means no quota. It is
	// asked on every request, so a changed quota applies at once.
	RequestsPerMinute func(tenant string) int
	// Buckets, if set, holds the request quotas' buckets, shared by every
	// instance (the Redis store); nil keeps them in this process.
	Buckets Buckets
}

// Server serves Vigil's HTTP API. It is an http.Handler.
type Server struct {
	opts Options
	mux  *router
	h    http.Handler

	// streamSigner signs stream tokens: opts.Auth, or with authentication
	// off an Authenticator of this Server's own.
	streamSigner *auth.Authenticator

	// quotas holds the request quotas' buckets (quota.go).
	quotas quotaBuckets

	// streams is cancelled by CloseStreams; every SSE response ends with it.
	streams      context.Context
	closeStreams context.CancelFunc
}

// New returns a Server with every route registered.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	s := &Server{opts: opts, streamSigner: opts.Auth}
	if s.streamSigner == nil {
		s.streamSigner, _ = auth.New(auth.Options{Now: opts.Now}) // fails only with a short secret
	}
	s.mux = newRouter(s.guard)
	s.streams, s.closeStreams = context.WithCancel(context.Background())
	s.routes()
	s.h = s.trace(s.recover(s.authenticate(s.accessLog(s.limit(http.HandlerFunc(s.route))))))
	return s
}

// Handle registers another handler on the server's mux, behind the same
// middleware and guard; later parts of Vigil (MCP at /mcp, the console)
// mount here. pattern needs an entry in routePermissions, or the route
// answers 500.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

// CloseStreams ends every open SSE response, now and later. A stopping
// server calls it (http.Server.RegisterOnShutdown) because streams never end
// by themselves and would hold shutdown to its deadline; their clients
// resume by cursor on another instance or after the restart.
func (s *Server) CloseStreams() { s.closeStreams() }

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /v1/schema/events", s.eventSchema)
	s.mux.HandleFunc("POST /v1/threads", s.createThread)
	s.mux.HandleFunc("GET /v1/threads/{id}", s.getThread)
	s.mux.HandleFunc("POST /v1/threads/{id}/events", s.appendEvent)
	s.mux.HandleFunc("POST /v1/threads/{id}/messages", s.postMessage)
	s.mux.HandleFunc("GET /v1/threads/{id}/events", s.streamEvents)
	s.mux.HandleFunc("GET /v1/threads/{id}/replay", s.replay)
	s.memoryRoutes()
	s.taskRoutes()
	s.executionRoutes()
	s.keyRoutes()
	s.toolRoutes()
	s.wellKnownRoutes()
	if s.opts.Metrics != nil {
		s.mux.Handle("GET /metrics", s.opts.Metrics)
	}
	s.mux.HandleFunc("GET /v1/audit", s.readAudit)
}

// routePermissions is the permission each route requires, by the pattern
// it is registered under: the one table of who may call what over HTTP.
// guard (auth.go) applies it to every route; a route with no entry answers
// 500 and fails TestRoutePermissions. Tenancy is not here: every handler
// acts inside the principal's tenant, so another tenant's thread or task
// is 404 whatever the role.
var routePermissions = map[string]auth.Permission{
	"GET /healthz":          Public,
	"GET /readyz":           Public,
	"GET /v1/schema/events": Public,
	// OAuth discovery of /mcp, registered only with an authorization
	// server (wellknown.go).
	"GET /.well-known/oauth-protected-resource":     Public,
	"GET /.well-known/oauth-protected-resource/mcp": Public,
	// Metrics count the whole process across tenants, so only admins read
	// them (a scraper with an admin key); with auth off, anyone on loopback.
	"GET /metrics": auth.MetricsRead,

	"POST /v1/threads":                   auth.ThreadsWrite,
	"GET /v1/threads/{id}":               auth.ThreadsRead,
	"POST /v1/threads/{id}/events":       auth.ThreadsWrite,
	"POST /v1/threads/{id}/messages":     auth.TasksWrite,  // the assistant may create and change the user's tasks
	"GET /v1/threads/{id}/events":        auth.ThreadsRead, // or a stream token for the thread
	"GET /v1/threads/{id}/replay":        auth.ThreadsRead, // or a stream token for the thread
	"POST /v1/threads/{id}/stream-token": auth.ThreadsRead,
	"GET /v1/memory/profile":             auth.MemoryOwn,
	"PUT /v1/memory/profile":             auth.MemoryOwn,
	"DELETE /v1/memory/profile":          auth.MemoryOwn,
	"GET /v1/memory/session/{id}":        auth.ThreadsRead,
	"POST /v1/tasks":                     auth.TasksWrite,
	"GET /v1/tasks":                      auth.TasksRead,
	"GET /v1/tasks/{id}":                 auth.TasksRead,
	"PATCH /v1/tasks/{id}":               auth.TasksWrite,
	"PUT /v1/tasks/{id}":                 auth.TasksWrite,
	"DELETE /v1/tasks/{id}":              auth.TasksWrite,
	"POST /v1/tasks/{id}/confirm":        auth.TasksWrite,
	"POST /v1/tasks/{id}/pause":          auth.TasksWrite,
	"POST /v1/tasks/{id}/resume":         auth.TasksWrite,
	"POST /v1/tasks/{id}/archive":        auth.TasksWrite,
	"POST /v1/tasks/{id}/run":            auth.TasksWrite,
	"GET /v1/tasks/{id}/runs":            auth.TasksRead,
	"GET /v1/runs/{id}":                  auth.TasksRead,
	"POST /v1/runs/{id}/cancel":          auth.TasksWrite,
	"POST /v1/runs/{id}/retry":           auth.TasksWrite,
	"GET /v1/tasks/{id}/dead-letters":    auth.TasksRead,
	"POST /v1/events/{source}":           auth.TasksWrite, // wakes the tenant's monitors
	"POST /v1/keys":                      auth.KeysManage,
	"GET /v1/keys":                       auth.KeysManage,
	"DELETE /v1/keys/{id}":               auth.KeysManage,
	"GET /v1/tools":                      auth.ToolsRegister, // as MCP's list_registry_tools
	"POST /v1/tools":                     auth.ToolsRegister,
	"DELETE /v1/tools/{ref}":             auth.ToolsRegister,
	"GET /v1/audit":                      auth.AuditRead,

	// MCP checks each tool and resource with auth.Allowed itself.
	"/mcp": Authenticated,
}

// route dispatches r through the mux, answering what no route takes in the
// API's JSON error shape: 405 with Allow for a known path and another
// method, else 404. Asking the mux first costs a second match per request
// (a few hundred nanoseconds); a catch-all "/" route would be cheaper but
// turns every wrong method into a 404.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	probe := &headerProbe{header: http.Header{}}
	h.ServeHTTP(probe, r) // the mux's own answer: 404, or 405 with Allow
	if allow := probe.header.Get("Allow"); probe.status == http.StatusMethodNotAllowed && allow != "" {
		w.Header().Set("Allow", allow)
		var body errorBody
		body.Error.Code = "method_not_allowed"
		body.Error.Message = fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow)
		writeJSON(w, http.StatusMethodNotAllowed, body)
		return
	}
	s.error(w, r, vigil.Errorf(vigil.NotFound, "no route %s %s", r.Method, r.URL.Path))
}

// headerProbe records the status and headers a handler writes, and drops
// its body.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int)        { p.status = code }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.opts.Log.Ping(ctx); err != nil {
		s.opts.Logger.WarnContext(r.Context(), "store not ready", "err", err)
		s.error(w, r, vigil.Errorf(vigil.Unavailable, "store does not answer"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) eventSchema(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/schema+json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(streams.SchemaDocument())
}

// statusOf maps an error code to its HTTP status. It is the only such
// mapping for HTTP.
func statusOf(c vigil.Code) int {
	switch c {
	case vigil.Invalid:
		return http.StatusBadRequest
	case vigil.Unauthorized:
		return http.StatusUnauthorized
	case vigil.Forbidden:
		return http.StatusForbidden
	case vigil.NotFound:
		return http.StatusNotFound
	case vigil.Conflict:
		return http.StatusConflict
	case vigil.TooMany:
		return http.StatusTooManyRequests
	case vigil.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error struct {
		Code    vigil.Code `json:"code"`
		Message string     `json:"message"`
		Field   string     `json:"field,omitempty"`
	} `json:"error"`
}

// error answers err as JSON with its status. Internal errors are logged with
// their full chain and answered with a message that reveals nothing.
func (s *Server) error(w http.ResponseWriter, r *http.Request, err error) {
	code := vigil.ErrorCode(err)
	var body errorBody
	body.Error.Code = code
	body.Error.Message = vigil.ErrorMessage(err)
	var ve *vigil.Error
	if errors.As(err, &ve) {
		body.Error.Field = ve.Field
	}
	if code == vigil.Internal || code == vigil.Unavailable {
		s.opts.Logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, statusOf(code), body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // messages quote <placeholders>; JSON needs no HTML escaping
	_ = enc.Encode(v)
}

// decodeBody decodes a JSON request body into v, strictly: unknown fields,
// trailing data and bodies over the size cap are invalid. An empty body
// leaves v as it is when allowEmpty.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) error {
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if allowEmpty && errors.Is(err, io.EOF) {
			return nil
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return vigil.Errorf(vigil.Invalid, "request body over %d bytes", mbe.Limit)
		}
		return vigil.Errorf(vigil.Invalid, "request body: %v", err)
	}
	if dec.More() {
		return vigil.Errorf(vigil.Invalid, "request body: unexpected data after the JSON value")
	}
	return nil
}

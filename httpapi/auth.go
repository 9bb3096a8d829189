package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
)

// Authentication and authorization happen in two steps, both in this file:
//
//  1. authenticate, a middleware before the mux, turns the request's
//     credentials into a principal in its context, or records why it could
//     not (authFailure). It never answers the request itself, so that the
//     access log sees every request with its principal.
//  2. guard wraps every route's handler when it is registered (router), and
//     applies the route's entry in routePermissions: public routes pass;
//     others need a principal, then auth.Allowed of the route's permission.
//     Stream tokens pass only on the SSE routes of their own thread.
//     It also records refusals and state changes in the audit log, and
//     hides the reserved audit threads from the thread routes (audit.go).
//
// So there is one place credentials are read and one place permissions are
// checked, and a route cannot be registered without going through it.

// Route permissions that are not in auth's table.
const (
	// Public routes take no credentials: health, readiness, schemas.
	Public auth.Permission = "public"
	// Authenticated routes take any principal, and check permissions per
	// operation themselves with auth.Allowed (MCP at /mcp does, per tool).
	Authenticated auth.Permission = "authenticated"
)

// streamRoutes are the only routes a stream token is accepted on.
var streamRoutes = map[string]bool{
	"GET /v1/threads/{id}/events": true,
	"GET /v1/threads/{id}/replay": true,
}

// Route is a registered route and the permission it requires.
type Route struct {
	Pattern    string          // as registered: "GET /v1/threads/{id}"
	Permission auth.Permission // "" when routePermissions has no entry
	// AuditAction is the action the audit log records a success of the
	// route under ("task.pause"); "" for routes that change nothing.
	AuditAction string
}

// Routes returns every route registered on s, in registration order, with
// its permission, for tests and documentation.
func (s *Server) Routes() []Route {
	rs := make([]Route, len(s.mux.patterns))
	for i, p := range s.mux.patterns {
		rs[i] = Route{Pattern: p, Permission: routePermissions[p], AuditAction: routeActions[p]}
	}
	return rs
}

// router is the server's mux. Every handler registered through it is
// wrapped by guard, with the pattern it was registered under.
type router struct {
	*http.ServeMux
	guard    func(pattern string, h http.Handler) http.Handler
	patterns []string
}

func newRouter(guard func(string, http.Handler) http.Handler) *router {
	return &router{ServeMux: http.NewServeMux(), guard: guard}
}

// Handle registers h for pattern behind the guard.
func (m *router) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, m.guard(pattern, h))
}

// HandleFunc registers h for pattern behind the guard.
func (m *router) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

type authCtxKey int

const (
	failureKey authCtxKey = iota // error: why the request has no principal
	grantKey                     // auth.StreamGrant: the request came with a stream token
)

// local is the principal of every request while authentication is off.
var local = vigil.Principal{Tenant: vigil.DefaultTenant, User: "local", Roles: []string{auth.Admin}}

// errCredentialInURL refuses long-lived credentials in a query string.
var errCredentialInURL = vigil.Errorf(vigil.Unauthorized,
	"API keys and JWTs are never accepted in a URL, where proxies, logs and browser history keep them; "+
		"send them in the Authorization header, or get a short-lived stream token from POST /v1/threads/{id}/stream-token for ?token=")

// authenticate puts the request's principal in its context: from its
// Authorization header (an API key or a JWT), or from a stream token in
// ?token=; or, while authentication is off, the local admin of the
// default tenant. A request whose credentials fail carries the failure
// instead, for guard to answer; so does one with a long-lived credential
// anywhere in its query string, whether authentication is on or off.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		p, grant, err := s.credentials(r)
		switch {
		case err != nil:
			ctx = context.WithValue(ctx, failureKey, err)
		case grant != nil:
			ctx = context.WithValue(vigil.WithPrincipal(ctx, p), grantKey, *grant)
		default:
			ctx = vigil.WithPrincipal(ctx, p)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// credentials reads the request's credentials; see authenticate.
func (s *Server) credentials(r *http.Request) (vigil.Principal, *auth.StreamGrant, error) {
	q := r.URL.Query()
	for _, vs := range q {
		for _, v := range vs {
			if auth.LongLived(v) {
				return vigil.Principal{}, nil, errCredentialInURL
			}
		}
	}
	if s.opts.Auth == nil {
		return local, nil, nil
	}
	header, token := r.Header.Get("Authorization"), q.Get("token")
	switch {
	case header != "" && token != "":
		return vigil.Principal{}, nil, vigil.Errorf(vigil.Unauthorized, "send one credential: an Authorization header or a stream token in ?token=, not both")
	case token != "":
		g, err := s.opts.Auth.VerifyStreamToken(token)
		if err != nil {
			return vigil.Principal{}, nil, err
		}
		return g.Principal(), &g, nil
	}
	p, err := s.opts.Auth.Authenticate(r.Context(), header)
	if err != nil {
		if vigil.ErrorCode(err) != vigil.Unauthorized {
			s.opts.Logger.WarnContext(r.Context(), "cannot check credentials", "err", err)
		}
		return vigil.Principal{}, nil, err
	}
	return p, nil, nil
}

// guard returns h behind the permission routePermissions gives pattern;
// see the top of this file.
func (s *Server) guard(pattern string, h http.Handler) http.Handler {
	perm, declared := routePermissions[pattern]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		switch {
		case !declared:
			// Fail closed: a route nobody classified serves nobody.
			s.error(w, r, fmt.Errorf("httpapi: route %q has no entry in routePermissions", pattern))
			return
		case perm == Public:
			h.ServeHTTP(w, r)
			return
		}
		if err, ok := ctx.Value(failureKey).(error); ok {
			s.denied(w, r, err)
			return
		}
		if g, ok := ctx.Value(grantKey).(auth.StreamGrant); ok {
			switch {
			case !streamRoutes[pattern]:
				s.denied(w, r, vigil.Errorf(vigil.Unauthorized, "a stream token is accepted only on GET /v1/threads/{id}/events and /replay; send an API key or a JWT in the Authorization header"))
			case r.PathValue("id") != g.Thread:
				s.denied(w, r, vigil.Errorf(vigil.Unauthorized, "this stream token is for another thread"))
			default:
				s.serveAllowed(w, r, pattern, h)
			}
			return
		}
		p, ok := vigil.PrincipalFrom(ctx)
		if !ok {
			s.denied(w, r, auth.ErrNoCredentials)
			return
		}
		if perm != Authenticated {
			if err := auth.Allowed(p, perm); err != nil {
				if vigil.ErrorCode(err) == vigil.Forbidden {
					s.recordDenial(r, p, pattern, perm)
				}
				s.denied(w, r, err)
				return
			}
		}
		s.serveAllowed(w, r, pattern, h)
	})
}

// denied answers a request refused by authentication or authorization.
// A 401 carries the WWW-Authenticate challenge of RFC 6750: bare when
// the request had no credentials, with error="invalid_token" and the reason
// when they failed. On /mcp it also names the protected resource metadata
// (RFC 9728 §5.1) when the server publishes it (wellknown.go).
func (s *Server) denied(w http.ResponseWriter, r *http.Request, err error) {
	if vigil.ErrorCode(err) == vigil.Unauthorized {
		challenge := `Bearer realm="vigil"`
		if r.Pattern == mcpPattern && s.oauthDiscovery() {
			challenge += `, resource_metadata="` + s.resourceMetadataURL(r) + `"`
		}
		if !errors.Is(err, auth.ErrNoCredentials) {
			desc := strings.NewReplacer(`"`, "'", `\`, "").Replace(vigil.ErrorMessage(err))
			challenge += `, error="invalid_token", error_description="` + desc + `"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	s.error(w, r, err)
}

// keyRoutes registers the API key routes. They act on the admin's own
// tenant only; a key is shown once, in the answer that creates it.
//
//	POST   /v1/keys         create a key: {"roles", "user", "name", "expires_at"} (201)
//	GET    /v1/keys         the tenant's keys, revoked ones included, no secrets
//	DELETE /v1/keys/{id}    revoke a key (204, also when it was revoked already)
//	POST   /v1/threads/{id}/stream-token   a stream token for the thread (201)
func (s *Server) keyRoutes() {
	s.mux.HandleFunc("POST /v1/keys", s.createKey)
	s.mux.HandleFunc("GET /v1/keys", s.listKeys)
	s.mux.HandleFunc("DELETE /v1/keys/{id}", s.revokeKey)
	s.mux.HandleFunc("POST /v1/threads/{id}/stream-token", s.streamToken)
}

// keyView is a key as the API shows it: never its secret's hash.
type keyView struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	User      string    `json:"user"`
	Roles     []string  `json:"roles"`
	Name      string    `json:"name,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// Key is the key itself, only in the answer that creates it.
	Key string `json:"key,omitempty"`
}

func viewOf(k auth.Key) keyView {
	return keyView{
		ID: k.ID, Tenant: k.Tenant, User: k.User, Roles: k.Roles, Name: k.Name,
		CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt,
	}
}

// keyService returns the key service, or answers 503 and returns nil when
// the server has none.
func (s *Server) keyService(w http.ResponseWriter, r *http.Request) *auth.Keys {
	if s.opts.Keys == nil {
		s.error(w, r, vigil.Errorf(vigil.Unavailable, "API keys are not available on this server"))
	}
	return s.opts.Keys
}

type createKeyRequest struct {
	Roles     []string  `json:"roles"`
	User      string    `json:"user"`
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	ks := s.keyService(w, r)
	if ks == nil {
		return
	}
	tenant, err := vigil.TenantFrom(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	var req createKeyRequest
	if err := s.decodeBody(w, r, &req, false); err != nil {
		s.error(w, r, err)
		return
	}
	raw, k, err := ks.Create(r.Context(), auth.KeySpec{Tenant: tenant, User: req.User, Roles: req.Roles, Name: req.Name, ExpiresAt: req.ExpiresAt})
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.opts.Logger.InfoContext(r.Context(), "API key created", "key_id", k.ID, "user", k.User, "roles", k.Roles)
	v := viewOf(k)
	v.Key = raw
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", "/v1/keys/"+k.ID)
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	ks := s.keyService(w, r)
	if ks == nil {
		return
	}
	tenant, err := vigil.TenantFrom(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	keys, err := ks.List(r.Context(), tenant)
	if err != nil {
		s.error(w, r, err)
		return
	}
	views := make([]keyView, len(keys))
	for i, k := range keys {
		views[i] = viewOf(k)
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": views})
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	ks := s.keyService(w, r)
	if ks == nil {
		return
	}
	tenant, err := vigil.TenantFrom(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	id := r.PathValue("id")
	if err := ks.Revoke(r.Context(), tenant, id); err != nil {
		s.error(w, r, err)
		return
	}
	s.opts.Logger.InfoContext(r.Context(), "API key revoked", "key_id", id)
	w.WriteHeader(http.StatusNoContent)
}

// streamTokenResponse is the answer of POST /v1/threads/{id}/stream-token.
type streamTokenResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	// EventsURL and ReplayURL are the paths to open with it.
	EventsURL string `json:"events_url"`
	ReplayURL string `json:"replay_url"`
}

// streamToken is POST /v1/threads/{id}/stream-token: a short-lived token
// for EventSource, which cannot send an Authorization header. The thread
// must exist in the principal's tenant.
func (s *Server) streamToken(w http.ResponseWriter, r *http.Request) {
	tenant, id, ok := s.threadOf(w, r)
	if !ok {
		return
	}
	if _, err := s.opts.Log.Thread(r.Context(), tenant, id); err != nil {
		s.error(w, r, err)
		return
	}
	p, _ := vigil.PrincipalFrom(r.Context())
	tok, exp, err := s.streamSigner.StreamToken(p, id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	base := "/v1/threads/" + id
	writeJSON(w, http.StatusCreated, streamTokenResponse{
		Token: tok, ExpiresAt: exp,
		EventsURL: base + "/events?token=" + tok, ReplayURL: base + "/replay?token=" + tok,
	})
}

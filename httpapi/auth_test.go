package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/agent"
	"github.com/vigilhq/vigil/audit"
	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/httpapi"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/metrics"
	"github.com/vigilhq/vigil/store"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

const (
	tenantA  = "acme"
	tenantB  = "globex"
	issuer   = "https://idp.example.com/"
	audience = "vigil"
)

var jwtSecret = []byte("a shared HS256 secret of 32+ bytes, for tests")

// authEnv is an API server with authentication on (API keys and HS256
// JWTs), memory, tasks and keys, over a real bolt file, and a clock its
// test moves.
type authEnv struct {
	*httptest.Server
	api     *httpapi.Server
	logs    *syncBuffer
	backend store.Backend
	keys    *auth.Keys
	tasks   *tasks.Manager
	memory  *memory.Service
	tools   *toolsregistry.Sync
	clock   atomic.Int64 // unix nanoseconds
	thread  string       // a thread of tenant A
}

func (e *authEnv) now() time.Time { return time.Unix(0, e.clock.Load()).UTC() }

func (e *authEnv) advance(d time.Duration) { e.clock.Add(int64(d)) }

func serveAuth(t *testing.T) *authEnv {
	t.Helper()
	e := &authEnv{}
	e.clock.Store(time.Now().UnixNano())
	e.backend = open(t, storeConfigs(t, 0)[config.DriverBolt])
	e.keys = auth.NewKeys(e.backend, auth.KeysOptions{Now: e.now})
	v, err := auth.NewJWT(auth.JWTOptions{HS256Secret: jwtSecret, Issuer: issuer, Audience: audience, Now: e.now})
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Options{Keys: e.keys, JWT: v, StreamTTL: time.Minute, Now: e.now})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := store.Tasks(e.backend)
	if err != nil {
		t.Fatal(err)
	}
	e.tasks = tasks.NewManager(tasks.Options{Store: ts, Log: e.backend})
	if e.memory, err = memory.New(e.backend, memory.Options{Key: memory.NewKey()}); err != nil {
		t.Fatal(err)
	}
	if e.tools, err = toolsregistry.NewSync(toolsregistry.New(toolsregistry.Options{}), toolsregistry.SyncOptions{Store: e.backend, Key: memory.NewKey()}); err != nil {
		t.Fatal(err)
	}
	e.logs = &syncBuffer{}
	logger := slog.New(vigil.LogHandler(slog.NewJSONHandler(e.logs, nil)))
	e.api = httpapi.New(httpapi.Options{
		Log: e.backend, Hub: streams.NewHub(e.backend, streams.HubOptions{Logger: logger, Wait: time.Second}), Logger: logger,
		Auth: a, Keys: e.keys, Tasks: e.tasks, Memory: e.memory, Tools: e.tools, AuthorizationServer: issuer,
		Assistant: agent.NewAssistant(agent.AssistantOptions{Tasks: e.tasks, Log: e.backend}),
		Metrics:   metrics.NewTasks(metrics.TasksOptions{Logger: logger}).Handler(),
	})
	e.Server = httptest.NewServer(e.api)
	t.Cleanup(e.Server.Close)
	e.thread = e.newThread(t, tenantA)
	return e
}

// logText returns the server's log so far.
func (e *authEnv) logText() string {
	e.logs.mu.Lock()
	defer e.logs.mu.Unlock()
	return e.logs.String()
}

// as returns a context acting as p, for fixtures made past the API.
func as(p vigil.Principal) context.Context { return vigil.WithPrincipal(context.Background(), p) }

var adminA = vigil.Principal{Tenant: tenantA, User: "alice", Roles: []string{auth.Admin}}

func (e *authEnv) newThread(t *testing.T, tenant string) string {
	t.Helper()
	th := streams.Thread{ID: vigil.NewID("th_"), Tenant: tenant, Title: "t", CreatedAt: e.now()}
	if err := e.backend.CreateThread(context.Background(), th); err != nil {
		t.Fatal(err)
	}
	return th.ID
}

// key makes an API key and returns its Authorization header.
func (e *authEnv) key(t *testing.T, tenant, user, role string) string {
	t.Helper()
	raw, _, err := e.keys.Create(context.Background(), auth.KeySpec{Tenant: tenant, User: user, Roles: []string{role}})
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + raw
}

// jwt signs a token with claims over valid defaults, and returns its
// Authorization header.
func (e *authEnv) jwt(t *testing.T, tenant, user, role string, change func(jwt.MapClaims)) string {
	t.Helper()
	c := jwt.MapClaims{
		"iss": issuer, "aud": audience, "sub": user, "tenant": tenant, "roles": []string{role},
		"iat": e.now().Unix(), "exp": e.now().Add(10 * time.Minute).Unix(),
	}
	if change != nil {
		change(c)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(jwtSecret)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + s
}

const taskSpec = `{
	"title": "Beijing weather",
	"kind": "periodic",
	"trigger": {"cron": "0 8 * * *", "tz": "Asia/Shanghai"},
	"instruction": "Push me Beijing's weather",
	"slots": {"city": "Beijing"},
	"tools": ["weather"],
	"steps": [{"tool": "weather", "args": {"city": "{{city}}"}}]
}`

// task makes a task of tenant A, taken through the given actions.
func (e *authEnv) task(t *testing.T, actions ...string) tasks.Task {
	t.Helper()
	var spec tasks.Spec
	if err := json.Unmarshal([]byte(taskSpec), &spec); err != nil {
		t.Fatal(err)
	}
	ctx := as(adminA)
	task, err := e.tasks.Create(ctx, spec)
	for _, a := range actions {
		if err != nil {
			break
		}
		switch a {
		case "confirm":
			task, err = e.tasks.Confirm(ctx, task.ID)
		case "pause":
			task, err = e.tasks.Pause(ctx, task.ID)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func (e *authEnv) run(t *testing.T) tasks.Run {
	t.Helper()
	r, err := e.tasks.RunNow(as(adminA), e.task(t, "confirm").ID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// result is what a request got back.
type result struct {
	status int
	header http.Header
	body   []byte // empty for an event stream, which is not read
}

// hit sends one request with the given Authorization header ("" for
// none). An event stream's body is not read: its status and headers are
// the answer.
func hit(t *testing.T, method, url, body, authz string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := plainClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	res := result{status: resp.StatusCode, header: resp.Header}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		res.body, _ = io.ReadAll(resp.Body)
	}
	return res
}

func (r result) apiError(t *testing.T) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return e
}

// routeCase is one route of the matrix.
type routeCase struct {
	pattern string
	public  bool
	roles   string // the roles of tenant A that may: a(dmin) d(eveloper) m(ember) v(iewer)
	ok      int    // the status of a principal that may
	tenantB int    // the status of tenant B's admin
	// req returns the path and body of a request acting as p, making fresh
	// fixtures in tenant A as the route needs.
	req func(t *testing.T, e *authEnv, p vigil.Principal) (path, body string)
}

func fixed(path string) func(*testing.T, *authEnv, vigil.Principal) (string, string) {
	return func(*testing.T, *authEnv, vigil.Principal) (string, string) { return path, "" }
}

func onThread(suffix, body string) func(*testing.T, *authEnv, vigil.Principal) (string, string) {
	return func(_ *testing.T, e *authEnv, _ vigil.Principal) (string, string) {
		return "/v1/threads/" + e.thread + suffix, body
	}
}

func onTask(suffix, body string, actions ...string) func(*testing.T, *authEnv, vigil.Principal) (string, string) {
	return func(t *testing.T, e *authEnv, _ vigil.Principal) (string, string) {
		return "/v1/tasks/" + e.task(t, actions...).ID + suffix, body
	}
}

func onRun(suffix string) func(*testing.T, *authEnv, vigil.Principal) (string, string) {
	return func(t *testing.T, e *authEnv, _ vigil.Principal) (string, string) {
		return "/v1/runs/" + e.run(t).ID + suffix, ""
	}
}

// routeCases is every route of the API with its exact outcomes. Adding a
// route without a row here fails TestRouteMatrix.
var routeCases = []routeCase{
	{pattern: "GET /healthz", public: true, ok: 200, req: fixed("/healthz")},
	{pattern: "GET /readyz", public: true, ok: 200, req: fixed("/readyz")},
	{pattern: "GET /v1/schema/events", public: true, ok: 200, req: fixed("/v1/schema/events")},
	{pattern: "GET /.well-known/oauth-protected-resource", public: true, ok: 200, req: fixed("/.well-known/oauth-protected-resource")},
	{pattern: "GET /.well-known/oauth-protected-resource/mcp", public: true, ok: 200, req: fixed("/.well-known/oauth-protected-resource/mcp")},
	// Metrics are the whole process's, any tenant's admin reads them.
	{pattern: "GET /metrics", roles: "a", ok: 200, tenantB: 200, req: fixed("/metrics")},

	{pattern: "POST /v1/threads", roles: "adm", ok: 201, tenantB: 201, req: fixed("/v1/threads")},
	{pattern: "GET /v1/threads/{id}", roles: "admv", ok: 200, tenantB: 404, req: onThread("", "")},
	{pattern: "POST /v1/threads/{id}/events", roles: "adm", ok: 201, tenantB: 404,
		req: onThread("/events", `{"type":"text","data":{"message_id":"m1","text":"hi"}}`)},
	{pattern: "GET /v1/threads/{id}/events", roles: "admv", ok: 200, tenantB: 404, req: onThread("/events", "")},
	{pattern: "GET /v1/threads/{id}/replay", roles: "admv", ok: 200, tenantB: 404, req: onThread("/replay", "")},
	{pattern: "POST /v1/threads/{id}/messages", roles: "adm", ok: 202, tenantB: 404, req: onThread("/messages", `{"text":"hello"}`)},
	{pattern: "POST /v1/threads/{id}/stream-token", roles: "admv", ok: 201, tenantB: 404, req: onThread("/stream-token", "")},

	{pattern: "GET /v1/memory/profile", roles: "adm", ok: 200, tenantB: 404,
		req: func(t *testing.T, e *authEnv, p vigil.Principal) (string, string) {
			// Every user of tenant A has a profile; tenant B's admin has none.
			if p.Tenant == tenantA {
				if _, err := e.memory.PutProfile(as(p), memory.Profile{HomeCity: "Hangzhou"}); err != nil {
					t.Fatal(err)
				}
			}
			return "/v1/memory/profile", ""
		}},
	{pattern: "PUT /v1/memory/profile", roles: "adm", ok: 200, tenantB: 200, req: func(*testing.T, *authEnv, vigil.Principal) (string, string) {
		return "/v1/memory/profile", `{"home_city":"Beijing"}`
	}},
	{pattern: "DELETE /v1/memory/profile", roles: "adm", ok: 204, tenantB: 204, req: fixed("/v1/memory/profile")},
	{pattern: "GET /v1/memory/session/{id}", roles: "admv", ok: 200, tenantB: 404,
		req: func(_ *testing.T, e *authEnv, _ vigil.Principal) (string, string) {
			return "/v1/memory/session/" + e.thread, ""
		}},

	{pattern: "POST /v1/tasks", roles: "adm", ok: 201, tenantB: 201, req: func(*testing.T, *authEnv, vigil.Principal) (string, string) {
		return "/v1/tasks", taskSpec
	}},
	{pattern: "GET /v1/tasks", roles: "admv", ok: 200, tenantB: 200, req: fixed("/v1/tasks")},
	{pattern: "GET /v1/tasks/{id}", roles: "admv", ok: 200, tenantB: 404, req: onTask("", "")},
	{pattern: "PATCH /v1/tasks/{id}", roles: "adm", ok: 200, tenantB: 404, req: onTask("", `{"title":"renamed"}`)},
	{pattern: "PUT /v1/tasks/{id}", roles: "adm", ok: 200, tenantB: 404, req: onTask("", taskSpec)},
	{pattern: "DELETE /v1/tasks/{id}", roles: "adm", ok: 204, tenantB: 404, req: onTask("", "")},
	{pattern: "POST /v1/tasks/{id}/confirm", roles: "adm", ok: 200, tenantB: 404, req: onTask("/confirm", "")},
	{pattern: "POST /v1/tasks/{id}/pause", roles: "adm", ok: 200, tenantB: 404, req: onTask("/pause", "", "confirm")},
	{pattern: "POST /v1/tasks/{id}/resume", roles: "adm", ok: 200, tenantB: 404, req: onTask("/resume", "", "confirm", "pause")},
	{pattern: "POST /v1/tasks/{id}/archive", roles: "adm", ok: 200, tenantB: 404, req: onTask("/archive", "")},
	{pattern: "POST /v1/tasks/{id}/run", roles: "adm", ok: 201, tenantB: 404, req: onTask("/run", "", "confirm")},
	{pattern: "GET /v1/tasks/{id}/runs", roles: "admv", ok: 200, tenantB: 404, req: onTask("/runs", "")},
	{pattern: "GET /v1/runs/{id}", roles: "admv", ok: 200, tenantB: 404, req: onRun("")},
	{pattern: "POST /v1/runs/{id}/cancel", roles: "adm", ok: 200, tenantB: 404, req: onRun("/cancel")},
	// A queued run cannot be retried (409): enough to show who gets past
	// the guard and whose run it is.
	{pattern: "POST /v1/runs/{id}/retry", roles: "adm", ok: 409, tenantB: 404, req: onRun("/retry")},
	{pattern: "GET /v1/tasks/{id}/dead-letters", roles: "admv", ok: 200, tenantB: 404, req: onTask("/dead-letters", "")},
	{pattern: "POST /v1/events/{source}", roles: "adm", ok: 202, tenantB: 202, req: func(*testing.T, *authEnv, vigil.Principal) (string, string) {
		return "/v1/events/oil-price", `{"price":71.5}`
	}},

	{pattern: "POST /v1/keys", roles: "a", ok: 201, tenantB: 201, req: func(*testing.T, *authEnv, vigil.Principal) (string, string) {
		return "/v1/keys", `{"roles":["viewer"],"name":"from the matrix"}`
	}},
	{pattern: "GET /v1/keys", roles: "a", ok: 200, tenantB: 200, req: fixed("/v1/keys")},
	{pattern: "DELETE /v1/keys/{id}", roles: "a", ok: 204, tenantB: 404, req: func(t *testing.T, e *authEnv, _ vigil.Principal) (string, string) {
		_, k, err := e.keys.Create(context.Background(), auth.KeySpec{Tenant: tenantA, User: "carol", Roles: []string{auth.Viewer}})
		if err != nil {
			t.Fatal(err)
		}
		return "/v1/keys/" + k.ID, ""
	}},

	{pattern: "GET /v1/tools", roles: "ad", ok: 200, tenantB: 200, req: fixed("/v1/tools")},
	{pattern: "POST /v1/tools", roles: "ad", ok: 201, tenantB: 201, req: func(*testing.T, *authEnv, vigil.Principal) (string, string) {
		return "/v1/tools", `{"name":"matrix.t` + vigil.NewID("") + `","description":"From the matrix.","url":"https://plugins.example.com/t","secret":"0123456789abcdef"}`
	}},
	{pattern: "DELETE /v1/tools/{ref}", roles: "ad", ok: 204, tenantB: 404, req: func(t *testing.T, e *authEnv, _ vigil.Principal) (string, string) {
		l, err := e.tools.Register(context.Background(), tenantA, toolsregistry.PluginSpec{
			Name: "matrix.t" + vigil.NewID(""), Description: "From the matrix.", URL: "https://plugins.example.com/t", Secret: "0123456789abcdef",
		})
		if err != nil {
			t.Fatal(err)
		}
		return "/v1/tools/" + l.Tool.Ref(), ""
	}},

	{pattern: "GET /v1/audit", roles: "a", ok: 200, tenantB: 200, req: fixed("/v1/audit")},
}

// credential is one column of the matrix.
type credential struct {
	name   string
	header string
	p      vigil.Principal // who it acts as, when it is valid
	role   byte            // its role's letter in routeCase.roles, for tenant A
	want   func(rc routeCase) int
}

// TestRouteMatrix walks every route as: no credentials, a revoked key, an
// expired JWT, a JWT for another audience, tenant B's admin, and each role
// of tenant A (by API key, the developer by JWT), and checks the exact
// status of each; 401s carry WWW-Authenticate, 403s name the permission.
func TestRouteMatrix(t *testing.T) {
	e := serveAuth(t)

	revoked := e.key(t, tenantA, "alice", auth.Admin)
	id, _, _ := auth.ParseKey(strings.TrimPrefix(revoked, "Bearer "))
	if err := e.keys.Revoke(context.Background(), tenantA, id); err != nil {
		t.Fatal(err)
	}
	expired := e.jwt(t, tenantA, "alice", auth.Admin, func(c jwt.MapClaims) {
		c["iat"] = e.now().Add(-time.Hour).Unix()
		c["exp"] = e.now().Add(-time.Minute).Unix()
	})
	wrongAud := e.jwt(t, tenantA, "alice", auth.Admin, func(c jwt.MapClaims) { c["aud"] = "another-service" })

	unauthorized := func(rc routeCase) int {
		if rc.public {
			return rc.ok
		}
		return 401
	}
	role := func(letter byte) func(rc routeCase) int {
		return func(rc routeCase) int {
			if rc.public || strings.IndexByte(rc.roles, letter) >= 0 {
				return rc.ok
			}
			return 403
		}
	}
	creds := []credential{
		{name: "none", want: unauthorized},
		{name: "revoked key", header: revoked, want: unauthorized},
		{name: "expired JWT", header: expired, want: unauthorized},
		{name: "wrong audience JWT", header: wrongAud, want: unauthorized},
		{name: "tenant B admin", header: e.key(t, tenantB, "bob", auth.Admin), p: vigil.Principal{Tenant: tenantB, User: "bob"},
			want: func(rc routeCase) int {
				if rc.public {
					return rc.ok
				}
				return rc.tenantB
			}},
		{name: "A admin", header: e.key(t, tenantA, "alice", auth.Admin), p: vigil.Principal{Tenant: tenantA, User: "alice"}, role: 'a'},
		{name: "A developer (JWT)", header: e.jwt(t, tenantA, "dave", auth.Developer, nil), p: vigil.Principal{Tenant: tenantA, User: "dave"}, role: 'd'},
		{name: "A member", header: e.key(t, tenantA, "mary", auth.Member), p: vigil.Principal{Tenant: tenantA, User: "mary"}, role: 'm'},
		{name: "A viewer", header: e.key(t, tenantA, "vic", auth.Viewer), p: vigil.Principal{Tenant: tenantA, User: "vic"}, role: 'v'},
	}

	// Every registered route has a row, and every row a route.
	var patterns []string
	for _, r := range e.api.Routes() {
		patterns = append(patterns, r.Pattern)
	}
	for _, rc := range routeCases {
		if !slices.Contains(patterns, rc.pattern) {
			t.Errorf("the matrix has a row for %s, which is not a route", rc.pattern)
		}
	}
	for _, p := range patterns {
		if !slices.ContainsFunc(routeCases, func(rc routeCase) bool { return rc.pattern == p }) {
			t.Errorf("route %s has no row in the matrix: add one to routeCases", p)
		}
	}

	for _, rc := range routeCases {
		method, _, _ := strings.Cut(rc.pattern, " ")
		for _, c := range creds {
			t.Run(rc.pattern+"/"+c.name, func(t *testing.T) {
				want := 0
				if c.want != nil {
					want = c.want(rc)
				} else {
					want = role(c.role)(rc)
				}
				p := c.p
				path, body := rc.req(t, e, p)
				res := hit(t, method, e.URL+path, body, c.header)
				if res.status != want {
					t.Fatalf("%s %s as %s: %d %s, want %d", method, path, c.name, res.status, res.body, want)
				}
				switch res.status {
				case 401:
					if !strings.HasPrefix(res.header.Get("WWW-Authenticate"), `Bearer realm="vigil"`) {
						t.Errorf("401 without a Bearer challenge: %q", res.header.Get("WWW-Authenticate"))
					}
					if e := res.apiError(t); e.Error.Code != "unauthorized" {
						t.Errorf("401 body %+v", e)
					}
				case 403:
					if e := res.apiError(t); e.Error.Code != "forbidden" || !strings.Contains(e.Error.Message, "missing permission ") {
						t.Errorf("403 body %+v does not name the missing permission", e)
					}
				}
			})
		}
	}
}

// TestRoutePermissions checks that every route declares its permission,
// and that the stream-token routes are read-only thread routes.
func TestRoutePermissions(t *testing.T) {
	e := serveAuth(t)
	known := append(auth.Permissions(), httpapi.Public, httpapi.Authenticated)
	for _, r := range e.api.Routes() {
		if !slices.Contains(known, r.Permission) {
			t.Errorf("route %s has permission %q: give it an entry in routePermissions", r.Pattern, r.Permission)
		}
		if (r.Pattern == "GET /v1/threads/{id}/events" || r.Pattern == "GET /v1/threads/{id}/replay") && r.Permission != auth.ThreadsRead {
			t.Errorf("SSE route %s needs %s, has %s", r.Pattern, auth.ThreadsRead, r.Permission)
		}
	}
}

// TestRouteActions checks that every route that can change state names
// the action the audit log records it under, and no other route does: a
// route added without an entry in routeActions fails here.
func TestRouteActions(t *testing.T) {
	e := serveAuth(t)
	for _, r := range e.api.Routes() {
		method, _, hasMethod := strings.Cut(r.Pattern, " ")
		switch {
		case !hasMethod:
			// Any method: the route checks and audits each operation itself.
			if r.Permission != httpapi.Authenticated || r.AuditAction != "" {
				t.Errorf("route %s takes any method: it needs permission %s and no audit action, has %q and %q",
					r.Pattern, httpapi.Authenticated, r.Permission, r.AuditAction)
			}
		case method == http.MethodGet:
			if r.AuditAction != "" {
				t.Errorf("GET route %s has audit action %q; reads are not audited", r.Pattern, r.AuditAction)
			}
		case !audit.ValidAction(r.AuditAction):
			t.Errorf("route %s changes state but has audit action %q: give it an entry in routeActions", r.Pattern, r.AuditAction)
		}
	}
}

// TestUndeclaredRouteFailsClosed mounts a handler with no permission entry:
// it serves nobody.
func TestUndeclaredRouteFailsClosed(t *testing.T) {
	e := serveAuth(t)
	e.api.Handle("GET /v1/undeclared", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the undeclared route ran")
	}))
	res := hit(t, "GET", e.URL+"/v1/undeclared", "", e.key(t, tenantA, "alice", auth.Admin))
	if res.status != 500 {
		t.Errorf("undeclared route: %d %s, want 500", res.status, res.body)
	}
}

func TestStreamTokens(t *testing.T) {
	e := serveAuth(t)
	member := e.key(t, tenantA, "mary", auth.Member)
	postText := func(text string) {
		body := `{"type":"text","data":{"message_id":"m1","text":"` + text + `"}}`
		if res := hit(t, "POST", e.URL+"/v1/threads/"+e.thread+"/events", body, member); res.status != 201 {
			t.Fatalf("post: %d %s", res.status, res.body)
		}
	}
	postText("one")

	var tok struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
		EventsURL string    `json:"events_url"`
		ReplayURL string    `json:"replay_url"`
	}
	res := hit(t, "POST", e.URL+"/v1/threads/"+e.thread+"/stream-token", "", member)
	if res.status != 201 || json.Unmarshal(res.body, &tok) != nil || !strings.HasPrefix(tok.Token, auth.StreamTokenPrefix) {
		t.Fatalf("stream-token: %d %s", res.status, res.body)
	}
	if res.header.Get("Cache-Control") != "no-store" || tok.EventsURL != "/v1/threads/"+e.thread+"/events?token="+tok.Token {
		t.Errorf("stream-token answer %+v, Cache-Control %q", tok, res.header.Get("Cache-Control"))
	}
	if d := tok.ExpiresAt.Sub(e.now()); d <= 0 || d > time.Minute {
		t.Errorf("expires in %s, want within the configured minute", d)
	}

	// Accepted on the SSE stream, as EventSource sends it (no header).
	frames, resp := stream(t, e.URL+tok.EventsURL, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("events with the token: %s", resp.Status)
	}
	if f := next(t, frames); f.event != "text" || !strings.Contains(f.data, `"one"`) {
		t.Fatalf("first frame %+v", f)
	}
	postText("two")
	if f := next(t, frames); f.event != "text" || !strings.Contains(f.data, `"two"`) {
		t.Fatalf("live frame %+v", f)
	}
	// And on replay, JSON and SSE.
	var rp struct{ Events []streams.Event }
	if res := hit(t, "GET", e.URL+tok.ReplayURL, "", ""); res.status != 200 || json.Unmarshal(res.body, &rp) != nil || len(rp.Events) != 2 {
		t.Fatalf("replay with the token: %d %s", res.status, res.body)
	}
	replayed, resp := stream(t, e.URL+tok.ReplayURL, map[string]string{"Accept": "text/event-stream"})
	if resp.StatusCode != 200 || next(t, replayed).event != "text" {
		t.Fatalf("SSE replay with the token: %s", resp.Status)
	}

	// Refused everywhere else: another route, a write, another thread,
	// another thread's token; with a header too.
	other := e.newThread(t, tenantA)
	refused := []struct{ name, method, path, msg string }{
		{"thread record", "GET", "/v1/threads/" + e.thread, "accepted only on GET /v1/threads/{id}/events and /replay"},
		{"posting", "POST", "/v1/threads/" + e.thread + "/events", "accepted only on"},
		{"a new token", "POST", "/v1/threads/" + e.thread + "/stream-token", "accepted only on"},
		{"tasks", "GET", "/v1/tasks", "accepted only on"},
		{"session memory", "GET", "/v1/memory/session/" + e.thread, "accepted only on"},
		{"another thread", "GET", "/v1/threads/" + other + "/events", "for another thread"},
		{"another thread's replay", "GET", "/v1/threads/" + other + "/replay", "for another thread"},
	}
	for _, r := range refused {
		sep := "?"
		if strings.Contains(r.path, "?") {
			sep = "&"
		}
		res := hit(t, r.method, e.URL+r.path+sep+"token="+tok.Token, `{"type":"text","data":{"message_id":"m","text":"x"}}`, "")
		if res.status != 401 || !strings.Contains(res.apiError(t).Error.Message, r.msg) {
			t.Errorf("%s with the stream token: %d %s, want 401 %q", r.name, res.status, res.body, r.msg)
		}
	}
	if res := hit(t, "GET", e.URL+tok.ReplayURL, "", member); res.status != 401 || !strings.Contains(string(res.body), "not both") {
		t.Errorf("token and header: %d %s", res.status, res.body)
	}
	if res := hit(t, "GET", e.URL+"/v1/threads/"+e.thread+"/events", "", "Bearer "+tok.Token); res.status != 401 || !strings.Contains(string(res.body), "?token=") {
		t.Errorf("stream token in the header: %d %s", res.status, res.body)
	}
	tampered := tok.Token[:len(tok.Token)-2] + "AA"
	if res := hit(t, "GET", e.URL+"/v1/threads/"+e.thread+"/replay?token="+tampered, "", ""); res.status != 401 {
		t.Errorf("tampered token: %d %s", res.status, res.body)
	}

	// Tenant B cannot get a token for tenant A's thread.
	if res := hit(t, "POST", e.URL+"/v1/threads/"+e.thread+"/stream-token", "", e.key(t, tenantB, "bob", auth.Admin)); res.status != 404 {
		t.Errorf("tenant B's token for A's thread: %d %s", res.status, res.body)
	}

	// Expired: refused, saying how to get a new one.
	e.advance(time.Minute)
	res = hit(t, "GET", e.URL+tok.ReplayURL, "", "")
	if res.status != 401 || !strings.Contains(res.apiError(t).Error.Message, "expired") ||
		!strings.Contains(res.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("expired token: %d %s %q", res.status, res.body, res.header.Get("WWW-Authenticate"))
	}
}

// TestCredentialsInURL checks that API keys and JWTs are refused in any
// query parameter, on any route, with a message saying why, whether
// authentication is on or off.
func TestCredentialsInURL(t *testing.T) {
	e := serveAuth(t)
	key := strings.TrimPrefix(e.key(t, tenantA, "alice", auth.Admin), "Bearer ")
	token := strings.TrimPrefix(e.jwt(t, tenantA, "alice", auth.Admin, nil), "Bearer ")
	off := serve(t, open(t, storeConfigs(t, 0)[config.DriverBolt]), httpapi.Options{})
	offThread := createThread(t, off.URL)
	for _, srv := range []struct {
		name, url, thread string
	}{{"auth on", e.URL, e.thread}, {"auth off", off.URL, offThread}} {
		for _, q := range []string{"token=" + key, "access_token=" + token, "token=" + token, "api_key=" + key, "after=0&key=" + key} {
			for _, path := range []string{"/v1/threads/" + srv.thread + "/events", "/v1/threads/" + srv.thread + "/replay", "/v1/tasks"} {
				res := hit(t, "GET", srv.url+path+"?"+q, "", "")
				if res.status != 401 || !strings.Contains(res.apiError(t).Error.Message, "never accepted in a URL") {
					t.Errorf("%s: GET %s?%.30s…: %d %s", srv.name, path, q, res.status, res.body)
				}
			}
		}
	}
}

// TestAuthOff checks today's behaviour with authentication off: every
// request is the local admin of the default tenant, whatever its header.
func TestAuthOff(t *testing.T) {
	srv := serve(t, open(t, storeConfigs(t, 0)[config.DriverBolt]), httpapi.Options{})
	for _, h := range []string{"", "Bearer garbage", "Basic dXNlcjpwYXNz"} {
		var th streams.Thread
		res := hit(t, "POST", srv.URL+"/v1/threads", "", h)
		if res.status != 201 || json.Unmarshal(res.body, &th) != nil || th.Tenant != vigil.DefaultTenant {
			t.Errorf("header %q: %d %s", h, res.status, res.body)
		}
	}
	// Stream tokens work too, as EventSource clients are written for
	// deployments with authentication.
	th := createThread(t, srv.URL)
	var tok struct {
		ReplayURL string `json:"replay_url"`
	}
	if res := hit(t, "POST", srv.URL+"/v1/threads/"+th+"/stream-token", "", ""); res.status != 201 || json.Unmarshal(res.body, &tok) != nil {
		t.Fatalf("stream-token: %d %s", res.status, res.body)
	}
	if res := hit(t, "GET", srv.URL+tok.ReplayURL, "", ""); res.status != 200 {
		t.Errorf("replay with the token: %d %s", res.status, res.body)
	}
	// Keys need a key service.
	if res := hit(t, "GET", srv.URL+"/v1/keys", "", ""); res.status != 503 {
		t.Errorf("keys without a key service: %d %s", res.status, res.body)
	}
}

func TestKeysAPI(t *testing.T) {
	e := serveAuth(t)
	admin := e.key(t, tenantA, "alice", auth.Admin)

	var created struct {
		ID, Tenant, User, Key, Name string
		Roles                       []string
		ExpiresAt                   time.Time `json:"expires_at"`
	}
	exp := e.now().Add(24 * time.Hour).Truncate(time.Second)
	res := hit(t, "POST", e.URL+"/v1/keys", `{"roles":["member"],"user":"mary","name":"mary's laptop","expires_at":"`+exp.Format(time.RFC3339)+`"}`, admin)
	if res.status != 201 || json.Unmarshal(res.body, &created) != nil {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	if created.Tenant != tenantA || created.User != "mary" || !slices.Equal(created.Roles, []string{"member"}) ||
		!strings.HasPrefix(created.Key, "vgl_"+created.ID+"_") || !created.ExpiresAt.Equal(exp) {
		t.Errorf("created %+v", created)
	}
	if res.header.Get("Cache-Control") != "no-store" || res.header.Get("Location") != "/v1/keys/"+created.ID {
		t.Errorf("headers %v", res.header)
	}
	if strings.Contains(string(res.body), `"hash"`) {
		t.Errorf("the answer shows the hash: %s", res.body)
	}

	// The new key works, as what it says.
	var th streams.Thread
	if res := hit(t, "POST", e.URL+"/v1/threads", "", "Bearer "+created.Key); res.status != 201 || json.Unmarshal(res.body, &th) != nil || th.Tenant != tenantA {
		t.Fatalf("using the new key: %d %s", res.status, res.body)
	}
	if res := hit(t, "GET", e.URL+"/v1/keys", "", "Bearer "+created.Key); res.status != 403 {
		t.Errorf("a member listing keys: %d", res.status)
	}

	// Listed without secrets; tenant B sees none of them.
	res = hit(t, "GET", e.URL+"/v1/keys", "", admin)
	if res.status != 200 || strings.Contains(string(res.body), created.Key) || strings.Contains(string(res.body), `"hash"`) || strings.Contains(string(res.body), `"key"`) {
		t.Fatalf("list: %d %s", res.status, res.body)
	}
	var list struct{ Keys []struct{ ID string } }
	if json.Unmarshal(res.body, &list) != nil || len(list.Keys) != 2 || !slices.ContainsFunc(list.Keys, func(k struct{ ID string }) bool { return k.ID == created.ID }) {
		t.Errorf("list %s", res.body)
	}
	adminB := e.key(t, tenantB, "bob", auth.Admin)
	res = hit(t, "GET", e.URL+"/v1/keys", "", adminB)
	if json.Unmarshal(res.body, &list) != nil || len(list.Keys) != 1 || strings.Contains(string(res.body), created.ID) {
		t.Errorf("tenant B's list: %s", res.body)
	}

	// Tenant B cannot revoke it; A's admin can, and then it is refused.
	if res := hit(t, "DELETE", e.URL+"/v1/keys/"+created.ID, "", adminB); res.status != 404 {
		t.Errorf("tenant B revoking: %d %s", res.status, res.body)
	}
	if res := hit(t, "DELETE", e.URL+"/v1/keys/"+created.ID, "", admin); res.status != 204 {
		t.Fatalf("revoke: %d %s", res.status, res.body)
	}
	if res := hit(t, "DELETE", e.URL+"/v1/keys/"+created.ID, "", admin); res.status != 204 {
		t.Errorf("revoking again: %d %s", res.status, res.body)
	}
	res = hit(t, "GET", e.URL+"/v1/threads/"+th.ID, "", "Bearer "+created.Key)
	if res.status != 401 || !strings.Contains(res.apiError(t).Error.Message, "revoked") {
		t.Errorf("a revoked key: %d %s", res.status, res.body)
	}

	for body, field := range map[string]string{
		`{"roles":["root"]}`:                     "roles",
		`{"roles":[]}`:                           "roles",
		`{"roles":["viewer"],"user":"a b"}`:      "user",
		`{"roles":["viewer"],"tenant":"globex"}`: "",
	} {
		res := hit(t, "POST", e.URL+"/v1/keys", body, admin)
		if res.status != 400 || res.apiError(t).Error.Field != field {
			t.Errorf("create %s: %d %s, want 400 on %q", body, res.status, res.body, field)
		}
	}
}

// TestAccessLogNamesTenant checks that requests refused before their
// handler are still logged, and that authenticated ones carry their tenant.
func TestAccessLogNamesTenant(t *testing.T) {
	e := serveAuth(t)
	hit(t, "GET", e.URL+"/v1/tasks", "", "")
	hit(t, "GET", e.URL+"/v1/tasks", "", e.key(t, tenantB, "bob", auth.Viewer))
	logs := e.logText()
	if !strings.Contains(logs, `"status":401`) || !strings.Contains(logs, `"tenant":"globex"`) {
		t.Errorf("access log:\n%s", logs)
	}
}

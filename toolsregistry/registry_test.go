package toolsregistry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func newRegistry(t testing.TB, opts Options) *Registry {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger
	}
	return New(opts)
}

// echo is a handler that returns its arguments wrapped in {"args": …}.
func echo(tag string) Handler {
	return HandlerFunc(func(_ context.Context, args json.RawMessage) (Output, error) {
		return Output{Value: json.RawMessage(fmt.Sprintf(`{"tag":%q,"args":%s}`, tag, args))}, nil
	})
}

func mustRegister(t testing.TB, r *Registry, tool Tool, h Handler) {
	t.Helper()
	if err := r.Register(tool, h); err != nil {
		t.Fatalf("Register(%s): %v", tool.Ref(), err)
	}
}

func tool(tenant, name string, version int) Tool {
	return Tool{Tenant: tenant, Name: name, Version: version, Description: "test tool " + name}
}

func call(t testing.TB, r *Registry, req Request) *Result {
	t.Helper()
	res, err := r.Call(context.Background(), req)
	if err != nil {
		t.Fatalf("Call(%s): %v", req.Tool, err)
	}
	return res
}

func callErr(t testing.TB, r *Registry, req Request) *Error {
	t.Helper()
	res, err := r.Call(context.Background(), req)
	if err == nil {
		t.Fatalf("Call(%s) = %s, want an error", req.Tool, res.Output)
	}
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("Call(%s) error %T %v, want *Error", req.Tool, err, err)
	}
	return te
}

func tagOf(t testing.TB, res *Result) string {
	t.Helper()
	var v struct{ Tag string }
	if err := json.Unmarshal(res.Output, &v); err != nil {
		t.Fatalf("output %s: %v", res.Output, err)
	}
	return v.Tag
}

func TestVersionsSideBySide(t *testing.T) {
	r := newRegistry(t, Options{})
	mustRegister(t, r, tool(Global, "weather", 1), echo("v1"))
	mustRegister(t, r, tool(Global, "weather", 2), echo("v2"))

	for ref, want := range map[string]string{"weather@1": "v1", "weather@2": "v2", "weather": "v2"} {
		if got := tagOf(t, call(t, r, Request{Tenant: "acme", Tool: ref})); got != want {
			t.Errorf("%s ran %s, want %s", ref, got, want)
		}
	}
	if err := r.SetDefault(Global, "weather", 1); err != nil {
		t.Fatal(err)
	}
	if got := tagOf(t, call(t, r, Request{Tenant: "acme", Tool: "weather"})); got != "v1" {
		t.Errorf("pinned bare name ran %s, want v1", got)
	}
	tl, err := r.Resolve("acme", "weather")
	if err != nil || tl.Version != 1 {
		t.Errorf("Resolve(weather) = %v, %v; want version 1", tl.Version, err)
	}
	// A third version does not move a pinned default.
	mustRegister(t, r, tool(Global, "weather", 3), echo("v3"))
	if got := tagOf(t, call(t, r, Request{Tenant: "acme", Tool: "weather"})); got != "v1" {
		t.Errorf("after weather@3, bare name ran %s, want pinned v1", got)
	}
	// Unregistering the pinned version unpins: the highest is the default.
	if err := r.Unregister(Global, "weather@1"); err != nil {
		t.Fatal(err)
	}
	if got := tagOf(t, call(t, r, Request{Tenant: "acme", Tool: "weather"})); got != "v3" {
		t.Errorf("after unregistering pinned v1, bare name ran %s, want v3", got)
	}
	if e := callErr(t, r, Request{Tenant: "acme", Tool: "weather@1"}); e.Code != vigil.NotFound {
		t.Errorf("weather@1 after unregister: %v, want not_found", e)
	}

	var listed []string
	for _, l := range r.List("acme") {
		listed = append(listed, fmt.Sprintf("%s default=%v", l.Tool.Ref(), l.Default))
	}
	if got, want := strings.Join(listed, ", "), "weather@2 default=false, weather@3 default=true"; got != want {
		t.Errorf("List = %s, want %s", got, want)
	}

	if err := r.Register(tool(Global, "weather", 2), echo("again")); vigil.ErrorCode(err) != vigil.Conflict {
		t.Errorf("registering weather@2 twice: %v, want conflict", err)
	}
	if err := r.SetDefault(Global, "weather", 9); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("SetDefault to a missing version: %v, want not_found", err)
	}
}

func TestRefsAndToolChecks(t *testing.T) {
	for _, ref := range []string{"", "Weather", "weather@0", "weather@01", "weather@x", "weather@", "1abc", "a b", "weather@-1", "weather@+2"} {
		if _, _, err := ParseRef(ref); vigil.ErrorCode(err) != vigil.Invalid {
			t.Errorf("ParseRef(%q) = %v, want invalid", ref, err)
		}
	}
	if n, v, err := ParseRef("github.search_repos@12"); err != nil || n != "github.search_repos" || v != 12 {
		t.Errorf("ParseRef = %q %d %v", n, v, err)
	}

	r := newRegistry(t, Options{})
	for _, c := range []struct {
		tool  Tool
		field string
	}{
		{Tool{Name: "Bad", Version: 1, Description: "d"}, "name"},
		{Tool{Name: "ok", Version: 0, Description: "d"}, "version"},
		{Tool{Name: "ok", Version: 1}, "description"},
		{Tool{Name: "ok", Version: 1, Description: "d", Scopes: []string{"Read Web"}}, "scopes.0"},
		{Tool{Name: "ok", Version: 1, Description: "d", Fallback: "maybe"}, "fallback"},
		{Tool{Name: "ok", Version: 1, Description: "d", InputSchema: json.RawMessage(`{"type":"string"}`)}, "input_schema"},
		{Tool{Name: "ok", Version: 1, Description: "d", InputSchema: json.RawMessage(`{"type":"object","properties":{"a":{"$ref":"file:///etc/passwd"}}}`)}, "input_schema"},
		{Tool{Name: "ok", Version: 1, Description: "d", InputSchema: json.RawMessage(`{"type":`)}, "input_schema"},
		{Tool{Name: "ok", Version: 1, Description: "d", OutputSchema: json.RawMessage(`{"type":"nonsense"}`)}, "output_schema"},
		{Tool{Tenant: "bad tenant", Name: "ok", Version: 1, Description: "d"}, "tenant"},
	} {
		err := r.Register(c.tool, echo("x"))
		var ve *vigil.Error
		if !errors.As(err, &ve) || ve.Code != vigil.Invalid || ve.Field != c.field {
			t.Errorf("Register(%+v) = %v, want invalid %s", c.tool, err, c.field)
		}
	}

	// Tools round-trip through JSON, durations as Go duration strings.
	in := Tool{Name: "w", Version: 2, Description: "d", Timeout: 1500 * time.Millisecond, CacheTTL: 10 * time.Minute, RateLimit: 30, Fallback: FallbackCached, Scopes: []string{"read:web"}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"timeout":"1.5s"`) || !strings.Contains(string(b), `"cache_ttl":"10m0s"`) {
		t.Errorf("Marshal = %s", b)
	}
	var out Tool
	if err := json.Unmarshal(b, &out); err != nil || out.Timeout != in.Timeout || out.CacheTTL != in.CacheTTL || out.Fallback != in.Fallback {
		t.Errorf("round trip = %+v, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"timeout":"soon"}`), &out); vigil.ErrorCode(err) != vigil.Invalid {
		t.Errorf("bad duration: %v", err)
	}
}

func TestTenantVisibility(t *testing.T) {
	r := newRegistry(t, Options{})
	mustRegister(t, r, tool(Global, "clock", 1), echo("global"))
	mustRegister(t, r, tool("acme", "crm.lookup", 1), echo("acme"))
	mustRegister(t, r, tool("beta", "crm.lookup", 1), echo("beta"))

	if got := tagOf(t, call(t, r, Request{Tenant: "acme", Tool: "crm.lookup"})); got != "acme" {
		t.Errorf("acme's crm.lookup ran %s", got)
	}
	if got := tagOf(t, call(t, r, Request{Tenant: "beta", Tool: "crm.lookup"})); got != "beta" {
		t.Errorf("beta's crm.lookup ran %s", got)
	}
	e := callErr(t, r, Request{Tenant: "gamma", Tool: "crm.lookup@1"})
	if e.Code != vigil.NotFound || e.Error() != "no tool crm.lookup@1" {
		t.Errorf("gamma calling crm.lookup: %v", e)
	}
	if _, err := r.Resolve("gamma", "crm.lookup"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("gamma resolving crm.lookup: %v", err)
	}
	names := func(tenant string) string {
		var s []string
		for _, l := range r.List(tenant) {
			s = append(s, l.Tool.Tenant+"/"+l.Tool.Ref())
		}
		return strings.Join(s, " ")
	}
	if got, want := names("acme"), "/clock@1 acme/crm.lookup@1"; got != want {
		t.Errorf("acme lists %q, want %q", got, want)
	}
	if got, want := names("gamma"), "/clock@1"; got != want {
		t.Errorf("gamma lists %q, want %q", got, want)
	}
	// A tenant cannot unregister another's tool or a global one.
	if err := r.Unregister("beta", "clock"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("beta unregistering global clock: %v", err)
	}
	if err := r.Unregister("gamma", "crm.lookup"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("gamma unregistering acme's tool: %v", err)
	}
	// Names do not cross the global/tenant divide.
	if err := r.Register(tool("acme", "clock", 2), echo("x")); vigil.ErrorCode(err) != vigil.Conflict {
		t.Errorf("tenant tool named like a global one: %v", err)
	}
	if err := r.Register(tool(Global, "crm.lookup", 2), echo("x")); vigil.ErrorCode(err) != vigil.Conflict {
		t.Errorf("global tool named like a tenant's: %v", err)
	}
}

func TestOnChange(t *testing.T) {
	r := newRegistry(t, Options{})
	var mu sync.Mutex
	var got []string
	stop := r.OnChange(func(c Change) {
		mu.Lock()
		got = append(got, fmt.Sprintf("%s %s/%s@%d", c.Kind, c.Tenant, c.Name, c.Version))
		mu.Unlock()
	})
	mustRegister(t, r, tool("acme", "a", 1), echo("a"))
	mustRegister(t, r, tool("acme", "a", 2), echo("a"))
	if err := r.SetDefault("acme", "a", 1); err != nil {
		t.Fatal(err)
	}
	if err := r.Unregister("acme", "a"); err != nil {
		t.Fatal(err)
	}
	stop()
	mustRegister(t, r, tool("acme", "b", 1), echo("b"))
	want := "registered acme/a@1, registered acme/a@2, default_changed acme/a@1, unregistered acme/a@1, unregistered acme/a@2"
	if s := strings.Join(got, ", "); s != want {
		t.Errorf("changes:\n got %s\nwant %s", s, want)
	}
}

func TestPermissionDeniedNamesScope(t *testing.T) {
	r := newRegistry(t, Options{})
	tl := tool(Global, "mail.send", 1)
	tl.Scopes = []string{"read:contacts", "write:mail"}
	mustRegister(t, r, tl, echo("sent"))

	e := callErr(t, r, Request{Tenant: "acme", Scopes: []string{"read:contacts", "read:web"}, Tool: "mail.send"})
	if e.Code != vigil.Forbidden || !strings.Contains(e.Message, `"write:mail"`) || e.Tool != "mail.send" || e.Version != 1 {
		t.Errorf("missing scope: %+v", e)
	}
	if vigil.ErrorCode(e) != vigil.Forbidden {
		t.Errorf("vigil.ErrorCode = %s", vigil.ErrorCode(e))
	}
	te := e.ToolError("call_1")
	if te.Tool != "mail.send" || te.Version != "1" || te.Retryable || !strings.Contains(te.Error, "write:mail") {
		t.Errorf("ToolError = %+v", te)
	}
	for _, held := range [][]string{{"read:contacts", "write:mail"}, {"read:*", "write:*"}, {"*"}} {
		call(t, r, Request{Tenant: "acme", Scopes: held, Tool: "mail.send"})
	}
}

func TestValidationError(t *testing.T) {
	r := newRegistry(t, Options{})
	tl := tool(Global, "weather", 1)
	tl.InputSchema = json.RawMessage(`{
		"type": "object",
		"properties": {
			"city": {"type": "string", "minLength": 1, "description": "The city."},
			"date": {"type": "string", "format": "date"}
		},
		"required": ["city"],
		"additionalProperties": false
	}`)
	mustRegister(t, r, tl, echo("ok"))
	for _, c := range []struct {
		args, field, msg, expected string
	}{
		{`{}`, "city", "is required", `{"description":"The city.","minLength":1,"type":"string"}`},
		{`{"city": true}`, "city", "must be string, got boolean", `{"description":"The city.","minLength":1,"type":"string"}`},
		{`{"city": "Paris", "date": "someday"}`, "date", "", `{"format":"date","type":"string"}`},
		{`{"city": "Paris", "country": "FR"}`, "country", "is not a property of weather@1 arguments", ``},
		{`[1]`, "", "must be object, got array", ``},
	} {
		e := callErr(t, r, Request{Tenant: "acme", Tool: "weather", Args: json.RawMessage(c.args)})
		if e.Code != vigil.Invalid || e.Field != c.field || e.Retryable || !strings.Contains(e.Message, c.msg) {
			t.Errorf("%s: %+v", c.args, e)
		}
		if c.expected != "" && string(e.Expected) != c.expected {
			t.Errorf("%s: expected %s, want %s", c.args, e.Expected, c.expected)
		}
	}
}

func TestRepairedCall(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	r := newRegistry(t, Options{Now: clk.Now})
	tl := tool(Global, "weather", 1)
	tl.InputSchema = json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"},"date":{"type":"string","format":"date"}},"required":["city","date"]}`)
	mustRegister(t, r, tl, echo("ok"))
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	// 10:00 UTC is 18:00 in Shanghai, still the 22nd; at 20:00 UTC it is the 23rd there.
	clk.Set(time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC))
	res := call(t, r, Request{Tenant: "acme", Tool: "weather", Args: json.RawMessage(`{"city":"Beijing","date":"明天"}`), Location: shanghai})
	if got := string(res.Args); got != `{"city":"Beijing","date":"2026-11-24"}` {
		t.Errorf("repaired args = %s", got)
	}
	if len(res.Repairs) != 1 || res.Repairs[0].Field != "date" || res.Repairs[0].Rule != "date" || string(res.Repairs[0].From) != `"明天"` {
		t.Errorf("repairs = %+v", res.Repairs)
	}
}

func TestRateLimits(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}
	r := newRegistry(t, Options{Now: clk.Now, TenantRate: func(tenant string) int {
		if tenant == "small" {
			return 3
		}
		return 0
	}})
	tl := tool(Global, "quote", 1)
	tl.RateLimit = 2 // per minute, across tenants
	mustRegister(t, r, tl, echo("q"))
	mustRegister(t, r, tool(Global, "free", 1), echo("f"))

	call(t, r, Request{Tenant: "a", Tool: "quote"})
	call(t, r, Request{Tenant: "b", Tool: "quote"})
	e := callErr(t, r, Request{Tenant: "c", Tool: "quote"})
	if e.Code != vigil.TooMany || !e.Retryable || !near(e.RetryAfter, 30*time.Second) || !strings.Contains(e.Message, "2 calls per minute; retry in 30s") {
		t.Errorf("third call: %+v", e)
	}
	clk.Advance(31 * time.Second)
	call(t, r, Request{Tenant: "c", Tool: "quote"})

	// The tenant's quota spans tools; other tenants are not affected.
	for range 3 {
		call(t, r, Request{Tenant: "small", Tool: "free"})
	}
	e = callErr(t, r, Request{Tenant: "small", Tool: "free"})
	if e.Code != vigil.TooMany || !near(e.RetryAfter, 20*time.Second) || !strings.Contains(e.Message, "quota") {
		t.Errorf("over tenant quota: %+v", e)
	}
	for range 10 {
		call(t, r, Request{Tenant: "big", Tool: "free"})
	}
	// A call the tool's bucket refuses gives the tenant's token back.
	clk.Advance(time.Minute)
	call(t, r, Request{Tenant: "small", Tool: "quote"})
	call(t, r, Request{Tenant: "small", Tool: "quote"})
	if e := callErr(t, r, Request{Tenant: "small", Tool: "quote"}); !strings.Contains(e.Message, "quote@1 is over its limit") {
		t.Errorf("tool limit: %v", e)
	}
	call(t, r, Request{Tenant: "small", Tool: "free"}) // the third token of the minute is still there
}

func near(d, want time.Duration) bool {
	return d > want-time.Second && d < want+time.Second
}

func TestCacheAndTimeout(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}
	r := newRegistry(t, Options{Now: clk.Now})
	var calls atomic.Int32
	tl := tool(Global, "slowish", 1)
	tl.CacheTTL = 10 * time.Minute
	mustRegister(t, r, tl, HandlerFunc(func(_ context.Context, args json.RawMessage) (Output, error) {
		n := calls.Add(1)
		return Output{Value: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}, nil
	}))
	first := call(t, r, Request{Tenant: "acme", Tool: "slowish", Args: json.RawMessage(`{"a":1,"b":[1,2]}`)})
	// The same arguments in another order and spacing hit the cache.
	second := call(t, r, Request{Tenant: "acme", Tool: "slowish", Args: json.RawMessage(`{ "b":[1, 2], "a":1 }`)})
	if first.Cached || !second.Cached || string(second.Output) != `{"n":1}` {
		t.Errorf("first %+v second %+v", first, second)
	}
	// Another tenant does not share acme's results.
	if other := call(t, r, Request{Tenant: "beta", Tool: "slowish", Args: json.RawMessage(`{"a":1,"b":[1,2]}`)}); other.Cached {
		t.Errorf("beta got acme's cached result")
	}
	clk.Advance(11 * time.Minute)
	if third := call(t, r, Request{Tenant: "acme", Tool: "slowish", Args: json.RawMessage(`{"a":1,"b":[1,2]}`)}); third.Cached {
		t.Errorf("expired entry served: %+v", third)
	}

	// A handler that ignores its context is abandoned at the timeout.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stuck := tool(Global, "stuck", 1)
	stuck.Timeout = 50 * time.Millisecond
	mustRegister(t, r, stuck, HandlerFunc(func(context.Context, json.RawMessage) (Output, error) {
		<-release
		return Output{}, nil
	}))
	start := time.Now()
	e := callErr(t, r, Request{Tenant: "acme", Tool: "stuck"})
	if e.Code != vigil.Unavailable || !e.Retryable || !strings.Contains(e.Message, "timed out after 50ms") {
		t.Errorf("timeout: %+v", e)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout took %s", d)
	}

	// A panicking handler is a failure, not a crash.
	mustRegister(t, r, tool(Global, "boom", 1), HandlerFunc(func(context.Context, json.RawMessage) (Output, error) {
		panic("boom")
	}))
	if e := callErr(t, r, Request{Tenant: "acme", Tool: "boom"}); e.Code != vigil.Unavailable {
		t.Errorf("panic: %+v", e)
	}

	// A result that breaks the output schema is refused.
	bad := tool(Global, "bad", 1)
	bad.OutputSchema = json.RawMessage(`{"type":"object","properties":{"temp":{"type":"number"}},"required":["temp"]}`)
	mustRegister(t, r, bad, HandlerFunc(func(context.Context, json.RawMessage) (Output, error) {
		return Output{Value: json.RawMessage(`{"temp":"warm"}`)}, nil
	}))
	if e := callErr(t, r, Request{Tenant: "acme", Tool: "bad"}); e.Code != vigil.Unavailable ||
		!strings.Contains(e.Message, "result.temp: must be number, got string") {
		t.Errorf("bad output: %+v", e)
	}
}

func TestConcurrentRegisterAndCall(t *testing.T) {
	r := newRegistry(t, Options{})
	mustRegister(t, r, tool(Global, "stable", 1), echo("s"))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("churn%d", i)
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = r.Register(tool("acme", name, 1), echo(name))
				_, _ = r.Call(context.Background(), Request{Tenant: "acme", Tool: name})
				_ = r.List("acme")
				_ = r.Unregister("acme", name)
			}
		}()
	}
	for range 200 {
		call(t, r, Request{Tenant: "acme", Tool: "stable"})
	}
	close(stop)
	wg.Wait()
}

// upstream is a test plugin server whose health the test switches.
type upstream struct {
	srv    *httptest.Server
	hits   atomic.Int32
	broken atomic.Bool
	temp   atomic.Int32
}

func newUpstream(t *testing.T, secret []byte) *upstream {
	u := &upstream{}
	u.temp.Store(20)
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u.hits.Add(1)
		if _, err := Verify(secret, req); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if u.broken.Load() {
			http.Error(w, `{"error":"database down"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"temp":%d}`, u.temp.Load())
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// testGuard allows the loopback address httptest servers listen on.
func testGuard(t testing.TB) *Guard {
	t.Helper()
	g, err := NewGuard(GuardOptions{Allow: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestBreakerFallbackAndRecovery(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)}
	const openFor = 300 * time.Millisecond
	r := newRegistry(t, Options{Now: clk.Now, Breaker: BreakerOptions{Failures: 3, OpenFor: openFor}})
	secret := []byte("s3cret")
	up := newUpstream(t, secret)
	h, err := NewHTTPHandler(HTTPOptions{URL: up.srv.URL, Secret: secret, Guard: testGuard(t)})
	if err != nil {
		t.Fatal(err)
	}
	tl := tool("acme", "weather", 1)
	tl.Fallback = FallbackCached
	tl.OutputSchema = json.RawMessage(`{"type":"object","properties":{"temp":{"type":"number"}},"required":["temp"]}`)
	mustRegister(t, r, tl, h)
	req := Request{Tenant: "acme", Tool: "weather", Args: json.RawMessage(`{"city":"Beijing"}`)}

	fresh := call(t, r, req)
	if fresh.Cached || fresh.Warning != nil || string(fresh.Output) != `{"temp":20}` {
		t.Fatalf("fresh call: %+v", fresh)
	}

	// The next morning the upstream fails: each failure falls back to
	// yesterday's result, and after three the breaker opens.
	clk.Set(time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC))
	up.broken.Store(true)
	for i := range 5 {
		res := call(t, r, req)
		if !res.Cached || res.Stale == nil || !res.Stale.Equal(time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)) {
			t.Fatalf("call %d during the outage: %+v", i, res)
		}
		if res.Warning == nil || res.Warning.Code != "stale_cache" || res.Warning.Message != "weather is unavailable; using data from 08:00 yesterday" {
			t.Fatalf("call %d warning: %+v", i, res.Warning)
		}
	}
	if n := up.hits.Load(); n != 4 {
		t.Errorf("upstream hit %d times, want 4: 1 fresh and 3 failures before the breaker opened", n)
	}
	// Without a cached result for these arguments the open breaker says so.
	e := callErr(t, r, Request{Tenant: "acme", Tool: "weather", Args: json.RawMessage(`{"city":"Paris"}`)})
	if e.Code != vigil.Unavailable || !e.Retryable || e.RetryAfter <= 0 || !strings.Contains(e.Message, "circuit breaker open") {
		t.Errorf("open breaker without cache: %+v", e)
	}
	if n := up.hits.Load(); n != 4 {
		t.Errorf("open breaker let a call through: %d hits", n)
	}

	// The upstream recovers; after the pause a trial call closes the breaker.
	up.broken.Store(false)
	up.temp.Store(23)
	time.Sleep(openFor + 50*time.Millisecond)
	res := call(t, r, req)
	if res.Cached || res.Warning != nil || string(res.Output) != `{"temp":23}` {
		t.Errorf("after recovery: %+v", res)
	}
	for range 3 {
		if res := call(t, r, req); res.Cached {
			t.Errorf("breaker did not close: %+v", res)
		}
	}
	if n := up.hits.Load(); n != 8 {
		t.Errorf("upstream hit %d times, want 8", n)
	}
}

func TestFallbackError(t *testing.T) {
	r := newRegistry(t, Options{Breaker: BreakerOptions{Failures: 2, OpenFor: time.Minute}})
	var hits atomic.Int32
	mustRegister(t, r, tool(Global, "flaky", 1), HandlerFunc(func(context.Context, json.RawMessage) (Output, error) {
		hits.Add(1)
		return Output{}, errors.New("upstream said no")
	}))
	none := tool(Global, "raw", 1)
	none.Fallback = FallbackNone
	mustRegister(t, r, none, HandlerFunc(func(context.Context, json.RawMessage) (Output, error) {
		return Output{}, vigil.Errorf(vigil.TooMany, "upstream quota exhausted")
	}))
	picky := tool(Global, "picky", 1)
	mustRegister(t, r, picky, HandlerFunc(func(context.Context, json.RawMessage) (Output, error) {
		hits.Add(1)
		return Output{}, vigil.FieldError("city", "is not a city I know")
	}))

	for range 2 {
		e := callErr(t, r, Request{Tenant: "a", Tool: "flaky"})
		if e.Code != vigil.Unavailable || !e.Retryable || e.Message != "flaky@1 failed: upstream said no" {
			t.Errorf("failure: %+v", e)
		}
	}
	e := callErr(t, r, Request{Tenant: "a", Tool: "flaky"})
	if !strings.Contains(e.Message, "circuit breaker open") || e.RetryAfter < 50*time.Second {
		t.Errorf("open: %+v", e)
	}
	if hits.Load() != 2 {
		t.Errorf("hits = %d", hits.Load())
	}
	if e := callErr(t, r, Request{Tenant: "a", Tool: "raw"}); e.Code != vigil.TooMany || e.Message != "upstream quota exhausted" {
		t.Errorf("fallback none: %+v", e)
	}
	// The caller's mistakes never open a breaker.
	for range 5 {
		e := callErr(t, r, Request{Tenant: "a", Tool: "picky"})
		if e.Code != vigil.Invalid || e.Field != "city" || e.Retryable {
			t.Errorf("invalid from handler: %+v", e)
		}
	}
	if hits.Load() != 7 {
		t.Errorf("picky's breaker opened: hits = %d", hits.Load())
	}
}

func TestWhenWas(t *testing.T) {
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	for at, want := range map[time.Time]string{
		time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC):  "08:00 today",
		time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC):  "08:00 yesterday",
		time.Date(2026, 11, 18, 23, 5, 0, 0, time.UTC): "23:05 on Wednesday",
		time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC):   "08:00 on 1 Oct",
		time.Date(2025, 12, 31, 8, 0, 0, 0, time.UTC):  "08:00 on 31 Dec 2025",
	} {
		if got := whenWas(at, now, time.UTC); got != want {
			t.Errorf("whenWas(%s) = %q, want %q", at, got, want)
		}
	}
	// In Shanghai, 20:00 UTC yesterday was 04:00 today.
	sh, _ := time.LoadLocation("Asia/Shanghai")
	if got := whenWas(time.Date(2026, 11, 21, 20, 0, 0, 0, time.UTC), now, sh); got != "04:00 today" {
		t.Errorf("in Shanghai: %q", got)
	}
}

func BenchmarkCall(b *testing.B) {
	r := newRegistry(b, Options{})
	tl := tool(Global, "noop", 1)
	tl.InputSchema = json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}}}`)
	mustRegister(b, r, tl, HandlerFunc(func(context.Context, json.RawMessage) (Output, error) {
		return Output{Value: json.RawMessage(`{}`)}, nil
	}))
	req := Request{Tenant: "acme", Scopes: []string{"read:web"}, Tool: "noop@1", Args: json.RawMessage(`{"n":1}`)}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Call(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A tool with a cache TTL answers from the cache within the TTL, and past
// it still falls back to the expired result when its upstream fails.
func TestFallbackAfterTTL(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)}
	r := newRegistry(t, Options{Now: clk.Now, Breaker: BreakerOptions{Failures: 100, OpenFor: time.Minute}})
	secret := []byte("s3cret")
	up := newUpstream(t, secret)
	h, err := NewHTTPHandler(HTTPOptions{URL: up.srv.URL, Secret: secret, Guard: testGuard(t)})
	if err != nil {
		t.Fatal(err)
	}
	tl := tool("acme", "weather", 1)
	tl.Fallback = FallbackCached
	tl.CacheTTL = 10 * time.Minute
	mustRegister(t, r, tl, h)
	req := Request{Tenant: "acme", Tool: "weather", Args: json.RawMessage(`{"city":"Beijing"}`)}

	if res := call(t, r, req); res.Cached {
		t.Fatalf("first call cached: %+v", res)
	}
	clk.Set(time.Date(2026, 11, 21, 8, 5, 0, 0, time.UTC))
	if res := call(t, r, req); !res.Cached || res.Warning != nil || up.hits.Load() != 1 {
		t.Fatalf("within the TTL: %+v, %d upstream hits", res, up.hits.Load())
	}
	clk.Set(time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC))
	up.broken.Store(true)
	res := call(t, r, req)
	if !res.Cached || res.Stale == nil || res.Warning == nil || res.Warning.Code != "stale_cache" {
		t.Fatalf("past the TTL with the upstream down: %+v", res)
	}
	if up.hits.Load() != 2 {
		t.Errorf("upstream hit %d times, want 2 (the fresh call and the failed one)", up.hits.Load())
	}
}

package toolsregistry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// remoteHelperEnv, set to 1, makes TestRemoteStdioHelper serve MCP.
const remoteHelperEnv = "VIGIL_TEST_REMOTE_MCP_STDIO"

// newRemoteMCP returns the MCP server the tests mount, with two tools:
// tool_a adds a and b and answers structured content; tool_b greets by
// name in text, and refuses "nobody" with isError.
func newRemoteMCP() *server.MCPServer {
	s := server.NewMCPServer("test-remote", "1.0.0", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("tool_a", mcp.WithDescription("Adds a and b."),
		mcp.WithNumber("a", mcp.Required()), mcp.WithNumber("b", mcp.Required()),
		mcp.WithRawOutputSchema(json.RawMessage(`{"type":"object","properties":{"sum":{"type":"number"}},"required":["sum"]}`))),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			a, _ := req.RequireFloat("a")
			b, _ := req.RequireFloat("b")
			return mcp.NewToolResultStructured(map[string]float64{"sum": a + b}, fmt.Sprint(a+b)), nil
		})
	s.AddTool(mcp.NewTool("tool_b", mcp.WithDescription("Greets someone."), mcp.WithString("name", mcp.Required())),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			name, _ := req.RequireString("name")
			if name == "nobody" {
				return mcp.NewToolResultError("nobody is not here"), nil
			}
			return mcp.NewToolResultText("hello, " + name), nil
		})
	return s
}

// remote is an MCP server over streamable HTTP on a loopback test
// server. The server behind its URL can be replaced, as when it restarts.
type remote struct {
	srv  *httptest.Server
	h    atomic.Pointer[http.Handler]
	auth atomic.Value // the Authorization header of the last request
}

func newRemote(t *testing.T, s *server.MCPServer, opts ...server.StreamableHTTPOption) *remote {
	t.Helper()
	rm := &remote{}
	rm.serve(s, opts...)
	rm.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rm.auth.Store(req.Header.Get("Authorization"))
		(*rm.h.Load()).ServeHTTP(w, req)
	}))
	t.Cleanup(rm.srv.Close) // after the mounts close: an open stream holds Close
	return rm
}

func (rm *remote) url() string { return rm.srv.URL + "/mcp" }

func (rm *remote) serve(s *server.MCPServer, opts ...server.StreamableHTTPOption) {
	var h http.Handler = server.NewStreamableHTTPServer(s, opts...)
	rm.h.Store(&h)
}

// restart puts s behind the URL and breaks every connection to the old
// server.
func (rm *remote) restart(s *server.MCPServer, opts ...server.StreamableHTTPOption) {
	rm.serve(s, opts...)
	rm.srv.CloseClientConnections()
}

// forget puts s behind the URL and leaves the connections: to a client
// of a stateful server, its session has expired.
func (rm *remote) forget(s *server.MCPServer, opts ...server.StreamableHTTPOption) {
	rm.serve(s, opts...)
}

// mount mounts spec (with the loopback test guard unless it has one) and
// closes the mount when the test ends.
func mount(t *testing.T, r *Registry, spec RemoteSpec) *Mount {
	t.Helper()
	if spec.Guard == nil {
		spec.Guard = testGuard(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := r.Mount(ctx, spec)
	if err != nil {
		t.Fatalf("Mount(%s): %v", spec.Namespace, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// names returns the names of the tools tenant sees under prefix.
func names(r *Registry, tenant, prefix string) []string {
	var out []string
	for _, l := range r.List(tenant) {
		if strings.HasPrefix(l.Tool.Name, prefix) {
			out = append(out, l.Tool.Name)
		}
	}
	return out
}

// eventually polls cond until it holds, for at most within.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRemoteMountByURL mounts a remote MCP server by URL for one tenant:
// its tools appear namespaced with the remote's schemas, for that tenant
// only, and calls reach the remote with the spec's headers.
func TestRemoteMountByURL(t *testing.T) {
	r := newRegistry(t, Options{})
	rm := newRemote(t, newRemoteMCP())
	m := mount(t, r, RemoteSpec{Tenant: "acme", Namespace: "remote", URL: rm.url(),
		Headers: map[string]string{"Authorization": "Bearer t0ken"}, Scopes: []string{"read:remote"}, Timeout: 5 * time.Second})

	want := []string{"remote.tool_a", "remote.tool_b"}
	if got := names(r, "acme", "remote"); !slices.Equal(got, want) {
		t.Fatalf("acme sees %v; want %v", got, want)
	}
	if got := m.Tools(); !slices.Equal(got, want) {
		t.Errorf("Tools() = %v; want %v", got, want)
	}
	if got := names(r, "globex", "remote"); len(got) != 0 {
		t.Errorf("globex sees %v; want none", got)
	}
	if _, err := r.Resolve("globex", "remote.tool_a"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("globex resolves remote.tool_a: %v; want not found", err)
	}
	tl, err := r.Resolve("acme", "remote.tool_a")
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		Type       string         `json:"type"`
		Properties map[string]any `json:"properties"`
		Required   []string       `json:"required"`
	}
	if err := json.Unmarshal(tl.InputSchema, &in); err != nil || in.Type != "object" || len(in.Properties) != 2 || !slices.Equal(in.Required, []string{"a", "b"}) {
		t.Errorf("input schema %s", tl.InputSchema)
	}
	if tl.Description != "Adds a and b." || tl.Version != 1 || !strings.Contains(string(tl.OutputSchema), `"sum"`) ||
		tl.Timeout != 5*time.Second || !slices.Equal(tl.Scopes, []string{"read:remote"}) {
		t.Errorf("remote.tool_a registered as %+v", tl)
	}

	scopes := []string{"read:remote"}
	res := call(t, r, Request{Tenant: "acme", Scopes: scopes, Tool: "remote.tool_a", Args: json.RawMessage(`{"a":2,"b":3}`)})
	if string(res.Output) != `{"sum":5}` || res.Tool != "remote.tool_a" {
		t.Errorf("remote.tool_a = %s; want {\"sum\":5}", res.Output)
	}
	if a, _ := rm.auth.Load().(string); a != "Bearer t0ken" {
		t.Errorf("the remote got Authorization %q", a)
	}
	res = call(t, r, Request{Tenant: "acme", Scopes: scopes, Tool: "remote.tool_b", Args: json.RawMessage(`{"name":"ana"}`)})
	if string(res.Output) != `"hello, ana"` {
		t.Errorf("remote.tool_b = %s; want the text as a string", res.Output)
	}

	// The remote's isError is a tool error the model reads: the
	// arguments' fault, not retryable, not a failure of the tool.
	e := callErr(t, r, Request{Tenant: "acme", Scopes: scopes, Tool: "remote.tool_b", Args: json.RawMessage(`{"name":"nobody"}`)})
	if e.Code != vigil.Invalid || e.Retryable || !strings.Contains(e.Message, "nobody is not here") || e.Tool != "remote.tool_b" {
		t.Errorf("isError became %+v; want invalid, not retryable, with the remote's text", e)
	}
	// The local schema guards the remote, and so do the spec's scopes.
	if e := callErr(t, r, Request{Tenant: "acme", Scopes: scopes, Tool: "remote.tool_a", Args: json.RawMessage(`{"a":2}`)}); e.Code != vigil.Invalid || e.Field != "b" {
		t.Errorf("missing b: %+v", e)
	}
	if e := callErr(t, r, Request{Tenant: "acme", Tool: "remote.tool_a", Args: json.RawMessage(`{"a":2,"b":3}`)}); e.Code != vigil.Forbidden {
		t.Errorf("without the scope: %+v; want forbidden", e)
	}

	if got, ok := r.MountOf("acme", "remote.tool_a"); !ok || got != m {
		t.Errorf("MountOf(acme, remote.tool_a) = %v, %v", got, ok)
	}
	if _, ok := r.MountOf("globex", "remote.tool_a"); ok {
		t.Error("MountOf(globex, remote.tool_a) found a mount")
	}
	if got := r.Mounts("acme"); len(got) != 1 || got[0] != m {
		t.Errorf("Mounts(acme) = %v", got)
	}
	if st := m.Status(); !st.Connected || st.Protocol != mcp.LATEST_PROTOCOL_VERSION || st.Tools != 2 || st.LastError != "" {
		t.Errorf("Status() = %+v", st)
	}
	if !m.current().granted.Load() {
		t.Error("the server's acknowledgement of the listen stream was read as not granting tools/list_changed")
	}
}

// change is an OnChange report with whether MountOf knew the tool then.
type change struct {
	Change
	mounted bool
}

func recordChanges(t *testing.T, r *Registry) func() []change {
	var mu sync.Mutex
	var got []change
	stop := r.OnChange(func(c Change) {
		_, ok := r.MountOf(c.Tenant, c.Name)
		mu.Lock()
		got = append(got, change{c, ok})
		mu.Unlock()
	})
	t.Cleanup(stop)
	return func() []change {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// TestRemoteListChanged: tools added, removed and changed on the remote at
// runtime are added, removed and replaced in the registry within a second,
// following tools/list_changed.
func TestRemoteListChanged(t *testing.T) {
	r := newRegistry(t, Options{})
	s := newRemoteMCP()
	rm := newRemote(t, s)
	mount(t, r, RemoteSpec{Tenant: "acme", Namespace: "remote", URL: rm.url()})
	changes := recordChanges(t, r)

	dot, _ := base64.StdEncoding.DecodeString("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
	s.AddTool(mcp.NewTool("showPicture", mcp.WithDescription("Shows a picture.")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultImage("a red dot", base64.StdEncoding.EncodeToString(dot), "image/png"), nil
		})
	eventually(t, time.Second, "remote.show_picture to appear", func() bool {
		return slices.Contains(names(r, "acme", "remote"), "remote.show_picture")
	})
	res := call(t, r, Request{Tenant: "acme", Tool: "remote.show_picture"})
	if string(res.Output) != `"a red dot"` || len(res.Parts) != 1 {
		t.Fatalf("remote.show_picture = %s, %d parts", res.Output, len(res.Parts))
	}
	if img, ok := res.Parts[0].(streams.Image); !ok || img.MIME != "image/png" || string(img.Data) != string(dot) {
		t.Errorf("part %+v; want the PNG", res.Parts[0])
	}

	s.DeleteTools("tool_b")
	eventually(t, time.Second, "remote.tool_b to disappear", func() bool {
		return !slices.Contains(names(r, "acme", "remote"), "remote.tool_b")
	})
	if e := callErr(t, r, Request{Tenant: "acme", Tool: "remote.tool_b", Args: json.RawMessage(`{"name":"ana"}`)}); e.Code != vigil.NotFound {
		t.Errorf("calling the removed tool: %+v; want not found", e)
	}

	s.AddTool(mcp.NewTool("tool_a", mcp.WithDescription("Multiplies a and b."), mcp.WithNumber("a", mcp.Required()), mcp.WithNumber("b", mcp.Required())),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(fmt.Sprint(req.GetFloat("a", 0) * req.GetFloat("b", 0))), nil
		})
	eventually(t, time.Second, "remote.tool_a to be replaced", func() bool {
		tl, err := r.Resolve("acme", "remote.tool_a")
		return err == nil && tl.Description == "Multiplies a and b."
	})
	if res := call(t, r, Request{Tenant: "acme", Tool: "remote.tool_a", Args: json.RawMessage(`{"a":6,"b":7}`)}); string(res.Output) != `"42"` {
		t.Errorf("the replaced remote.tool_a = %s; want \"42\"", res.Output)
	}

	var seen []string
	for _, c := range changes() {
		seen = append(seen, fmt.Sprintf("%s %s@%d %v", c.Kind, c.Name, c.Version, c.mounted))
	}
	want := []string{
		"registered remote.show_picture@1 true",
		"unregistered remote.tool_b@1 true",
		"unregistered remote.tool_a@1 true",
		"registered remote.tool_a@1 true",
	}
	if !slices.Equal(seen, want) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}

// TestRemoteReconnect: when the remote restarts with other tools, the
// mount reconnects and reconciles the tools with the new server's.
func TestRemoteReconnect(t *testing.T) {
	r := newRegistry(t, Options{})
	rm := newRemote(t, newRemoteMCP())
	m := mount(t, r, RemoteSpec{Tenant: "acme", Namespace: "remote", URL: rm.url()})

	s := newRemoteMCP()
	s.DeleteTools("tool_b")
	s.AddTool(mcp.NewTool("tool_d", mcp.WithDescription("Says it is new.")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("new server"), nil
		})
	rm.restart(s)
	eventually(t, 5*time.Second, "the tools of the restarted server", func() bool {
		return slices.Equal(names(r, "acme", "remote"), []string{"remote.tool_a", "remote.tool_d"})
	})
	if res := call(t, r, Request{Tenant: "acme", Tool: "remote.tool_d"}); string(res.Output) != `"new server"` {
		t.Errorf("remote.tool_d = %s", res.Output)
	}
	if st := m.Status(); !st.Connected || st.LastError == "" || strings.Contains(st.LastError, rm.srv.URL) {
		t.Errorf("Status() = %+v; want connected, with why the connection broke, without the URL", st)
	}
}

// TestRemoteLegacySession mounts a stateful server that speaks only a
// protocol before 2026-07-28: notifications come on the GET stream, and
// when the session expires on the server, the next call reconnects and
// goes through.
func TestRemoteLegacySession(t *testing.T) {
	opts := []server.StreamableHTTPOption{server.WithStateful(true), server.WithStreamableHTTPProtocolVersions(mcp.LATEST_LEGACY_PROTOCOL_VERSION)}
	r := newRegistry(t, Options{})
	s := newRemoteMCP()
	rm := newRemote(t, s, opts...)
	m := mount(t, r, RemoteSpec{Tenant: "acme", Namespace: "remote", URL: rm.url()})
	if st := m.Status(); st.Protocol != mcp.LATEST_LEGACY_PROTOCOL_VERSION {
		t.Fatalf("protocol %q; want %s", st.Protocol, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
	}

	// The GET stream opens some time after the mount: a notification sent
	// before is lost, so the tool is added until one arrives.
	tool := mcp.NewTool("tool_c", mcp.WithDescription("Answers c."))
	answer := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("c"), nil
	}
	eventually(t, 5*time.Second, "remote.tool_c to appear", func() bool {
		s.AddTool(tool, answer)
		time.Sleep(50 * time.Millisecond)
		return slices.Contains(names(r, "acme", "remote"), "remote.tool_c")
	})

	rm.forget(newRemoteMCP(), opts...)
	res := call(t, r, Request{Tenant: "acme", Tool: "remote.tool_a", Args: json.RawMessage(`{"a":1,"b":1}`)})
	if string(res.Output) != `{"sum":2}` {
		t.Errorf("after the restart remote.tool_a = %s", res.Output)
	}
	eventually(t, 5*time.Second, "the restarted server's tools", func() bool {
		return slices.Equal(names(r, "acme", "remote"), []string{"remote.tool_a", "remote.tool_b"})
	})
}

// TestRemoteStdioHelper is not a test: run by TestRemoteStdio with
// remoteHelperEnv set, it is the MCP server of a stdio mount. Besides the
// tools of newRemoteMCP it has getenv, which answers a variable of its
// environment, and crash, which exits the process.
func TestRemoteStdioHelper(t *testing.T) {
	if os.Getenv(remoteHelperEnv) != "1" {
		t.Skip("the MCP server process of TestRemoteStdio")
	}
	s := newRemoteMCP()
	s.AddTool(mcp.NewTool("getenv", mcp.WithDescription("Reads a variable."), mcp.WithString("name", mcp.Required())),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(os.Getenv(req.GetString("name", ""))), nil
		})
	s.AddTool(mcp.NewTool("crash", mcp.WithDescription("Exits.")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			go func() {
				time.Sleep(20 * time.Millisecond)
				os.Exit(3)
			}()
			return mcp.NewToolResultText("bye"), nil
		})
	_ = server.NewStdioServer(s).Listen(context.Background(), os.Stdin, os.Stdout)
	os.Exit(0)
}

// TestRemoteStdio mounts a command, this test binary serving MCP on stdio:
// its tools are called, it sees only the environment it is given, and
// when it exits the mount starts it again.
func TestRemoteStdio(t *testing.T) {
	t.Setenv("VIGIL_TEST_SECRET", "do-not-leak")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t, Options{})
	m := mount(t, r, RemoteSpec{Tenant: "acme", Namespace: "local",
		Command: []string{exe, "-test.run=^TestRemoteStdioHelper$"},
		Env:     map[string]string{remoteHelperEnv: "1", "GREETING": "hi"}})
	want := []string{"local.crash", "local.getenv", "local.tool_a", "local.tool_b"}
	if got := names(r, "acme", "local"); !slices.Equal(got, want) {
		t.Fatalf("acme sees %v; want %v", got, want)
	}
	res := call(t, r, Request{Tenant: "acme", Tool: "local.tool_a", Args: json.RawMessage(`{"a":40,"b":2}`)})
	if string(res.Output) != `{"sum":42}` {
		t.Errorf("local.tool_a = %s", res.Output)
	}
	for name, want := range map[string]string{"GREETING": `"hi"`, "VIGIL_TEST_SECRET": `""`} {
		res := call(t, r, Request{Tenant: "acme", Tool: "local.getenv", Args: json.RawMessage(fmt.Sprintf(`{"name":%q}`, name))})
		if string(res.Output) != want {
			t.Errorf("the server's %s = %s; want %s", name, res.Output, want)
		}
	}

	call(t, r, Request{Tenant: "acme", Tool: "local.crash"})
	eventually(t, 5*time.Second, "the mount to notice the exit", func() bool { return m.Status().LastError != "" })
	eventually(t, 10*time.Second, "a call after the server exited", func() bool {
		res, err := r.Call(context.Background(), Request{Tenant: "acme", Tool: "local.tool_b", Args: json.RawMessage(`{"name":"again"}`)})
		return err == nil && string(res.Output) == `"hello, again"`
	})
	if st := m.Status(); !st.Connected {
		t.Errorf("Status() = %+v; want connected again", st)
	}
}

// TestRemoteMountErrors: a malformed spec, a URL the guard refuses, a
// namespace that clashes, a server that is not there.
func TestRemoteMountErrors(t *testing.T) {
	r := newRegistry(t, Options{})
	rm := newRemote(t, newRemoteMCP())
	ctx := context.Background()
	guard := testGuard(t)
	for _, c := range []struct {
		spec  RemoteSpec
		field string
	}{
		{RemoteSpec{Namespace: "Remote", URL: rm.url()}, "namespace"},
		{RemoteSpec{Namespace: "re.mote", URL: rm.url()}, "namespace"},
		{RemoteSpec{Namespace: strings.Repeat("n", 33), URL: rm.url()}, "namespace"},
		{RemoteSpec{Tenant: "a b", Namespace: "remote", URL: rm.url()}, "tenant"},
		{RemoteSpec{Namespace: "remote"}, "url"},
		{RemoteSpec{Namespace: "remote", URL: "ftp://example.com/mcp"}, "url"},
		{RemoteSpec{Namespace: "remote", URL: rm.url(), Command: []string{"server"}}, "command"},
		{RemoteSpec{Namespace: "remote", Command: []string{""}}, "command.0"},
		{RemoteSpec{Namespace: "remote", URL: rm.url(), Headers: map[string]string{"Bad Header": "x"}}, "headers"},
		{RemoteSpec{Namespace: "remote", URL: rm.url(), Headers: map[string]string{"X-Token": "a\r\nb"}}, "headers.X-Token"},
		{RemoteSpec{Namespace: "remote", URL: rm.url(), Env: map[string]string{"A": "b"}}, "env"},
		{RemoteSpec{Namespace: "remote", Command: []string{"server"}, Env: map[string]string{"A-B": "c"}}, "env"},
		{RemoteSpec{Namespace: "remote", URL: rm.url(), Timeout: -time.Second}, "timeout"},
		{RemoteSpec{Namespace: "remote", URL: rm.url(), Scopes: []string{"Read Web"}}, "scopes.0"},
		// Without a guard that allows it, a loopback URL is refused.
		{RemoteSpec{Namespace: "remote", URL: rm.url()}, "url"},
		{RemoteSpec{Namespace: "remote", Command: []string{"/nonexistent/mcp-server"}}, "command"},
	} {
		_, err := r.Mount(ctx, c.spec)
		var ve *vigil.Error
		if !errors.As(err, &ve) || ve.Code != vigil.Invalid || ve.Field != c.field {
			t.Errorf("Mount(%+v) = %v; want invalid %s", c.spec, err, c.field)
		}
	}
	if _, err := r.Mount(ctx, RemoteSpec{Namespace: "remote", URL: rm.url()}); !strings.Contains(fmt.Sprint(err), "loopback") {
		t.Errorf("a loopback URL without an allowance: %v; want the guard's refusal", err)
	}

	mustRegister(t, r, tool("acme", "remote.own", 1), echo("own"))
	if _, err := r.Mount(ctx, RemoteSpec{Tenant: "acme", Namespace: "remote", URL: rm.url(), Guard: guard}); vigil.ErrorCode(err) != vigil.Conflict {
		t.Errorf("a namespace over acme's remote.own: %v; want conflict", err)
	}
	mount(t, r, RemoteSpec{Tenant: "globex", Namespace: "remote", URL: rm.url(), Guard: guard})
	for _, tenant := range []string{"globex", Global} {
		if _, err := r.Mount(ctx, RemoteSpec{Tenant: tenant, Namespace: "remote", URL: rm.url(), Guard: guard}); vigil.ErrorCode(err) != vigil.Conflict {
			t.Errorf("mounting remote again for %q: %v; want conflict", tenant, err)
		}
	}
	if got := names(r, "globex", "remote"); len(got) != 2 {
		t.Errorf("the failed mounts changed globex's tools: %v", got)
	}

	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	_, err := r.Mount(ctx, RemoteSpec{Tenant: "acme", Namespace: "gone", URL: gone.URL + "/mcp?token=s3cret", Guard: guard})
	if vigil.ErrorCode(err) != vigil.Unavailable || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("a server that is not there: %v; want unavailable, without the URL", err)
	}
	if len(r.Mounts("acme")) != 0 {
		t.Errorf("a failed mount is listed: %v", r.Mounts("acme"))
	}
	if err := r.Unmount("acme", "nothing"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("Unmount(nothing) = %v; want not found", err)
	}
}

// TestRemoteUnmount: unmounting removes the tools (reporting each while
// MountOf still knows it) and frees the namespace.
func TestRemoteUnmount(t *testing.T) {
	r := newRegistry(t, Options{})
	rm := newRemote(t, newRemoteMCP())
	m := mount(t, r, RemoteSpec{Tenant: "acme", Namespace: "remote", URL: rm.url()})
	changes := recordChanges(t, r)
	if err := r.Unmount("acme", "remote"); err != nil {
		t.Fatal(err)
	}
	if got := names(r, "acme", "remote"); len(got) != 0 {
		t.Errorf("after Unmount acme sees %v", got)
	}
	var seen []string
	for _, c := range changes() {
		seen = append(seen, fmt.Sprintf("%s %s %v", c.Kind, c.Name, c.mounted))
	}
	if want := []string{"unregistered remote.tool_a true", "unregistered remote.tool_b true"}; !slices.Equal(seen, want) {
		t.Errorf("changes %v; want %v", seen, want)
	}
	if _, ok := r.MountOf("acme", "remote.tool_a"); ok || len(r.Mounts("acme")) != 0 || m.Status().Connected {
		t.Error("the mount is still known after Unmount")
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close after Unmount: %v", err)
	}
	mount(t, r, RemoteSpec{Tenant: "acme", Namespace: "remote", URL: rm.url()})
	if got := names(r, "acme", "remote"); len(got) != 2 {
		t.Errorf("mounted again, acme sees %v", got)
	}
}

func TestLocalName(t *testing.T) {
	for remote, want := range map[string]string{
		"search_repos": "gh.search_repos",
		"searchRepos":  "gh.search_repos",
		"get-issue":    "gh.get_issue",
		"v2Search":     "gh.v2_search",
		"files.read":   "gh.files.read",
		"HTTPGet":      "gh.httpget",
		"Ünïcode":      "gh._n_code",
		".":            "gh.tool",
	} {
		if got := localName("gh", remote); got != want {
			t.Errorf("localName(gh, %q) = %q; want %q", remote, got, want)
		}
	}
	long1 := localName("gh", strings.Repeat("x", 80)+"1")
	long2 := localName("gh", strings.Repeat("x", 80)+"2")
	if len(long1) != maxNameLen || long1 == long2 || !namePattern.MatchString(long1) {
		t.Errorf("long names %q and %q; want %d bytes each, apart", long1, long2, maxNameLen)
	}
}

func TestRemoteSpecJSON(t *testing.T) {
	spec := RemoteSpec{Tenant: "acme", Namespace: "gh", URL: "https://mcp.example.com/mcp",
		Headers: map[string]string{"Authorization": "Bearer x"}, Scopes: []string{"read:gh"}, Timeout: 90 * time.Second}
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"timeout":"1m30s"`) || strings.Contains(string(b), "guard") {
		t.Errorf("JSON %s", b)
	}
	var back RemoteSpec
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Timeout != spec.Timeout || back.Headers["Authorization"] != "Bearer x" || back.URL != spec.URL || back.Namespace != "gh" {
		t.Errorf("round trip %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"namespace":"gh","timeout":"soon"}`), &back); vigil.ErrorCode(err) != vigil.Invalid {
		t.Errorf("a bad timeout: %v", err)
	}
}

// TestRemoteDefinitions: how remote tools become registrations, and their
// results outputs, for the shapes the test server does not send.
func TestRemoteDefinitions(t *testing.T) {
	m := &Mount{spec: RemoteSpec{Tenant: "acme", Namespace: "gh"}, log: quietLogger}
	defs := m.definitions([]mcp.Tool{{Name: "noSchema"}, {Name: "dup"}, {Name: "Dup", Title: "Upper"}})
	if got := slices.Sorted(maps.Keys(defs)); !slices.Equal(got, []string{"gh.dup", "gh.no_schema"}) {
		t.Fatalf("definitions %v", got)
	}
	if d := defs["gh.no_schema"]; d.remote != "noSchema" || d.tool.InputSchema != nil || !strings.Contains(d.tool.Description, "noSchema") {
		t.Errorf("gh.no_schema = %+v; want no input schema and a description naming the remote tool", d)
	}
	if d := defs["gh.dup"]; d.remote != "Dup" || d.tool.Description != "Upper" {
		t.Errorf("gh.dup = %+v; want the first remote name in order, Dup, described by its title", d)
	}
	r := newRegistry(t, Options{})
	mustRegister(t, r, defs["gh.no_schema"].tool, echo("x"))

	for _, c := range []struct {
		res       *mcp.CallToolResult
		hasOutput bool
		want      string
	}{
		{&mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(`{"n":1}`)}}, true, `{"n":1}`},
		{&mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(`{"n":1}`)}}, false, `"{\"n\":1}"`},
		{&mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent("a"), mcp.NewTextContent("b")}}, false, `"a\nb"`},
		{&mcp.CallToolResult{StructuredContent: map[string]int{"n": 2}, Content: []mcp.Content{mcp.NewTextContent("two")}}, true, `{"n":2}`},
		{&mcp.CallToolResult{}, false, ``},
	} {
		out, err := m.output(c.res, c.hasOutput)
		if err != nil || string(out.Value) != c.want {
			t.Errorf("output(%+v, %v) = %s, %v; want %s", c.res, c.hasOutput, out.Value, err, c.want)
		}
	}
}

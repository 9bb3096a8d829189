package mcpserver_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/httpapi"
	"github.com/vigilhq/vigil/mcpserver"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// world is a Vigil server with MCP mounted at /mcp behind the real httpapi
// middleware, over a bolt file: the log, the tasks and the hub, a tools
// registry with one global tool, and a task manager.
type world struct {
	db  *bolt.DB
	hub *streams.Hub
	reg *toolsregistry.Registry
	mgr *tasks.Manager
	srv *mcpserver.Server
	url string // the MCP endpoint
}

// testLogger discards records unless the test runs with -v.
func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newBolt(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newWorld starts a world; edit adjusts the MCP server's options.
// mount, when set, wraps the MCP handler instead of httpapi (tenant tests
// put principals of their choice in the context).
func newWorld(t *testing.T, edit func(*mcpserver.Options), mount func(http.Handler) http.Handler) *world {
	t.Helper()
	w := &world{db: newBolt(t)}
	logger := testLogger(t)
	w.hub = streams.NewHub(w.db, streams.HubOptions{Wait: 200 * time.Millisecond, Logger: logger})
	w.reg = toolsregistry.New(toolsregistry.Options{Logger: logger})
	echo := toolsregistry.Tool{Name: "echo", Version: 1, Description: "Echo the arguments."}
	if err := w.reg.Register(echo, toolsregistry.HandlerFunc(func(_ context.Context, args json.RawMessage) (toolsregistry.Output, error) {
		return toolsregistry.Output{Value: args}, nil
	})); err != nil {
		t.Fatal(err)
	}
	w.mgr = tasks.NewManager(tasks.Options{Store: w.db, Log: w.db, Logger: logger})
	guard, err := toolsregistry.NewGuard(toolsregistry.GuardOptions{Allow: []string{"127.0.0.1", "::1"}})
	if err != nil {
		t.Fatal(err)
	}
	opts := mcpserver.Options{
		Log: w.db, Hub: w.hub, Registry: w.reg, Tasks: w.mgr, Guard: guard, Logger: logger,
		ElicitTimeout: 5 * time.Second, Heartbeat: -1,
	}
	if edit != nil {
		edit(&opts)
	}
	w.srv = mcpserver.New(opts)
	t.Cleanup(w.srv.Close)

	var h http.Handler
	if mount != nil {
		mux := http.NewServeMux()
		mux.Handle("/mcp", mount(w.srv.Handler()))
		h = mux
	} else {
		api := httpapi.New(httpapi.Options{Log: w.db, Hub: w.hub, Tasks: w.mgr, Logger: logger})
		api.Handle("/mcp", w.srv.Handler())
		h = api
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	t.Cleanup(w.srv.Close) // before ts.Close: end the streams first
	w.url = ts.URL + "/mcp"
	return w
}

// The protocol generations a client can speak over streamable HTTP.
const (
	legacy = "session" // 2025-11-25: initialize, Mcp-Session-Id, GET stream
	modern = "2026-07-28"
)

var generations = []string{legacy, modern}

// clientConfig adjusts a test client.
type clientConfig struct {
	headers map[string]string
	opts    []client.ClientOption
}

// httpClient connects an initialized client of generation gen.
func (w *world) httpClient(t *testing.T, gen string, cfg clientConfig) *client.Client {
	t.Helper()
	topts := []transport.StreamableHTTPCOption{transport.WithHTTPTimeout(30 * time.Second)}
	if cfg.headers != nil {
		topts = append(topts, transport.WithHTTPHeaders(cfg.headers))
	}
	copts := cfg.opts
	if gen == legacy {
		topts = append(topts, transport.WithContinuousListening())
		copts = append(copts, client.WithProtocolVersion(mcp.ProtocolVersion20251125))
	}
	tr, err := transport.NewStreamableHTTP(w.url, topts...)
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, copts...)
	start(t, c, gen)
	return c
}

// start starts and initializes c and checks the generation it settled on.
func start(t *testing.T, c *client.Client, gen string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	res, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ClientInfo: mcp.Implementation{Name: "vigil-test", Version: "1"},
	}})
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	switch gen {
	case legacy:
		if res.ProtocolVersion != mcp.ProtocolVersion20251125 {
			t.Fatalf("negotiated %s, want %s", res.ProtocolVersion, mcp.ProtocolVersion20251125)
		}
	case modern:
		if c.ProtocolVersion() != mcp.ProtocolVersion20260728 {
			t.Fatalf("negotiated %s, want %s", c.ProtocolVersion(), mcp.ProtocolVersion20260728)
		}
	}
}

// stdioClient serves the world's MCP server over an in-memory pipe and
// connects a client of generation gen to it. mcp-go keeps one stdio
// session per process, so stdio tests do not run in parallel.
func (w *world) stdioClient(t *testing.T, gen string, opts ...client.ClientOption) *client.Client {
	t.Helper()
	toServer, fromClient := io.Pipe()
	toClient, fromServer := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.srv.ServeStdio(ctx, toServer, fromServer) }()
	t.Cleanup(func() {
		// End the input, and make writes of answers no one reads fail, so
		// that the server's request handlers finish.
		cancel()
		fromClient.Close()
		toClient.Close()
		if err := <-done; err != nil && err != context.Canceled {
			t.Errorf("ServeStdio: %v", err)
		}
	})
	if gen == legacy {
		opts = append(opts, client.WithProtocolVersion(mcp.ProtocolVersion20251125))
	}
	c := client.NewClient(transport.NewIO(toClient, fromClient, nil), opts...)
	start(t, c, gen)
	return c
}

// callTool calls a tool and fails t on a protocol error.
func callTool(t *testing.T, c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	return callToolMeta(t, c, name, args, nil)
}

func callToolMeta(t *testing.T, c *client.Client, name string, args map[string]any, meta *mcp.Meta) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	req.Params.Meta = meta
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

// ok checks res succeeded and decodes its structured content into out.
func ok(t *testing.T, res *mcp.CallToolResult, out any) {
	t.Helper()
	if res.IsError {
		t.Fatalf("tool failed: %s", text(res))
	}
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("structured content %s: %v", raw, err)
		}
	}
	if text(res) == "" {
		t.Error("no text content beside the structured content")
	}
}

// failed checks res is an isError result whose text starts with prefix.
func failed(t *testing.T, res *mcp.CallToolResult, prefix string) {
	t.Helper()
	if !res.IsError {
		raw, _ := json.Marshal(res.StructuredContent)
		t.Fatalf("tool succeeded (%s), want an error starting %q", raw, prefix)
	}
	if got := text(res); !strings.HasPrefix(got, prefix) {
		t.Fatalf("error %q, want it to start with %q", got, prefix)
	}
}

func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// notes records the notifications a client receives.
type notes struct {
	mu   sync.Mutex
	got  []mcp.JSONRPCNotification
	wake chan struct{}
}

func listen(c *client.Client) *notes {
	n := &notes{wake: make(chan struct{}, 1)}
	c.OnNotification(func(m mcp.JSONRPCNotification) {
		n.mu.Lock()
		n.got = append(n.got, m)
		n.mu.Unlock()
		select {
		case n.wake <- struct{}{}:
		default:
		}
	})
	return n
}

// of returns the notifications of method received so far.
func (n *notes) of(method string) []mcp.JSONRPCNotification {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []mcp.JSONRPCNotification
	for _, m := range n.got {
		if m.Method == method {
			out = append(out, m)
		}
	}
	return out
}

// wait waits up to d for a notification of method that match accepts.
func (n *notes) wait(t *testing.T, method string, d time.Duration, match func(mcp.JSONRPCNotification) bool) mcp.JSONRPCNotification {
	t.Helper()
	deadline := time.After(d)
	for {
		for _, m := range n.of(method) {
			if match == nil || match(m) {
				return m
			}
		}
		select {
		case <-n.wake:
		case <-deadline:
			t.Fatalf("no %s within %s", method, d)
		}
	}
}

// none checks that no notification of method arrives within d.
func (n *notes) none(t *testing.T, method string, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	if got := n.of(method); len(got) > 0 {
		t.Fatalf("got %d %s, want none", len(got), method)
	}
}

// asTenant is a middleware that acts for the tenant in the X-Tenant
// header, as the user in X-User (default u-<tenant>), with the roles in
// X-Roles: what auth does with credentials.
func asTenant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := vigil.Principal{Tenant: r.Header.Get("X-Tenant"), User: "u-" + r.Header.Get("X-Tenant")}
		if u := r.Header.Get("X-User"); u != "" {
			p.User = u
		}
		if roles := r.Header.Get("X-Roles"); roles != "" {
			p.Roles = strings.Split(roles, ",")
		}
		ctx := vigil.WithTraceID(vigil.WithPrincipal(r.Context(), p), vigil.NewTraceID())
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// ctxOf returns a context acting for tenant, for direct calls to the
// domain in tests.
func ctxOf(tenant string) context.Context {
	return vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: tenant, User: "test"})
}

package toolsregistry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/toolsregistry"
	"github.com/vigilhq/vigil/toolsregistry/remotetest"
)

func calcSpec(url string) toolsregistry.PluginSpec {
	return toolsregistry.PluginSpec{
		Kind: toolsregistry.PluginMCP, Namespace: "calc", URL: url, Description: "A calculator.",
		Headers: map[string]string{"Authorization": remotetest.Token},
	}
}

// remoteNode is a registry and a started Sync over store, reloading every
// resync (negative: never). When the test ends, it closes the Sync, then
// the mounts it made.
func remoteNode(t *testing.T, store toolsregistry.PluginStore, resync time.Duration) *node {
	t.Helper()
	n := &node{reg: toolsregistry.New(toolsregistry.Options{})}
	n.reg.OnChange(func(toolsregistry.Change) { n.changes.Add(1) })
	guard, err := toolsregistry.NewGuard(toolsregistry.GuardOptions{Allow: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	n.sync, err = toolsregistry.NewSync(n.reg, toolsregistry.SyncOptions{
		Store: store, Key: testKey, Guard: guard, ResyncEvery: resync,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.sync.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.sync.Close()
		for _, m := range n.reg.Mounts("acme") {
			m.Close()
		}
	})
	return n
}

// add calls calc.add_numbers for tenant on n and returns the sum.
func (n *node) add(t *testing.T, tenant string, a, b int) (float64, error) {
	t.Helper()
	res, err := n.reg.Call(context.Background(), toolsregistry.Request{
		Tenant: tenant, Tool: "calc.add_numbers", Args: json.RawMessage(fmt.Sprintf(`{"a":%d,"b":%d}`, a, b)),
	})
	if err != nil {
		return 0, err
	}
	var out struct{ Sum float64 }
	if err := json.Unmarshal(res.Output, &out); err != nil {
		t.Fatalf("calc.add_numbers answered %s", res.Output)
	}
	return out.Sum, nil
}

// TestSyncMountsRemote mounts a remote MCP server for tenant acme on one
// node: its tool is namespaced, seen and callable by acme alone, on this
// node at once and on another node over the same store soon after; the
// listing blanks the headers, which are stored sealed; one of its tools
// cannot be unregistered alone, and unregistering the namespace unmounts
// it on both nodes.
func TestSyncMountsRemote(t *testing.T) {
	ctx := context.Background()
	rc := remotetest.NewCalc(t)
	db := newDB(t)
	a, b := remoteNode(t, db, -1), remoteNode(t, db, -1)

	mi, err := a.sync.Mount(ctx, "acme", calcSpec(rc.URL))
	if err != nil {
		t.Fatal(err)
	}
	if mi.State != toolsregistry.MountMounted || !slices.Equal(mi.Tools, []string{"calc.add_numbers"}) ||
		mi.Spec.Namespace != "calc" || mi.Spec.Headers["Authorization"] != "" || len(mi.Spec.Headers) != 1 || !mi.Status.Connected {
		t.Fatalf("Mount returned %+v", mi)
	}
	if sum, err := a.add(t, "acme", 2, 3); err != nil || sum != 5 {
		t.Fatalf("calc.add_numbers(2, 3) right after Mount: %v, %v", sum, err)
	}
	if _, err := a.add(t, "globex", 2, 3); vigil.ErrorCode(err) != vigil.NotFound {
		t.Fatalf("another tenant called acme's mounted tool: %v", err)
	}
	if got := a.sync.Mounts("globex"); len(got) != 0 {
		t.Fatalf("another tenant lists acme's mounts: %+v", got)
	}

	stored, _, err := db.ListPlugins(ctx)
	if err != nil || len(stored) != 1 || stored[0].Kind != toolsregistry.PluginMCP || stored[0].Tool.Name != "calc" {
		t.Fatalf("stored %+v (%v), want the calc mount", stored, err)
	}
	if raw, _ := json.Marshal(stored); strings.Contains(string(raw), "RemoteTokenMarker") {
		t.Fatalf("the stored mount holds its header in clear: %s", raw)
	}

	eventually(t, "calc.add_numbers on b", func() bool { return b.has("calc.add_numbers") })
	if sum, err := b.add(t, "acme", 40, 2); err != nil || sum != 42 {
		t.Fatalf("calc.add_numbers(40, 2) on b: %v, %v", sum, err)
	}
	if got := b.sync.Mounts("acme"); len(got) != 1 || got[0].State != toolsregistry.MountMounted || got[0].Spec.Headers["Authorization"] != "" {
		t.Fatalf("b lists %+v", got)
	}

	wantErr(t, a.sync.Unregister(ctx, "acme", "calc.add_numbers"), vigil.Invalid, "unregister calc")
	_, err = a.sync.Mount(ctx, "acme", calcSpec(rc.URL))
	wantErr(t, err, vigil.Conflict, "calc")
	_, err = a.sync.Register(ctx, "acme", spec(syncPlugin(t), "calc.extra"))
	wantErr(t, err, vigil.Conflict, "namespace calc")

	if err := a.sync.Unregister(ctx, "acme", "calc"); err != nil {
		t.Fatal(err)
	}
	if a.has("calc.add_numbers") || len(a.reg.Mounts("acme")) != 0 || len(a.sync.Mounts("acme")) != 0 {
		t.Fatal("unregistering calc left it mounted on a")
	}
	eventually(t, "calc unmounted on b", func() bool { return !b.has("calc.add_numbers") && len(b.reg.Mounts("acme")) == 0 })
	wantErr(t, a.sync.Unregister(ctx, "acme", "calc"), vigil.NotFound, "calc")
}

// TestSyncMountChecks checks that a remote MCP server that cannot be
// mounted is refused, naming the field, and that nothing is stored.
func TestSyncMountChecks(t *testing.T) {
	ctx := context.Background()
	rc := remotetest.NewCalc(t)
	db := newDB(t)
	n := remoteNode(t, db, -1)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, tc := range []struct {
		name   string
		tenant string
		edit   func(*toolsregistry.PluginSpec)
		code   vigil.Code
		text   string
	}{
		{"global", toolsregistry.Global, nil, vigil.Invalid, "tenant"},
		{"kind http", "acme", func(s *toolsregistry.PluginSpec) { s.Kind = toolsregistry.PluginHTTP }, vigil.Invalid, "kind"},
		{"command", "acme", func(s *toolsregistry.PluginSpec) { s.URL, s.Command = "", []string{"/bin/sh"} }, vigil.Invalid, "command: is not allowed"},
		{"env", "acme", func(s *toolsregistry.PluginSpec) { s.Env = map[string]string{"A": "b"} }, vigil.Invalid, "env"},
		{"secret", "acme", func(s *toolsregistry.PluginSpec) { s.Secret = syncSecret }, vigil.Invalid, "secret"},
		{"schema", "acme", func(s *toolsregistry.PluginSpec) { s.InputSchema = json.RawMessage(`{}`) }, vigil.Invalid, "input_schema"},
		{"version", "acme", func(s *toolsregistry.PluginSpec) { s.Version = 2 }, vigil.Invalid, "version"},
		{"name and namespace", "acme", func(s *toolsregistry.PluginSpec) { s.Name = "other" }, vigil.Invalid, "namespace"},
		{"bad namespace", "acme", func(s *toolsregistry.PluginSpec) { s.Namespace = "Calc" }, vigil.Invalid, "namespace"},
		{"no url", "acme", func(s *toolsregistry.PluginSpec) { s.URL = "" }, vigil.Invalid, "url"},
		{"header name", "acme", func(s *toolsregistry.PluginSpec) { s.Headers = map[string]string{"bad header": "x"} }, vigil.Invalid, "headers"},
		{"no authorization", "acme", func(s *toolsregistry.PluginSpec) { s.Headers = nil }, vigil.Invalid, "headers"},
		{"guarded", "acme", func(s *toolsregistry.PluginSpec) { s.URL = strings.Replace(rc.URL, "127.0.0.1", "[::1]", 1) }, vigil.Invalid, "url: refused"},
		{"down", "acme", func(s *toolsregistry.PluginSpec) { s.URL = gone.URL + "/mcp" }, vigil.Unavailable, "cannot connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := calcSpec(rc.URL)
			if tc.edit != nil {
				tc.edit(&s)
			}
			_, err := n.sync.Mount(ctx, tc.tenant, s)
			wantErr(t, err, tc.code, tc.text)
		})
	}
	if ps, _, err := db.ListPlugins(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("stored %d plugins (%v), want none", len(ps), err)
	}
	if len(n.reg.Mounts("acme")) != 0 || len(n.sync.Mounts("acme")) != 0 {
		t.Fatal("a refused mount is left mounted")
	}
	_, err := n.sync.Register(ctx, "acme", toolsregistry.PluginSpec{Kind: toolsregistry.PluginMCP, Name: "calc", URL: rc.URL})
	wantErr(t, err, vigil.Invalid, "kind")
}

// TestSyncRemountsAfterOutage runs two nodes over one Redis prefix. The
// remote is down when the second starts, so its mount fails and is listed
// as failed; once the remote is back, the periodic reload mounts it, and
// its tool is callable there. Unregistering on the second node unmounts
// on the first.
func TestSyncRemountsAfterOutage(t *testing.T) {
	ctx := context.Background()
	rc := remotetest.NewCalc(t)
	prefix := redistest.Prefix(t)
	openStore := func() toolsregistry.PluginStore {
		l, err := redis.Open(ctx, redistest.URL(t), redis.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	a := remoteNode(t, openStore(), -1)
	if _, err := a.sync.Mount(ctx, "acme", calcSpec(rc.URL)); err != nil {
		t.Fatal(err)
	}

	rc.Down.Store(true)
	b := remoteNode(t, openStore(), 100*time.Millisecond)
	eventually(t, "the failed mount listed on b", func() bool {
		ms := b.sync.Mounts("acme")
		return len(ms) == 1 && ms[0].State == toolsregistry.MountFailed && ms[0].Error != ""
	})
	if b.has("calc.add_numbers") {
		t.Fatal("b mounted a server that is down")
	}

	rc.Down.Store(false)
	// The mount registers its tools, then records itself: Mounts may say
	// mounting for a moment after the tools are there, never failed.
	eventually(t, "b mounts calc once the remote is back", func() bool {
		has := b.has("calc.add_numbers") // before Mounts: tools come first
		ms := b.sync.Mounts("acme")
		if has && len(ms) == 1 && ms[0].State == toolsregistry.MountFailed {
			t.Fatalf("b lists %+v with calc's tools registered", ms)
		}
		return has && len(ms) == 1 && ms[0].State == toolsregistry.MountMounted && ms[0].Error == ""
	})
	if sum, err := b.add(t, "acme", 1, 2); err != nil || sum != 3 {
		t.Fatalf("calc.add_numbers(1, 2) on b: %v, %v", sum, err)
	}

	if err := b.sync.Unregister(ctx, "acme", "calc"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "calc unmounted on a", func() bool { return !a.has("calc.add_numbers") && len(a.reg.Mounts("acme")) == 0 })
}

package toolsregistry_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/toolsregistry"
)

const syncSecret = "0123456789abcdef-secret"

// syncPlugin serves an HTTP tool that answers calls signed with syncSecret.
func syncPlugin(t *testing.T) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := toolsregistry.Verify([]byte(syncSecret), r); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

func spec(url, name string) toolsregistry.PluginSpec {
	return toolsregistry.PluginSpec{Name: name, Description: "A plugin tool.", URL: url, Secret: syncSecret}
}

// node is a registry with a Sync, and a count of the registry's changes.
type node struct {
	reg     *toolsregistry.Registry
	sync    *toolsregistry.Sync
	changes atomic.Int64
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

// newNode starts a node over store (nil for none), with an "echo" tool
// built in.
func newNode(t *testing.T, store toolsregistry.PluginStore) *node {
	t.Helper()
	n := &node{reg: toolsregistry.New(toolsregistry.Options{})}
	echo := toolsregistry.Tool{Name: "echo", Version: 1, Description: "Echo the arguments."}
	if err := n.reg.Register(echo, toolsregistry.HandlerFunc(func(_ context.Context, args json.RawMessage) (toolsregistry.Output, error) {
		return toolsregistry.Output{Value: args}, nil
	})); err != nil {
		t.Fatal(err)
	}
	n.reg.OnChange(func(toolsregistry.Change) { n.changes.Add(1) })
	guard, err := toolsregistry.NewGuard(toolsregistry.GuardOptions{Allow: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	n.sync, err = toolsregistry.NewSync(n.reg, toolsregistry.SyncOptions{
		Store: store, Key: testKey, Guard: guard, ResyncEvery: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.sync.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.sync.Close)
	return n
}

// has reports whether tenant acme sees ref on n.
func (n *node) has(ref string) bool {
	_, err := n.reg.Resolve("acme", ref)
	return err == nil
}

func (n *node) call(t *testing.T, ref string) {
	t.Helper()
	res, err := n.reg.Call(context.Background(), toolsregistry.Request{Tenant: "acme", Tool: ref})
	if err != nil {
		t.Fatalf("call %s: %v", ref, err)
	}
	if string(res.Output) != `{"ok":true}` {
		t.Fatalf("call %s: %s", ref, res.Output)
	}
}

func wantErr(t *testing.T, err error, code vigil.Code, text string) {
	t.Helper()
	if vigil.ErrorCode(err) != code || !strings.Contains(err.Error(), text) {
		t.Fatalf("error %v, want code %s mentioning %q", err, code, text)
	}
}

func newDB(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestSyncChecksBeforeStoring checks that what the registry would refuse
// is refused before anything is stored, with the field at fault.
func TestSyncChecksBeforeStoring(t *testing.T) {
	db := newDB(t)
	n := newNode(t, db)
	url := syncPlugin(t)
	ctx := context.Background()
	if _, err := n.sync.Register(ctx, "acme", spec(url, "acme.ok")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tenant string
		edit   func(*toolsregistry.PluginSpec)
		code   vigil.Code
		text   string
	}{
		{"global", toolsregistry.Global, nil, vigil.Invalid, "tenant"},
		{"kind mcp", "acme", func(s *toolsregistry.PluginSpec) { s.Kind = toolsregistry.PluginMCP }, vigil.Invalid, "secret"},
		{"unknown kind", "acme", func(s *toolsregistry.PluginSpec) { s.Kind = "grpc" }, vigil.Invalid, "kind"},
		{"headers on http", "acme", func(s *toolsregistry.PluginSpec) { s.Headers = map[string]string{"a": "b"} }, vigil.Invalid, "kind mcp only"},
		{"short secret", "acme", func(s *toolsregistry.PluginSpec) { s.Secret = "short" }, vigil.Invalid, "secret"},
		{"bad url", "acme", func(s *toolsregistry.PluginSpec) { s.URL = "ftp://x" }, vigil.Invalid, "url"},
		{"bad timeout", "acme", func(s *toolsregistry.PluginSpec) { s.Timeout = "soon" }, vigil.Invalid, "timeout"},
		{"bad name", "acme", func(s *toolsregistry.PluginSpec) { s.Name = "Acme" }, vigil.Invalid, "name"},
		{"string schema", "acme", func(s *toolsregistry.PluginSpec) { s.InputSchema = json.RawMessage(`{"type":"string"}`) }, vigil.Invalid, "input_schema"},
		{"built-in name", "acme", func(s *toolsregistry.PluginSpec) { s.Name = "echo" }, vigil.Conflict, "built-in"},
		{"same version", "acme", func(s *toolsregistry.PluginSpec) { s.Name = "acme.ok" }, vigil.Conflict, "already registered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec(url, "acme.bad")
			if tc.edit != nil {
				tc.edit(&s)
			}
			_, err := n.sync.Register(ctx, tc.tenant, s)
			wantErr(t, err, tc.code, tc.text)
		})
	}
	if ps, _, err := db.ListPlugins(ctx); err != nil || len(ps) != 1 {
		t.Fatalf("stored %d plugins (%v), want only acme.ok", len(ps), err)
	}
	wantErr(t, n.sync.Unregister(ctx, "acme", "echo"), vigil.Forbidden, "built-in")
	wantErr(t, n.sync.Unregister(ctx, "acme", "acme.none"), vigil.NotFound, "acme.none")
	wantErr(t, n.sync.Unregister(ctx, "acme", "Acme"), vigil.Invalid, "tool")
}

// TestSyncWithoutStore checks the in-process mode: registration and
// removal act on the registry alone.
func TestSyncWithoutStore(t *testing.T) {
	n := newNode(t, nil)
	ctx := context.Background()
	url := syncPlugin(t)
	s := spec(url, "acme.local")
	s.Timeout = "5s"
	l, err := n.sync.Register(ctx, "acme", s)
	if err != nil {
		t.Fatal(err)
	}
	if l.Tool.Ref() != "acme.local@1" || !l.Default || l.Tool.Timeout != 5*time.Second {
		t.Fatalf("registered %+v", l)
	}
	n.call(t, "acme.local")
	s.Version = 2
	if _, err := n.sync.Register(ctx, "acme", s); err != nil {
		t.Fatal(err)
	}
	if _, err := n.sync.Register(ctx, "acme", s); vigil.ErrorCode(err) != vigil.Conflict {
		t.Fatalf("the same version again: %v", err)
	}
	if got := len(n.sync.List("acme")); got != 3 {
		t.Fatalf("acme lists %d tools, want echo and two versions", got)
	}
	if err := n.sync.Unregister(ctx, "acme", "acme.local@1"); err != nil {
		t.Fatal(err)
	}
	if n.has("acme.local@1") || !n.has("acme.local@2") {
		t.Fatal("unregistering version 1 did not remove exactly it")
	}
	if err := n.sync.Unregister(ctx, "acme", "acme.local"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, n.sync.Unregister(ctx, "acme", "acme.local"), vigil.NotFound, "acme.local")
	if got := n.changes.Load(); got != 4 {
		t.Fatalf("%d registry changes, want 4", got)
	}
}

// quietStore is a real store whose watch reports only what the test
// sends, as if the store's messages were lost.
type quietStore struct {
	toolsregistry.PluginStore
	ch chan toolsregistry.PluginChange
}

func (q *quietStore) WatchPlugins(context.Context) (<-chan toolsregistry.PluginChange, error) {
	return q.ch, nil
}

// eventually waits up to 5 seconds for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	defer func(s time.Time) { t.Logf("%s took %v", what, time.Since(s)) }(time.Now())
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSyncRepairsMissedChanges runs a node whose watch loses changes that
// another node makes: a skipped revision and a Resync each reload the
// store, and a stale change (one the reload covered) changes nothing.
func TestSyncRepairsMissedChanges(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	quiet := &quietStore{PluginStore: db, ch: make(chan toolsregistry.PluginChange, 8)}
	deaf, other := newNode(t, quiet), newNode(t, db)
	url := syncPlugin(t)

	if _, err := deaf.sync.Register(ctx, "acme", spec(url, "acme.a")); err != nil { // rev 1
		t.Fatal(err)
	}
	stored, _, err := db.ListPlugins(ctx)
	if err != nil || len(stored) != 1 {
		t.Fatal(stored, err)
	}
	putA := toolsregistry.PluginChange{Rev: stored[0].Rev, Put: &stored[0]}
	eventually(t, "acme.a on the other node", func() bool { return other.has("acme.a") })
	if _, err := other.sync.Register(ctx, "acme", spec(url, "acme.b")); err != nil { // rev 2
		t.Fatal(err)
	}
	if err := other.sync.Unregister(ctx, "acme", "acme.a"); err != nil { // rev 3
		t.Fatal(err)
	}
	if !deaf.has("acme.a") || deaf.has("acme.b") {
		t.Fatal("the deaf node heard changes it was not sent")
	}

	// Revision 3 arrives, 2 never did: reload.
	quiet.ch <- toolsregistry.PluginChange{Rev: 3, Deleted: &toolsregistry.PluginDeletion{Tenant: "acme", Name: "acme.a", Versions: []int{1}}}
	eventually(t, "the reload after a skipped revision", func() bool { return !deaf.has("acme.a") && deaf.has("acme.b") })
	deaf.call(t, "acme.b")

	// A Resync: reload.
	if _, err := other.sync.Register(ctx, "acme", spec(url, "acme.c")); err != nil { // rev 4
		t.Fatal(err)
	}
	quiet.ch <- toolsregistry.PluginChange{Resync: true}
	eventually(t, "the reload after a Resync", func() bool { return deaf.has("acme.c") })

	// A late copy of acme.a's registration changes nothing; the change
	// after it applies.
	if _, err := other.sync.Register(ctx, "acme", spec(url, "acme.d")); err != nil { // rev 5
		t.Fatal(err)
	}
	list, _, err := db.ListPlugins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := deaf.changes.Load()
	quiet.ch <- putA
	for _, p := range list {
		if p.Tool.Name == "acme.d" {
			quiet.ch <- toolsregistry.PluginChange{Rev: p.Rev, Put: &p}
		}
	}
	eventually(t, "acme.d after the late change", func() bool { return deaf.has("acme.d") })
	if deaf.has("acme.a") || deaf.changes.Load() != before+1 {
		t.Fatalf("the late change of acme.a registered it again (%d changes, want 1)", deaf.changes.Load()-before)
	}
}

// TestSyncEchoes checks that a node's own changes, reported back by the
// store's watch, change nothing more, and that another node over the same
// store follows.
func TestSyncEchoes(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	a, b := newNode(t, db), newNode(t, db)
	url := syncPlugin(t)
	if _, err := a.sync.Register(ctx, "acme", spec(url, "acme.x")); err != nil {
		t.Fatal(err)
	}
	a.call(t, "acme.x") // at once, on the writer
	eventually(t, "acme.x on b", func() bool { return b.has("acme.x") })
	b.call(t, "acme.x")
	if err := a.sync.Unregister(ctx, "acme", "acme.x"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "acme.x gone from b", func() bool { return !b.has("acme.x") })
	// The echoes came before b's copies: by now a has seen its own.
	time.Sleep(50 * time.Millisecond)
	if a.changes.Load() != 2 || b.changes.Load() != 2 {
		t.Fatalf("registry changes: a %d, b %d; want 2 each", a.changes.Load(), b.changes.Load())
	}
}

// TestSyncSealedToPlugin checks that sealed secrets open only for the
// plugin they were sealed for: a record whose sealed bytes were copied
// from another plugin does not load, and the others still do.
func TestSyncSealedToPlugin(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	a := newNode(t, db)
	url := syncPlugin(t)
	if _, err := a.sync.Register(ctx, "acme", spec(url, "acme.real")); err != nil {
		t.Fatal(err)
	}
	stored, _, err := db.ListPlugins(ctx)
	if err != nil || len(stored) != 1 {
		t.Fatal(stored, err)
	}
	if strings.Contains(string(stored[0].Sealed), syncSecret) {
		t.Fatal("the stored plugin holds its secret in clear")
	}
	forged := stored[0]
	forged.Tool.Name = "acme.forged"
	if _, err := db.PutPlugin(ctx, forged); err != nil {
		t.Fatal(err)
	}
	b := newNode(t, db)
	if !b.has("acme.real") || b.has("acme.forged") {
		t.Fatalf("loaded real %v, forged %v; want only the real one", b.has("acme.real"), b.has("acme.forged"))
	}
	b.call(t, "acme.real")
}

// TestSyncWithoutKey checks a Sync with a store and no key: it cannot seal
// or open secrets, so registering is Unavailable (saying what to set) and
// stored plugins do not load, while starting and unregistering work.
func TestSyncWithoutKey(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	keyed := newNode(t, db)
	url := syncPlugin(t)
	if _, err := keyed.sync.Register(ctx, "acme", spec(url, "acme.stored")); err != nil {
		t.Fatal(err)
	}
	reg := toolsregistry.New(toolsregistry.Options{})
	s, err := toolsregistry.NewSync(reg, toolsregistry.SyncOptions{Store: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if _, err := reg.Resolve("acme", "acme.stored"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Fatalf("a plugin loaded without a key: %v", err)
	}
	_, err = s.Register(ctx, "acme", spec(url, "acme.new"))
	wantErr(t, err, vigil.Unavailable, "memory.key")
	if err := s.Unregister(ctx, "acme", "acme.stored"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the removal on the keyed node", func() bool { return !keyed.has("acme.stored") })

	if _, err := toolsregistry.NewSync(reg, toolsregistry.SyncOptions{Store: db, Key: []byte("short")}); err == nil {
		t.Fatal("NewSync took a 5-byte key")
	}
}

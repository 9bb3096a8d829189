package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/toolsregistry"
)

// Plugins runs the conformance suite of toolsregistry.PluginStore.
// newStore is called once per subtest and must return a store that shares
// nothing with the stores of other subtests (own file or own key prefix).
//
// Beyond the clauses of the contract, the suite pins down what it leaves
// open, so that both backends behave alike:
//
//   - Errors are compared by vigil.ErrorCode, so backends may wrap them.
//   - A failed write (Conflict, NotFound, Invalid) takes no revision.
//   - A record comes back as it was put, Sealed byte for byte; schemas
//     may be compacted (they are compared as JSON).
//   - A watch may report a Resync at any time; the suite skips them.
//
// Watching across stores that share data (two processes on one Redis) is
// for the backends that have such a thing to show (store/redis does). That
// the store's bytes hold no plugin secret in clear is shown with
// toolsregistry.Sync, which seals them, by each backend on its own bytes.
func Plugins(t *testing.T, newStore func(t *testing.T) toolsregistry.PluginStore) {
	t.Run("RoundTrip", func(t *testing.T) { testPluginRoundTrip(t, newStore) })
	t.Run("RevisionsCountChanges", func(t *testing.T) { testPluginRevisions(t, newStore) })
	t.Run("VersionsImmutable", func(t *testing.T) { testPluginImmutable(t, newStore) })
	t.Run("DeleteVersionOrName", func(t *testing.T) { testPluginDelete(t, newStore) })
	t.Run("TenantIsolation", func(t *testing.T) { testPluginTenants(t, newStore) })
	t.Run("InvalidRejected", func(t *testing.T) { testPluginInvalid(t, newStore) })
	t.Run("Watch", func(t *testing.T) {
		t.Run("ReportsChangesInOrder", func(t *testing.T) { testPluginWatch(t, newStore) })
		t.Run("EndsWithContext", func(t *testing.T) { testPluginWatchEnds(t, newStore) })
		t.Run("SlowWatcherBlocksNoWriter", func(t *testing.T) { testPluginWatchSlow(t, newStore) })
	})
	t.Run("Concurrency", func(t *testing.T) {
		t.Run("DistinctVersions", func(t *testing.T) { testPluginConcurrentPut(t, newStore) })
		t.Run("SameVersion", func(t *testing.T) { testPluginConcurrentSame(t, newStore) })
	})
}

type newPluginsFunc = func(t *testing.T) toolsregistry.PluginStore

// testPlugin returns an HTTP plugin of tenant, name@version, whose sealed
// bytes differ per plugin and hold bytes a careless encoding would break.
func testPlugin(tenant, name string, version int) toolsregistry.Plugin {
	return toolsregistry.Plugin{
		Tool: toolsregistry.Tool{
			Tenant: tenant, Name: name, Version: version, Description: "Weather for " + name + " — 天气",
			InputSchema: json.RawMessage(`{"properties":{"city":{"type":"string"}},"required":["city"],"type":"object"}`),
		},
		Kind:   toolsregistry.PluginHTTP,
		URL:    "https://plugins.example.com/" + name + "?v=" + fmt.Sprint(version),
		Sealed: []byte(fmt.Sprintf("\x01\x00sealed\"\\%s/%s@%d\xff", tenant, name, version)),
	}
}

// samePlugin reports how got differs from want, or "".
func samePlugin(got, want toolsregistry.Plugin) string {
	g, err := json.Marshal(got)
	if err != nil {
		return err.Error()
	}
	w, err := json.Marshal(want)
	if err != nil {
		return err.Error()
	}
	if string(g) != string(w) {
		return fmt.Sprintf("got %s\nwant %s", g, w)
	}
	return ""
}

func mustPut(t *testing.T, s toolsregistry.PluginStore, p toolsregistry.Plugin) toolsregistry.PluginChange {
	t.Helper()
	c, err := s.PutPlugin(t.Context(), p)
	if err != nil {
		t.Fatalf("PutPlugin(%s/%s): %v", p.Tool.Tenant, p.Ref(), err)
	}
	if c.Put == nil || c.Deleted != nil || c.Resync || c.Rev == 0 || c.Put.Rev != c.Rev {
		t.Fatalf("PutPlugin(%s/%s) returned %+v, want a put with its revision", p.Tool.Tenant, p.Ref(), c)
	}
	want := p
	want.Rev = c.Rev
	if d := samePlugin(*c.Put, want); d != "" {
		t.Fatalf("PutPlugin(%s/%s) returned another plugin: %s", p.Tool.Tenant, p.Ref(), d)
	}
	return c
}

func mustDelete(t *testing.T, s toolsregistry.PluginStore, tenant, ref string, versions ...int) toolsregistry.PluginChange {
	t.Helper()
	c, err := s.DeletePlugin(t.Context(), tenant, ref)
	if err != nil {
		t.Fatalf("DeletePlugin(%s, %s): %v", tenant, ref, err)
	}
	name, _, _ := toolsregistry.ParseRef(ref)
	if c.Deleted == nil || c.Put != nil || c.Resync || c.Rev == 0 ||
		c.Deleted.Tenant != tenant || c.Deleted.Name != name || !slices.Equal(c.Deleted.Versions, versions) {
		t.Fatalf("DeletePlugin(%s, %s) returned %+v (deleted %+v), want versions %v of %s", tenant, ref, c, c.Deleted, versions, name)
	}
	return c
}

// list returns the stored plugins and revision.
func list(t *testing.T, s toolsregistry.PluginStore) ([]toolsregistry.Plugin, uint64) {
	t.Helper()
	ps, rev, err := s.ListPlugins(t.Context())
	if err != nil {
		t.Fatalf("ListPlugins: %v", err)
	}
	return ps, rev
}

// wantRefs checks that the store holds exactly the plugins named
// tenant/name@version, in that order, at revision rev.
func wantRefs(t *testing.T, s toolsregistry.PluginStore, rev uint64, refs ...string) []toolsregistry.Plugin {
	t.Helper()
	ps, got := list(t, s)
	var have []string
	for _, p := range ps {
		have = append(have, p.Tool.Tenant+"/"+p.Ref())
	}
	if !slices.Equal(have, refs) || got != rev {
		t.Fatalf("ListPlugins: %v at revision %d, want %v at revision %d", have, got, refs, rev)
	}
	return ps
}

func testPluginRoundTrip(t *testing.T, newStore newPluginsFunc) {
	s := newStore(t)
	if ps, rev := list(t, s); len(ps) != 0 || rev != 0 {
		t.Fatalf("a new store lists %d plugins at revision %d", len(ps), rev)
	}
	p := testPlugin("acme", "acme.weather", 2)
	p.Tool.OutputSchema = json.RawMessage(`{"type":"object"}`)
	p.Tool.Scopes = []string{"read:web", "read:weather"}
	p.Tool.Timeout = 7 * time.Second
	p.Tool.RateLimit = 30
	p.Tool.CacheTTL = 10 * time.Minute
	p.Tool.Fallback = toolsregistry.FallbackCached
	p.Rev = 999 // ignored
	c := mustPut(t, s, p)

	mcp := testPlugin("acme", "github", 1)
	mcp.Kind, mcp.URL, mcp.Namespace, mcp.Command = toolsregistry.PluginMCP, "", "github", []string{"github-mcp", "--stdio"}
	c2 := mustPut(t, s, mcp)

	ps := wantRefs(t, s, c2.Rev, "acme/acme.weather@2", "acme/github@1")
	want := p
	want.Rev = c.Rev
	if d := samePlugin(ps[0], want); d != "" {
		t.Errorf("listed plugin differs: %s", d)
	}
	if string(ps[0].Sealed) != string(p.Sealed) {
		t.Errorf("sealed bytes %q, want %q", ps[0].Sealed, p.Sealed)
	}
	mcp.Rev = c2.Rev
	if d := samePlugin(ps[1], mcp); d != "" {
		t.Errorf("listed mcp plugin differs: %s", d)
	}
}

func testPluginRevisions(t *testing.T, newStore newPluginsFunc) {
	s := newStore(t)
	var revs []uint64
	revs = append(revs, mustPut(t, s, testPlugin("acme", "a", 1)).Rev)
	revs = append(revs, mustPut(t, s, testPlugin("globex", "a", 1)).Rev)
	revs = append(revs, mustDelete(t, s, "acme", "a", 1).Rev)
	revs = append(revs, mustPut(t, s, testPlugin("acme", "a", 1)).Rev)
	for i := 1; i < len(revs); i++ {
		if revs[i] != revs[i-1]+1 {
			t.Fatalf("revisions %v: each change should take the next", revs)
		}
	}
	ps := wantRefs(t, s, revs[3], "acme/a@1", "globex/a@1")
	if ps[0].Rev != revs[3] || ps[1].Rev != revs[1] {
		t.Errorf("listed revisions %d, %d; want %d (put again) and %d", ps[0].Rev, ps[1].Rev, revs[3], revs[1])
	}
}

func testPluginImmutable(t *testing.T, newStore newPluginsFunc) {
	s := newStore(t)
	first := testPlugin("acme", "weather", 1)
	c := mustPut(t, s, first)
	again := testPlugin("acme", "weather", 1)
	again.Tool.Description = "another"
	_, err := s.PutPlugin(t.Context(), again)
	wantCode(t, err, vigil.Conflict, "PutPlugin of an existing version")
	ps := wantRefs(t, s, c.Rev, "acme/weather@1")
	if ps[0].Tool.Description != first.Tool.Description {
		t.Errorf("the conflicting put replaced the record: %q", ps[0].Tool.Description)
	}
	mustPut(t, s, testPlugin("acme", "weather", 2))
}

func testPluginDelete(t *testing.T, newStore newPluginsFunc) {
	s := newStore(t)
	for _, v := range []int{1, 2, 3, 10} {
		mustPut(t, s, testPlugin("acme", "x", v))
	}
	// Names that share a prefix with x are other tools.
	mustPut(t, s, testPlugin("acme", "xy", 1))
	last := mustPut(t, s, testPlugin("acme", "x.y", 1))

	_, err := s.DeletePlugin(t.Context(), "acme", "x@4")
	wantCode(t, err, vigil.NotFound, "DeletePlugin of a missing version")
	wantRefs(t, s, last.Rev, "acme/x@1", "acme/x@2", "acme/x@3", "acme/x@10", "acme/x.y@1", "acme/xy@1")

	mustDelete(t, s, "acme", "x@2", 2)
	c := mustDelete(t, s, "acme", "x", 1, 3, 10)
	wantRefs(t, s, c.Rev, "acme/x.y@1", "acme/xy@1")
	_, err = s.DeletePlugin(t.Context(), "acme", "x")
	wantCode(t, err, vigil.NotFound, "DeletePlugin of a name with no versions left")
	_, err = s.DeletePlugin(t.Context(), "nobody", "x")
	wantCode(t, err, vigil.NotFound, "DeletePlugin in a tenant with no plugins")
	wantRefs(t, s, c.Rev, "acme/x.y@1", "acme/xy@1")

	// The last plugins of a tenant go, and it can have some again.
	mustDelete(t, s, "acme", "x.y", 1)
	c = mustDelete(t, s, "acme", "xy@1", 1)
	wantRefs(t, s, c.Rev)
	c = mustPut(t, s, testPlugin("acme", "x", 1))
	wantRefs(t, s, c.Rev, "acme/x@1")
}

func testPluginTenants(t *testing.T, newStore newPluginsFunc) {
	s := newStore(t)
	mustPut(t, s, testPlugin("acme", "weather", 1))
	c := mustPut(t, s, testPlugin("globex", "weather", 1))
	_, err := s.DeletePlugin(t.Context(), "initech", "weather")
	wantCode(t, err, vigil.NotFound, "DeletePlugin in another tenant")
	c = mustDelete(t, s, "globex", "weather", 1)
	ps := wantRefs(t, s, c.Rev, "acme/weather@1")
	if ps[0].Tool.Tenant != "acme" {
		t.Errorf("tenant %q", ps[0].Tool.Tenant)
	}
}

func testPluginInvalid(t *testing.T, newStore newPluginsFunc) {
	s := newStore(t)
	c := mustPut(t, s, testPlugin("acme", "ok", 1))
	for _, p := range []toolsregistry.Plugin{
		testPlugin(toolsregistry.Global, "global", 1),
		testPlugin("a:b", "colon", 1),
		testPlugin("{acme}", "braces", 1),
		testPlugin("acme", "Upper", 1),
		testPlugin("acme", "bad@name", 1),
		testPlugin("acme", "zero", 0),
	} {
		_, err := s.PutPlugin(t.Context(), p)
		wantCode(t, err, vigil.Invalid, fmt.Sprintf("PutPlugin(%q, %q)", p.Tool.Tenant, p.Ref()))
	}
	for _, tc := range []struct{ tenant, ref string }{
		{toolsregistry.Global, "ok"}, {"a b", "ok"}, {"acme", "ok@0"}, {"acme", "ok@x"}, {"acme", "OK"}, {"acme", ""},
	} {
		_, err := s.DeletePlugin(t.Context(), tc.tenant, tc.ref)
		wantCode(t, err, vigil.Invalid, fmt.Sprintf("DeletePlugin(%q, %q)", tc.tenant, tc.ref))
	}
	wantRefs(t, s, c.Rev, "acme/ok@1")
}

// next returns the next change of ch that is not a Resync.
func next(t *testing.T, ch <-chan toolsregistry.PluginChange) toolsregistry.PluginChange {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				t.Fatal("the watch ended")
			}
			if !c.Resync {
				return c
			}
		case <-timeout:
			t.Fatal("no change reported within 10s")
		}
	}
}

// sameChange reports how got differs from want, or "".
func sameChange(got, want toolsregistry.PluginChange) string {
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		return fmt.Sprintf("got %s\nwant %s", g, w)
	}
	return ""
}

func testPluginWatch(t *testing.T, newStore newPluginsFunc) {
	s := newStore(t)
	mustPut(t, s, testPlugin("acme", "before", 1)) // before the watch: not reported
	a, err := s.WatchPlugins(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.WatchPlugins(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []toolsregistry.PluginChange{
		mustPut(t, s, testPlugin("acme", "weather", 1)),
		mustPut(t, s, testPlugin("globex", "weather", 1)),
		mustPut(t, s, testPlugin("acme", "weather", 2)),
		mustDelete(t, s, "acme", "weather", 1, 2),
	}
	for name, ch := range map[string]<-chan toolsregistry.PluginChange{"first": a, "second": b} {
		for i, w := range want {
			if d := sameChange(next(t, ch), w); d != "" {
				t.Fatalf("%s watcher, change %d: %s", name, i, d)
			}
		}
	}
}

func testPluginWatchEnds(t *testing.T, newStore newPluginsFunc) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := s.WatchPlugins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				// Writes go on without it.
				mustPut(t, s, testPlugin("acme", "after", 1))
				return
			}
		case <-timeout:
			t.Fatal("the watch's channel is still open 10s after its context ended")
		}
	}
}

func testPluginWatchSlow(t *testing.T, newStore newPluginsFunc) {
	s := newStore(t)
	slow, err := s.WatchPlugins(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			if _, err := s.PutPlugin(t.Context(), testPlugin("acme", "p", i+1)); err != nil {
				t.Errorf("PutPlugin %d: %v", i+1, err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("writers are held up by a watcher that does not read")
	}
	// The slow watcher still gets every change, in order.
	for i := range n {
		c := next(t, slow)
		if c.Put == nil || c.Put.Tool.Version != i+1 {
			t.Fatalf("change %d of the slow watcher: %+v", i, c)
		}
	}
}

func testPluginConcurrentPut(t *testing.T, newStore newPluginsFunc) {
	s := newStore(t)
	const n = 16
	revs := make([]uint64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := s.PutPlugin(t.Context(), testPlugin(fmt.Sprintf("t%d", i%4), "tool", i+1))
			if err != nil {
				t.Errorf("PutPlugin %d: %v", i, err)
				return
			}
			revs[i] = c.Rev
		})
	}
	wg.Wait()
	slices.Sort(revs)
	for i, r := range revs {
		if r != uint64(i+1) {
			t.Fatalf("revisions %v, want 1 to %d, each once", revs, n)
		}
	}
	if ps, rev := list(t, s); len(ps) != n || rev != n {
		t.Fatalf("%d plugins at revision %d, want %d at %d", len(ps), rev, n, n)
	}
}

func testPluginConcurrentSame(t *testing.T, newStore newPluginsFunc) {
	s := newStore(t)
	const n = 16
	var wg sync.WaitGroup
	codes := make(chan vigil.Code, n)
	for i := range n {
		wg.Go(func() {
			p := testPlugin("acme", "same", 1)
			p.Tool.Description = fmt.Sprintf("writer %d", i)
			_, err := s.PutPlugin(t.Context(), p)
			codes <- vigil.ErrorCode(err)
		})
	}
	wg.Wait()
	close(codes)
	won := 0
	for c := range codes {
		switch c {
		case "":
			won++
		case vigil.Conflict:
		default:
			t.Errorf("concurrent put: code %q", c)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent puts of one version succeeded, want 1", won)
	}
	wantRefs(t, s, 1, "acme/same@1")
}

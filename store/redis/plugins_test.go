package redis_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
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

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/store/storetest"
	"github.com/vigilhq/vigil/toolsregistry"
)

func TestPlugins(t *testing.T) {
	storetest.Plugins(t, func(t *testing.T) toolsregistry.PluginStore {
		return open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 4})
	})
}

const pluginSecret = "PluginSecretMarker-0123456789"

// instance is one vigil process's part in plugin tools: its own Redis
// clients, registry and Sync, and a count of its registry's changes (what
// its MCP server announces as tools/list_changed).
type instance struct {
	reg     *toolsregistry.Registry
	sync    *toolsregistry.Sync
	changes atomic.Int64
}

func newInstance(t *testing.T, prefix string, key []byte) *instance {
	t.Helper()
	in := &instance{reg: toolsregistry.New(toolsregistry.Options{})}
	in.reg.OnChange(func(toolsregistry.Change) { in.changes.Add(1) })
	guard, err := toolsregistry.NewGuard(toolsregistry.GuardOptions{Allow: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	in.sync, err = toolsregistry.NewSync(in.reg, toolsregistry.SyncOptions{
		Store: open(t, prefix, redis.Options{MaxFollowers: 4}), Key: key, Guard: guard,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.sync.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.sync.Close)
	return in
}

// call calls tenant acme's tool ref on the instance's registry, as a task
// would.
func (in *instance) call(ref string) (*toolsregistry.Result, error) {
	return in.reg.Call(context.Background(), toolsregistry.Request{Tenant: "acme", Tool: ref, Args: json.RawMessage(`{"city":"Oslo"}`)})
}

// spreadBound is how long the tests wait for a plugin change to reach
// the other instance. The goal is within a second (it takes milliseconds;
// TestPluginsAcrossInstances logs the time); the bound is looser so that a
// loaded CI machine under the race detector does not fail it.
const spreadBound = 5 * time.Second

// within polls cond every 10ms, in real time, until it holds or d passes,
// and returns how long it took.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// TestPluginsAcrossInstances runs two instances on one Redis prefix, each
// with its own clients, registry and Sync. A plugin registered on A is
// callable on B within spreadBound (the time is logged), signed with its
// secret; unregistering it on B removes it from A within spreadBound; each instance's registry changes
// once per change (A's own echo changes nothing); a third instance started
// later loads what is stored. No key or value in Redis holds the secret in
// clear.
func TestPluginsAcrossInstances(t *testing.T) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	key := memory.NewKey()
	var calls atomic.Int64
	plugin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := toolsregistry.Verify([]byte(pluginSecret), r); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"celsius":21}`)
	}))
	t.Cleanup(plugin.Close)

	a, b := newInstance(t, prefix, key), newInstance(t, prefix, key)
	spec := toolsregistry.PluginSpec{
		Name: "acme.weather", Description: "Weather in a city.", URL: plugin.URL + "/weather", Secret: pluginSecret,
		InputSchema: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`),
		Timeout:     "5s",
	}
	if _, err := a.sync.Register(ctx, "acme", spec); err != nil {
		t.Fatal(err)
	}
	if _, err := a.call("acme.weather"); err != nil {
		t.Fatalf("call on the registering instance: %v", err)
	}
	took := within(t, spreadBound, "the plugin callable on the other instance", func() bool {
		_, err := b.call("acme.weather@1")
		return err == nil
	})
	t.Logf("callable on B after %v", took)
	if calls.Load() != 2 {
		t.Errorf("the plugin server answered %d signed calls, want 2", calls.Load())
	}

	// A second version, then the name, unregistered from B.
	spec.Version = 2
	if _, err := a.sync.Register(ctx, "acme", spec); err != nil {
		t.Fatal(err)
	}
	within(t, spreadBound, "version 2 on the other instance", func() bool {
		tool, err := b.reg.Resolve("acme", "acme.weather")
		return err == nil && tool.Version == 2
	})
	if err := b.sync.Unregister(ctx, "acme", "acme.weather"); err != nil {
		t.Fatal(err)
	}
	within(t, spreadBound, "the unregistration on the registering instance", func() bool {
		_, err := a.reg.Resolve("acme", "acme.weather")
		return vigil.ErrorCode(err) == vigil.NotFound
	})
	if _, err := b.call("acme.weather@1"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("call after unregister on B: %v", err)
	}
	// Echoes arrive after the changes they repeat: give them time to do
	// harm, then count. Each instance saw 2 registrations, 2 removals.
	if err := a.sync.Unregister(ctx, "acme", "acme.weather"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("second unregister: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	for name, in := range map[string]*instance{"A": a, "B": b} {
		if n := in.changes.Load(); n != 4 {
			t.Errorf("instance %s's registry changed %d times, want 4", name, n)
		}
	}

	// Stored and not yet registered anywhere: a new instance loads it.
	spec.Name = "acme.forecast"
	if _, err := a.sync.Register(ctx, "acme", spec); err != nil {
		t.Fatal(err)
	}
	c := newInstance(t, prefix, key)
	if _, err := c.call("acme.forecast"); err != nil {
		t.Fatalf("call on an instance started later: %v", err)
	}

	keys, dump := rawValues(t, client(t), prefix)
	for _, marker := range []string{"acme.forecast", plugin.URL} {
		if !strings.Contains(dump, marker) {
			t.Fatalf("%q is not in Redis's keys and values; the search cannot see plain text", marker)
		}
	}
	for _, plain := range []string{
		pluginSecret, pluginSecret[:16], strings.ToUpper(pluginSecret),
		hex.EncodeToString([]byte(pluginSecret)), base64.StdEncoding.EncodeToString([]byte(pluginSecret)),
	} {
		if strings.Contains(dump, plain) {
			t.Errorf("Redis holds the plugin's secret in clear (%q)", plain)
		}
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix+":t:acme:plugins:") && !strings.HasPrefix(k, prefix+":plugins:") {
			t.Errorf("plugin data at %s, outside the tenant and the plugin index", k)
		}
	}
}

// TestPluginsWatchResubscribes kills the watch's connection: the watch
// reports a Resync once go-redis has subscribed again, and changes made
// after that are reported. The test's Log names its connections, so that
// only its own is killed on a Redis other tests share.
func TestPluginsWatchResubscribes(t *testing.T) {
	ctx := context.Background()
	name := "vigiltest-plugins-" + vigil.NewID("")
	url := redistest.URL(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	l, err := redis.Open(ctx, url+sep+"client_name="+name, redis.Options{Prefix: redistest.Prefix(t), MaxFollowers: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	ch, err := l.WatchPlugins(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := client(t)
	killed := 0
	for _, line := range strings.Split(c.ClientList(ctx).Val(), "\n") {
		fields := strings.Fields(line)
		if !slices.Contains(fields, "name="+name) || !slices.Contains(fields, "sub=1") {
			continue
		}
		for _, f := range fields {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				if err := c.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
					t.Fatal(err)
				}
				killed++
			}
		}
	}
	if killed != 1 {
		t.Fatalf("killed %d subscribed connections named %s, want 1", killed, name)
	}
	deadline := time.After(30 * time.Second)
	for resynced := false; !resynced; {
		select {
		case c, ok := <-ch:
			if !ok {
				t.Fatal("the watch ended when its connection was lost")
			}
			resynced = c.Resync
		case <-deadline:
			t.Fatal("no Resync within 30s of losing the watch's connection")
		}
	}
	p := toolsregistry.Plugin{Tool: toolsregistry.Tool{Tenant: "acme", Name: "after", Version: 1, Description: "x"}, Kind: toolsregistry.PluginHTTP}
	want, err := l.PutPlugin(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-ch:
		if got.Rev != want.Rev || got.Put == nil {
			t.Fatalf("after the resubscription: %+v, want the put at %d", got, want.Rev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a change after the resubscription was not reported")
	}
}

// TestPluginsWatchEndsOnClose checks that closing the Log ends its
// watches.
func TestPluginsWatchEndsOnClose(t *testing.T) {
	l, err := redis.Open(context.Background(), redistest.URL(t), redis.Options{Prefix: redistest.Prefix(t), MaxFollowers: 4})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := l.WatchPlugins(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case c, ok := <-ch:
		if ok {
			t.Fatalf("the watch reported %+v after Close", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch's channel is still open 10s after Close")
	}
}

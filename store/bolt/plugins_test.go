package bolt_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/storetest"
	"github.com/vigilhq/vigil/toolsregistry"
)

func TestPlugins(t *testing.T) {
	storetest.Plugins(t, func(t *testing.T) toolsregistry.PluginStore {
		return open(t, filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	})
}

const pluginSecret = "PluginSecretMarker-0123456789"

// pluginServer is an HTTP tool's server that answers only calls signed
// with pluginSecret.
func pluginServer(t *testing.T) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := toolsregistry.Verify([]byte(pluginSecret), r); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"celsius":21}`)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// newSync returns a started Sync over a fresh registry and db.
func newSync(t *testing.T, db *bolt.DB, key []byte) (*toolsregistry.Registry, *toolsregistry.Sync) {
	t.Helper()
	reg := toolsregistry.New(toolsregistry.Options{})
	guard, err := toolsregistry.NewGuard(toolsregistry.GuardOptions{Allow: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := toolsregistry.NewSync(reg, toolsregistry.SyncOptions{
		Store: db, Key: key, Guard: guard, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return reg, s
}

// TestPluginsAtRest registers an HTTP plugin through a Sync and checks the
// bolt file itself: its bytes hold the plugin's name and URL but not its
// secret, in any of the forms a careless store might keep. After a reopen
// the plugin loads with the same key and its calls are signed with the
// secret; with another key it does not load, and nothing else breaks.
func TestPluginsAtRest(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vigil.db")
	key := memory.NewKey()
	url := pluginServer(t)

	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, s := newSync(t, db, key)
	spec := toolsregistry.PluginSpec{
		Name: "acme.weather", Description: "Weather in a city.", URL: url + "/weather", Secret: pluginSecret,
		InputSchema: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`),
	}
	if _, err := s.Register(ctx, "acme", spec); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, marker := range []string{"acme.weather", url + "/weather"} {
		if !bytes.Contains(file, []byte(marker)) {
			t.Fatalf("%q is not in the file's bytes; the search cannot see plain text", marker)
		}
	}
	for _, plain := range []string{
		pluginSecret, pluginSecret[:16], string(bytes.ToUpper([]byte(pluginSecret))),
		hex.EncodeToString([]byte(pluginSecret)), base64.StdEncoding.EncodeToString([]byte(pluginSecret)),
	} {
		if bytes.Contains(file, []byte(plain)) {
			t.Errorf("the bolt file contains the plugin's secret in clear (%q)", plain)
		}
	}

	db = open(t, path, bolt.Options{})
	reg, _ := newSync(t, db, key)
	res, err := reg.Call(ctx, toolsregistry.Request{Tenant: "acme", Tool: "acme.weather", Args: json.RawMessage(`{"city":"Oslo"}`)})
	if err != nil {
		t.Fatalf("call after reopen: %v", err)
	}
	if string(res.Output) != `{"celsius":21}` {
		t.Fatalf("call after reopen: %s", res.Output)
	}

	other, _ := newSync(t, db, memory.NewKey())
	if _, err := other.Resolve("acme", "acme.weather"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Fatalf("a plugin sealed under another key loaded: %v", err)
	}
}

// TestPluginsClosed checks that plugin calls on a closed DB fail rather
// than hang or panic.
func TestPluginsClosed(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := db.WatchPlugins(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, ok := <-ch; ok {
		t.Error("a watch reported a change after Close")
	}
	ctx := context.Background()
	p := toolsregistry.Plugin{Tool: toolsregistry.Tool{Tenant: "acme", Name: "x", Version: 1}, Kind: toolsregistry.PluginHTTP}
	if _, err := db.PutPlugin(ctx, p); err == nil {
		t.Error("PutPlugin on a closed DB succeeded")
	}
	if _, err := db.DeletePlugin(ctx, "acme", "x"); err == nil {
		t.Error("DeletePlugin on a closed DB succeeded")
	}
	if _, _, err := db.ListPlugins(ctx); err == nil {
		t.Error("ListPlugins on a closed DB succeeded")
	}
	if _, err := db.WatchPlugins(ctx); err == nil {
		t.Error("WatchPlugins on a closed DB succeeded")
	}
}

package mcpserver_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/httpapi"
	"github.com/vigilhq/vigil/mcpserver"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/toolsregistry"
)

const pluginSecret = "0123456789abcdef-secret"

// plugin is an HTTP tool server, as a plugin author runs one: it checks
// the signature and answers the city's temperature.
func plugin(t *testing.T) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := toolsregistry.Verify([]byte(pluginSecret), r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var args struct{ City string }
		_ = json.Unmarshal(body, &args)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"city": args.City, "celsius": 21})
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

func registerArgs(url, name string) map[string]any {
	return map[string]any{
		"name": name, "description": "Current temperature in a city.", "url": url, "secret": pluginSecret,
		"input_schema": map[string]any{
			"type": "object", "required": []string{"city"},
			"properties": map[string]any{"city": map[string]any{"type": "string"}},
		},
		"output_schema": map[string]any{"type": "object", "required": []string{"celsius"}},
		"timeout":       "5s",
	}
}

func TestRegistryTools(t *testing.T) {
	w := newWorld(t, nil, nil)
	url := plugin(t)
	for _, gen := range generations {
		t.Run(gen, func(t *testing.T) {
			// A second client of the same generation, idle, is told of the
			// change.
			watcher := w.httpClient(t, gen, clientConfig{})
			got := listen(watcher)
			if gen == modern {
				subscribe(t, watcher, got, true, "")
			}

			c := w.httpClient(t, gen, clientConfig{})
			name := "acme.temp_" + map[string]string{legacy: "s", modern: "m"}[gen]
			var reg mcpserver.ToolOutput
			ok(t, callTool(t, c, "register_tool", registerArgs(url, name)), &reg)
			if reg.Tool.Ref != name+"@1" || reg.Tool.Global || !reg.Tool.Default || reg.Tool.Timeout != "5s" {
				t.Fatalf("registered %+v", reg.Tool)
			}
			got.wait(t, mcp.MethodNotificationToolsListChanged, 5*time.Second, nil)

			// The tool is callable by a task at once.
			res, err := w.reg.Call(ctxOf("default"), toolsregistry.Request{Tenant: "default", Tool: name, Args: json.RawMessage(`{"city":"Oslo"}`)})
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Output) != `{"celsius":21,"city":"Oslo"}`+"\n" && string(res.Output) != `{"celsius":21,"city":"Oslo"}` {
				t.Fatalf("call result %s", res.Output)
			}

			var list mcpserver.ListRegistryToolsOutput
			ok(t, callTool(t, c, "list_registry_tools", map[string]any{"name": "acme."}), &list)
			if len(list.Tools) != 1 || list.Tools[0].Name != name || list.Tools[0].InputSchema["type"] != "object" {
				t.Fatalf("listed %+v", list.Tools)
			}
			ok(t, callTool(t, c, "list_registry_tools", nil), &list)
			if len(list.Tools) < 2 {
				t.Fatalf("listed %+v, want echo too", list.Tools)
			}

			// Versions are immutable; the registry's answer is the model's.
			failed(t, callTool(t, c, "register_tool", registerArgs(url, name)), "conflict:")
			failed(t, callTool(t, c, "register_tool", map[string]any{
				"name": "acme.bad", "description": "x", "url": url, "secret": pluginSecret,
				"input_schema": map[string]any{"type": "string"},
			}), "invalid arguments: input_schema:")

			n := len(got.of(mcp.MethodNotificationToolsListChanged))
			var un mcpserver.UnregisterToolOutput
			ok(t, callTool(t, c, "unregister_tool", map[string]any{"tool": name}), &un)
			got.wait(t, mcp.MethodNotificationToolsListChanged, 5*time.Second, func(mcp.JSONRPCNotification) bool {
				return len(got.of(mcp.MethodNotificationToolsListChanged)) > n
			})
			failed(t, callTool(t, c, "unregister_tool", map[string]any{"tool": name}), "not found:")
			failed(t, callTool(t, c, "unregister_tool", map[string]any{"tool": "echo"}), "not allowed: echo is a built-in tool")
		})
	}
}

func TestRegistryPermission(t *testing.T) {
	w := newWorld(t, nil, asTenant)
	for _, gen := range generations {
		t.Run(gen, func(t *testing.T) {
			member := w.httpClient(t, gen, clientConfig{headers: map[string]string{"X-Tenant": "acme", "X-Roles": "member"}})
			for _, tool := range []string{"register_tool", "unregister_tool", "list_registry_tools"} {
				args := map[string]any{"tool": "x"}
				switch tool {
				case "register_tool":
					args = registerArgs("https://example.com/tool", "acme.x")
				case "list_registry_tools":
					args = nil
				}
				failed(t, callTool(t, member, tool, args), "not allowed: missing permission tools:register")
			}
			dev := w.httpClient(t, gen, clientConfig{headers: map[string]string{"X-Tenant": "acme", "X-Roles": "developer"}})
			ok(t, callTool(t, dev, "list_registry_tools", nil), nil)
		})
	}
}

// startSync starts a Sync of reg over store, stopped when t ends.
func startSync(t *testing.T, reg *toolsregistry.Registry, store toolsregistry.PluginStore, key []byte) *toolsregistry.Sync {
	t.Helper()
	guard, err := toolsregistry.NewGuard(toolsregistry.GuardOptions{Allow: []string{"127.0.0.1", "::1"}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := toolsregistry.NewSync(reg, toolsregistry.SyncOptions{Store: store, Key: key, Guard: guard, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func openRedis(t *testing.T, prefix string) *redis.Log {
	t.Helper()
	l, err := redis.Open(context.Background(), redistest.URL(t), redis.Options{Prefix: prefix, MaxFollowers: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// rest sends a request to an API server and returns its status and body.
func rest(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPluginRegistrationAnnounced registers an HTTP tool over REST while
// session-protocol clients are connected to an MCP server: they get
// tools/list_changed, and a task's call of the tool works, both within a
// second. With bolt, REST and MCP share one instance; with Redis they are
// two instances (own clients, registry and Sync on one prefix), as two
// `vigil serve` processes are. The reverse works too: register_tool on the
// MCP instance is listed by GET /v1/tools on the other, and DELETE there
// is announced here.
func TestPluginRegistrationAnnounced(t *testing.T) {
	url := plugin(t)
	key := memory.NewKey()
	for _, mode := range []string{"bolt", "redis"} {
		t.Run(mode, func(t *testing.T) {
			prefix := ""
			if mode == "redis" {
				prefix = redistest.Prefix(t)
			}
			var plugins *toolsregistry.Sync
			w := newWorld(t, func(o *mcpserver.Options) {
				var store toolsregistry.PluginStore = o.Log.(*bolt.DB)
				if mode == "redis" {
					store = openRedis(t, prefix)
				}
				plugins = startSync(t, o.Registry, store, key)
				o.Plugins = plugins
			}, nil)

			// The REST instance: this one with bolt, another with Redis.
			api := httpapi.Options{Log: w.db, Hub: w.hub, Tools: plugins, Logger: testLogger(t)}
			if mode == "redis" {
				log := openRedis(t, prefix)
				api = httpapi.Options{
					Log: log, Hub: streams.NewHub(log, streams.HubOptions{Logger: testLogger(t)}),
					Tools: startSync(t, toolsregistry.New(toolsregistry.Options{}), log, key), Logger: testLogger(t),
				}
			}
			restSrv := httptest.NewServer(httpapi.New(api))
			t.Cleanup(restSrv.Close)

			for _, gen := range generations {
				t.Run(gen, func(t *testing.T) {
					watcher := w.httpClient(t, gen, clientConfig{})
					got := listen(watcher)
					if gen == modern {
						subscribe(t, watcher, got, true, "")
					}
					name := "acme.rest_" + map[string]string{legacy: "s", modern: "m"}[gen]
					body, err := json.Marshal(registerArgs(url, name))
					if err != nil {
						t.Fatal(err)
					}

					start := time.Now()
					if status, answer := rest(t, "POST", restSrv.URL+"/v1/tools", string(body)); status != 201 {
						t.Fatalf("POST /v1/tools: %d %s", status, answer)
					}
					got.wait(t, mcp.MethodNotificationToolsListChanged, time.Second, nil)
					for {
						res, err := w.reg.Call(ctxOf(vigil.DefaultTenant), toolsregistry.Request{
							Tenant: vigil.DefaultTenant, Tool: name, Args: json.RawMessage(`{"city":"Oslo"}`),
						})
						if err == nil {
							if !strings.Contains(string(res.Output), `"celsius":21`) {
								t.Fatalf("call result %s", res.Output)
							}
							break
						}
						if time.Since(start) > time.Second {
							t.Fatalf("the tool is not callable on the MCP instance 1s after its registration: %v", err)
						}
						time.Sleep(10 * time.Millisecond)
					}
					t.Logf("%s: announced and callable after %v", mode, time.Since(start))

					// register_tool here, listed there.
					c := w.httpClient(t, gen, clientConfig{})
					ok(t, callTool(t, c, "register_tool", registerArgs(url, name+"2")), nil)
					for deadline := time.Now().Add(time.Second); ; {
						_, list := rest(t, "GET", restSrv.URL+"/v1/tools", "")
						if strings.Contains(list, `"ref":"`+name+`2@1"`) {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("register_tool's tool is not listed by the REST instance within 1s: %s", list)
						}
						time.Sleep(10 * time.Millisecond)
					}

					// Removed there, announced here.
					n := len(got.of(mcp.MethodNotificationToolsListChanged))
					if status, answer := rest(t, "DELETE", restSrv.URL+"/v1/tools/"+name, ""); status != 204 {
						t.Fatalf("DELETE: %d %s", status, answer)
					}
					got.wait(t, mcp.MethodNotificationToolsListChanged, time.Second, func(mcp.JSONRPCNotification) bool {
						return len(got.of(mcp.MethodNotificationToolsListChanged)) > n
					})
					for deadline := time.Now().Add(time.Second); ; {
						if _, err := w.reg.Resolve(vigil.DefaultTenant, name); err != nil {
							break
						}
						if time.Now().After(deadline) {
							t.Fatal("the tool is still registered on the MCP instance 1s after DELETE")
						}
						time.Sleep(10 * time.Millisecond)
					}
				})
			}
		})
	}
}

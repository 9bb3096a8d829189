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

	"github.com/mark3labs/mcp-go/client"
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
	"github.com/vigilhq/vigil/toolsregistry/remotetest"
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
			got := w.toolsWatcher(t, gen)

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

// announceBound is how long TestPluginRegistrationAnnounced waits for a
// registration to be announced and callable. The goal is within a second
// (it takes milliseconds; the test logs the time it took); the bound is
// looser so that a loaded CI machine under the race detector does not
// fail it.
const announceBound = 5 * time.Second

// TestPluginRegistrationAnnounced registers an HTTP tool over REST while
// session-protocol clients are connected to an MCP server: they get
// tools/list_changed, and a task's call of the tool works, both within
// announceBound (the time is logged). With bolt, REST and MCP share one instance; with Redis they are
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
					got := w.toolsWatcher(t, gen)
					name := "acme.rest_" + map[string]string{legacy: "s", modern: "m"}[gen]
					body, err := json.Marshal(registerArgs(url, name))
					if err != nil {
						t.Fatal(err)
					}

					start := time.Now()
					if status, answer := rest(t, "POST", restSrv.URL+"/v1/tools", string(body)); status != 201 {
						t.Fatalf("POST /v1/tools: %d %s", status, answer)
					}
					got.wait(t, mcp.MethodNotificationToolsListChanged, announceBound, nil)
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
						if time.Since(start) > announceBound {
							t.Fatalf("the tool is not callable on the MCP instance %s after its registration: %v", announceBound, err)
						}
						time.Sleep(10 * time.Millisecond)
					}
					t.Logf("%s: announced and callable after %v", mode, time.Since(start))

					// register_tool here, listed there.
					c := w.httpClient(t, gen, clientConfig{})
					ok(t, callTool(t, c, "register_tool", registerArgs(url, name+"2")), nil)
					for deadline := time.Now().Add(announceBound); ; {
						_, list := rest(t, "GET", restSrv.URL+"/v1/tools", "")
						if strings.Contains(list, `"ref":"`+name+`2@1"`) {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("register_tool's tool is not listed by the REST instance within %s: %s", announceBound, list)
						}
						time.Sleep(10 * time.Millisecond)
					}

					// Removed there, announced here.
					n := len(got.of(mcp.MethodNotificationToolsListChanged))
					if status, answer := rest(t, "DELETE", restSrv.URL+"/v1/tools/"+name, ""); status != 204 {
						t.Fatalf("DELETE: %d %s", status, answer)
					}
					got.wait(t, mcp.MethodNotificationToolsListChanged, announceBound, func(mcp.JSONRPCNotification) bool {
						return len(got.of(mcp.MethodNotificationToolsListChanged)) > n
					})
					for deadline := time.Now().Add(announceBound); ; {
						if _, err := w.reg.Resolve(vigil.DefaultTenant, name); err != nil {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("the tool is still registered on the MCP instance %s after DELETE", announceBound)
						}
						time.Sleep(10 * time.Millisecond)
					}
				})
			}
		})
	}
}

func mountArgs(url, namespace string) map[string]any {
	return map[string]any{
		"kind": "mcp", "namespace": namespace, "url": url, "description": "A calculator.",
		"headers": map[string]any{"Authorization": remotetest.Token},
	}
}

// closeMounts closes tenant's mounts in w's registry when t ends, before
// the remote servers close.
func (w *world) closeMounts(t *testing.T, tenants ...string) {
	t.Cleanup(func() {
		for _, tenant := range tenants {
			for _, m := range w.reg.Mounts(tenant) {
				_ = m.Close()
			}
		}
	})
}

// listed returns the names c's tools/list gives.
func listed(t *testing.T, c *client.Client) map[string]mcp.Tool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]mcp.Tool{}
	for _, tool := range res.Tools {
		out[tool.Name] = tool
	}
	return out
}

// TestRegistryMountsRemote mounts a remote MCP server with register_tool
// kind mcp, in both protocol generations: the answer is the mount, without
// its header; clients get tools/list_changed; list_registry_tools lists
// the namespaced tool and the mount; the tool is callable by tasks and,
// re-exported, by name over MCP; unregister_tool of the namespace unmounts
// it, and of one of its tools is refused.
func TestRegistryMountsRemote(t *testing.T) {
	url := remotetest.NewCalc(t).URL
	w := newWorld(t, nil, nil)
	w.closeMounts(t, vigil.DefaultTenant)
	for _, gen := range generations {
		t.Run(gen, func(t *testing.T) {
			got := w.toolsWatcher(t, gen)
			c := w.httpClient(t, gen, clientConfig{})
			ns := "calc_" + map[string]string{legacy: "s", modern: "m"}[gen]
			tool := ns + ".add_numbers"

			res := callTool(t, c, "register_tool", mountArgs(url, ns))
			var reg mcpserver.ToolOutput
			ok(t, res, &reg)
			if raw, _ := json.Marshal(res); strings.Contains(string(raw), "RemoteTokenMarker") {
				t.Fatalf("register_tool shows the header: %s", raw)
			}
			if m := reg.Mount; reg.Tool != nil || m == nil || m.Namespace != ns || m.URL != url || m.State != "mounted" ||
				!m.Connected || len(m.Tools) != 1 || m.Tools[0] != tool {
				t.Fatalf("register_tool answered %+v", reg)
			}
			got.wait(t, mcp.MethodNotificationToolsListChanged, 5*time.Second, nil)

			var list mcpserver.ListRegistryToolsOutput
			ok(t, callTool(t, c, "list_registry_tools", map[string]any{"name": ns}), &list)
			if len(list.Tools) != 1 || list.Tools[0].Ref != tool+"@1" || list.Tools[0].Global || list.Tools[0].InputSchema["type"] != "object" ||
				len(list.Mounts) != 1 || list.Mounts[0].Namespace != ns || list.Mounts[0].State != "mounted" {
				t.Fatalf("list_registry_tools: %+v", list)
			}

			res2, err := w.reg.Call(ctxOf(vigil.DefaultTenant), toolsregistry.Request{Tenant: vigil.DefaultTenant, Tool: tool, Args: json.RawMessage(`{"a":2,"b":3}`)})
			if err != nil || !strings.Contains(string(res2.Output), `"sum":5`) {
				t.Fatalf("a task's call of %s: %v, %v", tool, res2, err)
			}
			// Re-exported: listed and called by name.
			if _, ok := listed(t, c)[tool]; !ok {
				t.Fatalf("tools/list lacks %s", tool)
			}
			var sum struct{ Sum float64 }
			ok(t, callTool(t, c, tool, map[string]any{"a": 40, "b": 2}), &sum)
			if sum.Sum != 42 {
				t.Fatalf("%s(40, 2) over MCP: %v", tool, sum.Sum)
			}

			failed(t, callTool(t, c, "register_tool", mountArgs(url, ns)), "conflict:")
			bad := mountArgs(url, ns+"x")
			bad["secret"] = pluginSecret
			failed(t, callTool(t, c, "register_tool", bad), "invalid arguments: secret:")
			failed(t, callTool(t, c, "register_tool", map[string]any{"kind": "mcp", "namespace": ns + "x", "url": url}), "invalid arguments: headers:")
			failed(t, callTool(t, c, "unregister_tool", map[string]any{"tool": tool}), "invalid arguments:")

			n := len(got.of(mcp.MethodNotificationToolsListChanged))
			var un mcpserver.UnregisterToolOutput
			ok(t, callTool(t, c, "unregister_tool", map[string]any{"tool": ns}), &un)
			got.wait(t, mcp.MethodNotificationToolsListChanged, 5*time.Second, func(mcp.JSONRPCNotification) bool {
				return len(got.of(mcp.MethodNotificationToolsListChanged)) > n
			})
			if _, ok := listed(t, c)[tool]; ok {
				t.Fatalf("tools/list still has %s after unregister_tool", tool)
			}
			ok(t, callTool(t, c, "list_registry_tools", map[string]any{"name": ns}), &list)
			if len(list.Tools) != 0 || len(list.Mounts) != 0 {
				t.Fatalf("list_registry_tools after unregister_tool: %+v", list)
			}
			failed(t, callTool(t, c, "unregister_tool", map[string]any{"tool": ns}), "not found:")
		})
	}
}

// TestPluginToolsReexported registers an HTTP plugin tool and mounts a
// remote MCP server for tenant acme while clients of acme and of bolt are
// connected, in both protocol generations: acme's clients are told
// (tools/list_changed), list both tools and call them by name; bolt's hear
// nothing, list neither and cannot call them, by name or through
// call_plugin_tool, which nobody lists. A plugin tool that requires a
// scope is not callable over MCP when Options.Scopes gives none; an acme
// viewer (no tasks:write) does not list the tools.
func TestPluginToolsReexported(t *testing.T) {
	remote := remotetest.NewCalc(t).URL
	url := plugin(t)
	w := newWorld(t, func(o *mcpserver.Options) {
		// Viewers read; everyone else may do everything.
		o.Allow = func(p vigil.Principal, perm string) error {
			if p.HasRole("viewer") && perm != mcpserver.PermThreadsRead && perm != mcpserver.PermTasksRead {
				return vigil.Errorf(vigil.Forbidden, "missing permission %s", perm)
			}
			return nil
		}
	}, asTenant)
	w.closeMounts(t, "acme")
	a := map[string]string{"X-Tenant": "acme", "X-Roles": "admin"}
	b := map[string]string{"X-Tenant": "bolt", "X-Roles": "admin"}
	for _, gen := range generations {
		t.Run(gen, func(t *testing.T) {
			suffix := map[string]string{legacy: "s", modern: "m"}[gen]
			ca, cb := w.httpClient(t, gen, clientConfig{headers: a}), w.httpClient(t, gen, clientConfig{headers: b})
			heardA, heardB := listen(ca), listen(cb)
			if gen == modern {
				subscribe(t, ca, heardA, true, "")
				subscribe(t, cb, heardB, true, "")
			}
			temp, ns := "acme.temp_"+suffix, "calc_"+suffix
			// The callers use other clients: a client listens once at a time.
			ra := w.httpClient(t, gen, clientConfig{headers: a})
			ok(t, callTool(t, ra, "register_tool", registerArgs(url, temp)), nil)
			heardA.wait(t, mcp.MethodNotificationToolsListChanged, 5*time.Second, nil)
			ok(t, callTool(t, ra, "register_tool", mountArgs(remote, ns)), nil)
			scoped := registerArgs(url, temp+"_scoped")
			scoped["scopes"] = []string{"read:weather"}
			ok(t, callTool(t, ra, "register_tool", scoped), nil)

			tools := listed(t, ra)
			for _, name := range []string{temp, ns + ".add_numbers", "create_task"} {
				if _, ok := tools[name]; !ok {
					t.Fatalf("acme's tools/list lacks %s", name)
				}
			}
			if _, ok := tools["call_plugin_tool"]; ok {
				t.Fatal("tools/list shows call_plugin_tool")
			}
			if tools["echo"].Name != "" {
				t.Fatal("tools/list shows the global registry tool echo: only the tenant's plugin tools are re-exported")
			}
			if schema, _ := json.Marshal(tools[temp].InputSchema); !strings.Contains(string(schema), `"city"`) {
				t.Fatalf("%s's input schema: %s", temp, schema)
			}
			var weather struct{ Celsius float64 }
			ok(t, callTool(t, ra, temp, map[string]any{"city": "Oslo"}), &weather)
			if weather.Celsius != 21 {
				t.Fatalf("%s over MCP: %+v", temp, weather)
			}
			var sum struct{ Sum float64 }
			ok(t, callTool(t, ra, ns+".add_numbers", map[string]any{"a": 1, "b": 2}), &sum)
			if sum.Sum != 3 {
				t.Fatalf("%s.add_numbers over MCP: %+v", ns, sum)
			}
			failed(t, callTool(t, ra, temp, map[string]any{"town": "Oslo"}), "invalid arguments:")
			failed(t, callTool(t, ra, temp+"_scoped", map[string]any{"city": "Oslo"}), "not allowed:")

			viewer := w.httpClient(t, gen, clientConfig{headers: map[string]string{"X-Tenant": "acme", "X-Roles": "viewer"}})
			if _, ok := listed(t, viewer)[temp]; ok {
				t.Fatal("an acme viewer lists the plugin tool it may not call")
			}
			failed(t, callTool(t, viewer, temp, map[string]any{"city": "Oslo"}), "not allowed: missing permission tasks:write")

			tools = listed(t, cb)
			for _, name := range []string{temp, ns + ".add_numbers"} {
				if _, ok := tools[name]; ok {
					t.Fatalf("bolt lists acme's %s", name)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				req := mcp.CallToolRequest{}
				req.Params.Name, req.Params.Arguments = name, map[string]any{"city": "Oslo", "a": 1, "b": 2}
				res, err := cb.CallTool(ctx, req)
				cancel()
				if err == nil && !res.IsError {
					t.Fatalf("bolt called acme's %s: %s", name, text(res))
				}
				failed(t, callTool(t, cb, "call_plugin_tool", map[string]any{"tool": name}), "not found:")
			}
			heardB.none(t, mcp.MethodNotificationToolsListChanged, 300*time.Millisecond)
		})
	}
}

// toolsWatcher connects an idle client of generation gen that listens for
// tools/list_changed (a 2026-07-28 client opts in on its listen stream),
// and returns what it hears.
func (w *world) toolsWatcher(t *testing.T, gen string) *notes {
	t.Helper()
	watcher := w.httpClient(t, gen, clientConfig{})
	got := listen(watcher)
	if gen == modern {
		subscribe(t, watcher, got, true, "")
	}
	return got
}

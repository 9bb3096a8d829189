package mcpserver_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/vigilhq/vigil/mcpserver"
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

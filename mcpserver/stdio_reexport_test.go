package mcpserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/toolsregistry/remotetest"
)

// TestStdioPluginToolsReexported is TestPluginToolsReexported over stdio
// (`vigil mcp`), in both protocol generations: the stdio client, acting
// for the local principal (tenant default), registers an HTTP plugin tool
// backed by a real server and mounts a remote MCP server; tools/list then
// offers both, and calling them by name returns their answers. A plugin
// tool that tenant bolt registers over HTTP meanwhile is neither listed
// over stdio nor callable there, by name or through call_plugin_tool.
func TestStdioPluginToolsReexported(t *testing.T) {
	remote := remotetest.NewCalc(t).URL
	url := plugin(t)
	w := newWorld(t, nil, asTenant)
	w.closeMounts(t, vigil.DefaultTenant)
	for _, gen := range generations {
		t.Run(gen, func(t *testing.T) {
			suffix := map[string]string{legacy: "s", modern: "m"}[gen]
			temp, ns, other := "local.temp_"+suffix, "calc_"+suffix, "bolt.temp_"+suffix
			bolt := w.httpClient(t, gen, clientConfig{headers: map[string]string{"X-Tenant": "bolt", "X-Roles": "admin"}})
			ok(t, callTool(t, bolt, "register_tool", registerArgs(url, other)), nil)

			c := w.stdioClient(t, gen)
			ok(t, callTool(t, c, "register_tool", registerArgs(url, temp)), nil)
			ok(t, callTool(t, c, "register_tool", mountArgs(remote, ns)), nil)

			tools := listed(t, c)
			for _, name := range []string{temp, ns + ".add_numbers", "create_task"} {
				if _, ok := tools[name]; !ok {
					t.Fatalf("tools/list over stdio lacks %s", name)
				}
			}
			for _, name := range []string{other, "call_plugin_tool", "echo"} {
				if _, ok := tools[name]; ok {
					t.Fatalf("tools/list over stdio shows %s", name)
				}
			}

			var weather struct {
				City    string
				Celsius float64
			}
			ok(t, callTool(t, c, temp, map[string]any{"city": "Oslo"}), &weather)
			if weather.City != "Oslo" || weather.Celsius != 21 {
				t.Fatalf("%s over stdio: %+v; want the plugin's answer for Oslo", temp, weather)
			}
			var sum struct{ Sum float64 }
			ok(t, callTool(t, c, ns+".add_numbers", map[string]any{"a": 1, "b": 2}), &sum)
			if sum.Sum != 3 {
				t.Fatalf("%s.add_numbers over stdio: %+v", ns, sum)
			}
			failed(t, callTool(t, c, temp, map[string]any{"town": "Oslo"}), "invalid arguments:")

			// bolt's tool, which bolt itself can call, is not the local
			// principal's.
			ok(t, callTool(t, bolt, other, map[string]any{"city": "Oslo"}), nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req := mcp.CallToolRequest{}
			req.Params.Name, req.Params.Arguments = other, map[string]any{"city": "Oslo"}
			if res, err := c.CallTool(ctx, req); err == nil && !res.IsError {
				t.Fatalf("stdio called bolt's %s: %s", other, text(res))
			}
			failed(t, callTool(t, c, "call_plugin_tool", map[string]any{"tool": other}), "not found:")
		})
	}
}

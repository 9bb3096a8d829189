// Package toolsregistry is Vigil's registry of the tools agents call: what
// a tool is (Tool: name, version, schemas, scopes, limits, fallback), who
// sees it (global tools for all tenants, a tenant's own tools for it
// alone), which version a name means (versions side by side, "weather@2";
// a bare name means the highest unless one is pinned), and everything that
// guards a call. Handlers run the tools: built-in Go tools (Builtins, such
// as http_get, calculate and render_chart), HTTP tools that plugin authors
// serve (NewHTTPHandler, signed with HMAC; Verify on their side), and the
// tools of remote MCP servers (Registry.Mount: each remote tool becomes
// namespace.tool, and the Mount follows the server's tools/list_changed and
// reconnects when its connection breaks). Outgoing HTTP, to HTTP tools and
// remote MCP servers alike, goes through a Guard against SSRF.
//
// A call flows one way through Registry.Call:
//
//	Request{Tenant, Scopes, Tool: "weather@2", Args, Location}
//	  → resolve the tool for the tenant            (NotFound)
//	  → the caller's scopes must cover the tool's  (Forbidden, naming the scope)
//	  → validate the arguments against the input schema, compiled once;
//	    if invalid, Repair ("tomorrow" → 2026-11-23, "8am" → 08:00, "42" → 42,
//	    "Celsius" → celsius, defaults) and validate again
//	                                               (Invalid: field, expected)
//	  → the tenant's token bucket                  (TooMany, RetryAfter)
//	  → a fresh cached result? return it           (Result.Cached)
//	  → the tool's token bucket                    (TooMany, RetryAfter)
//	  → the tool's circuit breaker → the handler under the tool's timeout
//	    → the result validated against the output schema
//	  → cache the result (tenant, tool@version, canonical arguments)
//	  → on failure or an open breaker, the tool's Fallback: the last cached
//	    result with Result.Stale and a Warning ("using data from 08:00
//	    yesterday"), or a structured *Error     (Unavailable, Retryable)
//
// The caller (the task agent) turns a Result into tool_result, part and
// warning events, and an *Error into a tool_error event (Error.ToolError):
// a failed tool is a result the model reads, not a failure of the run.
//
// The Registry is in memory. Sync makes a tenant's plugin tools durable
// and shared, and is the one way they are added and removed (REST's
// /v1/tools and MCP's register_tool both call it):
//
//	PluginSpec (kind http, or kind mcp: a remote MCP server)
//	  → Sync.Register / Sync.Mount: check the spec (vigil.Invalid naming
//	    the field), connect to a remote MCP server and mount it
//	  → PluginStore.PutPlugin: the Plugin, its secret or headers sealed
//	    with AES-256-GCM under a key derived from the memory key
//	  → this instance's Registry at once (Register, or the Mount made)
//	  → PluginStore.WatchPlugins on every other instance: register the
//	    tool, or mount the server in the background, within about a second;
//	    a full reload every minute catches a missed change and mounts again
//	    the servers whose mount failed
//
// Sync.Unregister removes a tool version, every version of a name, or (a
// namespace) a mounted server with all its tools, the same way; Sync.Mounts
// lists a tenant's remote MCP servers and how their mounts fare, without
// their headers. store/bolt and store/redis implement PluginStore.
//
// Every change to the registry (Register, Unregister, a mount's tools
// coming and going) is reported by OnChange as a Change, in the goroutine
// that made it: the MCP server announces tools/list_changed to the
// sessions of the change's tenant, and re-exports a tenant's own tools
// (List) as MCP tools of its sessions.
package toolsregistry

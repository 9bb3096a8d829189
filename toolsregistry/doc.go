// Package toolsregistry is Vigil's registry of the tools agents call: what
// a tool is (Tool: name, version, schemas, scopes, limits, fallback), who
// sees it (global tools for all tenants, a tenant's own tools for it
// alone), which version a name means (versions side by side, "weather@2";
// a bare name means the highest unless one is pinned), and everything that
// guards a call. Handlers run the tools: built-in Go tools (Builtins:
// http_get, time_now, calculate, render_table, render_chart) and HTTP tools
// that plugin authors serve (NewHTTPHandler, signed with HMAC; Verify on
// their side). Outgoing HTTP goes through a Guard against SSRF.
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
// The registry is in memory. Persistence, propagation to other instances
// and MCP re-export plug in from outside: a store writes what Register and
// Unregister did (OnChange reports each Change), other instances replay
// those changes into their own registry, and an MCP server lists a tenant's
// tools with List and announces tools/list_changed on OnChange.
package toolsregistry

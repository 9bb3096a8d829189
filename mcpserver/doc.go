// Package mcpserver is Vigil's Model Context Protocol edge: the tools,
// resources and notifications through which Claude and every other MCP
// client read threads, manage tasks and register plugin tools, served over
// streamable HTTP at /mcp (both protocol generations mark3labs/mcp-go
// speaks: the stateless 2026-07-28 protocol and the older session-based
// ones) and over stdio (`vigil mcp`).
//
// # Data flow
//
// A request flows one way, as on the REST side:
//
//	HTTP: httpapi middleware (trace id, principal in the context)
//	        → Server.Handler (session/tenant binding, streaming writer)
//	        → mcp-go StreamableHTTPServer → MCPServer
//	stdio: ServeStdio (the local principal in the context) → MCPServer
//	      → input validation against the tool's JSON schema (mcp-go)
//	      → Vigil's tool wrapper: principal, permission, typed arguments
//	      → domain: streams.Log (get_events), toolsregistry.Registry
//	        (register_tool, …), Tasks (create_task, …), agent.PlanOffline
//	        (free-text requests)
//	      → a structured result with a short text, or an isError result
//	        whose text names the vigil error code: a model can act on it
//
// The principal never comes from the MCP message: mcp-go hands the HTTP
// request's context, which the httpapi middleware filled, to every handler;
// stdio runs for Options.Local. Every tool and resource acts only inside the
// principal's tenant.
//
// Notifications flow the other way. Registry.OnChange → the sessions of the
// change's tenant (every session for a global tool) receive
// notifications/tools/list_changed; a task's task_status events, followed
// through the streams.Hub, become notifications/resources/updated for the
// sessions of that tenant subscribed to vigil://tasks/{id} or
// vigil://runs/{id}. Sessions are tracked with the principal they were
// opened by, so nothing of one tenant reaches another.
//
// # Resumable streams
//
// EventStore implements mcp-go's server.EventStore on streams.Log: every
// message mcp-go writes to a session-protocol SSE stream is appended, with
// its stream id, to a reserved thread of the session's tenant
// ("mcp." + session id), and its streams.ID becomes the SSE event id. A
// client that reconnects with Last-Event-ID is replayed what it missed, from
// bolt or Redis, on this instance or (Redis) another one.
package mcpserver

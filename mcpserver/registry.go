package mcpserver

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/toolsregistry"
)

// registryTools are the tools over the tools registry. They act on the
// caller's tenant only: a tenant registers, lists and removes its own
// plugin tools (and lists the global ones); the global tools themselves are
// an operator's, not changed over MCP. Registration goes through
// Options.Plugins, as REST's does; without one, registryTools makes a Sync
// without a store for them.
func (s *Server) registryTools() []server.ServerTool {
	if s.opts.Plugins == nil {
		// NewSync fails only for a key of the wrong size, and none is given.
		s.opts.Plugins, _ = toolsregistry.NewSync(s.opts.Registry, toolsregistry.SyncOptions{Guard: s.opts.Guard, Logger: s.opts.Logger})
	}
	return []server.ServerTool{
		newTool[RegisterToolInput, ToolOutput](s, "register_tool", "Register a plugin tool",
			"Register an HTTP plugin tool for your tenant: Vigil POSTs the validated arguments as JSON to url, signed with HMAC-SHA256 under secret "+
				"(headers X-Vigil-Timestamp and X-Vigil-Signature), and checks the JSON answer against output_schema. "+
				"Or, with kind mcp, mount a remote MCP server (streamable HTTP at url, with headers such as Authorization): "+
				"its tools become namespace.tool, following the server as its tools change. "+
				"The registration is stored (secret and headers encrypted) and tasks can call the tools at once, on every Vigil instance; "+
				"connected clients get tools/list_changed. Versions are immutable: register a new version to change one.",
			PermToolsRegister, write, s.registerTool),
		newTool[UnregisterToolInput, UnregisterToolOutput](s, "unregister_tool", "Unregister a plugin tool",
			"Remove one of your tenant's plugin tools: name@version removes that version, a bare name every version, "+
				"and the namespace of a mounted remote MCP server unmounts it with all its tools.",
			PermToolsRegister, removes, s.unregisterTool),
		newTool[ListRegistryToolsInput, ListRegistryToolsOutput](s, "list_registry_tools", "List the tools tasks can call",
			"List the tools your tasks can call: the built-in ones and your tenant's plugin tools (a mounted server's as namespace.tool), "+
				"every version, with their schemas; and your tenant's mounted remote MCP servers.",
			PermToolsRegister, readOnly, s.listRegistryTools),
		s.pluginCallTool(),
	}
}

// RegisterToolInput are the arguments of register_tool: an HTTP plugin
// tool (kind http, the default), or a remote MCP server to mount (kind
// mcp: namespace or name, url, headers, and optionally description,
// scopes and timeout).
type RegisterToolInput struct {
	Kind         string            `json:"kind,omitempty" jsonschema:"enum=http,enum=mcp" jsonschema_description:"http (default): one tool served over HTTP by its author; mcp: a remote MCP server whose tools are mounted under namespace."`
	Name         string            `json:"name,omitempty" jsonschema:"pattern=^[a-z][a-z0-9_.]*$,maxLength=64" jsonschema_description:"The tool's name; a dot separates a namespace, as in acme.weather. Required for kind http; for kind mcp, the same as namespace."`
	Namespace    string            `json:"namespace,omitempty" jsonschema:"pattern=^[a-z][a-z0-9_]*$,maxLength=32" jsonschema_description:"Kind mcp: the prefix of the mounted tools, as in github for github.search_repos."`
	Version      int               `json:"version,omitempty" jsonschema:"minimum=1" jsonschema_description:"The version; default 1 (kind mcp: 1 only)."`
	Description  string            `json:"description,omitempty" jsonschema_description:"What the tool does and when to use it, for the model. Required for kind http."`
	URL          string            `json:"url" jsonschema:"format=uri,pattern=^https?://" jsonschema_description:"Where Vigil POSTs each call (kind http), or the remote MCP server's streamable HTTP endpoint (kind mcp)."`
	Secret       string            `json:"secret,omitempty" jsonschema:"minLength=16" jsonschema_description:"Kind http: the HMAC key that signs each call; at least 16 characters. It is never shown again."`
	Headers      map[string]string `json:"headers,omitempty" jsonschema_description:"Kind mcp: headers sent with every request to the server, such as Authorization. They are stored encrypted and never shown again."`
	InputSchema  map[string]any    `json:"input_schema,omitempty" jsonschema_description:"The JSON Schema of the arguments, an object schema; default any object."`
	OutputSchema map[string]any    `json:"output_schema,omitempty" jsonschema_description:"The JSON Schema of the answer; default unchecked."`
	Scopes       []string          `json:"scopes,omitempty" jsonschema_description:"Permissions a task's owner must hold to call it, such as read:web."`
	Timeout      string            `json:"timeout,omitempty" jsonschema_description:"How long one call may take, a Go duration such as 10s; default the server's."`
	RateLimit    int               `json:"rate_limit,omitempty" jsonschema:"minimum=0" jsonschema_description:"At most this many calls per minute; default no limit."`
	CacheTTL     string            `json:"cache_ttl,omitempty" jsonschema_description:"How long a result is reused for the same arguments, a Go duration such as 5m; default not reused."`
	Fallback     string            `json:"fallback,omitempty" jsonschema:"enum=error,enum=cached,enum=none" jsonschema_description:"What a failed call returns: a structured error (default), the last cached result with a warning, or the tool's own error."`
}

// ToolInfo is a registry tool as the registry tools show it.
type ToolInfo struct {
	Name         string         `json:"name"`
	Version      int            `json:"version"`
	Ref          string         `json:"ref" jsonschema_description:"name@version, as a task pins it."`
	Global       bool           `json:"global" jsonschema_description:"Whether every tenant sees the tool (built-in), rather than only yours."`
	Default      bool           `json:"default" jsonschema_description:"Whether the bare name means this version."`
	Description  string         `json:"description"`
	InputSchema  map[string]any `json:"input_schema,omitempty"`
	OutputSchema map[string]any `json:"output_schema,omitempty"`
	Scopes       []string       `json:"scopes,omitempty"`
	Timeout      string         `json:"timeout,omitempty"`
	RateLimit    int            `json:"rate_limit,omitempty"`
	CacheTTL     string         `json:"cache_ttl,omitempty"`
	Fallback     string         `json:"fallback,omitempty"`
}

func toolInfo(t toolsregistry.Tool, def bool) ToolInfo {
	info := ToolInfo{
		Name: t.Name, Version: t.Version, Ref: t.Ref(), Global: t.Tenant == toolsregistry.Global, Default: def,
		Description: t.Description, Scopes: t.Scopes, RateLimit: t.RateLimit, Fallback: string(t.Fallback),
		InputSchema: schemaMap(t.InputSchema), OutputSchema: schemaMap(t.OutputSchema),
	}
	if t.Timeout > 0 {
		info.Timeout = t.Timeout.String()
	}
	if t.CacheTTL > 0 {
		info.CacheTTL = t.CacheTTL.String()
	}
	return info
}

func schemaMap(raw json.RawMessage) map[string]any {
	if len(raw) == 0 {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// MountInfo is a mounted remote MCP server as the registry tools show it:
// where it is and how its mount fares, never its headers.
type MountInfo struct {
	Namespace string   `json:"namespace"`
	URL       string   `json:"url" jsonschema_description:"The server's endpoint, its password (if any) masked."`
	Scopes    []string `json:"scopes,omitempty"`
	Timeout   string   `json:"timeout,omitempty"`
	State     string   `json:"state" jsonschema:"enum=mounted,enum=mounting,enum=failed" jsonschema_description:"mounted: its tools can be called; mounting: being mounted; failed: see error, retried at the next reload."`
	Connected bool     `json:"connected" jsonschema_description:"Whether calls reach the server now."`
	Tools     []string `json:"tools" jsonschema_description:"The mounted tools, namespace.tool."`
	Error     string   `json:"error,omitempty" jsonschema_description:"Why the server is not mounted, or why its connection last broke."`
}

func mountInfo(mi toolsregistry.MountInfo) MountInfo {
	info := MountInfo{
		Namespace: mi.Spec.Namespace, URL: mi.Spec.URL, Scopes: mi.Spec.Scopes, State: string(mi.State),
		Connected: mi.Status.Connected, Tools: mi.Tools, Error: cmp.Or(mi.Error, mi.Status.LastError),
	}
	if info.Tools == nil {
		info.Tools = []string{}
	}
	if mi.Spec.Timeout > 0 {
		info.Timeout = mi.Spec.Timeout.String()
	}
	return info
}

// ToolOutput is the result of register_tool: the tool registered, or the
// remote MCP server mounted (kind mcp).
type ToolOutput struct {
	Tool  *ToolInfo  `json:"tool,omitempty"`
	Mount *MountInfo `json:"mount,omitempty"`
}

func (s *Server) registerTool(ctx context.Context, c call[RegisterToolInput]) (*mcp.CallToolResult, error) {
	in := c.in
	spec := toolsregistry.PluginSpec{
		Kind: toolsregistry.PluginKind(in.Kind), Name: in.Name, Version: in.Version, Description: in.Description, URL: in.URL, Secret: in.Secret,
		Scopes: in.Scopes, Timeout: in.Timeout, RateLimit: in.RateLimit, CacheTTL: in.CacheTTL,
		Fallback: toolsregistry.Fallback(in.Fallback), Namespace: in.Namespace, Headers: in.Headers,
	}
	var err error
	if in.InputSchema != nil {
		if spec.InputSchema, err = json.Marshal(in.InputSchema); err != nil {
			return nil, vigil.FieldError("input_schema", "%v", err)
		}
	}
	if in.OutputSchema != nil {
		if spec.OutputSchema, err = json.Marshal(in.OutputSchema); err != nil {
			return nil, vigil.FieldError("output_schema", "%v", err)
		}
	}
	if spec.Kind == toolsregistry.PluginMCP {
		mi, err := s.opts.Plugins.Mount(ctx, c.p.Tenant, spec)
		if err != nil {
			return nil, err
		}
		info := mountInfo(mi)
		s.opts.Logger.InfoContext(ctx, "mcpserver: remote MCP server mounted", "namespace", info.Namespace, "tools", len(info.Tools), "user", c.p.User)
		return structured(ToolOutput{Mount: &info}, fmt.Sprintf("Mounted %s for tenant %s with %d tools (%s); tasks can call them now.",
			info.Namespace, c.p.Tenant, len(info.Tools), strings.Join(info.Tools, ", "))), nil
	}
	l, err := s.opts.Plugins.Register(ctx, c.p.Tenant, spec)
	if err != nil {
		return nil, err
	}
	ref := l.Tool.Ref()
	info := toolInfo(l.Tool, l.Default)
	s.opts.Logger.InfoContext(ctx, "mcpserver: tool registered", "tool", ref, "user", c.p.User)
	return structured(ToolOutput{Tool: &info}, fmt.Sprintf("Registered %s for tenant %s; tasks can call it now.", ref, c.p.Tenant)), nil
}

// UnregisterToolInput are the arguments of unregister_tool.
type UnregisterToolInput struct {
	Tool string `json:"tool" jsonschema:"pattern=^[a-z][a-z0-9_.]*(@[1-9][0-9]*)?$" jsonschema_description:"name@version for one version, a bare name for every version, or the namespace of a mounted remote MCP server."`
}

// UnregisterToolOutput is the result of unregister_tool.
type UnregisterToolOutput struct {
	Removed string `json:"removed" jsonschema_description:"The reference removed."`
}

func (s *Server) unregisterTool(ctx context.Context, c call[UnregisterToolInput]) (*mcp.CallToolResult, error) {
	if err := s.opts.Plugins.Unregister(ctx, c.p.Tenant, c.in.Tool); err != nil {
		return nil, err
	}
	s.opts.Logger.InfoContext(ctx, "mcpserver: tool unregistered", "tool", c.in.Tool, "user", c.p.User)
	return structured(UnregisterToolOutput{Removed: c.in.Tool}, fmt.Sprintf("Removed %s.", c.in.Tool)), nil
}

// ListRegistryToolsInput are the arguments of list_registry_tools.
type ListRegistryToolsInput struct {
	Name string `json:"name,omitempty" jsonschema_description:"Only tools, and mounts, whose name (namespace) starts with this."`
}

// ListRegistryToolsOutput is the result of list_registry_tools.
type ListRegistryToolsOutput struct {
	Tools  []ToolInfo  `json:"tools"`
	Mounts []MountInfo `json:"mounts" jsonschema_description:"Your tenant's remote MCP servers, mounted or not."`
}

func (s *Server) listRegistryTools(ctx context.Context, c call[ListRegistryToolsInput]) (*mcp.CallToolResult, error) {
	out := ListRegistryToolsOutput{Tools: []ToolInfo{}, Mounts: []MountInfo{}}
	var names []string
	for _, l := range s.opts.Registry.List(c.p.Tenant) {
		if !strings.HasPrefix(l.Tool.Name, c.in.Name) {
			continue
		}
		out.Tools = append(out.Tools, toolInfo(l.Tool, l.Default))
		names = append(names, l.Tool.Ref())
	}
	var mounts []string
	for _, mi := range s.opts.Plugins.Mounts(c.p.Tenant) {
		if strings.HasPrefix(mi.Spec.Namespace, c.in.Name) {
			out.Mounts = append(out.Mounts, mountInfo(mi))
			mounts = append(mounts, mi.Spec.Namespace+" ("+string(mi.State)+")")
		}
	}
	text := fmt.Sprintf("%d tools: %s", len(names), strings.Join(names, ", "))
	if len(mounts) > 0 {
		text += fmt.Sprintf("; %d mounted MCP servers: %s", len(mounts), strings.Join(mounts, ", "))
	}
	return structured(out, text), nil
}

// Plugin tools are re-exported as MCP tools. A tenant's own registry tools
// (its HTTP plugin tools and its mounted servers' tools, the default
// version of each name) are listed by tools/list to that tenant's sessions
// alone, after Vigil's own tools, and called by name like them; another
// tenant neither lists nor calls them. Registry.OnChange already tells the
// tenant's sessions of every change with tools/list_changed
// (registryChanged), so a client lists them again when one comes or goes.
//
// mcp-go keeps one tool list for every session, and adding a tool to it
// tells every session of every tenant. So the plugin tools are not added
// to it: a hook appends the caller's to each tools/list answer, and
// another turns a tools/call of one of them into a call of the hidden
// call_plugin_tool with the name and the arguments, which calls the tool
// through Registry.Call for the caller's tenant. A plugin tool named as
// one of Vigil's own (get_events, …) is not re-exported: Vigil's wins.
//
// Calling a plugin tool takes the permission tasks:write, as creating a
// task whose runs call it does; the call holds the scopes Options.Scopes
// gives the principal.

// callPluginTool is the hidden tool a tools/call of a plugin tool is made
// into.
const callPluginTool = "call_plugin_tool"

// CallPluginToolInput are the arguments of call_plugin_tool.
type CallPluginToolInput struct {
	Tool      string         `json:"tool" jsonschema:"maxLength=200" jsonschema_description:"The plugin tool: its name, or name@version."`
	Arguments map[string]any `json:"arguments,omitempty" jsonschema_description:"The tool's arguments, as its input schema says."`
}

// pluginCallTool returns call_plugin_tool. It has no output schema: each
// plugin tool has its own.
func (s *Server) pluginCallTool() server.ServerTool {
	st := newTool[CallPluginToolInput, struct{}](s, callPluginTool, "Call a plugin tool",
		"Call one of your tenant's plugin tools by name with its arguments. Each is also listed, and can be called, under its own name.",
		PermTasksWrite, hints{openWorld: true}, s.callPlugin)
	st.Tool.RawOutputSchema = nil
	return st
}

func (s *Server) callPlugin(ctx context.Context, c call[CallPluginToolInput]) (*mcp.CallToolResult, error) {
	t, err := s.opts.Registry.Resolve(c.p.Tenant, c.in.Tool)
	if err != nil || t.Tenant != c.p.Tenant {
		// A global tool is not a plugin tool: tasks call those.
		return nil, vigil.Errorf(vigil.NotFound, "no plugin tool %s", c.in.Tool)
	}
	// The arguments as sent, rather than c.in.Arguments, whose numbers
	// went through float64.
	var sent struct{ Arguments json.RawMessage }
	if raw := c.req.Params.RawArguments; len(raw) > 0 {
		_ = json.Unmarshal(raw, &sent) // mcp-go has validated them
	} else if c.in.Arguments != nil {
		if sent.Arguments, err = json.Marshal(c.in.Arguments); err != nil {
			return nil, vigil.FieldError("arguments", "%v", err)
		}
	}
	args := sent.Arguments
	if len(args) == 0 || string(args) == "null" {
		args = json.RawMessage(`{}`)
	}
	var scopes []string
	if s.opts.Scopes != nil {
		scopes = s.opts.Scopes(c.p)
	}
	res, err := s.opts.Registry.Call(ctx, toolsregistry.Request{
		Tenant: c.p.Tenant, Scopes: scopes, Tool: c.in.Tool, Args: args, Location: s.opts.Location,
	})
	if err != nil {
		return nil, err
	}
	text := string(res.Output)
	if res.Warning != nil {
		text += "\n(" + res.Warning.Message + ")"
	}
	var obj map[string]any
	if json.Unmarshal(res.Output, &obj) == nil && obj != nil {
		return mcp.NewToolResultStructured(res.Output, text), nil
	}
	return mcp.NewToolResultText(text), nil
}

// installPluginExport installs the hooks that re-export the caller's
// plugin tools: listed by tools/list, called by name.
func (s *Server) installPluginExport(h *server.Hooks) {
	h.AddAfterListTools(func(ctx context.Context, _ any, _ *mcp.ListToolsRequest, res *mcp.ListToolsResult) {
		if res == nil {
			return
		}
		res.Tools = slices.DeleteFunc(res.Tools, func(t mcp.Tool) bool { return t.Name == callPluginTool })
		if res.NextCursor != "" {
			return // the plugin tools go on the last page
		}
		p, ok := vigil.PrincipalFrom(ctx)
		if !ok || p.Tenant == "" || s.opts.Allow(p, PermTasksWrite) != nil {
			return // they could not call them
		}
		res.Tools = append(res.Tools, s.pluginTools(p.Tenant)...)
	})
	h.AddBeforeCallTool(func(ctx context.Context, _ any, req *mcp.CallToolRequest) {
		name := req.Params.Name
		if name == callPluginTool || s.mcp.GetTool(name) != nil {
			return
		}
		p, ok := vigil.PrincipalFrom(ctx)
		if !ok || p.Tenant == "" {
			return
		}
		if t, err := s.opts.Registry.Resolve(p.Tenant, name); err != nil || t.Tenant != p.Tenant {
			return // mcp-go answers that the tool is not found
		}
		args := map[string]any{"tool": name}
		if req.Params.Arguments != nil {
			args["arguments"] = req.Params.Arguments
		}
		raw, err := json.Marshal(args)
		if len(req.Params.RawArguments) > 0 {
			// Kept as sent, so that large integers keep their precision.
			var quoted []byte
			quoted, err = json.Marshal(name)
			raw = slices.Concat([]byte(`{"tool":`), quoted, []byte(`,"arguments":`), req.Params.RawArguments, []byte(`}`))
		}
		if err != nil {
			return
		}
		req.Params.Name, req.Params.Arguments, req.Params.RawArguments = callPluginTool, args, raw
	})
}

// pluginTools returns tenant's plugin tools as MCP tools: the default
// version of each of its own registry tools whose name is not one of
// Vigil's tools.
func (s *Server) pluginTools(tenant string) []mcp.Tool {
	var out []mcp.Tool
	for _, l := range s.opts.Registry.List(tenant) {
		t := l.Tool
		if t.Tenant != tenant || !l.Default || s.mcp.GetTool(t.Name) != nil {
			continue
		}
		mt := mcp.Tool{
			Name:           t.Name,
			Description:    t.Description,
			RawInputSchema: t.InputSchema,
			Annotations:    hints{openWorld: true}.annotation(t.Name),
		}
		if len(mt.RawInputSchema) == 0 {
			mt.RawInputSchema = json.RawMessage(`{"type":"object"}`)
		}
		// MCP wants an object at the root of an output schema; another
		// one is left out, and the result is still checked by the registry.
		if schemaMap(t.OutputSchema)["type"] == "object" {
			mt.RawOutputSchema = t.OutputSchema
		}
		out = append(out, mt)
	}
	return out
}

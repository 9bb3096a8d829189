package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
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
				"The tool is stored (its secret encrypted) and tasks can call it at once, on every Vigil instance; connected clients get tools/list_changed. "+
				"Versions are immutable: register a new version to change one.",
			PermToolsRegister, write, s.registerTool),
		newTool[UnregisterToolInput, UnregisterToolOutput](s, "unregister_tool", "Unregister a plugin tool",
			"Remove one of your tenant's plugin tools: name@version removes that version, a bare name every version.",
			PermToolsRegister, removes, s.unregisterTool),
		newTool[ListRegistryToolsInput, ListRegistryToolsOutput](s, "list_registry_tools", "List the tools tasks can call",
			"List the tools your tasks can call: the built-in ones and your tenant's plugin tools, every version, with their schemas.",
			PermToolsRegister, readOnly, s.listRegistryTools),
	}
}

// RegisterToolInput are the arguments of register_tool.
type RegisterToolInput struct {
	Name         string         `json:"name" jsonschema:"pattern=^[a-z][a-z0-9_.]*$,maxLength=64" jsonschema_description:"The tool's name; a dot separates a namespace, as in acme.weather."`
	Version      int            `json:"version,omitempty" jsonschema:"minimum=1" jsonschema_description:"The version; default 1."`
	Description  string         `json:"description" jsonschema:"minLength=1" jsonschema_description:"What the tool does and when to use it, for the model."`
	URL          string         `json:"url" jsonschema:"format=uri,pattern=^https?://" jsonschema_description:"Where Vigil POSTs each call."`
	Secret       string         `json:"secret" jsonschema:"minLength=16" jsonschema_description:"The HMAC key that signs each call; at least 16 characters. It is never shown again."`
	InputSchema  map[string]any `json:"input_schema,omitempty" jsonschema_description:"The JSON Schema of the arguments, an object schema; default any object."`
	OutputSchema map[string]any `json:"output_schema,omitempty" jsonschema_description:"The JSON Schema of the answer; default unchecked."`
	Scopes       []string       `json:"scopes,omitempty" jsonschema_description:"Permissions a task's owner must hold to call it, such as read:web."`
	Timeout      string         `json:"timeout,omitempty" jsonschema_description:"How long one call may take, a Go duration such as 10s; default the server's."`
	RateLimit    int            `json:"rate_limit,omitempty" jsonschema:"minimum=0" jsonschema_description:"At most this many calls per minute; default no limit."`
	CacheTTL     string         `json:"cache_ttl,omitempty" jsonschema_description:"How long a result is reused for the same arguments, a Go duration such as 5m; default not reused."`
	Fallback     string         `json:"fallback,omitempty" jsonschema:"enum=error,enum=cached,enum=none" jsonschema_description:"What a failed call returns: a structured error (default), the last cached result with a warning, or the tool's own error."`
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

// ToolOutput is the result of register_tool.
type ToolOutput struct {
	Tool ToolInfo `json:"tool"`
}

func (s *Server) registerTool(ctx context.Context, c call[RegisterToolInput]) (*mcp.CallToolResult, error) {
	in := c.in
	spec := toolsregistry.PluginSpec{
		Name: in.Name, Version: in.Version, Description: in.Description, URL: in.URL, Secret: in.Secret,
		Scopes: in.Scopes, Timeout: in.Timeout, RateLimit: in.RateLimit, CacheTTL: in.CacheTTL,
		Fallback: toolsregistry.Fallback(in.Fallback),
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
	l, err := s.opts.Plugins.Register(ctx, c.p.Tenant, spec)
	if err != nil {
		return nil, err
	}
	ref := l.Tool.Ref()
	s.opts.Logger.InfoContext(ctx, "mcpserver: tool registered", "tool", ref, "user", c.p.User)
	return structured(ToolOutput{Tool: toolInfo(l.Tool, l.Default)}, fmt.Sprintf("Registered %s for tenant %s; tasks can call it now.", ref, c.p.Tenant)), nil
}

// UnregisterToolInput are the arguments of unregister_tool.
type UnregisterToolInput struct {
	Tool string `json:"tool" jsonschema:"pattern=^[a-z][a-z0-9_.]*(@[1-9][0-9]*)?$" jsonschema_description:"name@version for one version, or a bare name for every version."`
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
	Name string `json:"name,omitempty" jsonschema_description:"Only tools whose name starts with this."`
}

// ListRegistryToolsOutput is the result of list_registry_tools.
type ListRegistryToolsOutput struct {
	Tools []ToolInfo `json:"tools"`
}

func (s *Server) listRegistryTools(ctx context.Context, c call[ListRegistryToolsInput]) (*mcp.CallToolResult, error) {
	out := ListRegistryToolsOutput{Tools: []ToolInfo{}}
	var names []string
	for _, l := range s.opts.Registry.List(c.p.Tenant) {
		if !strings.HasPrefix(l.Tool.Name, c.in.Name) {
			continue
		}
		out.Tools = append(out.Tools, toolInfo(l.Tool, l.Default))
		names = append(names, l.Tool.Ref())
	}
	return structured(out, fmt.Sprintf("%d tools: %s", len(names), strings.Join(names, ", "))), nil
}

package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/toolsregistry"
)

// toolRoutes registers the plugin tool routes. They act on the principal's
// tenant, as MCP's register_tool, unregister_tool and list_registry_tools
// do, through the same toolsregistry.Sync: a tool registered here is
// stored, callable by tasks at once on every instance, and announced to
// connected MCP clients with tools/list_changed.
//
//	GET    /v1/tools          the tools the tenant's tasks can call (built-in, its own,
//	                          and its mounted servers' tools, namespaced), and its mounts
//	POST   /v1/tools          register an HTTP plugin tool, or mount a remote MCP server
//	                          ("kind":"mcp"): a toolsregistry.PluginSpec (201)
//	DELETE /v1/tools/{ref}    unregister name@version, or every version of a name, or
//	                          unmount the server mounted as namespace {ref} (204)
//
// A plugin's secret and a mount's headers are never shown again after they
// are registered.
func (s *Server) toolRoutes() {
	s.mux.HandleFunc("GET /v1/tools", s.listTools)
	s.mux.HandleFunc("POST /v1/tools", s.registerTool)
	s.mux.HandleFunc("DELETE /v1/tools/{ref}", s.unregisterTool)
}

// toolView is a tool as the API shows it.
type toolView struct {
	Name         string          `json:"name"`
	Version      int             `json:"version"`
	Ref          string          `json:"ref"`     // name@version, as a task pins it
	Global       bool            `json:"global"`  // built in, seen by every tenant
	Default      bool            `json:"default"` // what the bare name means
	Description  string          `json:"description"`
	InputSchema  json.RawMessage `json:"input_schema,omitempty"`
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
	Scopes       []string        `json:"scopes,omitempty"`
	Timeout      string          `json:"timeout,omitempty"`
	RateLimit    int             `json:"rate_limit,omitempty"`
	CacheTTL     string          `json:"cache_ttl,omitempty"`
	Fallback     string          `json:"fallback,omitempty"`
}

func toolViewOf(l toolsregistry.Listing) toolView {
	t := l.Tool
	v := toolView{
		Name: t.Name, Version: t.Version, Ref: t.Ref(), Global: t.Tenant == toolsregistry.Global, Default: l.Default,
		Description: t.Description, InputSchema: t.InputSchema, OutputSchema: t.OutputSchema, Scopes: t.Scopes,
		RateLimit: t.RateLimit, Fallback: string(t.Fallback),
	}
	if t.Timeout > 0 {
		v.Timeout = t.Timeout.String()
	}
	if t.CacheTTL > 0 {
		v.CacheTTL = t.CacheTTL.String()
	}
	return v
}

// mountView is a tenant's remote MCP server as the API shows it: where it
// is and how its mount fares, never its headers (they may be credentials).
type mountView struct {
	Kind      string   `json:"kind"` // always "mcp"
	Namespace string   `json:"namespace"`
	URL       string   `json:"url"` // its password, if any, masked
	Scopes    []string `json:"scopes,omitempty"`
	Timeout   string   `json:"timeout,omitempty"`
	// State is mounted, mounting or failed (see toolsregistry.MountState).
	State  toolsregistry.MountState  `json:"state"`
	Status toolsregistry.MountStatus `json:"status"`
	// Tools are the mounted tools' names, namespace.tool, as tasks call them.
	Tools []string `json:"tools"`
	Error string   `json:"error,omitempty"`
}

func mountViewOf(mi toolsregistry.MountInfo) mountView {
	v := mountView{
		Kind: string(toolsregistry.PluginMCP), Namespace: mi.Spec.Namespace, URL: mi.Spec.URL, Scopes: mi.Spec.Scopes,
		State: mi.State, Status: mi.Status, Tools: mi.Tools, Error: mi.Error,
	}
	if v.Tools == nil {
		v.Tools = []string{}
	}
	if mi.Spec.Timeout > 0 {
		v.Timeout = mi.Spec.Timeout.String()
	}
	return v
}

// plugins returns the plugin registration and the request's tenant, or
// answers (503 when the server has no registration) and returns false.
func (s *Server) plugins(w http.ResponseWriter, r *http.Request) (*toolsregistry.Sync, string, bool) {
	if s.opts.Tools == nil {
		s.error(w, r, vigil.Errorf(vigil.Unavailable, "tool registration is not available on this server"))
		return nil, "", false
	}
	tenant, err := vigil.TenantFrom(r.Context())
	if err != nil {
		s.error(w, r, err)
		return nil, "", false
	}
	return s.opts.Tools, tenant, true
}

func (s *Server) listTools(w http.ResponseWriter, r *http.Request) {
	ps, tenant, ok := s.plugins(w, r)
	if !ok {
		return
	}
	out := struct {
		Tools  []toolView  `json:"tools"`
		Mounts []mountView `json:"mounts"`
	}{Tools: []toolView{}, Mounts: []mountView{}}
	for _, l := range ps.List(tenant) {
		out.Tools = append(out.Tools, toolViewOf(l))
	}
	for _, mi := range ps.Mounts(tenant) {
		out.Mounts = append(out.Mounts, mountViewOf(mi))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) registerTool(w http.ResponseWriter, r *http.Request) {
	ps, tenant, ok := s.plugins(w, r)
	if !ok {
		return
	}
	var spec toolsregistry.PluginSpec
	if err := s.decodeBody(w, r, &spec, false); err != nil {
		s.error(w, r, err)
		return
	}
	if spec.Kind == toolsregistry.PluginMCP {
		mi, err := ps.Mount(r.Context(), tenant, spec)
		if err != nil {
			s.error(w, r, err)
			return
		}
		s.opts.Logger.InfoContext(r.Context(), "remote MCP server mounted", "namespace", mi.Spec.Namespace, "tools", len(mi.Tools))
		w.Header().Set("Location", "/v1/tools/"+url.PathEscape(mi.Spec.Namespace))
		writeJSON(w, http.StatusCreated, mountViewOf(mi))
		return
	}
	l, err := ps.Register(r.Context(), tenant, spec)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.opts.Logger.InfoContext(r.Context(), "plugin tool registered", "tool", l.Tool.Ref())
	w.Header().Set("Location", "/v1/tools/"+url.PathEscape(l.Tool.Ref()))
	writeJSON(w, http.StatusCreated, toolViewOf(l))
}

func (s *Server) unregisterTool(w http.ResponseWriter, r *http.Request) {
	ps, tenant, ok := s.plugins(w, r)
	if !ok {
		return
	}
	ref := r.PathValue("ref")
	if err := ps.Unregister(r.Context(), tenant, ref); err != nil {
		s.error(w, r, err)
		return
	}
	s.opts.Logger.InfoContext(r.Context(), "plugin tool unregistered", "tool", ref)
	w.WriteHeader(http.StatusNoContent)
}

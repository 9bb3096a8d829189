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
//	GET    /v1/tools          the tools the tenant's tasks can call: built-in and its own
//	POST   /v1/tools          register an HTTP plugin tool: a toolsregistry.PluginSpec (201)
//	DELETE /v1/tools/{ref}    unregister name@version, or every version of a name (204)
//
// A plugin's secret is never shown again after it is registered.
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

// plugins returns the plugin registration, or answers 503 and returns nil
// when the server has none.
func (s *Server) plugins(w http.ResponseWriter, r *http.Request) *toolsregistry.Sync {
	if s.opts.Tools == nil {
		s.error(w, r, vigil.Errorf(vigil.Unavailable, "tool registration is not available on this server"))
	}
	return s.opts.Tools
}

func (s *Server) listTools(w http.ResponseWriter, r *http.Request) {
	ps := s.plugins(w, r)
	if ps == nil {
		return
	}
	tenant, err := vigil.TenantFrom(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := struct {
		Tools []toolView `json:"tools"`
	}{Tools: []toolView{}}
	for _, l := range ps.List(tenant) {
		out.Tools = append(out.Tools, toolViewOf(l))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) registerTool(w http.ResponseWriter, r *http.Request) {
	ps := s.plugins(w, r)
	if ps == nil {
		return
	}
	tenant, err := vigil.TenantFrom(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	var spec toolsregistry.PluginSpec
	if err := s.decodeBody(w, r, &spec, false); err != nil {
		s.error(w, r, err)
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
	ps := s.plugins(w, r)
	if ps == nil {
		return
	}
	tenant, err := vigil.TenantFrom(r.Context())
	if err != nil {
		s.error(w, r, err)
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

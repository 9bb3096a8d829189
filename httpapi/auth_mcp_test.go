package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/mcpserver"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/toolsregistry"
)

// mcpEnv is serveAuth's server with Vigil's MCP server mounted at /mcp as
// vigil serve mounts it: behind the real authentication middleware, with
// auth.Allowed deciding every tool and resource.
type mcpEnv struct {
	*authEnv
	mcp     *mcpserver.Server
	plugins *toolsregistry.Sync // the MCP server's plugin tools
}

func serveMCPAuth(t *testing.T) *mcpEnv {
	t.Helper()
	e := &mcpEnv{authEnv: serveAuth(t)}
	reg := toolsregistry.New(toolsregistry.Options{})
	// A plugin tool of tenant A, for call_plugin_tool.
	echo := toolsregistry.Tool{Tenant: tenantA, Name: "acme.echo", Version: 1, Description: "Echo the arguments."}
	if err := reg.Register(echo, toolsregistry.HandlerFunc(func(_ context.Context, args json.RawMessage) (toolsregistry.Output, error) {
		return toolsregistry.Output{Value: args}, nil
	})); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.plugins, err = toolsregistry.NewSync(reg, toolsregistry.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	e.mcp = mcpserver.New(mcpserver.Options{
		Log: e.backend, Hub: streams.NewHub(e.backend, streams.HubOptions{Wait: time.Second}),
		Registry: reg, Plugins: e.plugins, Tasks: e.tasks, Heartbeat: -1,
		Allow: func(p vigil.Principal, perm string) error { return auth.Allowed(p, auth.Permission(perm)) },
	})
	t.Cleanup(e.mcp.Close) // before the HTTP server closes: end the streams first
	e.api.Handle("/mcp", e.mcp.Handler())
	return e
}

// The protocol generations mcp-go speaks over streamable HTTP.
const (
	mcpSession = "session"    // 2025-11-25: initialize, Mcp-Session-Id, GET stream
	mcpModern  = "2026-07-28" // stateless
)

// connectMCP starts and initializes a client of generation gen that sends
// authz as its Authorization header ("" for none), and returns the error
// of either step.
func (e *mcpEnv) connectMCP(t *testing.T, gen, authz string) (*client.Client, error) {
	t.Helper()
	topts := []transport.StreamableHTTPCOption{transport.WithHTTPTimeout(30 * time.Second)}
	if authz != "" {
		topts = append(topts, transport.WithHTTPHeaders(map[string]string{"Authorization": authz}))
	}
	var copts []client.ClientOption
	if gen == mcpSession {
		topts = append(topts, transport.WithContinuousListening())
		copts = append(copts, client.WithProtocolVersion(mcp.ProtocolVersion20251125))
	}
	tr, err := transport.NewStreamableHTTP(e.URL+"/mcp", topts...)
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, copts...)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(context.Background()); err != nil {
		return nil, err
	}
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ClientInfo: mcp.Implementation{Name: "vigil-matrix", Version: "1"},
	}}); err != nil {
		return nil, err
	}
	want := map[string]string{mcpSession: mcp.ProtocolVersion20251125, mcpModern: mcp.ProtocolVersion20260728}[gen]
	if got := c.ProtocolVersion(); got != want {
		t.Fatalf("negotiated %s, want %s", got, want)
	}
	return c, nil
}

// mcpToolCase is one MCP tool of the matrix.
type mcpToolCase struct {
	tool  string
	perm  auth.Permission // named by the error a role without it gets
	roles string          // the roles of tenant A that may: a(dmin) d(eveloper) m(ember) v(iewer)
	// foreign is whether the arguments name one of tenant A's things,
	// which tenant B's admin then cannot find; without, tenant B's admin
	// is allowed (in its own tenant).
	foreign bool
	// args returns the arguments of a call, making fresh fixtures in tenant
	// A, and the id of A's thing they name ("" when not foreign).
	args func(t *testing.T, e *mcpEnv) (args map[string]any, id string)
}

func withTask(key string, actions ...string) func(*testing.T, *mcpEnv) (map[string]any, string) {
	return func(t *testing.T, e *mcpEnv) (map[string]any, string) {
		id := e.task(t, actions...).ID
		return map[string]any{key: id}, id
	}
}

func pluginArgs() map[string]any {
	return map[string]any{
		"name": "matrix.m" + vigil.NewID(""), "description": "From the MCP matrix.",
		"url": "https://plugins.example.com/t", "secret": "0123456789abcdef",
	}
}

// mcpToolCases is every MCP tool with its exact outcomes. A tool served
// without a row here fails TestMCPMatrix.
var mcpToolCases = []mcpToolCase{
	{tool: "get_events", perm: auth.ThreadsRead, roles: "admv", foreign: true, args: func(_ *testing.T, e *mcpEnv) (map[string]any, string) {
		return map[string]any{"thread_id": e.thread}, e.thread
	}},

	{tool: "create_task", perm: auth.TasksWrite, roles: "adm", args: func(*testing.T, *mcpEnv) (map[string]any, string) {
		return map[string]any{"request": "every day at 8am tell me the weather in Oslo"}, ""
	}},
	{tool: "list_tasks", perm: auth.TasksRead, roles: "admv", args: func(*testing.T, *mcpEnv) (map[string]any, string) {
		return nil, ""
	}},
	{tool: "get_task", perm: auth.TasksRead, roles: "admv", foreign: true, args: withTask("id")},
	{tool: "confirm_task", perm: auth.TasksWrite, roles: "adm", foreign: true, args: withTask("id")},
	{tool: "update_task", perm: auth.TasksWrite, roles: "adm", foreign: true, args: func(t *testing.T, e *mcpEnv) (map[string]any, string) {
		id := e.task(t).ID
		return map[string]any{"id": id, "title": "renamed"}, id
	}},
	{tool: "pause_task", perm: auth.TasksWrite, roles: "adm", foreign: true, args: withTask("id", "confirm")},
	{tool: "resume_task", perm: auth.TasksWrite, roles: "adm", foreign: true, args: withTask("id", "confirm", "pause")},
	{tool: "delete_task", perm: auth.TasksWrite, roles: "adm", foreign: true, args: withTask("id")},
	{tool: "run_task", perm: auth.TasksWrite, roles: "adm", foreign: true, args: withTask("id", "confirm")},
	{tool: "list_runs", perm: auth.TasksRead, roles: "admv", foreign: true, args: withTask("task_id")},
	{tool: "get_run", perm: auth.TasksRead, roles: "admv", foreign: true, args: func(t *testing.T, e *mcpEnv) (map[string]any, string) {
		id := e.run(t).ID
		return map[string]any{"id": id}, id
	}},

	{tool: "register_tool", perm: auth.ToolsRegister, roles: "ad", args: func(*testing.T, *mcpEnv) (map[string]any, string) {
		return pluginArgs(), ""
	}},
	{tool: "unregister_tool", perm: auth.ToolsRegister, roles: "ad", foreign: true, args: func(t *testing.T, e *mcpEnv) (map[string]any, string) {
		spec := pluginArgs()
		l, err := e.plugins.Register(context.Background(), tenantA, toolsregistry.PluginSpec{
			Name: spec["name"].(string), Description: "From the MCP matrix.", URL: "https://plugins.example.com/t", Secret: "0123456789abcdef",
		})
		if err != nil {
			t.Fatal(err)
		}
		return map[string]any{"tool": l.Tool.Name}, l.Tool.Name
	}},
	{tool: "list_registry_tools", perm: auth.ToolsRegister, roles: "ad", args: func(*testing.T, *mcpEnv) (map[string]any, string) {
		return nil, ""
	}},
	{tool: "call_plugin_tool", perm: auth.TasksWrite, roles: "adm", foreign: true, args: func(*testing.T, *mcpEnv) (map[string]any, string) {
		return map[string]any{"tool": "acme.echo", "arguments": map[string]any{"text": "hi"}}, "acme.echo"
	}},
}

// mcpResourceCase is one MCP resource template of the matrix. Resources
// are all read-only: a role that may read them reads, tenant B's admin
// cannot find A's.
type mcpResourceCase struct {
	template string
	perm     auth.Permission
	roles    string
	// uri returns the URI of a fresh resource of tenant A, and its id.
	uri func(t *testing.T, e *mcpEnv) (uri, id string)
}

// mcpResourceCases is every MCP resource template with its exact
// outcomes. A template served without a row here fails TestMCPMatrix.
var mcpResourceCases = []mcpResourceCase{
	{template: "vigil://threads/{id}/events", perm: auth.ThreadsRead, roles: "admv", uri: func(_ *testing.T, e *mcpEnv) (string, string) {
		return mcpserver.ThreadEventsURI(e.thread), e.thread
	}},
	{template: "vigil://tasks/{id}", perm: auth.TasksRead, roles: "admv", uri: func(t *testing.T, e *mcpEnv) (string, string) {
		id := e.task(t).ID
		return mcpserver.TaskURI(id), id
	}},
	{template: "vigil://runs/{id}", perm: auth.TasksRead, roles: "admv", uri: func(t *testing.T, e *mcpEnv) (string, string) {
		id := e.run(t).ID
		return mcpserver.RunURI(id), id
	}},
}

// mcpCredential is one column of the MCP matrix.
type mcpCredential struct {
	name   string
	header string
	// role is the principal's role's letter for tenant A, 'B' for tenant
	// B's admin, 0 for credentials that must be refused at connect.
	role byte
	// roleName is the role, as a missing permission's error names it.
	roleName string
}

// mcpCredentials are the principals of the MCP matrix, as TestRouteMatrix
// has them: refused ones, tenant B's admin, and each role of tenant A (by
// API key, the developer by JWT).
func (e *mcpEnv) mcpCredentials(t *testing.T) []mcpCredential {
	t.Helper()
	revoked := e.key(t, tenantA, "alice", auth.Admin)
	id, _, _ := auth.ParseKey(strings.TrimPrefix(revoked, "Bearer "))
	if err := e.keys.Revoke(context.Background(), tenantA, id); err != nil {
		t.Fatal(err)
	}
	return []mcpCredential{
		{name: "none"},
		{name: "revoked key", header: revoked},
		{name: "expired JWT", header: e.jwt(t, tenantA, "alice", auth.Admin, func(c jwt.MapClaims) {
			c["iat"] = e.now().Add(-time.Hour).Unix()
			c["exp"] = e.now().Add(-time.Minute).Unix()
		})},
		{name: "wrong audience JWT", header: e.jwt(t, tenantA, "alice", auth.Admin, func(c jwt.MapClaims) { c["aud"] = "another-service" })},
		{name: "garbage", header: "Bearer not-a-credential"},
		{name: "tenant B admin", header: e.key(t, tenantB, "bob", auth.Admin), role: 'B', roleName: auth.Admin},
		{name: "A admin", header: e.key(t, tenantA, "alice", auth.Admin), role: 'a', roleName: auth.Admin},
		{name: "A developer (JWT)", header: e.jwt(t, tenantA, "dave", auth.Developer, nil), role: 'd', roleName: auth.Developer},
		{name: "A member", header: e.key(t, tenantA, "mary", auth.Member), role: 'm', roleName: auth.Member},
		{name: "A viewer", header: e.key(t, tenantA, "vic", auth.Viewer), role: 'v', roleName: auth.Viewer},
	}
}

// TestMCPMatrix walks every MCP tool and resource template, over real
// streamable HTTP in both protocol generations, as: no credentials, a
// revoked key, an expired JWT, a JWT for another audience and a malformed
// one (each refused with HTTP 401 at connect, naming the protected
// resource metadata); tenant B's admin (A's things are not found, exactly
// as things that do not exist); and each role of tenant A (allowed, or an
// isError result naming the missing permission).
func TestMCPMatrix(t *testing.T) {
	e := serveMCPAuth(t)
	creds := e.mcpCredentials(t)

	// Every tool and template served has a row, and every row is served.
	var tools []string
	for name := range e.mcp.MCPServer().ListTools() {
		tools = append(tools, name)
	}
	for _, tc := range mcpToolCases {
		if !slices.Contains(tools, tc.tool) {
			t.Errorf("the MCP matrix has a row for tool %s, which is not served", tc.tool)
		}
	}
	for _, name := range tools {
		if !slices.ContainsFunc(mcpToolCases, func(tc mcpToolCase) bool { return tc.tool == name }) {
			t.Errorf("MCP tool %s has no row in the matrix: add one to mcpToolCases", name)
		}
	}
	admin, err := e.connectMCP(t, mcpModern, e.key(t, tenantA, "alice", auth.Admin))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	listed, err := admin.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var templates []string
	for _, rt := range listed.ResourceTemplates {
		templates = append(templates, rt.URITemplate.Raw())
	}
	for _, rc := range mcpResourceCases {
		if !slices.Contains(templates, rc.template) {
			t.Errorf("the MCP matrix has a row for resource %s, which is not served", rc.template)
		}
	}
	for _, tpl := range templates {
		if !slices.ContainsFunc(mcpResourceCases, func(rc mcpResourceCase) bool { return rc.template == tpl }) {
			t.Errorf("MCP resource template %s has no row in the matrix: add one to mcpResourceCases", tpl)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	wantMetadata := e.URL + "/.well-known/oauth-protected-resource/mcp"
	for _, gen := range []string{mcpSession, mcpModern} {
		for _, cred := range creds {
			t.Run(gen+"/"+cred.name, func(t *testing.T) {
				c, err := e.connectMCP(t, gen, cred.header)
				if cred.role == 0 {
					var denied *transport.AuthorizationRequiredError
					if !errors.As(err, &denied) {
						t.Fatalf("connect: %v, want HTTP 401", err)
					}
					if denied.ResourceMetadataURL != wantMetadata {
						t.Errorf("401 names resource metadata %q, want %q", denied.ResourceMetadataURL, wantMetadata)
					}
					return
				}
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				for _, tc := range mcpToolCases {
					t.Run(tc.tool, func(t *testing.T) { checkToolCase(t, e, c, cred, tc) })
				}
				for _, rc := range mcpResourceCases {
					t.Run(rc.template, func(t *testing.T) { checkResourceCase(t, e, c, cred, rc) })
				}
			})
		}
	}
}

// checkToolCase calls tc's tool as cred and checks the exact outcome.
func checkToolCase(t *testing.T, e *mcpEnv, c *client.Client, cred mcpCredential, tc mcpToolCase) {
	args, id := tc.args(t, e)
	res := callMCPTool(t, c, tc.tool, args)
	switch {
	case cred.role == 'B' && tc.foreign:
		got := mcpText(res)
		if !res.IsError || !strings.HasPrefix(got, "not found: ") {
			t.Fatalf("tenant B: %s (isError %v), want not found", got, res.IsError)
		}
		// Not found exactly as something that does not exist is.
		unknown := unknownLike(id)
		twin := maps.Clone(args)
		for k, v := range twin {
			if v == id {
				twin[k] = unknown
			}
		}
		other := callMCPTool(t, c, tc.tool, twin)
		if !other.IsError || strings.ReplaceAll(mcpText(other), unknown, id) != got {
			t.Errorf("tenant B on A's %s: %q; on an unknown one: %q: the answers differ", id, got, mcpText(other))
		}
	case cred.role == 'B' || strings.IndexByte(tc.roles, cred.role) >= 0:
		if res.IsError {
			t.Fatalf("refused: %s", mcpText(res))
		}
		if res.StructuredContent == nil {
			t.Errorf("no structured content: %s", mcpText(res))
		}
	default:
		want := "not allowed: missing permission " + string(tc.perm) + " (role " + cred.roleName + ")"
		if got := mcpText(res); !res.IsError || got != want {
			t.Fatalf("%q (isError %v), want %q", got, res.IsError, want)
		}
	}
}

// checkResourceCase reads rc's resource as cred and checks the exact
// outcome.
func checkResourceCase(t *testing.T, e *mcpEnv, c *client.Client, cred mcpCredential, rc mcpResourceCase) {
	uri, id := rc.uri(t, e)
	contents, err := readMCPResource(c, uri)
	switch {
	case cred.role == 'B':
		if err == nil || !strings.Contains(err.Error(), "not found: ") {
			t.Fatalf("tenant B reads %s: %v, want not found", uri, err)
		}
		unknown := unknownLike(id)
		_, other := readMCPResource(c, strings.Replace(uri, id, unknown, 1))
		if other == nil || strings.ReplaceAll(other.Error(), unknown, id) != err.Error() {
			t.Errorf("tenant B on A's %s: %v; on an unknown one: %v: the answers differ", uri, err, other)
		}
	case strings.IndexByte(rc.roles, cred.role) >= 0:
		if err != nil {
			t.Fatalf("read %s: %v", uri, err)
		}
		if len(contents) != 1 {
			t.Fatalf("read %s: %d contents", uri, len(contents))
		}
		tc, ok := contents[0].(mcp.TextResourceContents)
		if !ok || tc.URI != uri || !json.Valid([]byte(tc.Text)) || !strings.Contains(tc.Text, id) {
			t.Errorf("read %s: %+v", uri, contents[0])
		}
	default:
		want := "not allowed: missing permission " + string(rc.perm) + " (role " + cred.roleName + ")"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("read %s: %v, want %q", uri, err, want)
		}
	}
}

// unknownLike returns an id of the same form as id (its prefix up to the
// first '_' or '.') that names nothing.
func unknownLike(id string) string {
	prefix := id[:strings.IndexAny(id, "_.")+1]
	return prefix + "x" + vigil.NewID("")
}

func callMCPTool(t *testing.T, c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

func readMCPResource(c *client.Client, uri string) ([]mcp.ResourceContents, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.ReadResourceRequest{}
	req.Params.URI = uri
	res, err := c.ReadResource(ctx, req)
	if err != nil {
		return nil, err
	}
	return res.Contents, nil
}

func mcpText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

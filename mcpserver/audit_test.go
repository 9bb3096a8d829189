package mcpserver_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"

	"github.com/vigilhq/vigil/audit"
	"github.com/vigilhq/vigil/mcpserver"
	"github.com/vigilhq/vigil/streams"
)

// TestToolCallsAudited calls the tools that change state, and some that
// are refused or change nothing, and checks what the tenants' audit logs
// hold: one entry per change and per refusal, with the actor and roles of
// the caller, in order.
func TestToolCallsAudited(t *testing.T) {
	w := newWorld(t, nil, asTenant)
	headers := func(user, roles string) clientConfig {
		return clientConfig{headers: map[string]string{"X-Tenant": "acme", "X-User": user, "X-Roles": roles}}
	}
	dev := w.httpClient(t, modern, headers("dana", "developer"))
	member := w.httpClient(t, modern, headers("mo", "member"))
	other := w.httpClient(t, modern, clientConfig{headers: map[string]string{"X-Tenant": "globex", "X-Roles": "admin"}})

	var created mcpserver.CreateTaskOutput
	ok(t, callTool(t, dev, "create_task", map[string]any{"request": "every day at 8am tell me the weather in Rome", "tz": "Europe/Rome"}), &created)
	id := created.Task.ID
	// Asking for input creates nothing; reading changes nothing; a failed
	// call changes nothing.
	ok(t, callTool(t, dev, "create_task", map[string]any{"request": "every day at 8am tell me the weather"}), nil)
	ok(t, callTool(t, dev, "get_task", map[string]any{"id": id}), nil)
	failed(t, callTool(t, dev, "pause_task", map[string]any{"id": id}), "conflict:")
	ok(t, callTool(t, dev, "confirm_task", map[string]any{"id": id}), nil)
	ok(t, callTool(t, dev, "pause_task", map[string]any{"id": id}), nil)
	var tool mcpserver.ToolOutput
	ok(t, callTool(t, dev, "register_tool", registerArgs(plugin(t), "acme.temp")), &tool)
	failed(t, callTool(t, member, "register_tool", registerArgs("https://example.com/tool", "acme.x")), "not allowed: missing permission tools:register")
	failed(t, callTool(t, dev, "unregister_tool", map[string]any{"tool": "echo"}), "not allowed:")
	ok(t, callTool(t, dev, "unregister_tool", map[string]any{"tool": "acme.temp"}), nil)
	ok(t, callTool(t, dev, "delete_task", map[string]any{"id": id}), nil)
	ok(t, callTool(t, other, "list_tasks", nil), nil)

	// The reserved threads, the audit log and a session's stream, are no
	// thread to the thread tools, whatever the role.
	viewer := w.httpClient(t, modern, headers("vi", "viewer"))
	session := mcpserver.ThreadPrefix + dev.GetSessionId()
	for _, c := range []*client.Client{dev, member, other, viewer} {
		for _, th := range []string{audit.Thread, session} {
			failed(t, callTool(t, c, "get_events", map[string]any{"thread_id": th}), "not found:")
			var page any
			if err := readResource(t, c, mcpserver.ThreadEventsURI(th), &page); err == nil || !strings.Contains(err.Error(), "no resource") {
				t.Errorf("reading thread %s as a resource: %v, %v; want not found", th, page, err)
			}
		}
	}

	rec := &audit.Recorder{Log: w.db}
	page, err := rec.Read(context.Background(), "acme", streams.ID{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	devRoles, memberRoles := []string{"developer"}, []string{"member"}
	want := []audit.Entry{
		{Actor: "dana", Roles: devRoles, Action: "task.create", Target: id, Outcome: audit.Succeeded, Tool: "create_task"},
		{Actor: "dana", Roles: devRoles, Action: "task.confirm", Target: id, Outcome: audit.Succeeded, Tool: "confirm_task"},
		{Actor: "dana", Roles: devRoles, Action: "task.pause", Target: id, Outcome: audit.Succeeded, Tool: "pause_task"},
		{Actor: "dana", Roles: devRoles, Action: "tool.register", Target: tool.Tool.Ref, Outcome: audit.Succeeded, Tool: "register_tool"},
		{Actor: "mo", Roles: memberRoles, Action: audit.ActionDenied, Outcome: audit.Denied, Permission: mcpserver.PermToolsRegister, Tool: "register_tool"},
		{Actor: "dana", Roles: devRoles, Action: audit.ActionDenied, Outcome: audit.Denied, Tool: "unregister_tool"},
		{Actor: "dana", Roles: devRoles, Action: "tool.unregister", Target: "acme.temp", Outcome: audit.Succeeded, Tool: "unregister_tool"},
		{Actor: "dana", Roles: devRoles, Action: "task.delete", Target: id, Outcome: audit.Succeeded, Tool: "delete_task"},
	}
	if len(page.Entries) != len(want) {
		t.Fatalf("%d entries, want %d:\n%s", len(page.Entries), len(want), asJSON(page.Entries))
	}
	traces := map[string]bool{}
	for i, got := range page.Entries {
		if got.TraceID == "" || traces[got.TraceID] {
			t.Errorf("entry %d has trace id %q, want the call's own", i, got.TraceID)
		}
		traces[got.TraceID] = true
		w := want[i]
		w.ID, w.Time, w.TraceID = got.ID, got.Time, got.TraceID
		if asJSON(got) != asJSON(w) {
			t.Errorf("entry %d:\n got %s\nwant %s", i, asJSON(got), asJSON(w))
		}
	}
	if tool.Tool.Ref != "acme.temp@1" {
		t.Errorf("registered %q", tool.Tool.Ref)
	}
	if g, err := rec.Read(context.Background(), "globex", streams.ID{}, 0); err != nil || len(g.Entries) != 0 {
		t.Errorf("globex's audit log: %+v, %v", g.Entries, err)
	}
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

package mcpserver_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/mcpserver"
	"github.com/vigilhq/vigil/streams"
)

var wantTools = []string{
	"confirm_task", "create_task", "delete_task", "get_events", "get_run", "get_task",
	"list_registry_tools", "list_runs", "list_tasks", "pause_task", "register_tool",
	"resume_task", "run_task", "unregister_tool", "update_task",
}

func listTools(t *testing.T, c *client.Client) []mcp.Tool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Tools
}

func checkTools(t *testing.T, tools []mcp.Tool) {
	t.Helper()
	var names []string
	for _, tool := range tools {
		names = append(names, tool.Name)
		raw, err := json.Marshal(tool)
		if err != nil {
			t.Fatal(err)
		}
		var wire map[string]map[string]any
		_ = json.Unmarshal(raw, &wire)
		for _, what := range []string{"inputSchema", "outputSchema"} {
			if s := wire[what]; s["type"] != "object" {
				t.Errorf("%s: %s %v, want an object schema", tool.Name, what, s)
			}
		}
		if tool.Description == "" {
			t.Errorf("%s: no description", tool.Name)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, wantTools) {
		t.Fatalf("tools %v\nwant %v", names, wantTools)
	}
}

func TestListToolsHTTP(t *testing.T) {
	w := newWorld(t, nil, nil)
	for _, gen := range generations {
		t.Run(gen, func(t *testing.T) {
			checkTools(t, listTools(t, w.httpClient(t, gen, clientConfig{})))
		})
	}
}

func TestStdio(t *testing.T) {
	w := newWorld(t, nil, nil)
	for _, gen := range generations {
		t.Run(gen, func(t *testing.T) { testStdio(t, w.stdioClient(t, gen)) })
	}
}

func testStdio(t *testing.T, c *client.Client) {
	checkTools(t, listTools(t, c))

	// The stdio client acts for the local principal.
	var out mcpserver.CreateTaskOutput
	ok(t, callTool(t, c, "create_task", map[string]any{"request": "every day at 8am tell me the weather in Paris", "tz": "Europe/Paris"}), &out)
	if out.Status != mcpserver.StatusDraft || out.Task == nil || out.Task.Tenant != vigil.DefaultTenant || out.Task.Owner != "local" {
		t.Fatalf("create_task over stdio: %+v", out)
	}
	var ev mcpserver.GetEventsOutput
	ok(t, callTool(t, c, "get_events", map[string]any{"thread_id": out.Task.ThreadID}), &ev)
	if len(ev.Events) != 1 || ev.Events[0].Type != streams.TypeTaskStatus {
		t.Fatalf("events of the new task: %+v", ev.Events)
	}
}

func TestInputValidation(t *testing.T) {
	w := newWorld(t, nil, nil)
	for _, gen := range generations {
		t.Run(gen, func(t *testing.T) {
			c := w.httpClient(t, gen, clientConfig{})
			// An unknown argument and a limit out of range: mcp-go refuses
			// them against the generated schema, as a result the model reads.
			res := callTool(t, c, "get_events", map[string]any{"thread_id": "th_x", "limit": 9999, "colour": "red"})
			if !res.IsError {
				t.Fatalf("invalid arguments accepted: %s", text(res))
			}
			// A thread of no one: not found, as a tool result.
			failed(t, callTool(t, c, "get_events", map[string]any{"thread_id": "th_nobody"}), "not found:")
		})
	}
}

func TestGetEvents(t *testing.T) {
	w := newWorld(t, nil, nil)
	ctx := ctxOf(vigil.DefaultTenant)
	if err := w.db.CreateThread(ctx, streams.Thread{ID: "th_chat", Tenant: vigil.DefaultTenant, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var evs []streams.Event
	for i := range 5 {
		ev, err := streams.NewEvent(streams.Text{MessageID: "m", Text: string(rune('a' + i))})
		if err != nil {
			t.Fatal(err)
		}
		ev.TS = time.Now()
		evs = append(evs, ev)
	}
	ids, err := w.db.Append(ctx, vigil.DefaultTenant, "th_chat", evs)
	if err != nil {
		t.Fatal(err)
	}
	for _, gen := range generations {
		t.Run(gen, func(t *testing.T) {
			c := w.httpClient(t, gen, clientConfig{})
			var out mcpserver.GetEventsOutput
			ok(t, callTool(t, c, "get_events", map[string]any{"thread_id": "th_chat", "limit": 2}), &out)
			if len(out.Events) != 2 || !out.More || out.Next != ids[1].String() {
				t.Fatalf("first page: %d events, more %v, next %s", len(out.Events), out.More, out.Next)
			}
			ok(t, callTool(t, c, "get_events", map[string]any{"thread_id": "th_chat", "after": out.Next}), &out)
			if len(out.Events) != 3 || out.More || out.Events[0].ID != ids[2] {
				t.Fatalf("second page: %+v", out)
			}
			if p, _ := streams.Decode[streams.Text](out.Events[2]); p.Text != "e" {
				t.Fatalf("last event %+v", out.Events[2])
			}
			failed(t, callTool(t, c, "get_events", map[string]any{"thread_id": "th_chat", "after": "1-x"}), "input schema validation failed")
		})
	}
}

package mcpserver_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/vigilhq/vigil/mcpserver"
	"github.com/vigilhq/vigil/tasks"
)

// TestTenantIsolation: tenant B's clients can neither list, read,
// subscribe to, change, run nor delete tenant A's tasks, runs and threads,
// and do not see A's plugin tools nor hear of A's registrations.
func TestTenantIsolation(t *testing.T) {
	w := newWorld(t, nil, asTenant)
	a := map[string]string{"X-Tenant": "acme", "X-Roles": "admin"}
	b := map[string]string{"X-Tenant": "bolt", "X-Roles": "admin"}
	url := plugin(t)

	for _, gen := range generations {
		t.Run(gen, func(t *testing.T) {
			ca := w.httpClient(t, gen, clientConfig{headers: a})
			cb := w.httpClient(t, gen, clientConfig{headers: b})
			heardB := listen(cb)
			if gen == modern {
				subscribe(t, cb, heardB, true, "")
			}

			var created mcpserver.CreateTaskOutput
			ok(t, callTool(t, ca, "create_task", map[string]any{"request": "every day at 8am tell me the weather in Oslo"}), &created)
			task := created.Task
			var run mcpserver.RunOutput
			ok(t, callTool(t, ca, "run_task", map[string]any{"id": task.ID}), &run)
			tool := "acme.temp_" + map[string]string{legacy: "s", modern: "m"}[gen]
			ok(t, callTool(t, ca, "register_tool", registerArgs(url, tool)), nil)

			for _, c := range []struct {
				tool string
				args map[string]any
			}{
				{"get_task", map[string]any{"id": task.ID}},
				{"confirm_task", map[string]any{"id": task.ID}},
				{"update_task", map[string]any{"id": task.ID, "title": "mine now"}},
				{"pause_task", map[string]any{"id": task.ID}},
				{"resume_task", map[string]any{"id": task.ID}},
				{"run_task", map[string]any{"id": task.ID}},
				{"list_runs", map[string]any{"task_id": task.ID}},
				{"get_run", map[string]any{"id": run.Run.ID}},
				{"delete_task", map[string]any{"id": task.ID}},
				{"get_events", map[string]any{"thread_id": task.ThreadID}},
				{"unregister_tool", map[string]any{"tool": tool}},
			} {
				t.Run(c.tool, func(t *testing.T) {
					failed(t, callTool(t, cb, c.tool, c.args), "not found:")
				})
			}
			t.Run("list_tasks", func(t *testing.T) {
				var list mcpserver.ListTasksOutput
				ok(t, callTool(t, cb, "list_tasks", nil), &list)
				for _, other := range list.Tasks {
					if other.ID == task.ID {
						t.Fatal("B lists A's task")
					}
				}
			})
			t.Run("list_registry_tools", func(t *testing.T) {
				var list mcpserver.ListRegistryToolsOutput
				ok(t, callTool(t, cb, "list_registry_tools", nil), &list)
				for _, info := range list.Tools {
					if info.Name == tool {
						t.Fatal("B sees A's plugin tool")
					}
				}
			})
			t.Run("resources", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				list, err := cb.ListResources(ctx, mcp.ListResourcesRequest{})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range list.Resources {
					if r.URI == mcpserver.TaskURI(task.ID) {
						t.Fatal("B lists A's task resource")
					}
				}
				var v any
				for _, uri := range []string{mcpserver.TaskURI(task.ID), mcpserver.RunURI(run.Run.ID), mcpserver.ThreadEventsURI(task.ThreadID)} {
					if err := readResource(t, cb, uri, &v); err == nil || !strings.Contains(err.Error(), "not found") {
						t.Errorf("B reads %s: %v", uri, err)
					}
				}
			})
			t.Run("subscribe", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				var err error
				if gen == legacy {
					req := mcp.SubscribeRequest{}
					req.Params.URI = mcpserver.TaskURI(task.ID)
					err = cb.Subscribe(ctx, req)
				} else {
					// (A client listens once at a time: use another.)
					other := w.httpClient(t, gen, clientConfig{headers: b})
					err = other.Listen(ctx, mcp.SubscriptionFilter{ResourceSubscriptions: []string{mcpserver.TaskURI(task.ID)}})
				}
				if err == nil || !strings.Contains(err.Error(), "not found") {
					t.Fatalf("B subscribes to A's task: %v", err)
				}
			})

			// A's task is untouched.
			got, err := w.mgr.Get(ctxOf("acme"), task.ID)
			if err != nil || got.Status != tasks.StatusDraft || got.Title != task.Title {
				t.Fatalf("A's task after B's attempts: %+v, %v", got, err)
			}
			// B heard nothing of A's registration.
			heardB.none(t, mcp.MethodNotificationToolsListChanged, 300*time.Millisecond)
		})
	}
}

// TestSessionBinding: a session-protocol session belongs to the tenant and
// user that opened it; anyone else presenting its id is answered 404.
func TestSessionBinding(t *testing.T) {
	w := newWorld(t, nil, asTenant)
	ca := w.httpClient(t, legacy, clientConfig{headers: map[string]string{"X-Tenant": "acme"}})
	id := ca.GetSessionId()
	if id == "" {
		t.Fatal("no session id")
	}
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`
	for _, c := range []struct {
		tenant, user string
		want         int
	}{
		{"acme", "", http.StatusOK},
		{"bolt", "", http.StatusNotFound},
		{"acme", "mallory", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(http.MethodPost, w.url, bytes.NewBufferString(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", id)
		req.Header.Set("Mcp-Protocol-Version", mcp.ProtocolVersion20251125)
		req.Header.Set("X-Tenant", c.tenant)
		if c.user != "" {
			req.Header.Set("X-User", c.user)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s/%s on acme's session: %d, want %d", c.tenant, c.user, resp.StatusCode, c.want)
		}
	}
}

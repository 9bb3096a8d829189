package tasks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// mountRemote serves a small MCP server over streamable HTTP on a
// loopback test server and mounts it in the rig's registry for acme
// under namespace: tool_a adds a and b (structured content), tool_b
// greets by name (text) and refuses "nobody" (isError).
func (r *rig) mountRemote(t *testing.T, namespace string) {
	t.Helper()
	s := server.NewMCPServer("test-remote", "1.0.0", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("tool_a", mcp.WithDescription("Adds a and b."),
		mcp.WithNumber("a", mcp.Required()), mcp.WithNumber("b", mcp.Required())),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			a, b := req.GetFloat("a", 0), req.GetFloat("b", 0)
			return mcp.NewToolResultStructured(map[string]float64{"sum": a + b}, fmt.Sprint(a+b)), nil
		})
	s.AddTool(mcp.NewTool("tool_b", mcp.WithDescription("Greets someone."), mcp.WithString("name", mcp.Required())),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			name := req.GetString("name", "")
			if name == "nobody" {
				return mcp.NewToolResultError("nobody is not here"), nil
			}
			return mcp.NewToolResultText("hello, " + name), nil
		})
	srv := httptest.NewServer(server.NewStreamableHTTPServer(s))
	t.Cleanup(srv.Close)
	guard, err := toolsregistry.NewGuard(toolsregistry.GuardOptions{Allow: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := r.reg.Mount(ctx, toolsregistry.RemoteSpec{Tenant: "acme", Namespace: namespace, URL: srv.URL + "/mcp", Guard: guard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() }) // before srv.Close, which waits for open streams
}

// TestRemoteToolSteps: a task's steps call the tools of a mounted remote
// MCP server by their namespaced names, through the StepExecutor, with
// the remote's results as the step outputs.
func TestRemoteToolSteps(t *testing.T) {
	r := newRig(t)
	r.mountRemote(t, "calc")
	r.worker(t, nil)

	task := r.active(t, tasks.Spec{Title: "remote steps", Kind: tasks.KindLongRunning,
		Slots: map[string]any{"who": "ana"},
		Steps: []tasks.Step{
			{Tool: "calc.tool_a", Args: map[string]any{"a": 2, "b": 40}},
			{Tool: "calc.tool_b", Args: map[string]any{"name": "{{who}}"}},
		}})
	run, err := r.m.RunNow(r.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := r.waitRun(t, run.ID, tasks.RunSucceeded)
	var res struct{ Outputs []json.RawMessage }
	if err := json.Unmarshal(got.Result, &res); err != nil || len(res.Outputs) != 2 ||
		string(res.Outputs[0]) != `{"sum":42}` || string(res.Outputs[1]) != `"hello, ana"` {
		t.Errorf("result %s; want the remote's outputs", got.Result)
	}
	var tools []string
	for _, e := range r.events(t, task, streams.TypeToolResult) {
		p, err := streams.Decode[streams.ToolResult](e)
		if err != nil {
			t.Fatal(err)
		}
		tools = append(tools, p.Tool)
	}
	if !slices.Equal(tools, []string{"calc.tool_a", "calc.tool_b"}) {
		t.Errorf("tool_result events of %v", tools)
	}

	// The remote's isError fails the run at once: the arguments' fault,
	// which a retry would not mend.
	task = r.active(t, tasks.Spec{Title: "remote refusal", Kind: tasks.KindLongRunning,
		Steps: []tasks.Step{{Tool: "calc.tool_b", Args: map[string]any{"name": "nobody"}}}})
	if run, err = r.m.RunNow(r.ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	got = r.waitRun(t, run.ID, tasks.RunFailed)
	if got.Attempt != 1 || got.ErrorClass != tasks.ErrorPermanent || !strings.Contains(got.Error, "nobody is not here") {
		t.Errorf("refused: attempt %d, class %q, error %q; want one permanent attempt with the remote's text", got.Attempt, got.ErrorClass, got.Error)
	}
	if n := len(r.events(t, task, streams.TypeToolError)); n != 1 {
		t.Errorf("%d tool_error events; want 1", n)
	}
}

package agent_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/agent"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// TestTaskAgentUserQuota: a run's tool calls count against its task
// owner's quota of tool calls per minute (toolsregistry.Options.UserRate):
// the third call of ana's run within the minute is refused, naming her
// and the quota, and bob's run has two calls of its own.
func TestTaskAgentUserQuota(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := func() time.Time { return taNow }
	m := tasks.NewManager(tasks.Options{Store: db, Log: db, Now: now})
	reg := toolsregistry.New(toolsregistry.Options{Now: now, UserRate: func(string) int { return 2 }})
	step := toolsregistry.Tool{Name: "step", Version: 1, Description: "a test tool: step", InputSchema: json.RawMessage(`{"type":"object"}`)}
	if err := reg.Register(step, toolsregistry.HandlerFunc(func(context.Context, json.RawMessage) (toolsregistry.Output, error) {
		return toolsregistry.Output{Value: json.RawMessage(`"done"`)}, nil
	})); err != nil {
		t.Fatal(err)
	}
	ta, err := agent.NewTaskAgent(agent.TaskAgentOptions{Model: callsTool("step", `{}`), Registry: reg, Store: db, Now: now,
		MaxSteps: 3, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	spec := tasks.Spec{Title: "Steps", Kind: tasks.KindLongRunning, Instruction: "Make steps.", Tools: []string{"step"}}
	run := func(user string) *taReporter {
		ctx := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: user})
		task, err := m.Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		rep := &taReporter{}
		r := tasks.Run{ID: vigil.NewID("run_"), Tenant: "acme", TaskID: task.ID, Spec: task.Spec, Slot: taNow, Attempt: 1, Status: tasks.RunRunning, CreatedAt: taNow}
		_, _ = ta.Execute(context.Background(), r, rep) // the worker's context: no principal
		return rep
	}
	errorsOf := func(rep *taReporter) []streams.ToolError { return ofType[streams.ToolError](t, rep.events) }

	ana := run("ana")
	results := ofType[streams.ToolResult](t, ana.events)
	errs := errorsOf(ana)
	if len(results) != 2 || len(errs) == 0 || !strings.Contains(errs[0].Error, "user ana is over the quota of 2 tool calls per minute") {
		t.Errorf("ana's run: %d results, tool errors %+v; want 2 results, then refused naming ana and the quota", len(results), errs)
	}
	// bob's bucket is his own: ana's spent quota does not touch it.
	bob := run("bob")
	if errs := errorsOf(bob); len(ofType[streams.ToolResult](t, bob.events)) != 2 || len(errs) == 0 || !strings.Contains(errs[0].Error, "user bob is over") {
		t.Errorf("bob's run: tool errors %+v; want 2 results, then refused naming bob", errs)
	}
}

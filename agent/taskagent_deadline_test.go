package agent_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/agent"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// TestTaskAgentDeadlineAndMaxRunDuration: over the bolt file with a real
// worker, a run whose one tool call takes 200ms, under an agent whose
// Deadline is 50ms. A tenant's max run duration reaches the agent as the
// deadline of the attempt's context, and it governs whether it is longer
// or shorter than the agent's Deadline; without one the Deadline applies.
func TestTaskAgentDeadlineAndMaxRunDuration(t *testing.T) {
	cases := []struct {
		name      string
		maxRun    time.Duration // the tenant's; 0 is none
		deadline  time.Duration // the agent's
		status    tasks.RunStatus
		wantError string
	}{
		{name: "longer max run duration is honoured", maxRun: 2 * time.Second, deadline: 50 * time.Millisecond, status: tasks.RunSucceeded},
		{name: "no max run duration: the deadline applies", deadline: 50 * time.Millisecond, status: tasks.RunFailed,
			wantError: "took longer than its deadline of 50ms"},
		{name: "shorter max run duration governs", maxRun: 50 * time.Millisecond, deadline: 2 * time.Second, status: tasks.RunFailed,
			wantError: "the run took longer than 50ms, the most one attempt may take for tenant acme (its max run duration)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newTARig(t)
			slow := toolsregistry.Tool{Name: "slow", Version: 1, Description: "a test tool that takes 200ms", InputSchema: json.RawMessage(`{"type":"object"}`)}
			err := r.reg.Register(slow, toolsregistry.HandlerFunc(func(ctx context.Context, _ json.RawMessage) (toolsregistry.Output, error) {
				select {
				case <-time.After(200 * time.Millisecond):
					return toolsregistry.Output{Value: json.RawMessage(`"done slowly"`)}, nil
				case <-ctx.Done():
					return toolsregistry.Output{}, context.Cause(ctx)
				}
			}))
			if err != nil {
				t.Fatal(err)
			}
			var turns atomic.Int32
			model := modelFunc(func(context.Context, []agent.Message, []agent.Tool, agent.Options) (agent.Response, error) {
				if turns.Add(1) == 1 {
					return agent.Response{ToolCalls: []agent.ToolCall{{ID: "c1", Name: "slow", Arguments: json.RawMessage(`{}`)}}}, nil
				}
				return agent.Response{Text: "The slow tool is done.", Source: "test"}, nil
			})
			ta, err := agent.NewTaskAgent(agent.TaskAgentOptions{
				Model: model, Registry: r.reg, Store: r.db, Now: r.clock.Now, Logger: slog.New(slog.DiscardHandler), Deadline: c.deadline,
			})
			if err != nil {
				t.Fatal(err)
			}
			w := tasks.NewWorker(tasks.WorkerOptions{
				Store: r.db, Queue: r.q, Log: r.db, Executor: ta, Now: r.clock.Now, Logger: slog.New(slog.DiscardHandler),
				MaxRunDuration: func(tenant string) time.Duration {
					if tenant != "acme" {
						t.Errorf("MaxRunDuration(%q); want acme's", tenant)
					}
					return c.maxRun
				},
			})
			w.Start(context.Background())
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := w.Stop(ctx); err != nil {
					t.Errorf("Stop: %v", err)
				}
			})

			_, run := r.runNow(t, tasks.Spec{Title: "Slow", Kind: tasks.KindLongRunning, Instruction: "Call the slow tool.", Tools: []string{"slow"}})
			var got tasks.Run
			taWait(t, "the run to end", func() bool {
				got, err = r.db.Run(r.ctx, "acme", run.ID)
				return err == nil && got.Status.Terminal()
			})
			if got.Status != c.status {
				t.Fatalf("the run %s (error %q); want it %s", got.Status, got.Error, c.status)
			}
			if c.wantError == "" {
				if !strings.Contains(string(got.Result), "The slow tool is done.") {
					t.Errorf("result %s; want the model's answer after the slow call", got.Result)
				}
				return
			}
			if got.ErrorClass != tasks.ErrorPermanent || !strings.Contains(got.Error, c.wantError) {
				t.Errorf("error %q (class %s); want a permanent one containing %q", got.Error, got.ErrorClass, c.wantError)
			}
		})
	}
}

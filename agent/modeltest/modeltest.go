// Package modeltest is the conformance suite of agent.Model: every source
// of assistant turns (Offline, Sampling over a fake client, LangChain over
// scripted HTTP servers, Fallback) runs it, so that the agent loop can rely
// on the contract stated on agent.Model whatever answers.
package modeltest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/agent"
)

// Run checks the model that newModel returns against agent.Model's
// contract. newModel is called once per subtest. The model must answer a
// greeting with text when no tools are offered, and accept a conversation
// that holds an answered tool call; what it says is not checked.
func Run(t *testing.T, newModel func(t *testing.T) agent.Model) {
	t.Run("Text", func(t *testing.T) {
		m := newModel(t)
		var deltas []string
		resp, err := m.Generate(context.Background(), greeting(), nil, agent.Options{
			OnDelta: func(d string) { deltas = append(deltas, d) },
		})
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		if len(resp.ToolCalls) != 0 {
			t.Errorf("no tools offered, but the reply calls %+v", resp.ToolCalls)
		}
		if resp.Text == "" {
			t.Error("the reply has no text")
		}
		if got := strings.Join(deltas, ""); got != resp.Text {
			t.Errorf("the deltas add up to %q, the text is %q", got, resp.Text)
		}
		if resp.Source == "" {
			t.Error("Response.Source is empty")
		}
	})

	t.Run("ToolCallsAreWellFormed", func(t *testing.T) {
		m := newModel(t)
		msgs := append(greeting(), agent.Message{Role: agent.RoleUser, Content: "Please echo the word vigil with the echo tool."})
		var deltas []string
		resp, err := m.Generate(context.Background(), msgs, []agent.Tool{echoTool()}, agent.Options{
			OnDelta: func(d string) { deltas = append(deltas, d) },
		})
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		seen := map[string]bool{}
		for _, c := range resp.ToolCalls {
			if c.ID == "" || seen[c.ID] {
				t.Errorf("tool call %+v: the ID is empty or repeated", c)
			}
			seen[c.ID] = true
			if c.Name != "echo" {
				t.Errorf("tool call %+v names a tool that was not offered", c)
			}
		}
		if got := strings.Join(deltas, ""); got != resp.Text {
			t.Errorf("the deltas add up to %q, the text is %q", got, resp.Text)
		}
	})

	t.Run("AnsweredToolCall", func(t *testing.T) {
		m := newModel(t)
		call := agent.ToolCall{ID: "call-1", Name: "echo", Arguments: json.RawMessage(`{"text":"vigil"}`)}
		msgs := append(greeting(),
			agent.Message{Role: agent.RoleAssistant, ToolCalls: []agent.ToolCall{call}},
			agent.ToolResult(call, `{"text":"vigil"}`),
		)
		resp, err := m.Generate(context.Background(), msgs, []agent.Tool{echoTool()}, agent.Options{})
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		for _, c := range resp.ToolCalls {
			if c.ID == call.ID {
				t.Errorf("the reply reuses the ID %q of an earlier call", c.ID)
			}
		}
	})

	t.Run("InputUnchanged", func(t *testing.T) {
		m := newModel(t)
		call := agent.ToolCall{ID: "call-1", Name: "echo", Arguments: json.RawMessage(`{"text":"vigil"}`)}
		msgs := append(greeting(),
			agent.Message{Role: agent.RoleAssistant, Content: "Let me check.", ToolCalls: []agent.ToolCall{call}},
			agent.ToolResult(call, `{"text":"vigil"}`),
			agent.Message{Role: agent.RoleUser, Content: "Thanks. Echo it again?"},
		)
		tools := []agent.Tool{echoTool()}
		steps := []agent.Step{{Tool: "echo", Args: json.RawMessage(`{"text":"again"}`)}}
		wantMsgs, wantTools, wantSteps := clone(t, msgs), clone(t, tools), clone(t, steps)
		if _, err := m.Generate(context.Background(), msgs, tools, agent.Options{Steps: steps}); err != nil {
			t.Fatalf("Generate: %v", err)
		}
		if !reflect.DeepEqual(msgs, wantMsgs) || !reflect.DeepEqual(tools, wantTools) || !reflect.DeepEqual(steps, wantSteps) {
			t.Error("Generate modified its input")
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		m := newModel(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		start := time.Now()
		_, err := m.Generate(ctx, greeting(), nil, agent.Options{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Generate with a cancelled context: err = %v, want one wrapping context.Canceled", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Generate took %s to notice the cancelled context", d)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		m := newModel(t)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				var n int
				_, err := m.Generate(context.Background(), greeting(), []agent.Tool{echoTool()}, agent.Options{
					OnDelta: func(string) { n++ },
				})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent Generate: %v", err)
			}
		}
	})
}

func greeting() []agent.Message {
	return []agent.Message{
		{Role: agent.RoleSystem, Content: "You are Vigil, an assistant that runs tasks for the user."},
		{Role: agent.RoleUser, Content: "Hello!"},
	}
}

func echoTool() agent.Tool {
	return agent.Tool{
		Name:        "echo",
		Description: "Returns its text.",
		Parameters:  json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`),
	}
}

// clone deep-copies v through JSON.
func clone[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

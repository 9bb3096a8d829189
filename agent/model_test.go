package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/agent"
	"github.com/vigilhq/vigil/agent/modeltest"
)

// Every source runs the conformance suite of agent.Model.
func TestModelConformance(t *testing.T) {
	t.Run("Offline", func(t *testing.T) {
		modeltest.Run(t, func(t *testing.T) agent.Model {
			return agent.Offline{Now: func() time.Time { return time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC) }}
		})
	})
	t.Run("Sampling", func(t *testing.T) {
		modeltest.Run(t, func(t *testing.T) agent.Model { return &agent.Sampling{Sampler: echoClient()} })
	})
	for _, c := range []struct {
		kind string
		srv  func(*testing.T, ...reply) *scripted
		path string
	}{
		{agent.ProviderOpenAI, openAIServer, "/v1"},
		{agent.ProviderAnthropic, anthropicServer, "/v1"},
		{agent.ProviderOllama, ollamaServer, ""},
	} {
		t.Run("LangChain/"+c.kind, func(t *testing.T) {
			modeltest.Run(t, func(t *testing.T) agent.Model {
				return newLangChain(t, c.kind, c.srv(t, textReply("Hello", " there."), textReply("Hi!")).URL+c.path)
			})
		})
	}
	t.Run("Fallback", func(t *testing.T) {
		modeltest.Run(t, func(t *testing.T) agent.Model {
			return &agent.Fallback{
				Primary:   newLangChain(t, agent.ProviderOpenAI, openAIServer(t, reply{status: 503}).URL+"/v1"),
				Secondary: agent.Offline{},
			}
		})
	})
}

// fakeSampler is a Sampler whose behaviour is a function.
type fakeSampler struct {
	create func(ctx context.Context, req agent.SamplingRequest) (agent.SamplingResult, error)
}

func (f fakeSampler) CreateMessage(ctx context.Context, req agent.SamplingRequest) (agent.SamplingResult, error) {
	return f.create(ctx, req)
}

// echoClient is a client's model that calls the echo tool when offered and
// greets otherwise.
func echoClient() fakeSampler {
	return fakeSampler{func(ctx context.Context, req agent.SamplingRequest) (agent.SamplingResult, error) {
		if err := ctx.Err(); err != nil {
			return agent.SamplingResult{}, err
		}
		if strings.Contains(req.SystemPrompt, "\necho: ") && !strings.Contains(req.Messages[len(req.Messages)-1].Text, "Result of tool call") {
			return agent.SamplingResult{Text: `{"tool_calls":[{"name":"echo","arguments":{"text":"vigil"}}]}`, Model: "fake"}, nil
		}
		return agent.SamplingResult{Text: "Hello from the client.", Model: "fake"}, nil
	}}
}

// Sampling carries the tools in the system prompt, reads the tool call back
// from the reply's JSON, and sends the result back as text.
func TestSampling(t *testing.T) {
	var reqs []agent.SamplingRequest
	replies := []string{
		"```json\n{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"date\": \"tomorrow\"}}]}\n```",
		"Tomorrow in Paris: sunny, 18°C.",
	}
	s := &agent.Sampling{Sampler: fakeSampler{func(_ context.Context, req agent.SamplingRequest) (agent.SamplingResult, error) {
		reqs = append(reqs, req)
		return agent.SamplingResult{Text: replies[len(reqs)-1], Model: "claude-test", StopReason: "endTurn"}, nil
	}}}
	var deltas []string
	opts := agent.Options{Temperature: 0.2, OnDelta: func(d string) { deltas = append(deltas, d) }}
	msgs := conversation()
	tools := []agent.Tool{weatherTool}
	first, err := s.Generate(context.Background(), msgs, tools, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := agent.ToolCall{ID: "sampling-2-0", Name: "get_weather", Arguments: json.RawMessage(`{"city": "Paris", "date": "tomorrow"}`)}
	if len(first.ToolCalls) != 1 || !reflect.DeepEqual(first.ToolCalls[0], want) || first.Text != "" || first.Source != "sampling:claude-test" {
		t.Fatalf("first turn: %+v", first)
	}
	if len(deltas) != 0 {
		t.Errorf("deltas %q for a tool call", deltas)
	}
	r := reqs[0]
	if r.MaxTokens != agent.DefaultSamplingMaxTokens || r.Temperature == nil || *r.Temperature != 0.2 ||
		!strings.HasPrefix(r.SystemPrompt, "You are Vigil. Today is 2026-11-22 in Europe/Paris.\n\nYou can call tools.") ||
		!strings.Contains(r.SystemPrompt, string(weatherTool.Parameters)) ||
		!reflect.DeepEqual(r.Messages, []agent.SamplingMessage{{Role: agent.RoleUser, Text: "What's the weather in Paris tomorrow?"}}) {
		t.Errorf("first request: %+v", r)
	}

	msgs = append(msgs, first.Message(), agent.ToolResult(first.ToolCalls[0], weatherResult))
	second, err := s.Generate(context.Background(), msgs, tools, opts)
	if err != nil {
		t.Fatal(err)
	}
	if second.Text != replies[1] || len(second.ToolCalls) != 0 || !reflect.DeepEqual(deltas, []string{replies[1]}) {
		t.Errorf("second turn: %+v, deltas %q", second, deltas)
	}
	got := reqs[1].Messages
	if len(got) != 3 || got[1].Role != agent.RoleAssistant || got[1].Text != `{"tool_calls":[{"name":"get_weather","arguments":{"city":"Paris","date":"tomorrow"}}]}` ||
		got[2].Role != agent.RoleUser || got[2].Text != "Result of tool call sampling-2-0 (get_weather):\n"+weatherResult {
		t.Errorf("second request's messages: %q", got)
	}
}

func TestSamplingErrors(t *testing.T) {
	refused := errors.New("the user declined the request")
	s := &agent.Sampling{Sampler: fakeSampler{func(context.Context, agent.SamplingRequest) (agent.SamplingResult, error) {
		return agent.SamplingResult{}, refused
	}}}
	if _, err := s.Generate(context.Background(), conversation(), nil, agent.Options{}); !errors.Is(err, refused) {
		t.Errorf("err = %v, want the client's refusal", err)
	}
	if _, err := s.Generate(context.Background(), []agent.Message{{Role: agent.RoleSystem, Content: "x"}}, nil, agent.Options{}); err == nil {
		t.Error("a conversation without messages to send: no error")
	}
}

// The offline model follows a task's declared steps one per turn, then
// answers with their results.
func TestOfflineSteps(t *testing.T) {
	notify := agent.Tool{Name: "notify", Description: "Sends a notification."}
	tools := []agent.Tool{weatherTool, notify}
	steps := []agent.Step{
		{Tool: "get_weather", Args: json.RawMessage(`{"city":"北京","date":"2026-11-23"}`)},
		{Tool: "notify"},
	}
	var m agent.Offline
	msgs := []agent.Message{{Role: agent.RoleSystem, Content: "Run the task."}, {Role: agent.RoleUser, Content: "Run the weather task for 北京."}}
	results := []string{`{"forecast":"晴"}`, `{"sent":true}`}
	for i, step := range steps {
		resp, err := m.Generate(context.Background(), msgs, tools, agent.Options{Steps: steps})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.ToolCalls) != 1 || resp.ToolCalls[0].Name != step.Tool || resp.Text != "" {
			t.Fatalf("turn %d: %+v, want a call of %s", i, resp, step.Tool)
		}
		if want := string(step.Args); want != "" && string(resp.ToolCalls[0].Arguments) != want || want == "" && string(resp.ToolCalls[0].Arguments) != "{}" {
			t.Errorf("turn %d: arguments %s", i, resp.ToolCalls[0].Arguments)
		}
		again, _ := m.Generate(context.Background(), msgs, tools, agent.Options{Steps: steps})
		if !reflect.DeepEqual(resp, again) {
			t.Errorf("turn %d: not deterministic: %+v then %+v", i, resp, again)
		}
		msgs = append(msgs, resp.Message(), agent.ToolResult(resp.ToolCalls[0], results[i]))
	}
	resp, err := m.Generate(context.Background(), msgs, tools, agent.Options{Steps: steps})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != strings.Join(results, "\n") || len(resp.ToolCalls) != 0 {
		t.Errorf("final turn: %+v", resp)
	}
	if _, err := m.Generate(context.Background(), msgs[:2], []agent.Tool{notify}, agent.Options{Steps: steps}); err == nil {
		t.Error("a step whose tool is not offered: no error")
	}
}

func TestOfflinePlanAndChat(t *testing.T) {
	var m agent.Offline
	loc, _ := time.LoadLocation("Asia/Shanghai")
	opts := agent.Options{Location: loc, Now: time.Date(2026, 11, 22, 10, 0, 0, 0, loc)}
	tools := []agent.Tool{agent.PlanTaskTool()}

	// A plan with a question; once the plan's result is back, the question.
	msgs := []agent.Message{{Role: agent.RoleUser, Content: "每天推送天气"}}
	resp, err := m.Generate(context.Background(), msgs, tools, opts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := agent.ParsePlanArgs(resp.ToolCalls[0].Arguments)
	if err != nil {
		t.Fatal(err)
	}
	if p.Domain != agent.DomainWeather || len(p.Missing) != 2 || p.Question == "" {
		t.Fatalf("plan %+v", p)
	}
	msgs = append(msgs, resp.Message(), agent.ToolResult(resp.ToolCalls[0], `{"status":"needs_input"}`))
	resp, err = m.Generate(context.Background(), msgs, tools, opts)
	if err != nil || resp.Text != p.Question || len(resp.ToolCalls) != 0 {
		t.Errorf("after the plan: %+v, %v; want the question %q", resp, err, p.Question)
	}

	for text, want := range map[string]string{
		"Hello!":                       "Hello!",
		"你好":                           "你好！",
		"What is the meaning of life?": "I'm running without a language model",
		"今天心情不错":                       "离线模式",
	} {
		resp, err := m.Generate(context.Background(), []agent.Message{{Role: agent.RoleUser, Content: text}}, nil, opts)
		if err != nil || !strings.HasPrefix(resp.Text, want) && !strings.Contains(resp.Text, want) {
			t.Errorf("chat %q: %q, %v; want …%s…", text, resp.Text, err, want)
		}
	}
}

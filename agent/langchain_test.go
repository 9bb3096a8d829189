package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/agent"
)

const testKeyEnv = "VIGIL_AGENT_TEST_LLM_KEY"

// weatherTool is a tool of the kind the registry will offer, with a date
// the model tends to get wrong.
var weatherTool = agent.Tool{
	Name:        "get_weather",
	Description: "The weather forecast for a city on a date.",
	Parameters:  json.RawMessage(`{"type":"object","properties":{"city":{"type":"string","minLength":1},"date":{"type":"string","format":"date"}},"required":["city","date"],"additionalProperties":false}`),
}

// The scripted model's first answer: get_weather with a relative date, its
// arguments streamed in two pieces.
var badDateCall = call{id: "call_w1", name: "get_weather", args: []string{`{"city":"Par`, `is","date":"tomorrow"}`}}

const badDateArgs = `{"city":"Paris","date":"tomorrow"}`

// The tool's answer, once the agent has repaired the date.
const weatherResult = `{"city":"Paris","date":"2026-11-23","forecast":"sunny","high_c":18}`

var finalPieces = []string{"Tomorrow in Paris: ", "sunny, ", "18°C."}

func newLangChain(t *testing.T, kind, baseURL string) *agent.LangChain {
	t.Helper()
	t.Setenv(testKeyEnv, "sk-test-key")
	lc, err := agent.NewLangChain(agent.ProviderConfig{Kind: kind, BaseURL: baseURL, Model: "test-model", APIKeyEnv: testKeyEnv})
	if err != nil {
		t.Fatalf("NewLangChain: %v", err)
	}
	return lc
}

// conversation is the start of a weather chat.
func conversation() []agent.Message {
	return []agent.Message{
		{Role: agent.RoleSystem, Content: "You are Vigil. Today is 2026-11-22 in Europe/Paris."},
		{Role: agent.RoleUser, Content: "What's the weather in Paris tomorrow?"},
	}
}

// twoTurns runs the tool call round trip against m: the model calls
// get_weather with a bad date, the (repaired) call's result goes back, and
// the model answers with text. It checks what the model layer surfaces and
// returns the messages of the second turn.
func twoTurns(t *testing.T, m agent.Model, stream bool) []agent.Message {
	t.Helper()
	var deltas []string
	opts := agent.Options{MaxTokens: 256}
	if stream {
		opts.OnDelta = func(d string) { deltas = append(deltas, d) }
	}
	msgs := conversation()
	tools := []agent.Tool{agent.PlanTaskTool(), weatherTool}

	first, err := m.Generate(context.Background(), msgs, tools, opts)
	if err != nil {
		t.Fatalf("first turn: %v", err)
	}
	if len(first.ToolCalls) != 1 {
		t.Fatalf("first turn: tool calls %+v, want one", first.ToolCalls)
	}
	c := first.ToolCalls[0]
	if c.ID != "call_w1" || c.Name != "get_weather" || !sameJSON(t, c.Arguments, badDateArgs) {
		t.Errorf("first turn: tool call %s, want call_w1 get_weather %s", jsonOf(c), badDateArgs)
	}
	if first.Text != "" || len(deltas) != 0 {
		t.Errorf("first turn: text %q, deltas %q; want none", first.Text, deltas)
	}
	if first.Usage != (agent.Usage{InputTokens: 30, OutputTokens: 12}) {
		t.Errorf("first turn: usage %+v", first.Usage)
	}

	msgs = append(msgs, first.Message(), agent.ToolResult(c, weatherResult))
	second, err := m.Generate(context.Background(), msgs, tools, opts)
	if err != nil {
		t.Fatalf("second turn: %v", err)
	}
	want := strings.Join(finalPieces, "")
	if second.Text != want || len(second.ToolCalls) != 0 {
		t.Errorf("second turn: %q, %+v; want %q", second.Text, second.ToolCalls, want)
	}
	if stream && !slices.Equal(deltas, finalPieces) {
		t.Errorf("second turn: deltas %q, want %q", deltas, finalPieces)
	}
	if !stream && len(deltas) != 0 {
		t.Errorf("second turn: deltas %q without a callback", deltas)
	}
	return msgs
}

// Item 3 of the agents issue, at the model layer: a scripted
// OpenAI-compatible server, the real langchaingo client over real HTTP. The
// tool call with its invalid date is surfaced as the model wrote it, the
// request carries our tools with our schemas and the tool result, and the
// final text streams through the callback in order.
func TestOpenAIToolCallRoundTrip(t *testing.T) {
	for _, stream := range []bool{true, false} {
		t.Run(map[bool]string{true: "sse", false: "json"}[stream], func(t *testing.T) {
			srv := openAIServer(t,
				reply{calls: []call{badDateCall}, usage: [2]int{30, 12}},
				reply{text: finalPieces, usage: [2]int{50, 9}},
			)
			lc := newLangChain(t, agent.ProviderOpenAI, srv.URL+"/v1")
			twoTurns(t, lc, stream)

			reqs := srv.requests()
			if len(reqs) != 2 {
				t.Fatalf("the server got %d requests, want 2", len(reqs))
			}
			if got := srv.header(0).Get("Authorization"); got != "Bearer sk-test-key" {
				t.Errorf("Authorization: %q", got)
			}
			for i, req := range reqs {
				if gotStream, _ := req["stream"].(bool); req["model"] != "test-model" || gotStream != stream || req["max_tokens"] != 256.0 {
					t.Errorf("request %d: model %v, stream %v, max_tokens %v", i, req["model"], req["stream"], req["max_tokens"])
				}
				// Our tools, with our schemas as they are.
				tools, _ := req["tools"].([]any)
				if len(tools) != 2 {
					t.Fatalf("request %d: tools %v", i, req["tools"])
				}
				for j, want := range []agent.Tool{agent.PlanTaskTool(), weatherTool} {
					tool := tools[j].(map[string]any)
					fn := tool["function"].(map[string]any)
					if tool["type"] != "function" || fn["name"] != want.Name || fn["description"] != want.Description || !sameJSON(t, fn["parameters"], want.Parameters) {
						t.Errorf("request %d: tool %d is %s, want %s", i, j, jsonOf(tool), jsonOf(want))
					}
				}
			}
			// The second request carries the call and its result.
			wantMsgs := `[
				{"role":"system","content":"You are Vigil. Today is 2026-11-22 in Europe/Paris."},
				{"role":"user","content":"What's the weather in Paris tomorrow?"},
				{"role":"assistant","content":"","tool_calls":[{"id":"call_w1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"date\":\"tomorrow\"}"}}]},
				{"role":"tool","content":` + jsonOf(weatherResult) + `,"tool_call_id":"call_w1"}]`
			if !sameJSON(t, reqs[1]["messages"], wantMsgs) {
				t.Errorf("second request's messages:\n%s\nwant\n%s", jsonOf(reqs[1]["messages"]), wantMsgs)
			}
		})
	}
}

// A plan_task call with an invalid instant is surfaced raw, fails
// ParsePlanArgs on the field at fault, and the corrected call passes.
func TestOpenAIPlanTaskArgs(t *testing.T) {
	bad := `{"intent":"create_task","kind":"one_shot","domain":"reminder","schedule":{"at":"tomorrow 8am"},"slots":{"message":"call mom"},"language":"en"}`
	good := `{"intent":"create_task","kind":"one_shot","domain":"reminder","schedule":{"at":"2026-11-23T08:00:00+01:00"},"slots":{"message":"call mom"},"language":"en"}`
	srv := openAIServer(t,
		reply{calls: []call{{id: "call_p1", name: agent.PlanTaskName, args: []string{bad[:40], bad[40:]}}}},
		reply{calls: []call{{id: "call_p2", name: agent.PlanTaskName, args: []string{good}}}},
	)
	lc := newLangChain(t, agent.ProviderOpenAI, srv.URL+"/v1")
	msgs := []agent.Message{{Role: agent.RoleUser, Content: "Remind me to call mom tomorrow at 8am"}}
	tools := []agent.Tool{agent.PlanTaskTool()}

	resp, err := lc.Generate(context.Background(), msgs, tools, agent.Options{OnDelta: func(d string) { t.Errorf("delta %q", d) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.ToolCalls) != 1 || string(resp.ToolCalls[0].Arguments) != bad {
		t.Fatalf("tool calls %s, want the raw arguments %s", jsonOf(resp.ToolCalls), bad)
	}
	_, err = agent.ParsePlanArgs(resp.ToolCalls[0].Arguments)
	var verr *vigil.Error
	if !errors.As(err, &verr) || verr.Field != "schedule.at" {
		t.Fatalf("ParsePlanArgs(%s) = %v, want an error on schedule.at", bad, err)
	}

	// The agent re-asks with the error as the call's result.
	msgs = append(msgs, resp.Message(), agent.ToolResult(resp.ToolCalls[0], `{"error":`+jsonOf(err.Error())+`}`))
	resp, err = lc.Generate(context.Background(), msgs, tools, agent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := agent.ParsePlanArgs(resp.ToolCalls[0].Arguments)
	if err != nil {
		t.Fatalf("ParsePlanArgs(%s): %v", resp.ToolCalls[0].Arguments, err)
	}
	if p.Schedule == nil || p.Schedule.At == nil || !p.Schedule.At.Equal(time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)) || len(p.Missing) != 0 {
		t.Errorf("plan %+v", p)
	}
	last := srv.requests()[1]["messages"].([]any)
	if tool := last[len(last)-1].(map[string]any); tool["role"] != "tool" || !strings.Contains(tool["content"].(string), "schedule.at") {
		t.Errorf("the re-ask does not carry the error: %s", jsonOf(tool))
	}
}

// fallbackRecorder records OnFallback's errors.
type fallbackRecorder struct {
	mu   sync.Mutex
	errs []error
}

func (r *fallbackRecorder) record(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *fallbackRecorder) get() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.errs)
}

// planRequest is the first line of the development set.
func planRequest(t *testing.T) ([]agent.Message, agent.Options) {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return []agent.Message{{Role: agent.RoleUser, Content: "每天早上8点推送北京天气"}},
		agent.Options{Location: loc, Now: time.Date(2026, 11, 22, 10, 0, 0, 0, loc)}
}

// checkOfflinePlan checks that resp is Offline's plan of planRequest.
func checkOfflinePlan(t *testing.T, resp agent.Response) {
	t.Helper()
	if resp.Source != "offline" || len(resp.ToolCalls) != 1 || resp.ToolCalls[0].Name != agent.PlanTaskName {
		t.Fatalf("reply from %s: %s, want the offline model's plan_task call", resp.Source, jsonOf(resp.ToolCalls))
	}
	p, err := agent.ParsePlanArgs(resp.ToolCalls[0].Arguments)
	if err != nil {
		t.Fatal(err)
	}
	if p.Intent != agent.IntentCreate || p.Schedule == nil || p.Schedule.Cron != "0 8 * * *" || p.Slots["city"] != "北京" || len(p.Missing) != 0 {
		t.Errorf("offline plan %+v", p)
	}
}

// Item 3's second script: the server answers 500, the Fallback asks the
// offline model and says so through OnFallback.
func TestFallbackOnServerError(t *testing.T) {
	srv := openAIServer(t, reply{status: 500})
	var rec fallbackRecorder
	fb := &agent.Fallback{
		Primary:    newLangChain(t, agent.ProviderOpenAI, srv.URL+"/v1"),
		Secondary:  agent.Offline{},
		OnFallback: rec.record,
	}
	msgs, opts := planRequest(t)
	var deltas []string
	opts.OnDelta = func(d string) { deltas = append(deltas, d) }
	resp, err := fb.Generate(context.Background(), msgs, []agent.Tool{agent.PlanTaskTool()}, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkOfflinePlan(t, resp)
	errs := rec.get()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "500") {
		t.Errorf("OnFallback got %v, want one error about the 500", errs)
	}
	if len(srv.requests()) == 0 {
		t.Error("the LLM was not asked first")
	}
	if len(deltas) != 0 {
		t.Errorf("deltas %q for a tool call", deltas)
	}
	if w := agent.FallbackWarning("zh"); w.Code != agent.FallbackWarningCode || w.Message == "" {
		t.Errorf("FallbackWarning: %+v", w)
	}
}

// A server that hangs: the Fallback stops waiting after its Timeout.
func TestFallbackOnTimeout(t *testing.T) {
	srv := openAIServer(t, reply{hang: true})
	var rec fallbackRecorder
	fb := &agent.Fallback{
		Primary:    newLangChain(t, agent.ProviderOpenAI, srv.URL+"/v1"),
		Secondary:  agent.Offline{},
		Timeout:    200 * time.Millisecond,
		OnFallback: rec.record,
	}
	msgs, opts := planRequest(t)
	start := time.Now()
	resp, err := fb.Generate(context.Background(), msgs, []agent.Tool{agent.PlanTaskTool()}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the fallback took %s", d)
	}
	checkOfflinePlan(t, resp)
	if errs := rec.get(); len(errs) != 1 || !errors.Is(errs[0], context.DeadlineExceeded) {
		t.Errorf("OnFallback got %v, want one error wrapping context.DeadlineExceeded", errs)
	}
}

// When the caller gives up, the Fallback does too: no offline answer to a
// run that was cancelled.
func TestFallbackNotWhenCallerCancels(t *testing.T) {
	srv := openAIServer(t, reply{hang: true})
	var rec fallbackRecorder
	fb := &agent.Fallback{
		Primary:    newLangChain(t, agent.ProviderOpenAI, srv.URL+"/v1"),
		Secondary:  agent.Offline{},
		OnFallback: rec.record,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	msgs, opts := planRequest(t)
	_, err := fb.Generate(ctx, msgs, []agent.Tool{agent.PlanTaskTool()}, opts)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the caller's deadline", err)
	}
	if errs := rec.get(); len(errs) != 0 {
		t.Errorf("OnFallback got %v", errs)
	}
}

// ProviderConfig.Timeout bounds a call on its own, and the error says it
// was a deadline even though langchaingo's OpenAI client rewrites it.
func TestLangChainTimeout(t *testing.T) {
	srv := openAIServer(t, reply{hang: true})
	t.Setenv(testKeyEnv, "sk-test-key")
	lc, err := agent.NewLangChain(agent.ProviderConfig{Kind: agent.ProviderOpenAI, BaseURL: srv.URL + "/v1", Model: "m", APIKeyEnv: testKeyEnv, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = lc.Generate(context.Background(), conversation(), nil, agent.Options{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want one wrapping context.DeadlineExceeded", err)
	}
}

// The same round trip against a scripted Anthropic Messages API: langchaingo's
// Anthropic client takes a base URL (anthropic.WithBaseURL).
func TestAnthropicToolCallRoundTrip(t *testing.T) {
	for _, stream := range []bool{true, false} {
		t.Run(map[bool]string{true: "sse", false: "json"}[stream], func(t *testing.T) {
			srv := anthropicServer(t,
				reply{text: []string{"Let me check."}, calls: []call{badDateCall}, usage: [2]int{30, 12}},
				reply{text: finalPieces, usage: [2]int{50, 9}},
			)
			lc := newLangChain(t, agent.ProviderAnthropic, srv.URL+"/v1")
			var deltas []string
			opts := agent.Options{MaxTokens: 256}
			if stream {
				opts.OnDelta = func(d string) { deltas = append(deltas, d) }
			}
			msgs := conversation()
			tools := []agent.Tool{agent.PlanTaskTool(), weatherTool}
			first, err := lc.Generate(context.Background(), msgs, tools, opts)
			if err != nil {
				t.Fatal(err)
			}
			if first.Text != "Let me check." || len(first.ToolCalls) != 1 || first.ToolCalls[0].ID != "call_w1" || !sameJSON(t, first.ToolCalls[0].Arguments, badDateArgs) {
				t.Fatalf("first turn: %q %s", first.Text, jsonOf(first.ToolCalls))
			}
			if first.Usage != (agent.Usage{InputTokens: 30, OutputTokens: 12}) {
				t.Errorf("usage %+v", first.Usage)
			}
			if stream && !slices.Equal(deltas, []string{"Let me check."}) {
				t.Errorf("first turn deltas %q", deltas)
			}
			deltas = nil
			msgs = append(msgs, first.Message(), agent.ToolResult(first.ToolCalls[0], weatherResult))
			second, err := lc.Generate(context.Background(), msgs, tools, opts)
			if err != nil {
				t.Fatal(err)
			}
			if second.Text != strings.Join(finalPieces, "") || (stream && !slices.Equal(deltas, finalPieces)) {
				t.Errorf("second turn: %q, deltas %q", second.Text, deltas)
			}

			reqs := srv.requests()
			if got := srv.header(0).Get("X-Api-Key"); got != "sk-test-key" {
				t.Errorf("x-api-key %q", got)
			}
			req := reqs[1]
			if req["system"] != "You are Vigil. Today is 2026-11-22 in Europe/Paris." || req["max_tokens"] != 256.0 {
				t.Errorf("system %v, max_tokens %v", req["system"], req["max_tokens"])
			}
			tl := req["tools"].([]any)
			if len(tl) != 2 || !sameJSON(t, tl[1], map[string]any{"name": "get_weather", "description": weatherTool.Description, "input_schema": weatherTool.Parameters}) ||
				!sameJSON(t, tl[0].(map[string]any)["input_schema"], agent.PlanTaskTool().Parameters) {
				t.Errorf("tools %s", jsonOf(tl))
			}
			wantMsgs := `[
				{"role":"user","content":[{"type":"text","text":"What's the weather in Paris tomorrow?"}]},
				{"role":"assistant","content":[{"type":"text","text":"Let me check."}]},
				{"role":"assistant","content":[{"type":"tool_use","id":"call_w1","name":"get_weather","input":{"city":"Paris","date":"tomorrow"}}]},
				{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_w1","content":` + jsonOf(weatherResult) + `}]}]`
			if !sameJSON(t, req["messages"], wantMsgs) {
				t.Errorf("messages:\n%s\nwant\n%s", jsonOf(req["messages"]), wantMsgs)
			}
		})
	}
}

// Ollama's native API through langchaingo has no tools: they go through
// the text tool protocol, and a reply that is a tool call never streams.
func TestOllamaTextTools(t *testing.T) {
	srv := ollamaServer(t,
		reply{text: []string{`{"tool_calls": [{"name": "get_weather", `, `"arguments": {"city": "Paris", "date": "tomorrow"}}]}`}, usage: [2]int{30, 12}},
		reply{text: finalPieces, usage: [2]int{50, 9}},
	)
	lc, err := agent.NewLangChain(agent.ProviderConfig{Kind: agent.ProviderOllama, BaseURL: srv.URL, Model: "qwen2.5:7b"})
	if err != nil {
		t.Fatal(err)
	}
	var deltas []string
	opts := agent.Options{OnDelta: func(d string) { deltas = append(deltas, d) }}
	msgs := conversation()
	tools := []agent.Tool{weatherTool}
	first, err := lc.Generate(context.Background(), msgs, tools, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.ToolCalls) != 1 || first.ToolCalls[0].ID != "call-2-0" || !sameJSON(t, first.ToolCalls[0].Arguments, badDateArgs) || first.Text != "" {
		t.Fatalf("first turn: %q %s", first.Text, jsonOf(first.ToolCalls))
	}
	if len(deltas) != 0 || first.Usage != (agent.Usage{InputTokens: 30, OutputTokens: 12}) {
		t.Errorf("deltas %q, usage %+v", deltas, first.Usage)
	}
	msgs = append(msgs, first.Message(), agent.ToolResult(first.ToolCalls[0], weatherResult))
	second, err := lc.Generate(context.Background(), msgs, tools, opts)
	if err != nil {
		t.Fatal(err)
	}
	if second.Text != strings.Join(finalPieces, "") || !slices.Equal(deltas, finalPieces) {
		t.Errorf("second turn: %q, deltas %q", second.Text, deltas)
	}
	sent := srv.requests()[1]["messages"].([]any)
	system := sent[0].(map[string]any)["content"].(string)
	if !strings.Contains(system, "You can call tools.") || !strings.Contains(system, string(weatherTool.Parameters)) {
		t.Errorf("system prompt:\n%s", system)
	}
	if last := sent[len(sent)-1].(map[string]any); last["role"] != "user" || !strings.HasPrefix(last["content"].(string), "Result of tool call call-2-0 (get_weather):") {
		t.Errorf("last message %s", jsonOf(last))
	}
}

func TestNewLangChainConfig(t *testing.T) {
	t.Setenv(testKeyEnv, "")
	for _, c := range []struct {
		cfg   agent.ProviderConfig
		field string
	}{
		{agent.ProviderConfig{Kind: "gemini", Model: "m"}, "kind"},
		{agent.ProviderConfig{Kind: agent.ProviderOpenAI}, "model"},
		{agent.ProviderConfig{Kind: agent.ProviderOpenAI, Model: "m", APIKeyEnv: testKeyEnv}, "api_key_env"},
		{agent.ProviderConfig{Kind: agent.ProviderAnthropic, Model: "m"}, "api_key_env"},
		{agent.ProviderConfig{Kind: agent.ProviderOllama, Model: "m", BaseURL: "localhost:11434"}, "base_url"},
		{agent.ProviderConfig{Kind: agent.ProviderOpenAI, Model: "m", BaseURL: "ftp://x"}, "base_url"},
	} {
		_, err := agent.NewLangChain(c.cfg)
		var e *vigil.Error
		if !errors.As(err, &e) || e.Code != vigil.Invalid || e.Field != c.field {
			t.Errorf("NewLangChain(%+v) = %v, want an error on %s", c.cfg, err, c.field)
		}
	}
	// Local servers need no key.
	if _, err := agent.NewLangChain(agent.ProviderConfig{Kind: agent.ProviderOpenAI, Model: "llama3", BaseURL: "http://localhost:8080/v1"}); err != nil {
		t.Errorf("a keyless OpenAI-compatible server: %v", err)
	}
}

// sameJSON reports whether a and b, each JSON text or a value, are the same
// JSON value.
func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	return reflect.DeepEqual(decode(t, a), decode(t, b))
}

func decode(t *testing.T, v any) any {
	t.Helper()
	var raw []byte
	switch v := v.(type) {
	case string:
		raw = []byte(v)
	case json.RawMessage:
		raw = v
	case []byte:
		raw = v
	default:
		var err error
		if raw, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("not JSON: %s", raw)
	}
	return out
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

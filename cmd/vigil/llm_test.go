package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// chatScript is an OpenAI-compatible chat completions server (POST
// /v1/chat/completions) that answers its n-th request with its n-th turn,
// as JSON or as a stream of chunks as the request asks, and keeps every
// request. A turn is a tool call (name and arguments) or, without a name,
// a text.
type chatScript struct {
	*httptest.Server
	turns []chatTurn

	mu   sync.Mutex
	reqs []map[string]any
}

type chatTurn struct{ tool, args, text string }

func newChatScript(t *testing.T, turns ...chatTurn) *chatScript {
	s := &chatScript{turns: turns}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *chatScript) requests() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.reqs...)
}

func (s *chatScript) serve(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	raw, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(raw, &req)
	}
	if r.URL.Path != "/v1/chat/completions" || err != nil {
		http.Error(w, `{"error":{"message":"not found"}}`, http.StatusNotFound)
		return
	}
	s.mu.Lock()
	turn := s.turns[min(len(s.reqs), len(s.turns)-1)]
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()

	type obj = map[string]any
	finish := "stop"
	msg := obj{"role": "assistant", "content": turn.text}
	var calls []obj
	if turn.tool != "" {
		finish = "tool_calls"
		msg["content"] = nil
		calls = []obj{{"index": 0, "id": "call_1", "type": "function", "function": obj{"name": turn.tool, "arguments": turn.args}}}
		msg["tool_calls"] = calls
	}
	usage := obj{"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
	if stream, _ := req["stream"].(bool); !stream {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(obj{"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": req["model"],
			"choices": []obj{{"index": 0, "message": msg, "finish_reason": finish}}, "usage": usage})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	send := func(v obj) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
	}
	chunk := func(delta obj, finish any) obj {
		return obj{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": req["model"],
			"choices": []obj{{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	send(chunk(obj{"role": "assistant", "content": ""}, nil))
	if turn.text != "" {
		send(chunk(obj{"content": turn.text}, nil))
	}
	if calls != nil {
		send(chunk(obj{"tool_calls": calls}, nil))
	}
	send(chunk(obj{}, finish))
	send(obj{"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": []obj{}, "usage": usage})
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// runTask creates a task from spec on the server at base, runs it now and
// waits for the run to succeed; it returns the run and its thread's events.
func runTask(t *testing.T, base, spec string) (tasks.Run, []streams.Event) {
	t.Helper()
	var task tasks.Task
	if code := post(t, base+"/v1/tasks", spec, &task); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	var run tasks.Run
	if code := post(t, base+"/v1/tasks/"+task.ID+"/run", "", &run); code != http.StatusCreated {
		t.Fatalf("run now: %d", code)
	}
	deadline := time.Now().Add(15 * time.Second)
	for run.Status != tasks.RunSucceeded {
		if time.Now().After(deadline) || run.Status == tasks.RunFailed {
			t.Fatalf("run %s is %s (%s)", run.ID, run.Status, run.Error)
		}
		time.Sleep(20 * time.Millisecond)
		resp, err := http.Get(base + "/v1/runs/" + run.ID)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&run)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The worker tells the thread after the run is marked done: wait for
	// the notification's text.
	var events []streams.Event
	for deadline = time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(base + "/v1/threads/" + task.ThreadID + "/replay")
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Events []streams.Event }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		events = body.Events
		if len(texts(events)) > 0 {
			break
		}
	}
	return run, events
}

// texts returns the text events' texts.
func texts(events []streams.Event) []string {
	var out []string
	for _, e := range events {
		if e.Type == streams.TypeText {
			var p struct{ Text string }
			_ = json.Unmarshal(e.Data, &p)
			out = append(out, p.Text)
		}
	}
	return out
}

func eventTypes(events []streams.Event) map[string]int {
	n := map[string]int{}
	for _, e := range events {
		n[e.Type]++
	}
	return n
}

// The task to run: no steps, an instruction only, so that what it does
// depends on the model.
const llmTaskSpec = `{"title": "sum", "kind": "long_running", "instruction": "Add 40 and 2 with the calculator and tell me the result."}`

// TestServeUsesConfiguredLLM: with an llm section, serve's task agent runs
// a task through that model, over real HTTP with the real langchaingo
// client: the model's tool call runs the calculator, its result goes back
// to the model, and the model's final text is the run's notification.
func TestServeUsesConfiguredLLM(t *testing.T) {
	llm := newChatScript(t,
		chatTurn{tool: "calculate", args: `{"expression":"40 + 2"}`},
		chatTurn{text: "40 + 2 is 42."},
	)
	t.Setenv("VIGIL_TEST_LLM_KEY", "sk-test")
	c := testConfig(t)
	c.LLM = config.LLM{Provider: "openai", BaseURL: llm.URL + "/v1", Model: "scripted-model", APIKeyEnv: "VIGIL_TEST_LLM_KEY", Timeout: 10 * time.Second}
	m := startMain(t, c)

	_, events := runTask(t, "http://"+m.Addr(), llmTaskSpec)
	if got := texts(events); len(got) == 0 || got[len(got)-1] != "40 + 2 is 42." {
		t.Errorf("texts %q; want the model's final text", got)
	}
	types := eventTypes(events)
	if types[streams.TypeToolCall] != 1 || types[streams.TypeToolResult] != 1 || types[streams.TypeWarning] != 0 {
		t.Errorf("event types %v; want one tool_call, one tool_result, no warning", types)
	}
	reqs := llm.requests()
	if len(reqs) != 2 {
		t.Fatalf("the model was asked %d times; want 2", len(reqs))
	}
	if reqs[0]["model"] != "scripted-model" || !strings.Contains(fmt.Sprint(reqs[0]["tools"]), "calculate") {
		t.Errorf("first request: model %v, tools %v; want the configured model offered calculate", reqs[0]["model"], reqs[0]["tools"])
	}
	// The second request carries the tool's result back to the model.
	second, _ := json.Marshal(reqs[1]["messages"])
	if !strings.Contains(string(second), `"role":"tool"`) || !strings.Contains(string(second), "42") {
		t.Errorf("second request's messages %s; want the tool result 42", second)
	}
}

// TestServeOfflineWithoutLLM: without an llm section the offline model
// runs the same task: no model server is asked, no tool is called, and
// the notification is the offline one, the instruction with no raw
// template.
func TestServeOfflineWithoutLLM(t *testing.T) {
	llm := newChatScript(t, chatTurn{text: "should not be asked"})
	c := testConfig(t)
	if c.LLM.Provider != "" {
		t.Fatalf("the default config has an llm provider %q", c.LLM.Provider)
	}
	m := startMain(t, c)

	_, events := runTask(t, "http://"+m.Addr(), llmTaskSpec)
	got := texts(events)
	if len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "sum: Add 40 and 2 with the calculator") ||
		!strings.Contains(got[len(got)-1], "No language model is available") {
		t.Errorf("texts %q; want the offline notification", got)
	}
	if types := eventTypes(events); types[streams.TypeToolCall] != 0 {
		t.Errorf("event types %v; want no tool call", types)
	}
	if n := len(llm.requests()); n != 0 {
		t.Errorf("the model server was asked %d times", n)
	}
}

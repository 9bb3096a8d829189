package agent_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// The scripted servers below speak the wire protocols of OpenAI's chat
// completions, Anthropic's messages and Ollama's chat well enough for
// langchaingo's real clients, over real HTTP. Each answers its n-th request
// with the n-th reply of its script (the last one once the script runs
// out), as JSON or streamed as the request asks, and records every request
// for the test to inspect.

// reply is one scripted answer.
type reply struct {
	status int      // answer with this HTTP status and an error body
	hang   bool     // answer nothing until the client goes away
	text   []string // the text, one piece per streamed chunk
	calls  []call   // tool calls
	usage  [2]int   // input and output tokens
}

// call is a scripted tool call; its arguments are streamed in pieces.
type call struct {
	id, name string
	args     []string
}

func textReply(pieces ...string) reply { return reply{text: pieces, usage: [2]int{12, 3}} }

// scripted is a scripted server of some protocol.
type scripted struct {
	*httptest.Server
	path   string
	render func(w http.ResponseWriter, req map[string]any, r reply)

	mu      sync.Mutex
	script  []reply
	bodies  []map[string]any
	headers []http.Header
}

func newScripted(t *testing.T, path string, render func(http.ResponseWriter, map[string]any, reply), script ...reply) *scripted {
	t.Helper()
	s := &scripted{path: path, render: render, script: script}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *scripted) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != s.path {
		http.NotFound(w, r)
		return
	}
	raw, err := io.ReadAll(r.Body)
	var body map[string]any
	if err == nil {
		err = json.Unmarshal(raw, &body)
	}
	if err != nil {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	n := len(s.bodies)
	s.bodies = append(s.bodies, body)
	s.headers = append(s.headers, r.Header.Clone())
	next := s.script[min(n, len(s.script)-1)]
	s.mu.Unlock()

	switch {
	case next.hang:
		<-r.Context().Done()
	case next.status != 0:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(next.status)
		fmt.Fprint(w, `{"error":{"message":"scripted failure","type":"server_error"}}`)
	default:
		s.render(w, body, next)
	}
}

// requests returns the bodies of the requests received so far.
func (s *scripted) requests() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.bodies...)
}

func (s *scripted) header(i int) http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.headers[i]
}

// sse writes one server-sent event per value, flushing each.
type sse struct {
	w http.ResponseWriter
}

func newSSE(w http.ResponseWriter) sse {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	return sse{w}
}

func (s sse) send(event string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	if event != "" {
		fmt.Fprintf(s.w, "event: %s\n", event)
	}
	fmt.Fprintf(s.w, "data: %s\n\n", b)
	s.w.(http.Flusher).Flush()
}

type obj = map[string]any

// openAIServer speaks POST /v1/chat/completions.
func openAIServer(t *testing.T, script ...reply) *scripted {
	return newScripted(t, "/v1/chat/completions", renderOpenAI, script...)
}

func renderOpenAI(w http.ResponseWriter, req map[string]any, r reply) {
	finish := "stop"
	if len(r.calls) > 0 {
		finish = "tool_calls"
	}
	usage := obj{"prompt_tokens": r.usage[0], "completion_tokens": r.usage[1], "total_tokens": r.usage[0] + r.usage[1]}
	if stream, _ := req["stream"].(bool); !stream {
		msg := obj{"role": "assistant", "content": nil}
		if len(r.text) > 0 {
			msg["content"] = strings.Join(r.text, "")
		}
		var calls []obj
		for _, c := range r.calls {
			calls = append(calls, obj{"id": c.id, "type": "function", "function": obj{"name": c.name, "arguments": strings.Join(c.args, "")}})
		}
		if calls != nil {
			msg["tool_calls"] = calls
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(obj{
			"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": req["model"],
			"choices": []obj{{"index": 0, "message": msg, "finish_reason": finish}},
			"usage":   usage,
		})
		return
	}
	s := newSSE(w)
	chunk := func(delta obj, finish any) obj {
		return obj{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": req["model"],
			"choices": []obj{{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	s.send("", chunk(obj{"role": "assistant", "content": ""}, nil))
	for _, piece := range r.text {
		s.send("", chunk(obj{"content": piece}, nil))
	}
	for i, c := range r.calls {
		s.send("", chunk(obj{"tool_calls": []obj{{"index": i, "id": c.id, "type": "function", "function": obj{"name": c.name, "arguments": ""}}}}, nil))
		for _, a := range c.args {
			s.send("", chunk(obj{"tool_calls": []obj{{"index": i, "function": obj{"arguments": a}}}}, nil))
		}
	}
	s.send("", chunk(obj{}, finish))
	s.send("", obj{"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": []obj{}, "usage": usage})
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// anthropicServer speaks POST /v1/messages.
func anthropicServer(t *testing.T, script ...reply) *scripted {
	return newScripted(t, "/v1/messages", renderAnthropic, script...)
}

func renderAnthropic(w http.ResponseWriter, req map[string]any, r reply) {
	stop := "end_turn"
	if len(r.calls) > 0 {
		stop = "tool_use"
	}
	if stream, _ := req["stream"].(bool); !stream {
		var content []obj
		if len(r.text) > 0 {
			content = append(content, obj{"type": "text", "text": strings.Join(r.text, "")})
		}
		for _, c := range r.calls {
			var input any
			if err := json.Unmarshal([]byte(strings.Join(c.args, "")), &input); err != nil {
				panic(err)
			}
			content = append(content, obj{"type": "tool_use", "id": c.id, "name": c.name, "input": input})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(obj{
			"id": "msg_1", "type": "message", "role": "assistant", "model": req["model"],
			"content": content, "stop_reason": stop,
			"usage": obj{"input_tokens": r.usage[0], "output_tokens": r.usage[1]},
		})
		return
	}
	s := newSSE(w)
	s.send("message_start", obj{"type": "message_start", "message": obj{
		"id": "msg_1", "type": "message", "role": "assistant", "model": req["model"], "content": []obj{},
		"usage": obj{"input_tokens": r.usage[0], "output_tokens": 1},
	}})
	index := 0
	if len(r.text) > 0 {
		s.send("content_block_start", obj{"type": "content_block_start", "index": index, "content_block": obj{"type": "text", "text": ""}})
		for _, piece := range r.text {
			s.send("content_block_delta", obj{"type": "content_block_delta", "index": index, "delta": obj{"type": "text_delta", "text": piece}})
		}
		s.send("content_block_stop", obj{"type": "content_block_stop", "index": index})
		index++
	}
	for _, c := range r.calls {
		s.send("content_block_start", obj{"type": "content_block_start", "index": index, "content_block": obj{"type": "tool_use", "id": c.id, "name": c.name, "input": obj{}}})
		for _, a := range c.args {
			s.send("content_block_delta", obj{"type": "content_block_delta", "index": index, "delta": obj{"type": "input_json_delta", "partial_json": a}})
		}
		s.send("content_block_stop", obj{"type": "content_block_stop", "index": index})
		index++
	}
	s.send("message_delta", obj{"type": "message_delta", "delta": obj{"stop_reason": stop}, "usage": obj{"output_tokens": r.usage[1]}})
	s.send("message_stop", obj{"type": "message_stop"})
}

// ollamaServer speaks POST /api/chat, in newline-delimited JSON. It has no
// tool calls: the text tool protocol puts them in the text.
func ollamaServer(t *testing.T, script ...reply) *scripted {
	return newScripted(t, "/api/chat", renderOllama, script...)
}

func renderOllama(w http.ResponseWriter, req map[string]any, r reply) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	stream, _ := req["stream"].(bool)
	msg := func(content string, done bool) obj {
		m := obj{"model": req["model"], "created_at": "2026-11-22T10:00:00Z", "message": obj{"role": "assistant", "content": content}, "done": done}
		if done {
			m["prompt_eval_count"], m["eval_count"] = r.usage[0], r.usage[1]
		}
		return m
	}
	if !stream {
		enc.Encode(msg(strings.Join(r.text, ""), true))
		return
	}
	for _, p := range r.text {
		enc.Encode(msg(p, false))
		w.(http.Flusher).Flush()
	}
	enc.Encode(msg("", true))
}

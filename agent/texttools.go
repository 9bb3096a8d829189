package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode"
)

// The text tool protocol lets a model without tool calling call tools: MCP
// sampling (whose createMessage carries text only) and langchaingo's native
// Ollama client (which sends no tools). When tools are offered, the system
// prompt lists them with their schemas and asks for a reply that is only
//
//	{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}
//
// to call them, or plain text to answer. Earlier tool calls are written back
// in that form, and tool results as user messages that start with "Result of
// tool call". A reply is read as tool calls when it is such an object (also
// inside a ```json fence or after a few words, and in the looser shapes
// {"tool_call": {…}} and {"name": …, "arguments": …}) naming offered tools;
// calls of tools that are not offered are dropped, and a reply left without
// calls is text. Arguments given as a JSON string holding an object are
// unwrapped. The model is never more reliable than its reading of the
// instructions: arguments still need validating, as with any source.

// textToolInstructions heads the tool list in the system prompt.
const textToolInstructions = `You can call tools. To call one or more, reply with only this JSON object and no other text:
{"tool_calls": [{"name": "<tool name>", "arguments": {<arguments matching the tool's parameters>}}]}
Each result comes back in a message that starts with "Result of tool call". To answer the user instead, reply with plain text, not JSON.

Tools:`

// textTurn is one message of a text-only conversation, user or assistant.
type textTurn struct {
	role Role
	text string
}

// textConversation renders msgs for a text-only model: the system messages
// joined into one system prompt, followed by the tool instructions when
// tools are offered; tool calls written in the protocol's form; tool results
// as user messages; consecutive messages of one role merged, since some
// models insist that user and assistant alternate.
func textConversation(msgs []Message, tools []Tool) (system string, turns []textTurn) {
	var sys []string
	add := func(role Role, text string) {
		if n := len(turns); n > 0 && turns[n-1].role == role {
			turns[n-1].text += "\n\n" + text
			return
		}
		turns = append(turns, textTurn{role, text})
	}
	for _, m := range msgs {
		switch m.Role {
		case RoleSystem:
			if m.Content != "" {
				sys = append(sys, m.Content)
			}
		case RoleAssistant:
			text := m.Content
			if len(m.ToolCalls) > 0 {
				if text != "" {
					text += "\n\n"
				}
				text += toolCallsText(m.ToolCalls)
			}
			if text != "" {
				add(RoleAssistant, text)
			}
		case RoleTool:
			add(RoleUser, fmt.Sprintf("Result of tool call %s (%s):\n%s", m.ToolCallID, m.Name, m.Content))
		default:
			add(RoleUser, m.Content)
		}
	}
	if len(tools) > 0 {
		var b strings.Builder
		b.WriteString(textToolInstructions)
		for _, t := range tools {
			fmt.Fprintf(&b, "\n\n%s: %s\nParameters (JSON Schema): %s", t.Name, t.Description, parametersOf(t))
		}
		sys = append(sys, b.String())
	}
	return strings.Join(sys, "\n\n"), turns
}

// toolCallsText writes calls in the protocol's form.
func toolCallsText(calls []ToolCall) string {
	type call struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	out := struct {
		ToolCalls []call `json:"tool_calls"`
	}{}
	for _, c := range calls {
		args := c.Arguments
		if !json.Valid(args) {
			args, _ = json.Marshal(string(c.Arguments))
		}
		out.ToolCalls = append(out.ToolCalls, call{c.Name, args})
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// parametersOf returns a tool's parameters schema, an empty object schema
// for a tool without one.
func parametersOf(t Tool) json.RawMessage {
	if len(bytes.TrimSpace(t.Parameters)) == 0 {
		return json.RawMessage(`{"type":"object","properties":{}}`)
	}
	return t.Parameters
}

// parseToolReply reads a reply under the protocol: the tool calls it makes,
// with IDs "<prefix>-<n>-<i>", or, when it makes none, its text.
func parseToolReply(reply string, tools []Tool, prefix string, n int) (text string, calls []ToolCall) {
	for _, c := range jsonCandidates(reply) {
		var found []rawCall
		var v struct {
			ToolCalls []rawCall `json:"tool_calls"`
			ToolCall  *rawCall  `json:"tool_call"`
			rawCall
		}
		if json.Unmarshal([]byte(c), &v) != nil {
			continue
		}
		found = append(found, v.ToolCalls...)
		if v.ToolCall != nil {
			found = append(found, *v.ToolCall)
		}
		if v.Name != "" {
			found = append(found, v.rawCall)
		}
		for _, f := range found {
			if !offered(tools, f.Name) {
				continue
			}
			calls = append(calls, ToolCall{
				ID:        fmt.Sprintf("%s-%d-%d", prefix, n, len(calls)),
				Name:      f.Name,
				Arguments: f.args(),
			})
		}
		if len(calls) > 0 {
			return "", calls
		}
	}
	return reply, nil
}

// rawCall is a tool call as a text reply writes it.
type rawCall struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// args returns the call's arguments, unwrapping an object written as a
// JSON string.
func (c rawCall) args() json.RawMessage {
	var s string
	if json.Unmarshal(c.Arguments, &s) == nil && json.Valid([]byte(s)) {
		return normalizeArgs([]byte(s))
	}
	if string(bytes.TrimSpace(c.Arguments)) == "null" {
		return normalizeArgs(nil)
	}
	return normalizeArgs(c.Arguments)
}

// jsonCandidates returns the texts of a reply that may be the protocol's
// JSON object: the whole reply, the body of a code fence, and the span from
// the first { to the last }.
func jsonCandidates(reply string) []string {
	s := strings.TrimSpace(reply)
	out := []string{s}
	if i := strings.Index(s, "```"); i >= 0 {
		body := s[i+3:]
		if nl := strings.IndexByte(body, '\n'); nl >= 0 && !strings.Contains(body[:nl], "{") {
			body = body[nl+1:] // the fence's language tag
		}
		if j := strings.Index(body, "```"); j >= 0 {
			out = append(out, strings.TrimSpace(body[:j]))
		}
	}
	if i, j := strings.IndexByte(s, '{'), strings.LastIndexByte(s, '}'); i >= 0 && j > i && j-i+1 < len(s) {
		out = append(out, s[i:j+1])
	}
	return out
}

// deltaSink passes a source's streamed chunks on to Options.OnDelta so that
// the Model contract holds: only reply text goes through, in order, and the
// pieces add up to the final text.
type deltaSink struct {
	on func(string)

	// skipToolJSON drops the chunks that langchaingo's OpenAI client makes
	// of tool call deltas (it passes them to the streaming function as a
	// JSON array, like text).
	skipToolJSON bool

	// gate holds a reply that opens like JSON ({ or `) until the end, when
	// the text tool protocol decides whether it was a tool call.
	gate bool

	mu      sync.Mutex
	sent    strings.Builder
	held    strings.Builder
	decided bool // gate: the reply's first character has been seen
	open    bool // gate: the reply is text and flows through
	closed  bool // finish ran; late chunks are dropped
}

// chunk is the langchaingo streaming function.
func (d *deltaSink) chunk(_ context.Context, b []byte) error {
	if len(b) == 0 || d.skipToolJSON && isToolCallChunk(b) {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	s := string(b)
	if d.gate {
		if !d.decided {
			d.held.WriteString(s)
			t := strings.TrimLeftFunc(d.held.String(), unicode.IsSpace)
			if t == "" {
				return nil
			}
			d.decided = true
			d.open = t[0] != '{' && t[0] != '`'
			s = d.held.String()
		}
		if !d.open {
			return nil
		}
	}
	d.sent.WriteString(s)
	d.on(s)
	return nil
}

// finish delivers what of the final text was not streamed (held back by the
// gate, or carried by a chunk that also carried a tool call) and stops the
// sink.
func (d *deltaSink) finish(text string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if rest, ok := strings.CutPrefix(text, d.sent.String()); ok && rest != "" {
		d.sent.WriteString(rest)
		d.on(rest)
	}
}

// isToolCallChunk reports whether b is how langchaingo's OpenAI client
// streams tool call deltas: exactly a JSON array of
// {"id"?, "type", "function": {"name", "arguments"}} objects. Reply text
// that is exactly that is not worth streaming anyway.
func isToolCallChunk(b []byte) bool {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '[' {
		return false
	}
	var calls []struct {
		ID       *string `json:"id"`
		Type     *string `json:"type"`
		Function *struct {
			Name      *string `json:"name"`
			Arguments *string `json:"arguments"`
		} `json:"function"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if dec.Decode(&calls) != nil || dec.More() || len(calls) == 0 {
		return false
	}
	for _, c := range calls {
		if c.Type == nil || c.Function == nil || c.Function.Name == nil || c.Function.Arguments == nil {
			return false
		}
	}
	return true
}

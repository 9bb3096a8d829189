package agent

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

var weatherTool = Tool{
	Name:        "get_weather",
	Description: "The forecast for a city on a date.",
	Parameters:  json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"},"date":{"type":"string","format":"date"}},"required":["city"]}`),
}

func TestParseToolReply(t *testing.T) {
	tools := []Tool{weatherTool}
	call := func(args string) []ToolCall {
		return []ToolCall{{ID: "x-3-0", Name: "get_weather", Arguments: json.RawMessage(args)}}
	}
	for _, c := range []struct {
		reply string
		text  string
		calls []ToolCall
	}{
		{`{"tool_calls":[{"name":"get_weather","arguments":{"city":"Paris"}}]}`, "", call(`{"city":"Paris"}`)},
		{"```json\n{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]}\n```", "", call(`{"city": "Paris"}`)},
		{`Sure. {"tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"}}} Let me check.`, "", call(`{"city": "Oslo"}`)},
		{`{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}`, "", call(`{"city":"Rome"}`)},
		{`{"name":"get_weather"}`, "", call(`{}`)},
		{`{"name":"get_weather","arguments":null}`, "", call(`{}`)},
		{`{"tool_calls":[{"name":"book_flight","arguments":{}}]}`, `{"tool_calls":[{"name":"book_flight","arguments":{}}]}`, nil},
		{"It will be sunny in Paris.", "It will be sunny in Paris.", nil},
		{`The set {1, 2} has two elements.`, `The set {1, 2} has two elements.`, nil},
	} {
		text, calls := parseToolReply(c.reply, tools, "x", 3)
		if text != c.text || !slices.EqualFunc(calls, c.calls, func(a, b ToolCall) bool {
			return a.ID == b.ID && a.Name == b.Name && string(a.Arguments) == string(b.Arguments)
		}) {
			t.Errorf("parseToolReply(%q) = %q, %s; want %q, %s", c.reply, text, jsonOf(calls), c.text, jsonOf(c.calls))
		}
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestTextConversation(t *testing.T) {
	call := ToolCall{ID: "c1", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Paris"}`)}
	system, turns := textConversation([]Message{
		{Role: RoleSystem, Content: "Be brief."},
		{Role: RoleUser, Content: "Weather in Paris?"},
		{Role: RoleAssistant, Content: "Checking.", ToolCalls: []ToolCall{call}},
		ToolResult(call, `{"forecast":"sunny"}`),
		{Role: RoleUser, Content: "And tomorrow?"},
	}, []Tool{weatherTool})
	if !strings.HasPrefix(system, "Be brief.\n\nYou can call tools.") ||
		!strings.Contains(system, "get_weather: The forecast for a city on a date.\nParameters (JSON Schema): "+string(weatherTool.Parameters)) {
		t.Errorf("system prompt:\n%s", system)
	}
	want := []textTurn{
		{RoleUser, "Weather in Paris?"},
		{RoleAssistant, `Checking.` + "\n\n" + `{"tool_calls":[{"name":"get_weather","arguments":{"city":"Paris"}}]}`},
		{RoleUser, "Result of tool call c1 (get_weather):\n{\"forecast\":\"sunny\"}\n\nAnd tomorrow?"},
	}
	if !slices.Equal(turns, want) {
		t.Errorf("turns:\n%q\nwant\n%q", turns, want)
	}
}

func TestIsToolCallChunk(t *testing.T) {
	for chunk, want := range map[string]bool{
		`[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]`: true,
		`[{"type":"","function":{"name":"","arguments":"{\"city\""}}]`:                         true,
		`[{"type":"function"}]`: false,
		`[1, 2]`:                false,
		`[]`:                    false,
		`Hello`:                 false,
		`[{"type":"a","function":{"name":"b","arguments":"c","extra":1}}]`: false,
		`[{"type":"a","function":{"name":"b","arguments":"c"}}] and more`:  false,
	} {
		if got := isToolCallChunk([]byte(chunk)); got != want {
			t.Errorf("isToolCallChunk(%s) = %v", chunk, got)
		}
	}
}

func TestDeltaSink(t *testing.T) {
	run := func(gate bool, chunks []string, final string) []string {
		var got []string
		d := &deltaSink{on: func(s string) { got = append(got, s) }, gate: gate, skipToolJSON: true}
		for _, c := range chunks {
			if err := d.chunk(context.Background(), []byte(c)); err != nil {
				t.Fatal(err)
			}
		}
		d.finish(final)
		_ = d.chunk(context.Background(), []byte("late")) // after finish: dropped
		return got
	}
	// Text flows; a tool call chunk is dropped; what a dropped chunk carried
	// of the text comes at the end.
	if got := run(false, []string{"", "Hel", "lo", `[{"type":"function","function":{"name":"f","arguments":""}}]`}, "Hello!"); !slices.Equal(got, []string{"Hel", "lo", "!"}) {
		t.Errorf("plain: %q", got)
	}
	// The gate passes text once it sees it is not JSON.
	if got := run(true, []string{" ", " Sun", "ny"}, "  Sunny"); !slices.Equal(got, []string{"  Sun", "ny"}) {
		t.Errorf("gate, text: %q", got)
	}
	// The gate holds JSON: a tool call shows nothing.
	if got := run(true, []string{`{"tool_calls":`, `[]}`}, ""); len(got) != 0 {
		t.Errorf("gate, tool call: %q", got)
	}
	// JSON that was not a tool call comes whole at the end.
	if got := run(true, []string{`{"a":`, `1}`}, `{"a":1}`); !slices.Equal(got, []string{`{"a":1}`}) {
		t.Errorf("gate, JSON text: %q", got)
	}
}

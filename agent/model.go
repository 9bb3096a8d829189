package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"time"
)

// Model is a source of assistant turns: an LLM reached through langchaingo
// (LangChain), the connected MCP client's model reached through sampling
// (Sampling), or the built-in rule-based model (Offline); Fallback puts one
// in front of another. The agent loop talks to all of them through this one
// method, so it has one path whatever answers.
//
// Generate continues the conversation msgs with the next assistant turn. The
// reply is text, tool calls, or both. The caller runs the tool calls,
// appends the reply's Message and one RoleTool message per call (ToolResult
// builds it), and calls Generate again, until a reply has no tool calls.
//
// The contract every implementation keeps, and that modeltest.Run checks:
//
//   - A reply only calls tools that are offered in tools, and every tool
//     call has an ID that is unique within the conversation.
//   - A tool call's Arguments are the model's raw output for the call: a JSON
//     object as a rule, but not checked against the tool's schema, nor even
//     guaranteed to be well-formed JSON. Validate before running the tool.
//   - If opts.OnDelta is set, Generate hands it the reply's text in pieces,
//     in order, one call at a time and all before it returns; the pieces
//     concatenate to Response.Text. Tool call arguments never go through
//     it. A source that cannot stream hands over the whole text at once. The
//     calls may come from a goroutine other than the caller's. When
//     Generate fails, the pieces already delivered are void.
//   - Generate does not modify msgs, tools or opts.Steps, and keeps no
//     reference to them once it returns.
//   - Generate returns soon after ctx is done, with an error that wraps
//     ctx.Err().
//   - Generate is safe to call from several goroutines at once.
type Model interface {
	Generate(ctx context.Context, msgs []Message, tools []Tool, opts Options) (Response, error)
}

// Role says who wrote a message of a conversation.
type Role string

// The roles of a conversation.
const (
	RoleSystem    Role = "system"    // instructions to the model
	RoleUser      Role = "user"      // what the user said
	RoleAssistant Role = "assistant" // what the model answered: text, tool calls or both
	RoleTool      Role = "tool"      // the result of one tool call
)

// Message is one message of a conversation. Content is its text; for a
// RoleTool message it is the tool's result as the model should read it
// (usually JSON, or the text of an error). ToolCalls are set on RoleAssistant
// messages only; ToolCallID and Name on RoleTool messages only, naming the
// call the message answers and its tool.
//
// Messages marshal to JSON, so that a conversation can be checkpointed and
// resumed.
type Message struct {
	Role       Role       `json:"role"`
	Content    string     `json:"content,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	Name       string     `json:"name,omitempty"`
}

// ToolResult returns the RoleTool message that answers call with content.
func ToolResult(call ToolCall, content string) Message {
	return Message{Role: RoleTool, Content: content, ToolCallID: call.ID, Name: call.Name}
}

// Tool is a tool the model may call: its name, what it does (the model
// reads this to decide) and its parameters, a JSON Schema of the arguments
// object. Empty Parameters means the tool takes no arguments.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// ToolCall is a model's request to call a tool. ID identifies the call in
// the conversation (the RoleTool message that answers it carries the same
// ID). Arguments are the model's raw output; see Model for what is and is
// not guaranteed about them.
type ToolCall struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// Options are the settings of one Generate call. The zero value asks for
// the source's defaults and no streaming.
type Options struct {
	// Temperature is the sampling temperature. The zero value asks for the
	// most deterministic answers, which suits an agent; langchaingo sends
	// the value as it is, MCP sampling passes it only when it is above 0.
	Temperature float64

	// MaxTokens caps the length of the reply; 0 leaves it to the source.
	MaxTokens int

	// OnDelta, if set, receives the reply's text as it is generated; see
	// Model for the guarantees.
	OnDelta func(delta string)

	// Location and Now are the user's time zone and the moment the user
	// spoke: what "tomorrow at 8" is read against. The LLM sources ignore
	// them (the agent states the date in its system prompt); Offline plans
	// with them. Nil Location means UTC; zero Now means Offline's clock.
	Location *time.Location
	Now      time.Time

	// Steps are the tool calls a task declares, in order, for a model that
	// cannot decide them itself: Offline makes them one per turn. The LLM
	// sources ignore them; the task's instruction tells an LLM what to do.
	Steps []Step
}

// Step is one declared tool call of a task: the tool and its arguments,
// templates already filled in. Empty Args means no arguments ({}).
type Step struct {
	Tool string          `json:"tool"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Response is a model's reply: the assistant's text, the tool calls it asks
// for, what the call cost, and which source answered.
type Response struct {
	Text      string
	ToolCalls []ToolCall
	Usage     Usage

	// Source names the model that answered, such as "openai:gpt-4o-mini",
	// "sampling:claude-sonnet-4" or "offline"; behind a Fallback it tells
	// which of the two did.
	Source string
}

// Message returns the reply as the RoleAssistant message to append to the
// conversation.
func (r Response) Message() Message {
	calls := make([]ToolCall, len(r.ToolCalls))
	for i, c := range r.ToolCalls {
		calls[i] = ToolCall{ID: c.ID, Name: c.Name, Arguments: slices.Clone(c.Arguments)}
	}
	if len(calls) == 0 {
		calls = nil
	}
	return Message{Role: RoleAssistant, Content: r.Text, ToolCalls: calls}
}

// Usage is the number of tokens a call consumed, as the source reported
// them; 0 means not reported (the offline model reports none).
type Usage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

// offered reports whether a tool named name is among tools.
func offered(tools []Tool, name string) bool {
	return slices.ContainsFunc(tools, func(t Tool) bool { return t.Name == name })
}

// emptyObject is the arguments of a call without arguments.
var emptyObject = json.RawMessage(`{}`)

// normalizeArgs turns the empty arguments some sources send for a tool
// without parameters into {}; anything else is kept as the model wrote it.
func normalizeArgs(args []byte) json.RawMessage {
	if len(bytes.TrimSpace(args)) == 0 {
		return slices.Clone(emptyObject)
	}
	return slices.Clone(args)
}

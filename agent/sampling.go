package agent

import (
	"context"
	"errors"
	"fmt"
)

// Sampler asks the model of a connected MCP client for one message, as the
// MCP request sampling/createMessage does: the MCP server implements it
// over the client session that made the request, when the client declared
// the sampling capability. The client may show the request to its user, who
// may edit or refuse it; a refusal is an error.
//
// CreateMessage must return soon after ctx is done, and be safe to call
// from several goroutines at once.
type Sampler interface {
	CreateMessage(ctx context.Context, req SamplingRequest) (SamplingResult, error)
}

// SamplingRequest is the text-only subset of sampling/createMessage's
// parameters that Sampling uses. MaxTokens is always set (MCP requires it);
// Temperature is nil when the client should choose.
type SamplingRequest struct {
	Messages     []SamplingMessage
	SystemPrompt string
	MaxTokens    int
	Temperature  *float64
}

// SamplingMessage is one message of a sampling request, with text content.
// Role is RoleUser or RoleAssistant.
type SamplingMessage struct {
	Role Role
	Text string
}

// SamplingResult is the client's answer: its text, the model that wrote it
// and why it stopped ("endTurn", "maxTokens", …), as the client reports them.
type SamplingResult struct {
	Text       string
	Model      string
	StopReason string
}

// DefaultSamplingMaxTokens is the reply budget Sampling asks for when
// neither the call nor the Sampling sets one.
const DefaultSamplingMaxTokens = 1024

// Sampling is a Model over an MCP client's model, reached through a
// Sampler. Sampling carries text only, so tools go through the text tool
// protocol: when tools are offered, the system prompt lists them and asks
// for a reply that is only {"tool_calls": [{"name": …, "arguments": {…}}]},
// which Generate reads back as tool calls; earlier calls and their results
// travel as text in the same form. Sampling does not stream: OnDelta gets
// the whole text at once. Options.Location, Now and Steps are ignored.
// Tool call IDs are "sampling-<n>-<i>", n the number of messages in the
// conversation.
type Sampling struct {
	// Sampler reaches the client's model.
	Sampler Sampler

	// MaxTokens is the reply budget when a call's Options.MaxTokens is 0;
	// 0 means DefaultSamplingMaxTokens.
	MaxTokens int
}

// Generate implements Model.
func (s *Sampling) Generate(ctx context.Context, msgs []Message, tools []Tool, opts Options) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	system, turns := textConversation(msgs, tools)
	if len(turns) == 0 {
		return Response{}, errors.New("agent: sampling: the conversation has no user or assistant message")
	}
	req := SamplingRequest{SystemPrompt: system, MaxTokens: opts.MaxTokens}
	if req.MaxTokens <= 0 {
		req.MaxTokens = s.MaxTokens
	}
	if req.MaxTokens <= 0 {
		req.MaxTokens = DefaultSamplingMaxTokens
	}
	if opts.Temperature > 0 {
		t := opts.Temperature
		req.Temperature = &t
	}
	for _, t := range turns {
		req.Messages = append(req.Messages, SamplingMessage{Role: t.role, Text: t.text})
	}
	res, err := s.Sampler.CreateMessage(ctx, req)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			return Response{}, fmt.Errorf("agent: sampling: %w (%w)", err, ctx.Err())
		}
		return Response{}, fmt.Errorf("agent: sampling: %w", err)
	}
	resp := Response{Text: res.Text, Source: "sampling"}
	if res.Model != "" {
		resp.Source += ":" + res.Model
	}
	if len(tools) > 0 {
		resp.Text, resp.ToolCalls = parseToolReply(res.Text, tools, "sampling", len(msgs))
	}
	if opts.OnDelta != nil && resp.Text != "" {
		opts.OnDelta(resp.Text)
	}
	return resp, nil
}

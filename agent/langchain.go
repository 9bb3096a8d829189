package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/anthropic"
	"github.com/tmc/langchaingo/llms/ollama"
	"github.com/tmc/langchaingo/llms/openai"

	"github.com/vigilhq/vigil"
)

// The kinds of LLM provider a ProviderConfig can name.
const (
	// ProviderOpenAI is any server that speaks OpenAI's chat completions:
	// OpenAI itself, DeepSeek, vLLM, llama.cpp's server, Ollama's /v1.
	ProviderOpenAI = "openai"
	// ProviderOllama is Ollama's native API (/api/chat).
	ProviderOllama = "ollama"
	// ProviderAnthropic is Anthropic's Messages API.
	ProviderAnthropic = "anthropic"
)

// DefaultProviderTimeout bounds one Generate call of a LangChain whose
// ProviderConfig sets no Timeout.
const DefaultProviderTimeout = 60 * time.Second

// The base URLs used when a ProviderConfig gives none.
const (
	defaultOpenAIURL    = "https://api.openai.com/v1"
	defaultAnthropicURL = "https://api.anthropic.com/v1"
	defaultOllamaURL    = "http://127.0.0.1:11434"
)

// ProviderConfig says which LLM a LangChain talks to. The zero value of
// every field but Kind and Model means a default.
type ProviderConfig struct {
	// Kind is ProviderOpenAI, ProviderOllama or ProviderAnthropic.
	Kind string

	// BaseURL is where the API lives, such as https://api.deepseek.com/v1,
	// http://localhost:8000/v1 (vLLM) or http://localhost:11434/v1 (Ollama's
	// OpenAI-compatible endpoint) for ProviderOpenAI, and
	// http://localhost:11434 for ProviderOllama. Empty means the provider's
	// public API (OpenAI, Anthropic) or a local Ollama.
	BaseURL string

	// Model is the model's name at the provider, such as gpt-4o-mini,
	// deepseek-chat, qwen2.5:7b or claude-sonnet-4-5. It is required.
	Model string

	// APIKeyEnv names the environment variable that holds the API key; the
	// key itself never appears in configuration. It is read once, by
	// NewLangChain. Empty means no key, which suits local servers
	// (ProviderOpenAI then sends a placeholder, since the client insists on
	// one) and not Anthropic.
	APIKeyEnv string

	// Timeout bounds each Generate call, streaming included; 0 means
	// DefaultProviderTimeout.
	Timeout time.Duration

	// HTTPClient makes the requests; nil means langchaingo's default client.
	HTTPClient *http.Client
}

// LangChain is a Model over an LLM reached through tmc/langchaingo. Build
// one with NewLangChain; it is safe for concurrent use.
//
// Tools map to langchaingo's tool definitions (llms.Tool of type "function",
// whose FunctionDefinition carries the name, the description and the JSON
// Schema parameters as they are), tool calls come back from
// ContentChoice.ToolCalls, and the conversation's tool calls and results go
// out as llms.ToolCall parts of AI messages and llms.ToolCallResponse parts
// of tool messages. With a streaming callback, llms.WithStreamingFunc feeds
// it the text chunks.
//
// langchaingo's native Ollama client (v0.1.14) sends no tools, so with
// ProviderOllama tools go through the text tool protocol described on
// Sampling; for native tool calling point ProviderOpenAI at Ollama's /v1.
type LangChain struct {
	llm       llms.Model
	source    string // "<kind>:<model>", Response.Source
	timeout   time.Duration
	textTools bool     // ProviderOllama: tools through the text protocol
	splitAI   bool     // ProviderAnthropic: one part per AI message
	metadata  []string // keys of langchaingo call metadata set to true
	skipJSON  bool     // ProviderOpenAI: drop tool call chunks from streaming
}

// NewLangChain returns a LangChain for cfg. It reads the API key from the
// environment but does not contact the provider; a bad key or an
// unreachable server shows on the first Generate. A configuration problem is
// a vigil.Invalid error on the field at fault (kind, model, base_url,
// api_key_env).
func NewLangChain(cfg ProviderConfig) (*LangChain, error) {
	if cfg.Model == "" {
		return nil, vigil.FieldError("model", "is required")
	}
	key := ""
	if cfg.APIKeyEnv != "" {
		if key = os.Getenv(cfg.APIKeyEnv); key == "" {
			return nil, vigil.FieldError("api_key_env", "names %s, which is not set or is empty", cfg.APIKeyEnv)
		}
	}
	l := &LangChain{source: cfg.Kind + ":" + cfg.Model, timeout: cfg.Timeout}
	if l.timeout <= 0 {
		l.timeout = DefaultProviderTimeout
	}
	base, err := baseURL(cfg)
	if err != nil {
		return nil, err
	}
	// Every option is set explicitly, so that langchaingo's own environment
	// variables (OPENAI_API_KEY, OPENAI_BASE_URL, OLLAMA_HOST, …) have no say.
	switch cfg.Kind {
	case ProviderOpenAI:
		if key == "" {
			key = "none" // local servers ignore it; the client refuses an empty one
		}
		opts := []openai.Option{openai.WithToken(key), openai.WithModel(cfg.Model), openai.WithBaseURL(base)}
		if cfg.HTTPClient != nil {
			opts = append(opts, openai.WithHTTPClient(cfg.HTTPClient))
		}
		l.llm, err = openai.New(opts...)
		l.skipJSON = true
		if u, _ := url.Parse(base); u.Hostname() != "api.openai.com" {
			// OpenAI-compatible servers (vLLM, llama.cpp, DeepSeek, Ollama)
			// know max_tokens; OpenAI's reasoning models want
			// max_completion_tokens, langchaingo's default.
			l.metadata = append(l.metadata, "openai:use_legacy_max_tokens")
		}
	case ProviderAnthropic:
		if key == "" {
			return nil, vigil.FieldError("api_key_env", "is required for anthropic")
		}
		opts := []anthropic.Option{anthropic.WithToken(key), anthropic.WithModel(cfg.Model), anthropic.WithBaseURL(base)}
		if cfg.HTTPClient != nil {
			opts = append(opts, anthropic.WithHTTPClient(cfg.HTTPClient))
		}
		l.llm, err = anthropic.New(opts...)
		l.splitAI = true
	case ProviderOllama:
		opts := []ollama.Option{ollama.WithModel(cfg.Model), ollama.WithServerURL(base)}
		if cfg.HTTPClient != nil {
			opts = append(opts, ollama.WithHTTPClient(cfg.HTTPClient))
		}
		l.llm, err = ollama.New(opts...)
		l.textTools = true
	default:
		return nil, vigil.FieldError("kind", "must be %s, %s or %s, not %q", ProviderOpenAI, ProviderOllama, ProviderAnthropic, cfg.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("agent: %s: %w", l.source, err)
	}
	return l, nil
}

// baseURL returns cfg's base URL, or the provider's default, once checked:
// langchaingo's Ollama client exits the process on a URL it cannot parse,
// and its Anthropic client rewrites an empty one on every call.
func baseURL(cfg ProviderConfig) (string, error) {
	base := cfg.BaseURL
	if base == "" {
		switch cfg.Kind {
		case ProviderOpenAI:
			base = defaultOpenAIURL
		case ProviderAnthropic:
			base = defaultAnthropicURL
		case ProviderOllama:
			base = defaultOllamaURL
		}
	}
	u, err := url.Parse(base)
	if base != "" && (err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "") {
		return "", vigil.FieldError("base_url", "must be an absolute http(s) URL, not %q", cfg.BaseURL)
	}
	return strings.TrimSuffix(base, "/"), nil
}

// Generate implements Model.
func (l *LangChain) Generate(ctx context.Context, msgs []Message, tools []Tool, opts Options) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()

	textTools := l.textTools && (len(tools) > 0 || hasToolTraffic(msgs))
	var mcs []llms.MessageContent
	if textTools {
		mcs = textMessages(msgs, tools)
	} else {
		var err error
		if mcs, err = l.messages(msgs); err != nil {
			return Response{}, fmt.Errorf("agent: %s: %w", l.source, err)
		}
	}

	call := []llms.CallOption{llms.WithTemperature(opts.Temperature)}
	if opts.MaxTokens > 0 {
		call = append(call, llms.WithMaxTokens(opts.MaxTokens))
	}
	if len(l.metadata) > 0 {
		md := map[string]any{}
		for _, k := range l.metadata {
			md[k] = true
		}
		call = append(call, llms.WithMetadata(md))
	}
	if len(tools) > 0 && !textTools {
		call = append(call, llms.WithTools(langchainTools(tools)))
	}
	var sink *deltaSink
	if opts.OnDelta != nil {
		sink = &deltaSink{on: opts.OnDelta, skipToolJSON: l.skipJSON, gate: textTools && len(tools) > 0}
		call = append(call, llms.WithStreamingFunc(sink.chunk))
	}

	res, err := l.llm.GenerateContent(ctx, mcs, call...)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			// langchaingo's OpenAI client replaces context errors with
			// plain text; put the cause back for callers that check.
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return Response{}, fmt.Errorf("agent: %s: %w", l.source, err)
	}
	resp := l.response(res, len(msgs))
	if textTools && len(tools) > 0 {
		resp.Text, resp.ToolCalls = parseToolReply(resp.Text, tools, "call", len(msgs))
	}
	if sink != nil {
		sink.finish(resp.Text)
	}
	return resp, nil
}

// messages converts a conversation to langchaingo's messages.
func (l *LangChain) messages(msgs []Message) ([]llms.MessageContent, error) {
	out := make([]llms.MessageContent, 0, len(msgs))
	for i, m := range msgs {
		switch m.Role {
		case RoleSystem:
			if m.Content != "" {
				out = append(out, llms.TextParts(llms.ChatMessageTypeSystem, m.Content))
			}
		case RoleUser:
			out = append(out, llms.TextParts(llms.ChatMessageTypeHuman, m.Content))
		case RoleAssistant:
			var parts []llms.ContentPart
			if m.Content != "" {
				parts = append(parts, llms.TextContent{Text: m.Content})
			}
			for _, c := range m.ToolCalls {
				args := string(normalizeArgs(c.Arguments))
				if l.splitAI && !isJSONObject(args) {
					args = "{}" // Anthropic's client decodes them into a map; the tool's result says what was wrong
				}
				parts = append(parts, llms.ToolCall{
					ID: c.ID, Type: "function",
					FunctionCall: &llms.FunctionCall{Name: c.Name, Arguments: args},
				})
			}
			switch {
			case len(parts) == 0:
				// An empty turn: nothing to send.
			case l.splitAI:
				// Anthropic's client reads the first part of an AI message
				// only; consecutive assistant messages are merged by the API.
				for _, p := range parts {
					out = append(out, llms.MessageContent{Role: llms.ChatMessageTypeAI, Parts: []llms.ContentPart{p}})
				}
			default:
				out = append(out, llms.MessageContent{Role: llms.ChatMessageTypeAI, Parts: parts})
			}
		case RoleTool:
			out = append(out, llms.MessageContent{
				Role:  llms.ChatMessageTypeTool,
				Parts: []llms.ContentPart{llms.ToolCallResponse{ToolCallID: m.ToolCallID, Name: m.Name, Content: m.Content}},
			})
		default:
			return nil, fmt.Errorf("message %d: unknown role %q", i, m.Role)
		}
	}
	return out, nil
}

// textMessages converts a conversation to langchaingo text messages under
// the text tool protocol.
func textMessages(msgs []Message, tools []Tool) []llms.MessageContent {
	system, turns := textConversation(msgs, tools)
	var out []llms.MessageContent
	if system != "" {
		out = append(out, llms.TextParts(llms.ChatMessageTypeSystem, system))
	}
	for _, t := range turns {
		role := llms.ChatMessageTypeHuman
		if t.role == RoleAssistant {
			role = llms.ChatMessageTypeAI
		}
		out = append(out, llms.TextParts(role, t.text))
	}
	return out
}

// hasToolTraffic reports whether msgs hold tool calls or results.
func hasToolTraffic(msgs []Message) bool {
	for _, m := range msgs {
		if m.Role == RoleTool || len(m.ToolCalls) > 0 {
			return true
		}
	}
	return false
}

// langchainTools converts tools to langchaingo's function tools.
func langchainTools(tools []Tool) []llms.Tool {
	out := make([]llms.Tool, len(tools))
	for i, t := range tools {
		out[i] = llms.Tool{Type: "function", Function: &llms.FunctionDefinition{
			Name:        t.Name,
			Description: t.Description,
			Parameters:  parametersOf(t),
		}}
	}
	return out
}

// response merges langchaingo's choices into one reply. The OpenAI client
// returns one choice (Vigil never asks for more); the Anthropic client
// returns one choice per content block: text, tool use, thinking. A call
// without an ID (some OpenAI-compatible servers omit it) gets
// "call-<n>-<i>", n the number of messages in the conversation.
func (l *LangChain) response(res *llms.ContentResponse, n int) Response {
	resp := Response{Source: l.source}
	usage := false
	for _, c := range res.Choices {
		if c == nil {
			continue
		}
		resp.Text += c.Content
		calls := c.ToolCalls
		if len(calls) == 0 && c.FuncCall != nil {
			calls = []llms.ToolCall{{FunctionCall: c.FuncCall}} // a legacy function_call
		}
		for _, tc := range calls {
			if tc.FunctionCall == nil {
				continue
			}
			id := tc.ID
			if id == "" {
				id = fmt.Sprintf("call-%d-%d", n, len(resp.ToolCalls))
			}
			resp.ToolCalls = append(resp.ToolCalls, ToolCall{
				ID: id, Name: tc.FunctionCall.Name, Arguments: normalizeArgs([]byte(tc.FunctionCall.Arguments)),
			})
		}
		if !usage {
			resp.Usage, usage = usageOf(c.GenerationInfo)
		}
	}
	return resp
}

// usageOf reads token counts from a choice's GenerationInfo, under the
// OpenAI and Ollama names or the Anthropic ones.
func usageOf(info map[string]any) (Usage, bool) {
	in, okIn := intOf(info["PromptTokens"])
	if !okIn {
		in, okIn = intOf(info["InputTokens"])
	}
	out, okOut := intOf(info["CompletionTokens"])
	if !okOut {
		out, okOut = intOf(info["OutputTokens"])
	}
	return Usage{InputTokens: in, OutputTokens: out}, okIn || okOut
}

func intOf(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case float64:
		return int(n), true
	}
	return 0, false
}

func isJSONObject(s string) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal([]byte(s), &m) == nil && m != nil
}

package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// Offline is the built-in model: rules instead of an LLM, for English and
// Chinese. It needs no network and no key, it is the default model when no
// LLM is configured and the Secondary of a Fallback when one is, and the
// same conversation always gets the same reply. The zero value is ready to
// use.
//
// It answers a turn by the first of these rules that applies:
//
//  1. plan_task (PlanTaskTool) is offered and not yet answered since the
//     last user message: it calls plan_task with PlanOffline's plan of the
//     last user message, read in Options.Location against Options.Now.
//     Only that message is read: merging a clarification's answer into the
//     draft it answers is the main agent's business.
//  2. Options.Steps are given: it calls the first declared step not yet
//     made since the last user message (a step counts as made once a call
//     of its tool has a result, whoever made the call), and once all are
//     made it answers with their results, one per line. A step whose tool
//     is not offered is an error.
//  3. Otherwise it answers with a short text in the user's language: after
//     a plan, the plan's question or an acknowledgement; else a greeting or
//     a note of what it can do.
//
// Tool call IDs are "offline-<n>-<i>", n the number of messages in the
// conversation, so they are unique within it.
type Offline struct {
	// Now is the clock read when a call's Options.Now is zero; nil means
	// time.Now.
	Now func() time.Time
}

// Generate implements Model.
func (o Offline) Generate(ctx context.Context, msgs []Message, tools []Tool, opts Options) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	resp := Response{Source: "offline"}
	text, since := "", msgs
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == RoleUser {
			text, since = msgs[i].Content, msgs[i+1:]
			break
		}
	}
	call := func(name string, args json.RawMessage) Response {
		resp.ToolCalls = []ToolCall{{ID: fmt.Sprintf("offline-%d-0", len(msgs)), Name: name, Arguments: args}}
		return resp
	}
	req := Request{Text: text, TZ: opts.Location, Now: opts.Now}
	if req.Now.IsZero() {
		req.Now = time.Now()
		if o.Now != nil {
			req.Now = o.Now()
		}
	}

	_, planned := answered(since, PlanTaskName)
	switch {
	case offered(tools, PlanTaskName) && !planned:
		args, err := json.Marshal(planArgs(PlanOffline(req)))
		if err != nil {
			return Response{}, fmt.Errorf("agent: offline: %w", err)
		}
		return call(PlanTaskName, args), nil
	case len(opts.Steps) > 0:
		results, next := stepsMade(since, opts.Steps)
		if next < len(opts.Steps) {
			step := opts.Steps[next]
			if !offered(tools, step.Tool) {
				return Response{}, fmt.Errorf("agent: offline: step %d calls %q, which is not among the offered tools", next+1, step.Tool)
			}
			return call(step.Tool, normalizeArgs(step.Args)), nil
		}
		resp.Text = strings.Join(results, "\n")
	case planned:
		p := PlanOffline(req)
		resp.Text = p.Question
		if resp.Text == "" {
			resp.Text = pick(p.Language == "zh", "OK.", "好的。")
		}
	default:
		resp.Text = chatReply(text)
	}
	if resp.Text == "" {
		resp.Text = pick(hasHan(text), "Done.", "完成。")
	}
	if opts.OnDelta != nil {
		opts.OnDelta(resp.Text)
	}
	return resp, nil
}

// answered reports whether msgs hold a call of the tool name that has a
// result, and returns the last such result.
func answered(msgs []Message, name string) (result string, ok bool) {
	results := map[string]string{}
	for _, m := range msgs {
		if m.Role == RoleTool {
			results[m.ToolCallID] = m.Content
		}
	}
	for _, m := range msgs {
		for _, c := range m.ToolCalls {
			if r, done := results[c.ID]; done && c.Name == name && m.Role == RoleAssistant {
				result, ok = r, true
			}
		}
	}
	return result, ok
}

// stepsMade matches the answered tool calls of msgs, in order, against
// steps, and returns the results of the steps made and the index of the
// next step to make.
func stepsMade(msgs []Message, steps []Step) (results []string, next int) {
	byID := map[string]string{}
	for _, m := range msgs {
		if m.Role == RoleTool {
			byID[m.ToolCallID] = m.Content
		}
	}
	for _, m := range msgs {
		if m.Role != RoleAssistant {
			continue
		}
		for _, c := range m.ToolCalls {
			r, done := byID[c.ID]
			if done && next < len(steps) && c.Name == steps[next].Tool {
				results = append(results, r)
				next++
			}
		}
	}
	return results, next
}

var greetingRe = regexp.MustCompile(`(?i)^[\s\p{P}]*(?:(?:hi|hello|hey|good (?:morning|afternoon|evening))\b|你好|您好|嗨|哈喽|早上好|晚上好)`)

// chatReply is the offline model's answer to a message that asks for no
// task: a greeting back, or a note of what it can do, in the user's
// language.
func chatReply(text string) string {
	zh := hasHan(text)
	if greetingRe.MatchString(strings.TrimSpace(text)) {
		return pick(zh,
			"Hello! I can set up tasks for you, such as “send me the weather in Beijing every day at 8am”.",
			"你好！我可以帮你设置任务，比如“每天早上8点推送北京天气”。")
	}
	return pick(zh,
		"I'm running without a language model, so I can only help with tasks: for example “send me the weather in Beijing every day at 8am”, “remind me to call mom in 2 hours” or “tell me when BTC drops below 60000”.",
		"我现在以离线模式运行，只能帮你处理任务，比如“每天早上8点推送北京天气”、“2小时后提醒我给妈妈打电话”或“比特币跌破6万时通知我”。")
}

func hasHan(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) })
}

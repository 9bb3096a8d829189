package agent

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/streams"
)

// This file reads a conversation's state back from its thread: the
// assistant keeps nothing between turns in memory, so that a turn answered
// by another process, or after a restart, goes on where the last one left
// off.
//
// Two conventions make that possible without a field the protocol lacks:
//
//   - A user's message is a text event whose message id starts with
//     UserMessagePrefix; the assistant's own messages use "msg_".
//   - A clarification carries what it is asking about in its schema, under
//     the extension keyword PendingKeyword: the plan so far and the user's
//     words, or the tasks the user must choose between. JSON Schema ignores
//     keywords it does not know, so a client rendering the form is not
//     disturbed, and the next turn reads the draft back from the log.

// UserMessagePrefix starts the message id of every text event that records
// what a user said; an assistant's messages have ids starting "msg_" and
// never this prefix. The text payload has no role field: the id tells.
const UserMessagePrefix = "msg_user_"

// IsUserMessage reports whether a text event's message id is a user's
// message (see UserMessagePrefix).
func IsUserMessage(messageID string) bool { return strings.HasPrefix(messageID, UserMessagePrefix) }

// PendingKeyword is the extension keyword under which a clarification's
// schema carries the state of the question: {"words": the user's words so
// far, "plan": the plan so far, "tz": the zone it was read in} for a task being planned, or {"action":
// "pause_task", "candidates": [task ids]} for a choice between tasks.
const PendingKeyword = "x-vigil-pending"

// pending is what a clarification asks about.
type pending struct {
	// Words and Plan: a task being planned, still missing slots.
	Words string `json:"words,omitempty"`
	Plan  *Plan  `json:"plan,omitempty"`
	// TZ is the zone the plan was read in, for an answer that names none.
	TZ string `json:"tz,omitempty"`

	// Action and Candidates: a management intent that matched several
	// tasks.
	Action     string   `json:"action,omitempty"`
	Candidates []string `json:"candidates,omitempty"`
}

// conversation is what the assistant knows of a thread when a message
// arrives.
type conversation struct {
	// pending is set when the thread's last turn ended with a
	// clarification of the assistant's.
	pending *pending
	// draft is the task of the latest task card, unless a clarification
	// came after it; the Manager tells whether it is still a draft.
	draft string
	// history is the user's and the assistant's messages, oldest first,
	// for an LLM's prompt.
	history []Message
	// lastLang is the language of the user's last message.
	lastLang string
}

// DefaultHorizon is how far back the assistant reads a thread when no
// Horizon is configured.
const DefaultHorizon = 24 * time.Hour

// conversation reads the thread's events of the last horizon (by event id,
// which is the store's append time) and replays them into a conversation.
// A question left unanswered for longer than the horizon is forgotten.
func (a *Assistant) conversation(ctx context.Context, tenant, thread string) (conversation, error) {
	var c conversation
	head, err := a.log.Read(ctx, tenant, thread, streams.ID{}, 0)
	if err != nil {
		return c, err
	}
	var after streams.ID
	if h := uint64(a.horizon.Milliseconds()); head.Last.Ms > h {
		after = streams.ID{Ms: head.Last.Ms - h}
	}
	page, err := streams.ReadAll(ctx, a.log, tenant, thread, after, 500)
	if err != nil {
		return c, err
	}
	for _, ev := range page.Events {
		c.observe(ev)
	}
	return c, nil
}

// observe replays one event into c.
func (c *conversation) observe(ev streams.Event) {
	switch ev.Type {
	case streams.TypeText:
		t, err := streams.Decode[streams.Text](ev)
		if err != nil {
			return
		}
		if IsUserMessage(t.MessageID) {
			c.pending = nil // a new turn began
			c.lastLang = pick(hasHan(t.Text), "en", "zh")
			c.history = append(c.history, Message{Role: RoleUser, Content: t.Text})
			return
		}
		c.history = append(c.history, Message{Role: RoleAssistant, Content: t.Text})
	case streams.TypeClarification:
		cl, err := streams.Decode[streams.Clarification](ev)
		if err != nil {
			return
		}
		c.pending = decodePending(cl.Schema)
		c.draft = ""
		c.history = append(c.history, Message{Role: RoleAssistant, Content: cl.Question})
	case streams.TypeTaskCard:
		card, err := streams.Decode[streams.TaskCard](ev)
		if err != nil {
			return
		}
		var task struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		}
		_ = json.Unmarshal(card.Task, &task)
		if task.ID == "" {
			task.ID = ev.TaskID
		}
		c.pending, c.draft = nil, task.ID
		c.history = append(c.history, Message{Role: RoleAssistant, Content: "Draft task for the user to confirm: " + task.Title})
	}
}

// decodePending reads the pending state out of a clarification's schema,
// or returns nil when it carries none.
func decodePending(schema json.RawMessage) *pending {
	var doc map[string]json.RawMessage
	if json.Unmarshal(schema, &doc) != nil {
		return nil
	}
	raw, ok := doc[PendingKeyword]
	if !ok {
		return nil
	}
	var p pending
	if json.Unmarshal(raw, &p) != nil || (p.Plan == nil && p.Action == "") {
		return nil
	}
	if p.Plan != nil && p.Plan.Missing == nil {
		p.Plan.Missing = []string{}
	}
	return &p
}

// timeSchema is the schema of the "time" a clarification asks for: the
// user's own words, which the planner reads.
var timeSchema = map[string]any{
	"type":        "string",
	"minLength":   1,
	"description": "When the task should run, in the user's words: 8am, every weekday at 7:30, tomorrow 18:00.",
}

// slotsClarification returns the schema of a clarification that asks for
// the plan's missing slots: their schemas from SlotSchema (with time as a
// string), and the pending state under PendingKeyword.
func slotsClarification(p Plan, words string, loc *time.Location) json.RawMessage {
	var domain struct {
		Properties map[string]any `json:"properties"`
	}
	_ = json.Unmarshal(SlotSchema(p.Domain), &domain)
	props := map[string]any{}
	var required []string
	doc := map[string]any{"type": "object"}
	for _, m := range p.Missing {
		switch m {
		case SlotTime:
			props[m] = timeSchema
			required = append(required, m)
		case SlotThreshold:
			// A price monitor needs a threshold or a percent.
			for _, k := range []string{SlotThreshold, SlotPercent, SlotDirection} {
				if s, ok := domain.Properties[k]; ok {
					props[k] = s
				}
			}
			doc["anyOf"] = []any{
				map[string]any{"required": []string{SlotThreshold}},
				map[string]any{"required": []string{SlotPercent}},
			}
		default:
			if s, ok := domain.Properties[m]; ok {
				props[m] = s
			} else {
				props[m] = map[string]any{"type": "string", "minLength": 1}
			}
			required = append(required, m)
		}
	}
	doc["properties"] = props
	if len(required) > 0 {
		doc["required"] = required
	}
	plan := p
	doc[PendingKeyword] = pending{Words: words, Plan: &plan, TZ: zoneName(loc)}
	b, _ := json.Marshal(doc)
	return b
}

// choiceClarification returns the schema of a clarification that asks
// which of several tasks an action is for.
func choiceClarification(action string, ids, titles []string) json.RawMessage {
	var options []any
	for i, id := range ids {
		options = append(options, map[string]any{"const": id, "title": titles[i]})
	}
	doc := map[string]any{
		"type": "object",
		"properties": map[string]any{
			"task": map[string]any{"type": "string", "oneOf": options, "description": "The task the action is for."},
		},
		"required":     []string{"task"},
		PendingKeyword: pending{Action: action, Candidates: ids},
	}
	b, _ := json.Marshal(doc)
	return b
}

// window trims the history to the short-term memory budget.
func (a *Assistant) window(history []Message) []Message {
	turns := make([]memory.Turn, len(history))
	for i, m := range history {
		turns[i] = memory.Turn{Role: string(m.Role), Text: m.Content}
	}
	if a.memory != nil {
		turns = a.memory.Window(turns)
	} else {
		turns = memory.Window(turns, memory.DefaultShortTermTokens, nil)
	}
	return history[len(history)-len(turns):]
}

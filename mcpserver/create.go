package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/agent"
	"github.com/vigilhq/vigil/tasks"
)

// CreateTaskInput are the arguments of create_task: a free-text request,
// structured fields, or both (the fields fill and override what the
// planner read).
type CreateTaskInput struct {
	Request string `json:"request,omitempty" jsonschema:"maxLength=4000" jsonschema_description:"What the user asked for, in their words (English or Chinese), such as \"remind me to call mom tomorrow at 9\". Planned by the server's agent."`
	TZ      string `json:"tz,omitempty" jsonschema_description:"The user's IANA time zone, such as Europe/Paris, for the times in request; default the server's."`
	SpecFields
}

// The statuses of create_task's result.
const (
	StatusDraft      = "draft"       // the task was created as a draft
	StatusNeedsInput = "needs_input" // required slots are missing; nothing was created
)

// CreateTaskOutput is the result of create_task.
type CreateTaskOutput struct {
	Status   string         `json:"status" jsonschema:"enum=draft,enum=needs_input" jsonschema_description:"draft: the task was created (confirm it with confirm_task); needs_input: nothing was created, answer question and call again."`
	Task     *tasks.Task    `json:"task,omitempty" jsonschema_description:"The draft task, when status is draft."`
	Plan     *agent.Plan    `json:"plan,omitempty" jsonschema_description:"What the planner read from the request."`
	Missing  []string       `json:"missing" jsonschema_description:"The required slots still missing; time means a schedule."`
	Question string         `json:"question,omitempty" jsonschema_description:"The question to ask the user for the missing slots."`
	Schema   map[string]any `json:"schema,omitempty" jsonschema_description:"A JSON Schema of the missing slots; give the answers as slots (a time as trigger, or in the request)."`
	Note     string         `json:"note,omitempty" jsonschema_description:"Why the user was not asked, when they could have been."`
}

// elicitKey names create_task's input request in a multi round-trip.
const elicitKey = "missing_slots"

// maxElicitRounds bounds how often create_task asks for one call.
const maxElicitRounds = 3

func (s *Server) createTask(ctx context.Context, c call[CreateTaskInput]) (*mcp.CallToolResult, error) {
	in := c.in
	if strings.TrimSpace(in.Request) == "" {
		t, err := s.opts.Tasks.Create(ctx, in.SpecFields.spec())
		if err != nil {
			return nil, err
		}
		red := t.Redacted()
		return structured(CreateTaskOutput{Status: StatusDraft, Task: &red, Missing: []string{}},
			taskText("Created draft", t)+" Confirm it with confirm_task."), nil
	}
	loc := s.opts.Location
	if in.TZ != "" {
		var err error
		if loc, err = time.LoadLocation(in.TZ); err != nil {
			return nil, vigil.FieldError("tz", "unknown time zone %q: want an IANA name such as Europe/Paris", in.TZ)
		}
	}
	pl := planning{text: in.Request, loc: loc, now: s.opts.Now(), fields: in.SpecFields, answers: map[string]any{}}

	// A 2026-07-28 client retries the call with the user's answers.
	round, _ := strconv.Atoi(c.req.Params.RequestState)
	var note string
	if r := server.ElicitationResponse(c.req.Params.InputResponses, elicitKey); r != nil {
		if r.Action == mcp.ElicitationResponseActionAccept {
			pl.answer(r.Content)
		} else {
			note = "the user " + declined(r.Action) + " the question"
		}
	}
	for ; ; round++ {
		plan, err := pl.plan()
		if err != nil {
			return nil, err
		}
		if len(plan.Missing) == 0 {
			return s.createFromPlan(ctx, pl, plan)
		}
		switch {
		case note != "":
		case round >= maxElicitRounds:
			note = "the user was asked " + strconv.Itoa(round) + " times"
		case !canElicit(ctx):
			note = "the client does not support elicitation"
		}
		params := mcp.ElicitationParams{Message: plan.Question, RequestedSchema: missingSchema(plan.Domain, plan.Missing)}
		if note != "" {
			return needsInput(plan, params, note), nil
		}
		if mcp.IsModernProtocol(server.RequestProtocolVersion(ctx)) {
			return server.NewInputRequestBuilder(strconv.Itoa(round+1)).Elicit(elicitKey, params).ToolResult(), nil
		}
		// The session protocol: ask now, over the request's stream.
		res, err := s.elicit(ctx, params)
		switch {
		case err != nil:
			note = "the user did not answer: " + err.Error()
		case res.Action != mcp.ElicitationResponseActionAccept:
			note = "the user " + declined(res.Action) + " the question"
		default:
			pl.answer(res.Content)
		}
	}
}

func declined(a mcp.ElicitationResponseAction) string {
	if a == mcp.ElicitationResponseActionCancel {
		return "cancelled"
	}
	return "declined"
}

// elicit asks a session-protocol client for params, waiting at most
// ElicitTimeout.
func (s *Server) elicit(ctx context.Context, params mcp.ElicitationParams) (*mcp.ElicitationResult, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ElicitTimeout)
	defer cancel()
	res, err := s.mcp.RequestElicitation(ctx, mcp.ElicitationRequest{
		Request: mcp.Request{Method: string(mcp.MethodElicitationCreate)},
		Params:  params,
	})
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("no answer within %s", s.opts.ElicitTimeout)
		}
		return nil, err
	}
	return res, nil
}

// canElicit reports whether the client declared the elicitation
// capability: in the request's _meta (2026-07-28) or at initialize
// (session protocol).
func canElicit(ctx context.Context) bool {
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern {
		return info.ClientCapabilities != nil && info.ClientCapabilities.Elicitation != nil
	}
	if sess, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo); ok {
		return sess.GetClientCapabilities().Elicitation != nil
	}
	return false
}

func needsInput(plan agent.Plan, params mcp.ElicitationParams, note string) *mcp.CallToolResult {
	schema, _ := params.RequestedSchema.(map[string]any)
	out := CreateTaskOutput{Status: StatusNeedsInput, Plan: &plan, Missing: plan.Missing, Question: plan.Question, Schema: schema, Note: note}
	text := fmt.Sprintf("Nothing created yet: %s (missing %s). Ask the user, then call create_task again with the request and the answers in slots.",
		plan.Question, strings.Join(plan.Missing, ", "))
	return structured(out, text)
}

// planning is one free-text request on its way to a spec: the text, the
// fields the caller gave beside it, and the user's answers so far.
type planning struct {
	text    string
	loc     *time.Location
	now     time.Time
	fields  SpecFields
	answers map[string]any
}

// answer merges a form's answers: slots as they are, a time into the
// request's text, where the planner reads it.
func (pl *planning) answer(content any) {
	m, ok := content.(map[string]any)
	if !ok {
		return
	}
	for k, v := range m {
		if k != agent.SlotTime {
			pl.answers[k] = v
			continue
		}
		if when, ok := v.(string); ok && strings.TrimSpace(when) != "" {
			when = strings.TrimSpace(when)
			if when[0] >= '0' && when[0] <= '9' {
				when = "at " + when
			}
			pl.text += " " + when
		}
	}
}

// plan plans the request and fills its slots from the fields and answers;
// Missing is what still lacks.
func (pl *planning) plan() (agent.Plan, error) {
	p := agent.PlanOffline(agent.Request{Text: pl.text, TZ: pl.loc, Now: pl.now})
	if p.Intent != agent.IntentCreate {
		if p.Intent == agent.IntentChat {
			return p, vigil.FieldError("request", "does not ask for a task to be done later or repeatedly; describe what and when, or give the structured fields")
		}
		return p, vigil.FieldError("request", "asks to %s, not to create a task: call %s instead", strings.ReplaceAll(strings.TrimSuffix(p.Intent, "_task"), "_", " "), p.Intent)
	}
	slots := map[string]any{}
	maps.Copy(slots, p.Slots)
	maps.Copy(slots, pl.fields.Slots)
	maps.Copy(slots, pl.answers)
	if len(slots) > 0 {
		p.Slots = slots
	}
	before := len(p.Missing)
	p.Missing = slices.DeleteFunc(p.Missing, func(m string) bool {
		switch m {
		case agent.SlotTime:
			return pl.fields.Trigger != nil && pl.fields.Trigger.HasSchedule()
		case agent.SlotThreshold:
			return slots[agent.SlotThreshold] != nil || slots[agent.SlotPercent] != nil
		case agent.SlotTopic:
			return slots[agent.SlotTopic] != nil || (p.Domain == agent.DomainReport && slots[agent.SlotCity] != nil)
		}
		return slots[m] != nil
	})
	switch {
	case len(p.Missing) == 0:
		p.Question = ""
	case len(p.Missing) < before:
		var qs []string
		for _, m := range p.Missing {
			qs = append(qs, slotQuestions[m])
		}
		p.Question = strings.Join(qs, " ")
	}
	return p, nil
}

// slotQuestions ask for one slot, when the planner's question asked for
// more than is still missing.
var slotQuestions = map[string]string{
	agent.SlotCity:      "Which city is it for?",
	agent.SlotTime:      "When should it run? Please give a time, such as 8am.",
	agent.SlotMessage:   "What should I remind you about?",
	agent.SlotSymbol:    "Which asset should I watch (for example gold, BTC or AAPL)?",
	agent.SlotThreshold: "At what price or percentage change should I alert you?",
	agent.SlotURL:       "Which URL should I check?",
	agent.SlotTopic:     "What topic should it cover?",
}

// missingSchema returns the form of the missing slots: their properties in
// the domain's slot schema (agent.SlotSchema), and time as text.
func missingSchema(domain string, missing []string) map[string]any {
	var full struct {
		Properties map[string]any `json:"properties"`
	}
	if raw := agent.SlotSchema(domain); raw != nil {
		_ = json.Unmarshal(raw, &full)
	}
	props := map[string]any{}
	for _, m := range missing {
		switch prop, ok := full.Properties[m]; {
		case m == agent.SlotTime:
			props[m] = map[string]any{"type": "string", "title": "When",
				"description": "When it should run, such as 8am, every Monday at 9:00, or 2026-12-01 18:00."}
		case ok:
			props[m] = prop
		default:
			props[m] = map[string]any{"type": "string"}
		}
	}
	return map[string]any{"type": "object", "properties": props, "required": slices.Clone(missing)}
}

// createFromPlan turns a complete plan into a draft task.
func (s *Server) createFromPlan(ctx context.Context, pl planning, plan agent.Plan) (*mcp.CallToolResult, error) {
	if plan.Domain != "" && len(plan.Slots) > 0 {
		raw, _ := json.Marshal(plan.Slots)
		if err := agent.ValidateSlots(plan.Domain, raw); err != nil {
			return nil, err
		}
	}
	t, err := s.opts.Tasks.Create(ctx, specFromPlan(plan, pl))
	if err != nil {
		return nil, err
	}
	red := t.Redacted()
	text := taskText("Created draft", t) + " " + plan.Reasoning + " Confirm it with confirm_task."
	return structured(CreateTaskOutput{Status: StatusDraft, Task: &red, Plan: &plan, Missing: []string{}}, text), nil
}

// specFromPlan builds the draft's spec: the plan's kind, schedule and
// slots, the request as the instruction, then every field the caller gave.
func specFromPlan(p agent.Plan, pl planning) tasks.Spec {
	s := tasks.Spec{Title: titleOf(p, pl.text), Kind: tasks.Kind(p.Kind), Instruction: pl.text, Slots: p.Slots}
	if sch := p.Schedule; sch != nil {
		switch {
		case sch.Cron != "":
			s.Trigger = tasks.Trigger{Cron: sch.Cron, TZ: zoneName(pl.loc)}
		case sch.At != nil:
			s.Trigger = tasks.Trigger{At: *sch.At}
		case sch.Every != "":
			if d, err := time.ParseDuration(sch.Every); err == nil {
				s.Trigger = tasks.Trigger{Every: tasks.Duration(d)}
			}
		}
	}
	if s.Kind == tasks.KindMonitor {
		if !s.Trigger.HasSchedule() {
			s.Trigger.Every = tasks.Duration(15 * time.Minute)
		}
		s.Monitor = &tasks.Monitor{Source: sourceOf(p), Judge: pl.text}
	}
	f := pl.fields
	if f.Title != "" {
		s.Title = f.Title
	}
	if f.Kind != "" {
		s.Kind = f.Kind
	}
	if f.Trigger != nil {
		s.Trigger = *f.Trigger
	}
	if f.Instruction != "" {
		s.Instruction = f.Instruction
	}
	if f.Tools != nil {
		s.Tools = f.Tools
	}
	if f.Steps != nil {
		s.Steps = f.Steps
	}
	if f.Monitor != nil {
		s.Monitor = f.Monitor
	}
	if s.Kind != tasks.KindMonitor {
		s.Monitor = nil
	}
	s.Priority, s.Then, s.CatchUp = f.Priority, f.Then, f.CatchUp
	return s
}

func zoneName(loc *time.Location) string {
	if loc == nil || loc == time.UTC || loc.String() == "Local" {
		return ""
	}
	return loc.String()
}

// sourceOf is the tool call a monitor planned from text polls: the
// domain's tool with the slots it needs.
func sourceOf(p agent.Plan) tasks.Step {
	arg := func(tool, slot string) tasks.Step {
		st := tasks.Step{Tool: tool}
		if _, ok := p.Slots[slot]; ok {
			st.Args = map[string]any{slot: "{{" + slot + "}}"}
		}
		return st
	}
	switch p.Domain {
	case agent.DomainPrice:
		return arg("price", agent.SlotSymbol)
	case agent.DomainWeather:
		return arg("weather", agent.SlotCity)
	case agent.DomainNews:
		return arg("news", agent.SlotTopic)
	default:
		return arg("http_get", agent.SlotURL)
	}
}

// titleOf names a task planned from text.
func titleOf(p agent.Plan, text string) string {
	str := func(k string) string { v, _ := p.Slots[k].(string); return v }
	title := ""
	if p.Language != "zh" {
		switch p.Domain {
		case agent.DomainWeather:
			if c := str(agent.SlotCity); c != "" {
				title = "Weather in " + c
			}
		case agent.DomainPrice:
			if sym := str(agent.SlotSymbol); sym != "" {
				title = sym + " price"
				if p.Kind == agent.KindMonitor {
					title = "Watch the " + title
				}
			}
		case agent.DomainNews:
			if t := str(agent.SlotTopic); t != "" {
				title = "News about " + t
			}
		case agent.DomainReminder:
			if m := str(agent.SlotMessage); m != "" {
				title = "Reminder: " + m
			}
		case agent.DomainWeb:
			if u := str(agent.SlotURL); u != "" {
				title = "Check " + u
			}
		case agent.DomainReport:
			if t := str(agent.SlotTopic) + str(agent.SlotCity); t != "" {
				title = "Report on " + t
			}
		}
	}
	if title == "" {
		title = strings.Join(strings.Fields(text), " ")
	}
	return truncate(title, 80)
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	invopop "github.com/invopop/jsonschema"
	santhosh "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// The slot schemas of the task domains and the parameters of the planner's
// plan_task tool are generated from the Go structs below with
// invopop/jsonschema and compiled with santhosh-tekuri/jsonschema, once, when
// the package is initialised. The same bytes go into the LLM's function
// definition (PlanTaskTool), into a clarification's form (SlotSchema) and
// into validation (ParsePlanArgs, ValidateSlots), so what a model is shown is
// exactly what its answer is checked against.

// A slot has one schema whatever the domain (city is the same in weather
// and report), so that plan_task can offer the union of the slots;
// buildSchemas fails if two domains describe a slot differently.

// WeatherSlots are the slots of a weather task: a forecast for a city.
type WeatherSlots struct {
	City string `json:"city" jsonschema:"minLength=1" jsonschema_description:"The city, as the user named it (北京, Paris)."`
}

// PriceSlots are the slots of a price task: a report on an asset, or a
// monitor that fires when its price crosses Threshold or moves by Percent in
// Direction. A monitor needs Threshold or Percent; a periodic report needs
// neither.
type PriceSlots struct {
	Symbol    string   `json:"symbol" jsonschema:"minLength=1" jsonschema_description:"The asset, canonical: oil, gold, BTC, ETH, or a stock ticker in capitals (AAPL for 苹果)."`
	Threshold *float64 `json:"threshold,omitempty" jsonschema_description:"The price that triggers the alert, in the asset's usual currency."`
	Percent   *float64 `json:"percent,omitempty" jsonschema:"exclusiveMinimum=0" jsonschema_description:"The change in percent that triggers the alert: 5 for 5%; the sign goes in direction."`
	Direction string   `json:"direction,omitempty" jsonschema:"enum=up,enum=down" jsonschema_description:"Which way the price must move or cross: up or down."`
}

// NewsSlots are the slots of a news task: headlines on a topic.
type NewsSlots struct {
	Topic string `json:"topic" jsonschema:"minLength=1" jsonschema_description:"What the news or the report is about, in the user's words (AI, 欧洲杯)."`
}

// ReminderSlots are the slots of a reminder: what to remind the user of.
type ReminderSlots struct {
	Message string `json:"message" jsonschema:"minLength=1" jsonschema_description:"What to remind the user of, in their words (call mom, 交房租)."`
}

// WebSlots are the slots of a web task: a page to check or watch.
type WebSlots struct {
	URL string `json:"url" jsonschema:"format=uri,pattern=^https?://" jsonschema_description:"The page to check: an absolute http(s) URL."`
}

// ReportSlots are the slots of a report, such as a travel guide or a weekly
// summary: a topic, a city, or both.
type ReportSlots struct {
	Topic string `json:"topic,omitempty" jsonschema:"anyof_required=topic,minLength=1" jsonschema_description:"What the news or the report is about, in the user's words (AI, 欧洲杯)."`
	City  string `json:"city,omitempty" jsonschema:"anyof_required=city,minLength=1" jsonschema_description:"The city, as the user named it (北京, Paris)."`
}

// slotStructs lists the domains in the order their slots appear in
// plan_task's union of slots.
var slotStructs = []struct {
	domain string
	v      any
}{
	{DomainWeather, WeatherSlots{}},
	{DomainPrice, PriceSlots{}},
	{DomainNews, NewsSlots{}},
	{DomainReminder, ReminderSlots{}},
	{DomainWeb, WebSlots{}},
	{DomainReport, ReportSlots{}},
}

// PlanTaskName is the name of the planner's tool. A model offered it answers
// a user's request by calling it with PlanArgs; see PlanTaskTool.
const PlanTaskName = "plan_task"

// PlanArgs are the arguments of plan_task: a Plan as a model writes it, with
// the schedule's instant as text. Slots follow the union of the domain slot
// schemas; Missing and Question are the model's view, which ParsePlanArgs
// checks against the rules.
type PlanArgs struct {
	Intent    string         `json:"intent" jsonschema:"enum=create_task,enum=list_tasks,enum=pause_task,enum=resume_task,enum=delete_task,enum=run_task,enum=chat" jsonschema_description:"What the user wants: create a task, act on their existing tasks, or just chat."`
	Kind      string         `json:"kind,omitempty" jsonschema:"enum=periodic,enum=one_shot,enum=monitor,enum=long_running" jsonschema_description:"create_task only. periodic: on a schedule; one_shot: once at a time; monitor: polls and fires when a condition holds; long_running: many steps, such as a report."`
	Domain    string         `json:"domain,omitempty" jsonschema:"enum=weather,enum=price,enum=news,enum=reminder,enum=web,enum=report" jsonschema_description:"create_task only: what the task is about."`
	Schedule  *ScheduleArgs  `json:"schedule,omitempty" jsonschema_description:"create_task only: when the task fires, if the user said. Omit it when no time was given."`
	Slots     map[string]any `json:"slots,omitempty"`
	Missing   []string       `json:"missing,omitempty" jsonschema:"uniqueItems=true,enum=city,enum=message,enum=topic,enum=url,enum=symbol,enum=threshold,enum=time" jsonschema_description:"Required slots the user did not give; time when a reminder or periodic task has no time."`
	Question  string         `json:"question,omitempty" jsonschema_description:"The question that asks the user for the missing slots, in the user's language."`
	Language  string         `json:"language,omitempty" jsonschema:"pattern=^[a-z]{2}$" jsonschema_description:"The user's language as an ISO 639-1 code: en, zh."`
	Reasoning string         `json:"reasoning,omitempty" jsonschema_description:"One or two sentences for the user: what they want, the trigger, the slots filled and missing."`
}

// ScheduleArgs is a plan's schedule as a model writes it: exactly one of
// Cron, At and Every.
type ScheduleArgs struct {
	Cron  string `json:"cron,omitempty" jsonschema:"oneof_required=cron,pattern=^\\S+ \\S+ \\S+ \\S+ \\S+$" jsonschema_description:"Five cron fields (minute hour day-of-month month day-of-week) in the user's time zone: 0 8 * * * is every day at 08:00."`
	At    string `json:"at,omitempty" jsonschema:"oneof_required=at,format=date-time" jsonschema_description:"One instant, RFC 3339 with the user's offset: 2026-11-23T08:00:00+08:00."`
	Every string `json:"every,omitempty" jsonschema:"oneof_required=every,pattern=^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$" jsonschema_description:"A monitor's poll interval as a Go duration: 15m, 1h."`
}

// The patterns of the schemas, said in words for error messages.
var patternHints = map[string]string{
	`^\S+ \S+ \S+ \S+ \S+$`:                     "must be five cron fields separated by spaces, such as 0 8 * * *",
	`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`: "must be a duration such as 15m or 1h",
	`^[a-z]{2}$`: "must be a two-letter language code such as en or zh",
	`^https?://`: "must be an absolute http(s) URL",
}

// compiled is a generated schema: its bytes and its compiled form.
type compiled struct {
	doc    []byte
	schema *santhosh.Schema
}

type schemaSet struct {
	slots map[string]compiled // by domain
	plan  compiled            // plan_task's parameters
}

var schemas = mustBuildSchemas()

func mustBuildSchemas() *schemaSet {
	s, err := buildSchemas()
	if err != nil {
		panic("agent: building schemas: " + err.Error())
	}
	return s
}

func buildSchemas() (*schemaSet, error) {
	r := &invopop.Reflector{Anonymous: true, DoNotReference: true}
	set := &schemaSet{slots: map[string]compiled{}}
	c := santhosh.NewCompiler()
	c.AssertFormat()

	union := &invopop.Schema{
		Type:                 "object",
		Description:          "The task's slots. Give those of the domain that the user stated; leave the others out.",
		Properties:           invopop.NewProperties(),
		AdditionalProperties: invopop.FalseSchema,
	}
	for _, d := range slotStructs {
		s := r.Reflect(d.v)
		s.Version = ""
		for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
			prev, ok := union.Properties.Get(pair.Key)
			if !ok {
				union.Properties.Set(pair.Key, pair.Value)
				continue
			}
			a, _ := json.Marshal(prev)
			b, _ := json.Marshal(pair.Value)
			if !bytes.Equal(a, b) {
				return nil, fmt.Errorf("slot %q has two schemas: %s and %s", pair.Key, a, b)
			}
		}
		cs, err := compile(c, "slots/"+d.domain, s)
		if err != nil {
			return nil, err
		}
		set.slots[d.domain] = cs
	}

	plan := r.Reflect(PlanArgs{})
	plan.Version = ""
	plan.Description = "Record what the user's message asks for: a new task with its schedule and slots, an action on existing tasks, or chat."
	plan.Properties.Set("slots", union)
	var err error
	if set.plan, err = compile(c, PlanTaskName, plan); err != nil {
		return nil, err
	}
	return set, nil
}

// compile marshals s, with its patterns checked against patternHints, and
// compiles the bytes.
func compile(c *santhosh.Compiler, name string, s *invopop.Schema) (compiled, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return compiled{}, err
	}
	doc := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	for _, p := range patternsIn(s) {
		if _, ok := patternHints[p]; !ok {
			return compiled{}, fmt.Errorf("%s: no hint for pattern %q", name, p)
		}
	}
	v, err := santhosh.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return compiled{}, err
	}
	url := "mem:///vigil/agent/" + name + ".json"
	if err := c.AddResource(url, v); err != nil {
		return compiled{}, err
	}
	cs, err := c.Compile(url)
	if err != nil {
		return compiled{}, fmt.Errorf("%s: %w", name, err)
	}
	maps.Copy(choices, streams.SchemaChoices(url+"#", s))
	return compiled{doc: doc, schema: cs}, nil
}

func patternsIn(s *invopop.Schema) []string {
	if s == nil {
		return nil
	}
	var out []string
	if s.Pattern != "" {
		out = append(out, s.Pattern)
	}
	if s.Properties != nil {
		for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
			out = append(out, patternsIn(pair.Value)...)
		}
	}
	return append(out, patternsIn(s.Items)...)
}

// SlotSchema returns the JSON Schema of a task domain's slots (weather,
// price, news, reminder, web or report), generated from its Go struct
// (WeatherSlots, …): the schema of a clarification's form and of MCP's
// structured task creation. Its required list holds what every task of the
// domain needs; a price monitor also needs a threshold or a percent. It
// returns nil for an unknown domain, and a fresh copy on every call.
func SlotSchema(domain string) json.RawMessage {
	if s, ok := schemas.slots[domain]; ok {
		return bytes.Clone(s.doc)
	}
	return nil
}

// PlanTaskTool returns the planner's tool: plan_task, whose parameters are
// the schema of PlanArgs with the union of the domain slot schemas as its
// slots. The main agent offers it to an LLM and reads the call back with
// ParsePlanArgs; Offline answers it with PlanOffline's plan.
func PlanTaskTool() Tool {
	return Tool{
		Name: PlanTaskName,
		Description: "Record what the user's latest message asks for, read in the light of the conversation: " +
			"a new task (its kind, domain, schedule and slots, and which required slots are still missing), " +
			"an action on their existing tasks, or chat.",
		Parameters: bytes.Clone(schemas.plan.doc),
	}
}

// ValidateSlots checks a task's slots, a JSON object, against the schema of
// its domain. A problem is a vigil.Invalid error on the field at fault
// ("slots.city"), whose message lists every problem found.
func ValidateSlots(domain string, slots json.RawMessage) error {
	s, ok := schemas.slots[domain]
	if !ok {
		return vigil.FieldError("domain", "unknown domain %q", domain)
	}
	return validate(s.schema, "slots", slots)
}

// ParsePlanArgs reads the arguments of a plan_task call into a Plan. It
// checks them against plan_task's schema and the rules the schema cannot
// state (kind and domain for create_task, a positive poll interval), and
// recomputes Missing from the domain's required slots rather than trusting
// the model's list; the model's Question is kept when its list was right,
// else the standard question is asked. Invalid arguments are a vigil.Invalid
// error on the field at fault ("schedule.at"), whose message lists every
// problem, ready to be shown to the model so that it can correct itself.
func ParsePlanArgs(args json.RawMessage) (Plan, error) {
	if err := validate(schemas.plan.schema, "", args); err != nil {
		return Plan{}, err
	}
	var a PlanArgs
	if err := json.Unmarshal(args, &a); err != nil {
		return Plan{}, vigil.FieldError("arguments", "cannot be read: %v", err)
	}
	p := Plan{Intent: a.Intent, Language: a.Language, Reasoning: a.Reasoning, Missing: []string{}}
	if p.Language == "" {
		p.Language = "en"
		if strings.ContainsFunc(a.Question+a.Reasoning, func(r rune) bool { return unicode.Is(unicode.Han, r) }) {
			p.Language = "zh"
		}
	}
	if a.Intent != IntentCreate {
		return p, nil
	}
	switch {
	case a.Kind == "" && a.Domain == "":
		return Plan{}, vigil.FieldError("kind", "is required when intent is create_task (also missing: domain)")
	case a.Kind == "":
		return Plan{}, vigil.FieldError("kind", "is required when intent is create_task")
	case a.Domain == "":
		return Plan{}, vigil.FieldError("domain", "is required when intent is create_task")
	}
	p.Kind, p.Domain, p.Slots = a.Kind, a.Domain, a.Slots
	if s := a.Schedule; s != nil {
		p.Schedule = &Schedule{Cron: s.Cron, Every: s.Every}
		if s.At != "" {
			at, err := time.Parse(time.RFC3339, s.At)
			if err != nil {
				return Plan{}, vigil.FieldError("schedule.at", "must be an RFC 3339 date-time such as 2026-11-23T08:00:00+08:00, not %q", s.At)
			}
			p.Schedule.At = &at
		}
		if s.Every != "" {
			if d, err := time.ParseDuration(s.Every); err != nil || d <= 0 {
				return Plan{}, vigil.FieldError("schedule.every", "must be a positive duration such as 15m or 1h, not %q", s.Every)
			}
		}
	}
	p.Missing = missing(p, features{})
	p.Question = a.Question
	if p.Question == "" || !sameMembers(a.Missing, p.Missing) {
		p.Question = question(p.Missing, p.Domain, p.Language == "zh")
	}
	return p, nil
}

// planArgs writes p as plan_task's arguments.
func planArgs(p Plan) PlanArgs {
	a := PlanArgs{
		Intent: p.Intent, Kind: p.Kind, Domain: p.Domain, Slots: p.Slots,
		Missing: p.Missing, Question: p.Question, Language: p.Language, Reasoning: p.Reasoning,
	}
	if len(a.Missing) == 0 {
		a.Missing = nil
	}
	if len(a.Slots) == 0 {
		a.Slots = nil
	}
	if s := p.Schedule; s != nil {
		a.Schedule = &ScheduleArgs{Cron: s.Cron, Every: s.Every}
		if s.At != nil {
			a.Schedule.At = s.At.Format(time.RFC3339)
		}
	}
	return a
}

func sameMembers(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// validate checks the JSON document data against s. Problems are reported
// as a vigil.Invalid error on the first problem's field, below prefix
// ("arguments" when it is the whole document), whose message lists every
// problem for the model to fix them in one go.
func validate(s *santhosh.Schema, prefix string, data json.RawMessage) error {
	root := prefix
	if root == "" {
		root = "arguments"
	}
	v, err := santhosh.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return vigil.FieldError(root, "must be a JSON object (the text is not valid JSON)")
	}
	err = s.Validate(v)
	if err == nil {
		return nil
	}
	var verr *santhosh.ValidationError
	if !errors.As(err, &verr) {
		return fmt.Errorf("agent: validate %s: %w", root, err)
	}
	d := streams.Describer{Root: prefix, PatternHints: patternHints, Choices: choices, All: true}
	e := d.Describe(verr)
	if e.Field == "" {
		e.Field = root
	}
	return e
}

// choices names the alternatives of the oneOf and anyOf rules of the
// compiled schemas (the oneof_required and anyof_required tags), by schema
// URL, for error messages.
var choices = map[string][]string{}

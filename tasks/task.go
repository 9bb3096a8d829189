package tasks

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil"
)

// Kind is what sort of work a task is; it decides which triggers and
// fields the task may use.
type Kind string

// The kinds of task.
const (
	// KindPeriodic fires again and again on a cron expression or an
	// interval ("every day at 8 push me Beijing's weather").
	KindPeriodic Kind = "periodic"
	// KindOneShot fires once, at a time.
	KindOneShot Kind = "one_shot"
	// KindMonitor polls a source on a schedule, or wakes on an ingested
	// event, and fires when a condition on the value holds ("tell me when
	// the oil price drops 5%").
	KindMonitor Kind = "monitor"
	// KindLongRunning is many steps, checkpointed after each; it fires on
	// any schedule or only by hand.
	KindLongRunning Kind = "long_running"
)

// Priority orders due runs: all due high-priority runs are dispatched
// before normal ones, and normal before low.
type Priority string

// The priorities; the zero value is read as PriorityNormal.
const (
	PriorityHigh   Priority = "high"
	PriorityNormal Priority = "normal"
	PriorityLow    Priority = "low"
)

// Priorities lists the priorities from highest to lowest: the order in
// which Store.Due returns entries.
var Priorities = []Priority{PriorityHigh, PriorityNormal, PriorityLow}

// Rank is p's position in Priorities (0 is highest), or -1 for a value
// that is not a priority.
func (p Priority) Rank() int { return slices.Index(Priorities, p) }

// CatchUp is what the scheduler does with slots missed while no scheduler
// ran (the server was down).
type CatchUp string

// The catch-up policies; the zero value is read as CatchUpRunOnce.
const (
	// CatchUpSkip drops missed slots: the task next fires at its next
	// slot after now.
	CatchUpSkip CatchUp = "skip"
	// CatchUpRunOnce fires one run for the newest missed slot, then goes
	// on with the schedule; older missed slots are dropped.
	CatchUpRunOnce CatchUp = "run_once"
)

// Spec is everything about a task that its owner writes: what to do, when,
// with which tools, and whom to tell. Create and Update take a Spec;
// Validate checks it.
type Spec struct {
	// Title is a short name shown in lists and on the task card.
	Title string `json:"title"`
	// Kind is the sort of task.
	Kind Kind `json:"kind"`
	// Trigger is when the task fires.
	Trigger Trigger `json:"trigger"`
	// Instruction is the prompt the task agent runs.
	Instruction string `json:"instruction,omitempty"`
	// Slots are the task's typed parameters, filled by the main agent
	// ("city": "Beijing"); Steps refer to them as {{name}}.
	Slots map[string]any `json:"slots,omitempty"`
	// Tools are the tools the task may call, each a name ("weather", any
	// version) or name@version ("weather@2"). Empty means any registered
	// tool the tenant may use.
	Tools []string `json:"tools,omitempty"`
	// Steps are the tool calls the built-in executor makes in order.
	Steps []Step `json:"steps,omitempty"`
	// Monitor is what a monitor task watches; set exactly for KindMonitor.
	Monitor *Monitor `json:"monitor,omitempty"`
	// Priority orders the task's runs among due runs; default normal.
	Priority Priority `json:"priority,omitempty"`
	// Notify are webhooks told of every finished run, beside the task's
	// thread, which is always told.
	Notify []Webhook `json:"notify,omitempty"`
	// Then names tasks of the same tenant to start after a run of this
	// one succeeds. A chain never forms a cycle.
	Then []string `json:"then,omitempty"`
	// CatchUp is the policy for slots missed while the server was down;
	// default run_once.
	CatchUp CatchUp `json:"catch_up,omitempty"`
}

// Step is one tool call of a task: the tool and its arguments, in which
// any string "{{slot}}" is replaced by the slot's value (see Render).
type Step struct {
	// Tool is the tool's name, or name@version.
	Tool string `json:"tool"`
	// Args is the argument object, a template over the task's slots.
	Args map[string]any `json:"args,omitempty"`
}

// Monitor is what a monitor task watches: a source tool call whose result
// is the value, and when to fire on it. At least one of Condition and
// Judge is set; with both, the condition is checked first and the judge
// asked only when it holds.
type Monitor struct {
	// Source is the tool call that reads the value.
	Source Step `json:"source"`
	// Condition is an expr-lang expression of type bool over value (the
	// source's result now) and prev (its result at the previous check, nil
	// at the first): "value < prev * 0.95".
	Condition string `json:"condition,omitempty"`
	// Judge is a natural-language condition the task agent judges with an
	// LLM ("the forecast mentions snow"), when one is configured.
	Judge string `json:"judge,omitempty"`
}

// Webhook is a URL told of every finished run of the task with a POST
// signed with HMAC-SHA256 under Secret.
type Webhook struct {
	URL string `json:"url"`
	// Secret is the HMAC key. A Manager with a Sealer stores it sealed
	// (see Sealer), and the Notifier opens it only to sign; Task.Redacted
	// removes it from what the API shows.
	Secret string `json:"secret,omitempty"`
	// HasSecret is set in redacted copies where Secret was not empty.
	HasSecret bool `json:"has_secret,omitempty"`
}

// Task is a task as stored: its Spec and what the server keeps about it.
type Task struct {
	// ID is "tsk_" and 20 hex digits.
	ID string `json:"id"`
	// Tenant owns the task; every store access is scoped by it.
	Tenant string `json:"tenant"`
	// Owner is the user who created the task.
	Owner string `json:"owner,omitempty"`
	// OwnerScopes are the scopes the owner held when it last created,
	// updated, confirmed or resumed the task (Options.OwnerScopes): every
	// tool call of the task's runs holds these and no others, since the
	// owner is not there when the task runs. Nil means never recorded
	// (a task stored before scopes were); empty means none. See Scopes.
	OwnerScopes []string `json:"owner_scopes,omitzero"`
	// Status is where the task stands in its state machine.
	Status Status `json:"status"`
	// Version counts the task's changes: 1 at creation, one more with
	// each stored change. Updates compare and set it.
	Version int64 `json:"version"`
	// ThreadID is the task's thread: its task_status events and every
	// run's output go there.
	ThreadID string `json:"thread_id"`

	Spec

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// NextFire is the task's next slot from the schedule index, set by
	// Manager reads. Stores do not persist it and return it nil.
	NextFire *time.Time `json:"next_fire,omitempty"`
}

// Scopes returns the scopes the tool calls of t's runs hold: its
// OwnerScopes, or every scope ("*") for a task whose owner's scopes were
// never recorded, which runs as every task did before tasks had scopes
// until its owner next updates or confirms it.
func (t Task) Scopes() []string {
	if t.OwnerScopes == nil {
		return []string{"*"}
	}
	return slices.Clone(t.OwnerScopes)
}

// Redacted returns a copy of t without webhook secrets, for showing.
func (t Task) Redacted() Task {
	t.Spec = t.Spec.Redacted()
	return t
}

// Redacted returns a copy of s without webhook secrets (HasSecret says
// which had one).
func (s Spec) Redacted() Spec {
	if len(s.Notify) == 0 {
		return s
	}
	hooks := make([]Webhook, len(s.Notify))
	for i, h := range s.Notify {
		hooks[i] = Webhook{URL: h.URL, HasSecret: h.Secret != "" || h.HasSecret}
	}
	s.Notify = hooks
	return s
}

// Normalized returns s with defaults filled in: priority normal, catch-up
// run_once, surrounding space trimmed from the title, and HasSecret (which
// only redacted copies show) cleared.
func (s Spec) Normalized() Spec {
	s.Title = strings.TrimSpace(s.Title)
	if len(s.Notify) > 0 {
		hooks := make([]Webhook, len(s.Notify))
		for i, h := range s.Notify {
			hooks[i] = Webhook{URL: h.URL, Secret: h.Secret}
		}
		s.Notify = hooks
	}
	if s.Priority == "" {
		s.Priority = PriorityNormal
	}
	if s.CatchUp == "" {
		s.CatchUp = CatchUpRunOnce
	}
	return s
}

// Limits on a Spec: MaxTitle counts characters, the other text limits
// bytes, the rest items.
const (
	MaxTitle       = 200
	MaxInstruction = 20_000
	MaxSlots       = 64
	MaxTools       = 64
	MaxSteps       = 64
	MaxWebhooks    = 8
	MaxThen        = 16
	MaxCondition   = 1_000
	MaxJudge       = 2_000
)

var (
	toolPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}(@[A-Za-z0-9_.-]{1,32})?$`)
	slotPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
)

// earliest and latest bound the times a trigger may name.
var (
	earliest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	latest   = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Validate checks s (normalized or not) on its own: every field's syntax,
// the trigger against the kind, step arguments against the slots, and the
// monitor's condition, which must compile. It does not check what needs
// the store or a clock (that Then names existing tasks without a cycle,
// that At is in the future); the Manager does. The error is the first
// problem found, a vigil.Invalid error naming the field
// ("trigger.cron", "steps.1.tool", "monitor.condition").
func (s Spec) Validate() error {
	if err := s.validate(); err != nil {
		return err
	}
	return nil
}

func (s Spec) validate() *vigil.Error {
	title := strings.TrimSpace(s.Title)
	switch {
	case title == "":
		return vigil.FieldError("title", "is required")
	case utf8.RuneCountInString(title) > MaxTitle:
		return vigil.FieldError("title", "must be at most %d characters", MaxTitle)
	}
	switch s.Kind {
	case KindPeriodic, KindOneShot, KindMonitor, KindLongRunning:
	case "":
		return vigil.FieldError("kind", "is required: periodic, one_shot, monitor or long_running")
	default:
		return vigil.FieldError("kind", "must be periodic, one_shot, monitor or long_running, got %q", s.Kind)
	}
	if err := s.Trigger.validate(); err != nil {
		return err
	}
	if err := s.validateTriggerKind(); err != nil {
		return err
	}
	if len(s.Instruction) > MaxInstruction {
		return vigil.FieldError("instruction", "must be at most %d bytes", MaxInstruction)
	}
	if len(s.Slots) > MaxSlots {
		return vigil.FieldError("slots", "at most %d slots", MaxSlots)
	}
	for _, name := range sortedKeys(s.Slots) {
		if !slotPattern.MatchString(name) {
			return vigil.FieldError("slots."+name, "a slot name is a letter or _ followed by letters, digits or _")
		}
	}
	if len(s.Tools) > MaxTools {
		return vigil.FieldError("tools", "at most %d tools", MaxTools)
	}
	for i, tool := range s.Tools {
		if !toolPattern.MatchString(tool) {
			return vigil.FieldError(fmt.Sprintf("tools.%d", i), "%q is not a tool name or name@version", tool)
		}
		if slices.Index(s.Tools, tool) < i {
			return vigil.FieldError(fmt.Sprintf("tools.%d", i), "%q is listed twice", tool)
		}
	}
	if len(s.Steps) > MaxSteps {
		return vigil.FieldError("steps", "at most %d steps", MaxSteps)
	}
	for i, st := range s.Steps {
		if err := s.validateStep(fmt.Sprintf("steps.%d", i), st); err != nil {
			return err
		}
	}
	if err := s.validateMonitor(); err != nil {
		return err
	}
	switch s.Priority {
	case "", PriorityHigh, PriorityNormal, PriorityLow:
	default:
		return vigil.FieldError("priority", "must be high, normal or low, got %q", s.Priority)
	}
	if len(s.Notify) > MaxWebhooks {
		return vigil.FieldError("notify", "at most %d webhooks", MaxWebhooks)
	}
	for i, h := range s.Notify {
		if err := validateWebhookURL(h.URL); err != "" {
			return vigil.FieldError(fmt.Sprintf("notify.%d.url", i), "%s", err)
		}
	}
	if len(s.Then) > MaxThen {
		return vigil.FieldError("then", "at most %d tasks", MaxThen)
	}
	for i, id := range s.Then {
		if !vigil.ValidID(id) {
			return vigil.FieldError(fmt.Sprintf("then.%d", i), "%q is not a task id", id)
		}
		if slices.Index(s.Then, id) < i {
			return vigil.FieldError(fmt.Sprintf("then.%d", i), "%s is listed twice", id)
		}
	}
	switch s.CatchUp {
	case "", CatchUpSkip, CatchUpRunOnce:
	default:
		return vigil.FieldError("catch_up", "must be skip or run_once, got %q", s.CatchUp)
	}
	return nil
}

// validateTriggerKind checks which triggers the kind allows:
//
//	periodic      cron or every
//	one_shot      at
//	monitor       cron or every (poll), and/or event; at least one
//	long_running  cron, at, every, or none (run by hand)
//
// Event is for monitors only.
func (s Spec) validateTriggerKind() *vigil.Error {
	t := s.Trigger
	for _, tm := range []struct {
		field string
		t     time.Time
	}{{"trigger.at", t.At}, {"trigger.start", t.Start}} {
		if !tm.t.IsZero() && (tm.t.Before(earliest) || !tm.t.Before(latest)) {
			return vigil.FieldError(tm.field, "must be between %d and %d", earliest.Year(), latest.Year())
		}
	}
	if t.Event != "" && s.Kind != KindMonitor {
		return vigil.FieldError("trigger.event", "only a monitor task wakes on ingested events")
	}
	switch s.Kind {
	case KindPeriodic:
		if t.Cron == "" && t.Every == 0 {
			if !t.At.IsZero() {
				return vigil.FieldError("trigger.at", "a periodic task fires on trigger.cron or trigger.every; use kind one_shot for a single time")
			}
			return vigil.FieldError("trigger", "a periodic task needs trigger.cron or trigger.every")
		}
	case KindOneShot:
		if t.At.IsZero() {
			return vigil.FieldError("trigger.at", "a one-shot task needs a time")
		}
	case KindMonitor:
		if !t.At.IsZero() {
			return vigil.FieldError("trigger.at", "a monitor polls on trigger.every or trigger.cron, not at one time")
		}
		if t.Cron == "" && t.Every == 0 && t.Event == "" {
			return vigil.FieldError("trigger", "a monitor needs a poll schedule (trigger.every or trigger.cron) or trigger.event")
		}
	}
	return nil
}

func (s Spec) validateStep(field string, st Step) *vigil.Error {
	if st.Tool == "" {
		return vigil.FieldError(field+".tool", "is required")
	}
	if !toolPattern.MatchString(st.Tool) {
		return vigil.FieldError(field+".tool", "%q is not a tool name or name@version", st.Tool)
	}
	if !s.allows(st.Tool) {
		return vigil.FieldError(field+".tool", "%s is not among the task's tools %v", st.Tool, s.Tools)
	}
	return checkTemplate(field+".args", st.Args, s.Slots)
}

// allows reports whether the task may call tool: Tools is empty, or lists
// it exactly, or lists its bare name (any version).
func (s Spec) allows(tool string) bool {
	if len(s.Tools) == 0 {
		return true
	}
	name, _, _ := strings.Cut(tool, "@")
	return slices.Contains(s.Tools, tool) || slices.Contains(s.Tools, name)
}

func (s Spec) validateMonitor() *vigil.Error {
	m := s.Monitor
	if s.Kind != KindMonitor {
		if m != nil {
			return vigil.FieldError("monitor", "only a monitor task has one (kind is %s)", s.Kind)
		}
		return nil
	}
	if m == nil {
		return vigil.FieldError("monitor", "a monitor task needs a source and a condition or judge")
	}
	if err := s.validateStep("monitor.source", m.Source); err != nil {
		return err
	}
	if strings.TrimSpace(m.Condition) == "" && strings.TrimSpace(m.Judge) == "" {
		return vigil.FieldError("monitor.condition", "a monitor needs a condition or a judge")
	}
	if len(m.Condition) > MaxCondition {
		return vigil.FieldError("monitor.condition", "must be at most %d bytes", MaxCondition)
	}
	if len(m.Judge) > MaxJudge {
		return vigil.FieldError("monitor.judge", "must be at most %d bytes", MaxJudge)
	}
	if strings.TrimSpace(m.Condition) != "" {
		if _, err := compileCondition(m.Condition); err != nil {
			return vigil.FieldError("monitor.condition", "does not compile: %v", err)
		}
	}
	return nil
}

func validateWebhookURL(raw string) string {
	if raw == "" {
		return "is required"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("%q is not a URL", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Sprintf("%q must be an absolute http or https URL", raw)
	}
	if u.User != nil {
		return "must not carry credentials; use the webhook's secret"
	}
	return ""
}

package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// Defaults of TaskAgentOptions.
const (
	// DefaultTaskMaxSteps is how many model turns a run may take.
	DefaultTaskMaxSteps = 16
	// DefaultTaskDeadline bounds one attempt of a run whose context has
	// no deadline of its own.
	DefaultTaskDeadline = 10 * time.Minute
	// DefaultTaskMaxState bounds the JSON of a checkpoint's conversation.
	DefaultTaskMaxState = 256 << 10
)

// maxToolContent bounds what one tool result adds to the conversation;
// maxCallArgs bounds the arguments of one call kept in it.
const (
	maxToolContent = 16 << 10
	maxCallArgs    = 16 << 10
	maxAllTools    = 128 // tools offered when a task lists none
)

// The codes of the warning events the task agent emits besides
// FallbackWarningCode.
const (
	// WarningToolUnavailable: a tool the task lists is not registered; the
	// run goes on without it.
	WarningToolUnavailable = "tool_unavailable"
	// WarningMonitorCondition: a monitor's condition could not be decided
	// (the expression failed on this value, or the judge gave no verdict),
	// so the run does not notify. The StepExecutor uses the same code.
	WarningMonitorCondition = "monitor_condition"
)

// TaskAgentOptions configure a TaskAgent. Registry is required; the zero
// value of every other field means its default.
type TaskAgentOptions struct {
	// Model decides the tool calls and writes the notification. Nil,
	// Offline or *Offline means there is no LLM: every run goes to Steps.
	// A *Fallback whose Secondary is the offline model moves a run to
	// Steps, after a warning event, when its Primary fails.
	Model Model
	// Registry runs the tool calls and gives their schemas.
	Registry *toolsregistry.Registry
	// Store reads a run's task (its owner, whose profile and principal the
	// run uses) and a monitor's previous value. Nil means neither: no
	// profile, and prev is always nil.
	Store tasks.Store
	// Memory, if set, gives the owner's long-term profile (home city,
	// language, zone, preferences) for the prompt.
	Memory *memory.Service
	// Steps runs the runs that need no LLM: with the offline model, and
	// the tasks that declare steps and no instruction. Default a
	// tasks.StepExecutor over Registry, Store, Scopes and Logger.
	Steps tasks.Executor
	// Scopes returns the scopes a run's tool calls hold, its owner's; it
	// is asked once per attempt, and its error fails the attempt. Nil
	// means tasks.RunScopes(Store), the scopes recorded on the run's
	// task; nil without a Store means every scope ("*"). A task that
	// lists no tools is offered only those its owner's scopes cover.
	Scopes func(ctx context.Context, r tasks.Run) ([]string, error)
	// MaxSteps is how many model turns one run may take, re-asks
	// included; a run that still calls tools at the last one fails.
	// Default DefaultTaskMaxSteps.
	MaxSteps int
	// Deadline bounds one attempt of a run whose context has no deadline
	// of its own; a run that passes it fails permanently. A deadline on
	// the context, such as the one the worker sets from its tenant's max
	// run duration (tasks.WorkerOptions.MaxRunDuration), governs instead,
	// longer or shorter, and its owner says what passing it means.
	// Default DefaultTaskDeadline.
	Deadline time.Duration
	// MaxState bounds a checkpoint's conversation, in bytes of JSON:
	// older tool results are elided, then older turns dropped, to stay
	// under it. Default DefaultTaskMaxState.
	MaxState int
	// Now is the clock of the prompt's date and of relative dates in
	// repairs. Default time.Now.
	Now func() time.Time
	// Logger receives what the thread is not told. Default
	// slog.Default().
	Logger *slog.Logger
}

// TaskAgent is the execution layer's agent: a tasks.Executor that runs a
// task's instruction through a Model with a tool-calling loop. Plug it
// into the task workers (tasks.WorkerOptions.Executor).
//
// A run goes one of two ways:
//
//   - With the offline model (or none), and for a task that declares
//     steps and no instruction (or is a monitor with a condition and no
//     instruction), it goes to Steps, the StepExecutor, and the
//     notification is rendered from a template of the task's domain
//     (weather, price, news, reminder, web, report).
//   - Otherwise the tool loop runs it. The prompt is the task's
//     instruction with its slots filled in ({{city}}, {{.city}},
//     {{today}} in the task's zone at the fire time), the slots, the
//     declared steps as guidance, and the owner's profile. Each turn the
//     model is offered the task's tools (Spec.Tools, or all the tenant
//     sees); every call's arguments are validated against the tool's
//     schema, repaired where a rule can (a relative date to ISO 8601, a
//     number in a string, an enum's case, a missing default), and else
//     sent back to the model once with the error to correct; a second
//     invalid call of the tool is a tool_error event the model reads,
//     and the loop goes on. A turn without tool calls is the answer: the
//     run's summary, which the worker tells the thread. After each turn
//     with tool calls the conversation is checkpointed, and a run
//     resumed (after a crash or a graceful stop) continues from it
//     without calling earlier tools again.
//
// A monitor with the loop calls its source, evaluates its condition over
// value and prev, and asks the model for a verdict on its Judge; it
// notifies only when they hold, else its outcome is quiet.
//
// Every step emits a status event, and every call tool_call and then
// tool_result (with the tool's warning and media parts: image, table,
// code, audio, file) or tool_error, all carrying the run's trace id
// (ctx's, else tasks.RunTraceID). Errors are classified for the worker's retry
// policy: a model that fails (a 5xx, a timeout) is temporary unless a
// Fallback took over; steps running out and the deadline passing are
// permanent; a tool that fails is a result the model reads, except one
// refused because the task's owner lacks a scope it needs, which fails the
// run permanently (tool_error and the run's error name the scope).
//
// A TaskAgent is safe for concurrent use.
type TaskAgent struct {
	model    Model
	reg      *toolsregistry.Registry
	store    tasks.Store
	memory   *memory.Service
	steps    tasks.Executor
	scopes   func(context.Context, tasks.Run) ([]string, error)
	maxSteps int
	deadline time.Duration
	maxState int
	now      func() time.Time
	logger   *slog.Logger
}

var _ tasks.Executor = (*TaskAgent)(nil)

// NewTaskAgent returns a TaskAgent; without a Registry it is a
// vigil.Invalid error.
func NewTaskAgent(opts TaskAgentOptions) (*TaskAgent, error) {
	if opts.Registry == nil {
		return nil, vigil.FieldError("registry", "is required: the task agent calls tools through it")
	}
	a := &TaskAgent{
		model: opts.Model, reg: opts.Registry, store: opts.Store, memory: opts.Memory, steps: opts.Steps,
		scopes: opts.Scopes, maxSteps: opts.MaxSteps, deadline: opts.Deadline, maxState: opts.MaxState,
		now: opts.Now, logger: opts.Logger,
	}
	switch {
	case a.scopes != nil:
	case a.store != nil:
		a.scopes = tasks.RunScopes(a.store)
	default:
		a.scopes = func(context.Context, tasks.Run) ([]string, error) { return []string{"*"}, nil }
	}
	if a.maxSteps <= 0 {
		a.maxSteps = DefaultTaskMaxSteps
	}
	if a.deadline <= 0 {
		a.deadline = DefaultTaskDeadline
	}
	if a.maxState <= 0 {
		a.maxState = DefaultTaskMaxState
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.logger == nil {
		a.logger = slog.Default()
	}
	if a.steps == nil {
		a.steps = tasks.NewStepExecutor(tasks.StepExecutorOptions{Registry: opts.Registry, Store: opts.Store, Scopes: opts.Scopes, Logger: a.logger})
	}
	return a, nil
}

// Execute implements tasks.Executor. The attempt ends at ctx's deadline
// or, when ctx has none, after the agent's Deadline: a tenant's max run
// duration reaches the agent as the deadline of ctx, so it is honoured
// even when it is longer than the Deadline.
func (a *TaskAgent) Execute(ctx context.Context, r tasks.Run, rep tasks.Reporter) (tasks.Outcome, error) {
	if vigil.TraceID(ctx) == "" {
		ctx = vigil.WithTraceID(ctx, tasks.RunTraceID(r.ID))
	}
	parent := ctx
	if _, bounded := ctx.Deadline(); !bounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.deadline)
		defer cancel()
	}
	held, err := a.scopes(ctx, r)
	if err != nil {
		return tasks.Outcome{}, fmt.Errorf("agent: run %s: %w", r.ID, err)
	}
	x := a.begin(ctx, r, rep)
	x.scopes = held
	out, err := x.execute(x.ctx)
	if err != nil && parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = tasks.Permanent(fmt.Errorf("agent: run %s took longer than its deadline of %s: %w", r.ID, a.deadline, err))
	}
	return out, err
}

// isOffline reports whether m is the built-in offline model, or none.
func isOffline(m Model) bool {
	switch m.(type) {
	case nil, Offline, *Offline:
		return true
	}
	return false
}

// runExec is one attempt of a run in the task agent's hands.
type runExec struct {
	a       *TaskAgent
	ctx     context.Context // with the run's trace, principal and deadline
	run     tasks.Run
	rep     tasks.Reporter
	loc     *time.Location
	fired   time.Time // the run's slot in loc: what {{today}} means
	lang    string    // "zh" or "en"
	profile memory.Profile
	scopes  []string // the owner's, held by every tool call

	tools  []offeredTool
	byName map[string]*offeredTool

	fellBack atomic.Bool // the Fallback's OnFallback was called
	warned   bool        // the fallback warning was emitted
}

// offeredTool is a tool the model is offered in a run.
type offeredTool struct {
	name   string // what the model calls it: the tool's name with '.' as '-'
	ref    string // what Registry.Call is given: as the task lists it
	tool   toolsregistry.Tool
	schema *toolsregistry.Schema
}

// begin prepares an attempt: the owner (from the store) as the principal
// of ctx, the owner's profile, the task's zone and language.
func (a *TaskAgent) begin(ctx context.Context, r tasks.Run, rep tasks.Reporter) *runExec {
	x := &runExec{a: a, run: r, rep: rep}
	owner := ""
	if a.store != nil {
		t, err := a.store.Task(ctx, r.Tenant, r.TaskID)
		switch {
		case err == nil:
			owner = t.Owner
		case vigil.ErrorCode(err) != vigil.NotFound:
			a.logger.WarnContext(ctx, "agent: task not read; running without the owner's profile", "run", r.ID, "err", err)
		}
	}
	if _, ok := vigil.PrincipalFrom(ctx); !ok {
		ctx = vigil.WithPrincipal(ctx, vigil.Principal{Tenant: r.Tenant, User: owner})
	}
	x.ctx = ctx
	if a.memory != nil && owner != "" {
		p, err := a.memory.ProfileOf(ctx, owner)
		switch vigil.ErrorCode(err) {
		case "":
			x.profile = p
		case vigil.NotFound, vigil.Unavailable, vigil.Forbidden:
		default:
			a.logger.WarnContext(ctx, "agent: profile not read; going on without it", "run", r.ID, "err", err)
		}
	}
	x.loc = time.UTC
	if r.Spec.Trigger.TZ != "" {
		if loc, err := r.Spec.Trigger.Location(); err == nil {
			x.loc = loc
		}
	} else if loc := x.profile.Location(); loc != nil {
		x.loc = loc
	}
	x.fired = r.Slot
	if x.fired.IsZero() {
		x.fired = a.now()
	}
	x.fired = x.fired.In(x.loc)
	x.lang = "en"
	switch {
	case x.profile.Language != "":
		x.lang = x.profile.Language
	case hasHan(r.Spec.Title + r.Spec.Instruction):
		x.lang = "zh"
	}
	return x
}

func (x *runExec) zh() bool { return x.lang == "zh" }

// now is the agent's clock in the task's zone.
func (x *runExec) now() time.Time { return x.a.now().In(x.loc) }

func (x *runExec) emit(ctx context.Context, ps ...streams.Payload) error {
	if err := x.rep.Emit(ctx, ps...); err != nil {
		return fmt.Errorf("agent: run %s: emit: %w", x.run.ID, err)
	}
	return nil
}

// execute picks the run's way: the step executor or the tool loop. A run
// resumes the way its last checkpoint was written, unless the loop's has
// no LLM left to continue it.
func (x *runExec) execute(ctx context.Context) (tasks.Outcome, error) {
	st, resumed := lastLoopState(x.run.Checkpoints)
	switch {
	case resumed && !isOffline(x.a.model):
		return x.loop(ctx, st, true)
	case len(x.run.Checkpoints) > 0 || x.needsNoModel():
		return x.viaSteps(ctx)
	}
	return x.loop(ctx, loopState{}, false)
}

// needsNoModel reports whether the run goes to the step executor: there
// is no LLM, or the task says exactly what to do without one.
func (x *runExec) needsNoModel() bool {
	s := x.run.Spec
	if isOffline(x.a.model) {
		return true
	}
	if strings.TrimSpace(s.Instruction) != "" {
		return false
	}
	if s.Kind == tasks.KindMonitor && s.Monitor != nil {
		return strings.TrimSpace(s.Monitor.Judge) == ""
	}
	return len(s.Steps) > 0
}

// viaSteps runs the task's declared steps with the step executor, given
// only its own checkpoints, and renders the notification from the
// domain's template.
func (x *runExec) viaSteps(ctx context.Context) (tasks.Outcome, error) {
	if steps := impliedSteps(x.run.Spec); steps != nil {
		// A weather, price or news task without steps calls its domain's
		// built-in tool, so that the notification tells what it said.
		x.run.Spec.Steps = steps
	}
	r := x.run
	r.Checkpoints = slices.DeleteFunc(slices.Clone(r.Checkpoints), func(cp tasks.Checkpoint) bool { return isLoopState(cp.State) })
	out, err := x.a.steps.Execute(ctx, r, x.rep)
	if err != nil || out.Quiet {
		return out, err
	}
	out.Summary = x.notice(out)
	return out, nil
}

// --- checkpoint state ---

// loopStateVersion marks a checkpoint as the tool loop's: the step
// executor's states have no "agent" field.
const loopStateVersion = 1

// loopState is the checkpoint state of the tool loop: everything needed to
// go on after a step. It is JSON and bounded (see compactMessages).
type loopState struct {
	Agent int `json:"agent"`
	// Next is the step index of the next checkpoint; Turns the model turns
	// taken so far.
	Next  int `json:"next"`
	Turns int `json:"turns"`
	// Messages is the conversation so far.
	Messages []Message `json:"messages"`
	// Reasked are the tools (as the model names them) whose last call had
	// invalid arguments and were sent back once to be corrected.
	Reasked []string `json:"reasked,omitempty"`
	// Monitor is a monitor's verdict, once judged.
	Monitor *monitorVerdict `json:"monitor,omitempty"`
	// Calls counts the tool calls made.
	Calls int `json:"calls"`
}

func isLoopState(raw json.RawMessage) bool {
	var probe struct {
		Agent int `json:"agent"`
	}
	return json.Unmarshal(raw, &probe) == nil && probe.Agent == loopStateVersion
}

// lastLoopState decodes the last checkpoint when it is the loop's.
func lastLoopState(cps []tasks.Checkpoint) (loopState, bool) {
	if len(cps) == 0 || !isLoopState(cps[len(cps)-1].State) {
		return loopState{}, false
	}
	var st loopState
	if err := json.Unmarshal(cps[len(cps)-1].State, &st); err != nil || len(st.Messages) == 0 {
		return loopState{}, false
	}
	return st, true
}

// checkpoint records st as the state after its step.
func (x *runExec) checkpoint(ctx context.Context, st *loopState) error {
	st.Messages = compactMessages(st.Messages, x.a.maxState)
	step := st.Next
	st.Next++
	raw, err := json.Marshal(st)
	if err != nil {
		return tasks.Permanent(fmt.Errorf("agent: encode checkpoint: %w", err))
	}
	return x.rep.Checkpoint(ctx, step, raw)
}

// compactMessages keeps the JSON of msgs under limit bytes: it elides the
// contents of tool results, oldest first, then drops the oldest turns
// after the task's prompt (the first system and user messages), leaving a
// note. The last turn is always kept, and its results (what the model
// reads next) are elided only when nothing else is left to shorten. Tool
// calls keep their results, so the conversation stays well formed for
// every provider.
func compactMessages(msgs []Message, limit int) []Message {
	sizes := make([]int, len(msgs))
	total := 0
	for i, m := range msgs {
		sizes[i] = messageSize(m)
		total += sizes[i]
	}
	if total <= limit {
		return msgs
	}
	msgs = slices.Clone(msgs)
	// The results of the last turn are what the model reads next: they
	// are elided only when nothing else is left to shorten.
	lastTurn := len(msgs)
	for lastTurn > 0 && msgs[lastTurn-1].Role == RoleTool {
		lastTurn--
	}
	elide := func(from, to int) bool {
		for i := from; i < to; i++ {
			if msgs[i].Role != RoleTool || len(msgs[i].Content) <= 128 {
				continue
			}
			msgs[i].Content = fmt.Sprintf(`{"elided":"a result of %d bytes, left out to keep the run's state bounded"}`, len(msgs[i].Content))
			total -= sizes[i]
			sizes[i] = messageSize(msgs[i])
			total += sizes[i]
			if total <= limit {
				return true
			}
		}
		return false
	}
	if elide(0, lastTurn) {
		return msgs
	}
	// Drop whole turns, oldest first, after the task's prompt (and the
	// note of an earlier drop): an assistant message and its results.
	head := min(2, len(msgs))
	noted := len(msgs) > head && msgs[head].Role == RoleUser && msgs[head].Content == droppedNote
	if noted {
		head++
	}
	dropped := false
	for total > limit && head < len(msgs) && msgs[head].Role == RoleAssistant {
		end := head + 1
		for end < len(msgs) && msgs[end].Role == RoleTool {
			end++
		}
		if end >= len(msgs) {
			break // the last turn stays
		}
		for _, s := range sizes[head:end] {
			total -= s
		}
		msgs = slices.Delete(msgs, head, end)
		sizes = slices.Delete(sizes, head, end)
		dropped = true
	}
	if dropped && !noted {
		note := Message{Role: RoleUser, Content: droppedNote}
		at := min(2, len(msgs))
		msgs = slices.Insert(msgs, at, note)
		sizes = slices.Insert(sizes, at, messageSize(note))
		total += sizes[at]
	}
	if total > limit {
		start := len(msgs)
		for start > 0 && msgs[start-1].Role == RoleTool {
			start--
		}
		elide(start, len(msgs))
	}
	return msgs
}

// droppedNote stands in the conversation for the turns compactMessages
// dropped.
const droppedNote = "[Earlier steps of this run were left out to keep its state bounded; their tool calls were made.]"

func messageSize(m Message) int {
	b, _ := json.Marshal(m)
	return len(b) + 1
}

// --- the tool loop ---

// loop runs the model turn by turn from st (a resumed run's state, or a
// new one), calling tools until the model answers with text.
func (x *runExec) loop(ctx context.Context, st loopState, resumed bool) (tasks.Outcome, error) {
	spec := x.run.Spec
	if resumed {
		detail := fmt.Sprintf("resuming at step %d", st.Turns+1)
		if err := x.emit(ctx, streams.Status{Phase: streams.PhaseThinking, Detail: detail}); err != nil {
			return tasks.Outcome{}, err
		}
	} else {
		st = loopState{Agent: loopStateVersion}
		if spec.Kind == tasks.KindMonitor && spec.Monitor != nil {
			v, quiet, err := x.judge(ctx)
			if err != nil || quiet != nil {
				return deref(quiet), err
			}
			st.Monitor = v
			if strings.TrimSpace(spec.Instruction) == "" && len(spec.Steps) == 0 {
				return x.monitorOutcome(v, "", x.monitorNotice(v))
			}
		}
		st.Messages = []Message{{Role: RoleSystem, Content: x.systemPrompt()}, {Role: RoleUser, Content: x.userPrompt(st.Monitor)}}
		if st.Monitor != nil {
			if err := x.checkpoint(ctx, &st); err != nil {
				return tasks.Outcome{}, err
			}
		}
	}
	if err := x.offerTools(ctx); err != nil {
		return tasks.Outcome{}, err
	}
	model := x.model()
	for {
		if st.Turns >= x.a.maxSteps {
			return tasks.Outcome{}, tasks.Permanent(fmt.Errorf("agent: run %s used all its %d steps without finishing", x.run.ID, x.a.maxSteps))
		}
		detail := fmt.Sprintf("step %d of at most %d", st.Turns+1, x.a.maxSteps)
		if err := x.emit(ctx, streams.Status{Phase: streams.PhaseThinking, Detail: detail}); err != nil {
			return tasks.Outcome{}, err
		}
		resp, err := model.Generate(ctx, st.Messages, x.modelTools(), x.options())
		switch offline, werr := x.afterFallback(ctx); {
		case werr != nil:
			return tasks.Outcome{}, werr
		case offline && ctx.Err() == nil:
			// The offline model took over: it cannot follow an
			// instruction, so the declared steps and templates do,
			// whatever it answered.
			if st.Monitor != nil {
				return x.monitorOutcome(st.Monitor, "", x.monitorNotice(st.Monitor))
			}
			return x.viaSteps(ctx)
		}
		if err != nil {
			return tasks.Outcome{}, x.modelError(ctx, err, fmt.Sprintf("step %d", st.Turns+1))
		}
		st.Turns++
		msg := resp.Message()
		for i := range msg.ToolCalls {
			if len(msg.ToolCalls[i].Arguments) > maxCallArgs {
				msg.ToolCalls[i].Arguments = json.RawMessage(`{"elided":"arguments too long to keep"}`)
			}
		}
		st.Messages = append(st.Messages, msg)
		if len(resp.ToolCalls) == 0 {
			return x.finish(ctx, st, resp)
		}
		if text := strings.TrimSpace(resp.Text); text != "" {
			if err := x.emit(ctx, streams.Reasoning{Summary: clipText(text, 500)}); err != nil {
				return tasks.Outcome{}, err
			}
		}
		for i, c := range resp.ToolCalls {
			if c.ID == "" {
				c.ID = fmt.Sprintf("t%d-%d", st.Turns, i)
				msg.ToolCalls[i].ID = c.ID
			}
			content, err := x.handleCall(ctx, &st, c)
			if err != nil {
				return tasks.Outcome{}, err
			}
			st.Messages = append(st.Messages, ToolResult(c, content))
		}
		if err := x.checkpoint(ctx, &st); err != nil {
			return tasks.Outcome{}, err
		}
	}
}

func deref(o *tasks.Outcome) tasks.Outcome {
	if o == nil {
		return tasks.Outcome{}
	}
	return *o
}

// model returns the run's model: the TaskAgent's, with a hook that notes
// a fallback when it is a *Fallback.
func (x *runExec) model() Model {
	return hooked(x.a.model, func(err error) {
		x.a.logger.WarnContext(x.ctx, "agent: task model fell back", "run", x.run.ID, "err", err)
		x.fellBack.Store(true)
	})
}

// afterFallback emits the fallback warning once, after a Generate that
// fell back, and reports whether the offline model took over.
func (x *runExec) afterFallback(ctx context.Context) (offline bool, err error) {
	if !x.fellBack.Swap(false) {
		return false, nil
	}
	if !x.warned {
		x.warned = true
		if err := x.emit(ctx, FallbackWarning(x.lang)); err != nil {
			return false, err
		}
	}
	f, _ := x.a.model.(*Fallback)
	return f != nil && isOffline(f.Secondary), nil
}

// modelError classifies a model's failure: the run's own context ending is
// returned as it is (the worker knows why), anything else is temporary.
func (x *runExec) modelError(ctx context.Context, err error, what string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("agent: run %s, %s: %w", x.run.ID, what, context.Cause(ctx))
	}
	return tasks.Temporary(fmt.Errorf("agent: run %s, %s: the model failed: %w", x.run.ID, what, err), 0)
}

// options are the Generate options of the run.
func (x *runExec) options() Options {
	opts := Options{Location: x.loc, Now: x.now()}
	for _, st := range x.run.Spec.Steps {
		args, err := st.Render(x.run.Spec.Slots)
		if err != nil {
			continue
		}
		raw, _ := json.Marshal(args)
		name, _, _ := strings.Cut(st.Tool, "@")
		opts.Steps = append(opts.Steps, Step{Tool: modelToolName(name), Args: raw})
	}
	return opts
}

// finish turns the model's answer into the run's outcome.
func (x *runExec) finish(ctx context.Context, st loopState, resp Response) (tasks.Outcome, error) {
	if err := x.emit(ctx, streams.Status{Phase: streams.PhaseResponding}); err != nil {
		return tasks.Outcome{}, err
	}
	text := strings.TrimSpace(resp.Text)
	if text == "" {
		text = pick(x.zh(), x.run.Spec.Title+": done.", x.run.Spec.Title+"：已完成。")
	}
	if st.Monitor != nil {
		return x.monitorOutcome(st.Monitor, resp.Source, text)
	}
	res, err := json.Marshal(loopResult{Text: text, Steps: st.Turns, Calls: st.Calls, Model: resp.Source})
	if err != nil {
		return tasks.Outcome{}, tasks.Permanent(err)
	}
	return tasks.Outcome{Result: res, Summary: text}, nil
}

// loopResult is the Result of a run of the tool loop.
type loopResult struct {
	Text  string `json:"text"`
	Steps int    `json:"steps"`
	Calls int    `json:"calls"`
	Model string `json:"model,omitempty"`
}

// --- tools ---

// modelToolName is the name the model knows a tool by: providers allow
// [a-zA-Z0-9_-] in function names, registry names also have dots and never
// hyphens.
func modelToolName(name string) string { return strings.ReplaceAll(name, ".", "-") }

// offerTools resolves the tools the task may call: Spec.Tools, or every
// tool the tenant sees (default versions). A listed tool that is not
// registered is left out with a warning.
func (x *runExec) offerTools(ctx context.Context) error {
	x.byName = map[string]*offeredTool{}
	refs := x.run.Spec.Tools
	if len(refs) == 0 {
		for _, l := range x.a.reg.List(x.run.Tenant) {
			if l.Default && len(refs) < maxAllTools && covers(x.scopes, l.Tool.Scopes) {
				refs = append(refs, l.Tool.Name)
			}
		}
	}
	for _, ref := range refs {
		tool, err := x.a.reg.Resolve(x.run.Tenant, ref)
		var schema *toolsregistry.Schema
		if err == nil {
			schema, err = x.a.reg.Schema(x.run.Tenant, ref)
		}
		if err != nil {
			x.a.logger.WarnContext(ctx, "agent: a tool of the task is not available", "run", x.run.ID, "tool", ref, "err", err)
			w := streams.Warning{Code: WarningToolUnavailable, Message: pick(x.zh(),
				fmt.Sprintf("The tool %s is not available; the task runs without it.", ref),
				fmt.Sprintf("工具 %s 不可用，任务将在没有它的情况下运行。", ref))}
			if err := x.emit(ctx, w); err != nil {
				return err
			}
			continue
		}
		name := modelToolName(tool.Name)
		if _, dup := x.byName[name]; dup {
			continue
		}
		x.tools = append(x.tools, offeredTool{name: name, ref: ref, tool: tool, schema: schema})
	}
	for i := range x.tools {
		x.byName[x.tools[i].name] = &x.tools[i]
	}
	return nil
}

// covers reports whether the scopes held cover every scope of need, by
// the rule toolsregistry.Registry.Call applies: equal, "action:*" for
// every scope of the action, "*" for all. It only decides which tools to
// offer; the registry decides the calls.
func covers(held, need []string) bool {
	return !slices.ContainsFunc(need, func(s string) bool {
		return !slices.ContainsFunc(held, func(h string) bool {
			return h == s || h == "*" || (strings.HasSuffix(h, ":*") && strings.HasPrefix(s, h[:len(h)-1]))
		})
	})
}

// modelTools are the offered tools as the model sees them.
func (x *runExec) modelTools() []Tool {
	out := make([]Tool, len(x.tools))
	for i, t := range x.tools {
		out[i] = Tool{Name: t.name, Description: t.tool.Description, Parameters: t.tool.InputSchema}
	}
	return out
}

// callID is the id of a model's call in the run's events.
func (x *runExec) callID(c ToolCall) string {
	return fmt.Sprintf("%s.a%d.%s", x.run.ID, x.run.Attempt, c.ID)
}

// handleCall validates, repairs and makes one of the model's calls, and
// returns what the model reads back. A call whose arguments no rule can
// repair goes back to the model once with the validation error; the next
// invalid call of the same tool is a tool_error. Only the run's context
// ending, an event that cannot be appended and a call refused because the
// owner lacks a scope the tool needs (permanent) are errors.
func (x *runExec) handleCall(ctx context.Context, st *loopState, c ToolCall) (string, error) {
	id := x.callID(c)
	t := x.byName[c.Name]
	if t == nil {
		names := make([]string, len(x.tools))
		for i, o := range x.tools {
			names[i] = o.name
		}
		tool := c.Name
		if tool == "" {
			tool = "unnamed"
		}
		te := &toolsregistry.Error{Code: vigil.NotFound, Tool: tool,
			Message: fmt.Sprintf("%s is not among this task's tools (%s)", c.Name, strings.Join(names, ", "))}
		return x.failCall(ctx, id, argsObject(c.Arguments), te)
	}
	args, reps, verr := x.check(t, c.Arguments)
	if verr != nil {
		if !slices.Contains(st.Reasked, t.name) {
			st.Reasked = append(st.Reasked, t.name)
			detail := clipText(fmt.Sprintf("%s: invalid arguments (%s); asking the model to correct them", t.tool.Name, verr.Error()), 300)
			if err := x.emit(ctx, streams.Status{Phase: streams.PhaseCallingTool, Detail: detail}); err != nil {
				return "", err
			}
			return reaskContent(t, verr), nil
		}
		st.Reasked = slices.DeleteFunc(st.Reasked, func(n string) bool { return n == t.name })
		return x.failCall(ctx, id, argsObject(c.Arguments), verr)
	}
	st.Reasked = slices.DeleteFunc(st.Reasked, func(n string) bool { return n == t.name })
	st.Calls++
	res, err := x.invoke(ctx, id, t.tool, t.ref, args)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("agent: run %s: %w", x.run.ID, context.Cause(ctx))
		}
		var te *toolsregistry.Error
		if !errors.As(err, &te) {
			return "", err // an event not appended
		}
		if te.Code == vigil.Forbidden {
			// The owner lacks a scope the tool needs: no other call
			// makes the task do what it was written for.
			return "", tasks.Permanent(fmt.Errorf("agent: run %s: %w", x.run.ID, te))
		}
		return errorContent(te), nil
	}
	return resultContent(res, reps), nil
}

// check validates args against t's schema and repairs what rules can.
func (x *runExec) check(t *offeredTool, raw json.RawMessage) (json.RawMessage, []toolsregistry.Repair, *toolsregistry.Error) {
	args := normalizeArgs(raw)
	if t.schema.Validate(args) == nil {
		return args, nil, nil
	}
	fixed, reps, err := t.schema.Repair(args, x.now(), x.loc)
	if err != nil {
		var te *toolsregistry.Error
		if !errors.As(err, &te) {
			te = &toolsregistry.Error{Code: vigil.Invalid, Message: err.Error()}
		}
		te.Tool, te.Version = t.tool.Name, t.tool.Version
		return nil, nil, te
	}
	return fixed, reps, nil
}

// invoke makes a validated call through the registry, with its events:
// status and tool_call, then tool_result (with the tool's warning and
// parts) or tool_error. A failed call returns its *toolsregistry.Error
// after the tool_error event; any other error is an event not appended.
func (x *runExec) invoke(ctx context.Context, id string, tool toolsregistry.Tool, ref string, args json.RawMessage) (*toolsregistry.Result, error) {
	version := strconv.Itoa(tool.Version)
	if err := x.emit(ctx,
		streams.Status{Phase: streams.PhaseCallingTool, Detail: tool.Name},
		streams.ToolCall{CallID: id, Tool: tool.Name, Version: version, Args: args},
	); err != nil {
		return nil, err
	}
	// The call counts against the quota of the run's owner, the principal
	// begin put in the run's context.
	owner, _ := vigil.PrincipalFrom(ctx)
	res, err := x.a.reg.Call(ctx, toolsregistry.Request{Tenant: x.run.Tenant, User: owner.User, Scopes: x.scopes, Tool: ref, Args: args, Location: x.loc})
	if err != nil {
		var te *toolsregistry.Error
		if !errors.As(err, &te) {
			te = &toolsregistry.Error{Code: vigil.ErrorCode(err), Tool: tool.Name, Message: vigil.ErrorMessage(err), Err: err}
		}
		te = tasks.OwnerLacks(te, x.scopes)
		if err := x.emit(ctx, te.ToolError(id)); err != nil {
			return nil, err
		}
		return nil, te
	}
	ps := []streams.Payload{res.ToolResult(id)}
	if res.Warning != nil {
		ps = append(ps, *res.Warning)
	}
	ps = append(ps, res.Parts...)
	if err := x.emit(ctx, ps...); err != nil {
		return nil, err
	}
	return res, nil
}

// failCall records a call that is not made: tool_call with the model's
// arguments, then tool_error; the model reads the error.
func (x *runExec) failCall(ctx context.Context, id string, args json.RawMessage, te *toolsregistry.Error) (string, error) {
	tc := streams.ToolCall{CallID: id, Tool: te.Tool, Args: args}
	if te.Version > 0 {
		tc.Version = strconv.Itoa(te.Version)
	}
	if err := x.emit(ctx, tc, te.ToolError(id)); err != nil {
		return "", err
	}
	return errorContent(te), nil
}

// argsObject returns a call's arguments for its tool_call event: the
// model's object, or {} when it wrote something else (the tool_error
// says what).
func argsObject(raw json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if isJSONObject(string(raw)) && json.Compact(&buf, raw) == nil {
		return buf.Bytes()
	}
	return json.RawMessage(`{}`)
}

// toolFeedback is what the model reads of a failed or refused call.
type toolFeedback struct {
	Error     string          `json:"error"`
	Expected  json.RawMessage `json:"expected,omitempty"`
	Retryable bool            `json:"retryable"`
	Hint      string          `json:"hint,omitempty"`
}

func errorContent(te *toolsregistry.Error) string {
	b, _ := json.Marshal(toolFeedback{Error: te.Error(), Expected: te.Expected, Retryable: te.Retryable})
	return string(b)
}

func reaskContent(t *offeredTool, te *toolsregistry.Error) string {
	b, _ := json.Marshal(toolFeedback{
		Error: "invalid arguments: " + te.Error(), Expected: te.Expected, Retryable: true,
		Hint: fmt.Sprintf("The call was not made. Call %s again with arguments that match its schema.", t.name),
	})
	return string(b)
}

// resultContent is what the model reads of a call that succeeded: the
// output, cut to maxToolContent, with a note of the repairs made.
func resultContent(res *toolsregistry.Result, reps []toolsregistry.Repair) string {
	out := string(res.Output)
	if out == "" {
		out = "null"
	}
	if len(out) > maxToolContent {
		out = clipBytes(out, maxToolContent) + " …[truncated]"
	}
	reps = append(slices.Clone(reps), res.Repairs...)
	if len(reps) > 0 {
		notes := make([]string, len(reps))
		for i, r := range reps {
			notes[i] = fmt.Sprintf("%s %s→%s (%s)", r.Field, orNone(r.From), r.To, r.Rule)
		}
		out += "\n(note: the arguments were repaired before the call: " + strings.Join(notes, "; ") + ")"
	}
	return out
}

func orNone(b json.RawMessage) string {
	if len(b) == 0 {
		return "(missing)"
	}
	return string(b)
}

// --- monitors ---

// monitorVerdict is a monitor's reading: the source's value, the previous
// one, and whether the condition (and the judge) hold.
type monitorVerdict struct {
	Value  json.RawMessage `json:"value"`
	Prev   json.RawMessage `json:"prev,omitempty"`
	Holds  bool            `json:"holds"`
	Reason string          `json:"reason,omitempty"`
}

// monitorResult is a monitor run's Result; "value" and "holds" have the
// StepExecutor's meaning, so either reads the other's previous value.
type monitorResult struct {
	Value  json.RawMessage `json:"value"`
	Holds  bool            `json:"holds"`
	Reason string          `json:"reason,omitempty"`
	Text   string          `json:"text,omitempty"`
	Model  string          `json:"model,omitempty"`
}

// monitorOutcome is the outcome of a monitor whose condition holds.
func (x *runExec) monitorOutcome(v *monitorVerdict, source, text string) (tasks.Outcome, error) {
	res, err := json.Marshal(monitorResult{Value: v.Value, Holds: true, Reason: v.Reason, Text: text, Model: source})
	if err != nil {
		return tasks.Outcome{}, tasks.Permanent(err)
	}
	return tasks.Outcome{Result: res, Summary: text}, nil
}

// judge reads a monitor's source, evaluates its condition with prev, and
// asks the model for a verdict on its Judge. It returns the verdict when
// the monitor fires, else the quiet outcome.
func (x *runExec) judge(ctx context.Context) (*monitorVerdict, *tasks.Outcome, error) {
	m := *x.run.Spec.Monitor
	raw, err := x.declared(ctx, fmt.Sprintf("%s.src.a%d", x.run.ID, x.run.Attempt), m.Source)
	if err != nil {
		return nil, nil, err
	}
	var value any
	if err := json.Unmarshal(raw, &value); err != nil {
		return nil, nil, tasks.Permanent(fmt.Errorf("agent: monitor source %s returned invalid JSON: %w", m.Source.Tool, err))
	}
	prevRaw, prev, err := x.previous(ctx)
	if err != nil {
		return nil, nil, err
	}
	v := &monitorVerdict{Value: raw, Prev: prevRaw, Holds: true}
	quiet := func(warning string) (*monitorVerdict, *tasks.Outcome, error) {
		if warning != "" {
			if err := x.emit(ctx, streams.Warning{Code: WarningMonitorCondition, Message: clipText(warning, 1000)}); err != nil {
				return nil, nil, err
			}
		}
		res, err := json.Marshal(monitorResult{Value: raw, Holds: false, Reason: v.Reason})
		if err != nil {
			return nil, nil, tasks.Permanent(err)
		}
		return nil, &tasks.Outcome{Result: res, Quiet: true}, nil
	}
	if strings.TrimSpace(m.Condition) != "" {
		holds, herr := m.Holds(value, prev)
		if herr != nil {
			return quiet(fmt.Sprintf("The condition could not be evaluated on this value, so it does not fire: %v", herr))
		}
		v.Holds = holds
		v.Reason = "the condition " + m.Condition + " holds"
		if !holds {
			v.Reason = ""
			return quiet("")
		}
	}
	if strings.TrimSpace(m.Judge) == "" {
		return v, nil, nil
	}
	holds, reason, ok, err := x.askJudge(ctx, m.Judge, v)
	switch {
	case err != nil:
		return nil, nil, err
	case !ok:
		return quiet("The model gave no verdict on “" + m.Judge + "”, so the monitor does not fire this time.")
	case !holds:
		v.Reason = reason
		return quiet("")
	}
	v.Reason = reason
	return v, nil, nil
}

// verdictName is the tool the judge answers with.
const verdictName = "verdict"

var verdictTool = Tool{
	Name:        verdictName,
	Description: "Give your verdict: whether the condition holds for the value now, and why, in one sentence.",
	Parameters: json.RawMessage(`{"type":"object","properties":{` +
		`"holds":{"type":"boolean","description":"true if the condition holds now"},` +
		`"reason":{"type":"string","minLength":1,"maxLength":500,"description":"why, in one sentence, in the user's language"}},` +
		`"required":["holds","reason"],"additionalProperties":false}`),
}

var verdictSchema = func() *toolsregistry.Schema {
	s, err := toolsregistry.CompileSchema(verdictTool.Parameters)
	if err != nil {
		panic(err)
	}
	return s
}()

// askJudge asks the model whether the monitor's judge holds, offering
// only the verdict tool; an answer that is not a valid verdict is sent
// back once. ok is false when no verdict came (or the offline model took
// over, which cannot judge).
func (x *runExec) askJudge(ctx context.Context, judge string, v *monitorVerdict) (holds bool, reason string, ok bool, err error) {
	var b strings.Builder
	fmt.Fprintf(&b, "Condition: %s\n\nValue now:\n%s\n", judge, clipBytes(string(v.Value), 8<<10))
	if len(v.Prev) > 0 {
		fmt.Fprintf(&b, "\nValue at the previous check:\n%s\n", clipBytes(string(v.Prev), 8<<10))
	} else {
		b.WriteString("\nThere was no previous check.\n")
	}
	msgs := []Message{
		{Role: RoleSystem, Content: fmt.Sprintf("You judge the condition of a monitor for its owner. It is now %s (time zone %s). "+
			"Read the value the monitor's source returned and decide whether the condition holds now. "+
			"Answer only by calling %s once; write the reason in %s.", x.now().Format("Monday 2006-01-02 15:04"), x.loc, verdictName, languageName(x.lang))},
		{Role: RoleUser, Content: b.String()},
	}
	model := x.model()
	for range 2 {
		if err := x.emit(ctx, streams.Status{Phase: streams.PhaseThinking, Detail: "judging: " + clipText(judge, 200)}); err != nil {
			return false, "", false, err
		}
		resp, gerr := model.Generate(ctx, msgs, []Tool{verdictTool}, x.options())
		offline, werr := x.afterFallback(ctx)
		switch {
		case werr != nil:
			return false, "", false, werr
		case offline && gerr == nil:
			return false, "", false, nil
		case gerr != nil:
			return false, "", false, x.modelError(ctx, gerr, "judging the monitor")
		}
		msgs = append(msgs, resp.Message())
		var problem string
		for _, c := range resp.ToolCalls {
			if c.Name != verdictName {
				msgs = append(msgs, ToolResult(c, `{"error":"only the verdict tool is available here"}`))
				continue
			}
			if err := verdictSchema.Validate(normalizeArgs(c.Arguments)); err != nil {
				problem = err.Error()
				msgs = append(msgs, ToolResult(c, `{"error":`+strconv.Quote("invalid arguments: "+problem)+`}`))
				continue
			}
			var vd struct {
				Holds  bool   `json:"holds"`
				Reason string `json:"reason"`
			}
			if json.Unmarshal(c.Arguments, &vd) == nil {
				return vd.Holds, strings.TrimSpace(vd.Reason), true, nil
			}
		}
		if len(resp.ToolCalls) == 0 {
			msgs = append(msgs, Message{Role: RoleUser, Content: "Answer by calling " + verdictName + " with holds and reason."})
		}
		x.a.logger.InfoContext(ctx, "agent: no valid verdict from the model; asking again", "run", x.run.ID, "problem", problem)
	}
	return false, "", false, nil
}

// declared makes a declared call of the task (a monitor's source): its
// arguments rendered from the slots, validated and repaired. A failure is
// the attempt's error, classified by tasks.Classify, after its tool_error
// event.
func (x *runExec) declared(ctx context.Context, id string, st tasks.Step) (json.RawMessage, error) {
	args, err := st.Render(x.run.Spec.Slots)
	if err != nil {
		return nil, tasks.Permanent(err)
	}
	if args == nil {
		args = map[string]any{}
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return nil, tasks.Permanent(err)
	}
	name, _, _ := strings.Cut(st.Tool, "@")
	tool, err := x.a.reg.Resolve(x.run.Tenant, st.Tool)
	var schema *toolsregistry.Schema
	if err == nil {
		schema, err = x.a.reg.Schema(x.run.Tenant, st.Tool)
	}
	if err != nil {
		te := &toolsregistry.Error{Code: vigil.ErrorCode(err), Tool: name, Message: vigil.ErrorMessage(err), Err: err}
		if _, eerr := x.failCall(ctx, id, raw, te); eerr != nil {
			return nil, eerr
		}
		return nil, fmt.Errorf("agent: step %s: %w", st.Tool, te)
	}
	t := &offeredTool{name: modelToolName(tool.Name), ref: st.Tool, tool: tool, schema: schema}
	fixed, _, verr := x.check(t, raw)
	if verr != nil {
		if _, eerr := x.failCall(ctx, id, raw, verr); eerr != nil {
			return nil, eerr
		}
		return nil, fmt.Errorf("agent: step %s: %w", st.Tool, verr)
	}
	res, err := x.invoke(ctx, id, tool, st.Tool, fixed)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("agent: run %s: %w", x.run.ID, context.Cause(ctx))
		}
		return nil, fmt.Errorf("agent: step %s: %w", st.Tool, err)
	}
	out := res.Output
	if len(out) == 0 {
		out = json.RawMessage("null")
	}
	return out, nil
}

// previous returns the value of the task's newest succeeded run created
// before this one, raw and decoded; nil when there is none
// (tasks.PreviousValue).
func (x *runExec) previous(ctx context.Context) (json.RawMessage, any, error) {
	if x.a.store == nil {
		return nil, nil, nil
	}
	return tasks.PreviousValue(ctx, x.a.store, x.run)
}

// --- prompts ---

// systemPrompt tells the model what a run is, when and where it is, and
// what it knows of the owner.
func (x *runExec) systemPrompt() string {
	s := x.run.Spec
	now := x.now()
	var b strings.Builder
	b.WriteString("You are Vigil's task agent. You carry out one run of a task the user set up earlier, unattended: " +
		"nobody answers questions during the run. ")
	fmt.Fprintf(&b, "The task is “%s” (%s). ", s.Title, strings.ReplaceAll(string(s.Kind), "_", "-"))
	fmt.Fprintf(&b, "It is now %s (%s, time zone %s); this run is for %s. ",
		now.Format("Monday 2006-01-02 15:04"), now.Format("-07:00"), x.loc, x.fired.Format("Monday 2006-01-02 15:04"))
	fmt.Fprintf(&b, "Use the tools to get what the instruction needs; never make up what a tool did not return. "+
		"Give dates as ISO 8601 (YYYY-MM-DD) in the task's time zone. A tool result with an \"error\" tells you what went wrong; "+
		"correct your arguments or go on without it. You have at most %d steps. ", x.a.maxSteps)
	fmt.Fprintf(&b, "When you are done, answer with the message for the user, without calling a tool: concise, in %s, "+
		"with the facts the tools returned. That answer ends the run.", languageName(x.lang))
	p := x.profile
	var about []string
	if p.HomeCity != "" {
		about = append(about, "home city "+p.HomeCity)
	}
	if p.Language != "" {
		about = append(about, "language "+p.Language)
	}
	if p.TimeZone != "" {
		about = append(about, "time zone "+p.TimeZone)
	}
	for _, k := range slices.Sorted(maps.Keys(p.Preferences)) {
		if len(about) >= 24 {
			break
		}
		about = append(about, fmt.Sprintf("%s: %s", k, clipText(p.Preferences[k], 200)))
	}
	if len(about) > 0 {
		b.WriteString(" What the user's profile says: " + strings.Join(about, "; ") + ".")
	}
	return b.String()
}

// userPrompt is the task's instruction with its slots filled in, the
// slots, the declared steps and, for a monitor that fired, its verdict.
func (x *runExec) userPrompt(v *monitorVerdict) string {
	s := x.run.Spec
	vars := x.vars()
	instr := strings.TrimSpace(s.Instruction)
	if instr == "" {
		instr = s.Title
	}
	var b strings.Builder
	b.WriteString(fillTemplate(instr, vars))
	if len(s.Slots) > 0 {
		slots, _ := json.Marshal(s.Slots)
		fmt.Fprintf(&b, "\n\nThe task's parameters: %s", slots)
	}
	if opts := x.options(); len(opts.Steps) > 0 {
		b.WriteString("\n\nThe task declares these tool calls; make them unless the instruction says otherwise:")
		for _, st := range opts.Steps {
			fmt.Fprintf(&b, "\n- %s %s", st.Tool, normalizeArgs(st.Args))
		}
	}
	if v != nil {
		m := s.Monitor
		b.WriteString("\n\nThis is a monitor, and its condition holds now")
		if m.Condition != "" {
			fmt.Fprintf(&b, " (%s)", m.Condition)
		}
		if m.Judge != "" {
			fmt.Fprintf(&b, " (judged: %s)", m.Judge)
		}
		if v.Reason != "" {
			fmt.Fprintf(&b, ": %s", v.Reason)
		}
		fmt.Fprintf(&b, ".\nValue now: %s", clipBytes(string(v.Value), 4<<10))
		if len(v.Prev) > 0 {
			fmt.Fprintf(&b, "\nValue at the previous check: %s", clipBytes(string(v.Prev), 4<<10))
		}
		b.WriteString("\nWrite the notification that tells the user.")
	}
	return b.String()
}

func languageName(lang string) string {
	if lang == "zh" {
		return "Chinese"
	}
	return "English"
}

// fillTemplate replaces the references in text ({{name}} as in step
// arguments, or {{.name}} as in Go templates) to names in vars by their
// values; references to other names are left as they are.
func fillTemplate(text string, vars map[string]string) string {
	out, _ := tasks.Fill(text, vars)
	return out
}

// filled reports whether text has no reference left that vars cannot
// fill.
func filled(text string, vars map[string]string) bool {
	_, missing := tasks.Fill(text, vars)
	return len(missing) == 0
}

// vars are the values templates refer to: the slots, and the fire time in
// the task's zone as today (and date: 2026-11-23), now (2026-11-23
// 08:00), time (08:00), weekday (Monday) and tz; and title and
// instruction.
func (x *runExec) vars() map[string]string {
	s := x.run.Spec
	vars := map[string]string{}
	for k, v := range s.Slots {
		vars[k] = slotText(v)
	}
	f := x.fired
	vars["today"] = f.Format(time.DateOnly)
	vars["date"] = vars["today"]
	vars["now"] = f.Format("2006-01-02 15:04")
	vars["time"] = f.Format("15:04")
	vars["weekday"] = f.Weekday().String()
	vars["tz"] = x.loc.String()
	vars["title"] = s.Title
	// The instruction as a notification may show it: its own references
	// filled, never raw.
	vars["instruction"] = tasks.FillSlots(fillTemplate(strings.TrimSpace(s.Instruction), vars), nil)
	return vars
}

// slotText is a slot's value as text: a string as it is, a number
// without exponent, anything else as JSON.
func slotText(v any) string { return tasks.SlotText(v) }

// --- notification templates (offline) ---

// noticeTemplates are the notifications of runs made without an LLM, by
// domain (see taskDomain) and language; {{result}} is what the steps
// returned.
var noticeTemplates = map[string][2]string{
	DomainWeather:  {"Weather in {{city}} ({{today}}):\n{{result}}", "{{city}}天气（{{today}}）：\n{{result}}"},
	DomainPrice:    {"{{symbol}} ({{now}}): {{result}}", "{{symbol}}（{{now}}）：{{result}}"},
	DomainNews:     {"News about {{topic}} ({{today}}):\n{{result}}", "关于{{topic}}的新闻（{{today}}）：\n{{result}}"},
	DomainReminder: {"Reminder: {{message}}", "提醒：{{message}}"},
	DomainWeb:      {"{{url}} ({{now}}):\n{{result}}", "{{url}}（{{now}}）：\n{{result}}"},
	DomainReport:   {"{{title}} ({{today}}):\n{{result}}", "{{title}}（{{today}}）：\n{{result}}"},
	"":             {"{{title}}:\n{{result}}", "{{title}}：\n{{result}}"},
}

// monitorTemplates are the notifications of monitors that fired; {{value}}
// is the source's value, {{result}} the step executor's summary and
// {{reason}} why the monitor fired.
var monitorTemplates = map[string][2]string{
	DomainPrice: {"{{title}}: {{symbol}} is now {{value}}.", "{{title}}：{{symbol}} 现在是 {{value}}。"},
	"":          {"{{result}}", "{{result}}"},
	"judged":    {"{{title}}: {{reason}}", "{{title}}：{{reason}}"},
}

// noStepsTemplate is the notification of a task that has neither steps
// nor an LLM to follow its instruction: the instruction, its slots filled
// in, and why nothing more was done.
var noStepsTemplate = [2]string{
	"{{title}}: {{instruction}}\n(No language model is available to carry out this task, and it declares no tool steps.)",
	"{{title}}：{{instruction}}\n（当前没有可用的大模型来执行此任务，且任务未声明工具步骤。）",
}

// notice renders the notification of a run the step executor made.
func (x *runExec) notice(out tasks.Outcome) string {
	s := x.run.Spec
	domain := noticeDomain(s)
	vars := x.vars()
	vars["result"] = out.Summary
	tmpl, ok := noticeTemplates[domain]
	shaped := false
	if s.Kind != tasks.KindMonitor || s.Monitor == nil {
		// The domain's built-in tool answered: its template shows what
		// it said rather than its JSON.
		if shaped = addToolVars(vars, domain, lastOutput(out.Result), x.zh()); shaped {
			tmpl, ok = toolTemplates[domain]
		}
	}
	switch {
	case s.Kind == tasks.KindMonitor && s.Monitor != nil:
		var mr monitorResult
		if json.Unmarshal(out.Result, &mr) == nil && len(mr.Value) > 0 {
			vars["value"] = clipText(summarizeJSON(mr.Value), 200)
			addToolVars(vars, domain, mr.Value, x.zh())
		}
		tmpl, ok = monitorTemplates[domain]
	case shaped:
	case len(s.Steps) == 0 && domain != DomainReminder:
		tmpl, ok = noStepsTemplate, true
	}
	return x.render(tmpl, ok, vars, out.Summary)
}

// monitorNotice renders the notification of a monitor that fired without
// an LLM to write it.
func (x *runExec) monitorNotice(v *monitorVerdict) string {
	domain := noticeDomain(x.run.Spec)
	vars := x.vars()
	vars["value"] = clipText(summarizeJSON(v.Value), 200)
	addToolVars(vars, domain, v.Value, x.zh())
	vars["reason"] = v.Reason
	vars["result"] = fmt.Sprintf("%s: %s", x.run.Spec.Title, v.Reason)
	tmpl, ok := monitorTemplates[domain]
	if !ok && v.Reason != "" {
		tmpl, ok = monitorTemplates["judged"]
	}
	return x.render(tmpl, ok, vars, vars["result"])
}

// noticeDomain is the domain whose template tells of a run of s: the
// domain of the tool its last step (or its monitor's source) calls, when
// that is a domain's tool, else the domain its slots suggest.
func noticeDomain(s tasks.Spec) string {
	var tool string
	switch {
	case len(s.Steps) > 0:
		tool = s.Steps[len(s.Steps)-1].Tool
	case s.Monitor != nil:
		tool = s.Monitor.Source.Tool
	}
	name, _, _ := strings.Cut(tool, "@")
	switch name {
	case ToolWeather:
		return DomainWeather
	case ToolPrice:
		return DomainPrice
	case ToolNews:
		return DomainNews
	case ToolHTTPGet:
		return DomainWeb
	}
	return taskDomain(tasks.Task{Spec: s})
}

// render fills the language's side of tmpl, or returns fallback when
// there is no template or it refers to a value the run lacks. Either way
// no raw {{...}} is left: references are filled (twice, for a slot whose
// value refers to another: "call {{who}}"), and those nothing fills
// become the name in brackets.
func (x *runExec) render(tmpl [2]string, ok bool, vars map[string]string, fallback string) string {
	t := pick(x.zh(), tmpl[0], tmpl[1])
	if !ok || !filled(t, vars) {
		t = fallback
	}
	return tasks.FillSlots(fillTemplate(fillTemplate(t, vars), vars), nil)
}

// summarizeJSON returns a JSON value as text: a string's text, else the
// compact JSON.
func summarizeJSON(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		return buf.String()
	}
	return string(raw)
}

// clipText cuts s to at most n characters, marking a cut with "…".
func clipText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// clipBytes cuts s to at most n bytes on a character boundary.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

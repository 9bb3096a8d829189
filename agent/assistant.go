package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// AssistantOptions configure an Assistant. Log and Tasks are required; the
// zero value of every other field means its default.
type AssistantOptions struct {
	// Model plans each message (offered PlanTaskTool) and answers chat.
	// Default Offline. A *Fallback gets a warning event on the thread each
	// time it falls back (FallbackWarning).
	Model Model
	// Tasks creates, confirms and manages the tasks the conversation is
	// about. Without it, task requests are answered with an error event.
	Tasks *tasks.Manager
	// Log holds the threads the assistant answers on, and the
	// conversation's state (see IsUserMessage, PendingKeyword).
	Log streams.Log
	// Memory, if set, gives the user's profile (home city, time zone) and
	// the short-term budget of an LLM's prompt. Nil means neither.
	Memory *memory.Service
	// Now is the clock that resolves "tomorrow" and stamps events. Default
	// time.Now.
	Now func() time.Time
	// Logger receives what goes wrong without failing the turn (a model
	// that failed, a profile that does not open). Default slog.Default().
	Logger *slog.Logger
	// Horizon is how far back a thread is read for the conversation's
	// state and an LLM's context: a question unanswered for longer is
	// forgotten. Default DefaultHorizon.
	Horizon time.Duration
}

// Assistant is Vigil's main agent, the interaction layer: it takes a
// user's message on a thread and answers on the same thread's event
// stream. Every answer is a turn of events, each carrying the request's
// trace id:
//
//	text (the user's message, id UserMessagePrefix…) → status thinking → reasoning
//	  → clarification            the request lacks slots: ask for them
//	  | task_card                a draft task, to confirm, edit or cancel
//	  | task_status, text        a task confirmed, cancelled, paused, …
//	  | text_delta…, text        chat
//	  | error                    the request could not be carried out
//	→ done
//
// A message is planned by the Model, offered PlanTaskTool, in the user's
// zone: the profile's time zone when it has one, else the message's, else
// UTC. An answer to a clarification fills the slots asked for and the
// assistant goes on; "yes" or "确认" confirms the thread's draft, "cancel"
// or "取消" archives it; pause, resume, delete and run act on the user's
// task that the request names best, and ask which when several do.
//
// The assistant keeps no state between turns: the conversation is read
// back from the thread each time (see conversation.go), so it survives a
// restart and may be answered by any process. Turns on one thread are
// serialised within a process; two processes answering the same thread at
// the same moment may each see the other's turn half done.
//
// Handle is safe for concurrent use.
type Assistant struct {
	model   Model
	tasks   *tasks.Manager
	log     streams.Log
	memory  *memory.Service
	now     func() time.Time
	logger  *slog.Logger
	horizon time.Duration

	locks [64]sync.Mutex // turns on one thread, by hash of tenant and thread
}

// NewAssistant returns an Assistant.
func NewAssistant(opts AssistantOptions) *Assistant {
	a := &Assistant{
		model: opts.Model, tasks: opts.Tasks, log: opts.Log, memory: opts.Memory,
		now: opts.Now, logger: opts.Logger, horizon: opts.Horizon,
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.model == nil {
		a.model = Offline{Now: a.now}
	}
	if a.logger == nil {
		a.logger = slog.Default()
	}
	if a.horizon <= 0 {
		a.horizon = DefaultHorizon
	}
	return a
}

// MaxMessage is the longest message Handle takes, in characters.
const MaxMessage = 4000

// Input is one message of a user to the assistant.
type Input struct {
	// Text is what the user said.
	Text string
	// Location is the user's time zone as the client knows it, used when
	// the user's profile names none; nil means UTC.
	//
	// The zone of a message is the profile's time zone when the user has
	// one, else Location, else the zone of the question the message
	// answers, else UTC.
	Location *time.Location
}

// Turn is what Handle did with a message.
type Turn struct {
	// MessageID is the id of the text event that recorded the message.
	MessageID string `json:"message_id"`
	// Outcome is the status of the turn's done event: waiting_input when
	// the assistant asked a question or showed a draft, succeeded or
	// failed otherwise.
	Outcome streams.Outcome `json:"outcome"`
	// TaskID is the task the turn created or acted on, if any.
	TaskID string `json:"task_id,omitempty"`
}

// Handle answers one message of the user of ctx's principal on thread,
// appending the turn's events to the thread before it returns. The thread
// must exist in the principal's tenant (vigil.NotFound otherwise); an
// empty or too long message is vigil.Invalid, and nothing is appended.
//
// A request the assistant cannot carry out (a task that does not
// validate, an illegal state change) is answered with an error event and
// a failed done, and Handle returns nil. An error is returned when the
// turn could not be recorded (the log failed) or a store failed; the turn
// then ends, where it can, with an error event and a failed done.
func (a *Assistant) Handle(ctx context.Context, thread string, in Input) (Turn, error) {
	text := strings.TrimSpace(in.Text)
	switch n := utf8.RuneCountInString(text); {
	case n == 0:
		return Turn{}, vigil.FieldError("text", "is required")
	case n > MaxMessage:
		return Turn{}, vigil.FieldError("text", "at most %d characters, got %d", MaxMessage, n)
	}
	tenant, err := vigil.TenantFrom(ctx)
	if err != nil {
		return Turn{}, err
	}
	if !vigil.ValidID(thread) {
		return Turn{}, vigil.Errorf(vigil.NotFound, "thread %q not found", thread)
	}
	mu := a.lock(tenant, thread)
	mu.Lock()
	defer mu.Unlock()

	if _, err := a.log.Thread(ctx, tenant, thread); err != nil {
		return Turn{}, err
	}
	conv, err := a.conversation(ctx, tenant, thread)
	if err != nil {
		return Turn{}, fmt.Errorf("agent: read thread %s: %w", thread, err)
	}
	t := &turn{a: a, ctx: ctx, tenant: tenant, thread: thread, trace: vigil.TraceID(ctx), text: text, conv: conv}
	t.profile = a.profile(ctx)
	t.loc = t.profile.Location()
	if t.loc == nil {
		t.loc = in.Location
	}
	if t.loc == nil && conv.pending != nil && conv.pending.TZ != "" {
		t.loc, _ = time.LoadLocation(conv.pending.TZ)
	}
	if t.loc == nil {
		t.loc = time.UTC
	}
	t.now = a.now().In(t.loc)
	t.lang = "en"
	switch {
	case hasHan(text):
		t.lang = "zh"
	case (isConfirm(text) || isCancel(text)) && conv.lastLang != "":
		t.lang = conv.lastLang
	case (isConfirm(text) || isCancel(text)) && t.profile.Language != "":
		t.lang = t.profile.Language
	}

	id := vigil.NewID(UserMessagePrefix)
	if err := t.emit(streams.Text{MessageID: id, Text: text}); err != nil {
		return Turn{}, err
	}
	t.result.MessageID = id
	if err := t.emit(streams.Status{Phase: streams.PhaseThinking}); err != nil {
		return t.result, err
	}
	if err := t.respond(); err != nil {
		return t.result, t.fail(err)
	}
	return t.result, nil
}

// lock returns the mutex of a thread's turns.
func (a *Assistant) lock(tenant, thread string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(thread))
	return &a.locks[h.Sum32()%uint32(len(a.locks))]
}

// profile returns the user's profile, or the empty one when there is no
// memory, no profile, or none readable.
func (a *Assistant) profile(ctx context.Context) memory.Profile {
	if a.memory == nil {
		return memory.Profile{}
	}
	p, err := a.memory.Profile(ctx)
	switch vigil.ErrorCode(err) {
	case "":
		return p
	case vigil.NotFound, vigil.Unavailable, vigil.Forbidden:
	default:
		a.logger.WarnContext(ctx, "agent: profile not read; going on without it", "err", err)
	}
	return memory.Profile{}
}

// turn is the answer to one message under way.
type turn struct {
	a                     *Assistant
	ctx                   context.Context
	tenant, thread, trace string
	text                  string
	lang                  string // "zh" or "en": the language of what the assistant says
	loc                   *time.Location
	now                   time.Time
	profile               memory.Profile
	conv                  conversation

	mu      sync.Mutex // emit, from the model's goroutines too
	replyID string     // the assistant message being streamed
	warned  bool       // a fallback warning was emitted
	ended   bool       // done was emitted
	result  Turn
}

func (t *turn) zh() bool { return t.lang == "zh" }

// emit appends one event of the turn to the thread.
func (t *turn) emit(p streams.Payload) error { return t.emitFor("", "", p) }

// emitFor appends one event about a task (and run) to the thread.
func (t *turn) emitFor(taskID, runID string, p streams.Payload) error {
	ev, err := streams.NewEvent(p)
	if err != nil {
		return fmt.Errorf("agent: %s event: %w", p.EventType(), err)
	}
	ev.TaskID, ev.RunID, ev.TraceID, ev.TS = taskID, runID, t.trace, t.a.now().UTC()
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.a.log.Append(t.ctx, t.tenant, t.thread, []streams.Event{ev}); err != nil {
		return fmt.Errorf("agent: append %s to %s: %w", ev.Type, t.thread, err)
	}
	return nil
}

// reason emits the turn's reasoning summary.
func (t *turn) reason(summary string) error {
	if summary = strings.TrimSpace(summary); summary == "" {
		summary = pick(t.zh(), "Answering the message.", "回复这条消息。")
	}
	return t.emit(streams.Reasoning{Summary: summary})
}

// done ends the turn.
func (t *turn) done(outcome streams.Outcome, summary string) error {
	t.result.Outcome = outcome
	t.ended = true
	return t.emit(streams.Done{Status: outcome, Summary: summary})
}

// say emits an assistant message and ends the turn.
func (t *turn) say(outcome streams.Outcome, text, summary string) error {
	if err := t.emit(streams.Text{MessageID: vigil.NewID("msg_"), Text: text}); err != nil {
		return err
	}
	return t.done(outcome, summary)
}

// fail ends a turn that failed with err: a user's error (invalid, not
// found, conflict, forbidden, a part unavailable) becomes an error event
// the user reads and Handle succeeds; any other ends the turn as internal
// and is returned.
func (t *turn) fail(err error) error {
	code := vigil.ErrorCode(err)
	var te *tasks.TransitionError
	if errors.As(err, &te) {
		code = vigil.Conflict
	}
	user := code == vigil.Invalid || code == vigil.NotFound || code == vigil.Conflict || code == vigil.Forbidden || code == vigil.Unavailable
	if t.ended {
		return err
	}
	payload := streams.Error{Code: "internal", Message: pick(t.zh(), "Something went wrong; please try again.", "出了点问题，请稍后再试。"), Retryable: true}
	if user {
		payload = streams.Error{Code: string(code), Message: vigil.ErrorMessage(err), Retryable: code == vigil.Unavailable}
		if te != nil {
			payload.Message = te.Error()
		}
	}
	if e := t.emit(payload); e == nil {
		_ = t.done(streams.OutcomeFailed, payload.Code)
	}
	if user {
		return nil
	}
	t.a.logger.ErrorContext(t.ctx, "agent: turn failed", "thread", t.thread, "err", err)
	return err
}

// respond decides what the message is and answers it.
func (t *turn) respond() error {
	c := t.conv
	switch {
	case c.draft != "" && isConfirm(t.text):
		if ok, err := t.confirmDraft(c.draft); ok || err != nil {
			return err
		}
	case isCancel(t.text):
		return t.cancel()
	case c.pending != nil && c.pending.Action != "":
		if task, ok, err := t.chosen(c.pending); err != nil || ok {
			if err != nil {
				return err
			}
			return t.act(c.pending.Action, task, t.chooseReasoning(task))
		}
	}

	plan, reply := t.plan()
	words := t.text
	var filled []string
	if pend := c.pending; pend != nil && pend.Plan != nil && (plan.Intent == IntentChat || plan.Intent == IntentCreate && plan.Domain == pend.Plan.Domain) {
		plan, words, filled = continuePlan(*pend, plan, t.text, t.loc, t.now)
		reply = ""
	}
	switch plan.Intent {
	case IntentCreate:
		return t.create(plan, words, filled)
	case IntentChat:
		if isConfirm(t.text) {
			if err := t.reason(pick(t.zh(), "The user says yes, but no draft task is waiting for confirmation.", "用户表示同意，但没有等待确认的任务草稿。")); err != nil {
				return err
			}
			return t.say(streams.OutcomeSucceeded, pick(t.zh(), "OK. There is no draft task waiting for confirmation.", "好的。目前没有待确认的任务。"), "nothing to confirm")
		}
		return t.chat(plan, reply)
	default:
		return t.manage(plan)
	}
}

// model returns the model of this turn: the Assistant's, with a fallback
// warning hooked in when it is a Fallback.
func (t *turn) model() Model {
	return hooked(t.a.model, func(err error) {
		t.a.logger.WarnContext(t.ctx, "agent: model fell back to the offline model", "err", err)
		t.mu.Lock()
		t.replyID = vigil.NewID("msg_") // pieces streamed so far are void
		warned := t.warned
		t.warned = true
		t.mu.Unlock()
		if !warned {
			if err := t.emit(FallbackWarning(t.lang)); err != nil {
				t.a.logger.ErrorContext(t.ctx, "agent: fallback warning not appended", "err", err)
			}
		}
	})
}

// prompt returns the conversation for the model: a system message, the
// thread's recent messages and the user's message.
func (t *turn) prompt(system string) []Message {
	msgs := []Message{{Role: RoleSystem, Content: system}}
	msgs = append(msgs, t.a.window(t.conv.history)...)
	return append(msgs, Message{Role: RoleUser, Content: t.text})
}

// plan asks the model what the message wants, offering plan_task. Invalid
// arguments are shown to the model once, as the call's result, for it to
// correct; a second failure, a model error or no call at all falls back to
// PlanOffline. A model that answers with text instead of a call has chosen
// to chat: its text is the reply, unless the offline planner reads a task
// request in the message, whose plan then stands.
func (t *turn) plan() (Plan, string) {
	msgs := t.prompt(t.planPrompt())
	tools := []Tool{PlanTaskTool()}
	opts := Options{Location: t.loc, Now: t.now}
	m := t.model()
	for attempt := 0; attempt < 2; attempt++ {
		resp, err := m.Generate(t.ctx, msgs, tools, opts)
		if err != nil {
			t.a.logger.WarnContext(t.ctx, "agent: model failed to plan; planning offline", "err", err)
			break
		}
		var call *ToolCall
		for i := range resp.ToolCalls {
			if resp.ToolCalls[i].Name == PlanTaskName {
				call = &resp.ToolCalls[i]
				break
			}
		}
		if call == nil {
			if text := strings.TrimSpace(resp.Text); text != "" {
				p := PlanOffline(Request{Text: t.text, TZ: t.loc, Now: t.now})
				if p.Intent == IntentChat {
					return p, text
				}
			}
			break
		}
		p, err := ParsePlanArgs(call.Arguments)
		if err == nil {
			return p, ""
		}
		t.a.logger.InfoContext(t.ctx, "agent: model's plan_task arguments invalid; asking again", "attempt", attempt+1, "err", err)
		msgs = append(msgs, resp.Message())
		for _, c := range resp.ToolCalls {
			content := "Not run: only plan_task is available here."
			if c.ID == call.ID {
				content = "Invalid arguments: " + err.Error() + ". Call plan_task again with corrected arguments."
			}
			msgs = append(msgs, ToolResult(c, content))
		}
	}
	return PlanOffline(Request{Text: t.text, TZ: t.loc, Now: t.now}), ""
}

// planPrompt is the system message of the planning call. The offline
// model ignores it; an LLM learns from it the date, the zone and the
// user's home city.
func (t *turn) planPrompt() string {
	var b strings.Builder
	b.WriteString("You are Vigil, an assistant that sets up and manages the user's scheduled tasks: " +
		"periodic deliveries (weather, news, prices), one-shot reminders, monitors that alert when a condition holds, " +
		"and long-running reports. ")
	fmt.Fprintf(&b, "It is now %s (%s, time zone %s). ", t.now.Format("Monday 2006-01-02 15:04"), t.now.Format("-07:00"), t.loc)
	b.WriteString("For the user's latest message, call plan_task exactly once with what it asks for, read in the light of the conversation: " +
		"when the message answers a question you asked, plan the task being discussed with the answer merged in. " +
		"Resolve times in the user's time zone. Give only the slots the user stated; list the required ones they did not give in missing, " +
		"and write the question in the user's language. Managing existing tasks (list, pause, resume, delete, run) is an intent of its own; " +
		"anything else is chat.")
	if c := t.profile.HomeCity; c != "" {
		fmt.Fprintf(&b, " The user's home city is %s: use it when they speak of their own city.", c)
	}
	return b.String()
}

// chatPrompt is the system message of a chat answer.
func (t *turn) chatPrompt() string {
	return fmt.Sprintf("You are Vigil, an assistant that sets up and manages scheduled tasks: reminders, weather, news and price alerts, "+
		"site monitors and reports. It is now %s (time zone %s). Answer the user briefly, in their language; "+
		"when they seem to want a task, say what you can set up for them.", t.now.Format("Monday 2006-01-02 15:04"), t.loc)
}

// chat answers a message that asks for no task, streaming the model's
// text as text_delta events and ending with the whole text.
func (t *turn) chat(plan Plan, reply string) error {
	if err := t.reason(plan.Reasoning); err != nil {
		return err
	}
	t.mu.Lock()
	t.replyID = vigil.NewID("msg_")
	t.mu.Unlock()
	if reply == "" {
		var deltaErr error // guarded by t.mu: deltas may come from another goroutine
		opts := Options{Location: t.loc, Now: t.now, OnDelta: func(d string) {
			t.mu.Lock()
			id, failed := t.replyID, deltaErr != nil
			t.mu.Unlock()
			if d == "" || failed {
				return
			}
			if err := t.emit(streams.TextDelta{MessageID: id, Delta: d}); err != nil {
				t.mu.Lock()
				deltaErr = err
				t.mu.Unlock()
			}
		}}
		resp, err := t.model().Generate(t.ctx, t.prompt(t.chatPrompt()), nil, opts)
		t.mu.Lock()
		failed := deltaErr
		t.mu.Unlock()
		if failed != nil {
			return failed
		}
		if err != nil {
			t.a.logger.WarnContext(t.ctx, "agent: model failed to answer; answering offline", "err", err)
			resp = Response{Text: chatReply(t.text)}
		}
		reply = resp.Text
	}
	if strings.TrimSpace(reply) == "" {
		reply = chatReply(t.text)
	}
	t.mu.Lock()
	id := t.replyID
	t.mu.Unlock()
	if err := t.emit(streams.Text{MessageID: id, Text: reply}); err != nil {
		return err
	}
	return t.done(streams.OutcomeSucceeded, "answered")
}

// create asks for what a create plan lacks, or makes its draft task and
// shows the card.
func (t *turn) create(plan Plan, words string, filled []string) error {
	zh := plan.Language == "zh"
	t.lang = plan.Language
	var notes []string
	if len(filled) > 0 {
		notes = append(notes, pick(zh, "From the user's answer: ", "从用户的回答中补全：")+slotList(filled, zh)+pick(zh, ".", "。"))
	}
	plan, fromProfile := fillFromProfile(plan, words, t.profile.HomeCity)
	if fromProfile {
		notes = append(notes, pick(zh, fmt.Sprintf("City taken from the user's profile: %s.", t.profile.HomeCity),
			fmt.Sprintf("城市取自用户资料：%s。", t.profile.HomeCity)))
	}
	summary := reasonCreate(plan, t.loc, zh)
	if len(notes) > 0 {
		summary += pick(zh, " ", "") + strings.Join(notes, pick(zh, " ", ""))
	}
	if err := t.reason(summary); err != nil {
		return err
	}
	if len(plan.Missing) > 0 {
		q := plan.Question
		if q == "" {
			q = question(plan.Missing, plan.Domain, zh)
		}
		cl := streams.Clarification{Question: q, Missing: plan.Missing, Schema: slotsClarification(plan, words, t.loc)}
		if err := t.emit(cl); err != nil {
			return err
		}
		return t.done(streams.OutcomeWaitingInput, "waiting for "+strings.Join(plan.Missing, ", "))
	}
	if t.a.tasks == nil {
		return vigil.Errorf(vigil.Unavailable, "task management is not available on this server")
	}
	spec, err := TaskSpec(plan, t.loc, words)
	if err != nil {
		return err
	}
	task, err := t.a.tasks.Create(t.ctx, spec)
	if err != nil {
		return err
	}
	t.result.TaskID = task.ID
	body, err := json.Marshal(task.Redacted())
	if err != nil {
		return fmt.Errorf("agent: encode task %s: %w", task.ID, err)
	}
	card := streams.TaskCard{Task: body, Actions: []streams.CardAction{streams.ActionConfirm, streams.ActionEdit, streams.ActionCancel}}
	if err := t.emitFor(task.ID, "", card); err != nil {
		return err
	}
	return t.done(streams.OutcomeWaitingInput, "draft "+task.ID+" awaits confirmation")
}

// slotList names slots for reasoning: "city, time" or "城市、时间".
func slotList(slots []string, zh bool) string {
	names := make([]string, len(slots))
	for i, s := range slots {
		names[i] = s
		if n, ok := zhSlotNames[s]; ok && zh {
			names[i] = n
		}
	}
	return strings.Join(names, pick(zh, ", ", "、"))
}

// confirmDraft activates the thread's draft. It reports false, doing
// nothing, when the task is no longer a draft (confirmed through the API,
// say), so that the message is planned as any other.
func (t *turn) confirmDraft(id string) (bool, error) {
	if t.a.tasks == nil {
		return false, nil
	}
	draft, err := t.a.tasks.Get(t.ctx, id)
	if vigil.ErrorCode(err) == vigil.NotFound || err == nil && (draft.Status != tasks.StatusDraft || !t.owns(draft)) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	zh := t.zh()
	if err := t.reason(pick(zh, fmt.Sprintf("The user confirms the draft task “%s”: activate it.", draft.Title),
		fmt.Sprintf("用户确认了草稿任务“%s”，将其激活。", draft.Title))); err != nil {
		return true, err
	}
	task, err := t.a.tasks.Confirm(t.ctx, id)
	if err != nil {
		return true, err
	}
	t.result.TaskID = task.ID
	if err := t.emitFor(task.ID, "", streams.TaskStatus{TaskID: task.ID, From: string(tasks.StatusDraft), To: string(task.Status)}); err != nil {
		return true, err
	}
	msg := pick(zh, fmt.Sprintf("Done: “%s” is on.", task.Title), fmt.Sprintf("已开启“%s”。", task.Title))
	if task.NextFire != nil {
		msg += pick(zh, " Next run: "+t.when(task, *task.NextFire)+".", "下次运行："+t.when(task, *task.NextFire)+"。")
	}
	if task.Kind == tasks.KindLongRunning && !task.Trigger.HasSchedule() {
		run, err := t.a.tasks.RunNow(t.ctx, task.ID)
		if err != nil {
			return true, err
		}
		if err := t.emitFor(task.ID, run.ID, streams.TaskStatus{TaskID: task.ID, RunID: run.ID, To: string(run.Status)}); err != nil {
			return true, err
		}
		msg += pick(zh, " It has started.", "已开始运行。")
	}
	return true, t.say(streams.OutcomeSucceeded, msg, "confirmed "+task.ID)
}

// owns reports whether the task is the principal's user's own: the
// assistant acts only on those, whoever else shares the thread.
func (t *turn) owns(task tasks.Task) bool {
	p, _ := vigil.PrincipalFrom(t.ctx)
	return task.Owner == p.User
}

// when formats a time of task for the user, in the task's zone (else the
// user's).
func (t *turn) when(task tasks.Task, at time.Time) string {
	loc := t.loc
	if task.Trigger.TZ != "" {
		if l, err := time.LoadLocation(task.Trigger.TZ); err == nil {
			loc = l
		}
	}
	return describeSchedule(&Schedule{At: &at}, loc, t.zh())
}

// cancel drops what the assistant proposed: the pending draft is archived,
// a pending question forgotten.
func (t *turn) cancel() error {
	zh := t.zh()
	if id := t.conv.draft; id != "" && t.a.tasks != nil {
		draft, err := t.a.tasks.Get(t.ctx, id)
		switch {
		case err == nil && draft.Status == tasks.StatusDraft && t.owns(draft):
			if err := t.reason(pick(zh, fmt.Sprintf("The user cancels the draft task “%s”: archive it.", draft.Title),
				fmt.Sprintf("用户取消了草稿任务“%s”，将其归档。", draft.Title))); err != nil {
				return err
			}
			task, err := t.a.tasks.Archive(t.ctx, id)
			if err != nil {
				return err
			}
			t.result.TaskID = id
			if err := t.emitFor(id, "", streams.TaskStatus{TaskID: id, From: string(tasks.StatusDraft), To: string(task.Status)}); err != nil {
				return err
			}
			return t.say(streams.OutcomeSucceeded, pick(zh, fmt.Sprintf("Cancelled: “%s” will not run.", draft.Title),
				fmt.Sprintf("已取消“%s”。", draft.Title)), "cancelled "+id)
		case err != nil && vigil.ErrorCode(err) != vigil.NotFound:
			return err
		}
	}
	if t.conv.pending != nil {
		if err := t.reason(pick(zh, "The user drops the request under discussion.", "用户放弃了正在商量的请求。")); err != nil {
			return err
		}
		return t.say(streams.OutcomeSucceeded, pick(zh, "OK, cancelled.", "好的，已取消。"), "cancelled")
	}
	if err := t.reason(pick(zh, "The user says cancel, but nothing is pending.", "用户要求取消，但没有待处理的内容。")); err != nil {
		return err
	}
	return t.say(streams.OutcomeSucceeded, pick(zh, "There is nothing to cancel.", "没有需要取消的内容。"), "nothing to cancel")
}

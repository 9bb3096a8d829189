package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/agent"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// asstClock is the moment every assistant test speaks at.
var asstClock = time.Date(2026, 11, 22, 10, 0, 0, 0, asstLoc("Asia/Shanghai"))

// asst is an Assistant over a real bolt file, with its task manager and
// one conversation thread.
type asst struct {
	path   string
	db     *bolt.DB
	tasks  *tasks.Manager
	mem    *memory.Service
	a      *agent.Assistant
	model  agent.Model
	ctx    context.Context
	thread string
}

func newAsst(t *testing.T, model agent.Model) *asst {
	t.Helper()
	h := &asst{path: filepath.Join(t.TempDir(), "vigil.db"), model: model}
	h.ctx = vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: vigil.DefaultTenant, User: "ada"})
	h.open(t)
	h.thread = vigil.NewID("th_")
	if err := h.db.CreateThread(h.ctx, streams.Thread{ID: h.thread, Tenant: vigil.DefaultTenant, CreatedAt: asstClock}); err != nil {
		t.Fatal(err)
	}
	return h
}

// open opens the bolt file and builds the parts over it.
func (h *asst) open(t *testing.T) {
	t.Helper()
	db, err := bolt.Open(h.path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := func() time.Time { return asstClock }
	h.db = db
	h.tasks = tasks.NewManager(tasks.Options{Store: db, Log: db, Now: now})
	if h.mem, err = memory.New(db, memory.Options{Key: make([]byte, 32), Now: now}); err != nil {
		t.Fatal(err)
	}
	h.a = agent.NewAssistant(agent.AssistantOptions{Model: h.model, Tasks: h.tasks, Log: db, Memory: h.mem, Now: now, Logger: slog.New(slog.DiscardHandler)})
}

// restart closes the store and opens it again with a new Assistant: what
// the conversation knows must come back from the file.
func (h *asst) restart(t *testing.T) {
	t.Helper()
	if err := h.db.Close(); err != nil {
		t.Fatal(err)
	}
	h.open(t)
}

// say sends a message and returns the events of its turn.
func (h *asst) say(t *testing.T, text, tz string) (agent.Turn, []streams.Event) {
	t.Helper()
	var loc *time.Location
	if tz != "" {
		loc = asstLoc(tz)
	}
	before := h.events(t)
	trace := vigil.NewTraceID()
	turn, err := h.a.Handle(vigil.WithTraceID(h.ctx, trace), h.thread, agent.Input{Text: text, Location: loc})
	if err != nil {
		t.Fatalf("Handle(%q): %v", text, err)
	}
	evs := h.events(t)[len(before):]
	for _, ev := range evs {
		if ev.TraceID != trace {
			t.Errorf("%q: %s event has trace id %q, want %q", text, ev.Type, ev.TraceID, trace)
		}
	}
	if len(evs) == 0 || evs[len(evs)-1].Type != streams.TypeDone {
		t.Fatalf("%q: turn does not end with done: %v", text, types(evs))
	}
	return turn, evs
}

func (h *asst) events(t *testing.T) []streams.Event {
	t.Helper()
	page, err := streams.ReadAll(h.ctx, h.db, vigil.DefaultTenant, h.thread, streams.ID{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	return page.Events
}

func types(evs []streams.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type
	}
	return out
}

func wantTypes(t *testing.T, what string, evs []streams.Event, want ...string) {
	t.Helper()
	if got := types(evs); !slices.Equal(got, want) {
		t.Fatalf("%s: events %v, want %v", what, got, want)
	}
}

// find returns the payload of the turn's first event of T's type.
func find[T streams.Payload](t *testing.T, evs []streams.Event) T {
	t.Helper()
	var zero T
	for _, ev := range evs {
		if ev.Type == zero.EventType() {
			p, err := streams.Decode[T](ev)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
	}
	t.Fatalf("no %s event in %v", zero.EventType(), types(evs))
	return zero
}

func cardTask(t *testing.T, evs []streams.Event) tasks.Task {
	t.Helper()
	card := find[streams.TaskCard](t, evs)
	if !slices.Equal(card.Actions, []streams.CardAction{streams.ActionConfirm, streams.ActionEdit, streams.ActionCancel}) {
		t.Errorf("card actions %v", card.Actions)
	}
	var task tasks.Task
	if err := json.Unmarshal(card.Task, &task); err != nil {
		t.Fatal(err)
	}
	return task
}

// The weather conversation of the issue, with the store closed and opened
// again between every two turns: the pending plan and the draft come back
// from the thread.
func TestAssistantWeatherConversation(t *testing.T) {
	h := newAsst(t, nil)

	_, evs := h.say(t, "每天推送天气", "Asia/Shanghai")
	wantTypes(t, "request", evs, "text", "status", "reasoning", "clarification", "done")
	user := find[streams.Text](t, evs)
	if !agent.IsUserMessage(user.MessageID) || user.Text != "每天推送天气" {
		t.Errorf("user message recorded as %+v", user)
	}
	cl := find[streams.Clarification](t, evs)
	if !slices.Equal(cl.Missing, []string{"city", "time"}) || !strings.Contains(cl.Question, "城市") {
		t.Errorf("clarification %+v", cl)
	}
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
		Pending    json.RawMessage            `json:"x-vigil-pending"`
	}
	if err := json.Unmarshal(cl.Schema, &schema); err != nil || schema.Properties["city"] == nil || schema.Properties["time"] == nil ||
		!slices.Equal(schema.Required, []string{"city", "time"}) || schema.Pending == nil {
		t.Errorf("clarification schema %s (%v)", cl.Schema, err)
	}
	if r := find[streams.Reasoning](t, evs); !strings.Contains(r.Summary, "天气") || !strings.Contains(r.Summary, "缺少：城市、时间") {
		t.Errorf("reasoning %q", r.Summary)
	}
	if d := find[streams.Done](t, evs); d.Status != streams.OutcomeWaitingInput {
		t.Errorf("done %+v", d)
	}

	h.restart(t)
	turn, evs := h.say(t, "北京, 早上8点", "") // the zone comes from the question
	wantTypes(t, "answer", evs, "text", "status", "reasoning", "task_card", "done")
	draft := cardTask(t, evs)
	if draft.ID != turn.TaskID || draft.Status != tasks.StatusDraft || draft.Kind != tasks.KindPeriodic ||
		draft.Trigger.Cron != "0 8 * * *" || draft.Trigger.TZ != "Asia/Shanghai" || draft.Slots["city"] != "北京" ||
		draft.Title != "每天 08:00 北京天气" {
		t.Errorf("draft %+v", draft)
	}
	if r := find[streams.Reasoning](t, evs); !strings.Contains(r.Summary, "从用户的回答中补全：城市、时间") {
		t.Errorf("reasoning %q", r.Summary)
	}

	h.restart(t)
	_, evs = h.say(t, "确认", "")
	wantTypes(t, "confirm", evs, "text", "status", "reasoning", "task_status", "text", "done")
	if st := find[streams.TaskStatus](t, evs); st.TaskID != draft.ID || st.From != "draft" || st.To != "active" {
		t.Errorf("task_status %+v", st)
	}
	if reply := evs[4]; !strings.Contains(string(reply.Data), "已开启") || !strings.Contains(string(reply.Data), "11月23日 08:00") {
		t.Errorf("reply %s", reply.Data)
	}
	got, err := h.tasks.Get(h.ctx, draft.ID)
	if err != nil || got.Status != tasks.StatusActive || got.NextFire == nil || !got.NextFire.Equal(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("task after confirm: %+v, %v", got, err)
	}

	// Saying yes again finds nothing to confirm.
	_, evs = h.say(t, "好的", "")
	if txt := evs[len(evs)-2]; txt.Type != "text" || !strings.Contains(string(txt.Data), "没有待确认") {
		t.Errorf("second yes: %v %s", types(evs), txt.Data)
	}
}

func TestAssistantReminderConversation(t *testing.T) {
	h := newAsst(t, nil)
	_, evs := h.say(t, "remind me to call mom", "America/New_York")
	cl := find[streams.Clarification](t, evs)
	if !slices.Equal(cl.Missing, []string{"time"}) || !strings.HasPrefix(cl.Question, "When") {
		t.Fatalf("clarification %+v", cl)
	}
	_, evs = h.say(t, "tomorrow at 6pm", "America/New_York")
	wantTypes(t, "answer", evs, "text", "status", "reasoning", "task_card", "done")
	draft := cardTask(t, evs)
	at := time.Date(2026, 11, 22, 18, 0, 0, 0, asstLoc("America/New_York")) // tomorrow in New York: it is 21:00 on the 21st there
	if draft.Kind != tasks.KindOneShot || !draft.Trigger.At.Equal(at) || draft.Slots["message"] != "call mom" ||
		draft.Title != "Reminder: call mom (Sun 22 Nov 18:00)" || !strings.Contains(draft.Instruction, "remind me to call mom tomorrow at 6pm") {
		t.Errorf("draft %+v", draft)
	}
	// "cancel" archives the draft.
	_, evs = h.say(t, "cancel", "")
	wantTypes(t, "cancel", evs, "text", "status", "reasoning", "task_status", "text", "done")
	if got, _ := h.tasks.Get(h.ctx, draft.ID); got.Status != tasks.StatusArchived {
		t.Errorf("cancelled draft is %s", got.Status)
	}
}

func TestAssistantChat(t *testing.T) {
	h := newAsst(t, nil)
	_, evs := h.say(t, "你好", "")
	wantTypes(t, "chat", evs, "text", "status", "reasoning", "text_delta", "text", "done")
	delta, reply := find[streams.TextDelta](t, evs), evs[4]
	var txt streams.Text
	_ = json.Unmarshal(reply.Data, &txt)
	if agent.IsUserMessage(txt.MessageID) || txt.MessageID != delta.MessageID || !strings.HasPrefix(txt.Text, "你好") {
		t.Errorf("reply %+v after delta %+v", txt, delta)
	}
	if d := find[streams.Done](t, evs); d.Status != streams.OutcomeSucceeded {
		t.Errorf("done %+v", d)
	}
}

func TestAssistantProfileCity(t *testing.T) {
	h := newAsst(t, nil)
	if _, err := h.mem.PutProfile(h.ctx, memory.Profile{HomeCity: "杭州", TimeZone: "Asia/Shanghai"}); err != nil {
		t.Fatal(err)
	}
	// The profile's zone wins over the request's.
	_, evs := h.say(t, "每天早上7点推送我所在城市的天气", "America/New_York")
	draft := cardTask(t, evs)
	if draft.Slots["city"] != "杭州" || draft.Trigger.Cron != "0 7 * * *" || draft.Trigger.TZ != "Asia/Shanghai" {
		t.Errorf("draft %+v", draft)
	}
	if r := find[streams.Reasoning](t, evs); !strings.Contains(r.Summary, "城市取自用户资料：杭州") {
		t.Errorf("reasoning %q", r.Summary)
	}
}

// create makes and confirms a task through the conversation.
func (h *asst) create(t *testing.T, text string) tasks.Task {
	t.Helper()
	_, evs := h.say(t, text, "Asia/Shanghai")
	draft := cardTask(t, evs)
	h.say(t, "确认", "")
	return draft
}

func TestAssistantManage(t *testing.T) {
	h := newAsst(t, nil)
	beijing := h.create(t, "每天早上8点推送北京天气")
	shanghai := h.create(t, "每天早上7点推送上海天气")
	rent := h.create(t, "每月1号早上9点提醒我交房租")

	status := func(id string) tasks.Status {
		t.Helper()
		got, err := h.tasks.Get(h.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status
	}

	// The best match is paused.
	turn, evs := h.say(t, "暂停北京天气提醒", "")
	wantTypes(t, "pause", evs, "text", "status", "reasoning", "task_status", "text", "done")
	if turn.TaskID != beijing.ID || status(beijing.ID) != tasks.StatusPaused || status(shanghai.ID) != tasks.StatusActive {
		t.Fatalf("paused %s: Beijing %s, Shanghai %s", turn.TaskID, status(beijing.ID), status(shanghai.ID))
	}

	// Two weather tasks match "天气": ask which, then act on the answer.
	h.say(t, "恢复北京天气", "")
	_, evs = h.say(t, "暂停天气", "")
	wantTypes(t, "ambiguous", evs, "text", "status", "reasoning", "clarification", "done")
	cl := find[streams.Clarification](t, evs)
	if !strings.Contains(cl.Question, beijing.Title) || !strings.Contains(cl.Question, shanghai.Title) || strings.Contains(cl.Question, rent.Title) {
		t.Errorf("question %q", cl.Question)
	}
	turn, _ = h.say(t, "上海的那个", "")
	if turn.TaskID != shanghai.ID || status(shanghai.ID) != tasks.StatusPaused || status(beijing.ID) != tasks.StatusActive {
		t.Fatalf("chose %s: Beijing %s, Shanghai %s", turn.TaskID, status(beijing.ID), status(shanghai.ID))
	}

	// A task already paused cannot be paused; none matching is said so.
	_, evs = h.say(t, "暂停上海天气", "")
	if txt := evs[len(evs)-2]; !strings.Contains(string(txt.Data), "已暂停") {
		t.Errorf("pause a paused task: %s", txt.Data)
	}
	_, evs = h.say(t, "pause the bitcoin alert", "")
	if txt := evs[len(evs)-2]; !strings.Contains(string(txt.Data), "no task") {
		t.Errorf("pause what does not exist: %s", txt.Data)
	}

	// Run, list and delete.
	turn, evs = h.say(t, "立即执行交房租提醒", "")
	if st := find[streams.TaskStatus](t, evs); turn.TaskID != rent.ID || st.RunID == "" || st.To != "queued" {
		t.Errorf("run now: %+v", st)
	}
	_, evs = h.say(t, "列出我的任务", "")
	if txt := evs[len(evs)-2]; !strings.Contains(string(txt.Data), "你有 3 个任务") || !strings.Contains(string(txt.Data), "已暂停") {
		t.Errorf("list: %s", txt.Data)
	}
	turn, _ = h.say(t, "删除交房租的提醒", "")
	if _, err := h.tasks.Get(h.ctx, rent.ID); turn.TaskID != rent.ID || vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("delete: turn %+v, get %v", turn, err)
	}
}

// modelFunc is a Model whose behaviour is a function.
type modelFunc func(ctx context.Context, msgs []agent.Message, tools []agent.Tool, opts agent.Options) (agent.Response, error)

func (f modelFunc) Generate(ctx context.Context, msgs []agent.Message, tools []agent.Tool, opts agent.Options) (agent.Response, error) {
	return f(ctx, msgs, tools, opts)
}

// A model whose plan_task arguments do not validate is shown the error
// once and its corrected call is used.
func TestAssistantReasksInvalidPlan(t *testing.T) {
	var calls [][]agent.Message
	model := modelFunc(func(_ context.Context, msgs []agent.Message, tools []agent.Tool, _ agent.Options) (agent.Response, error) {
		calls = append(calls, slices.Clone(msgs))
		args := `{"intent":"create_task","kind":"one_shot","domain":"reminder","schedule":{"at":"tomorrow 6pm"},"slots":{"message":"call mom"},"language":"en"}`
		if len(calls) > 1 {
			args = `{"intent":"create_task","kind":"one_shot","domain":"reminder","schedule":{"at":"2026-11-23T18:00:00+08:00"},"slots":{"message":"call mom"},"language":"en"}`
		}
		return agent.Response{ToolCalls: []agent.ToolCall{{ID: "c" + string(rune('0'+len(calls))), Name: agent.PlanTaskName, Arguments: json.RawMessage(args)}}}, nil
	})
	h := newAsst(t, model)
	_, evs := h.say(t, "remind me to call mom tomorrow evening", "Asia/Shanghai")
	draft := cardTask(t, evs)
	if len(calls) != 2 || !draft.Trigger.At.Equal(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("%d calls, draft at %v", len(calls), draft.Trigger.At)
	}
	last := calls[1][len(calls[1])-1]
	if last.Role != agent.RoleTool || !strings.Contains(last.Content, "schedule.at") {
		t.Errorf("the model was not shown its error: %+v", last)
	}
	if sys := calls[0][0]; sys.Role != agent.RoleSystem || !strings.Contains(sys.Content, "2026-11-22") {
		t.Errorf("system prompt %q", sys.Content)
	}
}

// A Fallback whose primary fails puts a warning on the thread and the
// offline model answers.
func TestAssistantFallbackWarning(t *testing.T) {
	failing := modelFunc(func(context.Context, []agent.Message, []agent.Tool, agent.Options) (agent.Response, error) {
		return agent.Response{}, errors.New("503 from the LLM")
	})
	h := newAsst(t, &agent.Fallback{Primary: failing, Secondary: agent.Offline{}})
	_, evs := h.say(t, "每天早上8点推送北京天气", "Asia/Shanghai")
	wantTypes(t, "fallback", evs, "text", "status", "warning", "reasoning", "task_card", "done")
	if w := find[streams.Warning](t, evs); w.Code != agent.FallbackWarningCode {
		t.Errorf("warning %+v", w)
	}
}

func TestAssistantRejects(t *testing.T) {
	h := newAsst(t, nil)
	for _, c := range []struct {
		thread, text string
		code         vigil.Code
	}{
		{h.thread, "  ", vigil.Invalid},
		{h.thread, strings.Repeat("字", agent.MaxMessage+1), vigil.Invalid},
		{"th_missing", "hi", vigil.NotFound},
		{"bad id!", "hi", vigil.NotFound},
	} {
		if _, err := h.a.Handle(h.ctx, c.thread, agent.Input{Text: c.text}); vigil.ErrorCode(err) != c.code {
			t.Errorf("Handle(%q, %.10q): %v, want %s", c.thread, c.text, err, c.code)
		}
	}
	if evs := h.events(t); len(evs) != 0 {
		t.Errorf("rejected messages left events: %v", types(evs))
	}
}

func asstLoc(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// A plan the task manager refuses (a reminder in the past) ends the turn
// with an error event the user reads; Handle itself succeeds.
func TestAssistantRefusedTask(t *testing.T) {
	model := modelFunc(func(context.Context, []agent.Message, []agent.Tool, agent.Options) (agent.Response, error) {
		args := `{"intent":"create_task","kind":"one_shot","domain":"reminder","schedule":{"at":"2026-11-21T08:00:00+08:00"},"slots":{"message":"call mom"},"language":"en"}`
		return agent.Response{ToolCalls: []agent.ToolCall{{ID: "c1", Name: agent.PlanTaskName, Arguments: json.RawMessage(args)}}}, nil
	})
	h := newAsst(t, model)
	turn, evs := h.say(t, "remind me to call mom yesterday at 8", "Asia/Shanghai")
	wantTypes(t, "refused", evs, "text", "status", "reasoning", "error", "done")
	if e := find[streams.Error](t, evs); e.Code != "invalid" || !strings.Contains(e.Message, "in the past") {
		t.Errorf("error %+v", e)
	}
	if turn.Outcome != streams.OutcomeFailed {
		t.Errorf("outcome %s", turn.Outcome)
	}
}

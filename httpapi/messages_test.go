package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/agent"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/httpapi"
	"github.com/vigilhq/vigil/store"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// serveAssistant is an API server with the main agent, on the offline
// model, over a real bolt file.
func serveAssistant(t *testing.T) *instance {
	t.Helper()
	b := open(t, storeConfigs(t, 0)[config.DriverBolt])
	ts, err := store.Tasks(b)
	if err != nil {
		t.Fatal(err)
	}
	m := tasks.NewManager(tasks.Options{Store: ts, Log: b})
	a := agent.NewAssistant(agent.AssistantOptions{Tasks: m, Log: b})
	return serve(t, b, httpapi.Options{Tasks: m, Assistant: a})
}

// message posts a user's message and checks the 202 answer. Every event
// of the turn must carry the request's trace id.
func message(t *testing.T, base, thread, text, tz string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text, "tz": tz})
	trace := vigil.NewTraceID()
	var out struct {
		ThreadID  string `json:"thread_id"`
		MessageID string `json:"message_id"`
	}
	resp := do(t, "POST", base+"/v1/threads/"+thread+"/messages", string(body), map[string]string{"X-Request-ID": trace}, &out)
	if resp.StatusCode != http.StatusAccepted || out.ThreadID != thread || !agent.IsUserMessage(out.MessageID) {
		t.Fatalf("POST message %q: %s %+v", text, resp.Status, out)
	}
	for _, ev := range replayAll(t, base, thread) {
		if ev.TraceID == trace {
			continue
		}
		if tx, err := streams.Decode[streams.Text](ev); err == nil && tx.MessageID == out.MessageID {
			t.Fatalf("the message's event has trace id %q, want %q", ev.TraceID, trace)
		}
	}
	return out.MessageID
}

func replayAll(t *testing.T, base, thread string) []streams.Event {
	t.Helper()
	var body struct {
		Events []streams.Event `json:"events"`
	}
	if resp := do(t, "GET", base+"/v1/threads/"+thread+"/replay", "", nil, &body); resp.StatusCode != 200 {
		t.Fatalf("replay: %s", resp.Status)
	}
	return body.Events
}

// lastTurn returns the events of the thread's last turn, from the user's
// message on.
func lastTurn(t *testing.T, base, thread string) []streams.Event {
	t.Helper()
	evs := replayAll(t, base, thread)
	for i := len(evs) - 1; i >= 0; i-- {
		if tx, err := streams.Decode[streams.Text](evs[i]); err == nil && agent.IsUserMessage(tx.MessageID) {
			return evs[i:]
		}
	}
	t.Fatal("no user message on the thread")
	return nil
}

func eventTypes(evs []streams.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type
	}
	return out
}

func payload[T streams.Payload](t *testing.T, evs []streams.Event) T {
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
	t.Fatalf("no %s event among %v", zero.EventType(), eventTypes(evs))
	return zero
}

// The conversation of the agents issue, "What it must show" 2, over real
// HTTP with the bolt store and the offline model: 每天推送天气 → a
// clarification for city and time → 北京, 早上8点 → a task card → 确认 →
// an active periodic task at 0 8 * * * in Asia/Shanghai, and the replayed
// thread shows the whole sequence.
func TestMessagesWeatherConversation(t *testing.T) {
	srv := serveAssistant(t)
	thread := createThread(t, srv.URL)

	message(t, srv.URL, thread, "每天推送天气", "Asia/Shanghai")
	cl := payload[streams.Clarification](t, lastTurn(t, srv.URL, thread))
	if !slices.Equal(cl.Missing, []string{"city", "time"}) || !strings.Contains(cl.Question, "城市") || !strings.Contains(cl.Question, "时间") {
		t.Fatalf("clarification %+v", cl)
	}

	message(t, srv.URL, thread, "北京, 早上8点", "Asia/Shanghai")
	card := payload[streams.TaskCard](t, lastTurn(t, srv.URL, thread))
	var draft tasks.Task
	if err := json.Unmarshal(card.Task, &draft); err != nil || draft.Status != tasks.StatusDraft {
		t.Fatalf("card %s: %v", card.Task, err)
	}

	message(t, srv.URL, thread, "确认", "Asia/Shanghai")
	var task tasks.Task
	if resp := do(t, "GET", srv.URL+"/v1/tasks/"+draft.ID, "", nil, &task); resp.StatusCode != 200 {
		t.Fatalf("get task: %s", resp.Status)
	}
	if task.Status != tasks.StatusActive || task.Kind != tasks.KindPeriodic || task.Trigger.Cron != "0 8 * * *" ||
		task.Trigger.TZ != "Asia/Shanghai" || task.Slots["city"] != "北京" || task.NextFire == nil {
		t.Fatalf("task %+v", task)
	}
	if h, m, _ := task.NextFire.In(mustZone(t, "Asia/Shanghai")).Clock(); h != 8 || m != 0 {
		t.Errorf("next fire %v, want 08:00 in Shanghai", task.NextFire)
	}

	want := []string{
		"text", "status", "reasoning", "clarification", "done",
		"text", "status", "reasoning", "task_card", "done",
		"text", "status", "reasoning", "task_status", "text", "done",
	}
	evs := replayAll(t, srv.URL, thread)
	if got := eventTypes(evs); !slices.Equal(got, want) {
		t.Fatalf("replayed thread:\n got %v\nwant %v", got, want)
	}
	for i, text := range map[int]string{0: "每天推送天气", 5: "北京, 早上8点", 10: "确认"} {
		if tx, _ := streams.Decode[streams.Text](evs[i]); tx.Text != text || !agent.IsUserMessage(tx.MessageID) {
			t.Errorf("event %d is %+v, want the user's %q", i, tx, text)
		}
	}
	if st, _ := streams.Decode[streams.TaskStatus](evs[13]); st.TaskID != task.ID || st.From != "draft" || st.To != "active" || evs[13].TaskID != task.ID {
		t.Errorf("task_status %+v", st)
	}
}

func TestMessagesEnglishReminderAndRESTConfirm(t *testing.T) {
	srv := serveAssistant(t)
	thread := createThread(t, srv.URL)
	message(t, srv.URL, thread, "remind me to call mom", "America/New_York")
	if cl := payload[streams.Clarification](t, lastTurn(t, srv.URL, thread)); !slices.Equal(cl.Missing, []string{"time"}) {
		t.Fatalf("clarification %+v", cl)
	}
	message(t, srv.URL, thread, "tomorrow at 6pm", "America/New_York")
	var draft tasks.Task
	_ = json.Unmarshal(payload[streams.TaskCard](t, lastTurn(t, srv.URL, thread)).Task, &draft)
	if draft.Kind != tasks.KindOneShot || draft.Slots["message"] != "call mom" || draft.Trigger.At.IsZero() {
		t.Fatalf("draft %+v", draft)
	}
	if h := draft.Trigger.At.In(mustZone(t, "America/New_York")).Hour(); h != 18 {
		t.Errorf("reminder at %v, want 18:00 in New York", draft.Trigger.At)
	}
	// The card's confirm action goes through the task API; a "yes" after
	// it finds nothing left to confirm.
	var got tasks.Task
	if resp := do(t, "POST", srv.URL+"/v1/tasks/"+draft.ID+"/confirm", "", nil, &got); resp.StatusCode != 200 || got.Status != tasks.StatusActive {
		t.Fatalf("confirm: %s %+v", resp.Status, got)
	}
	message(t, srv.URL, thread, "yes", "America/New_York")
	if tx := payload[streams.Text](t, lastTurn(t, srv.URL, thread)[1:]); !strings.Contains(tx.Text, "no draft") {
		t.Errorf("yes after confirm: %q", tx.Text)
	}
}

func TestMessagesChatAndManage(t *testing.T) {
	srv := serveAssistant(t)
	thread := createThread(t, srv.URL)

	message(t, srv.URL, thread, "你好", "")
	turn := lastTurn(t, srv.URL, thread)
	if got := eventTypes(turn); !slices.Equal(got, []string{"text", "status", "reasoning", "text_delta", "text", "done"}) {
		t.Fatalf("chat turn %v", got)
	}
	if tx := payload[streams.Text](t, turn[1:]); !strings.HasPrefix(tx.Text, "你好") {
		t.Errorf("chat reply %q", tx.Text)
	}

	create := func(text string) string {
		message(t, srv.URL, thread, text, "Asia/Shanghai")
		var draft tasks.Task
		_ = json.Unmarshal(payload[streams.TaskCard](t, lastTurn(t, srv.URL, thread)).Task, &draft)
		message(t, srv.URL, thread, "确认", "Asia/Shanghai")
		return draft.ID
	}
	beijing := create("每天早上8点推送北京天气")
	shanghai := create("工作日早上7点半推送上海天气")
	status := func(id string) tasks.Status {
		var task tasks.Task
		do(t, "GET", srv.URL+"/v1/tasks/"+id, "", nil, &task)
		return task.Status
	}

	// Two tasks match: the assistant asks which, listing both.
	message(t, srv.URL, thread, "暂停天气提醒", "")
	cl := payload[streams.Clarification](t, lastTurn(t, srv.URL, thread))
	if !slices.Equal(cl.Missing, []string{"task"}) || !strings.Contains(cl.Question, "北京") || !strings.Contains(cl.Question, "上海") {
		t.Fatalf("ambiguous pause: %+v", cl)
	}
	message(t, srv.URL, thread, "第二个", "")
	if status(shanghai) != tasks.StatusPaused || status(beijing) != tasks.StatusActive {
		t.Fatalf("after choosing: Beijing %s, Shanghai %s", status(beijing), status(shanghai))
	}
	// One matches best: it is paused at once.
	message(t, srv.URL, thread, "暂停北京天气", "")
	if st := payload[streams.TaskStatus](t, lastTurn(t, srv.URL, thread)); st.TaskID != beijing || st.To != "paused" {
		t.Fatalf("pause by best match: %+v", st)
	}
}

func TestMessagesRejects(t *testing.T) {
	srv := serveAssistant(t)
	thread := createThread(t, srv.URL)
	for _, c := range []struct {
		path, body string
		status     int
		field      string
	}{
		{"/v1/threads/" + thread + "/messages", `{"text":""}`, 400, "text"},
		{"/v1/threads/" + thread + "/messages", `{"text":"hi","tz":"Mars/Olympus"}`, 400, "tz"},
		{"/v1/threads/" + thread + "/messages", `{"text":"hi","extra":1}`, 400, ""},
		{"/v1/threads/th_nope/messages", `{"text":"hi"}`, 404, ""},
	} {
		var e apiError
		if resp := do(t, "POST", srv.URL+c.path, c.body, nil, &e); resp.StatusCode != c.status || e.Error.Field != c.field {
			t.Errorf("POST %s %s: %s %+v, want %d", c.path, c.body, resp.Status, e.Error, c.status)
		}
	}
	if evs := replayAll(t, srv.URL, thread); len(evs) != 0 {
		t.Errorf("rejected messages left events: %v", eventTypes(evs))
	}

	// Without an assistant the route answers 503.
	b := open(t, storeConfigs(t, 0)[config.DriverBolt])
	plain := serve(t, b, httpapi.Options{})
	th := createThread(t, plain.URL)
	if resp := do(t, "POST", fmt.Sprintf("%s/v1/threads/%s/messages", plain.URL, th), `{"text":"hi"}`, nil, nil); resp.StatusCode != 503 {
		t.Errorf("no assistant: %s", resp.Status)
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

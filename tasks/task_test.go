package tasks_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
)

// weather is a valid periodic spec the tests vary.
func weather() tasks.Spec {
	return tasks.Spec{
		Title:   "Beijing weather",
		Kind:    tasks.KindPeriodic,
		Trigger: tasks.Trigger{Cron: "0 8 * * *", TZ: "Asia/Shanghai"},
		Slots:   map[string]any{"city": "Beijing", "days": 3.0},
		Tools:   []string{"weather", "notify@1"},
		Steps: []tasks.Step{
			{Tool: "weather@2", Args: map[string]any{"city": "{{city}}", "days": "{{ days }}"}},
			{Tool: "notify@1", Args: map[string]any{"text": "Weather for {{city}}"}},
		},
		Notify: []tasks.Webhook{{URL: "https://example.com/hook", Secret: "k"}},
	}
}

func oilMonitor() tasks.Spec {
	return tasks.Spec{
		Title:   "Oil drop",
		Kind:    tasks.KindMonitor,
		Trigger: tasks.Trigger{Every: tasks.Duration(15 * time.Minute), Event: "oil"},
		Monitor: &tasks.Monitor{Source: tasks.Step{Tool: "price", Args: map[string]any{"symbol": "BRENT"}}, Condition: "value < prev * 0.95"},
	}
}

func TestSpecValidate(t *testing.T) {
	for _, ok := range []tasks.Spec{
		weather(),
		oilMonitor(),
		{Title: "once", Kind: tasks.KindOneShot, Trigger: tasks.Trigger{At: time.Now().Add(time.Hour)}},
		{Title: "guide", Kind: tasks.KindLongRunning, Instruction: "Write this week's travel guide for Hangzhou"},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%s) = %v, want nil", ok.Title, err)
		}
	}
	mod := func(base tasks.Spec, f func(*tasks.Spec)) tasks.Spec {
		f(&base)
		return base
	}
	for _, tc := range []struct {
		name  string
		spec  tasks.Spec
		field string
		msg   string
	}{
		{"no title", mod(weather(), func(s *tasks.Spec) { s.Title = "  " }), "title", "required"},
		{"long title", mod(weather(), func(s *tasks.Spec) { s.Title = strings.Repeat("x", 201) }), "title", "at most"},
		{"no kind", mod(weather(), func(s *tasks.Spec) { s.Kind = "" }), "kind", "required"},
		{"bad kind", mod(weather(), func(s *tasks.Spec) { s.Kind = "daily" }), "kind", "daily"},
		{"invalid cron", mod(weather(), func(s *tasks.Spec) { s.Trigger.Cron = "0 25 * * *" }), "trigger.cron", ""},
		{"unknown zone", mod(weather(), func(s *tasks.Spec) { s.Trigger.TZ = "Asia/Atlantis" }), "trigger.tz", "unknown time zone"},
		{"negative interval", mod(weather(), func(s *tasks.Spec) {
			s.Trigger = tasks.Trigger{Every: tasks.Duration(-time.Minute)}
		}), "trigger.every", "must be positive"},
		{"periodic without schedule", mod(weather(), func(s *tasks.Spec) { s.Trigger = tasks.Trigger{} }), "trigger", "periodic"},
		{"periodic at a time", mod(weather(), func(s *tasks.Spec) { s.Trigger = tasks.Trigger{At: time.Now()} }), "trigger.at", "one_shot"},
		{"one-shot without time", tasks.Spec{Title: "x", Kind: tasks.KindOneShot}, "trigger.at", "needs a time"},
		{"at in year 3000", tasks.Spec{Title: "x", Kind: tasks.KindOneShot, Trigger: tasks.Trigger{At: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}}, "trigger.at", "between"},
		{"event on periodic", mod(weather(), func(s *tasks.Spec) { s.Trigger.Event = "oil" }), "trigger.event", "monitor"},
		{"monitor without spec", mod(oilMonitor(), func(s *tasks.Spec) { s.Monitor = nil }), "monitor", "source"},
		{"monitor spec on periodic", mod(weather(), func(s *tasks.Spec) { s.Monitor = oilMonitor().Monitor }), "monitor", "only a monitor"},
		{"monitor without trigger", mod(oilMonitor(), func(s *tasks.Spec) { s.Trigger = tasks.Trigger{} }), "trigger", "poll"},
		{"condition does not compile", mod(oilMonitor(), func(s *tasks.Spec) { s.Monitor.Condition = "value <" }), "monitor.condition", "does not compile"},
		{"condition unknown name", mod(oilMonitor(), func(s *tasks.Spec) { s.Monitor.Condition = "price < 3" }), "monitor.condition", "unknown name price"},
		{"condition not bool", mod(oilMonitor(), func(s *tasks.Spec) { s.Monitor.Condition = "1 + 2" }), "monitor.condition", "does not compile"},
		{"no condition nor judge", mod(oilMonitor(), func(s *tasks.Spec) { s.Monitor.Condition = "" }), "monitor.condition", "judge"},
		{"monitor source without tool", mod(oilMonitor(), func(s *tasks.Spec) { s.Monitor.Source.Tool = "" }), "monitor.source.tool", "required"},
		{"bad tool name", mod(weather(), func(s *tasks.Spec) { s.Tools = []string{"weather", "rm -rf"} }), "tools.1", "not a tool"},
		{"duplicate tool", mod(weather(), func(s *tasks.Spec) { s.Tools = []string{"weather", "weather"} }), "tools.1", "twice"},
		{"step tool not allowed", mod(weather(), func(s *tasks.Spec) { s.Steps[1].Tool = "email" }), "steps.1.tool", "not among"},
		{"step pinned version not allowed", mod(weather(), func(s *tasks.Spec) { s.Steps[1].Tool = "notify@2" }), "steps.1.tool", "not among"},
		{"step missing slot", mod(weather(), func(s *tasks.Spec) { s.Steps[0].Args["town"] = "{{town}}" }), "steps.0.args.town", `"town"`},
		{"nested missing slot", mod(weather(), func(s *tasks.Spec) {
			s.Steps[1].Args["to"] = []any{"ok", map[string]any{"name": "Dear {{user}}"}}
		}), "steps.1.args.to.1.name", `"user"`},
		{"bad slot name", mod(weather(), func(s *tasks.Spec) { s.Slots["1city"] = "x" }), "slots.1city", ""},
		{"bad priority", mod(weather(), func(s *tasks.Spec) { s.Priority = "urgent" }), "priority", "urgent"},
		{"bad webhook", mod(weather(), func(s *tasks.Spec) { s.Notify = []tasks.Webhook{{URL: "ftp://x"}} }), "notify.0.url", "http"},
		{"webhook with credentials", mod(weather(), func(s *tasks.Spec) { s.Notify = []tasks.Webhook{{URL: "https://u:p@x.com/"}} }), "notify.0.url", "credentials"},
		{"bad then id", mod(weather(), func(s *tasks.Spec) { s.Then = []string{"tsk a"} }), "then.0", "not a task id"},
		{"duplicate then", mod(weather(), func(s *tasks.Spec) { s.Then = []string{"tsk_a", "tsk_a"} }), "then.1", "twice"},
		{"bad catch-up", mod(weather(), func(s *tasks.Spec) { s.CatchUp = "all" }), "catch_up", "skip or run_once"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkField(t, tc.spec.Validate(), tc.field, tc.msg) })
	}
}

func TestNormalizedAndRedacted(t *testing.T) {
	s := weather()
	s.Title = "  padded  "
	n := s.Normalized()
	if n.Title != "padded" || n.Priority != tasks.PriorityNormal || n.CatchUp != tasks.CatchUpRunOnce {
		t.Errorf("Normalized: %q %q %q", n.Title, n.Priority, n.CatchUp)
	}
	task := tasks.Task{ID: "tsk_1", Spec: n}
	r := task.Redacted()
	if r.Notify[0].Secret != "" || !r.Notify[0].HasSecret || r.Notify[0].URL != "https://example.com/hook" {
		t.Errorf("Redacted webhook: %+v", r.Notify[0])
	}
	if task.Notify[0].Secret != "k" {
		t.Error("Redacted changed the original")
	}
	run := tasks.Run{Spec: n}.Redacted()
	if run.Spec.Notify[0].Secret != "" {
		t.Error("Run.Redacted kept the secret")
	}
}

func TestRender(t *testing.T) {
	s := weather()
	slots := map[string]any{"city": "Beijing", "days": 3.0}
	got, err := s.Steps[0].Render(slots)
	if err != nil {
		t.Fatal(err)
	}
	if got["city"] != "Beijing" || got["days"] != 3.0 {
		t.Errorf("whole references: %#v; want the slots' values with their types", got)
	}
	got, err = tasks.Step{Tool: "x", Args: map[string]any{
		"text": "{{city}} for {{days}} days", "list": []any{"{{city}}", 1.5, nil}, "keep": true,
	}}.Render(slots)
	if err != nil {
		t.Fatal(err)
	}
	if got["text"] != "Beijing for 3 days" || fmt.Sprint(got["list"]) != "[Beijing 1.5 <nil>]" || got["keep"] != true {
		t.Errorf("embedded references: %#v", got)
	}
	_, err = tasks.Step{Tool: "x", Args: map[string]any{"a": "{{nope}}"}}.Render(slots)
	checkField(t, err, "args.a", `"nope"`)
	if got, err := (tasks.Step{Tool: "x"}).Render(slots); err != nil || got != nil {
		t.Errorf("no args: %v, %v", got, err)
	}
}

func TestMonitorHolds(t *testing.T) {
	m := *oilMonitor().Monitor
	for _, tc := range []struct {
		value, prev any
		want        bool
	}{
		{90.0, 100.0, true},
		{96.0, 100.0, false},
		{94, 100, true}, // ints from a JSON decoder that keeps them
	} {
		got, err := m.Holds(tc.value, tc.prev)
		if err != nil || got != tc.want {
			t.Errorf("Holds(%v, %v) = %v, %v; want %v", tc.value, tc.prev, got, err, tc.want)
		}
	}
	if _, err := m.Holds(90.0, nil); err == nil {
		t.Error("Holds with no previous value evaluated arithmetic on nil without an error")
	}
	guarded := tasks.Monitor{Condition: "prev != nil && value.price < prev.price * 0.95"}
	if got, err := guarded.Holds(map[string]any{"price": 90.0}, nil); err != nil || got {
		t.Errorf("guarded first check = %v, %v; want false, nil", got, err)
	}
	if got, err := guarded.Holds(map[string]any{"price": 90.0}, map[string]any{"price": 100.0}); err != nil || !got {
		t.Errorf("guarded = %v, %v; want true, nil", got, err)
	}
	if got, err := (tasks.Monitor{Judge: "snow"}).Holds(1, 2); err != nil || !got {
		t.Errorf("judge-only monitor = %v, %v; want true (the judge decides)", got, err)
	}
}

func TestTransitionTables(t *testing.T) {
	taskLegal := map[[2]tasks.Status]bool{
		{"draft", "active"}: true, {"draft", "archived"}: true,
		{"active", "paused"}: true, {"active", "archived"}: true,
		{"paused", "active"}: true, {"paused", "archived"}: true,
	}
	all := []tasks.Status{tasks.StatusDraft, tasks.StatusActive, tasks.StatusPaused, tasks.StatusArchived}
	for _, from := range all {
		for _, to := range all {
			err := tasks.CheckTask("tsk_1", from, to)
			if legal := taskLegal[[2]tasks.Status{from, to}]; legal != (err == nil) {
				t.Errorf("task %s → %s: %v, legal %v", from, to, err, legal)
			}
		}
	}
	runLegal := map[string]bool{
		"queued>running": true, "queued>cancelled": true,
		"running>succeeded": true, "running>failed": true, "running>retrying": true,
		"running>waiting_input": true, "running>cancelled": true, "running>queued": true,
		"retrying>queued": true, "retrying>cancelled": true,
		"waiting_input>queued": true, "waiting_input>cancelled": true,
	}
	runs := []tasks.RunStatus{tasks.RunQueued, tasks.RunRunning, tasks.RunSucceeded, tasks.RunFailed, tasks.RunRetrying, tasks.RunWaitingInput, tasks.RunCancelled}
	for _, from := range runs {
		for _, to := range runs {
			err := tasks.CheckRun("run_1", from, to)
			if legal := runLegal[string(from)+">"+string(to)]; legal != (err == nil) {
				t.Errorf("run %s → %s: %v, legal %v", from, to, err, legal)
			}
		}
		if want := from == tasks.RunSucceeded || from == tasks.RunFailed || from == tasks.RunCancelled; from.Terminal() != want {
			t.Errorf("%s.Terminal() = %v", from, !want)
		}
	}

	err := tasks.CheckTask("tsk_1", tasks.StatusArchived, tasks.StatusActive)
	if !errors.Is(err, tasks.ErrIllegalTransition) {
		t.Errorf("errors.Is(%v, ErrIllegalTransition) = false", err)
	}
	var te *tasks.TransitionError
	if !errors.As(err, &te) || te.From != "archived" || te.To != "active" {
		t.Errorf("errors.As TransitionError: %+v", te)
	}
	var ve *vigil.Error
	if !errors.As(err, &ve) || ve.Code != vigil.Conflict || ve.Field != "status" {
		t.Errorf("vigil error in the chain: %+v", ve)
	}
	if msg := vigil.ErrorMessage(err); !strings.Contains(msg, "archived") || !strings.Contains(msg, "active") || !strings.Contains(msg, "tsk_1") {
		t.Errorf("message %q does not name the task and both states", msg)
	}
}

func TestIdempotencyKey(t *testing.T) {
	slot := time.Date(2026, 11, 22, 8, 0, 0, 123_456_789, time.FixedZone("UTC+8", 8*3600))
	r := tasks.Run{TaskID: "tsk_1", Slot: slot}
	if got, want := r.IdempotencyKey(), "tsk_1@2026-11-22T00:00:00.123Z"; got != want {
		t.Errorf("IdempotencyKey = %q, want %q", got, want)
	}
	if tasks.IdempotencyKey("tsk_1", slot.UTC()) != r.IdempotencyKey() {
		t.Error("the key depends on the slot's zone")
	}
}

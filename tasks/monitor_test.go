package tasks_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// TestMonitorPolls: a monitor polls its source every minute and tells the
// user only when the condition holds on the new and previous values.
func TestMonitorPolls(t *testing.T) {
	r := newRig(t)
	r.worker(t, nil)
	task := r.active(t, tasks.Spec{
		Title: "oil drops 5%", Kind: tasks.KindMonitor, Trigger: tasks.Trigger{Every: tasks.Duration(time.Minute)},
		Monitor: &tasks.Monitor{Source: tasks.Step{Tool: "price"}, Condition: "prev != nil && value < prev * 0.95"},
		Notify:  r.hook(),
	})
	for i, step := range []struct {
		price float64
		holds bool
	}{
		{100, false}, // no previous value
		{98, false},  // -2%
		{90, true},   // -8.2%
		{89, false},  // -1.1%
		{80, true},   // -10.1%
	} {
		r.setPrice(step.price)
		if rep := r.tickAt(t, t0.Add(time.Duration(i+1)*time.Minute)); rep.Fired != 1 {
			t.Fatalf("poll %d: fired %d", i+1, rep.Fired)
		}
		runs := r.waitRuns(t, task.ID, i+1, tasks.RunSucceeded)
		var res struct {
			Value float64
			Holds bool
		}
		if err := json.Unmarshal(runs[i].Result, &res); err != nil || res.Value != step.price || res.Holds != step.holds {
			t.Errorf("poll %d at %v: result %s; want value %v holds %v", i+1, step.price, runs[i].Result, step.price, step.holds)
		}
	}
	texts := r.events(t, task, streams.TypeText)
	if len(texts) != 2 {
		t.Fatalf("the thread has %d text events; want 2, for the polls where the condition held", len(texts))
	}
	if p, _ := streams.Decode[streams.Text](texts[0]); !strings.Contains(p.Text, "value 90, before 98") {
		t.Errorf("first alert %q", p.Text)
	}
	waitFor(t, "two webhooks", func() bool { n, _ := r.hooks.received(); return len(n) == 2 })
	if len(r.events(t, task, streams.TypeToolResult)) != 5 {
		t.Error("each poll should show its source call on the thread")
	}
}

// TestIngestedEventWakesMonitor: POSTing to an event source wakes the
// active monitors subscribed to it, which judge the event's data.
func TestIngestedEventWakesMonitor(t *testing.T) {
	r := newRig(t)
	r.worker(t, nil)
	spec := func(title, source string) tasks.Spec {
		return tasks.Spec{
			Title: title, Kind: tasks.KindMonitor, Trigger: tasks.Trigger{Event: source},
			Slots:   map[string]any{"event": map[string]any{"price": 0}},
			Monitor: &tasks.Monitor{Source: tasks.Step{Tool: "echo", Args: map[string]any{"data": "{{event}}"}}, Condition: "value.data.price > 100"},
		}
	}
	oil := r.active(t, spec("oil over 100", "oil"))
	gas := r.active(t, spec("gas over 100", "gas"))
	pausedOil := r.active(t, spec("paused oil", "oil"))
	if _, err := r.m.Pause(r.ctx, pausedOil.ID); err != nil {
		t.Fatal(err)
	}

	runs, err := r.m.Ingest(r.ctx, "oil", json.RawMessage(`{"price": 120}`))
	if err != nil || len(runs) != 1 || runs[0].TaskID != oil.ID || runs[0].Cause != tasks.CauseEvent {
		t.Fatalf("Ingest(oil): %+v, %v; want one event run of the active oil monitor", runs, err)
	}
	run := r.waitRun(t, runs[0].ID, tasks.RunSucceeded)
	if string(run.Result) != `{"value":{"data":{"price":120}},"holds":true}` {
		t.Errorf("event run result %s", run.Result)
	}
	r.advance(time.Second)
	runs, err = r.m.Ingest(r.ctx, "oil", json.RawMessage(`{"price": 80}`))
	if err != nil || len(runs) != 1 {
		t.Fatalf("second Ingest(oil): %+v, %v", runs, err)
	}
	if run := r.waitRun(t, runs[0].ID, tasks.RunSucceeded); !strings.Contains(string(run.Result), `"holds":false`) {
		t.Errorf("a price of 80 held: %s", run.Result)
	}
	if n := len(r.events(t, oil, streams.TypeText)); n != 1 {
		t.Errorf("the oil monitor told the user %d times; want once", n)
	}
	if len(r.runs(t, gas.ID)) != 0 || len(r.runs(t, pausedOil.ID)) != 0 {
		t.Error("a monitor of another source, or a paused one, woke")
	}

	// Another user's event wakes ana's monitor too (the source is the
	// tenant's) but does not show them ana's run.
	owned := tasks.NewManager(tasks.Options{Store: r.m.Store(), Log: r.db, Now: r.clock.Now,
		ManagesAll: func(p vigil.Principal) bool { return p.HasRole("admin") }})
	bob := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: "bob"})
	r.advance(time.Second)
	before := len(r.runs(t, oil.ID))
	if runs, err := owned.Ingest(bob, "oil", json.RawMessage(`{"price": 130}`)); err != nil || len(runs) != 0 {
		t.Errorf("bob's Ingest(oil) = %+v, %v; want ana's monitor woken, its run not shown", runs, err)
	}
	if n := len(r.runs(t, oil.ID)); n != before+1 {
		t.Errorf("ana's oil monitor has %d runs after bob's event, want %d", n, before+1)
	}
	if runs, err := r.m.Ingest(r.ctx, "nobody", json.RawMessage(`1`)); err != nil || len(runs) != 0 {
		t.Errorf("Ingest of a source nobody listens to: %+v, %v", runs, err)
	}
	if _, err := r.m.Ingest(r.ctx, "bad source!", json.RawMessage(`1`)); vigil.ErrorCode(err) != vigil.Invalid {
		t.Errorf("Ingest of a bad source name: %v", err)
	}
	if _, err := r.m.Ingest(r.ctx, "oil", json.RawMessage(`{`)); vigil.ErrorCode(err) != vigil.Invalid {
		t.Errorf("Ingest of bad JSON: %v", err)
	}
	other := vigil.WithPrincipal(r.ctx, vigil.Principal{Tenant: "globex", User: "bob"})
	if runs, err := r.m.Ingest(other, "oil", json.RawMessage(`{"price": 500}`)); err != nil || len(runs) != 0 {
		t.Errorf("another tenant's event woke acme's monitor: %+v, %v", runs, err)
	}
}

// TestChainRunsInOrder: a task's Then starts the next tasks after it
// succeeds, each run linked to the one before.
func TestChainRunsInOrder(t *testing.T) {
	r := newRig(t)
	r.worker(t, func(o *tasks.WorkerOptions) { o.Concurrency = 4 })
	step := func(name string, then ...string) tasks.Task {
		return r.active(t, tasks.Spec{Title: name, Kind: tasks.KindLongRunning, Then: then,
			Steps: []tasks.Step{{Tool: "step", Args: map[string]any{"name": name}}}})
	}
	c := step("c")
	b := step("b", c.ID)
	a := step("a", b.ID)
	first, err := r.m.RunNow(r.ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	runA := r.waitRun(t, first.ID, tasks.RunSucceeded)
	runB := r.waitRuns(t, b.ID, 1, tasks.RunSucceeded)[0]
	runC := r.waitRuns(t, c.ID, 1, tasks.RunSucceeded)[0]
	if got := strings.Join(r.calls(), ","); got != "a,b,c" {
		t.Errorf("steps ran %s; want a,b,c", got)
	}
	if runB.Cause != tasks.CauseChain || runB.Parent != runA.ID || runC.Cause != tasks.CauseChain || runC.Parent != runB.ID {
		t.Errorf("chain links: b %s/%s, c %s/%s; want chain runs with parents a, b", runB.Cause, runB.Parent, runC.Cause, runC.Parent)
	}
	if runB.StartedAt.Before(runA.FinishedAt) && !runB.StartedAt.Equal(runA.FinishedAt) {
		t.Error("b started before a finished")
	}
	// A paused successor does not run.
	if _, err := r.m.Pause(r.ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	r.advance(time.Second)
	second, err := r.m.RunNow(r.ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	r.waitRun(t, second.ID, tasks.RunSucceeded)
	if n := len(r.runs(t, b.ID)); n != 1 {
		t.Errorf("the paused successor has %d runs; want still 1", n)
	}
}

// TestMonitorResumesOnItsReading: a monitor whose condition held is
// stopped gracefully in step 2 of 3; while it waits in the queue the
// value falls back below the threshold. The worker that resumes it does
// not read the source again: it calls step 3, and the run succeeds on the
// reading its steps were for, with its text and webhook.
func TestMonitorResumesOnItsReading(t *testing.T) {
	r := newRig(t)
	w1 := r.worker(t, nil)
	g := newGate("s2")
	r.tool(t, "gated", g.handler(r))
	var steps []tasks.Step
	for _, n := range []string{"s1", "s2", "s3"} {
		steps = append(steps, tasks.Step{Tool: "gated", Args: map[string]any{"name": n}})
	}
	task := r.active(t, tasks.Spec{
		Title: "price above 100", Kind: tasks.KindMonitor, Trigger: tasks.Trigger{Every: tasks.Duration(time.Minute)},
		Monitor: &tasks.Monitor{Source: tasks.Step{Tool: "price"}, Condition: "value > 100"},
		Steps:   steps, Notify: r.hook(),
	})
	r.setPrice(120)
	run, err := r.m.RunNow(r.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	g.wait(t, "s2")
	stopDuring(t, w1, g, "s2")
	got, _ := r.db.Run(r.ctx, "acme", run.ID)
	if got.Status != tasks.RunQueued || checkpointSteps(got) != "-1,0,1" {
		t.Errorf("after a graceful stop in step 2: status %s, checkpoints [%s]; want queued, [-1,0,1]", got.Status, checkpointSteps(got))
	}

	r.setPrice(90)
	r.worker(t, nil)
	done := r.waitRun(t, run.ID, tasks.RunSucceeded)
	r.waitUnleased(t)
	if calls := strings.Join(r.calls(), ","); calls != "s1,s2,s3" {
		t.Errorf("steps called %s; want each once, s3 by the second worker", calls)
	}
	if string(done.Result) != `{"value":120,"holds":true}` {
		t.Errorf("result %s; want the reading the steps were for", done.Result)
	}
	if n := len(r.events(t, task, streams.TypeToolResult)); n != 4 {
		t.Errorf("%d tool results on the thread; want 4: the source once, then s1, s2, s3", n)
	}
	texts := r.events(t, task, streams.TypeText)
	if len(texts) != 1 {
		t.Fatalf("%d text events; want 1", len(texts))
	}
	if p, _ := streams.Decode[streams.Text](texts[0]); !strings.Contains(p.Text, "value 120") || !strings.Contains(p.Text, "did s3") {
		t.Errorf("alert %q", p.Text)
	}
	waitFor(t, "the webhook", func() bool { n, _ := r.hooks.received(); return len(n) == 1 })
}

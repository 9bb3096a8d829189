package mcpserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/mcpserver"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// answerer is an elicitation handler that answers with fixed content and
// records the questions.
type answerer struct {
	action  mcp.ElicitationResponseAction
	content map[string]any
	mu      sync.Mutex
	asked   []mcp.ElicitationParams
}

func (a *answerer) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	a.mu.Lock()
	a.asked = append(a.asked, req.Params)
	a.mu.Unlock()
	res := &mcp.ElicitationResult{}
	res.Action = a.action
	if a.action == mcp.ElicitationResponseActionAccept {
		res.Content = a.content
	}
	return res, nil
}

func (a *answerer) questions() []mcp.ElicitationParams {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]mcp.ElicitationParams(nil), a.asked...)
}

// transports runs fn over streamable HTTP and over stdio, each in both
// protocol generations, with a client made with opts. The subtests are
// named after the generation, with "stdio-" before it for stdio.
func transports(t *testing.T, w *world, opts func() []client.ClientOption, fn func(t *testing.T, c *client.Client)) {
	for _, gen := range generations {
		t.Run(gen, func(t *testing.T) { fn(t, w.httpClient(t, gen, clientConfig{opts: opts()})) })
	}
	for _, gen := range generations {
		t.Run("stdio-"+gen, func(t *testing.T) { fn(t, w.stdioClient(t, gen, opts()...)) })
	}
}

// generation returns the protocol generation of a subtest of transports.
func generation(t *testing.T) string {
	name := t.Name()[strings.LastIndex(t.Name(), "/")+1:]
	return strings.TrimPrefix(name, "stdio-")
}

func TestCreateTask(t *testing.T) {
	w := newWorld(t, nil, nil)
	none := func() []client.ClientOption { return nil }
	transports(t, w, none, func(t *testing.T, c *client.Client) {
		t.Run("fields", func(t *testing.T) {
			var out mcpserver.CreateTaskOutput
			ok(t, callTool(t, c, "create_task", map[string]any{
				"title": "Oil report", "kind": "periodic", "instruction": "Summarise the oil price.",
				"trigger": map[string]any{"cron": "0 9 * * 1", "tz": "Asia/Shanghai"},
				"tools":   []string{"http_get"}, "priority": "high",
			}), &out)
			if out.Status != mcpserver.StatusDraft || out.Task.Title != "Oil report" || out.Task.Priority != tasks.PriorityHigh ||
				out.Task.Trigger.Cron != "0 9 * * 1" || out.Task.Status != tasks.StatusDraft {
				t.Fatalf("draft %+v", out.Task)
			}
			// A spec that breaks a rule is a result the model can fix.
			failed(t, callTool(t, c, "create_task", map[string]any{"title": "x", "kind": "periodic"}), "invalid arguments: trigger:")
		})
		t.Run("text", func(t *testing.T) {
			var out mcpserver.CreateTaskOutput
			ok(t, callTool(t, c, "create_task", map[string]any{"request": "remind me to call mom tomorrow at 9am", "tz": "Europe/Paris"}), &out)
			task := out.Task
			if out.Status != mcpserver.StatusDraft || task == nil || task.Kind != tasks.KindOneShot || task.Slots["message"] != "call mom" {
				t.Fatalf("draft from text: %+v", out)
			}
			paris, _ := time.LoadLocation("Europe/Paris")
			if at := task.Trigger.At.In(paris); at.Hour() != 9 || !at.After(time.Now()) {
				t.Fatalf("trigger at %s", task.Trigger.At)
			}
			if out.Plan == nil || out.Plan.Domain != "reminder" || len(out.Missing) != 0 {
				t.Fatalf("plan %+v", out.Plan)
			}
			// A request that is not a new task says which tool to call.
			failed(t, callTool(t, c, "create_task", map[string]any{"request": "list my tasks"}), "invalid arguments: request: asks to list")
		})
		t.Run("needs_input", func(t *testing.T) {
			// This client cannot be asked: the result says what to ask.
			var out mcpserver.CreateTaskOutput
			ok(t, callTool(t, c, "create_task", map[string]any{"request": "every day at 8am tell me the weather"}), &out)
			if out.Status != mcpserver.StatusNeedsInput || out.Task != nil || len(out.Missing) != 1 || out.Missing[0] != "city" ||
				out.Question == "" || !strings.Contains(out.Note, "elicitation") {
				t.Fatalf("needs input: %+v", out)
			}
			props, _ := out.Schema["properties"].(map[string]any)
			if city, _ := props["city"].(map[string]any); city["type"] != "string" {
				t.Fatalf("schema %v", out.Schema)
			}
			// The answer, given back as a slot, completes the task.
			ok(t, callTool(t, c, "create_task", map[string]any{"request": "every day at 8am tell me the weather", "slots": map[string]any{"city": "Lyon"}}), &out)
			if out.Status != mcpserver.StatusDraft || out.Task.Slots["city"] != "Lyon" || out.Task.Title != "Weather in Lyon" || out.Task.Trigger.Cron != "0 8 * * *" {
				t.Fatalf("completed: %+v", out.Task)
			}
		})
	})
}

func TestCreateTaskElicitation(t *testing.T) {
	w := newWorld(t, nil, nil)
	var a *answerer
	opts := func() []client.ClientOption {
		a = &answerer{action: mcp.ElicitationResponseActionAccept, content: map[string]any{"city": "Paris"}}
		return []client.ClientOption{client.WithElicitationHandler(a)}
	}
	transports(t, w, opts, func(t *testing.T, c *client.Client) {
		var out mcpserver.CreateTaskOutput
		ok(t, callTool(t, c, "create_task", map[string]any{"request": "every day at 8am tell me the weather", "tz": "Europe/Paris"}), &out)
		if out.Status != mcpserver.StatusDraft || out.Task.Slots["city"] != "Paris" || out.Task.Trigger.TZ != "Europe/Paris" {
			t.Fatalf("after elicitation: %+v", out)
		}
		asked := a.questions()
		if len(asked) != 1 || !strings.Contains(asked[0].Message, "city") {
			t.Fatalf("asked %+v", asked)
		}
		schema, _ := json.Marshal(asked[0].RequestedSchema)
		if !strings.Contains(string(schema), `"required":["city"]`) {
			t.Fatalf("requested schema %s", schema)
		}

		// A missing time is asked as text and read by the planner.
		a.content = map[string]any{"time": "7:30"}
		ok(t, callTool(t, c, "create_task", map[string]any{"request": "every day tell me the weather in Nice", "tz": "Europe/Paris"}), &out)
		if out.Status != mcpserver.StatusDraft || out.Task.Trigger.Cron != "30 7 * * *" || out.Task.Slots["city"] != "Nice" {
			t.Fatalf("time answered: %+v", out.Task)
		}

		// A user who declines gets needs_input, and nothing is created.
		a.action = mcp.ElicitationResponseActionDecline
		ok(t, callTool(t, c, "create_task", map[string]any{"request": "every day at 8am tell me the weather"}), &out)
		if out.Status != mcpserver.StatusNeedsInput || !strings.Contains(out.Note, "declined") {
			t.Fatalf("declined: %+v", out)
		}
	})
}

func TestTaskLifecycle(t *testing.T) {
	w := newWorld(t, nil, nil)
	none := func() []client.ClientOption { return nil }
	transports(t, w, none, func(t *testing.T, c *client.Client) {
		var created mcpserver.CreateTaskOutput
		ok(t, callTool(t, c, "create_task", map[string]any{"request": "every day at 8am tell me the weather in Rome", "tz": "Europe/Rome"}), &created)
		id := created.Task.ID

		var got mcpserver.TaskOutput
		ok(t, callTool(t, c, "confirm_task", map[string]any{"id": id}), &got)
		if got.Task.Status != tasks.StatusActive || got.Task.NextFire == nil {
			t.Fatalf("confirmed: %+v", got.Task)
		}
		failed(t, callTool(t, c, "confirm_task", map[string]any{"id": id}), "conflict: status: cannot confirm")

		ok(t, callTool(t, c, "update_task", map[string]any{"id": id, "version": got.Task.Version, "title": "Rome weather", "priority": "low"}), &got)
		if got.Task.Title != "Rome weather" || got.Task.Priority != tasks.PriorityLow || got.Task.Slots["city"] != "Rome" || got.Task.Version != 3 {
			t.Fatalf("updated: %+v", got.Task)
		}
		failed(t, callTool(t, c, "update_task", map[string]any{"id": id, "version": 1, "title": "stale"}), "conflict: version:")

		ok(t, callTool(t, c, "pause_task", map[string]any{"id": id}), &got)
		if got.Task.Status != tasks.StatusPaused {
			t.Fatalf("paused: %+v", got.Task)
		}
		ok(t, callTool(t, c, "resume_task", map[string]any{"id": id}), &got)
		if got.Task.Status != tasks.StatusActive {
			t.Fatalf("resumed: %+v", got.Task)
		}

		var list mcpserver.ListTasksOutput
		ok(t, callTool(t, c, "list_tasks", map[string]any{"status": "active"}), &list)
		found := false
		for _, task := range list.Tasks {
			found = found || task.ID == id
			if task.Status != tasks.StatusActive {
				t.Errorf("list_tasks status=active returned %s", task.Status)
			}
		}
		if !found {
			t.Fatalf("list_tasks lacks %s", id)
		}

		var run mcpserver.RunOutput
		ok(t, callTool(t, c, "run_task", map[string]any{"id": id}), &run)
		if run.Run.Status != tasks.RunQueued || run.Run.TaskID != id || run.Done {
			t.Fatalf("run: %+v", run)
		}
		var runs mcpserver.ListRunsOutput
		ok(t, callTool(t, c, "list_runs", map[string]any{"task_id": id}), &runs)
		if len(runs.Runs) != 1 || runs.Runs[0].ID != run.Run.ID {
			t.Fatalf("runs: %+v", runs)
		}
		ok(t, callTool(t, c, "get_run", map[string]any{"id": run.Run.ID}), &run)

		var del mcpserver.DeleteTaskOutput
		ok(t, callTool(t, c, "delete_task", map[string]any{"id": id}), &del)
		failed(t, callTool(t, c, "get_task", map[string]any{"id": id}), "not found:")
		failed(t, callTool(t, c, "get_run", map[string]any{"id": run.Run.ID}), "not found:")
	})
}

// worker plays the part of the run executor that comes with the
// scheduler: it moves the first run of task id through running to
// succeeded, appending the task_status events the executor will.
func worker(t *testing.T, w *world, tenant string, task tasks.Task) {
	ctx := ctxOf(tenant)
	var run tasks.Run
	for deadline := time.Now().Add(5 * time.Second); ; {
		page, err := w.mgr.ListRuns(ctx, tasks.RunFilter{TaskID: task.ID})
		if err != nil {
			t.Error(err)
			return
		}
		if len(page.Runs) > 0 {
			run = page.Runs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Error("no run appeared")
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	move := func(from, to tasks.RunStatus) {
		run.Status, run.UpdatedAt = to, time.Now()
		if to == tasks.RunSucceeded {
			run.Result, run.FinishedAt = json.RawMessage(`{"forecast":"sunny"}`), time.Now()
		}
		if err := w.db.UpdateRun(ctx, run, from); err != nil {
			t.Error(err)
		}
		ev, _ := streams.NewEvent(streams.TaskStatus{TaskID: task.ID, RunID: run.ID, From: string(from), To: string(to)})
		ev.TaskID, ev.RunID, ev.TS = task.ID, run.ID, time.Now()
		if _, err := w.db.Append(ctx, tenant, task.ThreadID, []streams.Event{ev}); err != nil {
			t.Error(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	move(tasks.RunQueued, tasks.RunRunning)
	time.Sleep(50 * time.Millisecond)
	move(tasks.RunRunning, tasks.RunSucceeded)
}

func TestRunTaskProgress(t *testing.T) {
	w := newWorld(t, nil, nil)
	none := func() []client.ClientOption { return nil }
	var n atomic.Int64
	transports(t, w, none, func(t *testing.T, c *client.Client) {
		got := listen(c)
		task, err := w.mgr.Create(ctxOf(vigil.DefaultTenant), tasks.Spec{Title: "Report", Kind: tasks.KindLongRunning, Instruction: "Write it."})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); worker(t, w, vigil.DefaultTenant, task) }()
		token := fmt.Sprintf("run-%d", n.Add(1))
		var out mcpserver.RunOutput
		ok(t, callToolMeta(t, c, "run_task", map[string]any{"id": task.ID, "wait_seconds": 10}, &mcp.Meta{ProgressToken: token}), &out)
		<-done
		if !out.Done || out.Run.Status != tasks.RunSucceeded || string(out.Run.Result) != `{"forecast":"sunny"}` {
			t.Fatalf("run_task: %+v", out)
		}
		var msgs []string
		for _, p := range got.of(string(mcp.MethodNotificationProgress)) {
			if p.Params.AdditionalFields["progressToken"] == token {
				msgs = append(msgs, fmt.Sprint(p.Params.AdditionalFields["message"]))
			}
		}
		// Each state while it runs; the end is in the result.
		want := []string{"queued", "running"}
		if len(msgs) != len(want) {
			t.Fatalf("progress %q, want one per state %q", msgs, want)
		}
		for i, m := range msgs {
			if !strings.HasSuffix(m, want[i]) {
				t.Fatalf("progress %q, want %q", msgs, want)
			}
		}
	})
}

// slowUser never answers in time.
type slowUser struct{}

func (slowUser) Elicit(ctx context.Context, _ mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(3 * time.Second):
		return nil, context.DeadlineExceeded
	}
}

// TestElicitationTimeout: a session-protocol client that does not answer
// within ElicitTimeout gets needs_input; nothing waits for ever.
func TestElicitationTimeout(t *testing.T) {
	w := newWorld(t, func(o *mcpserver.Options) { o.ElicitTimeout = 200 * time.Millisecond }, nil)
	for name, c := range map[string]func(t *testing.T) *client.Client{
		legacy: func(t *testing.T) *client.Client {
			return w.httpClient(t, legacy, clientConfig{opts: []client.ClientOption{client.WithElicitationHandler(slowUser{})}})
		},
		"stdio-" + legacy: func(t *testing.T) *client.Client {
			return w.stdioClient(t, legacy, client.WithElicitationHandler(slowUser{}))
		},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			var out mcpserver.CreateTaskOutput
			ok(t, callTool(t, c(t), "create_task", map[string]any{"request": "every day at 8am tell me the weather"}), &out)
			if out.Status != mcpserver.StatusNeedsInput || !strings.Contains(out.Note, "no answer within 200ms") {
				t.Fatalf("unanswered: %+v", out)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
}

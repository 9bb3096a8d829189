package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/agent"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// taNow is when every task agent test runs: 11:00 in Paris, so that
// "tomorrow" is 2026-11-23 there.
var taNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// taClock is a clock the test sets.
type taClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *taClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *taClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// taWeatherSchema wants an ISO date, which models tend to get wrong.
const taWeatherSchema = `{"type":"object","properties":{"city":{"type":"string","minLength":1},"date":{"type":"string","format":"date"}},"required":["city","date"],"additionalProperties":false}`

// taRig is the execution side over one real bolt file, as `vigil serve`
// runs it: a Manager whose runs reach the bolt queue, a tools registry with
// test tools, long-term memory, and workers the test starts with a
// TaskAgent as their executor. One clock drives the Manager, the queue,
// the workers, the registry and the agent.
type taRig struct {
	db    *bolt.DB
	q     *bolt.Queue
	clock *taClock
	m     *tasks.Manager
	reg   *toolsregistry.Registry
	mem   *memory.Service
	ctx   context.Context // tenant acme, user ana

	mu    sync.Mutex
	calls []string // the test tools' calls, as "tool args"
}

func newTARig(t *testing.T) *taRig {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // runs last: workers stop first
	r := &taRig{db: db, clock: &taClock{now: taNow}}
	r.q = bolt.NewQueue(db, bolt.QueueOptions{Now: r.clock.Now})
	r.m = tasks.NewManager(tasks.Options{Store: &tasks.DispatchStore{Store: db, Queue: r.q}, Log: db, Now: r.clock.Now})
	r.reg = taRegistry(t, r.clock.Now, r.record)
	if r.mem, err = memory.New(db, memory.Options{Key: make([]byte, 32), Now: r.clock.Now}); err != nil {
		t.Fatal(err)
	}
	r.ctx = vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: "ana"})
	return r
}

func (r *taRig) record(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
}

func (r *taRig) toolCalls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// taRegistry returns a registry with the test tools: weather (a city and
// an ISO date), step (a named step of a long run), table (a result with a
// table part) and forecast (a monitor's source). record hears every call.
func taRegistry(t *testing.T, now func() time.Time, record func(string)) *toolsregistry.Registry {
	t.Helper()
	reg := toolsregistry.New(toolsregistry.Options{Now: now})
	add := func(name, schema string, fn func(args json.RawMessage) (toolsregistry.Output, error)) {
		tool := toolsregistry.Tool{Name: name, Version: 1, Description: "a test tool: " + name, InputSchema: json.RawMessage(schema)}
		err := reg.Register(tool, toolsregistry.HandlerFunc(func(_ context.Context, args json.RawMessage) (toolsregistry.Output, error) {
			record(name + " " + string(args))
			return fn(args)
		}))
		if err != nil {
			t.Fatal(err)
		}
	}
	add("weather", taWeatherSchema, func(args json.RawMessage) (toolsregistry.Output, error) {
		var in struct{ City, Date string }
		_ = json.Unmarshal(args, &in)
		return toolsregistry.Output{Value: json.RawMessage(fmt.Sprintf(`{"city":%q,"date":%q,"forecast":"sunny","high_c":18}`, in.City, in.Date))}, nil
	})
	add("step", `{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`, func(args json.RawMessage) (toolsregistry.Output, error) {
		var in struct{ Name string }
		_ = json.Unmarshal(args, &in)
		return toolsregistry.Output{Value: json.RawMessage(fmt.Sprintf(`"did %s"`, in.Name))}, nil
	})
	add("table", `{"type":"object"}`, func(json.RawMessage) (toolsregistry.Output, error) {
		return toolsregistry.Output{
			Value: json.RawMessage(`{"rows":1}`),
			Parts: []streams.Payload{streams.Table{Columns: []string{"city", "high_c"}, Rows: [][]any{{"Paris", 18}}}},
		}, nil
	})
	add("forecast", `{"type":"object","properties":{"city":{"type":"string"}}}`, func(args json.RawMessage) (toolsregistry.Output, error) {
		return toolsregistry.Output{Value: json.RawMessage(`{"summary":"heavy snow tomorrow","snow_cm":2}`)}, nil
	})
	return reg
}

// agent returns a TaskAgent over the rig's parts.
func (r *taRig) agent(t *testing.T, model agent.Model) *agent.TaskAgent {
	t.Helper()
	ta, err := agent.NewTaskAgent(agent.TaskAgentOptions{
		Model: model, Registry: r.reg, Store: r.db, Memory: r.mem, Now: r.clock.Now, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return ta
}

// worker starts a worker executing with exec; ending ctx kills it. It is
// stopped gracefully when the test ends.
func (r *taRig) worker(t *testing.T, ctx context.Context, exec tasks.Executor) *tasks.Worker {
	t.Helper()
	w := tasks.NewWorker(tasks.WorkerOptions{
		Store: r.db, Queue: r.q, Log: r.db, Executor: exec, Now: r.clock.Now, Logger: slog.New(slog.DiscardHandler),
	})
	w.Start(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return w
}

// runNow creates and confirms a task and runs it now.
func (r *taRig) runNow(t *testing.T, s tasks.Spec) (tasks.Task, tasks.Run) {
	t.Helper()
	task, err := r.m.Create(r.ctx, s)
	if err != nil {
		t.Fatalf("Create(%s): %v", s.Title, err)
	}
	if task, err = r.m.Confirm(r.ctx, task.ID); err != nil {
		t.Fatalf("Confirm(%s): %v", s.Title, err)
	}
	run, err := r.m.RunNow(r.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	return task, run
}

// taWait polls cond until it holds, for at most 10 seconds.
func taWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *taRig) waitRun(t *testing.T, id string, st tasks.RunStatus) tasks.Run {
	t.Helper()
	var run tasks.Run
	taWait(t, fmt.Sprintf("run %s to be %s", id, st), func() bool {
		var err error
		run, err = r.db.Run(r.ctx, "acme", id)
		return err == nil && run.Status == st
	})
	return run
}

// events returns the events of the task's thread about run, but for
// task_status changes.
func (r *taRig) events(t *testing.T, task tasks.Task, run string) []streams.Event {
	t.Helper()
	page, err := streams.ReadAll(r.ctx, r.db, "acme", task.ThreadID, streams.ID{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []streams.Event
	for _, e := range page.Events {
		if e.RunID == run && e.Type != streams.TypeTaskStatus {
			out = append(out, e)
		}
	}
	return out
}

// ofType returns the payloads of evs of T's type.
func ofType[T streams.Payload](t *testing.T, evs []streams.Event) []T {
	t.Helper()
	var zero T
	var out []T
	for _, e := range evs {
		if e.Type == zero.EventType() {
			p, err := streams.Decode[T](e)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
	}
	return out
}

// messagesOf returns the messages of a recorded chat completions request.
func messagesOf(req map[string]any) []map[string]any {
	raw, _ := req["messages"].([]any)
	out := make([]map[string]any, len(raw))
	for i, m := range raw {
		out[i], _ = m.(map[string]any)
	}
	return out
}

// parisWeather is a task whose instruction refers to its slot and the date,
// calling the weather tool.
func parisWeather() tasks.Spec {
	return tasks.Spec{
		Title: "Paris weather", Kind: tasks.KindLongRunning, Trigger: tasks.Trigger{TZ: "Europe/Paris"},
		Instruction: "Today is {{today}}. Tell me tomorrow's weather in {{.city}}.",
		Slots:       map[string]any{"city": "Paris"},
		Tools:       []string{"weather"},
	}
}

func weatherCall(id, date string) call {
	return call{id: id, name: "weather", args: []string{`{"city":"Paris",`, `"date":` + jsonOf(date) + `}`}}
}

// Item 3 of the agents issue, end to end: a scripted OpenAI-compatible
// server, the real langchaingo client, a real worker over the bolt queue
// and the thread in the bolt file. The model's first call has a date the
// schema refuses; the agent repairs it, or asks the model once more, or
// after a second invalid call reports a tool_error the model reads. The
// weather tool runs only with valid arguments, and the thread shows the
// run's steps and the final text, all on the run's trace.
func TestTaskAgentInvalidArguments(t *testing.T) {
	const final = "Tomorrow in Paris: sunny, 18°C."
	cases := []struct {
		name      string
		script    []reply
		wantCalls []string // the weather tool's calls
		check     func(t *testing.T, reqs []map[string]any, evs []streams.Event)
	}{{
		name:      "repaired",
		script:    []reply{{calls: []call{weatherCall("call_1", "tomorrow")}}, textReply(final)},
		wantCalls: []string{`weather {"city":"Paris","date":"2026-11-23"}`},
		check: func(t *testing.T, reqs []map[string]any, evs []streams.Event) {
			msgs := messagesOf(reqs[1])
			tool := msgs[len(msgs)-1]
			if content, _ := tool["content"].(string); tool["role"] != "tool" || !strings.Contains(content, `"forecast":"sunny"`) || !strings.Contains(content, "repaired") {
				t.Errorf("the model read %s; want the result and a note of the repair", jsonOf(tool))
			}
		},
	}, {
		name: "re-asked",
		script: []reply{
			{calls: []call{weatherCall("call_1", "whenever suits you")}},
			{calls: []call{weatherCall("call_2", "2026-11-23")}},
			textReply(final),
		},
		wantCalls: []string{`weather {"city":"Paris","date":"2026-11-23"}`},
		check: func(t *testing.T, reqs []map[string]any, evs []streams.Event) {
			msgs := messagesOf(reqs[1])
			tool := msgs[len(msgs)-1]
			if content, _ := tool["content"].(string); tool["role"] != "tool" || !strings.Contains(content, "invalid arguments: date") || !strings.Contains(content, `"format":"date"`) {
				t.Errorf("the re-ask is %s; want the validation error and the expected schema", jsonOf(tool))
			}
			if n := len(ofType[streams.ToolError](t, evs)); n != 0 {
				t.Errorf("%d tool_error events; a call sent back to the model is not one", n)
			}
			asked := slices.ContainsFunc(ofType[streams.Status](t, evs), func(s streams.Status) bool {
				return s.Phase == streams.PhaseCallingTool && strings.Contains(s.Detail, "asking the model to correct them")
			})
			if !asked {
				t.Errorf("no status event says the model is asked to correct its call")
			}
		},
	}, {
		name: "tool_error",
		script: []reply{
			{calls: []call{weatherCall("call_1", "whenever suits you")}},
			{calls: []call{weatherCall("call_2", "some day soon")}},
			textReply("I could not get the forecast."),
		},
		check: func(t *testing.T, reqs []map[string]any, evs []streams.Event) {
			errs := ofType[streams.ToolError](t, evs)
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Error, "date:") || errs[0].Retryable || !strings.Contains(string(errs[0].Expected), `"format":"date"`) {
				t.Fatalf("tool_error events %s; want one about date, with the expected schema, not retryable", jsonOf(errs))
			}
			calls := ofType[streams.ToolCall](t, evs)
			if len(calls) != 1 || calls[0].CallID != errs[0].CallID || !strings.Contains(string(calls[0].Args), "some day soon") {
				t.Errorf("tool_call events %s; want the failed call, with the model's arguments", jsonOf(calls))
			}
			msgs := messagesOf(reqs[2])
			tool := msgs[len(msgs)-1]
			var fb struct {
				Error     string          `json:"error"`
				Expected  json.RawMessage `json:"expected"`
				Retryable *bool           `json:"retryable"`
			}
			content, _ := tool["content"].(string)
			if err := json.Unmarshal([]byte(content), &fb); err != nil || !strings.HasPrefix(fb.Error, "date:") || len(fb.Expected) == 0 || fb.Retryable == nil {
				t.Errorf("the model read %s; want {error, expected, retryable}", content)
			}
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newTARig(t)
			if _, err := r.mem.PutProfile(r.ctx, memory.Profile{HomeCity: "Lyon", Preferences: map[string]string{"units": "metric"}}); err != nil {
				t.Fatal(err)
			}
			srv := openAIServer(t, c.script...)
			model := &agent.Fallback{Primary: newLangChain(t, agent.ProviderOpenAI, srv.URL+"/v1"), Secondary: agent.Offline{}}
			r.worker(t, context.Background(), r.agent(t, model))
			task, run := r.runNow(t, parisWeather())
			done := r.waitRun(t, run.ID, tasks.RunSucceeded)

			if calls := r.toolCalls(); !slices.Equal(calls, c.wantCalls) {
				t.Errorf("tool calls %q, want %q", calls, c.wantCalls)
			}
			reqs := srv.requests()
			if len(reqs) != len(c.script) {
				t.Fatalf("the server got %d requests, want %d", len(reqs), len(c.script))
			}
			// The prompt: the instruction filled at fire time in the
			// task's zone, the date, the owner's profile; the tools.
			first := messagesOf(reqs[0])
			if sys, _ := first[0]["content"].(string); !strings.Contains(sys, "2026-11-22 11:00") || !strings.Contains(sys, "Europe/Paris") ||
				!strings.Contains(sys, "home city Lyon") || !strings.Contains(sys, "units: metric") {
				t.Errorf("system prompt %q", sys)
			}
			if user, _ := first[1]["content"].(string); !strings.HasPrefix(user, "Today is 2026-11-22. Tell me tomorrow's weather in Paris.") {
				t.Errorf("user prompt %q", user)
			}
			tools, _ := reqs[0]["tools"].([]any)
			if len(tools) != 1 || !strings.Contains(jsonOf(tools[0]), `"name":"weather"`) || !strings.Contains(jsonOf(tools[0]), `"format":"date"`) {
				t.Errorf("tools offered: %s", jsonOf(tools))
			}

			evs := r.events(t, task, run.ID)
			c.check(t, reqs, evs)
			text := ofType[streams.Text](t, evs)
			last := c.script[len(c.script)-1].text[0]
			if len(text) != 1 || text[0].Text != last || !strings.Contains(string(done.Result), jsonOf(last)) {
				t.Errorf("text events %s, result %s; want the model's answer %q", jsonOf(text), done.Result, last)
			}
			if len(c.wantCalls) > 0 {
				calls, results := ofType[streams.ToolCall](t, evs), ofType[streams.ToolResult](t, evs)
				if len(calls) != 1 || len(results) != 1 || calls[0].CallID != results[0].CallID || calls[0].Version != "1" ||
					!sameJSON(t, calls[0].Args, `{"city":"Paris","date":"2026-11-23"}`) || !strings.Contains(string(results[0].Result), "sunny") {
					t.Errorf("tool_call %s, tool_result %s", jsonOf(calls), jsonOf(results))
				}
			}
			// Every event of the agent's carries the run's trace; the
			// worker's own text and done events are the worker's.
			trace := tasks.RunTraceID(run.ID)
			for _, e := range evs {
				switch e.Type {
				case streams.TypeText, streams.TypeDone:
				default:
					if e.TraceID != trace {
						t.Errorf("%s event with trace %q, want %q", e.Type, e.TraceID, trace)
					}
				}
			}
			if ss := ofType[streams.Status](t, evs); len(ss) == 0 || ss[0].Phase != streams.PhaseThinking {
				t.Errorf("status events %s", jsonOf(ss))
			}
		})
	}
}

// Item 3's second script: the LLM answers 500. The Fallback's offline
// model takes over; it cannot follow an instruction, so the run makes the
// task's declared steps and renders the notification from the weather
// template, after a warning event.
func TestTaskAgentFallsBackOffline(t *testing.T) {
	r := newTARig(t)
	srv := openAIServer(t, reply{status: 500})
	model := &agent.Fallback{Primary: newLangChain(t, agent.ProviderOpenAI, srv.URL+"/v1"), Secondary: agent.Offline{}}
	r.worker(t, context.Background(), r.agent(t, model))
	spec := parisWeather()
	spec.Slots["date"] = "tomorrow"
	spec.Steps = []tasks.Step{{Tool: "weather", Args: map[string]any{"city": "{{city}}", "date": "{{date}}"}}}
	task, run := r.runNow(t, spec)
	done := r.waitRun(t, run.ID, tasks.RunSucceeded)

	if n := len(srv.requests()); n != 1 {
		t.Errorf("the server got %d requests, want 1", n)
	}
	if calls := r.toolCalls(); !slices.Equal(calls, []string{`weather {"city":"Paris","date":"2026-11-23"}`}) {
		t.Errorf("tool calls %q: want the declared step once, its date repaired", calls)
	}
	evs := r.events(t, task, run.ID)
	if w := find[streams.Warning](t, evs); w.Code != agent.FallbackWarningCode {
		t.Errorf("warning %+v", w)
	}
	var kinds []string
	for _, e := range evs {
		if e.Type != streams.TypeStatus {
			kinds = append(kinds, e.Type)
		}
	}
	if want := []string{"warning", "tool_call", "tool_result", "text", "done"}; !slices.Equal(kinds, want) {
		t.Errorf("events %v, want %v (and status)", kinds, want)
	}
	want := "Weather in Paris (2026-11-22):\n" + `{"city":"Paris","date":"2026-11-23","forecast":"sunny","high_c":18}`
	if text := find[streams.Text](t, evs); text.Text != want {
		t.Errorf("notification %q, want %q", text.Text, want)
	}
	if !strings.Contains(string(done.Result), `"outputs"`) {
		t.Errorf("result %s: want the step executor's", done.Result)
	}
}

// Item 4: a long run whose worker is killed while the model thinks about
// step 3 of 4 is left running with its checkpoints; once the lease runs
// out another worker reclaims it and resumes from the conversation in
// the checkpoint: the model sees the earlier messages again, and the
// earlier tools are not called again.
func TestTaskAgentResumesAfterKill(t *testing.T) {
	r := newTARig(t)
	step := func(n int) reply {
		return reply{calls: []call{{id: fmt.Sprintf("call_s%d", n), name: "step", args: []string{fmt.Sprintf(`{"name":"s%d"}`, n)}}}}
	}
	srv := openAIServer(t, step(1), step(2), reply{hang: true}, step(3), step(4), textReply("All four steps are done."))
	model := newLangChain(t, agent.ProviderOpenAI, srv.URL+"/v1")
	ta := r.agent(t, model)
	ctx, kill := context.WithCancel(context.Background())
	w1 := r.worker(t, ctx, ta)
	task, run := r.runNow(t, tasks.Spec{
		Title: "Four steps", Kind: tasks.KindLongRunning, Tools: []string{"step"},
		Instruction: "Make the steps s1, s2, s3 and s4 in order, one per turn.",
	})
	taWait(t, "the model to be asked for step 3", func() bool { return len(srv.requests()) == 3 })
	kill()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w1.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	got, err := r.db.Run(r.ctx, "acme", run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != tasks.RunRunning || len(got.Checkpoints) != 2 || got.Checkpoints[0].Step != 0 || got.Checkpoints[1].Step != 1 {
		t.Fatalf("after the kill: %s with %d checkpoints; want running with steps 0 and 1", got.Status, len(got.Checkpoints))
	}
	var state struct {
		Turns    int             `json:"turns"`
		Messages []agent.Message `json:"messages"`
	}
	if err := json.Unmarshal(got.Checkpoints[1].State, &state); err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, m := range state.Messages {
		roles = append(roles, string(m.Role))
	}
	if state.Turns != 2 || strings.Join(roles, ",") != "system,user,assistant,tool,assistant,tool" || state.Messages[5].Content != `"did s2"` {
		t.Fatalf("checkpoint state: turns %d, roles %v, last %+v; want the conversation after two steps", state.Turns, roles, state.Messages[len(state.Messages)-1])
	}

	r.clock.Add(31 * time.Second) // the 30s lease runs out
	r.q.Wake()
	r.worker(t, context.Background(), ta)
	done := r.waitRun(t, run.ID, tasks.RunSucceeded)

	if calls := strings.Join(r.toolCalls(), ","); calls != `step {"name":"s1"},step {"name":"s2"},step {"name":"s3"},step {"name":"s4"}` {
		t.Errorf("tool calls %s; want each step once", calls)
	}
	reqs := srv.requests()
	if len(reqs) != 6 {
		t.Fatalf("the server got %d requests, want 6", len(reqs))
	}
	// The resumed request is the one the kill interrupted, message for
	// message.
	if !sameJSON(t, reqs[3]["messages"], reqs[2]["messages"]) {
		t.Errorf("resumed conversation\n%s\nwant the interrupted one\n%s", jsonOf(reqs[3]["messages"]), jsonOf(reqs[2]["messages"]))
	}
	if n := len(messagesOf(reqs[5])); n != 10 {
		t.Errorf("the last request has %d messages, want 10 (system, user, four calls and their results)", n)
	}
	var steps []int
	for _, cp := range done.Checkpoints {
		steps = append(steps, cp.Step)
	}
	if !slices.Equal(steps, []int{0, 1, 2, 3}) || done.Attempt != 1 {
		t.Errorf("finished run: checkpoints %v, attempt %d", steps, done.Attempt)
	}
	evs := r.events(t, task, run.ID)
	resumed := slices.ContainsFunc(ofType[streams.Status](t, evs), func(s streams.Status) bool { return s.Detail == "resuming at step 3" })
	if !resumed {
		t.Errorf("no status event says the run resumed at step 3")
	}
	if text := ofType[streams.Text](t, evs); len(text) != 1 || text[0].Text != "All four steps are done." {
		t.Errorf("text events %s", jsonOf(text))
	}
}

// taReporter is a tasks.Reporter that keeps what it is given, validating
// events as the log would.
type taReporter struct {
	events      []streams.Event
	checkpoints []tasks.Checkpoint
}

func (r *taReporter) Emit(ctx context.Context, ps ...streams.Payload) error {
	for _, p := range ps {
		ev, err := streams.NewEvent(p)
		if err != nil {
			return err
		}
		ev.TraceID = vigil.TraceID(ctx)
		r.events = append(r.events, ev)
	}
	return nil
}

func (r *taReporter) Checkpoint(_ context.Context, step int, state json.RawMessage) error {
	r.checkpoints = append(r.checkpoints, tasks.Checkpoint{Step: step, State: state})
	return nil
}

// execute runs spec once with the agent over a registry of the test tools,
// without a store, and returns the outcome, the error and the reporter.
func execute(t *testing.T, model agent.Model, spec tasks.Spec, mod func(*agent.TaskAgentOptions)) (tasks.Outcome, error, *taReporter, []string) {
	t.Helper()
	var mu sync.Mutex
	var calls []string
	reg := taRegistry(t, func() time.Time { return taNow }, func(c string) { mu.Lock(); calls = append(calls, c); mu.Unlock() })
	opts := agent.TaskAgentOptions{Model: model, Registry: reg, Now: func() time.Time { return taNow }, Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&opts)
	}
	ta, err := agent.NewTaskAgent(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.Validate(); err != nil {
		t.Fatalf("spec: %v", err)
	}
	rep := &taReporter{}
	run := tasks.Run{ID: "run_t1", Tenant: "acme", TaskID: "tsk_t1", Spec: spec, Slot: taNow, Attempt: 1, Status: tasks.RunRunning, CreatedAt: taNow}
	out, err := ta.Execute(context.Background(), run, rep)
	mu.Lock()
	defer mu.Unlock()
	return out, err, rep, slices.Clone(calls)
}

// callsTool answers every turn with a call of tool with args.
func callsTool(tool, args string) modelFunc {
	n := 0
	return func(context.Context, []agent.Message, []agent.Tool, agent.Options) (agent.Response, error) {
		n++
		return agent.Response{ToolCalls: []agent.ToolCall{{ID: fmt.Sprintf("c%d", n), Name: tool, Arguments: json.RawMessage(args)}}}, nil
	}
}

// The loop's limits and failures, and how the worker is to classify them.
func TestTaskAgentLimitsAndErrors(t *testing.T) {
	spec := tasks.Spec{Title: "Steps", Kind: tasks.KindLongRunning, Instruction: "Make steps.", Tools: []string{"step", "table"}}

	t.Run("steps run out", func(t *testing.T) {
		_, err, rep, calls := execute(t, callsTool("step", `{"name":"again"}`), spec, func(o *agent.TaskAgentOptions) { o.MaxSteps = 3 })
		if class, _ := tasks.Classify(err); class != tasks.ErrorPermanent || !strings.Contains(fmt.Sprint(err), "3 steps") {
			t.Errorf("error %v (class %s); want a permanent error naming the limit", err, class)
		}
		if len(calls) != 3 || len(rep.checkpoints) != 3 {
			t.Errorf("%d calls, %d checkpoints; want 3 of each", len(calls), len(rep.checkpoints))
		}
	})

	t.Run("model fails", func(t *testing.T) {
		failing := modelFunc(func(context.Context, []agent.Message, []agent.Tool, agent.Options) (agent.Response, error) {
			return agent.Response{}, errors.New("502 bad gateway")
		})
		_, err, _, _ := execute(t, failing, spec, nil)
		if class, _ := tasks.Classify(err); class != tasks.ErrorTemporary || !strings.Contains(fmt.Sprint(err), "502") {
			t.Errorf("error %v (class %s); want a temporary error", err, class)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		slow := modelFunc(func(ctx context.Context, _ []agent.Message, _ []agent.Tool, _ agent.Options) (agent.Response, error) {
			<-ctx.Done()
			return agent.Response{}, ctx.Err()
		})
		_, err, _, _ := execute(t, slow, spec, func(o *agent.TaskAgentOptions) { o.Deadline = 20 * time.Millisecond })
		if class, _ := tasks.Classify(err); class != tasks.ErrorPermanent || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v (class %s); want a permanent deadline error", err, class)
		}
	})

	t.Run("unknown tool and parts", func(t *testing.T) {
		var seen [][]agent.Message
		model := modelFunc(func(_ context.Context, msgs []agent.Message, tools []agent.Tool, _ agent.Options) (agent.Response, error) {
			seen = append(seen, slices.Clone(msgs))
			switch len(seen) {
			case 1:
				return agent.Response{Text: "Let me look.", ToolCalls: []agent.ToolCall{
					{ID: "c1", Name: "launch_rockets", Arguments: json.RawMessage(`{}`)},
					{ID: "c2", Name: "table", Arguments: json.RawMessage(`{}`)},
				}}, nil
			}
			return agent.Response{Text: "Here is the table.", Source: "test"}, nil
		})
		out, err, rep, calls := execute(t, model, spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		if out.Summary != "Here is the table." || !sameJSON(t, out.Result, `{"text":"Here is the table.","steps":2,"calls":1,"model":"test"}`) {
			t.Errorf("outcome %+v", out)
		}
		if len(calls) != 1 || !strings.HasPrefix(calls[0], "table") {
			t.Errorf("tool calls %q; want the table tool's only", calls)
		}
		var kinds []string
		for _, e := range rep.events {
			if e.Type != streams.TypeStatus {
				kinds = append(kinds, e.Type)
			}
			if e.TraceID != tasks.RunTraceID("run_t1") {
				t.Errorf("%s event on trace %q", e.Type, e.TraceID)
			}
		}
		if want := []string{"reasoning", "tool_call", "tool_error", "tool_call", "tool_result", "table"}; !slices.Equal(kinds, want) {
			t.Errorf("events %v, want %v", kinds, want)
		}
		te := find[streams.ToolError](t, rep.events)
		if te.Tool != "launch_rockets" || !strings.Contains(te.Error, "not among this task's tools (step, table)") {
			t.Errorf("tool_error %+v", te)
		}
		second := seen[1]
		if n := len(second); n != 5 || second[3].ToolCallID != "c1" || !strings.Contains(second[3].Content, "not among") || second[4].Content != `{"rows":1}` {
			t.Errorf("the model's second turn saw %s", jsonOf(second))
		}
	})
}

// Without an LLM the step executor runs the task, and the notification
// comes from the domain's template, in the task's language.
func TestTaskAgentOffline(t *testing.T) {
	reminder := tasks.Spec{
		Title: "提醒给妈妈打电话", Kind: tasks.KindLongRunning, Instruction: "提醒用户：给妈妈打电话。",
		Slots: map[string]any{"message": "给妈妈打电话"},
	}
	out, err, _, _ := execute(t, nil, reminder, nil)
	if err != nil || out.Summary != "提醒：给妈妈打电话" {
		t.Errorf("reminder: %q, %v", out.Summary, err)
	}

	weather := tasks.Spec{
		Title: "Weather", Kind: tasks.KindLongRunning, Trigger: tasks.Trigger{TZ: "Asia/Shanghai"},
		Instruction: "Send the user the weather forecast for Beijing.",
		Slots:       map[string]any{"city": "Beijing"},
		Steps:       []tasks.Step{{Tool: "weather", Args: map[string]any{"city": "{{city}}", "date": "2026-11-23"}}},
	}
	out, err, rep, calls := execute(t, agent.Offline{}, weather, nil)
	want := "Weather in Beijing (2026-11-22):\n" + `{"city":"Beijing","date":"2026-11-23","forecast":"sunny","high_c":18}`
	if err != nil || out.Summary != want || len(calls) != 1 || len(rep.checkpoints) != 1 {
		t.Errorf("weather: %q, %v, %d calls, %d checkpoints; want %q after one call", out.Summary, err, len(calls), len(rep.checkpoints), want)
	}
}

// A monitor judged by the model: the source is read, the condition (when
// there is one) checked first, the model asked for a verdict, and the run
// notifies only when it holds.
func TestTaskAgentMonitor(t *testing.T) {
	verdict := func(args string) agent.Response {
		return agent.Response{ToolCalls: []agent.ToolCall{{ID: "v", Name: "verdict", Arguments: json.RawMessage(args)}}}
	}
	cases := []struct {
		name      string
		condition string
		verdicts  []string // the judge's answers, in turn
		wantQuiet bool
		wantAsked int // judge calls
	}{
		{name: "holds", verdicts: []string{`{"holds":true,"reason":"Heavy snow is forecast."}`}, wantAsked: 1},
		{name: "does not hold", verdicts: []string{`{"holds":false,"reason":"No snow."}`}, wantQuiet: true, wantAsked: 1},
		{name: "re-asked", verdicts: []string{`{"holds":"yes"}`, `{"holds":true,"reason":"Snow."}`}, wantAsked: 2},
		{name: "no verdict", verdicts: []string{`{}`, `{}`}, wantQuiet: true, wantAsked: 2},
		{name: "condition first", condition: "value.snow_cm > 10", wantQuiet: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			asked, wrote := 0, 0
			model := modelFunc(func(_ context.Context, msgs []agent.Message, tools []agent.Tool, _ agent.Options) (agent.Response, error) {
				if len(tools) == 1 && tools[0].Name == "verdict" {
					asked++
					if !strings.Contains(msgs[1].Content, "heavy snow tomorrow") {
						t.Errorf("the judge was not shown the value: %q", msgs[1].Content)
					}
					return verdict(c.verdicts[min(asked, len(c.verdicts))-1]), nil
				}
				wrote++
				if !strings.Contains(msgs[1].Content, "condition holds now") {
					t.Errorf("the notification's prompt lacks the verdict: %q", msgs[1].Content)
				}
				return agent.Response{Text: "Snow tomorrow in Oslo: take your boots."}, nil
			})
			spec := tasks.Spec{
				Title: "Snow in Oslo", Kind: tasks.KindMonitor, Trigger: tasks.Trigger{Every: tasks.Duration(time.Hour)},
				Instruction: "Tell me when snow is forecast in {{city}}.", Slots: map[string]any{"city": "Oslo"},
				Monitor: &tasks.Monitor{Source: tasks.Step{Tool: "forecast", Args: map[string]any{"city": "{{city}}"}},
					Condition: c.condition, Judge: "the forecast mentions snow"},
			}
			out, err, rep, calls := execute(t, model, spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			if asked != c.wantAsked || len(calls) != 1 {
				t.Errorf("judge asked %d times, %d source calls; want %d, 1", asked, len(calls), c.wantAsked)
			}
			var res struct {
				Value json.RawMessage `json:"value"`
				Holds bool            `json:"holds"`
			}
			if err := json.Unmarshal(out.Result, &res); err != nil || res.Holds == c.wantQuiet || !strings.Contains(string(res.Value), "heavy snow") {
				t.Errorf("result %s", out.Result)
			}
			if c.wantQuiet {
				if !out.Quiet || wrote != 0 {
					t.Errorf("outcome %+v after %d notification turns; want quiet, none", out, wrote)
				}
				return
			}
			if out.Quiet || out.Summary != "Snow tomorrow in Oslo: take your boots." || wrote != 1 {
				t.Errorf("outcome %+v", out)
			}
			if len(rep.checkpoints) != 1 || !strings.Contains(string(rep.checkpoints[0].State), `"holds":true`) {
				t.Errorf("checkpoints %s; want the verdict checkpointed", jsonOf(rep.checkpoints))
			}
		})
	}
}

// The checkpointed conversation stays under MaxState: older results are
// elided and older turns dropped, and what the model reads stays well
// formed: every tool result answers a call before it.
func TestTaskAgentStateBounded(t *testing.T) {
	const limit = 3000
	turns := 0
	model := modelFunc(func(_ context.Context, msgs []agent.Message, _ []agent.Tool, _ agent.Options) (agent.Response, error) {
		calls := map[string]bool{}
		for i, m := range msgs {
			for _, c := range m.ToolCalls {
				calls[c.ID] = true
			}
			if m.Role == agent.RoleTool && !calls[m.ToolCallID] {
				t.Errorf("turn %d: message %d answers %s, which no earlier message calls", turns+1, i, m.ToolCallID)
			}
		}
		if msgs[0].Role != agent.RoleSystem || msgs[1].Role != agent.RoleUser {
			t.Errorf("turn %d: the task's prompt is gone", turns+1)
		}
		if last := msgs[len(msgs)-1]; turns > 0 && !strings.HasPrefix(last.Content, `"did x`) {
			t.Errorf("turn %d: the last result reads %q; want it whole", turns+1, last.Content)
		}
		turns++
		if turns > 8 {
			return agent.Response{Text: "Done."}, nil
		}
		return agent.Response{ToolCalls: []agent.ToolCall{{ID: fmt.Sprintf("c%d", turns), Name: "step",
			Arguments: json.RawMessage(fmt.Sprintf(`{"name":%q}`, strings.Repeat("x", 400)))}}}, nil
	})
	spec := tasks.Spec{Title: "Many steps", Kind: tasks.KindLongRunning, Instruction: "Make many steps.", Tools: []string{"step"}}
	out, err, rep, _ := execute(t, model, spec, func(o *agent.TaskAgentOptions) { o.MaxState = limit })
	if err != nil || out.Summary != "Done." {
		t.Fatalf("%+v, %v", out, err)
	}
	if len(rep.checkpoints) != 8 {
		t.Fatalf("%d checkpoints, want 8", len(rep.checkpoints))
	}
	for i, cp := range rep.checkpoints {
		if len(cp.State) > limit+200 {
			t.Errorf("checkpoint %d is %d bytes; want about %d at most", i, len(cp.State), limit)
		}
	}
	var last struct {
		Messages []agent.Message `json:"messages"`
	}
	if err := json.Unmarshal(rep.checkpoints[7].State, &last); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(last.Messages[2].Content, "left out") || last.Messages[len(last.Messages)-2].ToolCalls[0].ID != "c8" {
		t.Errorf("last checkpoint's conversation: %s", jsonOf(last.Messages))
	}
}

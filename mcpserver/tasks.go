package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// taskTools are the tools of the task life: create, confirm, read, change,
// pause, resume, delete, run, and read runs.
func (s *Server) taskTools() []server.ServerTool {
	return []server.ServerTool{
		newTool[CreateTaskInput, CreateTaskOutput](s, "create_task", "Create a task",
			"Create a draft task, either from a free-text request (request, e.g. \"every morning at 8 send me the weather in Paris\"; "+
				"tz names the user's time zone) or from structured fields (title, kind, trigger, instruction, slots, tools, priority, …). "+
				"Fields given beside a request fill or override what the planner read. "+
				"The result is the draft and what is missing: when a required slot is missing the server asks the user (elicitation) "+
				"if the client supports it, else it answers status needs_input with the question and the missing slots' schema; "+
				"call again with the request and the answers in slots (or a trigger for a missing time). "+
				"A draft never runs: confirm_task activates it.",
			PermTasksWrite, write, s.createTask),
		newTool[TaskIDInput, TaskOutput](s, "confirm_task", "Confirm a draft task",
			"Activate a draft task: it starts firing on its trigger. The result shows its next fire time.",
			PermTasksWrite, idempotent, s.taskAction("Confirmed", Tasks.Confirm)),
		newTool[ListTasksInput, ListTasksOutput](s, "list_tasks", "List tasks",
			"List your tasks in creation order, optionally by status and kind. Pass next as cursor for the following page.",
			PermTasksRead, readOnly, s.listTasks),
		newTool[TaskIDInput, TaskOutput](s, "get_task", "Get a task",
			"Get one task with its spec, status, version and, when active, its next fire time.",
			PermTasksRead, readOnly, s.getTask),
		newTool[UpdateTaskInput, TaskOutput](s, "update_task", "Change a task",
			"Change a task: the fields given replace the task's (null removes an optional one), the others stay. "+
				"It makes a new version; pass the version you read to refuse to overwrite a change made since.",
			PermTasksWrite, write, s.updateTask),
		newTool[TaskIDInput, TaskOutput](s, "pause_task", "Pause a task",
			"Pause an active task: it stops firing until resume_task.",
			PermTasksWrite, idempotent, s.taskAction("Paused", Tasks.Pause)),
		newTool[TaskIDInput, TaskOutput](s, "resume_task", "Resume a task",
			"Resume a paused task: it fires again from its next slot after now.",
			PermTasksWrite, idempotent, s.taskAction("Resumed", Tasks.Resume)),
		newTool[TaskIDInput, DeleteTaskOutput](s, "delete_task", "Delete a task",
			"Delete a task and its runs, in any state. Its thread and history stay.",
			PermTasksWrite, removes, s.deleteTask),
		newTool[RunTaskInput, RunOutput](s, "run_task", "Run a task now",
			"Run a task now (a draft, active or paused one), whatever its schedule. With wait_seconds the call waits for the run to finish, "+
				"reporting each step as a progress notification when the request carries a progress token; it returns the run either way "+
				"(done says whether it finished).",
			PermTasksWrite, write, s.runTask),
		newTool[ListRunsInput, ListRunsOutput](s, "list_runs", "List a task's runs",
			"List a task's runs, newest first. Pass next as cursor for the following page.",
			PermTasksRead, readOnly, s.listRuns),
		newTool[RunIDInput, RunOutput](s, "get_run", "Get a run",
			"Get one run with its status, checkpoints, result or error.",
			PermTasksRead, readOnly, s.getRun),
	}
}

// SpecFields are a task's fields as create_task and update_task take them:
// tasks.Spec without its webhooks, which carry secrets and are managed over
// the REST API.
type SpecFields struct {
	Title       string         `json:"title,omitempty" jsonschema:"maxLength=200" jsonschema_description:"A short name shown in lists."`
	Kind        tasks.Kind     `json:"kind,omitempty" jsonschema:"enum=periodic,enum=one_shot,enum=monitor,enum=long_running" jsonschema_description:"periodic: on a cron or interval; one_shot: once, at trigger.at; monitor: polls a source and fires when its condition holds; long_running: many checkpointed steps."`
	Trigger     *tasks.Trigger `json:"trigger,omitempty" jsonschema_description:"When it fires: cron (five fields) with tz, or at (RFC 3339), or every (a duration); event for monitors woken by ingested events."`
	Instruction string         `json:"instruction,omitempty" jsonschema_description:"What the task agent should do, in words."`
	Slots       map[string]any `json:"slots,omitempty" jsonschema_description:"The task's parameters, such as {\"city\": \"Paris\"}; steps refer to them as {{name}}."`
	Tools       []string       `json:"tools,omitempty" jsonschema_description:"The tools the task may call, name or name@version; empty means any."`
	Steps       []tasks.Step   `json:"steps,omitempty" jsonschema_description:"Tool calls made in order instead of an instruction."`
	Monitor     *tasks.Monitor `json:"monitor,omitempty" jsonschema_description:"For monitors: the source tool call and the condition (expr over value and prev) or judge (words)."`
	Priority    tasks.Priority `json:"priority,omitempty" jsonschema:"enum=high,enum=normal,enum=low" jsonschema_description:"Default normal."`
	Then        []string       `json:"then,omitempty" jsonschema_description:"Task ids to run after a run of this one succeeds."`
	CatchUp     tasks.CatchUp  `json:"catch_up,omitempty" jsonschema:"enum=skip,enum=run_once" jsonschema_description:"What to do with slots missed while the server was down; default run_once."`
}

// spec returns the fields as a tasks.Spec.
func (f SpecFields) spec() tasks.Spec {
	s := tasks.Spec{
		Title: f.Title, Kind: f.Kind, Instruction: f.Instruction, Slots: f.Slots, Tools: f.Tools,
		Steps: f.Steps, Monitor: f.Monitor, Priority: f.Priority, Then: f.Then, CatchUp: f.CatchUp,
	}
	if f.Trigger != nil {
		s.Trigger = *f.Trigger
	}
	return s
}

// TaskIDInput names one task.
type TaskIDInput struct {
	ID string `json:"id" jsonschema:"pattern=^[A-Za-z0-9_.-]+$,maxLength=128" jsonschema_description:"The task's id (tsk_…)."`
}

// TaskOutput is a task as the task tools return it (webhook secrets
// removed).
type TaskOutput struct {
	Task tasks.Task `json:"task"`
}

// taskText describes t in one line.
func taskText(verb string, t tasks.Task) string {
	text := fmt.Sprintf("%s task %s %q (%s, %s, version %d)", verb, t.ID, t.Title, t.Kind, t.Status, t.Version)
	if t.NextFire != nil {
		text += "; next fire " + t.NextFire.UTC().Format(time.RFC3339)
	}
	return text + "."
}

func (s *Server) getTask(ctx context.Context, c call[TaskIDInput]) (*mcp.CallToolResult, error) {
	t, err := s.opts.Tasks.Get(ctx, c.in.ID)
	if err != nil {
		return nil, err
	}
	return structured(TaskOutput{Task: t.Redacted()}, taskText("Task", t)), nil
}

// taskAction returns the handler of a state change.
func (s *Server) taskAction(verb string, act func(Tasks, context.Context, string) (tasks.Task, error)) toolFunc[TaskIDInput] {
	return func(ctx context.Context, c call[TaskIDInput]) (*mcp.CallToolResult, error) {
		t, err := act(s.opts.Tasks, ctx, c.in.ID)
		if err != nil {
			return nil, err
		}
		return structured(TaskOutput{Task: t.Redacted()}, taskText(verb, t)), nil
	}
}

// ListTasksInput are the arguments of list_tasks.
type ListTasksInput struct {
	Status tasks.Status `json:"status,omitempty" jsonschema:"enum=draft,enum=active,enum=paused,enum=archived" jsonschema_description:"Only tasks in this state."`
	Kind   tasks.Kind   `json:"kind,omitempty" jsonschema:"enum=periodic,enum=one_shot,enum=monitor,enum=long_running" jsonschema_description:"Only tasks of this kind."`
	Limit  int          `json:"limit,omitempty" jsonschema:"minimum=1,maximum=500" jsonschema_description:"Page size; default 50."`
	Cursor string       `json:"cursor,omitempty" jsonschema_description:"The next of the previous page."`
}

// ListTasksOutput is a page of tasks.
type ListTasksOutput struct {
	Tasks []tasks.Task `json:"tasks"`
	Next  string       `json:"next,omitempty" jsonschema_description:"The cursor of the following page; absent after the last."`
}

func (s *Server) listTasks(ctx context.Context, c call[ListTasksInput]) (*mcp.CallToolResult, error) {
	page, err := s.opts.Tasks.List(ctx, tasks.TaskFilter{Status: c.in.Status, Kind: c.in.Kind, Limit: c.in.Limit, After: c.in.Cursor})
	if err != nil {
		return nil, err
	}
	out := ListTasksOutput{Tasks: make([]tasks.Task, 0, len(page.Tasks)), Next: page.Next}
	var lines []string
	for _, t := range page.Tasks {
		out.Tasks = append(out.Tasks, t.Redacted())
		lines = append(lines, fmt.Sprintf("%s %q (%s, %s)", t.ID, t.Title, t.Kind, t.Status))
	}
	text := fmt.Sprintf("%d tasks", len(lines))
	if len(lines) > 0 {
		text += ": " + strings.Join(lines, "; ")
	}
	if page.Next != "" {
		text += "; more with cursor " + page.Next
	}
	return structured(out, text), nil
}

// UpdateTaskInput are the arguments of update_task: the task, the version
// read, and the fields to change.
type UpdateTaskInput struct {
	ID      string `json:"id" jsonschema:"pattern=^[A-Za-z0-9_.-]+$,maxLength=128" jsonschema_description:"The task's id."`
	Version int64  `json:"version,omitempty" jsonschema:"minimum=1" jsonschema_description:"The version you read; the update fails if the task changed since. Default: the current version."`
	SpecFields
}

func (s *Server) updateTask(ctx context.Context, c call[UpdateTaskInput]) (*mcp.CallToolResult, error) {
	cur, err := s.opts.Tasks.Get(ctx, c.in.ID)
	if err != nil {
		return nil, err
	}
	var args map[string]json.RawMessage
	if err := c.req.BindArguments(&args); err != nil {
		return nil, vigil.Errorf(vigil.Invalid, "arguments: %v", err)
	}
	delete(args, "id")
	delete(args, "version")
	if len(args) == 0 {
		return nil, vigil.Errorf(vigil.Invalid, "give at least one field to change (title, trigger, instruction, …)")
	}
	spec, err := mergeSpec(cur.Spec, args)
	if err != nil {
		return nil, err
	}
	version := c.in.Version
	if version == 0 {
		version = cur.Version
	}
	t, err := s.opts.Tasks.Update(ctx, c.in.ID, version, spec)
	if err != nil {
		return nil, err
	}
	return structured(TaskOutput{Task: t.Redacted()}, taskText("Updated", t)), nil
}

// mergeSpec returns cur with the top-level fields in patch replaced (a
// JSON null removes the field), as a JSON merge patch of one level.
func mergeSpec(cur tasks.Spec, patch map[string]json.RawMessage) (tasks.Spec, error) {
	raw, err := json.Marshal(cur)
	if err != nil {
		return tasks.Spec{}, fmt.Errorf("mcpserver: encode spec: %w", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return tasks.Spec{}, fmt.Errorf("mcpserver: decode spec: %w", err)
	}
	for k, v := range patch {
		if string(v) == "null" {
			delete(fields, k)
			continue
		}
		fields[k] = v
	}
	raw, _ = json.Marshal(fields)
	var out tasks.Spec
	if err := json.Unmarshal(raw, &out); err != nil {
		return tasks.Spec{}, vigil.Errorf(vigil.Invalid, "spec: %v", err)
	}
	return out, nil
}

// DeleteTaskOutput is the result of delete_task.
type DeleteTaskOutput struct {
	Deleted string `json:"deleted" jsonschema_description:"The id of the task deleted."`
}

func (s *Server) deleteTask(ctx context.Context, c call[TaskIDInput]) (*mcp.CallToolResult, error) {
	if err := s.opts.Tasks.Delete(ctx, c.in.ID); err != nil {
		return nil, err
	}
	return structured(DeleteTaskOutput{Deleted: c.in.ID}, "Deleted task "+c.in.ID+"."), nil
}

// RunTaskInput are the arguments of run_task.
type RunTaskInput struct {
	ID          string `json:"id" jsonschema:"pattern=^[A-Za-z0-9_.-]+$,maxLength=128" jsonschema_description:"The task's id."`
	WaitSeconds int    `json:"wait_seconds,omitempty" jsonschema:"minimum=0,maximum=300" jsonschema_description:"Wait up to this long for the run to finish, reporting progress; default 0: return once it is queued."`
}

// RunOutput is a run as the run tools return it.
type RunOutput struct {
	Run tasks.Run `json:"run"`
	// Done is set by run_task: whether the run finished within the wait.
	Done bool `json:"done" jsonschema_description:"Whether the run has finished (succeeded, failed or cancelled)."`
}

func runText(verb string, r tasks.Run) string {
	text := fmt.Sprintf("%s run %s of task %s: %s", verb, r.ID, r.TaskID, r.Status)
	if r.Error != "" {
		text += " (" + r.Error + ")"
	}
	return text + "."
}

func (s *Server) runTask(ctx context.Context, c call[RunTaskInput]) (*mcp.CallToolResult, error) {
	wait := min(time.Duration(c.in.WaitSeconds)*time.Second, s.opts.MaxRunWait)
	p := newProgress(ctx, c.req)

	// Follow the task's thread before the run exists, so that no change
	// of it can pass unseen.
	var sub *streams.Subscription
	if wait > 0 && s.opts.Hub != nil {
		t, err := s.opts.Tasks.Get(ctx, c.in.ID)
		if err != nil {
			return nil, err
		}
		if sub, err = s.opts.Hub.Subscribe(ctx, c.p.Tenant, t.ThreadID); err != nil {
			return nil, err
		}
		defer sub.Close()
	}
	run, err := s.opts.Tasks.RunNow(ctx, c.in.ID)
	if err != nil {
		return nil, err
	}
	if sub == nil {
		// (With a subscription, the run's own task_status event says so.)
		p.report("run " + run.ID + " " + string(run.Status))
	}
	if wait > 0 {
		run, err = s.awaitRun(ctx, run, sub, wait, p)
		if err != nil {
			return nil, err
		}
	}
	done, verb := run.Status.Terminal(), "Started"
	if done {
		verb = "Ran"
	}
	return structured(RunOutput{Run: run.Redacted(), Done: done}, runText(verb, run)), nil
}

// awaitRun waits until run finishes or wait passes, reporting each change
// of it as progress, and returns it as it then is. Without a subscription
// it polls.
func (s *Server) awaitRun(ctx context.Context, run tasks.Run, sub *streams.Subscription, wait time.Duration, p *progress) (tasks.Run, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var poll <-chan time.Time
	var frames <-chan streams.Frame
	if sub != nil {
		frames = sub.C()
	} else {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		poll = tick.C
	}
	last := run.Status
	for !last.Terminal() {
		select {
		case fr, ok := <-frames:
			if !ok {
				frames, sub = nil, nil // cut off: poll instead
				tick := time.NewTicker(500 * time.Millisecond)
				defer tick.Stop()
				poll = tick.C
				continue
			}
			if fr.Event.RunID != run.ID {
				continue
			}
			if fr.Event.Type != streams.TypeTaskStatus && fr.Event.Type != streams.TypeDone {
				p.report(describe(fr.Event))
				continue
			}
			if !ends(fr.Event) {
				p.report(describe(fr.Event))
			}
		case <-poll:
		case <-timer.C:
			return s.opts.Tasks.GetRun(ctx, run.ID)
		case <-ctx.Done():
			return tasks.Run{}, ctx.Err()
		}
		r, err := s.opts.Tasks.GetRun(ctx, run.ID)
		if err != nil {
			return tasks.Run{}, err
		}
		if r.Status != last && sub == nil && !r.Status.Terminal() {
			p.report("run " + r.ID + " " + string(r.Status))
		}
		run, last = r, r.Status
	}
	return run, nil
}

// ends reports whether e says the run ended. The end is not reported as
// progress: the result says it, and mcp-go may write a notification sent
// just before the result after it, or not at all (a 2026-07-28 POST
// stream stops forwarding once the result is written).
func ends(e streams.Event) bool {
	switch e.Type {
	case streams.TypeDone:
		return true
	case streams.TypeTaskStatus:
		st, err := streams.Decode[streams.TaskStatus](e)
		return err == nil && tasks.RunStatus(st.To).Terminal()
	}
	return false
}

// describe says what a run event means, for a progress message.
func describe(e streams.Event) string {
	switch e.Type {
	case streams.TypeTaskStatus:
		if st, err := streams.Decode[streams.TaskStatus](e); err == nil {
			return "run " + st.RunID + " " + st.To
		}
	case streams.TypeStatus:
		if st, err := streams.Decode[streams.Status](e); err == nil {
			return strings.TrimSpace(string(st.Phase) + " " + st.Detail)
		}
	case streams.TypeToolCall:
		if tc, err := streams.Decode[streams.ToolCall](e); err == nil {
			return "calling " + tc.Tool
		}
	case streams.TypeDone:
		if d, err := streams.Decode[streams.Done](e); err == nil {
			return strings.TrimSpace("done " + string(d.Status) + " " + d.Summary)
		}
	}
	return ""
}

// progress sends notifications/progress for the request's progress token;
// without a token it does nothing.
type progress struct {
	ctx   context.Context
	token mcp.ProgressToken
	n     float64
}

func newProgress(ctx context.Context, req mcp.CallToolRequest) *progress {
	p := &progress{ctx: ctx}
	if req.Params.Meta != nil {
		p.token = req.Params.Meta.ProgressToken
	}
	return p
}

func (p *progress) report(msg string) {
	if p.token == nil || msg == "" {
		return
	}
	srv := server.ServerFromContext(p.ctx)
	if srv == nil {
		return
	}
	p.n++
	_ = srv.SendNotificationToClient(p.ctx, string(mcp.MethodNotificationProgress), map[string]any{
		"progressToken": p.token,
		"progress":      p.n,
		"message":       msg,
	})
}

// ListRunsInput are the arguments of list_runs.
type ListRunsInput struct {
	TaskID string `json:"task_id" jsonschema:"pattern=^[A-Za-z0-9_.-]+$,maxLength=128" jsonschema_description:"The task whose runs to list."`
	Limit  int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=500" jsonschema_description:"Page size; default 50."`
	Cursor string `json:"cursor,omitempty" jsonschema_description:"The next of the previous page."`
}

// ListRunsOutput is a page of runs, newest first.
type ListRunsOutput struct {
	Runs []tasks.Run `json:"runs"`
	Next string      `json:"next,omitempty" jsonschema_description:"The cursor of the following page; absent after the last."`
}

func (s *Server) listRuns(ctx context.Context, c call[ListRunsInput]) (*mcp.CallToolResult, error) {
	page, err := s.opts.Tasks.ListRuns(ctx, tasks.RunFilter{TaskID: c.in.TaskID, Limit: c.in.Limit, After: c.in.Cursor})
	if err != nil {
		return nil, err
	}
	out := ListRunsOutput{Runs: make([]tasks.Run, 0, len(page.Runs)), Next: page.Next}
	counts := map[tasks.RunStatus]int{}
	for _, r := range page.Runs {
		out.Runs = append(out.Runs, r.Redacted())
		counts[r.Status]++
	}
	var parts []string
	for _, st := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
	}
	text := fmt.Sprintf("%d runs of task %s", len(out.Runs), c.in.TaskID)
	if len(parts) > 0 {
		text += ": " + strings.Join(parts, ", ")
	}
	return structured(out, text), nil
}

// RunIDInput names one run.
type RunIDInput struct {
	ID string `json:"id" jsonschema:"pattern=^[A-Za-z0-9_.-]+$,maxLength=128" jsonschema_description:"The run's id (run_…)."`
}

func (s *Server) getRun(ctx context.Context, c call[RunIDInput]) (*mcp.CallToolResult, error) {
	r, err := s.opts.Tasks.GetRun(ctx, c.in.ID)
	if err != nil {
		return nil, err
	}
	return structured(RunOutput{Run: r.Redacted(), Done: r.Status.Terminal()}, runText("Run", r)), nil
}

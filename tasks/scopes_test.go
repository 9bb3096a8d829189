package tasks_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// scopedRig is the rig with a Manager that records owners' scopes from
// auth's default table, and two tools that need scopes: fetch (read:web,
// which a member's read:* covers) and mail (write:email, which it does
// not).
func scopedRig(t *testing.T) *rig {
	t.Helper()
	r := newRig(t)
	r.m = tasks.NewManager(tasks.Options{
		Store: &tasks.DispatchStore{Store: r.db, Queue: r.q}, Log: r.db, Now: r.clock.Now,
		OwnerScopes: auth.DefaultScopes().Of,
	})
	for name, scope := range map[string]string{"fetch": "read:web", "mail": "write:email"} {
		r.tool(t, name, func(context.Context, json.RawMessage) (toolsregistry.Output, error) {
			r.mu.Lock()
			r.called = append(r.called, name)
			r.mu.Unlock()
			return toolsregistry.Output{Value: json.RawMessage(`"` + name + ` done"`)}, nil
		}, func(tool *toolsregistry.Tool) { tool.Scopes = []string{scope} })
	}
	return r
}

func as(user string, roles ...string) context.Context {
	return vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: user, Roles: roles})
}

// mailTask fetches a page and mails it: it needs read:web and write:email.
func mailTask(title string) tasks.Spec {
	return tasks.Spec{
		Title: title, Kind: tasks.KindLongRunning,
		Steps: []tasks.Step{{Tool: "fetch"}, {Tool: "mail"}},
	}
}

// runAs creates and confirms s as the principal in ctx, runs it now and
// returns the task and the run.
func (r *rig) runAs(t *testing.T, ctx context.Context, s tasks.Spec) (tasks.Task, tasks.Run) {
	t.Helper()
	task, err := r.m.Create(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if task, err = r.m.Confirm(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	run, err := r.m.RunNow(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	return task, run
}

// Issues #5/#6: a run calls a tool only if the task's owner holds its
// scopes. The member's task may fetch (read:* covers read:web) but not
// mail; its run fails at once, for good, naming write:email. The
// developer's identical task runs through.
func TestRunHoldsOwnerScopes(t *testing.T) {
	r := scopedRig(t)
	r.worker(t, nil)
	member, mrun := r.runAs(t, as("mia", auth.Member), mailTask("member's digest"))
	dev, drun := r.runAs(t, as("dev", auth.Developer), mailTask("developer's digest"))

	if !slices.Equal(member.OwnerScopes, []string{"read:*"}) || !slices.Equal(dev.OwnerScopes, []string{"*"}) {
		t.Fatalf("recorded scopes: member %q, developer %q", member.OwnerScopes, dev.OwnerScopes)
	}
	failed := r.waitRun(t, mrun.ID, tasks.RunFailed)
	if failed.ErrorClass != tasks.ErrorPermanent || failed.Attempt != 1 {
		t.Errorf("member's run: class %s after %d attempts, want permanent after 1", failed.ErrorClass, failed.Attempt)
	}
	if !strings.Contains(failed.Error, `"write:email"`) || !strings.Contains(failed.Error, "owner's scopes (read:*)") {
		t.Errorf("member's run error %q does not name the missing scope and the owner's", failed.Error)
	}
	var toolErrs []streams.ToolError
	for _, e := range r.events(t, member, streams.TypeToolError) {
		te, err := streams.Decode[streams.ToolError](e)
		if err != nil {
			t.Fatal(err)
		}
		toolErrs = append(toolErrs, te)
	}
	if len(toolErrs) != 1 || toolErrs[0].Tool != "mail" || toolErrs[0].Retryable ||
		!strings.Contains(toolErrs[0].Error, `needs the scope "write:email"`) || !strings.Contains(toolErrs[0].Error, "read:*") {
		t.Errorf("tool_error events of the member's run: %+v", toolErrs)
	}

	done := r.waitRun(t, drun.ID, tasks.RunSucceeded)
	if !strings.Contains(string(done.Result), "mail done") {
		t.Errorf("developer's run result %s", done.Result)
	}
	calls := r.calls()
	slices.Sort(calls)
	if want := []string{"fetch", "fetch", "mail"}; !slices.Equal(calls, want) {
		t.Errorf("tool calls %q, want %q: the member's fetch and the developer's both", calls, want)
	}
}

// The scopes are recorded by the owner's own changes only, survive the
// bolt file, and tell "none" from "never recorded".
func TestOwnerScopesRecorded(t *testing.T) {
	r := scopedRig(t)
	mia, dev := as("mia", auth.Member), as("dev", auth.Developer)
	task, err := r.m.Create(mia, mailTask("digest"))
	if err != nil {
		t.Fatal(err)
	}
	// A developer who manages every task changes and confirms it: it still
	// runs with what its owner holds, not with the developer's "*".
	s := task.Spec
	s.Title = "digest, edited"
	if _, err := r.m.Update(dev, task.ID, 0, s); err != nil {
		t.Fatal(err)
	}
	if _, err := r.m.Confirm(dev, task.ID); err != nil {
		t.Fatal(err)
	}
	stored, err := r.db.Task(context.Background(), "acme", task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stored.OwnerScopes, []string{"read:*"}) || !slices.Equal(stored.Scopes(), []string{"read:*"}) {
		t.Errorf("after a developer's changes the stored task holds %q (Scopes %q), want the member's read:*", stored.OwnerScopes, stored.Scopes())
	}

	// An owner whose roles grant nothing records an empty list, which the
	// store keeps empty: not nil, which would read as never recorded.
	none, err := r.m.Create(as("ghost"), mailTask("no roles"))
	if err != nil {
		t.Fatal(err)
	}
	stored, err = r.db.Task(context.Background(), "acme", none.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.OwnerScopes == nil || len(stored.Scopes()) != 0 {
		t.Errorf("a task of an owner without scopes reads back as %#v (Scopes %q), want an empty list", stored.OwnerScopes, stored.Scopes())
	}

	// Without a table (no authentication configured) every owner holds
	// every scope; a task stored before scopes existed runs as before.
	open := tasks.NewManager(tasks.Options{Store: r.db, Log: r.db, Now: r.clock.Now})
	anyone, err := open.Create(as("local"), mailTask("open"))
	if err != nil || !slices.Equal(anyone.OwnerScopes, []string{"*"}) {
		t.Errorf("Create without a table: %q, %v; want *", anyone.OwnerScopes, err)
	}
	if got := (tasks.Task{}).Scopes(); !slices.Equal(got, []string{"*"}) {
		t.Errorf("a task without recorded scopes holds %q, want *", got)
	}
}

// taskReads is a Store that counts its Task calls.
type taskReads struct {
	tasks.Store
	n atomic.Int32
}

func (s *taskReads) Task(ctx context.Context, tenant, id string) (tasks.Task, error) {
	s.n.Add(1)
	return s.Store.Task(ctx, tenant, id)
}

// TestRunScopesReadOnce: the step executor takes the owner's scopes from
// the task the worker read when it took the run, rather than reading the
// task again.
func TestRunScopesReadOnce(t *testing.T) {
	r := newRig(t)
	reads := &taskReads{Store: r.db}
	task := r.active(t, tasks.Spec{Title: "echo", Kind: tasks.KindOneShot, Trigger: tasks.Trigger{At: t0.Add(time.Hour)},
		Steps: []tasks.Step{{Tool: "echo", Args: map[string]any{"x": 1}}}})
	r.worker(t, func(o *tasks.WorkerOptions) {
		o.Store = reads // no RunTaskReader: the worker reads the run, then its task
		o.Executor = tasks.NewStepExecutor(tasks.StepExecutorOptions{Registry: r.reg, Store: reads})
	})
	run, err := r.m.RunNow(r.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	r.waitRun(t, run.ID, tasks.RunSucceeded)
	if n := reads.n.Load(); n != 1 {
		t.Errorf("the task was read %d times for one run, want once (by the worker)", n)
	}
}

package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// ThreadedStore is a backend that is both a tasks.Store and the
// streams.Log of the tasks' threads, with the optional
// tasks.ThreadedCreator.
type ThreadedStore interface {
	tasks.Store
	streams.Log
	tasks.ThreadedCreator
}

// ThreadedCreator runs the conformance suite of tasks.ThreadedCreator.
// newStore is called once per subtest (twice in OtherLogIsUnsupported) and
// must return a store that shares nothing with the others, and that can
// make the three writes in one step.
func ThreadedCreator(t *testing.T, newStore func(t *testing.T) ThreadedStore) {
	t.Run("StoresAllThree", func(t *testing.T) { testThreadedStores(t, newStore(t)) })
	t.Run("ExistingThreadIsConflict", func(t *testing.T) { testThreadedThreadExists(t, newStore(t)) })
	t.Run("ExistingTaskIsConflict", func(t *testing.T) { testThreadedTaskExists(t, newStore(t)) })
	t.Run("InvalidStoresNothing", func(t *testing.T) { testThreadedInvalid(t, newStore(t)) })
	t.Run("OtherLogIsUnsupported", func(t *testing.T) { testThreadedOtherLog(t, newStore(t), newStore(t)) })
	t.Run("Concurrent", func(t *testing.T) { testThreadedConcurrent(t, newStore(t)) })
}

// threaded returns a thread, a draft task on it and the task's first
// event, all for tenant and task id.
func threaded(tenant, id string) (streams.Thread, tasks.Task, streams.Event) {
	task := sampleTask(tenant, id)
	task.Status = tasks.StatusDraft
	th := streams.Thread{ID: task.ThreadID, Tenant: tenant, Title: task.Title, CreatedAt: task.CreatedAt}
	ev, err := streams.NewEvent(streams.TaskStatus{TaskID: id, To: string(tasks.StatusDraft)})
	if err != nil {
		panic(err)
	}
	ev.TaskID, ev.TraceID, ev.TS = id, "trace-"+id, taskBase.Add(time.Second)
	return th, task, ev
}

// wantNothing fails unless neither the thread nor the task exists.
func wantNothing(t *testing.T, s ThreadedStore, th streams.Thread, task tasks.Task) {
	t.Helper()
	if _, err := s.Thread(t.Context(), th.Tenant, th.ID); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("Thread(%s/%s) after a failed create: err %v, want not found", th.Tenant, th.ID, err)
	}
	if _, err := s.Task(t.Context(), task.Tenant, task.ID); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("Task(%s/%s) after a failed create: err %v, want not found", task.Tenant, task.ID, err)
	}
}

func testThreadedStores(t *testing.T, s ThreadedStore) {
	ctx := t.Context()
	th, task, ev := threaded("acme", "tsk_1")
	id, err := s.CreateThreadedTask(ctx, s, th, task, ev)
	if err != nil {
		t.Fatalf("CreateThreadedTask: %v", err)
	}
	gotTh, err := s.Thread(ctx, th.Tenant, th.ID)
	if err != nil {
		t.Fatalf("Thread: %v", err)
	}
	if gotTh.ID != th.ID || gotTh.Tenant != th.Tenant || gotTh.Title != th.Title || !gotTh.CreatedAt.Equal(th.CreatedAt) {
		t.Errorf("Thread = %+v, want %+v", gotTh, th)
	}
	checkSame(t, "task", mustGetTask(t, s, task.Tenant, task.ID), task)
	page, err := s.Read(ctx, th.Tenant, th.ID, streams.ID{}, 10)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if len(page.Events) != 1 || page.Last != id {
		t.Fatalf("Read = %d events, last %v; want 1 event, last %v (the returned id)", len(page.Events), page.Last, id)
	}
	got := page.Events[0]
	if got.ID != id || got.ThreadID != th.ID || got.Type != ev.Type || got.TaskID != ev.TaskID ||
		got.TraceID != ev.TraceID || !got.TS.Equal(ev.TS) || canonical(t, got.Data) != canonical(t, ev.Data) {
		t.Errorf("event = %+v, want %+v with id %v", got, ev, id)
	}
	// The thread takes appends after its first event.
	next, err := s.Append(ctx, th.Tenant, th.ID, []streams.Event{ev})
	if err != nil || len(next) != 1 || !id.Less(next[0]) {
		t.Errorf("Append after the first event = %v, %v; want one id after %v", next, err, id)
	}
}

func testThreadedThreadExists(t *testing.T, s ThreadedStore) {
	ctx := t.Context()
	th, task, ev := threaded("acme", "tsk_1")
	if err := s.CreateThread(ctx, th); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateThreadedTask(ctx, s, th, task, ev); vigil.ErrorCode(err) != vigil.Conflict {
		t.Fatalf("CreateThreadedTask on an existing thread: err %v, want conflict", err)
	}
	if _, err := s.Task(ctx, task.Tenant, task.ID); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("Task after the conflict: err %v, want not found", err)
	}
	if page, err := s.Read(ctx, th.Tenant, th.ID, streams.ID{}, 10); err != nil || len(page.Events) != 0 {
		t.Errorf("the existing thread after the conflict: %d events, %v; want none", len(page.Events), err)
	}
}

func testThreadedTaskExists(t *testing.T, s ThreadedStore) {
	ctx := t.Context()
	th, task, ev := threaded("acme", "tsk_1")
	other := task
	other.ThreadID = "th_other"
	mustCreateTask(t, s, other)
	if _, err := s.CreateThreadedTask(ctx, s, th, task, ev); vigil.ErrorCode(err) != vigil.Conflict {
		t.Fatalf("CreateThreadedTask of an existing task: err %v, want conflict", err)
	}
	if _, err := s.Thread(ctx, th.Tenant, th.ID); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("Thread after the conflict: err %v, want not found", err)
	}
	checkSame(t, "the existing task", mustGetTask(t, s, task.Tenant, task.ID), other)
}

func testThreadedInvalid(t *testing.T, s ThreadedStore) {
	ctx := t.Context()
	for _, c := range []struct {
		name   string
		change func(th *streams.Thread, task *tasks.Task, ev *streams.Event)
	}{
		{"TaskOnAnotherThread", func(_ *streams.Thread, task *tasks.Task, _ *streams.Event) { task.ThreadID = "th_other" }},
		{"TaskOfAnotherTenant", func(_ *streams.Thread, task *tasks.Task, _ *streams.Event) { task.Tenant = "beta" }},
		{"BadThreadID", func(th *streams.Thread, task *tasks.Task, _ *streams.Event) { th.ID, task.ThreadID = "th/1", "th/1" }},
		{"BadTaskID", func(_ *streams.Thread, task *tasks.Task, _ *streams.Event) { task.ID = "tsk 1" }},
		{"DataNotJSON", func(_ *streams.Thread, _ *tasks.Task, ev *streams.Event) { ev.Data = []byte("{not json") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			th, task, ev := threaded("acme", "tsk_1")
			c.change(&th, &task, &ev)
			if _, err := s.CreateThreadedTask(ctx, s, th, task, ev); vigil.ErrorCode(err) != vigil.Invalid {
				t.Fatalf("err %v, want invalid", err)
			}
			if vigil.ValidID(th.ID) && vigil.ValidID(task.ID) {
				wantNothing(t, s, th, task)
			}
		})
	}
}

func testThreadedOtherLog(t *testing.T, s, other ThreadedStore) {
	ctx := t.Context()
	th, task, ev := threaded("acme", "tsk_1")
	if _, err := s.CreateThreadedTask(ctx, other, th, task, ev); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("CreateThreadedTask with another store's log: err %v, want errors.ErrUnsupported", err)
	}
	wantNothing(t, s, th, task)
	wantNothing(t, other, th, task)
}

func testThreadedConcurrent(t *testing.T, s ThreadedStore) {
	ctx := t.Context()
	const n = 32
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			th, task, ev := threaded("acme", fmt.Sprintf("tsk_%02d", i))
			_, errs[i] = s.CreateThreadedTask(ctx, s, th, task, ev)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("create %d: %v", i, err)
		}
	}
	page, err := s.ListTasks(ctx, "acme", tasks.TaskFilter{Limit: tasks.MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Tasks) != n {
		t.Fatalf("ListTasks = %d tasks, want %d", len(page.Tasks), n)
	}
	for _, task := range page.Tasks {
		if p, err := s.Read(ctx, "acme", task.ThreadID, streams.ID{}, 10); err != nil || len(p.Events) != 1 {
			t.Errorf("thread of %s: %d events, %v; want 1", task.ID, len(p.Events), err)
		}
	}
}

package redis_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/store/storetest"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

func TestTaskBatches(t *testing.T) {
	modes(t, func(t *testing.T, ropts redis.Options) {
		storetest.TaskBatches(t, func(t *testing.T) storetest.BatchTasksStore {
			ropts.MaxFollowers = 4
			return open(t, redistest.Prefix(t), ropts)
		})
	})
}

// TestTasksCoalesced and TestQueueCoalesced run the conformance suites
// with the coalescer, which then carries UpdateRun and the queue's
// scripts down shared pipelines.
func TestTasksCoalesced(t *testing.T) {
	storetest.Tasks(t, func(t *testing.T) tasks.Store {
		return open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 4, Coalesce: true})
	})
}

func TestQueueCoalesced(t *testing.T) {
	storetest.Queue(t, func(t *testing.T, opts storetest.QueueOptions) tasks.Queue {
		l := open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 4, Coalesce: true})
		return redis.NewQueue(l, redis.QueueOptions{Now: opts.Now})
	})
}

// TestRunTask: RunTask reads what Run and Task read; a missing run is
// NotFound; a run whose task is gone comes with the zero task.
func TestRunTask(t *testing.T) {
	modes(t, func(t *testing.T, opts redis.Options) {
		ctx := context.Background()
		prefix := redistest.Prefix(t)
		l := open(t, prefix, opts)
		task := newTask("acme", "tsk_1")
		task.Spec.Slots = map[string]any{"city": "Paris"}
		task.Owner, task.OwnerScopes = "ana", []string{"read:*"}
		if err := l.CreateTask(ctx, task); err != nil {
			t.Fatal(err)
		}
		run := newRun("acme", "run_1", "tsk_1", taskAt)
		run.Spec = task.Spec
		if err := l.CreateRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		r, tk, err := l.RunTask(ctx, "acme", "run_1")
		if err != nil {
			t.Fatal(err)
		}
		wantRun, _ := l.Run(ctx, "acme", "run_1")
		wantTask, _ := l.Task(ctx, "acme", "tsk_1")
		if !r.CreatedAt.Equal(wantRun.CreatedAt) || r.ID != wantRun.ID || r.TaskID != "tsk_1" || r.Spec.Slots["city"] != "Paris" || r.Status != tasks.RunQueued {
			t.Errorf("RunTask run = %+v, want %+v", r, wantRun)
		}
		// The task without its Spec: the run carries the spec it fired with.
		if tk.ID != wantTask.ID || tk.Tenant != "acme" || tk.Owner != "ana" || !slices.Equal(tk.OwnerScopes, []string{"read:*"}) ||
			tk.Status != wantTask.Status || tk.ThreadID != "th_tsk_1" || tk.Version != wantTask.Version ||
			!tk.CreatedAt.Equal(wantTask.CreatedAt) || !tk.UpdatedAt.Equal(wantTask.UpdatedAt) {
			t.Errorf("RunTask task = %+v, want %+v but its Spec", tk, wantTask)
		}

		for _, c := range []struct{ tenant, id string }{{"acme", "run_missing"}, {"beta", "run_1"}, {"acme", "bad id!"}, {"", "run_1"}} {
			if _, _, err := l.RunTask(ctx, c.tenant, c.id); vigil.ErrorCode(err) != vigil.NotFound {
				t.Errorf("RunTask(%q, %q) = %v, want NotFound", c.tenant, c.id, err)
			}
		}

		// The task hash removed under the run (DeleteTask would take the
		// run with it).
		if err := client(t).Del(ctx, prefix+":t:acme:tasks:{acme}:task:tsk_1").Err(); err != nil {
			t.Fatal(err)
		}
		r, tk, err = l.RunTask(ctx, "acme", "run_1")
		if err != nil || r.ID != "run_1" || tk.ID != "" {
			t.Errorf("RunTask of a run without its task = %q, %q, %v; want the run and the zero task", r.ID, tk.ID, err)
		}
	})
}

// TestAppendBatch: each element appends as Append would, on its own; a
// missing thread or a bad id fails its element only; IDs go on from the
// batch's in a later Append.
func TestAppendBatch(t *testing.T) {
	modes(t, func(t *testing.T, opts redis.Options) {
		ctx := context.Background()
		l := open(t, redistest.Prefix(t), opts)
		newThread(t, l, "acme", "th_a")
		newThread(t, l, "acme", "th_b")
		appendN(t, l, "acme", "th_b", 2)
		if errs := l.AppendBatch(ctx, nil); len(errs) != 0 {
			t.Fatalf("AppendBatch(nil) = %v", errs)
		}
		errs := l.AppendBatch(ctx, []tasks.ThreadEvents{
			{Tenant: "acme", Thread: "th_a", Events: []streams.Event{event("task_status", 1), event("text", 2)}},
			{Tenant: "acme", Thread: "th_missing", Events: []streams.Event{event("text", 3)}},
			{Tenant: "beta", Thread: "th_a", Events: []streams.Event{event("text", 4)}}, // another tenant's thread
			{Tenant: "acme", Thread: "bad id!", Events: []streams.Event{event("text", 5)}},
			{Tenant: "acme", Thread: "th_b", Events: []streams.Event{event("text", 6)}},
		})
		if len(errs) != 5 {
			t.Fatalf("AppendBatch returned %d errors for 5 appends", len(errs))
		}
		if errs[0] != nil || errs[4] != nil {
			t.Fatalf("AppendBatch errors %v", errs)
		}
		wantCode(t, errs[1], vigil.NotFound)
		wantCode(t, errs[2], vigil.NotFound)
		wantCode(t, errs[3], vigil.Invalid)

		a, err := l.Read(ctx, "acme", "th_a", streams.ID{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Events) != 2 || a.Events[0].Type != "task_status" || a.Events[1].Type != "text" || !a.Events[0].ID.Less(a.Events[1].ID) {
			t.Fatalf("th_a holds %+v, want the batch's two events in order", a.Events)
		}
		next := appendN(t, l, "acme", "th_a", 1)
		if !a.Events[1].ID.Less(next[0]) {
			t.Errorf("Append after the batch got %v, not after %v", next[0], a.Events[1].ID)
		}
		b, err := l.Read(ctx, "acme", "th_b", streams.ID{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Events) != 3 || string(b.Events[2].Data) != `{"n":6}` {
			t.Fatalf("th_b holds %d events, want 3 ending in the batch's", len(b.Events))
		}
	})
}

// TestCoalescedRunPath drives RunTask, UpdateRun and the queue's scripts
// from many goroutines through the coalescer: every run is claimed once,
// moves queued → running → succeeded once, and is acked.
func TestCoalescedRunPath(t *testing.T) {
	ctx := context.Background()
	l := open(t, redistest.Prefix(t), redis.Options{Coalesce: true, MaxFollowers: 8})
	q := redis.NewQueue(l, redis.QueueOptions{})
	if err := l.CreateTask(ctx, newTask("acme", "tsk_1")); err != nil {
		t.Fatal(err)
	}
	const n = 200
	items := make([]tasks.QueueItem, n)
	for i := range n {
		r := newRun("acme", vigil.NewID("run_"), "tsk_1", taskAt.Add(time.Duration(i)*time.Minute))
		if err := l.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		items[i] = tasks.QueueItem{Tenant: "acme", RunID: r.ID, Priority: tasks.PriorityNormal}
	}
	if err := q.EnqueueBatch(ctx, items, 0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	done := map[string]int{}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			worker := "w" + string(rune('a'+w))
			for {
				claims, err := q.Claim(ctx, worker, 2, time.Minute, 50*time.Millisecond)
				if err != nil {
					t.Error(err)
					return
				}
				if len(claims) == 0 {
					return
				}
				for _, c := range claims {
					r, tk, err := l.RunTask(ctx, c.Tenant, c.RunID)
					if err != nil || tk.ID != "tsk_1" {
						t.Errorf("RunTask %s: %v (task %q)", c.RunID, err, tk.ID)
						return
					}
					r.Status, r.Attempt = tasks.RunRunning, 1
					if err := l.UpdateRun(ctx, r, tasks.RunQueued); err != nil {
						t.Error(err)
						return
					}
					r.Status = tasks.RunSucceeded
					if err := l.UpdateRun(ctx, r, tasks.RunRunning); err != nil {
						t.Error(err)
						return
					}
					if err := q.Ack(ctx, c); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					done[c.RunID]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(done) != n {
		t.Fatalf("%d of %d runs done", len(done), n)
	}
	for id, k := range done {
		if k != 1 {
			t.Errorf("run %s done %d times", id, k)
		}
	}
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Leased != 0 || st.Ready[tasks.PriorityNormal] != 0 {
		t.Errorf("queue after the runs: %+v, want empty", st)
	}
}

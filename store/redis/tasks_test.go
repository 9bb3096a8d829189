package redis_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/store/storetest"
	"github.com/vigilhq/vigil/tasks"
)

func TestTasks(t *testing.T) {
	storetest.Tasks(t, func(t *testing.T) tasks.Store {
		return open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 4})
	})
}

var taskAt = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

func newTask(tenant, id string) tasks.Task {
	return tasks.Task{ID: id, Tenant: tenant, Status: tasks.StatusActive, Version: 1, ThreadID: "th_" + id,
		Spec:      tasks.Spec{Title: "t " + id, Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "0 8 * * *"}, Priority: tasks.PriorityNormal},
		CreatedAt: taskAt, UpdatedAt: taskAt}
}

func newRun(tenant, id, taskID string, slot time.Time) tasks.Run {
	return tasks.Run{ID: id, Tenant: tenant, TaskID: taskID, TaskVersion: 1, Slot: slot, Due: slot,
		Cause: tasks.CauseSchedule, Status: tasks.RunQueued, CreatedAt: slot, UpdatedAt: slot}
}

// TestTasksKeys checks the layout the package doc describes: a tenant's
// task keys all carry the tenant's hash tag, under the tenant; the schedule
// index is the one place outside a tenant, under a tag of its own; and a
// deleted task leaves no key behind.
func TestTasksKeys(t *testing.T) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	l := open(t, prefix, redis.Options{MaxFollowers: 4})
	for _, tenant := range []string{"acme", "beta"} {
		if err := l.CreateTask(ctx, newTask(tenant, "tsk_1")); err != nil {
			t.Fatal(err)
		}
		if err := l.CreateRun(ctx, newRun(tenant, "run_1", "tsk_1", taskAt)); err != nil {
			t.Fatal(err)
		}
		e := tasks.ScheduleEntry{Tenant: tenant, TaskID: "tsk_1", Priority: tasks.PriorityHigh, Slot: taskAt, Due: taskAt}
		if err := l.SetNext(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := client(t).Keys(ctx, prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	var want []string
	for _, tenant := range []string{"acme", "beta"} {
		base := prefix + ":t:" + tenant + ":tasks:{" + tenant + "}:"
		want = append(want, base+"order", base+"queued", base+"run:run_1", base+"runs:tsk_1", base+"task:tsk_1")
	}
	sched := prefix + ":sched:{" + prefix + "}:"
	want = append(want, sched+"entries", sched+"high", sched+"tenants")
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Fatalf("keys:\n%s\nwant:\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}

	// The task hash holds the run's idempotency key.
	acme := prefix + ":t:acme:tasks:{acme}:"
	if id, err := client(t).HGet(ctx, acme+"task:tsk_1", newRun("acme", "run_1", "tsk_1", taskAt).IdempotencyKey()).Result(); err != nil || id != "run_1" {
		t.Errorf("idempotency key in the task hash: %q, %v; want run_1", id, err)
	}
	// The hash idempotency keys had of their own before goes with the task.
	if err := client(t).HSet(ctx, acme+"idem:tsk_1", "tsk_1@2026-01-01T00:00:00.000Z", "run_0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteTask(ctx, "acme", "tsk_1"); err != nil {
		t.Fatal(err)
	}
	keys, err = client(t).Keys(ctx, prefix+":t:acme:*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("keys of acme after deleting its only task: %q, %v", keys, err)
	}
	members, err := client(t).ZRange(ctx, sched+"high", 0, -1).Result()
	if err != nil || !slices.Equal(members, []string{"beta\x00tsk_1"}) {
		t.Errorf("schedule after deleting acme/tsk_1: %q, %v", members, err)
	}
}

// TestTasksTwoProcesses runs two Logs with their own clients over one
// prefix, as two schedulers would: they race to fire the same slots, and
// each slot gets exactly one run.
func TestTasksTwoProcesses(t *testing.T) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	a, b := open(t, prefix, redis.Options{MaxFollowers: 4}), open(t, prefix, redis.Options{MaxFollowers: 4})
	if err := a.CreateTask(ctx, newTask("acme", "tsk_1")); err != nil {
		t.Fatal(err)
	}
	const slots = 20
	var won atomic.Int64
	var wg sync.WaitGroup
	for i, l := range []*redis.Log{a, b, a, b} {
		wg.Go(func() {
			for s := range slots {
				r := newRun("acme", fmt.Sprintf("run_%d_%d", i, s), "tsk_1", taskAt.Add(time.Duration(s)*time.Minute))
				switch err := l.CreateRun(ctx, r); vigil.ErrorCode(err) {
				case "":
					won.Add(1)
				case vigil.Conflict:
				default:
					t.Errorf("CreateRun: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if won.Load() != slots {
		t.Errorf("%d runs created for %d slots", won.Load(), slots)
	}
	page, err := b.ListRuns(ctx, "acme", tasks.RunFilter{TaskID: "tsk_1", Limit: 100})
	if err != nil || len(page.Runs) != slots {
		t.Fatalf("ListRuns from the other process: %d runs, %v; want %d", len(page.Runs), err, slots)
	}
	for i, r := range page.Runs {
		if want := taskAt.Add(time.Duration(slots-1-i) * time.Minute); !r.Slot.Equal(want) {
			t.Errorf("run %d of the page has slot %v, want %v (newest first)", i, r.Slot, want)
		}
	}
}

// TestTasksListBudget lists a tenant with more tasks than one ListTasks
// script scans, through a filter that matches only the last few, so that
// the page is gathered over several scripts.
func TestTasksListBudget(t *testing.T) {
	ctx := context.Background()
	l := open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 4})
	const n = 2500 // above listScanBudget (1000) twice over
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				task := newTask("acme", fmt.Sprintf("tsk_%04d", i))
				task.CreatedAt = taskAt.Add(time.Duration(i) * time.Millisecond)
				if i%1000 == 999 {
					task.Owner = "rare"
				}
				if err := l.CreateTask(ctx, task); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	page, err := l.ListTasks(ctx, "acme", tasks.TaskFilter{Owner: "rare", Limit: 1})
	if err != nil || len(page.Tasks) != 1 || page.Tasks[0].ID != "tsk_0999" || page.Next == "" {
		t.Fatalf("first page of rare tasks: %v, next %q, %v", page.Tasks, page.Next, err)
	}
	page, err = l.ListTasks(ctx, "acme", tasks.TaskFilter{Owner: "rare", Limit: 10, After: page.Next})
	if err != nil || len(page.Tasks) != 1 || page.Tasks[0].ID != "tsk_1999" || page.Next != "" {
		t.Fatalf("second page of rare tasks: %v, next %q, %v", page.Tasks, page.Next, err)
	}
	page, err = l.ListTasks(ctx, "acme", tasks.TaskFilter{Limit: tasks.MaxListLimit})
	if err != nil || len(page.Tasks) != tasks.MaxListLimit || page.Tasks[999].ID != "tsk_0999" || page.Next == "" {
		t.Fatalf("a full page: %d tasks, next %q, %v", len(page.Tasks), page.Next, err)
	}
}

// TestTasksCancelled checks that an ended ctx fails every kind of call
// with the ctx's error, and is not reported as Redis being unavailable.
func TestTasksCancelled(t *testing.T) {
	l := open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 4})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, errTask := l.Task(ctx, "acme", "tsk_1")
	_, errDue := l.Due(ctx, taskAt, 10)
	_, errList := l.ListTasks(ctx, "acme", tasks.TaskFilter{Limit: 10})
	for _, err := range []error{
		errTask, errDue, errList,
		l.CreateTask(ctx, newTask("acme", "tsk_1")),
		l.CreateRun(ctx, newRun("acme", "run_1", "tsk_1", taskAt)),
		l.AdvanceNext(ctx, tasks.ScheduleEntry{Tenant: "acme", TaskID: "tsk_1", Slot: taskAt}, nil),
	} {
		if !errors.Is(err, context.Canceled) || vigil.ErrorCode(err) == vigil.Unavailable {
			t.Errorf("call with a cancelled ctx: %v (code %q), want context.Canceled", err, vigil.ErrorCode(err))
		}
	}
}

// fillSchedule creates n tasks in tenants of 1,000 with one due entry
// each, spread over the priorities, from 8 goroutines.
func fillSchedule(b *testing.B, l *redis.Log, n int) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				tenant, id := fmt.Sprintf("ten_%d", i/1000), fmt.Sprintf("tsk_%d", i)
				if err := l.CreateTask(ctx, newTask(tenant, id)); err != nil {
					b.Error(err)
					return
				}
				e := tasks.ScheduleEntry{Tenant: tenant, TaskID: id, Priority: tasks.Priorities[i%3],
					Slot: taskAt, Due: taskAt.Add(time.Duration(i) * time.Millisecond)}
				if err := l.SetNext(ctx, e); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkDue measures the scheduler's read of the index: Due over 10,000
// due entries, in batches of 100 and of all of them.
func BenchmarkDue(b *testing.B) {
	const n = 10_000
	l := open(b, redistest.Prefix(b), redis.Options{MaxFollowers: 4})
	fillSchedule(b, l, n)
	now := taskAt.Add(time.Hour)
	for _, limit := range []int{100, n} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			ctx := context.Background()
			read := 0
			start := time.Now()
			for b.Loop() {
				due, err := l.Due(ctx, now, limit)
				if err != nil || len(due) != limit {
					b.Fatalf("Due = %d entries, %v; want %d", len(due), err, limit)
				}
				read += len(due)
			}
			b.ReportMetric(float64(read)/time.Since(start).Seconds(), "entries/s")
		})
	}
}

// BenchmarkCreateRun measures what the scheduler does for each due entry,
// from many goroutines over 1,000 tasks: "run" is CreateRun alone
// (claiming the slot's idempotency key), "run+advance" adds the AdvanceNext
// that moves the entry to the task's next slot. runs/s counts entries
// fired.
func BenchmarkCreateRun(b *testing.B) {
	const n = 1000
	for _, advance := range []bool{false, true} {
		name := "run"
		if advance {
			name = "run+advance"
		}
		b.Run(name, func(b *testing.B) {
			l := open(b, redistest.Prefix(b), redis.Options{MaxFollowers: 4})
			fillSchedule(b, l, n)
			ctx := context.Background()
			entries, err := l.Due(ctx, taskAt.Add(time.Hour), n)
			if err != nil || len(entries) != n {
				b.Fatalf("Due = %d, %v", len(entries), err)
			}
			var mu [n]sync.Mutex // each entry is fired by one goroutine at a time
			var next atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) - 1
					k := int(i % n)
					mu[k].Lock()
					e := entries[k]
					if err := l.CreateRun(ctx, newRun(e.Tenant, fmt.Sprintf("run_%d", i), e.TaskID, e.Slot)); err != nil {
						b.Error(err)
					}
					to := e
					to.Slot, to.Due = e.Slot.Add(time.Minute), e.Due.Add(time.Minute)
					if advance {
						if err := l.AdvanceNext(ctx, e, &to); err != nil {
							b.Error(err)
						}
					}
					entries[k] = to
					mu[k].Unlock()
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "runs/s")
		})
	}
}

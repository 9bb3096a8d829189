package tasks_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// env is the execution side over one real backend, bolt or Redis: its
// store, log and queue, a Manager whose runs are enqueued through q (a
// DispatchStore), and a Scheduler on the backend's own queue. One clock
// the test sets drives them all.
type env struct {
	driver
	log   streams.Log
	queue tasks.Queue // the backend's queue
	q     *flakyQueue // the Manager's: queue with faults on demand
	reg   *toolsregistry.Registry
}

// backends opens an env over each backend: a bolt file and a Redis prefix.
var backends = []struct {
	name string
	open func(t *testing.T, now func() time.Time) (tasks.Store, streams.Log, tasks.Queue)
}{
	{"bolt", func(t *testing.T, now func() time.Time) (tasks.Store, streams.Log, tasks.Queue) {
		db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db, db, bolt.NewQueue(db, bolt.QueueOptions{Now: now})
	}},
	{"redis", func(t *testing.T, now func() time.Time) (tasks.Store, streams.Log, tasks.Queue) {
		l, err := redis.Open(context.Background(), redistest.URL(t), redis.Options{Prefix: redistest.Prefix(t), MaxFollowers: 4, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l, l, redis.NewQueue(l, redis.QueueOptions{Now: now})
	}},
}

// eachBackend runs test as a subtest per backend, each with a fresh env.
func eachBackend(t *testing.T, test func(t *testing.T, e *env)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			e := &env{driver: driver{clock: &clock{now: t0}}}
			e.store, e.log, e.queue = b.open(t, e.clock.Now)
			e.q = &flakyQueue{Queue: e.queue}
			e.m = tasks.NewManager(tasks.Options{Store: &tasks.DispatchStore{Store: e.store, Queue: e.q}, Log: e.log, Now: e.clock.Now})
			e.sched = tasks.NewScheduler(tasks.SchedulerOptions{Store: e.store, Queue: e.queue, Log: e.log, Now: e.clock.Now})
			e.reg = toolsregistry.New(toolsregistry.Options{})
			err := e.reg.Register(toolsregistry.Tool{Name: "echo", Version: 1, Description: "a test tool: echo"},
				toolsregistry.HandlerFunc(func(_ context.Context, args json.RawMessage) (toolsregistry.Output, error) {
					return toolsregistry.Output{Value: args}, nil
				}))
			if err != nil {
				t.Fatal(err)
			}
			e.ctx = vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: "ana"})
			test(t, e)
		})
	}
}

// worker starts a worker on the backend's queue and stops it when the
// test ends.
func (e *env) worker(t *testing.T) {
	t.Helper()
	w := tasks.NewWorker(tasks.WorkerOptions{
		Store: e.store, Queue: e.queue, Log: e.log, Now: e.clock.Now,
		Executor: tasks.NewStepExecutor(tasks.StepExecutorOptions{Registry: e.reg, Store: e.store}),
	})
	w.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
}

// sweepAt sets the clock to at and sweeps.
func (e *env) sweepAt(t *testing.T, at time.Time) tasks.SweepReport {
	t.Helper()
	e.clock.Set(at)
	rep, err := e.sched.Sweep(e.ctx, at)
	if err != nil {
		t.Fatalf("Sweep at %s: %v", at.Format(time.TimeOnly), err)
	}
	return rep
}

// run reads a run of acme.
func (e *env) run(t *testing.T, id string) tasks.Run {
	t.Helper()
	r, err := e.store.Run(e.ctx, "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// queued counts the queue's items, by any state.
func (e *env) queued(t *testing.T) int {
	t.Helper()
	st, err := e.queue.Stats(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := st.Delayed + st.Leased
	for _, c := range st.Ready {
		n += c
	}
	return n
}

// flakyQueue is a real queue whose Enqueue fails while fails is above
// zero, one failure per call: a Redis that blinks.
type flakyQueue struct {
	tasks.Queue
	fails atomic.Int32
}

var errBlink = errors.New("connection reset by peer")

func (q *flakyQueue) Enqueue(ctx context.Context, it tasks.QueueItem, delay time.Duration) error {
	if q.fails.Add(-1) >= 0 {
		return errBlink
	}
	q.fails.Store(0)
	return q.Queue.Enqueue(ctx, it, delay)
}

func echoTask(title string) tasks.Spec {
	return tasks.Spec{Title: title, Kind: tasks.KindLongRunning,
		Steps: []tasks.Step{{Tool: "echo", Args: map[string]any{"say": title}}}}
}

// TestSweepRequeuesLostRun: a run whose enqueue failed (the store has it
// queued, the queue has no item) is never executed until a sweep, once it
// has waited SweepAfter, enqueues it again; then it executes once.
func TestSweepRequeuesLostRun(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.worker(t)
		task := e.active(t, echoTask("lost"))
		e.q.fails.Store(1)
		_, err := e.m.RunNow(e.ctx, task.ID)
		if !errors.Is(err, errBlink) {
			t.Fatalf("RunNow with the queue down: %v; want the enqueue's error", err)
		}
		page, err := e.m.ListRuns(e.ctx, tasks.RunFilter{TaskID: task.ID})
		if err != nil || len(page.Runs) != 1 {
			t.Fatalf("runs after the failed enqueue: %v, %v; want the one stored", page.Runs, err)
		}
		lost := page.Runs[0]
		if n := e.queued(t); n != 0 {
			t.Fatalf("queue holds %d items; want none", n)
		}
		time.Sleep(100 * time.Millisecond) // a worker has every chance to find it
		if r := e.run(t, lost.ID); r.Status != tasks.RunQueued {
			t.Fatalf("the lost run is %s without a sweep", r.Status)
		}

		// Too soon: a run queued for less than SweepAfter is left alone.
		if rep := e.sweepAt(t, t0.Add(30*time.Second)); rep.Requeued != 0 || rep.Failed != 0 {
			t.Errorf("sweep 30s after: %+v; want nothing requeued", rep)
		}
		if rep := e.sweepAt(t, t0.Add(2*time.Minute)); rep.Requeued != 1 || rep.Failed != 0 {
			t.Errorf("sweep 2m after: %+v; want the run requeued", rep)
		}
		done := e.waitRun(t, lost.ID, tasks.RunSucceeded)
		if done.Attempt != 1 || string(done.Result) != `{"outputs":[{"say":"lost"}]}` {
			t.Errorf("the swept run: attempt %d, result %s", done.Attempt, done.Result)
		}
		if rep := e.sweepAt(t, t0.Add(10*time.Minute)); rep.Requeued != 0 {
			t.Errorf("sweep after it ran: %+v; want nothing", rep)
		}
	})
}

// TestSweepKeepsWaitingRun: a run that waits in the queue (no worker) is
// enqueued again by the sweep, which the queue ignores: it keeps one item.
func TestSweepKeepsWaitingRun(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		task := e.active(t, echoTask("waiting"))
		if _, err := e.m.RunNow(e.ctx, task.ID); err != nil {
			t.Fatal(err)
		}
		if rep := e.sweepAt(t, t0.Add(5*time.Minute)); rep.Requeued != 1 {
			t.Errorf("sweep: %+v; want the waiting run enqueued again", rep)
		}
		if n := e.queued(t); n != 1 {
			t.Errorf("queue holds %d items after the sweep; want 1", n)
		}
	})
}

// TestSchedulerRunSweeps: Run sweeps on its own, so a lost run executes
// with no call but Run.
func TestSchedulerRunSweeps(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.worker(t)
		task := e.active(t, echoTask("lost in Run"))
		e.q.fails.Store(1)
		if _, err := e.m.RunNow(e.ctx, task.ID); err == nil {
			t.Fatal("RunNow with the queue down succeeded")
		}
		page, err := e.m.ListRuns(e.ctx, tasks.RunFilter{TaskID: task.ID})
		if err != nil || len(page.Runs) != 1 {
			t.Fatalf("runs: %v, %v", page.Runs, err)
		}
		e.clock.Set(t0.Add(5 * time.Minute))
		sched := tasks.NewScheduler(tasks.SchedulerOptions{Store: e.store, Queue: e.queue, Log: e.log, Now: e.clock.Now, Tick: 10 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- sched.Run(ctx) }()
		e.waitRun(t, page.Runs[0].ID, tasks.RunSucceeded)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

package tasks_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// executorFunc is an Executor made of a function.
type executorFunc func(ctx context.Context, run tasks.Run, rep tasks.Reporter) (tasks.Outcome, error)

func (f executorFunc) Execute(ctx context.Context, run tasks.Run, rep tasks.Reporter) (tasks.Outcome, error) {
	return f(ctx, run, rep)
}

// fairRig is a bolt file, its queue and a manager, all on real time: the
// fairness test measures real delays.
type fairRig struct {
	db *bolt.DB
	q  *bolt.Queue
	m  *tasks.Manager
}

func newFairRig(t *testing.T) *fairRig {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q := bolt.NewQueue(db, bolt.QueueOptions{})
	return &fairRig{db: db, q: q, m: tasks.NewManager(tasks.Options{Store: db, Log: db})}
}

// task creates and confirms a one-step task of tenant.
func (f *fairRig) task(t *testing.T, tenant string) tasks.Task {
	t.Helper()
	ctx := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: tenant, User: "u"})
	task, err := f.m.Create(ctx, tasks.Spec{Title: "work", Kind: tasks.KindLongRunning,
		Steps: []tasks.Step{{Tool: "work"}}})
	if err != nil {
		t.Fatal(err)
	}
	if task, err = f.m.Confirm(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	return task
}

// queueRuns creates n queued runs of task and enqueues them, 32 at a time
// so that bolt batches the writes. It returns their ids.
func (f *fairRig) queueRuns(t *testing.T, task tasks.Task, n int) []string {
	t.Helper()
	ids := make([]string, n)
	base := time.Now().UTC().Truncate(time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	sem := make(chan struct{}, 32)
	for i := range n {
		ids[i] = vigil.NewID("run_")
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			slot := base.Add(time.Duration(i) * time.Millisecond)
			r := tasks.Run{ID: ids[i], Tenant: task.Tenant, TaskID: task.ID, TaskVersion: task.Version, Spec: task.Spec,
				Slot: slot, Due: slot, Cause: tasks.CauseManual, Status: tasks.RunQueued, CreatedAt: slot, UpdatedAt: slot}
			err := f.db.CreateRun(context.Background(), r)
			if err == nil {
				err = f.q.Enqueue(context.Background(), tasks.QueueItem{Tenant: r.Tenant, RunID: r.ID, Priority: tasks.PriorityNormal}, 0)
			}
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	return ids
}

// TestTenantFloodDoesNotDelayOthers: tenant acme floods the queue with
// 10,000 runs, then globex queues one. Workers run 8 at once, at most 4
// per tenant, and each run takes runTime. Globex's run must start within
// one run's duration of being queued: the queue takes tenants in turns,
// so it does not wait behind acme's backlog: at most acme's cap of runs
// start while it waits. The test logs the delay it measured (go test -run
// TenantFlood -v).
func TestTenantFloodDoesNotDelayOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("enqueues 10,000 runs")
	}
	const (
		flood     = 10000
		runTime   = 50 * time.Millisecond
		tenantCap = 4
	)
	f := newFairRig(t)
	acme, globex := f.task(t, "acme"), f.task(t, "globex")
	f.queueRuns(t, acme, flood)

	var mu sync.Mutex
	started := map[string]time.Time{}
	exec := executorFunc(func(ctx context.Context, run tasks.Run, _ tasks.Reporter) (tasks.Outcome, error) {
		mu.Lock()
		started[run.ID] = time.Now()
		mu.Unlock()
		select {
		case <-time.After(runTime):
		case <-ctx.Done():
			return tasks.Outcome{}, ctx.Err()
		}
		return tasks.Outcome{Summary: "done"}, nil
	})
	w := tasks.NewWorker(tasks.WorkerOptions{Store: f.db, Queue: f.q, Log: f.db, Executor: exec,
		Concurrency: 8, TenantConcurrency: tenantCap})
	w.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = w.Stop(ctx) // cancels acme's backlog in flight
	})
	// Let acme's runs fill the worker first.
	waitFor(t, "acme's runs to start", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(started) >= 4
	})

	created := time.Now()
	id := f.queueRuns(t, globex, 1)[0]
	queued := time.Now() // the run is stored and enqueued
	var delay time.Duration
	deadline := queued.Add(2 * time.Minute)
	for {
		mu.Lock()
		at, ok := started[id]
		mu.Unlock()
		if ok {
			delay = at.Sub(queued)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("globex's run did not start within %s of being queued behind %d acme runs", time.Since(queued), flood)
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	acmeDone, acmeBetween := 0, 0
	for rid, at := range started {
		if rid == id {
			continue
		}
		acmeDone++
		if at.After(queued) && at.Before(started[id]) {
			acmeBetween++
		}
	}
	mu.Unlock()
	t.Logf("globex's run started %s after it was queued (%s after its creation began) behind %d acme runs (run time %s; %d acme runs started by then, %d of them while it waited)",
		delay.Round(100*time.Microsecond), delay+queued.Sub(created).Round(100*time.Microsecond), flood, runTime, acmeDone, acmeBetween)
	// Within one run's duration acme can start at most its cap of runs
	// (each of its running runs ends and is replaced once). Counting runs
	// rather than timing them keeps the bound true on a loaded machine,
	// where a run's real duration stretches.
	if acmeBetween > tenantCap {
		t.Errorf("%d of acme's runs started while globex's waited (%s); want at most %d, acme's cap: one run's duration", acmeBetween, delay, tenantCap)
	}
}

// TestTenantWaitIsVisible: a run turned away because its tenant is at its
// cap says so on its task's thread, once, while it waits.
func TestTenantWaitIsVisible(t *testing.T) {
	f := newFairRig(t)
	task := f.task(t, "acme")
	release := make(chan struct{})
	exec := executorFunc(func(ctx context.Context, run tasks.Run, _ tasks.Reporter) (tasks.Outcome, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return tasks.Outcome{}, ctx.Err()
		}
		return tasks.Outcome{Summary: "done"}, nil
	})
	w := tasks.NewWorker(tasks.WorkerOptions{Store: f.db, Queue: f.q, Log: f.db, Executor: exec,
		Concurrency: 2, TenantConcurrency: 1, TenantWait: 20 * time.Millisecond})
	w.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.Stop(ctx)
	})
	ids := f.queueRuns(t, task, 2)
	ctx := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: "u"})
	const want = "waiting: tenant acme is at its limit of 1 concurrent run"
	waiting := func() []streams.Event {
		page, err := streams.ReadAll(ctx, f.db, "acme", task.ThreadID, streams.ID{}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var out []streams.Event
		for _, e := range page.Events {
			if e.Type == "task_status" && strings.Contains(string(e.Data), "waiting: ") {
				out = append(out, e)
			}
		}
		return out
	}
	waitFor(t, "a waiting event", func() bool { return len(waiting()) > 0 })
	// The waiting run is turned away again every 20ms; it says so once.
	time.Sleep(100 * time.Millisecond)
	evs := waiting()
	if len(evs) != 1 {
		t.Fatalf("%d waiting events; want 1", len(evs))
	}
	if !strings.Contains(string(evs[0].Data), want) || !strings.Contains(string(evs[0].Data), `"queued"`) {
		t.Errorf("waiting event %s; want phase queued and detail %q", evs[0].Data, want)
	}
	run, err := f.db.Run(ctx, "acme", evs[0].RunID)
	if err != nil || run.Status != tasks.RunQueued || (evs[0].RunID != ids[0] && evs[0].RunID != ids[1]) {
		t.Errorf("the waiting event names run %s (%s, %v); want a queued run of %v", evs[0].RunID, run.Status, err, ids)
	}
	close(release)
	for _, id := range ids {
		waitFor(t, "both runs to succeed", func() bool {
			r, err := f.db.Run(ctx, "acme", id)
			return err == nil && r.Status == tasks.RunSucceeded
		})
	}
}

package tasks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// rig is the execution side over one real bolt file: a Manager whose runs
// are enqueued (DispatchStore), a Scheduler the test ticks, the bolt
// queue, a tools registry with test tools, a webhook receiver on a local
// HTTP server, and workers the test starts. One clock the test sets
// drives the Manager, the scheduler, the queue and the workers; real time
// is used only to wait, with deadlines, for goroutines.
type rig struct {
	driver
	db       *bolt.DB
	q        *bolt.Queue
	reg      *toolsregistry.Registry
	notifier *tasks.Notifier
	hooks    *receiver

	mu     sync.Mutex
	price  float64
	called []string // the "step" tool's calls, by name
}

// hookSecret signs the rig's webhooks.
const hookSecret = "s3cret-for-tests"

// driver drives a Manager and a Scheduler on a fake clock, as acme's user
// ana. Both rigs embed it: rig on a bolt file, env on each backend.
type driver struct {
	store tasks.Store
	clock *clock
	m     *tasks.Manager
	sched *tasks.Scheduler
	ctx   context.Context // acme, user ana
}

// active creates and confirms a task.
func (d *driver) active(t *testing.T, s tasks.Spec) tasks.Task {
	t.Helper()
	task, err := d.m.Create(d.ctx, s)
	if err != nil {
		t.Fatalf("Create(%s): %v", s.Title, err)
	}
	if task, err = d.m.Confirm(d.ctx, task.ID); err != nil {
		t.Fatalf("Confirm(%s): %v", s.Title, err)
	}
	return task
}

// tickAt sets the clock to at and runs one scheduler pass.
func (d *driver) tickAt(t *testing.T, at time.Time) tasks.TickReport {
	t.Helper()
	d.clock.Set(at)
	rep, err := d.sched.Tick(d.ctx)
	if err != nil {
		t.Fatalf("Tick at %s: %v", at.Format(time.TimeOnly), err)
	}
	return rep
}

// waitRun waits until the run has status st and returns it.
func (d *driver) waitRun(t *testing.T, runID string, st tasks.RunStatus) tasks.Run {
	t.Helper()
	var run tasks.Run
	waitFor(t, fmt.Sprintf("run %s to be %s", runID, st), func() bool {
		var err error
		run, err = d.store.Run(d.ctx, "acme", runID)
		return err == nil && run.Status == st
	})
	return run
}

func newRig(t *testing.T) *rig {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // runs last: workers stop first
	r := &rig{db: db, driver: driver{store: db, clock: &clock{now: t0}}}
	r.q = bolt.NewQueue(db, bolt.QueueOptions{Now: r.clock.Now})
	r.m = tasks.NewManager(tasks.Options{Store: &tasks.DispatchStore{Store: db, Queue: r.q}, Log: db, Now: r.clock.Now})
	r.sched = tasks.NewScheduler(tasks.SchedulerOptions{Store: db, Queue: r.q, Log: db, Now: r.clock.Now})
	r.reg = toolsregistry.New(toolsregistry.Options{})
	r.hooks = newReceiver(t)
	guard, err := toolsregistry.NewGuard(toolsregistry.GuardOptions{Allow: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	// Webhook signatures carry real time: the receiver checks them
	// against its own clock.
	r.notifier, err = tasks.NewNotifier(tasks.NotifierOptions{Guard: guard, Backoff: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	r.ctx = vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: "ana"})
	r.tool(t, "echo", func(_ context.Context, args json.RawMessage) (toolsregistry.Output, error) {
		return toolsregistry.Output{Value: args}, nil
	})
	r.tool(t, "price", func(context.Context, json.RawMessage) (toolsregistry.Output, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		b, _ := json.Marshal(r.price)
		return toolsregistry.Output{Value: b}, nil
	})
	r.tool(t, "step", func(_ context.Context, args json.RawMessage) (toolsregistry.Output, error) {
		var in struct{ Name string }
		_ = json.Unmarshal(args, &in)
		r.mu.Lock()
		r.called = append(r.called, in.Name)
		r.mu.Unlock()
		return toolsregistry.Output{Value: json.RawMessage(fmt.Sprintf(`"did %s"`, in.Name))}, nil
	})
	return r
}

// tool registers a global test tool.
func (r *rig) tool(t *testing.T, name string, fn toolsregistry.HandlerFunc, mod ...func(*toolsregistry.Tool)) {
	t.Helper()
	tool := toolsregistry.Tool{Name: name, Version: 1, Description: "a test tool: " + name}
	for _, f := range mod {
		f(&tool)
	}
	if err := r.reg.Register(tool, fn); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) setPrice(p float64) {
	r.mu.Lock()
	r.price = p
	r.mu.Unlock()
}

func (r *rig) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.called)
}

// workerOptions are the rig's worker defaults.
func (r *rig) workerOptions() tasks.WorkerOptions {
	return tasks.WorkerOptions{
		Store: r.db, Queue: r.q, Log: r.db, Notifier: r.notifier, Now: r.clock.Now,
		Executor: tasks.NewStepExecutor(tasks.StepExecutorOptions{Registry: r.reg, Store: r.db}),
	}
}

// worker starts a worker with the rig's defaults changed by mod, and
// stops it gracefully when the test ends.
func (r *rig) worker(t *testing.T, mod func(*tasks.WorkerOptions)) *tasks.Worker {
	t.Helper()
	return r.workerCtx(t, context.Background(), mod)
}

// workerCtx is worker started with ctx: ending ctx kills the worker.
func (r *rig) workerCtx(t *testing.T, ctx context.Context, mod func(*tasks.WorkerOptions)) *tasks.Worker {
	t.Helper()
	opts := r.workerOptions()
	if mod != nil {
		mod(&opts)
	}
	w := tasks.NewWorker(opts)
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

// advance moves the clock and wakes the queue's waiting claims, which
// measure delays in real time.
func (r *rig) advance(d time.Duration) {
	r.clock.Add(d)
	r.q.Wake()
}

// runs returns the task's runs, oldest first.
func (r *rig) runs(t *testing.T, taskID string) []tasks.Run {
	t.Helper()
	page, err := r.m.ListRuns(r.ctx, tasks.RunFilter{TaskID: taskID, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(page.Runs)
	return page.Runs
}

// waitFor polls cond until it holds, for at most 10 seconds of real time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitRuns waits until the task has n runs, all with status st.
func (r *rig) waitRuns(t *testing.T, taskID string, n int, st tasks.RunStatus) []tasks.Run {
	t.Helper()
	var runs []tasks.Run
	waitFor(t, fmt.Sprintf("%d %s runs of %s", n, st, taskID), func() bool {
		runs = r.runs(t, taskID)
		if len(runs) != n {
			return false
		}
		for _, run := range runs {
			if run.Status != st {
				return false
			}
		}
		return true
	})
	return runs
}

// waitUnleased waits until no worker holds a lease: the runs in hand
// are acked, released or given back.
func (r *rig) waitUnleased(t *testing.T) tasks.QueueStats {
	t.Helper()
	var st tasks.QueueStats
	waitFor(t, "no leases held", func() bool {
		var err error
		st, err = r.q.Stats(r.ctx)
		return err == nil && st.Leased == 0
	})
	return st
}

// events returns the task thread's events of type typ, or all of them
// for "".
func (r *rig) events(t *testing.T, task tasks.Task, typ string) []streams.Event {
	t.Helper()
	page, err := streams.ReadAll(r.ctx, r.db, "acme", task.ThreadID, streams.ID{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []streams.Event
	for _, e := range page.Events {
		if typ == "" || e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// runStatuses returns the run's task_status changes on the thread as
// "from>to".
func (r *rig) runStatuses(t *testing.T, task tasks.Task, runID string) []string {
	t.Helper()
	var out []string
	for _, e := range r.events(t, task, streams.TypeTaskStatus) {
		p, err := streams.Decode[streams.TaskStatus](e)
		if err != nil {
			t.Fatal(err)
		}
		if p.RunID == runID {
			out = append(out, p.From+">"+p.To)
		}
	}
	return out
}

// hook is a webhook to the rig's receiver.
func (r *rig) hook() []tasks.Webhook {
	return []tasks.Webhook{{URL: r.hooks.srv.URL + "/hook", Secret: hookSecret}}
}

// receiver is a webhook endpoint that checks signatures and counts
// notifications by idempotency key.
type receiver struct {
	srv *httptest.Server

	mu    sync.Mutex
	keys  map[string]int // POSTs per Idempotency-Key
	notes []tasks.Notification
	bad   []string // what was wrong with refused POSTs
	fail  int      // answer 503 to this many POSTs first
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{keys: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		body, err := toolsregistry.Verify([]byte(hookSecret), req)
		if err != nil {
			rc.bad = append(rc.bad, err.Error())
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if rc.fail > 0 {
			rc.fail--
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		var n tasks.Notification
		if err := json.Unmarshal(body, &n); err != nil {
			rc.bad = append(rc.bad, err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		key := req.Header.Get(tasks.HeaderIdempotencyKey)
		if key != n.IdempotencyKey {
			rc.bad = append(rc.bad, fmt.Sprintf("header key %q, body key %q", key, n.IdempotencyKey))
		}
		rc.keys[key]++
		rc.notes = append(rc.notes, n)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	t.Cleanup(func() {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if len(rc.bad) > 0 {
			t.Errorf("webhook receiver refused POSTs: %v", rc.bad)
		}
	})
	return rc
}

// received returns a copy of the notifications received and the POSTs
// per key.
func (rc *receiver) received() ([]tasks.Notification, map[string]int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	keys := make(map[string]int, len(rc.keys))
	for k, v := range rc.keys {
		keys[k] = v
	}
	return slices.Clone(rc.notes), keys
}

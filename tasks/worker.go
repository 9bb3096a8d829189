package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// WorkerOptions configure a Worker. Store, Queue, Log and Executor are
// required; the zero value of every other field means its default.
type WorkerOptions struct {
	Store    Store
	Queue    Queue
	Log      streams.Log
	Executor Executor
	// Notifier POSTs finished runs to their webhooks; nil means the
	// task's thread is the only one told.
	Notifier *Notifier
	// ID names the worker in its leases; default a random id.
	ID string
	// Concurrency is how many runs the worker executes at once; default 8.
	Concurrency int
	// TenantConcurrency caps the runs of one tenant executing at once in
	// this worker; default Concurrency (no cap beyond it). A run over the
	// cap goes back to the queue for TenantWait.
	TenantConcurrency int
	TenantWait        time.Duration
	// Rate caps the attempts this worker starts per second, immediate
	// retries included (a token bucket of Burst, default max(1, Rate));
	// zero means no cap.
	Rate  float64
	Burst int
	// Limiter, when set, paces the attempts instead of Rate and Burst: a
	// limiter shared by every worker process, such as store/redis's
	// RateLimiter, makes the cap global rather than per process.
	Limiter Limiter
	// Lease is how long a claim holds a run; the worker renews it every
	// third of it while the run executes. Default 30s: a crashed worker's
	// runs are reclaimed by others after at most this long.
	Lease time.Duration
	// Retry is the retry policy; its zero value means the defaults.
	Retry RetryPolicy
	// MaxRunDuration returns how long one attempt of a tenant's run may
	// execute. Past it the attempt's context is cancelled and the run
	// fails for good, without a retry, with an error that says so. Nil,
	// or a result of zero or less, means no limit. It is asked at every
	// attempt, on the wall clock (not Now).
	MaxRunDuration func(tenant string) time.Duration
	// MaxDeliveries fails a running run that was reclaimed more often
	// than this since it last went back to the queue (its execution
	// crashes its workers); default 5.
	MaxDeliveries int
	// MaxChainDepth stops a chain (Spec.Then) of more runs than this in a
	// row, for the chain a concurrent edit closed into a cycle; default 16.
	MaxChainDepth int
	// StopGrace is how long Stop waits, after its deadline cancelled the
	// runs, for their executors to return; default 5s.
	StopGrace time.Duration
	// Now is the clock of run timestamps and lease checks; default
	// time.Now. It should be the queue's clock.
	Now func() time.Time
	// Logger default slog.Default().
	Logger *slog.Logger
	// Observer is told of every attempt's outcome, retry and dead letter;
	// default NopObserver.
	Observer Observer
}

// Worker executes queued runs: a pool of Concurrency goroutines that claim
// runs from the Queue (highest priority first) under a lease, and move
// each through its states with the Store's compare-and-set, appending a
// task_status event to the task's thread at every change:
//
//  1. claim (Reclaim first: runs whose worker died), within the tenant
//     cap and the rate limit;
//  2. queued → running (retrying → queued → running after a backoff); a
//     run found running was its crashed worker's, and resumes;
//  3. Executor.Execute, with a Reporter whose events and checkpoints
//     (running → running, Checkpoints one longer) wait up to flushAfter
//     and travel with the run's next write (see execution), while a
//     goroutine renews the lease;
//  4. on success: the result's text and done events join what waits,
//     which is written before the webhooks, if any, are told; the tasks
//     of Spec.Then get chained runs; then running → succeeded (with what
//     still waits), and the item is acked;
//  5. on error, by class (Classify, RetryPolicy): transient → retried at
//     once (running → retrying → queued → running); temporary → running
//     → retrying, and the item is released with the backoff as delay;
//     permanent or out of retries → the failure goes to the thread and
//     webhooks, running → failed (a dead letter), ack.
//
// Notifying before the run is marked succeeded makes delivery at least
// once: a worker that dies in between leaves the run running, another
// worker resumes it after its last checkpoint and notifies again, and the
// webhook receiver drops the repeat by its idempotency key. A run fired
// twice is never executed twice: only one worker's queued → running
// succeeds.
//
// Before every write of a run the worker checks that its lease still
// holds for a third of the Lease (renewing it if not) and writes nothing
// once another worker took the run over. Store.UpdateRun compares the
// status only, so a worker that stalls past its lease and is not told
// (its renewal and check both late) could still write once; a fence on
// Attempt in the store would close that window.
//
// Start and Stop may each be called once. A Worker is safe for concurrent
// use.
type Worker struct {
	store    Store
	queue    Queue
	log      streams.Log
	exec     Executor
	notifier *Notifier
	id       string
	conc     int
	tenCap   int
	tenWait  time.Duration
	limiter  Limiter
	lease    time.Duration
	retry    RetryPolicy
	maxRun   func(tenant string) time.Duration
	maxDeliv int
	maxChain int
	grace    time.Duration
	now      func() time.Time
	logger   *slog.Logger
	obs      Observer
	// unthreaded is set once the store answered UpdateRunThreaded with
	// errors.ErrUnsupported: from then on the worker makes the two writes
	// without asking it again.
	unthreaded atomic.Bool

	sem      chan struct{}
	tenMu    sync.Mutex
	tenants  map[string]int
	waited   map[string]struct{} // tenant/run said to wait; under tenMu
	running  sync.WaitGroup
	stopping chan struct{}
	loopDone chan struct{}
	// runs is the context of executing runs: it ends at Stop's deadline
	// or when Start's context ends.
	runs       context.Context
	cancelRuns context.CancelFunc
	hard       context.Context
	started    bool
	stopOnce   sync.Once
}

// NewWorker returns a Worker; Start starts it.
func NewWorker(opts WorkerOptions) *Worker {
	w := &Worker{
		store: opts.Store, queue: opts.Queue, log: opts.Log, exec: opts.Executor, notifier: opts.Notifier,
		id: opts.ID, conc: opts.Concurrency, tenCap: opts.TenantConcurrency, tenWait: opts.TenantWait,
		lease: opts.Lease, retry: opts.Retry.withDefaults(), maxRun: opts.MaxRunDuration, maxDeliv: opts.MaxDeliveries,
		maxChain: opts.MaxChainDepth, grace: opts.StopGrace, now: opts.Now, logger: opts.Logger, obs: opts.Observer,
		tenants: map[string]int{}, waited: map[string]struct{}{}, stopping: make(chan struct{}), loopDone: make(chan struct{}),
	}
	if w.id == "" {
		w.id = vigil.NewID("wrk_")
	}
	if w.conc <= 0 {
		w.conc = 8
	}
	if w.tenCap <= 0 || w.tenCap > w.conc {
		w.tenCap = w.conc
	}
	if w.tenWait <= 0 {
		w.tenWait = time.Second
	}
	if opts.Limiter != nil {
		w.limiter = opts.Limiter
	} else if opts.Rate > 0 {
		burst := opts.Burst
		if burst <= 0 {
			burst = max(1, int(opts.Rate))
		}
		w.limiter = rate.NewLimiter(rate.Limit(opts.Rate), burst)
	}
	if w.lease <= 0 {
		w.lease = 30 * time.Second
	}
	if w.maxDeliv <= 0 {
		w.maxDeliv = 5
	}
	if w.maxChain <= 0 {
		w.maxChain = 16
	}
	if w.grace <= 0 {
		w.grace = 5 * time.Second
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.logger == nil {
		w.logger = slog.Default()
	}
	if w.obs == nil {
		w.obs = NopObserver{}
	}
	w.sem = make(chan struct{}, w.conc)
	return w
}

// ID returns the worker's id, as its leases name it.
func (w *Worker) ID() string { return w.id }

// Start starts claiming and executing runs in the background. When ctx
// ends the worker stops at once, as if its process died: runs are
// cancelled and left as they are, their leases run out and other workers
// reclaim them. Stop is the graceful way.
func (w *Worker) Start(ctx context.Context) {
	w.hard = ctx
	w.runs, w.cancelRuns = context.WithCancel(ctx)
	w.started = true
	go w.loop()
}

// Stop stops the worker gracefully: it claims no more runs, gives back at
// once the runs it claimed but has not started, and lets running runs
// finish; an executor that records a checkpoint meanwhile is told to
// yield (ErrYield), and its run goes back to the queue to resume after
// the checkpoint. When ctx ends first, the runs still executing are
// cancelled; each goes back to the queue as of its last checkpoint and its
// lease is released. Stop returns once no run executes, or with an error
// when executors ignore their cancelled context for StopGrace.
func (w *Worker) Stop(ctx context.Context) error {
	if !w.started {
		return nil
	}
	w.stopOnce.Do(func() { close(w.stopping) })
	<-w.loopDone
	done := make(chan struct{})
	go func() { w.running.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	w.cancelRuns()
	select {
	case <-done:
		return nil
	case <-time.After(w.grace):
		return fmt.Errorf("tasks: worker %s: runs still executing %s after the stop deadline", w.id, w.grace)
	}
}

// Stopping returns a channel closed once Stop is called. An executor with
// steps of its own between checkpoints can watch it to yield early.
func (w *Worker) Stopping() <-chan struct{} { return w.stopping }

func (w *Worker) isStopping() bool {
	select {
	case <-w.stopping:
		return true
	default:
		return false
	}
}

// claimBatch is the most runs one claim asks for.
const claimBatch = 64

// loop claims runs while there are free slots, until Stop or Start's
// context ends.
func (w *Worker) loop() {
	defer close(w.loopDone)
	ctx, cancel := w.untilStopping(w.hard)
	defer cancel()
	reclaimEvery := max(w.lease/2, 10*time.Millisecond)
	var nextReclaim time.Time // real time: reclaim at once
	for {
		select {
		case w.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := 1
	more:
		for n < claimBatch {
			select {
			case w.sem <- struct{}{}:
				n++
			default:
				break more
			}
		}
		var claims []Claim
		var err error
		if !time.Now().Before(nextReclaim) {
			claims, err = w.queue.Reclaim(ctx, w.id, n, w.lease)
			nextReclaim = time.Now().Add(reclaimEvery)
		}
		if err == nil && len(claims) == 0 {
			claims, err = w.queue.Claim(ctx, w.id, n, w.lease, time.Until(nextReclaim))
		}
		for range n - len(claims) {
			<-w.sem
		}
		if err != nil {
			if ctx.Err() != nil {
				for _, c := range claims {
					w.giveBack(c)
				}
				return
			}
			w.logger.ErrorContext(ctx, "tasks: claim failed", "worker", w.id, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		for _, c := range claims {
			w.running.Add(1)
			go w.handle(c)
		}
	}
}

// giveBack releases a claim the worker will not work on, and frees its
// slot.
func (w *Worker) giveBack(c Claim) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.hard), 5*time.Second)
	defer cancel()
	if err := w.queue.Release(ctx, c, 0); err != nil {
		w.logger.WarnContext(ctx, "tasks: release failed", "run", c.RunID, "err", err)
	}
}

// handle works on one claim and frees its slot.
func (w *Worker) handle(c Claim) {
	defer w.running.Done()
	defer func() { <-w.sem }()
	// A run taken over from a worker that stopped while holding it is not
	// turned away at the tenant's cap: its worker's slot is gone, and a
	// Release would start its deliveries anew, so that a run that keeps
	// crashing its workers would never reach MaxDeliveries.
	if !w.takeTenant(c.Tenant, c.Deliveries > 1) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(w.hard), 5*time.Second)
		defer cancel()
		w.sayWaiting(ctx, c)
		_ = w.queue.Release(ctx, c, w.tenWait)
		return
	}
	defer w.doneTenant(c.Tenant)
	w.startedWaiting(c)

	ctx, cancel := context.WithCancel(w.runs)
	defer cancel()
	k := &keeper{w: w, claim: c, cancel: cancel}
	renewed := make(chan struct{})
	go func() { defer close(renewed); k.renew(ctx) }()
	defer func() { cancel(); <-renewed }()

	if err := w.admit(ctx); err != nil {
		if w.hard.Err() == nil && !k.isLost() {
			w.giveBack(k.current())
		}
		return
	}
	if w.isStopping() {
		w.giveBack(k.current())
		return
	}
	w.process(ctx, k)
}

// Limiter paces the attempts workers start (WorkerOptions.Limiter). Wait
// blocks until one more attempt may start, and returns nil then, or until
// ctx ends, and returns an error. It is safe for concurrent use. A
// golang.org/x/time/rate.Limiter is one.
type Limiter interface {
	Wait(ctx context.Context) error
}

// admit waits for the rate limiter (Limiter, or Rate's) to let an attempt
// start, when there is one. It returns an error if the worker starts
// stopping, or ctx ends, first, or the limiter fails.
func (w *Worker) admit(ctx context.Context) error {
	if w.limiter == nil {
		return nil
	}
	wait, stop := w.untilStopping(ctx)
	defer stop()
	return w.limiter.Wait(wait)
}

// untilStopping returns a context that ends with ctx, or when the worker
// starts stopping, whichever is first; cancel frees it.
func (w *Worker) untilStopping(ctx context.Context) (_ context.Context, cancel context.CancelFunc) {
	ctx, cancel = context.WithCancel(ctx)
	go func() {
		select {
		case <-w.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// takeTenant counts one more run of tenant executing, and says whether it
// may: not when the tenant is at its cap, unless over is set.
func (w *Worker) takeTenant(tenant string, over bool) bool {
	w.tenMu.Lock()
	defer w.tenMu.Unlock()
	if w.tenants[tenant] >= w.tenCap && !over {
		return false
	}
	w.tenants[tenant]++
	return true
}

// maxWaited bounds the runs a worker remembers having said are waiting;
// past it, it forgets them all, and a run still waiting may say so again.
const maxWaited = 4096

// sayWaiting appends to the thread of c's task that its run waits for its
// tenant's other runs: once per run and worker, however often the run is
// turned away. The run is forgotten once this worker starts it.
func (w *Worker) sayWaiting(ctx context.Context, c Claim) {
	key := c.Tenant + "/" + c.RunID
	w.tenMu.Lock()
	_, said := w.waited[key]
	if !said {
		if len(w.waited) >= maxWaited {
			clear(w.waited)
		}
		w.waited[key] = struct{}{}
	}
	w.tenMu.Unlock()
	if said {
		return
	}
	r, err := w.store.Run(ctx, c.Tenant, c.RunID)
	if err != nil || r.Status != RunQueued {
		return
	}
	t, err := w.store.Task(ctx, r.Tenant, r.TaskID)
	if err != nil {
		return
	}
	th := thread{log: w.log, logger: w.logger, now: w.now, tenant: r.Tenant, id: t.ThreadID, taskID: r.TaskID, runID: r.ID}
	runs := "runs"
	if w.tenCap == 1 {
		runs = "run"
	}
	th.waiting(vigil.WithTraceID(ctx, RunTraceID(r.ID)), fmt.Sprintf("tenant %s is at its limit of %d concurrent %s", r.Tenant, w.tenCap, runs))
}

// startedWaiting forgets that the run of c was said to wait.
func (w *Worker) startedWaiting(c Claim) {
	w.tenMu.Lock()
	delete(w.waited, c.Tenant+"/"+c.RunID)
	w.tenMu.Unlock()
}

func (w *Worker) doneTenant(tenant string) {
	w.tenMu.Lock()
	defer w.tenMu.Unlock()
	if w.tenants[tenant]--; w.tenants[tenant] <= 0 {
		delete(w.tenants, tenant)
	}
}

// errLeaseLost: another worker took the run over.
var errLeaseLost = errors.New("tasks: the run's lease is lost")

// errRunGone: the run was cancelled, deleted or finished elsewhere.
var errRunGone = errors.New("tasks: the run was cancelled or deleted")

// errHandled: the run's handling is over (it failed and was recorded).
var errHandled = errors.New("tasks: the run was handled")

// keeper holds a claim's lease: it renews it in the background and
// checks it before writes.
type keeper struct {
	w      *Worker
	cancel context.CancelFunc
	mu     sync.Mutex
	claim  Claim
	lost   bool
}

func (k *keeper) current() Claim {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.claim
}

func (k *keeper) isLost() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lost
}

// renew extends the lease every third of it until ctx ends.
func (k *keeper) renew(ctx context.Context) {
	t := time.NewTicker(max(k.w.lease/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.extend(ctx); errors.Is(err, errLeaseLost) {
				return
			}
		}
	}
}

// extend renews the lease now. A lost lease cancels the run.
func (k *keeper) extend(ctx context.Context) error {
	c := k.current()
	nc, err := k.w.queue.Extend(ctx, c, k.w.lease)
	switch {
	case vigil.ErrorCode(err) == vigil.Conflict:
		k.mu.Lock()
		k.lost = true
		k.mu.Unlock()
		k.cancel()
		k.w.logger.WarnContext(ctx, "tasks: lease lost; another worker has the run", "worker", k.w.id, "run", c.RunID)
		return errLeaseLost
	case err != nil:
		return err
	}
	k.mu.Lock()
	if k.claim.Token == nc.Token {
		k.claim = nc
	}
	k.mu.Unlock()
	return nil
}

// ensure returns nil if the lease holds for at least a third of the Lease
// from now, renewing it if it would not; errLeaseLost if it is lost.
func (k *keeper) ensure(ctx context.Context) error {
	k.mu.Lock()
	lost, until := k.lost, k.claim.Until
	k.mu.Unlock()
	if lost {
		return errLeaseLost
	}
	if k.w.now().Add(k.w.lease / 3).Before(until) {
		return nil
	}
	return k.extend(ctx)
}

// flushAfter is the longest an event or a checkpoint of a run waits in
// its execution before it is written on its own.
const flushAfter = 25 * time.Millisecond

// execution is one run in a worker's hands; it is the executor's Reporter.
//
// What the executor reports waits, at most flushAfter, for the run's next
// write, and travels with it: in one store write when the Store is a
// ThreadedRunUpdater that can make it.
//
//   - Events wait in pending.
//   - A checkpoint is kept in run (dirty) and written before the next event
//     the executor emits, since an executor announces each step's side
//     effects (a tool_call) before making them: a step that must not run
//     twice starts only once the checkpoint before it is stored. The last
//     step's checkpoint travels with the run's outcome.
//
// A run that calls a quick tool and succeeds so makes two writes, running
// and succeeded, each with its events, where it made one per event and one
// per update and checkpoint. Readers of the thread see the events in the
// order they were emitted, at most flushAfter later.
type execution struct {
	w  *Worker
	k  *keeper
	th thread

	mu sync.Mutex // held over each write, so that writes keep their order
	// run is the run as the worker last wrote or kept it. Only the
	// goroutine that executes the run writes it, under mu, and it reads
	// it without mu; the flush timer writes what run holds but never
	// assigns it.
	run     Run
	dirty   bool // run has checkpoints the store does not have yet
	pending []streams.Event
	timer   *time.Timer // flushes pending and a dirty run, set while there is one
}

// Emit implements Reporter: the events join pending, after a checkpoint
// kept in run is written. An error is one of the payloads' (invalid data)
// or that checkpoint's write's; the append's own are logged.
func (x *execution) Emit(ctx context.Context, ps ...streams.Payload) error {
	return x.add(ctx, ps, true)
}

// tell adds the worker's own events (the outcome, a warning) to pending.
// They announce no step, so they do not write a kept checkpoint first.
func (x *execution) tell(ctx context.Context, ps ...streams.Payload) error {
	return x.add(ctx, ps, false)
}

// add adds the events of ps to pending, first writing a kept checkpoint
// when they announce a step.
func (x *execution) add(ctx context.Context, ps []streams.Payload, step bool) error {
	evs, err := x.th.events(ctx, ps...)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if step && x.dirty {
		// The step starts only once the checkpoint before it is stored,
		// and its events go with that write: a step that will not start
		// (the write failed) is not announced on the thread.
		return x.save(ctx, evs)
	}
	x.pending = append(x.pending, evs...)
	x.startTimer(ctx)
	return nil
}

// flush writes the pending events and a kept checkpoint now. A failure is
// logged: the run's next write tries again, or its lease runs out.
func (x *execution) flush(ctx context.Context) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.save(ctx, nil); err != nil {
		x.w.logger.WarnContext(ctx, "tasks: checkpoint not stored", "run", x.th.runID, "err", err)
	}
}

// save writes a kept checkpoint with the pending events and then
// announce, the events of the step the checkpoint comes before, or the
// events alone; x.mu is held. When the checkpoint's write fails, announce
// is dropped: the executor is told, and the step does not start. A
// checkpoint that can no longer be stored (the lease is lost, the run
// gone) is dropped, so that no later flush tries again.
func (x *execution) save(ctx context.Context, announce []streams.Event) error {
	if !x.dirty {
		x.pending = append(x.pending, announce...)
		x.appendPending(ctx)
		return nil
	}
	err := x.k.ensure(ctx)
	if err != nil {
		x.appendPending(ctx)
	} else {
		err = x.store(ctx, x.run, RunRunning, "", announce)
	}
	if err == nil || errors.Is(err, errLeaseLost) || errors.Is(err, errRunGone) {
		x.dirty = false
	}
	return err
}

func (x *execution) startTimer(ctx context.Context) {
	if x.timer == nil && (x.dirty || len(x.pending) > 0) {
		ctx := context.WithoutCancel(ctx)
		x.timer = time.AfterFunc(flushAfter, func() { x.flush(ctx) })
	}
}

// appendPending appends pending in a write of its own; x.mu is held.
func (x *execution) appendPending(ctx context.Context) {
	x.stopTimer()
	evs := x.pending
	x.pending = nil
	if err := x.th.append(ctx, evs); err != nil {
		x.w.logger.ErrorContext(ctx, "tasks: run events not appended to the thread", "run", x.th.runID, "events", len(evs), "err", err)
	}
}

func (x *execution) stopTimer() {
	if x.timer != nil {
		x.timer.Stop()
		x.timer = nil
	}
}

// Checkpoint implements Reporter: the checkpoint is kept in run and
// written with the run's next write, before the executor's next event at
// the latest (see execution); at once, and then ErrYield, when the worker
// is stopping.
func (x *execution) Checkpoint(ctx context.Context, step int, state json.RawMessage) error {
	now := x.w.now().UTC()
	x.mu.Lock()
	defer x.mu.Unlock()
	next := x.run
	next.Checkpoints = append(slices.Clip(x.run.Checkpoints), Checkpoint{Step: step, At: now, State: state})
	next.UpdatedAt = now
	if !x.w.isStopping() {
		x.run, x.dirty = next, true
		x.startTimer(ctx)
		return nil
	}
	if err := x.k.ensure(ctx); err != nil {
		return err
	}
	if err := x.updateLocked(ctx, next, RunRunning, ""); err != nil {
		return err
	}
	return ErrYield
}

// update writes next over the run if its status is still from, after
// checking the lease, and keeps next as the run; the pending events go
// with it and, with to set, the task_status event from → to. A run that
// changed under the worker (cancelled, deleted) is errRunGone.
func (x *execution) update(ctx context.Context, next Run, from, to RunStatus) error {
	if err := x.k.ensure(ctx); err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.updateLocked(ctx, next, from, to)
}

// updateLocked is update once the lease is checked; x.mu is held.
func (x *execution) updateLocked(ctx context.Context, next Run, from, to RunStatus) error {
	if err := x.store(ctx, next, from, to, nil); err != nil {
		if errors.Is(err, errRunGone) {
			x.dirty = false // no write of the run can succeed any more
		}
		return err
	}
	x.run, x.dirty = next, false
	return nil
}

// store is write, with a run that changed under the worker (cancelled,
// deleted) as errRunGone; x.mu is held.
func (x *execution) store(ctx context.Context, next Run, from, to RunStatus, announce []streams.Event) error {
	err := x.write(ctx, next, from, to, announce)
	switch vigil.ErrorCode(err) {
	case vigil.Conflict, vigil.NotFound:
		return errRunGone
	}
	return err
}

// write is update's store write; x.mu is held. With a ThreadedRunUpdater
// it is one write, else (and once the store answered that it cannot, see
// Worker.unthreaded) the pending events, the update, then announce and the
// status event one after the other. Pending events are appended whether
// or not the update succeeds (they report what happened); announce (a
// step's events, see save) and the status event only when it does.
func (x *execution) write(ctx context.Context, next Run, from, to RunStatus, announce []streams.Event) error {
	after := slices.Clip(announce)
	if to != "" {
		status, err := x.th.events(ctx, x.th.change(from, to))
		if err != nil {
			return err
		}
		after = append(after, status...)
	}
	if u, ok := x.w.store.(ThreadedRunUpdater); ok && x.th.log != nil && x.th.id != "" && !x.w.unthreaded.Load() {
		err := u.UpdateRunThreaded(ctx, x.th.log, next, from, x.th.id, append(slices.Clip(x.pending), after...))
		if !errors.Is(err, errors.ErrUnsupported) {
			if err == nil {
				x.pending = nil
			}
			x.appendPending(ctx)
			return err
		}
		x.w.unthreaded.Store(true)
	}
	x.appendPending(ctx)
	err := x.w.store.UpdateRun(ctx, next, from)
	if err == nil && len(after) > 0 {
		if aerr := x.th.append(ctx, after); aerr != nil {
			x.w.logger.ErrorContext(ctx, "tasks: run events not appended to the thread", "run", x.th.runID, "events", len(after), "from", from, "to", to, "err", aerr)
		}
	}
	return err
}

// process carries claim k through the run's lifecycle.
func (w *Worker) process(ctx context.Context, k *keeper) {
	c := k.current()
	r, t, err := w.runTask(ctx, c)
	if vigil.ErrorCode(err) == vigil.NotFound {
		w.ack(ctx, k)
		return
	}
	if err != nil {
		w.logger.ErrorContext(ctx, "tasks: read run", "run", c.RunID, "err", err)
		w.releaseIfHeld(ctx, k, w.tenWait)
		return
	}
	if r.Status.Terminal() || r.Status == RunWaitingInput {
		w.ack(ctx, k) // finished, or waits for the user, who queues it again
		return
	}
	if vigil.TraceID(ctx) == "" {
		ctx = vigil.WithTraceID(ctx, RunTraceID(r.ID)) // the worker's events and the executor's share it
	}
	if t == nil {
		var rt Task
		rt, err = w.store.Task(ctx, r.Tenant, r.TaskID)
		t = &rt
	} else if t.ID == "" {
		err = vigil.Errorf(vigil.NotFound, "task %s not found", r.TaskID)
	}
	if vigil.ErrorCode(err) == vigil.NotFound {
		w.ack(ctx, k)
		return
	}
	if err != nil {
		w.logger.ErrorContext(ctx, "tasks: read task", "run", r.ID, "task", r.TaskID, "err", err)
		w.releaseIfHeld(ctx, k, w.tenWait)
		return
	}
	ctx = withRunTask(ctx, t)
	x := &execution{w: w, k: k, run: r, th: thread{
		log: w.log, logger: w.logger, now: w.now, tenant: r.Tenant, id: t.ThreadID, taskID: r.TaskID, runID: r.ID,
	}}
	defer x.flush(ctx) // what no update carried, such as events after a lost lease
	if err := x.start(ctx, c); err != nil {
		if !w.settle(ctx, x, err) {
			w.logger.ErrorContext(ctx, "tasks: run not started", "run", r.ID, "err", err)
			w.releaseIfHeld(ctx, k, w.tenWait)
		}
		return
	}
	for {
		began := w.now()
		out, err := w.execute(ctx, x)
		took := w.now().Sub(began)
		if err == nil {
			w.obs.Finished(AttemptSucceeded, took)
			w.succeed(ctx, x, out)
			return
		}
		if o := w.settleAs(ctx, x, err); o != "" {
			w.obs.Finished(o, took)
			return
		}
		class, after := Classify(err)
		retry, wait := w.retry.decide(x.run.Attempt, class, after)
		if !retry {
			w.obs.Finished(AttemptFailed, took)
			w.fail(ctx, x, err, class)
			return
		}
		w.obs.Finished(AttemptRetried, took)
		w.obs.Retried(class)
		// An immediate retry is an attempt like any other: it waits for the
		// rate limiter, and a worker that stops meanwhile gives it back.
		if wait > 0 || w.isStopping() || w.admit(ctx) != nil {
			x.retryLater(ctx, err, class, wait)
			return
		}
		if err := x.retryNow(ctx, err, class); err != nil {
			w.settle(ctx, x, err)
			return
		}
	}
}

// execute runs one attempt of x's run under its tenant's MaxRunDuration:
// past it the attempt's context is cancelled, and the attempt's error
// becomes a permanent one saying that the run took too long. An executor
// that returns a result although its context ended has still finished:
// its result stands.
func (w *Worker) execute(ctx context.Context, x *execution) (Outcome, error) {
	var limit time.Duration
	if w.maxRun != nil {
		limit = w.maxRun(x.run.Tenant)
	}
	if limit <= 0 {
		return w.exec.Execute(ctx, x.run, x)
	}
	over := fmt.Errorf("the run took longer than %s, the most one attempt may take for tenant %s (its max run duration); it is not retried", limit, x.run.Tenant)
	attempt, cancel := context.WithTimeoutCause(ctx, limit, over)
	defer cancel()
	out, err := w.exec.Execute(attempt, x.run, x)
	if err != nil && ctx.Err() == nil && context.Cause(attempt) == over {
		return out, Permanent(over)
	}
	return out, err
}

// runTask reads the run of c and, when the store reads both in one call
// (RunTaskReader), its task; t is nil when it is still to be read.
func (w *Worker) runTask(ctx context.Context, c Claim) (r Run, t *Task, err error) {
	if rt, ok := w.store.(RunTaskReader); ok {
		r, task, err := rt.RunTask(ctx, c.Tenant, c.RunID)
		return r, &task, err
	}
	r, err = w.store.Run(ctx, c.Tenant, c.RunID)
	return r, nil, err
}

// settle handles the errors that end a run's handling without a verdict
// on the run and reports whether err was one: the lease is lost or the
// worker died (write nothing), the run went away (ack), the worker is
// stopping (give the run back). Other errors are the run's own.
func (w *Worker) settle(ctx context.Context, x *execution, err error) bool {
	return w.settleAs(ctx, x, err) != ""
}

// settleAs is settle, and says how the attempt ended when err was one of
// those errors; "" when it was the run's own.
func (w *Worker) settleAs(ctx context.Context, x *execution, err error) AttemptOutcome {
	switch {
	case errors.Is(err, errHandled), x.k.isLost(), errors.Is(err, errLeaseLost), w.hard.Err() != nil:
		return AttemptLost
	case errors.Is(err, errRunGone):
		w.ack(ctx, x.k)
		return AttemptCancelled
	case w.isStopping() && (errors.Is(err, ErrYield) || ctx.Err() != nil):
		x.requeue(ctx)
		return AttemptYielded
	case ctx.Err() != nil:
		return AttemptLost
	}
	return ""
}

// start moves the run to running: retrying → queued → running, queued →
// running (a new attempt), or running → running for a run whose worker
// died (the same attempt, resumed from its checkpoints).
func (x *execution) start(ctx context.Context, c Claim) error {
	for range casAttempts {
		r := x.run
		now := x.w.now().UTC()
		var err error
		switch r.Status {
		case RunRetrying:
			if wait := r.RetryAt.Sub(now); wait > 0 {
				// Its backoff has not passed: the worker that set it died
				// before it gave the run back with that delay. Give it back
				// now, for what is left of the wait.
				x.w.releaseIfHeld(ctx, x.k, wait)
				return errHandled
			}
			next := r
			next.Status, next.UpdatedAt = RunQueued, now
			err = x.update(ctx, next, RunRetrying, RunQueued)
			if err == nil {
				continue
			}
		case RunQueued:
			next := r
			next.Status, next.Attempt, next.StartedAt, next.RetryAt, next.UpdatedAt = RunRunning, r.Attempt+1, now, time.Time{}, now
			if err = x.update(ctx, next, RunQueued, RunRunning); err == nil {
				return nil
			}
		case RunRunning:
			if c.Deliveries > x.w.maxDeliv {
				x.w.fail(ctx, x, fmt.Errorf("the run was taken over %d times from workers that stopped while running it", c.Deliveries-1), ErrorPermanent)
				return errHandled
			}
			next := r
			next.StartedAt, next.UpdatedAt = now, now
			if err = x.update(ctx, next, RunRunning, ""); err == nil {
				_ = x.tell(ctx, streams.Status{Phase: streams.PhaseThinking, Detail: "taken over from a worker that stopped while running it"})
				return nil
			}
		default:
			return errRunGone
		}
		if !errors.Is(err, errRunGone) {
			return err
		}
		// The status changed under us: read it again and decide anew.
		cur, gerr := x.w.store.Run(ctx, r.Tenant, r.ID)
		if vigil.ErrorCode(gerr) == vigil.NotFound {
			return errRunGone
		}
		if gerr != nil {
			return gerr
		}
		x.mu.Lock()
		x.run = cur
		x.mu.Unlock()
	}
	return errRunGone
}

// retryNow records a failed attempt and starts the next one at once.
func (x *execution) retryNow(ctx context.Context, cause error, class ErrorClass) error {
	now := x.w.now().UTC()
	next := x.run
	next.Status, next.Error, next.ErrorClass, next.RetryAt, next.UpdatedAt = RunRetrying, errText(cause), class, now, now
	if err := x.update(ctx, next, RunRunning, RunRetrying); err != nil {
		return err
	}
	next.Status = RunQueued
	if err := x.update(ctx, next, RunRetrying, RunQueued); err != nil {
		return err
	}
	next.Status, next.Attempt, next.StartedAt, next.RetryAt = RunRunning, next.Attempt+1, x.w.now().UTC(), time.Time{}
	return x.update(ctx, next, RunQueued, RunRunning)
}

// retryLater records a failed attempt and gives the run back to the queue
// until wait has passed.
func (x *execution) retryLater(ctx context.Context, cause error, class ErrorClass, wait time.Duration) {
	now := x.w.now().UTC()
	next := x.run
	next.Status, next.Error, next.ErrorClass, next.RetryAt, next.UpdatedAt = RunRetrying, errText(cause), class, now.Add(wait), now
	if err := x.update(ctx, next, RunRunning, RunRetrying); err != nil {
		x.w.settle(ctx, x, err)
		return
	}
	x.w.releaseIfHeld(ctx, x.k, wait)
}

// requeue gives a run back at shutdown: running → queued, keeping its
// checkpoints and its attempt (the next worker continues it), and
// releases the lease. The run's context may have ended; the writes use
// their own.
func (x *execution) requeue(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	next := x.run
	next.Status, next.Attempt, next.UpdatedAt = RunQueued, max(x.run.Attempt-1, 0), x.w.now().UTC()
	if err := x.update(ctx, next, RunRunning, RunQueued); err != nil {
		if errors.Is(err, errRunGone) {
			x.w.ack(ctx, x.k)
		}
		return
	}
	x.w.releaseIfHeld(ctx, x.k, 0)
}

// succeed tells the thread, the webhooks and the chained tasks about the
// outcome, then marks the run succeeded and acks it.
func (w *Worker) succeed(ctx context.Context, x *execution, out Outcome) {
	now := w.now().UTC()
	final := x.run
	final.Status, final.Result, final.FinishedAt, final.UpdatedAt = RunSucceeded, out.Result, now, now
	if len(final.Result) == 0 {
		final.Result = json.RawMessage("null")
	}
	if !out.Quiet {
		if err := x.k.ensure(ctx); err != nil {
			w.settle(ctx, x, err)
			return
		}
		var ps []streams.Payload
		if out.Summary != "" {
			ps = append(ps, streams.Text{MessageID: fmt.Sprintf("%s.a%d", x.run.ID, x.run.Attempt), Text: out.Summary})
		}
		ps = append(ps, streams.Done{Summary: clip(out.Summary, 500), Status: streams.OutcomeSucceeded})
		if err := x.tell(ctx, ps...); err != nil {
			w.logger.ErrorContext(ctx, "tasks: result not appended to the thread", "run", x.run.ID, "err", err)
		}
		w.notify(ctx, x, final, out.Summary)
		w.chain(ctx, final)
	}
	if err := x.update(ctx, final, RunRunning, RunSucceeded); err != nil {
		w.settle(ctx, x, err)
		return
	}
	w.ack(ctx, x.k)
}

// fail tells the thread and the webhooks that the run failed, marks it
// failed (a dead letter) and acks it.
func (w *Worker) fail(ctx context.Context, x *execution, cause error, class ErrorClass) {
	now := w.now().UTC()
	final := x.run
	final.Status, final.Error, final.ErrorClass, final.FinishedAt, final.UpdatedAt = RunFailed, errText(cause), class, now, now
	if err := x.k.ensure(ctx); err != nil {
		w.settle(ctx, x, err)
		return
	}
	summary := fmt.Sprintf("%s failed: %s", x.run.Spec.Title, final.Error)
	err := x.tell(ctx,
		streams.Error{Code: "run_failed", Message: clip(final.Error, 2000), Retryable: false},
		streams.Done{Summary: clip(summary, 500), Status: streams.OutcomeFailed})
	if err != nil {
		w.logger.ErrorContext(ctx, "tasks: failure not appended to the thread", "run", x.run.ID, "err", err)
	}
	w.notify(ctx, x, final, summary)
	if err := x.update(ctx, final, RunRunning, RunFailed); err != nil {
		w.settle(ctx, x, err)
		return
	}
	w.obs.DeadLettered(class)
	w.ack(ctx, x.k)
}

func errText(err error) string {
	if s := err.Error(); s != "" {
		return s
	}
	return "the run failed"
}

// notify POSTs the finished run to its webhooks; a failure is a warning
// on the thread, not a failure of the run.
func (w *Worker) notify(ctx context.Context, x *execution, final Run, summary string) {
	if w.notifier == nil || len(final.Spec.Notify) == 0 {
		return
	}
	x.flush(ctx) // the last checkpoint is stored, and the thread hears of the outcome, before the webhooks
	if err := w.notifier.Notify(ctx, final.Spec.Notify, notificationOf(final, summary)); err != nil {
		w.logger.WarnContext(ctx, "tasks: webhook not delivered", "run", final.ID, "err", err)
		_ = x.tell(ctx, streams.Warning{Code: "webhook_failed", Message: clip("a webhook was not told of this run: "+err.Error(), 1000)})
	}
}

// chain creates a run of each active task final.Spec.Then names, keyed by
// final's slot, so that a run that succeeds twice (resumed after a crash)
// starts each successor once.
func (w *Worker) chain(ctx context.Context, final Run) {
	if len(final.Spec.Then) == 0 {
		return
	}
	depth, p := 0, final
	for p.Cause == CauseChain && p.Parent != "" && depth < w.maxChain {
		parent, err := w.store.Run(ctx, p.Tenant, p.Parent)
		if err != nil {
			break
		}
		depth, p = depth+1, parent
	}
	if depth >= w.maxChain {
		w.logger.WarnContext(ctx, "tasks: chain too deep; not starting the next tasks", "run", final.ID, "depth", depth)
		return
	}
	now := w.now().UTC()
	for _, id := range final.Spec.Then {
		t, err := w.store.Task(ctx, final.Tenant, id)
		if err != nil || t.Status != StatusActive {
			if err != nil && vigil.ErrorCode(err) != vigil.NotFound {
				w.logger.ErrorContext(ctx, "tasks: chained task not read", "run", final.ID, "task", id, "err", err)
			}
			continue
		}
		r := Run{
			ID: scheduledRunID(t.Tenant, t.ID, final.Slot), Tenant: t.Tenant, TaskID: t.ID, TaskVersion: t.Version, Spec: t.Spec,
			Slot: final.Slot, Due: now, Cause: CauseChain, Parent: final.ID, Status: RunQueued, CreatedAt: now, UpdatedAt: now,
		}
		th := thread{log: w.log, logger: w.logger, now: w.now, tenant: t.Tenant, id: t.ThreadID, taskID: t.ID, runID: r.ID}
		created, err := createQueued(ctx, w.store, w.queue, r, func() { th.status(ctx, "", RunQueued) })
		if err != nil && vigil.ErrorCode(err) != vigil.Conflict {
			msg := "tasks: chained run not created"
			if created {
				msg = "tasks: chained run created but not enqueued; the sweep enqueues it"
			}
			w.logger.ErrorContext(ctx, msg, "run", final.ID, "task", id, "err", err)
		}
	}
}

func (w *Worker) ack(ctx context.Context, k *keeper) {
	if k.isLost() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := w.queue.Ack(ctx, k.current()); err != nil && vigil.ErrorCode(err) != vigil.Conflict {
		w.logger.ErrorContext(ctx, "tasks: ack failed", "run", k.current().RunID, "err", err)
	}
}

func (w *Worker) releaseIfHeld(ctx context.Context, k *keeper, delay time.Duration) {
	if k.isLost() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := w.queue.Release(ctx, k.current(), delay); err != nil && vigil.ErrorCode(err) != vigil.Conflict {
		w.logger.ErrorContext(ctx, "tasks: release failed", "run", k.current().RunID, "err", err)
	}
}

package tasks

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// BatchEnqueuer is an optional capability of a Queue: enqueuing many items
// in one call. The Scheduler uses it, when its Queue has it, to enqueue the
// runs it creates for a group of due entries together.
//
// EnqueueBatch enqueues every item with the same delay, as that many
// Enqueue calls would: an item the queue holds already is left as it is.
// An invalid item fails the whole call with vigil.Invalid before anything
// is enqueued. Other errors leave it unknown which items were enqueued, so
// a caller that retries must rely on Enqueue being idempotent. It is safe
// for concurrent use, like every Queue method.
type BatchEnqueuer interface {
	EnqueueBatch(ctx context.Context, items []QueueItem, delay time.Duration) error
}

// TaskRef names a task of a tenant.
type TaskRef struct {
	Tenant, ID string
}

// NextMove is one AdvanceNext: replace the entry From with To, or remove
// it when To is nil.
type NextMove struct {
	From ScheduleEntry
	To   *ScheduleEntry
}

// BatchStore is an optional capability of a Store: the reads and writes
// the Scheduler makes per due entry, for many entries in one call each, so
// that a backend across the network answers a group of entries in one
// round trip per step rather than one per entry. The Scheduler uses it
// when its Store has it. store/storetest.TaskBatches is its conformance
// suite.
//
// Every method does what the same Store method would for each element, on
// its own: each element keeps the atomicity and the compare-and-set rules
// of its single call (of two CreateRuns with one idempotency key, in one
// batch or in two, exactly one succeeds), but a batch as a whole is not
// atomic. Errors are per element, in the order of the input, with the
// vigil codes the single call would give; a backend failure may fail
// every element. Implementations are safe for concurrent use.
type BatchStore interface {
	// TaskBatch returns the tasks refs name, in the order of refs. A task
	// that does not exist, or whose ids are invalid, reads as the zero
	// Task (ID ""), where Task would answer vigil.NotFound. The error is a
	// failure to read: then no task is returned.
	TaskBatch(ctx context.Context, refs []TaskRef) ([]Task, error)

	// CreateRuns stores runs as that many CreateRun calls would and
	// returns what each returned: nil, vigil.NotFound (the task is
	// missing), vigil.Conflict (the id or the idempotency key is taken),
	// vigil.Invalid, or a backend failure.
	CreateRuns(ctx context.Context, runs []Run) []error

	// AdvanceNextBatch makes the moves as that many AdvanceNext calls
	// would and returns what each returned.
	AdvanceNextBatch(ctx context.Context, moves []NextMove) []error
}

// ThreadedRunsCreator is an optional capability of a BatchStore that
// keeps the tasks' threads in the same backend: it creates runs each with
// the events that report it in one step, where the Scheduler otherwise
// makes CreateRuns and then an append per run. The Scheduler uses it when
// its Store has it, checked with a type assertion.
//
// CreateRunsThreaded does what CreateRuns(ctx, runs) does, returning its
// errors, and in the step that creates runs[i] appends evs[i] to the
// tenant's thread threads[i]; a run not created gets no events, nor does
// a thread that does not exist, or "". log is as for ThreadedRunUpdater:
// when it is not the store's own, or the store cannot make both writes in
// one step, CreateRunsThreaded stores nothing and returns an error
// matching errors.ErrUnsupported.
type ThreadedRunsCreator interface {
	CreateRunsThreaded(ctx context.Context, log streams.Log, runs []Run, threads []string, evs [][]streams.Event) ([]error, error)
}

// firing is one due entry of a group the Scheduler fires together: what
// fire would do for it, step by step.
type firing struct {
	e    ScheduleEntry
	t    Task
	rep  TickReport
	run  *Run      // the run to create, if the entry fires one
	move *NextMove // the AdvanceNext to make last, if any
	// queued is set once the run is stored and must be enqueued: a new run
	// (created), or a run of the slot found still queued (a repair).
	// announced: its task_status event, if its task has a thread, was
	// stored with it.
	queued, created, announced bool
	failed                     bool // the entry met an error: nothing more is done
}

// fireGroup handles the due entries es as fire would handle each, with
// one call per step for the whole group: TaskBatch, CreateRuns (with the
// runs' task_status events when the store is a ThreadedRunsCreator), the
// task_status events when they were not stored with the runs, an enqueue
// (one EnqueueBatch when the queue has it), then AdvanceNextBatch. The
// steps keep fire's order where the crash repair fire relies on it: an
// entry advances only after its run is stored and enqueued. If TaskBatch
// fails, each entry is fired on its own.
func (s *Scheduler) fireGroup(ctx context.Context, bs BatchStore, es []ScheduleEntry, now time.Time) TickReport {
	fs := make([]firing, len(es))
	refs := make([]TaskRef, len(es))
	for i, e := range es {
		fs[i].e = e
		refs[i] = TaskRef{Tenant: e.Tenant, ID: e.TaskID}
	}
	ts, err := bs.TaskBatch(ctx, refs)
	if err == nil && len(ts) != len(es) {
		err = fmt.Errorf("tasks: TaskBatch returned %d tasks for %d refs", len(ts), len(es))
	}
	if err != nil {
		// One unreadable task (a corrupt record) must not hold back the
		// others: fire each entry on its own, which reads its task alone.
		s.logger.WarnContext(ctx, "tasks: scheduler batch read failed; firing its entries one by one", "entries", len(es), "err", err)
		var rep TickReport
		for _, e := range es {
			rep.add(s.fire(ctx, e, now))
		}
		return rep
	}
	for i := range fs {
		fs[i].t = ts[i]
		s.plan(&fs[i], now)
	}
	s.createRuns(ctx, bs, fs)
	// The new runs' task_status events (→ queued) go on their threads
	// before the runs are enqueued, so that a worker's queued → running
	// cannot come first; most were stored with the runs already.
	var unannounced []thread
	for i := range fs {
		if f := &fs[i]; !f.failed && f.created && !f.announced {
			unannounced = append(unannounced, thread{log: s.log, logger: s.logger, now: s.now, tenant: f.t.Tenant, id: f.t.ThreadID, taskID: f.t.ID, runID: f.run.ID})
		}
	}
	s.queuedEvents(ctx, unannounced)
	s.enqueueRuns(ctx, fs)
	for i := range fs {
		if f := &fs[i]; !f.failed && f.created {
			f.rep.Fired, f.rep.MaxLag = 1, max(now.Sub(f.run.Due), 0)
			s.obs.Fired(itemOf(*f.run).Priority, f.rep.MaxLag)
		}
	}
	var moves []NextMove
	var movers []*firing
	for i := range fs {
		if f := &fs[i]; !f.failed && f.move != nil {
			moves, movers = append(moves, *f.move), append(movers, f)
		}
	}
	if len(moves) > 0 {
		errs := bs.AdvanceNextBatch(ctx, moves)
		for i, f := range movers {
			var err error
			if i < len(errs) {
				err = errs[i]
			} else {
				err = fmt.Errorf("tasks: AdvanceNextBatch returned %d errors for %d moves", len(errs), len(moves))
			}
			if err != nil {
				s.failEntry(ctx, f, "advance", err)
			} else if f.move.To == nil {
				s.finishFired(ctx, f.t, now)
			}
		}
	}
	var rep TickReport
	for i := range fs {
		rep.add(fs[i].rep)
	}
	return rep
}

// createRunsThreaded stores runs, those of owners, with CreateRuns, or
// with their task_status events (→ queued) in the same steps when bs is a
// ThreadedRunsCreator; announced says which it did.
func (s *Scheduler) createRunsThreaded(ctx context.Context, bs BatchStore, runs []Run, owners []*firing) (errs []error, announced bool) {
	tc, ok := bs.(ThreadedRunsCreator)
	if !ok || s.log == nil {
		return bs.CreateRuns(ctx, runs), false
	}
	threads := make([]string, len(runs))
	evs := make([][]streams.Event, len(runs))
	for i, f := range owners {
		if f.t.ThreadID == "" {
			continue // no thread to tell: no events
		}
		th := thread{log: s.log, now: s.now, tenant: f.t.Tenant, id: f.t.ThreadID, taskID: f.t.ID, runID: f.run.ID}
		ev, err := th.events(ctx, th.change("", RunQueued))
		if err != nil {
			return bs.CreateRuns(ctx, runs), false
		}
		threads[i], evs[i] = th.id, ev
	}
	errs, err := tc.CreateRunsThreaded(ctx, s.log, runs, threads, evs)
	if err != nil { // errors.ErrUnsupported: nothing was stored
		return bs.CreateRuns(ctx, runs), false
	}
	return errs, true
}

// queuedEvents appends the task_status event (→ queued) of each new run
// to its thread, as fire does for one: in one AppendBatch when the Log
// has it, else one Append each, concurrently. A failure is logged, not
// returned: the run is stored already, and is enqueued all the same.
func (s *Scheduler) queuedEvents(ctx context.Context, ths []thread) {
	ba, ok := s.log.(BatchAppender)
	if !ok || len(ths) < 2 {
		concurrently(len(ths), func(i int) { ths[i].status(ctx, "", RunQueued) })
		return
	}
	batch := make([]ThreadEvents, 0, len(ths))
	sent := make([]thread, 0, len(ths))
	for _, th := range ths {
		if th.id == "" {
			continue
		}
		evs, err := th.events(ctx, th.change("", RunQueued))
		if err != nil {
			s.logger.ErrorContext(ctx, "tasks: task_status event not appended", "task", th.taskID, "run", th.runID, "to", RunQueued, "err", err)
			continue
		}
		batch, sent = append(batch, ThreadEvents{Tenant: th.tenant, Thread: th.id, Events: evs}), append(sent, th)
	}
	if len(batch) == 0 {
		return
	}
	errs := ba.AppendBatch(context.WithoutCancel(ctx), batch)
	for i, th := range sent {
		var err error
		if i < len(errs) {
			err = errs[i]
		} else {
			err = fmt.Errorf("tasks: AppendBatch returned %d errors for %d appends", len(errs), len(batch))
		}
		if err != nil {
			s.logger.ErrorContext(ctx, "tasks: task_status event not appended", "task", th.taskID, "run", th.runID, "to", RunQueued, "err", err)
		}
	}
}

// failEntry is fire's fail for an entry of a group: it logs err and marks
// f failed (Failed 1, nothing more done), except for a lost AdvanceNext,
// where the user's change stands and f's outcome is kept, as in fire.
func (s *Scheduler) failEntry(ctx context.Context, f *firing, what string, err error) TickReport {
	if vigil.ErrorCode(err) == vigil.Conflict && what == "advance" {
		return f.rep
	}
	s.logger.ErrorContext(ctx, "tasks: scheduler entry failed", "tenant", f.e.Tenant, "task", f.e.TaskID, "slot", f.e.Slot, "op", what, "err", err)
	f.failed, f.rep = true, TickReport{Failed: 1}
	return f.rep
}

// plan decides, from f's task read already, what fire would do for f's
// entry: the run to create and the move to make, or only the move.
func (s *Scheduler) plan(f *firing, now time.Time) {
	e, t := f.e, f.t
	if t.ID == "" || t.Status != StatusActive {
		f.move, f.rep = &NextMove{From: e}, TickReport{Dropped: 1} // see fire
		return
	}
	trig := t.Trigger
	if !isSlot(trig, e.Slot) {
		f.move, f.rep = &NextMove{From: e, To: entryAfter(t, now)}, TickReport{Moved: 1}
		return
	}
	last, ok := latestDue(t, e.Slot, now)
	if !ok {
		to := entryFor(t, e.Slot)
		f.move, f.rep = &NextMove{From: e, To: &to}, TickReport{Moved: 1}
		return
	}
	f.move = &NextMove{From: e, To: entryAfter(t, last)}
	due := trig.DueAt(t.ID, last)
	if now.Sub(due) > s.grace && t.CatchUp == CatchUpSkip {
		f.rep.Skipped = 1
		return
	}
	f.run = &Run{
		ID: scheduledRunID(t.Tenant, t.ID, last), Tenant: t.Tenant, TaskID: t.ID, TaskVersion: t.Version, Spec: t.Spec,
		Slot: last, Due: due, Cause: CauseSchedule, Status: RunQueued, CreatedAt: now, UpdatedAt: now,
	}
}

// createRuns stores the runs of fs in one CreateRuns, and handles a slot
// that has a run already as createQueued does: a duplicate, whose run is
// enqueued again if it is still queued (a crash between CreateRun and
// Enqueue).
func (s *Scheduler) createRuns(ctx context.Context, bs BatchStore, fs []firing) {
	var runs []Run
	var owners []*firing
	for i := range fs {
		if f := &fs[i]; !f.failed && f.run != nil {
			runs, owners = append(runs, *f.run), append(owners, f)
		}
	}
	if len(runs) == 0 {
		return
	}
	errs, announced := s.createRunsThreaded(ctx, bs, runs, owners)
	for i, f := range owners {
		var err error
		if i < len(errs) {
			err = errs[i]
		} else {
			err = fmt.Errorf("tasks: CreateRuns returned %d errors for %d runs", len(errs), len(runs))
		}
		switch {
		case err == nil:
			f.queued, f.created, f.announced = true, true, announced
		case vigil.ErrorCode(err) == vigil.Conflict:
			f.rep.Duplicates = 1
			if cur, gerr := s.store.Run(ctx, f.run.Tenant, f.run.ID); gerr == nil && cur.Status == RunQueued {
				f.run, f.queued = &cur, true
			}
		default:
			s.failEntry(ctx, f, "create run", err)
		}
	}
}

// enqueueRuns enqueues the runs of fs to be queued: in one EnqueueBatch
// when the queue has it, else one Enqueue each, concurrently. An entry
// whose run is not enqueued fails, as in fire.
func (s *Scheduler) enqueueRuns(ctx context.Context, fs []firing) {
	var items []QueueItem
	var owners []*firing
	for i := range fs {
		if f := &fs[i]; !f.failed && f.queued {
			items, owners = append(items, itemOf(*f.run)), append(owners, f)
		}
	}
	if len(items) == 0 {
		return
	}
	if bq, ok := s.queue.(BatchEnqueuer); ok {
		if err := bq.EnqueueBatch(ctx, items, 0); err != nil {
			for _, f := range owners {
				s.failEntry(ctx, f, "create run", fmt.Errorf("tasks: enqueue run %s: %w", f.run.ID, err))
			}
		}
		return
	}
	errs := make([]error, len(items))
	concurrently(len(items), func(i int) { errs[i] = s.queue.Enqueue(ctx, items[i], 0) })
	for i, f := range owners {
		if errs[i] != nil {
			s.failEntry(ctx, f, "create run", fmt.Errorf("tasks: enqueue run %s: %w", f.run.ID, errs[i]))
		}
	}
}

// maxConcurrent bounds the goroutines concurrently starts.
const maxConcurrent = 64

// concurrently calls fn(0) … fn(n-1) from up to maxConcurrent goroutines
// and returns when every call has returned. A store that commits
// concurrent writes together (bolt) then commits a group's single calls
// in a few transactions rather than one each.
func concurrently(n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, maxConcurrent) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// ThreadEvents is one Append of a BatchAppender's batch: events for one
// thread of a tenant.
type ThreadEvents struct {
	Tenant, Thread string
	Events         []streams.Event
}

// BatchAppender is an optional capability of a streams.Log: many Appends,
// each to its own thread, in one call. The Scheduler uses it, when its Log
// has it, to append the task_status events of a group of new runs
// together rather than one round trip each.
//
// AppendBatch does what Append would for each element, on its own: each
// element is atomic and gets its IDs as Append assigns them, but the batch
// as a whole is not atomic. Errors are per element, in the order of the
// input, as Append would return them; a backend failure may fail every
// element. Implementations are safe for concurrent use.
type BatchAppender interface {
	AppendBatch(ctx context.Context, batch []ThreadEvents) []error
}

// ThreadedRunUpdater is an optional capability of a Store that keeps the
// tasks' threads in the same backend: it updates a run and appends the
// events that report the change in one step (one transaction, one script),
// where the worker otherwise makes two writes, UpdateRun and an append. A
// run's state changes are most of a worker's writes, so this halves them.
// The Worker uses it when its Store has it, checked with a type assertion.
//
// UpdateRunThreaded does what UpdateRun(ctx, r, from) does, answering its
// errors, and when the update succeeds appends evs to the tenant's thread
// in the same step; when it fails it appends nothing. A thread that does
// not exist (its task was deleted) gets no events and does not fail the
// update. evs may be empty.
//
// log is the streams.Log the caller keeps the thread in. When that is not
// the store's own (another backend, or a wrapper around this one), or the
// store cannot make both writes in one step (Redis Cluster, whose thread
// and task keys live in different slots), UpdateRunThreaded changes
// nothing and returns an error matching errors.ErrUnsupported, and the
// caller makes the two writes one by one. That answer must hold for as
// long as the store and log do: a Worker told it once makes two writes
// from then on, without asking again.
//
// Implementations are safe for concurrent use.
type ThreadedRunUpdater interface {
	UpdateRunThreaded(ctx context.Context, log streams.Log, r Run, from RunStatus, thread string, evs []streams.Event) error
}

// RunTaskReader is an optional capability of a Store: a run and its task
// read in one call. The Worker uses it, when its Store has it, to read
// what it needs to start a claimed run in one round trip rather than two.
//
// RunTask returns the tenant's run id as Run would (vigil.NotFound when
// it is missing) and, with it, the task it belongs to as Task would read
// it, or the zero Task (ID "") when that task does not exist. The task's
// Spec may be left zero: a worker takes the spec from the run (Run.Spec,
// as it fired), and of the task only who owns it, where it reports and
// what it stands at (ids, Owner, OwnerScopes, ThreadID, Status, Version).
// It is safe for concurrent use.
type RunTaskReader interface {
	RunTask(ctx context.Context, tenant, id string) (Run, Task, error)
}

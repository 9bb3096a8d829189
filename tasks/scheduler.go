package tasks

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// Lease is the scheduler's leadership: of all schedulers that share a
// store, only the holder of the lease dispatches, so that a burst of due
// entries is read once. (Two schedulers dispatching at once would still
// fire each slot once, CreateRun sees to that; the lease saves the work.)
// The embedded mode runs one scheduler and uses LocalLease; Redis mode
// will keep the lease in Redis, so that another instance takes over when
// the holder dies.
//
// Implementations are safe for concurrent use by many goroutines and, for
// a shared lease, many processes.
type Lease interface {
	// Acquire makes holder the holder for ttl if the lease is free, has
	// expired, or is holder's already, and reports whether it is.
	Acquire(ctx context.Context, holder string, ttl time.Duration) (bool, error)
	// Renew extends holder's lease to ttl from now, and reports false if
	// holder does not hold it any more (it expired and another took it).
	Renew(ctx context.Context, holder string, ttl time.Duration) (bool, error)
	// Release frees the lease if holder holds it, so that another
	// scheduler need not wait for the ttl; otherwise it does nothing.
	Release(ctx context.Context, holder string) error
}

// LocalLease is a Lease in process memory, for schedulers of one process.
// It is safe for concurrent use.
type LocalLease struct {
	now    func() time.Time
	mu     sync.Mutex
	holder string
	until  time.Time
}

// NewLocalLease returns a free lease on the clock now (nil: time.Now).
func NewLocalLease(now func() time.Time) *LocalLease {
	if now == nil {
		now = time.Now
	}
	return &LocalLease{now: now}
}

// Acquire implements Lease.
func (l *LocalLease) Acquire(_ context.Context, holder string, ttl time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.holder == "" || l.holder == holder || !now.Before(l.until) {
		l.holder, l.until = holder, now.Add(ttl)
		return true, nil
	}
	return false, nil
}

// Renew implements Lease.
func (l *LocalLease) Renew(_ context.Context, holder string, ttl time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.holder != holder || !now.Before(l.until) {
		return false, nil
	}
	l.until = now.Add(ttl)
	return true, nil
}

// Release implements Lease.
func (l *LocalLease) Release(_ context.Context, holder string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holder == holder {
		l.holder, l.until = "", time.Time{}
	}
	return nil
}

// SchedulerOptions configure a Scheduler. Store, Queue and Log are
// required; the zero value of every other field means its default.
type SchedulerOptions struct {
	Store Store
	Queue Queue
	// Log holds the tasks' threads: each run created gets a task_status
	// event.
	Log streams.Log
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Batch is how many due entries one Store.Due call reads; default
	// 1000, at most MaxDueLimit.
	Batch int
	// Tick is how often Run looks for due entries; default 500ms. A slot
	// fires up to a Tick after it is due.
	Tick time.Duration
	// Parallel is how many entries of a batch fire at once; default 32.
	// Entries start in the batch's order, highest priority first. With a
	// Store that is a BatchStore, a batch is cut into Parallel groups of
	// consecutive entries instead, which fire at once, each with one store
	// call per step (see BatchStore).
	Parallel int
	// Grace is how late a slot may fire before it counts as missed (the
	// server was down) and its task's CatchUp policy applies; default 1
	// minute.
	Grace time.Duration
	// Lease is the leadership Run holds while it dispatches; default a
	// NewLocalLease on Now. LeaseTTL is its time to live, renewed every
	// Tick and between batches; default 15s. Holder names this scheduler
	// in the lease; default a random id.
	Lease    Lease
	LeaseTTL time.Duration
	Holder   string
	// Logger receives failures of single entries, which stay in the index
	// and are tried again at the next tick. Default slog.Default().
	Logger *slog.Logger
	// Observer is told of every slot fired and how late; default
	// NopObserver.
	Observer Observer
	// SweepEvery is how often Run sweeps (see Sweep) while it holds the
	// lease; default 5 minutes: a sweep repairs what a failure left (on
	// bolt it walks every run and task), the ticks do the rest. SweepAfter is how long a run must have
	// been queued, without an update, before a sweep enqueues it again;
	// default 1 minute.
	SweepEvery time.Duration
	SweepAfter time.Duration
}

// Scheduler turns the schedule index into queued runs. At each tick it
// reads the due entries (Store.Due, highest priority first, in batches),
// checks each against its task as the index rules demand, and for each
// slot to fire creates a run keyed by the slot (CreateRun: the store
// refuses a second run for a slot, so a slot fires once however many
// schedulers see it), enqueues it and advances the entry to the task's
// next slot (AdvanceNext, which loses to a user's concurrent change).
//
// Per entry, with the task read from the store:
//
//   - the task is gone or not active: the entry is dropped;
//   - the entry's slot is not a slot of the task's trigger (the trigger
//     changed): the entry moves to the trigger's first slot after now;
//   - else the slot to fire is the latest slot of the trigger due by now,
//     from the entry's slot on. If it is more than Grace late, slots were
//     missed while no scheduler ran, and the task's CatchUp applies: skip
//     fires nothing, run_once fires that latest slot. A slot within Grace
//     fires. Either way the entry moves to the first slot after it.
//
// A crash between CreateRun and Enqueue is repaired at the next tick: the
// entry has not advanced, the run's id is derived from its slot, and a
// scheduler that finds the run still queued enqueues it (Enqueue is
// idempotent).
//
// A Scheduler is safe for concurrent use; Tick and RunOnce may be called
// while Run runs, as tests do.
type Scheduler struct {
	store    Store
	queue    Queue
	log      streams.Log
	now      func() time.Time
	batch    int
	tick     time.Duration
	parallel int
	grace    time.Duration
	lease    Lease
	leaseTTL time.Duration
	holder   string
	logger   *slog.Logger
	obs      Observer

	sweepEvery, sweepAfter time.Duration
}

// NewScheduler returns a Scheduler.
func NewScheduler(opts SchedulerOptions) *Scheduler {
	s := &Scheduler{
		store: opts.Store, queue: opts.Queue, log: opts.Log, now: opts.Now,
		batch: opts.Batch, tick: opts.Tick, parallel: opts.Parallel, grace: opts.Grace,
		lease: opts.Lease, leaseTTL: opts.LeaseTTL, holder: opts.Holder, logger: opts.Logger, obs: opts.Observer,
		sweepEvery: opts.SweepEvery, sweepAfter: opts.SweepAfter,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.batch <= 0 {
		s.batch = 1000
	}
	s.batch = min(s.batch, MaxDueLimit)
	if s.tick <= 0 {
		s.tick = 500 * time.Millisecond
	}
	if s.parallel <= 0 {
		s.parallel = 32
	}
	if s.grace <= 0 {
		s.grace = time.Minute
	}
	if s.lease == nil {
		s.lease = NewLocalLease(s.now)
	}
	if s.leaseTTL <= 0 {
		s.leaseTTL = 15 * time.Second
	}
	if s.holder == "" {
		s.holder = vigil.NewID("sched_")
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.obs == nil {
		s.obs = NopObserver{}
	}
	if s.sweepEvery <= 0 {
		s.sweepEvery = 5 * time.Minute
	}
	if s.sweepAfter <= 0 {
		s.sweepAfter = time.Minute
	}
	return s
}

// TickReport says what one pass over the due entries did.
type TickReport struct {
	// Due counts the due entries read.
	Due int
	// Fired counts the runs created.
	Fired int
	// Skipped counts the entries whose missed slots the skip policy
	// dropped without a run.
	Skipped int
	// Duplicates counts the slots that had a run already: another
	// scheduler fired them.
	Duplicates int
	// Dropped counts the entries of tasks that are gone or not active.
	Dropped int
	// Moved counts the entries moved because their trigger changed.
	Moved int
	// Failed counts the entries that met an error; they stay in the index
	// and are tried again at the next tick.
	Failed int
	// MaxLag is the longest time between a fired slot's due time and the
	// pass's now.
	MaxLag time.Duration
}

// Run dispatches due entries every Tick while it holds the lease, until
// ctx ends; then it waits for a sweep under way, releases the lease and
// returns nil. Errors of a pass are logged, and the next tick tries again.
//
// While it holds the lease it also sweeps (Sweep) every SweepEvery, the
// first time after its first pass. A sweep walks the whole store, so it
// runs beside the ticks rather than delaying them, one at a time.
func (s *Scheduler) Run(ctx context.Context) error {
	ticker := time.NewTicker(s.tick)
	defer ticker.Stop()
	leader := false
	defer func() {
		if leader {
			_ = s.lease.Release(context.WithoutCancel(ctx), s.holder)
		}
	}()
	var sweeps sync.WaitGroup
	defer sweeps.Wait()
	sweeping := make(chan struct{}, 1)
	var nextSweep time.Time
	for {
		leader = s.hold(ctx, leader)
		if leader {
			_, err := s.runOnce(ctx, s.now(), func() bool {
				leader = s.hold(ctx, true)
				return leader
			})
			if err != nil && ctx.Err() == nil {
				s.logger.ErrorContext(ctx, "tasks: scheduler pass failed", "err", err)
			}
		}
		if now := s.now(); leader && ctx.Err() == nil && !now.Before(nextSweep) {
			select {
			case sweeping <- struct{}{}:
				nextSweep = now.Add(s.sweepEvery)
				sweeps.Go(func() {
					defer func() { <-sweeping }()
					if _, err := s.Sweep(ctx, now); err != nil && ctx.Err() == nil {
						s.logger.ErrorContext(ctx, "tasks: scheduler sweep failed", "err", err)
					}
				})
			default: // the last sweep is still going
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// hold acquires or renews the lease and reports whether s holds it.
func (s *Scheduler) hold(ctx context.Context, leader bool) bool {
	var ok bool
	var err error
	if leader {
		ok, err = s.lease.Renew(ctx, s.holder, s.leaseTTL)
	} else {
		ok, err = s.lease.Acquire(ctx, s.holder, s.leaseTTL)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.logger.WarnContext(ctx, "tasks: scheduler lease", "holder", s.holder, "err", err)
		}
		return false
	}
	return ok
}

// Tick dispatches what is due at the scheduler's now; see RunOnce.
func (s *Scheduler) Tick(ctx context.Context) (TickReport, error) {
	return s.RunOnce(ctx, s.now())
}

// RunOnce dispatches every entry due at now, batch after batch, and
// returns what it did. It does not take the lease: Run does. Errors of
// single entries are counted in Failed and logged; the error returned is
// one of reading the index.
func (s *Scheduler) RunOnce(ctx context.Context, now time.Time) (TickReport, error) {
	return s.runOnce(ctx, now, nil)
}

// runOnce is RunOnce; between batches it calls keep, when set, and stops
// if it returns false (the lease is lost).
func (s *Scheduler) runOnce(ctx context.Context, now time.Time, keep func() bool) (TickReport, error) {
	now = now.UTC()
	var rep TickReport
	var mu sync.Mutex
	seen := map[string]bool{} // an entry that failed comes back in the next batch
	for {
		entries, err := s.store.Due(ctx, now, s.batch)
		if err != nil {
			return rep, err
		}
		todo := entries[:0:0]
		for _, e := range entries {
			if k := e.Tenant + "\x00" + e.TaskID; !seen[k] {
				seen[k] = true
				todo = append(todo, e)
			}
		}
		if len(todo) == 0 {
			return rep, nil
		}
		rep.Due += len(todo)
		sem := make(chan struct{}, s.parallel)
		var wg sync.WaitGroup
		for _, g := range s.groups(todo) {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				var r TickReport
				if bs, ok := s.store.(BatchStore); ok {
					r = s.fireGroup(ctx, bs, g, now)
				} else {
					r = s.fire(ctx, g[0], now)
				}
				mu.Lock()
				rep.add(r)
				mu.Unlock()
			})
		}
		wg.Wait()
		if len(entries) < s.batch || ctx.Err() != nil {
			return rep, ctx.Err()
		}
		if keep != nil && !keep() {
			return rep, nil
		}
	}
}

// groups splits a batch of due entries into the groups that fire at once,
// in the batch's order: one entry each, or, when the store is a
// BatchStore, Parallel groups of consecutive entries (fewer when the batch
// is small), each fired with one call per step.
func (s *Scheduler) groups(es []ScheduleEntry) [][]ScheduleEntry {
	size := 1
	if _, ok := s.store.(BatchStore); ok {
		size = (len(es) + s.parallel - 1) / s.parallel
	}
	gs := make([][]ScheduleEntry, 0, (len(es)+size-1)/size)
	for len(es) > 0 {
		n := min(size, len(es))
		gs = append(gs, es[:n:n])
		es = es[n:]
	}
	return gs
}

func (r *TickReport) add(o TickReport) {
	r.Fired += o.Fired
	r.Skipped += o.Skipped
	r.Duplicates += o.Duplicates
	r.Dropped += o.Dropped
	r.Moved += o.Moved
	r.Failed += o.Failed
	r.MaxLag = max(r.MaxLag, o.MaxLag)
}

// fire handles one due entry and reports what it did in a TickReport
// with one count set.
func (s *Scheduler) fire(ctx context.Context, e ScheduleEntry, now time.Time) TickReport {
	fail := func(what string, err error) TickReport {
		if vigil.ErrorCode(err) == vigil.Conflict && what == "advance" {
			return TickReport{} // a user changed the entry meanwhile: theirs stands
		}
		s.logger.ErrorContext(ctx, "tasks: scheduler entry failed", "tenant", e.Tenant, "task", e.TaskID, "slot", e.Slot, "op", what, "err", err)
		return TickReport{Failed: 1}
	}
	t, err := s.store.Task(ctx, e.Tenant, e.TaskID)
	if vigil.ErrorCode(err) == vigil.NotFound || err == nil && t.Status != StatusActive {
		// The writers put an entry before a task turns active and remove
		// it after it stops being active, so an entry of an inactive task
		// is stale. A Resume racing this drop writes an entry for a slot
		// after its own now, never this due slot, so AdvanceNext's slot
		// comparison keeps the resumed task's entry.
		if err := s.store.AdvanceNext(ctx, e, nil); err != nil {
			return fail("advance", err)
		}
		return TickReport{Dropped: 1}
	}
	if err != nil {
		return fail("read task", err)
	}
	trig := t.Trigger
	if !isSlot(trig, e.Slot) {
		if err := s.store.AdvanceNext(ctx, e, entryAfter(t, now)); err != nil {
			return fail("advance", err)
		}
		return TickReport{Moved: 1}
	}
	last, ok := latestDue(t, e.Slot, now)
	if !ok {
		// The entry was due but its slot is not (the jitter changed):
		// put it at the slot's due time.
		to := entryFor(t, e.Slot)
		if err := s.store.AdvanceNext(ctx, e, &to); err != nil {
			return fail("advance", err)
		}
		return TickReport{Moved: 1}
	}
	var rep TickReport
	due := trig.DueAt(t.ID, last)
	if now.Sub(due) > s.grace && t.CatchUp == CatchUpSkip {
		rep.Skipped = 1
	} else {
		r := Run{
			ID: scheduledRunID(t.Tenant, t.ID, last), Tenant: t.Tenant, TaskID: t.ID, TaskVersion: t.Version, Spec: t.Spec,
			Slot: last, Due: due, Cause: CauseSchedule, Status: RunQueued, CreatedAt: now, UpdatedAt: now,
		}
		th := thread{log: s.log, logger: s.logger, now: s.now, tenant: t.Tenant, id: t.ThreadID, taskID: t.ID, runID: r.ID}
		created, err := createQueued(ctx, s.store, s.queue, r, func() { th.status(ctx, "", RunQueued) })
		switch {
		case vigil.ErrorCode(err) == vigil.Conflict:
			rep.Duplicates = 1 // another run holds the slot (a manual run in the same millisecond)
		case err != nil:
			return fail("create run", err)
		case created:
			rep.Fired, rep.MaxLag = 1, max(now.Sub(due), 0)
			s.obs.Fired(itemOf(r).Priority, rep.MaxLag)
		default:
			rep.Duplicates = 1
		}
	}
	after := entryAfter(t, last)
	if err := s.store.AdvanceNext(ctx, e, after); err != nil {
		if f := fail("advance", err); f.Failed > 0 {
			return f
		}
	} else if after == nil {
		s.finishFired(ctx, t, now)
	}
	return rep
}

// finishFired archives t, whose last slot the scheduler has just handled
// and whose schedule entry it removed (a one-shot fired, or skipped), so
// that t does not stay active until the next sweep; the sweep
// (finishOneShot) stays as the repair when this fails or the process dies
// first.
func (s *Scheduler) finishFired(ctx context.Context, t Task, now time.Time) {
	if t.Trigger.At.IsZero() {
		return
	}
	if _, err := s.finishOneShot(ctx, t, now); err != nil {
		s.logger.WarnContext(ctx, "tasks: fired one-shot task not archived; the sweep will", "tenant", t.Tenant, "task", t.ID, "err", err)
	}
}

// isSlot reports whether s is a fire time of trig.
func isSlot(trig Trigger, s time.Time) bool {
	n, ok := trig.Next(s.Add(-time.Nanosecond))
	return ok && n.Equal(s)
}

// entryFor returns t's schedule entry for slot.
func entryFor(t Task, slot time.Time) ScheduleEntry {
	p := t.Priority
	if p.Rank() < 0 {
		p = PriorityNormal
	}
	return ScheduleEntry{Tenant: t.Tenant, TaskID: t.ID, Priority: p, Slot: slot, Due: t.Trigger.DueAt(t.ID, slot)}
}

// entryAfter returns t's entry for its first slot after after, or nil if
// it has none.
func entryAfter(t Task, after time.Time) *ScheduleEntry {
	slot, ok := t.Trigger.Next(after)
	if !ok {
		return nil
	}
	e := entryFor(t, slot)
	return &e
}

// maxCatchUpWalk bounds the slots latestDue steps through.
const maxCatchUpWalk = 100_000

// latestDue returns the latest slot of t's trigger, from the slot from
// on, that is due by now; false if none is. An interval jumps straight to
// now; a cron expression is walked slot by slot, and a walk that grows
// too long (a per-second cron after a long outage) starts again near now.
func latestDue(t Task, from, now time.Time) (time.Time, bool) {
	trig := t.Trigger
	due := func(s time.Time) bool { return !trig.DueAt(t.ID, s).After(now) }
	cur := from
	if every := time.Duration(trig.Every); every > 0 {
		// The slot before the last one at or before now: the walk below
		// then looks at the last two.
		start := trig.Start
		if start.IsZero() {
			start = time.Unix(0, 0)
		}
		if k := now.Sub(start) / every; k >= 2 {
			if s := start.Add((k - 1) * every); s.After(cur) {
				cur = s
			}
		}
	}
	var last time.Time
	found := false
	if due(cur) {
		last, found = cur, true
	}
	restarted := false
	for i := 0; ; i++ {
		if i == maxCatchUpWalk {
			if restarted {
				break
			}
			restarted, i = true, 0
			if s, ok := trig.Next(now.Add(-2 * MaxJitter)); ok && s.After(cur) {
				cur = s
				if due(cur) {
					last, found = cur, true
				}
			}
		}
		n, ok := trig.Next(cur)
		if !ok || n.After(now) {
			break
		}
		if due(n) {
			last, found = n, true
		}
		cur = n
	}
	return last, found
}

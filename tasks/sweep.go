package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// SweepStore is the part of Store the Scheduler's sweep reads: two walks
// over every tenant, for the repairs that no single event triggers (see
// Scheduler.Sweep). store/storetest.Sweeps is its conformance suite.
//
// Both walks call fn once for each record that matches when the walk
// reaches it, and may call it twice for one record (Redis's one-time
// backfill SCAN may), so callers must be idempotent. A record created or changed during the walk
// may or may not be seen. fn is never called inside a store transaction: it
// may call the store and the queue. An error from fn stops the walk and is
// returned. A record that cannot be decoded is skipped and the walk goes
// on; the walk then returns an error naming it. Like Store, implementations
// are safe for concurrent use.
//
// The walks are made in bounded steps, once per SweepEvery, not per tick.
// bolt reads every run (every task) of every tenant; Redis reads per-tenant
// indexes of queued runs and of active tasks with a time, so its walks
// cost what they find.
type SweepStore interface {
	// QueuedRuns calls fn with each run of every tenant whose Status is
	// queued and whose UpdatedAt is before before.
	QueuedRuns(ctx context.Context, before time.Time, fn func(Run) error) error

	// ActiveOneShots calls fn with each task of every tenant whose Status
	// is active and whose Trigger.At is set and before before: one-shot
	// tasks (and long-running ones with a time) whose time has passed.
	ActiveOneShots(ctx context.Context, before time.Time, fn func(Task) error) error
}

// SweepReport says what one sweep did.
type SweepReport struct {
	// Requeued counts the queued runs enqueued again. The queue ignores
	// those it holds already, so it counts every run queued longer than
	// SweepAfter, of which some had lost their queue item.
	Requeued int
	// Finished counts the one-shot tasks archived because their one slot
	// was dispatched (or skipped).
	Finished int
	// Failed counts the runs and tasks that met an error; the next sweep
	// tries them again.
	Failed int
}

// sweepBatch is how many items one EnqueueBatch of the sweep carries.
const sweepBatch = 500

// Sweep makes two repairs that the tick cannot, each with a walk of the
// store (SweepStore), and reports what it did. Run calls it every
// SweepEvery while it holds the lease; tests call it directly.
//
// Runs that are queued in the store but not in the queue: a run is stored
// first and enqueued after (createQueued, DispatchStore), so when Enqueue
// fails (Redis unreachable for a moment) or the process dies between the
// two, the run waits for a worker that never comes. The scheduler's own
// runs are repaired by the next tick (their entry did not advance), but
// runs made by "run now", retries, ingested events and chains are not.
// Sweep enqueues again every run queued and not updated for SweepAfter;
// Enqueue leaves alone a run the queue holds already, so a run that merely
// waits its turn keeps its place.
//
// One-shot tasks whose slot is behind them: a task with a Trigger.At has
// one slot, and once the scheduler has dispatched it (removed its schedule
// entry) the task is done. Sweep archives it (active → archived), with a
// task_status event saying whether it fired; its run and thread stay
// readable, and it counts no more as active. A task whose entry is still
// there waits for the scheduler.
func (s *Scheduler) Sweep(ctx context.Context, now time.Time) (SweepReport, error) {
	now = now.UTC()
	var rep SweepReport
	err1 := s.requeue(ctx, now, &rep)
	err2 := s.store.ActiveOneShots(ctx, now, func(t Task) error {
		done, err := s.finishOneShot(ctx, t, now)
		switch {
		case err != nil:
			rep.Failed++
			s.logger.ErrorContext(ctx, "tasks: sweep: one-shot task not archived", "tenant", t.Tenant, "task", t.ID, "err", err)
		case done:
			rep.Finished++
		}
		return ctx.Err()
	})
	return rep, errors.Join(err1, err2)
}

// requeue enqueues again the runs queued and not updated since now minus
// SweepAfter, in batches.
func (s *Scheduler) requeue(ctx context.Context, now time.Time, rep *SweepReport) error {
	var items []QueueItem
	flush := func() {
		if len(items) == 0 {
			return
		}
		if err := s.enqueueAll(ctx, items); err != nil {
			rep.Failed += len(items)
			s.logger.ErrorContext(ctx, "tasks: sweep: queued runs not enqueued", "runs", len(items), "err", err)
		} else {
			rep.Requeued += len(items)
		}
		items = items[:0]
	}
	err := s.store.QueuedRuns(ctx, now.Add(-s.sweepAfter), func(r Run) error {
		items = append(items, itemOf(r))
		if len(items) == sweepBatch {
			flush()
		}
		return ctx.Err()
	})
	flush()
	return err
}

// enqueueAll enqueues items: in one EnqueueBatch when the queue has it,
// else one Enqueue each, stopping at the first error.
func (s *Scheduler) enqueueAll(ctx context.Context, items []QueueItem) error {
	if bq, ok := s.queue.(BatchEnqueuer); ok {
		return bq.EnqueueBatch(ctx, items, 0)
	}
	for _, it := range items {
		if err := s.queue.Enqueue(ctx, it, 0); err != nil {
			return fmt.Errorf("tasks: enqueue run %s: %w", it.RunID, err)
		}
	}
	return nil
}

// finishOneShot archives t, read by a sweep as an active task whose one
// slot has passed, if the scheduler is done with it: it has no schedule
// entry. It reports whether it archived t. It compares and sets on the
// version read, so an edit made since (a new time) wins, and a task
// archived or paused by its owner meanwhile is left as it is.
func (s *Scheduler) finishOneShot(ctx context.Context, t Task, now time.Time) (bool, error) {
	if t.Status != StatusActive || t.Trigger.At.IsZero() {
		return false, nil
	}
	if _, ok := t.Trigger.Next(now); ok {
		return false, nil // its time is still to come
	}
	// The entry is removed only after the slot's run is stored and
	// enqueued (or the slot was skipped); before that, it is the
	// scheduler's.
	if _, err := s.store.Next(ctx, t.Tenant, t.ID); vigil.ErrorCode(err) != vigil.NotFound {
		return false, err
	}
	detail := "its one slot is past: it fired"
	if _, err := s.store.Run(ctx, t.Tenant, scheduledRunID(t.Tenant, t.ID, t.Trigger.At.UTC())); vigil.ErrorCode(err) == vigil.NotFound {
		detail = "its one slot is past: it did not fire (missed while the server was down, catch_up skip)"
	} else if err != nil {
		return false, err
	}
	if err := CheckTask(t.ID, t.Status, StatusArchived); err != nil {
		return false, err
	}
	next := t
	next.Status, next.UpdatedAt = StatusArchived, now
	v, err := s.store.UpdateTask(ctx, next)
	if vigil.ErrorCode(err) == vigil.Conflict {
		return false, nil // changed since the walk read it: the next sweep looks again
	}
	if err != nil {
		return false, err
	}
	next.Version = v
	th := thread{log: s.log, logger: s.logger, now: s.now, tenant: t.Tenant, id: t.ThreadID, taskID: t.ID}
	if err := th.emit(ctx, streams.TaskStatus{TaskID: t.ID, From: string(StatusActive), To: string(StatusArchived), Detail: detail}); err != nil {
		s.logger.ErrorContext(ctx, "tasks: task_status event not appended", "task", t.ID, "from", StatusActive, "to", StatusArchived, "err", err)
	}
	return true, nil
}

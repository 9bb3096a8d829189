package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// DispatchStore is a Store whose CreateRun also puts each run it creates
// queued into Queue, so that every run a Manager creates (run now, retry,
// ingested events) reaches the workers without the Manager knowing about
// the queue. Give it to the Manager (Options.Store); the Scheduler and
// the Worker take the plain Store and the Queue, and enqueue themselves.
//
// CreateRun stores the run first and enqueues it after. If the enqueue
// fails, CreateRun returns the error and the run stays queued in the store
// without an item; enqueueing it again (Queue.Enqueue is idempotent) is
// safe, and the Scheduler's sweep does it (Scheduler.Sweep).
type DispatchStore struct {
	Store
	Queue Queue
}

// CreateRun implements Store: it stores r, then enqueues it if its status
// is queued.
func (s *DispatchStore) CreateRun(ctx context.Context, r Run) error {
	_, err := s.createRunAnnounced(ctx, r, nil)
	return err
}

// createRunAnnounced is CreateRun with announce, when set, called once r
// is stored and before it is enqueued: what announce appends to the task's
// thread (the run's task_status event) is there before a worker can start
// the run and append its own. created says whether r was stored, which it
// is even when the enqueue fails.
func (s *DispatchStore) createRunAnnounced(ctx context.Context, r Run, announce func()) (created bool, err error) {
	if err := s.Store.CreateRun(ctx, r); err != nil {
		return false, err
	}
	if announce != nil {
		announce()
	}
	if r.Status != RunQueued {
		return true, nil
	}
	if err := s.Queue.Enqueue(ctx, itemOf(r), 0); err != nil {
		return true, fmt.Errorf("tasks: enqueue run %s: %w", r.ID, err)
	}
	return true, nil
}

// scheduledRunID returns the id of task taskID's run for slot: "run_" and
// 20 hex digits of a hash of the tenant and idempotency key. Two
// schedulers firing one slot make the same id, so that the one that loses
// the CreateRun race knows which run won and can enqueue it if the winner
// crashed before it did.
func scheduledRunID(tenant, taskID string, slot time.Time) string {
	h := sha256.Sum256([]byte(tenant + "\x00" + IdempotencyKey(taskID, slot)))
	return "run_" + hex.EncodeToString(h[:10])
}

// createQueued creates r (status queued) with announce and enqueues it,
// as createRunAnnounced does. If a run with r's id exists already (an
// earlier attempt of the same dispatch that crashed before enqueueing),
// it enqueues that run when it is still queued. It reports whether r was
// created by this call. A run of the same task and slot with another id
// is vigil.Conflict, as CreateRun says.
//
// If the enqueue fails, r stays stored and queued without a queue item:
// the scheduler's next tick repairs a slot it fired (its entry did not
// advance), and the Scheduler's sweep repairs every run, chained ones
// included, once it has waited SweepAfter.
func createQueued(ctx context.Context, st Store, q Queue, r Run, announce func()) (created bool, err error) {
	created, err = (&DispatchStore{Store: st, Queue: q}).createRunAnnounced(ctx, r, announce)
	if created || vigil.ErrorCode(err) != vigil.Conflict {
		return created, err
	}
	cur, gerr := st.Run(ctx, r.Tenant, r.ID)
	if gerr != nil {
		return false, err // another run holds the slot
	}
	if cur.Status == RunQueued {
		if err := q.Enqueue(ctx, itemOf(cur), 0); err != nil {
			return false, fmt.Errorf("tasks: enqueue run %s: %w", r.ID, err)
		}
	}
	return false, nil
}

// thread appends events about task taskID (and its run runID) to a
// task's thread.
type thread struct {
	log    streams.Log
	logger *slog.Logger
	now    func() time.Time
	tenant string
	id     string // thread id
	taskID string
	runID  string
}

// emit appends the events of ps as one batch.
func (th thread) emit(ctx context.Context, ps ...streams.Payload) error {
	evs, err := th.events(ctx, ps...)
	if err != nil {
		return err
	}
	return th.append(ctx, evs)
}

// events returns the events of ps on the thread, stamped with the trace id
// of ctx and the time: none when there is no thread (no log, or the task
// has none) or no ps.
func (th thread) events(ctx context.Context, ps ...streams.Payload) ([]streams.Event, error) {
	if th.log == nil || th.id == "" || len(ps) == 0 {
		return nil, nil
	}
	evs := make([]streams.Event, 0, len(ps))
	ts := th.now().UTC()
	for _, p := range ps {
		ev, err := streams.NewEvent(p)
		if err != nil {
			return nil, fmt.Errorf("tasks: %s event: %w", p.EventType(), err)
		}
		ev.TaskID, ev.RunID, ev.TraceID, ev.TS = th.taskID, th.runID, vigil.TraceID(ctx), ts
		evs = append(evs, ev)
	}
	return evs, nil
}

// append appends evs, built by events, as one batch; none is no write.
// The change they report has happened, so the append outlives a cancelled
// ctx.
func (th thread) append(ctx context.Context, evs []streams.Event) error {
	if len(evs) == 0 {
		return nil
	}
	_, err := th.log.Append(context.WithoutCancel(ctx), th.tenant, th.id, evs)
	return err
}

// change is the task_status payload of the run going from → to.
func (th thread) change(from, to RunStatus) streams.TaskStatus {
	return streams.TaskStatus{TaskID: th.taskID, RunID: th.runID, From: string(from), To: string(to)}
}

// waiting appends a task_status event that the run stays queued, and why.
// Like status, it logs a failure rather than returning it.
func (th thread) waiting(ctx context.Context, why string) {
	err := th.emit(ctx, streams.TaskStatus{TaskID: th.taskID, RunID: th.runID, From: string(RunQueued), To: string(RunQueued), Detail: "waiting: " + why})
	if err != nil {
		th.logger.ErrorContext(ctx, "tasks: task_status event not appended", "task", th.taskID, "run", th.runID, "err", err)
	}
}

// status appends a task_status event for the run going from → to, logging
// a failure rather than returning it (the change is stored already).
func (th thread) status(ctx context.Context, from, to RunStatus) {
	if err := th.emit(ctx, th.change(from, to)); err != nil {
		th.logger.ErrorContext(ctx, "tasks: task_status event not appended", "task", th.taskID, "run", th.runID, "from", from, "to", to, "err", err)
	}
}

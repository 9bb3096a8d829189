package tasks

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// ThreadedCreator is an optional capability of a Store that keeps the
// tasks' threads in the same backend: it creates a task together with its
// thread and the thread's first event in one atomic step (one transaction,
// one script), where the Manager otherwise makes three writes in a row.
// Manager.Create uses it when its Store has it, checked with a type
// assertion.
//
// CreateThreadedTask stores what log.CreateThread(ctx, th),
// CreateTask(ctx, t) and log.Append(ctx, th.Tenant, th.ID, {ev}) would,
// all of it or none: it answers the errors those calls would (vigil.Invalid
// for a bad id or event data that is not JSON, vigil.Conflict for a thread
// or task that exists already). t must belong to the thread: t.Tenant is
// th.Tenant and t.ThreadID is th.ID, else vigil.Invalid. It returns the
// event's ID. Once it returns, all of it is as durable as each of the three
// writes would have been.
//
// log is the streams.Log the caller keeps the thread in. When that is not
// the store's own (another backend, or a wrapper around this one), or the
// store cannot make the three writes in one step (Redis Cluster, whose
// thread and task keys live in different slots), CreateThreadedTask stores
// nothing and returns an error matching errors.ErrUnsupported, and the
// caller makes the three writes one by one.
//
// Implementations are safe for concurrent use.
type ThreadedCreator interface {
	CreateThreadedTask(ctx context.Context, log streams.Log, th streams.Thread, t Task, ev streams.Event) (streams.ID, error)
}

// CreateThreadedTask implements ThreadedCreator with the wrapped Store's,
// when it has one: a DispatchStore changes only CreateRun. Without one it
// returns an error matching errors.ErrUnsupported.
func (s *DispatchStore) CreateThreadedTask(ctx context.Context, log streams.Log, th streams.Thread, t Task, ev streams.Event) (streams.ID, error) {
	c, ok := s.Store.(ThreadedCreator)
	if !ok {
		return streams.ID{}, fmt.Errorf("tasks: %T cannot create a task with its thread: %w", s.Store, errors.ErrUnsupported)
	}
	return c.CreateThreadedTask(ctx, log, th, t, ev)
}

// createThreaded stores the new task t with its new thread th and the
// thread's first task_status event (to t.Status): in one step when the
// Store is a ThreadedCreator that can, else as Create always did, the
// thread, then the task, then the event, whose failure is only logged
// (see Manager).
func (m *Manager) createThreaded(ctx context.Context, th streams.Thread, t Task) error {
	if c, ok := m.store.(ThreadedCreator); ok {
		ev, err := m.statusEvent(ctx, t, "", "", string(t.Status))
		if err != nil {
			return fmt.Errorf("tasks: create %s: %w", t.ID, err)
		}
		_, err = c.CreateThreadedTask(ctx, m.log, th, t, ev)
		if !errors.Is(err, errors.ErrUnsupported) {
			if err != nil {
				return fmt.Errorf("tasks: create %s: %w", t.ID, err)
			}
			return nil
		}
	}
	if err := m.log.CreateThread(ctx, th); err != nil {
		return fmt.Errorf("tasks: create thread: %w", err)
	}
	if err := m.store.CreateTask(ctx, t); err != nil {
		return fmt.Errorf("tasks: create %s: %w", t.ID, err)
	}
	m.event(ctx, t, "", "", string(t.Status))
	return nil
}

// statusEvent returns the task_status event of a change of task t (or of
// its run runID) from from to to, stamped with the request's trace id and
// the Manager's clock.
func (m *Manager) statusEvent(ctx context.Context, t Task, runID, from, to string) (streams.Event, error) {
	ev, err := streams.NewEvent(streams.TaskStatus{TaskID: t.ID, RunID: runID, From: from, To: to})
	if err != nil {
		return streams.Event{}, err
	}
	ev.TaskID, ev.RunID, ev.TraceID, ev.TS = t.ID, runID, vigil.TraceID(ctx), m.now().UTC()
	return ev, nil
}

package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// RunThreadStore is a backend that is both a tasks.Store and the
// streams.Log of the tasks' threads, with the optional
// tasks.ThreadedRunUpdater.
type RunThreadStore interface {
	tasks.Store
	streams.Log
	tasks.ThreadedRunUpdater
}

// ThreadedRunUpdater runs the conformance suite of
// tasks.ThreadedRunUpdater. newStore is called once per subtest (twice in
// OtherLogIsUnsupported) and must return a store that shares nothing with
// the others, and that can make both writes in one step.
func ThreadedRunUpdater(t *testing.T, newStore func(t *testing.T) RunThreadStore) {
	t.Run("UpdatesAndAppends", func(t *testing.T) { testRunThreadUpdates(t, newStore(t)) })
	t.Run("ConflictAppendsNothing", func(t *testing.T) { testRunThreadConflict(t, newStore(t)) })
	t.Run("MissingRunAppendsNothing", func(t *testing.T) { testRunThreadMissingRun(t, newStore(t)) })
	t.Run("MissingThreadStillUpdates", func(t *testing.T) { testRunThreadMissingThread(t, newStore(t)) })
	t.Run("InvalidChangesNothing", func(t *testing.T) { testRunThreadInvalid(t, newStore(t)) })
	t.Run("OtherLogIsUnsupported", func(t *testing.T) { testRunThreadOtherLog(t, newStore(t), newStore(t)) })
	t.Run("ConcurrentClaim", func(t *testing.T) { testRunThreadConcurrent(t, newStore(t)) })
}

// runThread makes a task with its thread and a queued run of it, and
// returns the run.
func runThread(t *testing.T, s RunThreadStore) tasks.Run {
	t.Helper()
	task := mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	th := streams.Thread{ID: task.ThreadID, Tenant: task.Tenant, Title: task.Title, CreatedAt: task.CreatedAt}
	if err := s.CreateThread(t.Context(), th); err != nil {
		t.Fatal(err)
	}
	r := sampleRun("acme", "run_1", task.ID, taskBase)
	r.Status = tasks.RunQueued
	return mustCreateRun(t, s, r)
}

// runEvents returns n events of run r: tool calls, then the status change
// from → to.
func runEvents(t *testing.T, r tasks.Run, n int, from, to tasks.RunStatus) []streams.Event {
	t.Helper()
	var evs []streams.Event
	for i := range n - 1 {
		ev, err := streams.NewEvent(streams.ToolCall{CallID: fmt.Sprintf("call_%d", i), Tool: "weather", Args: []byte(`{"city":"Paris"}`)})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	ev, err := streams.NewEvent(streams.TaskStatus{TaskID: r.TaskID, RunID: r.ID, From: string(from), To: string(to)})
	if err != nil {
		t.Fatal(err)
	}
	evs = append(evs, ev)
	for i := range evs {
		evs[i].TaskID, evs[i].RunID, evs[i].TraceID, evs[i].TS = r.TaskID, r.ID, "trace-"+r.ID, taskBase
	}
	return evs
}

// threadEvents returns every event of thread th of tenant acme.
func threadEvents(t *testing.T, s RunThreadStore, th string) []streams.Event {
	t.Helper()
	page, err := s.Read(t.Context(), "acme", th, streams.ID{}, 100)
	if err != nil {
		t.Fatalf("Read(%s): %v", th, err)
	}
	return page.Events
}

// wantUnchanged fails unless run r is as runThread made it and its
// thread has no events.
func wantUnchanged(t *testing.T, s RunThreadStore, r tasks.Run) {
	t.Helper()
	checkSame(t, "run", mustGetRun(t, s, r.Tenant, r.ID), r)
	if evs := threadEvents(t, s, "th_"+r.TaskID); len(evs) != 0 {
		t.Errorf("thread has %d events, want none", len(evs))
	}
}

func testRunThreadUpdates(t *testing.T, s RunThreadStore) {
	ctx := t.Context()
	r := runThread(t, s)
	th := "th_" + r.TaskID
	next := r
	next.Status, next.Attempt = tasks.RunRunning, r.Attempt+1
	evs := runEvents(t, r, 1, tasks.RunQueued, tasks.RunRunning)
	if err := s.UpdateRunThreaded(ctx, s, next, tasks.RunQueued, th, evs); err != nil {
		t.Fatalf("UpdateRunThreaded queued → running: %v", err)
	}
	checkSame(t, "run", mustGetRun(t, s, r.Tenant, r.ID), next)

	// The tool calls and the status change that follow, in order, after
	// the first append's event.
	done := next
	done.Status = tasks.RunSucceeded
	more := runEvents(t, r, 4, tasks.RunRunning, tasks.RunSucceeded)
	if err := s.UpdateRunThreaded(ctx, s, done, tasks.RunRunning, th, more); err != nil {
		t.Fatalf("UpdateRunThreaded running → succeeded: %v", err)
	}
	checkSame(t, "run", mustGetRun(t, s, r.Tenant, r.ID), done)
	got := threadEvents(t, s, th)
	want := append(evs, more...)
	if len(got) != len(want) {
		t.Fatalf("thread has %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if i > 0 && !got[i-1].ID.Less(got[i].ID) {
			t.Errorf("event %d id %v not after %v", i, got[i].ID, got[i-1].ID)
		}
		if got[i].Type != want[i].Type || got[i].RunID != r.ID || got[i].TraceID != want[i].TraceID ||
			canonical(t, got[i].Data) != canonical(t, want[i].Data) {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}

	// No events is an update alone (a checkpoint with nothing to say).
	cp := done
	cp.Error = "kept"
	if err := s.UpdateRunThreaded(ctx, s, cp, tasks.RunSucceeded, th, nil); err != nil {
		t.Fatalf("UpdateRunThreaded without events: %v", err)
	}
	checkSame(t, "run", mustGetRun(t, s, r.Tenant, r.ID), cp)
	if n := len(threadEvents(t, s, th)); n != len(want) {
		t.Errorf("thread has %d events after an update without any, want %d", n, len(want))
	}
}

func testRunThreadConflict(t *testing.T, s RunThreadStore) {
	ctx := t.Context()
	r := runThread(t, s)
	next := r
	next.Status = tasks.RunSucceeded
	err := s.UpdateRunThreaded(ctx, s, next, tasks.RunRunning, "th_"+r.TaskID, runEvents(t, r, 3, tasks.RunRunning, tasks.RunSucceeded))
	if vigil.ErrorCode(err) != vigil.Conflict {
		t.Fatalf("UpdateRunThreaded from a status the run is not in: err %v, want conflict", err)
	}
	wantUnchanged(t, s, r)
}

func testRunThreadMissingRun(t *testing.T, s RunThreadStore) {
	ctx := t.Context()
	r := runThread(t, s)
	ghost := r
	ghost.ID = "run_ghost"
	err := s.UpdateRunThreaded(ctx, s, ghost, tasks.RunQueued, "th_"+r.TaskID, runEvents(t, ghost, 2, tasks.RunQueued, tasks.RunRunning))
	if vigil.ErrorCode(err) != vigil.NotFound {
		t.Fatalf("UpdateRunThreaded of a missing run: err %v, want not found", err)
	}
	if evs := threadEvents(t, s, "th_"+r.TaskID); len(evs) != 0 {
		t.Errorf("thread has %d events after the miss, want none", len(evs))
	}
}

func testRunThreadMissingThread(t *testing.T, s RunThreadStore) {
	ctx := t.Context()
	r := runThread(t, s)
	next := r
	next.Status = tasks.RunRunning
	if err := s.UpdateRunThreaded(ctx, s, next, tasks.RunQueued, "th_gone", runEvents(t, r, 2, tasks.RunQueued, tasks.RunRunning)); err != nil {
		t.Fatalf("UpdateRunThreaded onto a thread that does not exist: %v", err)
	}
	checkSame(t, "run", mustGetRun(t, s, r.Tenant, r.ID), next)
	if _, err := s.Thread(ctx, "acme", "th_gone"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("Thread(th_gone) after the update: err %v, want not found (no thread is made)", err)
	}
}

func testRunThreadInvalid(t *testing.T, s RunThreadStore) {
	ctx := t.Context()
	r := runThread(t, s)
	th := "th_" + r.TaskID
	next := r
	next.Status = tasks.RunRunning
	bad := runEvents(t, r, 2, tasks.RunQueued, tasks.RunRunning)
	bad[0].Data = []byte("{not json")
	moved := next
	moved.TaskID = "tsk_other"
	for _, c := range []struct {
		name   string
		run    tasks.Run
		thread string
		evs    []streams.Event
	}{
		{"DataNotJSON", next, th, bad},
		{"BadThreadID", next, "th/1", runEvents(t, r, 1, tasks.RunQueued, tasks.RunRunning)},
		{"OtherTask", moved, th, runEvents(t, r, 1, tasks.RunQueued, tasks.RunRunning)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := s.UpdateRunThreaded(ctx, s, c.run, tasks.RunQueued, c.thread, c.evs); vigil.ErrorCode(err) != vigil.Invalid {
				t.Fatalf("err %v, want invalid", err)
			}
			wantUnchanged(t, s, r)
		})
	}
}

func testRunThreadOtherLog(t *testing.T, s, other RunThreadStore) {
	ctx := t.Context()
	r := runThread(t, s)
	next := r
	next.Status = tasks.RunRunning
	err := s.UpdateRunThreaded(ctx, other, next, tasks.RunQueued, "th_"+r.TaskID, runEvents(t, r, 1, tasks.RunQueued, tasks.RunRunning))
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("UpdateRunThreaded with another store's log: err %v, want errors.ErrUnsupported", err)
	}
	wantUnchanged(t, s, r)
}

// testRunThreadConcurrent has workers race to claim one run: exactly one
// moves it and its status event is the thread's only one.
func testRunThreadConcurrent(t *testing.T, s RunThreadStore) {
	ctx := t.Context()
	r := runThread(t, s)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			next := r
			next.Status, next.Error = tasks.RunRunning, fmt.Sprintf("worker %d", i)
			errs[i] = s.UpdateRunThreaded(ctx, s, next, tasks.RunQueued, "th_"+r.TaskID, runEvents(t, next, 1, tasks.RunQueued, tasks.RunRunning))
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch vigil.ErrorCode(err) {
		case "":
			won++
		case vigil.Conflict:
		default:
			t.Errorf("worker %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d workers moved the run, want 1", won)
	}
	if evs := threadEvents(t, s, "th_"+r.TaskID); len(evs) != 1 {
		t.Errorf("thread has %d events, want the winner's 1", len(evs))
	}
}

package redis_test

import (
	"errors"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/store/storetest"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

func TestThreadedCreator(t *testing.T) {
	storetest.ThreadedCreator(t, func(t *testing.T) storetest.ThreadedStore {
		return open(t, redistest.Prefix(t), redis.Options{})
	})
}

func TestThreadedRunUpdater(t *testing.T) {
	storetest.ThreadedRunUpdater(t, func(t *testing.T) storetest.RunThreadStore {
		return open(t, redistest.Prefix(t), redis.Options{})
	})
}

// TestCreateRunsThreaded: each run is created with its events in one
// script; a run not created gets none, nor does a thread that does not
// exist or is not named; another store's log stores nothing.
func TestCreateRunsThreaded(t *testing.T) {
	ctx := t.Context()
	l := open(t, redistest.Prefix(t), redis.Options{})
	slot := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	for _, id := range []string{"tsk_a", "tsk_b", "tsk_c"} {
		task := newTask("acme", id)
		if err := l.CreateTask(ctx, task); err != nil {
			t.Fatal(err)
		}
		if err := l.CreateThread(ctx, streams.Thread{ID: task.ThreadID, Tenant: "acme", CreatedAt: slot}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.CreateRun(ctx, newRun("acme", "run_taken", "tsk_b", slot)); err != nil {
		t.Fatal(err)
	}
	queued := func(r tasks.Run) []streams.Event {
		ev, err := streams.NewEvent(streams.TaskStatus{TaskID: r.TaskID, RunID: r.ID, To: string(tasks.RunQueued)})
		if err != nil {
			t.Fatal(err)
		}
		ev.TaskID, ev.RunID, ev.TS = r.TaskID, r.ID, slot
		return []streams.Event{ev}
	}
	runs := []tasks.Run{
		newRun("acme", "run_a", "tsk_a", slot),                 // created, announced
		newRun("acme", "run_b", "tsk_b", slot),                 // the slot's key is taken
		newRun("acme", "run_c", "tsk_c", slot),                 // created, on a thread that does not exist
		newRun("acme", "run_c2", "tsk_c", slot.Add(time.Hour)), // created, no thread named
	}
	threads := []string{"th_tsk_a", "th_tsk_b", "th_gone", ""}
	evs := [][]streams.Event{queued(runs[0]), queued(runs[1]), queued(runs[2]), queued(runs[3])}

	other := open(t, redistest.Prefix(t), redis.Options{})
	if _, err := l.CreateRunsThreaded(ctx, other, runs, threads, evs); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("with another store's log: %v, want errors.ErrUnsupported", err)
	}
	if _, err := l.Run(ctx, "acme", "run_a"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Fatalf("run_a after the unsupported call: %v, want not found", err)
	}

	errs, err := l.CreateRunsThreaded(ctx, l, runs, threads, evs)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []vigil.Code{"", vigil.Conflict, "", ""} {
		if vigil.ErrorCode(errs[i]) != want || (want == "") != (errs[i] == nil) {
			t.Errorf("run %s: %v, want code %q", runs[i].ID, errs[i], want)
		}
	}
	count := func(th string) int {
		page, err := l.Read(ctx, "acme", th, streams.ID{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Events)
	}
	if n := count("th_tsk_a"); n != 1 {
		t.Errorf("thread of run_a has %d events, want its task_status", n)
	}
	if n := count("th_tsk_b"); n != 0 {
		t.Errorf("thread of the taken slot has %d events, want none", n)
	}
	if _, err := l.Thread(ctx, "acme", "th_gone"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("th_gone: %v, want not found (no thread is made)", err)
	}
	for _, id := range []string{"run_a", "run_c", "run_c2"} {
		if r, err := l.Run(ctx, "acme", id); err != nil || r.Status != tasks.RunQueued {
			t.Errorf("%s: %+v, %v; want it stored, queued", id, r, err)
		}
	}
}

package redis_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

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

// TestThreadedEventsLost makes the append of the threaded writes fail
// after their run write, in the two ways it can: a command of the append
// raises an error (the thread's stream key holds a string), or the append
// returns one (Options.Now is behind the last ID of a stream whose events
// were deleted, so XADD refuses the ID and no entry gives a later one).
// Either way the run is written and the call succeeds, as Redis keeps a
// script's writes when the script fails, and the loss is logged.
func TestThreadedEventsLost(t *testing.T) {
	for _, c := range []struct {
		name  string
		now   func() time.Time
		spoil func(ctx context.Context, stream string) error
		want  string // in the logged error
	}{
		{"raised", nil, func(ctx context.Context, stream string) error {
			return client(t).Set(ctx, stream, "not a stream", 0).Err()
		}, "WRONGTYPE"},
		{"returned", func() time.Time { return taskAt }, func(ctx context.Context, stream string) error {
			if err := client(t).XAdd(ctx, &goredis.XAddArgs{Stream: stream, ID: "9999999999999-0", Values: []any{"e", "{}"}}).Err(); err != nil {
				return err
			}
			return client(t).XDel(ctx, stream, "9999999999999-0").Err()
		}, "XADD"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			prefix := redistest.Prefix(t)
			var logs bytes.Buffer
			l := open(t, prefix, redis.Options{Now: c.now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			task := newTask("acme", "tsk_1")
			if err := l.CreateTask(ctx, task); err != nil {
				t.Fatal(err)
			}
			if err := l.CreateThread(ctx, streams.Thread{ID: task.ThreadID, Tenant: "acme", CreatedAt: taskAt}); err != nil {
				t.Fatal(err)
			}
			if err := c.spoil(ctx, prefix+":t:acme:th:{acme/"+task.ThreadID+"}:ev"); err != nil {
				t.Fatal(err)
			}
			evs := []streams.Event{event("message", 1)}

			run := newRun("acme", "run_1", "tsk_1", taskAt)
			if err := l.CreateRun(ctx, run); err != nil {
				t.Fatal(err)
			}
			run.Status = tasks.RunRunning
			if err := l.UpdateRunThreaded(ctx, l, run, tasks.RunQueued, task.ThreadID, evs); err != nil {
				t.Errorf("UpdateRunThreaded: %v, want nil: the run is updated", err)
			}
			if r, err := l.Run(ctx, "acme", "run_1"); err != nil || r.Status != tasks.RunRunning {
				t.Errorf("run_1 = %+v, %v; want it running", r, err)
			}
			errs, err := l.CreateRunsThreaded(ctx, l, []tasks.Run{newRun("acme", "run_2", "tsk_1", taskAt.Add(time.Hour))},
				[]string{task.ThreadID}, [][]streams.Event{evs})
			if err != nil || errs[0] != nil {
				t.Errorf("CreateRunsThreaded: %v, %v; want the run created", errs, err)
			}
			if _, err := l.Run(ctx, "acme", "run_2"); err != nil {
				t.Errorf("run_2: %v, want it stored", err)
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			for i, id := range []string{"run_1", "run_2"} {
				if i >= len(lines) || !strings.Contains(lines[i], "level=WARN") || !strings.Contains(lines[i], "run="+id) || !strings.Contains(lines[i], c.want) {
					t.Errorf("log %q: want a warning naming %s and the %s error", logs.String(), id, c.want)
				}
			}
		})
	}
}

// TestThreadedInvalidEvent: an event the threaded writes cannot encode
// fails the call with vigil.Invalid, named with the run it was for.
func TestThreadedInvalidEvent(t *testing.T) {
	ctx := t.Context()
	l := open(t, redistest.Prefix(t), redis.Options{})
	if err := l.CreateTask(ctx, newTask("acme", "tsk_1")); err != nil {
		t.Fatal(err)
	}
	run := newRun("acme", "run_1", "tsk_1", taskAt)
	if err := l.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	bad := []streams.Event{{Type: "message", TS: taskAt, Data: []byte("{")}}
	run.Status = tasks.RunRunning
	err := l.UpdateRunThreaded(ctx, l, run, tasks.RunQueued, "th_tsk_1", bad)
	if vigil.ErrorCode(err) != vigil.Invalid || !strings.Contains(err.Error(), "update run run_1: append th_tsk_1: event 0") {
		t.Errorf("UpdateRunThreaded with a bad event: %v (code %q); want vigil.Invalid naming the run, the thread and the event", err, vigil.ErrorCode(err))
	}
	errs, err := l.CreateRunsThreaded(ctx, l, []tasks.Run{newRun("acme", "run_2", "tsk_1", taskAt.Add(time.Hour))},
		[]string{"th_tsk_1"}, [][]streams.Event{bad})
	if err != nil {
		t.Fatal(err)
	}
	if vigil.ErrorCode(errs[0]) != vigil.Invalid || !strings.Contains(errs[0].Error(), "create run run_2: append th_tsk_1: event 0") {
		t.Errorf("CreateRunsThreaded with a bad event: %v (code %q); want vigil.Invalid naming the run, the thread and the event", errs[0], vigil.ErrorCode(errs[0]))
	}
}

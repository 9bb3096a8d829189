package tasks_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// batchLog is the rig's bolt Log with AppendBatch: each element is
// appended with Append, unless fail says it fails; it records the size of
// every batch.
type batchLog struct {
	streams.Log
	fail func(tasks.ThreadEvents) bool

	mu      sync.Mutex
	batches []int
}

func (l *batchLog) AppendBatch(ctx context.Context, batch []tasks.ThreadEvents) []error {
	l.mu.Lock()
	l.batches = append(l.batches, len(batch))
	l.mu.Unlock()
	errs := make([]error, len(batch))
	for i, b := range batch {
		if l.fail != nil && l.fail(b) {
			errs[i] = errors.New("refused by the test")
			continue
		}
		_, errs[i] = l.Append(ctx, b.Tenant, b.Thread, b.Events)
	}
	return errs
}

// TestSchedulerAppendsQueuedInBatches: with a Log that is a BatchAppender,
// a group of entries firing together gets its task_status events in one
// AppendBatch per group; each thread gets its → queued event once, and an
// element that fails to append costs only its own event: its run is fired
// and runs all the same.
func TestSchedulerAppendsQueuedInBatches(t *testing.T) {
	r := newRig(t)
	var ts []tasks.Task
	for range 6 {
		ts = append(ts, r.active(t, minutely(r)))
	}
	log := &batchLog{Log: r.db, fail: func(b tasks.ThreadEvents) bool { return b.Thread == ts[5].ThreadID }}
	sched := tasks.NewScheduler(tasks.SchedulerOptions{Store: r.db, Queue: r.q, Log: log, Now: r.clock.Now, Parallel: 2})
	slot := t0.Add(time.Minute)
	r.clock.Set(slot)
	rep, err := sched.Tick(r.ctx)
	if err != nil || rep.Fired != 6 || rep.Failed != 0 {
		t.Fatalf("Tick = %+v, %v; want 6 fired", rep, err)
	}
	log.mu.Lock()
	batches := append([]int(nil), log.batches...)
	log.mu.Unlock()
	if len(batches) != 2 || batches[0]+batches[1] != 6 {
		t.Errorf("AppendBatch calls of sizes %v; want two groups of the six entries", batches)
	}
	r.worker(t, nil)
	for i, task := range ts {
		runs := r.waitRuns(t, task.ID, 1, tasks.RunSucceeded)
		want := ">queued queued>running running>succeeded"
		if i == 5 {
			want = "queued>running running>succeeded"
		}
		// The last event follows the store's running → succeeded.
		var got string
		waitFor(t, "the run's last task_status event", func() bool {
			got = strings.Join(r.runStatuses(t, task, runs[0].ID), " ")
			return strings.HasSuffix(got, "running>succeeded")
		})
		if got != want {
			t.Errorf("task %d: run statuses %q, want %q", i, got, want)
		}
	}
}

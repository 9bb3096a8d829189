package tasks_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// capped returns w's store and log under a Manager whose tenants may have
// limit active tasks ("free" none at all beyond the default: no limit).
func capped(w *world, limit int) *tasks.Manager {
	return tasks.NewManager(tasks.Options{Store: w.db, Log: w.db, Now: w.clock.Now,
		MaxActiveTasks: func(tenant string) int {
			if tenant == "free" {
				return 0
			}
			return limit
		}})
}

// TestMaxActiveTasks: confirming or resuming one task more than the
// tenant's limit is vigil.TooMany naming the limit, and changes nothing:
// the task keeps its status and version, gets no schedule entry and no
// task_status event. Pausing one frees a place.
func TestMaxActiveTasks(t *testing.T) {
	w := newWorld(t)
	m := capped(w, 2)
	var ids []string
	for range 3 {
		ids = append(ids, w.create(t, weather()).ID)
	}
	for _, id := range ids[:2] {
		if _, err := m.Confirm(w.ctx, id); err != nil {
			t.Fatalf("Confirm %s: %v", id, err)
		}
	}
	before, _ := m.Get(w.ctx, ids[2])
	_, err := m.Confirm(w.ctx, ids[2])
	if vigil.ErrorCode(err) != vigil.TooMany || !strings.Contains(vigil.ErrorMessage(err), "limit of 2 active tasks") ||
		!strings.Contains(vigil.ErrorMessage(err), "cannot confirm task "+ids[2]) {
		t.Fatalf("third Confirm: %v; want rate_limited naming the limit of 2", err)
	}
	after, _ := m.Get(w.ctx, ids[2])
	if after.Status != tasks.StatusDraft || after.Version != before.Version || after.NextFire != nil {
		t.Errorf("refused task changed: %+v", after)
	}
	if _, err := w.db.Next(w.ctx, "acme", ids[2]); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("refused task has a schedule entry: %v", err)
	}
	if got := w.statuses(t, after); len(got) != 1 {
		t.Errorf("refused task's events: %v; want only its creation", got)
	}

	// Pausing one frees a place; resuming it is then over the limit.
	if _, err := m.Pause(w.ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Confirm(w.ctx, ids[2]); err != nil {
		t.Fatalf("Confirm after a pause: %v", err)
	}
	if _, err := m.Resume(w.ctx, ids[0]); vigil.ErrorCode(err) != vigil.TooMany || !strings.Contains(vigil.ErrorMessage(err), "cannot resume") {
		t.Errorf("Resume over the limit: %v", err)
	}
	if got, _ := m.Get(w.ctx, ids[0]); got.Status != tasks.StatusPaused {
		t.Errorf("refused resume left the task %s", got.Status)
	}
	// A state error comes before the quota: confirming an active task is
	// an illegal transition, not rate_limited.
	if _, err := m.Confirm(w.ctx, ids[1]); vigil.ErrorCode(err) == vigil.TooMany {
		t.Errorf("Confirm of an active task: %v; want an illegal transition", err)
	}
	// Archiving frees a place too; a tenant without a limit has none.
	if _, err := m.Archive(w.ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Resume(w.ctx, ids[0]); err != nil {
		t.Errorf("Resume after an archive: %v", err)
	}
	free := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "free", User: "ana"})
	for range 4 {
		task, err := m.Create(free, weather())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Confirm(free, task.ID); err != nil {
			t.Errorf("tenant without a limit: %v", err)
		}
	}
}

// TestMaxActiveTasksConcurrent: of many concurrent confirms in one
// process, exactly the limit succeed.
func TestMaxActiveTasksConcurrent(t *testing.T) {
	w := newWorld(t)
	m := capped(w, 3)
	const n = 12
	ids := make([]string, n)
	for i := range n {
		ids[i] = w.create(t, weather()).ID
	}
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			_, err := m.Confirm(w.ctx, id)
			switch vigil.ErrorCode(err) {
			case "":
				ok.Add(1)
			case vigil.TooMany:
				refused.Add(1)
			default:
				t.Errorf("Confirm %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 3 || refused.Load() != n-3 {
		t.Errorf("%d confirmed, %d refused; want 3 and %d", ok.Load(), refused.Load(), n-3)
	}
	page, err := m.List(w.ctx, tasks.TaskFilter{Status: tasks.StatusActive})
	if err != nil || len(page.Tasks) != 3 {
		t.Errorf("active tasks: %d, %v; want 3", len(page.Tasks), err)
	}
}

// TestMaxRunDuration: an attempt past its tenant's max run duration is
// cancelled and the run fails for good, once, with an error that says
// why; the failure reaches the thread and the webhooks. A run within the
// limit succeeds.
func TestMaxRunDuration(t *testing.T) {
	r := newRig(t)
	r.worker(t, func(o *tasks.WorkerOptions) {
		o.MaxRunDuration = func(tenant string) time.Duration {
			if tenant == "acme" {
				return 300 * time.Millisecond
			}
			return 0
		}
	})
	var calls atomic.Int32
	r.tool(t, "stuck", func(ctx context.Context, _ json.RawMessage) (toolsregistry.Output, error) {
		calls.Add(1)
		<-ctx.Done() // until the attempt is cancelled
		return toolsregistry.Output{}, ctx.Err()
	}, noFallback)
	task, run := r.runOf(t, "stuck")
	failed := r.waitRun(t, run.ID, tasks.RunFailed)
	if failed.Attempt != 1 || calls.Load() != 1 || failed.ErrorClass != tasks.ErrorPermanent ||
		!strings.Contains(failed.Error, "took longer than 300ms") || !strings.Contains(failed.Error, "not retried") {
		t.Errorf("overrun: attempt %d, %d calls, class %q, error %q; want 1 attempt, permanent, naming the limit",
			failed.Attempt, calls.Load(), failed.ErrorClass, failed.Error)
	}
	if st := r.waitUnleased(t); st.Delayed+st.Ready[tasks.PriorityNormal] != 0 {
		t.Errorf("an overrun left a queue item: %+v", st)
	}
	errs := r.events(t, task, streams.TypeError)
	if len(errs) != 1 || !strings.Contains(string(errs[0].Data), "took longer than 300ms") {
		t.Errorf("error events: %v", errs)
	}
	waitFor(t, "the failure's webhook", func() bool { _, keys := r.hooks.received(); return keys[failed.IdempotencyKey()] == 1 })

	_, quick := r.runOf(t, "echo")
	if got := r.waitRun(t, quick.ID, tasks.RunSucceeded); got.Attempt != 1 {
		t.Errorf("a quick run: attempt %d", got.Attempt)
	}
}

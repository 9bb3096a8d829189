package tasks_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

func minutely(r *rig) tasks.Spec {
	return tasks.Spec{
		Title: "minutely weather", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "* * * * *"},
		Slots:  map[string]any{"city": "Beijing"},
		Steps:  []tasks.Step{{Tool: "echo", Args: map[string]any{"city": "{{city}}"}}},
		Notify: r.hook(),
	}
}

// TestCronFiresEachMinute: a cron task every minute fires once per minute
// slot as the clock advances, never between slots or twice for one; pause
// stops it, resume restarts it at the next slot after the resume.
func TestCronFiresEachMinute(t *testing.T) {
	r := newRig(t)
	r.worker(t, nil)
	task := r.active(t, minutely(r)) // at 07:00:00: next slot 07:01

	for i := 1; i <= 3; i++ {
		slot := t0.Add(time.Duration(i) * time.Minute)
		if rep := r.tickAt(t, slot.Add(-30*time.Second)); rep.Fired != 0 {
			t.Errorf("half a minute before %s: fired %d", slot.Format(time.TimeOnly), rep.Fired)
		}
		if rep := r.tickAt(t, slot); rep.Fired != 1 || rep.MaxLag != 0 {
			t.Errorf("at %s: %+v; want 1 fired on time", slot.Format(time.TimeOnly), rep)
		}
		if rep := r.tickAt(t, slot.Add(time.Second)); rep.Fired != 0 {
			t.Errorf("a second after %s: fired %d again", slot.Format(time.TimeOnly), rep.Fired)
		}
		r.waitRuns(t, task.ID, i, tasks.RunSucceeded)
	}
	runs := r.runs(t, task.ID)
	for i, run := range runs {
		if want := t0.Add(time.Duration(i+1) * time.Minute); !run.Slot.Equal(want) || run.Cause != tasks.CauseSchedule || run.Attempt != 1 {
			t.Errorf("run %d: slot %s cause %s attempt %d; want slot %s, schedule, 1", i, run.Slot, run.Cause, run.Attempt, want)
		}
		if string(run.Result) != `{"outputs":[{"city":"Beijing"}]}` {
			t.Errorf("run %d result %s", i, run.Result)
		}
	}
	texts := r.events(t, task, streams.TypeText)
	if len(texts) != 3 || !strings.Contains(string(texts[0].Data), "Beijing") {
		t.Errorf("the thread has %d text events (%v); want 3 with the result", len(texts), texts)
	}
	if got := r.runStatuses(t, task, runs[0].ID); strings.Join(got, " ") != ">queued queued>running running>succeeded" {
		t.Errorf("run statuses on the thread: %v", got)
	}
	notes, keys := r.hooks.received()
	if len(notes) != 3 || len(keys) != 3 {
		t.Errorf("webhooks: %d notes, keys %v; want 3, one per slot", len(notes), keys)
	}
	for _, run := range runs {
		if keys[run.IdempotencyKey()] != 1 {
			t.Errorf("key %s posted %d times", run.IdempotencyKey(), keys[run.IdempotencyKey()])
		}
	}

	// Pause: no slot fires.
	if _, err := r.m.Pause(r.ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	for _, m := range []time.Duration{4, 5} {
		if rep := r.tickAt(t, t0.Add(m*time.Minute)); rep.Fired != 0 {
			t.Errorf("paused, at 07:0%d: fired %d", m, rep.Fired)
		}
	}
	// Resume at 07:05:30: 07:04 and 07:05 stay unfired; 07:06 fires.
	r.clock.Set(t0.Add(5*time.Minute + 30*time.Second))
	if _, err := r.m.Resume(r.ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	if rep := r.tickAt(t, t0.Add(5*time.Minute+40*time.Second)); rep.Fired != 0 {
		t.Errorf("resumed, before 07:06: fired %d", rep.Fired)
	}
	if rep := r.tickAt(t, t0.Add(6*time.Minute)); rep.Fired != 1 {
		t.Errorf("resumed, at 07:06: fired %d; want 1", rep.Fired)
	}
	runs = r.waitRuns(t, task.ID, 4, tasks.RunSucceeded)
	if !runs[3].Slot.Equal(t0.Add(6 * time.Minute)) {
		t.Errorf("the run after resume is for %s; want 07:06", runs[3].Slot)
	}
}

// TestOneShotFiresOnce: a one-shot task fires at its time, once, and is
// then out of the index; its instruction is the reminder.
func TestOneShotFiresOnce(t *testing.T) {
	r := newRig(t)
	r.worker(t, nil)
	task := r.active(t, tasks.Spec{Title: "call mom", Kind: tasks.KindOneShot, Instruction: "Call mom about Sunday",
		Trigger: tasks.Trigger{At: t0.Add(10 * time.Minute)}})
	if rep := r.tickAt(t, t0.Add(9*time.Minute)); rep.Fired != 0 {
		t.Errorf("before its time: fired %d", rep.Fired)
	}
	if rep := r.tickAt(t, t0.Add(10*time.Minute)); rep.Fired != 1 {
		t.Errorf("at its time: fired %d; want 1", rep.Fired)
	}
	for _, at := range []time.Duration{11, 60, 24 * 60} {
		if rep := r.tickAt(t, t0.Add(at*time.Minute)); rep.Fired != 0 || rep.Due != 0 {
			t.Errorf("%d minutes on: %+v; want nothing due", at, rep)
		}
	}
	runs := r.waitRuns(t, task.ID, 1, tasks.RunSucceeded)
	if _, err := r.db.Next(r.ctx, "acme", task.ID); err == nil {
		t.Error("a fired one-shot keeps a schedule entry")
	}
	done := r.events(t, task, streams.TypeDone)
	if len(done) != 1 || !strings.Contains(string(done[0].Data), "Call mom about Sunday") || string(runs[0].Result) != `{"text":"Call mom about Sunday"}` {
		t.Errorf("done events %v, result %s; want the instruction", done, runs[0].Result)
	}
}

// TestCatchUp: slots missed while no scheduler ran follow the task's
// policy: run_once fires the latest missed slot once, skip fires nothing
// for slots beyond the grace; the latest slot within the grace fires
// either way.
func TestCatchUp(t *testing.T) {
	r := newRig(t)
	daily := func(title string, c tasks.CatchUp) tasks.Task {
		return r.active(t, tasks.Spec{Title: title, Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "0 8 * * *"}, CatchUp: c})
	}
	dailyOnce, dailySkip := daily("daily once", tasks.CatchUpRunOnce), daily("daily skip", tasks.CatchUpSkip)
	minOnce := r.active(t, tasks.Spec{Title: "minute once", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "* * * * *"}})
	minSkip := r.active(t, tasks.Spec{Title: "minute skip", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "* * * * *"}, CatchUp: tasks.CatchUpSkip})

	// Down from 07:00 to 10:00:30.
	rep := r.tickAt(t, time.Date(2026, 11, 22, 10, 0, 30, 0, time.UTC))
	if rep.Due != 4 || rep.Fired != 3 || rep.Skipped != 1 {
		t.Errorf("after the outage: %+v; want 4 due, 3 fired, 1 skipped", rep)
	}
	check := func(task tasks.Task, wantSlot string, nextSlot string) {
		t.Helper()
		runs := r.runs(t, task.ID)
		var slots []string
		for _, run := range runs {
			slots = append(slots, run.Slot.Format("15:04"))
		}
		if strings.Join(slots, ",") != wantSlot {
			t.Errorf("%s: runs for %v; want [%s]", task.Title, slots, wantSlot)
		}
		e, err := r.db.Next(r.ctx, "acme", task.ID)
		if err != nil || e.Slot.Format("Jan 2 15:04") != nextSlot {
			t.Errorf("%s: next entry %v, %v; want %s", task.Title, e.Slot, err, nextSlot)
		}
	}
	check(dailyOnce, "08:00", "Nov 23 08:00")
	check(dailySkip, "", "Nov 23 08:00")
	check(minOnce, "10:00", "Nov 22 10:01")
	check(minSkip, "10:00", "Nov 22 10:01") // 30s late: within the grace
	if rep := r.tickAt(t, time.Date(2026, 11, 22, 10, 1, 0, 0, time.UTC)); rep.Fired != 2 || rep.Skipped != 0 {
		t.Errorf("the next minute: %+v; want both minute tasks fired", rep)
	}
}

// TestSameSlotTwoSchedulers: two schedulers on one store fire a slot once,
// whether they race or one holds a stale entry; the run executes once and
// its webhook is posted once.
func TestSameSlotTwoSchedulers(t *testing.T) {
	r := newRig(t)
	other := tasks.NewScheduler(tasks.SchedulerOptions{Store: r.db, Queue: r.q, Log: r.db, Now: r.clock.Now})
	task := r.active(t, tasks.Spec{Title: "report", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "0 8 * * *"},
		Steps: []tasks.Step{{Tool: "step", Args: map[string]any{"name": "report"}}}, Notify: r.hook()})
	stale, err := r.db.Next(r.ctx, "acme", task.ID)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	r.clock.Set(at)
	var wg sync.WaitGroup
	reps := make([]tasks.TickReport, 2)
	for i, s := range []*tasks.Scheduler{r.sched, other} {
		wg.Go(func() {
			var err error
			if reps[i], err = s.RunOnce(r.ctx, at); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if fired := reps[0].Fired + reps[1].Fired; fired != 1 {
		t.Errorf("two schedulers at one slot fired %d runs (%+v, %+v); want 1", fired, reps[0], reps[1])
	}
	// A scheduler that still holds the old entry finds the slot taken.
	if err := r.db.SetNext(r.ctx, stale); err != nil {
		t.Fatal(err)
	}
	if rep, err := other.RunOnce(r.ctx, at.Add(time.Second)); err != nil || rep.Fired != 0 || rep.Duplicates != 1 {
		t.Errorf("a stale entry: %+v, %v; want 1 duplicate, nothing fired", rep, err)
	}
	r.worker(t, nil)
	r.worker(t, nil)
	runs := r.waitRuns(t, task.ID, 1, tasks.RunSucceeded)
	if got := r.calls(); len(got) != 1 {
		t.Errorf("the run executed %d times: %v", len(got), got)
	}
	waitFor(t, "the webhook", func() bool { n, _ := r.hooks.received(); return len(n) > 0 })
	notes, keys := r.hooks.received()
	if len(notes) != 1 || keys[runs[0].IdempotencyKey()] != 1 {
		t.Errorf("webhooks %v; want one POST with key %s", keys, runs[0].IdempotencyKey())
	}
	if n := notes[0]; n.Status != tasks.RunSucceeded || n.TaskID != task.ID || n.RunID != runs[0].ID || n.Summary != "did report" {
		t.Errorf("notification %+v", n)
	}
}

// TestSchedulerChecksEntries: the scheduler checks each due entry against
// its task: an entry of a paused or deleted task is dropped, one whose
// slot is not a slot of the trigger any more moves to the trigger's next
// slot.
func TestSchedulerChecksEntries(t *testing.T) {
	r := newRig(t)
	task := r.active(t, tasks.Spec{Title: "hourly", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "0 * * * *"}})
	paused := r.active(t, tasks.Spec{Title: "paused", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "0 * * * *"}})
	if _, err := r.m.Pause(r.ctx, paused.ID); err != nil {
		t.Fatal(err)
	}
	// Entries a crash could leave: one for the paused task, one at a time
	// the hourly trigger never names.
	odd := tasks.ScheduleEntry{Tenant: "acme", TaskID: task.ID, Priority: tasks.PriorityNormal, Slot: t0.Add(17 * time.Minute), Due: t0.Add(17 * time.Minute)}
	for _, e := range []tasks.ScheduleEntry{odd, {Tenant: "acme", TaskID: paused.ID, Priority: tasks.PriorityHigh, Slot: t0.Add(time.Hour), Due: t0.Add(time.Hour)}} {
		if err := r.db.SetNext(r.ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	rep := r.tickAt(t, t0.Add(20*time.Minute))
	if rep.Moved != 1 || rep.Fired != 0 {
		t.Errorf("a stale slot: %+v; want it moved, nothing fired", rep)
	}
	if e, err := r.db.Next(r.ctx, "acme", task.ID); err != nil || !e.Slot.Equal(t0.Add(time.Hour)) {
		t.Errorf("moved entry: %+v, %v; want 08:00", e, err)
	}
	rep = r.tickAt(t, t0.Add(time.Hour))
	if rep.Dropped != 1 || rep.Fired != 1 {
		t.Errorf("at 08:00: %+v; want the paused task's entry dropped and the hourly task fired", rep)
	}
	if _, err := r.db.Next(r.ctx, "acme", paused.ID); err == nil {
		t.Error("the paused task's entry is still there")
	}
	if len(r.runs(t, paused.ID)) != 0 {
		t.Error("the paused task ran")
	}
}

// TestSchedulerRunHoldsLease: of two schedulers sharing a lease, only the
// holder dispatches; when it stops, the other takes over.
func TestSchedulerRunHoldsLease(t *testing.T) {
	lease := tasks.NewLocalLease(nil)
	ctx := t.Context()
	if ok, _ := lease.Acquire(ctx, "a", time.Minute); !ok {
		t.Fatal("a free lease was not acquired")
	}
	if ok, _ := lease.Acquire(ctx, "b", time.Minute); ok {
		t.Error("b acquired a's lease")
	}
	if ok, _ := lease.Renew(ctx, "b", time.Minute); ok {
		t.Error("b renewed a's lease")
	}
	if ok, _ := lease.Renew(ctx, "a", time.Minute); !ok {
		t.Error("a could not renew its lease")
	}
	_ = lease.Release(ctx, "b") // not b's: nothing happens
	if ok, _ := lease.Acquire(ctx, "b", time.Minute); ok {
		t.Error("b's release freed a's lease")
	}
	_ = lease.Release(ctx, "a")
	if ok, _ := lease.Acquire(ctx, "b", time.Minute); !ok {
		t.Error("b could not take a released lease")
	}

	// Run: scheduler a holds the lease and fires; b waits.
	r := newRig(t)
	task := r.active(t, tasks.Spec{Title: "t", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Every: tasks.Duration(time.Minute)}})
	shared := tasks.NewLocalLease(r.clock.Now)
	run := func(holder string) (stop func()) {
		s := tasks.NewScheduler(tasks.SchedulerOptions{Store: r.db, Queue: r.q, Log: r.db, Now: r.clock.Now, Lease: shared, Holder: holder, Tick: 5 * time.Millisecond})
		runCtx, cancel := context.WithCancel(r.ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = s.Run(runCtx) }()
		return func() { cancel(); <-done }
	}
	stopA := run("a")
	r.clock.Set(t0.Add(time.Minute))
	waitFor(t, "a to fire the first slot", func() bool { return len(r.runs(t, task.ID)) == 1 })
	stopB := run("b")
	defer stopB()
	stopA() // releases the lease: b takes over
	r.clock.Set(t0.Add(2 * time.Minute))
	waitFor(t, "b to fire the second slot", func() bool { return len(r.runs(t, task.ID)) == 2 })
}

package tasks_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// taskStatuses returns the task_status events of the task's thread that
// concern the task itself (no run), as "from>to: detail".
func (e *env) taskStatuses(t *testing.T, task tasks.Task) []string {
	t.Helper()
	page, err := streams.ReadAll(e.ctx, e.log, "acme", task.ThreadID, streams.ID{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range page.Events {
		if ev.Type != streams.TypeTaskStatus {
			continue
		}
		p, err := streams.Decode[streams.TaskStatus](ev)
		if err != nil {
			t.Fatal(err)
		}
		if p.RunID == "" {
			out = append(out, p.From+">"+p.To+": "+p.Detail)
		}
	}
	return out
}

// activeIDs lists the ids of acme's active tasks, as list_tasks and the
// active-task quota see them.
func (e *env) activeIDs(t *testing.T) []string {
	t.Helper()
	page, err := e.m.List(e.ctx, tasks.TaskFilter{Status: tasks.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, task := range page.Tasks {
		ids = append(ids, task.ID)
	}
	return ids
}

// TestOneShotArchivedAfterFiring: a one-shot task that fired is archived
// by the next sweep: list_tasks no longer shows it active, its run still
// executes and stays readable, and its thread says why it changed. Before
// its time, or while its slot is not yet dispatched, it stays active.
func TestOneShotArchivedAfterFiring(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.worker(t)
		at := t0.Add(10 * time.Minute)
		task := e.active(t, tasks.Spec{Title: "call mom", Kind: tasks.KindOneShot, Instruction: "Call mom",
			Trigger: tasks.Trigger{At: at}})
		other := e.active(t, tasks.Spec{Title: "daily", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "0 8 * * *"},
			Steps: []tasks.Step{{Tool: "echo"}}})

		if rep := e.sweepAt(t, t0.Add(5*time.Minute)); rep.Finished != 0 {
			t.Errorf("sweep before its time: %+v", rep)
		}
		// Its time passed, but no scheduler has dispatched it yet: it
		// keeps its entry and stays active.
		if rep := e.sweepAt(t, at.Add(time.Second)); rep.Finished != 0 {
			t.Errorf("sweep before the scheduler fired it: %+v", rep)
		}
		// The tick that fires it archives it too; the sweep has nothing
		// left to do.
		if rep := e.tickAt(t, at.Add(time.Second)); rep.Fired != 1 {
			t.Fatalf("tick at its time: %+v; want 1 fired", rep)
		}
		if rep := e.sweepAt(t, at.Add(2*time.Second)); rep.Finished != 0 || rep.Failed != 0 {
			t.Errorf("sweep after it fired: %+v; want nothing to finish: the tick archived it", rep)
		}
		got, err := e.m.Get(e.ctx, task.ID)
		if err != nil || got.Status != tasks.StatusArchived || got.NextFire != nil || got.Version != task.Version+1 {
			t.Errorf("the task after its run: %s, version %d, next %v, %v; want archived, version %d", got.Status, got.Version, got.NextFire, err, task.Version+1)
		}
		if ids := e.activeIDs(t); len(ids) != 1 || ids[0] != other.ID {
			t.Errorf("active tasks: %v; want only %s", ids, other.ID)
		}
		page, err := e.m.ListRuns(e.ctx, tasks.RunFilter{TaskID: task.ID})
		if err != nil || len(page.Runs) != 1 || !page.Runs[0].Slot.Equal(at) {
			t.Fatalf("runs of the archived task: %v, %v; want its one run", page.Runs, err)
		}
		run := e.waitRun(t, page.Runs[0].ID, tasks.RunSucceeded)
		if string(run.Result) != `{"text":"Call mom"}` {
			t.Errorf("its run's result: %s", run.Result)
		}
		if st := e.taskStatuses(t, task); len(st) != 3 || !strings.HasPrefix(st[2], "active>archived: ") || !strings.Contains(st[2], "it fired") {
			t.Errorf("task statuses on the thread: %q; want draft, active, then active>archived saying it fired", st)
		}
		// Archived is final: nothing more to do for it, and a second sweep
		// does nothing.
		if rep := e.sweepAt(t, at.Add(time.Hour)); rep.Finished != 0 {
			t.Errorf("second sweep: %+v", rep)
		}
		if _, err := e.m.Resume(e.ctx, task.ID); vigil.ErrorCode(err) != vigil.Conflict {
			t.Errorf("Resume of the finished one-shot: %v; want a conflict", err)
		}
	})
}

// TestOneShotMissedUnderSkip: a one-shot whose time passed while the
// server was down, with catch_up skip, never fires; the tick that skips
// it archives it and its thread says it did not fire. With run_once it
// fires late, once, and is archived too.
func TestOneShotMissedUnderSkip(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		at := t0.Add(10 * time.Minute)
		skip := e.active(t, tasks.Spec{Title: "skip", Kind: tasks.KindOneShot, Instruction: "x", Trigger: tasks.Trigger{At: at}, CatchUp: tasks.CatchUpSkip})
		once := e.active(t, tasks.Spec{Title: "once", Kind: tasks.KindOneShot, Instruction: "x", Trigger: tasks.Trigger{At: at}})
		if rep := e.tickAt(t, at.Add(time.Hour)); rep.Skipped != 1 || rep.Fired != 1 {
			t.Fatalf("tick an hour late: %+v; want 1 skipped, 1 fired", rep)
		}
		// The tick that handled their slot archived both.
		if rep := e.sweepAt(t, at.Add(time.Hour)); rep.Finished != 0 {
			t.Errorf("sweep: %+v; want nothing left to archive", rep)
		}
		for _, c := range []struct {
			task tasks.Task
			runs int
			says string
		}{{skip, 0, "did not fire"}, {once, 1, "it fired"}} {
			page, err := e.m.ListRuns(e.ctx, tasks.RunFilter{TaskID: c.task.ID})
			if err != nil || len(page.Runs) != c.runs {
				t.Errorf("%s: runs %v, %v; want %d", c.task.Title, page.Runs, err, c.runs)
			}
			st := e.taskStatuses(t, c.task)
			if last := st[len(st)-1]; !strings.HasPrefix(last, "active>archived") || !strings.Contains(last, c.says) {
				t.Errorf("%s: last task status %q; want active>archived saying %q", c.task.Title, last, c.says)
			}
		}
		if ids := e.activeIDs(t); len(ids) != 0 {
			t.Errorf("active tasks: %v; want none", ids)
		}
	})
}

// TestOneShotEditedNotArchived: an active one-shot whose owner moves its
// time to the future before it fires is not archived by a sweep after the
// old time; once fired it is archived, which is final: an edit is refused.
func TestOneShotEditedNotArchived(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		at := t0.Add(10 * time.Minute)
		task := e.active(t, tasks.Spec{Title: "moved", Kind: tasks.KindOneShot, Instruction: "x", Trigger: tasks.Trigger{At: at}})
		e.clock.Set(at.Add(-time.Minute))
		s := task.Spec
		s.Trigger.At = at.Add(time.Hour)
		if _, err := e.m.Update(e.ctx, task.ID, 0, s); err != nil {
			t.Fatal(err)
		}
		if rep := e.tickAt(t, at.Add(time.Minute)); rep.Fired != 0 {
			t.Errorf("tick at the old time: %+v; want nothing fired", rep)
		}
		if rep := e.sweepAt(t, at.Add(2*time.Minute)); rep.Finished != 0 {
			t.Errorf("sweep after the old time: %+v; want nothing archived", rep)
		}
		got, err := e.m.Get(e.ctx, task.ID)
		if err != nil || got.Status != tasks.StatusActive || got.NextFire == nil || !got.NextFire.Equal(at.Add(time.Hour)) {
			t.Errorf("the edited task: %s next %v, %v; want active at its new time", got.Status, got.NextFire, err)
		}
		if rep := e.tickAt(t, at.Add(time.Hour+time.Second)); rep.Fired != 1 {
			t.Fatalf("tick at the new time: %+v; want 1 fired", rep)
		}
		s.Trigger.At = at.Add(2 * time.Hour)
		if _, err := e.m.Update(e.ctx, task.ID, 0, s); vigil.ErrorCode(err) != vigil.Conflict {
			t.Errorf("editing the fired, archived one-shot: %v; want a conflict", err)
		}
	})
}

// TestCatchUpAfterOutage: an hourly task across an outage of three slots.
// skip fires none of them and is next due at the first slot after now;
// run_once fires exactly one, the latest; a slot late by less than Grace
// fires under skip too, and one late by just more than Grace does not.
func TestCatchUpAfterOutage(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		hourly := func(title string, c tasks.CatchUp) tasks.Task {
			return e.active(t, tasks.Spec{Title: title, Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "0 * * * *"},
				Steps: []tasks.Step{{Tool: "echo"}}, CatchUp: c})
		}
		// At 07:00, each task's next slot is 08:00.
		skip, once := hourly("skip", tasks.CatchUpSkip), hourly("once", tasks.CatchUpRunOnce)
		check := func(task tasks.Task, slots string, next time.Time) {
			t.Helper()
			page, err := e.m.ListRuns(e.ctx, tasks.RunFilter{TaskID: task.ID})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range page.Runs {
				got = append(got, r.Slot.Format("15:04"))
			}
			if strings.Join(got, ",") != slots {
				t.Errorf("%s: runs for [%s]; want [%s]", task.Title, strings.Join(got, ","), slots)
			}
			en, err := e.store.Next(e.ctx, "acme", task.ID)
			if err != nil || !en.Slot.Equal(next) {
				t.Errorf("%s: next slot %s, %v; want %s", task.Title, en.Slot.Format("15:04"), err, next.Format("15:04"))
			}
		}
		// Down from 07:00 to 10:30: 08:00, 09:00 and 10:00 were missed.
		rep := e.tickAt(t, t0.Add(3*time.Hour+30*time.Minute))
		if rep.Due != 2 || rep.Fired != 1 || rep.Skipped != 1 {
			t.Errorf("after the outage: %+v; want 2 due, 1 fired, 1 skipped", rep)
		}
		check(skip, "", t0.Add(4*time.Hour))
		check(once, "10:00", t0.Add(4*time.Hour))
		// The next slot fires on time for both, once.
		if rep := e.tickAt(t, t0.Add(4*time.Hour)); rep.Fired != 2 || rep.Skipped != 0 {
			t.Errorf("at 11:00: %+v; want both fired", rep)
		}
		if rep := e.tickAt(t, t0.Add(4*time.Hour+time.Second)); rep.Due != 0 {
			t.Errorf("just after 11:00: %+v; want nothing due", rep)
		}
		check(skip, "11:00", t0.Add(5*time.Hour))
		check(once, "11:00,10:00", t0.Add(5*time.Hour))

		// Down from 11:00 to 12:00:59: 12:00 is 59s late, within the grace
		// (a minute): skip fires it.
		if rep := e.tickAt(t, t0.Add(5*time.Hour+59*time.Second)); rep.Fired != 2 || rep.Skipped != 0 {
			t.Errorf("59s late: %+v; want both fired", rep)
		}
		check(skip, "12:00,11:00", t0.Add(6*time.Hour))
		// Down from 12:00:59 to 13:01:00.001: 13:00 is just over the grace
		// late: skip drops it, run_once fires it.
		if rep := e.tickAt(t, t0.Add(6*time.Hour+time.Minute+time.Millisecond)); rep.Fired != 1 || rep.Skipped != 1 {
			t.Errorf("a minute and 1ms late: %+v; want 1 fired, 1 skipped", rep)
		}
		check(skip, "12:00,11:00", t0.Add(7*time.Hour))
		check(once, "13:00,12:00,11:00,10:00", t0.Add(7*time.Hour))
	})
}

// TestCatchUpJitterLongerThanGap: a cron task whose jitter is longer than
// the gap between its slots (every 20 minutes, jitter 45), with catch_up
// skip, under a scheduler that never stops: every slot fires once, in
// order, and none counts as missed. (Before DueAt kept each slot due
// before the next, a later slot with a small offset fell due first; the
// scheduler then fired only it, and skip dropped it as more than Grace
// late: 5 runs for 9 slots.)
func TestCatchUpJitterLongerThanGap(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		task := e.active(t, tasks.Spec{Title: "jittery", Kind: tasks.KindPeriodic, Steps: []tasks.Step{{Tool: "echo"}}, CatchUp: tasks.CatchUpSkip,
			Trigger: tasks.Trigger{Cron: "*/20 * * * *", Jitter: tasks.Duration(45 * time.Minute)}})
		var rep tasks.TickReport
		for at := t0.Add(30 * time.Second); !at.After(t0.Add(3*time.Hour + 20*time.Minute)); at = at.Add(30 * time.Second) {
			r := e.tickAt(t, at)
			rep.Fired, rep.Skipped = rep.Fired+r.Fired, rep.Skipped+r.Skipped
			if r.MaxLag > 30*time.Second {
				t.Errorf("at %s a slot fired %s late", at.Format(time.TimeOnly), r.MaxLag)
			}
		}
		page, err := e.m.ListRuns(e.ctx, tasks.RunFilter{TaskID: task.ID})
		if err != nil {
			t.Fatal(err)
		}
		var slots []string
		for _, r := range page.Runs {
			slots = append([]string{r.Slot.Format("15:04")}, slots...)
		}
		want := "07:20,07:40,08:00,08:20,08:40,09:00,09:20,09:40,10:00"
		if rep.Skipped != 0 || strings.Join(slots, ",") != want {
			t.Errorf("%d fired, %d skipped, runs for [%s]; want every slot [%s], none skipped", rep.Fired, rep.Skipped, strings.Join(slots, ","), want)
		}
	})
}

// TestDueAtBeforeNextSlot: a slot is due before the trigger's next slot,
// however short the gap and long the jitter; a gap longer than the jitter
// leaves the offset as it was, and a one-shot time has no next slot to
// bound it.
func TestDueAtBeforeNextSlot(t *testing.T) {
	tr := tasks.Trigger{Cron: "0,1 * * * *", Jitter: tasks.Duration(30 * time.Minute)} // gaps of 1 and 59 minutes
	long := 0
	for i := range 200 {
		id := fmt.Sprintf("tsk_%d", i)
		slot := t0
		for range 6 {
			next, _ := tr.Next(slot)
			due := tr.DueAt(id, slot)
			if due.Before(slot) || !due.Before(next) {
				t.Fatalf("%s: slot %s due %s; want before the next slot %s", id, slot.Format(time.TimeOnly), due.Format(time.TimeOnly), next.Format(time.TimeOnly))
			}
			if due.Sub(slot) >= time.Minute {
				long++
			}
			slot = next
		}
	}
	if long == 0 {
		t.Error("no offset of a minute or more: the 59-minute gaps lost their jitter")
	}
	wide := tasks.Trigger{Cron: "0 8 * * *", Jitter: tasks.Duration(30 * time.Minute)}
	narrow := wide
	narrow.Cron = "*/45 * * * *"
	at := tasks.Trigger{At: t0, Jitter: tasks.Duration(30 * time.Minute)}
	for i := range 50 {
		id := fmt.Sprintf("tsk_%d", i)
		slot := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
		if w, n := wide.DueAt(id, slot), narrow.DueAt(id, slot); !w.Equal(n) {
			t.Errorf("%s: due %s with a day's gap, %s with 45 minutes; want the same (both above the jitter)", id, w, n)
		}
		if d := at.DueAt(id, t0).Sub(t0); d < 0 || d >= 30*time.Minute {
			t.Errorf("%s: one-shot offset %s; want in [0, 30m)", id, d)
		}
	}
}

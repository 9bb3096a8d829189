package tasks_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

const trace = "4bf92f3577b34da6a3ce929d0e0e4736"

// world is a Manager over a real bolt file, which is both its Store and
// its Log, with a clock the test sets.
type world struct {
	m     *tasks.Manager
	db    *bolt.DB
	clock *clock
	ctx   context.Context // acme, user ana, with a trace id
}

var t0 = time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)

func newWorld(t *testing.T) *world {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := &clock{now: t0}
	m := tasks.NewManager(tasks.Options{Store: db, Log: db, Now: c.Now})
	ctx := vigil.WithTraceID(vigil.WithPrincipal(t.Context(), vigil.Principal{Tenant: "acme", User: "ana"}), trace)
	return &world{m: m, db: db, clock: c, ctx: ctx}
}

func (w *world) as(tenant, user string) context.Context {
	return vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: tenant, User: user})
}

func (w *world) create(t *testing.T, s tasks.Spec) tasks.Task {
	t.Helper()
	task, err := w.m.Create(w.ctx, s)
	if err != nil {
		t.Fatalf("Create(%s): %v", s.Title, err)
	}
	return task
}

// statuses returns the task_status events of the task's thread as
// "from>to" (with "run:" before run changes).
func (w *world) statuses(t *testing.T, task tasks.Task) []string {
	t.Helper()
	page, err := streams.ReadAll(w.ctx, w.db, task.Tenant, task.ThreadID, streams.ID{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range page.Events {
		p, err := streams.Decode[streams.TaskStatus](e)
		if err != nil {
			t.Fatalf("event %s: %v", e.Type, err)
		}
		if e.TraceID != trace || e.TaskID != task.ID || p.TaskID != task.ID || e.RunID != p.RunID {
			t.Errorf("event envelope %+v / payload %+v", e, p)
		}
		s := p.From + ">" + p.To
		if p.RunID != "" {
			s = "run:" + s
		}
		out = append(out, s)
	}
	return out
}

func wantErr(t *testing.T, err error, code vigil.Code, field string) {
	t.Helper()
	var ve *vigil.Error
	if !errors.As(err, &ve) || ve.Code != code || ve.Field != field {
		t.Errorf("error %v; want code %s field %q", err, code, field)
	}
}

func TestLifecycle(t *testing.T) {
	w := newWorld(t)
	task := w.create(t, weather())
	if task.Status != tasks.StatusDraft || task.Version != 1 || task.Owner != "ana" || task.Tenant != "acme" ||
		!strings.HasPrefix(task.ID, "tsk_") || task.Priority != tasks.PriorityNormal || task.CatchUp != tasks.CatchUpRunOnce {
		t.Fatalf("created %+v", task)
	}
	if th, err := w.db.Thread(w.ctx, "acme", task.ThreadID); err != nil || th.Title != "Beijing weather" {
		t.Fatalf("the task's thread: %+v, %v", th, err)
	}
	if _, err := w.db.Next(w.ctx, "acme", task.ID); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("a draft has a schedule entry (%v)", err)
	}

	// Confirm: active, next fire at 08:00 Shanghai = 00:00 UTC.
	got, err := w.m.Confirm(w.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantNext := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	if got.Status != tasks.StatusActive || got.Version != 2 || got.NextFire == nil || !got.NextFire.Equal(wantNext) {
		t.Fatalf("confirmed: status %s version %d next %v", got.Status, got.Version, got.NextFire)
	}
	e, err := w.db.Next(w.ctx, "acme", task.ID)
	if err != nil || !e.Slot.Equal(wantNext) || !e.Due.Equal(wantNext) || e.Priority != tasks.PriorityNormal {
		t.Errorf("schedule entry %+v, %v", e, err)
	}
	_, err = w.m.Confirm(w.ctx, task.ID)
	if !errors.Is(err, tasks.ErrIllegalTransition) {
		t.Errorf("second Confirm: %v, want ErrIllegalTransition", err)
	}
	wantErr(t, err, vigil.Conflict, "status")

	// Pause clears the entry; Resume a day later restores it from then.
	if got, err = w.m.Pause(w.ctx, task.ID); err != nil || got.Status != tasks.StatusPaused || got.NextFire != nil {
		t.Fatalf("Pause: %+v, %v", got, err)
	}
	if _, err := w.db.Next(w.ctx, "acme", task.ID); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("a paused task has a schedule entry (%v)", err)
	}
	if due, _ := w.db.Due(w.ctx, wantNext.Add(time.Hour), 10); len(due) != 0 {
		t.Errorf("a paused task is due: %+v", due)
	}
	w.clock.Set(wantNext.Add(time.Hour)) // the 00:00 slot passed while paused
	if got, err = w.m.Resume(w.ctx, task.ID); err != nil || got.NextFire == nil || !got.NextFire.Equal(wantNext.Add(24*time.Hour)) {
		t.Fatalf("Resume: %+v, %v", got.NextFire, err)
	}
	_, err = w.m.Resume(w.ctx, task.ID)
	wantErr(t, err, vigil.Conflict, "status")

	// Archive ends it: nothing but Delete works afterwards.
	if got, err = w.m.Archive(w.ctx, task.ID); err != nil || got.Status != tasks.StatusArchived {
		t.Fatalf("Archive: %+v, %v", got, err)
	}
	if _, err := w.db.Next(w.ctx, "acme", task.ID); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("an archived task has a schedule entry (%v)", err)
	}
	before, _ := w.m.Get(w.ctx, task.ID)
	for name, op := range map[string]func() error{
		"confirm": func() error { _, err := w.m.Confirm(w.ctx, task.ID); return err },
		"pause":   func() error { _, err := w.m.Pause(w.ctx, task.ID); return err },
		"resume":  func() error { _, err := w.m.Resume(w.ctx, task.ID); return err },
		"archive": func() error { _, err := w.m.Archive(w.ctx, task.ID); return err },
		"update":  func() error { _, err := w.m.Update(w.ctx, task.ID, 0, weather()); return err },
		"run":     func() error { _, err := w.m.RunNow(w.ctx, task.ID); return err },
	} {
		err := op()
		if !errors.Is(err, tasks.ErrIllegalTransition) {
			t.Errorf("%s on an archived task: %v, want ErrIllegalTransition", name, err)
		}
		wantErr(t, err, vigil.Conflict, "status")
	}
	after, _ := w.m.Get(w.ctx, task.ID)
	if after.Version != before.Version || after.Status != tasks.StatusArchived {
		t.Errorf("refused changes changed the task: version %d → %d", before.Version, after.Version)
	}

	want := []string{">draft", "draft>active", "active>paused", "paused>active", "active>archived"}
	if got := w.statuses(t, task); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("task_status events %v, want %v", got, want)
	}

	if err := w.m.Delete(w.ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.m.Get(w.ctx, task.ID); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("Get after Delete: %v", err)
	}
	if got := w.statuses(t, task); got[len(got)-1] != "archived>deleted" {
		t.Errorf("last event %v, want archived>deleted", got[len(got)-1])
	}
}

func TestUpdate(t *testing.T) {
	w := newWorld(t)
	task := w.create(t, weather())
	if _, err := w.m.Confirm(w.ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	run, err := w.m.RunNow(w.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if run.TaskVersion != 2 || run.Status != tasks.RunQueued || run.Cause != tasks.CauseManual || !run.Slot.Equal(t0) {
		t.Fatalf("run now: %+v", run)
	}

	s := weather()
	s.Title = "Hangzhou weather"
	s.Slots["city"] = "Hangzhou"
	s.Trigger = tasks.Trigger{Cron: "30 9 * * *", TZ: "Asia/Shanghai"}
	got, err := w.m.Update(w.ctx, task.ID, 2, s)
	if err != nil {
		t.Fatal(err)
	}
	wantNext := time.Date(2026, 11, 23, 1, 30, 0, 0, time.UTC)
	if got.Version != 3 || got.Title != "Hangzhou weather" || got.Status != tasks.StatusActive || got.NextFire == nil || !got.NextFire.Equal(wantNext) {
		t.Fatalf("updated: version %d title %q next %v", got.Version, got.Title, got.NextFire)
	}
	// The run created before keeps the version and spec it fired with.
	r, err := w.m.GetRun(w.ctx, run.ID)
	if err != nil || r.TaskVersion != 2 || r.Spec.Slots["city"] != "Beijing" || r.Spec.Title != "Beijing weather" {
		t.Errorf("run after the update: version %d spec %+v, %v", r.TaskVersion, r.Spec, err)
	}

	// A stale version changes nothing.
	s.Title = "lost"
	_, err = w.m.Update(w.ctx, task.ID, 2, s)
	wantErr(t, err, vigil.Conflict, "version")
	if cur, _ := w.m.Get(w.ctx, task.ID); cur.Version != 3 || cur.Title != "Hangzhou weather" {
		t.Errorf("after a stale update: version %d title %q", cur.Version, cur.Title)
	}
	// Invalid input changes nothing either.
	bad := weather()
	bad.Trigger.TZ = "Nowhere/City"
	_, err = w.m.Update(w.ctx, task.ID, 0, bad)
	wantErr(t, err, vigil.Invalid, "trigger.tz")
	if e, _ := w.db.Next(w.ctx, "acme", task.ID); !e.Slot.Equal(wantNext) {
		t.Errorf("entry after an invalid update: %+v", e)
	}
	want := []string{">draft", "draft>active", "run:>queued", "active>active"}
	if got := w.statuses(t, task); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events %v, want %v", got, want)
	}
}

func TestIntervalAnchor(t *testing.T) {
	w := newWorld(t)
	w.clock.Set(t0.Add(1234 * time.Millisecond))
	s := tasks.Spec{Title: "poll", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Every: tasks.Duration(15 * time.Minute)}}
	task := w.create(t, s)
	got, err := w.m.Confirm(w.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	start := t0.Add(time.Second)
	if !got.Trigger.Start.Equal(start) || got.NextFire == nil || !got.NextFire.Equal(start.Add(15*time.Minute)) {
		t.Errorf("confirmed interval: start %v next %v; want start %v (whole seconds) and 15m later", got.Trigger.Start, got.NextFire, start)
	}
	// An edit that keeps the interval keeps the anchor.
	s.Title = "renamed"
	w.clock.Add(7 * time.Minute)
	got, err = w.m.Update(w.ctx, task.ID, 0, s)
	if err != nil || !got.Trigger.Start.Equal(start) || !got.NextFire.Equal(start.Add(15*time.Minute)) {
		t.Errorf("after an edit: start %v next %v, %v", got.Trigger.Start, got.NextFire, err)
	}
}

func TestOneShotAndJitter(t *testing.T) {
	w := newWorld(t)
	at := t0.Add(time.Hour)
	s := tasks.Spec{Title: "once", Kind: tasks.KindOneShot, Priority: tasks.PriorityHigh,
		Trigger: tasks.Trigger{At: at, Jitter: tasks.Duration(10 * time.Second)}}
	task := w.create(t, s)
	if _, err := w.m.Confirm(w.ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	e, err := w.db.Next(w.ctx, "acme", task.ID)
	if err != nil || !e.Slot.Equal(at) || e.Due.Before(at) || !e.Due.Before(at.Add(10*time.Second)) || e.Priority != tasks.PriorityHigh {
		t.Errorf("entry %+v, %v; want slot %v, due within 10s after, high", e, err, at)
	}
	if !e.Due.Equal(s.Trigger.DueAt(task.ID, at)) {
		t.Errorf("due %v, want Trigger.DueAt's %v", e.Due, s.Trigger.DueAt(task.ID, at))
	}

	// A time in the past is refused at creation and at confirmation.
	past := s
	past.Trigger.At = t0.Add(-time.Minute)
	_, err = w.m.Create(w.ctx, past)
	wantErr(t, err, vigil.Invalid, "trigger.at")
	late := w.create(t, s)
	w.clock.Set(at.Add(time.Minute))
	_, err = w.m.Confirm(w.ctx, late.ID)
	wantErr(t, err, vigil.Invalid, "trigger.at")
	if got, _ := w.m.Get(w.ctx, late.ID); got.Status != tasks.StatusDraft {
		t.Errorf("a refused confirmation left the task %s", got.Status)
	}
}

func TestChains(t *testing.T) {
	w := newWorld(t)
	a := w.create(t, weather())
	b := w.create(t, weather())
	c := w.create(t, weather())

	s := weather()
	s.Then = []string{b.ID}
	if _, err := w.m.Update(w.ctx, a.ID, 0, s); err != nil {
		t.Fatal(err)
	}
	s.Then = []string{c.ID}
	if _, err := w.m.Update(w.ctx, b.ID, 0, s); err != nil {
		t.Fatal(err)
	}
	// c → a closes a → b → c → a.
	s.Then = []string{a.ID}
	_, err := w.m.Update(w.ctx, c.ID, 0, s)
	wantErr(t, err, vigil.Invalid, "then")
	if want := "cycle " + c.ID + " → " + a.ID + " → " + b.ID + " → " + c.ID; !strings.Contains(vigil.ErrorMessage(err), want) {
		t.Errorf("message %q, want it to contain %q", vigil.ErrorMessage(err), want)
	}
	if got, _ := w.m.Get(w.ctx, c.ID); len(got.Then) != 0 || got.Version != 1 {
		t.Errorf("a refused cycle changed the task: %+v", got.Then)
	}
	// A task naming itself; a task that does not exist; another tenant's.
	s.Then = []string{c.ID}
	_, err = w.m.Update(w.ctx, c.ID, 0, s)
	wantErr(t, err, vigil.Invalid, "then")
	s.Then = []string{b.ID, "tsk_nope"}
	_, err = w.m.Update(w.ctx, c.ID, 0, s)
	wantErr(t, err, vigil.Invalid, "then.1")
	other, err := w.m.Create(w.as("globex", "gus"), weather())
	if err != nil {
		t.Fatal(err)
	}
	s.Then = []string{other.ID}
	_, err = w.m.Create(w.ctx, s)
	wantErr(t, err, vigil.Invalid, "then.0")
	// A diamond is not a cycle.
	s.Then = []string{b.ID, c.ID}
	if _, err := w.m.Create(w.ctx, s); err != nil {
		t.Errorf("a → b → c with a → c refused: %v", err)
	}
}

func TestRunsAndCancel(t *testing.T) {
	w := newWorld(t)
	task := w.create(t, weather())
	r1, err := w.m.RunNow(w.ctx, task.ID) // a draft may be tried out
	if err != nil {
		t.Fatal(err)
	}
	r2, err := w.m.RunNow(w.ctx, task.ID) // same millisecond: the next one
	if err != nil {
		t.Fatal(err)
	}
	if !r2.Slot.Equal(r1.Slot.Add(time.Millisecond)) || r1.IdempotencyKey() == r2.IdempotencyKey() {
		t.Errorf("two runs now in one millisecond: slots %v and %v", r1.Slot, r2.Slot)
	}
	w.clock.Add(time.Second)
	r3, err := w.m.RunNow(w.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	page, err := w.m.ListRuns(w.ctx, tasks.RunFilter{TaskID: task.ID})
	if err != nil || len(page.Runs) != 3 || page.Runs[0].ID != r3.ID {
		t.Fatalf("ListRuns: %v, %v; want 3, newest (%s) first", page.Runs, err, r3.ID)
	}

	got, err := w.m.CancelRun(w.ctx, r1.ID)
	if err != nil || got.Status != tasks.RunCancelled || got.FinishedAt.IsZero() {
		t.Fatalf("CancelRun: %+v, %v", got, err)
	}
	_, err = w.m.CancelRun(w.ctx, r1.ID)
	if !errors.Is(err, tasks.ErrIllegalTransition) {
		t.Errorf("second CancelRun: %v", err)
	}
	// A worker holding the run as queued loses its claim.
	claim := r1
	claim.Status = tasks.RunRunning
	if err := w.db.UpdateRun(w.ctx, claim, tasks.RunQueued); vigil.ErrorCode(err) != vigil.Conflict {
		t.Errorf("claim of a cancelled run: %v, want conflict", err)
	}
	// A running run can be cancelled too.
	claim = r2
	claim.Status = tasks.RunRunning
	if err := w.db.UpdateRun(w.ctx, claim, tasks.RunQueued); err != nil {
		t.Fatal(err)
	}
	if got, err := w.m.CancelRun(w.ctx, r2.ID); err != nil || got.Status != tasks.RunCancelled {
		t.Errorf("cancel a running run: %+v, %v", got.Status, err)
	}
	want := []string{">draft", "run:>queued", "run:>queued", "run:>queued", "run:queued>cancelled", "run:running>cancelled"}
	if got := w.statuses(t, task); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events %v, want %v", got, want)
	}
}

func TestTenancy(t *testing.T) {
	w := newWorld(t)
	task := w.create(t, weather())
	run, err := w.m.RunNow(w.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	globex := w.as("globex", "gus")
	checks := map[string]error{}
	_, checks["get"] = w.m.Get(globex, task.ID)
	_, checks["update"] = w.m.Update(globex, task.ID, 0, weather())
	_, checks["confirm"] = w.m.Confirm(globex, task.ID)
	_, checks["pause"] = w.m.Pause(globex, task.ID)
	_, checks["archive"] = w.m.Archive(globex, task.ID)
	_, checks["run now"] = w.m.RunNow(globex, task.ID)
	_, checks["list runs"] = w.m.ListRuns(globex, tasks.RunFilter{TaskID: task.ID})
	_, checks["get run"] = w.m.GetRun(globex, run.ID)
	_, checks["cancel run"] = w.m.CancelRun(globex, run.ID)
	checks["delete"] = w.m.Delete(globex, task.ID)
	for name, err := range checks {
		if vigil.ErrorCode(err) != vigil.NotFound {
			t.Errorf("%s of another tenant's task: %v, want not found", name, err)
		}
	}
	if page, err := w.m.List(globex, tasks.TaskFilter{}); err != nil || len(page.Tasks) != 0 {
		t.Errorf("globex lists %v, %v", page.Tasks, err)
	}
	if got, _ := w.m.Get(w.ctx, task.ID); got.Version != 1 || got.Status != tasks.StatusDraft {
		t.Errorf("acme's task changed: %+v", got)
	}
	if _, err := w.m.Get(context.Background(), task.ID); vigil.ErrorCode(err) != vigil.Unauthorized {
		t.Errorf("no principal: %v, want unauthorized", err)
	}
	if _, err := w.m.Get(w.ctx, "tsk nope"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("malformed id: %v, want not found", err)
	}
}

func TestList(t *testing.T) {
	w := newWorld(t)
	a := w.create(t, weather())
	w.create(t, oilMonitor())
	if _, err := w.m.Confirm(w.ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.m.Create(w.as("acme", "bo"), weather()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f    tasks.TaskFilter
		want int
	}{
		{tasks.TaskFilter{}, 3},
		{tasks.TaskFilter{Status: tasks.StatusActive}, 1},
		{tasks.TaskFilter{Kind: tasks.KindMonitor}, 1},
		{tasks.TaskFilter{Owner: "bo"}, 1},
		{tasks.TaskFilter{Event: "oil"}, 1},
	} {
		page, err := w.m.List(w.ctx, tc.f)
		if err != nil || len(page.Tasks) != tc.want {
			t.Errorf("List(%+v) = %d tasks, %v; want %d", tc.f, len(page.Tasks), err, tc.want)
		}
	}
	page, _ := w.m.List(w.ctx, tasks.TaskFilter{Status: tasks.StatusActive})
	if page.Tasks[0].NextFire == nil {
		t.Error("List does not show an active task's next fire time")
	}
	_, err := w.m.List(w.ctx, tasks.TaskFilter{Status: "running"})
	wantErr(t, err, vigil.Invalid, "status")
	_, err = w.m.List(w.ctx, tasks.TaskFilter{Kind: "cron"})
	wantErr(t, err, vigil.Invalid, "kind")
	_, err = w.m.List(w.ctx, tasks.TaskFilter{Limit: -1})
	wantErr(t, err, vigil.Invalid, "limit")
}

// TestConcurrentConfirm races confirmations of one draft: exactly one
// succeeds, the task is active once, with one event.
func TestConcurrentConfirm(t *testing.T) {
	w := newWorld(t)
	task := w.create(t, weather())
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = w.m.Confirm(w.ctx, task.ID) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, tasks.ErrIllegalTransition) {
			t.Errorf("losing Confirm: %v, want ErrIllegalTransition", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d confirmations succeeded, want 1", ok)
	}
	if got := w.statuses(t, task); len(got) != 2 || got[1] != "draft>active" {
		t.Errorf("events %v", got)
	}
}

// A user who does not manage all of the tenant's tasks sees only their
// own: another user's task in the same tenant is not found, on every path.
func TestOwnership(t *testing.T) {
	w := newWorld(t)
	w.m = tasks.NewManager(tasks.Options{Store: w.db, Log: w.db, Now: w.clock.Now,
		ManagesAll: func(p vigil.Principal) bool { return p.HasRole("admin") }})
	task := w.create(t, weather()) // owned by ana
	run, err := w.m.RunNow(w.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	bob := w.as("acme", "bob")
	checks := map[string]error{}
	_, checks["get"] = w.m.Get(bob, task.ID)
	_, checks["update"] = w.m.Update(bob, task.ID, 0, weather())
	_, checks["confirm"] = w.m.Confirm(bob, task.ID)
	_, checks["pause"] = w.m.Pause(bob, task.ID)
	_, checks["archive"] = w.m.Archive(bob, task.ID)
	_, checks["run now"] = w.m.RunNow(bob, task.ID)
	_, checks["list runs"] = w.m.ListRuns(bob, tasks.RunFilter{TaskID: task.ID})
	_, checks["get run"] = w.m.GetRun(bob, run.ID)
	_, checks["cancel run"] = w.m.CancelRun(bob, run.ID)
	checks["delete"] = w.m.Delete(bob, task.ID)
	for name, err := range checks {
		if vigil.ErrorCode(err) != vigil.NotFound {
			t.Errorf("%s of another user's task: %v, want not found", name, err)
		}
	}
	if page, err := w.m.List(bob, tasks.TaskFilter{}); err != nil || len(page.Tasks) != 0 {
		t.Errorf("bob lists %v, %v", page.Tasks, err)
	}
	if page, err := w.m.List(bob, tasks.TaskFilter{Owner: "ana"}); err != nil || len(page.Tasks) != 0 {
		t.Errorf("bob lists ana's tasks by owner filter: %v, %v", page.Tasks, err)
	}
	if page, err := w.m.List(w.ctx, tasks.TaskFilter{}); err != nil || len(page.Tasks) != 1 {
		t.Errorf("ana lists %v, %v", page.Tasks, err)
	}
	admin := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: "root", Roles: []string{"admin"}})
	if _, err := w.m.Pause(admin, task.ID); vigil.ErrorCode(err) != vigil.Conflict { // a draft cannot pause: but the admin sees it
		t.Errorf("admin pausing ana's draft: %v, want conflict", err)
	}
	if got, err := w.m.Get(admin, task.ID); err != nil || got.Version != 1 {
		t.Errorf("admin get: %+v %v", got, err)
	}
}

// A user who reads all of the tenant's tasks (a viewer) sees another
// user's task and its runs, but changing it is forbidden, and naming it in
// a chain is refused.
func TestReadsAll(t *testing.T) {
	w := newWorld(t)
	w.m = tasks.NewManager(tasks.Options{Store: w.db, Log: w.db, Now: w.clock.Now,
		ManagesAll: func(p vigil.Principal) bool { return p.HasRole("admin") },
		ReadsAll:   func(p vigil.Principal) bool { return p.HasRole("viewer") }})
	task := w.create(t, weather()) // owned by ana
	run, err := w.m.RunNow(w.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	vic := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: "vic", Roles: []string{"member", "viewer"}})
	if got, err := w.m.Get(vic, task.ID); err != nil || got.ID != task.ID {
		t.Errorf("viewer get: %+v %v", got, err)
	}
	if page, err := w.m.List(vic, tasks.TaskFilter{}); err != nil || len(page.Tasks) != 1 {
		t.Errorf("viewer lists %v, %v", page.Tasks, err)
	}
	if page, err := w.m.ListRuns(vic, tasks.RunFilter{TaskID: task.ID}); err != nil || len(page.Runs) != 1 {
		t.Errorf("viewer lists runs %v, %v", page.Runs, err)
	}
	if got, err := w.m.GetRun(vic, run.ID); err != nil || got.ID != run.ID {
		t.Errorf("viewer get run: %+v %v", got, err)
	}
	checks := map[string]error{}
	_, checks["update"] = w.m.Update(vic, task.ID, 0, weather())
	_, checks["confirm"] = w.m.Confirm(vic, task.ID)
	_, checks["pause"] = w.m.Pause(vic, task.ID)
	_, checks["archive"] = w.m.Archive(vic, task.ID)
	_, checks["run now"] = w.m.RunNow(vic, task.ID)
	_, checks["cancel run"] = w.m.CancelRun(vic, run.ID)
	checks["delete"] = w.m.Delete(vic, task.ID)
	for name, err := range checks {
		if vigil.ErrorCode(err) != vigil.Forbidden {
			t.Errorf("%s of another user's task by a viewer: %v, want forbidden", name, err)
		}
	}
	own := weather()
	own.Then = []string{task.ID}
	if _, err := w.m.Create(vic, own); vigil.ErrorCode(err) != vigil.Invalid {
		t.Errorf("chaining another user's task: %v, want invalid", err)
	}
	if got, err := w.m.Get(w.ctx, task.ID); err != nil || got.Version != task.Version {
		t.Errorf("the task changed: %+v %v", got, err)
	}
}

package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
)

// Tasks runs the conformance suite of tasks.Store. newStore is called once
// per subtest and must return a store that shares nothing with the stores
// of other subtests (own file or own key prefix).
//
// Every clause of the tasks.Store contract has a subtest named after it.
// Beyond the contract's words, the suite pins down:
//
//   - Errors are compared by vigil.ErrorCode, so backends may wrap them.
//   - Times read back as the same instant (Equal); raw JSON (Result,
//     checkpoint State) reads back as the same JSON value; Slots read back
//     as the same JSON.
//   - A cursor the store did not make, and a limit out of range, are
//     vigil.Invalid errors.
//   - Due compares and orders due times to the millisecond.
//   - Lookups with a malformed id answer vigil.NotFound or vigil.Invalid,
//     never success and never a backend failure.
func Tasks(t *testing.T, newStore func(t *testing.T) tasks.Store) {
	t.Run("Tasks", func(t *testing.T) {
		t.Run("CreateAndGet", func(t *testing.T) { testTaskRoundTrip(t, newStore) })
		t.Run("DuplicateIsConflict", func(t *testing.T) { testTaskDuplicate(t, newStore) })
		t.Run("MissingIsNotFound", func(t *testing.T) { testTaskMissing(t, newStore) })
		t.Run("InvalidIDs", func(t *testing.T) { testTaskInvalidIDs(t, newStore) })
		t.Run("UpdateComparesVersion", func(t *testing.T) { testTaskUpdateCAS(t, newStore) })
		t.Run("ConcurrentUpdatesOneWins", func(t *testing.T) { testTaskConcurrentUpdates(t, newStore) })
		t.Run("DeleteRemovesRunsKeysAndEntry", func(t *testing.T) { testTaskDelete(t, newStore) })
	})
	t.Run("Tenancy", func(t *testing.T) {
		t.Run("OtherTenantSeesNothing", func(t *testing.T) { testTasksOtherTenant(t, newStore) })
		t.Run("SameIDsTwoTenants", func(t *testing.T) { testTasksSameIDs(t, newStore) })
	})
	t.Run("List", func(t *testing.T) {
		t.Run("Filters", func(t *testing.T) { testListFilters(t, newStore) })
		t.Run("CreationOrderAndPaging", func(t *testing.T) { testListOrder(t, newStore) })
		t.Run("CursorSurvivesChanges", func(t *testing.T) { testListCursorChanges(t, newStore) })
		t.Run("BadLimitOrCursorIsInvalid", func(t *testing.T) { testListInvalid(t, newStore) })
	})
	t.Run("Runs", func(t *testing.T) {
		t.Run("CreateAndGet", func(t *testing.T) { testRunRoundTrip(t, newStore) })
		t.Run("TaskMustExist", func(t *testing.T) { testRunTaskMissing(t, newStore) })
		t.Run("DuplicateIDIsConflict", func(t *testing.T) { testRunDuplicateID(t, newStore) })
		t.Run("SameSlotIsConflict", func(t *testing.T) { testRunSameSlot(t, newStore) })
		t.Run("ConcurrentCreatesExactlyOne", func(t *testing.T) { testRunConcurrentCreate(t, newStore) })
		t.Run("UpdateComparesStatus", func(t *testing.T) { testRunUpdateCAS(t, newStore) })
		t.Run("UpdateKeepsIdentity", func(t *testing.T) { testRunIdentity(t, newStore) })
		t.Run("ConcurrentClaimsExactlyOne", func(t *testing.T) { testRunConcurrentClaim(t, newStore) })
		t.Run("ListNewestFirst", func(t *testing.T) { testRunList(t, newStore) })
	})
	t.Run("Schedule", func(t *testing.T) {
		t.Run("SetAndNext", func(t *testing.T) { testScheduleSet(t, newStore) })
		t.Run("SetReplaces", func(t *testing.T) { testScheduleReplace(t, newStore) })
		t.Run("ClearIsIdempotent", func(t *testing.T) { testScheduleClear(t, newStore) })
		t.Run("DueByPriorityThenTime", func(t *testing.T) { testScheduleDueOrder(t, newStore) })
		t.Run("DueLimit", func(t *testing.T) { testScheduleDueLimit(t, newStore) })
		t.Run("AdvanceComparesSlot", func(t *testing.T) { testScheduleAdvance(t, newStore) })
		t.Run("ConcurrentAdvancesOneWins", func(t *testing.T) { testScheduleConcurrentAdvance(t, newStore) })
	})
}

type newTasksFunc = func(t *testing.T) tasks.Store

// taskBase is the suite's reference time, in a zone that is not UTC so
// that a store that compares times with == rather than Equal is caught.
var taskBase = time.Date(2026, 11, 22, 8, 0, 0, 123456789, time.FixedZone("UTC+8", 8*3600))

// sampleTask returns a task with every field set.
func sampleTask(tenant, id string) tasks.Task {
	return tasks.Task{
		ID: id, Tenant: tenant, Owner: "ana", Status: tasks.StatusActive, Version: 1, ThreadID: "th_" + id,
		Spec: tasks.Spec{
			Title:       "Beijing weather, 每天 8 点 <b>&</b>",
			Kind:        tasks.KindPeriodic,
			Trigger:     tasks.Trigger{Cron: "0 8 * * *", TZ: "Asia/Shanghai", Jitter: tasks.Duration(30 * time.Second)},
			Instruction: "Push me the weather.",
			Slots:       map[string]any{"city": "Beijing", "days": 3.0, "units": []any{"c", "mm"}, "extra": map[string]any{"wind": true}},
			Tools:       []string{"weather@2", "notify"},
			Steps:       []tasks.Step{{Tool: "weather@2", Args: map[string]any{"city": "{{city}}"}}},
			Priority:    tasks.PriorityHigh,
			Notify:      []tasks.Webhook{{URL: "https://example.com/hook", Secret: "s3cret"}},
			Then:        []string{"tsk_next"},
			CatchUp:     tasks.CatchUpSkip,
		},
		CreatedAt: taskBase,
		UpdatedAt: taskBase.Add(time.Minute),
	}
}

// sampleRun returns a run of task taskID for slot, with every field set.
func sampleRun(tenant, id, taskID string, slot time.Time) tasks.Run {
	return tasks.Run{
		ID: id, Tenant: tenant, TaskID: taskID, TaskVersion: 3,
		Spec:  tasks.Spec{Title: "snapshot", Kind: tasks.KindOneShot, Trigger: tasks.Trigger{At: slot}},
		Slot:  slot,
		Due:   slot.Add(1500 * time.Millisecond),
		Cause: tasks.CauseSchedule, Parent: "run_parent", Attempt: 2, Status: tasks.RunQueued,
		Checkpoints: []tasks.Checkpoint{
			{Step: 0, At: slot.Add(time.Second), State: json.RawMessage(`{"page": 1, "html": "<p>"}`)},
			{Step: 1, At: slot.Add(2 * time.Second), State: json.RawMessage(`[1,2,3]`)},
		},
		Result:     json.RawMessage(`{"temp": 21.5, "text": "晴"}`),
		Error:      "rate limited",
		ErrorClass: tasks.ErrorTemporary,
		CreatedAt:  slot,
		UpdatedAt:  slot.Add(3 * time.Second),
		StartedAt:  slot.Add(time.Second),
		FinishedAt: slot.Add(4 * time.Second),
		RetryAt:    slot.Add(10 * time.Second),
	}
}

// canonical returns v as JSON with every RFC 3339 time string rewritten in
// UTC and objects' keys sorted, so that two values that are equal under
// the contract (same instants, same JSON) have the same canonical form.
func canonical(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	var norm func(any) any
	norm = func(v any) any {
		switch v := v.(type) {
		case string:
			if tm, err := time.Parse(time.RFC3339Nano, v); err == nil {
				return tm.UTC().Format(time.RFC3339Nano)
			}
			return v
		case map[string]any:
			for k, e := range v {
				v[k] = norm(e)
			}
			return v
		case []any:
			for i, e := range v {
				v[i] = norm(e)
			}
			return v
		default:
			return v
		}
	}
	out, err := json.Marshal(norm(generic)) // maps marshal with sorted keys
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func checkSame(t *testing.T, what string, got, want any) {
	t.Helper()
	if g, w := canonical(t, got), canonical(t, want); g != w {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func mustCreateTask(t *testing.T, s tasks.Store, task tasks.Task) tasks.Task {
	t.Helper()
	if err := s.CreateTask(t.Context(), task); err != nil {
		t.Fatalf("CreateTask(%s/%s): %v", task.Tenant, task.ID, err)
	}
	return task
}

func mustGetTask(t *testing.T, s tasks.Store, tenant, id string) tasks.Task {
	t.Helper()
	got, err := s.Task(t.Context(), tenant, id)
	if err != nil {
		t.Fatalf("Task(%s/%s): %v", tenant, id, err)
	}
	return got
}

func mustCreateRun(t *testing.T, s tasks.Store, r tasks.Run) tasks.Run {
	t.Helper()
	if err := s.CreateRun(t.Context(), r); err != nil {
		t.Fatalf("CreateRun(%s/%s): %v", r.Tenant, r.ID, err)
	}
	return r
}

func mustGetRun(t *testing.T, s tasks.Store, tenant, id string) tasks.Run {
	t.Helper()
	got, err := s.Run(t.Context(), tenant, id)
	if err != nil {
		t.Fatalf("Run(%s/%s): %v", tenant, id, err)
	}
	return got
}

func mustSetNext(t *testing.T, s tasks.Store, e tasks.ScheduleEntry) {
	t.Helper()
	if err := s.SetNext(t.Context(), e); err != nil {
		t.Fatalf("SetNext(%s/%s): %v", e.Tenant, e.TaskID, err)
	}
}

func entry(tenant, taskID string, p tasks.Priority, due time.Time) tasks.ScheduleEntry {
	return tasks.ScheduleEntry{Tenant: tenant, TaskID: taskID, Priority: p, Slot: due.Add(-time.Second), Due: due}
}

// wantLookupMiss checks the answer to a lookup that must find nothing.
func wantLookupMiss(t *testing.T, err error, what string) {
	t.Helper()
	if c := vigil.ErrorCode(err); c != vigil.NotFound && c != vigil.Invalid {
		t.Errorf("%s: error %v (code %q), want not_found or invalid", what, err, c)
	}
}

// --- tasks ---

func testTaskRoundTrip(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	want := sampleTask("acme", "tsk_1")
	in := want
	next := taskBase.Add(time.Hour)
	in.NextFire = &next // never stored
	mustCreateTask(t, s, in)
	got := mustGetTask(t, s, "acme", "tsk_1")
	if got.NextFire != nil {
		t.Errorf("NextFire read back as %v, want nil: it is not stored", got.NextFire)
	}
	checkSame(t, "task read back", got, want)

	monitor := sampleTask("acme", "tsk_2")
	monitor.Kind, monitor.Status, monitor.Owner = tasks.KindMonitor, tasks.StatusDraft, ""
	monitor.Trigger = tasks.Trigger{Every: tasks.Duration(15 * time.Minute), Start: taskBase, Event: "oil"}
	monitor.Monitor = &tasks.Monitor{Source: tasks.Step{Tool: "price", Args: map[string]any{"symbol": "BRENT"}}, Condition: "value < prev * 0.95", Judge: "a real drop"}
	monitor.Slots, monitor.Tools, monitor.Steps, monitor.Notify, monitor.Then = nil, nil, nil, nil, nil
	mustCreateTask(t, s, monitor)
	checkSame(t, "monitor read back", mustGetTask(t, s, "acme", "tsk_2"), monitor)
}

func testTaskDuplicate(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	first := mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	dup := sampleTask("acme", "tsk_1")
	dup.Title, dup.Version = "a second task with the same id", 7
	wantCode(t, s.CreateTask(t.Context(), dup), vigil.Conflict, "CreateTask of an existing id")
	checkSame(t, "task after a conflicting create", mustGetTask(t, s, "acme", "tsk_1"), first)
}

func testTaskMissing(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	mustCreateTask(t, s, sampleTask("acme", "tsk_other")) // the tenant exists, the task does not
	for _, tenant := range []string{"acme", "nobody"} {
		_, err := s.Task(ctx, tenant, "tsk_missing")
		wantCode(t, err, vigil.NotFound, "Task("+tenant+"/tsk_missing)")
		_, err = s.UpdateTask(ctx, sampleTask(tenant, "tsk_missing"))
		wantCode(t, err, vigil.NotFound, "UpdateTask("+tenant+"/tsk_missing)")
		wantCode(t, s.DeleteTask(ctx, tenant, "tsk_missing"), vigil.NotFound, "DeleteTask("+tenant+"/tsk_missing)")
		_, err = s.Run(ctx, tenant, "run_missing")
		wantCode(t, err, vigil.NotFound, "Run("+tenant+"/run_missing)")
		r := sampleRun(tenant, "run_missing", "tsk_other", taskBase)
		wantCode(t, s.UpdateRun(ctx, r, tasks.RunQueued), vigil.NotFound, "UpdateRun("+tenant+"/run_missing)")
	}
	// A failed update must not create the task.
	_, err := s.Task(ctx, "acme", "tsk_missing")
	wantCode(t, err, vigil.NotFound, "Task after a failed UpdateTask")
}

func testTaskInvalidIDs(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	for _, tc := range []struct{ tenant, id string }{
		{"", "tsk_1"}, {"acme", ""}, {"ac/me", "tsk_1"}, {"acme", "tsk 1"}, {"acme", "tsk\x001"}, {strings.Repeat("a", 129), "tsk_1"},
	} {
		what := fmt.Sprintf("CreateTask(%q/%q)", tc.tenant, tc.id)
		wantCode(t, s.CreateTask(ctx, sampleTask(tc.tenant, tc.id)), vigil.Invalid, what)
		_, err := s.Task(ctx, tc.tenant, tc.id)
		wantLookupMiss(t, err, fmt.Sprintf("Task(%q/%q)", tc.tenant, tc.id))
	}
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	for _, id := range []string{"", "run 1", "run/1"} {
		wantCode(t, s.CreateRun(ctx, sampleRun("acme", id, "tsk_1", taskBase)), vigil.Invalid, fmt.Sprintf("CreateRun(id %q)", id))
		_, err := s.Run(ctx, "acme", id)
		wantLookupMiss(t, err, fmt.Sprintf("Run(%q)", id))
	}
}

func testTaskUpdateCAS(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	orig := mustCreateTask(t, s, sampleTask("acme", "tsk_1"))

	upd := orig
	upd.Title, upd.Status, upd.Slots = "renamed", tasks.StatusPaused, map[string]any{"city": "Hangzhou"}
	upd.UpdatedAt = taskBase.Add(time.Hour)
	upd.CreatedAt = taskBase.Add(99 * time.Hour) // kept from the stored task
	v, err := s.UpdateTask(ctx, upd)
	if err != nil || v != 2 {
		t.Fatalf("UpdateTask from version 1 = %d, %v; want 2, nil", v, err)
	}
	want := upd
	want.Version, want.CreatedAt = 2, orig.CreatedAt
	checkSame(t, "task after update", mustGetTask(t, s, "acme", "tsk_1"), want)

	stale := orig // still says version 1
	stale.Title = "lost update"
	_, err = s.UpdateTask(ctx, stale)
	wantCode(t, err, vigil.Conflict, "UpdateTask with a stale version")
	checkSame(t, "task after a stale update", mustGetTask(t, s, "acme", "tsk_1"), want)

	ahead := want
	ahead.Version = 5
	_, err = s.UpdateTask(ctx, ahead)
	wantCode(t, err, vigil.Conflict, "UpdateTask with a version from the future")

	again := want
	again.Title = "third"
	if v, err := s.UpdateTask(ctx, again); err != nil || v != 3 {
		t.Fatalf("UpdateTask from version 2 = %d, %v; want 3, nil", v, err)
	}
	if got := mustGetTask(t, s, "acme", "tsk_1"); got.Version != 3 || got.Title != "third" {
		t.Errorf("after the third update: version %d title %q", got.Version, got.Title)
	}
}

func testTaskConcurrentUpdates(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	orig := mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			u := orig
			u.Title = fmt.Sprint("writer ", i)
			_, errs[i] = s.UpdateTask(t.Context(), u)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch vigil.ErrorCode(err) {
		case "":
			if winner >= 0 {
				t.Errorf("writers %d and %d both updated version 1", winner, i)
			}
			winner = i
		case vigil.Conflict:
		default:
			t.Errorf("writer %d: %v, want nil or a conflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no concurrent update succeeded")
	}
	got := mustGetTask(t, s, "acme", "tsk_1")
	if got.Version != 2 || got.Title != fmt.Sprint("writer ", winner) {
		t.Errorf("stored version %d title %q; want 2 and the winner's (writer %d)", got.Version, got.Title, winner)
	}
}

func testTaskDelete(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	mustCreateTask(t, s, sampleTask("acme", "tsk_keep"))
	for i := range 3 {
		mustCreateRun(t, s, sampleRun("acme", fmt.Sprint("run_", i), "tsk_1", taskBase.Add(time.Duration(i)*time.Hour)))
	}
	kept := mustCreateRun(t, s, sampleRun("acme", "run_keep", "tsk_keep", taskBase))
	mustSetNext(t, s, entry("acme", "tsk_1", tasks.PriorityNormal, taskBase))
	mustSetNext(t, s, entry("acme", "tsk_keep", tasks.PriorityNormal, taskBase))

	if err := s.DeleteTask(ctx, "acme", "tsk_1"); err != nil {
		t.Fatalf("DeleteTask: %v", err)
	}
	_, err := s.Task(ctx, "acme", "tsk_1")
	wantCode(t, err, vigil.NotFound, "Task after DeleteTask")
	for i := range 3 {
		_, err := s.Run(ctx, "acme", fmt.Sprint("run_", i))
		wantCode(t, err, vigil.NotFound, "Run of a deleted task")
	}
	if page, err := s.ListRuns(ctx, "acme", tasks.RunFilter{TaskID: "tsk_1", Limit: 10}); err != nil || len(page.Runs) != 0 {
		t.Errorf("ListRuns of a deleted task = %d runs, %v; want none", len(page.Runs), err)
	}
	_, err = s.Next(ctx, "acme", "tsk_1")
	wantCode(t, err, vigil.NotFound, "Next of a deleted task")
	due, err := s.Due(ctx, taskBase.Add(time.Hour), 10)
	if err != nil || len(due) != 1 || due[0].TaskID != "tsk_keep" {
		t.Errorf("Due after DeleteTask = %v, %v; want only tsk_keep", due, err)
	}
	if page, err := s.ListTasks(ctx, "acme", tasks.TaskFilter{Limit: 10}); err != nil || len(page.Tasks) != 1 || page.Tasks[0].ID != "tsk_keep" {
		t.Errorf("ListTasks after DeleteTask = %v, %v; want only tsk_keep", page.Tasks, err)
	}
	checkSame(t, "the other task's run", mustGetRun(t, s, "acme", "run_keep"), kept)
	wantCode(t, s.DeleteTask(ctx, "acme", "tsk_1"), vigil.NotFound, "second DeleteTask")

	// The deleted runs' idempotency keys are free again.
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	mustCreateRun(t, s, sampleRun("acme", "run_new", "tsk_1", taskBase))
	mustCreateRun(t, s, sampleRun("acme", "run_0", "tsk_1", taskBase.Add(time.Hour)))
}

// --- tenancy ---

func testTasksOtherTenant(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	task := mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	run := mustCreateRun(t, s, sampleRun("acme", "run_1", "tsk_1", taskBase))
	e := entry("acme", "tsk_1", tasks.PriorityHigh, taskBase)
	mustSetNext(t, s, e)
	mustCreateTask(t, s, sampleTask("globex", "tsk_g")) // globex exists as a tenant

	_, err := s.Task(ctx, "globex", "tsk_1")
	wantCode(t, err, vigil.NotFound, "Task of another tenant")
	steal := task
	steal.Tenant, steal.Title = "globex", "stolen"
	_, err = s.UpdateTask(ctx, steal)
	wantCode(t, err, vigil.NotFound, "UpdateTask of another tenant's task")
	wantCode(t, s.DeleteTask(ctx, "globex", "tsk_1"), vigil.NotFound, "DeleteTask of another tenant's task")
	_, err = s.Run(ctx, "globex", "run_1")
	wantCode(t, err, vigil.NotFound, "Run of another tenant")
	r := run
	r.Tenant, r.Status = "globex", tasks.RunCancelled
	wantCode(t, s.UpdateRun(ctx, r, tasks.RunQueued), vigil.NotFound, "UpdateRun of another tenant's run")
	wantCode(t, s.CreateRun(ctx, sampleRun("globex", "run_2", "tsk_1", taskBase.Add(time.Hour))), vigil.NotFound, "CreateRun for another tenant's task")
	if page, err := s.ListRuns(ctx, "globex", tasks.RunFilter{TaskID: "tsk_1", Limit: 10}); err != nil || len(page.Runs) != 0 {
		t.Errorf("ListRuns of another tenant's task = %d runs, %v; want none", len(page.Runs), err)
	}
	if page, err := s.ListTasks(ctx, "globex", tasks.TaskFilter{Limit: 10}); err != nil || len(page.Tasks) != 1 || page.Tasks[0].ID != "tsk_g" {
		t.Errorf("ListTasks of globex = %v, %v; want only its own tsk_g", page.Tasks, err)
	}
	ge := e
	ge.Tenant = "globex"
	wantCode(t, s.SetNext(ctx, ge), vigil.NotFound, "SetNext for another tenant's task")
	_, err = s.Next(ctx, "globex", "tsk_1")
	wantCode(t, err, vigil.NotFound, "Next of another tenant's task")
	wantCode(t, s.AdvanceNext(ctx, ge, nil), vigil.Conflict, "AdvanceNext of another tenant's entry")
	if err := s.ClearNext(ctx, "globex", "tsk_1"); err != nil {
		t.Errorf("ClearNext of another tenant's task: %v, want nil (and no effect)", err)
	}

	// acme's task, run and entry are untouched.
	checkSame(t, "acme's task", mustGetTask(t, s, "acme", "tsk_1"), task)
	checkSame(t, "acme's run", mustGetRun(t, s, "acme", "run_1"), run)
	got, err := s.Next(ctx, "acme", "tsk_1")
	if err != nil {
		t.Fatalf("Next(acme/tsk_1): %v", err)
	}
	checkSame(t, "acme's entry", got, e)
}

func testTasksSameIDs(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	a, g := sampleTask("acme", "tsk_1"), sampleTask("globex", "tsk_1")
	g.Title = "globex's own"
	mustCreateTask(t, s, a)
	mustCreateTask(t, s, g) // not a conflict: another tenant
	ra := mustCreateRun(t, s, sampleRun("acme", "run_1", "tsk_1", taskBase))
	rg := sampleRun("globex", "run_1", "tsk_1", taskBase) // same run id, same key
	rg.Error = "globex's run"
	mustCreateRun(t, s, rg)
	mustSetNext(t, s, entry("acme", "tsk_1", tasks.PriorityNormal, taskBase))
	mustSetNext(t, s, entry("globex", "tsk_1", tasks.PriorityLow, taskBase.Add(time.Minute)))

	upd := mustGetTask(t, s, "globex", "tsk_1")
	upd.Title = "globex renamed"
	if _, err := s.UpdateTask(ctx, upd); err != nil {
		t.Fatal(err)
	}
	checkSame(t, "acme's task after globex's update", mustGetTask(t, s, "acme", "tsk_1"), a)
	if err := s.ClearNext(ctx, "globex", "tsk_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(ctx, "acme", "tsk_1"); err != nil {
		t.Errorf("acme's entry after globex's ClearNext: %v", err)
	}
	if err := s.DeleteTask(ctx, "globex", "tsk_1"); err != nil {
		t.Fatal(err)
	}
	checkSame(t, "acme's task after globex's delete", mustGetTask(t, s, "acme", "tsk_1"), a)
	checkSame(t, "acme's run after globex's delete", mustGetRun(t, s, "acme", "run_1"), ra)
}

// --- list ---

func taskIDs(ts []tasks.Task) []string {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	return ids
}

// listAll pages through ListTasks with limit per page.
func listAll(t *testing.T, s tasks.Store, tenant string, f tasks.TaskFilter, limit int) []string {
	t.Helper()
	var ids []string
	f.Limit, f.After = limit, ""
	for range 1000 {
		page, err := s.ListTasks(t.Context(), tenant, f)
		if err != nil {
			t.Fatalf("ListTasks(%+v): %v", f, err)
		}
		if len(page.Tasks) > limit {
			t.Fatalf("ListTasks returned %d tasks, over the limit %d", len(page.Tasks), limit)
		}
		ids = append(ids, taskIDs(page.Tasks)...)
		if page.Next == "" {
			return ids
		}
		if len(page.Tasks) == 0 {
			t.Fatalf("ListTasks returned an empty page with a next cursor")
		}
		f.After = page.Next
	}
	t.Fatal("ListTasks never returned a last page")
	return nil
}

func testListFilters(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	type spec struct {
		id     string
		status tasks.Status
		kind   tasks.Kind
		owner  string
		event  string
	}
	specs := []spec{
		{"tsk_a", tasks.StatusActive, tasks.KindPeriodic, "ana", ""},
		{"tsk_b", tasks.StatusPaused, tasks.KindPeriodic, "bo", ""},
		{"tsk_c", tasks.StatusActive, tasks.KindMonitor, "ana", "oil"},
		{"tsk_d", tasks.StatusDraft, tasks.KindOneShot, "bo", ""},
		{"tsk_e", tasks.StatusActive, tasks.KindMonitor, "bo", "gold"},
		{"tsk_f", tasks.StatusArchived, tasks.KindMonitor, "ana", "oil"},
	}
	for i, sp := range specs {
		task := sampleTask("acme", sp.id)
		task.Status, task.Kind, task.Owner, task.Trigger.Event = sp.status, sp.kind, sp.owner, sp.event
		task.CreatedAt = taskBase.Add(time.Duration(i) * time.Second)
		mustCreateTask(t, s, task)
	}
	mustCreateTask(t, s, sampleTask("globex", "tsk_z"))
	for _, tc := range []struct {
		f    tasks.TaskFilter
		want []string
	}{
		{tasks.TaskFilter{}, []string{"tsk_a", "tsk_b", "tsk_c", "tsk_d", "tsk_e", "tsk_f"}},
		{tasks.TaskFilter{Status: tasks.StatusActive}, []string{"tsk_a", "tsk_c", "tsk_e"}},
		{tasks.TaskFilter{Kind: tasks.KindMonitor}, []string{"tsk_c", "tsk_e", "tsk_f"}},
		{tasks.TaskFilter{Owner: "bo"}, []string{"tsk_b", "tsk_d", "tsk_e"}},
		{tasks.TaskFilter{Event: "oil"}, []string{"tsk_c", "tsk_f"}},
		{tasks.TaskFilter{Status: tasks.StatusActive, Kind: tasks.KindMonitor, Owner: "ana"}, []string{"tsk_c"}},
		{tasks.TaskFilter{Status: tasks.StatusActive, Event: "oil"}, []string{"tsk_c"}},
		{tasks.TaskFilter{Status: tasks.StatusPaused, Kind: tasks.KindMonitor}, nil},
		{tasks.TaskFilter{Owner: "nobody"}, nil},
	} {
		for _, limit := range []int{1, 2, 100} {
			if got := listAll(t, s, "acme", tc.f, limit); !slices.Equal(got, tc.want) {
				t.Errorf("ListTasks(%+v) by %d = %v, want %v", tc.f, limit, got, tc.want)
			}
		}
	}
}

func testListOrder(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	type key struct {
		at time.Time
		id string
	}
	var keys []key
	// Creation times out of insertion order, with ties broken by id.
	for i := range 25 {
		id := fmt.Sprintf("tsk_%02d", (i*7)%25)
		at := taskBase.Add(time.Duration((i*11)%5) * time.Second)
		task := sampleTask("acme", id)
		task.CreatedAt = at
		mustCreateTask(t, s, task)
		keys = append(keys, key{at, id})
	}
	sort.Slice(keys, func(i, j int) bool {
		if !keys[i].at.Equal(keys[j].at) {
			return keys[i].at.Before(keys[j].at)
		}
		return keys[i].id < keys[j].id
	})
	var want []string
	for _, k := range keys {
		want = append(want, k.id)
	}
	for _, limit := range []int{1, 7, 25, 1000} {
		if got := listAll(t, s, "acme", tasks.TaskFilter{}, limit); !slices.Equal(got, want) {
			t.Errorf("ListTasks by %d:\n got %v\nwant %v", limit, got, want)
		}
	}
	// A page of exactly the remaining tasks is the last.
	page, err := s.ListTasks(t.Context(), "acme", tasks.TaskFilter{Limit: 25})
	if err != nil || len(page.Tasks) != 25 || page.Next != "" {
		t.Errorf("ListTasks(limit 25 of 25) = %d tasks, next %q, %v; want 25 and no next", len(page.Tasks), page.Next, err)
	}
	// Tasks come back whole.
	checkSame(t, "listed task", page.Tasks[0], mustGetTask(t, s, "acme", page.Tasks[0].ID))
}

func testListCursorChanges(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	for i := range 10 {
		task := sampleTask("acme", fmt.Sprintf("tsk_%02d", i))
		task.CreatedAt = taskBase.Add(time.Duration(i) * time.Second)
		mustCreateTask(t, s, task)
	}
	page, err := s.ListTasks(ctx, "acme", tasks.TaskFilter{Limit: 4})
	if err != nil || page.Next == "" {
		t.Fatalf("first page: %v, next %q", err, page.Next)
	}
	// The page's last task is deleted and a new one added (newest) before
	// the next page is read; an earlier one is deleted too.
	if err := s.DeleteTask(ctx, "acme", "tsk_03"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTask(ctx, "acme", "tsk_01"); err != nil {
		t.Fatal(err)
	}
	late := sampleTask("acme", "tsk_late")
	late.CreatedAt = taskBase.Add(time.Hour)
	mustCreateTask(t, s, late)
	f := tasks.TaskFilter{After: page.Next, Limit: 100}
	page2, err := s.ListTasks(ctx, "acme", f)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"tsk_04", "tsk_05", "tsk_06", "tsk_07", "tsk_08", "tsk_09", "tsk_late"}
	if got := taskIDs(page2.Tasks); !slices.Equal(got, want) {
		t.Errorf("page after the cursor = %v, want %v", got, want)
	}
}

func testListInvalid(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	for _, limit := range []int{0, -1, tasks.MaxListLimit + 1} {
		_, err := s.ListTasks(ctx, "acme", tasks.TaskFilter{Limit: limit})
		wantCode(t, err, vigil.Invalid, fmt.Sprintf("ListTasks(limit %d)", limit))
		_, err = s.ListRuns(ctx, "acme", tasks.RunFilter{TaskID: "tsk_1", Limit: limit})
		wantCode(t, err, vigil.Invalid, fmt.Sprintf("ListRuns(limit %d)", limit))
	}
	_, err := s.ListTasks(ctx, "acme", tasks.TaskFilter{Limit: 10, After: "!!not a cursor!!"})
	wantCode(t, err, vigil.Invalid, "ListTasks with a cursor the store did not make")
	_, err = s.ListRuns(ctx, "acme", tasks.RunFilter{TaskID: "tsk_1", Limit: 10, After: "!!not a cursor!!"})
	wantCode(t, err, vigil.Invalid, "ListRuns with a cursor the store did not make")
	if page, err := s.ListTasks(ctx, "nobody", tasks.TaskFilter{Limit: 10}); err != nil || len(page.Tasks) != 0 || page.Next != "" {
		t.Errorf("ListTasks of a tenant without tasks = %v, %q, %v; want an empty last page", page.Tasks, page.Next, err)
	}
}

// --- runs ---

func testRunRoundTrip(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	want := mustCreateRun(t, s, sampleRun("acme", "run_1", "tsk_1", taskBase))
	got := mustGetRun(t, s, "acme", "run_1")
	checkSame(t, "run read back", got, want)
	if got.IdempotencyKey() != want.IdempotencyKey() {
		t.Errorf("key read back %q, want %q", got.IdempotencyKey(), want.IdempotencyKey())
	}

	bare := tasks.Run{ID: "run_2", Tenant: "acme", TaskID: "tsk_1", Slot: taskBase.Add(time.Hour), Status: tasks.RunQueued, Cause: tasks.CauseManual, CreatedAt: taskBase}
	mustCreateRun(t, s, bare)
	got = mustGetRun(t, s, "acme", "run_2")
	checkSame(t, "bare run read back", got, bare)
	if !got.StartedAt.IsZero() || !got.FinishedAt.IsZero() || got.Result != nil || got.Checkpoints != nil {
		t.Errorf("bare run read back with fields it did not have: %+v", got)
	}
}

func testRunTaskMissing(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	wantCode(t, s.CreateRun(ctx, sampleRun("acme", "run_1", "tsk_missing", taskBase)), vigil.NotFound, "CreateRun for a missing task")
	wantCode(t, s.CreateRun(ctx, sampleRun("nobody", "run_1", "tsk_1", taskBase)), vigil.NotFound, "CreateRun in a tenant without tasks")
	_, err := s.Run(ctx, "acme", "run_1")
	wantCode(t, err, vigil.NotFound, "Run after a failed CreateRun")
}

func testRunDuplicateID(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	first := mustCreateRun(t, s, sampleRun("acme", "run_1", "tsk_1", taskBase))
	dup := sampleRun("acme", "run_1", "tsk_1", taskBase.Add(time.Hour)) // another slot
	wantCode(t, s.CreateRun(t.Context(), dup), vigil.Conflict, "CreateRun of an existing run id")
	checkSame(t, "run after a conflicting create", mustGetRun(t, s, "acme", "run_1"), first)
	// The failed create did not take its slot.
	mustCreateRun(t, s, sampleRun("acme", "run_2", "tsk_1", taskBase.Add(time.Hour)))
}

func testRunSameSlot(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	mustCreateTask(t, s, sampleTask("acme", "tsk_2"))
	slot := time.Date(2026, 11, 22, 0, 0, 0, 100_000, time.UTC) // 0.1 ms past the second
	first := mustCreateRun(t, s, sampleRun("acme", "run_1", "tsk_1", slot))

	dup := sampleRun("acme", "run_dup", "tsk_1", slot.In(time.FixedZone("UTC-5", -5*3600)))
	wantCode(t, s.CreateRun(ctx, dup), vigil.Conflict, "CreateRun for a slot that has a run")
	sameMs := sampleRun("acme", "run_ms", "tsk_1", slot.Add(800*time.Microsecond))
	wantCode(t, s.CreateRun(ctx, sameMs), vigil.Conflict, "CreateRun for a slot in the same millisecond")
	_, err := s.Run(ctx, "acme", "run_dup")
	wantCode(t, err, vigil.NotFound, "Run of the refused duplicate")
	checkSame(t, "first run", mustGetRun(t, s, "acme", "run_1"), first)

	mustCreateRun(t, s, sampleRun("acme", "run_next_ms", "tsk_1", slot.Add(time.Millisecond)))
	mustCreateRun(t, s, sampleRun("acme", "run_other_task", "tsk_2", slot))
	// Updating a run (any field but its identity) does not free or move
	// its key.
	r := first
	r.Status = tasks.RunCancelled
	if err := s.UpdateRun(ctx, r, tasks.RunQueued); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.CreateRun(ctx, dup), vigil.Conflict, "CreateRun for the slot of a cancelled run")
}

func testRunConcurrentCreate(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	const n = 32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := sampleRun("acme", fmt.Sprint("run_", i), "tsk_1", taskBase)
			r.Error = fmt.Sprint("scheduler ", i)
			errs[i] = s.CreateRun(t.Context(), r)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch vigil.ErrorCode(err) {
		case "":
			if winner >= 0 {
				t.Errorf("runs %d and %d were both created for one slot", winner, i)
			}
			winner = i
		case vigil.Conflict:
		default:
			t.Errorf("create %d: %v, want nil or a conflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no concurrent CreateRun succeeded")
	}
	page, err := s.ListRuns(t.Context(), "acme", tasks.RunFilter{TaskID: "tsk_1", Limit: 100})
	if err != nil || len(page.Runs) != 1 || page.Runs[0].ID != fmt.Sprint("run_", winner) {
		t.Errorf("runs after the race: %v, %v; want only run_%d", page.Runs, err, winner)
	}
	for i := range n {
		if i != winner {
			_, err := s.Run(t.Context(), "acme", fmt.Sprint("run_", i))
			wantCode(t, err, vigil.NotFound, fmt.Sprint("loser run_", i))
		}
	}
}

func testRunUpdateCAS(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	r := mustCreateRun(t, s, sampleRun("acme", "run_1", "tsk_1", taskBase))

	claim := r
	claim.Status, claim.Attempt, claim.StartedAt = tasks.RunRunning, 3, taskBase.Add(time.Minute)
	claim.CreatedAt = taskBase.Add(time.Hour) // kept from the stored run
	if err := s.UpdateRun(ctx, claim, tasks.RunQueued); err != nil {
		t.Fatalf("UpdateRun queued → running: %v", err)
	}
	want := claim
	want.CreatedAt = r.CreatedAt
	checkSame(t, "run after update", mustGetRun(t, s, "acme", "run_1"), want)

	late := r
	late.Status = tasks.RunCancelled
	wantCode(t, s.UpdateRun(ctx, late, tasks.RunQueued), vigil.Conflict, "UpdateRun from a status the run left")
	checkSame(t, "run after a stale update", mustGetRun(t, s, "acme", "run_1"), want)

	// An update that keeps the status (a checkpoint) compares it too.
	cp := want
	cp.Checkpoints = append(slices.Clone(cp.Checkpoints), tasks.Checkpoint{Step: 2, At: taskBase.Add(2 * time.Minute), State: json.RawMessage(`{"done":2}`)})
	if err := s.UpdateRun(ctx, cp, tasks.RunRunning); err != nil {
		t.Fatalf("UpdateRun running → running (checkpoint): %v", err)
	}
	checkSame(t, "run after a checkpoint", mustGetRun(t, s, "acme", "run_1"), cp)
	last, _ := mustGetRun(t, s, "acme", "run_1").LastCheckpoint()
	if last.Step != 2 {
		t.Errorf("last checkpoint step %d, want 2", last.Step)
	}
}

func testRunIdentity(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	mustCreateTask(t, s, sampleTask("acme", "tsk_2"))
	r := mustCreateRun(t, s, sampleRun("acme", "run_1", "tsk_1", taskBase))
	moved := r
	moved.Slot = taskBase.Add(time.Hour)
	wantCode(t, s.UpdateRun(ctx, moved, tasks.RunQueued), vigil.Invalid, "UpdateRun that changes the slot")
	other := r
	other.TaskID = "tsk_2"
	wantCode(t, s.UpdateRun(ctx, other, tasks.RunQueued), vigil.Invalid, "UpdateRun that changes the task")
	checkSame(t, "run after refused updates", mustGetRun(t, s, "acme", "run_1"), r)
	// The slot, seen in another zone, is the same slot.
	same := r
	same.Slot, same.Status = r.Slot.UTC(), tasks.RunRunning
	if err := s.UpdateRun(ctx, same, tasks.RunQueued); err != nil {
		t.Errorf("UpdateRun with the slot in UTC: %v", err)
	}
}

func testRunConcurrentClaim(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	r := mustCreateRun(t, s, sampleRun("acme", "run_1", "tsk_1", taskBase))
	const n = 32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c := r
			c.Status, c.Error = tasks.RunRunning, fmt.Sprint("worker ", i)
			errs[i] = s.UpdateRun(t.Context(), c, tasks.RunQueued)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch vigil.ErrorCode(err) {
		case "":
			if winner >= 0 {
				t.Errorf("workers %d and %d both claimed the run", winner, i)
			}
			winner = i
		case vigil.Conflict:
		default:
			t.Errorf("claim %d: %v, want nil or a conflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no concurrent claim succeeded")
	}
	if got := mustGetRun(t, s, "acme", "run_1"); got.Status != tasks.RunRunning || got.Error != fmt.Sprint("worker ", winner) {
		t.Errorf("stored run %s by %q; want running by worker %d", got.Status, got.Error, winner)
	}
}

func testRunList(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	mustCreateTask(t, s, sampleTask("acme", "tsk_10")) // its id extends tsk_1's
	mustCreateTask(t, s, sampleTask("acme", "tsk_0"))
	type key struct {
		at time.Time
		id string
	}
	var keys []key
	for i := range 12 {
		id := fmt.Sprintf("run_%02d", (i*5)%12)
		at := taskBase.Add(time.Duration((i*7)%4) * time.Minute) // ties broken by id
		r := sampleRun("acme", id, "tsk_1", taskBase.Add(time.Duration(i)*time.Hour))
		r.CreatedAt = at
		mustCreateRun(t, s, r)
		keys = append(keys, key{at, id})
	}
	for i, task := range []string{"tsk_10", "tsk_0", "tsk_10"} {
		r := sampleRun("acme", fmt.Sprint("run_x", i), task, taskBase.Add(time.Duration(i)*time.Hour))
		r.CreatedAt = taskBase.Add(time.Duration(i) * time.Minute)
		mustCreateRun(t, s, r)
	}
	sort.Slice(keys, func(i, j int) bool {
		if !keys[i].at.Equal(keys[j].at) {
			return keys[i].at.After(keys[j].at)
		}
		return keys[i].id > keys[j].id
	})
	var want []string
	for _, k := range keys {
		want = append(want, k.id)
	}
	for _, limit := range []int{1, 5, 12, 100} {
		var got []string
		f := tasks.RunFilter{TaskID: "tsk_1", Limit: limit}
		for range 100 {
			page, err := s.ListRuns(ctx, "acme", f)
			if err != nil {
				t.Fatalf("ListRuns: %v", err)
			}
			if len(page.Runs) > limit {
				t.Fatalf("ListRuns returned %d runs, over the limit %d", len(page.Runs), limit)
			}
			for _, r := range page.Runs {
				got = append(got, r.ID)
			}
			if page.Next == "" {
				break
			}
			f.After = page.Next
		}
		if !slices.Equal(got, want) {
			t.Errorf("ListRuns by %d:\n got %v\nwant %v", limit, got, want)
		}
	}
	page, err := s.ListRuns(ctx, "acme", tasks.RunFilter{TaskID: "tsk_none", Limit: 10})
	if err != nil || len(page.Runs) != 0 || page.Next != "" {
		t.Errorf("ListRuns of a missing task = %v, %q, %v; want an empty last page", page.Runs, page.Next, err)
	}
	// Another task's runs page the same way.
	first, err := s.ListRuns(ctx, "acme", tasks.RunFilter{TaskID: "tsk_10", Limit: 1})
	if err != nil || len(first.Runs) != 1 || first.Next == "" {
		t.Fatalf("first page of tsk_10: %v, %v", first, err)
	}
	rest, err := s.ListRuns(ctx, "acme", tasks.RunFilter{TaskID: "tsk_10", Limit: 10, After: first.Next})
	if err != nil || len(rest.Runs) != 1 || rest.Runs[0].ID != "run_x0" || rest.Next != "" {
		t.Errorf("second page of tsk_10 = %v, %v; want run_x0 alone", rest, err)
	}
}

// --- schedule ---

func testScheduleSet(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	_, err := s.Next(ctx, "acme", "tsk_1")
	wantCode(t, err, vigil.NotFound, "Next of a task without an entry")
	e := entry("acme", "tsk_1", tasks.PriorityHigh, taskBase)
	mustSetNext(t, s, e)
	got, err := s.Next(ctx, "acme", "tsk_1")
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	checkSame(t, "entry read back", got, e)

	wantCode(t, s.SetNext(ctx, entry("acme", "tsk_missing", tasks.PriorityHigh, taskBase)), vigil.NotFound, "SetNext for a missing task")
	wantCode(t, s.SetNext(ctx, entry("nobody", "tsk_1", tasks.PriorityHigh, taskBase)), vigil.NotFound, "SetNext in a tenant without tasks")
	for _, p := range []tasks.Priority{"", "urgent"} {
		wantCode(t, s.SetNext(ctx, entry("acme", "tsk_1", p, taskBase)), vigil.Invalid, fmt.Sprintf("SetNext with priority %q", p))
	}
	got, _ = s.Next(ctx, "acme", "tsk_1")
	checkSame(t, "entry after refused SetNext calls", got, e)
}

func testScheduleReplace(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	mustSetNext(t, s, entry("acme", "tsk_1", tasks.PriorityHigh, taskBase))
	repl := entry("acme", "tsk_1", tasks.PriorityLow, taskBase.Add(time.Minute))
	mustSetNext(t, s, repl)
	got, err := s.Next(ctx, "acme", "tsk_1")
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, "replaced entry", got, repl)
	due, err := s.Due(ctx, taskBase.Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 {
		t.Fatalf("Due after a replace = %v; want the one new entry (the old one under another priority is gone)", due)
	}
	checkSame(t, "due entry", due[0], repl)
	if due, _ := s.Due(ctx, taskBase, 100); len(due) != 0 {
		t.Errorf("Due at the old due time = %v; want nothing", due)
	}
}

func testScheduleClear(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	mustSetNext(t, s, entry("acme", "tsk_1", tasks.PriorityNormal, taskBase))
	for i := range 2 {
		if err := s.ClearNext(ctx, "acme", "tsk_1"); err != nil {
			t.Fatalf("ClearNext #%d: %v", i+1, err)
		}
	}
	_, err := s.Next(ctx, "acme", "tsk_1")
	wantCode(t, err, vigil.NotFound, "Next after ClearNext")
	if due, err := s.Due(ctx, taskBase.Add(time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("Due after ClearNext = %v, %v; want nothing", due, err)
	}
	if err := s.ClearNext(ctx, "acme", "tsk_missing"); err != nil {
		t.Errorf("ClearNext of a missing task: %v", err)
	}
	if err := s.ClearNext(ctx, "nobody", "tsk_1"); err != nil {
		t.Errorf("ClearNext in a tenant without tasks: %v", err)
	}
	// The task itself is untouched.
	mustGetTask(t, s, "acme", "tsk_1")
}

// dueFixture stores entries across tenants and priorities and returns them
// in the order Due must return them at taskBase+1h (the later ones are
// not due).
func dueFixture(t *testing.T, s tasks.Store) (due []tasks.ScheduleEntry, now time.Time) {
	now = taskBase.Add(time.Hour)
	type spec struct {
		tenant, task string
		p            tasks.Priority
		at           time.Duration // due time relative to now
	}
	specs := []spec{
		{"acme", "tsk_n1", tasks.PriorityNormal, -30 * time.Minute},
		{"globex", "tsk_h1", tasks.PriorityHigh, -time.Minute},
		{"acme", "tsk_l1", tasks.PriorityLow, -50 * time.Minute},
		{"acme", "tsk_h2", tasks.PriorityHigh, -10 * time.Minute},
		{"globex", "tsk_n2", tasks.PriorityNormal, 0},                  // due exactly now
		{"acme", "tsk_hf", tasks.PriorityHigh, time.Millisecond},       // the next millisecond: not due
		{"acme", "tsk_hz", tasks.PriorityHigh, 500 * time.Microsecond}, // now's millisecond: due
		{"acme", "tsk_nf", tasks.PriorityNormal, time.Hour},
		{"acme", "tsk_n3", tasks.PriorityNormal, -30 * time.Minute}, // ties tsk_n1: tenant, then task
		{"acme", "tsk_n0", tasks.PriorityNormal, -30 * time.Minute},
		{"a", "tsk_n9", tasks.PriorityNormal, -30 * time.Minute}, // tenant "a" sorts before "acme"
		{"globex", "tsk_h0", tasks.PriorityHigh, -time.Minute},
	}
	byKey := map[string]tasks.ScheduleEntry{}
	for _, sp := range specs {
		mustCreateTask(t, s, sampleTask(sp.tenant, sp.task))
		e := entry(sp.tenant, sp.task, sp.p, now.Add(sp.at))
		mustSetNext(t, s, e)
		byKey[sp.tenant+"/"+sp.task] = e
	}
	for _, k := range []string{
		"acme/tsk_h2", "globex/tsk_h0", "globex/tsk_h1", "acme/tsk_hz",
		"a/tsk_n9", "acme/tsk_n0", "acme/tsk_n1", "acme/tsk_n3", "globex/tsk_n2",
		"acme/tsk_l1",
	} {
		due = append(due, byKey[k])
	}
	return due, now
}

func entryKeys(es []tasks.ScheduleEntry) []string {
	keys := make([]string, len(es))
	for i, e := range es {
		keys[i] = e.Tenant + "/" + e.TaskID
	}
	return keys
}

func testScheduleDueOrder(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	want, now := dueFixture(t, s)
	got, err := s.Due(t.Context(), now, tasks.MaxDueLimit)
	if err != nil {
		t.Fatalf("Due: %v", err)
	}
	if !slices.Equal(entryKeys(got), entryKeys(want)) {
		t.Fatalf("Due order:\n got %v\nwant %v", entryKeys(got), entryKeys(want))
	}
	for i := range got {
		checkSame(t, "due entry "+entryKeys(got)[i], got[i], want[i])
	}
	// Due does not remove what it returns.
	again, err := s.Due(t.Context(), now, tasks.MaxDueLimit)
	if err != nil || len(again) != len(want) {
		t.Errorf("second Due = %d entries, %v; want %d", len(again), err, len(want))
	}
	if early, err := s.Due(t.Context(), taskBase, 100); err != nil || len(early) != 0 {
		t.Errorf("Due before anything is due = %v, %v", entryKeys(early), err)
	}
}

func testScheduleDueLimit(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	want, now := dueFixture(t, s)
	for _, limit := range []int{1, 2, 3, 4, 5, 9, 10, 11} {
		got, err := s.Due(ctx, now, limit)
		if err != nil {
			t.Fatalf("Due(limit %d): %v", limit, err)
		}
		if w := entryKeys(want[:min(limit, len(want))]); !slices.Equal(entryKeys(got), w) {
			t.Errorf("Due(limit %d) = %v, want %v", limit, entryKeys(got), w)
		}
	}
	for _, limit := range []int{0, -1, tasks.MaxDueLimit + 1} {
		_, err := s.Due(ctx, now, limit)
		wantCode(t, err, vigil.Invalid, fmt.Sprintf("Due(limit %d)", limit))
	}
}

func testScheduleAdvance(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	ctx := t.Context()
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	mustCreateTask(t, s, sampleTask("acme", "tsk_2"))
	first := entry("acme", "tsk_1", tasks.PriorityNormal, taskBase)
	wantCode(t, s.AdvanceNext(ctx, first, nil), vigil.Conflict, "AdvanceNext without an entry")
	mustSetNext(t, s, first)

	second := entry("acme", "tsk_1", tasks.PriorityHigh, taskBase.Add(time.Hour))
	from := first
	from.Slot = first.Slot.In(time.FixedZone("UTC-5", -5*3600)) // the same instant
	from.Priority, from.Due = tasks.PriorityLow, time.Time{}    // only the slot is compared
	if err := s.AdvanceNext(ctx, from, &second); err != nil {
		t.Fatalf("AdvanceNext from the stored slot: %v", err)
	}
	got, err := s.Next(ctx, "acme", "tsk_1")
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, "advanced entry", got, second)

	third := entry("acme", "tsk_1", tasks.PriorityNormal, taskBase.Add(2*time.Hour))
	wantCode(t, s.AdvanceNext(ctx, first, &third), vigil.Conflict, "AdvanceNext from a stale slot")
	got, _ = s.Next(ctx, "acme", "tsk_1")
	checkSame(t, "entry after a stale advance", got, second)

	wrong := entry("acme", "tsk_2", tasks.PriorityNormal, taskBase)
	wantCode(t, s.AdvanceNext(ctx, second, &wrong), vigil.Invalid, "AdvanceNext to another task's entry")

	if err := s.AdvanceNext(ctx, second, nil); err != nil {
		t.Fatalf("AdvanceNext to nil: %v", err)
	}
	_, err = s.Next(ctx, "acme", "tsk_1")
	wantCode(t, err, vigil.NotFound, "Next after advancing to nil")
	if due, err := s.Due(ctx, taskBase.Add(24*time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("Due after advancing to nil = %v, %v", entryKeys(due), err)
	}
}

func testScheduleConcurrentAdvance(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	from := entry("acme", "tsk_1", tasks.PriorityNormal, taskBase)
	mustSetNext(t, s, from)
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			to := entry("acme", "tsk_1", tasks.PriorityNormal, taskBase.Add(time.Duration(i+1)*time.Minute))
			errs[i] = s.AdvanceNext(t.Context(), from, &to)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch vigil.ErrorCode(err) {
		case "":
			if winner >= 0 {
				t.Errorf("schedulers %d and %d both advanced one entry", winner, i)
			}
			winner = i
		case vigil.Conflict:
		default:
			t.Errorf("advance %d: %v, want nil or a conflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no concurrent advance succeeded")
	}
	got, err := s.Next(t.Context(), "acme", "tsk_1")
	if err != nil || !got.Due.Equal(taskBase.Add(time.Duration(winner+1)*time.Minute)) {
		t.Errorf("entry after the race: %+v, %v; want the winner's (%d)", got, err, winner)
	}
	due, err := s.Due(t.Context(), taskBase.Add(time.Hour), 100)
	if err != nil || len(due) != 1 {
		t.Errorf("Due after the race = %v, %v; want exactly one entry", entryKeys(due), err)
	}
}

// BatchTasksStore is a tasks.Store with the optional tasks.BatchStore.
type BatchTasksStore interface {
	tasks.Store
	tasks.BatchStore
}

// TaskBatches runs the conformance suite of tasks.BatchStore: each method
// answers, element by element, what the single Store call would. newStore
// is called once per subtest, as for Tasks.
func TaskBatches(t *testing.T, newStore func(t *testing.T) BatchTasksStore) {
	t.Run("TaskBatchReadsLikeTask", func(t *testing.T) { testTaskBatch(t, newStore(t)) })
	t.Run("CreateRunsLikeCreateRun", func(t *testing.T) { testCreateRuns(t, newStore(t)) })
	t.Run("ConcurrentCreateRunsExactlyOne", func(t *testing.T) { testCreateRunsConcurrent(t, newStore(t)) })
	t.Run("AdvanceNextBatchLikeAdvanceNext", func(t *testing.T) { testAdvanceNextBatch(t, newStore(t)) })
	t.Run("AdvanceNextBatchLarge", func(t *testing.T) { testAdvanceNextBatchLarge(t, newStore(t)) })
}

// testAdvanceNextBatchLarge moves more entries than a backend is likely
// to send in one step, every third from a stale slot: each move's error
// is its own, in order.
func testAdvanceNextBatchLarge(t *testing.T, s BatchTasksStore) {
	ctx := t.Context()
	const n = 1201
	moves := make([]tasks.NextMove, n)
	orig := make([]tasks.ScheduleEntry, n)
	for i := range n {
		id := fmt.Sprintf("tsk_%04d", i)
		mustCreateTask(t, s, sampleTask("acme", id))
		e := entry("acme", id, tasks.PriorityNormal, taskBase)
		mustSetNext(t, s, e)
		orig[i] = e
		to := entry("acme", id, tasks.PriorityLow, taskBase.Add(time.Duration(i+1)*time.Minute))
		moves[i] = tasks.NextMove{From: e, To: &to}
		if i%3 == 0 {
			moves[i].From.Slot = e.Slot.Add(-time.Minute)
		}
	}
	errs := s.AdvanceNextBatch(ctx, moves)
	if len(errs) != n {
		t.Fatalf("AdvanceNextBatch returned %d errors for %d moves", len(errs), n)
	}
	for i, err := range errs {
		want := vigil.Code("")
		if i%3 == 0 {
			want = vigil.Conflict
		}
		if vigil.ErrorCode(err) != want || (want == "") != (err == nil) {
			t.Fatalf("move %d: %v, want code %q", i, err, want)
		}
		got, err := s.Next(ctx, "acme", moves[i].From.TaskID)
		if err != nil {
			t.Fatal(err)
		}
		if want == "" {
			checkSame(t, "moved entry", got, *moves[i].To)
		} else {
			checkSame(t, "entry after a stale move", got, orig[i])
		}
	}
}

func testTaskBatch(t *testing.T, s BatchTasksStore) {
	ctx := t.Context()
	if got, err := s.TaskBatch(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("TaskBatch(nil) = %d tasks, %v", len(got), err)
	}
	a1 := mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	a2 := sampleTask("acme", "tsk_2")
	a2.Status, a2.Priority = tasks.StatusPaused, tasks.PriorityLow
	mustCreateTask(t, s, a2)
	b1 := sampleTask("beta", "tsk_1")
	b1.Title = "beta's"
	mustCreateTask(t, s, b1)
	refs := []tasks.TaskRef{
		{Tenant: "acme", ID: "tsk_2"},
		{Tenant: "acme", ID: "tsk_missing"},
		{Tenant: "beta", ID: "tsk_1"},
		{Tenant: "gamma", ID: "tsk_1"}, // another tenant's id
		{Tenant: "acme", ID: "bad id!"},
		{Tenant: "", ID: "tsk_1"},
		{Tenant: "acme", ID: "tsk_1"},
		{Tenant: "acme", ID: "tsk_1"}, // twice
	}
	got, err := s.TaskBatch(ctx, refs)
	if err != nil {
		t.Fatalf("TaskBatch: %v", err)
	}
	if len(got) != len(refs) {
		t.Fatalf("TaskBatch returned %d tasks for %d refs", len(got), len(refs))
	}
	want := []tasks.Task{mustGetTask(t, s, "acme", "tsk_2"), {}, mustGetTask(t, s, "beta", "tsk_1"), {}, {}, {},
		mustGetTask(t, s, "acme", "tsk_1"), mustGetTask(t, s, "acme", "tsk_1")}
	for i, w := range want {
		if w.ID == "" {
			if got[i].ID != "" {
				t.Errorf("TaskBatch[%d] (%s/%s) = task %s/%s, want none", i, refs[i].Tenant, refs[i].ID, got[i].Tenant, got[i].ID)
			}
			continue
		}
		checkSame(t, fmt.Sprintf("TaskBatch[%d] (%s/%s)", i, refs[i].Tenant, refs[i].ID), got[i], w)
	}
	checkSame(t, "TaskBatch of acme/tsk_1", got[6], a1)
}

func testCreateRuns(t *testing.T, s BatchTasksStore) {
	ctx := t.Context()
	if errs := s.CreateRuns(ctx, nil); len(errs) != 0 {
		t.Fatalf("CreateRuns(nil) = %v", errs)
	}
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	mustCreateTask(t, s, sampleTask("acme", "tsk_2"))
	slot := taskBase.Add(time.Hour)
	taken := mustCreateRun(t, s, sampleRun("acme", "run_taken", "tsk_2", slot.Add(time.Hour)))
	runs := []tasks.Run{
		sampleRun("acme", "run_1", "tsk_1", slot),
		sampleRun("acme", "run_2", "tsk_2", slot),
		sampleRun("acme", "run_3", "tsk_missing", slot),                // no such task
		sampleRun("beta", "run_4", "tsk_1", slot),                      // the task is acme's
		sampleRun("acme", "run_taken", "tsk_1", slot.Add(2*time.Hour)), // the id is taken
		sampleRun("acme", "run_5", "tsk_2", taken.Slot),                // the slot is taken
		sampleRun("acme", "bad id!", "tsk_1", slot.Add(3*time.Hour)),   // invalid id
		sampleRun("acme", "run_6", "tsk_1", slot.Add(4*time.Hour)),
	}
	wantCodes := []vigil.Code{"", "", vigil.NotFound, vigil.NotFound, vigil.Conflict, vigil.Conflict, vigil.Invalid, ""}
	errs := s.CreateRuns(ctx, runs)
	if len(errs) != len(runs) {
		t.Fatalf("CreateRuns returned %d errors for %d runs", len(errs), len(runs))
	}
	for i, r := range runs {
		if c := vigil.ErrorCode(errs[i]); c != wantCodes[i] || (wantCodes[i] == "") != (errs[i] == nil) {
			t.Errorf("CreateRuns[%d] (%s/%s) = %v (code %q), want code %q", i, r.Tenant, r.ID, errs[i], c, wantCodes[i])
		}
	}
	for _, i := range []int{0, 1, 7} {
		checkSame(t, "run "+runs[i].ID, mustGetRun(t, s, "acme", runs[i].ID), runs[i])
	}
	checkSame(t, "the run whose id was taken", mustGetRun(t, s, "acme", "run_taken"), taken)
	for _, id := range []string{"run_3", "run_5"} {
		_, err := s.Run(ctx, "acme", id)
		wantCode(t, err, vigil.NotFound, "Run of a run CreateRuns refused")
	}
	_, err := s.Run(ctx, "beta", "run_4")
	wantCode(t, err, vigil.NotFound, "Run of a run CreateRuns refused")

	// Two runs of one slot in one batch: exactly one is stored.
	twins := []tasks.Run{sampleRun("acme", "run_7", "tsk_1", slot.Add(5*time.Hour)), sampleRun("acme", "run_8", "tsk_1", slot.Add(5*time.Hour))}
	errs = s.CreateRuns(ctx, twins)
	if (errs[0] == nil) == (errs[1] == nil) || vigil.ErrorCode(errs[0]) != vigil.Conflict && vigil.ErrorCode(errs[1]) != vigil.Conflict {
		t.Errorf("CreateRuns of two runs for one slot = %v, want one nil and one conflict", errs)
	}
}

func testCreateRunsConcurrent(t *testing.T, s BatchTasksStore) {
	mustCreateTask(t, s, sampleTask("acme", "tsk_1"))
	slot := taskBase.Add(time.Hour)
	const n = 8
	var wg sync.WaitGroup
	errs := make([][]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.CreateRuns(t.Context(), []tasks.Run{
				sampleRun("acme", fmt.Sprintf("run_%d", i), "tsk_1", slot),
				sampleRun("acme", fmt.Sprintf("run_other_%d", i), "tsk_1", slot.Add(time.Duration(i+1)*time.Hour)),
			})
		})
	}
	wg.Wait()
	won := 0
	for i, e := range errs {
		switch {
		case e[0] == nil:
			won++
		case vigil.ErrorCode(e[0]) != vigil.Conflict:
			t.Errorf("CreateRuns %d: %v, want nil or conflict", i, e[0])
		}
		if e[1] != nil {
			t.Errorf("CreateRuns %d of its own slot: %v", i, e[1])
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent CreateRuns of one slot succeeded, want 1", won, n)
	}
	page, err := s.ListRuns(t.Context(), "acme", tasks.RunFilter{TaskID: "tsk_1", Limit: 100})
	if err != nil || len(page.Runs) != n+1 {
		t.Errorf("ListRuns after the concurrent CreateRuns = %d runs, %v; want %d", len(page.Runs), err, n+1)
	}
}

func testAdvanceNextBatch(t *testing.T, s BatchTasksStore) {
	ctx := t.Context()
	if errs := s.AdvanceNextBatch(ctx, nil); len(errs) != 0 {
		t.Fatalf("AdvanceNextBatch(nil) = %v", errs)
	}
	var es []tasks.ScheduleEntry
	for i := range 4 {
		id := fmt.Sprintf("tsk_%d", i)
		mustCreateTask(t, s, sampleTask("acme", id))
		e := entry("acme", id, tasks.PriorityNormal, taskBase.Add(time.Duration(i)*time.Minute))
		if i < 3 {
			mustSetNext(t, s, e)
		}
		es = append(es, e)
	}
	later := func(e tasks.ScheduleEntry) *tasks.ScheduleEntry {
		n := entry(e.Tenant, e.TaskID, tasks.PriorityHigh, e.Due.Add(time.Hour))
		return &n
	}
	stale := es[1]
	stale.Slot = stale.Slot.Add(-time.Minute)
	moves := []tasks.NextMove{
		{From: es[0], To: later(es[0])}, // advances
		{From: stale, To: later(es[1])}, // a stale slot
		{From: es[2], To: nil},          // removes
		{From: es[3], To: later(es[3])}, // no entry
		{From: es[1], To: later(es[0])}, // to another task's entry
		{From: tasks.ScheduleEntry{Tenant: "acme", TaskID: "bad id!", Slot: taskBase}}, // invalid id
	}
	wantCodes := []vigil.Code{"", vigil.Conflict, "", vigil.Conflict, vigil.Invalid, vigil.Invalid}
	errs := s.AdvanceNextBatch(ctx, moves)
	if len(errs) != len(moves) {
		t.Fatalf("AdvanceNextBatch returned %d errors for %d moves", len(errs), len(moves))
	}
	for i := range moves {
		if c := vigil.ErrorCode(errs[i]); c != wantCodes[i] || (wantCodes[i] == "") != (errs[i] == nil) {
			t.Errorf("AdvanceNextBatch[%d] (%s) = %v (code %q), want code %q", i, moves[i].From.TaskID, errs[i], c, wantCodes[i])
		}
	}
	got, err := s.Next(ctx, "acme", "tsk_0")
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, "advanced entry", got, *later(es[0]))
	got, err = s.Next(ctx, "acme", "tsk_1")
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, "entry of a stale move", got, es[1])
	for _, id := range []string{"tsk_2", "tsk_3"} {
		_, err := s.Next(ctx, "acme", id)
		wantCode(t, err, vigil.NotFound, "Next of "+id)
	}
	due, err := s.Due(ctx, taskBase.Add(24*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if keys := entryKeys(due); len(keys) != 2 {
		t.Errorf("Due after the batch = %v, want tsk_0 and tsk_1", keys)
	}
}

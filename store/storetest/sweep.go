package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vigilhq/vigil/tasks"
)

// Sweeps runs the conformance suite of tasks.SweepStore. newStore is
// called once per subtest, as for Tasks.
func Sweeps(t *testing.T, newStore func(t *testing.T) tasks.Store) {
	t.Run("Sweep", func(t *testing.T) {
		t.Run("QueuedRunsOfEveryTenantBeforeTime", func(t *testing.T) { testSweepQueued(t, newStore) })
		t.Run("ActiveOneShotsOfEveryTenantBeforeTime", func(t *testing.T) { testSweepOneShots(t, newStore) })
		t.Run("FnMayWriteAndStopTheWalk", func(t *testing.T) { testSweepFn(t, newStore) })
		t.Run("Empty", func(t *testing.T) { testSweepEmpty(t, newStore) })
	})
}

// sweepAt is the suite's now.
var sweepAt = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

// sweepRun returns a run of task taskID with status st, last updated at
// updated.
func sweepRun(tenant, id, taskID string, st tasks.RunStatus, updated time.Time) tasks.Run {
	r := sampleRun(tenant, id, taskID, updated.Add(-time.Minute))
	r.Slot, r.Status, r.CreatedAt, r.UpdatedAt = updated.Add(-time.Minute), st, updated.Add(-time.Minute), updated
	return r
}

// queuedIDs collects the runs QueuedRuns reports, as tenant/id, sorted and
// without repeats (a walk may report a run twice).
func queuedIDs(t *testing.T, s tasks.Store, before time.Time) []string {
	t.Helper()
	var got []string
	err := s.QueuedRuns(t.Context(), before, func(r tasks.Run) error {
		got = append(got, r.Tenant+"/"+r.ID)
		return nil
	})
	if err != nil {
		t.Fatalf("QueuedRuns: %v", err)
	}
	slices.Sort(got)
	return slices.Compact(got)
}

func oneShotIDs(t *testing.T, s tasks.Store, before time.Time) []string {
	t.Helper()
	var got []string
	err := s.ActiveOneShots(t.Context(), before, func(task tasks.Task) error {
		got = append(got, task.Tenant+"/"+task.ID)
		return nil
	})
	if err != nil {
		t.Fatalf("ActiveOneShots: %v", err)
	}
	slices.Sort(got)
	return slices.Compact(got)
}

func testSweepQueued(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	for _, tenant := range []string{"acme", "beta"} {
		mustCreateTask(t, s, sampleTask(tenant, "tsk_1"))
	}
	old, recent := sweepAt.Add(-10*time.Minute), sweepAt.Add(-10*time.Second)
	for i, r := range []tasks.Run{
		sweepRun("acme", "run_old", "tsk_1", tasks.RunQueued, old),        // yes
		sweepRun("beta", "run_old", "tsk_1", tasks.RunQueued, old),        // yes: another tenant, same id
		sweepRun("acme", "run_recent", "tsk_1", tasks.RunQueued, recent),  // updated after before
		sweepRun("acme", "run_running", "tsk_1", tasks.RunRunning, old),   // not queued
		sweepRun("acme", "run_retrying", "tsk_1", tasks.RunRetrying, old), // not queued
		sweepRun("beta", "run_done", "tsk_1", tasks.RunSucceeded, old),    // not queued
	} {
		r.Slot = r.Slot.Add(time.Duration(i) * time.Second) // one slot each
		mustCreateRun(t, s, r)
	}
	// A run whose slots say "queued" but whose status is not.
	tricky := sweepRun("acme", "run_tricky", "tsk_1", tasks.RunFailed, old)
	tricky.Slot = old.Add(time.Hour)
	tricky.Spec.Slots = map[string]any{"status": "queued"}
	mustCreateRun(t, s, tricky)

	if got, want := queuedIDs(t, s, sweepAt.Add(-time.Minute)), []string{"acme/run_old", "beta/run_old"}; !slices.Equal(got, want) {
		t.Errorf("QueuedRuns before a minute ago = %v, want %v", got, want)
	}
	if got, want := queuedIDs(t, s, sweepAt), []string{"acme/run_old", "acme/run_recent", "beta/run_old"}; !slices.Equal(got, want) {
		t.Errorf("QueuedRuns before now = %v, want %v", got, want)
	}
	// The run as reported is the run as stored.
	err := s.QueuedRuns(t.Context(), sweepAt, func(r tasks.Run) error {
		checkSame(t, "run "+r.ID, r, mustGetRun(t, s, r.Tenant, r.ID))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Started: no longer queued.
	r := mustGetRun(t, s, "acme", "run_old")
	r.Status = tasks.RunRunning
	if err := s.UpdateRun(t.Context(), r, tasks.RunQueued); err != nil {
		t.Fatal(err)
	}
	if got, want := queuedIDs(t, s, sweepAt.Add(-time.Minute)), []string{"beta/run_old"}; !slices.Equal(got, want) {
		t.Errorf("QueuedRuns after acme/run_old started = %v, want %v", got, want)
	}
}

func testSweepOneShots(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	oneShot := func(tenant, id string, st tasks.Status, at time.Time) tasks.Task {
		task := sampleTask(tenant, id)
		task.Status, task.Kind, task.Trigger, task.Then = st, tasks.KindOneShot, tasks.Trigger{At: at}, nil
		return task
	}
	past, future := sweepAt.Add(-time.Hour), sweepAt.Add(time.Hour)
	for _, task := range []tasks.Task{
		oneShot("acme", "tsk_past", tasks.StatusActive, past),       // yes
		oneShot("beta", "tsk_past", tasks.StatusActive, past),       // yes: another tenant
		oneShot("acme", "tsk_future", tasks.StatusActive, future),   // still to come
		oneShot("acme", "tsk_paused", tasks.StatusPaused, past),     // not active
		oneShot("acme", "tsk_archived", tasks.StatusArchived, past), // not active
		oneShot("acme", "tsk_draft", tasks.StatusDraft, past),       // not active
		sampleTask("acme", "tsk_cron"),                              // active, no At
	} {
		mustCreateTask(t, s, task)
	}
	long := oneShot("beta", "tsk_long", tasks.StatusActive, past)
	long.Kind = tasks.KindLongRunning
	mustCreateTask(t, s, long)

	want := []string{"acme/tsk_past", "beta/tsk_long", "beta/tsk_past"}
	if got := oneShotIDs(t, s, sweepAt); !slices.Equal(got, want) {
		t.Errorf("ActiveOneShots before now = %v, want %v", got, want)
	}
	if got := oneShotIDs(t, s, past); len(got) != 0 {
		t.Errorf("ActiveOneShots before their time = %v, want none (before is exclusive)", got)
	}
	err := s.ActiveOneShots(t.Context(), sweepAt, func(task tasks.Task) error {
		checkSame(t, "task "+task.ID, task, mustGetTask(t, s, task.Tenant, task.ID))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Archived: no longer reported.
	task := mustGetTask(t, s, "acme", "tsk_past")
	task.Status = tasks.StatusArchived
	if _, err := s.UpdateTask(t.Context(), task); err != nil {
		t.Fatal(err)
	}
	if got, want := oneShotIDs(t, s, sweepAt), []string{"beta/tsk_long", "beta/tsk_past"}; !slices.Equal(got, want) {
		t.Errorf("ActiveOneShots after archiving acme/tsk_past = %v, want %v", got, want)
	}
}

// testSweepFn: fn may write to the store during the walk (no deadlock, no
// lost write), and an error from fn stops the walk and comes back.
func testSweepFn(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	const tenants, runs = 3, 30
	for ten := range tenants {
		tenant := fmt.Sprintf("ten_%d", ten)
		mustCreateTask(t, s, sampleTask(tenant, "tsk_1"))
		for i := range runs {
			r := sweepRun(tenant, fmt.Sprintf("run_%02d", i), "tsk_1", tasks.RunQueued, sweepAt.Add(-time.Hour))
			r.Slot = r.Slot.Add(time.Duration(i) * time.Second)
			mustCreateRun(t, s, r)
		}
	}
	started := 0
	err := s.QueuedRuns(t.Context(), sweepAt, func(r tasks.Run) error {
		if r.Status != tasks.RunQueued {
			return nil
		}
		next := r
		next.Status, next.UpdatedAt = tasks.RunRunning, sweepAt
		if err := s.UpdateRun(t.Context(), next, tasks.RunQueued); err != nil {
			return err
		}
		started++
		return nil
	})
	if err != nil || started != tenants*runs {
		t.Fatalf("QueuedRuns that starts each run: %d started, %v; want %d", started, err, tenants*runs)
	}
	if got := queuedIDs(t, s, sweepAt.Add(time.Hour)); len(got) != 0 {
		t.Errorf("queued after the walk started them all: %v", got)
	}

	a := sweepRun("ten_0", "run_a", "tsk_1", tasks.RunQueued, sweepAt.Add(-time.Hour))
	a.Slot = a.Slot.Add(time.Hour)
	mustCreateRun(t, s, a)
	r := sweepRun("ten_1", "run_b", "tsk_1", tasks.RunQueued, sweepAt.Add(-time.Hour))
	r.Slot = r.Slot.Add(time.Hour)
	mustCreateRun(t, s, r)
	stop := errors.New("stop")
	calls := 0
	err = s.QueuedRuns(t.Context(), sweepAt, func(tasks.Run) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("QueuedRuns with an fn that fails: %d calls, %v; want 1 call and fn's error", calls, err)
	}
	task := sampleTask("ten_2", "tsk_once")
	task.Kind, task.Trigger, task.Then = tasks.KindOneShot, tasks.Trigger{At: sweepAt.Add(-time.Hour)}, nil
	mustCreateTask(t, s, task)
	if err := s.ActiveOneShots(t.Context(), sweepAt, func(tasks.Task) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("ActiveOneShots with an fn that fails: %v; want fn's error", err)
	}
}

func testSweepEmpty(t *testing.T, newStore newTasksFunc) {
	s := newStore(t)
	if got := queuedIDs(t, s, sweepAt); len(got) != 0 {
		t.Errorf("QueuedRuns of an empty store: %v", got)
	}
	if got := oneShotIDs(t, s, sweepAt); len(got) != 0 {
		t.Errorf("ActiveOneShots of an empty store: %v", got)
	}
}

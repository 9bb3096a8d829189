package bolt_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/storetest"
	"github.com/vigilhq/vigil/tasks"
)

func TestTasks(t *testing.T) {
	storetest.Tasks(t, func(t *testing.T) tasks.Store {
		return open(t, filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	})
}

// TestTasksReopen closes and reopens the file: tasks, runs, idempotency
// keys and the schedule index survive.
func TestTasksReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vigil.db")
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	task := tasks.Task{ID: "tsk_1", Tenant: "acme", Status: tasks.StatusActive, Version: 1, ThreadID: "th_1",
		Spec: tasks.Spec{Title: "t", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "0 8 * * *"}}, CreatedAt: at, UpdatedAt: at}
	run := tasks.Run{ID: "run_1", Tenant: "acme", TaskID: "tsk_1", Slot: at, Status: tasks.RunQueued, CreatedAt: at}
	e := tasks.ScheduleEntry{Tenant: "acme", TaskID: "tsk_1", Priority: tasks.PriorityNormal, Slot: at.Add(24 * time.Hour), Due: at.Add(24 * time.Hour)}
	if err := db.CreateTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if err := db.SetNext(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, path, bolt.Options{})
	if got, err := db.Task(ctx, "acme", "tsk_1"); err != nil || got.Title != "t" || got.Version != 1 {
		t.Errorf("task after reopen: %+v, %v", got, err)
	}
	if got, err := db.Run(ctx, "acme", "run_1"); err != nil || !got.Slot.Equal(at) {
		t.Errorf("run after reopen: %+v, %v", got, err)
	}
	dup := run
	dup.ID = "run_2"
	if err := db.CreateRun(ctx, dup); err == nil {
		t.Error("the idempotency key did not survive the reopen: a second run for the slot was created")
	}
	due, err := db.Due(ctx, at.Add(48*time.Hour), 10)
	if err != nil || len(due) != 1 || due[0].TaskID != "tsk_1" || !due[0].Slot.Equal(e.Slot) {
		t.Errorf("Due after reopen: %+v, %v", due, err)
	}
}

// TestTasksClosed checks that a closed store answers unavailable rather
// than panicking.
func TestTasksClosed(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := db.Task(t.Context(), "acme", "tsk_1"); err == nil {
		t.Error("Task on a closed store succeeded")
	}
	if err := db.CreateTask(t.Context(), tasks.Task{ID: "tsk_1", Tenant: "acme"}); err == nil {
		t.Error("CreateTask on a closed store succeeded")
	}
}

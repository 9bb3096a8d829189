package bolt_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/storetest"
	"github.com/vigilhq/vigil/tasks"
)

func TestQueue(t *testing.T) {
	storetest.Queue(t, func(t *testing.T, opts storetest.QueueOptions) tasks.Queue {
		db := open(t, filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
		return bolt.NewQueue(db, bolt.QueueOptions{Now: opts.Now})
	})
}

// TestQueueReopen closes and reopens the file: ready, delayed and leased
// items survive, leases with their tokens; Recover then frees the leases
// the dead process held.
func TestQueueReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vigil.db")
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q := bolt.NewQueue(db, bolt.QueueOptions{Now: clock})
	for _, it := range []tasks.QueueItem{
		{Tenant: "acme", RunID: "run_leased", Priority: tasks.PriorityHigh},
		{Tenant: "acme", RunID: "run_ready", Priority: tasks.PriorityNormal},
	} {
		if err := q.Enqueue(ctx, it, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Enqueue(ctx, tasks.QueueItem{Tenant: "acme", RunID: "run_delayed", Priority: tasks.PriorityLow}, time.Hour); err != nil {
		t.Fatal(err)
	}
	held, err := q.Claim(ctx, "w1", 1, time.Minute, 0)
	if err != nil || len(held) != 1 || held[0].RunID != "run_leased" {
		t.Fatalf("Claim: %+v, %v", held, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, path, bolt.Options{})
	q = bolt.NewQueue(db, bolt.QueueOptions{Now: clock})
	st, err := q.Stats(ctx)
	if err != nil || st.Ready[tasks.PriorityNormal] != 1 || st.Delayed != 1 || st.Leased != 1 {
		t.Fatalf("stats after reopen: %+v, %v", st, err)
	}
	if _, err := q.Extend(ctx, held[0], time.Minute); err != nil {
		t.Errorf("the lease did not survive the reopen: Extend: %v", err)
	}
	n, err := q.Recover(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Recover: %d, %v; want 1", n, err)
	}
	cs, err := q.Claim(ctx, "w2", 10, time.Minute, 0)
	if err != nil || len(cs) != 2 || cs[0].RunID != "run_leased" || cs[1].RunID != "run_ready" {
		t.Errorf("claim after Recover: %+v, %v; want run_leased (high) then run_ready", cs, err)
	}
	if err := q.Ack(ctx, held[0]); err == nil {
		t.Error("the dead process's claim still acks after Recover")
	}
}

// TestQueueDelayWakes checks that a waiting Claim wakes by itself when a
// delay runs out on the real clock, without an Enqueue.
func TestQueueDelayWakes(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	q := bolt.NewQueue(db, bolt.QueueOptions{})
	if err := q.Enqueue(t.Context(), tasks.QueueItem{Tenant: "acme", RunID: "run_1", Priority: tasks.PriorityNormal}, 150*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cs, err := q.Claim(t.Context(), "w", 1, time.Minute, 10*time.Second)
	if err != nil || len(cs) != 1 {
		t.Fatalf("Claim: %+v, %v", cs, err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 3*time.Second {
		t.Errorf("Claim returned after %s; want about 150ms", d)
	}
}

// TestQueueClosed checks that a Claim waiting on a DB that closes returns.
func TestQueueClosed(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q := bolt.NewQueue(db, bolt.QueueOptions{})
	done := make(chan error, 1)
	go func() {
		_, err := q.Claim(t.Context(), "w", 1, time.Minute, 30*time.Second)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	db.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Claim on a closed DB returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Claim kept waiting after Close")
	}
}

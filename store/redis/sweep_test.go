package redis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/store/storetest"
	"github.com/vigilhq/vigil/tasks"
)

func TestSweeps(t *testing.T) {
	storetest.Sweeps(t, func(t *testing.T) tasks.Store {
		return open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 4})
	})
}

// TestSweepScan walks more keys than one SCAN step returns, beside another
// deployment's keys (another prefix) and a corrupt run: every queued run of
// this prefix is reported, none of the other's, and the corrupt one is
// skipped and named in the error.
func TestSweepScan(t *testing.T) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	l := open(t, prefix, redis.Options{MaxFollowers: 4})
	// A prefix that starts with this one: its keys must not match.
	other := open(t, prefix+"x", redis.Options{MaxFollowers: 4})
	t.Cleanup(func() {
		if err := redis.DeletePrefix(context.Background(), client(t), prefix+"x"); err != nil {
			t.Error(err)
		}
	})
	const n = 2500 // runs; SCAN steps by 1000
	for _, s := range []*redis.Log{l, other} {
		if err := s.CreateTask(ctx, newTask("acme", "tsk_1")); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		r := newRun("acme", fmt.Sprintf("run_%04d", i), "tsk_1", taskAt.Add(time.Duration(i)*time.Second))
		if i%2 == 1 {
			r.Status = tasks.RunSucceeded
		}
		if err := l.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.CreateRun(ctx, newRun("acme", "run_other", "tsk_1", taskAt)); err != nil {
		t.Fatal(err)
	}
	bad := prefix + ":t:acme:tasks:{acme}:run:run_bad"
	if err := client(t).HSet(ctx, bad, "status", "queued", "created", "x", "json", "{").Err(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	err := l.QueuedRuns(ctx, taskAt.Add(24*time.Hour), func(r tasks.Run) error {
		if r.Status != tasks.RunQueued || r.Tenant != "acme" {
			t.Errorf("reported run %s: %s of %s", r.ID, r.Status, r.Tenant)
		}
		seen[r.ID] = true
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "run_bad") {
		t.Errorf("QueuedRuns over a corrupt run: %v; want an error naming it", err)
	}
	if len(seen) != n/2 || seen["run_other"] {
		t.Errorf("QueuedRuns reported %d runs (run_other: %v); want %d, not the other prefix's", len(seen), seen["run_other"], n/2)
	}
}

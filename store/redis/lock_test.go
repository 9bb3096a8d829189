package redis_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/tasks"
)

// TestLockTenant: a tenant's lock has one holder at a time, across
// instances; another tenant's is free; a released lock is taken at once.
func TestLockTenant(t *testing.T) {
	prefix := redistest.Prefix(t)
	a, b := open(t, prefix, redis.Options{}), open(t, prefix, redis.Options{})
	ctx := context.Background()
	unlock, err := a.LockTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := b.LockTenant(short, "acme"); err == nil {
		t.Fatal("a second instance took acme's lock while it was held")
	}
	other, err := b.LockTenant(ctx, "globex")
	if err != nil {
		t.Fatalf("globex's lock: %v", err)
	}
	other()
	unlock()
	again, err := b.LockTenant(ctx, "acme")
	if err != nil {
		t.Fatalf("acme's lock after its release: %v", err)
	}
	unlock() // the old holder's release must not free the new holder's lock
	short2, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if _, err := a.LockTenant(short2, "acme"); err == nil {
		t.Error("a stale release freed the new holder's lock")
	}
	again()
}

// TestMaxActiveTasksAcrossInstances: two instances (Managers on two
// clients of one Redis) confirm 12 tasks of a tenant at once under a limit
// of 3, with LockTenant: exactly 3 become active.
func TestMaxActiveTasksAcrossInstances(t *testing.T) {
	prefix := redistest.Prefix(t)
	logs := []*redis.Log{open(t, prefix, redis.Options{}), open(t, prefix, redis.Options{})}
	var ms []*tasks.Manager
	for _, l := range logs {
		ms = append(ms, tasks.NewManager(tasks.Options{Store: l, Log: l,
			MaxActiveTasks: func(string) int { return 3 }, LockTenant: l.LockTenant}))
	}
	ctx := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: "ana", Roles: []string{"admin"}})
	const n = 12
	ids := make([]string, n)
	for i := range n {
		task, err := ms[0].Create(ctx, tasks.Spec{Title: "t", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "0 8 * * *"}})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = task.ID
	}
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			_, err := ms[i%2].Confirm(ctx, id)
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
}

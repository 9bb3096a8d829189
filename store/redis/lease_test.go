package redis_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/tasks"
)

// leaseTTL is short, so that expiry is tested in real time.
const leaseTTL = 200 * time.Millisecond

// twoLeases returns the lease called name as two processes (two Logs with
// their own clients) on one prefix see it.
func twoLeases(t *testing.T, name string) (a, b *redis.Lease) {
	prefix := redistest.Prefix(t)
	return redis.NewLease(open(t, prefix, redis.Options{MaxFollowers: 4}), name),
		redis.NewLease(open(t, prefix, redis.Options{MaxFollowers: 4}), name)
}

func wantHeld(t *testing.T, what string, held bool, err error, want bool) {
	t.Helper()
	if err != nil || held != want {
		t.Errorf("%s: %v, %v; want %v", what, held, err, want)
	}
}

// TestLease plays two schedulers in two processes taking turns.
func TestLease(t *testing.T) {
	ctx := t.Context()
	a, b := twoLeases(t, "scheduler")
	var _ tasks.Lease = a

	held, err := a.Acquire(ctx, "sched_a", leaseTTL)
	wantHeld(t, "a acquires the free lease", held, err, true)
	held, err = b.Acquire(ctx, "sched_b", leaseTTL)
	wantHeld(t, "b acquires a's lease", held, err, false)
	held, err = a.Acquire(ctx, "sched_a", leaseTTL)
	wantHeld(t, "a acquires its own lease again", held, err, true)
	held, err = b.Renew(ctx, "sched_b", leaseTTL)
	wantHeld(t, "b renews a's lease", held, err, false)
	if err := b.Release(ctx, "sched_b"); err != nil {
		t.Fatal(err)
	}
	held, err = a.Renew(ctx, "sched_a", leaseTTL)
	wantHeld(t, "a renews after b's release of a lease b does not hold", held, err, true)

	if err := a.Release(ctx, "sched_a"); err != nil {
		t.Fatal(err)
	}
	held, err = b.Acquire(ctx, "sched_b", leaseTTL)
	wantHeld(t, "b acquires the lease a released", held, err, true)
	held, err = a.Renew(ctx, "sched_a", leaseTTL)
	wantHeld(t, "a renews the lease it released", held, err, false)

	other, _ := twoLeases(t, "other")
	held, err = other.Acquire(ctx, "sched_a", leaseTTL)
	wantHeld(t, "a acquires a lease of another name", held, err, true)
}

// TestLeaseExpires checks in real time that a lease its holder stops
// renewing passes to another process after its ttl, and that the old
// holder then neither renews nor frees it.
func TestLeaseExpires(t *testing.T) {
	ctx := t.Context()
	a, b := twoLeases(t, "scheduler")
	held, err := a.Acquire(ctx, "sched_a", leaseTTL)
	wantHeld(t, "a acquires", held, err, true)
	// Renewing keeps it past its first ttl.
	for range 3 {
		time.Sleep(leaseTTL / 2)
		held, err = a.Renew(ctx, "sched_a", leaseTTL)
		wantHeld(t, "a renews in time", held, err, true)
	}
	held, err = b.Acquire(ctx, "sched_b", leaseTTL)
	wantHeld(t, "b acquires a renewed lease", held, err, false)

	time.Sleep(leaseTTL + 50*time.Millisecond) // a "dies"
	held, err = b.Acquire(ctx, "sched_b", leaseTTL)
	wantHeld(t, "b acquires the expired lease", held, err, true)
	held, err = a.Renew(ctx, "sched_a", leaseTTL)
	wantHeld(t, "a renews after b took it", held, err, false)
	if err := a.Release(ctx, "sched_a"); err != nil {
		t.Fatal(err)
	}
	held, err = b.Renew(ctx, "sched_b", leaseTTL)
	wantHeld(t, "b renews after a's stale release", held, err, true)

	time.Sleep(leaseTTL + 50*time.Millisecond)
	held, err = b.Renew(ctx, "sched_b", leaseTTL)
	wantHeld(t, "b renews its expired lease nobody took", held, err, false)
}

// TestLeaseRace has holders in two processes race for a free lease:
// exactly one wins.
func TestLeaseRace(t *testing.T) {
	ctx := t.Context()
	a, b := twoLeases(t, "scheduler")
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() {
			held, err := l.Acquire(ctx, "sched_"+string(rune('a'+i)), time.Minute)
			if err != nil {
				t.Error(err)
			}
			if held {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d holders acquired one lease", won.Load())
	}
}

// TestLeaseInvalid checks the argument checks.
func TestLeaseInvalid(t *testing.T) {
	ctx := t.Context()
	a, _ := twoLeases(t, "scheduler")
	_, err := a.Acquire(ctx, "", leaseTTL)
	wantCode(t, err, vigil.Invalid)
	_, err = a.Acquire(ctx, "sched_a", 0)
	wantCode(t, err, vigil.Invalid)
	_, err = a.Renew(ctx, "sched_a", -time.Second)
	wantCode(t, err, vigil.Invalid)
	wantCode(t, a.Release(ctx, ""), vigil.Invalid)
}

package redis_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/tasks"
)

// twoLimiters returns the limiter called "workers" as two processes (two
// Logs with their own clients) on one prefix see it.
func twoLimiters(t *testing.T, perSecond float64, burst int) (a, b *redis.RateLimiter) {
	prefix := redistest.Prefix(t)
	return redis.NewRateLimiter(open(t, prefix, redis.Options{}), "", perSecond, burst),
		redis.NewRateLimiter(open(t, prefix, redis.Options{}), "", perSecond, burst)
}

// TestRateLimiterShared: two processes waiting on one limiter of 20 starts
// a second share it: 8 starts take at least 7 intervals of 50ms, which
// two limiters of their own would take half of.
func TestRateLimiterShared(t *testing.T) {
	a, b := twoLimiters(t, 20, 1)
	var _ tasks.Limiter = a
	start := time.Now()
	var wg sync.WaitGroup
	for _, l := range []*redis.RateLimiter{a, b} {
		for range 4 {
			wg.Go(func() {
				if err := l.Wait(t.Context()); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	// 7 intervals; a few ms less for the round trips that the reserving
	// scripts' clock (Redis's) does not see.
	if d := time.Since(start); d < 340*time.Millisecond {
		t.Errorf("8 starts at 20 a second, shared by two processes, took %s; want at least 350ms", d)
	}
}

// TestRateLimiterBurst: after a quiet spell, burst starts go at once and
// the next one waits its interval.
func TestRateLimiterBurst(t *testing.T) {
	a, b := twoLimiters(t, 1, 3)
	for i, l := range []*redis.RateLimiter{a, b, a} {
		ctx, cancel := context.WithTimeout(t.Context(), 900*time.Millisecond)
		err := l.Wait(ctx)
		cancel()
		if err != nil {
			t.Fatalf("start %d of a burst of 3: %v", i+1, err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := b.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a fourth start at once: %v; want it to wait about a second", err)
	}
}

// TestRateLimiterGivesBack: a Wait whose context ends gives its start
// back, so the next caller starts when it would have.
func TestRateLimiterGivesBack(t *testing.T) {
	a, b := twoLimiters(t, 2, 1) // a start every 500ms
	if err := a.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := a.Wait(gone); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a wait cut short: %v", err)
	}
	// Its start (500ms after the first) went back: b's is that one, not
	// the one after (1s).
	ctx, cancel2 := context.WithTimeout(t.Context(), 750*time.Millisecond)
	defer cancel2()
	if err := b.Wait(ctx); err != nil {
		t.Errorf("the start given back was not taken: %v", err)
	}
}

// TestRateLimiterGivesBackOnlyTheLast: starts given back while later ones
// are reserved are lost rather than handed out again, so that the starts
// never come closer together than the rate. Two processes queue five
// waits each, interleaved; one gives its five back, and the other queues
// five more: no 500ms window may hold more than 6 starts at 10 a second.
func TestRateLimiterGivesBackOnlyTheLast(t *testing.T) {
	a, b := twoLimiters(t, 10, 1)
	begin := time.Now()
	var mu sync.Mutex
	var starts []time.Duration
	var wg sync.WaitGroup
	wait := func(ctx context.Context, l *redis.RateLimiter) {
		if l.Wait(ctx) == nil {
			mu.Lock()
			starts = append(starts, time.Since(begin))
			mu.Unlock()
		}
	}
	gone, cancel := context.WithCancel(t.Context())
	for range 5 {
		wg.Go(func() { wait(gone, a) })
		wg.Go(func() { wait(t.Context(), b) })
		time.Sleep(5 * time.Millisecond) // interleave the reservations
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	time.Sleep(50 * time.Millisecond) // the give-backs are done
	for range 5 {
		wg.Go(func() { wait(t.Context(), b) })
	}
	wg.Wait()
	slices.Sort(starts)
	for i := range starts {
		n := 0
		for _, s := range starts[i:] {
			if s-starts[i] < 500*time.Millisecond {
				n++
			}
		}
		if n > 6 {
			t.Fatalf("%d starts within 500ms of %s at 10 a second; want at most 6: %v", n, starts[i], starts)
		}
	}
}

// TestRateLimiterCrashedProcess: a process that dies while ten of its
// runs wait for their starts cannot give them back, but it held at most
// burst of them reserved: another process's start comes within a few
// intervals, not after the ten.
func TestRateLimiterCrashedProcess(t *testing.T) {
	prefix := redistest.Prefix(t)
	dying, err := redis.Open(t.Context(), redistest.URL(t), redis.Options{Prefix: prefix}) // closed below
	if err != nil {
		t.Fatal(err)
	}
	a := redis.NewRateLimiter(dying, "", 10, 1)
	b := redis.NewRateLimiter(open(t, prefix, redis.Options{}), "", 10, 1)
	ctx, kill := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { _ = a.Wait(ctx) })
	}
	time.Sleep(50 * time.Millisecond)
	if err := dying.Close(); err != nil { // no start can go back now
		t.Fatal(err)
	}
	kill()
	wg.Wait()
	// a started one and held one more (at 100ms); b's is at 200ms.
	start := time.Now()
	wait, cancel := context.WithTimeout(t.Context(), 600*time.Millisecond)
	defer cancel()
	if err := b.Wait(wait); err != nil {
		t.Errorf("after a process died with ten runs waiting at 10 a second: %v after %s; want a start within about 200ms", err, time.Since(start))
	}
}

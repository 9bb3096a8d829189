package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/store"
	"github.com/vigilhq/vigil/store/redis/redistest"
)

// TestSharedLimiter: on Redis, workers.rate is one limiter for every
// process on the prefix: two processes' limiters at 10 a second (a burst
// of 10) give 14 starts in no less than 4 intervals, where limiters of
// their own would give each 7 at once. On bolt there is none to share.
func TestSharedLimiter(t *testing.T) {
	c := config.Default().Store
	c.DataDir = t.TempDir()
	if l := openExecution(t, c).SharedLimiter(20); l != nil {
		t.Errorf("bolt: a shared limiter %T", l)
	}

	c = config.Default().Store
	c.Driver, c.Redis.URL, c.Redis.Prefix = config.DriverRedis, redistest.URL(t), redistest.Prefix(t)
	var starts []func(context.Context) error
	for range 2 {
		x := openExecution(t, c)
		if x.SharedLimiter(0) != nil {
			t.Error("a limiter for workers.rate 0")
		}
		starts = append(starts, x.SharedLimiter(10).Wait)
	}
	ctx := t.Context()
	begin := time.Now()
	for range 7 {
		for _, wait := range starts {
			if err := wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d := time.Since(begin); d < 390*time.Millisecond {
		t.Errorf("14 starts from two processes at 10 a second took %s; want at least 400ms", d)
	}
}

// openExecution opens the backend c configures, as a process would, and
// its execution side; the backend is closed when t ends.
func openExecution(t *testing.T, c config.Store) store.Execution {
	t.Helper()
	b, err := store.Open(t.Context(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	x, err := store.OpenExecution(t.Context(), b, true)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

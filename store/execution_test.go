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
	ctx := t.Context()
	c := config.Default().Store
	c.DataDir = t.TempDir()
	b, err := store.Open(ctx, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	x, err := store.OpenExecution(ctx, b, true)
	if err != nil {
		t.Fatal(err)
	}
	if l := x.SharedLimiter(20); l != nil {
		t.Errorf("bolt: a shared limiter %T", l)
	}

	c = config.Default().Store
	c.Driver, c.Redis.URL, c.Redis.Prefix = config.DriverRedis, redistest.URL(t), redistest.Prefix(t)
	var starts []func(context.Context) error
	for range 2 {
		b, err := store.Open(ctx, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		x, err := store.OpenExecution(ctx, b, true)
		if err != nil {
			t.Fatal(err)
		}
		if x.SharedLimiter(0) != nil {
			t.Error("a limiter for workers.rate 0")
		}
		starts = append(starts, x.SharedLimiter(10).Wait)
	}
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

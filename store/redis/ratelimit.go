package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil/tasks"
)

var _ tasks.Limiter = (*RateLimiter)(nil)

// RateLimiter is a tasks.Limiter shared by every process on a Log's
// prefix: workers.rate for the whole deployment in Redis mode, however
// many `vigil worker` processes share the queue. It is one key,
//
//	<prefix>:ratelimit:<name>   string: the next free start, Unix µs on the Redis server's clock
//
// paced as a generic cell rate algorithm: one start every 1/rate seconds,
// up to burst at once after a quiet spell. A Wait reserves the next start
// in one script and sleeps until it; a Wait whose context ends first gives
// its start back when no start was reserved after it (else it is lost,
// which keeps the rate under the cap). A process reserves at most burst
// starts at a time, its other callers waiting their turn in memory, so
// that a process killed while its runs wait holds at most burst starts
// it will not use: the others wait at most burst/rate seconds for them.
// Times are the server's (TIME), which every process shares, as a
// Lease's are. The key expires a second after the next free start.
//
// A RateLimiter is safe for concurrent use.
type RateLimiter struct {
	l        *Log
	key      string
	interval int64 // µs between starts
	burst    int
	pending  chan struct{} // a slot per start this process holds reserved
}

// NewRateLimiter returns the limiter called name (default "workers") under
// l's prefix: perSecond starts per second, burst of them at once (at
// least 1; zero means max(1, perSecond)). perSecond must be positive.
func NewRateLimiter(l *Log, name string, perSecond float64, burst int) *RateLimiter {
	if name == "" {
		name = "workers"
	}
	if burst <= 0 {
		burst = max(1, int(perSecond))
	}
	return &RateLimiter{
		l: l, key: l.prefix + ":ratelimit:" + name,
		interval: max(1, int64(float64(time.Second/time.Microsecond)/perSecond)), burst: burst,
		pending: make(chan struct{}, burst),
	}
}

// rateReserveScript reserves the next start. KEYS[1] the limiter; ARGV[1]
// µs between starts, ARGV[2] the burst. Returns {µs to wait until it (0:
// start now), the next free start it stored}. Numbers are kept as
// integers in decimal: Lua's tostring would round µs since 1970 to 14
// digits.
var rateReserveScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local step = tonumber(ARGV[1])
local next = tonumber(redis.call('GET', KEYS[1])) or now
if next < now then next = now end
local start = next - step * (tonumber(ARGV[2]) - 1)
if start < now then start = now end
next = string.format('%.0f', next + step)
redis.call('SET', KEYS[1], next, 'PX', math.ceil((tonumber(next) - now) / 1000) + 1000)
return {start - now, next}
`)

// rateReturnScript gives a reserved start back, if it was the last one
// reserved: the next free start moves one step earlier, not before now.
// A start reserved after it has its time fixed already, so moving the
// next free start back would hand a caller a time that one holds, and
// run starts closer together than the rate: then nothing is given back,
// as golang.org/x/time/rate's Reservation.Cancel does. KEYS[1] the
// limiter; ARGV[1] µs between starts, ARGV[2] the next free start the
// reservation stored. Returns 1 if it gave the start back.
var rateReturnScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local next = tonumber(ARGV[2]) - tonumber(ARGV[1])
if next <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.0f', next), 'PX', math.ceil((next - now) / 1000) + 1000)
end
return 1
`)

// Wait implements tasks.Limiter: once fewer than burst of the process's
// calls hold a start, it reserves the next start and sleeps until it, or
// gives it back and returns ctx's error if ctx ends first. A Redis failure
// is returned as it is.
func (r *RateLimiter) Wait(ctx context.Context) error {
	select {
	case r.pending <- struct{}{}:
		defer func() { <-r.pending }()
	case <-ctx.Done():
		return ctx.Err()
	}
	res, err := r.l.runScript(ctx, rateReserveScript, []string{r.key}, r.interval, r.burst).Slice()
	if err != nil {
		return fmt.Errorf("store/redis: rate limiter: %w", err)
	}
	var wait int64
	var next string
	ok := len(res) == 2
	if ok {
		wait, ok = res[0].(int64)
	}
	if ok {
		next, ok = res[1].(string)
	}
	if !ok {
		return fmt.Errorf("store/redis: rate limiter: unexpected script reply %v", res)
	}
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(wait) * time.Microsecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		// Not ctx: it has ended, and the start must still go back.
		back, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = r.l.runScript(back, rateReturnScript, []string{r.key}, r.interval, next).Err()
		return ctx.Err()
	}
}

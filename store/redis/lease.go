package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
)

var _ tasks.Lease = (*Lease)(nil)

// Lease is a tasks.Lease kept in Redis, shared by every process on a
// Log's prefix: the scheduler's leadership in Redis mode. It is one key,
//
//	<prefix>:lease:<name>   string: the holder, with a time to live
//
// that exists while someone holds the lease. Redis expires it when its
// holder stops renewing it, so another process takes over a ttl after the
// holder dies. Each call is one command or script, atomic on its own: a
// holder is compared before its key is extended or deleted, so a holder
// whose lease expired and was taken never extends or frees the new
// holder's.
//
// The ttl is real time on the Redis server's clock (PX and PEXPIRE), not
// a clock of the caller's: a lease must expire for every process at once,
// whatever their clocks say. Tests use short ttls rather than a fake
// clock. A holder should renew well within its ttl (the scheduler renews
// every tick, with a ttl of several ticks), since its own pauses and the
// round trip count against it.
//
// A Lease is safe for concurrent use.
type Lease struct {
	l   *Log
	key string
}

// NewLease returns the lease called name (default "scheduler") under l's
// prefix. It creates nothing in Redis until it is acquired.
func NewLease(l *Log, name string) *Lease {
	if name == "" {
		name = "scheduler"
	}
	return &Lease{l: l, key: l.prefix + ":lease:" + name}
}

// leaseAcquireScript takes the lease if it is free, or extends it if the
// holder holds it. KEYS[1] the lease; ARGV[1] holder, ARGV[2] ttl (ms).
// Returns 1 if the holder holds it now, else 0.
var leaseAcquireScript = goredis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// leaseRenewScript extends the lease if the holder holds it. KEYS[1] the
// lease; ARGV[1] holder, ARGV[2] ttl (ms). Returns 1 if extended, else 0.
var leaseRenewScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// leaseReleaseScript deletes the lease if the holder holds it. KEYS[1]
// the lease; ARGV[1] holder. Returns 1 if deleted, else 0.
var leaseReleaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

// leaseArgs checks a holder and ttl and returns the ttl in milliseconds,
// rounded up.
func leaseArgs(holder string, ttl time.Duration) (int64, error) {
	if holder == "" {
		return 0, vigil.FieldError("holder", "must not be empty")
	}
	if ttl <= 0 {
		return 0, vigil.FieldError("ttl", "must be positive, got %s", ttl)
	}
	return int64((ttl + time.Millisecond - 1) / time.Millisecond), nil
}

// Acquire implements tasks.Lease: SET NX PX, or PEXPIRE if holder holds
// the lease already, in one script.
func (s *Lease) Acquire(ctx context.Context, holder string, ttl time.Duration) (bool, error) {
	return s.run(ctx, "acquire", leaseAcquireScript, holder, ttl)
}

// Renew implements tasks.Lease: PEXPIRE if holder holds the lease, in one
// script. An expired lease is not renewed, even if nobody took it.
func (s *Lease) Renew(ctx context.Context, holder string, ttl time.Duration) (bool, error) {
	return s.run(ctx, "renew", leaseRenewScript, holder, ttl)
}

// Release implements tasks.Lease: DEL if holder holds the lease, in one
// script.
func (s *Lease) Release(ctx context.Context, holder string) error {
	what := "release lease " + s.key
	if holder == "" {
		return tasksFail(what, vigil.FieldError("holder", "must not be empty"))
	}
	if err := leaseReleaseScript.Run(ctx, s.l.client, []string{s.key}, holder).Err(); err != nil {
		return wrap(what, err)
	}
	return nil
}

func (s *Lease) run(ctx context.Context, op string, script *goredis.Script, holder string, ttl time.Duration) (bool, error) {
	what := op + " lease " + s.key
	ms, err := leaseArgs(holder, ttl)
	if err != nil {
		return false, tasksFail(what, err)
	}
	held, err := script.Run(ctx, s.l.client, []string{s.key}, holder, ms).Int()
	if err != nil {
		return false, wrap(what, err)
	}
	return held == 1, nil
}

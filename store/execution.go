package store

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/tasks"
)

// Execution is the execution side of a backend: the queue of runs waiting
// for a worker, and the lease that lets one scheduler dispatch at a time.
type Execution struct {
	Queue tasks.Queue
	Lease tasks.Lease
	// Recovered counts the runs whose leases OpenExecution freed: runs a
	// stopped process held, which resume on this one.
	Recovered int

	redis *redis.Log // the backend, when it is shared by processes
}

// SharedLimiter returns a limiter of perSecond attempts a second shared by
// every worker process on the backend: on Redis, one under the prefix (see
// redis.RateLimiter). It returns nil on bolt, whose file is one process's,
// where WorkerOptions.Rate paces the workers in memory to the same effect.
func (x Execution) SharedLimiter(perSecond float64) tasks.Limiter {
	if x.redis == nil || perSecond <= 0 {
		return nil
	}
	return redis.NewRateLimiter(x.redis, "workers", perSecond, 0)
}

// OpenExecution returns b's run queue and scheduler lease. On Redis they
// are shared by every process on the same prefix: the queue on Redis
// Streams consumer groups, the lease a key that expires when its holder
// dies. On bolt the file is one process's: the lease is in memory, and
// when this process runs the workers (workers), leases left in the file
// are a dead process's and are freed at once rather than after they
// expire.
func OpenExecution(ctx context.Context, b Backend, workers bool) (Execution, error) {
	switch b := b.(type) {
	case *redis.Log:
		return Execution{Queue: redis.NewQueue(b, redis.QueueOptions{}), Lease: redis.NewLease(b, "scheduler"), redis: b}, nil
	case *bolt.DB:
		q := bolt.NewQueue(b, bolt.QueueOptions{})
		x := Execution{Queue: q, Lease: tasks.NewLocalLease(time.Now)}
		if workers {
			n, err := q.Recover(ctx)
			if err != nil {
				return Execution{}, fmt.Errorf("store: recover the run queue: %w", err)
			}
			x.Recovered = n
		}
		return x, nil
	default:
		return Execution{}, fmt.Errorf("store: no run queue for %T", b)
	}
}

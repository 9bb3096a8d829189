package tasks

import (
	"context"
	"time"
)

// Queue holds the runs waiting for a worker, by priority, and leases them
// to workers. store/bolt implements it in the embedded file (bolt.Queue);
// store/redis on Streams consumer groups (redis.Queue). store/storetest.Queue is its
// conformance suite, and its subtests name the clauses below.
//
// # Items
//
// An item names one run (tenant and run id) and carries its priority. The
// queue holds at most one item per run: Enqueue of a run the queue holds
// already, in any state, changes nothing. An item is in one of three
// states:
//
//   - ready: Claim may lease it;
//   - delayed: ready once its delay has passed (Enqueue or Release with a
//     delay: retry backoff);
//   - leased: held by one worker until its lease expires; Reclaim may then
//     lease it to another worker.
//
// Ack removes an item; nothing else does. The queue does not know run
// statuses: a worker reads the run when it claims an item and acks items
// whose runs are gone or finished. So an item for a run that cannot run
// any more is harmless, and enqueueing again after a crash (the scheduler
// does, for a run it finds queued) is safe.
//
// # Leases
//
// Claim and Reclaim lease an item to a worker for a duration and return a
// Claim with a fresh Token. Extend, Ack and Release take that Claim and
// succeed only while the lease is still the caller's: the item exists and
// its token is the claim's. A lease whose time ran out stays the holder's
// until another worker reclaims it, so Extend after a pause (a long GC, a
// slow disk) succeeds if nobody took the item meanwhile. When the lease is
// lost they answer vigil.Conflict and change nothing: the caller stops
// working on the run without writing it.
//
// Deliveries counts the leases an item has had since it was last enqueued
// or released: 1 after Claim, one more with each Reclaim. A worker that
// sees a high count knows the run crashed its workers again and again
// (Redis Streams keeps the same counter per pending message).
//
// # Time
//
// Delays and leases are measured on the implementation's clock (an
// Options.Now of the backend, so that tests set it). The wait of Claim is
// real time.
//
// # Concurrency
//
// Implementations are safe for concurrent use by many goroutines and, in
// Redis mode, many processes: of several concurrent Claims and Reclaims,
// each item goes to exactly one. Claim waits for work without polling: an
// Enqueue or Release anywhere wakes a waiting Claim, and a delayed item
// wakes it when its delay runs out. Errors carry vigil codes where the
// contract names one; others are backend failures.
type Queue interface {
	// Enqueue adds item, ready after delay (zero or negative: now).
	// item.Tenant and item.RunID must be valid ids and item.Priority one
	// of Priorities, else vigil.Invalid. If the queue holds an item for
	// the run already (ready, delayed or leased), Enqueue changes nothing.
	Enqueue(ctx context.Context, item QueueItem, delay time.Duration) error

	// Claim leases up to n ready items (1 to MaxClaim, else vigil.Invalid)
	// to worker for lease: every ready high-priority item before any
	// normal one, normal before low, and within a priority in the order
	// they became ready. When none is ready it waits up to wait for one
	// and returns none when wait has passed, or ctx.Err() when ctx ends
	// first. Expired leases are not claimed: Reclaim takes them.
	Claim(ctx context.Context, worker string, n int, lease, wait time.Duration) ([]Claim, error)

	// Reclaim leases to worker up to n items (1 to MaxClaim) whose lease
	// has expired, the longest expired first, each with a new token and
	// Deliveries one more. It does not wait. (Redis: XCLAIM of the entries
	// whose lease ran out on the queue's clock.)
	Reclaim(ctx context.Context, worker string, n int, lease time.Duration) ([]Claim, error)

	// Extend renews c's lease to lease from now and returns the claim with
	// its new Until. A lost lease is vigil.Conflict.
	Extend(ctx context.Context, c Claim, lease time.Duration) (Claim, error)

	// Ack removes c's item from the queue: its run is finished, or gone.
	// A lost lease is vigil.Conflict.
	Ack(ctx context.Context, c Claim) error

	// Release ends c's lease and makes the item ready again after delay
	// (zero or negative: now), with Deliveries back to zero: a run given
	// back by a worker that stops, or waiting for its next attempt. A lost
	// lease is vigil.Conflict.
	Release(ctx context.Context, c Claim, delay time.Duration) error

	// Stats counts the items by state, for metrics and tests.
	Stats(ctx context.Context) (QueueStats, error)
}

// MaxClaim is the most items one Claim or Reclaim leases.
const MaxClaim = 1000

// QueueItem names a run waiting for a worker.
type QueueItem struct {
	Tenant string `json:"tenant"`
	RunID  string `json:"run_id"`
	// Priority orders items: see Queue.Claim.
	Priority Priority `json:"priority"`
}

// Claim is an item leased to a worker.
type Claim struct {
	QueueItem
	// Worker holds the lease until Until (on the queue's clock).
	Worker string    `json:"worker"`
	Until  time.Time `json:"until"`
	// Token identifies this lease; Extend, Ack and Release compare it.
	Token string `json:"token"`
	// Deliveries counts the leases since the item was last enqueued or
	// released, this one included.
	Deliveries int `json:"deliveries"`
}

// QueueStats counts a queue's items.
type QueueStats struct {
	// Ready counts the items ready now, by priority.
	Ready map[Priority]int `json:"ready"`
	// Delayed counts the items waiting for their delay to pass.
	Delayed int `json:"delayed"`
	// Leased counts the items held by workers, expired leases included.
	Leased int `json:"leased"`
}

// itemOf returns the queue item of run r, at the priority of its Spec.
func itemOf(r Run) QueueItem {
	p := r.Spec.Priority
	if p.Rank() < 0 {
		p = PriorityNormal
	}
	return QueueItem{Tenant: r.Tenant, RunID: r.ID, Priority: p}
}

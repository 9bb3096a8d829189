package bolt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
	bbolt "go.etcd.io/bbolt"
)

// This file implements tasks.Queue, the embedded run queue. Its items live
// under one more top-level bucket, beside the runs they name:
//
//	queue/
//	  item/    key: tenant + 0x00 + run id; value: JSON of queueItem (the
//	           item's priority, state, ready time, lease)
//	  ready/   key: priority rank (1 byte) + ready time (8) + sequence (8)
//	           + tenant + 0x00 + run id; value: empty. Ready and delayed
//	           items: Claim reads each rank from its start and stops at the
//	           first item not ready yet, so this one index gives priority
//	           order, FIFO within a priority, and the next delay to run out.
//	  lease/   key: lease expiry (8) + tenant + 0x00 + run id; value:
//	           empty. Leased items, soonest expiry first, for Reclaim.
//
// Times are Unix nanoseconds with the sign bit flipped, big-endian (see
// putTime); the sequence, from the item bucket's sequence, orders items
// that became ready in the same nanosecond.
//
// Claim and Reclaim write in their own transaction (bbolt's Update), so
// that a claiming worker never waits for the batch delay; Enqueue, Ack,
// Release and Extend share transactions with other writers through Batch.

var _ tasks.Queue = (*Queue)(nil)

// Bucket names of the queue.
var (
	bucketQueue      = []byte("queue")
	bucketQueueItem  = []byte("item")
	bucketQueueReady = []byte("ready")
	bucketQueueLease = []byte("lease")
)

// QueueOptions configure a Queue. The zero value means defaults.
type QueueOptions struct {
	// Now is the clock of delays and leases; nil means time.Now.
	Now func() time.Time
}

// Queue is the embedded tasks.Queue, persisted in the DB's file: items
// survive a restart, leases included (see Recover). A Claim waiting for
// work is woken in process by Enqueue and Release, and by a timer when the
// next delay runs out; it never polls. The file is locked to one process,
// so make one Queue per DB: a second Queue on the same DB works, but its
// writes do not wake the first one's waiting Claims (they see them at
// their next timer or wait's end).
//
// A Queue is safe for concurrent use.
type Queue struct {
	db  *DB
	now func() time.Time

	mu     sync.Mutex
	signal chan struct{} // closed and replaced when items become ready
}

// NewQueue returns the queue stored in db.
func NewQueue(db *DB, opts QueueOptions) *Queue {
	q := &Queue{db: db, now: opts.Now, signal: make(chan struct{})}
	if q.now == nil {
		q.now = time.Now
	}
	return q
}

// Wake makes every waiting Claim look at the queue again at once. The
// queue wakes them itself on every change; Wake is for a clock that jumps,
// as a test's does, past a delay the waiting Claims measure in real time.
func (q *Queue) Wake() {
	q.mu.Lock()
	close(q.signal)
	q.signal = make(chan struct{})
	q.mu.Unlock()
}

func (q *Queue) waitSignal() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.signal
}

// queueItem is an item's record.
type queueItem struct {
	Priority tasks.Priority `json:"p"`
	// Ready is when the item is or was ready (nanoseconds), and Seq its
	// sequence in ready/, while it is not leased.
	Ready int64  `json:"ready,omitempty"`
	Seq   uint64 `json:"seq,omitempty"`
	// Token, Worker and Until (nanoseconds) describe the lease, when the
	// item is leased.
	Token      string `json:"token,omitempty"`
	Worker     string `json:"worker,omitempty"`
	Until      int64  `json:"until,omitempty"`
	Deliveries int    `json:"deliveries,omitempty"`
}

func (it queueItem) leased() bool { return it.Token != "" }

// queueTx is the queue's buckets in a transaction.
type queueTx struct{ item, ready, lease *bbolt.Bucket }

// queueBuckets returns the queue's buckets, creating them in a write
// transaction; in a read transaction before the first write it returns
// nil.
func queueBuckets(tx *bbolt.Tx) (*queueTx, error) {
	if !tx.Writable() {
		root := tx.Bucket(bucketQueue)
		if root == nil {
			return nil, nil
		}
		return &queueTx{root.Bucket(bucketQueueItem), root.Bucket(bucketQueueReady), root.Bucket(bucketQueueLease)}, nil
	}
	root, err := tx.CreateBucketIfNotExists(bucketQueue)
	if err != nil {
		return nil, err
	}
	var b [3]*bbolt.Bucket
	for i, name := range [][]byte{bucketQueueItem, bucketQueueReady, bucketQueueLease} {
		if b[i], err = root.CreateBucketIfNotExists(name); err != nil {
			return nil, err
		}
	}
	return &queueTx{b[0], b[1], b[2]}, nil
}

func itemKey(tenant, runID string) []byte {
	k := make([]byte, 0, len(tenant)+1+len(runID))
	k = append(k, tenant...)
	k = append(k, 0)
	return append(k, runID...)
}

func readyKey(rank int, ready int64, seq uint64, id []byte) []byte {
	k := make([]byte, 17, 17+len(id))
	k[0] = byte(rank)
	binary.BigEndian.PutUint64(k[1:], uint64(ready)^(1<<63))
	binary.BigEndian.PutUint64(k[9:], seq)
	return append(k, id...)
}

func leaseKey(until int64, id []byte) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(until)^(1<<63))
	return append(k, id...)
}

func keyTime(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

func (b *queueTx) get(id []byte) (queueItem, bool, error) {
	v := b.item.Get(id)
	if v == nil {
		return queueItem{}, false, nil
	}
	var it queueItem
	if err := json.Unmarshal(v, &it); err != nil {
		return queueItem{}, false, fmt.Errorf("corrupt queue item %q: %w", id, err)
	}
	return it, true, nil
}

func (b *queueTx) put(id []byte, it queueItem) error {
	v, err := json.Marshal(it)
	if err != nil {
		return err
	}
	return b.item.Put(id, v)
}

// unindex removes it's key from ready/ or lease/.
func (b *queueTx) unindex(id []byte, it queueItem) error {
	if it.leased() {
		return b.lease.Delete(leaseKey(it.Until, id))
	}
	return b.ready.Delete(readyKey(it.Priority.Rank(), it.Ready, it.Seq, id))
}

// makeReady stores it as ready at ready (nanoseconds), not leased.
func (b *queueTx) makeReady(id []byte, it queueItem, ready int64) error {
	seq, err := b.item.NextSequence()
	if err != nil {
		return err
	}
	it.Ready, it.Seq = ready, seq
	it.Token, it.Worker, it.Until, it.Deliveries = "", "", 0, 0
	if err := b.put(id, it); err != nil {
		return err
	}
	return b.ready.Put(readyKey(it.Priority.Rank(), ready, seq, id), nil)
}

// lease leases it to worker until until and returns the claim.
func (b *queueTx) leaseTo(id []byte, it queueItem, worker string, until time.Time) (tasks.Claim, error) {
	it.Token, it.Worker, it.Until, it.Deliveries = newToken(), worker, until.UnixNano(), it.Deliveries+1
	it.Ready, it.Seq = 0, 0
	if err := b.put(id, it); err != nil {
		return tasks.Claim{}, err
	}
	if err := b.lease.Put(leaseKey(it.Until, id), nil); err != nil {
		return tasks.Claim{}, err
	}
	return claimOf(id, it), nil
}

func claimOf(id []byte, it queueItem) tasks.Claim {
	tenant, runID, _ := bytes.Cut(id, []byte{0})
	return tasks.Claim{
		QueueItem:  tasks.QueueItem{Tenant: string(tenant), RunID: string(runID), Priority: it.Priority},
		Worker:     it.Worker,
		Until:      time.Unix(0, it.Until).UTC(),
		Token:      it.Token,
		Deliveries: it.Deliveries,
	}
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func checkItem(it tasks.QueueItem) error {
	if err := checkIDs("tenant", it.Tenant, "run_id", it.RunID); err != nil {
		return err
	}
	if it.Priority.Rank() < 0 {
		return vigil.FieldError("priority", "must be high, normal or low, got %q", it.Priority)
	}
	return nil
}

func checkN(n int) error {
	if n < 1 || n > tasks.MaxClaim {
		return vigil.FieldError("n", "must be 1 to %d, got %d", tasks.MaxClaim, n)
	}
	return nil
}

func leaseLost(c tasks.Claim) error {
	return vigil.Errorf(vigil.Conflict, "the lease of run %s (token %s) is lost: the item was acked, released or reclaimed", c.RunID, c.Token)
}

// Enqueue implements tasks.Queue.
func (q *Queue) Enqueue(ctx context.Context, item tasks.QueueItem, delay time.Duration) error {
	if err := checkItem(item); err != nil {
		return err
	}
	id := itemKey(item.Tenant, item.RunID)
	ready := q.now().Add(max(delay, 0)).UnixNano()
	err := q.db.batch(ctx, "enqueue", item.RunID, func(tx *bbolt.Tx, failed *error) error {
		b, err := queueBuckets(tx)
		if err != nil {
			return err
		}
		if b.item.Get(id) != nil {
			return nil // held already
		}
		return b.makeReady(id, queueItem{Priority: item.Priority}, ready)
	})
	if err == nil {
		q.Wake()
	}
	return err
}

// Claim implements tasks.Queue.
func (q *Queue) Claim(ctx context.Context, worker string, n int, lease, wait time.Duration) ([]tasks.Claim, error) {
	if err := checkN(n); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		signal := q.waitSignal() // before looking, so that no wake-up is missed
		claims, next, err := q.claim(ctx, worker, n, lease)
		if err != nil || len(claims) > 0 {
			return claims, err
		}
		d := time.Until(deadline)
		if d <= 0 {
			return nil, nil
		}
		if !next.IsZero() {
			d = min(d, max(next.Sub(q.now()), time.Millisecond))
		}
		timer := time.NewTimer(d)
		select {
		case <-signal:
		case <-timer.C:
		case <-q.db.closed:
			timer.Stop()
			return nil, errClosed
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		}
		timer.Stop()
	}
}

// claim leases up to n ready items, and returns when the next delayed item
// becomes ready (zero if none is delayed).
func (q *Queue) claim(ctx context.Context, worker string, n int, lease time.Duration) ([]tasks.Claim, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return nil, time.Time{}, err
	}
	if q.db.isClosed() {
		return nil, time.Time{}, errClosed
	}
	now := q.now()
	until := now.Add(lease)
	var (
		claims []tasks.Claim
		next   int64
	)
	err := q.db.bolt.Update(func(tx *bbolt.Tx) error {
		claims, next = nil, 0
		b, err := queueBuckets(tx)
		if err != nil {
			return err
		}
		type found struct{ key, id []byte }
		var take []found
		c := b.ready.Cursor()
		for rank := range len(tasks.Priorities) {
			for k, _ := c.Seek([]byte{byte(rank)}); k != nil && k[0] == byte(rank); k, _ = c.Next() {
				if len(k) < 18 {
					return fmt.Errorf("corrupt ready key %x", k)
				}
				if t := keyTime(k[1:9]); t > now.UnixNano() {
					if next == 0 || t < next {
						next = t
					}
					break
				}
				if len(take) < n {
					take = append(take, found{bytes.Clone(k), bytes.Clone(k[17:])})
				} else {
					break
				}
			}
		}
		for _, f := range take {
			it, ok, err := b.get(f.id)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("ready key without item: %q", f.id)
			}
			if err := b.ready.Delete(f.key); err != nil {
				return err
			}
			it.Deliveries = 0
			cl, err := b.leaseTo(f.id, it, worker, until)
			if err != nil {
				return err
			}
			claims = append(claims, cl)
		}
		return nil
	})
	if err != nil {
		return nil, time.Time{}, wrap("claim", worker, err)
	}
	var at time.Time
	if next != 0 {
		at = time.Unix(0, next)
	}
	return claims, at, nil
}

// Reclaim implements tasks.Queue.
func (q *Queue) Reclaim(ctx context.Context, worker string, n int, lease time.Duration) ([]tasks.Claim, error) {
	if err := checkN(n); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.db.isClosed() {
		return nil, errClosed
	}
	now := q.now()
	var claims []tasks.Claim
	err := q.db.bolt.Update(func(tx *bbolt.Tx) error {
		claims = nil
		b, err := queueBuckets(tx)
		if err != nil {
			return err
		}
		var keys [][]byte
		c := b.lease.Cursor()
		for k, _ := c.First(); k != nil && len(keys) < n; k, _ = c.Next() {
			if len(k) < 9 {
				return fmt.Errorf("corrupt lease key %x", k)
			}
			if keyTime(k[:8]) > now.UnixNano() {
				break
			}
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			id := k[8:]
			it, ok, err := b.get(id)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("lease key without item: %q", id)
			}
			if err := b.lease.Delete(k); err != nil {
				return err
			}
			cl, err := b.leaseTo(id, it, worker, now.Add(lease))
			if err != nil {
				return err
			}
			claims = append(claims, cl)
		}
		return nil
	})
	if err != nil {
		return nil, wrap("reclaim", worker, err)
	}
	return claims, nil
}

// holding runs fn on c's item if c's lease still holds it; else it reports
// a lost lease.
func (q *Queue) holding(ctx context.Context, op string, c tasks.Claim, fn func(b *queueTx, id []byte, it queueItem) error) error {
	if !vigil.ValidID(c.Tenant) || !vigil.ValidID(c.RunID) || c.Token == "" {
		return leaseLost(c)
	}
	id := itemKey(c.Tenant, c.RunID)
	return q.db.batch(ctx, op, c.RunID, func(tx *bbolt.Tx, failed *error) error {
		b, err := queueBuckets(tx)
		if err != nil {
			return err
		}
		it, ok, err := b.get(id)
		if err != nil {
			return err
		}
		if !ok || it.Token != c.Token {
			*failed = leaseLost(c)
			return nil
		}
		return fn(b, id, it)
	})
}

// Extend implements tasks.Queue.
func (q *Queue) Extend(ctx context.Context, c tasks.Claim, lease time.Duration) (tasks.Claim, error) {
	until := q.now().Add(lease)
	var out tasks.Claim
	err := q.holding(ctx, "extend", c, func(b *queueTx, id []byte, it queueItem) error {
		if err := b.unindex(id, it); err != nil {
			return err
		}
		it.Until = until.UnixNano()
		if err := b.put(id, it); err != nil {
			return err
		}
		out = claimOf(id, it)
		return b.lease.Put(leaseKey(it.Until, id), nil)
	})
	return out, err
}

// Ack implements tasks.Queue.
func (q *Queue) Ack(ctx context.Context, c tasks.Claim) error {
	return q.holding(ctx, "ack", c, func(b *queueTx, id []byte, it queueItem) error {
		if err := b.unindex(id, it); err != nil {
			return err
		}
		return b.item.Delete(id)
	})
}

// Release implements tasks.Queue.
func (q *Queue) Release(ctx context.Context, c tasks.Claim, delay time.Duration) error {
	ready := q.now().Add(max(delay, 0)).UnixNano()
	err := q.holding(ctx, "release", c, func(b *queueTx, id []byte, it queueItem) error {
		if err := b.unindex(id, it); err != nil {
			return err
		}
		return b.makeReady(id, it, ready)
	})
	if err == nil {
		q.Wake()
	}
	return err
}

// Recover makes every leased item ready at once and returns how many there
// were. In embedded mode the file is locked to one process, so at startup
// every lease in it belongs to a process that is gone; `vigil serve` calls
// Recover before its workers start, so that the runs a crash interrupted
// resume at once instead of after their leases run out. Never call it
// while workers hold leases.
func (q *Queue) Recover(ctx context.Context) (int, error) {
	ready := q.now().UnixNano()
	n := 0
	err := q.db.batch(ctx, "recover", "", func(tx *bbolt.Tx, failed *error) error {
		n = 0
		b, err := queueBuckets(tx)
		if err != nil {
			return err
		}
		var keys [][]byte
		c := b.lease.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			id := k[8:]
			it, ok, err := b.get(id)
			if err != nil {
				return err
			}
			if err := b.lease.Delete(k); err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := b.makeReady(id, it, ready); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err == nil && n > 0 {
		q.Wake()
	}
	return n, err
}

// Stats implements tasks.Queue. It reads every index key, which is fine
// for a metrics scrape on an embedded queue.
func (q *Queue) Stats(ctx context.Context) (tasks.QueueStats, error) {
	st := tasks.QueueStats{Ready: map[tasks.Priority]int{}}
	for _, p := range tasks.Priorities {
		st.Ready[p] = 0
	}
	now := q.now().UnixNano()
	err := q.db.view(ctx, "queue stats", "", func(tx *bbolt.Tx) error {
		b, err := queueBuckets(tx)
		if b == nil || err != nil {
			return err
		}
		c := b.ready.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) < 18 || int(k[0]) >= len(tasks.Priorities) {
				return fmt.Errorf("corrupt ready key %x", k)
			}
			if keyTime(k[1:9]) > now {
				st.Delayed++
			} else {
				st.Ready[tasks.Priorities[k[0]]]++
			}
		}
		st.Leased = b.lease.Stats().KeyN
		return nil
	})
	return st, err
}

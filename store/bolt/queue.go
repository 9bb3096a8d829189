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
//	  item/     key: tenant + 0x00 + run id; value: JSON of queueItem (the
//	            item's priority, state, turn or ready time, lease)
//	  turns/    key: priority rank (1 byte) + turn (8) + sequence (8) +
//	            tenant + 0x00 + run id; value: empty. Ready items: Claim
//	            reads each rank from its start, so this index gives
//	            priority order and, within a priority, tenants in turns.
//	  delayed/  key: ready time (8) + sequence (8) + rank (1) + tenant +
//	            0x00 + run id; value: empty. Delayed items, soonest first.
//	  clock/    key: rank (1 byte); value: the rank's virtual time, the
//	            turn of the item Claim took last (8). key: rank + tenant;
//	            value: the tenant's last turn at that rank (8), while one
//	            of its ready items has it.
//	  lease/    key: lease expiry (8) + tenant + 0x00 + run id; value:
//	            empty. Leased items, soonest expiry first, for Reclaim.
//
// # Turns
//
// Tenants take turns by start-time fair queuing with a unit cost per run:
// an item that becomes ready gets the turn max(V, F) + 1, where V is its
// rank's virtual time and F the last turn given to its tenant, and Claim
// takes the lowest turns first (ties by sequence, the order they became
// ready). So a tenant's ready items have consecutive turns in the order
// they became ready, and a tenant with nothing ready that enqueues one
// item gets V + 1: it comes after at most one item of each tenant that
// has a backlog, however long that backlog is. Claim sets V to the turn
// it took, and drops a tenant's F once its last turn is taken.
//
// A delayed item moves to turns/ when its ready time has come and a
// transaction looks: Claim, and any Enqueue, Release or Recover, which
// first move the due delayed items (soonest first, at most promoteBudget
// at a time), so that turns keep the order in which items became ready.
//
// Times are Unix nanoseconds with the sign bit flipped, big-endian (see
// putTime); the sequence, from the item bucket's sequence, orders items
// that became ready in the same nanosecond.
//
// Files written before turns existed keep ready and delayed items in one
// index, queue/ready/ (rank + ready time + sequence + id); the first write
// transaction moves its keys to delayed/, from which the next look makes
// the due ones ready.
//
// Every write of the queue, Claim and Reclaim included, goes through the
// DB's group commit (see submit). So a claim waits for the commit under
// way, as bbolt's writer lock made it wait in a transaction of its own,
// and then shares the next transaction and its two fsyncs with the acks,
// run updates and events that arrived meanwhile, instead of adding a
// transaction of its own between two group commits. Claims in one
// transaction run one after another, so none sees an item another took,
// and Claim returns only once the transaction holding its leases has
// committed.

var _ tasks.Queue = (*Queue)(nil)

// Bucket names of the queue.
var (
	bucketQueue        = []byte("queue")
	bucketQueueItem    = []byte("item")
	bucketQueueTurns   = []byte("turns")
	bucketQueueDelayed = []byte("delayed")
	bucketQueueClock   = []byte("clock")
	bucketQueueLease   = []byte("lease")
	// bucketQueueReady is the index of files written before turns: see
	// migrateReady.
	bucketQueueReady = []byte("ready")
)

// promoteBudget bounds the delayed items one transaction makes ready.
const promoteBudget = 1000

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
	// sequence in turns/ or delayed/, while it is not leased. Turn is its
	// turn while it is ready (in turns/, never 0); 0 while it is delayed.
	Ready int64  `json:"ready,omitempty"`
	Seq   uint64 `json:"seq,omitempty"`
	Turn  uint64 `json:"turn,omitempty"`
	// Token, Worker and Until (nanoseconds) describe the lease, when the
	// item is leased.
	Token      string `json:"token,omitempty"`
	Worker     string `json:"worker,omitempty"`
	Until      int64  `json:"until,omitempty"`
	Deliveries int    `json:"deliveries,omitempty"`
}

func (it queueItem) leased() bool { return it.Token != "" }

// queueTx is the queue's buckets in a transaction.
type queueTx struct{ item, turns, delayed, clock, lease *bbolt.Bucket }

// queueBuckets returns the queue's buckets, creating them (and moving the
// keys of a file written before turns, see migrateReady) in a write
// transaction; in a read transaction before the first write it returns
// nil.
func queueBuckets(tx *bbolt.Tx) (*queueTx, error) {
	names := [][]byte{bucketQueueItem, bucketQueueTurns, bucketQueueDelayed, bucketQueueClock, bucketQueueLease}
	var b [5]*bbolt.Bucket
	if !tx.Writable() {
		root := tx.Bucket(bucketQueue)
		if root == nil || root.Bucket(bucketQueueTurns) == nil {
			return nil, nil
		}
		for i, name := range names {
			b[i] = root.Bucket(name)
		}
		return &queueTx{b[0], b[1], b[2], b[3], b[4]}, nil
	}
	root, err := tx.CreateBucketIfNotExists(bucketQueue)
	if err != nil {
		return nil, err
	}
	for i, name := range names {
		if b[i], err = root.CreateBucketIfNotExists(name); err != nil {
			return nil, err
		}
	}
	qt := &queueTx{b[0], b[1], b[2], b[3], b[4]}
	if old := root.Bucket(bucketQueueReady); old != nil {
		if err := qt.migrateReady(old); err != nil {
			return nil, err
		}
		if err := root.DeleteBucket(bucketQueueReady); err != nil {
			return nil, err
		}
	}
	return qt, nil
}

// migrateReady moves the keys of old, the ready/ index of a file written
// before turns (rank + ready time + sequence + id, ready and delayed items
// alike), to delayed/. Their records, without a turn, already read as
// delayed; the next look makes the due ones ready in ready-time order.
func (b *queueTx) migrateReady(old *bbolt.Bucket) error {
	return old.ForEach(func(k, _ []byte) error {
		if len(k) < 18 {
			return fmt.Errorf("corrupt ready key %x", k)
		}
		return b.delayed.Put(delayedKey(keyTime(k[1:9]), binary.BigEndian.Uint64(k[9:17]), int(k[0]), k[17:]), nil)
	})
}

func itemKey(tenant, runID string) []byte {
	k := make([]byte, 0, len(tenant)+1+len(runID))
	k = append(k, tenant...)
	k = append(k, 0)
	return append(k, runID...)
}

func turnKey(rank int, turn, seq uint64, id []byte) []byte {
	k := make([]byte, 17, 17+len(id))
	k[0] = byte(rank)
	binary.BigEndian.PutUint64(k[1:], turn)
	binary.BigEndian.PutUint64(k[9:], seq)
	return append(k, id...)
}

func delayedKey(ready int64, seq uint64, rank int, id []byte) []byte {
	k := make([]byte, 17, 17+len(id))
	binary.BigEndian.PutUint64(k, uint64(ready)^(1<<63))
	binary.BigEndian.PutUint64(k[8:], seq)
	k[16] = byte(rank)
	return append(k, id...)
}

// clockKey is the key in clock/ of rank's virtual time (tenant empty) or
// of tenant's last turn at rank.
func clockKey(rank int, tenant []byte) []byte {
	return append([]byte{byte(rank)}, tenant...)
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

// unindex removes it's key from turns/, delayed/ or lease/.
func (b *queueTx) unindex(id []byte, it queueItem) error {
	switch {
	case it.leased():
		return b.lease.Delete(leaseKey(it.Until, id))
	case it.Turn != 0:
		return b.turns.Delete(turnKey(it.Priority.Rank(), it.Turn, it.Seq, id))
	default:
		return b.delayed.Delete(delayedKey(it.Ready, it.Seq, it.Priority.Rank(), id))
	}
}

// makeReady stores it, not leased, as ready at ready (nanoseconds): in its
// tenant's turn if ready is not after now, else delayed. Callers promote
// the due delayed items first, so that turns follow ready times.
func (b *queueTx) makeReady(id []byte, it queueItem, ready, now int64) error {
	seq, err := b.item.NextSequence()
	if err != nil {
		return err
	}
	it.Ready, it.Seq, it.Turn = ready, seq, 0
	it.Token, it.Worker, it.Until, it.Deliveries = "", "", 0, 0
	rank := it.Priority.Rank()
	if ready > now {
		if err := b.put(id, it); err != nil {
			return err
		}
		return b.delayed.Put(delayedKey(ready, seq, rank, id), nil)
	}
	tenant, _, _ := bytes.Cut(id, []byte{0})
	it.Turn = max(b.clockAt(rank, nil), b.clockAt(rank, tenant)) + 1
	if err := b.setClock(rank, tenant, it.Turn); err != nil {
		return err
	}
	if err := b.put(id, it); err != nil {
		return err
	}
	return b.turns.Put(turnKey(rank, it.Turn, seq, id), nil)
}

// clockAt returns rank's virtual time (tenant nil) or tenant's last turn
// at rank; 0 if none is stored.
func (b *queueTx) clockAt(rank int, tenant []byte) uint64 {
	v := b.clock.Get(clockKey(rank, tenant))
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (b *queueTx) setClock(rank int, tenant []byte, turn uint64) error {
	return b.clock.Put(clockKey(rank, tenant), binary.BigEndian.AppendUint64(nil, turn))
}

// took records that Claim took the item of tenant at rank with turn:
// the rank's virtual time moves to turn, and the tenant's last turn is
// dropped once it is taken.
func (b *queueTx) took(rank int, tenant []byte, turn uint64) error {
	if turn > b.clockAt(rank, nil) {
		if err := b.setClock(rank, nil, turn); err != nil {
			return err
		}
	}
	if b.clockAt(rank, tenant) <= turn {
		return b.clock.Delete(clockKey(rank, tenant))
	}
	return nil
}

// promote makes the delayed items due at now ready, soonest first, at
// most promoteBudget of them. It returns the ready time of the first item
// still delayed, now if due items are left, 0 if none is delayed.
func (b *queueTx) promote(now int64) (int64, error) {
	var keys [][]byte
	c := b.delayed.Cursor()
	k, _ := c.First()
	for ; k != nil; k, _ = c.Next() {
		if len(k) < 18 {
			return 0, fmt.Errorf("corrupt delayed key %x", k)
		}
		if keyTime(k[:8]) > now {
			break
		}
		if len(keys) == promoteBudget {
			break
		}
		keys = append(keys, bytes.Clone(k))
	}
	var next int64
	if k != nil {
		next = min(keyTime(k[:8]), now)
	}
	for _, k := range keys {
		id := k[17:]
		if err := b.delayed.Delete(k); err != nil {
			return 0, err
		}
		it, ok, err := b.get(id)
		if err != nil {
			return 0, err
		}
		if !ok || it.leased() || it.Turn != 0 {
			continue // a stray key: the record knows better
		}
		if err := b.makeReady(id, it, it.Ready, now); err != nil {
			return 0, err
		}
	}
	return next, nil
}

// lease leases it to worker until until and returns the claim.
func (b *queueTx) leaseTo(id []byte, it queueItem, worker string, until time.Time) (tasks.Claim, error) {
	it.Token, it.Worker, it.Until, it.Deliveries = newToken(), worker, until.UnixNano(), it.Deliveries+1
	it.Ready, it.Seq, it.Turn = 0, 0, 0
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
	now := q.now()
	ready := now.Add(max(delay, 0)).UnixNano()
	err := q.db.batch(ctx, "enqueue", item.RunID, func(tx *bbolt.Tx, failed *error) error {
		b, err := queueBuckets(tx)
		if err != nil {
			return err
		}
		if b.item.Get(id) != nil {
			return nil // held already
		}
		if _, err := b.promote(now.UnixNano()); err != nil {
			return err
		}
		return b.makeReady(id, queueItem{Priority: item.Priority}, ready, now.UnixNano())
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
	err := q.db.write(ctx, "", func(tx *bbolt.Tx, _ uint64, _ *error) error {
		claims, next = nil, 0 // afresh: commit may run this twice
		b, err := queueBuckets(tx)
		if err != nil {
			return err
		}
		if next, err = b.promote(now.UnixNano()); err != nil {
			return err
		}
		type found struct{ key, id []byte }
		var take []found
		c := b.turns.Cursor()
		for rank := range len(tasks.Priorities) {
			for k, _ := c.Seek([]byte{byte(rank)}); k != nil && k[0] == byte(rank) && len(take) < n; k, _ = c.Next() {
				if len(k) < 18 {
					return fmt.Errorf("corrupt turn key %x", k)
				}
				take = append(take, found{bytes.Clone(k), bytes.Clone(k[17:])})
			}
		}
		for _, f := range take {
			it, ok, err := b.get(f.id)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("turn key without item: %q", f.id)
			}
			if err := b.turns.Delete(f.key); err != nil {
				return err
			}
			tenant, _, _ := bytes.Cut(f.id, []byte{0})
			if err := b.took(int(f.key[0]), tenant, binary.BigEndian.Uint64(f.key[1:9])); err != nil {
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
	err := q.db.write(ctx, "", func(tx *bbolt.Tx, _ uint64, _ *error) error {
		claims = nil // afresh: commit may run this twice
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
	now := q.now()
	ready := now.Add(max(delay, 0)).UnixNano()
	err := q.holding(ctx, "release", c, func(b *queueTx, id []byte, it queueItem) error {
		if err := b.unindex(id, it); err != nil {
			return err
		}
		if _, err := b.promote(now.UnixNano()); err != nil {
			return err
		}
		return b.makeReady(id, it, ready, now.UnixNano())
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
		if _, err := b.promote(ready); err != nil {
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
			if err := b.makeReady(id, it, ready, ready); err != nil {
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
		c := b.turns.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) < 18 || int(k[0]) >= len(tasks.Priorities) {
				return fmt.Errorf("corrupt turn key %x", k)
			}
			st.Ready[tasks.Priorities[k[0]]]++
		}
		c = b.delayed.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) < 18 || int(k[16]) >= len(tasks.Priorities) {
				return fmt.Errorf("corrupt delayed key %x", k)
			}
			if keyTime(k[:8]) > now {
				st.Delayed++
			} else {
				st.Ready[tasks.Priorities[k[16]]]++
			}
		}
		st.Leased = b.lease.Stats().KeyN
		return nil
	})
	return st, err
}

package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
	bbolt "go.etcd.io/bbolt"
)

// maxBatch caps how many appends one group commit holds, so that one
// transaction stays small while appenders queue without bound.
const maxBatch = 256

// CreateThread implements streams.Log. th.CreatedAt is stored as given. The
// thread is written by a group commit, in a transaction shared with the
// writes that arrive meanwhile.
func (db *DB) CreateThread(ctx context.Context, th streams.Thread) error {
	if err := checkThread(th); err != nil {
		return err
	}
	rec, err := json.Marshal(th)
	if err != nil {
		return fmt.Errorf("store/bolt: create thread %s: %w", th.ID, err)
	}
	err = db.write(ctx, "", func(tx *bbolt.Tx, _ uint64, failed *error) error {
		ref, err := newThread(tx, th, failed)
		if ref == nil || err != nil {
			return err
		}
		ref.record = rec
		return ref.save()
	})
	return wrap("create thread", th.ID, err)
}

// checkThread checks the ids of a thread to create.
func checkThread(th streams.Thread) error {
	if !vigil.ValidID(th.Tenant) {
		return vigil.FieldError("tenant", "invalid tenant id %q", th.Tenant)
	}
	if !vigil.ValidID(th.ID) {
		return vigil.FieldError("id", "invalid thread id %q", th.ID)
	}
	return nil
}

// newThread prepares thread th in tx: it returns a reference whose save
// stores the thread, once the caller has set its record. If the tenant has
// the thread already, it sets *failed to a vigil.Conflict error and returns
// nil, having written nothing (the tenant's buckets exist then).
func newThread(tx *bbolt.Tx, th streams.Thread, failed *error) (*threadRef, error) {
	tenant, err := tx.Bucket(bucketStreams).CreateBucketIfNotExists([]byte(th.Tenant))
	if err != nil {
		return nil, err
	}
	threads, err := tenant.CreateBucketIfNotExists(bucketThreads)
	if err != nil {
		return nil, err
	}
	events, err := tenant.CreateBucketIfNotExists(bucketEvents)
	if err != nil {
		return nil, err
	}
	if threads.Get([]byte(th.ID)) != nil {
		*failed = vigil.Errorf(vigil.Conflict, "thread %s already exists", th.ID)
		return nil, nil
	}
	num, err := tenant.NextSequence()
	if err != nil {
		return nil, err
	}
	return &threadRef{threads: threads, events: events, key: []byte(th.ID), num: num}, nil
}

// Thread implements streams.Log.
func (db *DB) Thread(ctx context.Context, tenant, id string) (streams.Thread, error) {
	if err := ctx.Err(); err != nil {
		return streams.Thread{}, err
	}
	var th streams.Thread
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		ref, err := findThread(tx, tenant, id)
		if err != nil {
			return err
		}
		return json.Unmarshal(ref.record, &th)
	})
	if err != nil {
		return streams.Thread{}, wrap("get thread", id, err)
	}
	return th, nil
}

// header is how an event's envelope is stored, without its ID and thread
// (the key and the bucket say those) and without Data (stored after it).
type header struct {
	RunID   string    `json:"run_id,omitempty"`
	TaskID  string    `json:"task_id,omitempty"`
	TraceID string    `json:"trace_id,omitempty"`
	Type    string    `json:"type"`
	TS      time.Time `json:"ts"`
}

// encodeEvent returns the stored value of ev: its header as one JSON line,
// '\n', then Data as given. encoding/json never writes a raw newline, so the
// first '\n' ends the header.
func encodeEvent(ev streams.Event) ([]byte, error) {
	if len(ev.Data) > 0 && !json.Valid(ev.Data) {
		// A stored event that is not JSON would break every later replay
		// of the thread, so it is refused here rather than trusted.
		return nil, vigil.Errorf(vigil.Invalid, "event data is not valid JSON")
	}
	h, err := json.Marshal(header{RunID: ev.RunID, TaskID: ev.TaskID, TraceID: ev.TraceID, Type: ev.Type, TS: ev.TS})
	if err != nil {
		return nil, err
	}
	v := make([]byte, 0, len(h)+1+len(ev.Data))
	v = append(v, h...)
	v = append(v, '\n')
	return append(v, ev.Data...), nil
}

// decodeEvent is the inverse of encodeEvent, for the event with ID id. It
// copies everything out of v, which bbolt owns.
func decodeEvent(thread string, id streams.ID, v []byte) (streams.Event, error) {
	i := bytes.IndexByte(v, '\n')
	if i < 0 {
		return streams.Event{}, fmt.Errorf("corrupt event %v", id)
	}
	var h header
	if err := json.Unmarshal(v[:i], &h); err != nil {
		return streams.Event{}, fmt.Errorf("corrupt event %v: %w", id, err)
	}
	ev := streams.Event{
		ID:       id,
		ThreadID: thread,
		RunID:    h.RunID,
		TaskID:   h.TaskID,
		TraceID:  h.TraceID,
		Type:     h.Type,
		TS:       h.TS,
	}
	if data := v[i+1:]; len(data) > 0 {
		ev.Data = bytes.Clone(data)
	}
	return ev, nil
}

// writeFunc makes one request's writes in tx; ms is the commit's clock
// reading in milliseconds. A failure that is the request's own (a missing
// thread, a conflict) it reports by setting *failed and returning nil,
// having written nothing, so that the transaction goes on for the requests
// it shares; a returned error is unexpected and fails the transaction. A
// writeFunc may run more than once (see commit), and must set its results
// afresh each time.
type writeFunc func(tx *bbolt.Tx, ms uint64, failed *error) error

// writeReq is one write waiting for, or carried by, a group commit.
type writeReq struct {
	fn   writeFunc
	wake string // the waitKey whose Tails a successful write wakes, or ""

	// err is set by the commit that carries the request: the failure fn
	// reported, or the error that failed the request's transaction.
	err error

	// done is closed when err is set, or when the request is made the
	// leader of the next commit (lead is then true).
	done chan struct{}
	lead bool
}

// write runs fn in a group commit and returns once the transaction that
// carried it committed (or failed): the failure fn reported, or an
// unexpected error for the caller to wrap. Once fn is queued it is
// carried out even if ctx ends, because another writer may already be
// committing it. wake, if not empty, is the waitKey of the thread whose
// Tails to wake when the write succeeds.
func (db *DB) write(ctx context.Context, wake string, fn writeFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.isClosed() {
		return errClosed
	}
	r := &writeReq{fn: fn, wake: wake, done: make(chan struct{})}
	db.submit(r)
	return r.err
}

// Append implements streams.Log. Events are encoded before the transaction,
// concurrently with other appenders; the commit then only writes them. Once
// an append is queued it completes even if ctx ends, because another
// appender may already be committing it. Data that is not valid JSON is a
// vigil.Invalid error and appends nothing.
func (db *DB) Append(ctx context.Context, tenant, thread string, evs []streams.Event) ([]streams.ID, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if db.isClosed() {
		return nil, errClosed
	}
	if len(evs) == 0 {
		_, err := db.Thread(ctx, tenant, thread)
		return nil, err
	}
	vals, err := encodeEvents(evs)
	if err != nil {
		return nil, wrap("append", thread, err)
	}
	var ids []streams.ID
	err = db.write(ctx, waitKey(tenant, thread), func(tx *bbolt.Tx, ms uint64, failed *error) error {
		ids = nil
		ref, err := findThread(tx, tenant, thread)
		if vigil.ErrorCode(err) == vigil.NotFound {
			*failed = err
			return nil
		}
		if err != nil {
			return err
		}
		ids, err = db.appendTo(ref, vals, ms)
		return err
	})
	if err != nil {
		return nil, wrap("append", thread, err)
	}
	return ids, nil
}

// encodeEvents encodes evs with encodeEvent; an event it refuses is a
// vigil.Invalid error naming its index.
func encodeEvents(evs []streams.Event) ([][]byte, error) {
	vals := make([][]byte, len(evs))
	for i, ev := range evs {
		v, err := encodeEvent(ev)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		vals[i] = v
	}
	return vals, nil
}

// submit queues r and returns when a commit has carried it. The writer
// that finds no commit under way leads: it commits the queue (its own
// request first) in one transaction, hands the results out, and passes the
// lead to the first request that queued meanwhile, which commits the next
// batch. So a lone write never waits for a timer, and writes that arrive
// during one fsync share the next.
func (db *DB) submit(r *writeReq) {
	db.mu.Lock()
	db.queue = append(db.queue, r)
	if db.busy {
		db.mu.Unlock()
		<-r.done
		if !r.lead {
			return
		}
		db.mu.Lock()
	} else {
		db.busy = true
	}
	// r leads, and is first in the queue.
	n := min(len(db.queue), maxBatch)
	batch := db.queue[:n:n]
	db.queue = append([]*writeReq(nil), db.queue[n:]...)
	db.mu.Unlock()

	// The hand-off runs even if the commit panics (and a caller up the
	// stack recovers), so that the queue never stalls behind a dead leader.
	committed := false
	defer func() {
		for _, q := range batch {
			if !committed {
				q.err = errAborted
			} else if q.err == nil && q.wake != "" {
				db.waiters.notify(q.wake)
			}
			if q != r {
				close(q.done)
			}
		}
		db.mu.Lock()
		if len(db.queue) > 0 {
			next := db.queue[0]
			next.lead = true
			close(next.done)
		} else {
			db.busy = false
		}
		db.mu.Unlock()
	}()
	db.commit(batch)
	committed = true
}

// errAborted answers the writes of a group commit that panicked.
var errAborted = errors.New("commit aborted by a panic")

// commit writes batch in one transaction. If that transaction fails, each
// request is retried in its own, so that one bad request fails alone.
// Requests that report their own failure do not fail the transaction.
func (db *DB) commit(batch []*writeReq) {
	ms := db.nowMs()
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		for _, r := range batch {
			if err := r.run(tx, ms); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		return
	}
	if len(batch) > 1 {
		for _, r := range batch {
			err := db.bolt.Update(func(tx *bbolt.Tx) error {
				return r.run(tx, db.nowMs())
			})
			if err != nil {
				r.err = err
			}
		}
		return
	}
	batch[0].err = err
}

// run runs r's writeFunc in tx, recording the failure it reports.
func (r *writeReq) run(tx *bbolt.Tx, ms uint64) error {
	var failed error
	err := r.fn(tx, ms, &failed)
	r.err = failed
	return err
}

// appendTo writes the encoded events vals to the thread ref in tx,
// assigning their IDs from the thread's state and the clock reading ms,
// trims the thread to MaxLen, and returns the IDs.
func (db *DB) appendTo(ref *threadRef, vals [][]byte, ms uint64) ([]streams.ID, error) {
	// A thread's events go in at the end of its key range and retention
	// takes them from the front, so full pages waste no space.
	ref.events.FillPercent = 1
	ids := make([]streams.ID, len(vals))
	id := ref.state.last
	for i, v := range vals {
		id = streams.After(id, ms)
		if err := ref.events.Put(eventKey(ref.num, id), v); err != nil {
			return nil, err
		}
		ids[i] = id
	}
	ref.state.last = id
	ref.state.count += uint64(len(vals))
	if ref.state.count > uint64(db.maxLen) {
		prefix := ref.eventPrefix()
		c := ref.events.Cursor()
		for ref.state.count > uint64(db.maxLen) {
			k, _ := c.Seek(prefix)
			if k == nil || !bytes.HasPrefix(k, prefix) {
				return nil, fmt.Errorf("corrupt thread state: count %d, no events left", ref.state.count)
			}
			ref.state.trimmed = getID(k[numLen:])
			if err := c.Delete(); err != nil {
				return nil, err
			}
			ref.state.count--
		}
	}
	if err := ref.save(); err != nil {
		return nil, err
	}
	return ids, nil
}

// nowMs reads the clock in milliseconds since the epoch; a clock before the
// epoch reads 0 (IDs still increase by sequence).
func (db *DB) nowMs() uint64 {
	return uint64(max(db.now().UnixMilli(), 0))
}

// Read implements streams.Log. A negative limit is a vigil.Invalid error.
func (db *DB) Read(ctx context.Context, tenant, thread string, after streams.ID, limit int) (streams.Page, error) {
	if err := ctx.Err(); err != nil {
		return streams.Page{}, err
	}
	if limit < 0 {
		return streams.Page{}, vigil.FieldError("limit", "must not be negative, got %d", limit)
	}
	var page streams.Page
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		ref, err := findThread(tx, tenant, thread)
		if err != nil {
			return err
		}
		st := ref.state
		page.Trimmed, page.Last = st.trimmed, st.last
		if limit == 0 || !after.Less(st.last) {
			return nil
		}
		page.Events = make([]streams.Event, 0, min(uint64(limit), st.count))
		prefix := ref.eventPrefix()
		c := ref.events.Cursor()
		k, v := c.Seek(eventKey(ref.num, after))
		if k != nil && len(k) == keyLen && bytes.HasPrefix(k, prefix) && getID(k[numLen:]) == after {
			k, v = c.Next()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(page.Events) < limit; k, v = c.Next() {
			if len(k) != keyLen {
				return fmt.Errorf("corrupt event key %x", k)
			}
			ev, err := decodeEvent(thread, getID(k[numLen:]), v)
			if err != nil {
				return err
			}
			page.Events = append(page.Events, ev)
		}
		return nil
	})
	if err != nil {
		return streams.Page{}, wrap("read", thread, err)
	}
	return page, nil
}

// Tail implements streams.Log. A missing thread is a vigil.NotFound error at
// once, without waiting; a limit below 1 is a vigil.Invalid error; a wait of
// zero or less returns what is there without waiting. Tail is woken by
// appends through this DB (no other process can write the file); closing
// the DB ends it with a vigil.Unavailable error.
func (db *DB) Tail(ctx context.Context, tenant, thread string, after streams.ID, limit int, wait time.Duration) ([]streams.Event, error) {
	if limit < 1 {
		return nil, vigil.FieldError("limit", "must be at least 1, got %d", limit)
	}
	key := waitKey(tenant, thread)
	var timeout <-chan time.Time
	for {
		// Watch before reading, so that an append between the read and the
		// wait still wakes us.
		woken, release := db.waiters.watch(key)
		page, err := db.Read(ctx, tenant, thread, after, limit)
		if err != nil || len(page.Events) > 0 || wait <= 0 {
			release()
			return page.Events, err
		}
		if timeout == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-woken:
			release()
		case <-timeout:
			release()
			return nil, nil
		case <-ctx.Done():
			release()
			return nil, ctx.Err()
		case <-db.closed:
			release()
			return nil, errClosed
		}
	}
}

// Ping implements streams.Log: it runs an empty read transaction, which
// fails once the file is closed.
func (db *DB) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := db.bolt.View(func(*bbolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("store/bolt: ping: %w", err)
	}
	return nil
}

// waitKey names a thread for waiters. '/' is not allowed in ids, so two
// threads never share a key.
func waitKey(tenant, thread string) string { return tenant + "/" + thread }

// waiters wakes Tail calls: each watched thread has a channel that the next
// commit to that thread closes. Entries live only while someone watches.
type waiters struct {
	mu sync.Mutex
	m  map[string]*waiter
}

type waiter struct {
	ch   chan struct{}
	refs int
}

// watch returns the channel the next append to key closes, and a release
// function to call once the caller no longer waits on it.
func (w *waiters) watch(key string) (<-chan struct{}, func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.m[key]
	if e == nil {
		e = &waiter{ch: make(chan struct{})}
		w.m[key] = e
	}
	e.refs++
	return e.ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		e.refs--
		if e.refs == 0 && w.m[key] == e {
			delete(w.m, key)
		}
	}
}

// notify wakes everyone watching key.
func (w *waiters) notify(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e := w.m[key]; e != nil {
		close(e.ch)
		delete(w.m, key)
	}
}

// Package bolt is Vigil's embedded storage backend: everything in one bbolt
// file, so that `vigil serve` runs with no Redis. It implements streams.Log
// today; the other store interfaces join it as their packages declare them.
//
// # Layout
//
// The file holds one top-level bucket per domain. Event logs live under
// "streams", scoped by tenant from the first key down:
//
//	streams/
//	  <tenant>/        one bucket per tenant
//	    threads/       key: thread id; value: the thread's number (8 bytes),
//	                   its state (40 bytes: last ID, trimmed ID, events kept)
//	                   and its record (JSON of streams.Thread)
//	    events/        key: thread number (8 bytes) + event ID (8+8 bytes
//	                   ms, seq); value: the envelope's other fields as one
//	                   JSON line, '\n', then the Data bytes exactly as given
//
// All integers are big-endian, so byte order is (thread, ID) order: a
// thread's events are one contiguous key range and a cursor Seek finds a
// cursor's position in it. A thread's number comes from its tenant's bucket
// sequence when the thread is created.
//
// The layout is flat on purpose. A bucket per thread costs each append that
// thread's bucket page on top of its events' pages; with one events bucket
// per tenant, a commit that carries appends to many threads writes about one
// leaf page per thread plus shared branch pages, and small threads share
// leaves. Measured with 32 appenders over 32 threads: 31,300 pages written
// for 9,600 appends with a bucket per thread, 20,600 with this layout, and
// page writes are what a commit's time goes to.
//
// Keeping Data out of the JSON line stores it byte for byte (encoding/json
// would compact it and escape HTML characters) and lets a read copy it
// without scanning it again.
//
// # Durability
//
// bbolt syncs the file before a write transaction's Commit returns, and
// Append returns only after the transaction holding its events committed, so
// an acknowledged event survives a crash of the process (kill -9) or of the
// machine. bbolt's copy-on-write pages and double meta page keep the file
// consistent across a crash without a recovery step.
//
// Concurrent writes share transactions by group commit: the first writer to
// arrive commits at once, and the writes that arrive while its fsync is
// under way are committed together in the next transaction, so throughput
// grows with the number of writers while a lone writer waits for nothing
// but its own fsync. Every write goes this way (appends, threads, tasks,
// runs, the schedule index, the run queue), so that a request that makes
// several writes in a row shares each fsync with the other requests' writes
// rather than waiting for one of its own. (bbolt's DB.Batch was not used: it
// delays every batch, a lone write included, by MaxBatchDelay, 10ms by
// default, and re-runs a whole batch when one of its functions fails.)
//
// # Retention and followers
//
// When an Append takes a thread past MaxLen events, the same transaction
// deletes the oldest until exactly MaxLen remain and records the newest
// deleted ID as the thread's Trimmed watermark. Tail waits for appends made
// through the same *DB (the file is locked to one process) on a per-thread
// channel that each commit closes; it never polls.
package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
	bbolt "go.etcd.io/bbolt"
)

// Default option values.
const (
	// DefaultMaxLen is how many events a thread keeps when Options.MaxLen is 0.
	DefaultMaxLen = 100_000
	// DefaultTimeout is how long Open waits for the file lock when
	// Options.Timeout is 0.
	DefaultTimeout = time.Second
)

// Options configure a DB. The zero value means defaults.
type Options struct {
	// MaxLen is how many events each thread keeps; older events are removed
	// as new ones are appended. 0 means DefaultMaxLen.
	MaxLen int
	// Now is the clock that gives event IDs their milliseconds. nil means
	// time.Now.
	Now func() time.Time
	// Timeout is how long Open waits for another process to release the
	// file's lock. 0 means DefaultTimeout.
	Timeout time.Duration
}

// DB is an open bbolt file. It is safe for concurrent use by many goroutines;
// the file itself is locked to one process at a time.
type DB struct {
	bolt   *bbolt.DB
	maxLen int
	now    func() time.Time

	// Group commit: queue holds writes waiting for the next transaction;
	// busy is true while some writer leads a commit.
	mu    sync.Mutex
	queue []*writeReq
	busy  bool

	waiters   waiters
	closed    chan struct{}
	closeOnce sync.Once
}

var _ streams.Log = (*DB)(nil)

// Open opens or creates the bbolt file at path. It fails if another process
// holds the file for longer than opts.Timeout.
func Open(path string, opts Options) (*DB, error) {
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: timeout,
		// The hashmap freelist stays fast when retention frees pages at the
		// front of every busy thread.
		FreelistType: bbolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("store/bolt: open %s: %w", path, err)
	}
	err = b.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketStreams)
		return err
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("store/bolt: open %s: create buckets: %w", path, err)
	}
	db := &DB{
		bolt:   b,
		maxLen: opts.MaxLen,
		now:    opts.Now,
		closed: make(chan struct{}),
	}
	if db.maxLen <= 0 {
		db.maxLen = DefaultMaxLen
	}
	if db.now == nil {
		db.now = time.Now
	}
	db.waiters.m = make(map[string]*waiter)
	return db, nil
}

// Close ends waiting Tail calls with an error and closes the file, waiting
// for transactions under way to finish.
func (db *DB) Close() error {
	db.closeOnce.Do(func() { close(db.closed) })
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("store/bolt: close: %w", err)
	}
	return nil
}

// errClosed answers calls on a closed DB.
var errClosed = vigil.Errorf(vigil.Unavailable, "store is closed")

func (db *DB) isClosed() bool {
	select {
	case <-db.closed:
		return true
	default:
		return false
	}
}

// Bucket names.
var (
	bucketStreams = []byte("streams")
	bucketThreads = []byte("threads")
	bucketEvents  = []byte("events")
)

// Key sizes: a thread number, an event ID, and both.
const (
	numLen = 8
	idLen  = 16
	keyLen = numLen + idLen
)

// eventKey returns the key of thread number num's event id. bbolt keeps a
// reference to keys until the transaction ends, so every key is a fresh
// slice.
func eventKey(num uint64, id streams.ID) []byte {
	k := make([]byte, keyLen)
	binary.BigEndian.PutUint64(k, num)
	putID(k[numLen:], id)
	return k
}

func putID(b []byte, id streams.ID) {
	binary.BigEndian.PutUint64(b, id.Ms)
	binary.BigEndian.PutUint64(b[8:], id.Seq)
}

func getID(b []byte) streams.ID {
	return streams.ID{Ms: binary.BigEndian.Uint64(b), Seq: binary.BigEndian.Uint64(b[8:])}
}

// threadState is a thread's positions, rewritten by every Append.
type threadState struct {
	last    streams.ID // newest ID ever appended
	trimmed streams.ID // newest ID retention removed
	count   uint64     // events kept
}

// stateLen is the encoded size of a threadState.
const stateLen = 2*idLen + 8

// threadRef is a thread found in a transaction. record points into bbolt's
// memory and is valid only during the transaction.
type threadRef struct {
	threads *bbolt.Bucket // the tenant's threads bucket
	events  *bbolt.Bucket // the tenant's events bucket
	key     []byte        // the thread id
	num     uint64
	state   threadState
	record  []byte
}

// findThread looks up tenant's thread. It returns a vigil.NotFound error if
// the tenant has no such thread.
func findThread(tx *bbolt.Tx, tenant, thread string) (*threadRef, error) {
	tb := tx.Bucket(bucketStreams).Bucket([]byte(tenant))
	if tb == nil {
		return nil, notFound(thread)
	}
	ref := &threadRef{threads: tb.Bucket(bucketThreads), events: tb.Bucket(bucketEvents), key: []byte(thread)}
	if ref.threads == nil || ref.events == nil {
		return nil, fmt.Errorf("corrupt tenant %s: missing buckets", tenant)
	}
	v := ref.threads.Get(ref.key)
	if v == nil {
		return nil, notFound(thread)
	}
	if len(v) < numLen+stateLen {
		return nil, fmt.Errorf("corrupt thread %s: %d-byte value", thread, len(v))
	}
	ref.num = binary.BigEndian.Uint64(v)
	s := v[numLen:]
	ref.state = threadState{last: getID(s), trimmed: getID(s[idLen:]), count: binary.BigEndian.Uint64(s[2*idLen:])}
	ref.record = v[numLen+stateLen:]
	return ref, nil
}

// save writes the thread's number, state and record back.
func (r *threadRef) save() error {
	v := make([]byte, numLen+stateLen, numLen+stateLen+len(r.record))
	binary.BigEndian.PutUint64(v, r.num)
	putID(v[numLen:], r.state.last)
	putID(v[numLen+idLen:], r.state.trimmed)
	binary.BigEndian.PutUint64(v[numLen+2*idLen:], r.state.count)
	v = append(v, r.record...)
	return r.threads.Put(r.key, v)
}

// eventPrefix returns the key prefix of the thread's events.
func (r *threadRef) eventPrefix() []byte {
	p := make([]byte, numLen)
	binary.BigEndian.PutUint64(p, r.num)
	return p
}

func notFound(thread string) error {
	return vigil.Errorf(vigil.NotFound, "thread %s not found", thread)
}

// wrap adds the operation and thread to an unexpected error. Errors that
// carry a vigil code (not found, conflict, invalid) are already complete for
// the user and are returned as they are. wrap(op, thread, nil) is nil.
func wrap(op, thread string, err error) error {
	if err == nil {
		return nil
	}
	var ve *vigil.Error
	if errors.As(err, &ve) {
		return err
	}
	return fmt.Errorf("store/bolt: %s %s: %w", op, thread, err)
}

package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	bbolt "go.etcd.io/bbolt"
)

// This file implements tasks.Store. Tasks, runs and the schedule index
// live under two more top-level buckets, created on first write:
//
//	tasks/
//	  <tenant>/        one bucket per tenant
//	    task/          key: task id; value: JSON of tasks.Task (NextFire nil)
//	    order/         key: CreatedAt (8 bytes) + task id; value: empty.
//	                   ListTasks reads this: creation order, and a cursor
//	                   is a position in it.
//	    run/           key: run id; value: JSON of tasks.Run
//	    taskrun/       key: task id + 0x00 + CreatedAt (8) + run id; value:
//	                   empty. ListRuns reads a task's range backwards.
//	    key/           key: idempotency key (task id @ slot); value: run id
//	    next/          key: task id; value: JSON of tasks.ScheduleEntry
//	schedule/          key: priority rank (1 byte: 0 high, 1 normal, 2 low)
//	                   + Due in Unix milliseconds (8) + tenant + 0x00 + task
//	                   id; value: empty.
//	                   Due reads it in key order: by priority, then due
//	                   time, then tenant and task. It is the one cross-tenant
//	                   structure, and holds ids only.
//
// Times in keys are Unix nanoseconds (milliseconds in schedule/, as the
// contract compares due times) with the sign bit flipped, big-endian, so
// that byte order is time order. Ids never contain 0x00, so 0x00 ends
// an id inside a key.
//
// Writes go through the group commit that appends use (bolt.go, Durability),
// so that concurrent writers (the scheduler creating a burst of runs,
// workers updating them, requests creating tasks) share transactions and
// fsyncs, while a lone write commits at once. Each write function makes all
// its checks before its first write and reports an expected failure (not
// found, conflict) in a variable rather than as its return value, so that
// one loser of a race does not fail, and re-run, the transaction it shares.

var (
	_ tasks.Store              = (*DB)(nil)
	_ tasks.ThreadedCreator    = (*DB)(nil)
	_ tasks.ThreadedRunUpdater = (*DB)(nil)
)

// Bucket names of the tasks domain.
var (
	bucketTasks    = []byte("tasks")
	bucketSchedule = []byte("schedule")
	bucketTask     = []byte("task")
	bucketOrder    = []byte("order")
	bucketRun      = []byte("run")
	bucketTaskRun  = []byte("taskrun")
	bucketKey      = []byte("key")
	bucketNext     = []byte("next")
)

var tenantBuckets = [][]byte{bucketTask, bucketOrder, bucketRun, bucketTaskRun, bucketKey, bucketNext}

// tenantTx is a tenant's buckets in a transaction.
type tenantTx struct {
	task, order, run, taskrun, key, next *bbolt.Bucket
	schedule                             *bbolt.Bucket // nil in a read transaction before the first entry
}

// tenantView returns the tenant's buckets for reading, or nil if the tenant
// has never stored a task.
func tenantView(tx *bbolt.Tx, tenant string) (*tenantTx, error) {
	root := tx.Bucket(bucketTasks)
	if root == nil {
		return nil, nil
	}
	tb := root.Bucket([]byte(tenant))
	if tb == nil {
		return nil, nil
	}
	t := &tenantTx{
		task: tb.Bucket(bucketTask), order: tb.Bucket(bucketOrder), run: tb.Bucket(bucketRun),
		taskrun: tb.Bucket(bucketTaskRun), key: tb.Bucket(bucketKey), next: tb.Bucket(bucketNext),
		schedule: tx.Bucket(bucketSchedule),
	}
	if t.task == nil || t.order == nil || t.run == nil || t.taskrun == nil || t.key == nil || t.next == nil {
		return nil, fmt.Errorf("corrupt tasks bucket of tenant %s", tenant)
	}
	return t, nil
}

// tenantUpdate returns the tenant's buckets for writing, creating them (and
// the top-level buckets) when create is set; without create it returns
// nil for a tenant that has never stored a task.
func tenantUpdate(tx *bbolt.Tx, tenant string, create bool) (*tenantTx, error) {
	if !create {
		t, err := tenantView(tx, tenant)
		if t == nil || err != nil {
			return nil, err
		}
		if t.schedule == nil {
			if t.schedule, err = tx.CreateBucketIfNotExists(bucketSchedule); err != nil {
				return nil, err
			}
		}
		return t, nil
	}
	root, err := tx.CreateBucketIfNotExists(bucketTasks)
	if err != nil {
		return nil, err
	}
	tb, err := root.CreateBucketIfNotExists([]byte(tenant))
	if err != nil {
		return nil, err
	}
	bs := make([]*bbolt.Bucket, len(tenantBuckets))
	for i, name := range tenantBuckets {
		if bs[i], err = tb.CreateBucketIfNotExists(name); err != nil {
			return nil, err
		}
	}
	sched, err := tx.CreateBucketIfNotExists(bucketSchedule)
	if err != nil {
		return nil, err
	}
	return &tenantTx{task: bs[0], order: bs[1], run: bs[2], taskrun: bs[3], key: bs[4], next: bs[5], schedule: sched}, nil
}

// --- keys ---

func putTime(b []byte, t time.Time) {
	binary.BigEndian.PutUint64(b, uint64(t.UnixNano())^(1<<63))
}

// orderKey is a task's key in order/.
func orderKey(created time.Time, id string) []byte {
	k := make([]byte, 8+len(id))
	putTime(k, created)
	copy(k[8:], id)
	return k
}

// taskRunPrefix is the prefix of a task's keys in taskrun/.
func taskRunPrefix(taskID string) []byte {
	return append([]byte(taskID), 0)
}

// taskRunKey is a run's key in taskrun/.
func taskRunKey(taskID string, created time.Time, runID string) []byte {
	p := taskRunPrefix(taskID)
	k := make([]byte, len(p)+8+len(runID))
	copy(k, p)
	putTime(k[len(p):], created)
	copy(k[len(p)+8:], runID)
	return k
}

// scheduleKey is an entry's key in schedule/.
func scheduleKey(e tasks.ScheduleEntry) []byte {
	k := make([]byte, 1+8, 1+8+len(e.Tenant)+1+len(e.TaskID))
	k[0] = byte(e.Priority.Rank())
	binary.BigEndian.PutUint64(k[1:], uint64(e.Due.UnixMilli())^(1<<63))
	k = append(k, e.Tenant...)
	k = append(k, 0)
	return append(k, e.TaskID...)
}

// --- helpers ---

func taskNotFound(id string) error { return vigil.Errorf(vigil.NotFound, "task %s not found", id) }
func runNotFound(id string) error  { return vigil.Errorf(vigil.NotFound, "run %s not found", id) }

func checkID(field, id string) error {
	if !vigil.ValidID(id) {
		return vigil.FieldError(field, "invalid id %q", id)
	}
	return nil
}

// checkIDs checks field/id pairs.
func checkIDs(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := checkID(pairs[i], pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// batch runs fn in a shared write transaction, a group commit (see write).
// fn reports an expected failure by setting *failed (after making no
// writes) and returning nil; a returned error is unexpected and fails the
// transaction. fn may run more than once; it must set its results afresh
// each time.
func (db *DB) batch(ctx context.Context, op, id string, fn func(tx *bbolt.Tx, failed *error) error) error {
	err := db.write(ctx, "", func(tx *bbolt.Tx, _ uint64, failed *error) error {
		return fn(tx, failed)
	})
	return wrap(op, id, err)
}

// view runs fn in a read transaction.
func (db *DB) view(ctx context.Context, op, id string, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.isClosed() {
		return errClosed
	}
	return wrap(op, id, db.bolt.View(fn))
}

func getTask(t *tenantTx, id string) (tasks.Task, bool, error) {
	v := t.task.Get([]byte(id))
	if v == nil {
		return tasks.Task{}, false, nil
	}
	var task tasks.Task
	if err := json.Unmarshal(v, &task); err != nil {
		return tasks.Task{}, false, fmt.Errorf("corrupt task %s: %w", id, err)
	}
	return task, true, nil
}

func getRun(t *tenantTx, id string) (tasks.Run, bool, error) {
	v := t.run.Get([]byte(id))
	if v == nil {
		return tasks.Run{}, false, nil
	}
	var r tasks.Run
	if err := json.Unmarshal(v, &r); err != nil {
		return tasks.Run{}, false, fmt.Errorf("corrupt run %s: %w", id, err)
	}
	return r, true, nil
}

func getEntry(t *tenantTx, taskID string) (tasks.ScheduleEntry, bool, error) {
	v := t.next.Get([]byte(taskID))
	if v == nil {
		return tasks.ScheduleEntry{}, false, nil
	}
	var e tasks.ScheduleEntry
	if err := json.Unmarshal(v, &e); err != nil {
		return tasks.ScheduleEntry{}, false, fmt.Errorf("corrupt schedule entry of %s: %w", taskID, err)
	}
	return e, true, nil
}

func encodeTask(t tasks.Task) ([]byte, error) {
	t.NextFire = nil
	return json.Marshal(t)
}

// --- tasks ---

// CreateTask implements tasks.Store.
func (db *DB) CreateTask(ctx context.Context, t tasks.Task) error {
	if err := checkIDs("tenant", t.Tenant, "id", t.ID); err != nil {
		return err
	}
	v, err := encodeTask(t)
	if err != nil {
		return fmt.Errorf("store/bolt: create task %s: %w", t.ID, err)
	}
	return db.batch(ctx, "create task", t.ID, func(tx *bbolt.Tx, failed *error) error {
		b, err := tenantUpdate(tx, t.Tenant, true)
		if err != nil {
			return err
		}
		if b.task.Get([]byte(t.ID)) != nil {
			*failed = vigil.Errorf(vigil.Conflict, "task %s already exists", t.ID)
			return nil
		}
		return putTask(b, t, v)
	})
}

// putTask writes the new task t, encoded as v, and its place in the
// creation order.
func putTask(b *tenantTx, t tasks.Task, v []byte) error {
	if err := b.task.Put([]byte(t.ID), v); err != nil {
		return err
	}
	return b.order.Put(orderKey(t.CreatedAt, t.ID), nil)
}

// CreateThreadedTask implements tasks.ThreadedCreator: one write makes the
// thread, the task and the event, in a transaction shared with the other
// writes of its group commit. log must be db itself.
func (db *DB) CreateThreadedTask(ctx context.Context, log streams.Log, th streams.Thread, t tasks.Task, ev streams.Event) (streams.ID, error) {
	if own, ok := log.(*DB); !ok || own != db {
		return streams.ID{}, fmt.Errorf("store/bolt: create task %s: threads in %T: %w", t.ID, log, errors.ErrUnsupported)
	}
	if err := checkThread(th); err != nil {
		return streams.ID{}, err
	}
	if err := checkIDs("tenant", t.Tenant, "id", t.ID); err != nil {
		return streams.ID{}, err
	}
	if t.Tenant != th.Tenant || t.ThreadID != th.ID {
		return streams.ID{}, vigil.FieldError("thread_id", "task %s of %s/%s is not on thread %s/%s", t.ID, t.Tenant, t.ThreadID, th.Tenant, th.ID)
	}
	rec, err := json.Marshal(th)
	if err != nil {
		return streams.ID{}, fmt.Errorf("store/bolt: create thread %s: %w", th.ID, err)
	}
	v, err := encodeTask(t)
	if err != nil {
		return streams.ID{}, fmt.Errorf("store/bolt: create task %s: %w", t.ID, err)
	}
	vals, err := encodeEvents([]streams.Event{ev})
	if err != nil {
		return streams.ID{}, wrap("create task", t.ID, err)
	}
	var ids []streams.ID
	err = db.write(ctx, waitKey(th.Tenant, th.ID), func(tx *bbolt.Tx, ms uint64, failed *error) error {
		ids = nil
		// Every check before the first write: the thread's, then the
		// task's, so that a conflict leaves nothing behind.
		ref, err := newThread(tx, th, failed)
		if ref == nil || err != nil {
			return err
		}
		b, err := tenantUpdate(tx, t.Tenant, true)
		if err != nil {
			return err
		}
		if b.task.Get([]byte(t.ID)) != nil {
			*failed = vigil.Errorf(vigil.Conflict, "task %s already exists", t.ID)
			return nil
		}
		ref.record = rec
		if err := ref.save(); err != nil {
			return err
		}
		if err := putTask(b, t, v); err != nil {
			return err
		}
		ids, err = db.appendTo(ref, vals, ms)
		return err
	})
	if err != nil {
		return streams.ID{}, wrap("create task", t.ID, err)
	}
	return ids[0], nil
}

// Task implements tasks.Store.
func (db *DB) Task(ctx context.Context, tenant, id string) (tasks.Task, error) {
	if !vigil.ValidID(tenant) || !vigil.ValidID(id) {
		return tasks.Task{}, taskNotFound(id)
	}
	var task tasks.Task
	err := db.view(ctx, "get task", id, func(tx *bbolt.Tx) error {
		b, err := tenantView(tx, tenant)
		if err != nil {
			return err
		}
		if b == nil {
			return taskNotFound(id)
		}
		t, ok, err := getTask(b, id)
		if err != nil {
			return err
		}
		if !ok {
			return taskNotFound(id)
		}
		task = t
		return nil
	})
	return task, err
}

// UpdateTask implements tasks.Store.
func (db *DB) UpdateTask(ctx context.Context, t tasks.Task) (int64, error) {
	if err := checkIDs("tenant", t.Tenant, "id", t.ID); err != nil {
		return 0, err
	}
	expect := t.Version
	err := db.batch(ctx, "update task", t.ID, func(tx *bbolt.Tx, failed *error) error {
		b, err := tenantUpdate(tx, t.Tenant, false)
		if err != nil {
			return err
		}
		if b == nil {
			*failed = taskNotFound(t.ID)
			return nil
		}
		cur, ok, err := getTask(b, t.ID)
		if err != nil {
			return err
		}
		if !ok {
			*failed = taskNotFound(t.ID)
			return nil
		}
		if cur.Version != expect {
			*failed = vigil.Errorf(vigil.Conflict, "task %s is at version %d, not %d", t.ID, cur.Version, expect)
			return nil
		}
		next := t
		next.CreatedAt, next.Version = cur.CreatedAt, expect+1
		v, err := encodeTask(next)
		if err != nil {
			return err
		}
		return b.task.Put([]byte(t.ID), v)
	})
	if err != nil {
		return 0, err
	}
	return expect + 1, nil
}

// cursor encoding: hex of the index key the page ended at.

func decodeCursor(c string) ([]byte, error) {
	if c == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(c)
	if err != nil || len(b) < 8 {
		return nil, vigil.FieldError("cursor", "invalid cursor %q", c)
	}
	return b, nil
}

func checkLimit(limit int) error {
	if limit < 1 || limit > tasks.MaxListLimit {
		return vigil.FieldError("limit", "must be 1 to %d, got %d", tasks.MaxListLimit, limit)
	}
	return nil
}

func matches(t tasks.Task, f tasks.TaskFilter) bool {
	return (f.Status == "" || t.Status == f.Status) &&
		(f.Kind == "" || t.Kind == f.Kind) &&
		(f.Owner == "" || t.Owner == f.Owner) &&
		(f.Event == "" || t.Trigger.Event == f.Event)
}

// ListTasks implements tasks.Store. It scans the tenant's tasks in
// creation order from the cursor, so a selective filter over many tasks
// reads many; tenants are small enough today, and an index per filter
// field can come when they are not.
func (db *DB) ListTasks(ctx context.Context, tenant string, f tasks.TaskFilter) (tasks.TaskPage, error) {
	if err := checkLimit(f.Limit); err != nil {
		return tasks.TaskPage{}, err
	}
	after, err := decodeCursor(f.After)
	if err != nil {
		return tasks.TaskPage{}, err
	}
	page := tasks.TaskPage{Tasks: []tasks.Task{}}
	if !vigil.ValidID(tenant) {
		return page, nil
	}
	err = db.view(ctx, "list tasks", tenant, func(tx *bbolt.Tx) error {
		b, err := tenantView(tx, tenant)
		if b == nil || err != nil {
			return err
		}
		c := b.order.Cursor()
		var k []byte
		if after == nil {
			k, _ = c.First()
		} else if k, _ = c.Seek(after); k != nil && bytes.Equal(k, after) {
			k, _ = c.Next()
		}
		var last []byte
		for ; k != nil; k, _ = c.Next() {
			t, ok, err := getTask(b, string(k[8:]))
			if err != nil {
				return err
			}
			if !ok || !matches(t, f) {
				continue
			}
			if len(page.Tasks) == f.Limit {
				page.Next = hex.EncodeToString(last)
				return nil
			}
			page.Tasks = append(page.Tasks, t)
			last = bytes.Clone(k)
		}
		return nil
	})
	if err != nil {
		return tasks.TaskPage{}, err
	}
	return page, nil
}

// DeleteTask implements tasks.Store.
func (db *DB) DeleteTask(ctx context.Context, tenant, id string) error {
	if !vigil.ValidID(tenant) || !vigil.ValidID(id) {
		return taskNotFound(id)
	}
	return db.batch(ctx, "delete task", id, func(tx *bbolt.Tx, failed *error) error {
		b, err := tenantUpdate(tx, tenant, false)
		if err != nil {
			return err
		}
		if b == nil {
			*failed = taskNotFound(id)
			return nil
		}
		t, ok, err := getTask(b, id)
		if err != nil {
			return err
		}
		if !ok {
			*failed = taskNotFound(id)
			return nil
		}
		// The task's runs, their keys and index entries.
		prefix := taskRunPrefix(id)
		var runKeys [][]byte
		c := b.taskrun.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			runKeys = append(runKeys, bytes.Clone(k))
		}
		for _, k := range runKeys {
			runID := string(k[len(prefix)+8:])
			if r, ok, err := getRun(b, runID); err != nil {
				return err
			} else if ok {
				if err := b.key.Delete([]byte(r.IdempotencyKey())); err != nil {
					return err
				}
			}
			if err := b.run.Delete([]byte(runID)); err != nil {
				return err
			}
			if err := b.taskrun.Delete(k); err != nil {
				return err
			}
		}
		if err := clearEntry(b, tenant, id); err != nil {
			return err
		}
		if err := b.order.Delete(orderKey(t.CreatedAt, id)); err != nil {
			return err
		}
		return b.task.Delete([]byte(id))
	})
}

// --- runs ---

// CreateRun implements tasks.Store.
func (db *DB) CreateRun(ctx context.Context, r tasks.Run) error {
	if err := checkIDs("tenant", r.Tenant, "id", r.ID, "task_id", r.TaskID); err != nil {
		return err
	}
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("store/bolt: create run %s: %w", r.ID, err)
	}
	return db.batch(ctx, "create run", r.ID, func(tx *bbolt.Tx, failed *error) error {
		return createRunTx(tx, r, v, failed)
	})
}

// createRunTx is CreateRun's write of r, encoded as v, in tx. An expected
// failure (the task is missing, the id or the key is taken) is set in
// *failed, with nothing written.
func createRunTx(tx *bbolt.Tx, r tasks.Run, v []byte, failed *error) error {
	b, err := tenantUpdate(tx, r.Tenant, false)
	if err != nil {
		return err
	}
	if b == nil || b.task.Get([]byte(r.TaskID)) == nil {
		*failed = taskNotFound(r.TaskID)
		return nil
	}
	if b.run.Get([]byte(r.ID)) != nil {
		*failed = vigil.Errorf(vigil.Conflict, "run %s already exists", r.ID)
		return nil
	}
	key := []byte(r.IdempotencyKey())
	if other := b.key.Get(key); other != nil {
		*failed = vigil.Errorf(vigil.Conflict, "task %s already has run %s for slot %s", r.TaskID, other, r.Slot.UTC().Format(time.RFC3339Nano))
		return nil
	}
	if err := b.run.Put([]byte(r.ID), v); err != nil {
		return err
	}
	if err := b.key.Put(key, []byte(r.ID)); err != nil {
		return err
	}
	return b.taskrun.Put(taskRunKey(r.TaskID, r.CreatedAt, r.ID), nil)
}

// Run implements tasks.Store.
func (db *DB) Run(ctx context.Context, tenant, id string) (tasks.Run, error) {
	if !vigil.ValidID(tenant) || !vigil.ValidID(id) {
		return tasks.Run{}, runNotFound(id)
	}
	var run tasks.Run
	err := db.view(ctx, "get run", id, func(tx *bbolt.Tx) error {
		b, err := tenantView(tx, tenant)
		if err != nil {
			return err
		}
		if b == nil {
			return runNotFound(id)
		}
		r, ok, err := getRun(b, id)
		if err != nil {
			return err
		}
		if !ok {
			return runNotFound(id)
		}
		run = r
		return nil
	})
	return run, err
}

// UpdateRun implements tasks.Store.
func (db *DB) UpdateRun(ctx context.Context, r tasks.Run, from tasks.RunStatus) error {
	if err := checkIDs("tenant", r.Tenant, "id", r.ID); err != nil {
		return err
	}
	return db.batch(ctx, "update run", r.ID, func(tx *bbolt.Tx, failed *error) error {
		return updateRun(tx, r, from, failed)
	})
}

// UpdateRunThreaded implements tasks.ThreadedRunUpdater: the run's update
// and the append of evs in one write, in a transaction shared with the
// other writes of its group commit. log must be db itself.
func (db *DB) UpdateRunThreaded(ctx context.Context, log streams.Log, r tasks.Run, from tasks.RunStatus, thread string, evs []streams.Event) error {
	if own, ok := log.(*DB); !ok || own != db {
		return fmt.Errorf("store/bolt: update run %s: threads in %T: %w", r.ID, log, errors.ErrUnsupported)
	}
	if err := checkIDs("tenant", r.Tenant, "id", r.ID, "thread_id", thread); err != nil {
		return err
	}
	vals, err := encodeEvents(evs)
	if err != nil {
		return wrap("update run", r.ID, err)
	}
	err = db.write(ctx, waitKey(r.Tenant, thread), func(tx *bbolt.Tx, ms uint64, failed *error) error {
		if err := updateRun(tx, r, from, failed); err != nil || *failed != nil || len(vals) == 0 {
			return err
		}
		ref, err := findThread(tx, r.Tenant, thread)
		if vigil.ErrorCode(err) == vigil.NotFound {
			return nil // the task went with its thread; the run's update stands
		}
		if err != nil {
			return err
		}
		_, err = db.appendTo(ref, vals, ms)
		return err
	})
	return wrap("update run", r.ID, err)
}

// updateRun is UpdateRun's write in tx: a failure of the request's own
// sets *failed, having written nothing.
func updateRun(tx *bbolt.Tx, r tasks.Run, from tasks.RunStatus, failed *error) error {
	b, err := tenantUpdate(tx, r.Tenant, false)
	if err != nil {
		return err
	}
	if b == nil {
		*failed = runNotFound(r.ID)
		return nil
	}
	cur, ok, err := getRun(b, r.ID)
	if err != nil {
		return err
	}
	switch {
	case !ok:
		*failed = runNotFound(r.ID)
		return nil
	case cur.TaskID != r.TaskID || !cur.Slot.Equal(r.Slot):
		*failed = vigil.FieldError("task_id", "run %s belongs to task %s at slot %s; its task and slot cannot change",
			r.ID, cur.TaskID, cur.Slot.UTC().Format(time.RFC3339Nano))
		return nil
	case cur.Status != from:
		*failed = vigil.Errorf(vigil.Conflict, "run %s is %s, not %s", r.ID, cur.Status, from)
		return nil
	}
	next := r
	next.CreatedAt = cur.CreatedAt
	v, err := json.Marshal(next)
	if err != nil {
		return err
	}
	return b.run.Put([]byte(r.ID), v)
}

// ListRuns implements tasks.Store.
func (db *DB) ListRuns(ctx context.Context, tenant string, f tasks.RunFilter) (tasks.RunPage, error) {
	if err := checkLimit(f.Limit); err != nil {
		return tasks.RunPage{}, err
	}
	after, err := decodeCursor(f.After)
	if err != nil {
		return tasks.RunPage{}, err
	}
	page := tasks.RunPage{Runs: []tasks.Run{}}
	if !vigil.ValidID(tenant) || !vigil.ValidID(f.TaskID) {
		return page, nil
	}
	err = db.view(ctx, "list runs", f.TaskID, func(tx *bbolt.Tx) error {
		b, err := tenantView(tx, tenant)
		if b == nil || err != nil {
			return err
		}
		prefix := taskRunPrefix(f.TaskID)
		c := b.taskrun.Cursor()
		// Position on the newest key before the cursor (or the end of
		// the task's range), then walk backwards.
		var k []byte
		if after == nil {
			end := append(bytes.Clone(prefix[:len(prefix)-1]), 1)
			if k, _ = c.Seek(end); k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		} else {
			if k, _ = c.Seek(append(bytes.Clone(prefix), after...)); k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		}
		var last []byte
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
			r, ok, err := getRun(b, string(k[len(prefix)+8:]))
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if len(page.Runs) == f.Limit {
				page.Next = hex.EncodeToString(last)
				return nil
			}
			page.Runs = append(page.Runs, r)
			last = bytes.Clone(k[len(prefix):])
		}
		return nil
	})
	if err != nil {
		return tasks.RunPage{}, err
	}
	return page, nil
}

// --- schedule index ---

func checkEntry(e tasks.ScheduleEntry) error {
	if err := checkIDs("tenant", e.Tenant, "task_id", e.TaskID); err != nil {
		return err
	}
	if e.Priority.Rank() < 0 {
		return vigil.FieldError("priority", "must be high, normal or low, got %q", e.Priority)
	}
	return nil
}

// putEntry replaces the task's entry with e.
func putEntry(b *tenantTx, e tasks.ScheduleEntry) error {
	if err := clearEntry(b, e.Tenant, e.TaskID); err != nil {
		return err
	}
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := b.next.Put([]byte(e.TaskID), v); err != nil {
		return err
	}
	return b.schedule.Put(scheduleKey(e), nil)
}

// clearEntry removes the task's entry, if any.
func clearEntry(b *tenantTx, tenant, taskID string) error {
	old, ok, err := getEntry(b, taskID)
	if err != nil || !ok {
		return err
	}
	old.Tenant, old.TaskID = tenant, taskID
	if err := b.schedule.Delete(scheduleKey(old)); err != nil {
		return err
	}
	return b.next.Delete([]byte(taskID))
}

// SetNext implements tasks.Store.
func (db *DB) SetNext(ctx context.Context, e tasks.ScheduleEntry) error {
	if err := checkEntry(e); err != nil {
		return err
	}
	return db.batch(ctx, "set next", e.TaskID, func(tx *bbolt.Tx, failed *error) error {
		b, err := tenantUpdate(tx, e.Tenant, false)
		if err != nil {
			return err
		}
		if b == nil || b.task.Get([]byte(e.TaskID)) == nil {
			*failed = taskNotFound(e.TaskID)
			return nil
		}
		return putEntry(b, e)
	})
}

// AdvanceNext implements tasks.Store.
func (db *DB) AdvanceNext(ctx context.Context, from tasks.ScheduleEntry, to *tasks.ScheduleEntry) error {
	if err := checkAdvance(from, to); err != nil {
		return err
	}
	return db.batch(ctx, "advance next", from.TaskID, func(tx *bbolt.Tx, failed *error) error {
		return advanceNextTx(tx, from, to, failed)
	})
}

// checkAdvance checks AdvanceNext's arguments.
func checkAdvance(from tasks.ScheduleEntry, to *tasks.ScheduleEntry) error {
	if err := checkIDs("tenant", from.Tenant, "task_id", from.TaskID); err != nil {
		return err
	}
	if to != nil {
		if to.Tenant != from.Tenant || to.TaskID != from.TaskID {
			return vigil.FieldError("task_id", "an entry advances to the same task (%s/%s), not %s/%s", from.Tenant, from.TaskID, to.Tenant, to.TaskID)
		}
		if err := checkEntry(*to); err != nil {
			return err
		}
	}
	return nil
}

// advanceNextTx is AdvanceNext's write in tx. A changed entry is set in
// *failed (vigil.Conflict), with nothing written.
func advanceNextTx(tx *bbolt.Tx, from tasks.ScheduleEntry, to *tasks.ScheduleEntry, failed *error) error {
	b, err := tenantUpdate(tx, from.Tenant, false)
	if err != nil {
		return err
	}
	var cur tasks.ScheduleEntry
	ok := false
	if b != nil {
		if cur, ok, err = getEntry(b, from.TaskID); err != nil {
			return err
		}
	}
	if !ok || !cur.Slot.Equal(from.Slot) {
		*failed = vigil.Errorf(vigil.Conflict, "task %s: schedule entry for %s changed", from.TaskID, from.Slot.UTC().Format(time.RFC3339Nano))
		return nil
	}
	if to == nil {
		return clearEntry(b, from.Tenant, from.TaskID)
	}
	return putEntry(b, *to)
}

// ClearNext implements tasks.Store.
func (db *DB) ClearNext(ctx context.Context, tenant, taskID string) error {
	if !vigil.ValidID(tenant) || !vigil.ValidID(taskID) {
		return nil
	}
	return db.batch(ctx, "clear next", taskID, func(tx *bbolt.Tx, failed *error) error {
		b, err := tenantUpdate(tx, tenant, false)
		if b == nil || err != nil {
			return err
		}
		return clearEntry(b, tenant, taskID)
	})
}

// Next implements tasks.Store.
func (db *DB) Next(ctx context.Context, tenant, taskID string) (tasks.ScheduleEntry, error) {
	none := vigil.Errorf(vigil.NotFound, "task %s has no next fire time", taskID)
	if !vigil.ValidID(tenant) || !vigil.ValidID(taskID) {
		return tasks.ScheduleEntry{}, none
	}
	var e tasks.ScheduleEntry
	err := db.view(ctx, "get next", taskID, func(tx *bbolt.Tx) error {
		b, err := tenantView(tx, tenant)
		if err != nil {
			return err
		}
		if b == nil {
			return none
		}
		got, ok, err := getEntry(b, taskID)
		if err != nil {
			return err
		}
		if !ok {
			return none
		}
		e = got
		return nil
	})
	return e, err
}

// Due implements tasks.Store.
func (db *DB) Due(ctx context.Context, now time.Time, limit int) ([]tasks.ScheduleEntry, error) {
	if limit < 1 || limit > tasks.MaxDueLimit {
		return nil, vigil.FieldError("limit", "must be 1 to %d, got %d", tasks.MaxDueLimit, limit)
	}
	var out []tasks.ScheduleEntry
	err := db.view(ctx, "due", "", func(tx *bbolt.Tx) error {
		sched := tx.Bucket(bucketSchedule)
		if sched == nil {
			return nil
		}
		c := sched.Cursor()
		for rank := range len(tasks.Priorities) {
			for k, _ := c.Seek([]byte{byte(rank)}); k != nil && k[0] == byte(rank) && len(out) < limit; k, _ = c.Next() {
				if len(k) < 9 || int64(binary.BigEndian.Uint64(k[1:9])^(1<<63)) > now.UnixMilli() {
					break
				}
				tenant, taskID, ok := bytes.Cut(k[9:], []byte{0})
				if !ok {
					return fmt.Errorf("corrupt schedule key %x", k)
				}
				b, err := tenantView(tx, string(tenant))
				if err != nil {
					return err
				}
				if b == nil {
					return fmt.Errorf("schedule entry of missing tenant %s", tenant)
				}
				e, ok, err := getEntry(b, string(taskID))
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("schedule key without entry: %s/%s", tenant, taskID)
				}
				out = append(out, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

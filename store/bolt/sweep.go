package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/tasks"
	bbolt "go.etcd.io/bbolt"
)

// This file implements tasks.SweepStore: walks over the run and task
// buckets of every tenant. Each tenant is read in one read transaction and
// its matches are collected; fn is called after the transaction ends, so
// that it may write (a write that grows the file waits for every read
// transaction to end). A record is decoded only if its JSON holds the
// status the walk looks for (encoding/json writes no spaces), so a walk
// costs a byte search per record and a decode per match.

var _ tasks.SweepStore = (*DB)(nil)

var (
	queuedJSON = []byte(`"status":"queued"`)
	activeJSON = []byte(`"status":"active"`)
)

// QueuedRuns implements tasks.SweepStore.
func (db *DB) QueuedRuns(ctx context.Context, before time.Time, fn func(tasks.Run) error) error {
	var bad error
	err := db.eachTenant(ctx, "sweep queued runs", func(b *tenantTx, tenant string) ([]func() error, error) {
		var calls []func() error
		err := b.run.ForEach(func(k, v []byte) error {
			if !bytes.Contains(v, queuedJSON) {
				return nil
			}
			var r tasks.Run
			if err := json.Unmarshal(v, &r); err != nil {
				bad = errors.Join(bad, fmt.Errorf("corrupt run %s/%s: %w", tenant, k, err))
				return nil
			}
			if r.Status == tasks.RunQueued && r.UpdatedAt.Before(before) {
				calls = append(calls, func() error { return fn(r) })
			}
			return nil
		})
		return calls, err
	})
	if err == nil && bad != nil {
		err = fmt.Errorf("store/bolt: sweep queued runs: %w", bad)
	}
	return err
}

// ActiveOneShots implements tasks.SweepStore.
func (db *DB) ActiveOneShots(ctx context.Context, before time.Time, fn func(tasks.Task) error) error {
	var bad error
	err := db.eachTenant(ctx, "sweep one-shot tasks", func(b *tenantTx, tenant string) ([]func() error, error) {
		var calls []func() error
		err := b.task.ForEach(func(k, v []byte) error {
			if !bytes.Contains(v, activeJSON) {
				return nil
			}
			var t tasks.Task
			if err := json.Unmarshal(v, &t); err != nil {
				bad = errors.Join(bad, fmt.Errorf("corrupt task %s/%s: %w", tenant, k, err))
				return nil
			}
			if t.Status == tasks.StatusActive && !t.Trigger.At.IsZero() && t.Trigger.At.Before(before) {
				calls = append(calls, func() error { return fn(t) })
			}
			return nil
		})
		return calls, err
	})
	if err == nil && bad != nil {
		err = fmt.Errorf("store/bolt: sweep one-shot tasks: %w", bad)
	}
	return err
}

// eachTenant calls scan for each tenant that has stored tasks, in a read
// transaction of its own, and then, outside it, the calls scan returned,
// in order. It stops at the first error.
func (db *DB) eachTenant(ctx context.Context, op string, scan func(b *tenantTx, tenant string) ([]func() error, error)) error {
	var tenants []string
	err := db.view(ctx, op, "tenants", func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketTasks)
		if root == nil {
			return nil
		}
		return root.ForEachBucket(func(k []byte) error {
			tenants = append(tenants, string(k))
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, tenant := range tenants {
		var calls []func() error
		err := db.view(ctx, op, tenant, func(tx *bbolt.Tx) error {
			b, err := tenantView(tx, tenant)
			if b == nil || err != nil {
				return err
			}
			calls, err = scan(b, tenant)
			return err
		})
		if err != nil {
			return err
		}
		for _, call := range calls {
			if err := call(); err != nil {
				return err
			}
		}
	}
	return nil
}

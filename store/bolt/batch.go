package bolt

// This file implements tasks.BatchStore: the scheduler's reads and writes
// for a group of due entries, each step one transaction (a read, or one
// share of a group commit) instead of one per entry. Each element keeps
// its single call's checks and writes; an element that fails writes
// nothing and leaves the others be.

import (
	"context"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
)

var _ tasks.BatchStore = (*DB)(nil)

// TaskBatch implements tasks.BatchStore in one read transaction.
func (db *DB) TaskBatch(ctx context.Context, refs []tasks.TaskRef) ([]tasks.Task, error) {
	out := make([]tasks.Task, len(refs))
	err := db.view(ctx, "read tasks", fmt.Sprint(len(refs)), func(tx *bbolt.Tx) error {
		for i, r := range refs {
			if !vigil.ValidID(r.Tenant) || !vigil.ValidID(r.ID) {
				continue
			}
			b, err := tenantView(tx, r.Tenant)
			if err != nil {
				return err
			}
			if b == nil {
				continue
			}
			t, ok, err := getTask(b, r.ID)
			if err != nil {
				return err
			}
			if ok {
				out[i] = t
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CreateRuns implements tasks.BatchStore: every run in one share of a
// group commit.
func (db *DB) CreateRuns(ctx context.Context, runs []tasks.Run) []error {
	errs := make([]error, len(runs))
	vals := make([][]byte, len(runs))
	var todo []int
	for i, r := range runs {
		if err := checkIDs("tenant", r.Tenant, "id", r.ID, "task_id", r.TaskID); err != nil {
			errs[i] = err
			continue
		}
		v, err := json.Marshal(r)
		if err != nil {
			errs[i] = fmt.Errorf("store/bolt: create run %s: %w", r.ID, err)
			continue
		}
		vals[i], todo = v, append(todo, i)
	}
	db.batchEach(ctx, "create runs", errs, todo, func(tx *bbolt.Tx, i int, failed *error) error {
		return createRunTx(tx, runs[i], vals[i], failed)
	})
	return errs
}

// AdvanceNextBatch implements tasks.BatchStore: every move in one share
// of a group commit.
func (db *DB) AdvanceNextBatch(ctx context.Context, moves []tasks.NextMove) []error {
	errs := make([]error, len(moves))
	var todo []int
	for i, m := range moves {
		if err := checkAdvance(m.From, m.To); err != nil {
			errs[i] = err
			continue
		}
		todo = append(todo, i)
	}
	db.batchEach(ctx, "advance next", errs, todo, func(tx *bbolt.Tx, i int, failed *error) error {
		return advanceNextTx(tx, moves[i].From, moves[i].To, failed)
	})
	return errs
}

// batchEach runs fn for each element i of todo in one shared write
// transaction and sets errs[i] to the failure fn reports for it (fn
// writes nothing then). An unexpected error fails every element of todo.
func (db *DB) batchEach(ctx context.Context, op string, errs []error, todo []int, fn func(tx *bbolt.Tx, i int, failed *error) error) {
	if len(todo) == 0 {
		return
	}
	err := db.batch(ctx, op, fmt.Sprint(len(todo)), func(tx *bbolt.Tx, _ *error) error {
		for _, i := range todo { // a transaction run again sets every result afresh
			errs[i] = nil
			if err := fn(tx, i, &errs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for _, i := range todo {
			errs[i] = err
		}
	}
}

package redis

// This file implements tasks.SweepStore: walks over the run and task
// hashes of every tenant. No index lists a tenant's queued runs or active
// one-shot tasks across tenants, so a walk SCANs the keyspace for the
// hashes by pattern (TYPE hash, sweepScanCount keys a step), reads the
// status of each page's hashes in one pipeline and their records, for
// those that match, in a second one. A walk costs a SCAN over every key of
// the deployment: the Scheduler makes it once per SweepEvery. On Redis
// Cluster it scans every master in turn, reading each node's keys from
// that node.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil/tasks"
)

var _ tasks.SweepStore = (*Log)(nil)

// sweepScanCount is the COUNT of each SCAN step of a sweep.
const sweepScanCount = 1000

// QueuedRuns implements tasks.SweepStore.
func (l *Log) QueuedRuns(ctx context.Context, before time.Time, fn func(tasks.Run) error) error {
	const what = "sweep queued runs"
	pattern := globEscape(l.prefix) + ":t:*:tasks:{*}:run:*"
	return l.sweep(ctx, what, pattern, string(tasks.RunQueued), []string{"json", "created"},
		func(key string, vals []any) (bad, err error) {
			js, ok1 := vals[0].(string)
			created, ok2 := vals[1].(string)
			if !ok1 || !ok2 {
				return nil, nil // deleted since its status was read
			}
			r, err := decodeRun(js, created)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err), nil
			}
			if r.Status == tasks.RunQueued && r.UpdatedAt.Before(before) {
				return nil, fn(r)
			}
			return nil, nil
		})
}

// ActiveOneShots implements tasks.SweepStore.
func (l *Log) ActiveOneShots(ctx context.Context, before time.Time, fn func(tasks.Task) error) error {
	const what = "sweep one-shot tasks"
	pattern := globEscape(l.prefix) + ":t:*:tasks:{*}:task:*"
	return l.sweep(ctx, what, pattern, string(tasks.StatusActive), taskFields,
		func(key string, vals []any) (bad, err error) {
			t, found, err := taskFromFields(vals)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err), nil
			}
			if found && t.Status == tasks.StatusActive && !t.Trigger.At.IsZero() && t.Trigger.At.Before(before) {
				return nil, fn(t)
			}
			return nil, nil
		})
}

// sweep walks the hashes matching pattern whose status field is status:
// for each it reads fields and calls each with them. each returns bad for
// a record it cannot decode, which is skipped and reported after the walk,
// and err (fn's) to stop the walk.
func (l *Log) sweep(ctx context.Context, what, pattern, status string, fields []string, each func(key string, vals []any) (bad, err error)) error {
	var bad error
	decode := func(key string, vals []any) error {
		b, err := each(key, vals)
		bad = errors.Join(bad, b)
		return err
	}
	var err error
	if cc, ok := l.client.(*goredis.ClusterClient); ok {
		var mu sync.Mutex
		var nodes []*goredis.Client
		err = cc.ForEachMaster(ctx, func(_ context.Context, c *goredis.Client) error {
			mu.Lock() // ForEachMaster runs in parallel: collect, then walk in turn
			defer mu.Unlock()
			nodes = append(nodes, c)
			return nil
		})
		if err != nil {
			err = redisFailure{err}
		}
		for _, c := range nodes {
			if err != nil {
				break
			}
			err = sweepNode(ctx, c, pattern, status, fields, decode)
		}
	} else {
		err = sweepNode(ctx, l.client, pattern, status, fields, decode)
	}
	if f, ok := errors.AsType[redisFailure](err); ok {
		return wrap(what, f.err)
	}
	if err != nil {
		return err // fn's own error, or ctx's
	}
	if bad != nil {
		return fmt.Errorf("store/redis: %s: %w", what, bad)
	}
	return nil
}

// sweepNode walks one node's keys for sweep.
func sweepNode(ctx context.Context, c goredis.Cmdable, pattern, status string, fields []string, each func(string, []any) error) error {
	var cursor uint64
	for {
		keys, next, err := c.ScanType(ctx, cursor, pattern, sweepScanCount, "hash").Result()
		if err != nil {
			return redisFailure{err}
		}
		if len(keys) > 0 {
			if err := sweepPage(ctx, c, keys, status, fields, each); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return ctx.Err()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// sweepPage reads the status of keys in one pipeline, then fields of those
// with status in another, and calls each for them.
func sweepPage(ctx context.Context, c goredis.Cmdable, keys []string, status string, fields []string, each func(string, []any) error) error {
	statuses := make([]*goredis.StringCmd, len(keys))
	_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			statuses[i] = p.HGet(ctx, k, "status")
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return redisFailure{err}
	}
	var match []string
	for i, cmd := range statuses {
		if cmd.Val() == status {
			match = append(match, keys[i])
		}
	}
	if len(match) == 0 {
		return nil
	}
	recs := make([]*goredis.SliceCmd, len(match))
	if _, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range match {
			recs[i] = p.HMGet(ctx, k, fields...)
		}
		return nil
	}); err != nil {
		return redisFailure{err}
	}
	for i, cmd := range recs {
		if err := each(match[i], cmd.Val()); err != nil {
			return err
		}
	}
	return nil
}

// redisFailure marks an error of Redis itself within a walk, so that
// sweep wraps it as the store's other methods do.
type redisFailure struct{ err error }

func (e redisFailure) Error() string { return e.err.Error() }
func (e redisFailure) Unwrap() error { return e.err }

// globEscape escapes the characters SCAN's MATCH reads as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

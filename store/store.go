// Package store opens the storage backend a configuration names: the
// embedded bolt file (store/bolt) or Redis (store/redis). Each backend
// implements every storage interface Vigil's domain packages declare
// (streams.Log, memory.Store; tasks.Store on bolt so far, see Tasks);
// callers hand the Backend to those packages, which see only their own
// interface.
package store

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// Backend is an open storage backend: every storage interface in one value,
// closed once when the process stops.
type Backend interface {
	streams.Log
	memory.Store
	io.Closer
}

// Tasks returns b's tasks.Store, or a vigil.Unavailable error when b does
// not implement one. store/bolt does; store/redis does not yet. Once it
// does, tasks.Store joins Backend and this function goes away; until then
// it is the one place that knows, so that `go build ./...` stays green
// while the Redis implementation is written.
func Tasks(b Backend) (tasks.Store, error) {
	ts, ok := b.(tasks.Store)
	if !ok {
		return nil, vigil.Errorf(vigil.Unavailable, "task management is not available on this store yet (store/redis does not implement tasks.Store)")
	}
	return ts, nil
}

// Open opens the backend c.Driver names, creating the bolt data directory
// when needed. The caller closes it.
func Open(ctx context.Context, c config.Store) (Backend, error) {
	switch c.Driver {
	case config.DriverRedis:
		l, err := redis.Open(ctx, c.Redis.URL, redis.Options{
			Prefix:       c.Redis.Prefix,
			MaxLen:       c.MaxEventsPerThread,
			MaxFollowers: c.Redis.MaxFollowers,
			Coalesce:     c.Redis.Coalesce,
		})
		if err != nil {
			return nil, fmt.Errorf("store: open redis: %w", err)
		}
		return l, nil
	case config.DriverBolt:
		if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("store: data directory: %w", err)
		}
		db, err := bolt.Open(c.BoltPath(), bolt.Options{MaxLen: c.MaxEventsPerThread})
		if err != nil {
			return nil, fmt.Errorf("store: open %s: %w", c.BoltPath(), err)
		}
		return db, nil
	default:
		return nil, fmt.Errorf("store: unknown driver %q", c.Driver)
	}
}

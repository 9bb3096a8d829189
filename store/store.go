// Package store opens the storage backend a configuration names: the
// embedded bolt file (store/bolt) or Redis (store/redis). Each backend
// implements every storage interface Vigil's domain packages declare
// (streams.Log, memory.Store, auth.Store, tasks.Store,
// toolsregistry.PluginStore); callers hand the
// Backend to those packages, which see only their own interface.
package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// Backend is an open storage backend: every storage interface in one value,
// closed once when the process stops.
type Backend interface {
	streams.Log
	memory.Store
	auth.Store
	tasks.Store
	toolsregistry.PluginStore
	io.Closer
}

// Tasks returns b as its tasks.Store. It never fails: both backends
// implement tasks.Store, which is part of Backend. It remains only for its
// callers from before store/redis did (cmd/vigil/serve.go,
// httpapi/tasks_test.go), which can use b directly; it goes away when they
// do.
func Tasks(b Backend) (tasks.Store, error) { return b, nil }

// Open opens the backend c.Driver names, creating the bolt data directory
// when needed. logger receives what the backend cannot return to a caller
// (nil: slog.Default()). The caller closes it.
func Open(ctx context.Context, c config.Store, logger *slog.Logger) (Backend, error) {
	switch c.Driver {
	case config.DriverRedis:
		l, err := redis.Open(ctx, c.Redis.URL, redis.Options{
			Prefix:       c.Redis.Prefix,
			MaxLen:       c.MaxEventsPerThread,
			MaxFollowers: c.Redis.MaxFollowers,
			Coalesce:     c.Redis.Coalesce,
			Logger:       logger,
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

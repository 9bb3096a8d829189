package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// Purge deletes every key of this log's prefix: all tenants' threads and
// events. It is for benchmarks and tests that own their prefix; a server
// never calls it.
func (l *Log) Purge(ctx context.Context) error { return DeletePrefix(ctx, l.client, l.prefix) }

// DeletePrefix unlinks every key that starts with prefix followed by ':',
// scanning in batches so a large keyspace never blocks Redis for long. On a
// Cluster it must be given a node's client; on one server, any client.
func DeletePrefix(ctx context.Context, c goredis.UniversalClient, prefix string) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, prefix+":*", 1000).Result()
		if err != nil {
			return fmt.Errorf("store/redis: purge %s: %w", prefix, err)
		}
		if len(keys) > 0 {
			if err := c.Unlink(ctx, keys...).Err(); err != nil {
				return fmt.Errorf("store/redis: purge %s: %w", prefix, err)
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Tenant locks (tasks.Options.LockTenant): a short lock per tenant, shared
// by every instance, held while an activation counts the tenant's active
// tasks and activates one:
//
//	<prefix>:lock:{<tenant>}   string: the holder's token; expires after lockTTL
//
// The expiry frees the lock of a process that died holding it.
const (
	lockTTL   = 10 * time.Second
	lockRetry = 5 * time.Millisecond
)

// unlockScript deletes KEYS[1] if it still holds the token ARGV[1], so that
// a holder whose lock expired never frees the next holder's.
var unlockScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// LockTenant takes tenant's lock, waiting while another holds it until ctx
// ends, and returns the function that releases it. A holder keeps it at
// most lockTTL.
func (l *Log) LockTenant(ctx context.Context, tenant string) (func(), error) {
	key := l.prefix + ":lock:{" + tenant + "}"
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	for {
		ok, err := l.client.SetNX(ctx, key, token, lockTTL).Result()
		if err != nil {
			return nil, fmt.Errorf("store/redis: lock tenant %s: %w", tenant, err)
		}
		if ok {
			return func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = unlockScript.Run(ctx, l.client, []string{key}, token).Err()
			}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("store/redis: lock tenant %s: %w", tenant, ctx.Err())
		case <-time.After(lockRetry):
		}
	}
}

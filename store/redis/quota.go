package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Request quotas shared by every instance: one token bucket per credential,
// a hash of its tokens and the time they were counted, on the Redis
// server's clock, so that instances whose clocks differ agree:
//
//	<prefix>:quota:{<key>}   hash: tokens, at (ms); expires after a minute idle
//
// A full bucket holds perMinute tokens and refills at perMinute a minute,
// so a bucket idle for a minute is full, and dropping it changes nothing.

// takeScript takes a token from the bucket KEYS[1] of ARGV[1] tokens.
// Returns 0, or when the bucket is empty the milliseconds until a token is
// free, having taken none.
var takeScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local size = tonumber(ARGV[1])
local rate = size / 60000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(b[1]), tonumber(b[2])
if not tokens or not at then tokens, at = size, now end
tokens = math.min(size, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], 60000)
return wait
`)

// Take takes a token from the request bucket of credential key, which
// holds perMinute tokens, and returns 0; or, when the bucket is empty,
// takes none and returns how long until a token is free. Every instance
// on the same Redis and Prefix shares the bucket (httpapi.Buckets).
func (l *Log) Take(ctx context.Context, key string, perMinute int) (time.Duration, error) {
	if perMinute <= 0 {
		return 0, nil
	}
	ms, err := takeScript.Run(ctx, l.client, []string{l.prefix + ":quota:{" + key + "}"}, perMinute).Int64()
	if err != nil {
		return 0, fmt.Errorf("store/redis: request quota: %w", err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

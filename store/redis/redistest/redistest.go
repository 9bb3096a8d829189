// Package redistest gives tests across Vigil a real Redis to run against:
// URL finds it, Prefix hands each test its own key space and empties it
// afterwards.
//
// Tests that need Redis never skip when it is missing: they fail, loudly, so
// that a CI run without Redis cannot pass by testing nothing. `make test`
// (scripts/test.sh) starts a throwaway redis-server when none is running.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil/store/redis"
)

// EnvURL names the environment variable that points tests at a Redis, such
// as redis://127.0.0.1:6379/0. When it is unset, tests use DefaultURL.
const EnvURL = "VIGIL_TEST_REDIS_URL"

// DefaultURL is the Redis tests use when EnvURL is unset.
const DefaultURL = "redis://127.0.0.1:6379/0"

var found struct {
	once sync.Once
	url  string
	err  error
}

// URL returns the URL of the Redis tests should use: $VIGIL_TEST_REDIS_URL
// if set, else DefaultURL. It checks once per test binary that the Redis
// answers PING and fails t (never skips it) if it does not.
func URL(t testing.TB) string {
	t.Helper()
	found.once.Do(func() { found.url, found.err = find() })
	if found.err != nil {
		t.Fatalf("\n"+
			"**************************************************************\n"+
			"*** NO REDIS: this test needs a real Redis and none answers.\n"+
			"*** %v\n"+
			"*** Run `make test` (it starts a throwaway redis-server), or\n"+
			"*** start one: redis-server --save '' --appendonly no, or\n"+
			"*** set %s=redis://host:port/db.\n"+
			"**************************************************************",
			found.err, EnvURL)
	}
	return found.url
}

func find() (string, error) {
	url, from := os.Getenv(EnvURL), "$"+EnvURL
	if url == "" {
		url, from = DefaultURL, "the default (set "+EnvURL+" to change it)"
	}
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return "", fmt.Errorf("bad URL %q from %s: %w", url, from, err)
	}
	opts.MaxRetries, opts.DialerRetries = -1, 1 // answer at once
	c := goredis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return "", fmt.Errorf("PING %s from %s: %w", url, from, err)
	}
	return url, nil
}

// Prefix returns a key prefix no other test uses, of the form
// "vigiltest:<test name>:<random>", and registers a cleanup that deletes
// every key starting with it once t ends. Pass it as the Prefix option of
// the store under test. It calls URL, so it fails t without Redis.
func Prefix(t testing.TB) string {
	t.Helper()
	url := URL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "vigiltest:" + sanitize(t.Name()) + ":" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if err := deleteKeys(url, prefix); err != nil {
			t.Errorf("redistest: deleting keys under %s: %v", prefix, err)
		}
	})
	return prefix
}

// sanitize keeps a test name usable in a key and a SCAN pattern: no glob
// characters, no braces (Cluster hash tags), no colons, at most 60 bytes.
func sanitize(name string) string {
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			return r
		}
		return '_'
	}, name)
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// deleteKeys unlinks every key under prefix.
func deleteKeys(url, prefix string) error {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return err
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return redis.DeletePrefix(ctx, c, prefix)
}

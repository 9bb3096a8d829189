package redistest_test

import (
	"context"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil/store/redis/redistest"
)

// TestPrefix checks that prefixes are unique and that each test's keys, and
// only those, are gone once it ends.
func TestPrefix(t *testing.T) {
	ctx := context.Background()
	opts, err := goredis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opts)
	defer c.Close()

	outer := redistest.Prefix(t)
	if err := c.Set(ctx, outer+":keep", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var inner string
	t.Run("inner/with spaces*and[glob]", func(t *testing.T) {
		inner = redistest.Prefix(t)
		if inner == outer || !strings.HasPrefix(inner, "vigiltest:") || strings.ContainsAny(inner, "*?[]{} ") {
			t.Fatalf("prefix %q (outer %q)", inner, outer)
		}
		for _, k := range []string{":a", ":b", ":t:acme:th:{acme/th_1}:ev"} {
			if err := c.Set(ctx, inner+k, "x", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	})
	left, err := c.Keys(ctx, inner+"*").Result()
	if err != nil || len(left) != 0 {
		t.Errorf("keys left under %s after its test: %v, %v", inner, left, err)
	}
	if n, err := c.Exists(ctx, outer+":keep").Result(); err != nil || n != 1 {
		t.Errorf("the outer test's key went with the inner test's: %d, %v", n, err)
	}
}

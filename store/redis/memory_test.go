package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Memory(t, func(t *testing.T) memory.Store {
		return open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 4})
	})
}

// rawValues returns every key under prefix with its value as Redis holds
// it, read by type (strings, hashes, sorted sets, lists, sets), as one text.
func rawValues(t *testing.T, c *goredis.Client, prefix string) (keys []string, dump string) {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		keys = append(keys, k)
		b.WriteString(k + "\n")
		typ, err := c.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var vals []string
		switch typ {
		case "string":
			vals = []string{c.Get(ctx, k).Val()}
		case "hash":
			for f, v := range c.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "zset":
			vals = c.ZRange(ctx, k, 0, -1).Val()
		case "list":
			vals = c.LRange(ctx, k, 0, -1).Val()
		case "set":
			vals = c.SMembers(ctx, k).Val()
		default:
			t.Fatalf("key %s has type %s, which the dump does not read", k, typ)
		}
		for _, v := range vals {
			b.WriteString(v + "\n")
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return keys, b.String()
}

// TestMemoryAtRest checks long-term memory in Redis itself: no value under
// the prefix holds profile plain text (while a session fact, stored in
// clear, is found, so the search would see plain text if it were there);
// a second process (another Log on the same Redis) reads the profile only
// for its owner and only with the key.
func TestMemoryAtRest(t *testing.T) {
	const (
		city   = "Zhangjiakou-unique-123"
		pref   = "prefers-unique-tea-456"
		marker = "FactMarker-unique-789"
	)
	prefix := redistest.Prefix(t)
	key := memory.NewKey()
	alice := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: "alice"})
	bob := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: "bob"})

	svc, err := memory.New(open(t, prefix, redis.Options{MaxFollowers: 4}), memory.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	prof := memory.Profile{HomeCity: city, Language: "zh", TimeZone: "Asia/Shanghai", Preferences: map[string]string{"drink": pref}}
	if _, err := svc.PutProfile(alice, prof); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Remember(alice, memory.Fact{Thread: "th_1", Text: marker + " 张家口"}); err != nil {
		t.Fatal(err)
	}

	keys, dump := rawValues(t, client(t), prefix)
	if !strings.Contains(dump, marker) {
		t.Fatalf("the session fact %q is not in Redis's values; the search cannot see plain text", marker)
	}
	for _, plain := range []string{city, "Zhangjiakou", pref, "Asia/Shanghai", "home_city"} {
		if strings.Contains(dump, plain) {
			t.Errorf("Redis holds the profile's %q in clear", plain)
		}
	}
	want := prefix + ":t:acme:mem:u:{acme/alice}:profile"
	found := false
	for _, k := range keys {
		found = found || k == want
		if !strings.HasPrefix(k, prefix+":t:acme:mem:") {
			t.Errorf("memory key %s is outside the tenant's mem space", k)
		}
	}
	if !found {
		t.Errorf("no profile key %s among %q", want, keys)
	}

	other, err := memory.New(open(t, prefix, redis.Options{MaxFollowers: 4}), memory.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := other.Profile(alice); err != nil || got.HomeCity != city {
		t.Fatalf("alice's profile from a second process: %+v, %v", got, err)
	}
	if _, err := other.ProfileOf(bob, "alice"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("bob reading alice's profile: %v, want not found", err)
	}
	wrong, err := memory.New(open(t, prefix, redis.Options{MaxFollowers: 4}), memory.Options{Key: memory.NewKey()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Profile(alice); !errors.Is(err, memory.ErrDecrypt) {
		t.Errorf("alice's profile under another key: %v, want ErrDecrypt", err)
	}
	fs, err := other.Recall(alice, "th_1", "张家口", 10)
	if err != nil || len(fs) != 1 {
		t.Errorf("Recall(张家口) from a second process: %+v, %v", fs, err)
	}
}

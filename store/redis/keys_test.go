package redis_test

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/store/storetest"
)

func TestAPIKeys(t *testing.T) {
	storetest.Keys(t, func(t *testing.T) auth.Store {
		return open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 4})
	})
}

// TestAPIKeysAtRest checks API keys in Redis itself: no key or value under
// the prefix holds a key or its secret, in any of the forms a careless
// store might keep (as given, upper-cased, hex), while the key's id and
// name are found, so the search would see plain text if it were there;
// records sit under their tenant, and only the id index is outside it. A
// second process (another Log on the same Redis) verifies the key, and
// after a revoke through it the first one refuses it.
func TestAPIKeysAtRest(t *testing.T) {
	const name = "KeyNameMarker-unique-321"
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	first := auth.NewKeys(open(t, prefix, redis.Options{MaxFollowers: 4}), auth.KeysOptions{})
	raw, k, err := first.Create(ctx, auth.KeySpec{Tenant: "acme", User: "alice", Roles: []string{auth.Admin}, Name: name})
	if err != nil {
		t.Fatal(err)
	}

	keys, dump := rawValues(t, client(t), prefix)
	for _, marker := range []string{name, k.ID} {
		if !strings.Contains(dump, marker) {
			t.Fatalf("%q is not in Redis's keys and values; the search cannot see plain text", marker)
		}
	}
	_, secret, _ := auth.ParseKey(raw)
	for _, plain := range []string{raw, secret, secret[:16], strings.ToUpper(secret), hex.EncodeToString([]byte(secret))} {
		if strings.Contains(dump, plain) {
			t.Errorf("Redis holds the key's secret in clear (%q)", plain)
		}
	}
	for _, key := range keys {
		if key != prefix+":apikey:"+k.ID && !strings.HasPrefix(key, prefix+":t:acme:") {
			t.Errorf("API key data at %s, outside the tenant and the id index", key)
		}
	}

	second := auth.NewKeys(open(t, prefix, redis.Options{MaxFollowers: 4}), auth.KeysOptions{})
	if p, err := second.Verify(ctx, raw); err != nil || p.Tenant != "acme" || p.User != "alice" {
		t.Fatalf("Verify from a second process: %+v, %v", p, err)
	}
	if err := second.Revoke(ctx, "acme", k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Verify(ctx, raw); err == nil {
		t.Fatal("a key revoked by another process still verifies")
	}
}

package redis

// This file implements auth.Store. API keys have two kinds of key:
//
//	<prefix>:apikey:<id>          string: the tenant of key <id>
//	<prefix>:t:<tenant>:apikeys   hash: <id> → JSON of auth.Key;
//	                              <id>:revoked → when it was revoked (RFC 3339, ns)
//
// A request's key is looked up by id before its tenant is known, so
// apikey:<id> is the one key not under a tenant; it holds nothing but which
// tenant to look in, and SET NX on it makes ids unique across tenants. The
// records sit under their tenant and hold the SHA-256 of the key's secret,
// never the secret: auth.Keys hashes it before it gets here. Ids hold no
// ':' (vigil.ValidID), so "<id>:revoked" fields never clash with ids.
//
// Every command touches one key, so the layout works unchanged on Redis
// Cluster. Revocation is a field of its own, set with HSETNX, so that the
// first revocation's time stays and no read-modify-write of the JSON can
// lose it.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
)

var _ auth.Store = (*Log)(nil)

// keyIndexKey returns the key naming the tenant of API key id.
func (l *Log) keyIndexKey(id string) string { return l.prefix + ":apikey:" + id }

// keysKey returns the hash of tenant's API keys.
func (l *Log) keysKey(tenant string) string { return l.prefix + ":t:" + tenant + ":apikeys" }

const revokedSuffix = ":revoked"

func keyNotFound(id string) error { return vigil.Errorf(vigil.NotFound, "API key %s not found", id) }

// keysCheckIDs rejects ids that could not have come through vigil.ValidID,
// as keys are built from them.
func keysCheckIDs(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !vigil.ValidID(pairs[i+1]) {
			return vigil.FieldError(pairs[i], "invalid %s %q", pairs[i], pairs[i+1])
		}
	}
	return nil
}

// CreateAPIKey implements auth.Store.
func (l *Log) CreateAPIKey(ctx context.Context, k auth.Key) error {
	if err := keysCheckIDs("tenant", k.Tenant, "id", k.ID); err != nil {
		return fmt.Errorf("store/redis: create API key: %w", err)
	}
	revoked := k.RevokedAt
	k.RevokedAt = time.Time{}
	rec, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("store/redis: create API key %s: %w", k.ID, err)
	}
	ok, err := l.client.SetNX(ctx, l.keyIndexKey(k.ID), k.Tenant, 0).Result()
	if err != nil {
		return wrap("create API key "+k.ID, err)
	}
	if !ok {
		return fmt.Errorf("store/redis: create API key: %w", vigil.Errorf(vigil.Conflict, "API key %s already exists", k.ID))
	}
	fields := []any{k.ID, rec}
	if !revoked.IsZero() {
		fields = append(fields, k.ID+revokedSuffix, revoked.Format(time.RFC3339Nano))
	}
	if err := l.client.HSet(ctx, l.keysKey(k.Tenant), fields...).Err(); err != nil {
		// Free the id again; a key that was never stored must not block it.
		_ = l.client.Del(context.WithoutCancel(ctx), l.keyIndexKey(k.ID)).Err()
		return wrap("create API key "+k.ID, err)
	}
	return nil
}

// APIKey implements auth.Store.
func (l *Log) APIKey(ctx context.Context, id string) (auth.Key, error) {
	if !vigil.ValidID(id) {
		return auth.Key{}, keyNotFound(id)
	}
	tenant, err := l.client.Get(ctx, l.keyIndexKey(id)).Result()
	if errors.Is(err, goredis.Nil) {
		return auth.Key{}, keyNotFound(id)
	}
	if err != nil {
		return auth.Key{}, wrap("get API key "+id, err)
	}
	if !vigil.ValidID(tenant) {
		return auth.Key{}, fmt.Errorf("store/redis: get API key %s: corrupt index: tenant %q", id, tenant)
	}
	vals, err := l.client.HMGet(ctx, l.keysKey(tenant), id, id+revokedSuffix).Result()
	if err != nil {
		return auth.Key{}, wrap("get API key "+id, err)
	}
	rec, _ := vals[0].(string)
	if rec == "" {
		// The index is written first: a key being created, or one whose
		// creation failed half way, is not there yet.
		return auth.Key{}, keyNotFound(id)
	}
	revoked, _ := vals[1].(string)
	k, err := decodeKey(id, rec, revoked)
	if err != nil {
		return auth.Key{}, fmt.Errorf("store/redis: get API key %s: %w", id, err)
	}
	return k, nil
}

// decodeKey decodes a stored key record and its revocation time ("" when
// it was not revoked).
func decodeKey(id, rec, revoked string) (auth.Key, error) {
	var k auth.Key
	if err := json.Unmarshal([]byte(rec), &k); err != nil {
		return auth.Key{}, fmt.Errorf("corrupt API key %s: %w", id, err)
	}
	if revoked != "" {
		t, err := time.Parse(time.RFC3339Nano, revoked)
		if err != nil {
			return auth.Key{}, fmt.Errorf("corrupt revocation of API key %s: %w", id, err)
		}
		k.RevokedAt = t
	}
	return k, nil
}

// keyRevokeScript sets a key's revocation time unless it has one.
// KEYS[1] the tenant's keys; ARGV[1] id, ARGV[2] time. Returns 0 if the
// tenant has no such key.
var keyRevokeScript = goredis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSETNX', KEYS[1], ARGV[1] .. ':revoked', ARGV[2])
return 1
`)

// RevokeAPIKey implements auth.Store.
func (l *Log) RevokeAPIKey(ctx context.Context, tenant, id string, at time.Time) error {
	if err := keysCheckIDs("tenant", tenant); err != nil {
		return fmt.Errorf("store/redis: revoke API key: %w", err)
	}
	if !vigil.ValidID(id) {
		return keyNotFound(id)
	}
	n, err := keyRevokeScript.Run(ctx, l.client, []string{l.keysKey(tenant)}, id, at.Format(time.RFC3339Nano)).Int()
	if err != nil {
		return wrap("revoke API key "+id, err)
	}
	if n == 0 {
		return fmt.Errorf("store/redis: revoke API key: %w", keyNotFound(id))
	}
	return nil
}

// APIKeys implements auth.Store.
func (l *Log) APIKeys(ctx context.Context, tenant string) ([]auth.Key, error) {
	if err := keysCheckIDs("tenant", tenant); err != nil {
		return nil, fmt.Errorf("store/redis: list API keys: %w", err)
	}
	all, err := l.client.HGetAll(ctx, l.keysKey(tenant)).Result()
	if err != nil {
		return nil, wrap("list API keys of "+tenant, err)
	}
	var out []auth.Key
	for id, rec := range all {
		if strings.HasSuffix(id, revokedSuffix) {
			continue
		}
		k, err := decodeKey(id, rec, all[id+revokedSuffix])
		if err != nil {
			return nil, fmt.Errorf("store/redis: list API keys of %s: %w", tenant, err)
		}
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b auth.Key) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

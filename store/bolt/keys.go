package bolt

// This file implements auth.Store. API keys live in their own top-level
// bucket:
//
//	apikeys/
//	  ids/           key: key id; value: the key's tenant
//	  tenants/
//	    <tenant>/    key: key id; value: JSON of auth.Key
//
// A request's key is looked up by id before its tenant is known, so ids/
// is the one index not under a tenant; it holds nothing but which tenant
// to look in. The records themselves sit under their tenant, and hold the
// SHA-256 of the key's secret, never the secret: auth.Keys hashes it
// before it gets here.
//
// Key writes are rare, so each is its own write transaction (one fsync)
// rather than a passenger of the append group commit; the bucket is
// created by the first write, so that files written before keys existed
// need no migration.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
	bbolt "go.etcd.io/bbolt"
)

var _ auth.Store = (*DB)(nil)

// Key bucket names.
var (
	keysBucket  = []byte("apikeys")
	keysIDs     = []byte("ids")
	keysTenants = []byte("tenants")
)

// keysCheckIDs rejects ids that could not have come through vigil.ValidID.
func keysCheckIDs(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !vigil.ValidID(pairs[i+1]) {
			return vigil.FieldError(pairs[i], "invalid %s %q", pairs[i], pairs[i+1])
		}
	}
	return nil
}

// keysTenant returns tenant's key bucket, nil if it has none.
func keysTenant(tx *bbolt.Tx, tenant string) *bbolt.Bucket {
	b := tx.Bucket(keysBucket)
	if b == nil {
		return nil
	}
	if ts := b.Bucket(keysTenants); ts != nil {
		return ts.Bucket([]byte(tenant))
	}
	return nil
}

func keyNotFound(id string) error { return vigil.Errorf(vigil.NotFound, "API key %s not found", id) }

// CreateAPIKey implements auth.Store.
func (db *DB) CreateAPIKey(ctx context.Context, k auth.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := keysCheckIDs("tenant", k.Tenant, "id", k.ID); err != nil {
		return err
	}
	if db.isClosed() {
		return errClosed
	}
	rec, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("store/bolt: create API key %s: %w", k.ID, err)
	}
	err = db.bolt.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(keysBucket)
		if err != nil {
			return err
		}
		ids, err := b.CreateBucketIfNotExists(keysIDs)
		if err != nil {
			return err
		}
		if ids.Get([]byte(k.ID)) != nil {
			return vigil.Errorf(vigil.Conflict, "API key %s already exists", k.ID)
		}
		ts, err := b.CreateBucketIfNotExists(keysTenants)
		if err != nil {
			return err
		}
		tb, err := ts.CreateBucketIfNotExists([]byte(k.Tenant))
		if err != nil {
			return err
		}
		if err := ids.Put([]byte(k.ID), []byte(k.Tenant)); err != nil {
			return err
		}
		return tb.Put([]byte(k.ID), rec)
	})
	return wrap("create API key", k.ID, err)
}

// APIKey implements auth.Store.
func (db *DB) APIKey(ctx context.Context, id string) (auth.Key, error) {
	if err := ctx.Err(); err != nil {
		return auth.Key{}, err
	}
	if !vigil.ValidID(id) {
		return auth.Key{}, keyNotFound(id)
	}
	var k auth.Key
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(keysBucket)
		if b == nil {
			return keyNotFound(id)
		}
		var tenant []byte
		if ids := b.Bucket(keysIDs); ids != nil {
			tenant = ids.Get([]byte(id))
		}
		if tenant == nil {
			return keyNotFound(id)
		}
		tb := keysTenant(tx, string(tenant))
		if tb == nil {
			return fmt.Errorf("corrupt API key index: tenant %s of key %s has no keys", tenant, id)
		}
		v := tb.Get([]byte(id))
		if v == nil {
			return fmt.Errorf("corrupt API key index: key %s is not in tenant %s", id, tenant)
		}
		return json.Unmarshal(v, &k)
	})
	if err != nil {
		return auth.Key{}, wrap("get API key", id, err)
	}
	return k, nil
}

// RevokeAPIKey implements auth.Store.
func (db *DB) RevokeAPIKey(ctx context.Context, tenant, id string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := keysCheckIDs("tenant", tenant); err != nil {
		return err
	}
	if !vigil.ValidID(id) {
		return keyNotFound(id)
	}
	if db.isClosed() {
		return errClosed
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		tb := keysTenant(tx, tenant)
		if tb == nil {
			return keyNotFound(id)
		}
		v := tb.Get([]byte(id))
		if v == nil {
			return keyNotFound(id)
		}
		var k auth.Key
		if err := json.Unmarshal(v, &k); err != nil {
			return fmt.Errorf("corrupt API key %s: %w", id, err)
		}
		if k.Revoked() {
			return nil
		}
		k.RevokedAt = at
		rec, err := json.Marshal(k)
		if err != nil {
			return err
		}
		return tb.Put([]byte(id), rec)
	})
	return wrap("revoke API key", id, err)
}

// APIKeys implements auth.Store.
func (db *DB) APIKeys(ctx context.Context, tenant string) ([]auth.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := keysCheckIDs("tenant", tenant); err != nil {
		return nil, err
	}
	var out []auth.Key
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		tb := keysTenant(tx, tenant)
		if tb == nil {
			return nil
		}
		return tb.ForEach(func(id, v []byte) error {
			var k auth.Key
			if err := json.Unmarshal(v, &k); err != nil {
				return fmt.Errorf("corrupt API key %s: %w", id, err)
			}
			out = append(out, k)
			return nil
		})
	})
	if err != nil {
		return nil, wrap("list API keys of", tenant, err)
	}
	sortKeys(out)
	return out, nil
}

// sortKeys orders keys oldest first, then by id.
func sortKeys(keys []auth.Key) {
	slices.SortFunc(keys, func(a, b auth.Key) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
}

package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
)

// Keys runs the conformance suite of auth.Store. newStore is called once
// per subtest and must return a store that shares nothing with the stores
// of other subtests (own file or own key prefix).
//
// Beyond the clauses of the auth.Store contract, the suite pins down what
// it leaves open, so that both backends behave alike:
//
//   - Errors are compared by vigil.ErrorCode, so backends may wrap them.
//   - An id that is not a vigil.ValidID is simply not found by APIKey and
//     RevokeAPIKey (it comes from a request), while a bad tenant, which
//     only a bug can produce, is a vigil.Invalid error everywhere.
//   - Keys round-trip through auth.Keys: one made by Create verifies,
//     and stops verifying once revoked.
//
// That the store holds no secret in plain text is for each backend to
// show on its own bytes (store/bolt and store/redis do, in their tests).
func Keys(t *testing.T, newStore func(t *testing.T) auth.Store) {
	t.Run("RoundTrip", func(t *testing.T) { testKeyRoundTrip(t, newStore) })
	t.Run("MissingIsNotFound", func(t *testing.T) { testKeyMissing(t, newStore) })
	t.Run("DuplicateIDIsConflict", func(t *testing.T) { testKeyDuplicate(t, newStore) })
	t.Run("TenantIsolation", func(t *testing.T) { testKeyTenants(t, newStore) })
	t.Run("RevokeKeepsFirstTime", func(t *testing.T) { testKeyRevoke(t, newStore) })
	t.Run("ListOldestFirst", func(t *testing.T) { testKeyList(t, newStore) })
	t.Run("InvalidRejected", func(t *testing.T) { testKeyInvalid(t, newStore) })
	t.Run("ThroughKeys", func(t *testing.T) { testKeyThroughKeys(t, newStore) })
	t.Run("Concurrency", func(t *testing.T) {
		t.Run("CreateSameID", func(t *testing.T) { testKeyConcurrentCreate(t, newStore) })
		t.Run("Revoke", func(t *testing.T) { testKeyConcurrentRevoke(t, newStore) })
	})
}

type newKeysFunc = func(t *testing.T) auth.Store

var keyBase = time.Date(2026, 11, 22, 8, 0, 0, 123456789, time.FixedZone("UTC+8", 8*3600))

// testKey returns a key record of tenant with id, created n minutes after
// keyBase, whose hash differs per id.
func testKey(tenant, id string, n int) auth.Key {
	h := bytes.Repeat([]byte{byte(n)}, 32)
	copy(h, id)
	return auth.Key{
		ID: id, Tenant: tenant, User: "user_" + id, Roles: []string{auth.Member},
		Hash: h, CreatedAt: keyBase.Add(time.Duration(n) * time.Minute),
	}
}

func mustCreateKey(t *testing.T, s auth.Store, k auth.Key) {
	t.Helper()
	if err := s.CreateAPIKey(t.Context(), k); err != nil {
		t.Fatalf("CreateAPIKey(%s/%s): %v", k.Tenant, k.ID, err)
	}
}

// sameKey reports what differs between two key records, or "".
func sameKey(got, want auth.Key) string {
	switch {
	case got.ID != want.ID, got.Tenant != want.Tenant, got.User != want.User, got.Name != want.Name:
		return fmt.Sprintf("names: got %s/%s/%s %q, want %s/%s/%s %q", got.Tenant, got.ID, got.User, got.Name, want.Tenant, want.ID, want.User, want.Name)
	case !slices.Equal(got.Roles, want.Roles):
		return fmt.Sprintf("roles %q, want %q", got.Roles, want.Roles)
	case !bytes.Equal(got.Hash, want.Hash):
		return fmt.Sprintf("hash %x, want %x", got.Hash, want.Hash)
	case !got.CreatedAt.Equal(want.CreatedAt):
		return fmt.Sprintf("created %v, want %v", got.CreatedAt, want.CreatedAt)
	case !got.ExpiresAt.Equal(want.ExpiresAt):
		return fmt.Sprintf("expires %v, want %v", got.ExpiresAt, want.ExpiresAt)
	case !got.RevokedAt.Equal(want.RevokedAt):
		return fmt.Sprintf("revoked %v, want %v", got.RevokedAt, want.RevokedAt)
	}
	return ""
}

func wantKey(t *testing.T, s auth.Store, want auth.Key) {
	t.Helper()
	got, err := s.APIKey(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("APIKey(%s): %v", want.ID, err)
	}
	if d := sameKey(got, want); d != "" {
		t.Fatalf("APIKey(%s): %s", want.ID, d)
	}
}

func testKeyRoundTrip(t *testing.T, newStore newKeysFunc) {
	s := newStore(t)
	k := testKey("acme", "k1", 1)
	k.Roles = []string{auth.Admin, auth.Viewer}
	k.Name = "ci deploy — 部署"
	k.ExpiresAt = keyBase.Add(90 * 24 * time.Hour)
	k.Hash = []byte{0, 0xff, 0x80, '"', '\\', 0}
	mustCreateKey(t, s, k)
	wantKey(t, s, k)

	revoked := testKey("acme", "k2", 2)
	revoked.RevokedAt = keyBase.Add(time.Hour)
	mustCreateKey(t, s, revoked)
	wantKey(t, s, revoked)
}

func testKeyMissing(t *testing.T, newStore newKeysFunc) {
	s := newStore(t)
	mustCreateKey(t, s, testKey("acme", "k1", 1))
	for _, id := range []string{"k2", "K1", "k1 ", "", "a:b", "{k1}", "k1/x"} {
		_, err := s.APIKey(t.Context(), id)
		wantCode(t, err, vigil.NotFound, fmt.Sprintf("APIKey(%q)", id))
	}
}

func testKeyDuplicate(t *testing.T, newStore newKeysFunc) {
	s := newStore(t)
	first := testKey("acme", "k1", 1)
	mustCreateKey(t, s, first)
	for _, tenant := range []string{"acme", "globex"} {
		err := s.CreateAPIKey(t.Context(), testKey(tenant, "k1", 9))
		wantCode(t, err, vigil.Conflict, "CreateAPIKey of an existing id in "+tenant)
	}
	wantKey(t, s, first)
	keys, err := s.APIKeys(t.Context(), "globex")
	if err != nil || len(keys) != 0 {
		t.Errorf("APIKeys(globex) after a refused duplicate: %d keys, %v; want none", len(keys), err)
	}
}

func testKeyTenants(t *testing.T, newStore newKeysFunc) {
	s := newStore(t)
	ctx := t.Context()
	// Tenants and ids chosen so that naive key joins would collide.
	a := []auth.Key{testKey("acme", "k1", 1), testKey("acme", "x_y", 2)}
	b := []auth.Key{testKey("globex", "k2", 3), testKey("acme_x", "y", 4), testKey("acme.x", "z", 5)}
	for _, k := range append(slices.Clone(a), b...) {
		mustCreateKey(t, s, k)
	}
	for tenant, want := range map[string][]auth.Key{"acme": a, "globex": b[:1], "acme_x": b[1:2], "acme.x": b[2:], "initech": nil} {
		got, err := s.APIKeys(ctx, tenant)
		if err != nil {
			t.Fatalf("APIKeys(%s): %v", tenant, err)
		}
		if len(got) != len(want) {
			t.Fatalf("APIKeys(%s): %d keys, want %d", tenant, len(got), len(want))
		}
		for i := range got {
			if d := sameKey(got[i], want[i]); d != "" {
				t.Errorf("APIKeys(%s)[%d]: %s", tenant, i, d)
			}
		}
	}
	// Another tenant cannot revoke a key, and learns nothing from trying.
	err := s.RevokeAPIKey(ctx, "globex", "k1", keyBase)
	wantCode(t, err, vigil.NotFound, "RevokeAPIKey of acme's key by globex")
	err = s.RevokeAPIKey(ctx, "globex", "nope", keyBase)
	wantCode(t, err, vigil.NotFound, "RevokeAPIKey of no key by globex")
	wantKey(t, s, a[0])
	// By id, a key is found whatever its tenant: that is how a request's
	// tenant is learned.
	wantKey(t, s, b[1])
}

func testKeyRevoke(t *testing.T, newStore newKeysFunc) {
	s := newStore(t)
	ctx := t.Context()
	k := testKey("acme", "k1", 1)
	other := testKey("acme", "k2", 2)
	mustCreateKey(t, s, k)
	mustCreateKey(t, s, other)
	at := keyBase.Add(time.Hour + time.Nanosecond)
	if err := s.RevokeAPIKey(ctx, "acme", "k1", at); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	k.RevokedAt = at
	wantKey(t, s, k)
	if err := s.RevokeAPIKey(ctx, "acme", "k1", at.Add(time.Hour)); err != nil {
		t.Fatalf("RevokeAPIKey again: %v", err)
	}
	wantKey(t, s, k) // the first revocation's time stays
	wantKey(t, s, other)
	keys, err := s.APIKeys(ctx, "acme")
	if err != nil || len(keys) != 2 || sameKey(keys[0], k) != "" {
		t.Fatalf("APIKeys after revoking: %+v, %v; want the revoked key listed first", keys, err)
	}
	wantCode(t, s.RevokeAPIKey(ctx, "acme", "k3", at), vigil.NotFound, "RevokeAPIKey of a missing key")
	wantCode(t, s.RevokeAPIKey(ctx, "acme", "a:b", at), vigil.NotFound, "RevokeAPIKey of a malformed id")
}

func testKeyList(t *testing.T, newStore newKeysFunc) {
	s := newStore(t)
	// Created out of order; two share a time and sort by id.
	ks := []auth.Key{testKey("acme", "kc", 3), testKey("acme", "ka", 1), testKey("acme", "kb2", 2), testKey("acme", "kb1", 2)}
	for _, k := range ks {
		mustCreateKey(t, s, k)
	}
	got, err := s.APIKeys(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range got {
		ids = append(ids, k.ID)
	}
	if want := []string{"ka", "kb1", "kb2", "kc"}; !slices.Equal(ids, want) {
		t.Errorf("APIKeys order %q, want %q", ids, want)
	}
}

func testKeyInvalid(t *testing.T, newStore newKeysFunc) {
	s := newStore(t)
	ctx := t.Context()
	for _, k := range []auth.Key{testKey("", "k1", 1), testKey("ac:me", "k1", 1), testKey("acme", "", 1), testKey("acme", "k/1", 1), testKey("acme", "{k}", 1)} {
		wantCode(t, s.CreateAPIKey(ctx, k), vigil.Invalid, fmt.Sprintf("CreateAPIKey(%q, %q)", k.Tenant, k.ID))
	}
	_, err := s.APIKeys(ctx, "ac:me")
	wantCode(t, err, vigil.Invalid, "APIKeys of a malformed tenant")
	wantCode(t, s.RevokeAPIKey(ctx, "", "k1", keyBase), vigil.Invalid, "RevokeAPIKey of an empty tenant")
}

func testKeyThroughKeys(t *testing.T, newStore newKeysFunc) {
	s := newStore(t)
	ctx := t.Context()
	now := keyBase
	ks := auth.NewKeys(s, auth.KeysOptions{Now: func() time.Time { return now }})
	raw, k, err := ks.Create(ctx, auth.KeySpec{Tenant: "acme", User: "alice", Roles: []string{auth.Viewer, auth.Member}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ks.Verify(ctx, raw)
	if err != nil || p.Tenant != "acme" || p.User != "alice" || !slices.Equal(p.Roles, []string{auth.Member, auth.Viewer}) {
		t.Fatalf("Verify of a new key: %+v, %v", p, err)
	}
	wrong := raw[:len(raw)-1] + map[bool]string{true: "a", false: "b"}[raw[len(raw)-1] != 'a']
	_, err = ks.Verify(ctx, wrong)
	wantCode(t, err, vigil.Unauthorized, "Verify with a wrong secret")
	wantCode(t, ks.Revoke(ctx, "globex", k.ID), vigil.NotFound, "Revoke by another tenant")
	if _, err := ks.Verify(ctx, raw); err != nil {
		t.Fatalf("Verify after another tenant's failed revoke: %v", err)
	}
	now = now.Add(time.Minute)
	if err := ks.Revoke(ctx, "acme", k.ID); err != nil {
		t.Fatal(err)
	}
	_, err = ks.Verify(ctx, raw)
	wantCode(t, err, vigil.Unauthorized, "Verify of a revoked key")
	got, err := s.APIKey(ctx, k.ID)
	if err != nil || !got.RevokedAt.Equal(now) {
		t.Errorf("revoked key: %+v, %v; want revoked at %v", got, err, now)
	}
}

func testKeyConcurrentCreate(t *testing.T, newStore newKeysFunc) {
	s := newStore(t)
	const n = 16
	var wg sync.WaitGroup
	codes := make(chan vigil.Code, n)
	for i := range n {
		wg.Go(func() {
			codes <- vigil.ErrorCode(s.CreateAPIKey(t.Context(), testKey(fmt.Sprintf("t%d", i), "k1", i)))
		})
	}
	wg.Wait()
	close(codes)
	won := 0
	for c := range codes {
		switch c {
		case "":
			won++
		case vigil.Conflict:
		default:
			t.Errorf("concurrent CreateAPIKey: code %q", c)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent creates of one id succeeded, want 1", won)
	}
	k, err := s.APIKey(t.Context(), "k1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s.APIKeys(t.Context(), k.Tenant)
	if err != nil || len(keys) != 1 || keys[0].ID != "k1" {
		t.Fatalf("the winner's tenant %s lists %+v, %v", k.Tenant, keys, err)
	}
}

func testKeyConcurrentRevoke(t *testing.T, newStore newKeysFunc) {
	s := newStore(t)
	mustCreateKey(t, s, testKey("acme", "k1", 1))
	const n = 16
	times := make([]time.Time, n)
	var wg sync.WaitGroup
	for i := range n {
		times[i] = keyBase.Add(time.Duration(i+1) * time.Second)
		wg.Go(func() {
			if err := s.RevokeAPIKey(t.Context(), "acme", "k1", times[i]); err != nil {
				t.Errorf("concurrent RevokeAPIKey: %v", err)
			}
		})
	}
	wg.Wait()
	k, err := s.APIKey(t.Context(), "k1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(times, k.RevokedAt.Equal) {
		t.Fatalf("after concurrent revokes RevokedAt is %v, want one of the times given", k.RevokedAt)
	}
	if err := s.RevokeAPIKey(t.Context(), "acme", "k1", keyBase.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	again, _ := s.APIKey(t.Context(), "k1")
	if !again.RevokedAt.Equal(k.RevokedAt) {
		t.Errorf("a later revoke moved RevokedAt from %v to %v", k.RevokedAt, again.RevokedAt)
	}
}

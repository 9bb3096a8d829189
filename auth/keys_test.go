package auth_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
)

// memKeys is an auth.Store in a map, for tests of auth itself; the real
// stores run store/storetest.Keys. fail, when set, answers every call.
type memKeys struct {
	mu   sync.Mutex
	keys map[string]auth.Key
	fail error
}

func newMemKeys() *memKeys { return &memKeys{keys: map[string]auth.Key{}} }

func (s *memKeys) CreateAPIKey(_ context.Context, k auth.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if _, ok := s.keys[k.ID]; ok {
		return vigil.Errorf(vigil.Conflict, "exists")
	}
	s.keys[k.ID] = k
	return nil
}

func (s *memKeys) APIKey(_ context.Context, id string) (auth.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return auth.Key{}, s.fail
	}
	k, ok := s.keys[id]
	if !ok {
		return auth.Key{}, vigil.Errorf(vigil.NotFound, "no key")
	}
	return k, nil
}

func (s *memKeys) RevokeAPIKey(_ context.Context, tenant, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok || k.Tenant != tenant {
		return vigil.Errorf(vigil.NotFound, "no key")
	}
	if !k.Revoked() {
		k.RevokedAt = at
		s.keys[id] = k
	}
	return nil
}

func (s *memKeys) APIKeys(_ context.Context, tenant string) ([]auth.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []auth.Key
	for _, k := range s.keys {
		if k.Tenant == tenant {
			out = append(out, k)
		}
	}
	return out, nil
}

var t0 = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

func TestKeyCreateAndVerify(t *testing.T) {
	ctx := context.Background()
	now := t0
	store := newMemKeys()
	keys := auth.NewKeys(store, auth.KeysOptions{Now: func() time.Time { return now }})

	raw, k, err := keys.Create(ctx, auth.KeySpec{Tenant: "acme", Roles: []string{auth.Viewer, auth.Developer}, Name: "ci", ExpiresAt: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	id, secret, ok := auth.ParseKey(raw)
	if !ok || id != k.ID || !strings.HasPrefix(raw, "vgl_"+k.ID+"_") || len(secret) != 52 {
		t.Fatalf("key %q does not read vgl_<id>_<secret> (id %q)", raw, k.ID)
	}
	if k.User != "key_"+k.ID || !slices.Equal(k.Roles, []string{auth.Developer, auth.Viewer}) || !k.CreatedAt.Equal(t0) {
		t.Errorf("record %+v", k)
	}
	// The store got the record, and no trace of the secret.
	stored, _ := store.APIKey(ctx, k.ID)
	if strings.Contains(string(stored.Hash), secret) || strings.Contains(stored.Name+stored.User+stored.ID, secret) || len(stored.Hash) != 32 {
		t.Errorf("stored record %+v holds the secret or a wrong hash", stored)
	}

	p, err := keys.Verify(ctx, raw)
	if err != nil || p.Tenant != "acme" || p.User != k.User || !slices.Equal(p.Roles, k.Roles) {
		t.Fatalf("Verify = %+v, %v", p, err)
	}

	other, _, err := keys.Create(ctx, auth.KeySpec{Tenant: "acme", User: "bob", Roles: []string{auth.Member}})
	if err != nil {
		t.Fatal(err)
	}
	_, otherSecret, _ := auth.ParseKey(other)
	tests := []struct {
		name, raw, msg string
	}{
		{"malformed", "vgl_nothex_x", "malformed API key"},
		{"unknown id", "vgl_00000000000000000000_" + secret, "invalid API key"},
		{"another key's secret", "vgl_" + k.ID + "_" + otherSecret, "invalid API key"},
		{"upper case", strings.ToUpper(raw), "malformed API key"},
		{"truncated", raw[:len(raw)-1], "malformed API key"},
	}
	for _, tt := range tests {
		_, err := keys.Verify(ctx, tt.raw)
		if vigil.ErrorCode(err) != vigil.Unauthorized || vigil.ErrorMessage(err) != tt.msg {
			t.Errorf("%s: Verify = %v, want unauthorized %q", tt.name, err, tt.msg)
		}
	}

	now = t0.Add(time.Hour)
	if _, err := keys.Verify(ctx, raw); vigil.ErrorCode(err) != vigil.Unauthorized || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Verify of an expired key = %v", err)
	}
	if err := keys.Revoke(ctx, "globex", k.ID); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("Revoke by another tenant = %v, want not found", err)
	}
	if err := keys.Revoke(ctx, "acme", "not:an:id"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("Revoke of a malformed id = %v, want not found", err)
	}
	if err := keys.Revoke(ctx, "acme", k.ID); err != nil {
		t.Fatal(err)
	}
	now = t0
	if _, err := keys.Verify(ctx, raw); vigil.ErrorCode(err) != vigil.Unauthorized || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("Verify of a revoked key = %v", err)
	}

	// A store that does not answer is not bad credentials.
	store.fail = vigil.Errorf(vigil.Unavailable, "down")
	if _, err := keys.Verify(ctx, other); vigil.ErrorCode(err) != vigil.Unavailable {
		t.Errorf("Verify with the store down = %v, want unavailable", err)
	}
}

func TestKeyCreateInvalid(t *testing.T) {
	keys := auth.NewKeys(newMemKeys(), auth.KeysOptions{Now: func() time.Time { return t0 }})
	tests := []struct {
		spec  auth.KeySpec
		field string
	}{
		{auth.KeySpec{Tenant: "", Roles: []string{auth.Admin}}, "tenant"},
		{auth.KeySpec{Tenant: "a:b", Roles: []string{auth.Admin}}, "tenant"},
		{auth.KeySpec{Tenant: "acme", User: "a@b", Roles: []string{auth.Admin}}, "user"},
		{auth.KeySpec{Tenant: "acme"}, "roles"},
		{auth.KeySpec{Tenant: "acme", Roles: []string{"root"}}, "roles"},
		{auth.KeySpec{Tenant: "acme", Roles: []string{auth.Admin}, Name: strings.Repeat("n", 101)}, "name"},
		{auth.KeySpec{Tenant: "acme", Roles: []string{auth.Admin}, ExpiresAt: t0}, "expires_at"},
	}
	for _, tt := range tests {
		_, _, err := keys.Create(context.Background(), tt.spec)
		var ve *vigil.Error
		if vigil.ErrorCode(err) != vigil.Invalid || !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("Create(%+v) = %v, want invalid %s", tt.spec, err, tt.field)
		}
	}
}

func TestParseKey(t *testing.T) {
	good := "vgl_0123456789abcdef0123_" + strings.Repeat("a2", 26)
	if id, secret, ok := auth.ParseKey(good); !ok || id != "0123456789abcdef0123" || secret != strings.Repeat("a2", 26) {
		t.Fatalf("ParseKey(%q) = %q, %q, %v", good, id, secret, ok)
	}
	for _, bad := range []string{
		"", "vgl_", good[1:], good + "a", "vgk" + good[3:],
		strings.Replace(good, "_0", "-0", 1),
		strings.Replace(good, "0123_", "012g_", 1),
		strings.Replace(good, "_a2", "_a1", 1), // 1 is not base32
		strings.Replace(good, "0123_a", "0123.a", 1),
	} {
		if _, _, ok := auth.ParseKey(bad); ok {
			t.Errorf("ParseKey(%q) accepted it", bad)
		}
	}
}

package bolt_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/storetest"
)

func TestAPIKeys(t *testing.T) {
	storetest.Keys(t, func(t *testing.T) auth.Store {
		return open(t, filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	})
}

// TestAPIKeysAtRest checks API keys in the bolt file itself: its bytes hold
// neither a key nor its secret, in any of the forms a careless store might
// keep (as given, upper-cased, hex), while the key's id and name are found,
// so the search would see plain text if it were there. After a reopen the
// key still verifies, and after a revoke it does not.
func TestAPIKeysAtRest(t *testing.T) {
	const name = "KeyNameMarker-unique-321"
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vigil.db")
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, k, err := auth.NewKeys(db, auth.KeysOptions{}).Create(ctx, auth.KeySpec{Tenant: "acme", User: "alice", Roles: []string{auth.Admin}, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, marker := range []string{name, k.ID} {
		if !bytes.Contains(file, []byte(marker)) {
			t.Fatalf("%q is not in the file's bytes; the search cannot see plain text", marker)
		}
	}
	_, secret, _ := auth.ParseKey(raw)
	for _, plain := range []string{raw, secret, secret[:16], string(bytes.ToUpper([]byte(secret))), hex.EncodeToString([]byte(secret))} {
		if bytes.Contains(file, []byte(plain)) {
			t.Errorf("the bolt file contains the key's secret in clear (%q)", plain)
		}
	}

	db = open(t, path, bolt.Options{})
	keys := auth.NewKeys(db, auth.KeysOptions{})
	if p, err := keys.Verify(ctx, raw); err != nil || p.Tenant != "acme" || p.User != "alice" {
		t.Fatalf("Verify after reopen: %+v, %v", p, err)
	}
	if err := keys.Revoke(ctx, "acme", k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(ctx, raw); err == nil {
		t.Fatal("a revoked key still verifies")
	}
}

// TestAPIKeysClosed checks that key calls on a closed DB fail rather than
// hang or panic.
func TestAPIKeysClosed(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	ctx := context.Background()
	if err := db.CreateAPIKey(ctx, auth.Key{ID: "k", Tenant: "acme"}); err == nil {
		t.Error("CreateAPIKey on a closed DB succeeded")
	}
	if _, err := db.APIKey(ctx, "k"); err == nil {
		t.Error("APIKey on a closed DB succeeded")
	}
	if err := db.RevokeAPIKey(ctx, "acme", "k", time.Now()); err == nil {
		t.Error("RevokeAPIKey on a closed DB succeeded")
	}
	if _, err := db.APIKeys(ctx, "acme"); err == nil {
		t.Error("APIKeys on a closed DB succeeded")
	}
}

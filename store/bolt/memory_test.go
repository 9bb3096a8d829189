package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Memory(t, func(t *testing.T) memory.Store {
		return open(t, filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	})
}

// TestMemoryAtRest checks long-term memory in the bolt file itself: the
// file's bytes hold no profile plain text (while a session fact, stored in
// clear, is found, so the search would see plain text if it were there);
// after a reopen the owner reads the profile back, another user of the
// tenant does not, and a service with another key fails with ErrDecrypt.
func TestMemoryAtRest(t *testing.T) {
	const (
		city   = "Zhangjiakou-unique-123"
		pref   = "prefers-unique-tea-456"
		marker = "FactMarker-unique-789"
	)
	path := filepath.Join(t.TempDir(), "vigil.db")
	key := memory.NewKey()
	alice := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: "alice"})
	bob := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: "bob"})

	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := memory.New(db, memory.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	prof := memory.Profile{HomeCity: city, Language: "zh", TimeZone: "Asia/Shanghai", Preferences: map[string]string{"drink": pref}}
	// Written twice, so that a freed page of the first write is in the file
	// too.
	for range 2 {
		if _, err := svc.PutProfile(alice, prof); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Remember(alice, memory.Fact{Thread: "th_1", Text: marker}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(marker)) {
		t.Fatalf("the session fact %q is not in the file's bytes; the search cannot see plain text", marker)
	}
	for _, plain := range []string{city, "Zhangjiakou", pref, "Asia/Shanghai", "home_city"} {
		if bytes.Contains(raw, []byte(plain)) {
			t.Errorf("the bolt file contains the profile's %q in clear", plain)
		}
	}

	db = open(t, path, bolt.Options{})
	svc, err = memory.New(db, memory.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc.Profile(alice)
	if err != nil || got.HomeCity != city || got.Preferences["drink"] != pref {
		t.Fatalf("alice's profile after reopen: %+v, %v", got, err)
	}
	if _, err := svc.ProfileOf(bob, "alice"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("bob reading alice's profile: %v, want not found", err)
	}
	if _, err := svc.Profile(bob); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("bob's own profile: %v, want not found", err)
	}
	wrong, err := memory.New(db, memory.Options{Key: memory.NewKey()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Profile(alice); !errors.Is(err, memory.ErrDecrypt) {
		t.Errorf("alice's profile under another key: %v, want ErrDecrypt", err)
	}
	fs, err := svc.Recall(alice, "th_1", "factmarker", 10)
	if err != nil || len(fs) != 1 || fs[0].Text != marker {
		t.Errorf("Recall after reopen: %+v, %v", fs, err)
	}
}

// TestMemoryClosed checks that memory calls on a closed DB fail rather
// than hang or panic.
func TestMemoryClosed(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	ctx := context.Background()
	if err := db.PutProfile(ctx, "acme", "alice", []byte("x")); err == nil {
		t.Error("PutProfile on a closed DB succeeded")
	}
	if _, err := db.GetProfile(ctx, "acme", "alice"); err == nil {
		t.Error("GetProfile on a closed DB succeeded")
	}
	if err := db.AddFact(ctx, memory.Fact{ID: "f", Tenant: "acme", Thread: "th"}, nil); err == nil {
		t.Error("AddFact on a closed DB succeeded")
	}
	if _, err := db.ListFacts(ctx, "acme", "th", 1); err == nil {
		t.Error("ListFacts on a closed DB succeeded")
	}
}

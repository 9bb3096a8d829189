package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil"
)

// An API key reads "vgl_<id>_<secret>": KeyPrefix, the key's id (20
// lower-case hex digits, public: it names the key in lists and logs), an
// underscore, and the secret (32 random bytes in lower-case base32, 52
// characters). Only the SHA-256 of the secret is stored: with 256 random
// bits there is nothing for a slow hash to protect against.
const (
	// KeyPrefix starts every API key, so that a key is told from a JWT at
	// a glance, and secret scanners can find leaked ones.
	KeyPrefix = "vgl_"

	keyIDLen     = 20
	keySecretLen = 52
	keyLen       = len(KeyPrefix) + keyIDLen + 1 + keySecretLen
)

var secretEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Key is the stored record of an API key: who it acts as, and the hash of
// its secret, never the secret itself.
type Key struct {
	ID     string   `json:"id"`
	Tenant string   `json:"tenant"`
	User   string   `json:"user"`
	Roles  []string `json:"roles"`
	// Name is a label for people ("ci deploy"); it plays no part in
	// authentication.
	Name string `json:"name,omitempty"`
	// Hash is the SHA-256 of the key's secret.
	Hash      []byte    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt, when not zero, is when the key stops working.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// RevokedAt, when not zero, is when the key was revoked; it works no
	// more, and stays listed so that its history is readable.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Revoked reports whether k has been revoked.
func (k Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// Expired reports whether k has an expiry at or before now.
func (k Key) Expired(now time.Time) bool { return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) }

// Matches reports whether secret is k's secret, comparing hashes in
// constant time.
func (k Key) Matches(secret string) bool {
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], k.Hash) == 1
}

// Store keeps API key records. store/bolt and store/redis implement it;
// store/storetest.Keys is its conformance suite.
//
// Key ids are unique across tenants, so that a key can be found by its id
// alone before its tenant is known; every other method is scoped by tenant,
// and a key of another tenant is not found. A Store never sees a secret.
// Implementations are safe for concurrent use.
type Store interface {
	// CreateAPIKey stores k. It returns a vigil.Conflict error if a key
	// with k.ID exists in any tenant, and a vigil.Invalid error if k.ID or
	// k.Tenant is not a vigil.ValidID. Every field reads back as given
	// (times as time.Time.Equal does).
	CreateAPIKey(ctx context.Context, k Key) error

	// APIKey returns the key with id, whatever its tenant, revoked or
	// not, or a vigil.NotFound error.
	APIKey(ctx context.Context, id string) (Key, error)

	// RevokeAPIKey sets the RevokedAt of tenant's key id to at. A key
	// revoked already keeps its first RevokedAt and it is not an error. A
	// key of another tenant, or none, is a vigil.NotFound error.
	RevokeAPIKey(ctx context.Context, tenant, id string, at time.Time) error

	// APIKeys returns every key of tenant, revoked ones included, oldest
	// first (by CreatedAt, then ID). A tenant with none returns none and
	// no error.
	APIKeys(ctx context.Context, tenant string) ([]Key, error)
}

// KeySpec describes a key to create.
type KeySpec struct {
	Tenant string
	// User is who the key acts as; empty means a user of its own,
	// "key_<id>".
	User  string
	Roles []string
	Name  string
	// ExpiresAt, when not zero, must be in the future.
	ExpiresAt time.Time
}

// MaxKeyName is the longest key name, in characters.
const MaxKeyName = 100

// Keys creates, verifies, lists and revokes API keys over a Store. It is
// safe for concurrent use.
type Keys struct {
	store Store
	now   func() time.Time
}

// KeysOptions configure Keys; the zero value means defaults.
type KeysOptions struct {
	// Now is the clock of creation, revocation and expiry. Default
	// time.Now.
	Now func() time.Time
}

// NewKeys returns Keys over s.
func NewKeys(s Store, opts KeysOptions) *Keys {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Keys{store: s, now: opts.Now}
}

// Create makes a new key as spec says, stores its record, and returns the
// key itself, which is never stored and cannot be shown again, with the
// record. Bad input is a vigil.Invalid error naming the field.
func (ks *Keys) Create(ctx context.Context, spec KeySpec) (string, Key, error) {
	now := ks.now().UTC()
	if !vigil.ValidID(spec.Tenant) {
		return "", Key{}, vigil.FieldError("tenant", "want 1 to 128 characters from [A-Za-z0-9_.-], got %q", spec.Tenant)
	}
	if spec.User != "" && !vigil.ValidID(spec.User) {
		return "", Key{}, vigil.FieldError("user", "want 1 to 128 characters from [A-Za-z0-9_.-], got %q", spec.User)
	}
	roles, unknown := NormalizeRoles(spec.Roles)
	switch {
	case len(unknown) > 0:
		return "", Key{}, vigil.FieldError("roles", "unknown role %q; want %s", unknown[0], strings.Join(Roles(), ", "))
	case len(roles) == 0:
		return "", Key{}, vigil.FieldError("roles", "want at least one of %s", strings.Join(Roles(), ", "))
	}
	if utf8.RuneCountInString(spec.Name) > MaxKeyName {
		return "", Key{}, vigil.FieldError("name", "at most %d characters", MaxKeyName)
	}
	if !spec.ExpiresAt.IsZero() && !spec.ExpiresAt.After(now) {
		return "", Key{}, vigil.FieldError("expires_at", "must be in the future")
	}

	var idb [keyIDLen / 2]byte
	var secb [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", Key{}, fmt.Errorf("auth: create key: %w", err)
	}
	if _, err := rand.Read(secb[:]); err != nil {
		return "", Key{}, fmt.Errorf("auth: create key: %w", err)
	}
	id := hex.EncodeToString(idb[:])
	secret := strings.ToLower(secretEncoding.EncodeToString(secb[:]))
	sum := sha256.Sum256([]byte(secret))
	k := Key{
		ID: id, Tenant: spec.Tenant, User: spec.User, Roles: roles, Name: spec.Name,
		Hash: sum[:], CreatedAt: now,
	}
	if k.User == "" {
		k.User = "key_" + id
	}
	if !spec.ExpiresAt.IsZero() {
		k.ExpiresAt = spec.ExpiresAt.UTC()
	}
	if err := ks.store.CreateAPIKey(ctx, k); err != nil {
		return "", Key{}, fmt.Errorf("auth: create key: %w", err)
	}
	return KeyPrefix + id + "_" + secret, k, nil
}

// Verify returns the principal the API key raw acts as. An unknown key, a
// wrong secret, a revoked or an expired key is a vigil.Unauthorized error;
// a store that does not answer is the store's error.
func (ks *Keys) Verify(ctx context.Context, raw string) (vigil.Principal, error) {
	id, secret, ok := ParseKey(raw)
	if !ok {
		return vigil.Principal{}, vigil.Errorf(vigil.Unauthorized, "malformed API key")
	}
	k, err := ks.store.APIKey(ctx, id)
	if vigil.ErrorCode(err) == vigil.NotFound {
		// Spend the time a comparison takes, so that timing does not tell
		// an unknown id from a wrong secret.
		Key{Hash: make([]byte, sha256.Size)}.Matches(secret)
		return vigil.Principal{}, errInvalidKey
	}
	if err != nil {
		return vigil.Principal{}, fmt.Errorf("auth: verify key %s: %w", id, err)
	}
	if !k.Matches(secret) {
		return vigil.Principal{}, errInvalidKey
	}
	if k.Revoked() {
		return vigil.Principal{}, vigil.Errorf(vigil.Unauthorized, "API key %s was revoked", id)
	}
	if k.Expired(ks.now()) {
		return vigil.Principal{}, vigil.Errorf(vigil.Unauthorized, "API key %s has expired", id)
	}
	return vigil.Principal{Tenant: k.Tenant, User: k.User, Roles: k.Roles}, nil
}

var errInvalidKey = vigil.Errorf(vigil.Unauthorized, "invalid API key")

// Revoke revokes tenant's key id from now on. A key of another tenant is a
// vigil.NotFound error.
func (ks *Keys) Revoke(ctx context.Context, tenant, id string) error {
	if !vigil.ValidID(id) {
		return vigil.Errorf(vigil.NotFound, "API key %q not found", id)
	}
	if err := ks.store.RevokeAPIKey(ctx, tenant, id, ks.now().UTC()); err != nil {
		return fmt.Errorf("auth: revoke key %s: %w", id, err)
	}
	return nil
}

// List returns tenant's keys, oldest first, revoked ones included. The
// records hold hashes only; callers showing them drop Hash too.
func (ks *Keys) List(ctx context.Context, tenant string) ([]Key, error) {
	keys, err := ks.store.APIKeys(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("auth: list keys: %w", err)
	}
	return keys, nil
}

// ParseKey splits an API key into its id and secret, and reports whether
// raw has the form of one.
func ParseKey(raw string) (id, secret string, ok bool) {
	if len(raw) != keyLen || !strings.HasPrefix(raw, KeyPrefix) {
		return "", "", false
	}
	rest := raw[len(KeyPrefix):]
	id, secret = rest[:keyIDLen], rest[keyIDLen+1:]
	if rest[keyIDLen] != '_' || !all(id, isHexLower) || !all(secret, isBase32Lower) {
		return "", "", false
	}
	return id, secret, true
}

// LooksLikeKey reports whether s starts like an API key, well formed or
// not: what must never be accepted in a URL.
func LooksLikeKey(s string) bool { return strings.HasPrefix(s, KeyPrefix) }

func all(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isHexLower(c byte) bool    { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }
func isBase32Lower(c byte) bool { return 'a' <= c && c <= 'z' || '2' <= c && c <= '7' }

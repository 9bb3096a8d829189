package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
)

const (
	testIssuer   = "https://idp.example.com/"
	testAudience = "vigil"
)

var hsSecret = []byte("0123456789abcdef0123456789abcdef-test")

// claimsAt returns valid claims for tenant acme, issued at now.
func claimsAt(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer, "aud": testAudience, "sub": "alice", "tenant": "acme",
		"roles": []string{"member", "viewer"},
		"iat":   now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
}

func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newHS(t *testing.T, now *time.Time, names auth.ClaimNames) *auth.JWT {
	t.Helper()
	v, err := auth.NewJWT(auth.JWTOptions{
		HS256Secret: hsSecret, Issuer: testIssuer, Audience: testAudience, Claims: names,
		Now: func() time.Time { return *now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestJWTHS256(t *testing.T) {
	now := t0
	v := newHS(t, &now, auth.ClaimNames{})
	with := func(change func(c jwt.MapClaims)) jwt.MapClaims {
		c := claimsAt(now)
		change(c)
		return c
	}
	tests := []struct {
		name  string
		token string
		msg   string // "" for accepted
	}{
		{"valid", sign(t, jwt.SigningMethodHS256, hsSecret, "", claimsAt(now)), ""},
		{"expired within the leeway", sign(t, jwt.SigningMethodHS256, hsSecret, "", with(func(c jwt.MapClaims) { c["exp"] = now.Add(-20 * time.Second).Unix() })), ""},
		{"aud as a list", sign(t, jwt.SigningMethodHS256, hsSecret, "", with(func(c jwt.MapClaims) { c["aud"] = []string{"other", testAudience} })), ""},
		{"expired", sign(t, jwt.SigningMethodHS256, hsSecret, "", with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), "JWT has expired"},
		{"no exp", sign(t, jwt.SigningMethodHS256, hsSecret, "", with(func(c jwt.MapClaims) { delete(c, "exp") })), "JWT lacks a required claim (exp, iss or aud)"},
		{"wrong audience", sign(t, jwt.SigningMethodHS256, hsSecret, "", with(func(c jwt.MapClaims) { c["aud"] = "someone-else" })), "JWT audience is not accepted"},
		{"no audience", sign(t, jwt.SigningMethodHS256, hsSecret, "", with(func(c jwt.MapClaims) { delete(c, "aud") })), "JWT lacks a required claim"},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, hsSecret, "", with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com/" })), "JWT issuer is not accepted"},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, hsSecret, "", with(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() })), "JWT is not valid yet"},
		{"issued in the future", sign(t, jwt.SigningMethodHS256, hsSecret, "", with(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() })), "JWT is not valid yet"},
		{"other secret", sign(t, jwt.SigningMethodHS256, []byte("another secret, also 32 bytes long!"), "", claimsAt(now)), "JWT signature or algorithm is not accepted"},
		{"HS512", sign(t, jwt.SigningMethodHS512, hsSecret, "", claimsAt(now)), "JWT signature or algorithm is not accepted"},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claimsAt(now)), "JWT signature or algorithm is not accepted"},
		{"garbage", "a.b.c", "malformed JWT"},
		{"no tenant", sign(t, jwt.SigningMethodHS256, hsSecret, "", with(func(c jwt.MapClaims) { delete(c, "tenant") })), `JWT claim "tenant" must be a tenant id`},
		{"bad tenant", sign(t, jwt.SigningMethodHS256, hsSecret, "", with(func(c jwt.MapClaims) { c["tenant"] = "a/b" })), `JWT claim "tenant" must be a tenant id`},
		{"no subject", sign(t, jwt.SigningMethodHS256, hsSecret, "", with(func(c jwt.MapClaims) { delete(c, "sub") })), `JWT claim "sub" must be a non-empty string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tt.token)
			if tt.msg == "" {
				if err != nil || p.Tenant != "acme" || p.User != "alice" || !slices.Equal(p.Roles, []string{"member", "viewer"}) {
					t.Fatalf("Verify = %+v, %v", p, err)
				}
				return
			}
			if vigil.ErrorCode(err) != vigil.Unauthorized || !strings.HasPrefix(vigil.ErrorMessage(err), tt.msg) {
				t.Fatalf("Verify = %v (%q), want unauthorized %q", err, vigil.ErrorCode(err), tt.msg)
			}
		})
	}
}

func TestNewJWTOptions(t *testing.T) {
	for _, o := range []auth.JWTOptions{
		{Issuer: "i", Audience: "a"},
		{HS256Secret: hsSecret, JWKSURL: "https://x/jwks", Issuer: "i", Audience: "a"},
		{HS256Secret: []byte("short"), Issuer: "i", Audience: "a"},
		{HS256Secret: hsSecret, Audience: "a"},
		{HS256Secret: hsSecret, Issuer: "i"},
	} {
		if _, err := auth.NewJWT(o); err == nil {
			t.Errorf("NewJWT(%+v) accepted it", o)
		}
	}
}

func TestJWTCustomClaims(t *testing.T) {
	now := t0
	v := newHS(t, &now, auth.ClaimNames{Tenant: "https://vigil.example.com/tenant", User: "email", Roles: "realm_access.roles"})
	c := claimsAt(now)
	c["https://vigil.example.com/tenant"] = "globex"
	c["email"] = "Bob@example.com"
	c["realm_access"] = map[string]any{"roles": []any{"offline_access", "developer", 7}}
	p, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, hsSecret, "", c))
	if err != nil {
		t.Fatal(err)
	}
	if p.Tenant != "globex" || !vigil.ValidID(p.User) || !strings.HasPrefix(p.User, "u_") || !slices.Equal(p.Roles, []string{"developer"}) {
		t.Errorf("principal %+v", p)
	}
}

// --- JWKS ---

var (
	rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	rsaKey2 = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	ecKey = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]any {
	raw, err := k.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	n := (len(raw) - 1) / 2
	return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(raw[1 : 1+n]), "y": b64(raw[1+n:])}
}

// jwksServer serves a key set that a test can change, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]any
	down    bool
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, keys ...map[string]any) *jwksServer {
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(down bool, keys ...map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down, s.keys = down, keys
}

func newJWKSVerifier(t *testing.T, url string, now *time.Time) *auth.JWT {
	t.Helper()
	v, err := auth.NewJWT(auth.JWTOptions{
		JWKSURL: url, Issuer: testIssuer, Audience: testAudience,
		Now: func() time.Time { return *now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestJWTJWKS(t *testing.T) {
	ctx := context.Background()
	now := t0
	srv := newJWKSServer(t, rsaJWK("r1", &rsaKey().PublicKey), ecJWK("e1", &ecKey().PublicKey))
	v := newJWKSVerifier(t, srv.URL, &now)
	accept := func(name, token string) {
		t.Helper()
		if p, err := v.Verify(ctx, token); err != nil || p.Tenant != "acme" {
			t.Errorf("%s: Verify = %+v, %v", name, p, err)
		}
	}
	refuse := func(name, token, msg string) {
		t.Helper()
		if _, err := v.Verify(ctx, token); vigil.ErrorCode(err) != vigil.Unauthorized || !strings.Contains(vigil.ErrorMessage(err), msg) {
			t.Errorf("%s: Verify = %v, want unauthorized %q", name, err, msg)
		}
	}

	accept("RS256", sign(t, jwt.SigningMethodRS256, rsaKey(), "r1", claimsAt(now)))
	accept("ES256", sign(t, jwt.SigningMethodES256, ecKey(), "e1", claimsAt(now)))
	accept("RS256 without kid", sign(t, jwt.SigningMethodRS256, rsaKey(), "", claimsAt(now)))
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("%d fetches for known keys, want 1", n)
	}

	refuse("alg RS384 against an RS256 key", sign(t, jwt.SigningMethodRS384, rsaKey(), "r1", claimsAt(now)), "is not a RS384 key")
	refuse("an RSA token under the EC key's id", sign(t, jwt.SigningMethodRS256, rsaKey(), "e1", claimsAt(now)), `key "e1" is not a RS256 key`)
	// Algorithm confusion: HS256 keyed with the RSA public key's bytes.
	pub, _ := x509.MarshalPKIXPublicKey(&rsaKey().PublicKey)
	refuse("HS256 with the public key as secret", sign(t, jwt.SigningMethodHS256, pub, "r1", claimsAt(now)), "signature or algorithm is not accepted")
	refuse("signed by another key", sign(t, jwt.SigningMethodRS256, rsaKey2(), "r1", claimsAt(now)), "signature or algorithm is not accepted")
	c := claimsAt(now)
	c["aud"] = "other"
	refuse("wrong audience", sign(t, jwt.SigningMethodES256, ecKey(), "e1", c), "audience")

	// Key rotation: an unknown kid fetches the set again, once the
	// minimum interval since the last fetch has passed...
	now = now.Add(31 * time.Second)
	srv.set(false, rsaJWK("r1", &rsaKey().PublicKey), rsaJWK("r2", &rsaKey2().PublicKey))
	before := srv.fetches.Load()
	accept("rotated-in key", sign(t, jwt.SigningMethodRS256, rsaKey2(), "r2", claimsAt(now)))
	if n := srv.fetches.Load() - before; n != 1 {
		t.Errorf("%d fetches for an unknown kid, want 1", n)
	}
	// ...and not again within the minimum interval, however many unknown
	// kids arrive.
	for range 5 {
		refuse("unknown kid", sign(t, jwt.SigningMethodRS256, rsaKey(), "nope", claimsAt(now)), `key id "nope" is not in the JWKS`)
	}
	if n := srv.fetches.Load() - before; n != 1 {
		t.Errorf("%d fetches after unknown kids within the minimum interval, want 1", n)
	}
	now = now.Add(31 * time.Second)
	refuse("unknown kid later", sign(t, jwt.SigningMethodRS256, rsaKey(), "nope", claimsAt(now)), `key id "nope" is not in the JWKS`)
	if n := srv.fetches.Load() - before; n != 2 {
		t.Errorf("%d fetches once the minimum interval passed, want 2", n)
	}

	// A stale set is refetched; when the identity provider is down, the
	// keys in hand keep working.
	srv.set(true)
	now = now.Add(2 * time.Hour)
	before = srv.fetches.Load()
	accept("stale key, JWKS down", sign(t, jwt.SigningMethodRS256, rsaKey(), "r1", claimsAt(now)))
	if n := srv.fetches.Load() - before; n != 1 {
		t.Errorf("%d fetches for a stale set, want 1", n)
	}
	// The key the last good fetch dropped (e1) is gone.
	refuse("dropped key", sign(t, jwt.SigningMethodES256, ecKey(), "e1", claimsAt(now)), `key id "e1" is not in the JWKS`)
}

func TestJWTJWKSUnavailable(t *testing.T) {
	now := t0
	srv := newJWKSServer(t)
	srv.set(true)
	v := newJWKSVerifier(t, srv.URL, &now)
	_, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, ecKey(), "e1", claimsAt(now)))
	if vigil.ErrorCode(err) != vigil.Unavailable {
		t.Fatalf("Verify with the JWKS never fetched = %v, want unavailable", err)
	}
	// Garbage and short keys are skipped, not fatal.
	srv.set(false,
		map[string]any{"kty": "RSA", "kid": "short", "n": b64(big.NewInt(12345).Bytes()), "e": "AQAB"},
		map[string]any{"kty": "EC", "kid": "offcurve", "crv": "P-256", "x": b64(make([]byte, 32)), "y": b64(make([]byte, 32))},
		map[string]any{"kty": "oct", "kid": "sym", "k": b64(hsSecret)},
		ecJWK("e1", &ecKey().PublicKey),
	)
	now = now.Add(time.Minute)
	if p, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, ecKey(), "e1", claimsAt(now))); err != nil || p.User != "alice" {
		t.Fatalf("Verify once the JWKS is back = %+v, %v", p, err)
	}
}

// TestJWTJWKSConcurrent verifies from many goroutines while keys rotate,
// for the race detector.
func TestJWTJWKSConcurrent(t *testing.T) {
	now := t0
	srv := newJWKSServer(t, ecJWK("e1", &ecKey().PublicKey))
	v := newJWKSVerifier(t, srv.URL, &now)
	tok := sign(t, jwt.SigningMethodES256, ecKey(), "e1", claimsAt(now))
	unknown := sign(t, jwt.SigningMethodES256, ecKey(), "e2", claimsAt(now))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 20 {
				if _, err := v.Verify(context.Background(), tok); err != nil {
					t.Errorf("Verify: %v", err)
					return
				}
				if i%4 == 0 {
					_, _ = v.Verify(context.Background(), unknown)
				}
			}
		})
	}
	wg.Wait()
}

// TestJWTNoLeeway checks that a negative Leeway allows no clock skew: a
// token expired a second ago, accepted within the default leeway, is
// refused.
func TestJWTNoLeeway(t *testing.T) {
	now := t0
	tok := sign(t, jwt.SigningMethodHS256, hsSecret, "", func() jwt.MapClaims {
		c := claimsAt(now.Add(-10 * time.Minute))
		c["exp"] = now.Add(-time.Second).Unix()
		return c
	}())
	for _, tt := range []struct {
		leeway time.Duration
		ok     bool
	}{{0, true}, {-1, false}} {
		v, err := auth.NewJWT(auth.JWTOptions{
			HS256Secret: hsSecret, Issuer: testIssuer, Audience: testAudience, Leeway: tt.leeway,
			Now: func() time.Time { return now },
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(context.Background(), tok); (err == nil) != tt.ok {
			t.Errorf("Leeway %v: Verify = %v, want ok %v", tt.leeway, err, tt.ok)
		}
	}
}

package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/httpapi"
	"github.com/vigilhq/vigil/streams"
)

// quotaEnv is an API server with API keys and JWTs on, tenant A on a
// quota of 2 requests per minute, tenant B on none, a clock the test
// moves, and a stand-in for MCP at /mcp.
type quotaEnv struct {
	*httptest.Server
	keys   *auth.Keys
	clock  atomic.Int64 // unix nanoseconds
	thread string       // a thread of tenant A
}

func (e *quotaEnv) now() time.Time { return time.Unix(0, e.clock.Load()).UTC() }

func serveQuota(t *testing.T, withAuth bool, mods ...func(*httpapi.Options)) *quotaEnv {
	t.Helper()
	e := &quotaEnv{}
	e.clock.Store(time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC).UnixNano())
	backend := open(t, storeConfigs(t, 0)[config.DriverBolt])
	logger := slog.New(slog.DiscardHandler)
	opts := httpapi.Options{
		Log: backend, Hub: streams.NewHub(backend, streams.HubOptions{Logger: logger, Wait: time.Second}),
		Logger: logger, Now: e.now,
		RequestsPerMinute: func(tenant string) int {
			if tenant == tenantB {
				return 0
			}
			return 2
		},
	}
	tenant := vigil.DefaultTenant
	if withAuth {
		tenant = tenantA
		e.keys = auth.NewKeys(backend, auth.KeysOptions{Now: e.now})
		v, err := auth.NewJWT(auth.JWTOptions{HS256Secret: jwtSecret, Issuer: issuer, Audience: audience, Now: e.now})
		if err != nil {
			t.Fatal(err)
		}
		if opts.Auth, err = auth.New(auth.Options{Keys: e.keys, JWT: v, Now: e.now}); err != nil {
			t.Fatal(err)
		}
	}
	for _, mod := range mods {
		mod(&opts)
	}
	api := httpapi.New(opts)
	api.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	e.Server = httptest.NewServer(api)
	t.Cleanup(e.Server.Close)
	th := streams.Thread{ID: vigil.NewID("th_"), Tenant: tenant, Title: "t", CreatedAt: e.now()}
	if err := backend.CreateThread(context.Background(), th); err != nil {
		t.Fatal(err)
	}
	e.thread = th.ID
	return e
}

func (e *quotaEnv) key(t *testing.T, tenant, user string) string {
	t.Helper()
	raw, _, err := e.keys.Create(context.Background(), auth.KeySpec{Tenant: tenant, User: user, Roles: []string{auth.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + raw
}

// wantLimited checks that res is the 429 of an exhausted quota, with a
// Retry-After of retry seconds.
func wantLimited(t *testing.T, what string, res result, retry int) {
	t.Helper()
	if res.status != http.StatusTooManyRequests {
		t.Fatalf("%s: status %d, want 429; body %s", what, res.status, res.body)
	}
	ra := res.header.Get("Retry-After")
	if n, err := strconv.Atoi(ra); err != nil || n < 1 || n != retry {
		t.Errorf("%s: Retry-After %q, want %d (whole seconds, at least 1)", what, ra, retry)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
	if e := res.apiError(t); e.Error.Code != "rate_limited" || e.Error.Message != "this credential is over its quota of 2 requests per minute; retry in "+strconv.Itoa(retry)+"s" {
		t.Errorf("%s: error %+v", what, e.Error)
	}
}

func wantStatus(t *testing.T, what string, res result, want int) {
	t.Helper()
	if res.status != want {
		t.Fatalf("%s: status %d, want %d; body %s", what, res.status, want, res.body)
	}
}

// TestRequestQuota spends one API key's quota over REST, then checks that
// SSE and MCP are refused too, that the tenant's other key and a tenant
// without a quota go on, and that the bucket refills with the clock.
func TestRequestQuota(t *testing.T) {
	e := serveQuota(t, true)
	noisy, quiet, other := e.key(t, tenantA, "alice"), e.key(t, tenantA, "alice"), e.key(t, tenantB, "bob")
	thread := e.URL + "/v1/threads/" + e.thread

	wantStatus(t, "first", hit(t, "GET", thread, "", noisy), http.StatusOK)
	wantStatus(t, "second", hit(t, "GET", thread, "", noisy), http.StatusOK)
	wantLimited(t, "REST", hit(t, "GET", thread, "", noisy), 30)
	wantLimited(t, "SSE", hit(t, "GET", thread+"/events", "", noisy), 30)
	wantLimited(t, "MCP", hit(t, "POST", e.URL+"/mcp", "{}", noisy), 30)

	wantStatus(t, "the tenant's other key", hit(t, "GET", thread, "", quiet), http.StatusOK)
	for i := range 5 {
		// Tenant A's thread is not found in tenant B: past the quota.
		wantStatus(t, "tenant B, no quota, request "+strconv.Itoa(i), hit(t, "GET", thread, "", other), http.StatusNotFound)
	}
	// Health probes carry no credentials and are never limited.
	for range 5 {
		wantStatus(t, "healthz", hit(t, "GET", e.URL+"/healthz", "", ""), http.StatusOK)
	}
	// Refused requests took nothing: the wait only shrinks with time.
	e.clock.Add(int64(20 * time.Second))
	wantLimited(t, "after 20s", hit(t, "GET", thread, "", noisy), 10)

	// 2 a minute is one every 30s: after 30s in all, one more request.
	e.clock.Add(int64(10 * time.Second))
	wantStatus(t, "refilled", hit(t, "GET", thread, "", noisy), http.StatusOK)
	wantLimited(t, "spent again", hit(t, "GET", thread, "", noisy), 30)

	// An idle minute fills the bucket, never more than its size.
	e.clock.Add(int64(10 * time.Minute))
	wantStatus(t, "full, 1", hit(t, "GET", thread, "", noisy), http.StatusOK)
	wantStatus(t, "full, 2", hit(t, "GET", thread, "", noisy), http.StatusOK)
	wantLimited(t, "full, 3", hit(t, "GET", thread, "", noisy), 30)
}

// TestRequestQuotaJWT checks that the tokens of one JWT user share one
// bucket, and another user's do not.
func TestRequestQuotaJWT(t *testing.T) {
	e := serveQuota(t, true)
	ae := &authEnv{}
	ae.clock.Store(e.clock.Load())
	thread := e.URL + "/v1/threads/" + e.thread
	first := ae.jwt(t, tenantA, "carol", auth.Admin, nil)
	second := ae.jwt(t, tenantA, "carol", auth.Admin, func(c jwt.MapClaims) { c["jti"] = "another" })

	wantStatus(t, "first token", hit(t, "GET", thread, "", first), http.StatusOK)
	wantStatus(t, "second token", hit(t, "GET", thread, "", second), http.StatusOK)
	wantLimited(t, "same user", hit(t, "GET", thread, "", first), 30)
	wantStatus(t, "another user", hit(t, "GET", thread, "", ae.jwt(t, tenantA, "dave", auth.Admin, nil)), http.StatusOK)
}

// TestRequestQuotaAuthOff checks that with authentication off a client's
// address is its bucket, whatever header it sends.
func TestRequestQuotaAuthOff(t *testing.T) {
	e := serveQuota(t, false)
	thread := e.URL + "/v1/threads/" + e.thread
	wantStatus(t, "first", hit(t, "GET", thread, "", ""), http.StatusOK)
	wantStatus(t, "second", hit(t, "GET", thread, "", "Bearer vgl_made_up"), http.StatusOK)
	wantLimited(t, "third", hit(t, "GET", thread, "", "Bearer another.made.up"), 30)
}

// bucketsFunc is a Buckets made of a function.
type bucketsFunc func(key string, perMinute int) (time.Duration, error)

func (f bucketsFunc) Take(_ context.Context, key string, perMinute int) (time.Duration, error) {
	return f(key, perMinute)
}

// TestRequestQuotaSharedBuckets: with Options.Buckets the middleware asks
// them, not its own, names their wait in Retry-After, and lets requests
// through when they fail (the quota must not take the server down with
// its store).
func TestRequestQuotaSharedBuckets(t *testing.T) {
	var asked []string
	fail := false
	e := serveQuota(t, false, func(o *httpapi.Options) {
		o.Buckets = bucketsFunc(func(key string, perMinute int) (time.Duration, error) {
			asked = append(asked, fmt.Sprintf("%s/%d", key, perMinute))
			switch {
			case fail:
				return 0, errors.New("redis: connection refused")
			case len(asked) > 1:
				return 12500 * time.Millisecond, nil
			}
			return 0, nil
		})
	})
	thread := e.URL + "/v1/threads/" + e.thread
	wantStatus(t, "first", hit(t, "GET", thread, "", ""), http.StatusOK)
	wantLimited(t, "second", hit(t, "GET", thread, "", ""), 13)
	fail = true
	wantStatus(t, "with the buckets failing", hit(t, "GET", thread, "", ""), http.StatusOK)
	if want := []string{"addr:127.0.0.1/2", "addr:127.0.0.1/2", "addr:127.0.0.1/2"}; !slices.Equal(asked, want) {
		t.Errorf("asked the buckets %q; want %q", asked, want)
	}
}

package toolsregistry

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
)

// TestUserRate: each user of a tenant has a bucket of UserRate calls a
// minute; the (N+1)th call within the minute is vigil.TooMany naming the
// user and the quota, other users and tenants are not affected, a call
// with no user takes the principal's, and a refused call gives the
// tenant's token back.
func TestUserRate(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}
	r := newRegistry(t, Options{Now: clk.Now, UserRate: func(tenant string) int {
		if tenant == "acme" {
			return 3
		}
		return 0
	}})
	mustRegister(t, r, tool(Global, "free", 1), echo("f"))

	for range 3 {
		call(t, r, Request{Tenant: "acme", User: "alice", Tool: "free"})
	}
	e := callErr(t, r, Request{Tenant: "acme", User: "alice", Tool: "free"})
	if e.Code != vigil.TooMany || !e.Retryable || !near(e.RetryAfter, 20*time.Second) ||
		!strings.Contains(e.Message, "user alice is over the quota of 3 tool calls per minute; retry in 20s") {
		t.Errorf("alice's fourth call: %+v", e)
	}
	// The bucket refills at the quota's rate: one call every 20s.
	clk.Advance(20 * time.Second)
	call(t, r, Request{Tenant: "acme", User: "alice", Tool: "free"})
	if e := callErr(t, r, Request{Tenant: "acme", User: "alice", Tool: "free"}); e.Code != vigil.TooMany {
		t.Errorf("alice after one refill: %+v", e)
	}

	// bob has a bucket of his own; the principal stands for a request
	// without a user.
	bob := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: "bob"})
	for range 3 {
		if _, err := r.Call(bob, Request{Tenant: "acme", Tool: "free"}); err != nil {
			t.Fatalf("bob: %v", err)
		}
	}
	if _, err := r.Call(bob, Request{Tenant: "acme", Tool: "free"}); vigil.ErrorCode(err) != vigil.TooMany || !strings.Contains(err.Error(), "user bob") {
		t.Errorf("bob's fourth call: %v", err)
	}

	// Calls for no known user share one bucket; another tenant has no
	// user quota.
	for range 3 {
		call(t, r, Request{Tenant: "acme", Tool: "free"})
	}
	if e := callErr(t, r, Request{Tenant: "acme", Tool: "free"}); !strings.Contains(e.Message, "calls for no known user") {
		t.Errorf("no user: %+v", e)
	}
	for range 5 {
		call(t, r, Request{Tenant: "other", User: "alice", Tool: "free"})
	}
}

// TestUserRateGivesBack: a call the user's bucket refuses gives the
// tenant's token back.
func TestUserRateGivesBack(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}
	r := newRegistry(t, Options{Now: clk.Now,
		UserRate:   func(string) int { return 2 },
		TenantRate: func(string) int { return 4 },
	})
	mustRegister(t, r, tool(Global, "free", 1), echo("f"))
	call(t, r, Request{Tenant: "acme", User: "alice", Tool: "free"})
	call(t, r, Request{Tenant: "acme", User: "alice", Tool: "free"})
	if _, err := r.Call(context.Background(), Request{Tenant: "acme", User: "alice", Tool: "free"}); vigil.ErrorCode(err) != vigil.TooMany {
		t.Fatalf("alice's third call: %v", err)
	}
	call(t, r, Request{Tenant: "acme", User: "bob", Tool: "free"})
	call(t, r, Request{Tenant: "acme", User: "bob", Tool: "free"}) // the tenant's fourth token
	if e := callErr(t, r, Request{Tenant: "acme", User: "carol", Tool: "free"}); !strings.Contains(e.Message, "this tenant is over its quota") {
		t.Errorf("the tenant's fifth call: %+v", e)
	}
}

// TestUserRateSweep: buckets of users who went quiet are dropped, and a
// user back after a minute has a full bucket.
func TestUserRateSweep(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}
	r := newRegistry(t, Options{Now: clk.Now, UserRate: func(string) int { return 2 }})
	mustRegister(t, r, tool(Global, "free", 1), echo("f"))
	for i := range 50 {
		call(t, r, Request{Tenant: "acme", User: "u" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Tool: "free"})
	}
	clk.Advance(2 * time.Minute)
	call(t, r, Request{Tenant: "acme", User: "alice", Tool: "free"})
	r.userMu.Lock()
	n := len(r.users)
	r.userMu.Unlock()
	if n != 1 {
		t.Errorf("%d buckets after the sweep, want alice's only", n)
	}
}

package httpapi

import (
	"context"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
)

// Request quotas: limit, a middleware after authenticate, takes a token
// from the bucket of the request's credential before the request reaches
// the mux, so REST, SSE and MCP (/mcp) all count. A request over its quota
// is answered 429 with Retry-After and the API's JSON error shape.
//
// The bucket is the credential's, not the tenant's, so that one noisy key
// leaves the tenant's other keys working:
//
//   - an API key: its id;
//   - a JWT, or a stream token: the tenant and user it acts as (a JWT's
//     subject, by default);
//   - with authentication off: the client's address.
//
// Requests whose credentials failed have no bucket: guard answers them
// 401 without doing any work, and health probes without credentials are
// never limited. The size of a bucket is the tenant's requests per minute
// (Options.RequestsPerMinute), and it refills continuously at that rate.
// Buckets live in this process unless Options.Buckets shares them (the
// Redis store does, across instances); without it, behind a load balancer
// over n instances a credential may make up to n times its quota.

// Buckets holds request quota buckets outside the process, so that every
// instance counts against the same one.
type Buckets interface {
	// Take takes a token from key's bucket, which holds perMinute tokens
	// and refills at perMinute a minute, and returns 0; or, when the
	// bucket is empty, takes none and returns how long until a token is
	// free.
	Take(ctx context.Context, key string, perMinute int) (time.Duration, error)
}

// quotaSweep is how often idle buckets are dropped.
const quotaSweep = time.Minute

// limit is the request quota middleware; see above.
func (s *Server) limit(next http.Handler) http.Handler {
	if s.opts.RequestsPerMinute == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, tenant, ok := s.bucketOf(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		perMinute := s.opts.RequestsPerMinute(tenant)
		if perMinute <= 0 {
			next.ServeHTTP(w, r)
			return
		}
		if wait := s.takeToken(r, key, perMinute); wait > 0 {
			secs := retryAfter(wait)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			s.error(w, r, vigil.Errorf(vigil.TooMany,
				"this credential is over its quota of %d requests per minute; retry in %ds", perMinute, secs))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// takeToken takes a token from key's bucket, shared (Options.Buckets) or
// this process's, and returns how long to wait when there is none. A
// shared store that fails lets the request through: the quota protects
// the server, and refusing every request while Redis is away would do the
// harm it guards against.
func (s *Server) takeToken(r *http.Request, key string, perMinute int) time.Duration {
	if s.opts.Buckets == nil {
		return s.quotas.take(key, perMinute, s.opts.Now())
	}
	wait, err := s.opts.Buckets.Take(r.Context(), key, perMinute)
	if err != nil {
		s.opts.Logger.WarnContext(r.Context(), "httpapi: request quota not checked", "err", err)
		return 0
	}
	return wait
}

// bucketOf returns the bucket key of r's credential and the tenant whose
// plan sizes it; ok is false for a request without a principal.
func (s *Server) bucketOf(r *http.Request) (key, tenant string, ok bool) {
	ctx := r.Context()
	if _, failed := ctx.Value(failureKey).(error); failed {
		return "", "", false
	}
	p, ok := vigil.PrincipalFrom(ctx)
	if !ok {
		return "", "", false
	}
	if s.opts.Auth == nil {
		// Authentication is off, and any credential unchecked: the
		// address is all that tells clients apart.
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		return "addr:" + host, p.Tenant, true
	}
	if _, stream := ctx.Value(grantKey).(auth.StreamGrant); !stream {
		// authenticate verified this header into p.
		kind, token, err := auth.ParseAuthorization(r.Header.Get("Authorization"))
		if err == nil && kind == auth.KindAPIKey {
			if id, _, ok := auth.ParseKey(token); ok {
				return "key:" + id, p.Tenant, true
			}
		}
	}
	return "user:" + p.Tenant + "/" + p.User, p.Tenant, true
}

// retryAfter is wait in whole seconds, rounded up, at least 1: the value
// of a Retry-After header.
func retryAfter(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}

// quotaBuckets holds the token buckets of the credentials seen lately. It
// is safe for concurrent use.
type quotaBuckets struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

// take takes a token from key's bucket of perMinute tokens at now, and
// returns 0; or, when the bucket is empty, takes none and returns how long
// until a token is free.
func (q *quotaBuckets) take(key string, perMinute int, now time.Time) time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.buckets == nil {
		q.buckets, q.swept = map[string]*bucket{}, now
	}
	if now.Sub(q.swept) >= quotaSweep {
		q.sweep(now)
	}
	b := q.buckets[key]
	if b == nil {
		b = &bucket{tokens: float64(perMinute), at: now}
		q.buckets[key] = b
	}
	return b.take(perMinute, now)
}

// sweep drops the buckets that are full by now: a new bucket is the same.
func (q *quotaBuckets) sweep(now time.Time) {
	for k, b := range q.buckets {
		if b.full(now) {
			delete(q.buckets, k)
		}
	}
	q.swept = now
}

// bucket is a token bucket of size tokens that refills at size per
// minute. Its size is the quota it was last taken from, so a changed quota
// applies at the next request.
type bucket struct {
	tokens float64   // as of at
	at     time.Time // when tokens was last brought up to date
	size   int
}

// take refills b to now at perMinute, then takes a token (0) or says how
// long until one is free.
func (b *bucket) take(perMinute int, now time.Time) time.Duration {
	b.size = perMinute
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens += elapsed.Minutes() * float64(perMinute)
		b.at = now
	}
	b.tokens = min(b.tokens, float64(perMinute))
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	missing := 1 - b.tokens
	return max(time.Duration(missing/float64(perMinute)*float64(time.Minute)), time.Nanosecond)
}

// full reports whether b will have refilled by now.
func (b *bucket) full(now time.Time) bool {
	return b.tokens+now.Sub(b.at).Minutes()*float64(b.size) >= float64(b.size)
}

package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
)

// Validate reports every problem with c, joined with errors.Join; nil when
// there is none. Each problem is a *vigil.Error of code Invalid whose Field is
// the key's YAML path, as in "server.addr: want HOST:PORT, got \"7070\"".
//
// Every key is checked whatever the driver, so that a mistake shows before
// it matters; what a driver needs (a URL for redis, a directory for bolt) is
// checked for the driver chosen. Messages never quote a Redis URL, which may
// hold a password.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, vigil.FieldError(field, format, args...))
	}

	// server
	if err := checkAddr(c.Server.Addr); err != "" {
		bad("server.addr", "%s", err)
	} else if !isLoopback(c.Server.Addr) && !c.authConfigured() {
		bad("server.addr", "refusing to bind non-loopback address %s without authentication; configure auth or bind 127.0.0.1", c.Server.Addr)
	}
	positive(bad, "server.heartbeat", c.Server.Heartbeat)
	positive(bad, "server.shutdown_timeout", c.Server.ShutdownTimeout)
	if c.Server.BaseURL != "" {
		u, err := url.Parse(c.Server.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("server.base_url", "want an absolute http or https URL, got %q", c.Server.BaseURL)
		}
	}

	// log
	if _, ok := levels[c.Log.Level]; !ok {
		bad("log.level", "want one of debug, info, warn, error; got %q", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		bad("log.format", "want one of json, text; got %q", c.Log.Format)
	}

	// store
	switch c.Store.Driver {
	case DriverBolt:
		if c.Store.DataDir == "" {
			bad("store.data_dir", "bolt needs a data directory")
		}
	case DriverRedis:
		if c.Store.Redis.URL == "" {
			bad("store.driver", "redis needs store.redis.url")
		}
	default:
		bad("store.driver", "want one of bolt, redis; got %q", c.Store.Driver)
	}
	if c.Store.MaxEventsPerThread < 1 {
		bad("store.max_events_per_thread", "must be at least 1, got %d", c.Store.MaxEventsPerThread)
	}
	if c.Store.Redis.URL != "" {
		if err := checkRedisURL(c.Store.Redis.URL); err != "" {
			bad("store.redis.url", "%s", err)
		}
	}
	if !prefixPattern.MatchString(c.Store.Redis.Prefix) {
		bad("store.redis.prefix", "want 1 to 64 characters from [A-Za-z0-9_.:-], got %q", c.Store.Redis.Prefix)
	}
	if c.Store.Redis.MaxFollowers < 1 {
		bad("store.redis.max_followers", "must be at least 1, got %d", c.Store.Redis.MaxFollowers)
	}

	// memory
	if c.Memory.Key != "" {
		if k, err := base64.StdEncoding.DecodeString(c.Memory.Key); err != nil || len(k) != 32 {
			bad("memory.key", "want the base64 of 32 random bytes (openssl rand -base64 32)")
		}
	}
	if c.Memory.ShortTermTokens < 1 {
		bad("memory.short_term_tokens", "must be at least 1, got %d", c.Memory.ShortTermTokens)
	}

	// auth
	c.Auth.validate(bad)

	// execution
	c.validateExecution(bad)

	// quotas
	c.Quotas.validate(bad)

	return errors.Join(errs...)
}

// authConfigured reports whether requests must authenticate: whether
// auth.mode accepts any credential. Until it does, the server binds
// loopback only.
func (c Config) authConfigured() bool { return c.Auth.AcceptsKeys() || c.Auth.AcceptsJWT() }

// validate checks the auth section. Secrets are never quoted.
func (a Auth) validate(bad func(string, string, ...any)) {
	over := a.Scopes.Overrides()
	for _, role := range slices.Sorted(maps.Keys(over)) {
		for i, sc := range over[role] {
			if !auth.ValidScope(sc) {
				bad(fmt.Sprintf("auth.scopes.%s.%d", role, i), "want a scope such as read:web, read:* or *, got %q", sc)
			}
		}
	}
	switch a.Mode {
	case AuthNone, AuthKeys, AuthJWT, AuthKeysJWT:
	default:
		bad("auth.mode", "want one of none, keys, jwt, keys+jwt; got %q", a.Mode)
	}
	if a.StreamTokenTTL < time.Second || a.StreamTokenTTL > time.Hour {
		bad("auth.stream_token_ttl", "want from 1s to 1h (stream tokens are short-lived), got %s", a.StreamTokenTTL)
	}
	if a.StreamSecret != "" {
		if k, err := base64.StdEncoding.DecodeString(a.StreamSecret); err != nil || len(k) < 32 {
			bad("auth.stream_secret", "want the base64 of at least 32 random bytes (openssl rand -base64 32)")
		}
	}

	j := a.JWT
	if a.AcceptsJWT() {
		switch {
		case j.HS256Secret == "" && j.JWKSURL == "":
			bad("auth.jwt", "mode %s needs hs256_secret or jwks_url", a.Mode)
		case j.HS256Secret != "" && j.JWKSURL != "":
			bad("auth.jwt", "set hs256_secret or jwks_url, not both")
		}
		if j.Issuer == "" {
			bad("auth.jwt.issuer", "mode %s needs the issuer tokens must carry", a.Mode)
		}
		if j.Audience == "" {
			bad("auth.jwt.audience", "mode %s needs the audience tokens must carry", a.Mode)
		}
	}
	if j.HS256Secret != "" && len(j.HS256Secret) < 32 {
		bad("auth.jwt.hs256_secret", "must be at least 32 bytes")
	}
	if j.JWKSURL != "" {
		u, err := url.Parse(j.JWKSURL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			bad("auth.jwt.jwks_url", "want an absolute https URL, got %q", j.JWKSURL)
		case u.Scheme == "http" && !isLoopback(net.JoinHostPort(u.Hostname(), "0")):
			bad("auth.jwt.jwks_url", "want https (http only on loopback), got %q", j.JWKSURL)
		}
	}
	if j.Leeway < 0 || j.Leeway > 5*time.Minute {
		bad("auth.jwt.leeway", "want from 0s to 5m, got %s", j.Leeway)
	}
	for _, c := range []struct{ field, value string }{
		{"auth.jwt.tenant_claim", j.TenantClaim}, {"auth.jwt.user_claim", j.UserClaim}, {"auth.jwt.roles_claim", j.RolesClaim},
	} {
		if c.value == "" {
			bad(c.field, "must name a claim")
		}
	}
}

func positive(bad func(string, string, ...any), field string, d time.Duration) {
	if d <= 0 {
		bad(field, "must be positive, got %s", d)
	}
}

// checkAddr returns what is wrong with the listen address addr, or "".
func checkAddr(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "want HOST:PORT, got " + strconv.Quote(addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "want HOST:PORT with a port from 0 to 65535, got " + strconv.Quote(addr)
	}
	return ""
}

// isLoopback reports whether the listen address addr (valid for checkAddr)
// only accepts connections from this machine: a host of localhost or an IP
// in 127.0.0.0/8 or ::1. An empty host listens on every interface, and any
// other name may resolve to anything, so neither is loopback.
func isLoopback(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// checkRedisURL returns what is wrong with the Redis URL s, or "". It never
// quotes s, which may hold a password.
func checkRedisURL(s string) string {
	const want = "want redis://[user:pass@]host:port/db or rediss://…"
	u, err := url.Parse(s)
	if err != nil {
		return want // url's error quotes the URL, password and all
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return "scheme must be redis or rediss, got " + strconv.Quote(u.Scheme)
	}
	if u.Hostname() == "" {
		return want + "; the host is missing"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return want + "; the port must be from 1 to 65535"
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return want + "; the database must be a number"
		}
	}
	return ""
}

var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// validateExecution checks the workers, scheduler, retry, tools and llm
// sections.
func (c Config) validateExecution(bad func(string, string, ...any)) {
	w := c.Workers
	if w.Concurrency < 1 || w.Concurrency > 10_000 {
		bad("workers.concurrency", "want from 1 to 10000, got %d", w.Concurrency)
	}
	if w.TenantConcurrency < 1 || w.TenantConcurrency > max(w.Concurrency, 1) {
		bad("workers.tenant_concurrency", "want from 1 to workers.concurrency (%d), got %d", w.Concurrency, w.TenantConcurrency)
	}
	if w.Rate < 0 {
		bad("workers.rate", "must be 0 (no cap) or more, got %d", w.Rate)
	}
	if w.Lease < time.Second {
		bad("workers.lease", "want at least 1s, got %s", w.Lease)
	}
	positive(bad, "workers.stop_timeout", w.StopTimeout)
	if !w.Embedded && c.Store.Driver == DriverBolt {
		bad("workers.embedded", "the bolt store is one process's: its runs need workers inside vigil serve (use redis for vigil worker)")
	}

	s := c.Scheduler
	if s.Tick < 10*time.Millisecond || s.Tick > time.Minute {
		bad("scheduler.tick", "want from 10ms to 1m, got %s", s.Tick)
	}
	if s.Batch < 1 || s.Batch > 10_000 {
		bad("scheduler.batch", "want from 1 to 10000, got %d", s.Batch)
	}
	positive(bad, "scheduler.grace", s.Grace)
	if s.LeaseTTL < time.Second {
		bad("scheduler.lease_ttl", "want at least 1s, got %s", s.LeaseTTL)
	}
	// A sweep starts on a tick, and must not enqueue again the runs whose
	// creators are still enqueueing them (see Scheduler.SweepAfter). An
	// invalid tick is reported above, and not compared with.
	tick := s.Tick
	if tick < 10*time.Millisecond || tick > time.Minute {
		tick = 0
	}
	switch {
	case s.SweepEvery <= 0:
		bad("scheduler.sweep_every", "must be positive, got %s", s.SweepEvery)
	case s.SweepEvery < tick:
		bad("scheduler.sweep_every", "want at least scheduler.tick (%s), since sweeps start on ticks; got %s", tick, s.SweepEvery)
	}
	if floor := max(time.Second, tick); s.SweepAfter < floor {
		bad("scheduler.sweep_after", "want at least %s (1s, and at least scheduler.tick): a shorter wait races the enqueueing of new runs; got %s", floor, s.SweepAfter)
	}

	r := c.Retry
	if r.Transient < 0 || r.Transient > 10 {
		bad("retry.transient", "want from 0 to 10, got %d", r.Transient)
	}
	if _, err := r.Backoffs(); err != nil {
		bad("retry.backoff", "%v", err)
	}
	if r.JitterPercent < 0 || r.JitterPercent > 100 {
		bad("retry.jitter_percent", "want from 0 to 100, got %d", r.JitterPercent)
	}

	for _, a := range c.Tools.Allow {
		if strings.TrimSpace(a) == "" {
			bad("tools.allow", "an empty entry; want an address, a prefix or a host name")
		}
	}
	for _, u := range []struct{ field, value string }{
		{"tools.weather.geocoding_url", c.Tools.Weather.GeocodingURL},
		{"tools.weather.forecast_url", c.Tools.Weather.ForecastURL},
		{"tools.price.url", c.Tools.Price.URL},
		{"tools.news.url", c.Tools.News.URL},
	} {
		if err := checkBaseURL(u.value); err != "" {
			bad(u.field, "%s", err)
		}
	}

	l := c.LLM
	switch l.Provider {
	case "":
	case "openai", "ollama", "anthropic":
		if l.Model == "" {
			bad("llm.model", "provider %s needs a model name", l.Provider)
		}
	default:
		bad("llm.provider", "want one of \"\" (the offline model), openai, ollama, anthropic; got %q", l.Provider)
	}
	if l.BaseURL != "" {
		if u, err := url.Parse(l.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("llm.base_url", "want an absolute http or https URL, got %q", l.BaseURL)
		}
	}
	positive(bad, "llm.timeout", l.Timeout)
}

// checkBaseURL returns what is wrong with s as the base URL of a domain
// tool's API, or "": it must be an absolute http or https URL, and have
// no query or fragment, since the tool appends a path and sets the query.
// The URL is quoted with its password masked.
func checkBaseURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return "want an absolute http or https URL, got " + strconv.Quote(redactURL(s))
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "want a URL without a query or fragment (the tool adds its own), got " + strconv.Quote(u.Redacted())
	}
	return ""
}

// Backoffs returns Backoff as durations: each positive, at most a day, at
// most 10 of them.
func (r Retry) Backoffs() ([]time.Duration, error) {
	if len(r.Backoff) > 10 {
		return nil, fmt.Errorf("want at most 10 waits, got %d", len(r.Backoff))
	}
	ds := make([]time.Duration, 0, len(r.Backoff))
	for i, s := range r.Backoff {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d <= 0 || d > 24*time.Hour {
			return nil, fmt.Errorf("wait %d: want a duration from 1ms to 24h such as 10s, got %q", i+1, s)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

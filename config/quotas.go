package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
)

// Quotas configures what each tenant may use. Its four limits are the
// default plan, which every tenant gets; Tenants overrides some of them for
// some tenants. A limit of 0 means no limit.
type Quotas struct {
	// RequestsPerMinute caps the HTTP requests (REST, SSE and MCP) of one
	// credential: an API key, a JWT's user, or with auth.mode none the
	// client's address. A token bucket that holds a minute's worth, so a
	// quiet client may burst; over it, 429 with Retry-After. Each vigil
	// serve process keeps its own buckets.
	RequestsPerMinute int `yaml:"requests_per_minute"`

	// ToolCallsPerMinute caps the tool calls of one user of a tenant (the
	// owner of the task that makes them); calls made for no known user
	// share one bucket of the tenant. Over it a call fails rate_limited,
	// retryable.
	ToolCallsPerMinute int `yaml:"tool_calls_per_minute"`

	// MaxActiveTasks caps the tenant's active tasks: confirming or resuming
	// one more is refused (429, without Retry-After: waiting frees no
	// place) until another is paused, archived or deleted.
	MaxActiveTasks int `yaml:"max_active_tasks"`

	// MaxRunDuration bounds one attempt of a run; past it the run fails
	// for good, without a retry.
	MaxRunDuration time.Duration `yaml:"max_run_duration"`

	// Tenants overrides the plan for some tenants, one entry each: the
	// tenant, then key=value pairs separated by spaces, for the keys above
	// ("acme requests_per_minute=1200 max_active_tasks=50"). Keys an entry
	// leaves out keep the plan's value. In the environment, entries are
	// separated by commas.
	Tenants []string `yaml:"tenants"`
}

// Plan is the limits of one tenant. A limit of 0 means no limit.
type Plan struct {
	RequestsPerMinute  int
	ToolCallsPerMinute int
	MaxActiveTasks     int
	MaxRunDuration     time.Duration
}

// Limits is the plan of every tenant, read from Quotas.
type Limits struct {
	Default Plan            // the plan of a tenant without an override
	Tenants map[string]Plan // the tenants with an override, whole
}

// For returns tenant's plan: its override, else the default. It is safe
// for concurrent use.
func (l Limits) For(tenant string) Plan {
	if p, ok := l.Tenants[tenant]; ok {
		return p
	}
	return l.Default
}

// Default returns the default plan.
func (q Quotas) Default() Plan {
	return Plan{
		RequestsPerMinute:  q.RequestsPerMinute,
		ToolCallsPerMinute: q.ToolCallsPerMinute,
		MaxActiveTasks:     q.MaxActiveTasks,
		MaxRunDuration:     q.MaxRunDuration,
	}
}

// Limits returns every tenant's plan. Its error is the first problem
// Validate reports under quotas.tenants; after a successful Load there is
// none.
func (q Quotas) Limits() (Limits, error) {
	l, problems := q.overrides()
	if len(problems) > 0 {
		return Limits{}, vigil.FieldError("quotas.tenants", "%s", problems[0])
	}
	return l, nil
}

// overrides reads Tenants over the default plan, and describes every
// entry that does not parse or names a tenant named before.
func (q Quotas) overrides() (Limits, []string) {
	l := Limits{Default: q.Default(), Tenants: map[string]Plan{}}
	var problems []string
	first := map[string]int{}
	for i, entry := range q.Tenants {
		tenant, p, err := parseOverride(entry, l.Default)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("entry %d (%q): %v", i+1, entry, err))
		case first[tenant] > 0:
			problems = append(problems, fmt.Sprintf("entry %d (%q): tenant %s has entry %d already; give each tenant one", i+1, entry, tenant, first[tenant]))
		default:
			first[tenant] = i + 1
			l.Tenants[tenant] = p
		}
	}
	return l, problems
}

// quotaKeys are the keys an override may set, as in YAML.
const quotaKeys = "requests_per_minute, tool_calls_per_minute, max_active_tasks or max_run_duration"

// parseOverride reads one entry of Quotas.Tenants over the plan def.
func parseOverride(entry string, def Plan) (string, Plan, error) {
	fields := strings.Fields(entry)
	if len(fields) == 0 {
		return "", Plan{}, fmt.Errorf("empty; want a tenant and key=value pairs, such as \"acme max_active_tasks=50\"")
	}
	tenant := fields[0]
	if strings.Contains(tenant, "=") || !vigil.ValidID(tenant) {
		return "", Plan{}, fmt.Errorf("starts with %q; want a tenant id (1 to 128 characters from [A-Za-z0-9_.-]) first", tenant)
	}
	if len(fields) == 1 {
		return "", Plan{}, fmt.Errorf("sets nothing; want key=value pairs after the tenant, with the keys %s", quotaKeys)
	}
	p := def
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return "", Plan{}, fmt.Errorf("%q is not key=value", f)
		}
		if seen[k] {
			return "", Plan{}, fmt.Errorf("sets %s twice", k)
		}
		seen[k] = true
		var err error
		switch k {
		case "requests_per_minute":
			p.RequestsPerMinute, err = quotaInt(v, maxPerMinute)
		case "tool_calls_per_minute":
			p.ToolCallsPerMinute, err = quotaInt(v, maxPerMinute)
		case "max_active_tasks":
			p.MaxActiveTasks, err = quotaInt(v, maxActiveTasks)
		case "max_run_duration":
			p.MaxRunDuration, err = quotaDuration(v)
		default:
			return "", Plan{}, fmt.Errorf("unknown key %q; want %s", k, quotaKeys)
		}
		if err != nil {
			return "", Plan{}, fmt.Errorf("%s: %v", k, err)
		}
	}
	return tenant, p, nil
}

// The largest limits a plan may set.
const (
	maxPerMinute   = 1_000_000
	maxActiveTasks = 100_000
	maxRunDuration = 24 * time.Hour
)

// quotaInt parses a count from 0 (no limit) to most.
func quotaInt(s string, most int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > most {
		return 0, fmt.Errorf("want from 0 (no limit) to %d, got %q", most, s)
	}
	return n, nil
}

// quotaDuration parses a run duration: 0 (no limit), or from 1s to 24h.
func quotaDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || !validRunDuration(d) {
		return 0, fmt.Errorf("want 0 (no limit) or a duration from 1s to 24h, got %q", s)
	}
	return d, nil
}

func validRunDuration(d time.Duration) bool {
	return d == 0 || d >= time.Second && d <= maxRunDuration
}

// validate checks the quotas section: the plan's limits, then every
// override, each problem on its own.
func (q Quotas) validate(bad func(string, string, ...any)) {
	for _, c := range []struct {
		field   string
		n, most int
	}{
		{"quotas.requests_per_minute", q.RequestsPerMinute, maxPerMinute},
		{"quotas.tool_calls_per_minute", q.ToolCallsPerMinute, maxPerMinute},
		{"quotas.max_active_tasks", q.MaxActiveTasks, maxActiveTasks},
	} {
		if c.n < 0 || c.n > c.most {
			bad(c.field, "want from 0 (no limit) to %d, got %d", c.most, c.n)
		}
	}
	if !validRunDuration(q.MaxRunDuration) {
		bad("quotas.max_run_duration", "want 0 (no limit) or from 1s to 24h, got %s", q.MaxRunDuration)
	}
	_, problems := q.overrides()
	for _, p := range problems {
		bad("quotas.tenants", "%s", p)
	}
}

package toolsregistry

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/vigilhq/vigil"
)

// Options configure a Registry. The zero value means the defaults given
// for each field.
type Options struct {
	// Now is the clock of the rate limits, the cache and stale warnings;
	// nil means time.Now. (The breakers keep their own wall clock: gobreaker
	// takes no clock, so tests give them short pauses.)
	Now func() time.Time
	// Location is the zone of relative dates in repairs and of the times
	// in stale warnings, when a Request has none; nil means UTC.
	Location *time.Location
	// DefaultTimeout bounds a call of a tool without its own timeout;
	// zero means 30 seconds.
	DefaultTimeout time.Duration
	// MaxTimeout caps every tool's timeout; zero means 5 minutes.
	MaxTimeout time.Duration
	// TenantRate returns the most tool calls per minute a tenant may make
	// (a token bucket with a burst of the same size); nil, or a result of
	// zero or less, means no limit. It is asked on every call, so a changed
	// quota applies at once.
	TenantRate func(tenant string) int
	// UserRate returns the most tool calls per minute one user of a
	// tenant may make (Request.User): a token bucket per user with a
	// burst of the same size, so that one user's runs cannot spend the
	// whole tenant's quota. Calls for no known user share one bucket of
	// the tenant. Nil, or a result of zero or less, means no limit. It is
	// asked on every call, so a changed quota applies at once.
	UserRate func(tenant string) int
	// Breaker configures every tool's circuit breaker.
	Breaker BreakerOptions
	// CacheEntries and CacheBytes bound the result cache; zero means 4096
	// entries and 64 MiB.
	CacheEntries int
	CacheBytes   int
	// MaxStale is the oldest cached result a FallbackCached tool may
	// return; zero means 48 hours.
	MaxStale time.Duration
	// Logger receives breaker state changes; nil means slog.Default().
	Logger *slog.Logger
}

// BreakerOptions configure the circuit breaker of each tool version. The
// zero value means the defaults given for each field.
type BreakerOptions struct {
	// Failures is how many consecutive failed calls open the breaker;
	// zero means 5.
	Failures int
	// OpenFor is how long an open breaker refuses calls before it lets
	// trial calls through (half-open); zero means 30 seconds.
	OpenFor time.Duration
	// HalfOpenCalls is how many trial calls a half-open breaker lets
	// through, and how many must succeed to close it; zero means 1.
	HalfOpenCalls int
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.DefaultTimeout <= 0 {
		o.DefaultTimeout = 30 * time.Second
	}
	if o.MaxTimeout <= 0 {
		o.MaxTimeout = 5 * time.Minute
	}
	if o.Breaker.Failures <= 0 {
		o.Breaker.Failures = 5
	}
	if o.Breaker.OpenFor <= 0 {
		o.Breaker.OpenFor = 30 * time.Second
	}
	if o.Breaker.HalfOpenCalls <= 0 {
		o.Breaker.HalfOpenCalls = 1
	}
	if o.CacheEntries <= 0 {
		o.CacheEntries = 4096
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 64 << 20
	}
	if o.MaxStale <= 0 {
		o.MaxStale = 48 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Registry holds the tools of every tenant, versions side by side, and
// runs their calls (see Call). Global tools are visible to every tenant, a
// tenant's tools to that tenant only; a tenant's tool may not take the name
// of a global tool, nor a global tool the name of any tenant's, so that a
// name means one tool to each tenant.
//
// A Registry is safe for concurrent use; tools are registered and
// unregistered at runtime while calls run. A call that resolved a tool
// before it was unregistered finishes with it.
type Registry struct {
	opts  Options
	cache *resultCache

	mu        sync.RWMutex
	tools     map[toolKey]*family
	listeners map[int]func(Change)
	nextID    int

	tenantMu sync.Mutex
	tenants  map[string]*rate.Limiter

	// users are the per-user buckets (UserRate), keyed by tenant and
	// user; full ones are dropped every userSweep.
	userMu     sync.Mutex
	users      map[userKey]*rate.Limiter
	usersSwept time.Time

	serial atomic.Uint64 // numbers registrations, so cache keys never outlive a version
}

type toolKey struct{ tenant, name string }

// family is the versions of one tool name in one tenant.
type family struct {
	versions map[int]*entry
	pinned   int // the default version set by SetDefault, or 0 for the highest
}

func (f *family) defaultEntry() *entry {
	if e, ok := f.versions[f.pinned]; ok {
		return e
	}
	var best *entry
	for _, e := range f.versions {
		if best == nil || e.tool.Version > best.tool.Version {
			best = e
		}
	}
	return best
}

// entry is a registered tool version and what guards its calls.
type entry struct {
	tool    Tool
	handler Handler
	in, out *Schema
	serial  uint64
	timeout time.Duration
	limiter *rate.Limiter // nil without a rate limit
	breaker *gobreaker.CircuitBreaker[Output]
	opened  atomic.Int64 // when the breaker last opened, Unix nanoseconds
}

// New returns an empty registry.
func New(opts Options) *Registry {
	opts = opts.withDefaults()
	return &Registry{
		opts:      opts,
		cache:     newResultCache(opts.CacheEntries, opts.CacheBytes, opts.MaxStale),
		tools:     map[toolKey]*family{},
		listeners: map[int]func(Change){},
		tenants:   map[string]*rate.Limiter{},
		users:     map[userKey]*rate.Limiter{},
	}
}

// ChangeKind says what changed in the registry.
type ChangeKind string

// The kinds of change.
const (
	Registered   ChangeKind = "registered"
	Unregistered ChangeKind = "unregistered"
	// DefaultChanged: the version a bare name means was pinned or unpinned.
	DefaultChanged ChangeKind = "default_changed"
)

// Change is a change to the registry, as OnChange reports it: an MCP
// server announces tools/list_changed to the tenant's clients (all clients
// for Global), a Redis publisher tells the other instances.
type Change struct {
	Kind    ChangeKind `json:"kind"`
	Tenant  string     `json:"tenant,omitempty"`
	Name    string     `json:"name"`
	Version int        `json:"version"`
}

// OnChange calls fn after every change, with the registry's lock released,
// in the goroutine that made the change; fn must not block and may be
// called concurrently for concurrent changes. The returned function stops
// the calls.
func (r *Registry) OnChange(fn func(Change)) (stop func()) {
	r.mu.Lock()
	id := r.nextID
	r.nextID++
	r.listeners[id] = fn
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.listeners, id)
		r.mu.Unlock()
	}
}

func (r *Registry) notify(c Change) {
	r.mu.RLock()
	fns := make([]func(Change), 0, len(r.listeners))
	for _, fn := range r.listeners {
		fns = append(fns, fn)
	}
	r.mu.RUnlock()
	for _, fn := range fns {
		fn(c)
	}
}

// Register adds the tool version t, run by h, to t.Tenant's tools (every
// tenant's, for Global). It compiles the schemas once. Errors: vigil.Invalid
// naming the field at fault ("name", "input_schema"), vigil.Conflict when
// the version exists (versions are immutable, since tasks pin them:
// register a new version, or unregister first) or the name is taken
// across the global/tenant divide.
func (r *Registry) Register(t Tool, h Handler) error {
	if h == nil {
		return vigil.Errorf(vigil.Invalid, "tool %s has no handler", t.Ref())
	}
	t.Scopes = slices.Clone(t.Scopes)
	if err := t.check(); err != nil {
		return err
	}
	e := &entry{tool: t, handler: h, serial: r.serial.Add(1)}
	in := t.InputSchema
	if len(in) == 0 {
		in = []byte(`{"type":"object"}`)
	}
	var err error
	if e.in, err = compileSchema(in, "", t.Ref()+" arguments"); err != nil {
		return fieldOf("input_schema", err)
	}
	if !wantsType(e.in.resolve(e.in.doc), "object") {
		return vigil.FieldError("input_schema", `must describe an object ("type": "object"): arguments are named`)
	}
	e.tool.InputSchema = e.in.Raw()
	if len(t.OutputSchema) > 0 {
		if e.out, err = compileSchema(t.OutputSchema, "result", t.Ref()+" results"); err != nil {
			return fieldOf("output_schema", err)
		}
		e.tool.OutputSchema = e.out.Raw()
	}
	e.timeout = cmp.Or(t.Timeout, r.opts.DefaultTimeout)
	e.timeout = min(e.timeout, r.opts.MaxTimeout)
	if t.RateLimit > 0 {
		e.limiter = rate.NewLimiter(rate.Limit(float64(t.RateLimit)/60), t.RateLimit)
	}
	e.breaker = r.newBreaker(e)

	key := toolKey{t.Tenant, t.Name}
	r.mu.Lock()
	if err := r.conflict(key, t.Version); err != nil {
		r.mu.Unlock()
		return err
	}
	f := r.tools[key]
	if f == nil {
		f = &family{versions: map[int]*entry{}}
		r.tools[key] = f
	}
	f.versions[t.Version] = e
	r.mu.Unlock()
	r.notify(Change{Kind: Registered, Tenant: t.Tenant, Name: t.Name, Version: t.Version})
	return nil
}

// RegisterAll registers each definition in turn, stopping at the first
// error, which names the tool.
func (r *Registry) RegisterAll(defs []Definition) error {
	for _, d := range defs {
		if err := r.Register(d.Tool, d.Handler); err != nil {
			return fmt.Errorf("toolsregistry: register %s: %w", d.Tool.Ref(), err)
		}
	}
	return nil
}

// fieldOf moves a schema compilation error onto the schema's field.
func fieldOf(field string, err error) error {
	var ve *vigil.Error
	if errors.As(err, &ve) {
		return vigil.FieldError(field, "%s", ve.Message)
	}
	return err
}

// conflict reports why key's version may not be registered. r.mu is held.
func (r *Registry) conflict(key toolKey, version int) error {
	if f := r.tools[key]; f != nil {
		if _, ok := f.versions[version]; ok {
			return vigil.Errorf(vigil.Conflict, "tool %s@%d is already registered", key.name, version)
		}
	}
	if key.tenant != Global {
		if _, ok := r.tools[toolKey{Global, key.name}]; ok {
			return vigil.Errorf(vigil.Conflict, "%s is the name of a built-in tool; choose another name", key.name)
		}
		return nil
	}
	for k := range r.tools {
		if k.name == key.name && k.tenant != Global {
			return vigil.Errorf(vigil.Conflict, "a tenant has a tool named %s; a global tool needs a name of its own", key.name)
		}
	}
	return nil
}

func (r *Registry) newBreaker(e *entry) *gobreaker.CircuitBreaker[Output] {
	b := r.opts.Breaker
	ref := e.tool.Ref()
	return gobreaker.NewCircuitBreaker[Output](gobreaker.Settings{
		Name:        ref,
		MaxRequests: uint32(b.HalfOpenCalls),
		Timeout:     b.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= uint32(b.Failures) },
		IsExcluded: func(err error) bool {
			var ex callerFault
			return errors.As(err, &ex)
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				e.opened.Store(time.Now().UnixNano())
			}
			r.opts.Logger.Warn("toolsregistry: circuit breaker changed state",
				"tool", ref, "tenant", e.tool.Tenant, "from", from.String(), "to", to.String())
		},
	})
}

// Unregister removes tenant's tool ref: one version for "name@version",
// every version for a bare name. Global tools are unregistered with tenant
// Global. It is a vigil.NotFound error when there is no such tool.
func (r *Registry) Unregister(tenant, ref string) error {
	name, version, err := ParseRef(ref)
	if err != nil {
		return err
	}
	key := toolKey{tenant, name}
	r.mu.Lock()
	f := r.tools[key]
	var removed []int
	if f != nil {
		for v := range f.versions {
			if version == 0 || v == version {
				delete(f.versions, v)
				removed = append(removed, v)
			}
		}
		if _, ok := f.versions[f.pinned]; !ok {
			f.pinned = 0
		}
		if len(f.versions) == 0 {
			delete(r.tools, key)
		}
	}
	r.mu.Unlock()
	if len(removed) == 0 {
		return vigil.Errorf(vigil.NotFound, "no tool %s", ref)
	}
	slices.Sort(removed)
	for _, v := range removed {
		r.notify(Change{Kind: Unregistered, Tenant: tenant, Name: name, Version: v})
	}
	return nil
}

// SetDefault pins the version a bare name resolves to for tenant's tool
// name; version 0 unpins it, so that the highest version is the default
// again. It is a vigil.NotFound error when the version is not registered.
// Unregistering a pinned version unpins it.
func (r *Registry) SetDefault(tenant, name string, version int) error {
	r.mu.Lock()
	f := r.tools[toolKey{tenant, name}]
	if f == nil {
		r.mu.Unlock()
		return vigil.Errorf(vigil.NotFound, "no tool %s", name)
	}
	if _, ok := f.versions[version]; version != 0 && !ok {
		r.mu.Unlock()
		return vigil.Errorf(vigil.NotFound, "no tool %s@%d", name, version)
	}
	f.pinned = version
	r.mu.Unlock()
	r.notify(Change{Kind: DefaultChanged, Tenant: tenant, Name: name, Version: version})
	return nil
}

// resolve finds the entry ref names for tenant: the tenant's own tool
// first, else a global one. Tools of other tenants are never found, and
// not finding one says nothing about them.
func (r *Registry) resolve(tenant, ref string) (*entry, error) {
	name, version, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	f := r.tools[toolKey{tenant, name}]
	if f == nil {
		f = r.tools[toolKey{Global, name}]
	}
	if f != nil {
		if version == 0 {
			return f.defaultEntry(), nil
		}
		if e, ok := f.versions[version]; ok {
			return e, nil
		}
	}
	return nil, vigil.Errorf(vigil.NotFound, "no tool %s", ref)
}

// Resolve returns the tool ref ("name" for the default version, or
// "name@version") means for tenant. It is a vigil.NotFound error when
// tenant sees no such tool, a vigil.Invalid error when ref is malformed.
func (r *Registry) Resolve(tenant, ref string) (Tool, error) {
	e, err := r.resolve(tenant, ref)
	if err != nil {
		return Tool{}, err
	}
	return e.tool.clone(), nil
}

// Schema returns the compiled input schema of the tool ref, for a caller
// that validates or repairs arguments before it calls (Call does both).
func (r *Registry) Schema(tenant, ref string) (*Schema, error) {
	e, err := r.resolve(tenant, ref)
	if err != nil {
		return nil, err
	}
	return e.in, nil
}

// Listing is a tool as List shows it: the tool and whether it is the
// version its bare name resolves to.
type Listing struct {
	Tool    Tool `json:"tool"`
	Default bool `json:"default"`
}

// List returns every tool version tenant sees, global and its own, sorted
// by name and version.
func (r *Registry) List(tenant string) []Listing {
	r.mu.RLock()
	var out []Listing
	for key, f := range r.tools {
		if key.tenant != Global && key.tenant != tenant {
			continue
		}
		def := f.defaultEntry()
		for _, e := range f.versions {
			out = append(out, Listing{Tool: e.tool.clone(), Default: e == def})
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Listing) int {
		return cmp.Or(cmp.Compare(a.Tool.Name, b.Tool.Name), cmp.Compare(a.Tool.Version, b.Tool.Version))
	})
	return out
}

// clone copies the slices of t, so that a caller cannot change the
// registry's copy.
func (t Tool) clone() Tool {
	t.Scopes = slices.Clone(t.Scopes)
	t.InputSchema = slices.Clone(t.InputSchema)
	t.OutputSchema = slices.Clone(t.OutputSchema)
	return t
}

// tenantLimiter returns tenant's token bucket, or nil without a limit.
func (r *Registry) tenantLimiter(tenant string) *rate.Limiter {
	if r.opts.TenantRate == nil {
		return nil
	}
	n := r.opts.TenantRate(tenant)
	r.tenantMu.Lock()
	defer r.tenantMu.Unlock()
	lim := r.tenants[tenant]
	if n <= 0 {
		delete(r.tenants, tenant)
		return nil
	}
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(float64(n)/60), n)
		r.tenants[tenant] = lim
	} else if lim.Burst() != n {
		now := r.opts.Now()
		lim.SetLimitAt(now, rate.Limit(float64(n)/60))
		lim.SetBurstAt(now, n)
	}
	return lim
}

// userKey names a user's bucket: the user "" is the tenant's shared
// bucket of calls made for no known user.
type userKey struct{ tenant, user string }

// userSweep is how often the buckets of idle users are dropped.
const userSweep = time.Minute

// userLimiter returns the bucket of user in tenant at now, or nil without
// a limit. Buckets that have refilled are dropped once a minute: a new
// bucket is the same, and users come and go.
func (r *Registry) userLimiter(tenant, user string, now time.Time) *rate.Limiter {
	if r.opts.UserRate == nil {
		return nil
	}
	n := r.opts.UserRate(tenant)
	k := userKey{tenant, user}
	r.userMu.Lock()
	defer r.userMu.Unlock()
	if now.Sub(r.usersSwept) >= userSweep {
		for uk, lim := range r.users {
			if lim.TokensAt(now) >= float64(lim.Burst()) {
				delete(r.users, uk)
			}
		}
		r.usersSwept = now
	}
	lim := r.users[k]
	if n <= 0 {
		delete(r.users, k)
		return nil
	}
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(float64(n)/60), n)
		r.users[k] = lim
	} else if lim.Burst() != n {
		lim.SetLimitAt(now, rate.Limit(float64(n)/60))
		lim.SetBurstAt(now, n)
	}
	return lim
}

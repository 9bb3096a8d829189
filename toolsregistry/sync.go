package toolsregistry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigilhq/vigil"
)

// SyncOptions configure a Sync. The zero value means the defaults given for
// each field.
type SyncOptions struct {
	// Store persists the plugins and reports the changes other instances
	// make. Nil keeps plugins in this registry only, lost when the process
	// ends (tests, and servers without a store).
	Store PluginStore
	// Key is the 32-byte key plugin secrets are sealed under. Vigil
	// passes the memory key (memory.key, or the bolt store's key file),
	// from which Sync derives a key of its own; every instance sharing the
	// store needs the same one. With a Store and no Key, registering
	// answers vigil.Unavailable and stored plugins do not load (each is
	// logged), since their secrets cannot be sealed or opened.
	Key []byte
	// Guard keeps HTTP plugin tools and remote MCP servers away from
	// non-public addresses; nil means a guard with no allowances.
	Guard *Guard
	// ResyncEvery is how often the stored plugins are reloaded in full, in
	// case a change message was lost without the watch noticing; zero means
	// one minute, negative never.
	ResyncEvery time.Duration
	// Logger receives plugins that cannot load and failures of the watch;
	// nil means slog.Default().
	Logger *slog.Logger
}

// Sync keeps a Registry's plugin tools in step with a PluginStore, and is
// the one way plugin tools are registered and unregistered (REST's
// /v1/tools and MCP's register_tool both call it):
//
//   - Register checks a spec, seals its secrets, writes it to the store and
//     registers it in this registry at once;
//   - Start registers every stored plugin, then applies the changes the
//     store reports (other instances', and this one's own echoes, which are
//     recognised by revision and change nothing), so that each instance's
//     registry fires OnChange and its MCP server announces
//     tools/list_changed;
//   - a full reload (at Start, when the store says changes may have been
//     missed, when a revision is skipped, and every ResyncEvery) registers
//     what is missing and unregisters what is gone.
//
// Remote MCP servers (kind mcp) follow the same path as mounts: Mount
// connects to the server before it stores the spec, so that a server that
// cannot be reached is refused; a stored one is mounted in the background
// on every instance (Start does not wait for it), and a full reload mounts
// again the stored servers whose mount failed, such as a server that was
// down. Unregistering the namespace unmounts the server everywhere.
//
// Sync only touches the tools and mounts it made itself: built-in and
// other tools and mounts in the registry are left alone. A Sync is safe
// for concurrent use.
type Sync struct {
	reg    *Registry
	opts   SyncOptions
	sealer *sealer // nil without a key

	mu    sync.Mutex
	state map[pluginKey]pluginState
	// floor is the revision of the last full reload: every change up to it
	// is reflected already, so the watch's changes up to it are ignored.
	floor uint64
	// watched is the revision of the last change the watch reported, to
	// notice a skipped one.
	watched uint64
	// local numbers the changes when there is no store.
	local uint64

	// bg bounds the mounts made in the background; Close ends it and
	// waits for them (mounting).
	bg       context.Context
	endBG    context.CancelFunc
	mounting sync.WaitGroup

	stop func()
	done chan struct{}
}

// pluginKey names one plugin version.
type pluginKey struct {
	tenant, name string
	version      int
}

func keyOf(t Tool) pluginKey { return pluginKey{t.Tenant, t.Name, t.Version} }

func (k pluginKey) ref() string { return k.name + "@" + strconv.Itoa(k.version) }

// pluginState is the latest change Sync applied to one plugin version.
type pluginState struct {
	rev  uint64 // the revision of the change
	live bool   // whether the version is registered (by this Sync), or mounted
	err  error  // why a stored version is not registered or mounted

	// A remote MCP server's: its spec (without headers when its secrets
	// do not open), its mount while live, and whether a mount is being
	// made in the background.
	remote   *RemoteSpec
	mount    *Mount
	mounting bool
}

// NewSync returns a Sync over reg. It fails when a Key is given that is not
// PluginKeySize bytes long. Nothing is loaded until Start.
func NewSync(reg *Registry, opts SyncOptions) (*Sync, error) {
	if opts.ResyncEvery == 0 {
		opts.ResyncEvery = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Sync{reg: reg, opts: opts, state: map[pluginKey]pluginState{}}
	s.bg, s.endBG = context.WithCancel(context.Background())
	if opts.Key != nil {
		var err error
		if s.sealer, err = newSealer(opts.Key); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Start registers every stored plugin in the registry and watches the
// store for changes until Close. It returns once the stored plugins are
// registered; a plugin that cannot be (its secrets do not open, its name
// is taken) is logged and skipped. It fails only when the store cannot be
// read or watched. Without a store it does nothing. Start is called once.
func (s *Sync) Start(ctx context.Context) error {
	if s.opts.Store == nil {
		return nil
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ch, err := s.opts.Store.WatchPlugins(runCtx)
	if err != nil {
		cancel()
		return fmt.Errorf("toolsregistry: watch plugins: %w", err)
	}
	n, err := s.reload(ctx)
	if err != nil {
		cancel()
		return err
	}
	s.opts.Logger.Info("toolsregistry: plugin tools loaded", "plugins", n)
	s.stop, s.done = cancel, make(chan struct{})
	go s.run(runCtx, ch)
	return nil
}

// Close stops watching the store and waits for the watch, and the mounts
// being made in the background, to end. The registered plugins stay
// registered, and the mounted servers mounted.
func (s *Sync) Close() {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
	s.endBG()
	s.mounting.Wait()
}

// Register registers tenant's plugin tool spec: it checks the spec as the
// registry would (vigil.Invalid naming the field, vigil.Conflict for a
// version or name that is taken), stores it with its secrets sealed, and
// registers it here at once, so that tasks can call it when Register
// returns; other instances follow within about a second. It returns the
// tool as the tenant now sees it.
//
// A remote MCP server (kind mcp) is mounted with Mount instead: Register
// refuses it, naming the field kind.
func (s *Sync) Register(ctx context.Context, tenant string, spec PluginSpec) (Listing, error) {
	p, sec, err := spec.plugin(tenant)
	if err != nil {
		return Listing{}, err
	}
	if p.Kind == PluginMCP {
		return Listing{}, vigil.FieldError("kind", "a remote MCP server (kind mcp) is mounted, not registered as one tool")
	}
	h, err := s.handler(p, sec)
	if err != nil {
		return Listing{}, err
	}
	if err := s.check(p.Tool, h); err != nil {
		return Listing{}, err
	}
	if err := s.store(ctx, p, sec, running{h: h}); err != nil {
		return Listing{}, err
	}
	for _, l := range s.reg.List(tenant) {
		if l.Tool.Tenant == tenant && l.Tool.Name == p.Tool.Name && l.Tool.Version == p.Tool.Version {
			return l, nil
		}
	}
	// Unregistered again by a concurrent call.
	return Listing{}, vigil.Errorf(vigil.Conflict, "tool %s was unregistered while it was being registered", p.Ref())
}

// Mount mounts the remote MCP server spec describes (kind mcp) for tenant:
// it checks the spec (vigil.Invalid naming the field; a command is
// refused), connects to the server through the Guard and mounts its tools
// under the namespace, as Registry.Mount does and with its errors, then
// stores the spec with its headers sealed. The tools can be called when
// Mount returns; other instances mount the server within about a second.
// It returns the mount as Mounts lists it.
//
// A namespace is mounted once per tenant: mounting it again is a
// vigil.Conflict error. Unregister the namespace to unmount the server.
func (s *Sync) Mount(ctx context.Context, tenant string, spec PluginSpec) (MountInfo, error) {
	if spec.Kind != PluginMCP {
		return MountInfo{}, vigil.FieldError("kind", "must be mcp to mount a remote MCP server")
	}
	p, sec, err := spec.plugin(tenant)
	if err != nil {
		return MountInfo{}, err
	}
	if s.opts.Store != nil && s.sealer == nil {
		return MountInfo{}, errNoKey
	}
	m, err := s.reg.Mount(ctx, p.remoteSpec(sec, s.opts.Guard))
	if err != nil {
		return MountInfo{}, err
	}
	if err := s.store(ctx, p, sec, running{m: m}); err != nil {
		_ = m.Close()
		return MountInfo{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state[keyOf(p.Tool)]
	if st.remote == nil {
		// Unregistered again by a concurrent call.
		return MountInfo{}, vigil.Errorf(vigil.Conflict, "the namespace %s was unmounted while it was being mounted", p.Namespace)
	}
	return st.info(), nil
}

// Unregister removes tenant's plugin tool ref, "name@version" for one
// version or a bare name for every version, from the store and from this
// registry at once; other instances follow within about a second. The
// namespace of a remote MCP server unmounts it. It is a vigil.NotFound
// error when the tenant has no such plugin, a vigil.Forbidden error for
// the name of a built-in tool, and a vigil.Invalid error for one tool of a
// mounted server, which comes and goes with the server.
func (s *Sync) Unregister(ctx context.Context, tenant, ref string) error {
	name, version, err := ParseRef(ref)
	if err != nil {
		return err
	}
	if !vigil.ValidID(tenant) {
		return vigil.FieldError("tenant", "must be a tenant id: plugin tools belong to a tenant")
	}
	if s.opts.Store == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		var keys []pluginKey
		for k, st := range s.state {
			if st.live && k.tenant == tenant && k.name == name && (version == 0 || k.version == version) {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			return s.notPlugin(tenant, name, ref)
		}
		s.local++
		for _, k := range keys {
			s.removeLocked(k, s.local)
		}
		return nil
	}
	c, err := s.opts.Store.DeletePlugin(ctx, tenant, ref)
	if vigil.ErrorCode(err) == vigil.NotFound {
		return s.notPlugin(tenant, name, ref)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Rev > s.floor {
		s.deleteLocked(*c.Deleted, c.Rev)
	}
	return nil
}

// running is what runs a loaded plugin: an HTTP tool's handler, or the
// mount of a remote MCP server.
type running struct {
	h Handler
	m *Mount
}

// store stores the checked plugin p, run by run, and registers it here.
// When it fails, run's mount is the caller's to close.
func (s *Sync) store(ctx context.Context, p Plugin, sec pluginSecrets, run running) error {
	if s.opts.Store == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.local++
		p.Rev = s.local
		return s.putLocked(p, &run)
	}
	if s.sealer == nil {
		return errNoKey
	}
	var err error
	if p.Sealed, err = s.sealer.seal(p.Tool, sec); err != nil {
		return err
	}
	c, err := s.opts.Store.PutPlugin(ctx, p)
	if err != nil {
		return err
	}
	k := keyOf(p.Tool)
	s.mu.Lock()
	switch {
	case c.Rev > s.floor && s.state[k].rev < c.Rev:
		err = s.putLocked(*c.Put, &run)
	case run.m == nil:
		err = s.state[k].err // the watch or a reload applied it first
	case s.adoptLocked(k, c.Rev, run.m):
		// The watch or a reload applied it first, and its mount in the
		// background cannot take the namespace run.m holds.
	default:
		s.mu.Unlock()
		_ = run.m.Close() // a later change has removed it
		return nil
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("toolsregistry: plugin %s is stored but does not load: %w", p.Ref(), err)
	}
	return nil
}

// errNoKey answers what needs plugin secrets sealed or opened when Sync
// has a store but no key.
var errNoKey = vigil.Errorf(vigil.Unavailable, "plugin tools cannot be stored or loaded without an encryption key: set memory.key (VIGIL_MEMORY_KEY), the same on every instance")

// List returns every tool tenant sees, built-in and its own, as
// Registry.List does.
func (s *Sync) List(tenant string) []Listing { return s.reg.List(tenant) }

// notPlugin explains why name is not one of the tenant's plugins.
func (s *Sync) notPlugin(tenant, name, ref string) error {
	if _, err := s.reg.Resolve(Global, name); err == nil {
		return vigil.Errorf(vigil.Forbidden, "%s is a built-in tool; only your tenant's plugin tools can be removed", name)
	}
	if m, ok := s.reg.MountOf(tenant, name); ok {
		ns := m.Spec().Namespace
		return vigil.Errorf(vigil.Invalid, "%s is a tool of the remote MCP server mounted as %s, and comes and goes with it; unregister %s to unmount the whole server", name, ns, ns)
	}
	return vigil.Errorf(vigil.NotFound, "no plugin tool %s", ref)
}

// check reports what would keep the tool t, run by h, from registering
// here: its fields and schemas, found by registering it in a throwaway
// registry (so that Registry.Register stays the one definition of a valid
// tool), and a clash with a tool of this registry. The store is written
// only after check passes, so that no instance loads a tool that cannot
// register.
func (s *Sync) check(t Tool, h Handler) error {
	scratch := New(Options{CacheEntries: 1, CacheBytes: 1, Logger: s.opts.Logger})
	if err := scratch.Register(t, h); err != nil {
		return err
	}
	ns, _, _ := strings.Cut(t.Name, ".")
	for _, m := range append(s.reg.Mounts(t.Tenant), s.reg.Mounts(Global)...) {
		if m.spec.Namespace == ns {
			return vigil.Errorf(vigil.Conflict, "the namespace %s is a mounted remote MCP server's; choose another name", ns)
		}
	}
	s.reg.mu.RLock()
	defer s.reg.mu.RUnlock()
	return s.reg.conflict(toolKey{t.Tenant, t.Name}, t.Version)
}

// handler returns what runs the HTTP plugin p with its secrets.
func (s *Sync) handler(p Plugin, sec pluginSecrets) (Handler, error) {
	if p.Kind != PluginHTTP {
		return nil, vigil.Errorf(vigil.Invalid, "plugin kind %q is not served by a handler", p.Kind)
	}
	return NewHTTPHandler(HTTPOptions{URL: p.URL, Secret: sec.Secret, Guard: s.opts.Guard})
}

// secrets opens the sealed secrets of the stored plugin p.
func (s *Sync) secrets(p Plugin) (pluginSecrets, error) {
	if s.sealer == nil {
		return pluginSecrets{}, errNoKey
	}
	return s.sealer.open(p.Tool, p.Sealed)
}

// putLocked registers the stored plugin p, run by run (nil: made from p's
// sealed secrets), unless a change as recent is applied already; a
// registered older version of the same name and version is replaced. A
// remote MCP server without a mount is mounted in the background. It
// returns why p is not registered, if it is not. s.mu is held.
func (s *Sync) putLocked(p Plugin, run *running) error {
	k := keyOf(p.Tool)
	st := s.state[k]
	if st.rev >= p.Rev {
		return st.err
	}
	s.unregisterLocked(k, st)
	if p.Kind == PluginMCP {
		return s.putRemoteLocked(p, run)
	}
	var (
		h   Handler
		err error
	)
	if run != nil {
		h = run.h
	} else {
		var sec pluginSecrets
		if sec, err = s.secrets(p); err == nil {
			h, err = s.handler(p, sec)
		}
	}
	if err == nil {
		err = s.reg.Register(p.Tool, h)
	}
	s.state[k] = pluginState{rev: p.Rev, live: err == nil, err: err}
	if err != nil {
		s.opts.Logger.Warn("toolsregistry: a stored plugin tool does not load", "tenant", k.tenant, "tool", k.ref(), "rev", p.Rev, "err", err)
	}
	return err
}

// putRemoteLocked records the remote MCP server p, mounted by run's mount,
// or starts to mount it in the background (run nil). It returns why p's
// secrets do not open, if they do not. s.mu is held.
func (s *Sync) putRemoteLocked(p Plugin, run *running) error {
	k := keyOf(p.Tool)
	if run != nil {
		spec := run.m.Spec()
		s.state[k] = pluginState{rev: p.Rev, live: true, remote: &spec, mount: run.m}
		return nil
	}
	sec, err := s.secrets(p)
	spec := p.remoteSpec(sec, s.opts.Guard)
	s.state[k] = pluginState{rev: p.Rev, err: err, remote: &spec}
	if err != nil {
		s.opts.Logger.Warn("toolsregistry: a stored remote MCP server is not mounted", "tenant", k.tenant, "namespace", k.name, "rev", p.Rev, "err", err)
		return err
	}
	s.mountLater(k, p.Rev, spec)
	return nil
}

// mountLater mounts spec in the background as the plugin version k at
// revision rev. The mount is kept if the plugin is still at rev and has no
// mount when it is made, and closed otherwise; a failure is recorded and
// logged, for the next full reload to try again. s.mu is held.
func (s *Sync) mountLater(k pluginKey, rev uint64, spec RemoteSpec) {
	st := s.state[k]
	st.mounting = true
	s.state[k] = st
	s.mounting.Add(1)
	go func() {
		defer s.mounting.Done()
		m, err := s.reg.Mount(s.bg, spec)
		s.mu.Lock()
		defer s.mu.Unlock()
		st := s.state[k]
		if st.rev == rev {
			st.mounting = false
			s.state[k] = st
		}
		if err != nil {
			if st.rev == rev && st.mount == nil {
				st.err = err
				s.state[k] = st
				s.opts.Logger.Warn("toolsregistry: a stored remote MCP server cannot be mounted; retrying at the next reload",
					"tenant", k.tenant, "namespace", k.name, "rev", rev, "err", err)
			}
			return
		}
		if !s.adoptLocked(k, rev, m) {
			_ = m.Close()
		}
	}()
}

// adoptLocked makes m the mount of the plugin version k, if k is still at
// revision rev and has no mount; it reports whether it did. s.mu is held.
func (s *Sync) adoptLocked(k pluginKey, rev uint64, m *Mount) bool {
	st := s.state[k]
	if st.rev != rev || st.remote == nil || st.mount != nil {
		return false
	}
	st.mount, st.live, st.err = m, true, nil
	s.state[k] = st
	return true
}

// MountInfo is a tenant's remote MCP server as Mounts lists it: its spec,
// with the values of its headers blanked, and how its mount fares.
type MountInfo struct {
	// Spec is the server as it was registered. The values of its headers
	// are empty (they may be credentials), the URL's password is masked,
	// and Guard is nil.
	Spec RemoteSpec
	// State is MountMounted, MountMounting or MountFailed.
	State MountState
	// Status is the mount's connection, while mounted.
	Status MountStatus
	// Tools are the names of the mounted tools, sorted.
	Tools []string
	// Error says why the server is not mounted, when it failed, and why
	// the last attempt failed while a retry is mounting it.
	Error string
}

// MountState says whether a stored remote MCP server is mounted here.
type MountState string

// The states of a stored remote MCP server.
const (
	// MountMounted: its tools are registered; calls reach the server, or
	// wait for the mount to reconnect.
	MountMounted MountState = "mounted"
	// MountMounting: it is being mounted in the background.
	MountMounting MountState = "mounting"
	// MountFailed: mounting failed (see Error); the next full reload tries
	// again, unless its secrets do not open.
	MountFailed MountState = "failed"
)

// info returns the remote MCP server of st as Mounts lists it.
func (st pluginState) info() MountInfo {
	spec := st.remote.clone()
	for h := range spec.Headers {
		spec.Headers[h] = ""
	}
	spec.Guard = nil
	if u, err := url.Parse(spec.URL); err == nil {
		spec.URL = u.Redacted()
	}
	mi := MountInfo{Spec: spec, State: MountMounting, Tools: []string{}}
	switch {
	case st.mount != nil:
		mi.State, mi.Status, mi.Tools = MountMounted, st.mount.Status(), st.mount.Tools()
	case st.err != nil && st.mounting:
		// A retry after a failure is under way: the failure stays
		// readable until the retry ends.
		mi.Error = st.err.Error()
	case st.err != nil:
		mi.State, mi.Error = MountFailed, st.err.Error()
	}
	return mi
}

// Mounts returns tenant's remote MCP servers, mounted or not, sorted by
// namespace.
func (s *Sync) Mounts(tenant string) []MountInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []MountInfo
	for k, st := range s.state {
		if k.tenant == tenant && st.remote != nil {
			out = append(out, st.info())
		}
	}
	slices.SortFunc(out, func(a, b MountInfo) int { return strings.Compare(a.Spec.Namespace, b.Spec.Namespace) })
	return out
}

// deleteLocked applies a deletion made at revision rev. s.mu is held.
func (s *Sync) deleteLocked(d PluginDeletion, rev uint64) {
	for _, v := range d.Versions {
		s.removeLocked(pluginKey{d.Tenant, d.Name, v}, rev)
	}
}

// removeLocked unregisters the plugin version k as of revision rev, unless
// a change as recent is applied already. s.mu is held.
func (s *Sync) removeLocked(k pluginKey, rev uint64) {
	st := s.state[k]
	if st.rev >= rev {
		return
	}
	s.unregisterLocked(k, st)
	s.state[k] = pluginState{rev: rev}
}

// unregisterLocked removes the plugin version k, in state st, from the
// registry: it unregisters the tool, or closes the mount. s.mu is held.
func (s *Sync) unregisterLocked(k pluginKey, st pluginState) {
	switch {
	case st.mount != nil:
		_ = st.mount.Close()
	case st.live:
		if err := s.reg.Unregister(k.tenant, k.ref()); err != nil && vigil.ErrorCode(err) != vigil.NotFound {
			s.opts.Logger.Warn("toolsregistry: unregister a plugin tool", "tenant", k.tenant, "tool", k.ref(), "err", err)
		}
	}
}

// reload makes the registry's plugins those of the store: it registers
// what is stored and not registered (or registered under an older
// revision), mounts again the stored remote MCP servers whose mount
// failed, and unregisters what is registered and no longer stored. It
// returns how many plugins are stored.
func (s *Sync) reload(ctx context.Context) (int, error) {
	list, rev, err := s.opts.Store.ListPlugins(ctx)
	if err != nil {
		return 0, fmt.Errorf("toolsregistry: load plugins: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stored := make(map[pluginKey]bool, len(list))
	for _, p := range list {
		k := keyOf(p.Tool)
		stored[k] = true
		if st := s.state[k]; p.Kind == PluginMCP && st.rev == p.Rev && st.mount == nil && !st.mounting && st.err != nil &&
			!errors.Is(st.err, errUnseal) && !errors.Is(st.err, errNoKey) {
			// Mounting failed, for a cause that may have passed.
			s.mountLater(k, p.Rev, *st.remote)
			continue
		}
		_ = s.putLocked(p, nil) // logged
	}
	for k, st := range s.state {
		// A change after rev is newer than the list: it stays.
		if stored[k] || st.rev > rev {
			continue
		}
		s.unregisterLocked(k, st)
		delete(s.state, k)
	}
	s.floor = max(s.floor, rev)
	s.watched = max(s.watched, rev)
	return len(list), nil
}

// apply applies a change the watch reported. A skipped revision, or a
// Resync, means changes were missed: the store is reloaded instead.
func (s *Sync) apply(ctx context.Context, c PluginChange) {
	s.mu.Lock()
	missed := c.Resync || c.Rev > s.watched+1
	if !missed {
		s.watched = max(s.watched, c.Rev)
		if c.Rev > s.floor {
			switch {
			case c.Put != nil:
				_ = s.putLocked(*c.Put, nil) // logged
			case c.Deleted != nil:
				s.deleteLocked(*c.Deleted, c.Rev)
			}
		}
	}
	s.mu.Unlock()
	if missed {
		if _, err := s.reload(ctx); err != nil && ctx.Err() == nil {
			s.opts.Logger.Error("toolsregistry: plugin changes were missed and the reload failed; retrying with the next change", "err", err)
		}
	}
}

// run applies the watch's changes and reloads every ResyncEvery until ctx
// ends. When the watch ends early it is started again, after a pause, and
// followed by a reload.
func (s *Sync) run(ctx context.Context, ch <-chan PluginChange) {
	defer close(s.done)
	var tick <-chan time.Time
	if s.opts.ResyncEvery > 0 {
		t := time.NewTicker(s.opts.ResyncEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case c, ok := <-ch:
			if ok {
				s.apply(ctx, c)
				continue
			}
			if ch = s.rewatch(ctx); ch == nil {
				return
			}
			s.apply(ctx, PluginChange{Resync: true})
		case <-tick:
			if _, err := s.reload(ctx); err != nil && ctx.Err() == nil {
				s.opts.Logger.Error("toolsregistry: periodic plugin reload failed", "err", err)
			}
		}
	}
}

// rewatchPause is how long run waits before it watches the store again.
const rewatchPause = time.Second

// rewatch watches the store again, retrying every rewatchPause, until it
// succeeds or ctx ends (then it returns nil).
func (s *Sync) rewatch(ctx context.Context) <-chan PluginChange {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(rewatchPause):
		}
		ch, err := s.opts.Store.WatchPlugins(ctx)
		if err == nil {
			return ch
		}
		if ctx.Err() != nil {
			return nil
		}
		s.opts.Logger.Error("toolsregistry: watching plugin changes failed; retrying", "err", err)
	}
}

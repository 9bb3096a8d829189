package toolsregistry

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// RemoteSpec describes a remote MCP server whose tools are mounted under a
// namespace: the remote's search_repos, mounted under "github", is the
// tool github.search_repos. It is plain data apart from Guard, so that a
// store can keep it and mount it again at startup. Headers and Env may
// carry credentials: a store keeps them as secrets, and Vigil never logs
// them or shows them in errors.
type RemoteSpec struct {
	// Tenant sees the mounted tools; Global ("") mounts them for every
	// tenant.
	Tenant string `json:"tenant,omitempty"`
	// Namespace prefixes the names of the mounted tools. It matches
	// [a-z][a-z0-9_]* and is at most 32 bytes long; it has no dot, so that
	// the namespace of a tool is the part of its name before the first dot.
	Namespace string `json:"namespace"`
	// URL is the server's streamable HTTP endpoint, such as
	// https://mcp.example.com/mcp. Exactly one of URL and Command is set.
	URL string `json:"url,omitempty"`
	// Command runs the server as a child process that speaks MCP on its
	// stdin and stdout: the program, then its arguments. It runs a program
	// on Vigil's host, so only operators may set it, never a tenant.
	Command []string `json:"command,omitempty"`
	// Env is added to a command's environment. The rest of it is only
	// PATH, HOME, TMPDIR and LANG from Vigil's own, so that Vigil's
	// secrets do not reach the server.
	Env map[string]string `json:"env,omitempty"`
	// Headers are sent with every HTTP request to URL, such as an
	// Authorization header for the remote.
	Headers map[string]string `json:"headers,omitempty"`
	// Scopes are the permissions a caller must all hold to call any of
	// the mounted tools (Tool.Scopes).
	Scopes []string `json:"scopes,omitempty"`
	// Timeout bounds each call of a mounted tool (Tool.Timeout); zero
	// means the registry's DefaultTimeout.
	Timeout time.Duration `json:"-"`
	// Guard keeps URL away from non-public addresses; nil means a guard
	// with no allowances. It is configuration, not data: the edges pass
	// the configured guard and a store does not keep it.
	Guard *Guard `json:"-"`
}

type remoteSpecAlias RemoteSpec

type remoteSpecJSON struct {
	remoteSpecAlias
	Timeout string `json:"timeout,omitempty"`
}

// MarshalJSON writes Timeout as a Go duration string ("30s").
func (s RemoteSpec) MarshalJSON() ([]byte, error) {
	w := remoteSpecJSON{remoteSpecAlias: remoteSpecAlias(s)}
	if s.Timeout != 0 {
		w.Timeout = s.Timeout.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON writes; a malformed timeout is a
// vigil.Invalid error on field "timeout".
func (s *RemoteSpec) UnmarshalJSON(b []byte) error {
	var w remoteSpecJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = RemoteSpec(w.remoteSpecAlias)
	if w.Timeout != "" {
		d, err := time.ParseDuration(w.Timeout)
		if err != nil {
			return vigil.FieldError("timeout", "must be a duration such as 30s or 5m, not %q", w.Timeout)
		}
		s.Timeout = d
	}
	return nil
}

var (
	namespacePattern  = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	headerNamePattern = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	envNamePattern    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// maxNamespaceLen leaves a mounted tool at least 31 bytes of its name.
const maxNamespaceLen = 32

// check reports the first problem with s as a vigil.Invalid error naming
// the field.
func (s RemoteSpec) check() error {
	switch {
	case s.Tenant != Global && !vigil.ValidID(s.Tenant):
		return vigil.FieldError("tenant", "must be 1 to 128 characters from [A-Za-z0-9_.-]")
	case !namespacePattern.MatchString(s.Namespace) || len(s.Namespace) > maxNamespaceLen:
		return vigil.FieldError("namespace", "must match [a-z][a-z0-9_]* and be at most %d bytes long, not %q", maxNamespaceLen, s.Namespace)
	case s.URL == "" && len(s.Command) == 0:
		return vigil.FieldError("url", "is required, or a command: where the MCP server is")
	case s.URL != "" && len(s.Command) > 0:
		return vigil.FieldError("command", "must be empty when a URL is given: a server is reached one way")
	case s.Timeout < 0:
		return vigil.FieldError("timeout", "must not be negative")
	case s.URL != "" && len(s.Env) > 0:
		return vigil.FieldError("env", "applies to a command only")
	case len(s.Command) > 0 && len(s.Headers) > 0:
		return vigil.FieldError("headers", "apply to a URL only")
	}
	if s.URL != "" {
		if _, err := checkURL("url", s.URL); err != nil {
			return err
		}
	}
	if len(s.Command) > 0 && strings.TrimSpace(s.Command[0]) == "" {
		return vigil.FieldError("command.0", "must name the program to run")
	}
	for i, a := range s.Command {
		if strings.ContainsRune(a, 0) {
			return vigil.FieldError(fmt.Sprintf("command.%d", i), "must not contain NUL")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Headers)) {
		if !headerNamePattern.MatchString(k) {
			return vigil.FieldError("headers", "%q is not a header name", k)
		}
		if strings.ContainsAny(s.Headers[k], "\r\n\x00") {
			return vigil.FieldError("headers."+k, "must be one line")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		if !envNamePattern.MatchString(k) {
			return vigil.FieldError("env", "%q is not a variable name: want [A-Za-z_][A-Za-z0-9_]*", k)
		}
		if strings.ContainsRune(s.Env[k], 0) {
			return vigil.FieldError("env."+k, "must not contain NUL")
		}
	}
	for i, sc := range s.Scopes {
		if !scopePattern.MatchString(sc) {
			return vigil.FieldError(fmt.Sprintf("scopes.%d", i), "must be a scope such as read:web, not %q", sc)
		}
	}
	return nil
}

// clone copies s's slices and maps, so that the caller cannot change a
// mount's spec.
func (s RemoteSpec) clone() RemoteSpec {
	s.Command = slices.Clone(s.Command)
	s.Env = maps.Clone(s.Env)
	s.Headers = maps.Clone(s.Headers)
	s.Scopes = slices.Clone(s.Scopes)
	return s
}

// The timing of connections to remote servers.
const (
	// connectTimeout bounds connecting to a server and listing its tools.
	connectTimeout = 30 * time.Second
	// listTimeout bounds listing the tools of a connected server again.
	listTimeout = 30 * time.Second
	// reconnectFirst and reconnectMax bound the wait before a reconnection:
	// it doubles from the first to the most with each failed attempt.
	reconnectFirst = 100 * time.Millisecond
	reconnectMax   = 30 * time.Second
	// awaitConnection is how long a call made while the mount reconnects
	// waits for the new connection before it fails: long enough to ride
	// out a dropped stream, short enough not to hold calls through an
	// outage.
	awaitConnection = 5 * time.Second
	// stableAfter is how long a connection must have lasted for a failure
	// after it to count as the first: a server that drops every connection
	// at once is not reconnected to at the first pace for ever.
	stableAfter = 30 * time.Second
)

// Mount is a remote MCP server mounted in a registry: it keeps a
// connection to the server, registers each of the server's tools under
// the mount's namespace for the spec's tenant, follows the server's
// tools/list_changed notifications (adding, removing and replacing tools)
// and reconnects, with a growing backoff, when the connection breaks.
// Calls of the mounted tools go through Registry.Call like any other and
// reach the server through its tools/call.
//
// A Mount is safe for concurrent use. Close it, or Registry.Unmount it,
// to remove its tools and end its connection.
type Mount struct {
	reg   *Registry
	spec  RemoteSpec
	guard *Guard
	log   *slog.Logger

	ctx    context.Context // ends with Close: the supervisor and every connection
	cancel context.CancelFunc
	done   chan struct{} // closed when the supervisor has returned

	refresh chan struct{} // asks the supervisor to list the tools again
	legacy  atomic.Bool   // the server predates 2026-07-28: HTTP listens on a GET stream

	mu      sync.Mutex
	cur     *conn                  // nil while disconnected
	changed chan struct{}          // closed and replaced when cur changes
	tools   map[string]mountedTool // by local name
	status  MountStatus

	closeOnce sync.Once
}

// mountedTool is a remote tool as mounted: its registration and the name
// the remote knows it by.
type mountedTool struct {
	remote      string
	tool        Tool
	fingerprint string // the registration as JSON: a change means a replacement
}

// MountStatus is how a mount's connection fares, for an API that lists
// mounts.
type MountStatus struct {
	// Connected says whether calls can reach the server now.
	Connected bool `json:"connected"`
	// Protocol is the MCP protocol version of the connection.
	Protocol string `json:"protocol,omitempty"`
	// Tools is how many of the server's tools are mounted.
	Tools int `json:"tools"`
	// LastError says why the last connection failed or broke, if one did.
	LastError string `json:"last_error,omitempty"`
}

// mountKey names a mount: a namespace in a tenant.
type mountKey struct{ tenant, namespace string }

// mounts holds the mounts of every registry, the way a field of Registry
// would: an entry is dropped with a registry's last mount, and a registry
// with live mounts is referenced by their connections anyway.
var mounts = struct {
	sync.Mutex
	by map[*Registry]map[mountKey]*Mount
}{by: map[*Registry]map[mountKey]*Mount{}}

// Mount connects to the remote MCP server spec describes (streamable HTTP
// for a URL, through the spec's Guard; stdio for a command), initializes
// the session, lists the server's tools and registers each as
// <namespace>.<tool> for spec.Tenant, version 1, with the remote's input
// and output schemas and spec's scopes and timeout. A remote name that is
// not a valid tool name is made one: lower case, "searchRepos" →
// search_repos, other characters → "_"; a tool whose schema does not
// compile, or whose name is taken, is left out and logged.
//
// From then on the mount follows the server: tools/list_changed lists the
// tools again and reconciles them; a broken connection (a dropped stream,
// an expired session, an exited command) is reconnected with a backoff,
// and the tools listed again. A call during a reconnection waits up to 5
// seconds for it, then fails as a retryable failure of the tool.
//
// Errors: vigil.Invalid naming the field at fault (a malformed spec, a URL
// the guard refuses, a command that cannot start, a server that asks for
// authorization); vigil.Conflict when the namespace is mounted already for
// the tenant (or globally), or a tool visible to the tenant is named
// <namespace> or <namespace>.…; vigil.Unavailable when the server cannot
// be reached or does not answer in time (30 seconds, or ctx's deadline).
func (r *Registry) Mount(ctx context.Context, spec RemoteSpec) (*Mount, error) {
	spec = spec.clone()
	if err := spec.check(); err != nil {
		return nil, err
	}
	guard := spec.Guard
	if guard == nil && spec.URL != "" {
		var err error
		if guard, err = NewGuard(GuardOptions{}); err != nil {
			return nil, err
		}
	}
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m := &Mount{
		reg: r, spec: spec, guard: guard,
		log:     r.opts.Logger.With("mount", spec.Namespace, "tenant", spec.Tenant),
		ctx:     mctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		refresh: make(chan struct{}, 1),
		changed: make(chan struct{}),
		tools:   map[string]mountedTool{},
	}
	if err := r.reserve(m); err != nil {
		cancel()
		return nil, err
	}
	cctx, ccancel := context.WithTimeout(ctx, connectTimeout)
	defer ccancel()
	defer context.AfterFunc(mctx, ccancel)() // an Unmount meanwhile ends the attempt
	cn, err := m.connect(cctx)
	if err == nil {
		m.setConn(cn, nil)
		if err = m.sync(cctx, cn); err != nil {
			cn.close()
		}
	}
	if err != nil {
		cancel()
		close(m.done)
		m.removeTools()
		r.release(m)
		return nil, fmt.Errorf("toolsregistry: mount %s: %w", spec.Namespace, m.connectError(err))
	}
	go m.supervise(cn)
	return m, nil
}

// reserve enters m in the registry's mounts, or says why it may not be.
func (r *Registry) reserve(m *Mount) error {
	tenant, ns := m.spec.Tenant, m.spec.Namespace
	mounts.Lock()
	defer mounts.Unlock()
	table := mounts.by[r]
	for k := range table {
		if k.namespace == ns && (k.tenant == tenant || k.tenant == Global || tenant == Global) {
			return vigil.Errorf(vigil.Conflict, "the namespace %s is mounted already", ns)
		}
	}
	r.mu.RLock()
	for k := range r.tools {
		visible := tenant == Global || k.tenant == Global || k.tenant == tenant
		if visible && (k.name == ns || strings.HasPrefix(k.name, ns+".")) {
			r.mu.RUnlock()
			return vigil.Errorf(vigil.Conflict, "the namespace %s would clash with the tool %s; choose another namespace", ns, k.name)
		}
	}
	r.mu.RUnlock()
	if table == nil {
		table = map[mountKey]*Mount{}
		mounts.by[r] = table
	}
	table[mountKey{tenant, ns}] = m
	return nil
}

// release removes m from the registry's mounts.
func (r *Registry) release(m *Mount) {
	mounts.Lock()
	defer mounts.Unlock()
	key := mountKey{m.spec.Tenant, m.spec.Namespace}
	if table := mounts.by[r]; table[key] == m {
		delete(table, key)
		if len(table) == 0 {
			delete(mounts.by, r)
		}
	}
}

// Unmount closes the mount of namespace for tenant (Global for a global
// mount): its tools are unregistered and its connection ended. It is a
// vigil.NotFound error when there is no such mount.
func (r *Registry) Unmount(tenant, namespace string) error {
	mounts.Lock()
	m := mounts.by[r][mountKey{tenant, namespace}]
	mounts.Unlock()
	if m == nil {
		return vigil.Errorf(vigil.NotFound, "no remote MCP server is mounted as %s", namespace)
	}
	return m.Close()
}

// Mounts returns tenant's mounts (the global ones for Global), sorted by
// namespace.
func (r *Registry) Mounts(tenant string) []*Mount {
	mounts.Lock()
	var out []*Mount
	for k, m := range mounts.by[r] {
		if k.tenant == tenant {
			out = append(out, m)
		}
	}
	mounts.Unlock()
	slices.SortFunc(out, func(a, b *Mount) int { return cmp.Compare(a.spec.Namespace, b.spec.Namespace) })
	return out
}

// MountOf returns the mount that registered tenant's tool name, if a mount
// did. A store that persists what OnChange reports uses it to skip the
// tools of mounts, which it persists as their RemoteSpec instead: a
// Change about a mounted tool is reported while MountOf still knows it,
// on registration and on removal alike.
func (r *Registry) MountOf(tenant, name string) (*Mount, bool) {
	ns, _, ok := strings.Cut(name, ".")
	if !ok {
		return nil, false
	}
	mounts.Lock()
	m := mounts.by[r][mountKey{tenant, ns}]
	mounts.Unlock()
	if m == nil {
		return nil, false
	}
	m.mu.Lock()
	_, mine := m.tools[name]
	m.mu.Unlock()
	if !mine {
		return nil, false
	}
	return m, true
}

// Spec returns the spec the mount was made with.
func (m *Mount) Spec() RemoteSpec { return m.spec.clone() }

// Tools returns the names of the mounted tools, sorted.
func (m *Mount) Tools() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.tools))
}

// Status reports the mount's connection.
func (m *Mount) Status() MountStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.status
	s.Tools = len(m.tools)
	return s
}

// Close unregisters the mount's tools, ends its connection and removes it
// from the registry. Calls in flight fail as the connection ends. Close
// may be called more than once; it always returns nil.
func (m *Mount) Close() error {
	m.closeOnce.Do(func() {
		m.cancel()
		<-m.done
		m.removeTools()
		m.mu.Lock()
		cn := m.cur
		m.mu.Unlock()
		m.setConn(nil, nil)
		if cn != nil {
			cn.close()
		}
		m.reg.release(m)
	})
	return nil
}

// conn is one connection to the server: its client and, on protocol
// 2026-07-28 and later, the subscriptions/listen stream that carries its
// tools/list_changed notifications.
type conn struct {
	c        *client.Client
	protocol string
	since    time.Time
	cancel   context.CancelFunc // ends the listen stream and a command's process

	acked   chan struct{} // closed when the server acknowledges the listen stream
	ackOnce sync.Once
	granted atomic.Bool // the server grants tools/list_changed on the stream; set before acked closes

	lost     chan struct{} // closed when the connection is found broken
	lostErr  error         // why, set before lost is closed
	lostOnce sync.Once

	closeOnce sync.Once
}

// markLost records that cn broke, for the supervisor to reconnect.
func (cn *conn) markLost(err error) {
	cn.lostOnce.Do(func() {
		cn.lostErr = err
		close(cn.lost)
	})
}

// close ends the connection.
func (cn *conn) close() {
	cn.closeOnce.Do(func() {
		cn.cancel()
		_ = cn.c.Close()
	})
}

// connect makes a new connection. A server over HTTP that settles on a
// protocol before 2026-07-28 sends its notifications on a standalone GET
// stream, which the transport opens only if asked to at construction: the
// connection is made again so, and later ones are made so at once.
func (m *Mount) connect(ctx context.Context) (*conn, error) {
	legacy := m.legacy.Load()
	cn, err := m.dial(ctx, legacy)
	if err != nil || m.spec.URL == "" || legacy || mcp.IsModernProtocol(cn.protocol) {
		return cn, err
	}
	cn.close()
	m.legacy.Store(true)
	return m.dial(ctx, true)
}

// dial starts a client, initializes the session and, on a modern protocol
// where the server announces tools/list_changed, opens the listen stream
// and waits for the server to acknowledge it, so that no change after
// connect returns is missed.
func (m *Mount) dial(ctx context.Context, legacy bool) (*conn, error) {
	tr, err := m.transport(legacy)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(m.ctx)
	cn := &conn{c: client.NewClient(tr), cancel: cancel, since: time.Now(), acked: make(chan struct{}), lost: make(chan struct{})}
	cn.c.OnNotification(func(n mcp.JSONRPCNotification) {
		switch n.Method {
		case mcp.MethodNotificationToolsListChanged:
			m.requestRefresh()
		case mcp.MethodNotificationSubscriptionsAcknowledged:
			cn.ackOnce.Do(func() {
				cn.granted.Store(grantsToolsListChanged(n))
				close(cn.acked)
			})
		}
	})
	fail := func(err error) (*conn, error) {
		cn.close()
		return nil, err
	}
	if err := cn.c.Start(lctx); err != nil {
		return fail(err)
	}
	init := mcp.InitializeRequest{Params: mcp.InitializeParams{ClientInfo: mcp.Implementation{Name: "vigil", Version: "1"}}}
	if _, err := cn.c.Initialize(ctx, init); err != nil {
		return fail(err)
	}
	cn.protocol = cn.c.ProtocolVersion()
	caps := cn.c.GetServerCapabilities()
	if !mcp.IsModernProtocol(cn.protocol) || caps.Tools == nil || !caps.Tools.ListChanged {
		return cn, nil
	}
	go func() {
		err := cn.c.Listen(lctx, mcp.SubscriptionFilter{ToolsListChanged: true})
		switch {
		case lctx.Err() != nil:
			return
		case err == nil && !cn.granted.Load():
			// The server closes a stream that carries nothing it grants:
			// the tools are fixed for this connection.
			return
		case err == nil:
			err = errors.New("the server ended its notification stream")
		}
		cn.markLost(err)
	}()
	select {
	case <-cn.acked:
		return cn, nil
	case <-cn.lost:
		return fail(cn.lostErr)
	case <-ctx.Done():
		return fail(ctx.Err())
	}
}

// grantsToolsListChanged reports whether a subscriptions/acknowledged
// notification grants tools/list_changed.
func grantsToolsListChanged(n mcp.JSONRPCNotification) bool {
	raw, err := json.Marshal(n.Params.AdditionalFields["notifications"])
	if err != nil {
		return false
	}
	var f mcp.SubscriptionFilter
	return json.Unmarshal(raw, &f) == nil && f.ToolsListChanged
}

// transport returns a new transport to the server: streamable HTTP through
// the guard, with the spec's headers, or a child process.
func (m *Mount) transport(legacy bool) (transport.Interface, error) {
	if m.spec.URL != "" {
		opts := []transport.StreamableHTTPCOption{
			transport.WithHTTPBasicClient(m.guard.Client(0)),
			transport.WithHTTPHeaders(maps.Clone(m.spec.Headers)),
			transport.WithHTTPLogger(transportLogger(m.log)),
		}
		if legacy {
			opts = append(opts, transport.WithContinuousListening())
		}
		return transport.NewStreamableHTTP(m.spec.URL, opts...)
	}
	env := childEnv(m.spec.Env)
	return transport.NewStdioWithOptions(m.spec.Command[0], nil, m.spec.Command[1:],
		transport.WithCommandLogger(transportLogger(m.log)),
		transport.WithCommandFunc(func(ctx context.Context, command string, _ []string, args []string) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, command, args...)
			cmd.Env = env
			return cmd, nil
		})), nil
}

// transportLogger returns the logger of a mount's transports: log at
// debug level. The transports report routine events as errors (a stream
// cancelled on close is "SSE stream error"); the mount logs what matters,
// a lost connection and a reconnection, itself.
func transportLogger(l *slog.Logger) *slog.Logger {
	return slog.New(debugOnly{l.Handler()})
}

// debugOnly is a slog.Handler that passes every record on at debug level.
type debugOnly struct{ h slog.Handler }

func (d debugOnly) Enabled(ctx context.Context, _ slog.Level) bool {
	return d.h.Enabled(ctx, slog.LevelDebug)
}

func (d debugOnly) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return d.h.Handle(ctx, r)
}

func (d debugOnly) WithAttrs(as []slog.Attr) slog.Handler { return debugOnly{d.h.WithAttrs(as)} }
func (d debugOnly) WithGroup(name string) slog.Handler    { return debugOnly{d.h.WithGroup(name)} }

// childEnv is the environment of a command: the few variables programs
// need to run from Vigil's own, and extra.
func childEnv(extra map[string]string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		env = append(env, k+"="+extra[k])
	}
	return env
}

// connectError turns a failure to connect into a vigil error that says
// what to fix, without the URL, which may carry a token.
func (m *Mount) connectError(err error) error {
	var (
		ae *transport.AuthorizationRequiredError
		ee *exec.Error
	)
	if be, ok := blocked(err); ok {
		return vigil.FieldError("url", "%s", be.Error())
	}
	switch {
	case errors.As(err, &ae):
		return vigil.FieldError("headers", "the remote MCP server asks for authorization (HTTP 401): give it an Authorization header")
	case errors.As(err, &ee), errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return vigil.FieldError("command", "cannot start the MCP server: %s", describe(err))
	case errors.Is(err, context.DeadlineExceeded):
		return vigil.Errorf(vigil.Unavailable, "the remote MCP server did not answer in time")
	}
	return vigil.Errorf(vigil.Unavailable, "cannot connect to the remote MCP server: %s", describe(err))
}

// describe says what went wrong with a connection, for the model and the
// user, without the URL, which may carry a token.
func describe(err error) string {
	var (
		ae *transport.AuthorizationRequiredError
		ue *url.Error
	)
	if be, ok := blocked(err); ok {
		return be.Error()
	}
	switch {
	case errors.As(err, &ae):
		return "it asks for authorization (HTTP 401)"
	case errors.Is(err, transport.ErrSessionTerminated):
		return "its session has ended"
	case errors.Is(err, transport.ErrTransportClosed):
		return "the connection is closed"
	case errors.As(err, &ue):
		return ue.Err.Error()
	}
	return strings.TrimPrefix(err.Error(), "transport error: ")
}

// setConn makes cn the current connection (nil while disconnected) and
// wakes the calls waiting for a new one. A non-nil lost says why the
// previous connection ended.
func (m *Mount) setConn(cn *conn, lost error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cur = cn
	close(m.changed)
	m.changed = make(chan struct{})
	m.status.Connected = cn != nil
	if cn != nil {
		m.status.Protocol = cn.protocol
	}
	if lost != nil {
		m.status.LastError = describe(lost)
	}
}

// current returns the current connection, nil while disconnected.
func (m *Mount) current() *conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur
}

// await waits for a connection other than old (any, for nil), for at
// most awaitConnection; it returns nil when none comes, ctx ends or the
// mount closes.
func (m *Mount) await(ctx context.Context, old *conn) *conn {
	timer := time.NewTimer(awaitConnection)
	defer timer.Stop()
	for {
		m.mu.Lock()
		cur, changed := m.cur, m.changed
		m.mu.Unlock()
		if cur != nil && cur != old {
			return cur
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return nil
		case <-m.ctx.Done():
			return nil
		}
	}
}

// requestRefresh asks the supervisor to list the tools again.
func (m *Mount) requestRefresh() {
	select {
	case m.refresh <- struct{}{}:
	default:
	}
}

// supervise follows the server until the mount closes: it lists the tools
// again when asked to, and replaces a broken connection.
func (m *Mount) supervise(cn *conn) {
	defer close(m.done)
	failures := 0
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.refresh:
			ctx, cancel := context.WithTimeout(m.ctx, listTimeout)
			err := m.sync(ctx, cn)
			cancel()
			var te *transport.Error
			if errors.As(err, &te) && m.ctx.Err() == nil {
				cn.markLost(err)
			} else if err != nil && m.ctx.Err() == nil {
				m.log.Warn("toolsregistry: listing the tools of a remote MCP server failed", "err", describe(err))
			}
		case <-cn.lost:
			if time.Since(cn.since) >= stableAfter {
				failures = 0
			}
			m.log.Warn("toolsregistry: lost the connection to a remote MCP server; reconnecting", "err", describe(cn.lostErr))
			m.setConn(nil, cn.lostErr)
			cn.close()
			if cn = m.reconnect(&failures); cn == nil {
				return
			}
		}
	}
}

// reconnect connects again, waiting before each attempt a backoff that
// grows with *failures, until it succeeds (and lists the tools again) or
// the mount closes (nil).
func (m *Mount) reconnect(failures *int) *conn {
	for {
		wait := min(reconnectFirst<<min(*failures, 20), reconnectMax)
		wait += rand.N(wait/5 + 1)
		*failures++
		select {
		case <-time.After(wait):
		case <-m.ctx.Done():
			return nil
		}
		ctx, cancel := context.WithTimeout(m.ctx, connectTimeout)
		cn, err := m.connect(ctx)
		if err == nil {
			m.setConn(cn, nil)
			if err = m.sync(ctx, cn); err != nil {
				cn.close()
				m.setConn(nil, err)
			}
		}
		cancel()
		if m.ctx.Err() != nil {
			if cn != nil {
				cn.close()
			}
			return nil
		}
		if err == nil {
			m.log.Info("toolsregistry: reconnected to a remote MCP server", "protocol", cn.protocol)
			return cn
		}
		m.mu.Lock()
		m.status.LastError = describe(err)
		m.mu.Unlock()
		m.log.Warn("toolsregistry: reconnecting to a remote MCP server failed", "attempt", *failures, "err", describe(err))
	}
}

// sync lists the server's tools and reconciles the registry with them:
// new tools are registered, gone ones unregistered, changed ones (a new
// description or schema) replaced. Only one sync runs at a time: Mount's
// before the supervisor starts, then the supervisor's.
func (m *Mount) sync(ctx context.Context, cn *conn) error {
	res, err := cn.c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		return err
	}
	want := m.definitions(res.Tools)
	m.mu.Lock()
	have := maps.Clone(m.tools)
	m.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(have)) {
		if w, ok := want[name]; !ok || w.fingerprint != have[name].fingerprint {
			m.unregister(name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if h, ok := have[name]; !ok || h.fingerprint != want[name].fingerprint {
			m.register(want[name])
		}
	}
	return nil
}

// definitions turns the server's tools into registrations, by local name.
// Of remote names that come out the same, the first in order wins.
func (m *Mount) definitions(remote []mcp.Tool) map[string]mountedTool {
	slices.SortFunc(remote, func(a, b mcp.Tool) int { return cmp.Compare(a.Name, b.Name) })
	out := make(map[string]mountedTool, len(remote))
	for _, rt := range remote {
		name := localName(m.spec.Namespace, rt.Name)
		if prev, dup := out[name]; dup {
			m.log.Warn("toolsregistry: two remote tools have one name in Vigil; the second is left out",
				"tool", name, "remote", rt.Name, "kept", prev.remote)
			continue
		}
		raw, err := json.Marshal(rt)
		if err != nil {
			m.log.Warn("toolsregistry: a remote tool cannot be read; it is left out", "remote", rt.Name, "err", err)
			continue
		}
		var schemas struct {
			Input  json.RawMessage `json:"inputSchema"`
			Output json.RawMessage `json:"outputSchema"`
		}
		_ = json.Unmarshal(raw, &schemas)
		if rt.InputSchema.Type == "" && rt.RawInputSchema == nil {
			schemas.Input = nil // the remote gave none: any object
		}
		desc := cmp.Or(strings.TrimSpace(rt.Description), strings.TrimSpace(rt.Title), strings.TrimSpace(rt.Annotations.Title),
			fmt.Sprintf("The tool %s of the remote MCP server mounted as %s.", rt.Name, m.spec.Namespace))
		t := Tool{
			Tenant: m.spec.Tenant, Name: name, Version: 1, Description: desc,
			InputSchema: schemas.Input, OutputSchema: schemas.Output,
			Scopes: slices.Clone(m.spec.Scopes), Timeout: m.spec.Timeout,
		}
		fp, _ := json.Marshal(t)
		out[name] = mountedTool{remote: rt.Name, tool: t, fingerprint: string(fp)}
	}
	return out
}

// localName is the registry's name of the remote tool under namespace ns:
// lower case, a "_" before an upper-case letter that follows a lower-case
// one or a digit ("searchRepos" → search_repos), any character outside
// [a-z0-9_.] as "_". A name too long is cut and ends in a hash of the
// remote name, so that cut names stay apart.
func localName(ns, remote string) string {
	var b strings.Builder
	prev := ' '
	for _, c := range remote {
		switch {
		case unicode.IsUpper(c) && c < unicode.MaxASCII:
			if unicode.IsLower(prev) || unicode.IsDigit(prev) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(c))
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
		prev = c
	}
	name := ns + "." + cmp.Or(strings.Trim(b.String(), "."), "tool")
	if len(name) > maxNameLen {
		h := fnv.New32a()
		h.Write([]byte(remote))
		name = fmt.Sprintf("%s_%08x", name[:maxNameLen-9], h.Sum32())
	}
	return name
}

// register registers a remote tool, entering it in m.tools first so that
// MountOf knows it when OnChange reports it.
func (m *Mount) register(mt mountedTool) {
	name := mt.tool.Name
	m.mu.Lock()
	m.tools[name] = mt
	m.mu.Unlock()
	hasOutput := len(mt.tool.OutputSchema) > 0
	h := HandlerFunc(func(ctx context.Context, args json.RawMessage) (Output, error) {
		return m.call(ctx, mt.remote, hasOutput, args)
	})
	if err := m.reg.Register(mt.tool, h); err != nil {
		m.mu.Lock()
		delete(m.tools, name)
		m.mu.Unlock()
		m.log.Warn("toolsregistry: a remote tool cannot be registered; it is left out", "tool", name, "err", err)
	}
}

// unregister removes a mounted tool, from m.tools last so that MountOf
// knows it when OnChange reports it.
func (m *Mount) unregister(name string) {
	if err := m.reg.Unregister(m.spec.Tenant, name+"@1"); err != nil && vigil.ErrorCode(err) != vigil.NotFound {
		m.log.Warn("toolsregistry: a remote tool cannot be unregistered", "tool", name, "err", err)
	}
	m.mu.Lock()
	delete(m.tools, name)
	m.mu.Unlock()
}

// removeTools unregisters every mounted tool.
func (m *Mount) removeTools() {
	for _, name := range m.Tools() {
		m.unregister(name)
	}
}

// call calls the remote tool over the current connection. A call made
// while the mount reconnects waits for the new connection (see
// awaitConnection), so that a dropped stream does not fail calls, nor
// count against the tool's breaker. A session the server no longer knows
// (it restarted, or the session expired) is reconnected and the call made
// once more: the server never saw it.
func (m *Mount) call(ctx context.Context, remote string, hasOutput bool, args json.RawMessage) (Output, error) {
	req := mcp.CallToolRequest{Params: mcp.CallToolParams{Name: remote, Arguments: args}}
	var cn *conn
	for retried := false; ; retried = true {
		if cn = m.await(ctx, cn); cn == nil {
			if ctx.Err() != nil {
				return Output{}, ctx.Err()
			}
			return Output{}, fmt.Errorf("the remote MCP server %s is not connected; Vigil is reconnecting", m.spec.Namespace)
		}
		res, err := cn.c.CallTool(ctx, req)
		switch {
		case err == nil:
			return m.output(res, hasOutput)
		case ctx.Err() != nil:
			return Output{}, ctx.Err()
		}
		var te *transport.Error
		if !errors.As(err, &te) {
			return Output{}, m.refused(err)
		}
		cn.markLost(err)
		if retried || !errors.Is(err, transport.ErrSessionTerminated) {
			return Output{}, fmt.Errorf("the remote MCP server %s did not answer: %s", m.spec.Namespace, describe(err))
		}
	}
}

// refused turns a JSON-RPC error of the server into the call's error. An
// invalid-params error is the arguments' fault (or names a tool the server
// no longer has, so the tools are listed again); any other is a failure of
// the tool.
func (m *Mount) refused(err error) error {
	msg := answerText([]byte(err.Error()))
	if errors.Is(err, mcp.ErrInvalidParams) || errors.Is(err, mcp.ErrMethodNotFound) {
		m.requestRefresh()
	}
	if errors.Is(err, mcp.ErrInvalidParams) {
		return vigil.Errorf(vigil.Invalid, "the remote MCP server %s refused the call: %s", m.spec.Namespace, msg)
	}
	return fmt.Errorf("the remote MCP server %s failed the call: %s", m.spec.Namespace, msg)
}

// output turns a tools/call result into the handler's: the structured
// content if there is one; else the text content, as its JSON value when
// the tool declares an output schema and the text is JSON, as a string
// otherwise. Images and audio become parts for the user. A result with
// isError is the tool's refusal, a vigil.Invalid error with its text: the
// model reads it and may correct the call, and the breaker ignores it.
func (m *Mount) output(res *mcp.CallToolResult, hasOutput bool) (Output, error) {
	var (
		texts []string
		out   Output
	)
	for _, c := range res.Content {
		switch c := c.(type) {
		case mcp.TextContent:
			texts = append(texts, c.Text)
		case mcp.ImageContent:
			if data, err := base64.StdEncoding.DecodeString(c.Data); err == nil && len(data) > 0 {
				out.Parts = append(out.Parts, streams.Image{Data: data, MIME: c.MIMEType})
			}
		case mcp.AudioContent:
			if data, err := base64.StdEncoding.DecodeString(c.Data); err == nil && len(data) > 0 {
				out.Parts = append(out.Parts, streams.Audio{Data: data, MIME: c.MIMEType})
			}
		case mcp.EmbeddedResource:
			if tr, ok := c.Resource.(mcp.TextResourceContents); ok {
				texts = append(texts, tr.Text)
			}
		case mcp.ResourceLink:
			texts = append(texts, c.URI)
		}
	}
	text := strings.Join(texts, "\n")
	if res.IsError {
		return Output{}, vigil.Errorf(vigil.Invalid, "the tool reported an error: %s", answerText([]byte(text)))
	}
	switch {
	case len(res.RawStructuredContent) > 0:
		out.Value = res.RawStructuredContent
	case res.StructuredContent != nil:
		v, err := json.Marshal(res.StructuredContent)
		if err != nil {
			return Output{}, fmt.Errorf("the remote MCP server %s sent structured content that is not JSON", m.spec.Namespace)
		}
		out.Value = v
	case hasOutput && json.Valid([]byte(text)):
		out.Value = json.RawMessage(text)
	case len(texts) > 0:
		out.Value, _ = json.Marshal(text)
	}
	return out, nil
}

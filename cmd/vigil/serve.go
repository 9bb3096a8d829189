package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/agent"
	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/httpapi"
	"github.com/vigilhq/vigil/mcpserver"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/store"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"

	// Tasks name IANA time zones; embed the zone database so that they
	// resolve on hosts without one (minimal containers).
	_ "time/tzdata"
)

// Main is one running vigil server: its config, store and HTTP listener.
// An end-to-end test makes one with a config of its own (address port 0, a
// temporary data directory), calls Run, talks to Addr, then Close.
type Main struct {
	Config config.Config
	// Logger receives the server's structured logs. Default: JSON on stderr
	// at the configured level.
	Logger *slog.Logger

	backend store.Backend
	ln      net.Listener
	srv     *http.Server
	served  chan error
	// plugins keeps the registry's plugin tools in step with the store.
	plugins *toolsregistry.Sync
	// tasksRuntime runs the scheduler and, unless workers.embedded is off,
	// the workers.
	tasksRuntime *taskRuntime

	closeOnce sync.Once
	closeErr  error
}

// NewMain returns a Main with the default config.
func NewMain() *Main { return &Main{Config: config.Default()} }

// Run opens the store and starts serving HTTP in the background. It returns
// once the server accepts connections, or with the first error.
func (m *Main) Run(ctx context.Context) error {
	if err := m.Config.Validate(); err != nil {
		return err
	}
	if m.Logger == nil {
		m.Logger = newLogger(os.Stderr, m.Config.Log)
	}
	backend, err := store.Open(ctx, m.Config.Store, m.Logger)
	if err != nil {
		return err
	}
	m.backend = backend

	ps, err := newParts(ctx, m.Config, backend, m.Logger)
	if err != nil {
		_ = backend.Close()
		return err
	}
	m.plugins = ps.plugins
	mem, registry, model, plugins := ps.mem, ps.registry, ps.model, ps.plugins

	// The scheduler runs here unless scheduler.enabled is off, the workers
	// unless workers.embedded is (then vigil worker processes run them).
	rt, managed, err := newTaskRuntime(ctx, m.Config, backend, ps, serveRole(m.Config), m.Logger)
	if err != nil {
		m.abandon()
		return err
	}
	m.tasksRuntime = rt
	scopes, err := scopeTable(m.Config)
	if err != nil {
		m.abandon()
		return err
	}
	taskManager, err := newManager(m.Config, managed, backend, scopes, m.Logger)
	if err != nil {
		m.abandon()
		return err
	}

	// The main agent answers POST /v1/threads/{id}/messages.
	assistant := agent.NewAssistant(agent.AssistantOptions{Model: model, Tasks: taskManager, Log: backend, Memory: mem, Logger: m.Logger})

	authn, keys, authDesc, err := newAuth(m.Config, backend, m.Logger)
	if err != nil {
		m.abandon()
		return err
	}

	limits, err := m.Config.Quotas.Limits()
	if err != nil {
		m.abandon()
		return err
	}
	hub := streams.NewHub(backend, streams.HubOptions{Logger: m.Logger})
	// On Redis every instance counts requests against the same buckets.
	buckets, _ := backend.(httpapi.Buckets)
	api := httpapi.New(httpapi.Options{Log: backend, Hub: hub, Memory: mem, Tasks: taskManager, Logger: m.Logger, Heartbeat: m.Config.Server.Heartbeat, Auth: authn, Keys: keys, Assistant: assistant, Metrics: rt.metrics.Handler(), Tools: plugins,
		RequestsPerMinute:   func(tenant string) int { return limits.For(tenant).RequestsPerMinute },
		Buckets:             buckets,
		AuthorizationServer: authorizationServer(m.Config, m.Logger),
		BaseURL:             m.Config.Server.BaseURL,
	})
	mcpSrv := mcpserver.New(mcpserver.Options{
		Log: backend, Hub: hub, Registry: registry, Plugins: plugins, Tasks: taskManager, Logger: m.Logger,
		Allow:  func(p vigil.Principal, perm string) error { return auth.Allowed(p, auth.Permission(perm)) },
		Scopes: scopes.Of,
	})
	api.Handle("/mcp", mcpSrv.Handler())

	ln, err := net.Listen("tcp", m.Config.Server.Addr)
	if err != nil {
		m.abandon()
		return fmt.Errorf("listen %s: %w", m.Config.Server.Addr, err)
	}
	m.ln = ln
	m.srv = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	m.srv.RegisterOnShutdown(api.CloseStreams)
	m.srv.RegisterOnShutdown(mcpSrv.Close)
	m.served = make(chan error, 1)
	go func() { m.served <- m.srv.Serve(ln) }()
	if m.tasksRuntime != nil {
		m.tasksRuntime.Start()
	}
	m.Logger.Info("vigil serving", "addr", m.Addr(), "store", m.Config.Store.Driver, "auth", authDesc)
	return nil
}

// abandon releases what Run opened before it failed: the plugin sync,
// then the store.
func (m *Main) abandon() {
	m.plugins.Close()
	_ = m.backend.Close()
}

// Addr returns the address the server listens on, with the real port when
// the config asked for port 0.
func (m *Main) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// Close stops accepting requests, ends open streams (their clients resume
// by cursor), lets other running requests finish within the configured
// shutdown timeout, and closes the store. Calls after the first return the
// first call's result.
func (m *Main) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.close() })
	return m.closeErr
}

func (m *Main) close() error {
	var errs []error
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.Server.ShutdownTimeout)
		defer cancel()
		if err := m.srv.Shutdown(ctx); err != nil {
			// Requests still running at the deadline are cut.
			m.Logger.Warn("shutdown deadline passed; closing open connections", "err", err)
			errs = append(errs, m.srv.Close())
		}
		if err := <-m.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if m.tasksRuntime != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.Server.ShutdownTimeout)
		errs = append(errs, m.tasksRuntime.Stop(ctx))
		cancel()
	}
	if m.plugins != nil {
		m.plugins.Close() // before the store: its watch would retry
	}
	if m.backend != nil {
		errs = append(errs, m.backend.Close())
	}
	return errors.Join(errs...)
}

// openMemory returns the memory service over the backend. Its profile key
// comes from memory.key; with the bolt store and no key, from a key file
// beside the database, made on first start. With Redis and no key, profiles
// are off: instances could not agree on a generated key.
func openMemory(c config.Config, backend store.Backend, logger *slog.Logger) (*memory.Service, error) {
	key, err := memoryKey(c)
	if err != nil {
		return nil, err
	}
	if key == nil {
		logger.Warn("memory.key is not set: long-term profiles are off")
	}
	return memory.New(backend, memory.Options{Key: key, ShortTermTokens: c.Memory.ShortTermTokens, Logger: logger})
}

// newManager returns the task Manager over managed (see newTaskRuntime):
// who manages and reads all tasks comes from the permission table, the
// scopes recorded on an owner's tasks from scopes (see scopeTable),
// webhook secrets are sealed under the memory key, and each tenant's
// active tasks are capped by quotas.max_active_tasks.
func newManager(c config.Config, managed tasks.Store, log streams.Log, scopes auth.ScopeTable, logger *slog.Logger) (*tasks.Manager, error) {
	limits, err := c.Quotas.Limits()
	if err != nil {
		return nil, err
	}
	sealer, err := newSealer(c)
	if err != nil {
		return nil, err
	}
	var lock func(context.Context, string) (func(), error)
	if l, ok := log.(tenantLocker); ok {
		lock = l.LockTenant // Redis: one activation of a tenant at a time, across instances
	}
	return tasks.NewManager(tasks.Options{
		Store: managed, Log: log, Logger: logger,
		ManagesAll: managesAllTasks, ReadsAll: readsAllTasks,
		OwnerScopes:    scopes.Of,
		Sealer:         sealer,
		MaxActiveTasks: func(tenant string) int { return limits.For(tenant).MaxActiveTasks },
		LockTenant:     lock,
	}), nil
}

// tenantLocker is a store whose tenant locks every instance shares (the
// Redis store's; tasks.Options.LockTenant).
type tenantLocker interface {
	LockTenant(ctx context.Context, tenant string) (func(), error)
}

// scopeTable returns the role → scopes table: auth's defaults with
// auth.scopes's lists (validated by config.Validate).
func scopeTable(c config.Config) (auth.ScopeTable, error) {
	t, err := auth.NewScopeTable(c.Auth.Scopes.Overrides())
	if err != nil {
		return nil, fmt.Errorf("auth.scopes: %w", err)
	}
	return t, nil
}

// newSealer returns the sealer of webhook secrets: under the memory key
// (see memoryKey), or nil when there is none (Redis without memory.key),
// and then secrets are stored as given.
func newSealer(c config.Config) (*tasks.Sealer, error) {
	key, err := memoryKey(c)
	if err != nil || key == nil {
		return nil, err
	}
	return tasks.NewSealer(key)
}

// authorizationServer is the OAuth authorization server /mcp names in its
// protected resource metadata: the JWT issuer, when JWTs are accepted and
// the issuer is an http(s) URL, as OAuth issuers are. Otherwise none, and
// the metadata is not served: a client could not ask that issuer for a
// token.
func authorizationServer(c config.Config, logger *slog.Logger) string {
	if !c.Auth.AcceptsJWT() {
		return ""
	}
	iss := c.Auth.JWT.Issuer
	if u, err := url.Parse(iss); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		logger.Info("auth.jwt.issuer is not an http(s) URL: /mcp publishes no OAuth protected resource metadata", "issuer", iss)
		return ""
	}
	return iss
}

// managesAllTasks reports whether p may see and change every task of its
// tenant (auth's tasks:manage_all); others are limited to their own.
func managesAllTasks(p vigil.Principal) bool { return auth.Allowed(p, auth.TasksManageAll) == nil }

// readsAllTasks reports whether p may read every task of its tenant
// (auth's tasks:read_all, a viewer's) while changing only its own.
func readsAllTasks(p vigil.Principal) bool { return auth.Allowed(p, auth.TasksReadAll) == nil }

// newLogger returns the configured slog logger; its records carry the trace
// id and tenant of their context.
func newLogger(w io.Writer, c config.Log) *slog.Logger { return slog.New(c.NewHandler(w)) }

// runServe is `vigil serve`.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vigil serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML config `file` (default: built-in defaults)")
	var over config.Overrides
	over.Register(fs)
	if err := parseOnlyFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*configPath, os.Environ(), over)
	if err != nil {
		return err
	}
	m := &Main{Config: cfg}
	if err := m.Run(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	m.Logger.Info("vigil shutting down")
	return m.Close()
}

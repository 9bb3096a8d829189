package mcpserver

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// Tasks is the task management the task tools and resources use.
// *tasks.Manager implements it, and each method means what the Manager's
// method of the same name does. Every method acts for the principal in ctx
// (vigil.TenantFrom) and answers vigil.NotFound for another tenant's task
// or run; errors carry vigil codes. Implementations are safe for
// concurrent use.
type Tasks interface {
	Create(ctx context.Context, s tasks.Spec) (tasks.Task, error)
	Get(ctx context.Context, id string) (tasks.Task, error)
	List(ctx context.Context, f tasks.TaskFilter) (tasks.TaskPage, error)
	Update(ctx context.Context, id string, version int64, s tasks.Spec) (tasks.Task, error)
	Confirm(ctx context.Context, id string) (tasks.Task, error)
	Pause(ctx context.Context, id string) (tasks.Task, error)
	Resume(ctx context.Context, id string) (tasks.Task, error)
	Delete(ctx context.Context, id string) error
	RunNow(ctx context.Context, id string) (tasks.Run, error)
	ListRuns(ctx context.Context, f tasks.RunFilter) (tasks.RunPage, error)
	GetRun(ctx context.Context, id string) (tasks.Run, error)
}

var _ Tasks = (*tasks.Manager)(nil)

// The permissions the tools and resources require, named as in the auth
// package's table (auth.ThreadsRead, …), so that Options.Allow can be
// auth.Allowed.
const (
	PermThreadsRead   = "threads:read"
	PermTasksRead     = "tasks:read"
	PermTasksWrite    = "tasks:write"
	PermToolsRegister = "tools:register"
)

// Options configure a Server. Log is required; the zero value of every
// other field means its default.
type Options struct {
	// Log holds the threads get_events and the thread resources read, and
	// the reserved threads of the resumable-stream EventStore.
	Log streams.Log
	// Hub follows task threads for run_task's progress and for resource
	// subscriptions; nil means run_task polls the run and resource
	// subscriptions are not offered.
	Hub *streams.Hub
	// Registry backs register_tool, unregister_tool and list_registry_tools,
	// and its changes are announced as tools/list_changed; nil leaves those
	// tools out.
	Registry *toolsregistry.Registry
	// Tasks backs the task tools and the task and run resources; nil leaves
	// them out (a store without tasks.Store).
	Tasks Tasks
	// Plugins registers and unregisters plugin tools for register_tool
	// and unregister_tool: the Sync over Registry that stores them and
	// keeps every instance in step (REST's /v1/tools uses the same). Nil
	// means a Sync without a store: plugin tools live in Registry alone,
	// until the process ends.
	Plugins *toolsregistry.Sync
	// Scopes returns the scopes principal p holds when it calls one of its
	// tenant's plugin tools directly over MCP (they are re-exported to its
	// sessions); nil means none, so that only plugin tools that require no
	// scope can be called that way. Wire the scopes a task of p's runs
	// with here.
	Scopes func(p vigil.Principal) []string
	// Guard keeps the HTTP plugin tools registered over MCP away from
	// non-public addresses when Plugins is nil (a Sync has its own); nil
	// means a guard with no allowances.
	Guard *toolsregistry.Guard
	// Allow decides whether principal p holds permission (one of the Perm
	// constants). nil means the interim rule while authentication is being
	// added: tools:register needs role admin or developer, everything else
	// is allowed. Wire auth.Allowed here once it lands.
	Allow func(p vigil.Principal, permission string) error
	// Local is the principal of stdio sessions. The zero value means tenant
	// vigil.DefaultTenant, user "local", role admin: stdio serves the user
	// of the machine, as the unauthenticated HTTP API does.
	Local vigil.Principal
	// Location is the time zone of free-text requests that name none.
	// Default UTC.
	Location *time.Location
	// Now is the clock of planning and of stored stream events. Default
	// time.Now.
	Now func() time.Time
	// ElicitTimeout bounds how long create_task waits for a session-protocol
	// client to answer an elicitation. Default 2 minutes.
	ElicitTimeout time.Duration
	// MaxRunWait caps run_task's wait_seconds. Default 5 minutes.
	MaxRunWait time.Duration
	// SessionIdleTTL is how long a session-protocol session may stay idle
	// before its transport state (and its stored stream events) are
	// dropped. Default 1 hour.
	SessionIdleTTL time.Duration
	// Heartbeat is the ping interval on session-protocol GET streams, which
	// keeps proxies from closing them. Default 25 seconds; negative turns it
	// off.
	Heartbeat time.Duration
	// AnyHost serves requests that arrive over a loopback connection with a
	// Host header that is not localhost, as a reverse proxy on the same host
	// sends them. By default mcp-go refuses them (403), which protects a
	// local server against DNS rebinding by web pages.
	AnyHost bool
	// Extra are tools served beside Vigil's own, as given: mcp-go
	// validates their arguments against their input schema and the
	// handler gets the request's context (principal and trace id), but
	// no permission is checked for them. Their names must differ from
	// Vigil's tools' (mcp-go would replace Vigil's). vigil serve adds none;
	// the MCP load run (bench.MCP) adds a no-op tool, the baseline it
	// measures create_task against.
	Extra []server.ServerTool
	// Version is the server version reported to clients. Default "dev".
	Version string
	// Logger receives failures that are not the client's. Default
	// slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if m, ok := o.Tasks.(*tasks.Manager); ok && m == nil {
		o.Tasks = nil // a nil *tasks.Manager means no task management
	}
	if o.Allow == nil {
		o.Allow = defaultAllow
	}
	if o.Local.Tenant == "" {
		o.Local = vigil.Principal{Tenant: vigil.DefaultTenant, User: "local", Roles: []string{"admin"}}
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ElicitTimeout <= 0 {
		o.ElicitTimeout = 2 * time.Minute
	}
	if o.MaxRunWait <= 0 {
		o.MaxRunWait = 5 * time.Minute
	}
	if o.SessionIdleTTL <= 0 {
		o.SessionIdleTTL = time.Hour
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = 25 * time.Second
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// defaultAllow is the interim permission rule (see Options.Allow).
func defaultAllow(p vigil.Principal, permission string) error {
	if p.Tenant == "" {
		return vigil.Errorf(vigil.Unauthorized, "no credentials")
	}
	if permission != PermToolsRegister || p.HasRole("admin") || p.HasRole("developer") {
		return nil
	}
	return vigil.Errorf(vigil.Forbidden, "missing permission %s (it needs role admin or developer)", permission)
}

// Server is Vigil's MCP server: one mcp-go MCPServer with Vigil's tools and
// resources, served over streamable HTTP (Handler) and stdio (ServeStdio).
// It is safe for concurrent use.
type Server struct {
	opts    Options
	mcp     *server.MCPServer
	http    *server.StreamableHTTPServer
	handler http.Handler
	events  *EventStore

	// closing ends every MCP request and stream when Close is called.
	closing context.Context
	close   context.CancelFunc

	stopRegistry func()

	sessions *sessions
	watch    *watcher
}

// New returns a Server with every tool and resource its Options allow.
func New(opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{opts: opts}
	s.closing, s.close = context.WithCancel(context.Background())
	s.sessions = newSessions(opts.Logger)
	s.events = NewEventStore(EventStoreOptions{Log: opts.Log, Now: opts.Now, Tenant: s.sessions.tenantOf})

	hooks := &server.Hooks{}
	s.sessions.install(hooks)
	if opts.Registry != nil {
		s.installPluginExport(hooks)
	}
	subscribe := opts.Tasks != nil && opts.Hub != nil
	if subscribe {
		s.watch = newWatcher(s)
		s.watch.install(hooks)
	}
	if opts.Tasks != nil {
		hooks.AddAfterListResources(s.listTaskResources)
	}

	s.mcp = server.NewMCPServer("vigil", opts.Version,
		server.WithToolCapabilities(true),
		server.WithResourceCapabilities(subscribe, false),
		server.WithInputSchemaValidation(),
		server.WithOutputSchemaValidation(),
		server.WithToolHandlerMiddleware(s.traced),
		server.WithRecovery(),
		server.WithResourceRecovery(),
		server.WithHooks(hooks),
		server.WithInstructions(instructions),
	)
	s.addTools()
	if len(opts.Extra) > 0 {
		s.mcp.AddTools(opts.Extra...)
	}
	s.addResources()

	httpOpts := []server.StreamableHTTPOption{
		server.WithEventStore(s.events),
		server.WithSessionIdleTTL(opts.SessionIdleTTL),
		server.WithStreamableHTTPLogger(opts.Logger),
		server.WithDisableLocalhostProtection(opts.AnyHost),
	}
	if opts.Heartbeat > 0 {
		httpOpts = append(httpOpts, server.WithHeartbeatInterval(opts.Heartbeat))
	}
	s.http = server.NewStreamableHTTPServer(s.mcp, httpOpts...)
	s.handler = http.HandlerFunc(s.serveHTTP)

	if opts.Registry != nil {
		s.stopRegistry = opts.Registry.OnChange(s.registryChanged)
	}
	return s
}

const instructions = `Vigil runs tasks for you: periodic reports, one-shot reminders, monitors that fire when a condition holds, long multi-step jobs.
Create a task with create_task, from a free-text request or structured fields; it is a draft until confirm_task activates it.
Read a task's or thread's history with get_events or the vigil:// resources.`

// Handler returns the streamable HTTP handler to mount at /mcp behind the
// middleware that puts the principal and trace id in the request context
// (httpapi.Server.Handle). It serves both protocol generations: the
// stateless 2026-07-28 protocol, and the session protocol with its GET
// stream, resumable with Last-Event-ID.
func (s *Server) Handler() http.Handler { return s.handler }

// ServeStdio serves one MCP client over in and out (the process's stdin and
// stdout for `vigil mcp`) until in ends or ctx is done. The client acts as
// Options.Local. mcp-go keeps one stdio session per process, so a process
// serves one stdio client at a time.
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	ctx = vigil.WithPrincipal(ctx, s.opts.Local)
	stdio := server.NewStdioServer(s.mcp)
	stdio.SetErrorLogger(slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelError))
	return stdio.Listen(ctx, in, out)
}

// Close ends every open MCP request and stream and stops announcing
// registry changes. Session-protocol clients resume their streams with
// Last-Event-ID, from the store, after a restart or on another instance. A
// stopping HTTP server calls it (http.Server.RegisterOnShutdown), as it
// calls httpapi's CloseStreams.
func (s *Server) Close() {
	s.close()
	if s.stopRegistry != nil {
		s.stopRegistry()
	}
	if s.watch != nil {
		s.watch.close()
	}
}

// MCPServer returns the underlying mcp-go server, for tests and for
// transports this package does not wire.
func (s *Server) MCPServer() *server.MCPServer { return s.mcp }

// serveHTTP is Handler: it binds session-protocol sessions to the tenant
// and user that opened them, ties each request to Close, and hands mcp-go
// a writer that can stream.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if id := r.Header.Get(server.HeaderKeySessionID); id != "" {
		if owner, known := s.sessions.ownerOf(id); known {
			p, _ := vigil.PrincipalFrom(r.Context())
			if p.Tenant != owner.Tenant || p.User != owner.User {
				// Someone else's session is as unknown as a made-up one.
				http.Error(w, "Invalid session ID", http.StatusNotFound)
				return
			}
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.closing, cancel)
	defer stop()
	s.http.ServeHTTP(streamingWriter(w), r.WithContext(ctx))
}

// streamingWriter returns w as mcp-go needs it to stream SSE: mcp-go looks
// for http.Flusher on the writer itself, but middleware (httpapi's access
// log) wraps the connection's writer in one that offers Flush only through
// Unwrap. When something down the Unwrap chain can flush, the returned
// writer flushes through it.
func streamingWriter(w http.ResponseWriter) http.ResponseWriter {
	if _, ok := w.(http.Flusher); ok {
		return w
	}
	for u := w; ; {
		uw, ok := u.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		u = uw.Unwrap()
		if _, ok := u.(http.Flusher); ok {
			return flushWriter{w}
		}
	}
}

type flushWriter struct{ http.ResponseWriter }

func (w flushWriter) Flush()                      { _ = http.NewResponseController(w.ResponseWriter).Flush() }
func (w flushWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
func (w flushWriter) SetWriteDeadline(t time.Time) error {
	return http.NewResponseController(w.ResponseWriter).SetWriteDeadline(t)
}

// traced gives every tool call a trace id: HTTP requests carry the one the
// middleware made, stdio requests none.
func (s *Server) traced(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if vigil.TraceID(ctx) == "" {
			ctx = vigil.WithTraceID(ctx, vigil.NewTraceID())
		}
		return next(ctx, req)
	}
}

package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/httpapi"
	"github.com/vigilhq/vigil/mcpserver"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// MCPOptions configure the MCP workload. The zero value of a field means
// its default.
type MCPOptions struct {
	// Backend is the store the server runs on; nil means a bolt file in a
	// temporary directory, removed when the workload ends. The tasks
	// create_task makes stay in Backend: callers give it one they can
	// throw away.
	Backend MCPBackend
	// Clients is the number of concurrent MCP clients, each with an HTTP
	// connection of its own (default 32).
	Clients int
	// Rounds is how many times the pair of phases, no-op then create_task,
	// is measured (default 3). Each figure is reported per phase and as
	// the median over the rounds, so that a burst of noise on a shared
	// machine moves one phase, not the ratio.
	Rounds int
	// Duration is the measured time, shared equally by the phases of
	// every round (default 10s). Ignored when Calls is set.
	Duration time.Duration
	// Calls, when set, makes every phase a fixed number of calls per
	// client instead of a duration.
	Calls int
	// Warmup is how long the clients call the tools, unmeasured, before
	// the first round (default 1s, shared by the tools); negative means no
	// warm-up.
	Warmup time.Duration
	// Session makes the clients speak the 2025-11-25 session protocol
	// (initialize, Mcp-Session-Id) instead of mcp-go's default, the
	// stateless 2026-07-28 protocol.
	Session bool
	// Twin adds a phase to each round, between the two: create_task's
	// twin (PhaseTwin), a tool with create_task's input and output schemas
	// and arguments whose handler returns a ready-made draft and does
	// nothing else. Twin ÷ no-op is then what the MCP layer (mcp-go, both
	// sides) costs for a tool of create_task's size, and create_task ÷
	// twin what Vigil's handler adds.
	Twin bool
	// Progress, when set, receives a line as each phase ends.
	Progress io.Writer
}

func (o MCPOptions) withDefaults() MCPOptions {
	if o.Clients <= 0 {
		o.Clients = 32
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Warmup == 0 {
		o.Warmup = time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

// MCPBackend is what the MCP workload's server runs on: the tasks.Store
// and the streams.Log of the tasks' threads (one backend implements both).
type MCPBackend interface {
	tasks.Store
	streams.Log
}

// The phases of an MCP round.
const (
	PhaseNoop   = NoopTool      // the no-op tool
	PhaseCreate = "create_task" // create_task with structured fields
	// PhaseTwin is create_task's schemas and arguments, without its work
	// (MCPOptions.Twin).
	PhaseTwin = "create_task_twin"
)

// MCPReport is what the MCP workload measured.
type MCPReport struct {
	Clients  int
	Protocol string        // the protocol version the clients negotiated
	Phase    time.Duration // each phase's length, when the phases were timed
	Calls    int           // calls per client and phase, when the phases counted calls
	Twin     bool          // whether the rounds measured create_task's twin
	Rounds   []MCPRound    // in the order run
	Created  int           // drafts create_task returned, warm-up included
	Stored   int           // of those, tasks found in the store with the fields sent
	Problems []string      // the first few failed calls and missing tasks
}

// MCPRound is one no-op phase and the create_task phase that followed it,
// with the twin phase between them when the report has one.
type MCPRound struct {
	Noop, Create MCPPhase
	Twin         MCPPhase
}

// phase returns the round's phase of that name.
func (rd MCPRound) phase(name string) MCPPhase {
	switch name {
	case PhaseCreate:
		return rd.Create
	case PhaseTwin:
		return rd.Twin
	}
	return rd.Noop
}

// phaseNames returns the names of the phases each round measured, in the
// order run.
func (r MCPReport) phaseNames() []string {
	if r.Twin {
		return []string{PhaseNoop, PhaseTwin, PhaseCreate}
	}
	return []string{PhaseNoop, PhaseCreate}
}

// MCPPhase is one phase: every client calling one tool.
type MCPPhase struct {
	Calls   int             // calls made, failed ones included
	Errors  int             // calls that failed: a protocol error or an isError result
	Elapsed time.Duration   // from the start until the last client's last call returned
	Latency []time.Duration // each call's round trip as the client saw it, sorted
	// CPU is the CPU time, user and system, the whole process (server and
	// clients) used during the phase; 0 where it is not measured. Per
	// call, it is what the phase's calls cost whatever else the machine
	// runs, where calls/s and latencies move with the machine's load.
	CPU time.Duration
}

// PerSecond returns calls per second.
func (p MCPPhase) PerSecond() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Calls) / p.Elapsed.Seconds()
}

// Quantile returns the q-quantile (0 < q ≤ 1) of the calls' latencies.
func (p MCPPhase) Quantile(q float64) time.Duration { return quantile(p.Latency, q) }

// CPUPerCall returns the process's CPU time per call, or 0 when CPU time
// was not measured.
func (p MCPPhase) CPUPerCall() time.Duration {
	if p.Calls == 0 {
		return 0
	}
	return p.CPU / time.Duration(p.Calls)
}

// MCPSummary is one tool's figures over the rounds: medians of the
// rounds' throughput and quantiles, totals of the counts.
type MCPSummary struct {
	PerSecond     float64
	P50, P99      time.Duration
	CPUPerCall    time.Duration
	Calls, Errors int
}

// Summary returns the figures of phase (PhaseNoop, PhaseTwin or
// PhaseCreate) over every round.
func (r MCPReport) Summary(phase string) MCPSummary {
	var s MCPSummary
	var rates []float64
	var p50s, p99s, cpus []time.Duration
	for _, rd := range r.Rounds {
		p := rd.phase(phase)
		s.Calls += p.Calls
		s.Errors += p.Errors
		rates = append(rates, p.PerSecond())
		p50s = append(p50s, p.Quantile(0.5))
		p99s = append(p99s, p.Quantile(0.99))
		cpus = append(cpus, p.CPUPerCall())
	}
	s.PerSecond, s.P50, s.P99, s.CPUPerCall = median(rates), median(p50s), median(p99s), median(cpus)
	return s
}

// P50Ratio returns the median over the rounds of create_task's p50
// latency divided by the no-op's, each round's pair measured back to back.
func (r MCPReport) P50Ratio() float64 {
	return r.ratio(func(p MCPPhase) float64 { return float64(p.Quantile(0.5)) })
}

// RateRatio returns the median over the rounds of create_task's calls/s
// divided by the no-op's. Its inverse is what a create_task costs in
// no-op calls.
func (r MCPReport) RateRatio() float64 { return r.ratio(MCPPhase.PerSecond) }

// CPURatio returns the median over the rounds of create_task's CPU time
// per call divided by the no-op's, or 0 when CPU time was not measured.
// Unlike the other ratios it does not move when other processes load the
// machine, as long as the process is CPU-bound.
func (r MCPReport) CPURatio() float64 {
	return r.ratio(func(p MCPPhase) float64 { return float64(p.CPUPerCall()) })
}

func (r MCPReport) ratio(of func(MCPPhase) float64) float64 {
	return r.ratioOf(PhaseCreate, PhaseNoop, of)
}

// ratioOf returns the median over the rounds of phase num's figure of
// divided by phase den's.
func (r MCPReport) ratioOf(num, den string, of func(MCPPhase) float64) float64 {
	var rs []float64
	for _, rd := range r.Rounds {
		if d := of(rd.phase(den)); d > 0 {
			rs = append(rs, of(rd.phase(num))/d)
		}
	}
	return median(rs)
}

// MeetsTarget reports whether create_task costs at most twice the no-op
// call (the MCP issue's target), both by p50 latency and by throughput.
func (r MCPReport) MeetsTarget() bool {
	return len(r.Rounds) > 0 && r.P50Ratio() <= 2 && r.RateRatio() >= 0.5
}

// Check returns an error unless every phase made calls, none failed, and
// every task create_task returned is in the store with the fields sent.
func (r MCPReport) Check() error {
	var errs []error
	for i, rd := range r.Rounds {
		for _, name := range r.phaseNames() {
			if p := rd.phase(name); p.Calls == 0 || p.Errors > 0 {
				errs = append(errs, fmt.Errorf("round %d, %s: %d calls, %d failed", i+1, name, p.Calls, p.Errors))
			}
		}
	}
	if r.Stored != r.Created {
		errs = append(errs, fmt.Errorf("%d of %d created tasks found in the store as sent", r.Stored, r.Created))
	}
	if len(errs) > 0 && len(r.Problems) > 0 {
		errs = append(errs, fmt.Errorf("first problems: %s", strings.Join(r.Problems, "; ")))
	}
	return errors.Join(errs...)
}

// WriteTo prints the report as a table.
func (r MCPReport) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
	length := fmt.Sprintf("%s each", r.Phase.Round(time.Millisecond))
	if r.Calls > 0 {
		length = fmt.Sprintf("%d calls per client each", r.Calls)
	}
	fmt.Fprintf(&b, "mcp: %d clients over streamable HTTP (protocol %s); %d rounds of %s then %s, %s\n",
		r.Clients, r.Protocol, len(r.Rounds), PhaseNoop, PhaseCreate, length)
	us := func(d time.Duration) string {
		if d <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
	fmt.Fprintf(&b, "%-22s %9s %9s %9s %9s %8s %7s\n", "phase", "calls/s", "p50", "p99", "cpu/call", "calls", "errors")
	row := func(name string, rate float64, p50, p99, cpu time.Duration, calls, errs int) {
		fmt.Fprintf(&b, "%-22s %9.0f %9s %9s %9s %8d %7d\n", name, rate, ms(p50), ms(p99), us(cpu), calls, errs)
	}
	for i, rd := range r.Rounds {
		for _, name := range r.phaseNames() {
			p := rd.phase(name)
			row(fmt.Sprintf("round %d %s", i+1, name), p.PerSecond(), p.Quantile(0.5), p.Quantile(0.99), p.CPUPerCall(), p.Calls, p.Errors)
		}
	}
	for _, name := range r.phaseNames() {
		s := r.Summary(name)
		row("median "+name, s.PerSecond, s.P50, s.P99, s.CPUPerCall, s.Calls, s.Errors)
	}
	p50, rate := r.P50Ratio(), r.RateRatio()
	cost := 0.0
	if rate > 0 {
		cost = 1 / rate
	}
	fmt.Fprintf(&b, "create_task ÷ no-op (median of the rounds): p50 %.2f×, calls/s %.2f (one create_task costs %.2f no-op calls)", p50, rate, cost)
	if c := r.CPURatio(); c > 0 {
		fmt.Fprintf(&b, ", CPU per call %.2f×", c)
	}
	fmt.Fprintln(&b)
	if r.Twin {
		p50 := func(p MCPPhase) float64 { return float64(p.Quantile(0.5)) }
		cpu := func(p MCPPhase) float64 { return float64(p.CPUPerCall()) }
		for _, pair := range [][2]string{{PhaseTwin, PhaseNoop}, {PhaseCreate, PhaseTwin}} {
			fmt.Fprintf(&b, "%s ÷ %s: p50 %.2f×, calls/s %.2f, CPU per call %.2f×\n", pair[0], pair[1],
				r.ratioOf(pair[0], pair[1], p50), r.ratioOf(pair[0], pair[1], MCPPhase.PerSecond), r.ratioOf(pair[0], pair[1], cpu))
		}
	}
	verdict := "met"
	if !r.MeetsTarget() {
		verdict = "MISSED"
	}
	fmt.Fprintf(&b, "target (create_task ≤ 2× the no-op call, by p50 and by throughput): %s\n", verdict)
	fmt.Fprintf(&b, "stored: %d of %d drafts create_task returned are in the store with the fields sent\n", r.Stored, r.Created)
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	fmt.Fprintln(&b)
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

// MCP runs the MCP workload: Vigil's HTTP server as `vigil serve`
// assembles it (httpapi with mcpserver at /mcp, a task manager, a hub) on
// a loopback port, with one extra tool, NoopTool, which does nothing. It
// connects Clients mcp-go streamable-HTTP clients, each initialized once;
// warms up; then runs Rounds rounds of two phases, every client calling
// in a loop: the no-op tool, then create_task with structured fields (a
// periodic task with a cron trigger, an instruction and slots), with
// create_task's twin between them when Twin is set. Last it reads every
// task create_task returned back from the store.
//
// The clients run in this process, so on a small machine they take CPU
// from the server: the figures are of the whole round trip, and the
// ratio between the phases is what compares create_task with the bare
// protocol. Each phase's CPU time, per call, counts both sides too.
func MCP(ctx context.Context, opts MCPOptions) (MCPReport, error) {
	o := opts.withDefaults()
	r := MCPReport{Clients: o.Clients, Twin: o.Twin}
	if o.Calls > 0 {
		r.Calls = o.Calls
	} else {
		r.Phase = o.Duration / time.Duration(len(r.phaseNames())*o.Rounds)
	}
	backend := o.Backend
	if backend == nil {
		db, cleanup, err := tempBolt()
		if err != nil {
			return r, err
		}
		defer cleanup()
		backend = db
	}
	srv, err := startMCP(backend)
	if err != nil {
		return r, err
	}
	defer srv.close()

	clients, err := srv.connect(ctx, o.Clients, o.Session)
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	if err != nil {
		return r, err
	}
	r.Protocol = clients[0].c.ProtocolVersion()

	var created []string
	run := func(phase string, d time.Duration, calls int) (MCPPhase, error) {
		p, ids, problems, err := runPhase(ctx, clients, phase, d, calls)
		created = append(created, ids...)
		r.Problems = appendProblems(r.Problems, problems...)
		return p, err
	}
	if o.Warmup > 0 {
		fmt.Fprintf(o.Progress, "warm-up: %d clients, %s\n", o.Clients, o.Warmup)
		for _, phase := range r.phaseNames() {
			if _, err := run(phase, o.Warmup/time.Duration(len(r.phaseNames())), 0); err != nil {
				return r, err
			}
		}
	}
	for i := range o.Rounds {
		var rd MCPRound
		for _, name := range r.phaseNames() {
			p, err := run(name, r.Phase, r.Calls)
			if err != nil {
				return r, err
			}
			switch name {
			case PhaseNoop:
				rd.Noop = p
			case PhaseTwin:
				rd.Twin = p
			default:
				rd.Create = p
			}
			fmt.Fprintf(o.Progress, "round %d/%d %-16s %7.0f calls/s  p50 %s  p99 %s  cpu/call %s  (%d calls, %d errors)\n", i+1, o.Rounds, name,
				p.PerSecond(), p.Quantile(0.5).Round(10*time.Microsecond), p.Quantile(0.99).Round(10*time.Microsecond),
				p.CPUPerCall().Round(time.Microsecond), p.Calls, p.Errors)
		}
		r.Rounds = append(r.Rounds, rd)
	}

	fmt.Fprintf(o.Progress, "check: %d created tasks in the store\n", len(created))
	r.Created = len(created)
	stored, problems, err := checkStored(ctx, backend, created)
	if err != nil {
		return r, err
	}
	r.Stored = stored
	r.Problems = appendProblems(r.Problems, problems...)
	return r, nil
}

// maxProblems bounds the problems a report keeps.
const maxProblems = 5

func appendProblems(to []string, ps ...string) []string {
	return append(to, ps[:min(len(ps), maxProblems-len(to))]...)
}

// tempBolt opens a bolt file in a new temporary directory; cleanup closes
// it and removes the directory.
func tempBolt() (*bolt.DB, func(), error) {
	dir, err := os.MkdirTemp("", "vigil-bench-mcp")
	if err != nil {
		return nil, nil, err
	}
	db, err := bolt.Open(filepath.Join(dir, "vigil.db"), bolt.Options{})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return db, func() { db.Close(); os.RemoveAll(dir) }, nil
}

// mcpServer is Vigil's HTTP server with MCP at /mcp, as `vigil serve`
// assembles it without authentication and without the tools registry,
// plus the no-op tool and create_task's twin.
type mcpServer struct {
	http *http.Server
	mcp  *mcpserver.Server
	url  string // the MCP endpoint
	// transport carries every client's requests, with an idle connection
	// kept for each.
	transport *http.Transport
}

// noopTool is the no-op tool the MCP server serves beside its own: no
// arguments, a short text result.
var noopTool = server.ServerTool{
	Tool: mcp.NewTool(NoopTool, mcp.WithDescription("Does nothing: the load run's baseline."), mcp.WithReadOnlyHintAnnotation(true)),
	Handler: func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	},
}

// twinTool returns create_task's twin: create, renamed PhaseTwin, whose
// handler answers every call with the same draft, as create_task answers
// the workload's arguments, and does nothing else: no arguments bound, no
// permission checked, nothing stored. mcp-go still validates its
// arguments and its result against create_task's schemas.
func twinTool(create mcp.Tool) server.ServerTool {
	tool := create
	tool.Name = PhaseTwin
	tool.Title = "create_task's twin"
	tool.Description = "Takes create_task's arguments and returns a ready-made draft, creating nothing: the load run's measure of the MCP layer for a tool of create_task's size."
	tool.Annotations.Title = tool.Title
	now := time.Now().UTC()
	args := createArgs(0)
	task := tasks.Task{
		ID: vigil.NewID("tsk_"), Tenant: benchTenant, Owner: "local", OwnerScopes: []string{"*"},
		Status: tasks.StatusDraft, Version: 1, ThreadID: vigil.NewID("th_"),
		Spec: tasks.Spec{
			Title: args["title"].(string), Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "0 8 * * *"},
			Instruction: args["instruction"].(string), Slots: args["slots"].(map[string]any),
			Priority: tasks.PriorityNormal, CatchUp: tasks.CatchUpRunOnce,
		},
		CreatedAt: now, UpdatedAt: now,
	}
	out := mcpserver.CreateTaskOutput{Status: mcpserver.StatusDraft, Task: &task, Missing: []string{}}
	text := fmt.Sprintf("Created draft task %s %q (%s, %s, version %d). Confirm it with confirm_task.", task.ID, task.Title, task.Kind, task.Status, task.Version)
	return server.ServerTool{Tool: tool, Handler: func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultStructured(out, text), nil
	}}
}

// startMCP serves Vigil's API and MCP over backend on a loopback port,
// with the no-op tool and create_task's twin beside Vigil's tools.
func startMCP(backend MCPBackend) (*mcpServer, error) {
	logger := discardLogger()
	hub := streams.NewHub(backend, streams.HubOptions{Logger: logger})
	mgr := tasks.NewManager(tasks.Options{Store: backend, Log: backend, Logger: logger})
	api := httpapi.New(httpapi.Options{Log: backend, Hub: hub, Tasks: mgr, Logger: logger})
	m := mcpserver.New(mcpserver.Options{
		Log: backend, Hub: hub, Tasks: mgr, Logger: logger,
		Allow: func(p vigil.Principal, perm string) error { return auth.Allowed(p, auth.Permission(perm)) },
		Extra: []server.ServerTool{noopTool},
	})
	if create := m.MCPServer().GetTool(PhaseCreate); create != nil {
		m.MCPServer().AddTools(twinTool(create.Tool))
	}
	api.Handle("/mcp", m.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		m.Close()
		return nil, err
	}
	s := &mcpServer{
		http: &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second},
		mcp:  m,
		url:  "http://" + ln.Addr().String() + "/mcp",
	}
	s.http.RegisterOnShutdown(api.CloseStreams)
	s.http.RegisterOnShutdown(m.Close)
	go s.http.Serve(ln)
	return s, nil
}

// close stops the server. The clients' idle connections are closed first:
// the transport may have dialed a connection that never carried a
// request, and Shutdown would wait 5 seconds for it.
func (s *mcpServer) close() {
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.http.Shutdown(ctx) != nil {
		s.http.Close()
	}
}

// mcpClient is one initialized MCP client and the calls it makes.
type mcpClient struct {
	c                  *client.Client
	noop, create, twin mcp.CallToolRequest
}

// createArgs are create_task's arguments: structured fields, no free
// text, so that no planning is involved.
func createArgs(n int) map[string]any {
	return map[string]any{
		"title":       fmt.Sprintf("Weather in Paris (bench client %d)", n),
		"kind":        string(tasks.KindPeriodic),
		"trigger":     map[string]any{"cron": "0 8 * * *"},
		"instruction": "Send me the weather forecast for Paris, with the high and low temperatures and the chance of rain.",
		"slots":       map[string]any{"city": "Paris", "units": "metric"},
	}
}

// connect starts and initializes n clients, each with an HTTP client of
// its own on the server's shared transport. On error it returns the
// clients started so far, for the caller to close.
func (s *mcpServer) connect(ctx context.Context, n int, session bool) ([]*mcpClient, error) {
	s.transport = &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}
	var out []*mcpClient
	for i := range n {
		topts := []transport.StreamableHTTPCOption{
			transport.WithHTTPBasicClient(&http.Client{Transport: s.transport, Timeout: time.Minute}),
			transport.WithHTTPLogger(discardLogger()),
		}
		var copts []client.ClientOption
		if session {
			copts = append(copts, client.WithProtocolVersion(mcp.ProtocolVersion20251125))
		}
		tr, err := transport.NewStreamableHTTP(s.url, topts...)
		if err != nil {
			return out, err
		}
		c := &mcpClient{c: client.NewClient(tr, copts...)}
		c.noop.Params.Name = NoopTool
		c.create.Params.Name = PhaseCreate
		c.create.Params.Arguments = createArgs(i)
		c.twin.Params.Name = PhaseTwin
		c.twin.Params.Arguments = createArgs(i)
		if err := c.c.Start(ctx); err != nil {
			return out, fmt.Errorf("mcp client %d: start: %w", i, err)
		}
		out = append(out, c)
		ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = c.c.Initialize(ictx, mcp.InitializeRequest{Params: mcp.InitializeParams{
			ClientInfo: mcp.Implementation{Name: "vigil-bench", Version: "1"},
		}})
		cancel()
		if err != nil {
			return out, fmt.Errorf("mcp client %d: initialize: %w", i, err)
		}
	}
	return out, nil
}

func (c *mcpClient) close() { c.c.Close() }

// call makes one call of phase and returns, for create_task, the id of
// the draft created.
func (c *mcpClient) call(ctx context.Context, phase string) (string, error) {
	req := c.noop
	switch phase {
	case PhaseCreate:
		req = c.create
	case PhaseTwin:
		req = c.twin
	}
	res, err := c.c.CallTool(ctx, req)
	if err != nil {
		return "", err
	}
	if res.IsError {
		return "", fmt.Errorf("tool error: %s", resultText(res))
	}
	if phase != PhaseCreate {
		return "", nil
	}
	out, _ := res.StructuredContent.(map[string]any)
	task, _ := out["task"].(map[string]any)
	id, _ := task["id"].(string)
	if out["status"] != mcpserver.StatusDraft || id == "" {
		return "", fmt.Errorf("create_task answered status %v and task id %q, want a draft", out["status"], id)
	}
	return id, nil
}

func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, " ")
}

// runPhase has every client call phase in a loop, calls times or, when
// calls is 0, until d has passed, and returns the phase's figures, the
// ids of the tasks created and the first failures.
func runPhase(ctx context.Context, clients []*mcpClient, phase string, d time.Duration, calls int) (MCPPhase, []string, []string, error) {
	type result struct {
		lat      []time.Duration
		ids      []string
		errs     int
		problems []string
	}
	results := make([]result, len(clients))
	cpu0, cpuOK := processCPU()
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			res := &results[i]
			for n := 0; ctx.Err() == nil; n++ {
				if calls > 0 && n >= calls || calls == 0 && !time.Now().Before(end) {
					return
				}
				t0 := time.Now()
				id, err := c.call(ctx, phase)
				res.lat = append(res.lat, time.Since(t0))
				switch {
				case err != nil:
					res.errs++
					if len(res.problems) < maxProblems {
						res.problems = append(res.problems, fmt.Sprintf("%s: %v", phase, err))
					}
				case id != "":
					res.ids = append(res.ids, id)
				}
			}
		})
	}
	wg.Wait()
	p := MCPPhase{Elapsed: time.Since(start)}
	if cpu1, ok := processCPU(); ok && cpuOK {
		p.CPU = cpu1 - cpu0
	}
	if err := ctx.Err(); err != nil {
		return p, nil, nil, err
	}
	var ids, problems []string
	for _, res := range results {
		p.Latency = append(p.Latency, res.lat...)
		p.Errors += res.errs
		ids = append(ids, res.ids...)
		problems = append(problems, res.problems...)
	}
	p.Calls = len(p.Latency)
	slices.Sort(p.Latency)
	return p, ids, problems, nil
}

// checkStored reads every created task from the store and counts those
// that hold the fields create_task was sent.
func checkStored(ctx context.Context, st tasks.Store, ids []string) (int, []string, error) {
	set := make([]tasks.Task, len(ids))
	for i, id := range ids {
		set[i] = tasks.Task{ID: id, Tenant: benchTenant}
	}
	want := createArgs(0)
	var mu sync.Mutex
	var stored int
	var problems []string
	err := forEach(ctx, set, 8, func(ctx context.Context, t tasks.Task) error {
		got, err := st.Task(ctx, t.Tenant, t.ID)
		problem := ""
		switch {
		case vigil.ErrorCode(err) == vigil.NotFound:
			problem = "task " + t.ID + " not found"
		case err != nil:
			return err
		case got.Status != tasks.StatusDraft || got.Kind != tasks.KindPeriodic || got.Trigger.Cron != "0 8 * * *" ||
			got.Instruction != want["instruction"] || got.Slots["city"] != "Paris" || !strings.HasPrefix(got.Title, "Weather in Paris"):
			problem = fmt.Sprintf("task %s stored as %s %s %q, instruction %q, slots %v", t.ID, got.Status, got.Kind, got.Trigger.Cron, got.Instruction, got.Slots)
		}
		mu.Lock()
		defer mu.Unlock()
		if problem == "" {
			stored++
		} else if len(problems) < maxProblems {
			problems = append(problems, problem)
		}
		return nil
	})
	if err != nil {
		return stored, problems, fmt.Errorf("check stored tasks: %w", err)
	}
	return stored, problems, nil
}

// median returns the median of xs (the upper one of an even count), or
// zero for none.
func median[T float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

package bench

import (
	"bytes"
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/tasks"
)

func openBolt(tb testing.TB) *bolt.DB {
	tb.Helper()
	db, err := bolt.Open(filepath.Join(tb.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// TestMCPSmall runs the MCP workload at a small size, in both protocol
// generations, with and without create_task's twin, and checks that it
// measured what it claims: every call of every phase counted and
// succeeded, and every task create_task made, and only those, is in the
// store, listed for the tenant, as sent.
func TestMCPSmall(t *testing.T) {
	for _, tc := range []struct {
		name     string
		session  bool
		twin     bool
		protocol string
	}{
		{"modern", false, false, mcp.ProtocolVersion20260728},
		{"modern twin", false, true, mcp.ProtocolVersion20260728},
		{"session", true, false, mcp.ProtocolVersion20251125},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openBolt(t)
			const clients, calls, rounds = 3, 4, 2
			var progress bytes.Buffer
			r, err := MCP(context.Background(), MCPOptions{
				Backend: db, Clients: clients, Calls: calls, Rounds: rounds, Warmup: -1, Session: tc.session, Twin: tc.twin, Progress: &progress,
			})
			if err != nil {
				t.Fatalf("%v\n%s", err, progress.String())
			}
			if err := r.Check(); err != nil {
				t.Fatal(err)
			}
			if r.Protocol != tc.protocol || r.Clients != clients || len(r.Rounds) != rounds || r.Twin != tc.twin {
				t.Errorf("protocol %s, %d clients, %d rounds, twin %t; want %s, %d, %d, %t",
					r.Protocol, r.Clients, len(r.Rounds), r.Twin, tc.protocol, clients, rounds, tc.twin)
			}
			for i, rd := range r.Rounds {
				phases := map[string]MCPPhase{PhaseNoop: rd.Noop, PhaseCreate: rd.Create}
				if tc.twin {
					phases[PhaseTwin] = rd.Twin
				} else if rd.Twin.Calls != 0 {
					t.Errorf("round %d: %d twin calls without the twin", i+1, rd.Twin.Calls)
				}
				for name, p := range phases {
					if p.Calls != clients*calls || len(p.Latency) != p.Calls || p.Errors != 0 || p.Elapsed <= 0 ||
						p.Quantile(0.5) <= 0 || p.Quantile(0.5) > p.Quantile(0.99) || p.Quantile(1) > p.Elapsed || p.PerSecond() <= 0 {
						t.Errorf("round %d %s: %d calls, %d latencies, %d errors, elapsed %s, p50 %s, p99 %s, max %s",
							i+1, name, p.Calls, len(p.Latency), p.Errors, p.Elapsed, p.Quantile(0.5), p.Quantile(0.99), p.Quantile(1))
					}
					// The process cannot use more CPU than its processors
					// give in the phase's time (a clock tick of slack).
					if limit := p.Elapsed*time.Duration(runtime.NumCPU()) + 10*time.Millisecond; p.CPU < 0 || p.CPU > limit {
						t.Errorf("round %d %s: CPU %s in %s on %d CPUs", i+1, name, p.CPU, p.Elapsed, runtime.NumCPU())
					}
				}
			}
			if want := rounds * clients * calls; r.Created != want || r.Stored != want {
				t.Errorf("%d created, %d stored; want %d", r.Created, r.Stored, want)
			}
			// Independently of the workload's own check: the tenant's task
			// list holds exactly the drafts made, with the fields sent.
			page, err := db.ListTasks(context.Background(), benchTenant, tasks.TaskFilter{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Tasks) != r.Created {
				t.Errorf("store lists %d tasks, want %d", len(page.Tasks), r.Created)
			}
			for _, task := range page.Tasks {
				if task.Status != tasks.StatusDraft || task.Kind != tasks.KindPeriodic || task.Trigger.Cron != "0 8 * * *" || task.Slots["city"] != "Paris" {
					t.Errorf("task %s: %s %s %q, slots %v", task.ID, task.Status, task.Kind, task.Trigger.Cron, task.Slots)
				}
			}
			if s := r.Summary(PhaseCreate); s.Calls != rounds*clients*calls || s.Errors != 0 || s.P50 <= 0 || s.PerSecond <= 0 {
				t.Errorf("create summary %+v", s)
			}
			if r.P50Ratio() <= 0 || r.RateRatio() <= 0 {
				t.Errorf("ratios: p50 %.2f, calls/s %.2f", r.P50Ratio(), r.RateRatio())
			}
			var out bytes.Buffer
			if _, err := r.WriteTo(&out); err != nil {
				t.Fatal(err)
			}
			wants := []string{"round 2 create_task", "median noop", "median create_task", "cpu/call", "create_task ÷ no-op", "target", "stored: 24 of 24"}
			if tc.twin {
				wants = append(wants, "round 2 create_task_twin", "median create_task_twin", "create_task_twin ÷ noop", "create_task ÷ create_task_twin")
			}
			for _, want := range wants {
				if !strings.Contains(out.String(), want) {
					t.Errorf("report lacks %q:\n%s", want, out.String())
				}
			}
			if !tc.twin && strings.Contains(out.String(), PhaseTwin) {
				t.Errorf("report without the twin shows it:\n%s", out.String())
			}
		})
	}
}

// TestMCPCheckFails checks that a report with a failed call, an empty
// phase or a missing task fails its check.
func TestMCPCheckFails(t *testing.T) {
	good := MCPPhase{Calls: 1}
	for name, r := range map[string]MCPReport{
		"failed call":  {Rounds: []MCPRound{{Noop: good, Create: MCPPhase{Calls: 1, Errors: 1}}}, Created: 0},
		"empty phase":  {Rounds: []MCPRound{{Noop: MCPPhase{}, Create: good}}, Created: 1, Stored: 1},
		"missing task": {Rounds: []MCPRound{{Noop: good, Create: good}}, Created: 2, Stored: 1},
		"empty twin":   {Twin: true, Rounds: []MCPRound{{Noop: good, Create: good}}, Created: 1, Stored: 1},
		"failed twin":  {Twin: true, Rounds: []MCPRound{{Noop: good, Twin: MCPPhase{Calls: 1, Errors: 1}, Create: good}}, Created: 1, Stored: 1},
	} {
		if r.Check() == nil {
			t.Errorf("%s: Check passed", name)
		}
	}
	if err := (MCPReport{Rounds: []MCPRound{{Noop: good, Create: good}}, Created: 1, Stored: 1}).Check(); err != nil {
		t.Errorf("a sound report fails its check: %v", err)
	}
}

// TestMCPCPU checks the CPU figures: per call, as a median over the
// rounds, as the ratio of the phases, and in the table, where a phase
// whose CPU time was not measured shows a dash.
func TestMCPCPU(t *testing.T) {
	phase := func(calls int, cpu time.Duration) MCPPhase {
		return MCPPhase{Calls: calls, Elapsed: time.Second, CPU: cpu, Latency: []time.Duration{time.Millisecond}}
	}
	r := MCPReport{Clients: 1, Rounds: []MCPRound{
		{Noop: phase(1000, 400*time.Millisecond), Create: phase(500, 600*time.Millisecond)}, // 400µs, 1200µs: 3×
		{Noop: phase(1000, 500*time.Millisecond), Create: phase(400, 400*time.Millisecond)}, // 500µs, 1000µs: 2×
		{Noop: phase(1000, 450*time.Millisecond), Create: phase(100, 250*time.Millisecond)}, // 450µs, 2500µs: 5.6×
	}}
	if got := r.Rounds[0].Create.CPUPerCall(); got != 1200*time.Microsecond {
		t.Errorf("CPU per call %s, want 1.2ms", got)
	}
	if got := r.Summary(PhaseNoop).CPUPerCall; got != 450*time.Microsecond {
		t.Errorf("median no-op CPU per call %s, want 450µs", got)
	}
	if got := r.CPURatio(); got != 3 {
		t.Errorf("CPU ratio %.2f, want 3 (the median round's)", got)
	}
	var out bytes.Buffer
	r.WriteTo(&out)
	for _, want := range []string{"1200µs", "450µs", "CPU per call 3.00×"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}

	unmeasured := MCPReport{Rounds: []MCPRound{{Noop: phase(10, 0), Create: phase(10, 0)}}}
	out.Reset()
	unmeasured.WriteTo(&out)
	if unmeasured.CPURatio() != 0 || strings.Contains(out.String(), "CPU per call") || !strings.Contains(out.String(), " - ") {
		t.Errorf("CPU not measured: ratio %.2f, report:\n%s", unmeasured.CPURatio(), out.String())
	}
	if (MCPPhase{}).CPUPerCall() != 0 {
		t.Error("a phase without calls has a CPU time per call")
	}
}

// TestProcessCPU checks that the process's CPU time grows as it works.
func TestProcessCPU(t *testing.T) {
	start, ok := processCPU()
	if !ok {
		t.Skip("CPU time is not measured on " + runtime.GOOS)
	}
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for {
		for i := range 1_000_000 {
			x += i
		}
		now, _ := processCPU()
		if now-start >= 20*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time grew by %s in 10s of busy work (%d)", now-start, x)
		}
	}
}

// The benchmarks measure one tool over streamable HTTP with about 32
// concurrent clients (as many as the load), each with a
// connection of its own; ns/op is wall time per call, the inverse of the
// throughput. Compare BenchmarkMCPCreateTask with BenchmarkMCPNoop, and
// both with BenchmarkMCPCreateTaskTwin (create_task's schemas and
// arguments, without its work).
func BenchmarkMCPNoop(b *testing.B)           { benchmarkMCP(b, PhaseNoop) }
func BenchmarkMCPCreateTask(b *testing.B)     { benchmarkMCP(b, PhaseCreate) }
func BenchmarkMCPCreateTaskTwin(b *testing.B) { benchmarkMCP(b, PhaseTwin) }

func benchmarkMCP(b *testing.B, phase string) {
	srv, err := startMCP(openBolt(b))
	if err != nil {
		b.Fatal(err)
	}
	defer srv.close()
	perProc := (32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	clients, err := srv.connect(context.Background(), perProc*runtime.GOMAXPROCS(0), false)
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	if err != nil {
		b.Fatal(err)
	}
	pool := make(chan *mcpClient, len(clients))
	for _, c := range clients {
		pool <- c
	}
	b.SetParallelism(perProc)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := <-pool
		for pb.Next() {
			if _, err := c.call(context.Background(), phase); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer() // not the shutdown
}

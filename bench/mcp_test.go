package bench

import (
	"bytes"
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

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
// generations, and checks that it measured what it claims: every call of
// every phase counted and succeeded, and every task create_task made is in
// the store, listed for the tenant, as sent.
func TestMCPSmall(t *testing.T) {
	for _, tc := range []struct {
		name     string
		session  bool
		protocol string
	}{
		{"modern", false, mcp.ProtocolVersion20260728},
		{"session", true, mcp.ProtocolVersion20251125},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openBolt(t)
			const clients, calls, rounds = 3, 4, 2
			var progress bytes.Buffer
			r, err := MCP(context.Background(), MCPOptions{
				Backend: db, Clients: clients, Calls: calls, Rounds: rounds, Warmup: -1, Session: tc.session, Progress: &progress,
			})
			if err != nil {
				t.Fatalf("%v\n%s", err, progress.String())
			}
			if err := r.Check(); err != nil {
				t.Fatal(err)
			}
			if r.Protocol != tc.protocol || r.Clients != clients || len(r.Rounds) != rounds {
				t.Errorf("protocol %s, %d clients, %d rounds; want %s, %d, %d", r.Protocol, r.Clients, len(r.Rounds), tc.protocol, clients, rounds)
			}
			for i, rd := range r.Rounds {
				for name, p := range map[string]MCPPhase{PhaseNoop: rd.Noop, PhaseCreate: rd.Create} {
					if p.Calls != clients*calls || len(p.Latency) != p.Calls || p.Errors != 0 || p.Elapsed <= 0 ||
						p.Quantile(0.5) <= 0 || p.Quantile(0.5) > p.Quantile(0.99) || p.Quantile(1) > p.Elapsed || p.PerSecond() <= 0 {
						t.Errorf("round %d %s: %d calls, %d latencies, %d errors, elapsed %s, p50 %s, p99 %s, max %s",
							i+1, name, p.Calls, len(p.Latency), p.Errors, p.Elapsed, p.Quantile(0.5), p.Quantile(0.99), p.Quantile(1))
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
			for _, want := range []string{"round 2 create_task", "median noop", "median create_task", "create_task ÷ no-op", "target", "stored: 24 of 24"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("report lacks %q:\n%s", want, out.String())
				}
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
	} {
		if r.Check() == nil {
			t.Errorf("%s: Check passed", name)
		}
	}
	if err := (MCPReport{Rounds: []MCPRound{{Noop: good, Create: good}}, Created: 1, Stored: 1}).Check(); err != nil {
		t.Errorf("a sound report fails its check: %v", err)
	}
}

// The benchmarks measure one tool over streamable HTTP with about 32
// concurrent clients (as many as the load), each with a
// connection of its own; ns/op is wall time per call, the inverse of the
// throughput. Compare BenchmarkMCPCreateTask with BenchmarkMCPNoop.
func BenchmarkMCPNoop(b *testing.B)       { benchmarkMCP(b, PhaseNoop) }
func BenchmarkMCPCreateTask(b *testing.B) { benchmarkMCP(b, PhaseCreate) }

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

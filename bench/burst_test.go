package bench_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/bench"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/tasks"
)

// TestBurstSmall runs the burst workload at a small size on the embedded
// store and checks that it measured what it claims: every task fired
// exactly once, every run succeeded at its first attempt, and the figures
// are consistent with each other.
func TestBurstSmall(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := bolt.NewQueue(db, bolt.QueueOptions{})
	const n = 200
	var progress, logs bytes.Buffer
	// The run phase's hook (a CPU profile's start and stop) brackets the
	// runs: it starts with the workers, stops before the check. Burst
	// calls it on the goroutine that writes the progress.
	var phases []string
	phase := func() string {
		lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
		return strings.Fields(lines[len(lines)-1])[0]
	}
	r, err := bench.Burst(context.Background(), db, q, bench.BurstOptions{
		Tasks: n, Tenants: 3, Workers: 8, Creators: 16, Lead: 500 * time.Millisecond,
		SchedulerTick: 50 * time.Millisecond, Timeout: time.Minute, Progress: &progress,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnRun: func() func() {
			phases = append(phases, "start after "+phase())
			return func() { phases = append(phases, "stop after "+phase()) }
		},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if want := []string{"start after run:", "stop after run:"}; !slices.Equal(phases, want) {
		t.Errorf("OnRun: %q, want %q\n%s", phases, want, progress.String())
	}
	if r.Runs != n || r.Keys != n || r.Missing != 0 || r.Duplicates != 0 || r.WrongSlot != 0 {
		t.Errorf("not exactly once: %d runs, %d keys, %d missing, %d duplicates, %d other slot", r.Runs, r.Keys, r.Missing, r.Duplicates, r.WrongSlot)
	}
	if r.Succeeded != n || r.Failed != 0 || r.Retried != 0 || r.ToolCalls != n || r.Finished != n || r.Dispatched != n {
		t.Errorf("outcome: %d succeeded, %d failed, %d retried, %d tool calls, %d finished, %d dispatched",
			r.Succeeded, r.Failed, r.Retried, r.ToolCalls, r.Finished, r.Dispatched)
	}
	if r.TimedOut || r.Logged != 0 || r.StillDue != 0 {
		t.Errorf("timed out %t, %d entries still due, %d warnings logged:\n%s", r.TimedOut, r.StillDue, r.Logged, logs.String())
	}
	if r.ByPriority[tasks.PriorityHigh] != 20 || r.ByPriority[tasks.PriorityNormal] != 140 || r.ByPriority[tasks.PriorityLow] != 40 {
		t.Errorf("priorities: %v", r.ByPriority)
	}
	// Nothing is dispatched before the due time; everything starts after.
	if r.FirstDispatch < 0 || r.Dispatch < r.FirstDispatch || r.Complete < r.Dispatch || r.RunsPerSecond() <= 0 {
		t.Errorf("times: first dispatch %s, dispatch %s, complete %s", r.FirstDispatch, r.Dispatch, r.Complete)
	}
	if len(r.Lateness) != n || r.Lateness[0] < 0 || r.LatenessQuantile(0.99) > r.Complete {
		t.Errorf("lateness: %d runs, min %s, p99 %s, complete %s", len(r.Lateness), r.Lateness[0], r.LatenessQuantile(0.99), r.Complete)
	}
	if err := r.Check(); err != nil {
		t.Error(err)
	}
	var out bytes.Buffer
	r.WriteTo(&out)
	for _, want := range []string{"burst: 200 periodic tasks over 3 tenants", "dispatch all runs", "complete all runs",
		"lateness (start − due)", "200 tasks, 200 runs, 200 idempotency keys, 200 tool calls; 0 missing, 0 duplicate"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}

// TestBurstCheck checks that a report's Check fails on every kind of
// fault the burst counts.
func TestBurstCheck(t *testing.T) {
	good := bench.BurstReport{Tasks: 3, Runs: 3, Keys: 3, Succeeded: 3, ToolCalls: 3, Finished: 3, Dispatched: 3}
	if err := good.Check(); err != nil {
		t.Fatalf("a clean report fails: %v", err)
	}
	for name, bad := range map[string]func(*bench.BurstReport){
		"missing":    func(r *bench.BurstReport) { r.Missing, r.Runs, r.Keys = 1, 2, 2 },
		"duplicate":  func(r *bench.BurstReport) { r.Duplicates, r.Runs, r.Keys = 1, 4, 4 },
		"other slot": func(r *bench.BurstReport) { r.WrongSlot = 1 },
		"failed":     func(r *bench.BurstReport) { r.Succeeded, r.Failed = 2, 1 },
		"retried":    func(r *bench.BurstReport) { r.Retried = 1 },
		"tool calls": func(r *bench.BurstReport) { r.ToolCalls = 4 },
		"still due":  func(r *bench.BurstReport) { r.StillDue = 1 },
		"timed out":  func(r *bench.BurstReport) { r.TimedOut, r.Finished = true, 2 },
	} {
		r := good
		bad(&r)
		if r.Check() == nil {
			t.Errorf("%s: Check passes %+v", name, r)
		}
	}
}

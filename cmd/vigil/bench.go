package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/bench"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/store"
)

// runBench is `vigil bench WORKLOAD [flags]`. The workloads:
//
//   - streams: append throughput, replay time and SSE delivery delay, on a
//     throw-away bolt file or under a throw-away Redis key prefix;
//   - burst: N periodic tasks due at the same instant, dispatched by the
//     scheduler and run by a worker pool with the built-in executor and a
//     no-op tool (bench.Burst), on a throw-away bolt file or under a
//     throw-away Redis key prefix, each with the run queue
//     store.OpenExecution gives it, as `vigil serve` runs;
//   - mcp: create_task with structured fields against a no-op tool on the
//     same MCP server, from concurrent streamable-HTTP clients, in
//     alternating phases (bench.MCP), on a throw-away bolt file or under a
//     throw-away Redis key prefix.
//
// A flag of one workload is refused with the others.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vigil bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: vigil bench streams [--redis URL] [flags]\n       vigil bench burst [--n 100000] [--tenants 10] [--workers %d] [flags]\n"+
			"       vigil bench mcp [--clients 32] [--duration 10s] [--redis URL] [flags]\n\nflags:\n", config.Default().Workers.Concurrency)
		fs.PrintDefaults()
	}
	redisURL := fs.String("redis", "", "measure the Redis store at `URL` (default: a bolt file in a temporary directory)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to `file`: of the run phase alone for burst, of the whole run otherwise")

	var so bench.StreamsOptions
	var mo bench.MCPOptions
	var coalesce *bool
	var duration *time.Duration
	sharedFlags := flagsOf(fs, func() {
		coalesce = fs.Bool("coalesce", true, "streams and mcp, Redis: pipeline concurrent appends (store.redis.coalesce)")
		duration = fs.Duration("duration", 0, "streams: length of the delivery run (default 5s); mcp: measured time, shared by the phases (default 10s)")
	})
	streamsFlags := flagsOf(fs, func() {
		fs.IntVar(&so.Events, "events", 100_000, "streams: events per append run")
		fs.IntVar(&so.Writers, "writers", 64, "streams: concurrent appenders")
		fs.IntVar(&so.Threads, "threads", 1000, "streams: threads in the many-threads append run")
		fs.IntVar(&so.ReplayEvents, "replay-events", 10_000, "streams: events in the replayed thread")
		fs.IntVar(&so.Subscribers, "subscribers", 1000, "streams: concurrent SSE subscribers")
		fs.IntVar(&so.Rate, "rate", 100, "streams: events per second during the delivery run")
	})
	var bo bench.BurstOptions
	var verbose *bool
	burstFlags := flagsOf(fs, func() {
		fs.IntVar(&bo.Tasks, "n", 100_000, "burst: periodic tasks, all due at the same instant")
		fs.IntVar(&bo.Tenants, "tenants", 10, "burst: tenants the tasks are spread over")
		fs.IntVar(&bo.Workers, "workers", config.Default().Workers.Concurrency, "burst: worker concurrency (vigil serve's default)")
		fs.IntVar(&bo.TenantCap, "tenant-cap", 0, fmt.Sprintf("burst: runs of one tenant executing at once; 0 means no cap beyond --workers (vigil serve caps at %d)", config.Default().Workers.TenantConcurrency))
		fs.DurationVar(&bo.Jitter, "jitter", 0, "burst: every task's trigger jitter")
		fs.DurationVar(&bo.Lead, "lead", 2*time.Second, "burst: time from the last task created to the due time")
		fs.IntVar(&bo.Creators, "creators", 256, "burst: concurrent writers creating the tasks")
		fs.IntVar(&bo.SchedulerBatch, "sched-batch", 0, "burst: due entries per scheduler read; 0 means the scheduler's default (1000)")
		fs.IntVar(&bo.SchedulerParallel, "sched-parallel", 0, "burst: entries the scheduler fires at once; 0 means its default (32)")
		fs.DurationVar(&bo.Timeout, "timeout", 10*time.Minute, "burst: give up when runs are still unfinished this long after the due time")
		verbose = fs.Bool("v", false, "burst: print the scheduler's and workers' warnings and errors")
	})
	var session *bool
	mcpFlags := flagsOf(fs, func() {
		fs.IntVar(&mo.Clients, "clients", 32, "mcp: concurrent MCP clients")
		fs.IntVar(&mo.Rounds, "rounds", 3, "mcp: rounds of a no-op phase then a create_task phase; figures are medians over the rounds")
		fs.IntVar(&mo.Calls, "calls", 0, "mcp: calls per client and phase instead of --duration")
		fs.DurationVar(&mo.Warmup, "warmup", time.Second, "mcp: unmeasured calls before the first round, shared by the tools; 0 for none")
		session = fs.Bool("session", false, "mcp: clients speak the 2025-11-25 session protocol instead of 2026-07-28")
		fs.BoolVar(&mo.Twin, "twin", false, "mcp: also measure create_task's twin, its schemas and arguments without its work, between the two phases")
	})
	workload, err := parseWithArg(fs, args, "WORKLOAD")
	if err != nil {
		return err
	}
	takes := map[string][]string{ // the flags only some workloads take
		"streams": slices.Concat(sharedFlags, streamsFlags),
		"burst":   burstFlags,
		"mcp":     slices.Concat(sharedFlags, mcpFlags),
	}
	specific := slices.Concat(sharedFlags, streamsFlags, burstFlags, mcpFlags)
	var foreign []string
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains(specific, f.Name) && !slices.Contains(takes[workload], f.Name) {
			foreign = append(foreign, "--"+f.Name)
		}
	})
	switch {
	case takes[workload] == nil:
		return fmt.Errorf("unknown workload %q; known: streams, burst, mcp", workload)
	case len(foreign) > 0:
		return fmt.Errorf("%s: not a flag of the %s workload", strings.Join(foreign, ", "), workload)
	}

	c := config.Default().Store
	if workload == "streams" {
		c.MaxEventsPerThread = max(so.Events, so.ReplayEvents) + 1
	}
	if *redisURL != "" {
		c.Driver = config.DriverRedis
		c.Redis.URL = *redisURL
		c.Redis.Prefix = "vigilbench:" + vigil.NewID("")
		c.Redis.Coalesce = *coalesce
	} else {
		dir, err := os.MkdirTemp("", "vigil-bench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		c.DataDir = dir
	}
	if workload == "mcp" && mo.Warmup == 0 {
		mo.Warmup = -1 // --warmup 0: none
	}
	so.Duration, mo.Duration = *duration, *duration
	backend, err := store.Open(ctx, c, nil)
	if err != nil {
		return err
	}
	defer backend.Close()
	if p, ok := backend.(interface{ Purge(context.Context) error }); ok {
		defer p.Purge(context.WithoutCancel(ctx))
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if workload == "burst" {
			// Only the run phase: creating the tasks and checking the
			// runs would drown it.
			bo.OnRun = func() func() {
				if err := pprof.StartCPUProfile(f); err != nil {
					fmt.Fprintf(stderr, "burst: cpu profile: %v\n", err)
					return func() {}
				}
				return pprof.StopCPUProfile
			}
		} else {
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
	}
	fmt.Fprintf(stdout, "store: %s", c.Driver)
	if c.Driver == config.DriverRedis {
		fmt.Fprintf(stdout, " (coalesce %t)", c.Redis.Coalesce)
	}
	fmt.Fprintln(stdout)

	if workload == "burst" {
		x, err := store.OpenExecution(ctx, backend, true)
		if err != nil {
			return fmt.Errorf("burst: %w", err)
		}
		bo.Progress = stderr
		if *verbose {
			bo.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
		if sc, ok := backend.(interface {
			ServerCPU(context.Context) (time.Duration, error)
		}); ok {
			bo.ServerCPU = sc.ServerCPU
		}
		r, err := bench.Burst(ctx, backend, x.Queue, bo)
		if _, werr := r.WriteTo(stdout); err == nil {
			err = werr
		}
		return err
	}

	if workload == "mcp" {
		mo.Backend, mo.Session, mo.Progress = backend, *session, stderr
		r, err := bench.MCP(ctx, mo)
		if err == nil {
			err = r.Check()
		}
		if _, werr := r.WriteTo(stdout); err == nil {
			err = werr
		}
		return err
	}

	so.Progress = stderr
	r, err := bench.Streams(ctx, backend, so)
	if err != nil {
		return err
	}
	_, err = r.WriteTo(stdout)
	return err
}

// flagsOf returns the names of the flags define adds to fs.
func flagsOf(fs *flag.FlagSet, define func()) []string {
	before := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { before[f.Name] = true })
	define()
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if !before[f.Name] {
			names = append(names, f.Name)
		}
	})
	return names
}

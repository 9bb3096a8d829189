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
	"github.com/vigilhq/vigil/store/bolt"
)

// runBench is `vigil bench WORKLOAD [flags]`. The workloads:
//
//   - streams: append throughput, replay time and SSE delivery delay, on a
//     throw-away bolt file or under a throw-away Redis key prefix;
//   - burst: N periodic tasks due at the same instant, dispatched by the
//     scheduler and run by a worker pool with the built-in executor and a
//     no-op tool (bench.Burst), on a throw-away bolt file. It refuses
//     --redis: Redis has a tasks.Store but no run queue yet (only the bolt
//     file has one), and a Redis store with a bolt queue is no deployment
//     anyone runs, so its figures would answer nothing.
//
// Each workload's flags are refused with the other one.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vigil bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: vigil bench streams [--redis URL] [flags]\n       vigil bench burst [--n 100000] [--tenants 10] [--workers 16] [flags]\n\nflags:\n")
		fs.PrintDefaults()
	}
	redisURL := fs.String("redis", "", "measure the Redis store at `URL` (default: a bolt file in a temporary directory); streams only, for now")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to `file`")

	var so bench.StreamsOptions
	var coalesce *bool
	streamsFlags := flagsOf(fs, func() {
		coalesce = fs.Bool("coalesce", true, "streams, Redis: pipeline concurrent appends (store.redis.coalesce)")
		fs.IntVar(&so.Events, "events", 100_000, "streams: events per append run")
		fs.IntVar(&so.Writers, "writers", 64, "streams: concurrent appenders")
		fs.IntVar(&so.Threads, "threads", 1000, "streams: threads in the many-threads append run")
		fs.IntVar(&so.ReplayEvents, "replay-events", 10_000, "streams: events in the replayed thread")
		fs.IntVar(&so.Subscribers, "subscribers", 1000, "streams: concurrent SSE subscribers")
		fs.IntVar(&so.Rate, "rate", 100, "streams: events per second during the delivery run")
		fs.DurationVar(&so.Duration, "duration", 5e9, "streams: length of the delivery run")
	})
	var bo bench.BurstOptions
	var verbose *bool
	burstFlags := flagsOf(fs, func() {
		fs.IntVar(&bo.Tasks, "n", 100_000, "burst: periodic tasks, all due at the same instant")
		fs.IntVar(&bo.Tenants, "tenants", 10, "burst: tenants the tasks are spread over")
		fs.IntVar(&bo.Workers, "workers", defaultWorkers, "burst: worker concurrency (vigil serve's)")
		fs.IntVar(&bo.TenantCap, "tenant-cap", 0, fmt.Sprintf("burst: runs of one tenant executing at once; 0 means no cap beyond --workers (vigil serve caps at %d)", defaultTenantConcurrency))
		fs.DurationVar(&bo.Jitter, "jitter", 0, "burst: every task's trigger jitter")
		fs.DurationVar(&bo.Lead, "lead", 2*time.Second, "burst: time from the last task created to the due time")
		fs.IntVar(&bo.Creators, "creators", 256, "burst: concurrent writers creating the tasks")
		fs.IntVar(&bo.SchedulerBatch, "sched-batch", 0, "burst: due entries per scheduler read; 0 means the scheduler's default (1000)")
		fs.IntVar(&bo.SchedulerParallel, "sched-parallel", 0, "burst: entries the scheduler fires at once; 0 means its default (32)")
		fs.DurationVar(&bo.Timeout, "timeout", 10*time.Minute, "burst: give up when runs are still unfinished this long after the due time")
		verbose = fs.Bool("v", false, "burst: print the scheduler's and workers' warnings and errors")
	})
	workload, err := parseWithArg(fs, args, "WORKLOAD")
	if err != nil {
		return err
	}
	var foreign []string
	fs.Visit(func(f *flag.Flag) {
		if workload == "streams" && slices.Contains(burstFlags, f.Name) || workload == "burst" && slices.Contains(streamsFlags, f.Name) {
			foreign = append(foreign, "--"+f.Name)
		}
	})
	switch {
	case workload != "streams" && workload != "burst":
		return fmt.Errorf("unknown workload %q; known: streams, burst", workload)
	case len(foreign) > 0:
		return fmt.Errorf("%s: not a flag of the %s workload", strings.Join(foreign, ", "), workload)
	case workload == "burst" && *redisURL != "":
		return fmt.Errorf("burst: --redis is not supported yet: Redis has a task store but no run queue " +
			"(only the embedded bolt store has one), so runs cannot be dispatched on Redis; run the burst without --redis " +
			"to measure the embedded store")
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
	backend, err := store.Open(ctx, c)
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
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintf(stdout, "store: %s", c.Driver)
	if c.Driver == config.DriverRedis {
		fmt.Fprintf(stdout, " (coalesce %t)", c.Redis.Coalesce)
	}
	fmt.Fprintln(stdout)

	if workload == "burst" {
		db, ok := backend.(*bolt.DB)
		if !ok {
			return fmt.Errorf("burst: the %s store has no run queue", c.Driver)
		}
		bo.Progress = stderr
		if *verbose {
			bo.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
		r, err := bench.Burst(ctx, db, bolt.NewQueue(db, bolt.QueueOptions{}), bo)
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

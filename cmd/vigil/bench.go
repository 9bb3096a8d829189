package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/bench"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/store"
)

// runBench is `vigil bench WORKLOAD [flags]`. Today's workload is streams:
// append throughput, replay time and SSE delivery delay, on a throw-away
// bolt file or under a throw-away Redis key prefix.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vigil bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	redisURL := fs.String("redis", "", "measure the Redis store at `URL` (default: a bolt file in a temporary directory)")
	coalesce := fs.Bool("coalesce", true, "Redis: pipeline concurrent appends (store.redis.coalesce)")
	var o bench.StreamsOptions
	fs.IntVar(&o.Events, "events", 100_000, "events per append run")
	fs.IntVar(&o.Writers, "writers", 64, "concurrent appenders")
	fs.IntVar(&o.Threads, "threads", 1000, "threads in the many-threads append run")
	fs.IntVar(&o.ReplayEvents, "replay-events", 10_000, "events in the replayed thread")
	fs.IntVar(&o.Subscribers, "subscribers", 1000, "concurrent SSE subscribers")
	fs.IntVar(&o.Rate, "rate", 100, "events per second during the delivery run")
	fs.DurationVar(&o.Duration, "duration", 5e9, "length of the delivery run")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to `file`")
	workload, err := parseWithArg(fs, args, "WORKLOAD")
	if err != nil {
		return err
	}
	if workload != "streams" {
		return fmt.Errorf("unknown workload %q; known: streams", workload)
	}

	c := config.Default().Store
	c.MaxEventsPerThread = max(o.Events, o.ReplayEvents) + 1
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
	o.Progress = stderr
	fmt.Fprintf(stdout, "store: %s", c.Driver)
	if c.Driver == config.DriverRedis {
		fmt.Fprintf(stdout, " (coalesce %t)", c.Redis.Coalesce)
	}
	fmt.Fprintln(stdout)
	r, err := bench.Streams(ctx, backend, o)
	if err != nil {
		return err
	}
	_, err = r.WriteTo(stdout)
	return err
}

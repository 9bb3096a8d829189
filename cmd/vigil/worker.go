package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/store"
)

// runWorker is `vigil worker`: a process that executes queued runs and
// nothing else (no HTTP API, no scheduler), against the Redis store. Run as
// many as the work needs; they share the queue, each run goes to one, and a
// worker that dies has its runs taken over by the others once their leases
// expire (workers.lease). SIGTERM stops it gracefully: it takes no new
// runs, lets running ones finish or checkpoint within workers.stop_timeout,
// and gives the rest back to the queue.
func runWorker(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("vigil worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML config `file` (default: built-in defaults)")
	var over config.Overrides
	fs.Func("redis", "use the Redis store at `URL` (store.redis.url; sets store.driver to redis)", func(s string) error { over.RedisURL = &s; return nil })
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics, without authentication: bind loopback or a private interface (default: none)")
	if err := parseOnlyFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*configPath, os.Environ(), over)
	if err != nil {
		return err
	}
	if cfg.Store.Driver != config.DriverRedis {
		return errors.New("vigil worker needs the Redis store (--redis URL or store.redis.url): the embedded store is one process's, and vigil serve runs its workers")
	}
	logger := newLogger(stderr, cfg.Log)

	backend, err := store.Open(ctx, cfg.Store, logger)
	if err != nil {
		return err
	}
	defer backend.Close()
	ps, err := newParts(ctx, cfg, backend, logger)
	if err != nil {
		return err
	}
	defer ps.plugins.Close() // before the store's deferred Close
	rt, _, err := newTaskRuntime(ctx, cfg, backend, ps, role{workers: true}, logger)
	if err != nil {
		return err
	}
	if *metricsAddr != "" {
		ln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", rt.metrics.Handler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		logger.Info("vigil worker metrics", "addr", ln.Addr().String())
	}
	rt.Start()
	logger.Info("vigil worker running", "worker", rt.workerID(), "concurrency", cfg.Workers.Concurrency)
	<-ctx.Done()
	logger.Info("vigil worker stopping")
	return rt.Stop(context.Background())
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/mcpserver"
	"github.com/vigilhq/vigil/store"
	"github.com/vigilhq/vigil/streams"
)

// runMCP is `vigil mcp [--config FILE] [--data DIR] [--redis URL]`: the
// MCP server over stdin and stdout, for local clients (Claude Desktop,
// Claude Code, MCP Inspector), acting for the local user of the default
// tenant. stdout carries the protocol alone; every log line goes to
// stderr.
//
// With the embedded store the data directory is locked by one process at
// a time, so `vigil mcp --data DIR` cannot run beside a `vigil serve` on
// the same directory; with Redis both share the store.
func runMCP(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vigil mcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML config `file` (default: built-in defaults)")
	var over config.Overrides
	fs.Func("data", "keep the embedded store in `DIR` (store.data_dir)", func(s string) error { over.DataDir = &s; return nil })
	fs.Func("redis", "use the Redis store at `URL` (store.redis.url; sets store.driver to redis)", func(s string) error { over.RedisURL = &s; return nil })
	if err := parseOnlyFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*configPath, os.Environ(), over)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.Log)

	backend, err := store.Open(ctx, cfg.Store, logger)
	if err != nil {
		return err
	}
	defer backend.Close()

	// This process runs what vigil serve would: with the embedded store it
	// is the only one on the data directory, so the tasks a client creates
	// run while it is connected.
	ps, err := newParts(ctx, cfg, backend, logger)
	if err != nil {
		return err
	}
	defer ps.plugins.Close() // before the store's deferred Close
	rt, managed, err := newTaskRuntime(ctx, cfg, backend, ps, serveRole(cfg), logger)
	if err != nil {
		return err
	}
	rt.Start()
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
		defer cancel()
		_ = rt.Stop(stopCtx)
	}()
	scopes, err := scopeTable(cfg)
	if err != nil {
		return err
	}
	taskManager, err := newManager(cfg, managed, backend, scopes, logger)
	if err != nil {
		return err
	}

	srv := mcpserver.New(mcpserver.Options{
		Log:      backend,
		Hub:      streams.NewHub(backend, streams.HubOptions{Logger: logger}),
		Registry: ps.registry,
		Plugins:  ps.plugins,
		Tasks:    taskManager,
		Allow:    func(p vigil.Principal, perm string) error { return auth.Allowed(p, auth.Permission(perm)) },
		Scopes:   scopes.Of,
		Logger:   logger,
	})
	defer srv.Close()
	logger.Info("vigil mcp serving on stdio", "store", cfg.Store.Driver)
	err = srv.ServeStdio(ctx, stdin, stdout)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // interrupted: a normal end
	}
	if err != nil {
		return fmt.Errorf("stdio: %w", err)
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/vigilhq/vigil/agent"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/metrics"
	"github.com/vigilhq/vigil/store"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// role says which parts of the execution side a process runs.
type role struct {
	scheduler bool // dispatch due tasks (vigil serve, scheduler.enabled)
	workers   bool // execute queued runs (vigil worker; vigil serve when workers.embedded)
}

// serveRole is what vigil serve runs under c.
func serveRole(c config.Config) role {
	return role{scheduler: c.Scheduler.Enabled, workers: c.Workers.Embedded}
}

// taskRuntime is the execution side of a process: the scheduler, which
// turns due tasks into queued runs, and a worker pool, which executes them,
// over the backend's run queue (store.Execution). Either may be absent:
// vigil worker runs workers only; vigil serve with workers.embedded false
// runs the scheduler only.
type taskRuntime struct {
	sched  *tasks.Scheduler
	worker *tasks.Worker
	logger *slog.Logger
	// metrics counts what the scheduler and workers do, and reads the
	// queue's depth at each scrape: GET /metrics.
	metrics *metrics.Tasks
	stop    time.Duration // workers.stop_timeout

	stopSched context.CancelFunc
	schedDone chan struct{}
}

// parts are what every process that runs tasks builds first on its
// backend: the memory service, the tool registry, the model, and the Sync
// that loads the stored plugin tools into the registry and follows them.
type parts struct {
	mem      *memory.Service
	registry *toolsregistry.Registry
	model    agent.Model
	plugins  *toolsregistry.Sync // Close it before the backend
}

// newParts builds the parts for c on backend. On error nothing is left
// open but backend, which is the caller's.
func newParts(ctx context.Context, c config.Config, backend store.Backend, logger *slog.Logger) (parts, error) {
	mem, err := openMemory(c, backend, logger)
	if err != nil {
		return parts{}, err
	}
	registry, err := newRegistry(c.Tools, c.Quotas, logger)
	if err != nil {
		return parts{}, err
	}
	model, err := newModel(c.LLM)
	if err != nil {
		return parts{}, err
	}
	plugins, err := newPlugins(ctx, c, backend, registry, logger)
	if err != nil {
		return parts{}, err
	}
	return parts{mem: mem, registry: registry, model: model, plugins: plugins}, nil
}

// newTaskRuntime prepares what r asks for on backend, and returns it with
// the store the Manager should use: one whose new runs reach the queue
// (tasks.DispatchStore), so that "run now" and chained runs start without
// waiting for a scheduler tick. Nothing runs until Start.
func newTaskRuntime(ctx context.Context, c config.Config, backend store.Backend, p parts, r role, logger *slog.Logger) (*taskRuntime, tasks.Store, error) {
	exec, err := store.OpenExecution(ctx, backend, r.workers)
	if err != nil {
		return nil, nil, err
	}
	if exec.Recovered > 0 {
		logger.Info("resuming runs the last stop interrupted", "runs", exec.Recovered)
	}
	limits, err := c.Quotas.Limits()
	if err != nil {
		return nil, nil, err
	}
	rt := &taskRuntime{logger: logger, stop: c.Workers.StopTimeout,
		metrics: metrics.NewTasks(metrics.TasksOptions{Queue: exec.Queue, Logger: logger})}
	if r.scheduler {
		rt.sched = tasks.NewScheduler(tasks.SchedulerOptions{
			Store: backend, Queue: exec.Queue, Log: backend, Logger: logger, Lease: exec.Lease,
			Tick: c.Scheduler.Tick, Batch: c.Scheduler.Batch, Grace: c.Scheduler.Grace, LeaseTTL: c.Scheduler.LeaseTTL,
			SweepEvery: c.Scheduler.SweepEvery, SweepAfter: c.Scheduler.SweepAfter,
			Observer: rt.metrics,
		})
	}
	if r.workers {
		guard := toolsregistry.GuardOptions{Allow: c.Tools.Allow}
		g, err := toolsregistry.NewGuard(guard)
		if err != nil {
			return nil, nil, fmt.Errorf("tools.allow: %w", err)
		}
		sealer, err := newSealer(c)
		if err != nil {
			return nil, nil, err
		}
		notifier, err := tasks.NewNotifier(tasks.NotifierOptions{Guard: g, Sealer: sealer, Logger: logger})
		if err != nil {
			return nil, nil, err
		}
		retry, err := retryPolicy(c.Retry)
		if err != nil {
			return nil, nil, err
		}
		runExec, err := newExecutor(p.registry, backend, p.model, p.mem, logger)
		if err != nil {
			return nil, nil, err
		}
		rt.worker = tasks.NewWorker(tasks.WorkerOptions{
			Store: backend, Queue: exec.Queue, Log: backend, Notifier: notifier, Logger: logger,
			Executor:    runExec,
			Concurrency: c.Workers.Concurrency, TenantConcurrency: c.Workers.TenantConcurrency,
			// workers.rate is the deployment's: on Redis, one limiter shared
			// by every worker process; on bolt, this process's.
			Rate:     float64(c.Workers.Rate),
			Limiter:  exec.SharedLimiter(float64(c.Workers.Rate)),
			Lease:    c.Workers.Lease,
			Retry:    retry,
			Observer: rt.metrics,
			// quotas.max_run_duration: an attempt past it fails for good.
			MaxRunDuration: func(tenant string) time.Duration { return limits.For(tenant).MaxRunDuration },
		})
	}
	return rt, &tasks.DispatchStore{Store: backend, Queue: exec.Queue}, nil
}

// retryPolicy is the worker's RetryPolicy for the retry section. Zero
// means none there and the default in a RetryPolicy, so a zero transient
// count or jitter becomes RetryPolicy's "none", a negative value; an empty
// backoff list stays empty: no temporary retries.
func retryPolicy(c config.Retry) (tasks.RetryPolicy, error) {
	backoff, err := c.Backoffs()
	if err != nil {
		return tasks.RetryPolicy{}, fmt.Errorf("retry.backoff: %w", err)
	}
	p := tasks.RetryPolicy{Transient: c.Transient, Backoff: backoff, Jitter: float64(c.JitterPercent) / 100}
	if p.Transient == 0 {
		p.Transient = -1
	}
	if p.Jitter == 0 {
		p.Jitter = -1
	}
	return p, nil
}

// newExecutor returns the run executor: the task agent, which runs a task's
// instruction through the model in a tool-calling loop, and its declared
// steps through the built-in step executor when there is no LLM (or the LLM
// fails). mem, if set, puts the owner's profile in the prompt. Every tool
// call of a run holds the scopes recorded on its task, its owner's.
func newExecutor(reg *toolsregistry.Registry, ts tasks.Store, model agent.Model, mem *memory.Service, logger *slog.Logger) (tasks.Executor, error) {
	scopes := tasks.RunScopes(ts)
	return agent.NewTaskAgent(agent.TaskAgentOptions{
		Model: model, Registry: reg, Store: ts, Memory: mem, Logger: logger, Scopes: scopes,
		Steps: tasks.NewStepExecutor(tasks.StepExecutorOptions{Registry: reg, Store: ts, Scopes: scopes, Logger: logger}),
	})
}

// Start starts the scheduler and the workers in the background.
func (rt *taskRuntime) Start() {
	if rt.sched != nil {
		ctx, cancel := context.WithCancel(context.Background())
		rt.stopSched, rt.schedDone = cancel, make(chan struct{})
		go func() {
			defer close(rt.schedDone)
			_ = rt.sched.Run(ctx)
		}()
	}
	if rt.worker != nil {
		// The workers stop only by Stop: gracefully.
		rt.worker.Start(context.Background())
	}
	rt.logger.Info("tasks: execution started", "scheduler", rt.sched != nil, "workers", rt.worker != nil, "worker", rt.workerID())
}

func (rt *taskRuntime) workerID() string {
	if rt.worker == nil {
		return ""
	}
	return rt.worker.ID()
}

// Stop stops the scheduler, then the workers gracefully: running runs
// finish or checkpoint within workers.stop_timeout (or by ctx's deadline,
// if earlier) and go back to the queue, their leases released.
func (rt *taskRuntime) Stop(ctx context.Context) error {
	if rt.stopSched != nil {
		rt.stopSched()
		select {
		case <-rt.schedDone:
		case <-ctx.Done():
			return errors.New("tasks: the scheduler did not stop")
		}
	}
	if rt.worker == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, rt.stop)
	defer cancel()
	start := time.Now()
	err := rt.worker.Stop(ctx)
	rt.logger.Info("tasks: workers stopped", "took", time.Since(start).Round(time.Millisecond), "err", err)
	return err
}

// newRegistry returns the process's tools registry with the built-in tools:
// one registry, shared by the task workers and MCP, so a tool registered
// over MCP is one a task can call. tools.allow is what http_get and the
// domain tools may reach although it is not public, and tools.weather,
// tools.price and tools.news the servers of the domain tools.
// quotas.tool_calls_per_minute caps the tool calls of each user of a
// tenant (a task run's calls are its owner's).
func newRegistry(tools config.Tools, quotas config.Quotas, logger *slog.Logger) (*toolsregistry.Registry, error) {
	limits, err := quotas.Limits()
	if err != nil {
		return nil, err
	}
	reg := toolsregistry.New(toolsregistry.Options{Logger: logger,
		UserRate: func(tenant string) int { return limits.For(tenant).ToolCallsPerMinute }})
	builtins, err := toolsregistry.Builtins(toolsregistry.BuiltinOptions{
		Guard:        toolsregistry.GuardOptions{Allow: tools.Allow},
		GeocodingURL: tools.Weather.GeocodingURL, WeatherURL: tools.Weather.ForecastURL,
		PriceURL: tools.Price.URL, NewsURL: tools.News.URL,
	})
	if err != nil {
		return nil, err
	}
	if err := reg.RegisterAll(builtins); err != nil {
		return nil, err
	}
	return reg, nil
}

// newModel returns the agents' model under c: the offline model when no
// provider is configured, else the provider with the offline model as its
// fallback (a warning event tells the thread when it answers instead).
func newModel(c config.LLM) (agent.Model, error) {
	offline := agent.Offline{}
	if c.Provider == "" {
		return offline, nil
	}
	lc, err := agent.NewLangChain(agent.ProviderConfig{
		Kind: c.Provider, BaseURL: c.BaseURL, Model: c.Model, APIKeyEnv: c.APIKeyEnv, Timeout: c.Timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("llm: %w", err)
	}
	return &agent.Fallback{Primary: lc, Secondary: offline, Timeout: c.Timeout}, nil
}

// memoryKey is the memory key: memory.key, or with bolt the key file beside
// the data (made on first start); nil with Redis and none set.
func memoryKey(c config.Config) ([]byte, error) {
	switch {
	case c.Memory.Key != "":
		return memory.ParseKey(c.Memory.Key)
	case c.Store.Driver == config.DriverBolt:
		return memory.KeyFile(filepath.Join(c.Store.DataDir, "memory.key"))
	}
	return nil, nil
}

// newPlugins starts the sync of reg's plugin tools with the store: every
// stored plugin is registered, and other instances' changes are followed,
// until Close. Plugin secrets are sealed under the memory key; without one
// (Redis with no memory.key) plugins can be neither registered nor loaded.
func newPlugins(ctx context.Context, c config.Config, backend store.Backend, reg *toolsregistry.Registry, logger *slog.Logger) (*toolsregistry.Sync, error) {
	key, err := memoryKey(c)
	if err != nil {
		return nil, err
	}
	if key == nil {
		logger.Warn("memory.key is not set: plugin tools cannot be registered or loaded")
	}
	guard, err := toolsregistry.NewGuard(toolsregistry.GuardOptions{Allow: c.Tools.Allow})
	if err != nil {
		return nil, fmt.Errorf("tools.allow: %w", err)
	}
	s, err := toolsregistry.NewSync(reg, toolsregistry.SyncOptions{Store: backend, Key: key, Guard: guard, Logger: logger})
	if err != nil {
		return nil, err
	}
	return s, s.Start(ctx)
}

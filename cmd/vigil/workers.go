package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigilhq/vigil/store"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// Execution defaults until config has keys for them. Proposed keys:
// workers.embedded (bool, default true), workers.concurrency,
// workers.tenant_concurrency, workers.rate (executions per second),
// workers.lease, scheduler.tick, scheduler.batch, retry.backoff (list of
// durations), notify.allow (addresses webhooks may reach that are not
// public).
const (
	defaultWorkers           = 16
	defaultTenantConcurrency = 4
)

// taskRuntime is the execution side of tasks running inside `vigil serve`
// on the embedded store: the scheduler and a worker pool over the queue in
// the bolt file, with the built-in step executor and webhooks.
type taskRuntime struct {
	sched  *tasks.Scheduler
	worker *tasks.Worker
	logger *slog.Logger

	stopSched context.CancelFunc
	schedDone chan struct{}
}

// newTaskRuntime prepares the execution side when backend is the bolt
// store, and returns it with the store the Manager should use: one whose
// new runs reach the queue (tasks.DispatchStore). On other backends it
// returns no runtime and ts unchanged (Redis mode runs `vigil worker`,
// still to come). Nothing runs until Start.
func newTaskRuntime(ctx context.Context, backend store.Backend, ts tasks.Store, reg *toolsregistry.Registry, logger *slog.Logger) (*taskRuntime, tasks.Store, error) {
	db, ok := backend.(*bolt.DB)
	if !ok {
		return nil, ts, nil
	}
	q := bolt.NewQueue(db, bolt.QueueOptions{})
	// The file is this process's alone: leases in it are a dead process's.
	if n, err := q.Recover(ctx); err != nil {
		return nil, nil, fmt.Errorf("tasks: recover the run queue: %w", err)
	} else if n > 0 {
		logger.Info("resuming runs the last stop interrupted", "runs", n)
	}
	notifier, err := tasks.NewNotifier(tasks.NotifierOptions{Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	rt := &taskRuntime{
		sched: tasks.NewScheduler(tasks.SchedulerOptions{Store: ts, Queue: q, Log: backend, Logger: logger}),
		worker: tasks.NewWorker(tasks.WorkerOptions{
			Store: ts, Queue: q, Log: backend, Notifier: notifier, Logger: logger,
			Executor:    tasks.NewStepExecutor(tasks.StepExecutorOptions{Registry: reg, Store: ts, Logger: logger}),
			Concurrency: defaultWorkers, TenantConcurrency: defaultTenantConcurrency,
		}),
		logger: logger,
	}
	return rt, &tasks.DispatchStore{Store: ts, Queue: q}, nil
}

// Start starts the scheduler and the workers in the background.
func (rt *taskRuntime) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	rt.stopSched, rt.schedDone = cancel, make(chan struct{})
	go func() {
		defer close(rt.schedDone)
		_ = rt.sched.Run(ctx)
	}()
	// The workers stop only by Stop: gracefully.
	rt.worker.Start(context.Background())
	rt.logger.Info("tasks: scheduler and workers started", "workers", defaultWorkers, "worker", rt.worker.ID())
}

// Stop stops the scheduler, then the workers gracefully: running runs
// finish or checkpoint by ctx's deadline and go back to the queue, their
// leases released.
func (rt *taskRuntime) Stop(ctx context.Context) error {
	if rt.stopSched == nil {
		return nil
	}
	rt.stopSched()
	select {
	case <-rt.schedDone:
	case <-ctx.Done():
		return errors.New("tasks: the scheduler did not stop")
	}
	start := time.Now()
	err := rt.worker.Stop(ctx)
	rt.logger.Info("tasks: workers stopped", "took", time.Since(start).Round(time.Millisecond), "err", err)
	return err
}

// newRegistry returns the process's tools registry with the built-in tools:
// one registry, shared by the task workers and MCP, so a tool registered
// over MCP is one a task can call.
func newRegistry(logger *slog.Logger) (*toolsregistry.Registry, error) {
	reg := toolsregistry.New(toolsregistry.Options{Logger: logger})
	builtins, err := toolsregistry.Builtins(toolsregistry.BuiltinOptions{})
	if err != nil {
		return nil, err
	}
	if err := reg.RegisterAll(builtins); err != nil {
		return nil, err
	}
	return reg, nil
}

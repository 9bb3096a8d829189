package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// BurstOptions configure the burst workload. The zero value of a field
// means its default.
type BurstOptions struct {
	Tasks   int // periodic tasks, all due at one instant (default 100,000)
	Tenants int // tenants the tasks are spread over (default 10)
	// Workers is the worker pool's concurrency (WorkerOptions.Concurrency;
	// default workers.concurrency's, as `vigil serve` runs it). TenantCap is its per-tenant
	// cap (WorkerOptions.TenantConcurrency; default Workers: no cap).
	Workers   int
	TenantCap int
	// Jitter is every task's trigger jitter (default none). A run's due
	// time is its slot plus the task's offset in [0, Jitter).
	Jitter time.Duration
	// Lead is how long after the last task is created the tasks fall due
	// (default 2s), so that the scheduler and the workers are up and idle
	// at the due time.
	Lead time.Duration
	// Creators is how many goroutines create the tasks (default 256). The
	// store shares a transaction among concurrent writes, so more writers
	// make fewer, larger commits.
	Creators int
	// SchedulerBatch, SchedulerParallel and SchedulerTick are the
	// scheduler's Batch, Parallel and Tick; zero means the scheduler's
	// defaults, the ones `vigil serve` runs with.
	SchedulerBatch    int
	SchedulerParallel int
	SchedulerTick     time.Duration
	// Timeout bounds the wait, from the due time, for every run to finish
	// (default 10m). A burst that times out reports what it measured and
	// fails its checks.
	Timeout time.Duration
	// Progress, when set, receives a line as each phase starts and the
	// counts every few seconds while runs execute.
	Progress io.Writer
	// Logger receives the scheduler's and the worker's logs (default:
	// none). Warnings and errors are counted in the report either way.
	Logger *slog.Logger
	// ServerCPU, when set, returns the CPU time the backend's server has
	// used so far (Redis: INFO cpu), read when the runs start and when
	// they have finished, so that the report says how busy it was.
	ServerCPU func(context.Context) (time.Duration, error)
	// OnRun, when set, is called as the scheduler and the workers start,
	// and the function it returns once every run has finished (or the
	// wait timed out), before the runs are checked: `vigil bench burst
	// --cpuprofile` profiles the run phase alone with it.
	OnRun func() (stop func())
}

func (o BurstOptions) withDefaults() BurstOptions {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Tasks, 100_000)
	def(&o.Tenants, 10)
	def(&o.Workers, config.Default().Workers.Concurrency)
	def(&o.TenantCap, o.Workers)
	def(&o.Creators, 256)
	o.Tenants = min(o.Tenants, o.Tasks)
	o.TenantCap = min(o.TenantCap, o.Workers)
	if o.Lead <= 0 {
		o.Lead = 2 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	return o
}

// BurstBackend is what the burst workload runs on: a tasks.Store and the
// streams.Log of the tasks' threads (one backend implements both), and a
// run queue.
type BurstBackend interface {
	tasks.Store
	streams.Log
}

// BurstReport is what the burst workload measured. Times "after due" are
// real time from the instant the tasks fell due.
type BurstReport struct {
	Tasks, Tenants     int
	Workers, TenantCap int
	Jitter             time.Duration
	Cron               string                 // every task's cron expression (UTC)
	ByPriority         map[tasks.Priority]int // tasks per priority

	// Creation, before the due time: a thread, a task and a schedule
	// entry per task, each phase on its own.
	CreateThreads, CreateTasks, CreateEntries time.Duration
	// FirstSweep is the scheduler's first sweep, made after creation and
	// before the due time, as a deployment makes it long before a due
	// minute: on Redis it is the one-time walk that fills the sweep's
	// indexes from data they do not know yet (store/redis, sweep.go).
	FirstSweep time.Duration

	// Dispatch: runs created and enqueued by the scheduler.
	Dispatched    int
	FirstDispatch time.Duration // due → first run enqueued
	Dispatch      time.Duration // due → last run enqueued

	// Completion: runs marked succeeded (or failed) by the workers.
	Finished int
	Complete time.Duration // due → last run finished
	TimedOut bool          // Timeout passed before every run finished

	// CPU time from the start of the scheduler and workers (Lead before
	// the due time) until every run finished (or the timeout): this
	// process's, and the backend server's when BurstOptions.ServerCPU is
	// set (ServerCPUKnown). Wall is that span in real time.
	Wall, ProcessCPU, ServerCPU time.Duration
	ServerCPUKnown              bool

	// Lateness of every run found: worker start minus due time, sorted;
	// and by priority.
	Lateness   []time.Duration
	LatenessBy map[tasks.Priority][]time.Duration
	// SlotLateness is start minus slot (the due time without jitter),
	// sorted.
	SlotLateness []time.Duration

	// Exactly once, counted in the store after the run: every task's runs
	// (ListRuns) and their idempotency keys.
	Runs       int // runs found
	Keys       int // distinct idempotency keys among them
	Missing    int // tasks without a run
	Duplicates int // runs beyond the first of a task
	WrongSlot  int // runs whose slot is not the due slot
	Succeeded  int // runs succeeded, with one attempt
	Failed     int // runs failed or not finished
	Retried    int // runs that took more than one attempt
	ToolCalls  int // calls of the no-op tool
	Logged     int // warnings and errors the scheduler and workers logged
	StillDue   int // schedule entries still due after the run (up to MaxDueLimit)
}

// Create returns the total creation time.
func (r BurstReport) Create() time.Duration { return r.CreateThreads + r.CreateTasks + r.CreateEntries }

// RunsPerSecond returns finished runs per second from the due time to the
// last one.
func (r BurstReport) RunsPerSecond() float64 {
	if r.Complete <= 0 {
		return 0
	}
	return float64(r.Finished) / r.Complete.Seconds()
}

// quantile returns the q-quantile (0 < q ≤ 1) of sorted durations.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

// LatenessQuantile returns the q-quantile of lateness (start − due).
func (r BurstReport) LatenessQuantile(q float64) time.Duration { return quantile(r.Lateness, q) }

// Check returns an error unless every task produced exactly one run, for
// the due slot, that succeeded at its first attempt, and the no-op tool
// was called once per task.
func (r BurstReport) Check() error {
	var errs []error
	if r.TimedOut {
		errs = append(errs, fmt.Errorf("timed out: %d of %d runs finished", r.Finished, r.Tasks))
	}
	if r.Missing > 0 || r.Duplicates > 0 || r.WrongSlot > 0 || r.Runs != r.Tasks || r.Keys != r.Tasks {
		errs = append(errs, fmt.Errorf("not exactly once: %d tasks, %d runs, %d keys, %d missing, %d duplicate, %d for another slot",
			r.Tasks, r.Runs, r.Keys, r.Missing, r.Duplicates, r.WrongSlot))
	}
	if r.Succeeded != r.Tasks || r.Failed > 0 || r.Retried > 0 {
		errs = append(errs, fmt.Errorf("%d of %d runs succeeded at the first attempt (%d failed or unfinished, %d retried)",
			r.Succeeded, r.Tasks, r.Failed, r.Retried))
	}
	if r.StillDue > 0 {
		errs = append(errs, fmt.Errorf("%d schedule entries still due after the run: the scheduler did not advance them", r.StillDue))
	}
	if r.ToolCalls != r.Tasks {
		errs = append(errs, fmt.Errorf("the no-op tool was called %d times for %d tasks", r.ToolCalls, r.Tasks))
	}
	return errors.Join(errs...)
}

// WriteTo prints the report as a table.
func (r BurstReport) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	fmt.Fprintf(&b, "burst: %d periodic tasks over %d tenants (high %d, normal %d, low %d), cron %q UTC, jitter %s, %d workers (tenant cap %d)\n",
		r.Tasks, r.Tenants, r.ByPriority[tasks.PriorityHigh], r.ByPriority[tasks.PriorityNormal], r.ByPriority[tasks.PriorityLow],
		r.Cron, r.Jitter, r.Workers, r.TenantCap)
	fmt.Fprintf(&b, "create                  %10s  (threads %s, tasks %s, schedule entries %s; %.0f tasks/s)\n",
		ms(r.Create()), ms(r.CreateThreads), ms(r.CreateTasks), ms(r.CreateEntries), float64(r.Tasks)/r.Create().Seconds())
	fmt.Fprintf(&b, "first sweep             %10s  (before the due time; on Redis, once per deployment, it fills the sweep's indexes)\n", ms(r.FirstSweep))
	fmt.Fprintf(&b, "dispatch all runs       %10s  after due (first run %s; %d of %d created and enqueued)\n",
		ms(r.Dispatch), ms(r.FirstDispatch), r.Dispatched, r.Tasks)
	timedOut := ""
	if r.TimedOut {
		timedOut = ", TIMED OUT"
	}
	fmt.Fprintf(&b, "complete all runs       %10s  after due (%d of %d finished%s)\n", ms(r.Complete), r.Finished, r.Tasks, timedOut)
	fmt.Fprintf(&b, "throughput              %10.0f  runs/s (finished runs ÷ time from due to the last)\n", r.RunsPerSecond())
	if r.Wall > 0 && r.Finished > 0 {
		perRun := func(d time.Duration) string { return (d / time.Duration(r.Finished)).Round(time.Microsecond).String() }
		fmt.Fprintf(&b, "cpu while running       vigil %s (%s/run, %.2f cores)", ms(r.ProcessCPU), perRun(r.ProcessCPU), r.ProcessCPU.Seconds()/r.Wall.Seconds())
		if r.ServerCPUKnown {
			fmt.Fprintf(&b, "; server %s (%s/run, %.2f cores)", ms(r.ServerCPU), perRun(r.ServerCPU), r.ServerCPU.Seconds()/r.Wall.Seconds())
		}
		fmt.Fprintf(&b, " over %s\n", ms(r.Wall))
	}
	fmt.Fprintf(&b, "lateness (start − due)  p50 %s  p99 %s  max %s  (%d runs)\n",
		ms(quantile(r.Lateness, 0.5)), ms(quantile(r.Lateness, 0.99)), ms(quantile(r.Lateness, 1)), len(r.Lateness))
	for _, p := range tasks.Priorities {
		if ds := r.LatenessBy[p]; len(ds) > 0 {
			fmt.Fprintf(&b, "  %-6s                p50 %s  p99 %s  max %s  (%d runs)\n", p,
				ms(quantile(ds, 0.5)), ms(quantile(ds, 0.99)), ms(quantile(ds, 1)), len(ds))
		}
	}
	if r.Jitter > 0 {
		fmt.Fprintf(&b, "start − slot            p50 %s  p99 %s  max %s\n",
			ms(quantile(r.SlotLateness, 0.5)), ms(quantile(r.SlotLateness, 0.99)), ms(quantile(r.SlotLateness, 1)))
	}
	fmt.Fprintf(&b, "exactly once            %d tasks, %d runs, %d idempotency keys, %d tool calls; %d missing, %d duplicate, %d other slot\n",
		r.Tasks, r.Runs, r.Keys, r.ToolCalls, r.Missing, r.Duplicates, r.WrongSlot)
	fmt.Fprintf(&b, "outcome                 %d succeeded at the first attempt, %d failed or unfinished, %d retried; %d entries still due; %d warnings/errors logged\n",
		r.Succeeded, r.Failed, r.Retried, r.StillDue, r.Logged)
	yes := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	done := !r.TimedOut && r.Finished == r.Tasks
	// The lateness target counts from the slot (the due minute)
	// and allows the jitter on top.
	fmt.Fprintf(&b, "targets (issue 3, for N=100,000): dispatch ≤ 5s %s; complete ≤ 20s %s; p99 start − slot ≤ %s %s\n",
		yes(r.Dispatched == r.Tasks && r.Dispatch <= 5*time.Second),
		yes(done && r.Complete <= 20*time.Second),
		time.Second+r.Jitter, yes(done && quantile(r.SlotLateness, 0.99) <= time.Second+r.Jitter))
	fmt.Fprintln(&b)
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

// NoopTool is the name of the tool every burst task calls: it does
// nothing and returns null.
const NoopTool = "noop"

// Burst runs the burst workload: Tasks active periodic tasks of one step
// each (NoopTool), all due at the same instant T, dispatched by the real
// Scheduler and executed by a real Worker pool with the built-in
// StepExecutor, on st and q. It measures how long creating the tasks takes,
// then from T how long until every run is dispatched and until every run
// finished, and each run's lateness; then it checks in st that every task
// produced exactly one run, which succeeded. The tasks, threads and runs
// stay in st and q; callers give it a backend they can throw away.
//
// # Creating the tasks
//
// The tasks are written directly through the Store, not through the
// Manager: a thread (Log.CreateThread) with the task_status events
// Manager.Create and Confirm append (→ draft, draft → active), then the
// task, already active (Store.CreateTask), then its schedule entry
// (Store.SetNext), each phase for all tasks from Creators goroutines,
// whose concurrent writes the store commits together. That is what
// Manager.Create and Confirm write, less their reads. Writing the entry
// after the task is active is safe here: no scheduler runs until every
// entry is written.
// Priorities cycle 1 high, 7 normal, 2 low in 10; tenants cycle over
// Tenants.
//
// # Time
//
// Every task has the cron expression "M H * * *" (UTC) for one fixed
// minute T, at least a minute after the workload starts: each task fires
// once a day, so a slow dispatch never meets a second slot. The scheduler's
// clock is the wall clock shifted by a constant so that it reads T exactly
// Lead after the last task was created; it runs at the wall clock's speed,
// so every duration it sees is real. The workers and the queue run on the
// wall clock itself. The scheduler's Run loop (its own ticker and
// defaults) picks the burst up; nothing calls it by hand. (So the runs'
// CreatedAt and the scheduler's task_status events carry the shifted
// time; nothing reads them.)
//
// Lateness is a run's StartedAt (the worker's wall clock when it moved the
// run to running) minus its due time translated to the wall clock (Run.Due
// minus the shift), so it counts the scheduler's tick, the dispatch, the
// queue and the wait for a free worker. With jitter, start minus slot
// (SlotLateness) is what issue 3's target (p99 ≤ 1s plus the jitter)
// speaks of; without, the two are equal. Dispatch and completion times are
// measured from the wall-clock instant of T: the last Queue.Enqueue of a
// new run, and the last UpdateRun to succeeded or failed.
func Burst(ctx context.Context, st BurstBackend, q tasks.Queue, opts BurstOptions) (BurstReport, error) {
	o := opts.withDefaults()
	logs := &countingHandler{inner: o.Logger.Handler(), n: new(atomic.Int64)}
	logger := slog.New(logs)
	r := BurstReport{
		Tasks: o.Tasks, Tenants: o.Tenants, Workers: o.Workers, TenantCap: o.TenantCap, Jitter: o.Jitter,
		ByPriority: map[tasks.Priority]int{},
	}

	// T, in the scheduler's frame: the next whole minute at least a minute
	// from now.
	due := time.Now().UTC().Add(time.Minute).Truncate(time.Minute).Add(time.Minute)
	r.Cron = fmt.Sprintf("%d %d * * *", due.Minute(), due.Hour())
	set, err := newBurstSet(o, r.Cron, due)
	if err != nil {
		return r, err
	}
	for _, t := range set {
		r.ByPriority[t.Priority]++
	}

	fmt.Fprintf(o.Progress, "create: %d threads, tasks and schedule entries, %d writers\n", o.Tasks, o.Creators)
	phases := []struct {
		took *time.Duration
		name string
		do   func(ctx context.Context, t tasks.Task) error
	}{
		{&r.CreateThreads, "threads", func(ctx context.Context, t tasks.Task) error {
			if err := st.CreateThread(ctx, streams.Thread{ID: t.ThreadID, Tenant: t.Tenant, Title: t.Title, CreatedAt: t.CreatedAt}); err != nil {
				return err
			}
			evs, err := createdEvents(t)
			if err != nil {
				return err
			}
			_, err = st.Append(ctx, t.Tenant, t.ThreadID, evs)
			return err
		}},
		{&r.CreateTasks, "tasks", st.CreateTask},
		{&r.CreateEntries, "schedule entries", func(ctx context.Context, t tasks.Task) error {
			return st.SetNext(ctx, tasks.ScheduleEntry{Tenant: t.Tenant, TaskID: t.ID, Priority: t.Priority, Slot: due, Due: t.Trigger.DueAt(t.ID, due)})
		}},
	}
	for _, ph := range phases {
		start := time.Now()
		if err := forEach(ctx, set, o.Creators, ph.do); err != nil {
			return r, fmt.Errorf("create %s: %w", ph.name, err)
		}
		*ph.took = time.Since(start)
		fmt.Fprintf(o.Progress, "create: %d %s in %s\n", o.Tasks, ph.name, ph.took.Round(time.Millisecond))
	}

	start := time.Now()
	first := tasks.NewScheduler(tasks.SchedulerOptions{Store: st, Queue: q, Log: st, Logger: logger})
	if _, err := first.Sweep(ctx, time.Now()); err != nil {
		return r, fmt.Errorf("first sweep: %w", err)
	}
	r.FirstSweep = time.Since(start)
	fmt.Fprintf(o.Progress, "sweep: the first in %s\n", r.FirstSweep.Round(time.Millisecond))

	// The instant T on the wall clock, and the scheduler's shifted clock.
	wallDue := time.Now().Add(o.Lead)
	shift := due.Sub(wallDue)
	schedNow := func() time.Time { return time.Now().Add(shift) }

	var calls atomic.Int64
	reg := toolsregistry.New(toolsregistry.Options{Logger: logger})
	noop := toolsregistry.HandlerFunc(func(context.Context, json.RawMessage) (toolsregistry.Output, error) {
		calls.Add(1)
		return toolsregistry.Output{}, nil
	})
	if err := reg.Register(toolsregistry.Tool{Name: NoopTool, Version: 1, Description: "does nothing; the burst workload's step"}, noop); err != nil {
		return r, err
	}

	watch := newBurstWatch(o.Tasks)
	sched := tasks.NewScheduler(tasks.SchedulerOptions{
		Store: st, Queue: watchQueue(q, watch), Log: st, Now: schedNow, Logger: logger,
		Batch: o.SchedulerBatch, Parallel: o.SchedulerParallel, Tick: o.SchedulerTick,
	})
	worker := tasks.NewWorker(tasks.WorkerOptions{
		Store: &watchedStore{BurstBackend: st, w: watch}, Queue: q, Log: st, Logger: logger,
		Executor:    tasks.NewStepExecutor(tasks.StepExecutorOptions{Registry: reg, Store: st, Logger: logger}),
		Concurrency: o.Workers, TenantConcurrency: o.TenantCap,
	})

	fmt.Fprintf(o.Progress, "run: due in %s; scheduler and %d workers started\n", o.Lead, o.Workers)
	cpu := o.cpuMeter(ctx)
	stopHook := func() {}
	if o.OnRun != nil {
		stopHook = o.OnRun()
	}
	schedCtx, stopSched := context.WithCancel(ctx)
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		_ = sched.Run(schedCtx)
	}()
	worker.Start(ctx)
	stopAll := func() error {
		stopSched()
		<-schedDone
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return worker.Stop(sctx)
	}

	deadline := time.NewTimer(time.Until(wallDue.Add(o.Timeout)))
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	dispatched, finished := watch.dispatched, watch.finished
wait:
	for {
		select {
		case <-dispatched:
			dispatched = nil
			fmt.Fprintf(o.Progress, "run: all %d runs dispatched %s after due\n", o.Tasks, watch.lastEnqueue().Sub(wallDue).Round(time.Millisecond))
		case <-finished:
			break wait
		case <-tick.C:
			e, f := watch.counts()
			fmt.Fprintf(o.Progress, "run: %s after due: %d dispatched, %d finished\n", time.Since(wallDue).Round(time.Second), e, f)
		case <-deadline.C:
			r.TimedOut = true
			break wait
		case <-ctx.Done():
			stopHook()
			_ = stopAll()
			return r, ctx.Err()
		}
	}
	cpu.read(ctx, &r)
	stopHook()
	// Let the scheduler advance the entries of the runs it fired last (a
	// run can finish before its entry moves on), so that stopping it
	// interrupts nothing; then count the entries still due.
	for wait := time.Now().Add(10 * time.Second); time.Now().Before(wait); time.Sleep(20 * time.Millisecond) {
		if left, err := st.Due(ctx, schedNow(), 1); err != nil || len(left) == 0 {
			break
		}
	}
	stopErr := stopAll()
	left, err := st.Due(ctx, schedNow(), tasks.MaxDueLimit)
	if err != nil {
		return r, fmt.Errorf("read the schedule index: %w", err)
	}
	r.StillDue = len(left)

	r.Dispatched, r.Finished = watch.counts()
	if r.Dispatched > 0 {
		r.FirstDispatch, r.Dispatch = watch.firstEnqueue().Sub(wallDue), watch.lastEnqueue().Sub(wallDue)
	}
	if r.Finished > 0 {
		r.Complete = watch.lastFinish().Sub(wallDue)
	}

	fmt.Fprintf(o.Progress, "check: the runs of %d tasks\n", o.Tasks)
	if err := r.count(ctx, st, set, due, shift, o.Creators); err != nil {
		return r, err
	}
	r.ToolCalls = int(calls.Load())
	r.Logged = int(logs.n.Load())
	if stopErr != nil {
		return r, stopErr
	}
	return r, r.Check()
}

// cpuMeter is a reading of the wall clock and CPU times at the start of
// the runs.
type cpuMeter struct {
	o                BurstOptions
	wall             time.Time
	proc, server     time.Duration
	procOK, serverOK bool
}

func (o BurstOptions) cpuMeter(ctx context.Context) cpuMeter {
	m := cpuMeter{o: o, wall: time.Now()}
	m.proc, m.procOK = processCPU()
	if o.ServerCPU != nil {
		d, err := o.ServerCPU(ctx)
		m.server, m.serverOK = d, err == nil
	}
	return m
}

// read fills in r's CPU figures since m was read.
func (m cpuMeter) read(ctx context.Context, r *BurstReport) {
	r.Wall = time.Since(m.wall)
	if p, ok := processCPU(); ok && m.procOK {
		r.ProcessCPU = p - m.proc
	}
	if m.serverOK {
		if d, err := m.o.ServerCPU(ctx); err == nil {
			r.ServerCPU, r.ServerCPUKnown = d-m.server, true
		}
	}
}

// burstTenants are the tenant ids of the burst.
func burstTenant(i int) string { return fmt.Sprintf("burst-%d", i) }

// newBurstSet returns the tasks to create: active, periodic, one no-op
// step, due at slot.
func newBurstSet(o BurstOptions, cron string, slot time.Time) ([]tasks.Task, error) {
	specs := map[tasks.Priority]tasks.Spec{}
	for _, p := range tasks.Priorities {
		s := tasks.Spec{
			Title: "burst", Kind: tasks.KindPeriodic, Priority: p,
			Trigger: tasks.Trigger{Cron: cron, Jitter: tasks.Duration(o.Jitter)},
			Tools:   []string{NoopTool}, Steps: []tasks.Step{{Tool: NoopTool}},
		}.Normalized()
		if err := s.Validate(); err != nil {
			return nil, err
		}
		if next, ok := s.Trigger.Next(slot.Add(-time.Nanosecond)); !ok || !next.Equal(slot) {
			return nil, fmt.Errorf("bench: %q does not fire at %s", cron, slot)
		}
		specs[p] = s
	}
	now := time.Now().UTC()
	set := make([]tasks.Task, o.Tasks)
	for i := range set {
		p := tasks.PriorityNormal
		switch i % 10 {
		case 0:
			p = tasks.PriorityHigh
		case 8, 9:
			p = tasks.PriorityLow
		}
		set[i] = tasks.Task{
			ID: vigil.NewID("tsk_"), Tenant: burstTenant(i % o.Tenants), Owner: "bench", Status: tasks.StatusActive,
			Version: 1, ThreadID: vigil.NewID("th_"), Spec: specs[p], CreatedAt: now, UpdatedAt: now,
		}
	}
	return set, nil
}

// forEach calls fn for every task from n goroutines and returns the first
// error.
func forEach(ctx context.Context, set []tasks.Task, n int, fn func(context.Context, tasks.Task) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, len(set)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(set) {
					return
				}
				if err := fn(ctx, set[i]); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// count reads every task's runs and fills in the exactly-once counts and
// the lateness figures.
func (r *BurstReport) count(ctx context.Context, st tasks.Store, set []tasks.Task, slot time.Time, shift time.Duration, n int) error {
	all := make([][]tasks.Run, 0, len(set))
	var mu sync.Mutex
	err := forEach(ctx, set, min(n, 8), func(ctx context.Context, t tasks.Task) error {
		page, err := st.ListRuns(ctx, t.Tenant, tasks.RunFilter{TaskID: t.ID, Limit: 10})
		if err != nil {
			return err
		}
		mu.Lock()
		all = append(all, page.Runs)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("check runs: %w", err)
	}
	keys := map[string]bool{}
	r.LatenessBy = map[tasks.Priority][]time.Duration{}
	want := map[string]string{} // task id → the due slot's key
	for _, t := range set {
		want[t.ID] = tasks.IdempotencyKey(t.ID, slot)
	}
	for _, runs := range all {
		if len(runs) == 0 {
			r.Missing++
			continue
		}
		r.Duplicates += len(runs) - 1
		for _, run := range runs {
			r.Runs++
			key := run.IdempotencyKey()
			keys[key] = true
			if want[run.TaskID] != key {
				r.WrongSlot++
			}
			switch {
			case run.Status == tasks.RunSucceeded && run.Attempt == 1:
				r.Succeeded++
			case run.Status == tasks.RunSucceeded:
				r.Succeeded++
				r.Retried++
			default:
				r.Failed++
			}
			if run.StartedAt.IsZero() {
				continue
			}
			late := run.StartedAt.Sub(run.Due.Add(-shift))
			r.Lateness = append(r.Lateness, late)
			r.LatenessBy[run.Spec.Priority] = append(r.LatenessBy[run.Spec.Priority], late)
			r.SlotLateness = append(r.SlotLateness, run.StartedAt.Sub(run.Slot.Add(-shift)))
		}
	}
	r.Keys = len(keys)
	slices.Sort(r.Lateness)
	slices.Sort(r.SlotLateness)
	for _, ds := range r.LatenessBy {
		slices.Sort(ds)
	}
	return nil
}

// burstWatch records, on the wall clock, when each run was first enqueued
// and when it finished, and signals when all of them were.
type burstWatch struct {
	want int

	mu                   sync.Mutex
	enqueued             map[string]bool
	finishedRuns         map[string]bool
	first, last, lastFin time.Time
	dispatched, finished chan struct{}
}

func newBurstWatch(n int) *burstWatch {
	return &burstWatch{
		want: n, enqueued: make(map[string]bool, n), finishedRuns: make(map[string]bool, n),
		dispatched: make(chan struct{}), finished: make(chan struct{}),
	}
}

func (w *burstWatch) enqueue(runID string) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.enqueued[runID] {
		return
	}
	w.enqueued[runID] = true
	if w.first.IsZero() {
		w.first = now
	}
	w.last = now
	if len(w.enqueued) == w.want {
		close(w.dispatched)
	}
}

func (w *burstWatch) finish(runID string) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finishedRuns[runID] {
		return
	}
	w.finishedRuns[runID] = true
	w.lastFin = now
	if len(w.finishedRuns) == w.want {
		close(w.finished)
	}
}

func (w *burstWatch) counts() (enqueued, finished int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.enqueued), len(w.finishedRuns)
}

func (w *burstWatch) firstEnqueue() time.Time { w.mu.Lock(); defer w.mu.Unlock(); return w.first }
func (w *burstWatch) lastEnqueue() time.Time  { w.mu.Lock(); defer w.mu.Unlock(); return w.last }
func (w *burstWatch) lastFinish() time.Time   { w.mu.Lock(); defer w.mu.Unlock(); return w.lastFin }

// watchedQueue is the scheduler's queue: it tells the watch of every run
// enqueued.
type watchedQueue struct {
	tasks.Queue
	w *burstWatch
}

func (q *watchedQueue) Enqueue(ctx context.Context, item tasks.QueueItem, delay time.Duration) error {
	err := q.Queue.Enqueue(ctx, item, delay)
	if err == nil {
		q.w.enqueue(item.RunID)
	}
	return err
}

// watchedBatchQueue is a watchedQueue on a queue that is a
// tasks.BatchEnqueuer, and is one too, so that the scheduler batches its
// enqueues as it would on the queue itself.
type watchedBatchQueue struct {
	watchedQueue
	b tasks.BatchEnqueuer
}

func (q *watchedBatchQueue) EnqueueBatch(ctx context.Context, items []tasks.QueueItem, delay time.Duration) error {
	err := q.b.EnqueueBatch(ctx, items, delay)
	if err == nil {
		for _, it := range items {
			q.w.enqueue(it.RunID)
		}
	}
	return err
}

// watchQueue returns q, telling w of every run enqueued.
func watchQueue(q tasks.Queue, w *burstWatch) tasks.Queue {
	wq := watchedQueue{Queue: q, w: w}
	if b, ok := q.(tasks.BatchEnqueuer); ok {
		return &watchedBatchQueue{watchedQueue: wq, b: b}
	}
	return &wq
}

// watchedStore is the workers' store: it tells the watch of every run
// stored as succeeded or failed.
type watchedStore struct {
	BurstBackend
	w *burstWatch
}

func (s *watchedStore) UpdateRun(ctx context.Context, r tasks.Run, from tasks.RunStatus) error {
	err := s.BurstBackend.UpdateRun(ctx, r, from)
	if err == nil && (r.Status == tasks.RunSucceeded || r.Status == tasks.RunFailed) {
		s.w.finish(r.ID)
	}
	return err
}

// UpdateRunThreaded implements tasks.ThreadedRunUpdater, so that the
// workers write a run and its events as they would on the backend itself:
// in one call when the backend has it, else in two, which is what the
// worker does on ErrUnsupported.
func (s *watchedStore) UpdateRunThreaded(ctx context.Context, log streams.Log, r tasks.Run, from tasks.RunStatus, thread string, evs []streams.Event) error {
	u, ok := s.BurstBackend.(tasks.ThreadedRunUpdater)
	if !ok {
		return fmt.Errorf("bench: %T cannot update a run with its thread: %w", s.BurstBackend, errors.ErrUnsupported)
	}
	err := u.UpdateRunThreaded(ctx, log, r, from, thread, evs)
	if err == nil && (r.Status == tasks.RunSucceeded || r.Status == tasks.RunFailed) {
		s.w.finish(r.ID)
	}
	return err
}

// RunTask implements tasks.RunTaskReader, so that the workers read a run
// and its task as they would on the backend itself: in one call when the
// backend has it, else with Run and Task, which is what the worker does
// then.
func (s *watchedStore) RunTask(ctx context.Context, tenant, id string) (tasks.Run, tasks.Task, error) {
	if rt, ok := s.BurstBackend.(tasks.RunTaskReader); ok {
		return rt.RunTask(ctx, tenant, id)
	}
	r, err := s.BurstBackend.Run(ctx, tenant, id)
	if err != nil {
		return r, tasks.Task{}, err
	}
	t, err := s.BurstBackend.Task(ctx, r.Tenant, r.TaskID)
	if vigil.ErrorCode(err) == vigil.NotFound {
		return r, tasks.Task{}, nil
	}
	return r, t, err
}

// countingHandler counts the warnings and errors logged through it and
// passes every record on.
type countingHandler struct {
	inner slog.Handler
	n     *atomic.Int64
}

func (h *countingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.inner.Enabled(ctx, l)
}

func (h *countingHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelWarn {
		h.n.Add(1)
	}
	if h.inner.Enabled(ctx, rec.Level) {
		return h.inner.Handle(ctx, rec)
	}
	return nil
}

func (h *countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &countingHandler{inner: h.inner.WithAttrs(as), n: h.n}
}

func (h *countingHandler) WithGroup(name string) slog.Handler {
	return &countingHandler{inner: h.inner.WithGroup(name), n: h.n}
}

// createdEvents returns the task_status events Manager.Create and Confirm
// append to t's thread: → draft, then draft → active.
func createdEvents(t tasks.Task) ([]streams.Event, error) {
	var evs []streams.Event
	for _, p := range []streams.TaskStatus{
		{TaskID: t.ID, To: string(tasks.StatusDraft)},
		{TaskID: t.ID, From: string(tasks.StatusDraft), To: string(tasks.StatusActive)},
	} {
		ev, err := streams.NewEvent(p)
		if err != nil {
			return nil, err
		}
		ev.TaskID, ev.TS = t.ID, t.CreatedAt
		evs = append(evs, ev)
	}
	return evs, nil
}

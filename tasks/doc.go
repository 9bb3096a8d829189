// Package tasks is Vigil's management and execution layer: what a task
// is, when it fires, which state changes are legal, the Manager that
// carries out every change a user asks for, and the Scheduler, Queue and
// Worker that execute runs while their owner is offline.
//
// A Task is work a user wants done later or again and again: what to do
// (an instruction for the task agent, or declared tool Steps that the
// built-in executor calls in order), when (a Trigger: cron in an IANA zone,
// a one-shot time, an interval, an ingested-event source), under which
// limits (allowed tools, priority) and whom to tell (the task's thread
// always, webhooks optionally). A Run is one execution of a task, fired for
// one slot; its idempotency key (task id + slot) is what makes a run fired
// twice execute and notify once.
//
// Data flows one way:
//
//	httpapi / mcpserver / agent ──▶ Manager ──▶ Store (tasks, runs, schedule index)
//	                                   │   └──▶ streams.Log (a task_status event per change)
//	                                   └─ RunNow, Retry, Ingest: CreateRun ──(DispatchStore)──▶ Queue
//	Scheduler ──Store.Due──▶ check entry against task ──▶ CreateRun (slot key) ──▶ Queue.Enqueue ──▶ AdvanceNext
//	Worker ──Queue.Claim (lease)──▶ UpdateRun queued→running ──▶ Executor.Execute(run, Reporter)
//	       Reporter: events and checkpoints wait (≤ 25 ms) for the next write; a checkpoint is
//	                 written (UpdateRun running→running) before the executor's next event at the latest
//	       success: Notifier ──▶ webhooks, Then ──▶ chained runs,
//	                UpdateRun running→succeeded + text/done, Queue.Ack
//	       (each UpdateRun carries the events since the last, and its task_status event:
//	       one write with a ThreadedRunUpdater)
//	       failure: Classify ──▶ retry at once | retrying + Queue.Release(backoff) | failed (dead letter) + Ack
//
// The Manager validates a change (Spec.Validate, chain cycles, the state
// machines in state.go), writes it to the Store with optimistic concurrency
// on the task's Version, keeps the schedule index in step, and appends a
// task_status event to the task's thread with the request's trace id.
//
// Execution is three parts that share nothing but the Store and the Queue,
// so that they can run in one process (embedded mode: `vigil serve` on
// bolt) or apart (Redis mode: `vigil worker`, to come):
//
//   - The Scheduler reads the schedule index with Store.Due, highest
//     priority first in batches, checks each entry against its task (the
//     index may be early or stale, never missing or late), applies the
//     task's catch-up policy to slots missed while it was down, creates a
//     run keyed by the slot (CreateRun refuses a second run for a slot:
//     two schedulers fire it once), enqueues it and advances the entry. A
//     Lease lets one scheduler of many dispatch.
//   - The Queue holds run ids by priority and leases them to workers; a
//     crashed worker's lease runs out and another worker reclaims the run.
//   - The Worker pool claims runs within a per-tenant cap and a rate limit,
//     moves them through their states with UpdateRun's compare-and-set on
//     status (two workers cannot both start a run), runs the Executor —
//     the task agent (agent.TaskAgent) in vigil serve and vigil worker, or
//     the built-in StepExecutor, which calls the task's tool steps through
//     the tools registry and judges monitors without a model —
//     and retries by error class (transient, temporary, permanent). Long
//     runs checkpoint after each step and resume after the last checkpoint
//     when reclaimed or given back at shutdown.
//
// Notifications are at least once with a key: a run's result reaches its
// thread and its webhooks before the run is marked succeeded, every webhook
// POST carries the run's idempotency key (task id + slot), and a run
// executed again after a crash notifies with the same key, which the
// receiver drops.
//
// The Store and Queue interfaces are declared here, where they are
// consumed; store/bolt implements both and store/storetest holds their
// conformance suites (Tasks, Queue).
package tasks

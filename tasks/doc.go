// Package tasks is Vigil's management layer: what a task is, when it fires,
// which state changes are legal, and the Manager that carries out every
// change a user asks for.
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
//	                                   └──────▶ streams.Log (a task_status event per change)
//	scheduler ──Store.Due──▶ CreateRun (idempotent) ──▶ queue ──▶ workers ──UpdateRun (CAS)──▶ Store
//
// The Manager validates a change (Spec.Validate, chain cycles, the state
// machines in state.go), writes it to the Store with optimistic concurrency
// on the task's Version, keeps the schedule index in step, and appends a
// task_status event to the task's thread with the request's trace id. The
// scheduler, queue and workers (a later step) read the schedule index with
// Store.Due, create runs keyed by slot so that two schedulers cannot fire
// one slot twice, and move runs through their states with UpdateRun's
// compare-and-set on status, so that two workers cannot both claim a run.
//
// The Store interface is declared here, where it is consumed; store/bolt
// implements it and store/storetest holds its conformance suite.
package tasks

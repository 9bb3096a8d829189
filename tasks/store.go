package tasks

import (
	"context"
	"time"
)

// Store persists tasks, runs and the schedule index. store/bolt implements
// it (store/redis will); store/storetest.Tasks is its conformance suite,
// and its subtests name the clauses below.
//
// # Scope and ids
//
// Every method but Due is scoped by tenant: a task or run of one tenant is
// invisible to every other, and asking for it answers vigil.NotFound, the
// same as for one that does not exist. Tenant, task and run ids are checked
// with vigil.ValidID; an invalid one is a vigil.Invalid error (except in
// lookups, where it may also answer NotFound). The same task id may exist in
// two tenants, independently.
//
// # Values
//
// Stores keep what they are given: a task or run reads back equal to what
// was written, times as the same instant (time.Time.Equal; the zone and the
// monotonic reading need not survive), Slots and other JSON values as the
// same JSON (numbers come back as float64), raw JSON (Result, checkpoint
// State) byte for byte. Task.NextFire is never stored and reads back nil.
// Stores do not validate specs or state transitions: the Manager and the
// workers do (Spec.Validate, CheckTask, CheckRun); stores enforce only
// uniqueness, existence and the compare-and-set rules below.
//
// # Concurrency
//
// Implementations are safe for concurrent use by many goroutines and, in
// Redis mode, many processes. UpdateTask, UpdateRun and AdvanceNext are
// compare-and-set operations: of several concurrent calls made against the
// same expected state exactly one succeeds and the others answer
// vigil.Conflict, having changed nothing. Of several concurrent CreateRun
// calls with the same idempotency key exactly one succeeds. Errors carry
// vigil codes where the contract names one; others are backend failures.
//
// # The schedule index
//
// The index holds at most one entry per task: the task's next slot and
// when that slot is due. It is a hint, kept by these rules rather than by
// transactions (in Redis Cluster the index and the tasks live in different
// slots):
//
//   - A writer makes the entry no later than the task's true next due time
//     before it makes the task active or changes its trigger, and removes
//     it only after the task stopped being active. So an entry may be
//     early or stale, never missing or late.
//   - The scheduler checks each due entry against the task before firing:
//     the task is active and the entry's slot is a slot of its current
//     trigger. Otherwise it recomputes the entry (AdvanceNext) or drops it.
//   - The scheduler moves an entry with AdvanceNext, which fails if a user
//     changed the entry meanwhile, so a pause or an edit is never undone
//     by a scheduler holding an old entry.
type Store interface {
	// CreateTask stores a new task. t.Tenant and t.ID must be valid ids;
	// t is stored as given (the Manager sets Version 1). A task with the
	// same id in the tenant is a vigil.Conflict error.
	CreateTask(ctx context.Context, t Task) error

	// Task returns the tenant's task, or vigil.NotFound.
	Task(ctx context.Context, tenant, id string) (Task, error)

	// UpdateTask replaces the stored task t.Tenant/t.ID with t, provided
	// the stored Version is still t.Version (the version the caller read);
	// it stores and returns t.Version+1. A stale version is a
	// vigil.Conflict error and changes nothing; a missing task is
	// vigil.NotFound. CreatedAt, Tenant and ID are kept from the stored
	// task; every other field is replaced.
	UpdateTask(ctx context.Context, t Task) (version int64, err error)

	// ListTasks returns the tenant's tasks that match f, in creation
	// order (CreatedAt, then ID), at most f.Limit of them (1 to
	// MaxListLimit; another value is vigil.Invalid), starting after the
	// cursor f.After. TaskPage.Next is the cursor of the following page,
	// "" after the last. Cursors are opaque strings made by the same
	// store (any other string is vigil.Invalid); a cursor stays valid when
	// tasks are added or removed, even the one it points at, and paging
	// through every page returns each task that existed throughout exactly
	// once, with tasks created meanwhile at the end.
	ListTasks(ctx context.Context, tenant string, f TaskFilter) (TaskPage, error)

	// DeleteTask removes the task, all its runs (with their idempotency
	// keys) and its schedule entry. A missing task is vigil.NotFound.
	DeleteTask(ctx context.Context, tenant, id string) error

	// CreateRun stores a new run. r.Tenant, r.ID and r.TaskID must be
	// valid ids and the task must exist in the tenant (else
	// vigil.NotFound). A run with the same id, or a run of the same task
	// with the same idempotency key (r.IdempotencyKey()), is a
	// vigil.Conflict error: this is how a slot fired twice runs once.
	CreateRun(ctx context.Context, r Run) error

	// Run returns the tenant's run, or vigil.NotFound.
	Run(ctx context.Context, tenant, id string) (Run, error)

	// UpdateRun replaces the stored run r.Tenant/r.ID with r, provided
	// the stored run's Status is still from. A different stored status is
	// vigil.Conflict and changes nothing; a missing run is vigil.NotFound.
	// r.TaskID and r.Slot (Equal) must be the stored run's, else
	// vigil.Invalid: a run's identity and idempotency key never change.
	// CreatedAt is kept from the stored run; every other field is
	// replaced. An update that keeps the status (a checkpoint) passes
	// from = the status, and is compared like any other.
	UpdateRun(ctx context.Context, r Run, from RunStatus) error

	// ListRuns returns the runs of one task of the tenant, newest first
	// (CreatedAt descending, then ID descending), at most f.Limit (1 to
	// MaxListLimit), after the cursor f.After, with the same cursor rules
	// as ListTasks. A task without runs, or that does not exist, has an
	// empty page.
	ListRuns(ctx context.Context, tenant string, f RunFilter) (RunPage, error)

	// SetNext makes e the schedule entry of task e.Tenant/e.TaskID,
	// replacing any entry it had (whatever its priority). e.Priority must
	// be one of Priorities (else vigil.Invalid), and the task must exist
	// (else vigil.NotFound).
	SetNext(ctx context.Context, e ScheduleEntry) error

	// AdvanceNext replaces the entry of task from.Tenant/from.TaskID with
	// to, or removes it when to is nil, provided the stored entry's Slot
	// is still from.Slot (Equal). No entry, or one with another slot, is
	// vigil.Conflict and changes nothing. to, when set, must name the
	// same tenant and task, with a valid priority (else vigil.Invalid).
	AdvanceNext(ctx context.Context, from ScheduleEntry, to *ScheduleEntry) error

	// ClearNext removes the task's schedule entry, if it has one; it is
	// not an error if it has none or the task does not exist.
	ClearNext(ctx context.Context, tenant, taskID string) error

	// Next returns the task's schedule entry, or vigil.NotFound if it has
	// none.
	Next(ctx context.Context, tenant, taskID string) (ScheduleEntry, error)

	// Due returns the entries of every tenant that are due at now: all
	// due high-priority entries first, then normal, then low; within a
	// priority by Due, then Tenant, then TaskID; at most limit (1 to
	// MaxDueLimit, else vigil.Invalid). Due times are compared to the
	// millisecond: an entry is due when Due.UnixMilli() <= now.UnixMilli(),
	// and entries whose Due falls in the same millisecond are ordered by
	// tenant and task. Due does not remove or lease entries: the scheduler
	// advances each entry it fires. (Redis can keep one sorted set per
	// priority, scored by Due in milliseconds, with members that sort as
	// tenant then task id, such as tenant + "\x00" + task id, and read
	// them with ZRANGE BYSCORE in priority order.)
	Due(ctx context.Context, now time.Time, limit int) ([]ScheduleEntry, error)

	// SweepStore holds the walks over every tenant that the Scheduler's
	// sweep makes: queued runs and active one-shot tasks (see SweepStore).
	SweepStore
}

// Limits on pages.
const (
	// MaxListLimit is the largest page ListTasks and ListRuns return.
	MaxListLimit = 1000
	// MaxDueLimit is the largest batch Due returns.
	MaxDueLimit = 10_000
)

// TaskFilter selects tasks for ListTasks. Empty fields match every task.
type TaskFilter struct {
	Status Status
	Kind   Kind
	Owner  string
	// Event selects monitors subscribed to this ingested event source
	// (Trigger.Event).
	Event string
	// Limit is the page size; After the cursor of the previous page.
	Limit int
	After string
}

// TaskPage is a page of tasks. Next is the cursor of the following page,
// or "" when this page is the last.
type TaskPage struct {
	Tasks []Task `json:"tasks"`
	Next  string `json:"next,omitempty"`
}

// RunFilter selects runs for ListRuns.
type RunFilter struct {
	// TaskID is the task whose runs to list; required.
	TaskID string
	// Limit is the page size; After the cursor of the previous page.
	Limit int
	After string
}

// RunPage is a page of runs, newest first. Next is the cursor of the
// following page, or "" when this page is the last.
type RunPage struct {
	Runs []Run  `json:"runs"`
	Next string `json:"next,omitempty"`
}

// ScheduleEntry is a task's entry in the schedule index.
type ScheduleEntry struct {
	Tenant string `json:"tenant"`
	TaskID string `json:"task_id"`
	// Priority is the task's priority when the entry was written; Due
	// orders by it.
	Priority Priority `json:"priority"`
	// Slot is the task's next slot: the run's idempotency slot.
	Slot time.Time `json:"slot"`
	// Due is when the slot is due: Slot plus the trigger's jitter
	// (Trigger.DueAt).
	Due time.Time `json:"due"`
}

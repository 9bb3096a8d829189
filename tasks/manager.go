package tasks

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// Options configure a Manager. Store and Log are required; the zero value
// of every other field means its default.
type Options struct {
	Store Store
	// Log holds the tasks' threads; every change appends a task_status
	// event to the task's thread.
	Log streams.Log
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives failures that do not fail the call (an event that
	// could not be appended after its change was stored). Default
	// slog.Default().
	Logger *slog.Logger
	// ManagesAll reports whether a principal may see and change every
	// task of its tenant. Others see only the tasks they own: another
	// user's task answers vigil.NotFound, as another tenant's does. Nil
	// means everyone manages all (no authentication configured). The
	// permission table lives in auth; cmd wires it here.
	ManagesAll func(vigil.Principal) bool
	// ReadsAll reports whether a principal who does not manage all tasks
	// may still read every task of its tenant and its runs (a viewer); it
	// changes only its own, and changing another's is vigil.Forbidden.
	// Nil means nobody beyond ManagesAll.
	ReadsAll func(vigil.Principal) bool
	// Sealer, when set, seals every webhook secret before the Store sees
	// it (see Sealer); the Notifier that signs with them needs the same
	// key. Nil stores secrets as given.
	Sealer *Sealer
	// OwnerScopes returns the scopes a principal holds for its tasks' tool
	// calls; the Manager records them on each task the principal owns when
	// it creates, updates, confirms or resumes it (Task.OwnerScopes). Nil
	// means every principal holds every scope ("*"): no authentication
	// configured. The scope table lives in auth; cmd wires it here.
	OwnerScopes func(vigil.Principal) []string
	// MaxActiveTasks returns the most active tasks a tenant may have:
	// Confirm and Resume of one more are vigil.TooMany, naming the limit,
	// and change nothing. Nil, or a result of zero or less, means no
	// limit. It is asked at every activation, so a changed quota applies
	// at once; a tenant already over a lowered limit keeps its tasks.
	MaxActiveTasks func(tenant string) int
	// LockTenant, if set, holds a lock on tenant shared by every instance
	// while an activation counts its active tasks and activates, so that
	// two instances cannot both take a tenant's last free place under
	// MaxActiveTasks; it returns the function that releases the lock. Nil
	// serializes a tenant's activations within this Manager only.
	LockTenant func(ctx context.Context, tenant string) (unlock func(), err error)
}

// Manager carries out the changes users ask for: it validates, applies the
// state machines, writes the Store, keeps the schedule index in step and
// records every change on the task's thread. Every method acts for the
// tenant of the principal in ctx (vigil.TenantFrom) and answers
// vigil.NotFound for another tenant's task or run, never revealing that it
// exists. It is safe for concurrent use.
//
// A change is stored first and its task_status event appended after: if
// the append fails, the change stands, the failure is logged, and the call
// still succeeds.
type Manager struct {
	store      Store
	log        streams.Log
	now        func() time.Time
	logger     *slog.Logger
	managesAll func(vigil.Principal) bool
	readsAll   func(vigil.Principal) bool
	sealer     *Sealer
	// ownerScopes is Options.OwnerScopes.
	ownerScopes func(vigil.Principal) []string
	// maxActive is Options.MaxActiveTasks.
	maxActive func(tenant string) int
	// activating serializes the activations of a tenant (by a hash of
	// it) in this process, so that concurrent confirms cannot both take
	// the last free place under maxActive.
	activating [64]sync.Mutex
	// lockTenant is Options.LockTenant.
	lockTenant func(ctx context.Context, tenant string) (func(), error)
}

// NewManager returns a Manager.
func NewManager(opts Options) *Manager {
	m := &Manager{store: opts.Store, log: opts.Log, now: opts.Now, logger: opts.Logger, managesAll: opts.ManagesAll, readsAll: opts.ReadsAll, sealer: opts.Sealer}
	m.ownerScopes = opts.OwnerScopes
	m.maxActive = opts.MaxActiveTasks
	m.lockTenant = opts.LockTenant
	if m.now == nil {
		m.now = time.Now
	}
	if m.logger == nil {
		m.logger = slog.Default()
	}
	return m
}

// Store returns the Manager's store, for the scheduler and workers that
// run beside it.
func (m *Manager) Store() Store { return m.store }

// Page sizes of List and ListRuns.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// casAttempts is how often a state change re-reads the task after losing
// a version race to a concurrent writer before it answers Conflict.
const casAttempts = 5

// scope returns the request's tenant and checks id's syntax: a malformed
// id cannot exist, so it is not found.
func scope(ctx context.Context, what, id string) (string, error) {
	tenant, err := vigil.TenantFrom(ctx)
	if err != nil {
		return "", err
	}
	if !vigil.ValidID(id) {
		return "", vigil.Errorf(vigil.NotFound, "%s %q not found", what, id)
	}
	return tenant, nil
}

// Create stores s as a new draft task of the request's tenant, owned by
// the principal's user, with version 1 and a new thread. A draft never
// fires; Confirm activates it. A Store that is a ThreadedCreator stores the
// task, its thread and its first event in one step.
func (m *Manager) Create(ctx context.Context, s Spec) (Task, error) {
	tenant, err := vigil.TenantFrom(ctx)
	if err != nil {
		return Task{}, err
	}
	p, _ := vigil.PrincipalFrom(ctx)
	s = s.Normalized()
	if err := s.Validate(); err != nil {
		return Task{}, err
	}
	now := m.now().UTC()
	if err := m.checkTimes(s, now); err != nil {
		return Task{}, err
	}
	id := vigil.NewID("tsk_")
	if err := m.checkChain(ctx, tenant, id, s.Then); err != nil {
		return Task{}, err
	}
	s.Notify = m.sealer.mergeHooks(id, s.Notify, nil)
	th := streams.Thread{ID: vigil.NewID("th_"), Tenant: tenant, Title: s.Title, CreatedAt: now}
	t := Task{
		ID: id, Tenant: tenant, Owner: p.User, Status: StatusDraft, Version: 1, ThreadID: th.ID,
		Spec: s, CreatedAt: now, UpdatedAt: now,
	}
	m.recordScopes(ctx, &t)
	if err := m.createThreaded(ctx, th, t); err != nil {
		return Task{}, err
	}
	return t, nil
}

// Get returns the tenant's task with its next fire time, if it has one.
func (m *Manager) Get(ctx context.Context, id string) (Task, error) {
	tenant, err := scope(ctx, "task", id)
	if err != nil {
		return Task{}, err
	}
	t, err := m.view(ctx).Task(ctx, tenant, id)
	if err != nil {
		return Task{}, err
	}
	return m.withNext(ctx, t)
}

// withNext fills t.NextFire from the index for an active task.
func (m *Manager) withNext(ctx context.Context, t Task) (Task, error) {
	if t.Status != StatusActive {
		return t, nil
	}
	e, err := m.store.Next(ctx, t.Tenant, t.ID)
	switch {
	case err == nil:
		t.NextFire = &e.Slot
	case vigil.ErrorCode(err) != vigil.NotFound:
		return Task{}, err
	}
	return t, nil
}

// List returns a page of the tenant's tasks matching f, in creation order.
// A zero f.Limit means DefaultLimit; it is capped at MaxLimit. A status or
// kind that does not exist is a vigil.Invalid error naming it.
func (m *Manager) List(ctx context.Context, f TaskFilter) (TaskPage, error) {
	tenant, err := vigil.TenantFrom(ctx)
	if err != nil {
		return TaskPage{}, err
	}
	if f.Status != "" && !f.Status.Valid() {
		return TaskPage{}, vigil.FieldError("status", "must be draft, active, paused or archived, got %q", f.Status)
	}
	switch f.Kind {
	case "", KindPeriodic, KindOneShot, KindMonitor, KindLongRunning:
	default:
		return TaskPage{}, vigil.FieldError("kind", "must be periodic, one_shot, monitor or long_running, got %q", f.Kind)
	}
	if f.Limit, err = limit(f.Limit); err != nil {
		return TaskPage{}, err
	}
	page, err := m.view(ctx).ListTasks(ctx, tenant, f)
	if err != nil {
		return TaskPage{}, err
	}
	for i, t := range page.Tasks {
		if page.Tasks[i], err = m.withNext(ctx, t); err != nil {
			return TaskPage{}, err
		}
	}
	return page, nil
}

func limit(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultLimit, nil
	case n < 0:
		return 0, vigil.FieldError("limit", "must be positive, got %d", n)
	default:
		return min(n, MaxLimit), nil
	}
}

// Update replaces the task's Spec with s as a new version. version is the
// version the caller last read; 0 means whatever is stored now. A stale
// version is vigil.Conflict. An archived task cannot change (a
// *TransitionError). Runs created before keep the Spec and version they
// fired with. For an active task the next fire time is recomputed from the
// new trigger, counted from now. A webhook given without a secret keeps
// the secret of the stored webhook with the same URL, so that a client can
// send back the redacted task it was shown; new secrets are sealed (see
// Options.Sealer).
func (m *Manager) Update(ctx context.Context, id string, version int64, s Spec) (Task, error) {
	tenant, err := scope(ctx, "task", id)
	if err != nil {
		return Task{}, err
	}
	cur, err := m.edit(ctx).Task(ctx, tenant, id)
	if err != nil {
		return Task{}, err
	}
	s = s.Normalized()
	s.Notify = m.sealer.mergeHooks(id, s.Notify, cur.Notify)
	if err := s.Validate(); err != nil {
		return Task{}, err
	}
	now := m.now().UTC()
	if version != 0 && version != cur.Version {
		return Task{}, staleVersion(id, version, cur.Version)
	}
	if cur.Status == StatusArchived {
		return Task{}, &TransitionError{What: "task", ID: id, From: string(cur.Status), Action: "update"}
	}
	if cur.Status == StatusActive {
		// An interval keeps the anchor Confirm gave it unless the edit
		// names another; an interval new to an active task starts now.
		if s.Trigger.Every > 0 && s.Trigger.Start.IsZero() && cur.Trigger.Every > 0 {
			s.Trigger.Start = cur.Trigger.Start
		}
		s = anchor(s, now)
	}
	if cur.Status == StatusActive || !s.Trigger.At.Equal(cur.Trigger.At) {
		if err := m.checkTimes(s, now); err != nil {
			return Task{}, err
		}
	}
	if err := m.checkChain(ctx, tenant, id, s.Then); err != nil {
		return Task{}, err
	}
	next := cur
	next.Spec, next.UpdatedAt = s, now
	m.recordScopes(ctx, &next)
	var entry *ScheduleEntry
	if cur.Status == StatusActive {
		entry = m.entry(next, now)
		// The index must never be later than the true next fire: put the
		// earlier of the old and the new entry until the task is stored.
		if entry != nil {
			early := *entry
			if old, err := m.store.Next(ctx, tenant, id); err == nil && old.Due.Before(early.Due) {
				early = old
			}
			if err := m.store.SetNext(ctx, early); err != nil {
				return Task{}, err
			}
		}
	}
	v, err := m.store.UpdateTask(ctx, next)
	if err != nil {
		if vigil.ErrorCode(err) == vigil.Conflict {
			return Task{}, staleVersion(id, cur.Version, 0)
		}
		return Task{}, err
	}
	next.Version = v
	if cur.Status == StatusActive {
		if err := m.setNext(ctx, next, entry); err != nil {
			return Task{}, err
		}
	}
	m.event(ctx, next, "", string(cur.Status), string(next.Status))
	return m.withNext(ctx, next)
}

func staleVersion(id string, have, stored int64) error {
	if stored == 0 {
		return &vigil.Error{Code: vigil.Conflict, Field: "version", Message: fmt.Sprintf("task %s changed since version %d; read it again", id, have)}
	}
	return &vigil.Error{Code: vigil.Conflict, Field: "version", Message: fmt.Sprintf("task %s is at version %d, not %d; read it again", id, stored, have)}
}

// setNext makes e the task's entry, or clears it when e is nil.
func (m *Manager) setNext(ctx context.Context, t Task, e *ScheduleEntry) error {
	if e == nil {
		return m.store.ClearNext(ctx, t.Tenant, t.ID)
	}
	return m.store.SetNext(ctx, *e)
}

// entry returns t's schedule entry for its first slot after now, or nil if
// it has none.
func (m *Manager) entry(t Task, now time.Time) *ScheduleEntry {
	slot, ok := t.Trigger.Next(now)
	if !ok {
		return nil
	}
	return &ScheduleEntry{
		Tenant: t.Tenant, TaskID: t.ID, Priority: t.Priority,
		Slot: slot, Due: t.Trigger.DueAt(t.ID, slot),
	}
}

// anchor gives an interval trigger without a start the start now (whole
// seconds), so that "every 15m" counts from when the task went live.
func anchor(s Spec, now time.Time) Spec {
	if s.Trigger.Every > 0 && s.Trigger.Start.IsZero() {
		s.Trigger.Start = now.Truncate(time.Second)
	}
	return s
}

// checkTimes checks what needs the clock: a one-shot time still to come.
func (m *Manager) checkTimes(s Spec, now time.Time) error {
	if !s.Trigger.At.IsZero() && !s.Trigger.At.After(now) {
		return vigil.FieldError("trigger.at", "%s is in the past", s.Trigger.At.UTC().Format(time.RFC3339))
	}
	return nil
}

// maxChainWalk bounds the tasks a cycle check reads.
const maxChainWalk = 1000

// checkChain checks that every task in then exists in the tenant and that
// task id with these successors closes no cycle. A concurrent update of
// another task in the chain can still close one; the scheduler bounds
// chain depth for that case.
func (m *Manager) checkChain(ctx context.Context, tenant, id string, then []string) error {
	succ := map[string][]string{id: then}
	for i, next := range then {
		if next == id {
			return vigil.FieldError("then", "cycle %s → %s", id, id)
		}
		t, err := m.edit(ctx).Task(ctx, tenant, next)
		switch vigil.ErrorCode(err) {
		case vigil.NotFound:
			return vigil.FieldError(fmt.Sprintf("then.%d", i), "no task %s", next)
		case vigil.Forbidden: // it may read the task, not start its runs
			return vigil.FieldError(fmt.Sprintf("then.%d", i), "task %s is another user's", next)
		}
		if err != nil {
			return err
		}
		succ[next] = t.Then
	}
	// Depth-first from id, reading successors as needed; a path back to a
	// task on the stack is a cycle.
	var path []string
	onPath := map[string]bool{}
	done := map[string]bool{}
	var walk func(string) ([]string, error)
	walk = func(at string) ([]string, error) {
		if onPath[at] {
			i := 0
			for path[i] != at {
				i++
			}
			return append(append([]string(nil), path[i:]...), at), nil
		}
		if done[at] {
			return nil, nil
		}
		if len(done)+len(path) > maxChainWalk {
			return nil, vigil.FieldError("then", "chain longer than %d tasks", maxChainWalk)
		}
		nexts, ok := succ[at]
		if !ok {
			t, err := m.view(ctx).Task(ctx, tenant, at)
			switch {
			case vigil.ErrorCode(err) == vigil.NotFound:
				nexts = nil // a deleted task ends its chain
			case err != nil:
				return nil, err
			default:
				nexts = t.Then
			}
			succ[at] = nexts
		}
		path = append(path, at)
		onPath[at] = true
		for _, n := range nexts {
			if c, err := walk(n); c != nil || err != nil {
				return c, err
			}
		}
		path = path[:len(path)-1]
		onPath[at] = false
		done[at] = true
		return nil, nil
	}
	c, err := walk(id)
	if err != nil {
		return err
	}
	if c != nil {
		return vigil.FieldError("then", "cycle %s", strings.Join(c, " → "))
	}
	return nil
}

// Confirm activates a draft: draft → active. The task's next fire time is
// computed from now and written to the schedule index (before the task
// turns active, so a crash between the two leaves an entry the scheduler
// drops, never an active task without one). A one-shot time already past
// is a vigil.Invalid error naming trigger.at.
func (m *Manager) Confirm(ctx context.Context, id string) (Task, error) {
	return m.transition(ctx, id, "confirm", StatusDraft, StatusActive, func(t *Task, now time.Time) error {
		t.Spec = anchor(t.Spec, now)
		if err := t.Spec.Validate(); err != nil {
			return err
		}
		if err := m.checkTimes(t.Spec, now); err != nil {
			return err
		}
		if err := m.checkChain(ctx, t.Tenant, t.ID, t.Then); err != nil {
			return err
		}
		m.recordScopes(ctx, t)
		return nil
	})
}

// Pause stops an active task: active → paused. Its schedule entry is
// removed; runs already created go on.
func (m *Manager) Pause(ctx context.Context, id string) (Task, error) {
	return m.transition(ctx, id, "pause", StatusActive, StatusPaused, nil)
}

// Resume restarts a paused task: paused → active. Its next fire time is
// computed from now: slots that passed while it was paused do not fire.
func (m *Manager) Resume(ctx context.Context, id string) (Task, error) {
	return m.transition(ctx, id, "resume", StatusPaused, StatusActive, func(t *Task, now time.Time) error {
		t.Spec = anchor(t.Spec, now) // an interval set while paused starts now
		m.recordScopes(ctx, t)
		if t.Kind == KindOneShot {
			return m.checkTimes(t.Spec, now)
		}
		return nil
	})
}

// Archive puts a task away for good: draft, active or paused → archived.
// It never fires again and cannot be changed, only deleted.
func (m *Manager) Archive(ctx context.Context, id string) (Task, error) {
	return m.transition(ctx, id, "archive", "", StatusArchived, nil)
}

// transition carries out action: it moves task id from status from (any
// status when from is empty) to status to, if the state machine allows.
// prepare, when set, checks and adjusts the task read from the store (it
// runs again if a concurrent write forces a re-read). Entering active
// writes the schedule entry before the task; leaving it clears the entry
// after.
func (m *Manager) transition(ctx context.Context, id, action string, from, to Status, prepare func(*Task, time.Time) error) (Task, error) {
	tenant, err := scope(ctx, "task", id)
	if err != nil {
		return Task{}, err
	}
	limit := 0
	if to == StatusActive && m.maxActive != nil {
		limit = m.maxActive(tenant)
	}
	if limit > 0 {
		mu := &m.activating[tenantStripe(tenant, len(m.activating))]
		mu.Lock()
		defer mu.Unlock()
		if m.lockTenant != nil {
			unlock, err := m.lockTenant(ctx, tenant)
			if err != nil {
				return Task{}, fmt.Errorf("tasks: lock tenant %s to count its active tasks: %w", tenant, err)
			}
			defer unlock()
		}
	}
	for range casAttempts {
		t, err := m.edit(ctx).Task(ctx, tenant, id)
		if err != nil {
			return Task{}, err
		}
		was := t.Status
		if (from != "" && was != from) || !was.CanGo(to) {
			return Task{}, &TransitionError{What: "task", ID: id, From: string(was), To: string(to), Action: action}
		}
		now := m.now().UTC()
		if prepare != nil {
			if err := prepare(&t, now); err != nil {
				return Task{}, err
			}
		}
		if limit > 0 {
			if err := m.checkActive(ctx, tenant, id, action, limit); err != nil {
				return Task{}, err
			}
		}
		t.Status, t.UpdatedAt = to, now
		var entry *ScheduleEntry
		if to == StatusActive {
			if entry = m.entry(t, now); entry != nil {
				if err := m.store.SetNext(ctx, *entry); err != nil {
					return Task{}, err
				}
			}
		}
		v, err := m.store.UpdateTask(ctx, t)
		if vigil.ErrorCode(err) == vigil.Conflict {
			continue // someone else changed the task: read it again
		}
		if err != nil {
			return Task{}, err
		}
		t.Version = v
		if to != StatusActive || entry == nil {
			if err := m.store.ClearNext(ctx, tenant, id); err != nil {
				return Task{}, err
			}
		}
		m.event(ctx, t, "", string(was), string(to))
		return m.withNext(ctx, t)
	}
	return Task{}, vigil.Errorf(vigil.Conflict, "task %s is changing too often; try again", id)
}

// checkActive returns vigil.TooMany, naming the limit, when the tenant
// already has limit active tasks, so that activating task id would pass
// its MaxActiveTasks. It counts through the Store's list of the tenant's
// active tasks, reading at most limit of them.
//
// The count and the activation that follows are not one store step, so
// the Manager serializes a tenant's activations: within this process, and
// across instances with Options.LockTenant (Redis mode). Without it, two
// instances confirming at the same moment may each take the last place.
func (m *Manager) checkActive(ctx context.Context, tenant, id, action string, limit int) error {
	n := 0
	f := TaskFilter{Status: StatusActive, Limit: min(limit, MaxListLimit)}
	for {
		page, err := m.store.ListTasks(ctx, tenant, f)
		if err != nil {
			return fmt.Errorf("tasks: count the active tasks of %s: %w", tenant, err)
		}
		n += len(page.Tasks)
		if n >= limit {
			break
		}
		if page.Next == "" {
			return nil
		}
		f.After = page.Next
	}
	noun := "tasks"
	if limit == 1 {
		noun = "task"
	}
	return vigil.Errorf(vigil.TooMany, "cannot %s task %s: tenant %s is at its limit of %d active %s; pause or archive one first",
		action, id, tenant, limit, noun)
}

// tenantStripe is the index, below n, of tenant's activation lock.
func tenantStripe(tenant string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(tenant))
	return int(h.Sum32() % uint32(n))
}

// Delete removes the task, its runs and its schedule entry, in any state.
// Its thread stays, with a last task_status event whose to is "deleted".
// Runs under way when it is deleted find their run gone at their next
// update and stop.
func (m *Manager) Delete(ctx context.Context, id string) error {
	tenant, err := scope(ctx, "task", id)
	if err != nil {
		return err
	}
	t, err := m.edit(ctx).Task(ctx, tenant, id)
	if err != nil {
		return err
	}
	if err := m.store.DeleteTask(ctx, tenant, id); err != nil {
		return err
	}
	m.event(ctx, t, "", string(t.Status), "deleted")
	return nil
}

// RunNow creates a manual run of a draft, active or paused task, queued
// with the task's current Spec and version and a slot of now (to the
// millisecond; a later millisecond if another run already took it). An
// archived task is a *TransitionError.
func (m *Manager) RunNow(ctx context.Context, id string) (Run, error) {
	tenant, err := scope(ctx, "task", id)
	if err != nil {
		return Run{}, err
	}
	t, err := m.edit(ctx).Task(ctx, tenant, id)
	if err != nil {
		return Run{}, err
	}
	if t.Status == StatusArchived {
		return Run{}, &TransitionError{What: "task", ID: id, From: string(t.Status), Action: "run"}
	}
	return m.createNow(ctx, t, Run{
		Tenant: tenant, TaskID: id, TaskVersion: t.Version, Spec: t.Spec, Cause: CauseManual, Status: RunQueued,
	})
}

// CancelRun cancels a run that has not finished: queued, running,
// retrying or waiting_input → cancelled. A running run stops at its
// worker's next update. A finished run is a *TransitionError.
func (m *Manager) CancelRun(ctx context.Context, id string) (Run, error) {
	tenant, err := scope(ctx, "run", id)
	if err != nil {
		return Run{}, err
	}
	for range casAttempts {
		r, err := m.edit(ctx).Run(ctx, tenant, id)
		if err != nil {
			return Run{}, err
		}
		from := r.Status
		if err := CheckRun(id, from, RunCancelled); err != nil {
			return Run{}, err
		}
		now := m.now().UTC()
		r.Status, r.UpdatedAt, r.FinishedAt = RunCancelled, now, now
		err = m.store.UpdateRun(ctx, r, from)
		if vigil.ErrorCode(err) == vigil.Conflict {
			continue // a worker moved it: look again
		}
		if err != nil {
			return Run{}, err
		}
		if t, err := m.view(ctx).Task(ctx, tenant, r.TaskID); err == nil {
			m.event(ctx, t, r.ID, string(from), string(RunCancelled))
		}
		return r, nil
	}
	return Run{}, vigil.Errorf(vigil.Conflict, "run %s is changing too often; try again", id)
}

// GetRun returns the tenant's run with its checkpoints.
func (m *Manager) GetRun(ctx context.Context, id string) (Run, error) {
	tenant, err := scope(ctx, "run", id)
	if err != nil {
		return Run{}, err
	}
	return m.view(ctx).Run(ctx, tenant, id)
}

// ListRuns returns a page of the task's runs, newest first. A zero
// f.Limit means DefaultLimit; it is capped at MaxLimit. A task that does
// not exist in the tenant is vigil.NotFound.
func (m *Manager) ListRuns(ctx context.Context, f RunFilter) (RunPage, error) {
	tenant, err := scope(ctx, "task", f.TaskID)
	if err != nil {
		return RunPage{}, err
	}
	if _, err := m.view(ctx).Task(ctx, tenant, f.TaskID); err != nil {
		return RunPage{}, err
	}
	if f.Limit, err = limit(f.Limit); err != nil {
		return RunPage{}, err
	}
	return m.store.ListRuns(ctx, tenant, f)
}

// createRun stores r, queued, with its task_status event (→ queued) on t's
// thread before the run reaches the queue, so that a worker's queued →
// running never comes first on the thread.
func (m *Manager) createRun(ctx context.Context, t Task, r Run) error {
	announce := func() { m.event(ctx, t, r.ID, "", string(RunQueued)) }
	if d, ok := m.store.(*DispatchStore); ok {
		_, err := d.createRunAnnounced(ctx, r, announce)
		return err
	}
	if err := m.store.CreateRun(ctx, r); err != nil {
		return err
	}
	announce()
	return nil
}

// event appends a task_status event for a change of task t (or of its run
// runID) to the task's thread, with the request's trace id. The change it
// reports is already stored, so the append outlives a cancelled request,
// and a failure is logged rather than returned.
func (m *Manager) event(ctx context.Context, t Task, runID, from, to string) {
	ev, err := streams.NewEvent(streams.TaskStatus{TaskID: t.ID, RunID: runID, From: from, To: to})
	if err == nil {
		ev.TaskID, ev.RunID, ev.TraceID, ev.TS = t.ID, runID, vigil.TraceID(ctx), m.now().UTC()
		_, err = m.log.Append(context.WithoutCancel(ctx), t.Tenant, t.ThreadID, []streams.Event{ev})
	}
	if err != nil {
		m.logger.ErrorContext(ctx, "tasks: task_status event not appended", "task", t.ID, "run", runID, "from", from, "to", to, "err", err)
	}
}

package tasks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/toolsregistry"
)

// RunError is an error of an attempt with its retry class. Executors
// return one (through Transient, Temporary or Permanent) when they know
// the class; Classify guesses the class of any other error.
type RunError struct {
	Class ErrorClass
	// RetryAfter, when positive, is the least time a temporary error asks
	// to wait (a rate limit's refill).
	RetryAfter time.Duration
	Err        error
}

// Error returns the underlying error's text.
func (e *RunError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *RunError) Unwrap() error { return e.Err }

// Transient marks err as transient: retried at once.
func Transient(err error) error { return &RunError{Class: ErrorTransient, Err: err} }

// Temporary marks err as temporary: retried after a backoff of at least
// after.
func Temporary(err error, after time.Duration) error {
	return &RunError{Class: ErrorTemporary, RetryAfter: after, Err: err}
}

// Permanent marks err as permanent: the run fails at once.
func Permanent(err error) error { return &RunError{Class: ErrorPermanent, Err: err} }

// Classify returns the retry class of an attempt's error and the least
// wait it asks for:
//
//   - a *RunError: its class;
//   - a deadline that passed: temporary;
//   - a tool error (*toolsregistry.Error) or a vigil error by code: rate
//     limited (TooMany), a breaker open (RetryAfter set) and a tool that
//     timed out are temporary; other unavailable tools are transient;
//     invalid arguments, missing tools, missing scopes (Invalid,
//     NotFound, Forbidden, Unauthorized, Conflict) are permanent;
//   - anything else: transient.
func Classify(err error) (ErrorClass, time.Duration) {
	var re *RunError
	if errors.As(err, &re) {
		return re.Class, re.RetryAfter
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrorTemporary, 0
	}
	var te *toolsregistry.Error
	if errors.As(err, &te) {
		switch {
		case te.Code == vigil.TooMany || te.RetryAfter > 0:
			return ErrorTemporary, te.RetryAfter
		case te.Code == vigil.Unavailable && timedOut(te):
			return ErrorTemporary, 0
		}
	}
	var ve *vigil.Error
	if errors.As(err, &ve) {
		switch ve.Code {
		case vigil.Invalid, vigil.NotFound, vigil.Forbidden, vigil.Unauthorized, vigil.Conflict:
			return ErrorPermanent, 0
		case vigil.TooMany:
			return ErrorTemporary, 0
		}
	}
	return ErrorTransient, 0
}

// timedOut reports whether a tool error is a timeout. The registry reports
// timeouts only in words ("… timed out after 30s"); a Timeout field on
// toolsregistry.Error would make this exact.
func timedOut(te *toolsregistry.Error) bool {
	var to interface{ Timeout() bool }
	if errors.As(te.Err, &to) && to.Timeout() {
		return true
	}
	return strings.Contains(te.Message, "timed out")
}

// RetryPolicy says how often and when a failed attempt is retried. A run
// has at most max(Transient, len(Backoff)) retries in all, whatever their
// classes: after attempt n fails, a transient error retries at once if
// n <= Transient, a temporary one after Backoff[n-1] (plus jitter) if
// n <= len(Backoff); else, or for a permanent error, the run fails.
type RetryPolicy struct {
	// Transient is how many times a transient error is retried at once;
	// default 3. A negative value means none.
	Transient int
	// Backoff are the waits before the retries of temporary errors;
	// default 10s, 20s, 40s.
	Backoff []time.Duration
	// Jitter adds up to this fraction of a backoff at random, so that
	// runs limited together do not retry together; default 0.2. A
	// negative value means none.
	Jitter float64
}

// DefaultBackoff is the default RetryPolicy.Backoff.
var DefaultBackoff = []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Transient == 0 {
		p.Transient = 3
	}
	if p.Backoff == nil {
		p.Backoff = DefaultBackoff
	}
	if p.Jitter == 0 {
		p.Jitter = 0.2
	}
	return p
}

// decide returns what to do after attempt n failed with class: retry (at
// once when wait is 0) or not.
func (p RetryPolicy) decide(n int, class ErrorClass, after time.Duration) (retry bool, wait time.Duration) {
	switch class {
	case ErrorTransient:
		return n <= p.Transient, 0
	case ErrorTemporary:
		if n < 1 || n > len(p.Backoff) {
			return false, 0
		}
		d := p.Backoff[n-1]
		if p.Jitter > 0 {
			d += time.Duration(rand.Float64() * p.Jitter * float64(d))
		}
		return true, max(d, after, time.Millisecond)
	default:
		return false, 0
	}
}

// Retry replays a failed run (a dead letter) as a new run with cause
// retry and Parent naming the failed one. The new run does what the failed
// one did (its Spec, at its task version), with the slots in slots laid
// over its slots; the spec must still validate. Only a failed run can be
// retried (else a *TransitionError); its task must exist and not be
// archived. The run is queued with a slot of now, like RunNow's; it reaches
// the workers when the Manager's store enqueues it (DispatchStore).
func (m *Manager) Retry(ctx context.Context, runID string, slots map[string]any) (Run, error) {
	tenant, err := scope(ctx, "run", runID)
	if err != nil {
		return Run{}, err
	}
	failed, err := m.view(ctx).Run(ctx, tenant, runID)
	if err != nil {
		return Run{}, err
	}
	if failed.Status != RunFailed {
		return Run{}, &TransitionError{What: "run", ID: runID, From: string(failed.Status), Action: "retry"}
	}
	t, err := m.view(ctx).Task(ctx, tenant, failed.TaskID)
	if err != nil {
		return Run{}, err
	}
	if t.Status == StatusArchived {
		return Run{}, &TransitionError{What: "task", ID: t.ID, From: string(t.Status), Action: "retry a run of"}
	}
	spec := failed.Spec
	if len(slots) > 0 {
		merged := maps.Clone(spec.Slots)
		if merged == nil {
			merged = map[string]any{}
		}
		maps.Copy(merged, slots)
		spec.Slots = merged
		if err := spec.Validate(); err != nil {
			return Run{}, err
		}
	}
	r := Run{
		Tenant: tenant, TaskID: t.ID, TaskVersion: failed.TaskVersion, Spec: spec,
		Cause: CauseRetry, Parent: failed.ID, Status: RunQueued,
	}
	if r, err = m.createNow(ctx, t, r); err != nil {
		return Run{}, err
	}
	return r, nil
}

// createNow creates r, a run of t (its Spec, cause and links set), with a
// new id and a slot of now to the millisecond, a later millisecond if
// another run of the task holds that one, and its task_status event: the
// runs of RunNow, Retry and Ingest.
func (m *Manager) createNow(ctx context.Context, t Task, r Run) (Run, error) {
	now := m.now().UTC()
	slot := now.Truncate(time.Millisecond)
	for range 100 {
		r.ID, r.Slot, r.Due, r.CreatedAt, r.UpdatedAt = vigil.NewID("run_"), slot, slot, now, now
		err := m.createRun(ctx, t, r)
		if vigil.ErrorCode(err) == vigil.Conflict {
			slot = slot.Add(time.Millisecond)
			continue
		}
		if err != nil {
			return Run{}, err
		}
		return r, nil
	}
	return Run{}, vigil.Errorf(vigil.Conflict, "task %s: too many runs at once; try again", r.TaskID)
}

// maxDeadLetterScan bounds the runs one DeadLetters call reads.
const maxDeadLetterScan = 5000

// DeadLetters returns a page of the task's failed runs, newest first: the
// dead letters that Retry replays. A zero f.Limit means DefaultLimit. It
// reads the task's runs page by page and keeps the failed ones; after
// reading maxDeadLetterScan runs it returns what it found with a cursor to
// go on from, so a page may hold fewer runs than the limit while Next is
// not empty.
func (m *Manager) DeadLetters(ctx context.Context, f RunFilter) (RunPage, error) {
	tenant, err := scope(ctx, "task", f.TaskID)
	if err != nil {
		return RunPage{}, err
	}
	if _, err := m.view(ctx).Task(ctx, tenant, f.TaskID); err != nil {
		return RunPage{}, err
	}
	want, err := limit(f.Limit)
	if err != nil {
		return RunPage{}, err
	}
	out := RunPage{Runs: []Run{}}
	cursor, scanned := f.After, 0
	for len(out.Runs) < want && scanned < maxDeadLetterScan {
		// Ask for as many runs as are still wanted, so that the page never
		// overflows and the store's cursor stays at a page boundary.
		page, err := m.store.ListRuns(ctx, tenant, RunFilter{TaskID: f.TaskID, Limit: want - len(out.Runs), After: cursor})
		if err != nil {
			return RunPage{}, fmt.Errorf("tasks: dead letters of %s: %w", f.TaskID, err)
		}
		scanned += len(page.Runs)
		for _, r := range page.Runs {
			if r.Status == RunFailed {
				out.Runs = append(out.Runs, r)
			}
		}
		cursor = page.Next
		if cursor == "" {
			break
		}
	}
	out.Next = cursor
	return out, nil
}

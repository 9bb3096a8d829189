package tasks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Cause is why a run was created.
type Cause string

// The causes of a run.
const (
	// CauseSchedule: the scheduler fired a slot of the task's trigger.
	CauseSchedule Cause = "schedule"
	// CauseManual: a user asked to run the task now.
	CauseManual Cause = "manual"
	// CauseEvent: an ingested event woke a monitor.
	CauseEvent Cause = "event"
	// CauseChain: a run of a task naming this one in Then succeeded.
	CauseChain Cause = "chain"
	// CauseRetry: a user replayed a failed run (a dead letter).
	CauseRetry Cause = "retry"
)

// ErrorClass says how a failed attempt may be retried.
type ErrorClass string

// The error classes.
const (
	// ErrorTransient: retry at once, at most 3 times (a dropped connection).
	ErrorTransient ErrorClass = "transient"
	// ErrorTemporary: retry after a backoff (rate limits, timeouts).
	ErrorTemporary ErrorClass = "temporary"
	// ErrorPermanent: fail at once (invalid parameters).
	ErrorPermanent ErrorClass = "permanent"
)

// Run is one execution of a task for one slot. It carries a snapshot of
// the task's Spec at the version it fired with, so that an update to the
// task after the run was created does not change what the run does.
type Run struct {
	// ID is "run_" and 20 hex digits.
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	TaskID string `json:"task_id"`
	// TaskVersion is the task's Version when the run was created; Spec is
	// the task's Spec at that version.
	TaskVersion int64 `json:"task_version"`
	Spec        Spec  `json:"spec"`
	// Slot is the fire time the run is for: a slot of the trigger, or the
	// creation time (in whole milliseconds) for a manual, event, chain or
	// retry run. (TaskID, Slot) is unique per tenant; see IdempotencyKey.
	Slot time.Time `json:"slot"`
	// Due is when the run was due: Slot plus the trigger's jitter for a
	// scheduled run, else Slot. Lateness is start minus Due.
	Due time.Time `json:"due"`
	// Cause is why the run exists; Parent is the run that caused it, for
	// chain and retry runs.
	Cause  Cause  `json:"cause"`
	Parent string `json:"parent,omitempty"`
	// Attempt counts executions of the run: 0 while queued the first time,
	// 1 once a worker starts it, one more with each retry.
	Attempt int       `json:"attempt"`
	Status  RunStatus `json:"status"`
	// Checkpoints record the progress of a long run, one per finished
	// step, oldest first; a reclaimed run resumes after the last.
	Checkpoints []Checkpoint `json:"checkpoints,omitempty"`
	// Result is what a succeeded run produced: any JSON value.
	Result json.RawMessage `json:"result,omitempty"`
	// Error and ErrorClass describe the last failed attempt.
	Error      string     `json:"error,omitempty"`
	ErrorClass ErrorClass `json:"error_class,omitempty"`

	// Timings. CreatedAt is when the run was queued first; StartedAt when
	// its latest attempt started; FinishedAt when it reached a terminal
	// state; RetryAt when a retrying run is queued again.
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	RetryAt    time.Time `json:"retry_at,omitzero"`
}

// Checkpoint is the state of a long run after one of its steps.
type Checkpoint struct {
	// Step is the index of the finished step (0 for the first), or
	// MonitorReading (-1) for a monitor's reading of its source, taken
	// before its steps.
	Step int `json:"step"`
	// At is when the checkpoint was written.
	At time.Time `json:"at"`
	// State is what the executor needs to resume after Step: any JSON
	// value.
	State json.RawMessage `json:"state,omitempty"`
}

// IdempotencyKey returns the run's key: its task id and slot, as
// "tsk_…@2026-11-22T00:00:00.000Z". Two runs of one task for one slot
// cannot both exist (Store.CreateRun), and webhooks carry the key so that
// a receiver can drop a notification it already has.
func (r Run) IdempotencyKey() string { return IdempotencyKey(r.TaskID, r.Slot) }

// IdempotencyKey returns the key of task taskID's run for slot: the task id,
// "@", and the slot in UTC to the millisecond. Slots that differ by less
// than a millisecond share a key.
func IdempotencyKey(taskID string, slot time.Time) string {
	return taskID + "@" + slot.UTC().Format("2006-01-02T15:04:05.000Z")
}

// LastCheckpoint returns the newest checkpoint and whether there is one.
func (r Run) LastCheckpoint() (Checkpoint, bool) {
	if len(r.Checkpoints) == 0 {
		return Checkpoint{}, false
	}
	return r.Checkpoints[len(r.Checkpoints)-1], true
}

// Redacted returns a copy of r whose Spec shows no webhook secrets.
func (r Run) Redacted() Run {
	r.Spec = r.Spec.Redacted()
	return r
}

// RunTraceID returns the trace id of a run's events when the context
// carries none: 32 hex digits derived from the run id, so that every
// attempt and resumption of the run, on any worker, shares one trace.
func RunTraceID(runID string) string {
	h := sha256.Sum256([]byte("vigil.run\x00" + runID))
	return hex.EncodeToString(h[:16])
}

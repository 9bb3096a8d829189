package tasks

import (
	"errors"
	"fmt"
	"slices"

	"github.com/vigilhq/vigil"
)

// Status is a task's state.
type Status string

// The task states.
const (
	// StatusDraft is a task the user has not confirmed: it never fires.
	StatusDraft Status = "draft"
	// StatusActive is a confirmed task: it fires on its trigger.
	StatusActive Status = "active"
	// StatusPaused is a task the user stopped for now; Resume restarts it.
	StatusPaused Status = "paused"
	// StatusArchived is a task put away for good: it never fires again and
	// cannot change; it can only be deleted. Its runs and thread stay. A
	// user archives a task, and the Scheduler's sweep archives a task with
	// a one-shot time (Trigger.At) once that slot is dispatched: its work
	// is done (see Scheduler.Sweep).
	StatusArchived Status = "archived"
)

// RunStatus is a run's state.
type RunStatus string

// The run states.
const (
	// RunQueued: waiting in the queue for a worker.
	RunQueued RunStatus = "queued"
	// RunRunning: a worker executes it.
	RunRunning RunStatus = "running"
	// RunSucceeded: finished with a result (terminal).
	RunSucceeded RunStatus = "succeeded"
	// RunFailed: finished with an error that retrying did not or cannot
	// fix; it is a dead letter (terminal).
	RunFailed RunStatus = "failed"
	// RunRetrying: failed with a transient or temporary error and waits
	// for its next attempt.
	RunRetrying RunStatus = "retrying"
	// RunWaitingInput: the task agent asked the user a question and waits
	// for the answer.
	RunWaitingInput RunStatus = "waiting_input"
	// RunCancelled: stopped by the user (terminal).
	RunCancelled RunStatus = "cancelled"
)

// taskTransitions is the task state machine: the states each state may go
// to. A task is created as draft (there is no "from" for creation), and
// Delete removes a task in any state without a transition.
//
//	draft    → active | archived
//	active   → paused | archived
//	paused   → active | archived
//	archived → (nothing)
var taskTransitions = map[Status][]Status{
	StatusDraft:    {StatusActive, StatusArchived},
	StatusActive:   {StatusPaused, StatusArchived},
	StatusPaused:   {StatusActive, StatusArchived},
	StatusArchived: nil,
}

// runTransitions is the run state machine. A run is created as queued.
//
//	queued        → running | cancelled
//	running       → succeeded | failed | retrying | waiting_input | cancelled | queued
//	retrying      → queued | cancelled
//	waiting_input → queued | cancelled
//	succeeded, failed, cancelled → (nothing: terminal)
//
// It is the design's machine with three additions, each needed by a caller
// the design names: running → queued gives a run back to the queue when its
// worker shuts down gracefully after a checkpoint (the next worker resumes
// from that checkpoint); retrying → cancelled lets a user cancel a run that
// waits for its next attempt. A failed run is final: replaying a dead
// letter creates a new run with cause "retry" (Run.Parent names the failed
// one), so a run's history is never rewritten.
//
// Cancelling a running run is cooperative: its status becomes cancelled in
// the store, and the worker's next compare-and-set from running fails, which
// tells it to stop.
var runTransitions = map[RunStatus][]RunStatus{
	RunQueued:       {RunRunning, RunCancelled},
	RunRunning:      {RunSucceeded, RunFailed, RunRetrying, RunWaitingInput, RunCancelled, RunQueued},
	RunRetrying:     {RunQueued, RunCancelled},
	RunWaitingInput: {RunQueued, RunCancelled},
	RunSucceeded:    nil,
	RunFailed:       nil,
	RunCancelled:    nil,
}

// Valid reports whether s is one of the task states.
func (s Status) Valid() bool { _, ok := taskTransitions[s]; return ok }

// Valid reports whether s is one of the run states.
func (s RunStatus) Valid() bool { _, ok := runTransitions[s]; return ok }

// Terminal reports whether no transition leaves s: succeeded, failed,
// cancelled.
func (s RunStatus) Terminal() bool { return s.Valid() && len(runTransitions[s]) == 0 }

// CanGo reports whether a task may go from s to to.
func (s Status) CanGo(to Status) bool { return slices.Contains(taskTransitions[s], to) }

// CanGo reports whether a run may go from s to to.
func (s RunStatus) CanGo(to RunStatus) bool { return slices.Contains(runTransitions[s], to) }

// ErrIllegalTransition is what every illegal state change matches with
// errors.Is. The error itself is a *TransitionError.
var ErrIllegalTransition = errors.New("illegal transition")

// TransitionError is an illegal state change of a task or a run. It matches
// ErrIllegalTransition with errors.Is, and its chain holds a vigil.Conflict
// *vigil.Error with field "status", so that the edges answer 409 with a
// message naming both states.
type TransitionError struct {
	// What is "task" or "run"; ID is its id.
	What, ID string
	// From and To are the states, as strings of Status or RunStatus. To
	// is empty when the action changes no state (updating a task, running
	// it now).
	From, To string
	// Action is the operation refused, such as "confirm" or "update";
	// empty for a bare transition check.
	Action string
}

// Error says what was refused, naming the task or run and the states,
// prefixed by the field "status".
func (e *TransitionError) Error() string { return e.vigilError().Error() }

func (e *TransitionError) vigilError() *vigil.Error {
	var msg string
	switch {
	case e.Action == "":
		msg = fmt.Sprintf("%s %s cannot go from %s to %s", e.What, e.ID, e.From, e.To)
	default:
		msg = fmt.Sprintf("cannot %s %s %s: it is %s", e.Action, e.What, e.ID, e.From)
		if e.To != "" && !e.legal() {
			msg += fmt.Sprintf(" (%s → %s is not a legal transition)", e.From, e.To)
		}
	}
	return &vigil.Error{Code: vigil.Conflict, Field: "status", Message: msg}
}

// legal reports whether the tables allow From → To: an Action may be
// refused for a legal pair (Resume on a draft).
func (e *TransitionError) legal() bool {
	if e.What == "run" {
		return RunStatus(e.From).CanGo(RunStatus(e.To))
	}
	return Status(e.From).CanGo(Status(e.To))
}

// Unwrap returns ErrIllegalTransition and the vigil.Conflict error.
func (e *TransitionError) Unwrap() []error {
	return []error{ErrIllegalTransition, e.vigilError()}
}

// CheckTask returns a *TransitionError unless task id may go from from to
// to.
func CheckTask(id string, from, to Status) error {
	if from.CanGo(to) {
		return nil
	}
	return &TransitionError{What: "task", ID: id, From: string(from), To: string(to)}
}

// CheckRun returns a *TransitionError unless run id may go from from to
// to.
func CheckRun(id string, from, to RunStatus) error {
	if from.CanGo(to) {
		return nil
	}
	return &TransitionError{What: "run", ID: id, From: string(from), To: string(to)}
}

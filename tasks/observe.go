package tasks

import "time"

// Observer is told what the Scheduler and the Workers do, for metrics:
// slots fired, attempts ended, retries and dead letters. It only listens:
// nothing it does changes a run.
//
// The Scheduler and the Workers call it synchronously, from many
// goroutines at once, on their hot paths: implementations must be safe for
// concurrent use, and fast (count, don't do I/O). An implementation may
// embed NopObserver so that it keeps compiling when methods are added.
type Observer interface {
	// Fired: the scheduler created the run of a slot, of priority p,
	// lateness after the slot was due (its pass's now minus the run's Due;
	// zero or more). A slot another scheduler fired first, or one the skip
	// policy dropped, is not reported.
	Fired(p Priority, lateness time.Duration)
	// Finished: one attempt (one Executor.Execute call) ended with outcome
	// after took, on the worker's clock.
	Finished(outcome AttemptOutcome, took time.Duration)
	// Retried: a failed attempt of class is retried, at once or after a
	// backoff. Finished(AttemptRetried) reported the attempt already.
	Retried(class ErrorClass)
	// DeadLettered: a run was marked failed for good, after a last error
	// of class: a permanent error, retries used up, or a run that crashed
	// its workers again and again (permanent).
	DeadLettered(class ErrorClass)
}

// AttemptOutcome is how one attempt of a run ended.
type AttemptOutcome string

// The attempt outcomes.
const (
	// AttemptSucceeded: the executor returned a result.
	AttemptSucceeded AttemptOutcome = "succeeded"
	// AttemptFailed: the executor failed and the run is not retried: the
	// worker marks it failed, a dead letter (DeadLettered follows once
	// that is stored).
	AttemptFailed AttemptOutcome = "failed"
	// AttemptRetried: the executor failed and the run is retried.
	AttemptRetried AttemptOutcome = "retried"
	// AttemptYielded: the worker is stopping and gave the run back to the
	// queue, to resume after its last checkpoint.
	AttemptYielded AttemptOutcome = "yielded"
	// AttemptCancelled: the run was cancelled or deleted while it ran.
	AttemptCancelled AttemptOutcome = "cancelled"
	// AttemptLost: the worker lost the run's lease (another worker took it
	// over) or died; the run's fate is another worker's.
	AttemptLost AttemptOutcome = "lost"
)

// AttemptOutcomes lists every AttemptOutcome.
var AttemptOutcomes = []AttemptOutcome{
	AttemptSucceeded, AttemptFailed, AttemptRetried, AttemptYielded, AttemptCancelled, AttemptLost,
}

// ErrorClasses lists every ErrorClass.
var ErrorClasses = []ErrorClass{ErrorTransient, ErrorTemporary, ErrorPermanent}

// NopObserver is an Observer that does nothing: the default of
// WorkerOptions and SchedulerOptions.
type NopObserver struct{}

// Fired implements Observer.
func (NopObserver) Fired(Priority, time.Duration) {}

// Finished implements Observer.
func (NopObserver) Finished(AttemptOutcome, time.Duration) {}

// Retried implements Observer.
func (NopObserver) Retried(ErrorClass) {}

// DeadLettered implements Observer.
func (NopObserver) DeadLettered(ErrorClass) {}

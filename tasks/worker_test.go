package tasks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// failing registers a tool that fails its first n calls with err (all of
// them for n < 0) and then answers "ok".
func (r *rig) failing(t *testing.T, name string, n int, err error, mod ...func(*toolsregistry.Tool)) *atomic.Int32 {
	var calls atomic.Int32
	r.tool(t, name, func(context.Context, json.RawMessage) (toolsregistry.Output, error) {
		if c := calls.Add(1); n < 0 || int(c) <= n {
			return toolsregistry.Output{}, err
		}
		return toolsregistry.Output{Value: json.RawMessage(`"ok"`)}, nil
	}, mod...)
	return &calls
}

// runOf creates, confirms and runs now a task of one step calling tool.
func (r *rig) runOf(t *testing.T, tool string) (tasks.Task, tasks.Run) {
	t.Helper()
	task := r.active(t, tasks.Spec{Title: tool + " task", Kind: tasks.KindLongRunning, Notify: r.hook(),
		Slots: map[string]any{"city": "Atlantis"},
		Steps: []tasks.Step{{Tool: tool, Args: map[string]any{"city": "{{city}}"}}}})
	run, err := r.m.RunNow(r.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	return task, run
}

var noFallback = func(tl *toolsregistry.Tool) { tl.Fallback = toolsregistry.FallbackNone }

// TestTransientRetriesAtOnce: a transient error is retried at once, at
// most three times.
func TestTransientRetriesAtOnce(t *testing.T) {
	r := newRig(t)
	r.worker(t, nil)
	r.failing(t, "flaky", 2, errors.New("connection reset by peer"))
	task, run := r.runOf(t, "flaky")
	got := r.waitRun(t, run.ID, tasks.RunSucceeded)
	r.waitUnleased(t)
	if got.Attempt != 3 || got.ErrorClass != tasks.ErrorTransient || !strings.Contains(got.Error, "connection reset") {
		t.Errorf("after two transient failures: attempt %d, class %q, error %q; want attempt 3, transient", got.Attempt, got.ErrorClass, got.Error)
	}
	want := ">queued queued>running running>retrying retrying>queued queued>running running>retrying retrying>queued queued>running running>succeeded"
	if s := strings.Join(r.runStatuses(t, task, run.ID), " "); s != want {
		t.Errorf("statuses %s\nwant       %s", s, want)
	}
	if n := len(r.events(t, task, streams.TypeToolError)); n != 2 {
		t.Errorf("%d tool_error events; want 2", n)
	}

	calls := r.failing(t, "broken", -1, errors.New("connection reset by peer"))
	task, run = r.runOf(t, "broken")
	got = r.waitRun(t, run.ID, tasks.RunFailed)
	if got.Attempt != 4 || calls.Load() != 4 || got.ErrorClass != tasks.ErrorTransient {
		t.Errorf("always failing: attempt %d, %d calls, class %q; want 4 attempts (3 retries), transient", got.Attempt, calls.Load(), got.ErrorClass)
	}
	waitFor(t, "the failure's webhook", func() bool { _, keys := r.hooks.received(); return keys[got.IdempotencyKey()] == 1 })
	notes, _ := r.hooks.received()
	if last := notes[len(notes)-1]; last.Status != tasks.RunFailed || last.ErrorClass != tasks.ErrorTransient {
		t.Errorf("failure notification %+v", last)
	}
	done := r.events(t, task, streams.TypeDone)
	if len(done) != 1 || !strings.Contains(string(done[0].Data), `"failed"`) || len(r.events(t, task, streams.TypeError)) != 1 {
		t.Errorf("the thread should end with an error and a failed done event: %v", done)
	}
}

// TestTransientRetriesNone: a negative RetryPolicy.Transient means no
// immediate retry: a transient error fails the run at its first attempt.
func TestTransientRetriesNone(t *testing.T) {
	r := newRig(t)
	r.worker(t, func(o *tasks.WorkerOptions) { o.Retry = tasks.RetryPolicy{Transient: -1} })
	calls := r.failing(t, "broken", -1, errors.New("connection reset by peer"))
	_, run := r.runOf(t, "broken")
	got := r.waitRun(t, run.ID, tasks.RunFailed)
	if got.Attempt != 1 || calls.Load() != 1 || got.ErrorClass != tasks.ErrorTransient {
		t.Errorf("attempt %d, %d calls, class %q; want 1 attempt, transient", got.Attempt, calls.Load(), got.ErrorClass)
	}
}

// TestTemporaryBacksOff: a temporary error (rate limited) puts the run in
// retrying with a backoff of 10s, 20s, 40s plus jitter, in the queue as a
// delayed item; after three retries the run fails.
func TestTemporaryBacksOff(t *testing.T) {
	r := newRig(t)
	r.worker(t, nil)
	limited := vigil.Errorf(vigil.TooMany, "upstream says slow down")
	r.failing(t, "limited", 1, limited, noFallback)
	_, run := r.runOf(t, "limited")
	got := r.waitRun(t, run.ID, tasks.RunRetrying)
	r.waitUnleased(t)
	if wait := got.RetryAt.Sub(r.clock.Now()); got.ErrorClass != tasks.ErrorTemporary || wait < 10*time.Second || wait > 12*time.Second {
		t.Errorf("retrying: class %q, retry in %s; want temporary, 10s to 12s", got.ErrorClass, wait)
	}
	if st, _ := r.q.Stats(r.ctx); st.Delayed != 1 || st.Leased != 0 {
		t.Errorf("queue while retrying: %+v; want the run delayed, no lease", st)
	}
	r.advance(9 * time.Second)
	if st, _ := r.q.Stats(r.ctx); st.Delayed != 1 {
		t.Errorf("9s later: %+v; want still delayed", st)
	}
	r.advance(3 * time.Second)
	if got = r.waitRun(t, run.ID, tasks.RunSucceeded); got.Attempt != 2 {
		t.Errorf("after the backoff: attempt %d; want 2", got.Attempt)
	}

	calls := r.failing(t, "throttled", -1, limited, noFallback)
	_, run = r.runOf(t, "throttled")
	for i, backoff := range tasks.DefaultBackoff {
		got := r.waitRun(t, run.ID, tasks.RunRetrying)
		r.waitUnleased(t)
		if wait := got.RetryAt.Sub(r.clock.Now()); wait < backoff || wait > backoff*12/10 {
			t.Errorf("retry %d: in %s; want %s plus up to 20%%", i+1, wait, backoff)
		}
		r.advance(got.RetryAt.Sub(r.clock.Now()))
		waitFor(t, "the next attempt", func() bool { return int(calls.Load()) == i+2 })
	}
	if got := r.waitRun(t, run.ID, tasks.RunFailed); got.Attempt != 4 || got.ErrorClass != tasks.ErrorTemporary {
		t.Errorf("after three backoffs: attempt %d, class %q; want 4, temporary", got.Attempt, got.ErrorClass)
	}
}

// TestRetryingKeepsItsBackoff: a run left retrying with its backoff still
// to run, ready in the queue (its worker died between the two), is given
// back for the rest of the wait by the worker that claims it, not started
// early.
func TestRetryingKeepsItsBackoff(t *testing.T) {
	r := newRig(t)
	_, run := r.runOf(t, "echo") // queued and enqueued; no worker yet
	retry := run
	retry.Status, retry.Attempt, retry.RetryAt, retry.UpdatedAt = tasks.RunRetrying, 1, r.clock.Now().Add(30*time.Second), r.clock.Now()
	if err := r.db.UpdateRun(r.ctx, retry, tasks.RunQueued); err != nil {
		t.Fatal(err)
	}
	r.worker(t, nil)
	waitFor(t, "the run to be given back for its backoff", func() bool { st, _ := r.q.Stats(r.ctx); return st.Delayed == 1 })
	if got, _ := r.db.Run(r.ctx, "acme", run.ID); got.Status != tasks.RunRetrying {
		t.Fatalf("status %s before the backoff passed; want retrying", got.Status)
	}
	r.advance(30 * time.Second)
	if got := r.waitRun(t, run.ID, tasks.RunSucceeded); got.Attempt != 2 {
		t.Errorf("attempt %d; want 2", got.Attempt)
	}
}

// TestPermanentFailsAtOnce: a permanent error (invalid parameters) fails
// the run at once; it is a dead letter, which Retry replays with changed
// slots.
func TestPermanentFailsAtOnce(t *testing.T) {
	r := newRig(t)
	r.worker(t, nil)
	var calls atomic.Int32
	r.tool(t, "weather", func(_ context.Context, args json.RawMessage) (toolsregistry.Output, error) {
		calls.Add(1)
		var in struct{ City string }
		_ = json.Unmarshal(args, &in)
		if in.City != "Paris" {
			return toolsregistry.Output{}, vigil.FieldError("city", "no such city %q", in.City)
		}
		return toolsregistry.Output{Value: json.RawMessage(`"sunny in Paris"`)}, nil
	})
	task, run := r.runOf(t, "weather")
	failed := r.waitRun(t, run.ID, tasks.RunFailed)
	if failed.Attempt != 1 || calls.Load() != 1 || failed.ErrorClass != tasks.ErrorPermanent || !strings.Contains(failed.Error, "no such city") {
		t.Errorf("invalid parameters: attempt %d, %d calls, class %q, error %q; want 1 attempt, permanent", failed.Attempt, calls.Load(), failed.ErrorClass, failed.Error)
	}
	if st := r.waitUnleased(t); st.Delayed+st.Ready[tasks.PriorityNormal] != 0 {
		t.Errorf("a failed run left a queue item: %+v", st)
	}

	// The dead-letter list, and a replay with another city.
	ok, err := r.m.RunNow(r.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	r.waitRun(t, ok.ID, tasks.RunFailed)
	dead, err := r.m.DeadLetters(r.ctx, tasks.RunFilter{TaskID: task.ID})
	if err != nil || len(dead.Runs) != 2 || dead.Next != "" {
		t.Fatalf("dead letters: %+v, %v; want the 2 failed runs", dead, err)
	}
	page1, err := r.m.DeadLetters(r.ctx, tasks.RunFilter{TaskID: task.ID, Limit: 1})
	if err != nil || len(page1.Runs) != 1 || page1.Next == "" {
		t.Fatalf("dead letters, limit 1: %+v, %v", page1, err)
	}
	if page2, err := r.m.DeadLetters(r.ctx, tasks.RunFilter{TaskID: task.ID, Limit: 1, After: page1.Next}); err != nil || len(page2.Runs) != 1 || page2.Runs[0].ID == page1.Runs[0].ID {
		t.Errorf("dead letters, page 2: %+v, %v", page2, err)
	}
	r.advance(time.Second)
	retry, err := r.m.Retry(r.ctx, run.ID, map[string]any{"city": "Paris"})
	if err != nil {
		t.Fatal(err)
	}
	if retry.Cause != tasks.CauseRetry || retry.Parent != run.ID || retry.Spec.Slots["city"] != "Paris" || retry.ID == run.ID {
		t.Errorf("retry run %+v", retry)
	}
	if got := r.waitRun(t, retry.ID, tasks.RunSucceeded); string(got.Result) != `{"outputs":["sunny in Paris"]}` {
		t.Errorf("replayed run result %s", got.Result)
	}
	// The worker's events of the replayed run (its text and done) carry the
	// run's trace id.
	var traced int
	for _, typ := range []string{streams.TypeText, streams.TypeDone} {
		for _, e := range r.events(t, task, typ) {
			if strings.Contains(string(e.Data), retry.ID) || e.TraceID == tasks.RunTraceID(retry.ID) {
				if e.TraceID != tasks.RunTraceID(retry.ID) {
					t.Errorf("%s event %s of run %s has trace %q, want %q", typ, e.ID, retry.ID, e.TraceID, tasks.RunTraceID(retry.ID))
				}
				traced++
			}
		}
	}
	if traced < 2 {
		t.Errorf("%d text and done events of run %s carry its trace, want both", traced, retry.ID)
	}
	if _, err := r.m.Retry(r.ctx, retry.ID, nil); !errors.Is(err, tasks.ErrIllegalTransition) {
		t.Errorf("Retry of a succeeded run: %v; want an illegal transition", err)
	}
	if _, err := r.m.Retry(r.ctx, run.ID, map[string]any{"bad name!": 1}); vigil.ErrorCode(err) != vigil.Invalid {
		t.Errorf("Retry with an invalid slot: %v", err)
	}
}

// TestClassify pins the classes of the registry's errors.
func TestClassify(t *testing.T) {
	r := newRig(t)
	r.tool(t, "slow", func(ctx context.Context, _ json.RawMessage) (toolsregistry.Output, error) {
		<-ctx.Done()
		return toolsregistry.Output{}, ctx.Err()
	}, func(tl *toolsregistry.Tool) { tl.Timeout = 20 * time.Millisecond })
	r.failing(t, "limited", -1, vigil.Errorf(vigil.TooMany, "slow down"), noFallback)
	r.failing(t, "down", -1, errors.New("boom"))
	r.failing(t, "picky", -1, vigil.FieldError("x", "bad"))
	for tool, want := range map[string]tasks.ErrorClass{
		"slow": tasks.ErrorTemporary, "limited": tasks.ErrorTemporary, "down": tasks.ErrorTransient,
		"picky": tasks.ErrorPermanent, "missing": tasks.ErrorPermanent,
	} {
		_, err := r.reg.Call(r.ctx, toolsregistry.Request{Tenant: "acme", Scopes: []string{"*"}, Tool: tool})
		if got, _ := tasks.Classify(err); got != want {
			t.Errorf("%s: %v is %s; want %s", tool, err, got, want)
		}
	}
	if c, after := tasks.Classify(tasks.Temporary(errors.New("x"), time.Minute)); c != tasks.ErrorTemporary || after != time.Minute {
		t.Errorf("Temporary: %s %s", c, after)
	}
	if c, _ := tasks.Classify(fmt.Errorf("wrapped: %w", tasks.Permanent(errors.New("x")))); c != tasks.ErrorPermanent {
		t.Errorf("wrapped Permanent: %s", c)
	}
}

// gate is a tool that blocks the calls whose name it holds until opened
// or until their context ends.
type gate struct {
	mu      sync.Mutex
	shut    map[string]chan struct{}
	entered map[string]chan struct{}
}

func newGate(names ...string) *gate {
	g := &gate{shut: map[string]chan struct{}{}, entered: map[string]chan struct{}{}}
	for _, n := range names {
		g.shut[n], g.entered[n] = make(chan struct{}), make(chan struct{})
	}
	return g
}

func (g *gate) open(name string) { close(g.shut[name]) }

func (g *gate) wait(t *testing.T, name string) {
	t.Helper()
	select {
	case <-g.entered[name]:
	case <-time.After(10 * time.Second):
		t.Fatalf("step %s never started", name)
	}
}

// handler wraps the rig's step tool.
func (g *gate) handler(r *rig) toolsregistry.HandlerFunc {
	return func(ctx context.Context, args json.RawMessage) (toolsregistry.Output, error) {
		var in struct{ Name string }
		_ = json.Unmarshal(args, &in)
		r.mu.Lock()
		r.called = append(r.called, in.Name)
		r.mu.Unlock()
		g.mu.Lock()
		shut, entered := g.shut[in.Name], g.entered[in.Name]
		if entered != nil {
			select {
			case <-entered:
			default:
				close(entered)
			}
		}
		g.mu.Unlock()
		if shut != nil {
			select {
			case <-shut:
			case <-ctx.Done():
				return toolsregistry.Output{}, ctx.Err()
			}
		}
		return toolsregistry.Output{Value: json.RawMessage(fmt.Sprintf(`"did %s"`, in.Name))}, nil
	}
}

// runGated runs the four-step task now, on the workers started already,
// with step held by a gate, and returns once the step has begun.
func (r *rig) runGated(t *testing.T, step string) (*gate, tasks.Task, tasks.Run) {
	t.Helper()
	g := newGate(step)
	r.tool(t, "gated", g.handler(r))
	task := r.active(t, fourSteps(r))
	run, err := r.m.RunNow(r.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	g.wait(t, step)
	return g, task, run
}

func fourSteps(r *rig) tasks.Spec {
	var steps []tasks.Step
	for _, n := range []string{"s1", "s2", "s3", "s4"} {
		steps = append(steps, tasks.Step{Tool: "gated", Args: map[string]any{"name": n}})
	}
	return tasks.Spec{Title: "four steps", Kind: tasks.KindLongRunning, Steps: steps, Notify: r.hook()}
}

func checkpointSteps(run tasks.Run) string {
	var s []string
	for _, cp := range run.Checkpoints {
		s = append(s, fmt.Sprint(cp.Step))
	}
	return strings.Join(s, ",")
}

// stopDuring stops w gracefully while step is held by g: the stop begins,
// then the step is let go, and stopDuring returns once Stop has.
func stopDuring(t *testing.T, w *tasks.Worker, g *gate, step string) {
	t.Helper()
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- w.Stop(ctx)
	}()
	<-w.Stopping()
	g.open(step)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// TestLongRunGracefulStopResumes: a worker stopped while a long run is in
// step 2 of 4 lets step 2 finish, checkpoints it, gives the run back and
// releases its lease; another worker resumes it at step 3.
func TestLongRunGracefulStopResumes(t *testing.T) {
	r := newRig(t)
	w1 := r.worker(t, nil)
	g, task, run := r.runGated(t, "s2")
	stopDuring(t, w1, g, "s2")
	got, _ := r.db.Run(r.ctx, "acme", run.ID)
	if got.Status != tasks.RunQueued || checkpointSteps(got) != "0,1" || got.Attempt != 0 {
		t.Fatalf("after a graceful stop in step 2: status %s, checkpoints [%s], attempt %d; want queued, [0,1], 0", got.Status, checkpointSteps(got), got.Attempt)
	}
	if st, _ := r.q.Stats(r.ctx); st.Leased != 0 || st.Ready[tasks.PriorityNormal] != 1 {
		t.Errorf("queue after the stop: %+v; want the run ready, no lease held", st)
	}

	r.worker(t, nil)
	done := r.waitRun(t, run.ID, tasks.RunSucceeded)
	r.waitUnleased(t)
	if calls := strings.Join(r.calls(), ","); calls != "s1,s2,s3,s4" {
		t.Errorf("steps called %s; want each once, s3 and s4 by the second worker", calls)
	}
	if checkpointSteps(done) != "0,1,2,3" || done.Attempt != 1 {
		t.Errorf("finished run: checkpoints [%s], attempt %d", checkpointSteps(done), done.Attempt)
	}
	if string(done.Result) != `{"outputs":["did s1","did s2","did s3","did s4"]}` {
		t.Errorf("result %s: the outputs of s1 and s2 come from the checkpoints", done.Result)
	}
	if want := ">queued queued>running running>queued queued>running running>succeeded"; strings.Join(r.runStatuses(t, task, run.ID), " ") != want {
		t.Errorf("statuses %v; want %s", r.runStatuses(t, task, run.ID), want)
	}
}

// TestGracefulStopInLastStepFinishes: a worker stopped while a long run is
// in its last step lets the step finish and finishes the run itself: there
// is nothing left for another worker to resume.
func TestGracefulStopInLastStepFinishes(t *testing.T) {
	r := newRig(t)
	w1 := r.worker(t, nil)
	g, task, run := r.runGated(t, "s4")
	stopDuring(t, w1, g, "s4")
	got, _ := r.db.Run(r.ctx, "acme", run.ID)
	if got.Status != tasks.RunSucceeded || checkpointSteps(got) != "0,1,2,3" || got.Attempt != 1 {
		t.Errorf("after a graceful stop in the last step: status %s, checkpoints [%s], attempt %d; want succeeded, [0,1,2,3], 1", got.Status, checkpointSteps(got), got.Attempt)
	}
	if want := ">queued queued>running running>succeeded"; strings.Join(r.runStatuses(t, task, run.ID), " ") != want {
		t.Errorf("statuses %v; want %s", r.runStatuses(t, task, run.ID), want)
	}
	if st, _ := r.q.Stats(r.ctx); st.Leased != 0 || st.Ready[tasks.PriorityNormal] != 0 {
		t.Errorf("queue after the stop: %+v; want it empty", st)
	}
}

// TestLongRunCrashResumes: a worker killed while a long run is in step 3
// of 4 (steps 1 and 2 checkpointed) leaves it running under a lease; after
// the lease runs out another worker reclaims it and resumes at step 3. The
// webhook is posted once.
func TestLongRunCrashResumes(t *testing.T) {
	r := newRig(t)
	ctx, kill := context.WithCancel(context.Background())
	w1 := r.workerCtx(t, ctx, nil)
	g, _, run := r.runGated(t, "s3")
	kill()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w1.Stop(stopCtx); err != nil { // waits for the killed worker's goroutines
		t.Fatal(err)
	}
	got, _ := r.db.Run(r.ctx, "acme", run.ID)
	if got.Status != tasks.RunRunning || checkpointSteps(got) != "0,1" {
		t.Fatalf("after the kill: %s with checkpoints [%s]; want running, [0,1]", got.Status, checkpointSteps(got))
	}
	if st, _ := r.q.Stats(r.ctx); st.Leased != 1 {
		t.Fatalf("queue after the kill: %+v; want the dead worker's lease", st)
	}

	g.open("s3")
	r.advance(31 * time.Second) // the 30s lease runs out
	r.worker(t, nil)
	done := r.waitRun(t, run.ID, tasks.RunSucceeded)
	if calls := strings.Join(r.calls(), ","); calls != "s1,s2,s3,s3,s4" {
		t.Errorf("steps called %s; want s3 again (killed mid-step) and s1, s2 once", calls)
	}
	if checkpointSteps(done) != "0,1,2,3" || done.Attempt != 1 {
		t.Errorf("finished run: checkpoints [%s], attempt %d", checkpointSteps(done), done.Attempt)
	}
	waitFor(t, "the webhook", func() bool { _, keys := r.hooks.received(); return keys[run.IdempotencyKey()] > 0 })
	if _, keys := r.hooks.received(); keys[run.IdempotencyKey()] != 1 {
		t.Errorf("webhook posted %d times", keys[run.IdempotencyKey()])
	}
}

// TestStopDeadlineRequeues: a step that outlasts Stop's deadline is
// cancelled; the run goes back to the queue as of its last checkpoint and
// its lease is released.
func TestStopDeadlineRequeues(t *testing.T) {
	r := newRig(t)
	w := r.worker(t, nil)
	g, _, run := r.runGated(t, "s2")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := r.db.Run(r.ctx, "acme", run.ID)
	if got.Status != tasks.RunQueued || checkpointSteps(got) != "0" {
		t.Errorf("after the deadline: %s, checkpoints [%s]; want queued, [0]", got.Status, checkpointSteps(got))
	}
	if st, _ := r.q.Stats(r.ctx); st.Leased != 0 || st.Ready[tasks.PriorityNormal] != 1 {
		t.Errorf("queue: %+v; want the run ready, no lease", st)
	}
	g.open("s2")
	r.worker(t, nil)
	r.waitRun(t, run.ID, tasks.RunSucceeded)
	if calls := strings.Join(r.calls(), ","); calls != "s1,s2,s2,s3,s4" {
		t.Errorf("steps called %s", calls)
	}
}

// TestCancelStopsRun: a user's cancel stops a running run at its next
// checkpoint; it is not marked anything else, and the step it stopped
// before is not announced on the thread.
func TestCancelStopsRun(t *testing.T) {
	r := newRig(t)
	r.worker(t, nil)
	g, task, run := r.runGated(t, "s2")
	if _, err := r.m.CancelRun(r.ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	g.open("s2")
	waitFor(t, "the queue to empty", func() bool {
		st, _ := r.q.Stats(r.ctx)
		return st.Leased == 0 && st.Ready[tasks.PriorityNormal] == 0
	})
	if got, _ := r.db.Run(r.ctx, "acme", run.ID); got.Status != tasks.RunCancelled {
		t.Errorf("status %s; want cancelled", got.Status)
	}
	if calls := strings.Join(r.calls(), ","); calls != "s1,s2" {
		t.Errorf("steps called after the cancel: %s", calls)
	}
	// Step 3 did not start (its checkpoint's write found the run
	// cancelled), so the thread does not announce it.
	var announced []string
	for _, e := range r.events(t, task, streams.TypeToolCall) {
		p, err := streams.Decode[streams.ToolCall](e)
		if err != nil {
			t.Fatal(err)
		}
		var in struct{ Name string }
		_ = json.Unmarshal(p.Args, &in)
		announced = append(announced, in.Name)
	}
	if got := strings.Join(announced, ","); got != "s1,s2" {
		t.Errorf("tool_call events on the thread for steps %s; want s1,s2", got)
	}
}

// TestTenantCap: with a per-tenant cap of 1, one tenant's runs execute one
// at a time while another tenant's run beside them.
func TestTenantCap(t *testing.T) {
	r := newRig(t)
	var mu sync.Mutex
	running, peak := map[string]int{}, map[string]int{}
	release := make(chan struct{})
	r.tool(t, "hold", func(ctx context.Context, args json.RawMessage) (toolsregistry.Output, error) {
		var in struct{ Tenant string }
		_ = json.Unmarshal(args, &in)
		mu.Lock()
		running[in.Tenant]++
		peak[in.Tenant] = max(peak[in.Tenant], running[in.Tenant])
		mu.Unlock()
		defer func() { mu.Lock(); running[in.Tenant]--; mu.Unlock() }()
		select {
		case <-release:
		case <-ctx.Done():
		}
		return toolsregistry.Output{Value: json.RawMessage(`"held"`)}, nil
	})
	r.worker(t, func(o *tasks.WorkerOptions) {
		o.Concurrency, o.TenantConcurrency, o.TenantWait = 4, 1, 10*time.Millisecond
	})
	var runs []tasks.Run
	for _, tenant := range []string{"acme", "acme", "acme", "globex"} {
		ctx := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: tenant, User: "u"})
		task, err := r.m.Create(ctx, tasks.Spec{Title: "hold", Kind: tasks.KindLongRunning,
			Steps: []tasks.Step{{Tool: "hold", Args: map[string]any{"tenant": tenant}}}})
		if err != nil {
			t.Fatal(err)
		}
		run, err := r.m.RunNow(ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run)
	}
	waitFor(t, "acme and globex to run side by side", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return running["acme"] == 1 && running["globex"] == 1
	})
	// The acme runs turned away wait TenantWait on the queue's clock:
	// let it pass a few times while the first holds.
	for range 3 {
		r.advance(20 * time.Millisecond)
		waitFor(t, "the turned-away runs to wait again", func() bool { st, _ := r.q.Stats(r.ctx); return st.Delayed == 2 })
	}
	close(release)
	for _, run := range runs {
		waitFor(t, "all runs", func() bool {
			r.advance(20 * time.Millisecond)
			got, err := r.db.Run(r.ctx, run.Tenant, run.ID)
			return err == nil && got.Status == tasks.RunSucceeded
		})
	}
	if peak["acme"] != 1 {
		t.Errorf("acme peaked at %d runs at once; want 1", peak["acme"])
	}
}

// TestTakeoverOverTenantCap: a run taken over from a worker that died
// while running it is not turned away at its tenant's cap (which would
// start its deliveries anew, out of MaxDeliveries' sight): it runs beside
// the tenant's run already executing.
func TestTakeoverOverTenantCap(t *testing.T) {
	r := newRig(t)
	_, dead := r.runOf(t, "echo")
	// The dead worker: it claimed the run with a 1s lease and started it.
	cs, err := r.q.Claim(r.ctx, "dead", 1, time.Second, 0)
	if err != nil || len(cs) != 1 || cs[0].RunID != dead.ID {
		t.Fatalf("claim as the dead worker: %v, %v", cs, err)
	}
	started := dead
	started.Status, started.Attempt, started.StartedAt = tasks.RunRunning, 1, r.clock.Now()
	if err := r.db.UpdateRun(r.ctx, started, tasks.RunQueued); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	entered := make(chan struct{})
	r.tool(t, "hold", func(ctx context.Context, _ json.RawMessage) (toolsregistry.Output, error) {
		close(entered)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return toolsregistry.Output{Value: json.RawMessage(`"held"`)}, nil
	})
	_, held := r.runOf(t, "hold")
	// A cap of one, and a lease that outlasts the advance below on the
	// rig's clock (renewed every third of it, in real time); the worker
	// looks for expired leases every half lease of real time.
	r.worker(t, func(o *tasks.WorkerOptions) { o.TenantConcurrency, o.Lease = 1, 4*time.Second })
	<-entered
	r.advance(2 * time.Second) // the dead worker's lease runs out
	done := r.waitRun(t, dead.ID, tasks.RunSucceeded)
	if done.Attempt != 1 {
		t.Errorf("the run taken over: attempt %d; want 1, resumed", done.Attempt)
	}
	if got, _ := r.db.Run(r.ctx, "acme", held.ID); got.Status != tasks.RunRunning {
		t.Errorf("the held run is %s; want it still running beside the one taken over", got.Status)
	}
}

// TestWebhookRetried: a webhook that answers 503 is retried and then
// delivered, signed, with the run's idempotency key.
func TestWebhookRetried(t *testing.T) {
	r := newRig(t)
	r.worker(t, nil)
	r.hooks.mu.Lock()
	r.hooks.fail = 2
	r.hooks.mu.Unlock()
	_, run := r.runOf(t, "echo")
	r.waitRun(t, run.ID, tasks.RunSucceeded)
	notes, keys := r.hooks.received()
	if len(notes) != 1 || keys[run.IdempotencyKey()] != 1 || notes[0].RunID != run.ID {
		t.Errorf("after two 503s: notes %+v keys %v; want one delivery", notes, keys)
	}
}

// TestWebhookGuarded: a webhook to a private address is refused by the
// guard; the run still succeeds, with a warning on its thread.
func TestWebhookGuarded(t *testing.T) {
	r := newRig(t)
	strict, err := tasks.NewNotifier(tasks.NotifierOptions{Backoff: []time.Duration{}})
	if err != nil {
		t.Fatal(err)
	}
	r.worker(t, func(o *tasks.WorkerOptions) { o.Notifier = strict })
	task, run := r.runOf(t, "echo")
	r.waitRun(t, run.ID, tasks.RunSucceeded)
	if _, keys := r.hooks.received(); len(keys) != 0 {
		t.Errorf("a guarded notifier reached 127.0.0.1: %v", keys)
	}
	warnings := r.events(t, task, streams.TypeWarning)
	if len(warnings) != 1 || !strings.Contains(string(warnings[0].Data), "webhook") {
		t.Errorf("warnings %v; want one about the webhook", warnings)
	}
}

// TestRateLimit: the worker starts at most Rate executions per second.
func TestRateLimit(t *testing.T) {
	r := newRig(t)
	r.worker(t, func(o *tasks.WorkerOptions) { o.Concurrency, o.Rate, o.Burst = 8, 20, 1 })
	task := r.active(t, tasks.Spec{Title: "quick", Kind: tasks.KindLongRunning,
		Steps: []tasks.Step{{Tool: "step", Args: map[string]any{"name": "x"}}}})
	start := time.Now()
	for range 5 {
		r.advance(time.Millisecond) // a slot of its own for each manual run
		if _, err := r.m.RunNow(r.ctx, task.ID); err != nil {
			t.Fatal(err)
		}
	}
	r.waitRuns(t, task.ID, 5, tasks.RunSucceeded)
	// 5 starts at 20/s with a burst of 1: at least 4 intervals of 50ms.
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Errorf("5 runs at 20 per second took %s; want at least 200ms", d)
	}
}

// TestRateLimitRetries: an immediate retry waits for the rate limiter
// like a first attempt: a run retried three times at once makes four
// attempts, at most 20 per second.
func TestRateLimitRetries(t *testing.T) {
	r := newRig(t)
	r.worker(t, func(o *tasks.WorkerOptions) { o.Rate, o.Burst = 20, 1 })
	calls := r.failing(t, "flaky", 3, errors.New("connection reset by peer"))
	start := time.Now()
	_, run := r.runOf(t, "flaky")
	got := r.waitRun(t, run.ID, tasks.RunSucceeded)
	// 4 attempts at 20/s with a burst of 1: at least 3 intervals of 50ms.
	if d := time.Since(start); got.Attempt != 4 || calls.Load() != 4 || d < 140*time.Millisecond {
		t.Errorf("attempt %d, %d calls in %s; want 4 attempts taking at least 150ms", got.Attempt, calls.Load(), d)
	}
}

// countingLimiter admits every attempt and counts them.
type countingLimiter struct{ n atomic.Int32 }

func (l *countingLimiter) Wait(context.Context) error { l.n.Add(1); return nil }

// TestLimiterPacesAttempts: WorkerOptions.Limiter, when set, replaces
// Rate: the worker asks it before each attempt, immediate retries
// included.
func TestLimiterPacesAttempts(t *testing.T) {
	r := newRig(t)
	lim := &countingLimiter{}
	r.worker(t, func(o *tasks.WorkerOptions) { o.Limiter, o.Rate = lim, 0.001 })
	r.failing(t, "flaky", 2, errors.New("connection reset by peer"))
	_, run := r.runOf(t, "flaky")
	got := r.waitRun(t, run.ID, tasks.RunSucceeded)
	if got.Attempt != 3 || lim.n.Load() != 3 {
		t.Errorf("attempt %d, the limiter asked %d times; want 3 and 3 (Rate's limiter, at one start in 1000s, would have held the retries)", got.Attempt, lim.n.Load())
	}
}

// twoWrites is a Store without tasks.ThreadedRunUpdater: the worker writes
// a run's update and its events one after the other.
type twoWrites struct{ tasks.Store }

// TestRunEventsOnThread: a run's events reach its thread in the order they
// were emitted, those emitted while a step runs without waiting for the
// step to end (they wait at most a flush interval for the run's next
// update), whether the store writes an update and its events in one step
// or in two.
func TestRunEventsOnThread(t *testing.T) {
	for _, c := range []struct {
		name  string
		store func(r *rig) tasks.Store
	}{
		{"OneWrite", func(r *rig) tasks.Store { return r.db }},
		{"TwoWrites", func(r *rig) tasks.Store { return twoWrites{r.db} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			g := newGate("s1")
			r.tool(t, "gated", g.handler(r))
			task := r.active(t, tasks.Spec{Title: "one step", Kind: tasks.KindOneShot, Trigger: tasks.Trigger{At: t0.Add(time.Hour)},
				Steps: []tasks.Step{{Tool: "gated", Args: map[string]any{"name": "s1"}}}})
			r.worker(t, func(o *tasks.WorkerOptions) { o.Store = c.store(r) })
			run, err := r.m.RunNow(r.ctx, task.ID)
			if err != nil {
				t.Fatal(err)
			}
			g.wait(t, "s1")
			// The step is blocked: its tool_call is on the thread all the same.
			deadline := time.Now().Add(5 * time.Second)
			for len(r.events(t, task, streams.TypeToolCall)) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("no tool_call event on the thread while the step runs")
				}
				time.Sleep(5 * time.Millisecond)
			}
			g.open("s1")
			r.waitRun(t, run.ID, tasks.RunSucceeded)
			if got := r.waitRunEvents(t, task, run.ID, oneStepEvents); got != oneStepEvents {
				t.Errorf("the run's events:\n got %s\nwant %s", got, oneStepEvents)
			}
		})
	}
}

// oneStepEvents are the events of a run of one tool step that succeeds,
// as runEvents lists them.
const oneStepEvents = "task_status >queued, task_status queued>running, tool_call, tool_result, text, done, task_status running>succeeded"

// runEvents lists the run's events on the task's thread, oldest first, by
// type, a task_status event with its change: "task_status queued>running".
func (r *rig) runEvents(t *testing.T, task tasks.Task, runID string) string {
	t.Helper()
	var types []string
	for _, e := range r.events(t, task, "") {
		if e.RunID != runID {
			continue
		}
		typ := e.Type
		if p, err := streams.Decode[streams.TaskStatus](e); err == nil {
			typ += " " + p.From + ">" + p.To
		}
		types = append(types, typ)
	}
	return strings.Join(types, ", ")
}

// waitRunEvents waits, for at most 5 seconds of real time, until the
// run's events (runEvents) are want, and returns them. With two writes the
// last status event follows the update the test may have seen already.
func (r *rig) waitRunEvents(t *testing.T, task tasks.Task, runID, want string) string {
	t.Helper()
	got := r.runEvents(t, task, runID)
	for deadline := time.Now().Add(5 * time.Second); got != want && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		got = r.runEvents(t, task, runID)
	}
	return got
}

// unthreaded is a Store whose UpdateRunThreaded answers
// errors.ErrUnsupported, as a store on Redis Cluster does, and counts its
// calls.
type unthreaded struct {
	tasks.Store
	calls atomic.Int32
}

func (s *unthreaded) UpdateRunThreaded(context.Context, streams.Log, tasks.Run, tasks.RunStatus, string, []streams.Event) error {
	s.calls.Add(1)
	return fmt.Errorf("unthreaded: %w", errors.ErrUnsupported)
}

// TestThreadedUnsupportedRemembered: a worker whose store answers
// UpdateRunThreaded with errors.ErrUnsupported asks it once, at its first
// write, and makes two writes from then on without asking again; the
// thread reads as with a store without the capability. The runs are
// queued before the worker starts, with their task_status events (which
// RunNow appends after it enqueues), and executed one after the other.
func TestThreadedUnsupportedRemembered(t *testing.T) {
	r := newRig(t)
	st := &unthreaded{Store: r.db}
	task := r.active(t, tasks.Spec{Title: "echo", Kind: tasks.KindLongRunning,
		Steps: []tasks.Step{{Tool: "echo", Args: map[string]any{"x": 1}}}})
	var runs []tasks.Run
	for range 2 {
		r.advance(time.Millisecond) // a slot of its own for each manual run
		run, err := r.m.RunNow(r.ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run)
	}
	r.worker(t, func(o *tasks.WorkerOptions) { o.Store, o.Concurrency = st, 1 })
	for i, run := range runs {
		r.waitRun(t, run.ID, tasks.RunSucceeded)
		if got := r.waitRunEvents(t, task, run.ID, oneStepEvents); got != oneStepEvents {
			t.Errorf("run %d's events:\n got %s\nwant %s", i+1, got, oneStepEvents)
		}
	}
	if n := st.calls.Load(); n != 1 {
		t.Errorf("%d UpdateRunThreaded calls in two runs, want 1", n)
	}
}

// TestCheckpointBeforeNextStep: a step's checkpoint is stored before the
// next step's tool is called, though the worker keeps checkpoints to write
// them with the run's next write.
func TestCheckpointBeforeNextStep(t *testing.T) {
	r := newRig(t)
	r.worker(t, nil)
	g, _, run := r.runGated(t, "s2")
	got, err := r.db.Run(r.ctx, "acme", run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if checkpointSteps(got) != "0" {
		t.Fatalf("stored checkpoints when step 2 started: [%s], want [0]", checkpointSteps(got))
	}
	g.open("s2")
	r.waitRun(t, run.ID, tasks.RunSucceeded)
}

// runWrites is a Store without tasks.ThreadedRunUpdater that counts the
// run writes of the worker: its UpdateRun calls.
type runWrites struct {
	tasks.Store
	n atomic.Int32
}

func (s *runWrites) UpdateRun(ctx context.Context, r tasks.Run, from tasks.RunStatus) error {
	s.n.Add(1)
	return s.Store.UpdateRun(ctx, r, from)
}

// threadedRunWrites is the rig's bolt store, a tasks.ThreadedRunUpdater,
// counting the run writes of the worker made with it: its
// UpdateRunThreaded calls.
type threadedRunWrites struct {
	*bolt.DB
	n atomic.Int32
}

func (s *threadedRunWrites) UpdateRunThreaded(ctx context.Context, log streams.Log, r tasks.Run, from tasks.RunStatus, thread string, evs []streams.Event) error {
	s.n.Add(1)
	return s.DB.UpdateRunThreaded(ctx, log, r, from, thread, evs)
}

// TestOneStepRunWrites: a run of one quick step makes two run writes,
// running and succeeded; its step's checkpoint and events travel with the
// second. A ThreadedRunUpdater makes each one write with the run's events.
func TestOneStepRunWrites(t *testing.T) {
	for _, c := range []struct {
		name  string
		store func(r *rig) (tasks.Store, *atomic.Int32)
	}{
		{"OneWrite", func(r *rig) (tasks.Store, *atomic.Int32) {
			s := &threadedRunWrites{DB: r.db}
			return s, &s.n
		}},
		{"TwoWrites", func(r *rig) (tasks.Store, *atomic.Int32) {
			s := &runWrites{Store: r.db}
			return s, &s.n
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			st, writes := c.store(r)
			task := r.active(t, tasks.Spec{Title: "echo", Kind: tasks.KindOneShot, Trigger: tasks.Trigger{At: t0.Add(time.Hour)},
				Steps: []tasks.Step{{Tool: "echo", Args: map[string]any{"x": 1}}}})
			r.worker(t, func(o *tasks.WorkerOptions) { o.Store = st })
			run, err := r.m.RunNow(r.ctx, task.ID)
			if err != nil {
				t.Fatal(err)
			}
			done := r.waitRun(t, run.ID, tasks.RunSucceeded)
			if n := writes.Load(); n != 2 {
				t.Errorf("%d run writes, want 2 (running, succeeded)", n)
			}
			if checkpointSteps(done) != "0" {
				t.Errorf("checkpoints [%s], want [0]", checkpointSteps(done))
			}
		})
	}
}

// quietExecutor checkpoints one step, then works on without emitting for
// longer than the worker's flush delay, so that the flush timer writes the
// kept checkpoint while the run is still executing.
type quietExecutor struct{ quiet time.Duration }

func (e quietExecutor) Execute(ctx context.Context, run tasks.Run, rep tasks.Reporter) (tasks.Outcome, error) {
	if err := rep.Checkpoint(ctx, 0, json.RawMessage(`{"done":1}`)); err != nil {
		return tasks.Outcome{}, err
	}
	time.Sleep(e.quiet)
	return tasks.Outcome{Summary: "quiet"}, nil
}

// TestCheckpointFlushedWhileQuiet: a checkpoint the executor keeps quiet
// about is stored by the flush timer while the run goes on, and the run
// then succeeds with it.
func TestCheckpointFlushedWhileQuiet(t *testing.T) {
	r := newRig(t)
	task := r.active(t, tasks.Spec{Title: "quiet", Kind: tasks.KindOneShot, Trigger: tasks.Trigger{At: t0.Add(time.Hour)},
		Steps: []tasks.Step{{Tool: "echo", Args: map[string]any{"x": 1}}}})
	r.worker(t, func(o *tasks.WorkerOptions) { o.Executor = quietExecutor{quiet: 150 * time.Millisecond} })
	run, err := r.m.RunNow(r.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := r.db.Run(r.ctx, "acme", run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == tasks.RunRunning && checkpointSteps(got) == "0" {
			break // stored by the timer while the executor is quiet
		}
		if got.Status != tasks.RunQueued && got.Status != tasks.RunRunning || time.Now().After(deadline) {
			t.Fatalf("run %s with checkpoints [%s]; want it running with [0] before the executor returns", got.Status, checkpointSteps(got))
		}
		time.Sleep(5 * time.Millisecond)
	}
	done := r.waitRun(t, run.ID, tasks.RunSucceeded)
	if checkpointSteps(done) != "0" {
		t.Errorf("checkpoints [%s], want [0]", checkpointSteps(done))
	}
}

// announcedQueue is a Queue that records, at each Enqueue, the run's
// task_status changes already on its task's thread.
type announcedQueue struct {
	tasks.Queue
	statuses func(runID string) []string
	mu       sync.Mutex
	at       map[string][]string
}

func (q *announcedQueue) Enqueue(ctx context.Context, it tasks.QueueItem, delay time.Duration) error {
	st := q.statuses(it.RunID)
	q.mu.Lock()
	q.at[it.RunID] = st
	q.mu.Unlock()
	return q.Queue.Enqueue(ctx, it, delay)
}

// statusesAt returns the run's task_status changes on the thread when it
// was enqueued.
func (q *announcedQueue) statusesAt(runID string) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.at[runID]
}

// TestRunAnnouncedBeforeEnqueued: a run the Manager creates (run now,
// retry, an ingested event) has its task_status event (→ queued) on the
// thread before it reaches the queue, so that no worker's queued →
// running can come first.
func TestRunAnnouncedBeforeEnqueued(t *testing.T) {
	r := newRig(t)
	task := r.active(t, tasks.Spec{Title: "echo", Kind: tasks.KindOneShot, Trigger: tasks.Trigger{At: t0.Add(time.Hour)},
		Steps: []tasks.Step{{Tool: "echo", Args: map[string]any{"x": 1}}}})
	q := &announcedQueue{Queue: r.q, at: map[string][]string{}}
	q.statuses = func(runID string) []string { return r.runStatuses(t, task, runID) }
	m := tasks.NewManager(tasks.Options{Store: &tasks.DispatchStore{Store: r.db, Queue: q}, Log: r.db, Now: r.clock.Now})
	run, err := m.RunNow(r.ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := q.statusesAt(run.ID); !slices.Equal(got, []string{">queued"}) {
		t.Errorf("task_status changes on the thread when the run was enqueued: %q; want [>queued]", got)
	}
}

// plainStore is a Store with none of the optional interfaces, so that the
// scheduler fires each entry on its own (fire) rather than in groups.
type plainStore struct{ tasks.Store }

// TestScheduledRunAnnouncedBeforeEnqueued: a run the scheduler fires has
// its task_status event (→ queued) on the thread before it reaches the
// queue, fired in a group (bolt is a BatchStore but stores the events in
// a step of their own) or on its own; and so has a chained run, which the
// worker that ran the run before it starts.
func TestScheduledRunAnnouncedBeforeEnqueued(t *testing.T) {
	for _, grouped := range []bool{true, false} {
		t.Run(fmt.Sprintf("grouped=%v", grouped), func(t *testing.T) {
			r := newRig(t)
			task := r.active(t, minutely(r)) // next slot 07:01
			q := &announcedQueue{Queue: r.q, at: map[string][]string{}}
			q.statuses = func(runID string) []string { return r.runStatuses(t, task, runID) }
			var st tasks.Store = r.db
			if !grouped {
				st = plainStore{r.db}
			}
			sched := tasks.NewScheduler(tasks.SchedulerOptions{Store: st, Queue: q, Log: r.db, Now: r.clock.Now})
			r.clock.Set(t0.Add(time.Minute))
			rep, err := sched.Tick(r.ctx)
			if err != nil || rep.Fired != 1 {
				t.Fatalf("Tick: %+v, %v; want 1 fired", rep, err)
			}
			runs := r.runs(t, task.ID)
			if len(runs) != 1 {
				t.Fatalf("%d runs; want 1", len(runs))
			}
			if got := q.statusesAt(runs[0].ID); !slices.Equal(got, []string{">queued"}) {
				t.Errorf("task_status changes on the thread when the run was enqueued: %q; want [>queued]", got)
			}
		})
	}
	t.Run("chained", func(t *testing.T) {
		r := newRig(t)
		q := &announcedQueue{Queue: r.q, at: map[string][]string{}}
		b := r.active(t, tasks.Spec{Title: "b", Kind: tasks.KindLongRunning, Steps: []tasks.Step{{Tool: "step", Args: map[string]any{"name": "b"}}}})
		a := r.active(t, tasks.Spec{Title: "a", Kind: tasks.KindLongRunning, Then: []string{b.ID},
			Steps: []tasks.Step{{Tool: "step", Args: map[string]any{"name": "a"}}}})
		q.statuses = func(runID string) []string { return r.runStatuses(t, b, runID) }
		r.worker(t, func(o *tasks.WorkerOptions) { o.Queue = q })
		if _, err := r.m.RunNow(r.ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		runB := r.waitRuns(t, b.ID, 1, tasks.RunSucceeded)[0]
		if got := q.statusesAt(runB.ID); !slices.Equal(got, []string{">queued"}) {
			t.Errorf("task_status changes on b's thread when its chained run was enqueued: %q; want [>queued]", got)
		}
	})
}

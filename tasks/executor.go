package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/toolsregistry"
)

// Executor runs one attempt of a run: what the task does. The built-in
// StepExecutor calls the task's declared tool steps; the task agent (the
// agents issue) plugs in here too.
//
// Execute gets the run as stored, with the checkpoints of earlier
// attempts: a run resumed after a crash or a graceful stop skips the steps
// its checkpoints record. It reports progress through rep: events for the
// task's thread, and a checkpoint after each step. It returns the outcome,
// or an error whose class (Classify; Transient, Temporary and Permanent
// set it) decides whether the run is retried.
//
// When ctx ends, or when rep.Checkpoint returns an error, Execute returns
// at once with that error: the worker is stopping (ErrYield), lost the
// run's lease, or the run was cancelled. Execute is called concurrently
// for different runs.
type Executor interface {
	Execute(ctx context.Context, run Run, rep Reporter) (Outcome, error)
}

// Reporter is how an Executor reports a run in progress. Its methods are
// safe for use by one goroutine at a time.
type Reporter interface {
	// Emit appends events of the run (tool_call, tool_result, text, …) to
	// its task's thread, in order. The worker's Reporter sends them with
	// the run's next write or within 25 ms, whichever is first; a
	// checkpoint not yet stored is stored first (see Checkpoint). An error
	// is the payloads' own (invalid data) or that checkpoint's; a failed
	// append is logged.
	Emit(ctx context.Context, ps ...streams.Payload) error
	// Checkpoint records that step (0 for the first) finished, with state
	// (any JSON, nil for none) for resuming after it: the run's
	// Checkpoints grow by one. The worker's Reporter stores it with the
	// run's next write: before the next event the executor emits, or with
	// the run's outcome. So an executor emits an event (a tool_call, say)
	// before a step whose effects must not be repeated, as the built-in
	// ones do, and the step starts only once the checkpoint before it is
	// stored; an error from that Emit means the run must stop. An error
	// from Checkpoint means the same; the checkpoint may or may not be
	// stored, except for ErrYield, after which it is.
	Checkpoint(ctx context.Context, step int, state json.RawMessage) error
}

// ErrYield is what Reporter.Checkpoint returns, after storing the
// checkpoint, when the worker is shutting down: the executor returns it
// (wrapped or not), the run goes back to the queue and resumes after the
// checkpoint on another worker.
var ErrYield = errors.New("tasks: the worker is stopping; resume from the checkpoint")

// Outcome is what a succeeded attempt produced.
type Outcome struct {
	// Result is stored as the run's Result; empty means null.
	Result json.RawMessage
	// Summary is the text told to the task's thread (a text event and the
	// done event's summary) and to its webhooks.
	Summary string
	// Quiet means there is nothing to tell: a monitor whose condition did
	// not hold. The run succeeds without text, done, webhooks or chained
	// tasks.
	Quiet bool
}

// StepExecutorOptions configure a StepExecutor. Registry is required.
type StepExecutorOptions struct {
	Registry *toolsregistry.Registry
	// Store reads a monitor's previous run for its condition's prev;
	// nil means prev is always nil.
	Store Store
	// Scopes returns the scopes a run's tool calls hold, its owner's; it
	// is asked once per attempt, and its error fails the attempt (by its
	// class, Classify). Nil means RunScopes(Store): the scopes recorded
	// on the run's task. Nil without a Store means every scope ("*").
	Scopes func(ctx context.Context, r Run) ([]string, error)
	// Logger receives what the thread is not told; default slog.Default().
	Logger *slog.Logger
}

// StepExecutor is the built-in Executor: it calls a task's tools in order
// with its slots, so that tasks run end to end without an LLM.
//
//   - A task with Steps calls each step's tool (Step.Render fills in the
//     slots) through Registry.Call, as the task's tenant with the
//     owner's scopes (StepExecutorOptions.Scopes) and in the trigger's
//     zone, emitting tool_call and then tool_result (with a warning and
//     media parts when the tool returns them) or tool_error, and records
//     a checkpoint after each step whose state is the step's output. A
//     resumed run starts after its last checkpoint and takes the earlier
//     outputs from the checkpoints. The result is {"outputs": [...]}, one
//     output per step; the summary is the last output (its text when it
//     is a string).
//   - A monitor calls its Source step, reads prev, the value of the
//     task's previous succeeded run, and evaluates Monitor.Holds. When the
//     condition holds it runs its Steps, if any, and tells the user; when
//     it does not, the outcome is Quiet. The result is {"value": v,
//     "holds": b}. A Judge without a Condition cannot be decided without
//     an LLM: the run says so in a warning and stays quiet.
//   - A task with neither (an instruction only, such as a reminder)
//     succeeds with its instruction, or its title, as the summary.
//
// A tool error fails the attempt with the error's class (Classify), after
// its tool_error event. A call refused because the owner lacks a scope
// the tool needs (vigil.Forbidden) is permanent, and its tool_error and
// the run's error name the scope and the scopes the owner holds. A
// StepExecutor is safe for concurrent use.
type StepExecutor struct {
	reg    *toolsregistry.Registry
	store  Store
	scopes func(context.Context, Run) ([]string, error)
	logger *slog.Logger
}

var _ Executor = (*StepExecutor)(nil)

// NewStepExecutor returns a StepExecutor.
func NewStepExecutor(opts StepExecutorOptions) *StepExecutor {
	e := &StepExecutor{reg: opts.Registry, store: opts.Store, scopes: opts.Scopes, logger: opts.Logger}
	switch {
	case e.scopes != nil:
	case e.store != nil:
		e.scopes = RunScopes(e.store)
	default:
		e.scopes = func(context.Context, Run) ([]string, error) { return []string{"*"}, nil }
	}
	if e.logger == nil {
		e.logger = slog.Default()
	}
	return e
}

// stepState is the checkpoint state of a step.
type stepState struct {
	Output json.RawMessage `json:"output"`
}

// Execute implements Executor.
func (e *StepExecutor) Execute(ctx context.Context, r Run, rep Reporter) (Outcome, error) {
	var held []string
	if r.Spec.Monitor != nil || len(r.Spec.Steps) > 0 {
		var err error
		if held, err = e.scopes(ctx, r); err != nil {
			return Outcome{}, err
		}
	}
	switch {
	case r.Spec.Kind == KindMonitor && r.Spec.Monitor != nil:
		return e.monitor(ctx, r, rep, held)
	case len(r.Spec.Steps) > 0:
		outputs, err := e.steps(ctx, r, rep, held)
		if err != nil {
			return Outcome{}, err
		}
		res, err := json.Marshal(map[string]any{"outputs": outputs})
		if err != nil {
			return Outcome{}, Permanent(err)
		}
		return Outcome{Result: res, Summary: summarize(outputs[len(outputs)-1])}, nil
	default:
		text := FillSlots(strings.TrimSpace(r.Spec.Instruction), r.Spec.Slots)
		if text == "" {
			text = r.Spec.Title
		}
		res, _ := json.Marshal(map[string]string{"text": text})
		return Outcome{Result: res, Summary: text}, nil
	}
}

// steps calls r's Steps, holding the scopes held, from the one after its
// last checkpoint and returns every step's output.
func (e *StepExecutor) steps(ctx context.Context, r Run, rep Reporter, held []string) ([]json.RawMessage, error) {
	outputs := make([]json.RawMessage, len(r.Spec.Steps))
	next := 0
	for _, cp := range r.Checkpoints {
		if cp.Step < 0 || cp.Step >= len(outputs) {
			continue
		}
		var st stepState
		if json.Unmarshal(cp.State, &st) == nil {
			outputs[cp.Step] = st.Output
		}
		next = max(next, cp.Step+1)
	}
	if next > 0 && next < len(outputs) {
		_ = rep.Emit(ctx, streams.Status{Phase: streams.PhaseThinking, Detail: fmt.Sprintf("resuming at step %d of %d", next+1, len(outputs))})
	}
	for i := next; i < len(r.Spec.Steps); i++ {
		out, err := e.call(ctx, r, rep, held, fmt.Sprintf("%s.s%d.a%d", r.ID, i, r.Attempt), r.Spec.Steps[i])
		if err != nil {
			return nil, err
		}
		outputs[i] = out
		state, err := json.Marshal(stepState{Output: out})
		if err != nil {
			return nil, Permanent(err)
		}
		if err := rep.Checkpoint(ctx, i, state); err != nil {
			// Told to yield after the last step, the run is done: it
			// finishes here rather than on another worker, which would
			// have nothing left to do but finish it.
			if errors.Is(err, ErrYield) && i == len(r.Spec.Steps)-1 {
				break
			}
			return nil, err
		}
	}
	for i, o := range outputs {
		if o == nil {
			outputs[i] = json.RawMessage("null")
		}
	}
	return outputs, nil
}

// call makes one tool call of the run, holding the scopes held, with its
// events, and returns the output.
func (e *StepExecutor) call(ctx context.Context, r Run, rep Reporter, held []string, callID string, st Step) (json.RawMessage, error) {
	args, err := st.Render(r.Spec.Slots)
	if err != nil {
		return nil, Permanent(err)
	}
	if args == nil {
		args = map[string]any{}
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return nil, Permanent(err)
	}
	name, version, _ := strings.Cut(st.Tool, "@")
	if err := rep.Emit(ctx, streams.ToolCall{CallID: callID, Tool: name, Version: version, Args: raw}); err != nil {
		return nil, err
	}
	loc, _ := r.Spec.Trigger.Location()
	res, err := e.reg.Call(ctx, toolsregistry.Request{
		Tenant: r.Tenant, Scopes: held, Tool: st.Tool, Args: raw, Location: loc,
	})
	if err != nil {
		var te *toolsregistry.Error
		if !errors.As(err, &te) {
			te = &toolsregistry.Error{Code: vigil.ErrorCode(err), Tool: name, Message: err.Error(), Err: err}
		}
		te = OwnerLacks(te, held)
		if eerr := rep.Emit(ctx, te.ToolError(callID)); eerr != nil {
			e.logger.WarnContext(ctx, "tasks: tool_error event not appended", "run", r.ID, "err", eerr)
		}
		if te.Code == vigil.Forbidden {
			return nil, Permanent(fmt.Errorf("step %s: %w", st.Tool, te))
		}
		return nil, fmt.Errorf("step %s: %w", st.Tool, err)
	}
	ps := []streams.Payload{res.ToolResult(callID)}
	if res.Warning != nil {
		ps = append(ps, *res.Warning)
	}
	ps = append(ps, res.Parts...)
	if err := rep.Emit(ctx, ps...); err != nil {
		return nil, err
	}
	out := res.Output
	if len(out) == 0 {
		out = json.RawMessage("null")
	}
	return out, nil
}

// monitorResult is a monitor run's Result.
type monitorResult struct {
	Value json.RawMessage `json:"value"`
	Holds bool            `json:"holds"`
}

// MonitorReading is the Step of the checkpoint a monitor run records when
// its condition holds, before its first step: the reading it acted on
// (monitorReading). A run resumed after it goes on with its steps on that
// reading, since the steps that ran were for it; reading the source again
// could find the condition no longer holds, and leave the steps half done
// and nobody told.
const MonitorReading = -1

// monitorReading is the state of a MonitorReading checkpoint: the source's
// value and the previous one, when the condition held on them.
type monitorReading struct {
	Value json.RawMessage `json:"value"`
	Prev  json.RawMessage `json:"prev,omitempty"`
}

func (e *StepExecutor) monitor(ctx context.Context, r Run, rep Reporter, held []string) (Outcome, error) {
	m := *r.Spec.Monitor
	reading, resumed := lastReading(r)
	if !resumed {
		raw, err := e.call(ctx, r, rep, held, fmt.Sprintf("%s.src.a%d", r.ID, r.Attempt), m.Source)
		if err != nil {
			return Outcome{}, err
		}
		var value any
		if err := json.Unmarshal(raw, &value); err != nil {
			return Outcome{}, Permanent(fmt.Errorf("monitor source %s returned invalid JSON: %w", m.Source.Tool, err))
		}
		prevRaw, prev, err := e.previous(ctx, r)
		if err != nil {
			return Outcome{}, err
		}
		holds := false
		var warning string
		switch {
		case strings.TrimSpace(m.Condition) == "":
			warning = "this monitor is judged in words (" + m.Judge + "), which needs an LLM; none is configured, so it does not fire"
		default:
			var herr error
			if holds, herr = m.Holds(value, prev); herr != nil {
				warning = fmt.Sprintf("the condition could not be evaluated on this value, so it does not fire: %v", herr)
			}
		}
		if warning != "" {
			_ = rep.Emit(ctx, streams.Warning{Code: "monitor_condition", Message: warning})
		}
		if !holds {
			res, err := json.Marshal(monitorResult{Value: raw, Holds: false})
			if err != nil {
				return Outcome{}, Permanent(err)
			}
			return Outcome{Result: res, Quiet: true}, nil
		}
		reading = monitorReading{Value: raw, Prev: prevRaw}
		if len(r.Spec.Steps) > 0 {
			state, err := json.Marshal(reading)
			if err != nil {
				return Outcome{}, Permanent(err)
			}
			if err := rep.Checkpoint(ctx, MonitorReading, state); err != nil {
				return Outcome{}, err
			}
		}
	}
	res, err := json.Marshal(monitorResult{Value: reading.Value, Holds: true})
	if err != nil {
		return Outcome{}, Permanent(err)
	}
	summary := fmt.Sprintf("%s: %s holds (value %s", r.Spec.Title, m.Condition, clip(string(reading.Value), 200))
	if reading.Prev != nil {
		summary += ", before " + clip(string(reading.Prev), 200)
	}
	summary += ")"
	if len(r.Spec.Steps) > 0 {
		outputs, err := e.steps(ctx, r, rep, held)
		if err != nil {
			return Outcome{}, err
		}
		summary += "\n" + summarize(outputs[len(outputs)-1])
	}
	return Outcome{Result: res, Summary: summary}, nil
}

// lastReading returns the reading of r's MonitorReading checkpoint, if it
// has one that decodes.
func lastReading(r Run) (monitorReading, bool) {
	for i := len(r.Checkpoints) - 1; i >= 0; i-- {
		if cp := r.Checkpoints[i]; cp.Step == MonitorReading {
			var mr monitorReading
			if json.Unmarshal(cp.State, &mr) == nil && len(mr.Value) > 0 {
				return mr, true
			}
		}
	}
	return monitorReading{}, false
}

// maxPrevScan bounds the runs read to find a monitor's previous value.
const maxPrevScan = 50

// previous returns the value of the task's newest succeeded run created
// before r, raw and decoded; nil when there is none.
func (e *StepExecutor) previous(ctx context.Context, r Run) (json.RawMessage, any, error) {
	if e.store == nil {
		return nil, nil, nil
	}
	return PreviousValue(ctx, e.store, r)
}

// PreviousValue returns the value a monitor saw at its task's newest
// succeeded run created before r, raw and decoded; nil when there is none
// among the last few runs. It reads the "value" of a monitor run's Result,
// which every executor writes ({"value": …, "holds": …}), so that the
// condition's prev is the same whichever executor ran the run before.
func PreviousValue(ctx context.Context, st Store, r Run) (json.RawMessage, any, error) {
	page, err := st.ListRuns(ctx, r.Tenant, RunFilter{TaskID: r.TaskID, Limit: maxPrevScan})
	if err != nil {
		return nil, nil, fmt.Errorf("tasks: previous run of %s: %w", r.TaskID, err)
	}
	for _, p := range page.Runs {
		if p.ID == r.ID || p.Status != RunSucceeded || p.CreatedAt.After(r.CreatedAt) || len(p.Result) == 0 {
			continue
		}
		var mr monitorResult
		if json.Unmarshal(p.Result, &mr) != nil || len(mr.Value) == 0 {
			continue
		}
		var v any
		if json.Unmarshal(mr.Value, &v) != nil {
			continue
		}
		return mr.Value, v, nil
	}
	return nil, nil, nil
}

// summarize returns an output as text: a JSON string's text, else the
// compact JSON, cut at 2000 characters.
func summarize(out json.RawMessage) string {
	var s string
	if json.Unmarshal(out, &s) == nil {
		return clip(s, 2000)
	}
	var buf bytes.Buffer
	if json.Compact(&buf, out) == nil {
		return clip(buf.String(), 2000)
	}
	return clip(string(out), 2000)
}

// clip cuts s to at most n characters, marking a cut with "…".
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

package redis

// This file implements tasks.BatchStore: the scheduler's reads and writes
// for a group of due entries, each step one pipeline of the commands and
// scripts the single calls run. Every element is still its own command or
// script, so it keeps the single call's atomicity, and on a Cluster the
// pipeline is split by node as any pipeline is.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
)

var _ tasks.BatchStore = (*Log)(nil)

// TaskBatch implements tasks.BatchStore: one pipeline of an HMGET per
// task, as Task reads it.
func (l *Log) TaskBatch(ctx context.Context, refs []tasks.TaskRef) ([]tasks.Task, error) {
	out := make([]tasks.Task, len(refs))
	cmds := make([]*goredis.SliceCmd, len(refs))
	pipe := l.client.Pipeline()
	for i, r := range refs {
		if vigil.ValidID(r.Tenant) && vigil.ValidID(r.ID) {
			cmds[i] = pipe.HMGet(ctx, l.taskKey(r.Tenant, r.ID), taskFields...)
		}
	}
	if pipe.Len() == 0 {
		return out, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, wrap(fmt.Sprintf("read %d tasks", pipe.Len()), err)
	}
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		t, found, err := taskFromFields(cmd.Val())
		if err != nil {
			return nil, tasksFail("task "+refs[i].ID, err)
		}
		if found {
			out[i] = t
		}
	}
	return out, nil
}

// CreateRuns implements tasks.BatchStore: one pipeline of createRunScript,
// the script CreateRun runs.
func (l *Log) CreateRuns(ctx context.Context, runs []tasks.Run) []error {
	errs, _ := l.createRuns(ctx, createRunScript, runs, nil)
	return errs
}

// createRuns runs script, createRunScript or one that begins like it, once
// per run in one pipeline, and returns CreateRun's error for each run and
// the script's reply for each run it created (nil for the others). more,
// when set, gives the keys and arguments a run's call takes after
// createRunScript's, or an error, which is then the run's, wrapped as
// CreateRun wraps its own.
func (l *Log) createRuns(ctx context.Context, script *goredis.Script, runs []tasks.Run, more func(i int) ([]string, []any, error)) (errs []error, replies []any) {
	errs, replies = make([]error, len(runs)), make([]any, len(runs))
	calls := make([]scriptCall, 0, len(runs))
	index := make([]int, 0, len(runs)) // calls[j] creates runs[index[j]]
	for i, r := range runs {
		if err := tasksCheckIDs("tenant", r.Tenant, "id", r.ID, "task_id", r.TaskID); err != nil {
			errs[i] = tasksFail("create run "+r.ID, err)
			continue
		}
		keys, args, err := l.createRunCall(r)
		if err != nil {
			errs[i] = tasksFail("create run "+r.ID, err)
			continue
		}
		if more != nil {
			mkeys, margs, err := more(i)
			if err != nil {
				errs[i] = tasksFail("create run "+r.ID, err)
				continue
			}
			keys, args = append(keys, mkeys...), append(args, margs...)
		}
		calls, index = append(calls, scriptCall{keys: keys, args: args}), append(index, i)
	}
	for j, res := range l.pipeScript(ctx, script, calls) {
		i := index[j]
		if errs[i] = createRunResult(runs[i], res.val, res.err); errs[i] == nil {
			replies[i] = res.val
		}
	}
	return errs, replies
}

// AdvanceNextBatch implements tasks.BatchStore: one pipeline of
// schedMoveScript, the script AdvanceNext runs.
func (l *Log) AdvanceNextBatch(ctx context.Context, moves []tasks.NextMove) []error {
	errs := make([]error, len(moves))
	var calls []scriptCall
	var index [][]int // calls[j] moves moves[index[j][k]], k = 0, 1, …
	keys := l.schedKeys()
	for i, m := range moves {
		if err := advanceNextCheck(m.From, m.To); err != nil {
			errs[i] = err
			continue
		}
		if len(calls) == 0 || len(index[len(index)-1]) == moveBatch {
			calls, index = append(calls, scriptCall{keys: keys}), append(index, nil)
		}
		j := len(calls) - 1
		calls[j].args = append(calls[j].args, schedMoveArgs(schedMember(m.From.Tenant, m.From.TaskID), taskInstant(m.From.Slot), m.To)...)
		index[j] = append(index[j], i)
	}
	for j, res := range l.pipeScript(ctx, schedMoveBatchScript, calls) {
		replies, ok := res.val.([]any)
		if res.err == nil && (!ok || len(replies) != len(index[j])) {
			res.err = fmt.Errorf("unexpected script reply %v", res.val)
		}
		for k, i := range index[j] {
			var reply any
			if res.err == nil {
				reply = replies[k]
			}
			errs[i] = advanceNextResult(moves[i].From, schedMoveResult(taskInstant(moves[i].From.Slot), reply, res.err))
		}
	}
	return errs
}

// moveBatch is how many schedule entries one schedMoveBatchScript moves:
// a few milliseconds of Redis's time.
const moveBatch = 500

// scriptCall is one run of a script: its keys and arguments.
type scriptCall struct {
	keys []string
	args []any
}

// scriptResult is a script's reply, or its error.
type scriptResult struct {
	val any
	err error
}

// pipeScript runs script once per call in one pipeline (EVALSHA) and
// returns the results in order. Calls that Redis refused with NOSCRIPT
// (its script cache was flushed) did not run; they are run again after
// the script is loaded, so each call runs exactly once.
func (l *Log) pipeScript(ctx context.Context, script *goredis.Script, calls []scriptCall) []scriptResult {
	out := make([]scriptResult, len(calls))
	todo := make([]int, len(calls))
	for i := range todo {
		todo[i] = i
	}
	for attempt := 0; len(todo) > 0; attempt++ {
		pipe := l.client.Pipeline()
		cmds := make([]*goredis.Cmd, len(todo))
		for j, i := range todo {
			cmds[j] = script.EvalSha(ctx, pipe, calls[i].keys, calls[i].args...)
		}
		_, _ = pipe.Exec(ctx) // each command carries its own error
		var again []int
		for j, i := range todo {
			val, err := cmds[j].Result()
			if attempt == 0 && isNoScript(err) {
				again = append(again, i)
				continue
			}
			out[i] = scriptResult{val: val, err: err}
		}
		if len(again) > 0 {
			if err := script.Load(ctx, l.client).Err(); err != nil {
				for _, i := range again {
					out[i] = scriptResult{err: err}
				}
				again = nil
			}
		}
		todo = again
	}
	return out
}

// isNoScript reports whether err is Redis's NOSCRIPT reply to an EVALSHA:
// the script is not in its cache (flushed, or a new server), and did not
// run. go-redis reports it as goredis.ErrNoScript, or as Redis's own reply
// when it reads it later (in a pipeline).
func isNoScript(err error) bool {
	return errors.Is(err, goredis.ErrNoScript) || goredis.HasErrorPrefix(err, "NOSCRIPT")
}

var _ tasks.BatchAppender = (*Log)(nil)

// AppendBatch implements tasks.BatchAppender: one pipeline of
// appendScript, the script Append runs, one call per thread.
func (l *Log) AppendBatch(ctx context.Context, batch []tasks.ThreadEvents) []error {
	errs := make([]error, len(batch))
	calls := make([]scriptCall, 0, len(batch))
	index := make([]int, 0, len(batch))
	for i, b := range batch {
		keys, args, err := l.appendCall(b.Tenant, b.Thread, b.Events)
		if err != nil {
			errs[i] = fmt.Errorf("store/redis: append %s: %w", b.Thread, err)
			continue
		}
		calls, index = append(calls, scriptCall{keys: keys, args: args}), append(index, i)
	}
	for j, res := range l.pipeScript(ctx, appendScript, calls) {
		i := index[j]
		_, errs[i] = appendResult(batch[i].Tenant, batch[i].Thread, len(batch[i].Events), res.val, res.err)
	}
	return errs
}

var _ tasks.RunTaskReader = (*Log)(nil)

// runTaskScript reads a run and its task: the HMGETs of Run and Task,
// the task's key built from the run's task field. Both keys carry the
// tenant's hash tag, so they share the run key's Cluster slot.
// KEYS[1] run hash. ARGV[1] the tenant's key base.
// Returns {} if the run is missing, else {run json, run created, task
// json, task created, task v}, the task's fields nil if it is missing.
var runTaskScript = goredis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'json', 'created', 'task')
if not r[1] or not r[3] then return {} end
local t = redis.call('HMGET', ARGV[1] .. 'task:' .. r[3], 'json', 'created', 'v')
return {r[1], r[2], t[1], t[2], t[3]}
`)

// RunTask implements tasks.RunTaskReader with one script.
func (l *Log) RunTask(ctx context.Context, tenant, id string) (tasks.Run, tasks.Task, error) {
	what := "run " + id
	if !vigil.ValidID(tenant) || !vigil.ValidID(id) {
		return tasks.Run{}, tasks.Task{}, tasksFail(what, runNotFound(id))
	}
	base := l.tasksBase(tenant)
	res, err := l.runScript(ctx, runTaskScript, []string{l.runKey(tenant, id)}, base).Slice()
	if err != nil {
		return tasks.Run{}, tasks.Task{}, wrap(what, err)
	}
	if len(res) == 0 {
		return tasks.Run{}, tasks.Task{}, tasksFail(what, runNotFound(id))
	}
	js, ok1 := res[0].(string)
	created, ok2 := res[1].(string)
	if len(res) != 2+len(taskFields) || !ok1 || !ok2 {
		return tasks.Run{}, tasks.Task{}, tasksFail(what, fmt.Errorf("unexpected script reply %v", res))
	}
	r, err := decodeRun(js, created)
	if err != nil {
		return tasks.Run{}, tasks.Task{}, tasksFail(what, err)
	}
	t, err := taskHeadFromFields(res[2:])
	if err != nil {
		return tasks.Run{}, tasks.Task{}, tasksFail("task "+r.TaskID, err)
	}
	return r, t, nil
}

// taskHead is the part of a task's json that RunTask decodes: every field
// but Spec's (see tasks.RunTaskReader), which the decoder skips at a
// fraction of the cost of decoding them, and but Version, CreatedAt and
// NextFire, which encodeTask leaves zero. TestTaskHead checks that it has
// every other field of tasks.Task and that taskHeadFromFields copies them.
type taskHead struct {
	ID          string       `json:"id"`
	Tenant      string       `json:"tenant"`
	Owner       string       `json:"owner"`
	OwnerScopes []string     `json:"owner_scopes"`
	Status      tasks.Status `json:"status"`
	ThreadID    string       `json:"thread_id"`
	UpdatedAt   time.Time    `json:"updated_at"`
}

// taskHeadFromFields is taskFromFields for RunTask: the task without its
// Spec, or the zero Task when the fields say it does not exist.
func taskHeadFromFields(vals []any) (tasks.Task, error) {
	js, created, v, found, err := taskFieldStrings(vals)
	if err != nil || !found {
		return tasks.Task{}, err
	}
	var h taskHead
	if err := json.Unmarshal([]byte(js), &h); err != nil {
		return tasks.Task{}, fmt.Errorf("corrupt task: %w", err)
	}
	t := tasks.Task{ID: h.ID, Tenant: h.Tenant, Owner: h.Owner, OwnerScopes: h.OwnerScopes, Status: h.Status, ThreadID: h.ThreadID, UpdatedAt: h.UpdatedAt}
	if err := setTaskFields(&t, created, v); err != nil {
		return tasks.Task{}, err
	}
	return t, nil
}

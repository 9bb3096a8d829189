package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// This file implements tasks.ThreadedCreator: a new task, its thread and
// the thread's first event in one script, one round trip, where
// CreateThread, CreateTask and Append take three; and
// tasks.ThreadedRunUpdater: a run's update and its events in one script
// where UpdateRun and Append take two.
//
// The scripts touch a thread's keys (hash tag {<tenant>/<thread>}) and a
// tenant's task keys (hash tag {<tenant>}), which Redis Cluster puts in
// different slots. It therefore runs only on a single Redis (a
// *goredis.Client, standalone or through Sentinel); on any other client
// CreateThreadedTask answers errors.ErrUnsupported and the Manager makes
// the three writes one by one, each within one slot as before.

var (
	_ tasks.ThreadedCreator     = (*Log)(nil)
	_ tasks.ThreadedRunUpdater  = (*Log)(nil)
	_ tasks.ThreadedRunsCreator = (*Log)(nil)
)

// createThreadedScript creates a thread, a task and the thread's first
// event, or nothing.
//
// KEYS[1] thread meta, KEYS[2] thread stream, KEYS[3..5] as
// createTaskScript's KEYS[1..3]: task hash, the tenant's order set, its at
// index.
// ARGV[1] thread created, ARGV[2] thread title, ARGV[3] the clock's
// milliseconds or "" for the server's clock, ARGV[4] the event's envelope,
// ARGV[5..14] as createTaskScript's ARGV[1..10] (writeTask's, first = 5).
// Returns {1, event id}, or {0, 'thread'} or {0, 'task'} for the one that
// exists already.
//
// The stream is new, so the event's ID needs none of the append script's
// care: it is the first of its millisecond, and one event is far below
// any MaxLen.
var createThreadedScript = goredis.NewScript(createTaskLua + `
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return {0, 'thread'} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {0, 'task'} end
redis.call('HSET', KEYS[1], 'created', ARGV[1], 'title', ARGV[2])
local id = '*'
if ARGV[3] ~= '' then id = ARGV[3] .. '-*' end
id = redis.call('XADD', KEYS[2], id, 'e', ARGV[4])
writeTask(KEYS[3], KEYS[4], KEYS[5], 5)
return {1, id}
`)

// CreateThreadedTask implements tasks.ThreadedCreator with one script,
// pipelined after the tenant's entry in the tenants set (createWithTenant).
// log must be l itself, and l's client a single Redis (see above).
func (l *Log) CreateThreadedTask(ctx context.Context, log streams.Log, th streams.Thread, t tasks.Task, ev streams.Event) (streams.ID, error) {
	what := "create task " + t.ID
	if err := l.ownThreads(log); err != nil {
		return streams.ID{}, tasksFail(what, err)
	}
	if err := checkIDs(th.Tenant, th.ID); err != nil {
		return streams.ID{}, tasksFail(what, err)
	}
	if err := tasksCheckIDs("tenant", t.Tenant, "id", t.ID); err != nil {
		return streams.ID{}, tasksFail(what, err)
	}
	if t.Tenant != th.Tenant || t.ThreadID != th.ID {
		return streams.ID{}, tasksFail(what, vigil.FieldError("thread_id", "task %s of %s/%s is not on thread %s/%s", t.ID, t.Tenant, t.ThreadID, th.Tenant, th.ID))
	}
	envelope, err := encode(ev)
	if err != nil {
		return streams.ID{}, tasksFail(what, vigil.Errorf(vigil.Invalid, "event (%s): %v", ev.Type, err))
	}
	js, err := encodeTask(t)
	if err != nil {
		return streams.ID{}, tasksFail(what, err)
	}
	ms := ""
	if l.now != nil {
		ms = strconv.FormatInt(max(0, l.now().UnixMilli()), 10)
	}
	meta, stream := l.keys(th.Tenant, th.ID)
	base := l.tasksBase(t.Tenant)
	res, err := l.createWithTenant(ctx, t.Tenant, createThreadedScript,
		[]string{meta, stream, l.taskKey(t.Tenant, t.ID), base + "order", base + "at"},
		append([]any{th.CreatedAt.Format(time.RFC3339Nano), th.Title, ms, envelope}, createTaskArgs(t, js)...)...).Result()
	if err != nil {
		return streams.ID{}, wrap(what, err)
	}
	vals, code, err := tasksReplyCode(res)
	if err == nil && len(vals) != 2 {
		err = fmt.Errorf("unexpected script reply %v", res)
	}
	if err != nil {
		return streams.ID{}, tasksFail(what, err)
	}
	reply, _ := vals[1].(string)
	switch {
	case code == 1:
		id, err := streams.ParseID(reply)
		if err != nil {
			return streams.ID{}, tasksFail(what, err)
		}
		return id, nil
	case reply == "thread":
		return streams.ID{}, tasksFail(what, vigil.Errorf(vigil.Conflict, "thread %q exists already", th.ID))
	default:
		return streams.ID{}, tasksFail(what, vigil.Errorf(vigil.Conflict, "task %s already exists", t.ID))
	}
}

// ownThreads returns nil if log is l itself on a single Redis, where one
// script may touch a thread's keys and a tenant's task keys, else an error
// matching errors.ErrUnsupported.
func (l *Log) ownThreads(log streams.Log) error {
	if own, ok := log.(*Log); !ok || own != l {
		return fmt.Errorf("threads in %T: %w", log, errors.ErrUnsupported)
	}
	if _, single := l.client.(*goredis.Client); !single {
		return fmt.Errorf("%T spans hash slots: %w", l.client, errors.ErrUnsupported)
	}
	return nil
}

// updateRunThreadedScript is updateRunScript followed, when the update
// succeeded and the thread exists, by appendScript's append, through
// tryAppend.
//
// KEYS[1..2] as updateRunScript's, KEYS[3] thread meta, KEYS[4] thread
// stream. ARGV[1..7] as updateRunScript's; ARGV[8..10] and ARGV[11..] as
// appendScript's ARGV[1..3] and ARGV[4..].
// Returns what updateRunScript returns, except {1, message} when the run
// was updated and its events were not appended (see tryAppendLua).
var updateRunThreadedScript = goredis.NewScript(tryAppendLua + updateRunLua + `
local err = tryAppend(KEYS[3], KEYS[4], ARGV[8], ARGV[9], ARGV[10], 11)
if err then return {1, err} end
return {1}
`)

// tryAppendLua defines the Lua function tryAppend(meta, stream, clock,
// maxlen, slack, first): append (see appendLua) for a script that has
// written a run before it. Redis does not undo a script's writes when the
// script fails, so by the time the events are appended the run's write
// stands whatever happens; were the append's failure (a thread key of the
// wrong type, say) the script's, the caller would read a run that is
// written as not written. tryAppend catches the failure, whether append
// returns it or a command raises it, and returns its message, or nil when
// the events were appended or the thread does not exist. The threaded
// scripts reply {1, message}: the run is written, and the Go side logs the
// events' loss (warnEventsLost) and answers success. The events may then
// be appended in part.
const tryAppendLua = appendLua + `
local function tryAppend(meta, stream, clock, maxlen, slack, first)
  local ok, res = pcall(append, meta, stream, clock, maxlen, slack, first)
  if ok and (not res or not res.err) then return nil end
  if type(res) == 'table' then res = res.err end
  return tostring(res)
end
`

// UpdateRunThreaded implements tasks.ThreadedRunUpdater with one script.
// log must be l itself, and l's client a single Redis (see above). When
// the run is updated but its events cannot be appended, it logs that on
// Options.Logger and returns nil, as the update is made.
func (l *Log) UpdateRunThreaded(ctx context.Context, log streams.Log, r tasks.Run, from tasks.RunStatus, thread string, evs []streams.Event) error {
	what := "update run " + r.ID
	if err := l.ownThreads(log); err != nil {
		return tasksFail(what, err)
	}
	if err := tasksCheckIDs("tenant", r.Tenant, "id", r.ID); err != nil {
		return tasksFail(what, err)
	}
	tkeys, targs, err := l.appendCall(r.Tenant, thread, evs)
	if err != nil {
		return tasksFail(what, fmt.Errorf("append %s: %w", thread, err))
	}
	js, err := encodeRun(r)
	if err != nil {
		return tasksFail(what, err)
	}
	res, err := l.runScript(ctx, updateRunThreadedScript, append(l.updateRunKeys(r), tkeys...),
		append(updateRunArgs(r, from, js), targs...)...).Result()
	if err := updateRunResult(r, from, res, err); err != nil {
		return err
	}
	l.warnEventsLost(ctx, "update run", r, thread, len(evs), res)
	return nil
}

// createRunThreadedScript is createRunScript followed, when the run was
// created and a thread is named and exists, by appendScript's append,
// through tryAppend.
//
// KEYS[1..4] as createRunScript's, then optionally KEYS[5] thread meta,
// KEYS[6] thread stream. ARGV[1..9] as createRunScript's; with a thread,
// ARGV[10..12] and ARGV[13..] as appendScript's ARGV[1..3] and ARGV[4..].
// Returns what createRunScript returns, except {1, message} when the run
// was created and its events were not appended (see tryAppendLua).
var createRunThreadedScript = goredis.NewScript(tryAppendLua + createRunLua + `
if #KEYS >= 6 then
  local err = tryAppend(KEYS[5], KEYS[6], ARGV[10], ARGV[11], ARGV[12], 13)
  if err then return {1, err} end
end
return {1}
`)

// CreateRunsThreaded implements tasks.ThreadedRunsCreator: one pipeline of
// createRunThreadedScript. log must be l itself, and l's client a single
// Redis (see above). A run created whose events cannot be appended is
// created: its error is nil, and the loss is logged on Options.Logger.
func (l *Log) CreateRunsThreaded(ctx context.Context, log streams.Log, runs []tasks.Run, threads []string, evs [][]streams.Event) ([]error, error) {
	if err := l.ownThreads(log); err != nil {
		return nil, tasksFail("create runs", err)
	}
	if len(threads) != len(runs) || len(evs) != len(runs) {
		return nil, tasksFail("create runs", fmt.Errorf("%d runs, %d threads and %d event lists", len(runs), len(threads), len(evs)))
	}
	errs, replies := l.createRuns(ctx, createRunThreadedScript, runs, func(i int) ([]string, []any, error) {
		if threads[i] == "" {
			return nil, nil, nil
		}
		keys, args, err := l.appendCall(runs[i].Tenant, threads[i], evs[i])
		if err != nil {
			return nil, nil, fmt.Errorf("append %s: %w", threads[i], err)
		}
		return keys, args, nil
	})
	for i, res := range replies {
		l.warnEventsLost(ctx, "create run", runs[i], threads[i], len(evs[i]), res)
	}
	return errs, nil
}

// warnEventsLost logs a warning when res, the reply of a threaded script
// that wrote r (op says how), is {1, message}: r is written, and its n
// events were not appended to thread, for the reason message gives.
func (l *Log) warnEventsLost(ctx context.Context, op string, r tasks.Run, thread string, n int, res any) {
	vals, code, err := tasksReplyCode(res)
	if err != nil || code != 1 || len(vals) != 2 {
		return
	}
	msg, _ := vals[1].(string)
	l.logger.WarnContext(ctx, "store/redis: run written, its events not appended",
		"op", op, "tenant", r.Tenant, "run", r.ID, "thread", thread, "events", n, "err", msg)
}

package redis

// This file implements tasks.Store. A tenant's tasks, runs, idempotency
// keys and sweep indexes live under one hash tag per tenant, {<tenant>}, in
// the tenant's "tasks" space; the schedule index and the sweep's tenants
// set are global:
//
//	<prefix>:t:<tenant>:tasks:{<tenant>}:task:<id>      hash: order, v, created, json, status, kind, owner, event; <idempotency key> → run id
//	<prefix>:t:<tenant>:tasks:{<tenant>}:order          sorted set, all scores 0: <created><task id>
//	<prefix>:t:<tenant>:tasks:{<tenant>}:run:<id>       hash: task, slot, status, created, json
//	<prefix>:t:<tenant>:tasks:{<tenant>}:runs:<task>    sorted set, all scores 0: <created><run id>
//	<prefix>:t:<tenant>:tasks:{<tenant>}:queued         sorted set: id of each queued run, scored by UpdatedAt in ms
//	<prefix>:t:<tenant>:tasks:{<tenant>}:at             sorted set: id of each active task with a Trigger.At, scored by At in ms
//	<prefix>:sched:{<prefix>}:high|normal|low           sorted set: <tenant>\x00<task id>, scored by Due in ms
//	<prefix>:sched:{<prefix>}:entries                   hash: <tenant>\x00<task id> → <rank>|<slot>|<due>
//	<prefix>:sched:{<prefix>}:tenants                   set: every tenant that has (or had) a task
//	<prefix>:sched:{<prefix>}:indexed                   hash: queued, at → 1 once the sweep indexes are complete
//
// The queued and at indexes, the tenants set and the indexed hash are the
// sweep's (tasks.SweepStore); sweep.go describes them.
//
// A run's idempotency key (<task id>@<slot>, which no named field can
// equal: it holds an "@") is a field of its task's hash, whose value is
// the run's id. The task hash is the one key CreateRun reads anyway, so
// claiming the key touches no other key and creates none; DeleteTask's
// UNLINK of the task takes the keys with it. Before December 2026 the keys
// had a hash of their own, idem:<task>, which DeleteTask still unlinks but
// CreateRun no longer reads. What guards a slot still holds for the runs
// written before: a scheduled or chained run's id is derived from its key
// (tasks' scheduledRunID), so a second run of such a slot is refused as a
// taken run id; and any other run (run now, retry, an ingested event)
// takes the current millisecond as its slot, later than every slot of a
// run written before the upgrade. Only two such runs of one task made in
// the same millisecond by an old and a new process during a rolling
// upgrade could share a key.
//
// <created> is CreatedAt as 16 hex digits (Unix nanoseconds with the sign
// bit flipped), so that the lexicographic order of a sorted set whose
// scores are all 0 (ZRANGE BYLEX) is creation order, then id: ListTasks
// reads order forwards and ListRuns a task's runs backwards, and a
// cursor is simply the member a page ended at, which stays a valid
// position when that member is removed. A task's json and a run's json are
// the record with CreatedAt (and a task's Version) zeroed; the hash fields
// created and v hold them, so that UpdateTask and UpdateRun keep CreatedAt
// and bump Version inside their scripts without reading first. A task's
// status, kind, owner and event are copied out of its json for ListTasks'
// filters. Slots and due times in the schedule entries, and a run's slot,
// are RFC 3339 in UTC with nanoseconds: equal instants give equal strings.
//
// # Atomicity and Redis Cluster
//
// Every write of a tenant's tasks is one Lua script over keys with the
// tenant's hash tag, so it runs in one Cluster slot and is atomic: CreateRun
// checks that the task exists, that the run id is free and that the
// idempotency key is free, and writes the run, the key and the run index in
// one step, which is what makes one winner among any number of concurrent
// schedulers. The scripts that write a run's status or a task's status or
// trigger keep the tenant's queued and at indexes in the same step.
// DeleteTask, ListTasks and ListRuns compute run and task keys in Lua from
// the tenant's key base rather than declaring them: they share the declared
// keys' slot, so the node that runs the script holds them.
// The one exception is while that slot migrates between Cluster nodes: a
// key already moved is not seen, so for the duration ListTasks and ListRuns
// may miss a task or run and DeleteTask may leave a run record behind (its
// idempotency key and run index, which are declared, go).
//
// A per-task hash tag ({<tenant>/<task>}, like threads) would spread one
// tenant's tasks over the Cluster, but Run and UpdateRun find a run by
// tenant and run id alone, so a run keyed under its task's tag would need a
// directory key in another slot, and CreateRun would no longer be one atomic
// step. A tenant's task data therefore lives on one Cluster node; threads,
// which hold the bulk of the data, still spread per thread.
//
// The schedule index is the one structure not scoped by tenant: its members
// carry the tenant. Its four keys share the hash tag {<prefix>}, so the
// scripts that move entries (SetNext, AdvanceNext, ClearNext) and Due are
// atomic on Cluster too; no script touches both the index and a tenant's
// keys. The sweep's tenants set shares the tag {<prefix>}; CreateTask adds
// the tenant to it before the task's script runs (see sweep.go). The two
// writes that concern both the schedule index and a tenant's keys are two
// steps, as the tasks.Store contract allows (the index is a hint): SetNext
// checks that the task exists and then writes the entry, and DeleteTask
// deletes the task and then its entry. A SetNext racing a DeleteTask, or a crash between DeleteTask's
// steps, can leave an entry for a task that no longer exists; the scheduler
// drops such an entry when it finds the task missing.
//
// # Costs
//
// ListTasks filters in Lua: each script call scans at most listScanBudget
// members of the order set and returns the matches, and the client calls
// again from where the scan stopped until the page (plus one task, to know
// whether another page follows) is full or the set is exhausted. A filter
// that matches few of a tenant's tasks therefore reads all of them, in
// bounded steps that do not block Redis for long. DeleteTask removes the
// task's runs, and their queued index entries, in its one script: O(runs of
// the task). Due is one script of O(log n + limit) per priority.

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
)

var _ tasks.Store = (*Log)(nil)

// listScanBudget bounds the members of a tenant's order set one ListTasks
// script examines (or the page size plus one, if larger), so that a
// selective filter over a large tenant runs as several short scripts rather
// than one long one.
const listScanBudget = 1000

// --- keys ---

// tasksBase returns the start of every key of the tenant's tasks space,
// ending in ':'.
func (l *Log) tasksBase(tenant string) string {
	return l.prefix + ":t:" + tenant + ":tasks:{" + tenant + "}:"
}

// schedKeys returns the schedule index's keys: the sorted sets of
// tasks.Priorities in order, then the entries hash.
func (l *Log) schedKeys() []string {
	base := l.prefix + ":sched:{" + l.prefix + "}:"
	return []string{base + "high", base + "normal", base + "low", base + "entries"}
}

// schedMember is a task's member in the schedule index. Ids never contain
// NUL, so members sort by tenant, then task id.
func schedMember(tenant, taskID string) string { return tenant + "\x00" + taskID }

// taskTimeKey returns t as 16 hex digits whose lexicographic order is time
// order: Unix nanoseconds with the sign bit flipped, big-endian.
func taskTimeKey(t time.Time) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.UnixNano())^(1<<63))
	return hex.EncodeToString(b[:])
}

// taskInstant formats t for comparison in Lua: equal instants, equal strings.
func taskInstant(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// --- checks and errors ---

// tasksCheckIDs returns a vigil.Invalid error naming the first of the
// field/id pairs whose id vigil.ValidID rejects.
func tasksCheckIDs(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !vigil.ValidID(pairs[i+1]) {
			return vigil.FieldError(pairs[i], "invalid id %q", pairs[i+1])
		}
	}
	return nil
}

func tasksCheckLimit(limit int) error {
	if limit < 1 || limit > tasks.MaxListLimit {
		return vigil.FieldError("limit", "must be 1 to %d, got %d", tasks.MaxListLimit, limit)
	}
	return nil
}

// tasksCheckCursor returns a vigil.Invalid error unless c is empty or a
// ListTasks or ListRuns cursor this store could have made: an index
// member, 16 lowercase hex digits and an id.
func tasksCheckCursor(c string) error {
	if c == "" {
		return nil
	}
	bad := len(c) <= 16 || !vigil.ValidID(c[16:])
	for i := 0; i < 16 && !bad; i++ {
		bad = !('0' <= c[i] && c[i] <= '9' || 'a' <= c[i] && c[i] <= 'f')
	}
	if bad {
		return vigil.FieldError("cursor", "invalid cursor %q", c)
	}
	return nil
}

func schedCheckEntry(e tasks.ScheduleEntry) error {
	if err := tasksCheckIDs("tenant", e.Tenant, "task_id", e.TaskID); err != nil {
		return err
	}
	if e.Priority.Rank() < 0 {
		return vigil.FieldError("priority", "must be high, normal or low, got %q", e.Priority)
	}
	return nil
}

func taskNotFound(id string) error { return vigil.Errorf(vigil.NotFound, "task %s not found", id) }
func runNotFound(id string) error  { return vigil.Errorf(vigil.NotFound, "run %s not found", id) }

// tasksFail wraps a vigil error (or another error that is not Redis's) in the
// package's context: "store/redis: what: err".
func tasksFail(what string, err error) error { return fmt.Errorf("store/redis: %s: %w", what, err) }

// --- records ---

// encodeTask returns the json stored for t: t without NextFire, Version
// and CreatedAt, which the task hash holds apart.
func encodeTask(t tasks.Task) ([]byte, error) {
	t.NextFire, t.Version, t.CreatedAt = nil, 0, time.Time{}
	return json.Marshal(t)
}

// decodeTask rebuilds a task from its hash fields json, created and v.
func decodeTask(js, created, v string) (tasks.Task, error) {
	var t tasks.Task
	if err := json.Unmarshal([]byte(js), &t); err != nil {
		return tasks.Task{}, fmt.Errorf("corrupt task: %w", err)
	}
	if err := setTaskFields(&t, created, v); err != nil {
		return tasks.Task{}, err
	}
	return t, nil
}

// setTaskFields sets the fields of t that its hash keeps beside its json:
// CreatedAt from created, Version from v.
func setTaskFields(t *tasks.Task, created, v string) error {
	var err error
	if t.CreatedAt, err = time.Parse(time.RFC3339Nano, created); err != nil {
		return fmt.Errorf("corrupt task %s: created %q: %w", t.ID, created, err)
	}
	if t.Version, err = strconv.ParseInt(v, 10, 64); err != nil {
		return fmt.Errorf("corrupt task %s: version %q: %w", t.ID, v, err)
	}
	return nil
}

// encodeRun returns the json stored for r: r without CreatedAt, which the
// run hash holds apart.
func encodeRun(r tasks.Run) ([]byte, error) {
	r.CreatedAt = time.Time{}
	return json.Marshal(r)
}

// decodeRun rebuilds a run from its hash fields json and created.
func decodeRun(js, created string) (tasks.Run, error) {
	var r tasks.Run
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		return tasks.Run{}, fmt.Errorf("corrupt run: %w", err)
	}
	var err error
	if r.CreatedAt, err = time.Parse(time.RFC3339Nano, created); err != nil {
		return tasks.Run{}, fmt.Errorf("corrupt run %s: created %q: %w", r.ID, created, err)
	}
	return r, nil
}

// schedValue is an entry's value in the entries hash: its priority's rank,
// slot and due time. The script that moves entries reads the rank and slot.
func schedValue(e tasks.ScheduleEntry) string {
	return strconv.Itoa(e.Priority.Rank()) + "|" + taskInstant(e.Slot) + "|" + taskInstant(e.Due)
}

// schedDecode rebuilds an entry from its member and value.
func schedDecode(member, value string) (tasks.ScheduleEntry, error) {
	tenant, taskID, ok := strings.Cut(member, "\x00")
	parts := strings.Split(value, "|")
	if !ok || len(parts) != 3 {
		return tasks.ScheduleEntry{}, fmt.Errorf("corrupt schedule entry %q: %q", member, value)
	}
	rank, err := strconv.Atoi(parts[0])
	if err != nil || rank < 0 || rank >= len(tasks.Priorities) {
		return tasks.ScheduleEntry{}, fmt.Errorf("corrupt schedule entry %q: rank %q", member, parts[0])
	}
	e := tasks.ScheduleEntry{Tenant: tenant, TaskID: taskID, Priority: tasks.Priorities[rank]}
	if e.Slot, err = time.Parse(time.RFC3339Nano, parts[1]); err != nil {
		return tasks.ScheduleEntry{}, fmt.Errorf("corrupt schedule entry %q: %w", member, err)
	}
	if e.Due, err = time.Parse(time.RFC3339Nano, parts[2]); err != nil {
		return tasks.ScheduleEntry{}, fmt.Errorf("corrupt schedule entry %q: %w", member, err)
	}
	return e, nil
}

// tasksReplyCode reads the leading integer of a script's table reply.
func tasksReplyCode(res any) ([]any, int64, error) {
	vals, ok := res.([]any)
	if !ok || len(vals) == 0 {
		return nil, 0, fmt.Errorf("unexpected script reply %v", res)
	}
	code, ok := vals[0].(int64)
	if !ok {
		return nil, 0, fmt.Errorf("unexpected script reply %v", res)
	}
	return vals, code, nil
}

// tasksReplyStrings reads a script's reply of strings.
func tasksReplyStrings(res any) ([]string, error) {
	vals, ok := res.([]any)
	if !ok {
		return nil, fmt.Errorf("unexpected script reply %v", res)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		if out[i], ok = v.(string); !ok {
			return nil, fmt.Errorf("unexpected script reply element %v", v)
		}
	}
	return out, nil
}

// --- tasks ---

// createTaskScript stores a task unless its key exists.
// KEYS[1] task hash, KEYS[2] order set, KEYS[3] the tenant's at index.
// ARGV[1..10] order member, version, created, json, status, kind, owner,
// event, task id, its at score (createTaskArgs; writeTask's, first = 1).
// Returns 1 if stored, 0 if not.
var createTaskScript = goredis.NewScript(createTaskLua + `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
writeTask(KEYS[1], KEYS[2], KEYS[3], 1)
return 1
`)

// createTaskLua defines the Lua function writeTask(task, order, at,
// first), the write of a new task that createTaskScript and
// createThreadedScript share. It sets the fields of the task hash task,
// adds the task's member to the order set order and, if it has an at
// score, its id to the at index at, from ARGV[first] order member,
// ARGV[first+1] version, ARGV[first+2] created, ARGV[first+3] json,
// ARGV[first+4..first+7] status, kind, owner, event, ARGV[first+8] task
// id, ARGV[first+9] its at score (atScore, "" for none). It does not check
// that the task is new: its callers do.
const createTaskLua = `
local function writeTask(task, order, at, first)
  redis.call('HSET', task, 'order', ARGV[first], 'v', ARGV[first + 1], 'created', ARGV[first + 2],
    'json', ARGV[first + 3], 'status', ARGV[first + 4], 'kind', ARGV[first + 5],
    'owner', ARGV[first + 6], 'event', ARGV[first + 7])
  redis.call('ZADD', order, 0, ARGV[first])
  if ARGV[first + 9] ~= '' then redis.call('ZADD', at, ARGV[first + 9], ARGV[first + 8]) end
end
`

// createTaskArgs returns writeTask's ARGV[first..first+9] for t, encoded
// as js.
func createTaskArgs(t tasks.Task, js []byte) []any {
	return []any{taskTimeKey(t.CreatedAt) + t.ID, t.Version, t.CreatedAt.Format(time.RFC3339Nano), js,
		string(t.Status), string(t.Kind), t.Owner, t.Trigger.Event, t.ID, atScore(t)}
}

// CreateTask stores a new task with one script, atomically with its place
// in the tenant's creation order and in its at index, after recording the
// tenant in the tenants set (see createWithTenant).
func (l *Log) CreateTask(ctx context.Context, t tasks.Task) error {
	what := "create task " + t.ID
	if err := tasksCheckIDs("tenant", t.Tenant, "id", t.ID); err != nil {
		return tasksFail(what, err)
	}
	js, err := encodeTask(t)
	if err != nil {
		return tasksFail(what, err)
	}
	base := l.tasksBase(t.Tenant)
	created, err := l.createWithTenant(ctx, t.Tenant, createTaskScript, []string{l.taskKey(t.Tenant, t.ID), base + "order", base + "at"},
		createTaskArgs(t, js)...).Int()
	if err != nil {
		return wrap(what, err)
	}
	if created == 0 {
		return tasksFail(what, vigil.Errorf(vigil.Conflict, "task %s already exists", t.ID))
	}
	return nil
}

// Task returns the tenant's task, or a vigil.NotFound error.
func (l *Log) Task(ctx context.Context, tenant, id string) (tasks.Task, error) {
	what := "task " + id
	if !vigil.ValidID(tenant) || !vigil.ValidID(id) {
		return tasks.Task{}, tasksFail(what, taskNotFound(id))
	}
	vals, err := l.client.HMGet(ctx, l.taskKey(tenant, id), taskFields...).Result()
	if err != nil {
		return tasks.Task{}, wrap(what, err)
	}
	t, found, err := taskFromFields(vals)
	switch {
	case err != nil:
		return tasks.Task{}, tasksFail(what, err)
	case !found:
		return tasks.Task{}, tasksFail(what, taskNotFound(id))
	}
	return t, nil
}

// taskKey returns the key of the tenant's task hash.
func (l *Log) taskKey(tenant, id string) string { return l.tasksBase(tenant) + "task:" + id }

// taskFields are the fields of a task hash Task reads, in the order
// taskFromFields takes them.
var taskFields = []string{"json", "created", "v"}

// taskFromFields rebuilds a task from the HMGET of taskFields; found is
// false if the hash does not exist.
func taskFromFields(vals []any) (t tasks.Task, found bool, err error) {
	js, created, v, found, err := taskFieldStrings(vals)
	if err != nil || !found {
		return tasks.Task{}, false, err
	}
	t, err = decodeTask(js, created, v)
	return t, err == nil, err
}

// taskFieldStrings returns the values of the HMGET of taskFields: json,
// created and v. found is false if one is missing, as when the hash does
// not exist. An error means vals is not such a reply.
func taskFieldStrings(vals []any) (js, created, v string, found bool, err error) {
	if len(vals) != len(taskFields) {
		return "", "", "", false, fmt.Errorf("unexpected reply %v", vals)
	}
	js, ok1 := vals[0].(string)
	created, ok2 := vals[1].(string)
	v, ok3 := vals[2].(string)
	return js, created, v, ok1 && ok2 && ok3, nil
}

// updateTaskScript replaces a task if its version is the expected one,
// and its entry in the at index.
// KEYS[1] task hash, KEYS[2] the tenant's at index. ARGV[1] expected
// version, ARGV[2] new version, ARGV[3] json, ARGV[4..7] status, kind,
// owner, event, ARGV[8] task id, ARGV[9] its at score (atScore).
// Returns {1} if updated, {0} if the task is missing, {2, version} if the
// stored version differs.
var updateTaskScript = goredis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return {0} end
if v ~= ARGV[1] then return {2, v} end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'json', ARGV[3],
  'status', ARGV[4], 'kind', ARGV[5], 'owner', ARGV[6], 'event', ARGV[7])
if ARGV[9] == '' then
  redis.call('ZREM', KEYS[2], ARGV[8])
else
  redis.call('ZADD', KEYS[2], ARGV[9], ARGV[8])
end
return {1}
`)

// UpdateTask replaces the task with one compare-and-set script on its
// version; CreatedAt and the task's place in the creation order are kept.
func (l *Log) UpdateTask(ctx context.Context, t tasks.Task) (int64, error) {
	what := "update task " + t.ID
	if err := tasksCheckIDs("tenant", t.Tenant, "id", t.ID); err != nil {
		return 0, tasksFail(what, err)
	}
	js, err := encodeTask(t)
	if err != nil {
		return 0, tasksFail(what, err)
	}
	next := t.Version + 1
	base := l.tasksBase(t.Tenant)
	res, err := updateTaskScript.Run(ctx, l.client, []string{base + "task:" + t.ID, base + "at"},
		t.Version, next, js, string(t.Status), string(t.Kind), t.Owner, t.Trigger.Event, t.ID, atScore(t)).Result()
	if err != nil {
		return 0, wrap(what, err)
	}
	vals, code, err := tasksReplyCode(res)
	switch {
	case err != nil:
		return 0, tasksFail(what, err)
	case code == 0:
		return 0, tasksFail(what, taskNotFound(t.ID))
	case code == 2 && len(vals) == 2:
		return 0, tasksFail(what, vigil.Errorf(vigil.Conflict, "task %s is at version %v, not %d", t.ID, vals[1], t.Version))
	case code != 1:
		return 0, tasksFail(what, fmt.Errorf("unexpected script reply %v", res))
	}
	return next, nil
}

// listTasksScript returns the tasks that match a filter, in creation
// order from a position, scanning a bounded number of members.
// KEYS[1] order set. ARGV[1] the tenant's key base, ARGV[2] the range's
// start ('-' or '(' and a member), ARGV[3] the matches wanted, ARGV[4] the
// members to scan at most, ARGV[5..8] status, kind, owner, event (empty for
// any).
// Returns {done, last, member, json, created, v, ...}: done is 1 when the
// scan reached the end of the set, last the last member scanned (empty for
// none).
var listTasksScript = goredis.NewScript(`
local start, want, budget = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local out, found, scanned, done = {0, ''}, 0, 0, 0
while found < want and scanned < budget do
  local n = math.min(budget - scanned, math.max(want - found, 64))
  local ms = redis.call('ZRANGE', KEYS[1], start, '+', 'BYLEX', 'LIMIT', 0, n)
  for _, m in ipairs(ms) do
    scanned = scanned + 1
    out[2] = m
    local key = ARGV[1] .. 'task:' .. string.sub(m, 17)
    local f = redis.call('HMGET', key, 'status', 'kind', 'owner', 'event')
    if f[1] and (ARGV[5] == '' or f[1] == ARGV[5]) and (ARGV[6] == '' or f[2] == ARGV[6])
        and (ARGV[7] == '' or f[3] == ARGV[7]) and (ARGV[8] == '' or f[4] == ARGV[8]) then
      local r = redis.call('HMGET', key, 'json', 'created', 'v')
      out[#out + 1] = m
      out[#out + 1] = r[1]
      out[#out + 1] = r[2]
      out[#out + 1] = r[3]
      found = found + 1
      if found == want then break end
    end
  end
  if found < want and #ms < n then done = 1 break end
  start = '(' .. out[2]
end
out[1] = done
return out
`)

// ListTasks returns a page of the tenant's tasks that match f, in creation
// order. The filter runs in Lua over bounded scans; see the file comment
// for its cost.
func (l *Log) ListTasks(ctx context.Context, tenant string, f tasks.TaskFilter) (tasks.TaskPage, error) {
	what := "list tasks of " + tenant
	if err := tasksCheckLimit(f.Limit); err != nil {
		return tasks.TaskPage{}, tasksFail(what, err)
	}
	if err := tasksCheckCursor(f.After); err != nil {
		return tasks.TaskPage{}, tasksFail(what, err)
	}
	page := tasks.TaskPage{Tasks: []tasks.Task{}}
	if !vigil.ValidID(tenant) {
		return page, nil
	}
	base := l.tasksBase(tenant)
	start := "-"
	if f.After != "" {
		start = "(" + f.After
	}
	want := f.Limit + 1 // one more, to know whether a next page exists
	var members []string
	for {
		res, err := listTasksScript.Run(ctx, l.client, []string{base + "order"}, base, start,
			want-len(members), max(listScanBudget, want), string(f.Status), string(f.Kind), f.Owner, f.Event).Result()
		if err != nil {
			return tasks.TaskPage{}, wrap(what, err)
		}
		vals, done, err := tasksReplyCode(res)
		if err != nil || len(vals) < 2 || (len(vals)-2)%4 != 0 {
			return tasks.TaskPage{}, tasksFail(what, fmt.Errorf("unexpected script reply %v", res))
		}
		strs, err := tasksReplyStrings(vals[1:])
		if err != nil {
			return tasks.TaskPage{}, tasksFail(what, err)
		}
		for i := 1; i+3 < len(strs); i += 4 {
			t, err := decodeTask(strs[i+1], strs[i+2], strs[i+3])
			if err != nil {
				return tasks.TaskPage{}, tasksFail(what, err)
			}
			members = append(members, strs[i])
			page.Tasks = append(page.Tasks, t)
		}
		if len(members) >= want || done == 1 || strs[0] == "" {
			break
		}
		start = "(" + strs[0]
	}
	if len(page.Tasks) > f.Limit {
		page.Tasks = page.Tasks[:f.Limit]
		page.Next = members[f.Limit-1]
	}
	return page, nil
}

// deleteTaskScript removes a task (its idempotency keys with it), its
// runs, their run index, their entries in the queued index, and the task's
// place in the creation order and the at index.
// KEYS[1] task hash, KEYS[2] order set, KEYS[3] the task's run index,
// KEYS[4] its idempotency keys of before December 2026 (see the file
// comment), KEYS[5] the tenant's queued index, KEYS[6]
// its at index. ARGV[1] the tenant's key base, ARGV[2] the task id.
// Returns 1 if deleted, 0 if the task is missing.
var deleteTaskScript = goredis.NewScript(`
local member = redis.call('HGET', KEYS[1], 'order')
if not member then return 0 end
redis.call('ZREM', KEYS[2], member)
for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local id = string.sub(m, 17)
  redis.call('UNLINK', ARGV[1] .. 'run:' .. id)
  redis.call('ZREM', KEYS[5], id)
end
redis.call('ZREM', KEYS[6], ARGV[2])
redis.call('UNLINK', KEYS[1], KEYS[3], KEYS[4])
return 1
`)

// DeleteTask removes the task with its runs and idempotency keys in one
// script, then its schedule entry in a second (see the file comment).
func (l *Log) DeleteTask(ctx context.Context, tenant, id string) error {
	what := "delete task " + id
	if !vigil.ValidID(tenant) || !vigil.ValidID(id) {
		return tasksFail(what, taskNotFound(id))
	}
	base := l.tasksBase(tenant)
	deleted, err := deleteTaskScript.Run(ctx, l.client,
		[]string{base + "task:" + id, base + "order", base + "runs:" + id, base + "idem:" + id, base + "queued", base + "at"}, base, id).Int()
	if err != nil {
		return wrap(what, err)
	}
	if deleted == 0 {
		return tasksFail(what, taskNotFound(id))
	}
	if err := l.schedMove(ctx, schedMember(tenant, id), "*", nil); err != nil {
		return wrap(what+": clear schedule entry", err)
	}
	return nil
}

// --- runs ---

// createRunScript stores a run if its task exists and neither its id nor
// its idempotency key is taken, with the key (a field of the task hash),
// the run index entry and, if the run is queued, its queued index entry.
// KEYS[1] task hash, KEYS[2] run hash, KEYS[3] the task's run index,
// KEYS[4] the tenant's queued index.
// ARGV[1] idempotency key, ARGV[2] run id, ARGV[3] index member, ARGV[4]
// task id, ARGV[5] slot, ARGV[6] status, ARGV[7] created, ARGV[8] json,
// ARGV[9] the run's queued score (queuedScore).
// Returns {1} if stored, {0} if the task is missing, {2} if the run id is
// taken, {3, run id} if the key is.
var createRunScript = goredis.NewScript(createRunLua + `
return {1}
`)

// createRunLua is createRunScript but for its last line: the create that
// createRunThreadedScript shares.
const createRunLua = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {2} end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return {3, redis.call('HGET', KEYS[1], ARGV[1])} end
redis.call('HSET', KEYS[2], 'task', ARGV[4], 'slot', ARGV[5], 'status', ARGV[6], 'created', ARGV[7], 'json', ARGV[8])
redis.call('ZADD', KEYS[3], 0, ARGV[3])
if ARGV[9] ~= '' then redis.call('ZADD', KEYS[4], ARGV[9], ARGV[2]) end
`

// CreateRun stores a new run with one script that claims its idempotency
// key in the same step, so that of many schedulers firing one slot exactly
// one succeeds and the others get a vigil.Conflict error.
func (l *Log) CreateRun(ctx context.Context, r tasks.Run) error {
	what := "create run " + r.ID
	if err := tasksCheckIDs("tenant", r.Tenant, "id", r.ID, "task_id", r.TaskID); err != nil {
		return tasksFail(what, err)
	}
	keys, args, err := l.createRunCall(r)
	if err != nil {
		return tasksFail(what, err)
	}
	res, err := createRunScript.Run(ctx, l.client, keys, args...).Result()
	return createRunResult(r, res, err)
}

// createRunCall returns createRunScript's keys and arguments for r.
func (l *Log) createRunCall(r tasks.Run) (keys []string, args []any, err error) {
	js, err := encodeRun(r)
	if err != nil {
		return nil, nil, err
	}
	base := l.tasksBase(r.Tenant)
	keys = []string{base + "task:" + r.TaskID, l.runKey(r.Tenant, r.ID), base + "runs:" + r.TaskID, base + "queued"}
	args = []any{r.IdempotencyKey(), r.ID, taskTimeKey(r.CreatedAt) + r.ID, r.TaskID, taskInstant(r.Slot), string(r.Status),
		r.CreatedAt.Format(time.RFC3339Nano), js, queuedScore(r)}
	return keys, args, nil
}

// createRunResult reads createRunScript's reply (or error) for r as
// CreateRun's error.
func createRunResult(r tasks.Run, res any, err error) error {
	what := "create run " + r.ID
	if err != nil {
		return wrap(what, err)
	}
	vals, code, err := tasksReplyCode(res)
	switch {
	case err != nil:
		return tasksFail(what, err)
	case code == 0:
		return tasksFail(what, taskNotFound(r.TaskID))
	case code == 2:
		return tasksFail(what, vigil.Errorf(vigil.Conflict, "run %s already exists", r.ID))
	case code == 3 && len(vals) == 2:
		return tasksFail(what, vigil.Errorf(vigil.Conflict, "task %s already has run %v for slot %s", r.TaskID, vals[1], taskInstant(r.Slot)))
	case code != 1:
		return tasksFail(what, fmt.Errorf("unexpected script reply %v", res))
	}
	return nil
}

// Run returns the tenant's run, or a vigil.NotFound error.
func (l *Log) Run(ctx context.Context, tenant, id string) (tasks.Run, error) {
	what := "run " + id
	if !vigil.ValidID(tenant) || !vigil.ValidID(id) {
		return tasks.Run{}, tasksFail(what, runNotFound(id))
	}
	vals, err := l.client.HMGet(ctx, l.runKey(tenant, id), "json", "created").Result()
	if err != nil {
		return tasks.Run{}, wrap(what, err)
	}
	js, ok1 := vals[0].(string)
	created, ok2 := vals[1].(string)
	if !ok1 || !ok2 {
		return tasks.Run{}, tasksFail(what, runNotFound(id))
	}
	r, err := decodeRun(js, created)
	if err != nil {
		return tasks.Run{}, tasksFail(what, err)
	}
	return r, nil
}

// updateRunScript replaces a run if its task and slot are the given ones
// and its status is the expected one, and its entry in the queued index
// (only a run that was queued has one to remove).
// KEYS[1] run hash, KEYS[2] the tenant's queued index. ARGV[1] task id,
// ARGV[2] slot, ARGV[3] expected status, ARGV[4] new status, ARGV[5] json,
// ARGV[6] run id, ARGV[7] its queued score (queuedScore).
// Returns {1} if updated, {0} if the run is missing, {2, task, slot} if its
// identity differs, {3, status} if its status does.
var updateRunScript = goredis.NewScript(updateRunLua + `
return {1}
`)

// updateRunLua is updateRunScript but for its last line: the
// compare-and-set that updateRunThreadedScript shares.
const updateRunLua = `
local cur = redis.call('HMGET', KEYS[1], 'task', 'slot', 'status')
if not cur[1] then return {0} end
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return {2, cur[1], cur[2]} end
if cur[3] ~= ARGV[3] then return {3, cur[3]} end
redis.call('HSET', KEYS[1], 'status', ARGV[4], 'json', ARGV[5])
if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[7], ARGV[6])
elseif cur[3] == 'queued' then
  redis.call('ZREM', KEYS[2], ARGV[6])
end
`

// UpdateRun replaces the run with one compare-and-set script on its status
// (and a check of its task and slot); CreatedAt is kept.
func (l *Log) UpdateRun(ctx context.Context, r tasks.Run, from tasks.RunStatus) error {
	what := "update run " + r.ID
	if err := tasksCheckIDs("tenant", r.Tenant, "id", r.ID); err != nil {
		return tasksFail(what, err)
	}
	js, err := encodeRun(r)
	if err != nil {
		return tasksFail(what, err)
	}
	res, err := l.runScript(ctx, updateRunScript, l.updateRunKeys(r), updateRunArgs(r, from, js)...).Result()
	return updateRunResult(r, from, res, err)
}

// runKey returns the key of the tenant's run hash.
func (l *Log) runKey(tenant, id string) string { return l.tasksBase(tenant) + "run:" + id }

// updateRunKeys returns updateRunScript's keys for writing r.
func (l *Log) updateRunKeys(r tasks.Run) []string {
	return []string{l.runKey(r.Tenant, r.ID), l.tasksBase(r.Tenant) + "queued"}
}

// updateRunArgs returns updateRunScript's arguments for writing r, encoded
// as js, over a run whose status is from.
func updateRunArgs(r tasks.Run, from tasks.RunStatus, js []byte) []any {
	return []any{r.TaskID, taskInstant(r.Slot), string(from), string(r.Status), js, r.ID, queuedScore(r)}
}

// updateRunResult reads updateRunScript's reply (or error) for r as
// UpdateRun's error.
func updateRunResult(r tasks.Run, from tasks.RunStatus, res any, err error) error {
	what := "update run " + r.ID
	if err != nil {
		return wrap(what, err)
	}
	vals, code, err := tasksReplyCode(res)
	switch {
	case err != nil:
		return tasksFail(what, err)
	case code == 0:
		return tasksFail(what, runNotFound(r.ID))
	case code == 2 && len(vals) == 3:
		return tasksFail(what, vigil.FieldError("task_id", "run %s belongs to task %v at slot %v; its task and slot cannot change", r.ID, vals[1], vals[2]))
	case code == 3 && len(vals) == 2:
		return tasksFail(what, vigil.Errorf(vigil.Conflict, "run %s is %v, not %s", r.ID, vals[1], from))
	case code != 1:
		return tasksFail(what, fmt.Errorf("unexpected script reply %v", res))
	}
	return nil
}

// listRunsScript returns runs of a task, newest first, before a position.
// KEYS[1] the task's run index. ARGV[1] the tenant's key base, ARGV[2] the
// range's end ('+' or '(' and a member), ARGV[3] the most runs to return.
// Returns {member, json, created, ...}.
var listRunsScript = goredis.NewScript(`
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], ARGV[2], '-', 'BYLEX', 'REV', 'LIMIT', 0, ARGV[3])) do
  local r = redis.call('HMGET', ARGV[1] .. 'run:' .. string.sub(m, 17), 'json', 'created')
  if r[1] then
    out[#out + 1] = m
    out[#out + 1] = r[1]
    out[#out + 1] = r[2]
  end
end
return out
`)

// ListRuns returns a page of a task's runs, newest first, in one script.
func (l *Log) ListRuns(ctx context.Context, tenant string, f tasks.RunFilter) (tasks.RunPage, error) {
	what := "list runs of " + f.TaskID
	if err := tasksCheckLimit(f.Limit); err != nil {
		return tasks.RunPage{}, tasksFail(what, err)
	}
	if err := tasksCheckCursor(f.After); err != nil {
		return tasks.RunPage{}, tasksFail(what, err)
	}
	page := tasks.RunPage{Runs: []tasks.Run{}}
	if !vigil.ValidID(tenant) || !vigil.ValidID(f.TaskID) {
		return page, nil
	}
	base := l.tasksBase(tenant)
	end := "+"
	if f.After != "" {
		end = "(" + f.After
	}
	res, err := listRunsScript.Run(ctx, l.client, []string{base + "runs:" + f.TaskID}, base, end, f.Limit+1).Result()
	if err != nil {
		return tasks.RunPage{}, wrap(what, err)
	}
	strs, err := tasksReplyStrings(res)
	if err != nil || len(strs)%3 != 0 {
		return tasks.RunPage{}, tasksFail(what, fmt.Errorf("unexpected script reply %v", res))
	}
	var members []string
	for i := 0; i+2 < len(strs); i += 3 {
		r, err := decodeRun(strs[i+1], strs[i+2])
		if err != nil {
			return tasks.RunPage{}, tasksFail(what, err)
		}
		members = append(members, strs[i])
		page.Runs = append(page.Runs, r)
	}
	if len(page.Runs) > f.Limit {
		page.Runs = page.Runs[:f.Limit]
		page.Next = members[f.Limit-1]
	}
	return page, nil
}

// --- schedule index ---

// schedMoveScript replaces or removes a task's schedule entry, provided
// its slot is the expected one.
// KEYS[1..3] the priorities' sorted sets, high to low; KEYS[4] the entries
// hash. ARGV[1] member, ARGV[2] the expected slot, or '*' for any entry or
// none, ARGV[3] the new entry's rank (empty to remove the entry), ARGV[4] its
// score (Due in ms), ARGV[5] its value.
// Returns 1 if done, 0 if the stored entry's slot is not the expected one.
var schedMoveScript = goredis.NewScript(schedMoveLua + `
return move(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
`)

// schedMoveBatchScript is schedMoveScript for many entries: ARGV holds
// schedMoveScript's five arguments per entry, one entry after the other.
// Returns schedMoveScript's reply for each entry, in order.
var schedMoveBatchScript = goredis.NewScript(schedMoveLua + `
local out = {}
for i = 1, #ARGV, 5 do
  out[#out + 1] = move(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
end
return out
`)

// schedMoveLua defines move(member, from, rank, score, value), the body
// of schedMoveScript, which schedMoveBatchScript shares.
const schedMoveLua = `
local function move(member, from, rank, score, value)
  local cur = redis.call('HGET', KEYS[4], member)
  if from ~= '*' and (not cur or string.match(cur, '^%d|([^|]*)|') ~= from) then return 0 end
  -- An entry that stays in its priority's set only changes its score:
  -- ZADD moves it, no ZREM needed.
  if cur and string.sub(cur, 1, 1) ~= rank then
    redis.call('ZREM', KEYS[tonumber(string.sub(cur, 1, 1)) + 1], member)
  end
  if rank == '' then
    redis.call('HDEL', KEYS[4], member)
  else
    redis.call('HSET', KEYS[4], member, value)
    redis.call('ZADD', KEYS[tonumber(rank) + 1], score, member)
  end
  return 1
end
`

// schedMove runs schedMoveScript: it replaces the entry of member with to,
// or removes it when to is nil, provided the stored slot is fromSlot ("*"
// for any). It reports a changed entry as a vigil.Conflict error and
// returns Redis's errors unwrapped.
func (l *Log) schedMove(ctx context.Context, member, fromSlot string, to *tasks.ScheduleEntry) error {
	res, err := schedMoveScript.Run(ctx, l.client, l.schedKeys(), schedMoveArgs(member, fromSlot, to)...).Result()
	return schedMoveResult(fromSlot, res, err)
}

// schedMoveArgs returns schedMoveScript's arguments.
func schedMoveArgs(member, fromSlot string, to *tasks.ScheduleEntry) []any {
	args := []any{member, fromSlot, "", "", ""}
	if to != nil {
		args[2], args[3], args[4] = to.Priority.Rank(), to.Due.UnixMilli(), schedValue(*to)
	}
	return args
}

// schedMoveResult reads schedMoveScript's reply (or error) as schedMove's
// error.
func schedMoveResult(fromSlot string, res any, err error) error {
	if err != nil {
		return err
	}
	if moved, ok := res.(int64); !ok {
		return fmt.Errorf("unexpected script reply %v", res)
	} else if moved == 0 {
		return vigil.Errorf(vigil.Conflict, "the schedule entry changed: its slot is no longer %s", fromSlot)
	}
	return nil
}

// SetNext makes e the task's schedule entry. It checks that the task
// exists, then writes the entry in a second step (see the file comment).
func (l *Log) SetNext(ctx context.Context, e tasks.ScheduleEntry) error {
	what := "set next of task " + e.TaskID
	if err := schedCheckEntry(e); err != nil {
		return tasksFail(what, err)
	}
	n, err := l.client.Exists(ctx, l.tasksBase(e.Tenant)+"task:"+e.TaskID).Result()
	if err != nil {
		return wrap(what, err)
	}
	if n == 0 {
		return tasksFail(what, taskNotFound(e.TaskID))
	}
	if err := l.schedMove(ctx, schedMember(e.Tenant, e.TaskID), "*", &e); err != nil {
		return wrap(what, err)
	}
	return nil
}

// AdvanceNext replaces or removes the task's schedule entry with one
// compare-and-set script on its slot.
func (l *Log) AdvanceNext(ctx context.Context, from tasks.ScheduleEntry, to *tasks.ScheduleEntry) error {
	if err := advanceNextCheck(from, to); err != nil {
		return err
	}
	return advanceNextResult(from, l.schedMove(ctx, schedMember(from.Tenant, from.TaskID), taskInstant(from.Slot), to))
}

// advanceNextCheck returns AdvanceNext's error for arguments it refuses.
func advanceNextCheck(from tasks.ScheduleEntry, to *tasks.ScheduleEntry) error {
	what := "advance next of task " + from.TaskID
	if err := tasksCheckIDs("tenant", from.Tenant, "task_id", from.TaskID); err != nil {
		return tasksFail(what, err)
	}
	if to != nil {
		if to.Tenant != from.Tenant || to.TaskID != from.TaskID {
			return tasksFail(what, vigil.FieldError("task_id", "an entry advances to the same task (%s/%s), not %s/%s",
				from.Tenant, from.TaskID, to.Tenant, to.TaskID))
		}
		if err := schedCheckEntry(*to); err != nil {
			return tasksFail(what, err)
		}
	}
	return nil
}

// advanceNextResult wraps schedMove's error as AdvanceNext's.
func advanceNextResult(from tasks.ScheduleEntry, err error) error {
	what := "advance next of task " + from.TaskID
	if vigil.ErrorCode(err) == vigil.Conflict {
		return tasksFail(what, err)
	}
	if err != nil {
		return wrap(what, err)
	}
	return nil
}

// ClearNext removes the task's schedule entry, if it has one.
func (l *Log) ClearNext(ctx context.Context, tenant, taskID string) error {
	if !vigil.ValidID(tenant) || !vigil.ValidID(taskID) {
		return nil
	}
	if err := l.schedMove(ctx, schedMember(tenant, taskID), "*", nil); err != nil {
		return wrap("clear next of task "+taskID, err)
	}
	return nil
}

// Next returns the task's schedule entry, or a vigil.NotFound error.
func (l *Log) Next(ctx context.Context, tenant, taskID string) (tasks.ScheduleEntry, error) {
	what := "next of task " + taskID
	none := vigil.Errorf(vigil.NotFound, "task %s has no next fire time", taskID)
	if !vigil.ValidID(tenant) || !vigil.ValidID(taskID) {
		return tasks.ScheduleEntry{}, tasksFail(what, none)
	}
	member := schedMember(tenant, taskID)
	v, err := l.client.HGet(ctx, l.schedKeys()[3], member).Result()
	if errors.Is(err, goredis.Nil) {
		return tasks.ScheduleEntry{}, tasksFail(what, none)
	}
	if err != nil {
		return tasks.ScheduleEntry{}, wrap(what, err)
	}
	e, err := schedDecode(member, v)
	if err != nil {
		return tasks.ScheduleEntry{}, tasksFail(what, err)
	}
	return e, nil
}

// schedDueScript returns the due entries, high priority first, each priority in
// score (Due in ms) then member (tenant, task) order.
// KEYS[1..3] the priorities' sorted sets, high to low; KEYS[4] the entries
// hash. ARGV[1] now in ms, ARGV[2] the most entries to return.
// Returns {member, value, ...}.
var schedDueScript = goredis.NewScript(`
local left, out = tonumber(ARGV[2]), {}
for i = 1, 3 do
  if left <= 0 then break end
  local ms = redis.call('ZRANGE', KEYS[i], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, left)
  for _, m in ipairs(ms) do
    out[#out + 1] = m
    out[#out + 1] = redis.call('HGET', KEYS[4], m) or ''
  end
  left = left - #ms
end
return out
`)

// Due returns the entries of every tenant due at now, in one script.
func (l *Log) Due(ctx context.Context, now time.Time, limit int) ([]tasks.ScheduleEntry, error) {
	if limit < 1 || limit > tasks.MaxDueLimit {
		return nil, tasksFail("due", vigil.FieldError("limit", "must be 1 to %d, got %d", tasks.MaxDueLimit, limit))
	}
	res, err := schedDueScript.Run(ctx, l.client, l.schedKeys(), now.UnixMilli(), limit).Result()
	if err != nil {
		return nil, wrap("due", err)
	}
	strs, err := tasksReplyStrings(res)
	if err != nil || len(strs)%2 != 0 {
		return nil, tasksFail("due", fmt.Errorf("unexpected script reply %v", res))
	}
	out := make([]tasks.ScheduleEntry, 0, len(strs)/2)
	for i := 0; i+1 < len(strs); i += 2 {
		e, err := schedDecode(strs[i], strs[i+1])
		if err != nil {
			return nil, tasksFail("due", err)
		}
		out = append(out, e)
	}
	return out, nil
}

package redis

// This file implements tasks.SweepStore: the walks over every tenant's
// queued runs and active one-shot tasks. Two sorted sets per tenant and a
// set of tenants, kept by the writes of tasks and runs, let a walk read
// what it looks for rather than the keyspace; a hash says whether they are
// complete:
//
//	<prefix>:t:<tenant>:tasks:{<tenant>}:queued   sorted set: id of each queued run, scored by UpdatedAt in ms
//	<prefix>:t:<tenant>:tasks:{<tenant>}:at       sorted set: id of each active task with a Trigger.At, scored by At in ms
//	<prefix>:sched:{<prefix>}:tenants             set: every tenant that has (or had) a task
//	<prefix>:sched:{<prefix>}:indexed             hash: queued, at → 1 once the index is complete
//
// The two sorted sets carry the tenant's hash tag, so each script that
// writes a run or a task keeps them in the same step: createRunScript and
// updateRunScript (and createRunThreadedScript and updateRunThreadedScript,
// which share their Lua) add a run that is queued and remove one that
// leaves queued, createTaskScript, createThreadedScript and
// updateTaskScript do the same for a task that is active with an at, and
// deleteTaskScript removes the task's and its runs' entries. A walk SSCANs
// the tenants set and, for each tenant (once, though SSCAN may return a
// tenant twice), reads with ZRANGE BYSCORE the members scored before its
// time, in pages of sweepPage (a page is extended to the last member of
// its last score, so that the next one starts after that score, whatever
// fn removed meanwhile), then their records in one pipeline, and checks
// each record's status and time again. An entry whose record is gone or no
// longer belongs in the index (one the writes above did not remove: left
// by an older version, say) is removed with sweepUnindexScript, which
// leaves it if the record changed since it was read. An entry whose record
// cannot be decoded stays (each walk reports it), and one whose record
// belongs but is not due before the walk's time is skipped. Its cost is one
// SSCAN step per sweepScanCount tenants, one ZRANGE per tenant
// (pipelined), the records it finds, and a script (pipelined) per stale
// entry it removes: not the size of the deployment.
//
// The tenants set and the indexed hash are not under a tenant's hash tag:
// they share the schedule index's tag, {<prefix>}, so on Redis Cluster they
// live in that slot and no script touches both them and a tenant's keys. CreateTask and
// CreateThreadedTask add the tenant before the task is written
// (createWithTenant): in the same pipeline on a single Redis, which runs
// the two in order, and in a round trip of its own on Cluster. A tenant is
// never removed: a tenant without tasks costs a walk one empty ZRANGE.
// Purge and DeletePrefix remove all four kinds of key with the rest.
//
// Data written before the indexes existed is swept too. A walk whose field
// of the indexed hash is missing makes the old walk instead: it SCANs the
// keyspace for the run (task) hashes by pattern (TYPE hash, sweepScanCount
// keys a step), reads the status of each page's hashes in one pipeline and
// the records that match in a second, adds the tenant of every hash it
// meets to the tenants set and every queued run (active task with an at) to
// its index, with sweepIndexScript, which writes the entry only if the
// record is still the one read. When that walk completes (fn did not stop
// it), it sets its field: from then on the walk reads the index. So the
// first sweep of an existing deployment, or of one whose indexes were
// deleted along with the indexed hash, costs a SCAN over every key (on
// Cluster, every master in turn); the following ones do not. Processes of
// an older version that still write runs and tasks after that do not keep
// the indexes: delete the indexed hash once every process is upgraded. The
// next sweep then adds, by SCAN, the entries they did not write, and the
// walks after it remove the entries they left behind, each when a walk
// first reads it (once its score is before the walk's time). An entry's
// score is not corrected: one that an older version left too low is read,
// and skipped, by each walk until its record changes or its time comes.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
)

var _ tasks.SweepStore = (*Log)(nil)

// sweepScanCount is the COUNT of each SCAN and SSCAN step of a sweep.
const sweepScanCount = 1000

// sweepPage is how many members of a tenant's index one ZRANGE of a walk
// reads (more if its last score has more).
const sweepPage = 1000

// sweepIndex describes a walk: its index and the records it indexes.
type sweepIndex struct {
	name   string   // the index's key in a tenant's space, and its field of the indexed hash
	record string   // the records' key in a tenant's space, before the id
	status string   // the status of the records the index holds
	fields []string // the fields of a record the walk reads; json first
}

var (
	queuedIndex = sweepIndex{name: "queued", record: "run:", status: string(tasks.RunQueued), fields: []string{"json", "created"}}
	atIndex     = sweepIndex{name: "at", record: "task:", status: string(tasks.StatusActive), fields: taskFields}
)

// queuedScore returns r's score in its tenant's queued index, UpdatedAt in
// ms, or "" if r is not queued and belongs in no index.
func queuedScore(r tasks.Run) string {
	if r.Status != tasks.RunQueued {
		return ""
	}
	return strconv.FormatInt(r.UpdatedAt.UnixMilli(), 10)
}

// atScore returns t's score in its tenant's at index, Trigger.At in ms, or
// "" if t is not active with an at and belongs in no index.
func atScore(t tasks.Task) string {
	if t.Status != tasks.StatusActive || t.Trigger.At.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.Trigger.At.UnixMilli(), 10)
}

// sweepKey returns the key of the tenants set ("tenants") or of the
// indexed hash ("indexed"), under the schedule index's hash tag.
func (l *Log) sweepKey(name string) string { return l.prefix + ":sched:{" + l.prefix + "}:" + name }

// createWithTenant runs script, which creates one of tenant's tasks, after
// adding tenant to the tenants set, so that a sweep walks every tenant
// that has a task. On a single Redis both go in one pipeline, which Redis
// runs in order; whatever fails the SADD (memory, a read-only replica)
// fails the script too. On any other client (Cluster, where a pipeline's
// commands for different nodes run independently) the SADD is a round trip
// of its own, and the script does not run if it fails.
func (l *Log) createWithTenant(ctx context.Context, tenant string, script *goredis.Script, keys []string, args ...any) *goredis.Cmd {
	if _, single := l.client.(*goredis.Client); !single {
		if err := l.client.SAdd(ctx, l.sweepKey("tenants"), tenant).Err(); err != nil {
			cmd := goredis.NewCmd(ctx)
			cmd.SetErr(err)
			return cmd
		}
		return script.Run(ctx, l.client, keys, args...)
	}
	pipe := l.client.Pipeline()
	added := pipe.SAdd(ctx, l.sweepKey("tenants"), tenant)
	cmd := script.EvalSha(ctx, pipe, keys, args...)
	_, _ = pipe.Exec(ctx) // each command carries its own error
	if err := added.Err(); err != nil {
		cmd.SetErr(err)
		return cmd
	}
	if isNoScript(cmd.Err()) {
		// Redis's script cache was flushed: the SADD ran, the script did
		// not. EVAL sends its source, which also caches it again.
		return script.Eval(ctx, l.client, keys, args...)
	}
	return cmd
}

// QueuedRuns implements tasks.SweepStore.
func (l *Log) QueuedRuns(ctx context.Context, before time.Time, fn func(tasks.Run) error) error {
	return l.sweep(ctx, "sweep queued runs", queuedIndex, before, func(key string, vals []any) (sweepHit, error) {
		js, ok1 := vals[0].(string)
		created, ok2 := vals[1].(string)
		if !ok1 || !ok2 {
			return sweepHit{}, nil // deleted since it was listed
		}
		r, err := decodeRun(js, created)
		if err != nil {
			return sweepHit{}, fmt.Errorf("%s: %w", key, err)
		}
		hit := sweepHit{score: queuedScore(r)}
		if r.Status == tasks.RunQueued && r.UpdatedAt.Before(before) {
			hit.call = func() error { return fn(r) }
		}
		return hit, nil
	})
}

// ActiveOneShots implements tasks.SweepStore.
func (l *Log) ActiveOneShots(ctx context.Context, before time.Time, fn func(tasks.Task) error) error {
	return l.sweep(ctx, "sweep one-shot tasks", atIndex, before, func(key string, vals []any) (sweepHit, error) {
		t, found, err := taskFromFields(vals)
		if err != nil {
			return sweepHit{}, fmt.Errorf("%s: %w", key, err)
		}
		if !found {
			return sweepHit{}, nil
		}
		hit := sweepHit{score: atScore(t)}
		if t.Status == tasks.StatusActive && !t.Trigger.At.IsZero() && t.Trigger.At.Before(before) {
			hit.call = func() error { return fn(t) }
		}
		return hit, nil
	})
}

// sweepHit is what a walk makes of one record it read.
type sweepHit struct {
	score string       // the record's score in the index, "" for none
	call  func() error // fn's call with the record, nil if it does not match
	bad   bool         // the record could not be decoded: its entry stays, and the walk reports it
}

// sweep walks the records of ix scored before before: through the index if
// its indexed field is set, else by SCAN, rebuilding the index. For each
// record it reads ix.fields and calls each with them. each returns bad for
// a record it cannot decode, which is skipped and reported after the walk;
// the error of a hit's call (fn's) stops the walk.
func (l *Log) sweep(ctx context.Context, what string, ix sweepIndex, before time.Time, each func(key string, vals []any) (sweepHit, error)) error {
	var bad error
	decode := func(key string, vals []any) sweepHit {
		hit, b := each(key, vals)
		if b != nil {
			bad = errors.Join(bad, b)
			hit.bad = true
		}
		return hit
	}
	indexed, err := l.client.HExists(ctx, l.sweepKey("indexed"), ix.name).Result()
	switch {
	case err != nil:
		err = redisFailure{err}
	case indexed:
		err = l.sweepIndexed(ctx, ix, before, decode)
	default:
		if err = l.sweepScan(ctx, ix, decode); err == nil {
			if e := l.client.HSet(ctx, l.sweepKey("indexed"), ix.name, 1).Err(); e != nil {
				err = redisFailure{e}
			}
		}
	}
	if f, ok := errors.AsType[redisFailure](err); ok {
		return wrap(what, f.err)
	}
	if err != nil {
		return err // fn's own error, or ctx's
	}
	if bad != nil {
		return fmt.Errorf("store/redis: %s: %w", what, bad)
	}
	return nil
}

// sweepIndexed walks ix's index of every tenant in the tenants set, once
// each: SSCAN may return a member twice (when the set is rehashed between
// two steps), and the walk remembers the tenants it has visited.
func (l *Log) sweepIndexed(ctx context.Context, ix sweepIndex, before time.Time, each func(string, []any) sweepHit) error {
	upTo := strconv.FormatInt(before.UnixMilli(), 10) // ms of before, rounded down: the records then check before exactly
	seen := map[string]bool{}
	var cursor uint64
	for {
		step, next, err := l.client.SScan(ctx, l.sweepKey("tenants"), cursor, "", sweepScanCount).Result()
		if err != nil {
			return redisFailure{err}
		}
		tenants := step[:0]
		for _, tenant := range step {
			if !seen[tenant] {
				seen[tenant] = true
				tenants = append(tenants, tenant)
			}
		}
		// The first page of every tenant of the step, in one pipeline.
		firsts := make([]*goredis.ZSliceCmd, len(tenants))
		if _, err := l.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, tenant := range tenants {
				firsts[i] = p.ZRangeArgsWithScores(ctx, sweepRange(l.tasksBase(tenant)+ix.name, "-inf", upTo, sweepPage))
			}
			return nil
		}); err != nil {
			return redisFailure{err}
		}
		for i, tenant := range tenants {
			if err := l.sweepTenant(ctx, ix, l.tasksBase(tenant), upTo, firsts[i].Val(), each); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return ctx.Err()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// sweepRange is the ZRANGE BYSCORE of at most count members of key scored
// from min to max.
func sweepRange(key, min, max string, count int64) goredis.ZRangeArgs {
	return goredis.ZRangeArgs{Key: key, Start: min, Stop: max, ByScore: true, Count: count}
}

// sweepTenant walks one tenant's index, scored up to upTo, from page, its
// first page. After each page's records it removes the entries of those
// that are gone or belong in the index no more (see the file comment).
func (l *Log) sweepTenant(ctx context.Context, ix sweepIndex, base, upTo string, page []goredis.Z, each func(string, []any) sweepHit) error {
	key := base + ix.name
	for len(page) > 0 {
		full := len(page) >= sweepPage
		var from string
		if full {
			// Complete the page's last score, so that the next page starts
			// after it: entries fn removes meanwhile shift no position.
			last := page[len(page)-1].Score
			from = strconv.FormatFloat(last, 'f', -1, 64)
			ties, err := l.client.ZRangeArgsWithScores(ctx, sweepRange(key, from, from, 0)).Result()
			if err != nil {
				return redisFailure{err}
			}
			for len(page) > 0 && page[len(page)-1].Score == last {
				page = page[:len(page)-1]
			}
			page = append(page, ties...)
		}
		keys := make([]string, len(page))
		for i, z := range page {
			keys[i] = base + ix.record + fmt.Sprint(z.Member)
		}
		var stale []scriptCall
		if err := sweepRead(ctx, l.client, keys, ix.fields, func(key string, vals []any) error {
			hit := each(key, vals)
			if hit.score == "" && !hit.bad {
				js, _ := vals[0].(string) // "" when the record is gone
				stale = append(stale, scriptCall{keys: []string{key, base + ix.name}, args: []any{js, strings.TrimPrefix(key, base+ix.record)}})
			}
			if hit.call != nil {
				return hit.call()
			}
			return nil
		}); err != nil {
			return err
		}
		for _, res := range l.pipeScript(ctx, sweepUnindexScript, stale) {
			if res.err != nil {
				return redisFailure{res.err}
			}
		}
		if !full {
			return nil
		}
		var err error
		if page, err = l.client.ZRangeArgsWithScores(ctx, sweepRange(key, "("+from, upTo, sweepPage)).Result(); err != nil {
			return redisFailure{err}
		}
	}
	return nil
}

// sweepRead reads fields of keys in one pipeline and calls each with them.
func sweepRead(ctx context.Context, c goredis.Cmdable, keys []string, fields []string, each func(string, []any) error) error {
	recs := make([]*goredis.SliceCmd, len(keys))
	if _, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			recs[i] = p.HMGet(ctx, k, fields...)
		}
		return nil
	}); err != nil {
		return redisFailure{err}
	}
	for i, cmd := range recs {
		if err := each(keys[i], cmd.Val()); err != nil {
			return err
		}
	}
	return nil
}

// sweepIndexScript adds a record to an index if the record is still the
// one a walk read.
// KEYS[1] the record's hash, KEYS[2] the index. ARGV[1] the json read,
// ARGV[2] member, ARGV[3] score. Returns 1 if added, 0 if not.
var sweepIndexScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'json') ~= ARGV[1] then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
`)

// sweepUnindexScript removes a record's entry from an index if the record
// is still the one a walk read, which does not belong there: gone, or with
// another status or no time. What decides whether a record belongs (its
// status and time) is in its json, so a record whose json is still the
// one read still does not belong; one whose json differs was written since
// the read, and its entry is left as that write left it (the scripts that
// write a record write its entry in the same step).
// KEYS[1] the record's hash, KEYS[2] the index. ARGV[1] the json read, ""
// if the record was gone, ARGV[2] member. Returns 1 if removed, 0 if not.
var sweepUnindexScript = goredis.NewScript(`
if (redis.call('HGET', KEYS[1], 'json') or '') ~= ARGV[1] then return 0 end
return redis.call('ZREM', KEYS[2], ARGV[2])
`)

// sweepScan walks the hashes of ix's records by SCAN, the walk of a store
// whose index is not complete (see the file comment), and writes the
// index and the tenants set from what it reads.
func (l *Log) sweepScan(ctx context.Context, ix sweepIndex, each func(string, []any) sweepHit) error {
	pattern := globEscape(l.prefix) + ":t:*:tasks:{*}:" + ix.record + "*"
	walk := func(c goredis.Cmdable) error { return l.sweepNode(ctx, c, pattern, ix, each) }
	cc, ok := l.client.(*goredis.ClusterClient)
	if !ok {
		return walk(l.client)
	}
	var mu sync.Mutex
	var nodes []*goredis.Client
	err := cc.ForEachMaster(ctx, func(_ context.Context, c *goredis.Client) error {
		mu.Lock() // ForEachMaster runs in parallel: collect, then walk in turn
		defer mu.Unlock()
		nodes = append(nodes, c)
		return nil
	})
	if err != nil {
		return redisFailure{err}
	}
	for _, c := range nodes {
		if err := walk(c); err != nil {
			return err
		}
	}
	return nil
}

// sweepNode walks one node's keys for sweepScan.
func (l *Log) sweepNode(ctx context.Context, c goredis.Cmdable, pattern string, ix sweepIndex, each func(string, []any) sweepHit) error {
	var cursor uint64
	for {
		keys, next, err := c.ScanType(ctx, cursor, pattern, sweepScanCount, "hash").Result()
		if err != nil {
			return redisFailure{err}
		}
		if len(keys) > 0 {
			if err := l.sweepPage(ctx, c, keys, ix, each); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return ctx.Err()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// sweepPage records the tenants of keys in the tenants set, reads their
// status in one pipeline, then the fields of those with ix's status in
// another, adds them to the index, and calls each hit's call.
func (l *Log) sweepPage(ctx context.Context, c goredis.Cmdable, keys []string, ix sweepIndex, each func(string, []any) sweepHit) error {
	var tenants []any
	seen := map[string]bool{}
	for _, k := range keys {
		if tenant, _, ok := l.sweepKeyParts(k, ix); ok && !seen[tenant] {
			seen[tenant] = true
			tenants = append(tenants, tenant)
		}
	}
	if len(tenants) > 0 {
		if err := l.client.SAdd(ctx, l.sweepKey("tenants"), tenants...).Err(); err != nil {
			return redisFailure{err}
		}
	}
	statuses := make([]*goredis.StringCmd, len(keys))
	_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			statuses[i] = p.HGet(ctx, k, "status")
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return redisFailure{err}
	}
	var match []string
	for i, cmd := range statuses {
		if cmd.Val() == ix.status {
			match = append(match, keys[i])
		}
	}
	if len(match) == 0 {
		return nil
	}
	var calls []func() error
	var index []scriptCall
	err = sweepRead(ctx, c, match, ix.fields, func(key string, vals []any) error {
		hit := each(key, vals)
		tenant, id, ok := l.sweepKeyParts(key, ix)
		if js, isJSON := vals[0].(string); hit.score != "" && ok && isJSON {
			index = append(index, scriptCall{keys: []string{key, l.tasksBase(tenant) + ix.name}, args: []any{js, id, hit.score}})
		}
		if hit.call != nil {
			calls = append(calls, hit.call)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, res := range l.pipeScript(ctx, sweepIndexScript, index) {
		if res.err != nil {
			return redisFailure{res.err}
		}
	}
	for _, call := range calls {
		if err := call(); err != nil {
			return err
		}
	}
	return nil
}

// sweepKeyParts returns the tenant and id of key, one of ix's records, or
// false if key, which matched the SCAN pattern, is not one this store makes.
func (l *Log) sweepKeyParts(key string, ix sweepIndex) (tenant, id string, ok bool) {
	rest, ok := strings.CutPrefix(key, l.prefix+":t:")
	if !ok {
		return "", "", false
	}
	tenant, rest, ok = strings.Cut(rest, ":tasks:{")
	if !ok {
		return "", "", false
	}
	id, ok = strings.CutPrefix(rest, tenant+"}:"+ix.record)
	return tenant, id, ok && vigil.ValidID(tenant) && vigil.ValidID(id)
}

// redisFailure marks an error of Redis itself within a walk, so that
// sweep wraps it as the store's other methods do.
type redisFailure struct{ err error }

func (e redisFailure) Error() string { return e.err.Error() }
func (e redisFailure) Unwrap() error { return e.err }

// globEscape escapes the characters SCAN's MATCH reads as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

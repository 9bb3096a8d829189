// Package redis implements streams.Log on Redis, for deployments that run
// many vigil processes (several `vigil serve` instances and `vigil worker`s)
// over one shared store. A thread appended to by any process is readable and
// followable from every other one.
//
// # Store layout
//
// Every key starts with Options.Prefix ("vigil" by default) and is scoped by
// tenant, but for the indexes named as exceptions. A thread has two keys:
//
//	<prefix>:t:<tenant>:th:{<tenant>/<thread>}:meta   hash: created, title, trimmed
//	<prefix>:t:<tenant>:th:{<tenant>/<thread>}:ev     stream of the thread's events
//
// for example vigil:t:acme:th:{acme/th_1f…}:ev, where the braces are
// literal: they are the Cluster hash tag. The meta hash records the
// thread (created is RFC 3339 with nanoseconds, title as given) and the
// newest ID retention removed (trimmed); its existence is the thread's.
// The stream exists only once an event was appended, which needs the meta
// hash, and nothing deletes either, so an existing stream says the thread
// exists too: an append adds its first event with XADD NOMKSTREAM and
// reads the meta hash only when that finds no stream. That needs Redis to
// remove no key on its own (maxmemory-policy noeviction, which the queue
// needs too) and Purge to run only on a prefix no process writes: its
// batches may take a thread's meta hash before its stream. Each
// stream entry has one field, "e", holding the event's envelope JSON without
// id and thread_id: the entry's stream ID is the event's ID and the key
// names the thread. Data is stored byte for byte as given (only whitespace
// around it is lost).
//
// Tasks (tasks.Store, in tasks.go) keep a tenant's tasks, runs and
// idempotency keys under one hash tag per tenant, and the schedule index,
// the one structure not scoped by tenant (its members carry the tenant),
// under a tag of its own:
//
//	<prefix>:t:<tenant>:tasks:{<tenant>}:task:<id>      hash: a task (json, version, filter fields), its runs' idempotency keys → run id
//	<prefix>:t:<tenant>:tasks:{<tenant>}:order          sorted set: tasks in creation order
//	<prefix>:t:<tenant>:tasks:{<tenant>}:run:<id>       hash: a run (json, task, slot, status)
//	<prefix>:t:<tenant>:tasks:{<tenant>}:runs:<task>    sorted set: a task's runs in creation order
//	<prefix>:sched:{<prefix>}:high|normal|low           sorted sets: <tenant>\x00<task>, scored by due ms
//	<prefix>:sched:{<prefix>}:entries                   hash: <tenant>\x00<task> → priority, slot, due
//
// tasks.go's file comment gives the details, and what runs atomically.
//
// # Appends and IDs
//
// Append runs one Lua script (EVALSHA, one round trip) that checks the
// thread exists and XADDs the events, letting Redis assign each ID from the
// stream's own last ID: XADD "*" when Options.Now is nil, so IDs follow the
// Redis server's clock, one clock shared by every process; XADD "<ms>-*"
// with Now's milliseconds when it is set, so that tests can stop or rewind
// the clock. Both give exactly streams.After(last, ms). Because the ID is
// made where the last ID lives, appenders in any number of processes get
// strictly increasing IDs even when their clocks disagree or step back, and
// Page.Last is simply the stream's newest entry.
//
// # Retention
//
// A thread keeps at least Options.MaxLen events. XADD MAXLEN ~ would not
// tell us what it removed, so the append script trims in batches instead:
// once the stream holds MaxLen+slack entries (slack is a tenth of MaxLen,
// at least 1 and at most 1024) it reads the excess oldest entries, XTRIMs
// the stream to exactly MaxLen and records the newest removed ID in the
// meta hash as trimmed. Each removed entry is read once, so trimming costs
// amortized O(1) per append, and Page.Trimmed is exact. With MaxLen below
// 20 the slack is 1 and retention is exact after every append.
//
// # Reads and followers
//
// Read is one MULTI/EXEC round trip (HMGET of meta, XREVRANGE COUNT 1 for
// Last, XRANGE from the cursor), so Page.Last and Page.Trimmed are
// consistent with the events returned.
//
// Tail reads the same way and, when nothing is there yet, blocks in XREAD
// BLOCK. A blocking read holds a connection for its whole wait, so Tail runs
// on a separate follower client (Open makes one with a pool of
// Options.MaxFollowers connections; New uses Options.Followers) and at most
// MaxFollowers Tails block at once; further ones wait for a free slot within
// their own wait. Blocking is done in slices of at most a second, so a Tail
// whose ctx ends returns ctx.Err() at once and its connection is back in the
// pool within a second. streams.Hub needs one follower per followed thread
// per process, so MaxFollowers bounds the threads a process can follow
// without extra latency.
//
// # Redis Cluster
//
// The backend works unchanged on Redis Cluster (pass a *goredis.ClusterClient
// to New, or cluster mode through a UniversalClient): every command, script
// and MULTI touches the keys of a single thread only, and a thread's keys
// share the hash tag {tenant/thread}, so they live in one slot. Options.Prefix
// must therefore contain no braces. Redis 7.0 or newer is required (XADD
// "<ms>-*"); scripts declare all their keys, and Redis 7 replicates their
// effects, not the scripts, so server-assigned IDs replicate exactly. Task
// scripts touch either one tenant's task keys (tag {tenant}) or the schedule
// index (tag {prefix}), never both; the few that reach run or task keys they
// did not declare stay within the declared keys' slot (see tasks.go for what
// that means while the slot migrates).
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// Defaults for the zero fields of Options.
const (
	DefaultPrefix       = "vigil"
	DefaultMaxLen       = 100_000
	DefaultMaxFollowers = 1024
)

// maxBlock is the longest single XREAD BLOCK a Tail issues. It bounds how
// long an abandoned blocking read (its ctx ended) keeps a connection.
const maxBlock = time.Second

// Options configure a Log. The zero value means the defaults.
type Options struct {
	// Prefix starts every key, so that several deployments or tests can share
	// one Redis. It must not contain '{' or '}' (Cluster hash tags). Default
	// "vigil".
	Prefix string

	// MaxLen is the number of events each thread keeps at least; older ones
	// are trimmed in batches (see the package doc). Default 100,000.
	MaxLen int

	// Now, if set, supplies the milliseconds of new event IDs. Nil means the
	// Redis server's clock, shared by every process.
	Now func() time.Time

	// MaxFollowers bounds the Tails blocked in Redis at once, each holding
	// one connection. Open sizes its follower pool to it. Default 1024.
	MaxFollowers int

	// Followers is the client blocking reads run on (New only; Open makes its
	// own). Its pool should hold MaxFollowers connections. Nil means the
	// client given to New, whose pool is then shared with every other
	// command; for a *goredis.Client MaxFollowers then defaults to half its
	// PoolSize. With a *goredis.ClusterClient, set Followers (or a
	// MaxFollowers that fits its per-node pools).
	Followers goredis.UniversalClient

	// Coalesce, if set, sends concurrent appends, and the scripts of the
	// run path (RunTask, UpdateRun and the queue's Claim, Extend, Ack and
	// Release), down shared pipelines from a few flush loops instead of one
	// round trip each. Every call still runs its own script, so it stays
	// atomic on its own. It raises append throughput under many concurrent
	// appenders (by about half on a two-core machine), and cuts the
	// syscalls of a busy worker pool, for a channel hand-off of latency; a
	// lone call is never held back to fill a batch.
	Coalesce bool

	// Logger receives what a call cannot return: that UpdateRunThreaded
	// or CreateRunsThreaded wrote a run but could not append its events
	// (see updateRunThreadedScript). Nil means slog.Default().
	Logger *slog.Logger
}

// Log is a streams.Log on Redis. It is safe for concurrent use, by many
// goroutines and many processes sharing the same Redis and Prefix.
type Log struct {
	client    goredis.UniversalClient
	followers goredis.UniversalClient
	owned     []goredis.UniversalClient // closed by Close
	prefix    string
	maxLen    int
	slack     int
	now       func() time.Time
	sem       chan struct{}
	coalescer *coalescer
	logger    *slog.Logger
}

var _ streams.Log = (*Log)(nil)

// New returns a Log that stores events through client. The caller keeps
// ownership of client (and of opts.Followers): Close does not close them.
// New panics if opts.Prefix contains a brace.
func New(client goredis.UniversalClient, opts Options) *Log {
	l, err := newLog(client, opts)
	if err != nil {
		panic(err)
	}
	return l
}

// newLog is New, returning a bad Prefix as an error for Open.
func newLog(client goredis.UniversalClient, opts Options) (*Log, error) {
	prefix := strings.TrimSuffix(opts.Prefix, ":")
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("store/redis: %w", vigil.FieldError("store.redis.prefix", "%q must not contain braces", opts.Prefix))
	}
	maxLen := opts.MaxLen
	if maxLen <= 0 {
		maxLen = DefaultMaxLen
	}
	followers := opts.Followers
	maxFollowers := opts.MaxFollowers
	if followers == nil {
		followers = client
		if c, ok := client.(interface{ Options() *goredis.Options }); ok && maxFollowers <= 0 {
			maxFollowers = max(1, c.Options().PoolSize/2)
		}
	}
	if maxFollowers <= 0 {
		maxFollowers = DefaultMaxFollowers
	}
	l := &Log{
		client:    client,
		followers: followers,
		prefix:    prefix,
		maxLen:    maxLen,
		slack:     min(max(maxLen/10, 1), 1024),
		now:       opts.Now,
		sem:       make(chan struct{}, maxFollowers),
		logger:    opts.Logger,
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	if opts.Coalesce {
		l.coalescer = newCoalescer(client)
	}
	return l, nil
}

// Open connects to the single Redis at url (redis://, rediss:// or unix://,
// as goredis.ParseURL reads them) and returns a Log that owns its clients:
// one for appends and reads, pooled as the URL says, and one for Tail's
// blocking reads with a pool of opts.MaxFollowers connections. It pings
// Redis once so that a wrong URL fails here. Close releases both clients.
// For Cluster or Sentinel, make the clients and use New.
func Open(ctx context.Context, url string, opts Options) (*Log, error) {
	copts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("store/redis: open: %w", vigil.FieldError("store.redis.url", "%v", err))
	}
	if opts.MaxFollowers <= 0 {
		opts.MaxFollowers = DefaultMaxFollowers
	}
	fopts := *copts
	fopts.PoolSize = opts.MaxFollowers
	fopts.MinIdleConns = 0
	fopts.MaxIdleConns = 0
	fopts.PipelinePoolSize = -1 // followers never pipeline
	client := goredis.NewClient(copts)
	followers := goredis.NewClient(&fopts)
	opts.Followers = followers
	l, err := newLog(client, opts)
	if err != nil {
		_ = client.Close()
		_ = followers.Close()
		return nil, err
	}
	l.owned = []goredis.UniversalClient{client, followers}
	if err := l.Ping(ctx); err != nil {
		_ = l.Close()
		return nil, err
	}
	return l, nil
}

// Close stops the append coalescer, if any, and closes the clients Open
// made. Calls in flight may fail; the Log must not be used afterwards.
func (l *Log) Close() error {
	if l.coalescer != nil {
		l.coalescer.close()
	}
	var errs []error
	for _, c := range l.owned {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store/redis: close: %w", err)
	}
	return nil
}

// keys returns the meta hash and event stream keys of a thread.
func (l *Log) keys(tenant, thread string) (meta, stream string) {
	base := l.prefix + ":t:" + tenant + ":th:{" + tenant + "/" + thread + "}:"
	return base + "meta", base + "ev"
}

// checkIDs rejects ids that could not have come through vigil.ValidID, as
// keys are built from them.
func checkIDs(tenant, thread string) error {
	if !vigil.ValidID(tenant) {
		return vigil.Errorf(vigil.Invalid, "invalid tenant id %q", tenant)
	}
	if !vigil.ValidID(thread) {
		return vigil.Errorf(vigil.Invalid, "invalid thread id %q", thread)
	}
	return nil
}

func notFound(tenant, thread string) error {
	return vigil.Errorf(vigil.NotFound, "no thread %q in tenant %q", thread, tenant)
}

// errUnavailable marks failures to reach Redis, as opposed to errors Redis
// answered with, so that the edge can answer 503.
var errUnavailable = vigil.Errorf(vigil.Unavailable, "redis does not answer")

// wrap adds context to an error from go-redis: "store/redis: what: err".
// Errors other than Redis replies and ends of ctx mean Redis could not be
// reached, and carry errUnavailable.
func wrap(what string, err error) error {
	var rerr goredis.Error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.As(err, &rerr):
		return fmt.Errorf("store/redis: %s: %w", what, err)
	default:
		return fmt.Errorf("store/redis: %s: %w: %w", what, errUnavailable, err)
	}
}

// createScript records a thread unless its meta hash exists.
// KEYS[1] meta; ARGV[1] created, ARGV[2] title. Returns 1 if created.
var createScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'created', ARGV[1], 'title', ARGV[2])
return 1
`)

// CreateThread records th, or returns a vigil.Conflict error if th.Tenant
// already has a thread th.ID.
func (l *Log) CreateThread(ctx context.Context, th streams.Thread) error {
	if err := checkIDs(th.Tenant, th.ID); err != nil {
		return fmt.Errorf("store/redis: create thread %s: %w", th.ID, err)
	}
	meta, _ := l.keys(th.Tenant, th.ID)
	created, err := createScript.Run(ctx, l.client, []string{meta},
		th.CreatedAt.Format(time.RFC3339Nano), th.Title).Int()
	if err != nil {
		return wrap("create thread "+th.ID, err)
	}
	if created == 0 {
		return fmt.Errorf("store/redis: create thread %s: %w", th.ID,
			vigil.Errorf(vigil.Conflict, "thread %q exists already", th.ID))
	}
	return nil
}

// Thread returns the thread's record, or a vigil.NotFound error.
func (l *Log) Thread(ctx context.Context, tenant, id string) (streams.Thread, error) {
	if err := checkIDs(tenant, id); err != nil {
		return streams.Thread{}, fmt.Errorf("store/redis: thread %s: %w", id, err)
	}
	meta, _ := l.keys(tenant, id)
	vals, err := l.client.HMGet(ctx, meta, "created", "title").Result()
	if err != nil {
		return streams.Thread{}, wrap("thread "+id, err)
	}
	created, ok := vals[0].(string)
	if !ok {
		return streams.Thread{}, fmt.Errorf("store/redis: thread %s: %w", id, notFound(tenant, id))
	}
	th := streams.Thread{ID: id, Tenant: tenant}
	th.Title, _ = vals[1].(string)
	if th.CreatedAt, err = time.Parse(time.RFC3339Nano, created); err != nil {
		return streams.Thread{}, fmt.Errorf("store/redis: thread %s: bad created %q: %w", id, created, err)
	}
	return th, nil
}

// appendScript appends events with IDs after the thread's last one and
// trims the stream in batches, recording the newest trimmed ID.
//
// KEYS[1] meta hash, KEYS[2] event stream.
// ARGV[1] clock milliseconds, or "" for the server's clock; ARGV[2] MaxLen;
// ARGV[3] trim slack; ARGV[4..] one envelope per event.
// Returns the IDs, or nil (false) when the thread does not exist.
//
// Redis assigns the IDs itself. XADD "*" takes (server ms, 0) when its clock
// moved past the stream's last ID and the last ID's next sequence otherwise;
// XADD "<ms>-*" does the same for a given ms, and fails if ms is behind the
// last ID, when the script retries with the last ID's ms. Either way the
// first ID is streams.After(last, ms), computed where the last ID lives. The
// other events take the first's ms with the next sequences, so that one
// append's IDs are consecutive even when the server's clock ticks during
// the script.
var appendScript = goredis.NewScript(appendLua + `
return append(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], 4)
`)

// appendLua defines the Lua function append(meta, stream, clock, maxlen,
// slack, first), the body of appendScript, which the scripts that write a
// thread with something else (updateRunThreadedScript and
// createRunThreadedScript, through tryAppend) share: it appends
// ARGV[first..] as appendScript describes and returns their IDs, or false
// when the thread does not exist. It adds the first event with XADD
// NOMKSTREAM, which adds nothing when the stream does not exist, and only
// then reads the meta hash (see the package comment). It fails
// in two ways: it returns an error reply when its first XADD fails and
// cannot be retried (nothing is appended), and a command it calls raises
// one when a key has the wrong type, say, which ends the script unless
// caught (the events may then be appended in part).
const appendLua = `
local function append(meta, stream, clock, maxlen, slack, first)
  local ids = {}
  if #ARGV < first then
    if redis.call('EXISTS', meta) == 0 then return false end
    return ids
  end
  local id = '*'
  if clock ~= '' then id = clock .. '-*' end
  local ev = redis.pcall('XADD', stream, 'NOMKSTREAM', id, 'e', ARGV[first])
  if not ev then
    -- No stream: a thread with no events yet, or no thread.
    if redis.call('EXISTS', meta) == 0 then return false end
    ev = redis.pcall('XADD', stream, id, 'e', ARGV[first])
  end
  if type(ev) == 'table' and ev.err then
    local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
    if id == '*' or not top then return redis.error_reply(ev.err) end
    ev = redis.call('XADD', stream, string.match(top[1], '^%d+') .. '-*', 'e', ARGV[first])
  end
  ids[1] = ev
  id = string.match(ev, '^%d+') .. '-*'
  for i = first + 1, #ARGV do
    ids[#ids + 1] = redis.call('XADD', stream, id, 'e', ARGV[i])
  end
  maxlen, slack = tonumber(maxlen), tonumber(slack)
  local n = redis.call('XLEN', stream)
  if n - maxlen >= slack then
    local old = redis.call('XRANGE', stream, '-', '+', 'COUNT', n - maxlen)
    redis.call('XTRIM', stream, 'MAXLEN', maxlen)
    redis.call('HSET', meta, 'trimmed', old[#old][1])
  end
  return ids
end
`

// header is the part of a stored envelope that encoding/json writes; Data
// is spliced in after it verbatim (see encode).
type header struct {
	RunID   string    `json:"run_id,omitempty"`
	TaskID  string    `json:"task_id,omitempty"`
	TraceID string    `json:"trace_id,omitempty"`
	Type    string    `json:"type"`
	TS      time.Time `json:"ts"`
}

// record is a stored envelope as decode reads it back.
type record struct {
	header
	Data json.RawMessage `json:"data"`
}

// encode returns the envelope JSON stored for ev: its fields without the ID
// (the stream entry's own) and the thread (the key's). Data is copied byte
// for byte rather than re-marshalled, which would compact it and escape
// HTML; only whitespace around it is lost on the way back. Nil or empty Data
// is left out and reads back as nil.
func encode(ev streams.Event) ([]byte, error) {
	h, err := json.Marshal(header{RunID: ev.RunID, TaskID: ev.TaskID, TraceID: ev.TraceID, Type: ev.Type, TS: ev.TS})
	if err != nil || len(ev.Data) == 0 {
		return h, err
	}
	if !json.Valid(ev.Data) {
		return nil, errors.New("data is not valid JSON")
	}
	b := make([]byte, 0, len(h)+len(ev.Data)+9)
	b = append(b, h[:len(h)-1]...) // h ends in '}' after at least "type" and "ts"
	b = append(b, `,"data":`...)
	b = append(b, ev.Data...)
	return append(b, '}'), nil
}

// Append assigns IDs to evs, persists them in one atomic script and returns
// the IDs. Retention may trim the thread's oldest events in the same script.
func (l *Log) Append(ctx context.Context, tenant, thread string, evs []streams.Event) ([]streams.ID, error) {
	keys, args, err := l.appendCall(tenant, thread, evs)
	if err != nil {
		return nil, fmt.Errorf("store/redis: append %s: %w", thread, err)
	}
	var res any
	if l.coalescer != nil {
		res, err = l.coalescer.run(ctx, appendScript, keys, args)
	} else {
		res, err = appendScript.Run(ctx, l.client, keys, args...).Result()
	}
	return appendResult(tenant, thread, len(evs), res, err)
}

// appendCall returns appendScript's keys and arguments for appending evs
// to the tenant's thread, or, for bad input, a vigil.Invalid error that
// the caller wraps with what it was doing.
func (l *Log) appendCall(tenant, thread string, evs []streams.Event) (keys []string, args []any, err error) {
	if err := checkIDs(tenant, thread); err != nil {
		return nil, nil, err
	}
	args = make([]any, 3, 3+len(evs))
	args[0], args[1], args[2] = "", l.maxLen, l.slack
	if l.now != nil {
		args[0] = strconv.FormatInt(max(0, l.now().UnixMilli()), 10)
	}
	for i, ev := range evs {
		b, err := encode(ev)
		if err != nil {
			return nil, nil, vigil.Errorf(vigil.Invalid, "event %d (%s): %v", i, ev.Type, err)
		}
		args = append(args, b)
	}
	meta, stream := l.keys(tenant, thread)
	return []string{meta, stream}, args, nil
}

// appendResult reads appendScript's reply (or error) for n events as
// Append's result.
func appendResult(tenant, thread string, n int, res any, err error) ([]streams.ID, error) {
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("store/redis: append %s: %w", thread, notFound(tenant, thread))
	}
	if err != nil {
		return nil, wrap("append "+thread, err)
	}
	raw, ok := res.([]any)
	if !ok || len(raw) != n {
		return nil, fmt.Errorf("store/redis: append %s: unexpected script reply %v", thread, res)
	}
	ids := make([]streams.ID, len(raw))
	for i, r := range raw {
		s, _ := r.(string)
		if ids[i], err = streams.ParseID(s); err != nil {
			return nil, fmt.Errorf("store/redis: append %s: %w", thread, err)
		}
	}
	return ids, nil
}

// rangeStart returns the inclusive XRANGE start for events strictly after
// after, and false if there can be none.
func rangeStart(after streams.ID) (string, bool) {
	next := after.Next()
	if next.Less(after) { // after is the largest ID
		return "", false
	}
	return next.String(), true
}

// Read returns up to limit events strictly after the cursor, with the
// thread's Trimmed and Last positions as of the same instant.
func (l *Log) Read(ctx context.Context, tenant, thread string, after streams.ID, limit int) (streams.Page, error) {
	return l.read(ctx, "read", tenant, thread, after, limit, true)
}

// read is Read; Tail, which needs no Last, passes withLast false.
func (l *Log) read(ctx context.Context, op, tenant, thread string, after streams.ID, limit int, withLast bool) (streams.Page, error) {
	if err := checkIDs(tenant, thread); err != nil {
		return streams.Page{}, fmt.Errorf("store/redis: %s %s: %w", op, thread, err)
	}
	if limit < 0 {
		return streams.Page{}, fmt.Errorf("store/redis: %s %s: %w", op, thread,
			vigil.Errorf(vigil.Invalid, "negative limit %d", limit))
	}
	meta, stream := l.keys(tenant, thread)
	start, ok := rangeStart(after)
	var (
		metaCmd           *goredis.SliceCmd
		lastCmd, rangeCmd *goredis.XMessageSliceCmd
	)
	_, err := l.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		metaCmd = p.HMGet(ctx, meta, "created", "trimmed")
		if withLast {
			lastCmd = p.XRevRangeN(ctx, stream, "+", "-", 1)
		}
		if limit > 0 && ok {
			rangeCmd = p.XRangeN(ctx, stream, start, "+", int64(limit))
		}
		return nil
	})
	if err != nil {
		return streams.Page{}, wrap(op+" "+thread, err)
	}
	vals := metaCmd.Val()
	if _, ok := vals[0].(string); !ok {
		return streams.Page{}, fmt.Errorf("store/redis: %s %s: %w", op, thread, notFound(tenant, thread))
	}
	var page streams.Page
	if s, ok := vals[1].(string); ok {
		if page.Trimmed, err = streams.ParseID(s); err != nil {
			return streams.Page{}, fmt.Errorf("store/redis: %s %s: bad trimmed id: %w", op, thread, err)
		}
	}
	// Retention keeps at least one event, so the newest entry is the newest
	// ever appended.
	if lastCmd != nil && len(lastCmd.Val()) > 0 {
		if page.Last, err = streams.ParseID(lastCmd.Val()[0].ID); err != nil {
			return streams.Page{}, fmt.Errorf("store/redis: %s %s: %w", op, thread, err)
		}
	}
	if rangeCmd != nil {
		if page.Events, err = decode(thread, rangeCmd.Val()); err != nil {
			return streams.Page{}, fmt.Errorf("store/redis: %s %s: %w", op, thread, err)
		}
	}
	return page, nil
}

// decode turns stream entries into events of thread.
func decode(thread string, msgs []goredis.XMessage) ([]streams.Event, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	evs := make([]streams.Event, len(msgs))
	for i, m := range msgs {
		id, err := streams.ParseID(m.ID)
		if err != nil {
			return nil, err
		}
		s, _ := m.Values["e"].(string)
		var r record
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			return nil, fmt.Errorf("event %s: %w", m.ID, err)
		}
		if len(r.Data) == 0 {
			r.Data = nil
		}
		evs[i] = streams.Event{ID: id, ThreadID: thread, RunID: r.RunID, TaskID: r.TaskID,
			TraceID: r.TraceID, Type: r.Type, TS: r.TS, Data: r.Data}
	}
	return evs, nil
}

// Tail returns up to limit events after the cursor, blocking in XREAD on
// the follower client for up to wait until one is appended by any process.
// See the package doc for how followers are bounded.
func (l *Log) Tail(ctx context.Context, tenant, thread string, after streams.ID, limit int, wait time.Duration) ([]streams.Event, error) {
	page, err := l.read(ctx, "tail", tenant, thread, after, limit, false)
	if err != nil || len(page.Events) > 0 || limit == 0 || wait <= 0 {
		return page.Events, err
	}
	if _, ok := rangeStart(after); !ok {
		return nil, nil
	}
	deadline := time.Now().Add(wait)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, nil
	}

	type result struct {
		evs []streams.Event
		err error
	}
	done := make(chan result, 1)
	_, stream := l.keys(tenant, thread)
	go func() {
		defer func() { <-l.sem }()
		// The read outlives a cancelled ctx by up to maxBlock; it must not
		// be cut mid-reply, which would cost the connection.
		rctx := context.WithoutCancel(ctx)
		for {
			left := time.Until(deadline)
			if left <= 0 || ctx.Err() != nil {
				done <- result{}
				return
			}
			block := min(left, maxBlock)
			if block < time.Millisecond {
				block = time.Millisecond
			}
			res, err := l.followers.XRead(rctx, &goredis.XReadArgs{
				Streams: []string{stream, after.String()},
				Count:   int64(limit),
				Block:   block,
			}).Result()
			if errors.Is(err, goredis.Nil) {
				continue
			}
			if err != nil {
				done <- result{err: wrap("tail "+thread, err)}
				return
			}
			var evs []streams.Event
			if len(res) > 0 {
				evs, err = decode(thread, res[0].Messages)
			}
			if err != nil {
				err = fmt.Errorf("store/redis: tail %s: %w", thread, err)
			}
			done <- result{evs, err}
			return
		}
	}()
	select {
	case r := <-done:
		return r.evs, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Ping reports whether Redis answers, on both clients when they differ.
func (l *Log) Ping(ctx context.Context) error {
	if err := l.client.Ping(ctx).Err(); err != nil {
		return wrap("ping", err)
	}
	if l.followers != l.client {
		if err := l.followers.Ping(ctx).Err(); err != nil {
			return wrap("ping followers", err)
		}
	}
	return nil
}

// ServerCPU returns the CPU time the Redis server has used since it
// started, user and system, as INFO cpu reports it (of the node the
// client's commands go to). Benchmarks read it before and after a
// workload to tell how busy Redis was.
func (l *Log) ServerCPU(ctx context.Context) (time.Duration, error) {
	info, err := l.client.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, wrap("info cpu", err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_user" && k != "used_cpu_sys") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("store/redis: info cpu: %s %q: %w", k, v, err)
		}
		total += f
	}
	return time.Duration(total * float64(time.Second)), nil
}

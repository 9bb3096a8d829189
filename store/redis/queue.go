package redis

// This file implements tasks.Queue, the run queue shared by every process
// on a prefix, on Redis Streams consumer groups. All its keys share one
// hash tag, so that each operation is one Lua script over one Cluster slot
// and atomic:
//
//	<prefix>:queue:{<prefix>:queue}:ready:<priority>:<tenant>  streams, one per priority and tenant, consumer group "workers"
//	<prefix>:queue:{<prefix>:queue}:tenants:high|normal|low    sorted sets: tenant, scored by its turn
//	<prefix>:queue:{<prefix>:queue}:clock                      hash: rank → the priority's virtual time
//	<prefix>:queue:{<prefix>:queue}:delayed:high|normal|low    sorted sets: member, scored by ready time (µs)
//	<prefix>:queue:{<prefix>:queue}:leases                     sorted set: member, scored by lease expiry (µs)
//	<prefix>:queue:{<prefix>:queue}:items                      hash: member → the item's record
//	<prefix>:queue:{<prefix>:queue}:wake                       stream of one entry: wakes waiting Claims
//
// An item's member is <tenant>\x00<run id> (ids never contain NUL). Its
// record says which state it is in:
//
//	r|<rank>|<entry>                                     ready: entry <entry> of its tenant's stream of its priority
//	d|<rank>                                             delayed: in its priority's delayed set
//	l|<rank>|<entry>|<token>|<until>|<deliveries>|<worker>  leased (until in Unix ns)
//
// where <rank> is the priority's place in tasks.Priorities. The worker
// comes last, so it may hold any byte. The scripts build the stream keys
// from the wake stream's key, which ends in the queue's common prefix plus
// "wake"; they are not among a script's KEYS, but share their slot.
//
// # Streams
//
// A ready item is an entry of its tenant's stream of its priority (one
// field, "i", the member) that the group has not delivered. Claim delivers
// with XREADGROUP to a consumer named after the worker. A leased item's
// entry stays in the group's pending entries list (PEL) under its holder's
// name, so XPENDING and XINFO CONSUMERS show which worker holds what, and
// the PEL's delivery counter is the item's Deliveries: XREADGROUP makes it
// 1 and each Reclaim moves the entry with XCLAIM, which adds one. Ack and
// Release XACK and XDEL the entry (Release adds a new one), so a stream
// holds only ready and leased items, and a stream left empty is deleted.
// A consumer is deleted once it holds no entry, so the random worker ids
// of processes that come and go do not pile up in the groups.
//
// # Turns
//
// Within a priority, tenants take turns, by start-time fair queuing with a
// unit cost per run. The tenants set of a priority holds the tenants that
// have undelivered entries in their stream, each scored by the turn of its
// oldest one; its next entries have the next turns, one apart. Claim takes
// the items one turn at a time would: the lowest turn first, ties in the
// order of tenant names, a tenant's turn one more after each item. It does
// so in rounds: it reads the tenants set once, works out each tenant's
// share of the items it wants, reads each share with one XREADGROUP, and
// scores each tenant with its next turn, or removes it once nothing of it
// is undelivered; a tenant whose stream held less than its share leaves
// the rest to another round. It sets the priority's clock (its virtual
// time) to the last turn it took. A tenant that gets a ready item while it
// has none joins at the clock plus one: after at most one item of each
// tenant with a backlog, however long those backlogs are.
// Within a tenant, items are claimed in stream order, the order they
// became ready.
//
// # Time
//
// Delays and leases are measured on QueueOptions.Now, as the tasks.Queue
// contract demands, so they live in sorted sets scored by that clock, in
// microseconds (exact in a score's double; nanoseconds are not), rounded
// down like the time they are compared with, so that a delay or lease has
// run out when the clock reaches its end, as in the contract; within the
// last microsecond it may run out up to a microsecond early. A lease's
// exact expiry is kept in its record, so Claim.Until is exactly now plus
// the lease.
//
// Leases are not Streams' idle times, and Reclaim is not XAUTOCLAIM, for
// three reasons. Idle time grows on the Redis server's clock from the last
// delivery, where the contract measures leases on the queue's clock (tests
// set it). XAUTOCLAIM takes one min-idle-time for every entry, where each
// Claim, Reclaim and Extend gives its own lease length. And Extend must set
// the expiry to now plus a lease: XCLAIM's IDLE can only move the last
// delivery, and a scan for idle entries cannot tell a short lease renewed
// from a long one. The leases set, scored on the queue's clock, gives all
// three, and ZRANGE BYSCORE gives Reclaim the longest expired leases first
// in O(log n). Reclaim still moves each entry with XCLAIM, so that the PEL
// stays true. XAUTOCLAIM is not used even as a safety net: every state
// change is one script, so a PEL entry without a lease record cannot
// arise, barring keys removed by hand or evicted (the queue needs
// maxmemory-policy noeviction, like every store key). Extend also XCLAIMs
// its entry with JUSTID, which resets the entry's idle time without
// counting a delivery, so that XPENDING's idle column reads "time since
// the last heartbeat".
//
// A delayed item moves into its stream when its time has come and a script
// looks: Claim, and any Enqueue or Release that adds a ready item to the
// same priority, which first moves the due delayed items of that priority,
// so that streams and turns keep the order of ready times. (Stats counts
// due delayed items as ready without moving them.) Each look moves at
// most promoteBudget items per priority, so that a burst of retries
// becoming due together does not block Redis; the rest move at the next
// look. Items with the same ready time (to the microsecond) become ready
// in the order of their members.
//
// # Waiting
//
// Claim never polls. When its script finds nothing, it returns the ID of
// the wake stream's entry and the earliest delayed item's ready time.
// Claim then blocks in XREAD on the wake stream after that ID, on the
// follower client (it takes a slot of Options.MaxFollowers, like Tail),
// until the wait ends or the earliest delay runs out. A script that makes
// items ready adds an entry to the wake stream (one per script), as does
// one that moves the earliest ready time of a delayed item earlier, so
// that waiting Claims in any process look again or shorten their timers.
// Because the ID comes from the same script that found nothing, no
// wake-up between the look and the block is lost.
//
// # Costs
//
// Enqueue and Release are O(log n) and one XADD or ZADD; Claim and Reclaim
// are O(log n) per item leased, and Claim makes one XREADGROUP per tenant
// and round (a claim of 30 items over 10 tenants with backlogs reads 3 of
// each at once); Stats is a read-only script of O(tenants with ready items
// + log n). EnqueueBatch adds up to enqueueChunk items per script, for a
// scheduler that enqueues thousands per tick.
//
// Queues written before turns kept one stream per priority,
// ready:high|normal|low; their ready items are not claimed by this code.
// Drain such a queue (stop enqueueing, let the workers empty it) before
// upgrading, or enqueue its runs again after (the scheduler does so for
// runs it finds queued).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
)

var _ tasks.Queue = (*Queue)(nil)

const (
	// promoteBudget bounds the delayed items of one priority a script
	// moves into the priority's stream.
	promoteBudget = 1000
	// enqueueChunk is the most items one enqueue script adds.
	enqueueChunk = 500
)

// qWake is the index into Queue.keys of the stream Claim blocks on. The
// scripts get Queue.keys as KEYS: 1 to 3 the tenants sets, 4 to 6 the
// delayed sets (high to low), 7 the items hash, 8 the leases set, 9 the
// wake stream, 10 the clock hash.
const qWake = 8

// QueueOptions configure a Queue. The zero value means defaults.
type QueueOptions struct {
	// Now is the clock of delays and leases; nil means time.Now. Processes
	// sharing a queue should have clocks in step, as NTP keeps them: a
	// process whose clock runs ahead sees leases expire early.
	Now func() time.Time
}

// Queue is the tasks.Queue of a Log's prefix, shared by every process on
// that prefix (see the file comment for its design). A Claim waiting for
// work is woken by an Enqueue or Release in any process. It is safe for
// concurrent use.
type Queue struct {
	l    *Log
	keys []string
	now  func() time.Time
}

// NewQueue returns the run queue stored under l's prefix, on l's clients.
// It creates nothing in Redis until the first item is enqueued.
func NewQueue(l *Log, opts QueueOptions) *Queue {
	base := l.prefix + ":queue:{" + l.prefix + ":queue}:"
	q := &Queue{
		l: l,
		keys: []string{
			base + "tenants:high", base + "tenants:normal", base + "tenants:low",
			base + "delayed:high", base + "delayed:normal", base + "delayed:low",
			base + "items", base + "leases", base + "wake", base + "clock",
		},
		now: opts.Now,
	}
	if q.now == nil {
		q.now = time.Now
	}
	return q
}

// queueMember is an item's member in the items hash and the sorted sets.
func queueMember(tenant, runID string) string { return tenant + "\x00" + runID }

// micros returns t in Unix microseconds, rounded down, as the sorted sets
// score times.
func micros(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Before(time.UnixMicro(us)) {
		us--
	}
	return us
}

// newTokenBase returns a random prefix of the tokens one Claim or Reclaim
// hands out; the script numbers them.
func newTokenBase() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func queueCheckItem(it tasks.QueueItem) error {
	if err := tasksCheckIDs("tenant", it.Tenant, "run_id", it.RunID); err != nil {
		return err
	}
	if it.Priority.Rank() < 0 {
		return vigil.FieldError("priority", "must be high, normal or low, got %q", it.Priority)
	}
	return nil
}

func queueCheckClaim(worker string, n int) error {
	if n < 1 || n > tasks.MaxClaim {
		return vigil.FieldError("n", "must be 1 to %d, got %d", tasks.MaxClaim, n)
	}
	if worker == "" {
		return vigil.FieldError("worker", "must not be empty")
	}
	return nil
}

func queueLeaseLost(c tasks.Claim) error {
	return vigil.Errorf(vigil.Conflict, "the lease of run %s (token %s) is lost: the item was acked, released or reclaimed", c.RunID, c.Token)
}

// queueLua holds the functions the queue's scripts share. Every script
// gets Queue.keys as KEYS, in that order.
const queueLua = `
local G = 'workers'
local NAMES = {'high', 'normal', 'low'}
-- BASE is the queue's common key prefix: the wake stream's key less "wake".
local BASE = string.sub(KEYS[9], 1, -5)
-- woken is set once the script has woken the waiting Claims.
local woken = false

-- tenantOf returns the tenant of member id.
local function tenantOf(id)
  return string.sub(id, 1, string.find(id, '\0', 1, true) - 1)
end

-- stream returns the key of tenant t's stream of priority p.
local function stream(p, t)
  return BASE .. 'ready:' .. NAMES[p] .. ':' .. t
end

-- ensure creates stream key with the group when it is missing.
local function ensure(key)
  if redis.call('EXISTS', key) == 0 then
    redis.call('XGROUP', 'CREATE', key, G, '0', 'MKSTREAM')
  end
end

-- undelivered counts the entries of stream key the group has not delivered.
local function undelivered(key)
  if redis.call('EXISTS', key) == 0 then return 0 end
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    if g[2] == G then
      for i = 1, #g - 1, 2 do
        if g[i] == 'pending' then return redis.call('XLEN', key) - g[i + 1] end
      end
    end
  end
  return 0
end

-- beyond reports whether stream key has an entry after id, the last one
-- the group delivered: whether it has undelivered entries. (Cheaper than
-- undelivered, for the claim loop.)
local function beyond(key, id)
  local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]
  if not top then return false end
  local a, b = string.match(top[1], '^(%d+)-(%d+)$')
  local c, d = string.match(id, '^(%d+)-(%d+)$')
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  return a > c or (a == c and b > d)
end

-- before orders tenant names as Redis orders equal scores, byte by byte
-- (Lua's < on strings follows the server's locale).
local function before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- shares returns how many of n items each tenant takes when tenants take
-- one turn at a time: the lowest turn first, ties by name, a tenant's
-- turn one more after each item. names and turns are the tenants and
-- their turns in ZRANGE order (by turn, ties by name), as many as may
-- take one; each is assumed to have items enough.
local function shares(names, turns, n)
  -- Walk up the turns: at turn v, every tenant whose turn is at most v
  -- (the open ones) takes one item; stop at the first turn where the
  -- items left are no more than the open tenants.
  local share, open, v, had = {}, 0, turns[1], 0
  for i = 1, #names do share[i] = 0 end
  while true do
    while open < #names and turns[open + 1] <= v do open = open + 1 end
    if had + open >= n then break end
    had, v = had + open, v + 1
  end
  for i = 1, open do share[i] = v - turns[i] end
  -- At turn v, only n - had of the open tenants take one: by name.
  local at = {}
  for i = 1, open do at[i] = i end
  table.sort(at, function(a, b) return before(names[a], names[b]) end)
  for j = 1, n - had do share[at[j]] = share[at[j]] + 1 end
  return share
end

-- wakeAll wakes the waiting Claims, once per script.
local function wakeAll()
  if not woken then
    redis.call('XADD', KEYS[9], 'MAXLEN', '1', '*', 'r', '1')
    woken = true
  end
end

-- inTurns records, per priority and tenant, that ready found the tenant
-- in the priority's turns or put it there, so that a script asks Redis
-- once per tenant. Only the claim takes tenants out of a priority's
-- turns, after its one promote of that priority: no ready follows.
local inTurns = {}

-- ready appends member id to its tenant's stream of priority p (1 high ..
-- 3 low) as a ready item. A tenant with nothing else ready joins the
-- turns at the priority's clock plus one.
local function ready(p, id)
  local t = tenantOf(id)
  local key = stream(p, t)
  -- The stream usually exists: try that first, which saves an EXISTS.
  local e = redis.call('XADD', key, 'NOMKSTREAM', '*', 'i', id)
  if not e then
    ensure(key)
    e = redis.call('XADD', key, '*', 'i', id)
  end
  redis.call('HSET', KEYS[7], id, 'r|' .. (p - 1) .. '|' .. e)
  local turn = p .. '|' .. t
  if not inTurns[turn] then
    if not redis.call('ZSCORE', KEYS[p], t) then
      redis.call('ZADD', KEYS[p], (tonumber(redis.call('HGET', KEYS[10], p)) or 0) + 1, t)
    end
    inTurns[turn] = true
  end
  wakeAll()
end

-- promote moves the delayed items of priority p due at now (µs) into their
-- streams, earliest first, at most PROMOTE of them.
local function promote(p, now)
  local due = redis.call('ZRANGE', KEYS[p + 3], '-inf', now, 'BYSCORE', 'LIMIT', 0, PROMOTE)
  if #due == 0 then return end
  for _, id in ipairs(due) do
    if string.sub(redis.call('HGET', KEYS[7], id) or '', 1, 1) == 'd' then ready(p, id) end
  end
  redis.call('ZREM', KEYS[p + 3], unpack(due))
end

-- earliest returns the earliest ready time of a delayed item, or nil.
local function earliest()
  local first
  for p = 4, 6 do
    local s = redis.call('ZRANGE', KEYS[p], 0, 0, 'WITHSCORES')[2]
    if s and (not first or tonumber(s) < tonumber(first)) then first = s end
  end
  return first
end

-- delay stores member id of priority p as delayed until at (µs).
local function delay(p, id, at)
  redis.call('ZADD', KEYS[p + 3], at, id)
  redis.call('HSET', KEYS[7], id, 'd|' .. (p - 1))
end

-- wake wakes the waiting Claims if at is earlier than first, the earliest
-- ready time before the script added delayed items.
local function wake(at, first)
  if not first or tonumber(at) < tonumber(first) then
    redis.call('XADD', KEYS[9], 'MAXLEN', '1', '*', 'at', at)
  end
end

-- lease parses a leased item's record into rank, entry, token, until,
-- deliveries and worker; nil if rec is not one.
local function lease(rec)
  if not rec then return nil end
  return string.match(rec, '^l|(%d)|([^|]*)|([^|]*)|([^|]*)|(%d+)|(.*)$')
end

-- leave deletes consumer c of stream key's group once it holds no entry.
local function leave(key, c)
  if #redis.call('XPENDING', key, G, '-', '+', 1, c) == 0 then
    redis.call('XGROUP', 'DELCONSUMER', key, G, c)
  end
end

-- drop removes entry, leased by worker, of member id's stream of priority
-- p, and the stream once it is empty.
local function drop(p, id, entry, worker)
  local key = stream(p, tenantOf(id))
  redis.call('XACK', key, G, entry)
  redis.call('XDEL', key, entry)
  if redis.call('XLEN', key) == 0 then
    redis.call('DEL', key)
  else
    leave(key, worker)
  end
end
`

// newQueueScript returns a script of the shared functions and body.
func newQueueScript(body string) *goredis.Script {
	return goredis.NewScript(strings.ReplaceAll(queueLua, "PROMOTE", strconv.Itoa(promoteBudget)) + body)
}

// enqueueScript adds the items the queue does not hold.
// ARGV[1] now (µs), ARGV[2] ready time (µs) or empty for now, ARGV[3..] pairs
// of rank and member. Returns how many it added.
var enqueueScript = newQueueScript(`
local first, promoted, added = nil, {}, 0
if ARGV[2] ~= '' then first = earliest() end
for i = 3, #ARGV - 1, 2 do
  local p, id = tonumber(ARGV[i]) + 1, ARGV[i + 1]
  if redis.call('HEXISTS', KEYS[7], id) == 0 then
    added = added + 1
    if ARGV[2] == '' then
      if not promoted[p] then promote(p, ARGV[1]); promoted[p] = true end
      ready(p, id)
    else
      delay(p, id, ARGV[2])
    end
  end
end
if added > 0 and ARGV[2] ~= '' then wake(ARGV[2], first) end
return added
`)

// Enqueue implements tasks.Queue: one script that adds the item unless the
// queue holds it.
func (q *Queue) Enqueue(ctx context.Context, item tasks.QueueItem, delay time.Duration) error {
	return q.EnqueueBatch(ctx, []tasks.QueueItem{item}, delay)
}

// EnqueueBatch enqueues every item with the same delay, as that many
// Enqueues would, in one script per enqueueChunk items: one round trip
// instead of one per item. Each chunk is atomic, the batch is not. Any
// invalid item fails the whole batch with vigil.Invalid before anything
// is enqueued.
func (q *Queue) EnqueueBatch(ctx context.Context, items []tasks.QueueItem, delay time.Duration) error {
	what := "enqueue"
	if len(items) == 1 {
		what += " " + items[0].RunID
	}
	for i, it := range items {
		if err := queueCheckItem(it); err != nil {
			if len(items) > 1 {
				return tasksFail(fmt.Sprintf("%s item %d", what, i), err)
			}
			return tasksFail(what, err)
		}
	}
	now := q.now()
	readyAt := ""
	if delay > 0 {
		readyAt = strconv.FormatInt(micros(now.Add(delay)), 10)
	}
	for len(items) > 0 {
		chunk := items[:min(len(items), enqueueChunk)]
		items = items[len(chunk):]
		args := make([]any, 2, 2+2*len(chunk))
		args[0], args[1] = micros(now), readyAt
		for _, it := range chunk {
			args = append(args, it.Priority.Rank(), queueMember(it.Tenant, it.RunID))
		}
		if err := enqueueScript.Run(ctx, q.l.client, q.keys, args...).Err(); err != nil {
			return wrap(what, err)
		}
	}
	return nil
}

// claimScript moves due delayed items into their streams and leases up to
// n ready ones to a worker: high priority first, and within a priority
// tenants in turns (see the file comment).
// ARGV[1] now (µs), ARGV[2] n, ARGV[3] worker, ARGV[4] token base,
// ARGV[5] lease end (ns), ARGV[6] lease end (µs).
// Returns {{rank, member, token, ...}} when it leased items; otherwise
// {{}, {ID of the wake stream's entry}, earliest delayed ready time (µs)
// or an empty string}.
var claimScript = newQueueScript(`
local left, worker, k, out = tonumber(ARGV[2]), ARGV[3], 0, {}
-- The leases and their deadlines, written once at the end.
local leases, deadlines = {}, {}
for p = 1, 3 do
  promote(p, ARGV[1])
  local clock
  while left > 0 do
    -- One round: the tenants that may take a turn (at most left of them,
    -- lowest turn first), each tenant's share of left, as taking one turn
    -- at a time would give it, then one read of each share.
    local top = redis.call('ZRANGE', KEYS[p], 0, left - 1, 'WITHSCORES')
    if #top == 0 then break end
    local names, turns = {}, {}
    for i = 1, #top, 2 do
      names[#names + 1], turns[#turns + 1] = top[i], tonumber(top[i + 1])
    end
    local share = shares(names, turns, left)
    -- Read each share; a tenant in the set has a stream, but a stream
    -- removed by hand reads as empty rather than failing the claim.
    local reads, ids = {}, {}
    for i, t in ipairs(names) do
      if share[i] > 0 then
        local res = redis.pcall('XREADGROUP', 'GROUP', G, worker, 'COUNT', share[i], 'STREAMS', stream(p, t), '>')
        local entries = type(res) == 'table' and not res.err and res[1][2] or {}
        reads[i] = entries
        for _, e in ipairs(entries) do ids[#ids + 1] = e[2] and e[2][2] or '' end
      end
    end
    -- The items' records, all in one read: an entry is stale unless its
    -- record says it is this ready entry.
    local recs = #ids > 0 and redis.call('HMGET', KEYS[7], unpack(ids)) or {}
    local taken, moved, gone, r = {}, {}, {}, 0
    for i, t in ipairs(names) do
      local entries = reads[i]
      if entries then
        local key, stale = stream(p, t), false
        for j, e in ipairs(entries) do
          r = r + 1
          if recs[r] == 'r|' .. (p - 1) .. '|' .. e[1] then
            taken[#taken + 1] = {turns[i] + j - 1, t, ids[r], e[1]}
          else
            redis.call('XACK', key, G, e[1])
            redis.call('XDEL', key, e[1])
            stale = true
          end
        end
        if stale then leave(key, worker) end
        if #entries > 0 then
          clock = math.max(clock or turns[i], turns[i] + #entries - 1)
        end
        if #entries == share[i] and beyond(key, entries[#entries][1]) then
          moved[#moved + 1] = turns[i] + #entries
          moved[#moved + 1] = t
        else
          gone[#gone + 1] = t
        end
      end
    end
    if #moved > 0 then redis.call('ZADD', KEYS[p], unpack(moved)) end
    if #gone > 0 then redis.call('ZREM', KEYS[p], unpack(gone)) end
    -- In the order turns would have taken them: by turn, ties by tenant.
    table.sort(taken, function(a, b)
      if a[1] ~= b[1] then return a[1] < b[1] end
      return before(a[2], b[2])
    end)
    for _, it in ipairs(taken) do
      k, left = k + 1, left - 1
      local token = ARGV[4] .. '.' .. k
      leases[#leases + 1] = it[3]
      leases[#leases + 1] = table.concat({'l', p - 1, it[4], token, ARGV[5], 1, worker}, '|')
      deadlines[#deadlines + 1] = ARGV[6]
      deadlines[#deadlines + 1] = it[3]
      out[#out + 1] = p - 1
      out[#out + 1] = it[3]
      out[#out + 1] = token
    end
  end
  if clock then redis.call('HSET', KEYS[10], p, clock) end
end
if k > 0 then
  redis.call('HSET', KEYS[7], unpack(leases))
  redis.call('ZADD', KEYS[8], unpack(deadlines))
  return {out}
end
local top = redis.call('XREVRANGE', KEYS[9], '+', '-', 'COUNT', 1)[1]
return {out, {top and top[1] or '0-0'}, earliest() or ''}
`)

// Claim implements tasks.Queue. Each look is one script; between looks it
// blocks in XREAD (see the file comment).
func (q *Queue) Claim(ctx context.Context, worker string, n int, lease, wait time.Duration) ([]tasks.Claim, error) {
	if err := queueCheckClaim(worker, n); err != nil {
		return nil, tasksFail("claim", err)
	}
	deadline := time.Now().Add(wait)
	for {
		claims, w, err := q.claim(ctx, worker, n, lease)
		if err != nil || len(claims) > 0 {
			return claims, err
		}
		d := time.Until(deadline)
		if d <= 0 {
			return nil, nil
		}
		if w.next != 0 {
			d = min(d, max(time.Duration(w.next-micros(q.now()))*time.Microsecond, time.Millisecond))
		}
		if err := q.block(ctx, w.last, d); err != nil {
			return nil, err
		}
	}
}

// wakeAt tells a Claim that found nothing what to wait for: an entry after
// last[0] in the wake stream, and the ready time (µs, 0 if none) of the
// earliest delayed item.
type wakeAt struct {
	last []string
	next int64
}

// claim runs claimScript once.
func (q *Queue) claim(ctx context.Context, worker string, n int, lease time.Duration) ([]tasks.Claim, wakeAt, error) {
	now := q.now()
	until := now.Add(lease)
	res, err := q.l.runScript(ctx, claimScript, q.keys, micros(now), n, worker, newTokenBase(),
		until.UnixNano(), micros(until)).Slice()
	if err != nil {
		return nil, wakeAt{}, wrap("claim", err)
	}
	bad := func() ([]tasks.Claim, wakeAt, error) {
		return nil, wakeAt{}, tasksFail("claim", fmt.Errorf("unexpected script reply %v", res))
	}
	if len(res) == 0 {
		return bad()
	}
	claims, err := queueClaims(res[0], 3, worker, until)
	if err != nil {
		return bad()
	}
	if len(claims) > 0 {
		return claims, wakeAt{}, nil
	}
	if len(res) != 3 {
		return bad()
	}
	last, err := tasksReplyStrings(res[1])
	next, _ := res[2].(string)
	if err != nil || len(last) != 1 {
		return bad()
	}
	var w wakeAt
	w.last = last
	if next != "" {
		f, err := strconv.ParseFloat(next, 64)
		if err != nil {
			return bad()
		}
		w.next = int64(f)
	}
	return nil, w, nil
}

// queueClaims reads a script's claims: stride values per claim, rank,
// member, token and, if stride is 4, deliveries (else 1).
func queueClaims(v any, stride int, worker string, until time.Time) ([]tasks.Claim, error) {
	vals, ok := v.([]any)
	if !ok || len(vals)%stride != 0 {
		return nil, errors.New("malformed claims")
	}
	claims := make([]tasks.Claim, 0, len(vals)/stride)
	for i := 0; i < len(vals); i += stride {
		rank, ok1 := vals[i].(int64)
		member, ok2 := vals[i+1].(string)
		token, ok3 := vals[i+2].(string)
		tenant, runID, ok4 := strings.Cut(member, "\x00")
		deliveries := int64(1)
		ok5 := true
		if stride == 4 {
			deliveries, ok5 = vals[i+3].(int64)
		}
		if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || rank < 0 || int(rank) >= len(tasks.Priorities) {
			return nil, errors.New("malformed claim")
		}
		claims = append(claims, tasks.Claim{
			QueueItem:  tasks.QueueItem{Tenant: tenant, RunID: runID, Priority: tasks.Priorities[rank]},
			Worker:     worker,
			Until:      until.UTC(),
			Token:      token,
			Deliveries: int(deliveries),
		})
	}
	return claims, nil
}

// block waits in XREAD until an entry follows last[0] in the wake stream,
// or d passes, or ctx ends (ctx.Err()). The
// read runs on the follower client, holding a slot of the Log's
// MaxFollowers, in slices of at most maxBlock, as Tail's does.
func (q *Queue) block(ctx context.Context, last []string, d time.Duration) error {
	deadline := time.Now().Add(d)
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case q.l.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
	streams := []string{q.keys[qWake], last[0]}
	done := make(chan error, 1)
	go func() {
		defer func() { <-q.l.sem }()
		// The read outlives a cancelled ctx by up to maxBlock; it must not
		// be cut mid-reply, which would cost the connection.
		rctx := context.WithoutCancel(ctx)
		for {
			left := time.Until(deadline)
			if left <= 0 || ctx.Err() != nil {
				done <- nil
				return
			}
			err := q.l.followers.XRead(rctx, &goredis.XReadArgs{
				Streams: streams,
				Count:   1,
				Block:   max(min(left, maxBlock), time.Millisecond),
			}).Err()
			if errors.Is(err, goredis.Nil) {
				continue
			}
			if err != nil {
				err = wrap("claim: wait", err)
			}
			done <- err
			return
		}
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reclaimScript leases to a worker up to n items whose lease has expired,
// the longest expired first, moving their entries with XCLAIM.
// ARGV[1] now (µs), ARGV[2] n, ARGV[3] worker, ARGV[4] token base,
// ARGV[5] lease end (ns), ARGV[6] lease end (µs).
// Returns {rank, member, token, deliveries, ...}.
var reclaimScript = newQueueScript(`
local worker, out = ARGV[3], {}
for k, id in ipairs(redis.call('ZRANGE', KEYS[8], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])) do
  local rank, entry, _, _, d, old = lease(redis.call('HGET', KEYS[7], id))
  if rank then
    local key, token, n = stream(tonumber(rank) + 1, tenantOf(id)), ARGV[4] .. '.' .. k, tonumber(d) + 1
    redis.call('XCLAIM', key, G, worker, 0, entry)
    if old ~= worker then leave(key, old) end
    redis.call('HSET', KEYS[7], id, table.concat({'l', rank, entry, token, ARGV[5], n, worker}, '|'))
    redis.call('ZADD', KEYS[8], ARGV[6], id)
    out[#out + 1] = tonumber(rank)
    out[#out + 1] = id
    out[#out + 1] = token
    out[#out + 1] = n
  else
    redis.call('ZREM', KEYS[8], id)
  end
end
return out
`)

// Reclaim implements tasks.Queue with one script.
func (q *Queue) Reclaim(ctx context.Context, worker string, n int, lease time.Duration) ([]tasks.Claim, error) {
	if err := queueCheckClaim(worker, n); err != nil {
		return nil, tasksFail("reclaim", err)
	}
	now := q.now()
	until := now.Add(lease)
	res, err := reclaimScript.Run(ctx, q.l.client, q.keys, micros(now), n, worker, newTokenBase(),
		until.UnixNano(), micros(until)).Result()
	if err != nil {
		return nil, wrap("reclaim", err)
	}
	claims, err := queueClaims(res, 4, worker, until)
	if err != nil {
		return nil, tasksFail("reclaim", fmt.Errorf("unexpected script reply %v", res))
	}
	return claims, nil
}

// holding runs script for c's item (ARGV[1] member, ARGV[2] token, then
// args), which returns 0 or {0} when the token is not the item's. It
// reports a lost lease as vigil.Conflict.
func (q *Queue) holding(ctx context.Context, op string, c tasks.Claim, script *goredis.Script, args ...any) (any, error) {
	what := op + " " + c.RunID
	if !vigil.ValidID(c.Tenant) || !vigil.ValidID(c.RunID) || c.Token == "" {
		return nil, tasksFail(what, queueLeaseLost(c))
	}
	res, err := q.l.runScript(ctx, script, q.keys, append([]any{queueMember(c.Tenant, c.RunID), c.Token}, args...)...).Result()
	if err != nil {
		return nil, wrap(what, err)
	}
	if n, ok := res.(int64); ok && n == 0 {
		return nil, tasksFail(what, queueLeaseLost(c))
	}
	if vals, ok := res.([]any); ok && len(vals) > 0 && vals[0] == int64(0) {
		return nil, tasksFail(what, queueLeaseLost(c))
	}
	return res, nil
}

// extendScript moves a lease's end if the token holds it.
// ARGV[1] member, ARGV[2] token, ARGV[3] lease end (ns), ARGV[4] lease end
// (µs). Returns {0} if the lease is lost, else {1, rank, deliveries,
// worker}.
var extendScript = newQueueScript(`
local rank, entry, token, _, d, worker = lease(redis.call('HGET', KEYS[7], ARGV[1]))
if not rank or token ~= ARGV[2] then return {0} end
redis.call('HSET', KEYS[7], ARGV[1], table.concat({'l', rank, entry, token, ARGV[3], d, worker}, '|'))
redis.call('ZADD', KEYS[8], ARGV[4], ARGV[1])
redis.call('XCLAIM', stream(tonumber(rank) + 1, tenantOf(ARGV[1])), G, worker, 0, entry, 'JUSTID')
return {1, tonumber(rank), tonumber(d), worker}
`)

// Extend implements tasks.Queue with one script. The returned claim is the
// stored lease: c's token with the new Until.
func (q *Queue) Extend(ctx context.Context, c tasks.Claim, lease time.Duration) (tasks.Claim, error) {
	until := q.now().Add(lease)
	res, err := q.holding(ctx, "extend", c, extendScript, until.UnixNano(), micros(until))
	if err != nil {
		return tasks.Claim{}, err
	}
	vals, _ := res.([]any)
	if len(vals) == 4 {
		rank, ok1 := vals[1].(int64)
		deliveries, ok2 := vals[2].(int64)
		worker, ok3 := vals[3].(string)
		if ok1 && ok2 && ok3 && rank >= 0 && int(rank) < len(tasks.Priorities) {
			c.Priority, c.Deliveries, c.Worker, c.Until = tasks.Priorities[rank], int(deliveries), worker, until.UTC()
			return c, nil
		}
	}
	return tasks.Claim{}, tasksFail("extend "+c.RunID, fmt.Errorf("unexpected script reply %v", res))
}

// ackScript removes an item if the token holds its lease.
// ARGV[1] member, ARGV[2] token. Returns 1 if removed, 0 if the lease is
// lost.
var ackScript = newQueueScript(`
local rank, entry, token, _, _, worker = lease(redis.call('HGET', KEYS[7], ARGV[1]))
if not rank or token ~= ARGV[2] then return 0 end
drop(tonumber(rank) + 1, ARGV[1], entry, worker)
redis.call('HDEL', KEYS[7], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
return 1
`)

// Ack implements tasks.Queue with one script: XACK and XDEL of the entry
// (and DEL of the stream it leaves empty), and the item's records gone.
func (q *Queue) Ack(ctx context.Context, c tasks.Claim) error {
	_, err := q.holding(ctx, "ack", c, ackScript)
	return err
}

// releaseScript ends a lease if the token holds it and makes the item
// ready again, at once (a new entry at the end of its tenant's stream,
// so the tenant's last turn) or after a delay.
// ARGV[1] member, ARGV[2] token, ARGV[3] now (µs), ARGV[4] ready time (µs)
// or empty for now. Returns 1 if released, 0 if the lease is lost.
var releaseScript = newQueueScript(`
local rank, entry, token, _, _, worker = lease(redis.call('HGET', KEYS[7], ARGV[1]))
if not rank or token ~= ARGV[2] then return 0 end
local p = tonumber(rank) + 1
drop(p, ARGV[1], entry, worker)
redis.call('ZREM', KEYS[8], ARGV[1])
if ARGV[4] == '' then
  promote(p, ARGV[3])
  ready(p, ARGV[1])
else
  local first = earliest()
  delay(p, ARGV[1], ARGV[4])
  wake(ARGV[4], first)
end
return 1
`)

// Release implements tasks.Queue with one script.
func (q *Queue) Release(ctx context.Context, c tasks.Claim, delay time.Duration) error {
	now := q.now()
	readyAt := ""
	if delay > 0 {
		readyAt = strconv.FormatInt(micros(now.Add(delay)), 10)
	}
	_, err := q.holding(ctx, "release", c, releaseScript, micros(now), readyAt)
	return err
}

// statsScript counts the items by state, delayed items that are due as
// ready. It only reads. ARGV[1] now (µs). Returns {ready high, ready
// normal, ready low, delayed, leased}.
var statsScript = newQueueScript(`
local out, delayed = {}, 0
for p = 1, 3 do
  local due = redis.call('ZCOUNT', KEYS[p + 3], '-inf', ARGV[1])
  out[p] = due
  for _, t in ipairs(redis.call('ZRANGE', KEYS[p], 0, -1)) do
    out[p] = out[p] + undelivered(stream(p, t))
  end
  delayed = delayed + redis.call('ZCARD', KEYS[p + 3]) - due
end
out[4] = delayed
out[5] = redis.call('ZCARD', KEYS[8])
return out
`)

// Stats implements tasks.Queue with one read-only script (EVALSHA_RO).
func (q *Queue) Stats(ctx context.Context) (tasks.QueueStats, error) {
	res, err := statsScript.RunRO(ctx, q.l.client, q.keys, micros(q.now())).Int64Slice()
	if err != nil {
		return tasks.QueueStats{}, wrap("queue stats", err)
	}
	if len(res) != 5 {
		return tasks.QueueStats{}, tasksFail("queue stats", fmt.Errorf("unexpected script reply %v", res))
	}
	st := tasks.QueueStats{Ready: map[tasks.Priority]int{}, Delayed: int(res[3]), Leased: int(res[4])}
	for i, p := range tasks.Priorities {
		st.Ready[p] = int(res[i])
	}
	return st, nil
}

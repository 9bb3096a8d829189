package redis

// This file implements memory.Store. Memory keys sit under the tenant like
// a thread's, in their own "mem" space:
//
//	<prefix>:t:<tenant>:mem:u:{<tenant>/<user>}:profile     string: the sealed profile, as given
//	<prefix>:t:<tenant>:mem:th:{<tenant>/<thread>}:facts    hash: fact id → JSON of memory.Fact
//	<prefix>:t:<tenant>:mem:th:{<tenant>/<thread>}:order    sorted set: fact id, scored by its number
//	<prefix>:t:<tenant>:mem:th:{<tenant>/<thread>}:terms    sorted set, all scores 0: "<term>\x00<fact id>"
//	<prefix>:t:<tenant>:mem:th:{<tenant>/<thread>}:seq      string: the last fact number given
//
// A profile's key has a hash tag of its own user; a thread's fact keys
// share the thread's hash tag (the one of its events), so each script below
// touches one Cluster slot. A term's facts are the lexicographic range of
// the terms set that starts with the term and its NUL (terms hold no NUL
// byte), read with ZRANGEBYLEX. Facts are numbered by INCR of seq in the
// same script that stores them, so "newest first" is the order facts were
// added in, across every process. Profiles are only ever ciphertext:
// memory.Service seals them before they get here.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/memory"
)

var _ memory.Store = (*Log)(nil)

// memProfileKey returns the key of a user's sealed profile.
func (l *Log) memProfileKey(tenant, user string) string {
	return l.prefix + ":t:" + tenant + ":mem:u:{" + tenant + "/" + user + "}:profile"
}

// memFactKeys returns a thread's fact keys: facts, order, terms, seq.
func (l *Log) memFactKeys(tenant, thread string) []string {
	base := l.prefix + ":t:" + tenant + ":mem:th:{" + tenant + "/" + thread + "}:"
	return []string{base + "facts", base + "order", base + "terms", base + "seq"}
}

// GetProfile implements memory.Store.
func (l *Log) GetProfile(ctx context.Context, tenant, user string) ([]byte, error) {
	if err := memory.CheckIDs(memory.UserIDNames, tenant, user); err != nil {
		return nil, fmt.Errorf("store/redis: get profile of %s: %w", user, err)
	}
	b, err := l.client.Get(ctx, l.memProfileKey(tenant, user)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("store/redis: get profile of %s: %w", user, vigil.Errorf(vigil.NotFound, "no profile for user %s", user))
	}
	if err != nil {
		return nil, wrap("get profile of "+user, err)
	}
	return b, nil
}

// PutProfile implements memory.Store.
func (l *Log) PutProfile(ctx context.Context, tenant, user string, sealed []byte) error {
	if err := memory.CheckIDs(memory.UserIDNames, tenant, user); err != nil {
		return fmt.Errorf("store/redis: put profile of %s: %w", user, err)
	}
	if err := l.client.Set(ctx, l.memProfileKey(tenant, user), sealed, 0).Err(); err != nil {
		return wrap("put profile of "+user, err)
	}
	return nil
}

// DeleteProfile implements memory.Store.
func (l *Log) DeleteProfile(ctx context.Context, tenant, user string) error {
	if err := memory.CheckIDs(memory.UserIDNames, tenant, user); err != nil {
		return fmt.Errorf("store/redis: delete profile of %s: %w", user, err)
	}
	if err := l.client.Del(ctx, l.memProfileKey(tenant, user)).Err(); err != nil {
		return wrap("delete profile of "+user, err)
	}
	return nil
}

// memAddScript stores a fact unless its id exists, numbers it and indexes
// its terms, atomically.
// KEYS facts, order, terms, seq; ARGV[1] id, ARGV[2] JSON, ARGV[3..] terms.
// Returns 1 if stored, 0 if the id exists.
var memAddScript = goredis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local n = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], n, ARGV[1])
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[3], 0, ARGV[i] .. '\0' .. ARGV[1])
end
return 1
`)

// AddFact implements memory.Store.
func (l *Log) AddFact(ctx context.Context, f memory.Fact, terms []string) error {
	if err := memory.CheckIDs(memory.FactIDNames, f.Tenant, f.Thread, f.ID); err != nil {
		return fmt.Errorf("store/redis: add fact to %s: %w", f.Thread, err)
	}
	if err := memory.CheckTerms(terms); err != nil {
		return fmt.Errorf("store/redis: add fact to %s: %w", f.Thread, err)
	}
	rec, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("store/redis: add fact to %s: %w", f.Thread, err)
	}
	args := make([]any, 0, 2+len(terms))
	args = append(args, f.ID, rec)
	for _, t := range terms {
		args = append(args, t)
	}
	added, err := memAddScript.Run(ctx, l.client, l.memFactKeys(f.Tenant, f.Thread), args...).Int()
	if err != nil {
		return wrap("add fact to "+f.Thread, err)
	}
	if added == 0 {
		return fmt.Errorf("store/redis: add fact to %s: %w", f.Thread,
			vigil.Errorf(vigil.Conflict, "fact %s already exists in thread %s", f.ID, f.Thread))
	}
	return nil
}

// memListScript returns the newest facts' JSON.
// KEYS facts, order; ARGV[1] limit.
var memListScript = goredis.NewScript(`
local ids = redis.call('ZREVRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1)
local out = {}
for i, id in ipairs(ids) do out[i] = redis.call('HGET', KEYS[1], id) end
return out
`)

// ListFacts implements memory.Store.
func (l *Log) ListFacts(ctx context.Context, tenant, thread string, limit int) ([]memory.Fact, error) {
	if err := memory.CheckIDs(memory.ThreadIDNames, tenant, thread); err != nil {
		return nil, fmt.Errorf("store/redis: list facts of %s: %w", thread, err)
	}
	if err := memory.CheckLimit(limit); err != nil {
		return nil, fmt.Errorf("store/redis: list facts of %s: %w", thread, err)
	}
	keys := l.memFactKeys(tenant, thread)
	res, err := memListScript.Run(ctx, l.client, keys[:2], limit).StringSlice()
	if err != nil {
		return nil, wrap("list facts of "+thread, err)
	}
	return memDecodeFacts("list facts of "+thread, res)
}

// memSearchScript returns the JSON of the newest facts indexed under any
// of the terms, each once.
// KEYS facts, order, terms; ARGV[1] limit, ARGV[2..] terms.
var memSearchScript = goredis.NewScript(`
local seen, found = {}, {}
for i = 2, #ARGV do
  local t = ARGV[i]
  for _, m in ipairs(redis.call('ZRANGEBYLEX', KEYS[3], '[' .. t .. '\0', '(' .. t .. '\1')) do
    local id = string.sub(m, #t + 2)
    if not seen[id] then
      seen[id] = true
      found[#found + 1] = {tonumber(redis.call('ZSCORE', KEYS[2], id)), id}
    end
  end
end
table.sort(found, function(a, b) return a[1] > b[1] end)
local out = {}
for i = 1, math.min(#found, tonumber(ARGV[1])) do
  out[i] = redis.call('HGET', KEYS[1], found[i][2])
end
return out
`)

// FactCandidates implements memory.Store. The search runs in one script,
// which reads every fact id indexed under the terms and returns the newest
// limit facts among them.
func (l *Log) FactCandidates(ctx context.Context, tenant, thread string, terms []string, limit int) ([]memory.Fact, error) {
	if err := memory.CheckIDs(memory.ThreadIDNames, tenant, thread); err != nil {
		return nil, fmt.Errorf("store/redis: search facts of %s: %w", thread, err)
	}
	if err := memory.CheckTerms(terms); err != nil {
		return nil, fmt.Errorf("store/redis: search facts of %s: %w", thread, err)
	}
	if err := memory.CheckLimit(limit); err != nil {
		return nil, fmt.Errorf("store/redis: search facts of %s: %w", thread, err)
	}
	if len(terms) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 1+len(terms))
	args = append(args, limit)
	for _, t := range terms {
		args = append(args, t)
	}
	keys := l.memFactKeys(tenant, thread)
	res, err := memSearchScript.Run(ctx, l.client, keys[:3], args...).StringSlice()
	if err != nil {
		return nil, wrap("search facts of "+thread, err)
	}
	return memDecodeFacts("search facts of "+thread, res)
}

// memDecodeFacts decodes the facts' JSON a script returned.
func memDecodeFacts(op string, res []string) ([]memory.Fact, error) {
	if len(res) == 0 {
		return nil, nil
	}
	fs := make([]memory.Fact, len(res))
	for i, s := range res {
		if err := json.Unmarshal([]byte(s), &fs[i]); err != nil {
			return nil, fmt.Errorf("store/redis: %s: corrupt fact: %w", op, err)
		}
	}
	return fs, nil
}

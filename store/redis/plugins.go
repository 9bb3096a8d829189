package redis

// This file implements toolsregistry.PluginStore. Plugin tools have a hash
// per tenant, an index of the tenants that have any, and a revision
// counter, all under the hash tag {<prefix>}:
//
//	<prefix>:t:<tenant>:plugins:{<prefix>}   hash: name@version → JSON of toolsregistry.Plugin
//	<prefix>:plugins:{<prefix>}:tenants      set: tenants with plugins
//	<prefix>:plugins:{<prefix>}:rev          string: the store revision
//
// A record holds the plugin's secrets sealed (toolsregistry.Sync seals them
// before they get here), never in clear.
//
// Each change is one Lua script: it checks and writes the tenant's hash
// and the index, increments the revision, and PUBLISHes the change on
//
//	<prefix>:plugins:changes                 channel: JSON of toolsregistry.PluginChange
//
// Revisions are taken and changes published inside the script, so the
// channel carries the changes in revision order. WatchPlugins subscribes
// to it. Pub/sub delivers at most once: a subscriber that loses its
// connection misses what is published until go-redis has subscribed
// again, so every (re)subscription is reported as a Resync, and a
// subscriber that sees a revision skipped knows it missed one.
//
// The keys share one hash tag, so the scripts run in one Cluster slot:
// plugins are few, and one slot keeps each change atomic with its revision.
// ListPlugins reads the tenants' hashes, computed in Lua from the index
// rather than declared, which stay within the declared keys' slot (see
// tasks.go for what that means while the slot migrates).

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/toolsregistry"
)

var _ toolsregistry.PluginStore = (*Log)(nil)

// pluginsTag is the hash tag of every plugin key.
func (l *Log) pluginsTag() string { return "{" + l.prefix + "}" }

// pluginsKey returns the hash of tenant's plugins.
func (l *Log) pluginsKey(tenant string) string {
	return l.prefix + ":t:" + tenant + ":plugins:" + l.pluginsTag()
}

// pluginIndexKeys returns the tenants index and the revision counter.
func (l *Log) pluginIndexKeys() (tenants, rev string) {
	base := l.prefix + ":plugins:" + l.pluginsTag()
	return base + ":tenants", base + ":rev"
}

// pluginsChannel is the channel changes are published on.
func (l *Log) pluginsChannel() string { return l.prefix + ":plugins:changes" }

// pluginCheckTenant rejects a tenant that is not a vigil.ValidID; Global
// ("") is one of them.
func pluginCheckTenant(tenant string) error {
	if !vigil.ValidID(tenant) {
		return vigil.FieldError("tenant", "invalid tenant %q: plugins belong to a tenant", tenant)
	}
	return nil
}

// pluginPutScript stores a plugin version unless it exists.
// KEYS[1] the tenant's plugins, KEYS[2] tenants, KEYS[3] rev.
// ARGV[1] name@version, ARGV[2] the record's JSON without rev (an object
// that is not empty), ARGV[3] the tenant, ARGV[4] the channel.
// Returns the revision, or nil (false) if the version exists.
var pluginPutScript = goredis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return false end
local rev = redis.call('INCR', KEYS[3])
local rec = string.sub(ARGV[2], 1, -2) .. ',"rev":' .. rev .. '}'
redis.call('HSET', KEYS[1], ARGV[1], rec)
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[4], '{"rev":' .. rev .. ',"put":' .. rec .. '}')
return rev
`)

// pluginDeleteScript removes one version of a plugin, or every version.
// KEYS as pluginPutScript's. ARGV[1] the name, ARGV[2] the version or "0"
// for every one, ARGV[3] the tenant, ARGV[4] the channel.
// Returns {rev, versions removed…} in ascending order, or nil (false) if
// nothing matched. Tenants and names need no JSON escaping (vigil.ValidID,
// tool names).
var pluginDeleteScript = goredis.NewScript(`
local removed = {}
if ARGV[2] ~= '0' then
  if redis.call('HDEL', KEYS[1], ARGV[1] .. '@' .. ARGV[2]) == 1 then removed[1] = tonumber(ARGV[2]) end
else
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    local n, v = string.match(f, '^(.*)@(%d+)$')
    if n == ARGV[1] then
      redis.call('HDEL', KEYS[1], f)
      removed[#removed + 1] = tonumber(v)
    end
  end
end
if #removed == 0 then return false end
table.sort(removed)
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[3]) end
local rev = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[4], '{"rev":' .. rev .. ',"deleted":{"tenant":"' .. ARGV[3] ..
  '","name":"' .. ARGV[1] .. '","versions":[' .. table.concat(removed, ',') .. ']}}')
table.insert(removed, 1, rev)
return removed
`)

// pluginListScript reads every plugin and the revision at one instant.
// KEYS[1] tenants, KEYS[2] rev. ARGV[1] and ARGV[2] are what comes before
// and after the tenant in a tenant's plugins key.
// Returns {rev, record…}.
var pluginListScript = goredis.NewScript(`
local out = {redis.call('GET', KEYS[2]) or '0'}
for _, t in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  for _, v in ipairs(redis.call('HVALS', ARGV[1] .. t .. ARGV[2])) do out[#out + 1] = v end
end
return out
`)

// PutPlugin implements toolsregistry.PluginStore.
func (l *Log) PutPlugin(ctx context.Context, p toolsregistry.Plugin) (toolsregistry.PluginChange, error) {
	ref := p.Ref()
	if err := pluginCheckTenant(p.Tool.Tenant); err != nil {
		return toolsregistry.PluginChange{}, fmt.Errorf("store/redis: put plugin %s: %w", ref, err)
	}
	if _, _, err := toolsregistry.ParseRef(ref); err != nil {
		return toolsregistry.PluginChange{}, fmt.Errorf("store/redis: put plugin %s: %w", ref, err)
	}
	p.Rev = 0 // the script adds it
	rec, err := json.Marshal(p)
	if err != nil {
		return toolsregistry.PluginChange{}, fmt.Errorf("store/redis: put plugin %s: %w", ref, err)
	}
	tenants, revKey := l.pluginIndexKeys()
	rev, err := pluginPutScript.Run(ctx, l.client, []string{l.pluginsKey(p.Tool.Tenant), tenants, revKey},
		ref, rec, p.Tool.Tenant, l.pluginsChannel()).Uint64()
	if errors.Is(err, goredis.Nil) {
		return toolsregistry.PluginChange{}, fmt.Errorf("store/redis: put plugin: %w",
			vigil.Errorf(vigil.Conflict, "plugin tool %s is already registered", ref))
	}
	if err != nil {
		return toolsregistry.PluginChange{}, wrap("put plugin "+ref, err)
	}
	p.Rev = rev
	return toolsregistry.PluginChange{Rev: rev, Put: &p}, nil
}

// DeletePlugin implements toolsregistry.PluginStore.
func (l *Log) DeletePlugin(ctx context.Context, tenant, ref string) (toolsregistry.PluginChange, error) {
	if err := pluginCheckTenant(tenant); err != nil {
		return toolsregistry.PluginChange{}, fmt.Errorf("store/redis: delete plugin %s: %w", ref, err)
	}
	name, version, err := toolsregistry.ParseRef(ref)
	if err != nil {
		return toolsregistry.PluginChange{}, fmt.Errorf("store/redis: delete plugin: %w", err)
	}
	tenants, revKey := l.pluginIndexKeys()
	res, err := pluginDeleteScript.Run(ctx, l.client, []string{l.pluginsKey(tenant), tenants, revKey},
		name, version, tenant, l.pluginsChannel()).Int64Slice()
	if errors.Is(err, goredis.Nil) {
		return toolsregistry.PluginChange{}, fmt.Errorf("store/redis: delete plugin: %w",
			vigil.Errorf(vigil.NotFound, "no plugin tool %s", ref))
	}
	if err != nil {
		return toolsregistry.PluginChange{}, wrap("delete plugin "+ref, err)
	}
	if len(res) < 2 {
		return toolsregistry.PluginChange{}, fmt.Errorf("store/redis: delete plugin %s: unexpected script reply %v", ref, res)
	}
	d := toolsregistry.PluginDeletion{Tenant: tenant, Name: name}
	for _, v := range res[1:] {
		d.Versions = append(d.Versions, int(v))
	}
	return toolsregistry.PluginChange{Rev: uint64(res[0]), Deleted: &d}, nil
}

// ListPlugins implements toolsregistry.PluginStore.
func (l *Log) ListPlugins(ctx context.Context) ([]toolsregistry.Plugin, uint64, error) {
	tenants, revKey := l.pluginIndexKeys()
	res, err := pluginListScript.Run(ctx, l.client, []string{tenants, revKey},
		l.prefix+":t:", ":plugins:"+l.pluginsTag()).StringSlice()
	if err != nil {
		return nil, 0, wrap("list plugins", err)
	}
	if len(res) == 0 {
		return nil, 0, fmt.Errorf("store/redis: list plugins: empty script reply")
	}
	rev, err := strconv.ParseUint(res[0], 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("store/redis: list plugins: corrupt revision %q", res[0])
	}
	var out []toolsregistry.Plugin
	for _, rec := range res[1:] {
		var p toolsregistry.Plugin
		if err := json.Unmarshal([]byte(rec), &p); err != nil {
			return nil, 0, fmt.Errorf("store/redis: list plugins: corrupt plugin: %w", err)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b toolsregistry.Plugin) int {
		return cmp.Or(cmp.Compare(a.Tool.Tenant, b.Tool.Tenant), cmp.Compare(a.Tool.Name, b.Tool.Name), cmp.Compare(a.Tool.Version, b.Tool.Version))
	})
	return out, rev, nil
}

// WatchPlugins implements toolsregistry.PluginStore. It returns once the
// subscription is in place. Every later (re)subscription, after go-redis
// lost and restored the connection, is reported as a Resync, and so is a
// message that does not decode.
func (l *Log) WatchPlugins(ctx context.Context) (<-chan toolsregistry.PluginChange, error) {
	ps := l.client.Subscribe(ctx, l.pluginsChannel())
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, wrap("watch plugins", err)
	}
	in := ps.ChannelWithSubscriptions()
	out := make(chan toolsregistry.PluginChange, 16)
	go func() {
		defer close(out)
		defer ps.Close()
		for {
			var c toolsregistry.PluginChange
			select {
			case <-ctx.Done():
				return
			case m, ok := <-in:
				if !ok {
					return
				}
				switch m := m.(type) {
				case *goredis.Subscription:
					if m.Kind != "subscribe" {
						continue
					}
					c.Resync = true
				case *goredis.Message:
					if err := json.Unmarshal([]byte(m.Payload), &c); err != nil || (c.Put == nil && c.Deleted == nil) {
						c = toolsregistry.PluginChange{Resync: true}
					}
				default:
					continue
				}
			}
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

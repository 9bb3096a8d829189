package toolsregistry

import (
	"container/list"
	"sync"
	"time"

	"github.com/vigilhq/vigil/streams"
)

// resultCache is an in-process LRU of call results, bounded by entries and
// by bytes. Entries carry the time they were produced; whether one is fresh
// (within its tool's TTL) or only good for a stale fallback is the caller's
// decision, so one entry serves both. It is safe for concurrent use.
//
// A shared cache in the store (for other instances) would sit behind it:
// get falls through to the store on a miss, put writes through.
type resultCache struct {
	mu         sync.Mutex
	maxEntries int
	maxBytes   int
	keep       time.Duration // an entry older than this serves nobody: dropped
	bytes      int
	ll         *list.List // front = most recently used
	items      map[string]*list.Element
}

type cacheEntry struct {
	key  string
	out  Output
	at   time.Time
	size int
}

func newResultCache(maxEntries, maxBytes int, keep time.Duration) *resultCache {
	return &resultCache{maxEntries: maxEntries, maxBytes: maxBytes, keep: keep, ll: list.New(), items: map[string]*list.Element{}}
}

// get returns the entry for key, if it is at most maxAge old at now. An
// entry past maxAge but within keep stays: a result too old to answer a
// call fresh (past its tool's TTL) is still what a failing call falls back
// to. Only an entry older than keep is dropped.
func (c *resultCache) get(key string, now time.Time, maxAge time.Duration) (Output, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return Output{}, time.Time{}, false
	}
	e := el.Value.(*cacheEntry)
	if age := now.Sub(e.at); age > maxAge {
		if age > c.keep {
			c.remove(el)
		}
		return Output{}, time.Time{}, false
	}
	c.ll.MoveToFront(el)
	return e.out, e.at, true
}

// put stores out under key as produced at at, evicting the least recently
// used entries beyond the bounds. An output larger than a quarter of the
// byte bound is not kept.
func (c *resultCache) put(key string, out Output, at time.Time) {
	size := len(key) + outputSize(out)
	if size > c.maxBytes/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.remove(el)
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key: key, out: out, at: at, size: size})
	c.bytes += size
	for c.ll.Len() > c.maxEntries || c.bytes > c.maxBytes {
		c.remove(c.ll.Back())
	}
}

func (c *resultCache) remove(el *list.Element) {
	e := c.ll.Remove(el).(*cacheEntry)
	delete(c.items, e.key)
	c.bytes -= e.size
}

// outputSize estimates the memory an output holds: its value and the
// inline data of its parts, plus a little per part.
func outputSize(out Output) int {
	n := len(out.Value)
	for _, p := range out.Parts {
		n += 128
		switch p := p.(type) {
		case streams.Image:
			n += len(p.Data)
		case streams.Audio:
			n += len(p.Data)
		case streams.File:
			n += len(p.Data)
		case streams.Code:
			n += len(p.Code)
		case streams.Table:
			n += 32 * len(p.Rows) * len(p.Columns)
		}
	}
	return n
}

package bolt

// This file implements toolsregistry.PluginStore. Plugin tools live in
// their own top-level bucket, one bucket per tenant:
//
//	plugins/         its bucket sequence is the store revision
//	  <tenant>/      key: name@version; value: JSON of toolsregistry.Plugin
//
// A record holds the plugin's secrets sealed (toolsregistry.Sync seals them
// before they get here), never in clear. Each write is its own write
// transaction that takes the next revision from the bucket sequence; the
// bucket is created by the first write, so that files written before
// plugins existed need no migration.
//
// The file is locked to one process, so every change is made through one
// *DB and WatchPlugins reports the changes made through it. Plugin writes
// hold the DB's plugin hub lock from the transaction until the change is
// handed to every watcher, so watchers see changes in revision order; each
// watcher queues what it has not yet taken, so a slow one holds up no
// writer.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/toolsregistry"
	bbolt "go.etcd.io/bbolt"
)

var _ toolsregistry.PluginStore = (*DB)(nil)

var pluginsBucket = []byte("plugins")

// pluginHub holds a DB's plugin watchers. It lives beside the DB, in
// pluginHubs, from the first plugin write or watch until the DB closes.
type pluginHub struct {
	mu       sync.Mutex // held by each plugin write until its change is delivered
	watchers map[*pluginWatcher]bool
}

var pluginHubs sync.Map // *DB → *pluginHub

// plugins returns db's plugin hub, making it on first use.
func (db *DB) plugins() *pluginHub {
	if h, ok := pluginHubs.Load(db); ok {
		return h.(*pluginHub)
	}
	h, loaded := pluginHubs.LoadOrStore(db, &pluginHub{watchers: map[*pluginWatcher]bool{}})
	if !loaded {
		go func() {
			<-db.closed
			pluginHubs.Delete(db)
		}()
	}
	return h.(*pluginHub)
}

// publish hands c to every watcher. h.mu is held.
func (h *pluginHub) publish(c toolsregistry.PluginChange) {
	for w := range h.watchers {
		w.push(c)
	}
}

// pluginWatcher is one WatchPlugins: the changes it has not yet taken.
type pluginWatcher struct {
	mu      sync.Mutex
	pending []toolsregistry.PluginChange
	wake    chan struct{} // signalled when pending grows
}

func (w *pluginWatcher) push(c toolsregistry.PluginChange) {
	w.mu.Lock()
	w.pending = append(w.pending, c)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *pluginWatcher) take() []toolsregistry.PluginChange {
	w.mu.Lock()
	defer w.mu.Unlock()
	cs := w.pending
	w.pending = nil
	return cs
}

// pluginCheckTenant rejects a tenant that is not a vigil.ValidID; Global
// ("") is one of them.
func pluginCheckTenant(tenant string) error {
	if !vigil.ValidID(tenant) {
		return vigil.FieldError("tenant", "invalid tenant %q: plugins belong to a tenant", tenant)
	}
	return nil
}

// PutPlugin implements toolsregistry.PluginStore.
func (db *DB) PutPlugin(ctx context.Context, p toolsregistry.Plugin) (toolsregistry.PluginChange, error) {
	if err := ctx.Err(); err != nil {
		return toolsregistry.PluginChange{}, err
	}
	if err := pluginCheckTenant(p.Tool.Tenant); err != nil {
		return toolsregistry.PluginChange{}, err
	}
	ref := p.Ref()
	if _, _, err := toolsregistry.ParseRef(ref); err != nil {
		return toolsregistry.PluginChange{}, err
	}
	if db.isClosed() {
		return toolsregistry.PluginChange{}, errClosed
	}
	h := db.plugins()
	h.mu.Lock()
	defer h.mu.Unlock()
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(pluginsBucket)
		if err != nil {
			return err
		}
		tb, err := b.CreateBucketIfNotExists([]byte(p.Tool.Tenant))
		if err != nil {
			return err
		}
		if tb.Get([]byte(ref)) != nil {
			return vigil.Errorf(vigil.Conflict, "plugin tool %s is already registered", ref)
		}
		if p.Rev, err = b.NextSequence(); err != nil {
			return err
		}
		rec, err := json.Marshal(p)
		if err != nil {
			return err
		}
		return tb.Put([]byte(ref), rec)
	})
	if err != nil {
		return toolsregistry.PluginChange{}, wrap("put plugin", ref, err)
	}
	c := toolsregistry.PluginChange{Rev: p.Rev, Put: &p}
	h.publish(c)
	return c, nil
}

// DeletePlugin implements toolsregistry.PluginStore.
func (db *DB) DeletePlugin(ctx context.Context, tenant, ref string) (toolsregistry.PluginChange, error) {
	if err := ctx.Err(); err != nil {
		return toolsregistry.PluginChange{}, err
	}
	if err := pluginCheckTenant(tenant); err != nil {
		return toolsregistry.PluginChange{}, err
	}
	name, version, err := toolsregistry.ParseRef(ref)
	if err != nil {
		return toolsregistry.PluginChange{}, err
	}
	if db.isClosed() {
		return toolsregistry.PluginChange{}, errClosed
	}
	h := db.plugins()
	h.mu.Lock()
	defer h.mu.Unlock()
	d := toolsregistry.PluginDeletion{Tenant: tenant, Name: name}
	var rev uint64
	err = db.bolt.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(pluginsBucket)
		if b == nil || b.Bucket([]byte(tenant)) == nil {
			return vigil.Errorf(vigil.NotFound, "no plugin tool %s", ref)
		}
		tb := b.Bucket([]byte(tenant))
		var keys [][]byte
		c := tb.Cursor()
		prefix := []byte(name + "@")
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			v, err := strconv.Atoi(string(k[len(prefix):]))
			if err != nil {
				return fmt.Errorf("corrupt plugin key %q in tenant %s", k, tenant)
			}
			if version == 0 || v == version {
				keys = append(keys, slices.Clone(k))
				d.Versions = append(d.Versions, v)
			}
		}
		if len(keys) == 0 {
			return vigil.Errorf(vigil.NotFound, "no plugin tool %s", ref)
		}
		for _, k := range keys {
			if err := tb.Delete(k); err != nil {
				return err
			}
		}
		if k, _ := tb.Cursor().First(); k == nil {
			if err := b.DeleteBucket([]byte(tenant)); err != nil {
				return err
			}
		}
		rev, err = b.NextSequence()
		return err
	})
	if err != nil {
		return toolsregistry.PluginChange{}, wrap("delete plugin", ref, err)
	}
	slices.Sort(d.Versions)
	c := toolsregistry.PluginChange{Rev: rev, Deleted: &d}
	h.publish(c)
	return c, nil
}

// ListPlugins implements toolsregistry.PluginStore.
func (db *DB) ListPlugins(ctx context.Context) ([]toolsregistry.Plugin, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	var (
		out []toolsregistry.Plugin
		rev uint64
	)
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(pluginsBucket)
		if b == nil {
			return nil
		}
		rev = b.Sequence()
		return b.ForEachBucket(func(tenant []byte) error {
			return b.Bucket(tenant).ForEach(func(k, v []byte) error {
				var p toolsregistry.Plugin
				if err := json.Unmarshal(v, &p); err != nil {
					return fmt.Errorf("corrupt plugin %s in tenant %s: %w", k, tenant, err)
				}
				out = append(out, p)
				return nil
			})
		})
	})
	if err != nil {
		return nil, 0, wrap("list", "plugins", err)
	}
	slices.SortFunc(out, func(a, b toolsregistry.Plugin) int {
		return cmp.Or(cmp.Compare(a.Tool.Tenant, b.Tool.Tenant), cmp.Compare(a.Tool.Name, b.Tool.Name), cmp.Compare(a.Tool.Version, b.Tool.Version))
	})
	return out, rev, nil
}

// WatchPlugins implements toolsregistry.PluginStore. It reports the
// changes made through db, the only way into the file.
func (db *DB) WatchPlugins(ctx context.Context) (<-chan toolsregistry.PluginChange, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if db.isClosed() {
		return nil, errClosed
	}
	h := db.plugins()
	w := &pluginWatcher{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	h.watchers[w] = true
	h.mu.Unlock()
	out := make(chan toolsregistry.PluginChange, 16)
	go func() {
		defer close(out)
		defer func() {
			h.mu.Lock()
			delete(h.watchers, w)
			h.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-db.closed:
				return
			case <-w.wake:
			}
			for _, c := range w.take() {
				select {
				case out <- c:
				case <-ctx.Done():
					return
				case <-db.closed:
					return
				}
			}
		}
	}()
	return out, nil
}

package bolt

// This file implements memory.Store. Memory lives in its own top-level
// bucket, scoped by tenant like the event logs:
//
//	memory/
//	  <tenant>/
//	    profiles/        key: user id; value: the sealed profile, as given
//	    threads/
//	      <thread>/      one bucket per thread that has facts; its sequence
//	                     numbers the facts in the order they were added
//	        facts/       key: fact number (8 bytes); value: JSON of memory.Fact
//	        ids/         key: fact id; value: fact number
//	        terms/       key: term, 0x00, fact number; value: empty
//
// A term's facts are the contiguous key range that starts with the term and
// its 0x00 (terms hold no NUL byte, so no other term's keys share that
// prefix), in the order they were added. Profiles are only ever ciphertext:
// memory.Service seals them before they get here.
//
// Memory writes are rare next to event appends, so each is its own write
// transaction (one fsync) rather than a passenger of the append group
// commit; the bucket is created by the first write, so that files written
// before memory existed need no migration.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/memory"
	bbolt "go.etcd.io/bbolt"
)

var _ memory.Store = (*DB)(nil)

// Memory bucket names.
var (
	memBucket   = []byte("memory")
	memProfiles = []byte("profiles")
	memThreads  = []byte("threads")
	memFacts    = []byte("facts")
	memIDs      = []byte("ids")
	memTerms    = []byte("terms")
)

// memTenant returns tenant's memory bucket, nil if it has none.
func memTenant(tx *bbolt.Tx, tenant string) *bbolt.Bucket {
	b := tx.Bucket(memBucket)
	if b == nil {
		return nil
	}
	return b.Bucket([]byte(tenant))
}

// memCreateTenant returns tenant's memory bucket, creating it as needed.
func memCreateTenant(tx *bbolt.Tx, tenant string) (*bbolt.Bucket, error) {
	b, err := tx.CreateBucketIfNotExists(memBucket)
	if err != nil {
		return nil, err
	}
	return b.CreateBucketIfNotExists([]byte(tenant))
}

// GetProfile implements memory.Store.
func (db *DB) GetProfile(ctx context.Context, tenant, user string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := memory.CheckIDs(memory.UserIDNames, tenant, user); err != nil {
		return nil, err
	}
	var sealed []byte
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		if tb := memTenant(tx, tenant); tb != nil {
			if pb := tb.Bucket(memProfiles); pb != nil {
				if v := pb.Get([]byte(user)); v != nil {
					sealed = bytes.Clone(v)
					return nil
				}
			}
		}
		return vigil.Errorf(vigil.NotFound, "no profile for user %s", user)
	})
	if err != nil {
		return nil, wrap("get profile of", user, err)
	}
	return sealed, nil
}

// PutProfile implements memory.Store.
func (db *DB) PutProfile(ctx context.Context, tenant, user string, sealed []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := memory.CheckIDs(memory.UserIDNames, tenant, user); err != nil {
		return err
	}
	if db.isClosed() {
		return errClosed
	}
	v := bytes.Clone(sealed) // bbolt holds on to values until the commit
	if v == nil {
		v = []byte{}
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		tb, err := memCreateTenant(tx, tenant)
		if err != nil {
			return err
		}
		pb, err := tb.CreateBucketIfNotExists(memProfiles)
		if err != nil {
			return err
		}
		return pb.Put([]byte(user), v)
	})
	return wrap("put profile of", user, err)
}

// DeleteProfile implements memory.Store.
func (db *DB) DeleteProfile(ctx context.Context, tenant, user string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := memory.CheckIDs(memory.UserIDNames, tenant, user); err != nil {
		return err
	}
	if db.isClosed() {
		return errClosed
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		if tb := memTenant(tx, tenant); tb != nil {
			if pb := tb.Bucket(memProfiles); pb != nil {
				return pb.Delete([]byte(user))
			}
		}
		return nil
	})
	return wrap("delete profile of", user, err)
}

// memThread is a thread's fact buckets found in a transaction.
type memThread struct {
	bucket, facts, ids, terms *bbolt.Bucket
}

// memFindThread returns the fact buckets of tenant's thread, or nil if the
// thread has no facts.
func memFindThread(tx *bbolt.Tx, tenant, thread string) (*memThread, error) {
	tb := memTenant(tx, tenant)
	if tb == nil {
		return nil, nil
	}
	ths := tb.Bucket(memThreads)
	if ths == nil {
		return nil, nil
	}
	b := ths.Bucket([]byte(thread))
	if b == nil {
		return nil, nil
	}
	th := &memThread{bucket: b, facts: b.Bucket(memFacts), ids: b.Bucket(memIDs), terms: b.Bucket(memTerms)}
	if th.facts == nil || th.ids == nil || th.terms == nil {
		return nil, fmt.Errorf("corrupt memory of thread %s: missing buckets", thread)
	}
	return th, nil
}

// memTermKey returns the terms-bucket key of term for fact number num.
func memTermKey(term string, num []byte) []byte {
	k := make([]byte, 0, len(term)+1+numLen)
	k = append(k, term...)
	k = append(k, 0)
	return append(k, num...)
}

// AddFact implements memory.Store.
func (db *DB) AddFact(ctx context.Context, f memory.Fact, terms []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := memory.CheckIDs(memory.FactIDNames, f.Tenant, f.Thread, f.ID); err != nil {
		return err
	}
	if err := memory.CheckTerms(terms); err != nil {
		return err
	}
	if db.isClosed() {
		return errClosed
	}
	rec, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("store/bolt: add fact to %s: %w", f.Thread, err)
	}
	err = db.bolt.Update(func(tx *bbolt.Tx) error {
		tb, err := memCreateTenant(tx, f.Tenant)
		if err != nil {
			return err
		}
		ths, err := tb.CreateBucketIfNotExists(memThreads)
		if err != nil {
			return err
		}
		b, err := ths.CreateBucketIfNotExists([]byte(f.Thread))
		if err != nil {
			return err
		}
		th := &memThread{bucket: b}
		for _, sub := range []struct {
			name []byte
			b    **bbolt.Bucket
		}{{memFacts, &th.facts}, {memIDs, &th.ids}, {memTerms, &th.terms}} {
			if *sub.b, err = b.CreateBucketIfNotExists(sub.name); err != nil {
				return err
			}
		}
		if th.ids.Get([]byte(f.ID)) != nil {
			return vigil.Errorf(vigil.Conflict, "fact %s already exists in thread %s", f.ID, f.Thread)
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		num := binary.BigEndian.AppendUint64(nil, seq)
		// Facts and their terms go in at the end of their ranges.
		th.facts.FillPercent = 1
		if err := th.facts.Put(num, rec); err != nil {
			return err
		}
		if err := th.ids.Put([]byte(f.ID), num); err != nil {
			return err
		}
		for _, t := range terms {
			if err := th.terms.Put(memTermKey(t, num), []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("add fact to", f.Thread, err)
}

// ListFacts implements memory.Store.
func (db *DB) ListFacts(ctx context.Context, tenant, thread string, limit int) ([]memory.Fact, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := memory.CheckIDs(memory.ThreadIDNames, tenant, thread); err != nil {
		return nil, err
	}
	if err := memory.CheckLimit(limit); err != nil {
		return nil, err
	}
	var out []memory.Fact
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		th, err := memFindThread(tx, tenant, thread)
		if th == nil || err != nil {
			return err
		}
		c := th.facts.Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			f, err := memDecodeFact(k, v)
			if err != nil {
				return err
			}
			out = append(out, f)
		}
		return nil
	})
	if err != nil {
		return nil, wrap("list facts of", thread, err)
	}
	return out, nil
}

// FactCandidates implements memory.Store. It reads every fact number
// indexed under the terms, then the newest limit facts among them.
func (db *DB) FactCandidates(ctx context.Context, tenant, thread string, terms []string, limit int) ([]memory.Fact, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := memory.CheckIDs(memory.ThreadIDNames, tenant, thread); err != nil {
		return nil, err
	}
	if err := memory.CheckTerms(terms); err != nil {
		return nil, err
	}
	if err := memory.CheckLimit(limit); err != nil {
		return nil, err
	}
	var out []memory.Fact
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		th, err := memFindThread(tx, tenant, thread)
		if th == nil || err != nil {
			return err
		}
		seen := make(map[uint64]bool)
		var nums []uint64
		c := th.terms.Cursor()
		for _, t := range terms {
			prefix := append([]byte(t), 0)
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				if len(k) != len(prefix)+numLen {
					return fmt.Errorf("corrupt term key %q", k)
				}
				n := binary.BigEndian.Uint64(k[len(prefix):])
				if !seen[n] {
					seen[n] = true
					nums = append(nums, n)
				}
			}
		}
		slices.Sort(nums)
		slices.Reverse(nums)
		for _, n := range nums[:min(limit, len(nums))] {
			k := binary.BigEndian.AppendUint64(nil, n)
			v := th.facts.Get(k)
			if v == nil {
				return fmt.Errorf("corrupt memory: term of missing fact %d", n)
			}
			f, err := memDecodeFact(k, v)
			if err != nil {
				return err
			}
			out = append(out, f)
		}
		return nil
	})
	if err != nil {
		return nil, wrap("search facts of", thread, err)
	}
	return out, nil
}

// memDecodeFact decodes a stored fact; json.Unmarshal copies out of v.
func memDecodeFact(k, v []byte) (memory.Fact, error) {
	var f memory.Fact
	if err := json.Unmarshal(v, &f); err != nil {
		return memory.Fact{}, fmt.Errorf("corrupt fact %x: %w", k, err)
	}
	return f, nil
}

package memory_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/store/storetest"
)

// mapStore is a memory.Store in a map, for the Service's tests. Running the
// conformance suite over it checks both the fake and the suite.
type mapStore struct {
	mu       sync.Mutex
	profiles map[string][]byte
	facts    map[string][]storedFact // by tenant/thread, oldest first
}

type storedFact struct {
	f     memory.Fact
	terms map[string]bool
}

func newMapStore() *mapStore {
	return &mapStore{profiles: map[string][]byte{}, facts: map[string][]storedFact{}}
}

func checkIDs(ids ...string) error {
	for _, id := range ids {
		if !vigil.ValidID(id) {
			return vigil.Errorf(vigil.Invalid, "invalid id %q", id)
		}
	}
	return nil
}

func checkTerms(terms []string) error {
	for _, t := range terms {
		if t == "" || len(t) > memory.MaxTermBytes || bytes.IndexByte([]byte(t), 0) >= 0 {
			return vigil.Errorf(vigil.Invalid, "invalid term %q", t)
		}
	}
	return nil
}

func (s *mapStore) GetProfile(ctx context.Context, tenant, user string) ([]byte, error) {
	if err := checkIDs(tenant, user); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.profiles[tenant+"/"+user]
	if !ok {
		return nil, vigil.Errorf(vigil.NotFound, "no profile")
	}
	return bytes.Clone(b), nil
}

func (s *mapStore) PutProfile(ctx context.Context, tenant, user string, sealed []byte) error {
	if err := checkIDs(tenant, user); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.profiles[tenant+"/"+user] = bytes.Clone(sealed)
	return nil
}

func (s *mapStore) DeleteProfile(ctx context.Context, tenant, user string) error {
	if err := checkIDs(tenant, user); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.profiles, tenant+"/"+user)
	return nil
}

func (s *mapStore) AddFact(ctx context.Context, f memory.Fact, terms []string) error {
	if err := checkIDs(f.Tenant, f.Thread, f.ID); err != nil {
		return err
	}
	if err := checkTerms(terms); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := f.Tenant + "/" + f.Thread
	for _, sf := range s.facts[k] {
		if sf.f.ID == f.ID {
			return vigil.Errorf(vigil.Conflict, "fact exists")
		}
	}
	sf := storedFact{f: f, terms: map[string]bool{}}
	sf.f.Tags, sf.f.Vector = slices.Clone(f.Tags), slices.Clone(f.Vector)
	for _, t := range terms {
		sf.terms[t] = true
	}
	s.facts[k] = append(s.facts[k], sf)
	return nil
}

func (s *mapStore) ListFacts(ctx context.Context, tenant, thread string, limit int) ([]memory.Fact, error) {
	return s.find(tenant, thread, nil, true, limit)
}

func (s *mapStore) FactCandidates(ctx context.Context, tenant, thread string, terms []string, limit int) ([]memory.Fact, error) {
	return s.find(tenant, thread, terms, false, limit)
}

// find returns the newest facts that hold one of terms, or every fact.
func (s *mapStore) find(tenant, thread string, terms []string, every bool, limit int) ([]memory.Fact, error) {
	if err := checkIDs(tenant, thread); err != nil {
		return nil, err
	}
	if err := checkTerms(terms); err != nil {
		return nil, err
	}
	if limit < 1 {
		return nil, vigil.Errorf(vigil.Invalid, "limit %d", limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	all := s.facts[tenant+"/"+thread]
	var out []memory.Fact
	for i := len(all) - 1; i >= 0 && len(out) < limit; i-- {
		match := every
		for _, t := range terms {
			match = match || all[i].terms[t]
		}
		if match {
			f := all[i].f
			f.Tags, f.Vector = slices.Clone(f.Tags), slices.Clone(f.Vector)
			out = append(out, f)
		}
	}
	return out, nil
}

func TestMapStoreConformance(t *testing.T) {
	storetest.Memory(t, func(t *testing.T) memory.Store { return newMapStore() })
}

package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/memory"
)

// Memory runs the conformance suite of memory.Store. newStore is called once
// per subtest and must return a store that shares nothing with the stores
// of other subtests (own file or own key prefix).
//
// Beyond the clauses of the memory.Store contract, the suite pins down what
// it leaves open, so that both backends behave alike:
//
//   - Errors are compared by vigil.ErrorCode, so backends may wrap them.
//   - Sealed profiles read back byte for byte, whatever the bytes (NUL,
//     0xff, invalid UTF-8), and a store keeps its own copy of them.
//   - ListFacts and FactCandidates order facts by when they were added, not
//     by CreatedAt: the suite adds facts whose CreatedAt runs backwards.
//   - Terms are matched exactly: "bei" finds nothing indexed as "beijing",
//     and "北" nothing indexed only as "北京".
func Memory(t *testing.T, newStore func(t *testing.T) memory.Store) {
	t.Run("Profile", func(t *testing.T) {
		t.Run("RoundTripBytes", func(t *testing.T) { testProfileRoundTrip(t, newStore) })
		t.Run("MissingIsNotFound", func(t *testing.T) { testProfileMissing(t, newStore) })
		t.Run("PutReplaces", func(t *testing.T) { testProfileReplace(t, newStore) })
		t.Run("Delete", func(t *testing.T) { testProfileDelete(t, newStore) })
		t.Run("PerUserAndTenant", func(t *testing.T) { testProfileScope(t, newStore) })
		t.Run("InvalidIDsRejected", func(t *testing.T) { testProfileInvalidIDs(t, newStore) })
		t.Run("ConcurrentPutsLeaveOne", func(t *testing.T) { testProfileConcurrent(t, newStore) })
	})
	t.Run("Facts", func(t *testing.T) {
		t.Run("RoundTrip", func(t *testing.T) { testFactRoundTrip(t, newStore) })
		t.Run("NewestFirstAndLimit", func(t *testing.T) { testFactOrder(t, newStore) })
		t.Run("MissingThreadIsEmpty", func(t *testing.T) { testFactMissingThread(t, newStore) })
		t.Run("DuplicateIsConflict", func(t *testing.T) { testFactDuplicate(t, newStore) })
		t.Run("PerThreadAndTenant", func(t *testing.T) { testFactScope(t, newStore) })
		t.Run("InvalidRejected", func(t *testing.T) { testFactInvalid(t, newStore) })
	})
	t.Run("Candidates", func(t *testing.T) {
		t.Run("AnyTermOnceNewestFirst", func(t *testing.T) { testCandidatesUnion(t, newStore) })
		t.Run("ExactTermsOnly", func(t *testing.T) { testCandidatesExact(t, newStore) })
		t.Run("Limit", func(t *testing.T) { testCandidatesLimit(t, newStore) })
		t.Run("PerThreadAndTenant", func(t *testing.T) { testCandidatesScope(t, newStore) })
		t.Run("InvalidRejected", func(t *testing.T) { testCandidatesInvalid(t, newStore) })
	})
	t.Run("Concurrency", func(t *testing.T) {
		t.Run("AddFacts", func(t *testing.T) { testFactsConcurrent(t, newStore) })
	})
}

type newMemoryFunc = func(t *testing.T) memory.Store

// --- profiles ---

// allByteValues is a sealed profile with every byte value in it.
func allByteValues() []byte {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func mustPutProfile(t *testing.T, s memory.Store, tenant, user string, sealed []byte) {
	t.Helper()
	if err := s.PutProfile(t.Context(), tenant, user, sealed); err != nil {
		t.Fatalf("PutProfile(%s/%s): %v", tenant, user, err)
	}
}

func wantProfile(t *testing.T, s memory.Store, tenant, user string, want []byte) {
	t.Helper()
	got, err := s.GetProfile(t.Context(), tenant, user)
	if err != nil {
		t.Fatalf("GetProfile(%s/%s): %v", tenant, user, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("GetProfile(%s/%s) = %d bytes %.32x…, want %d bytes %.32x…", tenant, user, len(got), got, len(want), want)
	}
}

func testProfileRoundTrip(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	sealed := allByteValues()
	mustPutProfile(t, s, "acme", "alice", sealed)
	// The store keeps its own copy: changing the caller's slice, or the one
	// it returned, changes nothing stored.
	sealed[0] = 0xee
	wantProfile(t, s, "acme", "alice", allByteValues())
	got, _ := s.GetProfile(t.Context(), "acme", "alice")
	got[1] = 0xee
	wantProfile(t, s, "acme", "alice", allByteValues())
}

func testProfileMissing(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	mustPutProfile(t, s, "acme", "alice", []byte("x"))
	for _, tu := range [][2]string{{"acme", "bob"}, {"globex", "alice"}} {
		_, err := s.GetProfile(t.Context(), tu[0], tu[1])
		wantCode(t, err, vigil.NotFound, "GetProfile("+tu[0]+"/"+tu[1]+")")
	}
}

func testProfileReplace(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	mustPutProfile(t, s, "acme", "alice", []byte("first, and longer than the second"))
	mustPutProfile(t, s, "acme", "alice", []byte("second"))
	wantProfile(t, s, "acme", "alice", []byte("second"))
}

func testProfileDelete(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	ctx := t.Context()
	mustPutProfile(t, s, "acme", "alice", []byte("a"))
	mustPutProfile(t, s, "acme", "bob", []byte("b"))
	if err := s.DeleteProfile(ctx, "acme", "alice"); err != nil {
		t.Fatalf("DeleteProfile: %v", err)
	}
	_, err := s.GetProfile(ctx, "acme", "alice")
	wantCode(t, err, vigil.NotFound, "GetProfile after DeleteProfile")
	wantProfile(t, s, "acme", "bob", []byte("b"))
	for _, tu := range [][2]string{{"acme", "alice"}, {"acme", "carol"}, {"nobody", "alice"}} {
		if err := s.DeleteProfile(ctx, tu[0], tu[1]); err != nil {
			t.Errorf("DeleteProfile(%s/%s) of a missing profile: %v, want nil", tu[0], tu[1], err)
		}
	}
	mustPutProfile(t, s, "acme", "alice", []byte("again"))
	wantProfile(t, s, "acme", "alice", []byte("again"))
}

func testProfileScope(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	// Ids chosen so that naive key joins ("acme"+"_x" vs "acme_"+"x") would
	// collide.
	cases := [][3]string{
		{"acme", "alice", "1"}, {"acme", "bob", "2"}, {"globex", "alice", "3"},
		{"acme_x", "y", "4"}, {"acme", "x_y", "5"}, {"acme.x", "y", "6"}, {"acme", "x.y", "7"},
	}
	for _, c := range cases {
		mustPutProfile(t, s, c[0], c[1], []byte(c[2]))
	}
	for _, c := range cases {
		wantProfile(t, s, c[0], c[1], []byte(c[2]))
	}
}

func testProfileInvalidIDs(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	ctx := t.Context()
	for _, tu := range [][2]string{{"", "alice"}, {"acme", ""}, {"ac:me", "alice"}, {"acme", "a/b"}, {"acme", "{x}"}, {"acme", strings.Repeat("u", 129)}} {
		name := fmt.Sprintf("(%q, %q)", tu[0], tu[1])
		wantCode(t, s.PutProfile(ctx, tu[0], tu[1], []byte("x")), vigil.Invalid, "PutProfile"+name)
		_, err := s.GetProfile(ctx, tu[0], tu[1])
		wantCode(t, err, vigil.Invalid, "GetProfile"+name)
		wantCode(t, s.DeleteProfile(ctx, tu[0], tu[1]), vigil.Invalid, "DeleteProfile"+name)
	}
}

func testProfileConcurrent(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if err := s.PutProfile(t.Context(), "acme", "alice", []byte(fmt.Sprintf("value %02d", i))); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent PutProfile: %v", err)
	}
	got, err := s.GetProfile(t.Context(), "acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	var i int
	if _, err := fmt.Sscanf(string(got), "value %d", &i); err != nil || i < 0 || i >= n || len(got) != len("value 00") {
		t.Fatalf("after concurrent puts the profile is %q, want one of the values written", got)
	}
}

// --- facts ---

var factBase = time.Date(2026, 11, 22, 8, 0, 0, 123456789, time.FixedZone("UTC+8", 8*3600))

// memFact returns a fact of tenant's thread numbered n, with a CreatedAt that
// runs backwards in n, so that order by addition and order by time differ.
func memFact(tenant, thread string, n int) memory.Fact {
	return memory.Fact{
		ID:        fmt.Sprintf("fct_%03d", n),
		Tenant:    tenant,
		User:      "alice",
		Thread:    thread,
		Text:      fmt.Sprintf("fact %d", n),
		CreatedAt: factBase.Add(-time.Duration(n) * time.Minute),
	}
}

func mustAddFact(t *testing.T, s memory.Store, f memory.Fact, terms ...string) {
	t.Helper()
	if err := s.AddFact(t.Context(), f, terms); err != nil {
		t.Fatalf("AddFact(%s/%s/%s): %v", f.Tenant, f.Thread, f.ID, err)
	}
}

func factIDs(fs []memory.Fact) []string {
	ids := make([]string, len(fs))
	for i, f := range fs {
		ids[i] = f.ID
	}
	return ids
}

func wantFactIDs(t *testing.T, what string, fs []memory.Fact, err error, want ...string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got := factIDs(fs); !slices.Equal(got, want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

func checkFact(t *testing.T, got, want memory.Fact) {
	t.Helper()
	if got.ID != want.ID || got.Tenant != want.Tenant || got.User != want.User || got.Thread != want.Thread ||
		got.Text != want.Text || got.Source != want.Source || !got.CreatedAt.Equal(want.CreatedAt) ||
		!slices.Equal(got.Tags, want.Tags) && len(got.Tags)+len(want.Tags) > 0 ||
		!slices.Equal(got.Vector, want.Vector) && len(got.Vector)+len(want.Vector) > 0 {
		t.Fatalf("fact read back as\n\t%+v\nwant\n\t%+v", got, want)
	}
}

func testFactRoundTrip(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	want := memory.Fact{
		ID:        "fct_1",
		Tenant:    "acme",
		User:      "alice",
		Thread:    "th_1",
		Text:      "住在北京 <b>&</b> \"quoted\"\nsecond line \u2028 \x00 nul",
		Tags:      []string{"city", "家乡"},
		Source:    "run:run_42",
		CreatedAt: factBase,
		Vector:    []float32{0.25, -1, 3.5e-8, 0},
	}
	mustAddFact(t, s, want, "北京", "city")
	fs, err := s.ListFacts(t.Context(), "acme", "th_1", 10)
	wantFactIDs(t, "ListFacts", fs, err, "fct_1")
	checkFact(t, fs[0], want)
	fs, err = s.FactCandidates(t.Context(), "acme", "th_1", []string{"北京"}, 10)
	wantFactIDs(t, "FactCandidates", fs, err, "fct_1")
	checkFact(t, fs[0], want)

	bare := memory.Fact{ID: "fct_2", Tenant: "acme", Thread: "th_1", Text: "x"}
	mustAddFact(t, s, bare)
	fs, err = s.ListFacts(t.Context(), "acme", "th_1", 1)
	wantFactIDs(t, "ListFacts", fs, err, "fct_2")
	checkFact(t, fs[0], bare)
	if !fs[0].CreatedAt.IsZero() {
		t.Errorf("zero CreatedAt read back as %v", fs[0].CreatedAt)
	}
}

func testFactOrder(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	for n := 1; n <= 5; n++ {
		mustAddFact(t, s, memFact("acme", "th_1", n))
	}
	fs, err := s.ListFacts(t.Context(), "acme", "th_1", 3)
	wantFactIDs(t, "ListFacts(limit 3)", fs, err, "fct_005", "fct_004", "fct_003")
	fs, err = s.ListFacts(t.Context(), "acme", "th_1", 100)
	wantFactIDs(t, "ListFacts(limit 100)", fs, err, "fct_005", "fct_004", "fct_003", "fct_002", "fct_001")
}

func testFactMissingThread(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	mustAddFact(t, s, memFact("acme", "th_1", 1), "x")
	for _, tt := range [][2]string{{"acme", "th_2"}, {"nobody", "th_1"}} {
		fs, err := s.ListFacts(t.Context(), tt[0], tt[1], 10)
		wantFactIDs(t, "ListFacts("+tt[0]+"/"+tt[1]+")", fs, err)
		fs, err = s.FactCandidates(t.Context(), tt[0], tt[1], []string{"x"}, 10)
		wantFactIDs(t, "FactCandidates("+tt[0]+"/"+tt[1]+")", fs, err)
	}
}

func testFactDuplicate(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	first := memFact("acme", "th_1", 1)
	mustAddFact(t, s, first, "one")
	dup := first
	dup.Text = "a second fact with the same id"
	wantCode(t, s.AddFact(t.Context(), dup, []string{"two"}), vigil.Conflict, "AddFact of an existing id")

	fs, err := s.ListFacts(t.Context(), "acme", "th_1", 10)
	wantFactIDs(t, "ListFacts after a conflict", fs, err, "fct_001")
	checkFact(t, fs[0], first)
	fs, err = s.FactCandidates(t.Context(), "acme", "th_1", []string{"two"}, 10)
	wantFactIDs(t, "FactCandidates for the refused fact's term", fs, err)

	// The same id in another thread or tenant is another fact.
	mustAddFact(t, s, memFact("acme", "th_2", 1))
	mustAddFact(t, s, memFact("globex", "th_1", 1))
}

func testFactScope(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	mustAddFact(t, s, memFact("acme", "th_1", 1), "x")
	mustAddFact(t, s, memFact("acme", "th_2", 2), "x")
	mustAddFact(t, s, memFact("globex", "th_1", 3), "x")
	mustAddFact(t, s, memFact("acme_th", "1", 4), "x")
	mustAddFact(t, s, memFact("acme", "th_1.x", 5), "x")
	for _, c := range []struct{ tenant, thread, want string }{
		{"acme", "th_1", "fct_001"}, {"acme", "th_2", "fct_002"}, {"globex", "th_1", "fct_003"},
		{"acme_th", "1", "fct_004"}, {"acme", "th_1.x", "fct_005"},
	} {
		fs, err := s.ListFacts(t.Context(), c.tenant, c.thread, 10)
		wantFactIDs(t, "ListFacts("+c.tenant+"/"+c.thread+")", fs, err, c.want)
		if fs[0].Tenant != c.tenant || fs[0].Thread != c.thread {
			t.Errorf("ListFacts(%s/%s) returned a fact of %s/%s", c.tenant, c.thread, fs[0].Tenant, fs[0].Thread)
		}
	}
}

func testFactInvalid(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	ctx := t.Context()
	good := memFact("acme", "th_1", 1)
	bad := map[string]memory.Fact{}
	for name, mut := range map[string]func(*memory.Fact){
		"no tenant":   func(f *memory.Fact) { f.Tenant = "" },
		"bad tenant":  func(f *memory.Fact) { f.Tenant = "a:b" },
		"no thread":   func(f *memory.Fact) { f.Thread = "" },
		"bad thread":  func(f *memory.Fact) { f.Thread = "th/1" },
		"no id":       func(f *memory.Fact) { f.ID = "" },
		"bad id":      func(f *memory.Fact) { f.ID = "fct 1" },
		"braced id":   func(f *memory.Fact) { f.ID = "{x}" },
		"long thread": func(f *memory.Fact) { f.Thread = strings.Repeat("t", 129) },
	} {
		f := good
		mut(&f)
		bad[name] = f
	}
	for name, f := range bad {
		wantCode(t, s.AddFact(ctx, f, []string{"x"}), vigil.Invalid, "AddFact with "+name)
	}
	for name, terms := range map[string][]string{
		"an empty term":    {"x", ""},
		"a NUL in a term":  {"a\x00b"},
		"a too long term":  {strings.Repeat("长", memory.MaxTermBytes/3+1)},
		"a too long ASCII": {strings.Repeat("a", memory.MaxTermBytes+1)},
	} {
		wantCode(t, s.AddFact(ctx, good, terms), vigil.Invalid, "AddFact with "+name)
	}
	// A term of exactly MaxTermBytes is fine.
	mustAddFact(t, s, good, strings.Repeat("a", memory.MaxTermBytes))
	fs, err := s.ListFacts(ctx, "acme", "th_1", 10)
	wantFactIDs(t, "ListFacts after refused facts", fs, err, "fct_001")

	for _, limit := range []int{0, -1} {
		_, err := s.ListFacts(ctx, "acme", "th_1", limit)
		wantCode(t, err, vigil.Invalid, fmt.Sprintf("ListFacts(limit %d)", limit))
	}
	_, err = s.ListFacts(ctx, "acme", "th/1", 10)
	wantCode(t, err, vigil.Invalid, "ListFacts of an invalid thread id")
	_, err = s.ListFacts(ctx, "", "th_1", 10)
	wantCode(t, err, vigil.Invalid, "ListFacts without a tenant")
}

// --- candidates ---

func testCandidatesUnion(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	mustAddFact(t, s, memFact("acme", "th_1", 1), "weather", "beijing")
	mustAddFact(t, s, memFact("acme", "th_1", 2), "stock")
	mustAddFact(t, s, memFact("acme", "th_1", 3), "beijing", "北京", "北京", "京")
	mustAddFact(t, s, memFact("acme", "th_1", 4), "weather")
	mustAddFact(t, s, memFact("acme", "th_1", 5))

	fs, err := s.FactCandidates(t.Context(), "acme", "th_1", []string{"weather", "北京", "beijing", "weather", "nothing"}, 10)
	wantFactIDs(t, "FactCandidates(weather, 北京, beijing)", fs, err, "fct_004", "fct_003", "fct_001")
	fs, err = s.FactCandidates(t.Context(), "acme", "th_1", []string{"京"}, 10)
	wantFactIDs(t, "FactCandidates(京)", fs, err, "fct_003")
	fs, err = s.FactCandidates(t.Context(), "acme", "th_1", []string{"nothing"}, 10)
	wantFactIDs(t, "FactCandidates(nothing)", fs, err)
	fs, err = s.FactCandidates(t.Context(), "acme", "th_1", nil, 10)
	wantFactIDs(t, "FactCandidates(no terms)", fs, err)
}

func testCandidatesExact(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	mustAddFact(t, s, memFact("acme", "th_1", 1), "beijing", "北京", "b")
	for _, term := range []string{"bei", "beijing2", "Beijing", "北", "北京市", "eijing"} {
		fs, err := s.FactCandidates(t.Context(), "acme", "th_1", []string{term}, 10)
		wantFactIDs(t, "FactCandidates("+term+")", fs, err)
	}
	fs, err := s.FactCandidates(t.Context(), "acme", "th_1", []string{"b"}, 10)
	wantFactIDs(t, "FactCandidates(b)", fs, err, "fct_001")
}

func testCandidatesLimit(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	for n := 1; n <= 6; n++ {
		mustAddFact(t, s, memFact("acme", "th_1", n), "x", fmt.Sprint("n", n))
	}
	fs, err := s.FactCandidates(t.Context(), "acme", "th_1", []string{"n1", "x"}, 2)
	wantFactIDs(t, "FactCandidates(limit 2)", fs, err, "fct_006", "fct_005")
	fs, err = s.FactCandidates(t.Context(), "acme", "th_1", []string{"n2", "n5", "n1"}, 100)
	wantFactIDs(t, "FactCandidates(n2, n5, n1)", fs, err, "fct_005", "fct_002", "fct_001")
}

func testCandidatesScope(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	mustAddFact(t, s, memFact("acme", "th_1", 1), "x")
	mustAddFact(t, s, memFact("acme", "th_2", 2), "x")
	mustAddFact(t, s, memFact("globex", "th_1", 3), "x")
	fs, err := s.FactCandidates(t.Context(), "acme", "th_1", []string{"x"}, 10)
	wantFactIDs(t, "FactCandidates(acme/th_1)", fs, err, "fct_001")
	fs, err = s.FactCandidates(t.Context(), "globex", "th_1", []string{"x"}, 10)
	wantFactIDs(t, "FactCandidates(globex/th_1)", fs, err, "fct_003")
}

func testCandidatesInvalid(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	ctx := t.Context()
	mustAddFact(t, s, memFact("acme", "th_1", 1), "x")
	for _, limit := range []int{0, -1} {
		_, err := s.FactCandidates(ctx, "acme", "th_1", []string{"x"}, limit)
		wantCode(t, err, vigil.Invalid, fmt.Sprintf("FactCandidates(limit %d)", limit))
	}
	for _, term := range []string{"", "a\x00b", strings.Repeat("a", memory.MaxTermBytes+1)} {
		_, err := s.FactCandidates(ctx, "acme", "th_1", []string{"x", term}, 10)
		wantCode(t, err, vigil.Invalid, fmt.Sprintf("FactCandidates(term %.10q)", term))
	}
	_, err := s.FactCandidates(ctx, "acme", "th:1", []string{"x"}, 10)
	wantCode(t, err, vigil.Invalid, "FactCandidates of an invalid thread id")
}

// --- concurrency ---

func testFactsConcurrent(t *testing.T, newStore newMemoryFunc) {
	s := newStore(t)
	const writers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				n := w*each + i
				f := memFact("acme", "th_1", n)
				if err := s.AddFact(t.Context(), f, []string{"all", fmt.Sprint("w", w)}); err != nil {
					errs <- err
				}
			}
		})
	}
	// A writer that races to add the same id everywhere: exactly one wins.
	var wins atomic.Int32
	for range 4 {
		wg.Go(func() {
			err := s.AddFact(t.Context(), memFact("acme", "th_1", 999), []string{"dup"})
			switch vigil.ErrorCode(err) {
			case "":
				wins.Add(1)
			case vigil.Conflict:
			default:
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent AddFact: %v", err)
	}
	if n := wins.Load(); n != 1 {
		t.Errorf("%d of 4 concurrent AddFact calls of one id succeeded, want 1", n)
	}

	all, err := s.ListFacts(t.Context(), "acme", "th_1", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != writers*each+1 {
		t.Fatalf("ListFacts: %d facts, want %d", len(all), writers*each+1)
	}
	seen := make(map[string]bool)
	for _, f := range all {
		if seen[f.ID] {
			t.Fatalf("ListFacts: %s twice", f.ID)
		}
		seen[f.ID] = true
	}
	cands, err := s.FactCandidates(t.Context(), "acme", "th_1", []string{"all"}, 1000)
	if err != nil || len(cands) != writers*each {
		t.Fatalf("FactCandidates(all): %d facts, %v; want %d", len(cands), err, writers*each)
	}
	// Candidates come in the same order as the list.
	var listed []string
	for _, f := range all {
		if f.ID != "fct_999" {
			listed = append(listed, f.ID)
		}
	}
	if got := factIDs(cands); !slices.Equal(got, listed) {
		t.Errorf("FactCandidates order differs from ListFacts order")
	}
	// Each writer's facts are in the order that writer added them.
	for w := range writers {
		fs, err := s.FactCandidates(t.Context(), "acme", "th_1", []string{fmt.Sprint("w", w)}, 1000)
		want := make([]string, 0, each)
		for i := each - 1; i >= 0; i-- {
			want = append(want, fmt.Sprintf("fct_%03d", w*each+i))
		}
		wantFactIDs(t, fmt.Sprintf("FactCandidates(w%d)", w), fs, err, want...)
	}
}

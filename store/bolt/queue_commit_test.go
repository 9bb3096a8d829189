package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
	bbolt "go.etcd.io/bbolt"
)

// These tests hold a group commit open so that many Claims queue behind
// it and go into the next commit together, which the public API cannot
// arrange; hence they are in package bolt.

// holdCommit starts a write that leads a group commit and blocks inside
// its transaction until the returned release is called.
func holdCommit(t *testing.T, db *DB) (release func()) {
	t.Helper()
	started, unblock, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- db.write(t.Context(), "", func(*bbolt.Tx, uint64, *error) error {
			close(started)
			<-unblock
			return nil
		})
	}()
	<-started
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(unblock)
			if err := <-done; err != nil {
				t.Errorf("held write: %v", err)
			}
		})
	}
	t.Cleanup(release) // if the test fails before it releases
	return release
}

// waitQueued waits until n writes wait for the next group commit.
func waitQueued(t *testing.T, db *DB, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		db.mu.Lock()
		got := len(db.queue)
		db.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued for the next commit; want %d", got, n)
		}
	}
}

// lastTx returns the id of the last committed write transaction.
func lastTx(t *testing.T, db *DB) int {
	t.Helper()
	var id int
	if err := db.bolt.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// claimAll runs claimers concurrent Claims, the i-th for 1 + i%3 items,
// once they all wait behind a held commit (with extra other writes, also
// started by queueExtra), and returns every claim they got.
func claimAll(t *testing.T, db *DB, q *Queue, claimers, extra int, queueExtra func()) []tasks.Claim {
	t.Helper()
	release := holdCommit(t, db)
	var (
		mu     sync.Mutex
		claims []tasks.Claim
		wg     sync.WaitGroup
	)
	for i := range claimers {
		wg.Go(func() {
			cs, err := q.Claim(t.Context(), fmt.Sprintf("w%d", i), 1+i%3, time.Minute, 0)
			if err != nil {
				t.Errorf("Claim: %v", err)
			}
			mu.Lock()
			claims = append(claims, cs...)
			mu.Unlock()
		})
	}
	if queueExtra != nil {
		queueExtra()
	}
	waitQueued(t, db, claimers+extra)
	release()
	wg.Wait()
	return claims
}

func enqueueRuns(t *testing.T, q *Queue, n int) {
	t.Helper()
	for i := range n {
		it := tasks.QueueItem{Tenant: fmt.Sprintf("t%d", i%4), RunID: fmt.Sprintf("run_%03d", i), Priority: tasks.Priorities[i%3]}
		if err := q.Enqueue(t.Context(), it, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// checkOnce checks that claims hold each of the items run_000 to
// run_<items-1> once, each with its own token.
func checkOnce(t *testing.T, claims []tasks.Claim, items int) {
	t.Helper()
	runs, tokens := map[string]int{}, map[string]bool{}
	for _, c := range claims {
		runs[c.RunID]++
		tokens[c.Token] = true
	}
	for i := range items {
		if id := fmt.Sprintf("run_%03d", i); runs[id] != 1 {
			t.Errorf("%s claimed %d times; want once", id, runs[id])
		}
	}
	if len(claims) != items || len(tokens) != items {
		t.Errorf("%d claims with %d tokens; want %d of each", len(claims), len(tokens), items)
	}
}

// TestQueueClaimsShareCommit checks that Claims that arrive during a
// commit share the next transaction, and that sharing it they still take
// each item once: 32 claimers ask for 63 items, 50 are ready. The claims
// then survive a reopen, and the acked ones stay acked.
func TestQueueClaimsShareCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // the last one opened
	q := NewQueue(db, QueueOptions{})
	const items = 50
	enqueueRuns(t, q, items)

	before := lastTx(t, db)
	claims := claimAll(t, db, q, 32, 0, nil)
	if n := lastTx(t, db) - before; n != 2 {
		t.Errorf("the held commit and 32 claims took %d transactions; want 2", n)
	}
	checkOnce(t, claims, items)

	acked := claims[:items/2]
	for _, c := range acked {
		if err := q.Ack(t.Context(), c); err != nil {
			t.Fatalf("Ack %s: %v", c.RunID, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	q = NewQueue(db, QueueOptions{})
	st, err := q.Stats(t.Context())
	if err != nil || st.Leased != items-len(acked) || st.Delayed != 0 {
		t.Errorf("stats after reopen: %+v, %v; want %d leased, nothing else", st, err, items-len(acked))
	}
	for _, c := range acked {
		if err := q.Ack(t.Context(), c); vigil.ErrorCode(err) != vigil.Conflict {
			t.Errorf("Ack %s again after reopen: %v; want a conflict", c.RunID, err)
		}
	}
	for _, c := range claims[items/2:] {
		if _, err := q.Extend(t.Context(), c, time.Minute); err != nil {
			t.Errorf("the lease of %s did not survive the reopen: Extend: %v", c.RunID, err)
		}
	}
}

// TestQueueClaimsInFailedCommit checks that Claims sharing a transaction
// that another write fails are each retried alone, and take each item
// once: none is lost with the failed transaction, none taken twice.
func TestQueueClaimsInFailedCommit(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "vigil.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q := NewQueue(db, QueueOptions{})
	const items = 50
	enqueueRuns(t, q, items)

	boom := errors.New("boom")
	failed := make(chan error, 1)
	claims := claimAll(t, db, q, 32, 1, func() {
		go func() {
			failed <- db.write(t.Context(), "", func(*bbolt.Tx, uint64, *error) error { return boom })
		}()
	})
	if err := <-failed; !errors.Is(err, boom) {
		t.Errorf("the failing write returned %v; want %v", err, boom)
	}
	checkOnce(t, claims, items)
	st, err := q.Stats(t.Context())
	if err != nil || st.Leased != items || st.Ready[tasks.PriorityHigh]+st.Ready[tasks.PriorityNormal]+st.Ready[tasks.PriorityLow] != 0 {
		t.Errorf("stats: %+v, %v; want %d leased, none ready", st, err, items)
	}
}

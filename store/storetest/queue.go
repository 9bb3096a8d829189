package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
)

// QueueOptions configure a queue made for one subtest.
type QueueOptions struct {
	// Now is the clock of delays and leases. The suite passes a clock it
	// sets, so that leases expire and delays pass without sleeping.
	Now func() time.Time
}

// Queue runs the conformance suite of tasks.Queue. newQueue is called once
// per subtest and must return a queue that shares nothing with the queues
// of other subtests (own file or own key prefix), on the clock opts.Now.
//
// Every clause of the tasks.Queue contract has a subtest named after it.
// Beyond the contract's words, the suite pins down:
//
//   - Errors are compared by vigil.ErrorCode, context errors with
//     errors.Is, so backends may wrap them.
//   - An item whose delay has passed on the queue's clock is claimable by
//     a Claim that does not wait, even if no timer fired: implementations
//     compare with the clock when they look, not only when woken.
//   - The same run id in two tenants is two items.
//   - Tenants take turns by start-time fair queuing with a unit cost per
//     run: within a priority, an item that becomes ready while its tenant
//     has none ready comes after at most one ready item of every other
//     tenant. Between tenants whose turns tie, either order passes:
//     redis.Queue takes the tenant whose name sorts first, bolt.Queue the
//     item that became ready first, and the subtests name tenants in the
//     order in which they enqueue, so that both agree.
//
// Waiting is tested in real time with bounded deadlines: a Claim woken by
// an Enqueue must return within a second.
func Queue(t *testing.T, newQueue func(t *testing.T, opts QueueOptions) tasks.Queue) {
	t.Run("Enqueue", func(t *testing.T) {
		t.Run("ClaimByPriorityThenFIFO", func(t *testing.T) { testQueueOrder(t, newQueue) })
		t.Run("IsIdempotent", func(t *testing.T) { testQueueIdempotent(t, newQueue) })
		t.Run("InvalidIsRejected", func(t *testing.T) { testQueueInvalid(t, newQueue) })
		t.Run("DelayedIsNotReady", func(t *testing.T) { testQueueDelay(t, newQueue) })
		t.Run("TenantsAreSeparate", func(t *testing.T) { testQueueTenants(t, newQueue) })
	})
	t.Run("Fairness", func(t *testing.T) {
		t.Run("TenantsTakeTurns", func(t *testing.T) { testQueueTurns(t, newQueue) })
		t.Run("FloodDoesNotDelayOthers", func(t *testing.T) { testQueueFlood(t, newQueue) })
		t.Run("DelayedTakesItsTurnWhenReady", func(t *testing.T) { testQueueDelayedTurn(t, newQueue) })
	})
	t.Run("Claim", func(t *testing.T) {
		t.Run("WaitsAndWakes", func(t *testing.T) { testQueueWake(t, newQueue) })
		t.Run("WaitPasses", func(t *testing.T) { testQueueWaitPasses(t, newQueue) })
		t.Run("ContextEnds", func(t *testing.T) { testQueueCancel(t, newQueue) })
		t.Run("ConcurrentClaimsExactlyOnce", func(t *testing.T) { testQueueConcurrent(t, newQueue) })
	})
	t.Run("Lease", func(t *testing.T) {
		t.Run("ReclaimAfterExpiry", func(t *testing.T) { testQueueReclaim(t, newQueue) })
		t.Run("LostLeaseIsConflict", func(t *testing.T) { testQueueLostLease(t, newQueue) })
		t.Run("ExtendPostponesReclaim", func(t *testing.T) { testQueueExtend(t, newQueue) })
		t.Run("ExtendAfterExpiryIfNotReclaimed", func(t *testing.T) { testQueueExtendLate(t, newQueue) })
		t.Run("ConcurrentReclaimsExactlyOnce", func(t *testing.T) { testQueueConcurrentReclaim(t, newQueue) })
	})
	t.Run("Finish", func(t *testing.T) {
		t.Run("AckRemoves", func(t *testing.T) { testQueueAck(t, newQueue) })
		t.Run("ReleaseAfterDelay", func(t *testing.T) { testQueueRelease(t, newQueue) })
		t.Run("Stats", func(t *testing.T) { testQueueStats(t, newQueue) })
	})
}

type newQueueFunc = func(t *testing.T, opts QueueOptions) tasks.Queue

// queueClock is a clock the suite sets.
type queueClock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the time the suite set.
func (c *queueClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock on by d.
func (c *queueClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newClockedQueue returns a queue on a clock set to taskBase.
func newClockedQueue(t *testing.T, newQueue newQueueFunc) (tasks.Queue, *queueClock) {
	c := &queueClock{now: taskBase}
	return newQueue(t, QueueOptions{Now: c.Now}), c
}

func qitem(tenant, run string, p tasks.Priority) tasks.QueueItem {
	return tasks.QueueItem{Tenant: tenant, RunID: run, Priority: p}
}

func mustEnqueue(t *testing.T, q tasks.Queue, it tasks.QueueItem, delay time.Duration) {
	t.Helper()
	if err := q.Enqueue(t.Context(), it, delay); err != nil {
		t.Fatalf("Enqueue(%+v, %s): %v", it, delay, err)
	}
}

// claimNow claims without waiting.
func claimNow(t *testing.T, q tasks.Queue, worker string, n int) []tasks.Claim {
	t.Helper()
	cs, err := q.Claim(t.Context(), worker, n, time.Minute, 0)
	if err != nil {
		t.Fatalf("Claim(%s, %d): %v", worker, n, err)
	}
	return cs
}

func runIDs(cs []tasks.Claim) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.RunID
	}
	return out
}

func wantQueueCode(t *testing.T, what string, err error, code vigil.Code) {
	t.Helper()
	if vigil.ErrorCode(err) != code {
		t.Errorf("%s: error %v; want code %s", what, err, code)
	}
}

func testQueueOrder(t *testing.T, newQueue newQueueFunc) {
	q, c := newClockedQueue(t, newQueue)
	mustEnqueue(t, q, qitem("acme", "run_low1", tasks.PriorityLow), 0)
	c.Add(time.Millisecond)
	mustEnqueue(t, q, qitem("acme", "run_norm1", tasks.PriorityNormal), 0)
	c.Add(time.Millisecond)
	mustEnqueue(t, q, qitem("acme", "run_high1", tasks.PriorityHigh), 0)
	c.Add(time.Millisecond)
	mustEnqueue(t, q, qitem("acme", "run_norm2", tasks.PriorityNormal), 0)
	mustEnqueue(t, q, qitem("acme", "run_high2", tasks.PriorityHigh), 0) // same instant: after high1 still
	c.Add(time.Millisecond)

	cs := claimNow(t, q, "w1", 3)
	if got, want := fmt.Sprint(runIDs(cs)), "[run_high1 run_high2 run_norm1]"; got != want {
		t.Errorf("first claim %s; want %s", got, want)
	}
	for _, cl := range cs {
		if cl.Worker != "w1" || cl.Token == "" || cl.Deliveries != 1 || !cl.Until.Equal(c.Now().Add(time.Minute)) || cl.Tenant != "acme" {
			t.Errorf("claim %+v: want worker w1, a token, 1 delivery, until now+1m", cl)
		}
	}
	if cs[0].Priority != tasks.PriorityHigh || cs[2].Priority != tasks.PriorityNormal {
		t.Errorf("claims carry priorities %s, %s", cs[0].Priority, cs[2].Priority)
	}
	cs = claimNow(t, q, "w2", 10)
	if got, want := fmt.Sprint(runIDs(cs)), "[run_norm2 run_low1]"; got != want {
		t.Errorf("second claim %s; want %s", got, want)
	}
	if cs := claimNow(t, q, "w3", 10); len(cs) != 0 {
		t.Errorf("claim of an empty queue: %v", runIDs(cs))
	}
}

func testQueueIdempotent(t *testing.T, newQueue newQueueFunc) {
	q, _ := newClockedQueue(t, newQueue)
	it := qitem("acme", "run_1", tasks.PriorityNormal)
	mustEnqueue(t, q, it, 0)
	mustEnqueue(t, q, it, 0)
	mustEnqueue(t, q, qitem("acme", "run_1", tasks.PriorityHigh), 0)
	cs := claimNow(t, q, "w1", 10)
	if len(cs) != 1 || cs[0].Priority != tasks.PriorityNormal {
		t.Fatalf("three enqueues of one run: claimed %+v; want one item at its first priority", cs)
	}
	// Leased: still held, so enqueueing again adds nothing.
	mustEnqueue(t, q, it, 0)
	if cs := claimNow(t, q, "w2", 10); len(cs) != 0 {
		t.Errorf("enqueue of a leased run made it claimable twice: %+v", cs)
	}
	if err := q.Ack(t.Context(), cs[0]); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	// Acked: gone, so it can be enqueued anew.
	mustEnqueue(t, q, it, 0)
	if cs := claimNow(t, q, "w2", 10); len(cs) != 1 {
		t.Errorf("enqueue after ack: claimed %d items; want 1", len(cs))
	}
}

func testQueueInvalid(t *testing.T, newQueue newQueueFunc) {
	q, _ := newClockedQueue(t, newQueue)
	ctx := t.Context()
	for _, it := range []tasks.QueueItem{
		{Tenant: "", RunID: "run_1", Priority: tasks.PriorityNormal},
		{Tenant: "acme", RunID: "", Priority: tasks.PriorityNormal},
		{Tenant: "ac me", RunID: "run_1", Priority: tasks.PriorityNormal},
		{Tenant: "acme", RunID: "run\x001", Priority: tasks.PriorityNormal},
		{Tenant: "acme", RunID: "run_1", Priority: "urgent"},
		{Tenant: "acme", RunID: "run_1"},
	} {
		wantQueueCode(t, fmt.Sprintf("Enqueue(%q)", it), q.Enqueue(ctx, it, 0), vigil.Invalid)
	}
	for _, n := range []int{0, -1, tasks.MaxClaim + 1} {
		_, err := q.Claim(ctx, "w", n, time.Minute, 0)
		wantQueueCode(t, fmt.Sprintf("Claim(n=%d)", n), err, vigil.Invalid)
		_, err = q.Reclaim(ctx, "w", n, time.Minute)
		wantQueueCode(t, fmt.Sprintf("Reclaim(n=%d)", n), err, vigil.Invalid)
	}
	if cs := claimNow(t, q, "w", 10); len(cs) != 0 {
		t.Errorf("invalid enqueues left items: %+v", cs)
	}
}

func testQueueDelay(t *testing.T, newQueue newQueueFunc) {
	q, c := newClockedQueue(t, newQueue)
	mustEnqueue(t, q, qitem("acme", "run_later", tasks.PriorityHigh), 10*time.Second)
	mustEnqueue(t, q, qitem("acme", "run_now", tasks.PriorityLow), 0)
	if got := runIDs(claimNow(t, q, "w", 10)); fmt.Sprint(got) != "[run_now]" {
		t.Errorf("claim before the delay passed: %v; want [run_now]", got)
	}
	c.Add(9 * time.Second)
	if got := claimNow(t, q, "w", 10); len(got) != 0 {
		t.Errorf("claim 1s before the delay passed: %v", runIDs(got))
	}
	c.Add(time.Second)
	if got := runIDs(claimNow(t, q, "w", 10)); fmt.Sprint(got) != "[run_later]" {
		t.Errorf("claim when the delay passed: %v; want [run_later]", got)
	}
}

func testQueueTenants(t *testing.T, newQueue newQueueFunc) {
	q, _ := newClockedQueue(t, newQueue)
	mustEnqueue(t, q, qitem("acme", "run_1", tasks.PriorityNormal), 0)
	mustEnqueue(t, q, qitem("globex", "run_1", tasks.PriorityNormal), 0)
	cs := claimNow(t, q, "w", 10)
	if len(cs) != 2 || cs[0].Tenant == cs[1].Tenant {
		t.Fatalf("one run id in two tenants: claimed %+v; want two items", cs)
	}
	if err := q.Ack(t.Context(), cs[0]); err != nil {
		t.Fatal(err)
	}
	other := cs[1]
	other.Token = cs[0].Token
	wantQueueCode(t, "Ack with the other tenant's token", q.Ack(t.Context(), other), vigil.Conflict)
	if err := q.Ack(t.Context(), cs[1]); err != nil {
		t.Errorf("Ack of the second tenant's item: %v", err)
	}
}

func testQueueWake(t *testing.T, newQueue newQueueFunc) {
	q, _ := newClockedQueue(t, newQueue)
	type result struct {
		cs  []tasks.Claim
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		cs, err := q.Claim(t.Context(), "w", 1, time.Minute, 10*time.Second)
		done <- result{cs, err}
	}()
	time.Sleep(50 * time.Millisecond) // let the Claim start waiting
	mustEnqueue(t, q, qitem("acme", "run_1", tasks.PriorityNormal), 0)
	select {
	case r := <-done:
		if r.err != nil || len(r.cs) != 1 || r.cs[0].RunID != "run_1" {
			t.Errorf("waiting Claim returned %+v, %v", r.cs, r.err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("waiting Claim returned after %s; an Enqueue must wake it", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an Enqueue did not wake a waiting Claim within 5s")
	}
}

func testQueueWaitPasses(t *testing.T, newQueue newQueueFunc) {
	q, _ := newClockedQueue(t, newQueue)
	start := time.Now()
	cs, err := q.Claim(t.Context(), "w", 1, time.Minute, 100*time.Millisecond)
	if err != nil || len(cs) != 0 {
		t.Errorf("Claim of an empty queue: %+v, %v; want none, nil", cs, err)
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > 3*time.Second {
		t.Errorf("Claim with a 100ms wait returned after %s", d)
	}
}

func testQueueCancel(t *testing.T, newQueue newQueueFunc) {
	q, _ := newClockedQueue(t, newQueue)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := q.Claim(ctx, "w", 1, time.Minute, 30*time.Second)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Claim after cancel: %v; want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Claim did not return within 5s of its context ending")
	}
}

func testQueueConcurrent(t *testing.T, newQueue newQueueFunc) {
	q, _ := newClockedQueue(t, newQueue)
	const items, workers = 200, 8
	for i := range items {
		mustEnqueue(t, q, qitem("acme", fmt.Sprintf("run_%03d", i), tasks.Priorities[i%3]), 0)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				cs, err := q.Claim(t.Context(), fmt.Sprintf("w%d", w), 7, time.Minute, 0)
				if err != nil {
					t.Error(err)
					return
				}
				if len(cs) == 0 {
					return
				}
				mu.Lock()
				for _, c := range cs {
					seen[c.RunID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != items {
		t.Errorf("%d workers claimed %d distinct items; want %d", workers, len(seen), items)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s claimed %d times", id, n)
		}
	}
}

func testQueueReclaim(t *testing.T, newQueue newQueueFunc) {
	q, c := newClockedQueue(t, newQueue)
	ctx := t.Context()
	mustEnqueue(t, q, qitem("acme", "run_1", tasks.PriorityNormal), 0)
	mustEnqueue(t, q, qitem("acme", "run_2", tasks.PriorityNormal), 0)
	first := claimNow(t, q, "w1", 1)[0]
	c.Add(10 * time.Second)
	second := claimNow(t, q, "w1", 1)[0]

	c.Add(50 * time.Second) // first's lease (1m) ends now; second's in 10s
	if cs, err := q.Claim(ctx, "w2", 10, time.Minute, 0); err != nil || len(cs) != 0 {
		t.Errorf("Claim took an expired lease: %+v, %v; only Reclaim does", cs, err)
	}
	cs, err := q.Reclaim(ctx, "w2", 10, 2*time.Minute)
	if err != nil || len(cs) != 1 {
		t.Fatalf("Reclaim at the first lease's end: %+v, %v; want run_1 only", cs, err)
	}
	re := cs[0]
	if re.RunID != first.RunID || re.Worker != "w2" || re.Token == first.Token || re.Deliveries != 2 || !re.Until.Equal(c.Now().Add(2*time.Minute)) {
		t.Errorf("reclaimed %+v; want run_1 leased to w2 with a new token, 2 deliveries, until now+2m", re)
	}
	c.Add(11 * time.Second)
	cs, err = q.Reclaim(ctx, "w3", 10, time.Minute)
	if err != nil || len(cs) != 1 || cs[0].RunID != second.RunID {
		t.Errorf("Reclaim after the second lease's end: %+v, %v; want run_2", cs, err)
	}
	if cs, _ := q.Reclaim(ctx, "w3", 10, time.Minute); len(cs) != 0 {
		t.Errorf("Reclaim of unexpired leases: %+v", cs)
	}
}

func testQueueLostLease(t *testing.T, newQueue newQueueFunc) {
	q, c := newClockedQueue(t, newQueue)
	ctx := t.Context()
	mustEnqueue(t, q, qitem("acme", "run_1", tasks.PriorityNormal), 0)
	old := claimNow(t, q, "w1", 1)[0]
	c.Add(2 * time.Minute)
	cs, err := q.Reclaim(ctx, "w2", 1, time.Minute)
	if err != nil || len(cs) != 1 {
		t.Fatalf("Reclaim: %+v, %v", cs, err)
	}
	_, err = q.Extend(ctx, old, time.Minute)
	wantQueueCode(t, "Extend of a reclaimed lease", err, vigil.Conflict)
	wantQueueCode(t, "Ack of a reclaimed lease", q.Ack(ctx, old), vigil.Conflict)
	wantQueueCode(t, "Release of a reclaimed lease", q.Release(ctx, old, 0), vigil.Conflict)
	forged := cs[0]
	forged.Token = "not-the-token"
	wantQueueCode(t, "Ack with a wrong token", q.Ack(ctx, forged), vigil.Conflict)
	// None of them changed anything: the new holder still holds it.
	if _, err := q.Extend(ctx, cs[0], time.Minute); err != nil {
		t.Errorf("Extend by the new holder: %v", err)
	}
	if err := q.Ack(ctx, cs[0]); err != nil {
		t.Fatalf("Ack by the new holder: %v", err)
	}
	wantQueueCode(t, "second Ack", q.Ack(ctx, cs[0]), vigil.Conflict)
	_, err = q.Extend(ctx, cs[0], time.Minute)
	wantQueueCode(t, "Extend after Ack", err, vigil.Conflict)
}

func testQueueExtend(t *testing.T, newQueue newQueueFunc) {
	q, c := newClockedQueue(t, newQueue)
	ctx := t.Context()
	mustEnqueue(t, q, qitem("acme", "run_1", tasks.PriorityNormal), 0)
	cl := claimNow(t, q, "w1", 1)[0]
	c.Add(50 * time.Second)
	ext, err := q.Extend(ctx, cl, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !ext.Until.Equal(c.Now().Add(time.Minute)) || ext.Token != cl.Token || ext.RunID != cl.RunID || ext.Deliveries != 1 {
		t.Errorf("Extend returned %+v; want the same lease until now+1m", ext)
	}
	c.Add(30 * time.Second) // past the first Until, before the new one
	if cs, err := q.Reclaim(ctx, "w2", 1, time.Minute); err != nil || len(cs) != 0 {
		t.Errorf("Reclaim of an extended lease: %+v, %v", cs, err)
	}
	c.Add(31 * time.Second)
	if cs, err := q.Reclaim(ctx, "w2", 1, time.Minute); err != nil || len(cs) != 1 {
		t.Errorf("Reclaim after the extended lease: %+v, %v", cs, err)
	}
}

func testQueueExtendLate(t *testing.T, newQueue newQueueFunc) {
	q, c := newClockedQueue(t, newQueue)
	ctx := t.Context()
	mustEnqueue(t, q, qitem("acme", "run_1", tasks.PriorityNormal), 0)
	cl := claimNow(t, q, "w1", 1)[0]
	c.Add(5 * time.Minute)
	if _, err := q.Extend(ctx, cl, time.Minute); err != nil {
		t.Fatalf("Extend of an expired lease nobody reclaimed: %v; want success", err)
	}
	if cs, err := q.Reclaim(ctx, "w2", 1, time.Minute); err != nil || len(cs) != 0 {
		t.Errorf("Reclaim after a late Extend: %+v, %v", cs, err)
	}
	if err := q.Ack(ctx, cl); err != nil {
		t.Errorf("Ack after a late Extend: %v", err)
	}
}

func testQueueConcurrentReclaim(t *testing.T, newQueue newQueueFunc) {
	q, c := newClockedQueue(t, newQueue)
	const items = 60
	for i := range items {
		mustEnqueue(t, q, qitem("acme", fmt.Sprintf("run_%02d", i), tasks.PriorityNormal), 0)
	}
	if cs := claimNow(t, q, "crashed", items); len(cs) != items {
		t.Fatalf("claimed %d of %d", len(cs), items)
	}
	c.Add(2 * time.Minute)
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for {
				cs, err := q.Reclaim(t.Context(), fmt.Sprintf("w%d", w), 5, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if len(cs) == 0 {
					return
				}
				mu.Lock()
				for _, c := range cs {
					seen[c.RunID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != items {
		t.Errorf("reclaimed %d distinct items; want %d", len(seen), items)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s reclaimed %d times", id, n)
		}
	}
}

func testQueueAck(t *testing.T, newQueue newQueueFunc) {
	q, c := newClockedQueue(t, newQueue)
	ctx := t.Context()
	mustEnqueue(t, q, qitem("acme", "run_1", tasks.PriorityNormal), 0)
	cl := claimNow(t, q, "w1", 1)[0]
	if err := q.Ack(ctx, cl); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Hour)
	if cs, _ := q.Reclaim(ctx, "w2", 10, time.Minute); len(cs) != 0 {
		t.Errorf("Reclaim found an acked item: %+v", cs)
	}
	if cs := claimNow(t, q, "w2", 10); len(cs) != 0 {
		t.Errorf("Claim found an acked item: %+v", cs)
	}
}

func testQueueRelease(t *testing.T, newQueue newQueueFunc) {
	q, c := newClockedQueue(t, newQueue)
	ctx := t.Context()
	mustEnqueue(t, q, qitem("acme", "run_1", tasks.PriorityHigh), 0)
	mustEnqueue(t, q, qitem("acme", "run_2", tasks.PriorityHigh), 0)
	claimNow(t, q, "w1", 1)
	c.Add(90 * time.Second) // the lease ran out; releasing still works
	re, err := q.Reclaim(ctx, "w1", 1, time.Minute)
	if err != nil || len(re) != 1 || re[0].Deliveries != 2 {
		t.Fatalf("Reclaim: %+v, %v", re, err)
	}
	cl := re[0]
	if err := q.Release(ctx, cl, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := runIDs(claimNow(t, q, "w2", 10)); fmt.Sprint(got) != "[run_2]" {
		t.Errorf("claim while run_1 waits for its delay: %v; want [run_2]", got)
	}
	if cs, _ := q.Reclaim(ctx, "w2", 10, time.Minute); len(cs) != 0 {
		t.Errorf("Reclaim took a released item: %+v", cs)
	}
	c.Add(20 * time.Second)
	cs := claimNow(t, q, "w2", 10)
	if len(cs) != 1 || cs[0].RunID != "run_1" || cs[0].Deliveries != 1 || cs[0].Priority != tasks.PriorityHigh {
		t.Errorf("claim after the delay: %+v; want run_1, high, with deliveries back to 1", cs)
	}
	// Release without delay: ready at once, behind items ready before.
	mustEnqueue(t, q, qitem("acme", "run_3", tasks.PriorityHigh), 0)
	c.Add(time.Millisecond)
	if err := q.Release(ctx, cs[0], 0); err != nil {
		t.Fatal(err)
	}
	if got := runIDs(claimNow(t, q, "w3", 10)); fmt.Sprint(got) != "[run_3 run_1]" {
		t.Errorf("claim after a release without delay: %v; want [run_3 run_1]", got)
	}
}

func testQueueStats(t *testing.T, newQueue newQueueFunc) {
	q, c := newClockedQueue(t, newQueue)
	ctx := t.Context()
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Delayed != 0 || st.Leased != 0 || st.Ready[tasks.PriorityHigh]+st.Ready[tasks.PriorityNormal]+st.Ready[tasks.PriorityLow] != 0 {
		t.Errorf("stats of an empty queue: %+v", st)
	}
	mustEnqueue(t, q, qitem("acme", "run_1", tasks.PriorityHigh), 0)
	mustEnqueue(t, q, qitem("acme", "run_2", tasks.PriorityLow), 0)
	mustEnqueue(t, q, qitem("acme", "run_3", tasks.PriorityLow), 0)
	mustEnqueue(t, q, qitem("acme", "run_4", tasks.PriorityNormal), time.Minute)
	if cs := claimNow(t, q, "w", 1); len(cs) != 1 {
		t.Fatal("claim failed")
	}
	st, err = q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := tasks.QueueStats{Ready: map[tasks.Priority]int{tasks.PriorityHigh: 0, tasks.PriorityNormal: 0, tasks.PriorityLow: 2}, Delayed: 1, Leased: 1}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Errorf("stats %+v; want %+v", st, want)
	}
	c.Add(time.Minute)
	if st, _ = q.Stats(ctx); st.Delayed != 0 || st.Ready[tasks.PriorityNormal] != 1 {
		t.Errorf("stats after the delay: %+v; want the delayed item ready", st)
	}
}

// claimOneByOne claims n items one Claim at a time and returns their
// tenant and run id, as "tenant/run".
func claimOneByOne(t *testing.T, q tasks.Queue, n int) []string {
	t.Helper()
	var out []string
	for range n {
		cs := claimNow(t, q, "w", 1)
		if len(cs) == 0 {
			break
		}
		out = append(out, cs[0].Tenant+"/"+cs[0].RunID)
	}
	return out
}

func testQueueTurns(t *testing.T, newQueue newQueueFunc) {
	q, c := newClockedQueue(t, newQueue)
	for i := range 5 {
		mustEnqueue(t, q, qitem("acme", fmt.Sprintf("run_a%d", i+1), tasks.PriorityNormal), 0)
		c.Add(time.Millisecond)
	}
	mustEnqueue(t, q, qitem("globex", "run_g1", tasks.PriorityNormal), 0)
	mustEnqueue(t, q, qitem("globex", "run_g2", tasks.PriorityNormal), 0)
	c.Add(time.Millisecond)
	mustEnqueue(t, q, qitem("initech", "run_i1", tasks.PriorityNormal), 0)
	mustEnqueue(t, q, qitem("initech", "run_high", tasks.PriorityHigh), 0)
	c.Add(time.Millisecond)

	// Priority first; then one item of each tenant in turn, each tenant's
	// in the order they became ready.
	got := runIDs(claimNow(t, q, "w", 4))
	if want := "[run_high run_a1 run_g1 run_i1]"; fmt.Sprint(got) != want {
		t.Errorf("first claim %v; want %s", got, want)
	}
	got = runIDs(claimNow(t, q, "w", 1))
	if want := "[run_a2]"; fmt.Sprint(got) != want {
		t.Errorf("second claim %v; want %s", got, want)
	}
	// A tenant with nothing ready that enqueues comes after at most one
	// item of each tenant with a backlog, not after the backlogs.
	mustEnqueue(t, q, qitem("hooli", "run_h1", tasks.PriorityNormal), 0)
	got2 := claimOneByOne(t, q, 10)
	if want := "[globex/run_g2 acme/run_a3 hooli/run_h1 acme/run_a4 acme/run_a5]"; fmt.Sprint(got2) != want {
		t.Errorf("then claimed %v; want %s", got2, want)
	}
}

func testQueueFlood(t *testing.T, newQueue newQueueFunc) {
	q, c := newClockedQueue(t, newQueue)
	const flood = 300
	for i := range flood {
		mustEnqueue(t, q, qitem("acme", fmt.Sprintf("run_%03d", i), tasks.PriorityNormal), 0)
	}
	c.Add(time.Millisecond)
	if cs := claimNow(t, q, "w", 100); len(cs) != 100 {
		t.Fatalf("claimed %d of acme's items; want 100", len(cs))
	}
	// A worker gives one of acme's items back: it goes behind acme's
	// backlog, and globex, enqueued after, comes before it too.
	mustEnqueue(t, q, qitem("globex", "run_g", tasks.PriorityNormal), 0)
	cs := claimNow(t, q, "w", 2)
	var tenants []string
	for _, cl := range cs {
		tenants = append(tenants, cl.Tenant)
	}
	if fmt.Sprint(tenants) != "[acme globex]" {
		t.Errorf("after %d of acme's items were enqueued, then globex's one: claimed %v of tenants %v; want acme's next, then globex's", flood, runIDs(cs), tenants)
	}
	if err := q.Release(t.Context(), cs[0], 0); err != nil {
		t.Fatal(err)
	}
	rest := claimNow(t, q, "w", tasks.MaxClaim)
	if len(rest) != flood-100 || rest[len(rest)-1].RunID != cs[0].RunID {
		t.Errorf("claimed %d more, the last %v; want %d, the released %s last", len(rest), runIDs(rest[max(len(rest)-1, 0):]), flood-100, cs[0].RunID)
	}
}

func testQueueDelayedTurn(t *testing.T, newQueue newQueueFunc) {
	q, c := newClockedQueue(t, newQueue)
	mustEnqueue(t, q, qitem("globex", "run_later", tasks.PriorityNormal), time.Second)
	for i := range 4 {
		mustEnqueue(t, q, qitem("acme", fmt.Sprintf("run_a%d", i+1), tasks.PriorityNormal), 0)
	}
	if got := runIDs(claimNow(t, q, "w", 1)); fmt.Sprint(got) != "[run_a1]" {
		t.Errorf("claim before the delay passed: %v; want [run_a1]", got)
	}
	c.Add(time.Second)
	// Ready now, after acme's backlog was enqueued: its turn comes next
	// but one (the acme item whose turn ties with it), not after them all.
	got := claimOneByOne(t, q, 10)
	if want := "[acme/run_a2 globex/run_later acme/run_a3 acme/run_a4]"; fmt.Sprint(got) != want {
		t.Errorf("claimed %v; want %s", got, want)
	}
}

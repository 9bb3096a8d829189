package redis_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/store/storetest"
	"github.com/vigilhq/vigil/tasks"
)

func TestQueue(t *testing.T) {
	storetest.Queue(t, func(t *testing.T, opts storetest.QueueOptions) tasks.Queue {
		l := open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 4})
		return redis.NewQueue(l, redis.QueueOptions{Now: opts.Now})
	})
}

// testClock is a clock a test sets, shared by the queues of several
// "processes".
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// queueKey returns the key of the queue's structure name under prefix.
func queueKey(prefix, name string) string { return prefix + ":queue:{" + prefix + ":queue}:" + name }

func qItem(run string, p tasks.Priority) tasks.QueueItem {
	return tasks.QueueItem{Tenant: "acme", RunID: run, Priority: p}
}

type claimResult struct {
	cs  []tasks.Claim
	err error
}

// waitClaim starts a Claim of one item that waits up to 10s, and returns
// the channel its result comes on.
func waitClaim(ctx context.Context, q *redis.Queue) <-chan claimResult {
	done := make(chan claimResult, 1)
	go func() {
		cs, err := q.Claim(ctx, "waiter", 1, time.Minute, 10*time.Second)
		done <- claimResult{cs, err}
	}()
	return done
}

// TestQueueTwoProcesses runs two Queues with their own clients over one
// prefix, as two worker processes would: claiming from both at once hands
// each item to exactly one claimer, and a Claim waiting in one process is
// woken by an Enqueue in the other.
func TestQueueTwoProcesses(t *testing.T) {
	ctx := t.Context()
	prefix := redistest.Prefix(t)
	clock := &testClock{now: taskAt}
	qs := []*redis.Queue{
		redis.NewQueue(open(t, prefix, redis.Options{MaxFollowers: 4}), redis.QueueOptions{Now: clock.Now}),
		redis.NewQueue(open(t, prefix, redis.Options{MaxFollowers: 4}), redis.QueueOptions{Now: clock.Now}),
	}
	const items = 300
	for i := range items {
		if err := qs[i%2].Enqueue(ctx, qItem(fmt.Sprintf("run_%03d", i), tasks.Priorities[i%3]), 0); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := range 6 {
		q := qs[w%2]
		wg.Go(func() {
			for {
				cs, err := q.Claim(ctx, fmt.Sprintf("w%d", w), 7, time.Minute, 0)
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
				for _, c := range cs {
					if err := qs[(w+1)%2].Ack(ctx, c); err != nil { // acked through the other process
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != items {
		t.Errorf("two processes claimed %d distinct items; want %d", len(seen), items)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s claimed %d times", id, n)
		}
	}
	st, err := qs[0].Stats(ctx)
	if err != nil || st.Leased != 0 || st.Delayed != 0 || st.Ready[tasks.PriorityHigh]+st.Ready[tasks.PriorityNormal]+st.Ready[tasks.PriorityLow] != 0 {
		t.Errorf("stats once every item is acked: %+v, %v", st, err)
	}

	// A Claim waiting in one process, woken by an Enqueue in the other.
	done := waitClaim(ctx, qs[1])
	start := time.Now()
	time.Sleep(50 * time.Millisecond)
	if err := qs[0].Enqueue(ctx, qItem("run_wake", tasks.PriorityLow), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || len(r.cs) != 1 || r.cs[0].RunID != "run_wake" || time.Since(start) > 2*time.Second {
			t.Errorf("waiting Claim in the other process returned %+v, %v after %s", r.cs, r.err, time.Since(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an Enqueue did not wake a Claim waiting in another process")
	}
}

// TestQueueDelayWakes checks, in real time, that a Claim waiting in one
// process for an empty queue returns an item another process enqueued
// with a delay once the delay runs out: the delayed Enqueue wakes it to
// shorten its wait.
func TestQueueDelayWakes(t *testing.T) {
	ctx := t.Context()
	prefix := redistest.Prefix(t)
	a := redis.NewQueue(open(t, prefix, redis.Options{MaxFollowers: 4}), redis.QueueOptions{})
	b := redis.NewQueue(open(t, prefix, redis.Options{MaxFollowers: 4}), redis.QueueOptions{})
	done := waitClaim(ctx, b)
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := a.Enqueue(ctx, qItem("run_later", tasks.PriorityNormal), 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		d := time.Since(start)
		if r.err != nil || len(r.cs) != 1 || r.cs[0].RunID != "run_later" || d < 250*time.Millisecond || d > 2*time.Second {
			t.Errorf("waiting Claim returned %+v, %v after %s; want run_later after its 300ms delay", r.cs, r.err, d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a delayed Enqueue did not shorten a waiting Claim")
	}
}

// TestQueueCrashedWorker has one process claim items and die without
// acking them: another reclaims them once their lease has run out on the
// queue's clock, with the Streams pending entries following the leases,
// and the dead worker's consumer leaves the groups.
func TestQueueCrashedWorker(t *testing.T) {
	ctx := t.Context()
	prefix := redistest.Prefix(t)
	clock := &testClock{now: taskAt}
	dying, err := redis.Open(ctx, redistest.URL(t), redis.Options{Prefix: prefix, MaxFollowers: 4})
	if err != nil {
		t.Fatal(err)
	}
	crashed := redis.NewQueue(dying, redis.QueueOptions{Now: clock.Now})
	q := redis.NewQueue(open(t, prefix, redis.Options{MaxFollowers: 4}), redis.QueueOptions{Now: clock.Now})
	for _, run := range []string{"run_1", "run_2", "run_3"} {
		if err := crashed.Enqueue(ctx, qItem(run, tasks.PriorityNormal), 0); err != nil {
			t.Fatal(err)
		}
	}
	old, err := crashed.Claim(ctx, "wrk_dead", 10, time.Minute, 0)
	if err != nil || len(old) != 3 {
		t.Fatalf("Claim by the worker that dies: %+v, %v", old, err)
	}
	if err := dying.Close(); err != nil {
		t.Fatal(err)
	}

	rdb := client(t)
	stream := queueKey(prefix, "ready:normal:acme")
	wantConsumers := func(what string, want ...string) {
		t.Helper()
		cs, err := rdb.XInfoConsumers(ctx, stream, "workers").Result()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range cs {
			names = append(names, c.Name)
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s: consumers %q; want %q", what, names, want)
		}
	}
	wantConsumers("after the claim", "wrk_dead")

	clock.Add(59 * time.Second)
	if cs, err := q.Reclaim(ctx, "wrk_live", 10, time.Minute); err != nil || len(cs) != 0 {
		t.Errorf("Reclaim before the lease ran out: %+v, %v", cs, err)
	}
	if cs, err := q.Claim(ctx, "wrk_live", 10, time.Minute, 0); err != nil || len(cs) != 0 {
		t.Errorf("Claim of leased items: %+v, %v", cs, err)
	}
	clock.Add(time.Second)
	re, err := q.Reclaim(ctx, "wrk_live", 10, 2*time.Minute)
	if err != nil || len(re) != 3 {
		t.Fatalf("Reclaim after the lease ran out: %+v, %v; want the 3 items", re, err)
	}
	for _, c := range re {
		if c.Worker != "wrk_live" || c.Deliveries != 2 || !c.Until.Equal(clock.Now().Add(2*time.Minute)) {
			t.Errorf("reclaimed %+v; want wrk_live, 2 deliveries, until now+2m", c)
		}
	}
	pending, err := rdb.XPendingExt(ctx, &goredis.XPendingExtArgs{Stream: stream, Group: "workers", Start: "-", End: "+", Count: 10}).Result()
	if err != nil || len(pending) != 3 {
		t.Fatalf("pending entries: %+v, %v", pending, err)
	}
	for _, p := range pending {
		if p.Consumer != "wrk_live" || p.RetryCount != 2 {
			t.Errorf("pending entry %+v; want held by wrk_live, delivered twice", p)
		}
	}
	wantConsumers("after the reclaim", "wrk_live")

	for _, c := range old {
		if err := q.Ack(ctx, c); vigil.ErrorCode(err) != vigil.Conflict {
			t.Errorf("Ack by the dead worker's claim: %v; want conflict", err)
		}
	}
	for _, c := range re {
		if err := q.Ack(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := rdb.Exists(ctx, stream).Result(); err != nil || n != 0 {
		t.Errorf("the stream after the acks: exists %d, %v; want it deleted, empty", n, err)
	}
	if n, err := rdb.HLen(ctx, queueKey(prefix, "items")).Result(); err != nil || n != 0 {
		t.Errorf("item records after the acks: %d, %v; want 0", n, err)
	}
}

// TestQueueKeys checks the layout the file comment describes: every key
// carries the queue's hash tag and is one of the documented structures.
func TestQueueKeys(t *testing.T) {
	ctx := t.Context()
	prefix := redistest.Prefix(t)
	clock := &testClock{now: taskAt}
	q := redis.NewQueue(open(t, prefix, redis.Options{MaxFollowers: 4}), redis.QueueOptions{Now: clock.Now})
	for i, p := range tasks.Priorities {
		if err := q.Enqueue(ctx, qItem(fmt.Sprintf("run_%d", i), p), 0); err != nil {
			t.Fatal(err)
		}
		if err := q.Enqueue(ctx, qItem(fmt.Sprintf("run_later_%d", i), p), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if cs, err := q.Claim(ctx, "w", 1, time.Minute, 0); err != nil || len(cs) != 1 {
		t.Fatalf("Claim: %+v, %v", cs, err)
	}
	keys, err := client(t).Keys(ctx, prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	var want []string
	// The high item is leased: acme has no turn left at high, but its
	// stream holds the leased entry.
	for _, name := range []string{"ready:high:acme", "ready:normal:acme", "ready:low:acme", "tenants:normal", "tenants:low",
		"delayed:high", "delayed:normal", "delayed:low", "items", "leases", "wake", "clock"} {
		want = append(want, queueKey(prefix, name))
	}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("keys:\n%s\nwant:\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}
}

// TestQueueEnqueueBatch enqueues more items than one script takes, with
// duplicates, and checks that they are claimed once each, in priority and
// batch order; an invalid item fails the batch before anything is added.
func TestQueueEnqueueBatch(t *testing.T) {
	ctx := t.Context()
	clock := &testClock{now: taskAt}
	q := redis.NewQueue(open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 4}), redis.QueueOptions{Now: clock.Now})
	bad := []tasks.QueueItem{qItem("run_ok", tasks.PriorityHigh), qItem("run bad", tasks.PriorityHigh)}
	if err := q.EnqueueBatch(ctx, bad, 0); vigil.ErrorCode(err) != vigil.Invalid {
		t.Errorf("batch with an invalid item: %v; want invalid", err)
	}
	const n = 1200
	var items []tasks.QueueItem
	for i := range n {
		items = append(items, qItem(fmt.Sprintf("run_%04d", i), tasks.Priorities[(i/400+1)%3]))
	}
	items = append(items, items[:10]...)
	if err := q.EnqueueBatch(ctx, items, 0); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		cs, err := q.Claim(ctx, "w", tasks.MaxClaim, time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 0 {
			break
		}
		for _, c := range cs {
			got = append(got, c.RunID)
		}
	}
	// Items 0-399 are normal, 400-799 low, 800-1199 high.
	var want []string
	for _, r := range [][2]int{{800, 1200}, {0, 400}, {400, 800}} {
		for i := r[0]; i < r[1]; i++ {
			want = append(want, fmt.Sprintf("run_%04d", i))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("claimed %d items, from %v; want %d in priority then batch order", len(got), got[:min(len(got), 5)], len(want))
	}
}

// TestQueueDelayedOrder checks that a delayed item that became ready keeps
// its place before items enqueued after its delay ran out, though no Claim
// looked in between.
func TestQueueDelayedOrder(t *testing.T) {
	ctx := t.Context()
	clock := &testClock{now: taskAt}
	q := redis.NewQueue(open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 4}), redis.QueueOptions{Now: clock.Now})
	if err := q.Enqueue(ctx, qItem("run_retry", tasks.PriorityNormal), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	clock.Add(15 * time.Second)
	if err := q.Enqueue(ctx, qItem("run_new", tasks.PriorityNormal), 0); err != nil {
		t.Fatal(err)
	}
	cs, err := q.Claim(ctx, "w", 10, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		got = append(got, c.RunID)
	}
	if !slices.Equal(got, []string{"run_retry", "run_new"}) {
		t.Errorf("claimed %v; want [run_retry run_new], in the order they became ready", got)
	}
}

// TestQueueCancelled checks that an ended ctx fails the queue's calls with
// the ctx's error, not as Redis being unavailable.
func TestQueueCancelled(t *testing.T) {
	q := redis.NewQueue(open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 4}), redis.QueueOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, errClaim := q.Claim(ctx, "w", 1, time.Minute, time.Second)
	_, errReclaim := q.Reclaim(ctx, "w", 1, time.Minute)
	_, errStats := q.Stats(ctx)
	for _, err := range []error{errClaim, errReclaim, errStats, q.Enqueue(ctx, qItem("run_1", tasks.PriorityHigh), 0)} {
		if !errors.Is(err, context.Canceled) || vigil.ErrorCode(err) == vigil.Unavailable {
			t.Errorf("call with a cancelled ctx: %v (code %q), want context.Canceled", err, vigil.ErrorCode(err))
		}
	}
}

// turnModel is the fair queuing the queue's claim script follows, taken
// one item at a time: within a priority, the tenant with the lowest turn
// (ties by name, in byte order) gives its oldest ready item; its turn is
// then one more, or it leaves once it has nothing ready; the priority's
// clock is the turn of the last item taken, and a tenant that gets a
// ready item while it has none joins at the clock plus one. (bolt.Queue
// breaks ties between tenants by the order their items became ready, so
// storetest.Queue, which both pass, names its tenants in that order.)
type turnModel struct {
	prio [3]struct {
		clock int
		turn  map[string]int
		ready map[string][]string
	}
}

func newTurnModel() *turnModel {
	m := &turnModel{}
	for i := range m.prio {
		m.prio[i].turn, m.prio[i].ready = map[string]int{}, map[string][]string{}
	}
	return m
}

func (m *turnModel) enqueue(it tasks.QueueItem) {
	p := &m.prio[it.Priority.Rank()]
	if len(p.ready[it.Tenant]) == 0 {
		p.turn[it.Tenant] = p.clock + 1
	}
	p.ready[it.Tenant] = append(p.ready[it.Tenant], it.RunID)
}

func (m *turnModel) claim(n int) []string {
	var out []string
	for i := range m.prio {
		p := &m.prio[i]
		for len(out) < n && len(p.ready) > 0 {
			var next string
			for t := range p.ready {
				if next == "" || p.turn[t] < p.turn[next] || p.turn[t] == p.turn[next] && t < next {
					next = t
				}
			}
			out = append(out, next+"/"+p.ready[next][0])
			p.clock = p.turn[next]
			if p.ready[next] = p.ready[next][1:]; len(p.ready[next]) == 0 {
				delete(p.ready, next)
			} else {
				p.turn[next]++
			}
		}
	}
	return out
}

// TestQueueTurnModel enqueues and claims at random, claims of up to 40
// items across tenants with uneven backlogs, and checks each claim
// against turnModel: the claim script takes a round of turns at once
// (each tenant's share, then one read per tenant), and must take the same
// items in the same order as turns taken one by one.
func TestQueueTurnModel(t *testing.T) {
	ctx := t.Context()
	l := open(t, redistest.Prefix(t), redis.Options{})
	q := redis.NewQueue(l, redis.QueueOptions{})
	m := newTurnModel()
	rng := rand.New(rand.NewPCG(3, 7))
	// Names out of the order in which they first enqueue, some prefixes
	// of others, upper case before lower in byte order.
	tenants := []string{"zeta", "Beta", "alpha", "al", "mid", "a", "Zulu"}
	prios := []tasks.Priority{tasks.PriorityHigh, tasks.PriorityNormal, tasks.PriorityNormal, tasks.PriorityNormal, tasks.PriorityLow}
	seq, claimed := 0, 0
	for step := range 1500 {
		if rng.IntN(10) < 7 {
			// Bursts of one tenant make uneven backlogs.
			tenant, p := tenants[rng.IntN(len(tenants))], prios[rng.IntN(len(prios))]
			for range 1 + rng.IntN(4)*rng.IntN(4) {
				seq++
				it := tasks.QueueItem{Tenant: tenant, RunID: fmt.Sprintf("run_%05d", seq), Priority: p}
				if err := q.Enqueue(ctx, it, 0); err != nil {
					t.Fatal(err)
				}
				m.enqueue(it)
			}
			continue
		}
		n := 1 + rng.IntN(40)
		cs, err := q.Claim(ctx, "w", n, time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]string, len(cs))
		for i, c := range cs {
			got[i] = c.Tenant + "/" + c.RunID
		}
		if want := m.claim(n); !slices.Equal(got, want) {
			t.Fatalf("step %d: Claim(%d) = %v; want %v", step, n, got, want)
		}
		claimed += len(cs)
	}
	if claimed < seq/2 {
		t.Errorf("claimed %d of %d items: the claims were too few to test rounds", claimed, seq)
	}
}

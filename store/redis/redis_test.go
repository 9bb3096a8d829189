package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/store/storetest"
	"github.com/vigilhq/vigil/streams"
)

// open returns a Log on the test Redis under prefix, closed when t ends.
func open(t testing.TB, prefix string, opts redis.Options) *redis.Log {
	t.Helper()
	opts.Prefix = prefix
	l, err := redis.Open(context.Background(), redistest.URL(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// client returns a plain client on the test Redis, closed when t ends.
func client(t testing.TB) *goredis.Client {
	t.Helper()
	o, err := goredis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newThread(t testing.TB, l *redis.Log, tenant, id string) {
	t.Helper()
	err := l.CreateThread(context.Background(), streams.Thread{ID: id, Tenant: tenant, Title: "t " + id, CreatedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
}

func event(typ string, n int) streams.Event {
	return streams.Event{
		RunID: "run_1", TaskID: "tsk_1", TraceID: "trace", Type: typ,
		TS:   time.Date(2026, 11, 22, 8, 0, 0, n*1000, time.UTC),
		Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
	}
}

func appendN(t testing.TB, l *redis.Log, tenant, thread string, n int) []streams.ID {
	t.Helper()
	var ids []streams.ID
	for i := range n {
		got, err := l.Append(context.Background(), tenant, thread, []streams.Event{event("text", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got...)
	}
	return ids
}

func wantCode(t *testing.T, err error, code vigil.Code) {
	t.Helper()
	if got := vigil.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

// modes runs f once with plain appends and once with the coalescer.
func modes(t *testing.T, f func(t *testing.T, opts redis.Options)) {
	for _, c := range []bool{false, true} {
		t.Run(fmt.Sprintf("coalesce=%v", c), func(t *testing.T) { f(t, redis.Options{Coalesce: c}) })
	}
}

// TestLog runs the conformance suite that store/bolt runs too, with plain
// appends and with the coalescer.
func TestLog(t *testing.T) {
	modes(t, func(t *testing.T, ropts redis.Options) {
		storetest.Log(t, func(t *testing.T, opts storetest.LogOptions) streams.Log {
			ropts.MaxLen, ropts.Now = opts.MaxLen, opts.Now
			return open(t, redistest.Prefix(t), ropts)
		})
	})
}

func TestThreads(t *testing.T) {
	ctx := context.Background()
	l := open(t, redistest.Prefix(t), redis.Options{})
	th := streams.Thread{ID: "th_1", Tenant: "acme", Title: "Weather", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	if err := l.CreateThread(ctx, th); err != nil {
		t.Fatal(err)
	}
	wantCode(t, l.CreateThread(ctx, th), vigil.Conflict)
	got, err := l.Thread(ctx, "acme", "th_1")
	if err != nil {
		t.Fatal(err)
	}
	if got != th {
		t.Errorf("Thread = %+v, want %+v", got, th)
	}
	_, err = l.Thread(ctx, "other", "th_1")
	wantCode(t, err, vigil.NotFound)
	_, err = l.Thread(ctx, "acme", "th_2")
	wantCode(t, err, vigil.NotFound)
	_, err = l.Read(ctx, "other", "th_1", streams.ID{}, 10)
	wantCode(t, err, vigil.NotFound)
	_, err = l.Append(ctx, "other", "th_1", []streams.Event{event("text", 0)})
	wantCode(t, err, vigil.NotFound)
	_, err = l.Tail(ctx, "other", "th_1", streams.ID{}, 10, time.Millisecond)
	wantCode(t, err, vigil.NotFound)
	wantCode(t, l.CreateThread(ctx, streams.Thread{ID: "a}b", Tenant: "acme"}), vigil.Invalid)
	if err := l.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAppendRead(t *testing.T) {
	modes(t, func(t *testing.T, opts redis.Options) {
		ctx := context.Background()
		l := open(t, redistest.Prefix(t), opts)
		newThread(t, l, "acme", "th_1")

		page, err := l.Read(ctx, "acme", "th_1", streams.ID{}, 10)
		if err != nil || len(page.Events) != 0 || !page.Last.IsZero() || !page.Trimmed.IsZero() {
			t.Fatalf("empty thread: Read = %+v, %v", page, err)
		}
		ids, err := l.Append(ctx, "acme", "th_1", []streams.Event{event("status", 0), event("text", 1), event("done", 2)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, appendN(t, l, "acme", "th_1", 2)...)
		for i := 1; i < len(ids); i++ {
			if !ids[i-1].Less(ids[i]) {
				t.Fatalf("ids not increasing: %v", ids)
			}
		}
		if ids[1] != ids[0].Next() || ids[2] != ids[1].Next() {
			t.Errorf("one append's ids are not consecutive: %v", ids[:3])
		}

		page, err = l.Read(ctx, "acme", "th_1", streams.ID{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) != 5 || page.Last != ids[4] || !page.Trimmed.IsZero() {
			t.Fatalf("Read = %d events, last %v, trimmed %v", len(page.Events), page.Last, page.Trimmed)
		}
		want := event("text", 1)
		want.ID, want.ThreadID = ids[1], "th_1"
		if got := page.Events[1]; got.ID != want.ID || got.ThreadID != want.ThreadID || got.RunID != want.RunID ||
			got.TaskID != want.TaskID || got.TraceID != want.TraceID || got.Type != want.Type ||
			!got.TS.Equal(want.TS) || string(got.Data) != string(want.Data) {
			t.Errorf("event = %+v\nwant    %+v", got, want)
		}

		page, err = l.Read(ctx, "acme", "th_1", ids[1], 2)
		if err != nil || len(page.Events) != 2 || page.Events[0].ID != ids[2] || page.Events[1].ID != ids[3] {
			t.Fatalf("Read after %v limit 2 = %+v, %v", ids[1], page.Events, err)
		}
		page, err = l.Read(ctx, "acme", "th_1", ids[4], 10)
		if err != nil || len(page.Events) != 0 || page.Last != ids[4] {
			t.Fatalf("Read after last = %+v, %v", page, err)
		}
		page, err = l.Read(ctx, "acme", "th_1", streams.ID{}, 0)
		if err != nil || len(page.Events) != 0 || page.Last != ids[4] {
			t.Fatalf("Read limit 0 = %+v, %v", page, err)
		}
		page, err = l.Read(ctx, "acme", "th_1", streams.ID{Ms: ^uint64(0), Seq: ^uint64(0)}, 10)
		if err != nil || len(page.Events) != 0 {
			t.Fatalf("Read after the largest id = %+v, %v", page, err)
		}
		if ids, err := l.Append(ctx, "acme", "th_1", nil); err != nil || len(ids) != 0 {
			t.Fatalf("empty Append = %v, %v", ids, err)
		}
		_, err = l.Append(ctx, "acme", "nope", nil)
		wantCode(t, err, vigil.NotFound)
		_, err = l.Append(ctx, "acme", "th_1", []streams.Event{{Type: "text", Data: json.RawMessage(`{bad`)}})
		wantCode(t, err, vigil.Invalid)
	})
}

func TestClock(t *testing.T) {
	ctx := context.Background()
	var now atomic.Int64 // milliseconds
	l := open(t, redistest.Prefix(t), redis.Options{Now: func() time.Time { return time.UnixMilli(now.Load()) }})
	newThread(t, l, "acme", "th_1")

	step := func(ms int64, n int, want ...streams.ID) {
		t.Helper()
		now.Store(ms)
		evs := make([]streams.Event, n)
		for i := range evs {
			evs[i] = event("text", i)
		}
		got, err := l.Append(ctx, "acme", "th_1", evs)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("at %d ms: ids %v, want %v", ms, got, want)
		}
	}
	step(0, 1, streams.ID{Ms: 0, Seq: 1}) // the zero ID is never an event's
	step(1000, 2, streams.ID{Ms: 1000}, streams.ID{Ms: 1000, Seq: 1})
	step(1000, 1, streams.ID{Ms: 1000, Seq: 2})                   // clock stands still
	step(500, 1, streams.ID{Ms: 1000, Seq: 3})                    // clock steps back
	step(1_732_600_000_123, 1, streams.ID{Ms: 1_732_600_000_123}) // and on
	step(1_732_600_000_122, 1, streams.ID{Ms: 1_732_600_000_123, Seq: 1})
}

func TestServerClock(t *testing.T) {
	l := open(t, redistest.Prefix(t), redis.Options{})
	newThread(t, l, "acme", "th_1")
	before := time.Now().UnixMilli()
	ids := appendN(t, l, "acme", "th_1", 1)
	// Redis runs on this machine, so its clock is ours within a little.
	if d := int64(ids[0].Ms) - before; d < -1000 || d > 1000 {
		t.Errorf("id %v is %d ms from now", ids[0], d)
	}
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	t.Run("exact", func(t *testing.T) {
		// MaxLen below 20 has a slack of 1: every append trims to MaxLen.
		l := open(t, redistest.Prefix(t), redis.Options{MaxLen: 3})
		newThread(t, l, "acme", "th_1")
		ids := appendN(t, l, "acme", "th_1", 10)
		page, err := l.Read(ctx, "acme", "th_1", streams.ID{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) != 3 || page.Events[0].ID != ids[7] || page.Trimmed != ids[6] || page.Last != ids[9] {
			t.Fatalf("got %d events from %v, trimmed %v, last %v; want 3 from %v, trimmed %v, last %v",
				len(page.Events), page.Events[0].ID, page.Trimmed, page.Last, ids[7], ids[6], ids[9])
		}
		// One append larger than MaxLen keeps its own newest MaxLen events.
		evs := make([]streams.Event, 8)
		for i := range evs {
			evs[i] = event("text", i)
		}
		big, err := l.Append(ctx, "acme", "th_1", evs)
		if err != nil {
			t.Fatal(err)
		}
		page, err = l.Read(ctx, "acme", "th_1", streams.ID{}, 100)
		if err != nil || len(page.Events) != 3 || page.Trimmed != big[4] || page.Events[0].ID != big[5] {
			t.Fatalf("after a big append: %d events, trimmed %v (want %v), %v", len(page.Events), page.Trimmed, big[4], err)
		}
	})
	t.Run("batched", func(t *testing.T) {
		const maxLen = 100 // slack 10
		l := open(t, redistest.Prefix(t), redis.Options{MaxLen: maxLen})
		newThread(t, l, "acme", "th_1")
		ids := appendN(t, l, "acme", "th_1", 345)
		page, err := l.Read(ctx, "acme", "th_1", streams.ID{}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		n := len(page.Events)
		if n < maxLen || n >= maxLen+10 {
			t.Fatalf("kept %d events, want %d to %d", n, maxLen, maxLen+9)
		}
		first := len(ids) - n
		if page.Events[0].ID != ids[first] || page.Trimmed != ids[first-1] || page.Last != ids[len(ids)-1] {
			t.Fatalf("first kept %v, trimmed %v, last %v; want %v, %v, %v",
				page.Events[0].ID, page.Trimmed, page.Last, ids[first], ids[first-1], ids[len(ids)-1])
		}
		// A cursor inside the trimmed range reads from the oldest kept event.
		page, err = l.Read(ctx, "acme", "th_1", ids[3], 1)
		if err != nil || page.Events[0].ID != ids[first] || !ids[3].Less(page.Trimmed) {
			t.Fatalf("read from a trimmed cursor: %+v, %v", page, err)
		}
	})
}

// TestKeys checks that every key lives under the prefix, is scoped by
// tenant, and that a thread's keys share one Cluster hash tag.
func TestKeys(t *testing.T) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	l := open(t, prefix, redis.Options{})
	newThread(t, l, "acme", "th_1")
	newThread(t, l, "beta", "th_1")
	appendN(t, l, "acme", "th_1", 2)
	appendN(t, l, "beta", "th_1", 1)
	keys, err := client(t).Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		prefix + ":t:acme:th:{acme/th_1}:meta": true, prefix + ":t:acme:th:{acme/th_1}:ev": true,
		prefix + ":t:beta:th:{beta/th_1}:meta": true, prefix + ":t:beta:th:{beta/th_1}:ev": true,
	}
	if len(keys) != len(want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	for _, k := range keys {
		if !want[k] {
			t.Errorf("unexpected key %q", k)
		}
	}
}

// TestCrossProcess runs two Logs with their own clients over one prefix, as
// two vigil processes would: what A appends, B reads and follows.
func TestCrossProcess(t *testing.T) {
	modes(t, func(t *testing.T, opts redis.Options) {
		ctx := context.Background()
		prefix := redistest.Prefix(t)
		a, b := open(t, prefix, opts), open(t, prefix, opts)
		newThread(t, a, "acme", "th_1")
		if _, err := b.Thread(ctx, "acme", "th_1"); err != nil {
			t.Fatal(err)
		}

		type tail struct {
			evs []streams.Event
			err error
			at  time.Time
		}
		got := make(chan tail, 1)
		go func() {
			evs, err := b.Tail(ctx, "acme", "th_1", streams.ID{}, 10, 5*time.Second)
			got <- tail{evs, err, time.Now()}
		}()
		time.Sleep(100 * time.Millisecond) // let B block in XREAD
		sent := time.Now()
		ids, err := a.Append(ctx, "acme", "th_1", []streams.Event{event("text", 1), event("text", 2)})
		if err != nil {
			t.Fatal(err)
		}
		r := <-got
		if r.err != nil || len(r.evs) != 2 || r.evs[0].ID != ids[0] || r.evs[1].ID != ids[1] || string(r.evs[1].Data) != `{"n":2}` {
			t.Fatalf("B's Tail = %+v, %v; want ids %v", r.evs, r.err, ids)
		}
		if d := r.at.Sub(sent); d > time.Second {
			t.Errorf("B saw A's append after %v", d)
		}

		// Appends from both sides interleave with strictly increasing ids.
		var wg sync.WaitGroup
		for _, l := range []*redis.Log{a, b} {
			wg.Go(func() { appendN(t, l, "acme", "th_1", 50) })
		}
		wg.Wait()
		page, err := a.Read(ctx, "acme", "th_1", streams.ID{}, 1000)
		if err != nil || len(page.Events) != 102 {
			t.Fatalf("Read = %d events, %v", len(page.Events), err)
		}
		for i := 1; i < len(page.Events); i++ {
			if !page.Events[i-1].ID.Less(page.Events[i].ID) {
				t.Fatalf("ids out of order at %d: %v, %v", i, page.Events[i-1].ID, page.Events[i].ID)
			}
		}
	})
}

func TestTail(t *testing.T) {
	ctx := context.Background()
	l := open(t, redistest.Prefix(t), redis.Options{MaxFollowers: 1})
	newThread(t, l, "acme", "th_1")
	ids := appendN(t, l, "acme", "th_1", 3)

	// Events already there come back at once.
	evs, err := l.Tail(ctx, "acme", "th_1", ids[0], 1, time.Minute)
	if err != nil || len(evs) != 1 || evs[0].ID != ids[1] {
		t.Fatalf("Tail = %+v, %v", evs, err)
	}
	// Nothing new: nil, nil once wait passes; zero wait does not block.
	start := time.Now()
	evs, err = l.Tail(ctx, "acme", "th_1", ids[2], 10, 200*time.Millisecond)
	if d := time.Since(start); err != nil || evs != nil || d < 200*time.Millisecond || d > 2*time.Second {
		t.Fatalf("idle Tail = %v, %v after %v", evs, err, d)
	}
	if evs, err := l.Tail(ctx, "acme", "th_1", ids[2], 10, 0); err != nil || evs != nil {
		t.Fatalf("Tail with no wait = %v, %v", evs, err)
	}

	// A cancelled Tail returns ctx.Err() at once, not when wait passes.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	_, err = l.Tail(cctx, "acme", "th_1", ids[2], 10, time.Minute)
	if d := time.Since(start); !errors.Is(err, context.Canceled) || d > 500*time.Millisecond {
		t.Fatalf("cancelled Tail = %v after %v", err, d)
	}
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = l.Tail(dctx, "acme", "th_1", ids[2], 10, time.Minute)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Tail past its deadline = %v", err)
	}

	// With MaxFollowers 1 a second follower waits for the slot, and gives up
	// quietly when its wait passes; the first still gets its event.
	got := make(chan []streams.Event, 1)
	go func() {
		evs, err := l.Tail(ctx, "acme", "th_1", ids[2], 10, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- evs
	}()
	time.Sleep(1500 * time.Millisecond) // the abandoned reads above have let go
	evs, err = l.Tail(ctx, "acme", "th_1", ids[2], 10, 100*time.Millisecond)
	if err != nil || evs != nil {
		t.Fatalf("second follower = %v, %v", evs, err)
	}
	more := appendN(t, l, "acme", "th_1", 1)
	if evs := <-got; len(evs) != 1 || evs[0].ID != more[0] {
		t.Fatalf("first follower got %+v, want %v", evs, more)
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := redis.Open(context.Background(), "http://nope", redis.Options{})
	wantCode(t, err, vigil.Invalid)
	_, err = redis.Open(context.Background(), redistest.URL(t), redis.Options{Prefix: "a{b}"})
	wantCode(t, err, vigil.Invalid)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = redis.Open(ctx, "redis://127.0.0.1:1/0", redis.Options{})
	wantCode(t, err, vigil.Unavailable)
	if !strings.Contains(err.Error(), "store/redis: ping") {
		t.Errorf("error %q lacks context", err)
	}
}

// TestNew checks New over a caller's client, which it must not close.
func TestNew(t *testing.T) {
	ctx := context.Background()
	c := client(t)
	l := redis.New(c, redis.Options{Prefix: redistest.Prefix(t)})
	newThread(t, l, "acme", "th_1")
	ids := appendN(t, l, "acme", "th_1", 1)
	evs, err := l.Tail(ctx, "acme", "th_1", streams.ID{}, 10, time.Second)
	if err != nil || len(evs) != 1 || evs[0].ID != ids[0] {
		t.Fatalf("Tail = %+v, %v", evs, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("Close closed the caller's client: %v", err)
	}
}

// BenchmarkAppend measures single-event appends from many goroutines, to
// one thread and spread over 1,000, with and without the coalescer.
func BenchmarkAppend(b *testing.B) {
	for _, coalesce := range []bool{false, true} {
		for _, threads := range []int{1, 1000} {
			b.Run(fmt.Sprintf("coalesce=%v/threads=%d", coalesce, threads), func(b *testing.B) {
				l := open(b, redistest.Prefix(b), redis.Options{Coalesce: coalesce})
				names := make([]string, threads)
				for i := range names {
					names[i] = fmt.Sprintf("th_%d", i)
					newThread(b, l, "acme", names[i])
				}
				ev := []streams.Event{event("text_delta", 1)}
				var next atomic.Int64
				b.SetParallelism(32) // 32 appenders per CPU
				b.ResetTimer()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					ctx := context.Background()
					for pb.Next() {
						th := names[int(next.Add(1))%threads]
						if _, err := l.Append(ctx, "acme", th, ev); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkReadAll10k replays a 10,000-event thread in pages of 1,000.
func BenchmarkReadAll10k(b *testing.B) {
	const n, page = 10_000, 1000
	ctx := context.Background()
	l := open(b, redistest.Prefix(b), redis.Options{})
	newThread(b, l, "acme", "th_1")
	evs := make([]streams.Event, 500)
	for i := range evs {
		evs[i] = event("text_delta", i)
	}
	for range n / len(evs) {
		if _, err := l.Append(ctx, "acme", "th_1", evs); err != nil {
			b.Fatal(err)
		}
	}
	iters := 0
	start := time.Now()
	for b.Loop() {
		iters++
		var after streams.ID
		got := 0
		for {
			p, err := l.Read(ctx, "acme", "th_1", after, page)
			if err != nil {
				b.Fatal(err)
			}
			if len(p.Events) == 0 {
				break
			}
			got += len(p.Events)
			after = p.Events[len(p.Events)-1].ID
		}
		if got != n {
			b.Fatalf("read %d events, want %d", got, n)
		}
	}
	b.ReportMetric(float64(iters*n)/time.Since(start).Seconds(), "events/s")
}

// TestTake: a bucket of 2 gives two tokens, then names the wait for the
// next (30 s at 2 a minute, less the time since); buckets are per key, and
// per deployment prefix.
func TestTake(t *testing.T) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	l, other := open(t, prefix, redis.Options{}), open(t, prefix+"x", redis.Options{})
	for i := range 3 {
		wait, err := l.Take(ctx, "key:k1", 2)
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 && wait != 0 || i == 2 && (wait < 29*time.Second || wait > 30*time.Second) {
			t.Errorf("take %d: wait %s; want 0, 0, then about 30s", i+1, wait)
		}
	}
	for _, c := range []struct {
		l   *redis.Log
		key string
	}{{l, "key:k2"}, {other, "key:k1"}} {
		if wait, err := c.l.Take(ctx, c.key, 2); err != nil || wait != 0 {
			t.Errorf("another bucket (%s): wait %s, %v; want a token", c.key, wait, err)
		}
	}
	if wait, err := l.Take(ctx, "key:k3", 0); err != nil || wait != 0 {
		t.Errorf("no quota: %s, %v", wait, err)
	}
}

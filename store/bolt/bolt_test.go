package bolt_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/storetest"
	"github.com/vigilhq/vigil/streams"
)

func TestLog(t *testing.T) {
	storetest.Log(t, func(t *testing.T, opts storetest.LogOptions) streams.Log {
		return open(t, filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{MaxLen: opts.MaxLen, Now: opts.Now})
	})
}

// open opens path and closes it when the test ends.
func open(t testing.TB, path string, opts bolt.Options) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

const baseMs = 1_795_000_000_000

// TestReopen closes and reopens the file: the thread, its events, its
// watermark and its last ID survive, and IDs keep increasing even when the
// clock reads earlier than before.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vigil.db")
	var ms atomic.Int64
	ms.Store(baseMs)
	now := func() time.Time { return time.UnixMilli(ms.Load()) }

	db, err := bolt.Open(path, bolt.Options{MaxLen: 10, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	th := streams.Thread{ID: "th_1", Tenant: "acme", Title: "reopened", CreatedAt: time.Unix(1_795_000_000, 5)}
	if err := db.CreateThread(ctx, th); err != nil {
		t.Fatal(err)
	}
	ids, err := db.Append(ctx, "acme", "th_1", events("before", 15))
	if err != nil {
		t.Fatal(err)
	}
	before, err := db.Read(ctx, "acme", "th_1", streams.ID{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := ids[4]; before.Trimmed != want || len(before.Events) != 10 {
		t.Fatalf("before close: %d events, Trimmed %v; want 10 and %v", len(before.Events), before.Trimmed, want)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	ms.Store(baseMs - 60_000) // the clock stepped back while the server was down
	db = open(t, path, bolt.Options{MaxLen: 10, Now: now})
	got, err := db.Thread(ctx, "acme", "th_1")
	if err != nil || got.Title != th.Title || !got.CreatedAt.Equal(th.CreatedAt) {
		t.Fatalf("Thread after reopen = %+v, %v; want %+v", got, err, th)
	}
	after, err := db.Read(ctx, "acme", "th_1", streams.ID{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if after.Trimmed != before.Trimmed || after.Last != before.Last || len(after.Events) != len(before.Events) {
		t.Fatalf("after reopen: Trimmed %v Last %v %d events; want %v %v %d",
			after.Trimmed, after.Last, len(after.Events), before.Trimmed, before.Last, len(before.Events))
	}
	for i := range after.Events {
		a, b := after.Events[i], before.Events[i]
		if a.ID != b.ID || string(a.Data) != string(b.Data) || !a.TS.Equal(b.TS) || a.Type != b.Type {
			t.Fatalf("event %d after reopen = %+v, want %+v", i, a, b)
		}
	}
	more, err := db.Append(ctx, "acme", "th_1", events("after", 3))
	if err != nil {
		t.Fatal(err)
	}
	if want := before.Last.Next(); more[0] != want {
		t.Errorf("first ID after reopen = %v, want %v", more[0], want)
	}
	page, err := db.Read(ctx, "acme", "th_1", streams.ID{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if page.Last != more[2] || page.Trimmed != ids[7] {
		t.Errorf("after appending 3 more: Last %v Trimmed %v, want %v and %v", page.Last, page.Trimmed, more[2], ids[7])
	}
}

// TestReopenSmallerMaxLen checks that lowering MaxLen takes effect at the
// next append.
func TestReopenSmallerMaxLen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vigil.db")
	db, err := bolt.Open(path, bolt.Options{MaxLen: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateThread(ctx, streams.Thread{ID: "th_1", Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	ids, err := db.Append(ctx, "acme", "th_1", events("x", 20))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, path, bolt.Options{MaxLen: 5})
	last, err := db.Append(ctx, "acme", "th_1", events("y", 1))
	if err != nil {
		t.Fatal(err)
	}
	page, err := db.Read(ctx, "acme", "th_1", streams.ID{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 5 || page.Trimmed != ids[15] || page.Events[4].ID != last[0] {
		t.Errorf("after lowering MaxLen to 5: %d events, Trimmed %v; want 5 ending at %v, Trimmed %v",
			len(page.Events), page.Trimmed, last[0], ids[15])
	}
}

// TestOpenLocked checks that a second Open of a file in use gives up after
// Options.Timeout.
func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	open(t, path, bolt.Options{})
	start := time.Now()
	db, err := bolt.Open(path, bolt.Options{Timeout: 200 * time.Millisecond})
	if err == nil {
		db.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
		t.Errorf("second Open failed after %v, want about 200ms: %v", d, err)
	}
}

// TestClosed checks that Close ends a waiting Tail and that later calls fail.
func TestClosed(t *testing.T) {
	ctx := t.Context()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateThread(ctx, streams.Thread{ID: "th_1", Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := db.Tail(ctx, "acme", "th_1", streams.ID{}, 10, time.Minute)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if vigil.ErrorCode(err) != vigil.Unavailable {
			t.Errorf("Tail ended by Close: %v, want an unavailable error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Tail still waiting 5s after Close")
	}
	if _, err := db.Append(ctx, "acme", "th_1", events("x", 1)); err == nil {
		t.Error("Append after Close succeeded")
	}
	if err := db.Ping(ctx); err == nil {
		t.Error("Ping after Close succeeded")
	}
}

// TestInvalidData checks that an Append whose Data is not JSON is refused
// as a whole.
func TestInvalidData(t *testing.T) {
	ctx := t.Context()
	db := open(t, filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err := db.CreateThread(ctx, streams.Thread{ID: "th_1", Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	evs := events("ok", 2)
	evs[1].Data = json.RawMessage(`{"unterminated":`)
	if _, err := db.Append(ctx, "acme", "th_1", evs); vigil.ErrorCode(err) != vigil.Invalid {
		t.Errorf("Append with invalid data: %v, want an invalid error", err)
	}
	page, err := db.Read(ctx, "acme", "th_1", streams.ID{}, 10)
	if err != nil || len(page.Events) != 0 || !page.Last.IsZero() {
		t.Errorf("after a refused Append: %d events, Last %v, %v; want none", len(page.Events), page.Last, err)
	}
}

// TestPanicInCommit checks that an append whose commit panics (here, in the
// clock) does not leave later appends waiting for a commit that never comes.
func TestPanicInCommit(t *testing.T) {
	ctx := t.Context()
	var broken atomic.Bool
	now := func() time.Time {
		if broken.Load() {
			panic("clock broke")
		}
		return time.Now()
	}
	db := open(t, filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{Now: now})
	if err := db.CreateThread(ctx, streams.Thread{ID: "th_1", Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	broken.Store(true)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Append with a panicking clock did not panic")
			}
		}()
		db.Append(ctx, "acme", "th_1", events("boom", 1))
	}()
	broken.Store(false)

	done := make(chan error, 1)
	go func() {
		_, err := db.Append(ctx, "acme", "th_1", events("after", 1))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Append after a panicking commit: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Append still waiting 5s after a panicking commit")
	}
	page, err := db.Read(ctx, "acme", "th_1", streams.ID{}, 10)
	if err != nil || len(page.Events) != 1 {
		t.Errorf("after a panicking commit and one good append: %d events, %v; want 1", len(page.Events), err)
	}
}

const crashEnv = "VIGIL_BOLT_CRASH_FILE"

// TestKill9 appends from a child process, kills it with SIGKILL while
// appends are under way, and checks that the file opens and holds every
// event whose Append had returned.
func TestKill9(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "vigil.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []streams.ID
	lines := bufio.NewScanner(out)
	for len(acked) < 300 && lines.Scan() {
		id, err := streams.ParseID(lines.Text())
		if err != nil {
			continue // the test framework's own output
		}
		acked = append(acked, id)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if len(acked) < 300 {
		t.Fatalf("child acknowledged only %d appends", len(acked))
	}

	db := open(t, path, bolt.Options{})
	page, err := db.Read(t.Context(), "acme", "th_1", streams.ID{}, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[streams.ID]bool, len(page.Events))
	var prev streams.ID
	for _, ev := range page.Events {
		if !prev.Less(ev.ID) {
			t.Fatalf("IDs out of order after the crash: %v then %v", prev, ev.ID)
		}
		prev = ev.ID
		have[ev.ID] = true
	}
	for _, id := range acked {
		if !have[id] {
			t.Errorf("acknowledged event %v lost in the crash", id)
		}
	}
	ids, err := db.Append(t.Context(), "acme", "th_1", events("after", 1))
	if err != nil || !page.Last.Less(ids[0]) {
		t.Errorf("Append after the crash = %v, %v; want an ID after %v", ids, err, page.Last)
	}
	t.Logf("%d appends acknowledged before SIGKILL, %d events in the file", len(acked), len(page.Events))
}

// crashChild appends from four goroutines until it is killed, printing each
// ID once its Append has returned.
func crashChild(path string) {
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	if err := db.CreateThread(ctx, streams.Thread{ID: "th_1", Tenant: "acme"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				ids, err := db.Append(ctx, "acme", "th_1", events(fmt.Sprintf("g%d-%d", g, i), 1+i%2))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				for _, id := range ids {
					fmt.Fprintln(w, id)
				}
				w.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func events(tag string, n int) []streams.Event {
	evs := make([]streams.Event, n)
	for i := range evs {
		evs[i] = streams.Event{
			Type: "text_delta",
			TS:   time.Now(),
			Data: json.RawMessage(fmt.Sprintf(`{"message_id":"msg_%s","delta":"The weather in Beijing tomorrow: sunny, 3 to 12 degrees, %d"}`, tag, i)),
		}
	}
	return evs
}

// BenchmarkAppend measures fsync'd single-event appends: from one goroutine
// (the latency of one commit), and from 32 goroutines to one thread and to
// 32 threads, one each (throughput with group commit). ns/op is wall time
// per event across all goroutines.
func BenchmarkAppend(b *testing.B) {
	b.Run("Serial", func(b *testing.B) {
		db := benchDB(b, 1)
		ev := events("bench", 1)
		for b.Loop() {
			if _, err := db.Append(b.Context(), "acme", "th_0", ev); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	for _, bc := range []struct {
		name    string
		threads int
	}{{"Parallel32/OneThread", 1}, {"Parallel32/ManyThreads", 32}} {
		b.Run(bc.name, func(b *testing.B) {
			db := benchDB(b, bc.threads)
			var next atomic.Int64
			b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				th := fmt.Sprintf("th_%d", int(next.Add(1))%bc.threads)
				ev := events("bench", 1)
				for pb.Next() {
					if _, err := db.Append(b.Context(), "acme", th, ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkReadAll10k reads a thread of 10,000 events from the start in
// pages of 500, as a replay does.
func BenchmarkReadAll10k(b *testing.B) {
	const total, pageSize = 10_000, 500
	db := benchDB(b, 1)
	for i := range total / 100 {
		if _, err := db.Append(b.Context(), "acme", "th_0", events(fmt.Sprint(i), 100)); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		var after streams.ID
		n := 0
		for {
			page, err := db.Read(b.Context(), "acme", "th_0", after, pageSize)
			if err != nil {
				b.Fatal(err)
			}
			if len(page.Events) == 0 {
				break
			}
			n += len(page.Events)
			after = page.Events[len(page.Events)-1].ID
		}
		if n != total {
			b.Fatalf("read %d events, want %d", n, total)
		}
	}
	b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "events/s")
}

func benchDB(b *testing.B, threads int) *bolt.DB {
	db := open(b, filepath.Join(b.TempDir(), "vigil.db"), bolt.Options{})
	for i := range threads {
		if err := db.CreateThread(b.Context(), streams.Thread{ID: fmt.Sprintf("th_%d", i), Tenant: "acme"}); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// LogOptions configure a log made for one subtest.
type LogOptions struct {
	// MaxLen is the retention limit: events kept per thread. The suite uses
	// small values such as 10 where it tests retention, and values large
	// enough never to trim everywhere else.
	MaxLen int
	// Now is the clock the log reads to assign event IDs' milliseconds; nil
	// means time.Now. The suite passes a clock it controls where it checks
	// exact IDs, including one that stands still and one that steps back.
	Now func() time.Time
}

// The suite's timing. longWait is a Tail wait the suite never expects to
// elapse; a Tail that should return early must do so within prompt.
const (
	longWait  = 10 * time.Second
	prompt    = longWait / 4
	shortWait = 300 * time.Millisecond

	// noTrim is the MaxLen of subtests that must never see retention.
	noTrim = 100_000
	// maxLen is the MaxLen of the retention subtests.
	maxLen = 10
)

// retentionSlack is how many events beyond MaxLen a backend may keep: a
// tenth of MaxLen, rounded up (1 for MaxLen 10), so that a backend may trim
// in small batches. It may never keep fewer than MaxLen, and Trimmed must be
// exact whatever it keeps.
func retentionSlack(maxLen int) int { return (maxLen + 9) / 10 }

// Log runs the conformance suite. newLog is called once per subtest and must
// return a log that shares nothing with logs of other subtests (own file or
// own key prefix).
//
// Beyond the clauses of the streams.Log contract, the suite pins down what
// the contract leaves open, so that both backends behave alike:
//
//   - Errors are compared by vigil.ErrorCode, context errors with errors.Is,
//     so backends may wrap them.
//   - An event's TS reads back as the same instant to the nanosecond
//     (time.Time.Equal; the zone and monotonic reading need not survive), and
//     a zero TS reads back as zero. Data reads back byte for byte, including
//     insignificant whitespace, HTML characters and escapes.
//   - Tail on a thread the tenant does not have is a vigil.NotFound error,
//     returned at once rather than after the wait.
//   - Read returns full pages: min(limit, events after the cursor).
//   - Retention keeps at least the newest MaxLen events and at most
//     MaxLen plus a tenth (rounded up) after every Append; Trimmed is exactly
//     the newest removed ID, and Last the newest appended.
//   - Event IDs are per thread: with a clock that stands still, the first
//     event of every thread is (ms, 0) however busy other threads are.
func Log(t *testing.T, newLog func(t *testing.T, opts LogOptions) streams.Log) {
	t.Run("Threads", func(t *testing.T) {
		t.Run("CreateAndGet", func(t *testing.T) { testCreateAndGet(t, newLog) })
		t.Run("DuplicateIsConflict", func(t *testing.T) { testDuplicateThread(t, newLog) })
		t.Run("MissingIDsRejected", func(t *testing.T) { testMissingIDs(t, newLog) })
		t.Run("MissingIsNotFound", func(t *testing.T) { testMissingThread(t, newLog) })
	})
	t.Run("Tenancy", func(t *testing.T) {
		t.Run("OtherTenantSeesNothing", func(t *testing.T) { testOtherTenant(t, newLog) })
		t.Run("SameThreadIDIndependent", func(t *testing.T) { testSameIDTwoTenants(t, newLog) })
		t.Run("NoKeySeparatorCollisions", func(t *testing.T) { testSeparatorCollisions(t, newLog) })
	})
	t.Run("Append", func(t *testing.T) {
		t.Run("IDsFollowAfterRule", func(t *testing.T) { testIDsFollowClock(t, newLog) })
		t.Run("IDsArePerThread", func(t *testing.T) { testIDsPerThread(t, newLog) })
		t.Run("EnvelopeRoundTrip", func(t *testing.T) { testEnvelopeRoundTrip(t, newLog) })
		t.Run("ZeroTimestampRoundTrip", func(t *testing.T) { testZeroTS(t, newLog) })
		t.Run("IgnoresGivenIDAndThreadID", func(t *testing.T) { testIgnoresIDAndThread(t, newLog) })
		t.Run("MultiEventIsContiguous", func(t *testing.T) { testMultiEvent(t, newLog) })
	})
	t.Run("Read", func(t *testing.T) {
		t.Run("EmptyThread", func(t *testing.T) { testReadEmpty(t, newLog) })
		t.Run("StrictlyAfterCursor", func(t *testing.T) { testReadCursor(t, newLog) })
		t.Run("Paging", func(t *testing.T) { testReadPaging(t, newLog) })
		t.Run("LimitZero", func(t *testing.T) { testReadLimitZero(t, newLog) })
	})
	t.Run("Retention", func(t *testing.T) {
		t.Run("KeepsNewestAndRecordsTrimmed", func(t *testing.T) { testRetention(t, newLog) })
		t.Run("OtherThreadsUntouched", func(t *testing.T) { testRetentionPerThread(t, newLog) })
	})
	t.Run("Tail", func(t *testing.T) {
		t.Run("ReturnsAvailableAtOnce", func(t *testing.T) { testTailAvailable(t, newLog) })
		t.Run("WakesOnAppend", func(t *testing.T) { testTailWakes(t, newLog) })
		t.Run("TimeoutIsEmpty", func(t *testing.T) { testTailTimeout(t, newLog) })
		t.Run("Canceled", func(t *testing.T) { testTailCanceled(t, newLog) })
		t.Run("DeadlineExceeded", func(t *testing.T) { testTailDeadline(t, newLog) })
		t.Run("MissingIsNotFound", func(t *testing.T) { testTailMissing(t, newLog) })
	})
	t.Run("Concurrency", func(t *testing.T) {
		t.Run("OneThread", func(t *testing.T) { testConcurrentOneThread(t, newLog) })
		t.Run("ManyThreads", func(t *testing.T) { testConcurrentManyThreads(t, newLog) })
		t.Run("FollowerSeesEveryEventOnce", func(t *testing.T) { testFollower(t, newLog) })
	})
	t.Run("Ping", func(t *testing.T) {
		l := newLog(t, LogOptions{MaxLen: noTrim})
		if err := l.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

type newLogFunc = func(t *testing.T, opts LogOptions) streams.Log

// --- threads ---

func testCreateAndGet(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	want := streams.Thread{
		ID:        "th_1",
		Tenant:    "acme",
		Title:     "Beijing weather, 每天 8 点",
		CreatedAt: time.Date(2026, 11, 22, 8, 0, 0, 123456789, time.FixedZone("UTC+8", 8*3600)),
	}
	if err := l.CreateThread(t.Context(), want); err != nil {
		t.Fatalf("CreateThread: %v", err)
	}
	got, err := l.Thread(t.Context(), "acme", "th_1")
	if err != nil {
		t.Fatalf("Thread: %v", err)
	}
	checkThread(t, got, want)
}

func testDuplicateThread(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	first := mustCreate(t, l, "acme", "th_1")
	ids := mustAppend(t, l, "acme", "th_1", numbered("a", 2)...)

	dup := first
	dup.Title = "a second thread with the same id"
	err := l.CreateThread(t.Context(), dup)
	wantCode(t, err, vigil.Conflict, "CreateThread of an existing id")

	got, err := l.Thread(t.Context(), "acme", "th_1")
	if err != nil {
		t.Fatalf("Thread after conflict: %v", err)
	}
	checkThread(t, got, first)
	page := readAll(t, l, "acme", "th_1")
	checkIDs(t, "events after a conflicting create", eventIDs(page.Events), ids)
}

func testMissingIDs(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	now := time.Now()
	if err := l.CreateThread(t.Context(), streams.Thread{ID: "th_1", CreatedAt: now}); err == nil {
		t.Errorf("CreateThread without a tenant succeeded, want an error")
	}
	if err := l.CreateThread(t.Context(), streams.Thread{Tenant: "acme", CreatedAt: now}); err == nil {
		t.Errorf("CreateThread without an id succeeded, want an error")
	}
}

func testMissingThread(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	ctx := t.Context()
	mustCreate(t, l, "acme", "th_other") // the tenant exists, the thread does not

	for _, tenant := range []string{"acme", "nobody"} {
		_, err := l.Thread(ctx, tenant, "th_missing")
		wantCode(t, err, vigil.NotFound, "Thread("+tenant+"/th_missing)")
		_, err = l.Append(ctx, tenant, "th_missing", numbered("x", 1))
		wantCode(t, err, vigil.NotFound, "Append("+tenant+"/th_missing)")
		_, err = l.Read(ctx, tenant, "th_missing", streams.ID{}, 10)
		wantCode(t, err, vigil.NotFound, "Read("+tenant+"/th_missing)")
	}
	// Appending to a missing thread must not create it.
	_, err := l.Thread(ctx, "acme", "th_missing")
	wantCode(t, err, vigil.NotFound, "Thread after a failed Append")
}

// --- tenancy ---

func testOtherTenant(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	ctx := t.Context()
	mustCreate(t, l, "acme", "th_1")
	ids := mustAppend(t, l, "acme", "th_1", numbered("acme", 3)...)
	mustCreate(t, l, "globex", "th_2") // globex exists as a tenant

	_, err := l.Thread(ctx, "globex", "th_1")
	wantCode(t, err, vigil.NotFound, "Thread of another tenant's thread")
	_, err = l.Read(ctx, "globex", "th_1", streams.ID{}, 10)
	wantCode(t, err, vigil.NotFound, "Read of another tenant's thread")
	_, err = l.Append(ctx, "globex", "th_1", numbered("globex", 1))
	wantCode(t, err, vigil.NotFound, "Append to another tenant's thread")
	start := time.Now()
	_, err = l.Tail(ctx, "globex", "th_1", streams.ID{}, 10, longWait)
	wantCode(t, err, vigil.NotFound, "Tail of another tenant's thread")
	if d := time.Since(start); d > prompt {
		t.Errorf("Tail of another tenant's thread took %v, want an answer at once", d)
	}

	// The owner's thread is untouched by the failed append.
	page := readAll(t, l, "acme", "th_1")
	checkIDs(t, "owner's events", eventIDs(page.Events), ids)
	checkData(t, page.Events, numbered("acme", 3))
}

func testSameIDTwoTenants(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	ctx := t.Context()
	a := mustCreate(t, l, "acme", "th_1")
	b := streams.Thread{ID: "th_1", Tenant: "globex", Title: "globex's own", CreatedAt: a.CreatedAt.Add(time.Hour)}
	if err := l.CreateThread(ctx, b); err != nil {
		t.Fatalf("CreateThread of the same id in another tenant: %v, want success", err)
	}
	mustAppend(t, l, "acme", "th_1", numbered("acme", 2)...)
	mustAppend(t, l, "globex", "th_1", numbered("globex", 5)...)
	mustAppend(t, l, "acme", "th_1", numbered("acme-more", 1)...)

	gotA, err := l.Thread(ctx, "acme", "th_1")
	if err != nil {
		t.Fatalf("Thread(acme): %v", err)
	}
	checkThread(t, gotA, a)
	gotB, err := l.Thread(ctx, "globex", "th_1")
	if err != nil {
		t.Fatalf("Thread(globex): %v", err)
	}
	checkThread(t, gotB, b)

	pa := readAll(t, l, "acme", "th_1")
	checkData(t, pa.Events, append(numbered("acme", 2), numbered("acme-more", 1)...))
	pb := readAll(t, l, "globex", "th_1")
	checkData(t, pb.Events, numbered("globex", 5))
	if pa.Last != pa.Events[len(pa.Events)-1].ID || pb.Last != pb.Events[len(pb.Events)-1].ID {
		t.Errorf("Last: acme %v, globex %v; want each tenant's own newest ID", pa.Last, pb.Last)
	}
}

// testSeparatorCollisions uses tenant and thread ids that a backend joining
// them into one key with '_', '.' or '-' would confuse.
func testSeparatorCollisions(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	pairs := [][2]string{}
	for _, sep := range []string{"_", ".", "-"} {
		pairs = append(pairs, [2]string{"a", "b" + sep + "c"}, [2]string{"a" + sep + "b", "c"})
	}
	for i, p := range pairs {
		mustCreate(t, l, p[0], p[1])
		mustAppend(t, l, p[0], p[1], numbered(fmt.Sprint(i), i+1)...)
	}
	for i, p := range pairs {
		page := readAll(t, l, p[0], p[1])
		t.Run("tenant="+p[0]+",thread="+p[1], func(t *testing.T) { checkData(t, page.Events, numbered(fmt.Sprint(i), i+1)) })
	}
}

// --- append ---

const baseMs = 1_795_000_000_000 // a millisecond in 2026

func testIDsFollowClock(t *testing.T, newLog newLogFunc) {
	clk := newClock(baseMs)
	l := newLog(t, LogOptions{MaxLen: noTrim, Now: clk.now})
	mustCreate(t, l, "acme", "th_1")

	var got []streams.ID
	step := func(ms int64, n int) {
		t.Helper()
		clk.set(ms)
		got = append(got, mustAppend(t, l, "acme", "th_1", numbered("x", n)...)...)
	}
	step(baseMs, 1)      // the clock's millisecond, sequence 0
	step(baseMs, 1)      // clock stands still: next sequence
	step(baseMs-1000, 2) // clock steps back: IDs never go back
	step(baseMs+1000, 2) // clock moves on: new millisecond, sequence 0 then 1
	step(baseMs+1000, 1)
	step(baseMs+999, 1) // back by one millisecond

	want := []streams.ID{
		{Ms: baseMs, Seq: 0},
		{Ms: baseMs, Seq: 1},
		{Ms: baseMs, Seq: 2},
		{Ms: baseMs, Seq: 3},
		{Ms: baseMs + 1000, Seq: 0},
		{Ms: baseMs + 1000, Seq: 1},
		{Ms: baseMs + 1000, Seq: 2},
		{Ms: baseMs + 1000, Seq: 3},
	}
	checkIDs(t, "IDs returned by Append", got, want)
	page := readAll(t, l, "acme", "th_1")
	checkIDs(t, "IDs read back", eventIDs(page.Events), want)
	if page.Last != want[len(want)-1] {
		t.Errorf("Last = %v, want %v", page.Last, want[len(want)-1])
	}
}

func testIDsPerThread(t *testing.T, newLog newLogFunc) {
	clk := newClock(baseMs)
	l := newLog(t, LogOptions{MaxLen: noTrim, Now: clk.now})
	mustCreate(t, l, "acme", "busy")
	mustCreate(t, l, "acme", "quiet")
	mustCreate(t, l, "globex", "busy")
	mustAppend(t, l, "acme", "busy", numbered("b", 5)...)
	for _, th := range [][2]string{{"acme", "quiet"}, {"globex", "busy"}} {
		ids := mustAppend(t, l, th[0], th[1], numbered("q", 2)...)
		checkIDs(t, "first IDs of "+th[0]+"/"+th[1], ids, []streams.ID{{Ms: baseMs}, {Ms: baseMs, Seq: 1}})
	}
}

func testEnvelopeRoundTrip(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	mustCreate(t, l, "acme", "th_1")
	ts := time.Date(2026, 11, 22, 8, 0, 0, 123456789, time.FixedZone("UTC+8", 8*3600))
	want := []streams.Event{{
		RunID:   "run_0123456789abcdef0123",
		TaskID:  "tsk_0123456789abcdef0123",
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Type:    "tool_call",
		TS:      ts,
		// Whitespace, HTML characters, escapes and a non-canonical number
		// all survive only if the log stores the bytes it was given.
		Data: json.RawMessage(`{"call_id":"c1", "tool":"weather", "args": {"city":"北京", "html":"<b>&amp;</b>"}, "n": 1.50, "esc":"\u2028\"q\"\n"}`),
	}, {
		Type: "status",
		TS:   ts.Add(time.Nanosecond).UTC(),
		Data: json.RawMessage(`{"phase":"thinking"}`),
	}, {
		RunID: "run_2",
		Type:  "table",
		TS:    time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		Data:  json.RawMessage(`[1, 2,3 ]`),
	}}
	ids := mustAppend(t, l, "acme", "th_1", want...)

	page, err := l.Read(t.Context(), "acme", "th_1", streams.ID{}, 100)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	checkEnvelopes(t, "Read", page.Events, "th_1", ids, want)

	tail, err := l.Tail(t.Context(), "acme", "th_1", streams.ID{}, 100, longWait)
	if err != nil {
		t.Fatalf("Tail: %v", err)
	}
	checkEnvelopes(t, "Tail", tail, "th_1", ids, want)
}

func testZeroTS(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	mustCreate(t, l, "acme", "th_1")
	want := []streams.Event{{Type: "text", Data: json.RawMessage(`{"text":"no timestamp"}`)}}
	ids := mustAppend(t, l, "acme", "th_1", want...)
	page := readAll(t, l, "acme", "th_1")
	checkEnvelopes(t, "Read", page.Events, "th_1", ids, want)
}

func testIgnoresIDAndThread(t *testing.T, newLog newLogFunc) {
	clk := newClock(baseMs)
	l := newLog(t, LogOptions{MaxLen: noTrim, Now: clk.now})
	mustCreate(t, l, "acme", "th_1")
	mustCreate(t, l, "acme", "th_2")
	ev := event("status", `{"phase":"queued"}`)
	ev.ID = streams.ID{Ms: baseMs + 5000, Seq: 7}
	ev.ThreadID = "th_2"
	ids := mustAppend(t, l, "acme", "th_1", ev)
	if want := (streams.ID{Ms: baseMs}); ids[0] != want {
		t.Errorf("Append used the given ID: got %v, want %v", ids[0], want)
	}
	page := readAll(t, l, "acme", "th_1")
	if len(page.Events) != 1 || page.Events[0].ThreadID != "th_1" || page.Events[0].ID != ids[0] {
		t.Errorf("read back %+v, want one event with ID %v in th_1", page.Events, ids[0])
	}
	if other := readAll(t, l, "acme", "th_2"); len(other.Events) != 0 {
		t.Errorf("the event's own ThreadID th_2 received %d events, want 0", len(other.Events))
	}
}

func testMultiEvent(t *testing.T, newLog newLogFunc) {
	clk := newClock(baseMs)
	l := newLog(t, LogOptions{MaxLen: noTrim, Now: clk.now})
	mustCreate(t, l, "acme", "th_1")
	first := mustAppend(t, l, "acme", "th_1", numbered("one", 1)...)
	batch := numbered("batch", 5)
	ids := mustAppend(t, l, "acme", "th_1", batch...)
	want := []streams.ID{{Ms: baseMs, Seq: 1}, {Ms: baseMs, Seq: 2}, {Ms: baseMs, Seq: 3}, {Ms: baseMs, Seq: 4}, {Ms: baseMs, Seq: 5}}
	checkIDs(t, "IDs of a five-event Append with a standing clock", ids, want)

	page := readAll(t, l, "acme", "th_1")
	checkIDs(t, "IDs read back", eventIDs(page.Events), append(first, ids...))
	checkData(t, page.Events, append(numbered("one", 1), batch...))
}

// --- read ---

func testReadEmpty(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	mustCreate(t, l, "acme", "th_1")
	for _, limit := range []int{0, 10} {
		page, err := l.Read(t.Context(), "acme", "th_1", streams.ID{}, limit)
		if err != nil {
			t.Fatalf("Read(limit %d): %v", limit, err)
		}
		if len(page.Events) != 0 || !page.Last.IsZero() || !page.Trimmed.IsZero() {
			t.Errorf("Read(limit %d) of an empty thread = %+v, want no events and zero Last and Trimmed", limit, page)
		}
	}
}

func testReadCursor(t *testing.T, newLog newLogFunc) {
	clk := newClock(baseMs)
	l := newLog(t, LogOptions{MaxLen: noTrim, Now: clk.now})
	mustCreate(t, l, "acme", "th_1")
	a := mustAppend(t, l, "acme", "th_1", numbered("a", 5)...) // baseMs-0 … baseMs-4
	clk.set(baseMs + 1000)
	b := mustAppend(t, l, "acme", "th_1", numbered("b", 3)...) // baseMs+1000-0 … -2
	all := append(append([]streams.ID{}, a...), b...)
	last := all[len(all)-1]

	tests := []struct {
		name  string
		after streams.ID
		want  []streams.ID
	}{
		{"zero is the start", streams.ID{}, all},
		{"excludes the cursor's own event", a[2], all[3:]},
		{"first event", a[0], all[1:]},
		{"between events", streams.ID{Ms: baseMs, Seq: 99}, b},
		{"between milliseconds", streams.ID{Ms: baseMs + 500}, b},
		{"ms alone means ms-0", mustParse(t, fmt.Sprint(baseMs+1000)), b[1:]},
		{"at Last", last, nil},
		{"beyond Last", streams.ID{Ms: baseMs + 99_000}, nil},
	}
	for _, tt := range tests {
		page, err := l.Read(t.Context(), "acme", "th_1", tt.after, 100)
		if err != nil {
			t.Errorf("%s: Read after %v: %v", tt.name, tt.after, err)
			continue
		}
		checkIDs(t, fmt.Sprintf("%s: Read after %v", tt.name, tt.after), eventIDs(page.Events), tt.want)
		if page.Last != last {
			t.Errorf("%s: Last = %v, want %v", tt.name, page.Last, last)
		}
	}
}

func testReadPaging(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	mustCreate(t, l, "acme", "th_1")
	var all []streams.ID
	for range 4 {
		all = append(all, mustAppend(t, l, "acme", "th_1", numbered("p", 3)...)...)
	} // 12 events
	last := all[len(all)-1]

	for _, limit := range []int{1, 5, 12, 100} {
		var got []streams.ID
		var after streams.ID
		for i := 0; ; i++ {
			if i > len(all)+1 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			page, err := l.Read(t.Context(), "acme", "th_1", after, limit)
			if err != nil {
				t.Fatalf("limit %d: Read after %v: %v", limit, after, err)
			}
			if want := min(limit, len(all)-len(got)); len(page.Events) != want {
				t.Fatalf("limit %d: Read after %v returned %d events, want %d", limit, after, len(page.Events), want)
			}
			if page.Last != last {
				t.Errorf("limit %d: Last = %v, want %v", limit, page.Last, last)
			}
			if len(page.Events) == 0 {
				break
			}
			got = append(got, eventIDs(page.Events)...)
			after = page.Events[len(page.Events)-1].ID
		}
		checkIDs(t, fmt.Sprintf("pages of %d", limit), got, all)
	}
}

func testReadLimitZero(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	mustCreate(t, l, "acme", "th_1")
	ids := mustAppend(t, l, "acme", "th_1", numbered("z", 4)...)
	for _, after := range []streams.ID{{}, ids[1]} {
		page, err := l.Read(t.Context(), "acme", "th_1", after, 0)
		if err != nil {
			t.Fatalf("Read(limit 0): %v", err)
		}
		if len(page.Events) != 0 {
			t.Errorf("Read(limit 0) after %v returned %d events, want none", after, len(page.Events))
		}
		if page.Last != ids[3] || !page.Trimmed.IsZero() {
			t.Errorf("Read(limit 0) after %v: Last %v Trimmed %v, want Last %v Trimmed 0-0", after, page.Last, page.Trimmed, ids[3])
		}
	}
}

// --- retention ---

func testRetention(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: maxLen})
	mustCreate(t, l, "acme", "th_1")

	var all []streams.ID
	var data []streams.Event
	var lastTrimmed streams.ID
	// Single appends up to and past MaxLen, one Append larger than MaxLen on
	// its own, then more single and small multi-event appends.
	sizes := []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 25, 1, 1, 1, 1, 1, 3, 3, 1}
	for step, n := range sizes {
		evs := numbered(fmt.Sprintf("r%d", step), n)
		ids := mustAppend(t, l, "acme", "th_1", evs...)
		all = append(all, ids...)
		data = append(data, evs...)

		page := readAll(t, l, "acme", "th_1")
		kept := eventIDs(page.Events)
		what := fmt.Sprintf("after append %d (%d events appended, MaxLen %d)", step, len(all), maxLen)
		if lo, hi := min(len(all), maxLen), maxLen+retentionSlack(maxLen); len(kept) < lo || len(kept) > hi {
			t.Fatalf("%s: %d events kept, want between %d and %d", what, len(kept), lo, hi)
		}
		removed := len(all) - len(kept)
		checkIDs(t, what+": kept events are the newest", kept, all[removed:])
		checkData(t, page.Events, data[removed:])
		var wantTrimmed streams.ID
		if removed > 0 {
			wantTrimmed = all[removed-1]
		}
		if page.Trimmed != wantTrimmed {
			t.Fatalf("%s: Trimmed = %v, want %v (the newest removed event)", what, page.Trimmed, wantTrimmed)
		}
		if page.Trimmed.Less(lastTrimmed) {
			t.Fatalf("%s: Trimmed went back from %v to %v", what, lastTrimmed, page.Trimmed)
		}
		lastTrimmed = page.Trimmed
		if page.Last != all[len(all)-1] {
			t.Fatalf("%s: Last = %v, want %v", what, page.Last, all[len(all)-1])
		}

		// A limit-zero read reports the same positions, and a cursor before
		// Trimmed still reads what is kept.
		zero, err := l.Read(t.Context(), "acme", "th_1", streams.ID{}, 0)
		if err != nil {
			t.Fatalf("%s: Read(limit 0): %v", what, err)
		}
		if zero.Trimmed != wantTrimmed || zero.Last != page.Last {
			t.Fatalf("%s: Read(limit 0) Trimmed %v Last %v, want %v and %v", what, zero.Trimmed, zero.Last, wantTrimmed, page.Last)
		}
		if removed > 1 {
			early, err := l.Read(t.Context(), "acme", "th_1", all[0], 1)
			if err != nil {
				t.Fatalf("%s: Read after a trimmed cursor: %v", what, err)
			}
			checkIDs(t, what+": Read after a trimmed cursor", eventIDs(early.Events), all[removed:removed+1])
		}
	}
	if lastTrimmed.IsZero() {
		t.Fatalf("retention never trimmed after %d events with MaxLen %d", len(all), maxLen)
	}
}

func testRetentionPerThread(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: maxLen})
	mustCreate(t, l, "acme", "quiet")
	mustCreate(t, l, "acme", "busy")
	mustCreate(t, l, "globex", "busy")
	quiet := mustAppend(t, l, "acme", "quiet", numbered("q", 4)...)
	other := mustAppend(t, l, "globex", "busy", numbered("g", maxLen)...)
	for range 3 {
		mustAppend(t, l, "acme", "busy", numbered("b", maxLen)...)
	}
	for _, c := range []struct {
		tenant, thread string
		want           []streams.ID
	}{{"acme", "quiet", quiet}, {"globex", "busy", other}} {
		page := readAll(t, l, c.tenant, c.thread)
		checkIDs(t, c.tenant+"/"+c.thread+" after another thread was trimmed", eventIDs(page.Events), c.want)
		if !page.Trimmed.IsZero() {
			t.Errorf("%s/%s: Trimmed = %v, want 0-0", c.tenant, c.thread, page.Trimmed)
		}
	}
}

// --- tail ---

func testTailAvailable(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	mustCreate(t, l, "acme", "th_1")
	ids := mustAppend(t, l, "acme", "th_1", numbered("t", 5)...)

	start := time.Now()
	evs, err := l.Tail(t.Context(), "acme", "th_1", streams.ID{}, 100, longWait)
	if err != nil {
		t.Fatalf("Tail: %v", err)
	}
	if d := time.Since(start); d > prompt {
		t.Errorf("Tail with events available took %v, want an answer at once", d)
	}
	checkIDs(t, "Tail from the start", eventIDs(evs), ids)

	evs, err = l.Tail(t.Context(), "acme", "th_1", ids[1], 2, longWait)
	if err != nil {
		t.Fatalf("Tail: %v", err)
	}
	checkIDs(t, "Tail after the second event, limit 2", eventIDs(evs), ids[2:4])
}

type tailResult struct {
	evs     []streams.Event
	err     error
	elapsed time.Duration
}

func goTail(ctx context.Context, l streams.Log, tenant, thread string, after streams.ID, limit int, wait time.Duration) <-chan tailResult {
	c := make(chan tailResult, 1)
	go func() {
		start := time.Now()
		evs, err := l.Tail(ctx, tenant, thread, after, limit, wait)
		c <- tailResult{evs, err, time.Since(start)}
	}()
	return c
}

func testTailWakes(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	mustCreate(t, l, "acme", "th_1")
	old := mustAppend(t, l, "acme", "th_1", numbered("old", 2)...)

	res := goTail(t.Context(), l, "acme", "th_1", old[1], 10, longWait)
	time.Sleep(100 * time.Millisecond) // let Tail block; the test holds either way
	ids := mustAppend(t, l, "acme", "th_1", numbered("new", 1)...)
	r := <-res
	if r.err != nil {
		t.Fatalf("Tail: %v", r.err)
	}
	if r.elapsed > prompt {
		t.Errorf("Tail woke %v after it started, want well before its %v wait", r.elapsed, longWait)
	}
	checkIDs(t, "Tail woken by an append", eventIDs(r.evs), ids)
	checkData(t, r.evs, numbered("new", 1))
}

func testTailTimeout(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	mustCreate(t, l, "acme", "th_1")
	mustCreate(t, l, "acme", "th_2")
	mustCreate(t, l, "globex", "th_1")
	ids := mustAppend(t, l, "acme", "th_1", numbered("old", 1)...)

	res := goTail(t.Context(), l, "acme", "th_1", ids[0], 10, shortWait)
	// Appends to other threads, including the same id in another tenant,
	// must neither wake the follower with their events nor end its wait.
	for i := range 3 {
		mustAppend(t, l, "acme", "th_2", numbered(fmt.Sprint(i), 1)...)
		mustAppend(t, l, "globex", "th_1", numbered(fmt.Sprint(i), 1)...)
	}
	r := <-res
	if r.err != nil || len(r.evs) != 0 {
		t.Fatalf("Tail past the end = %d events, %v; want none and a nil error", len(r.evs), r.err)
	}
	if r.elapsed < shortWait*3/4 {
		t.Errorf("Tail returned empty after %v, want it to wait %v", r.elapsed, shortWait)
	}
	if r.elapsed > shortWait+prompt {
		t.Errorf("Tail returned %v after it started, want about its %v wait", r.elapsed, shortWait)
	}
}

func testTailCanceled(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	mustCreate(t, l, "acme", "th_1")
	ctx, cancel := context.WithCancel(t.Context())
	res := goTail(ctx, l, "acme", "th_1", streams.ID{}, 10, longWait)
	time.Sleep(100 * time.Millisecond)
	cancel()
	r := <-res
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("Tail with a canceled context: %d events, error %v; want context.Canceled", len(r.evs), r.err)
	}
	if r.elapsed > prompt {
		t.Errorf("Tail returned %v after it started, want soon after cancel", r.elapsed)
	}
}

func testTailDeadline(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	mustCreate(t, l, "acme", "th_1")
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	r := <-goTail(ctx, l, "acme", "th_1", streams.ID{}, 10, longWait)
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Errorf("Tail past its context's deadline: %d events, error %v; want context.DeadlineExceeded", len(r.evs), r.err)
	}
	if r.elapsed > prompt {
		t.Errorf("Tail returned %v after it started, want soon after the 100ms deadline", r.elapsed)
	}
}

func testTailMissing(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	mustCreate(t, l, "acme", "th_other")
	for _, tenant := range []string{"acme", "nobody"} {
		r := <-goTail(t.Context(), l, tenant, "th_missing", streams.ID{}, 10, longWait)
		wantCode(t, r.err, vigil.NotFound, "Tail("+tenant+"/th_missing)")
		if r.elapsed > prompt {
			t.Errorf("Tail of a missing thread took %v, want an answer at once", r.elapsed)
		}
	}
}

// --- concurrency ---

type appendCall struct {
	evs []streams.Event
	ids []streams.ID
}

func testConcurrentOneThread(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	mustCreate(t, l, "acme", "th_1")
	const goroutines, appends = 8, 12

	calls := make([][]appendCall, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range appends {
				evs := numbered(fmt.Sprintf("g%d-%d", g, i), 1+(g+i)%3)
				ids, err := l.Append(t.Context(), "acme", "th_1", evs)
				if err != nil || len(ids) != len(evs) {
					t.Errorf("goroutine %d: Append: %d IDs, %v", g, len(ids), err)
					return
				}
				calls[g] = append(calls[g], appendCall{evs, ids})
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	checkConcurrent(t, l, "acme", "th_1", calls)
}

// checkConcurrent checks a thread against the appends that goroutines made
// to it: every event is there once, with the ID its Append returned, IDs
// strictly increase, each Append's events are adjacent and in order, and each
// goroutine's later appends come after its earlier ones.
func checkConcurrent(t *testing.T, l streams.Log, tenant, thread string, calls [][]appendCall) {
	t.Helper()
	page := readAll(t, l, tenant, thread)
	pos := make(map[streams.ID]int, len(page.Events))
	for i, ev := range page.Events {
		pos[ev.ID] = i
	}
	returned := make(map[streams.ID]bool)
	for g, gc := range calls {
		var prev streams.ID
		for i, c := range gc {
			if !prev.Less(c.ids[0]) {
				t.Errorf("%s/%s: goroutine %d append %d got %v, not after its previous append's %v", tenant, thread, g, i, c.ids[0], prev)
			}
			prev = c.ids[len(c.ids)-1]
			for k, id := range c.ids {
				if returned[id] {
					t.Errorf("%s/%s: ID %v returned twice", tenant, thread, id)
				}
				returned[id] = true
				p, ok := pos[id]
				if !ok {
					t.Errorf("%s/%s: ID %v returned by Append is not in the log", tenant, thread, id)
					continue
				}
				if !bytes.Equal(page.Events[p].Data, c.evs[k].Data) {
					t.Errorf("%s/%s: event %v has data %s, want %s", tenant, thread, id, page.Events[p].Data, c.evs[k].Data)
				}
				if k > 0 && p != pos[c.ids[0]]+k {
					t.Errorf("%s/%s: event %d of a %d-event Append is at %d, want %d (adjacent to the Append's first)", tenant, thread, k, len(c.ids), p, pos[c.ids[0]]+k)
				}
			}
		}
	}
	if len(page.Events) != len(returned) {
		t.Errorf("%s/%s: log holds %d events, Append returned %d IDs", tenant, thread, len(page.Events), len(returned))
	}
}

func testConcurrentManyThreads(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	type key struct{ tenant, thread string }
	var keys []key
	for _, tenant := range []string{"acme", "globex"} {
		for i := range 6 {
			k := key{tenant, fmt.Sprintf("th_%d", i)}
			mustCreate(t, l, k.tenant, k.thread)
			keys = append(keys, k)
		}
	}
	const perThread, appends = 2, 8
	calls := make(map[key][][]appendCall, len(keys))
	for _, k := range keys {
		calls[k] = make([][]appendCall, perThread)
	}
	var wg sync.WaitGroup
	for _, k := range keys {
		for g := range perThread {
			wg.Go(func() {
				for i := range appends {
					evs := numbered(fmt.Sprintf("%s/%s/g%d-%d", k.tenant, k.thread, g, i), 1+i%2)
					ids, err := l.Append(t.Context(), k.tenant, k.thread, evs)
					if err != nil || len(ids) != len(evs) {
						t.Errorf("%v goroutine %d: Append: %d IDs, %v", k, g, len(ids), err)
						return
					}
					calls[k][g] = append(calls[k][g], appendCall{evs, ids})
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, k := range keys {
		checkConcurrent(t, l, k.tenant, k.thread, calls[k])
	}
}

func testFollower(t *testing.T, newLog newLogFunc) {
	l := newLog(t, LogOptions{MaxLen: noTrim})
	mustCreate(t, l, "acme", "th_1")
	const appenders, appends = 3, 20
	total := appenders * appends
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	followed := make(chan []streams.ID, 1)
	go func() {
		var got []streams.ID
		var after streams.ID
		for len(got) < total && ctx.Err() == nil {
			evs, err := l.Tail(ctx, "acme", "th_1", after, 7, time.Second)
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("Tail after %v: %v", after, err)
				}
				break
			}
			for _, ev := range evs {
				if !after.Less(ev.ID) {
					t.Errorf("Tail after %v returned %v", after, ev.ID)
				}
				after = ev.ID
				got = append(got, ev.ID)
			}
		}
		followed <- got
	}()

	var wg sync.WaitGroup
	for g := range appenders {
		wg.Go(func() {
			for i := range appends {
				if _, err := l.Append(ctx, "acme", "th_1", numbered(fmt.Sprintf("f%d-%d", g, i), 1)); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := <-followed
	page := readAll(t, l, "acme", "th_1")
	checkIDs(t, "IDs a Tail follower saw", got, eventIDs(page.Events))
}

// --- helpers ---

// clock is a settable clock safe for concurrent use.
type clock struct{ ms atomic.Int64 }

func newClock(ms int64) *clock {
	c := new(clock)
	c.ms.Store(ms)
	return c
}

func (c *clock) now() time.Time { return time.UnixMilli(c.ms.Load()) }
func (c *clock) set(ms int64)   { c.ms.Store(ms) }

func mustCreate(t *testing.T, l streams.Log, tenant, id string) streams.Thread {
	t.Helper()
	th := streams.Thread{
		ID:        id,
		Tenant:    tenant,
		Title:     "thread " + id + " of " + tenant,
		CreatedAt: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC),
	}
	if err := l.CreateThread(t.Context(), th); err != nil {
		t.Fatalf("CreateThread(%s/%s): %v", tenant, id, err)
	}
	return th
}

func mustAppend(t *testing.T, l streams.Log, tenant, thread string, evs ...streams.Event) []streams.ID {
	t.Helper()
	ids, err := l.Append(t.Context(), tenant, thread, evs)
	if err != nil {
		t.Fatalf("Append(%s/%s, %d events): %v", tenant, thread, len(evs), err)
	}
	if len(ids) != len(evs) {
		t.Fatalf("Append(%s/%s, %d events) returned %d IDs", tenant, thread, len(evs), len(ids))
	}
	return ids
}

func mustParse(t *testing.T, s string) streams.ID {
	t.Helper()
	id, err := streams.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// readAll reads a whole thread in pages; Trimmed and Last are those of the
// final, empty page.
func readAll(t *testing.T, l streams.Log, tenant, thread string) streams.Page {
	t.Helper()
	var all []streams.Event
	var after streams.ID
	for {
		page, err := l.Read(t.Context(), tenant, thread, after, 100)
		if err != nil {
			t.Fatalf("Read(%s/%s after %v): %v", tenant, thread, after, err)
		}
		if len(page.Events) == 0 {
			page.Events = all
			return page
		}
		for _, ev := range page.Events {
			if !after.Less(ev.ID) {
				t.Fatalf("Read(%s/%s after %v) returned %v, not strictly after the cursor and the events before it", tenant, thread, after, ev.ID)
			}
			after = ev.ID
		}
		all = append(all, page.Events...)
	}
}

func event(typ, data string) streams.Event {
	return streams.Event{Type: typ, TS: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC), Data: json.RawMessage(data)}
}

// numbered returns n events whose data carries tag and their index, so that
// a test can tell them apart after a read.
func numbered(tag string, n int) []streams.Event {
	evs := make([]streams.Event, n)
	for i := range evs {
		evs[i] = event("text", fmt.Sprintf(`{"tag":%q,"i":%d}`, tag, i))
	}
	return evs
}

func eventIDs(evs []streams.Event) []streams.ID {
	ids := make([]streams.ID, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	return ids
}

func wantCode(t *testing.T, err error, code vigil.Code, what string) {
	t.Helper()
	if got := vigil.ErrorCode(err); got != code {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func checkIDs(t *testing.T, what string, got, want []streams.ID) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d IDs %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: ID %d is %v, want %v (all: %v, want %v)", what, i, got[i], want[i], got, want)
		}
	}
}

func checkData(t *testing.T, got, want []streams.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("event %d (%v) has data %s, want %s", i, got[i].ID, got[i].Data, want[i].Data)
		}
	}
}

func checkThread(t *testing.T, got, want streams.Thread) {
	t.Helper()
	if got.ID != want.ID || got.Tenant != want.Tenant || got.Title != want.Title || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("thread = %+v, want %+v", got, want)
	}
}

func checkEnvelopes(t *testing.T, what string, got []streams.Event, thread string, ids []streams.ID, want []streams.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
	for i, g := range got {
		w := want[i]
		if g.ID != ids[i] || g.ThreadID != thread {
			t.Errorf("%s: event %d has ID %v in thread %q, want %v in %q", what, i, g.ID, g.ThreadID, ids[i], thread)
		}
		if g.RunID != w.RunID || g.TaskID != w.TaskID || g.TraceID != w.TraceID || g.Type != w.Type {
			t.Errorf("%s: event %d = run %q task %q trace %q type %q, want %q %q %q %q",
				what, i, g.RunID, g.TaskID, g.TraceID, g.Type, w.RunID, w.TaskID, w.TraceID, w.Type)
		}
		if !g.TS.Equal(w.TS) {
			t.Errorf("%s: event %d TS = %s, want %s (the same instant to the nanosecond)",
				what, i, g.TS.Format(time.RFC3339Nano), w.TS.Format(time.RFC3339Nano))
		}
		if !bytes.Equal(g.Data, w.Data) {
			t.Errorf("%s: event %d Data = %s, want byte for byte %s", what, i, g.Data, w.Data)
		}
	}
}

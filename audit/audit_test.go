package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/audit"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/streams"
)

// clock is a test clock, moved by hand, shared by the log (event ids) and
// the recorder (entry times).
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// eachLog runs fn against a real bolt file and a real Redis, both keeping
// maxLen events per thread and taking event ids from c.
func eachLog(t *testing.T, maxLen int, fn func(t *testing.T, log streams.Log, c *clock)) {
	t.Run("bolt", func(t *testing.T) {
		c := newClock()
		db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{MaxLen: maxLen, Now: c.now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		fn(t, db, c)
	})
	t.Run("redis", func(t *testing.T) {
		c := newClock()
		l, err := redis.Open(context.Background(), redistest.URL(t), redis.Options{Prefix: redistest.Prefix(t), MaxLen: maxLen, Now: c.now, MaxFollowers: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		fn(t, l, c)
	})
}

func traced(id string) context.Context { return vigil.WithTraceID(context.Background(), id) }

func TestRecordAndRead(t *testing.T) {
	eachLog(t, 0, func(t *testing.T, log streams.Log, c *clock) {
		rec := &audit.Recorder{Log: log, Now: c.now}
		ctx := context.Background()

		// A tenant without entries has an empty log, not a missing one.
		page, err := rec.Read(ctx, "acme", streams.ID{}, 0)
		if err != nil || len(page.Entries) != 0 || page.More || !page.Next.IsZero() {
			t.Fatalf("empty log: %+v, %v", page, err)
		}

		want := []audit.Entry{
			{Actor: "alice", Roles: []string{"admin"}, Action: "task.create", Target: "tsk_1", Outcome: audit.Succeeded, Status: 201, Route: "POST /v1/tasks"},
			{Actor: "vic", Roles: []string{"viewer"}, Action: audit.ActionDenied, Outcome: audit.Denied, Status: 403, Permission: "keys:manage", Route: "POST /v1/keys"},
			{Actor: "alice", Action: "tool.register", Target: "acme.weather@1", Outcome: audit.Succeeded, Tool: "register_tool"},
		}
		for i, e := range want {
			// What the caller puts in the fields Record sets is ignored.
			e.ID, e.Time, e.TraceID = streams.ID{Ms: 1}, time.Unix(1, 0), "forged"
			if err := rec.Record(traced(fmt.Sprintf("trace%d", i)), "acme", e); err != nil {
				t.Fatalf("Record(%s): %v", e.Action, err)
			}
			c.advance(time.Second)
		}
		// Another tenant's log is another log.
		if err := rec.Record(ctx, "globex", audit.Entry{Actor: "bob", Action: "key.revoke", Target: "k1", Outcome: audit.Succeeded}); err != nil {
			t.Fatal(err)
		}

		page, err = rec.Read(ctx, "acme", streams.ID{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) != len(want) || page.More || page.Missed {
			t.Fatalf("read %d entries (more %v, missed %v), want %d", len(page.Entries), page.More, page.Missed, len(want))
		}
		start := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
		for i, got := range page.Entries {
			w := want[i]
			w.ID = got.ID
			w.Time = start.Add(time.Duration(i) * time.Second)
			w.TraceID = fmt.Sprintf("trace%d", i)
			if !entryEqual(got, w) {
				t.Errorf("entry %d = %+v\nwant %+v", i, got, w)
			}
			if got.ID.Ms != uint64(w.Time.UnixMilli()) {
				t.Errorf("entry %d has id %s, want one in millisecond %d", i, got.ID, w.Time.UnixMilli())
			}
		}
		if page.Next != page.Entries[2].ID {
			t.Errorf("next %s, want the last entry's id %s", page.Next, page.Entries[2].ID)
		}

		// Paging: one at a time, on from Next.
		var ids []streams.ID
		after := streams.ID{}
		for {
			p, err := rec.Read(ctx, "acme", after, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Entries {
				ids = append(ids, e.ID)
			}
			after = p.Next
			if !p.More {
				break
			}
		}
		if len(ids) != 3 || ids[2] != page.Entries[2].ID {
			t.Errorf("paged ids %v", ids)
		}

		g, err := rec.Read(ctx, "globex", streams.ID{}, 0)
		if err != nil || len(g.Entries) != 1 || g.Entries[0].Actor != "bob" {
			t.Errorf("globex's log: %+v, %v", g, err)
		}
	})
}

func entryEqual(a, b audit.Entry) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestFirstRecordsRace has many requests record a tenant's first entries at
// once: the audit thread is created once and keeps every entry.
func TestFirstRecordsRace(t *testing.T) {
	eachLog(t, 0, func(t *testing.T, log streams.Log, c *clock) {
		rec := &audit.Recorder{Log: log, Now: c.now}
		const n = 16
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				e := audit.Entry{Actor: "u", Action: "task.create", Target: fmt.Sprintf("tsk_%d", i), Outcome: audit.Succeeded}
				if err := rec.Record(context.Background(), "acme", e); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		page, err := rec.Read(context.Background(), "acme", streams.ID{}, 0)
		if err != nil || len(page.Entries) != n {
			t.Fatalf("%d entries, %v; want %d", len(page.Entries), err, n)
		}
	})
}

func TestRecordRejects(t *testing.T) {
	eachLog(t, 0, func(t *testing.T, log streams.Log, c *clock) {
		rec := &audit.Recorder{Log: log}
		ok := audit.Entry{Actor: "u", Action: "task.create", Outcome: audit.Succeeded}
		for _, tt := range []struct {
			tenant string
			edit   func(*audit.Entry)
			field  string
		}{
			{"", nil, "tenant"},
			{"a b", nil, "tenant"},
			{"acme", func(e *audit.Entry) { e.Action = "" }, "action"},
			{"acme", func(e *audit.Entry) { e.Action = "create" }, "action"},
			{"acme", func(e *audit.Entry) { e.Action = "Task.Create" }, "action"},
			{"acme", func(e *audit.Entry) { e.Outcome = "" }, "outcome"},
			{"acme", func(e *audit.Entry) { e.Outcome = "failed" }, "outcome"},
		} {
			e := ok
			if tt.edit != nil {
				tt.edit(&e)
			}
			err := rec.Record(context.Background(), tt.tenant, e)
			var ve *vigil.Error
			if vigil.ErrorCode(err) != vigil.Invalid || !asVigil(err, &ve) || ve.Field != tt.field {
				t.Errorf("Record(%q, %+v) = %v, want invalid %s", tt.tenant, e, err, tt.field)
			}
		}
		if page, _ := rec.Read(context.Background(), "acme", streams.ID{}, 0); len(page.Entries) != 0 {
			t.Errorf("rejected entries were stored: %+v", page.Entries)
		}
	})
}

func asVigil(err error, ve **vigil.Error) bool { return errors.As(err, ve) }

// TestSinceTime reads from a time: entries appended at or after it.
func TestSinceTime(t *testing.T) {
	eachLog(t, 0, func(t *testing.T, log streams.Log, c *clock) {
		rec := &audit.Recorder{Log: log, Now: c.now}
		var times []time.Time
		for i := range 4 {
			times = append(times, c.now())
			if err := rec.Record(context.Background(), "acme", audit.Entry{Actor: "u", Action: "task.pause", Target: fmt.Sprintf("tsk_%d", i), Outcome: audit.Succeeded}); err != nil {
				t.Fatal(err)
			}
			c.advance(time.Minute)
		}
		for _, tt := range []struct {
			since string
			want  []string
		}{
			{"", []string{"tsk_0", "tsk_1", "tsk_2", "tsk_3"}},
			{times[2].Format(time.RFC3339), []string{"tsk_2", "tsk_3"}},
			{times[2].Add(-time.Second).Format(time.RFC3339), []string{"tsk_2", "tsk_3"}},
			{times[2].Add(time.Millisecond).Format(time.RFC3339Nano), []string{"tsk_3"}},
			{times[1].In(time.FixedZone("CST", 8*3600)).Format(time.RFC3339), []string{"tsk_1", "tsk_2", "tsk_3"}},
			{"1970-01-01T00:00:00Z", []string{"tsk_0", "tsk_1", "tsk_2", "tsk_3"}},
			{"2000-01-01T00:00:00-05:00", []string{"tsk_0", "tsk_1", "tsk_2", "tsk_3"}},
			{times[3].Add(time.Hour).Format(time.RFC3339), nil},
		} {
			after, err := audit.ParseSince(tt.since)
			if err != nil {
				t.Fatalf("ParseSince(%q): %v", tt.since, err)
			}
			page, err := rec.Read(context.Background(), "acme", after, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range page.Entries {
				got = append(got, e.Target)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("since %s: %v, want %v", tt.since, got, tt.want)
			}
		}
	})
}

func TestParseSince(t *testing.T) {
	for in, want := range map[string]streams.ID{
		"":                          {},
		"0":                         {},
		"1795300000000-3":           {Ms: 1795300000000, Seq: 3},
		"1795300000000":             {Ms: 1795300000000},
		"2026-11-22T08:00:00Z":      {Ms: 1795334400000 - 1, Seq: ^uint64(0)},
		"2026-11-22T08:00:00.5Z":    {Ms: 1795334400500 - 1, Seq: ^uint64(0)},
		"2026-11-22T16:00:00+08:00": {Ms: 1795334400000 - 1, Seq: ^uint64(0)},
	} {
		got, err := audit.ParseSince(in)
		if err != nil || got != want {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "2026-11-22", "1-2-3", "-5", "2026-11-22 08:00:00"} {
		_, err := audit.ParseSince(in)
		var ve *vigil.Error
		if !asVigil(err, &ve) || ve.Code != vigil.Invalid || ve.Field != "since" {
			t.Errorf("ParseSince(%q) = %v, want invalid since", in, err)
		}
	}
}

// TestRetention checks that a reader whose cursor retention passed learns
// that it missed entries.
func TestRetention(t *testing.T) {
	eachLog(t, 3, func(t *testing.T, log streams.Log, c *clock) {
		rec := &audit.Recorder{Log: log, Now: c.now}
		for i := range 30 {
			if err := rec.Record(context.Background(), "acme", audit.Entry{Actor: "u", Action: "task.run", Target: fmt.Sprintf("tsk_%d", i), Outcome: audit.Succeeded}); err != nil {
				t.Fatal(err)
			}
			c.advance(time.Millisecond)
		}
		page, err := rec.Read(context.Background(), "acme", streams.ID{}, 0)
		if err != nil || !page.Missed || len(page.Entries) == 0 || page.Entries[len(page.Entries)-1].Target != "tsk_29" {
			t.Fatalf("after retention: %+v, %v; want missed and the newest entries", page, err)
		}
		again, err := rec.Read(context.Background(), "acme", page.Entries[0].ID, 0)
		if err != nil || again.Missed {
			t.Errorf("from a retained cursor: missed %v, %v", again.Missed, err)
		}
	})
}

func TestReserved(t *testing.T) {
	for id, want := range map[string]bool{
		audit.Thread: true, "audit.2026": true, "audit.": true,
		"audit": false, "th_audit.log": false, "Audit.log": false, "mcp.s1": false, "": false,
	} {
		if got := audit.Reserved(id); got != want {
			t.Errorf("Reserved(%q) = %v, want %v", id, got, want)
		}
	}
	if !vigil.ValidID(audit.Thread) {
		t.Errorf("the audit thread id %q is not a valid id, which every store key needs", audit.Thread)
	}
	if slices.Contains(streams.Types(), audit.EventType) {
		t.Errorf("%q is an event type of the public protocol; clients could post audit events to their threads", audit.EventType)
	}
}

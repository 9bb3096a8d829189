package streams_test

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// FuzzDecodeEvent feeds arbitrary bytes to the decoder of client-posted
// events. It must never panic, must answer every rejection with a
// vigil.Invalid error, and an event it accepts must survive re-encoding
// unchanged and decode into its payload struct, whose own encoding is again
// valid: the schema and the Go types agree.
func FuzzDecodeEvent(f *testing.F) {
	for _, p := range validPayloads {
		data, err := json.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		e := streams.Event{Type: p.EventType(), Data: data}
		f.Add(clientJSON(f, e))
		e.RunID, e.TaskID = "run_1", "tsk_1"
		f.Add(clientJSON(f, e))
	}
	for _, s := range invalidPayloads {
		f.Add([]byte(`{"type":` + strconv.Quote(s.typ) + `,"data":` + s.data + `}`))
	}
	for _, s := range invalidEvents {
		f.Add([]byte(s.in))
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := streams.DecodeEvent(b)
		if err != nil {
			if code := vigil.ErrorCode(err); code != vigil.Invalid {
				t.Fatalf("DecodeEvent(%q) = %v with code %q, want %q", b, err, code, vigil.Invalid)
			}
			return
		}
		if !e.ID.IsZero() || e.ThreadID != "" || e.TraceID != "" || !e.TS.IsZero() {
			t.Fatalf("DecodeEvent(%q) set server fields: %+v", b, e)
		}
		again, err := streams.DecodeEvent(clientJSON(t, e))
		if err != nil {
			t.Fatalf("re-encoded event %s rejected: %v", clientJSON(t, e), err)
		}
		if !reflect.DeepEqual(again, e) {
			t.Fatalf("re-encoded event decodes differently:\n%+v\n%+v", e, again)
		}

		p, err := streams.DecodePayload(e)
		if err != nil {
			t.Fatalf("accepted %s payload %s does not decode: %v", e.Type, e.Data, err)
		}
		if p.EventType() != e.Type {
			t.Fatalf("%s payload decoded as %T", e.Type, p)
		}
		fromGo, err := streams.NewEvent(p)
		if err != nil {
			t.Fatalf("accepted %s payload %s re-encodes from Go as invalid: %v", e.Type, e.Data, err)
		}
		p2, err := streams.DecodePayload(fromGo)
		if err != nil {
			t.Fatal(err)
		}
		if b2, _ := json.Marshal(p2); string(b2) != string(fromGo.Data) {
			t.Fatalf("Go encoding is not stable: %s, then %s", fromGo.Data, b2)
		}
	})
}

// FuzzParseID checks cursors as clients send them: an accepted one is made
// of decimal digits only, re-formats and re-parses to the same ID, and
// orders like the numbers it names; Next and After move strictly forward.
func FuzzParseID(f *testing.F) {
	seeds := []string{"", "0", "1-2", "123", "18446744073709551615-18446744073709551615",
		"-1", "1-", "01-1", "a-b", " 1-2"}
	for _, a := range seeds {
		for _, b := range []string{"0", "1-2", "18446744073709551615-18446744073709551615", a} {
			f.Add(a, b)
		}
	}

	f.Fuzz(func(t *testing.T, sa, sb string) {
		a, errA := streams.ParseID(sa)
		b, errB := streams.ParseID(sb)
		if errA != nil {
			if !strings.Contains(errA.Error(), strconv.Quote(sa)) {
				t.Fatalf("ParseID(%q) = %q, which does not name the input", sa, errA)
			}
		} else {
			checkID(t, sa, a)
		}
		if errA != nil || errB != nil {
			return
		}

		// Less is a strict total order that agrees with the numbers.
		less, greater, equal := a.Less(b), b.Less(a), a == b
		if n := btoi(less) + btoi(greater) + btoi(equal); n != 1 {
			t.Fatalf("%v vs %v: less %v, greater %v, equal %v", a, b, less, greater, equal)
		}
		if want := padded(a) < padded(b); less != want {
			t.Fatalf("%v.Less(%v) = %v, want %v", a, b, less, want)
		}
		// Nothing lies strictly between an ID and its Next.
		if n := a.Next(); a != maxID && a.Less(b) && b.Less(n) {
			t.Fatalf("%v lies between %v and its Next %v", b, a, n)
		}
		// A new event after a, at any clock reading, comes after a.
		if a != maxID {
			for _, ms := range []uint64{0, a.Ms, b.Ms, a.Ms + 1} {
				if got := streams.After(a, ms); !a.Less(got) {
					t.Fatalf("After(%v, %d) = %v, not after it", a, ms, got)
				}
			}
		}
	})
}

// checkID checks the properties of an ID that ParseID accepted from s.
func checkID(t *testing.T, s string, id streams.ID) {
	t.Helper()
	ms, seq, hasSeq := strings.Cut(s, "-")
	for _, part := range []string{ms, seq} {
		if strings.Trim(part, "0123456789") != "" {
			t.Fatalf("ParseID(%q) accepted non-digits", s)
		}
	}
	if s != "" && (ms == "" || (hasSeq && seq == "")) {
		t.Fatalf("ParseID(%q) accepted an empty part", s)
	}
	if s != "" {
		wantMs, _ := strconv.ParseUint(ms, 10, 64)
		wantSeq, _ := strconv.ParseUint(seq, 10, 64) // 0 when absent
		if id != (streams.ID{Ms: wantMs, Seq: wantSeq}) {
			t.Fatalf("ParseID(%q) = %v", s, id)
		}
	}
	again, err := streams.ParseID(id.String())
	if err != nil || again != id {
		t.Fatalf("ParseID(%q) = %v, but its String %q parses as %v, %v", s, id, id.String(), again, err)
	}
	text, _ := id.MarshalText()
	var fromText streams.ID
	if err := fromText.UnmarshalText(text); err != nil || fromText != id {
		t.Fatalf("text round trip of %v: %v, %v", id, fromText, err)
	}
	if n := id.Next(); id != maxID && !id.Less(n) {
		t.Fatalf("%v.Next() = %v, not after it", id, n)
	}
	if id == maxID && id.Next() != (streams.ID{}) {
		t.Fatalf("Next of the largest ID = %v, want the zero ID (callers detect the wrap)", id.Next())
	}
	if id.Ms == math.MaxUint64 && id.Seq == math.MaxUint64 && id != maxID {
		t.Fatal("maxID is wrong")
	}
}

// padded is id in a form whose string order is the numeric order.
func padded(id streams.ID) string { return fmt.Sprintf("%020d-%020d", id.Ms, id.Seq) }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

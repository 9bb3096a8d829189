package streams_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/streams"
)

var maxID = streams.ID{Ms: math.MaxUint64, Seq: math.MaxUint64}

func TestParseID(t *testing.T) {
	tests := []struct {
		in   string
		want streams.ID
	}{
		{"", streams.ID{}},
		{"0", streams.ID{}},
		{"0-0", streams.ID{}},
		{"123", streams.ID{Ms: 123}},
		{"1-2", streams.ID{Ms: 1, Seq: 2}},
		{"01-1", streams.ID{Ms: 1, Seq: 1}},
		{"1732600000000-3", streams.ID{Ms: 1732600000000, Seq: 3}},
		{"18446744073709551615-18446744073709551615", maxID},
	}
	for _, tt := range tests {
		got, err := streams.ParseID(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseID(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseIDRejects(t *testing.T) {
	for _, in := range []string{
		"-1", "1-", "-", "a-b", " 1-2", "1-2 ", "1-2-3", "+1-2", "1--2", "1_000-0", "0x10",
		"18446744073709551616-0", "0-18446744073709551616", "000000000000000000001-0", "١-٢",
	} {
		_, err := streams.ParseID(in)
		if err == nil {
			t.Errorf("ParseID(%q) accepted it", in)
			continue
		}
		if !strings.Contains(err.Error(), strings.TrimSpace(in)) {
			t.Errorf("ParseID(%q) = %q, which does not name the input", in, err)
		}
	}
}

func TestIDString(t *testing.T) {
	if got := (streams.ID{Ms: 1732600000000, Seq: 3}).String(); got != "1732600000000-3" {
		t.Errorf("String = %q", got)
	}
	if got := (streams.ID{}).String(); got != "0-0" {
		t.Errorf("zero String = %q", got)
	}
	b, err := json.Marshal(struct{ ID streams.ID }{streams.ID{Ms: 5, Seq: 1}})
	if err != nil || string(b) != `{"ID":"5-1"}` {
		t.Errorf("JSON = %s, %v", b, err)
	}
	var v struct{ ID streams.ID }
	if err := json.Unmarshal([]byte(`{"ID":"7-8"}`), &v); err != nil || v.ID != (streams.ID{Ms: 7, Seq: 8}) {
		t.Errorf("Unmarshal = %v, %v", v.ID, err)
	}
	if err := json.Unmarshal([]byte(`{"ID":"7-x"}`), &v); err == nil {
		t.Error("Unmarshal of a bad id succeeded")
	}
}

func TestIDLess(t *testing.T) {
	ordered := []streams.ID{
		{}, {Seq: 1}, {Seq: math.MaxUint64}, {Ms: 1}, {Ms: 1, Seq: 1},
		{Ms: 1732600000000}, {Ms: 1732600000000, Seq: 3}, {Ms: math.MaxUint64}, maxID,
	}
	for i, a := range ordered {
		if a.Less(a) {
			t.Errorf("%v.Less(itself)", a)
		}
		for _, b := range ordered[i+1:] {
			if !a.Less(b) || b.Less(a) {
				t.Errorf("%v and %v are out of order", a, b)
			}
		}
	}
	if !(streams.ID{}).IsZero() || (streams.ID{Seq: 1}).IsZero() || (streams.ID{Ms: 1}).IsZero() {
		t.Error("IsZero is wrong")
	}
}

func TestIDNext(t *testing.T) {
	tests := []struct{ in, want streams.ID }{
		{streams.ID{}, streams.ID{Seq: 1}},
		{streams.ID{Ms: 5, Seq: 7}, streams.ID{Ms: 5, Seq: 8}},
		{streams.ID{Ms: 5, Seq: math.MaxUint64}, streams.ID{Ms: 6}},
		// There is no ID after the largest: Next wraps to the zero ID, which
		// callers detect with next.Less(id) (store/redis does).
		{maxID, streams.ID{}},
	}
	for _, tt := range tests {
		if got := tt.in.Next(); got != tt.want {
			t.Errorf("%v.Next() = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestAfter(t *testing.T) {
	last := streams.ID{Ms: 1000, Seq: 4}
	tests := []struct {
		ms   uint64
		want streams.ID
	}{
		{1001, streams.ID{Ms: 1001}},         // the clock moved on
		{1000, streams.ID{Ms: 1000, Seq: 5}}, // same millisecond
		{999, streams.ID{Ms: 1000, Seq: 5}},  // the clock stepped back
		{0, streams.ID{Ms: 1000, Seq: 5}},    // far back
		{math.MaxUint64, streams.ID{Ms: math.MaxUint64}},
	}
	for _, tt := range tests {
		if got := streams.After(last, tt.ms); got != tt.want {
			t.Errorf("After(%v, %d) = %v, want %v", last, tt.ms, got, tt.want)
		}
	}
	if got := streams.After(streams.ID{}, 0); got != (streams.ID{Seq: 1}) {
		t.Errorf("After(zero, 0) = %v, want 0-1: an appended event is never the zero ID", got)
	}
}

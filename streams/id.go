package streams

import (
	"fmt"
	"strconv"
	"strings"
)

// ID is an event's position in its thread's log. It has the shape of a Redis
// stream ID, "<milliseconds>-<sequence>", in both storage modes, and is
// strictly increasing within a thread. The zero ID is before every event.
type ID struct {
	Ms  uint64 // milliseconds since the Unix epoch when the event was appended
	Seq uint64 // position among events appended in the same millisecond
}

// String returns the "ms-seq" form, which is also the SSE event id.
func (id ID) String() string {
	return strconv.FormatUint(id.Ms, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id.Ms == 0 && id.Seq == 0 }

// Less reports whether id comes before other.
func (id ID) Less(other ID) bool {
	return id.Ms < other.Ms || (id.Ms == other.Ms && id.Seq < other.Seq)
}

// Next returns the smallest ID after id: the cursor that excludes id itself.
func (id ID) Next() ID {
	if id.Seq == ^uint64(0) {
		return ID{Ms: id.Ms + 1}
	}
	return ID{Ms: id.Ms, Seq: id.Seq + 1}
}

// After returns the ID a new event appended at ms milliseconds should get so
// that it comes after last: (ms, 0) when the clock moved on, else last's
// millisecond with the next sequence (a clock that stepped back never makes
// IDs go back).
func After(last ID, ms uint64) ID {
	if ms > last.Ms {
		return ID{Ms: ms}
	}
	return last.Next()
}

// ParseID parses a cursor as clients send it in Last-Event-ID or ?after=:
// "ms-seq", or "ms" alone (meaning "ms-0"; the event with that exact ID is
// then excluded like any other cursor). The empty string and "0" are the zero
// ID, the start of the thread. Anything else is an error naming the input.
func ParseID(s string) (ID, error) {
	if s == "" {
		return ID{}, nil
	}
	msPart, seqPart, hasSeq := strings.Cut(s, "-")
	ms, err := parseUint(msPart)
	if err != nil {
		return ID{}, fmt.Errorf("bad event id %q: want <milliseconds>-<sequence>", s)
	}
	if !hasSeq {
		return ID{Ms: ms}, nil
	}
	seq, err := parseUint(seqPart)
	if err != nil {
		return ID{}, fmt.Errorf("bad event id %q: want <milliseconds>-<sequence>", s)
	}
	return ID{Ms: ms, Seq: seq}, nil
}

// parseUint accepts only plain decimal digits: no sign, no spaces, no
// underscores, at most 20 digits, within uint64.
func parseUint(s string) (uint64, error) {
	if s == "" || len(s) > 20 {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// MarshalText implements encoding.TextMarshaler, so an ID is a JSON string.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

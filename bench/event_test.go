package bench

import (
	"testing"

	"github.com/vigilhq/vigil/streams"
)

// The load generator skips validation for speed; its events must still be
// exactly what validation accepts.
func TestTextEventIsValid(t *testing.T) {
	for _, m := range []string{"t=1732600000000000000", `quote " and \ backslash`, "append 7"} {
		e := textEvent(m)
		if err := streams.Validate(e.Type, e.Data); err != nil {
			t.Errorf("%q: %v", m, err)
		}
		got, err := streams.Decode[streams.Text](e)
		if err != nil || got.Text != m {
			t.Errorf("%q decodes to %q, %v", m, got.Text, err)
		}
	}
}

package vigil_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/vigilhq/vigil"
)

func TestValidID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"tsk_5c61e40b63e207c1ff28", true},
		{"acme.prod-1", true},
		{"A", true},
		{strings.Repeat("a", 128), true},
		{"", false},
		{strings.Repeat("a", 129), false},
		{"a b", false},
		{"a/b", false},
		{"a:b", false},
		{"é", false},
		{"a\x00", false},
	} {
		if got := vigil.ValidID(tc.id); got != tc.want {
			t.Errorf("ValidID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

// FuzzValidID holds ValidID to the rule it states, written as a regexp.
func FuzzValidID(f *testing.F) {
	rule := regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
	for _, s := range []string{"", "a", "run_1.x-y", "a b", "\xff", strings.Repeat("z", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := vigil.ValidID(s), rule.MatchString(s); got != want {
			t.Fatalf("ValidID(%q) = %v, the rule says %v", s, got, want)
		}
	})
}

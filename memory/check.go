package memory

import (
	"strings"

	"github.com/vigilhq/vigil"
)

// The checks below are the Store contract's rules on its arguments; every
// Store implementation applies them, so a bad argument fails the same way
// on every backend.

// CheckIDs rejects ids that could not have come through vigil.ValidID, as
// stores build keys from them. names name the ids, in order, for the error.
func CheckIDs(names []string, ids ...string) error {
	for i, id := range ids {
		if !vigil.ValidID(id) {
			return vigil.FieldError(names[i], "invalid %s id %q", names[i], id)
		}
	}
	return nil
}

// The names CheckIDs takes for a profile's, a thread's and a fact's ids.
var (
	UserIDNames   = []string{"tenant", "user"}
	ThreadIDNames = []string{"tenant", "thread"}
	FactIDNames   = []string{"tenant", "thread", "id"}
)

// CheckTerms rejects terms Store.AddFact and Store.FactCandidates refuse:
// empty, longer than MaxTermBytes, or holding a NUL byte.
func CheckTerms(terms []string) error {
	for _, t := range terms {
		if t == "" || len(t) > MaxTermBytes || strings.IndexByte(t, 0) >= 0 {
			return vigil.FieldError("terms", "a term must be 1 to %d bytes with no NUL, got %q", MaxTermBytes, t)
		}
	}
	return nil
}

// CheckLimit rejects a list limit below 1.
func CheckLimit(limit int) error {
	if limit < 1 {
		return vigil.FieldError("limit", "must be at least 1, got %d", limit)
	}
	return nil
}

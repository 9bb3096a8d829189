package toolsregistry

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// Error is a failed tool call as the model reads it and as a tool_error
// event carries it: what went wrong, what was expected and whether the same
// call may succeed later. Its Code classifies it for the edges through
// vigil.ErrorCode (Invalid, Forbidden, NotFound, TooMany, Unavailable,
// Internal): errors.As finds a *vigil.Error with the same code, field and
// message in its chain, and the cause, if any, after it.
type Error struct {
	Code vigil.Code
	// Tool and Version name the tool when the reference resolved.
	Tool    string
	Version int
	// Field is the argument at fault, a dotted path ("date", "rows.2"), for
	// invalid arguments; "" otherwise.
	Field   string
	Message string
	// Expected is an excerpt of the input schema describing Field.
	Expected json.RawMessage
	// Retryable says whether the same call may succeed if made again.
	Retryable bool
	// RetryAfter, when positive, is how long to wait before retrying: the
	// refill of a rate limit or the rest of an open breaker's pause.
	RetryAfter time.Duration
	// Err is the underlying cause, for logs; it may hold details that
	// Message leaves out.
	Err error
}

// Error returns the field and message, as the model sees them.
func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Unwrap returns a *vigil.Error with e's code, field and message, so that
// vigil.ErrorCode and vigil.ErrorMessage work on e, and the cause.
func (e *Error) Unwrap() []error {
	errs := []error{&vigil.Error{Code: e.Code, Field: e.Field, Message: e.Message}}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// ToolError returns the payload of the tool_error event that reports e for
// the call callID.
func (e *Error) ToolError(callID string) streams.ToolError {
	te := streams.ToolError{
		CallID:    callID,
		Tool:      e.Tool,
		Error:     e.Error(),
		Expected:  e.Expected,
		Retryable: e.Retryable,
	}
	if e.Version > 0 {
		te.Version = strconv.Itoa(e.Version)
	}
	return te
}

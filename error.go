package vigil

import (
	"errors"
	"fmt"
)

// Code classifies an error for the edges: httpapi maps it to an HTTP status,
// mcpserver to a tool result or JSON-RPC code. There are few codes on purpose.
type Code string

// The error codes. Their HTTP statuses are given for orientation; the mapping
// itself lives in httpapi.
const (
	Invalid      Code = "invalid"      // 400: the request is malformed or breaks a rule
	Unauthorized Code = "unauthorized" // 401: no or bad credentials
	Forbidden    Code = "forbidden"    // 403: authenticated but not allowed
	NotFound     Code = "not_found"    // 404: no such thing in this tenant
	Conflict     Code = "conflict"     // 409: exists already, or an illegal state change
	TooMany      Code = "rate_limited" // 429: over a quota
	Unavailable  Code = "unavailable"  // 503: a backend does not answer
	Internal     Code = "internal"     // 500: a bug or an unexpected failure
)

// Error is an error a user can act on: a code, a message that says what went
// wrong in the user's terms, and, for invalid input, the field at fault
// ("store.redis.url", "schedule.cron").
type Error struct {
	Code    Code
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Errorf returns an *Error with code c and a formatted message.
func Errorf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an Invalid error about one field.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, Internal for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the user-facing message of err: the *Error's own text
// when there is one (without the wrapping context, which is for logs), else a
// generic message that leaks no internals.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return "internal error"
}

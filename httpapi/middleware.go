package httpapi

import (
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
)

// recover turns a panic in a handler into a 500 and a log line, so one bad
// request never takes the server down.
func (s *Server) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.opts.Logger.ErrorContext(r.Context(), "panic in handler", "panic", v, "stack", string(debug.Stack()))
				s.error(w, r, vigil.Errorf(vigil.Internal, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

var (
	// traceparentPattern is W3C Trace Context: version-traceid-parentid-flags.
	traceparentPattern = regexp.MustCompile(`^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$`)
	requestIDPattern   = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
)

// traceIDOf returns the trace id a request carries: the trace id of a valid
// traceparent header, else a well-formed X-Request-ID, else a new one.
func traceIDOf(r *http.Request) string {
	if m := traceparentPattern.FindStringSubmatch(strings.TrimSpace(r.Header.Get("traceparent"))); m != nil && m[1] != strings.Repeat("0", 32) {
		return m[1]
	}
	if id := strings.TrimSpace(r.Header.Get("X-Request-ID")); requestIDPattern.MatchString(id) {
		return id
	}
	return vigil.NewTraceID()
}

// trace gives every request a trace id, in its context (so it reaches every
// log line and every event the request causes) and in the X-Request-ID
// response header.
func (s *Server) trace(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := traceIDOf(r)
		w.Header().Set("X-Request-ID", id)
		next.ServeHTTP(w, r.WithContext(vigil.WithTraceID(r.Context(), id)))
	})
}

// statusRecorder remembers the status a handler wrote. It forwards Flush and
// the rest through Unwrap, so http.ResponseController still reaches the
// connection (SSE needs that).
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush forwards to the connection, for handlers (mcp-go's streamable HTTP)
// that look for http.Flusher directly instead of using ResponseController.
func (w *statusRecorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// accessLog writes one structured line per request, with its trace id.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		s.opts.Logger.InfoContext(r.Context(), "request",
			"method", r.Method, "path", r.URL.Path, "status", rec.status,
			"bytes", rec.bytes, "duration_ms", time.Since(start).Milliseconds())
	})
}

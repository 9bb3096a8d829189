package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/agent"
)

// messageRequest is the body of POST /v1/threads/{id}/messages.
type messageRequest struct {
	// Text is what the user said.
	Text string `json:"text"`
	// TZ is the client's IANA time zone, used when the user's profile
	// names none.
	TZ string `json:"tz"`
}

// messageResponse answers POST /v1/threads/{id}/messages.
type messageResponse struct {
	ThreadID  string `json:"thread_id"`
	MessageID string `json:"message_id"`
}

// turnTimeout bounds one turn of the assistant. The turn runs on after the
// client hangs up, so that it is never left half appended.
const turnTimeout = 2 * time.Minute

// postMessage is POST /v1/threads/{id}/messages: a user's message to the
// main agent. The assistant answers on the thread's event stream (status,
// reasoning, then a clarification, a task card or text, then done); the
// request returns 202 with the id of the text event that recorded the
// message once the whole turn is appended, so a client may replay it or
// follow it live over SSE while it waits. A missing thread is 404, an
// empty message 400, and no assistant on this server 503.
func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) {
	_, id, ok := s.threadOf(w, r)
	if !ok {
		return
	}
	if s.opts.Assistant == nil {
		s.error(w, r, vigil.Errorf(vigil.Unavailable, "the assistant is not available on this server"))
		return
	}
	var req messageRequest
	if err := s.decodeBody(w, r, &req, false); err != nil {
		s.error(w, r, err)
		return
	}
	in := agent.Input{Text: req.Text}
	if tz := strings.TrimSpace(req.TZ); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil || tz == "Local" {
			s.error(w, r, vigil.FieldError("tz", "%q is not an IANA time zone such as Asia/Shanghai", req.TZ))
			return
		}
		in.Location = loc
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), turnTimeout)
	defer cancel()
	turn, err := s.opts.Assistant.Handle(ctx, id, in)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, messageResponse{ThreadID: id, MessageID: turn.MessageID})
}

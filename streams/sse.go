package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// SSEOptions configure ServeSSE. The zero value means the defaults.
type SSEOptions struct {
	// Heartbeat is the interval of the ": ping" comment that keeps proxies
	// from closing a quiet stream; it is sent on that interval whether or
	// not events flow. Default 15s.
	Heartbeat time.Duration
	// PageSize is how many events one read of the history returns.
	// Default 500.
	PageSize int
	// WriteTimeout bounds each write to the client, so a client that stops
	// reading frees its handler. Default 10s.
	WriteTimeout time.Duration
	// Follow keeps the stream open for new events after the history; without
	// it the response ends after the history (replay as SSE).
	Follow bool
	// Now is the clock of synthetic events. Default time.Now.
	Now func() time.Time
}

func (o SSEOptions) withDefaults() SSEOptions {
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.PageSize <= 0 {
		o.PageSize = 500
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// WarningReplayGap is the code of the warning sent to a client whose cursor
// is older than what retention kept.
const WarningReplayGap = "replay_gap"

// ServeSSE streams a thread to w as Server-Sent Events: every retained event
// strictly after the cursor after, then (with opts.Follow) each new event as
// it is appended, with a heartbeat comment while idle. Each event is one SSE
// message whose id is the event ID, whose event name is its type and whose
// data is its envelope as JSON, so a client that reconnects with the last id
// it saw in Last-Event-ID receives every later event exactly once, in order.
//
// When retention removed events after the cursor, the client first gets a
// warning event (code WarningReplayGap) naming where replay really starts; its
// id is the newest removed ID, so a client resuming from it is not warned
// twice. That event is not stored in the log.
//
// ServeSSE returns an error without writing anything when the thread does not
// exist or the log fails before the stream starts; the caller answers it. Once
// the stream has started it returns nil: a client that goes away, a write
// that times out and a subscriber cut off for being slow all just end the
// response, and the client resumes by cursor.
func (h *Hub) ServeSSE(w http.ResponseWriter, r *http.Request, tenant, thread string, after ID, opts SSEOptions) error {
	opts = opts.withDefaults()
	ctx := r.Context()

	var sub *Subscription
	if opts.Follow {
		// Subscribe before reading the history: an event appended while the
		// history is read then arrives through the subscription, and the
		// cursor check below drops the ones the history already had.
		s, err := h.Subscribe(ctx, tenant, thread)
		if err != nil {
			return err
		}
		sub = s
		defer sub.Close()
	}
	page, err := h.log.Read(ctx, tenant, thread, after, opts.PageSize)
	if err != nil {
		return err
	}

	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: rc, timeout: opts.WriteTimeout}

	cursor := after
	if after.Less(page.Trimmed) {
		warn, err := gapWarning(thread, after, page, opts.Now())
		if err == nil {
			sw.write(warn.SSE)
			cursor = page.Trimmed
		}
	}
	for {
		for _, e := range page.Events {
			fr, err := NewFrame(e)
			if err != nil {
				return nil
			}
			sw.write(fr.SSE)
			cursor = e.ID
		}
		if sw.flush() != nil {
			return nil
		}
		if len(page.Events) < opts.PageSize {
			break
		}
		page, err = h.log.Read(ctx, tenant, thread, cursor, opts.PageSize)
		if err != nil {
			return nil
		}
	}
	if sub == nil {
		return nil
	}

	heartbeat := time.NewTicker(opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case fr, ok := <-sub.C():
			if !ok {
				if errors.Is(sub.Err(), ErrSlow) {
					sw.write([]byte(": too slow, reconnect with Last-Event-ID\n\n"))
					sw.flush()
				}
				return nil
			}
			if !cursor.Less(fr.Event.ID) {
				continue
			}
			cursor = fr.Event.ID
			sw.write(fr.SSE)
			// Write what else is already waiting before one flush.
			for drained := false; !drained; {
				select {
				case fr, ok := <-sub.C():
					if !ok {
						drained = true
						break
					}
					if cursor.Less(fr.Event.ID) {
						cursor = fr.Event.ID
						sw.write(fr.SSE)
					}
				default:
					drained = true
				}
			}
			if sw.flush() != nil {
				return nil
			}
		case <-heartbeat.C:
			sw.write([]byte(": ping\n\n"))
			if sw.flush() != nil {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// gapWarning is the synthetic warning for a cursor older than retention.
func gapWarning(thread string, after ID, page Page, now time.Time) (Frame, error) {
	msg := fmt.Sprintf("events up to %s were removed by retention; replay resumes after %s", page.Trimmed, page.Trimmed)
	if len(page.Events) > 0 {
		msg = fmt.Sprintf("events after %s up to %s were removed by retention; replay resumes at %s", after, page.Trimmed, page.Events[0].ID)
	}
	data, err := json.Marshal(Warning{Code: WarningReplayGap, Message: msg})
	if err != nil {
		return Frame{}, err
	}
	return NewFrame(Event{ID: page.Trimmed, ThreadID: thread, Type: TypeWarning, TS: now.UTC(), Data: data})
}

// sseWriter writes SSE messages, each write bounded by a deadline, and
// remembers the first error so callers check once per flush. The deadline
// is moved forward only when half of it has passed: setting it costs a
// syscall-adjacent lock, and a fan-out writes many small frames.
type sseWriter struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	timeout  time.Duration
	deadline time.Time
	err      error
}

func (s *sseWriter) extend() {
	now := time.Now()
	if s.deadline.Sub(now) < s.timeout/2 {
		s.deadline = now.Add(s.timeout)
		_ = s.rc.SetWriteDeadline(s.deadline)
	}
}

func (s *sseWriter) write(b []byte) {
	if s.err != nil {
		return
	}
	s.extend()
	_, s.err = s.w.Write(b)
}

func (s *sseWriter) flush() error {
	if s.err == nil {
		s.extend()
		s.err = s.rc.Flush()
	}
	return s.err
}

// ReadAll returns every retained event of a thread after the cursor, reading
// the log in pages of pageSize (default 1000), with the position of the last
// page.
func ReadAll(ctx context.Context, log Log, tenant, thread string, after ID, pageSize int) (Page, error) {
	if pageSize <= 0 {
		pageSize = 1000
	}
	var all Page
	for {
		p, err := log.Read(ctx, tenant, thread, after, pageSize)
		if err != nil {
			return Page{}, err
		}
		all.Events = append(all.Events, p.Events...)
		all.Trimmed, all.Last = p.Trimmed, p.Last
		if len(p.Events) < pageSize {
			return all, nil
		}
		after = p.Events[len(p.Events)-1].ID
	}
}

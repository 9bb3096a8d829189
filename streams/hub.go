package streams

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// ErrSlow ends a subscription whose subscriber fell behind by more than its
// buffer. The subscriber has lost nothing: it resumes from the log by cursor.
var ErrSlow = errors.New("streams: subscriber too slow, resume by cursor")

// Frame is one event as the hub hands it to subscribers, with its SSE
// encoding made once for all of them.
type Frame struct {
	Event Event
	// SSE is the event as an SSE message: "id: …\nevent: …\ndata: …\n\n".
	SSE []byte
}

// NewFrame encodes e once for delivery.
func NewFrame(e Event) (Frame, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return Frame{}, err
	}
	id := e.ID.String()
	b := make([]byte, 0, len(data)+len(id)+len(e.Type)+24)
	b = append(b, "id: "...)
	b = append(b, id...)
	b = append(b, "\nevent: "...)
	b = append(b, e.Type...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	b = append(b, "\n\n"...)
	return Frame{Event: e, SSE: b}, nil
}

// HubOptions configure a Hub. The zero value means the defaults.
type HubOptions struct {
	// Buffer is how many frames a subscriber may fall behind before it is
	// cut off with ErrSlow. Default 1024.
	Buffer int
	// Batch is how many events one read from the log returns. Default 512.
	Batch int
	// Wait is how long one blocking read of the log waits before it is
	// issued again. Default 5s.
	Wait time.Duration
	// Retry is the pause after a failed read of the log. Default 1s.
	Retry time.Duration
	// Logger receives follower errors. Default slog.Default().
	Logger *slog.Logger
}

func (o HubOptions) withDefaults() HubOptions {
	if o.Buffer <= 0 {
		o.Buffer = 1024
	}
	if o.Batch <= 0 {
		o.Batch = 512
	}
	if o.Wait <= 0 {
		o.Wait = 5 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Hub fans a thread's new events out to every subscriber in this process,
// over one follower per thread: however many clients watch a thread, the
// process reads it from the log once. A subscriber that cannot keep up is cut
// off (ErrSlow) rather than allowed to delay the others.
//
// A Hub is safe for concurrent use.
type Hub struct {
	log  Log
	opts HubOptions

	mu        sync.Mutex
	followers map[threadKey]*follower
}

type threadKey struct{ tenant, thread string }

// NewHub returns a hub over log.
func NewHub(log Log, opts HubOptions) *Hub {
	return &Hub{log: log, opts: opts.withDefaults(), followers: map[threadKey]*follower{}}
}

// Log returns the log the hub follows.
func (h *Hub) Log() Log { return h.log }

// Subscription receives the frames of events appended to one thread after it
// was made. It may also receive frames of events appended shortly before; a
// subscriber that reads the log's history after subscribing skips frames at or
// before its cursor, and so misses nothing and sees nothing twice.
type Subscription struct {
	c    chan Frame
	f    *follower
	once sync.Once
	mu   sync.Mutex
	err  error
}

// C yields frames in ID order. It is closed when the subscription ends: by
// Close, by falling behind (Err returns ErrSlow), or because the hub could not
// start following the thread.
func (s *Subscription) C() <-chan Frame { return s.c }

// Err says why C was closed: ErrSlow, or nil after Close.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() { s.f.remove(s, nil) }

// end closes C once, recording why. Callers make sure no broadcast can
// still send to s: they hold s.f.mu, or s has left s.f.subs.
func (s *Subscription) end(err error) {
	s.once.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.c)
	})
}

// Subscribe starts a subscription to a thread's new events. It returns only
// once the thread's follower has fixed its starting position, so every event
// appended after Subscribe returns is delivered (unless the subscription is
// cut off). The caller must Close the subscription.
func (h *Hub) Subscribe(ctx context.Context, tenant, thread string) (*Subscription, error) {
	k := threadKey{tenant, thread}
	for {
		h.mu.Lock()
		f := h.followers[k]
		if f == nil {
			f = h.newFollower(k)
			h.followers[k] = f
			go f.start()
		}
		sub := &Subscription{c: make(chan Frame, h.opts.Buffer), f: f}
		f.mu.Lock()
		stopped := f.stopped
		if !stopped {
			f.subs[sub] = struct{}{}
		}
		f.mu.Unlock()
		h.mu.Unlock()
		if stopped {
			// The follower ended between our lookup and now; it has left
			// the map, so the next round makes a new one.
			continue
		}

		select {
		case <-f.ready:
		case <-ctx.Done():
			sub.Close()
			return nil, ctx.Err()
		}
		if f.startErr != nil {
			sub.Close()
			return nil, f.startErr
		}
		return sub, nil
	}
}

// Followers returns how many threads this hub follows now: one per thread
// with at least one subscriber.
func (h *Hub) Followers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.followers)
}

// follower reads one thread from the log and broadcasts to its subscribers.
type follower struct {
	h      *Hub
	k      threadKey
	ctx    context.Context
	cancel context.CancelFunc

	ready    chan struct{} // closed once the starting position is known
	startErr error         // set before ready is closed

	mu      sync.Mutex
	subs    map[*Subscription]struct{}
	stopped bool
}

func (h *Hub) newFollower(k threadKey) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	return &follower{h: h, k: k, ctx: ctx, cancel: cancel, ready: make(chan struct{}), subs: map[*Subscription]struct{}{}}
}

// start fixes the starting position at the thread's current end, then
// follows the log until the last subscriber leaves.
func (f *follower) start() {
	page, err := f.h.log.Read(f.ctx, f.k.tenant, f.k.thread, ID{}, 0)
	if err != nil {
		f.startErr = err
		f.stop(err)
		close(f.ready)
		return
	}
	close(f.ready)
	f.follow(page.Last)
}

func (f *follower) follow(cursor ID) {
	o := f.h.opts
	for f.ctx.Err() == nil {
		evs, err := f.h.log.Tail(f.ctx, f.k.tenant, f.k.thread, cursor, o.Batch, o.Wait)
		if err != nil {
			if f.ctx.Err() != nil {
				return
			}
			o.Logger.Warn("streams: follow thread", "tenant", f.k.tenant, "thread", f.k.thread, "err", err)
			select {
			case <-time.After(o.Retry):
			case <-f.ctx.Done():
			}
			continue
		}
		for _, e := range evs {
			if !cursor.Less(e.ID) {
				continue
			}
			cursor = e.ID
			fr, err := NewFrame(e)
			if err != nil {
				o.Logger.Error("streams: encode event", "thread", f.k.thread, "id", e.ID.String(), "err", err)
				continue
			}
			f.broadcast(fr)
		}
	}
}

// broadcast hands fr to every subscriber without ever waiting: a subscriber
// whose buffer is full is cut off.
func (f *follower) broadcast(fr Frame) {
	var slow []*Subscription
	f.mu.Lock()
	for s := range f.subs {
		select {
		case s.c <- fr:
		default:
			slow = append(slow, s)
		}
	}
	f.mu.Unlock()
	for _, s := range slow {
		f.remove(s, ErrSlow)
	}
}

// remove ends s with err and stops the follower when s was its last
// subscriber.
func (f *follower) remove(s *Subscription, err error) {
	f.mu.Lock()
	if _, ok := f.subs[s]; !ok {
		f.mu.Unlock()
		s.end(err)
		return
	}
	delete(f.subs, s)
	s.end(err)
	last := len(f.subs) == 0
	f.mu.Unlock()
	if last {
		f.stop(nil)
	}
}

// stop ends the follower if it has no subscribers (or err says it cannot
// go on), removing it from the hub so a later Subscribe starts afresh.
func (f *follower) stop(err error) {
	f.h.mu.Lock()
	f.mu.Lock()
	if err == nil && len(f.subs) > 0 {
		// A subscriber arrived after the last one left: keep going.
		f.mu.Unlock()
		f.h.mu.Unlock()
		return
	}
	f.stopped = true
	subs := f.subs
	f.subs = map[*Subscription]struct{}{}
	f.mu.Unlock()
	if f.h.followers[f.k] == f {
		delete(f.h.followers, f.k)
	}
	f.h.mu.Unlock()
	f.cancel()
	for s := range subs {
		s.end(err)
	}
}

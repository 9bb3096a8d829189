package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// watcher serves resource subscriptions to tasks and runs. A subscription
// is checked when it is made (the resource must exist in the subscriber's
// tenant), and holds a follow of the task's thread through the Hub; each
// task_status event on it becomes notifications/resources/updated for the
// task's URI and, for a run's change, the run's URI, sent to that tenant's
// subscribed sessions only.
//
// Session-protocol clients subscribe with resources/subscribe (tracked
// here, per session, until unsubscribe or the session ends); 2026-07-28
// clients name the URIs in their subscriptions/listen filter, for as long
// as the listen stream lasts.
type watcher struct {
	s *Server

	mu      sync.Mutex
	subs    map[server.ClientSession]map[string]target // by session, by URI
	follows map[followKey]*follow
}

// target is what a subscribed URI resolved to.
type target struct {
	tenant, task, thread string
}

type followKey struct{ tenant, task string }

// follow is one thread followed for its subscribers.
type follow struct {
	refs   int
	cancel context.CancelFunc
	ready  chan struct{} // closed once the follow has a subscription to the hub, or has ended
}

func newWatcher(s *Server) *watcher {
	return &watcher{s: s, subs: map[server.ClientSession]map[string]target{}, follows: map[followKey]*follow{}}
}

func (w *watcher) install(h *server.Hooks) {
	h.AddOnRequestInitialization(w.check)
	h.AddAfterSubscribe(func(ctx context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
		if tg, err := w.resolve(ctx, req.Params.URI); err == nil {
			f, _ := w.add(server.ClientSessionFromContext(ctx), req.Params.URI, tg)
			awaitFollows(ctx, f)
		}
	})
	h.AddAfterUnsubscribe(func(ctx context.Context, _ any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
		w.remove(server.ClientSessionFromContext(ctx), req.Params.URI)
	})
	h.AddOnUnregisterSession(func(_ context.Context, sess server.ClientSession) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, tg := range w.subs[sess] {
			w.release(tg)
		}
		delete(w.subs, sess)
	})
	h.AddBeforeSubscriptionsListen(func(ctx context.Context, _ any, req *mcp.SubscriptionsListenRequest) {
		sess := server.ClientSessionFromContext(ctx)
		var added []string
		var fs []*follow
		for _, uri := range req.Params.Notifications.ResourceSubscriptions {
			tg, err := w.resolve(ctx, uri)
			if err != nil {
				continue
			}
			f, isNew := w.add(sess, uri, tg)
			fs = append(fs, f)
			if isNew {
				added = append(added, uri)
			}
		}
		if len(added) > 0 {
			// The subscriptions last as long as the listen request.
			context.AfterFunc(ctx, func() {
				for _, uri := range added {
					w.remove(sess, uri)
				}
			})
		}
		awaitFollows(ctx, fs...)
	})
}

// add records sess's subscription to uri and reports whether it is new.
// It returns the follow of the task's thread, new or not, for the hook to
// wait for (awaitFollows) before mcp-go acknowledges the subscription.
func (w *watcher) add(sess server.ClientSession, uri string, tg target) (f *follow, isNew bool) {
	if sess == nil {
		return nil, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.subs[sess]
	if m == nil {
		m = map[string]target{}
		w.subs[sess] = m
	}
	if _, dup := m[uri]; dup {
		return w.follows[followKey{tg.tenant, tg.task}], false
	}
	m[uri] = tg
	return w.acquire(tg), true
}

// awaitFollows returns once each follow of fs (nil ones aside) follows its
// thread from a fixed position, or ctx ends. The subscribe hooks call it
// before mcp-go acknowledges, so that every change after the
// acknowledgement is notified.
func awaitFollows(ctx context.Context, fs ...*follow) {
	for _, f := range fs {
		if f == nil {
			continue
		}
		select {
		case <-f.ready:
		case <-ctx.Done():
			return
		}
	}
}

// remove ends sess's subscription to uri, if it has one.
func (w *watcher) remove(sess server.ClientSession, uri string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if tg, ok := w.subs[sess][uri]; ok {
		delete(w.subs[sess], uri)
		if len(w.subs[sess]) == 0 {
			delete(w.subs, sess)
		}
		w.release(tg)
	}
}

// check refuses a subscription to a resource the caller's tenant does not
// have, before mcp-go acknowledges it.
func (w *watcher) check(ctx context.Context, _ any, message any) error {
	raw, ok := message.(json.RawMessage)
	if !ok || !bytes.Contains(raw, []byte("subscri")) {
		return nil // not resources/subscribe nor subscriptions/listen
	}
	var m struct {
		Method string `json:"method"`
		Params struct {
			URI           string `json:"uri"`
			Notifications struct {
				ResourceSubscriptions []string `json:"resourceSubscriptions"`
			} `json:"notifications"`
		} `json:"params"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return nil // mcp-go reports the malformed message
	}
	var uris []string
	switch mcp.MCPMethod(m.Method) {
	case mcp.MethodResourcesSubscribe:
		uris = []string{m.Params.URI}
	case mcp.MethodSubscriptionsListen:
		uris = m.Params.Notifications.ResourceSubscriptions
	}
	for _, uri := range uris {
		if _, err := w.resolve(ctx, uri); err != nil {
			return err
		}
	}
	return nil
}

// resolve returns the task thread a subscription to uri follows, or why
// it cannot be subscribed to.
func (w *watcher) resolve(ctx context.Context, uri string) (target, error) {
	var tg target
	p, ok := vigil.PrincipalFrom(ctx)
	if !ok || p.Tenant == "" {
		return tg, errors.New("not authenticated: no principal in the request")
	}
	if err := w.s.opts.Allow(p, PermTasksRead); err != nil {
		return tg, resourceError(err)
	}
	tg.tenant = p.Tenant
	switch {
	case strings.HasPrefix(uri, taskPrefix):
		t, err := w.s.opts.Tasks.Get(ctx, strings.TrimPrefix(uri, taskPrefix))
		if err != nil {
			return tg, resourceError(err)
		}
		tg.task, tg.thread = t.ID, t.ThreadID
	case strings.HasPrefix(uri, runPrefix):
		r, err := w.s.opts.Tasks.GetRun(ctx, strings.TrimPrefix(uri, runPrefix))
		if err != nil {
			return tg, resourceError(err)
		}
		t, err := w.s.opts.Tasks.Get(ctx, r.TaskID)
		if err != nil {
			return tg, resourceError(err)
		}
		tg.task, tg.thread = t.ID, t.ThreadID
	default:
		return tg, resourceError(vigil.Errorf(vigil.NotFound, "%s cannot be subscribed to: only vigil://tasks/{id} and vigil://runs/{id} can", uri))
	}
	return tg, nil
}

// acquire starts following tg's thread, or counts one more subscriber of
// it, and returns the follow. w.mu is held; the caller waits for the
// follow's ready without it.
func (w *watcher) acquire(tg target) *follow {
	k := followKey{tg.tenant, tg.task}
	if f := w.follows[k]; f != nil {
		f.refs++
		return f
	}
	ctx, cancel := context.WithCancel(w.s.closing)
	f := &follow{refs: 1, cancel: cancel, ready: make(chan struct{})}
	w.follows[k] = f
	go w.run(ctx, tg, f.ready)
	return f
}

// release counts one subscriber less of tg's thread. w.mu is held.
func (w *watcher) release(tg target) {
	k := followKey{tg.tenant, tg.task}
	f := w.follows[k]
	if f == nil {
		return
	}
	if f.refs--; f.refs <= 0 {
		f.cancel()
		delete(w.follows, k)
	}
}

// close stops every follow.
func (w *watcher) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, f := range w.follows {
		f.cancel()
		delete(w.follows, k)
	}
}

// run follows tg's thread until ctx ends, resubscribing when the hub cuts
// it off or a Subscribe fails. It closes ready after its first successful
// Subscribe, which returns once the hub has fixed where the follow starts.
func (w *watcher) run(ctx context.Context, tg target, ready chan struct{}) {
	started := sync.OnceFunc(func() { close(ready) })
	defer started() // when ctx ends first: no subscriber is left to wait
	for ctx.Err() == nil {
		sub, err := w.s.opts.Hub.Subscribe(ctx, tg.tenant, tg.thread)
		if err != nil {
			if ctx.Err() == nil {
				w.s.opts.Logger.Warn("mcpserver: follow task thread", "tenant", tg.tenant, "task", tg.task, "err", err)
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
				}
			}
			continue
		}
		started()
		w.deliver(ctx, tg, sub)
		sub.Close()
	}
}

func (w *watcher) deliver(ctx context.Context, tg target, sub *streams.Subscription) {
	for {
		select {
		case fr, ok := <-sub.C():
			if !ok {
				return
			}
			if fr.Event.Type != streams.TypeTaskStatus {
				continue
			}
			w.updated(tg.tenant, TaskURI(tg.task))
			if fr.Event.RunID != "" {
				w.updated(tg.tenant, RunURI(fr.Event.RunID))
			}
		case <-ctx.Done():
			return
		}
	}
}

// updated tells tenant's sessions subscribed to uri that it changed.
func (w *watcher) updated(tenant, uri string) {
	w.s.sessions.notifySubscribers(tenant, uri, func(sess server.ClientSession) bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		_, ok := w.subs[sess][uri]
		return ok
	})
}

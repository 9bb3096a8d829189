package mcpserver

import (
	"context"
	"log/slog"
	"slices"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/toolsregistry"
)

// sessions tracks the sessions notifications can reach, each with the
// principal that opened it, so that a notification goes only to the
// sessions of its tenant. They are of two kinds:
//
//   - session-protocol sessions (HTTP before 2026-07-28, and stdio), from
//     mcp-go's register hook until its unregister hook; their ids are also
//     bound to their principal for Handler and the EventStore;
//   - 2026-07-28 subscriptions/listen streams, which mcp-go serves with an
//     ephemeral session it registers nowhere, for as long as the listen
//     request runs.
type sessions struct {
	logger *slog.Logger

	mu     sync.Mutex
	live   map[server.ClientSession]vigil.Principal
	owners map[string]vigil.Principal // session id → who opened it, session protocol only
}

func newSessions(logger *slog.Logger) *sessions {
	return &sessions{logger: logger, live: map[server.ClientSession]vigil.Principal{}, owners: map[string]vigil.Principal{}}
}

// install registers the hooks that keep the table.
func (ss *sessions) install(h *server.Hooks) {
	h.AddOnRegisterSession(func(ctx context.Context, sess server.ClientSession) {
		p, ok := vigil.PrincipalFrom(ctx)
		if !ok {
			return // no tenant: nothing may be sent to it
		}
		ss.mu.Lock()
		ss.live[sess] = p
		if id := sess.SessionID(); id != "" {
			ss.owners[id] = p
		}
		ss.mu.Unlock()
	})
	h.AddOnUnregisterSession(func(ctx context.Context, sess server.ClientSession) {
		ss.mu.Lock()
		delete(ss.live, sess)
		delete(ss.owners, sess.SessionID())
		ss.mu.Unlock()
	})
	h.AddBeforeSubscriptionsListen(func(ctx context.Context, id any, _ *mcp.SubscriptionsListenRequest) {
		sess := server.ClientSessionFromContext(ctx)
		p, ok := vigil.PrincipalFrom(ctx)
		if sess == nil || !ok {
			return
		}
		ss.mu.Lock()
		_, registered := ss.live[sess]
		if !registered {
			ss.live[sess] = p
		}
		ss.mu.Unlock()
		if registered {
			return // a stdio session listening: its registration covers it
		}
		// The listen request's context ends with the stream.
		context.AfterFunc(ctx, func() {
			ss.mu.Lock()
			delete(ss.live, sess)
			ss.mu.Unlock()
		})
	})
}

// ownerOf returns the principal that opened the session-protocol session
// id and whether the session is known to this process.
func (ss *sessions) ownerOf(id string) (vigil.Principal, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	p, ok := ss.owners[id]
	return p, ok
}

// tenantOf returns the tenant of the session-protocol session id and
// whether it is known to this process.
func (ss *sessions) tenantOf(id string) (string, bool) {
	p, ok := ss.ownerOf(id)
	return p.Tenant, ok
}

// notify sends n to every session of tenant, or of every tenant when
// tenant is toolsregistry.Global, that has asked for it. It never blocks:
// a session whose queue is full misses the notification, and the miss is
// logged.
func (ss *sessions) notify(tenant string, n mcp.JSONRPCNotification) {
	ss.mu.Lock()
	var to []server.ClientSession
	for sess, p := range ss.live {
		if tenant == toolsregistry.Global || p.Tenant == tenant {
			to = append(to, sess)
		}
	}
	ss.mu.Unlock()
	for _, sess := range to {
		ss.deliver(sess, n)
	}
}

// notifySubscribers sends notifications/resources/updated for uri to the
// sessions of tenant that subscribed to it, with resources/subscribe
// (session protocol, tracked by want) or in their subscriptions/listen
// filter (2026-07-28).
func (ss *sessions) notifySubscribers(tenant, uri string, want func(server.ClientSession) bool) {
	n := mcp.JSONRPCNotification{
		JSONRPC: mcp.JSONRPC_VERSION,
		Notification: mcp.Notification{
			Method: mcp.MethodNotificationResourceUpdated,
			Params: mcp.NotificationParams{AdditionalFields: map[string]any{"uri": uri}},
		},
	}
	ss.mu.Lock()
	var of []server.ClientSession
	for sess, p := range ss.live {
		if p.Tenant == tenant {
			of = append(of, sess)
		}
	}
	ss.mu.Unlock()
	for _, sess := range of {
		if f, ok := sess.(server.SessionWithSubscriptionFilter); ok {
			if filter, active := f.SubscriptionFilter(); active {
				if slices.Contains(filter.ResourceSubscriptions, uri) {
					ss.send(sess, n)
				}
				continue
			}
		}
		if want(sess) {
			ss.send(sess, n)
		}
	}
}

// deliver sends n to sess unless sess is a subscriptions/listen stream that
// did not opt in to n's method, as mcp-go's own broadcast does.
func (ss *sessions) deliver(sess server.ClientSession, n mcp.JSONRPCNotification) {
	if f, ok := sess.(server.SessionWithSubscriptionFilter); ok {
		if filter, active := f.SubscriptionFilter(); active && !allows(filter, n.Method) {
			return
		}
	}
	ss.send(sess, n)
}

func allows(f mcp.SubscriptionFilter, method string) bool {
	switch method {
	case mcp.MethodNotificationToolsListChanged:
		return f.ToolsListChanged
	case mcp.MethodNotificationResourcesListChanged:
		return f.ResourcesListChanged
	case mcp.MethodNotificationPromptsListChanged:
		return f.PromptsListChanged
	}
	return false
}

func (ss *sessions) send(sess server.ClientSession, n mcp.JSONRPCNotification) {
	if !sess.Initialized() {
		return
	}
	if up, ok := sess.(server.SessionWithStreamableHTTPConfig); ok {
		up.UpgradeToSSEWhenReceiveNotification()
	}
	select {
	case sess.NotificationChannel() <- n:
	default:
		ss.logger.Warn("mcpserver: notification dropped, session queue full", "session", sess.SessionID(), "method", n.Method)
	}
}

// registryChanged announces a registry change as tools/list_changed to the
// sessions that see the tool.
func (s *Server) registryChanged(c toolsregistry.Change) {
	s.sessions.notify(c.Tenant, mcp.JSONRPCNotification{
		JSONRPC:      mcp.JSONRPC_VERSION,
		Notification: mcp.Notification{Method: mcp.MethodNotificationToolsListChanged},
	})
}

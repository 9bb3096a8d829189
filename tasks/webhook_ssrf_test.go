package tasks_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// TestWebhookSSRF points webhooks at addresses that are not public,
// directly, through names and through redirects, and checks that the
// Notifier refuses each with an error naming the address and why, or the
// redirect it did not follow. A
// "public" receiver (127.0.0.2, allowed by its exact address, which
// public.example resolves to) and an internal service on 127.0.0.1 and ::1
// at the same port stand for the two sides; the internal service must
// never be reached. The same cases run for http_get and HTTP tools in
// toolsregistry's ssrf_test.go.
func TestWebhookSSRF(t *testing.T) {
	publicAddr, victimAddr := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")
	var publicHits, victimHits atomic.Int32
	public := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		publicHits.Add(1)
		switch req.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusNoContent)
		case "/redirect":
			http.Redirect(w, req, req.URL.Query().Get("to"), http.StatusTemporaryRedirect)
		case "/found": // a 302, which Go's client would follow with a GET
			http.Redirect(w, req, "/ok", http.StatusFound)
		case "/rebind": // again on a new connection, so the name is resolved again
			w.Header().Set("Connection", "close")
			http.Redirect(w, req, "/rebound", http.StatusTemporaryRedirect)
		default:
			http.NotFound(w, req)
		}
	}))
	victimHandler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		victimHits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})
	victim := httptest.NewUnstartedServer(victimHandler)
	var port string
	for tries := 0; ; tries++ {
		l, err := net.Listen("tcp", publicAddr.String()+":0")
		if err != nil {
			t.Fatalf("listen on %s: %v", publicAddr, err)
		}
		_, port, _ = net.SplitHostPort(l.Addr().String())
		vl, err := net.Listen("tcp", net.JoinHostPort(victimAddr.String(), port))
		if err != nil {
			l.Close()
			if tries < 20 {
				continue
			}
			t.Fatalf("no port free on both %s and %s: %v", publicAddr, victimAddr, err)
		}
		public.Listener, victim.Listener = l, vl
		break
	}
	public.Start()
	victim.Start()
	defer public.Close()
	defer victim.Close()
	if l6, err := net.Listen("tcp", "[::1]:"+port); err == nil {
		v6 := httptest.NewUnstartedServer(victimHandler)
		v6.Listener = l6
		v6.Start()
		defer v6.Close()
	}

	var mu sync.Mutex
	lookups := map[string]int{}
	guard, err := toolsregistry.NewGuard(toolsregistry.GuardOptions{
		Allow: []string{publicAddr.String()},
		Lookup: func(_ context.Context, host string) ([]netip.Addr, error) {
			mu.Lock()
			lookups[host]++
			n := lookups[host]
			mu.Unlock()
			switch host {
			case "public.example":
				return []netip.Addr{publicAddr}, nil
			case "victim.example":
				return []netip.Addr{victimAddr}, nil
			case "intranet.example":
				return []netip.Addr{netip.MustParseAddr("10.1.2.3")}, nil
			case "mixed.example":
				return []netip.Addr{publicAddr, victimAddr}, nil
			case "rebind.example": // public when checked, loopback when dialled again
				if n == 1 {
					return []netip.Addr{publicAddr}, nil
				}
				return []netip.Addr{victimAddr}, nil
			}
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Retries are allowed, to show that a refusal is not retried.
	n, err := tasks.NewNotifier(tasks.NotifierOptions{Guard: guard, Backoff: []time.Duration{time.Millisecond, time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}

	pub := "http://public.example:" + port
	via := func(to string) string { return pub + "/redirect?to=" + url.QueryEscape(to) }
	for _, c := range []struct {
		name, url string
		want      string // in the error; "" means delivered
		hits      int32  // requests the public receiver gets
	}{
		{"public receiver", pub + "/ok", "", 1},
		{"loopback", "http://127.0.0.1:" + port + "/hook", "webhook 127.0.0.1:" + port + ": refused to connect to 127.0.0.1: it is a loopback address", 0},
		{"private", "http://10.0.0.1/hook", "webhook 10.0.0.1: refused to connect to 10.0.0.1: it is a private address", 0},
		{"cloud metadata", "http://169.254.169.254/latest/meta-data/", "refused to connect to 169.254.169.254: it is a link-local (cloud metadata) address", 0},
		{"IPv6 loopback", "http://[::1]:" + port + "/hook", "refused to connect to ::1: it is a loopback address", 0},
		{"name resolving to loopback", "http://victim.example:" + port + "/hook", "refused to connect to victim.example: it resolves to 127.0.0.1, a loopback address", 0},
		{"name resolving to private", "http://intranet.example/hook", "refused to connect to intranet.example: it resolves to 10.1.2.3, a private address", 0},
		{"name resolving to public and loopback", "http://mixed.example:" + port + "/hook", "refused to connect to mixed.example: it resolves to 127.0.0.1, a loopback address", 0},
		// A redirect is an answer, not followed: the receiver gets one
		// request, whatever it points to, and the error names it.
		{"redirect to a public path, 302", pub + "/found", "webhook public.example:" + port + ": answered 302 Found, a redirect to public.example:" + port + "; redirects are not followed", 1},
		{"DNS rebinding through a redirect", "http://rebind.example:" + port + "/rebind", "answered 307 Temporary Redirect, a redirect to rebind.example:" + port + "; redirects are not followed", 1},
		{"redirect to loopback", via("http://127.0.0.1:" + port + "/"), "webhook public.example:" + port + ": answered 307 Temporary Redirect, a redirect to 127.0.0.1:" + port + ";", 1},
		{"redirect to private", via("http://10.0.0.1/admin"), "a redirect to 10.0.0.1;", 1},
		{"redirect to cloud metadata", via("http://169.254.169.254/latest/meta-data/"), "a redirect to 169.254.169.254;", 1},
		{"redirect to IPv6 loopback", via("http://[::1]:" + port + "/"), "a redirect to [::1]:" + port + ";", 1},
		{"redirect to a name resolving to private", via("http://intranet.example/"), "a redirect to intranet.example;", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := publicHits.Load()
			err := n.Notify(context.Background(), []tasks.Webhook{{URL: c.url, Secret: "s"}}, tasks.Notification{Event: "run.finished", TaskID: "tsk_1"})
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("not delivered: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("got %v\nwant an error with %q", err, c.want)
			}
			if got := publicHits.Load() - before; got != c.hits {
				t.Errorf("the public receiver got %d requests, want %d (a refusal is final)", got, c.hits)
			}
		})
	}
	if lookups["rebind.example"] != 1 {
		t.Errorf("rebind.example was resolved %d times, want 1: its redirect is not followed", lookups["rebind.example"])
	}
	if h := victimHits.Load(); h != 0 {
		t.Errorf("the internal service was reached %d times", h)
	}
}

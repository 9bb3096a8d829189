package toolsregistry

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vigilhq/vigil"
)

// ssrfRig is the world of the SSRF tests: a "public" site, which the
// guard allows by its exact address 127.0.0.2 and which names such as
// public.example resolve to, and a "victim", an internal service on
// 127.0.0.1 (and ::1) at the same port, which no request may ever reach.
// Its Lookup makes names resolve as the cases need, DNS rebinding
// included.
type ssrfRig struct {
	port       string
	opts       GuardOptions
	publicHits atomic.Int32
	victimHits atomic.Int32

	mu      sync.Mutex
	lookups map[string]int
}

var (
	publicAddr = netip.MustParseAddr("127.0.0.2")
	victimAddr = netip.MustParseAddr("127.0.0.1")
)

func newSSRFRig(t *testing.T) *ssrfRig {
	t.Helper()
	rig := &ssrfRig{lookups: map[string]int{}}
	public := httptest.NewUnstartedServer(http.HandlerFunc(rig.servePublic))
	victim := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		rig.victimHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"secret":"internal admin data"}`)
	}))
	// The victim listens at the public site's port, so that a name that
	// rebinds to 127.0.0.1 would reach it.
	for tries := 0; ; tries++ {
		l, err := net.Listen("tcp", publicAddr.String()+":0")
		if err != nil {
			t.Fatalf("listen on %s: %v", publicAddr, err)
		}
		_, port, _ := net.SplitHostPort(l.Addr().String())
		vl, err := net.Listen("tcp", net.JoinHostPort(victimAddr.String(), port))
		if err != nil {
			l.Close()
			if tries < 20 {
				continue
			}
			t.Fatalf("no port free on both %s and %s: %v", publicAddr, victimAddr, err)
		}
		public.Listener, victim.Listener, rig.port = l, vl, port
		break
	}
	public.Start()
	victim.Start()
	t.Cleanup(public.Close)
	t.Cleanup(victim.Close)
	// The victim on ::1 too, where the host has IPv6 loopback.
	if l6, err := net.Listen("tcp", "[::1]:"+rig.port); err == nil {
		v6 := httptest.NewUnstartedServer(victim.Config.Handler)
		v6.Listener = l6
		v6.Start()
		t.Cleanup(v6.Close)
	}
	t.Cleanup(func() {
		if n := rig.victimHits.Load(); n != 0 {
			t.Errorf("the internal service was reached %d times", n)
		}
	})
	rig.opts = GuardOptions{Allow: []string{publicAddr.String()}, Lookup: rig.lookup}
	return rig
}

// servePublic is the public site: /ok answers, /redirect?to= redirects
// (307, so a POST stays a POST), /rebind redirects to itself on a fresh
// connection, so that the client resolves its host again.
func (rig *ssrfRig) servePublic(w http.ResponseWriter, req *http.Request) {
	rig.publicHits.Add(1)
	switch req.URL.Path {
	case "/ok":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	case "/redirect":
		http.Redirect(w, req, req.URL.Query().Get("to"), http.StatusTemporaryRedirect)
	case "/rebind":
		w.Header().Set("Connection", "close")
		http.Redirect(w, req, "/rebound", http.StatusTemporaryRedirect)
	default:
		http.NotFound(w, req)
	}
}

// lookup resolves the test names: public.example to the public site,
// victim.example to loopback, intranet.example to a private address,
// mixed.example to both a public and a loopback address, and
// rebind.example to the public site the first time and to loopback after
// (DNS rebinding).
func (rig *ssrfRig) lookup(_ context.Context, host string) ([]netip.Addr, error) {
	rig.mu.Lock()
	rig.lookups[host]++
	n := rig.lookups[host]
	rig.mu.Unlock()
	switch host {
	case "public.example":
		return []netip.Addr{publicAddr}, nil
	case "victim.example":
		return []netip.Addr{victimAddr}, nil
	case "intranet.example":
		return []netip.Addr{netip.MustParseAddr("10.1.2.3")}, nil
	case "mixed.example":
		return []netip.Addr{publicAddr, victimAddr}, nil
	case "rebind.example":
		if n == 1 {
			return []netip.Addr{publicAddr}, nil
		}
		return []netip.Addr{victimAddr}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// ssrfCase is a URL a tool is pointed at and the refusal expected.
type ssrfCase struct {
	name string
	url  string
	want string // in the error; "" means the request succeeds
}

// cases are the targets every guarded path must refuse, with a request to
// the public site first, so that the tests would notice a guard that
// refuses everything.
func (rig *ssrfRig) cases() []ssrfCase {
	p := rig.port
	public := "http://public.example:" + p
	via := func(to string) string { return public + "/redirect?to=" + url.QueryEscape(to) }
	return []ssrfCase{
		{"public site", public + "/ok", ""},
		{"loopback", "http://127.0.0.1:" + p + "/", "refused to connect to 127.0.0.1: it is a loopback address"},
		{"private", "http://10.0.0.1/", "refused to connect to 10.0.0.1: it is a private address"},
		{"cloud metadata", "http://169.254.169.254/latest/meta-data/", "refused to connect to 169.254.169.254: it is a link-local (cloud metadata) address"},
		{"IPv6 loopback", "http://[::1]:" + p + "/", "refused to connect to ::1: it is a loopback address"},
		{"IPv4-mapped loopback", "http://[::ffff:127.0.0.1]:" + p + "/", "refused to connect to ::ffff:127.0.0.1: it resolves to 127.0.0.1, a loopback address"},
		{"name resolving to loopback", "http://victim.example:" + p + "/", "refused to connect to victim.example: it resolves to 127.0.0.1, a loopback address"},
		{"name resolving to private", "http://intranet.example/", "refused to connect to intranet.example: it resolves to 10.1.2.3, a private address"},
		{"name resolving to public and loopback", "http://mixed.example:" + p + "/", "refused to connect to mixed.example: it resolves to 127.0.0.1, a loopback address"},
		{"DNS rebinding", "http://rebind.example:" + p + "/rebind", "refused to connect to rebind.example: it resolves to 127.0.0.1, a loopback address"},
		{"redirect to loopback", via("http://127.0.0.1:" + p + "/"), "refused to connect to 127.0.0.1: it is a loopback address"},
		{"redirect to private", via("http://10.0.0.1/admin"), "refused to connect to 10.0.0.1: it is a private address"},
		{"redirect to cloud metadata", via("http://169.254.169.254/latest/meta-data/"), "refused to connect to 169.254.169.254: it is a link-local (cloud metadata) address"},
		{"redirect to IPv6 loopback", via("http://[::1]:" + p + "/"), "refused to connect to ::1: it is a loopback address"},
		{"redirect to a name resolving to private", via("http://intranet.example/"), "refused to connect to intranet.example: it resolves to 10.1.2.3, a private address"},
		{"redirect to a name resolving to loopback", via("http://victim.example:" + p + "/"), "refused to connect to victim.example: it resolves to 127.0.0.1, a loopback address"},
	}
}

// checkRebound checks that the rebinding case reached the public site
// first, so that its refusal came from the second resolution, the one
// the connection would have used.
func (rig *ssrfRig) checkRebound(t *testing.T) {
	t.Helper()
	rig.mu.Lock()
	n := rig.lookups["rebind.example"]
	rig.mu.Unlock()
	if n != 2 {
		t.Errorf("rebind.example was resolved %d times, want 2 (public, then loopback)", n)
	}
}

func TestSSRFHTTPGet(t *testing.T) {
	rig := newSSRFRig(t)
	r := builtinRegistry(t, rig.opts)
	for _, c := range rig.cases() {
		t.Run(c.name, func(t *testing.T) {
			res, e := fetch(t, r, c.url)
			if c.want == "" {
				var got HTTPGetResult
				if e != nil || json.Unmarshal(res.Output, &got) != nil || got.Status != 200 || got.Body != `{"ok":true}` {
					t.Fatalf("public fetch: %+v %v", res, e)
				}
				return
			}
			if e == nil {
				t.Fatalf("fetched: %s", res.Output)
			}
			if e.Code != vigil.Invalid || e.Field != "url" || !strings.Contains(e.Message, c.want) {
				t.Errorf("got %+v\nwant a vigil.Invalid error on url with %q", e, c.want)
			}
		})
	}
	rig.checkRebound(t)
}

func TestSSRFHTTPTool(t *testing.T) {
	rig := newSSRFRig(t)
	g, err := NewGuard(rig.opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rig.cases() {
		t.Run(c.name, func(t *testing.T) {
			h, err := NewHTTPHandler(HTTPOptions{URL: c.url, Secret: []byte("plugin secret"), Guard: g})
			if err != nil {
				t.Fatal(err)
			}
			out, err := h.Call(context.Background(), json.RawMessage(`{"q":1}`))
			if c.want == "" {
				if err != nil || string(out.Value) != `{"ok":true}` {
					t.Fatalf("call to the public site: %s %v", out.Value, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("called: %s", out.Value)
			}
			want := "the tool's server is not reachable: " + c.want
			if !strings.Contains(err.Error(), want) {
				t.Errorf("got %v\nwant an error with %q", err, want)
			}
			if vigil.ErrorCode(err) == vigil.Invalid {
				t.Errorf("a refused address is the tool's failure, not the arguments': %v", err)
			}
		})
	}
	rig.checkRebound(t)
}

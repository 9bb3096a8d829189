package toolsregistry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/vigilhq/vigil"
)

// GuardOptions configure a Guard. The zero value refuses every address
// that is not public.
type GuardOptions struct {
	// Allow lists what may be reached although it is not public: address
	// prefixes ("10.1.0.0/16"), single addresses ("127.0.0.1", "::1") and
	// host names ("wiki.corp.example", matched exactly and without regard
	// to case against the host a request names).
	Allow []string
	// Lookup resolves a host name to its addresses; nil means the system
	// resolver. Tests use it to make a name resolve to a private address.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// DialTimeout bounds establishing one connection; zero means 10 seconds.
	DialTimeout time.Duration
	// MaxRedirects is how many redirects a client follows; zero means 5.
	MaxRedirects int
}

// Guard keeps outgoing HTTP requests of tools (http_get, HTTP plugin tools,
// webhooks) away from addresses that are not public: loopback, private,
// link-local (with the cloud metadata address 169.254.169.254), unspecified,
// multicast, shared (CGNAT) and reserved ranges, in IPv4 and IPv6, and IPv4
// addresses embedded in IPv6 (mapped, NAT64, 6to4), unless allowed.
//
// It checks the address it actually dials, in the dialer's Control hook, so
// a host name that resolves to a public address when checked and to a
// private one when dialled (DNS rebinding) is refused too; each redirect is
// a new request through the same dialer. Proxies from the environment are
// not used: a proxy would dial in the guard's place.
//
// A Guard is safe for concurrent use; its clients share one connection pool.
type Guard struct {
	allow        []netip.Prefix
	hosts        map[string]bool
	lookup       func(ctx context.Context, host string) ([]netip.Addr, error)
	dialTimeout  time.Duration
	maxRedirects int
	transport    *http.Transport
}

// NewGuard returns a guard. A malformed Allow entry is a vigil.Invalid error
// naming it.
func NewGuard(opts GuardOptions) (*Guard, error) {
	g := &Guard{
		hosts:        map[string]bool{},
		lookup:       opts.Lookup,
		dialTimeout:  opts.DialTimeout,
		maxRedirects: opts.MaxRedirects,
	}
	if g.lookup == nil {
		g.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if g.dialTimeout <= 0 {
		g.dialTimeout = 10 * time.Second
	}
	if g.maxRedirects <= 0 {
		g.maxRedirects = 5
	}
	for i, a := range opts.Allow {
		a = strings.TrimSpace(a)
		if p, err := netip.ParsePrefix(a); err == nil {
			g.allow = append(g.allow, p.Masked())
		} else if ip, err := netip.ParseAddr(a); err == nil {
			ip = ip.Unmap()
			g.allow = append(g.allow, netip.PrefixFrom(ip, ip.BitLen()))
		} else if a != "" && !strings.ContainsAny(a, "/: ") {
			g.hosts[strings.ToLower(strings.TrimSuffix(a, "."))] = true
		} else {
			return nil, vigil.FieldError(fmt.Sprintf("allow.%d", i), "must be an address, a prefix such as 10.0.0.0/8, or a host name, not %q", a)
		}
	}
	g.transport = &http.Transport{
		Proxy:                 nil,
		DialContext:           g.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return g, nil
}

// BlockedError is the error of a connection the guard refused.
type BlockedError struct {
	Host   string     // the host the request named
	Addr   netip.Addr // the address it resolved to
	Reason string     // the kind of address: "loopback", "private", …
}

// Error says what was refused and why, in words for the model and the user.
func (e *BlockedError) Error() string {
	if e.Host == e.Addr.String() {
		return fmt.Sprintf("refused to connect to %s: it is a %s address, which tools may not reach", e.Addr, e.Reason)
	}
	return fmt.Sprintf("refused to connect to %s: it resolves to %s, a %s address, which tools may not reach", e.Host, e.Addr, e.Reason)
}

// Check returns a *BlockedError if the guard refuses addr for host (the
// name the request used, for allowed host names and messages), else nil.
func (g *Guard) Check(host string, addr netip.Addr) error {
	addr = addr.Unmap().WithZone("")
	if g.hosts[strings.ToLower(strings.TrimSuffix(host, "."))] {
		return nil
	}
	for _, p := range g.allow {
		if p.Contains(addr) {
			return nil
		}
	}
	if reason := nonPublic(addr); reason != "" {
		return &BlockedError{Host: host, Addr: addr, Reason: reason}
	}
	return nil
}

var specialRanges = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network"`},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
}

// embedding are the IPv6 ranges that carry an IPv4 address in their last
// (NAT64, IPv4-compatible) or second and third (6to4) 32 bits.
var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	nat64l = netip.MustParsePrefix("64:ff9b:1::/48")
	compat = netip.MustParsePrefix("::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// nonPublic says what kind of non-public address a is, or "".
func nonPublic(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a == netip.MustParseAddr("169.254.169.254"):
		return "link-local (cloud metadata)"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsPrivate():
		return "private"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	case a == netip.MustParseAddr("255.255.255.255"):
		return "broadcast"
	}
	for _, r := range specialRanges {
		if r.prefix.Contains(a) {
			return r.reason
		}
	}
	if a.Is6() {
		b := a.As16()
		var v4 netip.Addr
		switch {
		case nat64.Contains(a), nat64l.Contains(a), compat.Contains(a):
			v4 = netip.AddrFrom4([4]byte(b[12:16]))
		case sixTo4.Contains(a):
			v4 = netip.AddrFrom4([4]byte(b[2:6]))
		}
		if v4.IsValid() {
			if r := nonPublic(v4); r != "" {
				return r + " (embedded in IPv6)"
			}
		}
	}
	return ""
}

// DialContext connects to address ("host:port") as net.Dialer does, but
// only to addresses the guard allows: it resolves the host itself, refuses
// it if any of its addresses is refused, and checks again in the dialer's
// Control hook the address each connection is made to.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		if addrs, err = g.lookup(ctx, host); err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
	}
	for _, a := range addrs {
		if err := g.Check(host, a); err != nil {
			return nil, err
		}
	}
	d := net.Dialer{
		Timeout: g.dialTimeout,
		Control: func(_, dialed string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(dialed)
			if err != nil {
				return fmt.Errorf("toolsregistry: guard cannot read dialled address %q: %w", dialed, err)
			}
			return g.Check(host, ap.Addr())
		},
	}
	var first error
	for _, a := range addrs {
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(a.WithZone("").String(), port))
		if err == nil {
			return conn, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// Client returns an HTTP client that dials through the guard, follows at
// most MaxRedirects redirects (each to http or https only, each dialled
// through the guard) and gives up after timeout (zero means no limit
// beyond the request's context).
func (g *Guard) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: g.transport,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > g.maxRedirects {
				return fmt.Errorf("stopped after %d redirects", g.maxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("refused a redirect to a %s: URL", req.URL.Scheme)
			}
			return nil
		},
	}
}

// checkURL reports whether u is an absolute http(s) URL with a host, as a
// vigil.Invalid error on field.
func checkURL(field, u string) (*url.URL, error) {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return nil, vigil.FieldError(field, "must be an absolute http or https URL, not %q", u)
	}
	return p, nil
}

// blocked returns the *BlockedError in err's chain, if any.
func blocked(err error) (*BlockedError, bool) {
	var be *BlockedError
	ok := errors.As(err, &be)
	return be, ok
}

package toolsregistry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/streams"
)

// builtinRegistry returns a registry with the built-in tools, their
// http_get guarded by g.
func builtinRegistry(t *testing.T, g GuardOptions) *Registry {
	t.Helper()
	r := newRegistry(t, Options{})
	defs, err := Builtins(BuiltinOptions{
		Guard:       g,
		MaxBody:     64,
		HTTPTimeout: 2 * time.Second,
		Now:         func() time.Time { return time.Date(2026, 11, 22, 0, 30, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterAll(defs); err != nil {
		t.Fatal(err)
	}
	return r
}

var web = []string{"read:web"}

func fetch(t *testing.T, r *Registry, u string) (*Result, *Error) {
	t.Helper()
	res, err := r.Call(context.Background(), Request{Tenant: "acme", Scopes: web, Tool: "http_get", Args: marshal(map[string]string{"url": u})})
	if err != nil {
		te, ok := err.(*Error)
		if !ok {
			t.Fatalf("http_get %s: %T %v", u, err, err)
		}
		return nil, te
	}
	return res, nil
}

func TestSSRFRefusals(t *testing.T) {
	// A real server on loopback, which the guard must refuse to reach.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "secret admin page")
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	r := builtinRegistry(t, GuardOptions{
		Lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
			switch host {
			case "intranet.example":
				return []netip.Addr{netip.MustParseAddr("10.1.2.3")}, nil
			case "mixed.example": // a public and a private answer
				return []netip.Addr{netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("192.168.1.1")}, nil
			}
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		},
	})
	for _, c := range []struct{ url, want string }{
		{fmt.Sprintf("http://127.0.0.1:%d/", port), "refused to connect to 127.0.0.1: it is a loopback address"},
		{"http://10.0.0.1/", "refused to connect to 10.0.0.1: it is a private address"},
		{"http://169.254.169.254/latest/meta-data/", "refused to connect to 169.254.169.254: it is a link-local (cloud metadata) address"},
		{fmt.Sprintf("http://[::1]:%d/", port), "refused to connect to ::1: it is a loopback address"},
		{fmt.Sprintf("http://localhost:%d/", port), "refused to connect to localhost: it resolves to"},
		{"http://intranet.example/", "refused to connect to intranet.example: it resolves to 10.1.2.3, a private address"},
		{"http://mixed.example/", "refused to connect to mixed.example: it resolves to 192.168.1.1, a private address"},
		{"http://[::ffff:127.0.0.1]/", "loopback address"},
		{"http://0.0.0.0/", "unspecified address"},
		{"http://100.64.0.1/", "shared (carrier-grade NAT) address"},
		{"http://[fd00::1]/", "private address"},
		{"http://[fe80::1]/", "link-local address"},
		{"http://[64:ff9b::a9fe:a9fe]/", "link-local (cloud metadata) (embedded in IPv6) address"},
	} {
		res, e := fetch(t, r, c.url)
		if e == nil {
			t.Errorf("%s fetched: %s", c.url, res.Output)
			continue
		}
		if e.Code != vigil.Invalid || e.Field != "url" || !strings.Contains(e.Message, c.want) {
			t.Errorf("%s: %+v\nwant a message with %q", c.url, e, c.want)
		}
	}
	for _, u := range []string{"ftp://example.com/", "file:///etc/passwd", "gopher://x/"} {
		if _, e := fetch(t, r, u); e == nil || e.Code != vigil.Invalid || e.Field != "url" {
			t.Errorf("%s: %+v", u, e)
		}
	}
}

func TestSSRFRedirects(t *testing.T) {
	private := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "internal")
	}))
	defer private.Close()
	hops := 0
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/to-metadata":
			http.Redirect(w, req, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/to-private":
			http.Redirect(w, req, "http://10.0.0.1/admin", http.StatusFound)
		case "/to-loopback-v6":
			http.Redirect(w, req, "http://[::1]:"+private.URL[strings.LastIndex(private.URL, ":")+1:]+"/", http.StatusFound)
		case "/to-file":
			http.Redirect(w, req, "file:///etc/passwd", http.StatusFound)
		case "/loop":
			hops++
			http.Redirect(w, req, "/loop", http.StatusFound)
		case "/hop":
			n := 0
			fmt.Sscan(req.URL.Query().Get("n"), &n)
			if n > 0 {
				http.Redirect(w, req, fmt.Sprintf("/hop?n=%d", n-1), http.StatusFound)
				return
			}
			fmt.Fprint(w, "arrived")
		default:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprint(w, strings.Repeat("abcdefghij", 10))
		}
	}))
	defer allowed.Close()
	u, _ := url.Parse(allowed.URL)

	// Only the allowed server's exact address is allowed; the private one
	// listens on the same loopback address, so it is reached only by ::1.
	r := builtinRegistry(t, GuardOptions{Allow: []string{u.Hostname() + "/32"}})

	res, e := fetch(t, r, allowed.URL+"/page")
	if e != nil {
		t.Fatalf("allowed server refused: %v", e)
	}
	var got HTTPGetResult
	if err := json.Unmarshal(res.Output, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != 200 || got.ContentType != "text/plain" || !got.Truncated || len(got.Body) != 64 || got.Bytes != 64 {
		t.Errorf("allowed fetch: %+v", got)
	}
	res, e = fetch(t, r, allowed.URL+"/hop?n=5")
	if e != nil || !strings.Contains(string(res.Output), `"body":"arrived"`) {
		t.Errorf("five redirects: %v %v", e, res)
	}

	for _, c := range []struct{ path, want string }{
		{"/to-metadata", "refused to connect to 169.254.169.254: it is a link-local (cloud metadata) address"},
		{"/to-private", "refused to connect to 10.0.0.1: it is a private address"},
		{"/to-loopback-v6", "refused to connect to ::1: it is a loopback address"},
		{"/to-file", "refused a redirect to a file: URL"},
		{"/loop", "stopped after 5 redirects"},
		{"/hop?n=6", "stopped after 5 redirects"},
	} {
		res, e := fetch(t, r, allowed.URL+c.path)
		if e == nil {
			t.Errorf("%s fetched: %s", c.path, res.Output)
			continue
		}
		if e.Code != vigil.Invalid || !strings.Contains(e.Message, c.want) {
			t.Errorf("%s: %+v\nwant a message with %q", c.path, e, c.want)
		}
	}
	if hops != 6 {
		t.Errorf("followed %d hops of the loop, want 6 requests", hops)
	}

	// A host name on the allow list may resolve to anything.
	byName := builtinRegistry(t, GuardOptions{Allow: []string{"LocalHost"}})
	if _, e := fetch(t, byName, strings.Replace(allowed.URL, u.Hostname(), "localhost", 1)+"/page"); e != nil {
		t.Errorf("allowed host name refused: %v", e)
	}
	if _, err := NewGuard(GuardOptions{Allow: []string{"10.0.0.0/33"}}); vigil.ErrorCode(err) != vigil.Invalid {
		t.Errorf("bad allow entry: %v", err)
	}
}

func TestGuardCheck(t *testing.T) {
	g, err := NewGuard(GuardOptions{Allow: []string{"10.20.0.0/16", "fd00:1::1"}})
	if err != nil {
		t.Fatal(err)
	}
	for addr, refused := range map[string]bool{
		"93.184.215.14": false, "2606:2800:21f:cb07:6820:80da:af6b:8b2c": false, "8.8.8.8": false,
		"10.20.3.4": false, "fd00:1::1": false, "::ffff:10.20.3.4": false,
		"10.21.0.1": true, "172.16.0.1": true, "172.31.255.255": true, "192.168.0.1": true, "127.5.5.5": true,
		"169.254.1.1": true, "224.0.0.1": true, "ff02::1": true, "fe80::1%eth0": true, "::": true,
		"100.127.255.255": true, "255.255.255.255": true, "240.0.0.1": true, "2002:7f00:1::": true,
		"fd00:1::2": true, "::127.0.0.1": true,
	} {
		err := g.Check(addr, netip.MustParseAddr(addr))
		if (err != nil) != refused {
			t.Errorf("Check(%s) = %v, want refused=%v", addr, err, refused)
		}
	}
}

func TestBuiltinTools(t *testing.T) {
	r := builtinRegistry(t, GuardOptions{})
	run := func(tool, args string) (*Result, *Error) {
		res, err := r.Call(context.Background(), Request{Tenant: "acme", Tool: tool, Args: json.RawMessage(args)})
		if err != nil {
			return nil, err.(*Error)
		}
		return res, nil
	}

	if _, e := run("http_get", `{"url":"https://example.com/"}`); e == nil || e.Code != vigil.Forbidden || !strings.Contains(e.Message, `"read:web"`) {
		t.Errorf("http_get without read:web: %+v", e)
	}

	res, e := run("time_now", `{"zone":"Asia/Shanghai"}`)
	if e != nil || !jsonEqual(t, res.Output, `{"time":"2026-11-22T08:30:00+08:00","zone":"Asia/Shanghai","utc_offset":"+08:00","date":"2026-11-22","clock":"08:30","weekday":"Sunday","unix":1795307400}`) {
		t.Errorf("time_now: %v %s", e, res.Output)
	}
	if res, e := run("time_now", `{}`); e != nil || !strings.Contains(string(res.Output), `"zone":"UTC"`) {
		t.Errorf("time_now default zone: %v %v", e, res)
	}
	if _, e := run("time_now", `{"zone":"Mars/Olympus"}`); e == nil || e.Field != "zone" {
		t.Errorf("time_now bad zone: %+v", e)
	}

	for expr, want := range map[string]float64{
		"1 + 2 * 3": 7, "(3.5 + 2) * 4": 22, "2 ** 10": 1024, "10 / 4": 2.5, "-7 % 3": -1,
		"round(100 / 3)": 33, "max(1, 5, 3)": 5, "abs(-2.5)": 2.5, "sqrt(16)": 4, "floor(2.7) + ceil(0.2)": 3,
		"9223372036854775807 + 1": 9223372036854775808, "7.5 % 2": 1.5,
	} {
		res, e := run("calculate", string(marshal(map[string]string{"expression": expr})))
		var out CalculateResult
		if e != nil || json.Unmarshal(res.Output, &out) != nil || out.Result != want {
			t.Errorf("calculate %q = %v %v, want %v", expr, res, e, want)
		}
	}
	for _, expr := range []string{
		"1 / 0", "1 % 0", "fmod(5, 2)", "x + 1", `"a" + "b"`, "len([1,2])", "now()", "1 == 1", "[1,2][0]", "true ? 1 : 2",
		"let x = 1; x", "sqrt(-1)", "env", "1 +", strings.Repeat("1+", 300) + "1",
	} {
		if res, e := run("calculate", string(marshal(map[string]string{"expression": expr}))); e == nil || e.Code != vigil.Invalid || e.Field != "expression" {
			t.Errorf("calculate %q = %v, %+v; want an invalid expression", expr, res, e)
		}
	}

	res, e = run("render_table", `{"title":"Prices","columns":["item","price"],"rows":[["tea",3.5],["a|b",null]]}`)
	if e != nil {
		t.Fatal(e)
	}
	if len(res.Parts) != 1 {
		t.Fatalf("parts = %v", res.Parts)
	}
	tbl, ok := res.Parts[0].(streams.Table)
	if !ok || len(tbl.Rows) != 2 || tbl.Columns[1] != "price" {
		t.Errorf("table part = %#v", res.Parts[0])
	}
	if _, err := streams.NewEvent(tbl); err != nil {
		t.Errorf("table part is not a valid event: %v", err)
	}
	if !strings.Contains(string(res.Output), `| a\\|b | null |`) {
		t.Errorf("markdown: %s", res.Output)
	}
	if _, e := run("render_table", `{"columns":["a","b"],"rows":[["x","y"],["z"]]}`); e == nil || e.Field != "rows.1" {
		t.Errorf("ragged table: %+v", e)
	}
}

func TestRenderChart(t *testing.T) {
	r := builtinRegistry(t, GuardOptions{})
	for _, c := range []struct {
		args          string
		width, height int
	}{
		{`{"title":"Temperature","kind":"bar","labels":["Mon","Tue","Wed","Thu"],"values":[3,7.5,-2,5],"width":320,"height":200}`, 320, 200},
		{`{"kind":"line","values":[1,4,2,8,5,7,3,9,12,10,11,15],"width":"400"}`, 400, 360},
		{`{"values":[1200000, 3400000]}`, 640, 360},
	} {
		res, err := r.Call(context.Background(), Request{Tenant: "acme", Tool: "render_chart", Args: json.RawMessage(c.args)})
		if err != nil {
			t.Fatalf("%s: %v", c.args, err)
		}
		if len(res.Parts) != 1 {
			t.Fatalf("parts = %v", res.Parts)
		}
		im, ok := res.Parts[0].(streams.Image)
		if !ok || im.MIME != "image/png" || im.Alt == "" {
			t.Fatalf("part = %#v", res.Parts[0])
		}
		if _, err := streams.NewEvent(im); err != nil {
			t.Errorf("image part is not a valid event: %v", err)
		}
		img, err := png.Decode(bytes.NewReader(im.Data))
		if err != nil {
			t.Fatalf("decode PNG: %v", err)
		}
		if b := img.Bounds(); b.Dx() != c.width || b.Dy() != c.height {
			t.Errorf("size = %v, want %dx%d", b, c.width, c.height)
		}
		painted, colors := 0, map[[3]uint32]bool{}
		for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
			for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
				r, g, b, _ := img.At(x, y).RGBA()
				if r>>8 != 0xff || g>>8 != 0xff || b>>8 != 0xff {
					painted++
					colors[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
				}
			}
		}
		total := c.width * c.height
		if painted < total/50 || painted > total*9/10 {
			t.Errorf("%s: %d of %d pixels painted", c.args, painted, total)
		}
		want := chartBar
		if strings.Contains(c.args, "line") {
			want = chartLine
		}
		if !colors[[3]uint32{uint32(want.R), uint32(want.G), uint32(want.B)}] {
			t.Errorf("%s: no pixel in the series colour", c.args)
		}
		if strings.Contains(c.args, "-2") && !colors[[3]uint32{uint32(chartNegative.R), uint32(chartNegative.G), uint32(chartNegative.B)}] {
			t.Errorf("negative bar not drawn")
		}
		var out RenderChartResult
		if json.Unmarshal(res.Output, &out) != nil || out.Width != c.width || out.Bytes != len(im.Data) {
			t.Errorf("output %s", res.Output)
		}
	}
	res, err := r.Call(context.Background(), Request{Tenant: "acme", Tool: "render_chart",
		Args: json.RawMessage(`{"labels":["a"],"values":[1,2]}`)})
	if e, ok := err.(*Error); !ok || e.Field != "labels" {
		t.Errorf("labels mismatch: %v %v", res, err)
	}
}

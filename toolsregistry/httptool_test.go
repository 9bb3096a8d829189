package toolsregistry

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
)

// TestHTTPToolSigned runs an HTTP tool against a plugin server that checks
// every call's signature with Verify, as a plugin author would.
func TestHTTPToolSigned(t *testing.T) {
	secret := []byte("plugin-secret")
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := Verify(secret, req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		again, _ := io.ReadAll(req.Body) // Verify leaves the body for the handler
		if !bytes.Equal(body, again) || req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request shape", http.StatusInternalServerError)
			return
		}
		mu.Lock()
		seen = append(seen, string(body))
		mu.Unlock()
		var args struct {
			City  string `json:"city"`
			Units string `json:"units"`
		}
		json.Unmarshal(body, &args)
		switch args.City {
		case "Atlantis":
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprint(w, `{"error":"no such city"}`)
		case "Nowhere":
			fmt.Fprint(w, `{"temperature":"hot"}`)
		default:
			fmt.Fprintf(w, `{"city":%q,"temperature":21.5,"units":%q}`, args.City, args.Units)
		}
	}))
	defer srv.Close()

	r := newRegistry(t, Options{})
	h, err := NewHTTPHandler(HTTPOptions{URL: srv.URL + "/weather?token=abc", Secret: secret, Guard: testGuard(t)})
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(h); strings.Contains(s, "plugin-secret") || strings.Contains(s, "token") {
		t.Errorf("handler prints %q", s)
	}
	tl := tool("acme", "weather", 1)
	tl.InputSchema = json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"},"units":{"enum":["celsius","fahrenheit"]}},"required":["city","units"]}`)
	tl.OutputSchema = json.RawMessage(`{"type":"object","properties":{"temperature":{"type":"number"}},"required":["temperature"]}`)
	mustRegister(t, r, tl, h)

	res := call(t, r, Request{Tenant: "acme", Tool: "weather@1", Args: json.RawMessage(`{"city":"Paris","units":"Celsius"}`)})
	if string(res.Output) != `{"city":"Paris","temperature":21.5,"units":"celsius"}` {
		t.Errorf("output = %s", res.Output)
	}
	// The plugin received the repaired, validated arguments.
	if len(seen) != 1 || seen[0] != `{"city":"Paris","units":"celsius"}` {
		t.Errorf("plugin saw %q", seen)
	}
	// Invalid arguments never reach the plugin.
	if e := callErr(t, r, Request{Tenant: "acme", Tool: "weather", Args: json.RawMessage(`{"units":"celsius"}`)}); e.Field != "city" {
		t.Errorf("missing city: %+v", e)
	}
	if len(seen) != 1 {
		t.Errorf("plugin called with invalid arguments: %q", seen)
	}
	// A 4xx answer is the arguments' fault and carries the plugin's message.
	e := callErr(t, r, Request{Tenant: "acme", Tool: "weather", Args: json.RawMessage(`{"city":"Atlantis","units":"celsius"}`)})
	if e.Code != vigil.Invalid || e.Message != "the tool refused the call (HTTP 422): no such city" {
		t.Errorf("422: %+v", e)
	}
	// An answer that breaks the output schema is refused.
	e = callErr(t, r, Request{Tenant: "acme", Tool: "weather", Args: json.RawMessage(`{"city":"Nowhere","units":"celsius"}`)})
	if e.Code != vigil.Unavailable || !strings.Contains(e.Message, "result.temperature: must be number, got string") {
		t.Errorf("bad output: %+v", e)
	}

	// A wrong secret is refused by the plugin: a failure of the tool.
	wrong, _ := NewHTTPHandler(HTTPOptions{URL: srv.URL, Secret: []byte("guess"), Guard: testGuard(t)})
	tl.Version = 2
	mustRegister(t, r, tl, wrong)
	e = callErr(t, r, Request{Tenant: "acme", Tool: "weather@2", Args: json.RawMessage(`{"city":"Paris","units":"celsius"}`)})
	if e.Code != vigil.Invalid || !strings.Contains(e.Message, "HTTP 401") || !strings.Contains(e.Message, "signature does not match") {
		t.Errorf("wrong secret: %+v", e)
	}

	// Without an allowance the guard keeps the call away from loopback,
	// and the error does not show the URL's token.
	guarded, _ := NewHTTPHandler(HTTPOptions{URL: srv.URL + "/?token=abc", Secret: secret})
	tl.Version = 3
	mustRegister(t, r, tl, guarded)
	e = callErr(t, r, Request{Tenant: "acme", Tool: "weather@3", Args: json.RawMessage(`{"city":"Paris","units":"celsius"}`)})
	if e.Code != vigil.Unavailable || !strings.Contains(e.Message, "loopback address") || strings.Contains(e.Error(), "token") {
		t.Errorf("guarded plugin: %+v", e)
	}

	for _, opts := range []HTTPOptions{{URL: "ftp://x", Secret: secret}, {URL: srv.URL}} {
		if _, err := NewHTTPHandler(opts); vigil.ErrorCode(err) != vigil.Invalid {
			t.Errorf("NewHTTPHandler(%+v) = %v", opts, err)
		}
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("k")
	body := []byte(`{"a":1}`)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	old := strconv.FormatInt(time.Now().Add(-10*time.Minute).Unix(), 10)
	req := func(ts, sig string, body []byte) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		if ts != "" {
			r.Header.Set(HeaderTimestamp, ts)
		}
		if sig != "" {
			r.Header.Set(HeaderSignature, sig)
		}
		return r
	}
	// The signature is the documented HMAC, computed independently.
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("1700000000." + string(body)))
	if got, want := Sign(secret, "1700000000", body), "sha256="+hex.EncodeToString(m.Sum(nil)); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	if _, err := Verify(secret, req(now, Sign(secret, now, body), body)); err != nil {
		t.Errorf("good signature: %v", err)
	}
	for name, r := range map[string]*http.Request{
		"no headers":    req("", "", body),
		"tampered body": req(now, Sign(secret, now, body), []byte(`{"a":2}`)),
		"other secret":  req(now, Sign([]byte("x"), now, body), body),
		"old timestamp": req(old, Sign(secret, old, body), body),
		"bad timestamp": req("soon", Sign(secret, "soon", body), body),
		"moved stamp":   req(now, Sign(secret, old, body), body),
	} {
		if _, err := Verify(secret, r); vigil.ErrorCode(err) != vigil.Unauthorized {
			t.Errorf("%s: %v", name, err)
		}
	}
}

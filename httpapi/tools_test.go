package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/httpapi"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/store"
	"github.com/vigilhq/vigil/toolsregistry"
	"github.com/vigilhq/vigil/toolsregistry/remotetest"
)

const toolSecret = "ToolSecretMarker-0123456789"

// toolsServer is an API server with plugin tools over b: a registry with
// a built-in echo tool, and a started Sync.
type toolsServer struct {
	*instance
	reg *toolsregistry.Registry
}

func serveTools(t *testing.T, b store.Backend, key []byte) *toolsServer {
	t.Helper()
	reg := toolsregistry.New(toolsregistry.Options{})
	echo := toolsregistry.Tool{Name: "echo", Version: 1, Description: "Echo the arguments."}
	if err := reg.Register(echo, toolsregistry.HandlerFunc(func(_ context.Context, args json.RawMessage) (toolsregistry.Output, error) {
		return toolsregistry.Output{Value: args}, nil
	})); err != nil {
		t.Fatal(err)
	}
	guard, err := toolsregistry.NewGuard(toolsregistry.GuardOptions{Allow: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := toolsregistry.NewSync(reg, toolsregistry.SyncOptions{
		Store: b, Key: key, Guard: guard, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &toolsServer{instance: serve(t, b, httpapi.Options{Tools: s}), reg: reg}
}

type toolList struct {
	Tools []struct {
		Name, Ref       string
		Version         int
		Global, Default bool
		Timeout         string
		InputSchema     json.RawMessage `json:"input_schema"`
	}
}

// TestToolsAPI registers, lists and removes a plugin tool over REST, on
// both backends: the tool is callable at once, its secret never comes
// back, and errors name their field. With Redis, a second instance lists
// and calls the tool soon after its registration on the first (the time
// is logged).
func TestToolsAPI(t *testing.T) {
	plugin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := toolsregistry.Verify([]byte(toolSecret), r); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"celsius":21}`)
	}))
	t.Cleanup(plugin.Close)
	body := `{"name":"acme.weather","description":"Weather in a city.","url":"` + plugin.URL + `","secret":"` + toolSecret + `",
		"input_schema":{"type":"object","properties":{"city":{"type":"string"}}},"timeout":"5s"}`
	call := func(reg *toolsregistry.Registry) error {
		_, err := reg.Call(context.Background(), toolsregistry.Request{Tenant: vigil.DefaultTenant, Tool: "acme.weather", Args: json.RawMessage(`{"city":"Oslo"}`)})
		return err
	}

	eachBackend(t, 0, func(t *testing.T, c config.Store) {
		key := memory.NewKey()
		a := serveTools(t, open(t, c), key)

		resp, err := http.Post(a.URL+"/v1/tools", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		created, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 || resp.Header.Get("Location") != "/v1/tools/acme.weather@1" {
			t.Fatalf("POST /v1/tools: %d %s (Location %q)", resp.StatusCode, created, resp.Header.Get("Location"))
		}
		if strings.Contains(string(created), toolSecret) {
			t.Fatalf("the answer shows the secret: %s", created)
		}
		if err := call(a.reg); err != nil {
			t.Fatalf("call right after POST: %v", err)
		}
		var list toolList
		do(t, "GET", a.URL+"/v1/tools", "", nil, &list)
		if len(list.Tools) != 2 || list.Tools[0].Ref != "acme.weather@1" || list.Tools[0].Global || !list.Tools[0].Default ||
			list.Tools[0].Timeout != "5s" || !list.Tools[1].Global {
			t.Fatalf("GET /v1/tools: %+v", list.Tools)
		}

		for _, tc := range []struct {
			body   string
			status int
			field  string
		}{
			{body, 409, ""},
			{`{"name":"acme.x","description":"x","url":"` + plugin.URL + `","secret":"` + toolSecret + `","input_schema":{"type":"string"}}`, 400, "input_schema"},
			{`{"name":"acme.x","description":"x","url":"` + plugin.URL + `","secret":"short"}`, 400, "secret"},
			{`{"name":"acmex","kind":"mcp","description":"x","command":["/bin/sh"]}`, 400, "command"},
			{`{"name":"acmex","kind":"ftp","description":"x","url":"` + plugin.URL + `"}`, 400, "kind"},
			{`{"name":"acme.x","kind":"mcp","description":"x","url":"` + plugin.URL + `","secret":"` + toolSecret + `"}`, 400, "secret"},
			{`{"name":"echo","description":"x","url":"` + plugin.URL + `","secret":"` + toolSecret + `"}`, 409, ""},
			{`{"name":"acme.x","description":"x","url":"` + plugin.URL + `","secret":"` + toolSecret + `","extra":1}`, 400, ""},
		} {
			var e apiError
			if resp := do(t, "POST", a.URL+"/v1/tools", tc.body, nil, &e); resp.StatusCode != tc.status || e.Error.Field != tc.field {
				t.Errorf("POST %s: %d %+v, want %d on field %q", tc.body, resp.StatusCode, e, tc.status, tc.field)
			}
		}

		if c.Driver == config.DriverRedis {
			b := serveTools(t, open(t, c), key)
			// The goal is within a second (it takes milliseconds); the
			// bound is looser for a loaded CI machine.
			start := time.Now()
			for err := call(b.reg); err != nil; err = call(b.reg) {
				if time.Since(start) > 5*time.Second {
					t.Fatalf("the second instance cannot call the tool 5s after it was registered: %v", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("callable on the second instance after %v", time.Since(start))
			do(t, "GET", b.URL+"/v1/tools", "", nil, &list)
			if len(list.Tools) != 2 || list.Tools[0].Ref != "acme.weather@1" {
				t.Fatalf("GET /v1/tools on the second instance: %+v", list.Tools)
			}
		}

		if resp := do(t, "DELETE", a.URL+"/v1/tools/acme.weather", "", nil, nil); resp.StatusCode != 204 {
			t.Fatalf("DELETE: %d", resp.StatusCode)
		}
		if err := call(a.reg); vigil.ErrorCode(err) != vigil.NotFound {
			t.Fatalf("call after DELETE: %v", err)
		}
		if resp := do(t, "DELETE", a.URL+"/v1/tools/acme.weather", "", nil, nil); resp.StatusCode != 404 {
			t.Fatalf("DELETE again: %d", resp.StatusCode)
		}
		if resp := do(t, "DELETE", a.URL+"/v1/tools/echo", "", nil, nil); resp.StatusCode != 403 {
			t.Fatalf("DELETE of a built-in tool: %d", resp.StatusCode)
		}
		if resp := do(t, "DELETE", a.URL+"/v1/tools/Bad@0", "", nil, nil); resp.StatusCode != 400 {
			t.Fatalf("DELETE of a malformed reference: %d", resp.StatusCode)
		}
	})
}

// TestToolsUnavailable checks that a server without plugin tools answers
// 503 on their routes.
func TestToolsUnavailable(t *testing.T) {
	srv := serve(t, open(t, storeConfigs(t, 0)[config.DriverBolt]), httpapi.Options{})
	for _, m := range []string{"GET /v1/tools", "POST /v1/tools", "DELETE /v1/tools/x"} {
		method, path, _ := strings.Cut(m, " ")
		if resp := do(t, method, srv.URL+path, `{}`, nil, nil); resp.StatusCode != 503 {
			t.Errorf("%s: %d, want 503", m, resp.StatusCode)
		}
	}
}

type mountList struct {
	Tools []struct {
		Name, Ref string
		Global    bool
	}
	Mounts []struct {
		Kind, Namespace, URL, State string
		Tools                       []string
		Status                      struct{ Connected bool }
	}
}

// TestToolsAPIMountsRemote mounts a remote MCP server over REST, on both
// backends: POST /v1/tools with kind mcp answers the mount (201, its
// Location, its tools), never its headers; GET /v1/tools lists the
// namespaced tool and the mount; the tool is callable at once; a second
// mount of the namespace conflicts; one tool of the mount cannot be
// removed alone, and DELETE of the namespace unmounts it. With Redis, a
// second instance mounts the server too and lists it.
func TestToolsAPIMountsRemote(t *testing.T) {
	remote := remotetest.NewCalc(t).URL
	body := `{"kind":"mcp","namespace":"calc","description":"A calculator.","url":"` + remote + `",
		"headers":{"Authorization":"` + remotetest.Token + `"},"timeout":"5s"}`
	add := func(reg *toolsregistry.Registry, a, b int) (float64, error) {
		res, err := reg.Call(context.Background(), toolsregistry.Request{
			Tenant: vigil.DefaultTenant, Tool: "calc.add_numbers", Args: json.RawMessage(fmt.Sprintf(`{"a":%d,"b":%d}`, a, b)),
		})
		if err != nil {
			return 0, err
		}
		var out struct{ Sum float64 }
		err = json.Unmarshal(res.Output, &out)
		return out.Sum, err
	}
	// mounted checks a GET /v1/tools answer of srv: the mounted tool and
	// the mount, without the header.
	mounted := func(t *testing.T, srv *toolsServer) {
		t.Helper()
		status, raw := getBody(t, srv.URL+"/v1/tools")
		var list mountList
		if err := json.Unmarshal(raw, &list); err != nil || status != 200 {
			t.Fatalf("GET /v1/tools: %d %s", status, raw)
		}
		if strings.Contains(string(raw), "RemoteTokenMarker") {
			t.Fatalf("GET /v1/tools shows the mount's header: %s", raw)
		}
		if len(list.Tools) != 2 || list.Tools[0].Ref != "calc.add_numbers@1" || list.Tools[0].Global ||
			len(list.Mounts) != 1 || list.Mounts[0].Namespace != "calc" || list.Mounts[0].Kind != "mcp" ||
			list.Mounts[0].State != "mounted" || list.Mounts[0].URL != remote || !list.Mounts[0].Status.Connected ||
			len(list.Mounts[0].Tools) != 1 || list.Mounts[0].Tools[0] != "calc.add_numbers" {
			t.Fatalf("GET /v1/tools: %s", raw)
		}
	}

	eachBackend(t, 0, func(t *testing.T, c config.Store) {
		key := memory.NewKey()
		a := serveTools(t, open(t, c), key)
		t.Cleanup(func() { closeMounts(a.reg) })

		resp, err := http.Post(a.URL+"/v1/tools", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		created, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 || resp.Header.Get("Location") != "/v1/tools/calc" {
			t.Fatalf("POST /v1/tools: %d %s (Location %q)", resp.StatusCode, created, resp.Header.Get("Location"))
		}
		if strings.Contains(string(created), "RemoteTokenMarker") {
			t.Fatalf("the answer shows the header: %s", created)
		}
		t.Logf("POST /v1/tools: %s", created)
		var view struct {
			Namespace, State, Timeout string
			Tools                     []string
			Status                    struct {
				Connected bool
				Tools     int
			}
		}
		if err := json.Unmarshal(created, &view); err != nil || view.Namespace != "calc" || view.State != "mounted" ||
			view.Timeout != "5s" || len(view.Tools) != 1 || view.Tools[0] != "calc.add_numbers" || !view.Status.Connected || view.Status.Tools != 1 {
			t.Fatalf("POST /v1/tools answered %s", created)
		}
		if sum, err := add(a.reg, 2, 3); err != nil || sum != 5 {
			t.Fatalf("calc.add_numbers(2, 3) right after POST: %v, %v", sum, err)
		}
		mounted(t, a)

		for _, tc := range []struct {
			body   string
			status int
			field  string
		}{
			{body, 409, ""},
			{`{"kind":"mcp","namespace":"Calc","url":"` + remote + `"}`, 400, "namespace"},
			{`{"kind":"mcp","namespace":"calc2","command":["/bin/sh"]}`, 400, "command"},
			{`{"kind":"mcp","namespace":"calc2","url":"` + remote + `","secret":"` + toolSecret + `"}`, 400, "secret"},
			{`{"kind":"mcp","namespace":"calc2","url":"` + remote + `"}`, 400, "headers"}, // the remote answers 401
		} {
			var e apiError
			if resp := do(t, "POST", a.URL+"/v1/tools", tc.body, nil, &e); resp.StatusCode != tc.status || e.Error.Field != tc.field {
				t.Errorf("POST %s: %d %+v, want %d on field %q", tc.body, resp.StatusCode, e, tc.status, tc.field)
			}
		}

		if c.Driver == config.DriverRedis {
			b := serveTools(t, open(t, c), key)
			t.Cleanup(func() { closeMounts(b.reg) })
			deadline := time.Now().Add(5 * time.Second)
			for _, err := add(b.reg, 40, 2); err != nil; _, err = add(b.reg, 40, 2) {
				if time.Now().After(deadline) {
					t.Fatalf("the second instance cannot call the mounted tool: %v", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			mounted(t, b)
		}

		var e apiError
		if resp := do(t, "DELETE", a.URL+"/v1/tools/calc.add_numbers", "", nil, &e); resp.StatusCode != 400 || !strings.Contains(e.Error.Message, "unregister calc") {
			t.Fatalf("DELETE of one mounted tool: %d %+v", resp.StatusCode, e)
		}
		if resp := do(t, "DELETE", a.URL+"/v1/tools/calc", "", nil, nil); resp.StatusCode != 204 {
			t.Fatalf("DELETE /v1/tools/calc: %d", resp.StatusCode)
		}
		if _, err := add(a.reg, 1, 1); vigil.ErrorCode(err) != vigil.NotFound {
			t.Fatalf("call after DELETE: %v", err)
		}
		var list mountList
		do(t, "GET", a.URL+"/v1/tools", "", nil, &list)
		if len(list.Tools) != 1 || len(list.Mounts) != 0 {
			t.Fatalf("GET /v1/tools after DELETE: %+v", list)
		}
		if resp := do(t, "DELETE", a.URL+"/v1/tools/calc", "", nil, nil); resp.StatusCode != 404 {
			t.Fatalf("DELETE again: %d", resp.StatusCode)
		}
	})
}

// closeMounts closes every mount of the default tenant in reg.
func closeMounts(reg *toolsregistry.Registry) {
	for _, m := range reg.Mounts(vigil.DefaultTenant) {
		_ = m.Close()
	}
}

// getBody returns the status and body of GET url.
func getBody(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

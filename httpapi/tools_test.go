package httpapi_test

import (
	"context"
	"encoding/json"
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
// and calls the tool within a second of its registration on the first.
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
			{`{"name":"acmex","kind":"mcp","description":"x","url":"` + plugin.URL + `"}`, 400, "kind"},
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
			deadline := time.Now().Add(time.Second)
			for err := call(b.reg); err != nil; err = call(b.reg) {
				if time.Now().After(deadline) {
					t.Fatalf("the second instance cannot call the tool 1s after it was registered: %v", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
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

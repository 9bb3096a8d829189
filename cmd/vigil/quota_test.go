package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// loadConfig writes yaml to a file in a temporary directory and loads it
// as vigil serve does, with a free port and a data directory of its own.
func loadConfig(t *testing.T, yaml string) config.Config {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.yaml")
	yaml = fmt.Sprintf("server:\n  addr: 127.0.0.1:0\n  shutdown_timeout: 2s\nstore:\n  data_dir: %q\n", filepath.Join(dir, "data")) + yaml
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, nil, config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// TestRequestQuota: with quotas.requests_per_minute 2, the third request
// of a client within the minute is answered 429 with Retry-After and the
// API's error shape.
func TestRequestQuota(t *testing.T) {
	m := startMain(t, loadConfig(t, "quotas:\n  requests_per_minute: 2\n"))
	base := "http://" + m.Addr()
	for i := range 3 {
		resp, err := http.Get(base + "/v1/tasks")
		if err != nil {
			t.Fatal(err)
		}
		var body apiError
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if i < 2 {
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("request %d: %d %+v", i+1, resp.StatusCode, body)
			}
			continue
		}
		secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != http.StatusTooManyRequests || err != nil || secs < 1 || secs > 30 ||
			body.Error.Code != string(vigil.TooMany) || !strings.Contains(body.Error.Message, "quota of 2 requests per minute") {
			t.Errorf("third request: %d, Retry-After %q, %+v; want 429, 1 to 30 seconds, rate_limited naming the quota",
				resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
}

// TestRequestQuotaShared: on Redis, two instances count a client's
// requests against one bucket: with requests_per_minute 2, one request to
// each spends the quota, and the next, to either, is 429.
func TestRequestQuotaShared(t *testing.T) {
	prefix := redistest.Prefix(t)
	instance := func() string {
		c := loadConfig(t, "quotas:\n  requests_per_minute: 2\n")
		c.Store.Driver, c.Store.Redis.URL, c.Store.Redis.Prefix = config.DriverRedis, redistest.URL(t), prefix
		c.Memory.Key = base64.StdEncoding.EncodeToString(make([]byte, 32))
		return "http://" + startMain(t, c).Addr()
	}
	a, b := instance(), instance()
	for i, base := range []string{a, b, a, b} {
		resp, err := http.Get(base + "/v1/tasks")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusOK
		if i >= 2 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want || (want == http.StatusTooManyRequests) != (resp.Header.Get("Retry-After") != "") {
			t.Errorf("request %d (instance %c): %d, Retry-After %q; want %d", i+1, "abab"[i], resp.StatusCode, resp.Header.Get("Retry-After"), want)
		}
	}
}

// TestActiveTaskQuota: with quotas.max_active_tasks 1, confirming a second
// task is 429 naming the limit (REST: no Retry-After, since waiting frees
// no place; MCP: an error result) and leaves it a draft; on both stores.
// Its webhook secret is stored sealed under the memory key (bolt's key
// file; memory.key with Redis).
func TestActiveTaskQuota(t *testing.T) {
	for _, driver := range []string{config.DriverBolt, config.DriverRedis} {
		t.Run(driver, func(t *testing.T) {
			c := loadConfig(t, "quotas:\n  max_active_tasks: 1\n")
			if driver == config.DriverRedis {
				c.Store.Driver, c.Store.Redis.URL, c.Store.Redis.Prefix = driver, redistest.URL(t), redistest.Prefix(t)
				c.Memory.Key = base64.StdEncoding.EncodeToString(make([]byte, 32))
			}
			testActiveTaskQuota(t, startMain(t, c))
		})
	}
}

func testActiveTaskQuota(t *testing.T, m *Main) {
	base := "http://" + m.Addr()
	var ids []string
	for i := range 2 {
		body := fmt.Sprintf(`{"title":"daily %d","kind":"periodic","trigger":{"cron":"0 8 * * *","tz":"UTC"},"instruction":"say hi",`+
			`"notify":[{"url":"https://hooks.example.com/%d","secret":"hook-secret-%d"}]}`, i, i, i)
		var task tasks.Task
		if code := post(t, base+"/v1/tasks", body, &task); code != http.StatusCreated {
			t.Fatalf("create task %d: %d", i, code)
		}
		ids = append(ids, task.ID)
	}
	if code := post(t, base+"/v1/tasks/"+ids[0]+"/confirm", "", nil); code != http.StatusOK {
		t.Fatalf("confirm the first: %d", code)
	}
	resp, err := http.Post(base+"/v1/tasks/"+ids[1]+"/confirm", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var body apiError
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || body.Error.Code != string(vigil.TooMany) ||
		!strings.Contains(body.Error.Message, "limit of 1 active task") || resp.Header.Get("Retry-After") != "" {
		t.Errorf("confirm over the limit: %d %+v, Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}

	// MCP's confirm_task says the same in an error result.
	tr, err := transport.NewStreamableHTTP(base+"/mcp", transport.WithHTTPTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{ClientInfo: mcp.Implementation{Name: "quota-test", Version: "1"}}}); err != nil {
		t.Fatal(err)
	}
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "confirm_task", Arguments: map[string]any{"id": ids[1]}}})
	if err != nil {
		t.Fatal(err)
	}
	text := ""
	for _, part := range res.Content {
		if tc, ok := part.(mcp.TextContent); ok {
			text += tc.Text
		}
	}
	if !res.IsError || !strings.Contains(text, "limit of 1 active task") {
		t.Errorf("MCP confirm_task over the limit: isError %v, %q", res.IsError, text)
	}

	stored, err := m.backend.Task(context.Background(), vigil.DefaultTenant, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != tasks.StatusDraft {
		t.Errorf("refused task is %s", stored.Status)
	}
	if len(stored.Notify) != 1 || !tasks.Sealed(stored.Notify[0].Secret) || strings.Contains(stored.Notify[0].Secret, "hook-secret") {
		t.Errorf("stored webhook secret %q is not sealed", stored.Notify[0].Secret)
	}
}

// TestOAuthDiscovery: with JWT auth, /mcp is published as a protected
// resource of the JWT issuer, at server.base_url.
func TestOAuthDiscovery(t *testing.T) {
	c := loadConfig(t, `auth:
  mode: jwt
  jwt:
    hs256_secret: "0123456789abcdef0123456789abcdef"
    issuer: https://login.example.com/realms/vigil
    audience: vigil
`)
	c.Server.BaseURL = "https://vigil.example.com/"
	m := startMain(t, c)
	resp, err := http.Get("http://" + m.Addr() + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var meta struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	if err := json.Unmarshal(b, &meta); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("metadata: %d %s", resp.StatusCode, b)
	}
	if meta.Resource != "https://vigil.example.com/mcp" || len(meta.AuthorizationServers) != 1 || meta.AuthorizationServers[0] != "https://login.example.com/realms/vigil" {
		t.Errorf("metadata %s", b)
	}
}

// TestRunDurationQuota: with quotas.max_run_duration 1s, a run whose step
// waits on a slow server is cancelled after a second and fails for good,
// in one attempt, with an error naming the limit.
func TestRunDurationQuota(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	m := startMain(t, loadConfig(t, "quotas:\n  max_run_duration: 1s\ntools:\n  allow: [127.0.0.1]\n"))
	base := "http://" + m.Addr()
	body := fmt.Sprintf(`{"title":"slow","kind":"long_running","tools":["http_get"],"steps":[{"tool":"http_get","args":{"url":%q}}]}`, slow.URL)
	var task tasks.Task
	if code := post(t, base+"/v1/tasks", body, &task); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	var run tasks.Run
	if code := post(t, base+"/v1/tasks/"+task.ID+"/run", "", &run); code != http.StatusCreated && code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("run now: %d", code)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		getJSON(t, base+"/v1/runs/"+run.ID, &run)
		if run.Status.Terminal() || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if run.Status != tasks.RunFailed || run.Attempt != 1 || run.ErrorClass != tasks.ErrorPermanent || !strings.Contains(run.Error, "took longer than 1s") {
		t.Errorf("run %s, attempt %d, class %q, error %q; want failed once, permanent, naming the limit", run.Status, run.Attempt, run.ErrorClass, run.Error)
	}
}

// TestSealedWebhookSigned: vigil serve stores a webhook secret sealed
// under the memory key, and its workers open it to sign the delivery: the
// receiver verifies the signature with the secret it was given.
func TestSealedWebhookSigned(t *testing.T) {
	const secret = "a-webhook-secret"
	got := make(chan error, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := toolsregistry.Verify([]byte(secret), r)
		got <- err
	}))
	defer hook.Close()
	m := startMain(t, loadConfig(t, "tools:\n  allow: [127.0.0.1]\n"))
	base := "http://" + m.Addr()
	body := fmt.Sprintf(`{"title":"hi","kind":"long_running","instruction":"say hi","notify":[{"url":%q,"secret":%q}]}`, hook.URL, secret)
	var task tasks.Task
	if code := post(t, base+"/v1/tasks", body, &task); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	stored, err := m.backend.Task(context.Background(), vigil.DefaultTenant, task.ID)
	if err != nil || !tasks.Sealed(stored.Notify[0].Secret) {
		t.Fatalf("stored secret %q, %v; want sealed", stored.Notify[0].Secret, err)
	}
	if code := post(t, base+"/v1/tasks/"+task.ID+"/run", "", nil); code >= 300 {
		t.Fatalf("run now: %d", code)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("delivery signature: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no delivery within 15s")
	}
}

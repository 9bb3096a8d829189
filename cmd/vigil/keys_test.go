package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/audit"
	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/store"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/streams"
)

// vigilKeys runs `vigil keys args…` and returns its exit code and output.
func vigilKeys(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"keys"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// lastLine returns the last line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// call sends a request with an optional Authorization header and returns
// its status and body.
func call(t *testing.T, method, url, authz string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestKeysCommand makes a key with `vigil keys create` on each store,
// through the flags vigil serve takes, and serves with auth.mode keys over
// the same store: the key is the last line of the output and it works;
// no key is 401; `vigil keys revoke` ends it.
func TestKeysCommand(t *testing.T) {
	for _, driver := range []string{config.DriverBolt, config.DriverRedis} {
		t.Run(driver, func(t *testing.T) {
			c := testConfig(t)
			c.Auth.Mode = config.AuthKeys
			storeFlags := []string{"--data", c.Store.DataDir}
			if driver == config.DriverRedis {
				prefix := redistest.Prefix(t)
				t.Setenv("VIGIL_STORE_REDIS_PREFIX", prefix) // the CLI reads it as serve would
				c.Store.Driver, c.Store.Redis.URL, c.Store.Redis.Prefix = driver, redistest.URL(t), prefix
				storeFlags = []string{"--redis", redistest.URL(t)}
			}

			code, out, errOut := vigilKeys(t, append([]string{"create", "--tenant", "acme", "--role", "member,viewer", "--user", "alice", "--name", "laptop"}, storeFlags...)...)
			if code != 0 {
				t.Fatalf("keys create: exit %d, stderr %s", code, errOut)
			}
			key := lastLine(out)
			id, _, ok := auth.ParseKey(key)
			if !ok || !strings.Contains(out, "# id:      "+id) || !strings.Contains(out, "# roles:   member, viewer") {
				t.Fatalf("keys create printed:\n%s", out)
			}

			code, out, errOut = vigilKeys(t, append([]string{"list", "--tenant", "acme"}, storeFlags...)...)
			if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "alice") || strings.Contains(out, key) {
				t.Fatalf("keys list: exit %d\n%s%s", code, out, errOut)
			}

			m := startMain(t, c)
			base := "http://" + m.Addr()
			if code, body := call(t, "POST", base+"/v1/threads", ""); code != 401 {
				t.Fatalf("no key: %d %s", code, body)
			}
			code, body := call(t, "POST", base+"/v1/threads", "Bearer "+key)
			var th streams.Thread
			if code != 201 || json.Unmarshal(body, &th) != nil || th.Tenant != "acme" {
				t.Fatalf("with the key: %d %s", code, body)
			}
			if code, _ := call(t, "GET", base+"/healthz", ""); code != 200 {
				t.Errorf("healthz without a key: %d", code)
			}

			if driver == config.DriverBolt {
				// The running server holds the bolt file; the command says
				// what to do instead.
				code, _, errOut := vigilKeys(t, "revoke", "--tenant", "acme", "--data", c.Store.DataDir, id)
				if code != 1 || !strings.Contains(errOut, "POST /v1/keys") {
					t.Errorf("revoke while serving: exit %d, %s", code, errOut)
				}
				if err := m.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if code, out, errOut := vigilKeys(t, append([]string{"revoke", "--tenant", "acme", id}, storeFlags...)...); code != 0 || !strings.Contains(out, "revoked "+id) {
				t.Fatalf("keys revoke: exit %d %s%s", code, out, errOut)
			}
			if driver == config.DriverRedis {
				if code, body := call(t, "GET", base+"/v1/threads/"+th.ID, "Bearer "+key); code != 401 || !strings.Contains(string(body), "revoked") {
					t.Errorf("a key revoked by the command while serving: %d %s", code, body)
				}
			}
		})
	}
}

func TestKeysCommandUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "usage: vigil keys"},
		{[]string{"rotate"}, 2, `unknown subcommand "rotate"`},
		{[]string{"create", "--role", "admin", "--data", dir}, 2, "--tenant is required"},
		{[]string{"create", "--tenant", "acme", "--data", dir}, 2, "--role is required"},
		{[]string{"create", "--tenant", "acme", "--role", "root", "--data", dir}, 1, `roles: unknown role "root"`},
		{[]string{"create", "--tenant", "a/b", "--role", "admin", "--data", dir}, 1, "tenant:"},
		{[]string{"revoke", "--tenant", "acme", "--data", dir}, 2, "want one key ID"},
		{[]string{"revoke", "--tenant", "acme", "--data", dir, "0123"}, 1, "not found"},
	} {
		code, _, errOut := vigilKeys(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.msg) {
			t.Errorf("vigil keys %q: exit %d, stderr %q; want %d %q", tt.args, code, errOut, tt.code, tt.msg)
		}
	}
}

// TestServeBindsAnyAddressWithAuth checks that with authentication on,
// the server may listen beyond loopback.
func TestServeBindsAnyAddressWithAuth(t *testing.T) {
	c := testConfig(t)
	c.Server.Addr = "0.0.0.0:0"
	c.Auth.Mode = config.AuthKeys
	m := startMain(t, c)
	_, port, _ := net.SplitHostPort(m.Addr())
	if code, _ := call(t, "GET", "http://127.0.0.1:"+port+"/v1/tasks", ""); code != 401 {
		t.Errorf("no key on 0.0.0.0: %d, want 401", code)
	}
}

// TestTailWithToken follows a thread on a server that authenticates:
// without $VIGIL_TOKEN tail stops at the 401; with the key it prints the
// thread's events.
func TestTailWithToken(t *testing.T) {
	c := testConfig(t)
	c.Auth.Mode = config.AuthKeys
	code, out, errOut := vigilKeys(t, "create", "--tenant", "acme", "--role", "member", "--data", c.Store.DataDir)
	if code != 0 {
		t.Fatalf("keys create: exit %d, stderr %s", code, errOut)
	}
	key := lastLine(out)
	m := startMain(t, c)
	base := "http://" + m.Addr()
	code, body := call(t, "POST", base+"/v1/threads", "Bearer "+key)
	var th streams.Thread
	if code != 201 || json.Unmarshal(body, &th) != nil {
		t.Fatalf("create thread: %d %s", code, body)
	}

	var stderr bytes.Buffer
	if err := tail(t.Context(), []string{th.ID, "--server", base}, "", io.Discard, &stderr); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("tail without a token = %v, want the 401", err)
	}

	req, _ := http.NewRequest("POST", base+"/v1/threads/"+th.ID+"/events", strings.NewReader(textBody("hello")))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("append: %v %v", resp, err)
	}
	resp.Body.Close()

	var lines lockedBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- tail(ctx, []string{th.ID, "--server", base, "--json"}, key, &lines, io.Discard) }()
	deadline := time.Now().Add(10 * time.Second)
	for lines.lines()[0] == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("tail with the key: %v", err)
	}
	if got := lines.lines(); len(got) != 1 || !strings.Contains(got[0], "hello") {
		t.Fatalf("tail printed %q", got)
	}
}

// TestConfiguredRoleScopes: auth.scopes replaces a role's scopes, and a
// member's task records the configured ones; another role keeps its
// default.
func TestConfiguredRoleScopes(t *testing.T) {
	c := testConfig(t)
	c.Auth.Mode = config.AuthKeys
	c.Auth.Scopes.Member = []string{"read:*", "write:email"}
	key := func(role string) string {
		code, out, errOut := vigilKeys(t, "create", "--tenant", "acme", "--role", role, "--data", c.Store.DataDir)
		if code != 0 {
			t.Fatalf("keys create %s: exit %d, stderr %s", role, code, errOut)
		}
		return lastLine(out)
	}
	member, developer := key("member"), key("developer")
	m := startMain(t, c)
	for _, tc := range []struct {
		key  string
		want []string
	}{{member, []string{"read:*", "write:email"}}, {developer, []string{"*"}}} {
		req, _ := http.NewRequest("POST", "http://"+m.Addr()+"/v1/tasks", strings.NewReader(`{"title":"mail me","kind":"periodic","trigger":{"every":"1h"}}`))
		req.Header.Set("Authorization", "Bearer "+tc.key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var task struct {
			OwnerScopes []string `json:"owner_scopes"`
		}
		err = json.NewDecoder(resp.Body).Decode(&task)
		resp.Body.Close()
		if resp.StatusCode != 201 || err != nil || !slices.Equal(task.OwnerScopes, tc.want) {
			t.Errorf("create: %d, owner_scopes %q, %v; want %q", resp.StatusCode, task.OwnerScopes, err, tc.want)
		}
	}
}

// TestKeysAudited: vigil keys create and revoke are recorded in the
// tenant's audit log, as POST and DELETE /v1/keys are, with the command
// as the route and the OS user as the actor.
func TestKeysAudited(t *testing.T) {
	t.Setenv("USER", "ops")
	c := testConfig(t)
	code, out, errOut := vigilKeys(t, "create", "--tenant", "acme", "--role", "admin", "--data", c.Store.DataDir)
	if code != 0 {
		t.Fatalf("keys create: exit %d, stderr %s", code, errOut)
	}
	admin := lastLine(out)
	id, _, _ := auth.ParseKey(admin)
	if code, _, errOut := vigilKeys(t, "create", "--tenant", "acme", "--role", "member", "--data", c.Store.DataDir); code != 0 {
		t.Fatalf("keys create: exit %d, stderr %s", code, errOut)
	}
	if code, _, errOut := vigilKeys(t, "revoke", "--tenant", "acme", "--data", c.Store.DataDir, id); code != 0 || errOut != "" {
		t.Fatalf("keys revoke: exit %d, stderr %s", code, errOut)
	}

	backend, err := store.Open(t.Context(), c.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	page, err := (&audit.Recorder{Log: backend}).Read(t.Context(), "acme", streams.ID{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range page.Entries {
		got = append(got, fmt.Sprintf("%s %s %s by %s via %s", e.Action, e.Outcome, strconv.FormatBool(e.Target == id), e.Actor, e.Route))
		if len(e.TraceID) != 32 {
			t.Errorf("entry %s: trace id %q", e.Action, e.TraceID)
		}
	}
	want := []string{
		"key.create succeeded true by cli:ops via vigil keys create",
		"key.create succeeded false by cli:ops via vigil keys create",
		"key.revoke succeeded true by cli:ops via vigil keys revoke",
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit log:\n got %q\nwant %q", got, want)
	}
}

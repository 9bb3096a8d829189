package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// vigilProcess is a vigil child process whose JSON log the test watches.
type vigilProcess struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	log []map[string]any
}

// startVigil starts the vigil binary with args and env added to the
// test's environment, and returns once it logged a line with message msg.
func startVigil(t *testing.T, env []string, msg string, args ...string) (*vigilProcess, map[string]any) {
	t.Helper()
	p := &vigilProcess{cmd: exec.Command(vigilBinary(t), args...)}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	found := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			p.mu.Lock()
			p.log = append(p.log, line)
			p.mu.Unlock()
			if line["msg"] == msg {
				select {
				case found <- line:
				default:
				}
			}
		}
	}()
	select {
	case line := <-found:
		return p, line
	case <-time.After(60 * time.Second):
		t.Fatalf("vigil %s did not log %q within 60s", args[0], msg)
	}
	return nil, nil
}

// TestCrashWorkerRedis is the crash test of the task issue, with real
// processes on Redis: `vigil serve` with the scheduler only, and two
// `vigil worker` processes. Worker A starts first and alone, so that it
// holds runs (each blocked in a slow tool call) when it is killed with
// SIGKILL; worker B, started then, must take them over once their leases
// expire. Every run completes, and the webhook receiver sees every run's
// idempotency key, each counted once however often it is delivered.
func TestCrashWorkerRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes")
	}
	url, prefix := redistest.URL(t), redistest.Prefix(t)

	// The slow tool: http_get of a server that answers after a while.
	var inFlight, calls atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		calls.Add(1)
		defer inFlight.Add(-1)
		select {
		case <-time.After(1500 * time.Millisecond):
		case <-r.Context().Done(): // the worker died
			return
		}
		fmt.Fprintf(w, `{"n":%q}`, r.URL.Query().Get("n"))
	}))
	defer slow.Close()

	// The webhook receiver counts deliveries per idempotency key.
	const secret = "crash-test-secret"
	var hookMu sync.Mutex
	keys := map[string]int{}
	var badSig atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := toolsregistry.Verify([]byte(secret), r); err != nil {
			badSig.Add(1)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		hookMu.Lock()
		keys[r.Header.Get(tasks.HeaderIdempotencyKey)]++
		hookMu.Unlock()
	}))
	defer hook.Close()

	env := []string{
		"VIGIL_STORE_REDIS_URL=" + url,
		"VIGIL_STORE_REDIS_PREFIX=" + prefix,
		"VIGIL_LOG_FORMAT=json",
		"VIGIL_LOG_LEVEL=info",
		"VIGIL_TOOLS_ALLOW=127.0.0.1",
		"VIGIL_WORKERS_EMBEDDED=false",
		"VIGIL_WORKERS_CONCURRENCY=4",
		"VIGIL_WORKERS_TENANT_CONCURRENCY=4",
		"VIGIL_WORKERS_LEASE=2s",
		"VIGIL_SCHEDULER_TICK=100ms",
		"VIGIL_QUOTAS_MAX_ACTIVE_TASKS=0", // n tasks active at once, over the default plan's 10
	}
	_, line := startVigil(t, env, "vigil serving", "serve", "--addr", "127.0.0.1:0")
	base := "http://" + line["addr"].(string)

	// Tasks due in a few seconds, so that the scheduler dispatches them.
	const n = 12
	at := time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339Nano)
	ids := make([]string, n)
	for i := range n {
		body := fmt.Sprintf(`{"title":"slow %d","kind":"one_shot","trigger":{"at":%q},"tools":["http_get"],`+
			`"steps":[{"tool":"http_get","args":{"url":"%s/?n=%d"}}],"notify":[{"url":%q,"secret":%q}]}`,
			i, at, slow.URL, i, hook.URL, secret)
		var task struct{ ID string }
		if code := post(t, base+"/v1/tasks", body, &task); code != http.StatusCreated {
			t.Fatalf("create task %d: %d", i, code)
		}
		if code := post(t, base+"/v1/tasks/"+task.ID+"/confirm", "", nil); code != http.StatusOK {
			t.Fatalf("confirm task %d: %d", i, code)
		}
		ids[i] = task.ID
	}

	// Worker A alone, until it holds runs in the slow call.
	a, _ := startVigil(t, env, "vigil worker running", "worker")
	deadline := time.Now().Add(30 * time.Second)
	for inFlight.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("worker A started %d slow calls within 30s, want 4", inFlight.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, _ := startVigil(t, env, "vigil worker running", "worker", "--metrics", "127.0.0.1:0")
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	killed := time.Now()

	// Every run completes.
	deadline = time.Now().Add(60 * time.Second)
	for _, id := range ids {
		for {
			var page struct {
				Runs []tasks.Run `json:"runs"`
			}
			getJSON(t, base+"/v1/tasks/"+id+"/runs", &page)
			if len(page.Runs) == 1 && page.Runs[0].Status == tasks.RunSucceeded {
				break
			}
			if len(page.Runs) > 1 {
				t.Fatalf("task %s has %d runs, want 1", id, len(page.Runs))
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s: runs %+v not succeeded within 60s of the kill", id, page.Runs)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("all %d runs succeeded %s after the kill; %d slow calls for %d runs", n, time.Since(killed).Round(time.Millisecond), calls.Load(), n)

	// Every idempotency key reached the receiver. Delivery is at least once
	// (a worker killed between its POST and its last write leaves the run to
	// another, which notifies again); the receiver counts each key once.
	deadline = time.Now().Add(10 * time.Second)
	for {
		hookMu.Lock()
		got := len(keys)
		hookMu.Unlock()
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver saw %d distinct idempotency keys, want %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	hookMu.Lock()
	defer hookMu.Unlock()
	repeats := 0
	for k, c := range keys {
		if k == "" {
			t.Error("a delivery without an idempotency key")
		}
		repeats += c - 1
	}
	if badSig.Load() > 0 {
		t.Errorf("%d deliveries with a bad signature", badSig.Load())
	}
	t.Logf("%d distinct keys, %d repeated deliveries dropped by key", len(keys), repeats)

	// Worker B's metrics count the runs it took over and finished.
	resp, err := http.Get("http://" + b.logged(t, "vigil worker metrics")["addr"].(string) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `vigil_runs_total{outcome="succeeded"}`) {
		t.Errorf("worker B's metrics lack its succeeded runs:\n%s", body)
	}
}

// logged returns the first line p logged with message msg.
func (p *vigilProcess) logged(t *testing.T, msg string) map[string]any {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, line := range p.log {
		if line["msg"] == msg {
			return line
		}
	}
	t.Fatalf("no log line %q", msg)
	return nil
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/streams"
)

// startMain runs a real server on a free port with its own data directory.
func startMain(t *testing.T, c config.Config) *Main {
	t.Helper()
	m := &Main{Config: c}
	m.Logger = newLogger(io.Discard, c.Log)
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func testConfig(t *testing.T) config.Config {
	c := config.Default()
	c.Server.Addr = "127.0.0.1:0"
	c.Store.DataDir = t.TempDir()
	c.Server.ShutdownTimeout = 2 * time.Second
	return c
}

func post(t *testing.T, url, body string, out any) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

func newThread(t *testing.T, base string) string {
	t.Helper()
	var th streams.Thread
	if code := post(t, base+"/v1/threads", "", &th); code != http.StatusCreated {
		t.Fatalf("create thread: %d", code)
	}
	return th.ID
}

func replayIDs(t *testing.T, base, thread string) []streams.ID {
	t.Helper()
	resp, err := http.Get(base + "/v1/threads/" + thread + "/replay")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Events []streams.Event }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	ids := make([]streams.ID, len(body.Events))
	for i, e := range body.Events {
		ids[i] = e.ID
	}
	return ids
}

func textBody(s string) string {
	return fmt.Sprintf(`{"type":"text","data":{"message_id":"m","text":%q}}`, s)
}

func TestMainServesBothStores(t *testing.T) {
	for _, driver := range []string{config.DriverBolt, config.DriverRedis} {
		t.Run(driver, func(t *testing.T) {
			c := testConfig(t)
			if driver == config.DriverRedis {
				c.Store.Driver = driver
				c.Store.Redis.URL = redistest.URL(t)
				c.Store.Redis.Prefix = redistest.Prefix(t)
			}
			m := startMain(t, c)
			base := "http://" + m.Addr()
			th := newThread(t, base)
			for i := range 3 {
				if code := post(t, base+"/v1/threads/"+th+"/events", textBody(fmt.Sprint(i)), nil); code != http.StatusCreated {
					t.Fatalf("append: %d", code)
				}
			}
			if ids := replayIDs(t, base, th); len(ids) != 3 {
				t.Fatalf("replay: %d events", len(ids))
			}
			resp, err := http.Get(base + "/readyz")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("readyz: %v %v", err, resp)
			}
			resp.Body.Close()

			// Profiles: bolt makes a key file on first start; Redis with no
			// memory.key has profiles off.
			req, _ := http.NewRequest("PUT", base+"/v1/memory/profile", strings.NewReader(`{"home_city":"Hangzhou","language":"zh"}`))
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := http.StatusOK
			if driver == config.DriverRedis {
				want = http.StatusServiceUnavailable
			}
			if resp.StatusCode != want {
				t.Fatalf("PUT profile: %s, want %d", resp.Status, want)
			}
			if driver == config.DriverBolt {
				if _, err := os.Stat(filepath.Join(c.Store.DataDir, "memory.key")); err != nil {
					t.Fatalf("no key file: %v", err)
				}
			}
		})
	}
}

func TestServeRefusesNonLoopbackWithoutAuth(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "--addr", "0.0.0.0:0", "--data", t.TempDir()}, io.Discard, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "server.addr: refusing to bind non-loopback address") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// vigilBinary builds the vigil command once per test run.
func vigilBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "vigil")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// startProcess starts `vigil serve` as a child process and returns it with
// the address it announced in its "vigil serving" log line.
func startProcess(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(vigilBinary(t), append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "vigil serving" {
				addr <- line.Addr
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, a
	case <-time.After(30 * time.Second):
		t.Fatal("vigil serve did not announce its address within 30s")
	}
	return nil, ""
}

// TestKill9KeepsAcknowledgedEvents kills `vigil serve` with SIGKILL while
// writers are appending, restarts it on the same data directory, and checks
// that every event the server acknowledged (201) is replayed.
func TestKill9KeepsAcknowledgedEvents(t *testing.T) {
	data := t.TempDir()
	cmd, addr := startProcess(t, "--data", data)
	base := "http://" + addr
	th := newThread(t, base)

	var mu sync.Mutex
	acked := map[streams.ID]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				resp, err := client.Post(base+"/v1/threads/"+th+"/events", "application/json", strings.NewReader(textBody(fmt.Sprint(w, "-", i))))
				if err != nil {
					return // the server is gone
				}
				var e streams.Event
				ok := resp.StatusCode == http.StatusCreated && json.NewDecoder(resp.Body).Decode(&e) == nil
				resp.Body.Close()
				if ok {
					mu.Lock()
					acked[e.ID] = true
					mu.Unlock()
				}
			}
		}()
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	cancel()
	wg.Wait()

	_, addr = startProcess(t, "--data", data)
	got := map[streams.ID]bool{}
	for _, id := range replayIDs(t, "http://"+addr, th) {
		got[id] = true
	}
	for id := range acked {
		if !got[id] {
			t.Errorf("acknowledged event %v lost after kill -9", id)
		}
	}
	t.Logf("%d acknowledged events before kill -9, %d replayed after restart", len(acked), len(got))
}

// lockedBuffer is an io.Writer safe for a command's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.b.String()), "\n")
}

// TestTailResumesAcrossRestart follows a thread with `vigil tail`, restarts
// the server under it, and checks that every event is printed exactly once,
// in order.
func TestTailResumesAcrossRestart(t *testing.T) {
	c := testConfig(t)
	m := startMain(t, c)
	base := "http://" + m.Addr()
	th := newThread(t, base)
	for i := range 5 {
		post(t, base+"/v1/threads/"+th+"/events", textBody(fmt.Sprint(i)), nil)
	}
	first := replayIDs(t, base, th)

	var out, errOut lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"tail", th, "--after", first[1].String(), "--server", base, "--json"}, &out, &errOut)
	}()
	waitLines := func(n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for len(out.lines()) < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitLines(3) // events 2, 3, 4

	// Restart the server on the same address and data: tail reconnects.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	c.Server.Addr = m.Addr()
	startMain(t, c) // stopped by the test's cleanup
	for i := 5; i < 8; i++ {
		post(t, base+"/v1/threads/"+th+"/events", textBody(fmt.Sprint(i)), nil)
	}
	waitLines(6)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("tail exited %d: %s", code, errOut.b.String())
	}

	var texts []string
	for _, line := range out.lines() {
		var e streams.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("tail printed %q: %v", line, err)
		}
		d, err := streams.Decode[streams.Text](e)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, d.Text)
	}
	if got, want := strings.Join(texts, ","), "2,3,4,5,6,7"; got != want {
		t.Fatalf("tail printed %s, want %s\nstderr: %s", got, want, errOut.b.String())
	}
}

func TestTailMissingThread(t *testing.T) {
	m := startMain(t, testConfig(t))
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"tail", "th_missing", "--server", "http://" + m.Addr()}, io.Discard, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "404") || !strings.Contains(stderr.String(), "th_missing") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/tasks"
)

// TestServeRunsTasks: `vigil serve` on the embedded store executes runs in
// process: a run made by "run now" is claimed by the built-in workers and
// finishes with its step's result, across a restart of the server.
func TestServeRunsTasks(t *testing.T) {
	c := testConfig(t)
	m := startMain(t, c)
	base := "http://" + m.Addr()
	var task tasks.Task
	spec := `{"title": "sum", "kind": "long_running", "steps": [{"tool": "calculate", "args": {"expression": "40 + 2"}}]}`
	if code := post(t, base+"/v1/tasks", spec, &task); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	waitRun := func(base string) tasks.Run {
		t.Helper()
		var run tasks.Run
		if code := post(t, base+"/v1/tasks/"+task.ID+"/run", "", &run); code != http.StatusCreated {
			t.Fatalf("run now: %d", code)
		}
		deadline := time.Now().Add(10 * time.Second)
		for run.Status != tasks.RunSucceeded {
			if time.Now().After(deadline) {
				t.Fatalf("run %s is still %s after 10s", run.ID, run.Status)
			}
			time.Sleep(20 * time.Millisecond)
			resp, err := http.Get(base + "/v1/runs/" + run.ID)
			if err != nil {
				t.Fatal(err)
			}
			err = json.NewDecoder(resp.Body).Decode(&run)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		return run
	}
	if run := waitRun(base); string(run.Result) != `{"outputs":[{"expression":"40 + 2","result":42}]}` {
		t.Errorf("result %s", run.Result)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = startMain(t, c)
	waitRun("http://" + m.Addr())
}

// TestRetryPolicy checks how the retry section becomes the workers'
// RetryPolicy: a zero there means none, where a zero RetryPolicy field
// would mean the default.
func TestRetryPolicy(t *testing.T) {
	for _, tc := range []struct {
		in   config.Retry
		want tasks.RetryPolicy
	}{
		{config.Default().Retry, tasks.RetryPolicy{Transient: 3, Backoff: tasks.DefaultBackoff, Jitter: 0.2}},
		{config.Retry{Transient: 0, Backoff: []string{"1s"}, JitterPercent: 0}, tasks.RetryPolicy{Transient: -1, Backoff: []time.Duration{time.Second}, Jitter: -1}},
		{config.Retry{Transient: 5, Backoff: []string{}, JitterPercent: 50}, tasks.RetryPolicy{Transient: 5, Backoff: []time.Duration{}, Jitter: 0.5}},
	} {
		got, err := retryPolicy(tc.in)
		if err != nil || got.Transient != tc.want.Transient || got.Jitter != tc.want.Jitter ||
			!slices.Equal(got.Backoff, tc.want.Backoff) || (got.Backoff == nil) != (tc.want.Backoff == nil) {
			t.Errorf("retryPolicy(%+v) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	if _, err := retryPolicy(config.Retry{Backoff: []string{"soon"}}); err == nil || !strings.Contains(err.Error(), "retry.backoff") {
		t.Errorf("a bad backoff: %v", err)
	}
}

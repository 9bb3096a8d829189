package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry/webapitest"
)

// TestServeUsesConfiguredToolURLs: the weather, price and news tools of
// vigil serve send their requests to the servers named by tools.weather,
// tools.price and tools.news, each to its own: a run of a task calling
// the three gets the fake services' answers, and each fake saw only the
// requests meant for it.
func TestServeUsesConfiguredToolURLs(t *testing.T) {
	geo, forecast, quotes, news := webapitest.New(t), webapitest.New(t), webapitest.New(t), webapitest.New(t)
	c := loadConfig(t, fmt.Sprintf(`tools:
  allow: [127.0.0.1]
  weather:
    geocoding_url: %s
    forecast_url: %s/
  price:
    url: %s
  news:
    url: %s/rss
`, geo.URL, forecast.URL, quotes.URL, news.URL))
	m := startMain(t, c)

	spec := `{"title": "data", "kind": "long_running", "steps": [
		{"tool": "weather", "args": {"city": "Berlin", "date": "2026-11-22"}},
		{"tool": "price", "args": {"symbol": "AAPL"}},
		{"tool": "news", "args": {"topic": "AI", "limit": 1}}]}`
	run, _ := runTask(t, "http://"+m.Addr(), spec)
	var res struct{ Outputs []json.RawMessage }
	if err := json.Unmarshal(run.Result, &res); err != nil || len(res.Outputs) != 3 {
		t.Fatalf("result %s: %v", run.Result, err)
	}
	for i, want := range []string{`"region":"Land Berlin"`, `"price":243.01`, `"title":"Open model tops benchmark"`} {
		if !strings.Contains(string(res.Outputs[i]), want) {
			t.Errorf("output %d = %s, want it to hold %s", i, res.Outputs[i], want)
		}
	}

	paths := []string{"/v1/search", "/v1/forecast", "/v8/finance/chart/AAPL", "/rss/search"}
	for i, api := range []*webapitest.Server{geo, forecast, quotes, news} {
		for j, path := range paths {
			want := 0
			if i == j {
				want = 1
			}
			if got := api.Calls(path); got != want {
				t.Errorf("server %d: %d calls of %s, want %d", i, got, path, want)
			}
		}
	}
}

// TestServeSweepsAsConfigured: with scheduler.sweep_every and sweep_after
// of a second, a queued run whose enqueue was lost (stored without a queue
// item, as when Redis drops out between the two) is enqueued again by the
// scheduler's sweep within seconds and runs. With the defaults it would
// wait a minute, and the sweep five.
func TestServeSweepsAsConfigured(t *testing.T) {
	m := startMain(t, loadConfig(t, "scheduler:\n  sweep_every: 1s\n  sweep_after: 1s\n"))
	base := "http://" + m.Addr()
	var task tasks.Task
	spec := `{"title": "sum", "kind": "long_running", "steps": [{"tool": "calculate", "args": {"expression": "40 + 2"}}]}`
	if code := post(t, base+"/v1/tasks", spec, &task); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	now := time.Now().UTC()
	lost := tasks.Run{
		ID: vigil.NewID("run_"), Tenant: task.Tenant, TaskID: task.ID, TaskVersion: task.Version, Spec: task.Spec,
		Slot: now.Truncate(time.Millisecond), Due: now.Truncate(time.Millisecond), Cause: tasks.CauseManual,
		Status: tasks.RunQueued, CreatedAt: now, UpdatedAt: now,
	}
	// The backend's CreateRun stores the run and enqueues nothing.
	if err := m.backend.CreateRun(context.Background(), lost); err != nil {
		t.Fatal(err)
	}
	var run tasks.Run
	for deadline := time.Now().Add(15 * time.Second); run.Status != tasks.RunSucceeded; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) || run.Status == tasks.RunFailed {
			t.Fatalf("run %s is %q (%s) after 15s; the sweep did not enqueue it", lost.ID, run.Status, run.Error)
		}
		getJSON(t, base+"/v1/runs/"+lost.ID, &run)
	}
	if string(run.Result) != `{"outputs":[{"expression":"40 + 2","result":42}]}` {
		t.Errorf("result %s", run.Result)
	}
	if waited := run.StartedAt.Sub(lost.UpdatedAt); waited < time.Second {
		t.Errorf("the run started %s after it was stored; the sweep should have waited sweep_after (1s)", waited)
	}
}

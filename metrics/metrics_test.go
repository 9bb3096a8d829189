package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/metrics"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/tasks"
)

var t0 = time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)

// clock is the test's clock: the Manager, scheduler, queue and worker all
// read it, and the executor moves it to give attempts a duration.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// executor runs each attempt by the run's title: the test's function-field
// fake of a task's work.
type executor func(ctx context.Context, run tasks.Run, rep tasks.Reporter) (tasks.Outcome, error)

func (f executor) Execute(ctx context.Context, run tasks.Run, rep tasks.Reporter) (tasks.Outcome, error) {
	return f(ctx, run, rep)
}

// scrape GETs url and parses the text exposition.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the exposition: %v", err)
	}
	return fams
}

// series returns the metric of family name whose labels are exactly
// labels ("k", "v", …), or nil.
func series(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
				match = false
			}
		}
		if match {
			return m
		}
	}
	return nil
}

// value is the value of a counter or gauge series; it fails the test when
// the series is missing.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	m := series(fams, name, labels...)
	switch {
	case m == nil:
		t.Errorf("no series %s%v", name, labels)
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Errorf("%s%v is neither a counter nor a gauge", name, labels)
	return -1
}

// histogram returns the sample count and sum of a histogram series.
func histogram(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) (uint64, float64) {
	t.Helper()
	m := series(fams, name, labels...)
	if m == nil || m.Histogram == nil {
		t.Errorf("no histogram %s%v", name, labels)
		return 0, -1
	}
	return m.Histogram.GetSampleCount(), m.Histogram.GetSampleSum()
}

// expect checks counters and gauges by "name{k=v,…}" keys.
func expect(t *testing.T, when string, fams map[string]*dto.MetricFamily, want map[string]float64) {
	t.Helper()
	for key, w := range want {
		name, rest, _ := strings.Cut(key, "{")
		var labels []string
		if rest = strings.TrimSuffix(rest, "}"); rest != "" {
			for _, kv := range strings.Split(rest, ",") {
				k, v, _ := strings.Cut(kv, "=")
				labels = append(labels, k, v)
			}
		}
		if got := value(t, fams, name, labels...); got != w {
			t.Errorf("%s: %s = %v, want %v", when, key, got, w)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTasksMetrics drives the real Scheduler and Worker over a bolt file,
// observed by a metrics.Tasks, and reads its metrics over HTTP: a
// scheduled run fired 3s late that succeeds, a run that fails for good (a
// dead letter), one retried at once after a transient error, and one
// waiting for its backoff after a temporary error.
func TestTasksMetrics(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := &clock{now: t0}
	q := bolt.NewQueue(db, bolt.QueueOptions{Now: clk.Now})
	m := metrics.NewTasks(metrics.TasksOptions{Queue: q})
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)

	mgr := tasks.NewManager(tasks.Options{Store: &tasks.DispatchStore{Store: db, Queue: q}, Log: db, Now: clk.Now})
	sched := tasks.NewScheduler(tasks.SchedulerOptions{Store: db, Queue: q, Log: db, Now: clk.Now, Observer: m})
	ctx := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: "ana"})
	active := func(s tasks.Spec) tasks.Task {
		t.Helper()
		task, err := mgr.Create(ctx, s)
		if err == nil {
			task, err = mgr.Confirm(ctx, task.ID)
		}
		if err != nil {
			t.Fatalf("task %s: %v", s.Title, err)
		}
		return task
	}
	step := []tasks.Step{{Tool: "noop"}}
	at := t0.Add(time.Hour)
	active(tasks.Spec{Title: "report", Kind: tasks.KindOneShot, Priority: tasks.PriorityHigh, Trigger: tasks.Trigger{At: at}, Steps: step})
	var runs []tasks.Run
	for _, title := range []string{"broken", "flaky", "limited"} {
		task := active(tasks.Spec{Title: title, Kind: tasks.KindLongRunning, Steps: step})
		r, err := mgr.RunNow(ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}

	clk.Set(at.Add(3 * time.Second))
	if rep, err := sched.Tick(ctx); err != nil || rep.Fired != 1 {
		t.Fatalf("Tick: %+v, %v; want one run fired", rep, err)
	}
	before := scrape(t, srv.URL)
	expect(t, "before the worker", before, map[string]float64{
		"vigil_queue_up":                               1,
		"vigil_queue_depth{priority=high}":             1,
		"vigil_queue_depth{priority=normal}":           3,
		"vigil_queue_depth{priority=low}":              0,
		"vigil_queue_delayed":                          0,
		"vigil_queue_leased":                           0,
		"vigil_scheduler_fired_total{priority=high}":   1,
		"vigil_scheduler_fired_total{priority=normal}": 0,
		"vigil_runs_total{outcome=succeeded}":          0,
	})
	if n, sum := histogram(t, before, "vigil_scheduler_lag_seconds"); n != 1 || sum != 3 {
		t.Errorf("scheduler lag: %d samples, sum %vs; want one of 3s", n, sum)
	}

	// One attempt at a time, so that each moves the shared clock alone.
	w := tasks.NewWorker(tasks.WorkerOptions{
		Store: db, Queue: q, Log: db, Now: clk.Now, Observer: m, Concurrency: 1,
		Executor: executor(func(_ context.Context, run tasks.Run, _ tasks.Reporter) (tasks.Outcome, error) {
			switch run.Spec.Title {
			case "report":
				clk.Add(2 * time.Second)
				return tasks.Outcome{Summary: "done"}, nil
			case "broken":
				clk.Add(500 * time.Millisecond)
				return tasks.Outcome{}, tasks.Permanent(errors.New("no such city"))
			case "flaky":
				if run.Attempt == 1 {
					clk.Add(250 * time.Millisecond)
					return tasks.Outcome{}, tasks.Transient(errors.New("connection reset"))
				}
				return tasks.Outcome{Summary: "ok"}, nil
			case "limited":
				return tasks.Outcome{}, tasks.Temporary(errors.New("slow down"), 0)
			}
			return tasks.Outcome{}, fmt.Errorf("unexpected run %q", run.Spec.Title)
		}),
	})
	w.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})

	wantStatus := map[string]tasks.RunStatus{runs[0].ID: tasks.RunFailed, runs[1].ID: tasks.RunSucceeded, runs[2].ID: tasks.RunRetrying}
	waitFor(t, "the runs to settle", func() bool {
		for id, st := range wantStatus {
			if r, err := db.Run(ctx, "acme", id); err != nil || r.Status != st {
				return false
			}
		}
		st, err := q.Stats(ctx)
		// The scheduled run acked, the retrying one delayed, no lease held:
		// every observer call is made before the ack or release.
		return err == nil && st.Leased == 0 && st.Delayed == 1 && st.Ready[tasks.PriorityHigh] == 0
	})

	after := scrape(t, srv.URL)
	expect(t, "after the runs", after, map[string]float64{
		"vigil_queue_up":                     1,
		"vigil_queue_depth{priority=high}":   0,
		"vigil_queue_depth{priority=normal}": 0,
		"vigil_queue_delayed":                1,
		"vigil_queue_leased":                 0,

		"vigil_runs_total{outcome=succeeded}": 2,
		"vigil_runs_total{outcome=failed}":    1,
		"vigil_runs_total{outcome=retried}":   2,
		"vigil_runs_total{outcome=yielded}":   0,
		"vigil_runs_total{outcome=cancelled}": 0,
		"vigil_runs_total{outcome=lost}":      0,

		"vigil_run_retries_total{class=transient}":  1,
		"vigil_run_retries_total{class=temporary}":  1,
		"vigil_run_retries_total{class=permanent}":  0,
		"vigil_dead_letters_total{class=permanent}": 1,
		"vigil_dead_letters_total{class=transient}": 0,

		"vigil_scheduler_fired_total{priority=high}": 1,
	})
	for _, h := range []struct {
		outcome string
		n       uint64
		sum     float64
	}{{"succeeded", 2, 2}, {"failed", 1, 0.5}, {"retried", 2, 0.25}} {
		if n, sum := histogram(t, after, "vigil_run_duration_seconds", "outcome", h.outcome); n != h.n || sum != h.sum {
			t.Errorf("run duration of %s attempts: %d samples, sum %vs; want %d, %vs", h.outcome, n, sum, h.n, h.sum)
		}
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds", "promhttp_metric_handler_requests_total"} {
		if after[name] == nil {
			t.Errorf("no %s: the Go, process and handler collectors are registered", name)
		}
	}
}

// queue is a tasks.Queue whose Stats the test sets; its other methods are
// not called.
type queue struct {
	tasks.Queue
	stats func(ctx context.Context) (tasks.QueueStats, error)
}

func (q queue) Stats(ctx context.Context) (tasks.QueueStats, error) { return q.stats(ctx) }

// TestQueueStatsFailure: a queue that fails or hangs makes the scrape
// report vigil_queue_up 0 and no depth, within the stats timeout, and
// serve every other metric.
func TestQueueStatsFailure(t *testing.T) {
	for name, stats := range map[string]func(context.Context) (tasks.QueueStats, error){
		"error": func(context.Context) (tasks.QueueStats, error) {
			return tasks.QueueStats{}, errors.New("store: disk on fire")
		},
		"hangs": func(ctx context.Context) (tasks.QueueStats, error) {
			<-ctx.Done()
			return tasks.QueueStats{}, ctx.Err()
		},
	} {
		t.Run(name, func(t *testing.T) {
			m := metrics.NewTasks(metrics.TasksOptions{Queue: queue{stats: stats}, StatsTimeout: 50 * time.Millisecond})
			srv := httptest.NewServer(m.Handler())
			defer srv.Close()
			m.Finished(tasks.AttemptSucceeded, time.Second)
			start := time.Now()
			fams := scrape(t, srv.URL)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("the scrape took %s", took)
			}
			expect(t, "stats failing", fams, map[string]float64{
				"vigil_queue_up":                      0,
				"vigil_runs_total{outcome=succeeded}": 1,
			})
			for _, gone := range []string{"vigil_queue_depth", "vigil_queue_delayed", "vigil_queue_leased"} {
				if fams[gone] != nil {
					t.Errorf("%s reported while the queue cannot be read", gone)
				}
			}
		})
	}
}

// TestTasksApart: two Tasks in one process count apart (each has its own
// registry), and unknown label values are folded into few.
func TestTasksApart(t *testing.T) {
	a, b := metrics.NewTasks(metrics.TasksOptions{}), metrics.NewTasks(metrics.TasksOptions{})
	a.Fired("", 1500*time.Millisecond) // an unset priority is normal
	a.Retried("made-up")
	a.DeadLettered(tasks.ErrorTemporary)
	srvA, srvB := httptest.NewServer(a.Handler()), httptest.NewServer(b.Handler())
	defer srvA.Close()
	defer srvB.Close()
	fa, fb := scrape(t, srvA.URL), scrape(t, srvB.URL)
	expect(t, "a", fa, map[string]float64{
		"vigil_scheduler_fired_total{priority=normal}": 1,
		"vigil_run_retries_total{class=other}":         1,
		"vigil_dead_letters_total{class=temporary}":    1,
	})
	expect(t, "b", fb, map[string]float64{
		"vigil_scheduler_fired_total{priority=normal}": 0,
		"vigil_dead_letters_total{class=temporary}":    0,
	})
	if n, sum := histogram(t, fa, "vigil_scheduler_lag_seconds"); n != 1 || sum != 1.5 {
		t.Errorf("lag: %d samples, sum %v; want one of 1.5s", n, sum)
	}
	if fa["vigil_queue_up"] != nil {
		t.Error("queue gauges without a queue")
	}
}

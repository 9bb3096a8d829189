package httpapi_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/httpapi"
	"github.com/vigilhq/vigil/metrics"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/tasks"
)

// TestMetricsRoute: GET /metrics serves Options.Metrics, the Prometheus
// text exposition with the queue read at the scrape; without it the route
// is not there. (Who may read it: TestRouteMatrix.)
func TestMetricsRoute(t *testing.T) {
	b := open(t, storeConfigs(t, 0)[config.DriverBolt])
	q := bolt.NewQueue(b.(*bolt.DB), bolt.QueueOptions{})
	m := metrics.NewTasks(metrics.TasksOptions{Queue: q})
	m.Finished(tasks.AttemptSucceeded, 1200*time.Millisecond)
	m.DeadLettered(tasks.ErrorPermanent)
	srv := serve(t, b, httpapi.Options{Metrics: m.Handler()})

	resp, err := plainClient.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s, %q: %s", resp.Status, ct, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the exposition: %v", err)
	}
	counter := func(name, label, value string) float64 {
		for _, s := range fams[name].GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return s.GetCounter().GetValue()
				}
			}
		}
		return -1
	}
	if n := counter("vigil_runs_total", "outcome", "succeeded"); n != 1 {
		t.Errorf(`vigil_runs_total{outcome="succeeded"} = %v, want 1`, n)
	}
	if n := counter("vigil_dead_letters_total", "class", "permanent"); n != 1 {
		t.Errorf(`vigil_dead_letters_total{class="permanent"} = %v, want 1`, n)
	}
	if up := fams["vigil_queue_up"].GetMetric(); len(up) != 1 || up[0].GetGauge().GetValue() != 1 {
		t.Errorf("vigil_queue_up = %v, want 1: the bolt queue is read at the scrape", up)
	}

	bare := serve(t, b, httpapi.Options{})
	var e apiError
	if resp := do(t, "GET", bare.URL+"/metrics", "", nil, &e); resp.StatusCode != 404 || e.Error.Code != "not_found" {
		t.Errorf("GET /metrics without Options.Metrics: %s %+v, want 404 not_found", resp.Status, e)
	}
}

package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/tasks"
)

const oilMonitor = `{
	"title": "oil over 100",
	"kind": "monitor",
	"trigger": {"event": "oil-price"},
	"slots": {"event": {"price": 0}},
	"monitor": {"source": {"tool": "echo", "args": {"data": "{{event}}"}}, "condition": "value.data.price > 100"},
	"notify": [{"url": "https://example.com/hook", "secret": "s3cret"}]
}`

// TestIngestEvent: POST /v1/events/{source} creates a run with cause
// event for each active monitor subscribed to the source, carrying the
// body as the event slot; bad input is a 400 naming the field.
func TestIngestEvent(t *testing.T) {
	srv := serveTasks(t)
	task := srv.create(t, oilMonitor)
	draft := srv.create(t, oilMonitor) // not confirmed: does not wake
	srv.post(t, "/v1/tasks/"+task.ID+"/confirm", http.StatusOK, nil)

	var got struct {
		Source string      `json:"source"`
		Runs   []tasks.Run `json:"runs"`
	}
	resp := do(t, "POST", srv.URL+"/v1/events/oil-price", `{"price": 120.5}`, nil, &got)
	if resp.StatusCode != http.StatusAccepted || got.Source != "oil-price" || len(got.Runs) != 1 {
		t.Fatalf("ingest: %s %+v; want 202 with one run", resp.Status, got)
	}
	run := got.Runs[0]
	ev, _ := run.Spec.Slots["event"].(map[string]any)
	if run.TaskID != task.ID || run.Cause != tasks.CauseEvent || run.Status != tasks.RunQueued || ev["price"] != 120.5 {
		t.Errorf("run %+v; want a queued event run of %s with the event as its slot", run, task.ID)
	}
	if run.Spec.Notify[0].Secret != "" {
		t.Error("the answer shows a webhook secret")
	}
	stored, err := srv.store.Run(context.Background(), vigil.DefaultTenant, run.ID)
	if err != nil || stored.TaskID != task.ID {
		t.Errorf("stored run: %+v, %v", stored, err)
	}
	if page, _ := srv.store.ListRuns(context.Background(), vigil.DefaultTenant, tasks.RunFilter{TaskID: draft.ID, Limit: 10}); len(page.Runs) != 0 {
		t.Error("a draft monitor woke")
	}

	resp = do(t, "POST", srv.URL+"/v1/events/nobody-listens", `{}`, nil, &got)
	if resp.StatusCode != http.StatusAccepted || got.Runs == nil || len(got.Runs) != 0 {
		t.Errorf("a source nobody listens to: %s %+v; want 202 with runs []", resp.Status, got)
	}
	for _, c := range []struct{ path, body, field string }{
		{"/v1/events/oil-price", ``, "body"},
		{"/v1/events/oil-price", `{"price":`, "body"},
		{"/v1/events/bad%20source", `{}`, "source"},
	} {
		var e struct {
			Error struct{ Code, Field string }
		}
		resp := do(t, "POST", srv.URL+c.path, c.body, nil, &e)
		if resp.StatusCode != http.StatusBadRequest || e.Error.Field != c.field {
			t.Errorf("POST %s %q: %s %+v; want 400 naming %s", c.path, c.body, resp.Status, e, c.field)
		}
	}
}

// TestRetryAndDeadLetters: a failed run is listed among the task's dead
// letters and POST /v1/runs/{id}/retry replays it with changed slots; a
// run that has not failed cannot be retried.
func TestRetryAndDeadLetters(t *testing.T) {
	srv := serveTasks(t)
	task := srv.create(t, weatherTask)
	var run tasks.Run
	srv.post(t, "/v1/tasks/"+task.ID+"/run", http.StatusCreated, &run)

	var e struct {
		Error struct{ Code, Field, Message string }
	}
	resp := do(t, "POST", srv.URL+"/v1/runs/"+run.ID+"/retry", "", nil, &e)
	if resp.StatusCode != http.StatusConflict || e.Error.Field != "status" || !strings.Contains(e.Error.Message, "queued") {
		t.Errorf("retry of a queued run: %s %+v; want 409 naming the status", resp.Status, e)
	}

	failed := run
	failed.Status, failed.Error, failed.ErrorClass = tasks.RunFailed, "no such city", tasks.ErrorPermanent
	if err := srv.store.UpdateRun(context.Background(), failed, tasks.RunQueued); err != nil {
		t.Fatal(err)
	}
	var dead tasks.RunPage
	if resp := do(t, "GET", srv.URL+"/v1/tasks/"+task.ID+"/dead-letters", "", nil, &dead); resp.StatusCode != http.StatusOK || len(dead.Runs) != 1 || dead.Runs[0].ID != run.ID {
		t.Fatalf("dead letters: %s %+v", resp.Status, dead)
	}
	if dead.Runs[0].Spec.Notify[0].Secret != "" {
		t.Error("dead letters show a webhook secret")
	}
	if resp := do(t, "GET", srv.URL+"/v1/tasks/"+task.ID+"/dead-letters?status=failed", "", nil, &e); resp.StatusCode != http.StatusBadRequest || e.Error.Field != "status" {
		t.Errorf("unknown parameter: %s %+v", resp.Status, e)
	}

	var retry tasks.Run
	resp = do(t, "POST", srv.URL+"/v1/runs/"+run.ID+"/retry", `{"slots": {"city": "Paris"}}`, nil, &retry)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") != "/v1/runs/"+retry.ID {
		t.Fatalf("retry: %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	if retry.Cause != tasks.CauseRetry || retry.Parent != run.ID || retry.Status != tasks.RunQueued || retry.Spec.Slots["city"] != "Paris" {
		t.Errorf("retry run %+v", retry)
	}
	resp = do(t, "POST", srv.URL+"/v1/runs/"+run.ID+"/retry", `{"slots": {"bad name": 1}}`, nil, &e)
	if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(e.Error.Field, "slots") {
		t.Errorf("retry with a bad slot: %s %+v; want 400 naming the slot", resp.Status, e)
	}
	resp = do(t, "POST", srv.URL+"/v1/runs/"+run.ID+"/retry", `{"slotz": {}}`, nil, &e)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("retry with an unknown field: %s", resp.Status)
	}
	if resp := do(t, "POST", srv.URL+"/v1/runs/run_missing/retry", "", nil, &e); resp.StatusCode != http.StatusNotFound {
		t.Errorf("retry of a missing run: %s", resp.Status)
	}
}

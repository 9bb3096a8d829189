package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/httpapi"
	"github.com/vigilhq/vigil/store"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

// taskServer is an API server with task management over a real bolt file.
type taskServer struct {
	*instance
	store tasks.Store
}

func serveTasks(t *testing.T) *taskServer {
	t.Helper()
	b := open(t, storeConfigs(t, 0)[config.DriverBolt])
	ts, err := store.Tasks(b)
	if err != nil {
		t.Fatal(err)
	}
	m := tasks.NewManager(tasks.Options{Store: ts, Log: b})
	return &taskServer{instance: serve(t, b, httpapi.Options{Tasks: m}), store: ts}
}

func (s *taskServer) create(t *testing.T, body string) tasks.Task {
	t.Helper()
	var task tasks.Task
	resp := do(t, "POST", s.URL+"/v1/tasks", body, nil, &task)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create task: %s", resp.Status)
	}
	if loc := resp.Header.Get("Location"); loc != "/v1/tasks/"+task.ID {
		t.Errorf("Location %q", loc)
	}
	return task
}

func (s *taskServer) post(t *testing.T, path string, wantStatus int, out any) *http.Response {
	t.Helper()
	resp := do(t, "POST", s.URL+path, "", nil, out)
	if resp.StatusCode != wantStatus {
		t.Fatalf("POST %s: %s, want %d", path, resp.Status, wantStatus)
	}
	return resp
}

const weatherTask = `{
	"title": "Beijing weather",
	"kind": "periodic",
	"trigger": {"cron": "0 8 * * *", "tz": "Asia/Shanghai", "jitter": "30s"},
	"instruction": "Push me Beijing's weather",
	"slots": {"city": "Beijing"},
	"tools": ["weather"],
	"steps": [{"tool": "weather", "args": {"city": "{{city}}"}}],
	"notify": [{"url": "https://example.com/hook", "secret": "s3cret"}]
}`

func TestTaskLifecycle(t *testing.T) {
	srv := serveTasks(t)
	task := srv.create(t, weatherTask)
	if task.Status != tasks.StatusDraft || task.Version != 1 || task.Tenant != vigil.DefaultTenant || task.Owner != "local" || task.ThreadID == "" {
		t.Fatalf("created %+v", task)
	}
	if task.Notify[0].Secret != "" || !task.Notify[0].HasSecret {
		t.Errorf("the API showed a webhook secret: %+v", task.Notify[0])
	}

	var got tasks.Task
	resp := do(t, "GET", srv.URL+"/v1/tasks/"+task.ID, "", nil, &got)
	if resp.StatusCode != 200 || got.ID != task.ID || resp.Header.Get("ETag") != `"1"` {
		t.Fatalf("get: %s %+v etag %q", resp.Status, got, resp.Header.Get("ETag"))
	}

	srv.post(t, "/v1/tasks/"+task.ID+"/confirm", 200, &got)
	if got.Status != tasks.StatusActive || got.NextFire == nil || got.Version != 2 {
		t.Fatalf("confirmed: %+v", got)
	}
	if h := got.NextFire.UTC().Hour(); h != 0 {
		t.Errorf("next fire %v, want 08:00 Shanghai (00:00 UTC)", got.NextFire)
	}

	// PATCH changes only what it names, against the version read.
	resp = do(t, "PATCH", srv.URL+"/v1/tasks/"+task.ID, `{"title":"Beijing weather, daily","priority":"high"}`, map[string]string{"If-Match": `"2"`}, &got)
	if resp.StatusCode != 200 || got.Title != "Beijing weather, daily" || got.Priority != tasks.PriorityHigh || got.Version != 3 ||
		got.Trigger.Cron != "0 8 * * *" || got.Slots["city"] != "Beijing" || got.NextFire == nil {
		t.Fatalf("patch: %s %+v", resp.Status, got)
	}
	stored, err := srv.store.Task(t.Context(), vigil.DefaultTenant, task.ID)
	if err != nil || stored.Notify[0].Secret != "s3cret" {
		t.Errorf("the webhook secret did not survive a PATCH that sent it back redacted: %+v, %v", stored.Notify, err)
	}
	// A stale version is a conflict naming the version.
	var e apiError
	resp = do(t, "PATCH", srv.URL+"/v1/tasks/"+task.ID, `{"title":"lost","version":2}`, nil, &e)
	if resp.StatusCode != 409 || e.Error.Field != "version" {
		t.Errorf("stale PATCH: %s %+v", resp.Status, e.Error)
	}
	// PUT replaces the whole spec.
	put := strings.Replace(weatherTask, `"Beijing weather"`, `"Replaced"`, 1)
	resp = do(t, "PUT", srv.URL+"/v1/tasks/"+task.ID, put, nil, &got)
	if resp.StatusCode != 200 || got.Title != "Replaced" || got.Priority != tasks.PriorityNormal || got.Version != 4 {
		t.Errorf("put: %s %+v", resp.Status, got)
	}

	got = tasks.Task{}
	srv.post(t, "/v1/tasks/"+task.ID+"/pause", 200, &got)
	if got.Status != tasks.StatusPaused || got.NextFire != nil {
		t.Errorf("paused: %+v", got)
	}
	srv.post(t, "/v1/tasks/"+task.ID+"/resume", 200, &got)
	if got.Status != tasks.StatusActive || got.NextFire == nil {
		t.Errorf("resumed: %+v", got)
	}

	// Runs.
	var run tasks.Run
	resp = srv.post(t, "/v1/tasks/"+task.ID+"/run", 201, &run)
	if run.Status != tasks.RunQueued || run.Cause != tasks.CauseManual || run.TaskVersion != 6 || resp.Header.Get("Location") != "/v1/runs/"+run.ID {
		t.Fatalf("run now: %+v", run)
	}
	if run.Spec.Notify[0].Secret != "" {
		t.Error("the run showed the webhook secret")
	}
	var runs tasks.RunPage
	if resp := do(t, "GET", srv.URL+"/v1/tasks/"+task.ID+"/runs", "", nil, &runs); resp.StatusCode != 200 || len(runs.Runs) != 1 || runs.Runs[0].ID != run.ID {
		t.Fatalf("list runs: %s %+v", resp.Status, runs)
	}
	var r tasks.Run
	if resp := do(t, "GET", srv.URL+"/v1/runs/"+run.ID, "", nil, &r); resp.StatusCode != 200 || r.ID != run.ID {
		t.Fatalf("get run: %s %+v", resp.Status, r)
	}
	srv.post(t, "/v1/runs/"+run.ID+"/cancel", 200, &r)
	if r.Status != tasks.RunCancelled {
		t.Errorf("cancelled run: %+v", r)
	}
	resp = do(t, "POST", srv.URL+"/v1/runs/"+run.ID+"/cancel", "", nil, &e)
	if resp.StatusCode != 409 || e.Error.Code != "conflict" || e.Error.Field != "status" {
		t.Errorf("second cancel: %s %+v", resp.Status, e.Error)
	}

	// The thread tells the whole story.
	var rp struct{ Events []streams.Event }
	do(t, "GET", srv.URL+"/v1/threads/"+task.ThreadID+"/replay", "", nil, &rp)
	var story []string
	for _, ev := range rp.Events {
		p, err := streams.Decode[streams.TaskStatus](ev)
		if err != nil {
			t.Fatal(err)
		}
		story = append(story, p.From+">"+p.To)
	}
	want := ">draft draft>active active>active active>active active>paused paused>active >queued queued>cancelled"
	if strings.Join(story, " ") != want {
		t.Errorf("thread events:\n got %s\nwant %s", strings.Join(story, " "), want)
	}

	srv.post(t, "/v1/tasks/"+task.ID+"/archive", 200, &got)
	if resp := do(t, "DELETE", srv.URL+"/v1/tasks/"+task.ID, "", nil, nil); resp.StatusCode != 204 {
		t.Fatalf("delete: %s", resp.Status)
	}
	if resp := do(t, "GET", srv.URL+"/v1/tasks/"+task.ID, "", nil, &e); resp.StatusCode != 404 {
		t.Errorf("get after delete: %s", resp.Status)
	}
	if resp := do(t, "GET", srv.URL+"/v1/runs/"+run.ID, "", nil, &e); resp.StatusCode != 404 {
		t.Errorf("run after delete: %s", resp.Status)
	}
}

func TestTaskList(t *testing.T) {
	srv := serveTasks(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, srv.create(t, strings.Replace(weatherTask, "Beijing weather", fmt.Sprint("task ", i), 1)).ID)
	}
	monitor := srv.create(t, `{"title":"oil","kind":"monitor","trigger":{"every":"15m","event":"oil"},
		"monitor":{"source":{"tool":"price","args":{"symbol":"BRENT"}},"condition":"value < prev * 0.95"}}`)
	srv.post(t, "/v1/tasks/"+ids[1]+"/confirm", 200, nil)

	var all []string
	next := ""
	for range 10 {
		var page tasks.TaskPage
		url := srv.URL + "/v1/tasks?limit=2"
		if next != "" {
			url += "&cursor=" + next
		}
		if resp := do(t, "GET", url, "", nil, &page); resp.StatusCode != 200 {
			t.Fatalf("list: %s", resp.Status)
		}
		for _, task := range page.Tasks {
			all = append(all, task.ID)
		}
		if next = page.Next; next == "" {
			break
		}
	}
	if want := strings.Join(append(ids, monitor.ID), " "); strings.Join(all, " ") != want {
		t.Errorf("paged list:\n got %v\nwant %v", all, want)
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"status=active", []string{ids[1]}},
		{"kind=monitor", []string{monitor.ID}},
		{"event=oil", []string{monitor.ID}},
		{"owner=local&status=draft&kind=monitor", []string{monitor.ID}},
		{"owner=someone", nil},
	} {
		var page tasks.TaskPage
		do(t, "GET", srv.URL+"/v1/tasks?"+tc.query, "", nil, &page)
		var got []string
		for _, task := range page.Tasks {
			got = append(got, task.ID)
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("?%s = %v, want %v", tc.query, got, tc.want)
		}
	}
	var body map[string]json.RawMessage
	do(t, "GET", srv.URL+"/v1/tasks?owner=someone", "", nil, &body)
	if string(body["tasks"]) != "[]" {
		t.Errorf("an empty list is %s, want []", body["tasks"])
	}
}

// TestTaskBadInput sends each kind of bad input the issue names and checks
// the status, the field named, and that nothing changed.
func TestTaskBadInput(t *testing.T) {
	srv := serveTasks(t)
	a := srv.create(t, weatherTask)
	b := srv.create(t, weatherTask)
	if resp := do(t, "PATCH", srv.URL+"/v1/tasks/"+a.ID, `{"then":["`+b.ID+`"]}`, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("chain a → b: %s", resp.Status)
	}
	archived := srv.create(t, weatherTask)
	srv.post(t, "/v1/tasks/"+archived.ID+"/archive", 200, nil)

	// snapshot returns every task as stored, and the events of their
	// threads, as one string.
	snapshot := func() string {
		var sb strings.Builder
		page, err := srv.store.ListTasks(t.Context(), vigil.DefaultTenant, tasks.TaskFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range page.Tasks {
			j, _ := json.Marshal(task)
			sb.Write(j)
			p, err := srv.log.Read(t.Context(), vigil.DefaultTenant, task.ThreadID, streams.ID{}, 100)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&sb, " events %d\n", len(p.Events))
		}
		return sb.String()
	}
	before := snapshot()

	with := func(old, new string) string { return strings.Replace(weatherTask, old, new, 1) }
	cases := []struct {
		name, method, path, body string
		status                   int
		field, message           string
	}{
		{"invalid cron", "POST", "/v1/tasks", with(`"0 8 * * *"`, `"0 8 * * * * *"`), 400, "trigger.cron", "not a cron expression"},
		{"invalid cron on update", "PATCH", "/v1/tasks/" + a.ID, `{"trigger":{"cron":"61 8 * * *"}}`, 400, "trigger.cron", ""},
		{"unknown zone", "POST", "/v1/tasks", with(`"Asia/Shanghai"`, `"Mars/Olympus_Mons"`), 400, "trigger.tz", "unknown time zone"},
		{"unknown zone on update", "PATCH", "/v1/tasks/" + a.ID, `{"trigger":{"cron":"0 8 * * *","tz":"Europe/Atlantis"}}`, 400, "trigger.tz", "unknown time zone"},
		{"negative interval", "POST", "/v1/tasks", with(`"cron": "0 8 * * *", "tz": "Asia/Shanghai", "jitter": "30s"`, `"every": "-15m"`), 400, "trigger.every", "must be positive"},
		{"interval not a duration", "POST", "/v1/tasks", with(`"cron": "0 8 * * *", "tz": "Asia/Shanghai", "jitter": "30s"`, `"every": "often"`), 400, "trigger.every", "duration"},
		{"expression does not compile", "POST", "/v1/tasks", `{"title":"oil","kind":"monitor","trigger":{"every":"15m"},
			"monitor":{"source":{"tool":"price"},"condition":"value < prev *"}}`, 400, "monitor.condition", "does not compile"},
		{"expression with an unknown name", "POST", "/v1/tasks", `{"title":"oil","kind":"monitor","trigger":{"every":"15m"},
			"monitor":{"source":{"tool":"price"},"condition":"price < 80"}}`, 400, "monitor.condition", "unknown name price"},
		{"cycle", "PATCH", "/v1/tasks/" + b.ID, `{"then":["` + a.ID + `"]}`, 400, "then", "cycle " + b.ID + " → " + a.ID + " → " + b.ID},
		{"self chain", "PATCH", "/v1/tasks/" + b.ID, `{"then":["` + b.ID + `"]}`, 400, "then", "cycle"},
		{"chain to nothing", "POST", "/v1/tasks", with(`"tools"`, `"then": ["tsk_nope"], "tools"`), 400, "then.0", "no task"},
		{"confirm archived", "POST", "/v1/tasks/" + archived.ID + "/confirm", "", 409, "status", "archived"},
		{"resume archived", "POST", "/v1/tasks/" + archived.ID + "/resume", "", 409, "status", "archived"},
		{"pause archived", "POST", "/v1/tasks/" + archived.ID + "/pause", "", 409, "status", "archived"},
		{"archive archived", "POST", "/v1/tasks/" + archived.ID + "/archive", "", 409, "status", "archived"},
		{"update archived", "PATCH", "/v1/tasks/" + archived.ID, `{"title":"x"}`, 409, "status", "archived"},
		{"run archived", "POST", "/v1/tasks/" + archived.ID + "/run", "", 409, "status", "archived"},
		{"resume a draft", "POST", "/v1/tasks/" + a.ID + "/resume", "", 409, "status", "draft"},
		{"unknown field", "POST", "/v1/tasks", with(`"title"`, `"titel": "x", "title"`), 400, "titel", "not a task field"},
		{"server field", "POST", "/v1/tasks", with(`"title"`, `"status": "active", "title"`), 400, "status", "set by the server"},
		{"wrong type", "POST", "/v1/tasks", with(`"slots": {"city": "Beijing"}`, `"slots": ["Beijing"]`), 400, "slots", "an object"},
		{"not an object", "POST", "/v1/tasks", `[1,2]`, 400, "", "JSON object"},
		{"missing slot", "POST", "/v1/tasks", with(`"{{city}}"`, `"{{town}}"`), 400, "steps.0.args.city", `"town"`},
		{"bad version", "PATCH", "/v1/tasks/" + a.ID, `{"title":"x","version":"two"}`, 400, "version", ""},
		{"bad If-Match", "PATCH", "/v1/tasks/" + a.ID, `{"title":"x"}`, 400, "If-Match", ""},
		{"bad limit", "GET", "/v1/tasks?limit=lots", "", 400, "limit", ""},
		{"bad status filter", "GET", "/v1/tasks?status=sleeping", "", 400, "status", ""},
		{"unknown filter", "GET", "/v1/tasks?colour=red", "", 400, "colour", ""},
		{"bad cursor", "GET", "/v1/tasks?cursor=zzz", "", 400, "cursor", ""},
		{"action with a body", "POST", "/v1/tasks/" + a.ID + "/confirm", `{"force":true}`, 400, "", "force"},
		{"missing task", "GET", "/v1/tasks/tsk_nope", "", 404, "", "tsk_nope"},
		{"malformed task id", "POST", "/v1/tasks/a%20b/confirm", "", 404, "", ""},
		{"missing run", "POST", "/v1/runs/run_nope/cancel", "", 404, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.name == "bad If-Match" {
				hdr["If-Match"] = `"v2"`
			}
			var e apiError
			resp := do(t, tc.method, srv.URL+tc.path, tc.body, hdr, &e)
			t.Logf("%d %s: %s", resp.StatusCode, e.Error.Field, e.Error.Message)
			if resp.StatusCode != tc.status || e.Error.Field != tc.field || !strings.Contains(e.Error.Message, tc.message) {
				t.Errorf("got %d %+v; want %d field %q message containing %q", resp.StatusCode, e.Error, tc.status, tc.field, tc.message)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
		})
	}
	if after := snapshot(); after != before {
		t.Errorf("bad input changed the store:\nbefore %s\nafter  %s", before, after)
	}
}

func TestTasksUnavailable(t *testing.T) {
	srv := serve(t, open(t, storeConfigs(t, 0)[config.DriverBolt]), httpapi.Options{})
	var e apiError
	if resp := do(t, "GET", srv.URL+"/v1/tasks", "", nil, &e); resp.StatusCode != 503 || e.Error.Code != "unavailable" {
		t.Errorf("tasks without a manager: %s %+v", resp.Status, e.Error)
	}
}

// TestTaskNextFireJitter checks that the API's next_fire is the slot, not
// the jittered due time.
func TestTaskNextFireJitter(t *testing.T) {
	srv := serveTasks(t)
	task := srv.create(t, weatherTask)
	var got tasks.Task
	srv.post(t, "/v1/tasks/"+task.ID+"/confirm", 200, &got)
	if got.NextFire == nil || got.NextFire.Second() != 0 || got.NextFire.Nanosecond() != 0 {
		t.Errorf("next fire %v, want a whole minute", got.NextFire)
	}
	e, err := srv.store.Next(t.Context(), vigil.DefaultTenant, task.ID)
	if err != nil || e.Due.Sub(e.Slot) < 0 || e.Due.Sub(e.Slot) >= 30*time.Second {
		t.Errorf("entry %+v, %v; want due within 30s of the slot", e, err)
	}
}

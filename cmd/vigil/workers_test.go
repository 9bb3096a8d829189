package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

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

package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/httpapi"
	"github.com/vigilhq/vigil/memory"
	"github.com/vigilhq/vigil/store/bolt"
)

// memoryServer serves the API over a bolt file with a memory service under
// key, and returns the server, the service and the file's path.
func memoryServer(t *testing.T, key []byte) (*instance, *memory.Service, *bolt.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vigil.db")
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := memory.New(db, memory.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, db, httpapi.Options{Memory: svc}), svc, db, path
}

// local is the principal every request acts for until auth is configured.
func local() context.Context {
	return vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: vigil.DefaultTenant, User: "local"})
}

func TestMemoryProfile(t *testing.T) {
	const city = "Zhangjiakou-unique-123"
	key := memory.NewKey()
	srv, svc, db, path := memoryServer(t, key)
	url := srv.URL + "/v1/memory/profile"

	var e apiError
	if resp := do(t, "GET", url, "", nil, &e); resp.StatusCode != 404 || e.Error.Code != "not_found" {
		t.Fatalf("GET before PUT: %s %+v", resp.Status, e)
	}

	// PUT validates, and the 400 names the field.
	for _, c := range []struct{ body, field string }{
		{`{"language":"fr"}`, "language"},
		{`{"time_zone":"Nowhere/Special"}`, "time_zone"},
		{`{"quiet_hours":{"start":"7pm","end":"07:00"}}`, "quiet_hours.start"},
		{`{"quiet_hours":{"start":"22:00","end":"24:00"}}`, "quiet_hours.end"},
	} {
		e = apiError{}
		if resp := do(t, "PUT", url, c.body, nil, &e); resp.StatusCode != 400 || e.Error.Field != c.field || e.Error.Code != "invalid" {
			t.Errorf("PUT %s: %s %+v, want 400 naming %s", c.body, resp.Status, e, c.field)
		}
	}
	e = apiError{}
	if resp := do(t, "PUT", url, `{"homecity":"typo"}`, nil, &e); resp.StatusCode != 400 || !strings.Contains(e.Error.Message, "homecity") {
		t.Errorf("PUT with an unknown field: %s %+v", resp.Status, e)
	}

	body := `{"home_city":"` + city + `","language":"zh","time_zone":"Asia/Shanghai",
		"quiet_hours":{"start":"22:00","end":"07:00"},"preferences":{"units":"metric"},
		"updated_at":"2000-01-01T00:00:00Z"}`
	var put memory.Profile
	if resp := do(t, "PUT", url, body, nil, &put); resp.StatusCode != 200 || put.HomeCity != city || put.UpdatedAt.Year() < 2025 {
		t.Fatalf("PUT: %s %+v", resp.Status, put)
	}
	var got memory.Profile
	if resp := do(t, "GET", url, "", nil, &got); resp.StatusCode != 200 || got.HomeCity != city || got.Language != "zh" ||
		got.TimeZone != "Asia/Shanghai" || got.QuietHours == nil || got.QuietHours.Start != "22:00" || got.Preferences["units"] != "metric" {
		t.Fatalf("GET: %s %+v", resp.Status, got)
	}

	// At rest, the file holds no plain text of the profile. bbolt writes
	// each commit to the file before it returns, so the file is read as
	// it is while the server runs.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, plain := range []string{city, "Asia/Shanghai", "metric", "home_city"} {
		if bytes.Contains(raw, []byte(plain)) {
			t.Errorf("the bolt file contains %q in clear", plain)
		}
	}

	// Another user of the same tenant: their own profile is theirs, and
	// they cannot read local's.
	bob := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: vigil.DefaultTenant, User: "bob"})
	if _, err := svc.ProfileOf(bob, "local"); vigil.ErrorCode(err) != vigil.NotFound {
		t.Errorf("bob reading local's profile: %v, want not found", err)
	}
	if _, err := svc.PutProfile(bob, memory.Profile{HomeCity: "Shenzhen-bob-only"}); err != nil {
		t.Fatal(err)
	}
	if do(t, "GET", url, "", nil, &got); got.HomeCity != city {
		t.Errorf("GET after bob's PUT: %+v", got)
	}

	// A server with another key answers 500 without details, and logs why.
	wrongSvc, err := memory.New(db, memory.Options{Key: memory.NewKey()})
	if err != nil {
		t.Fatal(err)
	}
	wrong := serve(t, db, httpapi.Options{Memory: wrongSvc})
	e = apiError{}
	if resp := do(t, "GET", wrong.URL+"/v1/memory/profile", "", nil, &e); resp.StatusCode != 500 || e.Error.Message != "internal error" {
		t.Errorf("GET under the wrong key: %s %+v", resp.Status, e)
	}
	if logs := wrong.logs.String(); !strings.Contains(logs, "cannot decrypt profile") || !strings.Contains(logs, memory.KeyID(key)) {
		t.Errorf("the wrong-key failure is not logged with the key it needs:\n%s", logs)
	}

	// DELETE forgets local's profile, and only local's.
	if resp := do(t, "DELETE", url, "", nil, nil); resp.StatusCode != 204 {
		t.Fatalf("DELETE: %s", resp.Status)
	}
	if resp := do(t, "DELETE", url, "", nil, nil); resp.StatusCode != 204 {
		t.Errorf("second DELETE: %s", resp.Status)
	}
	if resp := do(t, "GET", url, "", nil, &e); resp.StatusCode != 404 {
		t.Errorf("GET after DELETE: %s", resp.Status)
	}
	if p, err := svc.Profile(bob); err != nil || p.HomeCity != "Shenzhen-bob-only" {
		t.Errorf("bob's profile after local's DELETE: %+v, %v", p, err)
	}
}

func TestMemorySession(t *testing.T) {
	srv, svc, _, _ := memoryServer(t, nil)
	th := createThread(t, srv.URL)
	for _, text := range []string{"上海下雨", "天津天气不错", "北京明天天气晴"} {
		if _, err := svc.Remember(local(), memory.Fact{Thread: th, Text: text, Source: "chat"}); err != nil {
			t.Fatal(err)
		}
	}
	// Another tenant's thread of the same id stays its own.
	globex := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "globex", User: "local"})
	if _, err := svc.Remember(globex, memory.Fact{Thread: th, Text: "北京 globex secret"}); err != nil {
		t.Fatal(err)
	}

	get := func(query string) (*http.Response, []string) {
		t.Helper()
		var out struct {
			Thread string
			Facts  []map[string]any
		}
		resp := do(t, "GET", srv.URL+"/v1/memory/session/"+th+query, "", nil, &out)
		var texts []string
		for _, f := range out.Facts {
			texts = append(texts, f["text"].(string))
			if _, ok := f["vector"]; ok {
				t.Errorf("a fact carries its vector to the client")
			}
		}
		return resp, texts
	}
	if resp, got := get(""); resp.StatusCode != 200 || !slices.Equal(got, []string{"北京明天天气晴", "天津天气不错", "上海下雨"}) {
		t.Errorf("session facts: %s %q", resp.Status, got)
	}
	if resp, got := get("?q=" + "%E5%8C%97%E4%BA%AC%E5%A4%A9%E6%B0%94"); resp.StatusCode != 200 || !slices.Equal(got, []string{"北京明天天气晴", "天津天气不错"}) {
		t.Errorf("session facts for 北京天气: %s %q", resp.Status, got)
	}
	if resp, got := get("?limit=1"); resp.StatusCode != 200 || !slices.Equal(got, []string{"北京明天天气晴"}) {
		t.Errorf("session facts, limit 1: %s %q", resp.Status, got)
	}
	if resp, got := get("?q=nothing+matches"); resp.StatusCode != 200 || len(got) != 0 {
		t.Errorf("session facts for no match: %s %q", resp.Status, got)
	}
	var e apiError
	if resp := do(t, "GET", srv.URL+"/v1/memory/session/"+th+"?limit=0", "", nil, &e); resp.StatusCode != 400 || e.Error.Field != "limit" {
		t.Errorf("limit 0: %s %+v", resp.Status, e)
	}
	for _, path := range []string{"/v1/memory/session/th_missing", "/v1/memory/session/bad:id"} {
		if resp := do(t, "GET", srv.URL+path, "", nil, &e); resp.StatusCode != 404 {
			t.Errorf("GET %s: %s, want 404", path, resp.Status)
		}
	}

	// Long-term memory is off without a key, and says so.
	if resp := do(t, "GET", srv.URL+"/v1/memory/profile", "", nil, &e); resp.StatusCode != 503 || !strings.Contains(e.Error.Message, "memory.key") {
		t.Errorf("profile without a key: %s %+v", resp.Status, e)
	}
}

func TestMemoryNotConfigured(t *testing.T) {
	c := storeConfigs(t, 0)["bolt"]
	srv := serve(t, open(t, c), httpapi.Options{})
	var e apiError
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		if resp := do(t, m, srv.URL+"/v1/memory/profile", `{}`, nil, &e); resp.StatusCode != 503 {
			t.Errorf("%s /v1/memory/profile without memory: %s", m, resp.Status)
		}
	}
}

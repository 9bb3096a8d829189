package tasks_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	key := make([]byte, tasks.SealerKeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

func newSealer(t *testing.T, key []byte) *tasks.Sealer {
	t.Helper()
	s, err := tasks.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealer(t *testing.T) {
	const secret = "whsec-correct-horse-battery-staple"
	const task, hook = "tsk_1", "https://example.com/hook"
	s := newSealer(t, newKey(t))
	sealed := s.Seal(task, hook, secret)
	if !tasks.Sealed(sealed) || strings.Contains(sealed, secret) {
		t.Fatalf("Seal = %q", sealed)
	}
	if again := s.Seal(task, hook, secret); again == sealed {
		t.Error("two seals of one secret are equal: the nonce is not fresh")
	}
	if got, err := s.Open(task, hook, sealed); err != nil || got != secret {
		t.Fatalf("Open = %q, %v", got, err)
	}
	tampered := []byte(sealed)
	tampered[len(tampered)-3] ^= 'A' ^ 'B'
	if tampered[len(tampered)-3] == sealed[len(sealed)-3] {
		tampered[len(tampered)-3] = 'C'
	}
	for _, c := range []struct {
		name           string
		s              *tasks.Sealer
		task, url, arg string
		want           string
	}{
		{"another task", s, "tsk_2", hook, sealed, "authentication failed: it was altered or belongs to another task or URL"},
		{"another URL", s, task, "https://evil.example/hook", sealed, "authentication failed"},
		{"altered", s, task, hook, string(tampered), "cannot open the webhook's secret"},
		{"another key", newSealer(t, newKey(t)), task, hook, sealed, "it was sealed under key "},
		{"plain text", s, task, hook, secret, "it is not sealed"},
		{"malformed", s, task, hook, "sealed:v1:!!", "it is malformed"},
	} {
		got, err := c.s.Open(c.task, c.url, c.arg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Open = %q, %v; want an error with %q", c.name, got, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows the secret: %v", c.name, err)
		}
	}
	if _, err := tasks.NewSealer(make([]byte, 16)); err == nil {
		t.Error("NewSealer took a 16-byte key")
	}
}

// sealStore is a store under test and a way to read every byte it holds.
type sealStore struct {
	name string
	open func(t *testing.T) (tasks.Store, streams.Log, func() []byte)
}

var sealStores = []sealStore{
	{"bolt", func(t *testing.T) (tasks.Store, streams.Log, func() []byte) {
		path := filepath.Join(t.TempDir(), "vigil.db")
		db, err := bolt.Open(path, bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db, db, func() []byte {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}},
	{"redis", func(t *testing.T) (tasks.Store, streams.Log, func() []byte) {
		url, prefix := redistest.URL(t), redistest.Prefix(t)
		l, err := redis.Open(context.Background(), url, redis.Options{Prefix: prefix, MaxFollowers: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l, l, func() []byte { return redisValues(t, url, prefix) }
	}},
}

// redisValues returns every key under prefix and every value it holds,
// read by type, as one byte string.
func redisValues(t *testing.T, url, prefix string) []byte {
	t.Helper()
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	ctx := context.Background()
	var out bytes.Buffer
	iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		out.WriteString(key + "\n")
		var v any
		switch typ := c.Type(ctx, key).Val(); typ {
		case "string":
			v = c.Get(ctx, key).Val()
		case "hash":
			v = c.HGetAll(ctx, key).Val()
		case "list":
			v = c.LRange(ctx, key, 0, -1).Val()
		case "set":
			v = c.SMembers(ctx, key).Val()
		case "zset":
			v = c.ZRangeWithScores(ctx, key, 0, -1).Val()
		case "stream":
			v = c.XRange(ctx, key, "-", "+").Val()
		default:
			t.Fatalf("key %s has type %q, which the test cannot read", key, typ)
		}
		b, _ := json.Marshal(v)
		out.Write(b)
		out.WriteString("\n")
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// hookReceiver counts POSTs and the ones signed with secret.
type hookReceiver struct {
	srv          *httptest.Server
	posts, valid atomic.Int32
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.posts.Add(1)
		if _, err := toolsregistry.Verify([]byte(secret), req); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		h.valid.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func TestWebhookSecretsSealedAtRest(t *testing.T) {
	for _, st := range sealStores {
		t.Run(st.name, func(t *testing.T) { testSealedAtRest(t, st) })
	}
}

func testSealedAtRest(t *testing.T, st sealStore) {
	const secret, newSecret = "whsec-do-not-store-me-7f3a9c", "whsec-rotated-secret-51be02"
	store, log, raw := st.open(t)
	key := newKey(t)
	sealer := newSealer(t, key)
	m := tasks.NewManager(tasks.Options{Store: store, Log: log, Sealer: sealer, Now: func() time.Time { return t0 }})
	ctx := vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: "ana"})
	rcv := newHookReceiver(t, secret)
	hookURL := rcv.srv.URL + "/hook"

	spec := tasks.Spec{Title: "sealed", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "0 8 * * *"},
		Instruction: "say hello", Notify: []tasks.Webhook{{URL: hookURL, Secret: secret}}}
	task, err := m.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	stored := task.Notify[0].Secret
	if !tasks.Sealed(stored) {
		t.Fatalf("Create kept the secret as %q", stored)
	}
	if spec.Notify[0].Secret != secret {
		t.Error("Create changed the caller's spec")
	}
	if red := task.Redacted(); red.Notify[0].Secret != "" || !red.Notify[0].HasSecret {
		t.Errorf("redacted webhook %+v", red.Notify[0])
	}

	// Sending back the redacted spec, or the stored one, keeps the sealed
	// secret as it is.
	if task, err = m.Update(ctx, task.ID, 0, task.Redacted().Spec); err != nil {
		t.Fatal(err)
	}
	if task.Notify[0].Secret != stored {
		t.Errorf("Update with the redacted spec: secret %q, want the stored %q", task.Notify[0].Secret, stored)
	}
	if task, err = m.Update(ctx, task.ID, 0, task.Spec); err != nil {
		t.Fatal(err)
	}
	if task.Notify[0].Secret != stored {
		t.Errorf("Update with the stored spec sealed the sealed secret again: %q", task.Notify[0].Secret)
	}
	run, err := m.RunNow(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if run, err = m.GetRun(ctx, run.ID); err != nil {
		t.Fatal(err)
	}

	// A second task with a new secret, rotated by an update.
	other, err := m.Create(ctx, tasks.Spec{Title: "other", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "0 9 * * *"},
		Instruction: "say hi", Notify: []tasks.Webhook{{URL: hookURL, Secret: "whsec-first-of-other"}}})
	if err != nil {
		t.Fatal(err)
	}
	rotated := other.Spec
	rotated.Notify = []tasks.Webhook{{URL: hookURL, Secret: newSecret}}
	if other, err = m.Update(ctx, other.ID, other.Version, rotated); err != nil {
		t.Fatal(err)
	}
	if got, err := sealer.Open(other.ID, hookURL, other.Notify[0].Secret); err != nil || got != newSecret {
		t.Errorf("rotated secret opens to %q, %v", got, err)
	}

	held := raw()
	for _, s := range []string{secret, newSecret, "whsec-first-of-other"} {
		if bytes.Contains(held, []byte(s)) {
			t.Errorf("the %s store holds the secret %q in plain text", st.name, s)
		}
	}
	if !bytes.Contains(held, []byte(stored)) {
		t.Fatalf("the test read the %s store without finding the sealed secret: it reads the wrong bytes", st.name)
	}

	// The notifier opens the run's sealed secret to sign.
	guard, err := toolsregistry.NewGuard(toolsregistry.GuardOptions{Allow: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	note := tasks.Notification{Event: "run.finished", IdempotencyKey: run.IdempotencyKey(), TaskID: run.TaskID, RunID: run.ID, Status: tasks.RunSucceeded}
	notify := func(s *tasks.Sealer) error {
		n, err := tasks.NewNotifier(tasks.NotifierOptions{Guard: guard, Sealer: s, Backoff: []time.Duration{}})
		if err != nil {
			t.Fatal(err)
		}
		return n.Notify(context.Background(), run.Spec.Notify, note)
	}
	if err := notify(sealer); err != nil || rcv.valid.Load() != 1 {
		t.Fatalf("notify with the sealer: %v; %d of %d POSTs signed right", err, rcv.valid.Load(), rcv.posts.Load())
	}
	if err := notify(nil); err == nil || !strings.Contains(err.Error(), "cannot open the webhook's secret: it is sealed and the notifier has no key") {
		t.Errorf("notify without a sealer: %v", err)
	}
	if err := notify(newSealer(t, newKey(t))); err == nil || !strings.Contains(err.Error(), "sealed under key") {
		t.Errorf("notify under another key: %v", err)
	}
	if n := rcv.posts.Load(); n != 1 {
		t.Errorf("%d POSTs, want 1: a secret that could not be opened must not be sent unsigned", n)
	}
}

// TestWebhookPlainSecret checks that secrets stored before a key was
// configured still sign, and that a Manager without a sealer stores
// secrets as given.
func TestWebhookPlainSecret(t *testing.T) {
	const secret = "whsec-legacy"
	rcv := newHookReceiver(t, secret)
	guard, err := toolsregistry.NewGuard(toolsregistry.GuardOptions{Allow: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := tasks.NewNotifier(tasks.NotifierOptions{Guard: guard, Sealer: newSealer(t, newKey(t)), Backoff: []time.Duration{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(context.Background(), []tasks.Webhook{{URL: rcv.srv.URL, Secret: secret}}, tasks.Notification{TaskID: "tsk_1"}); err != nil || rcv.valid.Load() != 1 {
		t.Errorf("plain secret: %v, %d valid POSTs", err, rcv.valid.Load())
	}

	// A stored plain secret is sealed by the next update that keeps it.
	w := newWorld(t)
	task := w.create(t, tasks.Spec{Title: "plain", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "0 8 * * *"},
		Instruction: "x", Notify: []tasks.Webhook{{URL: "https://example.com/hook", Secret: secret}}})
	if task.Notify[0].Secret != secret {
		t.Fatalf("without a sealer the secret is %q", task.Notify[0].Secret)
	}
	key := newKey(t)
	sealing := tasks.NewManager(tasks.Options{Store: w.db, Log: w.db, Sealer: newSealer(t, key), Now: w.clock.Now})
	task, err = sealing.Update(w.ctx, task.ID, 0, task.Redacted().Spec)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := newSealer(t, key).Open(task.ID, "https://example.com/hook", task.Notify[0].Secret); err != nil || got != secret {
		t.Errorf("the kept plain secret was not sealed: %q (%q, %v)", task.Notify[0].Secret, got, err)
	}
}

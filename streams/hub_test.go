package streams_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilhq/vigil/store/bolt"
	"github.com/vigilhq/vigil/streams"
)

func newLog(t *testing.T) streams.Log {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "vigil.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func appendTexts(t *testing.T, log streams.Log, thread string, from, n int) []streams.ID {
	t.Helper()
	var ids []streams.ID
	for i := from; i < from+n; i++ {
		e, err := streams.NewEvent(streams.Text{MessageID: "m", Text: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := log.Append(context.Background(), "t1", thread, []streams.Event{e})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got...)
	}
	return ids
}

func recv(t *testing.T, sub *streams.Subscription) streams.Frame {
	t.Helper()
	select {
	case fr, ok := <-sub.C():
		if !ok {
			t.Fatalf("subscription ended: %v", sub.Err())
		}
		return fr
	case <-time.After(10 * time.Second):
		t.Fatal("no frame within 10s")
	}
	return streams.Frame{}
}

func TestHubOneFollowerPerThread(t *testing.T) {
	log := newLog(t)
	ctx := context.Background()
	for _, th := range []string{"a", "b"} {
		if err := log.CreateThread(ctx, streams.Thread{ID: th, Tenant: "t1"}); err != nil {
			t.Fatal(err)
		}
	}
	hub := streams.NewHub(log, streams.HubOptions{Wait: 100 * time.Millisecond})
	var subs []*streams.Subscription
	for i := range 50 {
		th := "a"
		if i%10 == 0 {
			th = "b"
		}
		s, err := hub.Subscribe(ctx, "t1", th)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	if n := hub.Followers(); n != 2 {
		t.Fatalf("%d followers for 2 threads", n)
	}
	ids := appendTexts(t, log, "a", 0, 3)
	for i, s := range subs {
		if i%10 == 0 {
			continue
		}
		for _, want := range ids {
			if fr := recv(t, s); fr.Event.ID != want || fr.Event.ThreadID != "a" {
				t.Fatalf("subscriber %d got %v, want %v", i, fr.Event.ID, want)
			}
		}
	}
	for _, s := range subs {
		s.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for hub.Followers() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := hub.Followers(); n != 0 {
		t.Fatalf("%d followers left after every subscriber closed", n)
	}
	// A new subscriber after the follower stopped starts a new one.
	s, err := hub.Subscribe(ctx, "t1", "a")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := appendTexts(t, log, "a", 3, 1)[0]
	if fr := recv(t, s); fr.Event.ID != id {
		t.Fatalf("got %v, want %v", fr.Event.ID, id)
	}
}

func TestHubSlowSubscriberIsCutOff(t *testing.T) {
	log := newLog(t)
	ctx := context.Background()
	if err := log.CreateThread(ctx, streams.Thread{ID: "a", Tenant: "t1"}); err != nil {
		t.Fatal(err)
	}
	hub := streams.NewHub(log, streams.HubOptions{Buffer: 8, Wait: 100 * time.Millisecond})
	slow, err := hub.Subscribe(ctx, "t1", "a")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast, err := hub.Subscribe(ctx, "t1", "a")
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()

	// The fast subscriber reads each event before the next is appended, so
	// it is never behind by more than one, however the machine schedules
	// the follower; the slow one never reads.
	const n = 40
	for i := range n {
		id := appendTexts(t, log, "a", i, 1)[0]
		if fr := recv(t, fast); fr.Event.ID != id {
			t.Fatalf("fast subscriber: event %d is %v, want %v", i, fr.Event.ID, id)
		}
	}
	// The slow one, which never read, was cut off with ErrSlow after its
	// buffer filled: its channel holds at most the buffer, then closes.
	count := 0
	for range slow.C() {
		count++
	}
	if !errors.Is(slow.Err(), streams.ErrSlow) || count > 8 {
		t.Fatalf("slow subscriber: %d frames, err %v", count, slow.Err())
	}
}

func TestHubMissingThread(t *testing.T) {
	hub := streams.NewHub(newLog(t), streams.HubOptions{})
	if _, err := hub.Subscribe(context.Background(), "t1", "nope"); err == nil {
		t.Fatal("subscribed to a missing thread")
	}
	if n := hub.Followers(); n != 0 {
		t.Fatalf("%d followers after a failed subscribe", n)
	}
}

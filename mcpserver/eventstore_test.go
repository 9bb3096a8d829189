package mcpserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/mark3labs/mcp-go/server"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/mcpserver"
	"github.com/vigilhq/vigil/store/redis"
	"github.com/vigilhq/vigil/store/redis/redistest"
	"github.com/vigilhq/vigil/streams"
)

// logs opens one streams.Log per storage mode: a bolt file and a Redis
// key space of the test's own.
func logs(t *testing.T) map[string]func(t *testing.T) streams.Log {
	return map[string]func(t *testing.T) streams.Log{
		"bolt": func(t *testing.T) streams.Log { return newBolt(t) },
		"redis": func(t *testing.T) streams.Log {
			l, err := redis.Open(context.Background(), redistest.URL(t), redis.Options{Prefix: redistest.Prefix(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		},
	}
}

const session1 = "mcp-session-7d3c1a52-7a4e-4d5c-9a61-1f1e2f6c9b01"
const session2 = "mcp-session-0b9f3d1e-2c4a-4f6e-8d7b-5a4c3b2a1f00"

func TestEventStore(t *testing.T) {
	for mode, open := range logs(t) {
		t.Run(mode, func(t *testing.T) {
			log := open(t)
			owners := map[string]string{session1: "acme", session2: "acme"}
			es := mcpserver.NewEventStore(mcpserver.EventStoreOptions{Log: log, Tenant: func(id string) (string, bool) {
				tenant, ok := owners[id]
				return tenant, ok
			}})
			acme, other := ctxOf("acme"), ctxOf("bolt")
			bg := context.Background() // the GET stream's pump records without a principal

			msg := func(i int) json.RawMessage {
				return json.RawMessage(fmt.Sprintf(`{"jsonrpc":"2.0","method":"m","params":{"n":%d}}`, i))
			}
			store := func(ctx context.Context, session, stream string, i int) string {
				t.Helper()
				id, err := es.StoreEvent(ctx, session, stream, msg(i))
				if err != nil {
					t.Fatal(err)
				}
				return id
			}
			type sent struct {
				id  string
				msg string
			}
			replay := func(ctx context.Context, session, last string) (string, []sent, error) {
				var got []sent
				stream, err := es.ReplayEventsAfter(ctx, session, last, func(id string, m json.RawMessage) error {
					got = append(got, sent{id, string(m)})
					return nil
				})
				return stream, got, err
			}

			a1 := store(acme, session1, "A", 1)
			b2 := store(bg, session1, "B", 2)
			a3 := store(acme, session1, "A", 3)
			a4 := store(bg, session1, "A", 4)
			other1 := store(acme, session2, "A", 5)
			ids := []string{a1, b2, a3, a4}
			sorted := slices.Clone(ids)
			slices.Sort(sorted)
			if len(slices.Compact(sorted)) != len(ids) {
				t.Fatalf("ids of one session not unique: %v", ids)
			}
			for _, id := range ids {
				if _, err := streams.ParseID(id); err != nil {
					t.Fatalf("id %q: %v", id, err)
				}
			}

			// After a1: the rest of stream A, in order, with their ids.
			stream, got, err := replay(acme, session1, a1)
			if err != nil || stream != "A" {
				t.Fatalf("replay after a1: %s, %v", stream, err)
			}
			want := []sent{{a3, string(msg(3))}, {a4, string(msg(4))}}
			if !slices.Equal(got, want) {
				t.Fatalf("replayed %v, want %v", got, want)
			}
			// After b2: stream B has nothing more.
			if stream, got, err := replay(bg, session1, b2); err != nil || stream != "B" || len(got) != 0 {
				t.Fatalf("replay after b2: %s %v %v", stream, got, err)
			}
			// After the last: nothing, but the stream is known.
			if stream, got, err := replay(acme, session1, a4); err != nil || stream != "A" || len(got) != 0 {
				t.Fatalf("replay after a4: %s %v %v", stream, got, err)
			}

			// Ids the session's thread does not hold, or not ids at all, are
			// unknown. (Ids are unique within a session, as mcp-go asks: the
			// same id may name an event of another session.)
			for _, c := range []struct {
				name        string
				ctx         context.Context
				session, id string
			}{
				{"made up", acme, session1, "1-0"},
				{"garbage", acme, session1, "x"},
				{"empty", acme, session1, ""},
				{"other tenant", other, session1, a1},
				{"unknown session", acme, "mcp-session-00000000-0000-0000-0000-000000000000", a1},
			} {
				if _, got, err := replay(c.ctx, c.session, c.id); !errors.Is(err, server.ErrUnknownEventID) || len(got) != 0 {
					t.Errorf("%s: %v, sent %v", c.name, err, got)
				}
			}
			// Nothing of another tenant's session is stored in one's own.
			if _, err := log.Thread(ctxOf("bolt"), "bolt", mcpserver.ThreadPrefix+session1); vigil.ErrorCode(err) != vigil.NotFound {
				t.Errorf("tenant bolt has session1's thread: %v", err)
			}

			// Purged: no id of the session resumes; the other session does.
			if err := es.PurgeSession(bg, session1); err != nil {
				t.Fatal(err)
			}
			if _, _, err := replay(acme, session1, a1); !errors.Is(err, server.ErrUnknownEventID) {
				t.Fatalf("replay after purge: %v", err)
			}
			if _, _, err := replay(acme, session2, other1); err != nil {
				t.Fatalf("session2 after session1's purge: %v", err)
			}
			// Purging a session that never stored anything is fine.
			if err := es.PurgeSession(acme, "mcp-session-00000000-0000-0000-0000-000000000001"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

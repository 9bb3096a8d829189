package mcpserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/mcpserver"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
)

func readResource(t *testing.T, c *client.Client, uri string, out any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.ReadResourceRequest{}
	req.Params.URI = uri
	res, err := c.ReadResource(ctx, req)
	if err != nil {
		return err
	}
	if len(res.Contents) != 1 {
		t.Fatalf("%s: %d contents", uri, len(res.Contents))
	}
	tc, ok := res.Contents[0].(mcp.TextResourceContents)
	if !ok || tc.MIMEType != "application/json" || tc.URI != uri {
		t.Fatalf("%s: contents %#v", uri, res.Contents[0])
	}
	if err := json.Unmarshal([]byte(tc.Text), out); err != nil {
		t.Fatalf("%s: %v", uri, err)
	}
	return nil
}

func TestResources(t *testing.T) {
	w := newWorld(t, nil, nil)
	ctx := ctxOf(vigil.DefaultTenant)
	task, err := w.mgr.Create(ctx, tasks.Spec{Title: "Weekly report", Kind: tasks.KindLongRunning, Instruction: "Write it."})
	if err != nil {
		t.Fatal(err)
	}
	run, err := w.mgr.RunNow(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	none := func() []client.ClientOption { return nil }
	transports(t, w, none, func(t *testing.T, c *client.Client) {
		lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		templates, err := c.ListResourceTemplates(lctx, mcp.ListResourceTemplatesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var raws []string
		for _, tpl := range templates.ResourceTemplates {
			raws = append(raws, tpl.URITemplate.Raw())
		}
		slices.Sort(raws)
		if want := []string{"vigil://runs/{id}", "vigil://tasks/{id}", "vigil://threads/{id}/events"}; !slices.Equal(raws, want) {
			t.Fatalf("templates %v, want %v", raws, want)
		}

		list, err := c.ListResources(lctx, mcp.ListResourcesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(list.Resources, func(r mcp.Resource) bool {
			return r.URI == mcpserver.TaskURI(task.ID) && r.Title == "Weekly report"
		}) {
			t.Fatalf("resources/list lacks the task: %+v", list.Resources)
		}

		var gotTask tasks.Task
		if err := readResource(t, c, mcpserver.TaskURI(task.ID), &gotTask); err != nil {
			t.Fatal(err)
		}
		if gotTask.ID != task.ID || gotTask.Title != "Weekly report" {
			t.Fatalf("task resource %+v", gotTask)
		}
		var gotRun tasks.Run
		if err := readResource(t, c, mcpserver.RunURI(run.ID), &gotRun); err != nil {
			t.Fatal(err)
		}
		if gotRun.ID != run.ID || gotRun.Status != tasks.RunQueued {
			t.Fatalf("run resource %+v", gotRun)
		}
		var evs mcpserver.GetEventsOutput
		if err := readResource(t, c, mcpserver.ThreadEventsURI(task.ThreadID), &evs); err != nil {
			t.Fatal(err)
		}
		if len(evs.Events) < 2 || evs.Events[0].Type != streams.TypeTaskStatus {
			t.Fatalf("events resource %+v", evs)
		}
		if err := readResource(t, c, mcpserver.TaskURI("tsk_nope"), &gotTask); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("reading a missing task: %v", err)
		}
	})
}

// subscribe subscribes c to uri the way its generation does, and returns
// once the server holds the subscription. A 2026-07-28 client's listen
// stream also opts in to tools/list_changed; uri may then be empty.
func subscribe(t *testing.T, c *client.Client, got *notes, modern bool, uri string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !modern {
		req := mcp.SubscribeRequest{}
		req.Params.URI = uri
		if err := c.Subscribe(ctx, req); err != nil {
			t.Fatal(err)
		}
		return
	}
	filter := mcp.SubscriptionFilter{ToolsListChanged: true}
	if uri != "" {
		filter.ResourceSubscriptions = []string{uri}
	}
	stop, err := c.ListenAsync(context.Background(), filter, func(err error) { t.Errorf("listen: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	got.wait(t, string(mcp.MethodNotificationSubscriptionsAcknowledged), 5*time.Second, nil)
}

func TestResourceSubscriptions(t *testing.T) {
	w := newWorld(t, nil, nil)
	ctx := ctxOf(vigil.DefaultTenant)
	none := func() []client.ClientOption { return nil }
	transports(t, w, none, func(t *testing.T, c *client.Client) {
		got := listen(c)
		task, err := w.mgr.Create(ctx, tasks.Spec{Title: "Watch", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "0 9 * * *"}})
		if err != nil {
			t.Fatal(err)
		}
		subscribe(t, c, got, generation(t) == modern, mcpserver.TaskURI(task.ID))

		if _, err := w.mgr.Confirm(ctx, task.ID); err != nil {
			t.Fatal(err)
		}
		uri := func(m mcp.JSONRPCNotification) bool {
			return m.Params.AdditionalFields["uri"] == mcpserver.TaskURI(task.ID)
		}
		got.wait(t, mcp.MethodNotificationResourceUpdated, 5*time.Second, uri)

		// A run of the task changes state: the task's subscribers hear too.
		n := len(got.of(mcp.MethodNotificationResourceUpdated))
		if _, err := w.mgr.RunNow(ctx, task.ID); err != nil {
			t.Fatal(err)
		}
		got.wait(t, mcp.MethodNotificationResourceUpdated, 5*time.Second, func(m mcp.JSONRPCNotification) bool {
			return uri(m) && len(got.of(mcp.MethodNotificationResourceUpdated)) > n
		})
	})
}

// slowStart is a log whose Read, which a hub follower makes once to fix
// where it starts, takes a while, as on a loaded machine.
type slowStart struct{ streams.Log }

func (l slowStart) Read(ctx context.Context, tenant, thread string, after streams.ID, limit int) (streams.Page, error) {
	select {
	case <-time.After(300 * time.Millisecond):
	case <-ctx.Done():
		return streams.Page{}, ctx.Err()
	}
	return l.Log.Read(ctx, tenant, thread, after, limit)
}

// failedStart is a log whose first Read of each thread, the one a hub
// follower makes to fix where it starts, fails.
type failedStart struct {
	streams.Log
	failed *sync.Map // thread → struct{}
}

func (l failedStart) Read(ctx context.Context, tenant, thread string, after streams.ID, limit int) (streams.Page, error) {
	if _, again := l.failed.LoadOrStore(thread, struct{}{}); !again {
		return streams.Page{}, errors.New("the store is not reachable")
	}
	return l.Log.Read(ctx, tenant, thread, after, limit)
}

// TestSubscribedBeforeAcknowledged: a change made as soon as a
// subscription is acknowledged is notified, however long the hub takes to
// start following the task's thread, and when its first start fails. The
// acknowledgement used to go out while the follow was still starting (or
// waiting to retry), so such a change could be missed.
func TestSubscribedBeforeAcknowledged(t *testing.T) {
	for _, start := range []string{"slow", "failed"} {
		t.Run(start, func(t *testing.T) { testSubscribedBeforeAcknowledged(t, start) })
	}
}

func testSubscribedBeforeAcknowledged(t *testing.T, start string) {
	w := newWorld(t, func(o *mcpserver.Options) {
		var log streams.Log = slowStart{o.Log}
		if start == "failed" {
			log = failedStart{Log: o.Log, failed: new(sync.Map)}
		}
		o.Hub = streams.NewHub(log, streams.HubOptions{Wait: 200 * time.Millisecond, Logger: o.Logger})
	}, nil)
	ctx := ctxOf(vigil.DefaultTenant)
	for _, gen := range generations {
		t.Run(gen, func(t *testing.T) {
			c := w.httpClient(t, gen, clientConfig{})
			got := listen(c)
			task, err := w.mgr.Create(ctx, tasks.Spec{Title: "Watch", Kind: tasks.KindPeriodic, Trigger: tasks.Trigger{Cron: "0 9 * * *"}})
			if err != nil {
				t.Fatal(err)
			}
			subscribe(t, c, got, gen == modern, mcpserver.TaskURI(task.ID))
			if _, err := w.mgr.Confirm(ctx, task.ID); err != nil {
				t.Fatal(err)
			}
			got.wait(t, mcp.MethodNotificationResourceUpdated, 5*time.Second, func(m mcp.JSONRPCNotification) bool {
				return m.Params.AdditionalFields["uri"] == mcpserver.TaskURI(task.ID)
			})
		})
	}
}

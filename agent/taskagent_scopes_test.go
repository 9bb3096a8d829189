package agent_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vigilhq/vigil"
	"github.com/vigilhq/vigil/agent"
	"github.com/vigilhq/vigil/auth"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/tasks"
	"github.com/vigilhq/vigil/toolsregistry"
)

// Issues #5/#6 in the tool loop, over the bolt file with a real worker:
// the task agent's calls hold the scopes its Manager recorded for the
// task's owner. A member's task that lists mail (write:email) fails for
// good when the model calls it, naming the scope, after one model turn; a
// developer's identical task mails; a member's task that lists no tools is
// not offered mail at all.
func TestTaskAgentHoldsOwnerScopes(t *testing.T) {
	r := newTARig(t)
	r.m = tasks.NewManager(tasks.Options{
		Store: &tasks.DispatchStore{Store: r.db, Queue: r.q}, Log: r.db, Now: r.clock.Now,
		OwnerScopes: auth.DefaultScopes().Of,
	})
	mail := toolsregistry.Tool{Name: "mail", Version: 1, Description: "sends a mail", Scopes: []string{"write:email"},
		InputSchema: json.RawMessage(`{"type":"object","properties":{"to":{"type":"string"}}}`)}
	err := r.reg.Register(mail, toolsregistry.HandlerFunc(func(_ context.Context, args json.RawMessage) (toolsregistry.Output, error) {
		r.record("mail " + string(args))
		return toolsregistry.Output{Value: json.RawMessage(`{"sent":true}`)}, nil
	}))
	if err != nil {
		t.Fatal(err)
	}

	// The model mails when it is offered mail and has not yet, else it
	// answers; it notes what each task's first turn was offered.
	var mu sync.Mutex
	offered := map[string][]string{} // by the task's title
	model := modelFunc(func(_ context.Context, msgs []agent.Message, tools []agent.Tool, _ agent.Options) (agent.Response, error) {
		var names []string
		for _, tool := range tools {
			names = append(names, tool.Name)
		}
		slices.Sort(names)
		title := strings.TrimSpace(strings.SplitN(msgs[1].Content, "\n", 2)[0])
		mu.Lock()
		if _, ok := offered[title]; !ok {
			offered[title] = names
		}
		mu.Unlock()
		if slices.Contains(names, "mail") && msgs[len(msgs)-1].Role != agent.RoleTool {
			return agent.Response{ToolCalls: []agent.ToolCall{{ID: "m1", Name: "mail", Arguments: json.RawMessage(`{"to":"me"}`)}}}, nil
		}
		return agent.Response{Text: "Done.", Source: "test"}, nil
	})
	r.worker(t, context.Background(), r.agent(t, model))

	spec := func(title string, tools ...string) tasks.Spec {
		return tasks.Spec{Title: title, Kind: tasks.KindLongRunning, Instruction: title, Tools: tools}
	}
	runAs := func(user, role string, s tasks.Spec) (tasks.Task, tasks.Run) {
		t.Helper()
		r.ctx = vigil.WithPrincipal(context.Background(), vigil.Principal{Tenant: "acme", User: user, Roles: []string{role}})
		return r.runNow(t, s)
	}

	member, mrun := runAs("mia", auth.Member, spec("Mail Mia the weather.", "weather", "mail"))
	failed := r.waitRun(t, mrun.ID, tasks.RunFailed)
	if failed.ErrorClass != tasks.ErrorPermanent || failed.Attempt != 1 || !strings.Contains(failed.Error, `"write:email"`) {
		t.Errorf("member's run failed after %d attempts, class %s, error %q; want permanent at once, naming write:email",
			failed.Attempt, failed.ErrorClass, failed.Error)
	}
	te := find[streams.ToolError](t, r.events(t, member, mrun.ID))
	if te.Tool != "mail" || !strings.Contains(te.Error, `needs the scope "write:email"`) || !strings.Contains(te.Error, "owner's scopes (read:*)") {
		t.Errorf("tool_error %+v; want mail's, naming the scope and the owner's scopes", te)
	}

	_, drun := runAs("dev", auth.Developer, spec("Mail Dev the weather.", "weather", "mail"))
	r.waitRun(t, drun.ID, tasks.RunSucceeded)

	_, lrun := runAs("mia", auth.Member, spec("Tell Mia anything."))
	r.waitRun(t, lrun.ID, tasks.RunSucceeded)

	if calls := r.toolCalls(); !slices.Equal(calls, []string{`mail {"to":"me"}`}) {
		t.Errorf("tool calls %q; want the developer's mail only", calls)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := offered["Tell Mia anything."]; slices.Contains(got, "mail") || !slices.Contains(got, "weather") {
		t.Errorf("a member's task listing no tools was offered %q; want weather and not mail", got)
	}
	if got := offered["Mail Mia the weather."]; !slices.Equal(got, []string{"mail", "weather"}) {
		t.Errorf("a member's task listing mail was offered %q; a listed tool stays offered, and refused when called", got)
	}
}

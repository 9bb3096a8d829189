package tasks_test

import (
	"slices"
	"testing"

	"github.com/vigilhq/vigil/tasks"
)

// Fill fills the references it has values for, in both spellings, and
// names the others; FillSlots leaves no reference raw.
func TestFillText(t *testing.T) {
	out, missing := tasks.Fill("Weather in {{.city}} on {{ today }} for {{who}} and {{ .who }}; {{ not a ref }}",
		map[string]string{"city": "Paris", "today": "2026-11-22"})
	if out != "Weather in Paris on 2026-11-22 for {{who}} and {{ .who }}; {{ not a ref }}" || !slices.Equal(missing, []string{"who"}) {
		t.Errorf("Fill: %q, %v", out, missing)
	}

	slots := map[string]any{"city": "北京", "threshold": 60000.0, "percent": 2.5, "tags": []any{"a", "b"}, "on": true, "none": nil}
	for _, c := range []struct{ in, want string }{
		{"{{.city}}天气", "北京天气"},
		{"below {{threshold}} or {{ .percent }}%", "below 60000 or 2.5%"},
		{"{{tags}} {{on}} [{{none}}]", `["a","b"] true []`},
		{"Tell {{.who}} about {{.city}}", "Tell [who] about 北京"},
		{"no references", "no references"},
	} {
		if got := tasks.FillSlots(c.in, slots); got != c.want {
			t.Errorf("FillSlots(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestStepExecutorFillsInstruction: a run with no steps reports its
// instruction with the slots filled in, never a raw {{...}}.
func TestStepExecutorFillsInstruction(t *testing.T) {
	e := tasks.NewStepExecutor(tasks.StepExecutorOptions{})
	run := tasks.Run{ID: "run_1", Tenant: "acme", TaskID: "tsk_1", Spec: tasks.Spec{
		Title: "weather", Kind: tasks.KindPeriodic, Instruction: "  Tell {{ .who }} the weather in {{.city}}, {{days}} days ahead ",
		Slots: map[string]any{"city": "Beijing", "days": 3},
	}}
	out, err := e.Execute(t.Context(), run, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Tell [who] the weather in Beijing, 3 days ahead"; out.Summary != want {
		t.Errorf("summary %q; want %q", out.Summary, want)
	}
	if want := `{"text":"Tell [who] the weather in Beijing, 3 days ahead"}`; string(out.Result) != want {
		t.Errorf("result %s; want %s", out.Result, want)
	}
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vigilhq/vigil/agent"
)

// runPlan is `vigil plan --tz ZONE --now RFC3339 [--json] "TEXT"`: the
// offline planner alone, with no server and no store.
func runPlan(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vigil plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tz := fs.String("tz", "UTC", "IANA time `zone` of the request, such as Asia/Shanghai")
	now := fs.String("now", "", "the request's current `time`, RFC 3339 (default: now)")
	asJSON := fs.Bool("json", false, "print the plan as one JSON object")
	text, err := parseWithArg(fs, args, "TEXT")
	if err != nil {
		return err
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return fmt.Errorf("--tz: unknown time zone %q", *tz)
	}
	at := time.Now()
	if *now != "" {
		if at, err = time.Parse(time.RFC3339, *now); err != nil {
			return fmt.Errorf("--now: want RFC 3339 such as 2026-11-22T10:00:00+08:00, got %q", *now)
		}
	}
	p := agent.PlanOffline(agent.Request{Text: text, TZ: loc, Now: at.In(loc)})
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(p)
	}
	fmt.Fprintf(stdout, "intent:    %s\n", p.Intent)
	if p.Kind != "" {
		fmt.Fprintf(stdout, "kind:      %s (%s)\n", p.Kind, p.Domain)
	}
	if s := p.Schedule; s != nil {
		switch {
		case s.Cron != "":
			fmt.Fprintf(stdout, "schedule:  cron %q in %s\n", s.Cron, loc)
		case s.At != nil:
			fmt.Fprintf(stdout, "schedule:  at %s\n", s.At.Format(time.RFC3339))
		case s.Every != "":
			fmt.Fprintf(stdout, "schedule:  every %s\n", s.Every)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.Slots)) {
		fmt.Fprintf(stdout, "slot:      %s = %v\n", k, p.Slots[k])
	}
	if len(p.Missing) > 0 {
		fmt.Fprintf(stdout, "missing:   %s\n", strings.Join(p.Missing, ", "))
		fmt.Fprintf(stdout, "question:  %s\n", p.Question)
	}
	fmt.Fprintf(stdout, "reasoning: %s\n", p.Reasoning)
	return nil
}

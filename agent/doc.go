// Package agent will hold Vigil's agents: the main agent (the planner that
// turns a user's words into a task by chain-of-thought slot filling, asks back
// for what is missing and shows a task card), the task agent that executes a
// task instance, and the LLM wiring (langchaingo, MCP sampling) behind one
// model interface.
//
// Today it holds the built-in offline model's planner, PlanOffline: a
// deterministic, rule-based reader of English and Chinese requests that needs
// no network and no API key. It is the default model when no LLM is
// configured and the fallback when one fails.
//
// Data flows through the offline planner in one direction:
//
//	text → normalise (full-width forms, quotes) → find URLs
//	     → parse time expressions (when.go), masking what they consume
//	     → management intents (list, pause, resume, delete, run)
//	     → slots from lexicons and patterns (slots.go, lexicon.go)
//	     → intent, kind and domain → schedule, missing slots, question
//
// The result is a Plan in the JSON shape of shared/fixtures/README.md.
package agent

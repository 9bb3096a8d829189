// Package agent holds Vigil's agents and the models behind them.
//
// Models. Every source of intelligence answers through one interface,
// Model, so an agent loop has one path whatever answers it:
//
//   - LangChain: LLMs through tmc/langchaingo (OpenAI-compatible endpoints,
//     Ollama, Anthropic), with tool calling and streamed text deltas;
//   - Sampling: the connected MCP client's own model, through a Sampler;
//   - Offline: the built-in rule-based model, the default with no LLM
//     configured;
//   - Fallback: a primary model that falls back to a secondary (the offline
//     model) when it fails or times out, reporting it so the agent can emit
//     a warning event.
//
// The slot schemas of each task domain are Go structs; the JSON schema
// generated from them is the plan_task function the models are offered and
// the schema their answers are validated against.
//
// Planner. PlanOffline is the offline model's planner: a deterministic,
// rule-based reader of English and Chinese requests that needs no network
// and no API key. Data flows through it in one direction:
//
//	text → normalise (full-width forms, quotes) → find URLs
//	     → parse time expressions (when.go), masking what they consume
//	     → management intents (list, pause, resume, delete, run)
//	     → slots from lexicons and patterns (slots.go, lexicon.go)
//	     → intent, kind and domain → schedule, missing slots, question
//
// The result is a Plan in the JSON shape of shared/fixtures/README.md.
//
// Main agent. Assistant takes a user's message on a thread and answers on
// the thread's event stream: status, a reasoning summary, then a
// clarification for missing slots, a task card for a draft, the result of
// a management intent (list, pause, resume, delete, run) or a chat answer,
// then done. Its conversation state lives in the thread itself, so it
// survives restarts.
//
// Task agent. TaskAgent is the run executor (tasks.Executor): a
// tool-calling loop over the task's allowed tools, each call's arguments
// validated against the tool's schema and repaired or re-asked before it
// runs, checkpointed after each step with the conversation so far, so that
// a run taken over after a crash resumes where it stopped. With the
// offline model (or when the LLM fails) it runs the task's declared steps
// through the StepExecutor and renders the notification from a template
// per domain.
package agent

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
// The main agent (slot filling over a thread, clarifications, task cards)
// and the task agent (running a task's tool loop as the run executor) are
// built on these and come with the task scheduler.
package agent

// Package streams is Vigil's streaming protocol: the event envelope and its
// typed payloads, the Log interface that persists them per thread, the Hub
// that fans one backend subscription per thread out to every local
// subscriber, and the SSE handler that serves them.
//
// Data flows one way: a producer (the API, an agent, a worker) appends events
// to the Log, which assigns each an ID and persists it; the Hub follows the
// Log and hands new events to subscribers; the SSE handler writes each to
// its client with the ID as the SSE id, so a client that drops resumes with
// Last-Event-ID and receives every later event exactly once, in order.
package streams

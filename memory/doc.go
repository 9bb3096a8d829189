// Package memory is what Vigil's agents remember, in three layers:
//
//   - Short-term: the recent turns of a conversation, trimmed to a token
//     budget before they go into a prompt (Window, EstimateTokens). Nothing
//     is stored here; the turns come from the thread's event log.
//   - Session: facts gathered in a thread or in a task's runs ("the user
//     flies to Hangzhou on Friday", "the last price seen was 512.3"), kept
//     per thread and recalled by query (Service.Remember, Service.Recall).
//     Recall ranks by keyword matches (English words, Chinese characters and
//     character pairs; see Keywords), or by cosine similarity when an
//     Embedder is configured.
//   - Long-term: each user's Profile (home city, language, time zone, quiet
//     hours, free preferences), sealed with AES-GCM before it reaches the
//     store and readable only by that user's principal (Service.Profile).
//
// # Data flow
//
// A request's principal (vigil.PrincipalFrom) decides the tenant and user;
// callers never pass them. Writes go:
//
//	Remember:   Fact → validate → Keywords(text, tags) [→ Embedder] → Store.AddFact(fact, terms)
//	PutProfile: Profile → Validate → JSON → AES-GCM seal (nonce, AAD = tenant+user) → Store.PutProfile
//
// and reads come back the same way:
//
//	Recall:  query → Keywords → Store.FactCandidates (facts sharing a term) → rank by matches
//	         query → Embedder → Store.ListFacts (newest N) → rank by cosine similarity
//	Profile: Store.GetProfile → AES-GCM open → JSON → Profile
//
// The Store (store/bolt, store/redis) therefore only ever holds profile
// ciphertext: the key lives in the Service, given by configuration, and a
// sealed profile copied to another user, or read with another key, fails to
// open with ErrDecrypt instead of yielding someone else's data. Session
// facts are stored in clear, so that the store can index them for recall;
// agents should not remember secrets as facts. A thread's facts are visible
// to whoever may read the thread in its tenant, as its events are; a
// profile only to its own user.
package memory

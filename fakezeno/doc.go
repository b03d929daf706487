// Package fakezeno is a realistic fake of the Project Zeno chat API (as the
// team's API reference, zeno-api.md parts A and C, records it), used as an
// offline target for the load generator, for accuracy tests and for
// benchmarks.
//
// Endpoints:
//
//	POST   /api/chat            auth, validation, threads, quota, NDJSON stream
//	GET    /api/quota           {"promptsUsed":N,"promptQuota":Q}; does not count
//	GET    /api/auth/me         machine user profile with quota
//	GET    /api/metadata        no auth; liveness probe
//	DELETE /api/threads/{id}    204 for the owner, 404 otherwise
//	GET    /_fake/stats         GroundTruth as JSON
//	POST   /_fake/reset-quota   zero every quota counter
//
// POST /api/chat checks in the real order: JSON syntax (422), bearer
// token (401 with the real details; both zeno-key:<prefix>:<secret> and the
// legacy zeno-key_<prefix>_<secret> name the same key; other tokens get a
// Resource Watch style 401), schema (422 in FastAPI's shape), thread_id
// (missing, null, owned by another key or still being created: 500 with a
// request_id), quota (counted per key prefix and local day, also on 429),
// then headers and the stream.
//
// Kinds and latency: a request on an existing thread is a follow-up. A new
// thread is "analysis" when its query is longer than 90 characters, mentions
// compare/analy(s|z)e/trend/correlat(e|ion), or has a year range such as
// "2015-2023", "from 2019 to 2023" or "between 2010 and 2020"; otherwise it
// is "quick". Each kind has a Profile: header delay, line count and gaps,
// each with uniform jitter. New threads add a naming delay before the
// headers. Config.Fixed replaces all of that with one jitter-free profile
// and no naming delay, so timings are exact. Config.TimeScale multiplies
// every delay; 0 sends everything as fast as possible.
//
// The 200 body is chunked application/x-ndjson. Output is flushed before
// each wait, so every line leaves at its time; lines due at the same moment
// (no gap, as at time scale 0) share one chunk and one write. Each line is
// {"node": N, "update": "<JSON string>"} with LangChain dumps shapes: model
// and tools lines alternating towards a final model answer, then trace_info
// unless NoTraceInfo. Injected faults: a non-fatal stream_processing_error
// line in place of a content line, a fatal stream_initialization_error line
// that ends the stream, a body cut without its terminating chunk (clients
// read io.ErrUnexpectedEOF), a tools line with status "error", a 500 before
// streaming and slow headers.
//
// Capacity: streams run on net/http's connection goroutines only; line
// bodies are precomputed in New and shared; counters are atomics; threads
// and quota use sharded or per-key short locks. The thread store keeps about
// Config.MaxThreads threads (200,000 by default; each of its 64 shards
// forgets its oldest past a 64th of that), so a long run at time scale 0, a
// new thread per request, stays bounded. Randomness is per request, seeded
// from Config.Seed and the request's arrival index.
package fakezeno

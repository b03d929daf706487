// Package tasks is the Zeno chat load: a streaming client for POST /api/chat,
// the ZenoChatUser behaviours (quick, analysis, multi-turn conversation),
// machine-user tokens and the extra metrics sent to the Locust master.
//
// # Locust rows
//
// One row per real HTTP request: type POST, name quick_query, analysis_query,
// conversation_start or conversation_followup, response time = the whole
// stream (request sent → end of body), length = body bytes. Failure texts are
// short and stable so the failures table stays small:
//
//	HTTP <code>: <server detail, sanitised, ≤80 chars>   e.g. HTTP 401: Invalid machine user key
//	HTTP 429: daily quota exceeded
//	HTTP <code>: <status text>                            when the body has no JSON detail
//	stream error: <error_type or type>                    fatal error line
//	stream error (non-fatal): <error_type or type>        only with FailOnNonFatal (default)
//	stream error: invalid line                            a line that is not {"node":...}
//	stream truncated                                      body failed after the headers
//	line too long                                         line above MaxLineBytes
//	empty stream                                          200 without a single line
//	timeout after <N>s                                    our total per-request timeout
//	connection error: refused|reset|dns|unreachable|tls|closed|connect timeout|other
//
// A request interrupted because the runtime cancelled the user's context is
// not recorded: it measures the stop, not the server.
//
// # Master options (parsed_options), overriding Config per user
//
// zeno_quick_weight, zeno_analysis_weight, zeno_conversation_weight,
// zeno_wait_min, zeno_wait_max, zeno_think_min, zeno_think_max (seconds),
// zeno_turns_min, zeno_turns_max, zeno_fail_on_nonfatal. Invalid values are
// logged once and the configured value is kept. expect_workers partitions the
// token pool when Config.Workers is 0.
//
// # zeno_metrics message
//
// Metrics.Report returns the delta since the previous report:
//
//	{"v":1,
//	 "requests": {name: {"count":n, "ttfb":{bucket_ms:n}, "first_line":{bucket_ms:n},
//	              "ttfb_sum_ms":f, "first_line_sum_ms":f, "bytes":n, "lines":n}},
//	 "quota": {key_prefix: {"used":max X-Prompts-Used seen, "quota":X-Prompts-Quota}},
//	 "conversations": {"started":n, "completed":n, "continuity_failures":n, "turns":{turns:n}},
//	 "status_429": n}
//
// Buckets follow Locust's rounding (locust.BucketResponseTime). Histogram keys are int64 so
// msgpack sends integer keys. Names are fixed and quota prefixes are capped at
// 64 per window, so a message stays small however long the run.
package tasks

// Package metrics holds the end-to-end ground-truth test of the Zeno metrics
// pipeline (issue 5): Go zeno-worker processes measure TTFB, first line,
// bytes, lines, quota and conversations, send them to a stock Locust master
// as "zeno_metrics" custom messages, and locustfile_master.py +
// zeno_metrics.py aggregate them into PREFIX_zeno.csv, <report>_zeno.html and
// an end-of-run summary. The test compares all of that with the fake Zeno
// server's own counters (GET /_fake/stats) on both supported masters.
//
// Skipped under -short. Run it with
//
//	ZENOLOAD_REQUIRE_MASTERS=1 go test -count=1 -v ./e2e/metrics/
//
// (about 40 s: one ~20 s run per master). The browser test of the web UI's
// Zeno tab is scripts/browser-test.sh.
package metrics

package reliability

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenoload/zenoload/fakezeno"
	"github.com/zenoload/zenoload/internal/locusttest"
)

// TestQuota: three keys of quota 50 across three workers carry a run of
// ~120 requests with no 429 (each worker uses its own key). With a single
// key, the 429s are recorded as failures ("HTTP 429: daily quota exceeded")
// and the users back off: the request rate collapses after the quota ends.
// Quota handling is worker-side, so one master version (2.47.0) suffices.
func TestQuota(t *testing.T) {
	integration(t)
	t.Parallel()
	m := masters(t, true)[0]
	keys := []fakezeno.Key{{Prefix: prefixA, Secret: secretA}, {Prefix: prefixB, Secret: secretB}, {Prefix: prefixC, Secret: secretC}}
	pool := token(prefixA, secretA) + "," + token(prefixB, secretB) + "," + token(prefixC, secretC)
	for _, tc := range []struct {
		name string
		env  string
	}{{"pool-of-3", "ZENO_MACHINE_USER_TOKENS=" + pool}, {"one-key", "ZENO_MACHINE_USER_TOKEN=" + token(prefixA, secretA)}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRun(t, 60*time.Second)
			// Deterministic pacing: 200 ms per request + 400 ms wait = 1.67 req/s
			// per user; 6 users for 12 s ≈ 120 requests, ≈ 40 per key.
			fk := startFake(t, fakezeno.Config{TimeScale: 1, Quota: 50, Keys: keys,
				Fixed: &fakezeno.Profile{HeaderDelay: 100 * time.Millisecond, Lines: 2, Gap: 50 * time.Millisecond}})
			port := locusttest.FreePort(t)
			mp := r.master(m, port, "--headless", "-u", "6", "-r", "6", "-t", "12s", "--expect-workers", "3",
				"--host", fk.URL, "--csv", filepath.Join(r.dir, "run"),
				"--zeno-wait-min", "0.4", "--zeno-wait-max", "0.4", "--zeno-conversation-weight", "0")
			var ws []*locusttest.Proc
			for i := 0; i < 3; i++ {
				ws = append(ws, r.worker(port, []string{tc.env}))
			}
			// Sample the fake's request counter to see the rate over time.
			type sample struct {
				at        time.Time
				total, tm int64
			}
			var mu sync.Mutex
			var samples []sample
			stop := make(chan struct{})
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(250 * time.Millisecond):
					}
					g := fk.srv.Stats()
					mu.Lock()
					samples = append(samples, sample{time.Now(), g.ChatRequestsTotal, g.ByStatus["429"]})
					mu.Unlock()
				}
			}()
			code, err := mp.Wait(40 * time.Second)
			close(stop)
			if err != nil {
				t.Fatalf("master did not end:\n%s", tail(mp.Output(), 30))
			}
			for i, w := range ws {
				if c, err := w.Wait(10 * time.Second); err != nil || c != 0 {
					t.Errorf("worker %d: exit %d %v\n%s", i, c, err, tail(w.Output(), 10))
				}
			}
			g := fk.srv.Stats()
			reqs, nfail := aggregated(t, locusttest.ReadCSV(t, filepath.Join(r.dir, "run_stats.csv")))
			fails := failureTexts(t, filepath.Join(r.dir, "run_failures.csv"))
			var n429 int64
			for k, n := range fails {
				if strings.HasPrefix(k, "HTTP 429") {
					if k != "HTTP 429: daily quota exceeded" {
						t.Errorf("unstable 429 message %q", k)
					}
					n429 += n
				}
			}
			t.Logf("%s: master exit %d, %d requests / %d failures (%d x 429); fake %d requests, by status %v, quota %v",
				tc.name, code, reqs, nfail, n429, g.ChatRequestsTotal, g.ByStatus, g.Quota)
			if reqs != recorded(g) {
				t.Errorf("master counted %d requests, the fake answered %d (%d received, %d cut by the end of the run)",
					reqs, recorded(g), g.ChatRequestsTotal, g.AbortedBeforeHeaders+g.StreamsClientGone)
			}
			if tc.name == "pool-of-3" {
				if g.ByStatus["429"] != 0 || n429 != 0 {
					t.Errorf("pool of 3 keys: %d 429s at the fake, %d recorded; want none", g.ByStatus["429"], n429)
				}
				if reqs < 100 {
					t.Errorf("run made %d requests; it should need more than two keys' quota (100)", reqs)
				}
				for p, q := range g.Quota {
					if q.Used == 0 || q.Used > 50 {
						t.Errorf("key %s used %d of 50", p, q.Used)
					}
				}
				if code != 0 {
					t.Errorf("master exit %d, want 0", code)
				}
				return
			}
			// One key: 429s recorded as failures, users back off.
			if g.ByStatus["429"] == 0 || n429 == 0 {
				t.Fatalf("one key of quota 50: no 429 (fake %d, recorded %d)", g.ByStatus["429"], n429)
			}
			if n429 > g.ByStatus["429"] || n429 < g.ByStatus["429"]-6 {
				t.Errorf("recorded %d 429s, fake sent %d", n429, g.ByStatus["429"])
			}
			// Rate before the first 429 vs from 1 s after it to the end.
			mu.Lock()
			defer mu.Unlock()
			first := -1
			for i, s := range samples {
				if s.tm > 0 {
					first = i
					break
				}
			}
			start := 0
			for start < len(samples) && samples[start].total == 0 {
				start++
			}
			if first <= start+2 || first+6 >= len(samples) {
				t.Fatalf("cannot measure rates: first 429 at sample %d of %d", first, len(samples))
			}
			rate := func(a, b sample) float64 { return float64(b.total-a.total) / b.at.Sub(a.at).Seconds() }
			before := rate(samples[start], samples[first])
			after := rate(samples[first+4], samples[len(samples)-1])
			t.Logf("one key: %.1f req/s before the quota ran out, %.2f req/s after (users back off 30 s per 429); 429s %d for 6 users",
				before, after, g.ByStatus["429"])
			if after > before*0.2 {
				t.Errorf("no backoff after 429: %.1f req/s before, %.1f after", before, after)
			}
			if g.ByStatus["429"] > 12 {
				t.Errorf("%d 429s for 6 users in 12 s: users are not backing off", g.ByStatus["429"])
			}
		})
	}
}

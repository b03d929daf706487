package reliability

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenoload/zenoload/fakezeno"
	"github.com/zenoload/zenoload/internal/locusttest"
	"github.com/zenoload/zenoload/locust"
)

// hostile is an in-process Zeno stand-in for what fakezeno does not do: a
// 10 MB line, an endless line, and every kind of response echoing the
// caller's bearer token back (the worst case for secrets). Each request gets
// the next mode in turn.
type hostile struct {
	n     atomic.Int64
	modes sync.Map // mode name → count
}

const (
	bigLine     = 10 << 20  // a valid 10 MB line: accepted (default limit 16 MB)
	endlessLine = 256 << 20 // no newline for 256 MB: "line too long" at the limit
)

var hostileModes = []string{"big-ok", "endless", "500-echo", "401-echo", "fatal-echo", "nonfatal-echo", "invalid-echo"}

func (h *hostile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	tok := strings.TrimPrefix(auth, "Bearer ")
	secret := tok[strings.LastIndex(tok, ":")+1:]
	esc := func(s string) string { b, _ := json.Marshal(s); return string(b[1 : len(b)-1]) }
	errLine := func(typ string, fatal bool) string {
		upd, _ := json.Marshal(map[string]any{"error": true, "message": "failed for " + auth,
			"error_type": secret, "type": typ, "fatal": fatal, "token": tok})
		line, _ := json.Marshal(map[string]any{"node": "error", "update": string(upd)})
		return string(line) + "\n"
	}
	w.Header().Set("X-Echo-Token", tok)
	n := h.n.Add(1)
	if n == 6 { // one 429 only: it sends that user into a 30 s backoff
		h.count("429-echo")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprintf(w, `{"detail":"Daily free limit of 50 exceeded for %s"}`, esc(tok))
		return
	}
	mode := hostileModes[int(n-1)%len(hostileModes)]
	h.count(mode)
	model := `{"node": "model", "update": "{\"messages\": []}"}` + "\n"
	trace := `{"node": "trace_info", "update": "{\"trace_id\": \"x\"}"}` + "\n"
	switch mode {
	case "500-echo":
		w.WriteHeader(500)
		fmt.Fprintf(w, `{"detail":"boom for %s (secret %s)"}`, esc(auth), secret)
		return
	case "401-echo":
		w.WriteHeader(401)
		fmt.Fprintf(w, `{"detail":"Invalid machine user key %s"}`, esc(tok))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(200)
	fl := w.(http.Flusher)
	switch mode {
	case "big-ok":
		chunk := strings.Repeat("x", 1<<20)
		_, _ = w.Write([]byte(`{"node": "model", "update": "`))
		for i := 0; i < bigLine>>20; i++ {
			if _, err := w.Write([]byte(chunk)); err != nil {
				return
			}
		}
		_, _ = w.Write([]byte("\"}\n" + trace))
	case "endless":
		chunk := []byte(strings.Repeat("y", 1<<20))
		_, _ = w.Write([]byte(`{"node": "model", "update": "`))
		for i := 0; i < endlessLine>>20; i++ {
			if _, err := w.Write(chunk); err != nil {
				return // the client gave up, as it should
			}
			fl.Flush()
		}
	case "fatal-echo":
		_, _ = w.Write([]byte(model + errLine("stream_initialization_error", true)))
	case "nonfatal-echo":
		_, _ = w.Write([]byte(model + errLine("stream_processing_error", false) + trace))
	case "invalid-echo":
		_, _ = w.Write([]byte(model + "not json " + tok + "\n" + trace))
	}
	fl.Flush()
}

func (h *hostile) count(mode string) {
	v, _ := h.modes.LoadOrStore(mode, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// TestTargetFaultsAndSecrets is one headless run with four workers, each
// facing different faults, so every failure kind lands in one _failures.csv:
//
//	A: fakezeno with 500s, fatal and non-fatal error lines, truncated streams
//	   and slow headers beyond A's --timeout 1.5s;
//	B: connection refused (nothing listens on its --host);
//	C: the hostile server: a valid 10 MB line, a 256 MB line without newline
//	   (memory must stay bounded), and every response echoing the token;
//	D: a wrong secret for a known key: HTTP 401 from fakezeno.
//
// Each failure is recorded with its stable message, nothing crashes or hangs,
// the run ends on time, the master's count equals the workers' own totals,
// and no secret appears in any file of the run folder or any output.
func TestTargetFaultsAndSecrets(t *testing.T) {
	integration(t)
	t.Parallel()
	for _, m := range masters(t, false) {
		t.Run(m.Version, func(t *testing.T) {
			r := newRun(t, 90*time.Second)
			fk := fastFake(t, 0.02, func(c *fakezeno.Config) {
				c.Keys = []fakezeno.Key{{Prefix: prefixA, Secret: secretA}}
				c.HTTP500Rate, c.FatalErrorRate, c.NonFatalErrorRate = 0.12, 0.12, 0.15
				c.TruncateRate, c.SlowHeadersRate = 0.12, 0.12
				c.SlowHeadersDelay = 150 * time.Second // ×0.02 = 3 s > --timeout 1.5s
				c.Seed = 11
			})
			h := &hostile{}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			hs := &http.Server{Handler: h}
			go func() { _ = hs.Serve(ln) }()
			t.Cleanup(func() { hs.Close() })
			hostileURL := "http://" + ln.Addr().String()

			port := locusttest.FreePort(t)
			const runTime = 15 * time.Second
			start := time.Now()
			mp := r.master(m, port, "--headless", "-u", "16", "-r", "16", "-t", "15s", "--expect-workers", "4",
				"--host", fk.URL, "--csv", filepath.Join(r.dir, "run"), "--html", filepath.Join(r.dir, "report.html"))
			common := []string{"--loglevel", "DEBUG"}
			wargs := func(name string, extra ...string) []string {
				return append(append([]string{"--summary-json", filepath.Join(r.dir, name+".json")}, common...), extra...)
			}
			envTok := func(p, s string) []string { return []string{"ZENO_MACHINE_USER_TOKEN=" + token(p, s)} }
			procs := map[string]*locusttest.Proc{"master": mp}
			procs["workerA"] = r.worker(port, envTok(prefixA, secretA), wargs("workerA", "--timeout", "1.5s")...)
			procs["workerB"] = r.worker(port, envTok(prefixA, secretA),
				wargs("workerB", "--host", "http://127.0.0.1:"+strconv.Itoa(closedPort(t)))...)
			procs["workerC"] = r.worker(port, envTok(prefixC, secretC), wargs("workerC", "--host", hostileURL)...)
			procs["workerD"] = r.worker(port, envTok(prefixA, wrongSecret), wargs("workerD")...)

			// Sample C's memory while it reads 10 MB and 256 MB lines.
			var maxRSS atomic.Int64
			stopSampling := make(chan struct{})
			go func() {
				pid := procs["workerC"].Cmd.Process.Pid
				for {
					select {
					case <-stopSampling:
						return
					case <-time.After(100 * time.Millisecond):
					}
					if v := rssKiB(pid); v > maxRSS.Load() {
						maxRSS.Store(v)
					}
				}
			}()

			code, err := mp.Wait(runTime + 40*time.Second)
			close(stopSampling)
			took := time.Since(start)
			if err != nil {
				r.saveLogs(procs)
				t.Fatalf("master did not end: %v\n%s", err, tail(mp.Output(), 30))
			}
			for name, p := range procs {
				if name == "master" {
					continue
				}
				if c, err := p.Wait(15 * time.Second); err != nil || c != 0 {
					t.Errorf("%s: exit %d, %v\n%s", name, c, err, tail(p.Output(), 15))
				}
			}
			r.saveLogs(procs)
			g := fk.srv.Stats()
			if b, err := json.MarshalIndent(g, "", "  "); err == nil {
				_ = os.WriteFile(filepath.Join(r.dir, "fake_stats.json"), b, 0o644)
			}
			if code != 1 {
				t.Errorf("master exit code %d, want 1 (failures present, no internal error)", code)
			}
			if took > runTime+25*time.Second {
				t.Errorf("run took %v for -t 15s", took.Round(time.Second))
			}
			for _, bad := range []string{"Traceback", "Uncaught exception", "Unhandled exception"} {
				if strings.Contains(mp.Output(), bad) {
					t.Errorf("master output contains %q:\n%s", bad, tail(mp.Output(), 40))
				}
			}
			for name, p := range procs {
				if strings.Contains(p.Output(), "panic:") || strings.Contains(p.Output(), "goroutine ") {
					t.Errorf("%s panicked:\n%s", name, tail(p.Output(), 40))
				}
			}

			// Every failure kind, with its stable message.
			fails := failureTexts(t, filepath.Join(r.dir, "run_failures.csv"))
			var keys []string
			for k, n := range fails {
				keys = append(keys, fmt.Sprintf("%6d  %s", n, k))
			}
			sort.Strings(keys)
			t.Logf("Locust %s _failures.csv:\n%s", m.Version, strings.Join(keys, "\n"))
			want := []string{
				"HTTP 401: Invalid machine user key",                  // D
				"HTTP 500: Internal Server Error",                     // A
				"stream error: RuntimeError",                          // A fatal line
				"stream error (non-fatal): TypeError",                 // A non-fatal line
				"stream truncated",                                    // A
				"timeout after 1.5s",                                  // A slow headers
				"connection error: refused",                           // B
				"line too long",                                       // C endless line
				"HTTP 429: daily quota exceeded",                      // C
				"stream error: invalid line",                          // C
				"HTTP 500: boom for Bearer zeno-key:" + prefixC + ":", // C, redacted echo
			}
			for _, w := range want {
				found := false
				for k := range fails {
					if strings.HasPrefix(k, w) {
						found = true
					}
				}
				if !found {
					t.Errorf("no failure %q in _failures.csv", w)
				}
			}
			if len(fails) > 25 {
				t.Errorf("%d distinct failure rows; messages are not stable", len(fails))
			}

			// The master counted exactly what the workers recorded.
			reqs, nfail := aggregated(t, locusttest.ReadCSV(t, filepath.Join(r.dir, "run_stats.csv")))
			var wreq, wfail int64
			werr := map[string]int64{}
			for _, name := range []string{"workerA", "workerB", "workerC", "workerD"} {
				var s locust.Summary
				b, err := os.ReadFile(filepath.Join(r.dir, name+".json"))
				if err != nil || json.Unmarshal(b, &s) != nil {
					t.Errorf("%s summary: %v", name, err)
					continue
				}
				wreq += s.Requests
				wfail += s.Failures
				for _, e := range s.Errors {
					werr[name+" "+e.Error] += e.Occurrences
				}
			}
			if reqs != wreq || nfail != wfail {
				t.Errorf("master CSV %d requests / %d failures, workers %d / %d; worker errors: %v", reqs, nfail, wreq, wfail, werr)
			}
			var modes []string
			h.modes.Range(func(k, v any) bool {
				modes = append(modes, fmt.Sprintf("%s=%d", k, v.(*atomic.Int64).Load()))
				return true
			})
			sort.Strings(modes)
			t.Logf("Locust %s: run %v; master %d requests, %d failures (workers %d/%d); fake %d chat requests, by status %v, truncated %d, fatal %d, non-fatal lines %d, slow headers %d; hostile server modes %v; worker C max RSS %d MiB",
				m.Version, took.Round(100*time.Millisecond), reqs, nfail, wreq, wfail, g.ChatRequestsTotal, g.ByStatus,
				g.StreamsTruncated, g.StreamsFatal, g.NonFatalErrorLines, g.SlowHeaders, modes, maxRSS.Load()>>10)
			if n := maxRSS.Load(); n > 300<<10 {
				t.Errorf("worker C RSS reached %d MiB reading long lines; want bounded (< 300 MiB)", n>>10)
			}

			// Secrets: nothing in the run folder or any output holds one.
			secrets := []string{secretA, secretC, wrongSecret}
			var scanned []string
			_ = filepath.WalkDir(r.dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return nil
				}
				b, err := os.ReadFile(p)
				if err != nil {
					return nil
				}
				scanned = append(scanned, filepath.Base(p))
				for _, s := range secrets {
					if i := strings.Index(string(b), s); i >= 0 {
						lo, hi := max(0, i-120), min(len(b), i+40)
						t.Errorf("SECRET LEAK: %s contains %s…: %q", filepath.Base(p), s[:6], b[lo:hi])
					}
				}
				return nil
			})
			sort.Strings(scanned)
			t.Logf("secret scan: %d files: %v", len(scanned), scanned)
			for _, f := range []string{"run_stats.csv", "run_failures.csv", "report.html", "run_zeno.csv", "report_zeno.html",
				"workerA.json", "workerC.log", "master.log"} {
				if _, err := os.Stat(filepath.Join(r.dir, f)); err != nil {
					t.Errorf("expected output %s missing from the run folder", f)
				}
			}
			if !strings.Contains(procs["workerD"].Output(), prefixA) {
				t.Logf("note: worker D's log does not name the rejected key's prefix %s", prefixA)
			}
		})
	}
}

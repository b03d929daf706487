package locust_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zenoload/zenoload/internal/locusttest"
	"github.com/zenoload/zenoload/locust"
)

// workerSummary is what testworker writes at exit.
type workerSummary struct {
	locust.Summary
	Spawned map[string]int64 `json:"spawned"`
	Index   int              `json:"worker_index"`
}

func testworker(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test (needs real Locust masters)")
	}
	return locusttest.GoBuild(t, t.TempDir(), "./locust/internal/testworker")
}

func startWorkers(t *testing.T, ctx context.Context, bin, dir string, masterPort, n int, extra ...string) []*locusttest.Proc {
	var ps []*locusttest.Proc
	for i := 0; i < n; i++ {
		args := append([]string{bin, "--master-port", strconv.Itoa(masterPort),
			"--summary", filepath.Join(dir, fmt.Sprintf("w%d.json", i))}, extra...)
		ps = append(ps, locusttest.Start(t, ctx, dir, nil, args...))
	}
	return ps
}

func readSummaries(t *testing.T, dir string, n int) []workerSummary {
	var out []workerSummary
	for i := 0; i < n; i++ {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("w%d.json", i)))
		require.NoError(t, err)
		var s workerSummary
		require.NoError(t, json.Unmarshal(b, &s))
		out = append(out, s)
	}
	return out
}

// TestHeadlessRun: the master's CSV must count exactly what the workers
// recorded, with the same percentiles, and write its HTML report.
func TestHeadlessRun(t *testing.T) {
	bin := testworker(t)
	for _, m := range locusttest.Masters(t) {
		t.Run(m.Version, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			dir := t.TempDir()
			port := locusttest.FreePort(t)
			argv := m.Argv(filepath.Join(locusttest.RepoRoot(), "locust/testdata/synth_master.py"), port,
				"--headless", "-u", "20", "-r", "10", "-t", "15s", "--expect-workers", "2",
				"--csv", filepath.Join(dir, "run"), "--csv-full-history", "--html", filepath.Join(dir, "report.html"),
				"--exit-code-on-error", "0")
			master := locusttest.Start(t, ctx, dir, nil, argv...)
			workers := startWorkers(t, ctx, bin, dir, port, 2, "--fail-every", "50")
			code, err := master.Wait(60 * time.Second)
			require.NoError(t, err, master.Output())
			for _, w := range workers {
				wc, err := w.Wait(10 * time.Second)
				require.NoError(t, err)
				require.Equal(t, 0, wc, w.Output())
			}
			sums := readSummaries(t, dir, 2)
			var reqs, fails int64
			merged := map[int64]int64{}
			for _, s := range sums {
				reqs += s.Requests
				fails += s.Failures
				for _, e := range s.Entries {
					for k, v := range e.ResponseTimes {
						merged[k] += v
					}
				}
			}
			require.Greater(t, reqs, int64(500), "workers recorded too little")
			require.Greater(t, fails, int64(0))
			// The injected failures are expected (--exit-code-on-error 0); any
			// other exit (2) would mean the master failed on our messages.
			require.Equal(t, 0, code, master.Output())
			require.NotContains(t, master.Output(), "Traceback")
			rows := locusttest.ReadCSV(t, filepath.Join(dir, "run_stats.csv"))
			var row map[string]string
			for _, r := range rows {
				if r["Name"] == "/SynthUser" {
					row = r
				}
			}
			require.NotNil(t, row, "no /SynthUser row in CSV")
			require.Equal(t, strconv.FormatInt(reqs, 10), row["Request Count"], "master count != worker count")
			require.Equal(t, strconv.FormatInt(fails, 10), row["Failure Count"])
			for _, p := range []struct {
				col string
				pct float64
			}{{"50%", .5}, {"66%", .66}, {"75%", .75}, {"90%", .9}, {"95%", .95}, {"99%", .99}, {"100%", 1}} {
				require.Equal(t, strconv.FormatInt(locust.Percentile(merged, reqs, p.pct), 10), row[p.col], "percentile %s", p.col)
			}
			fi, err := os.Stat(filepath.Join(dir, "report.html"))
			require.NoError(t, err)
			require.Greater(t, fi.Size(), int64(10000))
			failures := locusttest.ReadCSV(t, filepath.Join(dir, "run_failures.csv"))
			require.Len(t, failures, 1, "identical errors from two workers must merge into one row")
			t.Logf("Locust %s: workers recorded %d requests (%d failures); master CSV %s", m.Version, reqs, fails, row["Request Count"])
		})
	}
}

// TestWebUICycle drives the master through its HTTP API: start, stop, start.
func TestWebUICycle(t *testing.T) {
	bin := testworker(t)
	for _, m := range locusttest.Masters(t) {
		t.Run(m.Version, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			dir := t.TempDir()
			port, webPort := locusttest.FreePort(t), locusttest.FreePort(t)
			argv := m.Argv(filepath.Join(locusttest.RepoRoot(), "locust/testdata/synth_master.py"), port,
				"--web-host", "127.0.0.1", "--web-port", strconv.Itoa(webPort))
			master := locusttest.Start(t, ctx, dir, nil, argv...)
			workers := startWorkers(t, ctx, bin, dir, port, 2)
			web := locusttest.WebUI{Base: fmt.Sprintf("http://127.0.0.1:%d", webPort), Host: "http://127.0.0.1:1"}
			require.True(t, web.WaitReady(t, 2, 20*time.Second), "workers never ready: %s", master.Output())
			var lastReq int64
			for round := 1; round <= 2; round++ {
				web.Swarm(t, 4, 4)
				require.True(t, locusttest.WaitFor(20*time.Second, func() bool {
					ws, err := web.Stats()
					return err == nil && ws.Requests() > 20
				}), "round %d produced no requests: %s", round, master.Output())
				web.Stop(t)
				require.True(t, web.WaitReady(t, 2, 20*time.Second), "round %d: workers did not re-register: %s", round, master.Output())
				ws, _ := web.Stats()
				lastReq = ws.Requests()
			}
			require.Greater(t, lastReq, int64(20))
			require.NoError(t, master.Cmd.Process.Signal(os.Interrupt))
			for _, w := range workers {
				code, err := w.Wait(20 * time.Second)
				require.NoError(t, err)
				require.Equal(t, 0, code, w.Output())
			}
			_, _ = master.Wait(20 * time.Second)
			require.NotContains(t, master.Output(), "Traceback")
		})
	}
}

// TestDispatch: with classes weighted 3/5/2 the workers run exactly what the
// master dispatched.
func TestDispatch(t *testing.T) {
	bin := testworker(t)
	for _, m := range locusttest.Masters(t) {
		t.Run(m.Version, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			dir := t.TempDir()
			port := locusttest.FreePort(t)
			argv := m.Argv(filepath.Join(locusttest.RepoRoot(), "locust/testdata/dispatch_master.py"), port,
				"--headless", "-u", "10", "-r", "10", "-t", "6s", "--expect-workers", "2")
			master := locusttest.Start(t, ctx, dir, nil, argv...)
			workers := startWorkers(t, ctx, bin, dir, port, 2, "--classes", "UserA,UserB,UserC")
			code, err := master.Wait(40 * time.Second)
			require.NoError(t, err)
			require.Equal(t, 0, code, master.Output())
			for _, w := range workers {
				_, err := w.Wait(10 * time.Second)
				require.NoError(t, err)
			}
			total := map[string]int64{}
			idx := map[int]bool{}
			for _, s := range readSummaries(t, dir, 2) {
				for k, v := range s.Spawned {
					total[k] += v
				}
				idx[s.Index] = true
			}
			require.Equal(t, map[string]int64{"UserA": 3, "UserB": 5, "UserC": 2}, total)
			require.Equal(t, map[int]bool{0: true, 1: true}, idx, "worker indexes from ack")
			require.True(t, strings.Contains(master.Output(), "2 workers connected") || strings.Contains(master.Output(), "Sending spawn jobs"))
		})
	}
}

// TestMasterHeartbeatTimeout: a master that stops answering (SIGSTOP keeps
// its TCP connection open, so only heartbeats tell) makes the worker stop its
// users and register again; the master takes it back when it resumes.
func TestMasterHeartbeatTimeout(t *testing.T) {
	bin := testworker(t)
	var m *locusttest.Master
	for _, mm := range locusttest.Masters(t) {
		if mm.Version == "2.47.0" { // 2.12.1 sends no heartbeats: the rule is off there
			m = &mm
		}
	}
	if m == nil {
		t.Skip("needs Locust 2.47.0")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	port, webPort := locusttest.FreePort(t), locusttest.FreePort(t)
	argv := m.Argv(filepath.Join(locusttest.RepoRoot(), "locust/testdata/synth_master.py"), port,
		"--web-host", "127.0.0.1", "--web-port", strconv.Itoa(webPort))
	master := locusttest.Start(t, ctx, dir, nil, argv...)
	worker := startWorkers(t, ctx, bin, dir, port, 1, "--master-heartbeat-timeout", "3s")[0]
	web := locusttest.WebUI{Base: fmt.Sprintf("http://127.0.0.1:%d", webPort)}
	require.True(t, web.WaitReady(t, 1, 20*time.Second), master.Output())
	// Ready comes with the ack; the rule is armed by the first master
	// heartbeat, a reply to the worker's first, about 1 s later. Stopping the
	// master in between left nothing to detect (seen once in CI).
	require.True(t, locusttest.WaitFor(10*time.Second, func() bool {
		return strings.Contains(worker.Output(), "master heartbeats arrive")
	}), "no master heartbeat reached the worker: %s", worker.Output())
	require.NoError(t, master.Cmd.Process.Signal(syscall.SIGSTOP))
	require.True(t, locusttest.WaitFor(10*time.Second, func() bool {
		return strings.Contains(worker.Output(), "no heartbeat from locust master")
	}), "worker did not notice the silent master: %s", worker.Output())
	require.NoError(t, master.Cmd.Process.Signal(syscall.SIGCONT))
	require.True(t, locusttest.WaitFor(15*time.Second, func() bool {
		return strings.Count(worker.Output(), "registered with locust master") >= 2
	}), "worker did not register again: %s", worker.Output())
	require.NoError(t, master.Cmd.Process.Signal(os.Interrupt))
	code, err := worker.Wait(20 * time.Second)
	require.NoError(t, err)
	require.Equal(t, 0, code, worker.Output())
}

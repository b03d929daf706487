package locusttest

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// WebUI drives a master's HTTP API, as the web UI does.
type WebUI struct {
	Base string // http://127.0.0.1:PORT
	Host string // target host sent with /swarm
}

// WebWorker is one row of the master's worker list.
type WebWorker struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	UserCount int    `json:"user_count"`
}

// WebStats is the part of GET /stats/requests the tests read; the shape is
// the same in 2.12.1 and 2.47.
type WebStats struct {
	State     string `json:"state"`
	UserCount int    `json:"user_count"`
	Stats     []struct {
		Name        string `json:"name"`
		NumRequests int64  `json:"num_requests"`
		NumFailures int64  `json:"num_failures"`
	} `json:"stats"`
	Workers []WebWorker `json:"workers"`
}

// Stats reads GET /stats/requests.
func (w WebUI) Stats() (WebStats, error) {
	var ws WebStats
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(w.Base + "/stats/requests")
	if err != nil {
		return ws, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&ws)
	return ws, err
}

func (ws WebStats) total() (reqs, fails int64) {
	for _, s := range ws.Stats {
		if s.Name == "Aggregated" || s.Name == "Total" {
			return s.NumRequests, s.NumFailures
		}
	}
	return 0, 0
}

// Requests is the Aggregated request count.
func (ws WebStats) Requests() int64 { r, _ := ws.total(); return r }

// Failures is the Aggregated failure count.
func (ws WebStats) Failures() int64 { _, f := ws.total(); return f }

// Count is the number of workers in state.
func (ws WebStats) Count(state string) int {
	n := 0
	for _, w := range ws.Workers {
		if w.State == state {
			n++
		}
	}
	return n
}

// Users sums the workers' user counts.
func (ws WebStats) Users() int {
	n := 0
	for _, w := range ws.Workers {
		n += w.UserCount
	}
	return n
}

// WaitReady waits until exactly n workers are known and all are ready.
func (w WebUI) WaitReady(t testing.TB, n int, d time.Duration) bool {
	t.Helper()
	return WaitFor(d, func() bool {
		ws, err := w.Stats()
		return err == nil && ws.Count("ready") == n && len(ws.Workers) == n
	})
}

// Swarm starts a test like the web UI's Start button.
func (w WebUI) Swarm(t testing.TB, users int, rate float64) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.PostForm(w.Base+"/swarm", url.Values{
		"user_count": {strconv.Itoa(users)}, "spawn_rate": {strconv.FormatFloat(rate, 'f', -1, 64)}, "host": {w.Host}})
	if err != nil {
		t.Fatalf("swarm: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "true") {
		t.Fatalf("swarm: %d %s", resp.StatusCode, body)
	}
}

// Stop stops the test: 2.47 takes POST /stop, 2.12.1 GET /stop.
func (w WebUI) Stop(t testing.TB) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Post(w.Base+"/stop", "", nil)
	if err == nil && resp.StatusCode == http.StatusMethodNotAllowed {
		resp.Body.Close()
		resp, err = c.Get(w.Base + "/stop")
	}
	if err != nil {
		t.Fatalf("stop: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stop: HTTP %d", resp.StatusCode)
	}
}

// ReadCSV reads a Locust CSV into one map per row, keyed by header.
func ReadCSV(t testing.TB, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("read csv: %v", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("read csv %s: %v", path, err)
	}
	if len(rows) == 0 {
		t.Fatalf("read csv %s: empty", path)
	}
	var out []map[string]string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, h := range rows[0] {
			if i < len(r) {
				m[h] = r[i]
			}
		}
		out = append(out, m)
	}
	return out
}

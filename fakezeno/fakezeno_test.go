package fakezeno

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testPrefix = "abcd1234"
	testSecret = "0123456789abcdef0123456789abcdef"
	testToken  = "zeno-key:" + testPrefix + ":" + testSecret
)

func newTest(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() { s.Close(); ts.Close() })
	return s, ts
}

func chatReqBody(query, thread string) string {
	b, _ := json.Marshal(map[string]any{"query": query, "thread_id": thread})
	return string(b)
}

func post(t *testing.T, ts *httptest.Server, token, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/api/chat", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("POST /api/chat: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func bodyOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

type line struct {
	Node   string `json:"node"`
	Update string `json:"update"`
	inner  any
}

// readLines parses an NDJSON stream; err is the body's read error.
func readLines(t *testing.T, r io.Reader) ([]line, int, error) {
	t.Helper()
	br := bufio.NewReader(r)
	var out []line
	n := 0
	for {
		b, err := br.ReadBytes('\n')
		n += len(b)
		if len(b) > 0 && err == nil {
			var l line
			if jerr := json.Unmarshal(b, &l); jerr != nil {
				t.Fatalf("line %d not JSON: %v: %.200s", len(out)+1, jerr, b)
			}
			if jerr := json.Unmarshal([]byte(l.Update), &l.inner); jerr != nil {
				t.Fatalf("line %d update not a JSON string: %v", len(out)+1, jerr)
			}
			out = append(out, l)
		}
		if err == io.EOF {
			if len(b) > 0 {
				t.Fatalf("partial line at EOF: %.100s", b)
			}
			return out, n, nil
		}
		if err != nil {
			return out, n, err
		}
	}
}

func getStats(t *testing.T, ts *httptest.Server) GroundTruth {
	t.Helper()
	return fetchStats(t, ts.Client(), ts.URL)
}

// fetchStats reads the ground truth from a fake at base.
func fetchStats(t *testing.T, client *http.Client, base string) GroundTruth {
	t.Helper()
	resp, err := client.Get(base + "/_fake/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var g GroundTruth
	if err := json.NewDecoder(resp.Body).Decode(&g); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestAuth(t *testing.T) {
	keys := []Key{{Prefix: testPrefix, Secret: testSecret}, {Prefix: "deadbeef", Secret: "ffff", ExpiresAt: time.Now().Add(-time.Hour)}}
	_, ts := newTest(t, Config{Keys: keys})
	const (
		missing = `{"detail":"Missing Bearer token in Authorization header"}`
		format  = `{"detail":"Invalid machine user token format"}`
		unknown = `{"detail":"Invalid or inactive machine user key"}`
		wrong   = `{"detail":"Invalid machine user key"}`
		expired = `{"detail":"Machine user key has expired"}`
	)
	cases := []struct {
		name, header string
		code         int
		body         string
	}{
		{"no header", "", 401, missing},
		{"basic scheme", "Basic " + testToken, 401, missing},
		{"empty bearer", "Bearer ", 401, missing},
		{"two parts", "Bearer zeno-key:" + testPrefix, 401, format},
		{"four parts", "Bearer " + testToken + ":x", 401, format},
		{"legacy two parts", "Bearer zeno-key_" + testPrefix, 401, format},
		{"no separator", "Bearer zeno-keyX", 401, format},
		{"unknown prefix", "Bearer zeno-key:00000000:" + testSecret, 401, unknown},
		{"empty prefix", "Bearer zeno-key::" + testSecret, 401, unknown},
		{"wrong secret", "Bearer zeno-key:" + testPrefix + ":nope", 401, wrong},
		{"expired", "Bearer zeno-key:deadbeef:ffff", 401, expired},
		{"colon form", "Bearer " + testToken, 200, ""},
		{"legacy form", "Bearer zeno-key_" + testPrefix + "_" + testSecret, 200, ""},
		{"lower-case scheme", "bearer " + testToken, 200, ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/chat", strings.NewReader(chatReqBody("hi", fmt.Sprint("t", i))))
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got := bodyOf(t, resp)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.code, got)
			}
			if tc.body != "" && got != tc.body {
				t.Fatalf("body %s, want %s", got, tc.body)
			}
		})
	}
	t.Run("rw token", func(t *testing.T) {
		resp := post(t, ts, "eyJhbGciOiJIUzI1NiJ9.e30.x", chatReqBody("hi", "rw"))
		var d struct{ Detail string }
		if err := json.Unmarshal([]byte(bodyOf(t, resp)), &d); resp.StatusCode != 401 || err != nil || d.Detail == "" {
			t.Fatalf("status %d err %v detail %q", resp.StatusCode, err, d.Detail)
		}
	})
	// Both forms share the key's quota counter.
	resp, err := http.NewRequest(http.MethodGet, ts.URL+"/api/quota", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Header.Set("Authorization", "Bearer "+testToken)
	r, err := ts.Client().Do(resp)
	if err != nil {
		t.Fatal(err)
	}
	if got := bodyOf(t, r); got != `{"promptsUsed":3,"promptQuota":1000}` {
		t.Fatalf("quota %s", got)
	}
	r.Body.Close()
}

func TestOpenModeAcceptsAnyKey(t *testing.T) {
	_, ts := newTest(t, Config{})
	if resp := post(t, ts, "zeno-key:feedf00d:whatever", chatReqBody("hi", "a")); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp := post(t, ts, "zeno-key:feedf00d:", chatReqBody("hi", "b")); resp.StatusCode != 401 {
		t.Fatalf("empty secret: status %d", resp.StatusCode)
	}
}

func TestValidation(t *testing.T) {
	s, ts := newTest(t, Config{})
	cases := []struct {
		name, token, body string
		code              int
		want              string // regexp on the body
	}{
		{"invalid json before auth", "", `{"query":`, 422, `^\{"detail":\[\{"type":"json_invalid","loc":\["body",\d+\],"msg":"JSON decode error","input":\{\},"ctx":\{"error":"Expecting value"\}\}\]\}$`},
		{"missing query needs auth first", "", `{"thread_id":"x"}`, 401, `Missing Bearer`},
		{"missing query", testToken, `{"thread_id":"x"}`, 422, `^\{"detail":\[\{"type":"missing","loc":\["body","query"\],"msg":"Field required","input":\{"thread_id":"x"\}\}\]\}$`},
		{"query not string", testToken, `{"query":5,"thread_id":"x"}`, 422, `"type":"string_type","loc":\["body","query"\],"msg":"Input should be a valid string","input":5`},
		{"query null", testToken, `{"query":null,"thread_id":"x"}`, 422, `"string_type"`},
		{"empty body", testToken, ``, 422, `"loc":\["body"\],"msg":"Field required"`},
		{"array body", testToken, `[1]`, 422, `model_attributes_type`},
		{"bad ff", testToken, `{"query":"q","thread_id":"x","ff":"Bad!"}`, 422, `string_pattern_mismatch`},
		{"missing thread", testToken, `{"query":"q"}`, 500, `^\{"detail":"Internal Server Error","request_id":"[0-9a-f]{32}"\}$`},
		{"null thread", testToken, `{"query":"q","thread_id":null}`, 500, `^\{"detail":"Internal Server Error","request_id":"[0-9a-f]{32}"\}$`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, ts, tc.token, tc.body)
			got := bodyOf(t, resp)
			if resp.StatusCode != tc.code || !regexp.MustCompile(tc.want).MatchString(got) {
				t.Fatalf("got %d %s; want %d /%s/", resp.StatusCode, got, tc.code, tc.want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content-type %q", ct)
			}
		})
	}
	g := s.Stats()
	if g.ChatRequestsTotal != int64(len(cases)) || g.ByStatus["422"] != 7 || g.ByStatus["401"] != 1 || g.ByStatus["500"] != 2 {
		t.Fatalf("stats %+v", g.ByStatus)
	}
	if g.Quota[testPrefix].Used != 0 {
		t.Fatalf("rejected requests used quota: %+v", g.Quota)
	}
}

func TestQuota(t *testing.T) {
	s, ts := newTest(t, Config{Keys: []Key{{Prefix: testPrefix, Secret: testSecret, Quota: 3}}})
	for i := 1; i <= 5; i++ {
		resp := post(t, ts, testToken, chatReqBody("hi", fmt.Sprint("q", i)))
		body := bodyOf(t, resp)
		if i <= 3 {
			if resp.StatusCode != 200 || resp.Header.Get("X-Prompts-Used") != fmt.Sprint(i) || resp.Header.Get("X-Prompts-Quota") != "3" {
				t.Fatalf("req %d: %d used=%q quota=%q", i, resp.StatusCode, resp.Header.Get("X-Prompts-Used"), resp.Header.Get("X-Prompts-Quota"))
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
				t.Fatalf("content-type %q", ct)
			}
			continue
		}
		const want = `{"detail":"Daily free limit of 3 exceeded; please try again tomorrow."}`
		if resp.StatusCode != 429 || body != want {
			t.Fatalf("req %d: %d %s", i, resp.StatusCode, body)
		}
		for _, h := range []string{"X-Prompts-Used", "X-Prompts-Quota", "Retry-After"} {
			if v := resp.Header.Get(h); v != "" {
				t.Fatalf("429 carries %s=%q", h, v)
			}
		}
	}
	for range 2 { // GET /api/quota never increments
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/quota", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := bodyOf(t, resp); got != `{"promptsUsed":5,"promptQuota":3}` {
			t.Fatalf("quota body %s", got)
		}
		resp.Body.Close()
	}
	resp, err := ts.Client().Get(ts.URL + "/api/quota")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 401 {
		t.Fatalf("unauthenticated quota: %d", resp.StatusCode)
	}
	resp.Body.Close()
	g := getStats(t, ts)
	if q := g.Quota[testPrefix]; q.Used != 5 || q.Quota != 3 {
		t.Fatalf("quota stats %+v", q)
	}
	if g.ByStatus["429"] != 2 || g.ByStatus["200"] != 3 || g.ThreadsCreated != 5 {
		t.Fatalf("stats %+v created %d", g.ByStatus, g.ThreadsCreated)
	}
	s.ResetQuota()
	if u := s.Stats().Quota[testPrefix].Used; u != 0 {
		t.Fatalf("after reset used=%d", u)
	}
	if resp := post(t, ts, testToken, chatReqBody("hi", "after-reset")); resp.StatusCode != 200 || resp.Header.Get("X-Prompts-Used") != "1" {
		t.Fatalf("after reset: %d %q", resp.StatusCode, resp.Header.Get("X-Prompts-Used"))
	}
}

func TestThreads(t *testing.T) {
	s, ts := newTest(t, Config{Keys: []Key{{Prefix: testPrefix, Secret: testSecret}, {Prefix: "other001", Secret: "s"}}})
	for i := range 3 {
		resp := post(t, ts, testToken, chatReqBody("Compare tree cover loss in Brazil and Peru", "conv-1"))
		if resp.StatusCode != 200 {
			t.Fatalf("turn %d: %d", i, resp.StatusCode)
		}
		if _, _, err := readLines(t, resp.Body); err != nil {
			t.Fatal(err)
		}
	}
	if resp := post(t, ts, "zeno-key:other001:s", chatReqBody("hi", "conv-1")); resp.StatusCode != 500 {
		t.Fatalf("other owner: %d", resp.StatusCode)
	}
	g := s.Stats()
	if g.ThreadsCreated != 1 || g.ThreadsContinued != 2 || g.ThreadTurns["3"] != 1 || g.ThreadConflicts != 1 {
		t.Fatalf("threads created=%d continued=%d turns=%v conflicts=%d", g.ThreadsCreated, g.ThreadsContinued, g.ThreadTurns, g.ThreadConflicts)
	}
	if g.ByKind["analysis"] != 1 || g.ByKind["followup"] != 2 || g.ByKind["quick"] != 0 {
		t.Fatalf("by kind %v", g.ByKind)
	}
	req, _ := http.NewRequest(http.MethodDelete, ts.URL+"/api/threads/conv-1", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := ts.Client().Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("delete: %v %v", err, resp)
	}
	resp.Body.Close()
	if g := s.Stats(); g.ThreadsActive != 0 || g.ThreadsDeleted != 1 {
		t.Fatalf("after delete: active=%d deleted=%d", g.ThreadsActive, g.ThreadsDeleted)
	}
}

func TestConcurrentFirstRequestsRace(t *testing.T) {
	s, ts := newTest(t, Config{TimeScale: 1, Fixed: &Profile{HeaderDelay: 200 * time.Millisecond, Lines: 1}})
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Go(func() {
			if i == 1 {
				time.Sleep(50 * time.Millisecond)
			}
			codes[i] = post(t, ts, testToken, chatReqBody("hi", "same-new-id")).StatusCode
		})
	}
	wg.Wait()
	if codes[0] != 200 || codes[1] != 500 || s.Stats().ThreadConflicts != 1 {
		t.Fatalf("codes %v", codes)
	}
}

func TestStreamShape(t *testing.T) {
	s, ts := newTest(t, Config{Fixed: &Profile{Lines: 10}, LineBytes: 20000})
	resp := post(t, ts, testToken, chatReqBody("Tree cover loss in Pará from 2001 to 2024", "s1"))
	if te := resp.TransferEncoding; len(te) != 1 || te[0] != "chunked" || resp.ContentLength != -1 {
		t.Fatalf("transfer encoding %v length %d", te, resp.ContentLength)
	}
	lines, n, err := readLines(t, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 10 {
		t.Fatalf("%d lines", len(lines))
	}
	var nodes []string
	for _, l := range lines {
		nodes = append(nodes, l.Node)
	}
	want := "model tools model tools model tools model tools model"
	if got := strings.Join(nodes[:9], " "); got != want || nodes[9] != "trace_info" {
		t.Fatalf("nodes %v", nodes)
	}
	msg := lines[0].inner.(map[string]any)["messages"].([]any)[0].(map[string]any)
	if msg["lc"] != 1.0 || msg["type"] != "constructor" || fmt.Sprint(msg["id"]) != "[langchain schema messages AIMessage]" {
		t.Fatalf("model message %v", msg)
	}
	if calls := msg["kwargs"].(map[string]any)["tool_calls"].([]any); len(calls) != 1 {
		t.Fatalf("tool calls %v", calls)
	}
	if l := len(lines[7].Update); l < 12000 {
		t.Fatalf("generate_insights line only %d bytes", l)
	}
	if _, ok := lines[7].inner.(map[string]any)["charts_data"]; !ok {
		t.Fatalf("no charts_data in %.200s", lines[7].Update)
	}
	ti := lines[9].inner.(map[string]any)
	if id, _ := ti["trace_id"].(string); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("trace_info %v", ti)
	}
	g := s.Stats()
	if g.BytesSent != int64(n) || g.LinesSent != 10 || g.LinesByNode["tools"] != 4 || g.StreamsCompleted != 1 || g.StreamsByKind["analysis"] != 1 {
		t.Fatalf("stats bytes=%d/%d lines=%d byNode=%v", g.BytesSent, n, g.LinesSent, g.LinesByNode)
	}
}

func TestNoTraceInfo(t *testing.T) {
	_, ts := newTest(t, Config{Fixed: &Profile{Lines: 3}, NoTraceInfo: true})
	lines, _, err := readLines(t, post(t, ts, testToken, chatReqBody("hi", "nt")).Body)
	if err != nil || len(lines) != 2 || lines[1].Node != "model" {
		t.Fatalf("lines %v err %v", lines, err)
	}
}

func TestFaults(t *testing.T) {
	fixed := &Profile{Lines: 6}
	t.Run("nonfatal", func(t *testing.T) {
		s, ts := newTest(t, Config{Fixed: fixed, NonFatalErrorRate: 1})
		lines, _, err := readLines(t, post(t, ts, testToken, chatReqBody("hi", "t")).Body)
		if err != nil || len(lines) != 6 || lines[5].Node != "trace_info" {
			t.Fatalf("lines %d err %v", len(lines), err)
		}
		var errs int
		for _, l := range lines {
			if l.Node == "error" {
				errs++
				u := l.inner.(map[string]any)
				if u["type"] != "stream_processing_error" || u["error"] != true || u["fatal"] != nil {
					t.Fatalf("error line %v", u)
				}
			}
		}
		if g := s.Stats(); errs != 1 || g.NonFatalErrorLines != 1 || g.StreamsCompleted != 1 {
			t.Fatalf("errs=%d stats=%+v", errs, g)
		}
	})
	t.Run("fatal", func(t *testing.T) {
		s, ts := newTest(t, Config{Fixed: fixed, FatalErrorRate: 1})
		lines, _, err := readLines(t, post(t, ts, testToken, chatReqBody("hi", "t")).Body)
		if err != nil || len(lines) == 0 {
			t.Fatalf("lines %d err %v", len(lines), err)
		}
		last := lines[len(lines)-1]
		u := last.inner.(map[string]any)
		if last.Node != "error" || u["type"] != "stream_initialization_error" || u["fatal"] != true {
			t.Fatalf("last line %v %v", last.Node, u)
		}
		if g := s.Stats(); g.StreamsFatal != 1 || g.StreamsCompleted != 0 || g.LinesByNode["trace_info"] != 0 {
			t.Fatalf("stats %+v", g)
		}
	})
	t.Run("truncate", func(t *testing.T) {
		s, ts := newTest(t, Config{Fixed: fixed, TruncateRate: 1})
		for i := range 5 {
			resp := post(t, ts, testToken, chatReqBody("hi", fmt.Sprint("tr", i)))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			_, err := io.ReadAll(resp.Body)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("read err %v, want io.ErrUnexpectedEOF", err)
			}
		}
		if g := s.Stats(); g.StreamsTruncated != 5 || g.StreamsCompleted != 0 {
			t.Fatalf("stats %+v", g)
		}
	})
	t.Run("http500", func(t *testing.T) {
		s, ts := newTest(t, Config{Fixed: fixed, HTTP500Rate: 1})
		resp := post(t, ts, testToken, chatReqBody("hi", "t"))
		if body := bodyOf(t, resp); resp.StatusCode != 500 || !strings.HasPrefix(body, `{"detail":"Internal Server Error","request_id":"`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if g := s.Stats(); g.Injected500 != 1 || g.Quota[testPrefix].Used != 1 {
			t.Fatalf("stats %+v", g)
		}
	})
	t.Run("tool error", func(t *testing.T) {
		s, ts := newTest(t, Config{Fixed: fixed, ToolErrorRate: 1})
		lines, _, err := readLines(t, post(t, ts, testToken, chatReqBody("hi", "t")).Body)
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, l := range lines {
			if l.Node == "tools" && strings.Contains(l.Update, `"status":"error"`) {
				found = true
			}
		}
		if !found || s.Stats().ToolErrorLines != 1 {
			t.Fatalf("no tool error line")
		}
	})
	t.Run("slow headers", func(t *testing.T) {
		s, ts := newTest(t, Config{TimeScale: 1, Fixed: &Profile{Lines: 1}, SlowHeadersRate: 1, SlowHeadersDelay: 80 * time.Millisecond})
		start := time.Now()
		resp := post(t, ts, testToken, chatReqBody("hi", "t"))
		if d := time.Since(start); resp.StatusCode != 200 || d < 80*time.Millisecond {
			t.Fatalf("status %d after %v", resp.StatusCode, d)
		}
		if g := s.Stats(); g.SlowHeaders != 1 || g.InjectedHeaderDelayMS.SumMS != 80 {
			t.Fatalf("stats %+v", g.InjectedHeaderDelayMS)
		}
	})
}

// TestFixedTiming checks each line arrives on schedule, which also shows the
// output is flushed before every wait. Five streams, judged like the tasks
// timing tests: never early, median overshoot within 20 ms (a descheduled
// vCPU on a shared VM delays single samples by tens of milliseconds).
func TestFixedTiming(t *testing.T) {
	const ttfb, gap, lines, runs, tol = 100 * time.Millisecond, 40 * time.Millisecond, 3, 5, 20 * time.Millisecond
	s, ts := newTest(t, Config{TimeScale: 1, Fixed: &Profile{HeaderDelay: ttfb, Lines: lines, Gap: gap}})
	// Warm the keep-alive connection so connect time is not measured.
	if r, err := ts.Client().Get(ts.URL + "/api/metadata"); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	// over[0] is the headers, over[1+i] line i.
	over := make([][]time.Duration, 1+lines)
	for i := range runs {
		start := time.Now()
		resp := post(t, ts, testToken, chatReqBody("hi", fmt.Sprint("fixed", i)))
		at := []time.Duration{time.Since(start)}
		br := bufio.NewReader(resp.Body)
		for range lines {
			if _, err := br.ReadBytes('\n'); err != nil {
				t.Fatalf("after %d lines: %v", len(at)-1, err)
			}
			at = append(at, time.Since(start))
		}
		if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
			t.Fatalf("after the last line: %q %v", rest, err)
		}
		for j, got := range at {
			want := ttfb + time.Duration(j)*gap
			if got < want {
				t.Errorf("run %d: event %d at %v, before its time %v", i, j, got, want)
			}
			over[j] = append(over[j], got-want)
		}
		t.Logf("headers and lines at %v", at)
	}
	for j, o := range over {
		slices.Sort(o)
		if med := o[runs/2]; med > tol {
			t.Errorf("event %d: median overshoot %v > %v (all: %v)", j, med, tol, o)
		}
	}
	g := s.Stats()
	if g.InjectedHeaderDelayMS.Count != runs || g.InjectedHeaderDelayMS.SumMS != runs*100 || g.InjectedGapMS.SumMS != runs*lines*40 || g.NamingDelays != 0 {
		t.Fatalf("delays %+v %+v", g.InjectedHeaderDelayMS, g.InjectedGapMS)
	}
}

// writeCounter counts the server's socket writes.
type writeCounter struct {
	net.Listener
	writes *atomic.Int64
}

func (l writeCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	return countedConn{c, l.writes}, err
}

type countedConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countedConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// TestWritesPerStream: lines due together share one write (at --time-scale 0
// a whole stream is one write, not one per line plus headers and end), and
// a stream with gaps is written once per wait, plus the end.
func TestWritesPerStream(t *testing.T) {
	for _, tc := range []struct {
		name       string
		scale      float64
		wantWrites int64
	}{
		{"no waits", 0, 1},
		{"gaps", 0.001, 4}, // headers, line 1, line 2, line 3 with the end
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{TimeScale: tc.scale, Logger: slog.New(slog.DiscardHandler),
				Fixed: &Profile{HeaderDelay: 0, Lines: 3, Gap: 5 * time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			var writes atomic.Int64
			ts := httptest.NewUnstartedServer(s.Handler())
			ts.Listener = writeCounter{ts.Listener, &writes}
			ts.Start()
			t.Cleanup(func() { s.Close(); ts.Close() })
			for i := range 3 {
				before := writes.Load()
				resp := post(t, ts, testToken, chatReqBody("hi", fmt.Sprint("w", i)))
				// Chunked like Zeno's, even when the whole stream is due at
				// once (net/http would give it a Content-Length otherwise).
				if te := resp.TransferEncoding; len(te) != 1 || te[0] != "chunked" || resp.ContentLength != -1 {
					t.Errorf("stream %d: Transfer-Encoding %v, Content-Length %d", i, te, resp.ContentLength)
				}
				got, _, err := readLines(t, resp.Body)
				if err != nil || len(got) != 3 {
					t.Fatalf("lines %d, err %v", len(got), err)
				}
				if n := writes.Load() - before; n != tc.wantWrites {
					t.Errorf("stream %d: %d writes, want %d", i, n, tc.wantWrites)
				}
			}
		})
	}
}

func TestGroundTruthUnderConcurrency(t *testing.T) {
	s, ts := newTest(t, Config{TimeScale: 0.005, Quota: 250, NonFatalErrorRate: 0.2, FatalErrorRate: 0.1, TruncateRate: 0.1, HTTP500Rate: 0.1, Seed: 7})
	ts.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 300
	queries := []string{"hi", "Compare tree cover loss in Brazil and Peru", "Deforestation alerts in Kalimantan 2015-2023"}
	const n = 300
	var mu sync.Mutex
	codes := map[int]int64{}
	var bytesRead, truncated, fatal, nonfatal int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp := post(t, ts, testToken, chatReqBody(queries[i%3], fmt.Sprint("c", i%200)))
			var lines []line
			var nb int
			var err error
			if resp.StatusCode == 200 {
				lines, nb, err = readLines(t, resp.Body)
			}
			mu.Lock()
			defer mu.Unlock()
			codes[resp.StatusCode]++
			bytesRead += int64(nb)
			if errors.Is(err, io.ErrUnexpectedEOF) {
				truncated++
			}
			for _, l := range lines {
				if l.Node == "error" {
					if l.inner.(map[string]any)["fatal"] == true {
						fatal++
					} else {
						nonfatal++
					}
				}
			}
		})
	}
	wg.Wait()
	g := getStats(t, ts)
	if g.ChatRequestsTotal != n {
		t.Fatalf("chat_requests_total %d", g.ChatRequestsTotal)
	}
	var sum int64
	for code, c := range codes {
		if g.ByStatus[fmt.Sprint(code)] != c {
			t.Fatalf("by_status %v, client saw %v", g.ByStatus, codes)
		}
		sum += c
	}
	if sum != n || g.AbortedBeforeHeaders != 0 {
		t.Fatalf("sum %d aborted %d", sum, g.AbortedBeforeHeaders)
	}
	if g.BytesSent != bytesRead || g.StreamsTruncated != truncated || g.StreamsFatal != fatal || g.NonFatalErrorLines != nonfatal {
		t.Fatalf("server bytes=%d trunc=%d fatal=%d nonfatal=%d; client %d %d %d %d",
			g.BytesSent, g.StreamsTruncated, g.StreamsFatal, g.NonFatalErrorLines, bytesRead, truncated, fatal, nonfatal)
	}
	if g.StreamsStarted != g.StreamsCompleted+g.StreamsTruncated+g.StreamsFatal+g.StreamsClientGone+g.StreamsShutdown {
		t.Fatalf("stream invariant: %+v", g)
	}
	// A request continued a thread unless it raced the creating request.
	if g.ThreadsCreated+g.ThreadsContinued+g.ThreadConflicts != n || g.ThreadsCreated != 200 {
		t.Fatalf("threads created=%d continued=%d conflicts=%d", g.ThreadsCreated, g.ThreadsContinued, g.ThreadConflicts)
	}
	passed := g.ThreadsCreated + g.ThreadsContinued
	if g.ByStatus["429"] != max(passed-250, 0) || g.Quota[testPrefix].Used != passed || g.ByStatus["500"] != g.ThreadConflicts+g.Injected500 {
		t.Fatalf("429s %d passed %d quota %+v 500s %d", g.ByStatus["429"], passed, g.Quota, g.ByStatus["500"])
	}
	t.Logf("statuses %v conflicts %d truncated %d fatal %d nonfatal %d", g.ByStatus, g.ThreadConflicts, truncated, fatal, nonfatal)
	raw, _ := json.Marshal(s.Stats())
	if bytes.Contains(raw, []byte(testSecret)) {
		t.Fatal("secret in stats")
	}
}

func TestClientDisconnect(t *testing.T) {
	s, ts := newTest(t, Config{TimeScale: 1, Fixed: &Profile{Lines: 5, Gap: 10 * time.Second}})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/api/chat", strings.NewReader(chatReqBody("hi", "d")))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(3 * time.Second)
	for s.Stats().StreamsClientGone != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("stream not stopped: %+v", s.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGracefulShutdown(t *testing.T) {
	s, err := New(Config{TimeScale: 1, Fixed: &Profile{Lines: 5, Gap: 10 * time.Second}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/api/chat", strings.NewReader(chatReqBody("hi", "g")))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read after shutdown: %v", err)
	}
	if g := s.Stats(); g.StreamsShutdown != 1 || time.Since(start) > 2*time.Second {
		t.Fatalf("shutdown stats %+v after %v", g, time.Since(start))
	}
}

func TestMetadataAndNotFound(t *testing.T) {
	_, ts := newTest(t, Config{})
	resp, err := ts.Client().Get(ts.URL + "/api/metadata")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(bodyOf(t, resp)), &m); err != nil || resp.StatusCode != 200 || m["model"] == nil {
		t.Fatalf("metadata %d %v %v", resp.StatusCode, m, err)
	}
	resp.Body.Close()
	resp, err = ts.Client().Get(ts.URL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	if got := bodyOf(t, resp); resp.StatusCode != 404 || got != `{"detail":"Not Found"}` {
		t.Fatalf("404: %d %s", resp.StatusCode, got)
	}
	resp.Body.Close()
}

func TestClassify(t *testing.T) {
	cases := map[string]kind{
		"hi":                                           kindQuick,
		"What is tree cover loss?":                     kindQuick,
		"Tree cover in 2020":                           kindQuick,
		"Compare Brazil and Peru":                      kindAnalysis,
		"Analyze deforestation in Gabon":               kindAnalysis,
		"Show the trend of fires":                      kindAnalysis,
		"Deforestation alerts in Kalimantan 2015-2023": kindAnalysis,
		"Loss in Pará from 2019 to 2023":               kindAnalysis,
		"Loss between 2010 and 2020":                   kindAnalysis,
		"Loss in 12019 to 2023x":                       kindQuick,
		strings.Repeat("forest ", 14):                  kindAnalysis,
	}
	for q, want := range cases {
		if got := classify(q); got != want {
			t.Errorf("classify(%q) = %v, want %v", q, got, want)
		}
	}
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "# keys\n\nzeno-key:aaaa1111:s1\nzeno-key_bbbb2222_s2 , 5 # legacy\n")
	keys, err := LoadKeys(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != (Key{Prefix: "aaaa1111", Secret: "s1"}) || keys[1] != (Key{Prefix: "bbbb2222", Secret: "s2", Quota: 5}) {
		t.Fatalf("keys %+v", keys)
	}
	for name, tc := range map[string]struct{ content, want string }{
		"format":    {"zeno-key:a:b\n\nzeno-key:bad\n", "line 3"},
		"quota":     {"zeno-key:a:b,x\n", "line 1: quota"},
		"negative":  {"# c\nzeno-key:a:b,-1\n", "line 2"},
		"duplicate": {"zeno-key:a:b\nzeno-key_a_c\n", "line 2: duplicate prefix \"a\" (first on line 1)"},
		"other":     {"Bearer x\n", "line 1"},
		"empty":     {"# nothing\n", "no keys"},
	} {
		_, err := LoadKeys(write(name, tc.content))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "zeno-key:a:b") {
			t.Errorf("%s: error echoes the token: %v", name, err)
		}
	}
	if _, err := LoadKeys(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestFlags(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keys, []byte("zeno-key:aaaa1111:s1,7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if c.TimeScale != 1 || c.Quota != DefaultQuota || c.Fixed != nil {
		t.Fatalf("defaults %+v", c)
	}
	err := fs.Parse([]string{"--quota", "5", "--keys", keys, "--time-scale", "0.5", "--seed", "3",
		"--nonfatal-error-rate", "0.1", "--fatal-error-rate", "0.2", "--truncate-rate", "0.3", "--http500-rate", "0.4",
		"--slow-headers-rate", "0.5", "--slow-headers-delay", "2s", "--no-trace-info", "--fixed-ttfb", "100ms", "--fixed-gap", "5ms",
		"--max-threads", "-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Finish(); err != nil {
		t.Fatal(err)
	}
	want := Profile{HeaderDelay: 100 * time.Millisecond, Gap: 5 * time.Millisecond}
	if c.Quota != 5 || c.TimeScale != 0.5 || c.Seed != 3 || c.NonFatalErrorRate != 0.1 || c.FatalErrorRate != 0.2 ||
		c.TruncateRate != 0.3 || c.HTTP500Rate != 0.4 || c.SlowHeadersRate != 0.5 || c.SlowHeadersDelay != 2*time.Second ||
		!c.NoTraceInfo || c.Fixed == nil || *c.Fixed != want || len(c.Keys) != 1 || c.Keys[0].Quota != 7 || c.MaxThreads != -1 {
		t.Fatalf("parsed %+v fixed %+v", c, c.Fixed)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c = Config{}
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--truncate-rate", "2"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Finish(); err == nil || !strings.Contains(err.Error(), "truncate-rate") {
		t.Fatalf("want rate error, got %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, c := range map[string]Config{
		"negative time scale": {TimeScale: -1},
		"rate":                {HTTP500Rate: 1.5},
		"fixed jitter":        {Fixed: &Profile{Lines: 2, GapJitter: time.Millisecond}},
		"profile lines":       {Quick: Profile{Lines: -1}},
		"dup keys":            {Keys: []Key{{Prefix: "a", Secret: "b"}, {Prefix: "a", Secret: "c"}}},
		"bad key":             {Keys: []Key{{Prefix: "a:b", Secret: "c"}}},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func BenchmarkChatStream(b *testing.B) {
	s, err := New(Config{Quota: 1 << 30, Fixed: &Profile{Lines: 10}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	body := chatReqBody("Compare tree cover loss in Brazil and Peru", "")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/chat", strings.NewReader(strings.Replace(body, `"thread_id":""`, fmt.Sprintf(`"thread_id":"b%d"`, i), 1)))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := ts.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		b.SetBytes(n)
	}
}

package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenoload/zenoload/locust"
	"github.com/zenoload/zenoload/querydata"
)

type row struct {
	method, name string
	ms           float64
	bytes        int64
	fail         string
}

type recorder struct {
	mu   sync.Mutex
	rows []row
}

func (r *recorder) Record(method, name string, ms float64, n int64, fail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, row{method, name, ms, n, fail})
}

func (r *recorder) all() []row {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]row(nil), r.rows...)
}

// syncBuf is a goroutine-safe log sink.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	cfg      Config
	rec      *recorder
	logs     *syncBuf
	stopping chan struct{}
	cls      locust.UserClass
}

func newHarness(t *testing.T, base string, mutate func(*Config)) *harness {
	t.Helper()
	h := &harness{rec: &recorder{}, logs: &syncBuf{}, stopping: make(chan struct{})}
	pool, err := ParseTokenList(testToken)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Tokens = pool
	cfg.BaseURL = base
	cfg.Metrics = NewMetrics()
	cfg.ThinkMin, cfg.ThinkMax = time.Millisecond, 2*time.Millisecond
	cfg.TurnsMin, cfg.TurnsMax = 4, 4
	cfg.Timeout = 5 * time.Second
	cfg.Logger = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if mutate != nil {
		mutate(&cfg)
	}
	h.cfg = cfg
	h.cls, err = NewUserClass(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) user(t *testing.T, id int, opts locust.Options) *chatUser {
	t.Helper()
	env := &locust.Env{
		UserID: id, Class: ClassName, Options: opts, Recorder: h.rec,
		Logger: slog.New(slog.NewJSONHandler(h.logs, nil)), Rand: rand.New(rand.NewPCG(uint64(id), 9)),
		Stopping: h.stopping,
	}
	u, err := h.cls.New(env)
	if err != nil {
		t.Fatal(err)
	}
	return u.(*chatUser)
}

// threadServer streams a short answer and counts turns per thread_id.
type threadServer struct {
	mu     sync.Mutex
	turns  map[string]int
	order  []string
	status func(turn int) int // optional non-200 per turn (1-based)
	onTurn func(turn int)
}

func (s *threadServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req ChatRequest
	json.NewDecoder(r.Body).Decode(&req)
	s.mu.Lock()
	if s.turns == nil {
		s.turns = map[string]int{}
	}
	s.turns[req.ThreadID]++
	turn := s.turns[req.ThreadID]
	s.order = append(s.order, req.ThreadID)
	s.mu.Unlock()
	if s.onTurn != nil {
		s.onTurn(turn)
	}
	if s.status != nil {
		if code := s.status(turn); code != 200 {
			jsonStatus(code, `{"detail":"Internal Server Error","request_id":"ab"}`)(w, r)
			return
		}
	}
	w.Header().Set("X-Prompts-Used", "3")
	w.Header().Set("X-Prompts-Quota", "1000")
	stream(w, modelLine(), traceLine())
}

func conversationData(t *testing.T, m *Metrics) map[string]any {
	t.Helper()
	_, data, ok := m.Report(false)
	if !ok {
		t.Fatal("no metrics")
	}
	return data.(map[string]any)["conversations"].(map[string]any)
}

func TestConversationSharesThread(t *testing.T) {
	srv := &threadServer{}
	h := newHarness(t, serve(t, srv), nil)
	u := h.user(t, 1, nil)
	if err := u.conversation(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows := h.rec.all()
	if len(rows) != 4 {
		t.Fatalf("rows: %+v", rows)
	}
	for i, r := range rows {
		want := NameConversationFollowUp
		if i == 0 {
			want = NameConversationStart
		}
		if r.name != want || r.fail != "" || r.method != "POST" || r.bytes == 0 {
			t.Fatalf("row %d: %+v", i, r)
		}
	}
	if len(srv.turns) != 1 {
		t.Fatalf("server saw %d threads: %v", len(srv.turns), srv.turns)
	}
	for id, n := range srv.turns {
		if n != 4 || !uuidV4.MatchString(id) {
			t.Fatalf("thread %s has %d turns", id, n)
		}
	}
	conv := conversationData(t, h.cfg.Metrics)
	if conv["started"] != int64(1) || conv["completed"] != int64(1) || conv["continuity_failures"] != int64(0) || conv["turns"].(map[int64]int64)[4] != 1 {
		t.Fatalf("conversations: %v", conv)
	}

	// Quick and analysis each use their own new thread.
	u.quick(context.Background())
	u.analysis(context.Background())
	if len(srv.turns) != 3 {
		t.Fatalf("threads: %v", srv.turns)
	}
}

func TestConversationAbortsOnFailedTurn(t *testing.T) {
	srv := &threadServer{status: func(turn int) int {
		if turn == 2 {
			return 500
		}
		return 200
	}}
	h := newHarness(t, serve(t, srv), nil)
	h.user(t, 1, nil).conversation(context.Background())
	rows := h.rec.all()
	if len(rows) != 2 || rows[1].fail != "HTTP 500: Internal Server Error" {
		t.Fatalf("rows: %+v", rows)
	}
	conv := conversationData(t, h.cfg.Metrics)
	if conv["started"] != int64(1) || conv["completed"] != int64(0) || conv["continuity_failures"] != int64(1) || conv["turns"].(map[int64]int64)[2] != 1 {
		t.Fatalf("conversations: %v", conv)
	}
}

func TestConversationStopsGracefully(t *testing.T) {
	h0 := &harness{}
	srv := &threadServer{onTurn: func(turn int) {
		if turn == 1 {
			close(h0.stopping) // stop requested while turn 1 is in flight
			time.Sleep(50 * time.Millisecond)
		}
	}}
	h := newHarness(t, serve(t, srv), func(c *Config) { c.ThinkMin, c.ThinkMax = 10*time.Second, 10*time.Second })
	h0.stopping = h.stopping
	start := time.Now()
	h.user(t, 1, nil).conversation(context.Background())
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("stop not honoured during think time: %v", el)
	}
	rows := h.rec.all()
	if len(rows) != 1 || rows[0].fail != "" {
		t.Fatalf("in-flight turn must finish and be recorded, no new turn: %+v", rows)
	}
	conv := conversationData(t, h.cfg.Metrics)
	if conv["started"] != int64(1) || conv["completed"] != int64(0) || conv["continuity_failures"] != int64(0) {
		t.Fatalf("conversations: %v", conv)
	}
}

func TestCancelledRequestNotRecorded(t *testing.T) {
	h := newHarness(t, serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stream(w, modelLine())
		hang(r)
	})), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	u := h.user(t, 1, nil)
	u.conversation(ctx)
	u.quick(ctx)
	if rows := h.rec.all(); len(rows) != 0 {
		t.Fatalf("cancelled requests recorded: %+v", rows)
	}
	if _, _, ok := h.cfg.Metrics.Report(false); ok {
		t.Fatal("cancelled requests reached metrics")
	}
}

func TestQuotaBackoff(t *testing.T) {
	h := newHarness(t, serve(t, jsonStatus(429, `{"detail":"Daily free limit of 5 exceeded; please try again tomorrow."}`)),
		func(c *Config) { c.Backoff429, c.Backoff429Max = 10*time.Second, 25*time.Second })
	u := h.user(t, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	u.analysis(ctx)
	if el := time.Since(start); el < 100*time.Millisecond || el > time.Second {
		t.Fatalf("backoff did not wait for ctx: %v", el)
	}
	if rows := h.rec.all(); len(rows) != 1 || rows[0].fail != "HTTP 429: daily quota exceeded" {
		t.Fatalf("rows: %+v", rows)
	}
	if u.backoff != 20*time.Second {
		t.Fatalf("next backoff %v", u.backoff)
	}
	u.backoff = 20 * time.Second
	close(h.stopping) // a stopping user is not blocked by the backoff either
	u.after(context.Background(), &Result{Outcome: HTTPStatus, Status: 429})
	if u.backoff != 25*time.Second {
		t.Fatalf("cap: %v", u.backoff)
	}
	u.after(context.Background(), &Result{Outcome: OK, Status: 200})
	if u.backoff != 0 {
		t.Fatal("backoff not reset")
	}
	_, data, _ := h.cfg.Metrics.Report(false)
	if data.(map[string]any)["status_429"] != int64(1) {
		t.Fatalf("429 count: %v", data)
	}
}

func TestUnauthorizedLoggedOnce(t *testing.T) {
	h := newHarness(t, serve(t, jsonStatus(401, `{"detail":"Invalid machine user key"}`)), nil)
	for id := range 3 {
		u := h.user(t, id, nil)
		for range 3 {
			u.quick(context.Background())
		}
	}
	logs := h.logs.String()
	want := "token rejected by server (HTTP 401: Invalid machine user key); check ZENO_MACHINE_USER_TOKEN"
	if n := strings.Count(logs, want); n != 1 {
		t.Fatalf("%d rejection lines:\n%s", n, logs)
	}
	if !strings.Contains(logs, "zeno-key:"+testPrefix+":***") {
		t.Fatalf("prefix missing from log: %s", logs)
	}
	if rows := h.rec.all(); len(rows) != 9 || rows[8].fail != "HTTP 401: Invalid machine user key" {
		t.Fatalf("rows: %+v", rows)
	}
}

// TestSecretNeverLeaks drives every failure path with a server that echoes
// the Authorization header back everywhere it can.
func TestSecretNeverLeaks(t *testing.T) {
	var mode int
	var mu sync.Mutex
	srv := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		m := mode
		mode++
		mu.Unlock()
		auth := r.Header.Get("Authorization")
		underscore := strings.ReplaceAll(strings.TrimPrefix(auth, "Bearer "), ":", "_")
		detail, _ := json.Marshal(map[string]string{"detail": "bad token " + auth + " / " + underscore})
		switch m % 6 {
		case 0:
			jsonStatus(401, string(detail))(w, r)
		case 1:
			jsonStatus(500, string(detail))(w, r)
		case 2:
			jsonStatus(403, `{"detail":"secret `+testSecret+`"}`)(w, r)
		case 3:
			stream(w, line("error", map[string]any{"fatal": true, "error_type": testSecret, "message": auth}))
		case 4:
			stream(w, line("error", map[string]any{"error_type": auth, "type": "stream_processing_error"}), modelLine())
		case 5:
			stream(w, modelLine(), `{"node":"`+auth)
			panic(http.ErrAbortHandler)
		}
	})
	h := newHarness(t, serve(t, srv), func(c *Config) { c.Backoff429 = time.Millisecond })
	u := h.user(t, 1, nil)
	var texts []string
	for range 12 {
		r := u.cls.client.Chat(context.Background(), u.base, u.tok, ChatRequest{Query: testSecret, ThreadID: "t"})
		texts = append(texts, r.Failure(true), r.Message, r.NonFatalType, fmtErr(r.Err))
		u.quick(context.Background())
	}
	u.log.Error("explicit "+testToken, "tok", testToken, "u", "zeno-key_"+testPrefix+"_"+testSecret)
	all := strings.Join(texts, "\n") + "\n" + h.logs.String()
	for _, r := range h.rec.all() {
		all += "\n" + r.fail
	}
	if strings.Contains(all, testSecret) {
		t.Fatalf("secret leaked:\n%s", all)
	}
	if !strings.Contains(all, "zeno-key:"+testPrefix+":***") {
		t.Fatalf("expected the redacted form somewhere:\n%s", all)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestOptionsOverride(t *testing.T) {
	h := newHarness(t, "http://127.0.0.1:1", nil)
	u := h.user(t, 1, locust.Options{
		OptQuickWeight: int64(1), OptAnalysisWeight: 0.0, OptConversationWeight: "2",
		OptWaitMin: 0.5, OptWaitMax: int64(2), OptTurnsMin: 2, OptTurnsMax: 3,
		OptThinkMin: 0.0, OptThinkMax: 0.25, OptFailOnNonFatal: false,
	})
	want := settings{weights: Weights{1, 0, 2}, waitMin: 500 * time.Millisecond, waitMax: 2 * time.Second,
		turnsMin: 2, turnsMax: 3, thinkMin: 0, thinkMax: 250 * time.Millisecond, failOnNonFatal: false}
	if u.set != want {
		t.Fatalf("settings %+v, want %+v", u.set, want)
	}
	if tasks := u.Tasks(); len(tasks) != 2 || tasks[0].Weight != 1 || tasks[1].Weight != 2 {
		t.Fatalf("tasks: %+v", tasks)
	}

	bad := locust.Options{
		OptQuickWeight: -1.0, OptWaitMin: 9.0, OptWaitMax: 1.0, OptTurnsMin: 0,
		OptThinkMin: "x", OptFailOnNonFatal: "maybe", OptAnalysisWeight: nil,
	}
	for id := range 3 {
		u := h.user(t, id, bad)
		d := h.cfg
		if u.set.weights != d.Weights || u.set.waitMin != d.WaitMin || u.set.waitMax != d.WaitMax ||
			u.set.turnsMin != d.TurnsMin || u.set.thinkMin != d.ThinkMin || !u.set.failOnNonFatal {
			t.Fatalf("bad options not ignored: %+v", u.set)
		}
	}
	logs := h.logs.String()
	for _, key := range []string{OptQuickWeight, OptWaitMin + "/" + OptWaitMax, OptTurnsMin + "/" + OptTurnsMax, OptThinkMin, OptFailOnNonFatal} {
		if n := strings.Count(logs, `"option":"`+key+`"`); n != 1 {
			t.Errorf("option %s warned %d times:\n%s", key, n, logs)
		}
	}
}

func TestHostAndConfig(t *testing.T) {
	h := newHarness(t, "http://fallback:8000/", nil)
	u, err := h.cls.New(&locust.Env{UserID: 1, Host: "http://from-master:9000", Recorder: h.rec})
	if err != nil || u.(*chatUser).base != "http://from-master:9000" {
		t.Fatalf("master host: %v", err)
	}
	u, err = h.cls.New(&locust.Env{UserID: 1, Recorder: h.rec})
	if err != nil || u.(*chatUser).base != "http://fallback:8000" {
		t.Fatalf("fallback host: %v", err)
	}
	h2 := newHarness(t, "", nil)
	if _, err := h2.cls.New(&locust.Env{UserID: 1}); err == nil || !strings.Contains(err.Error(), "no target host") {
		t.Fatalf("no host: %v", err)
	}
	if _, err := h2.cls.New(&locust.Env{UserID: 1, Host: "ftp://x"}); err == nil {
		t.Fatal("bad scheme accepted")
	}
	if h.cls.Name != "ZenoChatUser" {
		t.Fatal(h.cls.Name)
	}
	if wt := h.user(t, 1, nil).WaitTime()(0, rand.New(rand.NewPCG(1, 1))); wt < 5*time.Second || wt > 15*time.Second {
		t.Fatalf("wait %v", wt)
	}
	// 0..0 is a valid choice (benchmarks), not "unset": it must not become 5-15 s.
	h0 := newHarness(t, "http://x", func(c *Config) { c.WaitMin, c.WaitMax, c.ThinkMin, c.ThinkMax = 0, 0, 0, 0 })
	if u := h0.user(t, 1, nil); u.WaitTime()(0, rand.New(rand.NewPCG(1, 1))) != 0 || u.set.thinkMax != 0 {
		t.Fatalf("zero wait/think not kept: %+v", u.set)
	}

	if _, err := NewUserClass(Config{}, nil); err == nil || !strings.Contains(err.Error(), ErrTokenMissing.Error()) {
		t.Fatalf("missing tokens: %v", err)
	}
	pool, _ := ParseTokenList(testToken)
	if _, err := NewUserClass(Config{Tokens: pool, Corpus: &querydata.Corpus{Quick: []string{"q"}}}, nil); err == nil || !strings.Contains(err.Error(), "analysis: need at least 1 query") {
		t.Fatalf("bad corpus: %v", err)
	}
	if _, err := NewUserClass(Config{Tokens: pool, TurnsMin: 5, TurnsMax: 2}, nil); err == nil {
		t.Fatal("bad turns accepted")
	}
	// Worker partitioning by the master's worker index and expect_workers.
	pool2, _ := ParseTokenList("zeno-key:w0:s0,zeno-key:w1:s1,zeno-key:w2:s2,zeno-key:w3:s3")
	cls, _ := NewUserClass(Config{Tokens: pool2, BaseURL: "http://x"}, nil)
	for id, want := range []string{"w1", "w3", "w1"} {
		u, _ := cls.New(&locust.Env{UserID: id, WorkerIndex: 1, Options: locust.Options{"expect_workers": int64(2)}})
		if got := u.(*chatUser).tok.Prefix(); got != want {
			t.Errorf("user %d got %s, want %s", id, got, want)
		}
	}
}

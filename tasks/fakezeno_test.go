package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/zenoload/zenoload/fakezeno"
	"github.com/zenoload/zenoload/locust"
)

// Tests against the fake Zeno server: classification of every fault it can
// inject, timing against its exact profile, and counts against its ground truth.

func startFake(t *testing.T, cfg fakezeno.Config) (*fakezeno.Server, string) {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	if len(cfg.Keys) == 0 {
		cfg.Keys = []fakezeno.Key{{Prefix: testPrefix, Secret: testSecret}}
	}
	s, err := fakezeno.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { s.Close(); srv.Close() })
	return s, srv.URL
}

func TestFakeZenoFailureKinds(t *testing.T) {
	tok := mustToken(t, testToken)
	chat := func(base string, tok Token) *Result {
		return NewClient(ClientConfig{Timeout: 5 * time.Second}).Chat(context.Background(), base, tok, ChatRequest{Query: "Tree cover loss in Ghana in 2022", ThreadID: NewThreadID()})
	}
	check := func(name string, res *Result, strict, lenient string) {
		t.Helper()
		if got := res.Failure(true); got != strict {
			t.Errorf("%s: Failure(true) = %q, want %q (err %v)", name, got, strict, res.Err)
		}
		if got := res.Failure(false); got != lenient {
			t.Errorf("%s: Failure(false) = %q, want %q", name, got, lenient)
		}
	}

	_, base := startFake(t, fakezeno.Config{Quota: 2})
	check("ok", chat(base, tok), "", "")
	check("wrong secret", chat(base, mustToken(t, "zeno-key:"+testPrefix+":00000000000000000000000000000000")),
		"HTTP 401: Invalid machine user key", "HTTP 401: Invalid machine user key")
	check("unknown prefix", chat(base, mustToken(t, "zeno-key:ffffffff:"+testSecret)),
		"HTTP 401: Invalid or inactive machine user key", "HTTP 401: Invalid or inactive machine user key")
	check("underscore form", chat(base, mustToken(t, "zeno-key_"+testPrefix+"_"+testSecret)), "", "")
	check("quota", chat(base, tok), "HTTP 429: daily quota exceeded", "HTTP 429: daily quota exceeded")

	for _, tc := range []struct {
		name            string
		cfg             fakezeno.Config
		strict, lenient string
	}{
		{"500", fakezeno.Config{HTTP500Rate: 1}, "HTTP 500: Internal Server Error", "HTTP 500: Internal Server Error"},
		{"fatal", fakezeno.Config{FatalErrorRate: 1}, "stream error: RuntimeError", "stream error: RuntimeError"},
		{"non-fatal", fakezeno.Config{NonFatalErrorRate: 1}, "stream error (non-fatal): TypeError", ""},
		{"truncated", fakezeno.Config{TruncateRate: 1}, "stream truncated", "stream truncated"},
		{"tool error is not a stream error", fakezeno.Config{ToolErrorRate: 1}, "", ""},
	} {
		_, base := startFake(t, tc.cfg)
		check(tc.name, chat(base, tok), tc.strict, tc.lenient)
	}

	_, base = startFake(t, fakezeno.Config{SlowHeadersRate: 1, SlowHeadersDelay: 2 * time.Second, TimeScale: 1})
	res := NewClient(ClientConfig{Timeout: 300 * time.Millisecond}).Chat(context.Background(), base, tok, ChatRequest{Query: "q", ThreadID: NewThreadID()})
	check("slow headers", res, "timeout after 0.3s", "timeout after 0.3s")
}

func TestFakeZenoTimingAccuracy(t *testing.T) {
	_, base := startFake(t, fakezeno.Config{TimeScale: 1,
		Fixed: &fakezeno.Profile{HeaderDelay: 100 * time.Millisecond, Lines: 3, Gap: 50 * time.Millisecond}})
	c := NewClient(ClientConfig{})
	tok := mustToken(t, testToken)
	checkTiming(t, func() *Result {
		return c.Chat(context.Background(), base, tok, ChatRequest{Query: "Tree cover in Peru", ThreadID: NewThreadID()})
	}, 100*time.Millisecond, 150*time.Millisecond, 250*time.Millisecond)
}

// TestFakeZenoGroundTruth runs the three behaviours for a while and checks
// that what we recorded equals what the server did.
func TestFakeZenoGroundTruth(t *testing.T) {
	fake, base := startFake(t, fakezeno.Config{TimeScale: 0, NonFatalErrorRate: 0.1, TruncateRate: 0.05})
	h := newHarness(t, base, func(c *Config) {
		c.TurnsMin, c.TurnsMax = 3, 6
		c.ThinkMin, c.ThinkMax = 0, time.Millisecond
	})
	follow := 0
	for id := range 4 {
		u := h.user(t, id, locust.Options{})
		for i := range 15 {
			switch i % 3 {
			case 0:
				u.quick(context.Background())
			case 1:
				u.analysis(context.Background())
			case 2:
				u.conversation(context.Background())
			}
		}
	}
	gt := fake.Stats()
	rows := h.rec.all()
	var bytes200 int64
	fails := map[string]int{}
	for _, r := range rows {
		if r.name == NameConversationFollowUp {
			follow++
		}
		fails[r.fail]++
	}
	_, data, _ := h.cfg.Metrics.Report(true)
	reqs := data.(map[string]any)["requests"].(map[string]any)
	var lines int64
	count := int64(0)
	for _, v := range reqs {
		m := v.(map[string]any)
		bytes200 += m["bytes"].(int64)
		lines += m["lines"].(int64)
		count += m["count"].(int64)
	}
	if int64(len(rows)) != gt.ChatRequestsTotal || count != gt.ChatRequestsTotal {
		t.Errorf("rows %d, metrics count %d, server saw %d", len(rows), count, gt.ChatRequestsTotal)
	}
	if bytes200 != gt.BytesSent || lines != gt.LinesSent {
		t.Errorf("bytes %d lines %d, server sent %d bytes %d lines", bytes200, lines, gt.BytesSent, gt.LinesSent)
	}
	if int64(follow) != gt.ThreadsContinued {
		t.Errorf("follow-ups %d, server continued %d", follow, gt.ThreadsContinued)
	}
	if int64(fails["stream truncated"]) != gt.StreamsTruncated {
		t.Errorf("truncated %d, server %d", fails["stream truncated"], gt.StreamsTruncated)
	}
	quota := data.(map[string]any)["quota"].(map[string]any)[testPrefix].(map[string]any)
	if quota["used"] != gt.Quota[testPrefix].Used || quota["quota"] != int64(gt.Quota[testPrefix].Quota) {
		t.Errorf("quota %v, server %+v", quota, gt.Quota[testPrefix])
	}
	conv := data.(map[string]any)["conversations"].(map[string]any)
	if conv["started"] != int64(20) {
		t.Errorf("conversations started %v, want 20", conv["started"])
	}
	t.Logf("requests %d, follow-ups %d, failures %v", len(rows), follow, fmt.Sprint(fails))
}

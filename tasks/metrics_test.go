package tasks

import (
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func TestMetricsReportDelta(t *testing.T) {
	m := NewMetrics()
	if _, _, ok := m.Report(false); ok {
		t.Fatal("empty window reported")
	}
	if typ, data, ok := m.Report(true); !ok || typ != "zeno_metrics" || data.(map[string]any)["v"] != int64(1) {
		t.Fatal("final report must always be sent")
	}
	ok200 := &Result{Outcome: OK, Status: 200, GotHeaders: true, TTFB: 120 * time.Millisecond,
		GotFirstLine: true, FirstLine: 1234 * time.Millisecond, Bytes: 1000, Lines: 5,
		HasQuota: true, PromptsUsed: 7, PromptsQuota: 1000}
	m.ObserveRequest(NameQuick, "p1", ok200)
	ok200b := *ok200
	ok200b.PromptsUsed = 9
	m.ObserveRequest(NameQuick, "p1", &ok200b)
	m.ObserveRequest(NameAnalysis, "p1", &Result{Outcome: HTTPStatus, Status: 429, GotHeaders: true, TTFB: 3 * time.Millisecond, Bytes: 80})
	m.ObserveRequest(NameAnalysis, "p1", &Result{Outcome: Canceled})           // never counted
	m.ObserveRequest("bogus", "p1", ok200)                                     // unknown name ignored
	m.ObserveRequest(NameConversationStart, "p2", &Result{Outcome: ConnError}) // no headers
	m.ConversationStarted()
	m.ConversationFinished(4, true, false)
	m.ConversationStarted()
	m.ConversationFinished(2, false, true)

	typ, data, ok := m.Report(false)
	if !ok || typ != MetricsMessageType {
		t.Fatal("no report")
	}
	d := data.(map[string]any)
	reqs := d["requests"].(map[string]any)
	if len(reqs) != 3 {
		t.Fatalf("requests: %v", reqs)
	}
	q := reqs[NameQuick].(map[string]any)
	if q["count"] != int64(2) || q["bytes"] != int64(2000) || q["lines"] != int64(10) ||
		q["ttfb"].(map[int64]int64)[120] != 2 || q["first_line"].(map[int64]int64)[1200] != 2 ||
		q["ttfb_sum_ms"] != 240.0 || q["first_line_sum_ms"] != 2468.0 {
		t.Fatalf("quick: %v", q)
	}
	a := reqs[NameAnalysis].(map[string]any)
	if a["count"] != int64(1) || len(a["first_line"].(map[int64]int64)) != 0 {
		t.Fatalf("analysis: %v", a)
	}
	cs := reqs[NameConversationStart].(map[string]any)
	if cs["count"] != int64(1) || len(cs["ttfb"].(map[int64]int64)) != 0 {
		t.Fatalf("conversation_start: %v", cs)
	}
	quota := d["quota"].(map[string]any)
	if len(quota) != 1 || quota["p1"].(map[string]any)["used"] != int64(9) || quota["p1"].(map[string]any)["quota"] != int64(1000) {
		t.Fatalf("quota: %v", quota)
	}
	conv := d["conversations"].(map[string]any)
	if conv["started"] != int64(2) || conv["completed"] != int64(1) || conv["continuity_failures"] != int64(1) ||
		conv["turns"].(map[int64]int64)[4] != 1 || conv["turns"].(map[int64]int64)[2] != 1 {
		t.Fatalf("conversations: %v", conv)
	}
	if d["status_429"] != int64(1) {
		t.Fatalf("429: %v", d["status_429"])
	}
	if _, err := msgpack.Marshal(data); err != nil {
		t.Fatalf("msgpack: %v", err)
	}

	// Second report: nothing new.
	if _, _, ok := m.Report(false); ok {
		t.Fatal("delta not reset")
	}
	m.ObserveRequest(NameQuick, "p1", ok200)
	_, data, _ = m.Report(false)
	if got := data.(map[string]any)["requests"].(map[string]any)[NameQuick].(map[string]any)["count"]; got != int64(1) {
		t.Fatalf("second window count = %v", got)
	}
	var nilM *Metrics
	nilM.ObserveRequest(NameQuick, "p", ok200)
	if _, _, ok := nilM.Report(false); ok {
		t.Fatal("nil metrics reported")
	}
}

func TestMetricsQuotaBounded(t *testing.T) {
	m := NewMetrics()
	for i := range 200 {
		m.ObserveRequest(NameQuick, string(rune('A'+i%26))+string(rune('a'+i/26)), &Result{Outcome: OK, HasQuota: true, PromptsUsed: i})
	}
	_, data, _ := m.Report(false)
	if n := len(data.(map[string]any)["quota"].(map[string]any)); n != maxQuotaPrefixes {
		t.Fatalf("quota prefixes = %d", n)
	}
}

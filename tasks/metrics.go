package tasks

import (
	"sync"

	"github.com/zenoload/zenoload/locust"
)

// Request names: the only Locust rows this package produces.
const (
	NameQuick                = "quick_query"
	NameAnalysis             = "analysis_query"
	NameConversationStart    = "conversation_start"
	NameConversationFollowUp = "conversation_followup"
)

// MetricsMessageType is the custom message type sent to the master.
const MetricsMessageType = "zeno_metrics"

// maxQuotaPrefixes bounds the quota map per report window.
const maxQuotaPrefixes = 64

func nameIndex(name string) int {
	switch name {
	case NameQuick:
		return 0
	case NameAnalysis:
		return 1
	case NameConversationStart:
		return 2
	case NameConversationFollowUp:
		return 3
	}
	return -1
}

func nameAt(i int) string {
	switch i {
	case 0:
		return NameQuick
	case 1:
		return NameAnalysis
	case 2:
		return NameConversationStart
	}
	return NameConversationFollowUp
}

type reqWindow struct {
	count, bytes, lines   int64
	ttfb, firstLine       map[int64]int64
	ttfbSum, firstLineSum float64
}

type quotaStat struct{ used, quota int64 }

type window struct {
	req                            [4]reqWindow
	quota                          map[string]quotaStat
	started, completed, contFailed int64
	turns                          map[int64]int64
	status429                      int64
	dirty                          bool
}

// Metrics collects what Locust rows cannot carry (TTFB, first line, bytes,
// lines, quota, conversations) and hands it out as delta windows. One mutex:
// a few map updates per request are cheap next to a streamed LLM answer.
// All methods are safe for concurrent use and no-ops on a nil *Metrics.
type Metrics struct {
	mu sync.Mutex
	w  window
}

// NewMetrics returns an empty collector.
func NewMetrics() *Metrics { return &Metrics{} }

// ObserveRequest adds one recorded request. prefix is the token's public
// prefix (never the secret). Unknown names are ignored to keep reports bounded.
func (m *Metrics) ObserveRequest(name, prefix string, r *Result) {
	i := nameIndex(name)
	if m == nil || r == nil || i < 0 || r.Outcome == Canceled {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w := &m.w
	w.dirty = true
	rw := &w.req[i]
	rw.count++
	rw.bytes += r.Bytes
	rw.lines += int64(r.Lines)
	if r.GotHeaders {
		ms := durMs(r.TTFB)
		rw.ttfb = incr(rw.ttfb, locust.BucketResponseTime(ms))
		rw.ttfbSum += ms
	}
	if r.GotFirstLine {
		ms := durMs(r.FirstLine)
		rw.firstLine = incr(rw.firstLine, locust.BucketResponseTime(ms))
		rw.firstLineSum += ms
	}
	if r.Status == 429 {
		w.status429++
	}
	if r.HasQuota && prefix != "" {
		if w.quota == nil {
			w.quota = map[string]quotaStat{}
		}
		q, seen := w.quota[prefix]
		if seen || len(w.quota) < maxQuotaPrefixes {
			q.used = max(q.used, int64(r.PromptsUsed))
			q.quota = int64(r.PromptsQuota)
			w.quota[prefix] = q
		}
	}
}

// ConversationStarted counts a conversation whose first turn was recorded.
func (m *Metrics) ConversationStarted() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.w.dirty = true
	m.w.started++
}

// ConversationFinished records a started conversation's end: turns is the
// number of recorded turns; completed means all planned turns succeeded;
// continuityFailure means a failed turn aborted it. A conversation stopped by
// the runtime is neither.
func (m *Metrics) ConversationFinished(turns int, completed, continuityFailure bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w := &m.w
	w.dirty = true
	w.turns = incr(w.turns, int64(turns))
	if completed {
		w.completed++
	}
	if continuityFailure {
		w.contFailed++
	}
}

// Report returns the delta since the previous report as a "zeno_metrics"
// message and starts a new window. ok is false when nothing happened, unless
// final is set (the last report is always sent). Maps use int64 keys so
// msgpack carries integer keys; the shape is documented in the package doc.
func (m *Metrics) Report(final bool) (msgType string, data any, ok bool) {
	if m == nil {
		if !final {
			return MetricsMessageType, nil, false
		}
		return MetricsMessageType, (&window{}).data(), true
	}
	m.mu.Lock()
	w := m.w
	m.w = window{}
	m.mu.Unlock()
	if !w.dirty && !final {
		return MetricsMessageType, nil, false
	}
	return MetricsMessageType, w.data(), true
}

func (w *window) data() map[string]any {
	reqs := map[string]any{}
	for i := range w.req {
		rw := &w.req[i]
		if rw.count == 0 {
			continue
		}
		reqs[nameAt(i)] = map[string]any{
			"count":             rw.count,
			"ttfb":              orEmpty(rw.ttfb),
			"first_line":        orEmpty(rw.firstLine),
			"ttfb_sum_ms":       rw.ttfbSum,
			"first_line_sum_ms": rw.firstLineSum,
			"bytes":             rw.bytes,
			"lines":             rw.lines,
		}
	}
	quota := map[string]any{}
	for p, q := range w.quota {
		quota[p] = map[string]any{"used": q.used, "quota": q.quota}
	}
	return map[string]any{
		"v":        int64(1),
		"requests": reqs,
		"quota":    quota,
		"conversations": map[string]any{
			"started":             w.started,
			"completed":           w.completed,
			"continuity_failures": w.contFailed,
			"turns":               orEmpty(w.turns),
		},
		"status_429": w.status429,
	}
}

func incr(h map[int64]int64, k int64) map[int64]int64 {
	if h == nil {
		h = map[int64]int64{}
	}
	h[k]++
	return h
}

func orEmpty(h map[int64]int64) map[int64]int64 {
	if h == nil {
		return map[int64]int64{}
	}
	return h
}

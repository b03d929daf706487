package locust

import (
	"sort"
	"time"
)

// EntrySummary is the cumulative view of one request row.
type EntrySummary struct {
	Method        string          `json:"method"`
	Name          string          `json:"name"`
	Requests      int64           `json:"num_requests"`
	Failures      int64           `json:"num_failures"`
	MinMs         float64         `json:"min_response_time_ms"`
	MaxMs         float64         `json:"max_response_time_ms"`
	AvgMs         float64         `json:"avg_response_time_ms"`
	P50Ms         int64           `json:"p50_ms"`
	P95Ms         int64           `json:"p95_ms"`
	P99Ms         int64           `json:"p99_ms"`
	TotalBytes    int64           `json:"total_content_length"`
	ResponseTimes map[int64]int64 `json:"response_times"`
}

// ErrorSummary is one cumulative failure row.
type ErrorSummary struct {
	Method      string `json:"method"`
	Name        string `json:"name"`
	Error       string `json:"error"`
	Occurrences int64  `json:"occurrences"`
}

// Summary is everything reported since the last reset.
type Summary struct {
	Start    time.Time      `json:"start"`
	End      time.Time      `json:"end"`
	Requests int64          `json:"num_requests"`
	Failures int64          `json:"num_failures"`
	Entries  []EntrySummary `json:"entries"`
	Total    EntrySummary   `json:"total"`
	Errors   []ErrorSummary `json:"errors"`
}

// Summary returns the cumulative totals of every delivered window.
func (s *Stats) Summary() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := Summary{Start: s.cumStart, End: time.Now()}
	total := newEntry()
	for k, e := range s.cumulative {
		total.merge(e)
		sum.Entries = append(sum.Entries, summarize(k.method, k.name, e))
	}
	sort.Slice(sum.Entries, func(i, j int) bool {
		a, b := sum.Entries[i], sum.Entries[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Method < b.Method
	})
	sum.Total = summarize("", "Aggregated", total)
	sum.Requests, sum.Failures = total.numRequests, total.numFailures
	for k, e := range s.cumErrors {
		sum.Errors = append(sum.Errors, ErrorSummary{k.method, k.name, k.err, e.occurrences})
	}
	sort.Slice(sum.Errors, func(i, j int) bool { return sum.Errors[i].Occurrences > sum.Errors[j].Occurrences })
	return sum
}

func summarize(method, name string, e *entry) EntrySummary {
	es := EntrySummary{Method: method, Name: name, Requests: e.numRequests, Failures: e.numFailures,
		MaxMs: e.maxRT, TotalBytes: e.totalLength, ResponseTimes: copyMap(e.rt)}
	if e.minRT >= 0 {
		es.MinMs = e.minRT
	}
	if e.numRequests > 0 {
		es.AvgMs = e.totalRT / float64(e.numRequests)
	}
	es.P50Ms = Percentile(e.rt, e.numRequests, 0.50)
	es.P95Ms = Percentile(e.rt, e.numRequests, 0.95)
	es.P99Ms = Percentile(e.rt, e.numRequests, 0.99)
	return es
}

// Percentile walks the bucket histogram from the top, exactly as Locust's
// calculate_response_time_percentile does, so worker-side and master-side
// percentiles agree.
func Percentile(hist map[int64]int64, numRequests int64, pct float64) int64 {
	if numRequests == 0 {
		return 0
	}
	keys := make([]int64, 0, len(hist))
	for k := range hist {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] > keys[j] })
	want := int64(float64(numRequests) * pct)
	var processed int64
	for _, k := range keys {
		processed += hist[k]
		if numRequests-processed <= want {
			return k
		}
	}
	return 0
}

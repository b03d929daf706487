package locust

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBucketResponseTime(t *testing.T) {
	// Values verified against Locust's bucket_response_time (protocol doc §12).
	cases := map[float64]int64{
		145: 140, 155: 160, 1250: 1200, 1350: 1400, 9950: 10000, 9850: 9800,
		99.5: 100, 98.5: 98, 0.4: 0, 999: 1000, 14500: 14000, 15500: 16000,
		147.3: 150, 3432: 3400, 58760: 59000, 0: 0, 1: 1, 99.4: 99,
		// The table tasks' metrics histograms were checked against.
		0.5: 0, 1.5: 2, 2.5: 2, 99.6: 100, 100: 100, 104: 100, 105: 100, 115: 120,
		994: 990, 996: 1000, 1049: 1000, 1050: 1000, 1150: 1200, 9949: 9900, 9951: 10000,
		12499: 12000, 12500: 12000, 13500: 14000, -3: 0,
	}
	for in, want := range cases {
		require.Equal(t, want, BucketResponseTime(in), "bucket(%v)", in)
	}
	require.Equal(t, int64(0), BucketResponseTime(math.NaN()))
}

func TestStatsDeltaSemantics(t *testing.T) {
	s := NewStats(4)
	r1, r2 := s.Recorder(1), s.Recorder(2)
	r1.Record("POST", "a", 10, 100, "")
	r1.Record("POST", "a", 30, 50, "boom")
	r2.Record("POST", "b", 1250, 10, "")
	w := s.take()
	d := w.reportData(map[string]int64{"U": 2})
	entries := d["stats"].([]any)
	require.Len(t, entries, 2)
	a := entries[0].(map[string]any)
	require.Equal(t, "a", a["name"])
	require.Equal(t, int64(2), a["num_requests"])
	require.Equal(t, int64(1), a["num_failures"])
	require.Equal(t, 10.0, a["min_response_time"])
	require.Equal(t, 30.0, a["max_response_time"])
	require.Equal(t, map[int64]int64{10: 1, 30: 1}, a["response_times"])
	total := d["stats_total"].(map[string]any)
	require.Equal(t, int64(3), total["num_requests"], "total = sum of entries")
	require.Equal(t, int64(160), total["total_content_length"])
	require.Equal(t, map[int64]int64{10: 1, 30: 1, 1200: 1}, total["response_times"])
	var perSec int64
	for _, v := range total["num_reqs_per_sec"].(map[int64]int64) {
		perSec += v
	}
	require.Equal(t, int64(3), perSec)
	errs := d["errors"].(map[string]any)
	require.Len(t, errs, 1)
	require.Equal(t, int64(1), errs[ErrorKey("POST", "a", "boom")].(map[string]any)["occurrences"])
	require.Equal(t, int64(2), d["user_count"])
	start := total["start_time"].(float64)
	require.InDelta(t, float64(time.Now().Unix()), start, 5, "start_time is a real epoch")
	s.commit(w)

	// The next window is empty: min and last timestamp are nil, not 0.
	time.Sleep(5 * time.Millisecond)
	w2 := s.take()
	d2 := w2.reportData(nil)
	require.Empty(t, d2["stats"])
	t2 := d2["stats_total"].(map[string]any)
	require.Nil(t, t2["min_response_time"])
	require.Nil(t, t2["last_request_timestamp"])
	require.Equal(t, int64(0), t2["num_requests"])
	require.Greater(t, t2["start_time"].(float64), start, "window start advances")
	s.commit(w2)

	sum := s.Summary()
	require.Equal(t, int64(3), sum.Requests)
	require.Equal(t, int64(1), sum.Failures)
}

func TestStatsUnsentWindowIsMergedNotLost(t *testing.T) {
	s := NewStats(2)
	s.Recorder(0).Record("GET", "x", 5, 0, "")
	s.take() // send failed: never committed
	s.Recorder(0).Record("GET", "x", 7, 0, "")
	w := s.take()
	d := w.reportData(nil)
	require.Equal(t, int64(2), d["stats_total"].(map[string]any)["num_requests"])
	s.commit(w)
	require.Equal(t, int64(2), s.Summary().Requests)
}

func TestResetDropsPending(t *testing.T) {
	s := NewStats(2)
	s.Recorder(0).Record("GET", "x", 5, 0, "")
	w := s.take()
	s.Reset()
	s.commit(w) // a window from before the reset belongs to no test
	require.Equal(t, int64(0), s.Summary().Requests)
}

func TestPercentileMatchesLocust(t *testing.T) {
	// Locust 2.47: [calculate_response_time_percentile(h, 10, p) for p in
	// (.5, .8, .95, 1)] == [20, 300, 300, 300]
	h := map[int64]int64{10: 5, 20: 3, 300: 2}
	require.Equal(t, int64(20), Percentile(h, 10, 0.5))
	require.Equal(t, int64(300), Percentile(h, 10, 0.8))
	require.Equal(t, int64(300), Percentile(h, 10, 0.95))
	require.Equal(t, int64(300), Percentile(h, 10, 1))
	require.Equal(t, int64(0), Percentile(nil, 0, 0.5))
}

func TestErrorKeyMatchesPython(t *testing.T) {
	// Python: sha256(("POST.quick_query." + repr("HTTP 429: daily quota exceeded")).encode())
	require.Equal(t, "3d955b65dcebc4066781a858384e8f53e1d36ed6a1adec7bdee3fcc680a824e3",
		ErrorKey("POST", "quick_query", "HTTP 429: daily quota exceeded"))
	require.Equal(t, "'it'", pyRepr("it"))
	require.Equal(t, `"it's"`, pyRepr("it's"))
	require.Equal(t, `'say "it\'s"'`, pyRepr(`say "it's"`))
	require.Equal(t, `'a\\b\n'`, pyRepr("a\\b\n"))
}

func TestRecordRejectsNegativeAndNaN(t *testing.T) {
	s := NewStats(1)
	s.Recorder(0).Record("GET", "x", -5, 0, "")
	s.Recorder(0).Record("GET", "x", math.NaN(), 0, "")
	w := s.take()
	e := w.entries[entryKey{"GET", "x"}]
	require.Equal(t, map[int64]int64{0: 2}, e.rt)
}

func BenchmarkRecord(b *testing.B) {
	s := NewStats(0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := s.Recorder(int(time.Now().UnixNano() % 1000))
		i := 0
		for pb.Next() {
			i++
			r.Record("POST", "analysis_query", float64(i%20000), 2048, "")
		}
	})
}

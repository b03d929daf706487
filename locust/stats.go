package locust

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"sort"
	"sync"
	"time"
)

// BucketResponseTime mirrors Locust's bucket_response_time: exact below 100 ms,
// then two significant digits, with Python's round-half-to-even. Negative and
// NaN inputs (clock oddities) land in bucket 0.
func BucketResponseTime(ms float64) int64 {
	var p float64
	switch {
	case ms < 0 || math.IsNaN(ms):
		return 0
	case ms < 100:
		p = 1
	case ms < 1000:
		p = 10
	case ms < 10000:
		p = 100
	default:
		p = 1000
	}
	return int64(math.RoundToEven(ms/p) * p)
}

type entryKey struct{ method, name string }

type errorKey struct{ method, name, err string }

// entry accumulates one (method, name) row for one report window.
type entry struct {
	numRequests, numFailures  int64
	totalRT, minRT, maxRT     float64 // minRT < 0 means no request yet
	totalLength               int64
	lastTS                    float64 // epoch seconds of the last request
	rt, reqPerSec, failPerSec map[int64]int64
}

func newEntry() *entry {
	return &entry{minRT: -1, rt: make(map[int64]int64, 16),
		reqPerSec: make(map[int64]int64, 4), failPerSec: make(map[int64]int64, 1)}
}

func (e *entry) log(rt float64, length int64, ts float64, sec int64, failed bool) {
	e.numRequests++
	e.totalRT += rt
	if e.minRT < 0 || rt < e.minRT {
		e.minRT = rt
	}
	if rt > e.maxRT {
		e.maxRT = rt
	}
	e.totalLength += length
	if ts > e.lastTS {
		e.lastTS = ts
	}
	e.rt[BucketResponseTime(rt)]++
	e.reqPerSec[sec]++
	if failed {
		e.numFailures++
		e.failPerSec[sec]++
	}
}

func (e *entry) merge(o *entry) {
	e.numRequests += o.numRequests
	e.numFailures += o.numFailures
	e.totalRT += o.totalRT
	if o.minRT >= 0 && (e.minRT < 0 || o.minRT < e.minRT) {
		e.minRT = o.minRT
	}
	e.maxRT = max(e.maxRT, o.maxRT)
	e.totalLength += o.totalLength
	e.lastTS = max(e.lastTS, o.lastTS)
	for k, v := range o.rt {
		e.rt[k] += v
	}
	for k, v := range o.reqPerSec {
		e.reqPerSec[k] += v
	}
	for k, v := range o.failPerSec {
		e.failPerSec[k] += v
	}
}

type errEntry struct {
	occurrences         int64
	firstSeen, lastSeen float64
}

// shard is the unit of locking: users are spread over shards so recording
// never funnels through one goroutine or one mutex.
type shard struct {
	mu      sync.Mutex
	entries map[entryKey]*entry
	errors  map[errorKey]*errEntry
	_       [64]byte // keep hot mutexes on separate cache lines
}

func (s *shard) Record(method, name string, rt float64, length int64, errText string) {
	now := time.Now()
	ts := float64(now.UnixNano()) / 1e9
	sec := now.Unix()
	if rt < 0 || math.IsNaN(rt) {
		rt = 0
	}
	s.mu.Lock()
	e := s.entries[entryKey{method, name}]
	if e == nil {
		e = newEntry()
		s.entries[entryKey{method, name}] = e
	}
	e.log(rt, length, ts, sec, errText != "")
	if errText != "" {
		k := errorKey{method, name, errText}
		ee := s.errors[k]
		if ee == nil {
			ee = &errEntry{firstSeen: ts}
			s.errors[k] = ee
		}
		ee.occurrences++
		ee.lastSeen = ts
	}
	s.mu.Unlock()
}

// swap takes the shard's window and leaves an empty one.
func (s *shard) swap() (map[entryKey]*entry, map[errorKey]*errEntry) {
	s.mu.Lock()
	e, er := s.entries, s.errors
	s.entries = make(map[entryKey]*entry, len(e))
	s.errors = make(map[errorKey]*errEntry)
	s.mu.Unlock()
	return e, er
}

// Stats is the worker-side request recorder. Report windows are deltas; a
// cumulative copy is kept for summaries and the standalone table.
type Stats struct {
	shards []shard

	mu          sync.Mutex // guards everything below
	windowStart time.Time
	pending     *window // taken but not yet confirmed sent
	cumulative  map[entryKey]*entry
	cumErrors   map[errorKey]*errEntry
	cumStart    time.Time
}

// window is one report's worth of data.
type window struct {
	start   time.Time
	entries map[entryKey]*entry
	errors  map[errorKey]*errEntry
}

// NewStats makes a recorder with n shards (n ≤ 0: 64).
func NewStats(n int) *Stats {
	if n <= 0 {
		n = 64
	}
	s := &Stats{shards: make([]shard, n)}
	for i := range s.shards {
		s.shards[i].entries = make(map[entryKey]*entry)
		s.shards[i].errors = make(map[errorKey]*errEntry)
	}
	s.Reset()
	return s
}

// Recorder returns the shard for user id.
func (s *Stats) Recorder(id int) Recorder {
	if id < 0 {
		id = -id
	}
	return &s.shards[id%len(s.shards)]
}

// Reset drops everything recorded so far and restarts the window at now
// (a new test starts: protocol doc §4 "new test detection").
func (s *Stats) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.shards {
		s.shards[i].swap()
	}
	now := time.Now()
	s.windowStart = now
	s.cumStart = now
	s.pending = nil
	s.cumulative = make(map[entryKey]*entry)
	s.cumErrors = make(map[errorKey]*errEntry)
}

// take closes the current window. Data from a previous take that was never
// confirmed (a failed send) is merged in, so nothing is lost or duplicated.
func (s *Stats) take() *window {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.pending
	if w == nil {
		w = &window{start: s.windowStart, entries: map[entryKey]*entry{}, errors: map[errorKey]*errEntry{}}
	}
	for i := range s.shards {
		es, ers := s.shards[i].swap()
		for k, e := range es {
			if cur := w.entries[k]; cur != nil {
				cur.merge(e)
			} else {
				w.entries[k] = e
			}
		}
		for k, e := range ers {
			mergeErr(w.errors, k, e)
		}
	}
	s.windowStart = time.Now()
	s.pending = w
	return w
}

func mergeErr(m map[errorKey]*errEntry, k errorKey, e *errEntry) {
	cur := m[k]
	if cur == nil {
		c := *e
		m[k] = &c
		return
	}
	cur.occurrences += e.occurrences
	cur.firstSeen = min(cur.firstSeen, e.firstSeen)
	cur.lastSeen = max(cur.lastSeen, e.lastSeen)
}

// commit marks w as delivered and folds it into the cumulative totals.
func (s *Stats) commit(w *window) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending != w {
		return // a Reset happened in between: that data belongs to no test
	}
	s.pending = nil
	for k, e := range w.entries {
		cur := s.cumulative[k]
		if cur == nil {
			cur = newEntry()
			s.cumulative[k] = cur
		}
		cur.merge(e)
	}
	for k, e := range w.errors {
		mergeErr(s.cumErrors, k, e)
	}
}

// ReportData builds the `stats` message data for one window (protocol doc §5).
func (w *window) reportData(userClasses map[string]int64) map[string]any {
	keys := make([]entryKey, 0, len(w.entries))
	for k := range w.entries {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].name != keys[j].name {
			return keys[i].name < keys[j].name
		}
		return keys[i].method < keys[j].method
	})
	total := newEntry()
	entries := make([]any, 0, len(keys))
	start := float64(w.start.UnixNano()) / 1e9
	for _, k := range keys {
		e := w.entries[k]
		total.merge(e)
		entries = append(entries, entryData(k.name, k.method, start, e))
	}
	errs := make(map[string]any, len(w.errors))
	for k, e := range w.errors {
		errs[ErrorKey(k.method, k.name, k.err)] = map[string]any{
			"method": k.method, "name": k.name, "error": k.err,
			"occurrences": e.occurrences, "first_seen": e.firstSeen, "last_seen": e.lastSeen,
		}
	}
	var users int64
	classes := make(map[string]int64, len(userClasses))
	for k, v := range userClasses {
		classes[k] = v
		users += v
	}
	return map[string]any{
		"stats":              entries,
		"stats_total":        entryData("Aggregated", "", start, total),
		"errors":             errs,
		"user_classes_count": classes,
		"user_count":         users,
	}
}

func entryData(name, method string, start float64, e *entry) map[string]any {
	var minRT, lastTS any // nil in an empty window (protocol doc T17/T18)
	if e.minRT >= 0 {
		minRT = e.minRT
	}
	if e.numRequests > 0 {
		lastTS = e.lastTS
	}
	return map[string]any{
		"name":                   name,
		"method":                 method,
		"last_request_timestamp": lastTS,
		"start_time":             start,
		"num_requests":           e.numRequests,
		"num_none_requests":      int64(0),
		"num_failures":           e.numFailures,
		"total_response_time":    e.totalRT,
		"max_response_time":      e.maxRT,
		"min_response_time":      minRT,
		"total_content_length":   e.totalLength,
		"response_times":         copyMap(e.rt),
		"num_reqs_per_sec":       copyMap(e.reqPerSec),
		"num_fail_per_sec":       copyMap(e.failPerSec),
	}
}

func copyMap(m map[int64]int64) map[int64]int64 {
	out := make(map[int64]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ErrorKey is Locust HEAD's key for an error row, sha256 of
// "method.name.repr(error)", so rows merge with Python workers' rows.
func ErrorKey(method, name, err string) string {
	sum := sha256.Sum256([]byte(method + "." + name + "." + pyRepr(err)))
	return hex.EncodeToString(sum[:])
}

// pyRepr approximates Python's repr(str) for the common case: single quotes,
// unless the text has a single quote and no double quote.
func pyRepr(s string) string {
	q := byte('\'')
	if containsByte(s, '\'') && !containsByte(s, '"') {
		q = '"'
	}
	out := make([]byte, 0, len(s)+2)
	out = append(out, q)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			out = append(out, '\\', '\\')
		case c == q:
			out = append(out, '\\', c)
		case c == '\n':
			out = append(out, '\\', 'n')
		case c == '\r':
			out = append(out, '\\', 'r')
		case c == '\t':
			out = append(out, '\\', 't')
		default:
			out = append(out, c)
		}
	}
	return string(append(out, q))
}

func containsByte(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}

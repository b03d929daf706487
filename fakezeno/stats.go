package fakezeno

import (
	"sort"
	"strconv"
	"sync/atomic"
	"time"
)

// GroundTruth is what the fake really did, for comparison with what a load
// generator measured. Invariants (once no request is in flight):
//
//	chat_requests_total = sum(by_status) + aborted_before_headers
//	by_status["200"]    = streams_started
//	streams_started     = streams_completed + streams_truncated + streams_fatal
//	                      + streams_client_gone + streams_shutdown
//	sum(by_kind)        = requests that passed auth, validation and the thread step
//	                      (each of them used one quota unit)
//	threads_created     = threads_active + threads_deleted + threads_evicted
type GroundTruth struct {
	StartedAt         time.Time `json:"started_at"`
	UptimeSeconds     float64   `json:"uptime_seconds"`
	ChatRequestsTotal int64     `json:"chat_requests_total"` // every POST /api/chat received
	// ByStatus counts status codes actually written for POST /api/chat.
	ByStatus map[string]int64 `json:"by_status"`
	// ByKind counts classified requests: quick, analysis, followup.
	ByKind               map[string]int64 `json:"by_kind"`
	StreamsByKind        map[string]int64 `json:"streams_by_kind"`        // 200s by kind
	AbortedBeforeHeaders int64            `json:"aborted_before_headers"` // client gone or shutdown before any status

	StreamsStarted     int64 `json:"streams_started"`
	StreamsCompleted   int64 `json:"streams_completed"` // clean end of body (may contain non-fatal error lines)
	StreamsTruncated   int64 `json:"streams_truncated"` // injected cut without the final chunk
	StreamsFatal       int64 `json:"streams_fatal"`     // ended by a fatal error line
	StreamsClientGone  int64 `json:"streams_client_gone"`
	StreamsShutdown    int64 `json:"streams_shutdown"` // cut by server shutdown
	NonFatalErrorLines int64 `json:"nonfatal_error_lines"`
	FatalErrorLines    int64 `json:"fatal_error_lines"`
	ToolErrorLines     int64 `json:"tool_error_lines"`
	LinesSent          int64 `json:"lines_sent"` // written (the last may be unsent if the client left)
	BytesSent          int64 `json:"bytes_sent"` // NDJSON body bytes, without chunk framing
	// LinesByNode counts lines sent by node: model, tools, trace_info, error.
	LinesByNode map[string]int64 `json:"lines_by_node"`

	Injected500  int64 `json:"injected_http500"`
	SlowHeaders  int64 `json:"slow_headers"`
	NamingDelays int64 `json:"naming_delays"`
	// InjectedHeaderDelayMS summarises the (scaled) delay before the status
	// line of every request that reached the thread step.
	InjectedHeaderDelayMS DelaySummary `json:"injected_header_delay_ms"`
	// InjectedGapMS summarises the (scaled) silence before each line.
	InjectedGapMS DelaySummary `json:"injected_gap_ms"`

	// Quota is keyed by key prefix; secrets are never reported.
	Quota         map[string]QuotaUsage `json:"quota"`
	QuotaRequests int64                 `json:"quota_requests_total"` // GET /api/quota

	ThreadsCreated   int64 `json:"threads_created"`
	ThreadsContinued int64 `json:"threads_continued"` // requests on an existing thread
	ThreadsDeleted   int64 `json:"threads_deleted"`
	ThreadsActive    int64 `json:"threads_active"`
	ThreadsEvicted   int64 `json:"threads_evicted"`  // forgotten past Config.MaxThreads
	ThreadConflicts  int64 `json:"thread_conflicts"` // 500s: thread owned by another key, or still being created
	// ThreadTurns maps a turn count to the number of live threads that have it.
	ThreadTurns map[string]int64 `json:"thread_turns"`
}

// QuotaUsage is one key's counter for the current day.
type QuotaUsage struct {
	Used  int64  `json:"used"`
	Quota int    `json:"quota"`
	Day   string `json:"day"`
}

// DelaySummary is a list-free summary of injected delays in milliseconds.
type DelaySummary struct {
	Count  int64     `json:"count"`
	SumMS  float64   `json:"sum_ms"`
	MeanMS float64   `json:"mean_ms"`
	MaxMS  float64   `json:"max_ms"`
	Hist   []HistBin `json:"histogram"`
}

// HistBin counts delays d with previous bound < d <= LeMS; LeMS null is +Inf.
type HistBin struct {
	LeMS  *int64 `json:"le_ms"`
	Count int64  `json:"count"`
}

func histBoundsMS() [13]int64 {
	return [13]int64{1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000}
}

type delayHist struct {
	count, sumUS, maxUS atomic.Int64
	bins                [14]atomic.Int64
}

func (h *delayHist) observe(d time.Duration) {
	us := d.Microseconds()
	h.count.Add(1)
	h.sumUS.Add(us)
	for {
		m := h.maxUS.Load()
		if us <= m || h.maxUS.CompareAndSwap(m, us) {
			break
		}
	}
	bounds := histBoundsMS()
	i := sort.Search(len(bounds), func(i int) bool { return us <= bounds[i]*1000 })
	h.bins[i].Add(1)
}

func (h *delayHist) summary() DelaySummary {
	s := DelaySummary{Count: h.count.Load(), SumMS: float64(h.sumUS.Load()) / 1000, MaxMS: float64(h.maxUS.Load()) / 1000}
	if s.Count > 0 {
		s.MeanMS = s.SumMS / float64(s.Count)
	}
	bounds := histBoundsMS()
	for i := range h.bins {
		b := HistBin{Count: h.bins[i].Load()}
		if i < len(bounds) {
			b.LeMS = &bounds[i]
		}
		s.Hist = append(s.Hist, b)
	}
	return s
}

// stats are the live counters; all atomics so the hot path takes no lock.
type stats struct {
	chatTotal, abortedBeforeHeaders                        atomic.Int64
	status                                                 [600]atomic.Int64
	kind, streamsKind                                      [numKinds]atomic.Int64
	started, completed, truncated, fatal, gone, shutdown   atomic.Int64
	nonFatalLines, toolErrLines, linesSent, bytesSent      atomic.Int64
	linesByNode                                            [numNodes]atomic.Int64
	injected500, slowHeaders, namingDelays, quotaRequests  atomic.Int64
	threadsCreated, threadsContinued, threadsDeleted, conf atomic.Int64
	threadsEvicted                                         atomic.Int64
	headerDelay, gap                                       delayHist
}

func (st *stats) countStatus(code int) {
	if code >= 0 && code < len(st.status) {
		st.status[code].Add(1)
	}
}

// Stats returns a snapshot of the ground truth.
func (s *Server) Stats() GroundTruth {
	st := &s.st
	g := GroundTruth{
		StartedAt: s.started, UptimeSeconds: time.Since(s.started).Seconds(),
		ChatRequestsTotal: st.chatTotal.Load(), AbortedBeforeHeaders: st.abortedBeforeHeaders.Load(),
		ByStatus: map[string]int64{}, ByKind: map[string]int64{}, StreamsByKind: map[string]int64{},
		StreamsStarted: st.started.Load(), StreamsCompleted: st.completed.Load(), StreamsTruncated: st.truncated.Load(),
		StreamsFatal: st.fatal.Load(), StreamsClientGone: st.gone.Load(), StreamsShutdown: st.shutdown.Load(),
		NonFatalErrorLines: st.nonFatalLines.Load(), FatalErrorLines: st.fatal.Load(), ToolErrorLines: st.toolErrLines.Load(),
		LinesSent: st.linesSent.Load(), BytesSent: st.bytesSent.Load(), LinesByNode: map[string]int64{},
		Injected500: st.injected500.Load(), SlowHeaders: st.slowHeaders.Load(), NamingDelays: st.namingDelays.Load(),
		InjectedHeaderDelayMS: st.headerDelay.summary(), InjectedGapMS: st.gap.summary(),
		QuotaRequests: st.quotaRequests.Load(), ThreadsCreated: st.threadsCreated.Load(),
		ThreadsContinued: st.threadsContinued.Load(), ThreadsDeleted: st.threadsDeleted.Load(), ThreadConflicts: st.conf.Load(),
		ThreadsEvicted: st.threadsEvicted.Load(),
	}
	for code := range st.status {
		if n := st.status[code].Load(); n > 0 {
			g.ByStatus[strconv.Itoa(code)] = n
		}
	}
	for k := range numKinds {
		g.ByKind[k.String()] = st.kind[k].Load()
		g.StreamsByKind[k.String()] = st.streamsKind[k].Load()
	}
	for n := range numNodes {
		g.LinesByNode[n.String()] = st.linesByNode[n].Load()
	}
	g.Quota = s.quota.snapshot()
	turns, active := s.threads.turnHistogram()
	g.ThreadsActive = active
	g.ThreadTurns = make(map[string]int64, len(turns))
	for t, n := range turns {
		g.ThreadTurns[strconv.Itoa(t)] = n
	}
	return g
}

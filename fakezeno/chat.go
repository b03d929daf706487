package fakezeno

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const maxBodyBytes = 1 << 20

var (
	errClientGone = errors.New("client gone")
	errStopping   = errors.New("server stopping")
)

// valErr is one FastAPI/pydantic validation error.
type valErr struct {
	Type  string          `json:"type"`
	Loc   []any           `json:"loc"`
	Msg   string          `json:"msg"`
	Input json.RawMessage `json:"input"`
	Ctx   map[string]any  `json:"ctx,omitempty"`
}

func write422(w http.ResponseWriter, errs []valErr) {
	b, _ := json.Marshal(struct {
		Detail []valErr `json:"detail"`
	}{errs})
	writeJSON(w, http.StatusUnprocessableEntity, b)
}

// chatReq is the per-request state; it lives on the handler's stack or one
// small allocation, never in a goroutine of its own.
type chatReq struct {
	s     *Server
	w     http.ResponseWriter
	ctx   context.Context
	rng   *rand.Rand
	timer *time.Timer
}

// sleep waits d, honouring client disconnect and server shutdown. A zero d
// still notices both, so TimeScale 0 stops at line boundaries too.
func (c *chatReq) sleep(d time.Duration) error {
	if d > 0 {
		if c.timer == nil {
			c.timer = time.NewTimer(d)
		} else {
			c.timer.Reset(d) // Go ≥1.23 timers: no drain needed
		}
		select {
		case <-c.timer.C:
			return nil
		case <-c.ctx.Done():
			c.timer.Stop()
			return errClientGone
		case <-c.s.stopping:
			c.timer.Stop()
			return errStopping
		}
	}
	select {
	case <-c.ctx.Done():
		return errClientGone
	case <-c.s.stopping:
		return errStopping
	default:
		return nil
	}
}

func (c *chatReq) roll(p float64) bool { return c.rng.Float64() < p }

func (c *chatReq) jitter(j time.Duration) time.Duration {
	return time.Duration(c.rng.Float64() * float64(j))
}

func (s *Server) scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) * s.cfg.TimeScale)
}

func (s *Server) profile(k kind) Profile {
	switch {
	case s.cfg.Fixed != nil:
		return *s.cfg.Fixed
	case k == kindQuick:
		return s.cfg.Quick
	case k == kindAnalysis:
		return s.cfg.Analysis
	default:
		return s.cfg.FollowUp
	}
}

func appendHex64(b []byte, u uint64) []byte {
	const digits = "0123456789abcdef"
	for i := 60; i >= 0; i -= 4 {
		b = append(b, digits[(u>>uint(i))&0xf])
	}
	return b
}

// write500 sends the logging middleware's body with a fresh request id.
func (c *chatReq) write500() {
	b := make([]byte, 0, 80)
	b = append(b, `{"detail":"Internal Server Error","request_id":"`...)
	b = appendHex64(appendHex64(b, c.rng.Uint64()), c.rng.Uint64())
	b = append(b, `"}`...)
	writeJSON(c.w, http.StatusInternalServerError, b)
	c.s.st.countStatus(http.StatusInternalServerError)
}

func (c *chatReq) writeStatus(code int, body []byte) {
	writeJSON(c.w, code, body)
	c.s.st.countStatus(code)
}

// handleChat follows the real check order (zeno-api.md A1.3): JSON syntax,
// auth, schema, thread, quota, then headers and the stream.
func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeDetail(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	idx := s.st.chatTotal.Add(1)
	c := &chatReq{s: s, w: w, ctx: r.Context(), rng: rand.New(rand.NewPCG(uint64(s.cfg.Seed), uint64(idx)))}
	defer func() {
		if c.timer != nil {
			c.timer.Stop()
		}
	}()
	now := time.Now()

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			c.writeStatus(http.StatusRequestEntityTooLarge, detailBody("Request body too large"))
			return
		}
		s.st.abortedBeforeHeaders.Add(1)
		return
	}
	body = bytes.TrimSpace(body)
	if len(body) > 0 && !json.Valid(body) {
		var v any
		var off int64
		if se, ok := errors.AsType[*json.SyntaxError](json.Unmarshal(body, &v)); ok {
			off = max(se.Offset-1, 0)
		}
		write422(w, []valErr{{Type: "json_invalid", Loc: []any{"body", off}, Msg: "JSON decode error",
			Input: json.RawMessage(`{}`), Ctx: map[string]any{"error": "Expecting value"}}})
		s.st.countStatus(http.StatusUnprocessableEntity)
		return
	}

	prefix, quota, detail := s.authenticate(r, now)
	if detail != "" {
		c.writeStatus(http.StatusUnauthorized, detailBody(detail))
		return
	}

	query, threadID, hasThread, verrs := parseChatBody(body)
	if len(verrs) > 0 {
		write422(w, verrs)
		s.st.countStatus(http.StatusUnprocessableEntity)
		return
	}
	if !hasThread { // NULL primary key insert fails in the real server
		c.write500()
		return
	}

	// Draw the header-phase randomness before the thread step so the
	// creating request can publish when its pre-header phase ends.
	hj, nj := c.rng.Float64(), c.rng.Float64()
	slow := c.roll(s.cfg.SlowHeadersRate)
	headerDelay := func(k kind) time.Duration {
		pr := s.profile(k)
		d := pr.HeaderDelay + time.Duration(hj*float64(pr.HeaderJitter))
		if slow {
			d += s.cfg.SlowHeadersDelay
		}
		return d
	}
	naming := time.Duration(0)
	if s.cfg.Fixed == nil {
		naming = s.cfg.NamingDelay + time.Duration(nj*float64(s.cfg.NamingJitter))
	}
	k, ok := s.known[query]
	if !ok {
		k = classify(query)
	}
	delay := s.scale(headerDelay(k) + naming)

	res, evicted := s.threads.acquire(threadID, prefix, now, now.Add(delay))
	if evicted > 0 {
		s.st.threadsEvicted.Add(int64(evicted))
	}
	switch res {
	case threadConflict:
		s.st.conf.Add(1)
		c.write500()
		return
	case threadContinued:
		k = kindFollowUp
		delay = s.scale(headerDelay(k))
		s.st.threadsContinued.Add(1)
	default:
		s.st.threadsCreated.Add(1)
		if naming > 0 {
			s.st.namingDelays.Add(1)
		}
	}
	s.st.kind[k].Add(1)
	used := s.quota.inc(prefix, quota, now)
	inject500 := c.roll(s.cfg.HTTP500Rate)
	if slow {
		s.st.slowHeaders.Add(1)
	}
	s.st.headerDelay.observe(delay)

	// Sleep until arrival+delay so parsing and auth time is not added on top.
	if err := c.sleep(time.Until(now.Add(delay))); err != nil {
		s.st.abortedBeforeHeaders.Add(1)
		if errors.Is(err, errStopping) {
			panic(http.ErrAbortHandler)
		}
		return
	}
	switch {
	case used > int64(quota):
		c.writeStatus(http.StatusTooManyRequests,
			detailBody("Daily free limit of "+strconv.Itoa(quota)+" exceeded; please try again tomorrow."))
		return
	case inject500:
		s.st.injected500.Add(1)
		c.write500()
		return
	}
	c.stream(k, used, quota, now.Add(delay))
}

// parseChatBody validates the ChatRequest fields the fake uses, producing
// pydantic-shaped errors in field order.
func parseChatBody(body []byte) (query, threadID string, hasThread bool, errs []valErr) {
	if len(body) == 0 || string(body) == "null" {
		return "", "", false, []valErr{{Type: "missing", Loc: []any{"body"}, Msg: "Field required", Input: json.RawMessage("null")}}
	}
	var fields map[string]json.RawMessage
	if body[0] != '{' || json.Unmarshal(body, &fields) != nil {
		return "", "", false, []valErr{{Type: "model_attributes_type", Loc: []any{"body"},
			Msg: "Input should be a valid dictionary or object to extract fields from", Input: body}}
	}
	strField := func(name string, required bool) (string, bool) {
		raw, ok := fields[name]
		switch {
		case !ok && required:
			errs = append(errs, valErr{Type: "missing", Loc: []any{"body", name}, Msg: "Field required", Input: body})
			return "", false
		case !ok || (!required && string(raw) == "null"):
			return "", false
		case raw[0] != '"':
			errs = append(errs, valErr{Type: "string_type", Loc: []any{"body", name}, Msg: "Input should be a valid string", Input: raw})
			return "", false
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			errs = append(errs, valErr{Type: "string_type", Loc: []any{"body", name}, Msg: "Input should be a valid string", Input: raw})
			return "", false
		}
		return v, true
	}
	query, _ = strField("query", true)
	threadID, hasThread = strField("thread_id", false)
	if ff, ok := strField("ff", false); ok {
		const pattern = "^[a-z0-9][a-z0-9-]*$"
		switch {
		case !validFF(ff):
			errs = append(errs, valErr{Type: "string_pattern_mismatch", Loc: []any{"body", "ff"},
				Msg: "String should match pattern '" + pattern + "'", Input: fields["ff"], Ctx: map[string]any{"pattern": pattern}})
		case utf8.RuneCountInString(ff) > 64:
			errs = append(errs, valErr{Type: "string_too_long", Loc: []any{"body", "ff"},
				Msg: "String should have at most 64 characters", Input: fields["ff"], Ctx: map[string]any{"max_length": 64}})
		}
	}
	return query, threadID, hasThread, errs
}

func validFF(s string) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		ok := ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' && i > 0
		if !ok {
			return false
		}
	}
	return s != ""
}

// classify picks quick or analysis for a new thread (see package doc).
func classify(q string) kind {
	if utf8.RuneCountInString(q) > 90 {
		return kindAnalysis
	}
	lq := strings.ToLower(q)
	for _, w := range []string{"compar", "analy", "trend", "correlat"} {
		if strings.Contains(lq, w) {
			return kindAnalysis
		}
	}
	if hasYearRange(lq) {
		return kindAnalysis
	}
	return kindQuick
}

// hasYearRange reports two years (1900–2099) joined by a range word or
// dash, as in "2015-2023", "from 2019 to 2023" or "between 2010 and 2020".
func hasYearRange(lq string) bool {
	prevEnd := -1
	for i := 0; i+4 <= len(lq); i++ {
		if !isYearAt(lq, i) {
			continue
		}
		if prevEnd >= 0 {
			switch strings.TrimSpace(lq[prevEnd:i]) {
			case "-", "–", "—", "to", "through", "thru", "until", "and", "till":
				return true
			}
		}
		prevEnd = i + 4
		i += 3
	}
	return false
}

func isYearAt(s string, i int) bool {
	isDigit := func(j int) bool { return j >= 0 && j < len(s) && s[j] >= '0' && s[j] <= '9' }
	if isDigit(i-1) || isDigit(i+4) {
		return false
	}
	for j := i; j < i+4; j++ {
		if !isDigit(j) {
			return false
		}
	}
	return s[i:i+2] == "19" || s[i:i+2] == "20"
}

// stream writes the 200 response. Lines are precomputed and shared; only
// trace_info is built per request, in a pooled buffer.
func (c *chatReq) stream(k kind, used int64, quota int, headerAt time.Time) {
	s, st := c.s, &c.s.st
	p := s.profile(k)
	n := p.Lines
	if p.LinesJitter > 0 {
		n += c.rng.IntN(p.LinesJitter + 1)
	}
	// n counts trace_info; NoTraceInfo drops that line rather than replacing
	// it, but a stream always has at least one model line.
	content, total := n-1, n
	if s.cfg.NoTraceInfo {
		content = max(n-1, 1)
		total = content
	}

	// Fault plan: positions are line indexes; -1 = none.
	truncateAt, fatalAt, nonFatalAt, toolErrAt := -1, -1, -1, -1
	if c.roll(s.cfg.TruncateRate) {
		truncateAt = c.rng.IntN(total + 1) // total = after the last line
	} else if c.roll(s.cfg.FatalErrorRate) && content > 0 {
		fatalAt = c.rng.IntN(content)
	}
	limit := content
	if fatalAt >= 0 {
		limit = fatalAt
	}
	if c.roll(s.cfg.NonFatalErrorRate) && limit > 0 {
		nonFatalAt = c.rng.IntN(limit)
	}
	if nt := numToolLines(content); c.roll(s.cfg.ToolErrorRate) && nt > 0 {
		toolErrAt = toolLineIndex(content, 1+c.rng.IntN(nt))
	}

	h := c.w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	// A stream is always chunked, as Zeno's: net/http would otherwise give a
	// small body written before any flush a Content-Length.
	h.Set("Transfer-Encoding", "chunked")
	h.Set("X-Prompts-Used", strconv.FormatInt(used, 10))
	h.Set("X-Prompts-Quota", strconv.Itoa(quota))
	c.w.WriteHeader(http.StatusOK)
	st.countStatus(http.StatusOK)
	st.started.Add(1)
	st.streamsKind[k].Add(1)
	// Output is flushed only before a wait and before an abort: whatever is
	// due goes out at once, and lines due together (a zero gap, as at
	// --time-scale 0) share one chunk and one write, as a buffered streaming
	// server sends them. A flush per line made the server, not the client,
	// the bottleneck of a throughput benchmark: five writes per three-line
	// stream.
	rc := http.NewResponseController(c.w)
	unflushed := true // the status line and headers
	flush := func() bool {
		unflushed = false
		if rc.Flush() != nil { // the client is gone
			st.gone.Add(1)
			return false
		}
		return true
	}

	var buf *[]byte
	defer func() {
		if buf != nil {
			s.bufs.Put(buf)
		}
	}()
	// Lines are scheduled on deadlines so timer wake-up latency does not
	// accumulate; a write slowed by the client (backpressure) moves the base.
	deadline := headerAt
	for i := 0; i <= total; i++ {
		if i < total {
			gap := s.scale(p.Gap + c.jitter(p.GapJitter))
			st.gap.observe(gap)
			if now := time.Now(); now.Sub(deadline) > 5*time.Millisecond {
				deadline = now
			}
			deadline = deadline.Add(gap)
			wait := time.Until(deadline)
			if wait > 0 && unflushed {
				if !flush() {
					return
				}
				wait = time.Until(deadline) // the flush's time is not added
			}
			if err := c.sleep(wait); err != nil {
				if errors.Is(err, errStopping) {
					// The abort drops buffered output; send it first.
					if unflushed && !flush() {
						return
					}
					st.shutdown.Add(1)
					panic(http.ErrAbortHandler)
				}
				st.gone.Add(1)
				return
			}
		}
		if i == truncateAt {
			// Abort without the terminating chunk: the client reads
			// io.ErrUnexpectedEOF, like the real pre-try exceptions. The
			// abort drops buffered output, so what was written goes first.
			if unflushed && !flush() {
				return
			}
			st.truncated.Add(1)
			panic(http.ErrAbortHandler)
		}
		if i == total {
			break
		}
		var line []byte
		var nd node
		switch {
		case i == content: // only reached when trace_info is on
			buf = s.bufs.Get().(*[]byte)
			var hex [32]byte
			appendHex64(appendHex64(hex[:0], c.rng.Uint64()), c.rng.Uint64())
			*buf = appendTraceInfo((*buf)[:0], hex[:])
			line, nd = *buf, nodeTraceInfo
		case i == fatalAt:
			line, nd = s.pay.fatal, nodeError
		case i == nonFatalAt:
			line, nd = s.pay.nonFatal, nodeError
			st.nonFatalLines.Add(1)
		case i == toolErrAt:
			back := content - 1 - i
			nd, line = nodeTools, s.pay.toolError[min((back+1)/2-1, len(s.pay.toolError)-1)]
			st.toolErrLines.Add(1)
		default:
			nd, line = s.pay.contentLine(k, content, i)
		}
		wn, err := c.w.Write(line)
		st.bytesSent.Add(int64(wn))
		unflushed = true
		if err != nil {
			st.gone.Add(1)
			return
		}
		st.linesSent.Add(1)
		st.linesByNode[nd].Add(1)
		if i == fatalAt {
			st.fatal.Add(1)
			return
		}
	}
	st.completed.Add(1)
}

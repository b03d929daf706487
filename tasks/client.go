package tasks

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zenoload/zenoload/redact"
	"github.com/zenoload/zenoload/tasks/h1"
)

// Client defaults.
const (
	DefaultMaxIdleConns = h1.DefaultMaxIdle
	DefaultDialTimeout  = h1.DefaultDialTimeout
	DefaultTimeout      = 600 * time.Second
	// DefaultMaxLineBytes is far above the largest real line (a
	// generate_insights update is hundreds of KB) yet bounds memory per stream.
	DefaultMaxLineBytes = 16 << 20
)

// errorBodyLimit bounds how much of a non-200 body is read for its detail.
const errorBodyLimit = 4 << 10

// ClientConfig configures a Client. Zero fields take the defaults above.
type ClientConfig struct {
	MaxIdleConns int           // keep-alive pool size; >= concurrent users
	DialTimeout  time.Duration // TCP connect (and TLS handshake) limit
	Timeout      time.Duration // whole request, from sending to the end of the body
	MaxLineBytes int           // longest accepted NDJSON line, excluding the newline
	Redactor     *redact.Redactor
	TLS          *tls.Config // custom TLS (tests, private CAs); nil = system roots
}

// Client posts chat requests and measures their NDJSON streams. It speaks
// HTTP/1.1 through tasks/h1 (one connection per in-flight stream, like the
// Python suite did; the goroutine that sends a request also reads its
// response) and never follows redirects: a 3xx is reported as such. Safe for
// concurrent use.
type Client struct {
	cfg     ClientConfig
	tr      *h1.Transport
	targets sync.Map  // base URL → *h1.Target
	readers sync.Pool // *bufio.Reader, 4 KiB each: memory matters at 10k streams
	bufs    sync.Pool // *scratch
}

// NewClient builds a client tuned for many long streams.
func NewClient(cfg ClientConfig) *Client {
	// MaxIdleConns and DialTimeout are defaulted by h1.New.
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxLineBytes <= 0 {
		cfg.MaxLineBytes = DefaultMaxLineBytes
	}
	return &Client{
		cfg: cfg,
		tr: h1.New(h1.Config{DialTimeout: cfg.DialTimeout, TLS: cfg.TLS, MaxIdle: cfg.MaxIdleConns,
			// HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as net/http reads them.
			Proxy: func(u *url.URL) (*url.URL, error) { return http.ProxyFromEnvironment(&http.Request{URL: u}) }}),
	}
}

// Timeout is the configured total per-request timeout.
func (c *Client) Timeout() time.Duration { return c.cfg.Timeout }

// CloseIdleConnections closes idle keep-alive connections.
func (c *Client) CloseIdleConnections() { c.tr.CloseIdle() }

// target parses a base URL once.
func (c *Client) target(base string) (*h1.Target, error) {
	if tg, ok := c.targets.Load(base); ok {
		return tg.(*h1.Target), nil
	}
	tg, err := c.tr.ParseTarget(base)
	if err != nil {
		return nil, err
	}
	c.targets.Store(base, tg)
	return tg, nil
}

// ChatRequest is the JSON body of POST /api/chat. The server requires
// thread_id; reusing one continues that conversation.
type ChatRequest struct {
	Query    string `json:"query"`
	ThreadID string `json:"thread_id"`
}

// Outcome classifies a request.
type Outcome int

const (
	OK          Outcome = iota // 200 and a complete stream (non-fatal error lines possible)
	Canceled                   // the caller's context ended: not a result, never recorded
	HTTPStatus                 // non-200 status
	StreamFatal                // a fatal error line
	Timeout                    // our per-request timeout fired
	LineTooLong                // a line exceeded MaxLineBytes
	Truncated                  // the body failed after the headers
	InvalidLine                // a line that is not a {"node":...} JSON object
	EmptyStream                // 200 with no lines at all
	ConnError                  // no response: refused, reset, DNS, TLS...
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Canceled:
		return "canceled"
	case HTTPStatus:
		return "http_status"
	case StreamFatal:
		return "stream_fatal"
	case Timeout:
		return "timeout"
	case LineTooLong:
		return "line_too_long"
	case Truncated:
		return "truncated"
	case InvalidLine:
		return "invalid_line"
	case EmptyStream:
		return "empty_stream"
	case ConnError:
		return "connection_error"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// NodeCounts counts lines by node kind (bounded: unknown kinds go to Other).
type NodeCounts struct {
	Model, Tools, TraceInfo, Error, Other int
}

func (n *NodeCounts) add(node string) {
	switch node {
	case "model":
		n.Model++
	case "tools":
		n.Tools++
	case "trace_info":
		n.TraceInfo++
	case "error":
		n.Error++
	default:
		n.Other++
	}
}

// Result is one measured request. Durations use the monotonic clock and are
// measured from just before the request is sent.
type Result struct {
	Outcome Outcome
	Status  int    // 0 when no response arrived
	Message string // stable, short, redacted failure text ("" for OK)
	Err     error  // underlying error with details, for debug logs only

	GotHeaders   bool
	GotFirstLine bool
	TTFB         time.Duration // to response headers
	FirstLine    time.Duration // to the first complete line
	Total        time.Duration // to the end of the body (or the failure)

	Bytes int64 // body bytes read, newlines included
	Lines int   // non-empty lines
	Nodes NodeCounts

	NonFatalErrors int    // error lines that were not fatal
	NonFatalType   string // error_type (or type) of the first one

	HasQuota     bool // X-Prompts-Used was present and numeric
	PromptsUsed  int
	PromptsQuota int
}

// Failure is the Locust failure text, "" for success. Non-fatal error lines
// fail the request only when failOnNonFatal is set.
func (r *Result) Failure(failOnNonFatal bool) string {
	if r.Outcome == OK {
		if failOnNonFatal && r.NonFatalErrors > 0 {
			return "stream error (non-fatal): " + r.NonFatalType
		}
		return ""
	}
	return r.Message
}

// Chat sends one request and reads its stream to the end. It never returns a
// nil Result; when ctx ends first the Outcome is Canceled.
func (c *Client) Chat(ctx context.Context, baseURL string, tok Token, req ChatRequest) *Result {
	res := c.chat(ctx, baseURL, tok, req)
	// One exit for every text that may echo server input: anything the
	// server sends back can contain the key.
	clean := func(s string) string { return c.cfg.Redactor.String(tok.redactIn(s)) }
	res.Message = clean(res.Message)
	res.NonFatalType = clean(res.NonFatalType)
	if res.Err != nil {
		if s := res.Err.Error(); clean(s) != s {
			res.Err = errors.New(clean(s))
		}
	}
	return res
}

func (c *Client) chat(ctx context.Context, baseURL string, tok Token, req ChatRequest) *Result {
	res := &Result{}
	if err := ctx.Err(); err != nil {
		res.Outcome, res.Err = Canceled, err
		return res
	}
	tg, err := c.target(baseURL)
	if err != nil {
		c.fail(res, ConnError, "connection error: invalid url", err)
		return res
	}
	sc, _ := c.bufs.Get().(*scratch)
	if sc == nil {
		sc = new(scratch)
	}
	sc.hdr = appendChatHeader(sc.hdr[:0], tok)
	sc.body = req.appendJSON(sc.body[:0])

	start := time.Now()
	deadline := start.Add(c.cfg.Timeout)
	resp, err := c.tr.Do(ctx, tg, &h1.Request{
		Method: "POST", Path: tg.Path("/api/chat"), Header: sc.hdr, Body: sc.body, Deadline: deadline,
	})
	c.bufs.Put(sc) // Do has sent them: not held for the length of a stream
	if err != nil {
		res.Total = time.Since(start)
		c.transportFailure(ctx, deadline, res, err, false)
		return res
	}
	res.TTFB = resp.HeaderAt.Sub(start)
	res.GotHeaders = true
	res.Status = resp.Status
	// A body not read to its end (a failure, a large error page) closes the
	// connection rather than waiting on the network to drain it.
	defer resp.Close()

	if resp.Status != http.StatusOK {
		c.readErrorBody(ctx, resp, start, res, tok)
		return res
	}
	if used, ok := resp.HeaderInt("X-Prompts-Used"); ok {
		res.HasQuota, res.PromptsUsed = true, used
		res.PromptsQuota, _ = resp.HeaderInt("X-Prompts-Quota")
	}
	c.readStream(ctx, deadline, resp, start, res, func(s string) string { return c.cfg.Redactor.String(tok.redactIn(s)) })
	return res
}

// scratch holds one request's header lines and body; Do has written both
// when it returns, so they go back to the pool then.
type scratch struct{ hdr, body []byte }

// appendChatHeader appends the request's header lines. Token parts are
// validated by ParseToken, so they cannot inject a line break.
func appendChatHeader(b []byte, tok Token) []byte {
	b = append(b, "Authorization: Bearer "...)
	b = tok.appendValue(b)
	return append(b, "\r\nContent-Type: application/json\r\nAccept: application/x-ndjson\r\nUser-Agent: zenoload\r\n"...)
}

// errLineTooLong aborts a stream whose line exceeds MaxLineBytes.
var errLineTooLong = errors.New("line too long")

func (c *Client) fail(res *Result, o Outcome, msg string, err error) {
	res.Outcome, res.Message, res.Err = o, msg, err
}

// transportFailure classifies an error from Do or from reading the body.
func (c *Client) transportFailure(parent context.Context, deadline time.Time, res *Result, err error, midBody bool) {
	switch {
	case parent.Err() != nil:
		res.Outcome, res.Err = Canceled, err
	case errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(deadline):
		c.fail(res, Timeout, "timeout after "+formatSeconds(c.cfg.Timeout), err)
	case midBody:
		c.fail(res, Truncated, "stream truncated", err)
	default:
		c.fail(res, ConnError, "connection error: "+connCategory(err), err)
	}
}

func (c *Client) readErrorBody(parent context.Context, resp *h1.Response, start time.Time, res *Result, tok Token) {
	buf, err := io.ReadAll(io.LimitReader(resp, errorBodyLimit))
	res.Bytes = int64(len(buf))
	res.Total = time.Since(start)
	if err != nil && parent.Err() != nil {
		res.Outcome, res.Err = Canceled, err
		return
	}
	// Redact before sanitising: truncation could cut a token in half.
	detail := c.cfg.Redactor.String(tok.redactIn(errorDetail(buf)))
	c.fail(res, HTTPStatus, statusMessage(resp.Status, detail), nil)
	res.Err = fmt.Errorf("HTTP %d: %s", resp.Status, c.cfg.Redactor.String(tok.redactIn(string(bytes.TrimSpace(buf)))))
}

// streamState tracks the classification while lines arrive.
type streamState struct {
	fatalType    string
	invalidLines int
	clean        func(string) string // redacts server text before truncation
}

// readStream reads the NDJSON body. Line and end times are the arrival
// times of their bytes (h1.Response.Arrival), not when this goroutine got
// to them.
func (c *Client) readStream(parent context.Context, deadline time.Time, body *h1.Response, start time.Time, res *Result, clean func(string) string) {
	br, _ := c.readers.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(body, 4<<10)
	} else {
		br.Reset(body)
	}
	defer func() {
		br.Reset(nil)
		c.readers.Put(br)
	}()

	st := streamState{clean: clean}
	var acc []byte
	for {
		line, err := readLine(br, &acc, c.cfg.MaxLineBytes, &res.Bytes)
		if len(line) > 0 && (err == nil || errors.Is(err, io.EOF)) {
			c.handleLine(bytes.TrimSpace(line), body, start, res, &st)
		}
		if err == nil {
			continue
		}
		res.Total = time.Since(start)
		switch {
		case errors.Is(err, io.EOF):
			res.Total = body.Arrival().Sub(start)
			c.finish(res, &st)
		case st.fatalType != "" && parent.Err() == nil:
			c.fail(res, StreamFatal, "stream error: "+st.fatalType, err)
		case errors.Is(err, errLineTooLong):
			c.fail(res, LineTooLong, "line too long", err)
		default:
			c.transportFailure(parent, deadline, res, err, true)
		}
		return
	}
}

// readLine returns the next line (with its newline) using at most max bytes
// of memory beyond the reader's buffer. acc is reused across lines.
func readLine(br *bufio.Reader, acc *[]byte, max int, n *int64) ([]byte, error) {
	*acc = (*acc)[:0]
	for {
		frag, err := br.ReadSlice('\n')
		*n += int64(len(frag))
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(*acc)+len(frag) > max+2 { // +2: room for "\r\n"
				return nil, errLineTooLong
			}
			*acc = append(*acc, frag...)
			continue
		}
		line := frag
		if len(*acc) > 0 {
			*acc = append(*acc, frag...)
			line = *acc
		}
		if len(bytes.TrimRight(line, "\r\n")) > max {
			return nil, errLineTooLong
		}
		return line, err
	}
}

func (c *Client) handleLine(line []byte, body *h1.Response, start time.Time, res *Result, st *streamState) {
	if len(line) == 0 {
		return
	}
	res.Lines++
	if !res.GotFirstLine {
		res.GotFirstLine = true
		res.FirstLine = body.Arrival().Sub(start)
	}
	if node, ok := fastNode(line); ok && node != "error" {
		res.Nodes.add(node)
		return
	}
	var head struct {
		Node   string          `json:"node"`
		Update json.RawMessage `json:"update"`
	}
	// Decoding Update as RawMessage skips building the (large) string.
	if err := json.Unmarshal(line, &head); err != nil || head.Node == "" {
		st.invalidLines++
		res.Nodes.add("")
		return
	}
	res.Nodes.add(head.Node)
	if head.Node != "error" {
		return
	}
	fatal, kind := parseErrorUpdate(head.Update, st.clean)
	if fatal {
		if st.fatalType == "" {
			st.fatalType = kind
		}
		return
	}
	res.NonFatalErrors++
	if res.NonFatalType == "" {
		res.NonFatalType = kind
	}
}

// fastNode reads the node name of a line shaped like Zeno's json.dumps
// output, {"node": "<name>", ...}, without decoding the (kilobytes of)
// update: at 10k streams full decoding was 42% of the client's CPU. Lines
// of any other shape, and error lines, take the full decode.
func fastNode(line []byte) (string, bool) {
	rest, ok := bytes.CutPrefix(line, []byte(`{"node":`))
	if !ok || line[len(line)-1] != '}' {
		return "", false
	}
	rest = bytes.TrimLeft(rest, " ")
	if len(rest) == 0 || rest[0] != '"' {
		return "", false
	}
	end := bytes.IndexByte(rest[1:], '"')
	if end <= 0 {
		return "", false
	}
	name := rest[1 : 1+end]
	if bytes.IndexByte(name, '\\') >= 0 {
		return "", false
	}
	after := bytes.TrimLeft(rest[2+end:], " ")
	if len(after) == 0 || after[0] != ',' {
		return "", false
	}
	return string(name), true
}

// parseErrorUpdate reads an error line's update: a JSON string holding
// {"error", "message", "error_type", "type", "fatal"?}. Unparseable updates
// count as fatal with kind "unknown": we cannot tell the stream survived.
func parseErrorUpdate(raw json.RawMessage, clean func(string) string) (fatal bool, kind string) {
	doc := []byte(raw)
	var s string
	if json.Unmarshal(raw, &s) == nil {
		doc = []byte(s)
	}
	var e struct {
		Type      string `json:"type"`
		ErrorType string `json:"error_type"`
		Fatal     any    `json:"fatal"`
	}
	if json.Unmarshal(doc, &e) != nil {
		return true, "unknown"
	}
	fatal = e.Fatal == true || e.Fatal == "true" || e.Type == "stream_initialization_error"
	kind = shortKind(clean(e.ErrorType))
	if kind == "" {
		kind = shortKind(clean(e.Type))
	}
	if kind == "" {
		kind = "unknown"
	}
	return fatal, kind
}

// shortKind keeps an identifier-like label so the failures table stays small.
func shortKind(s string) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(s) {
		if b.Len() >= 40 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			b.WriteRune(r)
		}
	}
	return b.String()
}

func (c *Client) finish(res *Result, st *streamState) {
	switch {
	case st.fatalType != "":
		c.fail(res, StreamFatal, "stream error: "+st.fatalType, nil)
	case st.invalidLines > 0:
		c.fail(res, InvalidLine, "stream error: invalid line", nil)
	case res.Lines == 0:
		c.fail(res, EmptyStream, "empty stream", nil)
	default:
		res.Outcome = OK
	}
}

// formatSeconds renders 600s as "600s" and 250ms as "0.25s".
func formatSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

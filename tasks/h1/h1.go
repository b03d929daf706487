// Package h1 is a small HTTP/1.1 client made for load generation: one
// request at a time per connection, the response body streamed to the
// caller, and all the work done on the caller's goroutine.
//
// net/http runs two goroutines per connection (readLoop, writeLoop) and
// hands every response across channels; for a load generator holding
// thousands of streams that was 42 % of the client's CPU (see bench/README.md),
// and the channel hop put scheduler delay inside the measured time to
// headers. Here the goroutine that sends the request reads the response
// itself, so a timestamp taken after the read is as close to the wire as
// user space gets.
//
// It speaks only what a streaming chat client needs: keep-alive, chunked and
// Content-Length bodies, read-to-close bodies, 1xx responses skipped, TLS
// with ALPN "http/1.1". It never follows redirects and adds no compression.
package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/zenoload/zenoload/internal/sockio"
)

// Defaults for zero Config fields.
const (
	DefaultDialTimeout = 10 * time.Second
	DefaultMaxIdle     = 10000
	// DefaultIdleTimeout is below common server keep-alive timeouts
	// (uvicorn 5 s, nginx 75 s, ALB 60 s) only where it must be: a stale
	// connection is also detected at checkout, see alive.
	DefaultIdleTimeout = 90 * time.Second
	// DefaultReadBuffer holds a whole short response and a typical NDJSON
	// line; longer lines are accumulated by the caller. Memory matters at
	// 10,000 streams.
	DefaultReadBuffer = 4 << 10
	// maxHeaderBytes bounds the response header block.
	maxHeaderBytes = 64 << 10
)

// Config configures a Transport. Zero fields take the defaults.
type Config struct {
	DialTimeout time.Duration // TCP connect plus TLS handshake
	TLS         *tls.Config   // base TLS config for https targets (cloned per host)
	MaxIdle     int           // idle keep-alive connections kept, all hosts together
	IdleTimeout time.Duration // an idle connection older than this is closed, not reused
	ReadBuffer  int           // per-connection read buffer
	// Proxy picks an HTTP proxy for a target URL (nil result: direct), as
	// http.ProxyFromEnvironment does. https targets are tunnelled with
	// CONNECT; http targets are sent to the proxy in absolute form.
	Proxy func(*url.URL) (*url.URL, error)
}

// Errors a caller may want to tell apart.
var (
	// ErrMalformed is a response that is not valid HTTP/1.1 framing.
	ErrMalformed = errors.New("malformed HTTP response")
	// ErrHeaderTooLarge is a header block over 64 KiB.
	ErrHeaderTooLarge = errors.New("response header too large")
)

// Transport keeps idle connections per target and opens new ones. It is safe
// for concurrent use; each Conn it hands out belongs to one goroutine.
type Transport struct {
	cfg    Config
	dialer net.Dialer

	mu    sync.Mutex
	idle  map[string][]*conn // LIFO per target key
	nidle int
}

// New returns a Transport.
func New(cfg Config) *Transport {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = DefaultMaxIdle
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.ReadBuffer <= 0 {
		cfg.ReadBuffer = DefaultReadBuffer
	}
	return &Transport{
		cfg:    cfg,
		dialer: net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second},
		idle:   map[string][]*conn{},
	}
}

// Target is a parsed base URL: where to connect and what to send as Host.
type Target struct {
	key        string // scheme://addr, the idle-pool key
	tls        bool
	addr       string // host:port to dial
	host       string // Host header
	serverName string // TLS SNI and verification name
	prefix     string // path prefix of the base URL, without trailing "/"
	tlsConfig  *tls.Config
	proxyAddr  string // host:port of the HTTP proxy, "" for direct
	proxyAuth  string // "Proxy-Authorization: ...\r\n" or ""
}

// ParseTarget parses an http(s) base URL such as https://api.example.org or
// http://127.0.0.1:8000/prefix.
func (t *Transport) ParseTarget(base string) (*Target, error) {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil {
		// url.Error quotes the whole URL, credentials included.
		return nil, errors.New("parse target: invalid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("parse target: want http(s)://host[:port][/path], got scheme %q host %q", u.Scheme, u.Hostname())
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	tg := &Target{
		tls:        u.Scheme == "https",
		addr:       net.JoinHostPort(u.Hostname(), port),
		host:       u.Host,
		serverName: u.Hostname(),
		prefix:     strings.TrimRight(u.EscapedPath(), "/"),
	}
	tg.key = u.Scheme + "://" + tg.addr
	if t.cfg.Proxy != nil {
		p, err := t.cfg.Proxy(u)
		if err != nil {
			// The error quotes the raw proxy setting, password included.
			return nil, errors.New("proxy: invalid proxy URL in HTTPS_PROXY/HTTP_PROXY")
		}
		if p != nil {
			if p.Scheme != "http" || p.Host == "" {
				return nil, fmt.Errorf("proxy: only http:// proxies are supported, got scheme %q", p.Scheme)
			}
			pport := p.Port()
			if pport == "" {
				pport = "80"
			}
			tg.proxyAddr = net.JoinHostPort(p.Hostname(), pport)
			if p.User != nil {
				pw, _ := p.User.Password()
				cred := base64.StdEncoding.EncodeToString([]byte(p.User.Username() + ":" + pw))
				tg.proxyAuth = "Proxy-Authorization: Basic " + cred + "\r\n"
			}
			tg.key = "proxy " + tg.proxyAddr + " " + tg.key
		}
	}
	if tg.tls {
		c := &tls.Config{}
		if t.cfg.TLS != nil {
			c = t.cfg.TLS.Clone()
		}
		if c.ServerName == "" {
			c.ServerName = tg.serverName
		}
		c.NextProtos = []string{"http/1.1"}
		tg.tlsConfig = c
	}
	return tg, nil
}

// Path is the target's path prefix joined with p (which starts with "/").
func (tg *Target) Path(p string) string { return tg.prefix + p }

// Request is one request. Header holds extra header lines, each
// "Name: value\r\n", already validated by the caller (no CR or LF inside).
type Request struct {
	Method   string
	Path     string // absolute path, from Target.Path
	Header   []byte
	Body     []byte
	Deadline time.Time // whole request: connect, send, headers and body
}

// Response is a response whose body is still on the wire. The caller must
// Close it; a fully read body returns the connection to the pool.
type Response struct {
	Status   int
	Proto    string    // "HTTP/1.1"
	HeaderAt time.Time // when the header block was complete
	Reused   bool      // the connection had served a request before

	c *conn
	// body framing
	chunked   bool
	remaining int64 // Content-Length left, or bytes left in the current chunk
	untilEOF  bool  // no framing: the body ends when the server closes
	done      bool  // body fully read
	err       error // sticky read error
	keepAlive bool
	stop      func() bool // unregisters the context watcher
	closed    bool
}

// Do sends req on a pooled or new connection to tg and reads the response
// header. ctx cancellation and req.Deadline both abort it (and, later, the
// body read) with an error; the caller tells them apart with ctx.Err().
func (t *Transport) Do(ctx context.Context, tg *Target, req *Request) (*Response, error) {
	c, err := t.get(ctx, tg, req.Deadline)
	if err != nil {
		return nil, err
	}
	reused := c.used
	c.used = true
	if err := c.nc.SetDeadline(req.Deadline); err != nil {
		c.close()
		return nil, fmt.Errorf("set deadline: %w", err)
	}
	// Cancellation interrupts any blocked read or write by moving the
	// deadline into the past; the connection is then never reused.
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(aLongTimeAgo) })

	c.wbuf = appendRequest(c.wbuf[:0], tg, req)
	if err := c.send(); err != nil {
		stop()
		c.close()
		return nil, err
	}
	r := &Response{c: c, stop: stop, Reused: reused}
	if err := r.readHeader(req.Method); err != nil {
		stop()
		c.close()
		return nil, err
	}
	return r, nil
}

// aLongTimeAgo is a deadline that has always passed.
var aLongTimeAgo = time.Unix(1, 0)

func appendRequest(b []byte, tg *Target, req *Request) []byte {
	b = append(b, req.Method...)
	b = append(b, ' ')
	if tg.proxyAddr != "" && !tg.tls { // absolute form for a forward proxy
		b = append(b, "http://"...)
		b = append(b, tg.host...)
	}
	b = append(b, req.Path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, tg.host...)
	b = append(b, "\r\n"...)
	if tg.proxyAddr != "" && !tg.tls {
		b = append(b, tg.proxyAuth...)
	}
	b = append(b, req.Header...)
	if req.Body != nil || req.Method == "POST" || req.Method == "PUT" {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(req.Body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, req.Body...)
}

// readHeader reads the status line and headers, skipping 1xx responses.
func (r *Response) readHeader(method string) error {
	c := r.c
	for {
		line, err := c.readLine()
		if err != nil {
			return fmt.Errorf("read status line: %w", err)
		}
		code, proto, err := parseStatusLine(line)
		if err != nil {
			return err
		}
		r.Status, r.Proto = code, proto
		if err := c.readHeaderBlock(); err != nil {
			return err
		}
		if code >= 100 && code < 200 {
			if code == 101 {
				return fmt.Errorf("%w: unexpected 101 Switching Protocols", ErrMalformed)
			}
			continue
		}
		break
	}
	r.HeaderAt = r.Arrival()
	return r.framing(method)
}

// parseStatusLine parses "HTTP/1.x NNN reason".
func parseStatusLine(line []byte) (code int, proto string, err error) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return 0, "", fmt.Errorf("%w: bad status line", ErrMalformed)
	}
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return 0, "", fmt.Errorf("%w: bad status code", ErrMalformed)
		}
		code = code*10 + int(d-'0')
	}
	if code < 100 {
		return 0, "", fmt.Errorf("%w: bad status code", ErrMalformed)
	}
	proto = "HTTP/1.0"
	if line[7] == '1' {
		proto = "HTTP/1.1"
	}
	return code, proto, nil
}

// Arrival is when the bytes read most recently reached this host: the
// kernel's receive timestamp of the last packet in the last socket read,
// so a user goroutine that runs late (a busy or descheduled core) does not
// add its delay to the measured time. Without timestamps (race builds,
// other kernels) it is the time of the call.
func (r *Response) Arrival() time.Time {
	if s := r.c.sock; s != nil {
		// Never in the future: sockio derives it from the read's own clock.
		if rx := s.LastArrival(); !rx.IsZero() {
			return rx
		}
	}
	return time.Now()
}

// lastData is when the last bytes read arrived: the kernel's stamp, or
// the time of the read without one; zero when unknown (no raw socket), so
// that the connection is always checked before reuse.
func (r *Response) lastData() time.Time {
	if s := r.c.sock; s != nil {
		if rx := s.LastArrival(); !rx.IsZero() {
			return rx
		}
		return s.LastRead()
	}
	return time.Time{}
}

// framing decides how the body ends (RFC 9112 section 6.3), in one pass
// over the header lines that allocates nothing: it runs for every response.
func (r *Response) framing(method string) error {
	var (
		connClose, connKeepAlive bool
		teTokens                 int
		teChunked                bool // the only Transfer-Encoding token is "chunked"
		cl                       = int64(-1)
		clBad                    bool
	)
	r.c.eachField(func(name, value []byte) bool {
		switch {
		case equalFoldASCII(name, "Connection"):
			eachToken(value, func(t []byte) {
				connClose = connClose || equalFoldASCII(t, "close")
				connKeepAlive = connKeepAlive || equalFoldASCII(t, "keep-alive")
			})
		case equalFoldASCII(name, "Transfer-Encoding"):
			eachToken(value, func(t []byte) {
				teTokens++
				teChunked = teTokens == 1 && equalFoldASCII(t, "chunked")
			})
		case equalFoldASCII(name, "Content-Length"):
			// A list of equal values is one value (RFC 9110 8.6); empty
			// elements are not skipped here: "1,,1" is malformed.
			for part := range bytes.SplitSeq(value, []byte(",")) {
				m, ok := parseDigits(bytes.TrimSpace(part))
				if !ok || (cl >= 0 && m != cl) {
					clBad = true
				}
				cl = m
			}
		}
		return true
	})
	r.keepAlive = r.Proto == "HTTP/1.1" && !connClose ||
		r.Proto != "HTTP/1.1" && connKeepAlive && !connClose
	if method == "HEAD" || r.Status == 204 || r.Status == 304 {
		r.done = true
		return nil
	}
	if teTokens > 0 {
		if teTokens != 1 || !teChunked {
			return fmt.Errorf("%w: unsupported Transfer-Encoding %q", ErrMalformed, strings.Join(r.headerTokens("Transfer-Encoding"), ", "))
		}
		r.chunked = true
		r.remaining = -1 // size line not read yet
		// RFC 9112 6.1/6.3: Content-Length beside Transfer-Encoding, or
		// Transfer-Encoding in HTTP/1.0, is faulty framing: never reuse.
		if cl >= 0 || clBad || r.Proto != "HTTP/1.1" {
			r.keepAlive = false
		}
		return nil
	}
	if clBad {
		return fmt.Errorf("%w: bad Content-Length", ErrMalformed)
	}
	if cl >= 0 {
		r.remaining = cl
		r.done = cl == 0
		return nil
	}
	r.untilEOF, r.keepAlive = true, false
	return nil
}

// eachField calls fn with every header line's name and space-trimmed
// value, in order, until fn returns false.
func (c *conn) eachField(fn func(name, value []byte) bool) {
	// readHeaderBlock ends every line in c.hdr with CR LF and keeps no
	// other LF, so the vectorised IndexByte finds the line ends.
	h := c.hdr
	for len(h) > 0 {
		i := bytes.IndexByte(h, '\n')
		if i < 0 {
			i = len(h)
		}
		line := trimEOL(h[:i])
		h = h[min(i+1, len(h)):]
		if colon := bytes.IndexByte(line, ':'); colon >= 0 {
			if !fn(line[:colon], bytes.TrimSpace(line[colon+1:])) {
				return
			}
		}
	}
}

// eachToken calls fn with every non-empty, space-trimmed element of a
// comma-separated list.
func eachToken(v []byte, fn func(tok []byte)) {
	for part := range bytes.SplitSeq(v, []byte(",")) {
		if t := bytes.TrimSpace(part); len(t) > 0 {
			fn(t)
		}
	}
}

// parseDigits parses a non-empty run of ASCII digits (no sign, no spaces).
func parseDigits(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// field returns the value of the first field line named name.
func (r *Response) field(name string) (value []byte, ok bool) {
	r.c.eachField(func(k, v []byte) bool {
		if equalFoldASCII(k, name) {
			value, ok = v, true
			return false
		}
		return true
	})
	return value, ok
}

// headerTokens is the lower-cased, comma-separated list of all the named
// fields' values, repeated lines joined.
func (r *Response) headerTokens(name string) []string {
	var out []string
	r.c.eachField(func(k, v []byte) bool {
		if equalFoldASCII(k, name) {
			eachToken(v, func(t []byte) { out = append(out, strings.ToLower(string(t))) })
		}
		return true
	})
	return out
}

// Header returns the first value of the named response header ("" if
// absent).
func (r *Response) Header(name string) string {
	v, _ := r.field(name)
	return string(v)
}

// HeaderInt returns the first value of the named response header as a
// decimal integer, without allocating; ok is false if it is absent or not
// a number.
func (r *Response) HeaderInt(name string) (int, bool) {
	v, ok := r.field(name)
	if !ok {
		return 0, false
	}
	return atoi(v)
}

// atoi parses an optionally signed decimal int of up to 18 digits.
func atoi(b []byte) (int, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		b = b[1:]
	}
	n, ok := parseDigits(b)
	if neg {
		n = -n
	}
	return int(n), ok
}

// equalFoldASCII compares a header name or token with s (letters, digits,
// "-") ignoring the case of letters only.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z' {
			return false
		}
	}
	return true
}

// trimEOL drops trailing CR and LF bytes (bytes.TrimRight with a cutset
// builds the set on every call, once per header line).
func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Read reads the decoded body. It returns io.EOF at the end of a complete
// body and io.ErrUnexpectedEOF when the server closes mid-body.
func (r *Response) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	br := r.c.br
	switch {
	case r.untilEOF:
		n, err := br.Read(p)
		if errors.Is(err, io.EOF) {
			r.done = true
		} else if err != nil {
			r.err = err
		}
		return n, err
	case r.chunked:
		if r.remaining <= 0 {
			if err := r.nextChunk(); err != nil {
				r.err = err
				return 0, err
			}
			if r.done {
				return 0, io.EOF
			}
		}
	}
	if int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	n, err := br.Read(p)
	r.remaining -= int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		r.err = err
		return n, err
	}
	if r.remaining == 0 && !r.chunked {
		r.done = true
	}
	return n, nil
}

// nextChunk reads the CRLF ending the previous chunk (if any), then the
// next chunk-size line; at the last chunk it reads the trailers.
func (r *Response) nextChunk() error {
	c := r.c
	if r.remaining == 0 { // end of a data chunk
		line, err := c.readLine()
		if err != nil {
			return unexpected(err)
		}
		if len(line) != 0 {
			return fmt.Errorf("%w: missing CRLF after chunk", ErrMalformed)
		}
	}
	line, err := c.readLine()
	if err != nil {
		return unexpected(err)
	}
	if i := strings.IndexByte(string(line), ';'); i >= 0 {
		line = line[:i]
	}
	size, err := strconv.ParseUint(strings.TrimSpace(string(line)), 16, 62)
	if err != nil {
		return fmt.Errorf("%w: bad chunk size", ErrMalformed)
	}
	r.remaining = int64(size)
	if size > 0 {
		return nil
	}
	for { // trailers, then the final CRLF
		line, err := c.readLine()
		if err != nil {
			return unexpected(err)
		}
		if len(line) == 0 {
			r.done = true
			return nil
		}
	}
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Close releases the response. The connection goes back to the pool only if
// the body was read to its end, the server allows keep-alive, and the
// request was neither cancelled nor timed out.
func (r *Response) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	c := r.c
	// stop() is false when the cancel func already ran (or is running):
	// the connection's deadline may be poisoned.
	if !r.stop() || !r.done || r.err != nil || !r.keepAlive || c.br.Buffered() > 0 {
		c.close()
		return nil
	}
	c.quietSince = r.lastData()
	c.t.put(c)
	return nil
}

// conn is one connection with its buffers.
type conn struct {
	t    *Transport
	key  string
	nc   net.Conn
	raw  syscall.RawConn // the TCP socket under nc, for the liveness check
	wr   io.Writer       // nc, or the raw socket
	sock *sockio.Socket  // raw socket I/O with receive timestamps; nil without
	tls  bool
	br   *bufio.Reader
	wbuf []byte
	hdr  []byte // the last response's header lines, CRLF-separated
	used bool
	idle time.Time // when it was pooled
	// quietSince is when the last response's final bytes arrived: a close
	// by the server can only come after it.
	quietSince time.Time
}

// skipPeekWithin: a connection whose last response ended this recently is
// reused without the liveness peek (see get).
const skipPeekWithin = 250 * time.Microsecond

func (c *conn) close() { _ = c.nc.Close() }

// send writes the request in c.wbuf. On a raw socket it then waits for the
// reply before the first read, as the reply cannot be there yet; times come
// from kernel receive timestamps, so the wait is not measured.
func (c *conn) send() error {
	if c.sock == nil || c.tls {
		if _, err := c.wr.Write(c.wbuf); err != nil {
			return fmt.Errorf("write request: %w", err)
		}
		return nil
	}
	n, err := c.sock.WriteAndWait(c.wbuf)
	switch {
	case err == nil:
		return nil
	case n < len(c.wbuf):
		return fmt.Errorf("write request: %w", err)
	}
	return fmt.Errorf("read status line: %w", err)
}

// readLine returns the next line without its CR LF; longer than the read
// buffer is an error (status, header and chunk-size lines are short).
func (c *conn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrHeaderTooLarge, c.br.Size())
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readHeaderBlock copies the header lines into c.hdr, up to the empty
// line; a line may be longer than the read buffer, the block not longer
// than maxHeaderBytes.
func (c *conn) readHeaderBlock() error {
	c.hdr = c.hdr[:0]
	for {
		start := len(c.hdr)
		for {
			frag, err := c.br.ReadSlice('\n')
			if len(c.hdr)+len(frag) > maxHeaderBytes {
				return ErrHeaderTooLarge
			}
			c.hdr = append(c.hdr, frag...)
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read header: %w", unexpected(err))
			}
			break
		}
		line := trimEOL(c.hdr[start:])
		if len(line) == 0 {
			c.hdr = c.hdr[:start]
			return nil
		}
		c.hdr = append(c.hdr[:start+len(line)], '\r', '\n')
	}
}

// get returns an idle connection to tg that is still alive, or dials one.
func (t *Transport) get(ctx context.Context, tg *Target, deadline time.Time) (*conn, error) {
	for {
		c := t.popIdle(tg.key)
		if c == nil {
			break
		}
		// The peek is skipped when the last response ended under
		// skipPeekWithin ago: at zero wait it would be a quarter of the
		// system calls. The cost: a server that closes (FIN) within that
		// window without "Connection: close" is not seen before the write.
		// A full close still answers the request with a reset, which ends
		// the wait at once; only a peer that half-closes and keeps reading
		// leaves the request to its deadline. (The read after the write,
		// which used to catch that, is gone: see sockio.WriteAndWait.)
		now := time.Now()
		if now.Sub(c.idle) < t.cfg.IdleTimeout && (now.Sub(c.quietSince) < skipPeekWithin || c.alive()) {
			return c, nil
		}
		c.close()
	}
	return t.dial(ctx, tg, deadline)
}

func (t *Transport) popIdle(key string) *conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.idle[key]
	if len(l) == 0 {
		return nil
	}
	c := l[len(l)-1]
	l[len(l)-1] = nil
	t.idle[key] = l[:len(l)-1]
	t.nidle--
	return c
}

func (t *Transport) put(c *conn) {
	// The request's deadline would make the liveness peek fail later.
	if c.nc.SetDeadline(time.Time{}) != nil {
		c.close()
		return
	}
	c.idle = time.Now()
	var expired []*conn
	t.mu.Lock()
	l := t.idle[c.key]
	// The list is LIFO, so the oldest are at the bottom: reap them here, as
	// no background goroutine does.
	k := 0
	for k < len(l) && c.idle.Sub(l[k].idle) >= t.cfg.IdleTimeout {
		k++
	}
	if k > 0 {
		expired = append(expired, l[:k]...)
		n := copy(l, l[k:])
		clear(l[n:])
		l = l[:n]
		t.nidle -= k
	}
	full := t.nidle >= t.cfg.MaxIdle
	if !full {
		l = append(l, c)
		t.nidle++
	}
	t.idle[c.key] = l
	t.mu.Unlock()
	if full {
		c.close()
	}
	for _, x := range expired {
		x.close()
	}
}

// CloseIdle closes every idle connection.
func (t *Transport) CloseIdle() {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.nidle = map[string][]*conn{}, 0
	t.mu.Unlock()
	for _, l := range idle {
		for _, c := range l {
			c.close()
		}
	}
}

// alive reports whether an idle connection can carry a request: the server
// has not closed it (FIN or RST) and, for plain HTTP, sent nothing
// unsolicited. Servers close idle keep-alive connections (uvicorn after
// 5 s), and net/http would not resend a POST that raced such a close, so
// this is checked before every reuse with one non-blocking peek.
func (c *conn) alive() bool {
	if c.raw == nil {
		return true
	}
	ok := true
	var buf [1]byte
	err := c.raw.Read(func(fd uintptr) bool {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == syscall.EAGAIN || errno == syscall.EINTR:
			// nothing pending: alive
		case errno != 0, n == 0:
			ok = false // reset, or EOF
		default:
			// Pending bytes: for plain HTTP nothing may come unasked. For
			// TLS they may be a session ticket (fine) or the close_notify a
			// server sends before closing an idle connection, which looks
			// the same; the TCP state tells: a FIN leaves it in CLOSE_WAIT.
			ok = c.tls && tcpEstablished(fd)
		}
		return true
	})
	return ok && err == nil
}

// tcpEstablished reads tcp_info.tcpi_state (its first byte).
func tcpEstablished(fd uintptr) bool {
	const tcpEstablishedState = 1
	var info [256]byte
	l := uint32(len(info))
	_, _, errno := syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&l)), 0)
	return errno == 0 && l > 0 && info[0] == tcpEstablishedState
}

func (t *Transport) dial(ctx context.Context, tg *Target, deadline time.Time) (*conn, error) {
	// One budget for connect, CONNECT and the TLS handshake.
	budget := time.Now().Add(t.cfg.DialTimeout)
	if !deadline.IsZero() && deadline.Before(budget) {
		budget = deadline
	}
	dctx, cancel := context.WithDeadline(ctx, budget)
	defer cancel()
	addr := tg.addr
	if tg.proxyAddr != "" {
		addr = tg.proxyAddr
	}
	nc, err := t.dialer.DialContext(dctx, "tcp", addr)
	if err != nil {
		if tg.proxyAddr != "" {
			return nil, fmt.Errorf("dial proxy: %w", err)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	if tg.proxyAddr != "" && tg.tls {
		if err := connectTunnel(dctx, nc, tg); err != nil {
			_ = nc.Close()
			return nil, err
		}
	}
	c := &conn{t: t, key: tg.key, nc: nc, tls: tg.tls, wr: nc}
	var rd io.Reader = nc
	under := nc // what TLS runs over
	if tcp, ok := nc.(*net.TCPConn); ok {
		if c.raw, err = tcp.SyscallConn(); err == nil && sockio.Enabled {
			c.sock = sockio.New(c.raw)
			rd, c.wr = c.sock, c.sock
			under = &sockio.Conn{TCPConn: tcp, S: c.sock}
		}
	}
	c.br = bufio.NewReaderSize(rd, t.cfg.ReadBuffer)
	if tg.tls {
		tc := tls.Client(under, tg.tlsConfig)
		if err := tc.HandshakeContext(dctx); err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		c.nc, c.wr = tc, tc
		c.br.Reset(tc)
	}
	return c, nil
}

// connectTunnel asks the proxy on nc for a tunnel to tg (CONNECT).
func connectTunnel(ctx context.Context, nc net.Conn, tg *Target) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
		defer nc.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(aLongTimeAgo) })
	defer stop()
	req := "CONNECT " + tg.addr + " HTTP/1.1\r\nHost: " + tg.addr + "\r\n" + tg.proxyAuth + "\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		return fmt.Errorf("proxy CONNECT: %w", err)
	}
	// Byte-sized reads: nothing after the proxy's header may be consumed,
	// it belongs to the TLS handshake.
	c := &conn{br: bufio.NewReaderSize(oneByteReader{nc}, 4<<10)}
	line, err := c.readLine()
	if err != nil {
		return fmt.Errorf("proxy CONNECT: %w", unexpected(err))
	}
	code, _, err := parseStatusLine(line)
	if err != nil {
		return fmt.Errorf("proxy CONNECT: %w", err)
	}
	if err := c.readHeaderBlock(); err != nil {
		return fmt.Errorf("proxy CONNECT: %w", err)
	}
	if code < 200 || code > 299 {
		return fmt.Errorf("proxy CONNECT: proxy answered HTTP %d", code)
	}
	return nil
}

// oneByteReader reads at most one byte per call.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

package h1

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zenoload/zenoload/internal/sockio"
)

func post(t *testing.T, tr *Transport, ctx context.Context, base string, deadline time.Duration) (*Response, string, error) {
	t.Helper()
	tg, err := tr.ParseTarget(base)
	require.NoError(t, err)
	resp, err := tr.Do(ctx, tg, &Request{Method: "POST", Path: tg.Path("/api/chat"),
		Header: []byte("X-Test: 1\r\n"), Body: []byte(`{"q":1}`), Deadline: time.Now().Add(deadline)})
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp)
	return resp, string(b), err
}

// TestAgainstNetHTTPServer checks the request we send and every body framing
// Go's own server produces, plus keep-alive reuse.
func TestAgainstNetHTTPServer(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.URL.Path != "/pre/api/chat" || r.Header.Get("X-Test") != "1" ||
			string(body) != `{"q":1}` || r.ContentLength != 7 || r.Host == "" {
			http.Error(w, "bad request shape", 400)
			return
		}
		w.Header().Set("X-Prompts-Used", " 7 ")
		switch r.URL.Query().Get("k") {
		default: // chunked, flushed per line
			for _, l := range []string{"a\n", "bb\n", "ccc\n"} {
				io.WriteString(w, l)
				w.(http.Flusher).Flush()
			}
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	tr := New(Config{})
	defer tr.CloseIdle()
	for i := range 5 {
		resp, body, err := post(t, tr, context.Background(), srv.URL+"/pre/", 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, 200, resp.Status)
		require.Equal(t, "a\nbb\nccc\n", body)
		require.Equal(t, "7", resp.Header("x-prompts-used"))
		require.Equal(t, "", resp.Header("X-Missing"))
		require.Equal(t, i > 0, resp.Reused)
		require.NoError(t, resp.Close())
	}
	require.EqualValues(t, 1, conns.Load(), "keep-alive: one connection for sequential requests")
	tr.mu.Lock()
	for _, l := range tr.idle {
		require.Equal(t, sockio.Enabled, l[0].sock != nil, "raw I/O except under the race detector")
	}
	tr.mu.Unlock()
}

// rawServer answers each connection with the given bytes, after reading the
// request head, then closes it (unless keep is set).
// readHead reads a request's line and header block, up to the empty line.
func readHead(br *bufio.Reader) {
	for {
		l, err := br.ReadString('\n')
		if err != nil || l == "\r\n" {
			return
		}
	}
}

func rawServer(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				readHead(bufio.NewReader(c))
				io.WriteString(c, reply)
				time.Sleep(50 * time.Millisecond)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestFraming(t *testing.T) {
	cases := []struct {
		name, reply, body string
		status            int
		keep              bool
		err               error
	}{
		{name: "content-length", reply: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", body: "hello", status: 200, keep: true},
		{name: "1xx skipped", reply: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", body: "ok", status: 201, keep: true},
		{name: "chunked with ext and trailer", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\n", body: "abc0123456789", status: 200, keep: true},
		{name: "until close", reply: "HTTP/1.1 200 OK\r\n\r\nall of it", body: "all of it", status: 200},
		{name: "connection close", reply: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", body: "x", status: 200},
		{name: "http/1.0", reply: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", body: "x", status: 200},
		{name: "no content", reply: "HTTP/1.1 204 No Content\r\n\r\n", status: 204, keep: true},
		{name: "truncated chunk", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", body: "abc", status: 200, err: io.ErrUnexpectedEOF},
		{name: "no last chunk", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", body: "abc", status: 200, err: io.ErrUnexpectedEOF},
		{name: "bad chunk size", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n", status: 200, err: ErrMalformed},
		{name: "missing CRLF after chunk", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", body: "abc", status: 200, err: ErrMalformed},
		{name: "long header line", reply: "HTTP/1.1 200 OK\r\nSet-Cookie: " + strings.Repeat("c", 6000) + "\r\nContent-Length: 2\r\n\r\nok", body: "ok", status: 200, keep: true},
		{name: "same length twice", reply: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", body: "ok", status: 200, keep: true},
		{name: "te and cl: chunked, never reused", reply: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", body: "ok", status: 200},
		{name: "second connection line closes", reply: "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", body: "ok", status: 200},
		{name: "short content-length body", reply: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", body: "abc", status: 200, err: io.ErrUnexpectedEOF},
		{name: "length list of one value", reply: "HTTP/1.1 200 OK\r\ncontent-length: 2 , 2\r\n\r\nok", body: "ok", status: 200, keep: true},
		{name: "tokens ignore case", reply: "HTTP/1.1 200 OK\r\nTRANSFER-ENCODING:  Chunked \r\nConnection: Upgrade, KEEP-ALIVE\r\n\r\n2\r\nok\r\n0\r\n\r\n", body: "ok", status: 200, keep: true},
		{name: "http/1.0 keep-alive", reply: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx", body: "x", status: 200, keep: true},
		{name: "http/1.0 close wins", reply: "HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\nx", body: "x", status: 200},
		{name: "http/1.0 chunked, never reused", reply: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", body: "ok", status: 200},
		{name: "bad length beside te: chunked, never reused", reply: "HTTP/1.1 200 OK\r\nContent-Length: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", body: "ok", status: 200},
		{name: "closing token inside another is not close", reply: "HTTP/1.1 200 OK\r\nConnection: closed-ish\r\nContent-Length: 1\r\n\r\nx", body: "x", status: 200, keep: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := New(Config{})
			defer tr.CloseIdle()
			resp, body, err := post(t, tr, context.Background(), rawServer(t, tc.reply), 5*time.Second)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.body, body)
			require.Equal(t, tc.status, resp.Status)
			require.Equal(t, tc.keep, resp.keepAlive && resp.done && resp.err == nil)
			require.NoError(t, resp.Close())
		})
	}
}

func TestBadResponses(t *testing.T) {
	for name, reply := range map[string]string{
		"not http":        "SSH-2.0-OpenSSH\r\n\r\n",
		"bad code":        "HTTP/1.1 2x0 OK\r\n\r\n",
		"bad length":      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"gzip te":         "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"switching":       "HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"huge header":     "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Big: "+strings.Repeat("b", 1000)+"\r\n", 80) + "\r\n",
		"huge line":       "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("b", 70000) + "\r\n\r\n",
		"two lengths":     "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 10\r\n\r\nhello",
		"signed length":   "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
		"te not last":     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
		"empty length":    "HTTP/1.1 200 OK\r\nContent-Length: 1,,1\r\n\r\nx",
		"length list":     "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nxy",
		"closed mid head": "HTTP/1.1 200 OK\r\nContent-",
		"closed at once":  "",
	} {
		t.Run(name, func(t *testing.T) {
			tr := New(Config{})
			_, _, err := post(t, tr, context.Background(), rawServer(t, reply), 5*time.Second)
			require.Error(t, err)
			switch name {
			case "huge header", "huge line":
				require.ErrorIs(t, err, ErrHeaderTooLarge)
			case "closed mid head", "closed at once":
				require.True(t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF), "%v", err)
			default:
				require.ErrorIs(t, err, ErrMalformed)
			}
		})
	}
}

// TestStaleIdleConnection: a server that closes idle keep-alive connections
// (uvicorn does after 5 s) must not make the next request fail, in plain
// HTTP and over TLS (where the server's close_notify is pending data).
func TestStaleIdleConnection(t *testing.T) {
	for _, secure := range []bool{false, true} {
		var conns atomic.Int32
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok\n")
		}))
		srv.Config.IdleTimeout = 50 * time.Millisecond
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		cfg := Config{}
		if secure {
			srv.StartTLS()
			cfg.TLS = srv.Client().Transport.(*http.Transport).TLSClientConfig
		} else {
			srv.Start()
		}
		tr := New(cfg)
		for range 3 {
			resp, body, err := post(t, tr, context.Background(), srv.URL, 5*time.Second)
			require.NoError(t, err, "tls=%v", secure)
			require.Equal(t, "ok\n", body)
			require.False(t, resp.Reused, "the idle connection was closed by the server and must not be reused")
			resp.Close()
			time.Sleep(200 * time.Millisecond)
		}
		require.EqualValues(t, 3, conns.Load())
		tr.CloseIdle()
		srv.Close()
	}
}

// TestReuseAfterDeadline: a pooled connection whose last request's deadline
// has passed is still reused (the deadline belongs to the request).
func TestReuseAfterDeadline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
	defer srv.Close()
	tr := New(Config{})
	defer tr.CloseIdle()
	resp, _, err := post(t, tr, context.Background(), srv.URL, 100*time.Millisecond)
	require.NoError(t, err)
	resp.Close()
	time.Sleep(200 * time.Millisecond)
	resp, _, err = post(t, tr, context.Background(), srv.URL, time.Second)
	require.NoError(t, err)
	require.True(t, resp.Reused)
	resp.Close()
}

// TestNoSecretsInErrors: URLs and proxy settings with credentials never
// reach an error text.
func TestNoSecretsInErrors(t *testing.T) {
	tr := New(Config{Proxy: func(*url.URL) (*url.URL, error) {
		return nil, errors.New(`invalid proxy address "http://alice:p%ss@proxy:3128"`)
	}})
	_, err := tr.ParseTarget("https://api.example.org")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "p%ss")
	_, err = New(Config{}).ParseTarget("http://bob:hunter2@exa mple.org/%zz")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
}

func TestDeadlineAndCancel(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	tr := New(Config{})
	defer tr.CloseIdle()

	start := time.Now()
	resp, body, err := post(t, tr, context.Background(), srv.URL, 200*time.Millisecond)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.Equal(t, "first\n", body)
	require.Less(t, time.Since(start), 2*time.Second)
	resp.Close()

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	resp, body, err = post(t, tr, ctx, srv.URL, time.Minute)
	require.Error(t, err)
	require.Equal(t, "first\n", body)
	require.Less(t, time.Since(start), 2*time.Second)
	resp.Close()
	tr.mu.Lock()
	require.Zero(t, tr.nidle, "an aborted connection is never pooled")
	tr.mu.Unlock()

	// Refused: the error says so.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, _, err = post(t, tr, context.Background(), "http://"+addr, time.Second)
	require.Error(t, err)
	require.Contains(t, err.Error(), "refused")
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 1 {
			http.Error(w, "want HTTP/1.1", 400)
			return
		}
		io.WriteString(w, "secure\n")
	}))
	defer srv.Close()
	tr := New(Config{TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig})
	defer tr.CloseIdle()
	for i := range 2 {
		resp, body, err := post(t, tr, context.Background(), srv.URL, 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, "secure\n", body)
		require.Equal(t, i == 1, resp.Reused)
		resp.Close()
	}
	// Without the test CA the handshake fails with a certificate error.
	_, _, err := post(t, New(Config{}), context.Background(), srv.URL, 5*time.Second)
	require.ErrorContains(t, err, "certificate")
}

func TestParseTarget(t *testing.T) {
	tr := New(Config{})
	tg, err := tr.ParseTarget("https://api.example.org/v1/")
	require.NoError(t, err)
	require.Equal(t, "api.example.org:443", tg.addr)
	require.Equal(t, "/v1/api/chat", tg.Path("/api/chat"))
	require.True(t, tg.tls)
	tg, err = tr.ParseTarget("http://[::1]:8000")
	require.NoError(t, err)
	require.Equal(t, "[::1]:8000", tg.addr)
	require.Equal(t, "/api/chat", tg.Path("/api/chat"))
	for _, bad := range []string{"ftp://x", "http://", "://", "http://user:pw@host"} {
		_, err := tr.ParseTarget(bad)
		require.Error(t, err, bad)
		require.NotContains(t, err.Error(), "pw")
	}
}

// testProxy is a forward proxy: CONNECT tunnels and absolute-form requests.
// It records the request lines and Proxy-Authorization it saw.
func testProxy(t *testing.T, refuse bool) (*url.URL, *[]string) {
	t.Helper()
	var mu sync.Mutex
	seen := &[]string{}
	px := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		*seen = append(*seen, r.Method+" "+r.RequestURI+" auth="+r.Header.Get("Proxy-Authorization"))
		mu.Unlock()
		if refuse {
			http.Error(w, "proxy says no", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodConnect {
			up, err := net.Dial("tcp", r.Host)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			w.WriteHeader(200)
			c, brw, _ := w.(http.Hijacker).Hijack()
			go func() { io.Copy(up, brw); up.Close() }()
			io.Copy(c, up)
			c.Close()
			return
		}
		r.RequestURI = ""
		r.Header.Del("Proxy-Authorization")
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(px.Close)
	u, _ := url.Parse(px.URL)
	u.User = url.UserPassword("alice", "s3cret")
	return u, seen
}

func TestProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "via http\n") }))
	defer backend.Close()
	tlsBackend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "via tunnel\n") }))
	defer tlsBackend.Close()
	pu, seen := testProxy(t, false)
	tr := New(Config{Proxy: func(*url.URL) (*url.URL, error) { return pu, nil },
		TLS: tlsBackend.Client().Transport.(*http.Transport).TLSClientConfig})
	defer tr.CloseIdle()
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))

	for i := range 2 {
		for base, want := range map[string]string{backend.URL: "via http\n", tlsBackend.URL: "via tunnel\n"} {
			resp, body, err := post(t, tr, context.Background(), base, 5*time.Second)
			require.NoError(t, err)
			require.Equal(t, want, body)
			require.Equal(t, i == 1, resp.Reused)
			resp.Close()
		}
	}
	tlsHost := strings.TrimPrefix(tlsBackend.URL, "https://")
	require.ElementsMatch(t, []string{
		"POST " + backend.URL + "/api/chat auth=" + wantAuth,
		"CONNECT " + tlsHost + " auth=" + wantAuth,
		"POST " + backend.URL + "/api/chat auth=" + wantAuth,
	}, *seen, "absolute form per request; one tunnel, reused")

	pu2, _ := testProxy(t, true)
	tr2 := New(Config{Proxy: func(*url.URL) (*url.URL, error) { return pu2, nil }})
	_, _, err := post(t, tr2, context.Background(), tlsBackend.URL, 5*time.Second)
	require.ErrorContains(t, err, "proxy answered HTTP 403")
	require.NotContains(t, err.Error(), "s3cret")
}

// TestArrivalIsKernelTime: the body's last bytes arrive 100 ms after the
// request, but the reader only gets to them at 300 ms; Arrival must say
// 100 ms (the kernel's receive timestamp), not 300. Over TLS as well.
func TestArrivalIsKernelTime(t *testing.T) {
	if !sockio.Enabled {
		t.Skip("race builds use net.Conn I/O, without receive timestamps")
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		time.Sleep(100 * time.Millisecond)
		io.WriteString(w, "late line\n")
	})
	plain := httptest.NewServer(h)
	defer plain.Close()
	secure := httptest.NewTLSServer(h)
	defer secure.Close()
	tr := New(Config{TLS: secure.Client().Transport.(*http.Transport).TLSClientConfig})
	defer tr.CloseIdle()
	for _, base := range []string{plain.URL, secure.URL} {
		for range 2 { // fresh and reused connection
			tg, err := tr.ParseTarget(base)
			require.NoError(t, err)
			start := time.Now()
			resp, err := tr.Do(context.Background(), tg, &Request{Method: "POST", Path: "/", Deadline: start.Add(5 * time.Second)})
			require.NoError(t, err)
			require.Less(t, resp.HeaderAt.Sub(start), 80*time.Millisecond, base)
			time.Sleep(300 * time.Millisecond) // the reader is late
			body, err := io.ReadAll(resp)
			require.NoError(t, err)
			require.Equal(t, "late line\n", string(body))
			got := resp.Arrival().Sub(start)
			require.Greater(t, time.Since(start), 300*time.Millisecond)
			require.True(t, got >= 100*time.Millisecond && got < 250*time.Millisecond, "%s: arrival at %v, want ~100ms", base, got)
			resp.Close()
		}
	}
}

// TestHeaderInt: the first field line of a name, as strconv.Atoi reads it.
func TestHeaderInt(t *testing.T) {
	tr := New(Config{})
	defer tr.CloseIdle()
	reply := "HTTP/1.1 200 OK\r\nx-n: 42\r\nX-N: 9\r\nX-Neg:  -7 \r\nX-Bad: 4x\r\nX-Empty:\r\nX-Big: 1234567890123456789012\r\nContent-Length: 0\r\n\r\n"
	resp, _, err := post(t, tr, context.Background(), rawServer(t, reply), 5*time.Second)
	require.NoError(t, err)
	defer resp.Close()
	for name, want := range map[string]struct {
		n  int
		ok bool
	}{"X-N": {42, true}, "x-neg": {-7, true}, "X-Bad": {0, false}, "X-Empty": {0, false}, "X-Big": {0, false}, "X-Absent": {0, false}} {
		n, ok := resp.HeaderInt(name)
		require.Equal(t, want.ok, ok, name)
		if ok {
			require.Equal(t, want.n, n, name)
		}
	}
}

// closingServer answers one request per connection with a keep-alive
// response, then closes: half (FIN, and it keeps reading) or fully.
func closingServer(t *testing.T, half bool) (url string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				readHead(br)
				_, _ = io.CopyN(io.Discard, br, 7) // post's body
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				if half {
					_ = c.(*net.TCPConn).CloseWrite()
					_, _ = io.Copy(io.Discard, c) // reads on, never answers
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String(), conns
}

// TestServerClosedPooledConnection: a pooled connection the server closed
// right after its response. Reused after the close arrived, the liveness
// peek sees it and the request goes on a new connection. Reused at once
// (the peek skipped), a full close still fails the request at once: the
// server's reset ends the wait.
func TestServerClosedPooledConnection(t *testing.T) {
	t.Run("half close seen by the peek", func(t *testing.T) {
		url, conns := closingServer(t, true)
		tr := New(Config{})
		defer tr.CloseIdle()
		resp, body, err := post(t, tr, context.Background(), url, 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, "ok", body)
		time.Sleep(20 * time.Millisecond) // the FIN is in; the response ended long before
		require.NoError(t, resp.Close())
		start := time.Now()
		_, body, err = post(t, tr, context.Background(), url, 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, "ok", body)
		require.Less(t, time.Since(start), time.Second)
		require.EqualValues(t, 2, conns.Load(), "a new connection for the second request")
	})
	t.Run("full close inside the skip window fails at once", func(t *testing.T) {
		url, _ := closingServer(t, false)
		tr := New(Config{})
		defer tr.CloseIdle()
		resp, _, err := post(t, tr, context.Background(), url, 5*time.Second)
		require.NoError(t, err)
		require.NoError(t, resp.Close())
		start := time.Now()
		_, _, err = post(t, tr, context.Background(), url, 5*time.Second)
		if err == nil {
			t.Skip("the close came after the second request was read; nothing to check this time")
		}
		require.Less(t, time.Since(start), time.Second, "failed at the deadline, not at once: %v", err)
	})
}

// Command truthserver is the benchmarks' target: the fakezeno server (same
// package, same flags as `zeno-worker fake-zeno`) behind a thin middleware
// that measures, on the server, when each POST /api/chat really sent its
// status line and when it really finished its body.
//
// fakezeno's own ground truth (GET /_fake/stats) reports the *injected*
// delays: what the server meant to do. Under load the server's own timer
// and scheduling lateness adds to that, and a load generator cannot be
// blamed for it. GET /_bench/truth reports what the server actually did, in
// Locust's response-time buckets, so the benchmark can separate
// "worker measured wrongly" from "server was late".
//
// Times run from the kernel's receive timestamp of the request (accepted
// connections use internal/sockio, so a server that is slow to get to a
// request has that delay counted, as a client sees it) to WriteHeader and
// to handler return, for 200 responses whose handler returned normally and
// whose client was still there. POST /_bench/truth/reset starts a new window.
// Without a timestamp the clock starts at handler entry.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zenoload/zenoload/fakezeno"
	"github.com/zenoload/zenoload/internal/sockio"
	"github.com/zenoload/zenoload/locust"
)

// hist is a Locust-bucketed histogram of milliseconds; truth.mu guards it.
type hist struct {
	counts map[int64]int64
	n      int64
	sum    float64
}

func (h *hist) add(d time.Duration) {
	ms := float64(d) / float64(time.Millisecond)
	b := locust.BucketResponseTime(ms)
	if h.counts == nil {
		h.counts = make(map[int64]int64)
	}
	h.counts[b]++
	h.n++
	h.sum += ms
}

func (h *hist) reset() { h.counts, h.n, h.sum = nil, 0, 0 }

type summary struct {
	Count  int64   `json:"count"`
	MeanMS float64 `json:"mean_ms"`
	P50    int64   `json:"p50_ms"`
	P95    int64   `json:"p95_ms"`
	P99    int64   `json:"p99_ms"`
	Max    int64   `json:"max_ms"`
}

func (h *hist) summary() summary {
	s := summary{Count: h.n}
	if h.n == 0 {
		return s
	}
	s.MeanMS = h.sum / float64(h.n)
	s.P50 = locust.Percentile(h.counts, h.n, 0.50)
	s.P95 = locust.Percentile(h.counts, h.n, 0.95)
	s.P99 = locust.Percentile(h.counts, h.n, 0.99)
	keys := make([]int64, 0, len(h.counts))
	for k := range h.counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	s.Max = keys[len(keys)-1]
	return s
}

// recorder wraps the ResponseWriter to catch the moment the status is sent.
type recorder struct {
	http.ResponseWriter
	status   int
	headerAt time.Time
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status, r.headerAt = code, time.Now()
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// truth holds both histograms under one lock, so a reset or a read never
// sees a request in one and not the other.
type truth struct {
	mu            sync.Mutex
	header, total hist
}

func (t *truth) add(header, total time.Duration) {
	t.mu.Lock()
	t.header.add(header)
	t.total.add(total)
	t.mu.Unlock()
}

func (t *truth) reset() {
	t.mu.Lock()
	t.header.reset()
	t.total.reset()
	t.mu.Unlock()
}

func (t *truth) summaries() map[string]summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	return map[string]summary{"header_ms": t.header.summary(), "total_ms": t.total.summary()}
}

// connKey carries the request's *sockio.Conn in its context.
type connKey struct{}

// stampListener hands out connections with kernel receive timestamps.
type stampListener struct{ net.Listener }

func (l stampListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tcp, ok := c.(*net.TCPConn); ok && sockio.Enabled {
		if sc, err := sockio.Wrap(tcp); err == nil {
			return sc, nil
		}
	}
	return c, nil
}

func (t *truth) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/api/chat" || req.Method != http.MethodPost {
			next.ServeHTTP(w, req)
			return
		}
		start := time.Now()
		if c, ok := req.Context().Value(connKey{}).(*sockio.Conn); ok {
			// The request's bytes came with the conn's latest read.
			if rx := c.S.LastArrival(); !rx.IsZero() && !rx.After(start) && start.Sub(rx) < time.Minute {
				start = rx
			}
		}
		rec := &recorder{ResponseWriter: w}
		normal := false
		defer func() {
			// A stream the client abandoned (a worker cancels what is in
			// flight when the test stops) is not a measurement on its side.
			if normal && rec.status == http.StatusOK && req.Context().Err() == nil {
				t.add(rec.headerAt.Sub(start), time.Since(start))
			}
		}()
		next.ServeHTTP(rec, req) // panics (injected aborts) skip the record
		normal = true
	})
}

func main() {
	// die also stops the CPU profile (a no-op when none runs): os.Exit skips
	// the deferred stop, which writes it.
	die := func(code int, err error) {
		fmt.Fprintln(os.Stderr, "truthserver:", err)
		pprof.StopCPUProfile()
		os.Exit(code)
	}
	fs := flag.NewFlagSet("truthserver", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:8000", "address to listen on")
	level := fs.String("loglevel", "WARNING", "log level (DEBUG, INFO, WARNING, ERROR)")
	canned := fs.Bool("canned", false, "answer every POST /api/chat with one recorded fakezeno response, the same bytes, "+
		"without fakezeno's work (diagnostic: how the target's own speed moves section 1's ratios)")
	cpuProf := fs.String("cpuprofile", "", "write a CPU profile of the whole run here (for finding the server's own costs)")
	cfg := fakezeno.DefaultConfig()
	cfg.RegisterFlags(fs)
	_ = fs.Parse(os.Args[1:])
	lv := map[string]slog.Level{"DEBUG": slog.LevelDebug, "INFO": slog.LevelInfo, "ERROR": slog.LevelError}[*level]
	if *level == "WARNING" || *level == "WARN" {
		lv = slog.LevelWarn
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	if err := cfg.Finish(); err != nil {
		die(2, err)
	}
	fz, err := fakezeno.New(cfg)
	if err != nil {
		die(2, err)
	}
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			die(2, err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			die(2, err)
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	t := &truth{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_bench/truth", func(w http.ResponseWriter, _ *http.Request) {
		b, _ := json.MarshalIndent(t.summaries(), "", "  ")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	// The bench resets the truth when it resets the master's stats, so both
	// cover the same window (the spawn burst excluded).
	mux.HandleFunc("POST /_bench/truth/reset", func(w http.ResponseWriter, _ *http.Request) {
		t.reset()
		w.WriteHeader(http.StatusNoContent)
	})
	chat := fz.Handler()
	if *canned {
		if chat, err = cannedChat(chat); err != nil {
			die(2, err)
		}
	}
	mux.Handle("/", t.wrap(chat))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		die(1, err)
	}
	// The same server settings as fakezeno.Server.Serve.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		}}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(stampListener{ln}) }()
	select {
	case err := <-errc:
		die(1, err)
	case <-ctx.Done():
	}
	fz.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintln(os.Stderr, "truthserver: shutdown:", err)
	}
	_ = srv.Close()
}

// cannedChat records one POST /api/chat answer of fz and returns a handler
// that reads each chat request's body and replays that answer's headers and
// body (chunked, as fakezeno sends it); other paths go to fz. It is what
// fakezeno costs without its own work: auth, validation, threads, quota,
// schedule.
func cannedChat(fz http.Handler) (http.Handler, error) {
	req := httptest.NewRequest(http.MethodPost, "/api/chat", strings.NewReader(`{"query":"canned","thread_id":"canned-1"}`))
	req.Header.Set("Authorization", "Bearer zeno-key:canned:0123456789abcdef0123456789abcdef")
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	fz.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("canned: fakezeno answered %d: %s", rec.Code, rec.Body.String())
	}
	hdr := rec.Header().Clone()
	body := rec.Body.Bytes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/chat" || r.Method != http.MethodPost {
			fz.ServeHTTP(w, r)
			return
		}
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		maps.Copy(w.Header(), hdr)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}), nil
}

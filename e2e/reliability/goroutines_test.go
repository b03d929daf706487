package reliability

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/zenoload/zenoload/internal/locusttest"
	"github.com/zenoload/zenoload/locust"
	"github.com/zenoload/zenoload/tasks"
)

// TestGoroutinesReturnToBaseline runs the worker runtime in this process
// (locust.NewWorker + tasks.NewUserClass, the same code zeno-worker runs)
// against a real 2.47.0 master and a fake Zeno in a separate process, and
// checks runtime.NumGoroutine() after each of five web-UI stops against the
// idle baseline taken after registration. Idle keep-alive connections (two
// goroutines each, bounded by MaxIdleConns, closed after 90 s idle) are
// closed before measuring; their number is logged.
func TestGoroutinesReturnToBaseline(t *testing.T) {
	integration(t)
	m := masters(t, true)[0]
	r := newRun(t, 120*time.Second)

	fakePort := locusttest.FreePort(t)
	fakeProc := locusttest.Start(t, r.ctx, r.dir, nil, r.bin, "fake-zeno",
		"--listen", "127.0.0.1:"+strconv.Itoa(fakePort), "--time-scale", "0.03")
	fakeURL := "http://127.0.0.1:" + strconv.Itoa(fakePort)
	if !locusttest.WaitFor(10*time.Second, func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(fakePort))
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("fake did not start:\n%s", fakeProc.Output())
	}

	port := locusttest.FreePort(t)
	mp, ui := r.webMaster(m, port, fakeURL)

	pool, err := tasks.ParseTokenList(token(prefixA, secretA))
	if err != nil {
		t.Fatal(err)
	}
	cfg := tasks.DefaultConfig()
	cfg.BaseURL, cfg.Tokens = fakeURL, pool
	cfg.Logger = slog.New(slog.DiscardHandler)
	client := tasks.NewClient(tasks.ClientConfig{Redactor: pool.Redactor()})
	cls, err := tasks.NewUserClass(cfg, client)
	if err != nil {
		t.Fatal(err)
	}
	w, err := locust.NewWorker(locust.Config{MasterHost: "127.0.0.1", MasterPort: port,
		Classes: []locust.UserClass{cls}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorker := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() {
		stopWorker()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("in-process worker did not return within 10 s of cancel")
		}
	}()
	if !ui.WaitReady(t, 1, 25*time.Second) {
		t.Fatalf("in-process worker never ready:\n%s", mp.Output())
	}
	time.Sleep(time.Second)
	// The test's own web-UI client keeps idle connections too.
	closeIdle := func() { http.DefaultTransport.(*http.Transport).CloseIdleConnections() }
	closeIdle()
	time.Sleep(100 * time.Millisecond)
	runtime.GC()
	base := runtime.NumGoroutine()
	const slack = 3
	var trail []string
	for cycle, users := range []int{4, 10, 2, 12, 6} {
		ui.Swarm(t, users, 100)
		var peak int
		if !locusttest.WaitFor(15*time.Second, func() bool {
			peak = max(peak, runtime.NumGoroutine())
			s, _ := ui.Stats()
			return s.Users() == users && s.Requests() > int64(users)
		}) {
			t.Fatalf("cycle %d did not run", cycle+1)
		}
		time.Sleep(time.Second)
		peak = max(peak, runtime.NumGoroutine())
		ui.Stop(t)
		if !ui.WaitReady(t, 1, 15*time.Second) {
			t.Fatalf("cycle %d: worker not ready after stop", cycle+1)
		}
		withIdle := runtime.NumGoroutine()
		client.CloseIdleConnections()
		closeIdle()
		var n int
		ok := locusttest.WaitFor(5*time.Second, func() bool {
			runtime.GC()
			n = runtime.NumGoroutine()
			return n <= base+slack
		})
		trail = append(trail, fmt.Sprintf("%du: peak %d, after stop %d (%d with idle conns)", users, peak, n, withIdle))
		if !ok {
			_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			t.Fatalf("cycle %d (%d users): %d goroutines after stop, baseline %d (+%d allowed)", cycle+1, users, n, base, slack)
		}
	}
	t.Logf("baseline %d goroutines; %v", base, trail)
}

package fakezeno

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCapacity opens FAKEZENO_CAPACITY (e.g. 10000) concurrent slow streams
// against a fake running in a child process (so each side has its own file
// descriptor limit). It is skipped unless the variable is set.
func TestCapacity(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FAKEZENO_CAPACITY"))
	if n <= 0 {
		t.Skip("set FAKEZENO_CAPACITY=N to run")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServe$")
	cmd.Env = append(os.Environ(), "FAKEZENO_HELPER=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + strings.TrimSpace(addr)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}}

	const ttfb, gap, lines = 100 * time.Millisecond, 2 * time.Second, 5
	var mu sync.Mutex
	var ttfbs, skews []time.Duration
	failures := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * 3 * time.Second / time.Duration(n)))) // ramp over 3 s
		wg.Go(func() {
			t0 := time.Now()
			req, _ := http.NewRequest(http.MethodPost, base+"/api/chat", strings.NewReader(chatReqBody("hi", fmt.Sprint("cap", i))))
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := client.Do(req)
			fail := func(s string) { mu.Lock(); failures[s]++; mu.Unlock() }
			if err != nil {
				fail("do: " + err.Error())
				return
			}
			defer resp.Body.Close()
			t1 := time.Since(t0)
			b, err := io.ReadAll(resp.Body)
			total := time.Since(t0)
			switch {
			case err != nil:
				fail("read: " + err.Error())
			case resp.StatusCode != 200:
				fail(resp.Status)
			case strings.Count(string(b), "\n") != lines:
				fail("lines")
			default:
				mu.Lock()
				ttfbs = append(ttfbs, t1-ttfb)
				skews = append(skews, total-(ttfb+lines*gap))
				mu.Unlock()
			}
		})
	}
	// Sample the server's memory while all streams are open.
	time.Sleep(time.Until(start.Add(4 * time.Second)))
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "Threads") {
			t.Log("server", l)
		}
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("failures: %v", failures)
	}
	pct := func(d []time.Duration, p float64) time.Duration {
		slices.Sort(d)
		if len(d) == 0 {
			return 0
		}
		return d[min(int(p*float64(len(d))), len(d)-1)]
	}
	t.Logf("%d streams ok in %v; ttfb excess p50 %v p99 %v max %v; total excess p50 %v p99 %v max %v",
		len(ttfbs), time.Since(start), pct(ttfbs, .5), pct(ttfbs, .99), pct(ttfbs, 1), pct(skews, .5), pct(skews, .99), pct(skews, 1))
	g := fetchStats(t, client, base)
	if g.ChatRequestsTotal != int64(n) || g.StreamsCompleted != int64(n) {
		t.Errorf("server saw %d requests, %d completed", g.ChatRequestsTotal, g.StreamsCompleted)
	}
}

// TestHelperServe is the child process of TestCapacity.
func TestHelperServe(t *testing.T) {
	if os.Getenv("FAKEZENO_HELPER") != "1" {
		t.Skip("helper process only")
	}
	s, err := New(Config{Quota: 1 << 30, TimeScale: 1, Fixed: &Profile{HeaderDelay: 100 * time.Millisecond, Lines: 5, Gap: 2 * time.Second},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(ln.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	if err := s.Serve(ctx, ln); err != nil {
		t.Fatal(err)
	}
}

// Command probe drives tasks.Client (the HTTP/NDJSON client zeno-worker
// uses) without the Locust runtime, to profile it: N goroutines each loop
// one chat request at a time against a fake Zeno server, like N users with
// zero wait. zeno-worker has no pprof flag; this is where the profiles in
// bench/README.md come from.
//
//	go run ./bench/probe -url http://127.0.0.1:PORT -n 10000 -rate 1000 \
//	    -hold 20s -cpuprofile cpu.pprof -heapprofile heap.pprof
//
// It prints a JSON line: requests, failures, CPU-seconds, and at the moment
// all N streams are open, RSS, Go stack and heap per stream.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zenoload/zenoload/locust"
	"github.com/zenoload/zenoload/tasks"
)

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func main() {
	url := flag.String("url", "http://127.0.0.1:8000", "fake Zeno base URL")
	n := flag.Int("n", 100, "concurrent users (one request in flight each)")
	rate := flag.Float64("rate", 1000, "users started per second")
	hold := flag.Duration("hold", 10*time.Second, "run time after the last user started")
	tokStr := flag.String("token", "zeno-key:bench001:0123456789abcdef0123456789abcdef", "machine user token")
	cpuProf := flag.String("cpuprofile", "", "write a CPU profile of the hold phase here")
	heapProf := flag.String("heapprofile", "", "write a heap profile (taken with all streams open) here")
	flag.Parse()

	tok, err := tasks.ParseToken(*tokStr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(2)
	}
	client := tasks.NewClient(tasks.ClientConfig{MaxIdleConns: *n})
	ctx, cancel := context.WithCancel(context.Background())
	var inflight, done, failed atomic.Int64
	var hmu sync.Mutex
	ttfbH, totalH := map[int64]int64{}, map[int64]int64{}
	measuring := atomic.Bool{}
	var wg sync.WaitGroup
	user := func() {
		defer wg.Done()
		for ctx.Err() == nil {
			inflight.Add(1)
			res := client.Chat(ctx, *url, tok, tasks.ChatRequest{Query: "What is the forest cover in Brazil?", ThreadID: tasks.NewThreadID()})
			inflight.Add(-1)
			if res.Outcome == tasks.Canceled {
				return
			}
			done.Add(1)
			if res.Outcome != tasks.OK {
				failed.Add(1)
			}
			if measuring.Load() && res.Outcome == tasks.OK {
				hmu.Lock()
				ttfbH[locust.BucketResponseTime(float64(res.TTFB)/1e6)]++
				totalH[locust.BucketResponseTime(float64(res.Total)/1e6)]++
				hmu.Unlock()
			}
		}
	}
	baseRSS := rssBytes()
	interval := time.Duration(float64(time.Second) / *rate)
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go user()
		if interval > 0 {
			time.Sleep(interval)
		}
	}
	// Let every user get its first stream open, then measure.
	deadline := time.Now().Add(10 * time.Second)
	for inflight.Load() < int64(*n) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	open := inflight.Load()
	rss := rssBytes()
	if *heapProf != "" {
		if f, err := os.Create(*heapProf); err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			_ = f.Close()
		}
	}
	goroutines := runtime.NumGoroutine()

	if *cpuProf != "" {
		if f, err := os.Create(*cpuProf); err == nil {
			_ = pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
		}
	}
	cpu0, done0, t0 := cpuSeconds(), done.Load(), time.Now()
	measuring.Store(true)
	time.Sleep(*hold)
	measuring.Store(false)
	cpu1, done1, wall := cpuSeconds(), done.Load(), time.Since(t0)
	cancel()
	wg.Wait()

	per := func(v uint64) float64 { return float64(v) / float64(max(open, 1)) / 1024 }
	out := map[string]any{
		"users": *n, "open_streams": open, "goroutines": goroutines,
		"rss_mib": float64(rss) / (1 << 20), "rss_base_mib": float64(baseRSS) / (1 << 20),
		"rss_per_stream_kib":   float64(rss) / float64(max(open, 1)) / 1024,
		"stack_per_stream_kib": per(ms.StackInuse), "heap_inuse_per_stream_kib": per(ms.HeapInuse),
		"heap_objects_per_stream": float64(ms.HeapObjects) / float64(max(open, 1)),
		"go_sys_per_stream_kib":   per(ms.Sys),
		"hold_requests":           done1 - done0, "hold_cpu_s": cpu1 - cpu0, "hold_wall_s": wall.Seconds(),
		"req_per_cpu_s": float64(done1-done0) / max(cpu1-cpu0, 1e-9), "failures": failed.Load(),
	}
	hmu.Lock()
	for name, h := range map[string]map[int64]int64{"ttfb": ttfbH, "total": totalH} {
		var n int64
		for _, c := range h {
			n += c
		}
		if n > 0 {
			out[name+"_p50_ms"] = locust.Percentile(h, n, 0.5)
			out[name+"_p95_ms"] = locust.Percentile(h, n, 0.95)
		}
	}
	hmu.Unlock()
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}

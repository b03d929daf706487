// Command testworker is a Go worker with synthetic users, used by the
// locust package's integration tests against real Locust masters. Its
// requests never leave the process: each "request" sleeps a drawn latency
// and records it, so counts and buckets are known exactly on the worker side.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zenoload/zenoload/locust"
)

type synthUser struct {
	env *locust.Env
	// fail every n-th request (0: never)
	failEvery int
	n         int
}

func (u *synthUser) Tasks() []locust.Task {
	return []locust.Task{{Name: "req", Weight: 1, Fn: u.request}}
}

func (u *synthUser) WaitTime() locust.WaitTime { return locust.Constant(20 * time.Millisecond) }

func (u *synthUser) request(ctx context.Context) error {
	// Latencies spread over several bucket ranges: 1-9 ms, 100-400 ms.
	var d time.Duration
	if u.env.Rand.IntN(4) == 0 {
		d = time.Duration(100+u.env.Rand.IntN(300)) * time.Millisecond
	} else {
		d = time.Duration(1+u.env.Rand.IntN(9)) * time.Millisecond
	}
	start := time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return nil // cancelled by stop: not a request
	}
	u.n++
	errText := ""
	if u.failEvery > 0 && u.n%u.failEvery == 0 {
		errText = "synthetic failure"
	}
	ms := float64(time.Since(start).Microseconds()) / 1000
	u.env.Recorder.Record("GET", "/"+u.env.Class, ms, 100, errText)
	return nil
}

func main() {
	host := flag.String("master-host", "127.0.0.1", "")
	port := flag.Int("master-port", 5557, "")
	summary := flag.String("summary", "", "write the cumulative summary JSON here at exit")
	failEvery := flag.Int("fail-every", 0, "")
	classes := flag.String("classes", "SynthUser", "comma-separated class names to register")
	hbTimeout := flag.Duration("master-heartbeat-timeout", 0, "")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var ucs []locust.UserClass
	for _, name := range splitComma(*classes) {
		ucs = append(ucs, locust.UserClass{Name: name, New: func(env *locust.Env) (locust.User, error) {
			return &synthUser{env: env, failEvery: *failEvery}, nil
		}})
	}
	w, err := locust.NewWorker(locust.Config{MasterHost: *host, MasterPort: *port, Classes: ucs, Logger: log,
		MasterHeartbeatTimeout: *hbTimeout})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runErr := w.Run(ctx)
	locust.Shutdown()
	if *summary != "" {
		out := struct {
			locust.Summary
			Spawned map[string]int64 `json:"spawned"`
			Index   int              `json:"worker_index"`
		}{w.Stats().Summary(), w.SpawnedCounts(), w.Index()}
		b, _ := json.MarshalIndent(out, "", "  ")
		_ = os.WriteFile(*summary, b, 0o644)
	}
	if runErr != nil {
		fmt.Fprintln(os.Stderr, runErr)
		os.Exit(1)
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

package locust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// StandaloneConfig runs users with no master: for debugging and demos.
type StandaloneConfig struct {
	Classes     []UserClass
	Users       int
	SpawnRate   float64 // users started per second; ≤0 means all at once
	RunTime     time.Duration
	StopTimeout time.Duration
	Host        string
	Options     Options
	Logger      *slog.Logger
	Redact      func(string) string
	Out         io.Writer     // the stats table; nil: discard
	Interval    time.Duration // table refresh; default 5 s
	Stats       *Stats
	// Reporters are drained on every table refresh so their windows stay
	// bounded; their messages are handed to OnReport (may be nil).
	Reporters []Reporter
	OnReport  func(msgType string, data any)
}

// RunStandalone ramps up Users at SpawnRate, runs for RunTime (or until ctx
// ends), stops users gracefully and returns the cumulative summary.
func RunStandalone(ctx context.Context, cfg StandaloneConfig) (Summary, error) {
	if len(cfg.Classes) == 0 {
		return Summary{}, errors.New("no user classes registered")
	}
	if cfg.Users < 1 {
		return Summary{}, fmt.Errorf("users must be at least 1, got %d", cfg.Users)
	}
	if cfg.RunTime <= 0 {
		return Summary{}, fmt.Errorf("run time must be positive, got %s", cfg.RunTime)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Stats == nil {
		cfg.Stats = NewStats(0)
	}
	p := newPool(cfg.Classes, cfg.Stats, cfg.Logger, cfg.Redact, nil, func(string, any) error { return nil })
	p.configure(cfg.Host, cfg.Options, 0)
	cfg.Stats.Reset()

	runCtx, cancel := context.WithTimeout(ctx, cfg.RunTime)
	defer cancel()
	plan := dispatchPlan(cfg.Classes, cfg.Users)
	tbl := &table{out: cfg.Out, start: time.Now()}
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	var step <-chan time.Time
	spawned := 0
	spawnOne := func() {
		spawned++
		p.apply(ctx, countsOf(plan[:spawned]), cfg.StopTimeout)
	}
	if cfg.SpawnRate <= 0 {
		spawned = len(plan)
		p.apply(ctx, countsOf(plan), cfg.StopTimeout)
	} else {
		t := time.NewTicker(time.Duration(float64(time.Second) / cfg.SpawnRate))
		defer t.Stop()
		step = t.C
		spawnOne()
	}
	flush := func(final bool) {
		w := cfg.Stats.take()
		cfg.Stats.commit(w)
		for _, r := range cfg.Reporters {
			if typ, data, ok := r(final); ok && cfg.OnReport != nil {
				cfg.OnReport(typ, data)
			}
		}
		tbl.print(cfg.Stats.Summary(), p.total(), final)
	}
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case <-step:
			if spawned < len(plan) {
				spawnOne()
			} else {
				step = nil
			}
		case <-tick.C:
			flush(false)
		}
	}
	p.stopAll(cfg.StopTimeout)
	flush(true)
	return cfg.Stats.Summary(), nil
}

// dispatchPlan orders users by class like Locust's dispatcher: fixed counts
// first, then smooth weighted round-robin, so any prefix is well mixed.
func dispatchPlan(classes []UserClass, users int) []string {
	var plan []string
	var weighted []UserClass
	for _, c := range classes {
		for i := 0; i < c.FixedCount && len(plan) < users; i++ {
			plan = append(plan, c.Name)
		}
		if c.FixedCount == 0 {
			weighted = append(weighted, c)
		}
	}
	total := 0
	for _, c := range weighted {
		total += max(c.Weight, 1)
	}
	cur := make([]int, len(weighted))
	for len(plan) < users && len(weighted) > 0 {
		best := 0
		for i, c := range weighted {
			cur[i] += max(c.Weight, 1)
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		plan = append(plan, weighted[best].Name)
	}
	return plan
}

func countsOf(plan []string) map[string]int {
	m := map[string]int{}
	for _, n := range plan {
		m[n]++
	}
	return m
}

// table prints a Locust-like stats table.
type table struct {
	out      io.Writer
	start    time.Time
	lastReqs map[string]int64
	lastAt   time.Time
}

func (t *table) print(s Summary, users int, final bool) {
	now := time.Now()
	elapsed := now.Sub(t.lastAt).Seconds()
	if t.lastAt.IsZero() {
		elapsed = now.Sub(t.start).Seconds()
	}
	var b strings.Builder
	title := "running"
	if final {
		title = "final"
	}
	fmt.Fprintf(&b, "\n[%s] %d users, %s elapsed\n", title, users, now.Sub(t.start).Round(time.Second))
	fmt.Fprintf(&b, "%-6s %-24s %8s %14s | %7s %7s %7s %7s %7s | %7s\n",
		"Type", "Name", "# reqs", "# fails", "Avg", "Min", "Max", "Med", "95%", "req/s")
	b.WriteString(strings.Repeat("-", 112) + "\n")
	rows := append(append([]EntrySummary{}, s.Entries...), s.Total)
	next := map[string]int64{}
	for _, e := range rows {
		key := e.Method + " " + e.Name
		rps := 0.0
		if elapsed > 0 {
			rps = float64(e.Requests-t.lastReqs[key]) / elapsed
		}
		next[key] = e.Requests
		pct := 0.0
		if e.Requests > 0 {
			pct = 100 * float64(e.Failures) / float64(e.Requests)
		}
		fmt.Fprintf(&b, "%-6s %-24s %8d %6d(%5.1f%%) | %7.0f %7.0f %7.0f %7d %7d | %7.2f\n",
			e.Method, trunc(e.Name, 24), e.Requests, e.Failures, pct, e.AvgMs, e.MinMs, e.MaxMs, e.P50Ms, e.P95Ms, rps)
	}
	if final && len(s.Errors) > 0 {
		b.WriteString("\nFailures:\n")
		for _, e := range s.Errors {
			fmt.Fprintf(&b, "  %6d  %s %s: %s\n", e.Occurrences, e.Method, e.Name, e.Error)
		}
	}
	t.lastReqs, t.lastAt = next, now
	_, _ = io.WriteString(t.out, b.String())
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

package main

import (
	"context"
	"fmt"
	"io"

	"github.com/zenoload/zenoload/locust"
)

const standaloneSummary = `zeno-worker standalone runs ZenoChatUser load with no Locust master: users, spawn
rate and run time are given here. It prints a live stats table and writes a JSON summary.`

func runStandalone(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	f, err := newFlags("zeno-worker standalone", standaloneSummary, args, stderr, getenv)
	if err != nil {
		return err
	}
	users := f.fs.Int("u", 1, "number of users")
	f.fs.IntVar(users, "users", 1, "number of users (same as -u)")
	rate := f.fs.Float64("r", 1, "users started per second")
	f.fs.Float64Var(rate, "spawn-rate", 1, "users started per second (same as -r)")
	runTime := f.fs.Duration("t", 0, "run time, e.g. 30s or 5m (required)")
	f.fs.DurationVar(runTime, "run-time", 0, "run time (same as -t)")
	stopTimeout := f.fs.Duration("stop-timeout", 0, "let in-flight requests finish this long at the end")
	summaryPath := f.String("summary-json", "ZENO_SUMMARY_JSON", "zeno-summary.json", "write the final summary JSON here ('' to skip)")
	chat := addChatFlags(f, "Zeno API base URL (default http://localhost:8000)")
	lf := addLogFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	st, err := chat.build(f.env, lf, stderr)
	if err != nil {
		return err
	}
	red := st.red
	var zeno []any
	sum, err := locust.RunStandalone(ctx, locust.StandaloneConfig{
		Classes: []locust.UserClass{st.class}, Users: *users, SpawnRate: *rate, RunTime: *runTime,
		StopTimeout: *stopTimeout, Host: st.baseURL, Logger: st.log, Redact: red.String, Out: stdout,
		Reporters: []locust.Reporter{st.metrics.Report},
		OnReport:  func(_ string, data any) { zeno = append(zeno, data) },
	})
	if err != nil {
		return err
	}
	if *summaryPath != "" {
		out := struct {
			locust.Summary
			ZenoWindows []any `json:"zeno_metrics_windows"`
		}{sum, zeno}
		if err := writeJSON(*summaryPath, out, red); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
		fmt.Fprintf(stdout, "\nsummary written to %s\n", *summaryPath)
	}
	return nil
}

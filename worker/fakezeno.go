package main

import (
	"context"
	"fmt"
	"io"

	"github.com/zenoload/zenoload/fakezeno"
	"github.com/zenoload/zenoload/redact"
)

const fakeSummary = `zeno-worker fake-zeno serves a realistic fake of the Project Zeno chat API
(auth, quota, threads, NDJSON streams, fault injection) for offline tests and
benchmarks. GET /_fake/stats returns the server's ground truth as JSON.`

func runFakeZeno(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	f, err := newFlags("zeno-worker fake-zeno", fakeSummary, args, stderr, getenv)
	if err != nil {
		return err
	}
	listen := f.String("listen", "FAKE_ZENO_LISTEN", "127.0.0.1:8000", "address to listen on")
	cfg := fakezeno.DefaultConfig()
	cfg.RegisterFlags(f.fs)
	lf := addLogFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	if err := cfg.Finish(); err != nil {
		return fmt.Errorf("fake-zeno: %w", err)
	}
	red := redact.New()
	for _, k := range cfg.Keys {
		red.Add(k.Token())
	}
	log, err := lf.logger(stderr, red)
	if err != nil {
		return err
	}
	cfg.Logger = log
	srv, err := fakezeno.New(cfg)
	if err != nil {
		return fmt.Errorf("fake-zeno: %w", err)
	}
	log.Info("fake Zeno API listening", "addr", "http://"+*listen, "quota", cfg.Quota, "time_scale", cfg.TimeScale)
	return srv.ListenAndServe(ctx, *listen)
}

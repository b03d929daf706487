package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zenoload/zenoload/scenario"
	"github.com/zenoload/zenoload/tasks"
)

const scenarioSummary = `zeno-worker scenario NAME [flags] [-- extra locust master arguments]

Runs a predefined scenario: a stock Locust master (locust -f locustfile_master.py
--master) plus local Go workers, reports under reports/<scenario>-<time>/, and
PASS/FAIL on the release criteria (analysis p95 < 30 s, failures < 1% per
request type, no 429). NAME is smoke, load, stress, spike or all.
With API_BASE_URL unset it starts the embedded fake Zeno (no token needed).`

func runScenario(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	name := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	var masterArgs []string
	for i, a := range args {
		if a == "--" {
			args, masterArgs = args[:i], args[i+1:]
			break
		}
	}
	f, err := newFlags("zeno-worker scenario", scenarioSummary, args, stderr, getenv)
	if err != nil {
		return err
	}
	workers := f.fs.Int("workers", 2, "number of local Go workers")
	users := f.fs.Int("users", 0, "override the scenario's users")
	duration := f.fs.Duration("duration", 0, "override the scenario's duration (e.g. 30s)")
	rate := f.fs.Float64("spawn-rate", 0, "override the scenario's spawn rate (users/s)")
	webUI := f.fs.Bool("web-ui", false, "start the master with its web UI instead of headless, and wait")
	webPort := f.fs.Int("web-port", 8089, "web UI port with --web-ui")
	reports := f.String("reports", "ZENO_REPORTS_DIR", "reports", "folder for the scenario reports")
	locustfile := f.String("locustfile", "ZENO_LOCUSTFILE", "", "master locustfile (default: locustfile_master.py here or next to the binary)")
	target := f.String("host", "API_BASE_URL", "", "Zeno API base URL; empty starts the embedded fake Zeno")
	timeScale := f.Float("fake-time-scale", "ZENO_FAKE_TIME_SCALE", 0.1, "delay scale of the embedded fake (1 = realistic 2-30 s answers)")
	lf := addLogFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	if name == "" && f.fs.NArg() > 0 {
		name = f.fs.Arg(0)
	}
	if name == "" {
		fmt.Fprintln(stderr, "zeno-worker scenario: name a scenario: smoke, load, stress, spike or all")
		return errUsage
	}
	var list []scenario.Scenario
	if name == "all" {
		list = scenario.Table()
	} else {
		s, err := scenario.Lookup(name)
		if err != nil {
			return err
		}
		list = []scenario.Scenario{s}
	}
	for i := range list {
		if *users > 0 {
			list[i].Users = *users
		}
		if *duration > 0 {
			list[i].Duration = *duration
		}
		if *rate > 0 {
			list[i].SpawnRate = *rate
		}
		if list[i].Duration < time.Second {
			return fmt.Errorf("--duration must be at least 1s")
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	lfile, err := findLocustfile(*locustfile, exe)
	if err != nil {
		return err
	}
	locustCmd, err := scenario.FindLocust(f.env.getenv, filepath.Dir(lfile))
	if err != nil {
		return err
	}
	var workerEnv []string
	pool, tokErr := tasks.TokenPoolFromEnv(f.env.getenv)
	switch {
	case *target == "" && errors.Is(tokErr, tasks.ErrTokenMissing):
		workerEnv = append(workerEnv, tasks.EnvToken+"="+scenario.DemoToken())
		fmt.Fprintln(stdout, "no ZENO_MACHINE_USER_TOKEN set: using a generated demo key for the embedded fake Zeno")
	case tokErr != nil:
		return tokErr
	}
	red := pool.Redactor()
	log, err := lf.logger(stderr, red)
	if err != nil {
		return err
	}
	failed := 0
	var dirs []string
	for _, s := range list {
		res, err := scenario.Run(ctx, scenario.Options{
			Scenario: s, Workers: *workers, WebUI: *webUI, WebPort: *webPort, ReportsRoot: *reports,
			Locust: locustCmd, Locustfile: lfile, WorkerBin: exe, Target: *target, FakeTimeScale: *timeScale,
			WorkerEnv: workerEnv, MasterArgs: masterArgs, Thresholds: scenario.DefaultThresholds(), Out: stdout, Log: log,
		})
		dirs = append(dirs, res.Dir)
		if err != nil {
			fmt.Fprintf(stdout, "\nscenario %s: %s\n", s.Name, red.String(err.Error()))
			failed++
		} else if !*webUI {
			scenario.PrintChecks(stdout, s.Name, res.Checks)
			if !res.Passed() {
				failed++
			}
		}
		if res.FakeStats != nil {
			gt := res.FakeStats
			fmt.Fprintf(stdout, "  fake Zeno received %d chat requests; %d were still in flight when the test ended (not recorded by Locust) (ground truth: %s)\n",
				gt.ChatRequestsTotal, gt.StreamsClientGone+gt.AbortedBeforeHeaders, filepath.Join(res.Dir, "fake_zeno_stats.json"))
		}
		fmt.Fprintf(stdout, "  reports: %s (report.html, %s_stats.csv, %s_zeno.csv)\n", res.Dir, s.Name, s.Name)
		if ctx.Err() != nil {
			break
		}
	}
	if len(list) > 1 {
		fmt.Fprintf(stdout, "\n=== all: %d of %d scenarios passed; reports in %s\n", len(list)-failed, len(list), strings.Join(dirs, ", "))
	}
	if failed > 0 {
		return errFailed
	}
	return nil
}

// findLocustfile: the flag, ./locustfile_master.py, or next to the binary's
// folder (bin/zeno-worker → ./locustfile_master.py).
func findLocustfile(flagVal, exe string) (string, error) {
	cands := []string{"locustfile_master.py", filepath.Join(filepath.Dir(exe), "..", "locustfile_master.py")}
	if flagVal != "" {
		cands = []string{flagVal}
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return filepath.Abs(c)
		}
	}
	return "", fmt.Errorf("master locustfile not found (tried %s); pass --locustfile", strings.Join(cands, ", "))
}

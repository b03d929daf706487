package scenario

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/zenoload/zenoload/fakezeno"
)

// Options configure one scenario run.
type Options struct {
	Scenario      Scenario
	Workers       int
	WebUI         bool
	WebPort       int
	ReportsRoot   string
	Locust        []string // argv prefix running `locust`; see FindLocust
	Locustfile    string
	WorkerBin     string
	Target        string  // Zeno base URL; empty starts the embedded fake
	FakeTimeScale float64 // for the embedded fake
	WorkerEnv     []string
	MasterArgs    []string // extra arguments for the master (after --)
	Thresholds    Thresholds
	Out           io.Writer
	Log           *slog.Logger
}

// Result is what a run produced.
type Result struct {
	Dir        string
	Checks     []Check
	MasterExit int
	FakeStats  *fakezeno.GroundTruth
}

// Passed reports whether every criterion passed.
func (r Result) Passed() bool {
	for _, c := range r.Checks {
		if !c.Pass {
			return false
		}
	}
	return len(r.Checks) > 0
}

// FindLocust resolves the locust executable: $LOCUST_BIN, the project's
// .venv (next to the locustfile), then PATH.
func FindLocust(getenv func(string) string, projectDir string) ([]string, error) {
	if b := getenv("LOCUST_BIN"); b != "" {
		if _, err := exec.LookPath(b); err != nil {
			return nil, fmt.Errorf("LOCUST_BIN=%s is not executable: %w", b, err)
		}
		return []string{b}, nil
	}
	venv := filepath.Join(projectDir, ".venv", "bin", "locust")
	if _, err := os.Stat(venv); err == nil {
		return []string{venv}, nil
	}
	if p, err := exec.LookPath("locust"); err == nil {
		return []string{p}, nil
	}
	return nil, errors.New("Locust not found: set LOCUST_BIN, or install the pinned version with " +
		"`make venv` (python3 -m venv .venv && .venv/bin/pip install -r requirements.txt)")
}

// DemoToken makes a well-formed machine key for the embedded fake, which
// accepts any such key.
func DemoToken() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return "zeno-key:demo" + h[:4] + ":" + h[8:40]
}

// Run runs one scenario to the end (or until ctx is cancelled).
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Workers < 1 {
		return Result{}, fmt.Errorf("--workers must be at least 1, got %d", o.Workers)
	}
	res := Result{Dir: filepath.Join(o.ReportsRoot, fmt.Sprintf("%s-%s", o.Scenario.Name, time.Now().Format("20060102-150405")))}
	if err := os.MkdirAll(res.Dir, 0o755); err != nil {
		return res, fmt.Errorf("reports folder: %w", err)
	}
	target := o.Target
	var fake *fakezeno.Server
	if target == "" {
		cfg := fakezeno.DefaultConfig()
		cfg.TimeScale = o.FakeTimeScale
		cfg.Logger = o.Log
		srv, err := fakezeno.New(cfg)
		if err != nil {
			return res, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return res, fmt.Errorf("embedded fake Zeno: %w", err)
		}
		fctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); _ = srv.Serve(fctx, ln) }()
		defer func() { stop(); wg.Wait() }()
		fake, target = srv, "http://"+ln.Addr().String()
		fmt.Fprintf(o.Out, "API_BASE_URL is not set: using the embedded fake Zeno at %s (time scale %g)\n", target, o.FakeTimeScale)
	}
	port, err := freePort()
	if err != nil {
		return res, err
	}
	s := o.Scenario
	prefix := filepath.Join(res.Dir, s.Name)
	args := append(append([]string{}, o.Locust...), "-f", o.Locustfile, "--master",
		"--master-bind-host", "127.0.0.1", "--master-bind-port", strconv.Itoa(port),
		"-u", strconv.Itoa(s.Users), "-r", strconv.FormatFloat(s.SpawnRate, 'f', -1, 64),
		"-t", fmt.Sprintf("%ds", int(s.Duration.Seconds())), "--expect-workers", strconv.Itoa(o.Workers),
		"--host", target, "--csv", prefix, "--csv-full-history", "--html", filepath.Join(res.Dir, "report.html"))
	if o.WebUI {
		args = append(args, "--web-host", "127.0.0.1", "--web-port", strconv.Itoa(o.WebPort))
	} else {
		args = append(args, "--headless")
	}
	args = append(args, o.MasterArgs...)
	fmt.Fprintf(o.Out, "\n=== scenario %s: %s\n    %d users, spawn rate %g/s, %s, %d Go workers, target %s\n    reports: %s\n\n",
		s.Name, s.Description, s.Users, s.SpawnRate, s.Duration, o.Workers, target, res.Dir)

	mlog, err := os.Create(filepath.Join(res.Dir, "master.log"))
	if err != nil {
		return res, err
	}
	defer mlog.Close()
	master := exec.Command(args[0], args[1:]...)
	master.Stdout = io.MultiWriter(o.Out, mlog)
	master.Stderr = master.Stdout
	if err := master.Start(); err != nil {
		return res, fmt.Errorf("start locust master: %w", err)
	}
	masterDone := make(chan error, 1)
	go func() { masterDone <- master.Wait() }()
	if o.WebUI {
		fmt.Fprintf(o.Out, "Locust web UI: http://127.0.0.1:%d  (Ctrl-C to stop)\n", o.WebPort)
	}

	var workers []*exec.Cmd
	for i := 0; i < o.Workers; i++ {
		wl, err := os.Create(filepath.Join(res.Dir, fmt.Sprintf("worker-%d.log", i)))
		if err != nil {
			return res, err
		}
		defer wl.Close()
		w := exec.Command(o.WorkerBin, "--master-host", "127.0.0.1", "--master-port", strconv.Itoa(port),
			"--summary-json", filepath.Join(res.Dir, fmt.Sprintf("worker-%d.json", i)), "--master-timeout", "2m")
		w.Env = append(os.Environ(), o.WorkerEnv...)
		w.Stdout, w.Stderr = wl, wl
		if err := w.Start(); err != nil {
			_ = master.Process.Kill()
			return res, fmt.Errorf("start worker: %w", err)
		}
		workers = append(workers, w)
	}

	select {
	case <-masterDone:
	case <-ctx.Done():
		// Ctrl-C: let the master quit its workers and write its reports.
		_ = master.Process.Signal(syscall.SIGINT)
		select {
		case <-masterDone:
		case <-time.After(30 * time.Second):
			_ = master.Process.Kill()
			<-masterDone
		}
	}
	res.MasterExit = master.ProcessState.ExitCode()
	waitWorkers(workers, 15*time.Second)
	if fake != nil {
		gt := fake.Stats()
		res.FakeStats = &gt
		if b, err := json.MarshalIndent(gt, "", "  "); err == nil {
			_ = os.WriteFile(filepath.Join(res.Dir, "fake_zeno_stats.json"), b, 0o644)
		}
	}
	if res.MasterExit != 0 && res.MasterExit != 1 {
		return res, fmt.Errorf("locust master exited with code %d; see %s", res.MasterExit, filepath.Join(res.Dir, "master.log"))
	}
	if o.WebUI && ctx.Err() != nil {
		return res, nil
	}
	res.Checks, err = Evaluate(prefix, o.Thresholds)
	return res, err
}

// waitWorkers gives workers time to send their last stats, then kills them.
func waitWorkers(ws []*exec.Cmd, d time.Duration) {
	deadline := time.After(d)
	for _, w := range ws {
		done := make(chan struct{})
		go func() { _ = w.Wait(); close(done) }()
		select {
		case <-done:
		case <-deadline:
			_ = w.Process.Kill()
			<-done
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PrintChecks prints PASS/FAIL per criterion.
func PrintChecks(w io.Writer, name string, checks []Check) {
	fmt.Fprintf(w, "\n=== %s: success criteria\n", name)
	for _, c := range checks {
		v := "PASS"
		if !c.Pass {
			v = "FAIL"
		}
		fmt.Fprintf(w, "  %s  %-40s %s\n", v, c.Name, c.Detail)
	}
}

package reliability

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zenoload/zenoload/fakezeno"
	"github.com/zenoload/zenoload/internal/locusttest"
)

// Known tokens. The secrets must never appear in any output; the prefixes may.
const (
	prefixA = "a1b2c3d4"
	secretA = "5ec7e7a15ec7e7a15ec7e7a15ec7e7a1" // 32 hex
	prefixB = "b1b2c3d4"
	secretB = "5ec7e7b25ec7e7b25ec7e7b25ec7e7b2"
	prefixC = "c1b2c3d4"
	secretC = "5ec7e7c35ec7e7c35ec7e7c35ec7e7c3"
	// wrongSecret pairs with prefixA but is not its secret: HTTP 401.
	wrongSecret = "bad0bad0bad0bad0bad0bad0bad0bad0"
)

func token(prefix, secret string) string { return "zeno-key:" + prefix + ":" + secret }

var (
	binDir   string
	buildMu  sync.Mutex
	workerBn string
)

func TestMain(m *testing.M) {
	flag.Parse()
	// These tests mostly wait (on masters, streams and timeouts), so they run
	// a few at a time even on two cores, unless -parallel was given.
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "3")
	}
	var err error
	binDir, err = os.MkdirTemp("", "zeno-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// integration skips under -short and returns the zeno-worker binary, built
// once per package run.
func integration(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end reliability test; skipped under -short")
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if workerBn == "" && os.Getenv("ZENO_WORKER_BIN") != "" {
		workerBn = os.Getenv("ZENO_WORKER_BIN") // test another build
	}
	if workerBn == "" {
		workerBn = locusttest.GoBuild(t, binDir, "./worker")
		// GoBuild names the binary after the package folder.
		if filepath.Base(workerBn) != "zeno-worker" {
			nb := filepath.Join(binDir, "zeno-worker")
			if err := os.Rename(workerBn, nb); err != nil {
				t.Fatal(err)
			}
			workerBn = nb
		}
	}
	return workerBn
}

// masters returns the masters to test; only247 keeps just 2.47.0.
func masters(t *testing.T, only247 bool) []locusttest.Master {
	ms := locusttest.Masters(t)
	if only247 {
		var out []locusttest.Master
		for _, m := range ms {
			if m.Version == "2.47.0" {
				out = append(out, m)
			}
		}
		ms = out
	}
	if len(ms) == 0 {
		t.Skip("no Locust master installed")
	}
	return ms
}

// ---------------------------------------------------------------- fake Zeno

type fake struct {
	srv *fakezeno.Server
	URL string
}

// startFake serves a fake Zeno API in this process on a loopback port.
func startFake(t *testing.T, cfg fakezeno.Config) *fake {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := fakezeno.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &fake{srv: srv, URL: "http://" + ln.Addr().String()}
}

// fastFake is a fake with every delay scaled down by scale.
func fastFake(t *testing.T, scale float64, mod func(*fakezeno.Config)) *fake {
	cfg := fakezeno.DefaultConfig()
	cfg.TimeScale = scale
	if mod != nil {
		mod(&cfg)
	}
	return startFake(t, cfg)
}

// recorded is what a correct load generator records from the fake: every
// request that got a status (streams cancelled by a stop are not results).
func recorded(g fakezeno.GroundTruth) int64 {
	return g.ChatRequestsTotal - g.AbortedBeforeHeaders - g.StreamsClientGone
}

// closedPort returns a loopback port with nothing listening.
func closedPort(t *testing.T) int { return locusttest.FreePort(t) }

// ---------------------------------------------------------------- processes

type run struct {
	t   *testing.T
	ctx context.Context
	dir string
	bin string
}

func newRun(t *testing.T, timeout time.Duration) *run {
	bin := integration(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	r := &run{t: t, ctx: ctx, dir: t.TempDir(), bin: bin}
	// ZENO_RELIABILITY_KEEP=DIR keeps each run folder (logs, CSV, HTML) there.
	if keep := os.Getenv("ZENO_RELIABILITY_KEEP"); keep != "" {
		t.Cleanup(func() {
			dst := filepath.Join(keep, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
			_ = os.RemoveAll(dst)
			_ = os.CopyFS(dst, os.DirFS(r.dir))
		})
	}
	return r
}

// master starts `locust -f locustfile_master.py --master` bound to port.
func (r *run) master(m locusttest.Master, port int, args ...string) *locusttest.Proc {
	argv := m.Argv(filepath.Join(locusttest.RepoRoot(), "locustfile_master.py"), port, args...)
	if !hasArg(args, "--zeno-wait-min") {
		argv = append(argv, "--zeno-wait-min", "0.2", "--zeno-wait-max", "0.5")
	}
	if !hasArg(args, "--zeno-think-min") {
		argv = append(argv, "--zeno-think-min", "0.1", "--zeno-think-max", "0.3")
	}
	return locusttest.Start(r.t, r.ctx, r.dir, nil, argv...)
}

// webMaster starts a master with its web UI and returns it with the UI.
func (r *run) webMaster(m locusttest.Master, port int, host string, args ...string) (*locusttest.Proc, *webUI) {
	wp := locusttest.FreePort(r.t)
	a := append([]string{"--web-host", "127.0.0.1", "--web-port", strconv.Itoa(wp), "--host", host}, args...)
	p := r.master(m, port, a...)
	return p, &webUI{WebUI: locusttest.WebUI{Base: fmt.Sprintf("http://127.0.0.1:%d", wp), Host: host}, proc: p}
}

// worker starts a zeno-worker joined to the master on port.
func (r *run) worker(port int, env []string, args ...string) *locusttest.Proc {
	if len(env) == 0 {
		env = []string{"ZENO_MACHINE_USER_TOKEN=" + token(prefixA, secretA)}
	}
	// No .env from the test's folder, no tokens from the developer's shell.
	env = append([]string{"ZENO_MACHINE_USER_TOKENS=", "ZENO_MACHINE_USER_TOKENS_FILE=", "API_BASE_URL="}, env...)
	argv := append([]string{r.bin, "--master-host", "127.0.0.1", "--master-port", strconv.Itoa(port)}, args...)
	return locusttest.Start(r.t, r.ctx, r.dir, env, argv...)
}

func hasArg(args []string, a string) bool {
	for _, x := range args {
		if x == a {
			return true
		}
	}
	return false
}

// alive reports whether p has not exited.
func alive(p *locusttest.Proc) bool {
	_, err := p.Wait(20 * time.Millisecond)
	return err != nil
}

// saveLogs writes each process's output into the run folder.
func (r *run) saveLogs(procs map[string]*locusttest.Proc) {
	for name, p := range procs {
		_ = os.WriteFile(filepath.Join(r.dir, name+".log"), []byte(p.Output()), 0o644)
	}
}

// rssKiB reads VmRSS of pid from /proc (0 if gone).
func rssKiB(pid int) int64 {
	return procStatusKiB(pid, "VmRSS:")
}

func procStatusKiB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func sigterm(p *locusttest.Proc) {
	if p.Cmd.Process != nil {
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	}
}

// ---------------------------------------------------------------- web UI

type webUI struct {
	locusttest.WebUI
	proc *locusttest.Proc
}

// ---------------------------------------------------------------- CSV

func aggregated(t *testing.T, rows []map[string]string) (reqs, fails int64) {
	for _, r := range rows {
		if r["Name"] == "Aggregated" || r["Name"] == "Total" {
			reqs, _ = strconv.ParseInt(r["Request Count"], 10, 64)
			fails, _ = strconv.ParseInt(r["Failure Count"], 10, 64)
			return
		}
	}
	t.Fatalf("no Aggregated row")
	return
}

// failureTexts maps each failure text (2.12.1's repr quotes removed) to its
// occurrences.
func failureTexts(t *testing.T, path string) map[string]int64 {
	out := map[string]int64{}
	for _, r := range locusttest.ReadCSV(t, path) {
		e := r["Error"]
		if len(e) >= 2 && (e[0] == '\'' || e[0] == '"') && e[len(e)-1] == e[0] {
			e = e[1 : len(e)-1]
		}
		n, _ := strconv.ParseInt(r["Occurrences"], 10, 64)
		out[e] += n
	}
	return out
}

// logTimes extracts the slog time= of each line matching re.
func logTimes(out string, re *regexp.Regexp) []time.Time {
	var ts []time.Time
	for _, line := range strings.Split(out, "\n") {
		if !re.MatchString(line) {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if v, ok := strings.CutPrefix(f[0], "time="); ok {
			if tm, err := time.Parse(time.RFC3339Nano, v); err == nil {
				ts = append(ts, tm)
			}
		}
	}
	return ts
}

// Package locusttest starts real Locust masters for integration tests. It
// finds the two versions the project supports: 2.47.0 from the project's
// virtual environment and Debian's 2.12.1.
package locusttest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Master is one Locust master version.
type Master struct {
	Version string
	Cmd     []string // argv prefix that runs `locust`
}

// Argv is the command line of this master running locustfile, bound to
// port on loopback, followed by extra arguments.
func (m Master) Argv(locustfile string, port int, extra ...string) []string {
	argv := append(append([]string{}, m.Cmd...), "-f", locustfile, "--master",
		"--master-bind-host", "127.0.0.1", "--master-bind-port", strconv.Itoa(port))
	return append(argv, extra...)
}

// RepoRoot walks up from this file to the module root.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Masters returns the available masters. When ZENOLOAD_REQUIRE_MASTERS=1 (as
// in `make test`) a missing master fails the test instead of skipping it.
func Masters(t testing.TB) []Master {
	t.Helper()
	var out []Master
	venv := os.Getenv("LOCUST_BIN")
	if venv == "" {
		venv = filepath.Join(RepoRoot(), ".venv", "bin", "locust")
	}
	if _, err := os.Stat(venv); err == nil {
		out = append(out, Master{"2.47.0", []string{venv}})
	} else {
		missing(t, "Locust 2.47.0 (run `make venv`)")
	}
	if _, err := os.Stat("/usr/lib/python3/dist-packages/locust/__init__.py"); err == nil {
		out = append(out, Master{"2.12.1", []string{"/usr/bin/python3", "-m", "locust"}})
	} else {
		missing(t, "Debian python3-locust 2.12.1 (apt-get install python3-locust)")
	}
	return out
}

func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("ZENOLOAD_REQUIRE_MASTERS") == "1" {
		t.Fatalf("required master not installed: %s", what)
	}
	t.Logf("skipping master: %s not installed", what)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Proc is a started process whose combined output is captured.
type Proc struct {
	Cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
	err  error
}

// Start runs argv in dir with a hard deadline; output goes to Output().
func Start(t testing.TB, ctx context.Context, dir string, env []string, argv ...string) *Proc {
	t.Helper()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	pw.Close()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if p.Cmd.Process != nil {
			_ = p.Cmd.Process.Kill()
		}
		<-p.done
	})
	return p
}

// Output is everything the process printed so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Wait waits for exit up to d and returns the exit code (-1 on timeout).
func (p *Proc) Wait(d time.Duration) (int, error) {
	select {
	case <-p.done:
		if p.Cmd.ProcessState == nil {
			return -1, p.err
		}
		return p.Cmd.ProcessState.ExitCode(), nil
	case <-time.After(d):
		return -1, fmt.Errorf("still running after %s", d)
	}
}

// WaitFor polls cond until it is true or d passes.
func WaitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return cond()
}

// GoBuild builds pkg into dir and returns the binary path.
func GoBuild(t testing.TB, dir, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

package reliability

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zenoload/zenoload/internal/locusttest"
)

// TestBadInput: every bad token, flag, environment value, .env value and
// query file gives a clear message and a non-zero exit at once, before any
// connection attempt, and never echoes a secret.
func TestBadInput(t *testing.T) {
	bin := integration(t)
	t.Parallel()
	good := "ZENO_MACHINE_USER_TOKEN=" + token(prefixA, secretA)
	port := strconv.Itoa(closedPort(t))
	write := func(dir, name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	type tc struct {
		name  string
		env   []string
		args  []string
		files map[string]string // written into the working folder first
		want  []string          // all must appear in the output
		code  int               // 0: any non-zero
		// noToken: no ZENO_MACHINE_USER_TOKEN in the environment at all
		// (an empty real variable would win over .env).
		noToken bool
	}
	cases := []tc{
		{name: "token-missing", env: []string{"ZENO_MACHINE_USER_TOKEN="}, want: []string{"ZENO_MACHINE_USER_TOKEN must be set"}},
		{name: "token-two-parts", env: []string{"ZENO_MACHINE_USER_TOKEN=zeno-key:" + secretA}, want: []string{"Invalid machine user token format"}},
		{name: "token-four-parts", env: []string{"ZENO_MACHINE_USER_TOKEN=zeno-key:" + prefixA + ":" + secretA + ":x"}, want: []string{"Invalid machine user token format"}},
		{name: "token-bearer-prefix", env: []string{"ZENO_MACHINE_USER_TOKEN=Bearer " + token(prefixA, secretA)}, want: []string{"Invalid machine user token format"}},
		{name: "token-not-zeno", env: []string{"ZENO_MACHINE_USER_TOKEN=sk-" + secretA}, want: []string{"Invalid machine user token format"}},
		{name: "token-empty-secret", env: []string{"ZENO_MACHINE_USER_TOKEN=zeno-key:" + prefixA + ":"}, want: []string{"Invalid machine user token format"}},
		{name: "token-list-item", env: []string{"ZENO_MACHINE_USER_TOKENS=" + token(prefixA, secretA) + ",zeno-key:" + secretB}, want: []string{"ZENO_MACHINE_USER_TOKENS item 2", "Invalid machine user token format"}},
		{name: "token-file-missing", args: []string{"--token-file", "nope.txt"}, want: []string{"token file", "nope.txt"}},
		{name: "token-file-bad-line", args: []string{"--token-file", "tokens.txt"}, files: map[string]string{"tokens.txt": "# pool\n" + token(prefixA, secretA) + "\nzeno-key:" + secretB + "\n"}, want: []string{"line 3", "Invalid machine user token format"}},
		{name: "flag-unknown", args: []string{"--no-such-flag"}, want: []string{"flag provided but not defined: -no-such-flag"}, code: 2},
		{name: "flag-port-text", args: []string{"--master-port", "abc"}, want: []string{`invalid value "abc" for flag -master-port`}, code: 2},
		{name: "flag-port-range", args: []string{"--master-port", "70000"}, want: []string{"70000", "out of range"}},
		{name: "flag-timeout-zero", args: []string{"--timeout", "0"}, want: []string{"--timeout must be positive"}},
		{name: "flag-timeout-text", args: []string{"--timeout", "soon"}, want: []string{"-timeout"}, code: 2},
		{name: "flag-loglevel", args: []string{"--loglevel", "LOUD"}, want: []string{`--loglevel "LOUD"`}},
		{name: "flag-wait-order", args: []string{"--wait-min", "5s", "--wait-max", "1s"}, want: []string{"wait time"}},
		{name: "flag-turns", args: []string{"--turns-min", "3", "--turns-max", "1"}, want: []string{"turns"}},
		{name: "flag-weights-negative", args: []string{"--quick-weight", "-1"}, want: []string{"weights must not be negative"}},
		{name: "flag-host-scheme", args: []string{"--host", "ftp://example.invalid"}, want: []string{"invalid target host"}},
		{name: "env-port", env: []string{"LOCUST_MASTER_NODE_PORT=abc"}, want: []string{`LOCUST_MASTER_NODE_PORT="abc": not an integer`}},
		{name: "env-timeout", env: []string{"ZENO_REQUEST_TIMEOUT=soon"}, want: []string{`ZENO_REQUEST_TIMEOUT="soon"`}},
		{name: "env-bool", env: []string{"ZENO_FAIL_ON_NONFATAL=maybe"}, want: []string{`ZENO_FAIL_ON_NONFATAL="maybe": not a boolean`}},
		{name: "env-master-timeout", env: []string{"ZENO_MASTER_TIMEOUT=forever"}, want: []string{`ZENO_MASTER_TIMEOUT="forever"`}},
		{name: "env-weight", env: []string{"ZENO_QUICK_WEIGHT=lots"}, want: []string{`ZENO_QUICK_WEIGHT="lots": not an integer`}},
		{name: "dotenv-port", files: map[string]string{".env": "LOCUST_MASTER_NODE_PORT=abc\n"}, want: []string{`LOCUST_MASTER_NODE_PORT="abc": not an integer`}},
		{name: "dotenv-token", files: map[string]string{".env": "ZENO_MACHINE_USER_TOKEN=zeno-key:" + secretA + "\n"}, noToken: true, want: []string{"Invalid machine user token format"}},
		{name: "dotenv-syntax", files: map[string]string{".env": "ZENO_WAIT_MIN='unterminated\n"}, want: []string{".env"}},
		{name: "dotenv-explicit-missing", args: []string{"--env-file", "missing.env"}, want: []string{"env file missing.env"}},
		{name: "queries-missing", args: []string{"--queries", "nope.json"}, want: []string{"--queries", "nope.json"}},
		{name: "queries-not-json", args: []string{"--queries", "q.json"}, files: map[string]string{"q.json": "{not json"}, want: []string{"--queries"}},
		{name: "queries-wrong-shape", args: []string{"--queries", "q.json"}, files: map[string]string{"q.json": `{"quick": 5}`}, want: []string{"--queries"}},
		{name: "queries-empty-replace", args: []string{"--queries", "q.json", "--queries-mode", "replace"}, files: map[string]string{"q.json": `{}`}, want: []string{"--queries"}},
		{name: "queries-mode", args: []string{"--queries", "q.json", "--queries-mode", "merge"}, files: map[string]string{"q.json": `{}`}, want: []string{"--queries-mode"}},
		{name: "command-unknown", args: []string{"frobnicate"}, want: []string{`unknown command "frobnicate"`}, code: 2},
		{name: "fake-rate", args: []string{"fake-zeno", "--listen", "127.0.0.1:" + port, "--nonfatal-error-rate", "2"}, want: []string{"nonfatal-error-rate must be in [0,1]"}},
		{name: "fake-keys-missing", args: []string{"fake-zeno", "--listen", "127.0.0.1:" + port, "--keys", "nokeys.txt"}, want: []string{"keys file"}},
		{name: "fake-keys-bad", args: []string{"fake-zeno", "--listen", "127.0.0.1:" + port, "--keys", "k.txt"}, files: map[string]string{"k.txt": token(prefixA, secretA) + ",lots\n"}, want: []string{"k.txt line 1", "quota"}},
		{name: "standalone-no-runtime", args: []string{"standalone", "-u", "1", "--host", "http://127.0.0.1:" + port}, want: []string{"run time"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, body := range c.files {
				write(dir, name, body)
			}
			env := []string{"ZENO_MACHINE_USER_TOKENS=", "ZENO_MACHINE_USER_TOKENS_FILE=", "API_BASE_URL="}
			if !c.noToken {
				env = append(env, good)
			}
			env = append(env, c.env...)
			args := append([]string{bin}, c.args...)
			if (len(c.args) == 0 || strings.HasPrefix(c.args[0], "-")) && !hasArg(c.args, "--master-port") {
				args = append(args, "--master-port", port, "--master-timeout", "1s")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			p := locusttest.Start(t, ctx, dir, env, args...)
			code, err := p.Wait(15 * time.Second)
			out := settled(p)
			if err != nil {
				t.Fatalf("still running after 15 s:\n%s", out)
			}
			if code == 0 || (c.code != 0 && code != c.code) {
				t.Errorf("exit %d, want %s:\n%s", code, map[bool]string{true: strconv.Itoa(c.code), false: "non-zero"}[c.code != 0], out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "connecting to locust master") {
				t.Errorf("the worker started (tried to connect) despite the bad input:\n%s", out)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v to reject bad input", d.Round(100*time.Millisecond))
			}
			for _, s := range []string{secretA, secretB} {
				if strings.Contains(out, s) {
					t.Errorf("SECRET LEAK in the error output:\n%s", out)
				}
			}
			if testing.Verbose() {
				t.Logf("exit %d: %s", code, strings.TrimSpace(firstLines(out, 2)))
			}
		})
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " | ")
}

// settled returns p's output once its reader has caught up: Proc.Wait
// returns at exit, possibly before the last lines were read from the pipe.
func settled(p *locusttest.Proc) string {
	out := p.Output()
	for i := 0; i < 20; i++ {
		time.Sleep(50 * time.Millisecond)
		n := p.Output()
		if n == out && n != "" {
			break
		}
		out = n
	}
	return out
}

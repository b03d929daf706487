package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrecedence: flags beat env, env beats .env.
func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "x.env")
	if err := os.WriteFile(envFile, []byte("LOCUST_MASTER_NODE_PORT=6001\nZENO_WAIT_MIN=7\nZENO_WAIT_MAX=9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"LOCUST_MASTER_NODE_PORT", "ZENO_WAIT_MIN", "ZENO_WAIT_MAX"} {
		t.Setenv(k, "") // godotenv fills only unset variables
		os.Unsetenv(k)
	}
	getenv := func(k string) string {
		if k == "ZENO_WAIT_MIN" {
			return "3" // a real environment variable
		}
		return ""
	}
	f, err := newFlags("t", "", []string{"--env-file", envFile}, &bytes.Buffer{}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	port := f.Int("master-port", "LOCUST_MASTER_NODE_PORT", 5557, "")
	chat := addChatFlags(f, "")
	if err := f.parse([]string{"--env-file", envFile, "--wait-max", "11s"}); err != nil {
		t.Fatal(err)
	}
	if *port != 6001 {
		t.Errorf(".env should set the port: got %d", *port)
	}
	if got := chat.waitMin.String(); got != "3s" {
		t.Errorf("env should beat .env: wait-min %s", got)
	}
	if got := chat.waitMax.String(); got != "11s" {
		t.Errorf("flag should beat .env: wait-max %s", got)
	}
}

func runCLI(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(context.Background(), args, &out, &out, func(k string) string { return env[k] })
	return code, out.String()
}

// TestBadInput: each mistake gets a clear message and a non-zero exit, and no
// secret is echoed.
func TestBadInput(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	good := map[string]string{"ZENO_MACHINE_USER_TOKEN": "zeno-key:abcd1234:" + secret}
	dir := t.TempDir()
	badQueries := filepath.Join(dir, "q.json")
	os.WriteFile(badQueries, []byte("{\"quick\": [\n  \"ok\",\n  ]\n}"), 0o600)
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"missing token", map[string]string{}, nil, "Configuration error: ZENO_MACHINE_USER_TOKEN must be set"},
		{"malformed token", map[string]string{"ZENO_MACHINE_USER_TOKEN": "Bearer " + secret}, nil, "Invalid machine user token format"},
		{"bad port env", map[string]string{"LOCUST_MASTER_NODE_PORT": "abc"}, nil, `LOCUST_MASTER_NODE_PORT="abc": not an integer`},
		{"bad port flag", good, []string{"--master-port", "70000"}, "master port 70000 out of range"},
		{"unknown flag", good, []string{"--nope"}, "flag provided but not defined: -nope"},
		{"bad duration env", map[string]string{"ZENO_WAIT_MIN": "soon"}, nil, `ZENO_WAIT_MIN="soon"`},
		{"bad loglevel", good, []string{"--loglevel", "LOUD"}, `--loglevel "LOUD"`},
		{"bad query file", good, []string{"--queries", badQueries}, "line 3"},
		{"missing env file", good, []string{"--env-file", filepath.Join(dir, "nope.env")}, "env file"},
		{"bad weights", good, []string{"--quick-weight", "-1"}, "weights must not be negative"},
		{"unknown scenario", good, []string{"scenario", "soak"}, `unknown scenario "soak"`},
		{"unknown command", good, []string{"frobnicate"}, `unknown command "frobnicate"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := runCLI(t, c.env, c.args...)
			if code == 0 {
				t.Fatalf("exit 0, want non-zero; output:\n%s", out)
			}
			if !strings.Contains(out, c.want) {
				t.Fatalf("output lacks %q:\n%s", c.want, out)
			}
			if strings.Contains(out, secret) {
				t.Fatalf("secret leaked:\n%s", out)
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	code, out := runCLI(t, nil, "version")
	if code != 0 || !strings.Contains(out, "zeno-worker") {
		t.Fatalf("version: %d %q", code, out)
	}
	code, out = runCLI(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "-master-host") || !strings.Contains(out, "ZENO_MACHINE_USER_TOKENS") {
		t.Fatalf("help: %d\n%s", code, out)
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestComposeFlagsExist: every flag and env var docker-compose.yml hands to
// zeno-worker must exist in its --help, so the file cannot drift from the CLI.
func TestComposeFlagsExist(t *testing.T) {
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	services := splitServices(string(b))
	for _, name := range []string{"worker", "fake-zeno"} {
		block, ok := services[name]
		if !ok {
			t.Fatalf("service %s missing from docker-compose.yml", name)
		}
		var args []string
		if strings.Contains(block, `"fake-zeno"`) {
			args = append(args, "fake-zeno")
		}
		var help bytes.Buffer
		code := run(context.Background(), append(args, "--help"), &help, &help, func(string) string { return "" })
		if code != 0 {
			t.Fatalf("%s --help exited %d", name, code)
		}
		for _, fl := range regexp.MustCompile(`"--([a-z0-9-]+)"`).FindAllStringSubmatch(block, -1) {
			if !strings.Contains(help.String(), "-"+fl[1]+" ") {
				t.Errorf("service %s uses --%s, which zeno-worker %v does not have", name, fl[1], args)
			}
		}
		inEnv := false
		for _, line := range strings.Split(block, "\n") {
			trim := strings.TrimSpace(line)
			if trim == "environment:" {
				inEnv = true
				continue
			}
			if inEnv {
				m := regexp.MustCompile(`^([A-Z][A-Z0-9_]*):`).FindStringSubmatch(trim)
				if m == nil {
					inEnv = false
					continue
				}
				if !envDocumented(m[1], help.String()) {
					t.Errorf("service %s sets %s, which zeno-worker %v --help does not mention", name, m[1], args)
				}
			}
		}
	}
}

// envDocumented: flags name their env var in --help; token variables are
// named in the token flag's help.
func envDocumented(key, help string) bool {
	return regexp.MustCompile(`(^|[^A-Z_])` + key + `($|[^A-Z_])`).MatchString(help)
}

// splitServices cuts the compose file into top-level service blocks.
func splitServices(s string) map[string]string {
	out := map[string]string{}
	cur := ""
	re := regexp.MustCompile(`^  ([a-z][a-z0-9-]*):\s*$`)
	for _, line := range strings.Split(s, "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			cur = m[1]
			continue
		}
		if cur != "" {
			out[cur] += line + "\n"
		}
	}
	return out
}

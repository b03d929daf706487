package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const (
	testPrefix = "ab12cd34"
	testSecret = "5f0e9d8c7b6a55443322110fedcba987"
	testToken  = "zeno-key:" + testPrefix + ":" + testSecret
)

func TestParseToken(t *testing.T) {
	cases := []struct {
		in, prefix string
		err        error
	}{
		{testToken, testPrefix, nil},
		{"zeno-key_" + testPrefix + "_" + testSecret, testPrefix, nil},
		{"  " + testToken + "\n", testPrefix, nil},
		{"zeno-key:p:s", "p", nil},
		{"zeno-key:ab_cd:s", "ab_cd", nil}, // '_' is fine inside the colon form
		{"", "", ErrTokenMissing},
		{"   ", "", ErrTokenMissing},
		{"zeno-key", "", ErrTokenFormat},
		{"zeno-key:", "", ErrTokenFormat},
		{"zeno-key::", "", ErrTokenFormat},
		{"zeno-key:abc", "", ErrTokenFormat},
		{"zeno-key:abc:", "", ErrTokenFormat},
		{"zeno-key::secret", "", ErrTokenFormat},
		{"zeno-key:a:b:c", "", ErrTokenFormat},
		{"zeno-key_a_b_c", "", ErrTokenFormat},
		{"zeno-key_a:b_c", "", ErrTokenFormat}, // would split differently in colon form
		{"zeno-key:a b:c", "", ErrTokenFormat},
		{"zeno-keys:a:b", "", ErrTokenFormat},
		{"Zeno-Key:a:b", "", ErrTokenFormat},
		{"Bearer " + testToken, "", ErrTokenFormat},
		{"eyJhbGciOiJIUzI1NiJ9.e30.sig", "", ErrTokenFormat},
	}
	for _, tc := range cases {
		tok, err := ParseToken(tc.in)
		if !errors.Is(err, tc.err) {
			t.Errorf("ParseToken(%q) err = %v, want %v", tc.in, err, tc.err)
			continue
		}
		if err == nil && tok.Prefix() != tc.prefix {
			t.Errorf("ParseToken(%q) prefix = %q, want %q", tc.in, tok.Prefix(), tc.prefix)
		}
	}
	if ErrTokenFormat.Error() != "Invalid machine user token format: token must start with zeno-key and have 3 parts separated by ':' (or '_')" {
		t.Error("format error text changed")
	}
	if ErrTokenMissing.Error() != "Configuration error: ZENO_MACHINE_USER_TOKEN must be set" {
		t.Error("missing error text changed")
	}
	tok, _ := ParseToken("zeno-key_" + testPrefix + "_" + testSecret)
	if tok.Bearer() != "Bearer "+testToken {
		t.Errorf("underscore form not normalised: %s", tok.Bearer())
	}
}

func TestTokenNeverPrintsSecret(t *testing.T) {
	tok, _ := ParseToken(testToken)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "token", tok, "ptr", &tok)
	js, _ := json.Marshal(struct{ T Token }{tok})
	outs := []string{
		fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s %q", tok, tok, tok, tok, tok),
		fmt.Sprintf("%v", []Token{tok}), buf.String(), string(js),
	}
	for _, s := range outs {
		if strings.Contains(s, testSecret) {
			t.Fatalf("secret printed: %s", s)
		}
	}
	if tok.String() != "zeno-key:ab12cd34:***" {
		t.Fatalf("String() = %s", tok)
	}
}

func mustPool(t *testing.T, n int) *TokenPool {
	t.Helper()
	var toks []Token
	for i := range n {
		tok, err := ParseToken(fmt.Sprintf("zeno-key:p%d:secret%03dsecret", i, i))
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	p, err := NewTokenPool(toks...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func prefixes(p *TokenPool) string {
	var out []string
	for _, tok := range p.Tokens() {
		out = append(out, tok.Prefix())
	}
	return strings.Join(out, ",")
}

func TestTokenPoolPartition(t *testing.T) {
	p5 := mustPool(t, 5)
	cases := []struct {
		pool           *TokenPool
		index, workers int
		want           string
	}{
		{p5, 0, 2, "p0,p2,p4"},
		{p5, 1, 2, "p1,p3"},
		{p5, 2, 3, "p2"},
		{p5, 0, 1, "p0,p1,p2,p3,p4"},
		{p5, 3, 0, "p0,p1,p2,p3,p4"},
		{p5, 4, 3, "p1,p4"}, // index wraps
		{mustPool(t, 2), 0, 5, "p0"},
		{mustPool(t, 2), 3, 5, "p1"},
		{mustPool(t, 2), 4, 5, "p0"},
	}
	for _, tc := range cases {
		if got := prefixes(tc.pool.ForWorker(tc.index, tc.workers)); got != tc.want {
			t.Errorf("ForWorker(%d,%d) = %s, want %s", tc.index, tc.workers, got, tc.want)
		}
	}
	w := p5.ForWorker(0, 2)
	for id, want := range []string{"p0", "p2", "p4", "p0"} {
		if got := w.ForUser(id).Prefix(); got != want {
			t.Errorf("ForUser(%d) = %s, want %s", id, got, want)
		}
	}
}

func TestTokenPoolSources(t *testing.T) {
	p, err := ParseTokenList(testToken + ", zeno-key_q1_s1,,")
	if err != nil || prefixes(p) != testPrefix+",q1" {
		t.Fatalf("list: %v %v", prefixes(p), err)
	}
	if _, err := ParseTokenList("zeno-key:a:b,zeno-key:oops"); !errors.Is(err, ErrTokenFormat) || !strings.Contains(err.Error(), "item 2") || strings.Contains(err.Error(), "oops") {
		t.Fatalf("bad list err: %v", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	os.WriteFile(file, []byte("# load keys\n\n"+testToken+"\n  zeno-key_q1_s1  # not a comment, invalid\n"), 0o600)
	if _, err := LoadTokenFile(file); !errors.Is(err, ErrTokenFormat) || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("file err: %v", err)
	}
	os.WriteFile(file, []byte("# load keys\n\n"+testToken+"\nzeno-key_q1_s1\n"), 0o600)
	if p, err := LoadTokenFile(file); err != nil || p.Len() != 2 {
		t.Fatalf("file: %v", err)
	}
	os.WriteFile(file, []byte("# nothing\n"), 0o600)
	if _, err := LoadTokenFile(file); !errors.Is(err, ErrTokenMissing) {
		t.Fatalf("empty file: %v", err)
	}

	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if _, err := TokenPoolFromEnv(env(nil)); !errors.Is(err, ErrTokenMissing) || err.Error() != ErrTokenMissing.Error() {
		t.Fatalf("missing env: %v", err)
	}
	if _, err := TokenPoolFromEnv(env(map[string]string{EnvToken: "nope"})); err == nil || err.Error() != ErrTokenFormat.Error() {
		t.Fatalf("bad env: %v", err)
	}
	p, err = TokenPoolFromEnv(env(map[string]string{EnvToken: testToken, EnvTokens: "zeno-key:x:y,zeno-key:z:w"}))
	if err != nil || prefixes(p) != "x,z" {
		t.Fatalf("TOKENS precedence: %v %v", prefixes(p), err)
	}
	os.WriteFile(file, []byte(testToken+"\n"), 0o600)
	p, err = TokenPoolFromEnv(env(map[string]string{EnvToken: "zeno-key:x:y", EnvTokensFile: file}))
	if err != nil || prefixes(p) != testPrefix {
		t.Fatalf("file precedence: %v %v", prefixes(p), err)
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewThreadID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewThreadID()
		if !uuidV4.MatchString(id) || seen[id] {
			t.Fatalf("bad or repeated uuid %q", id)
		}
		seen[id] = true
	}
}

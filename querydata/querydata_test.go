package querydata

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultCorpus(t *testing.T) {
	if _, err := parse(defaultJSON); err != nil {
		t.Fatalf("embedded corpus does not decode: %v", err)
	}
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("default corpus invalid: %v", err)
	}
	if len(c.Quick) < 40 || len(c.Analysis) < 40 || len(c.Conversations) < 20 {
		t.Fatalf("too small: %d quick, %d analysis, %d conversations", len(c.Quick), len(c.Analysis), len(c.Conversations))
	}
	seen := map[string]bool{}
	for _, q := range append(append([]string{}, c.Quick...), c.Analysis...) {
		if seen[q] {
			t.Errorf("duplicate query %q", q)
		}
		seen[q] = true
	}
	for i, cv := range c.Conversations {
		if len(cv.FollowUps) < 4 {
			t.Errorf("conversations[%d] has %d follow-ups, want >= 4", i, len(cv.FollowUps))
		}
	}
	// Each call returns an independent copy.
	c.Quick[0] = "mutated"
	if Default().Quick[0] == "mutated" {
		t.Fatal("Default shares state between calls")
	}
}

func TestPickDeterministic(t *testing.T) {
	c := Default()
	draw := func(seed uint64) []string {
		r := rand.New(rand.NewPCG(seed, 1))
		var out []string
		for range 20 {
			out = append(out, c.PickQuick(r), c.PickAnalysis(r), c.PickConversation(r).Starter)
		}
		return out
	}
	a, b, other := draw(7), draw(7), draw(8)
	if strings.Join(a, "|") != strings.Join(b, "|") {
		t.Fatal("same seed gave different picks")
	}
	if strings.Join(a, "|") == strings.Join(other, "|") {
		t.Fatal("different seeds gave identical picks")
	}
	if (&Corpus{}).PickQuick(nil) != "" || c.PickQuick(nil) != c.Quick[0] {
		t.Fatal("nil rand / empty corpus handling")
	}
}

func TestTurns(t *testing.T) {
	cv := Conversation{Starter: "s", FollowUps: []string{"a", "b"}}
	if got := strings.Join(cv.Turns(5), ","); got != "s,a,b,a,b" {
		t.Fatalf("Turns(5) = %s", got)
	}
	if cv.Turns(0) != nil {
		t.Fatal("Turns(0) not nil")
	}
}

func write(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadModes(t *testing.T) {
	p := write(t, "q.json", `{"quick":["q1"],"analysis":["a1"],"conversations":[{"starter":"s","follow_ups":["f"]}]}`)
	c, err := Load(p, Replace)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Quick) != 1 || c.Conversations[0].FollowUps[0] != "f" {
		t.Fatalf("replace: %+v", c)
	}
	part := write(t, "part.json", `{"quick":["extra quick"]}`)
	if _, err := Load(part, Replace); err == nil || !strings.Contains(err.Error(), "analysis: need at least 1 query") {
		t.Fatalf("replace with missing lists: %v", err)
	}
	c, err = Load(part, Extend)
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if len(c.Quick) != len(d.Quick)+1 || c.Quick[len(c.Quick)-1] != "extra quick" || len(c.Analysis) != len(d.Analysis) {
		t.Fatalf("extend: %d quick", len(c.Quick))
	}
	if m, err := ParseMode("EXTEND"); err != nil || m != Extend {
		t.Fatal("ParseMode")
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"syntax", "{\n  \"quick\": [\"a\",\n  \"b\" \"c\"]\n}", "line 3:7: invalid JSON"},
		{"truncated", "{\"quick\": [\"a\"", "line 1:15: invalid JSON: unexpected end of file"},
		{"type", "{\n\"quick\": \"not a list\"}", "line 2:21: quick: expected []string"},
		{"unknown", `{"quik": []}`, `unknown field "quik"`},
		{"trailing", "{}\n{}", "line 2:1: unexpected data"},
		{"empty", "", "empty file"},
		{"entries", `{"quick":["ok","  "],"analysis":["x"],"conversations":[{"starter":"s","follow_ups":["f"]},{"starter":"t","follow_ups":[]},{"starter":"","follow_ups":["", "g"]}]}`,
			"quick[1]: empty query\nconversations[1].follow_ups: need at least 1 follow-up\nconversations[2].starter: empty query\nconversations[2].follow_ups[0]: empty query"},
		{"long", `{"quick":["` + strings.Repeat("x", MaxQueryLen+1) + `"]}`, "quick[0]: query is 4001 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, "c.json", tc.body)
			_, err := Load(p, Extend)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("got %v\nwant containing %q and the path", err, tc.want)
			}
		})
	}
	if _, err := Load(write(t, "c.yaml", "quick: []"), Extend); err == nil || !strings.Contains(err.Error(), "YAML is not supported") {
		t.Fatalf("yaml: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json"), Extend); err == nil {
		t.Fatal("missing file accepted")
	}
}

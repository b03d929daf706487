package tasks

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

var jsonCases = []string{
	"", "plain ascii query", `quote " and backslash \`, "html <b>&amp;</b>",
	"controls \x00\x01\x07\b\f\n\r\t\x1f\x7f", "unicode: déforestation 森林 🌳",
	"separators \u2028 and \u2029", "invalid \xff\xfe utf-8 \xc3", "truncated rune \xe6\x97",
	"surrogate half \xed\xa0\x80", "a\u00a0b\u200bc",
}

// TestChatRequestJSON: the hand-built body is what encoding/json makes.
func TestChatRequestJSON(t *testing.T) {
	for _, q := range jsonCases {
		want, err := json.Marshal(ChatRequest{Query: q, ThreadID: q + "-t"})
		require.NoError(t, err)
		got := ChatRequest{Query: q, ThreadID: q + "-t"}.appendJSON(nil)
		require.Equal(t, string(want), string(got), "query %q", q)
	}
}

func FuzzChatRequestJSON(f *testing.F) {
	for _, q := range jsonCases {
		f.Add(q, "8c1e5f3a-4d2b-4c6e-9f7a-0b1c2d3e4f5a")
	}
	f.Fuzz(func(t *testing.T, q, thread string) {
		want, err := json.Marshal(ChatRequest{Query: q, ThreadID: thread})
		if err != nil {
			t.Fatal(err)
		}
		if got := (ChatRequest{Query: q, ThreadID: thread}).appendJSON(nil); string(got) != string(want) {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
}

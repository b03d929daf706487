package redact

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const (
	prefix = "ab12cd34"
	secret = "0123456789abcdef0123456789abcdef"
	colon  = "zeno-key:" + prefix + ":" + secret
	under  = "zeno-key_" + prefix + "_" + secret
)

func TestString(t *testing.T) {
	r := New(colon, "", "opaque-token-xyz")
	cases := map[string]string{
		"Bearer " + colon:                                  "Bearer zeno-key:ab12cd34:***",
		"tok=" + under + " end":                            "tok=zeno-key:ab12cd34:*** end",
		"secret " + secret + " bare":                       "secret *** bare",
		"url?key=" + strings.ReplaceAll(colon, ":", "%3A"): "url?key=zeno-key%3Aab12cd34%3A***",
		"other opaque-token-xyz":                           "other ***",
		"prefix " + prefix + " ok":                         "prefix ab12cd34 ok",
	}
	for in, want := range cases {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNilAndShortSecret(t *testing.T) {
	var r *Redactor
	r.Add(colon)
	if got := r.String(colon); got != colon {
		t.Fatalf("nil redactor changed text: %q", got)
	}
	if !r.Empty() {
		t.Fatal("nil redactor not empty")
	}
	r2 := New("zeno-key:p:a")
	if got := r2.String("a cat zeno-key:p:a"); got != "a cat zeno-key:p:***" {
		t.Fatalf("short secret handling: %q", got)
	}
}

type leaky struct{ Tok string }

func TestHandlerNeverLeaks(t *testing.T) {
	r := New()
	var buf bytes.Buffer
	base := slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	log := slog.New(r.Handler(base))
	r.Add(under) // added after the handler was built
	err := fmt.Errorf("wrapped: %w", errors.New("auth failed for "+colon))
	log.With("bound", secret).WithGroup("g").Info("msg "+secret,
		"err", err,
		"s", colon,
		"b", []byte(secret),
		"st", leaky{Tok: secret},
		slog.Group("inner", "x", "Bearer "+under, slog.Group("deep", "y", secret)),
		"n", 42,
	)
	out := buf.String()
	if strings.Contains(out, secret) {
		t.Fatalf("secret leaked: %s", out)
	}
	for _, want := range []string{"zeno-key:ab12cd34:***", `"n":42`, `"deep"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q: %s", want, out)
		}
	}
}

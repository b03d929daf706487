package tasks

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/zenoload/zenoload/redact"
)

// Environment variables read by TokenPoolFromEnv.
const (
	EnvToken      = "ZENO_MACHINE_USER_TOKEN"
	EnvTokens     = "ZENO_MACHINE_USER_TOKENS"      // comma-separated
	EnvTokensFile = "ZENO_MACHINE_USER_TOKENS_FILE" // one per line, # comments
)

// Token errors, with the exact texts users see.
var (
	ErrTokenMissing = errors.New("Configuration error: ZENO_MACHINE_USER_TOKEN must be set")
	ErrTokenFormat  = errors.New("Invalid machine user token format: token must start with zeno-key and have 3 parts separated by ':' (or '_')")
)

// Token is a machine-user key. Every printing path (String, GoString,
// LogValue, MarshalText) shows only zeno-key:<prefix>:***.
type Token struct {
	prefix, secret string
}

// ParseToken accepts zeno-key:<prefix>:<secret> and the older underscore form
// zeno-key_<prefix>_<secret>. Surrounding whitespace is ignored; an empty
// string is ErrTokenMissing. The underscore form is normalised to the colon
// form, which is the only one the server accepts as a machine key (it would
// treat the underscore form as a Resource Watch JWT).
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Token{}, ErrTokenMissing
	}
	for _, sep := range []string{":", "_"} {
		if !strings.HasPrefix(s, "zeno-key"+sep) {
			continue
		}
		parts := strings.Split(s, sep)
		if len(parts) != 3 || !validPart(parts[1]) || !validPart(parts[2]) {
			return Token{}, ErrTokenFormat
		}
		return Token{prefix: parts[1], secret: parts[2]}, nil
	}
	return Token{}, ErrTokenFormat
}

// validPart rejects empty parts and characters that would change how the
// colon form splits or break the header.
func validPart(p string) bool {
	if p == "" {
		return false
	}
	for _, r := range p {
		if r == ':' || r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// IsZero reports whether t is the zero Token.
func (t Token) IsZero() bool { return t.prefix == "" && t.secret == "" }

// Prefix is the public key prefix, safe to print.
func (t Token) Prefix() string { return t.prefix }

// String is the redacted form.
func (t Token) String() string {
	if t.IsZero() {
		return "<no token>"
	}
	return "zeno-key:" + t.prefix + ":" + redact.Mask
}

// GoString keeps %#v redacted too.
func (t Token) GoString() string { return "tasks.Token(" + t.String() + ")" }

// LogValue keeps slog output redacted.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalText keeps JSON and text encodings redacted.
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Value is the real token in colon form. Only for headers and redactors.
func (t Token) Value() string { return string(t.appendValue(nil)) }

// appendValue appends Value to b, for request headers built in place.
func (t Token) appendValue(b []byte) []byte {
	b = append(b, "zeno-key:"...)
	b = append(b, t.prefix...)
	b = append(b, ':')
	return append(b, t.secret...)
}

// Bearer is the real Authorization header value, always in colon form.
func (t Token) Bearer() string { return "Bearer " + t.Value() }

// redactIn removes this token (both forms) and its secret from s, for text
// that came from the server and never passed through a shared Redactor.
func (t Token) redactIn(s string) string {
	// Both token forms contain the secret: no secret, nothing to do.
	if t.secret == "" || !strings.Contains(s, t.secret) {
		return s
	}
	masked := t.String()
	s = strings.ReplaceAll(s, "zeno-key:"+t.prefix+":"+t.secret, masked)
	s = strings.ReplaceAll(s, "zeno-key_"+t.prefix+"_"+t.secret, masked)
	if len(t.secret) >= 6 {
		s = strings.ReplaceAll(s, t.secret, redact.Mask)
	}
	return s
}

// TokenPool is an ordered, non-empty set of tokens.
type TokenPool struct {
	tokens []Token
}

// NewTokenPool builds a pool; it needs at least one non-zero token.
func NewTokenPool(tokens ...Token) (*TokenPool, error) {
	p := &TokenPool{}
	for _, t := range tokens {
		if !t.IsZero() {
			p.tokens = append(p.tokens, t)
		}
	}
	if len(p.tokens) == 0 {
		return nil, ErrTokenMissing
	}
	return p, nil
}

// ParseTokenList parses a comma-separated list (empty items are skipped).
// Errors give the 1-based item number, never the token text.
func ParseTokenList(s string) (*TokenPool, error) {
	var toks []Token
	for i, item := range strings.Split(s, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		t, err := ParseToken(item)
		if err != nil {
			return nil, fmt.Errorf("%s item %d: %w", EnvTokens, i+1, err)
		}
		toks = append(toks, t)
	}
	return NewTokenPool(toks...)
}

// LoadTokenFile reads one token per line; blank lines and lines starting with
// '#' are skipped. Errors give the line number, never the token text.
func LoadTokenFile(path string) (*TokenPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	var toks []Token
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		t, err := ParseToken(line)
		if err != nil {
			return nil, fmt.Errorf("token file %s line %d: %w", path, n, err)
		}
		toks = append(toks, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("token file %s: no tokens: %w", path, ErrTokenMissing)
	}
	return NewTokenPool(toks...)
}

// TokenPoolFromEnv uses the first of ZENO_MACHINE_USER_TOKENS,
// ZENO_MACHINE_USER_TOKENS_FILE and ZENO_MACHINE_USER_TOKEN that is set.
// getenv is usually os.Getenv.
func TokenPoolFromEnv(getenv func(string) string) (*TokenPool, error) {
	if v := strings.TrimSpace(getenv(EnvTokens)); v != "" {
		return ParseTokenList(v)
	}
	if v := strings.TrimSpace(getenv(EnvTokensFile)); v != "" {
		return LoadTokenFile(v)
	}
	t, err := ParseToken(getenv(EnvToken))
	if err != nil {
		return nil, err
	}
	return NewTokenPool(t)
}

// Len is the number of tokens.
func (p *TokenPool) Len() int {
	if p == nil {
		return 0
	}
	return len(p.tokens)
}

// Tokens returns a copy of the tokens.
func (p *TokenPool) Tokens() []Token {
	if p == nil {
		return nil
	}
	return append([]Token(nil), p.tokens...)
}

// ForWorker returns worker index's share of the pool: the tokens j with
// j % workers == index. With fewer tokens than workers, worker i gets token
// i % n, so every worker has one. workers <= 1 means the whole pool; an
// index beyond workers wraps around.
func (p *TokenPool) ForWorker(index, workers int) *TokenPool {
	if p == nil || len(p.tokens) == 0 || workers <= 1 {
		return p
	}
	index = ((index % workers) + workers) % workers
	n := len(p.tokens)
	if n < workers {
		return &TokenPool{tokens: []Token{p.tokens[index%n]}}
	}
	var out []Token
	for j := index; j < n; j += workers {
		out = append(out, p.tokens[j])
	}
	return &TokenPool{tokens: out}
}

// ForUser picks the token for a user: userID % Len.
func (p *TokenPool) ForUser(userID int) Token {
	if p.Len() == 0 {
		return Token{}
	}
	n := len(p.tokens)
	return p.tokens[((userID%n)+n)%n]
}

// Redactor returns a Redactor that knows every token in the pool.
func (p *TokenPool) Redactor() *redact.Redactor {
	r := redact.New()
	p.AddTo(r)
	return r
}

// AddTo registers the pool's tokens with r.
func (p *TokenPool) AddTo(r *redact.Redactor) {
	if p == nil || r == nil {
		return
	}
	for _, t := range p.tokens {
		r.Add(t.Value())
		r.Add("zeno-key_" + t.prefix + "_" + t.secret)
	}
}

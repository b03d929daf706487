// Package redact removes machine-user secrets from text before it reaches a
// log, an error message or a report. The key prefix is not secret and is kept
// so operators can tell keys apart; the secret part never survives.
package redact

import (
	"fmt"
	"strings"
	"sync"
)

// Mask replaces a secret.
const Mask = "***"

// minSecretLen guards against mangling ordinary text: a bare secret shorter
// than this is only removed as part of its full token, never on its own.
const minSecretLen = 6

// Redactor replaces known tokens and their secrets. A nil *Redactor is valid
// and redacts nothing. It is safe for concurrent use.
type Redactor struct {
	mu    sync.RWMutex
	seen  map[string]bool
	pairs []string // old, new, ... (longest first once built)
	repl  *strings.Replacer
}

// New returns a Redactor for tokens (any form; empty strings are ignored).
func New(tokens ...string) *Redactor {
	r := &Redactor{seen: map[string]bool{}}
	for _, t := range tokens {
		r.Add(t)
	}
	return r
}

// Add registers one more token. A token shaped like zeno-key:<prefix>:<secret>
// (or with '_') becomes zeno-key:<prefix>:***; anything else is masked whole.
func (r *Redactor) Add(token string) {
	if r == nil {
		return
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	if r.seen[token] {
		return
	}
	r.seen[token] = true
	prefix, secret, ok := split(token)
	if !ok {
		r.pairs = append(r.pairs, token, Mask)
	} else {
		masked := "zeno-key:" + prefix + ":" + Mask
		r.pairs = append(r.pairs,
			"zeno-key:"+prefix+":"+secret, masked,
			"zeno-key_"+prefix+"_"+secret, masked,
			token, masked)
		if len(secret) >= minSecretLen {
			r.pairs = append(r.pairs, secret, Mask)
		}
	}
	r.repl = nil
}

// split parses both token forms without validating them further.
func split(token string) (prefix, secret string, ok bool) {
	for _, sep := range []string{":", "_"} {
		parts := strings.Split(token, sep)
		if len(parts) == 3 && parts[0] == "zeno-key" && parts[1] != "" && parts[2] != "" {
			return parts[1], parts[2], true
		}
	}
	return "", "", false
}

// String returns s with every known token and secret replaced.
func (r *Redactor) String(s string) string {
	if r == nil || s == "" {
		return s
	}
	rep := r.replacer()
	if rep == nil {
		return s
	}
	return rep.Replace(s)
}

// Error returns the redacted text of err ("" for nil).
func (r *Redactor) Error(err error) string {
	if err == nil {
		return ""
	}
	return r.String(err.Error())
}

// Sprintf formats and redacts.
func (r *Redactor) Sprintf(format string, args ...any) string {
	return r.String(fmt.Sprintf(format, args...))
}

// Empty reports whether r knows no tokens.
func (r *Redactor) Empty() bool {
	if r == nil {
		return true
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.pairs) == 0
}

func (r *Redactor) replacer() *strings.Replacer {
	r.mu.RLock()
	rep := r.repl
	n := len(r.pairs)
	r.mu.RUnlock()
	if rep != nil || n == 0 {
		return rep
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.repl == nil && len(r.pairs) > 0 {
		// strings.Replacer tries pairs in argument order at each position, so
		// longer needles go first: a full token wins over its bare secret.
		type pair struct{ old, new string }
		ps := make([]pair, 0, len(r.pairs)/2)
		for i := 0; i < len(r.pairs); i += 2 {
			ps = append(ps, pair{r.pairs[i], r.pairs[i+1]})
		}
		for i := 1; i < len(ps); i++ {
			for j := i; j > 0 && len(ps[j].old) > len(ps[j-1].old); j-- {
				ps[j], ps[j-1] = ps[j-1], ps[j]
			}
		}
		args := make([]string, 0, len(r.pairs))
		for _, p := range ps {
			args = append(args, p.old, p.new)
		}
		r.repl = strings.NewReplacer(args...)
	}
	return r.repl
}

// Package querydata holds the chat queries the load is made of: an embedded
// default corpus that a user JSON file may replace or extend.
package querydata

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

//go:embed corpus.json
var defaultJSON []byte

// MaxQueryLen bounds one query so a bad file cannot turn into huge requests.
const MaxQueryLen = 4000

// Conversation is a starter plus follow-ups meant for the same thread.
type Conversation struct {
	Starter   string   `json:"starter"`
	FollowUps []string `json:"follow_ups"`
}

// Corpus is the set of queries users draw from. Treat it as read-only once
// built: it is shared by all users.
type Corpus struct {
	Quick         []string       `json:"quick"`
	Analysis      []string       `json:"analysis"`
	Conversations []Conversation `json:"conversations"`
}

// Mode says how a user file combines with the default corpus.
type Mode int

const (
	// Replace uses only the file; each of its three lists must be non-empty.
	Replace Mode = iota
	// Extend appends the file's entries to the default corpus.
	Extend
)

// ParseMode accepts "replace" or "extend" (case-insensitive).
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "replace":
		return Replace, nil
	case "extend":
		return Extend, nil
	}
	return 0, fmt.Errorf("querydata: unknown mode %q (want replace or extend)", s)
}

func (m Mode) String() string {
	if m == Extend {
		return "extend"
	}
	return "replace"
}

// Default returns a fresh copy of the embedded corpus. The embedded file is
// checked by a test, so decoding cannot fail in a built binary; should it
// anyway, the result is an empty corpus rather than a panic.
func Default() *Corpus {
	c, err := parse(defaultJSON)
	if err != nil {
		return &Corpus{}
	}
	return c
}

// Load reads a JSON corpus file and combines it with the default per mode.
// Errors name the file and the line:column or the entry at fault.
func Load(path string, mode Mode) (*Corpus, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return nil, fmt.Errorf("querydata: %s: YAML is not supported, write the corpus as JSON", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("querydata: %w", err)
	}
	c, err := Parse(data, mode)
	if err != nil {
		return nil, fmt.Errorf("querydata: %s: %w", path, err)
	}
	return c, nil
}

// Parse is Load for in-memory data.
func Parse(data []byte, mode Mode) (*Corpus, error) {
	user, err := parse(data)
	if err != nil {
		return nil, err
	}
	if err := user.validate(mode == Replace); err != nil {
		return nil, err
	}
	if mode == Replace {
		return user, nil
	}
	c := Default()
	c.Quick = append(c.Quick, user.Quick...)
	c.Analysis = append(c.Analysis, user.Analysis...)
	c.Conversations = append(c.Conversations, user.Conversations...)
	return c, nil
}

func parse(data []byte) (*Corpus, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Corpus
	if err := dec.Decode(&c); err != nil {
		return nil, jsonError(data, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		line, col := position(data, dec.InputOffset())
		return nil, fmt.Errorf("line %d:%d: unexpected data after the top-level object", line, col)
	}
	return &c, nil
}

// jsonError adds line:column to the decoder's errors where it knows an offset.
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(data, syn.Offset)
		return fmt.Errorf("line %d:%d: invalid JSON: %w", line, col, err)
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		field := typ.Field
		if field == "" {
			field = "top level"
		}
		return fmt.Errorf("line %d:%d: %s: expected %s, got JSON %s: %w", line, col, field, typ.Type, typ.Value, err)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("empty file: want {\"quick\":[...], \"analysis\":[...], \"conversations\":[...]}: %w", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		line, col := position(data, int64(len(data)))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			col++ // point just past the last character
		}
		return fmt.Errorf("line %d:%d: invalid JSON: unexpected end of file: %w", line, col, err)
	}
	// Unknown fields carry no offset in encoding/json.
	return fmt.Errorf("%w (allowed keys: quick, analysis, conversations[].starter, conversations[].follow_ups)", err)
}

// position converts a byte offset to a 1-based line and column (in runes).
func position(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line = 1 + bytes.Count(before, []byte("\n"))
	start := bytes.LastIndexByte(before, '\n') + 1
	col = utf8.RuneCount(before[start:])
	if col == 0 {
		col = 1
	}
	return line, col
}

// Validate checks every entry and that each list has at least one entry.
// All problems are reported, each naming its entry, e.g. "quick[7]: empty query".
func (c *Corpus) Validate() error {
	if c == nil {
		return errors.New("nil corpus")
	}
	return c.validate(true)
}

func (c *Corpus) validate(requireAll bool) error {
	var errs []error
	add := func(format string, args ...any) {
		if len(errs) < 50 {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	checkQuery := func(name, q string) {
		switch {
		case strings.TrimSpace(q) == "":
			add("%s: empty query", name)
		case !utf8.ValidString(q):
			add("%s: not valid UTF-8", name)
		case len(q) > MaxQueryLen:
			add("%s: query is %d bytes, limit %d", name, len(q), MaxQueryLen)
		}
	}
	for i, q := range c.Quick {
		checkQuery(fmt.Sprintf("quick[%d]", i), q)
	}
	for i, q := range c.Analysis {
		checkQuery(fmt.Sprintf("analysis[%d]", i), q)
	}
	for i, cv := range c.Conversations {
		checkQuery(fmt.Sprintf("conversations[%d].starter", i), cv.Starter)
		if len(cv.FollowUps) == 0 {
			add("conversations[%d].follow_ups: need at least 1 follow-up", i)
		}
		for j, f := range cv.FollowUps {
			checkQuery(fmt.Sprintf("conversations[%d].follow_ups[%d]", i, j), f)
		}
	}
	if requireAll {
		if len(c.Quick) == 0 {
			add("quick: need at least 1 query")
		}
		if len(c.Analysis) == 0 {
			add("analysis: need at least 1 query")
		}
		if len(c.Conversations) == 0 {
			add("conversations: need at least 1 conversation")
		}
	}
	return errors.Join(errs...)
}

// PickQuick returns a quick query drawn with r ("" for an empty list).
func (c *Corpus) PickQuick(r *rand.Rand) string { return pick(c.Quick, r) }

// PickAnalysis returns an analysis query drawn with r ("" for an empty list).
func (c *Corpus) PickAnalysis(r *rand.Rand) string { return pick(c.Analysis, r) }

// PickConversation returns a conversation drawn with r (zero value if none).
func (c *Corpus) PickConversation(r *rand.Rand) Conversation {
	if c == nil || len(c.Conversations) == 0 {
		return Conversation{}
	}
	return c.Conversations[index(len(c.Conversations), r)]
}

// Turns returns the queries for a conversation of n turns: the starter, then
// the follow-ups in their written order (they read as a progression). When n
// exceeds 1+len(FollowUps) the follow-ups repeat from the start.
func (cv Conversation) Turns(n int) []string {
	if n <= 0 {
		return nil
	}
	out := make([]string, 0, n)
	out = append(out, cv.Starter)
	for i := 1; i < n; i++ {
		if len(cv.FollowUps) == 0 {
			out = append(out, cv.Starter)
			continue
		}
		out = append(out, cv.FollowUps[(i-1)%len(cv.FollowUps)])
	}
	return out
}

func pick(list []string, r *rand.Rand) string {
	if len(list) == 0 {
		return ""
	}
	return list[index(len(list), r)]
}

// index draws in [0,n); a nil r deterministically yields 0.
func index(n int, r *rand.Rand) int {
	if r == nil {
		return 0
	}
	return r.IntN(n)
}

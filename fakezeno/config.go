package fakezeno

import (
	"bufio"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by New to zero-valued fields.
const (
	DefaultQuota            = 1000
	DefaultLineBytes        = 4096
	DefaultNamingDelay      = 600 * time.Millisecond
	DefaultNamingJitter     = 400 * time.Millisecond
	DefaultSlowHeadersDelay = 30 * time.Second
	// DefaultMaxThreads bounds the thread store (about 200 B a thread): at
	// --time-scale 0 every request may open a thread, 30,000 a second.
	DefaultMaxThreads = 200_000
	maxLineBytes      = 16 << 20
)

// Config configures a fake server. The zero value is usable: defaults are
// filled in by New, except TimeScale, whose zero value means "no delays"
// (use DefaultConfig or the --time-scale flag default of 1 for real time).
type Config struct {
	Quota     int   // daily prompts per key; 0 = DefaultQuota
	Keys      []Key // if empty, any well-formed machine key is accepted
	KeysFile  string
	TimeScale float64 // multiplies every injected delay; 0 = as fast as possible
	Seed      int64

	// Latency profiles before TimeScale; a zero Profile takes the default.
	Quick, Analysis, FollowUp Profile
	// NamingDelay is added before the headers when thread_id is new
	// (uniform extra [0,NamingJitter)). 0 = default; negative = none.
	NamingDelay  time.Duration
	NamingJitter time.Duration
	// Fixed, when set, replaces every profile and disables all latency
	// randomness and the naming delay, so the time to headers is exactly
	// Fixed.HeaderDelay and each line comes exactly Fixed.Gap after the
	// previous one. Fault injection still applies.
	Fixed     *Profile
	LineBytes int // approximate size of a tools line; 0 = DefaultLineBytes

	// Fault injection probabilities in [0,1].
	NonFatalErrorRate float64
	FatalErrorRate    float64
	TruncateRate      float64
	HTTP500Rate       float64
	SlowHeadersRate   float64
	ToolErrorRate     float64
	SlowHeadersDelay  time.Duration // 0 = DefaultSlowHeadersDelay
	NoTraceInfo       bool

	// MaxThreads is about how many threads are kept: each of the store's
	// 64 shards forgets its oldest past MaxThreads/64 (rounded up), and a
	// later turn on a forgotten thread starts a new one. 0 =
	// DefaultMaxThreads; negative = no limit.
	MaxThreads int

	Logger *slog.Logger // nil = slog.Default()
}

// Key is one machine user key. Prefix identifies the user (and its quota);
// the secret is never logged or reported.
type Key struct {
	Prefix, Secret string
	Quota          int       // 0 = Config.Quota
	ExpiresAt      time.Time // zero = never; an expired key gets 401 "Machine user key has expired"
	Inactive       bool      // revoked: 401 "Invalid or inactive machine user key"
}

// Token returns the key in the real `zeno-key:<prefix>:<secret>` form.
func (k Key) Token() string { return "zeno-key:" + k.Prefix + ":" + k.Secret }

// Profile is a latency and size shape for one kind of request.
type Profile struct {
	HeaderDelay  time.Duration // time to response headers (before the naming delay)
	HeaderJitter time.Duration // uniform extra [0,HeaderJitter)
	Lines        int           // NDJSON lines including the final trace_info
	LinesJitter  int           // uniform extra [0,LinesJitter]
	Gap          time.Duration // silence before each line
	GapJitter    time.Duration // uniform extra [0,GapJitter)
}

// DefaultProfiles returns the quick, analysis and follow-up defaults. Totals
// include the naming delay for new threads: quick ≈ 2.7–5.5 s, analysis
// ≈ 11–30 s, follow-up ≈ 1.7–8 s.
func DefaultProfiles() (quick, analysis, followUp Profile) {
	hd, hj := 100*time.Millisecond, 200*time.Millisecond
	return Profile{HeaderDelay: hd, HeaderJitter: hj, Lines: 2, LinesJitter: 1, Gap: time.Second, GapJitter: time.Second},
		Profile{HeaderDelay: hd, HeaderJitter: hj, Lines: 9, LinesJitter: 2, Gap: 1200 * time.Millisecond, GapJitter: 1400 * time.Millisecond},
		Profile{HeaderDelay: hd, HeaderJitter: hj, Lines: 2, LinesJitter: 2, Gap: 800 * time.Millisecond, GapJitter: 1200 * time.Millisecond}
}

// DefaultConfig returns a real-time configuration with every default set.
func DefaultConfig() Config {
	q, a, f := DefaultProfiles()
	return Config{
		Quota: DefaultQuota, TimeScale: 1,
		Quick: q, Analysis: a, FollowUp: f,
		NamingDelay: DefaultNamingDelay, NamingJitter: DefaultNamingJitter,
		LineBytes: DefaultLineBytes, SlowHeadersDelay: DefaultSlowHeadersDelay,
	}
}

// normalize fills defaults and validates; it returns a copy.
func (c Config) normalize() (Config, error) {
	var errs []error
	if c.Quota == 0 {
		c.Quota = DefaultQuota
	}
	if c.Quota < 0 {
		errs = append(errs, fmt.Errorf("quota must be >= 0, got %d", c.Quota))
	}
	if c.MaxThreads == 0 {
		c.MaxThreads = DefaultMaxThreads
	}
	if math.IsNaN(c.TimeScale) || math.IsInf(c.TimeScale, 0) || c.TimeScale < 0 {
		errs = append(errs, fmt.Errorf("time scale must be a finite number >= 0, got %v", c.TimeScale))
	}
	dq, da, df := DefaultProfiles()
	for _, p := range []struct {
		name string
		p    *Profile
		def  Profile
	}{{"quick", &c.Quick, dq}, {"analysis", &c.Analysis, da}, {"followup", &c.FollowUp, df}} {
		if *p.p == (Profile{}) {
			*p.p = p.def
		}
		if err := p.p.validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s profile: %w", p.name, err))
		}
	}
	if c.Fixed != nil {
		f := *c.Fixed
		if f.Lines == 0 {
			f.Lines = 2
		}
		if f.HeaderJitter != 0 || f.LinesJitter != 0 || f.GapJitter != 0 {
			errs = append(errs, errors.New("fixed profile must not set any jitter"))
		}
		if err := f.validate(); err != nil {
			errs = append(errs, fmt.Errorf("fixed profile: %w", err))
		}
		c.Fixed = &f
	}
	switch {
	case c.NamingDelay == 0:
		c.NamingDelay = DefaultNamingDelay
		if c.NamingJitter == 0 {
			c.NamingJitter = DefaultNamingJitter
		}
	case c.NamingDelay < 0:
		c.NamingDelay, c.NamingJitter = 0, 0
	}
	if c.NamingJitter < 0 {
		errs = append(errs, fmt.Errorf("naming jitter must be >= 0, got %v", c.NamingJitter))
	}
	if c.LineBytes == 0 {
		c.LineBytes = DefaultLineBytes
	}
	if c.LineBytes < 0 || c.LineBytes > maxLineBytes {
		errs = append(errs, fmt.Errorf("line bytes must be in [0,%d], got %d", maxLineBytes, c.LineBytes))
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"nonfatal-error-rate", c.NonFatalErrorRate}, {"fatal-error-rate", c.FatalErrorRate},
		{"truncate-rate", c.TruncateRate}, {"http500-rate", c.HTTP500Rate},
		{"slow-headers-rate", c.SlowHeadersRate}, {"tool-error-rate", c.ToolErrorRate}} {
		if !(r.v >= 0 && r.v <= 1) { // also rejects NaN
			errs = append(errs, fmt.Errorf("%s must be in [0,1], got %v", r.name, r.v))
		}
	}
	if c.SlowHeadersDelay == 0 {
		c.SlowHeadersDelay = DefaultSlowHeadersDelay
	}
	if c.SlowHeadersDelay < 0 {
		errs = append(errs, fmt.Errorf("slow headers delay must be >= 0, got %v", c.SlowHeadersDelay))
	}
	seen := make(map[string]bool, len(c.Keys))
	c.Keys = append([]Key(nil), c.Keys...)
	for i, k := range c.Keys {
		if err := k.validate(); err != nil {
			errs = append(errs, fmt.Errorf("key %d: %w", i+1, err))
			continue
		}
		if seen[k.Prefix] {
			errs = append(errs, fmt.Errorf("key %d: duplicate prefix %q", i+1, k.Prefix))
		}
		seen[k.Prefix] = true
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("fakezeno: invalid config: %w", err)
	}
	return c, nil
}

func (p Profile) validate() error {
	switch {
	case p.Lines < 1:
		return fmt.Errorf("lines must be >= 1, got %d", p.Lines)
	case p.LinesJitter < 0:
		return fmt.Errorf("lines jitter must be >= 0, got %d", p.LinesJitter)
	case p.Lines+p.LinesJitter > 10000:
		return fmt.Errorf("lines+jitter must be <= 10000, got %d", p.Lines+p.LinesJitter)
	case p.HeaderDelay < 0 || p.HeaderJitter < 0 || p.Gap < 0 || p.GapJitter < 0:
		return errors.New("durations must be >= 0")
	}
	return nil
}

func (k Key) validate() error {
	if err := validPart("prefix", k.Prefix); err != nil {
		return err
	}
	if err := validPart("secret", k.Secret); err != nil {
		return err
	}
	if k.Quota < 0 {
		return fmt.Errorf("quota must be >= 0, got %d", k.Quota)
	}
	return nil
}

// validPart keeps both token separators out of prefix and secret so the
// colon and underscore forms parse to the same key.
func validPart(what, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s", what)
	}
	if strings.ContainsAny(s, ":_, \t\r\n#") {
		return fmt.Errorf("%s contains one of ':', '_', ',', '#' or whitespace", what)
	}
	return nil
}

// parseToken splits a machine token in either form. ok is false when the
// token does not start with "zeno-key"; formatOK is false for a zeno-key
// token that is not exactly three parts.
func parseToken(tok string) (prefix, secret string, ok, formatOK bool) {
	if !strings.HasPrefix(tok, "zeno-key") {
		return "", "", false, false
	}
	sep := ":"
	if strings.HasPrefix(tok, "zeno-key_") {
		sep = "_"
	}
	parts := strings.Split(tok, sep)
	if len(parts) != 3 || parts[0] != "zeno-key" {
		return "", "", true, false
	}
	return parts[1], parts[2], true, true
}

// LoadKeys reads a keys file: one `zeno-key:<prefix>:<secret>` (or
// `zeno-key_<prefix>_<secret>`) per line with an optional `,quota` suffix;
// '#' starts a comment and blank lines are skipped.
func LoadKeys(path string) ([]Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fakezeno: keys file: %w", err)
	}
	defer f.Close()
	var keys []Key
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		tok, quota, hasQuota := strings.Cut(line, ",")
		tok = strings.TrimSpace(tok)
		prefix, secret, ok, formatOK := parseToken(tok)
		if !ok || !formatOK {
			return nil, fmt.Errorf("fakezeno: keys file %s line %d: want zeno-key:<prefix>:<secret>[,quota]", path, n)
		}
		k := Key{Prefix: prefix, Secret: secret}
		if hasQuota {
			q, err := strconv.Atoi(strings.TrimSpace(quota))
			if err != nil || q < 0 {
				return nil, fmt.Errorf("fakezeno: keys file %s line %d: quota must be a non-negative integer, got %q", path, n, strings.TrimSpace(quota))
			}
			k.Quota = q
		}
		if err := k.validate(); err != nil {
			return nil, fmt.Errorf("fakezeno: keys file %s line %d: %w", path, n, err)
		}
		if prev, dup := seen[prefix]; dup {
			return nil, fmt.Errorf("fakezeno: keys file %s line %d: duplicate prefix %q (first on line %d)", path, n, prefix, prev)
		}
		seen[prefix] = n
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("fakezeno: keys file %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("fakezeno: keys file %s: no keys", path)
	}
	return keys, nil
}

// RegisterFlags registers the fake's flags on fs with their defaults written
// into c. Call c.Finish after fs.Parse.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	if c.Quota == 0 {
		c.Quota = d.Quota
	}
	fs.IntVar(&c.Quota, "quota", c.Quota, "daily prompts per key")
	fs.StringVar(&c.KeysFile, "keys", c.KeysFile, "file of accepted keys, one zeno-key:<prefix>:<secret>[,quota] per line (default: accept any well-formed key)")
	fs.Float64Var(&c.TimeScale, "time-scale", d.TimeScale, "multiplier for all injected delays (0 = as fast as possible)")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "random seed")
	fs.Float64Var(&c.NonFatalErrorRate, "nonfatal-error-rate", c.NonFatalErrorRate, "probability of a non-fatal stream_processing_error line")
	fs.Float64Var(&c.FatalErrorRate, "fatal-error-rate", c.FatalErrorRate, "probability of a fatal stream_initialization_error line ending the stream")
	fs.Float64Var(&c.TruncateRate, "truncate-rate", c.TruncateRate, "probability of cutting the chunked body without its final chunk")
	fs.Float64Var(&c.HTTP500Rate, "http500-rate", c.HTTP500Rate, "probability of a 500 before streaming")
	fs.Float64Var(&c.SlowHeadersRate, "slow-headers-rate", c.SlowHeadersRate, "probability of an extra --slow-headers-delay before the headers")
	fs.Float64Var(&c.ToolErrorRate, "tool-error-rate", c.ToolErrorRate, "probability of one tools line carrying a ToolMessage with status error")
	fs.DurationVar(&c.SlowHeadersDelay, "slow-headers-delay", d.SlowHeadersDelay, "extra delay for slow headers")
	fs.BoolVar(&c.NoTraceInfo, "no-trace-info", c.NoTraceInfo, "omit the final trace_info line (no Langfuse)")
	fs.IntVar(&c.LineBytes, "line-bytes", d.LineBytes, "approximate size of tools lines in bytes")
	fs.IntVar(&c.MaxThreads, "max-threads", cmp.Or(c.MaxThreads, DefaultMaxThreads), "about how many threads are kept before the oldest are forgotten (negative = no limit)")
	fs.DurationVar(&c.NamingDelay, "naming-delay", d.NamingDelay, "extra header delay for a new thread (negative = none)")
	fixed := func() *Profile {
		if c.Fixed == nil {
			c.Fixed = &Profile{}
		}
		return c.Fixed
	}
	dur := func(dst func(*Profile) *time.Duration) func(string) error {
		return func(s string) error {
			v, err := time.ParseDuration(s)
			if err != nil {
				return err
			}
			*dst(fixed()) = v
			return nil
		}
	}
	fs.Func("fixed-ttfb", "fixed time to headers for every request (sets a fixed, jitter-free profile)",
		dur(func(p *Profile) *time.Duration { return &p.HeaderDelay }))
	fs.Func("fixed-gap", "fixed gap before each line (sets a fixed profile)",
		dur(func(p *Profile) *time.Duration { return &p.Gap }))
	fs.Func("fixed-lines", "fixed number of lines incl. trace_info (sets a fixed profile; default 2)", func(s string) error {
		v, err := strconv.Atoi(s)
		if err != nil {
			return err
		}
		fixed().Lines = v
		return nil
	})
}

// Finish completes flag parsing: it loads KeysFile into Keys (when set) and
// validates the result.
func (c *Config) Finish() error {
	if c.KeysFile != "" {
		keys, err := LoadKeys(c.KeysFile)
		if err != nil {
			return err
		}
		c.Keys = keys
	}
	_, err := c.normalize()
	return err
}

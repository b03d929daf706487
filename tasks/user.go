package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/zenoload/zenoload/locust"
	"github.com/zenoload/zenoload/querydata"
	"github.com/zenoload/zenoload/redact"
)

// ClassName is the Locust user class the master's locustfile declares.
const ClassName = "ZenoChatUser"

// Option keys read from the master's parsed_options (durations in seconds).
const (
	OptQuickWeight        = "zeno_quick_weight"
	OptAnalysisWeight     = "zeno_analysis_weight"
	OptConversationWeight = "zeno_conversation_weight"
	OptWaitMin            = "zeno_wait_min"
	OptWaitMax            = "zeno_wait_max"
	OptTurnsMin           = "zeno_turns_min"
	OptTurnsMax           = "zeno_turns_max"
	OptThinkMin           = "zeno_think_min"
	OptThinkMax           = "zeno_think_max"
	OptFailOnNonFatal     = "zeno_fail_on_nonfatal"
	// optExpectWorkers is Locust's own --expect-workers, used to partition
	// the token pool when Config.Workers is 0.
	optExpectWorkers = "expect_workers"
)

// Weights are task weights per iteration (not shares of users).
type Weights struct{ Quick, Analysis, Conversation int }

// Config configures ZenoChatUser. Start from DefaultConfig: zero Weights,
// zero turns, a zero 429 backoff and zero client limits get defaults, but
// wait and think times and FailOnNonFatal are taken as given (0..0 is "no
// wait", which benchmarks need).
type Config struct {
	BaseURL string     // used when the master sends no host
	Tokens  *TokenPool // required
	Workers int        // pool partition size; 0 = the master's expect_workers, else whole pool
	Corpus  *querydata.Corpus

	Weights            Weights
	WaitMin, WaitMax   time.Duration // between tasks
	TurnsMin, TurnsMax int           // per conversation
	ThinkMin, ThinkMax time.Duration // between conversation turns
	FailOnNonFatal     bool

	Backoff429, Backoff429Max time.Duration // after a 429, doubling per consecutive 429

	// Used only when NewUserClass builds the client.
	Timeout      time.Duration
	MaxLineBytes int
	MaxIdleConns int

	Logger   *slog.Logger // nil: each user's env.Logger
	Metrics  *Metrics     // nil: no extra metrics
	Redactor *redact.Redactor
}

// DefaultConfig returns the documented defaults (tokens and host unset).
func DefaultConfig() Config {
	return Config{
		Weights:        Weights{Quick: 30, Analysis: 50, Conversation: 20},
		WaitMin:        5 * time.Second,
		WaitMax:        15 * time.Second,
		TurnsMin:       3,
		TurnsMax:       6,
		ThinkMin:       2 * time.Second,
		ThinkMax:       8 * time.Second,
		FailOnNonFatal: true,
		Backoff429:     30 * time.Second,
		Backoff429Max:  5 * time.Minute,
		Timeout:        DefaultTimeout,
		MaxLineBytes:   DefaultMaxLineBytes,
		MaxIdleConns:   DefaultMaxIdleConns,
	}
}

func (cfg *Config) fill() error {
	d := DefaultConfig()
	if cfg.Tokens.Len() == 0 {
		return ErrTokenMissing
	}
	if cfg.Corpus == nil {
		cfg.Corpus = querydata.Default()
	}
	if err := cfg.Corpus.Validate(); err != nil {
		return fmt.Errorf("query corpus: %w", err)
	}
	if cfg.Weights == (Weights{}) {
		cfg.Weights = d.Weights
	}
	if cfg.Backoff429 == 0 && cfg.Backoff429Max == 0 {
		cfg.Backoff429, cfg.Backoff429Max = d.Backoff429, d.Backoff429Max
	}
	if cfg.Backoff429Max == 0 {
		cfg.Backoff429Max = max(d.Backoff429Max, cfg.Backoff429)
	}
	if cfg.TurnsMin == 0 && cfg.TurnsMax == 0 {
		cfg.TurnsMin, cfg.TurnsMax = d.TurnsMin, d.TurnsMax
	}
	w := cfg.Weights
	switch {
	case w.Quick < 0 || w.Analysis < 0 || w.Conversation < 0:
		return errors.New("task weights must not be negative")
	case cfg.WaitMin < 0 || cfg.WaitMax < cfg.WaitMin:
		return fmt.Errorf("wait time: need 0 <= min <= max, got %v..%v", cfg.WaitMin, cfg.WaitMax)
	case cfg.ThinkMin < 0 || cfg.ThinkMax < cfg.ThinkMin:
		return fmt.Errorf("think time: need 0 <= min <= max, got %v..%v", cfg.ThinkMin, cfg.ThinkMax)
	case cfg.TurnsMin < 1 || cfg.TurnsMax < cfg.TurnsMin:
		return fmt.Errorf("turns: need 1 <= min <= max, got %d..%d", cfg.TurnsMin, cfg.TurnsMax)
	case cfg.Backoff429 < 0 || cfg.Backoff429Max < cfg.Backoff429:
		return fmt.Errorf("429 backoff: need 0 <= base <= max, got %v..%v", cfg.Backoff429, cfg.Backoff429Max)
	}
	if cfg.BaseURL != "" {
		if _, err := normalizeBase(cfg.BaseURL); err != nil {
			return err
		}
	}
	return nil
}

// class is state shared by all users of one ZenoChatUser class.
type class struct {
	cfg      Config
	client   *Client
	red      *redact.Redactor
	warned   sync.Map // option key → struct{}: log each bad option once
	rejected sync.Map // token prefix → struct{}: log each 401'd token once
}

// NewUserClass returns the ZenoChatUser class. client may be nil, in which
// case one is built from cfg (Timeout, MaxLineBytes, MaxIdleConns).
//
// Every recorded row is one real HTTP request. A request cut short because
// the runtime cancelled the user's context (a stop, not our timeout) is not
// recorded at all: it is neither a success nor a server failure.
func NewUserClass(cfg Config, client *Client) (locust.UserClass, error) {
	if err := cfg.fill(); err != nil {
		return locust.UserClass{}, fmt.Errorf("%s: %w", ClassName, err)
	}
	red := cfg.Redactor
	if red == nil {
		red = redact.New()
	}
	cfg.Tokens.AddTo(red)
	if client == nil {
		client = NewClient(ClientConfig{
			MaxIdleConns: cfg.MaxIdleConns,
			Timeout:      cfg.Timeout,
			MaxLineBytes: cfg.MaxLineBytes,
			Redactor:     red,
		})
	} else if client.cfg.Redactor == nil {
		client.cfg.Redactor = red
	}
	cls := &class{cfg: cfg, client: client, red: red}
	return locust.UserClass{Name: ClassName, Weight: 1, New: cls.newUser}, nil
}

func normalizeBase(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("invalid target host %q: want http(s)://host[:port]", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// settings are one user's effective knobs after option overrides.
type settings struct {
	weights            Weights
	waitMin, waitMax   time.Duration
	turnsMin, turnsMax int
	thinkMin, thinkMax time.Duration
	failOnNonFatal     bool
}

type chatUser struct {
	cls     *class
	env     *locust.Env
	log     *slog.Logger
	rand    *rand.Rand
	tok     Token
	base    string
	set     settings
	backoff time.Duration // next 429 backoff; 0 after a non-429
}

func (cls *class) newUser(env *locust.Env) (locust.User, error) {
	host := env.Host
	if host == "" {
		host = cls.cfg.BaseURL
	}
	if host == "" {
		return nil, errors.New("no target host: pass --host to the master or set the base URL")
	}
	base, err := normalizeBase(host)
	if err != nil {
		return nil, err
	}
	logger := cls.cfg.Logger
	if logger == nil {
		logger = env.Logger
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = slog.New(cls.red.Handler(logger.Handler())).With("user_class", ClassName, "user_id", env.UserID)

	workers := cls.cfg.Workers
	if workers == 0 {
		workers = env.Options.Int(optExpectWorkers, 1)
	}
	tok := cls.cfg.Tokens.ForWorker(env.WorkerIndex, workers).ForUser(env.UserID)
	r := env.Rand
	if r == nil {
		r = rand.New(rand.NewPCG(uint64(env.UserID), 0x2e6e0))
	}
	u := &chatUser{cls: cls, env: env, log: logger, rand: r, tok: tok, base: base}
	u.set = cls.settingsFor(env.Options, logger)
	return u, nil
}

// settingsFor applies the master's options over the config. An invalid value
// is logged once per key (not per user) and the config value is kept.
func (cls *class) settingsFor(opts locust.Options, log *slog.Logger) settings {
	c := cls.cfg
	s := settings{
		weights: c.Weights, waitMin: c.WaitMin, waitMax: c.WaitMax,
		turnsMin: c.TurnsMin, turnsMax: c.TurnsMax,
		thinkMin: c.ThinkMin, thinkMax: c.ThinkMax, failOnNonFatal: c.FailOnNonFatal,
	}
	warn := func(key string, v any, why string) {
		if _, dup := cls.warned.LoadOrStore(key, struct{}{}); !dup {
			log.Warn("ignoring master option, keeping the configured value", "option", key, "value", v, "reason", why)
		}
	}
	num := func(key string) (float64, bool) {
		v, present := opts[key]
		if !present || v == nil {
			return 0, false
		}
		f := opts.Float(key, -1)
		if f < 0 {
			warn(key, v, "must be a number >= 0")
			return 0, false
		}
		return f, true
	}
	weight := func(key string, dst *int) {
		if f, ok := num(key); ok {
			*dst = int(f)
		}
	}
	seconds := func(key string, dst *time.Duration) {
		if f, ok := num(key); ok {
			*dst = time.Duration(f * float64(time.Second))
		}
	}

	w := s.weights
	weight(OptQuickWeight, &w.Quick)
	weight(OptAnalysisWeight, &w.Analysis)
	weight(OptConversationWeight, &w.Conversation)
	if w.Quick+w.Analysis+w.Conversation > 0 {
		s.weights = w
	} else {
		warn(OptQuickWeight+"/"+OptAnalysisWeight+"/"+OptConversationWeight, w, "all weights are 0")
	}

	// A min/max pair is applied only as a whole, and only when ordered.
	durRange := func(minKey, maxKey string, min, max *time.Duration) {
		lo, hi := *min, *max
		seconds(minKey, &lo)
		seconds(maxKey, &hi)
		if lo <= hi {
			*min, *max = lo, hi
		} else {
			warn(minKey+"/"+maxKey, fmt.Sprintf("%v..%v", lo, hi), "min > max")
		}
	}
	durRange(OptWaitMin, OptWaitMax, &s.waitMin, &s.waitMax)
	durRange(OptThinkMin, OptThinkMax, &s.thinkMin, &s.thinkMax)

	tlo, thi := s.turnsMin, s.turnsMax
	weight(OptTurnsMin, &tlo)
	weight(OptTurnsMax, &thi)
	if tlo >= 1 && tlo <= thi {
		s.turnsMin, s.turnsMax = tlo, thi
	} else {
		warn(OptTurnsMin+"/"+OptTurnsMax, fmt.Sprintf("%d..%d", tlo, thi), "need 1 <= min <= max")
	}

	if v, present := opts[OptFailOnNonFatal]; present && v != nil {
		// Bool falls back to its default for non-bool values, so two
		// different defaults agreeing means the value itself was a bool.
		if b := opts.Bool(OptFailOnNonFatal, false); b == opts.Bool(OptFailOnNonFatal, true) {
			s.failOnNonFatal = b
		} else {
			warn(OptFailOnNonFatal, v, "must be a boolean")
		}
	}
	return s
}

// Tasks returns the three behaviours; a zero weight drops the task.
func (u *chatUser) Tasks() []locust.Task {
	all := []locust.Task{
		{Name: "quick", Weight: u.set.weights.Quick, Fn: u.quick},
		{Name: "analysis", Weight: u.set.weights.Analysis, Fn: u.analysis},
		{Name: "conversation", Weight: u.set.weights.Conversation, Fn: u.conversation},
	}
	out := all[:0]
	for _, t := range all {
		if t.Weight > 0 {
			out = append(out, t)
		}
	}
	return out
}

// WaitTime is between(WaitMin, WaitMax).
func (u *chatUser) WaitTime() locust.WaitTime { return locust.Between(u.set.waitMin, u.set.waitMax) }

func (u *chatUser) stopping() bool {
	select {
	case <-u.env.Stopping:
		return true
	default:
		return false
	}
}

func (u *chatUser) quick(ctx context.Context) error {
	return u.single(ctx, NameQuick, u.cls.cfg.Corpus.PickQuick(u.rand))
}

func (u *chatUser) analysis(ctx context.Context) error {
	return u.single(ctx, NameAnalysis, u.cls.cfg.Corpus.PickAnalysis(u.rand))
}

// single sends one query on a fresh thread: the server requires a thread_id
// and a new one keeps these requests independent.
func (u *chatUser) single(ctx context.Context, name, query string) error {
	if u.stopping() {
		return nil
	}
	res, _ := u.send(ctx, name, query, NewThreadID())
	u.after(ctx, res)
	return nil
}

// conversation runs 3–6 (configurable) turns on one new thread, thinking
// between turns. It stops at the first failed turn (a continuity failure),
// and on a stop request after the turn in flight.
func (u *chatUser) conversation(ctx context.Context) error {
	if u.stopping() {
		return nil
	}
	m := u.cls.cfg.Metrics
	turns := u.set.turnsMin
	if u.set.turnsMax > turns {
		turns += u.rand.IntN(u.set.turnsMax - turns + 1)
	}
	queries := u.cls.cfg.Corpus.PickConversation(u.rand).Turns(turns)
	thread := NewThreadID()
	sent, failed := 0, false
	var last *Result
	for i, q := range queries {
		if i > 0 && !u.sleep(ctx, u.between(u.set.thinkMin, u.set.thinkMax)) {
			break
		}
		name := NameConversationFollowUp
		if i == 0 {
			name = NameConversationStart
		}
		res, fail := u.send(ctx, name, q, thread)
		last = res
		if res.Outcome == Canceled {
			break
		}
		sent++
		if i == 0 {
			m.ConversationStarted()
		}
		if fail != "" {
			failed = true
			break
		}
	}
	if sent > 0 {
		m.ConversationFinished(sent, !failed && sent == len(queries), failed)
	}
	if last != nil {
		u.after(ctx, last)
	}
	return nil
}

// send performs and records one request. It returns the failure text ("" on
// success); a cancelled request is not recorded.
func (u *chatUser) send(ctx context.Context, name, query, thread string) (*Result, string) {
	res := u.cls.client.Chat(ctx, u.base, u.tok, ChatRequest{Query: query, ThreadID: thread})
	if res.Outcome == Canceled {
		return res, ""
	}
	fail := res.Failure(u.set.failOnNonFatal)
	if u.env.Recorder != nil {
		u.env.Recorder.Record("POST", name, durMs(res.Total), res.Bytes, fail)
	}
	u.cls.cfg.Metrics.ObserveRequest(name, u.tok.Prefix(), res)
	switch {
	case fail == "":
	case res.Status == 401:
		if _, dup := u.cls.rejected.LoadOrStore(u.tok.Prefix(), struct{}{}); !dup {
			u.log.Error(fmt.Sprintf("token rejected by server (%s); check %s", fail, EnvToken), "token", u.tok)
		}
	default:
		u.log.Debug("request failed", "name", name, "failure", fail, "err", res.Err)
	}
	return res, fail
}

// after backs off following a 429 (doubling per consecutive 429, capped);
// any other recorded result resets the backoff.
func (u *chatUser) after(ctx context.Context, res *Result) {
	if res == nil || res.Outcome == Canceled {
		return
	}
	if res.Status != 429 {
		u.backoff = 0
		return
	}
	if u.backoff == 0 {
		u.backoff = u.cls.cfg.Backoff429
	}
	d := u.backoff
	u.backoff = min(2*u.backoff, u.cls.cfg.Backoff429Max)
	u.log.Debug("quota exhausted (HTTP 429), backing off", "token", u.tok, "backoff", d)
	u.sleep(ctx, d)
}

// sleep waits d unless ctx ends or the user is asked to stop; it reports
// whether the full wait elapsed.
func (u *chatUser) sleep(ctx context.Context, d time.Duration) bool {
	if u.stopping() || ctx.Err() != nil {
		return false
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-u.env.Stopping:
	}
	return false
}

func (u *chatUser) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(u.rand.Int64N(int64(hi-lo)+1))
}

func durMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

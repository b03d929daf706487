package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"

	"github.com/zenoload/zenoload/locust"
	"github.com/zenoload/zenoload/querydata"
	"github.com/zenoload/zenoload/redact"
	"github.com/zenoload/zenoload/tasks"
)

// env reads configuration from the process environment, which loadDotEnv
// has filled from .env without overriding real variables: flags > env > .env.
type env struct{ getenv func(string) string }

func (e env) str(key, def string) string {
	if v := e.getenv(key); v != "" {
		return v
	}
	return def
}

// loadDotEnv loads path if it exists; a missing default .env is fine, a
// missing explicitly named one is an error.
func loadDotEnv(path string, explicit bool) error {
	if _, err := os.Stat(path); err != nil {
		if explicit {
			return fmt.Errorf("env file %s: %w", path, err)
		}
		return nil
	}
	if err := godotenv.Load(path); err != nil {
		return fmt.Errorf("env file %s: %w", path, err)
	}
	return nil
}

// envFileArg finds --env-file before flags are parsed, because the file
// supplies the flags' defaults.
func envFileArg(args []string) (string, bool) {
	for i, a := range args {
		if a == "--env-file" || a == "-env-file" {
			if i+1 < len(args) {
				return args[i+1], true
			}
		}
		if v, ok := strings.CutPrefix(a, "--env-file="); ok {
			return v, true
		}
	}
	return ".env", false
}

// typed flag helpers whose defaults come from an env var, named in the help.
type flags struct {
	fs  *flag.FlagSet
	env env
	err []error
}

func (f *flags) String(name, key, def, usage string) *string {
	return f.fs.String(name, f.env.str(key, def), withEnv(usage, key))
}

func (f *flags) Int(name, key string, def int, usage string) *int {
	v := def
	if s := f.env.str(key, ""); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			f.err = append(f.err, fmt.Errorf("%s=%q: not an integer", key, s))
		}
		v = n
	}
	return f.fs.Int(name, v, withEnv(usage, key))
}

func (f *flags) Float(name, key string, def float64, usage string) *float64 {
	v := def
	if s := f.env.str(key, ""); s != "" {
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			f.err = append(f.err, fmt.Errorf("%s=%q: not a number", key, s))
		}
		v = n
	}
	return f.fs.Float64(name, v, withEnv(usage, key))
}

func (f *flags) Duration(name, key string, def time.Duration, usage string) *time.Duration {
	v := def
	if s := f.env.str(key, ""); s != "" {
		d, err := parseDuration(s)
		if err != nil {
			f.err = append(f.err, fmt.Errorf("%s=%q: %w", key, s, err))
		}
		v = d
	}
	return f.fs.Duration(name, v, withEnv(usage, key))
}

func (f *flags) Bool(name, key string, def bool, usage string) *bool {
	v := def
	if s := f.env.str(key, ""); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			f.err = append(f.err, fmt.Errorf("%s=%q: not a boolean", key, s))
		}
		v = b
	}
	return f.fs.Bool(name, v, withEnv(usage, key))
}

func withEnv(usage, key string) string {
	if key == "" {
		return usage
	}
	return usage + " [env " + key + "]"
}

// parseDuration accepts Go durations and plain seconds ("15", "2.5").
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("not a duration (use 30s, 5m or seconds)")
	}
	return d, nil
}

// logFlags configures slog; every handler is wrapped by the redactor.
type logFlags struct {
	level *string
}

func addLogFlags(f *flags) *logFlags {
	return &logFlags{level: f.String("loglevel", "LOCUST_LOGLEVEL", "INFO", "log level: DEBUG, INFO, WARNING, ERROR")}
}

func (l *logFlags) logger(w io.Writer, red *redact.Redactor) (*slog.Logger, error) {
	var lv slog.Level
	switch strings.ToUpper(*l.level) {
	case "DEBUG":
		lv = slog.LevelDebug
	case "INFO", "":
		lv = slog.LevelInfo
	case "WARNING", "WARN":
		lv = slog.LevelWarn
	case "ERROR", "CRITICAL":
		lv = slog.LevelError
	default:
		return nil, fmt.Errorf("--loglevel %q: use DEBUG, INFO, WARNING or ERROR", *l.level)
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})
	return slog.New(red.Handler(h)), nil
}

// chatFlags are the Zeno load settings shared by worker and standalone.
type chatFlags struct {
	host, tokenFile, queries, queriesMode *string
	timeout                               *time.Duration
	maxLine                               *int
	quick, analysis, conv                 *int
	waitMin, waitMax, thinkMin, thinkMax  *time.Duration
	turnsMin, turnsMax                    *int
	failOnNonFatal                        *bool
}

func addChatFlags(f *flags, hostUsage string) *chatFlags {
	d := tasks.DefaultConfig()
	return &chatFlags{
		host:           f.String("host", "API_BASE_URL", "", hostUsage),
		tokenFile:      f.String("token-file", tasks.EnvTokensFile, "", "file with one machine-user token per line (a pool, split across workers)"),
		queries:        f.String("queries", "ZENO_QUERY_FILE", "", "JSON query file replacing or extending the embedded corpus"),
		queriesMode:    f.String("queries-mode", "ZENO_QUERY_MODE", "extend", "replace or extend the embedded corpus with --queries"),
		timeout:        f.Duration("timeout", "ZENO_REQUEST_TIMEOUT", d.Timeout, "total time limit per chat request, headers to end of stream"),
		maxLine:        f.Int("max-line-bytes", "ZENO_MAX_LINE_BYTES", d.MaxLineBytes, "longest accepted NDJSON line"),
		quick:          f.Int("quick-weight", "ZENO_QUICK_WEIGHT", d.Weights.Quick, "weight of quick queries"),
		analysis:       f.Int("analysis-weight", "ZENO_ANALYSIS_WEIGHT", d.Weights.Analysis, "weight of analysis queries"),
		conv:           f.Int("conversation-weight", "ZENO_CONVERSATION_WEIGHT", d.Weights.Conversation, "weight of conversations"),
		waitMin:        f.Duration("wait-min", "ZENO_WAIT_MIN", d.WaitMin, "minimum wait between tasks"),
		waitMax:        f.Duration("wait-max", "ZENO_WAIT_MAX", d.WaitMax, "maximum wait between tasks"),
		turnsMin:       f.Int("turns-min", "ZENO_TURNS_MIN", d.TurnsMin, "minimum turns per conversation"),
		turnsMax:       f.Int("turns-max", "ZENO_TURNS_MAX", d.TurnsMax, "maximum turns per conversation"),
		thinkMin:       f.Duration("think-min", "ZENO_THINK_MIN", d.ThinkMin, "minimum think time between turns"),
		thinkMax:       f.Duration("think-max", "ZENO_THINK_MAX", d.ThinkMax, "maximum think time between turns"),
		failOnNonFatal: f.Bool("fail-on-nonfatal", "ZENO_FAIL_ON_NONFATAL", d.FailOnNonFatal, "count non-fatal stream error lines as failures"),
	}
}

// tokens builds the token pool: --token-file, else ZENO_MACHINE_USER_TOKENS,
// else ZENO_MACHINE_USER_TOKEN.
func (c *chatFlags) tokens(e env) (*tasks.TokenPool, error) {
	if *c.tokenFile != "" {
		return tasks.LoadTokenFile(*c.tokenFile)
	}
	return tasks.TokenPoolFromEnv(e.getenv)
}

func (c *chatFlags) config(pool *tasks.TokenPool, red *redact.Redactor, log *slog.Logger, m *tasks.Metrics) (tasks.Config, error) {
	cfg := tasks.DefaultConfig()
	cfg.BaseURL = *c.host
	cfg.Tokens = pool
	cfg.Redactor = red
	cfg.Logger = log
	cfg.Metrics = m
	cfg.Timeout = *c.timeout
	cfg.MaxLineBytes = *c.maxLine
	cfg.Weights = tasks.Weights{Quick: *c.quick, Analysis: *c.analysis, Conversation: *c.conv}
	cfg.WaitMin, cfg.WaitMax = *c.waitMin, *c.waitMax
	cfg.TurnsMin, cfg.TurnsMax = *c.turnsMin, *c.turnsMax
	cfg.ThinkMin, cfg.ThinkMax = *c.thinkMin, *c.thinkMax
	cfg.FailOnNonFatal = *c.failOnNonFatal
	if *c.timeout <= 0 {
		return cfg, fmt.Errorf("--timeout must be positive, got %s", *c.timeout)
	}
	if *c.queries != "" {
		mode, err := querydata.ParseMode(*c.queriesMode)
		if err != nil {
			return cfg, fmt.Errorf("--queries-mode: %w", err)
		}
		corpus, err := querydata.Load(*c.queries, mode)
		if err != nil {
			return cfg, fmt.Errorf("--queries: %w", err)
		}
		cfg.Corpus = corpus
	}
	return cfg, nil
}

// chatSetup is what both the worker and standalone build from chatFlags.
type chatSetup struct {
	class   locust.UserClass
	red     *redact.Redactor
	log     *slog.Logger
	metrics *tasks.Metrics
	baseURL string
}

// build turns the flags into a redacting logger and the ZenoChatUser class.
// The redactor exists before the first log line, so no token is ever printed.
func (c *chatFlags) build(e env, lf *logFlags, stderr io.Writer) (chatSetup, error) {
	pool, err := c.tokens(e)
	if err != nil {
		return chatSetup{}, err
	}
	st := chatSetup{red: pool.Redactor(), metrics: tasks.NewMetrics()}
	if st.log, err = lf.logger(stderr, st.red); err != nil {
		return chatSetup{}, err
	}
	cfg, err := c.config(pool, st.red, st.log, st.metrics)
	if err != nil {
		return chatSetup{}, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://localhost:8000"
	}
	st.baseURL = cfg.BaseURL
	if st.class, err = tasks.NewUserClass(cfg, nil); err != nil {
		return chatSetup{}, err
	}
	return st, nil
}

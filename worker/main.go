// Command zeno-worker generates Project Zeno chat load. By default it joins
// a stock Locust master as a worker; subcommands run the fake Zeno server,
// a standalone test with no master, and the predefined scenarios.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/zenoload/zenoload/locust"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usageTop = `zeno-worker: Project Zeno chat load from Go, driven by a stock Locust master.

Usage:
  zeno-worker [flags]                   join a Locust master as a worker (default)
  zeno-worker standalone [flags]        run users locally, no master
  zeno-worker scenario NAME [flags]     smoke | load | stress | spike | all
  zeno-worker fake-zeno [flags]         run the fake Zeno API server
  zeno-worker version                   print the version

Run "zeno-worker COMMAND --help" for a command's flags.
Flags override environment variables, which override a .env file (--env-file).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	locust.Shutdown() // flush the final stats and quit before exiting
	os.Exit(code)
}

const envHelp = `
Machine-user tokens (zeno-key:<prefix>:<secret>; the legacy zeno-key_<prefix>_<secret> is accepted):
  ZENO_MACHINE_USER_TOKEN        one token
  ZENO_MACHINE_USER_TOKENS       comma-separated pool, split across workers by worker index
  ZENO_MACHINE_USER_TOKENS_FILE  file with one token per line (same as --token-file)
Secrets are never printed: logs and reports show zeno-key:<prefix>:***.
`

// errUsage marks a bad command line; the message has already been printed.
var errUsage = errors.New("usage")

// run dispatches a command; it returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "":
		if hasFlag(args, "version") {
			fmt.Fprintln(stdout, "zeno-worker", version)
			return 0
		}
		err = runWorker(ctx, args, stdout, stderr, getenv)
	case "standalone":
		err = runStandalone(ctx, args, stdout, stderr, getenv)
	case "scenario":
		err = runScenario(ctx, args, stdout, stderr, getenv)
	case "fake-zeno":
		err = runFakeZeno(ctx, args, stdout, stderr, getenv)
	case "version":
		fmt.Fprintln(stdout, "zeno-worker", version)
		return 0
	case "help":
		fmt.Fprint(stdout, usageTop)
		return 0
	default:
		fmt.Fprintf(stderr, "zeno-worker: unknown command %q\n\n%s", cmd, usageTop)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errFailed):
		return 1
	}
	fmt.Fprintln(stderr, "zeno-worker:", err)
	return 1
}

// errFailed: the command ran and reported its own failure (e.g. a scenario
// criterion); nothing more to print.
var errFailed = errors.New("failed")

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--"+name || a == "-"+name {
			return true
		}
	}
	return false
}

// newFlags prepares a flag set whose defaults come from env and .env.
func newFlags(name, summary string, args []string, stderr io.Writer, getenv func(string) string) (*flags, error) {
	path, explicit := envFileArg(args)
	if err := loadDotEnv(path, explicit); err != nil {
		return nil, err
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &flags{fs: fs, env: env{getenv: func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return os.Getenv(k) // .env values were loaded into the process env
	}}}
	fs.String("env-file", path, "file of KEY=VALUE defaults (.env); real environment variables win")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags:\n", summary)
		fs.PrintDefaults()
		fmt.Fprint(stderr, envHelp)
	}
	return f, nil
}

// parse parses args and reports env errors found while reading defaults.
func (f *flags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if len(f.err) > 0 {
		return fmt.Errorf("invalid environment: %w", errors.Join(f.err...))
	}
	return nil
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/zenoload/zenoload/locust"
	"github.com/zenoload/zenoload/redact"
)

const workerSummary = `zeno-worker joins a stock Locust 2.x master (locust -f locustfile_master.py --master)
as a worker and runs the ZenoChatUser load against the Zeno API.`

func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	f, err := newFlags("zeno-worker", workerSummary, args, stderr, getenv)
	if err != nil {
		return err
	}
	masterHost := f.String("master-host", "LOCUST_MASTER_NODE_HOST", "127.0.0.1", "Locust master host")
	masterPort := f.Int("master-port", "LOCUST_MASTER_NODE_PORT", 5557, "Locust master port")
	masterTimeout := f.Duration("master-timeout", "ZENO_MASTER_TIMEOUT", locust.DefaultMasterTimeout,
		"exit when no master has acknowledged this worker for this long (0: retry forever)")
	hbTimeout := f.Duration("master-heartbeat-timeout", "ZENO_MASTER_HEARTBEAT_TIMEOUT", locust.DefaultMasterHeartbeatTimeout,
		"re-register when a master that sent heartbeats has been silent this long")
	summaryPath := f.String("summary-json", "ZENO_SUMMARY_JSON", "", "write this worker's totals as JSON here at exit")
	_ = f.fs.Bool("version", false, "print the version and exit")
	chat := addChatFlags(f, "Zeno API base URL; default: the master's --host, else http://localhost:8000")
	lf := addLogFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	if *masterTimeout == 0 {
		*masterTimeout = -1 // the runtime's "forever"
	}
	st, err := chat.build(f.env, lf, stderr)
	if err != nil {
		return err
	}
	red, log := st.red, st.log
	w, err := locust.NewWorker(locust.Config{
		MasterHost: *masterHost, MasterPort: *masterPort, Host: *chat.host,
		Classes: []locust.UserClass{st.class}, Logger: log, Redact: red.String,
		MasterTimeout: *masterTimeout, MasterHeartbeatTimeout: *hbTimeout,
	})
	if err != nil {
		return err
	}
	w.AddReporter(st.metrics.Report)
	runErr := w.Run(ctx)
	if *summaryPath != "" {
		if err := writeJSON(*summaryPath, w.Stats().Summary(), red); err != nil {
			log.Error("cannot write summary", "error", err)
		}
	}
	if runErr != nil {
		return fmt.Errorf("%s", red.String(runErr.Error()))
	}
	return nil
}

// writeJSON writes v as indented JSON, redacted, atomically.
func writeJSON(path string, v any, red *redact.Redactor) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(red.String(string(b))+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// nowStamp names report folders.
func nowStamp() string { return time.Now().Format("20060102-150405") }

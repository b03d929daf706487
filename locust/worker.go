package locust

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"crypto/rand"
	"encoding/hex"
)

// Protocol constants shared by every 2.x master (protocol doc §9).
const (
	DefaultHeartbeatInterval      = time.Second
	DefaultReportInterval         = 3 * time.Second
	DefaultReadyRetryInterval     = 5 * time.Second
	DefaultMasterHeartbeatTimeout = 60 * time.Second
	DefaultMasterTimeout          = 5 * time.Minute
	quitFlushBudget               = 300 * time.Millisecond
)

// Reporter is called on every stats report (and once with final=true at
// quit). It returns a custom message to send alongside the stats.
type Reporter func(final bool) (msgType string, data any, ok bool)

// Config configures a Worker.
type Config struct {
	MasterHost string
	MasterPort int
	NodeID     string // default <hostname>_<uuid hex>
	// Host overrides the spawn message's host for users.
	Host    string
	Classes []UserClass
	Logger  *slog.Logger
	// Redact scrubs secrets from every text sent to the master.
	Redact func(string) string
	// MasterHeartbeatTimeout: after at least one master heartbeat, this long
	// without one means the master is gone: rebuild and re-register.
	MasterHeartbeatTimeout time.Duration
	// MasterTimeout: give up (Run returns an error) when no master has
	// acknowledged this worker for this long. Negative: retry forever.
	MasterTimeout time.Duration
	Stats         *Stats
	// Intervals; zero means the Locust defaults. Tests shorten them.
	HeartbeatInterval, ReportInterval, ReadyRetryInterval time.Duration
}

// ErrMasterTimeout is returned by Run when no master answered in time.
var ErrMasterTimeout = errors.New("master unreachable")

// Worker is a Locust 2.x worker node.
type Worker struct {
	cfg      Config
	log      *slog.Logger
	stats    *Stats
	pool     *pool
	nodeID   string
	endpoint string
	redact   func(string) string

	mu           sync.Mutex
	c            *conn
	registered   bool
	state        string // ready | spawning | running (the only values a master accepts)
	index        int
	handlers     map[string]func(data any)
	reporters    []Reporter
	lastSpawnTS  float64
	stopTimeout  time.Duration
	masterHB     time.Time
	seenMasterHB bool
	lastAck      time.Time
	quitting     bool
	spawned      map[string]int64 // counts in the last spawning_complete
	disconnected bool             // TCP to the master dropped; re-register on reconnect
	disconnAt    time.Time

	jobs     chan func()
	reportMu sync.Mutex // one report at a time: a window is sent exactly once
	excMu    sync.Mutex
	excSent  int
	excWin   time.Time
}

// NewWorker validates cfg and prepares a worker; Run connects it.
func NewWorker(cfg Config) (*Worker, error) {
	if cfg.MasterHost == "" {
		cfg.MasterHost = "127.0.0.1"
	}
	if cfg.MasterPort == 0 {
		cfg.MasterPort = 5557
	}
	if cfg.MasterPort < 1 || cfg.MasterPort > 65535 {
		return nil, fmt.Errorf("master port %d out of range 1-65535", cfg.MasterPort)
	}
	if len(cfg.Classes) == 0 {
		return nil, errors.New("no user classes registered")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Redact == nil {
		cfg.Redact = func(s string) string { return s }
	}
	if cfg.MasterHeartbeatTimeout == 0 {
		cfg.MasterHeartbeatTimeout = DefaultMasterHeartbeatTimeout
	}
	if cfg.MasterTimeout == 0 {
		cfg.MasterTimeout = DefaultMasterTimeout
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.ReportInterval == 0 {
		cfg.ReportInterval = DefaultReportInterval
	}
	if cfg.ReadyRetryInterval == 0 {
		cfg.ReadyRetryInterval = DefaultReadyRetryInterval
	}
	if cfg.Stats == nil {
		cfg.Stats = NewStats(0)
	}
	if cfg.NodeID == "" {
		cfg.NodeID = NewNodeID()
	}
	w := &Worker{
		cfg: cfg, log: cfg.Logger, stats: cfg.Stats, nodeID: cfg.NodeID, redact: cfg.Redact,
		endpoint: "tcp://" + net.JoinHostPort(cfg.MasterHost, strconv.Itoa(cfg.MasterPort)),
		state:    "ready", index: -1, handlers: map[string]func(any){}, jobs: make(chan func(), 64),
	}
	w.pool = newPool(cfg.Classes, cfg.Stats, cfg.Logger, cfg.Redact, w.sendException, w.SendMessage)
	return w, nil
}

// NewNodeID returns <hostname>_<uuid hex>, the id Locust's own workers use;
// the master spreads users by the part before the first '_'.
func NewNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	host = strings.ReplaceAll(host, "_", "-")
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return host + "_" + hex.EncodeToString(b[:])
}

// NodeID is this worker's identity on the master.
func (w *Worker) NodeID() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nodeID
}

// Stats is the worker's recorder.
func (w *Worker) Stats() *Stats { return w.stats }

// Index is the worker index from the master's ack, or -1 before the first.
func (w *Worker) Index() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.index
}

// SpawnedCounts returns the per-class user counts of the last completed spawn.
func (w *Worker) SpawnedCounts() map[string]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int64, len(w.spawned))
	for k, v := range w.spawned {
		out[k] = v
	}
	return out
}

// RegisterMessage installs a handler for a custom message type from the master.
func (w *Worker) RegisterMessage(msgType string, fn func(data any)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.handlers[msgType] = fn
}

// AddReporter adds a custom report sent with every stats report.
func (w *Worker) AddReporter(r Reporter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reporters = append(w.reporters, r)
}

// SendMessage sends a custom message to the master. Before the master has
// acknowledged the worker it is dropped: an unknown node confuses the master.
func (w *Worker) SendMessage(msgType string, data any) error {
	w.mu.Lock()
	ok := w.registered && !w.quitting
	w.mu.Unlock()
	if !ok {
		return errors.New("not registered with a master")
	}
	return w.send(msgType, data)
}

func (w *Worker) send(msgType string, data any) error {
	w.mu.Lock()
	c, id := w.c, w.nodeID
	w.mu.Unlock()
	b, err := Encode(Message{Type: msgType, Data: data, NodeID: id})
	if err != nil {
		return err
	}
	if c == nil {
		return errConnClosed
	}
	return c.send(b)
}

// sendException reports a user error to the master's Exceptions tab, capped
// so a crash loop in thousands of users cannot flood the master.
func (w *Worker) sendException(msg, tb string) {
	w.excMu.Lock()
	now := time.Now()
	if now.Sub(w.excWin) > time.Second {
		w.excWin, w.excSent = now, 0
	}
	w.excSent++
	over := w.excSent > 10
	w.excMu.Unlock()
	if over {
		return
	}
	_ = w.SendMessage("exception", map[string]any{"msg": w.redact(msg), "traceback": w.redact(tb)})
}

func (w *Worker) setState(s string) {
	w.mu.Lock()
	w.state = s
	w.mu.Unlock()
}

// Run joins the master and serves it until the master sends quit (nil), ctx
// ends (nil, after telling the master), or no master answers within
// MasterTimeout (ErrMasterTimeout).
func (w *Worker) Run(ctx context.Context) error {
	c, err := dial(ctx, w.endpoint, w.nodeID)
	if err != nil {
		return fmt.Errorf("join master: %w", err)
	}
	w.mu.Lock()
	w.c = c
	w.mu.Unlock()
	w.log.Info("connecting to locust master", "master", w.endpoint, "node_id", w.nodeID)

	loopCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var bg sync.WaitGroup
	bg.Add(3)
	go func() { defer bg.Done(); w.heartbeatLoop(loopCtx) }()
	go func() { defer bg.Done(); w.reportLoop(loopCtx) }()
	go func() { defer bg.Done(); w.jobLoop(loopCtx) }()

	err = w.control(ctx)
	cancel()
	w.shutdown()
	bg.Wait()
	return err
}

func (w *Worker) control(ctx context.Context) error {
	w.sendReady()
	started := time.Now()
	readyTick := time.NewTicker(w.cfg.ReadyRetryInterval)
	defer readyTick.Stop()
	check := time.NewTicker(min(time.Second, w.cfg.HeartbeatInterval))
	defer check.Stop()
	for {
		w.mu.Lock()
		in, events := w.c.in, w.c.events
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			w.onConnEvent(ev)
		case b := <-in:
			m, err := Decode(b)
			if err != nil {
				w.log.Warn("ignoring malformed message from master", "error", err, "bytes", len(b))
				continue
			}
			if quit := w.handle(ctx, m); quit {
				return nil
			}
		case <-readyTick.C:
			w.mu.Lock()
			reg, last, disc, discAt := w.registered, w.lastAck, w.disconnected, w.disconnAt
			w.mu.Unlock()
			if disc {
				if err := w.whileDisconnected(time.Since(discAt)); err != nil {
					return err
				}
				continue
			}
			if reg {
				continue
			}
			since := started
			if !last.IsZero() {
				since = last
			}
			if w.cfg.MasterTimeout > 0 && time.Since(since) > w.cfg.MasterTimeout {
				return fmt.Errorf("%w: no answer from locust master at %s for %s (--master-timeout); is `locust --master` running and reachable?",
					ErrMasterTimeout, w.endpoint, w.cfg.MasterTimeout.Round(time.Second))
			}
			w.log.Warn("waiting for locust master: no ack yet; is `locust --master` running and reachable?",
				"master", w.endpoint, "waited", time.Since(since).Round(time.Second).String())
			w.sendReady()
		case <-check.C:
			w.checkMaster(ctx)
		}
	}
}

// orphanGrace is how long users keep running after the master's connection
// dropped; longer than a restart takes, shorter than Locust's own 60 s.
const orphanGrace = 10 * time.Second

// whileDisconnected runs every retry tick while the TCP connection to the
// master is down: a clear line each time, the users stopped once the test is
// clearly orphaned, and ErrMasterTimeout after MasterTimeout.
func (w *Worker) whileDisconnected(waited time.Duration) error {
	if w.cfg.MasterTimeout > 0 && waited > w.cfg.MasterTimeout {
		return fmt.Errorf("%w: lost the connection to locust master at %s %s ago (--master-timeout %s)",
			ErrMasterTimeout, w.endpoint, waited.Round(time.Second), w.cfg.MasterTimeout)
	}
	w.log.Warn("still no connection to the locust master; waiting for it to come back",
		"master", w.endpoint, "waited", waited.Round(time.Second).String())
	if waited >= orphanGrace && w.pool.total() > 0 {
		w.log.Warn("stopping users: their test ended with the master", "users", w.pool.total())
		w.jobs <- func() { w.pool.stopAll(0) }
	}
	return nil
}

// onConnEvent re-registers after the TCP connection to the master comes
// back: a restarted master does not know this worker and would ignore it
// for good (Locust's own workers are orphaned this way).
func (w *Worker) onConnEvent(ev connEvent) {
	w.mu.Lock()
	switch ev {
	case evDisconnected:
		if !w.disconnected {
			w.disconnected, w.disconnAt = true, time.Now()
		}
		w.mu.Unlock()
		w.log.Warn("lost the connection to the locust master; waiting for it to come back", "master", w.endpoint)
		return
	case evConnected:
		if !w.disconnected {
			w.mu.Unlock()
			return // the first connect
		}
		w.disconnected = false
	}
	wasRegistered := w.registered
	w.registered, w.seenMasterHB, w.state = false, false, "ready"
	if wasRegistered {
		w.lastAck = time.Now() // the --master-timeout clock restarts here
	}
	w.mu.Unlock()
	w.log.Info("connection to the locust master is back; registering again", "master", w.endpoint)
	// The old test died with the old master: its users must not run on.
	w.jobs <- func() { w.pool.stopAll(0) }
	w.sendReady()
}

func (w *Worker) sendReady() {
	// -1 is accepted silently by every 2.x master; a version string would warn.
	if err := w.send("client_ready", -1); err != nil {
		w.log.Warn("cannot send client_ready", "error", err)
	}
}

// checkMaster rebuilds the connection when master heartbeats stopped (a
// restarted master does not know us and never answers).
func (w *Worker) checkMaster(ctx context.Context) {
	w.mu.Lock()
	lost := w.registered && w.seenMasterHB && time.Since(w.masterHB) > w.cfg.MasterHeartbeatTimeout
	w.mu.Unlock()
	if !lost {
		return
	}
	w.log.Warn("no heartbeat from locust master; stopping users, reconnecting and registering again",
		"master", w.endpoint, "timeout", w.cfg.MasterHeartbeatTimeout.String())
	w.pool.stopAll(0)
	// A new identity: the silent master may still hold our old connection,
	// and its ROUTER ignores a second connection with the same identity.
	id := NewNodeID()
	w.mu.Lock()
	w.registered, w.seenMasterHB, w.state, w.lastAck = false, false, "ready", time.Now()
	w.nodeID = id
	w.mu.Unlock()
	w.log.Info("re-registering under a new node id", "node_id", id)
	w.reconnect(ctx)
	w.sendReady()
}

func (w *Worker) reconnect(ctx context.Context) {
	w.mu.Lock()
	old := w.c
	w.mu.Unlock()
	old.close()
	for {
		c, err := dial(ctx, w.endpoint, w.NodeID())
		if err == nil {
			w.mu.Lock()
			w.c = c
			w.mu.Unlock()
			return
		}
		w.log.Warn("cannot recreate master connection", "error", err)
		if !sleepCtx(ctx, time.Second) {
			// keep a closed conn so callers see errConnClosed, not nil
			w.mu.Lock()
			w.c = old
			w.mu.Unlock()
			return
		}
	}
}

// handle processes one master message; true means quit.
func (w *Worker) handle(ctx context.Context, m Message) bool {
	switch m.Type {
	case "ack":
		w.onAck(m.Data)
	case "heartbeat":
		w.mu.Lock()
		// Only a registered worker arms the rule: after a reconnect a late
		// reply can come before the new ack.
		first := w.registered && !w.seenMasterHB
		w.masterHB = time.Now()
		w.seenMasterHB = w.seenMasterHB || w.registered
		w.mu.Unlock()
		if first {
			// The silence rule is armed only from here (masters before 2.19
			// never send heartbeats), so say when it is.
			w.log.Info("master heartbeats arrive; a silent master will be detected",
				"timeout", w.cfg.MasterHeartbeatTimeout.String())
		}
	case "spawn":
		// Reply at once, even for a stale spawn, like Locust's own worker.
		_ = w.send("spawning", nil)
		w.setState("spawning")
		data, _ := m.Data.(map[string]any)
		w.jobs <- func() { w.onSpawn(ctx, data) }
	case "stop":
		w.jobs <- func() { w.onStop(ctx) }
	case "quit":
		w.log.Info("master asked this worker to quit")
		return true
	case "reconnect":
		w.log.Warn("master asked for a reconnect")
		w.reconnect(ctx)
	case "spawning_complete", "update_user_class":
		// Informational (newer masters); nothing to do for a Go worker.
	default:
		w.mu.Lock()
		fn := w.handlers[m.Type]
		w.mu.Unlock()
		if fn == nil {
			w.log.Debug("ignoring unknown message type from master", "type", m.Type)
			return false
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					w.log.Error("custom message handler panicked", "type", m.Type, "panic", fmt.Sprint(r))
				}
			}()
			fn(m.Data)
		}()
	}
	return false
}

func (w *Worker) onAck(data any) {
	idx := int64(0)
	if d, ok := data.(map[string]any); ok {
		if v, ok := toInt(d["index"]); ok {
			idx = v
		}
	}
	w.mu.Lock()
	dup := w.registered
	w.registered, w.index, w.lastAck = true, int(idx), time.Now()
	w.mu.Unlock()
	if !dup {
		w.log.Info("registered with locust master", "master", w.endpoint, "worker_index", idx)
	}
}

func (w *Worker) onSpawn(ctx context.Context, data map[string]any) {
	if data == nil {
		w.log.Warn("spawn message without data; ignored")
		return
	}
	ts, _ := toFloat(data["timestamp"])
	w.mu.Lock()
	stale := ts <= w.lastSpawnTS
	if !stale {
		w.lastSpawnTS = ts
	}
	prevRunning := w.state == "running"
	idx := w.index
	w.mu.Unlock()
	if stale {
		w.log.Debug("discarding stale spawn message", "timestamp", ts)
		return
	}
	if !prevRunning && w.pool.total() == 0 {
		// A new test: its stats start now (protocol doc §4).
		w.stats.Reset()
	}
	host, _ := data["host"].(string)
	if w.cfg.Host != "" {
		host = w.cfg.Host
	}
	var stopTimeout time.Duration
	if f, ok := toFloat(data["stop_timeout"]); ok && f > 0 {
		stopTimeout = time.Duration(f * float64(time.Second))
	}
	opts, _ := data["parsed_options"].(map[string]any)
	targets := map[string]int{}
	if ucc, ok := data["user_classes_count"].(map[string]any); ok {
		for k, v := range ucc {
			n, _ := toInt(v)
			targets[k] = int(n)
		}
	}
	w.mu.Lock()
	w.stopTimeout = stopTimeout
	w.mu.Unlock()
	w.pool.configure(host, Options(opts), idx)
	w.pool.apply(ctx, targets, stopTimeout)
	counts := w.pool.counts()
	var sum int64
	for _, n := range counts {
		sum += n
	}
	w.mu.Lock()
	ok := w.registered && !w.quitting
	if ok {
		w.state = "running"
		w.spawned = counts
	}
	w.mu.Unlock()
	if ok {
		_ = w.send("spawning_complete", map[string]any{"user_classes_count": counts, "user_count": sum})
	}
}

func (w *Worker) onStop(ctx context.Context) {
	w.mu.Lock()
	timeout := w.stopTimeout
	w.mu.Unlock()
	w.log.Info("stopping users", "stop_timeout", timeout.String())
	w.pool.stopAll(timeout)
	w.mu.Lock()
	ok := w.registered && !w.quitting
	if ok {
		w.registered = false
		w.state = "ready"
	}
	w.mu.Unlock()
	if !ok {
		return
	}
	// Flush the test's last window now: after client_stopped the master
	// forgets us, and a quit may follow before the next report tick.
	w.report(false)
	_ = w.send("client_stopped", nil)
	// The master deleted this node; register again for the next test.
	w.sendReady()
}

func (w *Worker) jobLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-w.jobs:
			job()
		}
	}
}

// whileRegistered calls fn every interval while the master knows this
// worker: before the ack, heartbeats or stats would come from an unknown node.
func (w *Worker) whileRegistered(ctx context.Context, every time.Duration, fn func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		reg := w.registered && !w.quitting
		w.mu.Unlock()
		if reg {
			fn()
		}
	}
}

func (w *Worker) heartbeatLoop(ctx context.Context) {
	var cpu cpuSampler
	cpu.sample()
	w.whileRegistered(ctx, w.cfg.HeartbeatInterval, func() {
		w.mu.Lock()
		state := w.state
		w.mu.Unlock()
		_ = w.send("heartbeat", map[string]any{
			"state": state, "current_cpu_usage": cpu.sample(), "current_memory_usage": rssBytes(),
		})
	})
}

func (w *Worker) reportLoop(ctx context.Context) {
	w.whileRegistered(ctx, w.cfg.ReportInterval, func() { w.report(false) })
}

// report sends one stats window plus the custom reports. A window whose send
// fails stays pending and goes out with the next one.
func (w *Worker) report(final bool) {
	w.reportMu.Lock()
	defer w.reportMu.Unlock()
	win := w.stats.take()
	if err := w.send("stats", win.reportData(w.pool.counts())); err != nil {
		w.log.Warn("stats report not sent; it will be merged into the next one", "error", err)
		return
	}
	w.stats.commit(win)
	w.mu.Lock()
	reps := append([]Reporter(nil), w.reporters...)
	w.mu.Unlock()
	for _, r := range reps {
		if typ, data, ok := r(final); ok {
			_ = w.send(typ, data)
		}
	}
}

// shutdown stops users hard, flushes the last stats and says quit, all within
// the 0.5 s the master waits after its own quit. The final window is taken
// before waiting for users: a request cancelled here is recorded nowhere,
// and a late report would be counted by us but not by the master.
func (w *Worker) shutdown() {
	w.mu.Lock()
	w.quitting = true
	reg := w.registered
	w.mu.Unlock()
	w.pool.killAll()
	if reg {
		w.report(true)
		_ = w.send("quit", nil)
	}
	done := make(chan struct{})
	go func() { w.pool.stopAll(0); close(done) }()
	select {
	case <-done:
	case <-time.After(quitFlushBudget):
		w.log.Warn("some users did not stop in time")
	}
	sum := w.stats.Summary()
	w.log.Info("worker totals", "requests", sum.Requests, "failures", sum.Failures)
	w.mu.Lock()
	c := w.c
	w.mu.Unlock()
	c.close()
}

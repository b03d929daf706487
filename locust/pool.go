package locust

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sort"
	"sync"
	"time"
)

// pool runs users: per-class absolute targets, graceful and hard stops, panic
// recovery. It is the part shared by the master-driven worker and standalone.
type pool struct {
	classes     map[string]UserClass
	stats       *Stats
	log         *slog.Logger
	redact      func(string) string
	onException func(msg, traceback string)
	send        func(string, any) error
	seed        uint64

	mu      sync.Mutex
	users   map[string][]*userHandle
	nextID  int
	host    string
	options Options
	index   int
	unknown map[string]bool          // class names already reported as unknown
	live    map[*userHandle]struct{} // every user goroutine not yet exited
	wg      sync.WaitGroup
}

type userHandle struct {
	stopLoop context.CancelFunc // graceful: finish the task, start nothing new
	kill     context.CancelFunc // hard: cancel the task's context
	done     chan struct{}
}

func newPool(classes []UserClass, stats *Stats, log *slog.Logger, redact func(string) string,
	onException func(msg, tb string), send func(string, any) error) *pool {
	m := make(map[string]UserClass, len(classes))
	for _, c := range classes {
		m[c.Name] = c
	}
	if redact == nil {
		redact = func(s string) string { return s }
	}
	return &pool{classes: m, stats: stats, log: log, redact: redact, onException: onException,
		send: send, users: map[string][]*userHandle{}, unknown: map[string]bool{},
		live: map[*userHandle]struct{}{},
		seed: uint64(time.Now().UnixNano())}
}

func (p *pool) configure(host string, opts Options, index int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if host != "" {
		p.host = host
	}
	if opts != nil {
		p.options = opts
	}
	p.index = index
}

// counts returns the actual running users per class (only classes that run
// or that the master asked for, so the master sees every key it sent).
func (p *pool) counts() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.users))
	for name, hs := range p.users {
		out[name] = int64(len(hs))
	}
	return out
}

func (p *pool) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, hs := range p.users {
		n += len(hs)
	}
	return n
}

// apply converges each named class to its absolute target. Classes missing
// from targets are left unchanged, as Locust does. Users being scaled down get
// stopTimeout to finish their task in the background; they no longer count.
func (p *pool) apply(ctx context.Context, targets map[string]int, stopTimeout time.Duration) {
	names := make([]string, 0, len(targets))
	for n := range targets {
		names = append(names, n)
	}
	sort.Strings(names)
	var stopping []*userHandle
	p.mu.Lock()
	for _, name := range names {
		want := max(targets[name], 0)
		cls, ok := p.classes[name]
		if !ok {
			if want > 0 && !p.unknown[name] {
				p.unknown[name] = true
				msg := fmt.Sprintf("unknown user class %q: this worker has no Go user registered under that name", name)
				p.log.Error(msg, "known", p.classNames())
				if p.onException != nil {
					p.onException(msg, "spawn: user_classes_count names a class the Go worker does not register")
				}
			}
			p.users[name] = p.users[name][:0]
			continue
		}
		hs := p.users[name]
		for len(hs) < want {
			hs = append(hs, p.startLocked(ctx, cls))
		}
		if len(hs) > want {
			stopping = append(stopping, hs[want:]...)
			hs = hs[:want]
		}
		p.users[name] = hs
	}
	p.mu.Unlock()
	stopHandles(stopping, stopTimeout)
}

func (p *pool) classNames() []string {
	out := make([]string, 0, len(p.classes))
	for n := range p.classes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// stopAll stops every user and waits until they have all exited. With
// timeout 0 it also kills users still finishing from an earlier graceful stop.
func (p *pool) stopAll(timeout time.Duration) {
	p.mu.Lock()
	var all []*userHandle
	for name, hs := range p.users {
		all = append(all, hs...)
		p.users[name] = nil
	}
	if timeout <= 0 {
		all = all[:0]
		for h := range p.live {
			all = append(all, h)
		}
	}
	p.mu.Unlock()
	stopHandles(all, timeout)
	p.wg.Wait()
}

// killAll cancels every user's task context at once without waiting, so
// nothing more is recorded after the final stats window is taken.
func (p *pool) killAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for h := range p.live {
		h.stopLoop()
		h.kill()
	}
}

func stopHandles(hs []*userHandle, timeout time.Duration) {
	for _, h := range hs {
		h.stopLoop()
		if timeout <= 0 {
			h.kill()
		} else {
			time.AfterFunc(timeout, h.kill)
		}
	}
}

func (p *pool) startLocked(parent context.Context, cls UserClass) *userHandle {
	p.nextID++
	id := p.nextID
	loopCtx, stopLoop := context.WithCancel(parent)
	taskCtx, kill := context.WithCancel(parent)
	h := &userHandle{stopLoop: stopLoop, kill: kill, done: make(chan struct{})}
	env := &Env{
		UserID: id, Class: cls.Name, Host: p.host, Options: p.options, WorkerIndex: p.index,
		Recorder: p.stats.Recorder(id), Logger: p.log.With("user", id, "class", cls.Name),
		Rand: rand.New(rand.NewPCG(p.seed, uint64(id))), Stopping: loopCtx.Done(),
		SendMessage: p.send,
	}
	p.live[h] = struct{}{}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() {
			p.mu.Lock()
			delete(p.live, h)
			p.mu.Unlock()
		}()
		defer close(h.done)
		defer kill()
		p.runUser(loopCtx, taskCtx, cls, env)
	}()
	return h
}

// runUser loops tasks until the graceful stop; a panic or a failed
// constructor restarts the user after a pause, so one bad user never spins.
func (p *pool) runUser(loopCtx, taskCtx context.Context, cls UserClass, env *Env) {
	for loopCtx.Err() == nil {
		crashed := p.runInstance(loopCtx, taskCtx, cls, env)
		if !crashed {
			return
		}
		if !sleepCtx(loopCtx, time.Second) {
			return
		}
	}
}

func (p *pool) runInstance(loopCtx, taskCtx context.Context, cls UserClass, env *Env) (crashed bool) {
	var u User
	defer func() {
		if r := recover(); r != nil {
			crashed = true
			p.report(fmt.Sprintf("panic in user %s: %v", cls.Name, r), string(debug.Stack()))
		}
	}()
	u, err := cls.New(env)
	if err != nil {
		p.report(fmt.Sprintf("cannot create user %s: %v", cls.Name, err), "UserClass.New")
		return true
	}
	if s, ok := u.(Starter); ok {
		if err := s.OnStart(taskCtx); err != nil && taskCtx.Err() == nil {
			p.report(fmt.Sprintf("%s.OnStart: %v", cls.Name, err), "OnStart")
			return true
		}
	}
	if s, ok := u.(Stopper); ok {
		defer s.OnStop(taskCtx)
	}
	tasks := u.Tasks()
	totalWeight := 0
	for _, t := range tasks {
		totalWeight += max(t.Weight, 0)
	}
	if totalWeight == 0 {
		p.report(fmt.Sprintf("user %s has no task with a positive weight", cls.Name), "Tasks")
		return true
	}
	wait := u.WaitTime()
	for loopCtx.Err() == nil {
		t := pickTask(tasks, totalWeight, env.Rand)
		start := time.Now()
		if err := t.Fn(taskCtx); err != nil && taskCtx.Err() == nil && !errors.Is(err, context.Canceled) {
			p.report(fmt.Sprintf("task %s.%s: %v", cls.Name, t.Name, err), "task "+t.Name)
		}
		if wait != nil {
			if !sleepCtx(loopCtx, wait(time.Since(start), env.Rand)) {
				return false
			}
		}
	}
	return false
}

func (p *pool) report(msg, tb string) {
	msg, tb = p.redact(msg), p.redact(tb)
	p.log.Error("user error", "error", msg)
	if p.onException != nil {
		p.onException(msg, tb)
	}
}

func pickTask(tasks []Task, total int, r *rand.Rand) Task {
	n := r.IntN(total)
	for _, t := range tasks {
		if w := max(t.Weight, 0); n < w {
			return t
		} else {
			n -= w
		}
	}
	return tasks[len(tasks)-1]
}

// sleepCtx sleeps d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

package locust

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Recorder records one request row. It is safe for use by the goroutine of the
// user it was handed to; each user gets its own (sharded) recorder.
type Recorder interface {
	// Record logs one request. responseTimeMs is float milliseconds; errText is
	// empty for a success, otherwise a short, stable failure message.
	Record(method, name string, responseTimeMs float64, contentLength int64, errText string)
}

// Task is one weighted unit of user behaviour. Fn gets a context that is
// cancelled when the user is killed (hard stop, or stop_timeout expired).
type Task struct {
	Name   string
	Weight int
	Fn     func(ctx context.Context) error
}

// WaitTime returns how long a user waits after a task that took taskTime.
type WaitTime func(taskTime time.Duration, r *rand.Rand) time.Duration

// User is one simulated user. Tasks is called once per user instance.
type User interface {
	Tasks() []Task
	WaitTime() WaitTime // nil means no wait
}

// Starter and Stopper are optional User hooks.
type Starter interface {
	OnStart(ctx context.Context) error
}
type Stopper interface{ OnStop(ctx context.Context) }

// UserClass maps a Locust class name (as declared in the master's locustfile)
// to a Go user factory. Weight and FixedCount are used only in standalone mode;
// with a master, the master resolves them.
type UserClass struct {
	Name       string
	Weight     int
	FixedCount int
	New        func(env *Env) (User, error)
}

// Env is what a user instance knows about its runtime.
type Env struct {
	UserID      int    // unique within this worker process
	Class       string // Locust class name
	Host        string // target base URL from the spawn message (or override)
	Options     Options
	WorkerIndex int // index from the master's ack; 0 in standalone mode
	Recorder    Recorder
	Logger      *slog.Logger
	Rand        *rand.Rand
	// Stopping is closed when the user is asked to stop gracefully: finish the
	// request in flight, start nothing new.
	Stopping <-chan struct{}
	// SendMessage sends a custom message to the master (no-op standalone).
	SendMessage func(msgType string, data any) error
}

// Between waits a uniformly random time in [min, max], like Locust's between().
func Between(min, max time.Duration) WaitTime {
	if max < min {
		min, max = max, min
	}
	return func(_ time.Duration, r *rand.Rand) time.Duration {
		if max == min {
			return min
		}
		return min + time.Duration(r.Int64N(int64(max-min)+1))
	}
}

// Constant always waits d, like Locust's constant().
func Constant(d time.Duration) WaitTime {
	return func(time.Duration, *rand.Rand) time.Duration { return d }
}

// ConstantPacing makes each task+wait cycle last d, like constant_pacing().
func ConstantPacing(d time.Duration) WaitTime {
	return func(taskTime time.Duration, _ *rand.Rand) time.Duration {
		return max(0, d-taskTime)
	}
}

// ConstantThroughput runs at most perSecond tasks per second per user, like
// constant_throughput().
func ConstantThroughput(perSecond float64) WaitTime {
	if perSecond <= 0 {
		return Constant(0)
	}
	return ConstantPacing(time.Duration(float64(time.Second) / perSecond))
}

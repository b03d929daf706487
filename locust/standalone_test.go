package locust

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type countUser struct{ env *Env }

func (u *countUser) Tasks() []Task {
	return []Task{{Name: "t", Weight: 1, Fn: func(ctx context.Context) error {
		u.env.Recorder.Record("GET", u.env.Class, 1, 10, "")
		return nil
	}}}
}
func (u *countUser) WaitTime() WaitTime { return Constant(10 * time.Millisecond) }

func TestDispatchPlanMatchesWeights(t *testing.T) {
	plan := dispatchPlan([]UserClass{{Name: "A", Weight: 3}, {Name: "B", Weight: 5}, {Name: "C", Weight: 2}, {Name: "F", FixedCount: 1}}, 11)
	require.Equal(t, map[string]int{"A": 3, "B": 5, "C": 2, "F": 1}, countsOf(plan))
	require.Equal(t, "F", plan[0], "fixed-count users come first")
}

func TestStandaloneRunsAndSummarizes(t *testing.T) {
	var out bytes.Buffer
	newU := func(env *Env) (User, error) { return &countUser{env: env}, nil }
	sum, err := RunStandalone(context.Background(), StandaloneConfig{
		Classes: []UserClass{{Name: "A", Weight: 1, New: newU}, {Name: "B", Weight: 1, New: newU}},
		Users:   4, SpawnRate: 100, RunTime: 400 * time.Millisecond, Interval: 100 * time.Millisecond,
		Out: &out, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	require.Greater(t, sum.Requests, int64(40))
	require.Len(t, sum.Entries, 2)
	require.Contains(t, out.String(), "[final] 0 users")
	require.Contains(t, out.String(), "Aggregated")
}

func TestStandaloneRejectsBadConfig(t *testing.T) {
	_, err := RunStandalone(context.Background(), StandaloneConfig{Classes: []UserClass{{Name: "A"}}, Users: 0, RunTime: time.Second})
	require.ErrorContains(t, err, "users must be at least 1")
}

type panicUser struct{ n *int }

func (u *panicUser) Tasks() []Task {
	return []Task{{Name: "p", Weight: 1, Fn: func(context.Context) error { *u.n++; panic("boom") }}}
}
func (u *panicUser) WaitTime() WaitTime { return nil }

func TestPanickingUserIsRecoveredAndRestarted(t *testing.T) {
	n := 0
	var reports []string
	p := newPool([]UserClass{{Name: "P", New: func(*Env) (User, error) { return &panicUser{&n}, nil }}},
		NewStats(1), slog.New(slog.DiscardHandler), func(s string) string { return s },
		func(msg, tb string) { reports = append(reports, msg) }, nil)
	p.apply(context.Background(), map[string]int{"P": 1}, 0)
	time.Sleep(1300 * time.Millisecond)
	p.stopAll(0)
	require.GreaterOrEqual(t, n, 2, "the user restarted after its panic")
	require.NotEmpty(t, reports)
	require.Contains(t, reports[0], "panic in user P: boom")
}

func TestGracefulStopLetsTaskFinish(t *testing.T) {
	finished := make(chan bool, 1)
	cls := UserClass{Name: "S", New: func(env *Env) (User, error) { return &slowUser{finished}, nil }}
	p := newPool([]UserClass{cls}, NewStats(1), slog.New(slog.DiscardHandler), nil, nil, nil)
	p.apply(context.Background(), map[string]int{"S": 1}, 0)
	time.Sleep(50 * time.Millisecond)
	p.stopAll(2 * time.Second) // task needs 200 ms: it finishes
	require.True(t, <-finished)
	p.apply(context.Background(), map[string]int{"S": 1}, 0)
	time.Sleep(50 * time.Millisecond)
	p.stopAll(0) // hard: the task's context is cancelled
	require.False(t, <-finished)
}

type slowUser struct{ finished chan bool }

func (u *slowUser) Tasks() []Task {
	return []Task{{Name: "slow", Weight: 1, Fn: func(ctx context.Context) error {
		select {
		case <-time.After(200 * time.Millisecond):
			u.finished <- true
		case <-ctx.Done():
			u.finished <- false
		}
		return nil
	}}}
}
func (u *slowUser) WaitTime() WaitTime { return Constant(time.Hour) }

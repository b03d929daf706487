package reliability

import (
	"fmt"
	"testing"
	"time"

	"github.com/zenoload/zenoload/fakezeno"
	"github.com/zenoload/zenoload/internal/locusttest"
)

// TestWorkerLoss: kill -9 one of three workers during a web-UI run. The
// master marks it missing, the other two keep producing requests, and with
// --enable-rebalancing its users are redistributed to them.
func TestWorkerLoss(t *testing.T) {
	integration(t)
	t.Parallel()
	for _, m := range masters(t, false) {
		t.Run(m.Version, func(t *testing.T) {
			r := newRun(t, 90*time.Second)
			fk := fastFake(t, 0.05, nil)
			port := locusttest.FreePort(t)
			mp, ui := r.webMaster(m, port, fk.URL, "--enable-rebalancing")
			var ws []*locusttest.Proc
			for i := 0; i < 3; i++ {
				ws = append(ws, r.worker(port, nil))
			}
			if !ui.WaitReady(t, 3, 25*time.Second) {
				t.Fatalf("workers never ready:\n%s", mp.Output())
			}
			ui.Swarm(t, 6, 6)
			if !locusttest.WaitFor(20*time.Second, func() bool {
				s, err := ui.Stats()
				return err == nil && s.Count("running") == 3 && s.Users() == 6 && s.Requests() > 5
			}) {
				s, _ := ui.Stats()
				t.Fatalf("test never ran on 3 workers: %+v\n%s", s, tail(mp.Output(), 20))
			}
			victim := ws[1]
			_ = victim.Cmd.Process.Kill()
			killed := time.Now()
			var missingAt time.Time
			var last locusttest.WebStats
			ok := locusttest.WaitFor(20*time.Second, func() bool {
				s, err := ui.Stats()
				if err != nil {
					return false
				}
				last = s
				if missingAt.IsZero() && s.Count("missing") == 1 {
					missingAt = time.Now()
				}
				return s.Count("missing") == 1 && s.Count("running") == 2 && s.Users() == 6
			})
			if !ok {
				t.Fatalf("after kill -9: want 1 missing and 2 running workers with all 6 users, got %+v\n%s",
					last, tail(mp.Output(), 20))
			}
			for _, w := range last.Workers {
				if w.State == "running" && w.UserCount != 3 {
					t.Errorf("surviving worker %s runs %d users, want 3 after rebalancing", w.ID, w.UserCount)
				}
			}
			// The survivors keep producing requests.
			g0, s0 := fk.srv.Stats().ChatRequestsTotal, last.Requests()
			time.Sleep(5 * time.Second)
			s1, _ := ui.Stats()
			g1 := fk.srv.Stats().ChatRequestsTotal
			if g1-g0 < 5 || s1.Requests()-s0 < 5 {
				t.Errorf("survivors produced too little in 5 s: fake +%d, master +%d", g1-g0, s1.Requests()-s0)
			}
			t.Logf("Locust %s: worker marked missing %.1f s after kill -9; users rebalanced 3+3; +%d requests in 5 s (fake +%d)",
				m.Version, missingAt.Sub(killed).Seconds(), s1.Requests()-s0, g1-g0)
			ui.Stop(t)
			for i, w := range ws {
				if i == 1 {
					continue
				}
				if !alive(w) {
					t.Errorf("surviving worker %d exited:\n%s", i, tail(w.Output(), 20))
				}
			}
		})
	}
}

// TestWebUICycles: five start/stop cycles with changing user counts. After
// every stop both workers are ready again, the users matched the request
// while running, and the master counted exactly the requests the fake
// answered (cancelled in-flight streams are not results).
func TestWebUICycles(t *testing.T) {
	integration(t)
	t.Parallel()
	for _, m := range masters(t, false) {
		t.Run(m.Version, func(t *testing.T) {
			t.Parallel()
			r := newRun(t, 120*time.Second)
			fk := fastFake(t, 0.03, func(c *fakezeno.Config) { c.Seed = 7 })
			port := locusttest.FreePort(t)
			mp, ui := r.webMaster(m, port, fk.URL)
			w0, w1 := r.worker(port, nil), r.worker(port, nil)
			if !ui.WaitReady(t, 2, 25*time.Second) {
				t.Fatalf("workers never ready:\n%s", mp.Output())
			}
			prev := fk.srv.Stats()
			var summary []string
			for cycle, users := range []int{2, 5, 3, 6, 1} {
				ui.Swarm(t, users, 100)
				var s locusttest.WebStats
				if !locusttest.WaitFor(15*time.Second, func() bool {
					s, _ = ui.Stats()
					// The master sends a spawn to both workers, even with 0 users.
					return s.Count("running") == 2 && s.Users() == users && s.Requests() >= 3
				}) {
					t.Fatalf("cycle %d: want %d users on 2 running workers, got %+v", cycle+1, users, s)
				}
				time.Sleep(1500 * time.Millisecond)
				ui.Stop(t)
				if !ui.WaitReady(t, 2, 15*time.Second) {
					s, _ = ui.Stats()
					t.Fatalf("cycle %d: workers not ready after stop: %+v\n%s", cycle+1, s, tail(mp.Output(), 20))
				}
				// The stats window open at the stop arrives with the next report.
				var g fakezeno.GroundTruth
				var want int64
				ok := locusttest.WaitFor(8*time.Second, func() bool {
					g = fk.srv.Stats()
					want = recorded(g) - recorded(prev)
					s, _ = ui.Stats()
					return s.Requests() == want
				})
				if !ok {
					t.Errorf("cycle %d (%d users): master counted %d requests, fake answered %d (total %d, aborted %d, client gone %d)",
						cycle+1, users, s.Requests(), want, g.ChatRequestsTotal-prev.ChatRequestsTotal,
						g.AbortedBeforeHeaders-prev.AbortedBeforeHeaders, g.StreamsClientGone-prev.StreamsClientGone)
				}
				if s.Failures() != 0 {
					t.Errorf("cycle %d: %d failures; cancelled streams must not count as failures", cycle+1, s.Failures())
				}
				summary = append(summary, fmt.Sprintf("%du:%d=%d", users, s.Requests(), want))
				prev = g
			}
			t.Logf("Locust %s: cycles (users:master=fake) %v", m.Version, summary)
			for _, w := range []*locusttest.Proc{w0, w1} {
				if !alive(w) {
					t.Errorf("worker exited:\n%s", tail(w.Output(), 20))
				}
			}
		})
	}
}

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
			if !ui.waitReady(t, 3, 25*time.Second) {
				t.Fatalf("workers never ready:\n%s", mp.Output())
			}
			ui.swarm(t, 6, 6)
			if !locusttest.WaitFor(20*time.Second, func() bool {
				s, err := ui.stats()
				return err == nil && s.count("running") == 3 && s.users() == 6 && s.requests() > 5
			}) {
				s, _ := ui.stats()
				t.Fatalf("test never ran on 3 workers: %+v\n%s", s, tail(mp.Output(), 20))
			}
			victim := ws[1]
			_ = victim.Cmd.Process.Kill()
			killed := time.Now()
			var missingAt time.Time
			var last webStats
			ok := locusttest.WaitFor(20*time.Second, func() bool {
				s, err := ui.stats()
				if err != nil {
					return false
				}
				last = s
				if missingAt.IsZero() && s.count("missing") == 1 {
					missingAt = time.Now()
				}
				return s.count("missing") == 1 && s.count("running") == 2 && s.users() == 6
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
			g0, s0 := fk.srv.Stats().ChatRequestsTotal, last.requests()
			time.Sleep(5 * time.Second)
			s1, _ := ui.stats()
			g1 := fk.srv.Stats().ChatRequestsTotal
			if g1-g0 < 5 || s1.requests()-s0 < 5 {
				t.Errorf("survivors produced too little in 5 s: fake +%d, master +%d", g1-g0, s1.requests()-s0)
			}
			t.Logf("Locust %s: worker marked missing %.1f s after kill -9; users rebalanced 3+3; +%d requests in 5 s (fake +%d)",
				m.Version, missingAt.Sub(killed).Seconds(), s1.requests()-s0, g1-g0)
			ui.stop(t)
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
			if !ui.waitReady(t, 2, 25*time.Second) {
				t.Fatalf("workers never ready:\n%s", mp.Output())
			}
			prev := fk.srv.Stats()
			var summary []string
			for cycle, users := range []int{2, 5, 3, 6, 1} {
				ui.swarm(t, users, 100)
				var s webStats
				if !locusttest.WaitFor(15*time.Second, func() bool {
					s, _ = ui.stats()
					// The master sends a spawn to both workers, even with 0 users.
					return s.count("running") == 2 && s.users() == users && s.requests() >= 3
				}) {
					t.Fatalf("cycle %d: want %d users on 2 running workers, got %+v", cycle+1, users, s)
				}
				time.Sleep(1500 * time.Millisecond)
				ui.stop(t)
				if !ui.waitReady(t, 2, 15*time.Second) {
					s, _ = ui.stats()
					t.Fatalf("cycle %d: workers not ready after stop: %+v\n%s", cycle+1, s, tail(mp.Output(), 20))
				}
				// The stats window open at the stop arrives with the next report.
				var g fakezeno.GroundTruth
				var want int64
				ok := locusttest.WaitFor(8*time.Second, func() bool {
					g = fk.srv.Stats()
					want = recorded(g) - recorded(prev)
					s, _ = ui.stats()
					return s.requests() == want
				})
				if !ok {
					t.Errorf("cycle %d (%d users): master counted %d requests, fake answered %d (total %d, aborted %d, client gone %d)",
						cycle+1, users, s.requests(), want, g.ChatRequestsTotal-prev.ChatRequestsTotal,
						g.AbortedBeforeHeaders-prev.AbortedBeforeHeaders, g.StreamsClientGone-prev.StreamsClientGone)
				}
				if s.failures() != 0 {
					t.Errorf("cycle %d: %d failures; cancelled streams must not count as failures", cycle+1, s.failures())
				}
				summary = append(summary, fmt.Sprintf("%du:%d=%d", users, s.requests(), want))
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

package reliability

import (
	"testing"
	"time"

	"github.com/zenoload/zenoload/fakezeno"
	"github.com/zenoload/zenoload/internal/locusttest"
)

// TestGracefulStop: a web-UI stop while streams are in flight.
//   - With --stop-timeout, every in-flight stream finishes and is recorded:
//     the fake saw no client disconnect, and the master's count equals the
//     fake's completed streams.
//   - Without it, in-flight streams are cancelled (the fake sees the client
//     go away) and they are NOT counted, neither as requests nor as failures.
func TestGracefulStop(t *testing.T) {
	integration(t)
	t.Parallel()
	for _, m := range masters(t, false) {
		for _, graceful := range []bool{true, false} {
			name := m.Version + "/hard"
			if graceful {
				name = m.Version + "/stop-timeout"
			}
			t.Run(name, func(t *testing.T) {
				r := newRun(t, 90*time.Second)
				// Every stream: headers after 100 ms, then 4 lines 700 ms apart (~2.9 s).
				fk := startFake(t, fakezeno.Config{TimeScale: 1, Seed: 3,
					Fixed: &fakezeno.Profile{HeaderDelay: 100 * time.Millisecond, Lines: 4, Gap: 700 * time.Millisecond}})
				port := locusttest.FreePort(t)
				var extra []string
				if graceful {
					extra = []string{"--stop-timeout", "10"}
				}
				mp, ui := r.webMaster(m, port, fk.URL, extra...)
				r.worker(port, nil)
				r.worker(port, nil)
				if !ui.WaitReady(t, 2, 25*time.Second) {
					t.Fatalf("workers never ready:\n%s", mp.Output())
				}
				ui.Swarm(t, 6, 100)
				if !locusttest.WaitFor(15*time.Second, func() bool { s, _ := ui.Stats(); return s.Users() == 6 && s.Requests() > 0 }) {
					t.Fatal("test did not start")
				}
				// Stop while (nearly) every user has a stream in flight.
				locusttest.WaitFor(5*time.Second, func() bool {
					g := fk.srv.Stats()
					return g.ChatRequestsTotal-g.StreamsCompleted-g.StreamsFatal-g.StreamsTruncated >= 4
				})
				g := fk.srv.Stats()
				inflight := g.ChatRequestsTotal - g.StreamsCompleted
				stopAt := time.Now()
				ui.Stop(t)
				if !ui.WaitReady(t, 2, 20*time.Second) {
					t.Fatalf("workers not ready after stop:\n%s", tail(mp.Output(), 20))
				}
				readyAfter := time.Since(stopAt)
				var s locusttest.WebStats
				ok := locusttest.WaitFor(8*time.Second, func() bool {
					g = fk.srv.Stats()
					s, _ = ui.Stats()
					return s.Requests() == recorded(g)
				})
				t.Logf("%s: %d in flight at stop; ready again after %.1f s; fake: %d requests, %d completed, %d client gone, %d aborted before headers; master: %d requests, %d failures",
					name, inflight, readyAfter.Seconds(), g.ChatRequestsTotal, g.StreamsCompleted, g.StreamsClientGone, g.AbortedBeforeHeaders, s.Requests(), s.Failures())
				if !ok {
					t.Errorf("master counted %d requests, fake answered %d", s.Requests(), recorded(g))
				}
				if s.Failures() != 0 {
					t.Errorf("%d failures recorded; a stop must not produce failures", s.Failures())
				}
				if graceful {
					if g.StreamsClientGone != 0 || g.AbortedBeforeHeaders != 0 {
						t.Errorf("with --stop-timeout, %d streams were cut and %d requests aborted; want all to finish",
							g.StreamsClientGone, g.AbortedBeforeHeaders)
					}
					if g.StreamsCompleted != g.ChatRequestsTotal || s.Requests() != g.StreamsCompleted {
						t.Errorf("completed %d of %d; master %d", g.StreamsCompleted, g.ChatRequestsTotal, s.Requests())
					}
				} else {
					if g.StreamsClientGone+g.AbortedBeforeHeaders == 0 {
						t.Errorf("hard stop cut no stream; the test did not exercise cancellation")
					}
					if readyAfter > 5*time.Second {
						t.Errorf("hard stop took %.1f s", readyAfter.Seconds())
					}
				}
			})
		}
	}
}

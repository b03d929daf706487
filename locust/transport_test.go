package locust

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/zeromq/goczmq"

	"github.com/zenoload/zenoload/internal/locusttest"
)

// TestCloseWhileLingering: a worker closed before its master is up still
// holds queued messages for closeLinger. If the master comes up inside that
// window, the lingering socket connects and libzmq reports it on the monitor;
// with the monitor's reader already gone, that report used to block libzmq's
// one I/O thread, and with it every ZeroMQ socket in the process. Afterwards
// a fresh ROUTER and DEALER must still talk.
func TestCloseWhileLingering(t *testing.T) {
	runtime.LockOSThread() // the test's sockets stay on this thread
	defer runtime.UnlockOSThread()

	port := locusttest.FreePort(t)
	ep := "tcp://127.0.0.1:" + strconv.Itoa(port)
	c, err := dial(context.Background(), ep, "lingering-worker")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send([]byte("queued while no master listens")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * pollInterval) // the loop hands it to ZeroMQ
	c.close()

	// The master arrives inside the linger.
	late, err := goczmq.NewRouter(ep)
	if err != nil {
		t.Fatal(err)
	}
	late.SetOption(goczmq.SockSetLinger(0))
	late.SetOption(goczmq.SockSetRcvtimeo(closeLinger * 2))
	if frames, err := late.RecvMessage(); err == nil && len(frames) == 2 {
		t.Logf("the lingering socket delivered %q", frames[1])
	}
	late.Destroy()
	time.Sleep(closeLinger * time.Millisecond) // the linger is over

	p2 := locusttest.FreePort(t)
	ep2 := "tcp://127.0.0.1:" + strconv.Itoa(p2)
	router, err := goczmq.NewRouter(ep2)
	if err != nil {
		t.Fatal(err)
	}
	defer router.Destroy()
	router.SetOption(goczmq.SockSetLinger(0))
	router.SetOption(goczmq.SockSetRcvtimeo(3000))
	dealer, err := goczmq.NewDealer(ep2)
	if err != nil {
		t.Fatal(err)
	}
	defer dealer.Destroy()
	dealer.SetOption(goczmq.SockSetLinger(0))
	if err := dealer.SendFrame([]byte("ping"), goczmq.FlagNone); err != nil {
		t.Fatal(err)
	}
	frames, err := router.RecvMessage()
	if err != nil || len(frames) != 2 || string(frames[1]) != "ping" {
		t.Fatalf("ZeroMQ in this process stopped delivering after a close inside the linger: %q, %v", frames, err)
	}
}

package locust

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/zeromq/goczmq"
)

// conn is one DEALER connection to the master. A ZeroMQ socket is not
// thread-safe, so a single goroutine, locked to its OS thread, owns it; the
// rest of the runtime talks to it through channels.
type conn struct {
	out    chan []byte
	in     chan []byte
	events chan connEvent
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

const (
	// pollInterval bounds how long a queued send waits (incoming messages
	// wake the poll at once). Each blocking zmq_poll is a cgo call whose P
	// sysmon must retake for the users' goroutines; at 5 ms that kept sysmon
	// waking every 20 µs on the load generator's one core.
	pollInterval = 50 * time.Millisecond
	sendQueue    = 1024
	closeLinger  = 500 // ms: enough to flush the final stats and quit
)

var errConnClosed = errors.New("connection to master closed")

// dial creates the DEALER socket with identity before connect (the master
// routes replies by node_id, which must equal the identity). ZeroMQ connects
// asynchronously, so dial succeeds even when no master is listening yet.
func dial(ctx context.Context, endpoint, identity string) (*conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	c := &conn{
		out:    make(chan []byte, sendQueue),
		in:     make(chan []byte, 64),
		events: make(chan connEvent, 16),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	ready := make(chan error, 1)
	go c.loop(ctx, endpoint, identity, ready)
	if err := <-ready; err != nil {
		cancel()
		return nil, err
	}
	return c, nil
}

func (c *conn) loop(ctx context.Context, endpoint, identity string, ready chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(c.done)

	sock := goczmq.NewSock(goczmq.Dealer,
		goczmq.SockSetIdentity(identity),
		goczmq.SockSetLinger(closeLinger),
		goczmq.SockSetTcpKeepalive(1),
		goczmq.SockSetTcpKeepaliveIdle(30),
		goczmq.SockSetReconnectIvl(200),
		goczmq.SockSetReconnectIvlMax(2000),
	)
	if err := sock.Connect(endpoint); err != nil {
		sock.Destroy()
		ready <- fmt.Errorf("connect %s: %w", endpoint, err)
		return
	}
	mon, err := startMonitor(sock)
	if err != nil {
		sock.Destroy()
		ready <- fmt.Errorf("monitor: %w", err)
		return
	}
	poller, err := goczmq.NewPoller(sock, mon)
	if err != nil {
		stopMonitor(sock)
		sock.Destroy()
		mon.Destroy()
		ready <- fmt.Errorf("poller: %w", err)
		return
	}
	ready <- nil
	defer func() {
		poller.Destroy()
		stopMonitor(sock) // before Destroy: see stopMonitor
		sock.Destroy()    // linger flushes what is queued
		mon.Destroy()
	}()

	for {
		// Drain sends first so replies are never starved by incoming traffic.
		for drained := false; !drained; {
			select {
			case b := <-c.out:
				_ = sock.SendFrame(b, goczmq.FlagNone)
			default:
				drained = true
			}
		}
		if ctx.Err() != nil {
			return
		}
		s, _ := poller.Wait(int(pollInterval / time.Millisecond))
		if s == nil {
			continue
		}
		if s == mon {
			if frames, err := mon.RecvMessage(); err == nil {
				if ev, ok := readEvent(frames); ok {
					select {
					case c.events <- ev:
					default: // the control loop is behind; the next event says enough
					}
				}
			}
			continue
		}
		// goczmq's Pollin() compares the whole event mask with ==, which is
		// false while the socket is also writable; test the bit instead.
		for goczmq.Events(sock)&goczmq.Pollin != 0 {
			frames, err := sock.RecvMessage()
			if err != nil || len(frames) == 0 {
				break
			}
			// A DEALER gets exactly one frame per master message; anything
			// else is not ours to interpret.
			select {
			case c.in <- frames[len(frames)-1]:
			case <-ctx.Done():
				return
			}
		}
	}
}

// send queues b; it fails only when the connection is closed or the queue is
// full (the master is not draining), never blocks.
func (c *conn) send(b []byte) error {
	select {
	case <-c.done:
		return errConnClosed
	default:
	}
	select {
	case c.out <- b:
		return nil
	default:
		return errors.New("send queue to master is full")
	}
}

// close flushes queued messages (up to the linger) and releases the socket.
func (c *conn) close() {
	c.once.Do(func() {
		c.cancel()
		<-c.done
	})
}

// Shutdown flushes every message still queued in ZeroMQ (up to the socket
// linger) and releases the library. Call it once, after Run returns and
// before the process exits: os.Exit skips the library's own exit hook, and
// without this the final stats and quit can be dropped.
func Shutdown() { goczmq.Shutdown() }

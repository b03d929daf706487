package sockio

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReadWriteAndArrival: bytes written at t0 and read 200 ms later carry
// an arrival time near t0; EOF and deadlines behave as net.Conn's.
func TestReadWriteAndArrival(t *testing.T) {
	c, peer := pair(t)

	_, err := c.Write([]byte("ping"))
	require.NoError(t, err)
	expectRead(t, peer, "ping")
	buf := make([]byte, 4)

	if c.S.stamp {
		// Linux turns receive stamping on from a deferred work item after
		// the first socket asks for it (net_enable_timestamp), so the first
		// packets of a fresh process may carry no stamp: wait for one.
		warm := time.Now().Add(2 * time.Second)
		for {
			_, err = peer.Write([]byte("warm"))
			require.NoError(t, err)
			_, err = io.ReadFull(c, buf)
			require.NoError(t, err)
			if !c.S.LastArrival().IsZero() {
				break
			}
			require.True(t, time.Now().Before(warm), "no receive timestamp within 2 s")
			time.Sleep(10 * time.Millisecond)
		}
	}

	sent := time.Now()
	_, err = peer.Write([]byte("pong"))
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)
	n, err := c.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "pong", string(buf[:n]))
	require.GreaterOrEqual(t, c.S.LastRead().Sub(sent), 200*time.Millisecond, "LastRead is the read, not the arrival")
	if c.S.stamp {
		d := c.S.LastArrival().Sub(sent)
		require.True(t, d >= -time.Millisecond && d < 100*time.Millisecond, "arrival %v after the write", d)
	} else {
		t.Log("kernel refused SO_TIMESTAMPING; LastArrival is zero")
		require.True(t, c.S.LastArrival().IsZero())
	}

	require.NoError(t, c.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err = c.Read(buf)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())
	require.NoError(t, c.SetReadDeadline(time.Time{}))

	peer.Close()
	_, err = c.Read(buf)
	require.ErrorIs(t, err, io.EOF)
}

// expectRead reads len(want) bytes from r and checks them.
func expectRead(t *testing.T, r io.Reader, want string) {
	t.Helper()
	buf := make([]byte, len(want))
	_, err := io.ReadFull(r, buf)
	require.NoError(t, err)
	require.Equal(t, want, string(buf))
}

// pair returns a raw-I/O client socket and its accepted peer on loopback.
func pair(t *testing.T) (*Conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	peerc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); peerc <- c }()
	tcp, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	c, err := Wrap(tcp.(*net.TCPConn))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	peer := (<-peerc).(*net.TCPConn)
	t.Cleanup(func() { peer.Close() })
	return c, peer
}

// TestWriteAndWaitNoLostWakeup: a reply that comes at once, before the
// wait could begin, still ends the wait (the write runs inside it). A lost
// wake-up would hang until the deadline.
func TestWriteAndWaitNoLostWakeup(t *testing.T) {
	c, peer := pair(t)
	go func() { // echo, as fast as the peer can
		buf := make([]byte, 64)
		for {
			n, err := peer.Read(buf)
			if err != nil {
				return
			}
			if _, err := peer.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	for i := range 300 {
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		req := []byte("ping " + string(rune('a'+i%26)))
		n, err := c.S.WriteAndWait(req)
		require.NoError(t, err, "round %d", i)
		require.Equal(t, len(req), n)
		expectRead(t, c, string(req))
	}
}

// TestWriteAndWaitDeadline: with no reply, the wait ends at the deadline,
// after the whole request was written (n == len), so it is the wait's error.
func TestWriteAndWaitDeadline(t *testing.T) {
	c, peer := pair(t)
	require.NoError(t, c.SetDeadline(time.Now().Add(100*time.Millisecond)))
	start := time.Now()
	n, err := c.S.WriteAndWait([]byte("hello"))
	require.Equal(t, 5, n)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())
	require.GreaterOrEqual(t, time.Since(start), 90*time.Millisecond)
	expectRead(t, peer, "hello")
}

// TestWriteAndWaitLargeWrite: a request larger than the socket buffers is
// finished by a plain write once the peer reads; the reply is then read.
func TestWriteAndWaitLargeWrite(t *testing.T) {
	c, peer := pair(t)
	big := make([]byte, 16<<20)
	for i := range big {
		big[i] = byte(i)
	}
	go func() {
		time.Sleep(100 * time.Millisecond) // let the send buffer fill
		got := make([]byte, len(big))
		if _, err := io.ReadFull(peer, got); err != nil || !bytes.Equal(got, big) {
			_, _ = peer.Write([]byte("no"))
			return
		}
		_, _ = peer.Write([]byte("ok"))
	}()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	n, err := c.S.WriteAndWait(big)
	require.NoError(t, err)
	require.Equal(t, len(big), n)
	expectRead(t, c, "ok")
}

// TestWriteAndWaitWriteError: a peer that reset the connection makes it a
// write error (n < len).
func TestWriteAndWaitWriteError(t *testing.T) {
	c, peer := pair(t)
	require.NoError(t, peer.SetLinger(0))
	require.NoError(t, peer.Close()) // RST
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, c.SetDeadline(time.Now().Add(2*time.Second)))
	n, err := c.S.WriteAndWait([]byte("hello"))
	require.Error(t, err)
	require.Less(t, n, 5)
	require.Contains(t, err.Error(), "write")
}

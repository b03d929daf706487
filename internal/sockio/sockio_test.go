package sockio

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReadWriteAndArrival: bytes written at t0 and read 200 ms later carry
// an arrival time near t0; EOF and deadlines behave as net.Conn's.
func TestReadWriteAndArrival(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	peerc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); peerc <- c }()
	tcp, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	c, err := Wrap(tcp.(*net.TCPConn))
	require.NoError(t, err)
	defer c.Close()
	peer := <-peerc
	defer peer.Close()

	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(peer, buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf))

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

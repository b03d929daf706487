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

// Package sockio does a TCP socket's reads and writes as raw system calls
// and remembers the kernel's receive timestamp of the data it read last.
//
// Why raw: the socket is non-blocking (Go's poller owns it), so the calls
// cannot block, while going through net.Conn every one of them also passes
// the scheduler's entersyscall/exitsyscall, which wakes the sysmon thread
// whenever the process comes back from idle. On a load generator pinned to
// one core that was about a quarter of all CPU samples. Waiting, deadlines
// and cancellation still go through the poller (syscall.RawConn), exactly as
// net.Conn's do.
//
// Why timestamps: a reader that runs late (a busy or descheduled core) would
// otherwise add its own delay to every latency it measures. Reads use
// recvmsg with SO_TIMESTAMPING to learn when the last packet they return
// reached this host. Linux turns stamping on a moment after the first
// socket asks for it (a deferred work item), so a fresh process's first
// packets may carry none; their arrival is then unknown, and callers use
// the time of the read.
package sockio

import (
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// Socket is one TCP socket's raw I/O: at most one Read and one Write at a
// time (they may overlap each other).
type Socket struct {
	rc     syscall.RawConn
	stamp  bool      // SO_TIMESTAMPING accepted by the kernel
	rx     time.Time // arrival of the last read's data (monotonic), zero if unknown
	readAt time.Time // when the last Read returned data
	oob    [128]byte

	// Per-call state lives here, and the RawConn callbacks are method values
	// made once, so a read or write allocates nothing.
	// A read and a write may run at the same time (net/http's background
	// read beside a handler's writes), so each has its own.
	msg     syscall.Msghdr
	iov     syscall.Iovec
	rn      uintptr
	rerrno  syscall.Errno
	wbuf    []byte
	wdone   int
	werrno  syscall.Errno
	readFn  func(uintptr) bool
	writeFn func(uintptr) bool
	sendFn  func(uintptr) bool
	sent    bool // sendFn's write is complete: what is left is the wait
}

// SO_TIMESTAMPING flags (linux/net_tstamp.h): generate software receive
// timestamps and report them.
const (
	sofTimestampingRxSoftware = 1 << 3
	sofTimestampingSoftware   = 1 << 4
)

// New wraps a TCP socket; receive timestamps are used when the kernel takes
// the option.
func New(rc syscall.RawConn) *Socket {
	s := &Socket{rc: rc}
	s.readFn, s.writeFn, s.sendFn = s.readOnce, s.writeSome, s.sendThenWait
	_ = rc.Control(func(fd uintptr) {
		s.stamp = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPING,
			sofTimestampingRxSoftware|sofTimestampingSoftware) == nil
	})
	return s
}

// LastArrival is when the data returned by the last Read reached this host
// (the kernel's receive timestamp of its last packet), or zero if unknown.
func (s *Socket) LastArrival() time.Time { return s.rx }

// LastRead is when the last Read returned data.
func (s *Socket) LastRead() time.Time { return s.readAt }

// maxStampAge bounds how old a receive timestamp may be before it is
// distrusted (a wall-clock step between the kernel stamp and now).
const maxStampAge = 10 * time.Minute

func (s *Socket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.iov.Base = &p[0]
	s.iov.SetLen(len(p))
	s.msg = syscall.Msghdr{Iov: &s.iov, Iovlen: 1}
	if s.stamp {
		s.msg.Control = &s.oob[0]
		s.msg.SetControllen(len(s.oob))
	}
	err := s.rc.Read(s.readFn)
	n, errno := s.rn, s.rerrno
	s.iov.Base, s.msg.Iov, s.msg.Control = nil, nil, nil // do not pin p
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	now := time.Now()
	s.rx, s.readAt = time.Time{}, now
	if s.stamp && s.msg.Controllen > 0 {
		if real, ok := rxStamp(s.oob[:min(int(s.msg.Controllen), len(s.oob))]); ok {
			if age := now.Sub(real); age >= 0 && age < maxStampAge {
				s.rx = now.Add(-age) // keeps now's monotonic reading
			}
		}
	}
	return int(n), nil
}

func (s *Socket) readOnce(fd uintptr) bool {
	for {
		s.rn, _, s.rerrno = syscall.RawSyscall(syscall.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&s.msg)), 0)
		if s.rerrno != syscall.EINTR {
			return s.rerrno != syscall.EAGAIN
		}
	}
}

// rxStamp finds the software timestamp in an SCM_TIMESTAMPING message.
func rxStamp(b []byte) (time.Time, bool) {
	for len(b) >= syscall.SizeofCmsghdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < syscall.SizeofCmsghdr || l > len(b) {
			return time.Time{}, false
		}
		const tsBytes = 3 * int(unsafe.Sizeof(syscall.Timespec{}))
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SO_TIMESTAMPING && l >= syscall.SizeofCmsghdr+tsBytes {
			ts := (*[3]syscall.Timespec)(unsafe.Pointer(&b[syscall.SizeofCmsghdr]))
			if ts[0].Sec != 0 || ts[0].Nsec != 0 {
				return time.Unix(ts[0].Unix()), true
			}
		}
		b = b[min(cmsgAlign(l), len(b)):]
	}
	return time.Time{}, false
}

func cmsgAlign(n int) int {
	const a = int(unsafe.Sizeof(uintptr(0)))
	return (n + a - 1) &^ (a - 1)
}

func (s *Socket) Write(p []byte) (int, error) {
	s.wbuf, s.wdone, s.werrno = p, 0, 0
	return s.writeResult(s.rc.Write(s.writeFn))
}

// writeResult ends a Write or WriteAndWait: the bytes written, and the
// write's own error, else err from the poller (a deadline or a closed
// socket). The callbacks set an errno only when they end the wait, so at
// most one of the two is set.
func (s *Socket) writeResult(err error) (int, error) {
	done, errno := s.wdone, s.werrno
	s.wbuf = nil
	if errno != 0 {
		return done, os.NewSyscallError("write", errno)
	}
	return done, err
}

func (s *Socket) writeSome(fd uintptr) bool {
	for s.wdone < len(s.wbuf) {
		rest := s.wbuf[s.wdone:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch e {
		case 0:
			s.wdone += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait until writable
		default:
			s.werrno = e
			return true
		}
	}
	return true
}

// WriteAndWait writes a request p and then waits until the socket is
// readable, without the read attempt that would fail (EAGAIN) because the
// reply cannot have come yet: at zero think time that attempt, and the park
// after it, were one read system call in two. It counts as both a Read and
// a Write. An error with n < len(p) is the write's; with n == len(p) it is
// the wait's (a deadline or a closed socket).
//
// The write runs inside the poller's read wait, after the wait has cleared
// the socket's old readiness, so a reply that comes between the write and
// the wait still wakes it: with edge-triggered polling, waiting after a
// plain Write could miss it.
func (s *Socket) WriteAndWait(p []byte) (int, error) {
	s.wbuf, s.wdone, s.werrno, s.sent = p, 0, 0, false
	err := s.rc.Read(s.sendFn)
	if err == nil && s.werrno == 0 && !s.sent {
		// The send buffer was full: finish the write the usual way, and
		// let the next Read try its luck.
		err = s.rc.Write(s.writeFn)
	}
	return s.writeResult(err)
}

// sendThenWait is the RawConn read callback of WriteAndWait: the first call
// writes and asks to wait (false); the next, once the socket is readable,
// ends the wait.
func (s *Socket) sendThenWait(fd uintptr) bool {
	if s.sent {
		return true
	}
	if !s.writeSome(fd) || s.werrno != 0 {
		return true // write blocked (finished by the caller) or failed
	}
	s.sent = true
	return false
}

// Conn is a TCP connection whose reads and writes are its Socket's;
// deadlines, addresses and Close stay the TCPConn's.
type Conn struct {
	*net.TCPConn
	S *Socket
}

// Wrap returns tcp with raw I/O.
func Wrap(tcp *net.TCPConn) (*Conn, error) {
	rc, err := tcp.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &Conn{tcp, New(rc)}, nil
}

func (c *Conn) Read(p []byte) (int, error)  { return c.S.Read(p) }
func (c *Conn) Write(p []byte) (int, error) { return c.S.Write(p) }

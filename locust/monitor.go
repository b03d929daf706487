package locust

/*
#cgo pkg-config: libczmq libzmq
#include <czmq.h>

static int zl_monitor(void *zsock, const char *endpoint) {
	return zmq_socket_monitor(zsock_resolve(zsock), endpoint,
		ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED);
}

static int zl_monitor_stop(void *zsock) {
	return zmq_socket_monitor(zsock_resolve(zsock), NULL, 0);
}
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/zeromq/goczmq"
)

// connEvent is a TCP-level change of the connection to the master.
type connEvent int

const (
	evConnected connEvent = iota + 1
	evDisconnected
)

// monitorSeq makes inproc endpoint names unique within the process.
var monitorSeq atomic.Uint64

// zsock is sock's zsock_t pointer (nil before it is initialised). goczmq
// does not wrap zmq_socket_monitor, so the monitor calls read it: it is the
// first field of the goczmq.Sock version pinned in go.mod.
func zsock(sock *goczmq.Sock) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(sock)) }

// startMonitor asks libzmq for the DEALER's connect and disconnect events.
// The events are what lets a worker notice a restarted master at once: a
// new master never answers a worker it does not know.
func startMonitor(sock *goczmq.Sock) (*goczmq.Sock, error) {
	raw := zsock(sock)
	if raw == nil {
		return nil, errors.New("socket not initialised")
	}
	ep := fmt.Sprintf("inproc://zenoload-monitor-%d", monitorSeq.Add(1))
	cep := C.CString(ep)
	defer C.free(unsafe.Pointer(cep))
	if rc := C.zl_monitor(raw, cep); rc != 0 {
		return nil, fmt.Errorf("zmq_socket_monitor failed (%d)", int(rc))
	}
	pair := goczmq.NewSock(goczmq.Pair)
	if err := pair.Connect(ep); err != nil {
		pair.Destroy()
		return nil, fmt.Errorf("connect monitor: %w", err)
	}
	return pair, nil
}

// stopMonitor detaches the monitor from sock. It must come before
// sock.Destroy: a destroyed socket lingers with the monitor still attached,
// and an event it reports then (say, connecting to a master that has just
// come up) is a blocking send to a monitor nobody reads any more, made on
// libzmq's one I/O thread, which stalls every ZeroMQ socket in the process.
func stopMonitor(sock *goczmq.Sock) {
	if raw := zsock(sock); raw != nil {
		C.zl_monitor_stop(raw)
	}
}

// readEvent decodes one monitor message: a 6-byte frame (uint16 event,
// uint32 value, native byte order) followed by the endpoint.
func readEvent(frames [][]byte) (connEvent, bool) {
	if len(frames) == 0 || len(frames[0]) < 2 {
		return 0, false
	}
	switch binary.NativeEndian.Uint16(frames[0][:2]) {
	case C.ZMQ_EVENT_CONNECTED:
		return evConnected, true
	case C.ZMQ_EVENT_DISCONNECTED:
		return evDisconnected, true
	}
	return 0, false
}

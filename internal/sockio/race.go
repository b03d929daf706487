//go:build race

package sockio

// The race detector learns about network happens-before edges from
// internal/poll's annotations; raw system calls bypass them, so race builds
// use net.Conn's own reads and writes.
const Enabled = false

//go:build race

package h1

// The race detector learns about network happens-before edges from
// internal/poll's annotations; raw system calls bypass them, so race builds
// use net.Conn's own reads and writes.
const rawIO = false

//go:build !race

package sockio

// Enabled reports whether raw I/O is used (not under the race detector).
const Enabled = true

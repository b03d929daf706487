//go:build !race

package h1

const rawIO = true

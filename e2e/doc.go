// Package e2e holds end-to-end tests that run the zeno-worker binary with
// real Locust masters and the fake Zeno server: metrics ground truth (and the
// browser test), and reliability (master loss, faults, secrets).
package e2e

package locust

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuSampler reports this process's CPU use as a percentage of the whole
// machine (0–100), as the master expects since a Go worker uses all cores.
type cpuSampler struct {
	lastCPU  time.Duration
	lastWall time.Time
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (c *cpuSampler) sample() float64 {
	now, cpu := time.Now(), processCPU()
	defer func() { c.lastCPU, c.lastWall = cpu, now }()
	if c.lastWall.IsZero() {
		return 0
	}
	wall := now.Sub(c.lastWall)
	if wall <= 0 {
		return 0
	}
	pct := float64(cpu-c.lastCPU) / float64(wall) / float64(runtime.NumCPU()) * 100
	return min(max(pct, 0), 100)
}

// rssBytes reads the resident set size; it falls back to the Go runtime's
// view of memory obtained from the OS where /proc is not available.
func rssBytes() int64 {
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if pages, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return pages * int64(os.Getpagesize())
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.Sys)
}

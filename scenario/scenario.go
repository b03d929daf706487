// Package scenario runs the predefined load scenarios: a stock Locust master
// started headless (or with its web UI), N local Go workers, optionally the
// embedded fake Zeno, and the release criteria checked from Locust's CSV.
package scenario

import (
	"fmt"
	"strings"
	"time"
)

// Scenario is one row of the scenario table.
type Scenario struct {
	Name        string
	Users       int
	SpawnRate   float64
	Duration    time.Duration
	Description string
}

// Table returns the predefined scenarios, in the order `all` runs them.
func Table() []Scenario {
	return []Scenario{
		{"smoke", 1, 1, 2 * time.Minute, "basic functionality with 1 user"},
		{"load", 10, 2, 5 * time.Minute, "normal usage with 10 concurrent users"},
		{"stress", 50, 5, 10 * time.Minute, "high load with 50 concurrent users"},
		{"spike", 100, 50, 3 * time.Minute, "sudden spike: 100 users within 2 s"},
	}
}

// Lookup finds a scenario by name; "all" is handled by the caller.
func Lookup(name string) (Scenario, error) {
	var names []string
	for _, s := range Table() {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Scenario{}, fmt.Errorf("unknown scenario %q: choose one of %s or all", name, strings.Join(names, ", "))
}

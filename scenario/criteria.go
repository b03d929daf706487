package scenario

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Check is one release criterion's verdict.
type Check struct {
	Name   string
	Pass   bool
	Detail string
}

// Thresholds are the release criteria.
type Thresholds struct {
	AnalysisP95Ms float64 // analysis_query p95 must be below this
	MaxFailurePct float64 // per request type, strictly below
}

// DefaultThresholds: analysis p95 < 30 s, failures < 1 %.
func DefaultThresholds() Thresholds { return Thresholds{AnalysisP95Ms: 30000, MaxFailurePct: 1} }

// Evaluate reads Locust's PREFIX_stats.csv and PREFIX_failures.csv.
func Evaluate(prefix string, th Thresholds) ([]Check, error) {
	stats, err := readCSV(prefix + "_stats.csv")
	if err != nil {
		return nil, err
	}
	failures, err := readCSV(prefix + "_failures.csv")
	if err != nil {
		return nil, err
	}
	var checks []Check
	var analysis map[string]string
	var rows []map[string]string
	for _, r := range stats {
		if r["Name"] == "Aggregated" {
			continue
		}
		rows = append(rows, r)
		if r["Name"] == "analysis_query" {
			analysis = r
		}
	}
	if analysis == nil || analysis["Request Count"] == "0" {
		checks = append(checks, Check{"analysis p95 < 30s", false, "no analysis_query requests were recorded"})
	} else {
		p95, err := strconv.ParseFloat(analysis["95%"], 64)
		if err != nil {
			return nil, fmt.Errorf("analysis_query 95%% column %q: %w", analysis["95%"], err)
		}
		checks = append(checks, Check{fmt.Sprintf("analysis p95 < %gs", th.AnalysisP95Ms/1000), p95 < th.AnalysisP95Ms,
			fmt.Sprintf("p95 %.0f ms over %s requests", p95, analysis["Request Count"])})
	}
	if len(rows) == 0 {
		checks = append(checks, Check{"failures < 1% per request type", false, "no requests were recorded"})
	}
	for _, r := range rows {
		n, _ := strconv.ParseFloat(r["Request Count"], 64)
		f, _ := strconv.ParseFloat(r["Failure Count"], 64)
		pct := 0.0
		if n > 0 {
			pct = 100 * f / n
		}
		checks = append(checks, Check{fmt.Sprintf("failures < %g%%: %s", th.MaxFailurePct, r["Name"]), pct < th.MaxFailurePct,
			fmt.Sprintf("%.0f of %.0f failed (%.2f%%)", f, n, pct)})
	}
	var n429 int64
	for _, r := range failures {
		if strings.Contains(r["Error"], "HTTP 429") {
			occ, _ := strconv.ParseInt(r["Occurrences"], 10, 64)
			n429 += occ
		}
	}
	checks = append(checks, Check{"no HTTP 429 (quota)", n429 == 0, fmt.Sprintf("%d responses were 429", n429)})
	return checks, nil
}

func readCSV(path string) ([]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read Locust CSV: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []map[string]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		m := map[string]string{}
		for i, h := range head {
			if i < len(rec) {
				m[h] = rec[i]
			}
		}
		out = append(out, m)
	}
}

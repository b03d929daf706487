package fakezeno

import (
	"testing"

	"github.com/zenoload/zenoload/querydata"
)

// TestCorpusQueriesGetTheirKind: zenoload's own quick queries get the quick
// profile even when the heuristic would call them analysis (a year range).
func TestCorpusQueriesGetTheirKind(t *testing.T) {
	c := querydata.Default()
	known := corpusKinds(c)
	heuristicWrong := 0
	for _, q := range c.Quick {
		if known[q] != kindQuick {
			t.Errorf("quick query classified %v: %q", known[q], q)
		}
		if classify(q) != kindQuick {
			heuristicWrong++
		}
	}
	for _, q := range c.Analysis {
		if known[q] != kindAnalysis {
			t.Errorf("analysis query classified %v: %q", known[q], q)
		}
	}
	t.Logf("the heuristic alone would misfile %d of %d quick queries", heuristicWrong, len(c.Quick))
}

package tasks

import "testing"

func TestFastNode(t *testing.T) {
	cases := []struct {
		line string
		node string
		ok   bool
	}{
		{`{"node": "model", "update": "{\"x\": 1}"}`, "model", true},
		{`{"node":"tools","update":"{}"}`, "tools", true},
		{`{"node": "error", "update": "{}"}`, "error", true}, // caller still decodes error lines
		{`{"update": "{}", "node": "model"}`, "", false},     // other key order: full decode
		{`{"node": "mo\"del", "update": 1}`, "", false},
		{`{"node": "model", "update": "{}"`, "", false}, // truncated
		{`{"node": "", "update": 1}`, "", false},
		{`{"node": 5, "update": 1}`, "", false},
		{`{"node": "model"}`, "", false},
		{`not json`, "", false},
		{`}`, "", false},
	}
	for _, c := range cases {
		node, ok := fastNode([]byte(c.line))
		if node != c.node || ok != c.ok {
			t.Errorf("fastNode(%s) = %q, %v; want %q, %v", c.line, node, ok, c.node, c.ok)
		}
	}
}

package fakezeno

import (
	"encoding/json"
	"fmt"
	"strings"
)

// kind is the latency profile a chat request gets.
type kind uint8

const (
	kindQuick kind = iota
	kindAnalysis
	kindFollowUp
	numKinds
)

func (k kind) String() string {
	switch k {
	case kindQuick:
		return "quick"
	case kindAnalysis:
		return "analysis"
	default:
		return "followup"
	}
}

// node is the NDJSON "node" value of a line.
type node uint8

const (
	nodeModel node = iota
	nodeTools
	nodeTraceInfo
	nodeError
	numNodes
)

func (n node) String() string {
	return [...]string{"model", "tools", "trace_info", "error"}[n]
}

// toolsFromEnd lists tools in the order they are used counting back from
// the final answer, so any line count yields a plausible tail of the real
// sequence read_skill → pick_aoi → pick_dataset → pull_data → generate_insights.
func toolsFromEnd() []string {
	return []string{"generate_insights", "pull_data", "pick_dataset", "pick_aoi", "read_skill", "search_blogs"}
}

// payloads holds every line body that does not vary per request. They are
// built once in New and shared read-only by all streams, so a stream costs
// no per-line allocation.
type payloads struct {
	final      [numKinds][]byte
	preamble   []byte
	toolCall   [][]byte // model line asking for tool i
	toolResult [][]byte // tools line with tool i's result, ~LineBytes
	toolError  [][]byte // tools line with status "error"
	nonFatal   []byte
	fatal      []byte
}

// contentLine returns line idx of a stream of count content lines: the last
// one is the final answer; before it model (tool call) and tools (result)
// lines alternate; an even count starts with a short model preamble.
func (p *payloads) contentLine(k kind, count, idx int) (node, []byte) {
	if idx == count-1 {
		return nodeModel, p.final[k]
	}
	if count%2 == 0 && idx == 0 {
		return nodeModel, p.preamble
	}
	back := count - 1 - idx
	t := min((back+1)/2-1, len(p.toolCall)-1)
	if back%2 == 1 {
		return nodeTools, p.toolResult[t]
	}
	return nodeModel, p.toolCall[t]
}

// toolLineIndex returns the content index of the j-th (1-based, counted
// from the end) tools line.
func toolLineIndex(count, j int) int { return count - 1 - (2*j - 1) }

// numToolLines is how many tools lines a stream of count content lines has.
func numToolLines(count int) int {
	if count < 1 {
		return 0
	}
	return (count - 1) / 2
}

// LangChain dumps shapes. Field order follows langchain_core's serialisation.
type lcMessage struct {
	LC     int      `json:"lc"`
	Type   string   `json:"type"`
	ID     []string `json:"id"`
	Kwargs any      `json:"kwargs"`
}

type toolCall struct {
	Name string         `json:"name"`
	Args map[string]any `json:"args"`
	ID   string         `json:"id"`
	Type string         `json:"type"`
}

type aiKwargs struct {
	Content          string         `json:"content"`
	AdditionalKwargs map[string]any `json:"additional_kwargs"`
	ResponseMetadata map[string]any `json:"response_metadata"`
	Type             string         `json:"type"`
	ID               string         `json:"id"`
	ToolCalls        []toolCall     `json:"tool_calls"`
	InvalidToolCalls []any          `json:"invalid_tool_calls"`
	UsageMetadata    map[string]int `json:"usage_metadata"`
}

type toolKwargs struct {
	Content    string `json:"content"`
	Type       string `json:"type"`
	Name       string `json:"name"`
	ID         string `json:"id"`
	ToolCallID string `json:"tool_call_id"`
	Artifact   any    `json:"artifact"`
	Status     string `json:"status"`
}

type dataRow struct {
	Year   int     `json:"year"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Region string  `json:"region"`
}

type errorUpdate struct {
	Error     bool   `json:"error"`
	Message   string `json:"message"`
	ErrorType string `json:"error_type"`
	Type      string `json:"type"`
	Fatal     bool   `json:"fatal,omitempty"`
}

func aiMessage(id, content string, calls []toolCall) lcMessage {
	if calls == nil {
		calls = []toolCall{}
	}
	return lcMessage{LC: 1, Type: "constructor", ID: []string{"langchain", "schema", "messages", "AIMessage"},
		Kwargs: aiKwargs{
			Content: content, AdditionalKwargs: map[string]any{},
			ResponseMetadata: map[string]any{"finish_reason": "STOP", "model_name": "gemini-3.1-pro-preview", "safety_ratings": []any{}},
			Type:             "ai", ID: "run--" + id, ToolCalls: calls, InvalidToolCalls: []any{},
			UsageMetadata: map[string]int{"input_tokens": 5123, "output_tokens": 187, "total_tokens": 5310},
		}}
}

func toolMessage(id, name, content, status string, artifact any) lcMessage {
	return lcMessage{LC: 1, Type: "constructor", ID: []string{"langchain", "schema", "messages", "ToolMessage"},
		Kwargs: toolKwargs{Content: content, Type: "tool", Name: name, ID: id,
			ToolCallID: "call_" + id, Artifact: artifact, Status: status}}
}

// ndjsonLine frames update the way the server's pack() does:
// json.dumps({"node": node, "update": dumps(update)}) + "\n".
func ndjsonLine(n node, update any) ([]byte, error) {
	inner, err := json.Marshal(update)
	if err != nil {
		return nil, fmt.Errorf("marshal %s update: %w", n, err)
	}
	q, err := json.Marshal(string(inner))
	if err != nil {
		return nil, fmt.Errorf("quote %s update: %w", n, err)
	}
	b := make([]byte, 0, len(q)+40)
	b = append(b, `{"node": "`...)
	b = append(b, n.String()...)
	b = append(b, `", "update": `...)
	b = append(b, q...)
	return append(b, "}\n"...), nil
}

func rows(n int) []dataRow {
	regions := []string{"Pará", "Mato Grosso", "Amazonas", "Rondônia", "Acre", "Maranhão"}
	r := make([]dataRow, n)
	for i := range r {
		r[i] = dataRow{Year: 2001 + i%24, Value: float64((i*7919)%100000) / 10, Unit: "ha", Region: regions[i%len(regions)]}
	}
	return r
}

// toolResultUpdate is the tools update for one tool, padded with n data rows.
func toolResultUpdate(i int, name string, n int) map[string]any {
	id := fmt.Sprintf("%08x-7a1c-4f0e-9b1d-%012x", 0x5eed0000+i, 0xc0ffee+i)
	u := map[string]any{}
	var content string
	var artifact any
	switch name {
	case "pick_aoi":
		content = "Selected AOI: Pará, Brazil (gadm BRA.14_1)."
		u["aoi_selection"] = map[string]any{"name": "Pará, Brazil", "aois": []map[string]any{{
			"source": "gadm", "src_id": "BRA.14_1", "name": "Pará, Brazil", "subtype": "state-province",
			"bbox": []float64{-58.9, -9.84, -46.06, 2.59}}}}
		artifact = map[string]any{"candidates": rows(n)}
	case "pick_dataset":
		content = "Selected dataset: Tree cover loss (UMD/Hansen)."
		u["dataset"] = map[string]any{"dataset_id": 4, "dataset_name": "Tree cover loss", "context_layer": nil,
			"tile_url": "https://tiles.globalforestwatch.org/umd_tree_cover_loss/latest/dynamic/{z}/{x}/{y}.png",
			"reason":   "The user asks about forest loss over time."}
		artifact = map[string]any{"ranked": rows(n)}
	case "pull_data":
		content = "Pulled yearly tree cover loss for Pará, 2001–2024."
		u["start_date"], u["end_date"] = "2001-01-01", "2024-12-31"
		u["statistics"] = []map[string]any{{"dataset_name": "Tree cover loss", "source_url": "https://data-api.globalforestwatch.org/", "data": rows(n)}}
	case "generate_insights":
		content = "Generated 1 chart and a summary insight."
		u["insight"] = "Tree cover loss in Pará peaked in 2016 and has declined since, with fire-driven spikes in 2017 and 2024."
		u["insight_id"] = id
		u["charts_data"] = []map[string]any{{"id": "chart-1", "title": "Annual tree cover loss in Pará", "type": "bar",
			"xAxis": "year", "yAxis": "value", "data": rows(n)}}
		u["follow_up_suggestions"] = []string{"Compare with Mato Grosso", "Show primary forest loss only", "What drove the 2016 peak?"}
	default:
		content = "Loaded: " + strings.ReplaceAll(name, "_", " ") + "."
		artifact = map[string]any{"documents": rows(n)}
	}
	u["messages"] = []lcMessage{toolMessage(id, name, content, "success", artifact)}
	return u
}

// sizedLine builds a tools line whose size is close to target by scaling
// the padding rows from two measurements (cheaper than growing row by row).
func sizedLine(i int, name string, target int) ([]byte, error) {
	base, err := ndjsonLine(nodeTools, toolResultUpdate(i, name, 0))
	if err != nil {
		return nil, err
	}
	const probe = 32
	ten, err := ndjsonLine(nodeTools, toolResultUpdate(i, name, probe))
	if err != nil {
		return nil, err
	}
	per := max((len(ten)-len(base))/probe, 1)
	n := max((target-len(base))/per, 0)
	return ndjsonLine(nodeTools, toolResultUpdate(i, name, n))
}

func newPayloads(lineBytes int) (*payloads, error) {
	p := &payloads{}
	var err error
	finals := [numKinds]string{
		kindQuick:    "Could you tell me which area and time period you are interested in? For example, a country, a state or a protected area, and a range of years.",
		kindAnalysis: "Between 2001 and 2024 Pará lost about 18.6 Mha of tree cover, peaking in 2016. Loss has declined since 2017, though fire-related loss rose again in 2024. The chart above shows the yearly values.",
		kindFollowUp: "Compared with the previous result, the trend is similar: the peak year stays 2016 and the last five years show a decline of about 30%.",
	}
	for k := range numKinds {
		if p.final[k], err = ndjsonLine(nodeModel, map[string]any{"messages": []lcMessage{aiMessage(fmt.Sprintf("final-%d", k), finals[k], nil)}}); err != nil {
			return nil, err
		}
	}
	if p.preamble, err = ndjsonLine(nodeModel, map[string]any{"messages": []lcMessage{aiMessage("preamble", "Let me look that up for you.", nil)}}); err != nil {
		return nil, err
	}
	args := map[string]map[string]any{
		"read_skill":        {"skill": "forest-change-analysis"},
		"pick_aoi":          {"question": "Tree cover loss in Pará", "place": "Pará, Brazil"},
		"pick_dataset":      {"query": "tree cover loss"},
		"pull_data":         {"query": "yearly tree cover loss", "start_date": "2001-01-01", "end_date": "2024-12-31"},
		"generate_insights": {"query": "Summarise the trend and chart yearly loss"},
		"search_blogs":      {"query": "deforestation Pará"},
	}
	for i, name := range toolsFromEnd() {
		id := fmt.Sprintf("%08x-7a1c-4f0e-9b1d-%012x", 0x5eed0000+i, 0xc0ffee+i)
		call, err := ndjsonLine(nodeModel, map[string]any{"messages": []lcMessage{aiMessage(fmt.Sprintf("call-%d", i), "",
			[]toolCall{{Name: name, Args: args[name], ID: "call_" + id, Type: "tool_call"}})}})
		if err != nil {
			return nil, err
		}
		res, err := sizedLine(i, name, lineBytes)
		if err != nil {
			return nil, err
		}
		te, err := ndjsonLine(nodeTools, map[string]any{"messages": []lcMessage{toolMessage(id, name,
			fmt.Sprintf("Tool '%s' failed unexpectedly (TimeoutError). Try again or rephrase the request.", name), "error", nil)}})
		if err != nil {
			return nil, err
		}
		p.toolCall, p.toolResult, p.toolError = append(p.toolCall, call), append(p.toolResult, res), append(p.toolError, te)
	}
	if p.nonFatal, err = ndjsonLine(nodeError, errorUpdate{Error: true, Message: "Object of type Timestamp is not JSON serializable",
		ErrorType: "TypeError", Type: "stream_processing_error"}); err != nil {
		return nil, err
	}
	if p.fatal, err = ndjsonLine(nodeError, errorUpdate{Error: true, Message: "All models failed: 503 UNAVAILABLE",
		ErrorType: "RuntimeError", Type: "stream_initialization_error", Fatal: true}); err != nil {
		return nil, err
	}
	return p, nil
}

// appendTraceInfo appends the per-request trace_info line for trace id hex.
func appendTraceInfo(b []byte, hex []byte) []byte {
	b = append(b, `{"node": "trace_info", "update": "{\"trace_id\": \"`...)
	b = append(b, hex...)
	b = append(b, `\", \"trace_url\": \"https://cloud.langfuse.com/project/zeno/traces/`...)
	b = append(b, hex...)
	return append(b, `\"}"}`+"\n"...)
}

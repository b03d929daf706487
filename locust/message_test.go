package locust

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// pythons returns interpreters that import each supported Locust version.
func pythons(t *testing.T) map[string]string {
	out := map[string]string{}
	venv := filepath.Join("..", ".venv", "bin", "python")
	if _, err := os.Stat(venv); err == nil {
		out["2.47.0"] = venv
	}
	if _, err := os.Stat("/usr/lib/python3/dist-packages/locust/__init__.py"); err == nil {
		out["2.12.1"] = "/usr/bin/python3"
	}
	if len(out) < 2 && os.Getenv("ZENOLOAD_REQUIRE_MASTERS") == "1" {
		t.Fatalf("both Locust versions are required, found %v", out)
	}
	if len(out) == 0 {
		t.Skip("no Locust installed")
	}
	return out
}

func workerMessages(t *testing.T) map[string]Message {
	s := NewStats(2)
	s.Recorder(0).Record("POST", "quick_query", 147.3, 2048, "")
	s.Recorder(1).Record("POST", "quick_query", 1250, 10, "HTTP 429: daily quota exceeded")
	stats := s.take().reportData(map[string]int64{"ZenoChatUser": 3})
	return map[string]Message{
		"client_ready":      {"client_ready", -1, "host_abc"},
		"heartbeat":         {"heartbeat", map[string]any{"state": "running", "current_cpu_usage": 12.5, "current_memory_usage": int64(1 << 30)}, "host_abc"},
		"stats":             {"stats", stats, "host_abc"},
		"spawning":          {"spawning", nil, "host_abc"},
		"spawning_complete": {"spawning_complete", map[string]any{"user_classes_count": map[string]int64{"ZenoChatUser": 3}, "user_count": int64(3)}, "host_abc"},
		"client_stopped":    {"client_stopped", nil, "host_abc"},
		"quit":              {"quit", nil, "host_abc"},
		"exception":         {"exception", map[string]any{"msg": "bad \xff utf8", "traceback": "tb"}, "host_abc"},
		"custom":            {"zeno_metrics", map[string]any{"v": 1, "__datetime__": "x", "hist": map[int64]int64{150: 2}}, "host_abc"},
	}
}

func TestGoEncodedDecodedByLocust(t *testing.T) {
	dir := t.TempDir()
	for name, m := range workerMessages(t) {
		b, err := Encode(m)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".bin"), b, 0o644))
	}
	for ver, py := range pythons(t) {
		t.Run(ver, func(t *testing.T) {
			out, err := exec.Command(py, "testdata/msgpack_check.py", "decode", dir).CombinedOutput()
			require.NoError(t, err, string(out))
			var got map[string]map[string]any
			require.NoError(t, json.Unmarshal(out, &got), string(out))
			require.Len(t, got, 9)
			for name, d := range got {
				require.Equal(t, "str:host_abc", d["node_id"], name)
			}
			require.Equal(t, "str:client_ready", got["client_ready"]["type"])
			require.Equal(t, "int:-1", got["client_ready"]["data"])
			hb := got["heartbeat"]["data"].(map[string]any)["dict"].(map[string]any)
			require.Equal(t, "str:running", hb["str:state"])
			require.Equal(t, "float:12.5", hb["str:current_cpu_usage"])
			require.Equal(t, "int:1073741824", hb["str:current_memory_usage"])
			st := got["stats"]["data"].(map[string]any)["dict"].(map[string]any)
			total := st["str:stats_total"].(map[string]any)["dict"].(map[string]any)
			// response_times keys must be ints for the master's percentile code.
			require.Equal(t, map[string]any{"int:150": "int:1", "int:1200": "int:1"},
				total["str:response_times"].(map[string]any)["dict"])
			require.Equal(t, "str:", total["str:method"])
			require.Equal(t, "int:2", total["str:num_requests"])
			require.Equal(t, map[string]any{"str:ZenoChatUser": "int:3"}, st["str:user_classes_count"].(map[string]any)["dict"])
			exc := got["exception"]["data"].(map[string]any)["dict"].(map[string]any)
			require.Equal(t, "str:bad \ufffd utf8", exc["str:msg"], "invalid UTF-8 is replaced, never sent")
			cust := got["custom"]["data"].(map[string]any)["dict"].(map[string]any)
			require.NotContains(t, cust, "str:__datetime__", "reserved object_hook keys are renamed")
			require.Equal(t, map[string]any{"int:150": "int:2"}, cust["str:hist"].(map[string]any)["dict"])
		})
	}
}

func TestLocustEncodedDecodedByGo(t *testing.T) {
	for ver, py := range pythons(t) {
		t.Run(ver, func(t *testing.T) {
			dir := t.TempDir()
			out, err := exec.Command(py, "testdata/msgpack_check.py", "encode", dir).CombinedOutput()
			require.NoError(t, err, string(out))
			read := func(name string) Message {
				b, err := os.ReadFile(filepath.Join(dir, name+".bin"))
				require.NoError(t, err)
				m, err := Decode(b)
				require.NoError(t, err, name)
				require.Equal(t, "n1", m.NodeID)
				return m
			}
			ack := read("ack")
			idx, ok := toInt(ack.Data.(map[string]any)["index"])
			require.True(t, ok)
			require.Equal(t, int64(3), idx)
			require.Nil(t, read("ack_old").Data)
			sp := read("spawn").Data.(map[string]any)
			ts, _ := toFloat(sp["timestamp"])
			require.Equal(t, 1796300771.25, ts)
			ucc := sp["user_classes_count"].(map[string]any)
			n, _ := toInt(ucc["ZenoChatUser"])
			require.Equal(t, int64(7), n)
			opts := Options(sp["parsed_options"].(map[string]any))
			require.Equal(t, 30, opts.Int("zeno_quick_weight", 0))
			require.Equal(t, 0.5, opts.Float("zeno_wait_min", 0))
			require.Equal(t, int64(1<<40), int64(opts.Float("big", 0)))
			require.Equal(t, -5, opts.Int("neg", 0))
			require.True(t, opts.Bool("flag", false))
			require.Equal(t, "fallback", opts.String("tags", "fallback"))
			st, _ := toFloat(sp["stop_timeout"])
			require.Equal(t, 2.5, st)
			nilSpawn := read("spawn_nil_timeout").Data.(map[string]any)
			require.Nil(t, nilSpawn["stop_timeout"])
			for _, name := range []string{"stop", "quit", "heartbeat", "reconnect"} {
				m := read(name)
				require.Equal(t, name, m.Type)
				require.Nil(t, m.Data)
			}
			require.Equal(t, "spawning_complete", read("spawning_complete").Type)
			require.Equal(t, "zeno_hello", read("custom").Type)
		})
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	for _, b := range [][]byte{nil, {0xc1}, {0x92, 0xa1, 'a', 0xc0}, {0x93, 0x01, 0xc0, 0xa1, 'n'}, {0x93, 0xa1, 'a'}} {
		_, err := Decode(b)
		require.ErrorIs(t, err, ErrMalformed, "%x", b)
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range []Message{{"ack", map[string]any{"index": 1}, "n"}, {"spawn", map[string]any{"timestamp": 1.5,
		"user_classes_count": map[string]any{"A": 1}, "parsed_options": map[string]any{"x": []any{1, "a"}}}, "n"},
		{"quit", nil, "n"}} {
		b, _ := Encode(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must also be interpreted without panicking.
		w, err := NewWorker(Config{Classes: []UserClass{{Name: "A", New: func(*Env) (User, error) {
			return nil, errors.New("not started in fuzzing")
		}}}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		w.onAck(m.Data)
		if d, ok := m.Data.(map[string]any); ok {
			if ucc, ok := d["user_classes_count"].(map[string]any); ok {
				delete(ucc, "A") // never start users from fuzz input
			}
			w.onSpawn(context.Background(), d)
		}
		_ = w.handle(context.Background(), Message{Type: "custom-" + m.Type, Data: m.Data})
	})
}

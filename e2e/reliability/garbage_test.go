package reliability

import (
	"bytes"
	"crypto/rand"
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/zeromq/goczmq"

	"github.com/zenoload/zenoload/internal/locusttest"
)

// TestMasterGarbage: a fake master (a ZeroMQ ROUTER in this process) sends a
// real zeno-worker garbage bytes, truncated msgpack, huge length headers,
// deep nesting, wrong envelopes, unknown message types and built-in types
// with nonsense data. The worker must log and keep running; after a proper
// ack it must send well-formed heartbeats and stats, and on quit it must say
// quit and exit 0. (The decoder itself is fuzzed by FuzzDecode in ./locust.)
func TestMasterGarbage(t *testing.T) {
	integration(t)
	// Not parallel. It used to need to run before
	// TestGoroutinesReturnToBaseline: that test's in-process worker closed
	// its DEALER with the monitor still attached, and an event during the
	// close's linger blocked libzmq's I/O thread, so no ZeroMQ socket in this
	// process received again. The transport now detaches the monitor first
	// (locust.TestCloseWhileLingering); both orders pass.
	r := newRun(t, 60*time.Second)
	port := locusttest.FreePort(t)

	runtime.LockOSThread() // one OS thread owns the ZeroMQ socket
	defer runtime.UnlockOSThread()
	router, err := goczmq.NewRouter("tcp://127.0.0.1:" + strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer router.Destroy()
	router.SetOption(goczmq.SockSetRcvtimeo(300))
	router.SetOption(goczmq.SockSetLinger(0))

	w := r.worker(port, nil, "--loglevel", "DEBUG", "--master-timeout", "0")

	type msg struct {
		typ  string
		data any
		node string
	}
	recv := func(d time.Duration) (id []byte, m msg, ok bool) {
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			frames, err := router.RecvMessage()
			if err != nil || len(frames) != 2 {
				continue
			}
			var env []any
			if err := msgpack.Unmarshal(frames[1], &env); err != nil || len(env) != 3 {
				t.Errorf("worker sent a malformed message: % x", frames[1])
				continue
			}
			typ, _ := env[0].(string)
			node, _ := env[2].(string)
			if node != string(frames[0]) {
				t.Errorf("node_id %q != identity %q", node, frames[0])
			}
			return frames[0], msg{typ, env[1], node}, true
		}
		return nil, msg{}, false
	}
	id, first, ok := recv(10 * time.Second)
	if !ok || first.typ != "client_ready" {
		t.Fatalf("no client_ready from the worker (got %+v):\n%s", first, w.Output())
	}
	if v, _ := first.data.(int8); v != -1 {
		t.Logf("client_ready data: %#v", first.data)
	}
	node := string(id)
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	envelope := enc([]any{"heartbeat", nil, node})
	random := func(n int) []byte { b := make([]byte, n); _, _ = rand.Read(b); return b }
	deep := append(bytes.Repeat([]byte{0x91}, 100000), 0xc0)
	str32 := []byte{0x93, 0xa3, 'f', 'o', 'o', 0xdb, 0xff, 0xff, 0xff, 0xff}
	garbage := []struct {
		name string
		b    []byte
	}{
		{"empty frame", []byte{}},
		{"one byte 0xc1 (never used)", []byte{0xc1}},
		{"random 16", random(16)},
		{"random 4 KiB", random(4096)},
		{"random 8 MiB", random(8 << 20)},
		{"not msgpack text", []byte("hello, worker\n")},
		{"truncated envelope", envelope[:len(envelope)-3]},
		{"trailing bytes", append(append([]byte{}, envelope...), 0x01, 0x02)},
		{"str32 claims 4 GiB", str32},
		{"array32 claims 4G items", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}},
		{"map32 claims 4G pairs", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0}},
		{"bin32 claims 4 GiB", []byte{0x93, 0xa1, 'x', 0xc6, 0xff, 0xff, 0xff, 0xff, 0x00}},
		{"ext32 claims 4 GiB", []byte{0x93, 0xa1, 'x', 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"nesting 100000 deep", append([]byte{0x93, 0xa1, 'x'}, append(deep, 0xa1, 'n')...)},
		{"2-element envelope", enc([]any{"spawn", nil})},
		{"4-element envelope", enc([]any{"spawn", nil, node, "extra"})},
		{"not an array", enc(map[string]any{"type": "spawn"})},
		{"nil", enc(nil)},
		{"int type", enc([]any{42, nil, node})},
		{"bin type", enc([]any{[]byte("spawn"), nil, node})},
		{"invalid utf-8 type", []byte{0x93, 0xa2, 0xff, 0xfe, 0xc0, 0xa1, 'n'}},
		{"unknown type", enc([]any{"foo", map[string]any{"bar": []any{1, 2.5, "x"}}, node})},
		{"unknown type, huge string", enc([]any{"foo", strings.Repeat("z", 1<<20), node})},
		{"custom-looking type", enc([]any{"zeno_metrics", map[string]any{"a": 1}, node})},
		{"spawn data not a map", enc([]any{"spawn", "notamap", node})},
		{"spawn counts not a map", enc([]any{"spawn", map[string]any{"timestamp": 1.0, "user_classes_count": "x"}, node})},
		{"spawn counts text", enc([]any{"spawn", map[string]any{"timestamp": 2.0, "user_classes_count": map[string]any{"ZenoChatUser": "many"}}, node})},
		{"spawn counts negative", enc([]any{"spawn", map[string]any{"timestamp": 3.0, "user_classes_count": map[string]any{"ZenoChatUser": -5}}, node})},
		{"spawn counts 1e300", enc([]any{"spawn", map[string]any{"timestamp": 4.0, "user_classes_count": map[string]any{"ZenoChatUser": 1e300}}, node})},
		{"spawn counts NaN", enc([]any{"spawn", map[string]any{"timestamp": math.NaN(), "user_classes_count": map[string]any{"ZenoChatUser": math.NaN()}}, node})},
		{"spawn unknown class", enc([]any{"spawn", map[string]any{"timestamp": 5.0, "user_classes_count": map[string]any{"NoSuchUser": 3}, "host": 7, "stop_timeout": "soon", "parsed_options": []any{1}}, node})},
		{"stop before ack", enc([]any{"stop", "x", node})},
		{"heartbeat with data", enc([]any{"heartbeat", map[string]any{"state": 5}, node})},
		{"spawning_complete", enc([]any{"spawning_complete", []any{1}, node})},
		{"update_user_class", enc([]any{"update_user_class", "x", node})},
		{"wrong node id", enc([]any{"foo", nil, "someone-else"})},
		{"datetime map", enc([]any{"foo", map[string]any{"__datetime__": true, "as_str": "garbage"}, node})},
		{"timestamp ext", enc([]any{"foo", time.Unix(1, 0), node})},
	}
	for _, g := range garbage {
		if err := router.SendMessage([][]byte{id, g.b}); err != nil {
			t.Fatalf("send %s: %v", g.name, err)
		}
	}
	// A multi-frame message: the worker reads only the last frame.
	_ = router.SendMessage([][]byte{id, []byte("junk"), enc([]any{"foo", nil, node})})

	// Whatever the worker answers to the garbage (spawning, client_ready
	// retries) must be well-formed; give it 3 s, then check it still runs.
	seen := map[string]int{}
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		if _, m, ok := recv(300 * time.Millisecond); ok {
			seen[m.typ]++
		}
	}
	if !alive(w) {
		t.Fatalf("worker died from garbage:\n%s", tail(w.Output(), 40))
	}
	out := w.Output()
	for _, bad := range []string{"panic", "goroutine ", "fatal error"} {
		if strings.Contains(out, bad) {
			t.Errorf("worker output has %q:\n%s", bad, tail(out, 40))
		}
	}
	malformed := strings.Count(out, "ignoring malformed message")
	if malformed < 15 {
		t.Errorf("only %d 'ignoring malformed message' lines for ~20 malformed frames:\n%s", malformed, tail(out, 40))
	}
	for _, typ := range []string{"heartbeat", "stats", "spawning_complete"} {
		if seen[typ] > 0 {
			t.Errorf("worker sent %d %s before any ack (it must not: an unknown node confuses a master)", seen[typ], typ)
		}
	}

	// Now a proper ack: heartbeats every second, stats every 3 s.
	if err := router.SendMessage([][]byte{id, enc([]any{"ack", map[string]any{"index": 0}, node})}); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); {
		_, m, ok := recv(300 * time.Millisecond)
		if !ok {
			continue
		}
		got[m.typ]++
		if m.typ == "heartbeat" {
			d, _ := m.data.(map[string]any)
			st, _ := d["state"].(string)
			if st != "ready" && st != "running" && st != "spawning" {
				t.Errorf("heartbeat state %q", st)
			}
			if _, ok := d["current_cpu_usage"].(float64); !ok {
				if d["current_cpu_usage"] == nil {
					t.Errorf("heartbeat without a numeric cpu usage: %#v", d)
				}
			}
		}
	}
	if got["heartbeat"] < 3 || got["stats"] < 1 {
		t.Errorf("after the ack: %v; want >= 3 heartbeats and >= 1 stats in 4 s:\n%s", got, tail(w.Output(), 20))
	}
	_ = router.SendMessage([][]byte{id, enc([]any{"quit", nil, node})})
	quitSeen := false
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end) && !quitSeen; {
		if _, m, ok := recv(300 * time.Millisecond); ok && m.typ == "quit" {
			quitSeen = true
		}
	}
	code, err := w.Wait(10 * time.Second)
	if err != nil || code != 0 {
		t.Errorf("after quit: exit %d %v", code, err)
	}
	if !quitSeen {
		t.Errorf("worker did not say quit")
	}
	t.Logf("sent %d garbage frames; worker logged %d malformed, answered %v before the ack and %v after it; exit %d",
		len(garbage)+1, malformed, seen, got, code)
}

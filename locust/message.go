package locust

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// Message is one protocol message: the msgpack array [type, data, node_id].
type Message struct {
	Type   string
	Data   any
	NodeID string
}

// ErrMalformed marks input that is not a valid protocol message.
var ErrMalformed = errors.New("malformed locust message")

// Encode packs m the way Locust's rpc/protocol.py expects: a 3-element array
// whose strings are msgpack str and always valid UTF-8, so that no value we
// send can kill the master's listener (protocol doc §8, T1/T3/T9/T10/T11).
func Encode(m Message) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode([]any{safeString(m.Type), sanitize(m.Data), safeString(m.NodeID)}); err != nil {
		return nil, fmt.Errorf("encode %q: %w", m.Type, err)
	}
	return buf.Bytes(), nil
}

// Decode unpacks a message from the master. It never panics; anything that is
// not [str, any, str] is ErrMalformed.
func Decode(b []byte) (m Message, err error) {
	defer func() {
		// msgpack is defensive, but input comes from the network: never crash.
		if r := recover(); r != nil {
			m, err = Message{}, fmt.Errorf("%w: decoder panic: %v", ErrMalformed, r)
		}
	}()
	if err := checkMsgpack(b); err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	dec.SetMapDecoder(decodeMap)
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if n != 3 {
		return Message{}, fmt.Errorf("%w: envelope has %d elements, want 3", ErrMalformed, n)
	}
	arr := make([]any, 3)
	for i := range arr {
		if arr[i], err = dec.DecodeInterface(); err != nil {
			return Message{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	}
	typ, ok1 := arr[0].(string)
	node, ok2 := arr[2].(string)
	if !ok1 || (!ok2 && arr[2] != nil) {
		return Message{}, fmt.Errorf("%w: type or node_id is not a string", ErrMalformed)
	}
	return Message{Type: typ, Data: arr[1], NodeID: node}, nil
}

// decodeMap decodes every map as map[string]any (keys stringified) so callers
// see one shape whatever key types the peer used.
func decodeMap(d *msgpack.Decoder) (any, error) {
	n, err := d.DecodeMapLen()
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, nil
	}
	m := make(map[string]any, min(n, 1024))
	for i := 0; i < n; i++ {
		k, err := d.DecodeInterfaceLoose()
		if err != nil {
			return nil, err
		}
		v, err := d.DecodeInterface()
		if err != nil {
			return nil, err
		}
		switch kk := k.(type) {
		case string:
			m[kk] = v
		case []byte:
			m[string(kk)] = v
		default:
			m[fmt.Sprint(kk)] = v
		}
	}
	return m, nil
}

// reservedKeys are map keys Locust ≥2.20's object_hook turns into objects.
var reservedKeys = [...]string{"__datetime__", "__ObjectId__"}

func safeString(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}

func safeKey(k string) string {
	k = safeString(k)
	for _, r := range reservedKeys {
		if k == r {
			return "_" + k
		}
	}
	return k
}

// sanitize makes dynamic values safe for the master: valid UTF-8 strings and
// no reserved keys. Typed maps built by the runtime (int keys) pass through.
func sanitize(v any) any {
	switch x := v.(type) {
	case string:
		return safeString(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, vv := range x {
			out[safeKey(k)] = sanitize(vv)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, vv := range x {
			out[i] = sanitize(vv)
		}
		return out
	case map[string]int64:
		out := make(map[string]int64, len(x))
		for k, vv := range x {
			out[safeKey(k)] = vv
		}
		return out
	case map[string]int:
		out := make(map[string]int64, len(x))
		for k, vv := range x {
			out[safeKey(k)] = int64(vv)
		}
		return out
	case []map[string]any:
		out := make([]any, len(x))
		for i, vv := range x {
			out[i] = sanitize(vv)
		}
		return out
	}
	return v
}

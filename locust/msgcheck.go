package locust

import (
	"encoding/binary"
	"errors"
)

// checkMsgpack validates the structure of one msgpack value spanning all of
// b, before it reaches the msgpack decoder. The decoder pre-allocates
// whatever element count a header claims, so a 10-byte message could
// otherwise ask for gigabytes; every element takes at least one byte, so a
// count larger than the bytes left is a lie.
func checkMsgpack(b []byte) error {
	rest, err := skipValue(b, 0)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("trailing bytes after the message")
	}
	return nil
}

const maxDepth = 64

var errTruncated = errors.New("truncated msgpack value")

func skipValue(b []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errors.New("msgpack nesting too deep")
	}
	if len(b) == 0 {
		return nil, errTruncated
	}
	c, b := b[0], b[1:]
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return b, nil
	case c >= 0x80 && c <= 0x8f:
		return skipItems(b, 2*int(c&0x0f), depth)
	case c >= 0x90 && c <= 0x9f:
		return skipItems(b, int(c&0x0f), depth)
	case c >= 0xa0 && c <= 0xbf:
		return skipBytes(b, int(c&0x1f))
	}
	switch c {
	case 0xc4, 0xd9: // bin8, str8
		return skipSized(b, 1, 0)
	case 0xc5, 0xda:
		return skipSized(b, 2, 0)
	case 0xc6, 0xdb:
		return skipSized(b, 4, 0)
	case 0xc7: // ext8: size, type, data
		return skipSized(b, 1, 1)
	case 0xc8:
		return skipSized(b, 2, 1)
	case 0xc9:
		return skipSized(b, 4, 1)
	case 0xca, 0xce, 0xd2:
		return skipBytes(b, 4)
	case 0xcb, 0xcf, 0xd3:
		return skipBytes(b, 8)
	case 0xcc, 0xd0:
		return skipBytes(b, 1)
	case 0xcd, 0xd1:
		return skipBytes(b, 2)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1,2,4,8,16 plus the type byte
		return skipBytes(b, 1+(1<<(c-0xd4)))
	case 0xdc, 0xdd, 0xde, 0xdf:
		width := 2
		if c == 0xdd || c == 0xdf {
			width = 4
		}
		n, rest, err := readLen(b, width)
		if err != nil {
			return nil, err
		}
		if c >= 0xde {
			n *= 2
		}
		return skipItems(rest, n, depth)
	}
	return nil, errors.New("invalid msgpack type byte")
}

func skipItems(b []byte, n, depth int) ([]byte, error) {
	if n > len(b) {
		return nil, errTruncated
	}
	var err error
	for i := 0; i < n; i++ {
		if b, err = skipValue(b, depth+1); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func skipSized(b []byte, width, extra int) ([]byte, error) {
	n, rest, err := readLen(b, width)
	if err != nil {
		return nil, err
	}
	return skipBytes(rest, n+extra)
}

func readLen(b []byte, width int) (int, []byte, error) {
	if len(b) < width {
		return 0, nil, errTruncated
	}
	var n uint64
	switch width {
	case 1:
		n = uint64(b[0])
	case 2:
		n = uint64(binary.BigEndian.Uint16(b))
	default:
		n = uint64(binary.BigEndian.Uint32(b))
	}
	if n > uint64(len(b)) {
		return 0, nil, errTruncated
	}
	return int(n), b[width:], nil
}

func skipBytes(b []byte, n int) ([]byte, error) {
	if n < 0 || n > len(b) {
		return nil, errTruncated
	}
	return b[n:], nil
}

package locust

import (
	"fmt"
	"math"
	"strconv"
)

// Options are the master's parsed_options (every master CLI option by dest
// name, including custom arguments from the master locustfile). Values arrive
// as nil, bool, any int width, float, string or list, so getters coerce.
type Options map[string]any

// Float returns key as float64, or def when absent, nil or not numeric.
func (o Options) Float(key string, def float64) float64 {
	if f, ok := toFloat(o[key]); ok {
		return f
	}
	if s, ok := o[key].(string); ok {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	}
	return def
}

// Int returns key as int, or def when absent, nil or not numeric.
func (o Options) Int(key string, def int) int {
	f := o.Float(key, math.NaN())
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return def
	}
	return int(f)
}

// String returns key as string, or def when absent or nil.
func (o Options) String(key, def string) string {
	switch v := o[key].(type) {
	case nil:
		return def
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// Bool returns key as bool, or def when absent or not a bool-like value.
func (o Options) Bool(key string, def bool) bool {
	switch v := o[key].(type) {
	case bool:
		return v
	case string:
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
	}
	return def
}

// toFloat coerces any msgpack numeric width.
func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int8:
		return float64(n), true
	case int16:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint:
		return float64(n), true
	case uint8:
		return float64(n), true
	case uint16:
		return float64(n), true
	case uint32:
		return float64(n), true
	case uint64:
		return float64(n), true
	}
	return 0, false
}

// toInt coerces any msgpack numeric width to int64 (floats are truncated).
func toInt(v any) (int64, bool) {
	f, ok := toFloat(v)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) || f > math.MaxInt64 || f < math.MinInt64 {
		return 0, false
	}
	switch n := v.(type) {
	case int64:
		return n, true
	case uint64:
		if n > math.MaxInt64 {
			return 0, false
		}
		return int64(n), true
	}
	return int64(f), true
}

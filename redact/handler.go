package redact

import (
	"context"
	"fmt"
	"log/slog"
)

// Handler wraps h so that every record's message and attribute values
// (strings, errors, Stringers, other values, nested groups) are redacted.
// Attributes bound with WithAttrs are redacted when bound, so tokens added to
// r afterwards are only caught in later records and attrs.
func (r *Redactor) Handler(h slog.Handler) slog.Handler {
	if h == nil {
		h = slog.DiscardHandler
	}
	return &handler{r: r, h: h}
}

type handler struct {
	r *Redactor
	h slog.Handler
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
	}
	return &handler{r: h.r, h: h.h.WithAttrs(red)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{r: h.r, h: h.h.WithGroup(h.r.String(name))}
}

// Attr returns a with its value (recursively) redacted.
func (r *Redactor) Attr(a slog.Attr) slog.Attr { return (&handler{r: r}).attr(a) }

func (h *handler) attr(a slog.Attr) slog.Attr {
	a.Key = h.r.String(a.Key)
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(h.r.String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for i, ga := range g {
			out[i] = h.attr(ga)
		}
		a.Value = slog.GroupValue(out...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			a.Value = slog.StringValue(h.r.String(x.Error()))
		case fmt.Stringer:
			a.Value = slog.StringValue(h.r.String(x.String()))
		case []byte:
			a.Value = slog.StringValue(h.r.String(string(x)))
		default:
			// Keep the original value (and its JSON shape) unless its
			// printed form would leak something.
			s := fmt.Sprintf("%+v", x)
			if red := h.r.String(s); red != s {
				a.Value = slog.StringValue(red)
			} else {
				a.Value = v
			}
		}
	default:
		a.Value = v
	}
	return a
}

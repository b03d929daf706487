package tasks

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"unicode"
)

// maxDetail bounds the server detail kept in a failure message.
const maxDetail = 80

// statusMessage builds "HTTP <code>: <detail>". The 429 detail embeds the
// quota number, so the real quota message is collapsed to one stable text.
func statusMessage(code int, detail string) string {
	if code == http.StatusTooManyRequests && (detail == "" || quotaDetail.MatchString(detail)) {
		return "HTTP 429: daily quota exceeded"
	}
	detail = sanitizeDetail(detail)
	if detail == "" {
		detail = http.StatusText(code)
	}
	if detail == "" {
		detail = "unknown status"
	}
	return "HTTP " + strconv.Itoa(code) + ": " + detail
}

var quotaDetail = regexp.MustCompile(`(?i)daily .*limit.*exceeded`)

// errorDetail extracts FastAPI's "detail": a string, or for 422 a list whose
// first item has a "msg". Non-JSON bodies (proxy pages) give "".
func errorDetail(body []byte) string {
	var doc struct {
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &doc) != nil || len(doc.Detail) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(doc.Detail, &s) == nil {
		return s
	}
	var list []struct {
		Msg string `json:"msg"`
	}
	if json.Unmarshal(doc.Detail, &list) == nil && len(list) > 0 {
		return list[0].Msg
	}
	return ""
}

// Patterns that would make otherwise equal failures distinct rows.
var (
	reUUID = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	reTime = regexp.MustCompile(`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?`)
	reAddr = regexp.MustCompile(`\[[0-9a-fA-F:]+\](:\d+)?|\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b|\blocalhost:\d+`)
	reHex  = regexp.MustCompile(`\b[0-9a-fA-F]{16,}\b`)
)

// sanitizeDetail removes ids, timestamps and addresses, collapses whitespace
// and truncates to maxDetail runes.
func sanitizeDetail(s string) string {
	s = reUUID.ReplaceAllString(s, "<id>")
	s = reTime.ReplaceAllString(s, "<time>")
	s = reAddr.ReplaceAllString(s, "<addr>")
	s = reHex.ReplaceAllString(s, "<hex>")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if r := []rune(s); len(r) > maxDetail {
		s = strings.TrimSpace(string(r[:maxDetail])) + "…"
	}
	return s
}

// connCategory names why no response arrived, without addresses or ports.
func connCategory(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var alert tls.AlertError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.As(err, &dnsErr):
		return "dns"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.As(err, &certErr), errors.As(err, &recErr), errors.As(err, &alert),
		errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalidCert):
		return "tls"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "connect timeout"
	}
	return "other"
}
